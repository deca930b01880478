-- Bad input raises a Lua error that names the argument, the expected and the actual value;
-- nothing crashes the interpreter.
local velua = require "velua"
local T = velua.tensor
local core = require "velua.core"

local function err_of(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return tostring(e)
end

local function has(msg, part) assert.is_truthy(msg:find(part, 1, true), "message was: " .. msg) end

describe("tensor error messages", function()
  it("matmul shape mismatch names both shapes and the dims", function()
    local e = err_of(function() return T.zeros(3, 4):matmul(T.zeros(5, 6)) end)
    has(e, "matmul: shapes {3,4} and {5,6} do not match (dim 2 of a vs dim 1 of b)")
    e = err_of(function() return T.zeros(2, 3, 4):matmul(T.zeros(2, 5, 6)) end)
    has(e, "shapes {2,3,4} and {2,5,6} do not match (dim 3 of a vs dim 2 of b)")
    has(err_of(function() return T.zeros(2, 3, 4):matmul(T.zeros(3, 4, 2)) end), "cannot be broadcast")
    has(err_of(function() return T.tensor(1):matmul(T.zeros(2)) end), "at least 1 dim")
  end)

  it("broadcasting failures name both shapes", function()
    has(err_of(function() return T.zeros(2, 3) + T.zeros(4) end), "shapes {2,3} and {4} cannot be broadcast")
    has(err_of(function() return T.where(T.ones(3, { dtype = "bool" }), T.zeros(2), 1) end), "cannot be broadcast")
    has(err_of(function() return T.zeros(3):expand(2, 4) end), "cannot broadcast shape {3} to {2,4}")
  end)

  it("wrong dtypes", function()
    has(err_of(function() return T.ones(2, { dtype = "bool" }):matmul(T.ones(2, { dtype = "bool" })) end),
      "not defined for bool")
    has(err_of(function() return -T.ones(2, { dtype = "bool" }) end), "logical_not")
    has(err_of(function() return T.ones(2, { dtype = "i64" }):add_(0.5) end), "cannot be stored in place")
    has(err_of(function() return T.ones(2):index(1, T.ones(1)) end), "i64")
    has(err_of(function() return T.zeros(2, { dtype = "f16" }) end), "unknown dtype 'f16'")
    has(err_of(function() return T.ones(2):to("int") end), "unknown dtype 'int'")
  end)

  it("out-of-range indices and dims name the index and the size", function()
    local t = T.zeros(3, 4)
    has(err_of(function() return t:get(4, 1) end), "index 4 out of range for dim 1 of size 3")
    has(err_of(function() return t:get(1) end), "1 indices given for a 2-d tensor")
    has(err_of(function() return t:select(2, 5) end), "index 5 out of range for dim 2 of size 4")
    has(err_of(function() return t:narrow(1, 3, 2) end), "out of range for dim 1 of size 3")
    has(err_of(function() return t:index(1, { 1, 9 }) end), "index 9 (at position 2) out of range for dim 1 of size 3")
    has(err_of(function() return t:sum(3) end), "dim 3 out of range (expected 1..2 or -2..-1)")
    has(err_of(function() return t:transpose(1, 0) end), "dim 0 out of range")
    has(err_of(function() return T.cat({ t, T.zeros(3, 5) }, 1) end), "tensor 2 has size 5 in dim 2")
  end)

  it("negative and non-integer sizes", function()
    has(err_of(function() return T.zeros(3, -1) end), "negative size -1")
    has(err_of(function() return T.zeros({ 2.5 }) end), "must be an integer")
    has(err_of(function() return T.zeros(6):reshape(4, -1) end), "cannot infer")
    has(err_of(function() return T.zeros(6):reshape(4, 2) end), "(6 elements) as {4,2} (8)")
  end)

  it("non-tensor arguments name what was given", function()
    has(err_of(function() return T.add(T.ones(2), "x") end), "tensor or number expected, got string")
    has(err_of(function() return T.ones(2):matmul({ 1, 2 }) end), "tensor expected, got table")
    has(err_of(core.sum, 5), "tensor expected, got number")
    has(err_of(T.tensor, "abc"), "nested table, number or boolean expected, got string")
    has(err_of(T.tensor, { { 1, 2 }, { 3 } }), "ragged nested table")
    has(err_of(T.tensor, { 1, "a" }), "expected numbers or booleans")
  end)

  it("unknown options are errors, so typos do not pass silently", function()
    has(err_of(T.zeros, 2, { dtyp = "f64" }), "zeros: unknown option 'dtyp'")
    has(err_of(function() return T.randn({ 2 }, { seed = 1 }) end), "unknown option 'seed'")
  end)

  it("a freed tensor and its views raise instead of reading freed memory", function()
    local t = T.ones(10)
    local v = t:narrow(1, 2, 3)
    t:free()
    has(err_of(function() return t:sum() end), "released by free()")
    has(err_of(function() return v + 1 end), "released by free()")
  end)
end)

describe("thread count", function()
  it("gives bitwise-identical results on 1 and 2 threads for velua's own kernels", function()
    local g = T.generator(77)
    local a = T.randn({ 1200, 900 }, { gen = g })
    local b = T.randn({ 900 }, { gen = g })
    local results = {}
    for _, n in ipairs { 1, 2 } do
      assert.are.equal(n, velua.set_num_threads(n))
      assert.are.equal(n, velua.get_num_threads())
      results[n] = {
        ((a * b):exp() - a):sigmoid(), a:sum(), a:to("f64"):sum(), a:sum(1), a:sum(2, true),
        a:max(1), a:mean(2), a:t():contiguous(), a:narrow(2, 3, 500):norm(),
      }
    end
    for k = 1, #results[1] do
      local x, y = results[1][k], results[2][k]
      assert.are.equal(0, (x:to("f64") - y:to("f64")):abs():max():item(), "result " .. k)
    end
  end)

  it("OpenBLAS products agree across thread counts to rounding (not bitwise)", function()
    local g = T.generator(78)
    local a, b = T.randn({ 700, 500 }, { gen = g }), T.randn({ 500, 300 }, { gen = g })
    velua.set_num_threads(1)
    local one = a:matmul(b)
    velua.set_num_threads(2)
    local two = a:matmul(b)
    local scale = one:abs():max():item()
    assert.is_true((one - two):abs():max():item() <= 1e-5 * scale)
  end)
end)
