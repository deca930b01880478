-- velua command line: `velua run script.lua [args]`, `velua demo [outdir]`, `velua version`.
-- Run by the launcher build/bin/velua (and the installed `velua` command); M.main returns an exit code.
local M = {}

local USAGE = [[
usage: velua                         Lua 5.4 REPL with velua loaded (launcher only)
       velua run script.lua [args]   run a workflow script (global arg and ... hold args)
       velua demo [outdir]           run the built-in demo (default outdir ./velua-demo)
       velua version                 print the version
       velua help                    this message
]]

-- Error handler for xpcall: any error value becomes a message with a traceback.
local function traceback(e)
  if type(e) ~= "string" then
    local mt = getmetatable(e)
    e = (mt and mt.__tostring) and tostring(e) or ("(error object is a " .. type(e) .. " value)")
  end
  -- drop the frames of this file below the script's own
  return (debug.traceback(e, 2):gsub("\n%s*%[C%]: in function 'xpcall'.*$", ""))
end

-- xpcall during which Ctrl-C (SIGINT) raises "interrupted", also inside long C kernels.
-- Scripts run under the incremental collector: lua5.4 starts scripts in generational mode,
-- where a tensor that lives across a few collections (a per-epoch permutation, say) is
-- promoted and reclaimed only when memory doubles, so a training loop's resident memory
-- would creep; tensor storage is collector-visible, so incremental pacing keeps it flat.
-- It costs short steps nothing: after a collection (pause 200) the collector does no work until
-- as much as the live heap has been allocated again, which a step timed after collectgarbage()
-- does not reach (docs/benchmarks.md, "Collector mode and the preprocessing steps").
local function guarded(f, msgh, ...)
  collectgarbage("incremental")
  local ok, core = pcall(require, "velua.core")
  if ok and core.interrupt_call then return core.interrupt_call(f, msgh, ...) end
  return xpcall(f, msgh, ...)
end

local function fail(msg)
  io.stderr:write("velua: ", msg, "\n")
  return 1
end

local function run(args)
  local path = args[2]
  if not path then
    io.stderr:write(USAGE)
    return 2
  end
  local chunk, err = loadfile(path)
  if not chunk then return fail(err) end
  local script_args = { [0] = path, table.unpack(args, 3, #args) }
  _G.arg = script_args
  local ok, e = guarded(chunk, traceback, table.unpack(script_args, 1, #script_args))
  if not ok then return fail(e) end
  return 0
end

local function demo(args)
  local ok, e = guarded(function() return require("velua.demo").run { outdir = args[2] } end, traceback)
  if not ok then return fail(e) end
  return 0
end

local function version()
  local ok, e = xpcall(function() return require("velua").version end, traceback)
  if not ok then return fail(e) end
  print("velua " .. e .. " (" .. _VERSION .. ")")
  return 0
end

local commands = {
  run = run, demo = demo,
  version = version, ["--version"] = version,
  help = function() io.write(USAGE); return 0 end,
}
commands["--help"], commands["-h"] = commands.help, commands.help

function M.main(args)
  args = args or {}
  local cmd = commands[args[1]]
  if not cmd then
    if args[1] then io.stderr:write("velua: unknown command '", tostring(args[1]), "'\n") end
    io.stderr:write(USAGE)
    return 2
  end
  return cmd(args)
end

-- Run as a script (`lua5.4 .../velua/cli.lua args`), not through require("velua.cli").
if arg and type(arg[0]) == "string" and arg[0]:match("cli%.lua$") and ... ~= "velua.cli" then
  os.exit(M.main(arg))
end

return M
