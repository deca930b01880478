-- Deep comparison of AnnData objects and their values (tensors, CSR, columns, tables), for
-- the AnnData specs: each returns true, or false and where the first difference is.
local velua = require "velua"
local T = velua.tensor
local core = require "velua.core"

local M = {}

-- Deep comparison of two values as velua represents them; returns false, where on a mismatch.
local function same(a, b, where)
  where = where or ""
  if T.is_sparse(a) or T.is_sparse(b) then
    if not (T.is_sparse(a) and T.is_sparse(b)) then return false, where .. ": sparse vs dense" end
    local ok, w = same(a:shape(), b:shape(), where .. ".shape")
    if not ok then return ok, w end
    for _, part in ipairs { "indptr", "indices", "values" } do
      ok, w = same(a[part](a), b[part](b), where .. "." .. part)
      if not ok then return ok, w end
    end
    return true
  end
  if core.is_tensor(a) or core.is_tensor(b) then
    if not (core.is_tensor(a) and core.is_tensor(b)) then return false, where .. ": tensor vs " .. type(b) end
    if core.dtype(a) ~= core.dtype(b) then return false, where .. ": dtype " .. core.dtype(a) .. " vs " .. core.dtype(b) end
    local ok, w = same(core.shape(a), core.shape(b), where .. ".shape")
    if not ok then return ok, w end
    if core.numel(a) == 0 then return true end
    local eq = core.eq(a, b)
    if core.dtype(a) == "f32" or core.dtype(a) == "f64" then
      eq = core.logical_or(eq, core.logical_and(core.isnan(a), core.isnan(b)))
    end
    if not core.item(core.all(eq)) then return false, where .. ": values differ" end
    return true
  end
  if type(a) == "table" and type(b) == "table" then
    local ka, kb = {}, {}
    for k in pairs(a) do ka[#ka + 1] = tostring(k) end
    for k in pairs(b) do kb[#kb + 1] = tostring(k) end
    table.sort(ka); table.sort(kb)
    if table.concat(ka, "\0") ~= table.concat(kb, "\0") then
      return false, where .. ": keys {" .. table.concat(ka, ",") .. "} vs {" .. table.concat(kb, ",") .. "}"
    end
    for k, v in pairs(a) do
      local ok, w = same(v, b[k], where .. "." .. tostring(k))
      if not ok then return ok, w end
    end
    return true
  end
  if a ~= b and not (a ~= a and b ~= b) then
    return false, where .. ": " .. tostring(a) .. " vs " .. tostring(b)
  end
  return true
end

-- Every element of two AnnData objects, keys in the same order.
local function same_anndata(a, b)
  local checks = { { a.n_obs, b.n_obs, "n_obs" }, { a.n_vars, b.n_vars, "n_vars" },
    { a.obs_names, b.obs_names, "obs_names" }, { a.var_names, b.var_names, "var_names" },
    { a.uns, b.uns, "uns" } }
  if a.X ~= nil or b.X ~= nil then checks[#checks + 1] = { a.X, b.X, "X" } end
  for _, slot in ipairs { "obs", "var", "layers", "obsm", "varm", "obsp", "varp" } do
    local ka, kb = velua.AnnData.keys(a[slot]), velua.AnnData.keys(b[slot])
    checks[#checks + 1] = { ka, kb, slot .. " keys" }
    for _, k in ipairs(ka) do checks[#checks + 1] = { a[slot][k], b[slot][k], slot .. "." .. k } end
  end
  if a.raw or b.raw then
    if not (a.raw and b.raw) then return false, "raw on one side only" end
    checks[#checks + 1] = { a.raw.X, b.raw.X, "raw.X" }
    checks[#checks + 1] = { a.raw.var_names, b.raw.var_names, "raw.var_names" }
    for k, v in pairs(a.raw.var) do checks[#checks + 1] = { v, b.raw.var[k], "raw.var." .. k } end
  end
  for _, c in ipairs(checks) do
    local ok, w = same(c[1], c[2], c[3])
    if not ok then return false, w end
  end
  return true
end


M.same = same
M.same_anndata = same_anndata
return M
