/* Elementwise operations from Lua: operand resolution (tensors or Lua scalars), dtype
 * promotion, broadcasting of the output shape, and in-place variants. */
#include <math.h>
#include <string.h>

#include "lua_tensor.h"
#include "ops_elementwise.h"

/* A Lua scalar's kind: it only decides the result dtype when it is of a higher category than
 * the tensor it meets (as in PyTorch: f32 tensor + 2.5 stays f32; i64 tensor + 2.5 -> f32). */
typedef enum { K_NONE, K_BOOL, K_INT, K_FLOAT } scalar_kind;

typedef struct {
  vl_tensor t;          /* the tensor (or a 0-d view of buf) */
  scalar_kind kind;     /* K_NONE for a tensor */
  double f;
  int64_t i;
  union { float f32; double f64; int64_t i64; uint8_t b; } buf;
} operand;

static void get_operand(lua_State *L, int arg, operand *o, const char *fname) {
  vlua_tensor *t = vlua_test(L, arg);
  memset(o, 0, sizeof *o);
  if (t) {
    vlua_check(L, arg);
    o->t = t->t;
    o->kind = K_NONE;
    return;
  }
  switch (lua_type(L, arg)) {
    case LUA_TBOOLEAN:
      o->kind = K_BOOL;
      o->i = lua_toboolean(L, arg);
      o->f = (double)o->i;
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, arg)) {
        o->kind = K_INT;
        o->i = lua_tointeger(L, arg);
        o->f = (double)o->i;
      } else {
        o->kind = K_FLOAT;
        o->f = lua_tonumber(L, arg);
        o->i = (int64_t)o->f;
      }
      break;
    default: {
      const char *got = luaL_typename(L, arg);
      if (luaL_getmetafield(L, arg, "__name") == LUA_TSTRING) got = lua_tostring(L, -1);
      luaL_argerror(L, arg, lua_pushfstring(L, "%s: tensor or number expected, got %s", fname,
                                            got));
    }
  }
}

static scalar_kind dtype_kind(vl_dtype dt) {
  return dt == VL_BOOL ? K_BOOL : dt == VL_I64 ? K_INT : K_FLOAT;
}

static vl_dtype kind_default_dtype(scalar_kind k) {
  return k == K_BOOL ? VL_BOOL : k == K_INT ? VL_I64 : VL_F32;
}

/* Result dtype of combining operands a and b. */
static vl_dtype promote(const operand *a, const operand *b) {
  if (a->kind == K_NONE && b->kind == K_NONE) return vl_dtype_promote(a->t.dtype, b->t.dtype);
  if (a->kind != K_NONE && b->kind != K_NONE) {
    scalar_kind k = a->kind > b->kind ? a->kind : b->kind;
    return kind_default_dtype(k);
  }
  const operand *ten = a->kind == K_NONE ? a : b;
  const operand *sc = a->kind == K_NONE ? b : a;
  if (sc->kind > dtype_kind(ten->t.dtype)) return kind_default_dtype(sc->kind);
  return ten->t.dtype;
}

/* Makes o a view of dtype dt: scalars are written into their buffer as a 0-d tensor; tensors
 * of another dtype are converted into a new tensor pushed on the stack. */
static void materialize(lua_State *L, int arg, operand *o, vl_dtype dt) {
  if (o->kind != K_NONE) {
    vl_tensor *t = &o->t;
    t->ndim = 0;
    t->dtype = dt;
    t->data = (char *)&o->buf;
    switch (dt) {
      case VL_F32: o->buf.f32 = (float)o->f; break;
      case VL_F64: o->buf.f64 = o->f; break;
      case VL_I64: o->buf.i64 = o->kind == K_FLOAT ? (int64_t)o->f : o->i; break;
      case VL_BOOL: o->buf.b = o->f != 0.0; break;
      default: break;
    }
    return;
  }
  if (o->t.dtype != dt) o->t = vlua_cast(L, arg, dt)->t;
}

static int binary(lua_State *L, vl_binary_op op) {
  const char *name = vl_binary_name(op);
  operand a, b;
  lua_settop(L, 2);
  get_operand(L, 1, &a, name);
  get_operand(L, 2, &b, name);
  vl_dtype ct = promote(&a, &b);
  if (vl_binary_needs_float(op) && !vl_dtype_is_float(ct)) ct = VL_F32;
  if (ct == VL_BOOL && (op == VL_SUB || op == VL_DIV || op == VL_POW))
    luaL_error(L, "%s: not defined for bool operands (convert with :to('i64') or :to('f32'))",
               name);
  materialize(L, 1, &a, ct);
  materialize(L, 2, &b, ct);
  int64_t shape[VL_MAX_DIMS];
  int ndim;
  vl_error err;
  vlua_check_status(L, name, vl_broadcast_shape(a.t.ndim, a.t.shape, b.t.ndim, b.t.shape, &ndim,
                                                shape, &err), &err);
  vl_dtype out_dt = vl_binary_is_predicate(op) ? VL_BOOL : ct;
  vlua_tensor *out = vlua_new(L, out_dt, ndim, shape);
  vlua_check_status(L, name, vl_binary(vlua_ctx(L), op, &out->t, &a.t, &b.t, &err), &err);
  return 1;
}

/* In place: a = op(a, b); b is broadcast to a's shape and converted to a's dtype, which must
 * be able to hold the result (a float operand cannot be added into an integer tensor). */
static int binary_inplace(lua_State *L, vl_binary_op op) {
  const char *name = vl_binary_name(op);
  lua_settop(L, 2);
  vlua_tensor *ta = vlua_check(L, 1);
  operand a, b;
  get_operand(L, 1, &a, name);
  get_operand(L, 2, &b, name);
  vl_dtype ct = promote(&a, &b);
  if (vl_binary_needs_float(op) && !vl_dtype_is_float(ct)) ct = VL_F32;
  if (dtype_kind(ct) > dtype_kind(ta->t.dtype))
    luaL_error(L, "%s_: result dtype %s cannot be stored in place in a %s tensor", name,
               vl_dtype_name(ct), vl_dtype_name(ta->t.dtype));
  ct = ta->t.dtype;
  materialize(L, 2, &b, ct);
  vlua_tensor *tb = vlua_test(L, 2);
  if (tb && tb->storage == ta->storage && b.t.data != a.t.data) {
    /* b overlaps a at other positions: read it from a copy */
    vlua_tensor *c = vlua_new_like(L, &b.t, b.t.dtype);
    vl_error e;
    vlua_check_status(L, name, vl_copy(vlua_ctx(L), &c->t, &b.t, &e), &e);
    b.t = c->t;
  }
  vl_error err;
  vl_tensor bb;
  vlua_check_status(L, name, vl_broadcast_to(&b.t, a.t.ndim, a.t.shape, &bb, &err), &err);
  vlua_check_status(L, name, vl_binary(vlua_ctx(L), op, &ta->t, &ta->t, &bb, &err), &err);
  vlua_mark_written(ta);
  lua_settop(L, 1);
  return 1;
}

static int unary(lua_State *L, vl_unary_op op) {
  const char *name = vl_unary_name(op);
  vlua_tensor *x = vlua_check(L, 1);
  lua_settop(L, 1);
  vl_tensor xt = x->t;
  if (vl_unary_needs_float(op) && !vl_dtype_is_float(xt.dtype)) xt = vlua_cast(L, 1, VL_F32)->t;
  if (op == VL_NEG && xt.dtype == VL_BOOL)
    luaL_error(L, "neg: not defined for bool tensors (use logical_not)");
  vlua_tensor *out = vlua_new_like(L, &xt, vl_unary_out_dtype(op, xt.dtype));
  vl_error err;
  vlua_check_status(L, name, vl_unary(vlua_ctx(L), op, &out->t, &xt, &err), &err);
  return 1;
}

#define BINARY_FN(NAME, OP) \
  static int op_##NAME(lua_State *L) { return binary(L, OP); }
#define INPLACE_FN(NAME, OP) \
  static int op_##NAME##_(lua_State *L) { return binary_inplace(L, OP); }
#define UNARY_FN(NAME, OP) \
  static int op_##NAME(lua_State *L) { return unary(L, OP); }

BINARY_FN(add, VL_ADD) BINARY_FN(sub, VL_SUB) BINARY_FN(mul, VL_MUL) BINARY_FN(div, VL_DIV)
BINARY_FN(pow, VL_POW) BINARY_FN(maximum, VL_MAXIMUM) BINARY_FN(minimum, VL_MINIMUM)
BINARY_FN(atan2, VL_ATAN2) BINARY_FN(fmod, VL_FMOD)
BINARY_FN(eq, VL_EQ) BINARY_FN(ne, VL_NE) BINARY_FN(lt, VL_LT) BINARY_FN(le, VL_LE)
BINARY_FN(gt, VL_GT) BINARY_FN(ge, VL_GE)
BINARY_FN(logical_and, VL_AND) BINARY_FN(logical_or, VL_OR) BINARY_FN(logical_xor, VL_XOR)
INPLACE_FN(add, VL_ADD) INPLACE_FN(sub, VL_SUB) INPLACE_FN(mul, VL_MUL) INPLACE_FN(div, VL_DIV)
INPLACE_FN(pow, VL_POW) INPLACE_FN(maximum, VL_MAXIMUM) INPLACE_FN(minimum, VL_MINIMUM)
UNARY_FN(neg, VL_NEG) UNARY_FN(exp, VL_EXP) UNARY_FN(log, VL_LOG) UNARY_FN(log1p, VL_LOG1P)
UNARY_FN(expm1, VL_EXPM1) UNARY_FN(sqrt, VL_SQRT) UNARY_FN(abs, VL_ABS) UNARY_FN(sign, VL_SIGN)
UNARY_FN(relu, VL_RELU) UNARY_FN(sigmoid, VL_SIGMOID) UNARY_FN(tanh, VL_TANH)
UNARY_FN(softplus, VL_SOFTPLUS) UNARY_FN(lgamma, VL_LGAMMA) UNARY_FN(digamma, VL_DIGAMMA)
UNARY_FN(sin, VL_SIN) UNARY_FN(cos, VL_COS) UNARY_FN(floor, VL_FLOOR) UNARY_FN(ceil, VL_CEIL)
UNARY_FN(round, VL_ROUND) UNARY_FN(reciprocal, VL_RECIPROCAL) UNARY_FN(square, VL_SQUARE)
UNARY_FN(logical_not, VL_LOGICAL_NOT) UNARY_FN(isnan, VL_ISNAN) UNARY_FN(trigamma, VL_TRIGAMMA)

static double opt_bound(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return NAN;
  double v = luaL_checknumber(L, arg);
  if (isnan(v)) luaL_argerror(L, arg, "clamp: bound is NaN");
  return v;
}

/* clamp(x, lo, hi): either bound may be nil */
static int l_clamp(lua_State *L) {
  vlua_tensor *x = vlua_check(L, 1);
  double lo = opt_bound(L, 2), hi = opt_bound(L, 3);
  if (isnan(lo) && isnan(hi)) luaL_error(L, "clamp: at least one of min and max is required");
  if (!isnan(lo) && !isnan(hi) && lo > hi)
    luaL_error(L, "clamp: min %f is greater than max %f", lo, hi);
  lua_settop(L, 1);
  vl_tensor xt = x->t;
  if (xt.dtype == VL_BOOL) xt = vlua_cast(L, 1, VL_I64)->t;
  if (xt.dtype == VL_I64 && ((!isnan(lo) && lo != floor(lo)) || (!isnan(hi) && hi != floor(hi))))
    xt = vlua_cast(L, 1, VL_F32)->t;
  vlua_tensor *out = vlua_new_like(L, &xt, xt.dtype);
  vl_error err;
  vlua_check_status(L, "clamp", vl_clamp(vlua_ctx(L), &out->t, &xt, lo, hi, &err), &err);
  return 1;
}

static int l_clamp_(lua_State *L) {
  vlua_tensor *x = vlua_check(L, 1);
  double lo = opt_bound(L, 2), hi = opt_bound(L, 3);
  if (x->t.dtype == VL_BOOL) luaL_argerror(L, 1, "clamp_: not defined for bool tensors");
  vl_error err;
  vlua_check_status(L, "clamp_", vl_clamp(vlua_ctx(L), &x->t, &x->t, lo, hi, &err), &err);
  vlua_mark_written(x);
  lua_settop(L, 1);
  return 1;
}

/* where(cond, a, b): a and b tensors or scalars */
static int l_where(lua_State *L) {
  lua_settop(L, 3);
  vlua_tensor *c = vlua_check(L, 1);
  if (c->t.dtype != VL_BOOL)
    luaL_argerror(L, 1, lua_pushfstring(L, "where: condition must be a bool tensor, got %s",
                                        vl_dtype_name(c->t.dtype)));
  operand a, b;
  get_operand(L, 2, &a, "where");
  get_operand(L, 3, &b, "where");
  vl_dtype ct = promote(&a, &b);
  materialize(L, 2, &a, ct);
  materialize(L, 3, &b, ct);
  int64_t s1[VL_MAX_DIMS], shape[VL_MAX_DIMS];
  int n1, ndim;
  vl_error err;
  vlua_check_status(L, "where", vl_broadcast_shape(a.t.ndim, a.t.shape, b.t.ndim, b.t.shape, &n1,
                                                   s1, &err), &err);
  vlua_check_status(L, "where", vl_broadcast_shape(c->t.ndim, c->t.shape, n1, s1, &ndim, shape,
                                                   &err), &err);
  vlua_tensor *out = vlua_new(L, ct, ndim, shape);
  vlua_check_status(L, "where", vl_where(vlua_ctx(L), &out->t, &c->t, &a.t, &b.t, &err), &err);
  return 1;
}

/* broadcast_shapes(a, b): the shape table two tensors broadcast to */
static int l_broadcast_shapes(lua_State *L) {
  vlua_tensor *a = vlua_check(L, 1), *b = vlua_check(L, 2);
  int64_t shape[VL_MAX_DIMS];
  int ndim;
  vl_error err;
  vlua_check_status(L, "broadcast_shapes", vl_broadcast_shape(a->t.ndim, a->t.shape, b->t.ndim,
                                                              b->t.shape, &ndim, shape, &err), &err);
  vlua_push_int_array(L, ndim, shape);
  return 1;
}

void vlua_register_ops(lua_State *L) {
  static const luaL_Reg regs[] = {
    {"add", op_add}, {"sub", op_sub}, {"mul", op_mul}, {"div", op_div}, {"pow", op_pow},
    {"maximum", op_maximum}, {"minimum", op_minimum}, {"atan2", op_atan2}, {"fmod", op_fmod},
    {"eq", op_eq}, {"ne", op_ne}, {"lt", op_lt}, {"le", op_le}, {"gt", op_gt}, {"ge", op_ge},
    {"logical_and", op_logical_and}, {"logical_or", op_logical_or},
    {"logical_xor", op_logical_xor},
    {"add_", op_add_}, {"sub_", op_sub_}, {"mul_", op_mul_}, {"div_", op_div_}, {"pow_", op_pow_},
    {"maximum_", op_maximum_}, {"minimum_", op_minimum_},
    {"neg", op_neg}, {"exp", op_exp}, {"log", op_log}, {"log1p", op_log1p}, {"expm1", op_expm1},
    {"sqrt", op_sqrt}, {"abs", op_abs}, {"sign", op_sign}, {"relu", op_relu},
    {"sigmoid", op_sigmoid}, {"tanh", op_tanh}, {"softplus", op_softplus}, {"lgamma", op_lgamma},
    {"digamma", op_digamma}, {"sin", op_sin}, {"cos", op_cos}, {"floor", op_floor},
    {"ceil", op_ceil}, {"round", op_round}, {"reciprocal", op_reciprocal}, {"square", op_square},
    {"logical_not", op_logical_not}, {"isnan", op_isnan}, {"trigamma", op_trigamma},
    {"clamp", l_clamp}, {"clamp_", l_clamp_}, {"where", l_where},
    {"broadcast_shapes", l_broadcast_shapes},
    {NULL, NULL}};
  vlua_setfuncs(L, regs);
}
