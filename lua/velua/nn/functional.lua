-- velua.nn.functional (alias nn.F): losses and stateless layer functions, composed from
-- tensor operations so that autodiff differentiates them.
local T = require "velua.tensor"
local options = require "velua.options"

local F = {}
local NONE = options.NONE

-- Checks a reduction option (call it from the loss itself, not in a tail call).
local function check_reduction(fname, reduction)
  if reduction ~= "mean" and reduction ~= "sum" and reduction ~= "none" then
    error(fname .. ": reduction must be \"mean\", \"sum\" or \"none\", got " ..
      tostring(reduction), 3)
  end
end

local function reduce(x, reduction)
  if reduction == "mean" then return (x:mean()) end
  if reduction == "sum" then return (x:sum()) end
  return x
end

local function is_float(t) local d = t:dtype(); return d == "f32" or d == "f64" end

local function need_tensor(fname, x, what)
  if not T.is_tensor(x) then error(fname .. ": " .. what .. " must be a tensor, got " .. type(x), 3) end
  return x
end

local function shape_str(t) return "{" .. table.concat(t:shape(), ",") .. "}" end

local function same_shape(a, b)
  local sa, sb = a:shape(), b:shape()
  if #sa ~= #sb then return false end
  for i = 1, #sa do if sa[i] ~= sb[i] then return false end end
  return true
end

-- ---------- layer functions ----------

-- linear(x, weight [, bias]): x weight^T + bias. One fused primitive (T.linear: GEMM onto the
-- bias) when the dtypes agree, weight is 2-d and bias 1-d; the composed form otherwise.
function F.linear(x, weight, bias)
  if T.is_tensor(x) and T.is_tensor(weight) and x:dim() >= 1 and weight:dim() == 2 then
    local dt = x:dtype()
    if (dt == "f32" or dt == "f64") and weight:dtype() == dt and (bias == nil or
      T.is_tensor(bias) and bias:dim() == 1 and bias:dtype() == dt) then
      return T.linear(x, weight, bias)
    end
  end
  local y = x:matmul(weight:t())
  if bias ~= nil then y = y + bias end
  return y
end

function F.relu(x) return (x:relu()) end
function F.tanh(x) return (x:tanh()) end
function F.sigmoid(x) return (x:sigmoid()) end

-- softplus(x [, {beta=1, threshold=20}]): log(1 + exp(beta x)) / beta, and x itself where
-- beta x > threshold (as PyTorch).
function F.softplus(x, opts)
  local o = options.check("softplus", opts, { beta = 1, threshold = 20 })
  if o.beta == 1 and o.threshold == 20 then return (x:softplus()) end -- the primitive's own cut
  local bx = x * o.beta
  return (T.where(bx:gt(o.threshold), x, bx:softplus() / o.beta))
end

-- dropout(x, p [, {training=true, gen=}]): inverted dropout; zeroes each element with
-- probability p and scales the rest by 1/(1-p). The identity when not training or p = 0.
function F.dropout(x, p, opts)
  local o = options.check("dropout", opts, { training = true, gen = NONE })
  if type(p) ~= "number" or p < 0 or p > 1 then
    error("dropout: p must be a number in [0, 1], got " .. tostring(p), 2)
  end
  if not o.training or p == 0 then return x end
  if p == 1 then return x * 0 end
  local u = T.rand(x:shape(), { gen = o.gen, dtype = x:dtype() })
  local keep = u:ge(p):to(x:dtype())
  return x * (keep * (1 / (1 - p)))
end

-- ---------- losses ----------

-- mse(pred, target [, {reduction="mean"}]): (pred - target)^2, reduced.
function F.mse(pred, target, opts)
  local o = options.check("mse", opts, { reduction = "mean" })
  check_reduction("mse", o.reduction)
  need_tensor("mse", pred, "pred")
  local d = pred - target
  return reduce(d * d, o.reduction)
end
F.mse_loss = F.mse

-- The values of clamp(v, eps) with the gradient of v (PyTorch clamps var under no_grad).
local clamp_st = T.def_differentiable("gaussian_nll_clamp",
  function(v, eps) return v:detach():clamp(eps, nil) end,
  function(g) return g end, "")

-- gaussian_nll(input, target, var [, {full=false, eps=1e-6, reduction="mean"}]): PyTorch's
-- GaussianNLLLoss: 0.5 (log(max(var, eps)) + (input - target)^2 / max(var, eps))
-- [+ 0.5 log(2 pi) when full]. var has input's shape, or that shape without its last dim, or
-- a last dim of 1 (one variance per row), or is a number. The clamp passes gradients through.
function F.gaussian_nll(input, target, var, opts)
  local o = options.check("gaussian_nll", opts, { full = false, eps = 1e-6, reduction = "mean" })
  check_reduction("gaussian_nll", o.reduction)
  need_tensor("gaussian_nll", input, "input")
  if type(var) == "number" then
    if var < 0 then error("gaussian_nll: var has negative entries", 2) end
    var = T.full(input:shape(), var, { dtype = input:dtype() })
  end
  need_tensor("gaussian_nll", var, "var")
  if not same_shape(var, input) then
    local si, sv = input:shape(), var:shape()
    local ok = false
    if #sv == #si - 1 then
      ok = true
      for i = 1, #sv do if sv[i] ~= si[i] then ok = false end end
      if ok then var = var:unsqueeze(-1) end
    elseif #sv == #si and sv[#sv] == 1 then
      ok = true
      for i = 1, #sv - 1 do if sv[i] ~= si[i] then ok = false end end
    end
    if not ok then
      error("gaussian_nll: var of shape " .. shape_str(var) .. " does not match input of shape "
        .. shape_str(input), 2)
    end
  end
  if T.no_grad(function() return var:lt(0):any():item() end) then
    error("gaussian_nll: var has negative entries", 2)
  end
  local v = clamp_st(var, o.eps)
  local d = input - target
  local loss = (v:log() + d * d / v) * 0.5
  if o.full then loss = loss + 0.5 * math.log(2 * math.pi) end
  return reduce(loss, o.reduction)
end

-- cross_entropy(logits [N, C], target [, {reduction="mean"}]): -log softmax(logits)[i, target_i]
-- with 1-based class indices (an i64 tensor or a table of N integers).
function F.cross_entropy(logits, target, opts)
  local o = options.check("cross_entropy", opts, { reduction = "mean" })
  check_reduction("cross_entropy", o.reduction)
  need_tensor("cross_entropy", logits, "logits")
  if logits:dim() ~= 2 then
    error("cross_entropy: logits must be [N, C], got shape " .. shape_str(logits), 2)
  end
  if not T.is_tensor(target) then target = T.tensor(target, { dtype = "i64" }) end
  if target:dtype() ~= "i64" then target = target:to("i64") end
  local n = logits:size(1)
  if target:numel() ~= n then
    error(string.format("cross_entropy: %d targets for %d rows of logits", target:numel(), n), 2)
  end
  local nll = -logits:log_softmax(2):gather(2, target:reshape({ n, 1 })):reshape({ n })
  return reduce(nll, o.reduction)
end

-- binary_cross_entropy_with_logits(x, target [, {reduction="mean", pos_weight=}]):
-- -(w t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))), computed stably, as PyTorch.
function F.binary_cross_entropy_with_logits(x, target, opts)
  local o = options.check("binary_cross_entropy_with_logits", opts,
    { reduction = "mean", pos_weight = NONE })
  check_reduction("binary_cross_entropy_with_logits", o.reduction)
  need_tensor("binary_cross_entropy_with_logits", x, "input")
  -- log(1 + exp(-x)) = log1p(exp(-|x|)) + relu(-x)
  local lse = (-x:abs()):exp():log1p() + (-x):relu()
  local loss
  if o.pos_weight ~= nil then
    local lw = (target * (o.pos_weight - 1)) + 1
    loss = (1 - target) * x + lw * lse
  else
    loss = (1 - target) * x + lse
  end
  return reduce(loss, o.reduction)
end
F.bce_with_logits = F.binary_cross_entropy_with_logits

-- info_nce(z1 [n1, d], z2 [n2, d] [, opts]): contrastive loss with logits z1 z2^T / temperature.
-- Options: temperature=0.3; normalize=true (L2-normalise the rows of z1 and z2 first, so the
-- logits are cosine similarities / temperature); positives=nil: the pairs (i, i) are the
-- positives (n1 = n2) and the loss is the cross-entropy with the diagonal; otherwise a
-- boolean (or 0/1) [n1, n2] mask, and row i's loss is the mean over its positives j of
-- -log softmax(logits_i)_j (the denominator runs over all of row i); rows without positives
-- are left out of the mean (and are 0 with reduction "none"). symmetric=false: when true,
-- the mean of the losses z1->z2 and z2->z1 (the mask transposed). reduction="mean".
function F.info_nce(z1, z2, opts)
  local o = options.check("info_nce", opts, { temperature = 0.3, positives = NONE,
    normalize = true, symmetric = false, reduction = "mean" })
  need_tensor("info_nce", z1, "z1")
  need_tensor("info_nce", z2, "z2")
  if z1:dim() ~= 2 or z2:dim() ~= 2 or z1:size(2) ~= z2:size(2) then
    error("info_nce: z1 and z2 must be [n1, d] and [n2, d], got " .. shape_str(z1) .. " and " ..
      shape_str(z2), 2)
  end
  if type(o.temperature) ~= "number" or o.temperature <= 0 then
    error("info_nce: temperature must be a positive number", 2)
  end
  local n1, n2 = z1:size(1), z2:size(1)
  local pos = o.positives
  if pos == nil then
    if n1 ~= n2 then
      error(string.format("info_nce: without a positives mask z1 and z2 need the same number " ..
        "of rows, got %d and %d", n1, n2), 2)
    end
  else
    need_tensor("info_nce", pos, "positives")
    local s = pos:shape()
    if #s ~= 2 or s[1] ~= n1 or s[2] ~= n2 then
      error(string.format("info_nce: positives must be [%d, %d], got %s", n1, n2, shape_str(pos)), 2)
    end
  end
  check_reduction("info_nce", o.reduction)
  if o.normalize then z1, z2 = z1:normalize(2), z2:normalize(2) end

  local function one_way(a, b, mask)
    local logits = a:matmul(b:t()) / o.temperature
    local lsm = logits:log_softmax(2)
    if mask == nil then
      local n = a:size(1)
      local per_row = -lsm:gather(2, T.arange(1, n + 1):reshape({ n, 1 })):reshape({ n })
      if o.reduction == "none" then return per_row end
      return o.reduction == "mean" and per_row:mean() or per_row:sum()
    end
    local m = mask:to(lsm:dtype())
    local count = m:sum(2)
    local per_row = -(lsm * m):sum(2) / count:clamp(1, nil)
    if o.reduction == "none" then return per_row end
    local total = per_row:sum()
    if o.reduction == "sum" then return total end
    local rows = T.no_grad(function() return count:gt(0):sum():item() end)
    return total / math.max(rows, 1)
  end

  local loss = one_way(z1, z2, pos)
  if o.symmetric then
    local back = one_way(z2, z1, pos and pos:t())
    if o.reduction == "none" then return loss, back end
    loss = (loss + back) * 0.5
  end
  return loss
end

-- pearson(x, y [, {dim=1, keepdim=false, mask=nil, eps=1e-8}]): the Pearson correlation of
-- x and y along dim (centred by the means), differentiable. With mask (boolean or 0/1,
-- broadcast to x's shape), only the masked entries take part in the means and sums. Sums of
-- squares are clamped below at eps^2, so a constant slice gives 0, not NaN.
function F.pearson(x, y, opts)
  local o = options.check("pearson", opts, { dim = 1, keepdim = false, mask = NONE, eps = 1e-8 })
  need_tensor("pearson", x, "x")
  if not T.is_tensor(y) then error("pearson: y must be a tensor, got " .. type(y), 2) end
  if not is_float(x) then x = x:to(T.default_dtype()) end
  local d = o.dim
  local xc, yc
  if o.mask ~= nil then
    local m = o.mask
    if not T.is_tensor(m) then error("pearson: mask must be a tensor", 2) end
    m = m:to(x:dtype())
    local shape = (x + y * 0):shape()
    m = m:expand(shape)
    local count = m:sum(d, true):clamp(1, nil)
    xc = (x - (x * m):sum(d, true) / count) * m
    yc = (y - (y * m):sum(d, true) / count) * m
  else
    xc = x - x:mean(d, true)
    yc = y - y:mean(d, true)
  end
  local e2 = o.eps * o.eps
  local sxy = (xc * yc):sum(d, o.keepdim)
  local sxx = (xc * xc):sum(d, o.keepdim):clamp(e2, nil)
  local syy = (yc * yc):sum(d, o.keepdim):clamp(e2, nil)
  return sxy / (sxx:sqrt() * syy:sqrt())
end

return F
