-- The optimizer base class: parameter groups, per-parameter state, zero_grad, lr get/set,
-- state_dict; and clip_grad_norm. Subclasses implement update(group, p, g, state).
local T = require "velua.tensor"
local options = require "velua.options"

local Optimizer = {}
Optimizer.__index = Optimizer

local function is_float(t) local d = t:dtype(); return d == "f32" or d == "f64" end

-- A list of parameter tensors from a module, a list of tensors or a single tensor.
local function param_list(fname, params)
  if T.is_tensor(params) then return { params } end
  if type(params) == "table" and type(params.parameters) == "function" then
    return params:parameters()
  end
  if type(params) ~= "table" then
    error(fname .. ": params must be a module, a list of tensors or a list of groups, got " ..
      type(params), 3)
  end
  return params
end

-- new(cls, name, params, opts, defaults): params is a module, a list of tensors, or a list
-- of groups { params = ..., lr = ..., <other options> } whose missing options come from opts.
function Optimizer.new(cls, name, params, opts, defaults)
  local o = options.check(name, opts, defaults)
  local groups = {}
  local list = param_list(name, params)
  if #list > 0 and not T.is_tensor(list[1]) and type(list[1]) == "table"
    and list[1].params ~= nil then
    for gi, g in ipairs(list) do
      local allowed = { params = true }
      for k, v in pairs(defaults) do allowed[k] = v end
      local go = options.check(name .. " (group " .. gi .. ")", g, allowed)
      local grp = { params = param_list(name, g.params) }
      for k in pairs(defaults) do
        if g[k] ~= nil then grp[k] = go[k] else grp[k] = o[k] end
      end
      groups[gi] = grp
    end
  else
    local grp = { params = list }
    for k in pairs(defaults) do grp[k] = o[k] end
    groups[1] = grp
  end
  local seen = {}
  local n = 0
  for gi, grp in ipairs(groups) do
    if type(grp.lr) ~= "number" or grp.lr < 0 then
      error(string.format("%s: lr must be a non-negative number, got %s", name, tostring(grp.lr)), 2)
    end
    for i, p in ipairs(grp.params) do
      if not T.is_tensor(p) then
        error(string.format("%s: parameter %d of group %d is not a tensor (%s)", name, i, gi,
          type(p)), 2)
      end
      if not is_float(p) then
        error(string.format("%s: parameter %d of group %d is %s; only f32 and f64 tensors can " ..
          "be optimized", name, i, gi, p:dtype()), 2)
      end
      if not p:is_leaf() then
        error(string.format("%s: parameter %d of group %d is not a leaf tensor", name, i, gi), 2)
      end
      if seen[p] then
        error(string.format("%s: a parameter appears twice (group %d, index %d)", name, gi, i), 2)
      end
      seen[p] = true
      n = n + 1
    end
  end
  local self = setmetatable({ name = name, param_groups = groups, state = {}, defaults = o }, cls)
  self:check_group_options()
  return self
end

function Optimizer:check_group_options() end

-- zero_grad(): drops the gradients of all parameters (PyTorch's set_to_none).
function Optimizer:zero_grad()
  for _, grp in ipairs(self.param_groups) do
    for _, p in ipairs(grp.params) do p:zero_grad() end
  end
end

-- step([closure]): one update of every parameter that has a gradient. closure, when given,
-- recomputes the loss (with gradients) first and its value is returned.
function Optimizer:step(closure)
  local loss
  if closure ~= nil then loss = closure() end
  T.no_grad(function()
    for _, grp in ipairs(self.param_groups) do
      for _, p in ipairs(grp.params) do
        local g = p:grad()
        if g ~= nil then
          local st = self.state[p]
          if not st then st = {}; self.state[p] = st end
          self:update(grp, p, g, st)
        end
      end
    end
  end)
  return loss
end

-- lr(): the learning rate of the first group; set_lr(v): of every group.
function Optimizer:lr() return self.param_groups[1].lr end

function Optimizer:set_lr(v)
  if type(v) ~= "number" or v < 0 then error("set_lr: lr must be a non-negative number", 2) end
  for _, grp in ipairs(self.param_groups) do grp.lr = v end
end

-- All parameters, in group order.
function Optimizer:params()
  local out = {}
  for _, grp in ipairs(self.param_groups) do
    for _, p in ipairs(grp.params) do out[#out + 1] = p end
  end
  return out
end

local function copy_value(v)
  if T.is_tensor(v) then return v:detach() end
  if type(v) == "table" then
    local c = {}
    for k, x in pairs(v) do c[k] = copy_value(x) end
    return c
  end
  return v
end

-- state_dict(): { state = {[i] = {...}}, param_groups = {{lr=, ..., params = {i, ...}}} },
-- parameters numbered 1.. in group order (as PyTorch, 1-based). Tensors are shared.
function Optimizer:state_dict()
  local state, groups, idx = {}, {}, 0
  for gi, grp in ipairs(self.param_groups) do
    local g = {}
    for k, v in pairs(grp) do if k ~= "params" then g[k] = copy_value(v) end end
    g.params = {}
    for _, p in ipairs(grp.params) do
      idx = idx + 1
      g.params[#g.params + 1] = idx
      if self.state[p] then state[idx] = copy_value(self.state[p]) end
    end
    groups[gi] = g
  end
  return { state = state, param_groups = groups }
end

-- load_state_dict(sd): restores hyperparameters and state (tensors are copied, converted to
-- each parameter's dtype). The groups must have the same sizes as this optimizer's.
function Optimizer:load_state_dict(sd)
  if type(sd) ~= "table" or type(sd.param_groups) ~= "table" or type(sd.state) ~= "table" then
    error("load_state_dict: expected a table with fields state and param_groups", 2)
  end
  if #sd.param_groups ~= #self.param_groups then
    error(string.format("load_state_dict: %d parameter groups in the state dict, %d in the " ..
      "optimizer", #sd.param_groups, #self.param_groups), 2)
  end
  for gi, g in ipairs(sd.param_groups) do
    local n = type(g.params) == "table" and #g.params or -1
    if n ~= #self.param_groups[gi].params then
      error(string.format("load_state_dict: group %d has %d parameters in the state dict, %d " ..
        "in the optimizer", gi, n, #self.param_groups[gi].params), 2)
    end
  end
  local state = {}
  for gi, g in ipairs(sd.param_groups) do
    local grp = self.param_groups[gi]
    for k, v in pairs(g) do if k ~= "params" then grp[k] = copy_value(v) end end
    for i, id in ipairs(g.params) do
      local p = grp.params[i]
      local s = sd.state[id]
      if s then
        local c = {}
        for k, v in pairs(s) do
          if T.is_tensor(v) then
            local t = v:detach():clone()
            if is_float(t) and t:dtype() ~= p:dtype() then t = t:to(p:dtype()) end
            c[k] = t
          else
            c[k] = copy_value(v)
          end
        end
        state[p] = c
      end
    end
  end
  self.state = state
end

-- clip_grad_norm(params, max_norm [, {norm_type=2}]): scales all gradients together so that
-- their joint norm is at most max_norm (by max_norm / (norm + 1e-6) when it is larger) and
-- returns the norm before clipping, as a number. params: a module, a list or an optimizer.
local function clip_grad_norm(params, max_norm, opts)
  local o = options.check("clip_grad_norm", opts, { norm_type = 2 })
  if type(max_norm) ~= "number" then error("clip_grad_norm: max_norm must be a number", 2) end
  if getmetatable(params) and type(params.params) == "function" and params.param_groups then
    params = params:params()
  else
    params = param_list("clip_grad_norm", params)
  end
  local grads = {}
  for _, p in ipairs(params) do
    local g = p:grad()
    if g ~= nil then grads[#grads + 1] = g end
  end
  if #grads == 0 then return 0 end
  local p = o.norm_type
  local total = 0
  T.no_grad(function()
    if p == math.huge then
      for _, g in ipairs(grads) do total = math.max(total, g:abs():max():item()) end
    else
      for _, g in ipairs(grads) do total = total + g:norm(p):item() ^ p end
      total = total ^ (1 / p)
    end
    local coef = max_norm / (total + 1e-6)
    if coef < 1 then
      for _, g in ipairs(grads) do g:mul_(coef) end
    end
  end)
  return total
end

return { Optimizer = Optimizer, clip_grad_norm = clip_grad_norm, param_list = param_list }
