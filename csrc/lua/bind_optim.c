/* Fused optimizer kernels from Lua. */
#include "lua_tensor.h"
#include "optim_kernels.h"

static double field(lua_State *L, int arg, const char *key) {
  lua_getfield(L, arg, key);
  if (!lua_isnumber(L, -1))
    luaL_argerror(L, arg, lua_pushfstring(L, "option %s must be a number", key));
  double v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

static bool flag(lua_State *L, int arg, const char *key) {
  lua_getfield(L, arg, key);
  bool v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* adam_step_(p, g, m, v, vmax_or_nil, {lr, beta1, beta2, eps, weight_decay, step, amsgrad,
 * decoupled, maximize}) */
static int l_adam_step_(lua_State *L) {
  vlua_tensor *p = vlua_check(L, 1), *g = vlua_check(L, 2), *m = vlua_check(L, 3),
              *v = vlua_check(L, 4);
  vlua_tensor *vmax = lua_isnoneornil(L, 5) ? NULL : vlua_check(L, 5);
  luaL_checktype(L, 6, LUA_TTABLE);
  vl_adam_config c = {field(L, 6, "lr"), field(L, 6, "beta1"), field(L, 6, "beta2"),
                      field(L, 6, "eps"), field(L, 6, "weight_decay"),
                      (long long)field(L, 6, "step"), flag(L, 6, "amsgrad"),
                      flag(L, 6, "decoupled"), flag(L, 6, "maximize")};
  vl_error err;
  vlua_check_status(L, "adam_step_", vl_adam_step(vlua_ctx(L), &c, &p->t, &g->t, &m->t, &v->t,
                                                  vmax ? &vmax->t : NULL, &err), &err);
  vlua_mark_written(p);
  vlua_mark_written(m);
  vlua_mark_written(v);
  if (vmax) vlua_mark_written(vmax);
  lua_settop(L, 1);
  return 1;
}

void vlua_register_optim(lua_State *L) {
  static const luaL_Reg regs[] = {{"adam_step_", l_adam_step_}, {NULL, NULL}};
  vlua_setfuncs(L, regs);
}
