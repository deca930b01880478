-- The velocity graph of scVelo 0.3.3 (SPEC section 3, oracle README section 4 item 7): for
-- each cell i and each cell j among its neighbours and their neighbours, the Pearson
-- correlation across velocity genes of dX_ij = Ms_j - Ms_i with the velocity v_i, both mapped
-- by sign(x) sqrt|x| in stochastic mode. Kernel: csrc/core/velocity_graph.c.
local core = require "velua.core"
local options = require "velua.options"
local T = require "velua.tensor"
local pputil = require "velua.pp.util"
local util = require "velua.tl.util"

local M = {}
local NONE = options.NONE

local defaults = {
  vkey = "velocity", xkey = "Ms", sqrt_transform = NONE, n_recurse_neighbors = NONE,
  gene_subset = NONE, n_neighbors = NONE, mode_neighbors = "distances",
}

-- compute(ad, opts) -> graph, graph_neg (f32 CSR), self_transition (f32 [n]), info: the graph
-- without storing anything (used by velocity_graph and reconstructability).
function M.compute(ad, opts, fname)
  fname = fname or "velocity_graph"
  local o = options.check(fname, opts, defaults)
  if o.mode_neighbors ~= "distances" then
    error(fname .. ": mode_neighbors must be \"distances\" (scVelo's default), got " ..
      tostring(o.mode_neighbors), 3)
  end
  local vkey = o.vkey
  local V = util.dense_layer(fname, ad, vkey, "run tl.velocity first")
  local xkey = o.xkey
  if pputil.layer(ad, xkey) == nil then xkey = "spliced" end
  local X = util.dense_layer(fname, ad, xkey, "run pp.moments first")
  local mask
  if o.gene_subset ~= nil then mask = util.gene_mask(fname, ad, o.gene_subset)
  else mask = util.velocity_gene_mask(ad, vkey) end
  mask = util.drop_nan_genes(fname, ad, V, mask, vkey)
  local idx = util.which(mask)
  if #idx == 0 then error(fname .. ": no genes left (no velocity genes without NaN)", 3) end
  X, V = util.columns(X, idx), util.columns(V, idx)
  local bad = X:ne(X):sum():item()
  if bad > 0 then error(string.format("%s: layers.%s holds %d NaN values", fname, xkey, bad), 3) end
  local sq = o.sqrt_transform
  if sq == nil then
    local p = ad.uns[vkey .. "_params"]
    sq = type(p) == "table" and p.mode == "stochastic"
  end
  if sq then V = V:sign() * V:abs():sqrt() end
  V = (V - V:mean(2, true)):contiguous()
  local depth = o.n_recurse_neighbors
  if depth == nil then depth = o.n_neighbors ~= nil and 1 or 2 end
  local nbr = util.neighbor_lists(fname, ad, o.n_neighbors)
  local pip, pix, pv, nip, nix, nv = core.velocity_graph(X, V, nbr, depth, sq)
  local n = ad.n_obs
  local graph = T.sparse_csr(pip, pix, pv, { n, n })
  local graph_neg = T.sparse_csr(nip, nix, nv, { n, n })
  return graph, graph_neg, M.self_transition(graph), { n_genes = #idx, sqrt_transform = sq,
    n_recurse_neighbors = depth }
end

-- self_transition(graph) -> f32 [n]: clip(P98(rowmax) - rowmax, 0, 1), row maxima with the
-- implicit zeros (scVelo's confidence).
function M.self_transition(graph)
  local conf = core.csr_row_max0(graph:indptr(), graph:values():to("f32"))
  local ub = core.percentile_f32(conf, 98)
  return ((conf:to("f64") * -1 + ub):clamp(0, 1)):to("f32")
end

-- velocity_graph(ad, {vkey="velocity", xkey="Ms", sqrt_transform=nil (on for stochastic
-- mode), n_recurse_neighbors=nil (2), gene_subset=nil, n_neighbors=nil}): obsp.<vkey>_graph
-- (correlations in (0, 1]), obsp.<vkey>_graph_neg ([-1, 0)), obs.<vkey>_self_transition.
-- Neighbours come from obsp.distances. Returns ad.
function M.velocity_graph(ad, opts)
  pputil.check_adata("velocity_graph", ad)
  local vkey = type(opts) == "table" and opts.vkey or "velocity"
  local graph, graph_neg, self, info = M.compute(ad, opts, "velocity_graph")
  ad.obsp[vkey .. "_graph"] = graph
  ad.obsp[vkey .. "_graph_neg"] = graph_neg
  ad.obs[vkey .. "_self_transition"] = self
  local p = util.params(ad, vkey .. "_params")
  p.embeddings = nil
  p.mode_neighbors = "distances"
  p.n_recurse_neighbors = info.n_recurse_neighbors
  return ad
end

return M
