-- The Jupyter kernel, end to end: a notebook executed headlessly with jupyter nbconvert through
-- the velua kernelspec (installed into a temporary JUPYTER_PATH).
local helpers = require "support.helpers"

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

describe("Jupyter kernel", function()
  local root = helpers.repo_root()
  local dir = os.tmpname()
  os.remove(dir)

  it("executes cells with persistent state, results, output, figures and errors", function()
    local ok, out = sh(string.format("bash %s/scripts/jupyter/install_kernel.sh %s/kernels/velua", root, dir))
    assert.is_true(ok, out)
    local make = [[
import nbformat, sys
nb = nbformat.v4.new_notebook()
nb.metadata["kernelspec"] = {"name": "velua", "display_name": "velua", "language": "lua"}
cells = open(sys.argv[2]).read().split("\n#--\n")
nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
nbformat.write(nb, sys.argv[1])
]]
    local f = assert(io.open(dir .. "/make.py", "w"))
    f:write(make)
    f:close()
    local cells = table.concat({
      "x = T.arange(6):reshape(2, 3)",
      "x:sum(2)",
      "print('printed', x:numel())",
      "velua.pl.lines(T.tensor{1, 3, 2})",
      "local y = x * 2\nreturn y:max()",
    }, "\n#--\n")
    local function write_cells(name, text)
      local g = assert(io.open(dir .. "/" .. name, "w"))
      g:write(text)
      g:close()
      return dir .. "/" .. name
    end
    ok, out = sh(string.format("/usr/bin/python3 %s/make.py %s/in.ipynb %s", dir, dir, write_cells("in.txt", cells)))
    assert.is_true(ok, out)
    ok, out = sh(string.format("cd %s && JUPYTER_PATH=%s timeout 120 jupyter nbconvert --to notebook --execute " ..
      "--output %s/out.ipynb %s/in.ipynb", dir, dir, dir, dir))
    assert.is_true(ok, out)
    local nb = assert(io.open(dir .. "/out.ipynb")):read("a")
    assert.is_truthy(nb:find("tensor([ 3, 12], shape={2}, dtype=i64)", 1, true), nb)
    assert.is_truthy(nb:find("printed\\t6", 1, true), nb)
    assert.is_truthy(nb:find("image/svg+xml", 1, true), nb)
    assert.is_truthy(nb:find("tensor(10, shape={}, dtype=i64)", 1, true), nb)
    -- a failing cell fails the execution and reports the Lua error
    ok, out = sh(string.format("/usr/bin/python3 %s/make.py %s/bad.ipynb %s", dir, dir,
      write_cells("bad.txt", "error('boom')")))
    assert.is_true(ok, out)
    ok, out = sh(string.format("cd %s && JUPYTER_PATH=%s timeout 120 jupyter nbconvert --to notebook --execute " ..
      "--output %s/bad_out.ipynb %s/bad.ipynb", dir, dir, dir, dir))
    assert.is_falsy(ok)
    assert.is_truthy(out:find("boom", 1, true), out)
  end)

  -- "interrupt kernel" through jupyter_client (SIGINT to the kernel's process group, as Jupyter
  -- does): a running cell ends with the error "interrupted", the kernel keeps its state
  it("interrupts a long cell (C kernel, Lua loop, training loop) and stays usable", function()
    local ok, out = sh(string.format("bash %s/scripts/jupyter/install_kernel.sh %s/kernels/velua", root, dir))
    assert.is_true(ok, out)
    local driver = [[
import os, queue, sys, time
from jupyter_client.manager import start_new_kernel

t_start = time.time()
km, kc = start_new_kernel(kernel_name="velua", startup_timeout=60)
print("STARTED %.2f" % (time.time() - t_start))

def run(code, interrupt_after=None, timeout=60):
    msg_id = kc.execute(code, stop_on_error=False)
    texts, sent, t0 = [], None, time.time()
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=0.05)
        except queue.Empty:
            msg = None
        if msg and msg["parent_header"].get("msg_id") == msg_id:
            kind, c = msg["msg_type"], msg["content"]
            if kind == "stream":
                texts.append(c["text"])
            elif kind == "execute_result":
                texts.append(c["data"]["text/plain"])
            elif kind == "error":
                texts.append("ERROR %s: %s" % (c["ename"], c["evalue"]))
            elif kind == "status" and c["execution_state"] == "idle":
                break
        if interrupt_after is not None and sent is None and "started" in "".join(texts):
            time.sleep(interrupt_after)
            km.interrupt_kernel()
            sent = time.time()
        if time.time() - t0 > timeout:
            print("TIMEOUT", repr(code))
            break
    reply = kc.get_shell_msg(timeout=10)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=10)
    took = time.time() - sent if sent else 0.0
    print("CELL %s | %s | %.2f" % (reply["content"]["status"], "".join(texts).replace("\n", " "), took))
    sys.stdout.flush()

try:
    run("state = 41")
    run("print('started')\nlocal i = 0\nwhile true do i = i + 1 end", 0.3)
    run("state + 1")
    run("local x = T.randn({40000, 32}, {gen = T.generator(1)})\nprint('started')\n"
        "knn = require('velua.core').knn_exact(x, 15)", 0.3)
    run("tostring(knn)")
    run("local gen = T.generator(0)\nnet = velua.nn.MLP({8, 32, 1}, {gen = gen})\n"
        "local opt = velua.optim.Adam(net:parameters(), {lr = 1e-3})\n"
        "local x, y = T.randn({256, 8}, {gen = gen}), T.randn({256, 1}, {gen = gen})\n"
        "print('started')\nwhile true do opt:zero_grad(); velua.nn.F.mse(net(x), y):backward(); opt:step() end", 0.5)
    run("net(T.zeros(2, 8)):shape()[1] + state")
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
sys.stdout.flush()
os._exit(0)  # skips jupyter_client's noisy destructors at interpreter exit
]]
    local f = assert(io.open(dir .. "/interrupt.py", "w"))
    f:write(driver)
    f:close()
    ok, out = sh(string.format("cd %s && JUPYTER_PATH=%s timeout 300 /usr/bin/python3 %s/interrupt.py", dir, dir, dir))
    assert.is_true(ok, out)
    local cells = {}
    for status, text, took in out:gmatch("CELL (%w+) | (.-) | ([%d%.]+)") do
      cells[#cells + 1] = { status = status, text = text, took = tonumber(took) }
    end
    assert.are.equal(7, #cells, out)
    assert.are.equal("ok", cells[1].status, out)
    for _, i in ipairs { 2, 4, 6 } do
      assert.are.equal("error", cells[i].status, out)
      assert.is_truthy(cells[i].text:find("ERROR LuaError: [^|]*interrupted"), out)
      assert.is_true(cells[i].took < 5, out) -- seconds from the interrupt to the reply
    end
    assert.is_truthy(cells[3].text:find("42", 1, true), out)
    -- the interrupted kNN assigned nothing
    assert.are.equal("ok", cells[5].status, out)
    assert.is_truthy(cells[5].text:find("nil", 1, true), out)
    assert.are.equal("ok", cells[7].status, out)
    assert.is_truthy(cells[7].text:find("43", 1, true), out)
  end)

  -- the notebooks in notebooks/ run headlessly through the kernel; any failing cell fails
  -- (their own asserts check that training worked)
  it("runs notebooks/01_tensors_and_training.ipynb, stored without outputs", function()
    local ok, out = sh(string.format("bash %s/scripts/jupyter/install_kernel.sh %s/kernels/velua", root, dir))
    assert.is_true(ok, out)
    local nb_path = root .. "/notebooks/01_tensors_and_training.ipynb"
    ok, out = sh(string.format([[/usr/bin/python3 -c "
import nbformat, sys
nb = nbformat.read(sys.argv[1], 4)
nbformat.validate(nb)
code = [c for c in nb.cells if c.cell_type == 'code']
assert nb.metadata.kernelspec.name == 'velua', nb.metadata.kernelspec
assert all(not c.outputs and c.execution_count is None for c in code), 'stored with outputs'
print('cells', len(code))" %s]], nb_path))
    assert.is_true(ok, out)
    local t0 = os.time()
    ok, out = sh(string.format("cd %s && JUPYTER_PATH=%s timeout 120 jupyter nbconvert --to notebook --execute " ..
      "--output %s/nb01.ipynb %s", dir, dir, dir, nb_path))
    assert.is_true(ok, out)
    assert.is_true(os.time() - t0 <= 60, "the notebook took " .. (os.time() - t0) .. " s")
    local nb = assert(io.open(dir .. "/nb01.ipynb")):read("a")
    assert.is_falsy(nb:find('"output_type": "error"', 1, true), nb)
    assert.is_truthy(nb:find("AnnData object with n_obs", 1, true), nb)
    assert.is_truthy(nb:find("epochs: 100%|", 1, true), nb)            -- the progress bar
    assert.is_truthy(nb:find("image/svg+xml", 1, true), nb)            -- the loss curve
    assert.is_truthy(nb:find("training loss [%d%.]+ %-> [%d%.]+"), nb)
    assert.is_truthy(nb:find("Pearson r 0%.9"), nb)
  end)

  teardown(function() os.execute("rm -rf " .. dir) end)
end)
