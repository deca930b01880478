-- velua.distributions: Normal, Beta, PowerSpherical, HypersphericalUniform, NegativeBinomial,
-- ZeroInflatedNegativeBinomial and kl_divergence. Formulas: ../shared/SPEC.md section 7.
-- rsample is differentiable: Normal by the location-scale trick, Beta by implicit
-- reparameterisation (dz/da = -(dI_z/da) / p(z), I the regularised incomplete beta function),
-- PowerSpherical through its Beta sample and a Householder reflection.
local velua = require "velua"
local core = require "velua.core"
local options = require "velua.options"
local T = velua.tensor

local D = {}
local LOG2PI = math.log(2 * math.pi)

local function tensorize(x, like)
  if T.is_tensor(x) then return x end
  return T.full({}, x, { dtype = like and like:dtype() or "f64" })
end

local function float_dtype(...)
  for i = 1, select("#", ...) do
    local x = select(i, ...)
    if T.is_tensor(x) and x:dtype() == "f64" then return "f64" end
  end
  return "f32"
end

-- (n, opts) parsing for rsample/sample: n may be omitted
local function sample_args(fname, n, opts)
  if type(n) == "table" then n, opts = nil, n end
  local o = options.check(fname, opts, { gen = options.NONE })
  if n ~= nil and (math.type(n) ~= "integer" or n < 1) then
    error(fname .. ": n must be a positive integer, got " .. tostring(n), 3)
  end
  return n, o.gen or T.default_generator()
end

local function with_n(n, shape)
  local s = {}
  if n then s[1] = n end
  for _, v in ipairs(shape) do s[#s + 1] = v end
  return s
end

local function class(name)
  local c = { __name = name }
  c.__index = c
  c.__tostring = function(d) return name .. "(" .. (d.describe and d:describe() or "") .. ")" end
  function c:sample(n, opts) return T.no_grad(function() return self:rsample(n, opts) end) end
  return c
end

-- ---------- Normal ----------
local Normal = class("Normal")
D.Normal = function(mu, sigma)
  local dt = float_dtype(mu, sigma)
  mu, sigma = tensorize(mu, T.zeros(1, { dtype = dt })), tensorize(sigma, T.zeros(1, { dtype = dt }))
  if T.no_grad(function() return sigma:le(0):any():item() end) then
    error("Normal: sigma must be positive", 2)
  end
  return setmetatable({ loc = mu, scale = sigma,
    shape = core.broadcast_shapes(mu, sigma), dtype = dt }, Normal)
end
function Normal:describe() return "shape={" .. table.concat(self.shape, ",") .. "}" end
function Normal:rsample(n, opts)
  local gen
  n, gen = sample_args("Normal:rsample", n, opts)
  local eps = T.randn(with_n(n, self.shape), { gen = gen, dtype = self.dtype })
  return self.loc + self.scale * eps
end
function Normal:log_prob(x)
  local z = (x - self.loc) / self.scale
  return z * z * -0.5 - self.scale:log() - 0.5 * LOG2PI
end
function Normal:entropy() return self.scale:log() + 0.5 + 0.5 * LOG2PI + self.loc * 0 end
function Normal:mean() return self.loc + self.scale * 0 end
function Normal:variance() return self.scale * self.scale + self.loc * 0 end
function Normal:stddev() return self.scale + self.loc * 0 end

-- ---------- Beta ----------
local function lbeta(a, b) return a:lgamma() + b:lgamma() - (a + b):lgamma() end

-- z ~ Beta(a, b) with implicit gradients to a and b
local beta_rsample = T.def_differentiable("beta_rsample", function(a, b, shape, gen)
  return T.no_grad(function()
    local dt = a:dtype()
    local x = core.rand_gamma_(T.empty(shape, { dtype = dt }), gen, a)
    local y = core.rand_gamma_(T.empty(shape, { dtype = dt }), gen, b)
    local z = x / (x + y)
    -- keep z inside (0, 1) so that log densities and gradients stay finite
    local tiny = dt == "f32" and 1e-7 or 1e-15
    return z:clamp(tiny, 1 - tiny)
  end)
end, function(g, args, z)
  local a, b = args[1], args[2]
  local ab = T.no_grad(function()
    local shape = z:shape()
    local ae, be = a:expand(shape), b:expand(shape)
    -- density p(z) in log space
    local logp = (ae - 1) * z:log() + (be - 1) * (1 - z):log() - lbeta(ae, be)
    local p = logp:exp()
    local da = core.betainc(ae:contiguous(), be:contiguous(), z, 1)
    local db = core.betainc(ae:contiguous(), be:contiguous(), z, 2)
    return { g * (-da / p), g * (-db / p) }
  end)
  return ab[1], ab[2]
end, "out")

local Beta = class("Beta")
D.Beta = function(a, b)
  local dt = float_dtype(a, b)
  a, b = tensorize(a, T.zeros(1, { dtype = dt })), tensorize(b, T.zeros(1, { dtype = dt }))
  if T.no_grad(function() return a:le(0):any():item() or b:le(0):any():item() end) then
    error("Beta: concentrations must be positive", 2)
  end
  return setmetatable({ a = a, b = b, shape = core.broadcast_shapes(a, b), dtype = dt }, Beta)
end
function Beta:describe() return "shape={" .. table.concat(self.shape, ",") .. "}" end
function Beta:rsample(n, opts)
  local gen
  n, gen = sample_args("Beta:rsample", n, opts)
  return beta_rsample(self.a, self.b, with_n(n, self.shape), gen)
end
function Beta:log_prob(x)
  return (self.a - 1) * x:log() + (self.b - 1) * (1 - x):log() - lbeta(self.a, self.b)
end
function Beta:entropy()
  local a, b = self.a, self.b
  return lbeta(a, b) - (a - 1) * a:digamma() - (b - 1) * b:digamma() + (a + b - 2) * (a + b):digamma()
end
function Beta:mean() return self.a / (self.a + self.b) end
function Beta:variance()
  local s = self.a + self.b
  return self.a * self.b / (s * s * (s + 1))
end

-- ---------- Power Spherical and the uniform distribution on the sphere ----------
local function log_sphere_area(d) -- log(2 pi^{d/2} / Gamma(d/2))
  local function lg(x) return T.full({}, x, { dtype = "f64" }):lgamma():item() end
  return math.log(2) + (d / 2) * math.log(math.pi) - lg(d / 2)
end

local Uniform = class("HypersphericalUniform")
D.HypersphericalUniform = function(dim, opts)
  if math.type(dim) ~= "integer" or dim < 2 then
    error("HypersphericalUniform: dim must be an integer >= 2, got " .. tostring(dim), 2)
  end
  local o = options.check("HypersphericalUniform", opts, { dtype = "f32" })
  return setmetatable({ dim = dim, dtype = o.dtype }, Uniform)
end
function Uniform:describe() return "dim=" .. self.dim end
function Uniform:rsample(n, opts)
  local gen
  n, gen = sample_args("HypersphericalUniform:rsample", n, opts)
  return T.randn(with_n(n, { self.dim }), { gen = gen, dtype = self.dtype }):normalize(-1)
end
function Uniform:entropy() return T.full({}, log_sphere_area(self.dim), { dtype = self.dtype }) end
function Uniform:log_prob(x)
  return T.full(x:shape(), -log_sphere_area(self.dim), { dtype = x:dtype() }):sum(-1)
end

local PS = class("PowerSpherical")
D.PowerSpherical = function(mu, kappa)
  if not T.is_tensor(mu) or mu:dim() < 1 then error("PowerSpherical: mu must be a tensor [..., d]", 2) end
  local d = mu:size(-1)
  if d < 2 then error("PowerSpherical: dimension must be >= 2, got " .. d, 2) end
  kappa = tensorize(kappa, mu)
  if kappa:dim() == mu:dim() then kappa = kappa:squeeze(-1) end
  local self = setmetatable({ loc = mu, scale = kappa, d = d, dtype = mu:dtype() }, PS)
  self.beta_c = (d - 1) / 2
  self.alpha = kappa + self.beta_c
  self.batch = core.broadcast_shapes(mu:narrow(-1, 1, 1):squeeze(-1), kappa)
  return self
end
function PS:describe() return "d=" .. self.d end
function PS:rsample(n, opts)
  local gen
  n, gen = sample_args("PowerSpherical:rsample", n, opts)
  local shape = with_n(n, self.batch)
  local beta = T.full(self.alpha:shape(), self.beta_c, { dtype = self.dtype })
  local t = beta_rsample(self.alpha, beta, shape, gen) * 2 - 1 -- [..., ]
  local vshape = with_n(n, self.batch)
  vshape[#vshape + 1] = self.d - 1
  local v = T.randn(vshape, { gen = gen, dtype = self.dtype }):normalize(-1)
  local tt = t:unsqueeze(-1)
  local y = T.cat({ tt, (1 - tt * tt):clamp(0):sqrt() * v }, -1)
  -- Householder reflection mapping e1 to mu: u = normalize(e1 - mu), x = y - 2 (y.u) u
  local e1 = T.zeros({ self.d }, { dtype = self.dtype })
  e1:set(1, 1)
  local u = (e1 - self.loc):normalize(-1)
  return y - u * (y * u):sum(-1, true) * 2
end
function PS:log_normalizer()
  local a, b = self.alpha, self.beta_c
  return -((a + b) * math.log(2) + a:lgamma() - (a + b):lgamma() + b * math.log(math.pi))
end
function PS:log_prob(x)
  return self:log_normalizer() + self.scale * (self.loc * x):sum(-1):log1p()
end
function PS:entropy()
  local a, b = self.alpha, self.beta_c
  return -(self:log_normalizer() + self.scale * (math.log(2) + a:digamma() - (a + b):digamma()))
end
function PS:mean()
  local a, b = self.alpha, self.beta_c
  return self.loc * ((a - b) / (a + b)):unsqueeze(-1)
end

-- ---------- negative binomial (mean mu, inverse dispersion theta), zero-inflated ----------
local EPS = 1e-8
local NB = class("NegativeBinomial")
D.NegativeBinomial = function(mu, theta)
  local dt = float_dtype(mu, theta)
  mu, theta = tensorize(mu, T.zeros(1, { dtype = dt })), tensorize(theta, T.zeros(1, { dtype = dt }))
  return setmetatable({ mu = mu, theta = theta, shape = core.broadcast_shapes(mu, theta), dtype = dt }, NB)
end
function NB:describe() return "shape={" .. table.concat(self.shape, ",") .. "}" end
function NB:log_prob(x)
  local mu, theta = self.mu, self.theta
  local log_theta_mu = (theta + mu + EPS):log()
  return theta * ((theta + EPS):log() - log_theta_mu) + x * ((mu + EPS):log() - log_theta_mu)
    + (x + theta):lgamma() - theta:lgamma() - (x + 1):lgamma()
end
function NB:mean() return self.mu + self.theta * 0 end
function NB:variance() return self.mu + self.mu * self.mu / self.theta end
-- Gamma-Poisson mixture: lambda ~ Gamma(theta, scale mu/theta), x ~ Poisson(lambda)
function NB:sample(n, opts)
  local gen
  n, gen = sample_args("NegativeBinomial:sample", n, opts)
  return T.no_grad(function()
    local shape = with_n(n, self.shape)
    local g = core.rand_gamma_(T.empty(shape, { dtype = self.dtype }), gen, self.theta)
    local lam = g * (self.mu / self.theta)
    return core.rand_poisson_(T.empty(shape, { dtype = self.dtype }), gen, lam:contiguous())
  end)
end
function NB:rsample() error("NegativeBinomial: rsample is not defined (discrete); use sample", 2) end

local ZINB = class("ZeroInflatedNegativeBinomial")
D.ZeroInflatedNegativeBinomial = function(mu, theta, pi_logits)
  local nb = D.NegativeBinomial(mu, theta)
  local self = setmetatable({ mu = nb.mu, theta = nb.theta, pi = tensorize(pi_logits, nb.mu),
    nb = nb, dtype = nb.dtype }, ZINB)
  self.shape = core.broadcast_shapes(core.full(nb.shape, 0), self.pi)
  return self
end
function ZINB:describe() return "shape={" .. table.concat(self.shape, ",") .. "}" end
-- scVI's log_zinb_positive
function ZINB:log_prob(x)
  local mu, theta, pi = self.mu, self.theta, self.pi
  local softplus_pi = (-pi):softplus()
  local log_theta_eps = (theta + EPS):log()
  local log_theta_mu_eps = (theta + mu + EPS):log()
  local pi_theta_log = -pi + theta * (log_theta_eps - log_theta_mu_eps)
  local case_zero = pi_theta_log:softplus() - softplus_pi
  local case_non_zero = -softplus_pi + pi_theta_log + x * ((mu + EPS):log() - log_theta_mu_eps)
    + (x + theta):lgamma() - theta:lgamma() - (x + 1):lgamma()
  local is_zero = x:lt(EPS)
  return T.where(is_zero, case_zero, 0) + T.where(is_zero, 0, case_non_zero)
end
function ZINB:mean() return (1 - self.pi:sigmoid()) * self.mu end
function ZINB:sample(n, opts)
  local gen
  n, gen = sample_args("ZeroInflatedNegativeBinomial:sample", n, opts)
  return T.no_grad(function()
    local counts = self.nb:sample(n, { gen = gen })
    local p0 = self.pi:sigmoid():expand(counts:shape()):contiguous()
    local u = T.rand(counts:shape(), { gen = gen, dtype = self.dtype })
    return T.where(u:lt(p0), 0, counts)
  end)
end
function ZINB:rsample() error("ZeroInflatedNegativeBinomial: rsample is not defined (discrete)", 2) end

-- ---------- KL divergences ----------
function D.kl_divergence(p, q)
  local mp, mq = getmetatable(p), getmetatable(q)
  if mp == Normal and mq == Normal then
    local r = p.scale / q.scale
    local dm = (p.loc - q.loc) / q.scale
    return (r * r + dm * dm - 1) * 0.5 - r:log()
  elseif mp == PS and mq == Uniform then
    if p.d ~= q.dim then
      error(string.format("kl_divergence: PowerSpherical of dimension %d vs uniform on S^%d", p.d, q.dim - 1), 2)
    end
    return p:entropy() * -1 + log_sphere_area(q.dim)
  end
  error(string.format("kl_divergence: not implemented for (%s, %s)",
    mp and mp.__name or type(p), mq and mq.__name or type(q)), 2)
end

D.classes = { Normal = Normal, Beta = Beta, PowerSpherical = PS, HypersphericalUniform = Uniform,
  NegativeBinomial = NB, ZeroInflatedNegativeBinomial = ZINB }
return D
