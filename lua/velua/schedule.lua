-- velua.schedule: functions of the training step for annealing loss weights (KL warm-up, ...).
local M = {}

local function check(fname, from, to, n)
  if type(from) ~= "number" or type(to) ~= "number" then
    error(fname .. ": from and to must be numbers", 3)
  end
  if math.type(n) ~= "integer" or n < 1 then
    error(fname .. ": n must be a positive integer, got " .. tostring(n), 3)
  end
end

-- Position of step s (1-based) in [0, 1]: 0 at s <= 1, 1 at s >= n (1 throughout when n = 1).
local function progress(s, n)
  if type(s) ~= "number" then error("schedule: the step must be a number, got " .. type(s), 3) end
  if n == 1 then return 1 end
  return math.min(math.max((s - 1) / (n - 1), 0), 1)
end

-- linear(from, to, n): f(s) = from at step 1, to at step n and after, linear in between.
function M.linear(from, to, n)
  check("linear", from, to, n)
  return function(s) return from + (to - from) * progress(s, n) end
end

-- cosine(from, to, n): f(s) = from + (to - from) (1 - cos(pi u)) / 2 with u = (s-1)/(n-1)
-- clamped to [0, 1]: flat at both ends.
function M.cosine(from, to, n)
  check("cosine", from, to, n)
  return function(s)
    local u = progress(s, n)
    return from + (to - from) * (1 - math.cos(math.pi * u)) / 2
  end
end

-- constant(v): f(s) = v.
function M.constant(v)
  if type(v) ~= "number" then error("constant: a number expected", 2) end
  return function() return v end
end

return M
