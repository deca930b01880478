-- Learning-rate schedulers in closed form. Each one maps the learning rate it is given to a
-- new one as a function of its own step count; several schedulers on one optimizer compose in
-- the order they were created, starting from each group's lr when the first was attached.
local options = require "velua.options"

local Scheduler = {}
Scheduler.__index = Scheduler

-- Recomputes every group's lr from its initial lr through all attached schedulers.
local function apply(opt)
  for _, grp in ipairs(opt.param_groups) do
    local lr = grp.initial_lr
    for _, s in ipairs(opt._schedulers) do lr = s:value(lr, s.last_epoch) end
    grp.lr = lr
  end
end

local function attach(cls, opt, fields)
  if type(opt) ~= "table" or type(opt.param_groups) ~= "table" then
    error(cls.name .. ": an optimizer expected, got " .. type(opt), 2)
  end
  local self = setmetatable(fields, cls)
  self.optimizer, self.last_epoch = opt, 0
  for _, grp in ipairs(opt.param_groups) do
    if grp.initial_lr == nil then grp.initial_lr = grp.lr end
  end
  local list = rawget(opt, "_schedulers")
  if not list then list = {}; rawset(opt, "_schedulers", list) end
  list[#list + 1] = self
  apply(opt)
  return self
end

-- step(): advances one step (an epoch, or an iteration: the caller's unit) and sets the
-- optimizer's lr; returns the new lr of the first group.
function Scheduler:step()
  self.last_epoch = self.last_epoch + 1
  apply(self.optimizer)
  return self:lr()
end

-- lr(): the optimizer's current lr (first group); get_last_lr(): one per group.
function Scheduler:lr() return self.optimizer.param_groups[1].lr end

function Scheduler:get_last_lr()
  local out = {}
  for i, grp in ipairs(self.optimizer.param_groups) do out[i] = grp.lr end
  return out
end

function Scheduler:state_dict() return { last_epoch = self.last_epoch } end

function Scheduler:load_state_dict(sd)
  if type(sd) ~= "table" or math.type(sd.last_epoch) ~= "integer" then
    error("load_state_dict: expected {last_epoch = <integer>}", 2)
  end
  self.last_epoch = sd.last_epoch
  apply(self.optimizer)
end

local function class(name, init, value)
  local cls = setmetatable({ name = name }, { __index = Scheduler })
  cls.__index = cls
  cls.value = value
  return setmetatable(cls, {
    __index = Scheduler,
    __call = function(_, opt, opts) return attach(cls, opt, init(opts)) end,
  })
end

local function positive(fname, what, v, integer)
  if type(v) ~= "number" or v <= 0 or (integer and math.type(v) ~= "integer") then
    error(string.format("%s: %s must be a positive %s, got %s", fname, what,
      integer and "integer" or "number", tostring(v)), 4)
  end
end

local M = {}

-- StepLR(opt, {step_size=1, gamma=0.97}): lr = lr0 gamma^floor(t / step_size).
M.StepLR = class("StepLR", function(opts)
  local o = options.check("StepLR", opts, { step_size = 1, gamma = 0.97 })
  positive("StepLR", "step_size", o.step_size, true)
  positive("StepLR", "gamma", o.gamma)
  return { step_size = o.step_size, gamma = o.gamma }
end, function(self, lr, t)
  return lr * self.gamma ^ (t // self.step_size)
end)

-- CosineLR(opt, {t_max=, eta_min=0}): CosineAnnealingLR's closed form,
-- lr = eta_min + (lr0 - eta_min) (1 + cos(pi t / t_max)) / 2.
M.CosineLR = class("CosineLR", function(opts)
  local o = options.check("CosineLR", opts, { t_max = options.NONE, eta_min = 0 })
  positive("CosineLR", "t_max", o.t_max)
  if type(o.eta_min) ~= "number" or o.eta_min < 0 then
    error("CosineLR: eta_min must be a non-negative number", 3)
  end
  return { t_max = o.t_max, eta_min = o.eta_min }
end, function(self, lr, t)
  return self.eta_min + (lr - self.eta_min) * (1 + math.cos(math.pi * t / self.t_max)) / 2
end)

-- Warmup(opt, {steps=, start_factor=0}): linear warm-up (LinearLR to factor 1),
-- lr = lr0 (start_factor + (1 - start_factor) min(t, steps) / steps).
M.Warmup = class("Warmup", function(opts)
  local o = options.check("Warmup", opts, { steps = options.NONE, start_factor = 0 })
  positive("Warmup", "steps", o.steps, true)
  if type(o.start_factor) ~= "number" or o.start_factor < 0 or o.start_factor > 1 then
    error("Warmup: start_factor must be a number in [0, 1]", 3)
  end
  return { steps = o.steps, start_factor = o.start_factor }
end, function(self, lr, t)
  local f = self.start_factor + (1 - self.start_factor) * math.min(t, self.steps) / self.steps
  return lr * f
end)

M.Scheduler = Scheduler
return M
