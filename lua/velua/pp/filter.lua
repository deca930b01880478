-- Gene filtering as scVelo 0.3.3's pp.filter_genes: thresholds on spliced counts/cells,
-- unspliced counts/cells and "shared" counts/cells (spliced + unspliced over the cells where
-- both are non-zero). Records each cell's initial size (total counts over all genes) first.
local core = require "velua.core"
local options = require "velua.options"
local T = require "velua.tensor"
local util = require "velua.pp.util"

local M = {}
local NONE = options.NONE

-- obs.initial_size_<layer> (spliced, unspliced) and obs.initial_size (X): row sums of the
-- raw matrices over all genes, f32 as scVelo stores them. Existing entries are kept.
function M.set_initial_size(ad, layers)
  layers = layers or { "unspliced", "spliced" }
  for _, name in ipairs(layers) do
    local m = ad.layers[name]
    local key = "initial_size_" .. name
    if m ~= nil and ad.obs[key] == nil then
      ad.obs[key] = util.row_sums(util.float_matrix(m)):to("f32")
    end
  end
  if ad.obs.initial_size == nil and ad.X ~= nil then
    ad.obs.initial_size = util.row_sums(util.float_matrix(ad.X)):to("f32")
  end
end

-- Per-gene statistic (Lua array) for a threshold: counts (sum over cells) or cells (number of
-- cells with a positive value).
local function gene_stat(m, what)
  m = util.float_matrix(m)
  if what == "cells" then
    if T.is_sparse(m) then
      local pos = m:values():gt(0):to(m:dtype())
      return util.col_sums(util.with_values(m, pos)):totable()
    end
    return m:gt(0):to("f32"):sum(1):totable()
  end
  return util.col_sums(m):totable()
end

local function shared_matrix_stat(ad, what)
  local s, u = ad.layers.spliced, ad.layers.unspliced
  if what == "counts" and T.is_sparse(s) and T.is_sparse(u) and s:dtype() == "f32" and u:dtype() == "f32" then
    local a1, a2, a3, a4, a5 = util.csr_parts(s)
    local b1, b2, b3, b4, b5 = util.csr_parts(u)
    return core.shared_counts(a1, a2, a3, a4, a5, b1, b2, b3, b4, b5):totable()
  end
  local sd, ud = util.float_matrix(util.dense(s)), util.float_matrix(util.dense(u))
  local both = sd:gt(0):logical_and(ud:gt(0))
  if what == "cells" then return both:to("f32"):sum(1):totable() end
  return T.where(both, (sd + ud):to("f32"), 0):sum(1):totable()
end

local function bounds_mask(stat, lo, hi)
  local mask = {}
  for j = 1, #stat do
    local v = stat[j]
    mask[j] = (lo == nil or lo <= v) and (hi == nil or v <= hi)
  end
  return mask
end

local defaults = {
  min_counts = NONE, min_cells = NONE, max_counts = NONE, max_cells = NONE,
  min_counts_u = NONE, min_cells_u = NONE, max_counts_u = NONE, max_cells_u = NONE,
  min_shared_counts = NONE, min_shared_cells = NONE, retain_genes = NONE,
}

-- The genes that filter_genes keeps (1-based, ascending) and the number removed; nil when no
-- threshold is set. Every statistic is per gene, so computing each layer's on all genes and
-- intersecting the masks keeps the same genes as applying the layers one after the other.
-- Records the initial sizes first.
function M.gene_selection(fname, ad, opts)
  local o = options.check(fname, opts, defaults)
  M.set_initial_size(ad)
  local steps = {}
  if ad.layers.spliced then
    steps[#steps + 1] = { "spliced", o.min_counts, o.max_counts, o.min_cells, o.max_cells }
  end
  if ad.layers.unspliced then
    steps[#steps + 1] = { "unspliced", o.min_counts_u, o.max_counts_u, o.min_cells_u, o.max_cells_u }
  end
  if o.min_shared_counts ~= nil or o.min_shared_cells ~= nil then
    if not (ad.layers.spliced and ad.layers.unspliced) then
      error(fname .. ": min_shared_counts/min_shared_cells need layers spliced and unspliced", 3)
    end
    steps[#steps + 1] = { "shared", o.min_shared_counts, nil, o.min_shared_cells, nil }
  end
  local retain
  if o.retain_genes ~= nil and ad.var_names then
    retain = {}
    local list = type(o.retain_genes) == "string" and { o.retain_genes } or o.retain_genes
    for _, g in ipairs(list) do retain[g] = true end
  end
  local keep = nil
  local function apply(mask)
    if keep == nil then keep = mask return end
    for j = 1, #keep do keep[j] = keep[j] and mask[j] end
  end
  for _, st in ipairs(steps) do
    local name, min_c, max_c, min_n, max_n = st[1], st[2], st[3], st[4], st[5]
    if min_c ~= nil or max_c ~= nil then
      local stat = name == "shared" and shared_matrix_stat(ad, "counts") or gene_stat(ad.layers[name], "counts")
      apply(bounds_mask(stat, min_c, max_c))
    end
    if min_n ~= nil or max_n ~= nil then
      local stat = name == "shared" and shared_matrix_stat(ad, "cells") or gene_stat(ad.layers[name], "cells")
      apply(bounds_mask(stat, min_n, max_n))
    end
  end
  if keep == nil then return nil, 0 end
  if retain then
    for j = 1, #keep do keep[j] = keep[j] or retain[ad.var_names[j]] == true end
  end
  local idx = util.which(keep)
  return idx, #keep - #idx
end

-- filter_genes(ad, {min_counts=, min_cells=, max_counts=, max_cells=, min_counts_u=, ...,
-- min_shared_counts=, min_shared_cells=, retain_genes=}): keeps the genes passing every given
-- threshold (all unset by default), in place (see util.subset_vars). Returns ad and the
-- number of genes removed.
function M.filter_genes(ad, opts)
  util.check_adata("filter_genes", ad)
  local keep, removed = M.gene_selection("filter_genes", ad, opts)
  if keep ~= nil then ad = util.subset_vars(ad, keep) end
  return ad, removed
end

return M
