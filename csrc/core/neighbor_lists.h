/* Neighbour lists taken from a stored kNN distance graph, and their recursive expansion, as
 * scVelo's get_indices / get_iterative_indices. Indices are 0-based; -1 pads short lists. */
#ifndef VELUA_NEIGHBOR_LISTS_H
#define VELUA_NEIGHBOR_LISTS_H

#include <stdint.h>

#include "parallel.h"
#include "sparse_csr.h"
#include "status.h"

/* The smallest number of stored entries over the rows of d (0 for an empty matrix). */
int64_t vl_min_row_count(const vl_csr *d);

/* out [nrows, k]: for each row of the distance graph d its stored columns in storage order;
 * rows with more than k entries keep the k smallest distances (ties by position), in storage
 * order. Rows with fewer than k entries are padded with -1. */
vl_status vl_neighbor_lists(const vl_csr *d, int64_t k, int64_t *out, vl_error *err);

/* Recursive neighbourhoods: row i is the sorted set {i} u N(i) u N(N(i)) ... with `depth`
 * expansions of the lists nbr [n, k] (-1 entries ignored). Two passes: with indices == NULL
 * fills counts (n entries, set sizes); otherwise writes the sets into indices at the offsets
 * indptr (n + 1, indptr[0] = 0, from the counts). */
vl_status vl_recursive_neighbors(vl_ctx *ctx, int64_t n, int64_t k, const int64_t *nbr, int depth,
                                 int64_t *counts, const int64_t *indptr,
                                 int64_t *indices, vl_error *err);

#endif
