-- Adam and AdamW, step for step as torch.optim.Adam / AdamW (single-tensor path).
local T = require "velua.tensor"
local core = require "velua.core"
local base = require "velua.optim.optimizer"

local Optimizer = base.Optimizer

local function make(name, decoupled, default_wd)
  local cls = setmetatable({}, { __index = Optimizer })
  cls.__index = cls
  local defaults = { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = default_wd,
    amsgrad = false, maximize = false }

  function cls.new(params, opts)
    return Optimizer.new(cls, name, params, opts, defaults)
  end

  function cls:check_group_options()
    for _, grp in ipairs(self.param_groups) do
      local b = grp.betas
      if type(b) ~= "table" or type(b[1]) ~= "number" or type(b[2]) ~= "number"
        or b[1] < 0 or b[1] >= 1 or b[2] < 0 or b[2] >= 1 then
        error(name .. ": betas must be two numbers in [0, 1)", 3)
      end
      if type(grp.eps) ~= "number" or grp.eps < 0 then
        error(name .. ": eps must be a non-negative number", 3)
      end
      if type(grp.weight_decay) ~= "number" or grp.weight_decay < 0 then
        error(name .. ": weight_decay must be a non-negative number", 3)
      end
    end
  end

  -- m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  vmax = max(vmax, v) (amsgrad);
  -- p = p - lr/(1-b1^t) m / (sqrt(v or vmax)/sqrt(1-b2^t) + eps). Adam adds weight_decay p to
  -- g first; AdamW instead multiplies p by (1 - lr weight_decay) before the update.
  function cls:update(grp, p, g, st)
    local b1, b2 = grp.betas[1], grp.betas[2]
    local lr, wd = grp.lr, grp.weight_decay
    if st.step == nil then
      st.step = 0
      st.exp_avg = T.zeros_like(p)
      st.exp_avg_sq = T.zeros_like(p)
      if grp.amsgrad then st.max_exp_avg_sq = T.zeros_like(p) end
    end
    st.step = st.step + 1
    if core.is_contiguous(p) and core.is_contiguous(g) and core.dtype(g) == core.dtype(p) then
      -- the fused kernel: one pass, no temporaries (csrc/core/optim_kernels.c)
      if grp.amsgrad and st.max_exp_avg_sq == nil then st.max_exp_avg_sq = T.zeros_like(p) end
      core.adam_step_(p, g, st.exp_avg, st.exp_avg_sq, grp.amsgrad and st.max_exp_avg_sq or nil,
        { lr = lr, beta1 = b1, beta2 = b2, eps = grp.eps, weight_decay = wd, step = st.step,
          amsgrad = grp.amsgrad, decoupled = decoupled, maximize = grp.maximize })
      return
    end
    if grp.maximize then g = -g end
    if wd ~= 0 then
      if decoupled then p:mul_(1 - lr * wd) else g = g + p * wd end
    end
    local m, v = st.exp_avg, st.exp_avg_sq
    m:mul_(b1)
    m:add_(g * (1 - b1))
    v:mul_(b2)
    local gg = g * g
    gg:mul_(1 - b2)
    v:add_(gg)
    local bc1 = 1 - b1 ^ st.step
    local bc2_sqrt = math.sqrt(1 - b2 ^ st.step)
    local vhat = v
    if grp.amsgrad then
      local vmax = st.max_exp_avg_sq
      if vmax == nil then vmax = T.zeros_like(p); st.max_exp_avg_sq = vmax end
      vmax:maximum_(v)
      vhat = vmax
    end
    -- lr/bc1 m / (sqrt(v)/sqrt(bc2) + eps), with sqrt(bc2) moved out of the denominator
    -- (one pass fewer over memory)
    local denom = vhat:sqrt()
    denom:add_(grp.eps * bc2_sqrt)
    local upd = m / denom
    upd:mul_(lr * bc2_sqrt / bc1)
    p:sub_(upd)
  end

  return setmetatable(cls, { __index = Optimizer, __call = function(_, ...) return cls.new(...) end })
end

return {
  -- Adam(params, {lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=0, amsgrad=false})
  Adam = make("Adam", false, 0),
  -- AdamW(params, {lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=1e-2, amsgrad=false})
  AdamW = make("AdamW", true, 1e-2),
}
