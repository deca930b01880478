-- Benchmark: training a VAE 2000 -> 128 -> 10 (mu, logvar) -> 128 -> 2000 (ReLU; loss =
-- per-cell summed squared error + KL to N(0, I); Adam lr 1e-3; batch 256) on uniform random
-- data, seconds per epoch with 1 and 2 threads and resident memory across epochs. When
-- Debian's python3-torch is importable, the identical PyTorch model is timed in the same run
-- and the ratio printed (the reference of ../shared/oracle/README.md section 8).
--
--   build/bin/velua run bench/train_vae.lua [--cells 20000] [--epochs 5] [--mem-epochs 50]
--                                           [--threads 1,2] [--no-torch] [--markdown]
local velua = require "velua"
local T, nn, optim = velua.tensor, velua.nn, velua.optim

local args = { cells = 20000, epochs = 5, ["mem-epochs"] = 50, threads = "1,2" }
local flags = {}
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    local name = a:match("^%-%-(.+)$")
    if not name then error("unexpected argument " .. a) end
    if name == "no-torch" or name == "markdown" then flags[name] = true
    else args[name] = arg[i + 1]; i = i + 1 end
    i = i + 1
  end
end
local n_cells, n_genes, hidden, latent, batch = tonumber(args.cells), 2000, 128, 10, 256

local function rss_mb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmRSS:%s+(%d+)")
    if kb then return tonumber(kb) / 1024 end
  end
end

local function build(gen)
  local m = {
    enc = nn.Linear(n_genes, hidden, { gen = gen }),
    mu = nn.Linear(hidden, latent, { gen = gen }),
    logvar = nn.Linear(hidden, latent, { gen = gen }),
    dec = nn.Linear(latent, hidden, { gen = gen }),
    out = nn.Linear(hidden, n_genes, { gen = gen }),
  }
  local params = {}
  for _, k in ipairs { "enc", "mu", "logvar", "dec", "out" } do
    for _, p in ipairs(m[k]:parameters()) do params[#params + 1] = p end
  end
  return m, params
end

local function step(m, opt, x, gen)
  local h = m.enc(x):relu()
  local mu, logvar = m.mu(h), m.logvar(h)
  local eps = T.randn(mu:shape(), { gen = gen })
  local z = mu + (logvar * 0.5):exp() * eps
  local xhat = m.out(m.dec(z):relu())
  local d = xhat - x
  local rec = (d * d):sum(2):mean()
  local kl = ((logvar:exp() + mu * mu - logvar - 1) * 0.5):sum(2):mean()
  local loss = rec + kl
  opt:zero_grad()
  loss:backward()
  opt:step()
  return loss
end

local function epoch(m, opt, data, gen)
  local perm = T.randperm(n_cells, { gen = gen })
  local loss
  for s = 1, n_cells, batch do
    local idx = perm:narrow(1, s, math.min(batch, n_cells - s + 1))
    loss = step(m, opt, data:index(1, idx), gen)
  end
  return loss:item()
end

local function time_velua(threads, epochs)
  velua.set_num_threads(threads)
  local gen = T.generator(0)
  local data = T.rand({ n_cells, n_genes }, { gen = gen })
  local m, params = build(gen)
  local opt = optim.Adam(params, { lr = 1e-3 })
  epoch(m, opt, data, gen) -- warm-up
  local best, last = math.huge, nil
  for _ = 1, epochs do
    local t0 = velua.now()
    last = epoch(m, opt, data, gen)
    best = math.min(best, velua.now() - t0)
  end
  return best, last
end

local function memory_trace(epochs)
  velua.set_num_threads(1)
  local gen = T.generator(1)
  local data = T.rand({ n_cells, n_genes }, { gen = gen })
  local m, params = build(gen)
  local opt = optim.Adam(params, { lr = 1e-3 })
  local trace = {}
  for e = 1, epochs do
    epoch(m, opt, data, gen)
    trace[e] = rss_mb()
  end
  return trace
end

local TORCH = [==[
import os, sys, time, torch
threads, cells, epochs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads); torch.manual_seed(0)
G, H, L, B = 2000, 128, 10, 256
x_all = torch.rand(cells, G)
enc, mu_l, lv_l = torch.nn.Linear(G, H), torch.nn.Linear(H, L), torch.nn.Linear(H, L)
dec, out = torch.nn.Linear(L, H), torch.nn.Linear(H, G)
params = [p for m in (enc, mu_l, lv_l, dec, out) for p in m.parameters()]
opt = torch.optim.Adam(params, lr=1e-3)
def run_epoch():
    perm = torch.randperm(cells)
    for s in range(0, cells, B):
        x = x_all[perm[s:s + B]]
        h = torch.relu(enc(x)); mu = mu_l(h); lv = lv_l(h)
        z = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
        xh = out(torch.relu(dec(z)))
        rec = ((xh - x) ** 2).sum(1).mean()
        kl = (0.5 * (lv.exp() + mu * mu - lv - 1)).sum(1).mean()
        loss = rec + kl
        opt.zero_grad(); loss.backward(); opt.step()
run_epoch()
best = float("inf")
for _ in range(epochs):
    t0 = time.perf_counter(); run_epoch(); best = min(best, time.perf_counter() - t0)
print("TORCH_SECONDS", best)
]==]

local function time_torch(threads, epochs)
  if flags["no-torch"] then return nil end
  local script = os.tmpname() .. ".py"
  local f = assert(io.open(script, "w"))
  f:write(TORCH)
  f:close()
  local cmd = string.format("OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=%d /usr/bin/python3 %s %d %d %d 2>&1",
    threads, script, threads, n_cells, epochs)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  os.remove(script)
  return tonumber(out:match("TORCH_SECONDS%s+([%d%.e%-]+)"))
end

local rows = {}
for t in tostring(args.threads):gmatch("%d+") do
  local threads = tonumber(t)
  local vs, loss = time_velua(threads, tonumber(args.epochs))
  local ts = time_torch(threads, tonumber(args.epochs))
  rows[#rows + 1] = { threads = threads, velua = vs, torch = ts, loss = loss }
  io.stderr:write(string.format("threads %d: velua %.3f s/epoch%s (last batch loss %.1f)\n", threads, vs,
    ts and string.format(", torch %.3f s/epoch, ratio %.2f", ts, vs / ts) or "", loss))
end
local trace = memory_trace(tonumber(args["mem-epochs"]))

local host = io.popen("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"):read("l") or "?"
local nproc = io.popen("nproc"):read("l") or "?"
print(string.format("VAE %d -> %d -> %d, %d cells, batch %d, Adam; %s; %s", n_genes, hidden, latent,
  n_cells, batch, os.date("%Y-%m-%d"), host:gsub("^%s+", "") .. ", " .. nproc .. " cores"))
if flags.markdown then
  print("| threads | velua s/epoch | PyTorch 1.13 s/epoch | velua / PyTorch |")
  print("|---:|---:|---:|---:|")
end
for _, r in ipairs(rows) do
  local ts = r.torch and string.format("%.3f", r.torch) or "n/a"
  local ratio = r.torch and string.format("%.2f", r.velua / r.torch) or "n/a"
  if flags.markdown then
    print(string.format("| %d | %.3f | %s | %s |", r.threads, r.velua, ts, ratio))
  else
    print(string.format("threads %d: velua %.3f s/epoch, torch %s, ratio %s", r.threads, r.velua, ts, ratio))
  end
end
local lo, hi = math.huge, 0
for e = 5, #trace do lo = math.min(lo, trace[e]); hi = math.max(hi, trace[e]) end
print(string.format("resident memory over %d epochs: after epoch 1 %.1f MB, epochs 5-%d between %.1f and %.1f MB",
  #trace, trace[1], #trace, lo, hi))
