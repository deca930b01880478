-- Philox4x32-10 generators: known answers, the documented stream layout, reproducibility,
-- independence from threads and strides, distributions within Monte Carlo error, unbiased
-- integers, generator state, argument errors.
local velua = require "velua"
local T = velua.tensor
local core = require "velua.core"

local function err_of(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return tostring(e)
end

local function has(msg, part)
  assert.is_truthy(msg:find(part, 1, true), string.format("%q does not contain %q", msg, part))
end

-- every element equal (any dtype, same shape)
local function same(a, b)
  assert.are.same(a:shape(), b:shape())
  return a:eq(b):all():item()
end

-- the 53-bit uniform of random.h from two words
local function u01(w0, w1) return ((w0 >> 5) * 67108864.0 + (w1 >> 6)) / 9007199254740992.0 end

local function chi2_uniform(counts, nbins, n)
  local c2 = 0
  for b = 1, nbins do c2 = c2 + ((counts[b] or 0) - n / nbins) ^ 2 / (n / nbins) end
  return c2
end

describe("Philox4x32-10", function()
  it("matches the Random123 known-answer vectors", function()
    local function hex(...) return string.format("%08x %08x %08x %08x", ...) end
    assert.are.equal("6627e8d5 e169c58d bc57ac4c 9b00dbd8", hex(core._philox_block(0, 0, 0, 0, 0, 0)))
    local f = 0xffffffff
    assert.are.equal("408f276d 41c83b0e a20bc7c6 6d5451fd", hex(core._philox_block(f, f, f, f, f, f)))
    assert.are.equal("d16cfe09 94fdcceb 5001e420 24126ea1", hex(core._philox_block(
      0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0)))
  end)

  it("fills follow the documented stream layout", function()
    -- uniform f32: element i is word i%4 of block i/4, 24 bits
    local x = T.rand(8, { gen = T.generator(5) }):to("f64"):totable()
    local w = { core._philox_block(1, 0, 0, 0, 5, 0) }
    for k = 1, 4 do assert.are.equal((w[k] >> 8) / 16777216.0, x[4 + k]) end
    -- uniform f64: element i uses words 2(i%2), 2(i%2)+1 of block i/2; a 64-bit seed is split
    -- into key words (lo, hi) and the counter continues from the generator's state
    local seed = 0x123456789
    local g = T.generator(seed)
    g:set_state({ key = seed, counter = 0x100000002 })
    local y = T.rand(4, { gen = g, dtype = "f64" }):totable()
    local v = { core._philox_block(3, 1, 0, 0, 0x23456789, 1) }
    assert.are.equal(u01(v[1], v[2]), y[3])
    assert.are.equal(u01(v[3], v[4]), y[4])
    -- normal: Box-Muller pair from block i/2
    local z = T.randn(2, { gen = T.generator(9), dtype = "f64" }):totable()
    local b = { core._philox_block(0, 0, 0, 0, 9, 0) }
    local r, th = math.sqrt(-2 * math.log(1 - u01(b[1], b[2]))), 2 * math.pi * u01(b[3], b[4])
    assert.is_true(math.abs(z[1] - r * math.cos(th)) < 1e-12)
    assert.is_true(math.abs(z[2] - r * math.sin(th)) < 1e-12)
  end)
end)

describe("generators", function()
  it("same seed gives the same numbers; different seeds differ", function()
    for _, f in ipairs { T.rand, T.randn } do
      local a = f({ 100 }, { gen = T.generator(7) })
      assert.is_true(same(a, f({ 100 }, { gen = T.generator(7) })))
      assert.is_false(same(a, f({ 100 }, { gen = T.generator(8) })))
    end
    local p = T.randperm(50, { gen = T.generator(1) })
    assert.is_true(same(p, T.randperm(50, { gen = T.generator(1) })))
    assert.is_false(same(p, T.randperm(50, { gen = T.generator(2) })))
    -- consecutive draws of one generator differ
    local g = T.generator(3)
    assert.is_false(same(T.rand(10, { gen = g }), T.rand(10, { gen = g })))
  end)

  it("advances the counter by the documented number of blocks", function()
    local cases = {
      { function(g) T.rand(5, { gen = g }) end, 2 },
      { function(g) T.rand(5, { gen = g, dtype = "f64" }) end, 3 },
      { function(g) T.randn(5, { gen = g }) end, 3 },
      { function(g) T.randint(0, 9, { 5 }, { gen = g }) end, 5 },
      { function(g) T.bernoulli({ 5 }, 0.5, { gen = g }) end, 3 },
      { function(g) T.randperm(5, { gen = g }) end, 5 },
      { function(g) T.rand(0, { gen = g }) end, 0 },
    }
    for i, c in ipairs(cases) do
      local g = T.generator(1)
      c[1](g)
      assert.are.equal(c[2], g:get_state().counter, "case " .. i)
    end
  end)

  it("saves and restores state; clones are independent copies", function()
    local g = T.generator(11)
    T.rand(37, { gen = g })
    local s = g:get_state()
    assert.are.equal(11, s.key)
    assert.are.equal(10, s.counter)
    local x = T.randn(50, { gen = g })
    g:set_state(s)
    assert.is_true(same(x, T.randn(50, { gen = g })))
    local h = g:clone()
    assert.are.equal(tostring(g), tostring(h))
    assert.is_true(same(T.randint(0, 100, { 20 }, { gen = g }), T.randint(0, 100, { 20 }, { gen = h })))
    T.rand(3, { gen = h })
    assert.are_not.equal(g:get_state().counter, h:get_state().counter)
    -- seed(): read, and reseed with an argument
    assert.are.equal(11, g:seed())
    g:seed(12)
    assert.are.same({ key = 12, seed = 12, counter = 0 }, g:get_state())
    assert.is_true(same(T.rand(9, { gen = g }), T.rand(9, { gen = T.generator(12) })))
    assert.are.equal("velua.Generator(seed=-3, counter=0)", tostring(T.generator(-3)))
    assert.are.equal(0, T.generator():seed())
  end)

  it("has one default generator per install, reseeded by manual_seed", function()
    assert.are.equal(T.default_generator(), T.manual_seed(3))
    local d1 = T.rand(5)
    T.manual_seed(3)
    assert.is_true(same(d1, T.rand(5)))
    assert.is_true(same(d1, T.rand(5, { gen = T.generator(3) })))
    -- a second instance has its own default generator
    local U = { methods = {}, _shape_and_opts = T._shape_and_opts }
    require("velua.random").install(U, core)
    assert.are_not.equal(U.default_generator(), T.default_generator())
    U.manual_seed(99)
    T.manual_seed(3)
    local before = U.default_generator():get_state()
    T.rand(10)
    assert.are.same(before, U.default_generator():get_state())
  end)
end)

describe("random fills", function()
  it("do not depend on the thread count", function()
    local n = 1000003
    local makers = {
      function(g) return T.rand({ n }, { gen = g }) end,
      function(g) return T.rand({ n }, { gen = g, dtype = "f64" }) end,
      function(g) return T.randn({ n }, { gen = g }) end,
      function(g) return T.randint(-5, 1000, { n }, { gen = g }) end,
      function(g) return T.bernoulli({ n }, 0.25, { gen = g }) end,
    }
    local threads = velua.get_num_threads()
    for i, make in ipairs(makers) do
      velua.set_num_threads(1)
      local one = make(T.generator(9))
      velua.set_num_threads(2)
      local two = make(T.generator(9))
      assert.is_true(same(one, two), "maker " .. i)
    end
    velua.set_num_threads(threads)
  end)

  it("give a strided view the values of a contiguous fill of its shape", function()
    local fills = {
      function(t, g) return core.rand_uniform_(t, g, -2, 3) end,
      function(t, g) return core.rand_normal_(t, g, 1, 2) end,
      function(t, g) return core.rand_int_(t, g, -7, 7) end,
      function(t, g) return core.rand_bernoulli_(t, g, 0.4) end,
    }
    for i, fill in ipairs(fills) do
      for _, dt in ipairs { "f32", "f64" } do
        -- a transposed view, and a permuted, narrowed 3-d view of a larger base
        local base = T.zeros(6, 4, { dtype = dt })
        local views = { base:t(), T.zeros({ 5, 3, 4 }, { dtype = dt }):permute(3, 1, 2):narrow(2, 2, 3) }
        for _, view in ipairs(views) do
          assert.is_false(view:is_contiguous())
          local g1, g2 = T.generator(2), T.generator(2)
          fill(view, g1)
          local ref = fill(T.zeros(view:shape(), { dtype = dt }), g2)
          assert.is_true(same(ref, view), "fill " .. i .. " " .. dt)
          assert.are.same(g2:get_state(), g1:get_state())
        end
      end
    end
    -- elements outside a narrowed view are untouched
    local base = T.zeros(4, 6)
    base:narrow(2, 2, 3):uniform_(1, 2, { gen = T.generator(1) })
    assert.are.equal(0, base:narrow(2, 1, 1):abs():sum():item())
    assert.are.equal(0, base:narrow(2, 5, 2):abs():sum():item())
    assert.is_true(base:narrow(2, 2, 3):min():item() >= 1)
    -- 0-d and empty outputs
    assert.are.same({}, T.rand({}, { gen = T.generator(1) }):shape())
    assert.are.equal(0, T.randn({ 0, 3 }):numel())
  end)

  it("uniform and normal have the right moments (4 sigma) in f32 and f64", function()
    local n = 200000
    for _, dt in ipairs { "f32", "f64" } do
      local u = T.rand({ n }, { gen = T.generator(21), dtype = dt })
      assert.are.equal(dt, u:dtype())
      assert.is_true(math.abs(u:mean():item() - 0.5) < 4 * math.sqrt(1 / 12 / n))
      -- Var((U - 1/2)^2) = 1/80 - 1/144 = 1/180
      assert.is_true(math.abs(u:var():item() - 1 / 12) < 4 * math.sqrt(1 / 180 / n))
      assert.is_true(u:min():item() >= 0 and u:max():item() < 1)
      local a = T.zeros({ n }, { dtype = dt }):uniform_(-3, 5, { gen = T.generator(23) })
      assert.is_true(math.abs(a:mean():item() - 1) < 4 * 8 * math.sqrt(1 / 12 / n))
      assert.is_true(a:min():item() >= -3 and a:max():item() < 5)
      local z = T.randn({ n }, { gen = T.generator(22), dtype = dt })
      assert.is_true(math.abs(z:mean():item()) < 4 / math.sqrt(n))
      assert.is_true(math.abs(z:var():item() - 1) < 4 * math.sqrt(2 / n))
      assert.is_true(math.abs((z ^ 4):mean():item() - 3) < 4 * math.sqrt(96 / n)) -- Var(z^4) = 96
      local m = T.zeros({ n }, { dtype = dt }):normal_(2, 3, { gen = T.generator(24) })
      assert.is_true(math.abs(m:mean():item() - 2) < 4 * 3 / math.sqrt(n))
      assert.is_true(math.abs(m:std():item() - 3) < 4 * 3 / math.sqrt(2 * n))
    end
  end)

  it("uniform never reaches hi, even when rounding would", function()
    -- f32: values 1 + k 2^-23 for k = 0..8; 8 (= hi) must be pulled below hi
    local hi32 = 1 + 2 ^ -20
    local a = T.zeros(100000):uniform_(1, hi32, { gen = T.generator(1) })
    assert.is_true(a:max():item() < hi32)
    assert.is_true(a:max():item() > 1)
    -- f64: hi is the next double after 1, so every value rounds to 1 or hi; all must be 1
    local b = T.zeros(1000, { dtype = "f64" }):uniform_(1, 1 + 2 ^ -52, { gen = T.generator(1) })
    assert.are.equal(1, b:max():item())
  end)

  it("randint is in range and unbiased (chi-square, 10 bins and huge ranges)", function()
    local n = 100000
    local r = T.randint(-3, 7, { n }, { gen = T.generator(4) })
    assert.are.equal("i64", r:dtype())
    assert.are.equal(-3, r:min():item())
    assert.are.equal(6, r:max():item())
    local counts = {}
    for _, v in ipairs(r:totable()) do counts[v + 4] = (counts[v + 4] or 0) + 1 end
    local c2 = chi2_uniform(counts, 10, n)
    assert.is_true(c2 < 27.88, "chi2 = " .. c2) -- p = 0.001, 9 degrees of freedom
    -- a range of 3 * 2^62: plain 64-bit modulo would put 3/8 of the draws in the first third
    local lo = math.mininteger
    local third = 1 << 62
    local h = T.randint(lo, lo + 3 * third, { n }, { gen = T.generator(5) }):totable()
    local c3 = {}
    for _, v in ipairs(h) do
      local bin = v < lo + third and 1 or (v < lo + 2 * third and 2 or 3)
      c3[bin] = (c3[bin] or 0) + 1
    end
    local c2b = chi2_uniform(c3, 3, n)
    assert.is_true(c2b < 13.82, "chi2 = " .. c2b) -- p = 0.001, 2 degrees of freedom
    -- and a range of 3 * 2^30 (where a 32-bit modulo would be biased)
    local k = T.randint(0, 3 << 30, { n }, { gen = T.generator(6) }):totable()
    local c4 = {}
    for _, v in ipairs(k) do local bin = v // (1 << 30) + 1; c4[bin] = (c4[bin] or 0) + 1 end
    assert.is_true(chi2_uniform(c4, 3, n) < 13.82)
    -- the full i64 range minus one value
    local full = T.randint(math.mininteger, math.maxinteger, { 1000 }, { gen = T.generator(7) })
    assert.is_true(full:min():item() < 0 and full:max():item() > 0)
  end)

  it("randint: shape forms, float outputs, exactness limits", function()
    local g = T.generator(8)
    assert.are.same({ 3, 4 }, T.randint(0, 5, 3, 4, { gen = g }):shape())
    local z = T.randint(10, { 1000 }, { gen = g }) -- randint(high, shape): 0 <= x < 10
    assert.is_true(z:min():item() == 0 and z:max():item() == 9)
    local f = T.randint(-1000, 1000, { 1000 }, { gen = T.generator(1), dtype = "f64" })
    local i = T.randint(-1000, 1000, { 1000 }, { gen = T.generator(1) })
    assert.are.equal("f64", f:dtype())
    assert.is_true(same(f, i:to("f64")))
    has(err_of(T.randint, 0, (1 << 24) + 2, { 2 }, { dtype = "f32" }), "not all exact in f32")
    T.randint(-(1 << 24), (1 << 24) + 1, { 2 }, { dtype = "f32" }) -- the limit itself is fine
  end)

  it("randperm is a permutation of 1..n", function()
    for _, n in ipairs { 1, 2, 1000 } do
      local p = T.randperm(n, { gen = T.generator(n) })
      assert.are.equal("i64", p:dtype())
      local v = p:totable()
      table.sort(v)
      for k = 1, n do assert.are.equal(k, v[k]) end
    end
    assert.are.equal(0, T.randperm(0):numel())
    -- each value lands at each position equally often (chi-square over 3! orderings)
    local g, counts, m = T.generator(1), {}, 6000
    for _ = 1, m do
      local key = table.concat(T.randperm(3, { gen = g }):totable())
      counts[key] = (counts[key] or 0) + 1
    end
    local list = {}
    for _, c in pairs(counts) do list[#list + 1] = c end
    assert.are.equal(6, #list)
    assert.is_true(chi2_uniform(list, 6, m) < 20.52) -- p = 0.001, 5 degrees of freedom
  end)

  it("bernoulli has the right rate and dtypes", function()
    local b = T.bernoulli({ 100000 }, 0.3, { gen = T.generator(6) })
    assert.are.equal("bool", b:dtype())
    local rate = b:to("f64"):mean():item()
    assert.is_true(math.abs(rate - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 100000))
    local f = T.bernoulli(10, 0.5, { gen = T.generator(6), dtype = "f32" })
    for _, v in ipairs(f:totable()) do assert.is_true(v == 0 or v == 1) end
    assert.are.equal(0, T.bernoulli({ 1000 }, 0):to("f64"):sum():item())
    assert.are.equal(1000, T.bernoulli({ 1000 }, 1, { dtype = "i64" }):sum():item())
  end)
end)

describe("random argument errors", function()
  it("are clear", function()
    has(err_of(T.rand, { 2 }, { gne = 1 }), "rand: unknown option 'gne'")
    has(err_of(T.randint, 0, 3, { 2 }, { gne = 1 }), "randint: unknown option 'gne'")
    has(err_of(T.randperm, 3, { seed = 1 }), "randperm: unknown option 'seed'")
    has(err_of(T.rand, { 2 }, { gen = 5 }), "gen must be a generator")
    has(err_of(T.rand, { 2 }, { dtype = "i64" }), "rand: dtype must be f32 or f64, got i64")
    has(err_of(T.randn, { 2 }, { dtype = "bool" }), "randn: dtype must be f32 or f64, got bool")
    has(err_of(T.randint, 5, 5, { 2 }), "need low < high")
    has(err_of(T.randint, 0.5, 5, { 2 }), "low and high must be integers")
    has(err_of(T.bernoulli, { 2 }, 1.5), "p must be in [0, 1]")
    has(err_of(T.bernoulli, { 2 }, -0.1), "p must be in [0, 1]")
    has(err_of(T.bernoulli, { 2 }, 0 / 0), "p must be in [0, 1]")
    has(err_of(T.generator, 1.5), "seed must be an integer")
    has(err_of(T.manual_seed, "x"), "seed must be an integer")
    has(err_of(T.randperm, -1), "out of range")
    local g = T.generator(1)
    has(err_of(function() return core.rand_uniform_(T.zeros(2), 3) end),
      "bad argument #2 to 'rand_uniform_' (generator expected, got number)")
    has(err_of(core.rand_normal_, T.zeros(2), T.zeros(2)), "generator expected, got velua.Tensor")
    has(err_of(core.rand_uniform_, 3, g), "tensor expected")
    has(err_of(core.rand_uniform_, T.zeros(2), g, 1, 1), "need finite lo < hi")
    has(err_of(core.rand_uniform_, T.zeros(2), g, 0, math.huge), "need finite lo < hi")
    has(err_of(core.rand_uniform_, T.zeros(2, { dtype = "i64" }), g), "output must be f32 or f64")
    has(err_of(core.rand_normal_, T.zeros(2, { dtype = "bool" }), g), "output must be f32 or f64")
    has(err_of(function() T.zeros(2):normal_(0, -1) end), "std >= 0")
    has(err_of(core.rand_int_, T.zeros(2, { dtype = "bool" }), g, 0, 2), "got bool")
    has(err_of(core.rand_int_, T.zeros(2, { dtype = "i64" }), g, 0, 2.5), "number has no integer")
    has(err_of(function() T.zeros(1, 3):expand(4, 3):uniform_() end), "broadcast view")
    has(err_of(core.gen_set_state, g, { counter = 1 }), "state.key must be an integer")
    has(err_of(core.gen_set_state, g, { key = 1 }), "state.counter must be an integer")
    -- a failed fill leaves the generator where it was
    assert.are.equal(0, g:get_state().counter)
  end)
end)
