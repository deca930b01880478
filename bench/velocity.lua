-- Velocity benchmark (issue 5): every velua.tl velocity step on the pancreas data and on
-- simulated data (velua.datasets.simulate, 1000 genes like the oracle's
-- scv.datasets.simulation series) against scVelo 0.3.3's recorded timings on the same
-- machine kind (../shared/oracle/*_seconds.csv, scvelo_timings.csv; scVelo is not installed
-- here, so the reference is the recorded best-of-3). Each step runs `repeats` times on a copy
-- of the preceding state and the best time is kept. Also reports the mean size of the
-- recursive neighbourhoods (pairs per cell of the velocity graph), peak resident memory, and
-- the chain "normalized layers -> embedded velocity" (moments, stochastic velocity, graph,
-- transition matrix, embedding) against scVelo's sum of the same steps.
-- build/bin/velua run bench/velocity.lua [--markdown] [--sizes 1000,5000,20000,100000]
--   [--repeats 3] [--threads N] [--no-pancreas]
local velua = require "velua"
local B = require "bench.common"
local pp, tl = velua.pp, velua.tl

local USAGE = "usage: bench/velocity.lua [--markdown] [--sizes N,N] [--repeats N] [--threads N] [--no-pancreas]"
local markdown, repeats, pancreas = false, 3, true
local sizes = { 1000, 5000, 20000, 100000 }
do
  local a, i = arg or {}, 1
  while i <= #a do
    local v = a[i]
    if v == "--markdown" then markdown = true
    elseif v == "--sizes" then
      i = i + 1
      sizes = {}
      for s in (a[i] or ""):gmatch("[^,]+") do sizes[#sizes + 1] = assert(math.tointeger(tonumber(s)), USAGE) end
    elseif v == "--repeats" then i = i + 1; repeats = assert(math.tointeger(tonumber(a[i])), USAGE)
    elseif v == "--threads" then i = i + 1; velua.set_num_threads(assert(math.tointeger(tonumber(a[i])), USAGE))
    elseif v == "--no-pancreas" then pancreas = false
    elseif v == "--help" or v == "-h" then print(USAGE) os.exit(0)
    else io.stderr:write("bench/velocity.lua: unknown argument '", v, "'\n", USAGE, "\n") os.exit(2) end
    i = i + 1
  end
end

local REF = B.load_reference()
local rows = {}
local function report(ds, step, secs, ref, note)
  rows[#rows + 1] = { ds, step, secs, ref, note or "" }
  io.stderr:write(string.format("%-10s %-34s %9.4f s  scVelo %-10s %-8s %s\n", ds, step, secs,
    ref and string.format("%.4f s", ref) or "-", ref and string.format("%.1fx", ref / secs) or "-",
    note or ""))
end

-- The velocity steps from normalised layers with a neighbour graph and a 2-d embedding.
-- names: the scVelo step names in the reference files.
local function run_steps(ds, ad, names)
  local ref = REF[ds] or {}
  local function r(key) return key and ref[key] end
  local s
  local chain, chain_ref = 0, 0
  local function add_chain(sec, rf)
    chain = chain + sec
    chain_ref = rf and chain_ref and chain_ref + rf or nil
  end
  s, ad = B.best_of(repeats, ad, function(c) return pp.moments(c) end)
  report(ds, "moments", s, r(names.moments)); add_chain(s, r(names.moments))
  s = B.best_of(repeats, ad, function(c) return tl.velocity(c, { mode = "deterministic", vkey = "velocity_det" }) end)
  report(ds, "velocity(deterministic)", s, r(names.det))
  s, ad = B.best_of(repeats, ad, function(c) return tl.velocity(c, { mode = "stochastic" }) end)
  report(ds, "velocity(stochastic)", s, r(names.sto)); add_chain(s, r(names.sto))
  local _, peak0 = B.rss()
  s, ad = B.best_of(repeats, ad, function(c) return tl.velocity_graph(c) end)
  local n = ad.n_obs
  local pairs_per_cell = (ad.obsp.velocity_graph:nnz() + ad.obsp.velocity_graph_neg:nnz()) / n
  local ngenes = 0
  for _, b in ipairs(ad.var.velocity_genes:totable()) do if b then ngenes = ngenes + 1 end end
  report(ds, "velocity_graph (sqrt, stochastic)", s, r(names.graph),
    string.format("%.0f pairs/cell, %d genes", pairs_per_cell, ngenes)); add_chain(s, r(names.graph))
  if names.graph_det then
    local c2 = B.copy(ad)
    tl.velocity(c2, { mode = "deterministic", vkey = "velocity_det" })
    s = B.best_of(repeats, c2, function(c) return tl.velocity_graph(c, { vkey = "velocity_det" }) end)
    report(ds, "velocity_graph (deterministic)", s, r(names.graph_det))
  end
  s = B.best_of(repeats, ad, function(c) return tl.transition_matrix(c) end)
  report(ds, "transition_matrix", s, r(names.trans)); add_chain(s, r(names.trans))
  s, ad = B.best_of(repeats, ad, function(c) return tl.velocity_embedding(c, { basis = "umap" }) end)
  report(ds, "velocity_embedding(umap)", s, r(names.emb)); add_chain(s, r(names.emb))
  s = B.best_of(repeats, ad, function(c) return tl.velocity_confidence(c) end)
  report(ds, "velocity_confidence(+transition)", s, r(names.conf))
  report(ds, "chain: normalized -> embedded", chain, chain_ref)
  local _, peak = B.rss()
  io.stderr:write(string.format("%-10s peak RSS %.0f MiB (before the graph %.0f MiB)\n", ds, peak, peak0))
  rows[#rows + 1] = { ds, "peak RSS (MiB)", peak, nil, "" }
  return ad
end

if pancreas then
  local raw = B.helpers.shared_path("data/pancreas_veloviz/pancreas.h5ad")
  local ora = B.helpers.shared_path("oracle/pancreas_scvelo.h5ad")
  if raw and ora then
    local ad = velua.read_h5ad(raw)
    ad = pp.filter_and_normalize(ad, { min_shared_counts = 20, n_top_genes = 2000 })
    pp.pca(ad, { n_comps = 30 })
    pp.neighbors(ad, { n_neighbors = 30, n_pcs = 30 })
    ad.obsm.X_umap = velua.read_h5ad(ora).obsm.X_umap
    run_steps("pancreas", ad, { moments = "moments", det = "velocity(deterministic)",
      sto = "velocity(stochastic)", graph = "velocity_graph[velocity](n_jobs=1)",
      graph_det = "velocity_graph[velocity_det](n_jobs=1)", trans = "transition_matrix[velocity]",
      emb = "velocity_embedding[velocity,umap]", conf = "velocity_confidence[velocity]" })
  else
    io.stderr:write("skipping pancreas: ../shared not found\n")
  end
end

for _, n in ipairs(sizes) do
  local ds = "sim" .. n
  local t0 = velua.now()
  local ad = velua.datasets.simulate { n_obs = n, n_vars = 1000, seed = 0 }
  -- cells with almost no counts (early progenitors) become identical after normalisation; at
  -- 100k cells some have 29 zero-distance neighbours, an empty row of obsp.distances that
  -- scVelo (and velua) refuse. Drop cells with fewer than 50 spliced counts, as one would.
  local keep = {}
  for i, c in ipairs(ad.layers.spliced:sum(2):totable()) do if c >= 50 then keep[#keep + 1] = i end end
  if #keep < n then ad = ad:subset(keep, nil) end
  ad = pp.filter_and_normalize(ad, { min_shared_counts = 20, n_top_genes = 2000 })
  pp.pca(ad, { n_comps = 30 })
  pp.neighbors(ad, { n_neighbors = 30, n_pcs = 30 })
  if pcall(function() return tl.umap end) and n <= 20000 then
    tl.umap(ad, { seed = 0 })
  else
    ad.obsm.X_umap = ad.obsm.X_pca:narrow(2, 1, 2):contiguous() -- a 2-d stand-in basis
  end
  io.stderr:write(string.format("%s: simulated and preprocessed in %.1f s\n", ds, velua.now() - t0))
  run_steps(ds, ad, { moments = "moments", det = "velocity(deterministic)", sto = "velocity(stochastic)",
    graph = "velocity_graph(n_jobs=1)", trans = "transition_matrix", emb = "velocity_embedding(umap)",
    conf = "velocity_confidence(+transition)" })
end

if markdown then
  print(string.format("Measured %s on %s.\n", os.date("!%Y-%m-%d"), B.machine()))
  print("| data | step | velua (s) | scVelo 0.3.3 (s) | speed-up | note |")
  print("|---|---|---|---|---|---|")
  for _, r in ipairs(rows) do
    if r[2] == "peak RSS (MiB)" then
      print(string.format("| %s | peak RSS | %.0f MiB | | | |", r[1], r[3]))
    else
      print(string.format("| %s | %s | %.4f | %s | %s | %s |", r[1], r[2], r[3],
        r[4] and string.format("%.4f", r[4]) or "-", r[4] and string.format("%.1f×", r[4] / r[3]) or "-", r[5]))
    end
  end
end
