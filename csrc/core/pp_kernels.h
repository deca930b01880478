/* Sparse kernels of the preprocessing steps (velua.pp): per-row scaling, scVelo's shared
 * counts, column selection, and the moments operator. CSR inputs passed vl_csr_validate,
 * except where a kernel says what it needs; indices are 0-based. Outputs are
 * caller-provided arrays. */
#ifndef VELUA_PP_KERNELS_H
#define VELUA_PP_KERNELS_H

#include <stdint.h>

#include "parallel.h"
#include "sparse_csr.h"

/* out[p] = values[p] * scale[row of p], in the values' dtype (scale has that dtype too).
 * Reads no column index: a valid indptr suffices. */
vl_status vl_pp_scale_rows(vl_ctx *ctx, const vl_csr *a, const void *scale, void *out,
                           vl_error *err);

/* Row sums of a as scipy computes them for CSR (np.add.reduceat: the first stored value plus
 * NumPy's pairwise sum of the others), in the values' dtype; out has that dtype. Reads no
 * column index: a valid indptr suffices. */
vl_status vl_pp_row_sums(vl_ctx *ctx, const vl_csr *a, void *out, vl_error *err);

/* Per-column sums of x and x*x over the rows in order (f32 accumulators for f32 values, as
 * scipy's column sums; f64 otherwise), and, when y is given (one double per row), of x*y in
 * f64. Outputs have ncols doubles each; sumxy may be NULL. Checks every column index
 * (VL_ERR_INDEX): a valid indptr suffices. */
vl_status vl_pp_col_stats(const vl_csr *a, const double *y, double *sum, double *sumsq,
                          double *sumxy, vl_error *err);

/* The sums behind scVelo's csr_vcorrcoef of every column with the number of positive entries
 * per row, in one pass and f64 throughout: y[i] = positive entries of row i, and per column
 * sums of x, x*x (over the rows in order) and x*y. Equal to vl_pp_col_stats on the values
 * converted to f64 with that y. Outputs: y nrows doubles, the others ncols doubles. Checks
 * every column index (VL_ERR_INDEX): a valid indptr suffices. */
vl_status vl_pp_count_corr_stats(const vl_csr *a, double *y, double *sum, double *sumsq,
                                 double *sumxy, vl_error *err);

/* Seurat's normalised dispersion as scVelo's filter_genes_dispersion computes it through
 * pandas: genes grouped by bin[i] (1..nbins; 0 = no bin), per bin the mean of the dispersions
 * in f32 with pandas' compensated (Kahan) sum and the standard deviation in f64 (Welford);
 * out[i] = f32(disp[i] - mean) / sd, and 0 where that is NaN (no bin, NaN dispersion). A bin
 * of one gene gets mean 0 and sd = its dispersion (pandas' rule), so its gene scores 1. disp
 * holds f32 values (as doubles). */
void vl_pp_seurat_norm(int64_t n, const double *disp, const int64_t *bin, int64_t nbins,
                       double *out);

/* scVelo's shared counts: per column, the sum over rows where s > 0 and u > 0 of (s + u),
 * accumulated in f32 in row order (as scipy sums the f32 matrix). s and u have one shape.
 * Checks every column index (VL_ERR_INDEX): valid indptrs suffice. */
vl_status vl_pp_shared_counts(const vl_csr *s, const vl_csr *u, float *out, vl_error *err);

/* Keeps the columns with map[col] >= 0, renumbered to map[col]; with scale (one factor per row
 * in the values' dtype, or NULL) each kept value is multiplied by its row's factor, as
 * vl_pp_scale_rows would. With indices and values NULL fills only indptr (nrows + 1;
 * indptr[nrows] is the nnz) and checks every column index (VL_ERR_INDEX when one is out of
 * range), so a valid indptr suffices; call again with arrays that size and the indptr of the
 * first call. */
vl_status vl_pp_select_columns(vl_ctx *ctx, const vl_csr *a, const int64_t *map,
                               const void *scale, int64_t *indptr, int64_t *indices,
                               void *values, vl_error *err);

/* scVelo's moments operator A = rownorm((C > 0) + I) of a square matrix C, sorted columns,
 * f32 values 1 / (row count). Two calls as vl_pp_select_columns. */
vl_status vl_pp_moments_operator(const vl_csr *c, int64_t *indptr, int64_t *indices,
                                 float *values, vl_error *err);

/* Keeps in each row the `keep` largest values (ties: the earlier stored entry), as scVelo's
 * select_connectivities. Two calls as vl_pp_select_columns. */
vl_status vl_pp_top_per_row(const vl_csr *a, int64_t keep, int64_t *indptr, int64_t *indices,
                            void *values, vl_error *err);

#endif
