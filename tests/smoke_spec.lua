-- The module loads from the source tree and says which version it is.
describe("velua", function()
  it("loads and has a version string like 0.1.0", function()
    local velua = require "velua"
    assert.is_string(velua.version)
    assert.is_truthy(velua.version:match("^%d+%.%d+%.%d+$"), velua.version)
  end)
end)
