/* UMAP fuzzy simplicial set (see umap_graph.h). The arithmetic follows umap-learn 0.5.4 step
 * by step in f32 (its numba locals are float32), so the weights agree with scanpy's to about
 * one f32 ulp; the bisection's sum is accumulated in index order. */
#include "umap_graph.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SMOOTH_K_TOLERANCE 1e-5
#define MIN_K_DIST_SCALE 1e-3
#define N_ITER 64

typedef struct {
  const vl_umap_graph_in *in;
  float *sigmas, *rhos;
  double mean_all;
} smooth_job;

static void smooth_rows(int64_t lo, int64_t hi, int chunk, void *arg) {
  const smooth_job *s = arg;
  const int64_t k = s->in->k;
  const double lc = s->in->local_connectivity;
  const double target = log2((double)k); /* bandwidth 1 */
  for (int64_t i = lo; i < hi; i++) {
    const float *di = s->in->knn_dist + i * k;
    /* rho: distance to the local_connectivity-th nearest point at non-zero distance */
    int64_t nz = 0;
    float maxnz = 0;
    for (int64_t j = 0; j < k; j++)
      if (di[j] > 0) {
        nz++;
        if (di[j] > maxnz) maxnz = di[j];
      }
    float rho = 0;
    if ((double)nz >= lc) {
      int64_t index = (int64_t)floor(lc);
      double interp = lc - (double)index;
      /* the index-th non-zero distance (1-based) */
      float prev = 0, cur = 0;
      int64_t seen = 0;
      for (int64_t j = 0; j < k && seen <= index; j++)
        if (di[j] > 0) {
          seen++;
          if (seen == index) prev = di[j];
          if (seen == index + 1) cur = di[j];
          if (index == 0 && seen == 1) cur = di[j];
        }
      if (index > 0) {
        rho = prev;
        if (interp > SMOOTH_K_TOLERANCE) rho = (float)((double)rho + interp * (double)(cur - prev));
      } else {
        rho = (float)(interp * (double)cur);
      }
    } else if (nz > 0) {
      rho = maxnz;
    }
    float lo_ = 0.0f, hi_ = INFINITY, mid = 1.0f;
    for (int it = 0; it < N_ITER; it++) {
      float psum = 0.0f;
      for (int64_t j = 1; j < k; j++) {
        float d = di[j] - rho;
        if (d > 0) psum += expf(-(d / mid));
        else psum += 1.0f;
      }
      if (fabs((double)psum - target) < SMOOTH_K_TOLERANCE) break;
      if ((double)psum > target) {
        hi_ = mid;
        mid = (lo_ + hi_) / 2.0f;
      } else {
        lo_ = mid;
        if (hi_ == INFINITY) mid *= 2;
        else mid = (lo_ + hi_) / 2.0f;
      }
    }
    float sigma = mid;
    double floor_scale;
    if (rho > 0) {
      double m = 0;
      for (int64_t j = 0; j < k; j++) m += di[j];
      floor_scale = MIN_K_DIST_SCALE * (m / (double)k);
    } else {
      floor_scale = MIN_K_DIST_SCALE * s->mean_all;
    }
    if ((double)sigma < floor_scale) sigma = (float)floor_scale;
    s->sigmas[i] = sigma;
    s->rhos[i] = rho;
  }
}

static vl_status check_in(const vl_umap_graph_in *in, vl_error *err) {
  if (in->n < 0 || in->k < 1)
    return vl_fail(err, VL_ERR_VALUE, "umap graph: need n >= 0 and k >= 1");
  for (int64_t t = 0; t < in->n * in->k; t++) {
    int64_t c = in->knn_idx[t];
    if (c < -1 || c >= in->n)
      return vl_fail(err, VL_ERR_INDEX, "umap graph: neighbour index %lld (row %lld) out of range",
                     (long long)c, (long long)(t / in->k));
    if (!(in->knn_dist[t] >= 0) && c >= 0)
      return vl_fail(err, VL_ERR_VALUE, "umap graph: distance %g (row %lld) is not >= 0",
                     (double)in->knn_dist[t], (long long)(t / in->k));
  }
  return VL_OK;
}

vl_status vl_umap_smooth_knn(vl_ctx *ctx, const vl_umap_graph_in *in, float *sigmas,
                             float *rhos, vl_error *err) {
  vl_status st = check_in(in, err);
  if (st) return st;
  smooth_job s = {in, sigmas, rhos, 0};
  double m = 0;
  for (int64_t t = 0; t < in->n * in->k; t++) m += in->knn_dist[t];
  s.mean_all = in->n > 0 ? m / (double)(in->n * in->k) : 0;
  vl_parallel_for(ctx, in->n, 256, smooth_rows, &s);
  return VL_OK;
}

typedef struct {
  int64_t col;
  float val;
} entry;

static int entry_cmp(const void *a, const void *b) {
  int64_t x = ((const entry *)a)->col, y = ((const entry *)b)->col;
  return (x > y) - (x < y);
}

vl_status vl_umap_fuzzy_union(vl_ctx *ctx, const vl_umap_graph_in *in, const float *sigmas,
                              const float *rhos, int64_t *indptr, int64_t *indices,
                              float *values, int64_t *nnz_out, vl_error *err) {
  vl_status st = check_in(in, err);
  if (st) return st;
  const int64_t n = in->n, k = in->k;
  /* P: memberships, row by row with sorted columns; P^T by a counting sort (rows ascending) */
  int64_t *pp = calloc((size_t)(n + 1), sizeof(int64_t));
  entry *pe = malloc(sizeof(entry) * (size_t)(n * k > 0 ? n * k : 1));
  int64_t *tp = calloc((size_t)(n + 2), sizeof(int64_t));
  entry *te = malloc(sizeof(entry) * (size_t)(n * k > 0 ? n * k : 1));
  if (!pp || !pe || !tp || !te) {
    st = vl_fail(err, VL_ERR_NOMEM, "umap graph: out of memory (%lld x %lld neighbours)",
                 (long long)n, (long long)k);
    goto out;
  }
  int64_t np = 0;
  for (int64_t i = 0; i < n; i++) {
    pp[i] = np;
    for (int64_t j = 0; j < k; j++) {
      int64_t c = in->knn_idx[i * k + j];
      if (c < 0 || c == i) continue;
      float d = in->knn_dist[i * k + j], v;
      if (d - rhos[i] <= 0.0f || sigmas[i] == 0.0f) v = 1.0f;
      else v = expf(-((d - rhos[i]) / sigmas[i]));
      if (v == 0.0f) continue;
      pe[np++] = (entry){c, v};
    }
    qsort(pe + pp[i], (size_t)(np - pp[i]), sizeof(entry), entry_cmp);
    /* a column listed twice adds up, as a COO matrix converted to CSR */
    int64_t w = pp[i];
    for (int64_t r = pp[i]; r < np; r++) {
      if (w > pp[i] && pe[w - 1].col == pe[r].col) pe[w - 1].val += pe[r].val;
      else pe[w++] = pe[r];
    }
    np = w;
  }
  pp[n] = np;
  for (int64_t t = 0; t < np; t++) tp[pe[t].col + 2]++;
  for (int64_t c = 0; c < n; c++) tp[c + 2] += tp[c + 1];
  for (int64_t i = 0; i < n; i++)
    for (int64_t t = pp[i]; t < pp[i + 1]; t++) te[tp[pe[t].col + 1]++] = (entry){i, pe[t].val};
  /* tp[c] .. tp[c + 1] now delimits row c of P^T */
  const float r = (float)in->set_op_mix_ratio, q = (float)(1.0 - in->set_op_mix_ratio);
  int64_t nnz = 0;
  indptr[0] = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t a = pp[i], ae = pp[i + 1], b = tp[i], be = tp[i + 1];
    while (a < ae || b < be) {
      int64_t col;
      float x = 0, y = 0;
      if (b >= be || (a < ae && pe[a].col < te[b].col)) {
        col = pe[a].col;
        x = pe[a++].val;
      } else if (a >= ae || te[b].col < pe[a].col) {
        col = te[b].col;
        y = te[b++].val;
      } else {
        col = pe[a].col;
        x = pe[a++].val;
        y = te[b++].val;
      }
      /* scipy, in f32: ratio * ((P + P^T) - P∘P^T) + (1 - ratio) * P∘P^T */
      float sum = x + y, prod = x * y;
      float diff = sum - prod;
      float v = r * diff;
      float pq = q * prod;
      v = v + pq;
      if (v != 0.0f) {
        indices[nnz] = col;
        values[nnz] = v;
        nnz++;
      }
    }
    indptr[i + 1] = nnz;
  }
  *nnz_out = nnz;
out:
  free(pp);
  free(pe);
  free(tp);
  free(te);
  return st;
}
