-- velua.distributions: check values from SPEC section 7, moments against closed forms within
-- Monte Carlo error, normalisation of log_prob, and gradients of rsample.
local velua = require "velua"
local T, D = velua.tensor, velua.distributions
local core = require "velua.core"

local function f64(x) return T.tensor(x, { dtype = "f64" }) end
local function close(a, b, tol, what)
  assert.is_true(math.abs(a - b) <= tol, string.format("%s: %.6g vs %.6g (tol %.2g)", what or "", a, b, tol))
end

describe("Power Spherical", function()
  it("has the SPEC check values: KL = 0.8277 and E[x] = (0, 0.8) for mu = (0,1), kappa = 4", function()
    local ps = D.PowerSpherical(f64 { 0, 1 }, f64(4))
    close(D.kl_divergence(ps, D.HypersphericalUniform(2)):item(), 0.8277, 5e-5, "KL")
    local m = ps:mean():totable()
    close(m[1], 0, 1e-12, "E[x]_1")
    close(m[2], 0.8, 1e-12, "E[x]_2")
  end)

  it("samples lie on the sphere and their mean matches the closed form", function()
    for _, case in ipairs { { 2, 1.5 }, { 3, 4 }, { 10, 20 }, { 3, 0.3 } } do
      local d, kappa = case[1], case[2]
      local mu = T.randn({ d }, { gen = T.generator(d), dtype = "f64" }):normalize()
      local ps = D.PowerSpherical(mu, f64(kappa))
      local n = 40000
      local s = ps:rsample(n, { gen = T.generator(100 + d) })
      close(s:norm(2, -1):min():item(), 1, 1e-9, "norm")
      local emp, ref = s:mean(1):totable(), ps:mean():totable()
      for i = 1, d do close(emp[i], ref[i], 5 / math.sqrt(n), "mean d=" .. d .. " k=" .. kappa) end
    end
  end)

  it("log_prob integrates to 1 over the circle (d = 2) and the sphere (d = 3)", function()
    local ps = D.PowerSpherical(f64 { 0.6, 0.8 }, f64(3))
    local m = 4000
    local pts = {}
    for i = 1, m do local th = 2 * math.pi * (i - 0.5) / m; pts[i] = { math.cos(th), math.sin(th) } end
    close(ps:log_prob(f64(pts)):exp():sum():item() * 2 * math.pi / m, 1, 1e-6, "circle")
    local ps3 = D.PowerSpherical(f64 { 0, 0, 1 }, f64(2.5))
    local nt, np = 400, 400
    local total = 0
    local xs, w = {}, {}
    for i = 1, nt do
      local th = math.pi * (i - 0.5) / nt
      for j = 1, np do
        local ph = 2 * math.pi * (j - 0.5) / np
        xs[#xs + 1] = { math.sin(th) * math.cos(ph), math.sin(th) * math.sin(ph), math.cos(th) }
        w[#w + 1] = math.sin(th) * (math.pi / nt) * (2 * math.pi / np)
      end
    end
    total = (ps3:log_prob(f64(xs)):exp() * f64(w)):sum():item()
    close(total, 1, 1e-4, "sphere")
    local u = D.HypersphericalUniform(3)
    close(u:entropy():item(), math.log(4 * math.pi), 1e-6, "uniform entropy")
  end)

  it("rsample is differentiable: mu exactly (common random numbers), kappa in expectation", function()
    local function draw(mu, kappa)
      return D.PowerSpherical(mu, kappa):rsample(64, { gen = T.generator(9) })
    end
    local mu0 = { 0.3, -0.5, 0.81 }
    local w = T.randn({ 64, 3 }, { gen = T.generator(10), dtype = "f64" })
    local mu = f64(mu0):requires_grad()
    local kappa = f64(5)
    ;(draw(mu, kappa) * w):sum():backward()
    local g = mu:grad():totable()
    for i = 1, 3 do
      local h = 1e-6
      local p, m = { table.unpack(mu0) }, { table.unpack(mu0) }
      p[i], m[i] = p[i] + h, m[i] - h
      local fd = ((draw(f64(p), kappa) * w):sum():item() - (draw(f64(m), kappa) * w):sum():item()) / (2 * h)
      close(g[i], fd, 1e-6 * math.max(1, math.abs(fd)), "d/dmu_" .. i)
    end
    -- d/dkappa E[mu . x] = d/dkappa kappa/(kappa + 2 beta) = 2 beta/(kappa + 2 beta)^2, beta = (d-1)/2
    local k = f64(2):requires_grad()
    local e3 = f64 { 0, 0, 1 }
    local x = D.PowerSpherical(e3, k):rsample(200000, { gen = T.generator(11) })
    ;(x * e3):sum(-1):mean():backward()
    local beta = 1
    close(k:grad():item(), 2 * beta / (2 + 2 * beta) ^ 2, 0.004, "d/dkappa E[mu.x]")
  end)
end)

describe("Beta", function()
  it("incomplete beta function and its derivatives against closed forms", function()
    local x = f64 { 0.1, 0.5, 0.9 }
    local a, one = f64 { 2.5, 2.5, 2.5 }, f64 { 1, 1, 1 }
    local ia = core.betainc(a, one, x):totable()            -- I_x(a, 1) = x^a
    local da = core.betainc(a, one, x, 1):totable()         -- d/da = x^a log x
    local xb = core.betainc(one, a, x):totable()            -- I_x(1, b) = 1 - (1-x)^b
    local db = core.betainc(one, a, x, 2):totable()         -- d/db = -(1-x)^b log(1-x)
    for i, xv in ipairs { 0.1, 0.5, 0.9 } do
      close(ia[i], xv ^ 2.5, 1e-13, "I_x(a,1)")
      close(da[i], xv ^ 2.5 * math.log(xv), 1e-9, "dI/da")
      close(xb[i], 1 - (1 - xv) ^ 2.5, 1e-13, "I_x(1,b)")
      close(db[i], -(1 - xv) ^ 2.5 * math.log(1 - xv), 1e-9, "dI/db")
    end
    close(core.betainc(f64(7.3), f64(7.3), f64(0.5)):item(), 0.5, 1e-13, "symmetry")
  end)

  it("moments, log_prob normalisation and entropy", function()
    local a, b = 2.5, 0.7
    local beta = D.Beta(f64(a), f64(b))
    local z = beta:rsample(200000, { gen = T.generator(2) })
    close(z:mean():item(), a / (a + b), 4 * math.sqrt(beta:variance():item() / 200000), "mean")
    close(z:var():item(), beta:variance():item(), 0.002, "variance")
    local bb = D.Beta(f64(2), f64(3.5))
    local m = 100000
    local grid = T.linspace(0.5 / m, 1 - 0.5 / m, m, { dtype = "f64" })
    close(bb:log_prob(grid):exp():sum():item() / m, 1, 1e-6, "integral")
    local p = bb:log_prob(grid):exp()
    close((-(p * bb:log_prob(grid))):sum():item() / m, bb:entropy():item(), 1e-5, "entropy")
  end)

  it("rsample gradients to a and b match d/da and d/db of the mean", function()
    local a, b = f64(2):requires_grad(), f64(3):requires_grad()
    local z = D.Beta(a, b):rsample(200000, { gen = T.generator(5) })
    z:mean():backward()
    close(a:grad():item(), 3 / 25, 0.003, "d mean/da") -- b/(a+b)^2
    close(b:grad():item(), -2 / 25, 0.003, "d mean/db") -- -a/(a+b)^2
  end)
end)

describe("Normal", function()
  it("moments, log_prob, entropy, KL and exact rsample gradients", function()
    local mu, sigma = f64 { 0.5, -1 }, f64 { 2, 0.3 }
    local n = D.Normal(mu, sigma)
    local s = n:rsample(100000, { gen = T.generator(1) })
    local m, v = s:mean(1):totable(), s:var(1):totable()
    close(m[1], 0.5, 4 * 2 / math.sqrt(100000), "mean")
    close(v[2], 0.09, 0.002, "var")
    close(n:log_prob(f64 { 0.5, -1 }):totable()[1], -math.log(2) - 0.5 * math.log(2 * math.pi), 1e-12, "log_prob")
    close(n:entropy():totable()[2], 0.5 + 0.5 * math.log(2 * math.pi) + math.log(0.3), 1e-12, "entropy")
    local kl = D.kl_divergence(D.Normal(f64(1), f64(2)), D.Normal(f64(0), f64(1))):item()
    close(kl, math.log(1 / 2) + (4 + 1) / 2 - 0.5, 1e-12, "KL")
    local lm, ls = f64(0.3):requires_grad(), f64(1.7):requires_grad()
    local eps = T.randn({ 10 }, { gen = T.generator(4), dtype = "f64" })
    D.Normal(lm, ls):rsample(10, { gen = T.generator(4) }):square():sum():backward()
    local x = eps * 1.7 + 0.3
    close(lm:grad():item(), (x * 2):sum():item(), 1e-10, "d/dmu")
    close(ls:grad():item(), (x * eps * 2):sum():item(), 1e-10, "d/dsigma")
  end)
end)

describe("negative binomial", function()
  it("sample moments and log_prob summing to 1; zero inflation", function()
    local nb = D.NegativeBinomial(f64(3), f64(2))
    local x = nb:sample(200000, { gen = T.generator(3) })
    close(x:mean():item(), 3, 0.03, "mean")
    close(x:var():item(), 3 + 9 / 2, 0.15, "variance")
    close(nb:log_prob(T.arange(0, 400, { dtype = "f64" })):exp():sum():item(), 1, 1e-6, "sum")
    local z = D.ZeroInflatedNegativeBinomial(f64(3), f64(2), f64(0.4))
    close(z:log_prob(T.arange(0, 400, { dtype = "f64" })):exp():sum():item(), 1, 1e-6, "zinb sum")
    local zs = z:sample(200000, { gen = T.generator(6) })
    close(zs:mean():item(), z:mean():item(), 0.04, "zinb mean")
  end)
end)

describe("distribution errors and reproducibility", function()
  it("checks arguments and reproduces samples for a seed", function()
    assert.is_false(pcall(D.Normal, f64(0), f64(-1)))
    assert.is_false(pcall(D.Beta, f64(0), f64(1)))
    local ok, e = pcall(D.kl_divergence, D.Beta(f64(1), f64(1)), D.Normal(f64(0), f64(1)))
    assert.is_false(ok)
    assert.is_truthy(e:find("not implemented for (Beta, Normal)", 1, true), e)
    ok, e = pcall(function() return D.Normal(f64(0), f64(1)):rsample(3, { gne = 1 }) end)
    assert.is_truthy(e:find("unknown option 'gne'", 1, true), e)
    local ps = D.PowerSpherical(f64 { 1, 0, 0 }, f64(3))
    assert.are.same(ps:sample(5, { gen = T.generator(1) }):totable(), ps:sample(5, { gen = T.generator(1) }):totable())
  end)
end)
