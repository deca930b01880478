/* RNA velocity kernels for lua/velua/tl: per-gene fits, the velocity graph, transition
 * matrices, embedding projection and scores. CSR matrices are passed as their components
 * (indptr, indices, values, nrows, ncols; 0-based as stored in files); neighbour lists are
 * [n, k] i64 tensors, 1-based on the Lua side with 0 for "none". */
#include <math.h>
#include <string.h>

#include "bind_args.h"
#include "neighbor_lists.h"
#include "transition.h"
#include "velocity_fit.h"
#include "velocity_graph.h"

/* ---------- argument helpers ---------- */

static vlua_tensor *arg_tensor(lua_State *L, const char *fname, int arg, const char *name) {
  if (!vlua_test(L, arg))
    luaL_error(L, "%s: %s must be a tensor, got %s", fname, name, luaL_typename(L, arg));
  return vlua_check(L, arg);
}

/* A tensor at arg of the given rank and dtype, replaced on the stack by a contiguous copy
 * when needed. dtype VL_F32/VL_F64/VL_I64; rank 1 or 2. */
static vlua_tensor *arg_array(lua_State *L, const char *fname, int arg, const char *name,
                              int ndim, vl_dtype dtype) {
  vlua_tensor *t = arg_tensor(L, fname, arg, name);
  if (t->t.ndim != ndim || t->t.dtype != dtype) {
    char s[64];
    luaL_error(L, "%s: %s must be a %d-d %s tensor, got %s %s", fname, name, ndim,
               vl_dtype_name(dtype), vl_dtype_name(t->t.dtype),
               vl_shape_str(t->t.ndim, t->t.shape, s, sizeof s));
  }
  if (!vl_is_contiguous(&t->t)) {
    t = vlua_contiguous(L, arg);
    lua_replace(L, arg);
  }
  return t;
}

static vlua_tensor *new_vec(lua_State *L, vl_dtype dt, int64_t n) {
  return vlua_new(L, dt, 1, &n);
}

/* Neighbour lists [n, k] 1-based at arg -> a new 0-based copy pushed on the stack. */
static const int64_t *arg_neighbors(lua_State *L, const char *fname, int arg, int64_t n,
                                    int64_t *k) {
  vlua_tensor *t = arg_array(L, fname, arg, "neighbors", 2, VL_I64);
  if (t->t.shape[0] != n)
    luaL_error(L, "%s: neighbors has %I rows, expected %I", fname, (lua_Integer)t->t.shape[0],
               (lua_Integer)n);
  *k = t->t.shape[1];
  vlua_tensor *z = vlua_new_like(L, &t->t, VL_I64);
  const int64_t *s = (const int64_t *)t->t.data;
  int64_t *d = (int64_t *)z->t.data, m = vl_numel(&t->t);
  for (int64_t p = 0; p < m; p++) {
    if (s[p] < 0 || s[p] > n)
      luaL_error(L, "%s: neighbour index %I at row %I is out of range 0..%I", fname,
                 (lua_Integer)s[p], (lua_Integer)(p / *k + 1), (lua_Integer)n);
    d[p] = s[p] - 1;
  }
  return d;
}

/* ---------- neighbour lists ---------- */

/* neighbor_lists(ip, ix, v, nr, nc [, k]) -> [n, k] 1-based (0 = none); k defaults to the
 * smallest row count. */
static int l_neighbor_lists(lua_State *L) {
  vl_csr d;
  vlua_arg_csr(L, "neighbor_lists", 1, &d);
  int64_t k = lua_isnoneornil(L, 6) ? vl_min_row_count(&d) : vlua_arg_size(L, "neighbor_lists", 6, "k");
  int64_t shape[2] = {d.nrows, k};
  vlua_tensor *out = vlua_new(L, VL_I64, 2, shape);
  vl_error err;
  vlua_check_status(L, "neighbor_lists", vl_neighbor_lists(&d, k, (int64_t *)out->t.data, &err), &err);
  int64_t *p = (int64_t *)out->t.data;
  for (int64_t q = 0; q < d.nrows * k; q++) p[q] += 1;
  return 1;
}

/* ---------- fits ---------- */

static vlua_tensor *arg_matrix_f32(lua_State *L, const char *fname, int arg, const char *name,
                                   int64_t n, int64_t g) {
  vlua_tensor *t = arg_array(L, fname, arg, name, 2, VL_F32);
  if (n >= 0 && (t->t.shape[0] != n || t->t.shape[1] != g))
    luaL_error(L, "%s: %s has shape [%I, %I], expected [%I, %I]", fname, name,
               (lua_Integer)t->t.shape[0], (lua_Integer)t->t.shape[1], (lua_Integer)n,
               (lua_Integer)g);
  return t;
}

/* velocity_fit_deterministic(Ms, Mu, perc) -> gamma, r2, res_std (f64 [g]), expressed (bool) */
static int l_fit_det(lua_State *L) {
  const char *fn = "velocity_fit_deterministic";
  vlua_tensor *s = arg_matrix_f32(L, fn, 1, "Ms", -1, -1);
  int64_t n = s->t.shape[0], g = s->t.shape[1];
  vlua_tensor *u = arg_matrix_f32(L, fn, 2, "Mu", n, g);
  double perc = luaL_checknumber(L, 3);
  lua_settop(L, 3);
  vlua_tensor *gam = new_vec(L, VL_F64, g), *r2 = new_vec(L, VL_F64, g),
              *rs = new_vec(L, VL_F64, g), *ex = new_vec(L, VL_BOOL, g);
  vl_velocity_det_out out = {(double *)gam->t.data, (double *)r2->t.data, (double *)rs->t.data,
                             (uint8_t *)ex->t.data};
  vl_error err;
  vlua_check_status(L, fn, vl_velocity_fit_deterministic(vlua_ctx(L), n, g, (const float *)s->t.data,
                                                         (const float *)u->t.data, perc, &out, &err), &err);
  return 4;
}

/* velocity_fit_stochastic(Ms, Mu, Mss, Mus, gamma_det, perc) -> gamma f64 [g] */
static int l_fit_sto(lua_State *L) {
  const char *fn = "velocity_fit_stochastic";
  vlua_tensor *s = arg_matrix_f32(L, fn, 1, "Ms", -1, -1);
  int64_t n = s->t.shape[0], g = s->t.shape[1];
  vlua_tensor *u = arg_matrix_f32(L, fn, 2, "Mu", n, g);
  vlua_tensor *ss = arg_matrix_f32(L, fn, 3, "Mss", n, g);
  vlua_tensor *us = arg_matrix_f32(L, fn, 4, "Mus", n, g);
  vlua_tensor *gd = arg_array(L, fn, 5, "gamma_det", 1, VL_F64);
  if (gd->t.shape[0] != g)
    luaL_error(L, "%s: gamma_det has %I entries, expected %I", fn, (lua_Integer)gd->t.shape[0],
               (lua_Integer)g);
  double perc = luaL_checknumber(L, 6);
  lua_settop(L, 6);
  vlua_tensor *gam = new_vec(L, VL_F64, g);
  vl_error err;
  vlua_check_status(L, fn, vl_velocity_fit_stochastic(vlua_ctx(L), n, g, (const float *)s->t.data,
                                                      (const float *)u->t.data, (const float *)ss->t.data,
                                                      (const float *)us->t.data, (const double *)gd->t.data,
                                                      perc, (double *)gam->t.data, &err), &err);
  return 1;
}

/* percentile_f32(x, q): numpy.percentile of a float32 vector (linear), as a number */
static int l_percentile_f32(lua_State *L) {
  vlua_tensor *x = arg_tensor(L, "percentile_f32", 1, "x");
  double q = luaL_checknumber(L, 2);
  if (!(q >= 0 && q <= 100)) luaL_error(L, "percentile_f32: q must be in [0, 100], got %f", q);
  int64_t n = vl_numel(&x->t);
  if (n == 0) luaL_error(L, "percentile_f32: x is empty");
  lua_settop(L, 1);
  vlua_tensor *c = vlua_cast(L, 1, VL_F32);
  vlua_contiguous(L, -1);
  vlua_tensor *w = vlua_new_like(L, &c->t, VL_F32);
  vlua_tensor *src = vlua_check(L, -2);
  memcpy(w->t.data, src->t.data, (size_t)n * sizeof(float));
  lua_pushnumber(L, (lua_Number)vl_percentile_f32((float *)w->t.data, n, q));
  return 1;
}

/* ---------- velocity graph ---------- */

/* velocity_graph(X, V, nbr, depth, sqrt_transform)
 *   -> pos_indptr, pos_indices, pos_values, neg_indptr, neg_indices, neg_values
 * X, V: f32 [n, g] (V transformed and centred); nbr [n, k] 1-based. */
static int l_velocity_graph(lua_State *L) {
  const char *fn = "velocity_graph";
  vlua_tensor *X = arg_matrix_f32(L, fn, 1, "X", -1, -1);
  int64_t n = X->t.shape[0], g = X->t.shape[1], k;
  vlua_tensor *V = arg_matrix_f32(L, fn, 2, "V", n, g);
  int depth = (int)vlua_checkint_range(L, 4, "depth", 1, 8);
  int sq = lua_toboolean(L, 5);
  lua_settop(L, 5);
  const int64_t *nbr = arg_neighbors(L, fn, 3, n, &k); /* 6 */
  vl_ctx *ctx = vlua_ctx(L);
  vl_error err;
  vlua_tensor *ip = new_vec(L, VL_I64, n + 1); /* 7 */
  int64_t *indptr = (int64_t *)ip->t.data;
  vlua_check_status(L, fn, vl_recursive_neighbors(ctx, n, k, nbr, depth, indptr + 1, NULL,
                                                  NULL, &err), &err);
  indptr[0] = 0;
  for (int64_t i = 0; i < n; i++) indptr[i + 1] += indptr[i];
  int64_t nnz = indptr[n];
  vlua_tensor *ix = new_vec(L, VL_I64, nnz); /* 8 */
  vlua_check_status(L, fn, vl_recursive_neighbors(ctx, n, k, nbr, depth, NULL, indptr,
                                                  (int64_t *)ix->t.data, &err), &err);
  vlua_tensor *vals = new_vec(L, VL_F32, nnz); /* 9 */
  vlua_check_status(L, fn, vl_velocity_correlations(ctx, n, g, (const float *)X->t.data,
                                                    (const float *)V->t.data, sq, indptr,
                                                    (int64_t *)ix->t.data, (float *)vals->t.data, &err),
                    &err);
  const float *va = (const float *)vals->t.data;
  const int64_t *ia = (const int64_t *)ix->t.data;
  int64_t npos = 0, nneg = 0;
  for (int64_t p = 0; p < nnz; p++) {
    if (va[p] > 0) npos++;
    else if (va[p] < 0) nneg++;
  }
  vlua_tensor *pip = new_vec(L, VL_I64, n + 1), *pix = new_vec(L, VL_I64, npos),
              *pv = new_vec(L, VL_F32, npos);
  vlua_tensor *nip = new_vec(L, VL_I64, n + 1), *nix = new_vec(L, VL_I64, nneg),
              *nv = new_vec(L, VL_F32, nneg);
  int64_t *pp = (int64_t *)pip->t.data, *np = (int64_t *)nip->t.data;
  int64_t *pi = (int64_t *)pix->t.data, *ni = (int64_t *)nix->t.data;
  float *pvv = (float *)pv->t.data, *nvv = (float *)nv->t.data;
  int64_t a = 0, b = 0;
  pp[0] = np[0] = 0;
  for (int64_t i = 0; i < n; i++) {
    for (int64_t p = indptr[i]; p < indptr[i + 1]; p++) {
      float x = va[p];
      if (x > 0) { pi[a] = ia[p]; pvv[a++] = x > 1 ? 1 : x; }
      else if (x < 0) { ni[b] = ia[p]; nvv[b++] = x < -1 ? -1 : x; }
    }
    pp[i + 1] = a;
    np[i + 1] = b;
  }
  return 6;
}

/* velocity_confidence(V f32 [n, g] centred, nbr [n, k]) -> R f64 [n] */
static int l_velocity_confidence(lua_State *L) {
  const char *fn = "velocity_confidence";
  vlua_tensor *V = arg_matrix_f32(L, fn, 1, "V", -1, -1);
  int64_t n = V->t.shape[0], g = V->t.shape[1], k;
  lua_settop(L, 2);
  const int64_t *nbr = arg_neighbors(L, fn, 2, n, &k);
  vlua_tensor *R = new_vec(L, VL_F64, n);
  vl_error err;
  vlua_check_status(L, fn, vl_velocity_confidence(vlua_ctx(L), n, g, (const float *)V->t.data, nbr, k,
                                                  (double *)R->t.data, &err), &err);
  return 1;
}

/* ---------- transition matrices ---------- */

/* transition_kernel(pos(5), neg(5) or 5 nils, self_prob f32 [n] or nil, scale, negcos)
 *   -> indptr, indices, values (f32), unnormalised */
static int l_transition_kernel(lua_State *L) {
  const char *fn = "transition_kernel";
  vl_csr pos, neg;
  vlua_arg_csr(L, fn, 1, &pos);
  int has_neg = !lua_isnil(L, 6);
  if (has_neg) vlua_arg_csr(L, fn, 6, &neg);
  const float *self = NULL;
  if (!lua_isnil(L, 11)) {
    vlua_tensor *s = arg_array(L, fn, 11, "self_prob", 1, VL_F32);
    if (s->t.shape[0] != pos.nrows)
      luaL_error(L, "%s: self_prob has %I entries, expected %I", fn, (lua_Integer)s->t.shape[0],
                 (lua_Integer)pos.nrows);
    self = (const float *)s->t.data;
  }
  double scale = luaL_checknumber(L, 12);
  int negcos = lua_toboolean(L, 13);
  lua_settop(L, 13);
  int64_t n = pos.nrows;
  vlua_tensor *ip = new_vec(L, VL_I64, n + 1);
  int64_t *indptr = (int64_t *)ip->t.data;
  vl_error err;
  vlua_check_status(L, fn, vl_transition_kernel(&pos, has_neg ? &neg : NULL, self, scale, negcos,
                                                indptr + 1, NULL, NULL, NULL, &err), &err);
  indptr[0] = 0;
  for (int64_t i = 0; i < n; i++) indptr[i + 1] += indptr[i];
  vlua_tensor *ix = new_vec(L, VL_I64, indptr[n]);
  vlua_tensor *v = new_vec(L, VL_F32, indptr[n]);
  vlua_check_status(L, fn, vl_transition_kernel(&pos, has_neg ? &neg : NULL, self, scale, negcos,
                                                NULL, indptr, (int64_t *)ix->t.data,
                                                (float *)v->t.data, &err), &err);
  return 3;
}

/* csr_normalize_abs_rows(indptr, values f32) -> new values with each row's |sum| = 1 */
static int l_normalize_abs_rows(lua_State *L) {
  const char *fn = "csr_normalize_abs_rows";
  vlua_tensor *ip = arg_array(L, fn, 1, "indptr", 1, VL_I64);
  vlua_tensor *v = arg_array(L, fn, 2, "values", 1, VL_F32);
  int64_t n = ip->t.shape[0] - 1;
  const int64_t *indptr = (const int64_t *)ip->t.data;
  if (n < 0 || indptr[n] != v->t.shape[0])
    luaL_error(L, "%s: indptr does not match values", fn);
  vlua_tensor *out = new_vec(L, VL_F32, v->t.shape[0]);
  memcpy(out->t.data, v->t.data, (size_t)v->t.shape[0] * sizeof(float));
  vl_error err;
  vlua_check_status(L, fn, vl_csr_normalize_abs_rows(vlua_ctx(L), n, indptr, (float *)out->t.data, &err),
                    &err);
  return 1;
}

/* velocity_embedding(T(5), X f64 [n, d], retain_scale) -> V f64 [n, d] */
static int l_velocity_embedding(lua_State *L) {
  const char *fn = "velocity_embedding";
  vl_csr T;
  vlua_arg_csr(L, fn, 1, &T);
  vlua_tensor *X = arg_array(L, fn, 6, "X", 2, VL_F64);
  if (X->t.shape[0] != T.nrows)
    luaL_error(L, "%s: the embedding has %I rows, expected %I (one per cell)", fn,
               (lua_Integer)X->t.shape[0], (lua_Integer)T.nrows);
  int retain = lua_toboolean(L, 7);
  lua_settop(L, 7);
  vlua_tensor *V = vlua_new_like(L, &X->t, VL_F64);
  vl_error err;
  vlua_check_status(L, fn, vl_velocity_embedding(vlua_ctx(L), &T, X->t.shape[1], (const double *)X->t.data,
                                                 retain, (double *)V->t.data, &err), &err);
  return 1;
}

/* csr_row_correlation(a(5), b(5)) -> r f64 [n] */
static int l_row_correlation(lua_State *L) {
  vl_csr a, b;
  vlua_arg_csr(L, "csr_row_correlation", 1, &a);
  vlua_arg_csr(L, "csr_row_correlation", 6, &b);
  lua_settop(L, 10);
  vlua_tensor *r = new_vec(L, VL_F64, a.nrows);
  vl_error err;
  vlua_check_status(L, "csr_row_correlation",
                    vl_csr_row_correlation(vlua_ctx(L), &a, &b, (double *)r->t.data, &err), &err);
  return 1;
}

/* csr_row_max0(indptr, values f32) -> f32 [n]: row maxima with implicit zeros */
static int l_row_max0(lua_State *L) {
  vlua_tensor *ip = arg_array(L, "csr_row_max0", 1, "indptr", 1, VL_I64);
  vlua_tensor *v = arg_array(L, "csr_row_max0", 2, "values", 1, VL_F32);
  int64_t n = ip->t.shape[0] - 1;
  if (n < 0 || ((const int64_t *)ip->t.data)[n] != v->t.shape[0])
    luaL_error(L, "csr_row_max0: indptr does not match values");
  vlua_tensor *m = new_vec(L, VL_F32, n);
  vl_csr_row_max0(n, (const int64_t *)ip->t.data, (const float *)v->t.data, (float *)m->t.data);
  return 1;
}

/* csr_row_ids(indptr) -> i64 [nnz]: the 1-based row of every stored entry */
static int l_row_ids(lua_State *L) {
  vlua_tensor *ip = arg_array(L, "csr_row_ids", 1, "indptr", 1, VL_I64);
  int64_t n = ip->t.shape[0] - 1;
  const int64_t *p = (const int64_t *)ip->t.data;
  if (n < 0) luaL_error(L, "csr_row_ids: indptr is empty");
  vlua_tensor *r = new_vec(L, VL_I64, p[n]);
  int64_t *o = (int64_t *)r->t.data;
  for (int64_t i = 0; i < n; i++)
    for (int64_t q = p[i]; q < p[i + 1]; q++) o[q] = i + 1;
  return 1;
}

/* csr_keep(indptr, indices, values, keep bool [nnz]) -> indptr, indices, values of the kept */
static int l_keep(lua_State *L) {
  vlua_tensor *ip = arg_array(L, "csr_keep", 1, "indptr", 1, VL_I64);
  vlua_tensor *ix = arg_array(L, "csr_keep", 2, "indices", 1, VL_I64);
  vlua_tensor *v = vlua_arg_vector(L, "csr_keep", 3, "values", true);
  vlua_tensor *k = arg_array(L, "csr_keep", 4, "keep", 1, VL_BOOL);
  int64_t n = ip->t.shape[0] - 1, nnz = ix->t.shape[0];
  const int64_t *p = (const int64_t *)ip->t.data;
  if (n < 0 || p[n] != nnz || v->t.shape[0] != nnz || k->t.shape[0] != nnz)
    luaL_error(L, "csr_keep: indptr, indices, values and keep do not match");
  const uint8_t *keep = (const uint8_t *)k->t.data;
  int64_t m = 0;
  for (int64_t q = 0; q < nnz; q++) m += keep[q] != 0;
  lua_settop(L, 4);
  vlua_tensor *op = new_vec(L, VL_I64, n + 1), *ox = new_vec(L, VL_I64, m),
              *ov = new_vec(L, v->t.dtype, m);
  int64_t *opp = (int64_t *)op->t.data, *oxx = (int64_t *)ox->t.data, w = 0;
  size_t es = vl_dtype_size(v->t.dtype);
  opp[0] = 0;
  for (int64_t i = 0; i < n; i++) {
    for (int64_t q = p[i]; q < p[i + 1]; q++)
      if (keep[q]) {
        oxx[w] = ((const int64_t *)ix->t.data)[q];
        memcpy(ov->t.data + (size_t)w * es, v->t.data + (size_t)q * es, es);
        w++;
      }
    opp[i + 1] = w;
  }
  return 3;
}

void vlua_register_velocity(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"neighbor_lists", l_neighbor_lists},
    {"velocity_fit_deterministic", l_fit_det}, {"velocity_fit_stochastic", l_fit_sto},
    {"percentile_f32", l_percentile_f32}, {"velocity_graph", l_velocity_graph},
    {"velocity_confidence", l_velocity_confidence}, {"transition_kernel", l_transition_kernel},
    {"csr_normalize_abs_rows", l_normalize_abs_rows}, {"velocity_embedding", l_velocity_embedding},
    {"csr_row_correlation", l_row_correlation}, {"csr_row_max0", l_row_max0},
    {"csr_row_ids", l_row_ids}, {"csr_keep", l_keep}, {NULL, NULL}};
  vlua_setfuncs(L, fns);
}
