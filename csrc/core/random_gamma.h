/* Gamma and Poisson variates from a Philox generator. Rejection samplers need a variable
 * number of draws, so element i reads its own sub-stream: blocks with counter
 * (lo32(base + i), hi32(base + i), attempt, 1) — the last word 1 keeps these apart from the
 * plain fills of random.h — and the generator advances by n blocks per fill. Results are the
 * same on any thread count. */
#ifndef VELUA_RANDOM_GAMMA_H
#define VELUA_RANDOM_GAMMA_H

#include "random.h"

/* out[i] ~ Gamma(shape = alpha[i], scale = 1) (Marsaglia-Tsang; alpha < 1 by boosting).
 * alpha has out's shape (broadcast beforehand) and its float dtype. */
vl_status vl_random_gamma(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, const vl_tensor *alpha,
                          vl_error *err);
/* out[i] ~ Poisson(lambda[i]) (multiplication method below 12, PTRS above). */
vl_status vl_random_poisson(vl_ctx *ctx, vl_philox *g, const vl_tensor *out,
                            const vl_tensor *lambda, vl_error *err);

#endif
