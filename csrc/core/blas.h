/* Matrix products through OpenBLAS. Operands may have any strides: a layout BLAS accepts
 * (row- or column-major with a valid leading dimension) is passed as is, anything else is
 * copied to a contiguous scratch buffer first. */
#ifndef VELUA_BLAS_H
#define VELUA_BLAS_H

#include "parallel.h"
#include "tensor.h"

/* c = a @ b over the last two dims; leading (batch) dims of a, b and c must be equal (expand
 * a and b beforehand for broadcasting; zero strides are fine). c must have unit stride in its
 * last dim. f32 and f64 use BLAS; i64 a plain loop; bool is rejected. */
vl_status vl_matmul(vl_ctx *ctx, const vl_tensor *a, const vl_tensor *b, const vl_tensor *c,
                    vl_error *err);

/* out = x w^T + bias, the affine map of a linear layer: x [m, k], w [n, k], bias [n] or NULL,
 * out [m, n] with unit stride in its last dim; f32 or f64, all one dtype. The bias is written
 * into out first and GEMM accumulates onto it (beta = 1), so it costs no pass of its own and
 * GEMM does not clear out first; w is read transposed in place. */
vl_status vl_linear(vl_ctx *ctx, const vl_tensor *x, const vl_tensor *w, const vl_tensor *bias,
                    const vl_tensor *out, vl_error *err);

/* OpenBLAS single-threaded for a while: for BLAS/LAPACK calls made from inside our own pool
 * (or where OpenBLAS's spinning workers would fight it). Returns the thread count to restore
 * with vl_blas_single_end. OpenBLAS's thread count is process-wide. */
int vl_blas_single_begin(void);
void vl_blas_single_end(int saved);

#endif
