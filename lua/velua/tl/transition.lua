-- Transition matrices from the velocity graph, as scVelo 0.3.3's transition_matrix
-- (SPEC section 3, oracle README section 4 item 8): an exponential kernel exp(scale * pi) on
-- every stored correlation (or sign(pi) expm1(scale |pi|) with use_negative_cosines), the
-- self-transition score on the diagonal, rows divided by their absolute sums; optionally
-- transposed (backward) and weighted by a Gaussian diffusion kernel on an embedding.
-- Kernel: csrc/core/transition.c.
local core = require "velua.core"
local options = require "velua.options"
local T = require "velua.tensor"
local pputil = require "velua.pp.util"
local util = require "velua.tl.util"

local M = {}
local NONE = options.NONE

local defaults = {
  vkey = "velocity", scale = 10, self_transitions = true, use_negative_cosines = false,
  backward = false, basis = NONE, weight_diffusion = 0, scale_diffusion = 1,
}

local function parts(s)
  local sh = s:shape()
  return s:indptr(), s:indices(), s:values():to("f32"), sh[1], sh[2]
end

-- Gaussian diffusion kernel on the embedding X (n x d): entries with T > 0 are multiplied by
-- exp(-d^2 / (2 s^2)), s = scale_diffusion * mean of those distances; others are dropped.
local function diffuse(Tm, X, o)
  local n = Tm:shape()[1]
  local ip, ix, v = Tm:indptr(), Tm:indices(), Tm:values()
  local keep = v:gt(0)
  ip, ix, v = core.csr_keep(ip, ix, v, keep)
  local rows = core.csr_row_ids(ip)
  X = X:to("f64")
  local d = (X:index(1, rows) - X:index(1, ix + 1)):norm(2, 2)
  local s = o.scale_diffusion * d:mean():item()
  local k = (d * d * (-0.5 / (s * s))):exp()
  local w = v:to("f64") * k
  if o.weight_diffusion > 0 and o.weight_diffusion < 1 then
    local k2 = (d * d * (-0.5 / ((s / 2) * (s / 2)))):exp()
    w = w * (1 - o.weight_diffusion) + k2 * o.weight_diffusion
  end
  local vals = core.csr_normalize_abs_rows(ip, w:to("f32"):contiguous())
  return T.sparse_csr(ip, ix, vals, { n, n })
end

-- from_graphs(graph, graph_neg, self_prob, opts) -> T (f32 CSR): the kernel of given graphs
-- (graph_neg and self_prob may be nil).
function M.from_graphs(graph, graph_neg, self_prob, opts)
  local o = options.check("transition_matrix", opts, defaults)
  local n = graph:shape()[1]
  local a = table.pack(parts(graph))
  local b = graph_neg and table.pack(parts(graph_neg)) or { n = 5 }
  local sp = o.self_transitions and self_prob or nil
  local ip, ix, v = core.transition_kernel(a[1], a[2], a[3], a[4], a[5], b[1], b[2], b[3], b[4], b[5],
    sp, o.scale, o.use_negative_cosines)
  local Tm = T.sparse_csr(ip, ix, v, { n, n })
  if o.backward then Tm = Tm:transpose() end
  Tm = T.sparse_csr(Tm:indptr(), Tm:indices(), core.csr_normalize_abs_rows(Tm:indptr(),
    Tm:values():to("f32")), { n, n })
  return Tm
end

-- transition_matrix(ad, {vkey="velocity", scale=10, self_transitions=true,
-- use_negative_cosines=false, backward=false, basis=nil, weight_diffusion=0,
-- scale_diffusion=1}) -> T, an n x n f32 CSR matrix (rows sum in absolute value to 1). Needs
-- obsp.<vkey>_graph (tl.velocity_graph); with basis, obsm.X_<basis> for the diffusion kernel.
function M.transition_matrix(ad, opts)
  pputil.check_adata("transition_matrix", ad)
  local o = options.check("transition_matrix", opts, defaults)
  if type(o.scale) ~= "number" or o.scale ~= o.scale or o.scale <= 0 then
    error("transition_matrix: scale must be a positive number, got " .. tostring(o.scale), 2)
  end
  local vkey = o.vkey
  local graph = ad.obsp[vkey .. "_graph"]
  if graph == nil then
    error("transition_matrix: obsp." .. vkey .. "_graph is missing; run tl.velocity_graph first", 2)
  end
  local neg = ad.obsp[vkey .. "_graph_neg"]
  if not T.is_sparse(graph) then graph = T.sparse_from_dense(graph) end
  if neg ~= nil and not T.is_sparse(neg) then neg = T.sparse_from_dense(neg) end
  local self = o.self_transitions and require("velua.tl.velocity_graph").self_transition(graph) or nil
  local fo = {}
  for k, v in pairs(o) do if k ~= "basis" then fo[k] = v end end
  local Tm = M.from_graphs(graph, neg, self, fo)
  if o.basis ~= nil then
    local X = ad.obsm["X_" .. o.basis]
    if X == nil then error("transition_matrix: obsm.X_" .. o.basis .. " is missing", 2) end
    if X:size(1) ~= ad.n_obs then
      error(string.format("transition_matrix: obsm.X_%s has %d rows, expected %d", o.basis,
        X:size(1), ad.n_obs), 2)
    end
    Tm = diffuse(Tm, X, o)
  end
  return Tm
end

return M
