/* Matrix products (see blas.h). */
#include "blas.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "ops_elementwise.h"

/* How a 2-d operand (rows x cols, strides s0, s1) is handed to row-major BLAS. */
typedef struct {
  bool ok;
  CBLAS_TRANSPOSE trans;
  int64_t ld;
} layout;

static layout blas_layout(int64_t rows, int64_t cols, int64_t s0, int64_t s1) {
  layout l = {false, CblasNoTrans, 0};
  int64_t mc = cols > 1 ? cols : 1, mr = rows > 1 ? rows : 1;
  if ((s1 == 1 || cols <= 1) && (s0 >= mc || rows <= 1)) {
    l.ok = true;
    l.trans = CblasNoTrans;
    l.ld = rows <= 1 ? mc : s0;
  } else if ((s0 == 1 || rows <= 1) && (s1 >= mr || cols <= 1)) {
    l.ok = true;
    l.trans = CblasTrans;
    l.ld = cols <= 1 ? mr : s1;
  }
  if (l.ok && (l.ld > 0x7fffffff || rows > 0x7fffffff || cols > 0x7fffffff)) l.ok = false;
  return l;
}

static void gemm_i64(int64_t m, int64_t n, int64_t k, const char *a, int64_t a0, int64_t a1,
                     const char *b, int64_t b0, int64_t b1, char *c, int64_t c0, bool acc) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      uint64_t s = acc ? (uint64_t)((int64_t *)c)[i * c0 + j] : 0;
      for (int64_t p = 0; p < k; p++)
        s += (uint64_t)((const int64_t *)a)[i * a0 + p * a1] *
             (uint64_t)((const int64_t *)b)[p * b0 + j * b1];
      ((int64_t *)c)[i * c0 + j] = (int64_t)s;
    }
}

/* One row-major GEMM c = a b + beta c, split over the pool by rows of c (or by columns when
 * it has more columns than rows), each part a single-threaded BLAS call. OpenBLAS's own
 * threads stay out of it: after a job they spin (sched_yield) for about 0.1 s waiting for the
 * next one, taking the second core from our elementwise loops, which run between GEMMs all
 * the time in training. Every element of c comes from one call over the whole k, but OpenBLAS
 * picks its kernels by size (small-matrix paths), so the last bits may depend on the thread
 * count, as with OpenBLAS's own threading. (A split into fixed blocks, independent of the
 * thread count, cost 4-5 % on one thread; not worth it.) */
typedef struct {
  bool f32;
  CBLAS_TRANSPOSE ta, tb;
  int64_t m, n, k;
  const char *a;
  int64_t lda;
  const char *b;
  int64_t ldb;
  double beta;
  char *c;
  int64_t ldc;
  size_t esz;
  bool by_rows;
} gemm_job;

static void gemm_part(int64_t lo, int64_t hi, int chunk, void *vp) {
  const gemm_job *j = vp;
  (void)chunk;
  int64_t m = j->m, n = j->n;
  const char *a = j->a, *b = j->b;
  char *c = j->c;
  if (j->by_rows) {
    m = hi - lo;
    a += (size_t)(j->ta == CblasNoTrans ? lo * j->lda : lo) * j->esz;
    c += (size_t)(lo * j->ldc) * j->esz;
  } else {
    n = hi - lo;
    b += (size_t)(j->tb == CblasNoTrans ? lo : lo * j->ldb) * j->esz;
    c += (size_t)lo * j->esz;
  }
  if (j->f32)
    cblas_sgemm(CblasRowMajor, j->ta, j->tb, (blasint)m, (blasint)n, (blasint)j->k, 1.0f,
                (const float *)a, (blasint)j->lda, (const float *)b, (blasint)j->ldb,
                (float)j->beta, (float *)c, (blasint)j->ldc);
  else
    cblas_dgemm(CblasRowMajor, j->ta, j->tb, (blasint)m, (blasint)n, (blasint)j->k, 1.0,
                (const double *)a, (blasint)j->lda, (const double *)b, (blasint)j->ldb, j->beta,
                (double *)c, (blasint)j->ldc);
}

/* Below this many multiply-adds a GEMM runs on the calling thread alone. */
#define GEMM_PARALLEL_MIN ((int64_t)1 << 20)

int vl_blas_single_begin(void) {
  int saved = openblas_get_num_threads();
  if (saved != 1) openblas_set_num_threads(1);
  return saved;
}

void vl_blas_single_end(int saved) {
  if (saved != 1) openblas_set_num_threads(saved);
}

static void gemm_run(vl_ctx *ctx, const gemm_job *j) {
  int64_t len = j->by_rows ? j->m : j->n;
  int saved = vl_blas_single_begin();
  if (ctx && ctx->num_threads > 1 && j->m * j->n * j->k >= GEMM_PARALLEL_MIN && len >= 32)
    vl_parallel_for(ctx, len, 16, gemm_part, (void *)j);
  else
    gemm_part(0, len, 0, (void *)j);
  vl_blas_single_end(saved);
}

/* One 2-d product c = a b + beta c; a and b are [m,k] and [k,n] views (ndim 2); beta is 0 or 1. */
static vl_status gemm2d(vl_ctx *ctx, const vl_tensor *a, const vl_tensor *b, const vl_tensor *c,
                        double beta, void **scratch, size_t *scratch_size, vl_error *err) {
  int64_t m = a->shape[0], k = a->shape[1], n = b->shape[1];
  if (m == 0 || n == 0) return VL_OK;
  if (k == 0) return beta != 0 ? VL_OK : vl_fill(ctx, c, 0.0, 0, err);
  if (a->dtype == VL_I64) {
    gemm_i64(m, n, k, a->data, a->stride[0], a->stride[1], b->data, b->stride[0], b->stride[1],
             c->data, c->stride[0], beta != 0);
    return VL_OK;
  }
  size_t esz = vl_dtype_size(a->dtype);
  layout la = blas_layout(m, k, a->stride[0], a->stride[1]);
  layout lb = blas_layout(k, n, b->stride[0], b->stride[1]);
  const char *pa = a->data, *pb = b->data;
  size_t need = (la.ok ? 0 : (size_t)(m * k)) + (lb.ok ? 0 : (size_t)(k * n));
  if (need) {
    need *= esz;
    if (need > *scratch_size) {
      void *p = realloc(*scratch, need);
      if (!p) return vl_fail(err, VL_ERR_NOMEM, "matmul: out of memory for a %zu-byte copy", need);
      *scratch = p;
      *scratch_size = need;
    }
    char *s = *scratch;
    if (!la.ok) {
      vl_tensor t = *a;
      t.data = s;
      vl_set_contiguous_strides(&t);
      vl_status st = vl_copy(ctx, &t, a, err);
      if (st) return st;
      pa = s;
      la = blas_layout(m, k, k, 1);
      s += (size_t)(m * k) * esz;
    }
    if (!lb.ok) {
      vl_tensor t = *b;
      t.data = s;
      vl_set_contiguous_strides(&t);
      vl_status st = vl_copy(ctx, &t, b, err);
      if (st) return st;
      pb = s;
      lb = blas_layout(k, n, n, 1);
    }
  }
  int64_t ldc = m <= 1 ? (n > 1 ? n : 1) : c->stride[0];
  gemm_job j = {a->dtype == VL_F32, la.trans, lb.trans, m, n, k, pa, la.ld, pb, lb.ld, beta,
                c->data, ldc, esz, m >= n};
  gemm_run(ctx, &j);
  return VL_OK;
}

vl_status vl_matmul(vl_ctx *ctx, const vl_tensor *a, const vl_tensor *b, const vl_tensor *c,
                    vl_error *err) {
  if (a->dtype != b->dtype || a->dtype != c->dtype)
    return vl_fail(err, VL_ERR_DTYPE, "matmul: dtypes differ (%s, %s, output %s)",
                   vl_dtype_name(a->dtype), vl_dtype_name(b->dtype), vl_dtype_name(c->dtype));
  if (a->dtype == VL_BOOL)
    return vl_fail(err, VL_ERR_DTYPE, "matmul: not defined for bool tensors");
  int nd = a->ndim;
  if (nd < 2 || b->ndim != nd || c->ndim != nd)
    return vl_fail(err, VL_ERR_SHAPE, "matmul: operands must have the same number (>= 2) of dims");
  int64_t m = a->shape[nd - 2], k = a->shape[nd - 1], n = b->shape[nd - 1];
  if (b->shape[nd - 2] != k || c->shape[nd - 2] != m || c->shape[nd - 1] != n) {
    char b1[128], b2[128];
    return vl_fail(err, VL_ERR_SHAPE, "shapes %s and %s do not match (dim %d of a vs dim %d of b)",
                   vl_shape_str(a->ndim, a->shape, b1, sizeof b1),
                   vl_shape_str(b->ndim, b->shape, b2, sizeof b2), nd, nd - 1);
  }
  if (n > 1 && c->stride[nd - 1] != 1)
    return vl_fail(err, VL_ERR_UNSUPPORTED, "matmul: output must have unit stride in its last dim");
  int64_t batch = 1;
  for (int d = 0; d < nd - 2; d++) {
    if (a->shape[d] != c->shape[d] || b->shape[d] != c->shape[d])
      return vl_fail(err, VL_ERR_SHAPE, "matmul: batch dim %d differs", d + 1);
    batch *= c->shape[d];
  }
  void *scratch = NULL;
  size_t scratch_size = 0;
  vl_status st = VL_OK;
  int64_t idx[VL_MAX_DIMS] = {0};
  size_t esz = vl_dtype_size(a->dtype);
  for (int64_t bi = 0; bi < batch && st == VL_OK; bi++) {
    vl_tensor a2 = *a, b2 = *b, c2 = *c;
    int64_t oa = 0, ob = 0, oc = 0;
    for (int d = 0; d < nd - 2; d++) {
      oa += idx[d] * a->stride[d];
      ob += idx[d] * b->stride[d];
      oc += idx[d] * c->stride[d];
    }
    a2.ndim = b2.ndim = c2.ndim = 2;
    a2.shape[0] = m; a2.shape[1] = k; a2.stride[0] = a->stride[nd - 2]; a2.stride[1] = a->stride[nd - 1];
    b2.shape[0] = k; b2.shape[1] = n; b2.stride[0] = b->stride[nd - 2]; b2.stride[1] = b->stride[nd - 1];
    c2.shape[0] = m; c2.shape[1] = n; c2.stride[0] = c->stride[nd - 2]; c2.stride[1] = c->stride[nd - 1];
    a2.data = a->data + oa * (int64_t)esz;
    b2.data = b->data + ob * (int64_t)esz;
    c2.data = c->data + oc * (int64_t)esz;
    st = gemm2d(ctx, &a2, &b2, &c2, 0.0, &scratch, &scratch_size, err);
    for (int d = nd - 3; d >= 0; d--) {
      if (++idx[d] < c->shape[d]) break;
      idx[d] = 0;
    }
  }
  free(scratch);
  return st;
}

vl_status vl_linear(vl_ctx *ctx, const vl_tensor *x, const vl_tensor *w, const vl_tensor *bias,
                    const vl_tensor *out, vl_error *err) {
  if (!vl_dtype_is_float(x->dtype) || w->dtype != x->dtype || out->dtype != x->dtype ||
      (bias && bias->dtype != x->dtype))
    return vl_fail(err, VL_ERR_DTYPE, "linear: input, weight%s and output must all be f32 or "
                   "all f64", bias ? ", bias" : "");
  if (x->ndim != 2 || w->ndim != 2 || out->ndim != 2 || (bias && bias->ndim != 1))
    return vl_fail(err, VL_ERR_SHAPE, "linear: expected a 2-d input and weight, 1-d bias");
  int64_t m = x->shape[0], k = x->shape[1], n = w->shape[0];
  if (w->shape[1] != k || out->shape[0] != m || out->shape[1] != n || (bias && bias->shape[0] != n))
    return vl_fail(err, VL_ERR_SHAPE, "linear: shapes do not match (input [%lld, %lld], weight "
                   "[%lld, %lld])", (long long)m, (long long)k, (long long)w->shape[0],
                   (long long)w->shape[1]);
  if (n > 1 && out->stride[1] != 1)
    return vl_fail(err, VL_ERR_UNSUPPORTED, "linear: output must have unit stride in its last dim");
  double beta = 0.0;
  if (bias && m > 0 && n > 0) {
    /* the bias broadcast over the rows, then GEMM accumulates onto it */
    vl_tensor rows;
    int64_t shape[2] = {m, n};
    vl_status st = vl_broadcast_to(bias, 2, shape, &rows, err);
    if (st == VL_OK) st = vl_copy(ctx, out, &rows, err);
    if (st) return st;
    beta = 1.0;
  }
  vl_tensor wt = *w; /* w^T: [k, n] */
  wt.shape[0] = k;
  wt.shape[1] = n;
  wt.stride[0] = w->stride[1];
  wt.stride[1] = w->stride[0];
  void *scratch = NULL;
  size_t scratch_size = 0;
  vl_status st = gemm2d(ctx, x, &wt, out, beta, &scratch, &scratch_size, err);
  free(scratch);
  return st;
}
