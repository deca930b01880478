-- Regenerates docs/gallery/overview.{svg,png} and velocity.{svg,png}:
--   build/bin/velua run docs/gallery/make_gallery.lua
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

-- Velocity plots of two conditions (B blocks lineage 2 half-way) on one common grid.
-- The embedding is PC 1-2 of the preprocessed data. Until tl.velocity_embedding is used here,
-- the true velocity is carried into it directly: d/dt E[log1p(c N)] for N ~ Poisson(lambda)
-- is E[log1p(c (N+1)) - log1p(c N)] dlambda/dt (estimated from the cell's own count), minus
-- the change of the library-size factor c; then smoothed over the kNN graph as moments are.
local sim = velua.datasets.simulate { n_obs = 1000, n_vars = 100, seed = 1, conditions = 2 }
sim = sim:subset(sim.layers.spliced:sum(2):ge(200)) -- drop near-empty cells
sim.obs.true_dsize = sim.layers.true_velocity:sum(2) * sim.uns.simulation.scale
sim = pp.filter_and_normalize(sim, { min_shared_counts = 5, n_top_genes = 60 })
pp.pca(sim, { n_comps = 10 })
pp.neighbors(sim, { n_neighbors = 30, n_pcs = 10 })
local size = sim.obs.initial_size:to("f64"):clamp(1)
local sorted = size:totable()
table.sort(sorted)
local c = (sorted[(#sorted + 1) // 2] / size):unsqueeze(2)
local X = sim.X:to("f64")
local dX = ((X:expm1() + c):log1p() - X) * sim.uns.simulation.scale * sim.layers.true_velocity:to("f64")
  - (-(-X):exp() + 1) * (sim.obs.true_dsize:to("f64") / size):unsqueeze(2)
local v = dX:matmul(sim.varm.PCs:to("f64")):narrow(2, 1, 2):to("f32"):contiguous()
sim.obsm.X_umap = sim.obsm.X_pca:narrow(2, 1, 2):contiguous()
sim.obsm.velocity_umap = pp.moments_operator(sim):matmul(v)
local A = sim:subset(sim.obs.condition.codes:eq(1))
local B = sim:subset(sim.obs.condition.codes:eq(2))

local grid = tl.velocity_grid({ A, B }, { grid_size = 20, min_cells = 3 })
local vf = pl.figure { ncols = 2, panels = 8, title = "velocity: condition A | condition B (lineage 2 blocked)" }
local names = { "A", "B" }
for i, d in ipairs { A, B } do
  local common = { color = "clusters", xlabel = "PC1", ylabel = "PC2" }
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
local cos, bad = require("velua.tl.grid").grid_cosine(grid)
local keep = bad:logical_not():reshape(-1):nonzero():reshape(-1)
local gx = grid.x:unsqueeze(1):expand({ 20, 20 }):reshape(-1):index(1, keep)
local gy = grid.y:unsqueeze(2):expand({ 20, 20 }):reshape(-1):index(1, keep)
local xy = T.stack({ gx, gy }, 2)
local b = grid.bounds
local lims = { xlim = { b[1] - 0.04 * (b[2] - b[1]), b[2] + 0.04 * (b[2] - b[1]) },
  ylim = { b[3] - 0.04 * (b[4] - b[3]), b[4] + 0.04 * (b[4] - b[3]) } }
pl.scatter(xy, { ax = vf:panel(7), color = cos:reshape(-1):index(1, keep), cmap = "diverging", vmin = -1, vmax = 1,
  size = 6, alpha = 1, title = "cos(A, B) per bin (grid_cosine)", xlabel = "PC1", ylabel = "PC2",
  xlim = lims.xlim, ylim = lims.ylim })
local speed = function(g) return g.V:norm(2, 3):reshape(-1):index(1, keep) end
local ratio = (speed(grid.grids[2]) / speed(grid.grids[1])):log() / math.log(2)
pl.scatter(xy, { ax = vf:panel(8), color = ratio, cmap = "diverging", vmin = -2, vmax = 2, size = 6, alpha = 1,
  title = "log2 speed ratio B / A per bin", xlabel = "PC1", ylabel = "PC2", xlim = lims.xlim, ylim = lims.ylim })
vf:save(dir .. "/velocity.svg")
vf:save(dir .. "/velocity.png")
print("wrote " .. dir .. "/velocity.svg and .png")
