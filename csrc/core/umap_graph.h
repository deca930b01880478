/* UMAP's fuzzy simplicial set from a kNN graph, as umap-learn 0.5 computes it (and scanpy's
 * neighbors(method="umap") stores as connectivities): per point a distance offset rho and a
 * bandwidth sigma found by binary search (smooth_knn_dist, f32 search state), membership
 * strengths exp(-(d - rho) / sigma), then the fuzzy union P + P^T - P∘P^T.
 * Indices are 0-based. */
#ifndef VELUA_UMAP_GRAPH_H
#define VELUA_UMAP_GRAPH_H

#include <stdint.h>

#include "parallel.h"
#include "status.h"

typedef struct {
  int64_t n, k;
  const int64_t *knn_idx; /* n x k neighbour indices, -1 for none; self (if listed) first */
  const float *knn_dist;  /* n x k distances, ascending per row */
  double local_connectivity; /* 1.0 in scanpy */
  double set_op_mix_ratio;   /* 1.0: pure fuzzy union */
} vl_umap_graph_in;

/* sigmas and rhos (n each) as umap-learn's smooth_knn_dist (n_iter 64, bandwidth 1). */
vl_status vl_umap_smooth_knn(vl_ctx *ctx, const vl_umap_graph_in *in, float *sigmas,
                             float *rhos, vl_error *err);

/* The symmetric fuzzy graph as CSR with sorted column indices and f32 values (exact zeros
 * dropped): indptr has n + 1 entries, indices and values room for 2 * n * k; *nnz receives
 * the number of entries written. sigmas and rhos come from vl_umap_smooth_knn. */
vl_status vl_umap_fuzzy_union(vl_ctx *ctx, const vl_umap_graph_in *in, const float *sigmas,
                              const float *rhos, int64_t *indptr, int64_t *indices,
                              float *values, int64_t *nnz, vl_error *err);

#endif
