-- Per-cell normalisation and log1p as scVelo 0.3.3 (pp.normalize_per_cell, pp.log1p): each
-- layer (X, spliced, unspliced by default) is scaled per cell to the median of that layer's
-- initial size, in f32 with scVelo's exact sequence of operations:
-- c = size / median; x = x * (1 / c) for sparse matrices, x / c for dense ones.
local core = require "velua.core"
local options = require "velua.options"
local T = require "velua.tensor"
local util = require "velua.pp.util"
local filter = require "velua.pp.filter"

local M = {}
local NONE = options.NONE
local f32 = util.f32

-- np.median of an f32 vector: the middle value, or the f32 mean of the two middle ones.
local function median_f32(v)
  local a = v:totable()
  table.sort(a)
  local n = #a
  if n == 0 then return 0 end
  if n % 2 == 1 then return a[(n + 1) // 2] end
  return f32(f32(a[n // 2] + a[n // 2 + 1]) / 2)
end
M.median_f32 = median_f32

-- The factors sparse rows are multiplied by: 1 / c in f32, in the values' dtype.
local function inverse_factors(c, dtype)
  return (1 / c):to("f32"):to(dtype)
end
M.inverse_factors = inverse_factors

-- Row i of m over c[i] (f32 tensor), as scVelo: sparse values times 1 / c (sklearn's
-- inplace_row_scale), dense rows divided by c.
local function scale_rows(m, c)
  if T.is_sparse(m) then
    local ip, ix, v, nr, nc = util.csr_parts(m)
    local s = inverse_factors(c, v:dtype())
    return T.sparse_csr(ip, ix, core.csr_scale_rows(ip, ix, v, nr, nc, s), { nr, nc })
  end
  return m / c:to(m:dtype()):unsqueeze(2)
end
M.scale_rows = scale_rows

-- Pearson correlation of every gene with the number of expressed genes per cell (scVelo's
-- csr_vcorrcoef), rounded to 4 decimals; computed in f64.
local function gene_count_corr(X)
  local n = X:shape()[1]
  local y, sx, sxx, sxy
  if T.is_sparse(X) then
    y, sx, sxx, sxy = core.csr_count_corr_stats(util.csr_parts(X))
  else
    local X64 = X:to("f64")
    y = X:gt(0):to("f64"):sum(2)
    sx, sxx, sxy = X64:sum(1), (X64 * X64):sum(1), X64:t():matmul(y)
  end
  local mu_y = y:mean():item()
  local mu_x = sx / n
  local sy = y:sum():item()
  local nom = sxy - sx * mu_y - mu_x * (sy - n * mu_y)
  local denom_x = sxx - sx * mu_x
  local syy = (y * y):sum():item()
  local denom_y = syy - sy * mu_y
  local r = (nom / (denom_x * denom_y):sqrt()):totable()
  for j = 1, #r do
    local v = r[j]
    if v == v then
      -- np.round: half to even at 4 decimals
      local s = v * 1e4
      local fl = math.floor(s)
      local frac = s - fl
      local q
      if frac > 0.5 then q = fl + 1 elseif frac < 0.5 then q = fl
      else q = (fl % 2 == 0) and fl or fl + 1 end
      r[j] = q / 1e4
    end
  end
  return T.tensor(r, { dtype = "f64" })
end
M.gene_count_corr = gene_count_corr

local norm_defaults = {
  counts_per_cell_after = NONE, counts_per_cell = NONE, key_n_counts = "n_counts",
  max_proportion_per_cell = NONE, use_initial_size = true, layers = NONE, enforce = false,
}

-- Which layers normalize_per_cell works on (X first), from its `layers` option.
local function layer_list(ad, layers)
  if layers == nil then layers = { "spliced", "unspliced" }
  elseif layers == "all" then
    layers = {}
    for name in pairs(ad.layers) do layers[#layers + 1] = name end
    table.sort(layers)
  elseif type(layers) == "string" then layers = { layers } end
  local names = { "X" }
  for _, name in ipairs(layers) do
    if name ~= "X" and ad.layers[name] ~= nil then names[#names + 1] = name end
  end
  return names
end

-- The per-cell divisors c (f32) that normalize_per_cell applies to layer `name` (matrix m),
-- or nil when it leaves the layer alone. `probe` (default m) is what the not-yet-normalised
-- check looks at: its first five rows must be m's.
local function row_factors(ad, name, m, o, counts_given, probe)
  if not (util.not_yet_normalized(probe or m) or o.enforce) then return nil end
  local counts
  if counts_given ~= nil then
    counts = T.is_tensor(counts_given) and counts_given:to("f32") or T.tensor(counts_given, { dtype = "f32" })
  elseif o.use_initial_size then
    local key = name == "X" and "initial_size" or ("initial_size_" .. name)
    counts = ad.obs[key]
    if counts == nil then counts = util.row_sums(m):to("f32") end
    counts = counts:to("f32")
  else
    counts = util.row_sums(m):to("f32")
  end
  if o.max_proportion_per_cell ~= nil and o.max_proportion_per_cell > 0 and o.max_proportion_per_cell < 1 then
    -- genes that never exceed the proportion in any cell; counts over those only
    local dm = util.dense(m)
    local lim = counts:to(dm:dtype()):unsqueeze(2) * o.max_proportion_per_cell
    local ok = dm:le(lim):all(1):totable()
    local keep = util.which(ok)
    counts = util.row_sums(util.select_columns(m, keep)):to("f32")
  end
  local after = o.counts_per_cell_after
  if after == nil then after = median_f32(counts) else after = f32(after) end
  if after == 0 then after = 1 end
  local c = counts / after                  -- f32
  return T.where(c:eq(0), 1, c):to("f32")
end

-- The layers that filter_and_normalize may normalise after cutting them to their final genes
-- (M.normalize_deferred): its default options, where every divisor comes from the initial
-- sizes recorded before filtering and so does not depend on the genes kept.
function M.can_defer(o)
  return o.layers == nil and not o.enforce and o.counts_per_cell == nil and
    o.max_proportion_per_cell == nil and o.use_initial_size ~= false
end

-- Divisors for each held layer (name -> matrix over all genes, `keep` the genes kept so far
-- or nil): {name -> c or false}. As normalize_per_cell would compute them on the cut layers.
function M.deferred_factors(ad, held, keep, opts)
  local o = options.check("normalize_per_cell", opts, norm_defaults)
  local out = {}
  for _, name in ipairs(layer_list({ layers = held }, o.layers)) do
    local m = held[name]
    if name ~= "X" and m ~= nil then
      m = util.float_matrix(m)
      if ad.obs["initial_size_" .. name] == nil then
        error("normalize_per_cell: obs.initial_size_" .. name .. " is missing", 2)
      end
      -- the check looks at the first rows of the cut layer
      local probe = util.first_rows(m, 5)
      if keep ~= nil then probe = util.select_columns(probe, keep) end
      out[name] = row_factors(ad, name, m, o, nil, probe) or false
    end
  end
  return out
end

-- normalize_per_cell(ad, {counts_per_cell_after=, counts_per_cell=, key_n_counts="n_counts",
-- max_proportion_per_cell=, use_initial_size=true, layers={"spliced","unspliced"}, enforce=false})
-- Normalises X and the layers in place; writes obs[key_n_counts] (row sums of the new X) and
-- var.gene_count_corr (when more than 3000 genes). Returns ad and the list of layers changed.
function M.normalize_per_cell(ad, opts)
  util.check_adata("normalize_per_cell", ad)
  local o = options.check("normalize_per_cell", opts, norm_defaults)
  local names = layer_list(ad, o.layers)
  local counts_given = o.counts_per_cell
  if type(counts_given) == "string" then
    if ad.obs[counts_given] == nil then filter.set_initial_size(ad, names) end
    counts_given = ad.obs[counts_given]
  end
  local modified = {}
  for _, name in ipairs(names) do
    local m = util.layer(ad, name)
    if m ~= nil then
      m = util.float_matrix(m)
      util.set_layer(ad, name, m)
      local c = row_factors(ad, name, m, o, counts_given)
      if c ~= nil then
        m = scale_rows(m, c)
        util.set_layer(ad, name, m)
        modified[#modified + 1] = name
        if name == "X" and ad.var.gene_count_corr == nil and m:shape()[2] > 3000 then
          local ok, r = pcall(gene_count_corr, m)
          if ok then ad.var.gene_count_corr = r end
        end
      end
    end
  end
  if ad.X ~= nil then ad.obs[o.key_n_counts] = util.row_sums(ad.X):to("f32") end
  return ad, modified
end

-- log1p(ad): X = log(1 + X) (scVelo logs X only), in X's dtype. Returns ad.
function M.log1p(ad, opts)
  util.check_adata("log1p", ad)
  options.check("log1p", opts, {})
  local X = ad.X
  if X == nil then error("log1p: ad.X is missing", 2) end
  if T.is_sparse(X) then
    ad.X = util.with_values(X, X:values():log1p())
  else
    ad.X = util.float_matrix(X):log1p()
  end
  ad.uns.log1p = ad.uns.log1p or {} -- as scanpy's marker (base nil: natural log)
  return ad
end

return M
