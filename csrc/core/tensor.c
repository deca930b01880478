/* Tensor views: dtype facts, shape checks, broadcasting and copy-free view transforms. */
#include "tensor.h"

#include <stdio.h>
#include <string.h>

size_t vl_dtype_size(vl_dtype dt) {
  switch (dt) {
    case VL_F32: return 4;
    case VL_F64: return 8;
    case VL_I64: return 8;
    case VL_BOOL: return 1;
    default: return 0;
  }
}

const char *vl_dtype_name(vl_dtype dt) {
  static const char *names[] = {"f32", "f64", "i64", "bool"};
  return (dt >= 0 && dt < VL_NDTYPES) ? names[dt] : "?";
}

bool vl_dtype_parse(const char *name, vl_dtype *out) {
  static const struct { const char *name; vl_dtype dt; } table[] = {
    {"f32", VL_F32}, {"float32", VL_F32}, {"float", VL_F32},
    {"f64", VL_F64}, {"float64", VL_F64}, {"double", VL_F64},
    {"i64", VL_I64}, {"int64", VL_I64}, {"long", VL_I64},
    {"bool", VL_BOOL},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    if (strcmp(name, table[i].name) == 0) {
      *out = table[i].dt;
      return true;
    }
  }
  return false;
}

bool vl_dtype_is_float(vl_dtype dt) { return dt == VL_F32 || dt == VL_F64; }

vl_dtype vl_dtype_promote(vl_dtype a, vl_dtype b) {
  /* rank: bool < i64 < f32 < f64 */
  static const int rank[] = {2, 3, 1, 0};
  return rank[a] >= rank[b] ? a : b;
}

int64_t vl_numel(const vl_tensor *t) {
  int64_t n = 1;
  for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
  return n;
}

bool vl_is_contiguous(const vl_tensor *t) {
  int64_t expected = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->stride[d] != expected) return false;
    expected *= t->shape[d];
  }
  return true;
}

void vl_set_contiguous_strides(vl_tensor *t) {
  int64_t s = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    t->stride[d] = s;
    s *= t->shape[d] > 0 ? t->shape[d] : 1;
  }
}

int64_t vl_extent(const vl_tensor *t) {
  int64_t last = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (t->shape[d] == 0) return 0;
    last += (t->shape[d] - 1) * t->stride[d];
  }
  return last + 1;
}

vl_status vl_check_shape(int ndim, const int64_t *shape, int64_t *numel, vl_error *err) {
  if (ndim < 0 || ndim > VL_MAX_DIMS)
    return vl_fail(err, VL_ERR_SHAPE, "a tensor has 0 to %d dims, got %d", VL_MAX_DIMS, ndim);
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0)
      return vl_fail(err, VL_ERR_VALUE, "size of dim %d must be >= 0, got %lld", d + 1,
                     (long long)shape[d]);
    if (shape[d] > 0 && n > INT64_MAX / 16 / shape[d])
      return vl_fail(err, VL_ERR_VALUE, "shape is too large (dim %d = %lld)", d + 1,
                     (long long)shape[d]);
    n *= shape[d];
  }
  if (numel) *numel = n;
  return VL_OK;
}

const char *vl_shape_str(int ndim, const int64_t *shape, char *buf, size_t len) {
  size_t pos = 0;
  pos += (size_t)snprintf(buf + pos, len - pos, "{");
  for (int d = 0; d < ndim && pos < len; d++)
    pos += (size_t)snprintf(buf + pos, len - pos, d ? ",%lld" : "%lld", (long long)shape[d]);
  if (pos < len) snprintf(buf + pos, len - pos, "}");
  return buf;
}

vl_status vl_broadcast_shape(int ndim_a, const int64_t *a, int ndim_b, const int64_t *b,
                             int *out_ndim, int64_t *out_shape, vl_error *err) {
  int n = ndim_a > ndim_b ? ndim_a : ndim_b;
  int64_t tmp[VL_MAX_DIMS];
  for (int i = 0; i < n; i++) {
    int da = ndim_a - n + i, db = ndim_b - n + i;
    int64_t sa = da >= 0 ? a[da] : 1, sb = db >= 0 ? b[db] : 1;
    if (sa == sb || sb == 1) tmp[i] = sa;
    else if (sa == 1) tmp[i] = sb;
    else {
      char bufa[128], bufb[128];
      return vl_fail(err, VL_ERR_SHAPE,
                     "shapes %s and %s cannot be broadcast (dim %d of the result: %lld vs %lld)",
                     vl_shape_str(ndim_a, a, bufa, sizeof bufa),
                     vl_shape_str(ndim_b, b, bufb, sizeof bufb), i + 1, (long long)sa,
                     (long long)sb);
    }
  }
  memcpy(out_shape, tmp, sizeof(int64_t) * (size_t)n);
  *out_ndim = n;
  return VL_OK;
}

vl_status vl_broadcast_to(const vl_tensor *t, int ndim, const int64_t *shape, vl_tensor *out,
                          vl_error *err) {
  if (ndim < t->ndim) {
    char b1[128], b2[128];
    return vl_fail(err, VL_ERR_SHAPE, "cannot broadcast shape %s to %s",
                   vl_shape_str(t->ndim, t->shape, b1, sizeof b1),
                   vl_shape_str(ndim, shape, b2, sizeof b2));
  }
  vl_tensor r = *t;
  r.ndim = ndim;
  for (int i = 0; i < ndim; i++) {
    int d = t->ndim - ndim + i;
    int64_t size = d >= 0 ? t->shape[d] : 1;
    int64_t stride = d >= 0 ? t->stride[d] : 0;
    if (size == shape[i]) {
      r.shape[i] = size;
      r.stride[i] = size == 1 ? 0 : stride;
    } else if (size == 1) {
      r.shape[i] = shape[i];
      r.stride[i] = 0;
    } else {
      char b1[128], b2[128];
      return vl_fail(err, VL_ERR_SHAPE, "cannot broadcast shape %s to %s",
                     vl_shape_str(t->ndim, t->shape, b1, sizeof b1),
                     vl_shape_str(ndim, shape, b2, sizeof b2));
    }
  }
  *out = r;
  return VL_OK;
}

char *vl_elem_ptr(const vl_tensor *t, const int64_t *index) {
  int64_t off = 0;
  for (int d = 0; d < t->ndim; d++) off += index[d] * t->stride[d];
  return t->data + off * (int64_t)vl_dtype_size(t->dtype);
}

double vl_get_f64(const vl_tensor *t, const int64_t *index) {
  const char *p = vl_elem_ptr(t, index);
  switch (t->dtype) {
    case VL_F32: return *(const float *)p;
    case VL_F64: return *(const double *)p;
    case VL_I64: return (double)*(const int64_t *)p;
    case VL_BOOL: return *(const uint8_t *)p ? 1.0 : 0.0;
    default: return 0.0;
  }
}

int64_t vl_get_i64(const vl_tensor *t, const int64_t *index) {
  const char *p = vl_elem_ptr(t, index);
  switch (t->dtype) {
    case VL_F32: return (int64_t)*(const float *)p;
    case VL_F64: return (int64_t)*(const double *)p;
    case VL_I64: return *(const int64_t *)p;
    case VL_BOOL: return *(const uint8_t *)p ? 1 : 0;
    default: return 0;
  }
}

void vl_set_f64(const vl_tensor *t, const int64_t *index, double v) {
  char *p = vl_elem_ptr(t, index);
  switch (t->dtype) {
    case VL_F32: *(float *)p = (float)v; break;
    case VL_F64: *(double *)p = v; break;
    case VL_I64: *(int64_t *)p = (int64_t)v; break;
    case VL_BOOL: *(uint8_t *)p = v != 0.0; break;
    default: break;
  }
}

void vl_set_i64(const vl_tensor *t, const int64_t *index, int64_t v) {
  char *p = vl_elem_ptr(t, index);
  switch (t->dtype) {
    case VL_F32: *(float *)p = (float)v; break;
    case VL_F64: *(double *)p = (double)v; break;
    case VL_I64: *(int64_t *)p = v; break;
    case VL_BOOL: *(uint8_t *)p = v != 0; break;
    default: break;
  }
}

static vl_status check_dim(const vl_tensor *t, int dim, vl_error *err) {
  if (dim < 0 || dim >= t->ndim)
    return vl_fail(err, VL_ERR_INDEX, "dim %d out of range for a %d-d tensor", dim + 1, t->ndim);
  return VL_OK;
}

vl_status vl_view_transpose(const vl_tensor *t, int a, int b, vl_tensor *out, vl_error *err) {
  if (check_dim(t, a, err) || check_dim(t, b, err)) return err ? err->code : VL_ERR_INDEX;
  vl_tensor r = *t;
  r.shape[a] = t->shape[b];
  r.shape[b] = t->shape[a];
  r.stride[a] = t->stride[b];
  r.stride[b] = t->stride[a];
  *out = r;
  return VL_OK;
}

vl_status vl_view_permute(const vl_tensor *t, const int *perm, vl_tensor *out, vl_error *err) {
  bool seen[VL_MAX_DIMS] = {false};
  vl_tensor r = *t;
  for (int i = 0; i < t->ndim; i++) {
    int p = perm[i];
    if (p < 0 || p >= t->ndim || seen[p])
      return vl_fail(err, VL_ERR_VALUE, "permute: entry %d (%d) is not a permutation of 1..%d",
                     i + 1, p + 1, t->ndim);
    seen[p] = true;
    r.shape[i] = t->shape[p];
    r.stride[i] = t->stride[p];
  }
  *out = r;
  return VL_OK;
}

vl_status vl_view_select(const vl_tensor *t, int dim, int64_t index, vl_tensor *out,
                         vl_error *err) {
  if (check_dim(t, dim, err)) return VL_ERR_INDEX;
  if (index < 0 || index >= t->shape[dim])
    return vl_fail(err, VL_ERR_INDEX, "index %lld out of range for dim %d of size %lld",
                   (long long)index + 1, dim + 1, (long long)t->shape[dim]);
  vl_tensor r = *t;
  r.data = t->data + index * t->stride[dim] * (int64_t)vl_dtype_size(t->dtype);
  for (int d = dim; d < t->ndim - 1; d++) {
    r.shape[d] = t->shape[d + 1];
    r.stride[d] = t->stride[d + 1];
  }
  r.ndim = t->ndim - 1;
  *out = r;
  return VL_OK;
}

vl_status vl_view_narrow(const vl_tensor *t, int dim, int64_t start, int64_t len, vl_tensor *out,
                         vl_error *err) {
  if (check_dim(t, dim, err)) return VL_ERR_INDEX;
  if (len < 0 || start < 0 || start + len > t->shape[dim])
    return vl_fail(err, VL_ERR_INDEX,
                   "range start %lld, length %lld out of range for dim %d of size %lld",
                   (long long)start + 1, (long long)len, dim + 1, (long long)t->shape[dim]);
  vl_tensor r = *t;
  if (len > 0) r.data = t->data + start * t->stride[dim] * (int64_t)vl_dtype_size(t->dtype);
  r.shape[dim] = len;
  *out = r;
  return VL_OK;
}

vl_status vl_view_unsqueeze(const vl_tensor *t, int dim, vl_tensor *out, vl_error *err) {
  if (dim < 0 || dim > t->ndim || t->ndim >= VL_MAX_DIMS)
    return vl_fail(err, VL_ERR_INDEX, "unsqueeze: dim %d out of range for a %d-d tensor", dim + 1,
                   t->ndim);
  vl_tensor r = *t;
  for (int d = t->ndim; d > dim; d--) {
    r.shape[d] = t->shape[d - 1];
    r.stride[d] = t->stride[d - 1];
  }
  r.shape[dim] = 1;
  r.stride[dim] = dim < t->ndim ? t->stride[dim] * t->shape[dim] : 1;
  r.ndim = t->ndim + 1;
  *out = r;
  return VL_OK;
}

/* Reshape without copying: walk old dims in chunks whose product matches new dims, each chunk
 * must be contiguous within itself (as in PyTorch's computeStride). */
vl_status vl_view_reshape(const vl_tensor *t, int ndim, const int64_t *shape, vl_tensor *out,
                          vl_error *err) {
  int64_t n_new;
  vl_status st = vl_check_shape(ndim, shape, &n_new, err);
  if (st) return st;
  int64_t n_old = vl_numel(t);
  if (n_new != n_old) {
    char b1[128], b2[128];
    return vl_fail(err, VL_ERR_SHAPE, "reshape: cannot view shape %s (%lld elements) as %s (%lld)",
                   vl_shape_str(t->ndim, t->shape, b1, sizeof b1), (long long)n_old,
                   vl_shape_str(ndim, shape, b2, sizeof b2), (long long)n_new);
  }
  vl_tensor r = *t;
  r.ndim = ndim;
  memcpy(r.shape, shape, sizeof(int64_t) * (size_t)ndim);
  if (n_old == 0 || vl_is_contiguous(t)) {
    vl_set_contiguous_strides(&r);
    *out = r;
    return VL_OK;
  }
  int view_d = ndim - 1;
  int64_t chunk_base_stride = t->ndim > 0 ? t->stride[t->ndim - 1] : 1;
  int64_t tensor_numel = 1, view_numel = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    tensor_numel *= t->shape[d];
    if (d == 0 || (t->shape[d - 1] != 1 && t->stride[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        r.stride[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        view_d--;
      }
      if (view_numel != tensor_numel) return VL_ERR_UNSUPPORTED;
      if (d > 0) {
        chunk_base_stride = t->stride[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return VL_ERR_UNSUPPORTED;
  *out = r;
  return VL_OK;
}
