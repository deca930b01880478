-- .h5ad files (AnnData on HDF5): reading the current encoding (anndata >= 0.8, elements tagged
-- with encoding-type/encoding-version), the anndata 0.7 one (dataframe 0.1.0, categories by
-- object reference into __categories) and the older one (obs/var/obsm as compound datasets,
-- categories in uns/<col>_categories, sparse groups tagged h5sparse_format); writing the
-- current encoding (what anndata 0.8 writes), to a temporary name renamed when complete.
local core = require "velua.core"
local options = require "velua.options"
local anndata = require "velua.anndata"

local M = {}

local function T() return require("velua").tensor end

-- Error text without a Lua position or a core function's name.
local function clean(msg)
  msg = tostring(msg):gsub("^[^:\n]*%.lua:%d+: ", "")
  msg = msg:gsub("^h5_[%w_]+: ", ""):gsub("^csr_[%w_]+: ", "")
  return msg
end

-- Runs fn(), prefixing an error with the element it concerns (innermost element wins).
local function at(path, fn, ...)
  local r = table.pack(pcall(fn, ...))
  if not r[1] then
    local msg = clean(r[2])
    if not msg:find("^element '") then msg = string.format("element '%s': %s", path, msg) end
    error(msg, 0)
  end
  return table.unpack(r, 2, r.n)
end

local function join(base, name)
  if base == "/" or base == "" then return "/" .. name end
  return base .. "/" .. name
end

-- ======================================================================================
-- reading
-- ======================================================================================

local Reader = {}
Reader.__index = Reader

function Reader:kind(p) return core.h5_kind(self.f, p) end

function Reader:attr_names(p)
  local set = {}
  for _, a in ipairs(core.h5_attrs(self.f, p)) do set[a] = true end
  return set
end

-- An attribute's value, or nil when absent. Bytes-like single strings come back as strings.
function Reader:attr(p, name)
  if not self:attr_names(p)[name] then return nil end
  return core.h5_read_attr(self.f, p, name)
end

function Reader:etype(p)
  local e = self:attr(p, "encoding-type")
  if e ~= nil and type(e) ~= "string" then
    error(string.format("encoding-type is a %s, not a string", type(e)), 0)
  end
  return e
end

function Reader:info(p) return core.h5_info(self.f, p) end

local function unknown(p, et, r)
  local v = r:attr(p, "encoding-version")
  error(string.format("unknown encoding-type '%s'%s", et,
    type(v) == "string" and (" (version " .. v .. ")") or ""), 0)
end

-- A 2-element shape attribute as a Lua table of non-negative integers.
local function shape_attr(v, what)
  if core.is_tensor(v) then v = core.totable(v) end
  if type(v) ~= "table" or #v ~= 2 then error(what .. " must hold 2 sizes", 0) end
  local s = {}
  for i = 1, 2 do
    local x = math.tointeger(v[i])
    if not x or x < 0 then error(what .. " must hold non-negative integers", 0) end
    s[i] = x
  end
  return s
end

-- Reads a sparse group (csr or csc) at p into a SparseCSR of the stored shape.
function Reader:sparse(p, format, shape)
  local f = self.f
  for _, part in ipairs { "data", "indices", "indptr" } do
    if self:kind(join(p, part)) ~= "dataset" then
      error(string.format("sparse matrix has no '%s' dataset", part), 0)
    end
  end
  local info = self:info(join(p, "data"))
  local dt
  if info.class == "float" then dt = info.size <= 4 and "f32" or "f64"
  elseif info.class == "bool" or ((info.class == "int" or info.class == "uint") and info.size <= 2) then dt = "f32"
  elseif info.class == "int" or info.class == "uint" then dt = "f64"
  else error("sparse data of class " .. info.class .. " is not supported", 0) end
  local data = at(join(p, "data"), core.h5_read, f, join(p, "data"), dt)
  local indices = at(join(p, "indices"), core.h5_read, f, join(p, "indices"), "i64")
  local indptr = at(join(p, "indptr"), core.h5_read, f, join(p, "indptr"), "i64")
  for name, t in pairs { data = data, indices = indices, indptr = indptr } do
    if core.dim(t) ~= 1 then error(string.format("'%s' is not 1-d", name), 0) end
  end
  if format == "csr" then
    return T().sparse_csr(indptr, indices, data, shape)
  elseif format == "csc" then
    -- a CSC matrix is the CSR form of its transpose
    return T().sparse_csr(indptr, indices, data, { shape[2], shape[1] }):transpose()
  end
  error("unknown sparse format '" .. tostring(format) .. "'", 0)
end

-- A matrix element (X, layers, obsm, ...): dense dataset or sparse group.
function Reader:matrix(p)
  local kind = self:kind(p)
  if kind == "group" then
    local et = self:etype(p)
    if et == "csr_matrix" or et == "csc_matrix" then
      return self:sparse(p, et:sub(1, 3), shape_attr(self:attr(p, "shape"), "attribute 'shape'"))
    elseif et == nil then
      local fmt = self:attr(p, "h5sparse_format")
      if fmt ~= nil then
        return self:sparse(p, fmt, shape_attr(self:attr(p, "h5sparse_shape"), "attribute 'h5sparse_shape'"))
      end
      error("group without encoding-type or h5sparse_format is not a matrix", 0)
    elseif et == "dataframe" then
      error("a dataframe is not a matrix (data frames are read in obsm and varm only)", 0)
    end
    unknown(p, et, self)
  elseif kind == "dataset" then
    local et = self:etype(p)
    if et ~= nil and et ~= "array" then unknown(p, et, self) end
    local info = self:info(p)
    if info.class == "string" then error("string arrays are not supported as matrices", 0) end
    if info.class == "compound" or info.class == "reference" or info.class == "other"
      or info.class == "enum" and info.size ~= 1 then
      error("a " .. info.class .. " dataset is not a matrix", 0)
    end
    return core.h5_read(self.f, p)
  end
  error("the element is listed but cannot be opened", 0)
end

local function to_strings(v)
  if type(v) == "string" then return { v } end
  if core.is_tensor(v) then v = core.numel(v) == 0 and {} or core.totable(v) end
  local out = {}
  for i, x in ipairs(v) do out[i] = type(x) == "string" and x or tostring(x) end
  return out
end

-- Category labels: strings, or numbers/booleans when stored so.
function Reader:categories(p)
  local info = self:info(p)
  if info.class == "string" then
    local c = core.h5_read_strings(self.f, p)
    return type(c) == "string" and { c } or c
  end
  local t = core.h5_read(self.f, p)
  if core.dim(t) ~= 1 then error("categories must be 1-d", 0) end
  return core.numel(t) == 0 and {} or core.totable(t)
end

local function make_categorical(codes, cats, ordered, n)
  if core.dim(codes) ~= 1 then error("categorical codes must be 1-d", 0) end
  if core.numel(codes) > 0 then
    local lo, hi = core.item(core.min(codes)), core.item(core.max(codes))
    if lo < -1 or hi >= #cats then
      error(string.format("categorical codes %d..%d do not fit %d categories", lo, hi, #cats), 0)
    end
  end
  return { codes = core.add(codes, 1), categories = cats, ordered = ordered and true or nil }
end

local function truthy(v)
  if core.is_tensor(v) then return core.numel(v) > 0 and core.item(core.ne(core.sum(v), 0)) end
  return v == true or (type(v) == "number" and v ~= 0)
end

-- One dataframe column (group or dataset) at p.
function Reader:column(p)
  local kind = self:kind(p)
  if kind == "group" then
    local et = self:etype(p)
    if et == "categorical" then
      local codes = at(join(p, "codes"), core.h5_read, self.f, join(p, "codes"), "i64")
      local cats = at(join(p, "categories"), self.categories, self, join(p, "categories"))
      return make_categorical(codes, cats, truthy(self:attr(p, "ordered")))
    elseif et == "nullable-integer" or et == "nullable-boolean" then
      local values = at(join(p, "values"), core.h5_read, self.f, join(p, "values"),
        et == "nullable-boolean" and "bool" or nil)
      local mask = at(join(p, "mask"), core.h5_read, self.f, join(p, "mask"), "bool")
      return { values = values, mask = mask }
    elseif et == nil then
      error("a column group without encoding-type", 0)
    end
    unknown(p, et, self)
  elseif kind == "dataset" then
    local attrs = self:attr_names(p)
    local et = attrs["encoding-type"] and self:etype(p) or nil
    if et ~= nil and et ~= "array" and et ~= "string-array" then unknown(p, et, self) end
    if attrs.categories and core.h5_attr_info(self.f, p, "categories").class == "reference" then
      -- anndata 0.7: codes here, categories in the referenced dataset (__categories/<col>)
      local target = core.h5_read_attr_ref(self.f, p, "categories")
      local cats = at(target, self.categories, self, target)
      local ordered = self:attr_names(target).ordered and self:attr(target, "ordered")
      return make_categorical(core.h5_read(self.f, p, "i64"), cats, truthy(ordered))
    end
    local info = self:info(p)
    if info.class == "string" then
      local s = core.h5_read_strings(self.f, p)
      if type(s) == "string" then error("a scalar string is not a column", 0) end
      if info.variable_string == false then s = self.unescape and self.unescape(s) or s end
      return s
    end
    return core.h5_read(self.f, p)
  end
  error("the element is listed but cannot be opened", 0)
end

-- Only the requested keys: sel is true (all), false (none) or a list of names.
local function wanted(sel, available, what)
  if sel == false then return {} end
  if sel == true then return available end
  local have = {}
  for _, k in ipairs(available) do have[k] = true end
  for _, k in ipairs(sel) do
    if not have[k] then
      error(string.format("no %s '%s' (available: %s)", what, tostring(k),
        #available > 0 and table.concat(available, ", ") or "none"), 0)
    end
  end
  return sel
end

-- A dataframe (obs/var) at p: index names and an ordered list of {name, column}.
function Reader:dataframe(p, sel, what)
  local kind = self:kind(p)
  local cols = {}
  if kind == "dataset" then
    -- pre-0.7: a compound dataset; the first field is the index
    local fields = core.h5_fields(self.f, p)
    if #fields == 0 then error("compound dataframe without fields", 0) end
    local function field(fd)
      if fd.class == "string" then
        local s = core.h5_read_field_strings(self.f, p, fd.name)
        return fd.variable_string == false and self.unescape and self.unescape(s) or s
      end
      if #fd.shape ~= 1 then error("field '" .. fd.name .. "' is not 1-d", 0) end
      return core.h5_read_field(self.f, p, fd.name)
    end
    local names = to_strings(field(fields[1]))
    local available = {}
    for i = 2, #fields do available[#available + 1] = fields[i].name end
    local keep = {}
    for _, k in ipairs(wanted(sel, available, what .. " column")) do keep[k] = true end
    for i = 2, #fields do
      if keep[fields[i].name] then
        cols[#cols + 1] = { fields[i].name, at(p .. "." .. fields[i].name, field, fields[i]) }
      end
    end
    self.legacy_frames = true
    return names, cols
  elseif kind ~= "group" then
    error("the element is listed but cannot be opened", 0)
  end
  local et = self:etype(p)
  if et ~= nil and et ~= "dataframe" then unknown(p, et, self) end
  local index_key = self:attr(p, "_index")
  if type(index_key) ~= "string" then error("dataframe without an '_index' attribute", 0) end
  local names = at(join(p, index_key), function()
    local ip = join(p, index_key)
    local info = self:info(ip)
    if info.class == "string" then
      local s = core.h5_read_strings(self.f, ip)
      return type(s) == "string" and { s } or s
    end
    return to_strings(core.h5_read(self.f, ip))
  end)
  local order = self:attr(p, "column-order")
  if order == nil then
    order = {}
    for _, k in ipairs(core.h5_list(self.f, p)) do
      if k ~= index_key and k ~= "__categories" then order[#order + 1] = k end
    end
  else
    order = to_strings(order)
  end
  for _, k in ipairs(wanted(sel, order, what .. " column")) do
    cols[#cols + 1] = { k, at(join(p, k), self.column, self, join(p, k)) }
  end
  return names, cols
end

-- A value in uns (any element), read recursively.
function Reader:value(p, depth)
  if depth > 64 then error("nesting deeper than 64 levels", 0) end
  local kind = self:kind(p)
  if kind == "group" then
    local et = self:etype(p)
    if et == nil or et == "dict" then
      if et == nil and self:attr(p, "h5sparse_format") ~= nil then return self:matrix(p) end
      local t = {}
      for _, k in ipairs(core.h5_list(self.f, p)) do
        t[k] = at(join(p, k), self.value, self, join(p, k), depth + 1)
      end
      return t
    elseif et == "csr_matrix" or et == "csc_matrix" then
      return self:matrix(p)
    elseif et == "categorical" or et == "nullable-integer" or et == "nullable-boolean" then
      return self:column(p)
    elseif et == "dataframe" then
      local names, cols = self:dataframe(p, true, "dataframe")
      return M.frame(names, cols)
    end
    unknown(p, et, self)
  elseif kind == "dataset" then
    local et = self:etype(p)
    local info = self:info(p)
    if et ~= nil and et ~= "array" and et ~= "string-array" and et ~= "string"
      and et ~= "numeric-scalar" and et ~= "rec-array" then
      unknown(p, et, self)
    end
    if info.class == "string" then
      local s = core.h5_read_strings(self.f, p)
      if info.variable_string == false and self.unescape then
        s = type(s) == "string" and self.unescape({ s })[1] or self.unescape(s)
      end
      return s
    elseif info.class == "compound" then
      local t = {}
      for _, fd in ipairs(core.h5_fields(self.f, p)) do
        t[fd.name] = fd.class == "string" and core.h5_read_field_strings(self.f, p, fd.name)
          or core.h5_read_field(self.f, p, fd.name)
      end
      return t
    elseif info.class == "reference" or info.class == "other" then
      error("a " .. info.class .. " dataset is not supported in uns", 0)
    end
    local t = core.h5_read(self.f, p)
    if #info.shape == 0 then
      local v = core.item(t)
      if info.class == "int" or info.class == "uint" then v = math.tointeger(v) or v end
      return v
    end
    return t
  end
  error("the element is listed but cannot be opened", 0)
end

-- A dataframe kept in uns: index names and ordered columns (written back as a dataframe).
local Frame = { __name = "velua.DataFrame" }
M.Frame = Frame
function M.frame(names, cols)
  local f = { index = names, columns = {}, data = {} }
  for i, c in ipairs(cols) do
    f.columns[i] = c[1]
    f.data[c[1]] = c[2]
  end
  return setmetatable(f, Frame)
end

local READ_DEFAULTS = { X = true, layers = true, obs = true, var = true, obsm = true, varm = true,
  obsp = true, varp = true, uns = true, raw = true, check = true, check_timeout = options.NONE }

local function check_selection(name, v)
  if v == true or v == false then return end
  if type(v) ~= "table" then
    error(string.format("read_h5ad: option %s must be true, false or a list of keys, got %s", name,
      type(v)), 3)
  end
  for i, k in ipairs(v) do
    if type(k) ~= "string" then
      error(string.format("read_h5ad: option %s: entry %d is not a string", name, i), 3)
    end
  end
end

local function read_file(path, o)
  local r = setmetatable({}, Reader)
  local f <close> = core.h5_open(path, "r")
  r.f = f
  local root = r:attr_names("/")
  if root["encoding-type"] then
    local et = r:etype("/")
    if et ~= "anndata" then error(string.format("element '/': encoding-type is '%s', not 'anndata'", et), 0) end
  end
  -- obs and var first: they fix n_obs and n_vars
  local obs_names, obs_cols, var_names, var_cols = nil, {}, nil, {}
  if r:kind("/obs") then
    obs_names, obs_cols = at("/obs", r.dataframe, r, "/obs", o.obs, "obs")
  end
  if r:kind("/var") then
    var_names, var_cols = at("/var", r.dataframe, r, "/var", o.var, "var")
  end
  local X
  if o.X and r:kind("/X") then X = at("/X", r.matrix, r, "/X") end
  local xs = X and anndata._shape_of(X)
  local n_obs = obs_names and #obs_names or (xs and xs[1])
  local n_vars = var_names and #var_names or (xs and xs[2])
  if not n_obs or not n_vars then
    error("element '/obs': the file has neither obs/var dataframes nor X, so its size is unknown", 0)
  end
  local ad = anndata.new { n_obs = n_obs, n_vars = n_vars }
  if obs_names then ad.obs_names = obs_names end
  if var_names then ad.var_names = var_names end
  for _, c in ipairs(obs_cols) do at("/obs/" .. c[1], function() ad.obs[c[1]] = c[2] end) end
  for _, c in ipairs(var_cols) do at("/var/" .. c[1], function() ad.var[c[1]] = c[2] end) end
  if X then at("/X", function() ad.X = X end) end
  for _, slot in ipairs { "layers", "obsm", "varm", "obsp", "varp" } do
    local p = "/" .. slot
    local kind = r:kind(p)
    if o[slot] ~= false and kind == "group" then
      local et = r:etype(p)
      if et ~= nil and et ~= "dict" then at(p, unknown, p, et, r) end
      for _, k in ipairs(at(p, wanted, o[slot], core.h5_list(r.f, p), (slot:gsub("s$", "")))) do
        local ep = join(p, k)
        local m
        if (slot == "obsm" or slot == "varm") and r:kind(ep) == "group" and r:etype(ep) == "dataframe" then
          -- a pandas DataFrame: its columns, in order (the index is obs_names / var_names)
          local _, cols = at(ep, r.dataframe, r, ep, true, slot .. " dataframe")
          m = anndata.new_slot("columns", function() return true end)
          for _, c in ipairs(cols) do m[c[1]] = c[2] end
        else
          m = at(ep, r.matrix, r, ep)
        end
        at(ep, function() ad[slot][k] = m end)
      end
    elseif o[slot] ~= false and kind == "dataset" then
      -- pre-0.7 obsm/varm: a compound dataset, one field per key
      local sel = {}
      for _, fd in ipairs(core.h5_fields(r.f, p)) do sel[#sel + 1] = fd.name end
      for _, k in ipairs(at(p, wanted, o[slot], sel, slot)) do
        local m = at(p .. "." .. k, core.h5_read_field, r.f, p, k)
        at(p .. "." .. k, function() ad[slot][k] = m end)
      end
    elseif type(o[slot]) == "table" and #o[slot] > 0 then
      at(p, wanted, o[slot], {}, slot)
    end
  end
  if o.uns ~= false and r:kind("/uns") == "group" then
    local uns = {}
    for _, k in ipairs(at("/uns", wanted, o.uns, core.h5_list(r.f, "/uns"), "uns key")) do
      uns[k] = at("/uns/" .. k, r.value, r, "/uns/" .. k, 1)
    end
    ad.uns = uns
  end
  if r.legacy_frames then
    -- pre-0.7 categoricals: integer codes in obs/var, labels in uns["<col>_categories"]
    -- (anndata's _clean_uns: the first axis whose column fits takes them)
    local uns = ad.uns
    for _, key in ipairs(anndata.keys(uns)) do
      local name = type(key) == "string" and key:match("^(.*)_categories$")
      local cats = uns[key]
      if name and (type(cats) == "table" or type(cats) == "string" or core.is_tensor(cats)) then
        cats = to_strings(type(cats) == "string" and { cats } or cats)
        for _, axis in ipairs { "obs", "var" } do
          local col = ad[axis][name]
          if core.is_tensor(col) and core.dim(col) == 1 and core.dtype(col) == "i64" then
            local ok = core.numel(col) == 0 or core.item(core.max(col)) < #cats
            if ok then
              ad[axis][name] = make_categorical(col, cats, false)
              uns[key] = nil
              break
            end
          end
        end
      end
    end
  end
  if o.raw and r:kind("/raw") == "group" then
    local raw = {}
    if r:kind("/raw/X") then raw.X = at("/raw/X", r.matrix, r, "/raw/X") end
    local names, cols = nil, {}
    if r:kind("/raw/var") then names, cols = at("/raw/var", r.dataframe, r, "/raw/var", true, "raw.var") end
    if raw.X then
      raw.var_names = names
      raw.var = {}
      local var = anndata.new_slot("raw.var", function() return true end)
      for _, c in ipairs(cols) do var[c[1]] = c[2] end
      raw.var = var
      local varm = {}
      if r:kind("/raw/varm") == "group" then
        for _, k in ipairs(core.h5_list(r.f, "/raw/varm")) do
          varm[k] = at("/raw/varm/" .. k, r.matrix, r, "/raw/varm/" .. k)
        end
      end
      raw.varm = varm
      at("/raw", function() ad.raw = raw end)
    end
  end
  return ad
end

-- read(path [, opts]): see velua.read_h5ad in docs/anndata.md.
function M.read(path, opts)
  if type(path) ~= "string" then error("read_h5ad: path must be a string, got " .. type(path), 2) end
  local o = options.check("read_h5ad", opts, READ_DEFAULTS)
  for _, k in ipairs { "X", "layers", "obs", "var", "obsm", "varm", "obsp", "varp", "uns", "raw" } do
    check_selection(k, o[k])
  end
  if o.X ~= true and o.X ~= false then error("read_h5ad: option X must be true or false", 2) end
  if o.raw ~= true and o.raw ~= false then error("read_h5ad: option raw must be true or false", 2) end
  local ok, res = pcall(function()
    if o.check then
      local fh = io.open(path, "rb")
      local size = fh and fh:seek("end") or 0
      if fh then fh:close() end
      core.h5_check(path, o.check_timeout or (30 + size / 4e6))
    end
    return read_file(path, o)
  end)
  if not ok then
    local msg = clean(res)
    if not msg:find(path, 1, true) then msg = string.format("'%s': %s", path, msg) end
    error("read_h5ad: " .. msg, 2)
  end
  return res
end

-- ======================================================================================
-- writing
-- ======================================================================================

local Writer = {}
Writer.__index = Writer

function Writer:enc(p, et, ev)
  core.h5_write_attr(self.f, p, "encoding-type", et)
  core.h5_write_attr(self.f, p, "encoding-version", ev)
end

function Writer:group(p, et, ev)
  core.h5_create_group(self.f, p)
  if et then self:enc(p, et, ev) end
end

local function check_key(k, where)
  if type(k) ~= "string" and type(k) ~= "number" then
    error(string.format("%s: keys must be strings, got a %s key", where, type(k)), 0)
  end
  k = tostring(k)
  if k == "" or k:find("/", 1, true) or k == "." then
    error(string.format("%s: key '%s' cannot be an HDF5 name (empty, '.' or containing '/')", where, k), 0)
  end
  return k
end

-- A numeric or bool tensor as an "array" dataset (store: file dtype, e.g. "i32").
function Writer:array(p, t, store)
  local n = core.numel(t)
  core.h5_write(self.f, p, t, { gzip = (n > 0 and core.dim(t) > 0) and self.gzip or 0, dtype = store })
  self:enc(p, "array", "0.2.0")
end

function Writer:strings(p, list, scalar)
  if scalar then
    core.h5_write_strings(self.f, p, list)
    self:enc(p, "string", "0.2.0")
  else
    core.h5_write_strings(self.f, p, list, { gzip = #list > 0 and self.gzip or 0 })
    self:enc(p, "string-array", "0.2.0")
  end
end

local INT32_MAX = 2147483647

function Writer:matrix(p, m)
  if core.is_tensor(m) then return self:array(p, m) end
  if T().is_sparse(m) then
    local s = m:shape()
    self:group(p, "csr_matrix", "0.1.0")
    core.h5_write_attr(self.f, p, "shape", core.from_table(s, { dtype = "i64" }))
    local nnz = m:nnz()
    local g = nnz > 0 and self.gzip or 0
    core.h5_write(self.f, p .. "/data", m:values(), { gzip = g })
    core.h5_write(self.f, p .. "/indices", m:indices(),
      { gzip = g, dtype = s[2] <= INT32_MAX and "i32" or nil })
    core.h5_write(self.f, p .. "/indptr", m:indptr(),
      { gzip = s[1] > 0 and self.gzip or 0, dtype = nnz <= INT32_MAX and "i32" or nil })
    return
  end
  error("not a tensor or a SparseCSR matrix: " .. type(m), 0)
end

local function code_store(ncat)
  if ncat < 128 then return "i8" elseif ncat < 32768 then return "i16" end
  return "i32"
end

-- Category labels: strings, or numbers (integers -> i64, else f64), or booleans.
function Writer:labels(p, cats)
  local kind
  for i, c in ipairs(cats) do
    local k = type(c)
    if kind and k ~= kind then error("categories mix " .. kind .. " and " .. k .. " labels", 0) end
    kind = k
    if k ~= "string" and k ~= "number" and k ~= "boolean" then
      error("category " .. i .. " is a " .. k, 0)
    end
  end
  if kind == nil or kind == "string" then return self:strings(p, cats) end
  local dt = "bool"
  if kind == "number" then
    dt = "i64"
    for _, c in ipairs(cats) do if math.type(c) ~= "integer" then dt = "f64" end end
  end
  self:array(p, core.from_table(cats, { dtype = dt }))
end

function Writer:categorical(p, col)
  self:group(p, "categorical", "0.2.0")
  core.h5_write_attr(self.f, p, "ordered", col.ordered and true or false)
  local codes = core.sub(col.codes, 1)
  self:array(p .. "/codes", codes, code_store(#col.categories))
  self:labels(p .. "/categories", col.categories)
end

function Writer:nullable(p, col)
  local dt = core.dtype(col.values)
  if dt == "f32" or dt == "f64" then
    error("nullable columns hold integers or booleans (use NaN for missing floats)", 0)
  end
  self:group(p, dt == "bool" and "nullable-boolean" or "nullable-integer", "0.1.0")
  self:array(p .. "/values", col.values)
  self:array(p .. "/mask", col.mask)
end

function Writer:column(p, v, n)
  local kind = anndata._column_kind(v)
  if kind == "tensor" then
    if core.dim(v) ~= 1 or core.size(v, 1) ~= n then error("column length does not match", 0) end
    return self:array(p, v)
  elseif kind == "strings" then
    if #v ~= n then error(string.format("column has %d entries, expected %d", #v, n), 0) end
    return self:strings(p, v)
  elseif kind == "categorical" then
    return self:categorical(p, v)
  elseif kind == "nullable" then
    return self:nullable(p, v)
  end
  error("not a column: " .. type(v), 0)
end

function Writer:dataframe(p, slot, names, columns)
  self:group(p, "dataframe", "0.2.0")
  columns = columns or anndata.keys(slot)
  local index_key = "_index"
  for _, k in ipairs(columns) do
    if k == index_key then error("a column cannot be named '_index'", 0) end
    check_key(k, p)
  end
  core.h5_write_attr(self.f, p, "_index", index_key)
  core.h5_write_attr(self.f, p, "column-order", columns)
  at(join(p, index_key), self.strings, self, join(p, index_key), names)
  for _, k in ipairs(columns) do
    at(join(p, k), self.column, self, join(p, k), slot[k], #names)
  end
end

local function array_kind(v)
  local n = #v
  if n == 0 or getmetatable(v) ~= nil then return nil end
  local count = 0
  for _ in pairs(v) do count = count + 1 end
  if count ~= n then return nil end
  local kind = type(v[1])
  for i = 2, n do
    if type(v[i]) ~= kind then return "mixed" end
  end
  return kind
end

-- Anything in uns.
function Writer:value(p, v, depth, seen)
  if depth > 64 then error("nesting deeper than 64 levels", 0) end
  local tv = type(v)
  if tv == "string" then return self:strings(p, v, true) end
  if tv == "boolean" or tv == "number" then
    local dt = tv == "boolean" and "bool" or (math.type(v) == "integer" and "i64" or "f64")
    core.h5_write(self.f, p, core.from_table(v, { dtype = dt }))
    return self:enc(p, "numeric-scalar", "0.2.0")
  end
  if core.is_tensor(v) or T().is_sparse(v) then return self:matrix(p, v) end
  if tv ~= "table" then error("cannot store a " .. tv .. " in an h5ad file", 0) end
  if getmetatable(v) == Frame then return self:dataframe(p, v.data, v.index, v.columns) end
  if anndata._is_categorical(v) then return self:categorical(p, v) end
  if anndata._is_nullable(v) then return self:nullable(p, v) end
  if seen[v] then error("the value contains a cycle", 0) end
  local kind = array_kind(v)
  if kind == "string" then return self:strings(p, v) end
  if kind == "number" then
    local dt = "i64"
    for _, x in ipairs(v) do if math.type(x) ~= "integer" then dt = "f64" end end
    return self:array(p, core.from_table(v, { dtype = dt }))
  end
  if kind == "boolean" then return self:array(p, core.from_table(v, { dtype = "bool" })) end
  if kind == "mixed" then error("a list mixing value types cannot be stored", 0) end
  seen[v] = true
  self:group(p, "dict", "0.1.0")
  for _, k in ipairs(anndata.keys(v)) do
    local name = check_key(k, p)
    at(join(p, name), self.value, self, join(p, name), v[k], depth + 1, seen)
  end
  seen[v] = nil
end

local WRITE_DEFAULTS = { compression = options.NONE, compression_opts = 4 }

-- write(ad, path [, {compression="gzip"|nil, compression_opts=4}])
function M.write(ad, path, opts)
  if type(path) ~= "string" then error("write_h5ad: path must be a string, got " .. type(path), 2) end
  local o = options.check("write_h5ad", opts, WRITE_DEFAULTS)
  if o.compression ~= nil and o.compression ~= "gzip" then
    error("write_h5ad: compression must be \"gzip\" or nil, got " .. tostring(o.compression), 2)
  end
  local level = math.tointeger(o.compression_opts)
  if not level or level < 1 or level > 9 then
    error("write_h5ad: compression_opts must be a gzip level 1..9", 2)
  end
  local tmp = string.format("%s.tmp-%d-%d", path, os.time(), math.random(1, 1 << 30))
  local ok, err = pcall(function()
    local w = setmetatable({ gzip = o.compression and level or 0 }, Writer)
    local f <close> = core.h5_open(tmp, "w")
    w.f = f
    w:enc("/", "anndata", "0.1.0")
    if ad.X ~= nil then at("/X", w.matrix, w, "/X", ad.X) end
    at("/obs", w.dataframe, w, "/obs", ad.obs, ad.obs_names)
    at("/var", w.dataframe, w, "/var", ad.var, ad.var_names)
    for _, slot in ipairs { "layers", "obsm", "varm", "obsp", "varp" } do
      w:group("/" .. slot, "dict", "0.1.0")
      for k, m in pairs(ad[slot]) do
        local p = "/" .. slot .. "/" .. check_key(k, "/" .. slot)
        if anndata.is_frame(m) then -- a data frame, indexed as anndata wants by the axis names
          at(p, w.dataframe, w, p, m, slot == "obsm" and ad.obs_names or ad.var_names)
        else
          at(p, w.matrix, w, p, m)
        end
      end
    end
    at("/uns", w.value, w, "/uns", ad.uns, 1, {})
    local raw = ad.raw
    if raw then
      w:group("/raw", "raw", "0.1.0")
      at("/raw/X", w.matrix, w, "/raw/X", raw.X)
      at("/raw/var", w.dataframe, w, "/raw/var", raw.var, raw.var_names)
      w:group("/raw/varm", "dict", "0.1.0")
      for k, m in pairs(raw.varm or {}) do
        local p = "/raw/varm/" .. check_key(k, "/raw/varm")
        at(p, w.matrix, w, p, m)
      end
    end
    core.h5_close(f)
  end)
  if not ok then
    os.remove(tmp)
    error(string.format("write_h5ad: '%s': %s (nothing written)", path, clean(err)), 2)
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then
    os.remove(tmp)
    error("write_h5ad: cannot move the finished file into place: " .. tostring(rerr), 2)
  end
end

return M
