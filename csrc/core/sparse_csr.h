/* Compressed sparse row (CSR) matrices as plain views over caller-owned arrays, and their
 * kernels: validation, sparse x dense products, transpose and conversions to and from dense.
 * Indices are 0-based. Every kernel but vl_csr_validate expects a matrix that passed it. */
#ifndef VELUA_SPARSE_CSR_H
#define VELUA_SPARSE_CSR_H

#include <stdbool.h>
#include <stdint.h>

#include "parallel.h"
#include "tensor.h"

typedef struct {
  int64_t nrows, ncols, nnz;
  const int64_t *indptr;  /* nrows + 1 entries: row i holds positions [indptr[i], indptr[i+1]) */
  const int64_t *indices; /* nnz column indices */
  const void *values;     /* nnz contiguous values of dtype */
  vl_dtype dtype;         /* VL_F32 or VL_F64 */
} vl_csr;

/* Checks sizes, dtype, indptr (starts at 0, non-decreasing, ends at nnz) and indices (in
 * [0, ncols)); the message names the first offending 0-based position. Column indices need
 * not be sorted within a row and may repeat (repeats add up). */
vl_status vl_csr_validate(const vl_csr *a, vl_error *err);

/* out = a @ b, with b [ncols, k] and out [nrows, k], or b [ncols] and out [nrows]; any strides,
 * dtype of both equal to a's; out must not overlap b. Parallel over rows, each row written by
 * one thread in a fixed order: the result does not depend on the thread count. */
vl_status vl_csr_spmm(vl_ctx *ctx, const vl_csr *a, const vl_tensor *b, const vl_tensor *out,
                      vl_error *err);

/* The transpose of a into caller-provided arrays: t_indptr (ncols + 1), t_indices and
 * t_values (nnz each, dtype of a). Column indices come out sorted within each row (a counting
 * sort, stable, so repeated entries keep their order). */
vl_status vl_csr_transpose(const vl_csr *a, int64_t *t_indptr, int64_t *t_indices,
                           void *t_values, vl_error *err);

/* Adds the entries of a into out [nrows, ncols] (any strides, dtype of a), which the caller
 * zeroed: repeated entries are summed. */
vl_status vl_csr_to_dense(vl_ctx *ctx, const vl_csr *a, const vl_tensor *out, vl_error *err);

/* The nonzeros of dense (2-d, f32 or f64, any strides) in CSR form, row by row. With indices
 * and values NULL, fills only indptr (nrows + 1 entries; indptr[nrows] is the nnz); call again
 * with arrays of that size to fill them. */
vl_status vl_csr_from_dense(const vl_tensor *dense, int64_t *indptr, int64_t *indices,
                            void *values, vl_error *err);

/* order[0..n): the rows of a square pattern (indptr, indices; a graph) in breadth-first order,
 * each component from its lowest unvisited row. Returns false when out of memory. Kernels that
 * read the rows of a dense operand through the graph visit cells in this order so that cells
 * handled one after the other share most of what they read in cache. */
bool vl_bfs_order(int64_t n, const int64_t *indptr, const int64_t *indices, int64_t *order);

#endif
