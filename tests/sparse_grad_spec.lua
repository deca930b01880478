-- Gradients through sparse @ dense reach the dense operand (S^T g), checked against a dense
-- computation of the same product.
local T = require("velua").tensor

describe("sparse matmul gradient", function()
  it("matches the dense product's gradient, and T.matmul dispatches on sparse", function()
    math.randomseed(7)
    local n, m, k = 6, 5, 3
    local dense = {}
    for i = 1, n do
      dense[i] = {}
      for j = 1, m do dense[i][j] = math.random() < 0.4 and (math.random() - 0.5) or 0 end
    end
    local A = T.tensor(dense, { dtype = "f64" })
    local S = T.sparse_from_dense(A)
    local xs = {}
    for i = 1, m do xs[i] = { math.random(), math.random(), math.random() } end
    local w = T.tensor(xs, { dtype = "f64" })
    local x1 = T.tensor(xs, { dtype = "f64" }):requires_grad()
    local x2 = T.tensor(xs, { dtype = "f64" }):requires_grad()
    local weights = T.arange(n * k):reshape(n, k):to("f64")
    local y1 = T.matmul(S, x1)
    local y2 = A:matmul(x2)
    assert.is_true((y1 - y2):abs():max():item() < 1e-12)
    ;(y1 * weights):sum():backward()
    ;(y2 * weights):sum():backward()
    local g1, g2 = x1:grad():totable(), x2:grad():totable()
    for i = 1, m do
      for j = 1, k do
        assert.is_true(math.abs(g1[i][j] - g2[i][j]) < 1e-12, i .. "," .. j)
      end
    end
    -- a vector operand too
    local v = T.tensor({ 1, 2, 3, 4, 5 }, { dtype = "f64" }):requires_grad()
    S:matmul(v):sum():backward()
    assert.are.same(A:sum(1):totable(), v:grad():totable())
    assert.is_nil(w:grad())
  end)
end)
