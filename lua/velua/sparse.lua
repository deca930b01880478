-- velua.sparse: compressed sparse row (CSR) matrices over three component tensors, 0-based as
-- stored in files (indptr, indices: i64; values: f32 or f64). Kernels: csrc/core/sparse_csr.c.
local M = {}

function M.install(T, core)
  local SparseCSR = { __name = "SparseCSR" }
  local methods = {}
  SparseCSR.__index = methods
  -- the components live here, out of the user's reach, keyed by the matrix object
  local state = setmetatable({}, { __mode = "k" })

  -- Calls a core function; an error is re-raised as "fname: message" at the caller of the
  -- public function (callers must not tail-call this, or the level points one frame too far).
  local function call(fname, f, ...)
    local r = table.pack(pcall(f, ...))
    if not r[1] then
      -- matmul is wrapped by autograd, so a position would point into the wrapper: none then
      error(fname .. ": " .. tostring(r[2]):gsub("^csr_[%w_]+: ", ""), fname == "matmul" and 0 or 3)
    end
    return table.unpack(r, 2, r.n)
  end

  local function new(indptr, indices, values, nrows, ncols)
    local s = setmetatable({}, SparseCSR)
    state[s] = { indptr = indptr, indices = indices, values = values, nrows = nrows, ncols = ncols }
    return s
  end

  local function get(s, fname)
    local st = state[s]
    if not st then error(fname .. ": SparseCSR expected, got " .. type(s), 3) end
    return st
  end

  local function component(x, name, dtype)
    if type(x) == "table" and not core.is_tensor(x) then
      local ok, t = pcall(core.from_table, x, { dtype = dtype })
      if not ok then error("sparse_csr: " .. name .. ": " .. tostring(t), 3) end
      return t
    end
    if not core.is_tensor(x) then
      error("sparse_csr: " .. name .. " must be a tensor or a table, got " .. type(x), 3)
    end
    return core.contiguous(x)
  end

  local function size(v)
    local n = math.tointeger(v)
    return n and n >= 0 and n or nil
  end

  -- sparse_csr(indptr, indices, values, {nrows, ncols}): tables become i64 (indptr, indices)
  -- and f32 (values) tensors; tensors are shared, not copied. Validated here and on every use.
  function T.sparse_csr(indptr, indices, values, shape)
    local nrows, ncols = type(shape) == "table" and size(shape[1]), type(shape) == "table" and size(shape[2])
    if not (nrows and ncols and #shape == 2) then
      error("sparse_csr: shape must be a table {nrows, ncols} of non-negative integers, got "
        .. (type(shape) == "table" and "{" .. table.concat(shape, ",") .. "}" or type(shape)), 2)
    end
    local p = component(indptr, "indptr", "i64")
    local i = component(indices, "indices", "i64")
    local v = component(values, "values", "f32")
    call("sparse_csr", core.csr_validate, p, i, v, nrows, ncols)
    return new(p, i, v, nrows, ncols)
  end

  -- The nonzeros of a 2-d tensor (exact zeros dropped); integer and bool tensors become f32.
  function T.sparse_from_dense(t)
    if not core.is_tensor(t) or core.dim(t) ~= 2 then
      error("sparse_from_dense: a 2-d tensor expected", 2)
    end
    local dt = core.dtype(t)
    if dt ~= "f32" and dt ~= "f64" then t = core.to(t, "f32") end
    local p, i, v = call("sparse_from_dense", core.csr_from_dense, t)
    local shape = core.shape(t)
    return new(p, i, v, shape[1], shape[2])
  end

  function T.is_sparse(x) return getmetatable(x) == SparseCSR end

  function methods.shape(s)
    local st = get(s, "shape")
    return { st.nrows, st.ncols }
  end
  function methods.nnz(s) return core.numel(get(s, "nnz").values) end
  function methods.dtype(s) return core.dtype(get(s, "dtype").values) end
  function methods.indptr(s) return get(s, "indptr").indptr end
  function methods.indices(s) return get(s, "indices").indices end
  function methods.values(s) return get(s, "values").values end

  -- s @ dense: dense [ncols, k] gives [nrows, k]; dense [ncols] gives [nrows].
  function methods.matmul(s, dense)
    local st = get(s, "matmul")
    if not core.is_tensor(dense) then
      error("matmul: dense must be a tensor, got " .. type(dense), 0)
    end
    local out = call("matmul", core.csr_spmm, st.indptr, st.indices, st.values, st.nrows,
      st.ncols, dense)
    return out
  end

  function methods.to_dense(s)
    local st = get(s, "to_dense")
    local out = call("to_dense", core.csr_to_dense, st.indptr, st.indices, st.values, st.nrows,
      st.ncols)
    return out
  end

  function methods.transpose(s)
    local st = get(s, "transpose")
    local p, i, v = call("transpose", core.csr_transpose, st.indptr, st.indices, st.values,
      st.nrows, st.ncols)
    return new(p, i, v, st.ncols, st.nrows)
  end
  methods.t = methods.transpose

  -- Row i (1-based): its 1-based column indices (i64) and values, as new tensors.
  function methods.row(s, i)
    local st = get(s, "row")
    local r = math.tointeger(i)
    if not r or r < 1 or r > st.nrows then
      error(string.format("row: index %s out of range 1..%d", tostring(i), st.nrows), 2)
    end
    call("row", core.csr_validate, st.indptr, st.indices, st.values, st.nrows, st.ncols)
    local lo, hi = core.get(st.indptr, r), core.get(st.indptr, r + 1)
    local cols = core.add(core.narrow(st.indices, 1, lo + 1, hi - lo), 1)
    return cols, core.clone(core.narrow(st.values, 1, lo + 1, hi - lo))
  end

  -- A copy with values of dtype "f32" or "f64" (index arrays shared).
  function methods.to(s, dtype)
    local st = get(s, "to")
    if dtype ~= "f32" and dtype ~= "f64" then
      error("to: dtype must be \"f32\" or \"f64\", got " .. tostring(dtype), 2)
    end
    return new(st.indptr, st.indices, core.to(st.values, dtype), st.nrows, st.ncols)
  end

  -- sum(): 0-d tensor of all values; sum(1): column sums [ncols]; sum(2): row sums [nrows]
  -- (negative dims count from the end); keepdim keeps the reduced dim with size 1.
  function methods.sum(s, dim, keepdim)
    local st = get(s, "sum")
    if dim == nil then return core.sum(st.values) end
    local d = math.tointeger(dim)
    if d and d < 0 then d = d + 3 end
    if d ~= 1 and d ~= 2 then
      error("sum: dim " .. tostring(dim) .. " out of range (expected 1, 2, -1 or -2)", 2)
    end
    local dt = core.dtype(st.values)
    local r
    if d == 2 then
      r = s:matmul(core.full({ st.ncols }, 1, { dtype = dt }))
    else
      r = s:transpose():matmul(core.full({ st.nrows }, 1, { dtype = dt }))
    end
    if keepdim then
      r = core.reshape(r, d == 2 and { st.nrows, 1 } or { 1, st.ncols })
    end
    return r
  end

  SparseCSR.__tostring = function(s)
    local st = get(s, "tostring")
    return string.format("SparseCSR(shape={%d,%d}, nnz=%d, dtype=%s)", st.nrows, st.ncols,
      core.numel(st.values), core.dtype(st.values))
  end

  T.SparseCSR = SparseCSR
  return T
end

return M
