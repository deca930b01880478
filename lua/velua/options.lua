-- Checking of the options tables that public functions take as their last argument:
-- unknown names are an error, so a typo never passes silently.
local M = {}

-- Returns opts (or an empty table) after checking that every key is in `defaults`;
-- missing keys are filled from `defaults` in the returned copy.
function M.check(fname, opts, defaults)
  local out = {}
  if opts ~= nil then
    if type(opts) ~= "table" then
      error(string.format("%s: options must be a table, got %s", fname, type(opts)), 3)
    end
    for k, v in pairs(opts) do
      if defaults[k] == nil then
        local names = {}
        for name in pairs(defaults) do names[#names + 1] = name end
        table.sort(names)
        error(string.format("%s: unknown option '%s' (known: %s)", fname, tostring(k),
          table.concat(names, ", ")), 3)
      end
      out[k] = v
    end
  end
  for k, v in pairs(defaults) do
    if out[k] == nil and v ~= M.NONE then out[k] = v end
  end
  return out
end

-- Marker for an option with no default (nil after check).
M.NONE = setmetatable({}, { __tostring = function() return "none" end })

return M
