/* Per-gene kinetic fits of RNA velocity, as scVelo 0.3.3's tl.velocity: the steady-state
 * ("deterministic") extreme-quantile regression and the stochastic generalized least squares
 * over first and second moments. Inputs are f32 matrices [n cells, g genes], row-major and
 * contiguous; the float32 arithmetic of scVelo is kept where it decides which cells enter a
 * fit (normalised extremes and their percentile), sums are accumulated in double. */
#ifndef VELUA_VELOCITY_FIT_H
#define VELUA_VELOCITY_FIT_H

#include <stdint.h>

#include "parallel.h"
#include "status.h"

/* The q-th percentile (0..100) of x[0..n) with NumPy's default (linear) method, the
 * interpolation in double like numpy.percentile of a float32 array; x is reordered. n > 0. */
double vl_percentile_f32(float *x, int64_t n, double q);

typedef struct {
  double *gamma;      /* [g] gamma through the origin on the upper extreme cells, rounded to f32 */
  double *r2;         /* [g] 1 - sum(res^2) / sum((u - mean u)^2), NaN -> 0 */
  double *res_std;    /* [g] std (ddof 0) of res = u - gamma s over cells, or NULL */
  uint8_t *expressed; /* [g] any(s > 0) && any(u > 0) */
} vl_velocity_det_out;

/* Deterministic fit per gene with s = Ms, u = Mu; perc is the upper percentile (95). */
vl_status vl_velocity_fit_deterministic(vl_ctx *ctx, int64_t n, int64_t g, const float *Ms,
                                        const float *Mu, double perc, vl_velocity_det_out *out,
                                        vl_error *err);

/* Stochastic fit per gene of the [n, g] column sets Ms, Mu, Mss, Mus (usually the velocity
 * genes), given the deterministic gamma_det [g]; writes gamma [g] (rounded to f32). */
vl_status vl_velocity_fit_stochastic(vl_ctx *ctx, int64_t n, int64_t g, const float *Ms,
                                     const float *Mu, const float *Mss, const float *Mus,
                                     const double *gamma_det, double perc, double *gamma,
                                     vl_error *err);

#endif
