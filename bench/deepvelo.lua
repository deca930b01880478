-- Benchmark: DeepVelo training (tl.deepvelo's pieces), seconds per full-batch epoch and peak
-- resident memory, on the pancreas oracle's Ms/Mu (739 x 2000) and on synthetic data of
-- 20,000 cells x 2,000 genes (Ms ~ Gamma(0.5, 1), Mu ~ Gamma(0.5, 0.5), as in
-- ../shared/oracle/deepvelo_reference.md). Prints per-epoch wall and CPU seconds (CPU time
-- counts both threads; on a shared machine wall time moves with other load), the split of an
-- epoch (forward, losses, backward, optimizer step) and the peak RSS of the process.
-- The PyTorch reimplementation's figures of the reference page are printed alongside.
--
--   build/bin/velua run bench/deepvelo.lua [--data pancreas,sim20k] [--epochs 100]
--                                          [--threads 2] [--seed 0] [--cells 20000] [--genes 2000]
local velua = require "velua"
local T = velua.tensor
local core = require "velua.core"
local dv = require "velua.tl.deepvelo"
local optim = velua.optim

local args = { data = "pancreas,sim20k", epochs = "100", threads = "2", seed = "0",
  cells = "20000", genes = "2000" }
do
  local i = 1
  while i <= #arg do
    local name = arg[i]:match("^%-%-(.+)$")
    if not name or args[name] == nil then error("unexpected argument " .. arg[i]) end
    args[name] = arg[i + 1]
    i = i + 2
  end
end
local epochs, seed = tonumber(args.epochs), math.tointeger(tonumber(args.seed))
velua.set_num_threads(tonumber(args.threads))

local function status(key)
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^" .. key .. ":%s+(%d+)")
    if kb then return tonumber(kb) / 1024 end
  end
end

local function clock() return velua.now(), os.clock() end

local function shared(rel)
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local root = src:match("^(.*)/bench/[^/]*$") or "."
  return root .. "/../shared/" .. rel
end

-- one epoch of tl.deepvelo's loop (M.train), split into its phases
local function run(name, u, s)
  print(string.format("\n## %s: %d cells x %d genes, %d epochs, %d threads, seed %d", name,
    s:size(1), s:size(2), epochs, velua.get_num_threads(), seed))
  print(string.format("RSS before setup: %.0f MiB", status("VmRSS")))
  local w0, c0 = clock()
  local data = dv.prepare(u, s, { seed = seed })
  local gen = T.generator(seed)
  local model = dv.Model(s:size(2), { gen = gen })
  local opt = optim.Adam(model, { lr = 1e-3, amsgrad = true })
  local sched = optim.StepLR(opt, { step_size = 1, gamma = 0.97 })
  local w1, c1 = clock()
  print(string.format("setup (PCA, kNN, graph, model): %.2f s wall, %.2f s CPU", w1 - w0, c1 - c0))
  local phases = { fwd = 0, loss = 0, bwd = 0, step = 0 }
  local walls, cpus, losses = {}, {}, {}
  model:train()
  for ep = 1, epochs do
    local ws, cs = clock()
    opt:zero_grad()
    local t0 = velua.now()
    local out = model(data.adj, data.u, data.s)
    local t1 = velua.now()
    local loss = dv.mle_plus_direction(out, data)
    local t2 = velua.now()
    losses[ep] = loss:item()
    loss:backward()
    local t3 = velua.now()
    opt:step()
    sched:step()
    local we, ce = clock()
    if ep > 1 then
      phases.fwd = phases.fwd + (t1 - t0)
      phases.loss = phases.loss + (t2 - t1)
      phases.bwd = phases.bwd + (t3 - t2)
      phases.step = phases.step + (we - t3)
    end
    walls[ep], cpus[ep] = we - ws, ce - cs
    if ep == 1 or ep % 10 == 0 or ep == epochs then
      print(string.format("epoch %3d  loss %10.2f  %.3f s wall  %.3f s CPU  RSS %.0f MiB", ep,
        losses[ep], walls[ep], cpus[ep], status("VmRSS")))
    end
  end
  local w2, c2 = clock()
  local sorted = { table.unpack(walls) }
  table.sort(sorted)
  local total_cpu = 0
  for _, c in ipairs(cpus) do total_cpu = total_cpu + c end
  local m = epochs - 1
  print(string.format("per epoch: best %.3f s, median %.3f s wall; mean CPU %.3f s", sorted[1],
    sorted[(#sorted + 1) // 2], total_cpu / epochs))
  if m > 0 then
    print(string.format("split (mean over epochs 2..%d, wall): forward %.3f, loss %.3f, " ..
      "backward %.3f, step %.3f", epochs, phases.fwd / m, phases.loss / m, phases.bwd / m,
      phases.step / m))
  end
  print(string.format("%d epochs: %.1f s wall (%.1f s CPU); with setup %.1f s", epochs, w2 - w1,
    c2 - c1, w2 - w0))
  print(string.format("peak RSS (VmHWM, whole process): %.0f MiB", status("VmHWM")))
  return { best = sorted[1], median = sorted[(#sorted + 1) // 2], total = w2 - w0 }
end

print(string.format("velua DeepVelo benchmark, %s, %s", os.date("%Y-%m-%d %H:%M"),
  (io.popen("uname -srm"):read("l") or "")))
for name in args.data:gmatch("[^,]+") do
  if name == "pancreas" then
    local ad = velua.read_h5ad(shared("oracle/pancreas_scvelo.h5ad"))
    run("pancreas", ad.layers.Mu:contiguous(), ad.layers.Ms:contiguous())
    print("reference (PyTorch reimplementation, same machine kind): best 0.20-0.21 s/epoch " ..
      "(inner batch 128), 0.56-0.67 s (auto batch, 2 threads); peak RSS 1,181-1,614 MiB")
  elseif name == "sim20k" then
    local n, g = math.tointeger(tonumber(args.cells)), math.tointeger(tonumber(args.genes))
    local gen = T.generator(seed)
    local s = core.rand_gamma_(T.empty({ n, g }), gen, T.full({}, 0.5))
    local u = core.rand_gamma_(T.empty({ n, g }), gen, T.full({}, 0.5)) * 0.5
    run(string.format("synthetic %dk", n // 1000), u:contiguous(), s:contiguous())
    print("reference (PyTorch reimplementation, 20k x 2000): best 12.2 s/epoch (2 threads, " ..
      "inner batch 128), 40.4 s (auto batch); peak RSS 4,338-9,628 MiB")
  else
    error("unknown data set " .. name)
  end
  collectgarbage()
end
