/* Helpers shared by the binding files: tensor userdata life cycle, argument checks, errors. */
#include <string.h>

#include "lua_tensor.h"
#include "memory.h"
#include "ops_elementwise.h"

static char ctx_key; /* address used as registry key for the context */

vl_ctx *vlua_ctx(lua_State *L) {
  vl_ctx *ctx = lua_touserdata(L, lua_upvalueindex(1));
  if (!ctx) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_key);
    ctx = lua_touserdata(L, -1);
    lua_pop(L, 1);
  }
  return ctx;
}

void vlua_set_ctx(lua_State *L, int idx) {
  lua_pushvalue(L, idx);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &ctx_key);
}

void vlua_setfuncs(lua_State *L, const luaL_Reg *regs) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_key);
  luaL_setfuncs(L, regs, 1);
}

static vlua_storage *new_storage(lua_State *L, size_t nbytes) {
  if (nbytes > (size_t)1 << 46) luaL_error(L, "tensor of %zu bytes is too large", nbytes);
  size_t total = sizeof(vlua_storage) + nbytes + VLUA_STORAGE_ALIGN;
  vlua_storage *s = lua_newuserdatauv(L, total, 0);
  s->nbytes = nbytes;
  s->freed = false;
  s->version = 0;
  uintptr_t p = (uintptr_t)(s + 1);
  p = (p + VLUA_STORAGE_ALIGN - 1) & ~(uintptr_t)(VLUA_STORAGE_ALIGN - 1);
  s->data = (char *)p;
  if (nbytes >= ((size_t)8 << 20)) vl_advise_huge_pages(s->data, nbytes); /* before first touch */
  luaL_setmetatable(L, VLUA_STORAGE_MT);
  return s;
}

vlua_tensor *vlua_new(lua_State *L, vl_dtype dtype, int ndim, const int64_t *shape) {
  vl_error err;
  int64_t numel;
  vl_status st = vl_check_shape(ndim, shape, &numel, &err);
  if (st) luaL_error(L, "%s", err.msg);
  /* the tensor first (valid, empty), then its storage as user value 1 */
  vlua_tensor *t = lua_newuserdatauv(L, sizeof(vlua_tensor), 2);
  memset(t, 0, sizeof *t);
  luaL_setmetatable(L, VLUA_TENSOR_MT);
  vlua_storage *s = new_storage(L, (size_t)numel * vl_dtype_size(dtype));
  lua_setiuservalue(L, -2, 1);
  t->storage = s;
  t->t.data = s->data;
  t->t.dtype = dtype;
  t->t.ndim = ndim;
  memcpy(t->t.shape, shape, sizeof(int64_t) * (size_t)ndim);
  vl_set_contiguous_strides(&t->t);
  return t;
}

vlua_tensor *vlua_new_like(lua_State *L, const vl_tensor *like, vl_dtype dtype) {
  return vlua_new(L, dtype, like->ndim, like->shape);
}

vlua_tensor *vlua_new_view(lua_State *L, int base, const vl_tensor *view) {
  base = lua_absindex(L, base);
  vlua_tensor *b = vlua_check(L, base);
  vlua_tensor *t = lua_newuserdatauv(L, sizeof(vlua_tensor), 2);
  t->t = *view;
  t->storage = b->storage;
  luaL_setmetatable(L, VLUA_TENSOR_MT);
  lua_getiuservalue(L, base, 1);
  lua_setiuservalue(L, -2, 1);
  return t;
}

vlua_tensor *vlua_test(lua_State *L, int arg) {
  return luaL_testudata(L, arg, VLUA_TENSOR_MT);
}

vlua_tensor *vlua_check(lua_State *L, int arg) {
  vlua_tensor *t = luaL_testudata(L, arg, VLUA_TENSOR_MT);
  if (!t) {
    const char *got = luaL_typename(L, arg);
    if (luaL_getmetafield(L, arg, "__name") == LUA_TSTRING) got = lua_tostring(L, -1);
    luaL_argerror(L, arg, lua_pushfstring(L, "tensor expected, got %s", got));
  }
  if (!t->storage || t->storage->freed)
    luaL_argerror(L, arg, "tensor memory was released by free()");
  return t;
}

void vlua_check_status(lua_State *L, const char *fname, vl_status st, const vl_error *err) {
  /* an interrupt during the kernel: its outputs may be incomplete, never hand them out */
  if (st == VL_OK || st == VL_ERR_INTERRUPTED) vlua_interrupt_check(L);
  if (st == VL_ERR_INTERRUPTED) luaL_error(L, "interrupted");
  if (st != VL_OK) {
    if (err && err->msg[0]) luaL_error(L, "%s: %s", fname, err->msg);
    luaL_error(L, "%s: failed (status %d)", fname, (int)st);
  }
}

int vlua_checkdim(lua_State *L, int arg, int ndim, bool extra) {
  lua_Integer d = luaL_checkinteger(L, arg);
  int limit = extra ? ndim + 1 : ndim;
  lua_Integer z = d < 0 ? d + limit : d - 1;
  if (z < 0 || z >= limit) {
    if (limit == 0)
      luaL_argerror(L, arg, lua_pushfstring(L, "dim %d given, but the tensor is 0-d", (int)d));
    luaL_argerror(L, arg, lua_pushfstring(L, "dim %d out of range (expected 1..%d or -%d..-1)",
                                          (int)d, limit, limit));
  }
  return (int)z;
}

static int64_t check_size(lua_State *L, int arg, int pos) {
  int isnum;
  lua_Integer v = lua_tointegerx(L, -1, &isnum);
  if (!isnum) {
    if (lua_type(L, -1) == LUA_TNUMBER)
      luaL_argerror(L, arg, lua_pushfstring(L, "size %d of the shape must be an integer, got %f",
                                            pos, lua_tonumber(L, -1)));
    luaL_argerror(L, arg, lua_pushfstring(L, "size %d of the shape must be an integer, got %s",
                                          pos, luaL_typename(L, -1)));
  }
  if (v < 0)
    luaL_argerror(L, arg, lua_pushfstring(L, "negative size %d at position %d of the shape",
                                          (int)v, pos));
  return (int64_t)v;
}

int vlua_checkshape(lua_State *L, int arg, int64_t *shape, int *next) {
  int ndim = 0;
  if (lua_istable(L, arg) && !vlua_test(L, arg)) {
    lua_Integer n = luaL_len(L, arg);
    if (n > VL_MAX_DIMS)
      luaL_argerror(L, arg, lua_pushfstring(L, "at most %d dims, got %d", VL_MAX_DIMS, (int)n));
    for (int i = 1; i <= n; i++) {
      lua_geti(L, arg, i);
      shape[ndim++] = check_size(L, arg, i);
      lua_pop(L, 1);
    }
    if (next) *next = arg + 1;
    return ndim;
  }
  int i = arg;
  while (lua_type(L, i) == LUA_TNUMBER) {
    if (ndim >= VL_MAX_DIMS) luaL_argerror(L, i, "too many dims");
    lua_pushvalue(L, i);
    shape[ndim] = check_size(L, i, ndim + 1);
    ndim++;
    lua_pop(L, 1);
    i++;
  }
  if (ndim == 0 && !lua_isnoneornil(L, arg) && !lua_istable(L, arg))
    luaL_argerror(L, arg, lua_pushfstring(L, "shape expected (a table like {3, 4} or sizes), got %s",
                                          luaL_typename(L, arg)));
  if (next) *next = i;
  return ndim;
}

vl_dtype vlua_checkdtype(lua_State *L, int arg) {
  const char *name = luaL_checkstring(L, arg);
  vl_dtype dt;
  if (!vl_dtype_parse(name, &dt))
    luaL_argerror(L, arg, lua_pushfstring(L, "unknown dtype '%s' (expected f32, f64, i64 or bool)",
                                          name));
  return dt;
}

vl_dtype vlua_optdtype(lua_State *L, int arg, vl_dtype def) {
  if (!lua_istable(L, arg) || vlua_test(L, arg)) return def;
  vl_dtype dt = def;
  if (lua_getfield(L, arg, "dtype") != LUA_TNIL) {
    const char *name = lua_tostring(L, -1);
    if (!name || !vl_dtype_parse(name, &dt))
      luaL_argerror(L, arg, lua_pushfstring(L, "option dtype: unknown dtype '%s' (expected f32, "
                                               "f64, i64 or bool)", luaL_tolstring(L, -1, NULL)));
  }
  lua_pop(L, 1);
  return dt;
}

int64_t vlua_checkint_range(lua_State *L, int arg, const char *what, int64_t lo, int64_t hi) {
  int isnum;
  lua_Integer v = lua_tointegerx(L, arg, &isnum);
  if (!isnum)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s must be an integer, got %s", what,
                                          lua_type(L, arg) == LUA_TNUMBER
                                              ? lua_tostring(L, arg) : luaL_typename(L, arg)));
  if (v < lo || v > hi)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s %I out of range %I..%I", what, (lua_Integer)v,
                                          (lua_Integer)lo, (lua_Integer)hi));
  return (int64_t)v;
}

void vlua_push_int_array(lua_State *L, int n, const int64_t *v) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushinteger(L, v[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

void vlua_push_elem(lua_State *L, const vl_tensor *t, const int64_t *index) {
  switch (t->dtype) {
    case VL_F32: case VL_F64: lua_pushnumber(L, vl_get_f64(t, index)); break;
    case VL_I64: lua_pushinteger(L, vl_get_i64(t, index)); break;
    case VL_BOOL: lua_pushboolean(L, vl_get_i64(t, index) != 0); break;
    default: lua_pushnil(L);
  }
}

vlua_tensor *vlua_contiguous(lua_State *L, int arg) {
  arg = lua_absindex(L, arg);
  vlua_tensor *x = vlua_check(L, arg);
  if (vl_is_contiguous(&x->t)) {
    lua_pushvalue(L, arg);
    return x;
  }
  vlua_tensor *y = vlua_new_like(L, &x->t, x->t.dtype);
  vl_error err;
  vlua_check_status(L, "contiguous", vl_copy(vlua_ctx(L), &y->t, &x->t, &err), &err);
  return y;
}

vlua_tensor *vlua_cast(lua_State *L, int arg, vl_dtype dtype) {
  arg = lua_absindex(L, arg);
  vlua_tensor *x = vlua_check(L, arg);
  if (x->t.dtype == dtype) {
    lua_pushvalue(L, arg);
    return x;
  }
  vlua_tensor *y = vlua_new_like(L, &x->t, dtype);
  vl_error err;
  vlua_check_status(L, "to", vl_copy(vlua_ctx(L), &y->t, &x->t, &err), &err);
  return y;
}
