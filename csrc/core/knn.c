/* Exact and approximate k-nearest neighbours (see knn.h). */
#include "knn.h"

#include "blas.h"

/* results must not depend on whether the CPU has FMA */
#pragma GCC optimize("fp-contract=off")

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* ---------- shared helpers ---------- */

/* Rows of the 2-d tensor t as contiguous doubles; false (and *out NULL) without memory.
 * *finite tells whether every value is finite. */
static bool rows_f64(const vl_tensor *t, double **out, bool *finite) {
  int64_t n = t->shape[0], d = t->shape[1], s0 = t->stride[0], s1 = t->stride[1];
  size_t cnt = (size_t)(n * d > 0 ? n * d : 1);
  double *o = malloc(sizeof(double) * cnt);
  *out = o;
  if (!o) return false;
  bool ok = true;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < d; j++) {
      double v = t->dtype == VL_F32 ? (double)((const float *)t->data)[i * s0 + j * s1]
                                    : ((const double *)t->data)[i * s0 + j * s1];
      ok &= isfinite(v);
      o[i * d + j] = v;
    }
  *finite = ok;
  return true;
}

static inline double sqdist_f64(const double *a, const double *b, int64_t d) {
  double s = 0;
  for (int64_t j = 0; j < d; j++) {
    double t = a[j] - b[j];
    s += t * t;
  }
  return s;
}

/* Squared distance in f32 with four independent partial sums (the compiler keeps a
 * reduction serial otherwise). */
static inline float sqdist_f32(const float *a, const float *b, int64_t d) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t j = 0;
  for (; j + 4 <= d; j += 4) {
    float t0 = a[j] - b[j], t1 = a[j + 1] - b[j + 1], t2 = a[j + 2] - b[j + 2],
          t3 = a[j + 3] - b[j + 3];
    s0 += t0 * t0;
    s1 += t1 * t1;
    s2 += t2 * t2;
    s3 += t3 * t3;
  }
  for (; j < d; j++) {
    float t = a[j] - b[j];
    s0 += t * t;
  }
  return (s0 + s1) + (s2 + s3);
}

/* Squared f32 distances from xp to the rows ids[0..m) of x, eight partial sums per row.
 * An AVX2 clone where the CPU has it; no FMA contraction (the file is compiled with
 * fp-contract off), so every machine computes the same values. */
__attribute__((target_clones("arch=x86-64-v3", "default")))
static void sqdist_batch(const float *restrict xp, const float *restrict x, int64_t d,
                         const int32_t *restrict ids, int64_t m, float *restrict out) {
  for (int64_t t = 0; t < m; t++) {
    const float *xw = x + (int64_t)ids[t] * d;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= d; j += 8)
      for (int l = 0; l < 8; l++) {
        float u = xp[j + l] - xw[j + l];
        acc[l] += u * u;
      }
    float s = 0;
    for (; j < d; j++) {
      float u = xp[j] - xw[j];
      s += u * u;
    }
    out[t] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + s;
  }
}

/* Max-heap on key (largest at 0) with a parallel index array and optional flags. */
static void heap_sift_down(float *key, int32_t *idx, uint8_t *flag, int64_t K, int64_t pos) {
  float k0 = key[pos];
  int32_t i0 = idx[pos];
  uint8_t f0 = flag ? flag[pos] : 0;
  for (;;) {
    int64_t c = 2 * pos + 1;
    if (c >= K) break;
    if (c + 1 < K && key[c + 1] > key[c]) c++;
    if (!(key[c] > k0)) break;
    key[pos] = key[c];
    idx[pos] = idx[c];
    if (flag) flag[pos] = flag[c];
    pos = c;
  }
  key[pos] = k0;
  idx[pos] = i0;
  if (flag) flag[pos] = f0;
}

/* Replaces the largest entry by (k, i, f) when k is smaller; no duplicate check. */
static inline bool heap_replace(float *key, int32_t *idx, uint8_t *flag, int64_t K, float k,
                                int32_t i, uint8_t f) {
  if (!(k < key[0])) return false;
  key[0] = k;
  idx[0] = i;
  if (flag) flag[0] = f;
  heap_sift_down(key, idx, flag, K, 0);
  return true;
}

/* Same, but refuses an index already held. */
static inline bool heap_push_unique(float *key, int32_t *idx, uint8_t *flag, int64_t K, float k,
                                    int32_t i, uint8_t f) {
  if (!(k < key[0])) return false;
  for (int64_t t = 0; t < K; t++)
    if (idx[t] == i) return false;
  return heap_replace(key, idx, flag, K, k, i, f);
}

typedef struct {
  double key;  /* ranking key: the squared distance, rounded to f32 for f32 data */
  double d2;   /* exact squared distance */
  int32_t idx;
  bool self;
} cand;

static bool cand_less(const cand *a, const cand *b) {
  if (a->key != b->key) return a->key < b->key;
  if (a->self != b->self) return a->self;
  return a->idx < b->idx;
}

static void cand_sort(cand *c, int64_t n) {
  for (int64_t i = 1; i < n; i++) {
    cand x = c[i];
    int64_t j = i;
    while (j > 0 && cand_less(&x, &c[j - 1])) {
      c[j] = c[j - 1];
      j--;
    }
    c[j] = x;
  }
}

/* Ranks the candidates (indices in ids, -1 for none) of query row q exactly and writes the
 * first k to row `row` of the outputs. */
static void rank_and_write(const double *q, const double *xd, int64_t d, const int32_t *ids,
                           int64_t nids, int32_t self, bool f32, cand *scratch, int64_t k,
                           int64_t *oidx, void *odist, int64_t row) {
  int64_t nc = 0;
  for (int64_t t = 0; t < nids; t++) {
    int32_t c = ids[t];
    if (c < 0) continue;
    double d2 = sqdist_f64(q, xd + (int64_t)c * d, d);
    scratch[nc++] = (cand){f32 ? (double)(float)d2 : d2, d2, c, c == self};
  }
  cand_sort(scratch, nc);
  for (int64_t t = 0; t < k; t++) {
    int64_t o = row * k + t;
    if (t < nc) {
      oidx[o] = scratch[t].idx;
      if (f32) ((float *)odist)[o] = sqrtf((float)scratch[t].d2);
      else ((double *)odist)[o] = sqrt(scratch[t].d2);
    } else {
      oidx[o] = -1;
      if (f32) ((float *)odist)[o] = INFINITY;
      else ((double *)odist)[o] = INFINITY;
    }
  }
}

static vl_status check_out(const vl_tensor *t, vl_dtype dt, int64_t m, int64_t k,
                           const char *what, vl_error *err) {
  if (t->dtype != dt || t->ndim != 2 || t->shape[0] != m || t->shape[1] != k ||
      !vl_is_contiguous(t))
    return vl_fail(err, VL_ERR_SHAPE, "knn: %s must be a contiguous [%lld, %lld] %s tensor",
                   what, (long long)m, (long long)k, vl_dtype_name(dt));
  return VL_OK;
}

/* ---------- exact search ---------- */

enum { QB = 256, RB = 512 };

/* Offers the references r0 + [0, rn) of one query (screening distances a + xn - 2 s) to its
 * candidate heap. With SSE2, eight at a time are compared with the heap's worst first: once
 * the heap is warm almost every group is rejected by one mask test. */
static void screen_row(float *kq, int32_t *iq, int64_t K, const float *s, const float *xn,
                       float a, int64_t rn, int64_t r0) {
  float thr = kq[0];
  int64_t r = 0;
#if defined(__SSE2__)
  const __m128 va = _mm_set1_ps(a), two = _mm_set1_ps(2.0f);
  __m128 vt = _mm_set1_ps(thr);
  for (; r + 8 <= rn; r += 8) {
    __m128 w0 = _mm_sub_ps(_mm_add_ps(va, _mm_loadu_ps(xn + r)), _mm_mul_ps(two, _mm_loadu_ps(s + r)));
    __m128 w1 = _mm_sub_ps(_mm_add_ps(va, _mm_loadu_ps(xn + r + 4)),
                           _mm_mul_ps(two, _mm_loadu_ps(s + r + 4)));
    int m = _mm_movemask_ps(_mm_cmplt_ps(w0, vt)) | (_mm_movemask_ps(_mm_cmplt_ps(w1, vt)) << 4);
    if (!m) continue;
    float w[8];
    _mm_storeu_ps(w, w0);
    _mm_storeu_ps(w + 4, w1);
    for (int l = 0; l < 8; l++)
      if (w[l] < thr) {
        heap_replace(kq, iq, NULL, K, w[l], (int32_t)(r0 + r + l), 0);
        thr = kq[0];
      }
    vt = _mm_set1_ps(thr);
  }
#endif
  for (; r < rn; r++) {
    float v = a + xn[r] - 2.0f * s[r];
    if (v < thr) {
      heap_replace(kq, iq, NULL, K, v, (int32_t)(r0 + r), 0);
      thr = kq[0];
    }
  }
}

typedef struct {
  int64_t n, m, d, k, K;
  bool self, f32;
  const double *xd, *qd;
  const float *xs, *qs, *xn, *qn;
  int64_t *oidx;
  void *odist;
  atomic_int failed;
} exact_job;

static inline bool before(float a, int32_t ia, float b, int32_t ib) {
  return a < b || (a == b && ia < ib);
}

/* Reorders (w, id)[0..n) so that its first K entries are the K smallest by (w, id)
 * (quickselect, Hoare partition around a median of three). */
static void select_smallest(float *w, int32_t *id, int64_t n, int64_t K) {
  int64_t lo = 0, hi = n - 1;
  const int64_t t = K - 1;
  while (hi > lo) {
    int64_t mid = lo + (hi - lo) / 2;
#define SWAP(a, b)                                                                            \
  do {                                                                                        \
    float tw = w[a];                                                                          \
    int32_t ti = id[a];                                                                       \
    w[a] = w[b];                                                                              \
    id[a] = id[b];                                                                            \
    w[b] = tw;                                                                                \
    id[b] = ti;                                                                               \
  } while (0)
    if (before(w[mid], id[mid], w[lo], id[lo])) SWAP(mid, lo);
    if (before(w[hi], id[hi], w[lo], id[lo])) SWAP(hi, lo);
    if (before(w[hi], id[hi], w[mid], id[mid])) SWAP(hi, mid);
    const float pw = w[mid];
    const int32_t pi = id[mid];
    int64_t i = lo, k = hi;
    while (i <= k) {
      while (before(w[i], id[i], pw, pi)) i++;
      while (before(pw, pi, w[k], id[k])) k--;
      if (i <= k) {
        SWAP(i, k);
        i++;
        k--;
      }
    }
#undef SWAP
    if (t <= k) hi = k;
    else if (t >= i) lo = i;
    else break;
  }
}

/* Fills a query's candidate heap from its first block of references at once: the K smallest
 * screening distances (ties to the lower index) by selection, then heap order. Much cheaper
 * than K inserts into a cold heap, which dominate for small data. */
static void seed_row(float *kq, int32_t *iq, int64_t K, const float *s, const float *xn, float a,
                     int64_t rn, float *w, int32_t *id) {
  for (int64_t r = 0; r < rn; r++) w[r] = a + xn[r] - 2.0f * s[r];
  int64_t m = rn;
  if (rn > 4 * K) {
    /* A threshold from an even sample of 64 (about 2 K of the rn values lie below it),
     * the values up to it gathered without branches, and the selection among those only.
     * Fewer than K gathered (an unlucky sample): the selection over all values. */
    enum { NS = 64 };
    float sw[NS];
    int32_t sid[NS];
    for (int64_t t = 0; t < NS; t++) {
      sw[t] = w[t * rn / NS];
      sid[t] = (int32_t)t;
    }
    int64_t pos = (2 * K * NS) / rn + 2;
    if (pos > NS) pos = NS;
    select_smallest(sw, sid, NS, pos);
    float thr = sw[0];
    for (int64_t t = 1; t < pos; t++)
      if (sw[t] > thr) thr = sw[t];
    int64_t c = 0;
    for (int64_t r = 0; r < rn; r++) {
      id[c] = (int32_t)r;
      c += w[r] <= thr;
    }
    if (c >= K) {
      for (int64_t t = 0; t < c; t++) w[t] = w[id[t]];
      m = c;
    }
  }
  if (m == rn)
    for (int64_t r = 0; r < rn; r++) id[r] = (int32_t)r;
  if (m > K) {
    select_smallest(w, id, m, K);
    m = K;
  }
  for (int64_t t = 0; t < K; t++) {
    kq[t] = t < m ? w[t] : INFINITY;
    iq[t] = t < m ? id[t] : -1;
  }
  for (int64_t p = K / 2 - 1; p >= 0; p--) heap_sift_down(kq, iq, NULL, K, p);
}

static void exact_block(int64_t lo, int64_t hi, int chunk, void *arg) {
  exact_job *j = arg;
  const int64_t n = j->n, d = j->d, K = j->K, qn = hi - lo;
  float *S = malloc(sizeof(float) * (size_t)(qn * RB + RB));
  float *sw = S + qn * RB; /* one row of screening distances for seed_row */
  int32_t *sid = malloc(sizeof(int32_t) * (size_t)RB);
  float *key = malloc(sizeof(float) * (size_t)(qn * K));
  int32_t *idx = malloc(sizeof(int32_t) * (size_t)(qn * K));
  cand *sc = malloc(sizeof(cand) * (size_t)K);
  if (!S || !sid || !key || !idx || !sc) {
    atomic_store(&j->failed, 1);
    goto done;
  }
  for (int64_t t = 0; t < qn * K; t++) {
    key[t] = INFINITY;
    idx[t] = -1;
  }
  for (int64_t r0 = 0; r0 < n; r0 += RB) {
    int64_t rn = n - r0 < RB ? n - r0 : RB;
    if (d > 0)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)qn, (blasint)rn, (blasint)d,
                  1.0f, j->qs + lo * d, (blasint)d, j->xs + r0 * d, (blasint)d, 0.0f, S,
                  (blasint)rn);
    else
      memset(S, 0, sizeof(float) * (size_t)(qn * rn));
    const float *xn = j->xn + r0;
    for (int64_t q = 0; q < qn; q++) {
      if (r0 == 0) seed_row(key + q * K, idx + q * K, K, S + q * rn, xn, j->qn[lo + q], rn, sw, sid);
      else screen_row(key + q * K, idx + q * K, K, S + q * rn, xn, j->qn[lo + q], rn, r0);
    }
  }
  for (int64_t q = 0; q < qn; q++) {
    int32_t *iq = idx + q * K;
    int32_t self = j->self ? (int32_t)(lo + q) : -1;
    if (self >= 0) {
      bool found = false;
      for (int64_t t = 0; t < K; t++) found |= iq[t] == self;
      if (!found) iq[0] = self; /* the root holds the worst candidate */
    }
    rank_and_write(j->qd + (lo + q) * d, j->xd, d, iq, K, self, j->f32, sc, j->k, j->oidx,
                   j->odist, lo + q);
  }
done:
  free(S);
  free(sid);
  free(key);
  free(idx);
  free(sc);
}

/* Centred f32 copy of rows (n x d doubles) and the squared norms of the copy. */
static void centred_f32(const double *x, int64_t n, int64_t d, const double *mean, float *out,
                        float *norms) {
  for (int64_t i = 0; i < n; i++) {
    float s = 0;
    for (int64_t c = 0; c < d; c++) {
      float v = (float)(x[i * d + c] - mean[c]);
      out[i * d + c] = v;
      s += v * v;
    }
    norms[i] = s;
  }
}

vl_status vl_knn_exact(vl_ctx *ctx, const vl_tensor *ref, const vl_tensor *query, int64_t k,
                       const vl_tensor *out_idx, const vl_tensor *out_dist, vl_error *err) {
  if (ref->ndim != 2 || (ref->dtype != VL_F32 && ref->dtype != VL_F64))
    return vl_fail(err, VL_ERR_SHAPE, "knn: data must be a 2-d f32 or f64 tensor");
  if (query && (query->ndim != 2 || query->dtype != ref->dtype || query->shape[1] != ref->shape[1]))
    return vl_fail(err, VL_ERR_SHAPE, "knn: queries must be a 2-d tensor with the data's dtype "
                   "and number of columns");
  const int64_t n = ref->shape[0], d = ref->shape[1], m = query ? query->shape[0] : n;
  if (n > INT32_MAX) return vl_fail(err, VL_ERR_UNSUPPORTED, "knn: more than 2^31 - 1 rows");
  if (k < 1 || k > n)
    return vl_fail(err, VL_ERR_VALUE, "knn: k = %lld must be in [1, %lld] (the number of rows)",
                   (long long)k, (long long)n);
  vl_status st;
  if ((st = check_out(out_idx, VL_I64, m, k, "indices", err))) return st;
  if ((st = check_out(out_dist, ref->dtype, m, k, "distances", err))) return st;
  if (m == 0) return VL_OK;

  exact_job j = {.n = n, .m = m, .d = d, .k = k, .self = query == NULL,
                 .f32 = ref->dtype == VL_F32, .oidx = (int64_t *)out_idx->data,
                 .odist = out_dist->data};
  /* f32 screening errors are ~1e-7 of the squared norms: a few spare candidates absorb them */
  int64_t margin = 8 + k / 8;
  j.K = k + margin < n ? k + margin : n;
  double *xd = NULL, *qd = NULL, *mean = NULL;
  float *xs = NULL, *qs = NULL, *xn = NULL, *qnorm = NULL;
  bool fin = true, fin2 = true;
  st = VL_ERR_NOMEM;
  if (!rows_f64(ref, &xd, &fin)) goto fail;
  if (query && !rows_f64(query, &qd, &fin2)) goto fail;
  if (!fin || !fin2) {
    st = vl_fail(err, VL_ERR_VALUE, "knn: %s contain NaN or infinite values",
                 fin ? "the queries" : "the data");
    goto out;
  }
  mean = calloc((size_t)(d > 0 ? d : 1), sizeof(double));
  xs = malloc(sizeof(float) * (size_t)(n * d > 0 ? n * d : 1));
  xn = malloc(sizeof(float) * (size_t)n);
  if (!mean || !xs || !xn) goto fail;
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < d; c++) mean[c] += xd[i * d + c];
  for (int64_t c = 0; c < d; c++) mean[c] /= (double)n;
  centred_f32(xd, n, d, mean, xs, xn);
  if (query) {
    qs = malloc(sizeof(float) * (size_t)(m * d > 0 ? m * d : 1));
    qnorm = malloc(sizeof(float) * (size_t)m);
    if (!qs || !qnorm) goto fail;
    centred_f32(qd, m, d, mean, qs, qnorm);
  }
  j.xd = xd;
  j.qd = query ? qd : xd;
  j.xs = xs;
  j.qs = query ? qs : xs;
  j.xn = xn;
  j.qn = query ? qnorm : xn;
  atomic_init(&j.failed, 0);
  int saved = vl_blas_single_begin();
  /* query blocks of QB, smaller for small data so that both threads get work (the blocks
   * change only how the queries are grouped, never a result) */
  int64_t qb = (m + 7) / 8;
  qb = qb < 32 ? 32 : qb > QB ? QB : qb;
  vl_parallel_blocks(ctx, m, qb, exact_block, &j);
  vl_blas_single_end(saved);
  if (atomic_load(&j.failed)) goto fail;
  st = VL_OK;
  goto out;
fail:
  st = vl_fail(err, VL_ERR_NOMEM, "knn: out of memory (%lld x %lld data)", (long long)n,
               (long long)d);
out:
  free(xd);
  free(qd);
  free(mean);
  free(xs);
  free(qs);
  free(xn);
  free(qnorm);
  return st;
}

/* ---------- NN-descent ---------- */

static inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static inline uint64_t next64(uint64_t *s) { return mix64(*s += 0x9E3779B97F4A7C15ull); }

void vl_nndescent_defaults(vl_nndescent_opts *o, int64_t n, int64_t k) {
  o->seed = 0;
  o->n_trees = 8;
  o->leaf_size = (int)(k > 15 ? 2 * k : 30);
  o->max_candidates = (int)(k < 60 ? k : 60);
  int it = 0;
  while (((int64_t)1 << it) < n) it++;
  o->max_iters = it > 5 ? it : 5;
  o->delta = 0.001;
  o->iters_done = 0;
}

typedef struct {
  int64_t n, d, K;      /* K = neighbours kept besides self */
  const float *x;       /* n x d f32 rows */
  float *key;           /* n x K squared f32 distances (max-heaps) */
  int32_t *idx;
  uint8_t *flag;        /* 1: new since the point's last join */
  /* trees */
  int n_trees, leaf_size;
  uint64_t seed;
  int32_t **perm;       /* per tree: permutation of 0..n-1, leaves contiguous */
  int64_t **leaf;       /* per tree: leaf boundaries (nleaf + 1) */
  int64_t *nleaf;
  int tree;             /* the tree whose leaves are joined */
  /* candidates */
  int64_t maxc;
  int32_t *newc, *oldc; /* n x maxc, -1 padded */
  float *newp, *oldp;   /* their priorities (max-heaps) */
  int64_t *updates;     /* per block */
  atomic_int failed;
} nnd_job;

/* One random-projection tree: recursive hyperplane splits between two random points. */
static void build_tree(int64_t t0, int64_t t1, int chunk, void *arg) {
  nnd_job *j = arg;
  const int64_t n = j->n, d = j->d;
  for (int64_t t = t0; t < t1; t++) {
    int32_t *perm = j->perm[t];
    int64_t *leaf = j->leaf[t];
    int64_t nl = 0;
    uint64_t rng = j->seed ^ mix64(0x5EEDull + (uint64_t)t);
    int64_t *stack = malloc(sizeof(int64_t) * 2 * (size_t)(n + 1));
    float *normal = malloc(sizeof(float) * (size_t)(d > 0 ? d : 1));
    uint8_t *side = malloc((size_t)n);
    int32_t *tmp = malloc(sizeof(int32_t) * (size_t)n);
    if (!stack || !normal || !side || !tmp) {
      atomic_store(&j->failed, 1);
      free(stack);
      free(normal);
      free(side);
      free(tmp);
      return;
    }
    for (int64_t i = 0; i < n; i++) perm[i] = (int32_t)i;
    int64_t sp = 0;
    stack[sp++] = 0;
    stack[sp++] = n;
    /* leaves are recorded by their start; segments are processed left first so that the
     * starts come out increasing */
    while (sp > 0) {
      int64_t hi = stack[--sp], lo = stack[--sp], size = hi - lo;
      if (size <= j->leaf_size) {
        leaf[nl++] = lo;
        continue;
      }
      int64_t ia = lo + (int64_t)(next64(&rng) % (uint64_t)size);
      int64_t ib = lo + (int64_t)(next64(&rng) % (uint64_t)(size - 1));
      if (ib >= ia) ib++;
      const float *xa = j->x + (int64_t)perm[ia] * d, *xb = j->x + (int64_t)perm[ib] * d;
      double off = 0;
      for (int64_t c = 0; c < d; c++) {
        normal[c] = xa[c] - xb[c];
        off += (double)normal[c] * 0.5 * ((double)xa[c] + (double)xb[c]);
      }
      int64_t nleft = 0;
      uint64_t bits = 0;
      int nbits = 0;
      for (int64_t p = lo; p < hi; p++) {
        const float *xp = j->x + (int64_t)perm[p] * d;
        double mgn = -off;
        for (int64_t c = 0; c < d; c++) mgn += (double)normal[c] * xp[c];
        bool left;
        if (mgn == 0) {
          if (nbits == 0) {
            bits = next64(&rng);
            nbits = 64;
          }
          left = bits & 1;
          bits >>= 1;
          nbits--;
        } else {
          left = mgn < 0;
        }
        side[p - lo] = left;
        nleft += left;
      }
      int64_t mid;
      if (nleft == 0 || nleft == size) {
        mid = lo + size / 2; /* degenerate split (duplicates): halve in the current order */
      } else {
        int64_t a = 0, b = nleft;
        for (int64_t p = lo; p < hi; p++) {
          if (side[p - lo]) tmp[a++] = perm[p];
          else tmp[b++] = perm[p];
        }
        memcpy(perm + lo, tmp, sizeof(int32_t) * (size_t)size);
        mid = lo + nleft;
      }
      stack[sp++] = mid; /* right half, processed after the left one */
      stack[sp++] = hi;
      stack[sp++] = lo;
      stack[sp++] = mid;
    }
    leaf[nl] = n;
    j->nleaf[t] = nl;
    free(stack);
    free(normal);
    free(side);
    free(tmp);
  }
}

/* All pairs within each leaf of tree j->tree enter each other's lists (a point lies in one
 * leaf per tree, so leaves never share a list). */
static void join_leaves(int64_t l0, int64_t l1, int chunk, void *arg) {
  nnd_job *j = arg;
  const int32_t *perm = j->perm[j->tree];
  const int64_t *leaf = j->leaf[j->tree];
  const int64_t d = j->d, K = j->K;
  for (int64_t l = l0; l < l1; l++)
    for (int64_t a = leaf[l]; a < leaf[l + 1]; a++) {
      int32_t pa = perm[a];
      for (int64_t b = a + 1; b < leaf[l + 1]; b++) {
        int32_t pb = perm[b];
        float dd = sqdist_f32(j->x + (int64_t)pa * d, j->x + (int64_t)pb * d, d);
        heap_push_unique(j->key + pa * K, j->idx + pa * K, j->flag + pa * K, K, dd, pb, 1);
        heap_push_unique(j->key + pb * K, j->idx + pb * K, j->flag + pb * K, K, dd, pa, 1);
      }
    }
}

/* Lists that are not full after the forest get random points. */
static void fill_random(int64_t p0, int64_t p1, int chunk, void *arg) {
  nnd_job *j = arg;
  const int64_t n = j->n, d = j->d, K = j->K;
  for (int64_t p = p0; p < p1; p++) {
    float *kp = j->key + p * K;
    int32_t *ip = j->idx + p * K;
    uint8_t *fp = j->flag + p * K;
    uint64_t rng = j->seed ^ mix64(0xF111ull * 31 + (uint64_t)p);
    for (int tries = 0; tries < 8 * K && kp[0] == INFINITY; tries++) {
      int32_t c = (int32_t)(next64(&rng) % (uint64_t)n);
      if (c == p) continue;
      float dd = sqdist_f32(j->x + p * d, j->x + (int64_t)c * d, d);
      heap_push_unique(kp, ip, fp, K, dd, c, 1);
    }
  }
}

/* Bounded candidate set keyed by a pseudo-random priority (the smallest maxc are kept, so
 * the result does not depend on the order of insertion). */
static inline void cand_push(float *pr, int32_t *id, int64_t maxc, float p, int32_t v) {
  if (!(p < pr[0])) return;
  for (int64_t t = 0; t < maxc; t++)
    if (id[t] == v) return;
  heap_replace(pr, id, NULL, maxc, p, v, 0);
}

static inline float priority(uint64_t seed, int iter, int64_t a, int64_t b) {
  uint64_t h = mix64(seed ^ mix64(((uint64_t)iter << 48) ^ ((uint64_t)a * 0x100000001B3ull) ^
                                  ((uint64_t)b << 20) ^ (uint64_t)b));
  return (float)(h >> 40) * (1.0f / 16777216.0f);
}

/* Candidate lists of one iteration: each point's new (old) list keeps the maxc entries of
 * smallest priority among its new (old) neighbours and the points that list it as a new (old)
 * neighbour. Forward and reverse parts are filled per point in parallel (each task writes only
 * its own lists); the result does not depend on the order, priorities decide. */
typedef struct {
  nnd_job *j;
  int iter;
  const int64_t *rptr;  /* reverse adjacency: points listing u are rsrc[rptr[u] .. rptr[u+1]) */
  const int32_t *rsrc;
  const uint8_t *rflag;
} cand_job;

static void cand_forward_reverse(int64_t lo, int64_t hi, int chunk, void *arg) {
  const cand_job *c = arg;
  nnd_job *j = c->j;
  const int64_t K = j->K, maxc = j->maxc;
  for (int64_t p = lo; p < hi; p++) {
    int32_t *nc = j->newc + p * maxc, *oc = j->oldc + p * maxc;
    float *np = j->newp + p * maxc, *op = j->oldp + p * maxc;
    for (int64_t t = 0; t < maxc; t++) {
      nc[t] = oc[t] = -1;
      np[t] = op[t] = INFINITY;
    }
    for (int64_t t = 0; t < K; t++) {
      int32_t u = j->idx[p * K + t];
      if (u < 0) continue;
      float pr = priority(j->seed, c->iter, p < u ? p : u, p < u ? u : p);
      if (j->flag[p * K + t]) cand_push(np, nc, maxc, pr, u);
      else cand_push(op, oc, maxc, pr, u);
    }
    for (int64_t r = c->rptr[p]; r < c->rptr[p + 1]; r++) {
      int32_t q = c->rsrc[r];
      float pr = priority(j->seed, c->iter, p < q ? p : q, p < q ? q : p);
      if (c->rflag[r]) cand_push(np, nc, maxc, pr, q);
      else cand_push(op, oc, maxc, pr, q);
    }
  }
}

/* entries that took part as new candidates are old from now on */
static void cand_mark_old(int64_t lo, int64_t hi, int chunk, void *arg) {
  const cand_job *c = arg;
  nnd_job *j = c->j;
  const int64_t K = j->K, maxc = j->maxc;
  for (int64_t p = lo; p < hi; p++)
    for (int64_t t = 0; t < K; t++) {
      if (!j->flag[p * K + t]) continue;
      int32_t u = j->idx[p * K + t];
      for (int64_t q = 0; q < maxc; q++)
        if (j->newc[p * maxc + q] == u) {
          j->flag[p * K + t] = 0;
          break;
        }
    }
}

static bool build_candidates(vl_ctx *ctx, nnd_job *j, int iter) {
  const int64_t n = j->n, K = j->K;
  int64_t *rptr = calloc((size_t)(n + 2), sizeof(int64_t));
  int32_t *rsrc = malloc(sizeof(int32_t) * (size_t)(n * K));
  uint8_t *rflag = malloc((size_t)(n * K));
  if (!rptr || !rsrc || !rflag) {
    free(rptr);
    free(rsrc);
    free(rflag);
    return false;
  }
  for (int64_t t = 0; t < n * K; t++)
    if (j->idx[t] >= 0) rptr[j->idx[t] + 2]++;
  for (int64_t u = 0; u < n; u++) rptr[u + 2] += rptr[u + 1];
  for (int64_t p = 0; p < n; p++)
    for (int64_t t = 0; t < K; t++) {
      int32_t u = j->idx[p * K + t];
      if (u < 0) continue;
      int64_t at = rptr[u + 1]++;
      rsrc[at] = (int32_t)p;
      rflag[at] = j->flag[p * K + t];
    }
  cand_job c = {j, iter, rptr, rsrc, rflag};
  vl_parallel_for(ctx, n, 1024, cand_forward_reverse, &c);
  vl_parallel_for(ctx, n, 1024, cand_mark_old, &c);
  free(rptr);
  free(rsrc);
  free(rflag);
  return true;
}

enum { JOIN_BLOCK = 512 };

/* Pull-style local join: point p looks at the candidates of its candidates (pairs with at
 * least one new member) and updates only its own list. */
static void local_join(int64_t p0, int64_t p1, int chunk, void *arg) {
  nnd_job *j = arg;
  const int64_t n = j->n, d = j->d, K = j->K, maxc = j->maxc;
  int32_t *seen = calloc((size_t)n, sizeof(int32_t));
  int32_t *cand = malloc(sizeof(int32_t) * (size_t)(3 * maxc * maxc + 1));
  float *cd = malloc(sizeof(float) * (size_t)(3 * maxc * maxc + 1));
  if (!seen || !cand || !cd) {
    atomic_store(&j->failed, 1);
    free(seen);
    free(cand);
    free(cd);
    return;
  }
  int64_t upd = 0;
  for (int64_t p = p0; p < p1; p++) {
    const int32_t stamp = (int32_t)(p + 1);
    float *kp = j->key + p * K;
    int32_t *ip = j->idx + p * K;
    uint8_t *fp = j->flag + p * K;
    seen[p] = stamp;
    for (int64_t t = 0; t < K; t++)
      if (ip[t] >= 0) seen[ip[t]] = stamp;
    /* the candidates' candidates, each once, in a fixed order */
    int64_t m = 0;
    for (int pass = 0; pass < 2; pass++) {
      const int32_t *cp = (pass == 0 ? j->newc : j->oldc) + p * maxc;
      for (int64_t a = 0; a < maxc; a++) {
        int32_t u = cp[a];
        if (u < 0) continue;
        for (int list = 0; list < (pass == 0 ? 2 : 1); list++) {
          const int32_t *cu = (list == 0 ? j->newc : j->oldc) + (int64_t)u * maxc;
          for (int64_t b = 0; b < maxc; b++) {
            int32_t w = cu[b];
            if (w < 0 || seen[w] == stamp) continue;
            seen[w] = stamp;
            cand[m++] = w;
          }
        }
      }
    }
    sqdist_batch(j->x + p * d, j->x, d, cand, m, cd);
    for (int64_t t = 0; t < m; t++) upd += heap_replace(kp, ip, fp, K, cd[t], cand[t], 1);
  }
  j->updates[chunk] += upd;
  free(seen);
  free(cand);
  free(cd);
}

typedef struct {
  nnd_job *j;
  const double *xd;
  const int32_t *label; /* internal label -> row of the data */
  bool f32;
  int64_t k;
  int64_t *oidx;
  void *odist;
  atomic_int failed;
} nnd_out_job;

static void nnd_write(int64_t p0, int64_t p1, int chunk, void *arg) {
  nnd_out_job *o = arg;
  const nnd_job *j = o->j;
  const int64_t K = j->K, d = j->d;
  cand *sc = malloc(sizeof(cand) * (size_t)(K + 1));
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)(K + 1));
  if (!sc || !ids) {
    atomic_store(&o->failed, 1);
    free(sc);
    free(ids);
    return;
  }
  for (int64_t p = p0; p < p1; p++) {
    int32_t row = o->label[p];
    ids[0] = row;
    for (int64_t t = 0; t < K; t++) {
      int32_t q = j->idx[p * K + t];
      ids[t + 1] = q < 0 ? -1 : o->label[q];
    }
    rank_and_write(o->xd + (int64_t)row * d, o->xd, d, ids, K + 1, row, o->f32, sc, o->k, o->oidx,
                   o->odist, row);
  }
  free(sc);
  free(ids);
}

vl_status vl_knn_nndescent(vl_ctx *ctx, const vl_tensor *x, int64_t k, vl_nndescent_opts *opts,
                           const vl_tensor *out_idx, const vl_tensor *out_dist, vl_error *err) {
  if (x->ndim != 2 || (x->dtype != VL_F32 && x->dtype != VL_F64))
    return vl_fail(err, VL_ERR_SHAPE, "knn: data must be a 2-d f32 or f64 tensor");
  const int64_t n = x->shape[0], d = x->shape[1];
  if (n > INT32_MAX) return vl_fail(err, VL_ERR_UNSUPPORTED, "knn: more than 2^31 - 1 rows");
  if (k < 1 || k > n)
    return vl_fail(err, VL_ERR_VALUE, "knn: k = %lld must be in [1, %lld] (the number of rows)",
                   (long long)k, (long long)n);
  if (opts->n_trees < 1 || opts->leaf_size < 2 || opts->max_candidates < 1 ||
      opts->max_iters < 0 || !(opts->delta >= 0))
    return vl_fail(err, VL_ERR_VALUE, "knn: bad NN-descent options (n_trees >= 1, leaf_size >= 2, "
                   "max_candidates >= 1, max_iters >= 0, delta >= 0)");
  opts->iters_done = 0;
  /* too few points for a graph search to pay off */
  if (n <= 4 * k + 8) return vl_knn_exact(ctx, x, NULL, k, out_idx, out_dist, err);
  vl_status st;
  if ((st = check_out(out_idx, VL_I64, n, k, "indices", err))) return st;
  if ((st = check_out(out_dist, x->dtype, n, k, "distances", err))) return st;

  nnd_job j = {.n = n, .d = d, .K = k - 1 > 0 ? k - 1 : 1, .n_trees = opts->n_trees,
               .leaf_size = opts->leaf_size, .seed = mix64(opts->seed + 0x1234567ull),
               .maxc = opts->max_candidates};
  atomic_init(&j.failed, 0);
  const int64_t K = j.K, maxc = j.maxc;
  double *xd = NULL;
  float *xf = NULL, *xr = NULL;
  int32_t *label = NULL, *inv = NULL;
  bool fin = true;
  int64_t nblocks = (n + JOIN_BLOCK - 1) / JOIN_BLOCK;
  st = VL_OK;
  if (!rows_f64(x, &xd, &fin)) goto nomem;
  if (!fin) {
    st = vl_fail(err, VL_ERR_VALUE, "knn: the data contain NaN or infinite values");
    goto out;
  }
  xf = malloc(sizeof(float) * (size_t)(n * d > 0 ? n * d : 1));
  j.key = malloc(sizeof(float) * (size_t)(n * K));
  j.idx = malloc(sizeof(int32_t) * (size_t)(n * K));
  j.flag = malloc((size_t)(n * K));
  j.perm = calloc((size_t)j.n_trees, sizeof(int32_t *));
  j.leaf = calloc((size_t)j.n_trees, sizeof(int64_t *));
  j.nleaf = calloc((size_t)j.n_trees, sizeof(int64_t));
  j.newc = malloc(sizeof(int32_t) * (size_t)(n * maxc));
  j.oldc = malloc(sizeof(int32_t) * (size_t)(n * maxc));
  j.newp = malloc(sizeof(float) * (size_t)(n * maxc));
  j.oldp = malloc(sizeof(float) * (size_t)(n * maxc));
  j.updates = calloc((size_t)nblocks, sizeof(int64_t));
  if (!xf || !j.key || !j.idx || !j.flag || !j.perm || !j.leaf || !j.nleaf || !j.newc ||
      !j.oldc || !j.newp || !j.oldp || !j.updates)
    goto nomem;
  for (int64_t t = 0; t < n * d; t++) xf[t] = (float)xd[t];
  j.x = xf;
  for (int64_t t = 0; t < n * K; t++) {
    j.key[t] = INFINITY;
    j.idx[t] = -1;
    j.flag[t] = 0;
  }
  for (int t = 0; t < j.n_trees; t++) {
    j.perm[t] = malloc(sizeof(int32_t) * (size_t)n);
    j.leaf[t] = malloc(sizeof(int64_t) * (size_t)(n + 1));
    if (!j.perm[t] || !j.leaf[t]) goto nomem;
  }
  vl_parallel_for(ctx, j.n_trees, 1, build_tree, &j);
  if (atomic_load(&j.failed)) goto nomem;
  /* points are relabelled in the leaf order of the first tree, so that near points sit near
   * in memory (the joins touch far fewer cache lines); labels map back on output */
  label = malloc(sizeof(int32_t) * (size_t)n);
  inv = malloc(sizeof(int32_t) * (size_t)n);
  xr = malloc(sizeof(float) * (size_t)(n * d > 0 ? n * d : 1));
  if (!label || !inv || !xr) goto nomem;
  memcpy(label, j.perm[0], sizeof(int32_t) * (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    inv[label[i]] = (int32_t)i;
    memcpy(xr + i * d, xf + (int64_t)label[i] * d, sizeof(float) * (size_t)d);
  }
  j.x = xr;
  for (int t = 0; t < j.n_trees; t++)
    for (int64_t a = 0; a < n; a++) j.perm[t][a] = inv[j.perm[t][a]];
  for (int t = 0; t < j.n_trees; t++) {
    j.tree = t;
    vl_parallel_for(ctx, j.nleaf[t], 16, join_leaves, &j);
  }
  vl_parallel_for(ctx, n, 1024, fill_random, &j);

  int iter = 0;
  for (; iter < opts->max_iters; iter++) {
    if (!build_candidates(ctx, &j, iter)) goto nomem;
    memset(j.updates, 0, sizeof(int64_t) * (size_t)nblocks);
    vl_parallel_blocks(ctx, n, JOIN_BLOCK, local_join, &j);
    if (atomic_load(&j.failed)) goto nomem;
    int64_t total = 0;
    for (int64_t b = 0; b < nblocks; b++) total += j.updates[b];
    if ((double)total <= opts->delta * (double)n * (double)K) {
      iter++;
      break;
    }
  }
  opts->iters_done = iter;

  nnd_out_job o = {.j = &j, .xd = xd, .label = label, .f32 = x->dtype == VL_F32, .k = k,
                   .oidx = (int64_t *)out_idx->data, .odist = out_dist->data};
  atomic_init(&o.failed, 0);
  vl_parallel_for(ctx, n, 256, nnd_write, &o);
  if (atomic_load(&o.failed)) goto nomem;
  goto out;
nomem:
  st = vl_fail(err, VL_ERR_NOMEM, "knn: out of memory for NN-descent on %lld x %lld data",
               (long long)n, (long long)d);
out:
  if (j.perm)
    for (int t = 0; t < j.n_trees; t++) free(j.perm[t]);
  if (j.leaf)
    for (int t = 0; t < j.n_trees; t++) free(j.leaf[t]);
  free(j.perm);
  free(j.leaf);
  free(j.nleaf);
  free(j.key);
  free(j.idx);
  free(j.flag);
  free(j.newc);
  free(j.oldc);
  free(j.newp);
  free(j.oldp);
  free(j.updates);
  free(xf);
  free(xr);
  free(label);
  free(inv);
  free(xd);
  return st;
}

/* ---------- kNN lists as a sparse matrix ---------- */

typedef struct {
  int64_t col;
  double v;
} kv;

/* By column, stable (insertion sort: a row holds k entries). */
static void kv_sort(kv *r, int64_t n) {
  for (int64_t i = 1; i < n; i++) {
    kv x = r[i];
    int64_t j = i;
    while (j > 0 && r[j - 1].col > x.col) {
      r[j] = r[j - 1];
      j--;
    }
    r[j] = x;
  }
}

vl_status vl_knn_graph_csr(int64_t n, int64_t ncols, int64_t k, const int64_t *idx,
                           const void *dist, vl_dtype dt, int64_t *indptr, int64_t *indices,
                           void *values, vl_error *err) {
  kv *row = malloc(sizeof(kv) * (size_t)(k > 0 ? k : 1));
  if (!row) return vl_fail(err, VL_ERR_NOMEM, "knn graph: out of memory");
  int64_t nnz = 0;
  indptr[0] = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t c = 0;
    for (int64_t t = 0; t < k; t++) {
      int64_t j = idx[i * k + t];
      double v = dt == VL_F32 ? (double)((const float *)dist)[i * k + t]
                              : ((const double *)dist)[i * k + t];
      if (j < 0 || v == 0) continue; /* self and exact duplicates, as scipy's eliminate_zeros */
      if (j >= ncols) {
        free(row);
        return vl_fail(err, VL_ERR_INDEX, "knn graph: index %lld (row %lld) out of range",
                       (long long)j + 1, (long long)i + 1);
      }
      row[c++] = (kv){j, v};
    }
    if (indices) {
      kv_sort(row, c);
      for (int64_t t = 0; t < c; t++) {
        indices[nnz + t] = row[t].col;
        if (dt == VL_F32) ((float *)values)[nnz + t] = (float)row[t].v;
        else ((double *)values)[nnz + t] = row[t].v;
      }
    }
    nnz += c;
    indptr[i + 1] = nnz;
  }
  free(row);
  return VL_OK;
}
