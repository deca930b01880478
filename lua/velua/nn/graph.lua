-- Graph convolution (Kipf & Welling; DGL's GraphConv) over a sparse CSR adjacency.
local T = require "velua.tensor"
local options = require "velua.options"
local Module = require "velua.nn.module"
local F = require "velua.nn.functional"

local NONE = options.NONE

-- GraphConv(in, out [, {norm="both", activation=nil, bias=true, gen=, dtype="f32"}]), called
-- as conv(adj, h) with adj a square SparseCSR [n, n] (self loops are the caller's choice) and
-- h [n, in]: out = N(adj) (h W) + b, then the activation. W [in, out] ~ Xavier uniform
-- (as DGL), b = 0. N(adj) is D^-1/2 A D^-1/2 for norm="both", D^-1 A for "right" (the mean
-- over neighbours) and A for "none", with D the row sums of A (for the symmetric adjacencies
-- of a GCN, row and column sums agree). activation: nil, "relu", "tanh", "sigmoid",
-- "softplus" or a function of a tensor.
local GraphConv = Module:extend("GraphConv")

local acts = { relu = F.relu, tanh = F.tanh, sigmoid = F.sigmoid, softplus = F.softplus }
local norms = { both = true, right = true, none = true }

function GraphConv:__init(i, o, opts)
  local op = options.check("GraphConv", opts, { norm = "both", activation = NONE, bias = true,
    gen = NONE, dtype = "f32" })
  for _, v in ipairs { i, o } do
    if math.type(v) ~= "integer" or v < 1 then
      error("GraphConv: in and out must be positive integers, got " .. tostring(v), 3)
    end
  end
  if not norms[op.norm] then
    error("GraphConv: norm must be \"both\", \"right\" or \"none\", got " .. tostring(op.norm), 3)
  end
  local act = op.activation
  if type(act) == "string" then
    if not acts[act] then error("GraphConv: unknown activation '" .. act .. "'", 3) end
    self.activation_name, act = act, acts[act]
  elseif act ~= nil and type(act) ~= "function" and not Module.is_module(act) then
    error("GraphConv: activation must be nil, a name or a function", 3)
  end
  self.activation = act
  self.in_feats, self.out_feats, self.norm = i, o, op.norm
  local bound = math.sqrt(6 / (i + o))
  local u = T.rand({ i, o }, { gen = op.gen, dtype = op.dtype })
  self:register_parameter("weight", u * (2 * bound) - bound)
  if op.bias then self:register_parameter("bias", T.zeros({ o }, { dtype = op.dtype })) end
end

-- Normalised adjacencies, cached per adjacency object (weak keys) and per norm and dtype.
local cache = setmetatable({}, { __mode = "k" })

-- A copy of s with value k scaled by f[column k] (f a dense vector of s's dtype).
local function scale_columns(s, f)
  local vals = s:values() * f:index(1, s:indices() + 1)
  return T.sparse_csr(s:indptr(), s:indices(), vals, s:shape())
end

-- GraphConv.normalize_adjacency(adj [, {norm="both", dtype=adj's}]): the SparseCSR
-- D^-1/2 A D^-1/2 ("both"), D^-1 A ("right") or A ("none") with values of dtype, computed
-- once per adjacency object. Rows with zero degree stay zero.
function GraphConv.normalize_adjacency(adj, opts)
  local o = options.check("normalize_adjacency", opts, { norm = "both", dtype = NONE })
  if not T.is_sparse(adj) then
    error("normalize_adjacency: a SparseCSR adjacency expected, got " .. type(adj), 2)
  end
  if not norms[o.norm] then
    error("normalize_adjacency: norm must be \"both\", \"right\" or \"none\", got " ..
      tostring(o.norm), 2)
  end
  local shape = adj:shape()
  if shape[1] ~= shape[2] then
    error(string.format("normalize_adjacency: the adjacency must be square, got {%d,%d}",
      shape[1], shape[2]), 2)
  end
  local dtype = o.dtype or adj:dtype()
  local per = cache[adj]
  if not per then per = {}; cache[adj] = per end
  local key = o.norm .. "/" .. dtype
  if per[key] then return per[key] end
  local a = adj
  if a:dtype() ~= dtype then a = a:to(dtype) end
  local out
  T.no_grad(function()
    if o.norm == "none" then
      out = a
    else
      local d = a:sum(2)
      local p = o.norm == "both" and -0.5 or -1
      local dinv = T.where(d:gt(0), d:pow(p), 0) -- inf where d = 0, dropped
      if o.norm == "both" then
        -- D A D = (column scaling of (column scaling of A)^T)^T
        out = scale_columns(scale_columns(a, dinv):transpose(), dinv):transpose()
      else
        out = scale_columns(a:transpose(), dinv):transpose()
      end
    end
  end)
  per[key] = out
  return out
end

function GraphConv:forward(adj, h)
  if not T.is_sparse(adj) then
    error("GraphConv: the first argument must be a SparseCSR adjacency, got " .. type(adj), 2)
  end
  if not T.is_tensor(h) or h:dim() ~= 2 or h:size(2) ~= self.in_feats then
    error(string.format("GraphConv: h must be [n, %d], got %s", self.in_feats,
      T.is_tensor(h) and "{" .. table.concat(h:shape(), ",") .. "}" or type(h)), 2)
  end
  local n = adj:shape()[2]
  if h:size(1) ~= n then
    error(string.format("GraphConv: h has %d rows but the adjacency is {%d,%d}", h:size(1),
      adj:shape()[1], n), 2)
  end
  local a = GraphConv.normalize_adjacency(adj, { norm = self.norm, dtype = h:dtype() })
  local out
  if self.in_feats > self.out_feats then
    out = a:matmul(h:matmul(self.weight))   -- multiply first: the sparse product is narrower
  else
    out = a:matmul(h):matmul(self.weight)
  end
  if self.bias then out = out + self.bias end
  if self.activation then out = self.activation(out) end
  return out
end

function GraphConv:extra_repr()
  local act = self.activation_name or (self.activation and tostring(self.activation)) or "nil"
  return string.format("in=%d, out=%d, norm=%s, activation=%s, bias=%s", self.in_feats,
    self.out_feats, self.norm, act, self.bias and "true" or "false")
end

return GraphConv
