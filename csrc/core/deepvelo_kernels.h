/* Kernels of DeepVelo (SPEC section 4): the continuity loss, whose candidate sets need no
 * gradient and are found candidate by candidate without materialising the [n, k, D]
 * displacement tensor; the per-gene masked Pearson direction term with its gradient; and the
 * velocity head v = beta u + gamma s. All take f32 or f64 operands of one dtype, matrices
 * with unit stride along their rows; per-row and per-gene sums are accumulated in double in a
 * fixed order, so results do not depend on the thread count. Indices are 0-based. */
#ifndef VELUA_DEEPVELO_KERNELS_H
#define VELUA_DEEPVELO_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "parallel.h"
#include "random.h"
#include "tensor.h"

/* Candidate means. For each row i of v [n, D]: delta_ij = cand[idx[i, j]] - cur[i] (j < k,
 * idx [n, k] i64 in [0, N)), c_ij = the sign of sum_{g < n_cos} delta_ij[g] v[i, g] (the sign
 * of the cosine over the first n_cos columns), E+_i = sum_{c_ij > 0} delta_ij / (n+ + 1e-9)
 * and E-_i likewise over c_ij < 0 (zero rows for empty sets; DeepVelo 0.2.8's
 * _find_candidates). v, cur [n, D], cand [N, D]; counts NULL or [n, 2] contiguous i64
 * receiving (n+, n-); 1 <= n_cos <= D.
 * vl_dv_candidate_means writes E+ and E- to plus, minus [n, D] (contiguous). */
vl_status vl_dv_candidate_means(vl_ctx *ctx, const vl_tensor *v, const vl_tensor *cur,
                                const vl_tensor *cand, const vl_tensor *idx, int64_t n_cos,
                                const vl_tensor *plus, const vl_tensor *minus,
                                const vl_tensor *counts, vl_error *err);

/* The continuity loss in one pass: ediff [n, D] (contiguous) receives E+ - E- and *sq_plus,
 * *sq_minus the sums over all entries of (v - E+)^2 and (v + E-)^2 (so L+ = sq_plus / (n D)).
 * The gradient of c (sq_plus + sq_minus) with respect to v is 2 c (2 v - ediff). */
vl_status vl_dv_mle_forward(vl_ctx *ctx, const vl_tensor *v, const vl_tensor *cur,
                            const vl_tensor *cand, const vl_tensor *idx, int64_t n_cos,
                            const vl_tensor *ediff, const vl_tensor *counts, double *sq_plus,
                            double *sq_minus, vl_error *err);

/* out = alpha (2 v - ediff), all [n, D]; out contiguous. */
vl_status vl_dv_mle_backward(vl_ctx *ctx, const vl_tensor *v, const vl_tensor *ediff,
                             double alpha, const vl_tensor *out, vl_error *err);

/* Per-gene statistics of the direction term, VL_DV_NSTAT doubles per gene and mask (u, s):
 * see deepvelo_kernels.c. */
#define VL_DV_NSTAT 8

/* Direction term of x [n, G] against u and s [n, G]: for each gene g the masked Pearson
 * correlations r_u = corr(x, u | u > 0) and r_s = corr(x, s | s > 0) with DeepVelo's
 * conventions (means over count + 1e-9 entries, norms + 1e-9 in the denominators), written to
 * r [G, 2] (f64, contiguous); stats [G, 2, VL_DV_NSTAT] (f64, contiguous) receives what the
 * gradient needs. */
vl_status vl_dv_direction_forward(vl_ctx *ctx, const vl_tensor *x, const vl_tensor *u,
                                  const vl_tensor *s, const vl_tensor *r, const vl_tensor *stats,
                                  vl_error *err);

/* grad [n, G] (unit stride along rows) = w_u d r_u/dx + w_s d r_s/dx for per-gene weights
 * w [G, 2] (f64), from the stats of vl_dv_direction_forward on the same x, u, s; with
 * accumulate the values are added to grad instead. A term whose masked, centred x is all
 * zero contributes no gradient (autodiff of the formula would give NaN there). */
vl_status vl_dv_direction_backward(vl_ctx *ctx, const vl_tensor *x, const vl_tensor *u,
                                   const vl_tensor *s, const vl_tensor *stats,
                                   const vl_tensor *w, const vl_tensor *grad, bool accumulate,
                                   vl_error *err);

/* Velocity head. h [n, 2G] (or [n, 3G] with pred_unspliced), u, s [n, G]:
 * beta = h[:, 0:G], gamma = h[:, G:2G], alpha = h[:, 2G:3G]; out [n, G] = beta u + gamma s, or
 * with pred_unspliced out [n, 2G] = [beta u - gamma s, alpha - beta u]. out contiguous. */
vl_status vl_dv_head_forward(vl_ctx *ctx, const vl_tensor *h, const vl_tensor *u,
                             const vl_tensor *s, bool pred_unspliced, const vl_tensor *out,
                             vl_error *err);

/* The head on dropout(h): h contiguous, keep [n, 2G or 3G] (contiguous bool) receives the
 * mask, drawn from gen's stream exactly as vl_dropout_forward on h (gen advances as there),
 * and the rates are h * (keep ? 1 / (1 - p) : 0) in h's dtype. */
vl_status vl_dv_head_dropout_forward(vl_ctx *ctx, vl_philox *gen, const vl_tensor *h,
                                     const vl_tensor *u, const vl_tensor *s, bool pred_unspliced,
                                     double p, const vl_tensor *out, const vl_tensor *keep,
                                     vl_error *err);

/* The gradient of the head with respect to h for an output gradient g: grad_h [n, 2G or 3G]
 * (contiguous); with keep (not NULL) that of the head on dropout(h) with that mask and p. */
vl_status vl_dv_head_backward(vl_ctx *ctx, const vl_tensor *g, const vl_tensor *u,
                              const vl_tensor *s, bool pred_unspliced, const vl_tensor *keep,
                              double p, const vl_tensor *grad_h, vl_error *err);

#endif
