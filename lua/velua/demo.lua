-- The built-in demo (`velua demo [outdir]`). For now a short tour of the tensor core and its
-- BLAS speed; later issues grow it into the RNA-velocity workflow on simulated data.
-- Everything but the timings is determined by the seed.
local velua = require "velua"
local T = velua.tensor

local M = {}

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Write through a temporary file and rename, so a crash never leaves a half-written report.
local function write_atomic(dir, name, text)
  if not os.execute("mkdir -p " .. shell_quote(dir)) then error("demo: cannot create directory " .. dir, 0) end
  local path = dir .. "/" .. name
  local f = assert(io.open(path .. ".tmp", "w"))
  assert(f:write(text))
  assert(f:close())
  assert(os.rename(path .. ".tmp", path))
  return path
end

-- opts: outdir (default "velua-demo"), seed (default 0).
function M.run(opts)
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "outdir" and k ~= "seed" then error("demo: unknown option '" .. tostring(k) .. "'", 2) end
  end
  local outdir, seed = opts.outdir or "velua-demo", opts.seed or 0
  local lines = {}
  local function say(fmt, ...)
    local s = string.format(fmt, ...)
    print(s)
    lines[#lines + 1] = s
  end

  say("velua %s on %s, %d threads", velua.version, _VERSION, velua.get_num_threads())
  local g = T.generator(seed)
  local x = T.randn({ 4, 3 }, { gen = g })
  say("x = T.randn({4, 3}, {gen = T.generator(%d)})\n%s", seed, tostring(x))
  local centered = x - x:mean(1, true) -- {4,3} minus {1,3}: broadcasting
  say("column sums of x - x:mean(1, true) (all ~0)\n%s", tostring(centered:sum(1)))
  local w = T.tensor({ { 1, 0 }, { 0, 1 }, { 1, 1 } })
  say("x:matmul(w) with w = {{1,0},{0,1},{1,1}}\n%s", tostring(x:matmul(w)))
  local grid = T.tensor({ { 1 }, { 2 }, { 3 } }) * T.tensor({ 1, 10, 100, 1000 })
  say("{3,1} * {4} broadcasts to {3,4}\n%s", tostring(grid))

  -- GEMM speed: one warm-up, then the best of three 1024x1024 f32 products.
  local n = 1024
  local a, b = T.randn({ n, n }, { gen = g }), T.randn({ n, n }, { gen = g })
  a:matmul(b)
  local best = math.huge
  for _ = 1, 3 do
    local t0 = velua.now()
    a:matmul(b)
    best = math.min(best, velua.now() - t0)
  end
  say("matmul %dx%d f32: %.1f ms, %.1f GFLOP/s", n, n, best * 1e3, 2 * n ^ 3 / best / 1e9)

  local path = write_atomic(outdir, "report.txt", table.concat(lines, "\n") .. "\n")
  print("report written to " .. path)
  return path
end

return M
