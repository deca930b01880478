-- NegativeBinomial(mu, theta) in scVI's mean / inverse-dispersion parameterisation
-- (variance mu + mu^2 / theta) and ZeroInflatedNegativeBinomial(mu, theta, pi_logits)
-- (probability of an extra zero sigmoid(pi_logits)). log_prob follows scVI's
-- log_nb_positive / log_zinb_positive, eps = 1e-8 included, so that losses match scVI's.
local core = require "velua.core"

return function(T, U)
  local EPS = 1e-8

  local NB = U.class("NegativeBinomial")

  local function nb(mu, theta)
    local dt = U.float_dtype(mu, theta)
    mu = U.param("NegativeBinomial", "mu", mu, dt)
    theta = U.param("NegativeBinomial", "theta", theta, dt)
    U.check("NegativeBinomial", "mu must be >= 0", mu, function(x) return x:ge(0) end)
    U.check("NegativeBinomial", "theta must be positive", theta, function(x) return x:gt(0) end)
    return setmetatable({ mu = mu, theta = theta, dtype = dt, batch_shape = U.broadcast(mu, theta) },
      NB)
  end

  -- log NB(x; mu, theta) = theta log(theta / (theta + mu)) + x log(mu / (theta + mu))
  --   + lgamma(x + theta) - lgamma(theta) - lgamma(x + 1)
  local function nb_log_prob(x, mu, theta)
    local log_theta_mu_eps = (theta + mu + EPS):log()
    return theta * ((theta + EPS):log() - log_theta_mu_eps) +
      x * ((mu + EPS):log() - log_theta_mu_eps) +
      (x + theta):lgamma() - theta:lgamma() - (x + 1):lgamma()
  end

  function NB:log_prob(x)
    return nb_log_prob(T.as_tensor(x, { dtype = self.dtype }), self.mu, self.theta)
  end
  function NB:mean() return self.mu:expand(self.batch_shape) end
  function NB:variance() return self.mu + self.mu * self.mu / self.theta end

  -- Gamma-Poisson mixture: lambda ~ Gamma(shape theta, scale mu / theta), x ~ Poisson(lambda);
  -- counts in the parameters' float dtype.
  local function nb_draw(mu, theta, dtype, shape, gen)
    local g = core.rand_gamma_(T.empty(shape, { dtype = dtype }), gen, theta)
    local lam = g * (mu / theta)
    return core.rand_poisson_(T.empty(shape, { dtype = dtype }), gen, lam)
  end

  function NB:sample(n, opts)
    local gen
    n, gen = U.sample_args("NegativeBinomial:sample", n, opts)
    return T.no_grad(function()
      return nb_draw(self.mu, self.theta, self.dtype, U.with_n(n, self.batch_shape), gen)
    end)
  end
  function NB.rsample()
    error("NegativeBinomial:rsample: a discrete distribution has no reparameterised sample " ..
      "(use sample)", 2)
  end

  local ZINB = U.class("ZeroInflatedNegativeBinomial")

  local function zinb(mu, theta, pi_logits)
    local dt = U.float_dtype(mu, theta, pi_logits)
    local base = nb(U.param("ZeroInflatedNegativeBinomial", "mu", mu, dt),
      U.param("ZeroInflatedNegativeBinomial", "theta", theta, dt))
    local pi = U.param("ZeroInflatedNegativeBinomial", "pi_logits", pi_logits, dt)
    return setmetatable({ mu = base.mu, theta = base.theta, pi_logits = pi, dtype = dt,
      batch_shape = U.broadcast(base.mu, base.theta, pi) }, ZINB)
  end

  -- scVI's log_zinb_positive: with s = softplus(-pi) and
  -- pt = -pi + theta (log(theta) - log(theta + mu)):
  --   x = 0: softplus(pt) - s;   x > 0: -s + pt + x (log mu - log(theta + mu)) + lgamma terms
  function ZINB:log_prob(x)
    x = T.as_tensor(x, { dtype = self.dtype })
    local mu, theta, pi = self.mu, self.theta, self.pi_logits
    local softplus_pi = (-pi):softplus()
    local log_theta_mu_eps = (theta + mu + EPS):log()
    local pi_theta_log = -pi + theta * ((theta + EPS):log() - log_theta_mu_eps)
    local case_zero = pi_theta_log:softplus() - softplus_pi
    local case_non_zero = -softplus_pi + pi_theta_log + x * ((mu + EPS):log() - log_theta_mu_eps) +
      (x + theta):lgamma() - theta:lgamma() - (x + 1):lgamma()
    local is_zero = x:lt(EPS)
    return T.where(is_zero, case_zero, 0) + T.where(is_zero, 0, case_non_zero)
  end

  -- E[x] = (1 - p) mu, Var[x] = (1 - p) (mu + mu^2/theta) + p (1 - p) mu^2, p = sigmoid(pi)
  function ZINB:mean() return (1 - self.pi_logits:sigmoid()) * self.mu end
  function ZINB:variance()
    local p, mu = self.pi_logits:sigmoid(), self.mu
    return (1 - p) * (mu + mu * mu / self.theta) + p * (1 - p) * mu * mu
  end

  -- NB counts, each replaced by 0 with probability sigmoid(pi_logits) (as scVI)
  function ZINB:sample(n, opts)
    local gen
    n, gen = U.sample_args("ZeroInflatedNegativeBinomial:sample", n, opts)
    return T.no_grad(function()
      local shape = U.with_n(n, self.batch_shape)
      local counts = nb_draw(self.mu, self.theta, self.dtype, shape, gen)
      local u = T.rand(shape, { gen = gen, dtype = self.dtype })
      return T.where(u:lt(self.pi_logits:sigmoid()), 0, counts)
    end)
  end
  function ZINB.rsample()
    error("ZeroInflatedNegativeBinomial:rsample: a discrete distribution has no " ..
      "reparameterised sample (use sample)", 2)
  end

  return nb, NB, zinb, ZINB
end
