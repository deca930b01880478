/* CSR matrices for lua/velua/sparse.lua: each function takes the components explicitly,
 * (indptr, indices, values, nrows, ncols) with 0-based i64 indptr/indices, and validates them
 * on every call (O(nnz), cheap beside the kernels), so a component changed behind the
 * matrix's back raises an error instead of reading out of bounds. */
#include <string.h>

#include "bind_args.h"

/* csr_validate(indptr, indices, values, nrows, ncols) -> true, or raises */
static int l_csr_validate(lua_State *L) {
  vl_csr a;
  vlua_arg_csr(L, "csr_validate", 1, &a);
  lua_pushboolean(L, 1);
  return 1;
}

/* csr_spmm(indptr, indices, values, nrows, ncols, dense) -> a @ dense ([nrows, k] or [nrows]) */
static int l_csr_spmm(lua_State *L) {
  const char *fname = "csr_spmm";
  vl_csr a;
  lua_settop(L, 6);
  vlua_arg_csr(L, fname, 1, &a);
  if (!vlua_test(L, 6))
    luaL_error(L, "%s: dense must be a tensor, got %s", fname, luaL_typename(L, 6));
  vlua_tensor *b = vlua_check(L, 6);
  int nd = b->t.ndim;
  if (nd != 1 && nd != 2)
    luaL_error(L, "%s: dense must be 1-d or 2-d, got %d-d", fname, nd);
  if (b->t.shape[0] != a.ncols) {
    char s1[64], s2[64];
    int64_t as[2] = {a.nrows, a.ncols};
    luaL_error(L, "%s: shapes %s and %s do not match (dim 2 of a vs dim 1 of b)", fname,
               vl_shape_str(2, as, s1, sizeof s1), vl_shape_str(nd, b->t.shape, s2, sizeof s2));
  }
  if (b->t.dtype != a.dtype)
    luaL_error(L, "%s: dtype of dense (%s) differs from the values' (%s)", fname,
               vl_dtype_name(b->t.dtype), vl_dtype_name(a.dtype));
  /* rows of b strided along k: gathering them costs more than one copy once the matrix has
   * at least one entry per column on average */
  if (nd == 2 && b->t.shape[1] > 1 && b->t.stride[1] != 1 && a.nnz >= a.ncols) {
    b = vlua_contiguous(L, 6);
    lua_replace(L, 6);
  }
  int64_t oshape[2] = {a.nrows, nd == 2 ? b->t.shape[1] : 1};
  vlua_tensor *out = vlua_new(L, a.dtype, nd, oshape);
  vl_error err;
  vlua_check_status(L, fname, vl_csr_spmm(vlua_ctx(L), &a, &b->t, &out->t, &err), &err);
  return 1;
}

/* csr_transpose(indptr, indices, values, nrows, ncols) -> indptr', indices', values' */
static int l_csr_transpose(lua_State *L) {
  vl_csr a;
  lua_settop(L, 5);
  vlua_arg_csr(L, "csr_transpose", 1, &a);
  int64_t n1 = a.ncols + 1;
  vlua_tensor *tp = vlua_new(L, VL_I64, 1, &n1);
  vlua_tensor *ti = vlua_new(L, VL_I64, 1, &a.nnz);
  vlua_tensor *tv = vlua_new(L, a.dtype, 1, &a.nnz);
  vl_error err;
  vlua_check_status(L, "csr_transpose",
                    vl_csr_transpose(&a, (int64_t *)tp->t.data, (int64_t *)ti->t.data,
                                     tv->t.data, &err), &err);
  return 3;
}

/* csr_to_dense(indptr, indices, values, nrows, ncols) -> dense [nrows, ncols] */
static int l_csr_to_dense(lua_State *L) {
  vl_csr a;
  lua_settop(L, 5);
  vlua_arg_csr(L, "csr_to_dense", 1, &a);
  int64_t shape[2] = {a.nrows, a.ncols};
  vlua_tensor *out = vlua_new(L, a.dtype, 2, shape);
  memset(out->t.data, 0, (size_t)(a.nrows * a.ncols) * vl_dtype_size(a.dtype));
  vl_error err;
  vlua_check_status(L, "csr_to_dense", vl_csr_to_dense(vlua_ctx(L), &a, &out->t, &err), &err);
  return 1;
}

/* csr_from_dense(dense) -> indptr, indices, values of its nonzeros (dense 2-d f32 or f64) */
static int l_csr_from_dense(lua_State *L) {
  const char *fname = "csr_from_dense";
  if (!vlua_test(L, 1))
    luaL_error(L, "%s: dense must be a tensor, got %s", fname, luaL_typename(L, 1));
  vlua_tensor *d = vlua_check(L, 1);
  lua_settop(L, 1);
  int64_t n1 = d->t.ndim == 2 ? d->t.shape[0] + 1 : 1;
  vlua_tensor *ip = vlua_new(L, VL_I64, 1, &n1);
  vl_error err;
  vlua_check_status(L, fname, vl_csr_from_dense(&d->t, (int64_t *)ip->t.data, NULL, NULL, &err),
                    &err);
  int64_t nnz = ((int64_t *)ip->t.data)[n1 - 1];
  vlua_tensor *ix = vlua_new(L, VL_I64, 1, &nnz);
  vlua_tensor *v = vlua_new(L, d->t.dtype, 1, &nnz);
  vlua_check_status(L, fname, vl_csr_from_dense(&d->t, (int64_t *)ip->t.data,
                                                (int64_t *)ix->t.data, v->t.data, &err), &err);
  return 3;
}

void vlua_register_sparse(lua_State *L) {
  static const luaL_Reg regs[] = {
    {"csr_validate", l_csr_validate}, {"csr_spmm", l_csr_spmm},
    {"csr_transpose", l_csr_transpose}, {"csr_to_dense", l_csr_to_dense},
    {"csr_from_dense", l_csr_from_dense}, {NULL, NULL}};
  vlua_setfuncs(L, regs);
}
