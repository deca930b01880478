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
                     const char *b, int64_t b0, int64_t b1, char *c, int64_t c0) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      uint64_t s = 0;
      for (int64_t p = 0; p < k; p++)
        s += (uint64_t)((const int64_t *)a)[i * a0 + p * a1] *
             (uint64_t)((const int64_t *)b)[p * b0 + j * b1];
      ((int64_t *)c)[i * c0 + j] = (int64_t)s;
    }
}

/* One 2-d product; a and b are [m,k] and [k,n] views (ndim 2). */
static vl_status gemm2d(vl_ctx *ctx, const vl_tensor *a, const vl_tensor *b, const vl_tensor *c,
                        void **scratch, size_t *scratch_size, vl_error *err) {
  int64_t m = a->shape[0], k = a->shape[1], n = b->shape[1];
  if (m == 0 || n == 0) return VL_OK;
  if (k == 0) return vl_fill(ctx, c, 0.0, 0, err);
  if (a->dtype == VL_I64) {
    gemm_i64(m, n, k, a->data, a->stride[0], a->stride[1], b->data, b->stride[0], b->stride[1],
             c->data, c->stride[0]);
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
  if (a->dtype == VL_F32)
    cblas_sgemm(CblasRowMajor, la.trans, lb.trans, (blasint)m, (blasint)n, (blasint)k, 1.0f,
                (const float *)pa, (blasint)la.ld, (const float *)pb, (blasint)lb.ld, 0.0f,
                (float *)c->data, (blasint)ldc);
  else
    cblas_dgemm(CblasRowMajor, la.trans, lb.trans, (blasint)m, (blasint)n, (blasint)k, 1.0,
                (const double *)pa, (blasint)la.ld, (const double *)pb, (blasint)lb.ld, 0.0,
                (double *)c->data, (blasint)ldc);
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
    st = gemm2d(ctx, &a2, &b2, &c2, &scratch, &scratch_size, err);
    for (int d = nd - 3; d >= 0; d--) {
      if (++idx[d] < c->shape[d]) break;
      idx[d] = 0;
    }
  }
  free(scratch);
  return st;
}
