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

#define GENE_BLOCK 16

/* cols[jj * n + i] = m[i, lo + jj] for jj < hi - lo: a block of columns read row by row */
static void gather_cols(const float *m, int64_t n, int64_t g, int64_t lo, int64_t hi, float *cols) {
  int64_t w = hi - lo;
  for (int64_t i = 0; i < n; i++) {
    const float *r = m + i * g + lo;
    for (int64_t jj = 0; jj < w; jj++) cols[jj * n + i] = r[jj];
  }
}

static float clipped_max(const float *x, int64_t n) {
  float m = x[0];
  for (int64_t i = 1; i < n; i++) if (x[i] > m) m = x[i];
  return m < 1e-3f ? 1e-3f : m;
}

/* w[i] = s_i / max s + u_i / max u >= its perc-th percentile (float32 as scVelo) */
static void extreme_mask(const float *s, const float *u, int64_t n, double perc, float *tmp,
                         uint8_t *w) {
  float ms = clipped_max(s, n), mu = clipped_max(u, n);
  for (int64_t i = 0; i < n; i++) tmp[i] = s[i] / ms + u[i] / mu;
  float *copy = tmp + n;
  memcpy(copy, tmp, (size_t)n * sizeof *tmp);
  double bound = vl_percentile_f32(copy, n, perc);
  for (int64_t i = 0; i < n; i++) w[i] = (double)tmp[i] >= bound;
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

static void det_body(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)chunk;
  fit_job *J = arg;
  int64_t n = J->n;
  float *buf = malloc((size_t)n * (2 * GENE_BLOCK + 2) * sizeof(float));
  uint8_t *w = malloc((size_t)n);
  if (!buf || !w) { free(buf); free(w); J->failed = 1; return; }
  float *S = buf, *U = buf + GENE_BLOCK * n, *tmp = buf + 2 * GENE_BLOCK * n;
  gather_cols(J->Ms, n, J->g, lo, hi, S);
  gather_cols(J->Mu, n, J->g, lo, hi, U);
  for (int64_t j = lo; j < hi; j++) {
    const float *s = S + (j - lo) * n, *u = U + (j - lo) * n;
    extreme_mask(s, u, n, J->perc, tmp, w);
    double sxy = 0, sxx = 0;
    int any_s = 0, any_u = 0;
    for (int64_t i = 0; i < n; i++) {
      if (w[i]) { sxy += (double)s[i] * u[i]; sxx += (double)s[i] * s[i]; }
      any_s |= s[i] > 0;
      any_u |= u[i] > 0;
    }
    double gam = sxy / sxx;
    if (isnan(gam)) gam = 0;
    float g32 = (float)gam;
    /* residual in f32 as scVelo, statistics in double */
    double mean_u = 0, mean_r = 0;
    for (int64_t i = 0; i < n; i++) mean_u += u[i];
    mean_u /= (double)n;
    double ss_res = 0, ss_tot = 0;
    for (int64_t i = 0; i < n; i++) {
      float r = u[i] - g32 * s[i];
      ss_res += (double)r * r;
      mean_r += r;
      double d = (double)u[i] - mean_u;
      ss_tot += d * d;
    }
    mean_r /= (double)n;
    double r2 = 1.0 - ss_res / ss_tot;
    if (isnan(r2)) r2 = 0;
    J->det->gamma[j] = (double)g32;
    J->det->r2[j] = r2;
    if (J->det->expressed) J->det->expressed[j] = (uint8_t)(any_s && any_u);
    if (J->det->res_std) {
      double v = 0;
      for (int64_t i = 0; i < n; i++) {
        float r = u[i] - g32 * s[i];
        double d = (double)r - mean_r;
        v += d * d;
      }
      J->det->res_std[j] = sqrt(v / (double)n);
    }
  }
  free(buf);
  free(w);
}

vl_status vl_velocity_fit_deterministic(vl_ctx *ctx, int64_t n, int64_t g, const float *Ms,
                                        const float *Mu, double perc, vl_velocity_det_out *out,
                                        vl_error *err) {
  if (n < 1) return vl_fail(err, VL_ERR_SHAPE, "velocity needs at least one cell");
  if (!(perc >= 0 && perc <= 100)) return vl_fail(err, VL_ERR_VALUE, "perc must be in [0, 100], got %g", perc);
  fit_job J = {n, g, Ms, Mu, NULL, NULL, NULL, perc, out, NULL, 0};
  vl_parallel_blocks(ctx, g, GENE_BLOCK, det_body, &J);
  if (J.failed) return vl_fail(err, VL_ERR_NOMEM, "cannot allocate velocity fit buffers");
  return VL_OK;
}

static double std_f32(const float *x, int64_t n) {
  double m = 0, v = 0;
  for (int64_t i = 0; i < n; i++) m += x[i];
  m /= (double)n;
  for (int64_t i = 0; i < n; i++) { double d = x[i] - m; v += d * d; }
  return sqrt(v / (double)n);
}

static void sto_body(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)chunk;
  fit_job *J = arg;
  int64_t n = J->n;
  float *buf = malloc((size_t)n * (4 * GENE_BLOCK + 6) * sizeof(float));
  uint8_t *w = malloc((size_t)n);
  if (!buf || !w) { free(buf); free(w); J->failed = 1; return; }
  float *S = buf, *U = buf + GENE_BLOCK * n, *SS = buf + 2 * GENE_BLOCK * n,
        *US = buf + 3 * GENE_BLOCK * n, *rest = buf + 4 * GENE_BLOCK * n;
  float *var = rest, *cov = rest + n, *res = rest + 2 * n,
        *tmp = rest + 3 * n; /* tmp needs 2n; rest + 5n is the copy for the percentile of s */
  gather_cols(J->Ms, n, J->g, lo, hi, S);
  gather_cols(J->Mu, n, J->g, lo, hi, U);
  gather_cols(J->Mss, n, J->g, lo, hi, SS);
  gather_cols(J->Mus, n, J->g, lo, hi, US);
  for (int64_t j = lo; j < hi; j++) {
    const float *s = S + (j - lo) * n, *u = U + (j - lo) * n;
    const float *ss = SS + (j - lo) * n, *us = US + (j - lo) * n;
    for (int64_t i = 0; i < n; i++) {
      var[i] = 2.0f * ss[i] - s[i];
      cov[i] = 2.0f * us[i] + u[i];
    }
    float gd = (float)J->gamma_det[j];
    for (int64_t i = 0; i < n; i++) res[i] = u[i] - gd * s[i];
    double res_std = std_f32(res, n);
    double vc = 0, vv = 0;
    for (int64_t i = 0; i < n; i++) { vc += (double)var[i] * cov[i]; vv += (double)var[i] * var[i]; }
    float g2 = (float)(vc / vv);
    for (int64_t i = 0; i < n; i++) res[i] = cov[i] - g2 * var[i];
    double res2_std = std_f32(res, n);
    /* weights: upper extremes of s/max s + u/max u, or of s alone */
    extreme_mask(s, u, n, J->perc, tmp, w);
    float *copy = rest + 5 * n;
    memcpy(copy, s, (size_t)n * sizeof *s);
    double bs = vl_percentile_f32(copy, n, J->perc);
    double a1 = 0, b1 = 0, a2 = 0, b2 = 0;
    for (int64_t i = 0; i < n; i++) {
      if (w[i] || (double)s[i] >= bs) { a1 += (double)s[i] * u[i]; b1 += (double)s[i] * s[i]; }
      a2 += (double)var[i] * cov[i];
      b2 += (double)var[i] * var[i];
    }
    double r1 = res_std * res_std, r2 = res2_std * res2_std;
    double gam = (a1 / r1 + a2 / r2) / (b1 / r1 + b2 / r2);
    if (!isfinite(gam)) gam = J->gamma_det[j];
    J->gamma[j] = (double)(float)gam;
  }
  free(buf);
  free(w);
}

vl_status vl_velocity_fit_stochastic(vl_ctx *ctx, int64_t n, int64_t g, const float *Ms,
                                     const float *Mu, const float *Mss, const float *Mus,
                                     const double *gamma_det, double perc, double *gamma,
                                     vl_error *err) {
  if (n < 1) return vl_fail(err, VL_ERR_SHAPE, "velocity needs at least one cell");
  if (!(perc >= 0 && perc <= 100)) return vl_fail(err, VL_ERR_VALUE, "perc must be in [0, 100], got %g", perc);
  fit_job J = {n, g, Ms, Mu, Mss, Mus, gamma_det, perc, NULL, gamma, 0};
  vl_parallel_blocks(ctx, g, GENE_BLOCK, sto_body, &J);
  if (J.failed) return vl_fail(err, VL_ERR_NOMEM, "cannot allocate velocity fit buffers");
  return VL_OK;
}
