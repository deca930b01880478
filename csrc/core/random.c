/* Philox4x32-10 and the random fills built on it (stream layout documented in random.h). */
#include "random.h"

#include <math.h>
#include <stdbool.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

#define TAG_INT_RETRY 2u  /* counter word 3 of integer retries (see random.h) */
#define FILL_GRAIN 8192   /* elements per thread below which a fill runs serially */
#define FILL_CHUNK 256    /* values generated before being stored */

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

static void block_at(const uint32_t key[2], uint64_t b, uint32_t sub, uint32_t tag,
                     uint32_t out[4]) {
  uint32_t ctr[4] = {(uint32_t)b, (uint32_t)(b >> 32), sub, tag};
  vl_philox_block(ctr, key, out);
}

static void key_words(uint64_t key, uint32_t out[2]) {
  out[0] = (uint32_t)key;
  out[1] = (uint32_t)(key >> 32);
}

void vl_philox_at(const vl_philox *g, uint64_t b, uint32_t out[4]) {
  uint32_t key[2];
  key_words(g->key, key);
  block_at(key, b, 0, 0, out);
}

double vl_u01_f64(uint32_t w0, uint32_t w1) {
  uint64_t a = w0 >> 5, b = w1 >> 6; /* 27 + 26 bits */
  return (double)((a << 26) | b) * 0x1p-53;
}

void vl_philox_seed(vl_philox *g, uint64_t seed) {
  g->key = seed;
  g->counter = 0;
}

/* The largest accepted 64-bit candidate for integers in [0, range): the last value below the
 * largest multiple of range in 2^64 (2^64 mod range values are rejected). */
static uint64_t accept_limit(uint64_t range) {
  return UINT64_MAX - (UINT64_MAX % range + 1) % range;
}

/* An unbiased integer in [0, range) for element stream b whose first block is w: each 64-bit
 * candidate x is accepted if x <= limit = accept_limit(range), then reduced mod range. */
static uint64_t draw_below(const uint32_t key[2], uint64_t b, const uint32_t first[4],
                           uint64_t range, uint64_t limit) {
  uint32_t w[4] = {first[0], first[1], first[2], first[3]};
  for (uint32_t attempt = 1;; attempt++) {
    uint64_t x = ((uint64_t)w[1] << 32) | w[0];
    if (x <= limit) return x % range;
    x = ((uint64_t)w[3] << 32) | w[2];
    if (x <= limit) return x % range;
    block_at(key, b, attempt, TAG_INT_RETRY, w); /* each try succeeds with probability > 1/2 */
  }
}

/* ---------- fills ---------- */

typedef enum { K_UNIFORM, K_NORMAL, K_INT, K_BERNOULLI } fill_kind;

typedef union {
  double f;  /* for f32 and f64 outputs */
  int64_t i; /* for i64 and bool outputs */
} value;

typedef struct {
  fill_kind kind;
  const vl_tensor *out;
  uint32_t key[2];
  uint64_t base;  /* the generator's counter when the fill started */
  double a, b;    /* lo/hi, mean/std, p */
  int64_t ilo;
  uint64_t range; /* integers: hi - lo */
  uint64_t limit; /* integers: accept_limit(range) */
} fill_job;

/* Values of elements i0 .. i0+n-1 (n <= FILL_CHUNK), a pure function of the element index.
 * Each loop walks the blocks covering the range; `per` elements share one block. */
static void generate(const fill_job *j, int64_t i0, int64_t n, value *v) {
  bool f32 = j->out->dtype == VL_F32;
  bool as_int = j->out->dtype == VL_I64 || j->out->dtype == VL_BOOL;
  uint64_t per = j->kind == K_INT ? 1 : (j->kind == K_UNIFORM && f32 ? 4 : 2);
  double lo = j->a, span = j->b - j->a;
  uint32_t w[4];
  for (uint64_t i = (uint64_t)i0, end = (uint64_t)(i0 + n); i < end;) {
    uint64_t b = j->base + i / per;
    block_at(j->key, b, 0, 0, w);
    uint64_t lane = i % per, stop = i + (per - lane) < end ? i + (per - lane) : end;
    value *out = v + (i - (uint64_t)i0);
    int64_t m = (int64_t)(stop - i);
    switch (j->kind) {
      case K_UNIFORM:
        for (int64_t k = 0; k < m; k++, lane++) {
          if (f32) {
            float r = (float)(lo + span * ((double)(w[lane] >> 8) * 0x1p-24));
            out[k].f = (double)r >= j->b ? nextafterf(r, -INFINITY) : r; /* rounding hit hi */
          } else {
            double r = lo + span * vl_u01_f64(w[2 * lane], w[2 * lane + 1]);
            out[k].f = r >= j->b ? nextafter(r, -INFINITY) : r;
          }
        }
        break;
      case K_NORMAL: {
        double u1 = vl_u01_f64(w[0], w[1]), u2 = vl_u01_f64(w[2], w[3]);
        double r = sqrt(-2.0 * log(1.0 - u1)), th = 2.0 * M_PI * u2;
        double z[2] = {r * cos(th), r * sin(th)};
        for (int64_t k = 0; k < m; k++, lane++) out[k].f = j->a + j->b * z[lane];
        break;
      }
      case K_INT: {
        int64_t x = (int64_t)((uint64_t)j->ilo + draw_below(j->key, b, w, j->range, j->limit));
        if (as_int) out[0].i = x;
        else out[0].f = (double)x;
        break;
      }
      case K_BERNOULLI:
        for (int64_t k = 0; k < m; k++, lane++) {
          bool hit = vl_u01_f64(w[2 * lane], w[2 * lane + 1]) < j->a;
          if (as_int) out[k].i = hit;
          else out[k].f = hit;
        }
        break;
    }
    i = stop;
  }
}

/* Position in a strided tensor walked in row-major order. */
typedef struct {
  int64_t idx[VL_MAX_DIMS];
  char *p;
} cursor;

static void cursor_seek(cursor *c, const vl_tensor *t, int64_t pos) {
  int64_t off = 0;
  for (int d = t->ndim - 1; d >= 0; d--) {
    c->idx[d] = pos % t->shape[d];
    pos /= t->shape[d];
    off += c->idx[d] * t->stride[d];
  }
  c->p = t->data + off * (int64_t)vl_dtype_size(t->dtype);
}

static inline void cursor_next(cursor *c, const vl_tensor *t, int64_t esize) {
  for (int d = t->ndim - 1; d >= 0; d--) {
    c->p += t->stride[d] * esize;
    if (++c->idx[d] < t->shape[d]) return;
    c->p -= t->shape[d] * t->stride[d] * esize;
    c->idx[d] = 0;
  }
}

static void store(const vl_tensor *t, cursor *c, const value *v, int64_t n) {
  int64_t es = (int64_t)vl_dtype_size(t->dtype);
  switch (t->dtype) {
    case VL_F32:
      for (int64_t k = 0; k < n; k++, cursor_next(c, t, es)) *(float *)c->p = (float)v[k].f;
      break;
    case VL_F64:
      for (int64_t k = 0; k < n; k++, cursor_next(c, t, es)) *(double *)c->p = v[k].f;
      break;
    case VL_I64:
      for (int64_t k = 0; k < n; k++, cursor_next(c, t, es)) *(int64_t *)c->p = v[k].i;
      break;
    default:
      for (int64_t k = 0; k < n; k++, cursor_next(c, t, es)) *(uint8_t *)c->p = v[k].i != 0;
      break;
  }
}

static void fill_range(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)chunk;
  const fill_job *j = arg;
  cursor c;
  cursor_seek(&c, j->out, lo);
  value v[FILL_CHUNK];
  for (int64_t pos = lo; pos < hi; pos += FILL_CHUNK) {
    int64_t n = hi - pos < FILL_CHUNK ? hi - pos : FILL_CHUNK;
    generate(j, pos, n, v);
    store(j->out, &c, v, n);
  }
}

/* Runs the fill over out and advances g by `blocks`. */
static vl_status run_fill(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, fill_job *j,
                          uint64_t blocks, const char *name, vl_error *err) {
  for (int d = 0; d < out->ndim; d++)
    if (out->stride[d] == 0 && out->shape[d] > 1)
      return vl_fail(err, VL_ERR_VALUE, "%s: cannot fill a broadcast view (dim %d has stride 0); "
                     "fill a contiguous tensor instead", name, d + 1);
  vl_tensor flat = *out;
  if (vl_is_contiguous(out)) { /* one dim: the cursor then steps by one */
    flat.ndim = 1;
    flat.shape[0] = vl_numel(out);
    flat.stride[0] = 1;
  }
  j->out = &flat;
  key_words(g->key, j->key);
  j->base = g->counter;
  vl_parallel_for(ctx, vl_numel(out), FILL_GRAIN, fill_range, j);
  g->counter += blocks;
  return VL_OK;
}

static uint64_t ceil_div(int64_t n, uint64_t d) { return ((uint64_t)n + d - 1) / d; }

vl_status vl_random_uniform(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, double lo, double hi,
                            vl_error *err) {
  if (!vl_dtype_is_float(out->dtype))
    return vl_fail(err, VL_ERR_DTYPE, "uniform: output must be f32 or f64, got %s",
                   vl_dtype_name(out->dtype));
  if (!(hi > lo) || !isfinite(hi - lo))
    return vl_fail(err, VL_ERR_VALUE, "uniform: need finite lo < hi, got lo = %g, hi = %g", lo,
                   hi);
  fill_job j = {.kind = K_UNIFORM, .a = lo, .b = hi};
  return run_fill(ctx, g, out, &j, ceil_div(vl_numel(out), out->dtype == VL_F32 ? 4 : 2),
                  "uniform", err);
}

vl_status vl_random_normal(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, double mean,
                           double std, vl_error *err) {
  if (!vl_dtype_is_float(out->dtype))
    return vl_fail(err, VL_ERR_DTYPE, "normal: output must be f32 or f64, got %s",
                   vl_dtype_name(out->dtype));
  if (!isfinite(mean) || !(std >= 0) || !isfinite(std))
    return vl_fail(err, VL_ERR_VALUE, "normal: need a finite mean and finite std >= 0, got "
                   "mean = %g, std = %g", mean, std);
  fill_job j = {.kind = K_NORMAL, .a = mean, .b = std};
  return run_fill(ctx, g, out, &j, ceil_div(vl_numel(out), 2), "normal", err);
}

vl_status vl_random_integers(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, int64_t lo,
                             int64_t hi_exclusive, vl_error *err) {
  if (out->dtype == VL_BOOL)
    return vl_fail(err, VL_ERR_DTYPE, "randint: output must be i64, f32 or f64, got bool");
  if (hi_exclusive <= lo)
    return vl_fail(err, VL_ERR_VALUE, "randint: need low < high, got low = %lld, high = %lld",
                   (long long)lo, (long long)hi_exclusive);
  if (out->dtype != VL_I64) {
    int64_t exact = out->dtype == VL_F32 ? (int64_t)1 << 24 : (int64_t)1 << 53;
    if (lo < -exact || hi_exclusive - 1 > exact)
      return vl_fail(err, VL_ERR_VALUE, "randint: values in [%lld, %lld) are not all exact in "
                     "%s (limit +-%lld); use dtype i64", (long long)lo, (long long)hi_exclusive,
                     vl_dtype_name(out->dtype), (long long)exact);
  }
  uint64_t range = (uint64_t)hi_exclusive - (uint64_t)lo;
  fill_job j = {.kind = K_INT, .ilo = lo, .range = range, .limit = accept_limit(range)};
  return run_fill(ctx, g, out, &j, (uint64_t)vl_numel(out), "randint", err);
}

vl_status vl_random_bernoulli(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, double p,
                              vl_error *err) {
  if (!(p >= 0 && p <= 1))
    return vl_fail(err, VL_ERR_VALUE, "bernoulli: p must be in [0, 1], got %g", p);
  fill_job j = {.kind = K_BERNOULLI, .a = p};
  return run_fill(ctx, g, out, &j, ceil_div(vl_numel(out), 2), "bernoulli", err);
}

void vl_randperm(vl_philox *g, int64_t *out, int64_t n) {
  if (n <= 0) return;
  uint32_t key[2], w[4];
  key_words(g->key, key);
  for (int64_t i = 0; i < n; i++) out[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    uint64_t b = g->counter + (uint64_t)(n - 1 - i);
    block_at(key, b, 0, 0, w);
    uint64_t range = (uint64_t)i + 1;
    int64_t k = (int64_t)draw_below(key, b, w, range, accept_limit(range));
    int64_t t = out[i];
    out[i] = out[k];
    out[k] = t;
  }
  g->counter += (uint64_t)n;
}
