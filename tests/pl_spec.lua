-- velua.pl: deterministic SVG with real text, categorical legends and colorbars, panels,
-- PNG through rsvg-convert, clear errors.
local velua = require "velua"
local T, pl = velua.tensor, velua.pl

local function small_ad()
  local ad = velua.datasets.simulate { n_obs = 120, n_vars = 10, seed = 4 }
  ad.obsm.X_umap = T.stack({ ad.obs.true_t, ad.layers.true_spliced:select(2, 1) }, 2)
  return ad
end

describe("pl", function()
  it("scatter is deterministic and draws one circle per cell plus a legend", function()
    local ad = small_ad()
    local a = pl.scatter(ad, { basis = "umap", color = "clusters", title = "clusters & <time>" }):svg()
    local b = pl.scatter(ad, { basis = "umap", color = "clusters", title = "clusters & <time>" }):svg()
    assert.are.equal(a, b)
    local _, circles = a:gsub("<circle", "")
    assert.are.equal(120 + #ad.obs.clusters.categories, circles)
    for _, cat in ipairs(ad.obs.clusters.categories) do assert.is_truthy(a:find(">" .. cat .. "<", 1, true)) end
    assert.is_truthy(a:find("clusters &amp; &lt;time&gt;", 1, true))
    assert.is_truthy(a:find(">UMAP1<", 1, true))
  end)

  it("continuous colours get a colorbar; lines and heatmaps draw; panels share one SVG", function()
    local ad = small_ad()
    local fig = pl.figure { ncols = 3 }
    pl.scatter(ad, { basis = "umap", color = ad.obs.true_t, ax = fig:panel(1) })
    pl.lines({ a = { 3, 2, 1 }, b = T.tensor { 1, 2, 4 } }, { ax = fig:panel(2), xlabel = "epoch" })
    pl.heatmap(T.eye(3), { ax = fig:panel(3), row_labels = { "r1", "r2", "r3" } })
    local svg = fig:svg()
    assert.is_truthy(svg:find('width="1260"', 1, true))
    local _, polylines = svg:gsub("<polyline", "")
    assert.are.equal(2, polylines)
    assert.is_truthy(svg:find(">r2<", 1, true))
    assert.is_truthy(svg:find(">epoch<", 1, true))
  end)

  it("nice ticks are round numbers covering the range", function()
    assert.are.same({ 0, 5, 10, 15, 20 }, pl._nice_ticks(0, 20, 5))
    assert.are.same({ 0.2, 0.4, 0.6, 0.8, 1 }, pl._nice_ticks(0.13, 1.02, 5))
  end)

  it("saves SVG and PNG through a temporary name", function()
    local base = os.tmpname()
    local fig = pl.lines(T.tensor { 1, 3, 2 }, { title = "t" })
    fig:save(base .. ".svg")
    local s = assert(io.open(base .. ".svg")):read("a")
    assert.are.equal(fig:svg(), s)
    fig:save(base .. ".png")
    local png = assert(io.open(base .. ".png", "rb")):read(8)
    assert.are.equal("\137PNG\r\n\26\n", png)
    os.remove(base .. ".svg"); os.remove(base .. ".png"); os.remove(base)
    assert.is_false(pcall(fig.save, fig, base .. ".pdf"))
  end)

  it("reports bad input", function()
    local ad = small_ad()
    local ok, e = pcall(pl.scatter, ad, { basis = "tsne" })
    assert.is_false(ok)
    assert.is_truthy(e:find("X_tsne", 1, true), e)
    ok, e = pcall(pl.scatter, ad, { basis = "umap", color = "nope" })
    assert.is_truthy(e:find("no obs column 'nope'", 1, true), e)
    ok, e = pcall(pl.scatter, ad, { basis = "umap", colour = "clusters" })
    assert.is_truthy(e:find("unknown option 'colour'", 1, true), e)
    assert.is_false(pcall(pl.heatmap, T.ones(3)))
  end)
end)
