/* k-nearest neighbours (Euclidean) between the rows of dense matrices.
 * Exact: blocked GEMM screening in f32 (OpenBLAS, one thread per query block) keeps the best
 * k + margin candidates of each query, which are then re-ranked by their exact squared
 * distance in double. Approximate: NN-descent started from a random-projection forest, with
 * "pull" joins (each point updates only its own list) so that it is race-free.
 * Both give the same result on any number of threads. Indices are 0-based. */
#ifndef VELUA_KNN_H
#define VELUA_KNN_H

#include <stdint.h>

#include "parallel.h"
#include "tensor.h"

/* The k nearest rows of ref [n, d] for each row of query [m, d] (f32 or f64, equal dtypes,
 * any strides). query NULL means ref itself: each row is then its own first neighbour.
 * out_idx [m, k] i64 and out_dist [m, k] (dtype of ref), both contiguous, get the neighbours
 * by ascending distance (ties by index). Distances are exact: the squared distance in double,
 * for f32 data rounded to f32 and square-rooted in f32 (as scikit-learn's
 * euclidean_distances on f32 input). */
vl_status vl_knn_exact(vl_ctx *ctx, const vl_tensor *ref, const vl_tensor *query, int64_t k,
                       const vl_tensor *out_idx, const vl_tensor *out_dist, vl_error *err);

typedef struct {
  uint64_t seed;
  int n_trees;        /* random-projection trees for the start graph (>= 1) */
  int leaf_size;      /* points per leaf (>= 2) */
  int max_candidates; /* new and old join candidates kept per point and iteration */
  int max_iters;
  double delta;       /* stop once an iteration makes fewer than delta * n * k updates */
  int iters_done;     /* output: iterations run */
} vl_nndescent_opts;

/* Fills opts with the defaults for n points and k neighbours. */
void vl_nndescent_defaults(vl_nndescent_opts *opts, int64_t n, int64_t k);

/* Approximate k nearest neighbours of every row of x [n, d] (self first), outputs as for
 * vl_knn_exact with query NULL; the listed distances are exact. */
vl_status vl_knn_nndescent(vl_ctx *ctx, const vl_tensor *x, int64_t k, vl_nndescent_opts *opts,
                           const vl_tensor *out_idx, const vl_tensor *out_dist, vl_error *err);

/* The neighbour lists idx [n, k] (0-based, -1 for none) with distances dist [n, k] (f32 or
 * f64) as a CSR matrix with ncols columns, columns sorted, zero distances (self, duplicates)
 * dropped. With indices and values NULL fills only indptr (n + 1 entries; indptr[n] is the
 * nnz); call again with arrays of that size. */
vl_status vl_knn_graph_csr(int64_t n, int64_t ncols, int64_t k, const int64_t *idx,
                           const void *dist, vl_dtype dt, int64_t *indptr, int64_t *indices,
                           void *values, vl_error *err);

#endif
