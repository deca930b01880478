-- velua.metrics: quality measures of embeddings. trustworthiness follows
-- sklearn.manifold.trustworthiness (Euclidean); the O(n^2) rank work is C
-- (csrc/core/trustworthiness.c).
local core = require "velua.core"
local options = require "velua.options"
local T = require "velua.tensor"

local M = {}

local function as_matrix(name, x)
  if T.is_sparse(x) then x = x:to_dense() end
  if not T.is_tensor(x) then
    error(string.format("trustworthiness: %s must be a 2-d tensor, got %s", name, type(x)), 3)
  end
  if x:dim() ~= 2 then
    error(string.format("trustworthiness: %s must be a 2-d tensor, got %d-d", name, x:dim()), 3)
  end
  return x
end

-- trustworthiness(X [n, d], Y [n, e], {n_neighbors=5}): how far the k nearest neighbours of
-- each point in the embedding Y are from being its k nearest in X,
--   1 - 2 / (n k (2n - 3k - 1)) * sum_i sum_{j in N_k^Y(i)} max(0, r(i, j) - k),
-- r(i, j) the rank of j by Euclidean distance to i in X. 1 when Y keeps every neighbourhood.
-- n_neighbors must be below n / 2 (sklearn's check). Distances are exact in f64; ties go to the
-- lower index.
function M.trustworthiness(X, Y, opts)
  local o = options.check("trustworthiness", opts, { n_neighbors = 5 })
  X, Y = as_matrix("X", X), as_matrix("Y", Y)
  local n = X:shape()[1]
  if Y:shape()[1] ~= n then
    error(string.format("trustworthiness: X has %d rows but Y has %d", n, Y:shape()[1]), 2)
  end
  local k = o.n_neighbors
  if math.type(k) ~= "integer" or k < 1 then
    error("trustworthiness: n_neighbors must be a positive integer, got " .. tostring(k), 2)
  end
  if k >= n / 2 then
    error(string.format("trustworthiness: n_neighbors (%d) should be less than n_samples / 2 (%g)",
      k, n / 2), 2)
  end
  return core.trustworthiness(X, Y, k)
end

return M
