/* Indexing from Lua: index (index_select), index_add_, gather, scatter_add_, nonzero.
 * Lua indices are 1-based; they are checked and made 0-based here. */
#include <stdlib.h>

#include "lua_tensor.h"
#include "ops_index.h"

/* Reads a 1-d list of 1-based positions (i64 tensor or Lua table) at arg, checks them against
 * size and returns a 0-based array living in a userdata pushed on the stack. */
static int64_t *check_positions(lua_State *L, int arg, int64_t size, int dim, int64_t *n,
                                const char *fname) {
  vlua_tensor *t = vlua_test(L, arg);
  int64_t count;
  if (t) {
    vlua_check(L, arg);
    if (t->t.dtype != VL_I64 || t->t.ndim > 1)
      luaL_argerror(L, arg, lua_pushfstring(L, "%s: index must be a 1-d i64 tensor, got a %d-d %s "
                                               "tensor", fname, t->t.ndim,
                                            vl_dtype_name(t->t.dtype)));
    count = vl_numel(&t->t);
  } else if (lua_istable(L, arg)) {
    count = (int64_t)luaL_len(L, arg);
  } else {
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: index tensor or table expected, got %s", fname,
                                          luaL_typename(L, arg)));
    return NULL;
  }
  int64_t *out = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(count > 0 ? count : 1), 0);
  for (int64_t i = 0; i < count; i++) {
    int64_t v;
    if (t) {
      int64_t pos = i;
      v = t->t.ndim == 0 ? vl_get_i64(&t->t, NULL) : vl_get_i64(&t->t, &pos);
    } else {
      lua_geti(L, arg, i + 1);
      int ok;
      v = lua_tointegerx(L, -1, &ok);
      lua_pop(L, 1);
      if (!ok)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: entry %I of the index is not an integer",
                                              fname, (lua_Integer)i + 1));
    }
    if (v < 1 || v > size)
      luaL_argerror(L, arg, lua_pushfstring(L, "%s: index %I (at position %I) out of range for dim "
                                               "%d of size %I", fname, (lua_Integer)v,
                                            (lua_Integer)i + 1, dim + 1, (lua_Integer)size));
    out[i] = v - 1;
  }
  *n = count;
  return out;
}

/* index(x, dim, idx): the slices of x at positions idx along dim (a copy) */
static int l_index(lua_State *L) {
  vlua_tensor *x = vlua_check(L, 1);
  int dim = vlua_checkdim(L, 2, x->t.ndim, false);
  lua_settop(L, 3);
  int64_t n;
  int64_t *idx = check_positions(L, 3, x->t.shape[dim], dim, &n, "index");
  int64_t shape[VL_MAX_DIMS];
  for (int d = 0; d < x->t.ndim; d++) shape[d] = x->t.shape[d];
  shape[dim] = n;
  vlua_tensor *out = vlua_new(L, x->t.dtype, x->t.ndim, shape);
  vl_error err;
  vlua_check_status(L, "index", vl_index_select(vlua_ctx(L), &x->t, dim, idx, n, &out->t, &err),
                    &err);
  return 1;
}

/* index_add_(dst, dim, idx, src): dst slices at idx along dim += the slices of src */
static int l_index_add_(lua_State *L) {
  vlua_tensor *dst = vlua_check(L, 1);
  int dim = vlua_checkdim(L, 2, dst->t.ndim, false);
  vlua_tensor *src = vlua_check(L, 4);
  lua_settop(L, 4);
  int64_t n;
  int64_t *idx = check_positions(L, 3, dst->t.shape[dim], dim, &n, "index_add_");
  char b1[128], b2[128];
  bool ok = src->t.ndim == dst->t.ndim && src->t.shape[dim] == n;
  for (int d = 0; ok && d < dst->t.ndim; d++)
    if (d != dim && src->t.shape[d] != dst->t.shape[d]) ok = false;
  if (!ok)
    luaL_error(L, "index_add_: source shape %s does not fit destination %s with %d indices "
                  "along dim %d", vl_shape_str(src->t.ndim, src->t.shape, b1, sizeof b1),
               vl_shape_str(dst->t.ndim, dst->t.shape, b2, sizeof b2), (int)n, dim + 1);
  vl_tensor s = src->t.dtype == dst->t.dtype ? src->t : vlua_cast(L, 4, dst->t.dtype)->t;
  vl_error err;
  vlua_check_status(L, "index_add_", vl_index_add(vlua_ctx(L), &dst->t, dim, idx, n, &s, &err),
                    &err);
  vlua_mark_written(dst);
  lua_settop(L, 1);
  return 1;
}

/* A 0-based copy of a 1-based i64 index tensor at arg (pushed). */
static vlua_tensor *zero_based(lua_State *L, int arg, const char *fname) {
  vlua_tensor *t = vlua_check(L, arg);
  if (t->t.dtype != VL_I64)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: index must be an i64 tensor, got %s", fname,
                                          vl_dtype_name(t->t.dtype)));
  vlua_tensor *z = vlua_new_like(L, &t->t, VL_I64);
  int64_t n = vl_numel(&t->t);
  int64_t pos[VL_MAX_DIMS] = {0};
  int64_t *out = (int64_t *)z->t.data;
  for (int64_t e = 0; e < n; e++) {
    out[e] = vl_get_i64(&t->t, pos) - 1;
    for (int d = t->t.ndim - 1; d >= 0; d--) {
      if (++pos[d] < t->t.shape[d]) break;
      pos[d] = 0;
    }
  }
  return z;
}

/* gather(x, dim, index): out[p] = x[p with dim coordinate index[p]] */
static int l_gather(lua_State *L) {
  vlua_tensor *x = vlua_check(L, 1);
  int dim = vlua_checkdim(L, 2, x->t.ndim, false);
  lua_settop(L, 3);
  vlua_tensor *idx = zero_based(L, 3, "gather");
  vlua_tensor *out = vlua_new_like(L, &idx->t, x->t.dtype);
  vl_error err;
  vlua_check_status(L, "gather", vl_gather(&x->t, dim, &idx->t, &out->t, &err), &err);
  return 1;
}

/* scatter_add_(dst, dim, index, src) */
static int l_scatter_add_(lua_State *L) {
  vlua_tensor *dst = vlua_check(L, 1);
  int dim = vlua_checkdim(L, 2, dst->t.ndim, false);
  vlua_tensor *src = vlua_check(L, 4);
  lua_settop(L, 4);
  vlua_tensor *idx = zero_based(L, 3, "scatter_add_");
  vl_tensor s = src->t.dtype == dst->t.dtype ? src->t : vlua_cast(L, 4, dst->t.dtype)->t;
  vl_error err;
  vlua_check_status(L, "scatter_add_", vl_scatter_add(&dst->t, dim, &idx->t, &s, &err), &err);
  vlua_mark_written(dst);
  lua_settop(L, 1);
  return 1;
}

/* nonzero(t): [count, ndim] i64 tensor of the 1-based coordinates of non-zero elements
 * (a 1-d tensor of positions for 1-d input) */
static int l_nonzero(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  int nd = t->t.ndim;
  int64_t n = vl_numel(&t->t), count = 0;
  int64_t pos[VL_MAX_DIMS] = {0};
  for (int pass = 0; pass < 2; pass++) {
    vlua_tensor *out = NULL;
    if (pass == 1) {
      int64_t shape[2] = {count, nd};
      out = vlua_new(L, VL_I64, nd == 1 ? 1 : 2, shape);
    }
    int64_t k = 0;
    for (int d = 0; d < nd; d++) pos[d] = 0;
    for (int64_t e = 0; e < n; e++) {
      if (vl_get_f64(&t->t, pos) != 0.0) {
        if (out)
          for (int d = 0; d < nd; d++) ((int64_t *)out->t.data)[k * nd + d] = pos[d] + 1;
        k++;
      }
      for (int d = nd - 1; d >= 0; d--) {
        if (++pos[d] < t->t.shape[d]) break;
        pos[d] = 0;
      }
    }
    count = k;
  }
  return 1;
}

void vlua_register_index(lua_State *L) {
  static const luaL_Reg regs[] = {
    {"index", l_index}, {"index_add_", l_index_add_}, {"gather", l_gather},
    {"scatter_add_", l_scatter_add_}, {"nonzero", l_nonzero}, {NULL, NULL}};
  vlua_setfuncs(L, regs);
}
