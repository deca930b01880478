-- Benchmark of the tensor core against references measured in the same process:
--   GEMM (f32, f64; 512, 1024, 2048): velua's matmul vs a direct cblas_?gemm call;
--   elementwise add and exp, and a full sum, on 64 MB f32 tensors: achieved bandwidth
--   (bytes read + written per second) as a fraction of memcpy's.
-- Each at 1 and 2 threads.   build/bin/velua run bench/tensor.lua [--markdown] [--quick]
local velua = require "velua"
local T = velua.tensor
local core = require "velua.core"

local markdown, quick = false, false
for _, a in ipairs(arg or {}) do
  if a == "--markdown" then markdown = true elseif a == "--quick" then quick = true end
end

local function best_of(reps, fn)
  fn() -- warm-up
  local best = math.huge
  for _ = 1, reps do
    local t0 = velua.now()
    fn()
    best = math.min(best, velua.now() - t0)
  end
  return best
end

local rows = {}
local function row(threads, what, velua_s, ref_s, unit, value, ratio)
  rows[#rows + 1] = { threads, what, unit, value, ratio }
  io.stderr:write(string.format("%d thread(s)  %-34s %10.2f %-7s ratio %.3f\n", threads, what, value, unit, ratio))
end

local sizes = quick and { 512, 1024 } or { 512, 1024, 2048 }
local MB64 = 64 * 1024 * 1024
for _, threads in ipairs { 1, 2 } do
  velua.set_num_threads(threads)
  for _, dt in ipairs { "f32", "f64" } do
    for _, n in ipairs(sizes) do
      local reps = n >= 2048 and 3 or 8
      local g = T.generator(n)
      local a, b = T.randn({ n, n }, { gen = g, dtype = dt }), T.randn({ n, n }, { gen = g, dtype = dt })
      -- interleaved rounds, best of each, so that changing machine load hits both alike
      local tv, tr = math.huge, math.huge
      a:matmul(b)
      for _ = 1, reps do
        local t0 = velua.now()
        a:matmul(b)
        tv = math.min(tv, velua.now() - t0)
        tr = math.min(tr, core.bench_cblas_gemm(dt, n, 1))
      end
      local flop = 2 * n ^ 3
      row(threads, string.format("%s GEMM %d", dt, n), tv, tr, "GFLOP/s", flop / tv / 1e9, tr / tv)
      if n == 1024 then
        local at = a:t() -- a transposed view goes to BLAS as Trans, without a copy
        local tt = best_of(reps, function() return at:matmul(b) end)
        row(threads, string.format("%s GEMM %d, a:t() operand", dt, n), tt, tr, "GFLOP/s", flop / tt / 1e9, tr / tt)
      end
    end
  end
  local n = MB64 // 4
  local x = T.rand({ n }, { gen = T.generator(1) })
  local y = T.rand({ n }, { gen = T.generator(2) })
  local mc = core.bench_memcpy(MB64, 5)
  local memcpy_bw = 2 * MB64 / mc -- read + write
  local t_add = best_of(5, function() return x + y end)
  row(threads, "add 64 MB f32 (2 reads, 1 write)", t_add, mc, "GB/s", 3 * MB64 / t_add / 1e9, (3 * MB64 / t_add) / memcpy_bw)
  local t_exp = best_of(5, function() return x:exp() end)
  row(threads, "exp 64 MB f32 (1 read, 1 write)", t_exp, mc, "GB/s", 2 * MB64 / t_exp / 1e9, (2 * MB64 / t_exp) / memcpy_bw)
  local t_sum = best_of(5, function() return x:sum() end)
  row(threads, "sum 64 MB f32 (1 read)", t_sum, mc, "GB/s", MB64 / t_sum / 1e9, (MB64 / t_sum) / memcpy_bw)
  row(threads, "memcpy 64 MB (reference)", mc, mc, "GB/s", memcpy_bw / 1e9, 1)
end

local cpu = io.popen("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"):read("l") or "?"
local nproc = io.popen("nproc"):read("l") or "?"
print(string.format("velua %s tensor benchmark, %s, %s, %s cores, OpenBLAS: %s", velua.version,
  os.date("%Y-%m-%d"), cpu:gsub("^%s+", ""), nproc, core.bench_blas_config()))
print("GEMM ratio = direct cblas time / velua time (1.0 = no overhead); bandwidth ratio = " ..
  "achieved bytes/s over memcpy's (read + write) bytes/s.")
if markdown then
  print("| threads | operation | velua | unit | ratio |")
  print("|---:|---|---:|---|---:|")
  for _, r in ipairs(rows) do
    print(string.format("| %d | %s | %.2f | %s | %.3f |", r[1], r[2], r[4], r[3], r[5]))
  end
else
  for _, r in ipairs(rows) do
    print(string.format("%d  %-34s %10.2f %-7s %.3f", r[1], r[2], r[4], r[3], r[5]))
  end
end
