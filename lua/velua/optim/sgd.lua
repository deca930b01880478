-- Stochastic gradient descent with momentum, dampening, Nesterov and weight decay, as
-- torch.optim.SGD.
local options = require "velua.options"
local base = require "velua.optim.optimizer"

local Optimizer = base.Optimizer
local SGD = setmetatable({}, { __index = Optimizer })
SGD.__index = SGD

local defaults = { lr = options.NONE, momentum = 0, dampening = 0, weight_decay = 0,
  nesterov = false, maximize = false }

-- SGD(params, {lr=, momentum=0, dampening=0, weight_decay=0, nesterov=false, maximize=false}):
--   g = grad + weight_decay p;  b = g (first step) or momentum b + (1 - dampening) g;
--   g = g + momentum b (nesterov) or b;  p = p - lr g.
function SGD.new(params, opts)
  return Optimizer.new(SGD, "SGD", params, opts, defaults)
end

function SGD:check_group_options()
  for _, grp in ipairs(self.param_groups) do
    if grp.nesterov and (grp.momentum <= 0 or grp.dampening ~= 0) then
      error("SGD: nesterov momentum requires a momentum > 0 and zero dampening", 3)
    end
    if grp.momentum < 0 or grp.weight_decay < 0 then
      error("SGD: momentum and weight_decay must be non-negative", 3)
    end
  end
end

function SGD:update(grp, p, g, st)
  if grp.maximize then g = -g end
  if grp.weight_decay ~= 0 then g = g + p * grp.weight_decay end
  local mom = grp.momentum
  if mom ~= 0 then
    local buf = st.momentum_buffer
    if buf == nil then
      buf = g:clone()
      st.momentum_buffer = buf
    else
      buf:mul_(mom)
      buf:add_(grp.dampening ~= 0 and g * (1 - grp.dampening) or g)
    end
    if grp.nesterov then g = g + buf * mom else g = buf end
  end
  p:sub_(g * grp.lr)
end

return setmetatable(SGD, { __index = Optimizer, __call = function(_, ...) return SGD.new(...) end })
