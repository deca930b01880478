-- velua.optim and velua.schedule: the first steps of each optimizer against its closed-form
-- update computed here in plain Lua, clip_grad_norm, the schedulers' lr sequences, and a
-- small regression that trains to a low loss.
local velua = require "velua"
local T, nn, optim, schedule = velua.tensor, velua.nn, velua.optim, velua.schedule
local h = require "support.helpers"

local function approx(a, b, rtol, atol)
  if T.is_tensor(a) then a = a:totable() end
  if T.is_tensor(b) then b = b:totable() end
  local ok, msg = h.approx_equal(a, b, rtol or 1e-12, atol or 1e-14)
  assert(ok, msg)
end

local function f64(t) return T.tensor(t, { dtype = "f64" }) end

-- the gradients fed to every optimizer, one per step (two parameters: a vector and a matrix)
local P0 = { { 1.0, -2.0, 0.5 }, { { 0.3, -0.1 }, { 2.0, 1.5 } } }
local GRADS = {
  { { 0.5, -1.0, 2.0 }, { { 0.1, 0.2 }, { -0.3, 0.4 } } },
  { { 0.1, 0.3, -0.2 }, { { 1.0, -0.5 }, { 0.0, 0.2 } } },
  { { -0.4, 0.02, 0.01 }, { { 0.05, 0.05 }, { 0.3, -0.6 } } },
}

local function flatten(t, out)
  out = out or {}
  if type(t) == "number" then out[#out + 1] = t; return out end
  for _, v in ipairs(t) do flatten(v, out) end
  return out
end

local function make_params() return { f64(P0[1]):requires_grad(), f64(P0[2]):requires_grad() } end

-- Runs `steps` steps of opt over params with GRADS injected as gradients; returns the params
-- after each step as flat lists.
local function run(params, opt, steps)
  local hist = {}
  for s = 1, steps do
    opt:zero_grad()
    for i, p in ipairs(params) do p:set_grad(f64(GRADS[s][i])) end
    opt:step()
    local flat = {}
    for _, p in ipairs(params) do flatten(p:totable(), flat) end
    hist[s] = flat
  end
  return hist
end

-- The same in Lua numbers: update(state, p, g, step) -> new p, for each scalar element.
local function reference(steps, update)
  local p = flatten(P0)
  local states = {}
  for k = 1, #p do states[k] = {} end
  local hist = {}
  for s = 1, steps do
    local g = flatten(GRADS[s])
    for k = 1, #p do p[k] = update(states[k], p[k], g[k], s) end
    hist[s] = { table.unpack(p) }
  end
  return hist
end

describe("optim.SGD", function()
  it("plain steps p - lr g, also from a real backward", function()
    local p = f64({ 1, -2 }):requires_grad()
    local opt = optim.SGD({ p }, { lr = 0.1 })
    for _ = 1, 3 do
      opt:zero_grad()
      ;(p * p * 0.5):sum():backward() -- gradient p
      opt:step()
    end
    approx(p, { 0.9 ^ 3, -2 * 0.9 ^ 3 })
  end)

  for _, case in ipairs({
    { momentum = 0.9 },
    { momentum = 0.9, weight_decay = 0.1 },
    { momentum = 0.8, dampening = 0.3 },
    { momentum = 0.9, nesterov = true, weight_decay = 0.01 },
  }) do
    local label = {}
    for k, v in pairs(case) do label[#label + 1] = k .. "=" .. tostring(v) end
    table.sort(label)
    it("matches the closed form with " .. table.concat(label, ", "), function()
      local lr = 0.05
      local opts = { lr = lr }
      for k, v in pairs(case) do opts[k] = v end
      local params = make_params()
      local got = run(params, optim.SGD(params, opts), 3)
      local mom, damp, wd = case.momentum or 0, case.dampening or 0, case.weight_decay or 0
      local want = reference(3, function(st, p, g)
        g = g + wd * p
        if st.buf == nil then st.buf = g else st.buf = mom * st.buf + (1 - damp) * g end
        local d = case.nesterov and g + mom * st.buf or st.buf
        return p - lr * d
      end)
      approx(got, want)
    end)
  end

  it("checks its options", function()
    assert.has_error(function() optim.SGD(make_params(), {}) end)          -- lr is required
    assert.has_error(function() optim.SGD(make_params(), { lr = 0.1, nesterov = true }) end)
    assert.has_error(function() optim.SGD(make_params(), { lr = 0.1, momentun = 0.9 }) end)
    assert.has_error(function() optim.SGD({ T.ones({ 2 }):requires_grad() * 2 }, { lr = 0.1 }) end)
    local p = T.ones({ 2 }):requires_grad()
    assert.has_error(function() optim.SGD({ p, p }, { lr = 0.1 }) end)
  end)
end)

-- Adam's closed form for one scalar, as torch.optim.Adam / AdamW
local function adam_ref(lr, b1, b2, eps, wd, amsgrad, decoupled)
  return function(st, p, g, t)
    if decoupled then p = p * (1 - lr * wd) else g = g + wd * p end
    st.m = b1 * (st.m or 0) + (1 - b1) * g
    st.v = b2 * (st.v or 0) + (1 - b2) * g * g
    local v = st.v
    if amsgrad then
      st.vmax = math.max(st.vmax or 0, st.v)
      v = st.vmax
    end
    local bc1, bc2 = 1 - b1 ^ t, 1 - b2 ^ t
    return p - lr / bc1 * st.m / (math.sqrt(v) / math.sqrt(bc2) + eps)
  end
end

describe("optim.Adam and optim.AdamW", function()
  for _, case in ipairs({
    { cls = "Adam", opts = {} },
    { cls = "Adam", opts = { lr = 0.01, weight_decay = 0.1 } },
    { cls = "Adam", opts = { lr = 0.01, amsgrad = true } },
    { cls = "Adam", opts = { lr = 0.02, amsgrad = true, weight_decay = 0.05, betas = { 0.8, 0.9 }, eps = 1e-6 } },
    { cls = "AdamW", opts = {} },
    { cls = "AdamW", opts = { lr = 0.01, weight_decay = 0.3, amsgrad = true } },
  }) do
    local label = {}
    for k, v in pairs(case.opts) do
      label[#label + 1] = k .. "=" .. (type(v) == "table" and "{" .. table.concat(v, ",") .. "}" or tostring(v))
    end
    table.sort(label)
    it(case.cls .. " matches the closed form with {" .. table.concat(label, ", ") .. "}", function()
      local o = case.opts
      local decoupled = case.cls == "AdamW"
      local lr = o.lr or 1e-3
      local b = o.betas or { 0.9, 0.999 }
      local wd = o.weight_decay or (decoupled and 1e-2 or 0)
      local params = make_params()
      local got = run(params, optim[case.cls](params, o), 3)
      local want = reference(3, adam_ref(lr, b[1], b[2], o.eps or 1e-8, wd, o.amsgrad, decoupled))
      approx(got, want)
    end)
  end

  it("amsgrad differs from Adam when the second moment falls", function()
    -- a large gradient then small ones: v falls, vmax does not
    local function final(amsgrad)
      local p = f64({ 1 }):requires_grad()
      local opt = optim.Adam({ p }, { lr = 0.1, amsgrad = amsgrad, betas = { 0.5, 0.5 } })
      for _, g in ipairs({ 10, 0.1, 0.1, 0.1 }) do
        p:set_grad(f64({ g }))
        opt:step()
      end
      return p:item()
    end
    assert.is_true(math.abs(final(true) - final(false)) > 1e-3)
  end)

  it("keeps state per parameter and skips parameters without a gradient", function()
    local a, b = f64({ 1 }):requires_grad(), f64({ 2 }):requires_grad()
    local opt = optim.Adam({ a, b }, { lr = 0.1 })
    a:set_grad(f64({ 1 }))
    opt:step()
    assert.are.equal(2, b:item())
    assert.are.equal(1, opt.state[a].step)
    assert.is_nil(opt.state[b])
    approx(a:item(), 1 - 0.1 / (1 + 1e-8)) -- the first step: lr g / (|g| + eps)
  end)

  it("runs its updates without recording and in place", function()
    local m = nn.Linear(3, 2)
    local w = m.weight
    local opt = optim.AdamW(m:parameters())
    m(T.ones({ 4, 3 })):sum():backward()
    opt:step()
    assert.are.equal(w, m.weight)
    assert.is_true(m.weight:is_leaf())
    assert.is_true(m.weight:needs_grad())
  end)

  it("saves and restores its state", function()
    local pa = make_params()
    local a = optim.Adam(pa, { lr = 0.01, amsgrad = true })
    run(pa, a, 2)
    local sd = a:state_dict()
    assert.are.equal(2, sd.state[1].step)
    assert.are.same({ 1, 2 }, sd.param_groups[1].params)
    local pb = { pa[1]:detach():clone():requires_grad(), pa[2]:detach():clone():requires_grad() }
    local b = optim.Adam(pb, { lr = 0.5 })
    b:load_state_dict(sd)
    assert.are.equal(0.01, b:lr())
    assert.is_true(b.param_groups[1].amsgrad)
    for i = 1, 2 do
      pa[i]:set_grad(f64(GRADS[3][i])); pb[i]:set_grad(f64(GRADS[3][i]))
    end
    a:step(); b:step()
    approx(pb[1], pa[1], 0, 0)
    approx(pb[2], pa[2], 0, 0)
    assert.has_error(function() optim.Adam({ pb[1] }):load_state_dict(sd) end)
  end)

  it("takes a module, groups with their own options, and sets lr", function()
    local m = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    local opt = optim.Adam(m, { lr = 0.01 })
    assert.are.equal(4, #opt:params())
    local g = optim.Adam({ { params = m[1]:parameters(), lr = 0.1 }, { params = m[2]:parameters() } },
      { lr = 0.01, weight_decay = 1e-5 })
    assert.are.equal(0.1, g.param_groups[1].lr)
    assert.are.equal(0.01, g.param_groups[2].lr)
    assert.are.equal(1e-5, g.param_groups[1].weight_decay)
    g:set_lr(0.2)
    assert.are.equal(0.2, g.param_groups[2].lr)
    assert.are.equal(0.2, g:lr())
    assert.are.equal(1e-2, optim.AdamW(m).param_groups[1].weight_decay)
    assert.has_error(function() optim.Adam(m, { betas = { 1.0, 0.9 } }) end)
    assert.has_error(function() optim.Adam({ { params = m:parameters(), lrr = 1 } }) end)
  end)
end)

describe("optim.clip_grad_norm", function()
  it("scales all gradients together and returns the total norm", function()
    local a, b = f64({ 0, 0 }):requires_grad(), f64({ 0 }):requires_grad()
    a:set_grad(f64({ 3, 4 }))
    b:set_grad(f64({ 12 }))
    local n = optim.clip_grad_norm({ a, b }, 6.5)
    approx(n, 13)
    local c = 6.5 / (13 + 1e-6)
    approx(a:grad(), { 3 * c, 4 * c })
    approx(b:grad(), { 12 * c })
    -- below the limit: unchanged
    a:set_grad(f64({ 3, 4 }))
    approx(optim.clip_grad_norm({ a }, 10), 5)
    approx(a:grad(), { 3, 4 })
    -- infinity norm; parameters without gradients are ignored
    a:set_grad(f64({ 3, -4 }))
    b:zero_grad()
    approx(optim.clip_grad_norm({ a, b }, 2, { norm_type = math.huge }), 4)
    approx(a:grad(), { 3 * 2 / (4 + 1e-6), -4 * 2 / (4 + 1e-6) })
    assert.are.equal(0, optim.clip_grad_norm({ b }, 1))
  end)
end)

describe("learning-rate schedulers", function()
  local function lrs(make, n)
    local p = T.ones({ 1 }):requires_grad()
    local opt = optim.SGD({ p }, { lr = 0.1 })
    local s = make(opt)
    local out = { s:lr() }
    for _ = 1, n do out[#out + 1] = s:step() end
    assert.are.equal(out[#out], opt:lr())
    return out, s, opt
  end

  it("StepLR: lr0 gamma^floor(t / step_size)", function()
    local got = lrs(function(o) return optim.StepLR(o, { step_size = 3, gamma = 0.5 }) end, 7)
    local want = {}
    for t = 0, 7 do want[#want + 1] = 0.1 * 0.5 ^ (t // 3) end
    approx(got, want)
    local d = lrs(function(o) return optim.StepLR(o) end, 2)
    approx(d, { 0.1, 0.1 * 0.97, 0.1 * 0.97 ^ 2 })
  end)

  it("CosineLR: eta_min + (lr0 - eta_min)(1 + cos(pi t / t_max))/2", function()
    local got = lrs(function(o) return optim.CosineLR(o, { t_max = 10, eta_min = 0.01 }) end, 12)
    local want = {}
    for t = 0, 12 do want[#want + 1] = 0.01 + 0.09 * (1 + math.cos(math.pi * t / 10)) / 2 end
    approx(got, want)
    approx(got[11], 0.01)
    assert.has_error(function() lrs(function(o) return optim.CosineLR(o, {}) end, 1) end)
  end)

  it("Warmup: linear from start_factor to 1 over steps", function()
    local got = lrs(function(o) return optim.Warmup(o, { steps = 4 }) end, 6)
    approx(got, { 0, 0.025, 0.05, 0.075, 0.1, 0.1, 0.1 })
    got = lrs(function(o) return optim.Warmup(o, { steps = 2, start_factor = 0.5 }) end, 3)
    approx(got, { 0.05, 0.075, 0.1, 0.1 })
  end)

  it("compose: warm-up then cosine", function()
    local p = T.ones({ 1 }):requires_grad()
    local opt = optim.SGD({ p }, { lr = 1 })
    local w = optim.Warmup(opt, { steps = 2 })
    local c = optim.CosineLR(opt, { t_max = 4 })
    local got = { opt:lr() }
    for _ = 1, 4 do
      w:step(); c:step()
      got[#got + 1] = opt:lr()
    end
    local want = {}
    for t = 0, 4 do want[#want + 1] = (1 + math.cos(math.pi * t / 4)) / 2 * math.min(t, 2) / 2 end
    approx(got, want)
    local sd = c:state_dict()
    assert.are.equal(4, sd.last_epoch)
    c:load_state_dict({ last_epoch = 1 })
    approx(opt:lr(), (1 + math.cos(math.pi / 4)) / 2)
    approx(c:get_last_lr(), { (1 + math.cos(math.pi / 4)) / 2 })
  end)
end)

describe("velua.schedule", function()
  it("linear and cosine from step 1 to n, clamped after", function()
    local f = schedule.linear(0, 1, 5)
    approx({ f(0), f(1), f(2), f(3), f(5), f(6), f(100) }, { 0, 0, 0.25, 0.5, 1, 1, 1 })
    local g = schedule.cosine(2, 0, 3)
    approx({ g(1), g(2), g(3), g(4) }, { 2, 1, 0, 0 }, 1e-12, 1e-15)
    local c = schedule.cosine(0, 1, 5)
    approx(c(2), (1 - math.cos(math.pi * 0.25)) / 2)
    approx(schedule.linear(0.5, 3, 1)(1), 3)
    approx(schedule.constant(0.3)(10), 0.3)
    assert.has_error(function() schedule.linear(0, 1, 0) end)
    assert.has_error(function() schedule.cosine(0, 1, 2.5) end)
  end)
end)

describe("training", function()
  it("fits a small regression to a low loss", function()
    local g = T.generator(11)
    local x = T.linspace(-1, 1, 64):reshape({ 64, 1 })
    local y = x * x * 2 - 0.5 + (x * 3):sin() * 0.3
    local m = nn.MLP({ 1, 32, 32, 1 }, { activation = "tanh", gen = g })
    local opt = optim.Adam(m, { lr = 1e-2 })
    local sched = optim.CosineLR(opt, { t_max = 600, eta_min = 1e-4 })
    local first, last
    for it = 1, 600 do
      opt:zero_grad()
      local loss = nn.F.mse(m(x), y)
      loss:backward()
      optim.clip_grad_norm(m, 10)
      opt:step()
      sched:step()
      if it == 1 then first = loss:item() end
      last = loss:item()
    end
    assert.is_true(last < 1e-3, "final loss " .. last)
    assert.is_true(last < first / 100, first .. " -> " .. last)
  end)
end)
