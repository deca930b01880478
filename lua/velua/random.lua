-- Random tensors from explicit generators (Philox4x32-10; stream layout in csrc/core/random.h).
-- Every function takes {gen = g}; without it the default generator of this velua instance is
-- used (T.manual_seed reseeds it). Same seed, same numbers, on any machine and thread count.
local options = require "velua.options"

local M = {}

function M.install(T, core)
  local default = core.generator(0)
  local gen_mt = core.generator_metatable

  local Generator = {}
  function Generator.seed(g) return core.gen_seed(g) end
  function Generator.get_state(g) return core.gen_get_state(g) end
  function Generator.set_state(g, s) return core.gen_set_state(g, s) end
  function Generator.clone(g) return core.gen_clone(g) end
  function Generator.manual_seed(g, s) return core.gen_set_state(g, { seed = s, counter = 0 }) end
  gen_mt.__index = Generator
  gen_mt.__name = "velua.Generator"

  -- T.generator(seed): a new generator
  function T.generator(seed)
    if seed ~= nil and math.type(seed) ~= "integer" then
      error("generator: seed must be an integer, got " .. tostring(seed), 2)
    end
    return core.generator(seed or 0)
  end

  function T.manual_seed(seed)
    if math.type(seed) ~= "integer" then error("manual_seed: seed must be an integer", 2) end
    core.gen_set_state(default, { seed = seed, counter = 0 })
    return default
  end

  function T.default_generator() return default end

  local function gen_of(fname, o)
    local g = o.gen or default
    if getmetatable(g) ~= gen_mt then
      error(fname .. ": option gen must be a generator (T.generator(seed)), got " .. type(g), 3)
    end
    return g
  end

  local float_opts = { gen = options.NONE, dtype = "f32" }

  -- T.rand(shape..., {gen=, dtype=}): uniform on [0, 1)
  function T.rand(...)
    local shape, opts = T._shape_and_opts("rand", ...)
    local o = options.check("rand", opts, float_opts)
    return core.rand_uniform_(core.empty(shape, { dtype = o.dtype }), gen_of("rand", o), 0, 1)
  end

  -- T.randn(shape..., {gen=, dtype=}): standard normal
  function T.randn(...)
    local shape, opts = T._shape_and_opts("randn", ...)
    local o = options.check("randn", opts, float_opts)
    return core.rand_normal_(core.empty(shape, { dtype = o.dtype }), gen_of("randn", o), 0, 1)
  end

  -- T.randint(low, high, shape, {gen=, dtype="i64"}): integers low <= x < high (as PyTorch)
  function T.randint(low, high, shape, opts)
    if math.type(low) ~= "integer" or math.type(high) ~= "integer" then
      error("randint: low and high must be integers", 2)
    end
    if type(shape) == "number" then shape = { shape } end
    local o = options.check("randint", opts, { gen = options.NONE, dtype = "i64" })
    return core.rand_int_(core.empty(shape, { dtype = o.dtype }), gen_of("randint", o), low, high)
  end

  -- T.randperm(n, {gen=}): a random permutation of 1..n (i64)
  function T.randperm(n, opts)
    local o = options.check("randperm", opts, { gen = options.NONE })
    return core.randperm(n, gen_of("randperm", o))
  end

  -- T.bernoulli(shape, p, {gen=, dtype="bool"}): independent draws that are 1 with probability p
  function T.bernoulli(shape, p, opts)
    if type(shape) == "number" then shape = { shape } end
    local o = options.check("bernoulli", opts, { gen = options.NONE, dtype = "bool" })
    return core.rand_bernoulli_(core.empty(shape, { dtype = o.dtype }), gen_of("bernoulli", o), p)
  end

  -- In-place fills: t:uniform_(lo, hi, {gen=}), t:normal_(mean, std, {gen=})
  function T.methods.uniform_(t, lo, hi, opts)
    return core.rand_uniform_(t, gen_of("uniform_", options.check("uniform_", opts, { gen = options.NONE })),
      lo or 0, hi or 1)
  end
  function T.methods.normal_(t, mean, std, opts)
    return core.rand_normal_(t, gen_of("normal_", options.check("normal_", opts, { gen = options.NONE })),
      mean or 0, std or 1)
  end

  T.Generator = Generator
  return T
end

return M
