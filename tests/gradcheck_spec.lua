-- Every differentiable primitive of T.primitives and every differentiable composition, checked
-- against central finite differences in f64 (relative error < 1e-6) from one table. A last
-- test enumerates T.primitives: a primitive that is neither checked here nor listed as
-- non-differentiable fails it, so a new primitive cannot land without its check.
local T = require("velua").tensor
local gradcheck = require "velua.gradcheck"

math.randomseed(20240611)

-- Nested table of the given shape filled by gen() (a number for shape {}).
local function nested(shape, gen, d)
  d = d or 1
  if d > #shape then return gen() end
  local t = {}
  for i = 1, shape[d] do t[i] = nested(shape, gen, d + 1) end
  return t
end

local function uniform(lo, hi) return function() return lo + (hi - lo) * math.random() end end
-- |value| in [lo, hi] with a random sign: away from 0
local function away(lo, hi)
  return function()
    local v = lo + (hi - lo) * math.random()
    return math.random() < 0.5 and -v or v
  end
end

-- f64 leaf requiring grad with values from gen (default uniform in [-2, 2])
local function G(shape, gen)
  return T.tensor(nested(shape, gen or uniform(-2, 2)), { dtype = "f64" }):requires_grad()
end
-- the same without grad (constants)
local function C(shape, gen)
  return T.tensor(nested(shape, gen or uniform(-2, 2)), { dtype = "f64" })
end
local function I(t) return T.tensor(t, { dtype = "i64" }) end
local function mask(shape)
  return T.tensor(nested(shape, function() return math.random() < 0.5 end), { dtype = "bool" })
end

local pos = uniform(0.5, 3)
local nz = away(0.5, 2)

-- fmod operands away from the discontinuities: a = b * (q + f) with f in [0.2, 0.8]
local function fmod_inputs()
  local bvals = nested({ 4 }, uniform(0.7, 1.5))
  local avals = nested({ 3, 4 }, function() return 0 end)
  for i = 1, 3 do
    for j = 1, 4 do
      local q = math.random(0, 3) + 0.2 + 0.6 * math.random()
      avals[i][j] = (math.random() < 0.5 and -1 or 1) * bvals[j] * q
    end
  end
  return T.tensor(avals, { dtype = "f64" }):requires_grad(),
    T.tensor(bvals, { dtype = "f64" }):requires_grad()
end

-- clamp inputs away from the kinks at -0.5 and 0.5
local function clamp_gen()
  local v = 0.05 + 1.5 * math.random()
  if v > 0.45 and v < 0.55 then v = v + 0.2 end
  return math.random() < 0.5 and -v or v
end

-- cdist where row 2 of a equals row 3 of b: the distance between them is 0.
local function cdist_zero_inputs()
  local a = nested({ 4, 3 }, uniform(-2, 2))
  local b = nested({ 5, 3 }, uniform(-2, 2))
  for k = 1, 3 do b[3][k] = a[2][k] end
  return a, b
end

-- Each case: op = the primitive (P) or composition it checks, a label, fn and its inputs.
-- Inputs that require grad are checked; others are constants.
local cases = {
  -- elementwise binary, with broadcasting {3,1,4} against {2,4} and scalar operands
  { op = "add", "broadcast", function(a, b) return a + b end, { G { 3, 1, 4 }, G { 2, 4 } } },
  { op = "add", "scalar", function(a) return T.add(2.5, a) end, { G { 3, 4 } } },
  { op = "sub", "broadcast", function(a, b) return a - b end, { G { 3, 1, 4 }, G { 2, 4 } } },
  { op = "sub", "scalar minus tensor", function(a) return T.sub(1, a) end, { G { 2, 3 } } },
  { op = "mul", "broadcast", function(a, b) return a * b end, { G { 3, 1, 4 }, G { 2, 4 } } },
  { op = "mul", "0-d times 1-d", function(a, b) return a * b end, { G {}, G { 3 } } },
  { op = "mul", "one side constant", function(a, b) return a * b end, { G { 2, 3 }, C { 3 } } },
  { op = "div", "broadcast", function(a, b) return a / b end, { G { 3, 1, 4 }, G({ 2, 4 }, nz) } },
  { op = "div", "scalar over tensor", function(a) return T.div(2, a) end, { G({ 5 }, nz) } },
  { op = "pow", "tensor exponent", function(a, p) return a ^ p end,
    { G({ 3, 4 }, pos), G({ 4 }, uniform(-1.5, 2)) } },
  { op = "pow", "scalar exponent", function(a) return a ^ 2.5 end, { G({ 2, 3 }, pos) } },
  { op = "pow", "integer exponent, negative base", function(a) return a ^ 3 end, { G { 2, 3 } } },
  { op = "pow", "scalar base", function(p) return T.pow(2.5, p) end, { G { 2, 3 } } },
  { op = "maximum", "broadcast", function(a, b) return T.maximum(a, b) end,
    { G { 3, 1, 4 }, G { 2, 4 } } },
  { op = "maximum", "scalar", function(a) return T.maximum(a, 0.3) end, { G { 7 } } },
  { op = "minimum", "broadcast", function(a, b) return T.minimum(a, b) end,
    { G { 3, 1, 4 }, G { 2, 4 } } },
  { op = "atan2", "broadcast", function(y, x) return T.atan2(y, x) end,
    { G { 3, 1, 4 }, G({ 2, 4 }, nz) } },
  { op = "fmod", "broadcast", function(a, b) return T.fmod(a, b) end, { fmod_inputs() } },
  { op = "fmod", "scalar divisor", function(a) return T.fmod(a, 1.5) end,
    { G({ 6 }, function() return (math.random(0, 2) + 0.2 + 0.6 * math.random()) * 1.5 end) } },

  -- elementwise unary
  { op = "neg", "", function(a) return -a end, { G { 2, 3, 4 } } },
  { op = "exp", "", function(a) return a:exp() end, { G { 2, 3, 4 } } },
  { op = "log", "positive", function(a) return a:log() end, { G({ 2, 3, 4 }, pos) } },
  { op = "log1p", "positive", function(a) return a:log1p() end, { G({ 2, 3, 4 }, pos) } },
  { op = "expm1", "", function(a) return a:expm1() end, { G { 2, 3, 4 } } },
  { op = "sqrt", "positive", function(a) return a:sqrt() end, { G({ 2, 3, 4 }, pos) } },
  { op = "abs", "away from 0", function(a) return a:abs() end, { G({ 2, 3, 4 }, nz) } },
  { op = "relu", "away from 0", function(a) return a:relu() end, { G({ 2, 3, 4 }, nz) } },
  { op = "sigmoid", "", function(a) return a:sigmoid() end, { G({ 2, 3, 4 }, uniform(-5, 5)) } },
  { op = "tanh", "", function(a) return a:tanh() end, { G({ 2, 3, 4 }, uniform(-3, 3)) } },
  { op = "softplus", "", function(a) return a:softplus() end,
    { G({ 2, 3, 4 }, uniform(-25, 25)) } },
  { op = "lgamma", "positive", function(a) return a:lgamma() end,
    { G({ 3, 4 }, uniform(0.3, 6)) } },
  { op = "digamma", "positive", function(a) return a:digamma() end,
    { G({ 3, 4 }, uniform(0.3, 6)) } },
  { op = "sin", "", function(a) return a:sin() end, { G { 2, 3, 4 } } },
  { op = "cos", "", function(a) return a:cos() end, { G { 2, 3, 4 } } },
  { op = "reciprocal", "away from 0", function(a) return a:reciprocal() end, { G({ 2, 3, 4 }, nz) } },
  { op = "square", "", function(a) return a:square() end, { G { 2, 3, 4 } } },
  { op = "clamp", "both bounds", function(a) return a:clamp(-0.5, 0.5) end, { G({ 4, 5 }, clamp_gen) } },
  { op = "clamp", "lower bound", function(a) return a:clamp(-0.5) end, { G({ 4, 5 }, clamp_gen) } },
  { op = "clamp", "upper bound", function(a) return a:clamp(nil, 0.5) end, { G({ 4, 5 }, clamp_gen) } },
  { op = "where", "broadcast", function(c, a, b) return T.where(c, a, b) end,
    { mask { 3, 2, 4 }, G { 3, 1, 4 }, G { 2, 4 } } },
  { op = "where", "scalar branch", function(c, a) return T.where(c, a, 0) end,
    { mask { 3, 4 }, G { 3, 4 } } },

  -- reductions
  { op = "sum", "all", function(a) return a:sum() end, { G { 2, 3, 4 } } },
  { op = "sum", "dim", function(a) return a:sum(2) end, { G { 2, 3, 4 } } },
  { op = "sum", "dim keepdim", function(a) return a:sum(2, true) end, { G { 2, 3, 4 } } },
  { op = "sum", "negative dim", function(a) return a:sum(-2) end, { G { 2, 3, 4 } } },
  { op = "sum", "all keepdim", function(a) return a:sum(nil, true) end, { G { 2, 3 } } },
  { op = "prod", "all", function(a) return a:prod() end, { G({ 2, 3 }, away(0.5, 1.5)) } },
  { op = "prod", "dim", function(a) return a:prod(2) end, { G({ 2, 3, 4 }, nz) } },
  { op = "prod", "dim keepdim", function(a) return a:prod(1, true) end, { G({ 3, 4 }, nz) } },
  { op = "prod", "with one zero element", function(a) return a:prod(2) end,
    { T.tensor({ { 1.5, 0, -2 }, { 0.5, 2, 3 } }, { dtype = "f64" }):requires_grad() } },
  { op = "max", "all", function(a) return a:max() end, { G { 3, 4 } } },
  { op = "max", "dim", function(a) return (a:max(2)) end, { G { 2, 3, 4 } } },
  { op = "max", "dim keepdim", function(a) return (a:max(-1, true)) end, { G { 3, 4 } } },
  { op = "min", "all", function(a) return a:min() end, { G { 3, 4 } } },
  { op = "min", "dim", function(a) return (a:min(1)) end, { G { 3, 4 } } },
  { op = "min", "dim keepdim", function(a) return (a:min(3, true)) end, { G { 2, 3, 4 } } },

  -- matmul
  { op = "matmul", "2-d", function(a, b) return a:matmul(b) end, { G { 3, 4 }, G { 4, 5 } } },
  { op = "matmul", "batched broadcast", function(a, b) return a:matmul(b) end,
    { G { 2, 1, 3, 4 }, G { 3, 4, 2 } } },
  { op = "matmul", "batched times 2-d", function(a, b) return a:matmul(b) end,
    { G { 2, 3, 4 }, G { 4, 2 } } },
  { op = "matmul", "1-d times 2-d", function(a, b) return a:matmul(b) end, { G { 4 }, G { 4, 5 } } },
  { op = "matmul", "2-d times 1-d", function(a, b) return a:matmul(b) end, { G { 3, 4 }, G { 4 } } },
  { op = "matmul", "1-d times 1-d", function(a, b) return a:matmul(b) end, { G { 4 }, G { 4 } } },
  { op = "matmul", "batched times 1-d", function(a, b) return a:matmul(b) end,
    { G { 2, 3, 4 }, G { 4 } } },
  { op = "matmul", "1-d times batched", function(a, b) return a:matmul(b) end,
    { G { 4 }, G { 2, 4, 3 } } },
  { op = "matmul", "one side constant", function(a, b) return a:matmul(b) end,
    { C { 3, 4 }, G { 4, 2 } } },

  -- linear (x w^T + b)
  { op = "linear", "2-d with bias", function(x, w, b) return T.linear(x, w, b) end,
    { G { 3, 4 }, G { 5, 4 }, G { 5 } } },
  { op = "linear", "3-d input", function(x, w, b) return T.linear(x, w, b) end,
    { G { 2, 3, 4 }, G { 2, 4 }, G { 2 } } },
  { op = "linear", "1-d input, no bias", function(x, w) return T.linear(x, w) end,
    { G { 4 }, G { 3, 4 } } },
  { op = "linear", "transposed input, constant weight", function(x, w, b) return T.linear(x:t(), w, b) end,
    { G { 4, 3 }, C { 5, 4 }, G { 5 } } },
  { op = "linear", "constant input", function(x, w, b) return T.linear(x, w, b) end,
    { C { 3, 4 }, G { 5, 4 }, G { 5 } } },

  -- indexing
  { op = "index", "repeated indices", function(a) return a:index(2, I { 3, 1, 3, 2 }) end,
    { G { 2, 3, 4 } } },
  { op = "index", "table of indices", function(a) return a:index(1, { 2, 2, 1 }) end, { G { 3, 4 } } },
  { op = "gather", "dim 2", function(a) return a:gather(2, I { { 1, 3 }, { 2, 2 }, { 4, 1 } }) end,
    { G { 3, 4 } } },
  { op = "gather", "dim 1", function(a) return a:gather(1, I { { 3, 1, 2, 3 } }) end, { G { 3, 4 } } },

  -- views and copies
  { op = "transpose", "", function(a) return a:transpose(1, 3) end, { G { 2, 3, 4 } } },
  { op = "t", "2-d", function(a) return a:t() end, { G { 3, 4 } } },
  { op = "t", "1-d", function(a) return a:t() end, { G { 4 } } },
  { op = "permute", "varargs", function(a) return a:permute(3, 1, 2) end, { G { 2, 3, 4 } } },
  { op = "permute", "table with negative dim", function(a) return a:permute { -1, 1, 2 } end,
    { G { 2, 3, 4 } } },
  { op = "select", "", function(a) return a:select(2, 2) end, { G { 2, 3, 4 } } },
  { op = "select", "negative index", function(a) return a:select(1, -1) end, { G { 3, 4 } } },
  { op = "narrow", "", function(a) return a:narrow(2, 2, 2) end, { G { 2, 4, 3 } } },
  { op = "reshape", "", function(a) return a:reshape(4, 6) end, { G { 2, 3, 4 } } },
  { op = "reshape", "non-contiguous", function(a) return a:t():reshape(-1) end, { G { 3, 4 } } },
  { op = "view", "", function(a) return a:view(3, -1) end, { G { 2, 3, 2 } } },
  { op = "expand", "", function(a) return a:expand(2, 3, 4) end, { G { 3, 1 } } },
  { op = "unsqueeze", "", function(a) return a:unsqueeze(2) end, { G { 3, 4 } } },
  { op = "unsqueeze", "at the end", function(a) return a:unsqueeze(-1) end, { G { 3, 4 } } },
  { op = "squeeze", "all", function(a) return a:squeeze() end, { G { 3, 1, 4, 1 } } },
  { op = "squeeze", "one dim", function(a) return a:squeeze(2) end, { G { 3, 1, 4, 1 } } },
  { op = "contiguous", "of a transpose", function(a) return a:t():contiguous() end, { G { 3, 4 } } },
  { op = "contiguous", "of a contiguous leaf", function(a) return a:contiguous() end, { G { 3, 4 } } },
  { op = "contiguous", "of a contiguous intermediate", function(a) return (a * 2):contiguous() end,
    { G { 3, 4 } } },
  { op = "clone", "", function(a) return a:clone() end, { G { 3, 4 } } },
  { op = "to", "f64 to f64", function(a) return a:to("f64") end, { G { 3, 4 } } },
  { op = "to", "f64 intermediate to f64", function(a) return (a * 2):to("f64") end, { G { 3, 4 } } },
  { op = "to", "through f32", function(a) return a:to("f32"):to("f64") end, { G { 3, 4 } },
    opts = { eps = 1e-3, tol = 1e-3 } },

  -- compositions
  { op = "mean", "all", function(a) return a:mean() end, { G { 3, 4 } } },
  { op = "mean", "dim", function(a) return a:mean(2) end, { G { 2, 3, 4 } } },
  { op = "mean", "dim keepdim", function(a) return a:mean(1, true) end, { G { 3, 4 } } },
  { op = "var", "all", function(a) return a:var() end, { G { 3, 4 } } },
  { op = "var", "dim", function(a) return a:var(2) end, { G { 3, 4 } } },
  { op = "var", "biased keepdim", function(a) return a:var(1, true, { unbiased = false }) end,
    { G { 3, 4 } } },
  { op = "std", "all", function(a) return a:std() end, { G { 3, 4 } } },
  { op = "std", "dim", function(a) return a:std(-1) end, { G { 2, 3, 4 } } },
  { op = "norm", "p=2 all", function(a) return a:norm() end, { G { 3, 4 } } },
  { op = "norm", "p=2 dim", function(a) return a:norm(2, 2) end, { G { 3, 4 } } },
  { op = "norm", "p=1 dim keepdim", function(a) return a:norm(1, 1, true) end, { G({ 3, 4 }, nz) } },
  { op = "norm", "p=3 dim", function(a) return a:norm(3, 2) end, { G({ 3, 4 }, nz) } },
  { op = "norm", "p=3 all", function(a) return a:norm(3) end, { G({ 3, 4 }, nz) } },
  { op = "logsumexp", "dim", function(a) return a:logsumexp(2) end, { G { 3, 4 } } },
  { op = "logsumexp", "dim keepdim", function(a) return a:logsumexp(1, true) end, { G { 3, 4 } } },
  { op = "logsumexp", "all", function(a) return a:logsumexp() end, { G { 3, 4 } } },
  { op = "softmax", "last dim", function(a) return a:softmax() end, { G { 3, 4 } } },
  { op = "softmax", "dim 1", function(a) return a:softmax(1) end, { G { 3, 4 } } },
  { op = "log_softmax", "last dim", function(a) return a:log_softmax() end, { G { 2, 3, 4 } } },
  { op = "log_softmax", "dim 2", function(a) return a:log_softmax(2) end, { G { 2, 3, 4 } } },
  { op = "normalize", "last dim", function(a) return a:normalize() end, { G { 3, 4 } } },
  { op = "normalize", "dim 1", function(a) return a:normalize(1) end, { G { 3, 4 } } },
  { op = "cdist", "", function(a, b) return T.cdist(a, b) end, { G { 4, 3 }, G { 5, 3 } } },
  { op = "cdist", "batched", function(a, b) return T.cdist(a, b) end, { G { 2, 3, 3 }, G { 2, 4, 3 } } },
  { op = "cdist", "rows other than a zero distance", function(a, b, arow, brow)
      return T.cdist(T.cat({ a, arow }, 1), T.cat({ b, brow }, 1))
    end, (function()
      local dup = C { 1, 3 }  -- appended to both a and b: a constant zero distance
      return { G { 3, 3 }, G { 4, 3 }, dup, dup }
    end)() },
  { op = "cosine_similarity", "last dim", function(a, b) return T.cosine_similarity(a, b) end,
    { G { 3, 5 }, G { 3, 5 } } },
  { op = "cosine_similarity", "broadcast, last dim", function(a, b) return T.cosine_similarity(a, b) end,
    { G { 2, 4, 3 }, G { 4, 3 } } },
  { op = "cosine_similarity", "broadcast, dim 2", function(a, b) return T.cosine_similarity(a, b, 2) end,
    { G { 2, 4, 3 }, G { 4, 3 } } },
  { op = "cat", "dim 1", function(a, b) return T.cat({ a, b }, 1) end, { G { 2, 3 }, G { 4, 3 } } },
  { op = "cat", "last dim with a constant", function(a, b, c) return T.cat({ a, b, c }, -1) end,
    { G { 2, 3 }, C { 2, 2 }, G { 2, 1 } } },
  { op = "stack", "dim 1", function(a, b) return T.stack({ a, b }) end, { G { 2, 3 }, G { 2, 3 } } },
  { op = "stack", "dim 3", function(a, b) return T.stack({ a, b }, 3) end, { G { 2, 3 }, G { 2, 3 } } },
  { op = "flatten", "", function(a) return a:flatten() end, { G { 2, 3, 4 } } },
}

-- sparse CSR times dense: the gradient goes to the dense side
if T.sparse_csr then
  local s = T.sparse_csr({ 0, 2, 2, 5 }, { 0, 3, 1, 2, 3 }, C { 5 }, { 3, 4 }):to("f64")
  cases[#cases + 1] = { op = "sparse_csr", "s:matmul(dense), 2-d", function(d) return s:matmul(d) end,
    { G { 4, 2 } } }
  cases[#cases + 1] = { op = "sparse_csr", "s:matmul(dense), 1-d", function(d) return s:matmul(d) end,
    { G { 4 } } }
  cases[#cases + 1] = { op = "sparse_csr", "T.matmul(s, dense)", function(d) return T.matmul(s, d) end,
    { G { 4, 3 } } }
end

-- Primitives without a gradient, by kind: "none" (the output never requires grad), "zero"
-- (piecewise constant: the gradient is zero), "inplace" (rejected on tensors requiring grad).
local nondiff = {
  eq = "none", ne = "none", lt = "none", le = "none", gt = "none", ge = "none",
  logical_and = "none", logical_or = "none", logical_xor = "none", logical_not = "none",
  isnan = "none", argmax = "none", argmin = "none", any = "none", all = "none", nonzero = "none",
  floor = "zero", ceil = "zero", round = "zero", sign = "zero",
  trigamma = "refused",
  add_ = "inplace", sub_ = "inplace", mul_ = "inplace", div_ = "inplace", pow_ = "inplace",
  maximum_ = "inplace", minimum_ = "inplace", clamp_ = "inplace", fill_ = "inplace",
  copy_ = "inplace", index_add_ = "inplace", scatter_add_ = "inplace",
}

-- how each non-differentiable primitive is called (x: a {3, 4} f64 leaf requiring grad)
local nondiff_call = {
  logical_and = function(f, x) return f(x:gt(0), x:lt(1)) end,
  logical_or = function(f, x) return f(x:gt(0), x:lt(1)) end,
  logical_xor = function(f, x) return f(x:gt(0), x:lt(1)) end,
  logical_not = function(f, x) return f(x:gt(0)) end,
  isnan = function(f, x) return f(x) end,
  argmax = function(f, x) return f(x, 2) end,
  argmin = function(f, x) return f(x, 2) end,
  any = function(f, x) return f(x:gt(0)) end,
  all = function(f, x) return f(x:gt(0)) end,
  nonzero = function(f, x) return f(x) end,
  clamp_ = function(f, x) return f(x, 0, 1) end,
  fill_ = function(f, x) return f(x, 0) end,
  copy_ = function(f, x) return f(x, C { 3, 4 }) end,
  index_add_ = function(f, x) return f(x, 1, I { 1 }, C { 1, 4 }) end,
  scatter_add_ = function(f, x) return f(x, 1, I { { 1, 2, 3, 1 } }, C { 1, 4 }) end,
}

local function describe_case(c)
  return c.op .. (c[1] ~= "" and " (" .. c[1] .. ")" or "")
end

describe("gradcheck over every differentiable primitive and composition", function()
  for _, c in ipairs(cases) do
    it(describe_case(c), function()
      local ok, report = gradcheck(c[2], c[3], c.opts)
      assert.is_true(ok, describe_case(c) .. ":\n" .. report)
    end)
  end

  it("gradcheck itself catches a wrong rule and names the input and element", function()
    local bad_square = T.def_differentiable("bad_square",
      function(x) return T.no_grad(function() return x * x end) end,
      function(g, a) return g * a[1] end) -- the factor 2 is missing
    local x = G { 2, 3 }
    local ok, report = gradcheck(function(u, v) return bad_square(u) + v end, { x, G { 3 } })
    assert.is_false(ok)
    assert.is_truthy(report:find("input 1 {2,3}: FAILED", 1, true), report)
    assert.is_truthy(report:find("input 2 {3}: ok", 1, true), report)
    assert.is_truthy(report:find("worst element {%d,%d}: autodiff %S+, numerical %S+"), report)
    assert.is_nil(x:grad(), "gradcheck must not touch the caller's gradients")
    -- f32 inputs are checked in f64; option names are checked
    assert.is_true((gradcheck(function(u) return u:exp() end, { T.tensor({ 1, 2 }):requires_grad() })))
    assert.has_error(function() gradcheck(function(u) return u end, { C { 2 } }) end)
    assert.has_error(function() gradcheck(function(u) return u end, { G { 2 } }, { epsilon = 1 }) end)
  end)

  it("cdist at a zero distance has a finite gradient", function()
    local an, bn = cdist_zero_inputs()
    local a = T.tensor(an, { dtype = "f64" }):requires_grad()
    local b = T.tensor(bn, { dtype = "f64" }):requires_grad()
    local d = T.cdist(a, b)
    assert.is_true(d:get(2, 3) < 1e-6, "distance " .. d:get(2, 3))
    d:sum():backward()
    for _, g in ipairs { a:grad(), b:grad() } do
      for _, row in ipairs(g:totable()) do
        for _, v in ipairs(row) do
          assert.is_true(v == v and math.abs(v) < math.huge,
            "non-finite gradient: a:grad() = " .. tostring(a:grad()) .. ", b:grad() = " .. tostring(b:grad()))
        end
      end
    end
  end)

  it("gives zero gradients for the piecewise-constant primitives", function()
    for name, kind in pairs(nondiff) do
      if kind == "zero" then
        local x = G({ 3, 4 }, function() return math.random(-3, 3) + 0.2 + 0.6 * math.random() end)
        local y = T.primitives[name](x)
        local l = (y * C { 3, 4 }):sum()
        l:backward()
        local g = x:grad()
        assert.is_truthy(g, name .. ": no gradient")
        assert.are.same(T.zeros({ 3, 4 }, { dtype = "f64" }):totable(), g:totable(), name)
      end
    end
  end)

  it("records nothing for comparisons, arg-reductions and other non-differentiable primitives", function()
    for name, kind in pairs(nondiff) do
      if kind == "none" then
        local x = G { 3, 4 }
        local call = nondiff_call[name] or function(f, x) return f(x, 0.5) end
        local y = call(T.primitives[name], x)
        assert.is_false(y:needs_grad(), name .. " output requires grad")
      end
    end
  end)

  it("refuses primitives without a gradient rule on tensors that require grad", function()
    for name, kind in pairs(nondiff) do
      if kind == "refused" then
        local x = G({ 3, 4 }, uniform(0.3, 6))
        local ok, err = pcall(T.primitives[name], x)
        assert.is_false(ok, name .. " did not raise")
        assert.is_truthy(tostring(err):find("not supported", 1, true), name .. ": " .. tostring(err))
        local y = T.no_grad(T.primitives[name], x)
        assert.is_false(y:needs_grad())
      end
    end
  end)

  it("rejects the in-place primitives on a tensor that requires grad", function()
    for name, kind in pairs(nondiff) do
      if kind == "inplace" then
        local x = G { 3, 4 }
        local call = nondiff_call[name] or function(f, x) return f(x, 0.5) end
        local ok, err = pcall(call, T.primitives[name], x)
        assert.is_false(ok, name .. " did not raise")
        assert.is_truthy(tostring(err):find("in-place", 1, true), name .. ": " .. tostring(err))
      end
    end
  end)

  it("lists every primitive of T.primitives as checked or non-differentiable", function()
    local checked = {}
    for _, c in ipairs(cases) do checked[c.op] = true end
    local missing = {}
    for name in pairs(T.primitives) do
      if not checked[name] and not nondiff[name] then missing[#missing + 1] = name end
    end
    table.sort(missing)
    assert.are.same({}, missing, "primitives with neither a gradient check nor a place in the " ..
      "non-differentiable list: " .. table.concat(missing, ", "))
    -- and no stale entries: every listed name is a primitive or a composition
    for name in pairs(nondiff) do
      assert.is_truthy(T.primitives[name], "non-differentiable list names unknown primitive " .. name)
    end
    for name in pairs(checked) do
      assert.is_truthy(T.primitives[name] or T[name] or T.methods[name], "unknown op " .. name)
    end
  end)
end)
