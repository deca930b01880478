-- Shared helpers of velua.pp: f32 arithmetic on Lua numbers, matrix access on AnnData fields
-- (dense tensors or SparseCSR), and in-place gene subsetting.
local core = require "velua.core"
local T = require "velua.tensor"

local M = {}

local function csr_parts_of(s)
  local sh = s:shape()
  return s:indptr(), s:indices(), s:values(), sh[1], sh[2]
end

-- Rounds a Lua number to the nearest f32 value (an op on two f32 values computed in double
-- and rounded once gives the f32 result of that op: NumPy's float32 arithmetic).
local pack, unpack = string.pack, string.unpack
function M.f32(x) return (unpack("<f", pack("<f", x))) end

-- Layer `name` of ad ("X" for ad.X), or nil.
function M.layer(ad, name)
  if name == "X" then return ad.X end
  return ad.layers and ad.layers[name]
end

function M.set_layer(ad, name, m)
  if name == "X" then ad.X = m else ad.layers[name] = m end
end

-- Row sums [n] in the matrix's dtype; for CSR in scipy's order (first value plus NumPy's
-- pairwise sum of the rest), so that f32 sums match scVelo's.
function M.row_sums(m)
  if T.is_sparse(m) then return core.csr_row_sums(csr_parts_of(m)) end
  return m:sum(2)
end

-- Column sums [g]; for CSR the sum runs over the rows in order (scipy's csc_matvec order).
function M.col_sums(m)
  if T.is_sparse(m) then
    local s = core.csr_col_stats(csr_parts_of(m))
    return s:to(m:dtype())
  end
  return m:sum(1)
end

-- A CSR matrix with the structure of s and new values.
function M.with_values(s, values)
  local sh = s:shape()
  return T.sparse_csr(s:indptr(), s:indices(), values, sh)
end

-- Dense f32/f64 copy of a matrix.
function M.dense(m)
  if T.is_sparse(m) then return m:to_dense() end
  return m
end

-- int counts become f32, as scVelo's check_if_valid_dtype.
function M.float_matrix(m)
  if T.is_sparse(m) then return m end
  local dt = m:dtype()
  if dt ~= "f32" and dt ~= "f64" then return m:to("f32") end
  return m
end

M.csr_parts = csr_parts_of

-- Columns `keep` (Lua array of 1-based indices, in their new order) of a matrix. With
-- `row_scale` (a CSR matrix only: one factor per row in the values' dtype) the kept values
-- come out multiplied by their row's factor, as a separate scaling pass would give them.
function M.select_columns(m, keep, row_scale)
  if T.is_sparse(m) then
    local sh = m:shape()
    local kt = T.tensor(keep, { dtype = "i64" })
    local ip, ix, v = core.csr_select_columns(m:indptr(), m:indices(), m:values(), sh[1], sh[2], kt,
      row_scale)
    return T.sparse_csr(ip, ix, v, { sh[1], #keep })
  end
  assert(row_scale == nil, "select_columns: row_scale is for CSR matrices")
  return m:index(2, keep)
end

-- The first `rows` rows of a matrix (a CSR matrix sharing m's arrays, or a view).
function M.first_rows(m, rows)
  local sh = m:shape()
  rows = math.min(rows, sh[1])
  if T.is_sparse(m) then
    local ip = m:indptr():narrow(1, 1, rows + 1)
    local hi = ip:get(rows + 1)
    return T.sparse_csr(ip, m:indices():narrow(1, 1, hi), m:values():narrow(1, 1, hi), { rows, sh[2] })
  end
  return m:narrow(1, 1, rows)
end

-- Entries `keep` (an i64 tensor) of a column (tensor, categorical, nullable or array of
-- strings).
local function select_entries(col, keep)
  if T.is_tensor(col) then return col:index(1, keep) end
  if type(col) == "table" and col.codes ~= nil then
    return { codes = col.codes:index(1, keep), categories = col.categories, ordered = col.ordered }
  end
  if type(col) == "table" and T.is_tensor(col.values) and T.is_tensor(col.mask) then
    return { values = col.values:index(1, keep), mask = col.mask:index(1, keep) }
  end
  if type(col) == "table" then
    local out = {}
    for i, k in ipairs(keep:totable()) do out[i] = col[k] end
    return out
  end
  return col
end
M.select_entries = select_entries

-- Indices 1..n where mask (Lua array of booleans) is true.
function M.which(mask)
  local out = {}
  for i = 1, #mask do if mask[i] then out[#out + 1] = i end end
  return out
end

-- Keeps the genes `keep` (1-based, ascending) of ad, in place: X, layers, var, var_names,
-- varm, varp and n_vars. A velua.AnnData does it with ad:_inplace_subset_var (anndata's
-- semantics: unused categories dropped, ...); a plain table is changed here. Returns ad.
function M.subset_vars(ad, keep)
  if #keep == ad.n_vars then return ad end
  if type(ad._inplace_subset_var) == "function" then
    return ad:_inplace_subset_var(keep)
  end
  local keep_t = T.tensor(keep, { dtype = "i64" })
  if ad.X ~= nil then ad.X = M.select_columns(ad.X, keep) end
  for name, m in pairs(ad.layers or {}) do ad.layers[name] = M.select_columns(m, keep) end
  for name, col in pairs(ad.var or {}) do ad.var[name] = select_entries(col, keep_t) end
  if ad.var_names then ad.var_names = select_entries(ad.var_names, keep_t) end
  for name, m in pairs(ad.varm or {}) do ad.varm[name] = m:index(1, keep_t) end
  for name, m in pairs(ad.varp or {}) do
    if T.is_sparse(m) then
      m = M.select_columns(m, keep):transpose()
      ad.varp[name] = M.select_columns(m, keep):transpose()
    else
      ad.varp[name] = m:index(1, keep_t):index(2, keep_t)
    end
  end
  ad.n_vars = #keep
  return ad
end

-- True when the first five rows hold integers only (within 1e-3), as scVelo's
-- not_yet_normalized.
function M.not_yet_normalized(m)
  local v
  if T.is_sparse(m) then
    local ip = m:indptr()
    local rows = math.min(5, m:shape()[1])
    local hi = ip:get(rows + 1)
    if hi == 0 then return true end
    v = m:values():narrow(1, 1, hi)
  else
    local rows = math.min(5, m:shape()[1])
    if rows == 0 then return true end
    v = m:narrow(1, 1, rows)
  end
  v = v:to("f64")
  local frac = v - v:floor()        -- x % 1 (Python's modulo, non-negative)
  -- np.allclose(frac, 0, atol=1e-3): |frac| <= 1e-3
  local bad = frac:gt(1e-3):any():item()
  return not bad
end

-- The sum of all entries in rows 1..rows (f64).
function M.sum_rows(m, rows)
  if T.is_sparse(m) then
    local r = math.min(rows, m:shape()[1])
    local hi = m:indptr():get(r + 1)
    if hi == 0 then return 0 end
    return m:values():narrow(1, 1, hi):to("f64"):sum():item()
  end
  local r = math.min(rows, m:shape()[1])
  if r == 0 then return 0 end
  return m:narrow(1, 1, r):to("f64"):sum():item()
end

-- Creates the missing container tables of a plain-table AnnData.
function M.ensure(ad)
  for _, f in ipairs { "layers", "obs", "var", "obsm", "varm", "obsp", "varp", "uns" } do
    if ad[f] == nil then ad[f] = {} end
  end
  return ad
end

-- Checks that ad looks like an AnnData (n_obs, n_vars).
function M.check_adata(fname, ad)
  local ok = type(ad) == "table" and math.type(ad.n_obs) == "integer" and math.type(ad.n_vars) == "integer"
  if not ok then
    error(fname .. ": an AnnData expected (a table with n_obs and n_vars)", 3)
  end
  return M.ensure(ad)
end

return M
