-- velua.AnnData: the annotated data matrix (cells x genes) that every workflow passes around,
-- with anndata's slots and semantics. Slots are checked on assignment (a layer with the wrong
-- shape is an error naming it). File formats live in velua/io/ (h5ad, loom).
--
--   ad.n_obs, ad.n_vars                     read-only sizes
--   ad.X, ad.layers.<k>                     n_obs x n_vars: tensor or SparseCSR (or nil X)
--   ad.obs.<col>, ad.var.<col>              columns (see below); ad.obs_names, ad.var_names
--   ad.obsm.<k>, ad.varm.<k>                first dim n_obs / n_vars (tensor, SparseCSR or a
--                                           data frame: a checked table of columns)
--   ad.obsp.<k>, ad.varp.<k>                n_obs x n_obs / n_vars x n_vars
--   ad.uns                                  a nested Lua table (unchecked)
--   ad.raw                                  nil or {X=, var=, var_names=, varm=} (as read)
--
-- A column is a 1-d tensor (f32/f64/i64/bool), a Lua array of strings, a categorical
-- {codes = i64 tensor (1-based, 0 = missing), categories = {...}, ordered = bool|nil} or a
-- nullable column {values = tensor, mask = bool tensor (true = missing)}.
local core = require "velua.core"
local options = require "velua.options"

local M = {}

local T_ -- velua.tensor, loaded on first use (it loads autograd and friends)
local function T()
  if not T_ then T_ = require("velua").tensor end
  return T_
end

local is_tensor = core.is_tensor
local function is_sparse(x) return T().is_sparse(x) end

-- ---------- small helpers ----------

-- Data frames kept in obsm/varm (anndata stores a pandas DataFrame there): ordered, checked
-- tables of columns like ad.obs, made by to_frame. frame_info[frame] = {rows=, name=}.
local frame_info = setmetatable({}, { __mode = "k" })
local function is_frame(v) return frame_info[v] ~= nil end
M.is_frame = is_frame

local function shape_of(m)
  if is_tensor(m) then return core.shape(m) end
  if is_sparse(m) then return m:shape() end
  if frame_info[m] then return { frame_info[m].rows, #m } end
  return nil
end
M._shape_of = shape_of

local function shape_str(s)
  if not s then return "?" end
  return "{" .. table.concat(s, ", ") .. "}"
end

local function is_string_array(v)
  if type(v) ~= "table" or getmetatable(v) ~= nil then return false end
  local n = #v
  if n == 0 then return next(v) == nil end
  for i = 1, n do
    if type(v[i]) ~= "string" then return false end
  end
  return true
end

local function is_categorical(v)
  return type(v) == "table" and getmetatable(v) == nil and is_tensor(v.codes)
    and type(v.categories) == "table"
end
M._is_categorical = is_categorical

local function is_nullable(v)
  return type(v) == "table" and getmetatable(v) == nil and is_tensor(v.values) and is_tensor(v.mask)
end
M._is_nullable = is_nullable

-- Kind of an obs/var column: "tensor", "strings", "categorical", "nullable" or nil.
local function column_kind(v)
  if is_tensor(v) then return "tensor" end
  if is_categorical(v) then return "categorical" end
  if is_nullable(v) then return "nullable" end
  if is_string_array(v) then return "strings" end
  return nil
end
M._column_kind = column_kind

local function column_len(v, kind)
  if kind == "tensor" then return core.dim(v) == 1 and core.size(v, 1) or nil end
  if kind == "categorical" then return core.dim(v.codes) == 1 and core.size(v.codes, 1) or nil end
  if kind == "nullable" then return core.dim(v.values) == 1 and core.size(v.values, 1) or nil end
  return #v
end

-- ---------- ordered, checked slots ----------

local slot_state = setmetatable({}, { __mode = "k" }) -- proxy -> {keys=, vals=}

-- A table-like proxy that keeps insertion order (pairs() follows it) and calls
-- check(key, value) before every non-nil assignment.
local function new_slot(name, check)
  local keys, vals = {}, {}
  local proxy = {}
  local mt = {
    __name = "AnnData." .. name,
    __index = function(_, k) return vals[k] end,
    __newindex = function(_, k, v)
      if type(k) ~= "string" then
        error(string.format("%s: keys must be strings, got %s", name, type(k)), 2)
      end
      if v == nil then
        if vals[k] ~= nil then
          for i, key in ipairs(keys) do
            if key == k then table.remove(keys, i); break end
          end
          vals[k] = nil
        end
        return
      end
      local ok, msg, stored = check(k, v)
      if not ok then error(name .. ": " .. msg, 2) end
      if stored ~= nil then v = stored end -- the check may store a converted value
      if vals[k] == nil then keys[#keys + 1] = k end
      vals[k] = v
    end,
    __pairs = function()
      local i = 0
      return function()
        i = i + 1
        local k = keys[i]
        if k ~= nil then return k, vals[k] end
      end
    end,
    __len = function() return #keys end,
    __tostring = function()
      local q = {}
      for i, k in ipairs(keys) do q[i] = "'" .. k .. "'" end
      return name .. "(" .. table.concat(q, ", ") .. ")"
    end,
  }
  setmetatable(proxy, mt)
  slot_state[proxy] = { keys = keys, vals = vals }
  return proxy
end

-- The keys of a slot (or of a plain table, sorted) in order.
function M.keys(slot)
  local st = slot_state[slot]
  if st then return table.move(st.keys, 1, #st.keys, 1, {}) end
  local ks = {}
  if type(slot) == "table" then
    for k in pairs(slot) do ks[#ks + 1] = k end
    table.sort(ks, function(a, b) return tostring(a) < tostring(b) end)
  end
  return ks
end
local keys_of = M.keys

function M.is_slot(x) return slot_state[x] ~= nil end

-- ---------- the AnnData object ----------

local AnnData = {}          -- methods
local AD = { __name = "AnnData" }
local adstate = setmetatable({}, { __mode = "k" })

local MATRIX_SLOTS = { "layers", "obsm", "varm", "obsp", "varp" }
local SLOT_SET = { layers = true, obsm = true, varm = true, obsp = true, varp = true }

local to_frame -- (defined with the columns below)

local function matrix_check(ad, slot)
  return function(k, v)
    local st = adstate[ad]
    if (slot == "obsm" or slot == "varm") and type(v) == "table" and not is_frame(v)
      and (getmetatable(v) == nil and rawlen(v) == 0 or M.is_slot(v)) then
      -- a table of columns: a data frame with one row per cell (obsm) or gene (varm)
      local rows = slot == "obsm" and st.n_obs or st.n_vars
      local ok, f = pcall(to_frame, slot .. "." .. k, v, rows)
      if not ok then return false, string.format("'%s': %s", k, tostring(f):gsub("^[^:]*:%d+: ", "")) end
      return true, nil, f
    end
    local s = shape_of(v)
    if not s then
      local frame = (slot == "obsm" or slot == "varm") and ", or a table of named columns" or ""
      return false, string.format("'%s' must be a tensor or a SparseCSR matrix%s, got %s", k, frame,
        type(v) == "table" and rawlen(v) > 0 and "a Lua list" or type(v))
    end
    local n, m = st.n_obs, st.n_vars
    local want, ok
    if slot == "layers" then
      want = { n, m }
      ok = #s == 2 and s[1] == n and s[2] == m
    elseif slot == "obsp" then
      want = { n, n }
      ok = #s == 2 and s[1] == n and s[2] == n
    elseif slot == "varp" then
      want = { m, m }
      ok = #s == 2 and s[1] == m and s[2] == m
    else
      local rows = slot == "obsm" and n or m
      want = { rows, "..." }
      ok = #s >= 1 and s[1] == rows
    end
    if not ok then
      return false, string.format("'%s' has shape %s but the AnnData is %d x %d (expected %s)", k,
        shape_str(s), n, m, shape_str(want))
    end
    return true
  end
end

local function column_check(n_fn, what)
  return function(k, v)
    local kind = column_kind(v)
    if not kind then
      return false, string.format("column '%s' must be a 1-d tensor, an array of strings, a "
        .. "categorical {codes=, categories=} or a nullable {values=, mask=}, got %s", k, type(v))
    end
    local n = n_fn()
    local len = column_len(v, kind)
    if len ~= n then
      local got = kind == "tensor" and shape_str(core.shape(v)) or tostring(len) .. " entries"
      return false, string.format("column '%s' has %s but %s has %d rows", k, got, what, n)
    end
    if kind == "categorical" then
      if core.dtype(v.codes) ~= "i64" then
        return false, string.format("column '%s': codes must be an i64 tensor, got %s", k,
          core.dtype(v.codes))
      end
      if n > 0 then
        local lo, hi = core.item(core.min(v.codes)), core.item(core.max(v.codes))
        if lo < 0 or hi > #v.categories then
          return false, string.format("column '%s': codes must lie in 0..%d (0 = missing), found %d..%d",
            k, #v.categories, lo, hi)
        end
      end
    elseif kind == "nullable" then
      if core.dtype(v.mask) ~= "bool" or column_len(v.mask, "tensor") ~= n then
        return false, string.format("column '%s': mask must be a bool tensor of %d entries", k, n)
      end
    end
    return true
  end
end

-- A data frame of n rows named `name` holding the columns of table t (a plain table, taken
-- in sorted key order, or a slot or frame, in its order); the columns are shared.
to_frame = function(name, t, n)
  local f = new_slot(name, column_check(function() return n end, name))
  frame_info[f] = { rows = n, name = name }
  for _, k in ipairs(M.keys(t)) do f[k] = t[k] end
  return f
end
M.frame = to_frame

local function check_names(names, n, what)
  if type(names) ~= "table" or getmetatable(names) ~= nil then
    return false, string.format("%s must be a Lua array of strings, got %s", what, type(names))
  end
  if #names ~= n then
    return false, string.format("%s has %d entries but the AnnData has %d", what, #names, n)
  end
  for i = 1, n do
    if type(names[i]) ~= "string" then
      return false, string.format("%s[%d] is a %s, not a string", what, i, type(names[i]))
    end
  end
  return true
end

local function default_names(n)
  local t = {}
  for i = 1, n do t[i] = tostring(i - 1) end -- anndata's default index: "0", "1", ...
  return t
end

-- Fills slot `proxy` from `src` (a slot, keeping its order, or a plain table, sorted keys).
local function fill_slot(proxy, src, level)
  if src == nil then return end
  if type(src) ~= "table" then error("expected a table of entries, got " .. type(src), level + 1) end
  for _, k in ipairs(keys_of(src)) do proxy[k] = src[k] end
end

local function new_dataframe(ad, axis)
  local st = adstate[ad]
  local what = axis == "obs" and "obs" or "var"
  return new_slot(what, column_check(function()
    return axis == "obs" and st.n_obs or st.n_vars
  end, what))
end

-- A raw: {X=, var=, var_names=, varm=}; var is made an ordered slot when it is a plain table.
local function normalize_raw(raw, n_obs)
  if raw == nil then return nil end
  if type(raw) ~= "table" then return nil, "raw must be a table {X=, var=, var_names=}" end
  local s = shape_of(raw.X)
  if not s or #s ~= 2 or s[1] ~= n_obs then
    return nil, string.format("raw.X has shape %s, expected %d rows", shape_str(s), n_obs)
  end
  local nv = s[2]
  local names = raw.var_names or default_names(nv)
  local ok, msg = check_names(names, nv, "raw.var_names")
  if not ok then return nil, msg end
  local var = new_slot("raw.var", column_check(function() return nv end, "raw.var"))
  fill_slot(var, raw.var, 1)
  local varm = new_slot("raw.varm", function(k, v)
    local vs = shape_of(v)
    if not vs or vs[1] ~= nv then
      return false, string.format("'%s' has shape %s, expected %d rows", k, shape_str(vs), nv)
    end
    return true
  end)
  fill_slot(varm, raw.varm, 1)
  return { X = raw.X, var = var, var_names = names, varm = varm }
end

AD.__index = function(ad, k)
  local st = adstate[ad]
  local v = st[k]
  if v ~= nil then return v end
  return AnnData[k]
end

local FIELDS = { X = true, obs = true, var = true, obs_names = true, var_names = true, uns = true,
  raw = true, layers = true, obsm = true, varm = true, obsp = true, varp = true }

AD.__newindex = function(ad, k, v)
  local st = adstate[ad]
  if k == "n_obs" or k == "n_vars" then
    error("AnnData: " .. k .. " is read-only (use ad:subset, ad:_inplace_subset_obs/_var or velua.concat)", 2)
  elseif k == "X" then
    if v ~= nil then
      local s = shape_of(v)
      if not s then error("AnnData: X must be a tensor or a SparseCSR matrix, got " .. type(v), 2) end
      if #s ~= 2 or s[1] ~= st.n_obs or s[2] ~= st.n_vars then
        error(string.format("AnnData: X has shape %s but the AnnData is %d x %d (expected {%d, %d})",
          shape_str(s), st.n_obs, st.n_vars, st.n_obs, st.n_vars), 2)
      end
    end
    st.X = v
  elseif k == "obs_names" or k == "var_names" then
    local ok, msg = check_names(v, k == "obs_names" and st.n_obs or st.n_vars, k)
    if not ok then error("AnnData: " .. msg, 2) end
    st[k] = v
  elseif k == "obs" or k == "var" then
    local df = new_dataframe(ad, k)
    local ok, err = pcall(fill_slot, df, v, 1)
    if not ok then error(tostring(err):gsub("^[^:]*:%d+: ", ""), 2) end
    st[k] = df
  elseif SLOT_SET[k] then
    local slot = new_slot(k, matrix_check(ad, k))
    local ok, err = pcall(fill_slot, slot, v, 1)
    if not ok then error(tostring(err):gsub("^[^:]*:%d+: ", ""), 2) end
    st[k] = slot
  elseif k == "uns" then
    if type(v) ~= "table" then error("AnnData: uns must be a table, got " .. type(v), 2) end
    st.uns = v
  elseif k == "raw" then
    local raw, msg = normalize_raw(v, st.n_obs)
    if msg then error("AnnData: " .. msg, 2) end
    st.raw = raw
  else
    error(string.format("AnnData: no field '%s' (fields: X, obs, var, obs_names, var_names, "
      .. "layers, obsm, varm, obsp, varp, uns, raw)", tostring(k)), 2)
  end
end

-- First dimension sizes implied by the constructor's arguments.
local function infer_sizes(t)
  local n, m = t.n_obs, t.n_vars
  local function take(s, i, j)
    if s then
      if n == nil and i then n = s[i] end
      if m == nil and j then m = s[j] end
    end
  end
  take(shape_of(t.X), 1, 2)
  if t.layers then for _, v in pairs(t.layers) do take(shape_of(v), 1, 2) end end
  if type(t.obs_names) == "table" and n == nil then n = #t.obs_names end
  if type(t.var_names) == "table" and m == nil then m = #t.var_names end
  for _, axis in ipairs { "obs", "var" } do
    local df = t[axis]
    if type(df) == "table" then
      for _, v in pairs(df) do
        local kind = column_kind(v)
        if kind then
          local len = column_len(v, kind)
          if axis == "obs" and n == nil then n = len end
          if axis == "var" and m == nil then m = len end
        end
      end
    end
  end
  if t.obsm then for _, v in pairs(t.obsm) do take(shape_of(v), 1, nil) end end
  if t.varm then for _, v in pairs(t.varm) do take(shape_of(v), nil, 1) end end
  if t.obsp then for _, v in pairs(t.obsp) do take(shape_of(v), 1, nil) end end
  if t.varp then for _, v in pairs(t.varp) do take(shape_of(v), nil, 1) end end
  return n or 0, m or 0
end

local CTOR_KEYS = { X = true, obs = true, var = true, obs_names = true, var_names = true,
  layers = true, obsm = true, varm = true, obsp = true, varp = true, uns = true, raw = true,
  n_obs = true, n_vars = true }

-- velua.AnnData{X=, obs=, var=, obs_names=, var_names=, layers=, obsm=, varm=, obsp=, varp=,
-- uns=, raw=, n_obs=, n_vars=}: values are shared, not copied. Sizes come from n_obs/n_vars,
-- else X, layers, names, columns or the m/p slots. Plain tables of columns or matrices are
-- taken in sorted key order; slots of another AnnData keep theirs.
function M.new(t)
  t = t or {}
  if type(t) ~= "table" then error("AnnData: expected a table of fields, got " .. type(t), 2) end
  for k in pairs(t) do
    if not CTOR_KEYS[k] then
      error(string.format("AnnData: unknown field '%s'", tostring(k)), 2)
    end
  end
  local n, m = infer_sizes(t)
  if math.type(n) ~= "integer" or n < 0 or math.type(m) ~= "integer" or m < 0 then
    error("AnnData: n_obs and n_vars must be non-negative integers", 2)
  end
  local ad = setmetatable({}, AD)
  local st = { n_obs = n, n_vars = m, uns = {} }
  adstate[ad] = st
  local ok, err = pcall(function()
    st.obs_names = default_names(n)
    st.var_names = default_names(m)
    ad.obs = t.obs
    ad.var = t.var
    for _, s in ipairs(MATRIX_SLOTS) do ad[s] = t[s] end
    if t.X ~= nil then ad.X = t.X end
    if t.obs_names ~= nil then ad.obs_names = t.obs_names end
    if t.var_names ~= nil then ad.var_names = t.var_names end
    if t.uns ~= nil then ad.uns = t.uns end
    if t.raw ~= nil then ad.raw = t.raw end
  end)
  if not ok then
    local msg = tostring(err):gsub("^[^:]*:%d+: ", ""):gsub("^AnnData: ", "")
    error("AnnData: " .. msg, 2)
  end
  return ad
end

function M.is_anndata(x) return adstate[x] ~= nil end

-- ---------- printing ----------

local function key_list(slot)
  local q = {}
  for _, k in ipairs(keys_of(slot)) do q[#q + 1] = "'" .. tostring(k) .. "'" end
  return table.concat(q, ", ")
end

AD.__tostring = function(ad)
  local st = adstate[ad]
  local lines = { string.format("AnnData object with n_obs × n_vars = %d × %d", st.n_obs, st.n_vars) }
  local function add(name, slot)
    if slot ~= nil and #keys_of(slot) > 0 then
      lines[#lines + 1] = "    " .. name .. ": " .. key_list(slot)
    end
  end
  add("obs", st.obs)
  add("var", st.var)
  add("uns", st.uns)
  add("obsm", st.obsm)
  add("varm", st.varm)
  add("layers", st.layers)
  add("obsp", st.obsp)
  add("varp", st.varp)
  return table.concat(lines, "\n")
end

-- ---------- copies ----------

local function copy_column(v)
  local kind = column_kind(v)
  if kind == "tensor" then return core.clone(v) end
  if kind == "strings" then return table.move(v, 1, #v, 1, {}) end
  if kind == "nullable" then return { values = core.clone(v.values), mask = core.clone(v.mask) } end
  return { codes = core.clone(v.codes), categories = table.move(v.categories, 1, #v.categories, 1, {}),
    ordered = v.ordered }
end

local function copy_matrix(m)
  if is_tensor(m) then return core.clone(m) end
  if is_frame(m) then
    local cols = new_slot("columns", function() return true end)
    for k, v in pairs(m) do cols[k] = copy_column(v) end
    return to_frame(frame_info[m].name, cols, frame_info[m].rows)
  end
  if is_sparse(m) then
    return T().sparse_csr(core.clone(m:indptr()), core.clone(m:indices()), core.clone(m:values()),
      m:shape())
  end
  return m
end
M._copy_matrix = copy_matrix

local function deep_copy(v, seen)
  if is_tensor(v) or is_sparse(v) then return copy_matrix(v) end
  if type(v) ~= "table" then return v end
  seen = seen or {}
  if seen[v] then return seen[v] end
  local mt = getmetatable(v)
  local out = {}
  seen[v] = out
  for k, x in pairs(v) do out[k] = deep_copy(x, seen) end
  if mt ~= nil and not slot_state[v] then setmetatable(out, mt) end
  return out
end
M._deep_copy = deep_copy

local function deep_copy_slot(slot)
  local out = new_slot("copy", function() return true end)
  for k, v in pairs(slot) do out[k] = deep_copy(v) end
  return out
end

-- ad:copy(): an independent AnnData (every tensor and table copied).
function AnnData.copy(ad)
  local st = adstate[ad]
  local t = { n_obs = st.n_obs, n_vars = st.n_vars, X = st.X and copy_matrix(st.X),
    obs_names = deep_copy(st.obs_names), var_names = deep_copy(st.var_names),
    uns = deep_copy(st.uns) }
  for _, axis in ipairs { "obs", "var" } do
    local df = new_slot(axis, function() return true end)
    for k, v in pairs(st[axis]) do df[k] = deep_copy(v) end
    t[axis] = df
  end
  for _, s in ipairs(MATRIX_SLOTS) do
    local slot = new_slot(s, function() return true end)
    for k, v in pairs(st[s]) do slot[k] = copy_matrix(v) end
    t[s] = slot
  end
  if st.raw then
    t.raw = { X = copy_matrix(st.raw.X), var = deep_copy_slot(st.raw.var),
      var_names = deep_copy(st.raw.var_names), varm = deep_copy_slot(st.raw.varm) }
  end
  return M.new(t)
end


-- ---------- subsetting ----------

-- An index argument as an i64 tensor of 1-based positions, or nil for "all".
local function positions(idx, n, names, what)
  if idx == nil then return nil end
  if is_tensor(idx) then
    if core.dim(idx) ~= 1 then error(what .. ": index must be 1-d", 3) end
    local dt = core.dtype(idx)
    if dt == "bool" then
      if core.size(idx, 1) ~= n then
        error(string.format("%s: boolean mask has %d entries, expected %d", what, core.size(idx, 1), n), 3)
      end
      return core.nonzero(idx)
    elseif dt == "i64" then
      if core.numel(idx) > 0 then
        local lo, hi = core.item(core.min(idx)), core.item(core.max(idx))
        if lo < 1 or hi > n then
          error(string.format("%s: positions %d..%d out of range 1..%d", what, lo, hi, n), 3)
        end
      end
      return idx
    end
    error(what .. ": index tensor must be i64 positions or a bool mask, got " .. dt, 3)
  end
  if type(idx) ~= "table" then
    error(what .. ": index must be nil, a table or a tensor, got " .. type(idx), 3)
  end
  local k = #idx
  if k == 0 then return core.empty({ 0 }, { dtype = "i64" }) end
  local first = idx[1]
  local out = {}
  if type(first) == "boolean" then
    if k ~= n then error(string.format("%s: boolean mask has %d entries, expected %d", what, k, n), 3) end
    for i = 1, n do if idx[i] then out[#out + 1] = i end end
  elseif type(first) == "string" then
    local pos = {}
    for i, name in ipairs(names) do if pos[name] == nil then pos[name] = i end end
    for i = 1, k do
      local p = pos[idx[i]]
      if not p then error(string.format("%s: no name '%s'", what, tostring(idx[i])), 3) end
      out[i] = p
    end
  else
    for i = 1, k do
      local p = math.tointeger(idx[i])
      if not p or p < 1 or p > n then
        error(string.format("%s: position %s (entry %d) out of range 1..%d", what, tostring(idx[i]), i, n), 3)
      end
      out[i] = p
    end
  end
  return core.from_table(out, { dtype = "i64" })
end
M._positions = positions

-- True when the positions (i64 tensor) strictly increase.
local function ascending(idx)
  local n = core.numel(idx)
  if n < 2 then return true end
  return core.item(core.all(core.gt(core.narrow(idx, 1, 2, n - 1), core.narrow(idx, 1, 1, n - 1))))
end

-- Rows `rows` of a data frame (categories kept, as pandas' iloc).
local function select_frame(f, rows)
  local cols = new_slot("columns", function() return true end)
  for k, v in pairs(f) do
    local kind = column_kind(v)
    if kind == "categorical" then
      cols[k] = { codes = core.index(v.codes, 1, rows),
        categories = table.move(v.categories, 1, #v.categories, 1, {}), ordered = v.ordered }
    elseif kind == "strings" then
      local out, r = {}, core.totable(rows)
      for i = 1, #r do out[i] = v[r[i]] end
      cols[k] = out
    elseif kind == "nullable" then
      cols[k] = { values = core.index(v.values, 1, rows), mask = core.index(v.mask, 1, rows) }
    else
      cols[k] = core.index(v, 1, rows)
    end
  end
  return to_frame(frame_info[f].name, cols, core.numel(rows))
end

local function select_matrix(m, rows, cols)
  if rows == nil and cols == nil then return copy_matrix(m) end
  if is_frame(m) then
    if cols ~= nil then error("a data frame in obsm/varm has no gene columns to select", 0) end
    return select_frame(m, rows)
  end
  if is_sparse(m) then
    local s = m:shape()
    if rows == nil and ascending(cols) then
      -- genes only, in order (filters): the parallel column selection of velua.pp
      local p, i, v = core.csr_select_columns(m:indptr(), m:indices(), m:values(), s[1], s[2], cols)
      return T().sparse_csr(p, i, v, { s[1], core.numel(cols) })
    end
    local p, i, v = core.csr_select(m:indptr(), m:indices(), m:values(), s[1], s[2], rows, cols)
    return T().sparse_csr(p, i, v, { rows and core.numel(rows) or s[1], cols and core.numel(cols) or s[2] })
  end
  local out = m
  if rows ~= nil then out = core.index(out, 1, rows) end
  if cols ~= nil then out = core.index(out, 2, cols) end
  return out
end
M._select_matrix = select_matrix

local function take_list(list, rows)
  if rows == nil then return table.move(list, 1, #list, 1, {}) end
  local out = {}
  local r = core.totable(rows)
  for i = 1, #r do out[i] = list[r[i]] end
  return out
end

-- Categories that occur, and codes renumbered (anndata drops unused categories on subsetting).
local function drop_unused(col)
  local ncat = #col.categories
  local counts = core.full({ ncat + 1 }, 0, { dtype = "i64" })
  local n = core.numel(col.codes)
  if n > 0 then
    core.index_add_(counts, 1, core.add(col.codes, 1), core.full({ n }, 1, { dtype = "i64" }))
  end
  local c = core.totable(counts)
  local map, cats, kept = { 0 }, {}, {}
  for j = 1, ncat do
    if c[j + 1] > 0 then
      cats[#cats + 1] = col.categories[j]
      kept[#kept + 1] = j
      map[j + 1] = #cats
    else
      map[j + 1] = 0
    end
  end
  if #cats == ncat then return col, nil end
  local codes = n > 0 and core.index(core.from_table(map, { dtype = "i64" }), 1, core.add(col.codes, 1))
    or col.codes
  return { codes = codes, categories = cats, ordered = col.ordered }, kept
end

local function select_column(v, rows)
  local kind = column_kind(v)
  if kind == "tensor" then return rows and core.index(v, 1, rows) or core.clone(v) end
  if kind == "strings" then return take_list(v, rows) end
  if kind == "nullable" then
    return { values = rows and core.index(v.values, 1, rows) or core.clone(v.values),
      mask = rows and core.index(v.mask, 1, rows) or core.clone(v.mask) }
  end
  local col = { codes = rows and core.index(v.codes, 1, rows) or core.clone(v.codes),
    categories = table.move(v.categories, 1, #v.categories, 1, {}), ordered = v.ordered }
  if rows == nil then return col, nil end
  return drop_unused(col)
end

-- ad:subset(obs_idx, var_idx): a new AnnData with the selected cells and genes (copies).
-- Each index may be nil (all), a list or i64 tensor of 1-based positions, a boolean mask
-- (table or bool tensor) or a list of names. Unused categories are dropped, as anndata does,
-- together with the matching entries of uns["<column>_colors"].
function AnnData.subset(ad, obs_idx, var_idx)
  local st = adstate[ad]
  if not st then error("subset: AnnData expected", 2) end
  local r = positions(obs_idx, st.n_obs, st.obs_names, "subset (obs)")
  local c = positions(var_idx, st.n_vars, st.var_names, "subset (var)")
  local uns = deep_copy(st.uns)
  local t = {
    n_obs = r and core.numel(r) or st.n_obs, n_vars = c and core.numel(c) or st.n_vars,
    obs_names = take_list(st.obs_names, r), var_names = take_list(st.var_names, c), uns = uns,
  }
  if st.X then t.X = select_matrix(st.X, r, c) end
  for _, axis in ipairs { "obs", "var" } do
    -- (a table {obs = r, var = c} would drop the axis whose selection is nil)
    local sel = c
    if axis == "obs" then sel = r end
    local df = new_slot(axis, function() return true end)
    for k, v in pairs(st[axis]) do
      local col, kept = select_column(v, sel)
      df[k] = col
      local colors = uns[k .. "_colors"]
      if kept and type(colors) == "table" and #colors == #v.categories then
        local nc = {}
        for i, j in ipairs(kept) do nc[i] = colors[j] end
        uns[k .. "_colors"] = nc
      end
    end
    t[axis] = df
  end
  local sel = {
    layers = { r, c }, obsm = { r, nil }, varm = { c, nil }, obsp = { r, r }, varp = { c, c },
  }
  for _, s in ipairs(MATRIX_SLOTS) do
    local slot = new_slot(s, function() return true end)
    for k, v in pairs(st[s]) do slot[k] = select_matrix(v, sel[s][1], sel[s][2]) end
    t[s] = slot
  end
  if st.raw then
    t.raw = { X = select_matrix(st.raw.X, r, nil), var = deep_copy_slot(st.raw.var),
      var_names = deep_copy(st.raw.var_names), varm = deep_copy_slot(st.raw.varm) }
  end
  return M.new(t)
end

-- Cuts ad itself to the cells `r` or the genes `c` (i64 positions; exactly one is given), as
-- anndata's _inplace_subset_obs/_var: the matrices and columns along that axis are replaced by
-- new ones (no tensor is changed, so anything sharing the old ones keeps its values); the
-- other axis's fields and uns stay as they are, except uns["<col>_colors"] of a categorical
-- column that loses categories. The slot tables (ad.layers, ad.var, ...) stay the same
-- objects. Everything is computed before ad changes: an error leaves it as it was.
local function inplace_subset(ad, r, c)
  local st = adstate[ad]
  local axis = r and "obs" or "var"
  local sel = r or c
  local n_new = core.numel(sel)
  local updates = {} -- {proxy, key, value}: written into the slots at the end
  local function put(proxy, k, v) updates[#updates + 1] = { proxy, k, v } end
  local new_X = st.X ~= nil and select_matrix(st.X, r, c) or nil
  for k, v in pairs(st.layers) do put(st.layers, k, select_matrix(v, r, c)) end
  local m_slot, p_slot = axis .. "m", axis .. "p"
  for k, v in pairs(st[m_slot]) do put(st[m_slot], k, select_matrix(v, sel, nil)) end
  for k, v in pairs(st[p_slot]) do put(st[p_slot], k, select_matrix(v, sel, sel)) end
  local colors = {}
  for k, v in pairs(st[axis]) do
    local col, kept = select_column(v, sel)
    put(st[axis], k, col)
    local old = st.uns[k .. "_colors"]
    if kept and type(old) == "table" and #old == #v.categories then
      local nc = {}
      for i, j in ipairs(kept) do nc[i] = old[j] end
      colors[k .. "_colors"] = nc
    end
  end
  local names = take_list(st[axis .. "_names"], sel)
  local raw = st.raw
  if raw and r then
    raw = { X = select_matrix(raw.X, r, nil), var = raw.var, var_names = raw.var_names,
      varm = raw.varm }
  end
  -- commit
  if r then st.n_obs = n_new else st.n_vars = n_new end
  st[axis .. "_names"] = names
  st.X = new_X
  st.raw = raw
  for _, u in ipairs(updates) do slot_state[u[1]].vals[u[2]] = u[3] end
  for k, v in pairs(colors) do st.uns[k] = v end
  return ad
end

-- ad:_inplace_subset_var(idx) / ad:_inplace_subset_obs(idx): ad itself cut to the genes /
-- cells `idx` (any index ad:subset takes; nil keeps all), as anndata's methods of these
-- names; returns ad.
-- velua.pp's gene filters use the first, so that they change their argument as scVelo does.
function AnnData._inplace_subset_var(ad, idx)
  local st = adstate[ad]
  if not st then error("_inplace_subset_var: AnnData expected", 2) end
  local c = positions(idx, st.n_vars, st.var_names, "_inplace_subset_var")
  if c == nil then return ad end -- nil: every gene
  return inplace_subset(ad, nil, c)
end

function AnnData._inplace_subset_obs(ad, idx)
  local st = adstate[ad]
  if not st then error("_inplace_subset_obs: AnnData expected", 2) end
  local r = positions(idx, st.n_obs, st.obs_names, "_inplace_subset_obs")
  if r == nil then return ad end -- nil: every cell
  return inplace_subset(ad, r, nil)
end

-- ---------- concatenation ----------

local function promote(dtypes)
  local rank = { bool = 0, i64 = 1, f32 = 2, f64 = 3 }
  local best = dtypes[1]
  for _, d in ipairs(dtypes) do if rank[d] > rank[best] then best = d end end
  return best
end

-- Stacks matrices by rows: dense if all are dense, else CSR (dense parts converted).
local function vstack(list)
  local any_sparse = false
  local dts = {}
  for i, m in ipairs(list) do
    if is_sparse(m) then any_sparse = true; dts[i] = m:dtype() else dts[i] = core.dtype(m) end
  end
  local dt = promote(dts)
  if not any_sparse then
    local parts = {}
    for i, m in ipairs(list) do parts[i] = core.dtype(m) == dt and m or core.to(m, dt) end
    return T().cat(parts, 1)
  end
  if dt ~= "f64" then dt = "f32" end
  local ptrs, idxs, vals = {}, {}, {}
  local offset, nrows, ncols = 0, 0, nil
  for i, m in ipairs(list) do
    local s = is_sparse(m) and m or T().sparse_from_dense(m)
    if s:dtype() ~= dt then s = s:to(dt) end
    local shape = s:shape()
    ncols = ncols or shape[2]
    local p = s:indptr()
    local part = i == 1 and p or core.narrow(p, 1, 2, shape[1])
    ptrs[#ptrs + 1] = offset ~= 0 and core.add(part, offset) or part
    idxs[#idxs + 1] = s:indices()
    vals[#vals + 1] = s:values()
    offset = offset + s:nnz()
    nrows = nrows + shape[1]
  end
  return T().sparse_csr(T().cat(ptrs, 1), T().cat(idxs, 1), T().cat(vals, 1), { nrows, ncols })
end
M._vstack = vstack

-- Concatenates obs columns of one name (nil when their kinds differ).
local function concat_columns(cols)
  local kind = column_kind(cols[1])
  for _, c in ipairs(cols) do
    if column_kind(c) ~= kind then return nil end
  end
  if kind == "tensor" then
    local dts = {}
    for i, c in ipairs(cols) do dts[i] = core.dtype(c) end
    local dt = promote(dts)
    local parts = {}
    for i, c in ipairs(cols) do parts[i] = core.dtype(c) == dt and c or core.to(c, dt) end
    return T().cat(parts, 1)
  elseif kind == "strings" then
    local out = {}
    for _, c in ipairs(cols) do table.move(c, 1, #c, #out + 1, out) end
    return out
  elseif kind == "nullable" then
    local v, m = {}, {}
    for i, c in ipairs(cols) do v[i], m[i] = c.values, c.mask end
    return { values = T().cat(v, 1), mask = T().cat(m, 1) }
  end
  -- categorical: union of categories in order of appearance
  local cats, pos = {}, {}
  local parts = {}
  for i, c in ipairs(cols) do
    local map = { 0 }
    for j, name in ipairs(c.categories) do
      local key = tostring(name)
      if not pos[key] then
        cats[#cats + 1] = name
        pos[key] = #cats
      end
      map[j + 1] = pos[key]
    end
    local n = core.numel(c.codes)
    parts[i] = n > 0 and core.index(core.from_table(map, { dtype = "i64" }), 1, core.add(c.codes, 1))
      or c.codes
  end
  return { codes = T().cat(parts, 1), categories = cats, ordered = cols[1].ordered }
end

local values_equal
values_equal = function(a, b)
  if is_sparse(a) or is_sparse(b) then
    if not (is_sparse(a) and is_sparse(b)) then return false end
    local sa, sb = a:shape(), b:shape()
    return sa[1] == sb[1] and sa[2] == sb[2] and values_equal(a:indptr(), b:indptr())
      and values_equal(a:indices(), b:indices()) and values_equal(a:values(), b:values())
  end
  if is_tensor(a) and is_tensor(b) then
    if core.dtype(a) ~= core.dtype(b) then return false end
    local sa, sb = core.shape(a), core.shape(b)
    if #sa ~= #sb then return false end
    for i = 1, #sa do if sa[i] ~= sb[i] then return false end end
    if core.numel(a) == 0 then return true end
    if core.dtype(a) == "bool" then return core.item(core.all(core.eq(a, b))) end
    -- NaN equals NaN here
    local same = core.logical_or(core.eq(a, b), core.logical_and(core.isnan(a), core.isnan(b)))
    return core.item(core.all(same))
  end
  if type(a) == "table" and type(b) == "table" then
    if is_tensor(a) or is_tensor(b) then return false end
    for k, v in pairs(a) do if not values_equal(v, b[k]) then return false end end
    for k in pairs(b) do if a[k] == nil then return false end end
    return true
  end
  return a == b
end
M._values_equal = values_equal

-- ---------- joins along the genes (velua.concat) ----------

local function same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- The gene names of join="outer": pandas' Index.union reduced over the objects (anndata's
-- merge_indices), which sorts the names of both sides unless they are equal or one is empty.
local function union_names(lists)
  local acc = lists[1]
  for i = 2, #lists do
    local b = lists[i]
    if #acc == 0 then
      acc = b
    elseif #b > 0 and not same_list(acc, b) then
      local seen, out = {}, {}
      for _, l in ipairs { acc, b } do
        for _, name in ipairs(l) do
          if not seen[name] then seen[name] = true; out[#out + 1] = name end
        end
      end
      table.sort(out) -- byte order (Lua runs in the C locale), pandas' code point order
      acc = out
    end
  end
  return table.move(acc, 1, #acc, 1, {})
end

-- The gene names of join="inner": those all objects have, in the first one's order
-- (pandas' Index.intersection).
local function common_names(list)
  local present = {}
  for _, ad in ipairs(list) do
    local seen = {}
    for _, name in ipairs(ad.var_names) do
      if not seen[name] then
        seen[name] = true
        present[name] = (present[name] or 0) + 1
      end
    end
  end
  local common = {}
  for _, name in ipairs(list[1].var_names) do
    if present[name] == #list then common[#common + 1] = name; present[name] = -1 end
  end
  return common
end

local function i64(list)
  if #list == 0 then return core.empty({ 0 }, { dtype = "i64" }) end
  return core.from_table(list, { dtype = "i64" })
end

-- How one object's genes map onto the joined genes `names` (G of them):
--   all     every joined gene is present; cols = its positions in the object (i64, G)
--   from    positions in the object of the joined genes it has (in joined order),
--   to      their joined positions (1-based, ascending), gather = positions with 1 for the
--           missing ones, missing = bool {1, G} (true where the object lacks the gene)
local function gene_map(ad, names)
  local pos = {}
  for j, name in ipairs(ad.var_names) do if pos[name] == nil then pos[name] = j end end
  local from, to, gather, miss = {}, {}, {}, {}
  for j, name in ipairs(names) do
    local p = pos[name]
    if p then from[#from + 1] = p; to[#to + 1] = j end
    gather[j] = p or 1
    miss[j] = p == nil
  end
  local r = { G = #names, n_vars = ad.n_vars, all = #from == #names }
  if r.all then
    r.cols = i64(from)
  else
    r.from, r.to = i64(from), i64(to)
    r.gather = i64(gather)
    r.missing = #names > 0 and core.reshape(core.from_table(miss, { dtype = "bool" }), { 1, #names })
      or nil
  end
  return r
end

local function fill_is_integral(fill) return math.type(fill) == "integer" or fill == math.floor(fill) end

-- The dtype of a dense matrix holding dt values and `fill`.
local function fill_dtype(dt, fill)
  if dt == "f32" or dt == "f64" then return dt end
  if dt == "i64" and fill_is_integral(fill) then return dt end
  return "f32"
end

-- An n x G matrix of `fill` (dense with dtype dt, or CSR when sparse).
local function fill_matrix(n, G, fill, dt, sparse)
  if sparse and fill == 0 then
    return T().sparse_csr(core.full({ n + 1 }, 0, { dtype = "i64" }), core.empty({ 0 }, { dtype = "i64" }),
      core.empty({ 0 }, { dtype = dt == "f64" and "f64" or "f32" }), { n, G })
  end
  local d = core.full({ n, G }, fill, { dtype = fill_dtype(dt, fill) })
  return sparse and T().sparse_from_dense(d) or d
end

-- Matrix m (n x n_vars of one object) with its columns on the joined genes; genes it lacks
-- hold `fill` (anndata's Reindexer).
local function reindex_columns(m, r, fill)
  if r.all then return select_matrix(m, nil, r.cols) end
  local n = shape_of(m)[1]
  if is_sparse(m) then
    if fill ~= 0 then return T().sparse_from_dense(reindex_columns(m:to_dense(), r, fill)) end
    local sub = select_matrix(m, nil, r.from) -- the present genes, in joined order
    local idx = sub:indices()
    if core.numel(idx) > 0 then idx = core.index(core.sub(r.to, 1), 1, core.add(idx, 1)) end
    return T().sparse_csr(sub:indptr(), idx, sub:values(), { n, r.G })
  end
  local dt = fill_dtype(core.dtype(m), fill)
  if core.numel(r.from) == 0 or n == 0 then return fill_matrix(n, r.G, fill, dt, false) end
  if core.dtype(m) ~= dt then m = core.to(m, dt) end
  return core.where(r.missing, fill, core.index(m, 2, r.gather))
end

-- A column of n entries of v's kind and dtype, every entry missing-to-be.
local function placeholder(v, n)
  local kind = column_kind(v)
  if kind == "tensor" then return core.full({ n }, 0, { dtype = core.dtype(v) }) end
  if kind == "strings" then
    local t = {}
    for i = 1, n do t[i] = "" end
    return t
  end
  if kind == "nullable" then
    return { values = core.full({ n }, 0, { dtype = core.dtype(v.values) }),
      mask = core.full({ n }, 1, { dtype = "bool" }) }
  end
  return { codes = core.full({ n }, 0, { dtype = "i64" }), categories = v.categories, ordered = v.ordered }
end

-- Column v with the entries where miss (bool tensor) is true made missing, as pandas does
-- when it reindexes: floats get NaN, integers become f64 with NaN, booleans a nullable
-- column, strings a categorical (sorted categories, as anndata stores strings), categoricals
-- code 0 (categories kept).
local function with_missing(v, miss)
  local kind = column_kind(v)
  if kind == "tensor" then
    local dt = core.dtype(v)
    if dt == "bool" then return { values = v, mask = miss } end
    if dt ~= "f32" and dt ~= "f64" then v = core.to(v, "f64") end
    return core.where(miss, 0 / 0, v)
  elseif kind == "nullable" then
    return { values = v.values, mask = core.logical_or(v.mask, miss) }
  elseif kind == "strings" then
    local m = core.totable(miss)
    local cats, seen = {}, {}
    for i, s in ipairs(v) do
      if not m[i] and not seen[s] then seen[s] = true; cats[#cats + 1] = s end
    end
    table.sort(cats)
    local code = {}
    for j, s in ipairs(cats) do code[s] = j end
    local codes = {}
    for i, s in ipairs(v) do codes[i] = m[i] and 0 or code[s] end
    return { codes = i64(codes), categories = cats }
  end
  return { codes = core.where(miss, 0, v.codes), categories = v.categories, ordered = v.ordered }
end

-- Tables of columns (obs of each object, or data frames) stacked by rows: the columns all have
-- (outer=false) or any has (outer=true, missing entries as with_missing makes them), in order
-- of appearance. ns[i] = the rows of tables[i].
local function stack_columns(tables, ns, outer)
  local out = new_slot("columns", function() return true end)
  local ks, seen = {}, {}
  for _, tb in ipairs(tables) do
    for _, k in ipairs(keys_of(tb)) do
      if not seen[k] then
        seen[k] = true
        local all = true
        for _, other in ipairs(tables) do if other[k] == nil then all = false end end
        if outer or all then ks[#ks + 1] = k end
      end
    end
  end
  for _, k in ipairs(ks) do
    local parts, miss, template, any_missing = {}, {}, nil, false
    for _, tb in ipairs(tables) do template = template or tb[k] end
    for i, tb in ipairs(tables) do
      local v = tb[k]
      parts[i] = v or placeholder(template, ns[i])
      miss[i] = core.full({ ns[i] }, v == nil and 1 or 0, { dtype = "bool" })
      any_missing = any_missing or v == nil
    end
    local col = concat_columns(parts)
    if col ~= nil and any_missing then col = with_missing(col, T().cat(miss, 1)) end
    if col ~= nil then out[k] = col end
  end
  return out
end

-- One object's var column on the joined genes (missing where it lacks them).
local function reindex_column(v, r)
  if r.all then return (select_column(v, r.cols)) end
  if r.n_vars == 0 then return with_missing(placeholder(v, r.G), core.full({ r.G }, 1, { dtype = "bool" })) end
  local col = select_column(v, r.gather)
  if column_kind(col) == "categorical" then -- the dummy positions must not keep categories
    col = { codes = core.index(v.codes, 1, r.gather), categories = v.categories, ordered = v.ordered }
  end
  return with_missing(col, core.reshape(r.missing, { r.G }))
end

-- velua.concat({ad1, ad2, ...}, {label=, keys=, join="inner"|"outer", fill_value=0,
-- index_unique=, merge=}): stacks cells (anndata.concat along obs).
--   join="inner": the genes all objects have, in the first object's order; X, the layers and
--     the obs columns all objects have.
--   join="outer": the union of the genes (pandas' Index.union: sorted unless all objects list
--     the same genes); X and layers (those any object has) hold fill_value (default 0) where
--     an object lacks the gene or the layer; obs columns any object has, missing entries as
--     pandas fills them (see with_missing).
-- Both: obsm keys all objects have (same trailing shape); categories of obs columns united
-- (columns whose kinds differ are dropped); obs_names (suffixed "<sep><key>" with
-- index_unique=sep). `label` adds a categorical obs column of the batch keys (default "0",
-- "1", ...). var columns: none (merge=nil, anndata's default), "first" (each from the first
-- object having it) or "same" (those all have with equal values on the joined genes).
-- Sparse results when any part is sparse. obsp, varm, varp, uns and raw are dropped.
function M.concat(list, opts)
  local o = options.check("concat", opts, { label = options.NONE, keys = options.NONE,
    join = "inner", fill_value = 0, index_unique = options.NONE, merge = options.NONE })
  if type(list) ~= "table" or #list == 0 then error("concat: expected a non-empty list of AnnData", 2) end
  for i, ad in ipairs(list) do
    if not adstate[ad] then error("concat: element " .. i .. " is not an AnnData", 2) end
  end
  if o.join ~= "inner" and o.join ~= "outer" then
    error("concat: join must be \"inner\" or \"outer\", got " .. tostring(o.join), 2)
  end
  if type(o.fill_value) ~= "number" then
    error("concat: fill_value must be a number, got " .. type(o.fill_value), 2)
  end
  if o.merge ~= nil and o.merge ~= "first" and o.merge ~= "same" then
    error("concat: merge must be nil, \"first\" or \"same\", got " .. tostring(o.merge), 2)
  end
  local keys = o.keys
  if keys == nil then
    keys = {}
    for i = 1, #list do keys[i] = tostring(i - 1) end
  elseif type(keys) ~= "table" or #keys ~= #list then
    error(string.format("concat: keys must list %d names, one per AnnData", #list), 2)
  end
  local outer, fill = o.join == "outer", o.fill_value
  local names
  if outer then
    local lists = {}
    for i, ad in ipairs(list) do lists[i] = ad.var_names end
    names = union_names(lists)
  else
    names = common_names(list)
  end
  local maps = {}
  for i, ad in ipairs(list) do maps[i] = gene_map(ad, names) end
  local n = 0
  for _, ad in ipairs(list) do n = n + ad.n_obs end
  local t = { n_obs = n, n_vars = #names, var_names = names }

  -- keys of a slot: those all objects have (inner) or any has (outer), first seen first
  local function slot_keys(slot, any)
    local ks, seen = {}, {}
    for _, ad in ipairs(list) do
      for _, k in ipairs(keys_of(ad[slot])) do
        if not seen[k] then
          seen[k] = true
          local ok = true
          if not any then
            for _, other in ipairs(list) do if other[slot][k] == nil then ok = false end end
          end
          if ok then ks[#ks + 1] = k end
        end
      end
    end
    return ks
  end
  -- X and the layers: one matrix per object, a fill for objects without it (outer)
  local function stack(get)
    local sparse, dts = false, {}
    for _, ad in ipairs(list) do
      local m = get(ad)
      if m ~= nil then
        if is_sparse(m) then sparse = true; dts[#dts + 1] = m:dtype() else dts[#dts + 1] = core.dtype(m) end
      end
    end
    local dt = promote(dts)
    local parts = {}
    for i, ad in ipairs(list) do
      local m = get(ad)
      parts[i] = m ~= nil and reindex_columns(m, maps[i], fill)
        or fill_matrix(ad.n_obs, #names, fill, dt, sparse)
    end
    return vstack(parts)
  end
  local all_x = true
  for _, ad in ipairs(list) do if ad.X == nil then all_x = false end end
  if all_x then t.X = stack(function(ad) return ad.X end) end
  t.layers = new_slot("layers", function() return true end)
  for _, k in ipairs(slot_keys("layers", outer)) do
    t.layers[k] = stack(function(ad) return ad.layers[k] end)
  end
  t.obsm = new_slot("obsm", function() return true end)
  for _, k in ipairs(slot_keys("obsm", false)) do
    local parts, ok, frames = {}, true, 0
    local s1 = shape_of(list[1].obsm[k])
    for i, ad in ipairs(list) do
      parts[i] = ad.obsm[k]
      if is_frame(parts[i]) then frames = frames + 1 end
      local s = shape_of(parts[i])
      if #s ~= #s1 then ok = false else
        for d = 2, #s do if s[d] ~= s1[d] then ok = false end end
      end
    end
    if frames == #list then
      -- data frames: pandas' concat, which joins their columns outer
      local ns = {}
      for i, ad in ipairs(list) do ns[i] = ad.n_obs end
      t.obsm[k] = to_frame("obsm." .. k, stack_columns(parts, ns, true), n)
    elseif ok and frames == 0 then
      t.obsm[k] = vstack(parts)
    end
  end
  -- obs
  local obs_parts, ns = {}, {}
  for i, ad in ipairs(list) do obs_parts[i], ns[i] = ad.obs, ad.n_obs end
  t.obs = stack_columns(obs_parts, ns, outer)
  if o.label then
    local codes = {}
    for i, ad in ipairs(list) do
      for _ = 1, ad.n_obs do codes[#codes + 1] = i end
    end
    local cats = {}
    for i, k in ipairs(keys) do cats[i] = tostring(k) end
    t.obs[o.label] = { codes = i64(codes), categories = cats }
  end
  local obs_names = {}
  for i, ad in ipairs(list) do
    for _, name in ipairs(ad.obs_names) do
      obs_names[#obs_names + 1] = o.index_unique and (name .. o.index_unique .. tostring(keys[i])) or name
    end
  end
  t.obs_names = obs_names
  -- var
  t.var = new_slot("var", function() return true end)
  if o.merge == "first" then
    for _, k in ipairs(slot_keys("var", true)) do
      for i, ad in ipairs(list) do
        local v = ad.var[k]
        if v ~= nil then t.var[k] = reindex_column(v, maps[i]); break end
      end
    end
  elseif o.merge == "same" then
    for _, k in ipairs(slot_keys("var", false)) do
      local first = reindex_column(list[1].var[k], maps[1])
      local keep = true
      for i = 2, #list do
        if not values_equal(first, reindex_column(list[i].var[k], maps[i])) then keep = false; break end
      end
      if keep then t.var[k] = first end
    end
  end
  return M.new(t)
end

-- ---------- I/O entry points ----------

function AnnData.write_h5ad(ad, path, opts)
  if not adstate[ad] then error("write_h5ad: AnnData expected (call it as ad:write_h5ad(path))", 2) end
  return require("velua.io.h5ad").write(ad, path, opts)
end

function M.read_h5ad(path, opts) return require("velua.io.h5ad").read(path, opts) end
function M.read_loom(path, opts) return require("velua.io.loom").read(path, opts) end

-- The names of the obs / var columns, in order.
function AnnData.obs_keys(ad) return keys_of(adstate[ad].obs) end
function AnnData.var_keys(ad) return keys_of(adstate[ad].var) end

M.methods = AnnData
-- velua.AnnData{...} is this module called as a function
setmetatable(M, { __call = function(_, t) return M.new(t) end })
M.new_slot = new_slot
return M
