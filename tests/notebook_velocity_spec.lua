-- notebooks/02_velocity_pancreas.ipynb, executed headlessly through the velua Jupyter kernel
-- (jupyter nbconvert --execute, kernelspec installed into a temporary JUPYTER_PATH): every cell
-- runs without error and the figures come back as SVG display data. The notebook reads the
-- shared pancreas data when they are there (required when CI is set), else the simulator.
local helpers = require "support.helpers"

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Writes a line summary of an executed notebook and each SVG figure to its own file:
--   CELL <i> <execution_count> <output types>   one per code cell
--   TEXT <i> <line>                             stream and text/plain output
--   SVG <i> <file>                              a display_data image/svg+xml, saved to <file>
--   ERROR <i> <ename>: <evalue> | <traceback>
local SUMMARY = [[
import json, sys
nb = json.load(open(sys.argv[1]))
outdir = sys.argv[2]
n = 0
for i, c in enumerate(nb["cells"], 1):
    if c["cell_type"] != "code":
        continue
    outs = c.get("outputs", [])
    print("CELL %d %s %s" % (i, c.get("execution_count"), ",".join(o["output_type"] for o in outs) or "-"))
    for o in outs:
        t = o["output_type"]
        if t == "stream":
            for line in "".join(o["text"]).splitlines():
                print("TEXT %d %s" % (i, line))
        elif t == "error":
            print("ERROR %d %s: %s | %s" % (i, o["ename"], o["evalue"], " / ".join(o["traceback"])))
        else:
            data = o.get("data", {})
            if "text/plain" in data:
                for line in "".join(data["text/plain"]).splitlines():
                    print("TEXT %d %s" % (i, line))
            if t == "display_data" and "image/svg+xml" in data:
                n += 1
                path = "%s/fig_%d.svg" % (outdir, n)
                open(path, "w").write("".join(data["image/svg+xml"]))
                print("SVG %d %s" % (i, path))
]]

describe("notebook 02_velocity_pancreas", function()
  local root = helpers.repo_root()
  local nb = root .. "/notebooks/02_velocity_pancreas.ipynb"
  -- nil locally when the data are missing (the notebook then runs on the simulator); an error in CI
  local pancreas = helpers.shared_path("data/pancreas_veloviz/pancreas.h5ad")

  it("is stored without outputs, for the velua kernel", function()
    local ok, out = sh(string.format([[/usr/bin/python3 -c "
import nbformat, sys
nb = nbformat.read(sys.argv[1], 4)
nbformat.validate(nb)
code = [c for c in nb.cells if c.cell_type == 'code']
assert nb.metadata.kernelspec.name == 'velua', nb.metadata.kernelspec
assert all(not c.outputs and c.execution_count is None for c in code), 'stored with outputs'
print('code cells', len(code))" %s]], q(nb)))
    assert.is_true(ok, out)
    assert.is_true(tonumber(out:match("code cells (%d+)")) >= 6, out)
  end)

  it("runs through the velua kernel without errors and returns its figures as SVG", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert.is_true(os.execute("mkdir -p " .. q(dir)))
    local ok, out = sh(string.format("bash %s %s", q(root .. "/scripts/jupyter/install_kernel.sh"),
      q(dir .. "/kernels/velua")))
    assert.is_true(ok, out)
    local t0 = os.time()
    -- errors are allowed in the run so that every cell's output can be checked and reported below
    ok, out = sh(string.format("cd %s && JUPYTER_PATH=%s LUA_PATH=%s LUA_CPATH=%s timeout 300 jupyter nbconvert " ..
      "--to notebook --execute --allow-errors --ExecutePreprocessor.timeout=240 --output-dir %s --output out.ipynb %s",
      q(root .. "/notebooks"), q(dir), q(root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;"),
      q(root .. "/build/?.so;;"), q(dir), q(nb)))
    assert.is_true(ok, out)
    local seconds = os.time() - t0
    local f = assert(io.open(dir .. "/summary.py", "w"))
    f:write(SUMMARY)
    f:close()
    ok, out = sh(string.format("/usr/bin/python3 %s %s %s", q(dir .. "/summary.py"), q(dir .. "/out.ipynb"), q(dir)))
    assert.is_true(ok, out)

    -- every code cell ran, none raised
    local cells, errors, text, svgs = 0, {}, {}, {}
    for line in out:gmatch("[^\n]+") do
      local kind, i, rest = line:match("^(%u+) (%d+) ?(.*)$")
      if kind == "CELL" then
        cells = cells + 1
        assert.is_truthy(rest:match("^%d+ "), "cell " .. i .. " was not executed: " .. line)
      elseif kind == "ERROR" then
        errors[#errors + 1] = "cell " .. i .. ": " .. rest
      elseif kind == "TEXT" then
        text[#text + 1] = rest
      elseif kind == "SVG" then
        svgs[#svgs + 1] = assert(io.open(rest)):read("a")
      end
    end
    assert.is_true(cells >= 6, out)
    assert.are.same({}, errors)
    local all = table.concat(text, "\n")

    -- the data: the shared pancreas file when present, else the simulator
    if pancreas then
      assert.is_truthy(all:find("data: pancreas, 739 cells x 7192 genes", 1, true), all)
      for _, cl in ipairs { "Ductal", "Ngn3 high EP", "Pre-endocrine", "Beta", "Alpha" } do
        local pattern = "\n" .. cl:gsub("%p", "%%%0") .. "%s+%d+ cells  confidence %-?%d%.%d%d%d"
        assert.is_truthy(all:find(pattern), cl .. " in\n" .. all)
      end
    else
      assert.is_truthy(all:find("data: simulated", 1, true), all)
    end
    assert.is_truthy(all:find("%d+ velocity genes; velocity graph with %d+ positive"), all)

    -- three figures (clusters, stream, confidence), each a whole SVG; the stream plot has its
    -- streamlines (round-joined paths) and arrowheads, the first one a legend of the clusters
    assert.are.equal(3, #svgs, out)
    for k, s in ipairs(svgs) do
      assert.is_truthy(s:find("^%s*<svg") and s:find("</svg>%s*$"), "figure " .. k .. " is not a whole SVG")
    end
    assert.is_truthy(svgs[1]:find(pancreas and ">Ductal<" or ">progenitor<", 1, true))
    local _, lines = svgs[2]:gsub('stroke%-linejoin="round"', "")
    assert.is_true(lines >= 1, "no streamlines in the stream plot")
    assert.is_truthy(svgs[2]:find("velocity stream", 1, true))
    assert.is_truthy(svgs[3]:find("velocity confidence", 1, true))
    assert.is_true(seconds <= 60, "the notebook took " .. seconds .. " s")
    os.execute("rm -rf " .. q(dir))
  end)
end)
