-- First and second order moments over the kNN graph, as scVelo 0.3.3's pp.moments and
-- second_order_moments: A = rownorm((C > 0) + I) for C = obsp.connectivities (or distances),
-- an unweighted mean over each cell and its neighbours, cast to f32;
-- Ms = A·s, Mu = A·u, Mss = A·(s∘s), Mus = A·(s∘u), accumulated in f32 in column order of A.
local core = require "velua.core"
local options = require "velua.options"
local T = require "velua.tensor"
local util = require "velua.pp.util"

local M = {}
local NONE = options.NONE

local function n_neighs(ad)
  local nb = ad.uns.neighbors
  return nb and nb.params and nb.params.n_neighbors or 0
end

-- moments_operator(ad, {mode="connectivities"|"distances", n_neighbors=nil}): A as an f32
-- CSR matrix (sorted columns). With n_neighbors below the graph's, each row keeps its
-- n_neighbors largest entries first (scVelo's select_connectivities).
function M.moments_operator(ad, opts)
  local o = options.check("moments_operator", opts, { mode = "connectivities", n_neighbors = NONE })
  local C = ad.obsp and ad.obsp[o.mode]
  if C == nil then
    error("moments_operator: obsp." .. tostring(o.mode) .. " is missing; run pp.neighbors first", 2)
  end
  if not T.is_sparse(C) then C = T.sparse_from_dense(C) end
  if o.n_neighbors ~= nil and o.n_neighbors < n_neighs(ad) then
    local ip, ix, v, nr, nc = util.csr_parts(C)
    -- keep = min(smallest row count, n_neighbors)
    local counts = (ip:narrow(1, 2, nr) - ip:narrow(1, 1, nr))
    local keep = math.min(counts:min():item(), o.n_neighbors)
    local a, b, c = core.csr_top_per_row(ip, ix, v, nr, nc, keep)
    C = T.sparse_csr(a, b, c, { nr, nc })
  end
  local ip, ix, v, nr, nc = util.csr_parts(C)
  local a, b, c = core.moments_operator(ip, ix, v, nr, nc)
  return T.sparse_csr(a, b, c, { nr, nc })
end

-- A (f32 CSR) times a layer (dense or CSR), f32 result [n_obs, n_vars].
local function apply(A, m)
  local d = util.dense(util.float_matrix(m)):to("f32")
  return A:matmul(d:contiguous())
end

local defaults = { n_neighbors = 30, n_pcs = 30, mode = "connectivities", method = "umap",
  use_rep = NONE, use_highly_variable = true }

-- moments(ad, {n_neighbors=30, n_pcs=30, mode="connectivities", use_rep=}): layers.Ms and
-- layers.Mu. Normalises spliced/unspliced first if they still hold counts; computes the
-- neighbour graph when missing or built with fewer neighbours. Returns ad.
function M.moments(ad, opts)
  util.check_adata("moments", ad)
  local o = options.check("moments", opts, defaults)
  local s, u = ad.layers.spliced, ad.layers.unspliced
  if s == nil or u == nil then error("moments: layers spliced and unspliced are required", 2) end
  if util.not_yet_normalized(s) or util.not_yet_normalized(u) then
    require("velua.pp.normalize").normalize_per_cell(ad)
  end
  if o.n_neighbors ~= nil and o.n_neighbors > n_neighs(ad) then
    require("velua.pp.neighbors").neighbors(ad, { n_neighbors = o.n_neighbors, n_pcs = o.n_pcs,
      use_rep = o.use_rep, use_highly_variable = o.use_highly_variable, method = o.method })
  end
  if ad.obsp.connectivities == nil or ad.uns.neighbors == nil then
    error("moments: no neighbour graph (obsp.connectivities); run pp.neighbors", 2)
  end
  local A = M.moments_operator(ad, { mode = o.mode, n_neighbors = o.n_neighbors })
  ad.layers.Ms = apply(A, ad.layers.spliced)
  ad.layers.Mu = apply(A, ad.layers.unspliced)
  return ad
end

-- second_order_moments(ad, {adjusted=false}) -> Mss, Mus (dense f32): A·(s∘s) and A·(s∘u),
-- or with adjusted=true 2·Mss - Ms and 2·Mus - Mu. Nothing is stored.
function M.second_order_moments(ad, opts)
  util.check_adata("second_order_moments", ad)
  local o = options.check("second_order_moments", opts, { adjusted = false })
  if ad.uns.neighbors == nil then error("second_order_moments: run pp.neighbors first", 2) end
  local A = M.moments_operator(ad)
  local s = util.dense(util.float_matrix(ad.layers.spliced)):to("f32")
  local u = util.dense(util.float_matrix(ad.layers.unspliced)):to("f32")
  local Mss = A:matmul((s * s):contiguous())
  local Mus = A:matmul((s * u):contiguous())
  if o.adjusted then
    Mss = Mss * 2 - ad.layers.Ms
    Mus = Mus * 2 - ad.layers.Mu
  end
  return Mss, Mus
end

return M
