-- velua.help: comments above Lua functions, docs lines for C functions and names.
local velua = require "velua"

describe("velua.help", function()
  local function quiet(x)
    local old = print
    print = function() end -- luacheck: ignore
    local ok, r = pcall(velua.help, x)
    print = old -- luacheck: ignore
    assert.is_true(ok, r)
    return r
  end
  it("shows the comment above a Lua function", function()
    local text = quiet(velua.tensor.arange)
    assert.is_truthy(text:find("function T.arange", 1, true), text)
    assert.is_truthy(text:find("half", 1, true) or text:find("PyTorch", 1, true), text)
  end)
  it("finds C functions and names in the docs", function()
    assert.is_truthy(quiet(velua.tensor.matmul):find("matmul", 1, true))
    assert.is_truthy(quiet("clip_grad_norm"):find("clip_grad_norm", 1, true))
  end)
  it("summarises tables and says when nothing is known", function()
    assert.is_truthy(quiet(velua.progress):find("new()", 1, true))
    assert.is_truthy(quiet("no_such_name_xyz"):find("no documentation", 1, true))
  end)
end)
