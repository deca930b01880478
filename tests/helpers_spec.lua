-- The test helpers themselves: a wrong helper would make other specs pass for the wrong reason.
local h = require "support.helpers"

describe("support.helpers", function()
  it("repo_root finds the directory holding tests/support/helpers.lua", function()
    local root = h.repo_root()
    assert.are.equal("/", root:sub(1, 1))
    local f = assert(io.open(root .. "/tests/support/helpers.lua", "r"))
    f:close()
  end)

  it("shared_path returns an absolute path for a present file and handles a missing one", function()
    local root = h.repo_root()
    local shared = root:gsub("/[^/]+$", "") .. "/shared"
    local f = io.open(shared .. "/API.md", "r")
    if f then
      f:close()
      assert.are.equal(shared .. "/API.md", h.shared_path("API.md"))
    end
    local name = "no-such-file-" .. os.time() .. ".h5ad"
    if os.getenv("CI") and os.getenv("CI") ~= "" and os.getenv("CI") ~= "false" and os.getenv("CI") ~= "0" then
      assert.has_error(function() h.shared_path(name) end)
    else
      assert.is_nil(h.shared_path(name))
    end
  end)

  it("rss_kb grows when a large string is held", function()
    -- collect first, so that the allocation below cannot trigger a collection that frees
    -- earlier garbage and hides the growth
    collectgarbage("collect")
    collectgarbage("collect")
    local before = h.rss_kb()
    assert.is_number(before)
    collectgarbage("stop")
    local big = string.rep("x", 64 * 1024 * 1024)
    collectgarbage("restart")
    assert.is_true(h.rss_kb() - before > 32 * 1024, "RSS did not grow by 32 MB")
    big = nil -- luacheck: ignore
  end)

  it("approx_equal applies rtol and atol and reports the first mismatch", function()
    assert.is_true(h.approx_equal(1.0, 1.0 + 1e-7))
    assert.is_false(h.approx_equal(1.0, 1.001))
    assert.is_true(h.approx_equal(1.0, 1.001, 1e-2))
    assert.is_true(h.approx_equal(0, 1e-9))
    assert.is_true(h.approx_equal(0 / 0, 0 / 0))
    assert.is_false(h.approx_equal(0 / 0, 1))
    assert.is_true(h.approx_equal(math.huge, math.huge))
    assert.is_false(h.approx_equal(math.huge, -math.huge))
    assert.is_false(h.approx_equal(math.huge, 1e308))
    local ok, msg = h.approx_equal({ { 1, 2 }, { 3, 4 } }, { { 1, 2 }, { 3, 5 } })
    assert.is_false(ok)
    assert.matches("at %[2,2%]", msg)
    assert.is_false(h.approx_equal({ 1, 2 }, { 1, 2, 3 }))
  end)
end)
