/* Trustworthiness of an embedding (Venna & Kaski 2001), as sklearn.manifold.trustworthiness
 * with the Euclidean metric:
 *   T(k) = 1 - 2 / (n k (2n - 3k - 1)) * sum_i sum_{j in N_k^Y(i)} max(0, r(i, j) - k)
 * where N_k^Y(i) are the k nearest neighbours of i in the embedding Y (i itself excluded)
 * and r(i, j) the rank of j among the other points by distance to i in the original space X
 * (nearest = 1). Distances are exact (differences squared and summed in f64); ties in either
 * space go to the lower index. O(n^2 (dx + dy)) time, O(n) memory per thread; rows run in
 * parallel and the penalty is an integer sum, so the result does not depend on threads. */
#ifndef VELUA_TRUSTWORTHINESS_H
#define VELUA_TRUSTWORTHINESS_H

#include <stdint.h>

#include "parallel.h"
#include "status.h"

/* X: n x dx and Y: n x dy, row-major f64; 1 <= k < n / 2. */
vl_status vl_trustworthiness(vl_ctx *ctx, const double *X, int64_t n, int64_t dx,
                             const double *Y, int64_t dy, int64_t k, double *out,
                             vl_error *err);

#endif
