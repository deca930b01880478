-- The built-in demo (`velua demo [outdir]`): the RNA-velocity workflow on simulated data, no
-- files needed. Simulates two lineages of splicing kinetics (velua.datasets.simulate, seeded),
-- preprocesses them (filter_and_normalize, pca, neighbors, moments), fits stochastic
-- velocities, builds the velocity graph, lays out a UMAP, projects the velocities onto it and
-- draws a stream plot coloured by cell type, then checks the result against the simulator's
-- ground truth. Writes report.txt, the plots (SVG and PNG when rsvg-convert is present) and
-- demo.h5ad into outdir. Everything but the timings is determined by the seed.
local velua = require "velua"
local T = velua.tensor

local M = {}

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Write through a temporary file and rename, so a crash never leaves a half-written report.
local function write_atomic(dir, name, text)
  local path = dir .. "/" .. name
  local f = assert(io.open(path .. ".tmp", "w"))
  assert(f:write(text))
  assert(f:close())
  assert(os.rename(path .. ".tmp", path))
  return path
end

local function have_rsvg()
  local ok = os.execute("command -v rsvg-convert >/dev/null 2>&1")
  return ok == true or ok == 0
end

-- mean over cells of the cosine between rows of a and b ([n, g] f32/f64)
local function mean_row_cosine(a, b)
  a, b = a:to("f64"), b:to("f64")
  local c = (a * b):sum(2) / (a:norm(2, 2) * b:norm(2, 2) + 1e-300)
  return c:mean():item(), c
end

-- opts: outdir (default "velua-demo"), seed (default 0), n_obs (default 3000), n_vars (200).
function M.run(opts)
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "outdir" and k ~= "seed" and k ~= "n_obs" and k ~= "n_vars" then
      error("demo: unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  local outdir, seed = opts.outdir or "velua-demo", opts.seed or 0
  if not os.execute("mkdir -p " .. shell_quote(outdir)) then error("demo: cannot create directory " .. outdir, 0) end
  local pp, tl, pl = velua.pp, velua.tl, velua.pl
  local lines = {}
  local function say(fmt, ...)
    local s = string.format(fmt, ...)
    print(s)
    lines[#lines + 1] = s
  end
  local t_all = velua.now()
  local function step(name, fn)
    local t0 = velua.now()
    local r = fn()
    say("  %-44s %7.2f s", name, velua.now() - t0)
    return r
  end

  say("velua %s on %s, %d threads, seed %d", velua.version, _VERSION, velua.get_num_threads(), seed)
  local n_obs, n_vars = opts.n_obs or 3000, opts.n_vars or 200
  local ad = step(string.format("simulate %d cells x %d genes, 2 lineages", n_obs, n_vars), function()
    return velua.datasets.simulate { n_obs = n_obs, n_vars = n_vars, lineages = 2, seed = seed }
  end)
  ad = step("pp.filter_and_normalize", function()
    return pp.filter_and_normalize(ad, { min_shared_counts = 20, n_top_genes = 2000 })
  end)
  step("pp.pca (30 components)", function() return pp.pca(ad, { n_comps = 30 }) end)
  step("pp.neighbors (k = 30)", function() return pp.neighbors(ad, { n_neighbors = 30, n_pcs = 30 }) end)
  step("pp.moments", function() return pp.moments(ad) end)
  step("tl.velocity (stochastic)", function() return tl.velocity(ad) end)
  step("tl.velocity_graph", function() return tl.velocity_graph(ad) end)
  step("tl.umap", function() return tl.umap(ad, { seed = seed }) end)
  step("tl.velocity_embedding (umap)", function() return tl.velocity_embedding(ad, { basis = "umap" }) end)
  step("tl.velocity_confidence", function() return tl.velocity_confidence(ad) end)

  -- against the simulator's ground truth, on velocity genes
  local vg = {}
  for j, b in ipairs(ad.var.velocity_genes:totable()) do if b then vg[#vg + 1] = j end end
  local cos = mean_row_cosine(ad.layers.velocity:index(2, vg), ad.layers.true_velocity:index(2, vg))
  local gam_est, gam_true = ad.var.velocity_gamma:to("f64"):index(1, vg), ad.var.true_gamma:to("f64"):index(1, vg)
  local function ranks(v)
    local t = v:totable()
    local idx = {}
    for i = 1, #t do idx[i] = i end
    table.sort(idx, function(a, b) return t[a] < t[b] end)
    local r = {}
    for k, i in ipairs(idx) do r[i] = k end
    return T.tensor(r, { dtype = "f64" })
  end
  local ra, rb = ranks(gam_est), ranks(gam_true)
  ra, rb = ra - ra:mean(), rb - rb:mean()
  local spearman = (ra * rb):sum():item() / math.sqrt((ra * ra):sum():item() * (rb * rb):sum():item())

  local plots = {}
  step("pl.velocity_embedding_stream + scatter", function()
    local fig = pl.figure { ncols = 2, width = 620, height = 460 }
    pl.velocity_embedding_stream(ad, { basis = "umap", color = "clusters", ax = fig:panel(1),
      title = "velocity stream (umap)" })
    pl.scatter(ad, { basis = "umap", color = "velocity_confidence", ax = fig:panel(2),
      title = "velocity confidence" })
    plots[#plots + 1] = fig:save(outdir .. "/velocity_stream.svg")
    if have_rsvg() then plots[#plots + 1] = fig:save(outdir .. "/velocity_stream.png") end
  end)
  step("write demo.h5ad", function() return ad:write_h5ad(outdir .. "/demo.h5ad") end)

  local conf = ad.obs.velocity_confidence:to("f64")
  say("")
  say("cells x genes after filtering: %d x %d; velocity genes: %d", ad.n_obs, ad.n_vars, #vg)
  say("velocity graph: %d positive, %d negative correlations (%.0f per cell)",
    ad.obsp.velocity_graph:nnz(), ad.obsp.velocity_graph_neg:nnz(),
    (ad.obsp.velocity_graph:nnz() + ad.obsp.velocity_graph_neg:nnz()) / ad.n_obs)
  say("velocity confidence: mean %.3f, sd %.3f", conf:mean():item(), conf:std():item())
  say("ground truth: mean cosine(velocity, true velocity) over velocity genes %.3f", cos)
  say("ground truth: Spearman correlation of fitted and true degradation rates gamma %.3f", spearman)
  say("total %.1f s; plots: %s", velua.now() - t_all, table.concat(plots, ", "))
  local path = write_atomic(outdir, "report.txt", table.concat(lines, "\n") .. "\n")
  print("report written to " .. path)
  return path
end

return M
