/* Row and column selection of CSR matrices, for AnnData subsetting and joins:
 * out = a[rows, cols] with 0-based position lists (repeats allowed, any order). */
#ifndef VELUA_CSR_SELECT_H
#define VELUA_CSR_SELECT_H

#include "sparse_csr.h"

/* rows: nrows_out positions in [0, a->nrows), or NULL for all rows; cols likewise (NULL for
 * all columns). Call first with out_indices = out_values = NULL to fill out_indptr
 * (nrows_out + 1 entries, the last one the nnz of the result); then again with arrays of that
 * size. Column indices come out sorted within each row when a's were (and cols increases);
 * otherwise in the order of a's entries. Values keep a's dtype. */
vl_status vl_csr_select(const vl_csr *a, const int64_t *rows, int64_t nrows_out,
                        const int64_t *cols, int64_t ncols_out, int64_t *out_indptr,
                        int64_t *out_indices, void *out_values, vl_error *err);

#endif
