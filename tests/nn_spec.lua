-- velua.nn: the Module base (parameters, train/eval, state_dict), the layers against hand
-- computations, and the losses against hand-computed values and finite differences (f64).
local velua = require "velua"
local T, nn = velua.tensor, velua.nn
local F = nn.F
local h = require "support.helpers"

local ok_gc, gradcheck = pcall(require, "velua.gradcheck")
if not ok_gc then
  -- central differences of sum(fn(...)) for the inputs that require grad (f64)
  gradcheck = function(fn, inputs, opts)
    local eps, tol = 1e-6, (opts and opts.tol) or 1e-6
    local args = {}
    for i, x in ipairs(inputs) do
      args[i] = (T.is_tensor(x) and x:needs_grad()) and x:detach():to("f64"):clone():requires_grad() or x
    end
    fn(table.unpack(args)):sum():backward()
    for i, x in ipairs(args) do
      if T.is_tensor(x) and x:needs_grad() then
        local flat, g = x:detach():view(-1), x:grad():contiguous():view(-1)
        for k = 1, flat:numel() do
          local v = flat:get(k)
          local function L(d)
            flat:set(k, v + d)
            return T.no_grad(function() return fn(table.unpack(args)):sum():item() end)
          end
          local num = (L(eps) - L(-eps)) / (2 * eps)
          flat:set(k, v)
          if math.abs(num - g:get(k)) > tol * math.max(1, math.abs(num)) then
            return false, string.format("input %d element %d: %g vs %g", i, k, g:get(k), num)
          end
        end
      end
    end
    return true
  end
end

local function approx(a, b, rtol, atol)
  if T.is_tensor(a) then a = a:totable() end
  if T.is_tensor(b) then b = b:totable() end
  local ok, msg = h.approx_equal(a, b, rtol or 1e-5, atol or 1e-6)
  assert(ok, msg)
end

local function f64(t) return T.tensor(t, { dtype = "f64" }) end

local function class_name(m) return getmetatable(m).__name end

local function names_of(m)
  local out = {}
  for name in m:named_parameters() do out[#out + 1] = name end
  return out
end

-- deterministic pseudo-random nested tables (independent of velua.random)
local function lcg_table(rows, cols, seed, lo, hi)
  local s = seed
  local out = {}
  for i = 1, rows do
    out[i] = {}
    for j = 1, cols do
      s = (s * 1103515245 + 12345) % 2147483648
      out[i][j] = lo + (hi - lo) * s / 2147483648
    end
  end
  return out
end

describe("nn.Module", function()
  it("registers parameters, buffers and children in order, recursively", function()
    local Net = nn.Module:extend("Net")
    function Net:__init()
      self:register_parameter("scale", T.ones({ 1 }))
      self.enc = nn.Linear(2, 3)
      self.act = nn.ReLU()
      self.dec = nn.Linear(3, 1, { bias = false })
      self:register_buffer("count", T.zeros({ 1 }))
    end
    function Net:forward(x) return self.dec(self.act(self.enc(x))) * self.scale end
    local net = Net()
    assert.are.same({ "scale", "enc.weight", "enc.bias", "dec.weight" }, names_of(net))
    local ps = net:parameters()
    assert.are.equal(4, #ps)
    assert.are.equal(net.scale, ps[1])
    assert.are.equal(net.enc.weight, ps[2])
    assert.are.equal(net.enc.bias, ps[3])
    assert.are.equal(net.dec.weight, ps[4])
    for _, p in ipairs(ps) do assert.is_true(p:needs_grad()) end
    assert.are.equal(1 + 9 + 3, net:num_parameters())
    local bufs = {}
    for name in net:named_buffers() do bufs[#bufs + 1] = name end
    assert.are.same({ "count" }, bufs)
    assert.are.same({ 2, 1 }, net(T.ones({ 2, 2 })):shape())
    assert.are.equal(3, #net:children())
    assert.are.equal(4, #net:modules())
  end)

  it("lists a shared parameter once", function()
    local lin = nn.Linear(2, 2)
    local seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert.are.equal(2, #seq:parameters())
    assert.are.same({ "1.weight", "1.bias" }, names_of(seq))
  end)

  it("switches training mode recursively", function()
    local m = nn.MLP({ 3, 4, 2 }, { batchnorm = true, dropout = 0.5 })
    for _, sub in ipairs(m:modules()) do assert.is_true(sub.training) end
    assert.are.equal(m, m:eval())
    for _, sub in ipairs(m:modules()) do assert.is_false(sub.training) end
    m:train()
    for _, sub in ipairs(m:modules()) do assert.is_true(sub.training) end
    m:train(false)
    assert.is_false(m[2].training)
  end)

  it("zero_grad drops the gradients", function()
    local m = nn.Linear(2, 1)
    m(T.ones({ 3, 2 })):sum():backward()
    assert.is_not_nil(m.weight:grad())
    m:zero_grad()
    assert.is_nil(m.weight:grad())
    assert.is_nil(m.bias:grad())
  end)

  it("prints like PyTorch", function()
    local seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Dropout(0.1)))
    assert.are.equal(table.concat({
      "Sequential(",
      "  (1): Linear(in_features=2, out_features=3, bias=true)",
      "  (2): ReLU()",
      "  (3): Sequential(",
      "    (1): Dropout(p=0.1)",
      "  )",
      ")" }, "\n"), tostring(seq))
    assert.are.equal("Softplus(beta=1, threshold=20)", tostring(nn.Softplus()))
    assert.are.equal("BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=true, track_running_stats=true)",
      tostring(nn.BatchNorm1d(4)))
  end)

  it("rejects unknown options and bad sizes", function()
    assert.has_error(function() nn.Linear(2, 3, { biass = false }) end)
    assert.has_error(function() nn.Linear(0, 3) end)
    assert.has_error(function() nn.MLP({ 3 }) end)
    assert.has_error(function() nn.MLP({ 3, 2 }, { activation = "nope" }) end)
    assert.has_error(function() nn.Sequential(nn.ReLU(), 3) end)
    assert.has_error(function() nn.Dropout(1.5) end)
    assert.has_error(function() nn.ReLU()(T.ones({ 1 })):backward() end)
  end)

  it("converts parameters and buffers with to()", function()
    local m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)):to("f64")
    for _, p in ipairs(m:parameters()) do
      assert.are.equal("f64", p:dtype())
      assert.is_true(p:needs_grad())
    end
    assert.are.equal("f64", m[2].running_var:dtype())
    assert.are.equal("i64", m[2].num_batches_tracked:dtype())
  end)
end)

describe("nn.Linear", function()
  it("has PyTorch's shapes and initialisation bounds", function()
    local m = nn.Linear(100, 30, { gen = T.generator(1) })
    assert.are.same({ 30, 100 }, m.weight:shape())
    assert.are.same({ 30 }, m.bias:shape())
    local bound = 1 / math.sqrt(100)
    local wmax, wmin = m.weight:max():item(), m.weight:min():item()
    assert.is_true(wmax <= bound and wmin >= -bound)
    assert.is_true(wmax > 0.9 * bound and wmin < -0.9 * bound) -- spread over the range
    assert.is_true(math.abs(m.weight:mean():item()) < 0.01)
    -- U(-b, b) has variance b^2/3
    approx(m.weight:var():item(), bound * bound / 3, 0.1)
    assert.is_true(m.bias:abs():max():item() <= bound)
    assert.are.same({ 7, 30 }, m(T.ones({ 7, 100 })):shape())
    assert.are.same({ 30 }, m(T.ones({ 100 })):shape())
  end)

  it("is deterministic for a seed", function()
    local a = nn.Linear(5, 4, { gen = T.generator(42) })
    local b = nn.Linear(5, 4, { gen = T.generator(42) })
    local c = nn.Linear(5, 4, { gen = T.generator(43) })
    assert.are.same(a.weight:totable(), b.weight:totable())
    assert.are.same(a.bias:totable(), b.bias:totable())
    assert.are_not.same(a.weight:totable(), c.weight:totable())
    local d = nn.Linear(5, 4, { gen = T.generator(42), dtype = "f64" })
    local e = nn.Linear(5, 4, { gen = T.generator(42), dtype = "f64" })
    assert.are.equal("f64", d.weight:dtype())
    assert.are.same(d.weight:totable(), e.weight:totable())
    assert.is_true(d.weight:abs():max():item() <= 1 / math.sqrt(5))
  end)

  it("computes x W^T + b", function()
    local m = nn.Linear(3, 2, { dtype = "f64" })
    local W = { { 1, -2, 0.5 }, { 0.25, 3, -1 } }
    local b = { 0.1, -0.3 }
    m:load_state_dict({ weight = f64(W), bias = f64(b) })
    local X = { { 1, 2, 3 }, { -1, 0.5, 2 } }
    local want = {}
    for i = 1, 2 do
      want[i] = {}
      for j = 1, 2 do
        local s = b[j]
        for k = 1, 3 do s = s + X[i][k] * W[j][k] end
        want[i][j] = s
      end
    end
    approx(m(f64(X)), want, 1e-12, 1e-12)
    local nb = nn.Linear(3, 2, { bias = false })
    assert.is_nil(nb.bias)
    assert.are.same({ "weight" }, names_of(nb))
  end)

  it("has gradients that match finite differences", function()
    local m = nn.Linear(3, 2, { dtype = "f64" })
    local x = f64(lcg_table(4, 3, 5, -1, 1)):requires_grad()
    local w = f64(lcg_table(2, 3, 6, -1, 1)):requires_grad()
    local b = f64({ 0.2, -0.1 }):requires_grad()
    assert(gradcheck(function(xx, ww, bb)
      rawset(m, "weight", ww); rawset(m, "bias", bb)
      return m(xx):tanh()
    end, { x, w, b }))
  end)
end)

describe("F.linear (T.linear: one GEMM onto the bias)", function()
  local function ref(x, w, b)
    local y = x:matmul(w:t())
    if b then y = y + b end
    return y
  end

  it("equals x:matmul(w:t()) + b for 1-d, 2-d, 3-d and strided inputs, f32 and f64", function()
    local gen = T.generator(7)
    for _, dt in ipairs { "f32", "f64" } do
      local w = T.randn({ 5, 4 }, { gen = gen, dtype = dt })
      local b = T.randn({ 5 }, { gen = gen, dtype = dt })
      local tol = dt == "f32" and 1e-5 or 1e-12
      for _, x in ipairs { T.randn({ 4 }, { gen = gen, dtype = dt }),
        T.randn({ 3, 4 }, { gen = gen, dtype = dt }), T.randn({ 2, 3, 4 }, { gen = gen, dtype = dt }),
        T.randn({ 4, 3 }, { gen = gen, dtype = dt }):t(), T.randn({ 2, 4, 3 }, { gen = gen, dtype = dt }):transpose(2, 3),
        T.zeros({ 0, 4 }, { dtype = dt }) } do
        for _, bias in ipairs { b, false } do
          local got = F.linear(x, w, bias or nil)
          local want = ref(x, w, bias or nil)
          assert.are.same(want:shape(), got:shape())
          assert.is_true(got:numel() == 0 or (got - want):abs():max():item() < tol)
        end
        -- a strided weight (a view) and bias
        local w2 = T.randn({ 4, 5 }, { gen = gen, dtype = dt }):t()
        local b2 = T.randn({ 5, 2 }, { gen = gen, dtype = dt }):select(2, 1)
        local got = T.linear(x, w2, b2)
        assert.is_true(got:numel() == 0 or (got - ref(x, w2, b2)):abs():max():item() < tol)
      end
    end
  end)

  it("falls back to the composed form for mixed dtypes; T.linear names bad arguments", function()
    local x64 = T.ones({ 2, 3 }, { dtype = "f64" })
    local w32, b32 = T.ones(4, 3), T.ones(4)
    assert.are.equal("f64", F.linear(x64, w32, b32):dtype())
    assert.are.same({ { 4, 4, 4, 4 }, { 4, 4, 4, 4 } }, F.linear(x64, w32, b32):totable())
    assert.has_error(function() T.linear(x64, w32) end,
      "linear: input (f64), weight (f32) must be all f32 or all f64")
    assert.has_error(function() T.linear(T.ones(2, 5), w32) end)
    local ok, err = pcall(T.linear, T.ones(2, 3), w32, T.ones(3))
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("bias must have shape {4}, got {3}", 1, true), err)
    ok, err = pcall(T.linear, T.ones(2, 3), T.ones(3))
    assert.is_truthy(tostring(err):find("weight must be 2-d", 1, true), err)
    ok, err = pcall(T.linear, T.ones(2, 3, { dtype = "i64" }), T.ones(4, 3, { dtype = "i64" }))
    assert.is_false(ok)
  end)

  it("gives the same values on 1 and 2 threads up to rounding (the GEMM split over the pool)", function()
    local n0 = velua.get_num_threads and velua.get_num_threads() or 1
    local gen = T.generator(11)
    local x, w, b = T.randn({ 300, 200 }, { gen = gen }), T.randn({ 150, 200 }, { gen = gen }), T.randn({ 150 }, { gen = gen })
    velua.set_num_threads(1)
    local y1, p1 = T.linear(x, w, b), x:matmul(w:t())
    local q1 = w:matmul(x:t())
    velua.set_num_threads(2)
    local y2, p2 = T.linear(x, w, b), x:matmul(w:t())
    local q2 = w:matmul(x:t())
    velua.set_num_threads(n0)
    -- entries are sums of 200 products of N(0, 1) values: |y| ~ 14
    assert.is_true((y1 - y2):abs():max():item() < 1e-3)
    assert.is_true((p1 - p2):abs():max():item() < 1e-3)
    assert.is_true((q1 - q2):abs():max():item() < 1e-3)
    assert.is_true((y1 - p1 - b):abs():max():item() < 1e-3)
  end)
end)

describe("nn activations", function()
  it("ReLU, Softplus (beta, threshold), Tanh, Sigmoid, Identity", function()
    local x = f64({ -2, -0.5, 0, 1, 30 })
    approx(nn.ReLU()(x), { 0, 0, 0, 1, 30 })
    local sp = nn.Softplus({ beta = 2, threshold = 5 })(x):totable()
    for i, v in ipairs({ -2, -0.5, 0, 1 }) do
      approx(sp[i], math.log(1 + math.exp(2 * v)) / 2, 1e-12)
    end
    approx(sp[5], 30) -- beyond the threshold: linear
    approx(nn.Softplus()(x):totable()[4], math.log(1 + math.exp(1)), 1e-12)
    approx(nn.Tanh()(x):totable()[4], math.tanh(1), 1e-12)
    approx(nn.Sigmoid()(x):totable()[4], 1 / (1 + math.exp(-1)), 1e-12)
    approx(nn.Identity()(x), x)
    local xs = f64({ -1.3, -0.2, 0.4, 1.7, 2.2 }):requires_grad()
    assert(gradcheck(function(v) return F.softplus(v, { beta = 1.5, threshold = 2 }) end, { xs }))
  end)
end)

describe("nn.Dropout", function()
  it("drops with probability p and rescales in training; is the identity in eval", function()
    local d = nn.Dropout(0.25, { gen = T.generator(7) })
    local x = T.ones({ 200, 100 })
    local y = d(x)
    local vals = y:totable()
    local zeros, n = 0, 0
    for _, row in ipairs(vals) do
      for _, v in ipairs(row) do
        n = n + 1
        if v == 0 then zeros = zeros + 1 else approx(v, 1 / 0.75) end
      end
    end
    -- 20000 Bernoulli(0.25) draws: sd of the fraction is 0.003
    assert.is_true(math.abs(zeros / n - 0.25) < 0.015, "dropped fraction " .. zeros / n)
    d:eval()
    assert.are.equal(x, d(x))
    d:train()
    assert.are.equal(x, nn.Dropout(0)(x))
    approx(nn.Dropout(1)(x):sum():item(), 0)
    -- the same generator seed drops the same elements
    local a = nn.Dropout(0.5, { gen = T.generator(3) })(T.ones({ 50 }))
    local b = nn.Dropout(0.5, { gen = T.generator(3) })(T.ones({ 50 }))
    assert.are.same(a:totable(), b:totable())
  end)

  it("passes gradients through the kept elements", function()
    local x = T.ones({ 10, 10 }):requires_grad()
    local y = nn.Dropout(0.5, { gen = T.generator(1) })(x)
    y:sum():backward()
    approx(x:grad(), T.no_grad(function() return y:detach() end))
  end)
end)

describe("nn.BatchNorm1d", function()
  -- the batch statistics by hand: mean, biased and unbiased variance of each column
  local function stats(X)
    local n, c = #X, #X[1]
    local mean, vb, vu = {}, {}, {}
    for j = 1, c do
      local s = 0
      for i = 1, n do s = s + X[i][j] end
      mean[j] = s / n
      local ss = 0
      for i = 1, n do ss = ss + (X[i][j] - mean[j]) ^ 2 end
      vb[j], vu[j] = ss / n, ss / (n - 1)
    end
    return mean, vb, vu
  end

  it("normalises with batch statistics and tracks running statistics", function()
    local eps, mom = 1e-5, 0.1
    local bn = nn.BatchNorm1d(2, { dtype = "f64" })
    local gamma, beta = { 1.5, -0.5 }, { 0.2, 0.3 }
    T.no_grad(function()
      bn.weight:copy_(f64(gamma))
      bn.bias:copy_(f64(beta))
    end)
    local X1 = { { 1, 2 }, { 3, -1 }, { 0.5, 4 }, { -2, 0 } }
    local X2 = { { 0, 1 }, { 2, 2 }, { 4, -3 } }
    local rm, rv = { 0, 0 }, { 1, 1 }
    for _, X in ipairs({ X1, X2 }) do
      local y = bn(f64(X)):totable()
      local mean, vb, vu = stats(X)
      for i = 1, #X do
        for j = 1, 2 do
          approx(y[i][j], (X[i][j] - mean[j]) / math.sqrt(vb[j] + eps) * gamma[j] + beta[j], 1e-12)
        end
      end
      for j = 1, 2 do
        rm[j] = (1 - mom) * rm[j] + mom * mean[j]
        rv[j] = (1 - mom) * rv[j] + mom * vu[j]
      end
    end
    approx(bn.running_mean, rm, 1e-12)
    approx(bn.running_var, rv, 1e-12)
    assert.are.equal(2, bn.num_batches_tracked:item())

    bn:eval()
    local X = { { 1, 1 }, { -1, 2 } }
    local y = bn(f64(X)):totable()
    for i = 1, 2 do
      for j = 1, 2 do
        approx(y[i][j], (X[i][j] - rm[j]) / math.sqrt(rv[j] + eps) * gamma[j] + beta[j], 1e-12)
      end
    end
    approx(bn.running_mean, rm, 1e-12) -- eval leaves the statistics alone
    assert.are.equal(2, bn.num_batches_tracked:item())
    assert.are.same({ 1, 2 }, bn(f64({ { 1, 1 } })):shape()) -- a batch of one is fine in eval
  end)

  it("rejects a batch of one in training and a wrong width", function()
    local bn = nn.BatchNorm1d(3)
    assert.has_error(function() bn(T.ones({ 1, 3 })) end)
    assert.has_error(function() bn(T.ones({ 4, 2 })) end)
  end)

  it("has gradients that match finite differences (training mode)", function()
    local bn = nn.BatchNorm1d(3, { dtype = "f64" })
    local x = f64(lcg_table(5, 3, 11, -2, 2)):requires_grad()
    local w = f64({ 1.2, -0.7, 0.4 }):requires_grad()
    local b = f64({ 0.1, 0.2, -0.3 }):requires_grad()
    assert(gradcheck(function(xx, ww, bb)
      rawset(bn, "weight", ww); rawset(bn, "bias", bb)
      return bn(xx):tanh()
    end, { x, w, b }))
  end)
end)

describe("state_dict", function()
  it("round-trips parameters and buffers", function()
    local a = nn.MLP({ 3, 5, 2 }, { batchnorm = true, gen = T.generator(1) })
    local b = nn.MLP({ 3, 5, 2 }, { batchnorm = true, gen = T.generator(2) })
    a(T.randn({ 8, 3 }, { gen = T.generator(9) })) -- moves a's running statistics
    local sd = a:state_dict()
    local keys = {}
    for k in pairs(sd) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.are.same({ "1.bias", "1.weight", "2.bias", "2.num_batches_tracked", "2.running_mean",
      "2.running_var", "2.weight", "4.bias", "4.weight" }, keys)
    local w_before = b[1].weight
    b:load_state_dict(sd)
    assert.are.equal(w_before, b[1].weight) -- copied in place
    for k, v in pairs(b:state_dict()) do assert.are.same(sd[k]:totable(), v:totable(), k) end
    a:eval(); b:eval()
    local x = T.randn({ 4, 3 }, { gen = T.generator(5) })
    approx(b(x), a(x), 0, 0)
    assert.is_true(b[1].weight:needs_grad())
    assert.is_true(b[1].weight:is_leaf())
  end)

  it("names missing and unexpected keys, wrong shapes and dtypes, and writes nothing then", function()
    local m = nn.Linear(3, 2)
    local good = m:state_dict()
    local w0 = m.weight:totable()
    local function err(sd)
      local ok, e = pcall(m.load_state_dict, m, sd)
      assert.is_false(ok)
      return tostring(e)
    end
    local e = err({ weight = good.weight })
    assert.is_truthy(e:find("missing keys: bias", 1, true), e)
    e = err({ weight = good.weight, bias = good.bias, extra = T.ones({ 1 }) })
    assert.is_truthy(e:find("unexpected keys: extra", 1, true), e)
    e = err({ weight = T.zeros({ 2, 3 }), bias = T.zeros({ 3 }) })
    assert.is_truthy(e:find("'bias' has shape {3}", 1, true), e)
    e = err({ weight = T.zeros({ 2, 3 }, { dtype = "f64" }), bias = T.zeros({ 2 }) })
    assert.is_truthy(e:find("'weight' has dtype f64", 1, true), e)
    assert.are.same(w0, m.weight:totable()) -- nothing was written
    local r = m:load_state_dict({ weight = T.zeros({ 2, 3 }), other = T.ones({ 1 }) }, { strict = false })
    assert.are.same({ "bias" }, r.missing)
    assert.are.same({ "other" }, r.unexpected)
    approx(m.weight:abs():sum():item(), 0)
  end)
end)

describe("nn.MLP", function()
  it("builds Linear -> [BatchNorm] -> activation -> [Dropout] per hidden layer", function()
    local function kinds(m)
      local out = {}
      for i, c in ipairs(m:children()) do out[i] = class_name(c) end
      return out
    end
    assert.are.same({ "Linear", "ReLU", "Linear", "ReLU", "Linear" }, kinds(nn.MLP({ 4, 8, 8, 2 })))
    assert.are.same({ "Linear", "BatchNorm1d", "Softplus", "Dropout", "Linear", "Tanh" },
      kinds(nn.MLP({ 4, 8, 2 }, { batchnorm = true, dropout = 0.2, activation = "softplus",
        final_activation = "tanh" })))
    assert.are.same({ "Linear", "ReLU", "Linear", "ReLU" },
      kinds(nn.MLP({ 4, 8, 2 }, { final_activation = true })))
    assert.are.same({ "Linear" }, kinds(nn.MLP({ 4, 2 })))
    local m = nn.MLP({ 4, 8, 2 }, { activation = function() return nn.Tanh() end })
    assert.are.equal("Tanh", class_name(m[2]))
    assert.are.equal(8, m[1].out_features)
    assert.are.equal(8, m[3].in_features)
    assert.are.same({ 6, 2 }, m(T.ones({ 6, 4 })):shape())
    local a = nn.MLP({ 4, 8, 2 }, { gen = T.generator(4) })
    local b = nn.MLP({ 4, 8, 2 }, { gen = T.generator(4) })
    assert.are.same(a[3].weight:totable(), b[3].weight:totable())
  end)
end)

describe("nn.GraphConv", function()
  -- weighted symmetric adjacency with self loops, 4 nodes
  local A = {
    { 1, 2, 0, 0 },
    { 2, 1, 0.5, 0 },
    { 0, 0.5, 1, 1 },
    { 0, 0, 1, 1 },
  }
  local function csr(dense)
    local indptr, indices, values = { 0 }, {}, {}
    for i = 1, #dense do
      for j = 1, #dense[i] do
        if dense[i][j] ~= 0 then
          indices[#indices + 1] = j - 1
          values[#values + 1] = dense[i][j]
        end
      end
      indptr[#indptr + 1] = #indices
    end
    return T.sparse_csr(indptr, indices, values, { #dense, #dense[1] })
  end
  local function dense_norm(norm)
    local n = #A
    local d = {}
    for i = 1, n do
      d[i] = 0
      for j = 1, n do d[i] = d[i] + A[i][j] end
    end
    local out = {}
    for i = 1, n do
      out[i] = {}
      for j = 1, n do
        if norm == "both" then out[i][j] = A[i][j] / math.sqrt(d[i] * d[j])
        elseif norm == "right" then out[i][j] = A[i][j] / d[i]
        else out[i][j] = A[i][j] end
      end
    end
    return out
  end

  it("normalises the adjacency once per object", function()
    local adj = csr(A)
    local an = nn.GraphConv.normalize_adjacency(adj)
    approx(an:to_dense(), dense_norm("both"), 1e-6)
    assert.are.equal(an, nn.GraphConv.normalize_adjacency(adj))
    approx(nn.GraphConv.normalize_adjacency(adj, { norm = "right" }):to_dense(), dense_norm("right"), 1e-6)
    local a64 = nn.GraphConv.normalize_adjacency(adj, { dtype = "f64" })
    assert.are.equal("f64", a64:dtype())
    assert.has_error(function() nn.GraphConv.normalize_adjacency(T.ones({ 2, 2 })) end)
  end)

  it("computes N(A) (h W) + b like the dense formula", function()
    local adj = csr(A)
    local H = lcg_table(4, 3, 17, -1, 1)
    for _, case in ipairs({ { 3, 2, "both", nil }, { 3, 5, "right", "relu" }, { 3, 2, "none", nil } }) do
      local i, o, norm, act = case[1], case[2], case[3], case[4]
      local conv = nn.GraphConv(i, o, { norm = norm, activation = act, gen = T.generator(2), dtype = "f64" })
      assert.are.same({ i, o }, conv.weight:shape())
      local bound = math.sqrt(6 / (i + o))
      assert.is_true(conv.weight:abs():max():item() <= bound)
      T.no_grad(function() conv.bias:copy_(T.linspace(-0.5, 0.5, o, { dtype = "f64" })) end)
      local W, b = conv.weight:totable(), conv.bias:totable()
      local N = dense_norm(norm)
      local want = {}
      for r = 1, 4 do
        want[r] = {}
        for c = 1, o do
          local s = b[c]
          for k = 1, 4 do
            local hw = 0
            for q = 1, i do hw = hw + H[k][q] * W[q][c] end
            s = s + N[r][k] * hw
          end
          want[r][c] = act == "relu" and math.max(s, 0) or s
        end
      end
      approx(conv(adj, f64(H)), want, 1e-10, 1e-12)
    end
  end)

  it("rejects inputs of the wrong shape", function()
    local conv = nn.GraphConv(3, 2)
    assert.has_error(function() conv(csr(A), T.ones({ 4, 2 })) end)
    assert.has_error(function() conv(csr(A), T.ones({ 5, 3 })) end)
    assert.has_error(function() conv(T.ones({ 4, 4 }), T.ones({ 4, 3 })) end)
  end)

  it("has gradients that match finite differences", function()
    local adj = csr(A)
    local probe = T.ones({ 4, 1 }, { dtype = "f64" }):requires_grad()
    if not adj:to("f64"):matmul(probe):needs_grad() then
      pending("sparse matmul is not differentiable yet (velua.sparse)")
      return
    end
    for _, dims in ipairs({ { 3, 2 }, { 2, 3 } }) do
      local conv = nn.GraphConv(dims[1], dims[2], { dtype = "f64", activation = "tanh" })
      local hx = f64(lcg_table(4, dims[1], 23, -1, 1)):requires_grad()
      local w = conv.weight:detach():clone():requires_grad()
      local b = f64(lcg_table(1, dims[2], 5, -1, 1)[1]):requires_grad()
      assert(gradcheck(function(hh, ww, bb)
        rawset(conv, "weight", ww); rawset(conv, "bias", bb)
        return conv(adj, hh)
      end, { hx, w, b }))
    end
  end)
end)

describe("losses", function()
  local P = { { 1, 2 }, { -1, 0.5 } }
  local Y = { { 0.5, 2.5 }, { 0, 0 } }

  it("mse with each reduction", function()
    local sq = { { 0.25, 0.25 }, { 1, 0.25 } }
    approx(F.mse(f64(P), f64(Y)):item(), 1.75 / 4, 1e-12)
    approx(F.mse(f64(P), f64(Y), { reduction = "sum" }):item(), 1.75, 1e-12)
    approx(F.mse(f64(P), f64(Y), { reduction = "none" }), sq, 1e-12)
    assert.has_error(function() F.mse(f64(P), f64(Y), { reduction = "max" }) end)
    assert.has_error(function() F.mse(f64(P), f64(Y), { reductio = "sum" }) end)
  end)

  it("gaussian_nll as PyTorch's GaussianNLLLoss", function()
    local V = { { 0.5, 2 }, { 1e-9, 1 } } -- 1e-9 is clamped to eps = 1e-6
    local function want(full, eps)
      local s = 0
      for i = 1, 2 do
        for j = 1, 2 do
          local v = math.max(V[i][j], eps)
          s = s + 0.5 * (math.log(v) + (P[i][j] - Y[i][j]) ^ 2 / v)
          if full then s = s + 0.5 * math.log(2 * math.pi) end
        end
      end
      return s
    end
    approx(F.gaussian_nll(f64(P), f64(Y), f64(V)):item(), want(false, 1e-6) / 4, 1e-10)
    approx(F.gaussian_nll(f64(P), f64(Y), f64(V), { full = true, reduction = "sum" }):item(),
      want(true, 1e-6), 1e-10)
    approx(F.gaussian_nll(f64(P), f64(Y), f64(V), { eps = 0.1, reduction = "sum" }):item(),
      want(false, 0.1), 1e-10)
    -- one variance per row: var [2] (input's shape without the last dim) or [2, 1]
    local r1 = F.gaussian_nll(f64(P), f64(Y), f64({ 0.5, 2 }), { reduction = "none" })
    local r2 = F.gaussian_nll(f64(P), f64(Y), f64({ { 0.5 }, { 2 } }), { reduction = "none" })
    approx(r1, r2, 1e-12)
    approx(r1:totable()[2][1], 0.5 * (math.log(2) + 1 / 2), 1e-12)
    approx(F.gaussian_nll(f64(P), f64(Y), 2):item(),
      F.gaussian_nll(f64(P), f64(Y), T.full({ 2, 2 }, 2, { dtype = "f64" })):item(), 1e-12)
    assert.has_error(function() F.gaussian_nll(f64(P), f64(Y), f64({ 1, 2, 3 })) end)
    assert.has_error(function() F.gaussian_nll(f64(P), f64(Y), f64({ { -1, 1 }, { 1, 1 } })) end)
  end)

  it("cross_entropy and binary_cross_entropy_with_logits", function()
    local logits = { { 1, 2, 0.5 }, { -1, 0, 3 } }
    local target = { 2, 3 }
    local s = 0
    for i = 1, 2 do
      local z = 0
      for _, v in ipairs(logits[i]) do z = z + math.exp(v) end
      s = s + (math.log(z) - logits[i][target[i]])
    end
    approx(F.cross_entropy(f64(logits), target):item(), s / 2, 1e-12)
    approx(F.cross_entropy(f64(logits), T.tensor(target, { dtype = "i64" }), { reduction = "sum" }):item(),
      s, 1e-12)
    local x, t = { 0.3, -2, 40 }, { 1, 0, 0.25 }
    local want = 0
    for i = 1, 3 do
      local p = 1 / (1 + math.exp(-x[i]))
      local lq = i == 3 and -40 or math.log(1 - p) -- log(1 - sigmoid(40)) without cancellation
      want = want - (t[i] * math.log(p) + (1 - t[i]) * lq)
    end
    approx(F.binary_cross_entropy_with_logits(f64(x), f64(t), { reduction = "sum" }):item(), want, 1e-10)
    local wp = 0
    for i = 1, 3 do
      local p = 1 / (1 + math.exp(-x[i]))
      local lq = i == 3 and -40 or math.log(1 - p)
      wp = wp - (3 * t[i] * math.log(p) + (1 - t[i]) * lq)
    end
    approx(F.binary_cross_entropy_with_logits(f64(x), f64(t), { reduction = "sum", pos_weight = 3 }):item(),
      wp, 1e-10)
  end)

  it("info_nce against a hand computation", function()
    local z1 = { { 2, 0 }, { 0.6, 0.8 } }    -- first row not unit: normalised inside
    local z2 = { { 0.8, 0.6 }, { 0, 3 } }
    local n1 = { { 1, 0 }, { 0.6, 0.8 } }
    local n2 = { { 0.8, 0.6 }, { 0, 1 } }
    local tau = 0.3
    local function lsm(a, b, i, j)
      local row = {}
      for k = 1, #b do row[k] = (a[i][1] * b[k][1] + a[i][2] * b[k][2]) / tau end
      local z = 0
      for _, v in ipairs(row) do z = z + math.exp(v) end
      return row[j] - math.log(z)
    end
    local diag = -(lsm(n1, n2, 1, 1) + lsm(n1, n2, 2, 2)) / 2
    approx(F.info_nce(f64(z1), f64(z2)):item(), diag, 1e-10)
    local back = -(lsm(n2, n1, 1, 1) + lsm(n2, n1, 2, 2)) / 2
    approx(F.info_nce(f64(z1), f64(z2), { symmetric = true }):item(), (diag + back) / 2, 1e-10)
    -- without normalisation, raw dot products
    local raw = -(lsm(z1, z2, 1, 1) + lsm(z1, z2, 2, 2)) / 2
    approx(F.info_nce(f64(z1), f64(z2), { normalize = false }):item(), raw, 1e-10)
    -- positives mask over 3 columns: row 1 has positives {1, 3}, row 2 {2}, row 3 none
    local a = { { 1, 0 }, { 0, 1 }, { 0.6, 0.8 } }
    local b = { { 0.8, 0.6 }, { 0.6, -0.8 }, { 1, 0 } }
    local mask = T.tensor({ { true, false, true }, { false, true, false }, { false, false, false } })
    local r1 = -(lsm(a, b, 1, 1) + lsm(a, b, 1, 3)) / 2
    local r2 = -lsm(a, b, 2, 2)
    approx(F.info_nce(f64(a), f64(b), { positives = mask }):item(), (r1 + r2) / 2, 1e-10)
    approx(F.info_nce(f64(a), f64(b), { positives = mask, reduction = "none" }), { r1, r2, 0 }, 1e-10)
    approx(F.info_nce(f64(a), f64(b), { positives = mask, temperature = 1, reduction = "sum" }):item(),
      (function() tau = 1; local v = -(lsm(a, b, 1, 1) + lsm(a, b, 1, 3)) / 2 - lsm(a, b, 2, 2); tau = 0.3; return v end)(),
      1e-10)
    assert.has_error(function() F.info_nce(f64(a), f64(z2)) end)
    assert.has_error(function() F.info_nce(f64(a), f64(b), { positives = T.ones({ 2, 3 }) }) end)
  end)

  it("pearson along a dim, with a mask", function()
    local X = { { 1, 2 }, { 2, 1 }, { 3, 5 }, { 4, 3 } }
    local Yv = { { 2, 1 }, { 4, 1 }, { 5, 0 }, { 9, 2 } }
    local function corr(xs, ys)
      local n = #xs
      local mx, my = 0, 0
      for i = 1, n do mx, my = mx + xs[i], my + ys[i] end
      mx, my = mx / n, my / n
      local sxy, sxx, syy = 0, 0, 0
      for i = 1, n do
        sxy = sxy + (xs[i] - mx) * (ys[i] - my)
        sxx = sxx + (xs[i] - mx) ^ 2
        syy = syy + (ys[i] - my) ^ 2
      end
      return sxy / math.sqrt(sxx * syy)
    end
    local want = {}
    for j = 1, 2 do
      local xs, ys = {}, {}
      for i = 1, 4 do xs[i], ys[i] = X[i][j], Yv[i][j] end
      want[j] = corr(xs, ys)
    end
    approx(F.pearson(f64(X), f64(Yv)), want, 1e-12)
    approx(F.pearson(f64(X), f64(Yv), { dim = 1, keepdim = true }), { want }, 1e-12)
    -- along rows (dim 2) of the transpose gives the same
    approx(F.pearson(f64(X):t(), f64(Yv):t(), { dim = 2 }), want, 1e-12)
    -- mask: column 1 without row 2, column 2 without row 4
    local M = T.tensor({ { true, true }, { false, true }, { true, true }, { true, false } })
    local wm = { corr({ 1, 3, 4 }, { 2, 5, 9 }), corr({ 2, 1, 5 }, { 1, 1, 0 }) }
    approx(F.pearson(f64(X), f64(Yv), { mask = M }), wm, 1e-12)
    -- a constant column gives 0, not NaN
    approx(F.pearson(f64({ { 1 }, { 1 }, { 1 } }), f64({ { 1 }, { 2 }, { 3 } })), { 0 })
  end)

  it("have gradients that match finite differences", function()
    local A = lcg_table(4, 3, 1, -1, 1)
    local B = lcg_table(4, 3, 2, -1, 1)
    local V = lcg_table(4, 3, 3, 0.2, 2)
    local x, y = f64(A):requires_grad(), f64(B):requires_grad()
    assert(gradcheck(function(p, t) return F.mse(p, t) end, { x, y }))
    assert(gradcheck(function(p, t, v) return F.gaussian_nll(p, t, v, { full = true }) end,
      { x, y, f64(V):requires_grad() }))
    assert(gradcheck(function(p, t) return F.info_nce(p, t) end, { x, y }))
    assert(gradcheck(function(p, t) return F.info_nce(p, t, { symmetric = true, temperature = 0.5 }) end, { x, y }))
    local mask = T.tensor({ { true, false, true, false }, { false, true, false, false },
      { true, true, false, false }, { false, false, false, false } })
    assert(gradcheck(function(p, t) return F.info_nce(p, t, { positives = mask }) end, { x, y }))
    assert(gradcheck(function(p, t) return F.pearson(p, t) end, { x, y }))
    assert(gradcheck(function(p, t) return F.pearson(p, t, { dim = 2 }) end, { x, y }))
    local pm = T.tensor({ { true, true, false }, { true, false, true }, { false, true, true }, { true, true, true } })
    assert(gradcheck(function(p, t) return F.pearson(p, t, { mask = pm }) end, { x, y }))
    assert(gradcheck(function(p) return F.cross_entropy(p, { 1, 3, 2, 2 }) end, { x }))
    local tt = f64(lcg_table(4, 3, 9, 0, 1))
    assert(gradcheck(function(p) return F.binary_cross_entropy_with_logits(p, tt, { pos_weight = 2 }) end, { x }))
  end)
end)
