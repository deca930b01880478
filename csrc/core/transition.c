/* Transition kernel, embedding projection and row correlations (see transition.h). */
#include "transition.h"

#include <math.h>
#include <stdlib.h>

static double val(const vl_csr *a, int64_t p) {
  return a->dtype == VL_F32 ? (double)((const float *)a->values)[p] : ((const double *)a->values)[p];
}

vl_status vl_transition_kernel(const vl_csr *pos, const vl_csr *neg, const float *self_prob,
                               double scale, int negative_cosines, int64_t *counts,
                               const int64_t *out_indptr, int64_t *out_indices,
                               float *out_values, vl_error *err) {
  int64_t n = pos->nrows;
  if (pos->ncols != n || (neg && (neg->nrows != n || neg->ncols != n)))
    return vl_fail(err, VL_ERR_SHAPE, "velocity graphs must be square and of equal size");
  for (int64_t i = 0; i < n; i++) {
    int64_t a = pos->indptr[i], ae = pos->indptr[i + 1];
    int64_t b = neg ? neg->indptr[i] : 0, be = neg ? neg->indptr[i + 1] : 0;
    double self = self_prob ? (double)self_prob[i] : 0.0;
    int diag_done = !(self > 0);
    int64_t w = out_indices ? out_indptr[i] : 0, cnt = 0;
    /* merge the two sorted rows and the diagonal */
    while (a < ae || b < be || !diag_done) {
      int64_t ca = a < ae ? pos->indices[a] : INT64_MAX;
      int64_t cb = b < be ? neg->indices[b] : INT64_MAX;
      int64_t c = ca < cb ? ca : cb;
      if (!diag_done && i <= c) {
        if (out_indices) {
          out_indices[w] = i;
          out_values[w] = (float)(negative_cosines ? expm1(scale * self) : exp(scale * self));
          w++;
        }
        cnt++;
        diag_done = 1;
        if (c == i) { if (ca == i) a++; else b++; } /* replaced by the self score */
        continue;
      }
      double pi;
      if (ca <= cb) { pi = val(pos, a); a++; } else { pi = val(neg, b); b++; }
      if (self_prob && c == i) continue; /* self score 0: graph diagonal dropped */
      if (pi == 0) continue;
      if (out_indices) {
        double t = negative_cosines ? copysign(expm1(scale * fabs(pi)), pi) : exp(scale * pi);
        out_indices[w] = c;
        out_values[w] = (float)t;
        w++;
      }
      cnt++;
    }
    if (!out_indices) counts[i] = cnt;
  }
  return VL_OK;
}

typedef struct {
  const int64_t *indptr;
  float *values;
} norm_job;

static void norm_body(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)chunk;
  const norm_job *J = arg;
  for (int64_t i = lo; i < hi; i++) {
    double s = 0;
    for (int64_t p = J->indptr[i]; p < J->indptr[i + 1]; p++) s += fabs((double)J->values[p]);
    if (s == 0) continue;
    float inv = (float)(1.0 / s);
    for (int64_t p = J->indptr[i]; p < J->indptr[i + 1]; p++) J->values[p] *= inv;
  }
}

void vl_csr_normalize_abs_rows(vl_ctx *ctx, int64_t n, const int64_t *indptr, float *values) {
  norm_job J = {indptr, values};
  vl_parallel_blocks(ctx, n, 1024, norm_body, &J);
}

typedef struct {
  const vl_csr *T;
  int64_t d;
  const double *X;
  int retain_scale;
  double *V;
  int failed;
} emb_job;

static void emb_body(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)chunk;
  emb_job *J = arg;
  int64_t d = J->d;
  double *e = malloc((size_t)d * 2 * sizeof *e);
  if (!e) { J->failed = 1; return; }
  double *esum = e + d;
  for (int64_t i = lo; i < hi; i++) {
    double *vi = J->V + i * d;
    const double *xi = J->X + i * d;
    for (int64_t c = 0; c < d; c++) { vi[c] = 0; esum[c] = 0; }
    double tsum = 0;
    int64_t cnt = 0;
    for (int64_t p = J->T->indptr[i]; p < J->T->indptr[i + 1]; p++) {
      int64_t j = J->T->indices[p];
      double t = val(J->T, p);
      if (j == i || t == 0) continue;
      const double *xj = J->X + j * d;
      double nn = 0;
      for (int64_t c = 0; c < d; c++) { e[c] = xj[c] - xi[c]; nn += e[c] * e[c]; }
      double inv = J->retain_scale ? 1.0 : (nn > 0 ? 1.0 / sqrt(nn) : 0.0);
      for (int64_t c = 0; c < d; c++) {
        double ec = e[c] * inv;
        vi[c] += t * ec;
        esum[c] += ec;
      }
      tsum += t;
      cnt++;
    }
    if (cnt == 0) continue;
    double tmean = tsum / (double)cnt;
    for (int64_t c = 0; c < d; c++) vi[c] -= tmean * esum[c];
  }
  free(e);
}

vl_status vl_velocity_embedding(vl_ctx *ctx, const vl_csr *T, int64_t d, const double *X,
                                int retain_scale, double *V, vl_error *err) {
  if (T->ncols != T->nrows) return vl_fail(err, VL_ERR_SHAPE, "the transition matrix must be square");
  for (int64_t p = 0; p < T->nrows * d; p++)
    if (!isfinite(X[p]))
      return vl_fail(err, VL_ERR_VALUE, "the embedding has a non-finite value at row %lld",
                     (long long)(p / d + 1));
  emb_job J = {T, d, X, retain_scale, V, 0};
  vl_parallel_blocks(ctx, T->nrows, 256, emb_body, &J);
  if (J.failed) return vl_fail(err, VL_ERR_NOMEM, "cannot allocate embedding buffers");
  return VL_OK;
}

typedef struct {
  const vl_csr *a, *b;
  double *r;
} rc_job;

static void rc_body(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)chunk;
  const rc_job *J = arg;
  for (int64_t i = lo; i < hi; i++) {
    int64_t p = J->a->indptr[i], pe = J->a->indptr[i + 1];
    int64_t q = J->b->indptr[i], qe = J->b->indptr[i + 1];
    /* two passes over the union: means, then centred sums */
    double sx = 0, sy = 0;
    int64_t m = 0;
    for (int64_t u = p, v = q; u < pe || v < qe; m++) {
      int64_t cu = u < pe ? J->a->indices[u] : INT64_MAX, cv = v < qe ? J->b->indices[v] : INT64_MAX;
      if (cu <= cv) sx += val(J->a, u++);
      if (cv <= cu) sy += val(J->b, v++);
    }
    if (m == 0) { J->r[i] = NAN; continue; }
    double mx = sx / (double)m, my = sy / (double)m, xy = 0, xx = 0, yy = 0;
    for (int64_t u = p, v = q; u < pe || v < qe;) {
      int64_t cu = u < pe ? J->a->indices[u] : INT64_MAX, cv = v < qe ? J->b->indices[v] : INT64_MAX;
      double x = 0, y = 0;
      if (cu <= cv) x = val(J->a, u++);
      if (cv <= cu) y = val(J->b, v++);
      x -= mx;
      y -= my;
      xy += x * y; xx += x * x; yy += y * y;
    }
    J->r[i] = xy / sqrt(xx * yy);
  }
}

vl_status vl_csr_row_correlation(vl_ctx *ctx, const vl_csr *a, const vl_csr *b, double *r,
                                 vl_error *err) {
  if (a->nrows != b->nrows || a->ncols != b->ncols)
    return vl_fail(err, VL_ERR_SHAPE, "matrices of different shapes");
  rc_job J = {a, b, r};
  vl_parallel_blocks(ctx, a->nrows, 1024, rc_body, &J);
  return VL_OK;
}

void vl_csr_row_max0(int64_t n, const int64_t *indptr, const float *values, float *m) {
  for (int64_t i = 0; i < n; i++) {
    float x = 0;
    for (int64_t p = indptr[i]; p < indptr[i + 1]; p++)
      if (values[p] > x) x = values[p];
    m[i] = x;
  }
}
