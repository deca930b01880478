/* DeepVelo kernels from Lua (used by lua/velua/tl/deepvelo.lua). Candidate indices are
 * 1-based here and converted to 0-based before the core sees them. */
#include "deepvelo_kernels.h"
#include "lua_tensor.h"

/* the userdata type of lua/velua/random.lua's generators (csrc/lua/bind_random.c) */
#define GENERATOR_MT "velua.Generator"

static vlua_tensor *check_tensor(lua_State *L, const char *fname, int arg, const char *name) {
  if (!vlua_test(L, arg))
    luaL_error(L, "%s: %s must be a tensor, got %s", fname, name, luaL_typename(L, arg));
  return vlua_check(L, arg);
}

static vlua_tensor *check_float_matrix(lua_State *L, const char *fname, int arg,
                                       const char *name) {
  vlua_tensor *t = check_tensor(L, fname, arg, name);
  if (t->t.ndim != 2 || !vl_dtype_is_float(t->t.dtype)) {
    char s[64];
    luaL_error(L, "%s: %s must be a 2-d f32 or f64 tensor, got %s %s", fname, name,
               vl_dtype_name(t->t.dtype), vl_shape_str(t->t.ndim, t->t.shape, s, sizeof s));
  }
  return t;
}

/* The 1-based i64 index matrix at arg with `rows` rows as a pushed 0-based copy. */
static vlua_tensor *zero_based_idx(lua_State *L, const char *fname, int arg, int64_t rows) {
  vlua_tensor *idx = check_tensor(L, fname, arg, "idx");
  if (idx->t.ndim != 2 || idx->t.dtype != VL_I64 || idx->t.shape[0] != rows) {
    char s[64];
    luaL_error(L, "%s: idx must be a 2-d i64 tensor with %I rows, got %s %s", fname,
               (lua_Integer)rows, vl_dtype_name(idx->t.dtype),
               vl_shape_str(idx->t.ndim, idx->t.shape, s, sizeof s));
  }
  int64_t n = idx->t.shape[0], k = idx->t.shape[1];
  int64_t shape[2] = {n, k};
  vlua_tensor *out = vlua_new(L, VL_I64, 2, shape);
  vlua_tensor *src = vlua_contiguous(L, arg);
  const int64_t *s = (const int64_t *)src->t.data;
  int64_t *d = (int64_t *)out->t.data;
  for (int64_t e = 0; e < n * k; e++) d[e] = s[e] - 1;
  lua_pop(L, 1);
  return out;
}

/* dv_candidate_means(v [n, D], current [n, D], candidates [N, D], idx [n, k] (i64, 1-based),
 *                    n_cos [, want_counts]) -> plus [n, D], minus [n, D] [, counts [n, 2] i64] */
static int l_dv_candidate_means(lua_State *L) {
  const char *fname = "dv_candidate_means";
  vlua_tensor *v = check_float_matrix(L, fname, 1, "v");
  vlua_tensor *cur = check_tensor(L, fname, 2, "current");
  vlua_tensor *cand = check_tensor(L, fname, 3, "candidates");
  int64_t n_cos = vlua_checkint_range(L, 5, "n_cos", 1, v->t.shape[1]);
  bool want_counts = lua_toboolean(L, 6);
  lua_settop(L, 6);
  vlua_tensor *ix0 = zero_based_idx(L, fname, 4, v->t.shape[0]); /* 7 */
  vlua_tensor *plus = vlua_new_like(L, &v->t, v->t.dtype);        /* 8 */
  vlua_tensor *minus = vlua_new_like(L, &v->t, v->t.dtype);       /* 9 */
  vlua_tensor *counts = NULL;
  if (want_counts) {
    int64_t cshape[2] = {v->t.shape[0], 2};
    counts = vlua_new(L, VL_I64, 2, cshape); /* 10 */
  }
  vl_error err;
  vlua_check_status(L, fname,
                    vl_dv_candidate_means(vlua_ctx(L), &v->t, &cur->t, &cand->t, &ix0->t, n_cos,
                                          &plus->t, &minus->t, counts ? &counts->t : NULL, &err),
                    &err);
  return want_counts ? 3 : 2;
}

/* dv_mle_forward(v, current, candidates, idx (1-based), n_cos [, want_counts [, into]])
 * -> ediff [n, D] (E+ - E-; written into `into` when given), sum (v - E+)^2,
 *    sum (v + E-)^2 [, counts [n, 2]] */
static int l_dv_mle_forward(lua_State *L) {
  const char *fname = "dv_mle_forward";
  vlua_tensor *v = check_float_matrix(L, fname, 1, "v");
  vlua_tensor *cur = check_tensor(L, fname, 2, "current");
  vlua_tensor *cand = check_tensor(L, fname, 3, "candidates");
  int64_t n_cos = vlua_checkint_range(L, 5, "n_cos", 1, v->t.shape[1]);
  bool want_counts = lua_toboolean(L, 6);
  vlua_tensor *into = lua_isnoneornil(L, 7) ? NULL : check_tensor(L, fname, 7, "into");
  lua_settop(L, 7);
  vlua_tensor *ix0 = zero_based_idx(L, fname, 4, v->t.shape[0]); /* 8 */
  vlua_tensor *ediff = into;
  if (into) lua_pushvalue(L, 7); /* 9: the output */
  else ediff = vlua_new_like(L, &v->t, v->t.dtype); /* 9 */
  vlua_tensor *counts = NULL;
  if (want_counts) {
    int64_t cshape[2] = {v->t.shape[0], 2};
    counts = vlua_new(L, VL_I64, 2, cshape); /* 10 */
  }
  double sp = 0, sm = 0;
  vl_error err;
  vlua_check_status(L, fname,
                    vl_dv_mle_forward(vlua_ctx(L), &v->t, &cur->t, &cand->t, &ix0->t, n_cos,
                                      &ediff->t, counts ? &counts->t : NULL, &sp, &sm, &err),
                    &err);
  if (into) vlua_mark_written(into);
  lua_pushvalue(L, 9);
  lua_pushnumber(L, sp);
  lua_pushnumber(L, sm);
  if (want_counts) lua_pushvalue(L, 10);
  return want_counts ? 4 : 3;
}

/* dv_mle_backward(v, ediff, alpha) -> alpha (2 v - ediff) */
static int l_dv_mle_backward(lua_State *L) {
  const char *fname = "dv_mle_backward";
  vlua_tensor *v = check_float_matrix(L, fname, 1, "v");
  vlua_tensor *e = check_tensor(L, fname, 2, "ediff");
  double alpha = luaL_checknumber(L, 3);
  vlua_tensor *out = vlua_new_like(L, &v->t, v->t.dtype);
  vl_error err;
  vlua_check_status(L, fname, vl_dv_mle_backward(vlua_ctx(L), &v->t, &e->t, alpha, &out->t, &err),
                    &err);
  return 1;
}

/* dv_direction_forward(x [n, G], u, s) -> r [G, 2] (f64: corr with u, with s), stats */
static int l_dv_direction_forward(lua_State *L) {
  const char *fname = "dv_direction_forward";
  vlua_tensor *x = check_float_matrix(L, fname, 1, "x");
  vlua_tensor *u = check_tensor(L, fname, 2, "u");
  vlua_tensor *s = check_tensor(L, fname, 3, "s");
  lua_settop(L, 3);
  int64_t G = x->t.shape[1];
  int64_t rshape[2] = {G, 2}, sshape[3] = {G, 2, VL_DV_NSTAT};
  vlua_tensor *r = vlua_new(L, VL_F64, 2, rshape);
  vlua_tensor *st = vlua_new(L, VL_F64, 3, sshape);
  vl_error err;
  vlua_check_status(L, fname,
                    vl_dv_direction_forward(vlua_ctx(L), &x->t, &u->t, &s->t, &r->t, &st->t, &err),
                    &err);
  return 2;
}

/* dv_direction_backward(x, u, s, stats, w [G, 2] f64 [, into]) -> grad [n, G]; with `into`
 * (a tensor [n, G] with unit stride along rows) the gradient is added to it in place and
 * `into` is returned */
static int l_dv_direction_backward(lua_State *L) {
  const char *fname = "dv_direction_backward";
  vlua_tensor *x = check_float_matrix(L, fname, 1, "x");
  vlua_tensor *u = check_tensor(L, fname, 2, "u");
  vlua_tensor *s = check_tensor(L, fname, 3, "s");
  vlua_tensor *st = check_tensor(L, fname, 4, "stats");
  vlua_tensor *w = check_tensor(L, fname, 5, "w");
  vlua_tensor *into = lua_isnoneornil(L, 6) ? NULL : check_tensor(L, fname, 6, "into");
  lua_settop(L, 6);
  vlua_tensor *g = into ? into : vlua_new_like(L, &x->t, x->t.dtype);
  vl_error err;
  vlua_check_status(L, fname,
                    vl_dv_direction_backward(vlua_ctx(L), &x->t, &u->t, &s->t, &st->t, &w->t,
                                             &g->t, into != NULL, &err),
                    &err);
  if (into) {
    vlua_mark_written(into);
    lua_pushvalue(L, 6);
  }
  return 1;
}

/* dv_head_forward(h, u, s, pred_unspliced) -> v */
static int l_dv_head_forward(lua_State *L) {
  const char *fname = "dv_head_forward";
  vlua_tensor *h = check_float_matrix(L, fname, 1, "h");
  vlua_tensor *u = check_float_matrix(L, fname, 2, "u");
  vlua_tensor *s = check_tensor(L, fname, 3, "s");
  bool pu = lua_toboolean(L, 4);
  lua_settop(L, 4);
  int64_t shape[2] = {u->t.shape[0], (pu ? 2 : 1) * u->t.shape[1]};
  vlua_tensor *out = vlua_new(L, h->t.dtype, 2, shape);
  vl_error err;
  vlua_check_status(L, fname, vl_dv_head_forward(vlua_ctx(L), &h->t, &u->t, &s->t, pu, &out->t,
                                                 &err), &err);
  return 1;
}

/* dv_head_dropout_forward(h (contiguous), u, s, pred_unspliced, p, generator) -> v, keep */
static int l_dv_head_dropout_forward(lua_State *L) {
  const char *fname = "dv_head_dropout_forward";
  vlua_tensor *h = check_float_matrix(L, fname, 1, "h");
  vlua_tensor *u = check_float_matrix(L, fname, 2, "u");
  vlua_tensor *s = check_tensor(L, fname, 3, "s");
  bool pu = lua_toboolean(L, 4);
  double p = luaL_checknumber(L, 5);
  vl_philox *gen = luaL_testudata(L, 6, GENERATOR_MT);
  if (!gen) luaL_argerror(L, 6, "generator expected");
  lua_settop(L, 6);
  int64_t shape[2] = {u->t.shape[0], (pu ? 2 : 1) * u->t.shape[1]};
  vlua_tensor *out = vlua_new(L, h->t.dtype, 2, shape);
  vlua_tensor *keep = vlua_new_like(L, &h->t, VL_BOOL);
  vl_error err;
  vlua_check_status(L, fname, vl_dv_head_dropout_forward(vlua_ctx(L), gen, &h->t, &u->t, &s->t, pu,
                                                         p, &out->t, &keep->t, &err), &err);
  return 2;
}

/* dv_head_backward(g, u, s, pred_unspliced [, keep, p]) -> grad_h */
static int l_dv_head_backward(lua_State *L) {
  const char *fname = "dv_head_backward";
  vlua_tensor *g = check_float_matrix(L, fname, 1, "grad");
  vlua_tensor *u = check_float_matrix(L, fname, 2, "u");
  vlua_tensor *s = check_tensor(L, fname, 3, "s");
  bool pu = lua_toboolean(L, 4);
  vlua_tensor *keep = lua_isnoneornil(L, 5) ? NULL : check_tensor(L, fname, 5, "keep");
  double p = keep ? luaL_checknumber(L, 6) : 0;
  lua_settop(L, 6);
  int64_t shape[2] = {u->t.shape[0], (pu ? 3 : 2) * u->t.shape[1]};
  vlua_tensor *out = vlua_new(L, g->t.dtype, 2, shape);
  vl_error err;
  vlua_check_status(L, fname, vl_dv_head_backward(vlua_ctx(L), &g->t, &u->t, &s->t, pu,
                                                  keep ? &keep->t : NULL, p, &out->t, &err), &err);
  return 1;
}

void vlua_register_deepvelo(lua_State *L) {
  static const luaL_Reg regs[] = {
    {"dv_candidate_means", l_dv_candidate_means},
    {"dv_mle_forward", l_dv_mle_forward},
    {"dv_mle_backward", l_dv_mle_backward},
    {"dv_direction_forward", l_dv_direction_forward},
    {"dv_direction_backward", l_dv_direction_backward},
    {"dv_head_forward", l_dv_head_forward},
    {"dv_head_dropout_forward", l_dv_head_dropout_forward},
    {"dv_head_backward", l_dv_head_backward},
    {NULL, NULL}};
  vlua_setfuncs(L, regs);
}
