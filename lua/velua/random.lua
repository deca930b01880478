-- Random tensors from explicit generators (Philox4x32-10; stream layout in csrc/core/random.h).
-- Every function takes {gen = g}; without it the default generator of this velua instance is
-- used (T.manual_seed reseeds it; it lives in this module's closure, one per install, never in
-- a global). Same seed, same numbers, on any machine and thread count.
local options = require "velua.options"

local M = {}

function M.install(T, core)
  local default = core.generator(0)
  local gen_mt = core.generator_metatable

  -- Generator methods: g:seed([s]), g:get_state(), g:set_state(s), g:clone(), g:manual_seed(s)
  local Generator = {}
  -- The seed; with s, reseeds g (its stream restarts).
  function Generator.seed(g, s) return core.gen_seed(g, s) end
  -- {key = seed, counter = blocks consumed} (also seed = key); pass it to set_state to replay.
  function Generator.get_state(g) return core.gen_get_state(g) end
  function Generator.set_state(g, s) return core.gen_set_state(g, s) end
  function Generator.clone(g) return core.gen_clone(g) end
  function Generator.manual_seed(g, s)
    core.gen_seed(g, s)
    return g
  end
  gen_mt.__index = Generator

  -- T.generator([seed = 0]): a new generator
  function T.generator(seed)
    if seed ~= nil and math.type(seed) ~= "integer" then
      error("generator: seed must be an integer, got " .. tostring(seed), 2)
    end
    return core.generator(seed or 0)
  end

  -- T.manual_seed(s): reseeds the default generator and returns it
  function T.manual_seed(seed)
    if math.type(seed) ~= "integer" then
      error("manual_seed: seed must be an integer, got " .. tostring(seed), 2)
    end
    core.gen_seed(default, seed)
    return default
  end

  -- T.default_generator(): the generator used when no {gen =} is given (seed 0 at start)
  function T.default_generator() return default end

  local function gen_of(fname, o)
    local g = o.gen
    if g == nil then return default end
    if getmetatable(g) ~= gen_mt then
      error(fname .. ": option gen must be a generator (T.generator(seed)), got " .. type(g), 3)
    end
    return g
  end

  local function float_dtype(fname, dt)
    if dt ~= "f32" and dt ~= "f64" and dt ~= "float32" and dt ~= "float64" then
      error(string.format("%s: dtype must be f32 or f64, got %s", fname, tostring(dt)), 3)
    end
    return dt
  end

  local float_opts = { gen = options.NONE, dtype = "f32" }

  -- T.rand(shape..., {gen=, dtype="f32"}): uniform on [0, 1)
  function T.rand(...)
    local shape, opts = T._shape_and_opts("rand", ...)
    local o = options.check("rand", opts, float_opts)
    local t = core.empty(shape, { dtype = float_dtype("rand", o.dtype) })
    return core.rand_uniform_(t, gen_of("rand", o), 0, 1)
  end

  -- T.randn(shape..., {gen=, dtype="f32"}): standard normal
  function T.randn(...)
    local shape, opts = T._shape_and_opts("randn", ...)
    local o = options.check("randn", opts, float_opts)
    local t = core.empty(shape, { dtype = float_dtype("randn", o.dtype) })
    return core.rand_normal_(t, gen_of("randn", o), 0, 1)
  end

  -- T.randint(low, high, shape..., {gen=, dtype="i64"}): integers low <= x < high, as PyTorch
  -- (high is exclusive); T.randint(high, shape...) draws from 0 <= x < high. Unbiased.
  function T.randint(low, high, ...)
    if type(high) ~= "number" and type(low) == "number" then
      return T.randint(0, low, high, ...) -- randint(high, shape...)
    end
    local lo, hi = math.tointeger(low), math.tointeger(high)
    if not lo or not hi then
      error(string.format("randint: low and high must be integers, got %s and %s",
        tostring(low), tostring(high)), 2)
    end
    if hi <= lo then
      error(string.format("randint: need low < high (high is exclusive), got %d and %d", lo, hi), 2)
    end
    local shape, opts = T._shape_and_opts("randint", ...)
    local o = options.check("randint", opts, { gen = options.NONE, dtype = "i64" })
    return core.rand_int_(core.empty(shape, { dtype = o.dtype }), gen_of("randint", o), lo, hi)
  end

  -- T.randperm(n, {gen=}): a random permutation of 1..n (i64), by Fisher-Yates
  function T.randperm(n, opts)
    local o = options.check("randperm", opts, { gen = options.NONE })
    return core.randperm(n, gen_of("randperm", o))
  end

  -- T.bernoulli(shape, p, {gen=, dtype="bool"}): independent draws, 1 (true) with probability p
  function T.bernoulli(shape, p, opts)
    if type(shape) == "number" then shape = { shape } end
    if type(p) ~= "number" then
      error("bernoulli: p must be a number in [0, 1], got " .. type(p), 2)
    end
    local o = options.check("bernoulli", opts, { gen = options.NONE, dtype = "bool" })
    return core.rand_bernoulli_(core.empty(shape, { dtype = o.dtype }), gen_of("bernoulli", o), p)
  end

  -- In-place fills: t:uniform_(lo, hi, {gen=}), t:normal_(mean, std, {gen=})
  local gen_only = { gen = options.NONE }
  if T.methods then
    function T.methods.uniform_(t, lo, hi, opts)
      local g = gen_of("uniform_", options.check("uniform_", opts, gen_only))
      return core.rand_uniform_(t, g, lo or 0, hi or 1)
    end
    function T.methods.normal_(t, mean, std, opts)
      local g = gen_of("normal_", options.check("normal_", opts, gen_only))
      return core.rand_normal_(t, g, mean or 0, std or 1)
    end
  end

  T.Generator = Generator
  return T
end

return M
