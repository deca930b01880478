/* UMAP's layout optimisation (umap-learn 0.5 optimize_layout_euclidean): stochastic gradient
 * descent on the fuzzy cross-entropy, each edge sampled in proportion to its weight
 * (epochs_per_sample), negative_sample_rate random repulsions per sample, gradients clipped
 * to [-4, 4], learning rate alpha (1 - epoch / n_epochs).
 *
 * Determinism. umap-learn moves both ends of an edge at once, which makes a parallel pass
 * racy. Here every epoch is one parallel pass over the vertices: vertex j takes, in order,
 * the attractive moves of the edges (k, j) with k < j, those of its own edges (j, k) each
 * followed by its negative samples, then those of the edges (k, j) with k > j: the moves
 * umap-learn gives j in an epoch, in the same order. Partners are read at their positions
 * at the start of the epoch, j itself at its current one. Which edges are due, and with how
 * many negative samples, follows umap-learn's epochs_per_sample counters exactly. Negative
 * sample p of edge e in epoch t is vertex floor(w n / 2^32), w a 32-bit half of
 * mix64(seed + (e 2^32 + t) W1 + (p / 2 + 1) W2) (SplitMix64's finaliser, a keyed
 * counter-based generator). Nothing depends on the thread count, so results are identical on
 * any number of threads (and, with FMA contraction off, in the baseline, AVX2 and AVX-512
 * builds of the kernel).
 * Indices are 0-based. */
#ifndef VELUA_UMAP_LAYOUT_H
#define VELUA_UMAP_LAYOUT_H

#include <stdint.h>

#include "parallel.h"
#include "sparse_csr.h"
#include "status.h"

typedef struct {
  int64_t n_epochs;              /* > 0 */
  double a, b;                   /* curve 1 / (1 + a d^(2b)) */
  double gamma;                  /* repulsion strength, 1 */
  double initial_alpha;          /* learning rate at epoch 0, 1 */
  double negative_sample_rate;   /* 5 */
  uint64_t seed;                 /* key of the negative sampling stream */
} vl_umap_sgd_opts;

/* The graph after umap-learn's pruning: entries below max / n_epochs, zeros and negative ones
 * removed (f32 threshold as umap-learn's). With indices and values NULL fills only indptr
 * (nrows + 1, the last entry the kept count); then again with arrays of that size. Values
 * come out f32. */
vl_status vl_umap_prune(const vl_csr *a, int64_t n_epochs, int64_t *indptr, int64_t *indices,
                        float *values, vl_error *err);

/* Optimises the layout Y (n x dim, row-major f32, updated in place) for the graph a (square,
 * n x n, f32 values > 0 as after vl_umap_prune). */
vl_status vl_umap_optimize(vl_ctx *ctx, const vl_csr *a, float *Y, int64_t dim,
                           const vl_umap_sgd_opts *o, vl_error *err);

#endif
