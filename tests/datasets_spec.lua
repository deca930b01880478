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

-- Loaders of the public data sets: read a given or cached file, download into the cache
-- (exercised with file:// URLs: no network here), and say clearly what to do when offline.
describe("datasets loaders", function()
  local h = require "support.helpers"

  local function tmpdir()
    local d = os.tmpname()
    os.remove(d)
    assert(os.execute("mkdir -p " .. d))
    return d
  end
  local function ls(dir)
    local p = io.popen("ls -A " .. dir)
    local out = p:read("a")
    p:close()
    return out
  end
  local function counts(cat)
    local n = {}
    for _, c in ipairs(cat.codes:totable()) do
      local name = cat.categories[c] or "missing"
      n[name] = (n[name] or 0) + 1
    end
    return n
  end

  it("pancreas: veloviz's 739-cell copy with layers, clusters in scVelo order and a repr", function()
    local path = h.shared_path("data/pancreas_veloviz/pancreas.h5ad")
    if not path then return pending("../shared is not present") end
    for _, ad in ipairs { datasets.pancreas(path), datasets.pancreas_veloviz { path = path } } do
      assert.are.equal(739, ad.n_obs)
      assert.are.equal(7192, ad.n_vars)
      assert.are.same({ 739, 7192 }, ad.layers.spliced:shape())
      assert.are.same({ 739, 7192 }, ad.layers.unspliced:shape())
      assert.are.equal(563203, ad.layers.unspliced:nnz())
      assert.are.same({ "Ductal", "Ngn3 low EP", "Ngn3 high EP", "Pre-endocrine", "Beta", "Alpha",
        "Delta", "Epsilon" }, ad.obs.clusters.categories)
      assert.are.same({ Ductal = 181, ["Ngn3 low EP"] = 54, ["Ngn3 high EP"] = 129,
        ["Pre-endocrine"] = 110, Beta = 123, Alpha = 99, Delta = 16, Epsilon = 27 }, counts(ad.obs.clusters))
      assert.are.same({ 739, 50 }, ad.obsm.X_pca:shape())
      assert.are.equal("AnnData object with n_obs × n_vars = 739 × 7192\n"
        .. "    obs: 'clusters'\n"
        .. "    uns: 'source'\n"
        .. "    obsm: 'X_pca'\n"
        .. "    layers: 'spliced', 'unspliced'", tostring(ad))
    end
  end)

  it("dentategyrus variants: scVelo's test file and CellRank's two subsets", function()
    local p100 = h.shared_path("data/dentategyrus_scvelo/dentategyrus_100obs.h5ad")
    local c50 = h.shared_path("data/dentategyrus_cellrank/adata_50.h5ad")
    local c100 = h.shared_path("data/dentategyrus_cellrank/adata_100.h5ad")
    if not (p100 and c50 and c100) then return pending("../shared is not present") end
    local ad = datasets.dentategyrus_100obs(p100)
    assert.are.same({ 100, 13913 }, { ad.n_obs, ad.n_vars })
    assert.are.equal(139156, ad.layers.spliced:nnz())
    assert.are.equal(21353, ad.layers.unspliced:nnz())
    assert.are.equal(57930, ad.layers.ambiguous:nnz())
    assert.are.equal(0, #require("velua.anndata").keys(ad.obs))
    ad = datasets.dentategyrus(p100) -- any file of the same layout reads through the main loader
    assert.are.same({ 100, 13913 }, { ad.n_obs, ad.n_vars })
    local a = datasets.dentategyrus_cellrank_50(c50)
    assert.are.same({ 50, 143 }, { a.n_obs, a.n_vars })
    local b = datasets.dentategyrus_cellrank_100 { path = c100 }
    assert.are.same({ 100, 278 }, { b.n_obs, b.n_vars })
    assert.are.equal(12, #b.obs.clusters.categories)
    local n = counts(b.obs.clusters)
    assert.are.equal(38, n["Granule mature"])
    assert.are.equal(33, n["Granule immature"])
    for _, k in ipairs { "spliced", "unspliced", "Ms", "Mu", "velocity" } do
      assert.are.same({ 100, 278 }, b.layers[k]:shape(), k)
    end
    assert.are.same({ 100, 100 }, b.obsp.velocity_graph:shape())
    assert.are.same({ 100, 2 }, b.obsm.X_umap:shape())
  end)

  it("spatial and two-condition sets: mouse olfactory bulb, Visium subset, ifnb", function()
    local mob = h.shared_path("data/mouse_ob_meringue/mOB.h5ad")
    local vis = h.shared_path("data/visium_squidpy/test_data.h5ad")
    local ifnb = h.shared_path("data/ifnb_kang/ifnb1k.h5ad")
    if not (mob and vis and ifnb) then return pending("../shared is not present") end
    local m = datasets.mouse_olfactory_bulb(mob)
    assert.are.same({ 262, 15928 }, { m.n_obs, m.n_vars })
    assert.are.same({ 262, 2 }, m.obsm.spatial:shape())
    assert.are.equal(5, #m.obs.annot.categories)
    assert.are.equal(2, counts(m.obs.annot).missing)
    local v = datasets.visium_mouse_brain_subset(vis)
    assert.are.same({ 49, 1999 }, { v.n_obs, v.n_vars })
    assert.are.same({ 49, 2 }, v.obsm.spatial:shape())
    assert.are.equal(5, #v.obs.leiden.categories)
    local k = datasets.ifnb(ifnb)
    assert.are.same({ 832, 14053 }, { k.n_obs, k.n_vars })
    assert.are.same({ CTRL = 391, STIM = 441 }, counts(k.obs.stim))
    assert.are.equal(304, counts(k.obs.seurat_annotations)["CD14 Mono"])
  end)

  it("finds a file in the cache directory", function()
    local mob = h.shared_path("data/mouse_ob_meringue/mOB.h5ad")
    if not mob then return pending("../shared is not present") end
    local cache = tmpdir()
    assert(os.execute(string.format("ln -s %s %s/mOB.h5ad", mob, cache)))
    local m = datasets.mouse_olfactory_bulb { cache_dir = cache }
    assert.are.same({ 262, 15928 }, { m.n_obs, m.n_vars })
    assert.are.equal(cache .. "/mOB.h5ad", datasets.fetch("mouse_olfactory_bulb", { cache_dir = cache }))
    os.execute("rm -rf " .. cache)
  end)

  it("downloads into the cache, checks size and sha256, and leaves nothing behind on failure", function()
    local c50 = h.shared_path("data/dentategyrus_cellrank/adata_50.h5ad")
    local c100 = h.shared_path("data/dentategyrus_cellrank/adata_100.h5ad")
    if not (c50 and c100) then return pending("../shared is not present") end
    local cache = tmpdir()
    -- file:// stands in for the network: the same curl path as https
    local a = datasets.dentategyrus_cellrank_50 { cache_dir = cache, url = "file://" .. c50, verbose = false }
    assert.are.same({ 50, 143 }, { a.n_obs, a.n_vars })
    assert.are.equal("cellrank_adata_50.h5ad\n", ls(cache))
    -- a second call reads the cached copy (the URL is no longer needed)
    a = datasets.dentategyrus_cellrank_50 { cache_dir = cache, url = "file:///nonexistent", verbose = false }
    assert.are.equal(50, a.n_obs)
    -- a download that is not the expected file is refused and removed
    local ok, err = pcall(datasets.dentategyrus_cellrank_50, { cache_dir = cache .. "/sub",
      url = "file://" .. c100, verbose = false })
    assert.is_false(ok)
    assert.matches("has 1234389 bytes, expected 804512", err, 1, true)
    assert.are.equal("", ls(cache .. "/sub"))
    -- not HDF5 (an error page)
    local page = cache .. "/page.html"
    local f = assert(io.open(page, "w"))
    f:write("<html>moved</html>")
    f:close()
    ok, err = pcall(datasets.pancreas, { cache_dir = cache .. "/sub", url = "file://" .. page, verbose = false })
    assert.is_false(ok)
    assert.matches("not an HDF5 file", err, 1, true)
    assert.are.equal("", ls(cache .. "/sub"))
    -- a given path that is missing is downloaded to that path, as scVelo's read(backup_url=)
    local dest = cache .. "/mine/dg.h5ad"
    local b = datasets.dentategyrus_cellrank_100 { path = dest, url = "file://" .. c100, verbose = false }
    assert.are.equal(100, b.n_obs)
    assert.are.equal("dg.h5ad\n", ls(cache .. "/mine"))
    os.execute("rm -rf " .. cache)
  end)

  it("says what to do when offline and the file is missing", function()
    local cache = tmpdir()
    local ok, err = pcall(datasets.pancreas, { cache_dir = cache, url = "http://127.0.0.1:9/pancreas.h5ad",
      verbose = false })
    assert.is_false(ok)
    assert.matches("datasets.pancreas: endocrinogenesis_day15.h5ad is not in the cache (" .. cache .. ")", err, 1, true)
    assert.matches("downloading http://127.0.0.1:9/pancreas.h5ad failed: curl: ", err, 1, true)
    assert.matches("copy the file to " .. cache .. "/endocrinogenesis_day15.h5ad", err, 1, true)
    assert.matches("velua.datasets.pancreas('/path/to/endocrinogenesis_day15.h5ad')", err, 1, true)
    assert.are.equal("", ls(cache))
    ok, err = pcall(datasets.dentategyrus, { cache_dir = cache, download = false })
    assert.is_false(ok)
    assert.matches("download = false", err, 1, true)
    assert.matches("scvelo_notebooks/raw/master/data/DentateGyrus/10X43_1.h5ad", err, 1, true)
    -- converted sets have no public download
    ok, err = pcall(datasets.ifnb, { cache_dir = cache })
    assert.is_false(ok)
    assert.matches("ifnb1k.h5ad is not in the cache (" .. cache .. ") and has no public download", err, 1, true)
    -- a given path that is missing and has no URL
    ok, err = pcall(datasets.mouse_olfactory_bulb, cache .. "/nope.h5ad")
    assert.is_false(ok)
    assert.matches("mOB.h5ad is not found at " .. cache .. "/nope.h5ad", err, 1, true)
    os.execute("rm -rf " .. cache)
  end)

  it("picks the cache from VELUA_DATA_DIR, XDG_CACHE_HOME or HOME", function()
    local root = h.repo_root()
    local function dir_with(env)
      local p = io.popen(string.format("env -u VELUA_DATA_DIR -u XDG_CACHE_HOME %s lua5.4 -e " ..
        "'package.path = %q; print(require(\"velua.datasets.loaders\").cache_dir())'", env,
        root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua"))
      local out = p:read("a")
      p:close()
      return (out:gsub("%s+$", ""))
    end
    assert.are.equal("/d/velua", dir_with("VELUA_DATA_DIR=/d/velua XDG_CACHE_HOME=/x HOME=/h"))
    assert.are.equal("/x/velua", dir_with("XDG_CACHE_HOME=/x HOME=/h"))
    assert.are.equal("/h/.cache/velua", dir_with("HOME=/h"))
  end)

  it("lists the data sets, makes gene names unique and rejects bad arguments", function()
    local names = {}
    for _, d in ipairs(datasets.available()) do
      names[#names + 1] = d.name
      assert.is_truthy(d.file and d.about, d.name)
    end
    for _, want in ipairs { "pancreas", "dentategyrus", "dentategyrus_100obs", "mouse_olfactory_bulb", "ifnb" } do
      assert.is_truthy(table.concat(names, " "):find(want, 1, true), want)
      assert.are.equal("function", type(datasets[want]))
    end
    local u, changed = require("velua.datasets.loaders")._make_unique { "a", "b", "a", "a-1", "a", "c" }
    assert.is_true(changed)
    assert.are.same({ "a", "b", "a-2", "a-1", "a-3", "c" }, u)
    assert.is_false(select(2, require("velua.datasets.loaders")._make_unique { "a", "b" }))
    assert.has_error(function() datasets.pancreas(42) end,
      "datasets.pancreas: expected a file path or an options table, got number")
    assert.has_error(function() datasets.pancreas { cache = "/tmp" } end)
    assert.has_error(function() datasets.fetch("nope") end)
    local empty = os.tmpname() -- exists but is empty
    local ok, err = pcall(datasets.pancreas, { path = empty })
    os.remove(empty)
    assert.is_false(ok)
    assert.matches("datasets.pancreas: cannot read " .. empty, err, 1, true)
  end)
end)
