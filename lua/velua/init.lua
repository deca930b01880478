-- velua: single-cell RNA velocity and representation learning in Lua 5.4 on a C core.
-- Submodules load lazily on first use: velua.tensor, velua.nn, ...
local core = require "velua.core"

local velua = {
  version = "0.1.0",
  set_num_threads = core.set_num_threads, -- thread count for our loops and OpenBLAS
  get_num_threads = core.get_num_threads,
  now = core.now,                         -- monotonic wall clock in seconds
}

local submodules = {
  tensor = "velua.tensor",
  nn = "velua.nn",
  optim = "velua.optim",
  schedule = "velua.schedule",
  distributions = "velua.distributions",
  progress = "velua.progress",
  datasets = "velua.datasets",
  pl = "velua.pl",
  AnnData = "velua.anndata", -- velua.AnnData{X=, obs=, ...} (the module is callable)
  pp = "velua.pp",
  tl = "velua.tl",
  metrics = "velua.metrics",
}

-- velua.help(fn | "name" | table): documentation at the REPL (see velua/help.lua)
function velua.help(x) return require("velua.help").help(x) end

-- velua.save(path, value) / velua.load(path): see velua/serialize.lua
function velua.save(path, value) return require("velua.serialize").save(path, value) end
function velua.load(path) return require("velua.serialize").load(path) end

-- AnnData files and joins: see velua/anndata.lua and velua/io/
function velua.read_h5ad(path, opts) return require("velua.anndata").read_h5ad(path, opts) end
function velua.read_loom(path, opts) return require("velua.anndata").read_loom(path, opts) end
function velua.concat(list, opts) return require("velua.anndata").concat(list, opts) end

return setmetatable(velua, {
  __index = function(t, key)
    local name = submodules[key]
    if not name then return nil end
    local m = require(name)
    rawset(t, key, m)
    return m
  end,
})
