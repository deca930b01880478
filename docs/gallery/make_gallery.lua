-- Regenerates docs/gallery/overview.{svg,png}, velocity.{svg,png} and, when
-- ../shared/data/pancreas_veloviz/pancreas.h5ad exists beside the repository, pancreas.{svg,png}:
--   build/bin/velua run docs/gallery/make_gallery.lua
-- Everything is seeded, so the output is the same on every run.
local velua = require "velua"
local T, pl, pp, tl = velua.tensor, velua.pl, velua.pp, velua.tl
local dir = (arg and arg[0] or "docs/gallery/make_gallery.lua"):match("^(.*)/") or "."
local ad = velua.datasets.simulate { n_obs = 600, n_vars = 40, seed = 1 }
ad.obsm.X_demo = T.stack({ ad.obs.true_t, ad.layers.true_spliced:select(2, 1) }, 2)
local fig = pl.figure { ncols = 2, panels = 4, title = "velua.pl on simulated data" }
pl.scatter(ad, { basis = "demo", color = "clusters", ax = fig:panel(1), title = "gene 1 vs latent time",
  xlabel = "latent time", ylabel = "spliced (true)" })
pl.scatter(ad, { basis = "demo", color = ad.obs.true_t, ax = fig:panel(2), title = "coloured by latent time",
  xlabel = "latent time", ylabel = "spliced (true)" })
pl.lines({ train = T.linspace(1, 0.1, 50):exp(), valid = T.linspace(1.1, 0.3, 50):exp() },
  { ax = fig:panel(3), title = "loss curves", xlabel = "epoch", ylabel = "loss" })
local genes = {}
for g = 1, 8 do genes[g] = ad.var_names[g] end
local cells = {}
for i = 1, 12 do cells[i] = ad.obs_names[i] end
pl.heatmap(ad.layers.true_spliced:narrow(1, 1, 12):narrow(2, 1, 8), { ax = fig:panel(4),
  title = "true spliced abundance", row_labels = cells, col_labels = genes })
fig:save(dir .. "/overview.svg")
fig:save(dir .. "/overview.png")
print("wrote " .. dir .. "/overview.svg and .png")

-- The common embedding: velua's UMAP when tl.umap is there, else PC 1-2 (projected in 2-d).
local have_umap = package.searchpath("velua.tl.umap", package.path) ~= nil
local function embed(ad)
  if have_umap then
    tl.umap(ad, { seed = 0 })
    return "umap", "UMAP"
  end
  ad.obsm.X_pc12 = ad.obsm.X_pca:narrow(2, 1, 2):contiguous()
  return "pc12", "PC"
end

-- Velocity plots of two conditions (B blocks lineage 2 half-way) on one common 16 x 16 grid, through the
-- whole pipeline: both conditions are preprocessed together (one gene set, one PCA, one kNN
-- graph, one fit of the degradation rates), then split. Each condition's velocities are
-- projected with its own transitions only, so B's field cannot borrow A's continuation.
local sim = velua.datasets.simulate { n_obs = 1000, n_vars = 200, seed = 1, conditions = 2 }
sim = sim:subset(sim.layers.spliced:sum(2):ge(200)) -- drop near-empty cells
sim = pp.filter_and_normalize(sim, { min_shared_counts = 10, n_top_genes = 150 })
pp.pca(sim, { n_comps = 20 })
pp.neighbors(sim, { n_neighbors = 30, n_pcs = 20 })
pp.moments(sim)
tl.velocity(sim)
tl.velocity_graph(sim)
local basis, axis = embed(sim)
local A = sim:subset(sim.obs.condition.codes:eq(1))
local B = sim:subset(sim.obs.condition.codes:eq(2))
for _, d in ipairs { A, B } do tl.velocity_embedding(d, { basis = basis }) end

local GS = 16
local grid = tl.velocity_grid({ A, B }, { basis = basis, grid_size = GS, min_cells = 3 })
local vf = pl.figure { ncols = 2, panels = 8, width = 460, height = 420,
  title = "velocity: condition A | condition B (lineage 2 blocked)" }
local names = { "A", "B" }
local RIGHT = 110 -- legend width, also kept by the colorbar panels so all columns line up
for i, d in ipairs { A, B } do
  local common = { basis = basis, color = "clusters", xlabel = axis .. "1", ylabel = axis .. "2", right = RIGHT }
  local function with(t) for k, val in pairs(common) do t[k] = val end return t end
  -- the second condition reuses the first one's arrow scale, so lengths compare
  pl.velocity_embedding(d, with { ax = vf:panel(i), bounds = grid.bounds, title = names[i] .. ": velocity_embedding",
    scale = i == 2 and vf:panel(1).velocity_scale or nil })
  pl.velocity_embedding_grid(d, with { ax = vf:panel(2 + i), grid = grid.grids[i],
    title = names[i] .. ": velocity_embedding_grid", scale = i == 2 and vf:panel(3).velocity_scale or nil })
  pl.velocity_embedding_stream(d, with { ax = vf:panel(4 + i), grid = grid.grids[i], speed_width = i == 2,
    title = names[i] .. (i == 2 and ": stream, width by speed" or ": velocity_embedding_stream") })
end
-- the cross-condition comparison on the common grid: cosine and log2 speed ratio per bin
local cos, bad = tl.grid_cosine(grid)
local keep = bad:logical_not():reshape(-1):nonzero():reshape(-1)
local gx = grid.x:unsqueeze(1):expand({ GS, GS }):reshape(-1):index(1, keep)
local gy = grid.y:unsqueeze(2):expand({ GS, GS }):reshape(-1):index(1, keep)
local xy = T.stack({ gx, gy }, 2)
local b = grid.bounds
local lims = { xlim = { b[1] - 0.04 * (b[2] - b[1]), b[2] + 0.04 * (b[2] - b[1]) },
  ylim = { b[3] - 0.04 * (b[4] - b[3]), b[4] + 0.04 * (b[4] - b[3]) } }
pl.scatter(xy, { ax = vf:panel(7), color = cos:reshape(-1):index(1, keep), cmap = "diverging", vmin = -1, vmax = 1,
  size = 6, alpha = 1, title = "cos(A, B) per bin (grid_cosine)", xlabel = axis .. "1", ylabel = axis .. "2",
  xlim = lims.xlim, ylim = lims.ylim, right = RIGHT })
local speed = function(g) return g.V:norm(2, 3):reshape(-1):index(1, keep) end
local ratio = (speed(grid.grids[2]) / speed(grid.grids[1])):log() / math.log(2)
pl.scatter(xy, { ax = vf:panel(8), color = ratio, cmap = "diverging", vmin = -2, vmax = 2, size = 6, alpha = 1,
  title = "log2 speed ratio B / A per bin", xlabel = axis .. "1", ylabel = axis .. "2", xlim = lims.xlim,
  ylim = lims.ylim, right = RIGHT })
vf:save(dir .. "/velocity.svg")
vf:save(dir .. "/velocity.png")
print("wrote " .. dir .. "/velocity.svg and .png")

-- Pancreas endocrinogenesis (scVelo's pancreas data, 739 cells subsampled by veloviz), when the
-- shared data are there: scVelo's default workflow, the stream on velua's own embedding.
local path = dir .. "/../../../shared/data/pancreas_veloviz/pancreas.h5ad"
local f = io.open(path, "rb")
if f then
  f:close()
  local ad = velua.read_h5ad(path)
  ad = pp.filter_and_normalize(ad, { min_shared_counts = 20, n_top_genes = 2000 })
  pp.pca(ad)
  pp.neighbors(ad)
  pp.moments(ad)
  tl.velocity(ad)
  tl.velocity_graph(ad)
  local pbasis, paxis = embed(ad)
  tl.velocity_embedding(ad, { basis = pbasis })
  tl.velocity_confidence(ad)
  local pf = pl.figure { ncols = 2, width = 520, height = 420,
    title = "pancreas endocrinogenesis (739 cells): velocity stream and confidence" }
  pl.velocity_embedding_stream(ad, { basis = pbasis, color = "clusters", ax = pf:panel(1),
    min_cells = 3, title = "velocity_embedding_stream", xlabel = paxis .. "1", ylabel = paxis .. "2" })
  pl.scatter(ad, { basis = pbasis, color = "velocity_confidence", ax = pf:panel(2), title = "velocity_confidence",
    xlabel = paxis .. "1", ylabel = paxis .. "2", right = 110 })
  pf:save(dir .. "/pancreas.svg")
  pf:save(dir .. "/pancreas.png")
  print("wrote " .. dir .. "/pancreas.svg and .png")
else
  print("skipped the pancreas figure: " .. path .. " not found")
end
