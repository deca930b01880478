/* UMAP fuzzy simplicial set (see umap_graph.h). The arithmetic follows umap-learn 0.5.4 step
 * by step in f32 (its numba locals are float32), so the weights agree with scanpy's to about
 * one f32 ulp; the bisection's sum is accumulated in index order. */
#include "umap_graph.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SMOOTH_K_TOLERANCE 1e-5
#define MIN_K_DIST_SCALE 1e-3
#define N_ITER 64

typedef struct {
  const vl_umap_graph_in *in;
  float *sigmas, *rhos;
  double mean_all;
  bool avx2;
  float *scratch; /* k floats per range of rows */
} smooth_job;

/* The bisection's sum over the neighbours j = 1 .. m - 1 (dr[j] = distance - rho):
 * expf(-(dr / sigma)) where dr > 0, else 1, accumulated in f32 in index order. */
static float psum_scalar(const float *dr, int64_t m, float mid) {
  float psum = 0.0f;
  for (int64_t j = 1; j < m; j++) {
    float d = dr[j];
    if (d > 0) psum += expf(-(d / mid));
    else psum += 1.0f;
  }
  return psum;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* glibc's expf for |x| < 88 on CPUs with FMA (__expf_fma: x N/ln2 = k + r, 2^(k/N) from a
 * 32-entry table, a cubic in r, each step as its compiled code does), four at a time in
 * double; bit for bit glibc's result, which an exhaustive comparison over every float with
 * |x| < 88 confirmed (glibc 2.36). Lanes with |x| >= 88 take expf itself. */
static const uint64_t EXP2F_TAB[32] = {
  0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
  0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
  0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
  0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
  0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
  0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
  0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
  0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
};

__attribute__((target("avx2,fma"))) static float psum_avx2(const float *dr, int64_t m,
                                                           float mid) {
  const __m256d inv = _mm256_set1_pd(0x1.71547652b82fep+0 * 32), shift = _mm256_set1_pd(0x1.8p+52);
  const __m256d c0 = _mm256_set1_pd(0x1.c6af84b912394p-5 / 32 / 32 / 32);
  const __m256d c1 = _mm256_set1_pd(0x1.ebfce50fac4f3p-3 / 32 / 32);
  const __m256d c2 = _mm256_set1_pd(0x1.62e42ff0c52d6p-1 / 32), one = _mm256_set1_pd(1.0);
  const __m256i m31 = _mm256_set1_epi64x(31);
  const __m128 vmid = _mm_set1_ps(mid), zero = _mm_setzero_ps(), onef = _mm_set1_ps(1.0f);
  const __m128 big = _mm_set1_ps(88.0f), sign = _mm_set1_ps(-0.0f);
  float val[4];
  float psum = 0.0f;
  int64_t j = 1;
  for (; j + 4 <= m; j += 4) {
    __m128 d = _mm_loadu_ps(dr + j);
    __m128 x = _mm_xor_ps(_mm_div_ps(d, vmid), sign); /* -(d / mid) */
    __m256d xd = _mm256_cvtps_pd(x);
    __m256d kd = _mm256_fmadd_pd(inv, xd, shift);
    __m256i ki = _mm256_castpd_si256(kd);
    kd = _mm256_sub_pd(kd, shift);
    __m256d r = _mm256_fmsub_pd(inv, xd, kd);
    __m256i t = _mm256_i64gather_epi64((const long long *)EXP2F_TAB, _mm256_and_si256(ki, m31), 8);
    t = _mm256_add_epi64(t, _mm256_slli_epi64(ki, 47));
    __m256d z = _mm256_fmadd_pd(r, c0, c1);
    __m256d r2 = _mm256_mul_pd(r, r);
    __m256d y = _mm256_fmadd_pd(r, c2, one);
    y = _mm256_fmadd_pd(z, r2, y);
    y = _mm256_mul_pd(y, _mm256_castsi256_pd(t));
    __m128 pos = _mm_cmpgt_ps(d, zero);
    __m128 e = _mm_blendv_ps(onef, _mm256_cvtpd_ps(y), pos);
    _mm_storeu_ps(val, e);
    int far = _mm_movemask_ps(_mm_and_ps(pos, _mm_cmpge_ps(_mm_andnot_ps(sign, x), big)));
    for (int l = 0; l < 4; l++) {
      if (far >> l & 1) val[l] = expf(-(dr[j + l] / mid));
      psum += val[l];
    }
  }
  for (; j < m; j++) {
    float d = dr[j];
    if (d > 0) psum += expf(-(d / mid));
    else psum += 1.0f;
  }
  return psum;
}
#endif

static void smooth_rows(int64_t lo, int64_t hi, int chunk, void *arg) {
  const smooth_job *s = arg;
  const int64_t k = s->in->k;
  float *dr = s->scratch + (int64_t)chunk * k;
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
    for (int64_t j = 0; j < k; j++) dr[j] = di[j] - rho;
    for (int it = 0; it < N_ITER; it++) {
#if defined(__x86_64__) && defined(__GNUC__)
      float psum = s->avx2 ? psum_avx2(dr, k, mid) : psum_scalar(dr, k, mid);
#else
      float psum = psum_scalar(dr, k, mid);
#endif
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
  const int ranges = ctx && ctx->num_threads > 1 ? ctx->num_threads : 1;
  smooth_job s = {in, sigmas, rhos, 0, false, malloc(sizeof(float) * (size_t)(ranges * in->k))};
  if (!s.scratch) return vl_fail(err, VL_ERR_NOMEM, "umap graph: out of memory");
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  s.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  double m = 0;
  for (int64_t t = 0; t < in->n * in->k; t++) m += in->knn_dist[t];
  s.mean_all = in->n > 0 ? m / (double)(in->n * in->k) : 0;
  vl_parallel_for(ctx, in->n, 256, smooth_rows, &s);
  free(s.scratch);
  return VL_OK;
}

typedef struct {
  int64_t col;
  float val;
} entry;

/* By column, stable (insertion sort: a row holds k entries). */
static void entry_sort(entry *r, int64_t n) {
  for (int64_t i = 1; i < n; i++) {
    entry x = r[i];
    int64_t j = i;
    while (j > 0 && r[j - 1].col > x.col) {
      r[j] = r[j - 1];
      j--;
    }
    r[j] = x;
  }
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
    entry_sort(pe + pp[i], np - pp[i]);
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
