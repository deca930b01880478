-- velua.gradcheck: compares autodiff gradients with central finite differences.
--
--   local gradcheck = require "velua.gradcheck"
--   local ok, report = gradcheck(function(x, y) return x:matmul(y):tanh() end,
--                                { x, y }, { eps = 1e-6, tol = 1e-6, seed = 1 })
--   assert(ok, report)
--
-- inputs: the arguments of fn, in order. Tensors that require grad are checked; they are
-- first copied to fresh f64 leaves (so f32 inputs are checked in f64 and the caller's
-- gradients are untouched). Other arguments (numbers, index tensors, ...) pass unchanged.
-- fn must return a floating-point tensor (further results are ignored). Every output
-- element is checked through the scalar L = sum(w * fn(...)) with a fixed random weighting w
-- of the output's shape: the autodiff side is out:backward(w), the numerical side is
-- (L(x + eps e_k) - L(x - eps e_k)) / (2 eps) for each element k of each checked input, with
-- fn run under T.no_grad.
-- Options (defaults): eps = 1e-6; tol = 1e-6, the largest accepted relative error
-- max|a - n| / max(atol, max|n|, max|a|) per input; atol = 1e-8; seed = 1, for w.
-- Returns ok, report: report names, for each checked input, its position, shape, relative
-- error and the worst element with both values (and "FAILED" where the error is above tol).
local T = require "velua.tensor"
local options = require "velua.options"

local function is_float(t)
  local dt = t:dtype()
  return dt == "f32" or dt == "f64"
end

-- 1-based multi-index of flat position k (row-major) in shape.
local function unflatten(k, shape)
  local idx, rest = {}, k - 1
  for d = #shape, 1, -1 do
    idx[d] = rest % shape[d] + 1
    rest = rest // shape[d]
  end
  return "{" .. table.concat(idx, ",") .. "}"
end

local function shape_str(t) return "{" .. table.concat(t:shape(), ",") .. "}" end

-- A fixed pseudo-random weighting in [-1.5, -0.5] U [0.5, 1.5] (no near-zero weights, so no
-- output element is effectively skipped); a small LCG keeps it independent of velua.random.
local function weights(shape, seed)
  local w = T.zeros(shape, { dtype = "f64" })
  local flat = w:view(-1)
  local s = (seed * 2654435761 + 12345) % 2147483648
  for k = 1, flat:numel() do
    s = (s * 1103515245 + 12345) % 2147483648
    local u = s / 2147483648
    flat:set(k, (u < 0.5) and -(0.5 + 2 * u) or (0.5 + 2 * (u - 0.5)))
  end
  return w
end

local function first_output(fn, args, n)
  local out = fn(table.unpack(args, 1, n))
  if not T.is_tensor(out) then
    error("gradcheck: fn must return a tensor, got " .. type(out), 3)
  end
  if not is_float(out) then
    error("gradcheck: fn must return a floating-point tensor, got " .. out:dtype(), 3)
  end
  return out
end

local function gradcheck(fn, inputs, opts)
  local o = options.check("gradcheck", opts, { eps = 1e-6, tol = 1e-6, atol = 1e-8, seed = 1 })
  local n = inputs.n or #inputs
  local args, plain, checked = {}, {}, {}
  for i = 1, n do
    local x = inputs[i]
    if T.is_tensor(x) and x:needs_grad() then
      if not is_float(x) then error("gradcheck: input " .. i .. " is not floating-point", 2) end
      local v = x:detach():to("f64"):clone()
      plain[i] = v:clone()
      args[i] = v:requires_grad()
      checked[#checked + 1] = i
    else
      args[i], plain[i] = x, x
    end
  end
  if #checked == 0 then error("gradcheck: no input requires grad", 2) end

  -- autodiff: out:backward(w) gives the gradient of sum(w * out)
  local out = first_output(fn, args, n)
  local w = weights(out:shape(), o.seed)
  if not out:needs_grad() then
    return false, "gradcheck: the output does not require grad (nothing was recorded)"
  end
  out:backward(out:dtype() == "f64" and w or w:to(out:dtype()))

  local function loss()
    local y = T.no_grad(first_output, fn, plain, n)
    return T.no_grad(function() return (y:to("f64") * w):sum():item() end)
  end

  local ok, lines = true, {}
  for _, i in ipairs(checked) do
    local x, xp = args[i], plain[i]
    local g = x:grad()
    local note = ""
    if g == nil then
      g, note = T.zeros(x:shape(), { dtype = "f64" }), " (no gradient: nil)"
    elseif shape_str(g) ~= shape_str(x) then
      ok = false
      lines[#lines + 1] = string.format("input %d %s: FAILED, gradient has shape %s", i,
        shape_str(x), shape_str(g))
      goto continue
    end
    do
      local ga = g:to("f64"):contiguous():view(-1)
      local flat = xp:view(-1)
      local maxd, maxn, maxa, worst, wa, wn = 0, 0, 0, nil, 0, 0
      for k = 1, flat:numel() do
        local v = flat:get(k)
        flat:set(k, v + o.eps)
        local lp = loss()
        flat:set(k, v - o.eps)
        local lm = loss()
        flat:set(k, v)
        local num = (lp - lm) / (2 * o.eps)
        local a = ga:get(k)
        local d = math.abs(a - num)
        if d ~= d or (a ~= a) ~= (num ~= num) then d = math.huge end
        if not (d <= maxd) or worst == nil then maxd, worst, wa, wn = d, k, a, num end
        maxn = math.max(maxn, math.abs(num))
        maxa = math.max(maxa, math.abs(a))
      end
      local rel = maxd / math.max(o.atol, maxn, maxa)
      if maxd == 0 then rel = 0 end
      local pass = rel <= o.tol
      ok = ok and pass
      if worst then
        lines[#lines + 1] = string.format(
          "input %d %s: %s relative error %.3g; worst element %s: autodiff %.17g, numerical " ..
          "%.17g%s", i, shape_str(x), pass and "ok," or "FAILED,", rel,
          unflatten(worst, x:shape()), wa, wn, note)
      else
        lines[#lines + 1] = string.format("input %d %s: ok, no elements", i, shape_str(x))
      end
    end
    ::continue::
  end
  return ok, table.concat(lines, "\n")
end

return gradcheck
