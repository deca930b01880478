/* Indexing kernels (see ops_index.h). */
#include "ops_index.h"

#include <string.h>

#include "ops_elementwise.h"

typedef struct {
  const vl_tensor *x, *out;
  const int64_t *idx;
  size_t row_bytes;
} rows_job;

static void copy_rows(int64_t lo, int64_t hi, int chunk, void *vp) {
  const rows_job *j = vp;
  (void)chunk;
  for (int64_t i = lo; i < hi; i++)
    memcpy(j->out->data + (size_t)i * j->row_bytes, j->x->data + (size_t)j->idx[i] * j->row_bytes,
           j->row_bytes);
}

vl_status vl_index_select(vl_ctx *ctx, const vl_tensor *x, int dim, const int64_t *idx, int64_t n,
                          const vl_tensor *out, vl_error *err) {
  if (x->dtype != out->dtype) return vl_fail(err, VL_ERR_DTYPE, "index: output dtype differs");
  if (dim == 0 && x->ndim >= 1 && vl_is_contiguous(x) && vl_is_contiguous(out)) {
    /* whole contiguous rows (e.g. a mini-batch of cells): plain copies, in parallel */
    rows_job j = {x, out, idx, vl_dtype_size(x->dtype) * (size_t)(vl_numel(x) / (x->shape[0] ? x->shape[0] : 1))};
    if (j.row_bytes > 0) vl_parallel_for(ctx, n, 1 + (int64_t)(262144 / (j.row_bytes + 1)), copy_rows, &j);
    return VL_OK;
  }
  vl_tensor xs, os;
  for (int64_t i = 0; i < n; i++) {
    vl_status st = vl_view_select(x, dim, idx[i], &xs, err);
    if (!st) st = vl_view_select(out, dim, i, &os, err);
    if (st) return st;
    if (xs.ndim == 0) memcpy(os.data, xs.data, vl_dtype_size(x->dtype));
    else if ((st = vl_copy(ctx, &os, &xs, err))) return st;
  }
  return VL_OK;
}

vl_status vl_index_add(vl_ctx *ctx, const vl_tensor *dst, int dim, const int64_t *idx, int64_t n,
                       const vl_tensor *src, vl_error *err) {
  if (dst->dtype != src->dtype) return vl_fail(err, VL_ERR_DTYPE, "index_add_: dtypes differ");
  vl_tensor ds, ss;
  for (int64_t i = 0; i < n; i++) {
    vl_status st = vl_view_select(dst, dim, idx[i], &ds, err);
    if (!st) st = vl_view_select(src, dim, i, &ss, err);
    if (!st) st = vl_binary(ctx, VL_ADD, &ds, &ds, &ss, err);
    if (st) return st;
  }
  return VL_OK;
}

/* Walks every element of index (row-major), calling fn with the element offsets (in elements)
 * into the indexed tensor t (coordinate dim replaced) and into the partner tensor u (same
 * coordinates as the index). */
typedef vl_status (*visit_fn)(const vl_tensor *t, int64_t t_off, const vl_tensor *u, int64_t u_off,
                              void *arg);

static vl_status walk(const vl_tensor *t, int dim, const vl_tensor *index, const vl_tensor *u,
                      visit_fn fn, void *arg, const char *name, vl_error *err) {
  int nd = index->ndim;
  if (t->ndim != nd || u->ndim != nd)
    return vl_fail(err, VL_ERR_SHAPE, "%s: index, input and output need the same number of dims",
                   name);
  for (int d = 0; d < nd; d++) {
    if (u->shape[d] < index->shape[d] || (d != dim && t->shape[d] < index->shape[d])) {
      char b1[128], b2[128];
      return vl_fail(err, VL_ERR_SHAPE, "%s: index shape %s does not fit tensor shape %s (dim %d)",
                     name, vl_shape_str(nd, index->shape, b1, sizeof b1),
                     vl_shape_str(nd, t->shape, b2, sizeof b2), d + 1);
    }
  }
  int64_t n = vl_numel(index);
  int64_t pos[VL_MAX_DIMS] = {0};
  for (int64_t e = 0; e < n; e++) {
    int64_t k = vl_get_i64(index, pos);
    if (k < 0 || k >= t->shape[dim])
      return vl_fail(err, VL_ERR_INDEX, "%s: index %lld out of range for dim %d of size %lld", name,
                     (long long)k + 1, dim + 1, (long long)t->shape[dim]);
    int64_t to = 0, uo = 0;
    for (int d = 0; d < nd; d++) {
      to += (d == dim ? k : pos[d]) * t->stride[d];
      uo += pos[d] * u->stride[d];
    }
    vl_status st = fn(t, to, u, uo, arg);
    if (st) return st;
    for (int d = nd - 1; d >= 0; d--) {
      if (++pos[d] < index->shape[d]) break;
      pos[d] = 0;
    }
  }
  return VL_OK;
}

static vl_status gather_one(const vl_tensor *x, int64_t xo, const vl_tensor *out, int64_t oo,
                            void *arg) {
  size_t esz = vl_dtype_size(x->dtype);
  memcpy(out->data + oo * (int64_t)esz, x->data + xo * (int64_t)esz, esz);
  return VL_OK;
}

static vl_status scatter_one(const vl_tensor *dst, int64_t d_off, const vl_tensor *src,
                             int64_t s_off, void *arg) {
  char *d = dst->data + d_off * (int64_t)vl_dtype_size(dst->dtype);
  const char *s = src->data + s_off * (int64_t)vl_dtype_size(src->dtype);
  switch (dst->dtype) {
    case VL_F32: *(float *)d += *(const float *)s; break;
    case VL_F64: *(double *)d += *(const double *)s; break;
    case VL_I64: *(int64_t *)d += *(const int64_t *)s; break;
    case VL_BOOL: *(uint8_t *)d = *(uint8_t *)d || *(const uint8_t *)s; break;
    default: break;
  }
  return VL_OK;
}

vl_status vl_gather(const vl_tensor *x, int dim, const vl_tensor *index, const vl_tensor *out,
                    vl_error *err) {
  if (x->dtype != out->dtype) return vl_fail(err, VL_ERR_DTYPE, "gather: output dtype differs");
  if (index->dtype != VL_I64) return vl_fail(err, VL_ERR_DTYPE, "gather: index must be i64");
  return walk(x, dim, index, out, gather_one, NULL, "gather", err);
}

vl_status vl_scatter_add(const vl_tensor *dst, int dim, const vl_tensor *index,
                         const vl_tensor *src, vl_error *err) {
  if (dst->dtype != src->dtype) return vl_fail(err, VL_ERR_DTYPE, "scatter_add_: dtypes differ");
  if (index->dtype != VL_I64) return vl_fail(err, VL_ERR_DTYPE, "scatter_add_: index must be i64");
  return walk(dst, dim, index, src, scatter_one, NULL, "scatter_add_", err);
}
