-- velua.tl.umap: the UMAP layout of the neighbour graph, as scanpy 1.9.8's sc.tl.umap over
-- umap-learn 0.5 (simplicial_set_embedding): a and b fitted from min_dist and spread, the
-- graph pruned below max / n_epochs, a spectral start (Laplacian eigenvectors per connected
-- component, csrc/core/spectral.c) scaled and jittered, then SGD with negative sampling
-- (csrc/core/umap_layout.c). Deterministic for a seed on any thread count; see docs/umap.md.
local core = require "velua.core"
local options = require "velua.options"
local T = require "velua.tensor"
local util = require "velua.pp.util"

local M = {}
local NONE = options.NONE

-- ---------- a and b from min_dist and spread ----------

-- Least-squares fit of 1 / (1 + a x^(2b)) to 1 (x < min_dist) and exp(-(x - min_dist) / spread)
-- on 300 points of [0, 3 spread], as umap-learn's find_ab_params (scipy's curve_fit from
-- (1, 1)). Levenberg-Marquardt with the exact Jacobian, run until the step stalls, so the
-- result is the least-squares minimum itself (scipy stops within ~1e-8 of it).
function M.find_ab_params(spread, min_dist)
  local n = 300
  local xs, ys = {}, {}
  local step = 3 * spread / (n - 1)
  for i = 0, n - 1 do
    local x = i == n - 1 and 3 * spread or i * step
    xs[i + 1] = x
    ys[i + 1] = x < min_dist and 1.0 or math.exp(-(x - min_dist) / spread)
  end
  -- sum of squares; with grad, also J^T J and J^T r
  local function eval(a, b, grad)
    local ss, jaa, jab, jbb, ga, gb = 0, 0, 0, 0, 0, 0
    for i = 1, n do
      local x = xs[i]
      local u = x > 0 and x ^ (2 * b) or 0
      local den = 1 + a * u
      local r = 1 / den - ys[i]
      ss = ss + r * r
      if grad and x > 0 then
        local da = -u / (den * den)
        local db = -a * u * 2 * math.log(x) / (den * den)
        jaa, jab, jbb = jaa + da * da, jab + da * db, jbb + db * db
        ga, gb = ga + da * r, gb + db * r
      end
    end
    return ss, jaa, jab, jbb, ga, gb
  end
  local a, b, lambda = 1.0, 1.0, 1e-3
  local ss, jaa, jab, jbb, ga, gb = eval(a, b, true)
  for _ = 1, 1000 do
    local accepted = false
    while lambda < 1e16 do
      local m11, m22 = jaa * (1 + lambda), jbb * (1 + lambda)
      local det = m11 * m22 - jab * jab
      local da = (-ga * m22 + gb * jab) / det
      local db = (-gb * m11 + ga * jab) / det
      local na, nb = a + da, b + db
      local nss = nb > 0 and eval(na, nb, false) or math.huge
      if nss < ss then
        local moved = math.abs(da) + math.abs(db)
        a, b = na, nb
        ss, jaa, jab, jbb, ga, gb = eval(a, b, true)
        lambda = math.max(lambda / 10, 1e-12)
        accepted = moved > 1e-15 * (math.abs(a) + math.abs(b))
        break
      end
      lambda = lambda * 10
    end
    if not accepted then break end
  end
  return a, b
end

-- ---------- options ----------

local defaults = {
  min_dist = 0.5, spread = 1.0, n_components = 2, maxiter = NONE, n_epochs = NONE,
  alpha = 1.0, gamma = 1.0, negative_sample_rate = 5, init_pos = "spectral", seed = NONE,
  random_state = NONE, a = NONE, b = NONE, neighbors_key = NONE,
}

local function describe(v)
  if type(v) == "string" then return string.format("'%s' (string)", v) end
  return string.format("%s (%s)", tostring(v), math.type(v) or type(v))
end

local function check_number(name, v, lo, strict, hi)
  local bad = type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge
  if not bad and lo ~= nil then bad = strict and v <= lo or (not strict and v < lo) end
  if not bad and hi ~= nil then bad = v > hi end
  if bad then
    local want = "a finite number"
    if lo ~= nil then want = want .. (strict and " > " or " >= ") .. tostring(lo) end
    if hi ~= nil then want = want .. " and <= " .. tostring(hi) end
    error(string.format("umap: option %s must be %s, got %s", name, want, describe(v)), 3)
  end
  return v
end

local function check_integer(name, v, lo)
  if math.type(v) ~= "integer" or v < lo then
    error(string.format("umap: option %s must be an integer >= %d, got %s", name, lo, describe(v)), 3)
  end
  return v
end

local function warn(msg)
  io.stderr:write("velua.tl.umap: warning: ", msg, "\n")
end

-- ---------- initial layout ----------

-- Uniform on [lo, hi) as f64 [rows, cols].
local function uniform(rows, cols, lo, hi, gen)
  return T.rand(rows, cols, { gen = gen, dtype = "f64" }) * (hi - lo) + lo
end

-- The representation the graph was built on (only for the centroids of many components).
local function representation(ad, params)
  local rep = params and params.use_rep or "X_pca"
  local X = ad.obsm[rep]
  if X == nil and rep ~= "X" then return nil end
  if X == nil then X = util.dense(util.float_matrix(ad.X)) end
  local n_pcs = params and params.n_pcs
  if math.type(n_pcs) == "integer" and n_pcs > 0 and n_pcs < X:shape()[2] then
    X = X:narrow(2, 1, n_pcs)
  end
  return X:to("f64")
end

-- sklearn's SpectralEmbedding(affinity="precomputed") of a small dense affinity matrix:
-- normalized Laplacian (diagonal ignored, isolated nodes kept at degree 1), eigenvectors of its
-- dim + 1 smallest eigenvalues divided by sqrt(degree), signs as _deterministic_vector_sign_flip,
-- the first dropped. Returns an m x dim table of rows.
local function small_spectral_embedding(A, dim)
  local m = #A
  local dd = {}
  for i = 1, m do
    local s = 0
    for j = 1, m do if j ~= i then s = s + A[i][j] end end
    dd[i] = s > 0 and math.sqrt(s) or 1
  end
  local L = {}
  for i = 1, m do
    L[i] = {}
    for j = 1, m do
      L[i][j] = i == j and 1 or -A[i][j] / (dd[i] * dd[j])
    end
  end
  local _, Z = core.sym_eig(T.tensor(L, { dtype = "f64" }))
  Z = Z:totable()
  local out = {}
  for i = 1, m do out[i] = {} end
  for t = 1, dim do
    local col = t + 1 -- eigenvalues ascending; the first (t = 0) is dropped
    local best, bv = 1, -1
    for i = 1, m do
      local v = math.abs(Z[i][col] / dd[i])
      if v > bv then best, bv = i, v end
    end
    local sign = Z[best][col] / dd[best] < 0 and -1 or 1
    for i = 1, m do out[i][t] = sign * Z[i][col] / dd[i] end
  end
  return out
end

-- umap-learn's component_layout: component centroids in data space, embedded spectrally from
-- exp(-d^2) affinities, scaled by their maximum. Without data: uniform in [0, 10).
local function component_layout(data, labels, ncomp, dim, gen)
  local function random_meta()
    return (T.rand(ncomp, dim, { gen = gen, dtype = "f64" }) * 10):totable()
  end
  if data == nil then return random_meta() end
  local n = labels:shape()[1]
  -- centroid matrix C [ncomp, n] (1 / size at each member) times data
  local lab = labels:totable()
  local size = {}
  for c = 1, ncomp do size[c] = 0 end
  for i = 1, n do size[lab[i]] = size[lab[i]] + 1 end
  local order = {}
  for i = 1, n do order[i] = i end
  table.sort(order, function(p, q) if lab[p] ~= lab[q] then return lab[p] < lab[q] end return p < q end)
  local ip, ix, v = { 0 }, {}, {}
  local c = 1
  for r = 1, n do
    local i = order[r]
    while lab[i] > c do ip[c + 1] = r - 1; c = c + 1 end
    ix[r], v[r] = i - 1, 1 / size[lab[i]]
  end
  while c <= ncomp do ip[c + 1] = n; c = c + 1 end
  local C = T.sparse_csr(T.tensor(ip, { dtype = "i64" }), T.tensor(ix, { dtype = "i64" }),
    T.tensor(v, { dtype = "f64" }), { ncomp, n })
  local centroids = C:matmul(data:contiguous())
  local D = T.cdist(centroids, centroids):totable()
  local A = {}
  for i = 1, ncomp do
    A[i] = {}
    for j = 1, ncomp do A[i][j] = math.exp(-D[i][j] * D[i][j]) end
  end
  local emb = small_spectral_embedding(A, dim)
  local mx = -math.huge
  for i = 1, ncomp do for t = 1, dim do mx = math.max(mx, emb[i][t]) end end
  if not (mx > 0) or mx == math.huge then
    warn("component layout degenerate; components placed at random")
    return random_meta()
  end
  for i = 1, ncomp do for t = 1, dim do emb[i][t] = emb[i][t] / mx end end
  return emb
end

-- umap-learn's multi_component_layout: each component's own spectral layout scaled to half
-- the distance to the nearest other component and centred on its meta-layout point.
local function multi_component_layout(ad, params, labels, ncomp, vecs, status, dim, gen)
  local meta
  if ncomp > 2 * dim then
    meta = component_layout(representation(ad, params), labels, ncomp, dim, gen)
  else
    local k = math.ceil(ncomp / 2)
    meta = {}
    for i = 1, ncomp do
      local row = {}
      local base = i <= k and i or i - k
      local sign = i <= k and 1 or -1
      for t = 1, dim do row[t] = (t == base) and sign or 0 end
      meta[i] = row
    end
  end
  local n = labels:shape()[1]
  local members = {}
  for c = 1, ncomp do members[c] = {} end
  for i, c in ipairs(labels:totable()) do local m = members[c]; m[#m + 1] = i end
  local out = T.zeros(n, dim, { dtype = "f64" })
  for c = 1, ncomp do
    local dmin = math.huge
    for o = 1, ncomp do
      local s = 0
      for t = 1, dim do s = s + (meta[c][t] - meta[o][t]) ^ 2 end
      s = math.sqrt(s)
      if s > 0 and s < dmin then dmin = s end
    end
    local data_range = dmin < math.huge and dmin / 2 or 1
    local rows = T.tensor(members[c], { dtype = "i64" })
    local centre = T.tensor({ meta[c] }, { dtype = "f64" })
    local block
    if status[c] == "ok" then
      block = vecs:index(1, rows)
      local mx = block:abs():max():item()
      block = block * (mx > 0 and data_range / mx or 0) + centre
    else
      if status[c] == "failed" then
        warn(string.format("spectral initialisation of component %d (%d cells) did not converge; "
          .. "random start for it", c, #members[c]))
      end
      block = uniform(#members[c], dim, -data_range, data_range, gen) + centre
    end
    out:index_add_(1, rows, block)
  end
  return out
end

-- The spectral start of umap-learn (spectral_layout) on the pruned graph, f64 [n, dim].
local function spectral_start(ad, params, g, n, dim, gen)
  local ip, ix, v = g.indptr, g.indices, g.values
  local labels, ncomp = core.graph_components(ip, ix, v, n, n)
  local vecs, _, status = core.spectral_components(ip, ix, v, n, n, labels, ncomp, dim)
  if ncomp == 1 then
    if status[1] ~= "ok" then
      warn(status[1] == "failed" and "spectral initialisation failed to converge; random start"
        or string.format("graph of %d cells too small for a spectral start; random start", n))
      return uniform(n, dim, -10, 10, gen)
    end
    return vecs
  end
  return multi_component_layout(ad, params, labels, ncomp, vecs, status, dim, gen)
end

-- umap-learn's noisy_scale_coords: scaled to max |x| = 10, f32, plus N(0, 1e-4) noise.
local function noisy_scale(x, gen)
  local mx = x:abs():max():item()
  local y = (x * (mx > 0 and 10 / mx or 1)):to("f32")
  local noise = T.randn(x:shape()[1], x:shape()[2], { gen = gen, dtype = "f32" }) * 1e-4
  return y + noise
end

-- A given start (obsm key or tensor): jittered by 0.001 x the mean nearest-neighbour distance
-- when rows repeat, as umap-learn.
local function given_start(init, n, dim, gen)
  local sh = init:shape()
  if #sh ~= 2 or sh[1] ~= n or sh[2] ~= dim then
    error(string.format("umap: init_pos must be an n_obs x n_components = %d x %d matrix, got "
      .. "shape {%s}", n, dim, table.concat(sh, ",")), 3)
  end
  local x = init:to("f32"):contiguous()
  if x:isnan():any():item() then error("umap: init_pos holds NaN", 3) end
  if n >= 2 then
    local _, dist = core.knn_exact(x, 2)
    local second = dist:narrow(2, 2, 1)
    if second:eq(0):any():item() then
      local nndist = second:to("f64"):sum():item() / n
      x = x + T.randn(n, dim, { gen = gen, dtype = "f32" }) * (0.001 * nndist)
    end
  end
  return x
end

-- ---------- tl.umap ----------

-- umap(ad, {min_dist=0.5, spread=1, n_components=2, maxiter=nil (n_epochs), alpha=1, gamma=1,
-- negative_sample_rate=5, init_pos="spectral"|"random"|obsm key|tensor, seed=0 (random_state),
-- a=, b=, neighbors_key=}): obsm.X_umap (n_obs x n_components f32) and uns.umap.params.a/b
-- from obsp.connectivities. Returns ad.
function M.umap(ad, opts)
  util.check_adata("umap", ad)
  local o = options.check("umap", opts, defaults)
  local min_dist = check_number("min_dist", o.min_dist, 0, false)
  local spread = check_number("spread", o.spread, 0, true)
  if min_dist > spread then
    error(string.format("umap: option min_dist (%s) must be <= spread (%s)", tostring(min_dist),
      tostring(spread)), 2)
  end
  local dim = check_integer("n_components", o.n_components, 1)
  if dim > 16 then
    error("umap: option n_components must be at most 16, got " .. describe(dim), 2)
  end
  local epochs = o.n_epochs
  if o.maxiter ~= nil then
    if epochs ~= nil and epochs ~= o.maxiter then
      error(string.format("umap: options maxiter (%s) and n_epochs (%s) disagree",
        describe(o.maxiter), describe(epochs)), 2)
    end
    epochs = o.maxiter
  end
  local alpha = check_number("alpha", o.alpha, 0, true)
  local gamma = check_number("gamma", o.gamma, 0, false)
  local nsr = check_number("negative_sample_rate", o.negative_sample_rate, 0, true)
  local seed = o.seed
  if o.random_state ~= nil then
    if seed ~= nil and seed ~= o.random_state then
      error(string.format("umap: options seed (%s) and random_state (%s) disagree",
        describe(seed), describe(o.random_state)), 2)
    end
    seed = o.random_state
  end
  seed = seed or 0
  if math.type(seed) ~= "integer" then
    error("umap: option seed must be an integer, got " .. describe(seed), 2)
  end
  local a, b = o.a, o.b
  if (a == nil) ~= (b == nil) then error("umap: give both options a and b, or neither", 2) end
  if a == nil then
    a, b = M.find_ab_params(spread, min_dist)
  else
    check_number("a", a, 0, true)
    check_number("b", b, 0, true)
  end
  local init = o.init_pos
  if not (type(init) == "string" or T.is_tensor(init)) then
    error("umap: option init_pos must be 'spectral', 'random', an obsm key or a tensor, got "
      .. describe(init), 2)
  end

  -- the graph
  local nkey = o.neighbors_key
  if nkey ~= nil and type(nkey) ~= "string" then
    error("umap: option neighbors_key must be a string, got " .. describe(nkey), 2)
  end
  local neigh = ad.uns[nkey or "neighbors"]
  if nkey ~= nil and type(neigh) ~= "table" then
    error("umap: ad.uns." .. nkey .. " is missing (neighbors_key)", 2)
  end
  local ckey = type(neigh) == "table" and type(neigh.connectivities_key) == "string"
    and neigh.connectivities_key or "connectivities"
  local G = ad.obsp[ckey]
  if G == nil then
    error("umap: ad.obsp." .. ckey .. " is missing: run pp.neighbors first", 2)
  end
  if not T.is_sparse(G) then
    if not T.is_tensor(G) or G:dim() ~= 2 then
      error("umap: ad.obsp." .. ckey .. " must be a sparse or dense matrix, got " .. type(G), 2)
    end
    G = T.sparse_from_dense(G:to("f32"))
  end
  local n = ad.n_obs
  local sh = G:shape()
  if sh[1] ~= n or sh[2] ~= n then
    error(string.format("umap: ad.obsp.%s must be n_obs x n_obs = %d x %d, got %d x %d", ckey,
      n, n, sh[1], sh[2]), 2)
  end
  local default_epochs = n <= 10000 and 500 or 200
  if epochs == nil then epochs = default_epochs end
  check_integer(o.maxiter ~= nil and "maxiter" or "n_epochs", epochs, 1)
  local ip, ix, v = util.csr_parts(G)
  local pip, pix, pv = core.umap_prune(ip, ix, v, n, n, epochs > 10 and epochs or default_epochs)
  local g = { indptr = pip, indices = pix, values = pv }

  local gen = T.generator(seed)
  local params = type(neigh) == "table" and neigh.params or nil
  local Y
  if T.is_tensor(init) then
    Y = given_start(init, n, dim, gen)
  elseif init == "spectral" then
    Y = noisy_scale(spectral_start(ad, params, g, n, dim, gen), gen)
  elseif init == "random" then
    Y = uniform(n, dim, -10, 10, gen):to("f32")
  elseif ad.obsm[init] ~= nil then
    Y = given_start(ad.obsm[init], n, dim, gen)
  else
    error(string.format("umap: option init_pos must be 'spectral', 'random', an obsm key or a "
      .. "tensor, got '%s' (no such obsm key)", init), 2)
  end
  -- every start rescaled to [0, 10] per coordinate, as umap-learn does before the SGD
  local lo, hi = Y:min(1), Y:max(1)
  local span = hi - lo
  span = T.where(span:gt(0), span, T.ones_like(span))
  Y = ((Y - lo) / span * 10):to("f32"):contiguous()

  local sgd_seed = T.randint(0, math.maxinteger, 1, { gen = gen }):item()
  core.umap_optimize(Y, pip, pix, pv, n, n, {
    n_epochs = epochs, a = a, b = b, gamma = gamma, alpha = alpha,
    negative_sample_rate = nsr, seed = sgd_seed,
  })
  ad.obsm.X_umap = Y
  local p = { a = a, b = b }
  if seed ~= 0 then p.random_state = seed end
  ad.uns.umap = { params = p }
  return ad
end

return M
