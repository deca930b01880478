-- Evaluation of tl.deepvelo against scVelo's stochastic velocity (SPEC sections 3-4):
-- consistency (overall and cell-type-wise, mean +- sd, Mann-Whitney U), the per-cell cosine
-- between the two methods, and the training losses, on the pancreas oracle (scVelo's
-- velocity is the oracle's layers.velocity) for several seeds; and on simulated data with
-- known truth, the cosine between predicted and true velocity for DeepVelo and for velua's
-- tl.velocity (scVelo's stochastic model), plus their consistency. Numbers for docs/deepvelo.md.
--
--   build/bin/velua run bench/deepvelo_eval.lua [--what pancreas,sim] [--seeds 0,1,2]
--                                               [--epochs 100] [--sim-cells 2000] [--sim-genes 300]
local velua = require "velua"
local T = velua.tensor
local tl, pp = velua.tl, velua.pp

local args = { what = "pancreas,sim", seeds = "0,1,2", epochs = "100", ["sim-cells"] = "2000",
  ["sim-genes"] = "300" }
do
  local i = 1
  while i <= #arg do
    local name = arg[i]:match("^%-%-(.+)$")
    if not name or args[name] == nil then error("unexpected argument " .. arg[i]) end
    args[name] = arg[i + 1]
    i = i + 2
  end
end
local epochs = math.tointeger(tonumber(args.epochs))
local seeds = {}
for s in args.seeds:gmatch("[^,]+") do seeds[#seeds + 1] = math.tointeger(tonumber(s)) end

local function shared(rel)
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local root = src:match("^(.*)/bench/[^/]*$") or "."
  return root .. "/../shared/" .. rel
end

local function msd(t)
  local x = t:to("f64")
  local ok = x:isnan():logical_not()
  x = x:index(1, ok:nonzero():reshape({ -1 }))
  return x:mean():item(), x:std():item()
end

local function pm(t) return string.format("%.3f ± %.3f", msd(t)) end

-- per-cell cosine of two velocity layers over the columns in cols (1-based list)
local function cosine(a, b, cols)
  local idx = T.tensor(cols, { dtype = "i64" })
  a, b = a:to("f64"):index(2, idx), b:to("f64"):index(2, idx)
  return (a * b):sum(2) / (a:norm(2, 2) * b:norm(2, 2))
end

local function mwu_str(a, b)
  local u, p, auc = tl.mann_whitney_u(a, b)
  return string.format("U=%.0f (AUC %.3f) p=%.2g", u, auc, p)
end

local function true_cols(mask)
  local cols = {}
  for j, v in ipairs(T.is_tensor(mask) and mask:totable() or mask) do
    if v == true or v == 1 then cols[#cols + 1] = j end
  end
  return cols
end

local function all_cols(n)
  local c = {}
  for j = 1, n do c[j] = j end
  return c
end

-- consistency of layers[vkey] on velocity genes ("vel") or all genes ("all")
local function scores(ad, vkey, genes, groupby)
  return tl.consistency(ad, { vkey = vkey, groupby = groupby, only_velocity_genes = genes == "vel",
    genes_key = genes == "vel" and "velocity_genes" or nil, key_added = "c_" .. vkey .. "_" .. genes })
end

local function pancreas()
  local ad = velua.read_h5ad(shared("oracle/pancreas_scvelo.h5ad"))
  print(string.format("\n## pancreas (%d cells x %d genes), %d epochs", ad.n_obs, ad.n_vars, epochs))
  local sv = {}
  for _, genes in ipairs { "vel", "all" } do
    local o, c = scores(ad, "velocity", genes, "clusters")
    sv[genes] = { o = o, c = c }
  end
  print(string.format("scVelo stochastic (oracle layers.velocity): vel-genes overall %s, celltype %s; " ..
    "all genes overall %s, celltype %s", pm(sv.vel.o), pm(sv.vel.c), pm(sv.all.o), pm(sv.all.c)))
  print("\n| seed | DV overall vel-genes | DV celltype vel-genes | DV overall all genes | DV celltype all genes | cos(DV, scVelo) vel-genes | loss ep1 (mle, P) | ep10 | ep50 | ep100 | eval (mle, P) | s/epoch |")
  print("|---|---|---|---|---|---|---|---|---|---|---|---|")
  local mwu_rows = {}
  local vel_cols = true_cols(ad.var.velocity_genes)
  for _, seed in ipairs(seeds) do
    local t0 = velua.now()
    tl.deepvelo(ad, { epochs = epochs, seed = seed, vkey = "velocity_dv" })
    local secs = (velua.now() - t0) / epochs
    local r = ad.uns.deepvelo
    local L, mle, P = r.loss:totable(), r.mle:totable(), r.direction:totable()
    local dvs = {}
    for _, genes in ipairs { "vel", "all" } do
      local o, c = scores(ad, "velocity_dv", genes, "clusters")
      dvs[genes] = { o = o, c = c }
    end
    local cos = cosine(ad.layers.velocity_dv, ad.layers.velocity, vel_cols)
    local function at(e) return e <= #L and string.format("%.1f", L[e]) or "-" end
    print(string.format("| %d | %s | %s | %s | %s | %s | %.1f (%.2f, %.4f) | %s | %s | %s | %.1f (%.2f, %.4f) | %.3f |",
      seed, pm(dvs.vel.o), pm(dvs.vel.c), pm(dvs.all.o), pm(dvs.all.c), pm(cos), L[1], mle[1], P[1],
      at(10), at(50), at(100), r.eval_loss, r.eval_mle, r.eval_direction, secs))
    mwu_rows[#mwu_rows + 1] = string.format("| %d | %s | %s | %s | %s | %s | %s |", seed,
      mwu_str(dvs.vel.o, sv.vel.o), mwu_str(dvs.vel.c, sv.vel.c), mwu_str(dvs.all.o, sv.all.o),
      mwu_str(dvs.all.c, sv.all.c), mwu_str(dvs.all.o, sv.vel.o), mwu_str(dvs.all.c, sv.vel.c))
  end
  print("\nMann-Whitney U, DeepVelo vs scVelo per-cell consistency (two-sided; AUC > 0.5: DeepVelo higher)\n")
  print("| seed | overall vel-genes | celltype vel-genes | overall all genes | celltype all genes | " ..
    "overall DV all vs scVelo vel-genes | celltype DV all vs scVelo vel-genes |")
  print("|---|---|---|---|---|---|---|")
  for _, row in ipairs(mwu_rows) do print(row) end
end

local function simulated()
  local n, g = math.tointeger(tonumber(args["sim-cells"])), math.tointeger(tonumber(args["sim-genes"]))
  local ad = velua.datasets.simulate { n_obs = n, n_vars = g, seed = 0 }
  print(string.format("\n## simulator (%d cells x %d genes, 2 lineages, Poisson noise, seed 0), %d epochs",
    n, g, epochs))
  pp.filter_and_normalize(ad, { min_shared_counts = 20, n_top_genes = 2000 })
  pp.pca(ad)
  pp.neighbors(ad)
  pp.moments(ad)
  tl.velocity(ad, { mode = "stochastic" })
  local vel_cols = true_cols(ad.var.velocity_genes)
  local cols = all_cols(ad.n_vars)
  print(string.format("after filtering: %d genes, %d velocity genes (scVelo's stochastic model)",
    ad.n_vars, #vel_cols))
  local truth = ad.layers.true_velocity
  local sv_cos = cosine(ad.layers.velocity, truth, vel_cols)
  local sv = {}
  for _, genes in ipairs { "vel" } do
    local o, c = scores(ad, "velocity", genes, "clusters")
    sv[genes] = { o = o, c = c }
  end
  print(string.format("scVelo (tl.velocity): cos to truth on velocity genes %s; consistency overall %s, celltype %s",
    pm(sv_cos), pm(sv.vel.o), pm(sv.vel.c)))
  print("\n| seed | cos(DV, truth) vel-genes | cos(DV, truth) all genes | cos(scVelo, truth) vel-genes | DV overall | DV celltype | MWU cos DV vs scVelo | MWU overall | MWU celltype |")
  print("|---|---|---|---|---|---|---|---|---|")
  for _, seed in ipairs(seeds) do
    tl.deepvelo(ad, { epochs = epochs, seed = seed, vkey = "velocity_dv" })
    local c_vel = cosine(ad.layers.velocity_dv, truth, vel_cols)
    local c_all = cosine(ad.layers.velocity_dv, truth, cols)
    local o, c = scores(ad, "velocity_dv", "vel", "clusters")
    print(string.format("| %d | %s | %s | %s | %s | %s | %s | %s | %s |", seed, pm(c_vel), pm(c_all),
      pm(sv_cos), pm(o), pm(c), mwu_str(c_vel, sv_cos), mwu_str(o, sv.vel.o), mwu_str(c, sv.vel.c)))
  end
end

print(string.format("velua DeepVelo evaluation, %s", os.date("%Y-%m-%d %H:%M")))
for what in args.what:gmatch("[^,]+") do
  if what == "pancreas" then pancreas()
  elseif what == "sim" then simulated()
  else error("unknown --what " .. what) end
end
