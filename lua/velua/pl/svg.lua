-- Minimal SVG writer: elements appended in order, numbers printed with fixed precision so
-- that output is deterministic, text escaped.
local M = {}
M.__index = M

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end
M.escape = esc

local function num(x)
  if x ~= x or x == math.huge or x == -math.huge then return "0" end
  local s = string.format("%.2f", x)
  s = s:gsub("0+$", ""):gsub("%.$", "")
  if s == "-0" then s = "0" end
  return s
end
M.num = num

function M.new(width, height)
  return setmetatable({ width = width, height = height, parts = {} }, M)
end

local function attrs(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do
    local v = t[k]
    out[#out + 1] = string.format(' %s="%s"', k:gsub("_", "-"), type(v) == "number" and num(v) or esc(v))
  end
  return table.concat(out)
end

function M:add(raw) self.parts[#self.parts + 1] = raw end
function M:el(name, a, body)
  if body then self:add("<" .. name .. attrs(a) .. ">" .. body .. "</" .. name .. ">")
  else self:add("<" .. name .. attrs(a) .. "/>") end
end
function M:line(x1, y1, x2, y2, a)
  a = a or {}
  a.x1, a.y1, a.x2, a.y2 = x1, y1, x2, y2
  self:el("line", a)
end
function M:rect(x, y, w, h, a)
  a = a or {}
  a.x, a.y, a.width, a.height = x, y, w, h
  self:el("rect", a)
end
function M:circle(x, y, r, a)
  a = a or {}
  a.cx, a.cy, a.r = x, y, r
  self:el("circle", a)
end
function M:text(x, y, s, a)
  a = a or {}
  a.x, a.y = x, y
  a.font_family = a.font_family or "DejaVu Sans, Arial, sans-serif"
  a.font_size = a.font_size or 11
  self:el("text", a, esc(s))
end
function M:polyline(xs, ys, a)
  local pts = {}
  for i = 1, #xs do pts[i] = num(xs[i]) .. "," .. num(ys[i]) end
  a = a or {}
  a.points = table.concat(pts, " ")
  a.fill = a.fill or "none"
  self:el("polyline", a)
end
function M:group_open(a) self:add("<g" .. attrs(a or {}) .. ">") end
function M:group_close() self:add("</g>") end

function M:render()
  return string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s">\n',
    num(self.width), num(self.height), num(self.width), num(self.height))
    .. '<rect width="100%" height="100%" fill="white"/>\n' .. table.concat(self.parts, "\n") .. "\n</svg>\n"
end

return M
