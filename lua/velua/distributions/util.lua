-- Helpers shared by the distribution classes: parameter conversion, the (n, {gen=}) arguments
-- of samplers, and a minimal class constructor.
local core = require "velua.core"
local options = require "velua.options"

local U = {}

function U.setup(T)
  U.T = T
  return U
end

-- The floating dtype parameters are computed in: f64 if any tensor argument is f64, else f32
-- (the default dtype) — as for binary operations between tensors and Lua numbers.
function U.float_dtype(...)
  local T = U.T
  for i = 1, select("#", ...) do
    local x = select(i, ...)
    if T.is_tensor(x) and x:dtype() == "f64" then return "f64" end
  end
  return T.default_dtype()
end

-- A parameter as a floating tensor of dtype dt: numbers become 0-d tensors; integer or bool
-- tensors are converted; floating tensors pass through unchanged (their graph is kept).
function U.param(fname, what, x, dt)
  local T = U.T
  if type(x) == "number" then return T.full({}, x, { dtype = dt }) end
  if not T.is_tensor(x) then
    error(string.format("%s: %s must be a tensor or a number, got %s", fname, what, type(x)), 3)
  end
  local xd = x:dtype()
  if xd ~= "f32" and xd ~= "f64" then return x:to(dt) end
  return x
end

-- Errors unless every element of x satisfies pred (a function of a tensor giving a bool tensor).
function U.check(fname, what, x, pred)
  local T = U.T
  local bad = T.no_grad(function() return pred(x):logical_not():any():item() end)
  if bad then error(string.format("%s: %s", fname, what), 3) end
end

-- Parses the arguments of rsample/sample: ([n] [, {gen=}]). Returns n (or nil) and the generator.
function U.sample_args(fname, n, opts)
  local T = U.T
  if type(n) == "table" and not T.is_tensor(n) then n, opts = nil, n end
  local o = options.check(fname, opts, { gen = options.NONE })
  if n ~= nil and (math.type(n) ~= "integer" or n < 1) then
    error(fname .. ": n must be a positive integer, got " .. tostring(n), 3)
  end
  local g = o.gen or T.default_generator()
  if getmetatable(g) ~= core.generator_metatable then
    error(fname .. ": option gen must be a generator (T.generator(seed)), got " .. type(g), 3)
  end
  return n, g
end

-- {n, shape...} when n is given, else a copy of shape.
function U.with_n(n, shape, ...)
  local s = {}
  if n then s[1] = n end
  for _, v in ipairs(shape) do s[#s + 1] = v end
  for i = 1, select("#", ...) do s[#s + 1] = select(i, ...) end
  return s
end

-- Shape of the broadcast of tensors.
function U.broadcast(...)
  local T = U.T
  local shape = nil
  for i = 1, select("#", ...) do
    local x = select(i, ...)
    if T.is_tensor(x) then
      shape = shape and core.broadcast_shapes(core.full(shape, 0, { dtype = "bool" }), x) or x:shape()
    end
  end
  return shape or {}
end

-- A class table: instances are tables with this metatable; tostring shows name and shape.
function U.class(name)
  local T = U.T
  local c = { __name = name }
  c.__index = c
  c.__tostring = function(d)
    local s = d.batch_shape and "batch_shape={" .. table.concat(d.batch_shape, ",") .. "}" or ""
    if d.event_dim then s = s .. (s ~= "" and ", " or "") .. "d=" .. d.event_dim end
    return name .. "(" .. s .. ")"
  end
  -- sample: rsample without recording gradients (discrete distributions override it)
  function c.sample(self, n, opts)
    return T.no_grad(function() return self:rsample(n, opts) end)
  end
  return c
end

return U
