-- .loom files (loompy 2 and 3, velocyto's output) as AnnData: the main matrix (genes x cells
-- on disk) becomes X (cells x genes), each layer a layer, column attributes obs (1-d) or obsm
-- (2-d), row attributes var or varm, CellID / Gene the names, col_graphs / row_graphs obsp /
-- varp, global attributes uns.
local core = require "velua.core"
local options = require "velua.options"
local anndata = require "velua.anndata"

local M = {}

local function T() return require("velua").tensor end

-- loompy 2 stores strings as fixed-length ASCII with non-ASCII characters as XML entities.
local NAMED = { amp = "&", lt = "<", gt = ">", quot = '"', apos = "'" }
local function unescape_one(s)
  if not s:find("&", 1, true) then return s end
  return (s:gsub("&(#?[xX]?)(%w+);", function(kind, body)
    local code
    if kind == "#" then code = tonumber(body)
    elseif kind == "#x" or kind == "#X" then code = tonumber(body, 16)
    else return NAMED[body] and NAMED[body] or nil end
    if code and code >= 0 and code < 0x110000 then return utf8.char(code) end
  end))
end
local function unescape(list)
  for i, s in ipairs(list) do list[i] = unescape_one(s) end
  return list
end

local function at(path, fn, ...)
  local r = table.pack(pcall(fn, ...))
  if not r[1] then
    local msg = tostring(r[2]):gsub("^[^:\n]*%.lua:%d+: ", ""):gsub("^h5_[%w_]+: ", "")
    if not msg:find("^element '") then msg = string.format("element '%s': %s", path, msg) end
    error(msg, 0)
  end
  return table.unpack(r, 2, r.n)
end

local function read_strings(f, p)
  local info = core.h5_info(f, p)
  local s = core.h5_read_strings(f, p)
  if type(s) == "string" then s = { s } end
  if not info.variable_string then s = unescape(s) end
  return s, info
end

-- An attribute dataset: strings (Lua array) or a tensor.
local function read_attr_dataset(f, p)
  local info = core.h5_info(f, p)
  if info.class == "string" then return (read_strings(f, p)), info end
  return core.h5_read(f, p), info
end

-- The genes x cells matrix at p as cells x genes: dense (dtype f32 unless dtype given) or CSR
-- built block by block so that only a slice of the dense matrix is in memory at once.
local function read_matrix(f, p, sparse, dtype)
  local info = core.h5_info(f, p)
  if #info.shape ~= 2 then error("the matrix must be 2-d", 0) end
  local ng, nc = info.shape[1], info.shape[2]
  if not sparse then return core.contiguous(core.transpose(core.h5_read(f, p, dtype), 1, 2)) end
  local block = math.max(1, math.floor((1 << 24) / math.max(nc, 1)))
  local ptrs, idxs, vals = {}, {}, {}
  local offset = 0
  for g0 = 1, ng, block do
    local g1 = math.min(ng, g0 + block - 1)
    local dense = core.h5_read(f, p, dtype, g0, g1)
    local s = T().sparse_from_dense(dense)
    if s:dtype() ~= dtype then s = s:to(dtype) end
    local ip = s:indptr()
    local part = #ptrs == 0 and ip or core.narrow(ip, 1, 2, g1 - g0 + 1)
    ptrs[#ptrs + 1] = offset ~= 0 and core.add(part, offset) or part
    idxs[#idxs + 1] = s:indices()
    vals[#vals + 1] = s:values()
    offset = offset + s:nnz()
  end
  if ng == 0 then
    return T().sparse_csr(core.full({ 1 }, 0, { dtype = "i64" }), core.empty({ 0 }, { dtype = "i64" }),
      core.empty({ 0 }, { dtype = dtype }), { nc, 0 })
  end
  local genes = T().sparse_csr(T().cat(ptrs, 1), T().cat(idxs, 1), T().cat(vals, 1), { ng, nc })
  return genes:transpose()
end

-- A graph group (a, b, w: COO edges) as an n x n CSR matrix.
local function read_graph(f, p, n)
  local a = core.totable(core.h5_read(f, p .. "/a", "i64"))
  local b = core.totable(core.h5_read(f, p .. "/b", "i64"))
  local w = core.totable(core.h5_read(f, p .. "/w", "f32"))
  if #a ~= #b or #a ~= #w then error("graph arrays a, b, w differ in length", 0) end
  local counts = {}
  for i = 1, n + 1 do counts[i] = 0 end
  for k = 1, #a do
    if a[k] < 0 or a[k] >= n or b[k] < 0 or b[k] >= n then error("graph edge out of range", 0) end
    counts[a[k] + 2] = counts[a[k] + 2] + 1
  end
  for i = 2, n + 1 do counts[i] = counts[i] + counts[i - 1] end
  local fill, idx, val = {}, {}, {}
  for i = 1, n do fill[i] = counts[i] end
  for k = 1, #a do
    local r = a[k] + 1
    fill[r] = fill[r] + 1
    idx[fill[r]] = b[k]
    val[fill[r]] = w[k]
  end
  local m = T().sparse_csr(counts, idx, val, { n, n })
  return m:transpose():transpose() -- sorts the columns within each row
end

local DEFAULTS = { sparse = true, dtype = "f32", obs_names = "CellID", var_names = "Gene",
  check = true }

-- read(path [, {sparse=true, dtype="f32", obs_names="CellID", var_names="Gene", check=true}])
function M.read(path, opts)
  if type(path) ~= "string" then error("read_loom: path must be a string, got " .. type(path), 2) end
  local o = options.check("read_loom", opts, DEFAULTS)
  if o.dtype ~= "f32" and o.dtype ~= "f64" then error("read_loom: dtype must be \"f32\" or \"f64\"", 2) end
  local ok, res = pcall(function()
    if o.check then core.h5_check(path) end
    local f <close> = core.h5_open(path, "r")
    if core.h5_kind(f, "/matrix") ~= "dataset" then
      error("element '/matrix': missing (not a loom file)", 0)
    end
    local X = at("/matrix", read_matrix, f, "/matrix", o.sparse, o.dtype)
    local shape = anndata._shape_of(X)
    local nc, ng = shape[1], shape[2]
    local ad = anndata.new { X = X }
    if core.h5_kind(f, "/layers") == "group" then
      for _, k in ipairs(core.h5_list(f, "/layers")) do
        local p = "/layers/" .. k
        local m = at(p, read_matrix, f, p, o.sparse, o.dtype)
        at(p, function() ad.layers[k] = m end)
      end
    end
    for _, spec in ipairs {
      { "/col_attrs", "obs", "obsm", o.obs_names, "obs_names", nc },
      { "/row_attrs", "var", "varm", o.var_names, "var_names", ng },
    } do
      local g, df, m, name_key, names_field, n = table.unpack(spec)
      if core.h5_kind(f, g) == "group" then
        for _, k in ipairs(core.h5_list(f, g)) do
          local p = g .. "/" .. k
          local v, info = at(p, read_attr_dataset, f, p)
          at(p, function()
            if k == name_key and type(v) == "table" then
              ad[names_field] = v
            elseif info.class ~= "string" and #info.shape >= 2 then
              ad[m][k] = v
            else
              ad[df][k] = v
            end
          end)
        end
      end
    end
    for _, spec in ipairs { { "/col_graphs", "obsp", nc }, { "/row_graphs", "varp", ng } } do
      local g, slot, n = table.unpack(spec)
      if core.h5_kind(f, g) == "group" then
        for _, k in ipairs(core.h5_list(f, g)) do
          local p = g .. "/" .. k
          local m = at(p, read_graph, f, p, n)
          ad[slot][k] = m
        end
      end
    end
    -- global attributes: the attrs group (loompy 3) or the root's attributes (loompy 2)
    local uns = {}
    for _, a in ipairs(core.h5_attrs(f, "/")) do
      local v = core.h5_read_attr(f, "/", a)
      uns[a] = type(v) == "table" and unescape(v) or (type(v) == "string" and unescape_one(v) or v)
    end
    if core.h5_kind(f, "/attrs") == "group" then
      for _, k in ipairs(core.h5_list(f, "/attrs")) do
        local p = "/attrs/" .. k
        if core.h5_kind(f, p) == "dataset" then
          local v, info = at(p, read_attr_dataset, f, p)
          if type(v) == "table" and #info.shape == 0 then v = v[1] end
          if core.is_tensor(v) and #info.shape == 0 then v = core.item(v) end
          uns[k] = v
        end
      end
    end
    ad.uns = uns
    return ad
  end)
  if not ok then
    local msg = tostring(res):gsub("^[^:\n]*%.lua:%d+: ", ""):gsub("^h5_[%w_]+: ", "")
    if not msg:find(path, 1, true) then msg = string.format("'%s': %s", path, msg) end
    error("read_loom: " .. msg, 2)
  end
  return res
end

M._unescape = unescape_one
return M
