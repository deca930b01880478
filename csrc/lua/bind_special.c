/* Special functions and non-uniform samplers for velua.distributions:
 *   betainc(a, b, x)             I_x(a, b)
 *   betainc_grad(a, b, x)        dI/da, dI/db
 *   beta_reparam_grad(a, b, z)   dz/da, dz/db of a Beta sample (implicit reparameterisation)
 *   betaincinv(a, b, p)          the x with I_x(a, b) = p
 * (arguments tensors or numbers, broadcast; the result is f64 if any tensor argument is f64 or
 * none is a tensor, else f32), and the in-place samplers rand_gamma_(out, gen, alpha),
 * rand_poisson_(out, gen, lambda), rand_beta_(out, gen, a, b) (parameters broadcast to out). */
#include "lua_tensor.h"
#include "ops_elementwise.h"
#include "random_gamma.h"
#include "special.h"

static vl_dtype float_dtype_of(lua_State *L, int first, int n) {
  bool any = false;
  for (int i = first; i < first + n; i++) {
    vlua_tensor *t = vlua_test(L, i);
    if (t) {
      any = true;
      if (t->t.dtype == VL_F64) return VL_F64;
    }
  }
  return any ? VL_F32 : VL_F64;
}

/* The argument at arg as a tensor of dtype dt (pushed on the stack when converted). */
static vl_tensor arg_as(lua_State *L, int arg, vl_dtype dt, const char *fname) {
  if (vlua_test(L, arg)) return vlua_cast(L, arg, dt)->t;
  if (lua_type(L, arg) != LUA_TNUMBER)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: tensor or number expected, got %s", fname,
                                          luaL_typename(L, arg)));
  vlua_tensor *t = vlua_new(L, dt, 0, NULL);
  vl_set_f64(&t->t, NULL, lua_tonumber(L, arg));
  return t->t;
}

/* Evaluates ops[0..nout) on the arguments 1..3 and pushes the results. */
static int special3(lua_State *L, const char *fname, const vl_special_op *ops, int nout) {
  lua_settop(L, 3);
  vl_dtype dt = float_dtype_of(L, 1, 3);
  vl_tensor a = arg_as(L, 1, dt, fname), b = arg_as(L, 2, dt, fname), x = arg_as(L, 3, dt, fname);
  int64_t s1[VL_MAX_DIMS], shape[VL_MAX_DIMS];
  int n1, nd;
  vl_error err;
  vlua_check_status(L, fname, vl_broadcast_shape(a.ndim, a.shape, b.ndim, b.shape, &n1, s1, &err),
                    &err);
  vlua_check_status(L, fname, vl_broadcast_shape(n1, s1, x.ndim, x.shape, &nd, shape, &err), &err);
  for (int k = 0; k < nout; k++) {
    vlua_tensor *out = vlua_new(L, dt, nd, shape);
    vlua_check_status(L, fname, vl_special(vlua_ctx(L), ops[k], &out->t, &a, &b, &x, &err), &err);
  }
  return nout;
}

static int l_betainc(lua_State *L) {
  static const vl_special_op ops[] = {VL_BETAINC};
  return special3(L, "betainc", ops, 1);
}

static int l_betainc_grad(lua_State *L) {
  static const vl_special_op ops[] = {VL_BETAINC_DA, VL_BETAINC_DB};
  return special3(L, "betainc_grad", ops, 2);
}

static int l_beta_reparam_grad(lua_State *L) {
  static const vl_special_op ops[] = {VL_BETA_REPARAM_DA, VL_BETA_REPARAM_DB};
  return special3(L, "beta_reparam_grad", ops, 2);
}

static int l_betaincinv(lua_State *L) {
  static const vl_special_op ops[] = {VL_BETAINCINV};
  return special3(L, "betaincinv", ops, 1);
}

static vl_philox *check_gen(lua_State *L, int arg) {
  vl_philox *g = luaL_testudata(L, arg, "velua.Generator");
  if (!g)
    luaL_argerror(L, arg, lua_pushfstring(L, "generator expected, got %s", luaL_typename(L, arg)));
  return g;
}

/* A contiguous float copy of the tensor at arg broadcast to out's shape (pushed). */
static vl_tensor param_like(lua_State *L, int arg, const vl_tensor *out, const char *name) {
  vlua_tensor *p = vlua_check(L, arg);
  vl_error err;
  vl_tensor bp;
  vlua_check_status(L, name, vl_broadcast_to(&p->t, out->ndim, out->shape, &bp, &err), &err);
  vl_dtype pd = vl_dtype_is_float(p->t.dtype) ? p->t.dtype : VL_F64;
  vlua_tensor *pc = vlua_new_like(L, out, pd);
  vlua_check_status(L, name, vl_copy(vlua_ctx(L), &pc->t, &bp, &err), &err);
  return pc->t;
}

typedef enum { S_GAMMA, S_POISSON, S_BETA } sampler;

/* rand_<kind>_(out, gen, p1 [, p2]): fills out in place and returns it */
static int sample(lua_State *L, sampler kind) {
  static const char *names[] = {"gamma", "poisson", "beta"};
  const char *name = names[kind];
  vlua_tensor *out = vlua_check(L, 1);
  vl_philox *g = check_gen(L, 2);
  int nparams = kind == S_BETA ? 2 : 1;
  lua_settop(L, 2 + nparams);
  vl_tensor p1 = param_like(L, 3, &out->t, name);
  vl_tensor p2 = nparams == 2 ? param_like(L, 4, &out->t, name) : p1;
  vl_error err;
  vlua_tensor *target = vl_is_contiguous(&out->t) ? out : vlua_new_like(L, &out->t, out->t.dtype);
  vl_status st;
  switch (kind) {
    case S_POISSON: st = vl_random_poisson(vlua_ctx(L), g, &target->t, &p1, &err); break;
    case S_BETA: st = vl_random_beta(vlua_ctx(L), g, &target->t, &p1, &p2, &err); break;
    default: st = vl_random_gamma(vlua_ctx(L), g, &target->t, &p1, &err); break;
  }
  vlua_check_status(L, name, st, &err);
  if (target != out)
    vlua_check_status(L, name, vl_copy(vlua_ctx(L), &out->t, &target->t, &err), &err);
  vlua_mark_written(out);
  lua_settop(L, 1);
  return 1;
}

static int l_rand_gamma_(lua_State *L) { return sample(L, S_GAMMA); }
static int l_rand_poisson_(lua_State *L) { return sample(L, S_POISSON); }
static int l_rand_beta_(lua_State *L) { return sample(L, S_BETA); }

void vlua_register_special(lua_State *L) {
  static const luaL_Reg regs[] = {
    {"betainc", l_betainc},         {"betainc_grad", l_betainc_grad},
    {"beta_reparam_grad", l_beta_reparam_grad}, {"betaincinv", l_betaincinv},
    {"rand_gamma_", l_rand_gamma_}, {"rand_poisson_", l_rand_poisson_},
    {"rand_beta_", l_rand_beta_},   {NULL, NULL}};
  vlua_setfuncs(L, regs);
}
