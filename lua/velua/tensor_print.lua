-- Printing tensors like PyTorch: nested brackets, a common number format per tensor, the
-- middle of long dims elided, and the shape and dtype at the end.
local core = require "velua.core"

local M = {}
local THRESHOLD = 1000 -- more elements than this are summarised
local EDGE = 3         -- items kept at each end of a summarised dim
local ELIDED = setmetatable({}, { __name = "elided" }) -- marks the "..." of a summarised dim

-- Positions printed along a dim of size n (ELIDED marks the elision).
local function positions(n, summarise)
  local out = {}
  if summarise and n > 2 * EDGE then
    for i = 1, EDGE do out[#out + 1] = i end
    out[#out + 1] = ELIDED
    for i = n - EDGE + 1, n do out[#out + 1] = i end
  else
    for i = 1, n do out[#out + 1] = i end
  end
  return out
end

-- Collects the printed values (as Lua values) in a nested structure.
local function collect(t, summarise, values)
  local nd = core.dim(t)
  if nd == 0 then
    local v = core.item(t)
    values[#values + 1] = v
    return v
  end
  local node = {}
  for _, i in ipairs(positions(core.size(t, 1), summarise)) do
    if i == ELIDED then node[#node + 1] = ELIDED
    else node[#node + 1] = collect(core.select(t, 1, i), summarise, values) end
  end
  return node
end

local function number_format(values, dtype)
  if dtype == "bool" then return function(v) return tostring(v) end end
  if dtype == "i64" then return function(v) return string.format("%d", v) end end
  local all_int, maxabs, minabs = true, 0, math.huge
  for _, v in ipairs(values) do
    if v == v and v ~= math.huge and v ~= -math.huge then
      local a = math.abs(v)
      if v ~= math.floor(v) then all_int = false end
      if a > maxabs then maxabs = a end
      if a > 0 and a < minabs then minabs = a end
    end
  end
  local fmt
  if all_int and maxabs < 1e8 then
    return function(v)
      if v ~= v then return "nan" elseif v == math.huge then return "inf"
      elseif v == -math.huge then return "-inf" end
      return string.format("%.0f.", v)
    end
  elseif maxabs >= 1e8 or (minabs < 1e-4) or (minabs < math.huge and maxabs / minabs > 1e3) then
    fmt = "%.4e"
  else
    fmt = "%.4f"
  end
  return function(v)
    if v ~= v then return "nan" elseif v == math.huge then return "inf"
    elseif v == -math.huge then return "-inf" end
    return string.format(fmt, v)
  end
end

local function render(node, depth, fmt, width, indent)
  if type(node) ~= "table" then
    local s = fmt(node)
    return string.rep(" ", width - #s) .. s
  end
  local parts = {}
  for _, child in ipairs(node) do
    if child == ELIDED then parts[#parts + 1] = "..."
    else parts[#parts + 1] = render(child, depth + 1, fmt, width, indent) end
  end
  local inner
  if #node == 0 or type(node[1]) ~= "table" then
    inner = table.concat(parts, ", ")
  else
    local pad = string.rep(" ", indent + depth + 1)
    local sep = ",\n" .. pad
    -- blank lines between blocks of 3-d and higher tensors, as PyTorch
    local depth_left = 0
    local probe = node[1]
    while type(probe) == "table" do depth_left = depth_left + 1; probe = probe[1] end
    if depth_left >= 2 then sep = ",\n\n" .. pad end
    inner = table.concat(parts, sep)
  end
  return "[" .. inner .. "]"
end

local function shape_str(t)
  return "{" .. table.concat(core.shape(t), ",") .. "}"
end

function M.format(t)
  if core.is_freed(t) then return "tensor(<freed>)" end
  local dtype = core.dtype(t)
  local summarise = core.numel(t) > THRESHOLD
  local values = {}
  local node = collect(t, summarise, values)
  local fmt = number_format(values, dtype)
  local width = 0
  for _, v in ipairs(values) do width = math.max(width, #fmt(v)) end
  local body
  if core.dim(t) == 0 then body = fmt(node)
  else body = render(node, 0, fmt, width, #"tensor(") end
  return string.format("tensor(%s, shape=%s, dtype=%s)", body, shape_str(t), dtype)
end

return M
