-- tl.consistency (DeepVelo's overall and cell-type-wise consistency, oracle README item 11)
-- against the oracle's stored obs columns and a naive Lua computation, and tl.mann_whitney_u
-- against values of scipy.stats.mannwhitneyu 1.10 (computed once, written down here).
local velua = require "velua"
local h = require "support.helpers"
local T = velua.tensor
local tl = velua.tl

-- naive reference: unit rows over the kept genes, neighbour means from a list of lists
local function naive(V, genes, nbrs, groups)
  local n = #V
  local U = {}
  for i = 1, n do
    local ss = 0
    for _, g in ipairs(genes) do ss = ss + V[i][g] ^ 2 end
    local norm = math.sqrt(ss)
    U[i] = {}
    for k, g in ipairs(genes) do U[i][k] = norm > 0 and V[i][g] / norm or 0 end
  end
  local function dot(a, b)
    local s = 0
    for k = 1, #a do s = s + a[k] * b[k] end
    return s
  end
  local overall, celltype = {}, {}
  for i = 1, n do
    local mean = {}
    for k = 1, #genes do mean[k] = 0 end
    for _, j in ipairs(nbrs[i]) do
      for k = 1, #genes do mean[k] = mean[k] + U[j][k] / #nbrs[i] end
    end
    overall[i] = dot(U[i], mean)
    if groups then
      if groups[i] == nil then
        celltype[i] = 0 / 0
      else
        local gm, cnt = {}, 0
        for k = 1, #genes do gm[k] = 0 end
        for j = 1, n do
          if groups[j] == groups[i] then
            cnt = cnt + 1
            for k = 1, #genes do gm[k] = gm[k] + U[j][k] end
          end
        end
        for k = 1, #genes do gm[k] = gm[k] / cnt end
        celltype[i] = dot(U[i], gm)
      end
    end
  end
  return overall, celltype
end

-- a small AnnData: 9 cells x 5 genes, gene 3 with a NaN, cell 4 with zero velocity, cell 9
-- without group, a hand-made neighbour graph with 1-3 stored entries per row
local function small()
  math.randomseed(7)
  local n, g = 9, 5
  local V = {}
  for i = 1, n do
    V[i] = {}
    for j = 1, g do V[i][j] = (math.random() - 0.4) * 3 end
  end
  for j = 1, g do V[4][j] = 0 end
  V[2][3] = 0 / 0
  local nbrs = { { 2, 3 }, { 1 }, { 1, 2, 5 }, { 5 }, { 4, 6 }, { 7, 8, 9 }, { 6 }, { 9, 1 }, { 8 } }
  local indptr, indices, values = { 0 }, {}, {}
  for i = 1, n do
    local sorted = { table.unpack(nbrs[i]) }
    table.sort(sorted)
    for _, j in ipairs(sorted) do
      indices[#indices + 1] = j - 1
      values[#values + 1] = 1 + 0.1 * j
    end
    indptr[i + 1] = #indices
  end
  local groups = { "a", "b", "a", "b", "c", "a", "c", "b", nil }
  local codes = { 1, 2, 1, 2, 3, 1, 3, 2, 0 }
  local ad = velua.AnnData {
    n_obs = n, n_vars = g,
    layers = { velocity = T.tensor(V) },
    obsp = { distances = T.sparse_csr(indptr, indices, values, { n, n }) },
    obs = { clusters = { codes = T.tensor(codes, { dtype = "i64" }), categories = { "a", "b", "c" } } },
    var = { velocity_genes = T.tensor({ true, false, true, true, true }, { dtype = "bool" }) },
  }
  return ad, V, nbrs, groups
end

describe("tl.consistency", function()
  it("matches a naive computation: velocity genes, NaN genes dropped, zero rows, no group", function()
    local ad, V, nbrs, groups = small()
    -- f32 layer: the reference sees the f32-rounded values
    local Vr = ad.layers.velocity:to("f64"):totable()
    for i = 1, #V do for j = 1, #V[i] do if V[i][j] ~= V[i][j] then Vr[i][j] = 0 / 0 end end end
    local o, c = tl.consistency(ad, { groupby = "clusters" })
    local eo, ec = naive(Vr, { 1, 4, 5 }, nbrs, groups) -- genes 2 (not velocity), 3 (NaN) out
    assert(h.approx_equal(o:totable(), eo, 1e-12, 1e-14))
    assert(h.approx_equal(c:totable(), ec, 1e-12, 1e-14))
    assert.are.equal(0, o:get(4))                  -- zero velocity scores 0
    assert.is_true(c:get(9) ~= c:get(9))           -- no group: NaN
    assert.are.equal(o, ad.obs.consistency_overall) -- written and returned
    assert.are.equal(c, ad.obs.consistency_celltype)
    assert.are.equal("f64", o:dtype())
    -- all genes
    local o2 = tl.consistency(ad, { only_velocity_genes = false, key_added = "all" })
    local eo2 = naive(Vr, { 1, 2, 4, 5 }, nbrs, nil)
    assert(h.approx_equal(o2:totable(), eo2, 1e-12, 1e-14))
    assert.is_truthy(ad.obs.all_overall)
  end)

  it("takes string and numeric group columns", function()
    local ad, _, _, groups = small()
    local _, c1 = tl.consistency(ad, { groupby = "clusters" })
    local names = {}
    for i = 1, 9 do names[i] = groups[i] or "a" end
    names[9] = "z"
    ad.obs.kind = names
    local _, c2 = tl.consistency(ad, { groupby = "kind" })
    for i = 1, 8 do assert.is_true(math.abs(c1:get(i) - c2:get(i)) < 1e-12) end
    assert.is_true(math.abs(c2:get(9) - 1) < 1e-12) -- alone in its group: v . v = 1
  end)

  it("explains missing inputs", function()
    local ad = small()
    assert.has_error(function() tl.consistency(ad, { vkey = "nope" }) end,
      "consistency: layers.nope is missing")
    assert.has_error(function() tl.consistency(ad, { groupby = "nope" }) end)
    ad.var.velocity_genes = nil
    local ok, err = pcall(tl.consistency, ad)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("var.velocity_genes is missing", 1, true), err)
    assert.has_error(function() tl.consistency(ad, { bogus = 1 }) end)
    assert.has_no_error(function() tl.consistency(ad, { only_velocity_genes = false }) end)
  end)

  for _, case in ipairs {
    { file = "oracle/pancreas_scvelo.h5ad", groupby = "clusters" },
    { file = "oracle/dentategyrus100_scvelo.h5ad" },
  } do
    it("matches the oracle's stored columns within 1e-5 (" .. case.file .. ")", function()
      local path = h.shared_path(case.file)
      if not path then pending("shared data missing"); return end
      local ad = velua.read_h5ad(path)
      local ref_o = ad.obs.consistency_overall:clone()
      local ref_c = case.groupby and ad.obs.consistency_celltype:clone()
      local o, c = tl.consistency(ad, { groupby = case.groupby })
      local d = (o - ref_o):abs():max():item()
      assert.is_true(d < 1e-5, "overall max diff " .. d)
      if case.groupby then
        local dc = (c - ref_c):abs():max():item()
        assert.is_true(dc < 1e-5, "celltype max diff " .. dc)
      end
    end)
  end
end)

describe("tl.mann_whitney_u", function()
  local m = tl.mann_whitney_u
  local function close(a, b, rel) return math.abs(a - b) <= (rel or 1e-9) * math.abs(b) end

  it("matches scipy.stats.mannwhitneyu (asymptotic, ties, exact, alternatives)", function()
    local u, p, auc = m({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, { 2.5, 3.5, 11, 12, 13, 14, 15, 16, 17, 18 })
    assert.are.equal(15, u)
    assert.is_true(close(p, 0.009108496398030965))
    assert.are.equal(0.15, auc)
    _, p = m({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, { 2.5, 3.5, 11, 12, 13, 14, 15, 16, 17, 18 },
      { use_continuity = false })
    assert.is_true(close(p, 0.008150971593502691))
    -- ties: average ranks and the tie-corrected variance (asymptotic although n <= 8)
    local x, y = { 1, 2, 2, 3, 3, 3, 4 }, { 2, 3, 4, 4, 5, 5, 6, 7 }
    u, p = m(x, y)
    assert.are.equal(8.5, u)
    assert.is_true(close(p, 0.025279736885893914))
    _, p = m(x, y, { alternative = "less" })
    assert.is_true(close(p, 0.012639868442946957))
    _, p = m(x, y, { alternative = "greater" })
    assert.is_true(close(p, 0.9907347385044912))
    -- exact null distribution (min size <= 8, no ties)
    u, p = m({ 1, 2, 3 }, { 4, 5, 6, 7 })
    assert.are.equal(0, u)
    assert.is_true(close(p, 2 / 35))
    u, p = m({ 1, 2, 3, 10 }, { 4, 5, 6, 7 })
    assert.are.equal(4, u)
    assert.is_true(close(p, 0.34285714285714286))
    local a, b = {}, {}
    for i = 1, 5 do a[i] = math.sin(i) + 0.5 end
    for j = 1, 30 do b[j] = math.sin(1.3 * j) end
    u, p = m(a, b)
    assert.are.equal(103, u)
    assert.is_true(close(p, 0.20158209911530592))
    _, p = m(a, b, { alternative = "greater" })
    assert.is_true(close(p, 0.10079104955765296))
    -- large samples, tensors, a p-value far in the tail
    a, b = {}, {}
    for i = 1, 500 do a[i] = math.sin(i) end
    for j = 1, 700 do b[j] = math.sin(1.3 * j) + 0.1 end
    u, p = m(T.tensor(a, { dtype = "f64" }), T.tensor(b, { dtype = "f64" }))
    assert.are.equal(156320, u)
    assert.is_true(close(p, 0.001598956684187735, 1e-9))
    a, b = {}, {}
    for i = 1, 2000 do a[i] = math.sin(i) * 3 end
    for j = 1, 2000 do b[j] = math.sin(1.7 * j) * 3 + 1.0 end
    u, p = m(a, b)
    assert.are.equal(1435699, u)
    assert.is_true(close(p, 7.305413599827747e-54, 1e-9))
  end)

  it("computes the normal tail accurately far out", function()
    local sf = require("velua.tl.consistency")._normal_sf
    -- 1 - Phi(z), scipy.stats.norm.sf
    for _, c in ipairs { { 1, 0.15865525393145707 }, { 3, 0.0013498980316300933 },
      { 4.24, 1.1175989332120529e-05 }, { 10, 7.61985302416047e-24 },
      { 20, 2.7536241186061556e-89 }, { -2, 0.9772498680518208 }, { 0.5, 0.3085375387259869 } } do
      assert.is_true(close(sf(c[1]), c[2], 1e-13), c[1] .. ": " .. sf(c[1]))
    end
  end)

  it("rejects bad input", function()
    assert.has_error(function() m({}, { 1 }) end, "mann_whitney_u: a is empty")
    assert.has_error(function() m({ 1, 0 / 0 }, { 1 }) end, "mann_whitney_u: a[2] is NaN")
    assert.has_error(function() m({ 1 }, "x") end)
    assert.has_error(function() m({ 1 }, { 2 }, { alternative = "up" }) end)
    assert.has_error(function() m(T.zeros(2, 2), { 2 }) end)
  end)
end)
