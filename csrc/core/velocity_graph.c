/* Velocity graph correlations and kNN velocity confidence (see velocity_graph.h). */
#include "velocity_graph.h"

#include "sparse_csr.h"

#include <math.h>
#include <stdlib.h>

#define LANES 8
#define CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))

typedef struct {
  double s1, s2, s3; /* sum d, sum d^2, sum d v */
} pair_sums;

/* Sums over genes of d = rho(xj - xi): d, d^2 and d * v. Float lanes keep each partial sum
 * short (g / 16 terms); lanes are combined in double. Portable version. */
static pair_sums sums_portable(const float *xi, const float *xj, const float *v, int64_t g,
                               int sq) {
  float a1[LANES] = {0}, a2[LANES] = {0}, a3[LANES] = {0};
  int64_t m = g - g % LANES;
  for (int64_t k = 0; k < m; k += LANES) {
    for (int l = 0; l < LANES; l++) {
      float d = xj[k + l] - xi[k + l];
      if (sq) d = copysignf(sqrtf(fabsf(d)), d);
      a1[l] += d;
      a2[l] += d * d;
      a3[l] += d * v[k + l];
    }
  }
  pair_sums r = {0, 0, 0};
  for (int l = 0; l < LANES; l++) { r.s1 += a1[l]; r.s2 += a2[l]; r.s3 += a3[l]; }
  for (int64_t k = m; k < g; k++) {
    float d = xj[k] - xi[k];
    if (sq) d = copysignf(sqrtf(fabsf(d)), d);
    r.s1 += d; r.s2 += (double)d * d; r.s3 += (double)d * v[k];
  }
  return r;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_KERNEL 1

__attribute__((target("avx2,fma"))) static inline double hsum_pd(__m256 a, __m256 b) {
  __m256d x = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)),
                            _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
  x = _mm256_add_pd(x, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(b)),
                                     _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1))));
  __m128d h = _mm_add_pd(_mm256_castpd256_pd128(x), _mm256_extractf128_pd(x, 1));
  return _mm_cvtsd_f64(h) + _mm_cvtsd_f64(_mm_unpackhi_pd(h, h));
}

#define DEFINE_AVX2_SUMS(NAME, SQ)                                                              \
  __attribute__((target("avx2,fma"))) static pair_sums NAME(const float *xi, const float *xj,   \
                                                            const float *v, int64_t g) {        \
    const __m256 sign = _mm256_set1_ps(-0.0f);                                                  \
    __m256 a1 = _mm256_setzero_ps(), a2 = a1, a3 = a1, b1 = a1, b2 = a1, b3 = a1;              \
    int64_t k = 0;                                                                              \
    for (; k + 16 <= g; k += 16) {                                                              \
      __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(xj + k), _mm256_loadu_ps(xi + k));              \
      __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(xj + k + 8), _mm256_loadu_ps(xi + k + 8));      \
      if (SQ) {                                                                                 \
        d0 = _mm256_or_ps(_mm256_sqrt_ps(_mm256_andnot_ps(sign, d0)), _mm256_and_ps(sign, d0));  \
        d1 = _mm256_or_ps(_mm256_sqrt_ps(_mm256_andnot_ps(sign, d1)), _mm256_and_ps(sign, d1));  \
      }                                                                                         \
      a1 = _mm256_add_ps(a1, d0);                                                               \
      b1 = _mm256_add_ps(b1, d1);                                                               \
      a2 = _mm256_fmadd_ps(d0, d0, a2);                                                         \
      b2 = _mm256_fmadd_ps(d1, d1, b2);                                                         \
      a3 = _mm256_fmadd_ps(d0, _mm256_loadu_ps(v + k), a3);                                     \
      b3 = _mm256_fmadd_ps(d1, _mm256_loadu_ps(v + k + 8), b3);                                 \
    }                                                                                           \
    pair_sums r = {hsum_pd(a1, b1), hsum_pd(a2, b2), hsum_pd(a3, b3)};                          \
    for (; k < g; k++) {                                                                        \
      float d = xj[k] - xi[k];                                                                  \
      if (SQ) d = copysignf(sqrtf(fabsf(d)), d);                                                \
      r.s1 += d; r.s2 += (double)d * d; r.s3 += (double)d * v[k];                               \
    }                                                                                           \
    return r;                                                                                   \
  }

DEFINE_AVX2_SUMS(sums_avx2_sqrt, 1)
DEFINE_AVX2_SUMS(sums_avx2_plain, 0)
#endif

typedef pair_sums (*sums_fn)(const float *, const float *, const float *, int64_t);

static pair_sums sums_portable_sqrt(const float *xi, const float *xj, const float *v, int64_t g) {
  return sums_portable(xi, xj, v, g, 1);
}
static pair_sums sums_portable_plain(const float *xi, const float *xj, const float *v, int64_t g) {
  return sums_portable(xi, xj, v, g, 0);
}

static sums_fn pick_sums(int sq) {
#ifdef HAVE_AVX2_KERNEL
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return sq ? sums_avx2_sqrt : sums_avx2_plain;
#endif
  return sq ? sums_portable_sqrt : sums_portable_plain;
}

typedef struct {
  int64_t n, g;
  const float *X, *V;
  sums_fn sums;
  const int64_t *indptr, *indices;
  float *vals;
  const int64_t *order; /* cells in processing order (NULL: 0..n-1) */
} corr_job;

static void corr_body(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)chunk;
  const corr_job *J = arg;
  int64_t g = J->g;
  for (int64_t q = lo; q < hi; q++) {
    int64_t i = J->order ? J->order[q] : q;
    const float *xi = J->X + i * g, *vi = J->V + i * g;
    double vsum = 0, vss = 0;
    for (int64_t k = 0; k < g; k++) { vsum += vi[k]; vss += (double)vi[k] * vi[k]; }
    double vnorm = sqrt(vss);
    for (int64_t p = J->indptr[i]; p < J->indptr[i + 1]; p++) {
      int64_t j = J->indices[p];
      if (vnorm == 0 || j == i) { J->vals[p] = 0; continue; }
      pair_sums s = J->sums(xi, J->X + j * g, vi, g);
      double mean = s.s1 / (double)g;
      double num = s.s3 - mean * vsum;   /* sum (d - mean d) v */
      double dss = s.s2 - s.s1 * mean;   /* sum (d - mean d)^2 */
      double c = num / (sqrt(dss) * vnorm);
      J->vals[p] = (dss > 0 && isfinite(c)) ? (float)c : 0.0f;
    }
  }
}

vl_status vl_velocity_correlations(vl_ctx *ctx, int64_t n, int64_t g, const float *X,
                                   const float *V, int sqrt_transform, const int64_t *indptr,
                                   const int64_t *indices, float *vals, vl_error *err) {
  if (g < 1) return vl_fail(err, VL_ERR_SHAPE, "the velocity graph needs at least one gene");
  for (int64_t p = 0; p < indptr[n]; p++)
    if (indices[p] < 0 || indices[p] >= n)
      return vl_fail(err, VL_ERR_INDEX, "neighbour index %lld out of range [0, %lld)",
                     (long long)indices[p], (long long)n);
  /* Cells are processed in breadth-first order over their candidate lists, so that cells
   * handled one after the other share most of their neighbours' rows in cache. The order
   * changes only when each value is computed, not the value. */
  int64_t *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
  if (order && !vl_bfs_order(n, indptr, indices, order)) { free(order); order = NULL; }
  corr_job J = {n, g, X, V, pick_sums(sqrt_transform), indptr, indices, vals, order};
  vl_status st = vl_parallel_blocks(ctx, n, 32, corr_body, &J);
  free(order);
  if (st != VL_OK) return vl_fail(err, st, "interrupted");
  return VL_OK;
}

typedef struct {
  int64_t n, g, k;
  const float *V;
  const int64_t *nbr;
  double *R;
} conf_job;

CLONES static void dot_norm(const float *restrict a, const float *restrict b, int64_t g,
                            double *ab, double *bb) {
  float x[LANES] = {0}, y[LANES] = {0};
  int64_t m = g - g % LANES;
  for (int64_t k = 0; k < m; k += LANES)
    for (int l = 0; l < LANES; l++) { x[l] += a[k + l] * b[k + l]; y[l] += b[k + l] * b[k + l]; }
  double sx = 0, sy = 0;
  for (int l = 0; l < LANES; l++) { sx += x[l]; sy += y[l]; }
  for (int64_t k = m; k < g; k++) { sx += (double)a[k] * b[k]; sy += (double)b[k] * b[k]; }
  *ab = sx;
  *bb = sy;
}

static void conf_body(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)chunk;
  const conf_job *J = arg;
  for (int64_t i = lo; i < hi; i++) {
    const float *vi = J->V + i * J->g;
    double ab, aa;
    dot_norm(vi, vi, J->g, &ab, &aa);
    double na = sqrt(aa), sum = 0;
    int64_t cnt = 0;
    for (int64_t q = 0; q < J->k; q++) {
      int64_t j = J->nbr[i * J->k + q];
      if (j < 0) continue;
      double bb;
      dot_norm(vi, J->V + j * J->g, J->g, &ab, &bb);
      double c = ab / (na * sqrt(bb));
      if (isfinite(c)) { sum += c; cnt++; }
    }
    J->R[i] = cnt ? sum / (double)cnt : 0.0;
  }
}

vl_status vl_velocity_confidence(vl_ctx *ctx, int64_t n, int64_t g, const float *V,
                                 const int64_t *nbr, int64_t k, double *R, vl_error *err) {
  for (int64_t p = 0; p < n * k; p++)
    if (nbr[p] < -1 || nbr[p] >= n)
      return vl_fail(err, VL_ERR_INDEX, "neighbour index %lld out of range [0, %lld)",
                     (long long)nbr[p], (long long)n);
  conf_job J = {n, g, k, V, nbr, R};
  vl_status st = vl_parallel_blocks(ctx, n, 64, conf_body, &J);
  if (st != VL_OK) return vl_fail(err, st, "interrupted");
  return VL_OK;
}
