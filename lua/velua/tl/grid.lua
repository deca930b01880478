-- velua.tl.velocity_grid: the mean embedded velocity on one common grid over the union of
-- the cells of one or more AnnData (SPEC section 3), and the per-bin cosine between two
-- conditions' grids (SPEC section 5). Binning is a few vectorised tensor ops (index_add_).
local velua = require "velua"
local options = require "velua.options"
local T = velua.tensor

local M = {}

local function is_anndata(x)
  local ok, AD = pcall(require, "velua.anndata")
  return ok and AD.is_anndata(x)
end

-- one AnnData (or a plain table with obsm) or a list of them
local function as_list(ads)
  if type(ads) ~= "table" then
    error("tl.velocity_grid: ads must be an AnnData or a list of AnnData, got " .. type(ads), 3)
  end
  if is_anndata(ads) or rawget(ads, "obsm") ~= nil then return { ads }, true end
  if #ads == 0 then
    error("tl.velocity_grid: ads must be an AnnData or a non-empty list of AnnData", 3)
  end
  return ads, false
end

local function n_obs_of(ad)
  local n = ad.n_obs
  if math.type(n) == "integer" then return n end
  return nil
end

-- first two columns of obsm[key] as f64 [n, 2], checked; errors name fname and point `level`
-- frames up from here
local function two_columns(ad, key, what, label, fname, level)
  local obsm = ad.obsm
  local m = obsm and obsm[key]
  if m == nil then
    error(string.format("%s: %sno obsm['%s'] (%s; pass %s)", fname, label, key, what,
      what == "positions" and "basis=" or "vkey= / basis="), level)
  end
  if not T.is_tensor(m) then
    error(string.format("%s: %sobsm['%s'] must be a dense tensor, got %s", fname, label, key, type(m)), level)
  end
  if m:dim() ~= 2 or m:size(2) < 2 then
    local s = table.concat(m:shape(), " x ")
    error(string.format("%s: %sobsm['%s'] must be [n_obs, >=2], got [%s]", fname, label, key, s), level)
  end
  local n = n_obs_of(ad)
  if n and m:size(1) ~= n then
    error(string.format("%s: %sobsm['%s'] has %d rows, the AnnData has %d cells",
      fname, label, key, m:size(1), n), level)
  end
  local v = m:narrow(2, 1, 2):to("f64"):contiguous()
  if v:numel() > 0 then
    local bad = v:isnan():logical_or(v:abs():eq(math.huge)):any(2):sum():item()
    if bad > 0 then
      error(string.format("%s: %sobsm['%s'] has %d of %d cells with NaN or infinite %s",
        fname, label, key, bad, m:size(1), what), level)
    end
  end
  return v
end

-- positions obsm["X_"..basis] and velocities obsm[vkey.."_"..basis] of one AnnData, first two
-- columns as f64 [n, 2]; for plots (errors name fname, raised at the caller of the caller, or
-- `deeper` frames further up)
function M.embedded(ad, basis, vkey, fname, deeper)
  local lv = 3 + (deeper or 0)
  if type(ad) ~= "table" then error(string.format("%s: an AnnData expected, got %s", fname, type(ad)), lv) end
  local pos = two_columns(ad, "X_" .. basis, "positions", "", fname, lv + 1)
  local vel = two_columns(ad, vkey .. "_" .. basis, "velocities", "", fname, lv + 1)
  if pos:size(1) ~= vel:size(1) then
    error(string.format("%s: obsm['X_%s'] has %d rows but obsm['%s_%s'] has %d", fname, basis, pos:size(1),
      vkey, basis, vel:size(1)), lv)
  end
  return pos, vel
end

-- bounds {xmin, xmax, ymin, ymax} checked (errors name fname, raised at the caller's caller)
function M.check_bounds(b, fname)
  fname = fname or "tl.velocity_grid"
  if type(b) ~= "table" or #b ~= 4 then
    error(fname .. ": bounds must be {xmin, xmax, ymin, ymax}, got " .. tostring(b), 3)
  end
  for i = 1, 4 do
    if type(b[i]) ~= "number" or b[i] ~= b[i] or math.abs(b[i]) == math.huge then
      error(string.format("%s: bounds[%d] must be a finite number, got %s", fname, i, tostring(b[i])), 3)
    end
  end
  if not (b[1] < b[2] and b[3] < b[4]) then
    error(string.format("%s: bounds need xmin < xmax and ymin < ymax, got {%g, %g, %g, %g}",
      fname, b[1], b[2], b[3], b[4]), 3)
  end
  return { b[1] + 0.0, b[2] + 0.0, b[3] + 0.0, b[4] + 0.0 }
end

-- the union bounding box of the positions (a zero-width side is widened by 0.5 each way)
local function union_bounds(positions)
  local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
  for _, p in ipairs(positions) do
    if p:size(1) > 0 then
      local lo, hi = p:min(1), p:max(1)
      xmin, xmax = math.min(xmin, lo:get(1)), math.max(xmax, hi:get(1))
      ymin, ymax = math.min(ymin, lo:get(2)), math.max(ymax, hi:get(2))
    end
  end
  if xmin > xmax then error("tl.velocity_grid: no cells in the data sets", 3) end
  if xmin == xmax then xmin, xmax = xmin - 0.5, xmax + 0.5 end
  if ymin == ymax then ymin, ymax = ymin - 0.5, ymax + 0.5 end
  return { xmin, xmax, ymin, ymax }
end

-- bin index 0..gs-1 of coordinate column c; values on the upper edge go to the last bin
local function bin_of(c, lo, hi, gs)
  return ((c - lo) * (gs / (hi - lo))):floor():clamp(0, gs - 1):to("i64")
end

-- sums and counts per bin of one data set: V [gs, gs, 2] (row = y bin, column = x bin)
local function bin_one(pos, vel, b, gs, min_cells)
  local x, y = pos:select(2, 1), pos:select(2, 2)
  local inside = x:ge(b[1]):logical_and(x:le(b[2])):logical_and(y:ge(b[3])):logical_and(y:le(b[4]))
  local n_in = inside:sum():item()
  local outside = pos:size(1) - n_in
  if outside > 0 then
    local keep = inside:nonzero():reshape(-1)
    x, y, vel = x:index(1, keep), y:index(1, keep), vel:index(1, keep)
  end
  local count = T.zeros({ gs * gs }, { dtype = "i64" })
  local sum = T.zeros({ gs * gs, 2 }, { dtype = "f64" })
  if n_in > 0 then
    local flat = bin_of(y, b[3], b[4], gs) * gs + bin_of(x, b[1], b[2], gs) + 1
    count:index_add_(1, flat, T.ones({ n_in }, { dtype = "i64" }))
    sum:index_add_(1, flat, vel)
  end
  local mask = count:lt(min_cells)
  local denom = count:to("f64"):clamp(1):unsqueeze(2)
  local V = T.where(mask:unsqueeze(2), 0 / 0, sum / denom)
  return { V = V:reshape({ gs, gs, 2 }), count = count:reshape({ gs, gs }), mask = mask:reshape({ gs, gs }),
           n_cells = n_in, n_outside = outside }
end

-- velocity_grid(ad | {ad1, ad2, ...}, {basis="umap", vkey="velocity", grid_size=20, min_cells=5,
--   bounds=nil})
-- Returns {x = bin centres [gs] f64, y = [gs] f64, bounds = {xmin, xmax, ymin, ymax}, grid_size,
--   min_cells, basis, vkey, grids = {{V [gs, gs, 2] f64, count [gs, gs] i64, mask [gs, gs] bool,
--   n_cells, n_outside, x, y, bounds}, ...}} and, for a single AnnData, V/count/mask at the top.
-- Row i of a grid is the i-th y bin (upwards), column j the j-th x bin. mask is true where a
-- bin is masked (fewer than min_cells cells); V is NaN there.
function M.velocity_grid(ads, opts)
  local o = options.check("tl.velocity_grid", opts, { basis = "umap", vkey = "velocity", grid_size = 20,
    min_cells = 5, bounds = options.NONE })
  local list, single = as_list(ads)
  local gs = o.grid_size
  if math.type(gs) ~= "integer" or gs < 1 then
    error("tl.velocity_grid: grid_size must be a positive integer, got " .. tostring(gs), 2)
  end
  if math.type(o.min_cells) ~= "integer" or o.min_cells < 1 then
    error("tl.velocity_grid: min_cells must be a positive integer, got " .. tostring(o.min_cells), 2)
  end
  for _, k in ipairs { "basis", "vkey" } do
    if type(o[k]) ~= "string" then error("tl.velocity_grid: " .. k .. " must be a string, got " .. type(o[k]), 2) end
  end
  local pos_key, vel_key = "X_" .. o.basis, o.vkey .. "_" .. o.basis
  local positions, velocities = {}, {}
  for i, ad in ipairs(list) do
    if type(ad) ~= "table" then
      error(string.format("tl.velocity_grid: data set %d must be an AnnData, got %s", i, type(ad)), 2)
    end
    local label = single and "" or string.format("data set %d: ", i)
    positions[i] = two_columns(ad, pos_key, "positions", label, "tl.velocity_grid", 3)
    velocities[i] = two_columns(ad, vel_key, "velocities", label, "tl.velocity_grid", 3)
    if positions[i]:size(1) ~= velocities[i]:size(1) then
      error(string.format("tl.velocity_grid: %sobsm['%s'] has %d rows but obsm['%s'] has %d", label,
        pos_key, positions[i]:size(1), vel_key, velocities[i]:size(1)), 2)
    end
  end
  local b = o.bounds and M.check_bounds(o.bounds) or union_bounds(positions)
  local dx, dy = (b[2] - b[1]) / gs, (b[4] - b[3]) / gs
  local xc = T.arange(gs):to("f64") * dx + (b[1] + dx / 2)
  local yc = T.arange(gs):to("f64") * dy + (b[3] + dy / 2)
  local out = { x = xc, y = yc, bounds = b, grid_size = gs, min_cells = o.min_cells, basis = o.basis,
    vkey = o.vkey, grids = {} }
  for i = 1, #list do
    local g = bin_one(positions[i], velocities[i], b, gs, o.min_cells)
    g.x, g.y, g.bounds = xc, yc, b
    out.grids[i] = g
  end
  if single then
    local g = out.grids[1]
    out.V, out.count, out.mask, out.n_cells, out.n_outside = g.V, g.count, g.mask, g.n_cells, g.n_outside
  end
  return out
end

local function same_bounds(a, b)
  for i = 1, 4 do if a[i] ~= b[i] then return false end end
  return true
end

-- grid_cosine(g1, g2) or grid_cosine(result of velocity_grid over two data sets):
-- cos(V1, V2) per bin [gs, gs] f64, NaN where either bin is masked or has zero mean velocity,
-- and the bool mask [gs, gs] of those bins.
function M.grid_cosine(g1, g2)
  if g2 == nil and type(g1) == "table" and type(g1.grids) == "table" then
    if #g1.grids ~= 2 then
      error(string.format("grid_cosine: a velocity_grid result over exactly 2 data sets expected, got %d", #g1.grids), 2)
    end
    g1, g2 = g1.grids[1], g1.grids[2]
  end
  for i, g in ipairs { g1, g2 } do
    if type(g) ~= "table" or not T.is_tensor(g.V) or not T.is_tensor(g.mask) then
      error(string.format("grid_cosine: argument %d must be a grid {V=, mask=} from tl.velocity_grid", i), 2)
    end
  end
  local s1, s2 = g1.V:shape(), g2.V:shape()
  if #s1 ~= 3 or s1[3] ~= 2 or #s2 ~= 3 or s1[1] ~= s2[1] or s1[2] ~= s2[2] or s2[3] ~= 2 then
    error(string.format("grid_cosine: grids differ in shape ([%s] vs [%s])", table.concat(s1, ", "),
      table.concat(s2, ", ")), 2)
  end
  if g1.bounds and g2.bounds and not same_bounds(g1.bounds, g2.bounds) then
    error("grid_cosine: the grids have different bounds; compute them in one tl.velocity_grid call "
      .. "(a list of AnnData) or pass bounds=", 2)
  end
  local a, b = g1.V:to("f64"), g2.V:to("f64")
  local dot = (a * b):sum(3)
  local na, nb = a:norm(2, 3), b:norm(2, 3)
  local bad = g1.mask:logical_or(g2.mask):logical_or(na:eq(0)):logical_or(nb:eq(0))
  local cos = T.where(bad, 0 / 0, dot / (na * nb):clamp(1e-300)):clamp(-1, 1)
  return T.where(bad, 0 / 0, cos), bad
end

return M
