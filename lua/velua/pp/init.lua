-- velua.pp: preprocessing for RNA velocity, matching scVelo 0.3.3 / scanpy 1.9.8
-- (SPEC section 1). Every function works in place on an AnnData (X, layers, obs, var, obsm,
-- obsp, uns) under scanpy/scVelo key names and returns it. See docs/pp.md.
local options = require "velua.options"
local util = require "velua.pp.util"
local filter = require "velua.pp.filter"
local normalize = require "velua.pp.normalize"
local hvg = require "velua.pp.hvg"
local pca = require "velua.pp.pca"
local neighbors = require "velua.pp.neighbors"
local moments = require "velua.pp.moments"

local M = {
  filter_genes = filter.filter_genes,
  set_initial_size = filter.set_initial_size,
  normalize_per_cell = normalize.normalize_per_cell,
  log1p = normalize.log1p,
  highly_variable_genes = hvg.highly_variable_genes,
  filter_genes_dispersion = hvg.filter_genes_dispersion,
  pca = pca.pca,
  neighbors = neighbors.neighbors,
  knn = neighbors.knn,
  moments = moments.moments,
  second_order_moments = moments.second_order_moments,
  moments_operator = moments.moments_operator,
}

local NONE = options.NONE
local fn_defaults = {
  min_counts = NONE, min_counts_u = NONE, min_cells = NONE, min_cells_u = NONE,
  min_shared_counts = 20, min_shared_cells = NONE, n_top_genes = 2000, retain_genes = NONE,
  subset_highly_variable = true, flavor = "seurat", log = true, layers_normalize = NONE,
  counts_per_cell_after = NONE, counts_per_cell = NONE, max_proportion_per_cell = NONE,
  use_initial_size = true, enforce = NONE,
}

-- filter_and_normalize(ad, {min_shared_counts=20, n_top_genes=2000, log=true, flavor="seurat",
-- subset_highly_variable=true, min_counts=, min_counts_u=, min_cells=, min_cells_u=,
-- min_shared_cells=, retain_genes=, layers_normalize=, counts_per_cell_after=, ...}):
-- filter_genes, normalize_per_cell, filter_genes_dispersion (when n_top_genes is set and
-- enough genes are left), then log1p of X when X still equals the spliced counts.
-- Set n_top_genes or min_shared_counts to false to skip that step. Returns the result: ad
-- itself, or a new AnnData when genes were removed from one that cannot shrink in place
-- (write `ad = pp.filter_and_normalize(ad)`).
function M.filter_and_normalize(ad, opts)
  util.check_adata("filter_and_normalize", ad)
  local o = options.check("filter_and_normalize", opts, fn_defaults)
  local function opt(v) if v == false then return nil end return v end
  ad = filter.filter_genes(ad, {
    min_counts = o.min_counts, min_counts_u = o.min_counts_u, min_cells = o.min_cells,
    min_cells_u = o.min_cells_u, min_shared_counts = opt(o.min_shared_counts),
    min_shared_cells = o.min_shared_cells, retain_genes = o.retain_genes,
  })
  local enforce = o.enforce
  if o.layers_normalize ~= nil and enforce == nil then enforce = true end
  normalize.normalize_per_cell(ad, {
    layers = o.layers_normalize, enforce = enforce or false,
    counts_per_cell_after = o.counts_per_cell_after, counts_per_cell = o.counts_per_cell,
    max_proportion_per_cell = o.max_proportion_per_cell, use_initial_size = o.use_initial_size,
  })
  if opt(o.n_top_genes) ~= nil then
    ad = hvg.filter_genes_dispersion(ad, { n_top_genes = o.n_top_genes, retain_genes = o.retain_genes,
      flavor = o.flavor, subset = o.subset_highly_variable })
  end
  -- scVelo logs X only when it still looks like the (normalised) spliced counts
  local log_advised = true
  if ad.layers.spliced ~= nil and ad.X ~= nil then
    local a, b = util.sum_rows(ad.X, 10), util.sum_rows(ad.layers.spliced, 10)
    log_advised = math.abs(a - b) <= 1e-8 + 1e-5 * math.abs(b)
  end
  if o.log and log_advised then normalize.log1p(ad) end
  return ad
end

return M
