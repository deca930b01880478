-- DeepVelo (SPEC section 4; DeepVelo 0.2.8's default model and loss): a three-layer graph
-- convolutional network over a kNN graph of the cells predicts cell-specific splicing and
-- degradation rates, trained full batch with a continuity loss (each cell's velocity should
-- point to the candidate cells ahead of it and away from those behind it) and a per-gene
-- direction term. Every piece is exposed so that a script can swap layers, losses or the
-- schedule: the graph builders, the model class, the loss functions and the training loop.
local core = require "velua.core"
local options = require "velua.options"
local T = require "velua.tensor"
local nn = require "velua.nn"
local optim = require "velua.optim"

local M = {}
local NONE = options.NONE

-- ---------- graph ----------

-- pca_knn(x [n, g], {n_pcs=30, k=30, knn_method="auto", approx_threshold=nil, seed=0}):
-- the k nearest cells (self first, 1-based i64 [n, k]) in a PCA of x (mean-centred, not
-- logged: DeepVelo takes the PCA of Ms itself), and the PCA scores [n, n_pcs] (f32).
function M.pca_knn(x, opts)
  local o = options.check("pca_knn", opts, { n_pcs = 30, k = 30, knn_method = "auto",
    approx_threshold = NONE, seed = 0 })
  if not T.is_tensor(x) or x:dim() ~= 2 then error("pca_knn: x must be a 2-d tensor", 2) end
  local n, g = x:size(1), x:size(2)
  local npc = math.min(o.n_pcs, n, g)
  if math.type(o.k) ~= "integer" or o.k < 1 or o.k > n then
    error(string.format("pca_knn: k = %s must be an integer in [1, n = %d]", tostring(o.k), n), 2)
  end
  local scores = core.pca_dense(x, npc)
  scores = scores:to("f32")
  local idx = require("velua.pp.neighbors").knn(scores, o.k, { method = o.knn_method,
    approx_threshold = o.approx_threshold, seed = o.seed })
  return idx, scores
end

-- graph(idx [n, >= k], k=20): DeepVelo's cell graph as a SparseCSR [n, n] of edge counts:
-- an edge i -> j for each of the first k entries j of row i (self included), and every
-- reverse edge, as a multigraph (a self loop counts twice, a mutual pair twice). f32 values.
function M.graph(idx, k)
  k = k or 20
  if not T.is_tensor(idx) or idx:dim() ~= 2 or idx:dtype() ~= "i64" then
    error("graph: idx must be a 2-d i64 tensor of 1-based neighbour indices", 2)
  end
  local n = idx:size(1)
  if math.type(k) ~= "integer" or k < 1 or k > idx:size(2) then
    error(string.format("graph: k = %s must be an integer in [1, %d]", tostring(k), idx:size(2)), 2)
  end
  local rows = idx:narrow(2, 1, k):contiguous():totable()
  -- C (one entry per directed edge) plus its transpose, duplicates summed
  local adj = {}
  for i = 1, n do adj[i] = {} end
  for i = 1, n do
    local r = rows[i]
    for t = 1, k do
      local j = r[t]
      if j < 1 or j > n then
        error(string.format("graph: neighbour index %d of cell %d out of range [1, %d]", j, i, n), 2)
      end
      adj[i][j] = (adj[i][j] or 0) + 1
      adj[j][i] = (adj[j][i] or 0) + 1
    end
  end
  local indptr, indices, values = { 0 }, {}, {}
  for i = 1, n do
    local cols = {}
    for j in pairs(adj[i]) do cols[#cols + 1] = j end
    table.sort(cols)
    for _, j in ipairs(cols) do
      indices[#indices + 1] = j - 1
      values[#values + 1] = adj[i][j]
    end
    indptr[i + 1] = #indices
  end
  return T.sparse_csr(indptr, indices, values, { n, n })
end

-- candidates(idx [n, >= k + 1], k=29): the k nearest cells other than self (columns
-- 2 .. k + 1 of a self-first neighbour list), contiguous i64 [n, k].
function M.candidates(idx, k)
  k = k or 29
  if not T.is_tensor(idx) or idx:dim() ~= 2 or idx:size(2) < k + 1 then
    error(string.format("candidates: idx must be [n, >= %d]", k + 1), 2)
  end
  return idx:narrow(2, 2, k):contiguous()
end

-- ---------- model ----------

-- dropout(x, p [, {training=true, gen=}]): inverted dropout as nn.F.dropout, with the same
-- draws and results bit for bit, fused into one C pass (the keep mask is stored as bytes for
-- the backward pass; csrc/core/dropout.c). The identity when not training or p = 0.
local drop_keep = setmetatable({}, { __mode = "k" })
local dropout_op = T.def_differentiable("dropout_fused", function(x, p, gen)
  local out, keep = core.dropout_forward(x, p, gen)
  drop_keep[out] = keep
  return out
end, function(g, a, out)
  local keep = drop_keep[out]
  drop_keep[out] = nil
  if keep == nil then
    error("dropout: the mask of this output was already used by an earlier backward() " ..
      "(retain_graph is not supported)", 0)
  end
  return core.dropout_backward(g, keep, a[2])
end, "")

function M.dropout(x, p, opts)
  local o = options.check("dropout", opts, { training = true, gen = NONE })
  if not T.is_tensor(x) then error("dropout: x must be a tensor, got " .. type(x), 2) end
  if type(p) ~= "number" or p < 0 or p > 1 then
    error("dropout: p must be a number in [0, 1], got " .. tostring(p), 2)
  end
  if not o.training or p == 0 then return x end
  if p == 1 then return x * 0 end
  local dt = x:dtype()
  if dt ~= "f32" and dt ~= "f64" then error("dropout: x must be f32 or f64, got " .. dt, 2) end
  return dropout_op(x:contiguous(), p, o.gen or T.default_generator())
end

-- Dropout(p=0.5 [, {gen=}]): the module form of M.dropout (nn.Dropout's behaviour).
local Dropout = nn.Module:extend("FusedDropout")
M.Dropout = Dropout

function Dropout:__init(p, opts)
  local o = options.check("FusedDropout", opts, { gen = NONE })
  p = p == nil and 0.5 or p
  if type(p) ~= "number" or p < 0 or p > 1 then
    error("FusedDropout: p must be a number in [0, 1], got " .. tostring(p), 3)
  end
  self.p, self.gen = p, o.gen
end

function Dropout:forward(x)
  return M.dropout(x, self.p, { training = self.training, gen = self.gen })
end

function Dropout:extra_repr() return string.format("p=%g", self.p) end

-- Model(n_genes, {layers={64, 64}, dropout=0.2, pred_unspliced=false, activation="relu",
-- gen=nil, dtype="f32"}): GraphConv(2G -> layers[1]) -> ... -> GraphConv(-> 2G, or 3G with
-- pred_unspliced), ReLU after every convolution but the last and dropout after every one
-- (the last included), as DeepVelo's VeloGCN. Called as model(adj, u, s) with u, s [n, G]
-- (input features [u, s]); returns the velocity and a table of the rates:
-- beta = out[:, 1..G], gamma = out[:, G+1..2G] and v = beta u + gamma s; with pred_unspliced
-- also alpha = out[:, 2G+1..3G] and v = [beta u - gamma s, alpha - beta u] ([n, 2G]).
local Model = nn.Module:extend("DeepVeloGCN")
M.Model = Model

function Model:__init(n_genes, opts)
  local o = options.check("DeepVeloGCN", opts, { layers = { 64, 64 }, dropout = 0.2,
    pred_unspliced = false, activation = "relu", gen = NONE, dtype = "f32" })
  if math.type(n_genes) ~= "integer" or n_genes < 1 then
    error("DeepVeloGCN: n_genes must be a positive integer, got " .. tostring(n_genes), 3)
  end
  if type(o.layers) ~= "table" or #o.layers < 1 then
    error("DeepVeloGCN: layers must be a non-empty list of widths", 3)
  end
  self.n_genes, self.pred_unspliced = n_genes, o.pred_unspliced
  local widths = { 2 * n_genes }
  for _, w in ipairs(o.layers) do widths[#widths + 1] = w end
  widths[#widths + 1] = (o.pred_unspliced and 3 or 2) * n_genes
  self.n_layers = #widths - 1
  for l = 1, self.n_layers do
    local last = l == self.n_layers
    self["conv" .. l] = nn.GraphConv(widths[l], widths[l + 1], { norm = "both",
      activation = (not last) and o.activation or nil, gen = o.gen, dtype = o.dtype })
  end
  self.dropout = Dropout(o.dropout, { gen = o.gen })
end

-- velocity_head(h [n, 2G or 3G], u [n, G], s [n, G] [, pred_unspliced=false]): the
-- velocity from the rates in h: beta = h[:, 1..G], gamma = h[:, G+1..2G]: v = beta u + gamma s;
-- with pred_unspliced alpha = h[:, 2G+1..3G] and v = [beta u - gamma s, alpha - beta u]. One
-- fused pass forward and backward (csrc/core/deepvelo_kernels.c); differentiable in h, u, s.
local head_op = T.def_differentiable("deepvelo_head", function(h, u, s, pu)
  return core.dv_head_forward(h, u, s, pu)
end, function(g, a, _, needs)
  local h, u, s, pu = a[1], a[2], a[3], a[4]
  g = g:contiguous()
  local gh = needs[1] and core.dv_head_backward(g, u, s, pu) or nil
  local gu, gs
  if needs[2] or needs[3] then
    local G = u:size(2)
    local beta, gamma = h:narrow(2, 1, G), h:narrow(2, G + 1, G)
    if pu then
      local g1, g2 = g:narrow(2, 1, G), g:narrow(2, G + 1, G)
      gu = needs[2] and (g1 - g2) * beta or nil
      gs = needs[3] and -(g1 * gamma) or nil
    else
      gu = needs[2] and g * beta or nil
      gs = needs[3] and g * gamma or nil
    end
  end
  return gh, gu, gs
end, "in")

function M.velocity_head(h, u, s, pred_unspliced)
  if not T.is_tensor(h) or not T.is_tensor(u) or not T.is_tensor(s) then
    error("velocity_head: h, u and s must be tensors", 2)
  end
  if h:dim() == 2 and h:size(2) > 1 and h:stride()[2] ~= 1 then h = h:contiguous() end
  if u:dim() == 2 and u:size(2) > 1 and u:stride()[2] ~= 1 then u = u:contiguous() end
  if s:dim() == 2 and s:size(2) > 1 and s:stride()[2] ~= 1 then s = s:contiguous() end
  return head_op(h, u, s, pred_unspliced == true)
end

-- The velocity head on dropout(h), fused (training mode of the model): the mask is drawn as
-- M.dropout would draw it on h, so the result equals velocity_head(dropout(h)) bit for bit.
local head_keep = setmetatable({}, { __mode = "k" })
local head_dropout_op = T.def_differentiable("deepvelo_head_dropout", function(h, u, s, pu, p, gen)
  local v, keep = core.dv_head_dropout_forward(h, u, s, pu, p, gen)
  head_keep[v] = keep
  return v
end, function(g, a, out, needs)
  local keep = head_keep[out]
  head_keep[out] = nil
  if keep == nil then
    error("velocity head: the dropout mask of this output was already used by an earlier " ..
      "backward() (retain_graph is not supported)", 0)
  end
  local h, u, s, pu, p = a[1], a[2], a[3], a[4], a[5]
  g = g:contiguous()
  local gh = needs[1] and core.dv_head_backward(g, u, s, pu, keep, p) or nil
  local gu, gs
  if needs[2] or needs[3] then
    local G = u:size(2)
    local hd = h * (keep:to(h:dtype()) * (1 / (1 - p)))
    local beta, gamma = hd:narrow(2, 1, G), hd:narrow(2, G + 1, G)
    if pu then
      local g1, g2 = g:narrow(2, 1, G), g:narrow(2, G + 1, G)
      gu = needs[2] and (g1 - g2) * beta or nil
      gs = needs[3] and -(g1 * gamma) or nil
    else
      gu = needs[2] and g * beta or nil
      gs = needs[3] and g * gamma or nil
    end
  end
  return gh, gu, gs
end, "in")

-- The rates of a forward pass in training mode: the dropped-out columns of the last layer's
-- output, computed when first asked for.
local function lazy_rates(h, v, G, pu, p)
  local names = { beta = 0, gamma = 1, alpha = pu and 2 or nil }
  return setmetatable({}, { __index = function(t, k)
    local off = names[k]
    if off == nil then return nil end
    local keep = head_keep[v]
    if keep == nil then
      error("DeepVeloGCN: the rates of a training pass are available until its backward()", 2)
    end
    local r = T.no_grad(function()
      return (h:narrow(2, off * G + 1, G) * (keep:narrow(2, off * G + 1, G):to(h:dtype()) *
        (1 / (1 - p)))):contiguous()
    end)
    rawset(t, k, r)
    return r
  end })
end

function Model:forward(adj, u, s)
  local G = self.n_genes
  if not T.is_tensor(u) or not T.is_tensor(s) or u:dim() ~= 2 or s:dim() ~= 2 or
    u:size(2) ~= G or s:size(2) ~= G then
    error(string.format("DeepVeloGCN: u and s must be [n, %d] tensors", G), 2)
  end
  -- the input features [u, s], kept while the same u and s come back (full-batch training)
  local cache = rawget(self, "_input")
  local h
  local vu, vs = core.version(u), core.version(s)
  if cache and rawequal(cache.u, u) and rawequal(cache.s, s) and cache.vu == vu and
    cache.vs == vs and not u:needs_grad() and not s:needs_grad() then
    h = cache.h
  else
    h = T.cat({ u, s }, 2)
    rawset(self, "_input", { u = u, s = s, h = h, vu = vu, vs = vs })
  end
  for l = 1, self.n_layers - 1 do
    h = self.dropout(self["conv" .. l](adj, h))
  end
  h = self["conv" .. self.n_layers](adj, h)
  local drop = self.dropout
  local pu = self.pred_unspliced
  if getmetatable(drop) == Dropout and drop.training and drop.p > 0 and drop.p < 1 then
    -- the last dropout and the head in one pass
    local hc = h:contiguous()
    if u:size(2) > 1 and u:stride()[2] ~= 1 then u = u:contiguous() end
    if s:size(2) > 1 and s:stride()[2] ~= 1 then s = s:contiguous() end
    local v = head_dropout_op(hc, u, s, pu, drop.p, drop.gen or T.default_generator())
    return v, lazy_rates(hc, v, G, pu, drop.p)
  end
  h = drop(h)
  local rates = { beta = h:narrow(2, 1, G), gamma = h:narrow(2, G + 1, G) }
  if pu then rates.alpha = h:narrow(2, 2 * G + 1, G) end
  return M.velocity_head(h, u, s, pu), rates
end

-- ---------- losses ----------

-- candidate_means(v [n, D], current [n, D], idx [n, k] (1-based rows of candidates),
-- candidates [N, D] [, n_cos=D]): DeepVelo's E+ and E- (no gradient): with delta_ij =
-- candidates[idx_ij] - current_i and c_ij the cosine of delta_ij and v_i over the first n_cos
-- columns, the means of delta_ij over c_ij > 0 and over c_ij < 0 (zero rows where empty).
-- Also the counts [n, 2] (i64) of the two sets.
function M.candidate_means(v, current, idx, candidates, n_cos)
  if not T.is_tensor(v) or v:dim() ~= 2 then error("candidate_means: v must be [n, D]", 2) end
  local vd = v:detach()
  if not vd:is_contiguous() then vd = vd:contiguous() end
  return core.dv_candidate_means(vd, current, candidates, idx, n_cos or v:size(2), true)
end

-- Per-output state of the fused losses for their backward pass (cleared when used).
local saved = setmetatable({}, { __mode = "k" })

local function take_saved(out, name)
  local st = saved[out]
  if st == nil then
    error(name .. ": the saved state of this loss was already used by an earlier backward() " ..
      "(retain_graph is not supported for the fused DeepVelo losses)", 0)
  end
  saved[out] = nil
  return st
end

local function rows_unit_stride(x)
  if x:size(2) > 1 and x:stride()[2] ~= 1 then return x:contiguous() end
  return x
end

-- The fused continuity loss: C forward (candidate search and squared sums, E+ - E- kept) and
-- C backward, sqrt(ns) / (n D) (2 v - (E+ - E-)) times the incoming gradient.
local mle_op = T.def_differentiable("deepvelo_mle", function(v, current, idx, candidates, ns)
  local n, D = v:size(1), v:size(2)
  local ediff, sp, sm = core.dv_mle_forward(rows_unit_stride(v:detach()), current, candidates,
    idx, ns)
  local lp, lm = sp / (n * D), sm / (n * D)
  local out = T.tensor((lp + lm) * 0.5 * math.sqrt(ns), { dtype = v:dtype() })
  saved[out] = { ediff = ediff, l_plus = lp, l_minus = lm }
  return out
end, function(g, a, out, needs)
  local st = take_saved(out, "mle_loss")
  if not needs[1] then return nil end
  local v, ns = a[1], a[5]
  local alpha = g:item() * math.sqrt(ns) / (v:size(1) * v:size(2))
  return core.dv_mle_backward(rows_unit_stride(v), st.ediff, alpha)
end, "in")

local mle_defaults = { n_spliced = NONE, impl = "fused" }

-- mle_loss(output [n, D], current [n, D], idx [n, k], candidates [N, D] [, {n_spliced=D,
-- impl="fused"}]): DeepVelo's continuity loss: E+, E- as candidate_means (cosine over the
-- first n_spliced columns, no gradient through the sets), L+ = mean((v - E+)^2),
-- L- = mean((v + E-)^2), returns (L+ + L-) / 2 * sqrt(n_spliced), differentiable in output.
-- impl="fused" runs one C pass each way; "composed" builds it from candidate_means and tensor
-- operations (the reference the fused version is tested against).
function M.mle_loss(output, current, idx, candidates, opts)
  local o = options.check("mle_loss", opts, mle_defaults)
  if not T.is_tensor(output) or output:dim() ~= 2 then
    error("mle_loss: output must be a 2-d tensor [n, D]", 2)
  end
  local ns = o.n_spliced or output:size(2)
  if math.type(ns) ~= "integer" or ns < 1 or ns > output:size(2) then
    error(string.format("mle_loss: n_spliced = %s must be an integer in [1, %d]", tostring(ns),
      output:size(2)), 2)
  end
  if o.impl == "fused" then
    return mle_op(output, current, idx, candidates, ns)
  elseif o.impl ~= "composed" then
    error("mle_loss: impl must be 'fused' or 'composed', got " .. tostring(o.impl), 2)
  end
  local ep, em = M.candidate_means(output, current, idx, candidates, ns)
  local dp = output - ep
  local dm = output + em
  local lp = (dp * dp):mean()
  local lm = (dm * dm):mean()
  return (lp + lm) * (0.5 * math.sqrt(ns))
end

-- pearson(x [n, D], y [n, D] [, mask]): DeepVelo's column-wise Pearson correlation [D]
-- over the rows (mask: a bool [n, D] restricting each column to its masked rows), with its
-- conventions: counts + 1e-9 in the means and norms + 1e-9 in the denominators, so an empty
-- or constant column gives 0. Differentiable in x and y.
function M.pearson(x, y, mask)
  if mask == nil then
    local n = x:size(1)
    local xc = x - x:mean(1, true)
    local yc = y - y:mean(1, true)
    xc = xc / (xc:std(1, true) + 1e-9)
    yc = yc / (yc:std(1, true) + 1e-9)
    return (xc * yc):sum(1) / n
  end
  local m = mask:to(x:dtype())
  local cnt = m:sum(1, true) + 1e-9
  local xm, ym = x * m, y * m
  local xc = (xm - xm:sum(1, true) / cnt) * m
  local yc = (ym - ym:sum(1, true) / cnt) * m
  xc = xc / ((xc * xc):sum(1, true):sqrt() + 1e-9)
  yc = yc / ((yc * yc):sum(1, true):sqrt() + 1e-9)
  return (xc * yc):sum(1)
end

-- The fused direction term: per-gene masked correlations and the statistics of their gradient
-- from two C passes; the backward pass is a third (gradient with respect to the velocity).
local direction_op = T.def_differentiable("deepvelo_direction", function(x, s, u, cu, cs)
  local r, stats = core.dv_direction_forward(rows_unit_stride(x:detach()), u, s)
  local G = x:size(2)
  local mean_u = r:select(2, 1):mean():item()
  local mean_s = r:select(2, 2):mean():item()
  local c = cu + cs
  local out = T.tensor((c - (cu * mean_u - cs * mean_s)) / c, { dtype = x:dtype() })
  saved[out] = { stats = stats, G = G }
  return out
end, function(g, a, out, needs)
  local st = take_saved(out, "direction_loss")
  if not needs[1] then return nil end
  local x, s, u, cu, cs = a[1], a[2], a[3], a[4], a[5]
  local gv = g:item() / (st.G * (cu + cs))
  local w = T.tensor({ -cu * gv, cs * gv }, { dtype = "f64" }):reshape({ 1, 2 }):expand({ st.G, 2 })
  return core.dv_direction_backward(rows_unit_stride(x), u, s, st.stats, w:contiguous())
end, "in")

-- direction_loss(velocity [n, G], s [n, G], u [n, G] [, {coeff_u=1, coeff_s=1,
-- impl="fused"}]): DeepVelo's direction term (coeff_u + coeff_s - mean_g corr_g) /
-- (coeff_u + coeff_s), corr_g = coeff_u pearson(v, u | u > 0) - coeff_s pearson(v, s | s > 0)
-- (M.pearson's conventions); in [0, 2]. impl="fused" (C, differentiable in velocity; used
-- unless u or s require grad) or "composed" (from M.pearson).
function M.direction_loss(velocity, s, u, opts)
  local o = options.check("direction_loss", opts, { coeff_u = 1, coeff_s = 1, impl = "fused" })
  for name, x in pairs { velocity = velocity, s = s, u = u } do
    if not T.is_tensor(x) or x:dim() ~= 2 then
      error("direction_loss: " .. name .. " must be a 2-d tensor", 2)
    end
  end
  if o.impl ~= "fused" and o.impl ~= "composed" then
    error("direction_loss: impl must be 'fused' or 'composed', got " .. tostring(o.impl), 2)
  end
  if o.impl == "fused" and not s:needs_grad() and not u:needs_grad() then
    if s:dtype() ~= velocity:dtype() then s = s:to(velocity:dtype()) end
    if u:dtype() ~= velocity:dtype() then u = u:to(velocity:dtype()) end
    return direction_op(velocity, rows_unit_stride(s), rows_unit_stride(u), o.coeff_u, o.coeff_s)
  end
  local corr = M.pearson(velocity, u, u:gt(0)) * o.coeff_u - M.pearson(velocity, s, s:gt(0)) * o.coeff_s
  local c = o.coeff_u + o.coeff_s
  return (c - corr:mean()) / c
end

-- The fused default loss: one C forward pass each for the two terms, and a backward pass that
-- writes the continuity gradient and adds the direction gradient into the same buffer. The
-- E+ - E- buffer is reused from epoch to epoch through data._ediff.
local combined_op = T.def_differentiable("deepvelo_mle_direction", function(v, data, o)
  local n, D = v:size(1), v:size(2)
  local G = data.s:size(2)
  local vd = rows_unit_stride(v:detach())
  local buf = rawget(data, "_ediff")
  if buf and not (buf:dtype() == v:dtype() and buf:size(1) == n and buf:size(2) == D) then buf = nil end
  rawset(data, "_ediff", nil)
  local ediff, sp, sm = core.dv_mle_forward(vd, data.current, data.candidates, data.idx, G, false, buf)
  local vel = D == G and vd or vd:narrow(2, 1, G)
  local r, stats = core.dv_direction_forward(vel, data.u, data.s)
  local mean_u = r:select(2, 1):mean():item()
  local mean_s = r:select(2, 2):mean():item()
  local c = o.coeff_u + o.coeff_s
  local lp = (c - (o.coeff_u * mean_u - o.coeff_s * mean_s)) / c
  local lambda = o.pearson_scale * math.sqrt(data.current:size(2)) /
    math.min(0.5, math.max(0.01, 1 - lp))
  local l_mle = (sp / (n * D) + sm / (n * D)) * 0.5 * math.sqrt(G)
  local out = T.tensor(l_mle + lambda * lp, { dtype = v:dtype() })
  saved[out] = { ediff = ediff, stats = stats, lambda = lambda, G = G,
    parts = { mle = l_mle, direction = lp, lambda = lambda } }
  return out
end, function(g, a, out, needs)
  local st = take_saved(out, "mle_plus_direction")
  if not needs[1] then return nil end
  local v, data, o = a[1], a[2], a[3]
  local n, D, G = v:size(1), v:size(2), st.G
  local gv = g:item()
  local vr = rows_unit_stride(v)
  local grad = core.dv_mle_backward(vr, st.ediff, gv * math.sqrt(G) / (n * D))
  rawset(data, "_ediff", st.ediff) -- free for the next forward pass
  local wv = gv * st.lambda / (G * (o.coeff_u + o.coeff_s))
  local w = T.tensor({ -o.coeff_u * wv, o.coeff_s * wv }, { dtype = "f64" }):reshape({ 1, 2 })
    :expand({ G, 2 }):contiguous()
  local vel = D == G and vr or vr:narrow(2, 1, G)
  core.dv_direction_backward(vel, data.u, data.s, st.stats, w, D == G and grad or grad:narrow(2, 1, G))
  return grad
end, "in")

-- mle_plus_direction(output, data [, {pearson_scale=18, coeff_u=1, coeff_s=1, impl="fused"}]):
-- DeepVelo's default loss L_mle + lambda L_P with lambda = pearson_scale sqrt(D) /
-- clip(1 - L_P, 0.01, 0.5) (a constant each step; D the width of the current state), L_mle on
-- the whole output (continuity, cosine over the first G columns) and L_P on its first G
-- columns (the spliced velocity). data = {u=, s=, current=, idx=, candidates=} as made by
-- M.prepare. Returns the loss and {mle=, direction=, lambda=} (numbers). impl="composed" adds
-- the two separate loss functions instead of the fused pass.
function M.mle_plus_direction(output, data, opts)
  local o = options.check("mle_plus_direction", opts, { pearson_scale = 18, coeff_u = 1,
    coeff_s = 1, impl = "fused" })
  if not T.is_tensor(output) or output:dim() ~= 2 then
    error("mle_plus_direction: output must be a 2-d tensor", 2)
  end
  local G = data.s:size(2)
  if o.impl == "fused" and output:dtype() == data.s:dtype() and output:dtype() == data.u:dtype()
    and output:dtype() == data.current:dtype() and not data.u:needs_grad() and not data.s:needs_grad() then
    local loss = combined_op(output, data, o)
    local st = saved[loss]
    return loss, st and st.parts or nil
  end
  local velocity = output:size(2) == G and output or output:narrow(2, 1, G)
  local l_mle = M.mle_loss(output, data.current, data.idx, data.candidates, { n_spliced = G })
  local l_p = M.direction_loss(velocity, data.s, data.u, { coeff_u = o.coeff_u, coeff_s = o.coeff_s })
  local lp = l_p:item()
  local D = data.current:size(2)
  local lambda = o.pearson_scale * math.sqrt(D) / math.min(0.5, math.max(0.01, 1 - lp))
  return l_mle + l_p * lambda, { mle = l_mle:item(), direction = lp, lambda = lambda }
end

-- ---------- data and training ----------

local function dense_f32(fname, x, what)
  if x == nil then error(fname .. ": " .. what .. " is missing", 3) end
  if T.is_sparse(x) then x = x:to_dense() end
  if x:dtype() ~= "f32" then x = x:to("f32") end
  return x:contiguous()
end

-- prepare(u [n, G], s [n, G], {n_pcs=30, n_neighbors=20, n_candidates=29, pred_unspliced=false,
-- knn_method="auto", seed=0}): the training data: u, s, the graph (adj), the candidate indices
-- (idx), the candidate states (candidates = s, or [s, u] with pred_unspliced) and current.
function M.prepare(u, s, opts)
  local o = options.check("deepvelo.prepare", opts, { n_pcs = 30, n_neighbors = 20,
    n_candidates = 29, pred_unspliced = false, knn_method = "auto", seed = 0 })
  u, s = dense_f32("deepvelo.prepare", u, "u"), dense_f32("deepvelo.prepare", s, "s")
  local n = s:size(1)
  local k = math.max(o.n_neighbors, o.n_candidates + 1)
  if k > n then
    error(string.format("deepvelo.prepare: %d cells are fewer than the %d neighbours needed", n, k), 2)
  end
  local knn = M.pca_knn(s, { n_pcs = o.n_pcs, k = k, knn_method = o.knn_method, seed = o.seed })
  local states = o.pred_unspliced and T.cat({ s, u }, 2) or s
  return {
    u = u, s = s, adj = M.graph(knn, o.n_neighbors), knn = knn,
    idx = M.candidates(knn, o.n_candidates), candidates = states, current = states,
  }
end

local train_defaults = { epochs = 100, lr = 1e-3, weight_decay = 0, amsgrad = true,
  lr_step = 1, lr_gamma = 0.97, grad_clip = NONE, pearson_scale = 18, coeff_u = 1, coeff_s = 1,
  loss = NONE, callback = NONE, progress = false }

-- train(model, data [, opts]): full-batch training of model(data.adj, data.u, data.s) with
-- Adam (lr=1e-3, weight_decay=0, amsgrad=true) and StepLR (lr_step=1 epoch, lr_gamma=0.97)
-- for `epochs` (100) epochs; grad_clip (nil: off) clips the gradient norm; loss (default
-- M.mle_plus_direction with pearson_scale, coeff_u, coeff_s) is called as loss(output, data)
-- and returns the loss and an optional table of numbers logged per epoch; callback(epoch,
-- record, model) after each epoch. Returns the history {total = {...}, <part> = {...}}.
function M.train(model, data, opts)
  local o = options.check("deepvelo.train", opts, train_defaults)
  local opt = optim.Adam(model, { lr = o.lr, weight_decay = o.weight_decay, amsgrad = o.amsgrad })
  local sched = optim.StepLR(opt, { step_size = o.lr_step, gamma = o.lr_gamma })
  local loss_fn = o.loss or function(out, d)
    return M.mle_plus_direction(out, d, { pearson_scale = o.pearson_scale, coeff_u = o.coeff_u,
      coeff_s = o.coeff_s })
  end
  local history = { total = {} }
  local bar = o.progress and require("velua.progress").new(o.epochs, { desc = "deepvelo" }) or nil
  model:train()
  for epoch = 1, o.epochs do
    opt:zero_grad()
    local out = model(data.adj, data.u, data.s)
    local loss, parts = loss_fn(out, data)
    local value = loss:item()
    loss:backward()
    if o.grad_clip then optim.clip_grad_norm(model:parameters(), o.grad_clip) end
    opt:step()
    sched:step()
    history.total[epoch] = value
    for k, v in pairs(parts or {}) do
      history[k] = history[k] or {}
      history[k][epoch] = v
    end
    if o.callback then o.callback(epoch, { total = value, parts = parts }, model) end
    if bar then bar:update(1, { loss = string.format("%.4g", value) }) end
  end
  if bar then bar:close() end
  return history
end

local defaults = {
  spliced = "Ms", unspliced = "Mu", vkey = "velocity", velocity_genes = false,
  layers = { 64, 64 }, dropout = 0.2, pred_unspliced = false,
  n_pcs = 30, n_neighbors = 20, n_candidates = 29, knn_method = "auto",
  epochs = 100, lr = 1e-3, weight_decay = 0, amsgrad = true, lr_step = 1, lr_gamma = 0.97,
  grad_clip = NONE, pearson_scale = 18, coeff_u = 1, coeff_s = 1, seed = 0,
  model = NONE, loss = NONE, callback = NONE, progress = false, return_model = false,
}

local function to_table(list)
  return T.tensor(list, { dtype = "f64" })
end

-- deepvelo(ad, {...}): trains DeepVelo on layers[unspliced] (Mu) and layers[spliced] (Ms)
-- and writes layers[vkey] (the velocity), layers.cell_specific_beta, layers.cell_specific_gamma
-- (the paper's convention: v = beta u - gamma s, so gamma = minus the network's output), with
-- pred_unspliced also layers.cell_specific_alpha and layers[vkey .. "_unspliced"], and
-- uns.deepvelo = {params=, loss=, mle=, direction=, lambda=} (per-epoch training losses as f64
-- tensors; eval_loss etc. for the final model). Options (defaults): see M.defaults. Returns
-- ad, and with return_model=true also the model and the training data.
function M.deepvelo(ad, opts)
  local fname = "deepvelo"
  if type(ad) ~= "table" or ad.layers == nil then error(fname .. ": an AnnData expected", 2) end
  local o = options.check(fname, opts, defaults)
  local s_all, u_all = ad.layers[o.spliced], ad.layers[o.unspliced]
  if s_all == nil then error(fname .. ": layers." .. o.spliced .. " is missing; run pp.moments first", 2) end
  if u_all == nil then error(fname .. ": layers." .. o.unspliced .. " is missing; run pp.moments first", 2) end
  local s, u = dense_f32(fname, s_all, "spliced"), dense_f32(fname, u_all, "unspliced")
  local gene_idx
  if o.velocity_genes then
    local vg = ad.var.velocity_genes
    if vg == nil then error(fname .. ": velocity_genes=true needs var.velocity_genes", 2) end
    local cols = {}
    for j, b in ipairs(T.is_tensor(vg) and vg:totable() or vg) do
      if b == true or b == 1 then cols[#cols + 1] = j end
    end
    if #cols == 0 then error(fname .. ": var.velocity_genes selects no gene", 2) end
    gene_idx = T.tensor(cols, { dtype = "i64" })
    s, u = s:index(2, gene_idx):contiguous(), u:index(2, gene_idx):contiguous()
  end
  local G = s:size(2)
  local gen = T.generator(o.seed)
  local data = M.prepare(u, s, { n_pcs = o.n_pcs, n_neighbors = o.n_neighbors,
    n_candidates = o.n_candidates, pred_unspliced = o.pred_unspliced, knn_method = o.knn_method,
    seed = o.seed })
  local model = o.model or Model(G, { layers = o.layers, dropout = o.dropout,
    pred_unspliced = o.pred_unspliced, gen = gen })
  local history = M.train(model, data, { epochs = o.epochs, lr = o.lr,
    weight_decay = o.weight_decay, amsgrad = o.amsgrad, lr_step = o.lr_step,
    lr_gamma = o.lr_gamma, grad_clip = o.grad_clip, pearson_scale = o.pearson_scale,
    coeff_u = o.coeff_u, coeff_s = o.coeff_s, loss = o.loss, callback = o.callback,
    progress = o.progress })

  model:eval()
  local out, rates, eval_loss, eval_parts
  T.no_grad(function()
    out, rates = model(data.adj, data.u, data.s)
    local loss_fn = o.loss or function(x, d)
      return M.mle_plus_direction(x, d, { pearson_scale = o.pearson_scale, coeff_u = o.coeff_u,
        coeff_s = o.coeff_s })
    end
    local l, parts = loss_fn(out, data)
    eval_loss, eval_parts = l:item(), parts
  end)

  local n, n_vars = ad.n_obs, ad.n_vars
  local keep
  if gene_idx then
    keep = T.zeros({ 1, n_vars }, { dtype = "i64" })
    keep:index_add_(2, gene_idx, T.ones({ 1, gene_idx:numel() }, { dtype = "i64" }))
    keep = keep:gt(0)
  end
  local function full(x, fill)
    x = x:contiguous()
    if not gene_idx then return x end
    local t = T.zeros({ n, n_vars }, { dtype = "f32" })
    t:index_add_(2, gene_idx, x)
    return T.where(keep, t, fill)
  end
  local v_s = out:narrow(2, 1, G)
  ad.layers[o.vkey] = full(v_s, 0 / 0)
  if o.pred_unspliced then
    ad.layers[o.vkey .. "_unspliced"] = full(out:narrow(2, G + 1, G), 0 / 0)
    ad.layers.cell_specific_alpha = full(rates.alpha, 0)
    ad.layers.cell_specific_beta = full(rates.beta, 0)
    ad.layers.cell_specific_gamma = full(rates.gamma, 0)
  else
    ad.layers.cell_specific_beta = full(rates.beta, 0)
    ad.layers.cell_specific_gamma = full(-rates.gamma, 0)
  end
  local rec = {
    params = { epochs = o.epochs, lr = o.lr, lr_gamma = o.lr_gamma, seed = o.seed,
      layers = o.layers, dropout = o.dropout, pred_unspliced = o.pred_unspliced,
      n_neighbors = o.n_neighbors, n_candidates = o.n_candidates, n_pcs = o.n_pcs,
      pearson_scale = o.pearson_scale, vkey = o.vkey, velocity_genes = o.velocity_genes },
    eval_loss = eval_loss,
  }
  for k, list in pairs(history) do rec[k == "total" and "loss" or k] = to_table(list) end
  for k, v in pairs(eval_parts or {}) do rec["eval_" .. k] = v end
  ad.uns.deepvelo = rec
  if o.return_model then return ad, model, data end
  return ad
end

M.defaults = defaults

return M
