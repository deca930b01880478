/* Per-gene velocity fits (see velocity_fit.h). Each gene's column is gathered into scratch
 * buffers and fitted on its own, so results do not depend on the thread count. */
#include "velocity_fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* k-th smallest of x[0..n) (x reordered: x[k] holds it, smaller ones before). */
static float select_kth(float *x, int64_t n, int64_t k) {
  int64_t lo = 0, hi = n - 1;
  while (lo < hi) {
    /* median of three pivot */
    int64_t mid = lo + (hi - lo) / 2;
    float a = x[lo], b = x[mid], c = x[hi];
    float pv = (a < b) ? ((b < c) ? b : (a < c ? c : a)) : ((a < c) ? a : (b < c ? c : b));
    int64_t i = lo, j = hi;
    while (i <= j) {
      while (x[i] < pv) i++;
      while (x[j] > pv) j--;
      if (i <= j) {
        float t = x[i]; x[i] = x[j]; x[j] = t;
        i++; j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break;
  }
  return x[k];
}

double vl_percentile_f32(float *x, int64_t n, double q) {
  double vi = (q / 100.0) * (double)(n - 1);
  int64_t lo = (int64_t)floor(vi);
  if (lo < 0) lo = 0;
  if (lo >= n - 1) {
    float m = x[0];
    for (int64_t i = 1; i < n; i++) if (x[i] > m) m = x[i];
    return (double)m;
  }
  double t = vi - (double)lo;
  float a = select_kth(x, n, lo);
  float b = x[lo + 1];
  for (int64_t i = lo + 2; i < n; i++) if (x[i] < b) b = x[i];
  /* numpy's _lerp, evaluated in double (as numpy 1.24 does for float32 input) */
  double diff = (double)b - (double)a;
  if (t >= 0.5) return (double)b - diff * (1.0 - t);
  return (double)a + diff * t;
}

#define GENE_BLOCK 64

/* cols[jj * n + i] = m[i, lo + jj] for jj < hi - lo: a block of columns read row by row */
static void gather_cols(const float *m, int64_t n, int64_t g, int64_t lo, int64_t hi, float *cols) {
  int64_t w = hi - lo;
  for (int64_t i = 0; i < n; i++) {
    const float *r = m + i * g + lo;
    for (int64_t jj = 0; jj < w; jj++) cols[jj * n + i] = r[jj];
  }
}

/* Min-heap of the c largest values seen (heap[0] the smallest of them). */
typedef struct {
  float *h;
  int64_t size, cap;
} top_heap;

static void heap_push(top_heap *t, float x) {
  float *h = t->h;
  if (t->size < t->cap) {
    int64_t i = t->size++;
    while (i > 0) {
      int64_t p = (i - 1) / 2;
      if (h[p] <= x) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = x;
    return;
  }
  if (!(x > h[0])) return;
  int64_t i = 0, n = t->size;
  for (;;) {
    int64_t l = 2 * i + 1, r = l + 1, m = l;
    if (l >= n) break;
    if (r < n && h[r] < h[l]) m = r;
    if (h[m] >= x) break;
    h[i] = h[m];
    i = m;
  }
  h[i] = x;
}

/* Capacity of the heap giving the perc-th percentile of n values (0 when the percentile
 * needs no heap: n == 1 or the top value). */
static int64_t heap_cap(int64_t n, double perc) {
  double vi = (perc / 100.0) * (double)(n - 1);
  int64_t lo = (int64_t)floor(vi);
  if (lo >= n - 1) return 1;
  return n - lo;
}

/* numpy's linear percentile from the filled heap (cap = heap_cap) */
static double heap_percentile(const top_heap *t, int64_t n, double perc) {
  double vi = (perc / 100.0) * (double)(n - 1);
  int64_t lo = (int64_t)floor(vi);
  if (lo >= n - 1 || t->size < 2) return (double)t->h[0];
  double a = t->h[0];
  double b = t->h[1];
  if (t->size > 2 && t->h[2] < t->h[1]) b = t->h[2];
  double tt = vi - (double)lo, diff = b - a;
  if (tt >= 0.5) return b - diff * (1.0 - tt);
  return a + diff * tt;
}

typedef struct {
  int64_t n, g;
  const float *Ms, *Mu, *Mss, *Mus;
  const double *gamma_det;
  double perc;
  vl_velocity_det_out *det;
  double *gamma;
  int failed;
} fit_job;

/* The heap is used for upper percentiles (the usual 95); a copy and quickselect otherwise. */
static double upper_bound(const float *x, int64_t n, double perc, top_heap *hp, float *scratch) {
  if (hp->cap * 2 > n + 2) {
    memcpy(scratch, x, (size_t)n * sizeof *x);
    return vl_percentile_f32(scratch, n, perc);
  }
  hp->size = 0;
  int64_t i = 0;
  for (; i < n && hp->size < hp->cap; i++) heap_push(hp, x[i]);
  float top = hp->h[0]; /* once full, only values above the heap's minimum enter */
  for (; i < n; i++)
    if (x[i] > top) {
      heap_push(hp, x[i]);
      top = hp->h[0];
    }
  return heap_percentile(hp, n, perc);
}

static void det_body(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)chunk;
  fit_job *J = arg;
  int64_t n = J->n;
  int64_t cap = heap_cap(n, J->perc);
  float *buf = malloc((size_t)(n * (2 * GENE_BLOCK + 2) + cap + 1) * sizeof(float));
  if (!buf) { J->failed = 1; return; }
  float *S = buf, *U = buf + GENE_BLOCK * n, *tmp = buf + 2 * GENE_BLOCK * n, *scratch = tmp + n;
  top_heap hp = {scratch + n, 0, cap};
  gather_cols(J->Ms, n, J->g, lo, hi, S);
  gather_cols(J->Mu, n, J->g, lo, hi, U);
  for (int64_t j = lo; j < hi; j++) {
    const float *s = S + (j - lo) * n, *u = U + (j - lo) * n;
    float ms = s[0], mu = u[0];
    double sum_u = 0;
    int any_s = 0, any_u = 0;
    for (int64_t i = 0; i < n; i++) {
      if (s[i] > ms) ms = s[i];
      if (u[i] > mu) mu = u[i];
      any_s |= s[i] > 0;
      any_u |= u[i] > 0;
      sum_u += u[i];
    }
    if (ms < 1e-3f) ms = 1e-3f;
    if (mu < 1e-3f) mu = 1e-3f;
    for (int64_t i = 0; i < n; i++) tmp[i] = s[i] / ms + u[i] / mu;
    double bound = upper_bound(tmp, n, J->perc, &hp, scratch);
    double sxy = 0, sxx = 0;
    for (int64_t i = 0; i < n; i++)
      if ((double)tmp[i] >= bound) { sxy += (double)s[i] * u[i]; sxx += (double)s[i] * s[i]; }
    double gam = sxy / sxx;
    if (isnan(gam)) gam = 0;
    float g32 = (float)gam;
    /* residual in f32 as scVelo, statistics in double */
    double mean_u = sum_u / (double)n, ss_res = 0, sum_r = 0, ss_tot = 0;
    for (int64_t i = 0; i < n; i++) {
      float r = u[i] - g32 * s[i];
      ss_res += (double)r * r;
      sum_r += r;
      double d = (double)u[i] - mean_u;
      ss_tot += d * d;
    }
    double r2 = 1.0 - ss_res / ss_tot;
    if (isnan(r2)) r2 = 0;
    J->det->gamma[j] = (double)g32;
    J->det->r2[j] = r2;
    if (J->det->expressed) J->det->expressed[j] = (uint8_t)(any_s && any_u);
    if (J->det->res_std) {
      double mr = sum_r / (double)n, v = ss_res / (double)n - mr * mr;
      J->det->res_std[j] = sqrt(v > 0 ? v : 0);
    }
  }
  free(buf);
}

vl_status vl_velocity_fit_deterministic(vl_ctx *ctx, int64_t n, int64_t g, const float *Ms,
                                        const float *Mu, double perc, vl_velocity_det_out *out,
                                        vl_error *err) {
  if (n < 1) return vl_fail(err, VL_ERR_SHAPE, "velocity needs at least one cell");
  if (!(perc >= 0 && perc <= 100)) return vl_fail(err, VL_ERR_VALUE, "perc must be in [0, 100], got %g", perc);
  fit_job J = {n, g, Ms, Mu, NULL, NULL, NULL, perc, out, NULL, 0};
  vl_status st = vl_parallel_blocks(ctx, g, GENE_BLOCK, det_body, &J);
  if (st != VL_OK) return vl_fail(err, st, "interrupted");
  if (J.failed) return vl_fail(err, VL_ERR_NOMEM, "cannot allocate velocity fit buffers");
  return VL_OK;
}

static void sto_body(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)chunk;
  fit_job *J = arg;
  int64_t n = J->n;
  int64_t cap = heap_cap(n, J->perc);
  float *buf = malloc((size_t)(n * (4 * GENE_BLOCK + 4) + 2 * cap + 2) * sizeof(float));
  if (!buf) { J->failed = 1; return; }
  float *S = buf, *U = buf + GENE_BLOCK * n, *SS = buf + 2 * GENE_BLOCK * n,
        *US = buf + 3 * GENE_BLOCK * n, *rest = buf + 4 * GENE_BLOCK * n;
  float *var = rest, *cov = rest + n, *tmp = rest + 2 * n, *scratch = rest + 3 * n;
  top_heap h1 = {scratch + n, 0, cap}, h2 = {scratch + n + cap + 1, 0, cap};
  gather_cols(J->Ms, n, J->g, lo, hi, S);
  gather_cols(J->Mu, n, J->g, lo, hi, U);
  gather_cols(J->Mss, n, J->g, lo, hi, SS);
  gather_cols(J->Mus, n, J->g, lo, hi, US);
  for (int64_t j = lo; j < hi; j++) {
    const float *s = S + (j - lo) * n, *u = U + (j - lo) * n;
    const float *ss = SS + (j - lo) * n, *us = US + (j - lo) * n;
    float gd = (float)J->gamma_det[j];
    float ms = s[0], mu = u[0];
    double sum_r = 0, ss_r = 0, vc = 0, vv = 0;
    for (int64_t i = 0; i < n; i++) {
      var[i] = 2.0f * ss[i] - s[i];
      cov[i] = 2.0f * us[i] + u[i];
      if (s[i] > ms) ms = s[i];
      if (u[i] > mu) mu = u[i];
      float r = u[i] - gd * s[i];
      sum_r += r;
      ss_r += (double)r * r;
      vc += (double)var[i] * cov[i];
      vv += (double)var[i] * var[i];
    }
    double mr = sum_r / (double)n, r1 = ss_r / (double)n - mr * mr; /* res_std^2 */
    float g2 = (float)(vc / vv);
    double sum_r2 = 0, ss_r2 = 0;
    for (int64_t i = 0; i < n; i++) {
      float r = cov[i] - g2 * var[i];
      sum_r2 += r;
      ss_r2 += (double)r * r;
    }
    double mr2 = sum_r2 / (double)n, r2 = ss_r2 / (double)n - mr2 * mr2; /* res2_std^2 */
    /* weights: upper extremes of s/max s + u/max u, or of s alone */
    if (ms < 1e-3f) ms = 1e-3f;
    if (mu < 1e-3f) mu = 1e-3f;
    for (int64_t i = 0; i < n; i++) tmp[i] = s[i] / ms + u[i] / mu;
    double bound = upper_bound(tmp, n, J->perc, &h1, scratch);
    double bs = upper_bound(s, n, J->perc, &h2, scratch);
    double a1 = 0, b1 = 0;
    for (int64_t i = 0; i < n; i++)
      if ((double)tmp[i] >= bound || (double)s[i] >= bs) {
        a1 += (double)s[i] * u[i];
        b1 += (double)s[i] * s[i];
      }
    double gam = (a1 / r1 + vc / r2) / (b1 / r1 + vv / r2);
    if (!isfinite(gam)) gam = J->gamma_det[j];
    J->gamma[j] = (double)(float)gam;
  }
  free(buf);
}

vl_status vl_velocity_fit_stochastic(vl_ctx *ctx, int64_t n, int64_t g, const float *Ms,
                                     const float *Mu, const float *Mss, const float *Mus,
                                     const double *gamma_det, double perc, double *gamma,
                                     vl_error *err) {
  if (n < 1) return vl_fail(err, VL_ERR_SHAPE, "velocity needs at least one cell");
  if (!(perc >= 0 && perc <= 100)) return vl_fail(err, VL_ERR_VALUE, "perc must be in [0, 100], got %g", perc);
  fit_job J = {n, g, Ms, Mu, Mss, Mus, gamma_det, perc, NULL, gamma, 0};
  vl_status st = vl_parallel_blocks(ctx, g, GENE_BLOCK, sto_body, &J);
  if (st != VL_OK) return vl_fail(err, st, "interrupted");
  if (J.failed) return vl_fail(err, VL_ERR_NOMEM, "cannot allocate velocity fit buffers");
  return VL_OK;
}
