-- Beta(a, b) with implicit reparameterisation gradients, and the regularised incomplete beta
-- function I_x(a, b) (the Beta CDF) as a differentiable function.
--
-- A Beta sample z is drawn in C from two Marsaglia-Tsang Gamma variates. Its gradients follow
-- from holding u = I_z(a, b) fixed (Figurnov et al. 2018, "Implicit reparameterization
-- gradients"): dz/da = -(dI_z/da) / p(z), dz/db = -(dI_z/db) / p(z), p the Beta density.
-- csrc/core/special.c computes them from the derivatives of the continued fraction of I.
local core = require "velua.core"

return function(T, U)
  local Beta = U.class("Beta")

  local function lbeta(a, b) return a:lgamma() + b:lgamma() - (a + b):lgamma() end

  -- z = make() (a fresh tensor) with gradients to a and b by the implicit rule above.
  local implicit = T.def_differentiable("beta_implicit", function(a, b, make)
    return make()
  end, function(g, args, z)
    local dza, dzb = core.beta_reparam_grad(args[1], args[2], z)
    return g * dza, g * dzb
  end, "in,out")

  -- betainc(a, b, x): I_x(a, b), differentiable in a, b (derivatives of the continued
  -- fraction) and x (the density).
  local betainc = T.def_differentiable("betainc", function(a, b, x)
    return core.betainc(a, b, x)
  end, function(g, args)
    local a, b, x = args[1], args[2], args[3]
    local ga, gb, gx
    if T.is_tensor(a) and a:needs_grad() or T.is_tensor(b) and b:needs_grad() then
      local da, db = core.betainc_grad(a, b, x)
      ga, gb = g * da, g * db
    end
    if T.is_tensor(x) and x:needs_grad() then
      local at, bt = T.as_tensor(a, { dtype = "f64" }), T.as_tensor(b, { dtype = "f64" })
      local logp = (at - 1) * x:log() + (bt - 1) * (-x):log1p() - lbeta(at, bt)
      gx = g * logp:exp():to(x:dtype())
    end
    return ga, gb, gx
  end, "in")

  local function new(a, b)
    local dt = U.float_dtype(a, b)
    a = U.param("Beta", "a", a, dt)
    b = U.param("Beta", "b", b, dt)
    U.check("Beta", "concentrations a and b must be positive", a, function(x) return x:gt(0) end)
    U.check("Beta", "concentrations a and b must be positive", b, function(x) return x:gt(0) end)
    return setmetatable({ a = a, b = b, dtype = dt, batch_shape = U.broadcast(a, b) }, Beta)
  end

  -- Draws of shape {n, batch...} (or batch) with implicit gradients to a and b.
  local function draw(a, b, dtype, shape, gen)
    return implicit(a, b, function()
      return core.rand_beta_(T.empty(shape, { dtype = dtype }), gen, a, b)
    end)
  end

  function Beta:rsample(n, opts)
    local gen
    n, gen = U.sample_args("Beta:rsample", n, opts)
    return draw(self.a, self.b, self.dtype, U.with_n(n, self.batch_shape), gen)
  end

  function Beta:log_prob(x)
    x = T.as_tensor(x, { dtype = self.dtype })
    return (self.a - 1) * x:log() + (self.b - 1) * (-x):log1p() - lbeta(self.a, self.b)
  end

  -- cdf(x) = I_x(a, b); icdf(u) its inverse, with the implicit gradients of rsample.
  function Beta:cdf(x) return betainc(self.a, self.b, T.as_tensor(x, { dtype = self.dtype })) end
  function Beta:icdf(u)
    u = T.as_tensor(u, { dtype = self.dtype })
    local a, b = self.a, self.b
    return implicit(a, b, function() return core.betaincinv(a, b, u) end)
  end

  function Beta:entropy()
    local a, b = self.a, self.b
    return lbeta(a, b) - (a - 1) * a:digamma() - (b - 1) * b:digamma() +
      (a + b - 2) * (a + b):digamma()
  end
  function Beta:mean() return self.a / (self.a + self.b) end
  function Beta:variance()
    local s = self.a + self.b
    return self.a * self.b / (s * s * (s + 1))
  end

  return new, Beta, draw, betainc, lbeta
end
