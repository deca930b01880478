-- The SIMD f32 exp and sigmoid kernels against Lua's double-precision math over their whole
-- range, including the subnormal tail, overflow and special values.
local T = require("velua").tensor

describe("f32 exp and sigmoid kernels", function()
  local n = 200001
  local x = T.linspace(-110, 95, n, { dtype = "f64" })
  local xf = x:to("f32")
  local xs = xf:to("f64"):totable() -- the exact f32 inputs

  it("exp is within 2 ulp of the correctly rounded value", function()
    local y = xf:exp():to("f64"):totable()
    local worst, at = 0, nil
    for i = 1, n do
      local ref = math.exp(xs[i])
      if ref > 1.2e-38 and ref < 3.4e38 then
        local ulp = 2.0 ^ (math.floor(math.log(ref, 2)) - 23)
        local err = math.abs(y[i] - ref) / ulp
        if err > worst then worst, at = err, xs[i] end
      elseif ref >= 3.5e38 then
        assert.are.equal(math.huge, y[i])
      elseif ref < 1e-46 then
        assert.are.equal(0, y[i])
      end
    end
    assert.is_true(worst <= 2, string.format("exp error %.2f ulp at x = %.9g", worst, at or 0))
  end)

  it("exp keeps NaN, infinities and zero right, also on strided input", function()
    local s = T.tensor({ 0 / 0, math.huge, -math.huge, 0, -0.0, 1 })
    local y = s:exp():totable()
    assert.is_true(y[1] ~= y[1])
    assert.are.same({ math.huge, 0, 1, 1 }, { y[2], y[3], y[4], y[5] })
    assert.is_true(math.abs(y[6] - math.exp(1)) < 3e-7)
    local m = T.tensor({ { 1, 2 }, { 3, 4 } }):t():exp() -- non-contiguous: scalar path
    assert.is_true(math.abs(m:get(1, 2) - math.exp(3)) < 3e-6 * math.exp(3))
  end)

  it("sigmoid is within 3e-7 relative error", function()
    local y = xf:sigmoid():to("f64"):totable()
    local worst = 0
    for i = 1, n do
      local ref = 1 / (1 + math.exp(-xs[i]))
      if ref > 1.2e-38 then
        worst = math.max(worst, math.abs(y[i] - ref) / ref)
      end
    end
    assert.is_true(worst < 3e-7, "sigmoid relative error " .. worst)
    local s = T.tensor({ 0 / 0, math.huge, -math.huge }):sigmoid():totable()
    assert.is_true(s[1] ~= s[1])
    assert.are.same({ 1, 0 }, { s[2], s[3] })
  end)
end)
