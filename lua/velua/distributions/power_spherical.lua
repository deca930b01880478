-- PowerSpherical(mu, kappa) on S^{d-1} (De Cao and Aziz 2020; ../shared/SPEC.md section 7) and
-- HypersphericalUniform(d), the uniform distribution on S^{d-1} in R^d.
return function(T, U, beta_draw)
  local LOG2, LOGPI = math.log(2), math.log(math.pi)

  local function lgamma(x) return T.full({}, x, { dtype = "f64" }):lgamma():item() end
  -- log of the surface area of S^{d-1}: log(2 pi^{d/2} / Gamma(d/2))
  local function log_sphere_area(d) return LOG2 + (d / 2) * LOGPI - lgamma(d / 2) end

  -- ---------- uniform on the sphere ----------
  local Uniform = U.class("HypersphericalUniform")

  local function uniform(dim, opts)
    if math.type(dim) ~= "integer" or dim < 2 then
      error("HypersphericalUniform: dim (the ambient dimension d of S^{d-1}) must be an " ..
        "integer >= 2, got " .. tostring(dim), 2)
    end
    local o = require("velua.options").check("HypersphericalUniform", opts,
      { dtype = T.default_dtype() })
    return setmetatable({ dim = dim, event_dim = dim, dtype = o.dtype, batch_shape = {} }, Uniform)
  end

  -- normalised standard Gaussian vectors
  function Uniform:rsample(n, opts)
    local gen
    n, gen = U.sample_args("HypersphericalUniform:rsample", n, opts)
    return T.randn(U.with_n(n, {}, self.dim), { gen = gen, dtype = self.dtype }):normalize(-1)
  end
  function Uniform:entropy() return T.full({}, log_sphere_area(self.dim), { dtype = self.dtype }) end
  function Uniform:log_prob(x)
    local s = x:shape()
    s[#s] = nil
    return T.full(s, -log_sphere_area(self.dim), { dtype = x:dtype() })
  end
  function Uniform:mean() return T.zeros({ self.dim }, { dtype = self.dtype }) end

  -- ---------- Power Spherical ----------
  local PS = U.class("PowerSpherical")

  -- mu [..., d] (unit vectors), kappa [...] or [..., 1] or a number (> 0)
  local function new(mu, kappa)
    if not T.is_tensor(mu) or mu:dim() < 1 then
      error("PowerSpherical: mu must be a tensor of shape [..., d]", 2)
    end
    local d = mu:size(-1)
    if d < 2 then error("PowerSpherical: the dimension d must be >= 2, got " .. d, 2) end
    local dt = U.float_dtype(mu, kappa)
    mu = U.param("PowerSpherical", "mu", mu, dt)
    kappa = U.param("PowerSpherical", "kappa", kappa, dt)
    if kappa:dim() == mu:dim() and kappa:size(-1) == 1 then kappa = kappa:squeeze(-1) end
    U.check("PowerSpherical", "kappa must be positive", kappa, function(k) return k:gt(0) end)
    local batch = U.broadcast(mu:select(-1, 1), kappa)
    local bc = (d - 1) / 2
    return setmetatable({ loc = mu, scale = kappa, event_dim = d, dtype = dt, batch_shape = batch,
      alpha = kappa + bc, beta = bc }, PS)
  end

  -- t = 2 z - 1 with z ~ Beta(alpha, beta); v uniform on S^{d-2}; y = (t, sqrt(1 - t^2) v);
  -- x = y - 2 (y.u) u with u = (e1 - mu)/|e1 - mu| (the reflection that maps e1 to mu).
  function PS:rsample(n, opts)
    local gen
    n, gen = U.sample_args("PowerSpherical:rsample", n, opts)
    local d, dt = self.event_dim, self.dtype
    local shape = U.with_n(n, self.batch_shape)
    local z = beta_draw(self.alpha, T.full({}, self.beta, { dtype = dt }), dt, shape, gen)
    local v = T.randn(U.with_n(n, self.batch_shape, d - 1), { gen = gen, dtype = dt }):normalize(-1)
    local t = (z * 2 - 1):unsqueeze(-1)
    local r = ((z * (1 - z)):sqrt() * 2):unsqueeze(-1) -- sqrt(1 - t^2) without cancellation
    local y = T.cat({ t, r * v }, -1)
    local e1 = T.zeros({ d }, { dtype = dt })
    e1:set(1, 1)
    -- u = (e1 - mu)/|e1 - mu|; the clamp keeps gradients finite (zero) when mu = e1, where
    -- u = 0 and the reflection is the identity
    local diff = e1 - self.loc
    local u = diff / (diff * diff):sum(-1, true):clamp(1e-30):sqrt()
    return y - u * ((y * u):sum(-1, true) * 2)
  end

  -- log C = -[(alpha + beta) log 2 + lgamma(alpha) - lgamma(alpha + beta) + beta log pi]
  function PS:log_normalizer()
    local a, b = self.alpha, self.beta
    return -((a + b) * LOG2 + a:lgamma() - (a + b):lgamma() + b * LOGPI)
  end

  function PS:log_prob(x)
    return self:log_normalizer() + self.scale * (self.loc * x):sum(-1):log1p()
  end

  -- H = -[log C + kappa (log 2 + psi(alpha) - psi(alpha + beta))]
  function PS:entropy()
    local a, b = self.alpha, self.beta
    local h = -(self:log_normalizer() + self.scale * (LOG2 + a:digamma() - (a + b):digamma()))
    return h:expand(self.batch_shape)
  end

  -- E[x] = mu (alpha - beta) / (alpha + beta)
  function PS:mean()
    local a, b = self.alpha, self.beta
    return self.loc * ((a - b) / (a + b)):unsqueeze(-1)
  end

  -- KL(PS || U) = H_U - H_PS
  local function kl(p, q)
    if p.event_dim ~= q.dim then
      error(string.format("kl_divergence: PowerSpherical on S^%d vs HypersphericalUniform on S^%d",
        p.event_dim - 1, q.dim - 1), 3)
    end
    return -p:entropy() + log_sphere_area(q.dim)
  end

  return new, PS, uniform, Uniform, kl
end
