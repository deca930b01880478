-- Projection of velocities onto an embedding, as scVelo 0.3.3's velocity_embedding (SPEC
-- section 3): with T the transition matrix (use_negative_cosines, self transitions, then the
-- diagonal removed) and e_ij the unit vectors from x_i to its stored neighbours x_j,
-- v_i = sum_j T_ij e_ij - mean_j(T_ij) sum_j e_ij (the density correction). Kernel:
-- csrc/core/transition.c.
local core = require "velua.core"
local options = require "velua.options"
local T = require "velua.tensor"
local pputil = require "velua.pp.util"
local util = require "velua.tl.util"

local M = {}
local NONE = options.NONE

local defaults = {
  basis = "umap", vkey = "velocity", scale = 10, self_transitions = true,
  use_negative_cosines = true, retain_scale = false, autoscale = false, all_comps = true,
  T = NONE,
}

-- scVelo's autoscale: 1 / (3 * matplotlib's quiver scale) of the arrows drawn on a default
-- figure (6.4 x 4.8 in at 100 dpi, axes 496 x 369.6 px over the unit square, which is the
-- view quiver's first layout uses), divided by max|X|.
function M.quiver_autoscale(X, V)
  local x = X:to("f64")
  local sf = x:abs():max():item()
  local v = V:to("f64"):narrow(2, 1, 2)
  local px = v:select(2, 1) * 496.0
  local py = v:select(2, 2) * 369.6
  local amean = (px * px + py * py):sqrt():mean():item()
  local n = X:size(1)
  local sn = math.max(10, math.sqrt(n))
  return 1.8 * amean * sn / 496.0 / sf
end

-- velocity_embedding(ad, {basis="umap", vkey="velocity", scale=10, all_comps=true,
-- autoscale=false, retain_scale=false, T=nil}): obsm.<vkey>_<basis> (f64 [n, d]) from
-- obsm.X_<basis> (d = all its components, or 2 with all_comps=false). T may be given to reuse
-- a transition matrix. Returns ad.
function M.velocity_embedding(ad, opts)
  pputil.check_adata("velocity_embedding", ad)
  local o = options.check("velocity_embedding", opts, defaults)
  local key = "X_" .. tostring(o.basis)
  local X = ad.obsm[key]
  if X == nil then
    error("velocity_embedding: obsm." .. key .. " is missing (compute the embedding first, e.g. tl.umap or pp.pca)", 2)
  end
  if T.is_sparse(X) then X = X:to_dense() end
  local sh = X:shape()
  if #sh ~= 2 or sh[1] ~= ad.n_obs then
    error(string.format("velocity_embedding: obsm.%s has shape {%s}, expected %d rows (one per cell)",
      key, table.concat(sh, ", "), ad.n_obs), 2)
  end
  if not o.all_comps and sh[2] > 2 then X = X:narrow(2, 1, 2) end
  local Tm = o.T
  if Tm == nil then
    Tm = require("velua.tl.transition").transition_matrix(ad, { vkey = o.vkey, scale = o.scale,
      self_transitions = o.self_transitions, use_negative_cosines = o.use_negative_cosines })
  elseif not T.is_sparse(Tm) then
    error("velocity_embedding: T must be a sparse CSR matrix", 2)
  end
  local tsh = Tm:shape()
  if tsh[1] ~= ad.n_obs or tsh[2] ~= ad.n_obs then
    error(string.format("velocity_embedding: T has shape {%d, %d}, expected {%d, %d}", tsh[1], tsh[2],
      ad.n_obs, ad.n_obs), 2)
  end
  local Xd = X:to("f64"):contiguous()
  local V = core.velocity_embedding(Tm:indptr(), Tm:indices(), Tm:values(), tsh[1], tsh[2], Xd,
    o.retain_scale)
  if o.autoscale then V = V / (3 * M.quiver_autoscale(Xd, V)) end
  ad.obsm[o.vkey .. "_" .. o.basis] = V
  local p = util.params(ad, o.vkey .. "_params")
  local emb = type(p.embeddings) == "table" and p.embeddings or {}
  local seen = false
  for _, b in ipairs(emb) do if b == o.basis then seen = true end end
  if not seen then emb[#emb + 1] = o.basis end
  p.embeddings = emb
  return ad
end

return M
