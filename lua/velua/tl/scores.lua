-- Scores of a velocity field, as scVelo 0.3.3 (SPEC section 3, oracle README section 4 items
-- 10 and 12): the kNN velocity confidence and length, the transition confidence, and the
-- reconstructability of the transition matrix from a gene subset.
local core = require "velua.core"
local options = require "velua.options"
local T = require "velua.tensor"
local pputil = require "velua.pp.util"
local util = require "velua.tl.util"

local M = {}
local NONE = options.NONE

-- velocity genes without NaN: (V [n, g] f32, idx)
local function velocity_columns(fname, ad, vkey, layer)
  local V = util.dense_layer(fname, ad, layer or vkey, "run tl.velocity first")
  local mask = util.drop_nan_genes(fname, ad, V, util.velocity_gene_mask(ad, vkey), vkey)
  local idx = util.which(mask)
  if #idx == 0 then error(fname .. ": no velocity genes without NaN", 3) end
  return V, idx
end

local function round2(t)
  local a = t:totable()
  for i = 1, #a do
    local x = a[i] * 100
    local r = math.floor(x + 0.5)
    if r - x == 0.5 and r % 2 == 1 then r = r - 1 end -- half to even, as numpy.round
    a[i] = r / 100
  end
  return T.tensor(a, { dtype = "f32" })
end

-- velocity_confidence(ad, {vkey="velocity", transition=true}): obs.<vkey>_length (norm of
-- the per-cell centred velocity over velocity genes, rounded to 2 decimals),
-- obs.<vkey>_confidence (mean correlation with the velocities of the kNN of
-- obsp.distances, clipped at 0) and, with transition, obs.<vkey>_confidence_transition.
-- Returns ad.
function M.velocity_confidence(ad, opts)
  pputil.check_adata("velocity_confidence", ad)
  local o = options.check("velocity_confidence", opts, { vkey = "velocity", transition = true })
  local V, idx = velocity_columns("velocity_confidence", ad, o.vkey)
  V = util.columns(V, idx)
  V = (V - V:mean(2, true)):contiguous()
  local nbr = util.neighbor_lists("velocity_confidence", ad)
  local R = core.velocity_confidence(V, nbr)
  ad.obs[o.vkey .. "_length"] = round2(V:to("f64"):norm(2, 2))
  ad.obs[o.vkey .. "_confidence"] = R:clamp(0)
  if o.transition and ad.obsp[o.vkey .. "_graph"] ~= nil then
    M.velocity_confidence_transition(ad, { vkey = o.vkey })
  end
  return ad
end

-- velocity_confidence_transition(ad, {vkey="velocity", xkey="Ms", scale=10}):
-- obs.<vkey>_confidence_transition = corr((T Ms - Ms)_i, v_i) over velocity genes with T the
-- default transition matrix (f32). Where T_ii is close to 1 the value is cancellation noise.
-- Returns ad.
function M.velocity_confidence_transition(ad, opts)
  pputil.check_adata("velocity_confidence_transition", ad)
  local o = options.check("velocity_confidence_transition", opts,
    { vkey = "velocity", xkey = "Ms", scale = 10 })
  local V, idx = velocity_columns("velocity_confidence_transition", ad, o.vkey)
  local X = util.dense_layer("velocity_confidence_transition", ad, o.xkey, "run pp.moments first")
  X, V = util.columns(X, idx), util.columns(V, idx)
  local Tm = require("velua.tl.transition").transition_matrix(ad, { vkey = o.vkey, scale = o.scale })
  local dX = Tm:matmul(X) - X
  dX = dX - dX:mean(2, true)
  V = V - V:mean(2, true)
  local norms = dX:norm(2, 2) * V:norm(2, 2)
  norms = norms + norms:eq(0):to(norms:dtype())
  ad.obs[o.vkey .. "_confidence_transition"] = (dX * V):sum(2) / norms
  return ad
end

local function median(t)
  local a = {}
  for _, x in ipairs(t:totable()) do if x == x then a[#a + 1] = x end end
  if #a == 0 then return 0 / 0 end
  table.sort(a)
  local m = (#a + 1) / 2
  if m == math.floor(m) then return a[m] end
  return (a[math.floor(m)] + a[math.ceil(m)]) / 2
end

-- reconstructability(ad, {gene_subset=, vkey="velocity", scale=10, use_negative_cosines=false})
-- -> r, per_cell: how well the transition matrix from the gene subset reproduces the one from
-- all velocity genes; per_cell[i] is the Pearson correlation of the two rows over the union of
-- their stored entries (SPEC section 3), r its median over the cells (NaN rows skipped).
-- The full graph is taken from obsp.<vkey>_graph (computed when missing).
function M.reconstructability(ad, opts)
  pputil.check_adata("reconstructability", ad)
  local o = options.check("reconstructability", opts, { gene_subset = NONE, vkey = "velocity",
    scale = 10, use_negative_cosines = false, self_transitions = true })
  if o.gene_subset == nil then error("reconstructability: gene_subset is required", 2) end
  local tr = require "velua.tl.transition"
  local vg = require "velua.tl.velocity_graph"
  if ad.obsp[o.vkey .. "_graph"] == nil then vg.velocity_graph(ad, { vkey = o.vkey }) end
  local topts = { vkey = o.vkey, scale = o.scale, use_negative_cosines = o.use_negative_cosines,
    self_transitions = o.self_transitions }
  local T1 = tr.transition_matrix(ad, topts)
  local g, gneg, self = vg.compute(ad, { vkey = o.vkey, gene_subset = o.gene_subset }, "reconstructability")
  local T2 = tr.from_graphs(g, gneg, self, topts)
  local sh = T1:shape()
  local r = core.csr_row_correlation(T1:indptr(), T1:indices(), T1:values(), sh[1], sh[2],
    T2:indptr(), T2:indices(), T2:values(), sh[1], sh[2])
  return median(r), r
end

return M
