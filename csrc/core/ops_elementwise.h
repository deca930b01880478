/* Elementwise kernels over strided views. Every function takes operands of one shape
 * (broadcast beforehand) and writes into a caller-provided output; dtypes are checked. */
#ifndef VELUA_OPS_ELEMENTWISE_H
#define VELUA_OPS_ELEMENTWISE_H

#include "parallel.h"
#include "tensor.h"

typedef enum {
  VL_NEG, VL_EXP, VL_LOG, VL_LOG1P, VL_EXPM1, VL_SQRT, VL_ABS, VL_SIGN, VL_RELU, VL_SIGMOID,
  VL_TANH, VL_SOFTPLUS, VL_LGAMMA, VL_DIGAMMA, VL_SIN, VL_COS, VL_FLOOR, VL_CEIL, VL_ROUND,
  VL_RECIPROCAL, VL_SQUARE, VL_LOGICAL_NOT, VL_ISNAN, VL_TRIGAMMA,
  VL_UNARY_COUNT
} vl_unary_op;

typedef enum {
  VL_ADD, VL_SUB, VL_MUL, VL_DIV, VL_POW, VL_MAXIMUM, VL_MINIMUM, VL_ATAN2, VL_FMOD,
  VL_EQ, VL_NE, VL_LT, VL_LE, VL_GT, VL_GE, VL_AND, VL_OR, VL_XOR,
  VL_BINARY_COUNT
} vl_binary_op;

const char *vl_unary_name(vl_unary_op op);
const char *vl_binary_name(vl_binary_op op);
/* True for ops defined only on floating-point inputs (exp, log, ...). */
bool vl_unary_needs_float(vl_unary_op op);
/* Output dtype of a unary op on input dtype dt (bool for ISNAN / LOGICAL_NOT). */
vl_dtype vl_unary_out_dtype(vl_unary_op op, vl_dtype dt);
/* True for comparisons and logical ops (bool output). */
bool vl_binary_is_predicate(vl_binary_op op);
bool vl_binary_needs_float(vl_binary_op op);

/* dst = src converted to dst's dtype; src is broadcast to dst's shape. */
vl_status vl_copy(vl_ctx *ctx, const vl_tensor *dst, const vl_tensor *src, vl_error *err);
/* Every element of dst set to v (converted to dst's dtype); vi is used for i64 to keep 64 bits. */
vl_status vl_fill(vl_ctx *ctx, const vl_tensor *dst, double v, int64_t vi, vl_error *err);
/* dst[i] = start + i*step along a 1-d dst. */
vl_status vl_arange(vl_ctx *ctx, const vl_tensor *dst, double start, double step, vl_error *err);
/* out = op(x); x and out of the same shape; out dtype = vl_unary_out_dtype(op, x dtype). */
vl_status vl_unary(vl_ctx *ctx, vl_unary_op op, const vl_tensor *out, const vl_tensor *x,
                   vl_error *err);
/* out = op(a, b); a and b share a dtype and are broadcast to out's shape; out is bool for
 * predicates, else a's dtype. */
vl_status vl_binary(vl_ctx *ctx, vl_binary_op op, const vl_tensor *out, const vl_tensor *a,
                    const vl_tensor *b, vl_error *err);
/* out = min(max(x, lo), hi); NaN bounds mean no bound. */
vl_status vl_clamp(vl_ctx *ctx, const vl_tensor *out, const vl_tensor *x, double lo, double hi,
                   vl_error *err);
/* out = cond ? a : b; cond bool, a, b and out of one dtype; all broadcast to out's shape. */
vl_status vl_where(vl_ctx *ctx, const vl_tensor *out, const vl_tensor *cond, const vl_tensor *a,
                   const vl_tensor *b, vl_error *err);

/* Scalar special functions shared with other kernels. */
double vl_digamma(double x);
double vl_trigamma(double x);
double vl_lgamma(double x);

#endif
