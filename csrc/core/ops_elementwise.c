/* Elementwise kernels (see ops_elementwise.h): one generic loop per operation family, the dtype
 * chosen by a switch; contiguous runs get a plain indexed loop the compiler can vectorise. */
#include "ops_elementwise.h"

#include <math.h>
#include <string.h>

#include "strided_loop.h"
#include "vec_math.h"

typedef float f32;
typedef double f64;
typedef int64_t i64;
typedef uint8_t boolean;

/* ---------- names and dtype rules ---------- */

static const char *unary_names[VL_UNARY_COUNT] = {
  "neg", "exp", "log", "log1p", "expm1", "sqrt", "abs", "sign", "relu", "sigmoid",
  "tanh", "softplus", "lgamma", "digamma", "sin", "cos", "floor", "ceil", "round",
  "reciprocal", "square", "logical_not", "isnan", "trigamma"};
static const char *binary_names[VL_BINARY_COUNT] = {
  "add", "sub", "mul", "div", "pow", "maximum", "minimum", "atan2", "fmod",
  "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"};

const char *vl_unary_name(vl_unary_op op) { return op < VL_UNARY_COUNT ? unary_names[op] : "?"; }
const char *vl_binary_name(vl_binary_op op) { return op < VL_BINARY_COUNT ? binary_names[op] : "?"; }

bool vl_unary_needs_float(vl_unary_op op) {
  switch (op) {
    case VL_NEG: case VL_ABS: case VL_SIGN: case VL_RELU: case VL_SQUARE:
    case VL_LOGICAL_NOT: case VL_ISNAN: case VL_FLOOR: case VL_CEIL: case VL_ROUND:
      return false;
    default:
      return true;
  }
}

vl_dtype vl_unary_out_dtype(vl_unary_op op, vl_dtype dt) {
  if (op == VL_ISNAN || op == VL_LOGICAL_NOT) return VL_BOOL;
  return dt;
}

bool vl_binary_is_predicate(vl_binary_op op) { return op >= VL_EQ; }
bool vl_binary_needs_float(vl_binary_op op) {
  return op == VL_DIV || op == VL_POW || op == VL_ATAN2 || op == VL_FMOD;
}

/* ---------- special functions ---------- */

double vl_lgamma(double x) {
  int sign;
  return lgamma_r(x, &sign);
}

double vl_digamma(double x) {
  if (isnan(x) || x == -INFINITY) return NAN;
  if (x == 0) return signbit(x) ? INFINITY : -INFINITY;
  if (x < 0) {
    if (x == floor(x)) return NAN;
    /* reflection: psi(1 - x) - psi(x) = pi / tan(pi x) */
    return vl_digamma(1.0 - x) - M_PI / tan(M_PI * x);
  }
  double r = 0.0;
  while (x < 6.0) {
    r -= 1.0 / x;
    x += 1.0;
  }
  double f = 1.0 / (x * x);
  double t = f * (-1.0 / 12 + f * (1.0 / 120 + f * (-1.0 / 252 + f * (1.0 / 240 +
             f * (-1.0 / 132 + f * (691.0 / 32760 + f * (-1.0 / 12)))))));
  return r + log(x) - 0.5 / x + t;
}

double vl_trigamma(double x) {
  if (isnan(x) || x == -INFINITY) return NAN;
  if (x <= 0 && x == floor(x)) return INFINITY;
  if (x < 0) {
    /* reflection: psi1(1 - x) + psi1(x) = pi^2 / sin^2(pi x) */
    double s = sin(M_PI * x);
    return -vl_trigamma(1.0 - x) + M_PI * M_PI / (s * s);
  }
  double r = 0.0;
  while (x < 6.0) {
    r += 1.0 / (x * x);
    x += 1.0;
  }
  /* asymptotic series: 1/x + 1/(2x^2) + sum B_2k / x^(2k+1) */
  double f = 1.0 / (x * x);
  double t = 1.0 / x + f / 2.0 +
             f / x * (1.0 / 6 + f * (-1.0 / 30 + f * (1.0 / 42 + f * (-1.0 / 30 +
             f * (5.0 / 66 + f * (-691.0 / 2730 + f * (7.0 / 6)))))));
  return r + t;
}

static inline double softplus_d(double x) { return x > 20.0 ? x : log1p(exp(x)); }
static inline float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
static inline double sigmoid_d(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}
static inline float sigmoid_f(float x) {
  if (x >= 0) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

/* ---------- copy with conversion ---------- */

#define CONVERT_KERNEL(DT, ST)                                                   \
  static void copy_##ST##_to_##DT(char **p, const int64_t *s, int64_t n, void *a) { \
    (void)a;                                                                     \
    if (s[0] == sizeof(DT) && s[1] == sizeof(ST)) {                              \
      DT *restrict d = (DT *)p[0];                                               \
      const ST *restrict x = (const ST *)p[1];                                   \
      for (int64_t i = 0; i < n; i++) d[i] = (DT)x[i];                           \
    } else {                                                                     \
      char *d = p[0];                                                            \
      const char *x = p[1];                                                      \
      for (int64_t i = 0; i < n; i++, d += s[0], x += s[1])                      \
        *(DT *)d = (DT) * (const ST *)x;                                         \
    }                                                                            \
  }

#define CONVERT_FROM(ST) \
  CONVERT_KERNEL(f32, ST) CONVERT_KERNEL(f64, ST) CONVERT_KERNEL(i64, ST)
CONVERT_FROM(f32)
CONVERT_FROM(f64)
CONVERT_FROM(i64)
CONVERT_FROM(boolean)

/* to bool: nonzero test */
#define TO_BOOL_KERNEL(ST)                                                          \
  static void copy_##ST##_to_boolean(char **p, const int64_t *s, int64_t n, void *a) { \
    (void)a;                                                                        \
    char *d = p[0];                                                                 \
    const char *x = p[1];                                                           \
    for (int64_t i = 0; i < n; i++, d += s[0], x += s[1])                           \
      *(boolean *)d = *(const ST *)x != 0;                                          \
  }
TO_BOOL_KERNEL(f32)
TO_BOOL_KERNEL(f64)
TO_BOOL_KERNEL(i64)
TO_BOOL_KERNEL(boolean)

static const vl_inner_fn copy_kernels[VL_NDTYPES][VL_NDTYPES] = {
  /* [dst][src] */
  {copy_f32_to_f32, copy_f64_to_f32, copy_i64_to_f32, copy_boolean_to_f32},
  {copy_f32_to_f64, copy_f64_to_f64, copy_i64_to_f64, copy_boolean_to_f64},
  {copy_f32_to_i64, copy_f64_to_i64, copy_i64_to_i64, copy_boolean_to_i64},
  {copy_f32_to_boolean, copy_f64_to_boolean, copy_i64_to_boolean, copy_boolean_to_boolean},
};

vl_status vl_copy(vl_ctx *ctx, const vl_tensor *dst, const vl_tensor *src, vl_error *err) {
  vl_tensor b;
  vl_status st = vl_broadcast_to(src, dst->ndim, dst->shape, &b, err);
  if (st) return st;
  const vl_tensor *ops[2] = {dst, &b};
  vl_loop(ctx, 2, ops, copy_kernels[dst->dtype][src->dtype], NULL);
  return VL_OK;
}

/* ---------- fill, arange ---------- */

typedef struct { double v; int64_t vi; } fill_arg;

#define FILL_KERNEL(T, VALUE)                                                   \
  static void fill_##T(char **p, const int64_t *s, int64_t n, void *a) {       \
    const fill_arg *f = a;                                                      \
    T v = (T)(VALUE);                                                           \
    if (s[0] == sizeof(T)) {                                                    \
      T *restrict d = (T *)p[0];                                                \
      for (int64_t i = 0; i < n; i++) d[i] = v;                                 \
    } else {                                                                    \
      char *d = p[0];                                                           \
      for (int64_t i = 0; i < n; i++, d += s[0]) *(T *)d = v;                  \
    }                                                                           \
  }
FILL_KERNEL(f32, f->v)
FILL_KERNEL(f64, f->v)
FILL_KERNEL(i64, f->vi)
FILL_KERNEL(boolean, f->v != 0.0)

vl_status vl_fill(vl_ctx *ctx, const vl_tensor *dst, double v, int64_t vi, vl_error *err) {
  static const vl_inner_fn k[VL_NDTYPES] = {fill_f32, fill_f64, fill_i64, fill_boolean};
  fill_arg f = {v, vi};
  const vl_tensor *ops[1] = {dst};
  vl_loop(ctx, 1, ops, k[dst->dtype], &f);
  return VL_OK;
}

vl_status vl_arange(vl_ctx *ctx, const vl_tensor *dst, double start, double step, vl_error *err) {
  (void)ctx;
  if (dst->ndim != 1) return vl_fail(err, VL_ERR_SHAPE, "arange: output must be 1-d");
  for (int64_t i = 0; i < dst->shape[0]; i++) {
    int64_t idx = i;
    if (dst->dtype == VL_I64) vl_set_i64(dst, &idx, (int64_t)llround(start + (double)i * step));
    else vl_set_f64(dst, &idx, start + (double)i * step);
  }
  return VL_OK;
}

/* ---------- unary ---------- */

/* The float expression of each unary op, for a value x of type T (f32 or f64). */
#define UNARY_FLOAT_CASES(T, SUF)                                           \
  case VL_NEG: UNARY_LOOP(T, T, -x)                                         \
  case VL_EXP: UNARY_LOOP(T, T, exp##SUF(x))                                \
  case VL_LOG: UNARY_LOOP(T, T, log##SUF(x))                                \
  case VL_LOG1P: UNARY_LOOP(T, T, log1p##SUF(x))                            \
  case VL_EXPM1: UNARY_LOOP(T, T, expm1##SUF(x))                            \
  case VL_SQRT: UNARY_LOOP(T, T, sqrt##SUF(x))                              \
  case VL_ABS: UNARY_LOOP(T, T, fabs##SUF(x))                               \
  case VL_SIGN: UNARY_LOOP(T, T, (T)((x > 0) - (x < 0)) + (x != x ? x : 0)) \
  case VL_RELU: UNARY_LOOP(T, T, x > 0 ? x : (x != x ? x : 0))              \
  case VL_SIGMOID: UNARY_LOOP(T, T, (T)sigmoid_##SUF##_(x))                 \
  case VL_TANH: UNARY_LOOP(T, T, tanh##SUF(x))                              \
  case VL_SOFTPLUS: UNARY_LOOP(T, T, (T)softplus_##SUF##_(x))               \
  case VL_LGAMMA: UNARY_LOOP(T, T, (T)vl_lgamma((double)x))                 \
  case VL_DIGAMMA: UNARY_LOOP(T, T, (T)vl_digamma((double)x))               \
  case VL_TRIGAMMA: UNARY_LOOP(T, T, (T)vl_trigamma((double)x))             \
  case VL_SIN: UNARY_LOOP(T, T, sin##SUF(x))                                \
  case VL_COS: UNARY_LOOP(T, T, cos##SUF(x))                                \
  case VL_FLOOR: UNARY_LOOP(T, T, floor##SUF(x))                            \
  case VL_CEIL: UNARY_LOOP(T, T, ceil##SUF(x))                              \
  case VL_ROUND: UNARY_LOOP(T, T, nearbyint##SUF(x))                        \
  case VL_RECIPROCAL: UNARY_LOOP(T, T, (T)1 / x)                            \
  case VL_SQUARE: UNARY_LOOP(T, T, x * x)                                   \
  case VL_LOGICAL_NOT: UNARY_LOOP(T, boolean, x == 0)                       \
  case VL_ISNAN: UNARY_LOOP(T, boolean, x != x)                             \
  default: return;

#define sigmoid_f_ sigmoid_f
#define sigmoid__ sigmoid_d
#define softplus_f_ softplus_f
#define softplus__ softplus_d

#define UNARY_LOOP(IT, OT, EXPR)                                          \
  if (s[0] == sizeof(OT) && s[1] == sizeof(IT)) {                         \
    OT *restrict d = (OT *)p[0];                                          \
    const IT *restrict xs = (const IT *)p[1];                             \
    for (int64_t i = 0; i < n; i++) {                                     \
      IT x = xs[i];                                                       \
      d[i] = (OT)(EXPR);                                                  \
    }                                                                     \
  } else {                                                                \
    char *d = p[0];                                                       \
    const char *xs = p[1];                                                \
    for (int64_t i = 0; i < n; i++, d += s[0], xs += s[1]) {              \
      IT x = *(const IT *)xs;                                             \
      *(OT *)d = (OT)(EXPR);                                              \
    }                                                                     \
  }                                                                       \
  return;

static void unary_f32(char **p, const int64_t *s, int64_t n, void *a) {
  vl_unary_op op = *(const vl_unary_op *)a;
  if (s[0] == sizeof(f32) && s[1] == sizeof(f32)) {
    /* contiguous runs of the hottest transcendental ops take the SIMD kernels */
    if (op == VL_EXP) { vl_vec_exp_f32((f32 *)p[0], (const f32 *)p[1], n); return; }
    if (op == VL_SIGMOID) { vl_vec_sigmoid_f32((f32 *)p[0], (const f32 *)p[1], n); return; }
  }
  switch (op) { UNARY_FLOAT_CASES(f32, f) }
}
static void unary_f64(char **p, const int64_t *s, int64_t n, void *a) {
  switch (*(const vl_unary_op *)a) { UNARY_FLOAT_CASES(f64, ) }
}
static void unary_i64(char **p, const int64_t *s, int64_t n, void *a) {
  switch (*(const vl_unary_op *)a) {
    case VL_NEG: UNARY_LOOP(i64, i64, -x)
    case VL_ABS: UNARY_LOOP(i64, i64, x < 0 ? -x : x)
    case VL_SIGN: UNARY_LOOP(i64, i64, (x > 0) - (x < 0))
    case VL_RELU: UNARY_LOOP(i64, i64, x > 0 ? x : 0)
    case VL_SQUARE: UNARY_LOOP(i64, i64, x * x)
    case VL_FLOOR: case VL_CEIL: case VL_ROUND: UNARY_LOOP(i64, i64, x)
    case VL_LOGICAL_NOT: UNARY_LOOP(i64, boolean, x == 0)
    case VL_ISNAN: UNARY_LOOP(i64, boolean, x != x)
    default: return;
  }
}
static void unary_bool(char **p, const int64_t *s, int64_t n, void *a) {
  switch (*(const vl_unary_op *)a) {
    case VL_ABS: case VL_RELU: case VL_SIGN: case VL_SQUARE: case VL_FLOOR: case VL_CEIL:
    case VL_ROUND: UNARY_LOOP(boolean, boolean, x)
    case VL_LOGICAL_NOT: UNARY_LOOP(boolean, boolean, !x)
    case VL_ISNAN: UNARY_LOOP(boolean, boolean, x != x)
    default: return;
  }
}

vl_status vl_unary(vl_ctx *ctx, vl_unary_op op, const vl_tensor *out, const vl_tensor *x,
                   vl_error *err) {
  if (op >= VL_UNARY_COUNT) return vl_fail(err, VL_ERR_VALUE, "unknown unary op %d", (int)op);
  if (vl_unary_needs_float(op) && !vl_dtype_is_float(x->dtype))
    return vl_fail(err, VL_ERR_DTYPE, "%s: expected a f32 or f64 tensor, got %s",
                   vl_unary_name(op), vl_dtype_name(x->dtype));
  if (x->dtype == VL_BOOL && op == VL_NEG)
    return vl_fail(err, VL_ERR_DTYPE, "neg: not defined for bool tensors (use logical_not)");
  if (out->dtype != vl_unary_out_dtype(op, x->dtype))
    return vl_fail(err, VL_ERR_DTYPE, "%s: output dtype %s, expected %s", vl_unary_name(op),
                   vl_dtype_name(out->dtype), vl_dtype_name(vl_unary_out_dtype(op, x->dtype)));
  vl_tensor b;
  vl_status st = vl_broadcast_to(x, out->ndim, out->shape, &b, err);
  if (st) return st;
  static const vl_inner_fn k[VL_NDTYPES] = {unary_f32, unary_f64, unary_i64, unary_bool};
  const vl_tensor *ops[2] = {out, &b};
  vl_loop(ctx, 2, ops, k[x->dtype], &op);
  return VL_OK;
}

/* ---------- binary ---------- */

#define BINARY_LOOP(IT, OT, EXPR)                                              \
  if (s[0] == sizeof(OT) && s[1] == sizeof(IT) && s[2] == sizeof(IT)) {        \
    OT *restrict d = (OT *)p[0];                                               \
    const IT *restrict xs = (const IT *)p[1];                                  \
    const IT *restrict ys = (const IT *)p[2];                                  \
    for (int64_t i = 0; i < n; i++) {                                          \
      IT x = xs[i], y = ys[i];                                                 \
      d[i] = (OT)(EXPR);                                                       \
    }                                                                          \
  } else if (s[0] == sizeof(OT) && s[1] == sizeof(IT) && s[2] == 0) {          \
    OT *restrict d = (OT *)p[0];                                               \
    const IT *restrict xs = (const IT *)p[1];                                  \
    const IT y = *(const IT *)p[2];                                            \
    for (int64_t i = 0; i < n; i++) {                                          \
      IT x = xs[i];                                                            \
      d[i] = (OT)(EXPR);                                                       \
    }                                                                          \
  } else if (s[0] == sizeof(OT) && s[1] == 0 && s[2] == sizeof(IT)) {          \
    OT *restrict d = (OT *)p[0];                                               \
    const IT x = *(const IT *)p[1];                                            \
    const IT *restrict ys = (const IT *)p[2];                                  \
    for (int64_t i = 0; i < n; i++) {                                          \
      IT y = ys[i];                                                            \
      d[i] = (OT)(EXPR);                                                       \
    }                                                                          \
  } else {                                                                     \
    char *d = p[0];                                                            \
    const char *xs = p[1], *ys = p[2];                                         \
    for (int64_t i = 0; i < n; i++, d += s[0], xs += s[1], ys += s[2]) {       \
      IT x = *(const IT *)xs, y = *(const IT *)ys;                             \
      *(OT *)d = (OT)(EXPR);                                                   \
    }                                                                          \
  }                                                                            \
  return;

#define PREDICATE_CASES(T)                          \
  case VL_EQ: BINARY_LOOP(T, boolean, x == y)       \
  case VL_NE: BINARY_LOOP(T, boolean, x != y)       \
  case VL_LT: BINARY_LOOP(T, boolean, x < y)        \
  case VL_LE: BINARY_LOOP(T, boolean, x <= y)       \
  case VL_GT: BINARY_LOOP(T, boolean, x > y)        \
  case VL_GE: BINARY_LOOP(T, boolean, x >= y)       \
  case VL_AND: BINARY_LOOP(T, boolean, (x != 0) && (y != 0)) \
  case VL_OR: BINARY_LOOP(T, boolean, (x != 0) || (y != 0))  \
  case VL_XOR: BINARY_LOOP(T, boolean, (x != 0) != (y != 0)) \
  default: return;

/* maximum/minimum propagate NaN like PyTorch */
#define BINARY_FLOAT_CASES(T, SUF)                                       \
  case VL_ADD: BINARY_LOOP(T, T, x + y)                                  \
  case VL_SUB: BINARY_LOOP(T, T, x - y)                                  \
  case VL_MUL: BINARY_LOOP(T, T, x * y)                                  \
  case VL_DIV: BINARY_LOOP(T, T, x / y)                                  \
  case VL_POW: BINARY_LOOP(T, T, y == 2 ? x * x : pow##SUF(x, y))        \
  case VL_MAXIMUM: BINARY_LOOP(T, T, (x != x || x > y) ? x : y)          \
  case VL_MINIMUM: BINARY_LOOP(T, T, (x != x || x < y) ? x : y)          \
  case VL_ATAN2: BINARY_LOOP(T, T, atan2##SUF(x, y))                     \
  case VL_FMOD: BINARY_LOOP(T, T, fmod##SUF(x, y))                       \
  PREDICATE_CASES(T)

static void binary_f32(char **p, const int64_t *s, int64_t n, void *a) {
  switch (*(const vl_binary_op *)a) { BINARY_FLOAT_CASES(f32, f) }
}
static void binary_f64(char **p, const int64_t *s, int64_t n, void *a) {
  switch (*(const vl_binary_op *)a) { BINARY_FLOAT_CASES(f64, ) }
}
static void binary_i64(char **p, const int64_t *s, int64_t n, void *a) {
  switch (*(const vl_binary_op *)a) {
    case VL_ADD: BINARY_LOOP(i64, i64, (i64)((uint64_t)x + (uint64_t)y))
    case VL_SUB: BINARY_LOOP(i64, i64, (i64)((uint64_t)x - (uint64_t)y))
    case VL_MUL: BINARY_LOOP(i64, i64, (i64)((uint64_t)x * (uint64_t)y))
    case VL_MAXIMUM: BINARY_LOOP(i64, i64, x > y ? x : y)
    case VL_MINIMUM: BINARY_LOOP(i64, i64, x < y ? x : y)
    PREDICATE_CASES(i64)
  }
}
static void binary_bool(char **p, const int64_t *s, int64_t n, void *a) {
  switch (*(const vl_binary_op *)a) {
    case VL_ADD: case VL_MAXIMUM: BINARY_LOOP(boolean, boolean, x || y)
    case VL_MUL: case VL_MINIMUM: BINARY_LOOP(boolean, boolean, x && y)
    PREDICATE_CASES(boolean)
  }
}

vl_status vl_binary(vl_ctx *ctx, vl_binary_op op, const vl_tensor *out, const vl_tensor *a,
                    const vl_tensor *b, vl_error *err) {
  if (op >= VL_BINARY_COUNT) return vl_fail(err, VL_ERR_VALUE, "unknown binary op %d", (int)op);
  const char *name = vl_binary_name(op);
  if (a->dtype != b->dtype)
    return vl_fail(err, VL_ERR_DTYPE, "%s: operand dtypes differ (%s and %s)", name,
                   vl_dtype_name(a->dtype), vl_dtype_name(b->dtype));
  if (vl_binary_needs_float(op) && !vl_dtype_is_float(a->dtype))
    return vl_fail(err, VL_ERR_DTYPE, "%s: expected f32 or f64 operands, got %s", name,
                   vl_dtype_name(a->dtype));
  bool pred = vl_binary_is_predicate(op);
  if (!pred && a->dtype == VL_BOOL && (op == VL_SUB))
    return vl_fail(err, VL_ERR_DTYPE, "%s: not defined for bool tensors", name);
  vl_dtype want = pred ? VL_BOOL : a->dtype;
  if (out->dtype != want)
    return vl_fail(err, VL_ERR_DTYPE, "%s: output dtype %s, expected %s", name,
                   vl_dtype_name(out->dtype), vl_dtype_name(want));
  vl_tensor ba, bb;
  vl_status st = vl_broadcast_to(a, out->ndim, out->shape, &ba, err);
  if (!st) st = vl_broadcast_to(b, out->ndim, out->shape, &bb, err);
  if (st) return st;
  static const vl_inner_fn k[VL_NDTYPES] = {binary_f32, binary_f64, binary_i64, binary_bool};
  const vl_tensor *ops[3] = {out, &ba, &bb};
  vl_loop(ctx, 3, ops, k[a->dtype], &op);
  return VL_OK;
}

/* ---------- clamp, where ---------- */

typedef struct { double lo, hi; } clamp_arg;

#define CLAMP_KERNEL(T)                                                       \
  static void clamp_##T(char **p, const int64_t *s, int64_t n, void *a) {    \
    const clamp_arg *c = a;                                                  \
    char *d = p[0];                                                          \
    const char *xs = p[1];                                                   \
    for (int64_t i = 0; i < n; i++, d += s[0], xs += s[1]) {                 \
      T x = *(const T *)xs;                                                  \
      if (!isnan(c->lo) && x < (T)c->lo) x = (T)c->lo;                       \
      if (!isnan(c->hi) && x > (T)c->hi) x = (T)c->hi;                       \
      *(T *)d = x;                                                           \
    }                                                                        \
  }
CLAMP_KERNEL(f32)
CLAMP_KERNEL(f64)
CLAMP_KERNEL(i64)

vl_status vl_clamp(vl_ctx *ctx, const vl_tensor *out, const vl_tensor *x, double lo, double hi,
                   vl_error *err) {
  if (x->dtype == VL_BOOL || out->dtype != x->dtype)
    return vl_fail(err, VL_ERR_DTYPE, "clamp: expected a numeric tensor, got %s",
                   vl_dtype_name(x->dtype));
  vl_tensor b;
  vl_status st = vl_broadcast_to(x, out->ndim, out->shape, &b, err);
  if (st) return st;
  static const vl_inner_fn k[3] = {clamp_f32, clamp_f64, clamp_i64};
  clamp_arg c = {lo, hi};
  const vl_tensor *ops[2] = {out, &b};
  vl_loop(ctx, 2, ops, k[x->dtype], &c);
  return VL_OK;
}

/* contiguous runs, with y contiguous or one value (as where(mask, g, 0)), vectorise */
#define WHERE_KERNEL(T)                                                                 \
  static void where_##T(char **p, const int64_t *s, int64_t n, void *a) {              \
    (void)a;                                                                           \
    if (s[0] == sizeof(T) && s[1] == sizeof(boolean) && s[2] == sizeof(T) &&           \
        (s[3] == sizeof(T) || s[3] == 0)) {                                            \
      T *restrict d = (T *)p[0];                                                       \
      const boolean *restrict c = (const boolean *)p[1];                               \
      const T *restrict x = (const T *)p[2];                                           \
      if (s[3] == 0) {                                                                 \
        const T y = *(const T *)p[3];                                                  \
        for (int64_t i = 0; i < n; i++) {                                              \
          T xi = x[i];                                                                 \
          d[i] = c[i] ? xi : y;                                                        \
        }                                                                              \
      } else {                                                                         \
        const T *restrict y = (const T *)p[3];                                         \
        for (int64_t i = 0; i < n; i++) {                                              \
          T xi = x[i], yi = y[i];                                                      \
          d[i] = c[i] ? xi : yi;                                                       \
        }                                                                              \
      }                                                                                \
      return;                                                                          \
    }                                                                                  \
    char *d = p[0];                                                                    \
    const char *c = p[1], *x = p[2], *y = p[3];                                        \
    for (int64_t i = 0; i < n; i++, d += s[0], c += s[1], x += s[2], y += s[3])        \
      *(T *)d = *(const boolean *)c ? *(const T *)x : *(const T *)y;                   \
  }
WHERE_KERNEL(f32)
WHERE_KERNEL(f64)
WHERE_KERNEL(i64)
WHERE_KERNEL(boolean)

vl_status vl_where(vl_ctx *ctx, const vl_tensor *out, const vl_tensor *cond, const vl_tensor *a,
                   const vl_tensor *b, vl_error *err) {
  if (cond->dtype != VL_BOOL)
    return vl_fail(err, VL_ERR_DTYPE, "where: condition must be bool, got %s",
                   vl_dtype_name(cond->dtype));
  if (a->dtype != out->dtype || b->dtype != out->dtype)
    return vl_fail(err, VL_ERR_DTYPE, "where: operand dtypes differ (%s, %s, output %s)",
                   vl_dtype_name(a->dtype), vl_dtype_name(b->dtype), vl_dtype_name(out->dtype));
  vl_tensor bc, ba, bb;
  vl_status st = vl_broadcast_to(cond, out->ndim, out->shape, &bc, err);
  if (!st) st = vl_broadcast_to(a, out->ndim, out->shape, &ba, err);
  if (!st) st = vl_broadcast_to(b, out->ndim, out->shape, &bb, err);
  if (st) return st;
  static const vl_inner_fn k[VL_NDTYPES] = {where_f32, where_f64, where_i64, where_boolean};
  const vl_tensor *ops[4] = {out, &bc, &ba, &bb};
  vl_loop(ctx, 4, ops, k[out->dtype], NULL);
  return VL_OK;
}
