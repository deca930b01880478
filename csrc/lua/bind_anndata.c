/* Kernels behind lua/velua/anndata.lua: CSR row/column selection (subset, concat joins).
 * Positions arrive 1-based (i64 tensors) and are made 0-based here. */
#include "csr_select.h"
#include "lua_tensor.h"
#include "ops_elementwise.h"

static vlua_tensor *component(lua_State *L, int arg, const char *name, bool want_float) {
  vlua_tensor *t = vlua_test(L, arg);
  if (!t || t->t.ndim != 1 || (want_float ? !vl_dtype_is_float(t->t.dtype) : t->t.dtype != VL_I64))
    luaL_error(L, "csr_select: %s must be a 1-d %s tensor", name, want_float ? "f32/f64" : "i64");
  if (!vl_is_contiguous(&t->t)) {
    t = vlua_contiguous(L, arg);
    lua_replace(L, arg);
  }
  return t;
}

/* A 0-based copy of the 1-based i64 positions at arg (nil: NULL), pushed on the stack. */
static const int64_t *positions(lua_State *L, int arg, int64_t *n) {
  if (lua_isnil(L, arg)) {
    lua_pushnil(L);
    *n = -1;
    return NULL;
  }
  vlua_tensor *t = vlua_test(L, arg);
  if (!t || t->t.ndim != 1 || t->t.dtype != VL_I64)
    luaL_error(L, "csr_select: positions must be a 1-d i64 tensor");
  vlua_tensor *c = vlua_new(L, VL_I64, 1, t->t.shape);
  vl_error err;
  vlua_check_status(L, "csr_select", vl_copy(vlua_ctx(L), &c->t, &t->t, &err), &err);
  int64_t *p = (int64_t *)c->t.data;
  for (int64_t i = 0; i < c->t.shape[0]; i++) p[i] -= 1;
  *n = c->t.shape[0];
  return p;
}

/* csr_select(indptr, indices, values, nrows, ncols, rows|nil, cols|nil) -> indptr, indices,
 * values of a[rows, cols] */
static int l_csr_select(lua_State *L) {
  lua_settop(L, 7);
  vlua_tensor *ip = component(L, 1, "indptr", false);
  vlua_tensor *ix = component(L, 2, "indices", false);
  vlua_tensor *v = component(L, 3, "values", true);
  int64_t nrows = vlua_checkint_range(L, 4, "nrows", 0, (int64_t)1 << 48);
  int64_t ncols = vlua_checkint_range(L, 5, "ncols", 0, (int64_t)1 << 48);
  if (ip->t.shape[0] != nrows + 1 || ix->t.shape[0] != v->t.shape[0])
    luaL_error(L, "csr_select: component sizes do not match the shape");
  vl_csr a = {nrows, ncols, v->t.shape[0], (const int64_t *)ip->t.data, (const int64_t *)ix->t.data,
               v->t.data, v->t.dtype};
  vl_error err;
  vlua_check_status(L, "csr_select", vl_csr_validate(&a, &err), &err);
  int64_t nr, nc;
  const int64_t *rows = positions(L, 6, &nr); /* 8 */
  const int64_t *cols = positions(L, 7, &nc); /* 9 */
  int64_t shape[1] = {rows ? nr + 1 : nrows + 1};
  vlua_tensor *op = vlua_new(L, VL_I64, 1, shape); /* 10 */
  vlua_check_status(L, "csr_select",
                    vl_csr_select(&a, rows, nr, cols, nc, (int64_t *)op->t.data, NULL, NULL, &err), &err);
  shape[0] = ((int64_t *)op->t.data)[shape[0] - 1];
  vlua_tensor *oi = vlua_new(L, VL_I64, 1, shape);
  vlua_tensor *ov = vlua_new(L, v->t.dtype, 1, shape);
  vlua_check_status(L, "csr_select",
                    vl_csr_select(&a, rows, nr, cols, nc, (int64_t *)op->t.data, (int64_t *)oi->t.data,
                                  ov->t.data, &err),
                    &err);
  return 3;
}

void vlua_register_anndata(lua_State *L) {
  static const luaL_Reg regs[] = {{"csr_select", l_csr_select}, {NULL, NULL}};
  vlua_setfuncs(L, regs);
}
