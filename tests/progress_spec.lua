-- velua.progress: rendering with a fake clock and stream, silence when disabled or not
-- interactive, notebook display hook.
local progress = require("velua").progress

local function fake_stream()
  local s = { out = {} }
  function s:write(x) self.out[#self.out + 1] = x end
  function s:flush() end
  return s
end

describe("progress bar", function()
  it("shows percentage, counts, elapsed, ETA and rate, redrawing in place", function()
    local t = 0
    local stream = fake_stream()
    local bar = progress.new(10, { desc = "epochs", enabled = true, stream = stream, width = 10,
      clock = function() return t end, min_interval = 0 })
    t = 4
    bar:update(2, { loss = 0.123456 })
    local line = stream.out[#stream.out]
    assert.are.equal("\r" .. "epochs:  20%|##........| 2/10 [00:04<00:16, 2.00 s/it, loss=0.1235]\27[K", line)
    t = 20
    bar:update(8)
    assert.is_truthy(stream.out[#stream.out]:find("100%|##########| 10/10 [00:20<00:00, 2.00 s/it", 1, true))
    bar:close()
    assert.are.equal("\n", stream.out[#stream.out])
  end)

  it("throttles redraws but always draws the end", function()
    local t = 0
    local stream = fake_stream()
    local bar = progress.new(100, { enabled = true, stream = stream, clock = function() return t end })
    for _ = 1, 99 do t = t + 0.001; bar:update() end
    local draws = #stream.out
    assert.is_true(draws <= 2, "drew " .. draws .. " times in 0.1 s")
    bar:update()
    assert.is_truthy(stream.out[#stream.out]:find("100/100", 1, true))
  end)

  it("is silent when disabled or when the stream is not a terminal", function()
    local stream = fake_stream()
    local bar = progress.new(5, { enabled = false, stream = stream })
    for _ = 1, 5 do bar:update() end
    bar:close()
    assert.are.equal(0, #stream.out)
    local auto = progress.new(5, { stream = stream }) -- a custom stream is never a terminal
    auto:update(5)
    auto:close()
    assert.are.equal(0, #stream.out)
  end)

  it("sends lines to a notebook display function, and counts without a total", function()
    local shown = {}
    local bar = progress.new(nil, { display = function(line, final) shown[#shown + 1] = { line, final } end,
      min_interval = 0 })
    bar:update(3)
    bar:close()
    assert.is_truthy(shown[1][1]:find("^3 %["))
    assert.is_true(shown[#shown][2])
  end)

  it("iterates with range and rejects bad input", function()
    local sum = 0
    for i in progress.range(4, { enabled = false }) do sum = sum + i end
    assert.are.equal(10, sum)
    assert.is_false(pcall(progress.new, -1))
    assert.is_false(pcall(progress.new, 3, { colour = "red" }))
    local bar = progress.new(1, { enabled = false })
    bar:close()
    assert.is_false(pcall(bar.update, bar))
  end)
end)
