-- busted output handler: one line per spec file as it starts, every failure and error with
-- name, message and traceback, and as the very last line "N passed, N failed[, N skipped]".
return function(options)
  local busted = require "busted"
  local handler = require "busted.outputHandlers.base"()
  local write = io.write

  local function message(m)
    if type(m) == "string" then return m end
    if m == nil then return "(no error message)" end
    return require("pl.pretty").write(m)
  end

  local function describe(kind, f)
    local trace = f.element.trace or f.trace or {}
    local where = trace.short_src and (trace.short_src .. ":" .. tostring(trace.currentline)) or "?"
    local tb = f.trace and f.trace.traceback
    write("\n", kind, ": ", f.name, "\n  at ", where, "\n", message(f.message), "\n")
    if tb then tb = tb:gsub("^%s+", ""):gsub("%s+$", "") end
    if tb and tb ~= "" then write(tb, "\n") end
  end

  handler.fileStart = function(file)
    write(file.name, "\n")
    io.flush()
    return nil, true
  end

  handler.suiteEnd = function()
    for _, f in ipairs(handler.failures) do describe("FAILED", f) end
    for _, f in ipairs(handler.errors) do describe("ERROR", f) end
    local line = string.format("%d passed, %d failed", handler.successesCount,
      handler.failuresCount + handler.errorsCount)
    if handler.pendingsCount > 0 then line = line .. string.format(", %d skipped", handler.pendingsCount) end
    write("\n", line, "\n")
    io.flush()
    return nil, true
  end

  busted.subscribe({ "file", "start" }, handler.fileStart)
  busted.subscribe({ "suite", "end" }, handler.suiteEnd)
  return handler
end
