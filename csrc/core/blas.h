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

#endif
