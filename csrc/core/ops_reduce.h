/* Reductions along one dim (or all elements) of a contiguous tensor viewed as
 * [outer, r, inner]: sum, prod, max, min (with the index of the first extreme), any, all.
 * Results do not depend on the thread count: partial sums are formed over fixed blocks and
 * combined in block order. */
#ifndef VELUA_OPS_REDUCE_H
#define VELUA_OPS_REDUCE_H

#include "parallel.h"
#include "tensor.h"

typedef enum { VL_SUM, VL_PROD, VL_MAX, VL_MIN, VL_ANY, VL_ALL, VL_REDUCE_COUNT } vl_reduce_op;

const char *vl_reduce_name(vl_reduce_op op);
/* The dtype of values produced by op on input dtype dt (sum/prod of bool -> i64;
 * any/all -> bool). */
vl_dtype vl_reduce_out_dtype(vl_reduce_op op, vl_dtype dt);

/* x: contiguous, viewed as [outer, r, inner] (outer * r * inner == numel(x)).
 * values: contiguous, outer*inner elements of vl_reduce_out_dtype(op, x dtype), or NULL.
 * indices: contiguous i64, outer*inner elements (0-based position along r), or NULL; only for
 * VL_MAX / VL_MIN. r == 0 is an error for max/min; sum gives 0, prod 1. NaN propagates in
 * max/min (the first NaN wins). */
vl_status vl_reduce(vl_ctx *ctx, vl_reduce_op op, const vl_tensor *x, int64_t outer, int64_t r,
                    int64_t inner, const vl_tensor *values, const vl_tensor *indices,
                    vl_error *err);

#endif
