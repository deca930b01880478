-- velua.pp: preprocessing for RNA velocity, matching scVelo 0.3.3 / scanpy 1.9.8
-- (SPEC section 1). Every function works in place on an AnnData (X, layers, obs, var, obsm,
-- obsp, uns) under scanpy/scVelo key names and returns it. See docs/pp.md.
local options = require "velua.options"
local T = require "velua.tensor"
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
-- Set n_top_genes or min_shared_counts to false to skip that step. Changes ad in place (genes
-- removed from it, as scVelo does) and returns it.
function M.filter_and_normalize(ad, opts)
  util.check_adata("filter_and_normalize", ad)
  local o = options.check("filter_and_normalize", opts, fn_defaults)
  local function opt(v) if v == false then return nil end return v end
  local filter_opts = {
    min_counts = o.min_counts, min_counts_u = o.min_counts_u, min_cells = o.min_cells,
    min_cells_u = o.min_cells_u, min_shared_counts = opt(o.min_shared_counts),
    min_shared_cells = o.min_shared_cells, retain_genes = o.retain_genes,
  }
  local enforce = o.enforce
  if o.layers_normalize ~= nil and enforce == nil then enforce = true end
  local norm_opts = {
    layers = o.layers_normalize, enforce = enforce or false,
    counts_per_cell_after = o.counts_per_cell_after, counts_per_cell = o.counts_per_cell,
    max_proportion_per_cell = o.max_proportion_per_cell, use_initial_size = o.use_initial_size,
  }
  -- The layers (spliced, unspliced, ...) are held out of ad while X goes through filtering,
  -- normalisation and gene selection, and are cut once at the end, already scaled
  -- (util.select_columns with row factors). The result is the same: each layer's divisors
  -- come from the initial sizes recorded before filtering, and scaling rows commutes with
  -- selecting columns. It saves a column selection and a scaling pass per layer.
  local keep1 = filter.gene_selection("filter_and_normalize", ad, filter_opts)
  if keep1 ~= nil and #keep1 == ad.n_vars then keep1 = nil end -- every gene kept
  local held, factors = nil, nil
  local has_layers = false
  for _ in pairs(ad.layers) do has_layers = true break end
  if normalize.can_defer(norm_opts) and has_layers then
    factors = normalize.deferred_factors(ad, ad.layers, keep1, norm_opts)
    held = {}
    for name, m in pairs(ad.layers) do held[name] = m end
    for name in pairs(held) do ad.layers[name] = nil end
  end
  local ok, err = pcall(function()
    if keep1 ~= nil then util.subset_vars(ad, keep1) end
    normalize.normalize_per_cell(ad, norm_opts)
    local keep2
    if opt(o.n_top_genes) ~= nil then
      _, _, keep2 = hvg.filter_genes_dispersion(ad, { n_top_genes = o.n_top_genes,
        retain_genes = o.retain_genes, flavor = o.flavor, subset = o.subset_highly_variable })
    end
    if held ~= nil then
      local keep = keep1
      if keep2 ~= nil then
        keep = {}
        for i, j in ipairs(keep2) do keep[i] = keep1 and keep1[j] or j end
      end
      for name, m in pairs(held) do
        local c = factors[name]
        if c ~= nil then m = util.float_matrix(m) end -- as normalize_per_cell's layers
        if c and not T.is_sparse(m) then
          if keep ~= nil then m = util.select_columns(m, keep) end
          m = normalize.scale_rows(m, c)
        elseif keep ~= nil then
          local s = c and normalize.inverse_factors(c, m:dtype()) or nil
          m = util.select_columns(m, keep, s)
        elseif c then
          m = normalize.scale_rows(m, c)
        end
        ad.layers[name] = m
      end
      held = nil
    end
  end)
  if held ~= nil then
    -- an error on the way: the layers go back (uncut) where they fit
    for name, m in pairs(held) do
      if ad.layers[name] == nil and m:shape()[2] == ad.n_vars then ad.layers[name] = m end
    end
  end
  if not ok then error(err, 0) end
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
