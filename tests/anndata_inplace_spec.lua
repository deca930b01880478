-- In-place subsetting of an AnnData (ad:_inplace_subset_var / _inplace_subset_obs, anndata's
-- semantics) and the velua.pp steps that remove genes, which change their argument as scVelo's
-- do: calling them without using the return value leaves ad equal to what they return, and
-- equal to what ad:subset (a new object) gives from the same state.
local velua = require "velua"
local T = velua.tensor
local compare = require "support.anndata_compare"
local pp = velua.pp

local same, same_anndata = compare.same, compare.same_anndata

-- bool tensor: entry i (0-based) is (i % m ~= r), or == r with eq
local function mod_mask(n, m, r, eq)
  local t = {}
  for i = 1, n do t[i] = ((i - 1) % m == r) == (eq == true) end
  return T.tensor(t, { dtype = "bool" })
end

local function names(prefix, n)
  local t = {}
  for i = 1, n do t[i] = prefix .. i end
  return t
end

-- n cells x g genes of counts (spliced in X and layers.spliced, as read from a loom file),
-- with a column of every kind on both axes, colours for the categoricals, and m/p matrices.
local function toy(n, g, seed, dense)
  local gen = T.generator(seed)
  local s = T.randint(0, 6, { n, g }, { gen = gen }):to("f32")
  local u = T.randint(0, 4, { n, g }, { gen = gen }):to("f32")
  local function mat(m) return dense and m or T.sparse_from_dense(m) end
  local gcodes, ccodes = {}, {}
  for j = 1, g do gcodes[j] = (j % 4 == 0) and 0 or (j % 3) + 1 end -- "late" only at genes 3k
  for i = 1, n do ccodes[i] = (i % 2) + 1 end
  return velua.AnnData {
    X = mat(s), layers = { spliced = mat(s), unspliced = mat(u), dense_u = u:clone() },
    obs = { clusters = { codes = T.tensor(ccodes, { dtype = "i64" }), categories = { "A", "B", "C" } },
      depth = T.arange(n):to("f64") },
    var = { kind = { codes = T.tensor(gcodes, { dtype = "i64" }), categories = { "early", "mid", "late", "none" } },
      symbol = names("sym", g), pos = T.arange(g):to("f32"),
      flag = { values = T.arange(g), mask = mod_mask(g, 5, 0, true) } },
    obs_names = names("c", n), var_names = names("g", g),
    obsm = { X_pca = T.randn({ n, 3 }, { gen = gen }) },
    varm = { PCs = T.randn({ g, 3 }, { gen = gen }), cube = T.randn({ g, 2, 2 }, { gen = gen }) },
    obsp = { distances = T.sparse_from_dense(T.eye(n)) },
    varp = { corr = T.randn({ g, g }, { gen = gen }), graph = T.sparse_from_dense(T.randn({ g, g }, { gen = gen }):gt(1):to("f32")) },
    uns = { kind_colors = { "#111111", "#222222", "#333333", "#444444" }, clusters_colors = { "#a", "#b", "#c" },
      params = { n = 30 } },
  }
end

-- A plain-table copy of an AnnData (pp's other code path, the one of a table with n_obs/n_vars).
local function as_table(ad)
  local c = ad:copy()
  local t = { n_obs = c.n_obs, n_vars = c.n_vars, X = c.X, obs_names = c.obs_names, var_names = c.var_names,
    uns = c.uns }
  for _, slot in ipairs { "obs", "var", "layers", "obsm", "varm", "obsp", "varp" } do
    t[slot] = {}
    for k, v in pairs(c[slot]) do t[slot][k] = v end
  end
  return t
end

local function check(ok, where) assert.is_true(ok, where) end

describe("ad:_inplace_subset_var / _inplace_subset_obs", function()
  it("cut ad itself to what ad:subset returns, for every kind of index, sparse and dense", function()
    local idx = {
      { 2, 3, 5, 8, 9 },                                         -- positions
      { 9, 1, 4, 4 },                                            -- any order, repeats
      T.tensor({ 1, 6, 7 }, { dtype = "i64" }),
      { "g10", "g2" },                                           -- names
      mod_mask(10, 3, 1),                           -- bool tensor
      {},                                                        -- nothing left
    }
    for _, dense in ipairs { false, true } do
      for c, sel in ipairs(idx) do
        local ad = toy(10, 10, c, dense)
        local want = ad:subset(nil, sel)
        local out = ad:_inplace_subset_var(sel)
        assert.are.equal(ad, out)
        check(same_anndata(want, ad), "var case " .. c)
        ad = toy(10, 10, c, dense)
        local osel = type(sel) == "table" and type(sel[1]) == "string" and { "c3", "c10" } or sel
        want = ad:subset(osel, nil)
        ad:_inplace_subset_obs(osel)
        check(same_anndata(want, ad), "obs case " .. c)
      end
    end
  end)

  it("keeps the other axis, uns and the slot tables; replaces tensors instead of changing them", function()
    local ad = toy(12, 10, 7)
    local before = ad:copy()
    local X0, s0, corr0, pcs0, var0, layers0 = ad.X, ad.layers.spliced, ad.varp.corr, ad.varm.PCs, ad.var, ad.layers
    local obs_cols, obsm0, obsp0, uns0, params0 = ad.obs.clusters, ad.obsm.X_pca, ad.obsp.distances, ad.uns, ad.uns.params
    local colors0 = ad.uns.kind_colors
    ad:_inplace_subset_var({ 1, 2, 5, 6 }) -- kinds: early?, mid, late, none... (see toy)
    assert.are.equal(4, ad.n_vars)
    assert.are.equal(12, ad.n_obs)
    -- the old tensors still hold the old values (a view or another AnnData may share them)
    check(same(before.X, X0, "X"))
    check(same(before.layers.spliced, s0, "spliced"))
    check(same(before.varp.corr, corr0, "corr"))
    check(same(before.varm.PCs, pcs0, "PCs"))
    assert.are.same({ 10, 10 }, corr0:shape())
    -- obs axis, uns and the slot tables are the same objects
    assert.are.equal(obs_cols, ad.obs.clusters)
    assert.are.equal(obsm0, ad.obsm.X_pca)
    assert.are.equal(obsp0, ad.obsp.distances)
    assert.are.equal(uns0, ad.uns)
    assert.are.equal(params0, ad.uns.params)
    assert.are.equal(var0, ad.var)
    assert.are.equal(layers0, ad.layers)
    -- unused categories dropped with their colours (a new list: the old one is unchanged)
    local kept = {}
    for _, j in ipairs { 1, 2, 5, 6 } do
      local code = before.var.kind.codes:get(j)
      if code > 0 then kept[before.var.kind.categories[code]] = true end
    end
    local n_kept = 0
    for _ in pairs(kept) do n_kept = n_kept + 1 end
    assert.are.equal(n_kept, #ad.var.kind.categories)
    assert.are.equal(n_kept, #ad.uns.kind_colors)
    assert.are.equal(4, #colors0)
    assert.are.same({ "sym1", "sym2", "sym5", "sym6" }, ad.var.symbol)
    assert.are.same({ 0, 1, 4, 5 }, ad.var.pos:totable())
    assert.are.same({ true, false, false, true }, ad.var.flag.mask:totable())
    -- shape checks follow the new size
    ad.layers.Ms = T.zeros(12, 4)
    assert.has_error(function() ad.layers.Mu = T.zeros(12, 10) end)
    assert.has_error(function() ad.X = X0 end)
    -- raw is kept by a gene cut and cut by a cell cut
    ad.raw = { X = T.ones(12, 3), var_names = { "r1", "r2", "r3" } }
    ad:_inplace_subset_var({ 1, 2 })
    assert.are.same({ 12, 3 }, ad.raw.X:shape())
    ad:_inplace_subset_obs({ 2, 4, 6 })
    assert.are.same({ 3, 3 }, ad.raw.X:shape())
    assert.are.same({ "c2", "c4", "c6" }, ad.obs_names)
    assert.are.same({ "A" }, ad.obs.clusters.categories) -- code 1 at every even cell
    assert.are.same({ "#a" }, ad.uns.clusters_colors)
    assert.are.same({ 3, 3 }, ad.obsp.distances:shape())
    assert.are.same({ 1, 3, 5 }, ad.obs.depth:totable())
  end)

  it("leaves ad as it was on a bad index; nil keeps everything", function()
    local ad = toy(6, 5, 8)
    local before = ad:copy()
    for _, bad in ipairs { { 0 }, { 6 }, { "nope" }, { true, false }, T.tensor({ 1.5 }) } do
      assert.has_error(function() ad:_inplace_subset_var(bad) end)
    end
    assert.has_error(function() ad:_inplace_subset_obs({ 7 }) end)
    check(same_anndata(before, ad))
    assert.are.equal(ad, ad:_inplace_subset_var(nil))
    check(same_anndata(before, ad))
    local ok, err = pcall(ad._inplace_subset_var, ad, { 2, 9 })
    assert.is_false(ok)
    assert.matches("_inplace_subset_var: position 9 (entry 2) out of range 1..5", err, 1, true)
  end)

  it("ad:subset still returns a new object and leaves the original alone", function()
    local ad = toy(8, 6, 9)
    local before = ad:copy()
    local s = ad:subset({ 1, 2 }, { 2, 3 })
    assert.are_not.equal(ad, s)
    check(same_anndata(before, ad))
    s.X:values():fill_(99)
    check(same_anndata(before, ad))
  end)
end)

describe("pp steps that remove genes change ad in place", function()
  local function strip_hv(ad) -- statistics on all genes, then ad:subset, as the old path did
    local keep = {}
    for j, v in ipairs(ad.var.highly_variable:totable()) do if v then keep[#keep + 1] = j end end
    return keep
  end

  it("filter_genes", function()
    for _, dense in ipairs { false, true } do
      local ad = toy(60, 40, 21, dense)
      local ref = ad:copy()
      local plain = as_table(ad)
      local out, removed = pp.filter_genes(ad, { min_shared_counts = 200, min_cells = 3 })
      assert.are.equal(ad, out)
      assert.is_true(removed > 0 and ad.n_vars == 40 - removed)
      -- the old path: the initial sizes recorded, then ad:subset on the genes kept
      pp.set_initial_size(ref)
      check(same_anndata(ref:subset(nil, ad.var_names), ad))
      -- and the plain-table path keeps the same genes and values
      pp.filter_genes(plain, { min_shared_counts = 200, min_cells = 3 })
      assert.are.same(plain.var_names, ad.var_names)
      check(same(plain.layers.unspliced, ad.layers.unspliced))
    end
  end)

  it("highly_variable_genes(subset=true) and filter_genes_dispersion", function()
    for _, f in ipairs { { "highly_variable_genes", { n_top_genes = 12, subset = true } },
      { "filter_genes_dispersion", { n_top_genes = 12, flavor = "cell_ranger" } },
      { "filter_genes_dispersion", { min_mean = 0.01, max_mean = 10, min_disp = 0 } } } do
      local ad = toy(80, 50, 22)
      pp.normalize_per_cell(ad)
      local ref = ad:copy()
      local opts = {}
      for k, v in pairs(f[2]) do opts[k] = v end
      local out = pp[f[1]](ad, opts)
      assert.are.equal(ad, out)
      assert.is_true(ad.n_vars < 50 and ad.n_vars >= 1, f[1])
      opts.subset = false
      pp.highly_variable_genes(ref, opts)
      check(same_anndata(ref:subset(nil, strip_hv(ref)), ad), f[1])
    end
  end)

  it("filter_and_normalize, sparse and dense, equal to the plain-table path", function()
    for _, dense in ipairs { false, true } do
      local ad = toy(120, 80, 23, dense)
      local plain = as_table(ad)
      local X0 = ad.X
      local X0_copy = ad:copy().X
      local out = pp.filter_and_normalize(ad, { min_shared_counts = 30, n_top_genes = 40 })
      assert.are.equal(ad, out)
      assert.is_true(ad.n_vars < 80)
      check(same(X0_copy, X0), "the input X is not changed") -- it may be shared
      local p = pp.filter_and_normalize(plain, { min_shared_counts = 30, n_top_genes = 40 })
      assert.are.equal(plain, p)
      assert.are.same(p.var_names, ad.var_names)
      for _, k in ipairs { "spliced", "unspliced", "dense_u" } do check(same(p.layers[k], ad.layers[k], k)) end
      check(same(p.X, ad.X, "X"))
      for _, k in ipairs { "means", "dispersions", "dispersions_norm", "highly_variable", "pos", "symbol" } do
        check(same(p.var[k], ad.var[k], k))
      end
      check(same(p.varp.corr, ad.varp.corr))
      check(same(p.varm.cube, ad.varm.cube))
      -- gene-axis categoricals drop unused categories, as anndata (the plain table keeps them)
      local codes = ad.var.kind.codes:totable()
      local used = {}
      for _, c in ipairs(codes) do if c > 0 then used[c] = true end end
      for c = 1, #ad.var.kind.categories do assert.is_true(used[c]) end
      assert.are.equal(#ad.var.kind.categories, #ad.uns.kind_colors)
    end
  end)
end)
