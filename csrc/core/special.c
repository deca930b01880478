/* Incomplete beta function and its parameter derivatives (see special.h). */
#include "special.h"

#include <math.h>

#include "ops_elementwise.h"
#include "strided_loop.h"

/* Continued fraction for I_x(a, b) (valid for x < (a + 1)/(a + b + 2)), modified Lentz. */
static double betacf(double a, double b, double x) {
  const double tiny = 1e-300, eps = 1e-15;
  double qab = a + b, qap = a + 1.0, qam = a - 1.0;
  double c = 1.0, d = 1.0 - qab * x / qap;
  if (fabs(d) < tiny) d = tiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= 20000; m++) {
    double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1.0 + aa * d;
    if (fabs(d) < tiny) d = tiny;
    c = 1.0 + aa / c;
    if (fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1.0 + aa * d;
    if (fabs(d) < tiny) d = tiny;
    c = 1.0 + aa / c;
    if (fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    double del = d * c;
    h *= del;
    if (fabs(del - 1.0) < eps) break;
  }
  return h;
}

double vl_betainc(double a, double b, double x) {
  if (isnan(a) || isnan(b) || isnan(x) || a <= 0 || b <= 0) return NAN;
  if (x <= 0) return 0.0;
  if (x >= 1) return 1.0;
  double lbt = vl_lgamma(a + b) - vl_lgamma(a) - vl_lgamma(b) + a * log(x) + b * log1p(-x);
  if (x < (a + 1.0) / (a + b + 2.0)) return exp(lbt) * betacf(a, b, x) / a;
  return 1.0 - exp(lbt) * betacf(b, a, 1.0 - x) / b;
}

static double deriv(double a, double b, double x, int which) {
  double p = which == 1 ? a : b;
  double h = 1e-3 * p;
  if (h > 1e-3) h = 1e-3;
  double f[4];
  const double off[4] = {-2, -1, 1, 2};
  for (int k = 0; k < 4; k++) {
    double q = p + off[k] * h;
    f[k] = which == 1 ? vl_betainc(q, b, x) : vl_betainc(a, q, x);
  }
  return (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * h);
}

void vl_betainc_grad(double a, double b, double x, double *da, double *db) {
  if (da) *da = deriv(a, b, x, 1);
  if (db) *db = deriv(a, b, x, 2);
}

static double get(const char *p, vl_dtype dt) {
  return dt == VL_F32 ? (double)*(const float *)p : *(const double *)p;
}

typedef struct {
  int which;
  vl_dtype dt;
} bi_job;

static void bi_kernel_typed(char **p, const int64_t *s, int64_t n, void *vp) {
  const bi_job *j = vp;
  char *o = p[0];
  const char *a = p[1], *b = p[2], *x = p[3];
  for (int64_t i = 0; i < n; i++, o += s[0], a += s[1], b += s[2], x += s[3]) {
    double av = get(a, j->dt), bv = get(b, j->dt), xv = get(x, j->dt), r;
    if (j->which == 0) r = vl_betainc(av, bv, xv);
    else r = deriv(av, bv, xv, j->which);
    if (j->dt == VL_F32) *(float *)o = (float)r;
    else *(double *)o = r;
  }
}

vl_status vl_betainc_op(vl_ctx *ctx, int which, const vl_tensor *out, const vl_tensor *a,
                        const vl_tensor *b, const vl_tensor *x, vl_error *err) {
  if (!vl_dtype_is_float(out->dtype) || a->dtype != out->dtype || b->dtype != out->dtype ||
      x->dtype != out->dtype)
    return vl_fail(err, VL_ERR_DTYPE, "betainc: a, b, x and the output must share a float dtype");
  vl_tensor ba, bb, bx;
  vl_status st = vl_broadcast_to(a, out->ndim, out->shape, &ba, err);
  if (!st) st = vl_broadcast_to(b, out->ndim, out->shape, &bb, err);
  if (!st) st = vl_broadcast_to(x, out->ndim, out->shape, &bx, err);
  if (st) return st;
  bi_job j = {which, out->dtype};
  const vl_tensor *ops[4] = {out, &ba, &bb, &bx};
  vl_loop(ctx, 4, ops, bi_kernel_typed, &j);
  return VL_OK;
}
