-- velua.nn.Module: the base class of layers and models. Keeps parameters, buffers and child
-- modules in registration order, so parameters() and state_dict() are deterministic.
local T = require "velua.tensor"
local options = require "velua.options"

local Module = { __name = "Module", __module_class = true }
Module.__index = Module

local function is_module(x)
  if type(x) ~= "table" then return false end
  local mt = getmetatable(x)
  return type(mt) == "table" and rawget(mt, "__module_class") == true and rawget(x, "_modules") ~= nil
end
Module.is_module = is_module

local function contains(list, k)
  for _, v in ipairs(list) do if v == k then return true end end
  return false
end

local this_file = debug.getinfo(1, "S").short_src

-- Creates an instance of class cls and runs its __init. Errors raised at the level of this
-- function (as options.check's, two levels above __init) are re-raised at the caller's line.
local function construct(cls, ...)
  local self = setmetatable({ _parameters = {}, _buffers = {}, _modules = {}, training = true }, cls)
  local ok, err = pcall(self.__init, self, ...)
  if not ok then
    if type(err) == "string" then
      if err:sub(1, #this_file + 1) == this_file .. ":" then
        error((err:gsub("^[^:]*:%d+: ", "", 1)), 2)
      elseif not err:find("^[^:]+:%d+: ") then -- raised at the level of pcall: no position
        error(err, 2)
      end
    end
    error(err, 0)
  end
  return self
end

-- Module:extend(name) -> a subclass; define cls:__init(...) and cls:forward(...) on it.
-- Instances are created by calling the class: cls(...).
function Module.extend(parent, name)
  if type(name) ~= "string" then error("extend: a class name (string) expected", 2) end
  local cls = {
    __name = name, __module_class = true,
    __call = Module.__call, __tostring = Module.__tostring, __newindex = Module.__newindex,
  }
  cls.__index = cls
  return setmetatable(cls, { __index = parent, __call = construct })
end

setmetatable(Module, { __call = construct })

function Module.__init() end

function Module:forward()
  error(getmetatable(self).__name .. ": forward() is not defined", 2)
end

Module.__call = function(self, ...) return self:forward(...) end

-- Assigning a module to a new field registers it as a child (as PyTorch's __setattr__).
Module.__newindex = function(self, k, v)
  if is_module(v) and not contains(rawget(self, "_modules"), k) then
    local mods = rawget(self, "_modules")
    mods[#mods + 1] = k
  end
  rawset(self, k, v)
end

local function check_name(fname, name)
  if type(name) ~= "string" and math.type(name) ~= "integer" then
    error(fname .. ": name must be a string or an integer, got " .. type(name), 3)
  end
  if type(name) == "string" and name:find(".", 1, true) then
    error(fname .. ": name must not contain '.', got '" .. name .. "'", 3)
  end
end

-- register_parameter(name, tensor): a trainable leaf tensor (marked requires_grad).
function Module:register_parameter(name, t)
  check_name("register_parameter", name)
  if not T.is_tensor(t) then
    error("register_parameter: '" .. tostring(name) .. "' must be a tensor, got " .. type(t), 2)
  end
  local dt = t:dtype()
  if dt ~= "f32" and dt ~= "f64" then
    error("register_parameter: '" .. tostring(name) .. "' must be f32 or f64, got " .. dt, 2)
  end
  if not t:is_leaf() then
    error("register_parameter: '" .. tostring(name) .. "' is the result of a computation; " ..
      "pass a leaf (use detach())", 2)
  end
  t:requires_grad(true)
  if not contains(self._parameters, name) then self._parameters[#self._parameters + 1] = name end
  rawset(self, name, t)
  return t
end

-- register_buffer(name, tensor): state that is saved in state_dict but not trained.
function Module:register_buffer(name, t)
  check_name("register_buffer", name)
  if not T.is_tensor(t) then
    error("register_buffer: '" .. tostring(name) .. "' must be a tensor, got " .. type(t), 2)
  end
  if not contains(self._buffers, name) then self._buffers[#self._buffers + 1] = name end
  rawset(self, name, t)
  return t
end

function Module:add_module(name, m)
  check_name("add_module", name)
  if not is_module(m) then error("add_module: '" .. tostring(name) .. "' is not a module", 2) end
  if not contains(self._modules, name) then self._modules[#self._modules + 1] = name end
  rawset(self, name, m)
  return m
end

-- Depth-first walk: own entries of `kind` first, then the children's, in registration order.
local function walk(m, prefix, kind, out, seen)
  for _, k in ipairs(rawget(m, kind)) do
    local v = rawget(m, k)
    if v ~= nil and not (seen and seen[v]) then
      if seen then seen[v] = true end
      out[#out + 1] = { prefix .. tostring(k), v }
    end
  end
  for _, k in ipairs(rawget(m, "_modules")) do
    local c = rawget(m, k)
    if c ~= nil then walk(c, prefix .. tostring(k) .. ".", kind, out, seen) end
  end
  return out
end

local function iterate(list)
  local i = 0
  return function()
    i = i + 1
    local e = list[i]
    if e then return e[1], e[2] end
  end
end

-- parameters(): a list of the trainable tensors (shared ones once).
function Module:parameters()
  local out = {}
  for i, e in ipairs(walk(self, "", "_parameters", {}, {})) do out[i] = e[2] end
  return out
end

-- for name, p in m:named_parameters() do ... end (names like "encoder.1.weight").
function Module:named_parameters() return iterate(walk(self, "", "_parameters", {}, {})) end

function Module:buffers()
  local out = {}
  for i, e in ipairs(walk(self, "", "_buffers", {}, {})) do out[i] = e[2] end
  return out
end

function Module:named_buffers() return iterate(walk(self, "", "_buffers", {}, {})) end

-- children(): the direct submodules, in order.
function Module:children()
  local out = {}
  for _, k in ipairs(self._modules) do
    local c = rawget(self, k)
    if c ~= nil then out[#out + 1] = c end
  end
  return out
end

-- modules(): this module and all below it, depth first.
function Module:modules(out)
  out = out or {}
  out[#out + 1] = self
  for _, c in ipairs(self:children()) do c:modules(out) end
  return out
end

-- apply(fn): calls fn(m) on every module, children first (as PyTorch), and returns self.
function Module:apply(fn)
  for _, c in ipairs(self:children()) do c:apply(fn) end
  fn(self)
  return self
end

function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + p:numel() end
  return n
end

-- train([mode=true]) / eval(): set the `training` flag of this module and all below it.
function Module:train(mode)
  if mode == nil then mode = true end
  for _, m in ipairs(self:modules()) do rawset(m, "training", mode and true or false) end
  return self
end

function Module:eval() return self:train(false) end

function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p:zero_grad() end
end

-- state_dict(): a flat table name -> tensor of every parameter and buffer. The tensors share
-- memory with the module (as PyTorch's); clone them for a snapshot.
function Module:state_dict()
  local sd = {}
  for _, e in ipairs(walk(self, "", "_parameters", {})) do sd[e[1]] = e[2]:detach() end
  for _, e in ipairs(walk(self, "", "_buffers", {})) do sd[e[1]] = e[2]:detach() end
  return sd
end

local function shape_str(s) return "{" .. table.concat(s, ",") .. "}" end

local function same_shape(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- load_state_dict(sd [, {strict=true}]): copies the values of sd into the module's tensors in
-- place. Everything is checked (names, shapes, dtypes) before anything is written. With
-- strict=false, missing and unexpected names are returned instead of raising.
function Module:load_state_dict(sd, opts)
  local o = options.check("load_state_dict", opts, { strict = true })
  if type(sd) ~= "table" then error("load_state_dict: a table expected, got " .. type(sd), 2) end
  local own = walk(self, "", "_parameters", {})
  walk(self, "", "_buffers", own)
  local known, missing, unexpected = {}, {}, {}
  for _, e in ipairs(own) do
    known[e[1]] = true
    if sd[e[1]] == nil then missing[#missing + 1] = e[1] end
  end
  for k in pairs(sd) do
    if not known[k] then unexpected[#unexpected + 1] = tostring(k) end
  end
  table.sort(unexpected)
  if o.strict and (#missing > 0 or #unexpected > 0) then
    local parts = {}
    if #missing > 0 then parts[#parts + 1] = "missing keys: " .. table.concat(missing, ", ") end
    if #unexpected > 0 then
      parts[#parts + 1] = "unexpected keys: " .. table.concat(unexpected, ", ")
    end
    error("load_state_dict: " .. table.concat(parts, "; "), 2)
  end
  local todo = {}
  for _, e in ipairs(own) do
    local name, dst = e[1], e[2]
    local src = sd[name]
    if src ~= nil then
      if not T.is_tensor(src) then
        error("load_state_dict: '" .. name .. "' must be a tensor, got " .. type(src), 2)
      end
      if not same_shape(src:shape(), dst:shape()) then
        error(string.format("load_state_dict: '%s' has shape %s in the state dict but %s in " ..
          "the module", name, shape_str(src:shape()), shape_str(dst:shape())), 2)
      end
      if src:dtype() ~= dst:dtype() then
        error(string.format("load_state_dict: '%s' has dtype %s in the state dict but %s in " ..
          "the module", name, src:dtype(), dst:dtype()), 2)
      end
      todo[#todo + 1] = { dst, src }
    end
  end
  T.no_grad(function()
    for _, pair in ipairs(todo) do pair[1]:copy_(pair[2]) end
  end)
  return { missing = missing, unexpected = unexpected }
end

-- to(dtype): converts floating-point parameters and buffers ("f32" or "f64") and returns self.
-- Create optimizers after this: they hold the tensors.
function Module:to(dtype)
  if dtype ~= "f32" and dtype ~= "f64" then
    error("to: dtype must be \"f32\" or \"f64\", got " .. tostring(dtype), 2)
  end
  for _, m in ipairs(self:modules()) do
    for _, k in ipairs(m._parameters) do
      local p = rawget(m, k)
      if p ~= nil and p:dtype() ~= dtype then
        rawset(m, k, T.no_grad(function() return p:detach():to(dtype) end):requires_grad(true))
      end
    end
    for _, k in ipairs(m._buffers) do
      local b = rawget(m, k)
      local dt = b and b:dtype()
      if b ~= nil and (dt == "f32" or dt == "f64") and dt ~= dtype then rawset(m, k, b:to(dtype)) end
    end
  end
  return self
end

function Module:double() return self:to("f64") end
function Module:float() return self:to("f32") end

-- One line of settings shown by tostring, e.g. "in_features=2, out_features=3, bias=true".
function Module:extra_repr() return "" end

-- tostring(m): PyTorch's layout, children as "(name): Child(...)", indented.
Module.__tostring = function(self)
  local name = getmetatable(self).__name
  local extra = self:extra_repr()
  local lines = {}
  for _, k in ipairs(self._modules) do
    local c = rawget(self, k)
    if c ~= nil then
      lines[#lines + 1] = "  (" .. tostring(k) .. "): " .. tostring(c):gsub("\n", "\n  ")
    end
  end
  if #lines == 0 then return name .. "(" .. extra .. ")" end
  local head = name .. "("
  if extra ~= "" then head = head .. "\n  " .. extra:gsub("\n", "\n  ") end
  return head .. "\n" .. table.concat(lines, "\n") .. "\n)"
end

return Module
