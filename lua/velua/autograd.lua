-- Reverse-mode automatic differentiation over the tensor primitives.
--
-- install(T) wraps every differentiable primitive of T.primitives with a version that, when
-- gradients are enabled and an input requires them, records a node: the rule, the inputs and
-- the storage versions of the tensors the rule will read. Compositions in tensor.lua (mean,
-- softmax, cdist's forward, ...) call the primitives and so are differentiated for free.
-- backward() walks the nodes in reverse topological order, reduces broadcast gradients to
-- each input's shape, accumulates into leaves' .grad and frees the graph.
--
-- Autograd state of a tensor lives in its user value 2 (core._get_slot/_set_slot):
--   { requires_grad = true, grad = <tensor or nil>, node = <node or nil> }
local core = require "velua.core"
local options = require "velua.options"

local M = {}

function M.install(T)
  local P = T.primitives
  local raw = {}                      -- the undifferentiated primitives
  for k, v in pairs(P) do raw[k] = v end
  local is_tensor, get_slot, set_slot = core.is_tensor, core._get_slot, core._set_slot
  local version, shape_of, dim_of = core.version, core.shape, core.dim

  local grad_enabled = true           -- per velua instance; T.no_grad switches it

  local function requires(x)
    if not is_tensor(x) then return false end
    local s = get_slot(x)
    return s ~= nil and s.requires_grad == true
  end

  -- ---------- helpers used by the rules (all raw: no recording) ----------

  -- Sums g down to `shape` (undoing broadcasting).
  local function sum_to(g, shape)
    local gs = shape_of(g)
    local nd, gd = #shape, #gs
    if nd == gd then
      local same = true
      for i = 1, nd do if gs[i] ~= shape[i] then same = false break end end
      if same then return g end
    end
    for _ = 1, gd - nd do g = raw.sum(g, 1, false) end
    gs = shape_of(g)
    for i = 1, nd do
      if shape[i] == 1 and gs[i] ~= 1 then g = raw.sum(g, i, true) end
    end
    return g
  end

  local function zeros_like(x) return core.full(shape_of(x), 0, { dtype = core.dtype(x) }) end

  -- g of a reduction output back to the input's shape (before broadcasting against it).
  local function unreduce(g, x, dim, keepdim)
    if dim ~= nil and not keepdim and dim_of(x) > 0 then g = raw.unsqueeze(g, dim) end
    if dim == nil and not keepdim then
      local ones = {}
      for i = 1, dim_of(x) do ones[i] = 1 end
      g = raw.reshape(g, ones)
    end
    return g
  end

  local function mask_f(mask, like) return raw.to(mask, core.dtype(like)) end

  -- c * g * x with the constant applied to whichever of g and x has fewer elements (g is often
  -- a broadcast row or column of the reduction above it): one full-size pass instead of two
  -- An expanded g (as the gradient of a sum) counts by the elements it really holds: its
  -- broadcast dims are narrowed back to size 1 where x has the full size, and broadcasting in
  -- mul restores them.
  local function compact(g, x)
    local st = core.stride(g)
    if #st ~= dim_of(x) then return g end
    for d = 1, #st do
      local n = core.size(g, d)
      if st[d] == 0 and n > 1 and core.size(x, d) == n then g = raw.narrow(g, d, 1, 1) end
    end
    return g
  end
  local function scaled_product(c, g, x)
    if not is_tensor(x) then return raw.mul(g, c * x) end
    local gc = compact(g, x)
    if core.numel(gc) <= core.numel(x) then return raw.mul(raw.mul(gc, c), x) end
    return raw.mul(g, raw.mul(x, c))
  end

  -- ---------- gradient rules ----------
  -- rule(g, a, out) gets the output gradient g, the call's arguments a (a table, a.n = count)
  -- and the output; it returns the gradients of the arguments by position (nil: none).
  -- `saves` lists what the rule reads: "in" (tensor arguments) and/or "out".
  local rules = {}
  local function rule(name, saves, fn) rules[name] = { fn = fn, saves = saves } end

  rule("add", "", function(g) return g, g end)
  rule("sub", "", function(g, _, _, needs) return g, needs[2] and raw.neg(g) or nil end)
  rule("mul", "in", function(g, a, _, needs)
    if rawequal(a[1], a[2]) then -- x * x
      return scaled_product(2, g, a[1]), nil
    end
    return needs[1] and raw.mul(g, a[2]) or nil, needs[2] and raw.mul(g, a[1]) or nil
  end)
  rule("div", "in", function(g, a, _, needs)
    local ga = raw.div(g, a[2])
    local gb = needs[2] and raw.neg(raw.div(raw.mul(ga, a[1]), a[2])) or nil
    return needs[1] and ga or nil, gb
  end)
  rule("pow", "in,out", function(g, a, out)
    local x, p = a[1], a[2]
    local ga
    if requires(x) then
      -- a scalar exponent stays a Lua number, so f64 inputs keep f64 precision
      if p == 2 then
        ga = scaled_product(2, g, x)
      else
        local pm1 = type(p) == "number" and p - 1 or raw.sub(p, 1)
        ga = raw.mul(g, raw.mul(p, raw.pow(x, pm1)))
      end
    end
    local gp
    if requires(p) then
      -- d/dp x^p = x^p log x (0 where x == 0, as PyTorch)
      local lx
      if type(x) == "number" then
        lx = x == 0 and 0 or math.log(x)
      else
        lx = raw.where(raw.eq(x, 0), 0, raw.log(x))
      end
      gp = raw.mul(g, raw.mul(out, lx))
    end
    return ga, gp
  end)
  local function extremum_rule(pick)
    return function(g, a)
      local x, y = a[1], a[2]
      local gx = raw.mul(g, raw.add(mask_f(pick(x, y), g), raw.mul(mask_f(raw.eq(x, y), g), -0.5)))
      local gy = raw.mul(g, raw.add(mask_f(pick(y, x), g), raw.mul(mask_f(raw.eq(x, y), g), -0.5)))
      return gx, gy
    end
  end
  rule("maximum", "in", extremum_rule(raw.ge))
  rule("minimum", "in", extremum_rule(raw.le))
  rule("atan2", "in", function(g, a)
    local y, x = a[1], a[2]
    local d = raw.add(raw.mul(x, x), raw.mul(y, y))
    return raw.div(raw.mul(g, x), d), raw.neg(raw.div(raw.mul(g, y), d))
  end)
  rule("fmod", "in", function(g, a)
    local q = raw.div(a[1], a[2])
    q = raw.mul(raw.sign(q), raw.floor(raw.abs(q)))
    return g, raw.neg(raw.mul(g, q))
  end)
  rule("neg", "", function(g) return raw.neg(g) end)
  rule("exp", "out", function(g, _, out) return raw.mul(g, out) end)
  rule("log", "in", function(g, a) return raw.div(g, a[1]) end)
  rule("log1p", "in", function(g, a) return raw.div(g, raw.add(a[1], 1)) end)
  rule("expm1", "out", function(g, _, out) return raw.mul(g, raw.add(out, 1)) end)
  rule("sqrt", "out", function(g, _, out) return raw.div(g, raw.mul(out, 2)) end)
  rule("abs", "in", function(g, a) return raw.mul(g, raw.sign(a[1])) end)
  rule("sign", "", function(g) return raw.mul(g, 0) end)
  rule("relu", "out", function(g, _, out) return raw.where(raw.gt(out, 0), g, 0) end)
  rule("sigmoid", "out", function(g, _, out)
    return raw.mul(g, raw.mul(out, raw.sub(1, out)))
  end)
  rule("tanh", "out", function(g, _, out) return raw.mul(g, raw.sub(1, raw.mul(out, out))) end)
  rule("softplus", "in", function(g, a)
    local x = a[1]
    local s = raw.sigmoid(x)
    return raw.mul(g, raw.where(raw.gt(x, 20), 1, s))
  end)
  rule("lgamma", "in", function(g, a) return raw.mul(g, raw.digamma(a[1])) end)
  rule("digamma", "in", function(g, a) return raw.mul(g, raw.trigamma(a[1])) end)
  rule("sin", "in", function(g, a) return raw.mul(g, raw.cos(a[1])) end)
  rule("cos", "in", function(g, a) return raw.neg(raw.mul(g, raw.sin(a[1]))) end)
  for _, name in ipairs { "floor", "ceil", "round" } do
    rule(name, "", function(g) return raw.mul(g, 0) end)
  end
  rule("reciprocal", "out", function(g, _, out) return raw.neg(raw.mul(g, raw.mul(out, out))) end)
  rule("square", "in", function(g, a) return scaled_product(2, g, a[1]) end)
  rule("clamp", "in", function(g, a)
    local x, lo, hi = a[1], a[2], a[3]
    local keep = nil
    if lo ~= nil then keep = raw.ge(x, lo) end
    if hi ~= nil then
      local k2 = raw.le(x, hi)
      keep = keep and raw.logical_and(keep, k2) or k2
    end
    return raw.mul(g, mask_f(keep, g))
  end)
  rule("where", "in", function(g, a)
    local c = a[1]
    return nil, raw.where(c, g, 0), raw.where(c, 0, g)
  end)

  -- reductions
  rule("sum", "", function(g, a)
    local x = a[1]
    return raw.expand(unreduce(g, x, a[2], a[3]), shape_of(x))
  end)
  rule("prod", "in,out", function(g, a, out)
    -- d prod / d x_i = product of the other elements, also where some x are 0: with no zero
    -- it is out / x_i; with one zero only that element gets the product of the rest
    local x, dim = a[1], a[2]
    local gu = unreduce(g, x, dim, a[3])
    local ou = unreduce(out, x, dim, a[3])
    local is_zero = raw.eq(x, 0)
    local nzero = raw.sum(is_zero, dim, true)
    local others = raw.prod(raw.where(is_zero, 1, x), dim, true)
    local no_zero = raw.div(ou, raw.where(is_zero, 1, x))
    local one_zero = raw.where(is_zero, others, 0)
    local d = raw.where(raw.eq(nzero, 0), no_zero, raw.where(raw.eq(nzero, 1), one_zero, 0))
    return raw.mul(gu, d)
  end)
  local function minmax_rule(g, a, out)
    local x, dim, keepdim = a[1], a[2], a[3]
    if dim == nil then
      -- over everything: split evenly between tied extremes
      local mask = mask_f(raw.eq(x, out), g)
      local count = raw.sum(mask)
      return raw.mul(raw.div(mask, count), g)
    end
    local _, idx = raw.max(raw.mul(mask_f(raw.eq(x, unreduce(out, x, dim, keepdim)), x), 1), dim, true)
    local gx = zeros_like(x)
    raw.scatter_add_(gx, dim, idx, unreduce(g, x, dim, keepdim))
    return gx
  end
  rule("max", "in,out", minmax_rule)
  rule("min", "in,out", minmax_rule)
  rules.max.nret, rules.min.nret = 2, 2 -- values and, along a dim, indices

  -- linear algebra
  rule("matmul", "in", function(g, a)
    local x, y = a[1], a[2]
    local xv, yv = dim_of(x) == 1, dim_of(y) == 1
    local x2 = xv and raw.unsqueeze(x, 1) or x
    local y2 = yv and raw.unsqueeze(y, 2) or y
    local g2 = g
    if xv then g2 = raw.unsqueeze(g2, yv and 1 or -2) end
    if yv then g2 = raw.unsqueeze(g2, -1) end
    local gx, gy
    if requires(x) then
      gx = sum_to(raw.matmul(g2, raw.transpose(y2, -1, -2)), shape_of(x2))
      if xv then gx = raw.reshape(gx, shape_of(x)) end
    end
    if requires(y) then
      -- for a transposed operand (as W:t() in a linear layer) compute the product in that
      -- layout, so the gradient reaching W is contiguous and needs no copy
      local ys = core.stride(y2)
      local transposed = #ys >= 2 and ys[#ys - 1] == 1 and core.size(y2, -1) > 1
      local prod
      if transposed then
        prod = raw.transpose(raw.matmul(raw.transpose(g2, -1, -2), x2), -1, -2)
      else
        prod = raw.matmul(raw.transpose(x2, -1, -2), g2)
      end
      gy = sum_to(prod, shape_of(y2))
      if yv then gy = raw.reshape(gy, shape_of(y)) end
    end
    return gx, gy
  end)

  -- linear(x, w, b) = x w^T + b over the last dim of x: the products in the layouts GEMM reads
  -- directly (g^T x gives w's gradient contiguous, as w itself), the bias gradient a column sum
  rule("linear", "in", function(g, a, _, needs)
    local x, w = a[1], a[2]
    local n, k = core.size(w, 1), core.size(w, 2)
    local g2 = dim_of(g) == 2 and g or raw.reshape(g, { -1, n })
    local gx, gw, gb
    if needs[1] then
      gx = raw.matmul(g2, w)
      if dim_of(x) ~= 2 then gx = raw.reshape(gx, shape_of(x)) end
    end
    if needs[2] then
      local x2 = dim_of(x) == 2 and x or raw.reshape(x, { -1, k })
      gw = raw.matmul(raw.t(g2), x2)
    end
    if needs[3] then gb = raw.sum(g2, 1) end
    return gx, gw, gb
  end)

  -- indexing
  rule("index", "", function(g, a)
    local gx = zeros_like(a[1])
    raw.index_add_(gx, a[2], a[3], g)
    return gx
  end)
  rule("gather", "", function(g, a)
    local gx = zeros_like(a[1])
    raw.scatter_add_(gx, a[2], a[3], g)
    return gx
  end)

  -- views and copies
  rule("transpose", "", function(g, a) return raw.transpose(g, a[2], a[3]) end)
  rule("t", "", function(g) return raw.t(g) end)
  rule("permute", "", function(g, a)
    local perm = type(a[2]) == "table" and a[2] or { table.unpack(a, 2, a.n) }
    local nd = #perm
    local inv = {}
    for i, p in ipairs(perm) do
      if p < 0 then p = p + nd + 1 end
      inv[p] = i
    end
    return raw.permute(g, inv)
  end)
  rule("select", "", function(g, a)
    local gx = zeros_like(a[1])
    core.copy_(raw.select(gx, a[2], a[3]), g)
    return gx
  end)
  rule("narrow", "", function(g, a)
    local gx = zeros_like(a[1])
    core.copy_(raw.narrow(gx, a[2], a[3], a[4]), g)
    return gx
  end)
  local function reshape_back(g, a) return raw.reshape(g, shape_of(a[1])) end
  rule("reshape", "", reshape_back)
  rule("view", "", reshape_back)
  rule("squeeze", "", reshape_back)
  rule("unsqueeze", "", reshape_back)
  rule("expand", "", function(g, a) return sum_to(g, shape_of(a[1])) end)
  rule("contiguous", "", function(g) return g end)
  rule("clone", "", function(g) return g end)
  rule("to", "", function(g, a)
    local dt = core.dtype(a[1])
    if dt == "f32" or dt == "f64" then return raw.to(g, dt) end
    return nil
  end)

  -- ---------- recording ----------

  local function saved_versions(spec, args, out)
    local v = {}
    if spec:find("in", 1, true) then
      for i = 1, args.n do
        local x = args[i]
        if is_tensor(x) then v[#v + 1] = { x, version(x) } end
      end
    end
    if spec:find("out", 1, true) then v[#v + 1] = { out, version(out) } end
    return v
  end

  local function record(name, r, args, out)
    local node = { name = name, rule = r.fn, args = args, out = out,
                   versions = saved_versions(r.saves, args, out) }
    set_slot(out, { requires_grad = true, node = node })
  end

  -- Does argument x (a tensor, or a list of tensors as for cat) need gradients?
  local function arg_requires(x)
    if type(x) == "table" and not is_tensor(x) then
      for _, y in ipairs(x) do if requires(y) then return true end end
      return false
    end
    return requires(x)
  end

  local function differentiable(name, fn, r)
    local two = r.nret == 2
    return function(...)
      local out, out2 = fn(...)
      if grad_enabled then
        for i = 1, select("#", ...) do
          if arg_requires((select(i, ...))) then
            local ft = core.dtype(out)
            if ft == "f32" or ft == "f64" then
              -- contiguous()/to() of a tensor already in shape return the input itself: record
              -- on a fresh view so the input keeps its own place in the graph
              for j = 1, select("#", ...) do
                if rawequal(out, (select(j, ...))) then out = core.alias(out) break end
              end
              record(name, r, table.pack(...), out)
            end
            break
          end
        end
      end
      if two then return out, out2 end
      return out
    end
  end

  for name, r in pairs(rules) do
    if P[name] then T.set_primitive(name, differentiable(name, raw[name], r)) end
  end

  -- In-place primitives must not touch tensors that take part in a graph.
  for _, name in ipairs { "add_", "sub_", "mul_", "div_", "pow_", "maximum_", "minimum_",
                          "clamp_", "fill_", "copy_", "index_add_", "scatter_add_" } do
    local f = raw[name]
    T.set_primitive(name, function(t, ...)
      if grad_enabled and requires(t) then
        local s = get_slot(t)
        error(string.format("%s: in-place operation on a tensor that requires grad (%s); use " ..
          "T.no_grad(function() ... end) for updates, or an out-of-place operation", name,
          s.node and "produced by " .. s.node.name or "a leaf"), 2)
      end
      return f(t, ...)
    end)
  end

  -- Differentiable functions defined in Lua register here (forward, rule, saves).
  function T.def_differentiable(name, forward, rule_fn, saves)
    local r = { fn = rule_fn, saves = saves or "in" }
    return differentiable(name, forward, r)
  end

  -- cat: a composition with copy_ in its forward pass, so it gets its own rule. Its first
  -- argument is a list; the rule returns a list of gradients for it.
  T.cat = T.def_differentiable("cat", T.cat, function(g, a)
    local list, dim = a[1], a[2] or 1
    local d = dim < 0 and dim + dim_of(list[1]) + 1 or dim
    local grads, offset = {}, 1
    for i, x in ipairs(list) do
      local n = core.size(x, d)
      grads[i] = raw.narrow(g, d, offset, n)
      offset = offset + n
    end
    return grads
  end, "")

  -- cdist: own rule, so that a zero distance gives a zero (not NaN) gradient, as PyTorch.
  -- With w = g / d (0 where d = 0): grad_a = a * rowsum(w) - w b, grad_b = b * colsum(w) - w^T a.
  do
    local cdist = T.cdist
    T.cdist = T.def_differentiable("cdist", function(a, b)
      return T.no_grad(cdist, a, b)
    end, function(g, args, d)
      local a, b = args[1], args[2]
      local w = raw.where(raw.eq(d, 0), 0, raw.div(g, d))
      local ga, gb
      if requires(a) then
        ga = raw.sub(raw.mul(a, raw.sum(w, -1, true)), raw.matmul(w, b))
      end
      if requires(b) then
        local cs = raw.transpose(raw.sum(w, -2, true), -1, -2)
        gb = raw.sub(raw.mul(b, cs), raw.matmul(raw.transpose(w, -1, -2), a))
      end
      return ga, gb
    end, "in,out")
  end

  -- trigamma has no gradient rule (it would need polygamma of order 2): refuse to pretend.
  do
    local trigamma = raw.trigamma
    T.set_primitive("trigamma", function(x)
      if grad_enabled and requires(x) then
        error("trigamma: gradients are not supported (polygamma of order 2 is not " ..
          "implemented); call it under T.no_grad or on a detached tensor", 2)
      end
      return trigamma(x)
    end)
  end

  -- element writes are in-place writes too
  do
    local set = T.methods.set
    T.methods.set = function(t, ...)
      if grad_enabled and requires(t) then
        error("set: in-place write into a tensor that requires grad; use T.no_grad", 2)
      end
      return set(t, ...)
    end
  end

  -- sparse @ dense: differentiable with respect to the dense operand (the gradient is
  -- S^T g; the transpose is computed once per matrix and cached).
  if T.SparseCSR then
    local methods = T.SparseCSR.__index
    local spmm = methods.matmul
    local transposed = setmetatable({}, { __mode = "k" })
    methods.matmul = T.def_differentiable("sparse_matmul", spmm, function(g, a)
      local sp = a[1]
      local st = transposed[sp]
      if not st then
        st = sp:transpose()
        transposed[sp] = st
      end
      return nil, spmm(st, g)
    end, "")
  end

  -- ---------- public API ----------

  function T.is_grad_enabled() return grad_enabled end

  -- no_grad(fn, ...): runs fn with recording off and returns its results.
  function T.no_grad(fn, ...)
    local prev = grad_enabled
    grad_enabled = false
    local res = table.pack(pcall(fn, ...))
    grad_enabled = prev
    if not res[1] then error(res[2], 0) end
    return table.unpack(res, 2, res.n)
  end

  local Mth = T.methods

  -- t:requires_grad([flag=true]): marks a floating-point leaf as needing gradients.
  function Mth.requires_grad(t, flag)
    if flag == nil then flag = true end
    local dt = core.dtype(t)
    if flag and dt ~= "f32" and dt ~= "f64" then
      error("requires_grad: only f32 and f64 tensors can require gradients, got " .. dt, 2)
    end
    local s = get_slot(t)
    if s and s.node and not flag then
      error("requires_grad: cannot turn off gradients of a non-leaf tensor (use detach())", 2)
    end
    if s then s.requires_grad = flag
    else set_slot(t, { requires_grad = flag }) end
    return t
  end

  function Mth.is_leaf(t)
    local s = get_slot(t)
    return s == nil or s.node == nil
  end

  function Mth.requires_grad_(t, flag) return Mth.requires_grad(t, flag) end
  function Mth.needs_grad(t) return requires(t) end

  -- t:grad(): the accumulated gradient of a leaf (nil before backward).
  function Mth.grad(t)
    local s = get_slot(t)
    return s and s.grad
  end

  function Mth.zero_grad(t)
    local s = get_slot(t)
    if s then s.grad = nil end
  end

  function Mth.set_grad(t, g)
    local s = get_slot(t)
    if not s then s = {}; set_slot(t, s) end
    s.grad = g
  end

  -- t:detach(): the same values, cut from the graph (shares memory).
  function Mth.detach(t) return core.alias(t) end

  -- Nodes that produced the tensor arguments of node (lists, as for cat, included).
  local function children(node)
    local out = {}
    local args = node.args
    if not args then return out end
    local function add(x)
      if is_tensor(x) then
        local sx = get_slot(x)
        if sx and sx.node then out[#out + 1] = sx.node end
      end
    end
    for k = 1, args.n do
      local x = args[k]
      if type(x) == "table" and not is_tensor(x) then
        for _, y in ipairs(x) do add(y) end
      else
        add(x)
      end
    end
    return out
  end

  -- Post-order of the graph below root: every node comes after the nodes it consumes.
  local function topo_order(root)
    local order, seen = {}, { [root] = true }
    local stack = { { root, children(root), 0 } }
    while #stack > 0 do
      local frame = stack[#stack]
      local kids, i = frame[2], frame[3] + 1
      while i <= #kids and seen[kids[i]] do i = i + 1 end
      if i <= #kids then
        frame[3] = i
        local child = kids[i]
        seen[child] = true
        stack[#stack + 1] = { child, children(child), 0 }
      else
        order[#order + 1] = frame[1]
        stack[#stack] = nil
      end
    end
    return order
  end

  -- Hands gradient gx of input x to its producer (pending in grads) or, for a leaf, adds it
  -- to x's .grad (a fresh contiguous tensor, never a view of another gradient g).
  local function deliver(grads, x, gx, g)
    if gx == nil or not requires(x) then return end
    gx = sum_to(gx, shape_of(x))
    if core.dtype(gx) ~= core.dtype(x) then gx = raw.to(gx, core.dtype(x)) end
    local sx = get_slot(x)
    if sx.node then
      local prev = grads[x]
      grads[x] = prev and raw.add(prev, gx) or gx
    else
      if not core.is_contiguous(gx) or core.same_storage(gx, g) or sx.grad == nil and
        core.same_storage(gx, x) then
        gx = raw.clone(gx)
      end
      sx.grad = sx.grad and raw.add(sx.grad, gx) or gx
    end
  end

  -- loss:backward([grad] [, {retain_graph=false}])
  function Mth.backward(loss, grad, opts)
    if type(grad) == "table" and not is_tensor(grad) then grad, opts = nil, grad end
    local o = options.check("backward", opts, { retain_graph = false })
    local s = get_slot(loss)
    if not s or not s.requires_grad then
      error("backward: the tensor does not require grad (no input of its computation called " ..
        "requires_grad())", 2)
    end
    if grad == nil then
      if core.numel(loss) ~= 1 then
        error("backward: grad can be implicitly created only for a tensor with one element, " ..
          "got shape {" .. table.concat(shape_of(loss), ",") .. "}", 2)
      end
      grad = core.full(shape_of(loss), 1, { dtype = core.dtype(loss) })
    elseif not is_tensor(grad) then
      error("backward: grad must be a tensor, got " .. type(grad), 2)
    else
      local gs, ls = shape_of(grad), shape_of(loss)
      local same = #gs == #ls
      for i = 1, #ls do same = same and gs[i] == ls[i] end
      if not same then
        error(string.format("backward: grad has shape {%s}, the tensor has shape {%s}",
          table.concat(gs, ","), table.concat(ls, ",")), 2)
      end
      if core.dtype(grad) ~= core.dtype(loss) then grad = raw.to(grad, core.dtype(loss)) end
    end
    if not s.node then
      -- a leaf: its gradient is grad itself
      s.grad = s.grad and raw.add(s.grad, grad) or raw.clone(grad)
      return
    end
    if s.node.freed then
      error("backward: the graph of this tensor was already freed by an earlier backward(); " ..
        "pass {retain_graph=true} to the first call to backward twice", 2)
    end
    local prev_mode = grad_enabled
    grad_enabled = false
    local ok, err = pcall(function()
      local order = topo_order(s.node)
      local grads = { [loss] = grad }
      for i = #order, 1, -1 do
        local node = order[i]
        if node.freed then
          error("backward: part of the graph was already freed by an earlier backward()", 0)
        end
        local g = grads[node.out]
        grads[node.out] = nil
        if g ~= nil then
          for _, sv in ipairs(node.versions) do
            if version(sv[1]) ~= sv[2] then
              error(string.format("backward: a tensor needed by the gradient of '%s' was " ..
                "modified in place after it was used (version %d, now %d)", node.name, sv[2],
                version(sv[1])), 0)
            end
          end
          local needs = {}
          for k = 1, node.args.n do needs[k] = arg_requires(node.args[k]) end
          local gs = table.pack(node.rule(g, node.args, node.out, needs))
          local args = node.args
          for k = 1, args.n do
            local x, gk = args[k], gs[k]
            if gk ~= nil then
              if type(x) == "table" and not is_tensor(x) then
                for j, y in ipairs(x) do deliver(grads, y, gk[j], g) end
              else
                deliver(grads, x, gk, g)
              end
            end
          end
        end
        if not o.retain_graph then
          node.args, node.out, node.versions = nil, nil, {}
          node.freed = true
        end
      end
    end)
    grad_enabled = prev_mode
    if not ok then error(err, 2) end
  end

  return T
end

return M
