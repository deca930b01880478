-- velua.tl: analysis tools over an AnnData (scVelo's tl): velocity, the velocity graph and
-- what is derived from it, UMAP, DeepVelo. Each function lives in its own file under
-- velua/tl/ and is loaded on first use; results go into the AnnData under scVelo's keys.
local where = {
  velocity = "velua.tl.velocity",
  velocity_genes = "velua.tl.velocity",
  velocity_graph = "velua.tl.velocity_graph",
  transition_matrix = "velua.tl.transition",
  velocity_embedding = "velua.tl.embedding",
  velocity_confidence = "velua.tl.scores",
  velocity_confidence_transition = "velua.tl.scores",
  consistency = "velua.tl.consistency",
  reconstructability = "velua.tl.scores",
  mann_whitney_u = "velua.tl.consistency",
  velocity_grid = "velua.tl.grid",
  grid_cosine = "velua.tl.grid",
  umap = "velua.tl.umap",
  deepvelo = "velua.tl.deepvelo",
}

local M = {}

function M.names()
  local out = {}
  for k in pairs(where) do out[#out + 1] = k end
  table.sort(out)
  return out
end

return setmetatable(M, {
  __index = function(t, key)
    local file = where[key]
    if file == nil then return nil end
    local fn = require(file)[key]
    if fn == nil then error("velua.tl: " .. file .. " does not define " .. key, 2) end
    rawset(t, key, fn)
    return fn
  end,
})
