/* luaopen_velua_core: the C half of velua. Creates the per-state execution context (thread
 * pool), the tensor and storage metatables, and the table of primitive functions that
 * lua/velua/tensor.lua turns into the public API. */
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "lua_tensor.h"

void vlua_set_ctx(lua_State *L, int idx);
void vlua_register_umap(lua_State *L); /* bind_umap.c */

static int ctx_gc(lua_State *L) {
  vl_ctx *ctx = lua_touserdata(L, 1);
  if (ctx->pool) {
    vl_pool_destroy(ctx->pool);
    ctx->pool = NULL;
  }
  return 0;
}

static int default_threads(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : (n > 64 ? 64 : (int)n);
}

static int l_set_num_threads(lua_State *L) {
  vl_ctx *ctx = vlua_ctx(L);
  int n = (int)vlua_checkint_range(L, 1, "thread count", 1, 1024);
  n = vl_ctx_set_threads(ctx, n);
  openblas_set_num_threads(n);
  lua_pushinteger(L, n);
  return 1;
}

static int l_get_num_threads(lua_State *L) {
  lua_pushinteger(L, vlua_ctx(L)->num_threads);
  return 1;
}

/* isatty(fd = 1): is this file descriptor a terminal? (progress bars stay silent otherwise) */
static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 1)) == 1);
  return 1;
}

static int l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec);
  return 1;
}

int luaopen_velua_core(lua_State *L) {
  /* context first, collected (pool joined) when the state closes */
  vl_ctx *ctx = lua_newuserdatauv(L, sizeof(vl_ctx), 0);
  ctx->pool = NULL;
  ctx->num_threads = 1;
  ctx->interrupt = NULL; /* pointed at the SIGINT flag during interrupt_call */
  lua_newtable(L);
  lua_pushcfunction(L, ctx_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  int cap = default_threads();
  vl_error err;
  if (vl_pool_create(cap, &ctx->pool, &err) != VL_OK) ctx->pool = NULL;
  vl_ctx_set_threads(ctx, cap);
  openblas_set_num_threads(ctx->num_threads);
  vlua_set_ctx(L, -1);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "velua.context"); /* keep it alive with the state */
  lua_pop(L, 1);

  luaL_newmetatable(L, VLUA_STORAGE_MT);
  lua_pop(L, 1);
  luaL_newmetatable(L, VLUA_TENSOR_MT);
  lua_pop(L, 1);

  lua_newtable(L);
  static const luaL_Reg base[] = {
    {"set_num_threads", l_set_num_threads},
    {"get_num_threads", l_get_num_threads},
    {"now", l_now},
    {"isatty", l_isatty},
    {NULL, NULL}};
  vlua_setfuncs(L, base);
  vlua_register_tensor(L);
  vlua_register_ops(L);
  vlua_register_reduce(L);
  vlua_register_blas(L);
  vlua_register_index(L);
  vlua_register_random(L);
  vlua_register_sparse(L);
  vlua_register_bench(L);
  vlua_register_h5(L);
  vlua_register_optim(L);
  vlua_register_special(L);
  vlua_register_pp(L);
  vlua_register_deepvelo(L);
  vlua_register_dropout(L);
  vlua_register_velocity(L);
  vlua_register_interrupt(L);
  vlua_register_umap(L);
  vlua_register_memory(L);
  luaL_getmetatable(L, VLUA_TENSOR_MT);
  lua_setfield(L, -2, "tensor_metatable");
  lua_pushinteger(L, VL_MAX_DIMS);
  lua_setfield(L, -2, "max_dims");
  return 1;
}
