-- velua.pl: plots written directly as SVG (PNG through rsvg-convert): scatter (categorical
-- palette with legend, or a colormap with colorbar), lines, heatmap, and multi-panel figures.
-- Output is deterministic. Every function returns a figure: fig:save("x.svg" | "x.png"),
-- fig:svg(); pass {ax = fig:panel(i)} to draw into a panel of pl.figure{ncols=...}.
local velua = require "velua"
local options = require "velua.options"
local SVG = require "velua.pl.svg"
local colors = require "velua.pl.colors"
local T = velua.tensor

local pl = {}
local PANEL_W, PANEL_H = 420, 340

-- ---------- figures and axes ----------
local Figure = { __name = "velua.Figure" }
Figure.__index = Figure

-- figure{ncols=1, nrows=nil, panels=nil, width=420, height=340, title=nil}
function pl.figure(opts)
  local o = options.check("pl.figure", opts, { ncols = 1, nrows = options.NONE, panels = options.NONE,
    width = PANEL_W, height = PANEL_H, title = options.NONE })
  local n = o.panels or (o.nrows and o.nrows * o.ncols) or o.ncols
  local nrows = o.nrows or math.ceil(n / o.ncols)
  local top = o.title and 24 or 0
  local fig = setmetatable({ ncols = o.ncols, nrows = nrows, pw = o.width, ph = o.height, top = top,
    title = o.title, panels = {}, svg_ = SVG.new(o.ncols * o.width, nrows * o.height + top) }, Figure)
  for i = 1, nrows * o.ncols do
    local r, c = (i - 1) // o.ncols, (i - 1) % o.ncols
    fig.panels[i] = { fig = fig, x0 = c * o.width, y0 = top + r * o.height, w = o.width, h = o.height }
  end
  if o.title then fig.svg_:text(fig.svg_.width / 2, 17, o.title, { text_anchor = "middle", font_size = 14 }) end
  return fig
end

function Figure:panel(i)
  local p = self.panels[i]
  if not p then error(string.format("figure: panel %s out of range 1..%d", tostring(i), #self.panels), 2) end
  return p
end
function Figure:svg() return self.svg_:render() end
Figure.__tostring = function(f)
  return string.format("velua.Figure(%dx%d panels, %dx%d px)", f.nrows, f.ncols, f.svg_.width, f.svg_.height)
end
function Figure:_repr_svg_() return self:svg() end

-- save(path): .svg written directly, .png through rsvg-convert; a temporary name, then rename
function Figure:save(path)
  local ext = path:match("%.(%w+)$")
  ext = ext and ext:lower()
  if ext ~= "svg" and ext ~= "png" then
    error("figure:save: path must end in .svg or .png, got '" .. tostring(path) .. "'", 2)
  end
  local tmp = string.format("%s.tmp-%d", path, math.random(1, 1 << 30))
  local svg_path = ext == "svg" and tmp or tmp .. ".svg"
  local f, err = io.open(svg_path, "w")
  if not f then error("figure:save: " .. tostring(err), 2) end
  f:write(self:svg())
  f:close()
  if ext == "png" then
    local cmd = string.format("rsvg-convert -f png -o '%s' '%s' 2>&1", tmp, svg_path)
    local p = io.popen(cmd)
    local out = p:read("a")
    local ok = p:close()
    os.remove(svg_path)
    if not ok then
      os.remove(tmp)
      error("figure:save: PNG conversion failed (is rsvg-convert from librsvg2-bin installed?) " .. out, 2)
    end
  end
  local ok, rerr = os.rename(tmp, path)
  if not ok then os.remove(tmp); error("figure:save: " .. tostring(rerr), 2) end
  return path
end

-- ---------- helpers ----------
local function nice_ticks(lo, hi, n)
  if hi <= lo then hi = lo + 1 end
  local span = (hi - lo) / (n or 5)
  local mag = 10 ^ math.floor(math.log(span, 10))
  local step = mag
  for _, m in ipairs { 1, 2, 2.5, 5, 10 } do
    if span <= m * mag then step = m * mag break end
  end
  local ticks = {}
  local k = math.ceil(lo / step - 1e-9)
  while k * step <= hi + 1e-9 * step do
    ticks[#ticks + 1] = tonumber(string.format("%.12g", k * step)) + 0.0 -- no drift, no -0
    if ticks[#ticks] == 0 then ticks[#ticks] = 0 end
    k = k + 1
  end
  return ticks
end
pl._nice_ticks = nice_ticks

local function tick_label(v)
  if v == math.floor(v) and math.abs(v) < 1e6 then return string.format("%d", v) end
  return (string.format("%.3g", v))
end

local function to_list(x, what)
  if T.is_tensor(x) then return x:to("f64"):contiguous():reshape(-1):totable() end
  if type(x) == "table" then return x end
  error("pl: " .. what .. " must be a tensor or a table, got " .. type(x), 3)
end

-- the plotting area of a panel with room on the right for a legend or colorbar
local function area(panel, right, title)
  return { x = panel.x0 + 52, y = panel.y0 + (title and 26 or 12), w = panel.w - 52 - 14 - (right or 0),
           h = panel.h - (title and 26 or 12) - 38 }
end

local function draw_axes(svg, a, xlo, xhi, ylo, yhi, o)
  svg:rect(a.x, a.y, a.w, a.h, { fill = "none", stroke = "#444444", stroke_width = 0.8 })
  local function X(v) return a.x + (v - xlo) / (xhi - xlo) * a.w end
  local function Y(v) return a.y + a.h - (v - ylo) / (yhi - ylo) * a.h end
  if o.ticks ~= false then
    for _, t in ipairs(nice_ticks(xlo, xhi, 5)) do
      if t >= xlo and t <= xhi then
        svg:line(X(t), a.y + a.h, X(t), a.y + a.h + 4, { stroke = "#444444" })
        svg:text(X(t), a.y + a.h + 16, tick_label(t), { text_anchor = "middle", font_size = 10 })
      end
    end
    for _, t in ipairs(nice_ticks(ylo, yhi, 5)) do
      if t >= ylo and t <= yhi then
        svg:line(a.x - 4, Y(t), a.x, Y(t), { stroke = "#444444" })
        svg:text(a.x - 6, Y(t) + 3.5, tick_label(t), { text_anchor = "end", font_size = 10 })
      end
    end
  end
  if o.xlabel then svg:text(a.x + a.w / 2, a.y + a.h + 32, o.xlabel, { text_anchor = "middle" }) end
  if o.ylabel then
    svg:text(a.x - 40, a.y + a.h / 2, o.ylabel, { text_anchor = "middle",
      transform = string.format("rotate(-90 %s %s)", SVG.num(a.x - 40), SVG.num(a.y + a.h / 2)) })
  end
  if o.title then svg:text(a.x + a.w / 2, a.y - 9, o.title, { text_anchor = "middle", font_size = 12 }) end
  return X, Y
end

local function range_of(v)
  local lo, hi = math.huge, -math.huge
  for _, x in ipairs(v) do
    if x == x and x ~= math.huge and x ~= -math.huge then lo = math.min(lo, x); hi = math.max(hi, x) end
  end
  if lo > hi then lo, hi = 0, 1 end
  if lo == hi then lo, hi = lo - 0.5, hi + 0.5 end
  return lo, hi
end

local function pad(lo, hi, f) local d = (hi - lo) * (f or 0.04) return lo - d, hi + d end

local function colorbar(svg, x, y, h, vmin, vmax, cmap)
  local n = 64
  for i = 0, n - 1 do
    svg:rect(x, y + h - (i + 1) * h / n, 12, h / n + 0.5, { fill = colors.cmap(cmap, (i + 0.5) / n), stroke = "none" })
  end
  svg:rect(x, y, 12, h, { fill = "none", stroke = "#444444", stroke_width = 0.6 })
  for _, t in ipairs(nice_ticks(vmin, vmax, 4)) do
    if t >= vmin and t <= vmax then
      local yy = y + h - (t - vmin) / (vmax - vmin) * h
      svg:line(x + 12, yy, x + 15, yy, { stroke = "#444444" })
      svg:text(x + 17, yy + 3.5, tick_label(t), { font_size = 9 })
    end
  end
end

local function panel_of(o, fig_opts)
  if o.ax then return o.ax.fig, o.ax end
  local fig = pl.figure(fig_opts)
  return fig, fig:panel(1)
end

-- coordinates and colour values of an AnnData basis or a tensor [n, 2]
local function coords(data, basis)
  local xy = data
  if not T.is_tensor(data) then
    local key = basis and (data.obsm["X_" .. basis] and "X_" .. basis or basis)
    xy = key and data.obsm[key]
    if not xy then error("pl: no embedding obsm['X_" .. tostring(basis) .. "'] (pass basis=)", 3) end
  end
  if xy:dim() ~= 2 or xy:size(2) < 2 then error("pl: coordinates must be [n, 2] or more columns", 3) end
  local x = xy:select(2, 1):to("f64"):totable()
  local y = xy:select(2, 2):to("f64"):totable()
  return x, y
end

-- ---------- scatter ----------
-- scatter(ad | xy, {basis=, color=, size=3, alpha=0.8, cmap="viridis", title=, legend=true, ax=,
--   xlabel=, ylabel=, vmin=, vmax=, xlim={lo, hi}, ylim={lo, hi}, right=})
-- right: pixels kept right of the plotting area for the legend or colorbar (default 110 with a
-- legend, 48 with a colorbar, else 0); panels given one value line up in a column.
-- Leaves panel.view = {X=, Y= (data -> pixel), area=, xlim=, ylim=, fills= (colour per cell)}
-- for plots drawn on top (velocity arrows).
function pl.scatter(data, opts)
  local o = options.check("pl.scatter", opts, { basis = options.NONE, color = options.NONE, size = 3,
    alpha = 0.8, cmap = "viridis", title = options.NONE, legend = true, ax = options.NONE,
    xlabel = options.NONE, ylabel = options.NONE, vmin = options.NONE, vmax = options.NONE,
    frame = true, xlim = options.NONE, ylim = options.NONE, right = options.NONE })
  if o.right ~= nil and (type(o.right) ~= "number" or o.right ~= o.right or o.right < 0 or o.right == math.huge) then
    error("pl.scatter: right must be a number of pixels >= 0, got " .. tostring(o.right), 2)
  end
  local x, y = coords(data, o.basis)
  local n = #x
  local cats, codes, values
  local c = o.color
  if type(c) == "string" and not T.is_tensor(data) then
    local col = data.obs[c]
    if col == nil then error("pl.scatter: no obs column '" .. c .. "'", 2) end
    c = col
  end
  if type(c) == "table" and c.codes then
    cats, codes = c.categories, c.codes:totable()
  elseif T.is_tensor(c) then
    values = c:to("f64"):reshape(-1):totable()
  elseif type(c) == "table" then
    values = c
  end
  local right = o.right or ((cats and o.legend) and 110 or (values and 48 or 0))
  local fig, panel = panel_of(o, {})
  local svg = fig.svg_
  local a = area(panel, right, o.title)
  local xlo, xhi = pad(range_of(x))
  local ylo, yhi = pad(range_of(y))
  if o.xlim then xlo, xhi = o.xlim[1], o.xlim[2] end
  if o.ylim then ylo, yhi = o.ylim[1], o.ylim[2] end
  local X, Y = draw_axes(svg, a, xlo, xhi, ylo, yhi, { title = o.title, xlabel = o.xlabel or (o.basis and o.basis:upper() .. "1"),
    ylabel = o.ylabel or (o.basis and o.basis:upper() .. "2"), ticks = o.frame })
  local vmin, vmax
  if values then
    vmin, vmax = range_of(values)
    vmin, vmax = o.vmin or vmin, o.vmax or vmax
  end
  local fills = {}
  svg:group_open({ fill_opacity = o.alpha, stroke = "none" })
  for i = 1, n do
    local fill = "#4c72b0"
    if cats then
      local k = codes[i]
      fill = k > 0 and colors.palette[(k - 1) % #colors.palette + 1] or "#cccccc"
    elseif values then
      fill = colors.cmap(o.cmap, (values[i] - vmin) / (vmax - vmin))
    end
    if o.size > 0 then svg:circle(X(x[i]), Y(y[i]), o.size, { fill = fill }) end
    fills[i] = fill
  end
  svg:group_close()
  panel.view = { X = X, Y = Y, area = a, xlim = { xlo, xhi }, ylim = { ylo, yhi }, fills = fills }
  if cats and o.legend then
    for k, name in ipairs(cats) do
      local ly = a.y + 6 + (k - 1) * 15
      svg:circle(a.x + a.w + 14, ly, 4.5, { fill = colors.palette[(k - 1) % #colors.palette + 1] })
      svg:text(a.x + a.w + 23, ly + 4, name, { font_size = 10 })
    end
  elseif values then
    colorbar(svg, a.x + a.w + 10, a.y, a.h, vmin, vmax, o.cmap)
  end
  return fig
end

-- ---------- lines ----------
-- lines(series, {x=, labels=, title=, xlabel=, ylabel=, logy=false, ax=}); series is a tensor
-- or list of numbers (one line), or a table name -> values / a list of value lists
function pl.lines(series, opts)
  local o = options.check("pl.lines", opts, { x = options.NONE, labels = options.NONE, title = options.NONE,
    xlabel = options.NONE, ylabel = options.NONE, logy = false, ax = options.NONE, legend = true })
  local list, names = {}, {}
  if T.is_tensor(series) or (type(series) == "table" and type(series[1]) == "number") then
    list[1] = to_list(series, "series")
  elseif type(series) == "table" then
    local keys = {}
    for k in pairs(series) do keys[#keys + 1] = k end
    table.sort(keys, function(p, q) return tostring(p) < tostring(q) end)
    for _, k in ipairs(keys) do
      list[#list + 1] = to_list(series[k], "series")
      names[#names + 1] = type(k) == "string" and k or nil
    end
  else
    error("pl.lines: series must be a tensor or a table, got " .. type(series), 2)
  end
  if o.labels then names = o.labels end
  local fig, panel = panel_of(o, {})
  local svg = fig.svg_
  local right = (#names > 0 and o.legend) and 100 or 0
  local a = area(panel, right, o.title)
  local allx, ally = {}, {}
  local xs = {}
  for i, v in ipairs(list) do
    xs[i] = o.x and to_list(o.x, "x") or {}
    for j = 1, #v do
      if not o.x then xs[i][j] = j end
      local yv = o.logy and (v[j] > 0 and math.log(v[j], 10) or 0 / 0) or v[j]
      v[j] = yv
      allx[#allx + 1], ally[#ally + 1] = xs[i][j], yv
    end
  end
  local xlo, xhi = range_of(allx)
  local ylo, yhi = range_of(ally)
  ylo, yhi = pad(ylo, yhi, 0.05)
  local X, Y = draw_axes(svg, a, xlo, xhi, ylo, yhi, { title = o.title, xlabel = o.xlabel,
    ylabel = o.ylabel and (o.logy and "log10 " .. o.ylabel or o.ylabel) })
  for i, v in ipairs(list) do
    local px, py = {}, {}
    for j = 1, #v do
      if v[j] == v[j] then px[#px + 1], py[#py + 1] = X(xs[i][j]), Y(v[j]) end
    end
    svg:polyline(px, py, { stroke = colors.palette[(i - 1) % #colors.palette + 1], stroke_width = 1.6 })
  end
  if o.legend then
    for i, name in ipairs(names) do
      local ly = a.y + 8 + (i - 1) * 15
      svg:line(a.x + a.w + 8, ly, a.x + a.w + 22, ly, { stroke = colors.palette[(i - 1) % #colors.palette + 1], stroke_width = 2 })
      svg:text(a.x + a.w + 26, ly + 4, name, { font_size = 10 })
    end
  end
  return fig
end

-- ---------- heatmap ----------
-- heatmap(matrix [n, m], {row_labels=, col_labels=, cmap="viridis", vmin=, vmax=, title=, ax=,
--   colorbar=true})
function pl.heatmap(matrix, opts)
  local o = options.check("pl.heatmap", opts, { row_labels = options.NONE, col_labels = options.NONE,
    cmap = "viridis", vmin = options.NONE, vmax = options.NONE, title = options.NONE, ax = options.NONE,
    colorbar = true, xlabel = options.NONE, ylabel = options.NONE })
  if not T.is_tensor(matrix) or matrix:dim() ~= 2 then error("pl.heatmap: matrix must be a 2-d tensor", 2) end
  local n, m = matrix:size(1), matrix:size(2)
  local vals = matrix:to("f64"):contiguous():reshape(-1):totable()
  local vmin, vmax = range_of(vals)
  vmin, vmax = o.vmin or vmin, o.vmax or vmax
  local fig, panel = panel_of(o, {})
  local svg = fig.svg_
  local left = o.row_labels and 60 or 0
  local a = area(panel, o.colorbar and 48 or 0, o.title)
  a.x, a.w = a.x + left, a.w - left
  if o.col_labels then a.h = a.h - 20 end
  local cw, ch = a.w / m, a.h / n
  for i = 1, n do
    for j = 1, m do
      svg:rect(a.x + (j - 1) * cw, a.y + (i - 1) * ch, cw + 0.3, ch + 0.3,
        { fill = colors.cmap(o.cmap, (vals[(i - 1) * m + j] - vmin) / (vmax - vmin)), stroke = "none" })
    end
  end
  svg:rect(a.x, a.y, a.w, a.h, { fill = "none", stroke = "#444444", stroke_width = 0.8 })
  if o.row_labels then
    for i, lab in ipairs(o.row_labels) do
      svg:text(a.x - 4, a.y + (i - 0.5) * ch + 3.5, lab, { text_anchor = "end", font_size = 9 })
    end
  end
  if o.col_labels then
    for j, lab in ipairs(o.col_labels) do
      local cx, cy = a.x + (j - 0.5) * cw, a.y + a.h + 8
      svg:text(cx, cy, lab, { text_anchor = "end", font_size = 9,
        transform = string.format("rotate(-45 %s %s)", SVG.num(cx), SVG.num(cy)) })
    end
  end
  if o.title then svg:text(a.x + a.w / 2, a.y - 9, o.title, { text_anchor = "middle", font_size = 12 }) end
  if o.colorbar then colorbar(svg, a.x + a.w + 10, a.y, a.h, vmin, vmax, o.cmap) end
  return fig
end

-- velocity arrows, grid arrows and streamlines (velua/pl/velocity.lua)
local velocity = require "velua.pl.velocity"
pl.velocity_embedding = velocity.velocity_embedding
pl.velocity_embedding_grid = velocity.velocity_embedding_grid
pl.velocity_embedding_stream = velocity.velocity_embedding_stream
pl._streamlines = velocity.streamlines

return pl
