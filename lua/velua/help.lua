-- velua.help(x): documentation at the REPL. For a Lua function, the comment block right above
-- its definition in the source; for a C function or a name (string), the lines of docs/*.md
-- that mention it; for tables and tensors, a summary of what they hold.
local M = {}

local function docs_dir()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local root = src:match("^(.*)lua/velua/help%.lua$")
  if not root then return nil end
  root = root:gsub("/$", "")
  return (root == "" and "." or root) .. "/docs"
end

local function comment_above(fn)
  local info = debug.getinfo(fn, "S")
  if info.what ~= "Lua" or not info.source:match("^@") then return nil end
  -- autograd's wrappers say nothing about the function they wrap
  if info.source:match("velua/autograd%.lua$") then return nil end
  local f = io.open(info.source:sub(2))
  if not f then return nil end
  local lines = {}
  for line in f:lines() do lines[#lines + 1] = line end
  f:close()
  local out = {}
  local i = info.linedefined - 1
  while i >= 1 and lines[i]:match("^%s*%-%-") do
    table.insert(out, 1, (lines[i]:gsub("^%s*%-%-%s?", "")))
    i = i - 1
  end
  local signature = lines[info.linedefined] and lines[info.linedefined]:gsub("^%s+", "")
  if #out == 0 then return signature end
  return signature .. "\n" .. table.concat(out, "\n")
end

-- the lines of the docs that mention `name` (as `name(` or `:name` or `.name`)
local function from_docs(name)
  local dir = docs_dir()
  if not dir then return nil end
  local hits = {}
  local p = io.popen('ls "' .. dir .. '"/*.md 2>/dev/null')
  for file in p:lines() do
    local f = io.open(file)
    if f then
      for line in f:lines() do
        if line:find("[%.:`]" .. name .. "[%(`%s,]") or line:find("^%- `" .. name) then
          hits[#hits + 1] = file:match("([^/]+)$") .. ": " .. line
          if #hits >= 12 then break end
        end
      end
      f:close()
    end
  end
  p:close()
  return #hits > 0 and table.concat(hits, "\n") or nil
end

local function name_of(fn)
  local velua = require "velua"
  local T = velua.tensor
  for _, space in ipairs { { T, "" }, { T.methods, "" } } do
    for k, v in pairs(space[1]) do
      if v == fn then return k end
    end
  end
  return nil
end

function M.help(x)
  local text
  if type(x) == "function" then
    text = comment_above(x)
    if not text then
      local name = name_of(x)
      text = name and from_docs(name)
    end
  elseif type(x) == "string" then
    text = from_docs(x)
  elseif type(x) == "table" then
    local keys = {}
    for k, v in pairs(x) do
      if type(k) == "string" and not k:match("^_") then keys[#keys + 1] = k .. (type(v) == "function" and "()" or "") end
    end
    table.sort(keys)
    text = "table with: " .. table.concat(keys, ", ")
  elseif x ~= nil then
    text = tostring(x)
  end
  text = text or "no documentation found (see docs/ and ../shared/API.md)"
  print(text)
  return text
end

return M
