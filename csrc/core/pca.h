/* Mean-centred PCA (no scaling) of a sparse or dense matrix through the smaller Gram matrix of
 * the implicitly centred data (X_c X_c^T or X_c^T X_c) and its top eigenpairs.
 * - f64 values, and f32 values up to n g min(n, g) = 2^25: everything in double (blocked DSYRK,
 *   LAPACK, DGEMM): exact.
 * - f32 values: the centred data rounded to f32, products over slices of at most 256 rows (or
 *   columns) summed in double, so the Gram matrix carries about 1e-6 relative error (the
 *   precision class of scanpy's f32 ARPACK). The products are gram_f32.h's AVX-512 kernel where
 *   the CPU has it, else SSYRK/SGEMM. The top eigenpairs then come from block Lanczos (blocks of
 *   4, full reorthogonalisation) on an f32 copy of it, accepted when every pair's residual is at
 *   most 1e-3 of its distance to the other Ritz values and a short run on the complement finds
 *   no larger eigenvalue; else (or below order 256) LAPACK. LAPACK's part (also the Lanczos
 *   checks' small problems) goes through the tridiagonal form from order 32 (dsytrd, dsterf,
 *   dstein, dormtr), dsyevd/dsyevr below that or where the tridiagonal matrix splits.
 * Work is split in fixed pieces (row panels of the Gram matrix, row blocks of the scores), so
 * the result does not depend on the thread count. Signs follow scikit-learn's svd_flip with the
 * u-based decision scanpy uses: in each component the score of largest magnitude is positive.
 * Indices are 0-based. */
#ifndef VELUA_PCA_H
#define VELUA_PCA_H

#include <stdbool.h>
#include <stdint.h>

#include "parallel.h"
#include "sparse_csr.h"
#include "tensor.h"

typedef struct {
  double *scores;     /* n x k: U * S (rows of X projected on the components) */
  double *components; /* g x k: loadings (columns are unit vectors) */
  double *singular;   /* k singular values, descending */
  double *mean;       /* g column means */
  double total_var;   /* sum of the column variances (denominator n - 1) */
} vl_pca_out;

/* X is either the CSR matrix sp (then dense is NULL) or dense [n, g] (f32/f64, any strides).
 * 1 <= k <= min(n, g). All output arrays are provided by the caller. */
vl_status vl_pca(vl_ctx *ctx, const vl_csr *sp, const vl_tensor *dense, int64_t k,
                 vl_pca_out *out, vl_error *err);

/* The centred Gram matrix vl_pca decomposes, both triangles, into G (m x m, m = min(n, g):
 * X_c^T X_c, or X_c X_c^T when n <= g) and the column means into mean (g): for tests of the
 * kernels. blas_only: OpenBLAS's SSYRK/SGEMM also where gram_f32.h's AVX-512 kernel would run. */
vl_status vl_pca_gram(vl_ctx *ctx, const vl_csr *sp, const vl_tensor *dense, bool blas_only,
                      double *G, double *mean, vl_error *err);

#endif
