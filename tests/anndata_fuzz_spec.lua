-- read_h5ad on damaged copies of small shared files (truncated, or with bytes flipped at many
-- offsets, many of them inside HDF5's own structures): every attempt must either load or raise
-- a Lua error naming the file, never crash or hang the process. The reads run in child lua5.4
-- processes, a batch per process; a child that dies mid-file is reported with the file it was
-- reading, and the rest of the batch goes on in a new child. Offsets come from a fixed seed.
local h = require "support.helpers"

local SOURCES = {
  "data/dentategyrus_cellrank/adata_50.h5ad",  -- current layout, contiguous datasets
  "data/dentategyrus_cellrank/adata_100.h5ad", -- anndata 0.7 layout, references, gzip
  "data/visium_squidpy/test_data.h5ad",        -- gzip, nested uns
}
local FLIPS_PER_FILE = 110
local TRUNCATIONS_PER_FILE = 14

local function read_all(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write_all(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- Offsets of HDF5 metadata worth hitting: signatures of B-tree nodes, heaps, symbol tables,
-- global heap collections, and the superblock.
local function metadata_offsets(bytes)
  local out = {}
  for _, sig in ipairs { "TREE", "HEAP", "SNOD", "GCOL", "OHDR", "OCHK", "FRHP", "BTHD" } do
    local i = 1
    while true do
      local at = bytes:find(sig, i, true)
      if not at then break end
      out[#out + 1] = at - 1
      i = at + 1
    end
  end
  return out
end

local function make_variants(dir, rel, bytes, tag)
  local variants = {}
  local size = #bytes
  local meta = metadata_offsets(bytes)
  for k = 1, TRUNCATIONS_PER_FILE do
    local len
    if k == 1 then len = 0 elseif k == 2 then len = 7 elseif k == 3 then len = 512
    else len = math.random(0, size - 1) end
    local p = string.format("%s/%s_trunc_%d.h5ad", dir, tag, len)
    write_all(p, bytes:sub(1, len))
    variants[#variants + 1] = p
  end
  for k = 1, FLIPS_PER_FILE do
    local off
    local r = math.random()
    if r < 0.15 then
      off = math.random(0, math.min(size, 2048) - 1)          -- superblock, root group
    elseif r < 0.65 and #meta > 0 then
      off = meta[math.random(#meta)] + math.random(0, 96)      -- inside a metadata block
    else
      off = math.random(0, size - 1)                          -- anywhere
    end
    off = math.min(off, size - 1)
    local n = math.random(1, 4)
    local chars = {}
    for j = 1, n do
      local old = bytes:byte(off + j) or 0
      chars[j] = string.char(old ~ math.random(1, 255))
    end
    local p = string.format("%s/%s_flip_%d_%d.h5ad", dir, tag, off, k)
    write_all(p, bytes:sub(1, off) .. table.concat(chars) .. bytes:sub(off + n + 1))
    variants[#variants + 1] = p
  end
  return variants
end

local CHILD = [[
local list = ...
local velua = require "velua"
for path in io.lines(list) do
  io.write("BEGIN ", path, "\n")
  io.flush()
  local ok, err = pcall(velua.read_h5ad, path, { check_timeout = 10 })
  if ok then
    io.write("OK ", path, "\n")
  else
    io.write("ERR ", path, " ", (tostring(err):gsub("\n", " ")), "\n")
  end
  io.flush()
end
io.write("DONE\n")
]]

-- Runs the reads of `paths` in child processes; returns results[path] = "OK" | "ERR msg" |
-- "CRASH status".
local function run_children(dir, paths)
  local script = dir .. "/child.lua"
  write_all(script, string.format("package.path = %q\npackage.cpath = %q\n", package.path,
    package.cpath) .. CHILD)
  local results = {}
  local start = 1
  while start <= #paths do
    local list = dir .. "/list.txt"
    write_all(list, table.concat(paths, "\n", start) .. "\n")
    local p = assert(io.popen(string.format("timeout 300 lua5.4 %s %s 2>&1; echo EXIT $?", script, list)))
    local current
    local done = false
    local status
    for line in p:lines() do
      local kind, rest = line:match("^(%u+) ?(.*)$")
      if kind == "BEGIN" then current = rest
      elseif kind == "OK" then results[rest] = "OK"; current = nil
      elseif kind == "ERR" then
        local path, msg = rest:match("^(%S+) (.*)$")
        results[path] = "ERR " .. msg
        current = nil
      elseif kind == "DONE" then done = true
      elseif kind == "EXIT" then status = rest end
    end
    p:close()
    if done then break end
    -- the child died (or hung) while reading `current`
    results[current or "?"] = "CRASH exit status " .. tostring(status)
    local idx
    for i = start, #paths do if paths[i] == current then idx = i end end
    if not idx then break end
    start = idx + 1
  end
  return results
end

describe("read_h5ad on damaged files", function()
  it("loads or raises a Lua error naming the file, and never crashes", function()
    local sources = {}
    for _, rel in ipairs(SOURCES) do
      local p = h.shared_path(rel)
      if p then sources[#sources + 1] = { rel, p } end
    end
    if #sources == 0 then return pending("../shared is not present") end
    math.randomseed(20240611)
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local paths = {}
    for i, s in ipairs(sources) do
      local bytes = read_all(s[2])
      for _, v in ipairs(make_variants(dir, s[1], bytes, "f" .. i)) do paths[#paths + 1] = v end
    end
    local t0 = os.time()
    local results = run_children(dir, paths)
    local problems, n_ok, n_err = {}, 0, 0
    for _, p in ipairs(paths) do
      local r = results[p]
      if r == "OK" then
        n_ok = n_ok + 1
      elseif r and r:find("^ERR ") then
        n_err = n_err + 1
        if not r:find("read_h5ad: ", 1, true) or not r:find(p, 1, true) then
          problems[#problems + 1] = p .. ": error does not name the file: " .. r
        end
      else
        problems[#problems + 1] = p .. ": " .. tostring(r or "no result")
      end
    end
    os.execute("rm -rf " .. dir)
    assert.are.equal(0, #problems, table.concat(problems, "\n"))
    assert.are.equal(#paths, n_ok + n_err)
    assert.is_true(n_err > #sources * TRUNCATIONS_PER_FILE / 2, "most damage is detected")
    assert.is_true(os.time() - t0 < 120, "took " .. (os.time() - t0) .. " s")
  end)
end)
