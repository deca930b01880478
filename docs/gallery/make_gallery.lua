-- Regenerates docs/gallery/overview.{svg,png}: build/bin/velua run docs/gallery/make_gallery.lua
local velua = require "velua"
local T, pl = velua.tensor, velua.pl
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
