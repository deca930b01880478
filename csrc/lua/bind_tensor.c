/* Tensor construction, inspection, element access and copy-free views. */
#include <math.h>
#include <string.h>

#include "lua_tensor.h"
#include "memory.h"
#include "ops_elementwise.h"

/* ---------- construction ---------- */

/* empty(shape..., [opts]) */
static int l_empty(lua_State *L) {
  int64_t shape[VL_MAX_DIMS];
  int next;
  int ndim = vlua_checkshape(L, 1, shape, &next);
  vlua_new(L, vlua_optdtype(L, next, VL_F32), ndim, shape);
  return 1;
}

static void fill_value(lua_State *L, const vl_tensor *t, int arg) {
  vl_error err;
  double v;
  int64_t vi;
  if (lua_isboolean(L, arg)) {
    v = lua_toboolean(L, arg);
    vi = (int64_t)v;
  } else if (lua_isinteger(L, arg)) {
    vi = lua_tointeger(L, arg);
    v = (double)vi;
  } else {
    v = luaL_checknumber(L, arg);
    if (t->dtype == VL_I64 && v != floor(v))
      luaL_argerror(L, arg, lua_pushfstring(L, "value %f is not an integer (tensor is i64)", v));
    vi = (int64_t)v;
  }
  vlua_check_status(L, "fill", vl_fill(vlua_ctx(L), t, v, vi, &err), &err);
}

/* full(shape, value, [opts]) */
static int l_full(lua_State *L) {
  int64_t shape[VL_MAX_DIMS];
  int next;
  int ndim = vlua_checkshape(L, 1, shape, &next);
  if (lua_isnoneornil(L, next)) luaL_argerror(L, next, "fill value expected");
  vl_dtype def = lua_isboolean(L, next) ? VL_BOOL : VL_F32;
  vlua_tensor *t = vlua_new(L, vlua_optdtype(L, next + 1, def), ndim, shape);
  fill_value(L, &t->t, next);
  return 1;
}

/* fill_(t, value) */
static int l_fill_(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  fill_value(L, &t->t, 2);
  vlua_mark_written(t);
  lua_settop(L, 1);
  return 1;
}

/* Infers the shape of a nested table; raises if ragged. *ndim is -1 until the first leaf
 * (or empty table) fixes the depth. */
static void nested_shape(lua_State *L, int idx, int depth, int *ndim, int64_t *shape,
                         bool *has_bool) {
  if (lua_type(L, idx) != LUA_TTABLE) {
    if (*ndim >= 0 && depth != *ndim)
      luaL_error(L, "tensor: ragged nested table (a number at depth %d, expected depth %d)",
                 depth + 1, *ndim + 1);
    *ndim = depth;
    if (lua_isboolean(L, idx)) *has_bool = true;
    else if (lua_type(L, idx) != LUA_TNUMBER)
      luaL_error(L, "tensor: expected numbers or booleans in the table, got %s",
                 luaL_typename(L, idx));
    return;
  }
  if (depth >= VL_MAX_DIMS) luaL_error(L, "tensor: table nested deeper than %d", VL_MAX_DIMS);
  if (*ndim >= 0 && depth >= *ndim)
    luaL_error(L, "tensor: ragged nested table (a table at depth %d, expected a number)",
               depth + 1);
  int64_t n = (int64_t)luaL_len(L, idx);
  bool first_visit = *ndim < 0 || shape[depth] < 0;
  if (first_visit && *ndim < 0) {
    /* mark deeper sizes unknown */
    for (int d = depth; d < VL_MAX_DIMS; d++) shape[d] = -1;
  }
  if (shape[depth] < 0) shape[depth] = n;
  else if (shape[depth] != n)
    luaL_error(L, "tensor: ragged nested table (size %d at depth %d, expected %d)", (int)n,
               depth + 1, (int)shape[depth]);
  if (n == 0) {
    if (*ndim < 0) *ndim = depth + 1;
    else if (*ndim != depth + 1)
      luaL_error(L, "tensor: ragged nested table (empty table at depth %d)", depth + 1);
    return;
  }
  for (int64_t i = 1; i <= n; i++) {
    lua_geti(L, idx, i);
    nested_shape(L, lua_gettop(L), depth + 1, ndim, shape, has_bool);
    lua_pop(L, 1);
  }
}

static void nested_fill(lua_State *L, int idx, const vl_tensor *t, int depth, int64_t *index) {
  if (depth == t->ndim) {
    if (lua_isboolean(L, idx)) vl_set_i64(t, index, lua_toboolean(L, idx));
    else if (lua_isinteger(L, idx)) vl_set_i64(t, index, lua_tointeger(L, idx));
    else {
      double v = lua_tonumber(L, idx);
      if (t->dtype == VL_I64 && v != floor(v))
        luaL_error(L, "tensor: value %f is not an integer (dtype i64)", v);
      vl_set_f64(t, index, v);
    }
    return;
  }
  for (int64_t i = 0; i < t->shape[depth]; i++) {
    lua_geti(L, idx, i + 1);
    index[depth] = i;
    nested_fill(L, lua_gettop(L), t, depth + 1, index);
    lua_pop(L, 1);
  }
}

/* from_table(nested | number | boolean, [opts]) */
static int l_from_table(lua_State *L) {
  int64_t shape[VL_MAX_DIMS];
  int ndim = -1; /* unknown until the first leaf */
  for (int d = 0; d < VL_MAX_DIMS; d++) shape[d] = -1;
  bool has_bool = false;
  int t = lua_type(L, 1);
  if (t != LUA_TTABLE && t != LUA_TNUMBER && t != LUA_TBOOLEAN)
    luaL_argerror(L, 1, lua_pushfstring(L, "nested table, number or boolean expected, got %s",
                                        luaL_typename(L, 1)));
  nested_shape(L, 1, 0, &ndim, shape, &has_bool);
  vl_dtype dt = vlua_optdtype(L, 2, has_bool ? VL_BOOL : VL_F32);
  vlua_tensor *r = vlua_new(L, dt, ndim, shape);
  int64_t index[VL_MAX_DIMS] = {0};
  if (vl_numel(&r->t) > 0) nested_fill(L, 1, &r->t, 0, index);
  return 1;
}

/* arange(start, stop, step, [opts]): values start, start+step, ... < stop */
static int l_arange(lua_State *L) {
  double start = luaL_checknumber(L, 1), stop = luaL_checknumber(L, 2);
  double step = luaL_optnumber(L, 3, 1.0);
  if (step == 0 || isnan(step)) luaL_argerror(L, 3, "step must be non-zero");
  if (!isfinite(start) || !isfinite(stop)) luaL_argerror(L, 1, "start and stop must be finite");
  bool ints = lua_isinteger(L, 1) && lua_isinteger(L, 2) && (lua_isnoneornil(L, 3) ||
                                                              lua_isinteger(L, 3));
  vl_dtype dt = vlua_optdtype(L, 4, ints ? VL_I64 : VL_F32);
  double n = ceil((stop - start) / step);
  if (n < 0) n = 0;
  if (n > 1e12) luaL_error(L, "arange: %f elements is too many", n);
  int64_t shape[1] = {(int64_t)n};
  vlua_tensor *t = vlua_new(L, dt, 1, shape);
  vl_error err;
  vlua_check_status(L, "arange", vl_arange(vlua_ctx(L), &t->t, start, step, &err), &err);
  return 1;
}

/* linspace(a, b, n, [opts]) */
static int l_linspace(lua_State *L) {
  double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2);
  int64_t n = vlua_checkint_range(L, 3, "number of points", 0, (int64_t)1 << 40);
  vl_dtype dt = vlua_optdtype(L, 4, VL_F32);
  if (!vl_dtype_is_float(dt)) luaL_argerror(L, 4, "linspace: dtype must be f32 or f64");
  int64_t shape[1] = {n};
  vlua_tensor *t = vlua_new(L, dt, 1, shape);
  double step = n > 1 ? (b - a) / (double)(n - 1) : 0.0;
  for (int64_t i = 0; i < n; i++) {
    /* symmetric formula as in PyTorch: exact end points */
    double v = i < n / 2 ? a + step * (double)i : b - step * (double)(n - 1 - i);
    vl_set_f64(&t->t, &i, v);
  }
  return 1;
}

/* eye(n, [m], [opts]) */
static int l_eye(lua_State *L) {
  int64_t n = vlua_checkint_range(L, 1, "size", 0, (int64_t)1 << 31);
  int64_t m = n;
  int opt = 2;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    m = vlua_checkint_range(L, 2, "size", 0, (int64_t)1 << 31);
    opt = 3;
  }
  int64_t shape[2] = {n, m};
  vlua_tensor *t = vlua_new(L, vlua_optdtype(L, opt, VL_F32), 2, shape);
  vl_error err;
  vl_fill(vlua_ctx(L), &t->t, 0.0, 0, &err);
  for (int64_t i = 0; i < n && i < m; i++) {
    int64_t idx[2] = {i, i};
    vl_set_i64(&t->t, idx, 1);
  }
  return 1;
}

/* ---------- inspection ---------- */

static int l_shape(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  vlua_push_int_array(L, t->t.ndim, t->t.shape);
  return 1;
}

static int l_stride(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  vlua_push_int_array(L, t->t.ndim, t->t.stride);
  return 1;
}

static int l_size(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  if (lua_isnoneornil(L, 2)) return l_shape(L);
  int d = vlua_checkdim(L, 2, t->t.ndim, false);
  lua_pushinteger(L, t->t.shape[d]);
  return 1;
}

static int l_dim(lua_State *L) {
  lua_pushinteger(L, vlua_check(L, 1)->t.ndim);
  return 1;
}

static int l_numel(lua_State *L) {
  lua_pushinteger(L, vl_numel(&vlua_check(L, 1)->t));
  return 1;
}

static int l_dtype(lua_State *L) {
  lua_pushstring(L, vl_dtype_name(vlua_check(L, 1)->t.dtype));
  return 1;
}

static int l_is_contiguous(lua_State *L) {
  lua_pushboolean(L, vl_is_contiguous(&vlua_check(L, 1)->t));
  return 1;
}

static int l_is_tensor(lua_State *L) {
  lua_pushboolean(L, vlua_test(L, 1) != NULL);
  return 1;
}

/* same_storage(a, b): do two tensors share memory? */
static int l_same_storage(lua_State *L) {
  lua_pushboolean(L, vlua_check(L, 1)->storage == vlua_check(L, 2)->storage);
  return 1;
}

/* version(t): count of in-place writes into t's storage so far */
static int l_version(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)vlua_check(L, 1)->storage->version);
  return 1;
}

static int l_storage_nbytes(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)vlua_check(L, 1)->storage->nbytes);
  return 1;
}

/* ---------- element access ---------- */

static void check_index(lua_State *L, const vl_tensor *t, int first, int64_t *index,
                        const char *fname) {
  for (int d = 0; d < t->ndim; d++) {
    int arg = first + d;
    int isnum;
    lua_Integer i = lua_tointegerx(L, arg, &isnum);
    if (!isnum)
      luaL_argerror(L, arg, lua_pushfstring(L, "%s: index %d must be an integer, got %s", fname,
                                            d + 1, luaL_typename(L, arg)));
    lua_Integer z = i < 0 ? i + t->shape[d] : i - 1;
    if (z < 0 || z >= t->shape[d])
      luaL_argerror(L, arg, lua_pushfstring(L, "%s: index %I out of range for dim %d of size %I",
                                            fname, i, d + 1, (lua_Integer)t->shape[d]));
    index[d] = z;
  }
}

/* get(t, i, j, ...): one index per dim */
static int l_get(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  int nidx = lua_gettop(L) - 1;
  if (nidx != t->t.ndim)
    luaL_error(L, "get: %d indices given for a %d-d tensor (use select/narrow for views)", nidx,
               t->t.ndim);
  int64_t index[VL_MAX_DIMS];
  check_index(L, &t->t, 2, index, "get");
  vlua_push_elem(L, &t->t, index);
  return 1;
}

/* set(t, i, j, ..., value) */
static int l_set(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  int nidx = lua_gettop(L) - 2;
  if (nidx != t->t.ndim)
    luaL_error(L, "set: %d indices given for a %d-d tensor (expected indices then a value)",
               nidx < 0 ? 0 : nidx, t->t.ndim);
  int64_t index[VL_MAX_DIMS];
  check_index(L, &t->t, 2, index, "set");
  int varg = t->t.ndim + 2;
  if (lua_isboolean(L, varg)) vl_set_i64(&t->t, index, lua_toboolean(L, varg));
  else if (lua_isinteger(L, varg)) vl_set_i64(&t->t, index, lua_tointeger(L, varg));
  else vl_set_f64(&t->t, index, luaL_checknumber(L, varg));
  vlua_mark_written(t);
  lua_settop(L, 1);
  return 1;
}

static int l_item(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  int64_t n = vl_numel(&t->t);
  if (n != 1) luaL_error(L, "item: tensor has %d elements, expected exactly 1", (int)n);
  int64_t index[VL_MAX_DIMS] = {0};
  vlua_push_elem(L, &t->t, index);
  return 1;
}

static void push_nested(lua_State *L, const vl_tensor *t, int depth, int64_t *index) {
  if (depth == t->ndim) {
    vlua_push_elem(L, t, index);
    return;
  }
  lua_createtable(L, (int)t->shape[depth], 0);
  for (int64_t i = 0; i < t->shape[depth]; i++) {
    index[depth] = i;
    push_nested(L, t, depth + 1, index);
    lua_rawseti(L, -2, i + 1);
  }
}

static int l_totable(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  int64_t index[VL_MAX_DIMS] = {0};
  luaL_checkstack(L, t->t.ndim + 4, "totable");
  push_nested(L, &t->t, 0, index);
  return 1;
}

/* ---------- views ---------- */

static int l_transpose(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  int a = vlua_checkdim(L, 2, t->t.ndim, false), b = vlua_checkdim(L, 3, t->t.ndim, false);
  vl_tensor v;
  vl_error err;
  vlua_check_status(L, "transpose", vl_view_transpose(&t->t, a, b, &v, &err), &err);
  vlua_new_view(L, 1, &v);
  return 1;
}

/* t(t): transpose of a matrix (a 0-d or 1-d tensor is returned as is) */
static int l_t(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  if (t->t.ndim > 2)
    luaL_argerror(L, 1, lua_pushfstring(L, "t() expects a tensor with at most 2 dims, got %d "
                                           "(use transpose)", t->t.ndim));
  vl_tensor v = t->t;
  if (v.ndim == 2) {
    vl_error err;
    vl_view_transpose(&t->t, 0, 1, &v, &err);
  }
  vlua_new_view(L, 1, &v);
  return 1;
}

/* permute(t, d1, d2, ...) or permute(t, {d1, d2, ...}) */
static int l_permute(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  int perm[VL_MAX_DIMS];
  int n;
  if (lua_istable(L, 2)) {
    n = (int)luaL_len(L, 2);
    if (n != t->t.ndim)
      luaL_argerror(L, 2, lua_pushfstring(L, "permute: %d dims given for a %d-d tensor", n,
                                          t->t.ndim));
    for (int i = 0; i < n; i++) {
      lua_geti(L, 2, i + 1);
      perm[i] = vlua_checkdim(L, lua_gettop(L), t->t.ndim, false);
      lua_pop(L, 1);
    }
  } else {
    n = lua_gettop(L) - 1;
    if (n != t->t.ndim)
      luaL_error(L, "permute: %d dims given for a %d-d tensor", n, t->t.ndim);
    for (int i = 0; i < n; i++) perm[i] = vlua_checkdim(L, i + 2, t->t.ndim, false);
  }
  vl_tensor v;
  vl_error err;
  vlua_check_status(L, "permute", vl_view_permute(&t->t, perm, &v, &err), &err);
  vlua_new_view(L, 1, &v);
  return 1;
}

/* select(t, dim, i): view without dim, at 1-based position i */
static int l_select(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  int d = vlua_checkdim(L, 2, t->t.ndim, false);
  lua_Integer i = luaL_checkinteger(L, 3);
  lua_Integer z = i < 0 ? i + t->t.shape[d] : i - 1;
  if (z < 0 || z >= t->t.shape[d])
    luaL_argerror(L, 3, lua_pushfstring(L, "select: index %I out of range for dim %d of size %I",
                                        i, d + 1, (lua_Integer)t->t.shape[d]));
  vl_tensor v;
  vl_error err;
  vlua_check_status(L, "select", vl_view_select(&t->t, d, z, &v, &err), &err);
  vlua_new_view(L, 1, &v);
  return 1;
}

/* narrow(t, dim, start, len): 1-based start */
static int l_narrow(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  int d = vlua_checkdim(L, 2, t->t.ndim, false);
  lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
  lua_Integer z = start < 0 ? start + t->t.shape[d] : start - 1;
  if (len < 0) luaL_argerror(L, 4, lua_pushfstring(L, "narrow: negative length %I", len));
  if (z < 0 || z + len > t->t.shape[d] || (start == 0))
    luaL_error(L, "narrow: range start %I, length %I out of range for dim %d of size %I", start,
               len, d + 1, (lua_Integer)t->t.shape[d]);
  vl_tensor v;
  vl_error err;
  vlua_check_status(L, "narrow", vl_view_narrow(&t->t, d, z, len, &v, &err), &err);
  vlua_new_view(L, 1, &v);
  return 1;
}

static int l_unsqueeze(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  int d = vlua_checkdim(L, 2, t->t.ndim, true);
  vl_tensor v;
  vl_error err;
  vlua_check_status(L, "unsqueeze", vl_view_unsqueeze(&t->t, d, &v, &err), &err);
  vlua_new_view(L, 1, &v);
  return 1;
}

/* squeeze(t, [dim]): drop dims of size 1 (only dim if given) */
static int l_squeeze(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  vl_tensor v = t->t;
  int only = lua_isnoneornil(L, 2) ? -1 : vlua_checkdim(L, 2, t->t.ndim, false);
  int nd = 0;
  for (int d = 0; d < t->t.ndim; d++) {
    bool drop = t->t.shape[d] == 1 && (only < 0 || only == d);
    if (drop) continue;
    v.shape[nd] = t->t.shape[d];
    v.stride[nd] = t->t.stride[d];
    nd++;
  }
  v.ndim = nd;
  vlua_new_view(L, 1, &v);
  return 1;
}

/* Reads a target shape for reshape/view/expand, resolving one -1 entry. */
static int target_shape(lua_State *L, int arg, const vl_tensor *t, int64_t *shape, bool infer) {
  int ndim = 0;
  int infer_at = -1;
  int64_t known = 1;
  bool table = lua_istable(L, arg);
  int count = table ? (int)luaL_len(L, arg) : lua_gettop(L) - arg + 1;
  if (count > VL_MAX_DIMS) luaL_argerror(L, arg, "too many dims");
  for (int i = 0; i < count; i++) {
    if (table) lua_geti(L, arg, i + 1);
    else lua_pushvalue(L, arg + i);
    int isnum;
    lua_Integer s = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    if (!isnum) luaL_argerror(L, table ? arg : arg + i, "shape entries must be integers");
    if (s == -1 && infer) {
      if (infer_at >= 0) luaL_argerror(L, arg, "only one dim may be -1");
      infer_at = ndim;
      s = 1;
    } else if (s < 0) {
      luaL_argerror(L, table ? arg : arg + i, lua_pushfstring(L, "negative size %I", s));
    } else {
      known *= s;
    }
    shape[ndim++] = s;
  }
  if (infer_at >= 0) {
    int64_t n = vl_numel(t);
    if (known == 0 || n % known != 0) {
      char b[128];
      luaL_error(L, "reshape: cannot infer the -1 dim of a shape for %d elements (shape %s)",
                 (int)n, vl_shape_str(ndim, shape, b, sizeof b));
    }
    shape[infer_at] = n / known;
  }
  return ndim;
}

/* reshape(t, shape...): a view when the strides allow, else a copy */
static int l_reshape(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  int64_t shape[VL_MAX_DIMS];
  int ndim = target_shape(L, 2, &t->t, shape, true);
  vl_tensor v;
  vl_error err;
  vl_error_clear(&err);
  vl_status st = vl_view_reshape(&t->t, ndim, shape, &v, &err);
  if (st == VL_OK) {
    vlua_new_view(L, 1, &v);
    return 1;
  }
  if (st != VL_ERR_UNSUPPORTED) vlua_check_status(L, "reshape", st, &err);
  vlua_contiguous(L, 1);
  vlua_tensor *c = vlua_check(L, -1);
  st = vl_view_reshape(&c->t, ndim, shape, &v, &err);
  vlua_check_status(L, "reshape", st, &err);
  vlua_new_view(L, -1, &v);
  return 1;
}

/* view(t, shape...): like reshape but never copies */
static int l_view(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  int64_t shape[VL_MAX_DIMS];
  int ndim = target_shape(L, 2, &t->t, shape, true);
  vl_tensor v;
  vl_error err;
  vl_error_clear(&err);
  vl_status st = vl_view_reshape(&t->t, ndim, shape, &v, &err);
  if (st == VL_ERR_UNSUPPORTED)
    luaL_error(L, "view: the strides of this tensor do not allow this shape without a copy "
                  "(use reshape or contiguous)");
  vlua_check_status(L, "view", st, &err);
  vlua_new_view(L, 1, &v);
  return 1;
}

/* expand(t, shape...): broadcast view (-1 keeps a dim) */
static int l_expand(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  int64_t shape[VL_MAX_DIMS];
  int ndim = target_shape(L, 2, &t->t, shape, false);
  (void)ndim;
  vl_tensor v;
  vl_error err;
  vlua_check_status(L, "expand", vl_broadcast_to(&t->t, ndim, shape, &v, &err), &err);
  vlua_new_view(L, 1, &v);
  return 1;
}

/* alias(t): a new view of exactly the same elements (no autograd state) */
static int l_alias(lua_State *L) {
  vlua_tensor *t = vlua_check(L, 1);
  vl_tensor v = t->t;
  vlua_new_view(L, 1, &v);
  return 1;
}

/* ---------- copies ---------- */

static int l_contiguous(lua_State *L) {
  vlua_contiguous(L, 1);
  return 1;
}

static int l_clone(lua_State *L) {
  vlua_tensor *x = vlua_check(L, 1);
  vlua_tensor *y = vlua_new_like(L, &x->t, x->t.dtype);
  vl_error err;
  vlua_check_status(L, "clone", vl_copy(vlua_ctx(L), &y->t, &x->t, &err), &err);
  return 1;
}

static int l_to(lua_State *L) {
  vlua_check(L, 1);
  vlua_cast(L, 1, vlua_checkdtype(L, 2));
  return 1;
}

/* copy_(dst, src): src broadcast to dst's shape, converted to its dtype */
static int l_copy_(lua_State *L) {
  vlua_tensor *d = vlua_check(L, 1);
  vlua_tensor *s = vlua_check(L, 2);
  vl_error err;
  vl_status st;
  if (d->storage == s->storage && !(d->t.data == s->t.data && d->t.dtype == s->t.dtype &&
                                    memcmp(d->t.stride, s->t.stride, sizeof d->t.stride) == 0)) {
    /* possible overlap: go through a temporary */
    vlua_tensor *tmp = vlua_new_like(L, &s->t, s->t.dtype);
    st = vl_copy(vlua_ctx(L), &tmp->t, &s->t, &err);
    if (!st) st = vl_copy(vlua_ctx(L), &d->t, &tmp->t, &err);
  } else {
    st = vl_copy(vlua_ctx(L), &d->t, &s->t, &err);
  }
  vlua_check_status(L, "copy_", st, &err);
  vlua_mark_written(d);
  lua_settop(L, 1);
  return 1;
}

/* free(t): releases the memory of t's storage now; every view of it becomes unusable. */
static int l_free(lua_State *L) {
  vlua_tensor *t = luaL_checkudata(L, 1, VLUA_TENSOR_MT);
  if (t->storage && !t->storage->freed) {
    t->storage->freed = true;
    vl_release_pages(t->storage->data, t->storage->nbytes);
  }
  return 0;
}

static int l_is_freed(lua_State *L) {
  vlua_tensor *t = luaL_checkudata(L, 1, VLUA_TENSOR_MT);
  lua_pushboolean(L, !t->storage || t->storage->freed);
  return 1;
}

/* user value 2: the autograd slot kept by the Lua layer */
static int l_get_slot(lua_State *L) {
  luaL_checkudata(L, 1, VLUA_TENSOR_MT);
  lua_getiuservalue(L, 1, 2);
  return 1;
}

static int l_set_slot(lua_State *L) {
  luaL_checkudata(L, 1, VLUA_TENSOR_MT);
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, 2);
  return 0;
}

void vlua_register_tensor(lua_State *L) {
  static const luaL_Reg regs[] = {
    {"empty", l_empty}, {"full", l_full}, {"fill_", l_fill_}, {"from_table", l_from_table},
    {"arange", l_arange}, {"linspace", l_linspace}, {"eye", l_eye},
    {"shape", l_shape}, {"stride", l_stride}, {"size", l_size}, {"dim", l_dim},
    {"numel", l_numel}, {"dtype", l_dtype}, {"is_contiguous", l_is_contiguous},
    {"is_tensor", l_is_tensor}, {"same_storage", l_same_storage},
    {"storage_nbytes", l_storage_nbytes}, {"version", l_version},
    {"get", l_get}, {"set", l_set}, {"item", l_item}, {"totable", l_totable},
    {"transpose", l_transpose}, {"t", l_t}, {"permute", l_permute}, {"select", l_select},
    {"narrow", l_narrow}, {"unsqueeze", l_unsqueeze}, {"squeeze", l_squeeze},
    {"reshape", l_reshape}, {"view", l_view}, {"expand", l_expand},
    {"alias", l_alias}, {"contiguous", l_contiguous}, {"clone", l_clone}, {"to", l_to}, {"copy_", l_copy_},
    {"free", l_free}, {"is_freed", l_is_freed},
    {"_get_slot", l_get_slot}, {"_set_slot", l_set_slot},
    {NULL, NULL}};
  vlua_setfuncs(L, regs);
}
