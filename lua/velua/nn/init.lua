-- velua.nn: modules (Module, Linear, ReLU, Softplus, Dropout, BatchNorm1d, Sequential, MLP,
-- GraphConv) and, in nn.functional (alias nn.F), losses. See docs/nn.md.
local Module = require "velua.nn.module"
local L = require "velua.nn.layers"
local F = require "velua.nn.functional"

local nn = {
  Module = Module,
  is_module = Module.is_module,
  functional = F,
  F = F,
  GraphConv = require "velua.nn.graph",
}
for _, name in ipairs { "Linear", "ReLU", "Tanh", "Sigmoid", "Identity", "Softplus", "Dropout",
                        "BatchNorm1d", "Sequential", "MLP" } do
  nn[name] = L[name]
end

return nn
