/* Transition matrices from the velocity graph and what is computed from them: scVelo's
 * exponential kernel (transition_matrix), the density-corrected projection of velocities onto
 * an embedding (velocity_embedding) and row-wise correlations of two sparse matrices
 * (reconstructability). CSR matrices have sorted column indices within rows. */
#ifndef VELUA_TRANSITION_H
#define VELUA_TRANSITION_H

#include <stdint.h>

#include "parallel.h"
#include "sparse_csr.h"
#include "status.h"

/* Unnormalised transition kernel from the positive graph pos (values in (0, 1]) and the
 * negative graph neg (values in [-1, 0)), both n x n with disjoint patterns, and the optional
 * self-transition scores self_prob [n] (NULL: no diagonal). Entries:
 *   default:           exp(scale * pi) for every stored entry, diagonal exp(scale * self)
 *   negative_cosines:  sign(pi) * expm1(scale * |pi|), diagonal expm1(scale * self)
 * A diagonal entry exists where self > 0 (a graph entry on the diagonal is replaced).
 * Two passes: with out_indices == NULL fills counts [n]; then fills out_indices/out_values
 * (f32) at out_indptr. */
vl_status vl_transition_kernel(const vl_csr *pos, const vl_csr *neg, const float *self_prob,
                               double scale, int negative_cosines, int64_t *counts,
                               const int64_t *out_indptr, int64_t *out_indices,
                               float *out_values, vl_error *err);

/* Divides each row of the f32 CSR matrix (values in place) by the sum of its absolute values;
 * rows summing to 0 are left unchanged. Sums in double. */
void vl_csr_normalize_abs_rows(vl_ctx *ctx, int64_t n, const int64_t *indptr, float *values);

/* Density-corrected embedded velocity: for each row i with stored entries j != i and T_ij != 0,
 * e_ij = (x_j - x_i) / |x_j - x_i| (0 when x_j = x_i),
 * V_i = sum_j T_ij e_ij - mean_j(T_ij) sum_j e_ij. X [n, d] and V [n, d] are f64 row-major;
 * T is f32 or f64. With retain_scale the displacements are not normalised. */
vl_status vl_velocity_embedding(vl_ctx *ctx, const vl_csr *T, int64_t d, const double *X,
                                int retain_scale, double *V, vl_error *err);

/* r[i] = Pearson correlation of rows i of a and b over the union of their stored columns
 * (absent entries are 0); NaN when either row is constant on that union. */
vl_status vl_csr_row_correlation(vl_ctx *ctx, const vl_csr *a, const vl_csr *b, double *r,
                                 vl_error *err);

/* m[i] = max(0, max of the stored values of row i): scipy's row max with implicit zeros. */
void vl_csr_row_max0(int64_t n, const int64_t *indptr, const float *values, float *m);

#endif
