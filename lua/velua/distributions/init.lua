-- velua.distributions: Normal, Beta, PowerSpherical, HypersphericalUniform, NegativeBinomial,
-- ZeroInflatedNegativeBinomial and kl_divergence (formulas: ../shared/SPEC.md section 7).
-- Samplers take ([n] [, {gen = g}]): n prepends a sample dim; without gen the default
-- generator is used. rsample is differentiable (Normal: location-scale; Beta: implicit
-- reparameterisation; PowerSpherical: through its Beta sample and a Householder reflection);
-- sample is rsample without gradients, or the only sampler of the discrete distributions.
local T = require "velua.tensor"
local U = require("velua.distributions.util").setup(T)

local D = {}

local Normal, Beta, PS, Uniform, NB, ZINB, kl_normal, kl_ps_uniform, beta_draw
D.Normal, Normal, kl_normal = require("velua.distributions.normal")(T, U)
D.Beta, Beta, beta_draw, D.betainc = require("velua.distributions.beta")(T, U)
D.PowerSpherical, PS, D.HypersphericalUniform, Uniform, kl_ps_uniform =
  require("velua.distributions.power_spherical")(T, U, beta_draw)
D.NegativeBinomial, NB, D.ZeroInflatedNegativeBinomial, ZINB =
  require("velua.distributions.negative_binomial")(T, U)

local kl_table = {
  [Normal] = { [Normal] = kl_normal },
  [PS] = { [Uniform] = kl_ps_uniform },
}

-- kl_divergence(p, q): KL(p || q) for (Normal, Normal) and (PowerSpherical,
-- HypersphericalUniform); any other pair is an error that names it.
function D.kl_divergence(p, q)
  local mp, mq = getmetatable(p), getmetatable(q)
  local f = kl_table[mp] and kl_table[mp][mq]
  if not f then
    local function name(m, x) return type(m) == "table" and m.__name or type(x) end
    error(string.format("kl_divergence: not implemented for (%s, %s); available: (Normal, " ..
      "Normal), (PowerSpherical, HypersphericalUniform)", name(mp, p), name(mq, q)), 2)
  end
  return f(p, q)
end

D.classes = { Normal = Normal, Beta = Beta, PowerSpherical = PS, HypersphericalUniform = Uniform,
  NegativeBinomial = NB, ZeroInflatedNegativeBinomial = ZINB }

return D
