/* HDF5 files from Lua: a file handle userdata ("velua.H5File", closed by __gc/__close or
 * h5_close) and functions over it. Higher layers (velua.save/load, AnnData I/O) compose these.
 * Row ranges are 1-based inclusive here and converted for the core. */
#include <string.h>

#include "hdf5_file.h"
#include "lua_tensor.h"

#define H5FILE_MT "velua.H5File"

void vlua_register_anndata(lua_State *L);

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

static const char *const STORE_NAMES[] = {"native", "i8", "i16", "i32", "u8", "u16", "u32",
                                           "f32", "f64", NULL};

/* Write options at arg: nil, a gzip level, or {gzip=, dtype= (file type), filter=, fixed=}. */
static vl_h5_write_opts check_write_opts(lua_State *L, int arg) {
  vl_h5_write_opts o = {0, VL_H5_STORE_NATIVE, 0, 0};
  if (lua_isnoneornil(L, arg)) return o;
  if (lua_type(L, arg) == LUA_TNUMBER) {
    o.gzip = (int)vlua_checkint_range(L, arg, "gzip level", 0, 9);
    return o;
  }
  luaL_checktype(L, arg, LUA_TTABLE);
  lua_getfield(L, arg, "gzip");
  if (!lua_isnil(L, -1)) o.gzip = (int)vlua_checkint_range(L, -1, "gzip level", 0, 9);
  lua_getfield(L, arg, "dtype");
  if (!lua_isnil(L, -1)) o.store = (vl_h5_store)luaL_checkoption(L, -1, NULL, STORE_NAMES);
  lua_getfield(L, arg, "filter");
  if (!lua_isnil(L, -1)) o.filter_id = (int)vlua_checkint_range(L, -1, "filter id", 1, 65535);
  lua_getfield(L, arg, "fixed");
  if (!lua_isnil(L, -1)) o.fixed_len = (size_t)vlua_checkint_range(L, -1, "fixed length", 1, 1 << 20);
  lua_pop(L, 4);
  return o;
}

/* h5_write(f, path, tensor, [gzip level | {gzip=, dtype=, filter=}]) */
static int l_h5_write(lua_State *L) {
  lh5 *h = check_file(L, 1);
  const char *path = luaL_checkstring(L, 2);
  vlua_check(L, 3);
  vl_h5_write_opts o = check_write_opts(L, 4);
  lua_settop(L, 4);
  vlua_tensor *c = vlua_contiguous(L, 3);
  vl_error err;
  vlua_check_status(L, "h5_write", vl_h5_write_ex(h->f, path, &c->t, &o, &err), &err);
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

/* h5_write_strings(f, path, string or {strings}, [{gzip=, fixed=}]) */
static int l_h5_write_strings(lua_State *L) {
  lh5 *h = check_file(L, 1);
  const char *path = luaL_checkstring(L, 2);
  vl_h5_write_opts o = check_write_opts(L, 4);
  int64_t n;
  bool scalar;
  const char **s = check_strings(L, 3, &n, &scalar);
  vl_error err;
  vlua_check_status(L, "h5_write_strings", vl_h5_write_strings_ex(h->f, path, s, n, scalar, &o, &err),
                    &err);
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


/* h5_attr_info(f, path, name): {class=, size=, shape=, ...} of an attribute */
static int l_h5_attr_info(lua_State *L) {
  lh5 *h = check_file(L, 1);
  vl_h5_info info;
  vl_error err;
  vlua_check_status(L, "h5_attr_info",
                    vl_h5_attr_info(h->f, luaL_checkstring(L, 2), luaL_checkstring(L, 3), &info, &err),
                    &err);
  push_info(L, &info);
  return 1;
}

static vl_status push_field(const char *name, const vl_h5_info *info, void *arg, vl_error *err) {
  lua_State *L = arg;
  push_info(L, info);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "name");
  lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
  return VL_OK;
}

/* h5_fields(f, path): the members of a compound dataset, in order, as info tables with name */
static int l_h5_fields(lua_State *L) {
  lh5 *h = check_file(L, 1);
  lua_newtable(L);
  vl_error err;
  vlua_check_status(L, "h5_fields", vl_h5_compound_fields(h->f, luaL_checkstring(L, 2), push_field, L,
                                                          &err), &err);
  return 1;
}

typedef struct {
  const char *field;
  vl_h5_info info;
  bool found;
} field_query;

static vl_status find_field(const char *name, const vl_h5_info *info, void *arg, vl_error *err) {
  field_query *q = arg;
  if (!q->found && strcmp(name, q->field) == 0) {
    q->info = *info;
    q->found = true;
  }
  return VL_OK;
}

/* h5_read_field(f, path, field, [dtype]): a numeric/bool member of a compound dataset */
static int l_h5_read_field(lua_State *L) {
  lh5 *h = check_file(L, 1);
  const char *path = luaL_checkstring(L, 2), *field = luaL_checkstring(L, 3);
  field_query q = {field, {0}, false};
  vl_error err;
  vlua_check_status(L, "h5_read_field", vl_h5_compound_fields(h->f, path, find_field, &q, &err), &err);
  if (!q.found) luaL_error(L, "h5_read_field: compound dataset '%s' has no field '%s'", path, field);
  vl_dtype dt = lua_isnoneornil(L, 4) ? natural_dtype(&q.info) : vlua_checkdtype(L, 4);
  vlua_tensor *t = vlua_new(L, dt, q.info.ndim, q.info.shape);
  vlua_check_status(L, "h5_read_field", vl_h5_read_field(h->f, path, field, &t->t, &err), &err);
  return 1;
}

/* h5_read_field_strings(f, path, field): a string member as a Lua array */
static int l_h5_read_field_strings(lua_State *L) {
  lh5 *h = check_file(L, 1);
  const char *path = luaL_checkstring(L, 2), *field = luaL_checkstring(L, 3);
  lua_newtable(L);
  vl_error err;
  vlua_check_status(L, "h5_read_field_strings",
                    vl_h5_read_field_strings(h->f, path, field, push_string, L, &err), &err);
  return 1;
}

/* h5_write_compound(f, path, {{name, tensor or {strings}}, ...}): a 1-d compound dataset */
static int l_h5_write_compound(lua_State *L) {
  lh5 *h = check_file(L, 1);
  const char *path = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  int nf = (int)luaL_len(L, 3);
  if (nf < 1 || nf > 4096) luaL_argerror(L, 3, "1 to 4096 fields expected");
  vl_h5_field *fields = lua_newuserdatauv(L, sizeof(vl_h5_field) * (size_t)nf, 0); /* 4 */
  int64_t n = -1;
  for (int i = 0; i < nf; i++) {
    luaL_checkstack(L, 8, "too many fields");
    lua_geti(L, 3, i + 1);
    if (!lua_istable(L, -1)) luaL_argerror(L, 3, "each field must be {name, value}");
    lua_geti(L, -1, 1);
    fields[i].name = luaL_checkstring(L, -1);
    lua_pop(L, 1);
    lua_geti(L, -1, 2);
    int vi = lua_gettop(L);
    int64_t len;
    if (vlua_test(L, vi)) {
      vlua_tensor *c = vlua_contiguous(L, vi);
      fields[i].t = &c->t;
      fields[i].strings = NULL;
      len = c->t.ndim > 0 ? c->t.shape[0] : -1;
    } else {
      bool scalar;
      fields[i].strings = check_strings(L, vi, &len, &scalar);
      fields[i].t = NULL;
    }
    if (n >= 0 && len != n) luaL_error(L, "h5_write_compound: field '%s' has %I rows, not %I",
                                       fields[i].name, (lua_Integer)len, (lua_Integer)n);
    n = len;
    /* keep the value (and its converted forms) alive: leave them on the stack */
  }
  vl_error err;
  vlua_check_status(L, "h5_write_compound", vl_h5_write_compound(h->f, path, n, nf, fields, &err), &err);
  return 0;
}

/* h5_read_attr_ref(f, path, name): the path of the object an object-reference attribute names */
static int l_h5_read_attr_ref(lua_State *L) {
  lh5 *h = check_file(L, 1);
  char target[1024];
  vl_error err;
  vlua_check_status(L, "h5_read_attr_ref", vl_h5_read_attr_ref(h->f, luaL_checkstring(L, 2),
                    luaL_checkstring(L, 3), target, sizeof target, &err), &err);
  lua_pushstring(L, target);
  return 1;
}

static int l_h5_write_attr_ref(lua_State *L) {
  lh5 *h = check_file(L, 1);
  vl_error err;
  vlua_check_status(L, "h5_write_attr_ref", vl_h5_write_attr_ref(h->f, luaL_checkstring(L, 2),
                    luaL_checkstring(L, 3), luaL_checkstring(L, 4), &err), &err);
  return 0;
}

/* h5_check(path, [timeout_s = 120]): raises if the file is corrupt in a way that would crash
 * libhdf5 (see vl_h5_check); true otherwise */
static int l_h5_check(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  double timeout = luaL_optnumber(L, 2, 120);
  vl_error err;
  vl_status st = vl_h5_check(path, timeout, &err);
  if (st) luaL_error(L, "%s", err.msg);
  lua_pushboolean(L, 1);
  return 1;
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
    {"h5_read_attr", l_h5_read_attr}, {"h5_write_attr", l_h5_write_attr},
    {"h5_attr_info", l_h5_attr_info}, {"h5_fields", l_h5_fields}, {"h5_read_field", l_h5_read_field},
    {"h5_read_field_strings", l_h5_read_field_strings}, {"h5_write_compound", l_h5_write_compound},
    {"h5_read_attr_ref", l_h5_read_attr_ref}, {"h5_write_attr_ref", l_h5_write_attr_ref},
    {"h5_check", l_h5_check}, {NULL, NULL}};
  vlua_setfuncs(L, regs);
  vlua_register_anndata(L); /* AnnData kernels (bind_anndata.c) ride along with HDF5 I/O */
}
