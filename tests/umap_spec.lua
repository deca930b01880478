-- velua.tl.umap and velua.metrics.trustworthiness: a/b against umap-learn's fit, the spectral
-- solver against dense LAPACK, trustworthiness against a brute-force Lua reference and
-- sklearn's values, determinism (seed, thread count), simulated lineages, the pancreas oracle
-- (layout quality no worse than scanpy's stored X_umap) and bad input. Figures in docs/umap.md.
local velua = require "velua"
local h = require "support.helpers"
local T = velua.tensor
local core = require "velua.core"
local umap = require "velua.tl.umap"

-- ---------- helpers ----------

-- sklearn's algorithm written out naively: full sort of the distances in X (ties by index),
-- the k nearest in Y by full sort, then the rank penalty.
local function naive_trustworthiness(X, Y, k)
  local n = #X
  local function d2(a, b)
    local s = 0
    for c = 1, #a do s = s + (a[c] - b[c]) ^ 2 end
    return s
  end
  local total = 0
  for i = 1, n do
    local ox, oy = {}, {}
    for j = 1, n do
      if j ~= i then ox[#ox + 1] = j; oy[#oy + 1] = j end
    end
    local dx, dy = {}, {}
    for j = 1, n do dx[j] = d2(X[i], X[j]); dy[j] = d2(Y[i], Y[j]) end
    table.sort(ox, function(p, q) if dx[p] ~= dx[q] then return dx[p] < dx[q] end return p < q end)
    table.sort(oy, function(p, q) if dy[p] ~= dy[q] then return dy[p] < dy[q] end return p < q end)
    local rank = {}
    for r, j in ipairs(ox) do rank[j] = r end
    for t = 1, k do
      local r = rank[oy[t]]
      if r > k then total = total + (r - k) end
    end
  end
  return 1 - total * (2 / (n * k * (2 * n - 3 * k - 1)))
end

local function rows(t) return t:totable() end

-- the deterministic test set also given to sklearn (values in the test below)
local function sin_data(n)
  local X, Y = {}, {}
  for i = 1, n do
    X[i] = { math.sin(i * 0.7), math.cos(i * 1.3), math.sin(i * 0.11) * 2, (i % 7) * 0.1 }
    Y[i] = { math.sin(i * 0.7) + 0.3 * math.cos(i * 2.1), math.cos(i * 1.3) }
  end
  return T.tensor(X, { dtype = "f64" }), T.tensor(Y, { dtype = "f64" })
end

-- an AnnData-like table around a CSR graph
local function graph_adata(n, edges, extra)
  local dense = {}
  for i = 1, n do dense[i] = {} for j = 1, n do dense[i][j] = 0 end end
  for _, e in ipairs(edges) do
    dense[e[1]][e[2]] = e[3]
    dense[e[2]][e[1]] = e[3]
  end
  local ad = { n_obs = n, n_vars = 1, obs = {}, var = {}, obsm = {}, obsp = {}, uns = {},
    layers = {}, varm = {}, varp = {} }
  ad.obsp.connectivities = T.sparse_from_dense(T.tensor(dense, { dtype = "f32" }))
  for k, v in pairs(extra or {}) do ad[k] = v end
  return ad
end

-- a ring of m vertices starting at vertex `first`, weights in (0.5, 1]
local function ring(edges, first, m)
  for t = 0, m - 1 do
    local a, b = first + t, first + (t + 1) % m
    edges[#edges + 1] = { a, b, 1 - 0.5 * ((t * 7919) % 97) / 97 }
    local c = first + (t + 2) % m
    edges[#edges + 1] = { a, c, 0.3 }
  end
  return edges
end

local function pipeline(n, seed)
  local ad = velua.datasets.simulate { n_obs = n, n_vars = 300, seed = seed }
  ad = velua.pp.filter_and_normalize(ad, {})
  velua.pp.pca(ad, { n_comps = 30 })
  velua.pp.neighbors(ad, { n_neighbors = 30, n_pcs = 30 })
  return ad
end

-- fraction of each cell's k nearest cells in Y with the same label
local function label_purity(Y, labels, k)
  local idx = core.knn_exact(Y:contiguous(), k + 1):totable()
  local same, total = 0, 0
  for i, row in ipairs(idx) do
    for t = 2, k + 1 do
      total = total + 1
      if labels[row[t]] == labels[i] then same = same + 1 end
    end
  end
  return same / total
end

-- ---------- a and b ----------

describe("umap.find_ab_params", function()
  it("matches umap-learn's curve fit (scipy curve_fit, umap-learn 0.5)", function()
    -- scipy 1.10.1 curve_fit values; ours is the exact least-squares minimum, which scipy's
    -- default tolerances (ftol = xtol = 1.49e-8) leave 3e-7 to 1.1e-6 (relative) short of
    local cases = {
      { 1.0, 0.5, 0.583030020479462, 1.3341669929263487 },
      { 1.0, 0.1, 1.5769434601962196, 0.8950608779914887 },
      { 1.0, 0.0, 1.9328083975546724, 0.7904949734010681 },
      { 2.0, 0.3, 0.3794946888755375, 0.9488152190879922 },
      { 1.5, 1.0, 0.10344762204323175, 1.5241634515354772 },
    }
    for _, c in ipairs(cases) do
      local a, b = umap.find_ab_params(c[1], c[2])
      assert(h.approx_equal(a, c[3], 2e-6, 0), string.format("a %.12g vs %.12g", a, c[3]))
      assert(h.approx_equal(b, c[4], 2e-6, 0), string.format("b %.12g vs %.12g", b, c[4]))
    end
  end)

  it("is the least-squares minimum (no nearby point fits better)", function()
    local a, b = umap.find_ab_params(1.0, 0.5)
    local xs, ys = {}, {}
    for i = 0, 299 do
      local x = i * 3 / 299
      xs[#xs + 1] = x
      ys[#ys + 1] = x < 0.5 and 1 or math.exp(-(x - 0.5))
    end
    local function ss(pa, pb)
      local s = 0
      for i, x in ipairs(xs) do s = s + (1 / (1 + pa * x ^ (2 * pb)) - ys[i]) ^ 2 end
      return s
    end
    local best = ss(a, b)
    for _, d in ipairs { { 1e-5, 0 }, { -1e-5, 0 }, { 0, 1e-5 }, { 0, -1e-5 }, { 1e-5, 1e-5 } } do
      assert.is_true(ss(a + d[1], b + d[2]) > best)
    end
    -- the values scanpy stored for pancreas fit no better
    assert.is_true(ss(0.583030020479462, 1.3341669929263487) >= best)
  end)
end)

-- ---------- trustworthiness ----------

describe("metrics.trustworthiness", function()
  local tw = velua.metrics.trustworthiness

  it("equals a brute-force reference on random data", function()
    local g = T.generator(5)
    for _, case in ipairs { { 25, 4, 2, 3 }, { 31, 6, 3, 7 }, { 40, 3, 1, 1 }, { 17, 2, 2, 8 } } do
      local n, dx, dy, k = case[1], case[2], case[3], case[4]
      local X = T.randn(n, dx, { gen = g, dtype = "f64" })
      local Y = X:narrow(2, 1, dy) + T.randn(n, dy, { gen = g, dtype = "f64" }) * 0.5
      local want = naive_trustworthiness(rows(X), rows(Y), k)
      local got = tw(X, Y, { n_neighbors = k })
      assert(h.approx_equal(got, want, 1e-12, 1e-14), string.format("n=%d k=%d: %.15g vs %.15g", n, k, got, want))
    end
  end)

  it("breaks distance ties by index, like the reference", function()
    -- points on a grid: many equal distances in both spaces
    local X, Y = {}, {}
    for i = 0, 35 do
      X[#X + 1] = { i % 6, i // 6 }
      Y[#Y + 1] = { (i * 5) % 6, i // 6 }
    end
    for _, k in ipairs { 2, 4, 9 } do
      local want = naive_trustworthiness(X, Y, k)
      local got = tw(T.tensor(X, { dtype = "f64" }), T.tensor(Y, { dtype = "f32" }), { n_neighbors = k })
      assert(h.approx_equal(got, want, 1e-12, 1e-14))
    end
  end)

  it("gives sklearn's values (sklearn 1.2.1 on the same data)", function()
    local X, Y = sin_data(40)
    local want = { [1] = 0.7552631578947369, [3] = 0.743095238095238, [5] = 0.6968749999999999,
      [10] = 0.7122448979591837, [19] = 0.6738038277511962 }
    for k, v in pairs(want) do
      assert(h.approx_equal(tw(X, Y, { n_neighbors = k }), v, 1e-12, 1e-14), "k = " .. k)
    end
    -- the rows of X reversed, as Y
    local rev = X:index(1, T.arange(40, 0, -1, { dtype = "i64" }))
    assert(h.approx_equal(tw(X, rev, { n_neighbors = 5 }), 0.68828125, 1e-12, 1e-14))
  end)

  it("is 1 for an embedding that keeps every neighbourhood", function()
    local X = T.randn(60, 5, { gen = T.generator(2), dtype = "f64" })
    assert.are.equal(1, tw(X, X, { n_neighbors = 10 }))
    assert.are.equal(1, tw(X, X * 3 + 1, { n_neighbors = 5 })) -- scaled and shifted
    assert.are.equal(1, tw(X, X:to("f32")))                   -- default n_neighbors = 5
  end)

  it("is the same on any thread count", function()
    local g = T.generator(9)
    local X = T.randn(400, 8, { gen = g, dtype = "f32" })
    local Y = X:narrow(2, 1, 2)
    local n0 = velua.get_num_threads()
    velua.set_num_threads(1)
    local a = tw(X, Y, { n_neighbors = 15 })
    velua.set_num_threads(2)
    local b = tw(X, Y, { n_neighbors = 15 })
    velua.set_num_threads(n0)
    assert.are.equal(a, b)
    assert.is_true(a < 1 and a > 0.5)
  end)

  it("rejects bad input", function()
    local X = T.randn(10, 3, { gen = T.generator(1) })
    assert.has_error(function() tw(X, X, { n_neighbors = 5 }) end,
      "trustworthiness: n_neighbors (5) should be less than n_samples / 2 (5)")
    assert.has_error(function() tw(X, X:narrow(1, 1, 9)) end, "trustworthiness: X has 10 rows but Y has 9")
    assert.has_error(function() tw({ 1, 2 }, X) end, "trustworthiness: X must be a 2-d tensor, got table")
    assert.has_error(function() tw(X, X:reshape(30)) end, "trustworthiness: Y must be a 2-d tensor, got 1-d")
    assert.has_error(function() tw(X, X, { n_neighbors = 2.5 }) end,
      "trustworthiness: n_neighbors must be a positive integer, got 2.5")
    assert.has_error(function() tw(X, X, { k = 3 }) end)
    local rows_ = X:totable()
    rows_[1][1] = 0 / 0
    local bad = T.tensor(rows_)
    assert.has_error(function() tw(bad, X, { n_neighbors = 2 }) end, "trustworthiness: X holds a non-finite value")
  end)
end)

-- ---------- spectral initialisation ----------

describe("spectral initialisation", function()
  it("labels connected components in order of their lowest vertex", function()
    local edges = {}
    ring(edges, 4, 5)        -- 4..8
    ring(edges, 1, 3)        -- 1..3
    edges[#edges + 1] = { 10, 11, 0.5 } -- 9 alone, 10-11
    local ad = graph_adata(11, edges)
    local G = ad.obsp.connectivities
    local labels, nc = core.graph_components(G:indptr(), G:indices(), G:values(), 11, 11)
    assert.are.equal(4, nc)
    assert.are.same({ 1, 1, 1, 2, 2, 2, 2, 2, 3, 4, 4 }, labels:totable())
  end)

  -- 600 simulated cells' UMAP graph, pruned as tl.umap does, and its components
  local function pruned_graph()
    local ad = pipeline(600, 3)
    local G = ad.obsp.connectivities
    local n = ad.n_obs
    local ip, ix, v = core.umap_prune(G:indptr(), G:indices(), G:values(), n, n, 500)
    local labels, nc = core.graph_components(ip, ix, v, n, n)
    return n, ip, ix, v, labels, nc
  end

  it("Lanczos and dense LAPACK give the same eigenpairs", function()
    local n, ip, ix, v, labels, nc = pruned_graph()
    assert.are.equal(1, nc)
    local vl, el, sl, ml = core.spectral_components(ip, ix, v, n, n, labels, nc, 3, { method = "lanczos" })
    local vd, ed, sd = core.spectral_components(ip, ix, v, n, n, labels, nc, 3, { method = "dense" })
    assert.are.equal("ok", sl[1])
    assert.are.equal("ok", sd[1])
    assert.is_true(ml[1] > 0)
    assert(h.approx_equal(el:totable(), ed:totable(), 1e-6, 1e-9))
    -- unit vectors with the same sign convention: equal up to the solver's accuracy
    assert.is_true((vl - vd):abs():max():item() < 1e-4)
    -- they are eigenvectors of L: orthogonal to sqrt(degree) and to each other
    local dots = (vl:t():matmul(vl) - T.eye(3, { dtype = "f64" })):abs():max():item()
    assert.is_true(dots < 1e-8)
    -- eigenvalues ascending, positive (the trivial 0 left out)
    local e = el:totable()[1]
    assert.is_true(e[1] > 0 and e[1] <= e[2] and e[2] <= e[3])
  end)

  it("gives the same bits on any thread count (Lanczos projections included)", function()
    local n, ip, ix, v, labels, nc = pruned_graph()
    local n0 = velua.get_num_threads()
    velua.set_num_threads(1)
    local v1, e1 = core.spectral_components(ip, ix, v, n, n, labels, nc, 2, { method = "lanczos" })
    velua.set_num_threads(2)
    local v2, e2 = core.spectral_components(ip, ix, v, n, n, labels, nc, 2, { method = "lanczos" })
    velua.set_num_threads(n0)
    assert.are.same(v1:totable(), v2:totable())
    assert.are.same(e1:totable(), e2:totable())
  end)

  it("gives each component its own eigenvectors and marks tiny ones", function()
    local edges = {}
    ring(edges, 1, 40)
    ring(edges, 41, 25)
    edges[#edges + 1] = { 66, 67, 1 }
    local ad = graph_adata(67, edges)
    local G = ad.obsp.connectivities
    local ip, ix, v = G:indptr(), G:indices(), G:values()
    local labels, nc = core.graph_components(ip, ix, v, 67, 67)
    assert.are.equal(3, nc)
    local vecs, _, status = core.spectral_components(ip, ix, v, 67, 67, labels, nc, 2, { method = "lanczos" })
    assert.are.same({ "ok", "ok", "too_small" }, status)
    -- unit norm within each component
    local norms = (vecs * vecs):narrow(1, 1, 40):sum(1):totable()
    assert(h.approx_equal(norms, { 1, 1 }, 1e-10))
    norms = (vecs * vecs):narrow(1, 41, 25):sum(1):totable()
    assert(h.approx_equal(norms, { 1, 1 }, 1e-10))
  end)
end)

-- ---------- tl.umap ----------

describe("tl.umap", function()
  local ad0 = pipeline(800, 7)

  local function copy(ad)
    if type(ad.copy) == "function" then return ad:copy() end
    local c = {}
    for k, v in pairs(ad) do
      if type(v) == "table" and not T.is_tensor(v) and not T.is_sparse(v) then
        local t = {}
        for kk, vv in pairs(v) do t[kk] = vv end
        c[k] = t
      else
        c[k] = v
      end
    end
    return c
  end

  it("writes obsm.X_umap and uns.umap.params, and returns ad", function()
    local ad = copy(ad0)
    assert.are.equal(ad, velua.tl.umap(ad, { maxiter = 50 }))
    local Y = ad.obsm.X_umap
    assert.are.same({ 800, 2 }, Y:shape())
    assert.are.equal("f32", Y:dtype())
    assert.is_false(Y:isnan():any():item())
    local a, b = umap.find_ab_params(1.0, 0.5)
    assert.are.equal(a, ad.uns.umap.params.a)
    assert.are.equal(b, ad.uns.umap.params.b)
    assert.is_nil(ad.uns.umap.params.random_state)
    velua.tl.umap(ad, { maxiter = 20, seed = 4, n_components = 3, min_dist = 0.1 })
    assert.are.same({ 800, 3 }, ad.obsm.X_umap:shape())
    assert.are.equal(4, ad.uns.umap.params.random_state)
    assert(h.approx_equal(ad.uns.umap.params.a, 1.5769434601962196, 1e-6))
  end)

  it("is deterministic for a seed and the same on any thread count", function()
    local n0 = velua.get_num_threads()
    local a, b, c, d = copy(ad0), copy(ad0), copy(ad0), copy(ad0)
    velua.set_num_threads(1)
    velua.tl.umap(a, { seed = 3, maxiter = 100 })
    velua.set_num_threads(2)
    velua.tl.umap(b, { seed = 3, maxiter = 100 })
    velua.tl.umap(c, { random_state = 3, maxiter = 100 })
    velua.tl.umap(d, { seed = 4, maxiter = 100 })
    velua.set_num_threads(n0)
    assert.are.same(a.obsm.X_umap:totable(), b.obsm.X_umap:totable())
    assert.are.same(a.obsm.X_umap:totable(), c.obsm.X_umap:totable())
    assert.is_true((a.obsm.X_umap - d.obsm.X_umap):abs():max():item() > 1e-3)
  end)

  it("separates simulated lineages and keeps neighbourhoods (trustworthiness > 0.9)", function()
    local ad = copy(ad0)
    velua.tl.umap(ad, { seed = 0 })
    local t = velua.metrics.trustworthiness(ad.obsm.X_pca, ad.obsm.X_umap, { n_neighbors = 15 })
    local labels = {}
    for i, c in ipairs(ad.obs.lineage.codes:totable()) do labels[i] = c end
    local p_umap = label_purity(ad.obsm.X_umap, labels, 15)
    local p_pca = label_purity(ad.obsm.X_pca, labels, 15)
    print(string.format("\n  simulated 800 cells: trustworthiness %.4f, lineage purity of 15-NN %.4f (PCA %.4f)",
      t, p_umap, p_pca))
    assert.is_true(t > 0.9)
    assert.is_true(p_umap > 0.95 and p_umap >= p_pca - 0.02)
  end)

  it("accepts random and given starts", function()
    local ad = copy(ad0)
    velua.tl.umap(ad, { init_pos = "random", maxiter = 30 })
    local Y = ad.obsm.X_umap
    ad.obsm.start = Y
    velua.tl.umap(ad, { init_pos = "start", maxiter = 30 })
    assert.are.same({ 800, 2 }, ad.obsm.X_umap:shape())
    -- a tensor with repeated rows is jittered, not rejected
    local rep = T.zeros(800, 2)
    velua.tl.umap(ad, { init_pos = rep, maxiter = 5 })
    assert.is_false(ad.obsm.X_umap:isnan():any():item())
  end)

  it("lays out a disconnected graph component by component", function()
    local edges = {}
    ring(edges, 1, 30)
    ring(edges, 31, 30)
    ring(edges, 61, 30)
    local ad = graph_adata(90, edges)
    velua.tl.umap(ad, { seed = 1, maxiter = 200 })
    local Y = ad.obsm.X_umap
    assert.is_false(Y:isnan():any():item())
    -- every cell's nearest neighbours lie in its own ring
    local labels = {}
    for i = 1, 90 do labels[i] = (i - 1) // 30 end
    assert.is_true(label_purity(Y, labels, 5) > 0.99)
    -- more components than 2 * n_components: centroids from obsm.X_pca place them
    edges = {}
    for c = 0, 5 do ring(edges, 1 + 12 * c, 12) end
    local pca = {}
    for i = 1, 72 do pca[i] = { ((i - 1) // 12) * 3.0, math.sin(i), 0.1 * i } end
    ad = graph_adata(72, edges, { obsm = { X_pca = T.tensor(pca) } })
    velua.tl.umap(ad, { seed = 1, maxiter = 100 })
    assert.is_false(ad.obsm.X_umap:isnan():any():item())
    labels = {}
    for i = 1, 72 do labels[i] = (i - 1) // 12 end
    assert.is_true(label_purity(ad.obsm.X_umap, labels, 3) > 0.95)
  end)

  it("handles a directed graph, a hub and 4 components the same on any thread count", function()
    -- a ring with one-way chords (not its own transpose) and a vertex linked to 600 others
    local n = 700
    local dense = {}
    for i = 1, n do dense[i] = {} for j = 1, n do dense[i][j] = 0 end end
    for i = 1, n do
      local j = i % n + 1
      dense[i][j], dense[j][i] = 0.9, 0.9
      dense[i][(i + 6) % n + 1] = 0.4 -- one way
    end
    for j = 2, 601 do dense[1][j], dense[j][1] = 0.5, 0.5 end
    local function run(threads)
      local ad = { n_obs = n, n_vars = 1, obsp = {
        connectivities = T.sparse_from_dense(T.tensor(dense, { dtype = "f32" })) } }
      local n0 = velua.get_num_threads()
      velua.set_num_threads(threads)
      velua.tl.umap(ad, { seed = 5, maxiter = 60, n_components = 4 })
      velua.set_num_threads(n0)
      return ad.obsm.X_umap
    end
    local a, b = run(1), run(2)
    assert.are.same({ n, 4 }, a:shape())
    assert.is_false(a:isnan():any():item())
    assert.are.same(a:totable(), b:totable())
  end)

  it("rejects bad input with messages naming the problem", function()
    local ad = copy(ad0)
    local u = velua.tl.umap
    local function err(opts, pat)
      local ok, msg = pcall(u, copy(ad), opts)
      assert.is_false(ok)
      assert(tostring(msg):find(pat, 1, true), tostring(msg))
    end
    err({ min_dist = "a" }, "umap: option min_dist must be a finite number >= 0, got 'a' (string)")
    err({ min_dist = 2 }, "umap: option min_dist (2) must be <= spread (1.0)")
    err({ spread = 0 }, "umap: option spread must be a finite number > 0, got 0 (integer)")
    err({ n_components = 2.5 }, "umap: option n_components must be an integer >= 1, got 2.5 (float)")
    err({ n_components = 17 }, "umap: option n_components must be at most 16, got 17 (integer)")
    err({ maxiter = 0 }, "umap: option maxiter must be an integer >= 1, got 0 (integer)")
    err({ maxiter = 10, n_epochs = 20 }, "umap: options maxiter (10 (integer)) and n_epochs (20 (integer)) disagree")
    err({ alpha = -1 }, "umap: option alpha must be a finite number > 0")
    err({ negative_sample_rate = 0 }, "umap: option negative_sample_rate must be a finite number > 0")
    err({ gamma = 0 / 0 }, "umap: option gamma must be a finite number >= 0")
    err({ seed = 1.5 }, "umap: option seed must be an integer, got 1.5 (float)")
    err({ init_pos = 5 }, "umap: option init_pos must be 'spectral', 'random', an obsm key or a tensor, got 5 (integer)")
    err({ init_pos = "nope" }, "(no such obsm key)")
    err({ init_pos = T.zeros(3, 2) }, "umap: init_pos must be an n_obs x n_components = 800 x 2 matrix")
    err({ a = 1 }, "umap: give both options a and b, or neither")
    err({ typo = 1 }, "umap: unknown option 'typo'")
    err({ neighbors_key = "other" }, "umap: ad.uns.other is missing (neighbors_key)")
    local bare = copy(ad)
    bare.obsp = {}
    bare.uns = {}
    local ok, msg = pcall(u, bare)
    assert.is_false(ok)
    assert(msg:find("umap: ad.obsp.connectivities is missing: run pp.neighbors first", 1, true), msg)
    local wrong = { n_obs = 800, n_vars = 1, obsp = { connectivities = T.sparse_from_dense(T.eye(5)) } }
    ok, msg = pcall(u, wrong)
    assert.is_false(ok)
    assert(msg:find("must be n_obs x n_obs = 800 x 800, got 5 x 5", 1, true), msg)
    ok, msg = pcall(u, "not an AnnData")
    assert.is_false(ok)
    assert(msg:find("umap: an AnnData expected", 1, true), msg)
  end)
end)

-- ---------- the pancreas oracle ----------

local oracle = h.shared_path("oracle/pancreas_scvelo.h5ad")
local describe_or_skip = oracle and describe or pending

describe_or_skip("tl.umap on the pancreas oracle", function()
  it("keeps neighbourhoods as well as scanpy's stored X_umap (trustworthiness, k = 15)", function()
    local ad = velua.read_h5ad(oracle)
    local stored = ad.obsm.X_umap
    local stored_a, stored_b = ad.uns.umap.params.a, ad.uns.umap.params.b
    local X = ad.obsm.X_pca
    local t_ref = velua.metrics.trustworthiness(X, stored, { n_neighbors = 15 })
    local t0 = velua.now()
    velua.tl.umap(ad, { seed = 0 })
    local secs = velua.now() - t0
    local t_velua = velua.metrics.trustworthiness(X, ad.obsm.X_umap, { n_neighbors = 15 })
    print(string.format("\n  pancreas: trustworthiness velua %.4f, scanpy's X_umap %.4f (umap %.2f s)",
      t_velua, t_ref, secs))
    assert.is_true(t_velua >= t_ref - 0.01)
    -- the a, b scanpy stored (umap-learn's fit)
    assert(h.approx_equal(ad.uns.umap.params.a, stored_a, 1e-6))
    assert(h.approx_equal(ad.uns.umap.params.b, stored_b, 1e-6))
  end)
end)
