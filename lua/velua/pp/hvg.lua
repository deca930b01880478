-- Highly variable genes by normalised dispersion, as scVelo 0.3.3's
-- pp.filter_genes_dispersion (flavors "seurat" and "cell_ranger"), on normalised, not logged
-- X. The per-gene statistics follow its NumPy/pandas dtypes: means and variances in f32,
-- bin means in f32 (pandas' compensated sum), bin standard deviations in f64 (Welford), the
-- normalised dispersion in f64.
local core = require "velua.core"
local options = require "velua.options"
local T = require "velua.tensor"
local util = require "velua.pp.util"
local filter = require "velua.pp.filter"

local M = {}
local NONE = options.NONE
local NAN = 0 / 0

-- Means and unbiased variances of the columns of X in f32, as scVelo's get_mean_var.
function M.mean_var(X)
  X = util.float_matrix(X):to("f32")
  local n = X:shape()[1]
  local sum, sumsq
  if T.is_sparse(X) then
    local ip, ix, v, nr, nc = util.csr_parts(X)
    sum, sumsq = core.csr_col_stats(ip, ix, v, nr, nc)
    sum, sumsq = sum:to("f32"), sumsq:to("f32")
  else
    sum, sumsq = X:sum(1), (X * X):sum(1)
  end
  local mean = sum / n
  local mean_sq = sumsq / n
  local nc = math.max(n, 2)
  local var = (mean_sq - mean * mean) * (nc / (nc - 1))
  return mean:to("f32"), var:to("f32")
end

-- pandas.cut(x, bins = nbins) labels (1..nbins, nil for NaN): equal-width bins over
-- [min, max] with the lowest edge lowered by 0.1% of the range, right-closed.
local function cut_equal(x, nbins)
  local mn, mx = math.huge, -math.huge
  for _, v in ipairs(x) do
    if v == v then
      if v < mn then mn = v end
      if v > mx then mx = v end
    end
  end
  local edges = {}
  if mn == mx then
    mn = mn - (mn ~= 0 and 0.001 * math.abs(mn) or 0.001)
    mx = mx + (mx ~= 0 and 0.001 * math.abs(mx) or 0.001)
    local step = (mx - mn) / nbins
    for i = 0, nbins do edges[i] = i * step + mn end
    edges[nbins] = mx
  else
    local step = (mx - mn) / nbins
    for i = 0, nbins do edges[i] = i * step + mn end
    edges[nbins] = mx
    edges[0] = edges[0] - (mx - mn) * 0.001
  end
  return M.cut_edges(x, edges, nbins)
end

-- Labels of x for right-closed bins (edges[0], edges[1]], ..., (edges[nb-1], edges[nb]].
function M.cut_edges(x, edges, nb)
  local lab = {}
  for i, v in ipairs(x) do
    if v == v and v > edges[0] and v <= edges[nb] then
      -- searchsorted(edges, v, side="left"): first edge >= v
      local lo, hi = 1, nb
      while lo < hi do
        local mid = (lo + hi) // 2
        if edges[mid] >= v then hi = mid else lo = mid + 1 end
      end
      lab[i] = lo
    end
  end
  return lab
end

-- Seurat flavor: (dispersion - bin mean) / bin sd, with pandas' single-gene-bin rule; the
-- per-bin statistics in C (pp_kernels.c: f32 Kahan means, f64 Welford deviations).
local function norm_seurat(mean, disp, n_bins)
  local lab = cut_equal(mean, n_bins)
  local n = #disp
  local bins = {}
  for i = 1, n do bins[i] = lab[i] or 0 end
  local d = T.tensor(disp, { dtype = "f64" })
  return core.seurat_norm(d, T.tensor(bins, { dtype = "i64" }), n_bins):totable()
end

local function percentile_linear(sorted, q)
  local n = #sorted
  local pos = q / 100 * (n - 1)
  local lo = math.floor(pos)
  local t = pos - lo
  local a = sorted[lo + 1]
  local b = sorted[math.min(lo + 2, n)]
  if t >= 0.5 then return b - (b - a) * (1 - t) end
  return a + (b - a) * t
end

local function median_of(list)
  table.sort(list)
  local n = #list
  if n == 0 then return NAN end
  if n % 2 == 1 then return list[(n + 1) // 2] end
  return (list[n // 2] + list[n // 2 + 1]) / 2
end

-- Cell Ranger flavor: |dispersion - bin median| / bin MAD over 20 quantile bins of the mean.
local function norm_cell_ranger(mean, disp)
  local sorted = {}
  for i, v in ipairs(mean) do sorted[i] = v end
  table.sort(sorted)
  local edges = { [0] = -math.huge }
  local nb = 0
  for q = 10, 100, 5 do
    nb = nb + 1
    edges[nb] = percentile_linear(sorted, q)
  end
  nb = nb + 1
  edges[nb] = math.huge
  for b = 1, nb do
    if not (edges[b] > edges[b - 1]) then
      error("highly_variable_genes: bin edges must be unique (flavor cell_ranger); too few " ..
        "distinct mean expressions", 3)
    end
  end
  local lab = M.cut_edges(mean, edges, nb)
  local groups = {}
  for b = 1, nb do groups[b] = {} end
  for i, d in ipairs(disp) do
    if lab[i] then table.insert(groups[lab[i]], d) end
  end
  local med, mad = {}, {}
  for b = 1, nb do
    local vals, has_nan = {}, false
    for _, d in ipairs(groups[b]) do
      if d == d then vals[#vals + 1] = d else has_nan = true end
    end
    med[b] = median_of(vals)
    if has_nan or #vals == 0 then
      mad[b] = NAN
    else
      local dev = {}
      for i, d in ipairs(vals) do dev[i] = math.abs(d - med[b]) / 0.6744897501960817 end
      mad[b] = median_of(dev)
    end
  end
  local out = {}
  for i, d in ipairs(disp) do
    local b = lab[i]
    local v = NAN
    if b then v = math.abs(d - med[b]) / mad[b] end
    out[i] = v == v and v or 0
  end
  return out
end

local defaults = {
  flavor = "seurat", min_disp = NONE, max_disp = NONE, min_mean = NONE, max_mean = NONE,
  n_bins = 20, n_top_genes = NONE, retain_genes = NONE, log = true, subset = NONE,
}

local function run(fname, ad, opts, subset_default)
  util.check_adata(fname, ad)
  local o = options.check(fname, opts, defaults)
  local subset = o.subset
  if subset == nil then subset = subset_default end
  if o.flavor ~= "seurat" and o.flavor ~= "cell_ranger" then
    error(fname .. ": flavor must be 'seurat' or 'cell_ranger', got '" .. tostring(o.flavor) .. "'", 3)
  end
  if ad.X == nil then error(fname .. ": ad.X is missing", 3) end
  filter.set_initial_size(ad)
  if o.n_top_genes ~= nil and ad.n_vars < o.n_top_genes then
    return ad, false -- scVelo skips the selection when fewer genes are left
  end
  local mean_t, var_t = M.mean_var(ad.X)
  mean_t = T.where(mean_t:eq(0), 1e-12, mean_t):to("f32")
  local disp_t = (var_t / mean_t):to("f32")
  if o.log then
    disp_t = T.where(disp_t:eq(0), 0 / 0, disp_t):to("f32"):log()
    mean_t = mean_t:log1p()
  end
  local mean, disp = mean_t:totable(), disp_t:totable()
  local norm = o.flavor == "seurat" and norm_seurat(mean, disp, o.n_bins) or norm_cell_ranger(mean, disp)
  local hv = {}
  if o.n_top_genes ~= nil then
    local sorted = {}
    for i, v in ipairs(norm) do sorted[i] = v end
    table.sort(sorted) -- ascending (no NaN: norm_* write 0 for them); the n-th largest
    local cut = sorted[#sorted - math.min(o.n_top_genes, #sorted) + 1]
    for i, v in ipairs(norm) do hv[i] = v >= cut end
  else
    local min_disp = o.min_disp or 0.5
    local max_disp = o.max_disp or math.huge
    local min_mean = o.min_mean or 0.0125
    local max_mean = o.max_mean or 3
    for i = 1, #norm do
      hv[i] = mean[i] > min_mean and mean[i] < max_mean and norm[i] > min_disp and norm[i] < max_disp
    end
  end
  ad.var.means = mean_t
  ad.var.dispersions = disp_t
  ad.var.dispersions_norm = T.tensor(norm, { dtype = "f64" })
  ad.var.highly_variable = T.tensor(hv, { dtype = "bool" })
  if subset then
    local keep = {}
    for i = 1, #hv do keep[i] = hv[i] end
    if o.retain_genes ~= nil and ad.var_names then
      local list = type(o.retain_genes) == "string" and { o.retain_genes } or o.retain_genes
      local want = {}
      for _, g in ipairs(list) do want[g] = true end
      for i = 1, #keep do keep[i] = keep[i] or want[ad.var_names[i]] == true end
    end
    local kept = util.which(keep)
    util.subset_vars(ad, kept)
    return ad, true, kept
  end
  return ad, true
end

-- highly_variable_genes(ad, {n_top_genes=, flavor="seurat", n_bins=20, min_mean=0.0125,
-- max_mean=3, min_disp=0.5, max_disp=inf, log=true, subset=false, retain_genes=}): writes
-- var.means, var.dispersions, var.dispersions_norm, var.highly_variable; with subset=true
-- keeps only those genes (ad changed in place). Skipped (returns ad, false) when n_top_genes exceeds the genes left.
function M.highly_variable_genes(ad, opts)
  return run("highly_variable_genes", ad, opts, false)
end

-- filter_genes_dispersion(ad, {...}): the same with subset=true by default (scVelo's name);
-- when it subsets, the kept genes' former positions (1-based) come third.
function M.filter_genes_dispersion(ad, opts)
  return run("filter_genes_dispersion", ad, opts, true)
end

return M
