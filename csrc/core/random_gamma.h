/* Gamma and Poisson variates from a Philox generator. Rejection samplers need a variable
 * number of draws, so element i reads its own sub-stream: blocks with counter
 * (lo32(base + i), hi32(base + i), attempt, 1) — the last word 1 keeps these apart from the
 * plain fills of random.h — and the generator advances by n blocks per fill. Results are the
 * same on any thread count. */
#ifndef VELUA_RANDOM_GAMMA_H
#define VELUA_RANDOM_GAMMA_H

#include "random.h"

/* out[i] ~ Gamma(shape = alpha[i], scale = 1) (Marsaglia-Tsang; alpha < 1 by boosting).
 * alpha contiguous, of out's size, f32 or f64; out f32 or f64. */
vl_status vl_random_gamma(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, const vl_tensor *alpha,
                          vl_error *err);
/* out[i] ~ Beta(a[i], b[i]) from two Gamma variates of element i's sub-stream, formed in log
 * space and kept strictly inside (0, 1) in out's dtype. a, b contiguous, of out's size. */
vl_status vl_random_beta(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, const vl_tensor *a,
                         const vl_tensor *b, vl_error *err);
/* out[i] ~ Poisson(lambda[i]) (multiplication method below 12, PTRS above); lambda as alpha
 * above, out of any numeric dtype. */
vl_status vl_random_poisson(vl_ctx *ctx, vl_philox *g, const vl_tensor *out,
                            const vl_tensor *lambda, vl_error *err);

#endif
