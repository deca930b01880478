-- velua.pl velocity plots: an arrow per cell, arrows at the centres of a velocity grid, and
-- streamlines through the grid field, each drawn over a pl.scatter of the cells (SVG, deterministic).
-- Streamlines follow matplotlib's streamplot: seeds over an occupancy mask whose resolution is
-- set by `density`; each line is integrated (here RK4 on the bilinearly interpolated,
-- unit-speed field) forwards and backwards until it leaves the grid, enters a masked bin, slows
-- below min_speed or enters an occupancy cell already taken (which also ends loops), and is
-- kept only if it is at least min_length long. Unlike matplotlib, collisions are tested on a
-- mask twice as fine as the seeding one and seeds start where the data are densest, which
-- keeps lines long on the thin, curved bands of real embeddings.
local velua = require "velua"
local options = require "velua.options"
local SVG = require "velua.pl.svg"
local grid = require "velua.tl.grid"
local T = velua.tensor

local M = {}
local NONE = options.NONE
local num = SVG.num

local function pl() return require "velua.pl" end

-- options shared by the three plots (the background scatter's and the arrows')
local function with_common(extra)
  local d = { basis = "umap", vkey = "velocity", color = NONE, size = NONE, alpha = NONE, cmap = "viridis",
    title = NONE, legend = true, ax = NONE, xlabel = NONE, ylabel = NONE, vmin = NONE, vmax = NONE,
    arrow_color = NONE, arrow_scale = 1, scale = NONE, bounds = NONE, right = NONE }
  for k, v in pairs(extra) do d[k] = v end
  return d
end

-- `deeper`: extra frames between the plot function and this check
local function check_positive(fname, name, v, integer, deeper)
  if type(v) ~= "number" or v ~= v or v <= 0 or v == math.huge or (integer and math.type(v) ~= "integer") then
    error(string.format("%s: %s must be a positive %s, got %s", fname, name, integer and "integer" or "number",
      tostring(v)), 3 + (deeper or 0))
  end
end

local function padded(b, f)
  local dx, dy = (b[2] - b[1]) * f, (b[4] - b[3]) * f
  return { b[1] - dx, b[2] + dx }, { b[3] - dy, b[4] + dy }
end

local function bounds_of(x, y)
  local b = { math.huge, -math.huge, math.huge, -math.huge }
  for i = 1, #x do
    b[1], b[2] = math.min(b[1], x[i]), math.max(b[2], x[i])
    b[3], b[4] = math.min(b[3], y[i]), math.max(b[4], y[i])
  end
  if b[1] > b[2] then return { 0, 1, 0, 1 } end
  if b[1] == b[2] then b[1], b[2] = b[1] - 0.5, b[2] + 0.5 end
  if b[3] == b[4] then b[3], b[4] = b[3] - 0.5, b[4] + 0.5 end
  return b
end

-- the cells as the background scatter, on axes over the given bounds; returns fig, panel, view
local function background(ad, o, fname, b, pad_frac, size, alpha)
  local xlim, ylim = padded(b, pad_frac)
  local ok, fig = pcall(pl().scatter, ad, { basis = o.basis, color = o.color, size = o.size or size,
    alpha = o.alpha or alpha, cmap = o.cmap, title = o.title, legend = o.legend, ax = o.ax,
    xlabel = o.xlabel, ylabel = o.ylabel, vmin = o.vmin, vmax = o.vmax, xlim = xlim, ylim = ylim,
    right = o.right })
  if not ok then error((tostring(fig):gsub("^[^:]*:%d+: ", ""):gsub("^pl%.scatter", fname)), 3) end
  local panel = o.ax or fig:panel(1)
  return fig, panel, panel.view
end

-- a group clipped to the plotting area; the id is derived from the rectangle, so two equal ids
-- (e.g. two figures inline in one notebook page) always describe the same clip
local function clip_open(svg, a)
  local id = ("vclip-%s-%s-%s-%s"):format(num(a.x), num(a.y), num(a.w), num(a.h)):gsub("%.", "_")
  svg:add(('<defs><clipPath id="%s"><rect x="%s" y="%s" width="%s" height="%s"/></clipPath></defs>'):format(
    id, num(a.x), num(a.y), num(a.w), num(a.h)))
  svg:group_open({ clip_path = "url(#" .. id .. ")" })
end

-- arrows in pixel space, grouped by colour (first-seen order): one path of shafts and one path
-- of heads per colour. Each arrow {x0, y0, x1, y1, colour}; heads of length <= head px.
local function draw_arrows(svg, arrows, head, width)
  local order, by = {}, {}
  for _, ar in ipairs(arrows) do
    local c = ar[5]
    if not by[c] then by[c] = { shafts = {}, heads = {} }; order[#order + 1] = c end
    local dx, dy = ar[3] - ar[1], ar[4] - ar[2]
    local L = math.sqrt(dx * dx + dy * dy)
    if L >= 0.5 then
      local ux, uy = dx / L, dy / L
      local hl = math.min(0.45 * L, head)
      local hw = 0.5 * hl
      local bx, by_ = ar[3] - hl * ux, ar[4] - hl * uy
      local g = by[c]
      g.shafts[#g.shafts + 1] = "M" .. num(ar[1]) .. " " .. num(ar[2]) .. "L" .. num(bx) .. " " .. num(by_)
      g.heads[#g.heads + 1] = "M" .. num(ar[3]) .. " " .. num(ar[4]) .. "L" .. num(bx - hw * uy) .. " "
        .. num(by_ + hw * ux) .. "L" .. num(bx + hw * uy) .. " " .. num(by_ - hw * ux) .. "Z"
    end
  end
  for _, c in ipairs(order) do
    local g = by[c]
    if #g.shafts > 0 then
      svg:el("path", { d = table.concat(g.shafts), fill = "none", stroke = c, stroke_width = width,
        stroke_linecap = "round" })
      svg:el("path", { d = table.concat(g.heads), fill = c, stroke = "none" })
    end
  end
end

-- a cell's colour darkened (arrows drawn over cells of the same colour stay visible)
local function darker(c, f)
  local r, g, b = c:match("^#(%x%x)(%x%x)(%x%x)$")
  if not r then return c end
  local function d(x) return math.floor(tonumber(x, 16) * f + 0.5) end
  return string.format("#%02x%02x%02x", d(r), d(g), d(b))
end

local function speeds_of(vel)
  return vel:norm(2, 2):totable()
end

-- ---------- an arrow per cell ----------
-- velocity_embedding(ad, {basis="umap", vkey="velocity", color=, arrow_color=("cells" when
--   color is set, else "#333333"), arrow_scale=1, scale=, size=2, alpha=0.35, cmap=, title=,
--   legend=true, bounds=, head=4, width=0.8, ax=, xlabel=, ylabel=, vmin=, vmax=})
-- scale: embedding units per unit of velocity (default: the mean arrow is 1/(1.5 max(10,
-- sqrt(n))) of the wider side of the data); arrow_scale multiplies it. The scale used is left
-- in panel.velocity_scale, so a second panel can be drawn with the same one.
function M.velocity_embedding(ad, opts)
  local fname = "pl.velocity_embedding"
  local o = options.check(fname, opts, with_common { head = 4, width = 0.8 })
  local pos, vel = grid.embedded(ad, o.basis, o.vkey, fname)
  check_positive(fname, "arrow_scale", o.arrow_scale)
  if o.scale ~= nil then check_positive(fname, "scale", o.scale) end
  local x, y = pos:select(2, 1):totable(), pos:select(2, 2):totable()
  local vx, vy = vel:select(2, 1):totable(), vel:select(2, 2):totable()
  local n = #x
  local b = o.bounds and grid.check_bounds(o.bounds, fname) or bounds_of(x, y)
  local scale = o.scale
  if not scale then
    local sp, m = speeds_of(vel), 0
    for i = 1, n do m = m + sp[i] end
    m = n > 0 and m / n or 0
    local span = math.max(b[2] - b[1], b[4] - b[3])
    scale = m > 0 and span / (1.5 * math.max(10, math.sqrt(n))) / m or 1
  end
  scale = scale * o.arrow_scale
  local fig, panel, view = background(ad, o, fname, b, 0.06, 2, 0.35)
  local X, Y = view.X, view.Y
  local colour = o.arrow_color or (o.color ~= nil and "cells" or "#333333")
  local arrows, shade = {}, {}
  for i = 1, n do
    local c = colour
    if colour == "cells" then
      c = shade[view.fills[i]] or darker(view.fills[i], 0.7)
      shade[view.fills[i]] = c
    end
    arrows[i] = { X(x[i]), Y(y[i]), X(x[i] + scale * vx[i]), Y(y[i] + scale * vy[i]), c }
  end
  local svg = fig.svg_
  clip_open(svg, view.area)
  draw_arrows(svg, arrows, o.head, o.width)
  svg:group_close()
  panel.velocity_scale = scale
  return fig
end

-- the grid to draw: o.grid (a tl.velocity_grid result over one data set, or one of its
-- grids) or computed from ad; errors are raised at the plot's caller
local function grid_for(ad, o, fname)
  grid.embedded(ad, o.basis, o.vkey, fname, 1) -- checks the AnnData, errors name the plot
  local g = o.grid
  if g ~= nil then
    if type(g) ~= "table" or (g.V == nil and type(g.grids) ~= "table") then
      error(fname .. ": grid must be a tl.velocity_grid result or one of its grids", 3)
    end
    if g.V == nil then
      error(string.format("%s: grid holds %d data sets; pass one of them (grid = result.grids[i])", fname,
        #g.grids), 3)
    end
    return g
  end
  check_positive(fname, "grid_size", o.grid_size, true, 1)
  check_positive(fname, "min_cells", o.min_cells, true, 1)
  local ok, res = pcall(grid.velocity_grid, ad, { basis = o.basis, vkey = o.vkey, grid_size = o.grid_size,
    min_cells = o.min_cells, bounds = o.bounds })
  if not ok then error(fname .. ": " .. tostring(res):gsub("^[^:]*:%d+: ", ""):gsub("^tl%.velocity_grid: ", ""), 3) end
  return res
end

-- ---------- arrows on a grid ----------
-- velocity_embedding_grid(ad, {..., grid_size=20, min_cells=5, grid=, arrow_color="#222222",
--   arrow_scale=1, scale=, head=6, width=1.1, size=2.5, alpha=0.35})
-- An arrow at the centre of every unmasked bin of tl.velocity_grid (its mean velocity). The
-- default scale makes the 90th percentile of the bins' speeds 0.9 of a bin.
function M.velocity_embedding_grid(ad, opts)
  local fname = "pl.velocity_embedding_grid"
  local o = options.check(fname, opts, with_common { grid_size = 20, min_cells = 5, grid = NONE, head = 6,
    width = 1.1 })
  check_positive(fname, "arrow_scale", o.arrow_scale)
  if o.scale ~= nil then check_positive(fname, "scale", o.scale) end
  local g = grid_for(ad, o, fname)
  local b = g.bounds
  local xc, yc = g.x:totable(), g.y:totable()
  local nx, ny = #xc, #yc
  local V = g.V:to("f64"):contiguous():reshape({ ny * nx, 2 })
  local masked = g.mask:reshape(-1):totable()
  local u, v = V:select(2, 1):totable(), V:select(2, 2):totable()
  local dx, dy = (b[2] - b[1]) / nx, (b[4] - b[3]) / ny
  local scale = o.scale
  if not scale then
    local sp = {}
    for k = 1, nx * ny do
      if not masked[k] then sp[#sp + 1] = math.sqrt(u[k] ^ 2 + v[k] ^ 2) end
    end
    table.sort(sp)
    local q = #sp > 0 and sp[math.max(1, math.ceil(0.9 * #sp))] or 0
    scale = q > 0 and 0.9 * math.min(dx, dy) / q or 1
  end
  scale = scale * o.arrow_scale
  local fig, panel, view = background(ad, o, fname, b, math.max(0.04, 0.5 / math.max(nx, ny)), 2.5, 0.35)
  local X, Y = view.X, view.Y
  local colour = o.arrow_color or "#222222"
  local arrows = {}
  for r = 1, ny do
    for c = 1, nx do
      local k = (r - 1) * nx + c
      if not masked[k] then
        arrows[#arrows + 1] = { X(xc[c]), Y(yc[r]), X(xc[c] + scale * u[k]), Y(yc[r] + scale * v[k]), colour }
      end
    end
  end
  local svg = fig.svg_
  clip_open(svg, view.area)
  draw_arrows(svg, arrows, o.head, o.width)
  svg:group_close()
  panel.velocity_scale = scale
  return fig
end

-- ---------- streamlines ----------

-- matplotlib's seed order: a spiral from the border of an nx x ny mask inwards (0-based cells)
local function spiral(nx, ny)
  local out = {}
  local xfirst, yfirst, xlast, ylast = 0, 1, nx - 1, ny - 1
  local x, y, dir = 0, 0, "right"
  for _ = 1, nx * ny do
    out[#out + 1] = { x, y }
    if dir == "right" then
      x = x + 1
      if x >= xlast then xlast = xlast - 1; dir = "up" end
    elseif dir == "up" then
      y = y + 1
      if y >= ylast then ylast = ylast - 1; dir = "left" end
    elseif dir == "left" then
      x = x - 1
      if x <= xfirst then xfirst = xfirst + 1; dir = "down" end
    else
      y = y - 1
      if y <= yfirst then yfirst = yfirst + 1; dir = "right" end
    end
  end
  return out
end

-- streamlines(grid, {density=1, min_speed=0.02, min_length=0.08, max_length=4, step=0.25}):
-- the lines through a grid {x=, y=, V=, mask=} as {x={...}, y={...}, speed={...}} in data
-- units, in seed order. min_speed is a fraction of the largest bin speed; lengths are in
-- units of the grid's width; step is the RK4 step in occupancy cells.
function M.streamlines(g, opts)
  local fname = "pl.streamlines"
  local o = options.check(fname, opts, { density = 1, min_speed = 0.02, min_length = 0.08, max_length = 4,
    step = 0.25 })
  if type(g) ~= "table" or not T.is_tensor(g.V) or not T.is_tensor(g.mask) or not T.is_tensor(g.x)
    or not T.is_tensor(g.y) then
    error(fname .. ": grid must be {x=, y=, V=, mask=} from tl.velocity_grid", 2)
  end
  for _, k in ipairs { "density", "step", "max_length" } do check_positive(fname, k, o[k]) end
  local xc, yc = g.x:to("f64"):totable(), g.y:to("f64"):totable()
  local nx, ny = #xc, #yc
  local s = g.V:shape()
  if #s ~= 3 or s[1] ~= ny or s[2] ~= nx or s[3] ~= 2 then
    error(string.format("%s: V must be [%d, %d, 2] (rows = y centres), got [%s]", fname, ny, nx,
      table.concat(s, ", ")), 2)
  end
  if nx < 2 or ny < 2 then return {} end
  local dx, dy = (xc[nx] - xc[1]) / (nx - 1), (yc[ny] - yc[1]) / (ny - 1)
  local Vf = g.V:to("f64"):contiguous():reshape({ nx * ny, 2 })
  local U, W = Vf:select(2, 1):totable(), Vf:select(2, 2):totable()
  local bad = g.mask:reshape(-1):totable()
  local smax = 0
  for k = 1, nx * ny do
    if not bad[k] then
      if U[k] ~= U[k] or W[k] ~= W[k] then bad[k] = true -- NaN in an unmasked bin: treat as masked
      else smax = math.max(smax, math.sqrt(U[k] ^ 2 + W[k] ^ 2)) end
    end
  end
  if smax == 0 then return {} end
  local vmin = o.min_speed * smax

  -- field at grid coordinates (gx in [0, nx-1]): bilinear over the unmasked corners, nil when the
  -- nearest node is masked; returns velocity (data units) and speed
  local function field(gx, gy)
    local kn = math.floor(gy + 0.5) * nx + math.floor(gx + 0.5) + 1
    if bad[kn] then return nil end
    local i0, j0 = math.min(math.floor(gx), nx - 2), math.min(math.floor(gy), ny - 2)
    local tx, ty = gx - i0, gy - j0
    local su, sw, ws = 0, 0, 0
    for dj = 0, 1 do
      for di = 0, 1 do
        local k = (j0 + dj) * nx + i0 + di + 1
        if not bad[k] then
          local w = (di == 1 and tx or 1 - tx) * (dj == 1 and ty or 1 - ty)
          su, sw, ws = su + w * U[k], sw + w * W[k], ws + w
        end
      end
    end
    if ws < 1e-12 then return nil end
    su, sw = su / ws, sw / ws
    return su, sw, math.sqrt(su * su + sw * sw)
  end
  -- unit-speed direction in grid coordinates (nil where the line must stop)
  local function dir(gx, gy, sign)
    if gx < 0 or gy < 0 or gx > nx - 1 or gy > ny - 1 then return nil end
    local u, w, sp = field(gx, gy)
    if not u or sp < vmin then return nil end
    local a, c = u / dx, w / dy
    local l = math.sqrt(a * a + c * c)
    if l == 0 then return nil end
    return sign * a / l, sign * c / l
  end

  -- occupancy: seeds need a free cell of the coarse mask (30 x density per side); a line stops
  -- when it enters a cell of the fine mask (twice as fine) taken by another line, or one it
  -- took itself more than LOOP steps earlier (a loop)
  local nm = math.max(2, math.floor(30 * o.density + 0.5))
  local cw, ch = (nx - 1) / nm, (ny - 1) / nm -- coarse cell size in grid units
  local function cell(gx, gy, k) -- k = 1 coarse, 2 fine
    local n = nm * k
    local mi = math.max(0, math.min(n - 1, math.floor(gx / cw * k)))
    local mj = math.max(0, math.min(n - 1, math.floor(gy / ch * k)))
    return mj * n + mi + 1
  end
  local coarse, owner, when = {}, {}, {}
  local h = o.step * math.min(cw, ch)
  local LOOP = math.ceil(2 / o.step)
  local width = math.max(nx - 1, ny - 1)
  local max_steps = math.ceil(o.max_length * width / h)

  -- one direction from (x0, y0); appends to xs, ys, sp and to the undo lists; returns the length
  local function trace(id, x0, y0, sign, undo_f, undo_c, xs, ys, sp)
    local x, y, cur, len = x0, y0, cell(x0, y0, 2), 0
    for step = 1, max_steps do
      local k1x, k1y = dir(x, y, sign)
      if not k1x then break end
      local k2x, k2y = dir(x + 0.5 * h * k1x, y + 0.5 * h * k1y, sign)
      if not k2x then break end
      local k3x, k3y = dir(x + 0.5 * h * k2x, y + 0.5 * h * k2y, sign)
      if not k3x then break end
      local k4x, k4y = dir(x + h * k3x, y + h * k3y, sign)
      if not k4x then break end
      local xn = x + h / 6 * (k1x + 2 * k2x + 2 * k3x + k4x)
      local yn = y + h / 6 * (k1y + 2 * k2y + 2 * k3y + k4y)
      if not dir(xn, yn, sign) then break end
      local f, t = cell(xn, yn, 2), sign * step
      if f ~= cur then
        if owner[f] ~= nil and (owner[f] ~= id or math.abs(when[f] - t) > LOOP) then break end
        if owner[f] == nil then
          owner[f], when[f] = id, t
          undo_f[#undo_f + 1] = f
        end
        cur = f
      end
      local c = cell(xn, yn, 1)
      if not coarse[c] then coarse[c] = true; undo_c[#undo_c + 1] = c end
      len = len + math.sqrt((xn - x) ^ 2 + (yn - y) ^ 2)
      x, y = xn, yn
      local _, _, spd = field(x, y)
      xs[#xs + 1], ys[#ys + 1], sp[#sp + 1] = x, y, spd
    end
    return len
  end

  -- seeds: coarse cell centres, those in grid bins holding more cells first (long lines start
  -- in the bulk of the data), ties in matplotlib's spiral order
  local seeds = spiral(nm, nm)
  if T.is_tensor(g.count) then
    local counts = g.count:reshape(-1):totable()
    for i, sd in ipairs(seeds) do
      local gx, gy = (sd[1] + 0.5) * cw, (sd[2] + 0.5) * ch
      sd[3] = counts[math.floor(gy + 0.5) * nx + math.floor(gx + 0.5) + 1]
      sd[4] = i
    end
    table.sort(seeds, function(p, q) if p[3] ~= q[3] then return p[3] > q[3] end return p[4] < q[4] end)
  end
  local lines = {}
  for _, seed in ipairs(seeds) do
    local gx, gy = (seed[1] + 0.5) * cw, (seed[2] + 0.5) * ch
    local c0, f0 = cell(gx, gy, 1), cell(gx, gy, 2)
    if not coarse[c0] and owner[f0] == nil and dir(gx, gy, 1) then
      local id = #lines + 1
      coarse[c0], owner[f0], when[f0] = true, id, 0
      local undo_f, undo_c = { f0 }, { c0 }
      local bx, by, bs = {}, {}, {}
      local fx, fy, fs = {}, {}, {}
      local lb = trace(id, gx, gy, -1, undo_f, undo_c, bx, by, bs)
      local lf = trace(id, gx, gy, 1, undo_f, undo_c, fx, fy, fs)
      if (lb + lf) / width >= o.min_length then
        local line = { x = {}, y = {}, speed = {} }
        local function push(px, py, ps)
          local k = #line.x + 1
          line.x[k], line.y[k], line.speed[k] = xc[1] + px * dx, yc[1] + py * dy, ps
        end
        for i = #bx, 1, -1 do push(bx[i], by[i], bs[i]) end
        local _, _, s0 = field(gx, gy)
        push(gx, gy, s0)
        for i = 1, #fx do push(fx[i], fy[i], fs[i]) end
        lines[id] = line
      else
        for _, k in ipairs(undo_f) do owner[k], when[k] = nil, nil end
        for _, k in ipairs(undo_c) do coarse[k] = nil end
      end
    end
  end
  return lines
end

-- velocity_embedding_stream(ad, {..., density=1, grid_size=20, min_cells=5, grid=, linewidth=1,
--   speed_width=false, min_speed=0.02, min_length=0.08, max_length=4, arrow_color="#222222",
--   head=5, size=2.5, alpha=0.35})
-- Streamlines through the grid field with an arrowhead halfway along each; speed_width makes
-- the width follow the local speed (0.3 to 2 x linewidth).
function M.velocity_embedding_stream(ad, opts)
  local fname = "pl.velocity_embedding_stream"
  local o = options.check(fname, opts, with_common { grid_size = 20, min_cells = 5, grid = NONE, density = 1,
    linewidth = 1, speed_width = false, min_speed = 0.02, min_length = 0.08, max_length = 4, head = 5 })
  check_positive(fname, "linewidth", o.linewidth)
  check_positive(fname, "density", o.density)
  local g = grid_for(ad, o, fname)
  local lines = M.streamlines(g, { density = o.density, min_speed = o.min_speed, min_length = o.min_length,
    max_length = o.max_length })
  local fig, _, view = background(ad, o, fname, g.bounds, 0.04, 2.5, 0.35)
  local X, Y = view.X, view.Y
  local colour = o.arrow_color or "#222222"
  local smax = 0
  for _, l in ipairs(lines) do for _, s in ipairs(l.speed) do smax = math.max(smax, s) end end
  local LEVELS = 6
  local function level(s) return o.speed_width and math.min(LEVELS, math.floor(s / smax * LEVELS) + 1) or 1 end
  local function width_of(lv)
    return o.speed_width and o.linewidth * (0.3 + 1.7 * (lv - 0.5) / LEVELS) or o.linewidth
  end
  local paths, heads = {}, {}
  for _, l in ipairs(lines) do
    -- pixel points, dropping those closer than 1.5 px to the previous one kept (ends kept)
    local px, py, ps = { X(l.x[1]) }, { Y(l.y[1]) }, { l.speed[1] }
    for i = 2, #l.x do
      local qx, qy = X(l.x[i]), Y(l.y[i])
      if i == #l.x or (qx - px[#px]) ^ 2 + (qy - py[#py]) ^ 2 >= 2.25 then
        px[#px + 1], py[#py + 1], ps[#ps + 1] = qx, qy, l.speed[i]
      end
    end
    if #px >= 2 then
      -- runs of one width level, each starting at the last point of the previous run
      local function run_path(i0, i1)
        local t = { "M", num(px[i0]), " ", num(py[i0]), "L" }
        for k = i0 + 1, i1 do t[#t + 1] = num(px[k]) .. " " .. num(py[k]) .. (k < i1 and " " or "") end
        return table.concat(t)
      end
      local start = 1
      for i = 2, #px + 1 do
        if i > #px or level(ps[i]) ~= level(ps[start]) then
          local i0 = math.max(1, start - 1)
          if i - 1 > i0 then
            local lv = level(ps[start])
            paths[lv] = paths[lv] or {}
            paths[lv][#paths[lv] + 1] = run_path(i0, i - 1)
          end
          start = i
        end
      end
      -- arrowhead at half the length
      local cum, total = { 0 }, 0
      for i = 2, #px do
        total = total + math.sqrt((px[i] - px[i - 1]) ^ 2 + (py[i] - py[i - 1]) ^ 2)
        cum[i] = total
      end
      local k = 2
      while k < #px and cum[k] < total / 2 do k = k + 1 end
      local hx, hy = px[k] - px[k - 1], py[k] - py[k - 1]
      local hl = math.sqrt(hx * hx + hy * hy)
      -- heads grow with the line width (speed_width), never below `head` px
      local head = o.head * math.max(1, width_of(level(ps[k])) / o.linewidth)
      if hl > 0 and total > 2 * head then
        local ux, uy = hx / hl, hy / hl
        local f = (total / 2 - cum[k - 1]) / hl
        local tipx, tipy = px[k - 1] + f * hx + 0.5 * head * ux, py[k - 1] + f * hy + 0.5 * head * uy
        local bx, by = tipx - head * ux, tipy - head * uy
        local hw = 0.45 * head
        heads[#heads + 1] = "M" .. num(tipx) .. " " .. num(tipy) .. "L" .. num(bx - hw * uy) .. " "
          .. num(by + hw * ux) .. "L" .. num(bx + hw * uy) .. " " .. num(by - hw * ux) .. "Z"
      end
    end
  end
  local svg = fig.svg_
  clip_open(svg, view.area)
  for lv = 1, LEVELS do
    if paths[lv] then
      svg:el("path", { d = table.concat(paths[lv]), fill = "none", stroke = colour, stroke_width = width_of(lv),
        stroke_linejoin = "round", stroke_linecap = "round" })
    end
  end
  if #heads > 0 then svg:el("path", { d = table.concat(heads), fill = colour, stroke = "none" }) end
  svg:group_close()
  return fig
end

return M
