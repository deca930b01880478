/* The state's allocator with a cache of freed large blocks (csrc/core/block_cache.h), and its
 * statistics from Lua.
 *
 * Tensor storage stays a full userdata the collector accounts for. Underneath, the state's
 * allocator is wrapped: a freed block of at least 64 kB goes into a bounded cache (at most
 * 64 blocks, 256 MB) instead of back to malloc, and the next allocation of (nearly) the same
 * size takes it, already mapped: no page faults, no kernel page clearing. A canary object
 * finalized once per collection cycle frees the blocks that stayed unused through two whole
 * cycles, so the cache only holds what the running loop keeps asking for. (Two, not one: a
 * cycle the collector completes on its own is often followed at once by an explicit
 * collectgarbage(), as in `copy(state); collectgarbage(); step(copy)`; with one cycle that
 * explicit collection threw away the blocks the first one had just freed for the next step.)
 *
 * Lifetime: the wrapper's state lives in a userdata kept in the registry (the "keeper"), whose
 * finalizer puts the original allocator back and frees the cache. At lua_close finalizers run
 * newest first, so the keeper's runs before the one of package.loadlib's library table that
 * unloads this module: no call reaches this code after it is unloaded. */
#include <stdint.h>

#include "block_cache.h"
#include "lua_tensor.h"

#define CACHE_MIN_BLOCK ((size_t)64 << 10)
#define CACHE_CAP ((size_t)256 << 20)

typedef struct {
  lua_Alloc old;
  void *old_ud;
  bool active;
  vl_block_cache cache;
} keeper;

static void release(keeper *k, uint64_t before) {
  size_t size;
  void *p;
  while ((p = vl_block_cache_evict(&k->cache, before, &size)) != NULL) k->old(k->old_ud, p, size, 0);
}

static void *cached_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  keeper *k = ud;
  if (nsize == 0) {
    if (ptr && vl_block_cache_put(&k->cache, ptr, osize)) return NULL;
    return k->old(k->old_ud, ptr, osize, 0);
  }
  if (ptr == NULL && nsize >= k->cache.min_size) {
    size_t got;
    void *p = vl_block_cache_take(&k->cache, nsize, &got);
    if (p) return p;
  }
  void *p = k->old(k->old_ud, ptr, osize, nsize);
  if (!p && k->cache.n > 0) { /* out of memory: give the cached blocks back and retry */
    release(k, UINT64_MAX);
    p = k->old(k->old_ud, ptr, osize, nsize);
  }
  return p;
}

static int keeper_gc(lua_State *L) {
  keeper *k = lua_touserdata(L, 1);
  if (k->active) {
    k->active = false;
    lua_setallocf(L, k->old, k->old_ud);
    release(k, UINT64_MAX);
  }
  return 0;
}

static void new_canary(lua_State *L, int keeper_idx);

/* Once per collection cycle: free blocks that entered the cache before the cycle before the
 * previous one ended (unused through two cycle ends), then plant the next canary. */
static int canary_gc(lua_State *L) {
  keeper *k = lua_touserdata(L, lua_upvalueindex(1));
  if (!k->active) return 0;
  uint64_t prev = vl_block_cache_age(&k->cache);
  if (prev > 0) release(k, prev - 1);
  new_canary(L, lua_upvalueindex(1));
  return 0;
}

static void new_canary(lua_State *L, int keeper_idx) {
  lua_newuserdatauv(L, 1, 0);
  lua_newtable(L);
  lua_pushvalue(L, keeper_idx);
  lua_pushcclosure(L, canary_gc, 1);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_pop(L, 1); /* unreferenced: collected (and finalized) by the next cycle */
}

static char keeper_key;

static keeper *get_keeper(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &keeper_key);
  keeper *k = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return k;
}

/* memory_cache_info(): { blocks =, bytes =, hits =, misses =, cap = } */
static int l_memory_cache_info(lua_State *L) {
  keeper *k = get_keeper(L);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, k ? k->cache.n : 0);
  lua_setfield(L, -2, "blocks");
  lua_pushinteger(L, k ? (lua_Integer)k->cache.bytes : 0);
  lua_setfield(L, -2, "bytes");
  lua_pushinteger(L, k ? (lua_Integer)k->cache.hits : 0);
  lua_setfield(L, -2, "hits");
  lua_pushinteger(L, k ? (lua_Integer)k->cache.misses : 0);
  lua_setfield(L, -2, "misses");
  lua_pushinteger(L, k ? (lua_Integer)k->cache.cap : 0);
  lua_setfield(L, -2, "cap");
  return 1;
}

/* memory_cache_release(): frees every cached block now; returns the bytes released. */
static int l_memory_cache_release(lua_State *L) {
  keeper *k = get_keeper(L);
  size_t before = k ? k->cache.bytes : 0;
  if (k) release(k, UINT64_MAX);
  lua_pushinteger(L, (lua_Integer)before);
  return 1;
}

void vlua_register_memory(lua_State *L) {
  if (get_keeper(L) == NULL) {
    keeper *k = lua_newuserdatauv(L, sizeof(keeper), 0);
    k->active = false;
    vl_block_cache_init(&k->cache, CACHE_MIN_BLOCK, CACHE_CAP);
    lua_newtable(L);
    lua_pushcfunction(L, keeper_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &keeper_key);
    k->old = lua_getallocf(L, &k->old_ud);
    lua_setallocf(L, cached_alloc, k);
    k->active = true;
    new_canary(L, lua_gettop(L));
    lua_pop(L, 1);
  }
  static const luaL_Reg fns[] = {
    {"memory_cache_info", l_memory_cache_info},
    {"memory_cache_release", l_memory_cache_release},
    {NULL, NULL}};
  vlua_setfuncs(L, fns);
}
