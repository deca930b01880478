-- velua.optim: SGD, Adam, AdamW, clip_grad_norm and learning-rate schedulers (StepLR,
-- CosineLR, Warmup). See docs/optim.md.
local base = require "velua.optim.optimizer"
local adam = require "velua.optim.adam"
local sched = require "velua.optim.scheduler"

return {
  Optimizer = base.Optimizer,
  SGD = require "velua.optim.sgd",
  Adam = adam.Adam,
  AdamW = adam.AdamW,
  clip_grad_norm = base.clip_grad_norm,
  clip_grad_norm_ = base.clip_grad_norm,
  StepLR = sched.StepLR,
  CosineLR = sched.CosineLR,
  Warmup = sched.Warmup,
  Scheduler = sched.Scheduler,
}
