/* Special functions and non-uniform samplers for velua.distributions. */
#include "lua_tensor.h"
#include "ops_elementwise.h"
#include "random_gamma.h"
#include "special.h"

/* betainc(a, b, x, [which = 0]): I_x(a, b) (which 0), dI/da (1) or dI/db (2), broadcast */
static int l_betainc(lua_State *L) {
  vlua_tensor *a = vlua_check(L, 1), *b = vlua_check(L, 2), *x = vlua_check(L, 3);
  int which = (int)luaL_optinteger(L, 4, 0);
  if (which < 0 || which > 2) luaL_argerror(L, 4, "which must be 0, 1 or 2");
  int64_t s1[VL_MAX_DIMS], shape[VL_MAX_DIMS];
  int n1, nd;
  vl_error err;
  vlua_check_status(L, "betainc", vl_broadcast_shape(a->t.ndim, a->t.shape, b->t.ndim, b->t.shape,
                                                     &n1, s1, &err), &err);
  vlua_check_status(L, "betainc", vl_broadcast_shape(n1, s1, x->t.ndim, x->t.shape, &nd, shape,
                                                     &err), &err);
  vlua_tensor *out = vlua_new(L, x->t.dtype, nd, shape);
  vlua_check_status(L, "betainc", vl_betainc_op(vlua_ctx(L), which, &out->t, &a->t, &b->t, &x->t,
                                                &err), &err);
  return 1;
}

static vl_philox *check_gen(lua_State *L, int arg) {
  vl_philox *g = luaL_testudata(L, arg, "velua.Generator");
  if (!g)
    luaL_argerror(L, arg, lua_pushfstring(L, "generator expected, got %s", luaL_typename(L, arg)));
  return g;
}

/* rand_gamma_(out, g, alpha) / rand_poisson_(out, g, lambda): alpha/lambda broadcast to out */
static int sample(lua_State *L, bool poisson) {
  vlua_tensor *out = vlua_check(L, 1);
  vl_philox *g = check_gen(L, 2);
  vlua_tensor *p = vlua_check(L, 3);
  lua_settop(L, 3);
  vl_error err;
  vl_tensor bp;
  const char *name = poisson ? "poisson" : "gamma";
  vlua_check_status(L, name, vl_broadcast_to(&p->t, out->t.ndim, out->t.shape, &bp, &err), &err);
  vl_dtype pd = vl_dtype_is_float(p->t.dtype) ? p->t.dtype : VL_F64;
  vlua_tensor *pc = vlua_new_like(L, &out->t, pd);
  vlua_check_status(L, name, vl_copy(vlua_ctx(L), &pc->t, &bp, &err), &err);
  vlua_tensor *target = vl_is_contiguous(&out->t) ? out : vlua_new_like(L, &out->t, out->t.dtype);
  vl_status st = poisson ? vl_random_poisson(vlua_ctx(L), g, &target->t, &pc->t, &err)
                         : vl_random_gamma(vlua_ctx(L), g, &target->t, &pc->t, &err);
  vlua_check_status(L, name, st, &err);
  if (target != out) vlua_check_status(L, name, vl_copy(vlua_ctx(L), &out->t, &target->t, &err), &err);
  vlua_mark_written(out);
  lua_settop(L, 1);
  return 1;
}

static int l_rand_gamma_(lua_State *L) { return sample(L, false); }
static int l_rand_poisson_(lua_State *L) { return sample(L, true); }

void vlua_register_special(lua_State *L) {
  static const luaL_Reg regs[] = {{"betainc", l_betainc}, {"rand_gamma_", l_rand_gamma_},
                                  {"rand_poisson_", l_rand_poisson_}, {NULL, NULL}};
  vlua_setfuncs(L, regs);
}
