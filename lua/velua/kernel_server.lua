-- The Lua side of the velua Jupyter kernel (scripts/jupyter/velua_kernel.py drives it).
-- Requests arrive on stdin, replies go to the file descriptor named by VELUA_KERNEL_FD, both as
-- frames "<KIND> <nbytes>\n<payload>". Requests: EXEC (code), COMPLETE (code up to the cursor).
-- Replies: STREAM (printed text), RESULT (tostring of the value of the cell when it is an
-- expression, of its `return`, or of a bare expression on its last line), SVG
-- (a figure), ERROR (message and traceback), MATCHES (completions, one per line), DONE.
-- State persists across cells in one environment with velua and T = velua.tensor loaded.
-- Interrupts: a cell runs under core.interrupt_call, so a SIGINT (Jupyter's "interrupt kernel")
-- ends it with the Lua error "interrupted" (long C kernels stop between blocks, Lua loops at
-- their next instruction) and the state stays; between cells SIGINT is ignored.
local core = require "velua.core"
local M = {}

local function read_frame(input)
  local header = input:read("l")
  if not header then return nil end
  local kind, n = header:match("^(%u+) (%d+)$")
  if not kind then error("kernel: bad frame header '" .. header .. "'") end
  return kind, input:read(tonumber(n)) or ""
end

local function make_writer(out)
  return function(kind, payload)
    payload = payload or ""
    out:write(kind, " ", #payload, "\n", payload)
    out:flush()
  end
end

-- completions for the identifier chain ending at the cursor: "T.ra" -> T.rand, T.randn, ...
local function complete(env, code)
  local chain = code:match("([%w_%.:]*)$") or ""
  local base, sep, partial = chain:match("^(.-)([%.:]?)([%w_]*)$")
  local scope = env
  if sep ~= "" then
    scope = env
    for part in base:gmatch("[^%.:]+") do
      if type(scope) ~= "table" and type(scope) ~= "userdata" then return {} end
      local ok, v = pcall(function() return scope[part] end)
      if not ok then return {} end
      scope = v
    end
  end
  local seen, out = {}, {}
  local function add_keys(t)
    if type(t) ~= "table" then return end
    for k in pairs(t) do
      if type(k) == "string" and k:sub(1, #partial) == partial and not seen[k] then
        seen[k] = true
        out[#out + 1] = k
      end
    end
  end
  if type(scope) == "table" then add_keys(scope) end
  local mt = getmetatable(scope)
  if type(mt) == "table" then
    add_keys(type(mt.__index) == "table" and mt.__index or nil)
  end
  if type(scope) == "userdata" then
    local velua = env.velua
    if velua and velua.tensor.is_tensor(scope) then add_keys(velua.tensor.methods) end
  end
  if scope == env then add_keys(_G) end
  table.sort(out)
  for i, k in ipairs(out) do out[i] = base .. sep .. k end
  return out, #chain
end

function M.serve(input, output)
  local send = make_writer(output)
  local velua = require "velua"
  local env = setmetatable({ velua = velua, T = velua.tensor }, { __index = _G })
  env.print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    send("STREAM", table.concat(parts, "\t") .. "\n")
  end
  env.io = setmetatable({ write = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    send("STREAM", table.concat(parts))
    return env.io
  end }, { __index = io })
  velua.progress.set_display(function(line, final) send("STREAM", "\r" .. line .. (final and "\n" or "")) end)

  while true do
    local kind, payload = read_frame(input)
    if not kind then break end
    if kind == "EXEC" then
      -- an expression first (its value is shown), else a chunk
      local fn = load("return " .. payload, "=cell", "t", env)
      if not fn then
        local err
        fn, err = load(payload, "=cell", "t", env)
        if not fn then
          -- statements ending in a bare expression ("ad = ...\nad"), as in IPython
          local head, last = payload:gsub("%s+$", ""):match("^(.*\n)[ \t]*([^\n]*)$")
          fn = head and last ~= "" and load(head .. "return " .. last, "=cell", "t", env)
          if not fn then send("ERROR", err) end
        end
      end
      if fn then
        -- level 3: above this handler and interrupt_call's own C handler
        local res = table.pack(core.interrupt_call(fn, function(e) return debug.traceback(tostring(e), 3) end))
        if not res[1] then
          local tb = tostring(res[2]):gsub("\n[^\n]*velua%.core%.interrupt_call.*$", "")
            :gsub("\n[^\n]*kernel_server%.lua.*$", "")
          send("ERROR", tb)
        else
          for i = 2, res.n do
            local v = res[i]
            local mt = getmetatable(v)
            if type(mt) == "table" and type(mt.__index) == "table" and mt.__index._repr_svg_ then
              send("SVG", v:_repr_svg_())
            elseif v ~= nil or res.n == 2 then
              if v ~= nil then send("RESULT", tostring(v)) end
            end
          end
        end
      end
      send("DONE")
    elseif kind == "COMPLETE" then
      local matches, len = complete(env, payload)
      send("MATCHES", tostring(len or 0) .. "\n" .. table.concat(matches, "\n"))
    elseif kind == "QUIT" then
      break
    end
  end
end

if arg and arg[0] and arg[0]:match("kernel_server%.lua$") then
  local fd = os.getenv("VELUA_KERNEL_FD")
  local out = fd and assert(io.open("/dev/fd/" .. fd, "w")) or io.stdout
  core.interrupt_ignore() -- an interrupt that arrives between cells must not end the kernel
  M.serve(io.stdin, out)
end

return M
