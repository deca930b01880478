-- Every tensor op against the naive Lua reference (tests/support/naive.lua) on random shapes:
-- broadcasting, non-contiguous views, empty and 0-d tensors, f32 and f64, i64 and bool.
local T = require("velua").tensor
local core = require "velua.core"
local N = require "support.naive"

local TOL = { f32 = { 2e-5, 1e-5 }, f64 = { 1e-12, 1e-12 } }

-- a tensor with the reference's values, optionally as a non-contiguous view
local function make(r, dtype, layout)
  if N.numel(r.shape) == 0 then return T.zeros(r.shape, { dtype = dtype }) end
  if layout == "transposed" and #r.shape == 2 then
    local t = T.tensor(N.nest(N.transpose2(r)), { dtype = dtype }):t()
    assert(not t:is_contiguous() or r.shape[1] <= 1 or r.shape[2] <= 1)
    return t
  elseif layout == "strided" and #r.shape >= 1 then
    -- every other element of a tensor twice as long in the last dim
    local shape = {}
    for i, s in ipairs(r.shape) do shape[i] = s end
    shape[#shape] = 2 * shape[#shape]
    local big = T.full(shape, -99, { dtype = dtype })
    local view = big:reshape(table.unpack(shape)) -- same storage
    local last = #shape
    local parts = view:view(table.unpack((function()
      local s = {}
      for i = 1, last - 1 do s[i] = shape[i] end
      s[last] = r.shape[last]; s[last + 1] = 2
      return s
    end)())):select(last + 1, 1)
    parts:copy_(T.tensor(N.nest(r), { dtype = dtype }))
    return parts
  end
  return T.tensor(N.nest(r), { dtype = dtype })
end

local shapes_pairs = {
  { {}, {} }, { { 5 }, {} }, { {}, { 4 } }, { { 3, 4 }, { 3, 4 } }, { { 3, 1, 4 }, { 2, 4 } },
  { { 2, 3, 1 }, { 1, 5 } }, { { 4, 1 }, { 4 } }, { { 0, 3 }, { 3 } }, { { 2, 0 }, { 2, 1 } },
  { { 2, 1, 3, 2 }, { 3, 1 } }, { { 6, 7 }, { 7 } },
}

local binary = {
  add = function(x, y) return x + y end, sub = function(x, y) return x - y end,
  mul = function(x, y) return x * y end, div = function(x, y) return x / y end,
  maximum = math.max, minimum = math.min,
  atan2 = function(x, y) return math.atan(x, y) end,
  fmod = function(x, y) return math.fmod(x, y) end,
}
local compare = {
  eq = function(x, y) return x == y end, ne = function(x, y) return x ~= y end,
  lt = function(x, y) return x < y end, le = function(x, y) return x <= y end,
  gt = function(x, y) return x > y end, ge = function(x, y) return x >= y end,
}

describe("elementwise binary ops with broadcasting", function()
  math.randomseed(101)
  for name, f in pairs(binary) do
    it(name, function()
      for _, dt in ipairs { "f32", "f64" } do
        for _, sp in ipairs(shapes_pairs) do
          for _, layout in ipairs { "contiguous", "transposed", "strided" } do
            local a, b = N.random(sp[1]), N.random(sp[2], name == "div" and "positive" or nil)
            local ta, tb = make(a, dt, layout), make(b, dt, layout)
            -- the reference sees the values as stored in dt
            a, b = N.from_tensor(ta), N.from_tensor(tb)
            local r = N.map2(a, b, f)
            N.assert_close(T[name](ta, tb), r, TOL[dt][1], TOL[dt][2],
              name .. " " .. dt .. " " .. layout .. " {" .. table.concat(sp[1], ",") .. "} {" .. table.concat(sp[2], ",") .. "}")
          end
        end
      end
    end)
  end

  it("pow with positive bases and operators + - * / ^ and unary -", function()
    local a = N.random({ 3, 4 }, "positive")
    local b = N.random({ 4 })
    local ta, tb = make(a, "f64"), make(b, "f64")
    N.assert_close(ta ^ tb, N.map2(a, b, function(x, y) return x ^ y end), 1e-12, 1e-12, "pow")
    N.assert_close(ta + tb, N.map2(a, b, function(x, y) return x + y end), 1e-12, 1e-12, "+")
    N.assert_close(ta - 2, N.map(a, function(x) return x - 2 end), 1e-12, 1e-12, "- scalar")
    N.assert_close(2 - ta, N.map(a, function(x) return 2 - x end), 1e-12, 1e-12, "scalar -")
    N.assert_close(3 * ta, N.map(a, function(x) return 3 * x end), 1e-12, 1e-12, "scalar *")
    N.assert_close(1 / ta, N.map(a, function(x) return 1 / x end), 1e-12, 1e-12, "scalar /")
    N.assert_close(ta ^ 2, N.map(a, function(x) return x * x end), 1e-12, 1e-12, "^ 2")
    N.assert_close(-ta, N.map(a, function(x) return -x end), 1e-12, 1e-12, "unary -")
  end)

  it("comparisons give bool tensors", function()
    for name, f in pairs(compare) do
      for _, sp in ipairs(shapes_pairs) do
        local a, b = N.random(sp[1], "int"), N.random(sp[2], "int")
        for _, dt in ipairs { "f32", "f64", "i64" } do
          local r = N.map2(a, b, f)
          local got = T[name](make(a, dt), make(b, dt))
          assert.are.equal("bool", got:dtype())
          N.assert_close(got, r, 0, 0, name .. " " .. dt)
        end
      end
    end
  end)

  it("integer arithmetic stays exact in i64", function()
    local a = N.random({ 4, 5 }, "int")
    local b = N.random({ 5 }, "int")
    for _, name in ipairs { "add", "sub", "mul", "maximum", "minimum" } do
      local got = T[name](make(a, "i64"), make(b, "i64"))
      assert.are.equal("i64", got:dtype())
      N.assert_close(got, N.map2(a, b, binary[name]), 0, 0, name)
    end
    local big = T.tensor({ math.maxinteger - 1 }, { dtype = "i64" })
    assert.are.equal(math.maxinteger, (big + 1):item())
  end)
end)

describe("dtype promotion", function()
  local f32, f64 = T.ones(2), T.ones(2, { dtype = "f64" })
  local i64, b = T.ones(2, { dtype = "i64" }), T.ones(2, { dtype = "bool" })
  local cases = {
    { f32 + f64, "f64" }, { i64 + f32, "f32" }, { i64 + 2.5, "f32" }, { f32 + 2, "f32" },
    { i64 + 2, "i64" }, { b + 1, "i64" }, { i64 / i64, "f32" }, { f64 * 2.5, "f64" },
    { f32:lt(f64), "bool" }, { b:sum(), "i64" }, { i64:exp(), "f32" }, { b:logical_and(b), "bool" },
    { T.where(b, i64, 2.5), "f32" }, { i64:mean(), "f32" },
  }
  for i, c in ipairs(cases) do
    it("case " .. i, function() assert.are.equal(c[2], c[1]:dtype()) end)
  end
end)

-- independent references for the special functions
local function lgamma_ref(x) -- Lanczos (g = 7, n = 9), reflection below 0.5
  if x < 0.5 then return math.log(math.pi / math.abs(math.sin(math.pi * x))) - lgamma_ref(1 - x) end
  local c = { 0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
    1.5056327351493116e-7 }
  x = x - 1
  local a = c[1]
  local t = x + 7.5
  for i = 1, 8 do a = a + c[i + 1] / (x + i) end
  return 0.5 * math.log(2 * math.pi) + (x + 0.5) * math.log(t) - t + math.log(a)
end
local function digamma_ref(x) local h = 1e-5; return (lgamma_ref(x + h) - lgamma_ref(x - h)) / (2 * h) end

local unary = {
  neg = { function(x) return -x end }, exp = { math.exp }, log = { math.log, "positive" },
  log1p = { function(x) return math.log(1 + x) end, "positive" },
  expm1 = { function(x) return math.exp(x) - 1 end }, sqrt = { math.sqrt, "positive" },
  abs = { math.abs }, sign = { function(x) return x > 0 and 1 or (x < 0 and -1 or 0) end },
  relu = { function(x) return math.max(x, 0) end },
  sigmoid = { function(x) return 1 / (1 + math.exp(-x)) end }, tanh = { math.tanh or function(x)
    return (math.exp(x) - math.exp(-x)) / (math.exp(x) + math.exp(-x)) end },
  softplus = { function(x) return math.log(1 + math.exp(x)) end },
  lgamma = { lgamma_ref, "positive", 1e-9 }, digamma = { digamma_ref, "positive", 1e-6 },
  sin = { math.sin }, cos = { math.cos }, floor = { math.floor }, ceil = { math.ceil },
  reciprocal = { function(x) return 1 / x end, "positive" }, square = { function(x) return x * x end },
}

describe("elementwise unary ops", function()
  math.randomseed(202)
  for name, spec in pairs(unary) do
    it(name, function()
      for _, dt in ipairs { "f32", "f64" } do
        for _, shape in ipairs { {}, { 7 }, { 3, 4 }, { 2, 3, 2 }, { 0, 2 } } do
          for _, layout in ipairs { "contiguous", "transposed", "strided" } do
            local a = N.random(shape, spec[2])
            local ta = make(a, dt, layout)
            a = N.from_tensor(ta)
            local tol = dt == "f32" and 2e-6 or (spec[3] or 1e-12)
            N.assert_close(T[name](ta), N.map(a, spec[1]), tol, tol, name .. " " .. dt .. " " .. layout)
          end
        end
      end
    end)
  end

  it("clamp with one or both bounds", function()
    local a = N.random({ 4, 5 })
    local ta = make(a, "f64", "transposed")
    a = N.from_tensor(ta)
    N.assert_close(ta:clamp(-0.5, 0.5), N.map(a, function(x) return math.min(math.max(x, -0.5), 0.5) end), 0, 0, "both")
    N.assert_close(ta:clamp(0), N.map(a, function(x) return math.max(x, 0) end), 0, 0, "lo")
    N.assert_close(ta:clamp(nil, 0.1), N.map(a, function(x) return math.min(x, 0.1) end), 0, 0, "hi")
  end)

  it("where with broadcasting and scalars", function()
    local c = N.random({ 3, 1 }, "bool")
    local a, b = N.random({ 4 }), N.random({ 2, 3, 4 })
    local r = N.map2(N.map2(c, a, function(x, y) return { x, y } end), b, function(xy, z)
      return xy[1] and xy[2] or z end)
    N.assert_close(T.where(make(c, "bool"), make(a, "f64"), make(b, "f64")), r, 0, 0, "where")
    local got = T.where(make(c, "bool"), 1.5, -1)
    N.assert_close(got, N.map(c, function(x) return x and 1.5 or -1 end), 0, 0, "scalars")
    -- contiguous runs (the vectorised paths): same-shape operands, and a scalar y
    for _, dt in ipairs { "f32", "f64", "i64" } do
      local cc, x, y = N.random({ 5, 7 }, "bool"), N.random({ 5, 7 }, "int"), N.random({ 5, 7 }, "int")
      local tc, tx, ty = make(cc, "bool"), make(x, dt), make(y, dt)
      N.assert_close(T.where(tc, tx, ty), N.map2(N.map2(cc, x, function(u, v) return { u, v } end), y,
        function(uv, w) return uv[1] and uv[2] or w end), 0, 0, "contiguous " .. dt)
      N.assert_close(T.where(tc, tx, 0), N.map2(cc, x, function(u, v) return u and v or 0 end), 0, 0,
        "scalar y " .. dt)
    end
  end)
end)

describe("reductions", function()
  math.randomseed(303)
  local shapes = { { 5 }, { 3, 4 }, { 2, 3, 4 }, { 1, 6 }, { 4, 1, 2 } }
  local sum = function(acc, x) return acc + x end
  local function check(name, dt, t, a, dim, keepdim, r, tol)
    N.assert_close(t, r, tol or TOL[dt][1], tol or TOL[dt][2],
      string.format("%s %s dim=%s keepdim=%s", name, dt, tostring(dim), tostring(keepdim)))
  end
  it("sum, prod, mean, var, std, norm, logsumexp along every dim and over all", function()
    for _, dt in ipairs { "f32", "f64" } do
      for _, shape in ipairs(shapes) do
        local a = N.random(shape)
        local ta = make(a, dt, "transposed")
        a = N.from_tensor(ta)
        local dims = { false }
        for d = 1, #shape do dims[#dims + 1] = d end
        for _, d in ipairs(dims) do
          local dim = d or nil
          for _, keep in ipairs { false, true } do
            check("sum", dt, ta:sum(dim, keep), a, dim, keep, N.reduce(a, dim, keep, 0, sum))
            check("prod", dt, ta:prod(dim, keep), a, dim, keep,
              N.reduce(a, dim, keep, 1, function(p, x) return p * x end))
            check("mean", dt, ta:mean(dim, keep), a, dim, keep,
              N.reduce(a, dim, keep, 0, sum, function(s, n) return s / n end))
            local mean = N.reduce(a, dim, true, 0, sum, function(s, n) return s / n end)
            local dev = N.map2(a, mean, function(x, m) return (x - m) ^ 2 end)
            local n = dim and shape[dim] or N.numel(shape)
            if n > 1 then
              check("var", dt, ta:var(dim, keep), a, dim, keep,
                N.reduce(dev, dim, keep, 0, sum, function(s) return s / (n - 1) end), dt == "f32" and 1e-4 or 1e-10)
              check("std", dt, ta:std(dim, keep), a, dim, keep,
                N.reduce(dev, dim, keep, 0, sum, function(s) return math.sqrt(s / (n - 1)) end), dt == "f32" and 1e-4 or 1e-10)
            end
            for _, p in ipairs { 1, 2, 3, math.huge } do
              local r = N.reduce(a, dim, keep, 0, function(acc, x)
                if p == math.huge then return math.max(acc, math.abs(x)) end
                return acc + math.abs(x) ^ p
              end, function(s) return p == math.huge and s or s ^ (1 / p) end)
              check("norm" .. p, dt, ta:norm(p, dim, keep), a, dim, keep, r, dt == "f32" and 1e-5 or 1e-10)
            end
            check("logsumexp", dt, ta:logsumexp(dim, keep), a, dim, keep,
              N.reduce(a, dim, keep, 0, function(acc, x) return acc + math.exp(x) end,
                function(s) return math.log(s) end),
              dt == "f32" and 1e-5 or 1e-10)
          end
        end
      end
    end
  end)

  it("max/min return values and 1-based first indices; argmax/argmin", function()
    for _, dt in ipairs { "f32", "f64", "i64" } do
      for _, shape in ipairs(shapes) do
        local a = N.random(shape, "int") -- ties are likely: first index must win
        local ta = make(a, dt)
        for d = 1, #shape do
          for _, keep in ipairs { false, true } do
            local v, i = ta:max(d, keep)
            local rv = N.reduce(a, d, keep, { -math.huge, 0 }, function(acc, x, k)
              if x > acc[1] then return { x, k } end
              return acc
            end)
            local vals, idx = { shape = rv.shape, v = {} }, { shape = rv.shape, v = {} }
            for k, p in ipairs(rv.v) do vals.v[k], idx.v[k] = p[1], p[2] end
            N.assert_close(v, vals, 0, 0, "max values")
            N.assert_close(i, idx, 0, 0, "max indices")
            N.assert_close(ta:argmax(d, keep), idx, 0, 0, "argmax")
            local mv, mi = ta:min(d, keep)
            local rm = N.reduce(a, d, keep, { math.huge, 0 }, function(acc, x, k)
              if x < acc[1] then return { x, k } end
              return acc
            end)
            for k, p in ipairs(rm.v) do vals.v[k], idx.v[k] = p[1], p[2] end
            N.assert_close(mv, vals, 0, 0, "min values")
            N.assert_close(mi, idx, 0, 0, "min indices")
          end
        end
        local flat_max, at_ = -math.huge, 0
        for k, x in ipairs(a.v) do if x > flat_max then flat_max, at_ = x, k end end
        assert.are.equal(flat_max, ta:max():item())
        assert.are.equal(at_, ta:argmax():item())
      end
    end
  end)

  it("max propagates NaN; any/all on bool; reductions of empty tensors", function()
    local t = T.tensor({ 1, 0 / 0, 3 })
    assert.is_true(t:max():item() ~= t:max():item())
    local b = T.tensor({ { true, false }, { false, false } })
    assert.are.same({ true, false }, b:any(2):totable())
    assert.are.same({ false, false }, b:all(1):totable())
    assert.are.equal(0, T.zeros(0, 3):sum():item())
    assert.are.same({ 0, 0, 0 }, T.zeros(0, 3):sum(1):totable())
    assert.are.equal(1, T.zeros(0):prod():item())
    assert.is_false(pcall(function() return T.zeros(0, 3):max(1) end))
  end)

  it("softmax, log_softmax and normalize along a dim", function()
    local a = N.random({ 3, 5 })
    local ta = make(a, "f64")
    local lse = N.reduce(a, 2, true, 0, function(acc, x) return acc + math.exp(x) end,
      function(s) return math.log(s) end)
    N.assert_close(ta:softmax(2), N.map2(a, lse, function(x, l) return math.exp(x - l) end), 1e-12, 1e-12, "softmax")
    N.assert_close(ta:log_softmax(2), N.map2(a, lse, function(x, l) return x - l end), 1e-12, 1e-12, "log_softmax")
    local nrm = N.reduce(a, 1, true, 0, function(acc, x) return acc + x * x end,
      function(s) return math.sqrt(s) end)
    N.assert_close(ta:normalize(1), N.map2(a, nrm, function(x, n) return x / n end), 1e-12, 1e-12, "normalize")
  end)
end)

describe("matmul", function()
  math.randomseed(404)
  it("2-d with every transposition combination, f32, f64 and i64", function()
    for _, dt in ipairs { "f32", "f64", "i64" } do
      for _, mkn in ipairs { { 3, 4, 5 }, { 1, 7, 1 }, { 6, 1, 4 }, { 17, 9, 13 } } do
        local m, k, n = mkn[1], mkn[2], mkn[3]
        local a, b = N.random({ m, k }, "int"), N.random({ k, n }, "int")
        local r = N.matmul2(a, b)
        for _, la in ipairs { "contiguous", "transposed", "strided" } do
          for _, lb in ipairs { "contiguous", "transposed", "strided" } do
            N.assert_close(make(a, dt, la):matmul(make(b, dt, lb)), r, 1e-6, 1e-6,
              string.format("%s %s@%s %dx%dx%d", dt, la, lb, m, k, n))
          end
        end
      end
    end
  end)

  it("batched with broadcasting, 1-d operands and k = 0", function()
    local a = N.random({ 2, 1, 3, 4 })
    local b = N.random({ 5, 4, 2 })
    local ta, tb = make(a, "f64"), make(b, "f64")
    local out = ta:matmul(tb)
    assert.are.same({ 2, 5, 3, 2 }, out:shape())
    for i = 1, 2 do
      for j = 1, 5 do
        local ai = N.from_tensor(ta:select(1, i):select(1, 1))
        local bj = N.from_tensor(tb:select(1, j))
        N.assert_close(out:select(1, i):select(1, j), N.matmul2(ai, bj), 1e-12, 1e-12, "batch")
      end
    end
    local v = N.random({ 4 })
    local tv = make(v, "f64")
    local m = N.random({ 3, 4 })
    local tm = make(m, "f64")
    local mv = N.matmul2(m, { shape = { 4, 1 }, v = v.v })
    N.assert_close(tm:matmul(tv), { shape = { 3 }, v = mv.v }, 1e-12, 1e-12, "matrix @ vector")
    local vm = N.matmul2({ shape = { 1, 3 }, v = { 1, 2, 3 } }, m)
    N.assert_close(T.tensor({ 1, 2, 3 }, { dtype = "f64" }):matmul(tm), { shape = { 4 }, v = vm.v }, 1e-12, 1e-12, "vector @ matrix")
    local dot = 0
    for i = 1, 4 do dot = dot + v.v[i] * v.v[i] end
    assert.is_true(math.abs(tv:matmul(tv):item() - dot) < 1e-12)
    assert.are.same({ { 0, 0 }, { 0, 0 }, { 0, 0 } }, T.zeros(3, 0):matmul(T.zeros(0, 2)):totable())
  end)
end)

describe("views, copies and indexing", function()
  math.randomseed(505)
  it("transpose, permute, select, narrow, expand and reshape make no copies", function()
    local t = T.arange(24):reshape(2, 3, 4)
    for _, v in ipairs { t:transpose(1, 3), t:permute(3, 1, 2), t:select(2, 2), t:narrow(3, 2, 2),
      t:select(1, 1):expand(5, 3, 4), t:reshape(6, 4), t[2], t:unsqueeze(1), t:view(4, 6) } do
      assert.is_true(core.same_storage(v, t))
    end
    assert.are.equal(t:get(2, 3, 4), t:permute(3, 1, 2):get(4, 2, 3))
    assert.are.equal(t:get(1, 2, 3), t:transpose(1, 3):get(3, 2, 1))
    assert.are.same({ 4, 5, 6, 7 }, t:select(2, 2):select(1, 1):totable())
    assert.are.same({ { 1, 2 }, { 5, 6 }, { 9, 10 } }, t:select(1, 1):narrow(2, 2, 2):totable())
    -- writing through a view writes the base
    t:narrow(3, 2, 2):fill_(-1)
    assert.are.equal(-1, t:get(2, 3, 3))
    t:select(1, 2):select(1, 1)[4] = 100
    assert.are.equal(100, t:get(2, 1, 4))
    -- reshape of a non-contiguous tensor copies correctly
    local nc = T.arange(12):reshape(3, 4):t()
    local r = nc:reshape(12)
    assert.are.same({ 0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11 }, r:totable())
    assert.is_false(core.same_storage(r, nc))
    assert.is_false(pcall(function() return nc:view(12) end))
    assert.are.same({ 3, 4 }, T.zeros(12):reshape(-1, 4):shape())
  end)

  it("index, gather, scatter_add_, index_add_ with 1-based indices", function()
    local a = N.random({ 4, 3 })
    local ta = make(a, "f64", "transposed")
    a = N.from_tensor(ta)
    local rows = ta:index(1, { 4, 1, 4 })
    assert.are.same({ a.v[10], a.v[11], a.v[12] }, rows:select(1, 1):totable())
    assert.are.same(rows:select(1, 1):totable(), rows:select(1, 3):totable())
    local cols = ta:index(2, T.tensor({ 3, 2 }, { dtype = "i64" }))
    assert.are.same({ a.v[3], a.v[2] }, cols:select(1, 1):totable())
    local g = ta:gather(2, T.tensor({ { 1 }, { 3 }, { 2 }, { 1 } }, { dtype = "i64" }))
    assert.are.same({ { a.v[1] }, { a.v[6] }, { a.v[8] }, { a.v[10] } }, g:totable())
    local acc = T.zeros(3, { dtype = "f64" })
    acc:index_add_(1, { 1, 3, 1 }, T.tensor({ 1, 2, 4 }, { dtype = "f64" }))
    assert.are.same({ 5, 0, 2 }, acc:totable())
    local s = T.zeros(2, 3, { dtype = "f64" })
    s:scatter_add_(2, T.tensor({ { 1, 1, 3 } }, { dtype = "i64" }), T.tensor({ { 1, 2, 3 } }, { dtype = "f64" }))
    assert.are.same({ { 3, 0, 3 }, { 0, 0, 0 } }, s:totable())
    assert.are.same({ 2, 4 }, T.tensor({ 0, 1, 0, 7 }):nonzero():totable())
  end)

  it("cat and stack along every dim, negative dims included", function()
    local a, b = T.arange(6):reshape(2, 3), T.arange(6, 12):reshape(2, 3)
    assert.are.same({ { 0, 1, 2 }, { 3, 4, 5 }, { 6, 7, 8 }, { 9, 10, 11 } }, T.cat({ a, b }, 1):totable())
    assert.are.same({ { 0, 1, 2, 6, 7, 8 }, { 3, 4, 5, 9, 10, 11 } }, T.cat({ a, b }, -1):totable())
    assert.are.same({ 2, 2, 3 }, T.stack({ a, b }):shape())
    assert.are.same({ 2, 3, 2 }, T.stack({ a, b }, -1):shape())
    assert.are.same({ 6, 0 }, T.stack({ a, b }, 3):select(2, 1):totable()[1] and
      { T.stack({ a, b }, 3):get(1, 1, 2), T.stack({ a, b }, 3):get(1, 1, 1) })
    assert.are.equal("f64", T.cat({ a:to("f64"), b }, 1):dtype())
    assert.are.same({ 4, 3 }, T.cat({ a:t():t(), T.zeros(0, 3, { dtype = "i64" }), b }, 1):shape())
  end)

  it("creation functions, element access, 0-d and empty tensors", function()
    assert.are.same({ 0, 1, 2, 3, 4 }, T.arange(5):totable())
    assert.are.same({ 2, 4, 6 }, T.arange(2, 8, 2):totable())
    assert.are.same({ 0, 0.25, 0.5, 0.75, 1 }, T.linspace(0, 1, 5, { dtype = "f64" }):totable())
    assert.are.same({ { 1, 0 }, { 0, 1 } }, T.eye(2):totable())
    assert.are.same({ { 7, 7 } }, T.full({ 1, 2 }, 7):totable())
    local z = T.tensor(2.5)
    assert.are.equal(0, z:dim())
    assert.are.equal(2.5, z:item())
    assert.are.equal(5, (z * 2):item())
    local e = T.zeros(0, 4)
    assert.are.equal(0, e:numel())
    assert.are.same({ 0, 4 }, (e + 1):shape())
    local t = T.zeros(2, 3)
    t:set(2, 3, 9)
    assert.are.equal(9, t:get(2, 3))
    assert.are.equal(9, t:get(-1, -1))
    assert.are.equal(2, #t)
  end)
end)

describe("printing", function()
  it("matches PyTorch's layout", function()
    assert.are.equal("tensor([[1., 2.],\n        [3., 4.]], shape={2,2}, dtype=f32)",
      tostring(T.tensor({ { 1, 2 }, { 3, 4 } })))
    assert.are.equal("tensor([ 0.5000, -1.2500], shape={2}, dtype=f64)",
      tostring(T.tensor({ 0.5, -1.25 }, { dtype = "f64" })))
    assert.are.equal("tensor([1, 2], shape={2}, dtype=i64)", tostring(T.arange(1, 3)))
    assert.are.equal("tensor([ true, false], shape={2}, dtype=bool)", tostring(T.tensor({ true, false })))
    assert.are.equal("tensor(3.5000, shape={}, dtype=f32)", tostring(T.tensor(3.5)))
    assert.are.equal("tensor([], shape={0,3}, dtype=f32)", tostring(T.zeros(0, 3)))
    local long = tostring(T.arange(2000))
    assert.are.equal("tensor([   0,    1,    2, ..., 1997, 1998, 1999], shape={2000}, dtype=i64)", long)
    local m = tostring(T.arange(2000):reshape(40, 50))
    assert.is_truthy(m:find("...,\n", 1, true))
    assert.is_truthy(m:find("shape={40,50}", 1, true))
  end)
end)
