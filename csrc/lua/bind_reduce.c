/* Reductions from Lua: sum, prod, max/min (values and 1-based indices), argmax/argmin, any,
 * all, along one dim (1-based, negative from the end) with keepdim, or over everything. */
#include "lua_tensor.h"
#include "ops_reduce.h"

/* Output shape of reducing t along dim (-1: all) with keepdim. */
static int reduced_shape(const vl_tensor *t, int dim, bool keepdim, int64_t *shape) {
  int nd = 0;
  for (int d = 0; d < t->ndim; d++) {
    bool reduced = dim < 0 || d == dim;
    if (!reduced) shape[nd++] = t->shape[d];
    else if (keepdim) shape[nd++] = 1;
  }
  return nd;
}

typedef struct {
  int dim;       /* 0-based, -1 for all */
  bool keepdim;
  int64_t outer, r, inner;
} plan;

static plan make_plan(lua_State *L, const vl_tensor *t) {
  plan p = {-1, lua_toboolean(L, 3), 1, vl_numel(t), 1};
  if (!lua_isnoneornil(L, 2)) {
    if (t->ndim == 0) {
      /* a 0-d tensor reduces along "dim 1" or -1 as PyTorch allows */
      lua_Integer d = luaL_checkinteger(L, 2);
      if (d != 1 && d != -1) luaL_argerror(L, 2, "dim out of range for a 0-d tensor (use 1 or -1)");
      return p;
    }
    p.dim = vlua_checkdim(L, 2, t->ndim, false);
    p.outer = 1;
    p.inner = 1;
    for (int d = 0; d < p.dim; d++) p.outer *= t->shape[d];
    p.r = t->shape[p.dim];
    for (int d = p.dim + 1; d < t->ndim; d++) p.inner *= t->shape[d];
  }
  return p;
}

static int reduce(lua_State *L, vl_reduce_op op, bool want_values, bool want_indices) {
  const char *name = vl_reduce_name(op);
  vlua_tensor *x = vlua_check(L, 1);
  plan p = make_plan(L, &x->t);
  int dim = lua_isnoneornil(L, 2) || x->t.ndim == 0 ? -1 : p.dim;
  lua_settop(L, 3);
  vlua_tensor *xc = vlua_contiguous(L, 1); /* index 4 */
  int64_t shape[VL_MAX_DIMS];
  int nd = reduced_shape(&xc->t, dim, p.keepdim, shape);
  vlua_tensor *vals = want_values ? vlua_new(L, vl_reduce_out_dtype(op, xc->t.dtype), nd, shape)
                                  : NULL;
  vlua_tensor *idx = want_indices ? vlua_new(L, VL_I64, nd, shape) : NULL;
  vl_error err;
  vl_status st = vl_reduce(vlua_ctx(L), op, &xc->t, p.outer, p.r, p.inner,
                           vals ? &vals->t : NULL, idx ? &idx->t : NULL, &err);
  vlua_check_status(L, name, st, &err);
  if (idx) {
    /* 0-based positions along the dim -> 1-based Lua indices (flat index when dim is nil) */
    int64_t n = vl_numel(&idx->t);
    int64_t *v = (int64_t *)idx->t.data;
    for (int64_t i = 0; i < n; i++) v[i] += 1;
  }
  return (want_values ? 1 : 0) + (want_indices ? 1 : 0);
}

static int l_sum(lua_State *L) { return reduce(L, VL_SUM, true, false); }
static int l_prod(lua_State *L) { return reduce(L, VL_PROD, true, false); }
static int l_any(lua_State *L) { return reduce(L, VL_ANY, true, false); }
static int l_all(lua_State *L) { return reduce(L, VL_ALL, true, false); }
/* max(x, [dim, keepdim]): the maximum; along a dim also its 1-based indices */
static int l_max(lua_State *L) { return reduce(L, VL_MAX, true, !lua_isnoneornil(L, 2)); }
static int l_min(lua_State *L) { return reduce(L, VL_MIN, true, !lua_isnoneornil(L, 2)); }
static int l_argmax(lua_State *L) { return reduce(L, VL_MAX, false, true); }
static int l_argmin(lua_State *L) { return reduce(L, VL_MIN, false, true); }

void vlua_register_reduce(lua_State *L) {
  static const luaL_Reg regs[] = {
    {"sum", l_sum}, {"prod", l_prod}, {"any", l_any}, {"all", l_all}, {"max", l_max},
    {"min", l_min}, {"argmax", l_argmax}, {"argmin", l_argmin}, {NULL, NULL}};
  vlua_setfuncs(L, regs);
}
