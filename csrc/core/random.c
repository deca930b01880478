/* Philox4x32-10 fills (see random.h for the stream layout). */
#include "random.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops_elementwise.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void vl_philox_block(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k0 += PHILOX_W0;
      k1 += PHILOX_W1;
    }
    uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

void vl_philox_at(const vl_philox *g, uint64_t b, uint32_t out[4]) {
  uint32_t ctr[4] = {(uint32_t)b, (uint32_t)(b >> 32), 0, 0};
  uint32_t key[2] = {(uint32_t)g->key, (uint32_t)(g->key >> 32)};
  vl_philox_block(ctr, key, out);
}

double vl_u01_f64(uint32_t w0, uint32_t w1) {
  uint64_t a = w0 >> 5, b = w1 >> 6; /* 27 + 26 bits */
  return (double)(a * 67108864.0 + (double)b) * (1.0 / 9007199254740992.0);
}

void vl_philox_seed(vl_philox *g, uint64_t seed) {
  g->key = seed;
  g->counter = 0;
}

typedef enum { K_UNIFORM, K_NORMAL, K_INT, K_BERNOULLI } kind;

typedef struct {
  kind k;
  vl_philox g;      /* key and base counter of this fill */
  vl_dtype dtype;
  char *data;       /* contiguous output */
  double a, b;      /* lo/hi, mean/std, p */
  int64_t ilo;
  uint64_t range;   /* for integers */
} fill_job;

static void store(const fill_job *j, int64_t i, double v) {
  switch (j->dtype) {
    case VL_F32: ((float *)j->data)[i] = (float)v; break;
    case VL_F64: ((double *)j->data)[i] = v; break;
    case VL_I64: ((int64_t *)j->data)[i] = (int64_t)v; break;
    default: ((uint8_t *)j->data)[i] = v != 0.0; break;
  }
}

static uint64_t draw_below(const uint32_t w[4], uint64_t range) {
  /* unbiased: accept x below the largest multiple of range (two tries, then modulo) */
  uint64_t limit = UINT64_MAX - (UINT64_MAX % range + 1) % range;
  uint64_t x = ((uint64_t)w[1] << 32) | w[0];
  if (x > limit) x = ((uint64_t)w[3] << 32) | w[2];
  return x % range;
}

static void fill_range(int64_t lo, int64_t hi, int chunk, void *vp) {
  const fill_job *j = vp;
  uint32_t w[4];
  switch (j->k) {
    case K_UNIFORM:
      for (int64_t i = lo; i < hi; i++) {
        double u;
        if (j->dtype == VL_F32) {
          vl_philox_at(&j->g, j->g.counter + (uint64_t)i / 4, w);
          u = (double)(w[i % 4] >> 8) * (1.0 / 16777216.0);
          float v = (float)(j->a + (j->b - j->a) * u);
          if (v >= (float)j->b) v = nextafterf((float)j->b, -INFINITY); /* keep [lo, hi) */
          ((float *)j->data)[i] = v;
          continue;
        }
        vl_philox_at(&j->g, j->g.counter + (uint64_t)i / 2, w);
        int k = (int)(i % 2) * 2;
        u = vl_u01_f64(w[k], w[k + 1]);
        store(j, i, j->a + (j->b - j->a) * u);
      }
      break;
    case K_NORMAL:
      for (int64_t i = lo; i < hi; i++) {
        vl_philox_at(&j->g, j->g.counter + (uint64_t)i / 2, w);
        double u1 = vl_u01_f64(w[0], w[1]), u2 = vl_u01_f64(w[2], w[3]);
        double r = sqrt(-2.0 * log(1.0 - u1)), th = 2.0 * M_PI * u2;
        double z = (i % 2 == 0) ? r * cos(th) : r * sin(th);
        store(j, i, j->a + j->b * z);
      }
      break;
    case K_INT:
      for (int64_t i = lo; i < hi; i++) {
        vl_philox_at(&j->g, j->g.counter + (uint64_t)i, w);
        int64_t v = (int64_t)((uint64_t)j->ilo + draw_below(w, j->range));
        if (j->dtype == VL_I64) ((int64_t *)j->data)[i] = v;
        else store(j, i, (double)v);
      }
      break;
    case K_BERNOULLI:
      for (int64_t i = lo; i < hi; i++) {
        vl_philox_at(&j->g, j->g.counter + (uint64_t)i / 2, w);
        int k = (int)(i % 2) * 2;
        store(j, i, vl_u01_f64(w[k], w[k + 1]) < j->a ? 1.0 : 0.0);
      }
      break;
  }
}

/* Runs job j over out (through a contiguous scratch copy when out is strided) and advances g
 * by `blocks`. */
static vl_status run_fill(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, fill_job *j,
                          uint64_t blocks, vl_error *err) {
  int64_t n = vl_numel(out);
  j->g = *g;
  j->dtype = out->dtype;
  vl_tensor tmp = *out;
  char *scratch = NULL;
  if (vl_is_contiguous(out)) {
    j->data = out->data;
  } else {
    scratch = malloc((size_t)n * vl_dtype_size(out->dtype) + 1);
    if (!scratch) return vl_fail(err, VL_ERR_NOMEM, "random: out of memory");
    tmp.data = scratch;
    vl_set_contiguous_strides(&tmp);
    j->data = scratch;
  }
  vl_parallel_for(ctx, n, 8192, fill_range, j);
  vl_status st = VL_OK;
  if (scratch) {
    st = vl_copy(ctx, out, &tmp, err);
    free(scratch);
  }
  g->counter += blocks;
  return st;
}

vl_status vl_random_uniform(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, double lo, double hi,
                            vl_error *err) {
  if (!vl_dtype_is_float(out->dtype))
    return vl_fail(err, VL_ERR_DTYPE, "uniform: output must be f32 or f64, got %s",
                   vl_dtype_name(out->dtype));
  if (!(hi > lo) || !isfinite(lo) || !isfinite(hi))
    return vl_fail(err, VL_ERR_VALUE, "uniform: need finite lo < hi, got %g and %g", lo, hi);
  int64_t n = vl_numel(out);
  fill_job j = {.k = K_UNIFORM, .a = lo, .b = hi};
  uint64_t per = out->dtype == VL_F32 ? 4 : 2;
  return run_fill(ctx, g, out, &j, ((uint64_t)n + per - 1) / per, err);
}

vl_status vl_random_normal(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, double mean,
                           double std, vl_error *err) {
  if (!vl_dtype_is_float(out->dtype))
    return vl_fail(err, VL_ERR_DTYPE, "normal: output must be f32 or f64, got %s",
                   vl_dtype_name(out->dtype));
  if (!(std >= 0) || !isfinite(mean) || !isfinite(std))
    return vl_fail(err, VL_ERR_VALUE, "normal: need a finite mean and std >= 0, got %g and %g",
                   mean, std);
  int64_t n = vl_numel(out);
  fill_job j = {.k = K_NORMAL, .a = mean, .b = std};
  return run_fill(ctx, g, out, &j, ((uint64_t)n + 1) / 2, err);
}

vl_status vl_random_integers(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, int64_t lo,
                             int64_t hi_exclusive, vl_error *err) {
  if (out->dtype == VL_BOOL)
    return vl_fail(err, VL_ERR_DTYPE, "randint: output must be i64, f32 or f64");
  if (hi_exclusive <= lo)
    return vl_fail(err, VL_ERR_VALUE, "randint: need low < high, got %lld and %lld",
                   (long long)lo, (long long)hi_exclusive);
  fill_job j = {.k = K_INT, .ilo = lo, .range = (uint64_t)hi_exclusive - (uint64_t)lo};
  return run_fill(ctx, g, out, &j, (uint64_t)vl_numel(out), err);
}

vl_status vl_random_bernoulli(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, double p,
                              vl_error *err) {
  if (!(p >= 0 && p <= 1))
    return vl_fail(err, VL_ERR_VALUE, "bernoulli: p must be in [0, 1], got %g", p);
  fill_job j = {.k = K_BERNOULLI, .a = p};
  return run_fill(ctx, g, out, &j, ((uint64_t)vl_numel(out) + 1) / 2, err);
}

void vl_randperm(vl_philox *g, int64_t *out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = i;
  uint32_t w[4];
  for (int64_t i = n - 1; i > 0; i--) {
    vl_philox_at(g, g->counter + (uint64_t)(n - 1 - i), w);
    int64_t k = (int64_t)draw_below(w, (uint64_t)i + 1);
    int64_t t = out[i];
    out[i] = out[k];
    out[k] = t;
  }
  g->counter += (uint64_t)n;
}
