-- Shared helpers of velua.tl: checked access to layers and graphs, gene masks and the neighbour
-- lists scVelo takes from obsp.distances.
local core = require "velua.core"
local T = require "velua.tensor"
local pputil = require "velua.pp.util"

local M = {}

-- The dense f32 layer `name` of ad, contiguous; a clear error when it is missing.
function M.dense_layer(fname, ad, name, hint)
  local m = pputil.layer(ad, name)
  if m == nil then
    error(string.format("%s: layers.%s is missing%s", fname, name, hint and ("; " .. hint) or ""), 3)
  end
  m = pputil.dense(pputil.float_matrix(m))
  local sh = m:shape()
  if #sh ~= 2 or sh[1] ~= ad.n_obs or sh[2] ~= ad.n_vars then
    error(string.format("%s: layers.%s has shape %s, expected {%d, %d}", fname, name,
      "{" .. table.concat(sh, ", ") .. "}", ad.n_obs, ad.n_vars), 3)
  end
  return m:to("f32"):contiguous()
end

-- Lua array of booleans from a bool/number tensor or a Lua array.
function M.bools(x)
  if T.is_tensor(x) then
    local t = x:totable()
    for i = 1, #t do t[i] = (t[i] == true) or (type(t[i]) == "number" and t[i] ~= 0) end
    return t
  end
  return x
end

-- Gene mask (Lua booleans) for `subset`: nil (all), a bool tensor/array of n_vars entries, or
-- a list of gene names.
function M.gene_mask(fname, ad, subset)
  local n = ad.n_vars
  local mask = {}
  if subset == nil then
    for j = 1, n do mask[j] = true end
    return mask
  end
  if type(subset) == "table" and type(subset[1]) == "string" then
    local want = {}
    for _, s in ipairs(subset) do want[s] = true end
    local names = ad.var_names or {}
    local any = false
    for j = 1, n do mask[j] = want[names[j]] == true; any = any or mask[j] end
    if not any then error(fname .. ": none of the gene_subset names is in var_names", 3) end
    return mask
  end
  local b = M.bools(subset)
  if type(b) ~= "table" or #b ~= n then
    error(string.format("%s: gene mask must have %d entries (n_vars), got %s", fname, n,
      type(b) == "table" and tostring(#b) or type(b)), 3)
  end
  return b
end

-- The stored velocity-gene mask var.<vkey>_genes, or all genes.
function M.velocity_gene_mask(ad, vkey)
  local col = ad.var and ad.var[vkey .. "_genes"]
  if col == nil then return M.gene_mask("", ad, nil) end
  return M.bools(col)
end

-- Columns of V that hold NaN: genes entirely NaN are dropped from mask (scVelo drops any
-- gene with a NaN); a gene with NaN in only some cells is an error naming it.
function M.drop_nan_genes(fname, ad, V, mask, vname)
  local nan_count = V:ne(V):sum(1):totable()
  local names = ad.var_names or {}
  for j = 1, #mask do
    local c = nan_count[j]
    if c ~= 0 and mask[j] then
      if c == ad.n_obs then
        mask[j] = false
      else
        error(string.format("%s: layers.%s has NaN in %d of %d cells of gene %d (%s)", fname,
          vname, math.tointeger(c) or c, ad.n_obs, j, tostring(names[j])), 3)
      end
    end
  end
  return mask
end

-- Indices 1..n where the Lua array of booleans is true.
M.which = pputil.which

-- Columns idx of a dense matrix, contiguous (all columns when idx covers them in order).
function M.columns(m, idx)
  if #idx == m:size(2) then return m:contiguous() end
  return m:index(2, idx):contiguous()
end

-- scVelo's get_indices on obsp.distances: [n, k] neighbour lists (1-based), k the smallest row
-- count (or n_neighbors when smaller); rows with more entries keep their nearest.
function M.neighbor_lists(fname, ad, n_neighbors)
  local D = ad.obsp and ad.obsp.distances
  if D == nil then error(fname .. ": obsp.distances is missing; run pp.neighbors first", 3) end
  if not T.is_sparse(D) then D = T.sparse_from_dense(D) end
  local sh = D:shape()
  if sh[1] ~= ad.n_obs or sh[2] ~= ad.n_obs then
    error(string.format("%s: obsp.distances has shape {%d, %d}, expected {%d, %d}", fname, sh[1],
      sh[2], ad.n_obs, ad.n_obs), 3)
  end
  local ip = D:indptr()
  local counts = ip:narrow(1, 2, sh[1]) - ip:narrow(1, 1, sh[1])
  local kmin, at = counts:min(1)
  kmin = kmin:item()
  if kmin == 0 then
    error(string.format("%s: cell %d has no neighbours in obsp.distances (the graph is corrupted; " ..
      "recompute it with pp.neighbors)", fname, at:item()), 3)
  end
  local k = n_neighbors and math.min(kmin, n_neighbors) or kmin
  return core.neighbor_lists(ip, D:indices(), D:values(), sh[1], sh[2], k)
end

-- Sets ad.uns[key] to a table (creating it) and returns it.
function M.params(ad, key)
  ad.uns = ad.uns or {}
  local p = ad.uns[key]
  if type(p) ~= "table" then p = {}; ad.uns[key] = p end
  return p
end

return M
