-- velua.tensor: the public tensor API. Primitives come from the C core (table P); everything
-- else (mean, var, softmax, cdist, cat, ...) is composed from them here, so that autodiff can
-- wrap the primitives in one place (P) without touching the compositions.
local core = require "velua.core"
local options = require "velua.options"

local T = {}
local M = {}   -- tensor methods
local mt = core.tensor_metatable

-- The primitive table: one entry per C operation. Methods and compositions look entries up
-- in P at call time, so replacing P.add (as autodiff does) changes every caller.
local P = {}
T.primitives = P
for _, name in ipairs {
  -- elementwise
  "add", "sub", "mul", "div", "pow", "maximum", "minimum", "atan2", "fmod",
  "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
  "neg", "exp", "log", "log1p", "expm1", "sqrt", "abs", "sign", "relu", "sigmoid", "tanh",
  "softplus", "lgamma", "digamma", "sin", "cos", "floor", "ceil", "round", "reciprocal",
  "square", "logical_not", "isnan", "trigamma", "clamp", "where",
  -- reductions
  "sum", "prod", "max", "min", "argmax", "argmin", "any", "all",
  -- linear algebra, indexing
  "matmul", "linear", "index", "gather", "nonzero",
  -- views and copies
  "transpose", "permute", "select", "narrow", "reshape", "view", "expand", "unsqueeze",
  "squeeze", "contiguous", "clone", "to", "t",
  -- in place
  "add_", "sub_", "mul_", "div_", "pow_", "maximum_", "minimum_", "clamp_", "fill_", "copy_",
  "index_add_", "scatter_add_",
} do
  P[name] = assert(core[name], name)
end

local DEFAULT_DTYPE = "f32"
T.default_dtype = function() return DEFAULT_DTYPE end

local function is_tensor(x) return core.is_tensor(x) end
T.is_tensor = is_tensor

-- Splits creator arguments into (shape table, options): f(3, 4, opts) or f({3, 4}, opts).
local function shape_and_opts(fname, ...)
  local first = ...
  if type(first) == "table" and not is_tensor(first) then
    local n = select("#", ...)
    if n > 2 then error(fname .. ": expected (shape, options), got " .. n .. " arguments", 3) end
    return first, (select(2, ...))
  end
  local shape, opts = {}, nil
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "number" then shape[#shape + 1] = v
    elseif type(v) == "table" and i == select("#", ...) then opts = v
    elseif v ~= nil then
      error(string.format("%s: bad argument #%d (size or options table expected, got %s)",
        fname, i, type(v)), 3)
    end
  end
  return shape, opts
end
T._shape_and_opts = shape_and_opts

local dtype_opts = { dtype = DEFAULT_DTYPE }

-- ---------- creation ----------

function T.tensor(data, opts)
  if is_tensor(data) then
    local o = options.check("tensor", opts, { dtype = options.NONE })
    return o.dtype and P.to(data, o.dtype) or P.clone(data)
  end
  local o = options.check("tensor", opts, { dtype = options.NONE })
  return core.from_table(data, o)
end

function T.empty(...)
  local shape, opts = shape_and_opts("empty", ...)
  return core.empty(shape, options.check("empty", opts, dtype_opts))
end

function T.zeros(...)
  local shape, opts = shape_and_opts("zeros", ...)
  return core.full(shape, 0, options.check("zeros", opts, dtype_opts))
end

function T.ones(...)
  local shape, opts = shape_and_opts("ones", ...)
  return core.full(shape, 1, options.check("ones", opts, dtype_opts))
end

-- full(shape, value [, opts]); shape is a table
function T.full(shape, value, opts)
  if type(shape) == "number" then shape = { shape } end
  local def = type(value) == "boolean" and "bool" or DEFAULT_DTYPE
  return core.full(shape, value, options.check("full", opts, { dtype = def }))
end

function T.zeros_like(t, opts)
  return core.full(P.shape and P.shape(t) or core.shape(t), 0,
    options.check("zeros_like", opts, { dtype = core.dtype(t) }))
end

function T.ones_like(t, opts)
  return core.full(core.shape(t), 1, options.check("ones_like", opts, { dtype = core.dtype(t) }))
end

function T.full_like(t, value, opts)
  return core.full(core.shape(t), value, options.check("full_like", opts, { dtype = core.dtype(t) }))
end

-- arange(n): 0, 1, ..., n-1; arange(a, b [, step]): a, a+step, ... < b (as in PyTorch).
-- Integer arguments give i64, fractional ones f32, unless opts.dtype says otherwise.
function T.arange(a, b, step, opts)
  if type(b) == "table" then b, opts = nil, b end
  if type(step) == "table" then step, opts = nil, step end
  if b == nil then a, b = 0, a end
  local o = options.check("arange", opts, { dtype = options.NONE })
  return core.arange(a, b, step, o)
end

function T.linspace(a, b, n, opts)
  return core.linspace(a, b, n, options.check("linspace", opts, dtype_opts))
end

function T.eye(n, m, opts)
  if type(m) == "table" then m, opts = nil, m end
  local o = options.check("eye", opts, dtype_opts)
  if m then return core.eye(n, m, o) end
  return core.eye(n, o)
end

-- Converts a number, a boolean or a nested table to a tensor; tensors pass through.
function T.as_tensor(x, opts)
  if is_tensor(x) then return x end
  return T.tensor(x, opts)
end

-- ---------- composed operations ----------

local function numel_along(t, dim)
  if dim == nil then return core.numel(t) end
  return core.size(t, dim)
end

local function to_float(t)
  local dt = core.dtype(t)
  if dt == "f32" or dt == "f64" then return t end
  return P.to(t, DEFAULT_DTYPE)
end

-- Reduce-then-restore: reductions over all elements with keepdim give a shape of ones.
function M.mean(t, dim, keepdim)
  t = to_float(t)
  return P.div(P.sum(t, dim, keepdim), numel_along(t, dim))
end

-- Variance, unbiased by default (as PyTorch); var(dim, keepdim, {unbiased=false}) for the
-- population variance.
function M.var(t, dim, keepdim, opts)
  if type(dim) == "table" then dim, keepdim, opts = nil, nil, dim end
  if type(keepdim) == "table" then keepdim, opts = nil, keepdim end
  local o = options.check("var", opts, { unbiased = true })
  t = to_float(t)
  local n = numel_along(t, dim)
  local d = P.sub(t, M.mean(t, dim, true))
  local ss = P.sum(P.mul(d, d), dim, keepdim)
  return P.div(ss, o.unbiased and (n - 1) or n)
end

function M.std(t, dim, keepdim, opts)
  return P.sqrt(M.var(t, dim, keepdim, opts))
end

-- norm([p=2] [, dim [, keepdim]]): p-norm over dim (all elements when dim is nil).
function M.norm(t, p, dim, keepdim)
  p = p or 2
  t = to_float(t)
  if p == 2 then return P.sqrt(P.sum(P.mul(t, t), dim, keepdim)) end
  if p == 1 then return P.sum(P.abs(t), dim, keepdim) end
  if p == math.huge then return (P.max(P.abs(t), dim, keepdim)) end
  if type(p) ~= "number" or p <= 0 then error("norm: p must be a positive number, got " .. tostring(p), 2) end
  return P.pow(P.sum(P.pow(P.abs(t), p), dim, keepdim), 1 / p)
end

-- logsumexp(dim, keepdim): log(sum(exp(x))) computed stably (the max is a constant shift).
function M.logsumexp(t, dim, keepdim)
  t = to_float(t)
  local m = P.max(t, dim, true)
  m = P.where(P.isnan(P.sub(m, m)), 0, m) -- +/-inf rows shift by 0
  m = core.clone(m) -- a constant: no gradient flows through the shift
  local s = P.log(P.sum(P.exp(P.sub(t, m)), dim, true))
  local r = P.add(s, m)
  if not keepdim then
    if dim == nil then r = P.reshape(r, {}) else r = P.squeeze(r, dim) end
  end
  return r
end

local function last_dim(t) return core.dim(t) > 0 and -1 or nil end

function M.softmax(t, dim)
  dim = dim or last_dim(t)
  t = to_float(t)
  local m = core.clone(P.max(t, dim, true))
  local e = P.exp(P.sub(t, m))
  return P.div(e, P.sum(e, dim, true))
end

function M.log_softmax(t, dim)
  dim = dim or last_dim(t)
  return P.sub(t, M.logsumexp(t, dim, true))
end

-- normalize([dim=last] [, eps=1e-12]): x / max(||x||_2, eps) along dim.
function M.normalize(t, dim, eps)
  dim = dim or last_dim(t)
  local n = M.norm(t, 2, dim, true)
  return P.div(t, P.clamp(n, eps or 1e-12, nil))
end

-- cdist(a, b): Euclidean distances between the rows of a [n, d] and b [m, d] -> [n, m]
-- (leading batch dims broadcast). Uses |a|^2 + |b|^2 - 2 a.b, clamped at 0.
function T.cdist(a, b)
  local na = P.sum(P.mul(a, a), -1, true)
  local nb = P.sum(P.mul(b, b), -1, true)
  local ab = P.matmul(a, P.transpose(b, -1, -2))
  local d2 = P.add(P.sub(na, P.mul(ab, 2)), P.transpose(nb, -1, -2))
  return P.sqrt(P.clamp(d2, 0, nil))
end

-- cosine_similarity(a, b [, dim=last] [, eps=1e-8]): a.b / (max(|a|, eps) max(|b|, eps)).
function T.cosine_similarity(a, b, dim, eps)
  dim = dim or -1
  eps = eps or 1e-8
  -- dim counts in the broadcast shape, as PyTorch
  local shape = core.broadcast_shapes(a, b)
  a, b = P.expand(a, shape), P.expand(b, shape)
  local na = P.clamp(M.norm(a, 2, dim, false), eps, nil)
  local nb = P.clamp(M.norm(b, 2, dim, false), eps, nil)
  return P.div(P.div(P.sum(P.mul(a, b), dim, false), na), nb)
end

-- cat(list, [dim=1]): concatenation along an existing dim.
function T.cat(list, dim)
  if type(list) ~= "table" or #list == 0 then error("cat: expected a non-empty list of tensors", 2) end
  dim = dim or 1
  local first = list[1]
  if not is_tensor(first) then error("cat: element 1 is not a tensor", 2) end
  local nd = core.dim(first)
  if nd == 0 then error("cat: zero-dimensional tensors cannot be concatenated (use stack)", 2) end
  local d = dim < 0 and dim + nd + 1 or dim
  if d < 1 or d > nd then error(string.format("cat: dim %d out of range for %d-d tensors", dim, nd), 2) end
  local shape = core.shape(first)
  local dtype = core.dtype(first)
  local total = 0
  for i, t in ipairs(list) do
    if not is_tensor(t) then error("cat: element " .. i .. " is not a tensor", 2) end
    local s = core.shape(t)
    if #s ~= nd then
      error(string.format("cat: tensor %d has %d dims, tensor 1 has %d", i, #s, nd), 2)
    end
    for k = 1, nd do
      if k ~= d and s[k] ~= shape[k] then
        error(string.format("cat: tensor %d has size %d in dim %d, tensor 1 has %d", i, s[k], k,
          shape[k]), 2)
      end
    end
    total = total + s[d]
    local dt = core.dtype(t)
    if dt ~= dtype then
      local rank = { bool = 0, i64 = 1, f32 = 2, f64 = 3 }
      if rank[dt] > rank[dtype] then dtype = dt end
    end
  end
  shape[d] = total
  local out = core.empty(shape, { dtype = dtype })
  local offset = 1
  for _, t in ipairs(list) do
    local n = core.size(t, d)
    if n > 0 then core.copy_(core.narrow(out, d, offset, n), t) end
    offset = offset + n
  end
  return out
end

-- stack(list, [dim=1]): joins tensors of one shape along a new dim.
function T.stack(list, dim)
  if type(list) ~= "table" or #list == 0 then error("stack: expected a non-empty list of tensors", 2) end
  dim = dim or 1
  local parts = {}
  for i, t in ipairs(list) do
    if not is_tensor(t) then error("stack: element " .. i .. " is not a tensor", 2) end
    parts[i] = P.unsqueeze(t, dim)
  end
  return T.cat(parts, dim)
end

function M.flatten(t) return P.reshape(t, -1) end
function M.zero_(t) return P.fill_(t, 0) end
function M.float(t) return P.to(t, "f32") end
function M.double(t) return P.to(t, "f64") end
function M.long(t) return P.to(t, "i64") end
function M.bool(t) return P.to(t, "bool") end
function M.type_as(t, other) return P.to(t, core.dtype(other)) end
function M.mT(t) return P.transpose(t, -1, -2) end

-- ---------- methods from the primitives ----------

local passthrough = {
  "shape", "stride", "size", "dim", "numel", "dtype", "is_contiguous", "get", "set", "item",
  "totable", "free", "is_freed",
}
for _, name in ipairs(passthrough) do M[name] = core[name] end

for name, fn in pairs(P) do
  if M[name] == nil then M[name] = fn end
end

-- T.<op>(a, b) for every primitive and composition, as in torch.<op>.
for name, fn in pairs(M) do
  if T[name] == nil then T[name] = fn end
end

-- Replaces primitive `name` everywhere it is exposed (P, the methods and T), e.g. by a
-- version that records autodiff. Methods call the C functions directly, without a Lua
-- wrapper, so error messages name the method the user called.
function T.set_primitive(name, fn)
  if P[name] == nil then error("set_primitive: unknown primitive '" .. tostring(name) .. "'", 2) end
  local old = P[name]
  P[name] = fn
  if M[name] == old then M[name] = fn end
  if T[name] == old then T[name] = fn end
  return old
end

-- ---------- metatable: methods, operators, indexing ----------

local select_ = core.select
mt.__index = function(t, k)
  if type(k) == "number" then return select_(t, 1, k) end
  return M[k]
end
mt.__newindex = function(t, k, v)
  if type(k) ~= "number" then error("tensor: cannot set field '" .. tostring(k) .. "'", 2) end
  if M.needs_grad and M.needs_grad(t) and T.is_grad_enabled() then
    error("tensor: in-place write into a tensor that requires grad; use T.no_grad", 2)
  end
  local view = select_(t, 1, k)
  if is_tensor(v) then core.copy_(view, v) else core.fill_(view, v) end
end
mt.__add = function(a, b) return P.add(a, b) end
mt.__sub = function(a, b) return P.sub(a, b) end
mt.__mul = function(a, b) return P.mul(a, b) end
mt.__div = function(a, b) return P.div(a, b) end
mt.__pow = function(a, b) return P.pow(a, b) end
mt.__unm = function(a) return P.neg(a) end
mt.__len = function(t)
  if core.dim(t) == 0 then error("len() of a 0-d tensor", 2) end
  return core.size(t, 1)
end
mt.__close = function(t) core.free(t) end
mt.__tostring = function(t) return require("velua.tensor_print").format(t) end
mt.__name = "velua.Tensor"

T.methods = M

-- Random numbers and sparse matrices extend T; autodiff wraps the primitives last.
require("velua.random").install(T, core)
require("velua.sparse").install(T, core)
-- T.matmul(sparse, dense) dispatches to the sparse product
function T.matmul(a, b)
  if T.is_sparse(a) then return a:matmul(b) end
  return P.matmul(a, b)
end
require("velua.autograd").install(T)

return T
