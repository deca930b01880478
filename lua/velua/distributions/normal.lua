-- Normal(mu, sigma): location-scale reparameterisation, rsample = mu + sigma * eps.
return function(T, U)
  local LOG2PI = math.log(2 * math.pi)
  local Normal = U.class("Normal")

  local function new(mu, sigma)
    local dt = U.float_dtype(mu, sigma)
    mu = U.param("Normal", "mu", mu, dt)
    sigma = U.param("Normal", "sigma", sigma, dt)
    U.check("Normal", "sigma must be positive", sigma, function(s) return s:gt(0) end)
    return setmetatable({ loc = mu, scale = sigma, dtype = dt,
      batch_shape = U.broadcast(mu, sigma) }, Normal)
  end

  -- rsample([n] [, {gen=}]): mu + sigma * eps with eps ~ N(0, 1) from the generator
  function Normal:rsample(n, opts)
    local gen
    n, gen = U.sample_args("Normal:rsample", n, opts)
    local eps = T.randn(U.with_n(n, self.batch_shape), { gen = gen, dtype = self.dtype })
    return self.loc + self.scale * eps
  end

  function Normal:log_prob(x)
    local z = (x - self.loc) / self.scale
    return z * z * -0.5 - self.scale:log() - 0.5 * LOG2PI
  end

  function Normal:entropy()
    return (self.scale:log() + (0.5 + 0.5 * LOG2PI)):expand(self.batch_shape)
  end
  function Normal:mean() return self.loc:expand(self.batch_shape) end
  function Normal:variance() return (self.scale * self.scale):expand(self.batch_shape) end
  function Normal:stddev() return self.scale:expand(self.batch_shape) end

  -- KL(p || q) = log(sigma_q / sigma_p) + (sigma_p^2 + (mu_p - mu_q)^2) / (2 sigma_q^2) - 1/2
  local function kl(p, q)
    local r = p.scale / q.scale
    local dm = (p.loc - q.loc) / q.scale
    return (r * r + dm * dm - 1) * 0.5 - r:log()
  end

  return new, Normal, kl
end
