/* The velocity graph of scVelo: for each cell i and candidate neighbour j the Pearson
 * correlation across genes between the displacement dX_ij = X_j - X_i (optionally mapped by
 * sign(x) sqrt|x|) and the cell's velocity v_i; and the kNN velocity confidence.
 * X and V are f32 [n, g] row-major contiguous. */
#ifndef VELUA_VELOCITY_GRAPH_H
#define VELUA_VELOCITY_GRAPH_H

#include <stdint.h>

#include "parallel.h"
#include "status.h"

/* vals[p] for every pair (i, indices[p]) with p in [indptr[i], indptr[i+1]): corr(rho(X_j -
 * X_i), V_i), where V_i must already be transformed and centred by the caller and rho is the
 * signed square root when sqrt_transform is set (identity otherwise). Rows whose V_i is all
 * zero get 0 everywhere; undefined correlations (a zero displacement, self) give 0. The
 * per-pair sums run in float32 lanes of 8 genes combined in double; each value depends only
 * on its own pair, not on the thread count. */
vl_status vl_velocity_correlations(vl_ctx *ctx, int64_t n, int64_t g, const float *X,
                                   const float *V, int sqrt_transform, const int64_t *indptr,
                                   const int64_t *indices, float *vals, vl_error *err);

/* R[i] = mean over the valid entries j of nbr[i, :k] (-1 entries skipped) of corr(V_i, V_j)
 * with V centred per cell by the caller. A term with a zero vector on either side is undefined
 * (NaN in scVelo) and is left out of the mean; R[i] = 0 when no term is defined. */
vl_status vl_velocity_confidence(vl_ctx *ctx, int64_t n, int64_t g, const float *V,
                                 const int64_t *nbr, int64_t k, double *R, vl_error *err);

#endif
