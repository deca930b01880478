/* Mean-centred PCA through the Gram matrix and block Lanczos (see pca.h). */
#include "pca.h"
#include "clones.h"

#include "blas.h"
#include "gram_f32.h"
#include "memory.h"
#include "random.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The VL_CLONES_AVX512 kernels may use FMA in their AVX2 build, so the last bits of a PCA depend on
 * the CPU, as those of OpenBLAS's kernels do; never on the thread count. */

/* LAPACK from OpenBLAS (Fortran calling convention, hidden string lengths last). */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork,
                    int *info, size_t, size_t);
extern void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n,
                    double *a, const int *lda, const double *vl, const double *vu, const int *il,
                    const int *iu, const double *abstol, int *m, double *w, double *z,
                    const int *ldz, int *isuppz, double *work, const int *lwork, int *iwork,
                    const int *liwork, int *info, size_t, size_t, size_t);
extern void dsytrd_(const char *uplo, const int *n, double *a, const int *lda, double *d,
                    double *e, double *tau, double *work, const int *lwork, int *info, size_t);
extern void dsterf_(const int *n, double *d, double *e, int *info);
extern void dstein_(const int *n, const double *d, const double *e, const int *m, const double *w,
                    const int *iblock, const int *isplit, double *z, const int *ldz, double *work,
                    int *iwork, int *ifail, int *info);
extern void dormtr_(const char *side, const char *uplo, const char *trans, const int *m,
                    const int *n, const double *a, const int *lda, const double *tau, double *c,
                    const int *ldc, double *work, const int *lwork, int *info, size_t, size_t,
                    size_t);

typedef struct {
  const vl_csr *sp;
  const vl_tensor *dense;
  int64_t n, g;
  const double *mean;
  bool f64; /* f64 values: everything in double (else f32 products, see pca.h) */
} matrix;

static inline double dense_at(const vl_tensor *t, int64_t i, int64_t j) {
  int64_t o = i * t->stride[0] + j * t->stride[1];
  return t->dtype == VL_F32 ? (double)((const float *)t->data)[o] : ((const double *)t->data)[o];
}
static inline double sp_val(const vl_csr *a, int64_t p) {
  return a->dtype == VL_F32 ? (double)((const float *)a->values)[p]
                            : ((const double *)a->values)[p];
}
/* row i of a dense f32 X with unit column stride, else NULL */
static inline const float *f32_row(const vl_tensor *t, int64_t i) {
  if (t->dtype != VL_F32 || t->stride[1] != 1) return NULL;
  return (const float *)t->data + i * t->stride[0];
}

/* A scratch buffer; from 1 MB on they are 2 MB aligned and backed by huge pages where the
 * system allows it: first-touch page faults cost more than the arithmetic done in such
 * buffers on some virtual machines (here 11 us per 4 kB page, 23 ms for a fresh 8 MB buffer,
 * against 0.8 ms with huge pages). Freed with free(). */
static void *scratch(size_t nbytes) {
  const size_t huge = (size_t)2 << 20;
  void *p = NULL;
  if (nbytes >= huge / 2) {
    size_t rounded = (nbytes + huge - 1) / huge * huge;
    p = aligned_alloc(huge, rounded);
    if (p) vl_advise_huge_pages(p, rounded);
  } else {
    p = malloc(nbytes > 0 ? nbytes : 1);
  }
  return p;
}

/* ---------- centred blocks of X (f32, or double for f64 data) ---------- */

/* out[(i - r0) * ld + (j - c0)] = X[i, j] - mean[j] for rows r0 + [lo, hi) and columns
 * [c0, c1), rounded to f32 unless x->f64 (then out is double). */
typedef struct {
  const matrix *x;
  int64_t r0, c0, c1, ld;
  void *out;
} block_job;

VL_CLONES_AVX512 static void fill_block(const block_job *b, int64_t lo, int64_t hi) {
  const matrix *x = b->x;
  const int64_t w = b->c1 - b->c0;
  const double *mean = x->mean + b->c0;
  if (x->f64) {
    for (int64_t i = b->r0 + lo; i < b->r0 + hi; i++) {
      double *o = (double *)b->out + (i - b->r0) * b->ld;
      if (x->sp) {
        for (int64_t j = 0; j < w; j++) o[j] = -mean[j];
        for (int64_t p = x->sp->indptr[i]; p < x->sp->indptr[i + 1]; p++) {
          int64_t j = x->sp->indices[p] - b->c0;
          if (j >= 0 && j < w) o[j] = sp_val(x->sp, p) - mean[j];
        }
      } else {
        for (int64_t j = 0; j < w; j++) o[j] = dense_at(x->dense, i, b->c0 + j) - mean[j];
      }
    }
    return;
  }
  for (int64_t i = b->r0 + lo; i < b->r0 + hi; i++) {
    float *o = (float *)b->out + (i - b->r0) * b->ld;
    if (x->sp) {
      for (int64_t j = 0; j < w; j++) o[j] = (float)-mean[j];
      for (int64_t p = x->sp->indptr[i]; p < x->sp->indptr[i + 1]; p++) {
        int64_t j = x->sp->indices[p] - b->c0;
        if (j >= 0 && j < w) o[j] = (float)(sp_val(x->sp, p) - mean[j]);
      }
    } else {
      const float *row = f32_row(x->dense, i);
      if (row) {
        row += b->c0;
        for (int64_t j = 0; j < w; j++) o[j] = (float)((double)row[j] - mean[j]);
      } else {
        for (int64_t j = 0; j < w; j++) o[j] = (float)(dense_at(x->dense, i, b->c0 + j) - mean[j]);
      }
    }
  }
}

static void fill_rows(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)chunk;
  fill_block(arg, lo, hi);
}

/* The centred f32 rows r0 + [lo, hi) of a chunk of `rows` rows in gram_f32.h's panel layout
 * (padding zero), row after row: a contiguous f32 row is centred straight into the panels,
 * any other row (sparse, strided) into a row buffer by fill_block first. */
typedef struct {
  const matrix *x;
  int64_t r0, rows;
  float *P;
  volatile int failed;
} panel_job;

VL_CLONES_AVX512 static void fill_panels(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)chunk;
  panel_job *pj = arg;
  const int64_t g = pj->x->g, rows = pj->rows, W = VL_GRAM_PANEL;
  const double *mean = pj->x->mean;
  float *buf = NULL;
  for (int64_t r = lo; r < hi; r++) {
    const float *src = pj->x->sp ? NULL : f32_row(pj->x->dense, pj->r0 + r);
    const bool centred = src == NULL;
    if (centred) {
      if (!buf && !(buf = malloc(sizeof(float) * (size_t)g))) {
        pj->failed = 1;
        return;
      }
      block_job b = {pj->x, pj->r0 + r, 0, g, g, buf};
      fill_block(&b, 0, 1);
      src = buf;
    }
    for (int64_t j0 = 0; j0 < g; j0 += W) {
      const int64_t w = g - j0 < W ? g - j0 : W;
      float *dst = pj->P + ((j0 / W) * rows + r) * W;
      if (centred)
        memcpy(dst, src + j0, sizeof(float) * (size_t)w);
      else
        for (int64_t c = 0; c < w; c++) dst[c] = (float)((double)src[j0 + c] - mean[j0 + c]);
      for (int64_t c = w; c < W; c++) dst[c] = 0.0f;
    }
  }
  free(buf);
}

/* gram_f32.h's panels for the Gram matrix of the rows of an f32 block: the w columns of B (n
 * rows, row stride ld) are the rows of the packed chunk, B's rows its columns (cells in panels
 * [lo, hi) of VL_GRAM_PANEL; those past n zero) */
typedef struct {
  const float *B;
  int64_t ld, n, w;
  float *P;
} transpose_job;

VL_CLONES_AVX512 static void pack_transposed(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)chunk;
  const transpose_job *j = arg;
  const int64_t W = VL_GRAM_PANEL;
  enum { CB = 16 }; /* columns per tile: the tile's W x CB values stay in L1 */
  for (int64_t p = lo; p < hi; p++) {
    float *panel = j->P + p * j->w * W;
    const int64_t rows = j->n - p * W < W ? j->n - p * W : W;
    for (int64_t c0 = 0; c0 < j->w; c0 += CB) {
      const int64_t c1 = c0 + CB < j->w ? c0 + CB : j->w;
      for (int64_t t = 0; t < rows; t++) {
        const float *row = j->B + (p * W + t) * j->ld;
        for (int64_t c = c0; c < c1; c++) panel[c * W + t] = row[c];
      }
      for (int64_t t = rows; t < W; t++)
        for (int64_t c = c0; c < c1; c++) panel[c * W + t] = 0.0f;
    }
  }
}

/* ---------- column means and total variance ---------- */

enum { STAT_ROWS = 512 };

/* per block of STAT_ROWS rows: column sums (mean == NULL) or sums of squared deviations */
typedef struct {
  const matrix *x;
  const double *mean;
  double *part; /* nblocks x g */
} stats_job;

VL_CLONES_AVX512 static void stats_block(int64_t lo, int64_t hi, int chunk, void *arg) {
  const stats_job *j = arg;
  const int64_t g = j->x->g;
  double *acc = j->part + (int64_t)chunk * g;
  memset(acc, 0, sizeof(double) * (size_t)g);
  for (int64_t i = lo; i < hi; i++) {
    const float *row = f32_row(j->x->dense, i);
    if (j->mean) {
      for (int64_t c = 0; c < g; c++) {
        double d = (row ? (double)row[c] : dense_at(j->x->dense, i, c)) - j->mean[c];
        acc[c] += d * d;
      }
    } else if (row) {
      for (int64_t c = 0; c < g; c++) acc[c] += row[c];
    } else {
      for (int64_t c = 0; c < g; c++) acc[c] += dense_at(j->x->dense, i, c);
    }
  }
}

/* Column means and the total variance (denominator n - 1); dense X in fixed row blocks summed
 * in block order (the same on any thread count). */
static vl_status column_stats(vl_ctx *ctx, const matrix *x, double *mean, double *total_var) {
  const int64_t n = x->n, g = x->g;
  memset(mean, 0, sizeof(double) * (size_t)g);
  *total_var = NAN;
  if (x->sp) {
    for (int64_t p = 0; p < x->sp->nnz; p++) mean[x->sp->indices[p]] += sp_val(x->sp, p);
    for (int64_t j = 0; j < g; j++) mean[j] /= (double)n;
    double tv = 0;
    double *ss = calloc((size_t)g, sizeof(double));
    int64_t *cnt = calloc((size_t)g, sizeof(int64_t));
    if (ss && cnt) {
      for (int64_t p = 0; p < x->sp->nnz; p++) {
        int64_t j = x->sp->indices[p];
        double d = sp_val(x->sp, p) - mean[j];
        ss[j] += d * d;
        cnt[j]++;
      }
      for (int64_t j = 0; j < g; j++) tv += ss[j] + (double)(n - cnt[j]) * mean[j] * mean[j];
      *total_var = n > 1 ? tv / (double)(n - 1) : 0;
    }
    free(ss);
    free(cnt);
    return ss && cnt ? VL_OK : VL_ERR_NOMEM;
  }
  const int64_t nb = (n + STAT_ROWS - 1) / STAT_ROWS;
  double *part = malloc(sizeof(double) * (size_t)(nb * g));
  if (!part) return VL_ERR_NOMEM;
  stats_job job = {x, NULL, part};
  vl_status st = vl_parallel_blocks(ctx, n, STAT_ROWS, stats_block, &job);
  if (st == VL_OK) {
    for (int64_t b = 0; b < nb; b++)
      for (int64_t j = 0; j < g; j++) mean[j] += part[b * g + j];
    for (int64_t j = 0; j < g; j++) mean[j] /= (double)n;
    job.mean = mean;
    st = vl_parallel_blocks(ctx, n, STAT_ROWS, stats_block, &job);
  }
  if (st == VL_OK) {
    double tv = 0;
    for (int64_t b = 0; b < nb; b++)
      for (int64_t j = 0; j < g; j++) tv += part[b * g + j];
    *total_var = n > 1 ? tv / (double)(n - 1) : 0;
  }
  free(part);
  return st;
}

/* ---------- the Gram matrix ---------- */

/* G (m x m, row-major upper triangle, double) += the Gram matrix of an f32 block B: B^T B
 * (trans: B is `inner` rows x m, row stride ld) or B B^T (B is m x `inner`, row stride ld).
 * The triangle is cut into PANELS row panels of about equal work. A panel takes B in slices of
 * GRAM_INNER rows (trans) or columns: per slice one SYRK (the panel's diagonal block) and one
 * GEMM (the rest of its rows) into an f32 buffer, added to its part of G in double, which
 * stays in cache over the slices. So every f32 sum runs over at most GRAM_INNER products, and
 * the panels, not the thread count, decide who computes what: the same result on any number
 * of threads. */
enum { PANELS = 8, GRAM_INNER = VL_GRAM_SLICE }; /* the same slices as gram_f32's kernel */

typedef struct {
  const void *B;
  int64_t ld, inner, m;
  bool trans;
  bool f64;    /* B is double: DSYRK/DGEMM straight into G (no slices needed) */
  bool assign; /* the first block: its first slice is stored, not added (G need not be zeroed) */
  double *G;
  const int64_t *bounds; /* PANELS + 1 row boundaries */
  volatile int failed;
} gram_job;

static void gram_panel(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)lo;
  (void)hi;
  gram_job *j = arg;
  const int64_t a = j->bounds[chunk], b = j->bounds[chunk + 1], m = j->m, w = m - a;
  if (a >= b || j->inner == 0) return;
  if (j->f64) {
    const double *B = j->B, beta = j->assign ? 0.0 : 1.0;
    const blasint nr = (blasint)(b - a), K = (blasint)j->inner, ld = (blasint)j->ld,
                  lg = (blasint)m;
    double *Ga = j->G + a * m + a;
    if (j->trans) {
      cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, nr, K, 1.0, B + a, ld, beta, Ga, lg);
      if (b < m)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nr, (blasint)(m - b), K, 1.0, B + a,
                    ld, B + b, ld, beta, Ga + (b - a), lg);
    } else {
      cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, nr, K, 1.0, B + a * j->ld, ld, beta,
                  Ga, lg);
      if (b < m)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, (blasint)(m - b), K, 1.0,
                    B + a * j->ld, ld, B + b * j->ld, ld, beta, Ga + (b - a), lg);
    }
    return;
  }
  float *P = malloc(sizeof(float) * (size_t)((b - a) * w)); /* rows [a, b), columns [a, m) */
  if (!P) {
    j->failed = 1;
    return;
  }
  const blasint nr = (blasint)(b - a), ld = (blasint)j->ld;
  for (int64_t s = 0; s < j->inner; s += GRAM_INNER) {
    const blasint K = (blasint)(j->inner - s < GRAM_INNER ? j->inner - s : GRAM_INNER);
    if (j->trans) {
      const float *Bs = (const float *)j->B + s * j->ld;
      cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, nr, K, 1.0f, Bs + a, ld, 0.0f, P,
                  (blasint)w);
      if (b < m)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nr, (blasint)(m - b), K, 1.0f,
                    Bs + a, ld, Bs + b, ld, 0.0f, P + (b - a), (blasint)w);
    } else {
      const float *Bs = (const float *)j->B + s;
      cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, nr, K, 1.0f, Bs + a * j->ld, ld,
                  0.0f, P, (blasint)w);
      if (b < m)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, (blasint)(m - b), K, 1.0f,
                    Bs + a * j->ld, ld, Bs + b * j->ld, ld, 0.0f, P + (b - a), (blasint)w);
    }
    for (int64_t i = a; i < b; i++) {
      double *gi = j->G + i * m;
      const float *pi = P + (i - a) * w - a;
      if (j->assign && s == 0)
        for (int64_t c = i; c < m; c++) gi[c] = pi[c];
      else
        for (int64_t c = i; c < m; c++) gi[c] += pi[c];
    }
  }
  free(P);
}

static vl_status gram_add(vl_ctx *ctx, gram_job *job, const void *B, int64_t inner) {
  job->B = B;
  job->inner = inner;
  vl_status st = vl_parallel_blocks(ctx, PANELS, 1, gram_panel, job);
  job->assign = false;
  return st ? st : job->failed ? VL_ERR_NOMEM : VL_OK;
}

/* G (m x m; its upper triangle is written) = the Gram matrix of the centred X: by_rows X_c X_c^T from column
 * blocks of cw columns (*keep: the last block, the whole X_c when cw == g), else X_c^T X_c from
 * blocks of rows (*keep NULL). own: gram_f32's AVX-512 kernel (f32 data) instead of
 * SSYRK/SGEMM. */
static vl_status build_gram(vl_ctx *ctx, const matrix *x, bool by_rows, int64_t cw, bool own,
                            double *G, void **keep) {
  const int64_t n = x->n, g = x->g, m = by_rows ? n : g;
  /* row panels of the upper triangle with about equal work (row i costs m - i) */
  int64_t bounds[PANELS + 1];
  for (int p = 0; p <= PANELS; p++) {
    double f = 1.0 - sqrt(1.0 - (double)p / PANELS);
    bounds[p] = p == PANELS ? m : (int64_t)(f * (double)m);
  }
  gram_job gj = {NULL, 0, 0, m, !by_rows, x->f64, true, G, bounds, 0};
  vl_status st = VL_OK;
  const size_t es = x->f64 ? sizeof(double) : sizeof(float);
  char *B = NULL;
  *keep = NULL;
  if (by_rows) {
    B = scratch(es * (size_t)(n * cw));
    if (!B) return VL_ERR_NOMEM;
    /* own kernel: the block's columns (genes) are the rows of the sum, packed in sub-blocks of
     * sw columns (a multiple of GRAM_INNER, ~8 MB packed) */
    int64_t sw = (((int64_t)8 << 20) / (int64_t)sizeof(float) / (n + VL_GRAM_PANEL)) / GRAM_INNER * GRAM_INNER;
    if (sw < GRAM_INNER) sw = GRAM_INNER;
    if (sw > cw) sw = cw;
    float *P = own ? scratch(sizeof(float) * (size_t)vl_gram_f32_packed_size(sw, n)) : NULL;
    if (own && !P) {
      free(B);
      return VL_ERR_NOMEM;
    }
    for (int64_t c0 = 0; c0 < g && !st; c0 += cw) {
      int64_t c1 = c0 + cw < g ? c0 + cw : g;
      block_job b = {x, 0, c0, c1, c1 - c0, B};
      vl_parallel_for(ctx, n, 16, fill_rows, &b);
      if (!own) {
        gj.ld = c1 - c0;
        st = gram_add(ctx, &gj, B, c1 - c0);
        continue;
      }
      for (int64_t s0 = c0; s0 < c1 && !st; s0 += sw) {
        const int64_t s1 = s0 + sw < c1 ? s0 + sw : c1;
        transpose_job tj = {(const float *)B + (s0 - c0), c1 - c0, n, s1 - s0, P};
        vl_parallel_for(ctx, (n + VL_GRAM_PANEL - 1) / VL_GRAM_PANEL, 1, pack_transposed, &tj);
        st = vl_gram_f32_add(ctx, P, s1 - s0, n, G, s0 == 0);
      }
    }
    free(P);
    if (!st) *keep = B;
    else free(B);
    return st;
  }
  int64_t rh = (((int64_t)8 << 20) / (int64_t)es / g) / GRAM_INNER * GRAM_INNER; /* ~8 MB */
  if (rh < GRAM_INNER) rh = GRAM_INNER;
  if (rh > n) rh = n;
  if (own) { /* f32 data, AVX-512: chunks of rh rows packed in panels for gram_f32 */
    float *P = scratch(sizeof(float) * (size_t)vl_gram_f32_packed_size(rh, g));
    if (!P) return VL_ERR_NOMEM;
    for (int64_t r0 = 0; r0 < n && !st; r0 += rh) {
      int64_t r1 = r0 + rh < n ? r0 + rh : n;
      panel_job pj = {x, r0, r1 - r0, P, 0};
      vl_parallel_for(ctx, r1 - r0, 16, fill_panels, &pj);
      st = pj.failed ? VL_ERR_NOMEM : vl_gram_f32_add(ctx, P, r1 - r0, g, G, r0 == 0);
    }
    free(P);
    return st;
  }
  B = scratch(es * (size_t)(rh * g));
  if (!B) return VL_ERR_NOMEM;
  gj.ld = g;
  for (int64_t r0 = 0; r0 < n && !st; r0 += rh) {
    int64_t r1 = r0 + rh < n ? r0 + rh : n;
    block_job b = {x, r0, 0, g, g, B};
    vl_parallel_for(ctx, r1 - r0, 16, fill_rows, &b);
    st = gram_add(ctx, &gj, B, r1 - r0);
  }
  free(B);
  return st;
}

/* ---------- top eigenpairs of the Gram matrix ---------- */

/* Up to this order all eigenpairs by divide and conquer (dsyevd) cost less than a subset by
 * bisection and inverse iteration (dsyevr): 0.74 against 1.22 ms at order 100. */
enum { SMALL_ORDER = 160 };

/* The cnt largest eigenpairs of the symmetric n x n matrix A (lower triangle, column-major;
 * overwritten) through its tridiagonal form: Householder reduction (dsytrd), all eigenvalues of
 * the tridiagonal matrix by root-free QR (dsterf), the top cnt eigenvectors by inverse iteration
 * (dstein, which re-orthogonalises clustered ones), and back to A's basis (dormtr). These are
 * dsyevr's own steps for a subset except that its bisection (dstebz), most of its time at the
 * orders of the Lanczos checks, is replaced by dsterf: 1.1 against 2.9 ms at order 184.
 * VL_ERR_VALUE when the tridiagonal matrix splits into blocks (dstein would need them as dstebz
 * finds them) or LAPACK reports a failure: lapack_top then solves its copy by dsyevd/dsyevr. */
static vl_status tridiagonal_top(double *A, int64_t n, int64_t cnt, double *w, double *z) {
  int N = (int)n, M = (int)cnt, info = 0, lwork = -1;
  double wq1 = 0, wq2 = 0, *work = NULL;
  double *d = malloc(sizeof(double) * (size_t)n), *e = malloc(sizeof(double) * (size_t)n),
         *tau = malloc(sizeof(double) * (size_t)n), *ev = malloc(sizeof(double) * (size_t)n),
         *ee = malloc(sizeof(double) * (size_t)n);
  int *iblock = malloc(sizeof(int) * (size_t)cnt), *iwork = malloc(sizeof(int) * (size_t)n),
      *ifail = malloc(sizeof(int) * (size_t)cnt);
  vl_status st = VL_ERR_NOMEM;
  if (!d || !e || !tau || !ev || !ee || !iblock || !iwork || !ifail) goto out;
  dsytrd_("L", &N, A, &N, d, e, tau, &wq1, &lwork, &info, 1);
  if (info == 0) dormtr_("L", "L", "N", &N, &M, A, &N, tau, z, &N, &wq2, &lwork, &info, 1, 1, 1);
  st = VL_ERR_VALUE;
  if (info != 0) goto out;
  lwork = (int)(wq1 > wq2 ? wq1 : wq2);
  if (lwork < 5 * N) lwork = 5 * N;
  st = VL_ERR_NOMEM;
  if (!(work = malloc(sizeof(double) * (size_t)lwork))) goto out;
  st = VL_ERR_VALUE;
  dsytrd_("L", &N, A, &N, d, e, tau, work, &lwork, &info, 1);
  if (info != 0) goto out;
  for (int64_t j = 1; j < n; j++) /* dstebz's splitting test */
    if (e[j - 1] * e[j - 1] <= fabs(d[j] * d[j - 1]) * DBL_EPSILON * DBL_EPSILON + DBL_MIN) goto out;
  memcpy(ev, d, sizeof(double) * (size_t)n);
  memcpy(ee, e, sizeof(double) * (size_t)n);
  dsterf_(&N, ev, ee, &info); /* ascending */
  if (info != 0) goto out;
  memcpy(w, ev + (n - cnt), sizeof(double) * (size_t)cnt);
  for (int64_t i = 0; i < cnt; i++) iblock[i] = 1;
  dstein_(&N, d, e, &M, w, iblock, &N, z, &N, work, iwork, ifail, &info);
  if (info != 0) goto out;
  dormtr_("L", "L", "N", &N, &M, A, &N, tau, z, &N, work, &lwork, &info, 1, 1, 1);
  if (info != 0) goto out;
  st = VL_OK;
out:
  free(work);
  free(d);
  free(e);
  free(tau);
  free(ev);
  free(ee);
  free(iblock);
  free(iwork);
  free(ifail);
  return st;
}

/* Orders from which tridiagonal_top is tried first, and up to which A is copied for the
 * fallback (larger orders go to dsyevr directly) */
enum { TRIDIAGONAL_MIN = 32, TRIDIAGONAL_MAX = 4096 };

/* tridiagonal_top on A with A's lower triangle put back when it returns VL_ERR_VALUE */
static vl_status tridiagonal_or_restore(double *A, int64_t n, int64_t cnt, double *w, double *z) {
  double *copy = scratch(sizeof(double) * (size_t)(n * n));
  if (!copy) return VL_ERR_NOMEM;
  for (int64_t j = 0; j < n; j++) /* the lower triangle, column-major */
    memcpy(copy + j * n + j, A + j * n + j, sizeof(double) * (size_t)(n - j));
  vl_status st = tridiagonal_top(A, n, cnt, w, z);
  if (st == VL_ERR_VALUE)
    for (int64_t j = 0; j < n; j++)
      memcpy(A + j * n + j, copy + j * n + j, sizeof(double) * (size_t)(n - j));
  free(copy);
  return st;
}

/* The cnt largest eigenpairs of the symmetric n x n matrix A (lower triangle, column-major;
 * overwritten): w[0..cnt) ascending, z column j (n x cnt, column-major) the eigenvector of
 * w[j]. From TRIDIAGONAL_MIN to TRIDIAGONAL_MAX tridiagonal_top first; else, or where that
 * fails, LAPACK dsyevd on the whole matrix up to SMALL_ORDER, dsyevr for the subset above.
 * Callers run it with OpenBLAS single-threaded: the tridiagonal reduction is a long series of
 * small matrix-vector products, between which OpenBLAS's threads spin and yield (several times
 * slower than one thread on 2 shared cores). VL_ERR_VALUE with LAPACK's *info on failure. */
static vl_status lapack_top(double *A, int64_t n, int64_t cnt, double *w, double *z, int *info) {
  *info = 0;
  if (n >= TRIDIAGONAL_MIN && n <= TRIDIAGONAL_MAX) {
    const vl_status t = tridiagonal_or_restore(A, n, cnt, w, z);
    if (t != VL_ERR_VALUE) return t;
  }
  const bool all = n <= SMALL_ORDER;
  int N = (int)n, il = (int)(n - cnt + 1), iu = N, found = 0, lwork = -1, liwork = -1, iwq = 0;
  double vl = 0, vu = 0, abstol = 0, wq = 0, *work = NULL;
  double *wall = malloc(sizeof(double) * (size_t)n); /* LAPACK may write n values */
  int *iwork = NULL, *isuppz = malloc(sizeof(int) * (size_t)(2 * n));
  vl_status st = VL_ERR_NOMEM;
  if (!wall || !isuppz) goto out;
  for (int pass = 0; pass < 2; pass++) { /* the workspace query, then the solve */
    double *wk = pass ? work : &wq;
    int *iwk = pass ? iwork : &iwq;
    if (all)
      dsyevd_("V", "L", &N, A, &N, wall, wk, &lwork, iwk, &liwork, info, 1, 1);
    else
      dsyevr_("V", "I", "L", &N, A, &N, &vl, &vu, &il, &iu, &abstol, &found, wall, z, &N, isuppz,
              wk, &lwork, iwk, &liwork, info, 1, 1, 1);
    if (*info != 0) {
      st = VL_ERR_VALUE;
      goto out;
    }
    if (pass == 0) {
      lwork = (int)wq;
      liwork = iwq;
      work = malloc(sizeof(double) * (size_t)lwork);
      iwork = malloc(sizeof(int) * (size_t)liwork);
      if (!work || !iwork) goto out;
    }
  }
  st = VL_OK;
  if (all) { /* ascending: the top cnt are the last ones, their vectors the last columns */
    memcpy(w, wall + (n - cnt), sizeof(double) * (size_t)cnt);
    memcpy(z, A + (n - cnt) * n, sizeof(double) * (size_t)(n * cnt));
  } else if (found == (int)cnt) {
    memcpy(w, wall, sizeof(double) * (size_t)cnt);
  } else {
    st = VL_ERR_VALUE;
  }
out:
  free(work);
  free(iwork);
  free(isuppz);
  free(wall);
  return st;
}

/* The k largest eigenpairs of G (m x m, as lapack_top's A) with an error message. */
static vl_status exact_top(double *G, int64_t m, int64_t k, double *w, double *z,
                           vl_error *err) {
  int info = 0;
  vl_status st = lapack_top(G, m, k, w, z, &info);
  if (st == VL_ERR_NOMEM)
    return vl_fail(err, st, "pca: out of memory (eigenproblem of order %lld)", (long long)m);
  if (st)
    return vl_fail(err, st, "pca: LAPACK eigensolver failed (info %d, order %lld, %lld "
                   "eigenpairs)", info, (long long)m, (long long)k);
  return VL_OK;
}

/* Block Lanczos with full reorthogonalisation on the symmetric G (m x m, both triangles),
 * optionally on the complement of the orthonormal columns of D (m x nd): the operator is then
 * (I - D D^T) G (I - D D^T). Block size LB, at most `cap` basis vectors (a multiple of LB).
 * Q holds the basis (m x (cap + LB)), W = op(Q) (m x cap), H = Q^T W (cap x cap, only the
 * columns so far). The start block is fixed pseudo-random (philox), so results are
 * reproducible; they do not depend on it beyond the checked accuracy. */
enum { LB = 4 };

typedef struct {
  vl_ctx *ctx;
  const float *G; /* the operator rounded to f32, in row panels (see panel_layout) */
  int64_t m;
  const double *D;
  int64_t nd;
  int64_t cap;
  double *Q, *W, *H, *C, *Dc, *Xt;
} krylov;

typedef struct {
  const float *G;
  const double *Xt; /* the block interleaved: m x LB row-major (32-byte aligned) */
  double *Y;        /* m x LB column-major */
  int64_t m;
} rows_job;


/* The f32 copy of the symmetric G in row panels of PR rows: panel b holds, for every column c,
 * the PR values G[b PR + r, c] side by side (rows past m are zero). A product then streams
 * each panel once, and every value loaded serves PR x LB multiply-adds. */
enum { PR = 8 };

static float *panel_layout(const double *G, int64_t m) {
  const int64_t nb = (m + PR - 1) / PR;
  float *P = scratch(sizeof(float) * (size_t)(nb * m * PR));
  if (!P) return NULL;
  for (int64_t b = 0; b < nb; b++)
    for (int64_t c = 0; c < m; c++)
      for (int64_t r = 0; r < PR; r++) {
        int64_t i = b * PR + r;
        /* G holds the upper triangle, row-major */
        P[(b * m + c) * PR + r] = i < m ? (float)(i <= c ? G[i * m + c] : G[c * m + i]) : 0.0f;
      }
  return P;
}

typedef double v8d __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));
typedef float v8fu __attribute__((vector_size(32), aligned(4)));
typedef double v8u __attribute__((vector_size(64), aligned(8))); /* unaligned loads */

/* Y = G X for the row panels [lo, hi): per column of G, the panel's PR f32 values widened to
 * double and multiplied by the LB values of X in that row; even and odd columns in separate
 * sums (2 LB partial sums, each in a fixed order) */
VL_CLONES_AVX512 static void product_rows(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)chunk;
  const rows_job *j = arg;
  const int64_t m = j->m;
  for (int64_t b = lo; b < hi; b++) {
    const float *p = j->G + b * m * PR;
    v8d a[LB], e[LB];
#pragma GCC unroll 8
    for (int t = 0; t < LB; t++) a[t] = e[t] = (v8d){0};
    int64_t c = 0;
    for (; c + 2 <= m; c += 2) {
      const v8d g = __builtin_convertvector(*(const v8fu *)(p + c * PR), v8d);
      const v8d h = __builtin_convertvector(*(const v8fu *)(p + (c + 1) * PR), v8d);
      const double *q = j->Xt + c * LB;
#pragma GCC unroll 8
      for (int t = 0; t < LB; t++) {
        a[t] += g * q[t];
        e[t] += h * q[LB + t];
      }
    }
    if (c < m) {
      const v8d g = __builtin_convertvector(*(const v8fu *)(p + c * PR), v8d);
      const double *q = j->Xt + c * LB;
#pragma GCC unroll 8
      for (int t = 0; t < LB; t++) a[t] += g * q[t];
    }
    for (int t = 0; t < LB; t++) a[t] += e[t];
    for (int64_t r = 0; r < PR && b * PR + r < m; r++)
      for (int t = 0; t < LB; t++) j->Y[t * m + b * PR + r] = a[t][r];
  }
}

/* C[t * ldc + i] = A[:, i] . Y[:, t] for the d columns of A (m x d) and the LB columns of Y
 * (both column-major, leading dimension m): skinny products BLAS would pack A for. Two columns
 * of A at a time, eight lanes each. */
VL_CLONES_AVX512 static void skinny_tdot(const double *A, int64_t m, int64_t d, const double *Y,
                                  double *C, int64_t ldc) {
  const int64_t m8 = m / 8 * 8;
  int64_t i = 0;
  for (; i + 2 <= d; i += 2) {
    const double *a = A + i * m, *b = a + m;
    v8d s[LB], u[LB];
#pragma GCC unroll 8
    for (int t = 0; t < LB; t++) s[t] = u[t] = (v8d){0};
    for (int64_t r = 0; r < m8; r += 8) {
      const v8d av = *(const v8u *)(a + r), bv = *(const v8u *)(b + r);
#pragma GCC unroll 8
      for (int t = 0; t < LB; t++) {
        const v8d y = *(const v8u *)(Y + t * m + r);
        s[t] += av * y;
        u[t] += bv * y;
      }
    }
    for (int t = 0; t < LB; t++) {
      double x = 0, z = 0;
      for (int l = 0; l < 8; l++) {
        x += s[t][l];
        z += u[t][l];
      }
      for (int64_t r = m8; r < m; r++) {
        x += a[r] * Y[t * m + r];
        z += b[r] * Y[t * m + r];
      }
      C[t * ldc + i] = x;
      C[t * ldc + i + 1] = z;
    }
  }
  for (; i < d; i++) {
    const double *a = A + i * m;
    v8d s[LB];
#pragma GCC unroll 8
    for (int t = 0; t < LB; t++) s[t] = (v8d){0};
    for (int64_t r = 0; r < m8; r += 8) {
      const v8d av = *(const v8u *)(a + r);
#pragma GCC unroll 8
      for (int t = 0; t < LB; t++) s[t] += av * *(const v8u *)(Y + t * m + r);
    }
    for (int t = 0; t < LB; t++) {
      double x = 0;
      for (int l = 0; l < 8; l++) x += s[t][l];
      for (int64_t r = m8; r < m; r++) x += a[r] * Y[t * m + r];
      C[t * ldc + i] = x;
    }
  }
}

/* Y (m x LB) -= A C for A (m x d) and C (d x LB, leading dimension ldc), column-major: 16 rows of
 * Y kept in registers while the d columns of A pass (each element's updates in column order) */
VL_CLONES_AVX512 static void skinny_sub(const double *A, int64_t m, int64_t d, const double *C,
                                 int64_t ldc, double *Y) {
  const int64_t m16 = m / 16 * 16;
  for (int64_t r = 0; r < m16; r += 16) {
    v8d y[LB][2];
#pragma GCC unroll 8
    for (int t = 0; t < LB; t++) {
      y[t][0] = *(v8u *)(Y + t * m + r);
      y[t][1] = *(v8u *)(Y + t * m + r + 8);
    }
    for (int64_t i = 0; i < d; i++) {
      const v8d a0 = *(const v8u *)(A + i * m + r), a1 = *(const v8u *)(A + i * m + r + 8);
#pragma GCC unroll 8
      for (int t = 0; t < LB; t++) {
        const double c = C[t * ldc + i];
        y[t][0] -= a0 * c;
        y[t][1] -= a1 * c;
      }
    }
#pragma GCC unroll 8
    for (int t = 0; t < LB; t++) {
      *(v8u *)(Y + t * m + r) = y[t][0];
      *(v8u *)(Y + t * m + r + 8) = y[t][1];
    }
  }
  for (int64_t r = m16; r < m; r++)
    for (int t = 0; t < LB; t++) {
      double y = Y[t * m + r];
      for (int64_t i = 0; i < d; i++) y -= A[i * m + r] * C[t * ldc + i];
      Y[t * m + r] = y;
    }
}

/* x (m x LB) -= D (D^T x), twice */
static void deflate(const krylov *kr, double *x) {
  if (kr->nd == 0) return;
  const blasint m = (blasint)kr->m, nd = (blasint)kr->nd;
  for (int pass = 0; pass < 2; pass++) {
    skinny_tdot(kr->D, m, nd, x, kr->Dc, nd);
    skinny_sub(kr->D, m, nd, kr->Dc, nd, x);
  }
}

/* Orthonormalises the LB columns of Y (m x LB) against Q[:, :d] and each other (classical
 * Gram-Schmidt twice, then modified Gram-Schmidt twice within the block). A column that
 * vanishes (an invariant subspace was found) is replaced by fresh noise made orthogonal too. */
static void orthonormalize(const krylov *kr, int64_t d, double *Y, uint32_t stream, int passes) {
  const int64_t m = kr->m;
  double before[LB];
  for (int attempt = 0; attempt < 3; attempt++) {
    for (int c = 0; c < LB; c++) before[c] = cblas_dnrm2((blasint)m, Y + c * m, 1);
    deflate(kr, Y);
    if (d > 0)
      for (int pass = 0; pass < (attempt == 0 ? passes : 2); pass++) {
        skinny_tdot(kr->Q, m, d, Y, kr->C, d);
        skinny_sub(kr->Q, m, d, kr->C, d, Y);
      }
    int redo = 0;
    for (int c = 0; c < LB; c++) {
      double *y = Y + c * m;
      for (int pass = 0; pass < 2; pass++)
        for (int p = 0; p < c; p++) {
          double t = cblas_ddot((blasint)m, Y + p * m, 1, y, 1);
          cblas_daxpy((blasint)m, -t, Y + p * m, 1, y, 1);
        }
      double nrm = cblas_dnrm2((blasint)m, y, 1);
      if (!(nrm > 1e-10 * before[c]) || !(nrm > 0)) {
        /* breakdown: a new random direction, orthogonalised in the next attempt */
        const uint32_t key[2] = {0x70636121u, 0x6c616e63u};
        for (int64_t i = 0; i < m; i += 4) {
          uint32_t ctr[4] = {(uint32_t)i, (uint32_t)d, (uint32_t)c, stream + 7919u * (uint32_t)attempt},
                   out[4];
          vl_philox_block(ctr, key, out);
          for (int t = 0; t < 4 && i + t < m; t++) y[i + t] = (double)out[t] * 0x1p-32 - 0.5;
        }
        redo = 1;
      } else {
        cblas_dscal((blasint)m, 1.0 / nrm, y, 1);
      }
    }
    if (!redo) return;
  }
}

/* Extends the basis by one block: W[:, d:d+LB] = op(Q[:, d:d+LB]), the new columns of H, and
 * the next block Q[:, d+LB : d+2LB]. Returns the new size d + LB. */
static vl_status krylov_step(krylov *kr, int64_t d, uint32_t stream) {
  const int64_t m = kr->m, dn = d + LB;
  double *Qj = kr->Q + d * m, *Wj = kr->W + d * m, *Y = kr->Q + dn * m;
  for (int64_t i = 0; i < m; i++)
    for (int t = 0; t < LB; t++) kr->Xt[i * LB + t] = Qj[t * m + i];
  rows_job rj = {kr->G, kr->Xt, Wj, m};
  const int64_t nb = (m + PR - 1) / PR;
  vl_status st = vl_parallel_blocks(kr->ctx, nb, (nb + 3) / 4, product_rows, &rj);
  if (st) return st;
  deflate(kr, Wj);
  /* H[:dn, d:dn] = Q[:, :dn]^T W_j, and its transpose */
  skinny_tdot(kr->Q, m, dn, Wj, kr->C, dn);
  for (int64_t c = 0; c < LB; c++)
    for (int64_t i = 0; i < dn; i++) {
      double v = kr->C[c * dn + i];
      kr->H[(d + c) * kr->cap + i] = v;
      kr->H[i * kr->cap + d + c] = v;
    }
  /* Y = W_j - Q C (the first Gram-Schmidt pass, with H's column), then one more pass */
  memcpy(Y, Wj, sizeof(double) * (size_t)(m * LB));
  skinny_sub(kr->Q, m, dn, kr->C, dn, Y);
  orthonormalize(kr, dn, Y, stream, 1);
  return VL_OK;
}

static void start_block(krylov *kr, uint32_t stream) {
  memset(kr->Q, 0, sizeof(double) * (size_t)(kr->m * LB));
  orthonormalize(kr, 0, kr->Q, stream, 2); /* zero columns: all replaced by noise */
}

/* Ritz pairs of the current basis Q[:, :d]: the top cnt values ascending in th, their vectors
 * U = Q S and residuals R = W S - U diag(th) (both m x cnt). Returns 0 on success. */
static int ritz(const krylov *kr, int64_t d, int64_t cnt, double *th, double *U, double *R,
                double *A, double *S) {
  for (int64_t c = 0; c < d; c++)
    for (int64_t i = 0; i < d; i++)
      A[c * d + i] = 0.5 * (kr->H[c * kr->cap + i] + kr->H[i * kr->cap + c]);
  int info = 0;
  if (lapack_top(A, d, cnt, th, S, &info) != VL_OK) return -1;
  const blasint m = (blasint)kr->m;
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, m, (blasint)cnt, (blasint)d, 1.0, kr->Q,
              m, S, (blasint)d, 0.0, U, m);
  if (R) {
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, m, (blasint)cnt, (blasint)d, 1.0,
                kr->W, m, S, (blasint)d, 0.0, R, m);
    for (int64_t c = 0; c < cnt; c++) cblas_daxpy(m, -th[c], U + c * m, 1, R + c * m, 1);
  }
  return 0;
}

static bool krylov_init(krylov *kr, vl_ctx *ctx, const float *G, int64_t m, const double *D,
                        int64_t nd, int64_t cap) {
  *kr = (krylov){ctx, G, m, D, nd, cap, NULL, NULL, NULL, NULL, NULL, NULL};
  kr->Xt = aligned_alloc(32, sizeof(double) * (size_t)(m * LB));
  kr->Q = scratch(sizeof(double) * (size_t)(m * (cap + LB)));
  kr->W = scratch(sizeof(double) * (size_t)(m * cap));
  kr->H = scratch(sizeof(double) * (size_t)(cap * cap));
  kr->C = malloc(sizeof(double) * (size_t)((cap + LB) * LB));
  kr->Dc = malloc(sizeof(double) * (size_t)((nd > 0 ? nd : 1) * LB));
  return kr->Q && kr->W && kr->H && kr->C && kr->Dc && kr->Xt;
}

static void krylov_free(krylov *kr) {
  free(kr->Q);
  free(kr->W);
  free(kr->H);
  free(kr->C);
  free(kr->Dc);
  free(kr->Xt);
}

/* The pairs are accepted when every one of the k has residual ||G u - t u|| <= ACCEPT times
 * its distance to the nearest other Ritz value (that ratio bounds the angle to the exact
 * eigenvector; the eigenvalue's error is about its square times the gap). */
static const double ACCEPT = 1e-3;
enum { CHECK_STEPS = 6 }; /* blocks of the complement check */

/* Largest eigenvalue estimate of G on the complement of the k columns of U: a short block
 * Lanczos run (its Ritz values never exceed the true one). Negative on failure. */
static double complement_top(vl_ctx *ctx, const float *G, int64_t m, const double *U, int64_t k,
                             vl_status *st) {
  krylov kr = {0};
  const int64_t cap = CHECK_STEPS * LB;
  double top = -1;
  double th[1], *S = malloc(sizeof(double) * (size_t)cap), *A = scratch(sizeof(double) * (size_t)(cap * cap)),
                *v = malloc(sizeof(double) * (size_t)m);
  *st = VL_OK;
  if (S && A && v && krylov_init(&kr, ctx, G, m, U, k, cap)) {
    start_block(&kr, 0xc0u);
    int64_t d = 0;
    while (d < cap && *st == VL_OK) *st = krylov_step(&kr, d, 0xc0u), d += LB;
    if (*st == VL_OK && ritz(&kr, d, 1, th, v, NULL, A, S) == 0) top = th[0];
  } else {
    *st = VL_ERR_NOMEM;
  }
  krylov_free(&kr);
  free(S);
  free(A);
  free(v);
  return top;
}

/* Top k eigenpairs of G (m x m, both triangles) by block Lanczos, checked (see ACCEPT) and then
 * checked for a missed eigenvalue (a multiple one beyond the block size): the largest
 * eigenvalue left on the complement of the accepted vectors must not exceed the k-th.
 * Returns 1 with (w, z) as exact_top's, 0 when the caller must use exact_top. */
static int lanczos_top(vl_ctx *ctx, const float *G, int64_t m, int64_t k, double *w, double *z,
                       vl_status *st) {
  int64_t cap = (int64_t)(0.6 * (double)m);
  if (cap > 12 * k + 64) cap = 12 * k + 64;
  cap = cap / LB * LB;
  *st = VL_OK;
  if (cap < 2 * k + 2 * LB) return 0;
  krylov kr;
  const int64_t cnt = k + 1;
  double *th = malloc(sizeof(double) * (size_t)cnt);
  double *U = malloc(sizeof(double) * (size_t)(m * cnt));
  double *R = malloc(sizeof(double) * (size_t)(m * cnt));
  double *A = scratch(sizeof(double) * (size_t)(cap * cap));
  double *S = malloc(sizeof(double) * (size_t)(cap * cnt));
  int ok = 0;
  if (!krylov_init(&kr, ctx, G, m, NULL, 0, cap) || !th || !U || !R || !A || !S) {
    *st = VL_ERR_NOMEM;
    goto out;
  }
  start_block(&kr, 1);
  /* Checks cost a small eigenproblem each: the first after 5k vectors, the next where the
   * worst ratio q = r / (ACCEPT gap) extrapolates to 1 (log q falls about linearly with the
   * basis size), at least LB and at most 2 * every further on */
  int64_t d = 0, next_check = 5 * k > 2 * k + 2 * LB ? 5 * k : 2 * k + 2 * LB, prev_d = 0;
  const int64_t every = k > 16 ? k : 16;
  double prev_q = 0;
  while (!ok && d < cap) {
    *st = krylov_step(&kr, d, 1);
    if (*st) goto out;
    d += LB;
    if (d < next_check && d < cap) continue;
    if (ritz(&kr, d, cnt, th, U, R, A, S) != 0) goto out;
    double q = 0;
    for (int64_t c = 1; c < cnt; c++) {
      double gap = th[c] - th[c - 1];
      if (c + 1 < cnt && th[c + 1] - th[c] < gap) gap = th[c + 1] - th[c];
      double r = cblas_dnrm2((blasint)m, R + c * m, 1) / (ACCEPT * gap);
      if (!(r <= q)) q = r; /* NaN too */
    }
    ok = q <= 1;
    if (ok) {
      /* th[1..k] ascending are the top k; U's column 0 is the (k+1)-th. Converged pairs need
       * not be the top ones yet (one may still be forming): continue while the complement
       * holds a larger eigenvalue */
      double rest = complement_top(ctx, G, m, U + m, k, st);
      if (*st) goto out;
      ok = rest >= 0 && rest <= th[1] + 1e-10 * fabs(th[cnt - 1]);
      if (!ok) q = 2; /* no extrapolation from here */
    }
    int64_t step = every;
    if (!ok && prev_d > 0 && q < prev_q && q > 0) {
      double need = (double)(d - prev_d) * log(q) / log(prev_q / q); /* more vectors */
      step = (int64_t)ceil(1.1 * need) + LB;
      if (step > 2 * every) step = 2 * every;
    }
    if (step < LB) step = LB;
    prev_d = d;
    prev_q = q;
    next_check = d + step;
  }
  if (ok) {
    memcpy(w, th + 1, sizeof(double) * (size_t)k);
    memcpy(z, U + m, sizeof(double) * (size_t)(m * k));
  }
out:
  krylov_free(&kr);
  free(th);
  free(U);
  free(R);
  free(A);
  free(S);
  return ok;
}

/* Top k eigenpairs of G (row-major upper triangle, i.e. LAPACK's column-major lower one; G is
 * overwritten): block Lanczos on an f32 copy where it pays (order >= 256, k well below the
 * order, not `exact`), else or when its checks fail LAPACK dsyevr. OpenBLAS runs
 * single-threaded (our pool splits the products). */
static vl_status top_eigenpairs(vl_ctx *ctx, double *G, int64_t m, int64_t k, bool exact,
                                double *w, double *z, vl_error *err) {
  int saved = vl_blas_single_begin();
  vl_status st = VL_OK;
  int ok = 0;
  if (m >= 256 && !exact) {
    float *Gp = panel_layout(G, m);
    if (Gp) ok = lanczos_top(ctx, Gp, m, k, w, z, &st);
    free(Gp);
  }
  if (st == VL_ERR_INTERRUPTED)
    st = vl_fail(err, st, "pca: interrupted");
  else if (st == VL_ERR_NOMEM)
    st = vl_fail(err, st, "pca: out of memory (eigenproblem of order %lld)", (long long)m);
  else if (!ok)
    st = exact_top(G, m, k, w, z, err);
  vl_blas_single_end(saved);
  return st;
}

/* ---------- scores and loadings ---------- */

enum { SCORE_ROWS = 1024 };

/* scores = X_c V for blocks of rows: each block centred into its own buffer, one SGEMM (DGEMM
 * for f64 data) */
typedef struct {
  const matrix *x;
  const void *V; /* g x k, f32 (f64 for f64 data); score_tiles: f32 panels (see there) */
  int64_t k;
  double *U; /* n x k */
  volatile int failed;
} score_job;

static void score_rows(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)chunk;
  score_job *j = arg;
  const int64_t g = j->x->g, k = j->k, r = hi - lo;
  const bool f64 = j->x->f64;
  void *B = malloc((f64 ? sizeof(double) : sizeof(float)) * (size_t)(r * g));
  float *S = f64 ? NULL : malloc(sizeof(float) * (size_t)(r * k));
  if (B && (f64 || S)) {
    block_job b = {j->x, lo, 0, g, g, B};
    fill_block(&b, 0, r);
    if (f64) {
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)r, (blasint)k, (blasint)g,
                  1.0, B, (blasint)g, j->V, (blasint)k, 0.0, j->U + lo * k, (blasint)k);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)r, (blasint)k, (blasint)g,
                  1.0f, B, (blasint)g, j->V, (blasint)k, 0.0f, S, (blasint)k);
      for (int64_t t = 0; t < r * k; t++) j->U[lo * k + t] = S[t];
    }
  } else {
    j->failed = 1;
  }
  free(B);
  free(S);
}

/* loadings = X_c^T U for a block of columns: Vf rows [lo, hi) from columns [lo, hi) of B
 * (n x bw, row-major, centred), one SGEMM (DGEMM) per fixed block of LOADING_COLS columns with
 * OpenBLAS single-threaded, so the sums do not depend on the thread count */
enum { LOADING_COLS = 256 };
typedef struct {
  const void *B;
  blasint bw;
  int64_t n, k;
  const void *Uf;
  void *Vf;
  bool f64;
} loadings_job;

static void loadings_block(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)chunk;
  const loadings_job *j = arg;
  const blasint w = (blasint)(hi - lo), n = (blasint)j->n, k = (blasint)j->k;
  if (j->f64)
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w, k, n, 1.0, (const double *)j->B + lo,
                j->bw, j->Uf, k, 0.0, (double *)j->Vf + lo * k, k);
  else
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w, k, n, 1.0f, (const float *)j->B + lo,
                j->bw, j->Uf, k, 0.0f, (float *)j->Vf + lo * k, k);
}

/* scores = X_c V by gram_f32's tile (f32 data, AVX-512): per VL_GRAM_TILE cells, their centred
 * rows transposed into a gene-major buffer (in L1), times V in f32 panels of VL_GRAM_PANEL
 * components (j->V: panel q holds components [q W, q W + W) of every gene, padding zero) */
static void score_tiles(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)chunk;
  score_job *j = arg;
  const float *Vp = j->V;
  const int64_t g = j->x->g, k = j->k, TT = VL_GRAM_TILE, W = VL_GRAM_PANEL;
  float *row = malloc(sizeof(float) * (size_t)g), *a = malloc(sizeof(float) * (size_t)(g * TT));
  double acc[VL_GRAM_TILE * VL_GRAM_PANEL];
  if (!row || !a) {
    j->failed = 1;
    free(row);
    free(a);
    return;
  }
  for (int64_t i0 = lo; i0 < hi; i0 += TT) {
    const int64_t rows = hi - i0 < TT ? hi - i0 : TT;
    for (int64_t t = 0; t < TT; t++) {
      if (t < rows) {
        block_job b = {j->x, i0 + t, 0, g, g, row};
        fill_block(&b, 0, 1);
        for (int64_t c = 0; c < g; c++) a[c * TT + t] = row[c];
      } else {
        for (int64_t c = 0; c < g; c++) a[c * TT + t] = 0.0f;
      }
    }
    for (int64_t q = 0; q * W < k; q++) {
      vl_gram_f32_tile(a, TT, Vp + q * g * W, g, acc);
      const int64_t w = k - q * W < W ? k - q * W : W;
      for (int64_t t = 0; t < rows; t++)
        for (int64_t c = 0; c < w; c++) j->U[(i0 + t) * k + q * W + c] = acc[t * W + c];
    }
  }
  free(row);
  free(a);
}

/* Up to this n g min(n, g) (twice the Gram matrix's multiply-adds) f32 data are decomposed in
 * double like f64 data */
#define SMALL_EXACT_WORK 33554432.0 /* 2^25 */

/* The matrix view of X (CSR sp, or dense f32/f64 [n, g]) for the caller `who`. */
static vl_status matrix_of(const vl_csr *sp, const vl_tensor *dense, double *mean,
                           const char *who, matrix *x, vl_error *err) {
  *x = (matrix){sp, dense, 0, 0, mean, false};
  if (sp) {
    x->n = sp->nrows;
    x->g = sp->ncols;
    x->f64 = sp->dtype == VL_F64;
    return VL_OK;
  }
  if (!dense || dense->ndim != 2 || (dense->dtype != VL_F32 && dense->dtype != VL_F64))
    return vl_fail(err, VL_ERR_SHAPE, "%s: X must be a 2-d f32 or f64 tensor or a CSR matrix", who);
  x->n = dense->shape[0];
  x->g = dense->shape[1];
  x->f64 = dense->dtype == VL_F64;
  return VL_OK;
}

vl_status vl_pca(vl_ctx *ctx, const vl_csr *sp, const vl_tensor *dense, int64_t k,
                 vl_pca_out *out, vl_error *err) {
  matrix x;
  const vl_status bad = matrix_of(sp, dense, out->mean, "pca", &x, err);
  if (bad) return bad;
  const int64_t n = x.n, g = x.g, m = n < g ? n : g;
  if (k < 1 || k > m)
    return vl_fail(err, VL_ERR_VALUE, "pca: n_comps = %lld must be in [1, min(n_obs, n_vars) = %lld]",
                   (long long)k, (long long)m);
  if (m > 46340)
    return vl_fail(err, VL_ERR_UNSUPPORTED, "pca: min(n_obs, n_vars) = %lld is too large for the "
                   "exact solver", (long long)m);
  /* small problems are decomposed in double whatever the dtype: exact, for a few ms at most.
   * (The f32 Gram matrix squares the condition number: on dentategyrus100, 100 x 298, its
   * scores were 2.4e-5 from the exact ones, scanpy's f32 ARPACK 7e-6.) */
  if (!x.f64 && (double)n * (double)g * (double)m <= SMALL_EXACT_WORK) x.f64 = true;
  const bool by_rows = n <= g; /* Gram of the rows (n x n) or covariance of the columns */
  vl_status st = column_stats(ctx, &x, out->mean, &out->total_var);
  if (st == VL_ERR_INTERRUPTED) return vl_fail(err, st, "pca: interrupted");
  if (st) return vl_fail(err, st, "pca: out of memory (%lld x %lld data)", (long long)n, (long long)g);
  if (!isfinite(out->total_var))
    return vl_fail(err, VL_ERR_VALUE, "pca: X contains non-finite values");

  double *G = scratch(sizeof(double) * (size_t)(m * m));
  void *B = NULL, *Vf = NULL, *Uf = NULL;
  const size_t es = x.f64 ? sizeof(double) : sizeof(float);
  double *w = NULL, *z = NULL;
  if (!G) goto nomem;
  /* the centred X in blocks: columns (rows path; kept for the loadings when the whole X
   * fits) or rows */
  int64_t cw = 0;
  if (by_rows) {
    const int64_t budget = ((int64_t)256 << 20) / (int64_t)es; /* elements */
    cw = budget / n;
    if (cw >= g)
      cw = g;
    else
      cw = cw >= GRAM_INNER ? cw / GRAM_INNER * GRAM_INNER : GRAM_INNER;
  }
  const bool own = !x.f64 && vl_gram_f32_available();
  const int blas_saved = vl_blas_single_begin(); /* the panels run on our pool */
  st = build_gram(ctx, &x, by_rows, cw, own, G, &B);
  vl_blas_single_end(blas_saved);
  if (st) goto fail;

  /* top k eigenpairs */
  w = malloc(sizeof(double) * (size_t)m);
  z = malloc(sizeof(double) * (size_t)(m * k));
  if (!w || !z) goto nomem;
  st = top_eigenpairs(ctx, G, m, k, x.f64, w, z, err);
  if (st) goto out;
  free(G);
  G = NULL;

  /* eigenvector c (descending) is column k-1-c of z (column-major m x k) */
  double *S = out->singular, *U = out->scores, *V = out->components;
  for (int64_t c = 0; c < k; c++) {
    double ev = w[k - 1 - c];
    S[c] = ev > 0 ? sqrt(ev) : 0;
  }
  if (by_rows) {
    /* scores = U S; components = X_c^T U / S (SGEMM or DGEMM over the column blocks) */
    Uf = malloc(es * (size_t)(n * k));
    Vf = malloc(es * (size_t)(cw * k));
    if (!Uf || !Vf) goto nomem;
    for (int64_t i = 0; i < n; i++)
      for (int64_t c = 0; c < k; c++) {
        U[i * k + c] = z[(k - 1 - c) * m + i];
        if (x.f64)
          ((double *)Uf)[i * k + c] = U[i * k + c];
        else
          ((float *)Uf)[i * k + c] = (float)U[i * k + c];
      }
    for (int64_t c0 = 0; c0 < g; c0 += cw) {
      int64_t c1 = c0 + cw < g ? c0 + cw : g;
      const blasint bw = (blasint)(c1 - c0);
      if (cw < g) { /* refill this block (the first fill did not keep it) */
        block_job b = {&x, 0, c0, c1, c1 - c0, B};
        vl_parallel_for(ctx, n, 16, fill_rows, &b);
      }
      loadings_job lj = {B, bw, n, k, Uf, Vf, x.f64};
      const int saved = vl_blas_single_begin();
      st = vl_parallel_blocks(ctx, bw, LOADING_COLS, loadings_block, &lj);
      vl_blas_single_end(saved);
      if (st) goto fail;
      for (int64_t j = c0; j < c1; j++)
        for (int64_t c = 0; c < k; c++) {
          int64_t t = (j - c0) * k + c;
          double v = x.f64 ? ((double *)Vf)[t] : (double)((float *)Vf)[t];
          V[j * k + c] = S[c] > 0 ? v / S[c] : 0;
        }
    }
    for (int64_t i = 0; i < n; i++)
      for (int64_t c = 0; c < k; c++) U[i * k + c] *= S[c];
  } else {
    /* components = eigenvectors; scores = X_c V by blocks of rows */
    Vf = own ? NULL : malloc(es * (size_t)(g * k));
    if (!own && !Vf) goto nomem;
    for (int64_t j = 0; j < g; j++)
      for (int64_t c = 0; c < k; c++) {
        V[j * k + c] = z[(k - 1 - c) * m + j];
        if (own)
          continue;
        if (x.f64)
          ((double *)Vf)[j * k + c] = V[j * k + c];
        else
          ((float *)Vf)[j * k + c] = (float)V[j * k + c];
      }
    if (own) {
      const int64_t W = VL_GRAM_PANEL, np = (k + W - 1) / W;
      float *Vp = calloc((size_t)np * (size_t)g * (size_t)W, sizeof(float));
      if (!Vp) goto nomem;
      for (int64_t jj = 0; jj < g; jj++)
        for (int64_t c = 0; c < k; c++) Vp[((c / W) * g + jj) * W + c % W] = (float)V[jj * k + c];
      score_job tj = {&x, Vp, k, U, 0};
      st = vl_parallel_blocks(ctx, n, SCORE_ROWS / 4, score_tiles, &tj);
      free(Vp);
      if (st) goto fail;
      if (tj.failed) goto nomem;
    } else {
      score_job sj = {&x, Vf, k, U, 0};
      int saved = vl_blas_single_begin();
      st = vl_parallel_blocks(ctx, n, SCORE_ROWS, score_rows, &sj);
      vl_blas_single_end(saved);
      if (st) goto fail;
      if (sj.failed) goto nomem;
    }
  }
  /* svd_flip, u-based: the score of largest |value| (first one on ties) is positive */
  for (int64_t c = 0; c < k; c++) {
    int64_t best = 0;
    double bv = -1;
    for (int64_t i = 0; i < n; i++) {
      double a = fabs(U[i * k + c]);
      if (a > bv) {
        bv = a;
        best = i;
      }
    }
    if (U[best * k + c] < 0) {
      for (int64_t i = 0; i < n; i++) U[i * k + c] = -U[i * k + c];
      for (int64_t j = 0; j < g; j++) V[j * k + c] = -V[j * k + c];
    }
  }
  goto out;
fail:
  if (st == VL_ERR_INTERRUPTED) {
    st = vl_fail(err, st, "pca: interrupted");
    goto out;
  }
nomem:
  st = vl_fail(err, VL_ERR_NOMEM, "pca: out of memory (%lld x %lld data, %lld components)",
               (long long)n, (long long)g, (long long)k);
out:
  free(G);
  free(B);
  free(Vf);
  free(Uf);
  free(w);
  free(z);
  return st;
}

vl_status vl_pca_gram(vl_ctx *ctx, const vl_csr *sp, const vl_tensor *dense, bool blas_only,
                      double *G, double *mean, vl_error *err) {
  matrix x;
  const vl_status bad = matrix_of(sp, dense, mean, "pca_gram", &x, err);
  if (bad) return bad;
  const int64_t n = x.n, g = x.g, m = n < g ? n : g;
  const bool by_rows = n <= g;
  double total_var;
  vl_status st = column_stats(ctx, &x, mean, &total_var);
  if (st) return vl_fail(err, st, "pca_gram: column statistics failed");
  const int64_t cw = g; /* by_rows: the whole X as one block */
  void *B = NULL;
  const bool own = !blas_only && !x.f64 && vl_gram_f32_available();
  const int saved = vl_blas_single_begin();
  st = build_gram(ctx, &x, by_rows, cw, own, G, &B);
  vl_blas_single_end(saved);
  free(B);
  if (st) return vl_fail(err, st, "pca_gram: %s", st == VL_ERR_INTERRUPTED ? "interrupted" : "out of memory");
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < i; j++) G[i * m + j] = G[j * m + i];
  return VL_OK;
}
