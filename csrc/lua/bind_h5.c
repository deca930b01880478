/* HDF5 files from Lua: a file handle userdata ("velua.H5File", closed by __gc/__close or
 * h5_close) and functions over it. Higher layers (velua.save/load, AnnData I/O) compose these.
 * Row ranges are 1-based inclusive here and converted for the core. */
#include <string.h>

#include "hdf5_file.h"
#include "lua_tensor.h"

#define H5FILE_MT "velua.H5File"

typedef struct {
  vl_h5file *f; /* NULL once closed */
} lh5;

static lh5 *check_file(lua_State *L, int arg) {
  lh5 *h = luaL_checkudata(L, arg, H5FILE_MT);
  if (!h->f) luaL_argerror(L, arg, "HDF5 file is closed");
  return h;
}

static int l_h5_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *mode = luaL_optstring(L, 2, "r");
  vl_h5_mode m;
  if (strcmp(mode, "r") == 0) m = VL_H5_READ;
  else if (strcmp(mode, "r+") == 0) m = VL_H5_READWRITE;
  else if (strcmp(mode, "w") == 0) m = VL_H5_CREATE;
  else return luaL_argerror(L, 2, lua_pushfstring(L, "mode must be 'r', 'r+' or 'w', got '%s'", mode));
  /* valid (closed) userdata first, then the resource */
  lh5 *h = lua_newuserdatauv(L, sizeof(lh5), 0);
  h->f = NULL;
  luaL_setmetatable(L, H5FILE_MT);
  vl_error err;
  vl_status st = vl_h5_open(path, m, &h->f, &err);
  if (st) luaL_error(L, "%s", err.msg);
  return 1;
}

static int l_h5_close(lua_State *L) {
  lh5 *h = luaL_checkudata(L, 1, H5FILE_MT);
  if (h->f) {
    vl_error err;
    vl_status st = vl_h5_close(h->f, &err);
    h->f = NULL;
    if (st) luaL_error(L, "%s", err.msg);
  }
  return 0;
}

static int l_h5_gc(lua_State *L) {
  lh5 *h = luaL_checkudata(L, 1, H5FILE_MT);
  if (h->f) {
    vl_h5_close(h->f, NULL);
    h->f = NULL;
  }
  return 0;
}

static int l_h5_kind(lua_State *L) {
  lh5 *h = check_file(L, 1);
  switch (vl_h5_kind_of(h->f, luaL_checkstring(L, 2))) {
    case VL_H5_GROUP: lua_pushliteral(L, "group"); break;
    case VL_H5_DATASET: lua_pushliteral(L, "dataset"); break;
    case VL_H5_OTHER: lua_pushliteral(L, "other"); break;
    default: lua_pushnil(L);
  }
  return 1;
}

static int l_h5_create_group(lua_State *L) {
  lh5 *h = check_file(L, 1);
  vl_error err;
  vlua_check_status(L, "h5_create_group", vl_h5_create_group(h->f, luaL_checkstring(L, 2), &err), &err);
  return 0;
}

static vl_status push_name(const char *name, void *arg, vl_error *err) {
  lua_State *L = arg;
  lua_pushstring(L, name);
  lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
  return VL_OK;
}

static int l_h5_list(lua_State *L) {
  lh5 *h = check_file(L, 1);
  const char *path = luaL_optstring(L, 2, "/");
  lua_newtable(L);
  vl_error err;
  vlua_check_status(L, "h5_list", vl_h5_list(h->f, path, push_name, L, &err), &err);
  return 1;
}

static int l_h5_attrs(lua_State *L) {
  lh5 *h = check_file(L, 1);
  const char *path = luaL_optstring(L, 2, "/");
  lua_newtable(L);
  vl_error err;
  vlua_check_status(L, "h5_attrs", vl_h5_list_attrs(h->f, path, push_name, L, &err), &err);
  return 1;
}

static const char *class_name(vl_h5_class c) {
  static const char *n[] = {"float", "int", "uint", "bool", "string", "compound", "enum",
                            "reference", "other"};
  return n[c];
}

static void push_info(lua_State *L, const vl_h5_info *info) {
  lua_createtable(L, 0, 6);
  lua_pushstring(L, class_name(info->cls));
  lua_setfield(L, -2, "class");
  lua_pushinteger(L, (lua_Integer)info->size);
  lua_setfield(L, -2, "size");
  vlua_push_int_array(L, info->ndim, info->shape);
  lua_setfield(L, -2, "shape");
  lua_pushboolean(L, info->variable_string);
  lua_setfield(L, -2, "variable_string");
  lua_pushboolean(L, info->filter_ok);
  lua_setfield(L, -2, "filter_ok");
  if (!info->filter_ok) {
    lua_pushstring(L, info->filter_name);
    lua_setfield(L, -2, "filter");
  }
}

static int l_h5_info(lua_State *L) {
  lh5 *h = check_file(L, 1);
  vl_h5_info info;
  vl_error err;
  vlua_check_status(L, "h5_info", vl_h5_dataset_info(h->f, luaL_checkstring(L, 2), &info, &err), &err);
  push_info(L, &info);
  return 1;
}

static vl_dtype natural_dtype(const vl_h5_info *info) {
  switch (info->cls) {
    case VL_H5T_FLOAT: return info->size <= 4 ? VL_F32 : VL_F64;
    case VL_H5T_BOOL: return VL_BOOL;
    default: return VL_I64;
  }
}

/* h5_read(f, path, [dtype], [first_row, last_row]): a dataset as a tensor */
static int l_h5_read(lua_State *L) {
  lh5 *h = check_file(L, 1);
  const char *path = luaL_checkstring(L, 2);
  vl_h5_info info;
  vl_error err;
  vlua_check_status(L, "h5_read", vl_h5_dataset_info(h->f, path, &info, &err), &err);
  vl_dtype dt = lua_isnoneornil(L, 3) ? natural_dtype(&info) : vlua_checkdtype(L, 3);
  int64_t rows[2], *rp = NULL;
  if (!lua_isnoneornil(L, 4)) {
    if (info.ndim < 1) luaL_argerror(L, 4, "row range given for a scalar dataset");
    rows[0] = vlua_checkint_range(L, 4, "first row", 1, info.shape[0] + 1) - 1;
    rows[1] = vlua_checkint_range(L, 5, "last row", rows[0], info.shape[0]);
    info.shape[0] = rows[1] - rows[0];
    rp = rows;
  }
  vlua_tensor *t = vlua_new(L, dt, info.ndim, info.shape);
  vlua_check_status(L, "h5_read", vl_h5_read(h->f, path, &t->t, rp, &err), &err);
  return 1;
}

static vl_status push_string(int64_t i, const char *s, size_t len, void *arg, vl_error *err) {
  lua_State *L = arg;
  lua_pushlstring(L, s, len);
  lua_rawseti(L, -2, (lua_Integer)i + 1);
  return VL_OK;
}

/* h5_read_strings(f, path): a Lua array of strings (a single string for a scalar dataset) */
static int l_h5_read_strings(lua_State *L) {
  lh5 *h = check_file(L, 1);
  const char *path = luaL_checkstring(L, 2);
  vl_h5_info info;
  vl_error err;
  vlua_check_status(L, "h5_read_strings", vl_h5_dataset_info(h->f, path, &info, &err), &err);
  lua_newtable(L);
  vlua_check_status(L, "h5_read_strings", vl_h5_read_strings(h->f, path, push_string, L, &err), &err);
  if (info.ndim == 0) lua_rawgeti(L, -1, 1);
  return 1;
}

/* h5_write(f, path, tensor, [gzip level]) */
static int l_h5_write(lua_State *L) {
  lh5 *h = check_file(L, 1);
  const char *path = luaL_checkstring(L, 2);
  vlua_check(L, 3);
  int gzip = (int)luaL_optinteger(L, 4, 0);
  lua_settop(L, 4);
  vlua_tensor *c = vlua_contiguous(L, 3);
  vl_error err;
  vlua_check_status(L, "h5_write", vl_h5_write(h->f, path, &c->t, gzip, &err), &err);
  return 0;
}

/* Collects a string or a table of strings at arg into a userdata-backed pointer array. */
static const char **check_strings(lua_State *L, int arg, int64_t *n, bool *scalar) {
  if (lua_type(L, arg) == LUA_TSTRING) {
    const char **p = lua_newuserdatauv(L, sizeof(char *), 0);
    p[0] = lua_tostring(L, arg);
    *n = 1;
    *scalar = true;
    return p;
  }
  luaL_checktype(L, arg, LUA_TTABLE);
  int64_t count = (int64_t)luaL_len(L, arg);
  const char **p = lua_newuserdatauv(L, sizeof(char *) * (size_t)(count > 0 ? count : 1), 0);
  for (int64_t i = 0; i < count; i++) {
    lua_geti(L, arg, i + 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, arg, lua_pushfstring(L, "entry %I is a %s, not a string", (lua_Integer)i + 1,
                                            luaL_typename(L, -1)));
    p[i] = lua_tostring(L, -1);
    lua_pop(L, 1); /* the string stays alive in the table */
  }
  *n = count;
  *scalar = false;
  return p;
}

static int l_h5_write_strings(lua_State *L) {
  lh5 *h = check_file(L, 1);
  const char *path = luaL_checkstring(L, 2);
  int64_t n;
  bool scalar;
  const char **s = check_strings(L, 3, &n, &scalar);
  vl_error err;
  vlua_check_status(L, "h5_write_strings", vl_h5_write_strings(h->f, path, s, n, scalar, &err), &err);
  return 0;
}

/* h5_read_attr(f, path, name): string, array of strings, number/integer/boolean, or a tensor
 * for multi-element numeric attributes */
static int l_h5_read_attr(lua_State *L) {
  lh5 *h = check_file(L, 1);
  const char *path = luaL_checkstring(L, 2), *name = luaL_checkstring(L, 3);
  vl_h5_info info;
  vl_error err;
  vlua_check_status(L, "h5_read_attr", vl_h5_attr_info(h->f, path, name, &info, &err), &err);
  if (info.cls == VL_H5T_STRING) {
    lua_newtable(L);
    vlua_check_status(L, "h5_read_attr",
                      vl_h5_read_attr_strings(h->f, path, name, push_string, L, &err), &err);
    if (info.ndim == 0) lua_rawgeti(L, -1, 1);
    return 1;
  }
  vlua_tensor *t = vlua_new(L, natural_dtype(&info), info.ndim, info.shape);
  vlua_check_status(L, "h5_read_attr", vl_h5_read_attr(h->f, path, name, &t->t, &err), &err);
  if (info.ndim == 0) {
    int64_t idx[1] = {0};
    vlua_push_elem(L, &t->t, idx);
  }
  return 1;
}

/* h5_write_attr(f, path, name, value): value a string, a table of strings, a number, a
 * boolean, or a tensor */
static int l_h5_write_attr(lua_State *L) {
  lh5 *h = check_file(L, 1);
  const char *path = luaL_checkstring(L, 2), *name = luaL_checkstring(L, 3);
  vl_error err;
  vl_status st;
  int t = lua_type(L, 4);
  if (t == LUA_TSTRING || (t == LUA_TTABLE && !vlua_test(L, 4))) {
    int64_t n;
    bool scalar;
    const char **s = check_strings(L, 4, &n, &scalar);
    st = vl_h5_write_attr_strings(h->f, path, name, s, n, scalar, &err);
  } else if (t == LUA_TNUMBER || t == LUA_TBOOLEAN) {
    union { double f; int64_t i; uint8_t b; } v;
    vl_tensor s;
    memset(&s, 0, sizeof s);
    s.data = (char *)&v;
    if (t == LUA_TBOOLEAN) { s.dtype = VL_BOOL; v.b = (uint8_t)lua_toboolean(L, 4); }
    else if (lua_isinteger(L, 4)) { s.dtype = VL_I64; v.i = lua_tointeger(L, 4); }
    else { s.dtype = VL_F64; v.f = lua_tonumber(L, 4); }
    st = vl_h5_write_attr(h->f, path, name, &s, &err);
  } else {
    vlua_check(L, 4);
    lua_settop(L, 4);
    vlua_tensor *c = vlua_contiguous(L, 4);
    st = vl_h5_write_attr(h->f, path, name, &c->t, &err);
  }
  vlua_check_status(L, "h5_write_attr", st, &err);
  return 0;
}

static int l_h5_tostring(lua_State *L) {
  lh5 *h = luaL_checkudata(L, 1, H5FILE_MT);
  lua_pushfstring(L, "velua.H5File(%s)", h->f ? "open" : "closed");
  return 1;
}

void vlua_register_h5(lua_State *L) {
  if (luaL_newmetatable(L, H5FILE_MT)) {
    lua_pushcfunction(L, l_h5_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_h5_gc);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_h5_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  static const luaL_Reg regs[] = {
    {"h5_open", l_h5_open}, {"h5_close", l_h5_close}, {"h5_kind", l_h5_kind},
    {"h5_create_group", l_h5_create_group}, {"h5_list", l_h5_list}, {"h5_attrs", l_h5_attrs},
    {"h5_info", l_h5_info}, {"h5_read", l_h5_read}, {"h5_read_strings", l_h5_read_strings},
    {"h5_write", l_h5_write}, {"h5_write_strings", l_h5_write_strings},
    {"h5_read_attr", l_h5_read_attr}, {"h5_write_attr", l_h5_write_attr}, {NULL, NULL}};
  vlua_setfuncs(L, regs);
}
