/* Shared argument checks of the CSR-taking binding files (see bind_args.h). */
#include "bind_args.h"

vlua_tensor *vlua_arg_vector(lua_State *L, const char *fname, int arg, const char *name,
                             bool want_float) {
  if (!vlua_test(L, arg))
    luaL_error(L, "%s: %s must be a tensor, got %s", fname, name, luaL_typename(L, arg));
  vlua_tensor *t = vlua_check(L, arg);
  if (t->t.ndim != 1) {
    char s[64];
    luaL_error(L, "%s: %s must be 1-d, got shape %s", fname, name,
               vl_shape_str(t->t.ndim, t->t.shape, s, sizeof s));
  }
  if (want_float ? !vl_dtype_is_float(t->t.dtype) : t->t.dtype != VL_I64)
    luaL_error(L, "%s: %s must be %s, got %s", fname, name, want_float ? "f32 or f64" : "i64",
               vl_dtype_name(t->t.dtype));
  if (!vl_is_contiguous(&t->t)) {
    t = vlua_contiguous(L, arg);
    lua_replace(L, arg);
  }
  return t;
}

int64_t vlua_arg_size(lua_State *L, const char *fname, int arg, const char *name) {
  int isnum;
  lua_Integer v = lua_tointegerx(L, arg, &isnum);
  if (!isnum || v < 0 || v > ((int64_t)1 << 48))
    luaL_error(L, "%s: %s must be a non-negative integer, got %s", fname, name,
               lua_type(L, arg) == LUA_TNUMBER ? lua_tostring(L, arg) : luaL_typename(L, arg));
  return (int64_t)v;
}

/* The components at arg .. arg + 4 with matching sizes, into *a (not yet validated). */
static void csr_parts(lua_State *L, const char *fname, int arg, vl_csr *a) {
  int64_t nrows = vlua_arg_size(L, fname, arg + 3, "nrows");
  int64_t ncols = vlua_arg_size(L, fname, arg + 4, "ncols");
  vlua_tensor *ip = vlua_arg_vector(L, fname, arg, "indptr", false);
  vlua_tensor *ix = vlua_arg_vector(L, fname, arg + 1, "indices", false);
  vlua_tensor *v = vlua_arg_vector(L, fname, arg + 2, "values", true);
  if (ip->t.shape[0] != nrows + 1)
    luaL_error(L, "%s: indptr has %I entries, expected nrows + 1 = %I", fname,
               (lua_Integer)ip->t.shape[0], (lua_Integer)(nrows + 1));
  if (ix->t.shape[0] != v->t.shape[0])
    luaL_error(L, "%s: indices has %I entries but values has %I", fname,
               (lua_Integer)ix->t.shape[0], (lua_Integer)v->t.shape[0]);
  *a = (vl_csr){nrows, ncols, v->t.shape[0], (const int64_t *)ip->t.data,
                (const int64_t *)ix->t.data, v->t.data, v->t.dtype};
}

void vlua_arg_csr(lua_State *L, const char *fname, int arg, vl_csr *a) {
  csr_parts(L, fname, arg, a);
  vl_error err;
  vlua_check_status(L, fname, vl_csr_validate(a, &err), &err);
}

void vlua_arg_csr_indptr(lua_State *L, const char *fname, int arg, vl_csr *a) {
  csr_parts(L, fname, arg, a);
  const int64_t *p = a->indptr;
  int64_t nrows = a->nrows;
  if (p[0] != 0) luaL_error(L, "%s: indptr[1] = %I, expected 0", fname, (lua_Integer)p[0]);
  for (int64_t i = 0; i < nrows; i++)
    if (p[i + 1] < p[i])
      luaL_error(L, "%s: indptr decreases at position %I (%I after %I)", fname,
                 (lua_Integer)(i + 2), (lua_Integer)p[i + 1], (lua_Integer)p[i]);
  if (p[nrows] != a->nnz)
    luaL_error(L, "%s: the last indptr entry is %I, expected the number of stored entries %I",
               fname, (lua_Integer)p[nrows], (lua_Integer)a->nnz);
}
