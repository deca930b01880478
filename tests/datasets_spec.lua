-- The built-in simulator: closed-form kinetics satisfy the ODEs, ground truth is consistent,
-- counts scatter around the truth, seeds reproduce, two-condition mode blocks a lineage.
local velua = require "velua"
local T = velua.tensor
local datasets = velua.datasets

describe("datasets.simulate", function()
  it("kinetics solve du/dt = alpha - beta u, ds/dt = beta u - gamma s across the switch", function()
    local alpha, beta, gamma, ts = 4.0, 0.7, 0.3, 6.0
    local h = 1e-5
    for _, t0 in ipairs { 0.5, 3, 5.9, 6.1, 9, 15 } do
      local t = T.tensor({ t0 - h, t0, t0 + h }, { dtype = "f64" })
      local u, s = datasets.kinetics(alpha, beta, gamma, ts, t)
      local uu, ss = u:totable(), s:totable()
      local a = t0 < ts and alpha or 0
      local du, ds = (uu[3] - uu[1]) / (2 * h), (ss[3] - ss[1]) / (2 * h)
      assert.is_true(math.abs(du - (a - beta * uu[2])) < 1e-6, "du/dt at " .. t0)
      assert.is_true(math.abs(ds - (beta * uu[2] - gamma * ss[2])) < 1e-6, "ds/dt at " .. t0)
    end
    local u0, s0 = datasets.kinetics(alpha, beta, gamma, ts, T.tensor({ 0 }, { dtype = "f64" }))
    assert.are.same({ 0 }, u0:totable())
    assert.are.same({ 0 }, s0:totable())
  end)

  it("stores consistent ground truth and counts around it; a seed reproduces the data", function()
    local ad = datasets.simulate { n_obs = 800, n_vars = 60, lineages = 3, seed = 5 }
    assert.are.equal(800, ad.n_obs)
    assert.are.equal(60, ad.n_vars)
    assert.are.same({ 800, 60 }, ad.layers.spliced:shape())
    local L = ad.layers
    local v = L.true_spliced:to("f64") * 0 -- velocity = beta u - gamma s with the stored rates
    v = ad.var.true_beta:to("f64") * L.true_unspliced:to("f64") - ad.var.true_gamma:to("f64") * L.true_spliced:to("f64")
    assert.is_true((v - L.true_velocity:to("f64")):abs():max():item() < 1e-4)
    local scale = ad.uns.simulation.scale
    local ratio = L.spliced:sum():item() / (L.true_spliced:sum():item() * scale)
    assert.is_true(math.abs(ratio - 1) < 0.01, "counts/truth = " .. ratio)
    assert.are.equal(3, #ad.obs.lineage.categories)
    assert.are.equal(7, #ad.obs.clusters.categories)
    local again = datasets.simulate { n_obs = 800, n_vars = 60, lineages = 3, seed = 5 }
    assert.are.same(ad.layers.unspliced:totable(), again.layers.unspliced:totable())
    local other = datasets.simulate { n_obs = 800, n_vars = 60, lineages = 3, seed = 6 }
    assert.are_not.same(ad.layers.unspliced:totable(), other.layers.unspliced:totable())
  end)

  it("blocks one lineage in condition B", function()
    local ad = datasets.simulate { n_obs = 2000, n_vars = 20, lineages = 2, conditions = 2, seed = 3,
      block_time = 0.4 }
    local cond, lin, t = ad.obs.condition.codes, ad.obs.lineage.codes, ad.obs.true_t
    local blocked = cond:eq(2):logical_and(lin:eq(2))
    local free = cond:eq(1):logical_and(lin:eq(2))
    local t_max = ad.uns.simulation.t_max
    assert.is_true(T.where(blocked, t, 0):max():item() <= 0.4 * t_max + 1e-6)
    assert.is_true(T.where(free, t, 0):max():item() > 0.9 * t_max)
    assert.are.same({ "A", "B" }, ad.obs.condition.categories)
  end)

  it("rejects bad options", function()
    assert.is_false(pcall(datasets.simulate, { n_obs = 0 }))
    assert.is_false(pcall(datasets.simulate, { noise = "gaussian" }))
    assert.is_false(pcall(datasets.simulate, { cells = 10 }))
  end)
end)
