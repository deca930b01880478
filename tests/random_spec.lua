-- Philox4x32-10 generators: known answers, reproducibility, independence from threads and
-- strides, distribution checks within Monte Carlo error, argument errors.
local velua = require "velua"
local T = velua.tensor
local core = require "velua.core"

describe("random numbers", function()
  it("Philox4x32-10 matches the Random123 known-answer vectors", function()
    local function hex(...) return string.format("%08x %08x %08x %08x", ...) end
    assert.are.equal("6627e8d5 e169c58d bc57ac4c 9b00dbd8", hex(core._philox_block(0, 0, 0, 0, 0, 0)))
    local f = 0xffffffff
    assert.are.equal("408f276d 41c83b0e a20bc7c6 6d5451fd", hex(core._philox_block(f, f, f, f, f, f)))
    assert.are.equal("d16cfe09 94fdcceb 5001e420 24126ea1", hex(core._philox_block(
      0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0)))
  end)

  it("uniform f32 element i is word i%4 of block i/4 (the documented layout)", function()
    local x = T.rand(8, { gen = T.generator(5) }):to("f64"):totable()
    local w = { core._philox_block(1, 0, 0, 0, 5, 0) }
    for k = 1, 4 do assert.are.equal((w[k] >> 8) / 16777216.0, x[4 + k]) end
  end)

  it("same seed gives the same numbers; different seeds differ; state round-trips", function()
    local a = T.randn({ 100 }, { gen = T.generator(7) }):totable()
    local b = T.randn({ 100 }, { gen = T.generator(7) }):totable()
    local c = T.randn({ 100 }, { gen = T.generator(8) }):totable()
    assert.are.same(a, b)
    assert.are_not.same(a, c)
    local g = T.generator(11)
    T.rand(37, { gen = g })
    local s = g:get_state()
    local x = T.rand(50, { gen = g }):totable()
    g:set_state(s)
    assert.are.same(x, T.rand(50, { gen = g }):totable())
    local h = g:clone()
    assert.are.same(T.randint(0, 100, { 20 }, { gen = g }):totable(),
      T.randint(0, 100, { 20 }, { gen = h }):totable())
    T.manual_seed(3)
    local d1 = T.rand(5):totable()
    T.manual_seed(3)
    assert.are.same(d1, T.rand(5):totable())
  end)

  it("does not depend on the thread count or on the output's strides", function()
    local n = 1000003
    for _, kind in ipairs { "rand", "randn" } do
      velua.set_num_threads(1)
      local one = T[kind]({ n }, { gen = T.generator(9), dtype = "f64" })
      velua.set_num_threads(2)
      local two = T[kind]({ n }, { gen = T.generator(9), dtype = "f64" })
      assert.are.equal(0, (one - two):abs():max():item(), kind)
    end
    local base = T.zeros(6, 4)
    local view = base:t() -- {4, 6}, not contiguous
    view:uniform_(0, 1, { gen = T.generator(2) })
    local ref = T.rand({ 4, 6 }, { gen = T.generator(2) })
    assert.are.same(ref:totable(), view:totable())
  end)

  it("has the right moments within Monte Carlo error", function()
    local n = 200000
    for _, dt in ipairs { "f32", "f64" } do
      local u = T.rand({ n }, { gen = T.generator(21), dtype = dt })
      assert.is_true(math.abs(u:mean():item() - 0.5) < 4 * math.sqrt(1 / 12 / n))
      assert.is_true(math.abs(u:var():item() - 1 / 12) < 0.002)
      assert.is_true(u:min():item() >= 0 and u:max():item() < 1)
      local z = T.randn({ n }, { gen = T.generator(22), dtype = dt })
      assert.is_true(math.abs(z:mean():item()) < 4 / math.sqrt(n))
      assert.is_true(math.abs(z:var():item() - 1) < 4 * math.sqrt(2 / n))
      -- fourth moment of a normal is 3
      assert.is_true(math.abs((z ^ 4):mean():item() - 3) < 0.1)
    end
  end)

  it("randint is in range and unbiased (chi-square over 10 bins)", function()
    local n = 100000
    local r = T.randint(-3, 7, { n }, { gen = T.generator(4) })
    assert.are.equal(-3, r:min():item())
    assert.are.equal(6, r:max():item())
    local counts = {}
    for _, v in ipairs(r:totable()) do counts[v] = (counts[v] or 0) + 1 end
    local chi2 = 0
    for v = -3, 6 do chi2 = chi2 + (counts[v] - n / 10) ^ 2 / (n / 10) end
    assert.is_true(chi2 < 27.9, "chi2 = " .. chi2) -- p = 0.001 for 9 degrees of freedom
  end)

  it("randperm is a permutation of 1..n, and bernoulli has the right rate", function()
    local p = T.randperm(1000, { gen = T.generator(1) }):totable()
    table.sort(p)
    for i = 1, 1000 do assert.are.equal(i, p[i]) end
    local b = T.bernoulli({ 100000 }, 0.3, { gen = T.generator(6) })
    assert.are.equal("bool", b:dtype())
    assert.is_true(math.abs(b:sum():item() / 100000 - 0.3) < 0.006)
  end)

  it("rejects bad arguments with clear messages", function()
    local function err(f, ...) local ok, e = pcall(f, ...); assert.is_false(ok); return e end
    assert.is_truthy(err(T.rand, { 2 }, { gne = 1 }):find("unknown option 'gne'", 1, true))
    assert.is_truthy(err(T.rand, { 2 }, { gen = 5 }):find("gen must be a generator", 1, true))
    assert.is_truthy(err(T.rand, { 2 }, { dtype = "i64" }):find("f32 or f64", 1, true))
    assert.is_truthy(err(T.randint, 5, 5, { 2 }):find("low < high", 1, true))
    assert.is_truthy(err(T.bernoulli, { 2 }, 1.5):find("[0, 1]", 1, true))
    assert.is_truthy(err(T.generator, 1.5):find("integer", 1, true))
    assert.is_truthy(err(core.rand_uniform_, T.zeros(2), 3):find("generator expected", 1, true))
    assert.is_truthy(err(function() T.zeros(2):normal_(0, -1) end):find("std >= 0", 1, true))
  end)
end)
