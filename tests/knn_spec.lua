-- The C kernels behind velua.pp: exact kNN (blocked GEMM + top-k) against brute force,
-- NN-descent recall and determinism, UMAP's fuzzy union against a plain-Lua transcription
-- of umap-learn's smooth_knn_dist / fuzzy_simplicial_set, and the exact PCA against an
-- independent Jacobi eigensolver.
local velua = require "velua"
local core = require "velua.core"
local T = velua.tensor
local pp = velua.pp

local f32 = function(x) return (string.unpack("<f", string.pack("<f", x))) end

-- Brute-force neighbours of row i: {index, squared distance} by (f32-rounded d2, index).
local function brute(xt, qrow, k, round)
  local d = {}
  for j, r in ipairs(xt) do
    local s = 0
    for c = 1, #r do
      local t = qrow[c] - r[c]
      s = s + t * t
    end
    d[j] = { j, s, round and f32(s) or s }
  end
  table.sort(d, function(a, b)
    if a[3] ~= b[3] then return a[3] < b[3] end
    return a[1] < b[1]
  end)
  local out = {}
  for t = 1, k do out[t] = d[t] end
  return out
end

-- Points around a few centres in d dimensions (a low-dimensional structure, as PCA scores).
local function clustered(n, d, seed)
  local g = T.generator(seed)
  local centres = T.randn({ 12, d }, { gen = g }) * 4
  local lab = T.randint(1, 13, { n }, { gen = g })
  return (centres:index(1, lab) + T.randn({ n, d }, { gen = g })):contiguous()
end

describe("exact kNN", function()
  it("matches brute force for f32 and f64 data, self first, exact distances", function()
    local g = T.generator(11)
    for _, dt in ipairs { "f32", "f64" } do
      local x = T.randn({ 700, 13 }, { gen = g, dtype = dt })
      -- a few exact duplicates: ties at distance 0 go to the lower index, self first
      x[5] = x[9]
      local idx, dist = core.knn_exact(x, 12)
      assert.are.same({ 700, 12 }, idx:shape())
      assert.are.equal(dt, dist:dtype())
      local xt = x:to("f64"):totable()
      for _, i in ipairs { 1, 5, 9, 350, 700 } do
        local ref = brute(xt, xt[i], 12, dt == "f32")
        assert.are.equal(i, idx:get(i, 1))
        assert.are.equal(0, dist:get(i, 1))
        for t = 2, 12 do
          assert.are.equal(ref[t][1] == i and ref[1][1] or ref[t][1], idx:get(i, t), "row " .. i .. " pos " .. t)
          local want = dt == "f32" and f32(math.sqrt(f32(ref[t][2]))) or math.sqrt(ref[t][2])
          assert.is_true(math.abs(dist:get(i, t) - want) <= 1e-6 * want)
        end
      end
      assert.are.equal(9, idx:get(5, 2)) -- the duplicate of row 5 comes right after itself
    end
  end)

  it("answers separate queries", function()
    local g = T.generator(12)
    local x, q = T.randn({ 500, 7 }, { gen = g }), T.randn({ 40, 7 }, { gen = g })
    local idx, dist = core.knn_exact(x, q, 5)
    local xt, qt = x:to("f64"):totable(), q:to("f64"):totable()
    for i = 1, 40 do
      local ref = brute(xt, qt[i], 5, true)
      for t = 1, 5 do assert.are.equal(ref[t][1], idx:get(i, t)) end
    end
    assert.are.same({ 40, 5 }, dist:shape())
  end)

  it("gives the same bits on 1 and 2 threads, and rejects bad input", function()
    local x = clustered(3000, 10, 3)
    local n0 = velua.get_num_threads()
    velua.set_num_threads(1)
    local i1, d1 = core.knn_exact(x, 15)
    local a1, b1 = core.knn_nndescent(x, 15, { seed = 1 })
    velua.set_num_threads(2)
    local i2, d2 = core.knn_exact(x, 15)
    local a2, b2 = core.knn_nndescent(x, 15, { seed = 1 })
    velua.set_num_threads(n0)
    assert.are.same(i1:totable(), i2:totable())
    assert.are.same(d1:totable(), d2:totable())
    assert.are.same(a1:totable(), a2:totable())
    assert.are.same(b1:totable(), b2:totable())
    local ok, err = pcall(core.knn_exact, x, 3001)
    assert.is_false(ok)
    assert.matches("k", err)
    local bad = x:clone()
    bad[3][2] = 0 / 0
    ok, err = pcall(core.knn_exact, bad, 4)
    assert.is_false(ok)
    assert.matches("NaN", err)
  end)
end)

describe("NN-descent", function()
  it("reaches recall >= 0.95 on 20k clustered points, self first, exact distances", function()
    local x = clustered(20000, 15, 5)
    local idx, dist, iters = core.knn_nndescent(x, 30, { seed = 0 })
    assert.is_true(iters >= 1)
    local rows = {}
    for i = 1, 400 do rows[i] = (i - 1) * 50 + 1 end
    local recall = require("velua.pp.neighbors").recall(x, idx, 30, rows)
    assert.is_true(recall >= 0.95, "recall " .. recall)
    for _, i in ipairs(rows) do assert.are.equal(i, idx:get(i, 1)) end
    -- listed distances are the true ones, ascending
    local xi, xj = x[rows[7]], x[idx:get(rows[7], 5)]
    local want = f32(math.sqrt(f32(((xi - xj):to("f64") ^ 2):sum():item())))
    assert.is_true(math.abs(dist:get(rows[7], 5) - want) <= 1e-6 * want)
    local drow = dist[rows[7]]:totable()
    for t = 2, 30 do assert.is_true(drow[t] >= drow[t - 1]) end
  end)

  it("is chosen above the threshold by pp.knn, which reports its recall", function()
    local x = clustered(3000, 8, 6)
    local idx, _, info = pp.knn(x, 10, { approx_threshold = 1000, recall_sample = 300 })
    assert.are.equal("nndescent", info.method)
    assert.is_true(info.recall >= 0.95)
    local _, _, info2 = pp.knn(x, 10)
    assert.are.equal("exact", info2.method)
    assert.are.same({ 3000, 10 }, idx:shape())
  end)
end)

-- umap-learn 0.5.4 transcribed: f32 bisection state, then memberships and the fuzzy union.
local function umap_reference(idx, dist, n, k)
  local target = math.log(k) / math.log(2)
  local sig, rho = {}, {}
  for i = 1, n do
    local d = dist[i]
    local r = 0
    for j = 1, k do if d[j] > 0 then r = d[j] break end end
    local lo, hi, mid = 0, math.huge, 1
    for _ = 1, 64 do
      local psum = 0
      for j = 2, k do
        local dd = f32(d[j] - r)
        psum = f32(psum + (dd > 0 and f32(math.exp(-f32(dd / mid))) or 1))
      end
      if math.abs(psum - target) < 1e-5 then break end
      if psum > target then hi = mid; mid = f32((lo + hi) / 2)
      else
        lo = mid
        if hi == math.huge then mid = mid * 2 else mid = f32((lo + hi) / 2) end
      end
    end
    local mean = 0
    for j = 1, k do mean = mean + d[j] end
    mean = mean / k
    if mid < 1e-3 * mean then mid = f32(1e-3 * mean) end
    sig[i], rho[i] = mid, r
  end
  local P = {}
  for i = 1, n do
    P[i] = {}
    for j = 1, k do
      local c = idx[i][j]
      if c ~= i then
        local dd = f32(dist[i][j] - rho[i])
        P[i][c] = dd <= 0 and 1 or f32(math.exp(-f32(dd / sig[i])))
      end
    end
  end
  local W = {}
  for i = 1, n do W[i] = {} end
  for i = 1, n do
    for c, a in pairs(P[i]) do
      local b = P[c][i] or 0
      W[i][c] = f32(f32(a + b) - f32(a * b))
      W[c][i] = W[i][c]
    end
  end
  return W, sig, rho
end

describe("UMAP fuzzy graph", function()
  it("matches umap-learn's smooth_knn_dist and fuzzy union", function()
    local x = clustered(400, 6, 8)
    local k = 15
    local idx, dist = core.knn_exact(x, k)
    local ip, ix, v, sig, rho = core.umap_graph(idx, dist, 1, 1)
    local W, rsig, rrho = umap_reference(idx:totable(), dist:to("f64"):totable(), 400, k)
    local sigt, rhot = sig:totable(), rho:totable()
    for i = 1, 400 do
      assert.is_true(math.abs(sigt[i] - rsig[i]) <= 1e-6 * rsig[i], "sigma " .. i)
      assert.are.equal(rrho[i], rhot[i])
    end
    local ipt, ixt, vt = ip:totable(), ix:totable(), v:totable()
    local count = 0
    for i = 1, 400 do
      local last = -1
      for p = ipt[i] + 1, ipt[i + 1] do
        local c = ixt[p] + 1
        assert.is_true(ixt[p] > last) -- sorted columns
        last = ixt[p]
        assert.is_true(math.abs(vt[p] - W[i][c]) <= 2e-7, "entry " .. i .. "," .. c)
        count = count + 1
      end
    end
    local ref_count = 0
    for i = 1, 400 do for _ in pairs(W[i]) do ref_count = ref_count + 1 end end
    assert.are.equal(ref_count, count)
    -- symmetric, in (0, 1]
    local G = T.sparse_csr(ip, ix, v, { 400, 400 }):to_dense()
    assert.is_true((G - G:t()):abs():max():item() == 0)
    assert.is_true(v:min():item() > 0 and v:max():item() <= 1)
  end)

  it("drops self and zero distances from the distance matrix", function()
    local x = clustered(200, 4, 9)
    x[10] = x[11]
    local idx, dist = core.knn_exact(x, 8)
    local D = require("velua.pp.neighbors").distances_matrix(idx, dist, 200)
    assert.are.equal(200 * 7 - 2, D:nnz()) -- rows 10 and 11 lose their duplicate too
    local Dd = D:to_dense()
    for i = 1, 200 do assert.are.equal(0, Dd:get(i, i)) end
  end)
end)

-- Eigenvalues of a small symmetric matrix (Lua tables) by cyclic Jacobi rotations.
local function jacobi_eigenvalues(A)
  local n = #A
  local a = {}
  for i = 1, n do a[i] = {} for j = 1, n do a[i][j] = A[i][j] end end
  local total = 0
  for i = 1, n do for j = 1, n do total = total + a[i][j] ^ 2 end end
  for _ = 1, 100 do
    local off = 0
    for i = 1, n do for j = 1, n do if i ~= j then off = off + a[i][j] ^ 2 end end end
    if off < 1e-24 or off < 1e-30 * total then break end
    for p = 1, n - 1 do
      for q = p + 1, n do
        if math.abs(a[p][q]) > 1e-300 then
          local theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
          local t = (theta >= 0 and 1 or -1) / (math.abs(theta) + math.sqrt(theta * theta + 1))
          local c = 1 / math.sqrt(t * t + 1)
          local s = t * c
          for r = 1, n do
            local arp, arq = a[r][p], a[r][q]
            a[r][p], a[r][q] = c * arp - s * arq, s * arp + c * arq
          end
          for r = 1, n do
            local apr, aqr = a[p][r], a[q][r]
            a[p][r], a[q][r] = c * apr - s * aqr, s * apr + c * aqr
          end
        end
      end
    end
  end
  local ev = {}
  for i = 1, n do ev[i] = a[i][i] end
  table.sort(ev, function(x, y) return x > y end)
  return ev
end

-- Walsh functions 1..g at 0..n-1 (g < n, n a power of 2), an n x g f64 tensor: entry (i, j) is
-- (-1)^popcount(i & j); the columns are centred and mutually orthogonal
local function walsh(n, g)
  local rows = {}
  for i = 0, n - 1 do
    local row = {}
    for j = 1, g do
      local bits, w = i & j, 0
      while bits > 0 do w, bits = w ~ (bits & 1), bits >> 1 end
      row[j] = w == 0 and 1 or -1
    end
    rows[#rows + 1] = row
  end
  return T.tensor(rows, { dtype = "f64" })
end

describe("exact PCA", function()
  it("agrees with a Jacobi eigensolver, is centred, orthonormal and sign-fixed", function()
    local g = T.generator(21)
    -- f64 data: exact in double; f32 data: products in f32 (summed in double), so about 1e-6
    -- orders >= 32 take the tridiagonal solver (dsytrd, dsterf, dstein), smaller ones dsyevd.
    -- f32 data are decomposed in double up to n g min(n, g) = 2^25 (the same bits as f64
    -- data), in f32 products above: 3500 x 100 with 40 components (the scores kernel's two
    -- panels of components, a last block of 4 cells) and 100 x 3500 (Gram matrix of the rows)
    for _, case in ipairs { { 40, 9, "f64" }, { 9, 40, "f64" }, { 40, 9, "f32" }, { 9, 40, "f32" },
      { 60, 45, "f64" }, { 45, 60, "f32" }, { 3500, 100, "f32", 40 }, { 100, 3500, "f32" } } do
      local shape, dtype = { case[1], case[2] }, case[3]
      local tol = dtype == "f64" and 1e-10 or 1e-5
      local X = (T.randn(shape, { gen = g }) * T.linspace(3, 0.5, shape[2]) + 2):to("f32"):to(dtype)
      local k = case[4] or 5
      local sc, co, sv, mu, tv = core.pca_dense(X, k)
      local X64 = X:to("f64")
      if dtype == "f32" and shape[1] * shape[2] * math.min(shape[1], shape[2]) <= 2 ^ 25 then
        local sc64 = core.pca_dense(X64, k)
        assert.is_true((sc64 - sc):abs():max():item() == 0, "small f32 data are decomposed in double")
      end
      local Xc = X64 - X64:mean(1, true)
      -- the smaller Gram matrix: the same nonzero eigenvalues
      local C = (shape[1] < shape[2] and Xc:matmul(Xc:t()) or Xc:t():matmul(Xc)):totable()
      local ev = jacobi_eigenvalues(C)
      for c = 1, k do
        assert.is_true(math.abs(sv:get(c) ^ 2 - ev[c]) <= 10 * tol * ev[1], "eigenvalue " .. c)
      end
      local scale = sc:abs():max():item()
      assert.is_true((Xc:matmul(co) - sc):abs():max():item() < tol * scale, "scores")
      assert.is_true((co:t():matmul(co) - T.eye(k, { dtype = "f64" })):abs():max():item() < tol)
      assert.is_true(math.abs(tv - (Xc * Xc):sum():item() / (shape[1] - 1)) < 1e-9 * tv)
      assert.is_true((mu - X64:mean(1)):abs():max():item() < 1e-12)
      for c = 1, k do
        local col = sc:select(2, c)
        local _, i = col:abs():max(1)
        assert.is_true(col:get(i:item()) > 0)
      end
      -- the CSR path gives the same result
      local S = T.sparse_from_dense(X)
      local sc2 = core.pca_csr(S:indptr(), S:indices(), S:values(), shape[1], shape[2], k)
      assert.is_true((sc2 - sc):abs():max():item() < 1e-10 * scale)
    end
  end)

  it("block Lanczos (f32 data, order >= 256) agrees with LAPACK on the same data in f64", function()
    -- f32 data of order 300 takes the Lanczos path; the same values in f64 take dsyevr
    local g = T.generator(5)
    for _, shape in ipairs { { 700, 300 }, { 300, 700 } } do
      -- column scales falling geometrically: top eigenvalues a few per cent apart
      local X = (T.randn(shape, { gen = g }) * T.linspace(math.log(4), math.log(0.05), shape[2]):exp()
        + 1):to("f32")
      local k = 12
      local sc, co, sv = core.pca_dense(X, k)
      local sc64, co64, sv64 = core.pca_dense(X:to("f64"), k)
      for c = 1, k do
        local rel = math.abs(sv:get(c) - sv64:get(c)) / sv64:get(c)
        assert.is_true(rel < 1e-5, "singular value " .. c .. ": " .. rel)
        local a, b = co:select(2, c), co64:select(2, c)
        assert.is_true(math.abs((a * b):sum():item()) > 1 - 1e-6, "component " .. c)
        -- same sign convention
        assert.is_true((sc:select(2, c) * sc64:select(2, c)):sum():item() > 0, "sign " .. c)
      end
      -- and the same bits on one and two threads
      local velua = require "velua"
      local before = velua.get_num_threads()
      velua.set_num_threads(1)
      local sc1, co1 = core.pca_dense(X, k)
      velua.set_num_threads(before)
      assert.is_true((sc1 - sc):abs():max():item() == 0, "thread count changed the scores")
      -- 300 x 700: loadings X_c^T U / s from the Gram matrix of the rows
      assert.is_true((co1 - co):abs():max():item() == 0, "thread count changed the components")
    end
  end)

  it("falls back to dsyevd/dsyevr when the tridiagonal matrix splits (block-diagonal Gram matrix)", function()
    -- 64 x 40 f64 data: Walsh functions 1-20 mixed by one random matrix, 21-40 by another, so
    -- X^T X is block diagonal (two full 20 x 20 blocks, zero between them): the Householder
    -- reduction does real work in each block and its tridiagonal form splits between them
    local n, g, k = 64, 40, 6
    local Wt = walsh(n, g)
    local gen = T.generator(8)
    -- small integers: every product and sum is exact, so the zeros between the blocks are exact
    local M1 = T.randint(-3, 4, { 20, 20 }, { gen = gen }):to("f64")
    local M2 = T.randint(-2, 3, { 20, 20 }, { gen = gen }):to("f64")
    local X = T.cat({ Wt:narrow(2, 1, 20):matmul(M1), Wt:narrow(2, 21, 20):matmul(M2) }, 2):contiguous()
    local sc, co, sv = core.pca_dense(X, k)
    local Xc = X - X:mean(1, true)
    local ev = jacobi_eigenvalues(Xc:t():matmul(Xc):totable())
    for c = 1, k do
      assert.is_true(math.abs(sv:get(c) ^ 2 - ev[c]) < 1e-9 * ev[1], "eigenvalue " .. c)
    end
    local scale = sc:abs():max():item()
    assert.is_true((Xc:matmul(co) - sc):abs():max():item() < 1e-10 * scale, "scores")
    assert.is_true((co:t():matmul(co) - T.eye(k, { dtype = "f64" })):abs():max():item() < 1e-10)
    -- order 200 (dsyevr's side): 256 x 200, two blocks of 100; the singular values are those
    -- of the two blocks taken apart (orders 100, no split there)
    local Wb = walsh(256, 200)
    local A1 = Wb:narrow(2, 1, 100):matmul(T.randint(-3, 4, { 100, 100 }, { gen = gen }):to("f64"))
    local A2 = Wb:narrow(2, 101, 100):matmul(T.randint(-2, 3, { 100, 100 }, { gen = gen }):to("f64"))
    local K = 12
    local _, _, svb = core.pca_dense(T.cat({ A1, A2 }, 2):contiguous(), K)
    local parts = {}
    for _, A in ipairs { A1, A2 } do
      local _, _, s = core.pca_dense(A:contiguous(), K)
      for c = 1, K do parts[#parts + 1] = s:get(c) end
    end
    table.sort(parts, function(a, b) return a > b end)
    for c = 1, K do
      assert.is_true(math.abs(svb:get(c) - parts[c]) < 1e-10 * parts[1], "order 200, singular value " .. c)
    end
  end)

  it("builds the Gram matrix with its own AVX-512 kernel as OpenBLAS does, on any layout and thread count", function()
    local flags = (io.open("/proc/cpuinfo") or { read = function() return "" end, close = function() end })
    local cpuinfo = flags:read("a") or ""
    flags:close()
    -- the kernel runs where the CPU has AVX-512F
    assert.equals(cpuinfo:match("\nflags%s*:[^\n]* avx512f%f[^%w_]") ~= nil, core.gram_f32_available())
    local g = T.generator(31)
    -- columns path (n > g) with g not a multiple of 32 and, at 7000 x 300, two packed chunks;
    -- rows path (n <= g) with genes in several packed blocks at 300 x 2600
    for _, shape in ipairs { { 300, 77 }, { 2600, 40 }, { 7000, 300 }, { 40, 700 }, { 300, 2600 } } do
      local X = (T.randn(shape, { gen = g }) * T.linspace(2, 0.5, shape[2]) + 1.5):to("f32")
      local own = core.pca_gram_dense(X, false)
      local blas = core.pca_gram_dense(X, true)
      local exact = core.pca_gram_dense(X:to("f64"), false)
      local scale = exact:abs():max():item()
      local what = shape[1] .. " x " .. shape[2]
      assert.is_true((own - exact):abs():max():item() < 1e-5 * scale, what .. ": own vs exact")
      assert.is_true((blas - exact):abs():max():item() < 1e-5 * scale, what .. ": BLAS vs exact")
      assert.is_true((own - own:t()):abs():max():item() == 0, what .. ": symmetric")
      if shape[1] * shape[2] <= 30000 then
        -- the same bits from CSR, from a strided view and on one thread
        local S = T.sparse_from_dense(X)
        local csr = core.pca_gram_csr(S:indptr(), S:indices(), S:values(), shape[1], shape[2], false)
        assert.is_true((csr - own):abs():max():item() == 0, what .. ": CSR")
        local strided = X:t():contiguous():t()
        assert.is_false(strided:is_contiguous())
        assert.is_true((core.pca_gram_dense(strided, false) - own):abs():max():item() == 0, what .. ": strided")
      end
      local before = velua.get_num_threads()
      velua.set_num_threads(1)
      local one = core.pca_gram_dense(X, false)
      velua.set_num_threads(before)
      assert.is_true((one - own):abs():max():item() == 0, what .. ": thread count")
    end
  end)

  it("rejects n_comps beyond min(n_obs, n_vars)", function()
    local ok, err = pcall(core.pca_dense, T.ones(5, 3), 4)
    assert.is_false(ok)
    assert.matches("n_comps", err)
  end)
end)
