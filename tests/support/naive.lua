-- A naive pure-Lua reference for tensor ops: values as flat row-major arrays with a shape.
-- Written for clarity, not speed; tests compare velua's results with it.
local N = {}

function N.numel(shape)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  return n
end

-- flat row-major values of a (nested) table from tensor:totable()
function N.flatten(v, out)
  out = out or {}
  if type(v) ~= "table" then out[#out + 1] = v; return out end
  for _, x in ipairs(v) do N.flatten(x, out) end
  return out
end

function N.from_tensor(t) return { shape = t:shape(), v = N.flatten(t:totable()) } end

-- random values for a shape (kind "float" | "int" | "bool" | "positive")
function N.random(shape, kind)
  local v = {}
  for i = 1, N.numel(shape) do
    if kind == "int" then v[i] = math.random(-5, 5)
    elseif kind == "bool" then v[i] = math.random() < 0.5
    elseif kind == "positive" then v[i] = 0.1 + 3 * math.random()
    else v[i] = (math.random() - 0.5) * 4 end
  end
  return { shape = shape, v = v }
end

-- nested table for T.tensor from a flat reference
function N.nest(r)
  local function build(dim, offset)
    if dim > #r.shape then return r.v[offset + 1], offset + 1 end
    local t = {}
    for i = 1, r.shape[dim] do t[i], offset = build(dim + 1, offset) end
    return t, offset
  end
  if #r.shape == 0 then return r.v[1] end
  return (build(1, 0))
end

local function strides(shape)
  local s, acc = {}, 1
  for d = #shape, 1, -1 do s[d] = acc; acc = acc * shape[d] end
  return s
end

local function unravel(i, shape) -- 0-based flat -> 1-based multi-index
  local idx = {}
  for d = #shape, 1, -1 do
    idx[d] = i % shape[d] + 1
    i = i // shape[d]
  end
  return idx
end

function N.broadcast_shape(a, b)
  local n = math.max(#a, #b)
  local out = {}
  for i = 1, n do
    local sa = a[#a - n + i] or 1
    local sb = b[#b - n + i] or 1
    if sa ~= sb and sa ~= 1 and sb ~= 1 then return nil end
    out[i] = sa == 1 and sb or sa
  end
  return out
end

-- value of r at multi-index idx of a broadcast shape
local function at(r, idx)
  local off, st = 0, strides(r.shape)
  local lead = #idx - #r.shape
  for d = 1, #r.shape do
    local k = r.shape[d] == 1 and 1 or idx[lead + d]
    off = off + (k - 1) * st[d]
  end
  return r.v[off + 1]
end
N.at = at

function N.map2(a, b, f)
  local shape = assert(N.broadcast_shape(a.shape, b.shape))
  local v = {}
  for i = 0, N.numel(shape) - 1 do
    local idx = unravel(i, shape)
    v[i + 1] = f(at(a, idx), at(b, idx))
  end
  return { shape = shape, v = v }
end

function N.map(a, f)
  local v = {}
  for i, x in ipairs(a.v) do v[i] = f(x) end
  return { shape = a.shape, v = v }
end

-- reduce along dim (nil: all) with f(acc, x) from init; keepdim
function N.reduce(a, dim, keepdim, init, f, final)
  if dim == nil then
    local acc = init
    for _, x in ipairs(a.v) do acc = f(acc, x) end
    if final then acc = final(acc, #a.v) end
    local shape = {}
    if keepdim then for d = 1, #a.shape do shape[d] = 1 end end
    return { shape = shape, v = { acc } }
  end
  local shape = {}
  for d = 1, #a.shape do shape[d] = d == dim and 1 or a.shape[d] end
  local v = {}
  for i = 0, N.numel(shape) - 1 do
    local idx = unravel(i, shape)
    local acc = init
    for k = 1, a.shape[dim] do
      idx[dim] = k
      acc = f(acc, at(a, idx), k)
    end
    v[i + 1] = final and final(acc, a.shape[dim]) or acc
  end
  if not keepdim then table.remove(shape, dim) end
  return { shape = shape, v = v }
end

function N.matmul2(a, b) -- 2-d only
  local m, k, n = a.shape[1], a.shape[2], b.shape[2]
  local v = {}
  for i = 1, m do
    for j = 1, n do
      local s = 0
      for p = 1, k do s = s + a.v[(i - 1) * k + p] * b.v[(p - 1) * n + j] end
      v[(i - 1) * n + j] = s
    end
  end
  return { shape = { m, n }, v = v }
end

function N.transpose2(a)
  local m, n = a.shape[1], a.shape[2]
  local v = {}
  for i = 1, m do for j = 1, n do v[(j - 1) * m + i] = a.v[(i - 1) * n + j] end end
  return { shape = { n, m }, v = v }
end

-- asserts that tensor t equals reference r: same shape, values within rtol/atol
function N.assert_close(t, r, rtol, atol, what)
  rtol, atol = rtol or 1e-6, atol or 1e-6
  local got = N.from_tensor(t)
  local gs, rs = table.concat(got.shape, ","), table.concat(r.shape, ",")
  if gs ~= rs then error(string.format("%s: shape {%s}, expected {%s}", what or "", gs, rs), 2) end
  for i = 1, #r.v do
    local x, y = got.v[i], r.v[i]
    local ok
    if type(y) == "boolean" or type(x) == "boolean" then ok = x == y
    elseif y ~= y then ok = x ~= x
    elseif y == math.huge or y == -math.huge then ok = x == y
    else ok = math.abs(x - y) <= atol + rtol * math.abs(y) end
    if not ok then
      error(string.format("%s: element %d is %s, expected %s", what or "", i, tostring(x), tostring(y)), 2)
    end
  end
end

return N
