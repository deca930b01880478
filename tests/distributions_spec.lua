-- velua.distributions: the SPEC section 7 check values, the incomplete beta function against
-- closed forms and mpmath, moments against closed forms within Monte Carlo error, log_prob
-- normalisation by quadrature, and rsample gradients against central finite differences with
-- common random numbers.
local velua = require "velua"
local T, D = velua.tensor, velua.distributions
local core = require "velua.core"

-- The Monte Carlo tests leave large temporary tensors behind; collect them so that later
-- specs that measure the resident set size start from a clean heap.
teardown(function() collectgarbage("collect"); collectgarbage("collect") end)

local function f64(x) return T.tensor(x, { dtype = "f64" }) end
local function close(a, b, tol, what)
  assert(math.abs(a - b) <= tol,
    string.format("%s: %.10g vs %.10g (diff %.3g, tol %.3g)", what or "", a, b, math.abs(a - b), tol))
end
-- log1p and expm1 (Lua has neither) by Kahan's and Higham's corrections: accurate near 0.
local function log1p(x)
  local u = 1 + x
  return u == 1 and x or math.log(u) * x / (u - 1)
end
local function expm1(x)
  local u = math.exp(x)
  if u == 1 then return x end
  if u - 1 == -1 then return -1 end
  return (u - 1) * x / math.log(u)
end
local function rel_close(a, b, rtol, what) close(a, b, rtol * math.max(math.abs(b), 1e-300), what) end

-- Sample mean of x (1-d tensor or along dim 1) and its standard error.
local function mean_se(x)
  local n = x:size(1)
  return x:mean(1), (x:var(1) / n):sqrt()
end

-- Sample variance and the standard error of it, sqrt((m4 - v^2) / n).
local function var_se(x)
  local n = x:size(1)
  local c = x - x:mean(1, true)
  local v = (c * c):mean(1)
  local m4 = (c * c * c * c):mean(1)
  return x:var(1), ((m4 - v * v) / n):sqrt()
end

-- Checks |empirical - expected| <= k standard errors, elementwise.
local function within_se(emp, se, expected, k, what)
  emp, se = emp:reshape(-1):totable(), se:reshape(-1):totable()
  expected = expected:reshape(-1):totable()
  for i = 1, #emp do
    close(emp[i], expected[i], k * se[i] + 1e-12, string.format("%s[%d]", what, i))
  end
end

describe("incomplete beta function I_x(a, b)", function()
  it("has the closed forms I_0.5(a,a) = 1/2, I_x(1,b) = 1-(1-x)^b, I_x(a,1) = x^a and their a-, b-derivatives", function()
    -- relative accuracy ~(a + b) 1e-16: the rounding of log x and log(1-x) times a and b
    for _, a in ipairs { 0.01, 0.1, 1, 7.3, 150, 1e4 } do
      rel_close(core.betainc(a, a, 0.5):item(), 0.5, 1e-14 + 2e-16 * 2 * a, "I_0.5(a,a), a=" .. a)
    end
    for _, x in ipairs { 1e-8, 0.1, 0.5, 0.9, 0.999 } do
      for _, s in ipairs { 0.05, 0.7, 2.5, 40 } do
        rel_close(core.betainc(s, 1, x):item(), x ^ s, 1e-13, "I_x(a,1)")
        rel_close(core.betainc(1, s, x):item(), -expm1(s * log1p(-x)), 1e-13, "I_x(1,b)")
        local da = core.betainc_grad(s, 1, x)            -- d/da x^a = x^a log x
        rel_close(da:item(), x ^ s * math.log(x), 1e-12, "d/da I_x(a,1)")
        local _, db = core.betainc_grad(1, s, x)         -- d/db 1-(1-x)^b = -(1-x)^b log(1-x)
        rel_close(db:item(), -(1 - x) ^ s * log1p(-x), 1e-12, "d/db I_x(1,b)")
      end
    end
    -- symmetric case: the a- and b-derivatives are opposite
    local da, db = core.betainc_grad(7.3, 7.3, 0.5)
    rel_close(da:item(), -db:item(), 1e-12, "dI/da = -dI/db at a = b, x = 1/2")
  end)

  it("matches mpmath (40 digits) in value and a-, b-derivatives", function()
    -- { a, b, x, I, dI/da, dI/db } from mpmath: hyp2f1 form of I and mp.diff
    local ref = {
      { 0.3, 0.7, 0.2, 0.53759664774650968131, -1.0640139213419612052, 0.31861216115972493823 },
      { 2.5, 0.5, 0.95, 0.62981187119246429735, -0.075166872817837004084, 0.7934278104521198205 },
      { 4.5, 0.5, 0.7, 0.081126188845840615415, -0.035586896752634924496, 0.20819131807537861637 },
      { 30, 12, 0.75, 0.68233431418078304944, -0.033266377764919728077, 0.091772171167873920356 },
      { 0.05, 2, 1e-10, 0.33203915431609867129, -7.3292563042007682948, 0.010542783037847368838 },
      { 250, 250, 0.49, 0.32742498093117651997, -0.016320258208648586378, 0.015997170306184881033 },
      { 1000, 4.5, 0.998, 0.91068651448075044138, -0.00026462068305494549916, 0.088891183729325641485 },
      { 3, 1000, 0.001, 0.080577590360204410253, -0.10662191248267399504, 0.00018430773029447811464 },
    }
    for _, r in ipairs(ref) do
      local a, b, x = f64(r[1]), f64(r[2]), f64(r[3])
      local what = string.format("(%g, %g, %g)", r[1], r[2], r[3])
      rel_close(core.betainc(a, b, x):item(), r[4], 1e-13, "I " .. what)
      local da, db = core.betainc_grad(a, b, x)
      rel_close(da:item(), r[5], 1e-12, "dI/da " .. what)
      rel_close(db:item(), r[6], 1e-12, "dI/db " .. what)
    end
  end)

  it("dI/da and dI/db agree with central finite differences of I", function()
    for _, c in ipairs { { 0.4, 2.2, 0.3 }, { 3, 5, 0.8 }, { 12, 0.6, 0.97 }, { 80, 40, 0.66 } } do
      local a, b, x = c[1], c[2], c[3]
      local da, db = core.betainc_grad(a, b, x)
      -- Richardson-extrapolated central differences (error O(h^4))
      local function fd(f, p)
        local function cd(h) return (f(p + h) - f(p - h)) / (2 * h) end
        local h = 1e-3 * p
        return (4 * cd(h / 2) - cd(h)) / 3
      end
      local fa = fd(function(t) return core.betainc(t, b, x):item() end, a)
      local fb = fd(function(t) return core.betainc(a, t, x):item() end, b)
      rel_close(da:item(), fa, 1e-8, string.format("dI/da (%g,%g,%g)", a, b, x))
      rel_close(db:item(), fb, 1e-8, string.format("dI/db (%g,%g,%g)", a, b, x))
    end
  end)

  it("is inverted by betaincinv, and D.betainc is differentiable in a, b and x", function()
    for _, c in ipairs { { 0.1, 0.1 }, { 0.5, 3 }, { 4.5, 0.5 }, { 200, 30 } } do
      for _, p in ipairs { 1e-12, 0.01, 0.5, 0.9, 1 - 1e-9 } do
        local x = core.betaincinv(c[1], c[2], p):item()
        -- (only where the quantile is representable: Beta(0.1, 0.1) puts the 1 - 1e-9
        -- quantile at 1 - 1e-90)
        if x > 1e-300 and 1 - x > 1e-15 then rel_close(core.betainc(c[1], c[2], x):item(), p, 1e-9, string.format("I(I^-1(%g))", p)) end
      end
    end
    local a, b, x = f64(2.5):requires_grad(), f64(1.5):requires_grad(), f64(0.3):requires_grad()
    D.betainc(a, b, x):backward()
    local da, db = core.betainc_grad(2.5, 1.5, 0.3)
    rel_close(a:grad():item(), da:item(), 1e-14, "grad a")
    rel_close(b:grad():item(), db:item(), 1e-14, "grad b")
    rel_close(x:grad():item(), D.Beta(f64(2.5), f64(1.5)):log_prob(f64(0.3)):exp():item(), 1e-12,
      "grad x = density")
  end)
end)

describe("Normal", function()
  it("sample means and variances match mu and sigma^2 within Monte Carlo error", function()
    local mu, sigma = f64 { 0.5, -1, 3 }, f64 { 2, 0.3, 1 }
    local s = D.Normal(mu, sigma):sample(100000, { gen = T.generator(1) })
    local m, mse = mean_se(s)
    within_se(m, mse, mu, 5, "mean")
    local v, vse = var_se(s)
    within_se(v, vse, sigma * sigma, 5, "variance")
  end)

  it("log_prob integrates to 1; entropy, mean, variance, stddev and KL have their closed forms", function()
    local n = D.Normal(f64(0.5), f64(2))
    local m = 200000
    local grid = T.linspace(0.5 - 24, 0.5 + 24, m, { dtype = "f64" })
    close(n:log_prob(grid):exp():sum():item() * 48 / (m - 1), 1, 1e-9, "integral")
    local p = n:log_prob(grid):exp()
    close((-(p * n:log_prob(grid))):sum():item() * 48 / (m - 1), n:entropy():item(), 1e-8, "entropy")
    close(n:entropy():item(), 0.5 + 0.5 * math.log(2 * math.pi) + math.log(2), 1e-14, "entropy")
    close(n:mean():item(), 0.5, 0, "mean")
    close(n:variance():item(), 4, 0, "variance")
    close(n:stddev():item(), 2, 0, "stddev")
    local kl = D.kl_divergence(D.Normal(f64(1), f64(2)), D.Normal(f64(-0.5), f64(0.7))):item()
    close(kl, math.log(0.7 / 2) + (4 + 1.5 ^ 2) / (2 * 0.49) - 0.5, 1e-14, "KL")
    close(D.kl_divergence(n, n):item(), 0, 1e-15, "KL(p || p)")
  end)

  it("rsample gradients to mu and sigma match central finite differences (common random numbers)", function()
    local w = T.randn({ 50, 2 }, { gen = T.generator(5), dtype = "f64" })
    local function f(mu, sigma)
      return (D.Normal(mu, sigma):rsample(50, { gen = T.generator(7) }) * w):sum()
    end
    local mu0, s0 = { 0.3, -1.2 }, { 1.7, 0.4 }
    local mu, sigma = f64(mu0):requires_grad(), f64(s0):requires_grad()
    f(mu, sigma):backward()
    local gm, gs = mu:grad():totable(), sigma:grad():totable()
    local h = 1e-6
    for i = 1, 2 do
      local mp, mm = { table.unpack(mu0) }, { table.unpack(mu0) }
      mp[i], mm[i] = mp[i] + h, mm[i] - h
      local fd = (f(f64(mp), f64(s0)):item() - f(f64(mm), f64(s0)):item()) / (2 * h)
      close(gm[i], fd, 1e-7 * math.max(1, math.abs(fd)), "d/dmu_" .. i)
      local sp, sm = { table.unpack(s0) }, { table.unpack(s0) }
      sp[i], sm[i] = sp[i] + h, sm[i] - h
      fd = (f(f64(mu0), f64(sp)):item() - f(f64(mu0), f64(sm)):item()) / (2 * h)
      close(gs[i], fd, 1e-7 * math.max(1, math.abs(fd)), "d/dsigma_" .. i)
    end
  end)
end)

describe("Beta", function()
  it("sample means and variances match a/(a+b) and ab/((a+b)^2(a+b+1)) within Monte Carlo error", function()
    for _, c in ipairs { { 2.5, 0.7 }, { 0.1, 0.2 }, { 0.02, 3 }, { 200, 50 }, { 1, 1 } } do
      local beta = D.Beta(f64(c[1]), f64(c[2]))
      local z = beta:sample(100000, { gen = T.generator(2) })
      assert(z:gt(0):all():item() and z:lt(1):all():item(), "samples inside (0, 1)")
      local m, mse = mean_se(z)
      within_se(m, mse, beta:mean(), 5, string.format("mean Beta(%g,%g)", c[1], c[2]))
      local v, vse = var_se(z)
      within_se(v, vse, beta:variance(), 5, string.format("var Beta(%g,%g)", c[1], c[2]))
    end
  end)

  it("log_prob integrates to 1, its integral is the cdf, and the entropy matches quadrature", function()
    for _, c in ipairs { { 2, 3.5 }, { 1, 1 }, { 5.5, 1.2 } } do
      local bb = D.Beta(f64(c[1]), f64(c[2]))
      local m = 100000
      local grid = T.linspace(0.5 / m, 1 - 0.5 / m, m, { dtype = "f64" })
      local p = bb:log_prob(grid):exp()
      -- (midpoint rule; (1-x)^0.2 at the edge for Beta(5.5, 1.2) limits it to ~4e-7)
      close(p:sum():item() / m, 1, 1e-6, "integral")
      close((-(p * bb:log_prob(grid))):sum():item() / m, bb:entropy():item(), 1e-5, "entropy")
      -- cumulative midpoint sums against I_x at the right edges
      local cum = 0
      local pt = p:totable()
      for i = 1, m do
        cum = cum + pt[i] / m
        if i % 20000 == 0 then close(cum, bb:cdf(f64(i / m)):item(), 1e-6, "cdf at " .. i / m) end
      end
    end
  end)

  it("rsample gradients to a and b match finite differences of the quantile at common u = I_z(a,b)", function()
    -- The implicit gradient is dz/da at fixed u = F(z; a, b), i.e. the derivative of the
    -- quantile function F^-1(u; a, b); per sample it is compared with central differences of
    -- betaincinv at the same u.
    for _, c in ipairs { { 2.5, 0.7 }, { 0.3, 0.4 }, { 4.5, 0.5 }, { 60, 25 }, { 1500, 4.5 } } do
      local n = 40
      local a = T.full({ n }, c[1], { dtype = "f64" }):requires_grad()
      local b = T.full({ n }, c[2], { dtype = "f64" }):requires_grad()
      local z = D.Beta(a, b):rsample({ gen = T.generator(3) })
      z:sum():backward()
      local ga, gb = a:grad():totable(), b:grad():totable()
      local zd = z:detach()
      local u = core.betainc(c[1], c[2], zd)
      local function q(aa, bb) return core.betaincinv(aa, bb, u):totable() end
      local ha, hb = 1e-5 * c[1], 1e-5 * c[2]
      local ap, am, bp, bm = q(c[1] + ha, c[2]), q(c[1] - ha, c[2]), q(c[1], c[2] + hb), q(c[1], c[2] - hb)
      for i = 1, n do
        local zi = zd:get(i)
        if zi > 1e-250 and 1 - zi > 1e-12 then -- skip draws where the quantile is not resolvable
          local fa, fb = (ap[i] - am[i]) / (2 * ha), (bp[i] - bm[i]) / (2 * hb)
          local what = string.format("Beta(%g,%g) z=%.6g", c[1], c[2], zi)
          -- the quantiles are exact to ~1e-16 absolute: that over 2h bounds the differences
          close(ga[i], fa, 1e-6 * math.abs(fa) + 4e-16 / ha, "dz/da " .. what)
          close(gb[i], fb, 1e-6 * math.abs(fb) + 4e-16 / hb, "dz/db " .. what)
        end
      end
    end
  end)

  it("pathwise gradients are unbiased: mean of dz/da and dz/db matches d/da, d/db of a/(a+b)", function()
    local a, b = f64(2):requires_grad(), f64(3):requires_grad()
    local n = 200000
    local z = D.Beta(a, b):rsample(n, { gen = T.generator(5) })
    z:mean():backward()
    -- standard errors of the per-sample derivatives, from the same samples
    local zd = z:detach()
    local dza, dzb = core.beta_reparam_grad(a:detach(), b:detach(), zd)
    close(a:grad():item(), 3 / 25, 5 * dza:std():item() / math.sqrt(n), "d E[z]/da") -- b/(a+b)^2
    close(b:grad():item(), -2 / 25, 5 * dzb:std():item() / math.sqrt(n), "d E[z]/db") -- -a/(a+b)^2
  end)
end)

describe("Power Spherical", function()
  it("has the SPEC check values: KL = 0.8277 and E[x] = (0, 0.8) for mu = (0,1), kappa = 4", function()
    local ps = D.PowerSpherical(f64 { 0, 1 }, f64(4))
    close(D.kl_divergence(ps, D.HypersphericalUniform(2)):item(), 0.8277, 5e-5, "KL")
    local m = ps:mean():totable()
    close(m[1], 0, 1e-15, "E[x]_1")
    close(m[2], 0.8, 1e-15, "E[x]_2")
    -- the same with kappa as a number and as [1]
    close(D.kl_divergence(D.PowerSpherical(f64 { 0, 1 }, 4), D.HypersphericalUniform(2)):item(),
      0.8277, 5e-5, "KL (number)")
    close(D.kl_divergence(D.PowerSpherical(f64 { 0, 1 }, f64 { 4 }), D.HypersphericalUniform(2)):item(),
      0.8277, 5e-5, "KL ([1])")
  end)

  it("samples lie on the sphere; their mean and E[(mu.x)^2] match the closed forms (d = 2, 3, 10)", function()
    for _, d in ipairs { 2, 3, 10 } do
      for _, kappa in ipairs { 0.3, 4, 50 } do
        local mu = T.randn({ d }, { gen = T.generator(d), dtype = "f64" }):normalize()
        local ps = D.PowerSpherical(mu, f64(kappa))
        local n = 40000
        local x = ps:rsample(n, { gen = T.generator(100 + d) })
        close((x:norm(2, -1) - 1):abs():max():item(), 0, 1e-12, "norm")
        local what = string.format("d=%d kappa=%g", d, kappa)
        local m, se = mean_se(x)
        within_se(m, se, ps:mean(), 5, "mean " .. what)
        -- t = mu.x = 2z - 1, z ~ Beta(alpha, beta): E[t^2] = 4 E[z^2] - 4 E[z] + 1
        local t = (x * mu):sum(-1)
        local al, be = (d - 1) / 2 + kappa, (d - 1) / 2
        local ez = al / (al + be)
        local ez2 = ez * ez + al * be / ((al + be) ^ 2 * (al + be + 1))
        local tm, tse = mean_se(t * t)
        close(tm:item(), 4 * ez2 - 4 * ez + 1, 5 * tse:item(), "E[t^2] " .. what)
      end
    end
  end)

  it("log_prob integrates to 1 over the circle (d = 2) and the sphere (d = 3); entropy by quadrature", function()
    local ps = D.PowerSpherical(f64 { 0.6, 0.8 }, f64(3))
    local m = 4000
    local pts = {}
    for i = 1, m do
      local th = 2 * math.pi * (i - 0.5) / m
      pts[i] = { math.cos(th), math.sin(th) }
    end
    local lp = ps:log_prob(f64(pts))
    close(lp:exp():sum():item() * 2 * math.pi / m, 1, 1e-10, "circle")
    close((-(lp:exp() * lp)):sum():item() * 2 * math.pi / m, ps:entropy():item(), 1e-10, "entropy d=2")
    local ps3 = D.PowerSpherical(f64 { 0, 0.6, 0.8 }, f64(2.5))
    local nt, np = 400, 400
    local xs, w = {}, {}
    for i = 1, nt do
      local th = math.pi * (i - 0.5) / nt
      for j = 1, np do
        local ph = 2 * math.pi * (j - 0.5) / np
        xs[#xs + 1] = { math.sin(th) * math.cos(ph), math.sin(th) * math.sin(ph), math.cos(th) }
        w[#w + 1] = math.sin(th) * (math.pi / nt) * (2 * math.pi / np)
      end
    end
    local lp3 = ps3:log_prob(f64(xs))
    close((lp3:exp() * f64(w)):sum():item(), 1, 1e-5, "sphere")
    close((-(lp3:exp() * lp3) * f64(w)):sum():item(), ps3:entropy():item(), 1e-4, "entropy d=3")
  end)

  it("rsample gradient to mu matches central finite differences with common random numbers", function()
    local n = 64
    local w = T.randn({ n, 3 }, { gen = T.generator(10), dtype = "f64" })
    local function f(mu, kappa)
      return (D.PowerSpherical(mu, kappa):rsample(n, { gen = T.generator(9) }) * w):sum()
    end
    local mu0 = { 0.3, -0.5, 0.81 }
    local mu = f64(mu0):requires_grad()
    f(mu, f64(5)):backward()
    local g = mu:grad():totable()
    local h = 1e-6
    for i = 1, 3 do
      local p, m = { table.unpack(mu0) }, { table.unpack(mu0) }
      p[i], m[i] = p[i] + h, m[i] - h
      local fd = (f(f64(p), f64(5)):item() - f(f64(m), f64(5)):item()) / (2 * h)
      close(g[i], fd, 1e-7 * math.max(1, math.abs(fd)), "d/dmu_" .. i)
    end
  end)

  it("rsample gradient to kappa matches finite differences with common (u, v)", function()
    -- x = t mu + sqrt(1 - t^2) H(0, v) with t = 2 F^-1(u; alpha, beta) - 1. The draws fix
    -- u = F((t+1)/2) and H(0, v) = (x - t mu)/sqrt(1 - t^2); moving kappa moves only t.
    for _, c in ipairs { { 3, 5 }, { 2, 0.7 }, { 10, 30 } } do
      local d, k0 = c[1], c[2]
      local n = 40
      local mu = T.randn({ d }, { gen = T.generator(d), dtype = "f64" }):normalize()
      local w = T.randn({ n, d }, { gen = T.generator(12), dtype = "f64" })
      local kappa = T.full({ n }, k0, { dtype = "f64" }):requires_grad()
      local ps = D.PowerSpherical(mu:expand({ n, d }), kappa)
      local x = ps:rsample({ gen = T.generator(13) })
      ;(x * w):sum():backward()
      local g = kappa:grad():totable()
      local xd = x:detach()
      local be = (d - 1) / 2
      local t0 = (xd * mu):sum(-1)
      local z0 = (t0 + 1) / 2
      local u = core.betainc(k0 + be, be, z0)
      local side = (xd - t0:unsqueeze(-1) * mu) / ((z0 * (1 - z0)):sqrt() * 2):unsqueeze(-1)
      local function xk(k)
        local z = core.betaincinv(k + be, be, u)
        return (z * 2 - 1):unsqueeze(-1) * mu + ((z * (1 - z)):sqrt() * 2):unsqueeze(-1) * side
      end
      local h = 1e-5 * k0
      local fd = (((xk(k0 + h) - xk(k0 - h)) * w):sum(-1) / (2 * h)):totable()
      for i = 1, n do
        close(g[i], fd[i], 1e-6 * math.max(1, math.abs(fd[i])), string.format("d/dkappa d=%d k=%g [%d]", d, k0, i))
      end
    end
  end)

  it("pathwise kappa gradients are unbiased: d/dkappa E[mu.x] = 2 beta/(kappa + 2 beta)^2", function()
    local k = f64(2):requires_grad()
    local e3 = f64 { 0, 0, 1 }
    local n = 200000
    local x = D.PowerSpherical(e3, k):rsample(n, { gen = T.generator(11) })
    local t = (x * e3):sum(-1)
    t:mean():backward()
    local beta = 1
    -- standard error from the per-sample derivative dt/dkappa = 2 dz/dalpha
    local dza = core.beta_reparam_grad(k:detach() + beta, f64(beta), (t:detach() + 1) / 2)
    close(k:grad():item(), 2 * beta / (2 + 2 * beta) ^ 2, 5 * (dza * 2):std():item() / math.sqrt(n),
      "d/dkappa E[mu.x]")
  end)

  it("batches over leading dims of mu with kappa [...] or [..., 1]; KL gradient matches finite differences", function()
    local mu = f64 { { 1, 0, 0 }, { 0, 0.6, 0.8 } }
    local a = D.PowerSpherical(mu, f64 { 1, 6 })
    local b = D.PowerSpherical(mu, f64 { { 1 }, { 6 } })
    assert.are.same({ 2 }, a.batch_shape)
    assert.are.same(a:mean():totable(), b:mean():totable())
    assert.are.same(a:rsample(3, { gen = T.generator(1) }):totable(),
      b:rsample(3, { gen = T.generator(1) }):totable())
    assert.are.same({ 3, 2, 3 }, a:rsample(3, { gen = T.generator(1) }):shape())
    local s = a:rsample(20000, { gen = T.generator(2) })
    local m, se = mean_se(s)
    within_se(m, se, a:mean(), 5, "batched mean")
    local u = D.HypersphericalUniform(3)
    local kappa = f64 { 1, 6 }:requires_grad()
    D.kl_divergence(D.PowerSpherical(mu, kappa), u):sum():backward()
    local g = kappa:grad():totable()
    for i, k in ipairs { 1, 6 } do
      local h = 1e-6
      local function kl(kk) return D.kl_divergence(D.PowerSpherical(f64 { 1, 0, 0 }, kk), u):item() end
      close(g[i], (kl(k + h) - kl(k - h)) / (2 * h), 1e-7, "dKL/dkappa")
    end
    -- f32 parameters: samples and gradients in f32
    local mu32 = T.tensor({ 0, 1 }):requires_grad()
    local x32 = D.PowerSpherical(mu32, 4):rsample(5, { gen = T.generator(1) })
    assert.are.equal("f32", x32:dtype())
    x32:sum():backward()
    assert.are.equal("f32", mu32:grad():dtype())
  end)

  it("HypersphericalUniform: entropy log|S^{d-1}|, constant log_prob, samples on the sphere", function()
    close(D.HypersphericalUniform(2):entropy():item(), math.log(2 * math.pi), 1e-6, "d=2")
    close(D.HypersphericalUniform(3, { dtype = "f64" }):entropy():item(), math.log(4 * math.pi), 1e-14, "d=3")
    local u = D.HypersphericalUniform(4, { dtype = "f64" })
    local x = u:sample(50000, { gen = T.generator(4) })
    assert.are.same({ 50000 }, u:log_prob(x):shape())
    close(u:log_prob(x):get(1), -math.log(2 * math.pi ^ 2), 1e-14, "log_prob d=4")
    close((x:norm(2, -1) - 1):abs():max():item(), 0, 1e-12, "norm")
    local m, se = mean_se(x)
    within_se(m, se, T.zeros({ 4 }, { dtype = "f64" }), 5, "uniform mean")
  end)
end)

describe("negative binomial", function()
  it("sample mean and variance match mu and mu + mu^2/theta", function()
    for _, c in ipairs { { 3, 2 }, { 0.5, 0.1 }, { 40, 5 }, { 200, 50 } } do
      local nb = D.NegativeBinomial(f64(c[1]), f64(c[2]))
      local x = nb:sample(200000, { gen = T.generator(3) })
      local what = string.format("NB(%g,%g)", c[1], c[2])
      local m, se = mean_se(x)
      within_se(m, se, f64(c[1]), 5, "mean " .. what)
      local v, vse = var_se(x)
      within_se(v, vse, f64(c[1] + c[1] ^ 2 / c[2]), 5, "variance " .. what)
      close(x:sub(x:floor()):abs():max():item(), 0, 0, "integers")
    end
  end)

  it("log_prob sums to 1 over k and matches the pmf recurrence; ZINB likewise", function()
    local mu, theta = 3, 2
    local nb = D.NegativeBinomial(f64(mu), f64(theta))
    local k = T.arange(0, 400, { dtype = "f64" })
    close(nb:log_prob(k):exp():sum():item(), 1, 1e-7, "sum") -- scVI's eps = 1e-8 shifts it by ~1e-8
    local p, lp = (theta / (theta + mu)) ^ theta, nb:log_prob(k):totable()
    for i = 0, 30 do
      if i > 0 then p = p * (i - 1 + theta) / i * mu / (theta + mu) end
      close(lp[i + 1], math.log(p), 1e-7, "log pmf at " .. i)
    end
    local z = D.ZeroInflatedNegativeBinomial(f64(mu), f64(theta), f64(0.4))
    close(z:log_prob(k):exp():sum():item(), 1, 1e-7, "zinb sum")
    local pi = 1 / (1 + math.exp(-0.4))
    close(z:log_prob(f64(0)):exp():item(), pi + (1 - pi) * (theta / (theta + mu)) ^ theta, 1e-7, "zinb P(0)")
    close(z:log_prob(f64(5)):item(), math.log(1 - pi) + lp[6], 1e-7, "zinb P(5)")
    local zs = z:sample(200000, { gen = T.generator(6) })
    local m, se = mean_se(zs)
    within_se(m, se, z:mean(), 5, "zinb mean")
    local v, vse = var_se(zs)
    within_se(v, vse, z:variance(), 5, "zinb variance")
  end)
end)

describe("distribution arguments, errors and reproducibility", function()
  it("checks arguments and options and names unsupported KL pairs", function()
    assert.is_false(pcall(D.Normal, f64(0), f64(-1)))
    assert.is_false(pcall(D.Beta, f64(0), f64(1)))
    assert.is_false(pcall(D.PowerSpherical, f64 { 0, 1 }, f64(-1)))
    assert.is_false(pcall(D.PowerSpherical, f64 { 1 }, f64(1)))
    assert.is_false(pcall(D.HypersphericalUniform, 1))
    local ok, e = pcall(D.kl_divergence, D.Beta(f64(1), f64(1)), D.Normal(f64(0), f64(1)))
    assert.is_false(ok)
    assert.is_truthy(e:find("not implemented for (Beta, Normal)", 1, true), e)
    ok, e = pcall(D.kl_divergence, D.PowerSpherical(f64 { 0, 1 }, 1), D.HypersphericalUniform(3))
    assert.is_truthy(e:find("S^1", 1, true), e)
    ok, e = pcall(function() return D.Normal(f64(0), f64(1)):rsample(3, { gne = 1 }) end)
    assert.is_truthy(e:find("unknown option 'gne'", 1, true), e)
    ok, e = pcall(function() return D.Beta(1, 1):sample(0) end)
    assert.is_truthy(e:find("positive integer", 1, true), e)
    ok, e = pcall(function() return D.NegativeBinomial(1, 1):rsample() end)
    assert.is_truthy(e:find("discrete", 1, true), e)
    ok, e = pcall(function() return D.Normal(0, 1):rsample({ gen = 3 }) end)
    assert.is_truthy(e:find("generator", 1, true), e)
  end)

  it("reproduces samples for a seed, on any thread count; sample carries no gradient", function()
    local ps = D.PowerSpherical(f64 { 1, 0, 0 }, f64(3))
    assert.are.same(ps:sample(5, { gen = T.generator(1) }):totable(), ps:sample(5, { gen = T.generator(1) }):totable())
    assert.are_not.same(ps:sample(5, { gen = T.generator(1) }):totable(), ps:sample(5, { gen = T.generator(2) }):totable())
    local g = T.generator(8)
    local st = g:get_state()
    local first = D.Beta(0.5, 2):sample(4, { gen = g }):totable()
    g:set_state(st)
    assert.are.same(first, D.Beta(0.5, 2):sample(4, { gen = g }):totable())
    local threads = velua.get_num_threads()
    velua.set_num_threads(1)
    local one = D.Beta(f64(0.5), f64(2)):sample(20000, { gen = T.generator(4) }):sum():item()
    local nb1 = D.NegativeBinomial(f64(3), f64(2)):sample(20000, { gen = T.generator(4) }):sum():item()
    velua.set_num_threads(4)
    local four = D.Beta(f64(0.5), f64(2)):sample(20000, { gen = T.generator(4) }):sum():item()
    local nb4 = D.NegativeBinomial(f64(3), f64(2)):sample(20000, { gen = T.generator(4) }):sum():item()
    velua.set_num_threads(threads)
    assert.are.equal(one, four)
    assert.are.equal(nb1, nb4)
    local a = f64(2):requires_grad()
    assert.is_false(D.Beta(a, 1):sample(3):needs_grad())
    assert.is_true(D.Beta(a, 1):rsample(3):needs_grad())
  end)
end)
