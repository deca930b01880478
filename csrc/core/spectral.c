/* Spectral embedding of a graph's connected components (see spectral.h). */
#include "spectral.h"
#include "clones.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "random.h"

/* a * b + c stays two roundings in both builds of the VL_CLONES functions (no FMA) */
#pragma GCC optimize("fp-contract=off")

/* LAPACK from OpenBLAS (Fortran calling convention, hidden string lengths last). */
extern void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n,
                    double *a, const int *lda, const double *vl, const double *vu, const int *il,
                    const int *iu, const double *abstol, int *m, double *w, double *z,
                    const int *ldz, int *isuppz, double *work, const int *lwork, int *iwork,
                    const int *liwork, int *info, size_t, size_t, size_t);


void vl_spectral_defaults(vl_spectral_opts *o) {
  o->tol = 1e-7;
  o->max_matvec = 0;
  o->dense_max = 64;
  o->basis = 0;
  o->force = 0;
}

static inline double csr_value(const vl_csr *a, int64_t p) {
  return a->dtype == VL_F32 ? (double)((const float *)a->values)[p]
                            : ((const double *)a->values)[p];
}

/* ---------- connected components (union-find, roots at the lowest vertex) ---------- */

static int64_t uf_find(int64_t *parent, int64_t i) {
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

vl_status vl_graph_components(const vl_csr *a, int64_t *labels, int64_t *ncomp, vl_error *err) {
  if (a->nrows != a->ncols)
    return vl_fail(err, VL_ERR_SHAPE, "the graph must be square, got %lld x %lld",
                   (long long)a->nrows, (long long)a->ncols);
  const int64_t n = a->nrows;
  int64_t *parent = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
  if (!parent) return vl_fail(err, VL_ERR_NOMEM, "out of memory (components of %lld vertices)",
                              (long long)n);
  for (int64_t i = 0; i < n; i++) parent[i] = i;
  for (int64_t i = 0; i < n; i++)
    for (int64_t p = a->indptr[i]; p < a->indptr[i + 1]; p++) {
      if (!(csr_value(a, p) > 0)) continue;
      int64_t r1 = uf_find(parent, i), r2 = uf_find(parent, a->indices[p]);
      if (r1 < r2) parent[r2] = r1;
      else if (r2 < r1) parent[r1] = r2;
    }
  /* every root is the lowest vertex of its set: labels in order of the lowest vertex */
  int64_t count = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t r = uf_find(parent, i);
    labels[i] = r == i ? count++ : labels[r];
  }
  free(parent);
  *ncomp = count;
  return VL_OK;
}

/* ---------- dense symmetric eigenproblems (LAPACK dsyevr) ---------- */

vl_status vl_sym_eig(const double *a, int64_t n, double *w, double *z, vl_error *err) {
  if (n <= 0) return VL_OK;
  if (n > 46340) return vl_fail(err, VL_ERR_UNSUPPORTED, "dense eigenproblem of size %lld is too "
                                "large", (long long)n);
  int N = (int)n, found = 0, info = 0, lwork = -1, liwork = -1, iwq = 0, il = 1, iu = N;
  double vl = 0, vu = 0, abstol = 0, wq = 0;
  double *A = malloc(sizeof(double) * (size_t)(n * n));
  double *Z = malloc(sizeof(double) * (size_t)(n * n));
  int *isuppz = malloc(sizeof(int) * (size_t)(2 * n));
  double *work = NULL;
  int *iwork = NULL;
  int blas_saved = -1;
  vl_status st = VL_OK;
  if (!A || !Z || !isuppz) goto nomem;
  /* row-major upper triangle = column-major lower triangle */
  memcpy(A, a, sizeof(double) * (size_t)(n * n));
  /* single-threaded OpenBLAS: its threaded kernels may sum in another order on another thread
   * count, and the Lanczos projections must give the same bits on any (the SGD amplifies the
   * last bit of its start) */
  blas_saved = vl_blas_single_begin();
  dsyevr_("V", "A", "L", &N, A, &N, &vl, &vu, &il, &iu, &abstol, &found, w, Z, &N, isuppz, &wq,
          &lwork, &iwq, &liwork, &info, 1, 1, 1);
  if (info != 0) {
    st = vl_fail(err, VL_ERR_VALUE, "LAPACK dsyevr workspace query failed (info %d)", info);
    goto out;
  }
  lwork = (int)wq;
  liwork = iwq;
  work = malloc(sizeof(double) * (size_t)lwork);
  iwork = malloc(sizeof(int) * (size_t)liwork);
  if (!work || !iwork) goto nomem;
  dsyevr_("V", "A", "L", &N, A, &N, &vl, &vu, &il, &iu, &abstol, &found, w, Z, &N, isuppz, work,
          &lwork, iwork, &liwork, &info, 1, 1, 1);
  if (info != 0 || found != N) {
    st = vl_fail(err, VL_ERR_VALUE, "LAPACK dsyevr failed (info %d, %d of %d eigenpairs)", info,
                 found, N);
    goto out;
  }
  /* Z is column-major: vector t is Z[t * n + i] */
  for (int64_t i = 0; i < n; i++)
    for (int64_t t = 0; t < n; t++) z[i * n + t] = Z[t * n + i];
  goto out;
nomem:
  st = vl_fail(err, VL_ERR_NOMEM, "out of memory (dense eigenproblem of size %lld)", (long long)n);
out:
  if (blas_saved >= 0) vl_blas_single_end(blas_saved);
  free(A);
  free(Z);
  free(isuppz);
  free(work);
  free(iwork);
  return st;
}

/* ---------- the normalized adjacency N = D^-1/2 W D^-1/2 of one component ---------- */

typedef struct {
  int64_t n;
  int64_t *ip;  /* local CSR, symmetric: (W + W^T) / 2; 32-bit columns and f32 weights halve */
  int32_t *ix;  /* the bytes each product streams (the weights are f32 data to begin with) */
  float *w;
  double *dis;  /* D^-1/2 */
  double *tmp;  /* n: D^-1/2 x */
} op_t;

static void op_free(op_t *op) {
  free(op->ip);
  free(op->ix);
  free(op->w);
  free(op->dis);
  free(op->tmp);
}

/* y_i = d_i^-1/2 sum_j w_ij t_j for rows [lo, hi), t = D^-1/2 x already in op->tmp: four
 * interleaved sums per row combined in a fixed order (the row's latency is a quarter of one
 * chain's; the same sums on any threads) */
static inline void matvec_range(const op_t *op, int64_t lo, int64_t hi, double *y) {
  const double *t = op->tmp;
  for (int64_t i = lo; i < hi; i++) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t p = op->ip[i];
    const int64_t e = op->ip[i + 1];
    for (; p + 4 <= e; p += 4) {
      s0 += (double)op->w[p] * t[op->ix[p]];
      s1 += (double)op->w[p + 1] * t[op->ix[p + 1]];
      s2 += (double)op->w[p + 2] * t[op->ix[p + 2]];
      s3 += (double)op->w[p + 3] * t[op->ix[p + 3]];
    }
    if (p < e) s0 += (double)op->w[p] * t[op->ix[p]];
    if (p + 1 < e) s1 += (double)op->w[p + 1] * t[op->ix[p + 1]];
    if (p + 2 < e) s2 += (double)op->w[p + 2] * t[op->ix[p + 2]];
    y[i] = op->dis[i] * ((s0 + s2) + (s1 + s3));
  }
}

/* op->tmp = D^-1/2 x */
static void op_scale_input(const op_t *op, const double *x) {
  for (int64_t i = 0; i < op->n; i++) op->tmp[i] = op->dis[i] * x[i];
}

/* ---------- block-ordered dot products and updates on a column-major basis ---------- */

enum { RBLOCK = 512 };

typedef struct {
  const double *V; /* column c at V + c * n */
  int64_t n, ncols;
  const double *x;
  double *partial; /* nblocks x ncols */
  const double *h;  /* for the update */
  double *y;
} basis_job;

/* partial[block][c] = V[:, c] . x over the block; eight interleaved sums combined in a fixed
 * order, so the compiler may use vector registers without changing the result */
VL_CLONES static void dots_block(int64_t lo, int64_t hi, int chunk, void *arg) {
  const basis_job *b = arg;
  double *out = b->partial + (int64_t)chunk * b->ncols;
  for (int64_t c = 0; c < b->ncols; c++) {
    const double *v = b->V + c * b->n;
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8)
      for (int t = 0; t < 8; t++) s[t] += v[i + t] * b->x[i + t];
    for (int t = 0; i < hi; i++, t++) s[t] += v[i] * b->x[i];
    out[c] = ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
  }
}

/* h[c] = V[:, c] . x for c < ncols, the same for any thread count */
static void basis_dots(vl_ctx *ctx, const double *V, int64_t n, int64_t ncols, const double *x,
                       double *h, double *partial) {
  if (ncols <= 0) return;
  basis_job b = {V, n, ncols, x, partial, NULL, NULL};
  vl_parallel_blocks(ctx, n, RBLOCK, dots_block, &b);
  int64_t nb = (n + RBLOCK - 1) / RBLOCK;
  for (int64_t c = 0; c < ncols; c++) {
    double s = 0;
    for (int64_t k = 0; k < nb; k++) s += partial[k * ncols + c];
    h[c] = s;
  }
}

/* y[i] -= sum_c h[c] V[i, c], c ascending; then the block's sum of y[i]^2 into partial */
VL_CLONES static void update_rows(int64_t lo, int64_t hi, int chunk, void *arg) {
  const basis_job *b = arg;
  for (int64_t c = 0; c < b->ncols; c++) {
    const double *v = b->V + c * b->n;
    const double hc = b->h[c];
    for (int64_t i = lo; i < hi; i++) b->y[i] -= hc * v[i];
  }
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = lo;
  for (; i + 8 <= hi; i += 8)
    for (int t = 0; t < 8; t++) s[t] += b->y[i + t] * b->y[i + t];
  for (int t = 0; i < hi; i++, t++) s[t] += b->y[i] * b->y[i];
  b->partial[chunk] = ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

/* y -= V h (ncols >= 0 columns); returns ||y||^2 afterwards, the same for any thread count */
static double basis_subtract(vl_ctx *ctx, const double *V, int64_t n, int64_t ncols,
                             const double *h, double *y, double *partial) {
  basis_job b = {V, n, ncols, NULL, partial, h, y};
  vl_parallel_blocks(ctx, n, RBLOCK, update_rows, &b);
  const int64_t nb = (n + RBLOCK - 1) / RBLOCK;
  double s = 0;
  for (int64_t k = 0; k < nb; k++) s += partial[k];
  return s;
}

typedef struct {
  const double *V;
  int64_t n, m, p;
  const double *S; /* m x p row-major: S[c * p + t] */
  double *out;     /* column-major n x p */
} combine_job;

/* out[:, t] = sum_c V[:, c] S[c, t] */
VL_CLONES static void combine_rows(int64_t lo, int64_t hi, int chunk, void *arg) {
  const combine_job *j = arg;
  for (int64_t t = 0; t < j->p; t++) {
    double *o = j->out + t * j->n;
    for (int64_t i = lo; i < hi; i++) o[i] = 0;
    for (int64_t c = 0; c < j->m; c++) {
      const double s = j->S[c * j->p + t];
      const double *v = j->V + c * j->n;
      for (int64_t i = lo; i < hi; i++) o[i] += s * v[i];
    }
  }
}

/* ---------- one Lanczos step in three parallel passes ---------- */

typedef struct {
  const op_t *op;
  const double *V;     /* the basis, column c at V + c * n; q0 at V - n */
  int64_t n;
  const double *pair;  /* the newest two columns (NULL: none) */
  const double *hpair; /* their coefficients, for the second pass */
  int64_t nq;          /* columns [q0, V[:, 0..nq - 1)) for the full dots */
  double *y;
  double *partial;
} step_job;

/* sum over [lo, hi) of a[i] * b[i], eight interleaved sums combined in a fixed order (as
 * dots_block) */
static inline double block_dot(const double *a, const double *b, int64_t lo, int64_t hi) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = lo;
  for (; i + 8 <= hi; i += 8)
    for (int t = 0; t < 8; t++) s[t] += a[i + t] * b[i + t];
  for (int t = 0; i < hi; i++, t++) s[t] += a[i] * b[i];
  return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

/* pass 1: the block's rows of y = N x (op->tmp = D^-1/2 x), and its dots with the pair */
VL_CLONES static void step_product(int64_t lo, int64_t hi, int chunk, void *arg) {
  const step_job *b = arg;
  matvec_range(b->op, lo, hi, b->y);
  if (b->pair) {
    b->partial[2 * (int64_t)chunk] = block_dot(b->pair, b->y, lo, hi);
    b->partial[2 * (int64_t)chunk + 1] = block_dot(b->pair + b->n, b->y, lo, hi);
  }
}

/* pass 2: y -= pair hpair over the block, then the block's ||y||^2 and its dots with all of Q
 * (partial[chunk * (nq + 1) + c], the norm last) */
VL_CLONES static void step_pair_then_dots(int64_t lo, int64_t hi, int chunk, void *arg) {
  const step_job *b = arg;
  double *y = b->y;
  if (b->pair)
    for (int c = 0; c < 2; c++) {
      const double *v = b->pair + c * b->n;
      const double hc = b->hpair[c];
      for (int64_t i = lo; i < hi; i++) y[i] -= hc * v[i];
    }
  double *out = b->partial + (int64_t)chunk * (b->nq + 1);
  const double *Q = b->V - b->n;
  for (int64_t c = 0; c < b->nq; c++) out[c] = block_dot(Q + c * b->n, y, lo, hi);
  out[b->nq] = block_dot(y, y, lo, hi);
}

/* w = N V[:, j] orthogonalised against [q0, V[:, 0..j]] like orthogonalize (the pair, then
 * classical Gram-Schmidt with the DGKS repeat), with the first sweep's dots taken in the
 * passes that also form the product and remove the pair: three parallel passes in all for
 * the usual step. Coefficients on V added to h. Returns ||w||. */
static double product_orthogonalized(vl_ctx *ctx, const op_t *op, const double *V, int64_t n,
                                     int64_t j, double *h, double *hh, double *partial) {
  const int64_t ncols = j + 1;
  double *w = (double *)V + ncols * n;
  op_scale_input(op, V + j * n);
  const int64_t nb = (n + RBLOCK - 1) / RBLOCK;
  double hpair[2] = {0, 0};
  step_job b = {op, V, n, ncols > 2 ? V + (ncols - 2) * n : NULL, hpair, ncols + 1, w, partial};
  vl_parallel_blocks(ctx, n, RBLOCK, step_product, &b);
  if (b.pair) {
    for (int c = 0; c < 2; c++) {
      double s = 0;
      for (int64_t k = 0; k < nb; k++) s += partial[k * 2 + c];
      hpair[c] = s;
      h[ncols - 2 + c] += s;
    }
  }
  vl_parallel_blocks(ctx, n, RBLOCK, step_pair_then_dots, &b);
  double before = 0;
  for (int64_t k = 0; k < nb; k++) before += partial[k * (ncols + 2) + ncols + 1];
  for (int64_t c = 0; c <= ncols; c++) {
    double s = 0;
    for (int64_t k = 0; k < nb; k++) s += partial[k * (ncols + 2) + c];
    hh[c] = s;
  }
  const double *Q = V - n;
  for (int pass = 0; pass < 3; pass++) {
    if (pass > 0) basis_dots(ctx, Q, n, ncols + 1, w, hh, partial);
    const double after = basis_subtract(ctx, Q, n, ncols + 1, hh, w, partial);
    for (int64_t c = 0; c < ncols; c++) h[c] += hh[c + 1];
    if (after > 0.5 * before) return sqrt(after);
    before = after;
  }
  return sqrt(before);
}

/* ---------- thick-restart Lanczos for the top nev eigenpairs of N orthogonal to q0 ---------- */

/* deterministic pseudo-random vector (start and restarts after breakdown) */
static void fill_noise(double *x, int64_t n, uint32_t stream) {
  const uint32_t key[2] = {0x5370656bu, 0x7472616cu};
  for (int64_t i = 0; i < n; i += 4) {
    uint32_t ctr[4] = {(uint32_t)i, (uint32_t)((uint64_t)i >> 32), stream, 0x4c616e63u}, out[4];
    vl_philox_block(ctr, key, out);
    for (int t = 0; t < 4 && i + t < n; t++) x[i + t] = (double)out[t] * 0x1p-32 - 0.5;
  }
}

/* Orthogonalises x against the columns of Q = [q0, V[:, 0..ncols)] (q0 is the column just
 * before V): first against the newest two columns of V (the Lanczos recurrence: nearly all of
 * x lies there), then by classical Gram-Schmidt over all of Q, repeated while a pass removes
 * most of what is left (the DGKS test, ||x'|| < ||x|| / sqrt 2). The coefficients on V are
 * added to h (which may be NULL). Returns ||x||. Two parallel passes per sweep. */
static double orthogonalize(vl_ctx *ctx, const double *V, int64_t n, int64_t ncols, double *x,
                            double *h, double *hh, double *partial) {
  double before;
  if (ncols > 2) {
    const int64_t first = ncols - 2;
    basis_dots(ctx, V + first * n, n, 2, x, hh, partial);
    before = basis_subtract(ctx, V + first * n, n, 2, hh, x, partial);
    if (h)
      for (int64_t c = first; c < ncols; c++) h[c] += hh[c - first];
  } else {
    before = basis_subtract(ctx, V, n, 0, hh, x, partial); /* just ||x||^2 */
  }
  const double *Q = V - n;
  for (int pass = 0; pass < 3; pass++) {
    basis_dots(ctx, Q, n, ncols + 1, x, hh, partial);
    const double after = basis_subtract(ctx, Q, n, ncols + 1, hh, x, partial);
    if (h)
      for (int64_t c = 0; c < ncols; c++) h[c] += hh[c + 1];
    if (after > 0.5 * before) return sqrt(after);
    before = after;
  }
  return sqrt(before);
}

/* Top nev eigenpairs of op (descending theta) with eigenvectors orthogonal to q0. vecs is
 * column-major n x nev; *maxres the largest residual norm of the pairs returned. Returns 0 on
 * convergence, 1 when the budget ran out, -1 on no memory. */
static int lanczos(vl_ctx *ctx, const op_t *op, const double *q0, int64_t nev, int64_t m,
                   double tol, int64_t budget, double *theta_out, double *vecs,
                   int64_t *matvecs, double *maxres) {
  const int64_t n = op->n;
  const int64_t nb = (n + RBLOCK - 1) / RBLOCK;
  int rc = -1;
  int64_t used = 0;
  /* the deflated q0 as column -1 of the basis V */
  double *Qall = malloc(sizeof(double) * (size_t)(n * (m + 2)));
  double *V = Qall ? Qall + n : NULL;
  double *H = calloc((size_t)(m * m), sizeof(double));
  double *h = malloc(sizeof(double) * (size_t)(m + 2));
  double *hh = malloc(sizeof(double) * (size_t)(m + 2));
  double *partial = malloc(sizeof(double) * (size_t)(nb * (m + 2)));
  double *theta = malloc(sizeof(double) * (size_t)m);
  double *Z = malloc(sizeof(double) * (size_t)(m * m));
  double *S = malloc(sizeof(double) * (size_t)(m * m));
  double *tmp = malloc(sizeof(double) * (size_t)(n * m));
  if (!V || !H || !h || !hh || !partial || !theta || !Z || !S || !tmp) goto out;
  memcpy(Qall, q0, sizeof(double) * (size_t)n);

  /* start: ones, slightly perturbed so no eigenvector is missed by symmetry */
  double *v0 = V;
  fill_noise(v0, n, 0);
  for (int64_t i = 0; i < n; i++) v0[i] = 1.0 + 0.5 * v0[i];
  double nrm = orthogonalize(ctx, V, n, 0, v0, NULL, hh, partial);
  for (int64_t i = 0; i < n; i++) v0[i] /= nrm;

  int64_t j0 = 0;
  uint32_t stream = 1;
  for (;;) {
    double beta = 0;
    for (int64_t j = j0; j < m; j++) {
      double *w = V + (j + 1) * n;
      memset(h, 0, sizeof(double) * (size_t)(j + 1));
      beta = product_orthogonalized(ctx, op, V, n, j, h, hh, partial);
      used++;
      for (int64_t i = 0; i <= j; i++) H[i * m + j] = H[j * m + i] = h[i];
      if (beta <= 1e-10 * (fabs(h[j]) > 1 ? fabs(h[j]) : 1)) {
        /* invariant subspace: continue from a fresh direction, uncoupled (beta = 0) */
        fill_noise(w, n, stream++);
        double r = orthogonalize(ctx, V, n, j + 1, w, NULL, hh, partial);
        if (!(r > 0)) {
          rc = 1;
          goto out;
        }
        for (int64_t i = 0; i < n; i++) w[i] /= r;
        beta = 0;
      } else {
        for (int64_t i = 0; i < n; i++) w[i] /= beta;
      }
    }
    /* Rayleigh-Ritz on span V[:, 0..m) */
    vl_error e2;
    if (vl_sym_eig(H, m, theta, Z, &e2) != VL_OK) goto out;
    /* descending: Ritz pair t is eigenpair m - 1 - t of H */
    bool done = true;
    *maxres = 0;
    for (int64_t t = 0; t < nev; t++) {
      double res = fabs(beta * Z[(m - 1) * m + (m - 1 - t)]);
      if (res > *maxres) *maxres = res;
      if (res > tol) done = false;
    }
    int64_t p = done || used >= budget ? nev : nev + (m - nev) / 2;
    for (int64_t c = 0; c < m; c++)
      for (int64_t t = 0; t < p; t++) S[c * p + t] = Z[c * m + (m - 1 - t)];
    combine_job cj = {V, n, m, p, S, tmp};
    vl_parallel_blocks(ctx, n, RBLOCK, combine_rows, &cj);
    if (done || used >= budget) {
      for (int64_t t = 0; t < nev; t++) theta_out[t] = theta[m - 1 - t];
      memcpy(vecs, tmp, sizeof(double) * (size_t)(n * nev));
      rc = done ? 0 : 1;
      break;
    }
    /* thick restart: the p leading Ritz vectors, then the last Lanczos vector */
    memmove(V + p * n, V + m * n, sizeof(double) * (size_t)n);
    memcpy(V, tmp, sizeof(double) * (size_t)(n * p));
    memset(H, 0, sizeof(double) * (size_t)(m * m));
    for (int64_t t = 0; t < p; t++) H[t * m + t] = theta[m - 1 - t];
    j0 = p;
  }
out:
  *matvecs = used;
  free(Qall);
  free(H);
  free(h);
  free(hh);
  free(partial);
  free(theta);
  free(Z);
  free(S);
  free(tmp);
  return rc;
}

/* ---------- per component ---------- */

/* sign: the entry of largest magnitude (first one on ties) is positive */
static void fix_sign(double *x, int64_t n) {
  int64_t best = 0;
  double bv = -1;
  for (int64_t i = 0; i < n; i++)
    if (fabs(x[i]) > bv) {
      bv = fabs(x[i]);
      best = i;
    }
  if (n > 0 && x[best] < 0)
    for (int64_t i = 0; i < n; i++) x[i] = -x[i];
}

/* Builds the local operator of the vertices `verts` (ascending) from a and its transpose
 * (at, same dtype), symmetrised: (W + W^T) / 2 restricted to the component. */
static int build_op(const vl_csr *a, const int64_t *t_ip, const int64_t *t_ix, const void *t_v,
                    const int64_t *verts, int64_t nc, const int64_t *local, op_t *op,
                    double *acc, int64_t *touched) {
  memset(op, 0, sizeof *op);
  op->n = nc;
  int64_t cap = 0;
  for (int64_t r = 0; r < nc; r++) {
    int64_t i = verts[r];
    cap += (a->indptr[i + 1] - a->indptr[i]) + (t_ip[i + 1] - t_ip[i]);
  }
  op->ip = malloc(sizeof(int64_t) * (size_t)(nc + 1));
  op->ix = malloc(sizeof(int32_t) * (size_t)(cap > 0 ? cap : 1));
  op->w = malloc(sizeof(float) * (size_t)(cap > 0 ? cap : 1));
  op->dis = malloc(sizeof(double) * (size_t)nc);
  op->tmp = malloc(sizeof(double) * (size_t)nc);
  if (!op->ip || !op->ix || !op->w || !op->dis || !op->tmp) return -1;
  int64_t q = 0;
  op->ip[0] = 0;
  for (int64_t r = 0; r < nc; r++) {
    int64_t i = verts[r], nt = 0;
    for (int side = 0; side < 2; side++) {
      const int64_t *ip = side ? t_ip : a->indptr, *ix = side ? t_ix : a->indices;
      for (int64_t p = ip[i]; p < ip[i + 1]; p++) {
        double v = side ? (a->dtype == VL_F32 ? (double)((const float *)t_v)[p]
                                              : ((const double *)t_v)[p])
                        : csr_value(a, p);
        if (!(v > 0)) continue;
        int64_t l = local[ix[p]];
        if (l < 0) continue;
        if (acc[l] == 0) touched[nt++] = l;
        acc[l] += 0.5 * v;
      }
    }
    double deg = 0;
    for (int64_t t = 0; t < nt; t++) {
      int64_t l = touched[t];
      op->ix[q] = (int32_t)l;
      op->w[q] = (float)acc[l];
      deg += (double)op->w[q];
      acc[l] = 0;
      q++;
    }
    op->ip[r + 1] = q;
    op->dis[r] = deg > 0 ? 1.0 / sqrt(deg) : 0;
  }
  return 0;
}

vl_status vl_spectral_components(vl_ctx *ctx, const vl_csr *a, const int64_t *labels,
                                 int64_t ncomp, int64_t dim, const vl_spectral_opts *o,
                                 double *out, double *evals, int *status, int64_t *matvecs,
                                 vl_error *err) {
  if (a->nrows != a->ncols)
    return vl_fail(err, VL_ERR_SHAPE, "the graph must be square, got %lld x %lld",
                   (long long)a->nrows, (long long)a->ncols);
  if (dim < 1) return vl_fail(err, VL_ERR_VALUE, "dim = %lld must be positive", (long long)dim);
  const int64_t n = a->nrows;
  const size_t vsz = a->dtype == VL_F32 ? sizeof(float) : sizeof(double);
  vl_status st = VL_OK;
  int64_t *t_ip = malloc(sizeof(int64_t) * (size_t)(n + 1));
  int64_t *t_ix = malloc(sizeof(int64_t) * (size_t)(a->nnz > 0 ? a->nnz : 1));
  void *t_v = malloc(vsz * (size_t)(a->nnz > 0 ? a->nnz : 1));
  int64_t *local = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
  int64_t *verts = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
  int64_t *start = calloc((size_t)(ncomp + 1), sizeof(int64_t));
  int64_t *touched = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
  double *acc = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
  double *q0 = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
  double *vecs = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1) * (size_t)dim);
  double *dense = NULL, *dw = NULL, *dz = NULL;
  if (!t_ip || !t_ix || !t_v || !local || !verts || !start || !touched || !acc || !q0 || !vecs)
    goto nomem;
  if ((st = vl_csr_transpose(a, t_ip, t_ix, t_v, err)) != VL_OK) goto out;
  /* vertices grouped by component, ascending within each */
  for (int64_t i = 0; i < n; i++) start[labels[i] + 1]++;
  for (int64_t c = 0; c < ncomp; c++) start[c + 1] += start[c];
  {
    int64_t *fill = malloc(sizeof(int64_t) * (size_t)(ncomp > 0 ? ncomp : 1));
    if (!fill) goto nomem;
    memcpy(fill, start, sizeof(int64_t) * (size_t)ncomp);
    for (int64_t i = 0; i < n; i++) {
      local[i] = -1;
      verts[fill[labels[i]]++] = i;
    }
    free(fill);
  }
  for (int64_t c = 0; c < ncomp; c++) {
    const int64_t nc = start[c + 1] - start[c];
    const int64_t *vc = verts + start[c];
    if (matvecs) matvecs[c] = 0;
    for (int64_t t = 0; t < dim; t++) evals[c * dim + t] = NAN;
    if (nc < 2 * dim || nc <= dim + 1) {
      status[c] = VL_SPECTRAL_TOO_SMALL;
      continue;
    }
    /* local numbering restricted to this component (others -1) */
    for (int64_t r = 0; r < nc; r++) local[vc[r]] = r;
    op_t op;
    int bad = build_op(a, t_ip, t_ix, t_v, vc, nc, local, &op, acc, touched);
    for (int64_t r = 0; r < nc; r++) local[vc[r]] = -1;
    if (bad) {
      op_free(&op);
      goto nomem;
    }
    int64_t m = o->basis > 0 ? o->basis : (2 * dim + 20 > 48 ? 2 * dim + 20 : 48);
    if (m > nc - 1) m = nc - 1;
    bool use_dense = o->force == 1 || (o->force != 2 && nc <= o->dense_max) || m <= dim + 1;
    if (use_dense) {
      /* all eigenpairs of N; the largest is the trivial one */
      dense = calloc((size_t)(nc * nc), sizeof(double));
      dw = malloc(sizeof(double) * (size_t)nc);
      dz = malloc(sizeof(double) * (size_t)(nc * nc));
      if (!dense || !dw || !dz) {
        op_free(&op);
        goto nomem;
      }
      for (int64_t r = 0; r < nc; r++)
        for (int64_t p = op.ip[r]; p < op.ip[r + 1]; p++)
          dense[r * nc + op.ix[p]] += op.dis[r] * (double)op.w[p] * op.dis[op.ix[p]];
      st = vl_sym_eig(dense, nc, dw, dz, err);
      if (st != VL_OK) {
        op_free(&op);
        goto out;
      }
      for (int64_t t = 0; t < dim; t++) {
        int64_t col = nc - 2 - t;
        for (int64_t r = 0; r < nc; r++) vecs[t * nc + r] = dz[r * nc + col];
        evals[c * dim + t] = 1.0 - dw[col];
      }
      free(dense);
      free(dw);
      free(dz);
      dense = dw = dz = NULL;
      status[c] = VL_SPECTRAL_OK;
    } else {
      /* deflate the trivial eigenvector sqrt(degree) */
      double s = 0;
      for (int64_t r = 0; r < nc; r++) {
        q0[r] = op.dis[r] > 0 ? 1.0 / op.dis[r] : 0;
        s += q0[r] * q0[r];
      }
      s = sqrt(s);
      for (int64_t r = 0; r < nc; r++) q0[r] /= s;
      int64_t budget = o->max_matvec > 0 ? o->max_matvec
                                         : 200 + (int64_t)(20.0 * sqrt((double)nc));
      double theta[64];
      double *th = dim <= 64 ? theta : malloc(sizeof(double) * (size_t)dim);
      int64_t used = 0;
      double maxres = INFINITY;
      int rc = th ? lanczos(ctx, &op, q0, dim, m, o->tol, budget, th, vecs, &used, &maxres) : -1;
      /* out of budget but close: still a fine starting layout */
      if (rc == 1 && maxres <= 1e3 * o->tol) rc = 0;
      if (matvecs) matvecs[c] = used;
      if (rc >= 0)
        for (int64_t t = 0; t < dim; t++) evals[c * dim + t] = 1.0 - th[t];
      if (th != theta) free(th);
      if (rc < 0) {
        op_free(&op);
        goto nomem;
      }
      status[c] = rc == 0 ? VL_SPECTRAL_OK : VL_SPECTRAL_FAILED;
    }
    op_free(&op);
    if (status[c] == VL_SPECTRAL_OK)
      for (int64_t t = 0; t < dim; t++) {
        fix_sign(vecs + t * nc, nc);
        for (int64_t r = 0; r < nc; r++) out[vc[r] * dim + t] = vecs[t * nc + r];
      }
  }
  goto out;
nomem:
  st = vl_fail(err, VL_ERR_NOMEM, "out of memory (spectral embedding of %lld vertices)",
               (long long)n);
out:
  free(t_ip);
  free(t_ix);
  free(t_v);
  free(local);
  free(verts);
  free(start);
  free(touched);
  free(acc);
  free(q0);
  free(vecs);
  free(dense);
  free(dw);
  free(dz);
  return st;
}
