-- Interrupts: a SIGINT during core.interrupt_call ends it with the error "interrupted", from a
-- long C kernel (blocked kNN stops between blocks) as from a plain Lua loop, and the process
-- carries on with its state. Each case runs in a child lua5.4 that the shell signals with
-- `kill -INT` once the child has reached its long operation.
local helpers = require "support.helpers"

local root = helpers.repo_root()

local PRELUDE = string.format([[
package.path = %q .. "/lua/?.lua;" .. %q .. "/lua/?/init.lua;" .. package.path
package.cpath = %q .. "/build/?.so;" .. package.cpath
local velua = require "velua"
local core = require "velua.core"
local T = velua.tensor
local marker = arg[1]
local function started() assert(io.open(marker, "w")):close() end
io.stdout:setvbuf("line")
]], root, root, root)

-- Runs `body` (Lua source after PRELUDE) in a child process, sends SIGINT `delay` seconds after
-- it calls started(), and returns its output and exit status. (timeout passes the SIGINT on to
-- lua5.4 and ends a child that ignores it; --foreground: only to lua5.4, not a second time to the
-- process group, which would kill lua5.4 once its own handler has reset SIGINT to the default.)
local function run_child(body, delay)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  local f = assert(io.open(dir .. "/child.lua", "w"))
  f:write(PRELUDE, body)
  f:close()
  local sh = string.format([[
cd %s
timeout --foreground 60 lua5.4 child.lua marker > out 2>&1 &
pid=$!
i=0
while [ ! -e marker ] && [ $i -lt 600 ] && kill -0 $pid 2>/dev/null; do sleep 0.05; i=$((i+1)); done
sleep %s
kill -INT $pid 2>/dev/null
wait $pid
echo "EXIT $?" >> out
cat out
]], dir, tostring(delay or 0.3))
  local p = assert(io.popen("sh -c '" .. sh:gsub("'", "'\\''") .. "' 2>&1"))
  local out = p:read("a")
  p:close()
  os.execute("rm -rf " .. dir)
  return out, tonumber(out:match("EXIT (%d+)"))
end

describe("interrupts", function()
  it("stop a plain Lua loop and leave the process usable", function()
    local out, code = run_child([[
local state = 41
local ok, err = core.interrupt_call(function()
  started()
  local i = 0
  while true do i = i + 1 end
end, nil)
print("first", ok, err)
print("pending", core.interrupt_pending())
local ok2, v = core.interrupt_call(function() return state + T.arange(3):sum():item() end, nil)
print("second", ok2, v)
]])
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("first\tfalse\tinterrupted", 1, true), out)
    assert.is_truthy(out:find("pending\tfalse", 1, true), out)
    assert.is_truthy(out:find("second\ttrue\t44", 1, true), out)
  end)

  for _, threads in ipairs { 1, 2 } do
    it("stop exact kNN between query blocks and hand out no result (" .. threads .. " thread(s))", function()
      local out, code = run_child(string.format([[
velua.set_num_threads(%d)
-- baseline: the same search on a quarter of the rows (a sixteenth of the work)
local small = T.randn({10000, 32}, {gen = T.generator(2)})
local t0 = velua.now()
core.knn_exact(small, 15)
print("small", velua.now() - t0)
local x = T.randn({40000, 32}, {gen = T.generator(1)})
local result = "unset"
local t1
local ok, err = core.interrupt_call(function()
  started()
  t1 = velua.now()
  result = core.knn_exact(x, 15)
  return "finished"
end, debug.traceback)
print("elapsed", velua.now() - t1)
print("knn", ok, (tostring(err):gsub("\n.*", "")), result)
-- the process and its data are fine: a small search gives a full, valid answer
local idx = core.knn_exact(x:narrow(1, 1, 500), 5)
print("after", idx:shape()[1], idx:min():item(), idx:max():item() <= 500)
]], threads), 0.3)
      assert.are.equal(0, code, out)
      assert.is_truthy(out:find("knn\tfalse\tinterrupted\tunset", 1, true), out)
      assert.is_truthy(out:find("after\t500\t1\ttrue", 1, true), out)
      local small = tonumber(out:match("small\t([%d%.e%-]+)"))
      local elapsed = tonumber(out:match("elapsed\t([%d%.e%-]+)"))
      assert.is_truthy(small and elapsed, out)
      -- the full search is ~16x the baseline; stopping must come long before half of it
      assert.is_true(elapsed < 0.3 + 8 * small,
        string.format("interrupted search took %.2f s (baseline %.3f s)", elapsed, small))
    end)
  end

  it("stop a training loop between steps; the model stays usable", function()
    local out, code = run_child([[
local gen = T.generator(0)
local net = velua.nn.MLP({8, 32, 1}, {gen = gen})
local opt = velua.optim.Adam(net:parameters(), {lr = 1e-3})
local x, y = T.randn({256, 8}, {gen = gen}), T.randn({256, 1}, {gen = gen})
local steps = 0
local ok, err = core.interrupt_call(function()
  started()
  while true do
    opt:zero_grad()
    local loss = velua.nn.F.mse(net(x), y)
    loss:backward()
    opt:step()
    steps = steps + 1
  end
end, nil)
print("train", ok, err, steps > 0)
local out = net(x)
local s = out:sum():item()
print("after", out:shape()[1], s == s and math.abs(s) < math.huge)
]], 0.5)
    assert.are.equal(0, code, out)
    -- (backward rethrows errors from its own pcall, with the caller's position)
    assert.is_truthy(out:find("train\tfalse\t[^\t\n]*interrupted\ttrue"), out)
    assert.is_truthy(out:find("after\t256\ttrue", 1, true), out)
  end)

  it("give SIGINT back its previous effect outside interrupt_call", function()
    -- lua5.4 runs a script with its own SIGINT handler (error "interrupted!"): it is back in force
    local out, code = run_child([[
assert(core.interrupt_call(function() return 1 end, nil))
started()
local t = velua.now()
while velua.now() - t < 20 do end
print("survived")
]])
    assert.are.equal(1, code, out)
    assert.is_truthy(out:find("interrupted!", 1, true), out)
    assert.is_falsy(out:find("survived", 1, true), out)
    -- interrupt_ignore: idle SIGINTs are dropped (the kernel between cells)
    out, code = run_child([[
core.interrupt_ignore()
assert(core.interrupt_call(function() return 1 end, nil))
started()
local t = velua.now()
while velua.now() - t < 1 do end
local ok, v = core.interrupt_call(function() return "next cell" end, nil)
print("survived", ok, v)
]])
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("survived\ttrue\tnext cell", 1, true), out)
  end)

  it("behaves like xpcall otherwise: results, errors, handler, nesting, bad arguments", function()
    local core = require "velua.core"
    assert.are.same({ true, 1, 2, "x" }, { core.interrupt_call(function(a, b) return a, b, "x" end, nil, 1, 2) })
    local ok, msg = core.interrupt_call(function() error("boom", 0) end, function(e) return "handled " .. e end)
    assert.are.same({ false, "handled boom" }, { ok, msg })
    local inner
    ok, msg = core.interrupt_call(function()
      inner = { core.interrupt_call(function() error("inner", 0) end, function(e) return e .. "!" end) }
      return "outer done"
    end, nil)
    assert.are.same({ true, "outer done" }, { ok, msg })
    assert.are.same({ false, "inner!" }, inner)
    assert.is_false(core.interrupt_pending())
    assert.has_error(function() core.interrupt_call(42) end)
    assert.has_error(function() core.interrupt_call(print, 42) end)
  end)
end)
