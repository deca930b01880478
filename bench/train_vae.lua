-- Benchmark: training a VAE 2000 -> 128 -> 10 (mu, logvar) -> 128 -> 2000 (ReLU; loss =
-- per-cell summed squared error + KL to N(0, I); Adam lr 1e-3; batch 256) on uniform random
-- data, seconds per epoch with 1 and 2 threads and resident memory across epochs. When
-- Debian's python3-torch is importable, the identical PyTorch model is timed in the same run,
-- its epochs alternating with velua's (a coprocess), and the per-round ratios printed (best and
-- median; the reference of ../shared/oracle/README.md section 8).
--
--   build/bin/velua run bench/train_vae.lua [--cells 20000] [--epochs 7] [--mem-epochs 50]
--                                           [--threads 1,2] [--gc generational|incremental]
--                                           [--no-torch] [--markdown]
local velua = require "velua"
local T, nn, optim = velua.tensor, velua.nn, velua.optim

local args = { cells = 20000, epochs = 7, ["mem-epochs"] = 50, threads = "1,2", gc = "generational" }
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

-- A velua model ready to train: run_epoch() returns the last batch's loss.
local function velua_trainer(threads)
  velua.set_num_threads(threads)
  local gen = T.generator(0)
  local data = T.rand({ n_cells, n_genes }, { gen = gen })
  local m, params = build(gen)
  local opt = optim.Adam(params, { lr = 1e-3 })
  return function() return epoch(m, opt, data, gen) end
end

-- RSS after each epoch under the collector mode `gc` ("generational", the mode lua5.4 starts
-- scripts in, or "incremental"); also the Lua heap after a full collection after epoch 1 and
-- after the last epoch (live memory: equal unless something leaks).
local function memory_trace(epochs, gc)
  local prev_mode = collectgarbage(gc)
  velua.set_num_threads(1)
  local gen = T.generator(1)
  local data = T.rand({ n_cells, n_genes }, { gen = gen })
  local m, params = build(gen)
  local opt = optim.Adam(params, { lr = 1e-3 })
  local trace, live = {}, {}
  for e = 1, epochs do
    epoch(m, opt, data, gen)
    trace[e] = rss_mb()
    if e == 1 or e == epochs then
      collectgarbage("collect")
      live[#live + 1] = collectgarbage("count") / 1024
    end
  end
  collectgarbage(prev_mode)
  return trace, live
end

-- The PyTorch side runs as a coprocess: it sets up, reports READY on a FIFO, then times one
-- epoch per "epoch" line on its stdin and answers with the seconds. velua and PyTorch epochs
-- thus alternate in one run and share whatever load the machine has at the time.
local TORCH = [==[
import os, sys, time
threads, cells, fifo = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
reply = open(fifo, "w", buffering=1)
try:
    import torch
except Exception as e:
    reply.write("ERROR %s\n" % e); sys.exit(0)
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
reply.write("READY %s\n" % torch.__version__)
for line in sys.stdin:
    if line.strip() != "epoch": break
    t0 = time.perf_counter(); run_epoch(); reply.write("TORCH_SECONDS %r\n" % (time.perf_counter() - t0))
]==]

local function have_torch()
  if flags["no-torch"] then return false end
  local p = io.popen("/usr/bin/python3 -c 'import torch' 2>/dev/null && echo yes")
  local ok = p:read("a"):match("yes") ~= nil
  p:close()
  return ok
end

-- Starts the coprocess; returns { version =, epoch = function() -> seconds, close = } or nil.
local function torch_coprocess(threads)
  local base = os.tmpname()
  local script, fifo = base .. ".py", base .. ".fifo"
  local f = assert(io.open(script, "w"))
  f:write(TORCH)
  f:close()
  assert(os.execute("mkfifo " .. fifo), "mkfifo failed")
  local cmd = string.format("OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=%d /usr/bin/python3 %s %d %d %s " ..
    ">/dev/null 2>&1", threads, script, threads, n_cells, fifo)
  local stdin = assert(io.popen(cmd, "w"))
  local reply = assert(io.open(fifo, "r")) -- blocks until the script opens its end
  local function cleanup()
    reply:close()
    os.remove(script)
    os.remove(fifo)
    os.remove(base)
  end
  local first = reply:read("l") or "ERROR no answer"
  local version = first:match("^READY (%S+)")
  if not version then
    io.stderr:write("PyTorch coprocess: " .. first .. "\n")
    stdin:close()
    cleanup()
    return nil
  end
  return {
    version = version,
    epoch = function()
      stdin:write("epoch\n")
      stdin:flush()
      return tonumber((reply:read("l") or ""):match("TORCH_SECONDS%s+(%S+)"))
    end,
    close = function()
      stdin:write("quit\n")
      stdin:close()
      cleanup()
    end,
  }
end

local function median(list)
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

local rows = {}
local torch_ok = have_torch()
local torch_version
for t in tostring(args.threads):gmatch("%d+") do
  local threads = tonumber(t)
  local run = velua_trainer(threads)
  local tp = torch_ok and torch_coprocess(threads) or nil
  if tp then torch_version = tp.version end
  local loss = run() -- warm-up (PyTorch warmed up before READY)
  local vs, ts, ratios = {}, {}, {}
  for r = 1, tonumber(args.epochs) do
    -- alternate who goes first, so a load change hits both sides alike
    local tv, tt
    if r % 2 == 0 and tp then tt = tp.epoch() end
    local t0 = velua.now()
    loss = run()
    tv = velua.now() - t0
    if r % 2 == 1 and tp then tt = tp.epoch() end
    vs[r] = tv
    if tt then ts[#ts + 1] = tt; ratios[#ratios + 1] = tv / tt end
  end
  if tp then tp.close() end
  local row = { threads = threads, velua = math.min(table.unpack(vs)), velua_med = median(vs), loss = loss }
  if #ts > 0 then
    row.torch, row.torch_med = math.min(table.unpack(ts)), median(ts)
    row.ratio_best, row.ratio_med = math.min(table.unpack(ratios)), median(ratios)
  end
  rows[#rows + 1] = row
  io.stderr:write(string.format("threads %d: velua %.3f s/epoch (median %.3f)%s (last batch loss %.1f)\n",
    threads, row.velua, row.velua_med, row.torch and string.format(", torch %.3f (median %.3f), " ..
    "ratio per round best %.2f median %.2f", row.torch, row.torch_med, row.ratio_best, row.ratio_med) or "",
    loss))
end
local trace, live = memory_trace(tonumber(args["mem-epochs"]), args.gc)

local host = io.popen("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"):read("l") or "?"
local nproc = io.popen("nproc"):read("l") or "?"
print(string.format("VAE %d -> %d -> %d, %d cells, batch %d, Adam; %s; %s", n_genes, hidden, latent,
  n_cells, batch, os.date("%Y-%m-%d"), host:gsub("^%s+", "") .. ", " .. nproc .. " cores"))
if flags.markdown then
  print(string.format("| threads | velua s/epoch best (median) | PyTorch %s s/epoch best (median) | " ..
    "velua / PyTorch per round: best, median |", torch_version or ""))
  print("|---:|---:|---:|---:|")
end
for _, r in ipairs(rows) do
  local ts = r.torch and string.format("%.3f (%.3f)", r.torch, r.torch_med) or "n/a"
  local ratio = r.torch and string.format("%.2f, %.2f", r.ratio_best, r.ratio_med) or "n/a"
  if flags.markdown then
    print(string.format("| %d | %.3f (%.3f) | %s | %s |", r.threads, r.velua, r.velua_med, ts, ratio))
  else
    print(string.format("threads %d: velua %.3f (median %.3f) s/epoch, torch %s, ratio best, median %s",
      r.threads, r.velua, r.velua_med, ts, ratio))
  end
end
local lo, hi = math.huge, 0
for e = 5, #trace do lo = math.min(lo, trace[e]); hi = math.max(hi, trace[e]) end
print(string.format("resident memory over %d epochs (%s collector): after epoch 1 %.1f MB, epochs 5-%d " ..
  "between %.1f and %.1f MB", #trace, args.gc, trace[1], #trace, lo, hi))
if #live == 2 then
  print(string.format("Lua heap after a full collection: after epoch 1 %.2f MB, after epoch %d %.2f MB",
    live[1], #trace, live[2]))
end
local marks = {}
local every = math.max(1, #trace // 8)
for e = every, #trace, every do marks[#marks + 1] = string.format("%d: %.1f", e, trace[e]) end
print("resident memory (MB) after epoch " .. table.concat(marks, ", "))
