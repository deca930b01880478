-- Tensor memory is visible to Lua's garbage collector (storage is a full userdata), so
-- allocation-heavy loops stay bounded without collectgarbage(); free() and <close> release
-- memory early. Each scenario runs in a fresh lua5.4 process so its peak RSS is its own.
local function run_child(body)
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(string.format("package.path = %q\npackage.cpath = %q\n", package.path, package.cpath))
  f:write([[
local velua = require "velua"
local T = velua.tensor
local function status(key)
  for line in io.lines("/proc/self/status") do
    local v = line:match("^" .. key .. ":%s+(%d+) kB")
    if v then return tonumber(v) end
  end
end
]], body)
  f:close()
  local p = assert(io.popen("lua5.4 " .. script .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  os.remove(script)
  return out, ok
end

describe("tensor memory", function()
  it("keeps 10,000 allocations of 4 MB under 1 GB resident without collectgarbage()", function()
    local out, ok = run_child([[
local n = 1024 * 1024            -- 4 MB of f32
local total = 0
for i = 1, 10000 do
  local t = T.zeros(n)
  total = total + 1
end
print("count", total)
print("peak_kb", status("VmHWM"))
]])
    assert.is_true(ok, out)
    assert.are.equal("10000", out:match("count%s+(%d+)"), out)
    local peak = tonumber(out:match("peak_kb%s+(%d+)"))
    assert.is_truthy(peak, out)
    assert.is_true(peak < 1024 * 1024, "peak RSS " .. peak .. " kB is not under 1 GB")
  end)

  it("counts a tensor's bytes in collectgarbage('count')", function()
    local out, ok = run_child([[
collectgarbage("collect")
local before = collectgarbage("count")
local t = T.zeros(1024 * 1024)   -- 4 MB
local after = collectgarbage("count")
print("delta_kb", math.floor(after - before))
]])
    assert.is_true(ok, out)
    local delta = tonumber(out:match("delta_kb%s+(%d+)"))
    assert.is_true(delta >= 4096 and delta < 4096 + 64, "GC saw " .. tostring(delta) .. " kB")
  end)

  it("views keep their storage alive after the base is dropped", function()
    local out, ok = run_child([[
local v
do
  local base = T.arange(1000):reshape(10, 100)
  v = base:select(1, 7):narrow(1, 5, 3)
end
collectgarbage("collect"); collectgarbage("collect")
local filler = {}
for i = 1, 50 do filler[i] = T.full({1000}, -1, {dtype = "i64"}) end
print("values", table.concat(v:totable(), ","))
]])
    assert.is_true(ok, out)
    assert.are.equal("604,605,606", out:match("values%s+([%d,]+)"), out)
  end)

  it("free() returns the memory at once and later use is a clear error", function()
    local out, ok = run_child([[
local t = T.ones(64 * 1024 * 1024)   -- 256 MB, touched by the fill
local view = t:narrow(1, 1, 10)
local with = status("VmRSS")
t:free()
local without = status("VmRSS")
print("released_kb", with - without)
local ok1, err1 = pcall(function() return t:sum() end)
local ok2, err2 = pcall(function() return view:get(1) end)
print("use_after_free", tostring(ok1), err1)
print("view_after_free", tostring(ok2), err2)
print("tostring", tostring(t))
t:free()  -- twice is fine
print("done")
]])
    assert.is_true(ok, out)
    local released = tonumber(out:match("released_kb%s+(%-?%d+)"))
    assert.is_true(released > 200 * 1024, "free released only " .. tostring(released) .. " kB\n" .. out)
    assert.is_truthy(out:find("use_after_free%s+false"), out)
    assert.is_truthy(out:find("released by free()", 1, true), out)
    assert.is_truthy(out:find("view_after_free%s+false"), out)
    assert.is_truthy(out:find("tensor(<freed>)", 1, true), out)
    assert.is_truthy(out:find("done", 1, true), out)
  end)

  it("a to-be-closed tensor is freed at the end of its scope", function()
    local out, ok = run_child([[
local escaped
do
  local big <close> = T.ones(64 * 1024 * 1024)
  escaped = big
  print("inside", status("VmRSS") > 200 * 1024)
end
print("after", status("VmRSS") < 200 * 1024, escaped:is_freed())
]])
    assert.is_true(ok, out)
    assert.is_truthy(out:find("inside%s+true"), out)
    assert.is_truthy(out:find("after%s+true%s+true"), out)
  end)

  it("a training-style loop does not grow memory", function()
    local out, ok = run_child([[
local w = T.ones(256, 256)
local x = T.ones(512, 256)
local rss = {}
for step = 1, 300 do
  local y = x:matmul(w):relu()
  local loss = (y * y):mean()
  w:sub_(x:t():matmul(y) * 1e-9)
  if step == 50 then rss[1] = status("VmRSS") end
  if step == 300 then rss[2] = status("VmRSS") end
end
print("growth_kb", rss[2] - rss[1])
]])
    assert.is_true(ok, out)
    local growth = tonumber(out:match("growth_kb%s+(%-?%d+)"))
    assert.is_true(growth < 32 * 1024, "RSS grew by " .. tostring(growth) .. " kB\n" .. out)
  end)

  it("reuses freed tensor blocks: a steady loop takes its memory from the cache, no page faults", function()
    local out, ok = run_child([[
local core = require "velua.core"
local function minflt()
  local f = io.open("/proc/self/stat"); local s = f:read("a"); f:close()
  return tonumber(s:match("%) %S+" .. string.rep(" %S+", 6) .. " (%d+)"))
end
local data = T.ones(20000, 1000) -- 80 MB live, as a data set
local x, w = T.ones(256, 2000), T.ones(128, 2000)
local function step() return ((x * 2) - x):sum() + x:matmul(w:t()):sum() end
for i = 1, 50 do step() end -- warm up
local f0, info0 = minflt(), core.memory_cache_info()
for i = 1, 200 do step() end -- 400 fresh 2 MB tensors and 200 of 128 kB
local f1, info1 = minflt(), core.memory_cache_info()
print("faults", f1 - f0)
print("hits", info1.hits - info0.hits)
print("bounded", info1.bytes <= info1.cap and info1.blocks <= 64)
collectgarbage("collect"); collectgarbage("collect"); collectgarbage("collect")
print("aged_out", core.memory_cache_info().bytes)
local kept = {}
for i = 1, 4 do kept[i] = T.ones(300000) end
kept = nil
collectgarbage("collect")
local cached = core.memory_cache_info().bytes
print("release", cached > 0, core.memory_cache_release() == cached, core.memory_cache_info().bytes)
]])
    assert.is_true(ok, out)
    -- without the cache (malloc trimming its heap between collections) this loop takes about
    -- 13,000 page faults; with it about 1,600
    local faults = tonumber(out:match("faults%s+(%d+)"))
    assert.is_true(faults < 6000, "page faults: " .. tostring(faults) .. "\n" .. out)
    assert.is_true(tonumber(out:match("hits%s+(%d+)")) >= 400, out)
    assert.is_truthy(out:find("bounded%s+true"), out)
    assert.are.equal("0", out:match("aged_out%s+(%d+)"), out)
    assert.is_truthy(out:find("release%s+true%s+true%s+0"), out)
  end)

  it("keeps freed blocks through one more collection: a step after copy + collectgarbage() reuses them", function()
    local out, ok = run_child([[
local core = require "velua.core"
local function garbage() local t = {}; for i = 1, 4 do t[i] = T.ones(300000) end end
garbage()
collectgarbage("collect") -- frees the 4 blocks into the cache
collectgarbage("collect") -- an explicit collection right after: the blocks stay
local info0 = core.memory_cache_info()
print("kept", info0.blocks)
garbage()                 -- the next step takes them
print("hits", core.memory_cache_info().hits - info0.hits)
collectgarbage("collect"); collectgarbage("collect"); collectgarbage("collect")
print("aged_out", core.memory_cache_info().bytes)
]])
    assert.is_true(ok, out)
    assert.are.equal("4", out:match("kept%s+(%d+)"), out)
    assert.are.equal("4", out:match("hits%s+(%d+)"), out)
    assert.are.equal("0", out:match("aged_out%s+(%d+)"), out)
  end)

  it("a state closed with tensors alive and blocks cached exits cleanly", function()
    local out, ok = run_child([[
local keep = {}
for i = 1, 20 do keep[i] = T.ones(100000 + i) end
for i = 1, 10 do keep[i] = nil end
collectgarbage("collect")
print("cached", require("velua.core").memory_cache_info().blocks > 0)
os.exit(0, true) -- closes the state: finalizers, then every object freed
]])
    assert.is_true(ok, out)
    assert.is_truthy(out:find("cached%s+true"), out)
  end)
end)
