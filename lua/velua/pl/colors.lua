-- Colours: scanpy's default categorical palettes and the viridis colormap.
local M = {}

-- scanpy's default_20 (vega category20 reordered) and default_102 start; first 20 used here
M.palette = {
  "#1f77b4", "#ff7f0e", "#279e68", "#d62728", "#aa40fc", "#8c564b", "#e377c2", "#b5bd61",
  "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
  "#dbdb8d", "#9edae5", "#ad494a", "#8c6d31",
}

-- viridis at 9 evenly spaced stops (matplotlib's values), interpolated linearly
local viridis = {
  { 0.267004, 0.004874, 0.329415 }, { 0.282623, 0.140926, 0.457517 }, { 0.253935, 0.265254, 0.529983 },
  { 0.206756, 0.371758, 0.553117 }, { 0.163625, 0.471133, 0.558148 }, { 0.127568, 0.566949, 0.550556 },
  { 0.134692, 0.658636, 0.517649 }, { 0.266941, 0.748751, 0.440573 }, { 0.477504, 0.821444, 0.318195 },
  { 0.741388, 0.873449, 0.149561 }, { 0.993248, 0.906157, 0.143936 },
}
-- coolwarm-like diverging map (for signed values: blue - white - red)
local diverging = { { 0.230, 0.299, 0.754 }, { 0.865, 0.865, 0.865 }, { 0.706, 0.016, 0.150 } }

local function interp(stops, f)
  if f ~= f then return "#cccccc" end
  f = math.max(0, math.min(1, f))
  local x = f * (#stops - 1)
  local i = math.min(#stops - 2, math.floor(x))
  local t = x - i
  local a, b = stops[i + 1], stops[i + 2]
  local function c(k) return math.floor((a[k] + (b[k] - a[k]) * t) * 255 + 0.5) end
  return string.format("#%02x%02x%02x", c(1), c(2), c(3))
end

M.maps = { viridis = viridis, diverging = diverging }
function M.cmap(name, f)
  local stops = M.maps[name]
  if not stops then error("pl: unknown colormap '" .. tostring(name) .. "' (viridis, diverging)", 3) end
  return interp(stops, f)
end

return M
