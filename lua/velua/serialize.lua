-- velua.save(path, value) / velua.load(path): tensors, sparse matrices, nested tables,
-- numbers, strings and booleans in an HDF5 file (state dicts included). Writing goes to a
-- temporary name in the same directory, renamed over `path` only once complete.
--
-- Layout: the root group carries attributes velua-format="velua-save" and
-- velua-format-version=1 and holds the value as child "value". Every node has an attribute
-- velua-type (tensor, number, integer, string, boolean, table, sparse_csr). A table is a group
-- whose children are named "1", "2", ... with attributes key and key-type ("string" or
-- "number"), so any Lua key survives; tensors are datasets in their own dtype (bool as h5py's
-- enum), readable from h5py.
local core = require "velua.core"

local M = {}
local FORMAT, VERSION = "velua-save", 1

local function is_sparse(v)
  local mt = getmetatable(v)
  return type(v) == "table" and mt ~= nil and mt.__name == "SparseCSR"
end

local function write_value(f, path, v, seen)
  local tv = type(v)
  if core.is_tensor(v) then
    core.h5_write(f, path, v, 0)
    core.h5_write_attr(f, path, "velua-type", "tensor")
  elseif is_sparse(v) then
    core.h5_create_group(f, path)
    core.h5_write_attr(f, path, "velua-type", "sparse_csr")
    core.h5_write_attr(f, path, "shape", core.from_table(v:shape(), { dtype = "i64" }))
    core.h5_write(f, path .. "/indptr", v:indptr(), 0)
    core.h5_write(f, path .. "/indices", v:indices(), 0)
    core.h5_write(f, path .. "/data", v:values(), 0)
  elseif tv == "number" then
    local integer = math.type(v) == "integer"
    core.h5_write(f, path, core.from_table(v, { dtype = integer and "i64" or "f64" }), 0)
    core.h5_write_attr(f, path, "velua-type", integer and "integer" or "number")
  elseif tv == "string" then
    core.h5_write_strings(f, path, v)
    core.h5_write_attr(f, path, "velua-type", "string")
  elseif tv == "boolean" then
    core.h5_write(f, path, core.from_table(v), 0)
    core.h5_write_attr(f, path, "velua-type", "boolean")
  elseif tv == "table" then
    if seen[v] then error("save: the value contains a cycle (a table inside itself)", 0) end
    seen[v] = true
    core.h5_create_group(f, path)
    core.h5_write_attr(f, path, "velua-type", "table")
    local keys = {}
    for k in pairs(v) do
      local tk = type(k)
      if tk ~= "string" and tk ~= "number" then
        error("save: table keys must be strings or numbers, got a " .. tk .. " key", 0)
      end
      keys[#keys + 1] = k
    end
    table.sort(keys, function(a, b)
      if type(a) == type(b) then return a < b end
      return type(a) == "number"
    end)
    for i, k in ipairs(keys) do
      local child = path .. "/" .. i
      write_value(f, child, v[k], seen)
      core.h5_write_attr(f, child, "key", k)
      core.h5_write_attr(f, child, "key-type", type(k))
    end
    seen[v] = nil
  else
    error("save: cannot store a value of type " .. tv, 0)
  end
end

function M.save(path, value)
  if type(path) ~= "string" then error("save: path must be a string, got " .. type(path), 2) end
  local tmp = string.format("%s.tmp-%d-%d", path, os.time(), math.random(1, 1 << 30))
  local ok, err = pcall(function()
    local f <close> = core.h5_open(tmp, "w")
    core.h5_write_attr(f, "/", "velua-format", FORMAT)
    core.h5_write_attr(f, "/", "velua-format-version", VERSION)
    write_value(f, "/value", value, {})
    core.h5_close(f)
  end)
  if not ok then
    os.remove(tmp)
    local msg = tostring(err):gsub("^[^:]*%.lua:%d+: ", ""):gsub("^save: ", "")
    error("save: " .. msg .. " (nothing written to '" .. path .. "')", 2)
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then
    os.remove(tmp)
    error("save: cannot move the finished file into place: " .. tostring(rerr), 2)
  end
end

local function read_value(f, path, T)
  local kind = core.h5_read_attr(f, path, "velua-type")
  if kind == "tensor" then
    return core.h5_read(f, path)
  elseif kind == "number" or kind == "integer" or kind == "boolean" then
    return core.item(core.h5_read(f, path))
  elseif kind == "string" then
    return core.h5_read_strings(f, path)
  elseif kind == "sparse_csr" then
    local shape = core.totable(core.h5_read_attr(f, path, "shape"))
    return T.sparse_csr(core.h5_read(f, path .. "/indptr"), core.h5_read(f, path .. "/indices"),
      core.h5_read(f, path .. "/data"), shape)
  elseif kind == "table" then
    local t = {}
    for _, name in ipairs(core.h5_list(f, path)) do
      local child = path .. "/" .. name
      local key = core.h5_read_attr(f, child, "key")
      if core.h5_read_attr(f, child, "key-type") == "number" then key = tonumber(key) end
      t[key] = read_value(f, child, T)
    end
    return t
  end
  error(string.format("unknown velua-type '%s' at %s", tostring(kind), path), 0)
end

function M.load(path)
  if type(path) ~= "string" then error("load: path must be a string, got " .. type(path), 2) end
  local ok, res = pcall(function()
    local f <close> = core.h5_open(path, "r")
    local attrs = {}
    for _, a in ipairs(core.h5_attrs(f, "/")) do attrs[a] = true end
    if not attrs["velua-format"] or core.h5_read_attr(f, "/", "velua-format") ~= FORMAT then
      error("'" .. path .. "' is an HDF5 file but not one written by velua.save", 0)
    end
    local v = core.h5_read_attr(f, "/", "velua-format-version")
    if v > VERSION then
      error(string.format("'%s' has format version %d; this velua reads up to %d", path, v, VERSION), 0)
    end
    return read_value(f, "/value", require("velua").tensor)
  end)
  if not ok then error("load: " .. tostring(res):gsub("^[^:]*%.lua:%d+: ", ""), 2) end
  return res
end

return M
