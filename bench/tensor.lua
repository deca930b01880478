-- Tensor core benchmark: velua's operations against references timed in the same process.
--   GEMM (f32, f64; 512, 1024, 2048, and a transposed operand): a:matmul(b) into a new tensor
--   vs a direct cblas_?gemm on preallocated buffers, in GFLOP/s and as a ratio (target >= 0.95).
--   x + y, in-place add_, exp and a full sum on 64 MB of f32: bytes read + written per second
--   as a ratio to memcpy's (read + write) bandwidth with the same thread count; exp and sum also
--   on cache-resident data (their arithmetic rate alone). Each at 1 and 2 threads.
-- build/bin/velua run bench/tensor.lua [--markdown] [--quick]
local velua = require "velua"
local T = velua.tensor
local core = require "velua.core"

local USAGE = "usage: bench/tensor.lua [--markdown] [--quick]"
local markdown, quick = false, false
for _, a in ipairs(arg or {}) do
  if a == "--markdown" then
    markdown = true
  elseif a == "--quick" then
    quick = true
  elseif a == "--help" or a == "-h" then
    print(USAGE)
    os.exit(0)
  else
    io.stderr:write("bench/tensor.lua: unknown argument '", a, "'\n", USAGE, "\n")
    os.exit(2)
  end
end

local started = velua.now()

local function first_line(cmd)
  local f = io.popen(cmd)
  if not f then return nil end
  local s = f:read("l")
  f:close()
  return s
end

local function read_file(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local cpuinfo = read_file("/proc/cpuinfo") or ""
local cpu = cpuinfo:match("model name%s*:%s*([^\n]+)") or "unknown CPU"
local nproc = first_line("nproc 2>/dev/null") or "?"
local loadavg = (read_file("/proc/loadavg") or "?"):match("^(%S+ %S+ %S+)") or "?"
local blas_config, blas_core = core.bench_blas_config()

-- Operands: random when velua.random is there, otherwise a fixed non-trivial pattern.
local function data(shape, dtype, seed)
  if T.rand then return T.rand(shape, { gen = T.generator(seed), dtype = dtype }) end
  local count = 1
  for _, s in ipairs(shape) do count = count * s end
  return (T.arange(count, { dtype = dtype }) + seed):sin():reshape(shape)
end

-- rounds x (velua: best of k single calls; reference: one call returning its best of k),
-- interleaved so that a change of machine load hits both alike; returns the two best times.
local function paired(rounds, k, run_velua, run_ref)
  run_velua() -- warm-up (OpenBLAS threads, our pool, the allocator)
  local tv, tr = math.huge, math.huge
  for _ = 1, rounds do
    for _ = 1, k do
      local t0 = velua.now()
      run_velua()
      tv = math.min(tv, velua.now() - t0)
    end
    tr = math.min(tr, run_ref(k))
  end
  return tv, tr
end

local rows = {}
local function row(threads, what, unit, value, ref_value, ratio)
  rows[#rows + 1] = { threads = threads, what = what, unit = unit, value = value, ref = ref_value, ratio = ratio }
  io.stderr:write(string.format("  %d thread(s)  %-38s %8.2f %-7s ref %8.2f  ratio %.3f\n",
    threads, what, value, unit, ref_value, ratio))
end

local sizes = quick and { 512, 1024 } or { 512, 1024, 2048 }
local rounds = quick and 2 or 5
local MB64 = 64 * 1024 * 1024
local N64 = MB64 // 4          -- f32 elements in 64 MB
local N_CACHED = 1024 * 1024   -- 4 MB in + 4 MB out: stays in the 32 MB L3 of this machine kind

io.stderr:write("bench/tensor.lua: GEMM, then add / exp / sum on 64 MB, at 1 and 2 threads\n")
for _, threads in ipairs { 1, 2 } do
  velua.set_num_threads(threads)

  for _, dt in ipairs { "f32", "f64" } do
    for _, n in ipairs(sizes) do
      local k = n >= 2048 and 2 or (n >= 1024 and 5 or 10)
      local a, b = data({ n, n }, dt, n), data({ n, n }, dt, n + 1)
      local flop = 2 * n ^ 3
      local tv, tr = paired(rounds, k, function() return a:matmul(b) end,
        function(reps) return core.bench_cblas_gemm(dt, n, reps) end)
      row(threads, string.format("%s GEMM %d", dt, n), "GFLOP/s", flop / tv / 1e9, flop / tr / 1e9, tr / tv)
      if n == 1024 then
        -- a:t() is a column-major view: velua hands it to BLAS as Trans, without a copy;
        -- the reference is cblas with CblasTrans on the same layout
        local at = a:t()
        tv, tr = paired(rounds, k, function() return at:matmul(b) end,
          function(reps) return core.bench_cblas_gemm(dt, n, reps, true) end)
        row(threads, string.format("%s GEMM %d, a:t() operand", dt, n), "GFLOP/s",
          flop / tv / 1e9, flop / tr / 1e9, tr / tv)
      end
      a, b = nil, nil
      collectgarbage()
    end
  end

  -- Bandwidth: every op is timed in rounds interleaved with memcpy rounds at the same thread
  -- count, and its ratio uses the memcpy best of its own rounds (same samples, same period
  -- of machine load; the memcpy row shows the best over all of them).
  local x, y = data({ N64 }, "f32", 1), data({ N64 }, "f32", 2)
  local z = x:clone()
  local xs = data({ N_CACHED }, "f32", 3)
  local memcpy_best = math.huge
  local function memcpy_ref(reps)
    local t = core.bench_memcpy(MB64, reps, threads)
    memcpy_best = math.min(memcpy_best, t)
    return t
  end
  -- ops on data that stays in cache show their arithmetic rate alone: if that is not clearly
  -- faster than on 64 MB, the op is compute-bound, not memory-bound
  local n_calls = 16
  local function cached(fn)
    return function()
      for _ = 1, n_calls do fn() end
    end, n_calls
  end
  local cases = {
    { "add 64 MB f32 (x + y: 2 reads, 1 write)", 3 * MB64, function() return x + y end },
    { "add_ 64 MB f32 in place (2 reads, 1 write)", 3 * MB64, function() return z:add_(y) end },
    { "exp 64 MB f32 (1 read, 1 write)", 2 * MB64, function() return x:exp() end },
    { "sum 64 MB f32 (1 read)", MB64, function() return x:sum() end },
    { "exp 4 MB f32, cache-resident (1 r, 1 w)", 2 * 4 * N_CACHED, cached(function() return xs:exp() end) },
    { "sum 4 MB f32, cache-resident (1 read)", 4 * N_CACHED, cached(function() return xs:sum() end) },
  }
  for _, c in ipairs(cases) do
    local fn, calls = c[3], c[4] or 1
    local tv, tr = paired(rounds, 3, fn, memcpy_ref)
    local bw, ref_bw = c[2] * calls / tv, 2 * MB64 / tr -- memcpy: read + write
    row(threads, c[1], "GB/s", bw / 1e9, ref_bw / 1e9, bw / ref_bw)
    collectgarbage()
  end
  local memcpy_bw = 2 * MB64 / memcpy_best
  row(threads, string.format("memcpy 64 MB, %d thread(s) (reference)", threads), "GB/s", memcpy_bw / 1e9, memcpy_bw / 1e9, 1)
  x, y, z, xs = nil, nil, nil, nil
  collectgarbage()
end

local elapsed = velua.now() - started
local header = {
  string.format("velua %s tensor benchmark, %s (%s, load average at start %s)", velua.version,
    os.date("%Y-%m-%d %H:%M"), _VERSION, loadavg),
  string.format("machine: %s, %s CPUs; OpenBLAS: %s; kernels: %s%s", cpu, nproc, blas_config,
    blas_core, os.getenv("OPENBLAS_CORETYPE") and (" (OPENBLAS_CORETYPE=" .. os.getenv("OPENBLAS_CORETYPE") .. ")") or ""),
  "GEMM ratio = direct cblas time / velua time (1.0 = no overhead; target >= 0.95);",
  "bandwidth ratio = bytes read + written per second / memcpy's (64 MB, same thread count, timed",
  "in rounds interleaved with the op's own); the memcpy rows show the best copy seen.",
  string.format("%s, best of %d rounds; run took %.0f s.", quick and "--quick" or "full run", rounds, elapsed),
}
if markdown then
  for _, h in ipairs(header) do print(h .. "  ") end
  print()
  print("| threads | operation | velua | reference | unit | ratio |")
  print("|---:|---|---:|---:|---|---:|")
  for _, w in ipairs(rows) do
    print(string.format("| %d | %s | %.2f | %.2f | %s | %.3f |", w.threads, w.what, w.value, w.ref, w.unit, w.ratio))
  end
else
  for _, h in ipairs(header) do print(h) end
  print()
  print(string.format("%-7s  %-42s %9s %9s  %-7s  %s", "threads", "operation", "velua", "reference", "unit", "ratio"))
  for _, w in ipairs(rows) do
    print(string.format("%7d  %-42s %9.2f %9.2f  %-7s  %.3f", w.threads, w.what, w.value, w.ref, w.unit, w.ratio))
  end
end
