-- Shared pieces of the bench/ scripts: the recorded scVelo reference timings of
-- ../shared/oracle, best-of-N timing on fresh copies, resident memory and the machine line.
local velua = require "velua"
local T = velua.tensor

local M = {}

local function helpers()
  local ok, m = pcall(require, "support.helpers")
  if ok then return m end
  package.path = "tests/?.lua;" .. package.path
  return require "support.helpers"
end
M.helpers = helpers()

function M.read_file(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function M.machine()
  local cpu = (M.read_file("/proc/cpuinfo") or ""):match("model name%s*:%s*([^\n]+)") or "unknown CPU"
  local ncpu = 0
  for _ in (M.read_file("/proc/cpuinfo") or ""):gmatch("processor%s*:") do ncpu = ncpu + 1 end
  local load = (M.read_file("/proc/loadavg") or "?"):match("^(%S+ %S+ %S+)") or "?"
  return string.format("%s, %d vCPU, load %s, %d velua threads", cpu, ncpu, load, velua.get_num_threads())
end

-- Resident and peak resident memory of this process in MiB.
function M.rss()
  local s = M.read_file("/proc/self/status") or ""
  local cur = tonumber(s:match("VmRSS:%s*(%d+)")) or 0
  local peak = tonumber(s:match("VmHWM:%s*(%d+)")) or 0
  return cur / 1024, peak / 1024
end

-- Recorded reference seconds {dataset -> {step -> best}} from the oracle CSVs.
function M.load_reference()
  local ref = {}
  local function add(ds, step, secs)
    ref[ds] = ref[ds] or {}
    ref[ds][step] = tonumber(secs)
  end
  for _, name in ipairs { "pancreas_scvelo_seconds.csv", "dentategyrus100_scvelo_seconds.csv" } do
    local p = M.helpers.shared_path("oracle/" .. name)
    local s = p and M.read_file(p)
    if s then
      for line in s:gmatch("[^\n]+") do
        local ds, step, secs = line:match('^([^,]+),"([^"]+)",%d+,%d+,([%d.]+)')
        if ds then add(ds, step, secs) end
      end
    end
  end
  local p = M.helpers.shared_path("oracle/scvelo_timings.csv")
  local s = p and M.read_file(p)
  if s then
    for line in s:gmatch("[^\n]+") do
      local ds, step, secs = line:match("^([^,]+),%d+,%d+,(.+),([%d.]+),%d+$")
      if ds and ds ~= "dataset" then add(ds, step, secs) end
    end
  end
  return ref
end

-- A copy of an AnnData deep enough that a step cannot touch the original.
function M.copy(ad)
  if type(ad.copy) == "function" then return ad:copy() end
  local t = {}
  for k, v in pairs(ad) do
    if type(v) == "table" and not T.is_sparse(v) and not T.is_tensor(v) then
      local c = {}
      for kk, vv in pairs(v) do c[kk] = vv end
      t[k] = c
    else
      t[k] = v
    end
  end
  return t
end

-- Best of `repeats` runs of fn(copy of state) -> best seconds, last result.
function M.best_of(repeats, state, fn)
  local best, out = math.huge, nil
  for _ = 1, repeats do
    local c = M.copy(state)
    collectgarbage()
    local t0 = velua.now()
    out = fn(c)
    best = math.min(best, velua.now() - t0)
  end
  return best, out
end

return M
