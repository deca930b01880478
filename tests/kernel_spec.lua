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
    os.execute("rm -rf " .. dir)
  end)
end)
