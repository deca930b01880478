/* Generators ("velua.Generator" userdata holding Philox state) and in-place random fills.
 * Methods (g:seed(), g:get_state(), ...) are attached by lua/velua/random.lua. */
#include "lua_tensor.h"
#include "random.h"

#define GEN_MT "velua.Generator"

static vl_philox *check_gen(lua_State *L, int arg) {
  vl_philox *g = luaL_testudata(L, arg, GEN_MT);
  if (!g) {
    const char *got = luaL_typename(L, arg);
    if (luaL_getmetafield(L, arg, "__name") == LUA_TSTRING) got = lua_tostring(L, -1);
    luaL_argerror(L, arg, lua_pushfstring(L, "generator expected, got %s", got));
  }
  return g;
}

static vl_philox *push_gen(lua_State *L) {
  vl_philox *g = lua_newuserdatauv(L, sizeof(vl_philox), 0);
  vl_philox_seed(g, 0);
  luaL_setmetatable(L, GEN_MT);
  return g;
}

static uint64_t check_seed(lua_State *L, int arg) {
  int ok;
  lua_Integer s = lua_tointegerx(L, arg, &ok);
  if (!ok)
    luaL_argerror(L, arg, lua_pushfstring(L, "seed must be an integer, got %s",
                                          lua_type(L, arg) == LUA_TNUMBER ? lua_tostring(L, arg)
                                                                          : luaL_typename(L, arg)));
  return (uint64_t)s;
}

/* generator([seed = 0]) */
static int l_generator(lua_State *L) {
  uint64_t seed = lua_isnoneornil(L, 1) ? 0 : check_seed(L, 1);
  vl_philox_seed(push_gen(L), seed);
  return 1;
}

/* gen_seed(g [, seed]): the seed; with a new seed, restarts g's stream (counter 0) */
static int l_gen_seed(lua_State *L) {
  vl_philox *g = check_gen(L, 1);
  if (!lua_isnoneornil(L, 2)) vl_philox_seed(g, check_seed(L, 2));
  lua_pushinteger(L, (lua_Integer)g->key);
  return 1;
}

/* gen_get_state(g) -> {key =, counter =} (also seed = key), integers that round-trip */
static int l_gen_get_state(lua_State *L) {
  vl_philox *g = check_gen(L, 1);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)g->key);
  lua_setfield(L, -2, "key");
  lua_pushinteger(L, (lua_Integer)g->key);
  lua_setfield(L, -2, "seed");
  lua_pushinteger(L, (lua_Integer)g->counter);
  lua_setfield(L, -2, "counter");
  return 1;
}

static lua_Integer state_field(lua_State *L, const char *name, const char *alt) {
  int ok;
  if (lua_getfield(L, 2, name) == LUA_TNIL && alt) {
    lua_pop(L, 1);
    lua_getfield(L, 2, alt);
  }
  lua_Integer v = lua_tointegerx(L, -1, &ok);
  if (!ok)
    luaL_argerror(L, 2, lua_pushfstring(L, "state.%s must be an integer, got %s", name,
                                        luaL_typename(L, -1)));
  lua_pop(L, 1);
  return v;
}

/* gen_set_state(g, {key =, counter =}) (seed = accepted for key); returns g */
static int l_gen_set_state(lua_State *L) {
  vl_philox *g = check_gen(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer key = state_field(L, "key", "seed"), counter = state_field(L, "counter", NULL);
  g->key = (uint64_t)key;
  g->counter = (uint64_t)counter;
  lua_settop(L, 1);
  return 1;
}

static int l_gen_clone(lua_State *L) {
  vl_philox *g = check_gen(L, 1);
  *push_gen(L) = *g;
  return 1;
}

static int l_gen_tostring(lua_State *L) {
  vl_philox *g = check_gen(L, 1);
  lua_pushfstring(L, "velua.Generator(seed=%I, counter=%I)", (lua_Integer)g->key,
                  (lua_Integer)g->counter);
  return 1;
}

/* Raises the core's message (it names the operation) or returns t, marked as written. */
static int finish(lua_State *L, vlua_tensor *t, vl_status st, const vl_error *err) {
  if (st != VL_OK) luaL_error(L, "%s", err->msg);
  vlua_mark_written(t);
  lua_settop(L, 1);
  return 1;
}

/* rand_uniform_(t, g [, lo = 0, hi = 1]): t filled with U[lo, hi) */
static int l_rand_uniform_(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  vl_philox *g = check_gen(L, 2);
  double lo = luaL_optnumber(L, 3, 0), hi = luaL_optnumber(L, 4, 1);
  vl_error err;
  return finish(L, t, vl_random_uniform(vlua_ctx(L), g, &t->t, lo, hi, &err), &err);
}

/* rand_normal_(t, g [, mean = 0, std = 1]) */
static int l_rand_normal_(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  vl_philox *g = check_gen(L, 2);
  double mean = luaL_optnumber(L, 3, 0), std = luaL_optnumber(L, 4, 1);
  vl_error err;
  return finish(L, t, vl_random_normal(vlua_ctx(L), g, &t->t, mean, std, &err), &err);
}

/* rand_int_(t, g, lo, hi): lo inclusive, hi exclusive */
static int l_rand_int_(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  vl_philox *g = check_gen(L, 2);
  lua_Integer lo = luaL_checkinteger(L, 3), hi = luaL_checkinteger(L, 4);
  vl_error err;
  return finish(L, t, vl_random_integers(vlua_ctx(L), g, &t->t, lo, hi, &err), &err);
}

/* rand_bernoulli_(t, g, p) */
static int l_rand_bernoulli_(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  vl_philox *g = check_gen(L, 2);
  double p = luaL_checknumber(L, 3);
  vl_error err;
  return finish(L, t, vl_random_bernoulli(vlua_ctx(L), g, &t->t, p, &err), &err);
}

/* randperm(n, g): i64 tensor holding a permutation of 1..n */
static int l_randperm(lua_State *L) {
  int64_t n = vlua_checkint_range(L, 1, "n", 0, (int64_t)1 << 40);
  vl_philox *g = check_gen(L, 2);
  int64_t shape[1] = {n};
  vlua_tensor *t = vlua_new(L, VL_I64, 1, shape);
  int64_t *p = (int64_t *)t->t.data;
  vl_randperm(g, p, n);
  for (int64_t i = 0; i < n; i++) p[i] += 1; /* 0-based -> 1-based */
  return 1;
}

/* _philox_block(c0, c1, c2, c3, k0, k1): the four words of one block (known-answer tests) */
static int l_philox_block(lua_State *L) {
  uint32_t ctr[4], key[2], out[4];
  for (int i = 0; i < 4; i++) ctr[i] = (uint32_t)vlua_checkint_range(L, i + 1, "word", 0, 0xffffffff);
  for (int i = 0; i < 2; i++) key[i] = (uint32_t)vlua_checkint_range(L, i + 5, "word", 0, 0xffffffff);
  vl_philox_block(ctr, key, out);
  for (int i = 0; i < 4; i++) lua_pushinteger(L, out[i]);
  return 4;
}

void vlua_register_random(lua_State *L) {
  if (luaL_newmetatable(L, GEN_MT)) {
    lua_pushcfunction(L, l_gen_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_setfield(L, -2, "generator_metatable");
  static const luaL_Reg regs[] = {
    {"generator", l_generator}, {"gen_seed", l_gen_seed}, {"gen_get_state", l_gen_get_state},
    {"gen_set_state", l_gen_set_state}, {"gen_clone", l_gen_clone},
    {"rand_uniform_", l_rand_uniform_}, {"rand_normal_", l_rand_normal_},
    {"rand_int_", l_rand_int_}, {"rand_bernoulli_", l_rand_bernoulli_},
    {"randperm", l_randperm}, {"_philox_block", l_philox_block}, {NULL, NULL}};
  vlua_setfuncs(L, regs);
}
