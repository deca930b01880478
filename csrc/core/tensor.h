/* The tensor view: dtype, shape and element strides over a storage owned elsewhere.
 * The core never owns tensor memory: the caller (the Lua binding) allocates storage as
 * garbage-collected userdata and hands the core plain views. Strides and offset are in
 * elements; all indices here are 0-based. */
#ifndef VELUA_TENSOR_H
#define VELUA_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define VL_MAX_DIMS 16

typedef enum { VL_F32 = 0, VL_F64 = 1, VL_I64 = 2, VL_BOOL = 3, VL_NDTYPES = 4 } vl_dtype;

typedef struct {
  char *data;                   /* address of element (0, ..., 0), i.e. storage base + offset */
  vl_dtype dtype;
  int ndim;                     /* 0 for a scalar (0-d) tensor */
  int64_t shape[VL_MAX_DIMS];
  int64_t stride[VL_MAX_DIMS];  /* in elements; may be 0 (broadcast) but never negative */
} vl_tensor;

size_t vl_dtype_size(vl_dtype dt);
const char *vl_dtype_name(vl_dtype dt);
/* Parses "f32", "f64", "i64", "bool" (also "float32", "float64", "int64"); returns false if unknown. */
bool vl_dtype_parse(const char *name, vl_dtype *out);
bool vl_dtype_is_float(vl_dtype dt);
/* The dtype arithmetic between a and b produces (bool < i64 < f32 < f64). */
vl_dtype vl_dtype_promote(vl_dtype a, vl_dtype b);

int64_t vl_numel(const vl_tensor *t);
bool vl_is_contiguous(const vl_tensor *t);
/* Fills t's strides for a row-major contiguous layout of its shape. */
void vl_set_contiguous_strides(vl_tensor *t);
/* Number of elements spanned from data (the storage extent this view touches), 0 if empty. */
int64_t vl_extent(const vl_tensor *t);
/* Checks a shape (ndim, sizes >= 0, product fits) and writes its element count. */
vl_status vl_check_shape(int ndim, const int64_t *shape, int64_t *numel, vl_error *err);
/* Formats a shape like {3,4} into buf. */
const char *vl_shape_str(int ndim, const int64_t *shape, char *buf, size_t len);

/* Broadcast the shapes of a and b (NumPy rules) into out_shape; *out_ndim receives its rank. */
vl_status vl_broadcast_shape(int ndim_a, const int64_t *a, int ndim_b, const int64_t *b,
                             int *out_ndim, int64_t *out_shape, vl_error *err);
/* A view of t expanded to (ndim, shape) with zero strides on broadcast dims. */
vl_status vl_broadcast_to(const vl_tensor *t, int ndim, const int64_t *shape, vl_tensor *out,
                          vl_error *err);

/* Reads element at flat row-major position i of t as double / int64 (any dtype). */
double vl_get_f64(const vl_tensor *t, const int64_t *index);
int64_t vl_get_i64(const vl_tensor *t, const int64_t *index);
void vl_set_f64(const vl_tensor *t, const int64_t *index, double v);
void vl_set_i64(const vl_tensor *t, const int64_t *index, int64_t v);
/* Pointer to element at multi-index (no bounds check). */
char *vl_elem_ptr(const vl_tensor *t, const int64_t *index);

/* View transforms: write the result view into out (out may alias t). */
vl_status vl_view_transpose(const vl_tensor *t, int a, int b, vl_tensor *out, vl_error *err);
vl_status vl_view_permute(const vl_tensor *t, const int *perm, vl_tensor *out, vl_error *err);
vl_status vl_view_select(const vl_tensor *t, int dim, int64_t index, vl_tensor *out, vl_error *err);
vl_status vl_view_narrow(const vl_tensor *t, int dim, int64_t start, int64_t len, vl_tensor *out,
                         vl_error *err);
/* A view with a new shape over the same memory if the strides allow it; VL_ERR_UNSUPPORTED
 * (without message) when a copy is needed. */
vl_status vl_view_reshape(const vl_tensor *t, int ndim, const int64_t *shape, vl_tensor *out,
                          vl_error *err);
/* A 1-element-per-dim diagonal-free helper: inserts a dim of size 1 at position dim. */
vl_status vl_view_unsqueeze(const vl_tensor *t, int dim, vl_tensor *out, vl_error *err);

#endif
