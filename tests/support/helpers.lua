-- Small helpers shared by the specs: paths, memory use and tolerant comparison.
local M = {}

-- Absolute path of the repository root, found from this file's own location.
function M.repo_root()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local dir = src:match("^(.*)/tests/support/[^/]*$") or "."
  if dir:sub(1, 1) ~= "/" then
    local ok, lfs = pcall(require, "lfs")
    local cwd = ok and lfs.currentdir() or os.getenv("PWD") or "."
    dir = (dir == "." or dir == "") and cwd or (cwd .. "/" .. dir:gsub("^%./", ""))
  end
  return dir
end

local function ci()
  local v = os.getenv("CI")
  return v ~= nil and v ~= "" and v ~= "false" and v ~= "0"
end

-- Absolute path of `rel` under ../shared beside the repository. If the file is missing this
-- returns nil locally (the caller skips) but raises in CI, where a skip would hide a gap.
function M.shared_path(rel)
  local p = M.repo_root():gsub("/[^/]+$", "") .. "/shared/" .. rel
  local f = io.open(p, "rb")
  if f then f:close(); return p end
  if ci() then error("missing shared file " .. p .. " (required when CI is set)", 2) end
  return nil
end

-- For a test whose tool is missing (`why` says which; `bash scripts/setup.sh test` installs it):
-- marks it pending locally, raises in CI, where a skip would hide a gap.
function M.missing_tool(why)
  if ci() then error("missing test tool: " .. why .. " (required when CI is set)", 2) end
  return pending("skipped: " .. why)
end

-- Can /usr/bin/python3 import `modules` (as written after `import`, e.g. "anndata, scipy")?
function M.python_has(modules)
  local py = io.popen("/usr/bin/python3 -c 'import " .. modules .. "' 2>/dev/null && echo ok")
  local out = py and py:read("l")
  if py then py:close() end
  return out == "ok"
end

-- Resident set size of this process in kB (nil where /proc is not available).
function M.rss_kb()
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

-- True when |a - b| <= atol + rtol * |b| for numbers, or elementwise for nested tables of
-- equal shape; NaN matches NaN, an infinity only itself. On a mismatch returns false and a message naming the first
-- differing element, so `assert(h.approx_equal(x, y))` explains itself.
function M.approx_equal(a, b, rtol, atol, where)
  rtol, atol, where = rtol or 1e-5, atol or 1e-8, where or ""
  if type(a) == "table" and type(b) == "table" then
    if #a ~= #b then
      return false, string.format("length %d vs %d at [%s]", #a, #b, where)
    end
    for i = 1, #a do
      local ok, msg = M.approx_equal(a[i], b[i], rtol, atol, where == "" and tostring(i) or where .. "," .. i)
      if not ok then return false, msg end
    end
    return true
  end
  if type(a) ~= "number" or type(b) ~= "number" then
    return false, string.format("%s vs %s at [%s]", type(a), type(b), where)
  end
  if a == b or (a ~= a and b ~= b) then return true end
  -- an infinity matches only itself (the test above); without this inf - (-inf) <= rtol * inf
  if math.abs(a) ~= math.huge and math.abs(b) ~= math.huge and math.abs(a - b) <= atol + rtol * math.abs(b) then
    return true
  end
  return false, string.format("%.17g vs %.17g at [%s] (rtol %g, atol %g)", a, b, where, rtol, atol)
end

-- Matrix comparisons for the oracle specs: dense f64 copies (CSR densified), the largest
-- absolute difference, and that difference relative to max |b|.
function M.dense64(m)
  local T = require("velua").tensor
  if T.is_sparse(m) then m = m:to_dense() end
  return m:to("f64")
end

function M.abs_err(a, b) return (M.dense64(a) - M.dense64(b)):abs():max():item() end

function M.rel_err(a, b)
  a, b = M.dense64(a), M.dense64(b)
  local scale = b:abs():max():item()
  return (a - b):abs():max():item() / (scale > 0 and scale or 1)
end

return M
