-- Sparse CSR matrices (lua/velua/sparse.lua over csrc/core/sparse_csr.c) against a naive Lua
-- reference on seeded random matrices: products, transpose, to_dense, rows, validation.
local core = require "velua.core"
local h = require "support.helpers"

-- The public tensor table if velua.tensor loads, else the sparse module on a bare table.
local T, from_velua
do
  local ok, vt = pcall(function() return require("velua").tensor end)
  if ok and type(vt) == "table" then
    T, from_velua = vt, true
  else
    T = {}
    require("velua.sparse").install(T, core)
  end
end

local TOL = { f32 = { 1e-4, 1e-5 }, f64 = { 1e-12, 1e-13 } }

-- A random CSR matrix as Lua tables (0-based indptr/indices) and its dense table.
-- opts: density, empty_rows (fraction of rows forced empty), unsorted, dups (repeat entries).
local function random_csr(nrows, ncols, opts)
  opts = opts or {}
  local density = opts.density or 0.3
  local indptr, indices, values = { 0 }, {}, {}
  local dense = {}
  for i = 1, nrows do
    dense[i] = {}
    for j = 1, ncols do dense[i][j] = 0 end
    local cols = {}
    if math.random() >= (opts.empty_rows or 0) then
      for j = 0, ncols - 1 do
        if math.random() < density then cols[#cols + 1] = j end
      end
      if opts.dups and #cols > 0 then
        for _ = 1, 2 do cols[#cols + 1] = cols[math.random(#cols)] end
      end
      if opts.unsorted then
        for a = #cols, 2, -1 do
          local b = math.random(a)
          cols[a], cols[b] = cols[b], cols[a]
        end
      end
    end
    for _, j in ipairs(cols) do
      local v = math.random(-8, 8) / 4 + math.random() -- nonzero enough, not an exact zero
      if v == 0 then v = 0.5 end
      indices[#indices + 1] = j
      values[#values + 1] = v
      dense[i][j + 1] = dense[i][j + 1] + v
    end
    indptr[#indptr + 1] = #indices
  end
  return indptr, indices, values, dense
end

local function make(nrows, ncols, dtype, opts)
  local p, i, v, dense = random_csr(nrows, ncols, opts)
  local s = T.sparse_csr(p, i, core.from_table(v, { dtype = dtype }), { nrows, ncols })
  -- the reference uses values as stored (rounded to f32 for f32)
  local vs = core.totable(s:values())
  local ref = {}
  for r = 1, nrows do
    ref[r] = {}
    for c = 1, ncols do ref[r][c] = 0 end
    for q = p[r] + 1, p[r + 1] do ref[r][i[q] + 1] = ref[r][i[q] + 1] + vs[q] end
  end
  return s, ref, { p, i, vs }
end

local function random_dense(rows, cols)
  local d = {}
  for r = 1, rows do
    d[r] = {}
    for c = 1, cols do d[r][c] = math.random() * 2 - 1 end
  end
  return d
end

local function ref_matmul(a, nrows, ncols, b, k)
  local out = {}
  for r = 1, nrows do
    out[r] = {}
    for c = 1, k do
      local acc = 0
      for j = 1, ncols do acc = acc + a[r][j] * b[j][c] end
      out[r][c] = acc
    end
  end
  return out
end

local function ref_transpose(a, rows, cols)
  local t = {}
  for c = 1, cols do
    t[c] = {}
    for r = 1, rows do t[c][r] = a[r][c] end
  end
  return t
end

local function dense_table(t, rows, cols)
  -- totable of a {0, n} or {n, 0} tensor gives nested empties; normalise for comparison
  local x = core.totable(t)
  if rows == 0 then return {} end
  if cols == 0 then
    local e = {}
    for r = 1, rows do e[r] = {} end
    return e
  end
  return x
end

local function assert_close(got, want, dtype, what)
  local ok, msg = h.approx_equal(got, want, TOL[dtype][1], TOL[dtype][2])
  assert(ok, (what or "") .. ": " .. tostring(msg))
end

-- shapes: ordinary, tall, wide, single row/col, 0 rows, 0 cols, all-empty
local SHAPES = {
  { 7, 5, {} }, { 12, 3, { empty_rows = 0.4 } }, { 3, 11, { density = 0.6 } },
  { 1, 6, {} }, { 6, 1, {} }, { 0, 4, {} }, { 4, 0, {} }, { 0, 0, {} },
  { 5, 6, { density = 0 } }, { 9, 8, { unsorted = true, dups = true } },
}

describe("sparse CSR", function()
  before_each(function() math.randomseed(20240611) end)

  it("is installed in velua.tensor when that module loads", function()
    if not from_velua then
      pending("velua.tensor does not load yet; tested on a bare table")
      return
    end
    assert.is_function(T.sparse_csr)
    assert.is_function(T.sparse_from_dense)
    assert.is_function(T.is_sparse)
  end)

  it("builds from tables or tensors and reports shape, nnz, dtype and tostring", function()
    local s = T.sparse_csr({ 0, 2, 2, 3 }, { 0, 3, 1 }, { 1, 2, 3 }, { 3, 4 })
    assert.same({ 3, 4 }, s:shape())
    assert.equal(3, s:nnz())
    assert.equal("f32", s:dtype())
    assert.equal("SparseCSR(shape={3,4}, nnz=3, dtype=f32)", tostring(s))
    assert.is_true(T.is_sparse(s))
    assert.is_false(T.is_sparse(core.from_table({ 1 })))
    assert.is_false(T.is_sparse({}))
    local s2 = T.sparse_csr(core.from_table({ 0, 1 }, { dtype = "i64" }),
      core.from_table({ 2 }, { dtype = "i64" }), core.from_table({ 5 }, { dtype = "f64" }), { 1, 3 })
    assert.equal("f64", s2:dtype())
    assert.same({ { 0, 0, 5 } }, core.totable(s2:to_dense()))
    assert.same({ 0, 2, 2, 3 }, core.totable(s:indptr()))
    assert.same({ 0, 3, 1 }, core.totable(s:indices()))
    assert.equal("i64", core.dtype(s:indices()))
    -- fields are not reachable as table keys
    assert.is_nil(rawget(s, "values"))
  end)

  it("accepts non-contiguous component tensors", function()
    local base = core.from_table({ { 0, 9 }, { 1, 9 }, { 3, 9 } }, { dtype = "i64" })
    local indptr = core.select(base, 2, 1) -- stride 2
    local s = T.sparse_csr(indptr, { 1, 0, 2 }, { 1, 2, 3 }, { 2, 3 })
    assert.same({ { 0, 1, 0 }, { 2, 0, 3 } }, core.totable(s:to_dense()))
  end)

  for _, dtype in ipairs { "f32", "f64" } do
    it("to_dense matches the reference on many shapes (" .. dtype .. ")", function()
      for _, sh in ipairs(SHAPES) do
        local s, ref = make(sh[1], sh[2], dtype, sh[3])
        local d = s:to_dense()
        assert.same({ sh[1], sh[2] }, core.shape(d))
        assert.equal(dtype, core.dtype(d))
        assert_close(dense_table(d, sh[1], sh[2]), ref, dtype, "shape " .. sh[1] .. "x" .. sh[2])
      end
    end)

    it("matmul with 2-d and 1-d dense matches the reference (" .. dtype .. ")", function()
      for _, sh in ipairs(SHAPES) do
        for _, k in ipairs { 1, 3, 17 } do
          local s, ref = make(sh[1], sh[2], dtype, sh[3])
          local b = random_dense(sh[2], k)
          local bt = sh[2] == 0 and core.empty({ 0, k }, { dtype = dtype })
            or core.from_table(b, { dtype = dtype })
          b = core.totable(bt) -- values as stored
          local out = s:matmul(bt)
          assert.same({ sh[1], k }, core.shape(out))
          assert.equal(dtype, core.dtype(out))
          local want = ref_matmul(ref, sh[1], sh[2], b, k)
          assert_close(dense_table(out, sh[1], k), want, dtype,
            string.format("%dx%d @ k=%d", sh[1], sh[2], k))
        end
        -- sparse x vector
        local s, ref = make(sh[1], sh[2], dtype, sh[3])
        local vt = core.reshape(core.from_table(random_dense(1, sh[2] + 1)[1], { dtype = dtype }), { sh[2] + 1 })
        vt = core.narrow(vt, 1, 1, sh[2])
        local v = core.totable(vt)
        local out = s:matmul(vt)
        assert.same({ sh[1] }, core.shape(out))
        local col = {}
        for j = 1, sh[2] do col[j] = { v[j] } end
        local want = ref_matmul(ref, sh[1], sh[2], col, 1)
        local got = core.totable(out)
        for r = 1, sh[1] do
          assert_close(got[r], want[r][1], dtype, "matvec row " .. r)
        end
      end
    end)

    it("matmul takes non-contiguous dense operands (" .. dtype .. ")", function()
      -- density 0.7 (nnz >= ncols: the binding copies a transposed operand) and 0.05 (strided)
      for _, density in ipairs { 0.7, 0.05 } do
        local nrows, ncols, k = 9, 13, 6
        local s, ref = make(nrows, ncols, dtype, { density = density })
        local base = core.from_table(random_dense(k, ncols), { dtype = dtype })
        local bt = core.transpose(base, 1, 2) -- [ncols, k], strides {1, ncols}
        assert.is_false(core.is_contiguous(bt))
        local want = ref_matmul(ref, nrows, ncols, core.totable(bt), k)
        assert_close(core.totable(s:matmul(bt)), want, dtype, "transposed, density " .. density)
        -- row stride larger than k (a narrow of a wider matrix)
        local wide = core.from_table(random_dense(ncols, k + 4), { dtype = dtype })
        local bn = core.narrow(wide, 2, 3, k)
        want = ref_matmul(ref, nrows, ncols, core.totable(bn), k)
        assert_close(core.totable(s:matmul(bn)), want, dtype, "narrowed")
        -- 1-d with stride: a column of the base
        local colv = core.select(bt, 2, 2)
        local c = core.totable(colv)
        local col = {}
        for j = 1, ncols do col[j] = { c[j] } end
        want = ref_matmul(ref, nrows, ncols, col, 1)
        local got = core.totable(s:matmul(colv))
        for r = 1, nrows do assert_close(got[r], want[r][1], dtype, "strided vector") end
      end
    end)

    it("transpose matches the reference, sorts indices, and twice gives back the matrix (" .. dtype .. ")", function()
      for _, sh in ipairs(SHAPES) do
        local s, ref, comp = make(sh[1], sh[2], dtype, sh[3])
        local t = s:transpose()
        assert.same({ sh[2], sh[1] }, t:shape())
        assert.equal(s:nnz(), t:nnz())
        assert.equal(dtype, t:dtype())
        assert_close(dense_table(t:to_dense(), sh[2], sh[1]), ref_transpose(ref, sh[1], sh[2]), dtype)
        local tp, ti = core.totable(t:indptr()), core.totable(t:indices())
        for r = 1, sh[2] do
          for q = tp[r] + 2, tp[r + 1] do assert(ti[q - 1] <= ti[q], "unsorted row " .. r) end
        end
        local tt = t:transpose()
        assert.same({ sh[1], sh[2] }, tt:shape())
        if not sh[3].unsorted then
          -- sorted input: the components come back exactly
          assert.same(comp[1], core.totable(tt:indptr()))
          assert.same(comp[2], core.totable(tt:indices()))
          assert.same(comp[3], core.totable(tt:values()))
        end
        assert.same(core.totable(s:to_dense()), core.totable(tt:to_dense()))
      end
    end)
  end

  it("sums duplicate entries in to_dense and matmul", function()
    local s = T.sparse_csr({ 0, 3 }, { 1, 1, 0 }, { 1, 2, 4 }, { 1, 2 })
    assert.same({ { 4, 3 } }, core.totable(s:to_dense()))
    assert.same({ { 10 } }, core.totable(s:matmul(core.from_table({ { 1 }, { 2 } }))))
  end)

  it("gives rows as 1-based column indices and values", function()
    local s = T.sparse_csr({ 0, 2, 2, 3 }, { 0, 3, 1 }, { 1, 2, 3 }, { 3, 4 })
    local c, v = s:row(1)
    assert.equal("i64", core.dtype(c))
    assert.same({ 1, 4 }, core.totable(c))
    assert.same({ 1, 2 }, core.totable(v))
    c, v = s:row(2)
    assert.same({ 0 }, core.shape(c))
    assert.same({ 0 }, core.shape(v))
    c, v = s:row(3)
    assert.same({ 2 }, core.totable(c))
    assert.same({ 3 }, core.totable(v))
    -- the row is a copy: changing it leaves the matrix alone
    core.set(v, 1, 99)
    assert.same({ 0, 3, 0, 0 }, core.totable(s:to_dense())[3])
    assert.has_error(function() s:row(0) end, "row: index 0 out of range 1..3")
    assert.has_error(function() s:row(4) end, "row: index 4 out of range 1..3")
    -- a trailing empty row sits at nnz
    local e = T.sparse_csr({ 0, 1, 1 }, { 0 }, { 5 }, { 2, 2 })
    c = e:row(2)
    assert.equal(0, core.numel(c))
  end)

  it("random rows agree with the reference", function()
    local s, ref = make(15, 10, "f64", { empty_rows = 0.3 })
    for r = 1, 15 do
      local c, v = s:row(r)
      local row = {}
      for j = 1, 10 do row[j] = 0 end
      local ct, vt = core.totable(c), core.totable(v)
      for q = 1, #ct do row[ct[q]] = row[ct[q]] + vt[q] end
      assert_close(row, ref[r], "f64", "row " .. r)
    end
  end)

  it("converts dtype, sums along dims and round-trips through dense", function()
    local s, ref = make(6, 4, "f32", { empty_rows = 0.3 })
    local s64 = s:to("f64")
    assert.equal("f64", s64:dtype())
    assert.equal("f32", s:dtype())
    assert_close(core.totable(s64:to_dense()), ref, "f64")
    assert.has_error(function() s:to("i64") end, 'to: dtype must be "f32" or "f64", got i64')
    local rows, cols, total = {}, { 0, 0, 0, 0 }, 0
    for r = 1, 6 do
      rows[r] = 0
      for c = 1, 4 do
        rows[r] = rows[r] + ref[r][c]
        cols[c] = cols[c] + ref[r][c]
        total = total + ref[r][c]
      end
    end
    assert_close(core.totable(s64:sum(2)), rows, "f64")
    assert_close(core.totable(s64:sum(-1)), rows, "f64")
    assert_close(core.totable(s64:sum(1)), cols, "f64")
    assert.same({ 1, 4 }, core.shape(s64:sum(1, true)))
    assert.same({ 6, 1 }, core.shape(s64:sum(2, true)))
    assert_close(core.item(s64:sum()), total, "f64")
    assert.has_error(function() s:sum(3) end, "sum: dim 3 out of range (expected 1, 2, -1 or -2)")
    local back = T.sparse_from_dense(s:to_dense())
    assert.same(core.totable(s:to_dense()), core.totable(back:to_dense()))
    local z = T.sparse_from_dense(core.from_table({ { 0, 2 }, { 0, 0 }, { -1, 0 } }, { dtype = "i64" }))
    assert.equal("f32", z:dtype())
    assert.same({ 0, 1, 1, 2 }, core.totable(z:indptr()))
    assert.same({ 1, 0 }, core.totable(z:indices()))
    assert.same({ 2, -1 }, core.totable(z:values()))
    -- from a transposed (strided) dense
    local zt = T.sparse_from_dense(core.transpose(core.from_table({ { 0, 2 }, { 3, 0 } }), 1, 2))
    assert.same({ { 0, 3 }, { 2, 0 } }, core.totable(zt:to_dense()))
  end)

  describe("validation", function()
    local function err_of(f)
      local ok, e = pcall(f)
      assert.is_false(ok, "expected an error")
      return tostring(e)
    end
    local function csr(p, i, v, shape)
      return function() return T.sparse_csr(p, i, v, shape) end
    end

    it("names the first bad position of indptr", function()
      assert.matches("indptr%[0%] = 1, expected 0", err_of(csr({ 1, 2, 3 }, { 0, 1, 2 }, { 1, 1, 1 }, { 2, 3 })))
      assert.matches("indptr decreases at 0%-based position 2: indptr%[2%] = 1 < indptr%[1%] = 2",
        err_of(csr({ 0, 2, 1, 3 }, { 0, 1, 2 }, { 1, 1, 1 }, { 3, 3 })))
      assert.matches("indptr%[2%] = 2 %(the last entry%) must equal the number of stored entries 3",
        err_of(csr({ 0, 1, 2 }, { 0, 1, 2 }, { 1, 1, 1 }, { 2, 3 })))
      assert.matches("indptr has 3 entries, expected nrows %+ 1 = 4",
        err_of(csr({ 0, 1, 2 }, { 0, 1 }, { 1, 1 }, { 3, 3 })))
    end)

    it("names the first out-of-range index", function()
      assert.matches("indices%[2%] = 3 %(row 1%) is out of range %[0, 3%)",
        err_of(csr({ 0, 1, 3 }, { 0, 1, 3 }, { 1, 1, 1 }, { 2, 3 })))
      assert.matches("indices%[0%] = %-1 %(row 0%) is out of range %[0, 3%)",
        err_of(csr({ 0, 1, 3 }, { -1, 1, 5 }, { 1, 1, 1 }, { 2, 3 })))
      assert.matches("out of range %[0, 0%)", err_of(csr({ 0, 1 }, { 0 }, { 1 }, { 1, 0 })))
    end)

    it("checks dtypes, lengths and the shape argument", function()
      assert.matches("^sparse_csr: indptr must be i64, got f32",
        err_of(csr(core.from_table({ 0, 1 }), { 0 }, { 1 }, { 1, 1 })))
      assert.matches("indices must be i64, got f64",
        err_of(csr({ 0, 1 }, core.from_table({ 0 }, { dtype = "f64" }), { 1 }, { 1, 1 })))
      assert.matches("values must be f32 or f64, got i64",
        err_of(csr({ 0, 1 }, { 0 }, core.from_table({ 1 }, { dtype = "i64" }), { 1, 1 })))
      assert.matches("indices has 2 entries but values has 1", err_of(csr({ 0, 2 }, { 0, 0 }, { 1 }, { 1, 1 })))
      assert.matches("indptr must be 1%-d, got shape {1,2}", err_of(csr({ { 0, 1 } }, { 0 }, { 1 }, { 1, 1 })))
      assert.matches("indptr: tensor: value 0.5 is not an integer", err_of(csr({ 0.5, 1 }, { 0 }, { 1 }, { 1, 1 })))
      assert.matches("shape must be a table {nrows, ncols} of non%-negative integers, got {1,%-2}",
        err_of(csr({ 0, 1 }, { 0 }, { 1 }, { 1, -2 })))
      assert.matches("got nil", err_of(csr({ 0, 1 }, { 0 }, { 1 })))
      assert.matches("values must be a tensor or a table, got string", err_of(csr({ 0, 1 }, { 0 }, "x", { 1, 1 })))
    end)

    it("rejects mismatched matmul operands with both shapes in the message", function()
      local s = T.sparse_csr({ 0, 1, 1, 1, 2, 2 }, { 0, 6 }, { 1, 2 }, { 5, 7 })
      assert.matches("^matmul: shapes {5,7} and {6,3} do not match %(dim 2 of a vs dim 1 of b%)",
        err_of(function() return s:matmul(core.empty({ 6, 3 })) end))
      assert.matches("shapes {5,7} and {6} do not match", err_of(function() return s:matmul(core.empty({ 6 })) end))
      assert.matches("^matmul: dtype of dense %(f64%) differs from the values' %(f32%)",
        err_of(function() return s:matmul(core.empty({ 7, 2 }, { dtype = "f64" })) end))
      assert.matches("dense must be 1%-d or 2%-d, got 3%-d",
        err_of(function() return s:matmul(core.empty({ 7, 2, 1 })) end))
      assert.matches("^matmul: dense must be a tensor, got table", err_of(function() return s:matmul({ 1 }) end))
    end)

    it("raises (does not read out of bounds) when a component is changed after construction", function()
      local s = T.sparse_csr({ 0, 1, 2 }, { 0, 1 }, { 1, 2 }, { 2, 2 })
      core.set(s:indices(), 2, 1000000)
      assert.matches("indices%[1%] = 1000000", err_of(function() return s:matmul(core.empty({ 2, 1 })) end))
      assert.matches("indices%[1%]", err_of(function() return s:to_dense() end))
      assert.matches("indices%[1%]", err_of(function() return s:transpose() end))
      assert.matches("indices%[1%]", err_of(function() return s:row(1) end))
    end)

    it("core functions check their arguments", function()
      local p, i = core.from_table({ 0, 1 }, { dtype = "i64" }), core.from_table({ 0 }, { dtype = "i64" })
      local v = core.from_table({ 1 })
      assert.is_true(core.csr_validate(p, i, v, 1, 1))
      assert.matches("csr_validate: nrows must be a non%-negative integer, got %-1",
        err_of(function() return core.csr_validate(p, i, v, -1, 1) end))
      assert.matches("csr_spmm: ncols must be a non%-negative integer, got nil",
        err_of(function() return core.csr_spmm(p, i, v, 1) end))
      assert.matches("csr_to_dense: indptr must be a tensor, got table",
        err_of(function() return core.csr_to_dense({}, i, v, 1, 1) end))
      assert.matches("csr_from_dense: dense matrix must be 2%-d, got 1%-d",
        err_of(function() return core.csr_from_dense(v) end))
      assert.matches("csr_from_dense: dense matrix must be f32 or f64, got i64",
        err_of(function() return core.csr_from_dense(core.full({ 2, 2 }, 1, { dtype = "i64" })) end))
    end)
  end)

  it("gives the same bits on 1 and 2 threads for a 2000x2000 matrix at 1% density, k=64", function()
    local n, k = 2000, 64
    local indptr, indices, values = { 0 }, {}, {}
    for _ = 1, n do
      -- uneven rows (some dense-ish, many empty) to exercise the work split
      local cnt = math.random() < 0.5 and 0 or math.random(0, 80)
      local seen = {}
      for _ = 1, cnt do
        local j = math.random(0, n - 1)
        if not seen[j] then
          seen[j] = true
          indices[#indices + 1] = j
          values[#values + 1] = math.random() * 2 - 1
        end
      end
      indptr[#indptr + 1] = #indices
    end
    assert(#indices > 0.005 * n * n and #indices < 0.015 * n * n, "density " .. #indices / (n * n))
    local dense = core.from_table(random_dense(n, k))
    local old = core.get_num_threads()
    finally(function() core.set_num_threads(old) end)
    if core.set_num_threads(2) < 2 then
      pending("the thread pool has fewer than 2 threads")
      return
    end
    for _, dtype in ipairs { "f32", "f64" } do
      local s = T.sparse_csr(indptr, indices, core.from_table(values, { dtype = dtype }), { n, n })
      local b = core.to(dense, dtype)
      core.set_num_threads(1)
      local serial = core.totable(s:matmul(b))
      local serial_t = core.totable(s:transpose():matmul(b))
      core.set_num_threads(2)
      local parallel = s:matmul(b)
      local parallel_t = core.totable(s:transpose():matmul(b))
      assert.same(serial, core.totable(parallel))
      assert.same(serial_t, parallel_t)
      -- spot-check rows against the reference
      local bt, vs = core.totable(b), core.totable(s:values())
      for _, r in ipairs { 1, 2, 777, n } do
        local want = {}
        for c = 1, k do want[c] = 0 end
        for q = indptr[r] + 1, indptr[r + 1] do
          for c = 1, k do want[c] = want[c] + vs[q] * bt[indices[q] + 1][c] end
        end
        assert_close(serial[r], want, dtype, "row " .. r)
      end
    end
  end)
end)
