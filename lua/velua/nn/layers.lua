-- Standard layers of velua.nn: Linear, activations, Dropout, BatchNorm1d, Sequential, MLP.
local T = require "velua.tensor"
local options = require "velua.options"
local Module = require "velua.nn.module"
local F = require "velua.nn.functional"

local NONE = options.NONE
local L = {}

local function positive_int(fname, what, v)
  if math.type(v) ~= "integer" or v < 1 then
    error(string.format("%s: %s must be a positive integer, got %s", fname, what, tostring(v)), 4)
  end
end

local function check_dtype(fname, dt)
  if dt ~= "f32" and dt ~= "f64" then
    error(fname .. ": dtype must be \"f32\" or \"f64\", got " .. tostring(dt), 4)
  end
end

-- U(-bound, bound) of the given shape from generator gen (the default one when nil).
local function uniform(shape, bound, gen, dtype)
  local u = T.rand(shape, { gen = gen, dtype = dtype })
  return u * (2 * bound) - bound
end
L._uniform = uniform

local function lua_bool(b) return b and "true" or "false" end

-- ---------- Linear ----------

-- Linear(in, out [, {bias=true, gen=, dtype="f32"}]): y = x W^T + b, W [out, in]. PyTorch's
-- default initialisation: kaiming_uniform(a = sqrt(5)) gives W ~ U(-1/sqrt(in), 1/sqrt(in));
-- b ~ U(-1/sqrt(in), 1/sqrt(in)). W is drawn before b.
local Linear = Module:extend("Linear")
L.Linear = Linear

function Linear:__init(i, o, opts)
  local op = options.check("Linear", opts, { bias = true, gen = NONE, dtype = "f32" })
  positive_int("Linear", "in_features", i)
  positive_int("Linear", "out_features", o)
  check_dtype("Linear", op.dtype)
  self.in_features, self.out_features = i, o
  local bound = 1 / math.sqrt(i)
  self:register_parameter("weight", uniform({ o, i }, bound, op.gen, op.dtype))
  if op.bias then self:register_parameter("bias", uniform({ o }, bound, op.gen, op.dtype)) end
end

function Linear:forward(x) return F.linear(x, self.weight, self.bias) end

function Linear:extra_repr()
  return string.format("in_features=%d, out_features=%d, bias=%s", self.in_features,
    self.out_features, lua_bool(self.bias ~= nil))
end

-- ---------- activations ----------

local function activation_class(name, fn)
  local cls = Module:extend(name)
  function cls:__init(opts) options.check(name, opts, {}) end
  cls.forward = function(_, x) return (fn(x)) end
  return cls
end

L.ReLU = activation_class("ReLU", F.relu)
L.Tanh = activation_class("Tanh", F.tanh)
L.Sigmoid = activation_class("Sigmoid", F.sigmoid)
L.Identity = activation_class("Identity", function(x) return x end)

-- Softplus([{beta=1, threshold=20}])
local Softplus = Module:extend("Softplus")
L.Softplus = Softplus

function Softplus:__init(opts)
  local o = options.check("Softplus", opts, { beta = 1, threshold = 20 })
  self.beta, self.threshold = o.beta, o.threshold
end

function Softplus:forward(x)
  return F.softplus(x, { beta = self.beta, threshold = self.threshold })
end

function Softplus:extra_repr()
  return string.format("beta=%s, threshold=%s", tostring(self.beta), tostring(self.threshold))
end

-- ---------- Dropout ----------

-- Dropout([p=0.5] [, {gen=}]): inverted dropout in training, the identity in eval.
local Dropout = Module:extend("Dropout")
L.Dropout = Dropout

function Dropout:__init(p, opts)
  if type(p) == "table" then p, opts = nil, p end
  local o = options.check("Dropout", opts, { gen = NONE })
  p = p == nil and 0.5 or p
  if type(p) ~= "number" or p < 0 or p > 1 then
    error("Dropout: p must be a number in [0, 1], got " .. tostring(p), 3)
  end
  self.p, self.gen = p, o.gen
end

function Dropout:forward(x)
  return F.dropout(x, self.p, { training = self.training, gen = self.gen })
end

function Dropout:extra_repr() return "p=" .. tostring(self.p) end

-- ---------- BatchNorm1d ----------

-- BatchNorm1d(n [, {eps=1e-5, momentum=0.1, affine=true, track_running_stats=true,
-- dtype="f32"}]) over x [batch, n]. Training normalises with the batch mean and biased
-- variance and updates running_mean / running_var (with the unbiased variance) as
-- r = (1 - momentum) r + momentum batch_stat; eval normalises with the running statistics.
local BatchNorm1d = Module:extend("BatchNorm1d")
L.BatchNorm1d = BatchNorm1d

function BatchNorm1d:__init(n, opts)
  local o = options.check("BatchNorm1d", opts, { eps = 1e-5, momentum = 0.1, affine = true,
    track_running_stats = true, dtype = "f32" })
  positive_int("BatchNorm1d", "num_features", n)
  check_dtype("BatchNorm1d", o.dtype)
  if type(o.momentum) ~= "number" or o.momentum < 0 or o.momentum > 1 then
    error("BatchNorm1d: momentum must be a number in [0, 1]", 3)
  end
  self.num_features, self.eps, self.momentum = n, o.eps, o.momentum
  self.affine, self.track_running_stats = o.affine, o.track_running_stats
  if o.affine then
    self:register_parameter("weight", T.ones({ n }, { dtype = o.dtype }))
    self:register_parameter("bias", T.zeros({ n }, { dtype = o.dtype }))
  end
  if o.track_running_stats then
    self:register_buffer("running_mean", T.zeros({ n }, { dtype = o.dtype }))
    self:register_buffer("running_var", T.ones({ n }, { dtype = o.dtype }))
    self:register_buffer("num_batches_tracked", T.zeros({}, { dtype = "i64" }))
  end
end

function BatchNorm1d:forward(x)
  local n = self.num_features
  if not T.is_tensor(x) or x:dim() ~= 2 or x:size(2) ~= n then
    error(string.format("BatchNorm1d: expected input [batch, %d], got %s", n,
      T.is_tensor(x) and "{" .. table.concat(x:shape(), ",") .. "}" or type(x)), 2)
  end
  local y
  if self.training or not self.track_running_stats then
    local b = x:size(1)
    if self.training and b < 2 then
      error("BatchNorm1d: expected more than 1 value per channel when training, got a batch of "
        .. b, 2)
    end
    local mean = x:mean(1, true)
    local xc = x - mean
    local var = (xc * xc):mean(1, true)
    y = xc / (var + self.eps):sqrt()
    if self.training and self.track_running_stats then
      local m = self.momentum
      local rm, rv = self.running_mean, self.running_var
      T.no_grad(function()
        rm:mul_(1 - m)
        rm:add_(mean:detach():reshape({ n }) * m)
        rv:mul_(1 - m)
        rv:add_(var:detach():reshape({ n }) * (m * b / (b - 1)))
        self.num_batches_tracked:add_(1)
      end)
    end
  else
    y = (x - self.running_mean) / (self.running_var + self.eps):sqrt()
  end
  if self.affine then y = y * self.weight + self.bias end
  return y
end

function BatchNorm1d:extra_repr()
  return string.format("%d, eps=%s, momentum=%s, affine=%s, track_running_stats=%s",
    self.num_features, tostring(self.eps), tostring(self.momentum), lua_bool(self.affine),
    lua_bool(self.track_running_stats))
end

-- ---------- Sequential ----------

-- Sequential(m1, m2, ...): applies the modules in turn; seq[i] is the i-th, named "i".
local Sequential = Module:extend("Sequential")
L.Sequential = Sequential

function Sequential:__init(...)
  for i = 1, select("#", ...) do
    local m = select(i, ...)
    if not Module.is_module(m) then
      error("Sequential: argument " .. i .. " is not a module (got " .. type(m) .. ")", 3)
    end
    self:add_module(i, m)
  end
end

-- seq:add(m): appends a module; returns seq.
function Sequential:add(m)
  if not Module.is_module(m) then error("Sequential.add: a module expected, got " .. type(m), 2) end
  self:add_module(#self._modules + 1, m)
  return self
end

function Sequential:forward(x, ...)
  for _, k in ipairs(self._modules) do x = rawget(self, k)(x, ...) end
  return x
end

-- ---------- MLP ----------

local activations = {
  relu = L.ReLU, softplus = L.Softplus, tanh = L.Tanh, sigmoid = L.Sigmoid,
  identity = L.Identity,
}
L.activations = activations

local function make_activation(fname, a)
  if type(a) == "string" then
    local cls = activations[a]
    if not cls then
      local names = {}
      for k in pairs(activations) do names[#names + 1] = k end
      table.sort(names)
      error(string.format("%s: unknown activation '%s' (known: %s)", fname, a,
        table.concat(names, ", ")), 4)
    end
    return cls()
  end
  if type(a) == "function" or (type(a) == "table" and getmetatable(a) and getmetatable(a).__call) then
    local m = a()
    if not Module.is_module(m) then
      error(fname .. ": activation constructor did not return a module", 4)
    end
    return m
  end
  error(fname .. ": activation must be a name or a module constructor, got " .. type(a), 4)
end

-- MLP({n_in, h1, ..., n_out} [, {activation="relu", batchnorm=false, dropout=0,
-- final_activation=false, bias=true, gen=, dtype="f32"}]): per hidden layer
-- Linear -> [BatchNorm1d] -> activation -> [Dropout], then a final Linear, followed by the
-- activation when final_activation is true (or by the named one when it is a name).
-- activation: "relu", "softplus", "tanh", "sigmoid", "identity" or a module constructor.
local MLP = Sequential:extend("MLP")
L.MLP = MLP

function MLP:__init(sizes, opts)
  local o = options.check("MLP", opts, { activation = "relu", batchnorm = false, dropout = 0,
    final_activation = false, bias = true, gen = NONE, dtype = "f32" })
  if type(sizes) ~= "table" or #sizes < 2 then
    error("MLP: sizes must be a list of at least two layer widths", 3)
  end
  for i, s in ipairs(sizes) do positive_int("MLP", "sizes[" .. i .. "]", s) end
  if type(o.dropout) ~= "number" or o.dropout < 0 or o.dropout >= 1 then
    error("MLP: dropout must be a number in [0, 1)", 3)
  end
  make_activation("MLP", o.activation) -- checks the name even without hidden layers
  self.sizes = { table.unpack(sizes) }
  local n = #sizes
  for i = 1, n - 1 do
    self:add(Linear(sizes[i], sizes[i + 1], { bias = o.bias, gen = o.gen, dtype = o.dtype }))
    if i < n - 1 then
      if o.batchnorm then self:add(BatchNorm1d(sizes[i + 1], { dtype = o.dtype })) end
      self:add(make_activation("MLP", o.activation))
      if o.dropout > 0 then self:add(Dropout(o.dropout, { gen = o.gen })) end
    end
  end
  local fa = o.final_activation
  if fa == true then self:add(make_activation("MLP", o.activation))
  elseif fa and fa ~= false then self:add(make_activation("MLP", fa)) end
end

return L
