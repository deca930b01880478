-- velua.datasets: the built-in seeded simulator of splicing kinetics (SPEC section 8), the
-- project's default demo data, with ground-truth velocity and latent time; and loaders of the
-- public data sets (pancreas, dentategyrus, ...: see datasets/loaders.lua, docs/datasets.md).
--
-- Per gene g and lineage l: du/dt = alpha(t) - beta u, ds/dt = beta u - gamma s, alpha(t) =
-- alpha_{l,g} during induction (t < t_switch_{l,g}) and 0 after (repression), from u = s = 0 at
-- t = 0, solved in closed form. Cells get a latent time t ~ U(0, t_max) and a lineage; counts
-- are Poisson (or negative binomial, noise = "nb") draws around scale * (u, s). Condition B of
-- a two-condition data set blocks one lineage at a stage (a knockout-like defect).
local velua = require "velua"
local options = require "velua.options"
local T = velua.tensor

local M = {}

-- closed-form (u, s) after time tau from (u0, s0) under constant alpha (tensors broadcast)
local function evolve(u0, s0, alpha, beta, gamma, tau)
  local eb, eg = (-beta * tau):exp(), (-gamma * tau):exp()
  local u = u0 * eb + alpha / beta * (1 - eb)
  -- gamma != beta is ensured by the parameter draw
  local s = s0 * eg + alpha / gamma * (1 - eg) + (alpha - beta * u0) / (gamma - beta) * (eg - eb)
  return u, s
end

-- kinetics(alpha, beta, gamma, t_switch, t): unspliced and spliced abundance at time t of a
-- gene induced with rate alpha from u = s = 0 until t_switch, then repressed (alpha = 0).
-- All arguments are f64 tensors (or numbers) that broadcast together.
function M.kinetics(alpha, beta, gamma, t_switch, t)
  local zero = alpha * 0 + t * 0
  local u1, s1 = evolve(zero, zero, alpha + zero, beta, gamma, T.minimum(t + zero, t_switch + zero))
  local u2, s2 = evolve(u1, s1, zero, beta, gamma, (t - t_switch + zero):clamp(0))
  local on = (t + zero):lt(t_switch + zero)
  return T.where(on, u1, u2), T.where(on, s1, s2)
end

local function uniform(gen, shape, lo, hi)
  return T.rand(shape, { gen = gen, dtype = "f64" }) * (hi - lo) + lo
end

-- simulate{n_obs=1000, n_vars=300, lineages=2, conditions=1, seed=0, t_max=20, noise="poisson",
--          scale=10, block_lineage=lineages, block_time=0.5}
function M.simulate(opts)
  local o = options.check("datasets.simulate", opts, {
    n_obs = 1000, n_vars = 300, lineages = 2, conditions = 1, seed = 0, t_max = 20,
    noise = "poisson", scale = 10, block_lineage = options.NONE, block_time = 0.5,
    nb_theta = 5 })
  local n, G, L = o.n_obs, o.n_vars, o.lineages
  for k, v in pairs { n_obs = n, n_vars = G, lineages = L, conditions = o.conditions } do
    if math.type(v) ~= "integer" or v < 1 then
      error("datasets.simulate: " .. k .. " must be a positive integer, got " .. tostring(v), 2)
    end
  end
  if o.conditions > 2 then error("datasets.simulate: conditions must be 1 or 2", 2) end
  if o.noise ~= "poisson" and o.noise ~= "nb" then
    error("datasets.simulate: noise must be 'poisson' or 'nb', got " .. tostring(o.noise), 2)
  end
  local block = o.block_lineage or L
  local gen = T.generator(o.seed)

  -- gene parameters (log-uniform rates; gamma kept away from beta)
  local beta = uniform(gen, { 1, G }, math.log(0.2), math.log(2)):exp()
  local gamma = uniform(gen, { 1, G }, math.log(0.1), math.log(1)):exp()
  gamma = T.where((gamma - beta):abs():lt(0.05), gamma * 1.5, gamma)
  local base_alpha = uniform(gen, { 1, G }, math.log(1), math.log(10)):exp()
  -- lineage-specific induction strength and switch time
  local alpha = base_alpha * uniform(gen, { L, G }, 0.1, 1.5)
  local t_switch = uniform(gen, { L, G }, 0.2 * o.t_max, 0.8 * o.t_max)

  -- cells: lineage, condition, latent time
  local lineage = T.randint(1, L + 1, { n }, { gen = gen })
  local condition = o.conditions == 2 and T.randint(1, 3, { n }, { gen = gen }) or T.ones(n, { dtype = "i64" })
  local t = uniform(gen, { n }, 0, o.t_max)
  if o.conditions == 2 then
    -- condition B: the blocked lineage does not progress past block_time * t_max
    local blocked = condition:eq(2):logical_and(lineage:eq(block))
    t = T.where(blocked, t * o.block_time, t)
  end

  -- per-cell kinetics in chunks of cells, so that the f64 temporaries stay small at any n
  local mean_u = T.empty({ n, G }, { dtype = "f64" })
  local mean_s = T.empty({ n, G }, { dtype = "f64" })
  local true_s, true_u = T.empty({ n, G }, { dtype = "f32" }), T.empty({ n, G }, { dtype = "f32" })
  local true_v, true_vu = T.empty({ n, G }, { dtype = "f32" }), T.empty({ n, G }, { dtype = "f32" })
  local CHUNK = 8192
  for lo = 1, n, CHUNK do
    local len = math.min(CHUNK, n - lo + 1)
    local lin_c = lineage:narrow(1, lo, len)
    local a = alpha:index(1, lin_c)           -- [len, G]
    local ts = t_switch:index(1, lin_c)
    local tt = t:narrow(1, lo, len):unsqueeze(2) -- [len, 1]
    local u, s = M.kinetics(a, beta, gamma, ts, tt)
    local alpha_now = T.where(tt:lt(ts), a, 0)
    mean_u:narrow(1, lo, len):copy_(u * o.scale)
    mean_s:narrow(1, lo, len):copy_(s * o.scale)
    true_u:narrow(1, lo, len):copy_(u)
    true_s:narrow(1, lo, len):copy_(s)
    true_v:narrow(1, lo, len):copy_(beta * u - gamma * s)   -- ds/dt, in expression units
    true_vu:narrow(1, lo, len):copy_(alpha_now - beta * u)
    a, ts, u, s, alpha_now = nil, nil, nil, nil, nil
    if n > CHUNK then collectgarbage() end
  end

  local function counts(m)
    local core = require "velua.core"
    if o.noise == "nb" then
      local theta = T.full({}, o.nb_theta, { dtype = "f64" })
      return velua.distributions.NegativeBinomial(m, theta):sample({ gen = gen }):to("f32")
    end
    return core.rand_poisson_(T.empty(m:shape(), { dtype = "f32" }), gen, m)
  end

  local stage = {}
  local lin = lineage:totable()
  local tv = t:totable()
  local names = {}
  for l = 1, L do names[l] = "lineage" .. l end
  local cats = { "progenitor" }
  for l = 1, L do cats[#cats + 1] = names[l] .. "_early"; cats[#cats + 1] = names[l] .. "_late" end
  local code_of = {}
  for i, c in ipairs(cats) do code_of[c] = i end
  for i = 1, n do
    local f = tv[i] / o.t_max
    local c = f < 0.2 and "progenitor" or (names[lin[i]] .. (f < 0.6 and "_early" or "_late"))
    stage[i] = code_of[c]
  end
  local obs_names, var_names = {}, {}
  for i = 1, n do obs_names[i] = "cell" .. i end
  for g = 1, G do var_names[g] = "gene" .. g end

  local ad = {
    n_obs = n, n_vars = G,
    X = nil,
    layers = {
      spliced = counts(mean_s), unspliced = counts(mean_u),
      true_spliced = true_s, true_unspliced = true_u,
      true_velocity = true_v, true_velocity_u = true_vu,
    },
    obs = {
      true_t = t:to("f32"),
      lineage = { codes = lineage, categories = names },
      clusters = { codes = T.tensor(stage, { dtype = "i64" }), categories = cats },
    },
    var = {
      true_alpha = base_alpha:squeeze(1):to("f32"), true_beta = beta:squeeze(1):to("f32"),
      true_gamma = gamma:squeeze(1):to("f32"),
    },
    obs_names = obs_names, var_names = var_names,
    obsm = {}, varm = {}, obsp = {}, varp = {},
    uns = { simulation = { seed = o.seed, t_max = o.t_max, lineages = L, noise = o.noise,
      scale = o.scale } },
  }
  ad.X = ad.layers.spliced:clone()
  if o.conditions == 2 then
    ad.obs.condition = { codes = condition, categories = { "A", "B" } }
    ad.uns.simulation.block_lineage = block
    ad.uns.simulation.block_time = o.block_time
  end
  if velua.AnnData then return velua.AnnData(ad) end
  return ad
end

-- Loaders of public data sets (datasets/loaders.lua): M.pancreas(path | opts),
-- M.dentategyrus(...), ..., M.fetch(name, ...), M.available(), M.cache_dir().
local loaders = require "velua.datasets.loaders"
for _, name in ipairs(loaders.names) do M[name] = loaders[name] end
M.fetch, M.available, M.cache_dir = loaders.fetch, loaders.available, loaders.cache_dir

return M
