-- k-nearest-neighbour graph and UMAP connectivities, as scanpy 1.9.8's
-- pp.neighbors(method="umap") with scVelo's choice of representation: Euclidean kNN in PCA
-- space (self counted as the first neighbour), obsp.distances with the k - 1 others per row,
-- obsp.connectivities the fuzzy union of UMAP memberships. Exact search by blocked GEMM below
-- `approx_threshold` cells, NN-descent above it (csrc/core/knn.c), with its recall measured
-- on a sample of cells against exact search.
local core = require "velua.core"
local options = require "velua.options"
local T = require "velua.tensor"
local util = require "velua.pp.util"

local M = {}
local NONE = options.NONE

-- Exact search is used below this many cells (NN-descent from here on); see docs/pp.md.
M.APPROX_THRESHOLD = 30000

local knn_defaults = {
  method = "auto", approx_threshold = NONE, seed = 0, n_trees = NONE, leaf_size = NONE,
  max_candidates = NONE, max_iters = NONE, delta = NONE, recall_sample = 0,
}

local function nnd_opts(o)
  return { seed = o.seed, n_trees = o.n_trees, leaf_size = o.leaf_size,
    max_candidates = o.max_candidates, max_iters = o.max_iters, delta = o.delta }
end

-- Fraction of the exact k nearest neighbours of `sample` rows found in idx (1-based i64).
function M.recall(x, idx, k, sample_rows)
  local q = x:index(1, sample_rows)
  local exact = core.knn_exact(x, q, k)
  local hit = 0
  local et, at = exact:totable(), idx:index(1, sample_rows):totable()
  for r = 1, #sample_rows do
    local set = {}
    for t = 1, k do set[et[r][t]] = true end
    for t = 1, k do if set[at[r][t]] then hit = hit + 1 end end
  end
  return hit / (#sample_rows * k)
end

-- Evenly spread sample of m row numbers out of n (deterministic).
local function sample_rows(n, m)
  m = math.min(n, m)
  local rows = {}
  for i = 1, m do rows[i] = math.floor((i - 1) * n / m) + 1 end
  return rows
end

-- knn(x [n, d], k, {method="auto"|"exact"|"nndescent", approx_threshold=30000, seed=0,
-- n_trees=, leaf_size=, max_candidates=, max_iters=, delta=, recall_sample=0}):
-- indices [n, k] (i64, 1-based, self first) and distances [n, k] (dtype of x), ascending;
-- and a table {method=, iterations=, recall=} (recall measured on recall_sample rows when
-- NN-descent ran and recall_sample > 0).
function M.knn(x, k, opts)
  local o = options.check("knn", opts, knn_defaults)
  if not T.is_tensor(x) or x:dim() ~= 2 then error("knn: x must be a 2-d tensor", 2) end
  if x:dtype() ~= "f32" and x:dtype() ~= "f64" then x = x:to("f32") end
  local n = x:shape()[1]
  if math.type(k) ~= "integer" or k < 1 or k > n then
    error(string.format("knn: k = %s must be an integer in [1, %d] (the number of rows)", tostring(k), n), 2)
  end
  local method = o.method
  if method == "auto" then
    method = n >= (o.approx_threshold or M.APPROX_THRESHOLD) and "nndescent" or "exact"
  end
  local info = { method = method }
  local idx, dist
  if method == "exact" then
    idx, dist = core.knn_exact(x, k)
  elseif method == "nndescent" then
    local it
    idx, dist, it = core.knn_nndescent(x, k, nnd_opts(o))
    info.iterations = it
    if o.recall_sample > 0 then info.recall = M.recall(x, idx, k, sample_rows(n, o.recall_sample)) end
  else
    error("knn: method must be 'auto', 'exact' or 'nndescent', got '" .. tostring(method) .. "'", 2)
  end
  return idx, dist, info
end

-- The representation neighbours are computed on, chosen as scVelo's pp.neighbors: X_pca
-- (computed when missing or too narrow) unless n_vars < 50 or n_pcs == 0.
local function representation(ad, o)
  local use_rep, n_pcs = o.use_rep, o.n_pcs
  if use_rep == nil then
    use_rep = (ad.n_vars < 50 or n_pcs == 0) and "X" or "X_pca"
    if use_rep == "X" then n_pcs = nil end
  elseif ad.obsm[use_rep] == nil and ad.obsm["X_" .. use_rep] ~= nil then
    use_rep = "X_" .. use_rep
  end
  if use_rep == "X_pca" then
    local have = ad.obsm.X_pca
    if have == nil or (n_pcs ~= nil and n_pcs > have:shape()[2]) then
      local hv = o.use_highly_variable and ad.var.highly_variable ~= nil
      local n_vars = ad.n_vars
      if hv then
        n_vars = 0
        for _, v in ipairs(ad.var.highly_variable:totable()) do if v then n_vars = n_vars + 1 end end
      end
      local n_comps = math.min(n_pcs or 30, n_vars - 1, ad.n_obs - 1)
      require("velua.pp.pca").pca(ad, { n_comps = n_comps, use_highly_variable = hv })
    end
  end
  local X
  if use_rep == "X" then
    X = util.dense(util.float_matrix(ad.X))
  else
    X = ad.obsm[use_rep]
    if X == nil then error("neighbors: obsm." .. tostring(use_rep) .. " is missing", 3) end
    if n_pcs ~= nil then
      if n_pcs > X:shape()[2] then
        error(string.format("neighbors: obsm.%s has %d columns, fewer than n_pcs = %d", use_rep,
          X:shape()[2], n_pcs), 3)
      end
      X = X:narrow(2, 1, n_pcs)
    end
  end
  if X:dtype() ~= "f32" and X:dtype() ~= "f64" then X = X:to("f32") end
  return X:contiguous(), use_rep, n_pcs
end

local defaults = {
  n_neighbors = 30, n_pcs = 30, use_rep = NONE, use_highly_variable = true, method = "umap",
  metric = "euclidean", knn_method = "auto", approx_threshold = NONE, random_state = 0,
  recall_sample = 1000, local_connectivity = 1, set_op_mix_ratio = 1,
}

-- UMAP connectivities from kNN lists (indices 1-based with self first, f32 distances):
-- the fuzzy union as CSR, and per-cell sigmas and rhos.
function M.umap_connectivities(idx, dist, n, opts)
  opts = opts or {}
  local ip, ix, v, sig, rho = core.umap_graph(idx, dist:to("f32"), opts.local_connectivity or 1,
    opts.set_op_mix_ratio or 1)
  return T.sparse_csr(ip, ix, v, { n, n }), sig, rho
end

-- The kNN lists as a CSR matrix of distances (self and zero distances dropped).
function M.distances_matrix(idx, dist, n)
  local ip, ix, v = core.knn_graph(idx, dist:to("f32"), n)
  return T.sparse_csr(ip, ix, v, { n, n })
end

-- neighbors(ad, {n_neighbors=30, n_pcs=30, use_rep=, knn_method="auto", approx_threshold=30000,
-- random_state=0, recall_sample=1000, metric="euclidean", method="umap", local_connectivity=1,
-- set_op_mix_ratio=1}): obsp.distances, obsp.connectivities, uns.neighbors. Returns ad.
function M.neighbors(ad, opts)
  util.check_adata("neighbors", ad)
  local o = options.check("neighbors", opts, defaults)
  if o.metric ~= "euclidean" then error("neighbors: only metric='euclidean' is implemented", 2) end
  if o.method ~= "umap" then error("neighbors: only method='umap' is implemented", 2) end
  local k = o.n_neighbors
  if math.type(k) ~= "integer" or k < 1 or k > ad.n_obs then
    error(string.format("neighbors: n_neighbors = %s must be an integer in [1, n_obs = %d]",
      tostring(k), ad.n_obs), 2)
  end
  local X, use_rep, n_pcs = representation(ad, o)
  local idx, dist, info = M.knn(X, k, {
    method = o.knn_method, approx_threshold = o.approx_threshold, seed = o.random_state,
    recall_sample = o.recall_sample })
  local n = ad.n_obs
  ad.obsp.distances = M.distances_matrix(idx, dist, n)
  ad.obsp.connectivities = M.umap_connectivities(idx, dist, n, o)
  local params = { n_neighbors = k, method = "umap", random_state = o.random_state,
    metric = "euclidean", knn_method = info.method }
  if o.use_rep ~= nil then params.use_rep = use_rep end
  if n_pcs ~= nil then params.n_pcs = n_pcs end
  ad.uns.neighbors = {
    connectivities_key = "connectivities", distances_key = "distances", params = params,
  }
  if info.recall then ad.uns.neighbors.recall = info.recall end
  if info.iterations then ad.uns.neighbors.iterations = info.iterations end
  return ad
end

return M
