/* Fused dropout from Lua (used by lua/velua/tl/deepvelo.lua's model). */
#include "dropout.h"
#include "lua_tensor.h"

/* the userdata type of lua/velua/random.lua's generators (csrc/lua/bind_random.c) */
#define GENERATOR_MT "velua.Generator"

/* dropout_forward(x, p, generator) -> out, keep (bool) */
static int l_dropout_forward(lua_State *L) {
  vlua_tensor *x = vlua_check(L, 1);
  double p = luaL_checknumber(L, 2);
  vl_philox *g = luaL_testudata(L, 3, GENERATOR_MT);
  if (!g) luaL_argerror(L, 3, "generator expected");
  lua_settop(L, 3);
  if (!vl_is_contiguous(&x->t)) {
    x = vlua_contiguous(L, 1);
    lua_replace(L, 1);
  }
  vlua_tensor *out = vlua_new_like(L, &x->t, x->t.dtype);
  vlua_tensor *keep = vlua_new_like(L, &x->t, VL_BOOL);
  vl_error err;
  vlua_check_status(L, "dropout", vl_dropout_forward(vlua_ctx(L), g, &x->t, p, &out->t, &keep->t,
                                                     &err), &err);
  return 2;
}

/* dropout_backward(grad_out, keep, p) -> grad */
static int l_dropout_backward(lua_State *L) {
  vlua_tensor *g = vlua_check(L, 1);
  vlua_tensor *keep = vlua_check(L, 2);
  double p = luaL_checknumber(L, 3);
  vlua_tensor *out = vlua_new_like(L, &g->t, g->t.dtype);
  vl_error err;
  vlua_check_status(L, "dropout", vl_dropout_backward(vlua_ctx(L), &g->t, &keep->t, p, &out->t,
                                                      &err), &err);
  return 1;
}

void vlua_register_dropout(lua_State *L) {
  static const luaL_Reg regs[] = {{"dropout_forward", l_dropout_forward},
                                  {"dropout_backward", l_dropout_backward},
                                  {NULL, NULL}};
  vlua_setfuncs(L, regs);
}
