/* Sparse preprocessing kernels (see pp_kernels.h). */
#include "pp_kernels.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static inline double val_at(const vl_csr *a, int64_t p) {
  return a->dtype == VL_F32 ? (double)((const float *)a->values)[p]
                            : ((const double *)a->values)[p];
}

/* The error for a column index outside [0, ncols) met at stored entry p. */
static vl_status bad_index(vl_error *err, const char *what, int64_t p, int64_t j, int64_t ncols) {
  return vl_fail(err, VL_ERR_INDEX, "%s: column index %lld of entry %lld is outside [0, %lld) "
                 "(0-based)", what, (long long)j, (long long)p, (long long)ncols);
}

typedef struct {
  const vl_csr *a;
  const void *scale;
  void *out;
} scale_job;

static void scale_rows(int64_t lo, int64_t hi, int chunk, void *arg) {
  const scale_job *j = arg;
  const int64_t *ip = j->a->indptr;
  if (j->a->dtype == VL_F32) {
    const float *v = j->a->values, *s = j->scale;
    float *o = j->out;
    for (int64_t i = lo; i < hi; i++)
      for (int64_t p = ip[i]; p < ip[i + 1]; p++) o[p] = v[p] * s[i];
  } else {
    const double *v = j->a->values, *s = j->scale;
    double *o = j->out;
    for (int64_t i = lo; i < hi; i++)
      for (int64_t p = ip[i]; p < ip[i + 1]; p++) o[p] = v[p] * s[i];
  }
}

vl_status vl_pp_scale_rows(vl_ctx *ctx, const vl_csr *a, const void *scale, void *out,
                           vl_error *err) {
  scale_job j = {a, scale, out};
  vl_parallel_for(ctx, a->nrows, 256, scale_rows, &j);
  return VL_OK;
}

/* NumPy's pairwise summation (umath loops: blocks of 128 with 8 accumulators). */
#define PAIRWISE(T, NAME)                                                                     \
  static T NAME(const T *a, int64_t n) {                                                     \
    if (n < 8) {                                                                             \
      T res = 0;                                                                             \
      for (int64_t i = 0; i < n; i++) res += a[i];                                           \
      return res;                                                                            \
    } else if (n <= 128) {                                                                   \
      T r[8];                                                                                \
      for (int t = 0; t < 8; t++) r[t] = a[t];                                               \
      int64_t i;                                                                             \
      for (i = 8; i < n - (n % 8); i += 8)                                                   \
        for (int t = 0; t < 8; t++) r[t] += a[i + t];                                        \
      T res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));             \
      for (; i < n; i++) res += a[i];                                                        \
      return res;                                                                            \
    } else {                                                                                 \
      int64_t n2 = n / 2;                                                                    \
      n2 -= n2 % 8;                                                                          \
      return NAME(a, n2) + NAME(a + n2, n - n2);                                             \
    }                                                                                        \
  }
PAIRWISE(float, pairwise_f32)
PAIRWISE(double, pairwise_f64)

typedef struct {
  const vl_csr *a;
  void *out;
} rowsum_job;

static void row_sums(int64_t lo, int64_t hi, int chunk, void *arg) {
  const rowsum_job *j = arg;
  const int64_t *ip = j->a->indptr;
  for (int64_t i = lo; i < hi; i++) {
    int64_t p0 = ip[i], p1 = ip[i + 1];
    if (j->a->dtype == VL_F32) {
      const float *v = j->a->values;
      ((float *)j->out)[i] = p1 > p0 ? v[p0] + pairwise_f32(v + p0 + 1, p1 - p0 - 1) : 0.0f;
    } else {
      const double *v = j->a->values;
      ((double *)j->out)[i] = p1 > p0 ? v[p0] + pairwise_f64(v + p0 + 1, p1 - p0 - 1) : 0.0;
    }
  }
}

vl_status vl_pp_row_sums(vl_ctx *ctx, const vl_csr *a, void *out, vl_error *err) {
  rowsum_job j = {a, out};
  vl_parallel_for(ctx, a->nrows, 256, row_sums, &j);
  return VL_OK;
}

vl_status vl_pp_col_stats(const vl_csr *a, const double *y, double *sum, double *sumsq,
                          double *sumxy, vl_error *err) {
  const int64_t g = a->ncols;
  if (a->dtype == VL_F32) {
    float *s = calloc((size_t)(g > 0 ? g : 1), sizeof(float));
    float *q = calloc((size_t)(g > 0 ? g : 1), sizeof(float));
    if (!s || !q) {
      free(s);
      free(q);
      return vl_fail(err, VL_ERR_NOMEM, "column statistics: out of memory");
    }
    const float *v = a->values;
    for (int64_t p = 0; p < a->nnz; p++) {
      int64_t j = a->indices[p];
      if ((uint64_t)j >= (uint64_t)g) {
        free(s);
        free(q);
        return bad_index(err, "column statistics", p, j, g);
      }
      s[j] += v[p];
      q[j] += v[p] * v[p];
    }
    for (int64_t j = 0; j < g; j++) {
      sum[j] = s[j];
      sumsq[j] = q[j];
    }
    free(s);
    free(q);
  } else {
    memset(sum, 0, sizeof(double) * (size_t)g);
    memset(sumsq, 0, sizeof(double) * (size_t)g);
    const double *v = a->values;
    for (int64_t p = 0; p < a->nnz; p++) {
      int64_t j = a->indices[p];
      if ((uint64_t)j >= (uint64_t)g) return bad_index(err, "column statistics", p, j, g);
      sum[j] += v[p];
      sumsq[j] += v[p] * v[p];
    }
  }
  if (sumxy) {
    memset(sumxy, 0, sizeof(double) * (size_t)g);
    for (int64_t i = 0; i < a->nrows; i++)
      for (int64_t p = a->indptr[i]; p < a->indptr[i + 1]; p++)
        sumxy[a->indices[p]] += val_at(a, p) * y[i];
  }
  return VL_OK;
}

vl_status vl_pp_count_corr_stats(const vl_csr *a, double *y, double *sum, double *sumsq,
                                 double *sumxy, vl_error *err) {
  const int64_t g = a->ncols;
  memset(sum, 0, sizeof(double) * (size_t)g);
  memset(sumsq, 0, sizeof(double) * (size_t)g);
  memset(sumxy, 0, sizeof(double) * (size_t)g);
  for (int64_t i = 0; i < a->nrows; i++) {
    int64_t c = 0;
    for (int64_t p = a->indptr[i]; p < a->indptr[i + 1]; p++) c += val_at(a, p) > 0;
    const double yi = (double)c;
    y[i] = yi;
    for (int64_t p = a->indptr[i]; p < a->indptr[i + 1]; p++) {
      const int64_t j = a->indices[p];
      if ((uint64_t)j >= (uint64_t)g) return bad_index(err, "correlation sums", p, j, g);
      const double v = val_at(a, p);
      sum[j] += v;
      sumsq[j] += v * v;
      sumxy[j] += v * yi;
    }
  }
  (void)err;
  return VL_OK;
}

void vl_pp_seurat_norm(int64_t n, const double *disp, const int64_t *bin, int64_t nbins,
                       double *out) {
  /* every f32 step is a double operation on f32 values rounded once: NumPy's f32 result */
  for (int64_t b = 1; b <= nbins; b++) {
    float sum = 0, comp = 0;
    int64_t cnt = 0;
    double wm = 0, wv = 0;
    for (int64_t i = 0; i < n; i++) {
      const double d = disp[i];
      if (bin[i] != b || d != d) continue;
      cnt++;
      const float y = (float)(d - (double)comp);
      const float t = (float)((double)sum + (double)y);
      comp = (float)((double)(float)((double)t - (double)sum) - (double)y);
      sum = t;
      const double old = wm;
      wm = wm + (d - old) / (double)cnt;
      wv = wv + (d - wm) * (d - old);
    }
    const double mu = cnt > 0 ? (double)(float)((double)sum / (double)cnt) : NAN;
    const double sd = cnt > 1 ? sqrt(wv / (double)(cnt - 1)) : NAN;
    for (int64_t i = 0; i < n; i++) {
      if (bin[i] != b) continue;
      double v = sd == sd ? (double)(float)(disp[i] - mu) / sd
                          : (double)(float)(disp[i] - 0.0) / mu; /* one gene: mean 0, sd mu */
      out[i] = v == v ? v : 0;
    }
  }
  for (int64_t i = 0; i < n; i++)
    if (bin[i] < 1 || bin[i] > nbins) out[i] = 0;
}

vl_status vl_pp_shared_counts(const vl_csr *s, const vl_csr *u, float *out, vl_error *err) {
  if (s->nrows != u->nrows || s->ncols != u->ncols)
    return vl_fail(err, VL_ERR_SHAPE, "shared counts: spliced is %lld x %lld but unspliced is "
                   "%lld x %lld", (long long)s->nrows, (long long)s->ncols, (long long)u->nrows,
                   (long long)u->ncols);
  const int64_t g = s->ncols;
  double *urow = calloc((size_t)(g > 0 ? g : 1), sizeof(double));
  int64_t *mark = malloc(sizeof(int64_t) * (size_t)(g > 0 ? g : 1));
  if (!urow || !mark) {
    free(urow);
    free(mark);
    return vl_fail(err, VL_ERR_NOMEM, "shared counts: out of memory");
  }
  for (int64_t j = 0; j < g; j++) {
    mark[j] = -1;
    out[j] = 0;
  }
  for (int64_t i = 0; i < s->nrows; i++) {
    for (int64_t p = u->indptr[i]; p < u->indptr[i + 1]; p++) {
      int64_t j = u->indices[p];
      if ((uint64_t)j >= (uint64_t)g) {
        free(urow);
        free(mark);
        return bad_index(err, "shared counts (unspliced)", p, j, g);
      }
      if (mark[j] != i) {
        mark[j] = i;
        urow[j] = 0;
      }
      urow[j] += val_at(u, p);
    }
    for (int64_t p = s->indptr[i]; p < s->indptr[i + 1]; p++) {
      int64_t j = s->indices[p];
      if ((uint64_t)j >= (uint64_t)g) {
        free(urow);
        free(mark);
        return bad_index(err, "shared counts (spliced)", p, j, g);
      }
      double sv = val_at(s, p);
      if (sv > 0 && mark[j] == i && urow[j] > 0) out[j] += (float)sv + (float)urow[j];
    }
  }
  free(urow);
  free(mark);
  return VL_OK;
}

typedef struct {
  const vl_csr *a;
  const int64_t *map;
  const void *scale;
  int64_t *indptr, *indices;
  void *values;
  atomic_int bad; /* an index outside [0, ncols) was met (count pass) */
} select_job;

/* pass 1: entries kept per row (into indptr[i + 1]); checks every index on the way */
static void select_count(int64_t lo, int64_t hi, int chunk, void *arg) {
  select_job *j = arg;
  const int64_t *ip = j->a->indptr, *ix = j->a->indices;
  const uint64_t nc = (uint64_t)j->a->ncols;
  int bad = 0;
  for (int64_t i = lo; i < hi; i++) {
    int64_t c = 0;
    for (int64_t p = ip[i]; p < ip[i + 1]; p++) {
      const uint64_t col = (uint64_t)ix[p];
      bad |= col >= nc;
      c += col < nc && j->map[col] >= 0;
    }
    j->indptr[i + 1] = c;
  }
  if (bad) atomic_store(&j->bad, 1);
}

/* Pass 2, rows written at their final offsets. Without branches on whether an entry is kept
 * (about half are, in no predictable pattern): every entry is written at the row's next free
 * slot, which advances only for kept ones, and the loop stops once the row's slots are full,
 * so nothing is written outside them. */
#define SELECT_FILL(T, NAME)                                                                  \
  static void NAME(const select_job *j, int64_t lo, int64_t hi) {                             \
    const int64_t *ip = j->a->indptr, *ix = j->a->indices, *map = j->map;                    \
    const T *v = j->a->values, *s = j->scale;                                                 \
    T *out = j->values;                                                                       \
    int64_t *oix = j->indices;                                                                \
    for (int64_t i = lo; i < hi; i++) {                                                       \
      int64_t o = j->indptr[i];                                                               \
      const int64_t e = j->indptr[i + 1];                                                     \
      const T f = s ? s[i] : (T)1;                                                            \
      for (int64_t p = ip[i]; p < ip[i + 1] && o < e; p++) {                                  \
        const int64_t c = map[ix[p]];                                                         \
        oix[o] = c;                                                                           \
        out[o] = s ? v[p] * f : v[p];                                                         \
        o += c >= 0;                                                                          \
      }                                                                                       \
    }                                                                                         \
  }
SELECT_FILL(float, select_fill_f32)
SELECT_FILL(double, select_fill_f64)

static void select_fill(int64_t lo, int64_t hi, int chunk, void *arg) {
  const select_job *j = arg;
  if (j->a->dtype == VL_F32) select_fill_f32(j, lo, hi);
  else select_fill_f64(j, lo, hi);
}

vl_status vl_pp_select_columns(vl_ctx *ctx, const vl_csr *a, const int64_t *map,
                               const void *scale, int64_t *indptr, int64_t *indices,
                               void *values, vl_error *err) {
  select_job j = {.a = a, .map = map, .scale = scale, .indptr = indptr, .indices = indices,
                  .values = values};
  atomic_init(&j.bad, 0);
  if (!indices) {
    vl_parallel_for(ctx, a->nrows, 1024, select_count, &j);
    if (atomic_load(&j.bad))
      return vl_fail(err, VL_ERR_INDEX, "select columns: a column index is outside [0, %lld) "
                     "(0-based)", (long long)a->ncols);
    indptr[0] = 0;
    for (int64_t i = 0; i < a->nrows; i++) indptr[i + 1] += indptr[i];
    return VL_OK;
  }
  vl_parallel_for(ctx, a->nrows, 256, select_fill, &j);
  return VL_OK;
}

static int cmp_i64(const void *x, const void *y) {
  int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
  return (a > b) - (a < b);
}

vl_status vl_pp_moments_operator(const vl_csr *c, int64_t *indptr, int64_t *indices,
                                 float *values, vl_error *err) {
  if (c->nrows != c->ncols)
    return vl_fail(err, VL_ERR_SHAPE, "moments operator: connectivities must be square, got "
                   "%lld x %lld", (long long)c->nrows, (long long)c->ncols);
  int64_t maxrow = 0;
  for (int64_t i = 0; i < c->nrows; i++) {
    int64_t r = c->indptr[i + 1] - c->indptr[i];
    if (r > maxrow) maxrow = r;
  }
  int64_t *row = malloc(sizeof(int64_t) * (size_t)(maxrow + 1));
  if (!row) return vl_fail(err, VL_ERR_NOMEM, "moments operator: out of memory");
  int64_t nnz = 0;
  indptr[0] = 0;
  for (int64_t i = 0; i < c->nrows; i++) {
    int64_t cnt = 0;
    row[cnt++] = i;
    for (int64_t p = c->indptr[i]; p < c->indptr[i + 1]; p++)
      if (val_at(c, p) > 0) row[cnt++] = c->indices[p];
    qsort(row, (size_t)cnt, sizeof(int64_t), cmp_i64);
    int64_t u = 0;
    for (int64_t t = 0; t < cnt; t++)
      if (u == 0 || row[u - 1] != row[t]) row[u++] = row[t];
    float v = (float)(1.0 / (double)u);
    if (indices)
      for (int64_t t = 0; t < u; t++) {
        indices[nnz + t] = row[t];
        values[nnz + t] = v;
      }
    nnz += u;
    indptr[i + 1] = nnz;
  }
  free(row);
  return VL_OK;
}

typedef struct {
  double v;
  int64_t pos;
} ranked;

static int cmp_ranked(const void *x, const void *y) {
  const ranked *a = x, *b = y;
  if (a->v != b->v) return a->v > b->v ? -1 : 1;
  return (a->pos > b->pos) - (a->pos < b->pos);
}

vl_status vl_pp_top_per_row(const vl_csr *a, int64_t keep, int64_t *indptr, int64_t *indices,
                            void *values, vl_error *err) {
  int64_t maxrow = 0;
  for (int64_t i = 0; i < a->nrows; i++) {
    int64_t r = a->indptr[i + 1] - a->indptr[i];
    if (r > maxrow) maxrow = r;
  }
  ranked *rk = malloc(sizeof(ranked) * (size_t)(maxrow > 0 ? maxrow : 1));
  uint8_t *kept = malloc((size_t)(maxrow > 0 ? maxrow : 1));
  if (!rk || !kept) {
    free(rk);
    free(kept);
    return vl_fail(err, VL_ERR_NOMEM, "select neighbours: out of memory");
  }
  size_t esz = a->dtype == VL_F32 ? 4 : 8;
  int64_t nnz = 0;
  indptr[0] = 0;
  for (int64_t i = 0; i < a->nrows; i++) {
    int64_t p0 = a->indptr[i], r = a->indptr[i + 1] - p0;
    for (int64_t t = 0; t < r; t++) {
      rk[t] = (ranked){val_at(a, p0 + t), t};
      kept[t] = 0;
    }
    if (r > keep) qsort(rk, (size_t)r, sizeof(ranked), cmp_ranked);
    for (int64_t t = 0; t < r && t < keep; t++) kept[rk[t].pos] = 1;
    for (int64_t t = 0; t < r; t++) {
      if (!kept[t] || val_at(a, p0 + t) == 0) continue; /* zeros are dropped, as scipy's */
      if (indices) {
        indices[nnz] = a->indices[p0 + t];
        memcpy((char *)values + (size_t)nnz * esz, (const char *)a->values + (size_t)(p0 + t) * esz,
               esz);
      }
      nnz++;
    }
    indptr[i + 1] = nnz;
  }
  free(rk);
  free(kept);
  return VL_OK;
}
