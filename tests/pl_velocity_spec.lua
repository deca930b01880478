-- tl.velocity_grid / grid_cosine and the velocity plots: bin means against a brute-force
-- loop, one common grid for several data sets, streamlines on fields with known solutions,
-- deterministic SVG, PNG export, errors, and a run on simulated data.
local velua = require "velua"
local T, pl, tl = velua.tensor, velua.pl, velua.tl
local grid = require "velua.tl.grid"

local function make_ad(pos, vel, extra)
  local obsm = { X_umap = pos, velocity_umap = vel }
  for k, v in pairs(extra or {}) do obsm[k] = v end
  return velua.AnnData { n_obs = pos:size(1), obsm = obsm }
end

local function random_ad(n, seed, shift)
  local gen = T.generator(seed)
  local pos = T.rand({ n, 2 }, { gen = gen, dtype = "f64" }) * 4 - 2 + (shift or 0)
  local vel = T.randn({ n, 3 }, { gen = gen, dtype = "f64" })
  return make_ad(pos, vel), pos:totable(), vel:totable()
end

-- bins by search over the edges (no floor formula), sums in plain Lua
local function brute(pos, vel, b, gs, min_cells)
  local function bin(v, lo, hi)
    local k = 0
    for j = 1, gs - 1 do if v >= lo + j * (hi - lo) / gs then k = j end end
    return k
  end
  local cnt, sx, sy = {}, {}, {}
  for r = 1, gs do cnt[r], sx[r], sy[r] = {}, {}, {}
    for c = 1, gs do cnt[r][c], sx[r][c], sy[r][c] = 0, 0, 0 end
  end
  for i = 1, #pos do
    local x, y = pos[i][1], pos[i][2]
    if x >= b[1] and x <= b[2] and y >= b[3] and y <= b[4] then
      local r, c = bin(y, b[3], b[4]) + 1, bin(x, b[1], b[2]) + 1
      cnt[r][c] = cnt[r][c] + 1
      sx[r][c], sy[r][c] = sx[r][c] + vel[i][1], sy[r][c] + vel[i][2]
    end
  end
  return cnt, sx, sy
end

local function assert_grid_matches(g, pos, vel, b, gs, min_cells)
  local cnt, sx, sy = brute(pos, vel, b, gs, min_cells)
  local count, mask, V = g.count:totable(), g.mask:totable(), g.V:totable()
  for r = 1, gs do
    for c = 1, gs do
      assert.are.equal(cnt[r][c], count[r][c])
      assert.are.equal(cnt[r][c] < min_cells, mask[r][c])
      if cnt[r][c] >= min_cells then
        assert.is_true(math.abs(V[r][c][1] - sx[r][c] / cnt[r][c]) < 1e-12)
        assert.is_true(math.abs(V[r][c][2] - sy[r][c] / cnt[r][c]) < 1e-12)
      else
        assert.is_true(V[r][c][1] ~= V[r][c][1], "masked bins hold NaN")
      end
    end
  end
end

-- a grid {x, y, V, mask} of the field f over [-1, 1]^2 sampled at the bin centres
local function field_grid(gs, f, masked)
  local xs, V, M = {}, {}, {}
  for k = 1, gs do xs[k] = -1 + (k - 0.5) * 2 / gs end
  for r = 1, gs do
    V[r], M[r] = {}, {}
    for c = 1, gs do
      local u, v = f(xs[c], xs[r])
      V[r][c] = { u, v }
      M[r][c] = masked and masked(xs[c], xs[r]) or false
    end
  end
  return { x = T.tensor(xs, { dtype = "f64" }), y = T.tensor(xs, { dtype = "f64" }),
    V = T.tensor(V, { dtype = "f64" }), mask = T.tensor(M), bounds = { -1, 1, -1, 1 } }
end

-- the simulator's two conditions in a PCA, with the true velocity carried into it:
-- d/dt E[log1p(c N)] for N ~ Poisson(lambda) is E[log1p(c (N+1)) - log1p(c N)] dlambda/dt,
-- estimated from the cell's own count, minus the change of the library-size factor c
local function simulated()
  local pp = velua.pp
  local ad = velua.datasets.simulate { n_obs = 900, n_vars = 60, seed = 2, conditions = 2 }
  ad = ad:subset(ad.layers.spliced:sum(2):ge(200))
  ad.obs.true_dsize = ad.layers.true_velocity:sum(2) * ad.uns.simulation.scale
  ad = pp.filter_and_normalize(ad, { min_shared_counts = 5, n_top_genes = 40 })
  pp.pca(ad, { n_comps = 10 })
  pp.neighbors(ad, { n_neighbors = 20, n_pcs = 10 })
  local size = ad.obs.initial_size:to("f64"):clamp(1)
  local sorted = size:totable()
  table.sort(sorted)
  local c = (sorted[(#sorted + 1) // 2] / size):unsqueeze(2)
  local X = ad.X:to("f64")
  local dX = ((X:expm1() + c):log1p() - X) * ad.uns.simulation.scale * ad.layers.true_velocity:to("f64")
    - (-(-X):exp() + 1) * (ad.obs.true_dsize:to("f64") / size):unsqueeze(2)
  local v = dX:matmul(ad.varm.PCs:to("f64")):narrow(2, 1, 2):to("f32"):contiguous()
  ad.obsm.X_umap = ad.obsm.X_pca:narrow(2, 1, 2):contiguous()
  ad.obsm.velocity_umap = pp.moments_operator(ad):matmul(v)
  return ad:subset(ad.obs.condition.codes:eq(1)), ad:subset(ad.obs.condition.codes:eq(2))
end

describe("tl.velocity_grid", function()
  it("bin means, counts and mask equal a brute-force loop", function()
    local ad, pos, vel = random_ad(300, 1)
    local g = tl.velocity_grid(ad, { grid_size = 7, min_cells = 4 })
    local b = g.bounds
    local lo, hi = math.huge, -math.huge
    for i = 1, #pos do lo, hi = math.min(lo, pos[i][1]), math.max(hi, pos[i][1]) end
    assert.are.equal(lo, b[1]); assert.are.equal(hi, b[2])
    assert_grid_matches(g, pos, vel, b, 7, 4)
    assert.are.equal(300, g.count:sum():item())
    assert.are.same({ 7, 7, 2 }, g.V:shape())
    assert.are.equal("f64", g.V:dtype()); assert.are.equal("i64", g.count:dtype())
    assert.are.equal("bool", g.mask:dtype())
    -- centres: the middle of each bin
    local dx = (b[2] - b[1]) / 7
    assert.is_true(math.abs(g.x:get(1) - (b[1] + dx / 2)) < 1e-12)
    assert.is_true(math.abs(g.x:get(7) - (b[2] - dx / 2)) < 1e-12)
    assert.are.equal(g.grids[1].V, g.V)
  end)

  it("one common grid over the union of two data sets", function()
    local a, pa, va = random_ad(200, 2)
    local b, pb, vb = random_ad(150, 3, 1.5)
    local g = tl.velocity_grid({ a, b }, { grid_size = 5, min_cells = 2 })
    assert.are.equal(2, #g.grids)
    assert.are.equal(g.grids[1].bounds, g.grids[2].bounds)
    local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
    for _, p in ipairs { pa, pb } do
      for i = 1, #p do
        xmin, xmax = math.min(xmin, p[i][1]), math.max(xmax, p[i][1])
        ymin, ymax = math.min(ymin, p[i][2]), math.max(ymax, p[i][2])
      end
    end
    assert.are.same({ xmin, xmax, ymin, ymax }, g.bounds)
    assert.is_nil(g.V)
    assert_grid_matches(g.grids[1], pa, va, g.bounds, 5, 2)
    assert_grid_matches(g.grids[2], pb, vb, g.bounds, 5, 2)
    -- the same grid again from bounds=
    local again = tl.velocity_grid(b, { grid_size = 5, min_cells = 2, bounds = g.bounds })
    assert.are.same(g.grids[2].count:totable(), again.count:totable())
    -- cells outside given bounds are left out and counted
    local small = tl.velocity_grid(b, { grid_size = 5, bounds = { 0, 1, 0, 1 } })
    local inside = 0
    for i = 1, #pb do
      if pb[i][1] >= 0 and pb[i][1] <= 1 and pb[i][2] >= 0 and pb[i][2] <= 1 then inside = inside + 1 end
    end
    assert.are.equal(inside, small.n_cells)
    assert.are.equal(150 - inside, small.n_outside)
    assert.are.equal(inside, small.count:sum():item())
  end)

  it("grid_cosine: 1 with itself, -1 reversed, 0 turned by 90 degrees, NaN where masked", function()
    local ad = random_ad(400, 4)
    local g = tl.velocity_grid(ad, { grid_size = 6, min_cells = 12 })
    local cos, bad = grid.grid_cosine(g, g)
    local c, m, gm = cos:totable(), bad:totable(), g.mask:totable()
    local n_valid = 0
    for r = 1, 6 do
      for k = 1, 6 do
        assert.are.equal(gm[r][k], m[r][k])
        if gm[r][k] then assert.is_true(c[r][k] ~= c[r][k]) else
          n_valid = n_valid + 1
          assert.is_true(math.abs(c[r][k] - 1) < 1e-12)
        end
      end
    end
    assert.is_true(n_valid > 0 and n_valid < 36, "some bins masked, some not")
    local neg = { V = -g.V, mask = g.mask, bounds = g.bounds }
    local turned = { V = T.stack({ -g.V:select(3, 2), g.V:select(3, 1) }, 3), mask = g.mask, bounds = g.bounds }
    local cn, ct = grid.grid_cosine(g, neg), grid.grid_cosine(g, turned)
    for r = 1, 6 do
      for k = 1, 6 do
        if not gm[r][k] then
          assert.is_true(math.abs(cn:get(r, k) + 1) < 1e-12)
          assert.is_true(math.abs(ct:get(r, k)) < 1e-12)
        end
      end
    end
    -- masked in either condition -> masked
    local two = tl.velocity_grid({ (random_ad(300, 5)), (random_ad(60, 6)) }, { grid_size = 6, min_cells = 3 })
    local c2, bad2 = grid.grid_cosine(two)
    local m1, m2 = two.grids[1].mask:totable(), two.grids[2].mask:totable()
    for r = 1, 6 do
      for k = 1, 6 do
        assert.are.equal(m1[r][k] or m2[r][k], bad2:get(r, k))
        if not bad2:get(r, k) then assert.is_true(math.abs(c2:get(r, k)) <= 1) end
      end
    end
  end)

  it("is vectorised: 100k cells in well under a second", function()
    local ad = random_ad(100000, 7)
    local t0 = os.clock()
    local g = tl.velocity_grid(ad, { grid_size = 50 })
    local dt = os.clock() - t0
    assert.are.equal(100000, g.count:sum():item())
    assert.is_true(dt < 1.5, "took " .. dt .. " s")
  end)

  it("reports bad input", function()
    local ad = random_ad(50, 8)
    local function err(...)
      local ok, e = pcall(...)
      assert.is_false(ok)
      return e
    end
    local e = err(tl.velocity_grid, ad, { basis = "tsne" })
    assert.is_truthy(e:find("no obsm['X_tsne']", 1, true), e)
    e = err(tl.velocity_grid, ad, { vkey = "vel" })
    assert.is_truthy(e:find("no obsm['vel_umap']", 1, true), e)
    e = err(tl.velocity_grid, { ad, make_ad(T.zeros(4, 2), T.zeros(4, 1)) })
    assert.is_truthy(e:find("data set 2: obsm['velocity_umap'] must be [n_obs, >=2], got [4 x 1]", 1, true), e)
    local nan = T.zeros({ 50, 2 }, { dtype = "f64" })
    nan:set(3, 1, 0 / 0); nan:set(7, 2, 0 / 0); nan:set(7, 1, 0 / 0)
    e = err(tl.velocity_grid, make_ad(T.zeros(50, 2), nan))
    assert.is_truthy(e:find("has 2 of 50 cells with NaN or infinite velocities", 1, true), e)
    e = err(tl.velocity_grid, { n_obs = 5, obsm = { X_umap = T.zeros(5, 2), velocity_umap = T.zeros(4, 2) } })
    assert.is_truthy(e:find("obsm['velocity_umap'] has 4 rows, the AnnData has 5 cells", 1, true), e)
    e = err(tl.velocity_grid, ad, { grid_size = 2.5 })
    assert.is_truthy(e:find("grid_size must be a positive integer", 1, true), e)
    e = err(tl.velocity_grid, ad, { bounds = { 0, -1, 0, 1 } })
    assert.is_truthy(e:find("xmin < xmax", 1, true), e)
    e = err(tl.velocity_grid, ad, { gridsize = 3 })
    assert.is_truthy(e:find("unknown option 'gridsize'", 1, true), e)
    e = err(tl.velocity_grid, {})
    assert.is_truthy(e:find("non-empty list", 1, true), e)
    local g1 = tl.velocity_grid(ad, { grid_size = 4 })
    local g2 = tl.velocity_grid(ad, { grid_size = 4, bounds = { -3, 3, -3, 3 } })
    e = err(grid.grid_cosine, g1, g2)
    assert.is_truthy(e:find("different bounds", 1, true), e)
    e = err(grid.grid_cosine, g1, tl.velocity_grid(ad, { grid_size = 5 }))
    assert.is_truthy(e:find("differ in shape", 1, true), e)
  end)
end)

describe("pl velocity plots", function()
  it("streamlines of a rotation stay on circles and stop at masked bins", function()
    local g = field_grid(25, function(x, y) return -y, x end, function(x, y) return x * x + y * y > 0.9 end)
    local lines = pl._streamlines(g)
    assert.is_true(#lines >= 6, "got " .. #lines .. " lines")
    -- the bilinear field is exact (the field is linear) where all four corners are unmasked
    -- (r < 0.8 here); next to masked bins it averages the unmasked corners only
    local total, inner = 0, 0
    for _, l in ipairs(lines) do
      local r0, rmax = math.sqrt(l.x[1] ^ 2 + l.y[1] ^ 2), 0
      for i = 1, #l.x do rmax = math.max(rmax, math.sqrt(l.x[i] ^ 2 + l.y[i] ^ 2)) end
      -- RK4's error grows with step / radius: near the centre (r ~ 2 steps) it is ~1e-4
      local tol = rmax >= 0.8 and 2e-3 or (r0 > 0.3 and 1e-7 or 1e-3)
      if rmax < 0.8 then inner = inner + 1 end
      for i = 1, #l.x do
        local r = math.sqrt(l.x[i] ^ 2 + l.y[i] ^ 2)
        assert.is_true(math.abs(r - r0) < tol * r0, string.format("radius %g vs %g", r, r0))
        -- the nearest bin centre is never a masked one
        local c = math.floor((l.x[i] + 1) / 2 * 25) + 1
        local k = math.floor((l.y[i] + 1) / 2 * 25) + 1
        assert.is_false(g.mask:get(k, c))
      end
      total = total + #l.x
      -- counter-clockwise: the angle grows along the line
      local a1, a2 = math.atan(l.y[1], l.x[1]), math.atan(l.y[2], l.x[2])
      local d = (a2 - a1 + math.pi) % (2 * math.pi) - math.pi
      assert.is_true(d > 0)
    end
    assert.is_true(total > 500)
    assert.is_true(inner >= 3)
    -- a closed orbit is cut once it comes back round (loop stop): no line longer than a lap and a bit
    for _, l in ipairs(lines) do
      local len = 0
      for i = 2, #l.x do len = len + math.sqrt((l.x[i] - l.x[i - 1]) ^ 2 + (l.y[i] - l.y[i - 1]) ^ 2) end
      local r0 = math.sqrt(l.x[1] ^ 2 + l.y[1] ^ 2)
      assert.is_true(len <= 2 * math.pi * r0 * 1.1 + 0.2, "line of length " .. len .. " on radius " .. r0)
    end
  end)

  it("streamlines of a uniform field are straight and evenly fill the grid", function()
    local g = field_grid(10, function() return 1, 0.5 end)
    local lines = pl._streamlines(g, { density = 0.5 })
    assert.is_true(#lines >= 5)
    local ux, uy = 1 / math.sqrt(1.25), 0.5 / math.sqrt(1.25)
    for _, l in ipairs(lines) do
      for i = 2, #l.x do
        local dx, dy = l.x[i] - l.x[1], l.y[i] - l.y[1]
        assert.is_true(math.abs(dx * uy - dy * ux) < 1e-9, "off the straight line")
        assert.is_true(dx * ux + dy * uy > 0, "against the field")
      end
    end
    -- denser lines for a higher density
    assert.is_true(#pl._streamlines(g, { density = 2 }) > #lines)
    -- low speed stops: a field that is zero on the left half has no line there
    local half = field_grid(10, function(x) return x > 0 and 1 or 0, 0 end)
    for _, l in ipairs(pl._streamlines(half)) do
      for i = 1, #l.x do assert.is_true(l.x[i] > -0.2) end
    end
  end)

  it("draws arrows per cell and per grid bin, and streamlines; deterministic SVG", function()
    local ad = random_ad(120, 9)
    local g = tl.velocity_grid(ad, { grid_size = 6, min_cells = 3 })
    local unmasked = 36 - g.mask:sum():item()
    local function draw()
      local fig = pl.figure { ncols = 3 }
      pl.velocity_embedding(ad, { ax = fig:panel(1), title = "per cell" })
      pl.velocity_embedding_grid(ad, { ax = fig:panel(2), grid_size = 6, min_cells = 3 })
      pl.velocity_embedding_stream(ad, { ax = fig:panel(3), grid_size = 6, min_cells = 3, speed_width = true })
      return fig
    end
    local fig = draw()
    local svg = fig:svg()
    assert.are.equal(svg, draw():svg())
    local paths = {}
    for d in svg:gmatch('<path d="([^"]*)"') do paths[#paths + 1] = d end
    -- per cell: shafts then heads (one colour); grid: shafts then heads
    local _, heads1 = paths[2]:gsub("Z", "")
    assert.are.equal(120, heads1)
    local _, heads2 = paths[4]:gsub("Z", "")
    assert.are.equal(unmasked, heads2)
    assert.is_true(#paths >= 5, "streamlines drawn")
    assert.is_truthy(svg:find("clip-path=", 1, true))
    assert.is_truthy(svg:find(">per cell<", 1, true))
    assert.is_number(fig:panel(1).velocity_scale)
    -- the same scale given back gives the same arrows
    local f2 = pl.velocity_embedding(ad, { scale = fig:panel(1).velocity_scale })
    local f3 = pl.velocity_embedding(ad, {})
    assert.are.equal(f3:svg(), f2:svg())
    local f4 = pl.velocity_embedding(ad, { arrow_scale = 2 })
    assert.are_not.equal(f3:svg(), f4:svg())
  end)

  it("two conditions side by side on one grid; PNG export", function()
    local a, b = simulated()
    local g = tl.velocity_grid({ a, b }, { grid_size = 15 })
    local fig = pl.figure { ncols = 2, panels = 6 }
    for i, ad in ipairs { a, b } do
      pl.velocity_embedding(ad, { color = "clusters", ax = fig:panel(i), bounds = g.bounds })
      pl.velocity_embedding_grid(ad, { color = "clusters", ax = fig:panel(2 + i), grid = g.grids[i] })
      pl.velocity_embedding_stream(ad, { color = "clusters", ax = fig:panel(4 + i), grid = g.grids[i] })
    end
    local svg = fig:svg()
    for _, cat in ipairs(a.obs.clusters.categories) do assert.is_truthy(svg:find(">" .. cat .. "<", 1, true)) end
    local base = os.tmpname()
    fig:save(base .. ".png")
    local f = assert(io.open(base .. ".png", "rb"))
    local png = f:read("a")
    f:close()
    assert.are.equal("\137PNG\r\n\26\n", png:sub(1, 8))
    assert.is_true(#png > 10000)
    os.remove(base .. ".png"); os.remove(base)
    -- streamlines go forward in latent time: mean true_t of the bin at the end of a line is
    -- above that at its start for most lines
    local gs = 15
    local bsum, bcnt = {}, {}
    local pos, t = a.obsm.X_umap:to("f64"):totable(), a.obs.true_t:totable()
    local bb = g.bounds
    local function key(x, y)
      local c = math.max(0, math.min(gs - 1, math.floor((x - bb[1]) / (bb[2] - bb[1]) * gs)))
      local r = math.max(0, math.min(gs - 1, math.floor((y - bb[3]) / (bb[4] - bb[3]) * gs)))
      return r * gs + c
    end
    for i = 1, #pos do
      local k = key(pos[i][1], pos[i][2])
      bsum[k], bcnt[k] = (bsum[k] or 0) + t[i], (bcnt[k] or 0) + 1
    end
    local forward, n = 0, 0
    for _, l in ipairs(pl._streamlines(g.grids[1])) do
      local k1, k2 = key(l.x[1], l.y[1]), key(l.x[#l.x], l.y[#l.y])
      if k1 ~= k2 and bcnt[k1] and bcnt[k2] then
        n = n + 1
        if bsum[k2] / bcnt[k2] > bsum[k1] / bcnt[k1] then forward = forward + 1 end
      end
    end
    assert.is_true(n >= 5 and forward >= 0.8 * n, string.format("%d of %d lines forward in time", forward, n))
    -- B's blocked lineage: the cosine map exists where both conditions have cells
    local cos, bad = grid.grid_cosine(g)
    local valid = (bad:logical_not()):sum():item()
    assert.is_true(valid > 10)
    local mean = T.where(bad, 0, cos):sum():item() / valid
    assert.is_true(mean > 0.7, "same dynamics outside the block: mean cosine " .. mean)
  end)

  it("reports bad input", function()
    local ad = random_ad(30, 10)
    local function err(...)
      local ok, e = pcall(...)
      assert.is_false(ok)
      return e
    end
    local e = err(pl.velocity_embedding, ad, { vkey = "nope" })
    assert.is_truthy(e:find("pl.velocity_embedding: no obsm['nope_umap']", 1, true), e)
    e = err(pl.velocity_embedding_stream, ad, { basis = "pca" })
    assert.is_truthy(e:find("pl.velocity_embedding_stream: no obsm['X_pca']", 1, true), e)
    e = err(pl.velocity_embedding_grid, ad, { arrow_scale = -1 })
    assert.is_truthy(e:find("arrow_scale must be a positive number", 1, true), e)
    e = err(pl.velocity_embedding_grid, ad, { grid = tl.velocity_grid({ ad, ad }) })
    assert.is_truthy(e:find("grid = result.grids[i]", 1, true), e)
    e = err(pl.velocity_embedding_stream, ad, { density = 0 })
    assert.is_truthy(e:find("density must be a positive number", 1, true), e)
    e = err(pl.velocity_embedding, ad, { colour = "x" })
    assert.is_truthy(e:find("unknown option 'colour'", 1, true), e)
    e = err(pl.velocity_embedding, ad, { color = "nope" })
    assert.is_truthy(e:find("no obs column 'nope'", 1, true), e)
    e = err(pl._streamlines, { V = T.zeros(3, 3, 2) })
    assert.is_truthy(e:find("grid must be", 1, true), e)
  end)
end)
