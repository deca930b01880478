-- Principal components of X, as scanpy 1.9.8's pp.pca with zero_center=true: mean-centred
-- without scaling (sparse X is centred implicitly), signs by scikit-learn's svd_flip with the
-- u-based decision (the largest |score| of each component is positive). f64 data are
-- decomposed exactly in double; f32 data (the usual case) through f32 products summed in double
-- (an AVX-512 kernel of velua's own where the CPU has it) and block Lanczos with checked
-- residuals, to about 1e-6 relative like scanpy's f32 ARPACK (csrc/core/pca.c; see docs/pp.md).
local core = require "velua.core"
local options = require "velua.options"
local T = require "velua.tensor"
local util = require "velua.pp.util"

local M = {}
local NONE = options.NONE

local defaults = { n_comps = 30, use_highly_variable = NONE, zero_center = true, dtype = "f32",
  layer = NONE }

-- pca(ad, {n_comps=30, use_highly_variable=(var.highly_variable present), dtype="f32",
-- layer=nil (X)}): obsm.X_pca [n_obs, n_comps], varm.PCs [n_vars, n_comps] (zero rows for
-- genes left out), uns.pca = {variance, variance_ratio, params}. Returns ad.
function M.pca(ad, opts)
  util.check_adata("pca", ad)
  local o = options.check("pca", opts, defaults)
  if o.zero_center ~= true then
    error("pca: only zero_center=true is implemented", 2)
  end
  local X = o.layer and ad.layers[o.layer] or ad.X
  if X == nil then error("pca: " .. (o.layer and ("layer '" .. o.layer .. "'") or "ad.X") .. " is missing", 2) end
  X = util.float_matrix(X)
  local use_hv = o.use_highly_variable
  if use_hv == nil then use_hv = ad.var.highly_variable ~= nil end
  local cols
  if use_hv then
    local hv = ad.var.highly_variable
    if hv == nil then error("pca: use_highly_variable=true but var.highly_variable is missing", 2) end
    local mask = T.is_tensor(hv) and hv:totable() or hv
    cols = {}
    for j = 1, #mask do if mask[j] == true or mask[j] == 1 then cols[#cols + 1] = j end end
    if #cols < ad.n_vars then X = util.select_columns(X, cols) else cols = nil end
  end
  local sh = X:shape()
  local n, g = sh[1], sh[2]
  local k = o.n_comps
  if math.type(k) ~= "integer" or k < 1 or k > math.min(n, g) then
    error(string.format("pca: n_comps = %s must be an integer in [1, min(n_obs, n_vars) = %d]",
      tostring(k), math.min(n, g)), 2)
  end
  local scores, comps, sv, _, total_var
  if T.is_sparse(X) then
    local ip, ix, v, nr, nc = util.csr_parts(X)
    scores, comps, sv, _, total_var = core.pca_csr(ip, ix, v, nr, nc, k)
  else
    scores, comps, sv, _, total_var = core.pca_dense(X, k)
  end
  local variance = (sv * sv) / (n - 1)
  ad.obsm.X_pca = scores:to(o.dtype)
  local pcs = comps:to(X:dtype())
  if cols then
    local full = T.zeros({ ad.n_vars, k }, { dtype = X:dtype() })
    full:index_add_(1, T.tensor(cols, { dtype = "i64" }), pcs)
    pcs = full
  end
  ad.varm.PCs = pcs
  ad.uns.pca = {
    params = { zero_center = true, use_highly_variable = use_hv and true or false },
    variance = variance,
    variance_ratio = variance / total_var,
  }
  return ad
end

return M
