/* Incomplete beta function, its parameter derivatives, the Beta implicit reparameterisation
 * gradient and the Beta quantile (see special.h). */
#include "special.h"

#include <float.h>
#include <math.h>
#include <stdatomic.h>

#include "ops_elementwise.h"
#include "strided_loop.h"

#define HALF_LOG_2PI 0.918938533204672741780329736406

/* lgamma(x) - [(x - 1/2) log x - x + log(2 pi)/2] for x >= 10: Stirling's series, eight terms
 * (the next one is below 1e-17 at x = 10). */
static double stirling_corr(double x) {
  static const double c[8] = {1.0 / 12, -1.0 / 360, 1.0 / 1260, -1.0 / 1680, 1.0 / 1188,
                              -691.0 / 360360, 1.0 / 156, -3617.0 / 122400};
  double r = 1.0 / (x * x), s = c[7];
  for (int k = 6; k >= 0; k--) s = s * r + c[k];
  return s / x;
}

double vl_lbeta(double a, double b) {
  if (isnan(a) || isnan(b) || a <= 0 || b <= 0) return NAN;
  double p = a < b ? a : b, q = a < b ? b : a;
  if (isinf(q)) return -INFINITY;
  if (p >= 10) {
    double corr = stirling_corr(p) + stirling_corr(q) - stirling_corr(p + q);
    return -0.5 * log(q) + HALF_LOG_2PI + corr + (p - 0.5) * log(p / (p + q)) +
           q * log1p(-p / (p + q));
  }
  if (q >= 10) {
    double corr = stirling_corr(q) - stirling_corr(p + q);
    return vl_lgamma(p) + corr + p - p * log(p + q) + (q - 0.5) * log1p(-p / (p + q));
  }
  return vl_lgamma(p) + vl_lgamma(q) - vl_lgamma(p + q);
}

double vl_digamma_diff(double x, double h) {
  if (h == 0) return 0.0;
  if (h < 0) return -vl_digamma_diff(x + h, -h);
  if (!(h < x)) return vl_digamma(x + h) - vl_digamma(x); /* no cancellation to fear */
  /* psi(x + h) - psi(x) = psi(x + 1 + h) - psi(x + 1) + h / (x (x + h)) */
  double s = 0.0;
  while (x < 10) {
    s += h / (x * (x + h));
    x += 1.0;
  }
  /* psi(y) = log y - 1/(2y) - sum_k c_k y^-2k; the differences y^-2k - x^-2k are formed as
   * x^-2k expm1(-2k log1p(h/x)) so that they keep their relative accuracy */
  static const double c[7] = {1.0 / 12, -1.0 / 120, 1.0 / 252, -1.0 / 240, 1.0 / 132,
                              -691.0 / 32760, 1.0 / 12};
  double lr = log1p(h / x), r = 1.0 / (x * x), pw = 1.0, ser = 0.0;
  for (int k = 1; k <= 7; k++) {
    pw *= r;
    ser += c[k - 1] * pw * expm1(-2.0 * k * lr);
  }
  return s + lr + 0.5 * h / (x * (x + h)) - ser;
}

/* A number with its derivatives with respect to the two continued-fraction parameters. */
typedef struct {
  double v, p, q;
} dual;

/* The continued fraction K = 1 + d1/(1 + d2/(1 + ...)) of DLMF 8.17.22, in which
 * I_y(p, q) = y^p (1-y)^q / (p B(p, q)) / K, with d_{2m+1} = -(p+m)(p+q+m) y / ((p+2m)(p+2m+1))
 * and d_{2m} = m (q-m) y / ((p+2m-1)(p+2m)). Modified Lentz, with every quantity carried as a
 * dual number; returns log K and its derivatives lp = dlogK/dp, lq = dlogK/dq. sp and sq are
 * the scales the derivatives will be compared against (the prefactor's log-derivatives), used
 * in the stopping rule. Returns 0, or -1 without convergence. */
static int beta_cf(double p, double q, double y, double sp, double sq, double *logk, double *lp,
                   double *lq) {
  const double tiny = 1e-300, eps = 1e-16;
  dual C = {1, 0, 0}, D = {0, 0, 0};
  double lk = 0, gp_sum = 0, gq_sum = 0;
  double big = p > q ? p : q;
  long maxk = 2 * (long)fmin(5e6, 1000.0 + 100.0 * sqrt(big));
  for (long k = 1; k <= maxk; k++) {
    dual d;
    double m = (double)(k / 2);
    if (k & 1) {
      double e1 = p + 2 * m, e2 = e1 + 1, den = e1 * e2;
      d.v = -(p + m) * (p + q + m) * y / den;
      d.p = -y * ((p + q + m) + (p + m)) / den - d.v * (1.0 / e1 + 1.0 / e2);
      d.q = -(p + m) * y / den;
    } else {
      double e1 = p + 2 * m - 1, e2 = e1 + 1, den = e1 * e2;
      d.v = m * (q - m) * y / den;
      d.p = -d.v * (1.0 / e1 + 1.0 / e2);
      d.q = m * y / den;
    }
    /* D <- 1 / (1 + d D) */
    dual t = {1.0 + d.v * D.v, d.p * D.v + d.v * D.p, d.q * D.v + d.v * D.q};
    if (fabs(t.v) < tiny) t.v = tiny;
    D.v = 1.0 / t.v;
    D.p = -t.p * D.v * D.v;
    D.q = -t.q * D.v * D.v;
    /* C <- 1 + d / C */
    double ic = 1.0 / C.v;
    dual c2 = {1.0 + d.v * ic, (d.p - d.v * C.p * ic) * ic, (d.q - d.v * C.q * ic) * ic};
    if (fabs(c2.v) < tiny) c2.v = tiny;
    C = c2;
    /* K <- K * delta, delta = C D; log-derivatives add up */
    dual del = {C.v * D.v, C.p * D.v + C.v * D.p, C.q * D.v + C.v * D.q};
    lk += log(del.v);
    double gp = del.p / del.v, gq = del.q / del.v;
    gp_sum += gp;
    gq_sum += gq;
    if (fabs(del.v - 1.0) <= eps && fabs(gp) <= eps * (fabs(gp_sum) + fabs(sp)) &&
        fabs(gq) <= eps * (fabs(gq_sum) + fabs(sq))) {
      *logk = lk;
      *lp = gp_sum;
      *lq = gq_sum;
      return 0;
    }
  }
  *logk = *lp = *lq = NAN;
  return -1;
}

/* The pieces shared by I, its derivatives and the reparameterisation gradient at (a, b, x),
 * 0 < x < 1. With (p, q, y) = (a, b, x), or (b, a, 1 - x) when swapped: J = I_y(p, q) =
 * exp(logj), dJ/dp = J (sp - lp), dJ/dq = J (sq - lq), and (y(1-y)/p) / K = ratio, so that
 * (dJ/dp) / density = ratio (sp - lp). */
typedef struct {
  int swapped;
  double logj, sp, lp, sq, lq, ratio;
} beta_parts;

static int beta_core(double a, double b, double x, beta_parts *r) {
  r->swapped = !(x < (a + 1.0) / (a + b + 2.0));
  double p, q, y, ly, l1y;
  if (!r->swapped) {
    p = a, q = b, y = x, ly = log(x), l1y = log1p(-x);
  } else {
    p = b, q = a, y = 1.0 - x, ly = log1p(-x), l1y = log(x);
  }
  /* log-derivatives of the prefactor y^p (1-y)^q / (p B(p, q)); 1/p + psi(p) = psi(p + 1) */
  r->sp = ly + vl_digamma_diff(p + 1.0, q - 1.0);
  r->sq = l1y + vl_digamma_diff(q, p);
  double logk;
  int st = beta_cf(p, q, y, r->sp, r->sq, &logk, &r->lp, &r->lq);
  r->logj = p * ly + q * l1y - log(p) - vl_lbeta(p, q) - logk;
  r->ratio = x * (1.0 - x) / p * exp(-logk);
  return st;
}

int vl_betainc_ad(double a, double b, double x, double *value, double *da, double *db) {
  double v = NAN, ga = NAN, gb = NAN;
  int st = 0;
  if (isnan(a) || isnan(b) || isnan(x) || a <= 0 || b <= 0) {
    /* NaN */
  } else if (x <= 0 || x >= 1) {
    v = x <= 0 ? 0.0 : 1.0;
    ga = gb = 0.0;
  } else {
    beta_parts r;
    st = beta_core(a, b, x, &r);
    double j = exp(r.logj);
    double djp = j * (r.sp - r.lp), djq = j * (r.sq - r.lq);
    if (!r.swapped) {
      v = j, ga = djp, gb = djq;
    } else {
      v = 1.0 - j, ga = -djq, gb = -djp;
    }
    if (st) v = ga = gb = NAN;
  }
  if (value) *value = v;
  if (da) *da = ga;
  if (db) *db = gb;
  return st;
}

double vl_betainc(double a, double b, double x) {
  double v;
  vl_betainc_ad(a, b, x, &v, NULL, NULL);
  return v;
}

int vl_beta_reparam_grad(double a, double b, double z, double *dzda, double *dzdb) {
  if (isnan(a) || isnan(b) || isnan(z) || a <= 0 || b <= 0) {
    *dzda = *dzdb = NAN;
    return 0;
  }
  if (z <= 0 || z >= 1) { /* the sample sits on the boundary: it does not move */
    *dzda = *dzdb = 0.0;
    return 0;
  }
  beta_parts r;
  int st = beta_core(a, b, z, &r);
  double gp = r.ratio * (r.sp - r.lp), gq = r.ratio * (r.sq - r.lq);
  if (!r.swapped) {
    *dzda = -gp, *dzdb = -gq;
  } else {
    *dzda = gq, *dzdb = gp;
  }
  if (st) *dzda = *dzdb = NAN;
  return st;
}

/* I and 1 - I, each without cancellation. */
static void betainc_pair(double a, double b, double x, double *i, double *ic) {
  beta_parts r;
  if (beta_core(a, b, x, &r)) {
    *i = *ic = NAN;
    return;
  }
  double j = exp(r.logj);
  if (!r.swapped) {
    *i = j, *ic = 1.0 - j;
  } else {
    *i = 1.0 - j, *ic = j;
  }
}

double vl_betaincinv(double a, double b, double pr) {
  if (isnan(a) || isnan(b) || isnan(pr) || a <= 0 || b <= 0 || pr < 0 || pr > 1) return NAN;
  if (pr == 0) return 0.0;
  if (pr == 1) return 1.0;
  double lb = vl_lbeta(a, b), m = a / (a + b);
  /* Work on the side of the median that pr is on, with the tail that is small there:
   * lower: g = log I - log pr as a function of s = log x; upper: g = log(1 - I) - log(1 - pr)
   * as a function of t = log(1 - x). In those variables the leading tail terms
   * I ~ x^a / (a B) and 1 - I ~ (1-x)^b / (b B) are linear, which also gives the first guess. */
  int upper = pr > 0.5;
  double lpr = upper ? log1p(-pr) : log(pr);
  double x;
  if (!upper) {
    double xl = exp((lpr + log(a) + lb) / a);
    x = xl < m ? xl : m;
  } else {
    double xu = exp((lpr + log(b) + lb) / b);
    x = xu < 1.0 - m ? 1.0 - xu : m;
  }
  if (!(x > 0)) x = DBL_MIN;
  if (!(x < 1)) x = 1.0 - DBL_EPSILON / 2;
  double lo = 0.0, hi = 1.0; /* I(lo) < pr < I(hi) */
  for (int it = 0; it < 400; it++) {
    double i, ic;
    betainc_pair(a, b, x, &i, &ic);
    if (isnan(i)) return NAN;
    double tail = upper ? ic : i;
    double g = log(tail) - lpr;
    if (g == 0) return x;
    if (upper ? g > 0 : g < 0) lo = x;
    else hi = x;
    double logd = (a - 1.0) * log(x) + (b - 1.0) * log1p(-x) - lb;
    double xn;
    if (!upper) {
      double slope = exp(logd + log(x) - log(tail)); /* d log I / d log x */
      xn = exp(log(x) - g / slope);
    } else {
      double slope = exp(logd + log1p(-x) - log(tail)); /* -d log(1-I) / d log(1-x) */
      xn = -expm1(log1p(-x) + g / slope);
    }
    if (!(xn > lo && xn < hi)) { /* Newton left the bracket: bisect, geometrically in a tail */
      if (lo == 0 && hi == 1) xn = 0.5;
      else if (lo == 0) xn = hi * hi > DBL_MIN ? hi * hi : hi * 0x1p-64;
      else if (hi == 1) xn = 1.0 - (1.0 - lo) * (1.0 - lo);
      else if (hi > 4 * lo) xn = sqrt(lo * hi);
      else if (1.0 - lo > 4 * (1.0 - hi)) xn = 1.0 - sqrt((1.0 - lo) * (1.0 - hi));
      else xn = 0.5 * (lo + hi);
      if (!(xn > lo && xn < hi)) xn = lo + 0.5 * (hi - lo);
      if (!(xn > lo && xn < hi)) return x; /* lo and hi are neighbours */
    }
    if (fabs(xn - x) <= 2 * DBL_EPSILON * fmin(xn, 1.0 - xn) ||
        (lo > 0 && hi < 1 && hi - lo <= 2 * DBL_EPSILON * fmin(hi, 1.0 - lo)))
      return xn;
    x = xn;
  }
  return x;
}

/* ---------- elementwise ---------- */

typedef struct {
  vl_special_op op;
  vl_dtype dt;
  atomic_int failed;
  double fa, fb, fx; /* arguments of the first failure */
} special_job;

static inline double load(const char *p, vl_dtype dt) {
  return dt == VL_F32 ? (double)*(const float *)p : *(const double *)p;
}

static void special_kernel(char **ptr, const int64_t *s, int64_t n, void *vp) {
  special_job *j = vp;
  char *o = ptr[0];
  const char *pa = ptr[1], *pb = ptr[2], *px = ptr[3];
  for (int64_t i = 0; i < n; i++, o += s[0], pa += s[1], pb += s[2], px += s[3]) {
    double a = load(pa, j->dt), b = load(pb, j->dt), x = load(px, j->dt), v = NAN, u;
    int st = 0;
    switch (j->op) {
      case VL_BETAINC: st = vl_betainc_ad(a, b, x, &v, NULL, NULL); break;
      case VL_BETAINC_DA: st = vl_betainc_ad(a, b, x, NULL, &v, NULL); break;
      case VL_BETAINC_DB: st = vl_betainc_ad(a, b, x, NULL, NULL, &v); break;
      case VL_BETA_REPARAM_DA: st = vl_beta_reparam_grad(a, b, x, &v, &u); break;
      case VL_BETA_REPARAM_DB: st = vl_beta_reparam_grad(a, b, x, &u, &v); break;
      case VL_BETAINCINV: v = vl_betaincinv(a, b, x); break;
      default: break;
    }
    if (st && atomic_exchange(&j->failed, 1) == 0) j->fa = a, j->fb = b, j->fx = x;
    if (j->dt == VL_F32) *(float *)o = (float)v;
    else *(double *)o = v;
  }
}

vl_status vl_special(vl_ctx *ctx, vl_special_op op, const vl_tensor *out, const vl_tensor *a,
                     const vl_tensor *b, const vl_tensor *x, vl_error *err) {
  static const char *names[VL_SPECIAL_COUNT] = {"betainc", "betainc_da", "betainc_db",
                                                "beta_reparam_da", "beta_reparam_db",
                                                "betaincinv"};
  if ((int)op < 0 || op >= VL_SPECIAL_COUNT)
    return vl_fail(err, VL_ERR_VALUE, "special: unknown operation %d", (int)op);
  if (!vl_dtype_is_float(out->dtype) || a->dtype != out->dtype || b->dtype != out->dtype ||
      x->dtype != out->dtype)
    return vl_fail(err, VL_ERR_DTYPE, "%s: arguments and output must share a float dtype",
                   names[op]);
  vl_tensor ba, bb, bx;
  vl_status st = vl_broadcast_to(a, out->ndim, out->shape, &ba, err);
  if (!st) st = vl_broadcast_to(b, out->ndim, out->shape, &bb, err);
  if (!st) st = vl_broadcast_to(x, out->ndim, out->shape, &bx, err);
  if (st) return st;
  special_job j = {.op = op, .dt = out->dtype};
  atomic_init(&j.failed, 0);
  const vl_tensor *ops[4] = {out, &ba, &bb, &bx};
  vl_loop(ctx, 4, ops, special_kernel, &j);
  if (atomic_load(&j.failed))
    return vl_fail(err, VL_ERR_VALUE,
                   "%s: the continued fraction did not converge at a = %g, b = %g, x = %g",
                   names[op], j.fa, j.fb, j.fx);
  return VL_OK;
}
