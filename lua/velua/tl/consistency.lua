-- DeepVelo's consistency scores of a velocity field (SPEC section 3; oracle README item 11)
-- and the Mann-Whitney U test used to compare two methods' per-cell scores (as
-- scipy.stats.mannwhitneyu with its defaults).
local options = require "velua.options"
local T = require "velua.tensor"

local M = {}
local NONE = options.NONE

local function is_adata(ad)
  return type(ad) == "table" and ad.n_obs ~= nil and ad.layers ~= nil
end

-- 1-based codes (0 = missing) of an obs column: categorical, string array or numeric tensor.
local function group_codes(fname, col, n, key)
  if type(col) == "table" and col.codes ~= nil then
    return col.codes:to("i64"), col.categories
  end
  local values
  if T.is_tensor(col) then
    if col:dim() ~= 1 or col:size(1) ~= n then
      error(string.format("%s: obs.%s must have %d entries", fname, key, n), 3)
    end
    values = col:totable()
  elseif type(col) == "table" then
    values = col
  else
    error(string.format("%s: obs.%s must be a categorical, string or numeric column, got %s",
      fname, key, type(col)), 3)
  end
  local code_of, cats, codes = {}, {}, {}
  for i = 1, n do
    local v = values[i]
    if v == nil or v ~= v then
      codes[i] = 0
    else
      if not code_of[v] then cats[#cats + 1] = v; code_of[v] = #cats end
      codes[i] = code_of[v]
    end
  end
  return T.tensor(codes, { dtype = "i64" }), cats
end

-- The gene mask: the velocity genes (var.<vkey>_genes, else var.velocity_genes) when asked,
-- and genes without any NaN. Returns the 1-based column numbers.
local function gene_columns(fname, ad, V, o)
  local nan_free = T.no_grad(function() return V:isnan():any(1):logical_not() end):totable()
  local mask = nil
  if o.only_velocity_genes then
    local key = o.genes_key or (ad.var[o.vkey .. "_genes"] ~= nil and o.vkey .. "_genes")
      or "velocity_genes"
    local col = ad.var[key]
    if col == nil then
      error(string.format("%s: var.%s is missing; run tl.velocity first, name a gene column " ..
        "with genes_key, or pass only_velocity_genes=false", fname, key), 3)
    end
    mask = T.is_tensor(col) and col:totable() or col
  end
  local cols = {}
  for j = 1, #nan_free do
    local keep = nan_free[j]
    if mask then keep = keep and (mask[j] == true or mask[j] == 1) end
    if keep then cols[#cols + 1] = j end
  end
  if #cols == 0 then error(fname .. ": no gene is left (velocity genes without NaN)", 3) end
  return cols
end

-- The rows of V (f64) scaled to unit length; all-zero rows stay zero.
local function unit_rows(V)
  local norm = V:norm(2, 2, true)
  return T.where(norm:gt(0), V / norm, 0)
end

local defaults = { vkey = "velocity", groupby = NONE, only_velocity_genes = true,
  genes_key = NONE, key_added = "consistency", neighbors_key = "distances" }

-- consistency(ad, {vkey="velocity", groupby=nil, only_velocity_genes=true, genes_key=nil,
-- key_added="consistency", neighbors_key="distances"}): DeepVelo's consistency of
-- layers[vkey], in f64. v_i is unit-normalised over the genes used (the velocity genes,
-- var.<vkey>_genes or else var.velocity_genes, or all genes when only_velocity_genes is false;
-- genes with any NaN are dropped); overall_i = v_i . mean_{j in kNN(i)} v_j, kNN(i) the stored
-- entries of row i of obsp[neighbors_key] (self excluded); with groupby, celltype_i =
-- v_i . mean over all cells of i's group (self included; NaN for a cell without group). Cells
-- with zero velocity score 0. Writes obs.<key_added>_overall (and obs.<key_added>_celltype)
-- and returns overall, celltype (f64 tensors [n_obs]; celltype nil without groupby).
function M.consistency(ad, opts)
  local fname = "consistency"
  if not is_adata(ad) then error(fname .. ": an AnnData expected, got " .. type(ad), 2) end
  local o = options.check(fname, opts, defaults)
  local V = ad.layers[o.vkey]
  if V == nil then error(fname .. ": layers." .. tostring(o.vkey) .. " is missing", 2) end
  if T.is_sparse(V) then V = V:to_dense() end
  local n = ad.n_obs
  local overall, celltype
  T.no_grad(function()
    V = V:to("f64")
    local cols = gene_columns(fname, ad, V, o)
    if #cols < V:size(2) then V = V:index(2, T.tensor(cols, { dtype = "i64" })) end
    local U = unit_rows(V:contiguous())

    local d = ad.obsp[o.neighbors_key]
    if d == nil then
      error(fname .. ": obsp." .. o.neighbors_key .. " is missing; run pp.neighbors first", 3)
    end
    if not T.is_sparse(d) then error(fname .. ": obsp." .. o.neighbors_key .. " must be sparse", 3) end
    local sh = d:shape()
    if sh[1] ~= n or sh[2] ~= n then
      error(string.format("%s: obsp.%s must be {%d,%d}, got {%d,%d}", fname, o.neighbors_key,
        n, n, sh[1], sh[2]), 3)
    end
    local ip = d:indptr()
    local counts = (ip:narrow(1, 2, n) - ip:narrow(1, 1, n)):to("f64")
    local per_row = T.where(counts:gt(0), counts:reciprocal(), 0)
    local row_of = M._row_of_entries(ip, n, d:nnz())
    local vals = per_row:index(1, row_of)
    local mean_op = T.sparse_csr(ip, d:indices(), vals, { n, n })
    overall = (U * mean_op:matmul(U)):sum(2)

    if o.groupby ~= nil then
      local col = ad.obs[o.groupby]
      if col == nil then error(fname .. ": obs." .. tostring(o.groupby) .. " is missing", 3) end
      local codes, cats = group_codes(fname, col, n, o.groupby)
      local k = #cats
      -- missing group (code 0) goes to an extra row k + 1, whose score is then NaN
      local slot = T.where(codes:gt(0), codes, k + 1)
      local sums = T.zeros({ k + 1, U:size(2) }, { dtype = "f64" })
      sums:index_add_(1, slot, U)
      local cnt = T.zeros({ k + 1 }, { dtype = "f64" })
      cnt:index_add_(1, slot, T.ones({ n }, { dtype = "f64" }))
      local means = sums / cnt:clamp(1, nil):unsqueeze(2)
      celltype = (U * means:index(1, slot)):sum(2)
      celltype = T.where(codes:gt(0), celltype, 0 / 0)
    end
  end)
  ad.obs[o.key_added .. "_overall"] = overall
  if celltype then ad.obs[o.key_added .. "_celltype"] = celltype end
  return overall, celltype
end

-- The 1-based row number of each stored entry of a CSR matrix with indptr ip (i64 tensor).
function M._row_of_entries(ip, n, nnz)
  local rows = {}
  local p = ip:totable()
  for i = 1, n do
    for _ = p[i] + 1, p[i + 1] do rows[#rows + 1] = i end
  end
  return T.tensor(rows, { dtype = "i64" })
end

-- ---------- Mann-Whitney U ----------

-- erfc(x) for x >= 0 in double precision: the Taylor series of erf below 0.8 (where erfc
-- > 0.25, so 1 - erf loses nothing), the continued fraction of erfc (300 terms) above;
-- relative error ~1e-16 against scipy.special.erfc; underflows to 0 only beyond x ~ 26.
local function erfc(x)
  if x < 0.8 then
    -- erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (1 3 5 ... (2n+1))
    local term, sum, k = x, x, 0
    while term > 1e-17 * sum do
      k = k + 1
      term = term * 2 * x * x / (2 * k + 1)
      sum = sum + term
    end
    return 1 - 2 / math.sqrt(math.pi) * math.exp(-x * x) * sum
  end
  -- erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
  local f = x
  for k = 300, 1, -1 do f = x + (k / 2) / f end
  return math.exp(-x * x) / math.sqrt(math.pi) / f
end
M._erfc = erfc

-- The upper tail P(Z >= z) of the standard normal distribution.
local function normal_sf(z)
  if z ~= z then return z end
  if z >= 0 then return 0.5 * erfc(z / math.sqrt(2)) end
  return 1 - 0.5 * erfc(-z / math.sqrt(2))
end
M._normal_sf = normal_sf

local function values_of(fname, x, what)
  local v
  if T.is_tensor(x) then
    if x:dim() ~= 1 then error(string.format("%s: %s must be 1-d, got %d dims", fname, what, x:dim()), 3) end
    v = x:to("f64"):totable()
  elseif type(x) == "table" then
    v = {}
    for i, e in ipairs(x) do
      if type(e) ~= "number" then
        error(string.format("%s: %s[%d] is %s, a number expected", fname, what, i, type(e)), 3)
      end
      v[i] = e
    end
  else
    error(string.format("%s: %s must be a 1-d tensor or a list of numbers, got %s", fname, what,
      type(x)), 3)
  end
  if #v == 0 then error(fname .. ": " .. what .. " is empty", 3) end
  for i = 1, #v do
    if v[i] ~= v[i] then error(string.format("%s: %s[%d] is NaN", fname, what, i), 3) end
  end
  return v
end

-- P(U >= k) for U of the exact null distribution with sample sizes n1, n2: the counts are the
-- coefficients of the Gaussian binomial [n1 + n2 choose m]_q, m = min(n1, n2), built as
-- prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i) with n = max(n1, n2).
local function exact_sf(k, n1, n2)
  local m, n = math.min(n1, n2), math.max(n1, n2)
  local deg = m * n
  local c = { [0] = 1 }
  for u = 1, deg do c[u] = 0 end
  for i = 1, m do
    -- multiply by (1 - q^(n+i)), then divide by (1 - q^i) (a running sum with stride i)
    for u = deg, n + i, -1 do c[u] = c[u] - c[u - n - i] end
    for u = i, deg do c[u] = c[u] + c[u - i] end
  end
  local total, tail = 0, 0
  for u = 0, deg do
    total = total + c[u]
    if u >= k then tail = tail + c[u] end
  end
  return tail / total
end

-- mann_whitney_u(a, b [, {alternative="two-sided", use_continuity=true, method="auto"}]) as
-- scipy.stats.mannwhitneyu: U is a's statistic (sum of a's average ranks - n1 (n1 + 1) / 2).
-- "auto" takes the exact null distribution when min(n1, n2) <= 8 and there are no ties, else
-- the normal approximation with the tie correction and (use_continuity) the 0.5 continuity
-- correction. Returns U, p and the AUC U / (n1 n2) (the probability that a value of a
-- exceeds one of b, ties counting half). alternative: "two-sided", "greater" (a larger) or
-- "less".
function M.mann_whitney_u(a, b, opts)
  local fname = "mann_whitney_u"
  local o = options.check(fname, opts, { alternative = "two-sided", use_continuity = true,
    method = "auto" })
  local x = values_of(fname, a, "a")
  local y = values_of(fname, b, "b")
  local n1, n2 = #x, #y
  local alt = o.alternative
  if alt ~= "two-sided" and alt ~= "greater" and alt ~= "less" then
    error(fname .. ": alternative must be 'two-sided', 'greater' or 'less', got " .. tostring(alt), 2)
  end
  local all = {}
  for i = 1, n1 do all[i] = { x[i], 1 } end
  for i = 1, n2 do all[n1 + i] = { y[i], 2 } end
  table.sort(all, function(p, q) return p[1] < q[1] end)
  local n = n1 + n2
  local r1, tie_term, ties = 0, 0, false
  local i = 1
  while i <= n do
    local j = i
    while j < n and all[j + 1][1] == all[i][1] do j = j + 1 end
    local t = j - i + 1
    local rank = (i + j) / 2
    if t > 1 then ties = true; tie_term = tie_term + (t * t * t - t) end
    for k = i, j do if all[k][2] == 1 then r1 = r1 + rank end end
    i = j + 1
  end
  local u1 = r1 - n1 * (n1 + 1) / 2
  local u2 = n1 * n2 - u1
  local u, f
  if alt == "greater" then u, f = u1, 1
  elseif alt == "less" then u, f = u2, 1
  else u, f = math.max(u1, u2), 2 end
  local method = o.method
  if method == "auto" then
    method = (n1 > 8 and n2 > 8 or ties) and "asymptotic" or "exact"
  end
  local p
  if method == "exact" then
    p = exact_sf(math.floor(u), n1, n2)
  elseif method == "asymptotic" then
    local mu = n1 * n2 / 2
    local s = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
    local num = u - mu
    if o.use_continuity then num = num - 0.5 end
    p = normal_sf(num / s)
  else
    error(fname .. ": method must be 'auto', 'exact' or 'asymptotic', got " .. tostring(method), 2)
  end
  p = math.min(1, math.max(0, p * f))
  return u1, p, u1 / (n1 * n2)
end

return M
