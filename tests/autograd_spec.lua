-- Behaviour of reverse-mode autodiff: leaves and gradients, accumulation, graph lifetime,
-- detach/no_grad, broadcasting, in-place checks, deep graphs and memory. Gradient values of
-- the individual rules are checked against finite differences in gradcheck_spec.lua.
local T = require("velua").tensor

local function f64(t) return T.tensor(t, { dtype = "f64" }) end
local function leaf(t) return f64(t):requires_grad() end

local function assert_close(expected, actual, tol, msg)
  tol = tol or 1e-12
  if type(expected) == "table" then
    assert.are.equal(#expected, #actual, msg)
    for i = 1, #expected do assert_close(expected[i], actual[i], tol, msg) end
    return
  end
  assert.is_true(math.abs(expected - actual) <= tol * math.max(1, math.abs(expected)),
    string.format("%s: expected %.17g, got %.17g", msg or "", expected, actual))
end

local function raises(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error mentioning '" .. pattern .. "'")
  assert.is_truthy(tostring(err):find(pattern, 1, true),
    "error does not mention '" .. pattern .. "': " .. tostring(err))
end

describe("autograd", function()
  describe("leaves", function()
    it("lets f32 and f64 tensors require grad and rejects i64 and bool", function()
      local a = T.tensor({ 1, 2 }):requires_grad()
      local b = f64({ 1, 2 }):requires_grad()
      assert.is_true(a:needs_grad() and b:needs_grad())
      assert.is_true(a:is_leaf())
      raises("i64", function() T.tensor({ 1, 2 }, { dtype = "i64" }):requires_grad() end)
      raises("bool", function() T.tensor({ true }, { dtype = "bool" }):requires_grad() end)
      -- requires_grad(false) on a leaf turns it off again
      assert.is_false(b:requires_grad(false):needs_grad())
    end)

    it("has no gradient before backward", function()
      local x = leaf { 1, 2, 3 }
      assert.is_nil(x:grad())
      local y = (x * 2):sum()
      assert.is_nil(x:grad())
      y:backward()
      assert.are.same({ 2, 2, 2 }, x:grad():totable())
    end)

    it("gives an f32 leaf an f32 gradient through an f64 computation", function()
      local x = T.tensor({ 1, 2, 3 }):requires_grad()
      local y = (x:to("f64") * f64 { 1, 2, 3 }):sum()
      assert.are.equal("f64", y:dtype())
      y:backward()
      assert.are.equal("f32", x:grad():dtype())
      assert.are.same({ 1, 2, 3 }, x:grad():totable())
    end)

    it("rejects backward on a tensor that does not require grad", function()
      raises("does not require grad", function() f64({ 1, 2 }):sum():backward() end)
    end)
  end)

  describe("accumulation and graph lifetime", function()
    it("accumulates gradients across two backward calls with fresh forward passes", function()
      local x = leaf { 1, 2, 3 }
      for _ = 1, 2 do (x * x):sum():backward() end
      assert.are.same({ 4, 8, 12 }, x:grad():totable())
      x:zero_grad()
      assert.is_nil(x:grad())
      local again = (x * x):sum()
      again:backward()
      assert.are.same({ 2, 4, 6 }, x:grad():totable())
    end)

    it("rejects a second backward through a freed graph, unless retain_graph is set", function()
      local x = leaf { 1, 2, 3 }
      local y = (x:exp() * x):sum()
      y:backward()
      raises("already freed", function() y:backward() end)

      local x2 = leaf { 1, 2, 3 }
      local y2 = (x2:exp() * x2):sum()
      y2:backward({ retain_graph = true })
      local once = x2:grad():totable()
      y2:backward()
      local twice = x2:grad():totable()
      for i = 1, 3 do assert_close(2 * once[i], twice[i]) end
      raises("already freed", function() y2:backward() end)
    end)

    it("rejects backward into a shared subgraph freed by another backward", function()
      local x = leaf { 1, 2 }
      local h = x:exp()
      local a, b = h:sum(), (h * 2):sum()
      a:backward()
      raises("freed", function() b:backward() end)
    end)

    it("frees the recorded graph after backward", function()
      local weak = setmetatable({}, { __mode = "v" })
      local x = leaf { 1, 2, 3 }
      local loss
      do
        local h = x:exp()
        weak[1] = h:sin()
        loss = (weak[1] * h):sum()
      end
      collectgarbage(); collectgarbage()
      assert.is_not_nil(weak[1], "the graph must keep its intermediate results before backward")
      loss:backward()
      collectgarbage(); collectgarbage()
      assert.is_nil(weak[1], "an intermediate result of the graph survived backward")
      assert.is_not_nil(x:grad())
    end)

    it("handles a chain of 10,000 operations without overflowing the stack", function()
      local x = leaf { 0.5, -0.25 }
      local y = x
      for _ = 1, 10000 do y = y * 1.0001 end
      y:sum():backward()
      local expected = 1.0001 ^ 10000
      assert_close(expected, x:grad():get(1), 1e-9)
      assert_close(expected, x:grad():get(2), 1e-9)
    end)
  end)

  describe("graph structure", function()
    it("sums the gradients of both paths of a diamond", function()
      local x = leaf { 1, 2, 3 }
      local a, b = x:exp(), x * x
      local y = (a + b):sum()
      y:backward()
      local g = x:grad():totable()
      for i, v in ipairs { 1, 2, 3 } do assert_close(math.exp(v) + 2 * v, g[i]) end
    end)

    it("reduces broadcast gradients to each input's shape", function()
      local a = leaf { { 1 }, { 2 }, { 3 } } -- {3,1}
      local b = leaf { 1, 2, 3, 4 }          -- {4}
      local y = a + b
      assert.are.same({ 3, 4 }, y:shape())
      y:sum():backward()
      assert.are.same({ 3, 1 }, a:grad():shape())
      assert.are.same({ 4 }, b:grad():shape())
      assert.are.same({ { 4 }, { 4 }, { 4 } }, a:grad():totable())
      assert.are.same({ 3, 3, 3, 3 }, b:grad():totable())
    end)

    it("rejects backward on a non-scalar without a gradient, and uses an explicit one", function()
      local x = leaf { 1, 2, 3 }
      local y = x * 3
      raises("one element", function() y:backward() end)
      y:backward(f64 { 1, 10, 100 })
      assert.are.same({ 3, 30, 300 }, x:grad():totable())
    end)

    it("rejects an explicit gradient whose shape differs from the output's", function()
      local x = leaf { 1, 2, 3 }
      local y = x * 3
      raises("shape", function() y:backward(f64 { { 1, 1, 1 }, { 1, 1, 1 } }) end)
      assert.is_nil(x:grad())
      local x2 = leaf { 1, 2, 3 }
      raises("shape", function() x2:backward(f64 { 1, 1 }) end)
      assert.is_nil(x2:grad())
    end)

    it("detach cuts the graph and shares memory", function()
      local x = leaf { 1, 2, 3 }
      local y = x * 2
      local d = y:detach()
      assert.is_false(d:needs_grad())
      assert.is_true(d:is_leaf())
      assert.are.same(y:totable(), d:totable())
      -- memory is shared: a write through the detached tensor shows in y
      T.no_grad(function() d:set(1, 42) end)
      assert.are.equal(42, y:get(1))
      -- no gradient flows through d
      local x2 = leaf { 1, 2, 3 }
      local z = (x2:detach() * x2):sum()
      z:backward()
      assert.are.same({ 1, 2, 3 }, x2:grad():totable())
    end)
  end)

  describe("no_grad", function()
    it("returns fn's results and records nothing", function()
      local x = leaf { 1, 2 }
      local a, b, c = T.no_grad(function(u) return u * 2, "s", u:exp() end, x)
      assert.are.equal("s", b)
      assert.is_false(a:needs_grad())
      assert.is_false(c:needs_grad())
      assert.is_true(T.is_grad_enabled())
      assert.is_true((x * 2):needs_grad())
    end)

    it("restores grad mode when fn errors", function()
      local ok, err = pcall(T.no_grad, function() error("boom") end)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("boom", 1, true))
      assert.is_true(T.is_grad_enabled())
      -- nested: the inner call restores the outer (disabled) mode
      T.no_grad(function()
        pcall(T.no_grad, function() error("inner") end)
        assert.is_false(T.is_grad_enabled())
      end)
      assert.is_true(T.is_grad_enabled())
    end)
  end)

  describe("in-place operations", function()
    it("rejects in-place ops on a leaf that requires grad", function()
      local x = leaf { 1, 2, 3 }
      raises("in-place", function() x:add_(1) end)
      raises("in-place", function() x:mul_(2) end)
      raises("in-place", function() x:fill_(0) end)
      raises("in-place", function() x:zero_() end)
      -- allowed under no_grad (optimizer updates)
      T.no_grad(function() x:add_(1) end)
      assert.are.same({ 2, 3, 4 }, x:totable())
    end)

    it("rejects element assignment on a leaf that requires grad", function()
      local x = leaf { 1, 2, 3 }
      raises("in-place", function() x:set(1, 5) end)
      raises("in-place", function() x[2] = 5 end)
      assert.are.same({ 1, 2, 3 }, x:totable())
    end)

    it("detects a saved tensor modified in place before backward", function()
      local x = leaf { 1, 2, 3 }
      local y = x:exp()          -- exp saves its output
      local loss = (y * 1):sum()
      T.no_grad(function() y:add_(1) end)
      raises("modified in place", function() loss:backward() end)

      -- a constant operand modified through a view
      local x2 = leaf { 1, 2, 3 }
      local w = f64 { 1, 2, 3 }
      local z = (x2 * w):sum()
      w:narrow(1, 2, 1):mul_(2)
      raises("modified in place", function() z:backward() end)
    end)
  end)

  describe("precision", function()
    -- the exponent p - 1 of pow's rule must not be rounded to f32 for f64 tensors
    it("differentiates x^p with a fractional scalar p to f64 precision", function()
      local x = leaf { 2, 3, 0.7 }
      local p = 1 / 3
      local y = (x ^ p):sum()
      y:backward()
      for i, v in ipairs { 2, 3, 0.7 } do
        assert_close(p * v ^ (p - 1), x:grad():get(i), 1e-14, "element " .. i)
      end
    end)
  end)

  describe("memory", function()
    it("stays flat over 200 iterations of a training-like loop", function()
      local script = os.tmpname()
      local f = assert(io.open(script, "w"))
      f:write(string.format("package.path = %q\npackage.cpath = %q\n", package.path, package.cpath))
      f:write([[
local T = require("velua").tensor
local function rss()
  for line in io.lines("/proc/self/status") do
    local v = line:match("^VmRSS:%s+(%d+) kB")
    if v then return tonumber(v) end
  end
end
math.randomseed(7)
local function rand(n, m, s)
  local t = {}
  for i = 1, n do
    t[i] = {}
    for j = 1, m do t[i][j] = (math.random() - 0.5) * s end
  end
  return T.tensor(t, { dtype = "f32" })
end
local x = rand(256, 256, 1)
local target = rand(256, 256, 1)
local w1 = rand(256, 256, 0.1):requires_grad()
local w2 = rand(256, 256, 0.1):requires_grad()
local warm
for it = 1, 200 do
  local h = x:matmul(w1):relu()
  local out = h:matmul(w2)
  local loss = ((out - target) ^ 2):mean()
  loss:backward()
  T.no_grad(function()
    w1:add_(w1:grad() * -0.01)
    w2:add_(w2:grad() * -0.01)
  end)
  w1:zero_grad(); w2:zero_grad()
  if it == 20 then warm = rss() end
end
print("warm_kb", warm)
print("end_kb", rss())
]])
      f:close()
      local p = assert(io.popen("lua5.4 " .. script .. " 2>&1"))
      local out = p:read("a")
      local ok = p:close()
      os.remove(script)
      assert.is_true(ok, out)
      local warm = tonumber(out:match("warm_kb%s+(%d+)"))
      local last = tonumber(out:match("end_kb%s+(%d+)"))
      assert.is_truthy(warm and last, out)
      assert.is_true(last - warm < 6 * 1024,
        string.format("RSS grew from %d kB after warm-up to %d kB", warm, last))
    end)
  end)
end)
