/* Generators ("velua.Generator" userdata holding Philox state) and in-place random fills. */
#include "lua_tensor.h"
#include "random.h"

#define GEN_MT "velua.Generator"

static vl_philox *check_gen(lua_State *L, int arg) {
  vl_philox *g = luaL_testudata(L, arg, GEN_MT);
  if (!g)
    luaL_argerror(L, arg, lua_pushfstring(L, "generator expected, got %s", luaL_typename(L, arg)));
  return g;
}

static vl_philox *push_gen(lua_State *L) {
  vl_philox *g = lua_newuserdatauv(L, sizeof(vl_philox), 0);
  luaL_setmetatable(L, GEN_MT);
  return g;
}

/* generator([seed = 0]) */
static int l_generator(lua_State *L) {
  lua_Integer seed = luaL_optinteger(L, 1, 0);
  vl_philox_seed(push_gen(L), (uint64_t)seed);
  return 1;
}

static int l_gen_seed(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_gen(L, 1)->key);
  return 1;
}

static int l_gen_get_state(lua_State *L) {
  vl_philox *g = check_gen(L, 1);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)g->key);
  lua_setfield(L, -2, "seed");
  lua_pushinteger(L, (lua_Integer)g->counter);
  lua_setfield(L, -2, "counter");
  return 1;
}

static int l_gen_set_state(lua_State *L) {
  vl_philox *g = check_gen(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int ok1, ok2;
  lua_getfield(L, 2, "seed");
  lua_Integer seed = lua_tointegerx(L, -1, &ok1);
  lua_getfield(L, 2, "counter");
  lua_Integer counter = lua_tointegerx(L, -1, &ok2);
  if (!ok1 || !ok2) luaL_argerror(L, 2, "state must be a table {seed = integer, counter = integer}");
  g->key = (uint64_t)seed;
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

static int finish(lua_State *L, const char *name, vlua_tensor *t, vl_status st, vl_error *err) {
  vlua_check_status(L, name, st, err);
  vlua_mark_written(t);
  lua_settop(L, 1);
  return 1;
}

/* rand_uniform_(t, g, lo, hi) */
static int l_rand_uniform_(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  vl_philox *g = check_gen(L, 2);
  vl_error err;
  vl_status st = vl_random_uniform(vlua_ctx(L), g, &t->t, luaL_optnumber(L, 3, 0),
                                   luaL_optnumber(L, 4, 1), &err);
  return finish(L, "rand", t, st, &err);
}

static int l_rand_normal_(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  vl_philox *g = check_gen(L, 2);
  vl_error err;
  vl_status st = vl_random_normal(vlua_ctx(L), g, &t->t, luaL_optnumber(L, 3, 0),
                                  luaL_optnumber(L, 4, 1), &err);
  return finish(L, "randn", t, st, &err);
}

/* rand_int_(t, g, lo, hi): lo inclusive, hi exclusive */
static int l_rand_int_(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  vl_philox *g = check_gen(L, 2);
  vl_error err;
  vl_status st = vl_random_integers(vlua_ctx(L), g, &t->t, luaL_checkinteger(L, 3),
                                    luaL_checkinteger(L, 4), &err);
  return finish(L, "randint", t, st, &err);
}

static int l_rand_bernoulli_(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  vl_philox *g = check_gen(L, 2);
  vl_error err;
  vl_status st = vl_random_bernoulli(vlua_ctx(L), g, &t->t, luaL_checknumber(L, 3), &err);
  return finish(L, "bernoulli", t, st, &err);
}

/* randperm(n, g): i64 tensor holding a permutation of 1..n */
static int l_randperm(lua_State *L) {
  int64_t n = vlua_checkint_range(L, 1, "n", 0, (int64_t)1 << 40);
  vl_philox *g = check_gen(L, 2);
  int64_t shape[1] = {n};
  vlua_tensor *t = vlua_new(L, VL_I64, 1, shape);
  int64_t *p = (int64_t *)t->t.data;
  vl_randperm(g, p, n);
  for (int64_t i = 0; i < n; i++) p[i] += 1;
  return 1;
}

/* _philox_block(c0, c1, c2, c3, k0, k1): the four words of one block (known-answer tests) */
static int l_philox_block(lua_State *L) {
  uint32_t ctr[4], key[2], out[4];
  for (int i = 0; i < 4; i++) ctr[i] = (uint32_t)luaL_checkinteger(L, i + 1);
  for (int i = 0; i < 2; i++) key[i] = (uint32_t)luaL_checkinteger(L, i + 5);
  vl_philox_block(ctr, key, out);
  for (int i = 0; i < 4; i++) lua_pushinteger(L, out[i]);
  return 4;
}

void vlua_register_random(lua_State *L) {
  if (luaL_newmetatable(L, GEN_MT)) {
    lua_pushcfunction(L, l_gen_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  static const luaL_Reg regs[] = {
    {"generator", l_generator}, {"gen_seed", l_gen_seed}, {"gen_get_state", l_gen_get_state},
    {"gen_set_state", l_gen_set_state}, {"gen_clone", l_gen_clone},
    {"rand_uniform_", l_rand_uniform_}, {"rand_normal_", l_rand_normal_},
    {"rand_int_", l_rand_int_}, {"rand_bernoulli_", l_rand_bernoulli_},
    {"randperm", l_randperm}, {"_philox_block", l_philox_block}, {NULL, NULL}};
  vlua_setfuncs(L, regs);
  luaL_getmetatable(L, GEN_MT);
  lua_setfield(L, -2, "generator_metatable");
}
