-- Agreement of velua's velocity tools with the scVelo 0.3.3 oracle (../shared/oracle), as a
-- markdown table for docs/benchmarks.md: each step from the oracle's own inputs, and the whole
-- chain from the raw counts through velua's preprocessing. The same checks with pass/fail
-- tolerances are in tests/velocity_spec.lua.
-- build/bin/velua run bench/velocity_agreement.lua
local velua = require "velua"
local B = require "bench.common"
local T = velua.tensor
local pp, tl = velua.pp, velua.tl

local function d64(m) if T.is_sparse(m) then m = m:to_dense() end return m:to("f64") end
local function maxabs(a, b) return (d64(a) - d64(b)):abs():max():item() end
local function relmax(a, b) local bb = d64(b) return (d64(a) - bb):abs():max():item() / bb:abs():max():item() end
local function which(mask) local o = {} for j, b in ipairs(mask) do if b then o[#o + 1] = j end end return o end
local function signed(ad, k) return d64(ad.obsp[k .. "_graph"]) + d64(ad.obsp[k .. "_graph_neg"]) end
local function patdiff(a, b) return math.tointeger((a:ne(0):to("i64") - b:ne(0):to("i64")):abs():sum():item()) end
local function gene_rel(a, b, mask)
  local x, y, w = a:to("f64"):totable(), b:to("f64"):totable(), 0
  for j = 1, #y do
    if not mask or mask[j] then w = math.max(w, math.abs(x[j] - y[j]) / math.max(math.abs(y[j]), 1e-3)) end
  end
  return w
end
local function emb_err(a, ref) ref = ref:to("f64") return (a - ref):abs():max():item() / ref:norm(2, 2):max():item() end

local function measure(ad, ora)
  local vg = ora.var.velocity_genes:totable()
  local idx = which(vg)
  local r = {}
  local same = true
  for j, b in ipairs(ad.var.velocity_genes:totable()) do if b ~= vg[j] then same = false end end
  r[#r + 1] = { "velocity genes identical", same and "yes" or "no" }
  r[#r + 1] = { "gamma (stochastic), max rel per velocity gene", gene_rel(ad.var.velocity_gamma, ora.var.velocity_gamma, vg) }
  r[#r + 1] = { "gamma (deterministic), max rel per gene", gene_rel(ad.var.velocity_det_gamma, ora.var.velocity_det_gamma) }
  r[#r + 1] = { "velocity (stochastic), rel max on velocity genes", relmax(ad.layers.velocity:index(2, idx), ora.layers.velocity:index(2, idx)) }
  r[#r + 1] = { "velocity (deterministic), rel max on velocity genes", relmax(ad.layers.velocity_det:index(2, idx), ora.layers.velocity_det:index(2, idx)) }
  for _, k in ipairs { "velocity", "velocity_det" } do
    local a, b = signed(ad, k), signed(ora, k)
    r[#r + 1] = { k .. "_graph (+neg): pattern differences / max abs diff",
      string.format("%d / %.2e", patdiff(a, b), (a - b):abs():max():item()) }
  end
  r[#r + 1] = { "self_transition, max abs", maxabs(ad.obs.velocity_self_transition, ora.obs.velocity_self_transition) }
  r[#r + 1] = { "T (default), max abs", maxabs(tl.transition_matrix(ad), ora.obsp.T_velocity) }
  r[#r + 1] = { "T (negative cosines), max abs", maxabs(tl.transition_matrix(ad, { use_negative_cosines = true }), ora.obsp.T_velocity_negcos) }
  r[#r + 1] = { "velocity_umap, max abs / max norm", emb_err(ad.obsm.velocity_umap, ora.obsm.velocity_umap) }
  r[#r + 1] = { "velocity_pca (30 comps), max abs / max norm", emb_err(ad.obsm.velocity_pca, ora.obsm.velocity_pca) }
  r[#r + 1] = { "velocity_confidence, max abs", maxabs(ad.obs.velocity_confidence, ora.obs.velocity_confidence) }
  r[#r + 1] = { "velocity_length, max abs", maxabs(ad.obs.velocity_length, ora.obs.velocity_length) }
  r[#r + 1] = { "velocity_confidence_transition, max abs", maxabs(ad.obs.velocity_confidence_transition, ora.obs.velocity_confidence_transition) }
  local ok, cons = pcall(function() return tl.consistency end)
  if ok and cons then
    local c = ad.obs.clusters and "clusters" or nil
    tl.consistency(ad, { groupby = c })
    r[#r + 1] = { "consistency (overall), max abs", maxabs(ad.obs.consistency_overall, ora.obs.consistency_overall) }
    if c then r[#r + 1] = { "consistency (cell type), max abs", maxabs(ad.obs.consistency_celltype, ora.obs.consistency_celltype) } end
  end
  return r
end

local function run_velocity(ad)
  tl.velocity(ad, { mode = "deterministic", vkey = "velocity_det" })
  tl.velocity(ad)
  tl.velocity_graph(ad)
  tl.velocity_graph(ad, { vkey = "velocity_det" })
  tl.velocity_embedding(ad, { basis = "umap" })
  tl.velocity_embedding(ad, { basis = "pca" })
  tl.velocity_confidence(ad)
  return ad
end

local results, names = {}, {}
for _, D in ipairs {
  { "dentategyrus100", "data/dentategyrus_scvelo/dentategyrus_100obs.h5ad", "oracle/dentategyrus100_scvelo.h5ad" },
  { "pancreas", "data/pancreas_veloviz/pancreas.h5ad", "oracle/pancreas_scvelo.h5ad" },
} do
  local raw, orp = B.helpers.shared_path(D[2]), B.helpers.shared_path(D[3])
  if raw and orp then
    local ora = velua.read_h5ad(orp)
    -- step by step: the oracle's counts, moments, graphs and embedding
    local ad = velua.AnnData { X = ora.X, obs_names = ora.obs_names, var_names = ora.var_names,
      layers = { spliced = ora.layers.spliced, unspliced = ora.layers.unspliced, Ms = ora.layers.Ms, Mu = ora.layers.Mu },
      obsp = { distances = ora.obsp.distances, connectivities = ora.obsp.connectivities },
      obsm = { X_umap = ora.obsm.X_umap, X_pca = ora.obsm.X_pca }, uns = { neighbors = ora.uns.neighbors } }
    if ora.var.highly_variable then ad.var.highly_variable = ora.var.highly_variable end
    if ora.obs.clusters then ad.obs.clusters = ora.obs.clusters end
    results[#results + 1] = measure(run_velocity(ad), ora)
    names[#names + 1] = D[1] .. " (oracle inputs)"
    -- from raw counts
    local a2 = velua.read_h5ad(raw)
    a2 = pp.filter_and_normalize(a2, { min_shared_counts = 20, n_top_genes = 2000 })
    pp.pca(a2, { n_comps = 30 }); pp.neighbors(a2, { n_neighbors = 30, n_pcs = 30 }); pp.moments(a2)
    a2.obsm.X_umap = ora.obsm.X_umap
    results[#results + 1] = measure(run_velocity(a2), ora)
    names[#names + 1] = D[1] .. " (from raw counts)"
  end
end

print(string.format("Measured %s on %s.\n", os.date("!%Y-%m-%d"), B.machine()))
local hdr = "| quantity |"
for _, n in ipairs(names) do hdr = hdr .. " " .. n .. " |" end
print(hdr)
print("|---|" .. string.rep("---|", #names))
for i, row in ipairs(results[1] or {}) do
  local line = "| " .. row[1] .. " |"
  for k = 1, #results do
    local v = results[k][i] and results[k][i][2]
    line = line .. " " .. (type(v) == "number" and string.format("%.2e", v) or tostring(v)) .. " |"
  end
  print(line)
end
