/* UMAP layout SGD, one deterministic parallel pass per epoch (see umap_layout.h). */
#include "umap_layout.h"
#include "clones.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* a * b + c stays two roundings everywhere: no FMA on CPUs that have it (see run_lanes) */
#pragma GCC optimize("fp-contract=off")

vl_status vl_umap_prune(const vl_csr *a, int64_t n_epochs, int64_t *indptr, int64_t *indices,
                        float *values, vl_error *err) {
  if (n_epochs < 1)
    return vl_fail(err, VL_ERR_VALUE, "n_epochs = %lld must be positive", (long long)n_epochs);
  double mx = -INFINITY;
  for (int64_t p = 0; p < a->nnz; p++) {
    double v = a->dtype == VL_F32 ? (double)((const float *)a->values)[p]
                                  : ((const double *)a->values)[p];
    if (isnan(v)) return vl_fail(err, VL_ERR_VALUE, "the graph holds NaN (entry %lld)", (long long)p);
    if (v > mx) mx = v;
  }
  /* umap-learn: data[data < max / n_epochs] = 0 on float32 data, then zeros eliminated (it
   * uses default_epochs = 500 or 200 in place of n_epochs <= 10; the caller passes that) */
  const float thr = (float)((double)(float)mx / (double)n_epochs);
  int64_t q = 0;
  indptr[0] = 0;
  for (int64_t i = 0; i < a->nrows; i++) {
    for (int64_t p = a->indptr[i]; p < a->indptr[i + 1]; p++) {
      float v = a->dtype == VL_F32 ? ((const float *)a->values)[p]
                                   : (float)((const double *)a->values)[p];
      if (v < thr || !(v > 0)) continue;
      if (indices) {
        indices[q] = a->indices[p];
        values[q] = v;
      }
      q++;
    }
    indptr[i + 1] = q;
  }
  return VL_OK;
}

typedef struct {
  int64_t n, dim;
  /* the graph (tails as int32) and its transpose: the in-edges of each vertex, sources
   * ascending, and where each edge sits in that order */
  const int64_t *ip, *tptr, *tpos;
  const int32_t *ix, *tsrc;
  /* umap-learn's sampling schedule, per edge */
  const double *eps, *epns;
  double *eons, *eonns;
  int32_t *next_due; /* ceil(eons): the edge is sampled at the first epoch t >= it */
  int32_t *due;      /* epochs at which edges are sampled: stamp t when due in epoch t */
  int32_t *tdue;     /* the same in transposed order (read by the edge's tail); for a graph
                      * whose transpose is itself, entry for entry, the same array as due */
  int32_t *due_next, *tdue_next; /* the other parity: epoch t + 1, filled during epoch t */
  int32_t *nneg;     /* negative samples at that sample */
  /* positions: S the start-of-epoch snapshot, Y the live ones */
  const float *S;
  float *Y;
  float a, b, two_ab, two_gb, alpha;
  int32_t epoch;
  uint64_t key;
  int32_t nneg_bound; /* largest nneg of this epoch */
  int32_t *maxneg; /* per block of vertices: largest nneg of the next epoch's schedule */
  int32_t n_epochs;
  /* op buffers, one per thread, kept across epochs: a block claims a free one (busy flags) */
  uint32_t **bufs;
  int64_t *caps;
  char *busy;
  int nbufs;
  int avx512; /* due_positions_avx512 is available */
  int avx512dqvl; /* head_ops_avx512 is available */
  int failed; /* scratch memory ran out in a worker */
} sgd_job;

static inline int32_t ceil_epoch(double x) {
  double c = ceil(x);
  return c > 2147483647.0 ? 2147483647 : (int32_t)c;
}

/* Positions i < n with a[i] <= t (le) or a[i] == t, ascending, into out (room for n + 16):
 * which edges are due looks random to a branch predictor, so no branches on it. An AVX-512
 * build compresses 16 comparisons at a time; both give the same list. */
static int64_t due_positions_portable(const int32_t *a, int64_t n, int32_t t, int le,
                                      int32_t *out) {
  int64_t m = 0;
  if (le) {
    for (int64_t i = 0; i < n; i++) {
      out[m] = (int32_t)i;
      m += a[i] <= t;
    }
  } else {
    for (int64_t i = 0; i < n; i++) {
      out[m] = (int32_t)i;
      m += a[i] == t;
    }
  }
  return m;
}

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#include <immintrin.h>
#define VL_HAVE_AVX512_COMPRESS 1
__attribute__((target("avx512f"))) static int64_t due_positions_avx512(const int32_t *a, int64_t n,
                                                                      int32_t t, int le,
                                                                      int32_t *out) {
  const __m512i tv = _mm512_set1_epi32(t), sixteen = _mm512_set1_epi32(16);
  __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int64_t m = 0, i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i v = _mm512_loadu_si512((const void *)(a + i));
    const __mmask16 k = le ? _mm512_cmple_epi32_mask(v, tv) : _mm512_cmpeq_epi32_mask(v, tv);
    /* compressed in a register, stored whole (the slack absorbs the tail) */
    _mm512_storeu_si512((void *)(out + m), _mm512_maskz_compress_epi32(k, idx));
    m += __builtin_popcount((unsigned)k);
    idx = _mm512_add_epi32(idx, sixteen);
  }
  /* the tail: a masked load */
  if (i < n) {
    const __mmask16 tail = (__mmask16)((1u << (n - i)) - 1u);
    const __m512i v = _mm512_maskz_loadu_epi32(tail, (const void *)(a + i));
    const __mmask16 k = tail & (le ? _mm512_cmple_epi32_mask(v, tv) : _mm512_cmpeq_epi32_mask(v, tv));
    _mm512_storeu_si512((void *)(out + m), _mm512_maskz_compress_epi32(k, idx));
    m += __builtin_popcount((unsigned)k);
  }
  return m;
}
#endif

static inline int64_t due_positions(const sgd_job *s, const int32_t *a, int64_t n, int32_t t,
                                    int le, int32_t *out) {
#ifdef VL_HAVE_AVX512_COMPRESS
  if (s->avx512) return due_positions_avx512(a, n, t, le, out);
#endif
  return due_positions_portable(a, n, t, le, out);
}

/* Schedules epoch t for the edges [lo, hi), as umap-learn decides (eons <= t), updating its
 * counters: stamps t into due_w[e] (and tdue_w at the edge's transposed position unless the
 * graph is its own transpose) and the negative-sample count into nneg[e]. Returns the largest
 * count. */
static int32_t schedule_range(sgd_job *s, int64_t lo, int64_t hi, int32_t t, int32_t *due_w,
                              int32_t *tdue_w) {
  int32_t mx = 0;
  int32_t list[256 + 16];
  for (int64_t e0 = lo; e0 < hi; e0 += 256) {
    const int64_t e1 = e0 + 256 < hi ? e0 + 256 : hi;
    const int64_t m = due_positions(s, s->next_due + e0, e1 - e0, t, 1, list);
    for (int64_t r = 0; r < m; r++) {
      const int64_t e = e0 + list[r];
      /* int() of umap-learn: truncation toward zero */
      const double q = ((double)t - s->eonns[e]) / s->epns[e];
      const int32_t k = q > 1e9 ? 1000000000 : (int32_t)q;
      s->nneg[e] = k;
      if (k > mx) mx = k;
      s->eons[e] += s->eps[e];
      s->eonns[e] += (double)k * s->epns[e];
      s->next_due[e] = ceil_epoch(s->eons[e]);
      due_w[e] = t;
      if (tdue_w != due_w) tdue_w[s->tpos[e]] = t;
    }
  }
  return mx;
}

/* epoch 0's schedule, before the first pass */
static void schedule_first(int64_t lo, int64_t hi, int chunk, void *arg) {
  sgd_job *s = arg;
  const int32_t m = schedule_range(s, lo, hi, 0, s->due, s->tdue);
  int32_t cur = __atomic_load_n(&s->maxneg[0], __ATOMIC_RELAXED);
  while (m > cur && !__atomic_compare_exchange_n(&s->maxneg[0], &cur, m, false, __ATOMIC_RELAXED,
                                                 __ATOMIC_RELAXED)) {
  }
}

static inline float clip4(float v) { return v > 4.0f ? 4.0f : (v < -4.0f ? -4.0f : v); }

/* x^b for x > 0 as 2^(b log2 x), inline and branch-free: log2 of the mantissa as t P(t^2),
 * t = (m - 1) / (m + 1), m in [sqrt(1/2), sqrt(2)), P a degree-2 fit of the atanh series
 * (error < 3e-8), 2^f for f in [-1/2, 1/2] by a degree-5 fit of relative error < 8e-8 (both
 * near-minimax, fitted by iteratively reweighted least squares); the result is within about
 * 2e-6 relative of x^b, as f32 rounding allows, and flushes to 0 or 2^127 outside
 * [2^-126, 2^127]. */
static inline float pow_pos(float x, float b) {
  const union { float f; int32_t i; } u = {x};
  int32_t e = ((u.i >> 23) & 0xff) - 127;
  const union { int32_t i; float f; } mant = {(u.i & 0x7fffff) | 0x3f800000};
  float m = mant.f;
  e += m > 1.41421356f ? 1 : 0;
  m = m > 1.41421356f ? m * 0.5f : m;
  const float t = (m - 1.0f) / (m + 1.0f), t2 = t * t;
  const float lg = (float)e + t * (2.8853912893218148f +
                                   t2 * (0.9614708153439215f + t2 * 0.5989737121902569f));
  float y = b * lg;
  y = y < -126.0f ? -126.0f : y;
  y = y > 126.0f ? 126.0f : y;
  const float r = (y + 12582912.0f) - 12582912.0f; /* round to nearest (|y| < 2^22) */
  const float f = y - r;
  float p = 0.0013276382558059761f;
  p = p * f + 0.009675540613637512f;
  p = p * f + 0.05550713550091648f;
  p = p * f + 0.2402211974178362f;
  p = p * f + 0.6931469668954853f;
  p = p * f + 1.0000000716491495f;
  const union { int32_t i; float f; } scale = {((int32_t)r + 127) << 23};
  return p * scale.f;
}

/* The moves of one epoch are run as op lists: per vertex, in umap-learn's order, the partner
 * of each move with OP_REPEL marking negative samples. Lists of LANES vertices are then run
 * side by side, one op per vertex per step: each vertex still takes its own moves one after
 * the other with the same arithmetic, but the lanes are independent chains the CPU (and the
 * compiler's vector code) can overlap. A vertex's result does not depend on its lane. */
#define OP_REPEL 0x80000000u
enum { LANES = 32, CHUNK = 256, DMAX = 16 };

/* The negative-sampling stream: draw p of edge e in epoch t is the high 32 bits of
 * mix(key + (e << 32 | t) * W1 + (p / 2 + 1) * W2) (half p % 2), mix being SplitMix64's
 * finaliser (Stafford's variant 13): a counter-based keyed generator, so every draw has a
 * fixed place and no state is shared between threads. */
static inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* writes the ops of vertex j to out; returns their number */
static int64_t make_ops(const sgd_job *s, int64_t j, uint32_t *out) {
  const uint64_t n = (uint64_t)s->n;
  const int32_t t = s->epoch;
  int64_t c = 0, q = s->tptr[j];
  const int64_t qend = s->tptr[j + 1];
  /* Slots are written unconditionally and kept by advancing c on a condition: due or not is
   * unpredictable, and branches on it cost more than the stores. */
  /* as the tail of edges (k, j), k < j: moved toward k */
  for (; q < qend && s->tsrc[q] < j; q++) {
    out[c] = (uint32_t)s->tsrc[q];
    c += s->tdue[q] == t;
  }
  /* as the head of its own edges, each followed by its negative samples */
  int64_t list[64];
  for (int64_t e0 = s->ip[j]; e0 < s->ip[j + 1]; e0 += 64) {
    const int64_t e1 = e0 + 64 < s->ip[j + 1] ? e0 + 64 : s->ip[j + 1];
    int64_t m = 0;
    for (int64_t e = e0; e < e1; e++) {
      list[m] = e;
      m += s->due[e] == t;
    }
    for (int64_t r = 0; r < m; r++) {
      const int64_t e = list[r];
      const int32_t nneg = s->nneg[e];
      const int64_t k = s->ix[e];
      out[c] = (uint32_t)k;
      c += k != j; /* a self-loop moves nothing */
      const uint64_t base = s->key + (((uint64_t)e << 32) | (uint32_t)t) * 0x9e3779b97f4a7c15ULL;
      uint64_t word = 0;
      for (int32_t p = 0; p < nneg; p++) {
        if ((p & 1) == 0) word = mix64(base + (uint64_t)(p / 2 + 1) * 0xd1b54a32d192ed03ULL);
        const uint32_t w32 = (p & 1) ? (uint32_t)word : (uint32_t)(word >> 32);
        /* a vertex in [0, n): the high half of w32 * n */
        const int64_t kk = (int64_t)(((uint64_t)w32 * n) >> 32);
        if (kk == j) continue; /* umap-learn skips a sample that is the vertex itself (rare) */
        out[c++] = (uint32_t)kk | OP_REPEL;
      }
    }
  }
  /* as the tail of edges (k, j), k > j */
  for (; q < qend; q++) {
    out[c] = (uint32_t)s->tsrc[q];
    c += (s->tdue[q] == t) & (s->tsrc[q] != j);
  }
  return c;
}

/* The head moves of vertex j's due edges e0 + list[r], r < m, each with its negative samples,
 * as the scalar loop of make_ops_self_transpose writes them (one more vector may be stored past
 * the end: the buffer has 16 entries of slack). Per edge: draws 0..7 from four mix64 words in
 * one vector, the vertices floor(w n / 2^32), and the edge's partner and the kept draws
 * compressed into place; draws from 8 on, rare, one at a time. Integer arithmetic only, so the
 * ops are exactly the scalar loop's. */
#ifdef VL_HAVE_AVX512_COMPRESS
__attribute__((target("avx512f,avx512dq,avx512vl"))) static int64_t
head_ops_avx512(const sgd_job *s, int64_t j, int64_t e0, const int32_t *list, int64_t m,
                uint32_t *out) {
  const uint64_t n = (uint64_t)s->n;
  const int32_t t = s->epoch;
  const uint64_t W2 = 0xd1b54a32d192ed03ULL;
  const __m256i steps = _mm256_setr_epi64x((long long)W2, (long long)(2 * W2),
                                           (long long)(3 * W2), (long long)(4 * W2));
  const __m256i c1 = _mm256_set1_epi64x((long long)0xbf58476d1ce4e5b9ULL);
  const __m256i c2 = _mm256_set1_epi64x((long long)0x94d049bb133111ebULL);
  const __m512i nv = _mm512_set1_epi64((long long)n);
  const __m256i jv = _mm256_set1_epi32((int)j);
  const __m256i repel = _mm256_set1_epi32((int)OP_REPEL);
  /* partner first (lane 8 of the source), then draws 0..7 */
  const __m512i order = _mm512_setr_epi32(8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 8, 8, 8, 8, 8);
  int64_t c = 0;
  for (int64_t r = 0; r < m; r++) {
    const int64_t e = e0 + list[r];
    const int32_t nneg = s->nneg[e];
    const int64_t k = s->ix[e];
    const uint64_t base = s->key + (((uint64_t)e << 32) | (uint32_t)t) * 0x9e3779b97f4a7c15ULL;
    __m256i z = _mm256_add_epi64(_mm256_set1_epi64x((long long)base), steps);
    z = _mm256_mullo_epi64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), c1);
    z = _mm256_mullo_epi64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), c2);
    z = _mm256_xor_si256(z, _mm256_srli_epi64(z, 31));
    /* draw 2q is the high half of word q, draw 2q + 1 its low half */
    const __m256i w32 = _mm256_shuffle_epi32(z, 0xB1);
    const __m512i prod = _mm512_mul_epu32(_mm512_cvtepu32_epi64(w32), nv);
    const __m256i kk = _mm512_cvtepi64_epi32(_mm512_srli_epi64(prod, 32));
    const int32_t first = nneg < 8 ? nneg : 8;
    const __mmask8 keep = _mm256_cmpneq_epi32_mask(kk, jv) & (__mmask8)((1u << first) - 1u);
    const __m512i src = _mm512_inserti64x4(_mm512_set1_epi32((int)k),
                                           _mm256_or_si256(kk, repel), 0);
    const __mmask16 mask = (__mmask16)((k != j ? 1u : 0u) | ((unsigned)keep << 1));
    _mm512_storeu_si512((void *)(out + c),
                        _mm512_maskz_compress_epi32(mask, _mm512_permutexvar_epi32(order, src)));
    c += __builtin_popcount((unsigned)mask);
    uint64_t word = 0;
    for (int32_t p = 8; p < nneg; p++) {
      if ((p & 1) == 0) word = mix64(base + (uint64_t)(p / 2 + 1) * W2);
      const uint32_t h = (p & 1) ? (uint32_t)word : (uint32_t)(word >> 32);
      const int64_t kx = (int64_t)(((uint64_t)h * n) >> 32);
      out[c] = (uint32_t)kx | OP_REPEL;
      c += kx != j;
    }
  }
  return c;
}
#endif

/* make_ops for a graph that is its own transpose (tdue == due): the in-edges of j sit at its
 * own row's positions, so one pass finds the due positions and the three groups of moves are
 * emitted from that list. Same ops in the same order as make_ops. Rows up to 512 entries. */
static int64_t make_ops_self_transpose(const sgd_job *s, int64_t j, uint32_t *out) {
  const uint64_t n = (uint64_t)s->n;
  const int32_t t = s->epoch;
  const int64_t e0 = s->ip[j], e1 = s->ip[j + 1];
  int32_t list[512 + 16];
  const int64_t m = due_positions(s, s->due + e0, e1 - e0, t, 0, list);
  int64_t c = 0;
  int64_t r = 0;
  /* as the tail of edges (k, j), k < j */
  for (; r < m && s->ix[e0 + list[r]] < j; r++) out[c++] = (uint32_t)s->ix[e0 + list[r]];
  const int64_t split = r;
  /* as the head of its own edges, each followed by its negative samples */
  int64_t mh = m;
#ifdef VL_HAVE_AVX512_COMPRESS
  if (s->avx512dqvl) {
    c += head_ops_avx512(s, j, e0, list, m, out + c);
    mh = 0; /* done: skip the scalar loop */
  }
#endif
  for (r = 0; r < mh; r++) {
    const int64_t e = e0 + list[r];
    const int32_t nneg = s->nneg[e];
    const int64_t k = s->ix[e];
    if (k != j) out[c++] = (uint32_t)k; /* a self-loop moves nothing */
    const uint64_t base = s->key + (((uint64_t)e << 32) | (uint32_t)t) * 0x9e3779b97f4a7c15ULL;
    uint64_t word = 0;
    for (int32_t p = 0; p < nneg; p++) {
      if ((p & 1) == 0) word = mix64(base + (uint64_t)(p / 2 + 1) * 0xd1b54a32d192ed03ULL);
      const uint32_t w32 = (p & 1) ? (uint32_t)word : (uint32_t)(word >> 32);
      const int64_t kk = (int64_t)(((uint64_t)w32 * n) >> 32);
      if (kk == j) continue;
      out[c++] = (uint32_t)kk | OP_REPEL;
    }
  }
  /* as the tail of edges (k, j), k > j */
  for (r = split; r < m; r++) {
    const int64_t k = s->ix[e0 + list[r]];
    out[c] = (uint32_t)k;
    c += k != j;
  }
  return c;
}

/* Runs the ops of vertices [c0, c1) (ops of vertex j at ops[ostart[j - c0] ..
 * ostart[j - c0 + 1])). Attraction: grad_coeff = -2ab d^(2(b-1)) / (a d^(2b) + 1), none at
 * d = 0; repulsion: 2 gamma b / ((0.001 + d^2)(a d^(2b) + 1)), and umap-learn's +4 per
 * coordinate when that is not positive; each coordinate's step clip(grad_coeff * diff, 4) *
 * alpha. */
static inline __attribute__((always_inline)) void run_lanes(const sgd_job *s, int64_t c0,
                                                            int64_t c1, const uint32_t *ops,
                                                            const int64_t *ostart,
                                                            const int dim) {
  /* per lane: coordinates, partner, position in ops (pos), its end, the step (0 when idle:
   * an idle lane keeps reading ops[0] and computes values nobody stores) */
  float c[DMAX][LANES], o[DMAX][LANES], rep[LANES];
  int32_t kofs[LANES], pos[LANES], end[LANES], step[LANES];
  int64_t vert[LANES];
  const float a = s->a, b = s->b, two_ab = s->two_ab, two_gb = s->two_gb, alpha = s->alpha;
  const float *S = s->S;
  float *Y = s->Y;
  int64_t next = c0;
  int active = 0;
  /* loads the next vertex with ops into lane l, or idles it */
#define LANE_REFILL(l)                                                        \
  do {                                                                        \
    while (next < c1 && ostart[next - c0] == ostart[next - c0 + 1]) next++;   \
    if (next < c1) {                                                          \
      vert[l] = next;                                                         \
      pos[l] = (int32_t)ostart[next - c0];                                    \
      end[l] = (int32_t)ostart[next - c0 + 1];                                \
      step[l] = 1;                                                            \
      for (int d = 0; d < dim; d++) c[d][l] = Y[next * dim + d];              \
      next++;                                                                 \
      active++;                                                               \
    } else {                                                                  \
      vert[l] = -1;                                                           \
      pos[l] = 0;                                                             \
      end[l] = -1;                                                            \
      step[l] = 0;                                                            \
      for (int d = 0; d < dim; d++) c[d][l] = 0;                              \
    }                                                                         \
  } while (0)
  for (int l = 0; l < LANES; l++) LANE_REFILL(l);
  while (active > 0) {
    for (int l = 0; l < LANES; l++) {
      const uint32_t op = ops[pos[l]];
      kofs[l] = (int32_t)(op & ~OP_REPEL) * dim;
      rep[l] = (float)(int32_t)(op >> 31);
    }
    if (dim == 2) {
      /* a partner's (x, y) as one 64-bit load, split in registers */
      for (int l = 0; l < LANES; l++) {
        uint64_t pr;
        memcpy(&pr, S + kofs[l], sizeof pr);
        const union { uint32_t u; float f; } x = {(uint32_t)pr}, y = {(uint32_t)(pr >> 32)};
        o[0][l] = x.f;
        o[1][l] = y.f;
      }
    } else {
      for (int d = 0; d < dim; d++)
        for (int l = 0; l < LANES; l++) o[d][l] = S[kofs[l] + d];
    }
    for (int l = 0; l < LANES; l++) {
      float d2 = 0;
      for (int d = 0; d < dim; d++) {
        const float t = c[d][l] - o[d][l];
        d2 += t * t;
      }
      /* branch-free (float selects only), so the lanes become vector code */
      const float x = d2 > 0 ? d2 : 1.0f;
      const float pb = pow_pos(x, b);
      const float den = a * pb + 1.0f;
      /* attraction -2ab pb / (x den) or repulsion 2 gamma b / ((0.001 + d2) den): the operands
       * are chosen first, so one division serves both */
      const float r = rep[l];
      const float num = r > 0 ? two_gb : -two_ab * pb;
      const float dd = r > 0 ? (0.001f + d2) * den : x * den;
      float gc = num / dd;
      gc = d2 > 0 ? gc : 0.0f;
      const float four = gc > 0 ? 0.0f : r;
      for (int d = 0; d < dim; d++) {
        float g = clip4(gc * (c[d][l] - o[d][l]));
        g = four > 0 ? 4.0f : g;
        c[d][l] += g * alpha;
      }
    }
    int done = 0;
    for (int l = 0; l < LANES; l++) {
      pos[l] += step[l];
      done |= pos[l] == end[l];
    }
    if (!done) continue;
    for (int l = 0; l < LANES; l++) {
      if (pos[l] != end[l]) continue;
      for (int d = 0; d < dim; d++) Y[vert[l] * dim + d] = c[d][l];
      active--;
      LANE_REFILL(l);
    }
  }
#undef LANE_REFILL
}

/* The lane kernels, also built for AVX2 and AVX-512 (8 or 16 lanes per register; 32 lanes
 * keep two to four independent chains in flight). Floating-point contraction is off in this
 * file, so every build does the same IEEE operations and gives the same bits. */
VL_CLONES_AVX512 static void run_lanes_2(const sgd_job *s, int64_t c0, int64_t c1, const uint32_t *ops,
                        const int64_t *ostart) {
  run_lanes(s, c0, c1, ops, ostart, 2);
}
VL_CLONES_AVX512 static void run_lanes_3(const sgd_job *s, int64_t c0, int64_t c1, const uint32_t *ops,
                        const int64_t *ostart) {
  run_lanes(s, c0, c1, ops, ostart, 3);
}
VL_CLONES_AVX512 static void run_lanes_any(const sgd_job *s, int64_t c0, int64_t c1, const uint32_t *ops,
                          const int64_t *ostart) {
  run_lanes(s, c0, c1, ops, ostart, (int)s->dim);
}

/* One epoch for the block of vertices [lo, hi) (block number blk), chunk by chunk: their op
 * lists, the moves, then the next epoch's schedule of their own edges (which nothing else
 * reads this epoch). Blocks are handed out to the threads as they come free, so a thread that
 * loses its core to another process holds up one block, not half the epoch; results do not
 * depend on which thread runs a block. */
static void move_vertices(int64_t lo, int64_t hi, int blk, void *arg) {
  sgd_job *s = arg;
  /* at most nbufs blocks run at once, so a buffer is free */
  int chunk = 0;
  while (__atomic_test_and_set(&s->busy[chunk], __ATOMIC_ACQUIRE)) chunk = (chunk + 1) % s->nbufs;
  int64_t ostart[CHUNK + 1];
  int32_t mx = 0;
  const bool self_transpose = s->tdue == s->due;
  for (int64_t c0 = lo; c0 < hi; c0 += CHUNK) {
    const int64_t c1 = c0 + CHUNK < hi ? c0 + CHUNK : hi;
    ostart[0] = 0;
    for (int64_t j = c0; j < c1; j++) {
      /* room for every move the vertex could take this epoch */
      const int64_t at = ostart[j - c0];
      const int64_t need = at + (s->tptr[j + 1] - s->tptr[j]) +
                           (s->ip[j + 1] - s->ip[j]) * (1 + (int64_t)s->nneg_bound) + 16;
      if (need > s->caps[chunk]) {
        const int64_t cap = need + need / 2 + 1024;
        uint32_t *grown = realloc(s->bufs[chunk], sizeof(uint32_t) * (size_t)cap);
        if (!grown) {
          __atomic_store_n(&s->failed, 1, __ATOMIC_RELAXED);
          __atomic_clear(&s->busy[chunk], __ATOMIC_RELEASE);
          return;
        }
        s->bufs[chunk] = grown;
        s->caps[chunk] = cap;
      }
      ostart[j - c0 + 1] =
          at + (self_transpose && s->ip[j + 1] - s->ip[j] <= 512
                    ? make_ops_self_transpose(s, j, s->bufs[chunk] + at)
                    : make_ops(s, j, s->bufs[chunk] + at));
    }
    const uint32_t *ops = s->bufs[chunk];
    if (s->dim == 2) run_lanes_2(s, c0, c1, ops, ostart);
    else if (s->dim == 3) run_lanes_3(s, c0, c1, ops, ostart);
    else run_lanes_any(s, c0, c1, ops, ostart);
    if (s->epoch + 1 < s->n_epochs) {
      const int32_t m = schedule_range(s, s->ip[c0], s->ip[c1], s->epoch + 1, s->due_next,
                                       s->tdue_next);
      if (m > mx) mx = m;
    }
  }
  s->maxneg[blk] = mx;
  __atomic_clear(&s->busy[chunk], __ATOMIC_RELEASE);
}

vl_status vl_umap_optimize(vl_ctx *ctx, const vl_csr *a, float *Y, int64_t dim,
                           const vl_umap_sgd_opts *o, vl_error *err) {
  if (a->nrows != a->ncols)
    return vl_fail(err, VL_ERR_SHAPE, "the graph must be square, got %lld x %lld",
                   (long long)a->nrows, (long long)a->ncols);
  if (a->dtype != VL_F32) return vl_fail(err, VL_ERR_DTYPE, "the graph values must be f32");
  if (dim < 1) return vl_fail(err, VL_ERR_VALUE, "dim = %lld must be positive", (long long)dim);
  if (o->n_epochs < 1 || o->n_epochs > 1000000000)
    return vl_fail(err, VL_ERR_VALUE, "n_epochs = %lld must be in [1, 1e9]", (long long)o->n_epochs);
  if (!(o->negative_sample_rate > 0))
    return vl_fail(err, VL_ERR_VALUE, "negative_sample_rate must be positive");
  const int64_t n = a->nrows, nnz = a->nnz;
  const float *w = a->values;
  if (n >= 0x80000000LL)
    return vl_fail(err, VL_ERR_UNSUPPORTED, "%lld vertices: at most 2^31 - 1", (long long)n);
  if (dim > DMAX)
    return vl_fail(err, VL_ERR_UNSUPPORTED, "n_components = %lld: at most %d", (long long)dim,
                   (int)DMAX);
  if (nnz == 0 || n == 0) return VL_OK;
  float wmax = 0;
  for (int64_t e = 0; e < nnz; e++) {
    if (!(w[e] > 0))
      return vl_fail(err, VL_ERR_VALUE, "graph entry %lld is %g; prune it first (weights must "
                     "be positive)", (long long)e, (double)w[e]);
    if (w[e] > wmax) wmax = w[e];
  }
  if (nnz >= 0x80000000LL)
    return vl_fail(err, VL_ERR_UNSUPPORTED, "%lld edges: at most 2^31 - 1", (long long)nnz);
  vl_status st = VL_OK;
  double *eps = malloc(sizeof(double) * (size_t)nnz);
  double *epns = malloc(sizeof(double) * (size_t)nnz);
  double *eons = malloc(sizeof(double) * (size_t)nnz);
  double *eonns = malloc(sizeof(double) * (size_t)nnz);
  int32_t *next_due = malloc(sizeof(int32_t) * (size_t)nnz);
  int32_t *due = malloc(sizeof(int32_t) * (size_t)(2 * nnz)); /* by parity of the epoch */
  int32_t *tdue = malloc(sizeof(int32_t) * (size_t)(2 * nnz));
  int32_t *nneg = malloc(sizeof(int32_t) * (size_t)nnz);
  int32_t *ix = malloc(sizeof(int32_t) * (size_t)nnz);
  int32_t *tsrc = malloc(sizeof(int32_t) * (size_t)nnz);
  int64_t *tptr = calloc((size_t)(n + 1), sizeof(int64_t));
  int64_t *tpos = malloc(sizeof(int64_t) * (size_t)nnz);
  int64_t *fill = malloc(sizeof(int64_t) * (size_t)n);
  float *S = malloc(sizeof(float) * (size_t)(n * dim));
  const int ntask = ctx && ctx->num_threads > 1 ? ctx->num_threads : 1;
  const int64_t nblk = (n + CHUNK - 1) / CHUNK;
  uint32_t **bufs = calloc((size_t)ntask, sizeof(uint32_t *));
  int64_t *caps = calloc((size_t)ntask, sizeof(int64_t));
  char *busy = calloc((size_t)ntask, 1);
  int32_t *maxneg = calloc((size_t)nblk, sizeof(int32_t));
  if (!maxneg || !bufs || !caps || !busy || !eps || !epns || !eons || !eonns || !next_due || !due || !tdue || !nneg || !ix || !tsrc ||
      !tptr || !tpos || !fill || !S) {
    st = vl_fail(err, VL_ERR_NOMEM, "out of memory (UMAP layout of %lld vertices, %lld edges)",
                 (long long)n, (long long)nnz);
    goto out;
  }
  /* make_epochs_per_sample: n_samples = n_epochs * (w / max w) in f32, then n_epochs / that */
  const float fe = (float)o->n_epochs;
  for (int64_t e = 0; e < nnz; e++) {
    const float ns = fe * (w[e] / wmax);
    eps[e] = ns > 0 ? (double)o->n_epochs / (double)ns : -1.0;
    epns[e] = eps[e] / o->negative_sample_rate;
    eons[e] = eps[e];
    eonns[e] = epns[e];
    next_due[e] = ceil_epoch(eons[e]);
    due[e] = due[nnz + e] = -1;
    ix[e] = (int32_t)a->indices[e];
  }
  /* in-edges by counting sort: sources ascending within each vertex */
  for (int64_t e = 0; e < nnz; e++) tptr[a->indices[e] + 1]++;
  for (int64_t i = 0; i < n; i++) tptr[i + 1] += tptr[i];
  memcpy(fill, tptr, sizeof(int64_t) * (size_t)n);
  for (int64_t i = 0; i < n; i++)
    for (int64_t e = a->indptr[i]; e < a->indptr[i + 1]; e++) {
      const int64_t q = fill[a->indices[e]]++;
      tsrc[q] = (int32_t)i;
      tpos[e] = q;
    }
  /* A symmetric graph with sorted rows is its own transpose position by position (tsrc = ix,
   * tptr = ip, equal weights): the in-edge at q is then sampled exactly when edge q is, and
   * the tails read due[] itself, one scattered write less per sample. */
  bool self_transpose = true;
  for (int64_t i = 0; i <= n && self_transpose; i++) self_transpose = tptr[i] == a->indptr[i];
  for (int64_t e = 0; e < nnz && self_transpose; e++)
    self_transpose = tsrc[e] == ix[e] && w[tpos[e]] == w[e];
  sgd_job s = {
    .n = n, .dim = dim, .ip = a->indptr, .tptr = tptr, .tpos = tpos, .ix = ix, .tsrc = tsrc,
    .eps = eps, .epns = epns, .eons = eons, .eonns = eonns, .next_due = next_due,
    .n_epochs = (int32_t)o->n_epochs, .nneg = nneg,
#ifdef VL_HAVE_AVX512_COMPRESS
    .avx512 = __builtin_cpu_supports("avx512f"),
    .avx512dqvl = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512vl"),
#endif
    .S = S, .Y = Y, .a = (float)o->a, .b = (float)o->b,
    .two_ab = (float)(2.0 * o->a * o->b), .two_gb = (float)(2.0 * o->gamma * o->b),
    .key = o->seed, .bufs = bufs, .caps = caps, .busy = busy, .nbufs = ntask, .maxneg = maxneg};
  /* (tdue's pages are touched only when it is used) */
  if (!self_transpose)
    for (int64_t e = 0; e < 2 * nnz; e++) tdue[e] = -1;
  int32_t *tdue_all = self_transpose ? due : tdue;
  s.due = due;
  s.tdue = tdue_all;
  vl_parallel_for(ctx, nnz, 16384, schedule_first, &s);
  for (int64_t t = 0; t < o->n_epochs; t++) {
    const int64_t cur = (t & 1) * nnz, nxt = ((t + 1) & 1) * nnz;
    s.epoch = (int32_t)t;
    s.alpha = (float)(t == 0 ? o->initial_alpha
                             : o->initial_alpha * (1.0 - (double)(t - 1) / (double)o->n_epochs));
    s.due = due + cur;
    s.tdue = tdue_all + cur;
    s.due_next = due + nxt;
    s.tdue_next = tdue_all + nxt;
    s.nneg_bound = 0;
    for (int64_t i = 0; i < nblk; i++) {
      if (maxneg[i] > s.nneg_bound) s.nneg_bound = maxneg[i];
      maxneg[i] = 0;
    }
    memcpy(S, Y, sizeof(float) * (size_t)(n * dim));
    if (vl_parallel_blocks(ctx, n, CHUNK, move_vertices, &s) == VL_ERR_INTERRUPTED) {
      st = vl_fail(err, VL_ERR_INTERRUPTED, "interrupted");
      goto out;
    }
    if (s.failed) {
      st = vl_fail(err, VL_ERR_NOMEM, "out of memory (UMAP layout of %lld vertices)", (long long)n);
      goto out;
    }
  }
out:
  free(eps);
  free(epns);
  free(eons);
  free(eonns);
  free(next_due);
  free(due);
  free(tdue);
  free(nneg);
  free(ix);
  free(tsrc);
  free(tptr);
  free(tpos);
  free(fill);
  free(S);
  if (bufs)
    for (int i = 0; i < ntask; i++) free(bufs[i]);
  free(bufs);
  free(caps);
  free(busy);
  free(maxneg);
  return st;
}
