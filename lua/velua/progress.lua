-- velua.progress: a progress bar for long work (training epochs, kNN, velocity graphs).
-- In a terminal it redraws one line in place ("\r"); in a notebook the kernel installs a
-- display function (opts.display or progress.set_display) that receives each rendered line;
-- it is silent when output is not interactive or when disabled.
--
--   local progress = require("velua").progress
--   local bar = progress.new(100, {desc = "epochs"})
--   for epoch = 1, 100 do ...; bar:update(1, {loss = l}) end
--   bar:close()
--   for i in progress.range(1000, {desc = "cells"}) do ... end
local core = require "velua.core"
local options = require "velua.options"

local M = {}
local default_display = nil -- set by a notebook kernel

function M.set_display(fn) default_display = fn end

local Bar = {}
Bar.__index = Bar

local function fmt_time(s)
  if s == nil or s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  local h, m = s // 3600, (s % 3600) // 60
  if h > 0 then return string.format("%d:%02d:%02d", h, m, s % 60) end
  return string.format("%02d:%02d", m, s % 60)
end

local function fmt_rate(r)
  if not r or r <= 0 then return "? it/s" end
  if r >= 1 then return string.format("%.2f it/s", r) end
  return string.format("%.2f s/it", 1 / r)
end

-- new(total, {desc=, enabled=nil (auto), width=25, stream=io.stderr, min_interval=0.1,
--   display=nil, clock=velua.now})
function M.new(total, opts)
  if total ~= nil and (type(total) ~= "number" or total < 0) then
    error("progress.new: total must be a non-negative number or nil, got " .. tostring(total), 2)
  end
  local o = options.check("progress.new", opts, {
    desc = "", enabled = options.NONE, width = 25, stream = options.NONE, min_interval = 0.1,
    display = options.NONE, clock = options.NONE })
  local self = setmetatable({ total = total, n = 0, desc = o.desc, width = o.width,
    stream = o.stream or io.stderr, min_interval = o.min_interval, clock = o.clock or core.now,
    display = o.display or default_display, postfix = nil, closed = false }, Bar)
  if o.enabled == nil then
    -- interactive: a notebook display, or stderr (fd 2) on a terminal
    self.enabled = self.display ~= nil or (o.stream == nil and core.isatty(2))
  else
    self.enabled = o.enabled and true or false
  end
  self.start = self.clock()
  self.last_draw = -math.huge
  return self
end

function Bar:render()
  local elapsed = self.clock() - self.start
  local rate = elapsed > 0 and self.n / elapsed or nil
  local post = ""
  if self.postfix then
    local keys = {}
    for k in pairs(self.postfix) do keys[#keys + 1] = k end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do
      local v = self.postfix[k]
      parts[#parts + 1] = k .. "=" .. (type(v) == "number" and string.format("%.4g", v) or tostring(v))
    end
    post = ", " .. table.concat(parts, ", ")
  end
  local prefix = self.desc ~= "" and (self.desc .. ": ") or ""
  if self.total and self.total > 0 then
    local frac = math.min(self.n / self.total, 1)
    local filled = math.floor(frac * self.width + 0.5)
    local eta = (rate and rate > 0) and (self.total - self.n) / rate or nil
    return string.format("%s%3d%%|%s%s| %d/%d [%s<%s, %s%s]", prefix, math.floor(frac * 100),
      string.rep("#", filled), string.rep(".", self.width - filled), self.n, self.total,
      fmt_time(elapsed), fmt_time(eta), fmt_rate(rate), post)
  end
  return string.format("%s%d [%s, %s%s]", prefix, self.n, fmt_time(elapsed), fmt_rate(rate), post)
end

function Bar:draw(force)
  if not self.enabled then return end
  local t = self.clock()
  if not force and t - self.last_draw < self.min_interval then return end
  self.last_draw = t
  local line = self:render()
  if self.display then self.display(line, self.closed)
  else
    self.stream:write("\r" .. line .. "\27[K")
    self.stream:flush()
  end
end

-- update([k=1] [, postfix]): k more items done; postfix values (e.g. {loss = 0.3}) are shown
function Bar:update(k, postfix)
  if self.closed then error("progress: update after close", 2) end
  if type(k) == "table" then k, postfix = 1, k end
  self.n = self.n + (k or 1)
  if postfix then self.postfix = postfix end
  self:draw(self.total ~= nil and self.n >= self.total)
end

function Bar:close()
  if self.closed then return end
  self.closed = true
  if self.enabled then
    self.last_draw = -math.huge
    self:draw(true)
    if not self.display then self.stream:write("\n") self.stream:flush() end
  end
end
Bar.__close = Bar.close

-- range(n [, opts]): iterates 1..n with a bar
function M.range(n, opts)
  local bar = M.new(n, opts)
  local i = 0
  return function()
    if i > 0 then bar:update(1) end
    i = i + 1
    if i > n then bar:close() return nil end
    return i
  end
end

return M
