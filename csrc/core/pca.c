/* Exact mean-centred PCA through the Gram matrix (see pca.h). */
#include "pca.h"

#include "blas.h"

#include "memory.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK from OpenBLAS (Fortran calling convention, hidden string lengths last). */
extern void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n,
                    double *a, const int *lda, const double *vl, const double *vu, const int *il,
                    const int *iu, const double *abstol, int *m, double *w, double *z,
                    const int *ldz, int *isuppz, double *work, const int *lwork, int *iwork,
                    const int *liwork, int *info, size_t, size_t, size_t);

extern void ssyevr_(const char *jobz, const char *range, const char *uplo, const int *n,
                    float *a, const int *lda, const float *vl, const float *vu, const int *il,
                    const int *iu, const float *abstol, int *m, float *w, float *z,
                    const int *ldz, int *isuppz, float *work, const int *lwork, int *iwork,
                    const int *liwork, int *info, size_t, size_t, size_t);
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                   double *w, double *work, const int *lwork, int *info, size_t, size_t);
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t);

typedef struct {
  const vl_csr *sp;
  const vl_tensor *dense;
  int64_t n, g;
  const double *mean;
} matrix;

static inline double dense_at(const vl_tensor *t, int64_t i, int64_t j) {
  int64_t o = i * t->stride[0] + j * t->stride[1];
  return t->dtype == VL_F32 ? (double)((const float *)t->data)[o] : ((const double *)t->data)[o];
}
static inline double sp_val(const vl_csr *a, int64_t p) {
  return a->dtype == VL_F32 ? (double)((const float *)a->values)[p]
                            : ((const double *)a->values)[p];
}

/* out[(i - r0) * (c1 - c0) + (j - c0)] = X[i, j] - mean[j] for rows [r0, r1), cols [c0, c1). */
typedef struct {
  const matrix *x;
  int64_t r0, c0, c1;
  double *out;
} block_job;

/* rows r0 + [lo, hi) */
static void fill_rows(int64_t lo, int64_t hi, int chunk, void *arg) {
  const block_job *b = arg;
  const matrix *x = b->x;
  const int64_t w = b->c1 - b->c0;
  for (int64_t i = b->r0 + lo; i < b->r0 + hi; i++) {
    double *o = b->out + (i - b->r0) * w;
    if (x->sp) {
      for (int64_t j = 0; j < w; j++) o[j] = -x->mean[b->c0 + j];
      for (int64_t p = x->sp->indptr[i]; p < x->sp->indptr[i + 1]; p++) {
        int64_t j = x->sp->indices[p];
        if (j >= b->c0 && j < b->c1) o[j - b->c0] += sp_val(x->sp, p);
      }
    } else {
      for (int64_t j = 0; j < w; j++) o[j] = dense_at(x->dense, i, b->c0 + j) - x->mean[b->c0 + j];
    }
  }
}

/* Column means and the total variance (denominator n - 1). */
static void column_stats(const matrix *x, double *mean, double *total_var) {
  const int64_t n = x->n, g = x->g;
  memset(mean, 0, sizeof(double) * (size_t)g);
  if (x->sp) {
    for (int64_t p = 0; p < x->sp->nnz; p++) mean[x->sp->indices[p]] += sp_val(x->sp, p);
  } else {
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < g; j++) mean[j] += dense_at(x->dense, i, j);
  }
  for (int64_t j = 0; j < g; j++) mean[j] /= (double)n;
  double tv = 0;
  if (x->sp) {
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
    } else {
      tv = NAN;
    }
    free(ss);
    free(cnt);
  } else {
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < g; j++) {
        double d = dense_at(x->dense, i, j) - mean[j];
        tv += d * d;
      }
  }
  *total_var = n > 1 ? tv / (double)(n - 1) : 0;
}

enum { BLOCK_BYTES = 32 << 20 };

/* A scratch buffer; large ones are 2 MB aligned and backed by huge pages where the system
 * allows it: first-touch page faults on a fresh 10 MB buffer cost more than the arithmetic
 * done in it on some virtual machines. Freed with free(). */
static void *scratch(size_t nbytes, bool zero) {
  const size_t huge = (size_t)2 << 20;
  void *p = NULL;
  if (nbytes >= huge) {
    size_t rounded = (nbytes + huge - 1) / huge * huge;
    p = aligned_alloc(huge, rounded);
    if (p) vl_advise_huge_pages(p, rounded);
  } else {
    p = malloc(nbytes > 0 ? nbytes : 1);
  }
  if (p && zero) memset(p, 0, nbytes);
  return p;
}

/* ---------- top eigenpairs of the Gram matrix ---------- */

/* The k largest eigenpairs of the symmetric m x m matrix G (lower triangle, column-major; G
 * is overwritten) by LAPACK dsyevr: w[0..k) ascending, z column j (m x k, column-major) the
 * eigenvector of w[j]. Single-threaded: the tridiagonal reduction is a long series of small
 * matrix-vector products, between which OpenBLAS's threads spin and yield (several times
 * slower than one thread on 2 shared cores). */
static vl_status exact_top(double *G, int64_t m, int64_t k, double *w, double *z,
                           vl_error *err) {
  int N = (int)m, il = (int)(m - k + 1), iu = (int)m, found = 0, info = 0, lwork = -1,
      liwork = -1, iwq = 0;
  double vl = 0, vu = 0, abstol = 0, wq = 0;
  double *A = G, *work = NULL, *wall = malloc(sizeof(double) * (size_t)m);
  int *iwork = NULL, *isuppz = malloc(sizeof(int) * (size_t)(2 * k));
  vl_status st = VL_OK;
  if (!isuppz || !wall) goto nomem;
  dsyevr_("V", "I", "L", &N, A, &N, &vl, &vu, &il, &iu, &abstol, &found, wall, z, &N, isuppz,
          &wq, &lwork, &iwq, &liwork, &info, 1, 1, 1);
  if (info != 0) {
    st = vl_fail(err, VL_ERR_VALUE, "pca: LAPACK dsyevr workspace query failed (info %d)", info);
    goto out;
  }
  lwork = (int)wq;
  liwork = iwq;
  work = malloc(sizeof(double) * (size_t)lwork);
  iwork = malloc(sizeof(int) * (size_t)liwork);
  if (!work || !iwork) goto nomem;
  int saved = vl_blas_single_begin();
  dsyevr_("V", "I", "L", &N, A, &N, &vl, &vu, &il, &iu, &abstol, &found, wall, z, &N, isuppz,
          work, &lwork, iwork, &liwork, &info, 1, 1, 1);
  vl_blas_single_end(saved);
  if (info != 0 || found != (int)k) {
    st = vl_fail(err, VL_ERR_VALUE, "pca: LAPACK dsyevr failed (info %d, %d of %lld "
                 "eigenpairs)", info, found, (long long)k);
    goto out;
  }
  memcpy(w, wall, sizeof(double) * (size_t)k);
  goto out;
nomem:
  st = vl_fail(err, VL_ERR_NOMEM, "pca: out of memory (eigenproblem of order %lld)",
               (long long)m);
out:
  free(work);
  free(iwork);
  free(isuppz);
  free(wall);
  return st;
}

/* The same by a single-precision start and a double-precision finish, about twice as fast:
 * LAPACK ssyevr on an f32 copy of G gives the top b = k + max(k, 16) eigenvectors; their span
 * is refined in double by subspace iteration on G itself (Rayleigh-Ritz: orthonormal basis V,
 * W = G V, eigenpairs of V^T W). Every one of the k pairs is then checked in double against G:
 * residual r = |G u - t u| over its distance d to the nearest other Ritz value; the
 * eigenvector's angle to the exact one is at most about r / d and the eigenvalue's error about
 * r^2 / d. Accepted when r <= ACCEPT * d for all k pairs (at most REFINE iterations).
 * Returns 1 when accepted (w, z as exact_top's), 0 when the caller must use exact_top. */
enum { REFINE = 4 };
static const double ACCEPT = 1e-3;

static int fast_top_body(const double *G, int64_t m, int64_t k, double *w, double *z);

/* Single-threaded BLAS and LAPACK throughout: the products here are small (order x b), and
 * OpenBLAS's threads cost more in hand-offs than they save (see exact_top). */
static int fast_top(const double *G, int64_t m, int64_t k, double *w, double *z) {
  int saved = vl_blas_single_begin();
  int ok = fast_top_body(G, m, k, w, z);
  vl_blas_single_end(saved);
  return ok;
}

static int fast_top_body(const double *G, int64_t m, int64_t k, double *w, double *z) {
  const int64_t b = k + (k > 16 ? k : 16);
  int ok = 0;
  float *Gf = malloc(sizeof(float) * (size_t)(m * m));
  float *Zf = malloc(sizeof(float) * (size_t)(m * b));
  float *wf = malloc(sizeof(float) * (size_t)m);
  int *isuppz = malloc(sizeof(int) * (size_t)(2 * b));
  double *V = malloc(sizeof(double) * (size_t)(m * b));
  double *W = malloc(sizeof(double) * (size_t)(m * b));
  double *U = malloc(sizeof(double) * (size_t)(m * b));
  double *H = malloc(sizeof(double) * (size_t)(b * b));
  double *th = malloc(sizeof(double) * (size_t)b);
  float *work = NULL;
  double *dwork = NULL;
  int *iwork = NULL;
  if (!Gf || !Zf || !wf || !isuppz || !V || !W || !U || !H || !th) goto out;
  for (int64_t t = 0; t < m * m; t++) Gf[t] = (float)G[t];
  {
    int N = (int)m, il = (int)(m - b + 1), iu = (int)m, found = 0, info = 0, lwork = -1,
        liwork = -1, iwq = 0;
    float vl = 0, vu = 0, abstol = 0, wq = 0;
    ssyevr_("V", "I", "L", &N, Gf, &N, &vl, &vu, &il, &iu, &abstol, &found, wf, Zf, &N, isuppz,
            &wq, &lwork, &iwq, &liwork, &info, 1, 1, 1);
    if (info != 0) goto out;
    lwork = (int)wq;
    liwork = iwq;
    work = malloc(sizeof(float) * (size_t)lwork);
    iwork = malloc(sizeof(int) * (size_t)liwork);
    if (!work || !iwork) goto out;
    ssyevr_("V", "I", "L", &N, Gf, &N, &vl, &vu, &il, &iu, &abstol, &found, wf, Zf, &N, isuppz,
            work, &lwork, iwork, &liwork, &info, 1, 1, 1);
    if (info != 0 || found != (int)b) goto out;
  }
  for (int64_t t = 0; t < m * b; t++) V[t] = Zf[t];
  {
    int B = (int)b, lwork = -1, info = 0;
    double wq = 0;
    dsyev_("V", "L", &B, H, &B, th, &wq, &lwork, &info, 1, 1);
    if (info != 0) goto out;
    lwork = (int)wq;
    dwork = malloc(sizeof(double) * (size_t)lwork);
    if (!dwork) goto out;
    for (int it = 0; it < REFINE && !ok; it++) {
      /* V orthonormal (Cholesky QR: V R^-1 with R^T R = V^T V) */
      cblas_dsyrk(CblasColMajor, CblasLower, CblasTrans, B, (int)m, 1.0, V, (int)m, 0.0, H, B);
      dpotrf_("L", &B, H, &B, &info, 1);
      if (info != 0) goto out;
      cblas_dtrsm(CblasColMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, (int)m, B,
                  1.0, H, B, V, (int)m);
      /* Rayleigh-Ritz: H = V^T G V, H = Y diag(th) Y^T, U = V Y, W = G U */
      cblas_dsymm(CblasColMajor, CblasLeft, CblasLower, (int)m, B, 1.0, G, (int)m, V, (int)m,
                  0.0, W, (int)m);
      cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, B, B, (int)m, 1.0, V, (int)m, W,
                  (int)m, 0.0, H, B);
      for (int64_t i = 0; i < b; i++)
        for (int64_t j = 0; j < i; j++) H[j * b + i] = H[i * b + j] = 0.5 * (H[j * b + i] + H[i * b + j]);
      dsyev_("V", "L", &B, H, &B, th, dwork, &lwork, &info, 1, 1);
      if (info != 0) goto out;
      cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)m, B, B, 1.0, V, (int)m, H, B,
                  0.0, U, (int)m);
      cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)m, B, B, 1.0, W, (int)m, H, B,
                  0.0, V, (int)m); /* V = G U: the next iterate if this one fails */
      ok = 1;
      for (int64_t j = b - k; j < b; j++) {
        double r = 0, d = INFINITY;
        const double *u = U + j * m, *gu = V + j * m;
        for (int64_t i = 0; i < m; i++) {
          double e = gu[i] - th[j] * u[i];
          r += e * e;
        }
        r = sqrt(r);
        for (int64_t l = 0; l < b; l++)
          if (l != j && fabs(th[j] - th[l]) < d) d = fabs(th[j] - th[l]);
        if (!(r <= ACCEPT * d)) ok = 0;
      }
    }
  }
  if (ok) {
    memcpy(w, th + (b - k), sizeof(double) * (size_t)k);
    memcpy(z, U + (b - k) * m, sizeof(double) * (size_t)(m * k));
  }
out:
  free(Gf);
  free(Zf);
  free(wf);
  free(isuppz);
  free(V);
  free(W);
  free(U);
  free(H);
  free(th);
  free(work);
  free(dwork);
  free(iwork);
  return ok;
}

/* Top k eigenpairs: fast_top where it pays (order >= 256, k well below the order), else or
 * when its check fails exact_top. */
static vl_status top_eigenpairs(double *G, int64_t m, int64_t k, double *w, double *z,
                                vl_error *err) {
  const int64_t b = k + (k > 16 ? k : 16);
  if (m >= 256 && 2 * b <= m && fast_top(G, m, k, w, z)) return VL_OK;
  return exact_top(G, m, k, w, z, err);
}

vl_status vl_pca(vl_ctx *ctx, const vl_csr *sp, const vl_tensor *dense, int64_t k,
                 vl_pca_out *out, vl_error *err) {
  matrix x = {sp, dense, 0, 0, out->mean};
  if (sp) {
    x.n = sp->nrows;
    x.g = sp->ncols;
  } else {
    if (!dense || dense->ndim != 2 || (dense->dtype != VL_F32 && dense->dtype != VL_F64))
      return vl_fail(err, VL_ERR_SHAPE, "pca: X must be a 2-d f32 or f64 tensor or a CSR matrix");
    x.n = dense->shape[0];
    x.g = dense->shape[1];
  }
  const int64_t n = x.n, g = x.g, m = n < g ? n : g;
  if (k < 1 || k > m)
    return vl_fail(err, VL_ERR_VALUE, "pca: n_comps = %lld must be in [1, min(n_obs, n_vars) = %lld]",
                   (long long)k, (long long)m);
  if (m > 46340)
    return vl_fail(err, VL_ERR_UNSUPPORTED, "pca: min(n_obs, n_vars) = %lld is too large for the "
                   "exact solver", (long long)m);
  const bool by_rows = n <= g; /* Gram of the rows (n x n) or covariance of the columns */
  column_stats(&x, out->mean, &out->total_var);
  if (!isfinite(out->total_var))
    return vl_fail(err, isnan(out->total_var) ? VL_ERR_NOMEM : VL_ERR_VALUE,
                   "pca: X contains non-finite values (or memory ran out)");

  double *G = scratch(sizeof(double) * (size_t)(m * m), true);
  double *B = NULL, *w = NULL, *z = NULL, *tmp = NULL;
  vl_status st = VL_OK;
  if (!G) goto nomem;
  int64_t rh = 0; /* rows per block (columns path) */
  /* G (upper triangle, row-major) = sum over blocks of B B^T (rows) or B^T B (columns) */
  if (by_rows) {
    int64_t cw = BLOCK_BYTES / 8 / (n > 0 ? n : 1);
    if (cw < 1) cw = 1;
    if (cw > g) cw = g;
    B = scratch(sizeof(double) * (size_t)(n * cw), false);
    if (!B) goto nomem;
    for (int64_t c0 = 0; c0 < g; c0 += cw) {
      int64_t c1 = c0 + cw < g ? c0 + cw : g;
      block_job b = {&x, 0, c0, c1, B};
      vl_parallel_for(ctx, n, 16, fill_rows, &b);
      cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (blasint)n, (blasint)(c1 - c0), 1.0,
                  B, (blasint)(c1 - c0), 1.0, G, (blasint)n);
    }
  } else {
    /* row blocks of about 4 MB: enough for SYRK to run at full speed, and cache-resident */
    rh = (BLOCK_BYTES / 8) / 8 / g;
    if (rh < 1) rh = 1;
    if (rh > n) rh = n;
    B = scratch(sizeof(double) * (size_t)(rh * g), false);
    if (!B) goto nomem;
    for (int64_t r0 = 0; r0 < n; r0 += rh) {
      int64_t r1 = r0 + rh < n ? r0 + rh : n;
      block_job b = {&x, r0, 0, g, B};
      vl_parallel_for(ctx, r1 - r0, 16, fill_rows, &b);
      cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (blasint)g, (blasint)(r1 - r0), 1.0, B,
                  (blasint)g, 1.0, G, (blasint)g);
    }
  }
  /* a single block holds the whole centred X (rows path): kept for the loadings below */
  const bool have_xc = by_rows && B && (BLOCK_BYTES / 8 / (n > 0 ? n : 1)) >= g;
  if (by_rows && !have_xc) {
    free(B);
    B = NULL;
  }

  /* top k eigenpairs; the row-major upper triangle is LAPACK's (column-major) lower one */
  w = malloc(sizeof(double) * (size_t)m);
  z = malloc(sizeof(double) * (size_t)(m * k));
  if (!w || !z) goto nomem;
  st = top_eigenpairs(G, m, k, w, z, err);
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
    /* scores = U S; components = X_c^T U / S */
    for (int64_t i = 0; i < n; i++)
      for (int64_t c = 0; c < k; c++) U[i * k + c] = z[(k - 1 - c) * m + i];
    tmp = calloc((size_t)k, sizeof(double));
    if (!tmp) goto nomem;
    memset(V, 0, sizeof(double) * (size_t)(g * k));
    if (have_xc) {
      /* V = X_c^T U (BLAS), then divided by S below; tmp stays 0 (X_c is centred) */
      cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)g, (blasint)k, (blasint)n,
                  1.0, B, (blasint)g, U, (blasint)k, 0.0, V, (blasint)k);
    }
    for (int64_t i = 0; i < n && !have_xc; i++) {
      const double *ui = U + i * k;
      for (int64_t c = 0; c < k; c++) tmp[c] += ui[c];
      if (sp) {
        for (int64_t p = sp->indptr[i]; p < sp->indptr[i + 1]; p++) {
          double v = sp_val(sp, p);
          double *vj = V + sp->indices[p] * k;
          for (int64_t c = 0; c < k; c++) vj[c] += v * ui[c];
        }
      } else {
        for (int64_t j = 0; j < g; j++) {
          double v = dense_at(dense, i, j);
          double *vj = V + j * k;
          for (int64_t c = 0; c < k; c++) vj[c] += v * ui[c];
        }
      }
    }
    for (int64_t j = 0; j < g; j++)
      for (int64_t c = 0; c < k; c++) {
        double v = V[j * k + c] - (have_xc ? 0.0 : x.mean[j] * tmp[c]);
        V[j * k + c] = S[c] > 0 ? v / S[c] : 0;
      }
    for (int64_t i = 0; i < n; i++)
      for (int64_t c = 0; c < k; c++) U[i * k + c] *= S[c];
  } else {
    /* components = eigenvectors; scores = X_c V */
    for (int64_t j = 0; j < g; j++)
      for (int64_t c = 0; c < k; c++) V[j * k + c] = z[(k - 1 - c) * m + j];
    /* scores = X_c V, block by block of rows (the centred rows refilled, then GEMM) */
    for (int64_t r0 = 0; r0 < n; r0 += rh) {
      int64_t r1 = r0 + rh < n ? r0 + rh : n;
      block_job b = {&x, r0, 0, g, B};
      vl_parallel_for(ctx, r1 - r0, 16, fill_rows, &b);
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)(r1 - r0), (blasint)k,
                  (blasint)g, 1.0, B, (blasint)g, V, (blasint)k, 0.0, U + r0 * k, (blasint)k);
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
nomem:
  st = vl_fail(err, VL_ERR_NOMEM, "pca: out of memory (%lld x %lld data, %lld components)",
               (long long)n, (long long)g, (long long)k);
out:
  free(G);
  free(B);
  free(w);
  free(z);
  free(tmp);
  return st;
}
