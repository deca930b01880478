/* Gamma and Poisson sampling (see random_gamma.h). */
#include "random_gamma.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "ops_elementwise.h"

/* A stream of uniforms in (0, 1) for one element: words of successive sub-blocks. */
typedef struct {
  uint32_t key[2];
  uint64_t index;
  uint32_t attempt;
  uint32_t w[4];
  int used;
} sub_stream;

static void sub_init(sub_stream *s, const vl_philox *g, uint64_t index) {
  s->key[0] = (uint32_t)g->key;
  s->key[1] = (uint32_t)(g->key >> 32);
  s->index = index;
  s->attempt = 0;
  s->used = 4;
}

/* uniform in (0, 1): 53 bits from two words, never exactly 0 */
static double sub_u01(sub_stream *s) {
  if (s->used > 2) {
    uint32_t ctr[4] = {(uint32_t)s->index, (uint32_t)(s->index >> 32), s->attempt++, 1u};
    vl_philox_block(ctr, s->key, s->w);
    s->used = 0;
  }
  double u = vl_u01_f64(s->w[s->used], s->w[s->used + 1]);
  s->used += 2;
  return u > 0 ? u : 0x1p-54;
}

static double sub_normal(sub_stream *s) {
  double u1 = sub_u01(s), u2 = sub_u01(s);
  return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Marsaglia and Tsang (2000) for shape >= 1; a shape below 1 is boosted,
 * Gamma(a) = Gamma(a + 1) U^(1/a), and the boost returned as its log (*log_boost) so that
 * callers working in log space (Beta) do not underflow for tiny shapes. */
static double gamma_mt(sub_stream *s, double alpha, double *log_boost) {
  *log_boost = 0.0;
  if (!(alpha > 0) || isinf(alpha)) return NAN;
  if (alpha < 1.0) {
    *log_boost = log(sub_u01(s)) / alpha;
    alpha += 1.0;
  }
  double d = alpha - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = sub_normal(s);
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    double u = sub_u01(s);
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
    if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v;
  }
}

static double gamma_draw(sub_stream *s, double alpha) {
  double lb, g = gamma_mt(s, alpha, &lb);
  return lb == 0.0 ? g : g * exp(lb);
}

/* Beta(a, b) = X / (X + Y), X ~ Gamma(a), Y ~ Gamma(b), formed from log X - log Y so that
 * tiny shapes give tiny (not 0/0) values; then kept strictly inside (0, 1) in the output dtype
 * (the smallest normal number and the largest number below 1), where log densities and
 * reparameterisation gradients are finite. */
static double beta_draw(sub_stream *s, double a, double b, vl_dtype dt) {
  double la, lb;
  double x = gamma_mt(s, a, &la), y = gamma_mt(s, b, &lb);
  double r = (log(y) + lb) - (log(x) + la); /* log(Y / X) */
  if (isnan(r)) return NAN;
  double z = 1.0 / (1.0 + exp(r));
  double zmin = dt == VL_F32 ? FLT_MIN : DBL_MIN;
  double zmax = dt == VL_F32 ? 1.0 - 0x1p-24 : 1.0 - 0x1p-53;
  return z < zmin ? zmin : z > zmax ? zmax : z;
}

static double poisson_draw(sub_stream *s, double lam) {
  if (!(lam >= 0) || isinf(lam)) return NAN;
  if (lam == 0) return 0;
  if (lam < 12) {
    double limit = exp(-lam), prod = sub_u01(s);
    double k = 0;
    while (prod > limit) {
      prod *= sub_u01(s);
      k += 1;
    }
    return k;
  }
  /* PTRS, Hormann (1993) */
  double slam = sqrt(lam), loglam = log(lam);
  double b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
  double invalpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2);
  for (;;) {
    double u = sub_u01(s) - 0.5, v = sub_u01(s);
    double us = 0.5 - fabs(u);
    double k = floor((2 * a / us + b) * u + lam + 0.43);
    if (us >= 0.07 && v <= vr) return k;
    if (k < 0 || (us < 0.013 && v > us)) continue;
    if (log(v) + log(invalpha) - log(a / (us * us) + b) <= -lam + k * loglam - vl_lgamma(k + 1))
      return k;
  }
}

typedef enum { KIND_GAMMA, KIND_POISSON, KIND_BETA } sample_kind;

typedef struct {
  const vl_philox *g;
  const vl_tensor *out, *param, *param2;
  sample_kind kind;
} sample_job;

static inline double param_at(const vl_tensor *t, int64_t i) {
  return t->dtype == VL_F32 ? ((const float *)t->data)[i] : ((const double *)t->data)[i];
}

static void sample_range(int64_t lo, int64_t hi, int chunk, void *vp) {
  const sample_job *j = vp;
  (void)chunk;
  for (int64_t i = lo; i < hi; i++) {
    sub_stream s;
    sub_init(&s, j->g, j->g->counter + (uint64_t)i);
    double p = param_at(j->param, i), v;
    switch (j->kind) {
      case KIND_POISSON: v = poisson_draw(&s, p); break;
      case KIND_BETA: v = beta_draw(&s, p, param_at(j->param2, i), j->out->dtype); break;
      default: v = gamma_draw(&s, p); break;
    }
    switch (j->out->dtype) {
      case VL_F32: ((float *)j->out->data)[i] = (float)v; break;
      case VL_F64: ((double *)j->out->data)[i] = v; break;
      case VL_I64: ((int64_t *)j->out->data)[i] = (int64_t)v; break;
      default: break;
    }
  }
}

static vl_status check_param(const vl_tensor *out, const vl_tensor *param, const char *name,
                             vl_error *err) {
  if (!vl_is_contiguous(param) || !vl_dtype_is_float(param->dtype) ||
      vl_numel(out) != vl_numel(param))
    return vl_fail(err, VL_ERR_VALUE, "%s: output and parameters must be contiguous, of one "
                   "size, the parameters f32 or f64", name);
  return VL_OK;
}

static vl_status run(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, const vl_tensor *param,
                     const vl_tensor *param2, sample_kind kind, const char *name, vl_error *err) {
  if (out->dtype == VL_BOOL || (kind != KIND_POISSON && out->dtype == VL_I64))
    return vl_fail(err, VL_ERR_DTYPE, "%s: output must be %s", name,
                   kind == KIND_POISSON ? "numeric" : "f32 or f64");
  if (!vl_is_contiguous(out))
    return vl_fail(err, VL_ERR_VALUE, "%s: output must be contiguous", name);
  vl_status st = check_param(out, param, name, err);
  if (!st && param2) st = check_param(out, param2, name, err);
  if (st) return st;
  sample_job j = {g, out, param, param2, kind};
  vl_parallel_for(ctx, vl_numel(out), 2048, sample_range, &j);
  g->counter += (uint64_t)vl_numel(out);
  return VL_OK;
}

vl_status vl_random_gamma(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, const vl_tensor *alpha,
                          vl_error *err) {
  return run(ctx, g, out, alpha, NULL, KIND_GAMMA, "gamma", err);
}

vl_status vl_random_poisson(vl_ctx *ctx, vl_philox *g, const vl_tensor *out,
                            const vl_tensor *lambda, vl_error *err) {
  return run(ctx, g, out, lambda, NULL, KIND_POISSON, "poisson", err);
}

vl_status vl_random_beta(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, const vl_tensor *a,
                         const vl_tensor *b, vl_error *err) {
  return run(ctx, g, out, a, b, KIND_BETA, "beta", err);
}
