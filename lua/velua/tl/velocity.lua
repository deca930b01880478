-- RNA velocity as scVelo 0.3.3's tl.velocity (SPEC section 2, oracle README section 4):
-- the steady-state ("deterministic") fit of gamma on the upper extreme cells and the
-- stochastic fit that adds second moments. Kernels: csrc/core/velocity_fit.c.
local core = require "velua.core"
local options = require "velua.options"
local T = require "velua.tensor"
local pputil = require "velua.pp.util"
local util = require "velua.tl.util"

local M = {}
local NONE = options.NONE

local defaults = {
  vkey = "velocity", mode = "stochastic", min_r2 = 0.01, min_ratio = 0.01, perc = { 5, 95 },
  use_highly_variable = true, fit_offset = false, fit_offset2 = false, nan_non_velocity = true,
  groups_for_fit = NONE,
}

local function upper_perc(fname, perc)
  local p = perc
  if type(perc) == "table" then p = perc[#perc] end
  if T.is_tensor(perc) then p = perc:totable(); p = p[#p] end
  if type(p) ~= "number" or p < 0 or p > 100 then
    error(fname .. ": perc must be a number or {lower, upper} in [0, 100], got " .. tostring(perc), 3)
  end
  return p
end

-- numpy's linear percentile of a Lua array of numbers
local function percentile(values, q)
  local a = {}
  for i, v in ipairs(values) do a[i] = v end
  table.sort(a)
  local vi = q / 100 * (#a - 1)
  local lo = math.floor(vi)
  if lo >= #a - 1 then return a[#a] end
  local t = vi - lo
  local x, y = a[lo + 1], a[lo + 2]
  if t >= 0.5 then return y - (y - x) * (1 - t) end
  return x + (y - x) * t
end

-- velocity_genes(ad, {vkey=, min_r2=0.01, min_ratio=0.01, use_highly_variable=true}) -> Lua
-- array of booleans from the stored fit (var.<vkey>_r2, var.<vkey>_qreg_ratio or _gamma):
-- r2 > min_r2, gamma > min_ratio, expressed (Ms and Mu not all zero), highly variable.
function M.velocity_genes(ad, opts)
  local o = options.check("velocity_genes", opts, { vkey = "velocity", min_r2 = 0.01,
    min_ratio = 0.01, use_highly_variable = true })
  local r2 = ad.var[o.vkey .. "_r2"]
  local gam = ad.var[o.vkey .. "_qreg_ratio"] or ad.var[o.vkey .. "_gamma"]
  if r2 == nil or gam == nil then
    error("velocity_genes: var." .. o.vkey .. "_r2 is missing; run tl.velocity first", 2)
  end
  r2, gam = r2:totable(), gam:totable()
  local hvg = o.use_highly_variable and ad.var.highly_variable and util.bools(ad.var.highly_variable)
  local out = {}
  for j = 1, #r2 do
    out[j] = r2[j] > o.min_r2 and gam[j] > o.min_ratio and (not hvg or hvg[j])
  end
  return out
end

-- Second moments A(s∘s), A(s∘u) of the genes idx (dense f32 [n, #idx]).
local function second_moments(ad, idx)
  local s, u = ad.layers.spliced, ad.layers.unspliced
  if s == nil or u == nil then
    error("velocity: stochastic mode needs layers.spliced and layers.unspliced (for the second moments)", 3)
  end
  local A = require("velua.pp.moments").moments_operator(ad)
  local ss = pputil.dense(pputil.float_matrix(pputil.select_columns(s, idx))):to("f32")
  local uu = pputil.dense(pputil.float_matrix(pputil.select_columns(u, idx))):to("f32")
  return A:matmul((ss * ss):contiguous()), A:matmul((ss * uu):contiguous())
end

-- velocity(ad, {mode="stochastic"|"deterministic", vkey="velocity", min_r2=0.01,
-- min_ratio=0.01, perc={5, 95}, use_highly_variable=true, nan_non_velocity=true}):
-- layers.<vkey> = Mu - gamma Ms (f32), var.<vkey>_gamma, _qreg_ratio (the steady-state
-- gamma), _r2, _genes and uns.<vkey>_params. Needs layers Ms and Mu (pp.moments); the
-- stochastic mode also the normalised spliced/unspliced counts and the neighbour graph. Genes
-- that are not velocity genes get NaN velocity (SPEC section 2; scVelo keeps their values:
-- nan_non_velocity=false). Returns ad.
function M.velocity(ad, opts)
  pputil.check_adata("velocity", ad)
  local o = options.check("velocity", opts, defaults)
  if o.mode ~= "stochastic" and o.mode ~= "deterministic" then
    error("velocity: mode must be \"stochastic\" or \"deterministic\", got " .. tostring(o.mode) ..
      (o.mode == "dynamical" and " (the dynamical model is not implemented)" or ""), 2)
  end
  if o.fit_offset or o.fit_offset2 then
    error("velocity: fit_offset/fit_offset2 = true is not supported (scVelo's default is false)", 2)
  end
  if o.groups_for_fit ~= nil then error("velocity: groups_for_fit is not supported", 2) end
  local perc = upper_perc("velocity", o.perc)
  local hint = "run pp.moments first"
  local Ms = util.dense_layer("velocity", ad, "Ms", hint)
  local Mu = util.dense_layer("velocity", ad, "Mu", hint)
  for name, m in pairs { Ms = Ms, Mu = Mu } do
    local bad = m:ne(m):sum():item()
    if bad > 0 then error(string.format("velocity: layers.%s holds %d NaN values", name, bad), 2) end
  end
  local gamma_det, r2, _, expressed = core.velocity_fit_deterministic(Ms, Mu, perc)
  local g = ad.n_vars
  local gd, r2t, ex = gamma_det:totable(), r2:totable(), util.bools(expressed)
  local hvg = o.use_highly_variable and ad.var.highly_variable and util.bools(ad.var.highly_variable)
  local vgenes, count = {}, 0
  for j = 1, g do
    vgenes[j] = r2t[j] > o.min_r2 and gd[j] > o.min_ratio and ex[j] and (not hvg or hvg[j])
    if vgenes[j] then count = count + 1 end
  end
  if count < 2 then
    local lim = percentile(r2t, 80)
    count = 0
    for j = 1, g do vgenes[j] = r2t[j] > lim; if vgenes[j] then count = count + 1 end end
    io.stderr:write(string.format("velocity: fewer than 2 genes pass min_r2=%g; using the %d genes " ..
      "with r2 above its 80th percentile\n", o.min_r2, count))
  end
  local gam = {}
  for j = 1, g do gam[j] = gd[j] end
  if o.mode == "stochastic" then
    local idx = util.which(vgenes)
    if #idx == 0 then for j = 1, g do idx[j] = j end end
    local Mss, Mus = second_moments(ad, idx)
    local gsub = T.tensor((function() local t = {} for i, j in ipairs(idx) do t[i] = gd[j] end return t end)(),
      { dtype = "f64" })
    local gs = core.velocity_fit_stochastic(util.columns(Ms, idx), util.columns(Mu, idx),
      Mss:contiguous(), Mus:contiguous(), gsub, perc):totable()
    for i, j in ipairs(idx) do gam[j] = gs[i] end
  end
  local gamma32 = T.tensor(gam, { dtype = "f32" })
  local V = Mu - Ms * gamma32
  local vmask = T.tensor(vgenes, { dtype = "bool" })
  if o.nan_non_velocity then V = T.where(vmask, V, 0 / 0) end
  local vkey = o.vkey
  ad.layers[vkey] = V:contiguous()
  ad.var[vkey .. "_gamma"] = gamma32
  ad.var[vkey .. "_qreg_ratio"] = gamma_det:to("f32")
  ad.var[vkey .. "_r2"] = r2
  ad.var[vkey .. "_genes"] = vmask
  local params = { mode = o.mode, fit_offset = false, perc = T.tensor({ 5, perc }, { dtype = "i64" }) }
  if math.type(perc) ~= "integer" and perc ~= math.floor(perc) then
    params.perc = T.tensor({ 5, perc }, { dtype = "f64" })
  end
  ad.uns[vkey .. "_params"] = params
  if count < 10 then
    io.stderr:write("velocity: only " .. count .. " velocity genes; consider a lower min_r2 or " ..
      "use_highly_variable=false\n")
  end
  return ad
end

return M
