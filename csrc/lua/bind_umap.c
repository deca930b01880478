/* Bindings of the UMAP layout (lua/velua/tl/umap.lua) and of its quality measure
 * (lua/velua/metrics.lua): graph pruning, connected components, spectral initialisation, the
 * layout SGD, a dense symmetric eigensolver for the component meta-layout, trustworthiness.
 * CSR matrices are passed as their components (indptr, indices, values, nrows, ncols; 0-based
 * as stored in files, like bind_sparse.c); component labels are 1-based on the Lua side. */
#include <string.h>

#include "bind_args.h"
#include "spectral.h"
#include "trustworthiness.h"
#include "umap_layout.h"

/* ---------- argument helpers ---------- */

/* A 2-d float tensor at arg, replaced on the stack by a contiguous copy of dtype dt. */
static vlua_tensor *check_matrix_as(lua_State *L, const char *fname, int arg, const char *name,
                                    vl_dtype dt) {
  if (!vlua_test(L, arg))
    luaL_error(L, "%s: %s must be a tensor, got %s", fname, name, luaL_typename(L, arg));
  vlua_tensor *t = vlua_check(L, arg);
  if (t->t.ndim != 2 || !vl_dtype_is_float(t->t.dtype)) {
    char s[64];
    luaL_error(L, "%s: %s must be a 2-d f32 or f64 tensor, got %s %s", fname, name,
               vl_dtype_name(t->t.dtype), vl_shape_str(t->t.ndim, t->t.shape, s, sizeof s));
  }
  vlua_cast(L, arg, dt);
  lua_replace(L, arg);
  t = vlua_contiguous(L, arg);
  lua_replace(L, arg);
  return t;
}

static double opt_number(lua_State *L, int arg, const char *fname, const char *key, double def) {
  lua_getfield(L, arg, key);
  double v = def;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "%s: option %s must be a number, got %s", fname, key, luaL_typename(L, -1));
    v = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static lua_Integer opt_integer(lua_State *L, int arg, const char *fname, const char *key,
                               lua_Integer def) {
  lua_getfield(L, arg, key);
  lua_Integer v = def;
  if (!lua_isnil(L, -1)) {
    int isnum;
    v = lua_tointegerx(L, -1, &isnum);
    if (!isnum) luaL_error(L, "%s: option %s must be an integer", fname, key);
  }
  lua_pop(L, 1);
  return v;
}

/* ---------- graph ---------- */

/* umap_prune(csr (5 args), n_epochs) -> indptr, indices, values (f32) */
static int l_umap_prune(lua_State *L) {
  const char *fname = "umap_prune";
  vl_csr a;
  lua_settop(L, 6);
  vlua_arg_csr(L, fname, 1, &a);
  int64_t ne = vlua_checkint_range(L, 6, "n_epochs", 1, INT32_MAX);
  int64_t n1 = a.nrows + 1;
  vlua_tensor *ip = vlua_new(L, VL_I64, 1, &n1);
  vl_error err;
  vlua_check_status(L, fname, vl_umap_prune(&a, ne, (int64_t *)ip->t.data, NULL, NULL, &err),
                    &err);
  int64_t nnz = ((int64_t *)ip->t.data)[a.nrows];
  vlua_tensor *ix = vlua_new(L, VL_I64, 1, &nnz);
  vlua_tensor *v = vlua_new(L, VL_F32, 1, &nnz);
  vlua_check_status(L, fname, vl_umap_prune(&a, ne, (int64_t *)ip->t.data,
                                            (int64_t *)ix->t.data, (float *)v->t.data, &err),
                    &err);
  return 3;
}

/* graph_components(csr (5 args)) -> labels (i64, 1-based), count */
static int l_graph_components(lua_State *L) {
  vl_csr a;
  lua_settop(L, 5);
  vlua_arg_csr(L, "graph_components", 1, &a);
  vlua_tensor *lab = vlua_new(L, VL_I64, 1, &a.nrows);
  int64_t nc = 0;
  vl_error err;
  vlua_check_status(L, "graph_components",
                    vl_graph_components(&a, (int64_t *)lab->t.data, &nc, &err), &err);
  int64_t *p = (int64_t *)lab->t.data;
  for (int64_t i = 0; i < a.nrows; i++) p[i] += 1;
  lua_pushinteger(L, nc);
  return 2;
}

/* spectral_components(csr (5 args), labels (1-based i64), ncomp, dim
 *                     [, {tol=, max_matvec=, dense_max=, basis=, method="auto"|"dense"|"lanczos"}])
 * -> vectors [n, dim] f64 (rows of unsolved components 0), Laplacian eigenvalues [ncomp, dim]
 *    f64, status (array of "ok" | "too_small" | "failed"), matvecs (array) */
static int l_spectral_components(lua_State *L) {
  const char *fname = "spectral_components";
  vl_csr a;
  lua_settop(L, 9);
  vlua_arg_csr(L, fname, 1, &a);
  vlua_tensor *lab = vlua_arg_vector(L, fname, 6, "labels", false);
  int64_t ncomp = vlua_arg_size(L, fname, 7, "ncomp");
  int64_t dim = vlua_checkint_range(L, 8, "dim", 1, 1 << 16);
  if (lab->t.shape[0] != a.nrows)
    luaL_error(L, "%s: labels has %I entries, expected %I", fname, (lua_Integer)lab->t.shape[0],
               (lua_Integer)a.nrows);
  vl_spectral_opts o;
  vl_spectral_defaults(&o);
  if (!lua_isnil(L, 9)) {
    luaL_checktype(L, 9, LUA_TTABLE);
    o.tol = opt_number(L, 9, fname, "tol", o.tol);
    o.max_matvec = opt_integer(L, 9, fname, "max_matvec", o.max_matvec);
    o.dense_max = opt_integer(L, 9, fname, "dense_max", o.dense_max);
    o.basis = opt_integer(L, 9, fname, "basis", o.basis);
    lua_getfield(L, 9, "method");
    const char *m = lua_isnil(L, -1) ? "auto" : lua_tostring(L, -1);
    if (m && strcmp(m, "dense") == 0) o.force = 1;
    else if (m && strcmp(m, "lanczos") == 0) o.force = 2;
    else if (!m || strcmp(m, "auto") != 0)
      luaL_error(L, "%s: method must be 'auto', 'dense' or 'lanczos'", fname);
    lua_pop(L, 1);
  }
  /* 0-based labels, checked */
  int64_t *l0 = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(a.nrows > 0 ? a.nrows : 1), 0);
  const int64_t *lp = (const int64_t *)lab->t.data;
  for (int64_t i = 0; i < a.nrows; i++) {
    if (lp[i] < 1 || lp[i] > ncomp)
      luaL_error(L, "%s: label %I (at %I) out of range 1..%I", fname, (lua_Integer)lp[i],
                 (lua_Integer)(i + 1), (lua_Integer)ncomp);
    l0[i] = lp[i] - 1;
  }
  int64_t shp[2] = {a.nrows, dim}, eshp[2] = {ncomp, dim};
  vlua_tensor *vec = vlua_new(L, VL_F64, 2, shp); /* 11 */
  memset(vec->t.data, 0, sizeof(double) * (size_t)(a.nrows * dim));
  vlua_tensor *ev = vlua_new(L, VL_F64, 2, eshp); /* 12 */
  int *status = lua_newuserdatauv(L, sizeof(int) * (size_t)(ncomp > 0 ? ncomp : 1), 0);
  int64_t *mv = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(ncomp > 0 ? ncomp : 1), 0);
  vl_error err;
  vlua_check_status(L, fname, vl_spectral_components(vlua_ctx(L), &a, l0, ncomp, dim, &o,
                                                     (double *)vec->t.data, (double *)ev->t.data,
                                                     status, mv, &err), &err);
  lua_pushvalue(L, 11);
  lua_pushvalue(L, 12);
  lua_createtable(L, (int)ncomp, 0);
  for (int64_t c = 0; c < ncomp; c++) {
    lua_pushstring(L, status[c] == VL_SPECTRAL_OK ? "ok"
                      : status[c] == VL_SPECTRAL_TOO_SMALL ? "too_small" : "failed");
    lua_rawseti(L, -2, c + 1);
  }
  lua_createtable(L, (int)ncomp, 0);
  for (int64_t c = 0; c < ncomp; c++) {
    lua_pushinteger(L, mv[c]);
    lua_rawseti(L, -2, c + 1);
  }
  return 4;
}

/* sym_eig(A [n, n]) -> eigenvalues [n] ascending, eigenvectors [n, n] (columns), f64 */
static int l_sym_eig(lua_State *L) {
  lua_settop(L, 1);
  vlua_tensor *A = check_matrix_as(L, "sym_eig", 1, "A", VL_F64);
  int64_t n = A->t.shape[0];
  if (A->t.shape[1] != n) luaL_error(L, "sym_eig: A must be square");
  int64_t shp[2] = {n, n};
  vlua_tensor *w = vlua_new(L, VL_F64, 1, &n);
  vlua_tensor *z = vlua_new(L, VL_F64, 2, shp);
  vl_error err;
  vlua_check_status(L, "sym_eig", vl_sym_eig((const double *)A->t.data, n, (double *)w->t.data,
                                             (double *)z->t.data, &err), &err);
  return 2;
}

/* ---------- layout ---------- */

/* umap_optimize(Y [n, dim] f32 contiguous (updated in place), csr (5 args, f32 values > 0),
 *               {n_epochs=, a=, b=, gamma=, alpha=, negative_sample_rate=, seed=}) -> Y */
static int l_umap_optimize(lua_State *L) {
  const char *fname = "umap_optimize";
  lua_settop(L, 7);
  if (!vlua_test(L, 1)) luaL_error(L, "%s: Y must be a tensor", fname);
  vlua_tensor *Y = vlua_check(L, 1);
  if (Y->t.ndim != 2 || Y->t.dtype != VL_F32 || !vl_is_contiguous(&Y->t))
    luaL_error(L, "%s: Y must be a contiguous 2-d f32 tensor", fname);
  vl_csr a;
  vlua_arg_csr(L, fname, 2, &a);
  if (a.dtype != VL_F32) luaL_error(L, "%s: graph values must be f32", fname);
  if (Y->t.shape[0] != a.nrows)
    luaL_error(L, "%s: Y has %I rows but the graph %I", fname, (lua_Integer)Y->t.shape[0],
               (lua_Integer)a.nrows);
  luaL_checktype(L, 7, LUA_TTABLE);
  vl_umap_sgd_opts o;
  o.n_epochs = opt_integer(L, 7, fname, "n_epochs", 200);
  o.a = opt_number(L, 7, fname, "a", 1.576943460405378);
  o.b = opt_number(L, 7, fname, "b", 0.8950608781227859);
  o.gamma = opt_number(L, 7, fname, "gamma", 1.0);
  o.initial_alpha = opt_number(L, 7, fname, "alpha", 1.0);
  o.negative_sample_rate = opt_number(L, 7, fname, "negative_sample_rate", 5.0);
  o.seed = (uint64_t)opt_integer(L, 7, fname, "seed", 0);

  vl_error err;
  vlua_check_status(L, fname, vl_umap_optimize(vlua_ctx(L), &a, (float *)Y->t.data,
                                               Y->t.shape[1], &o, &err), &err);
  vlua_mark_written(Y);
  lua_pushvalue(L, 1);
  return 1;
}

/* ---------- trustworthiness ---------- */

/* trustworthiness(X [n, dx], Y [n, dy], k) -> number */
static int l_trustworthiness(lua_State *L) {
  const char *fname = "trustworthiness";
  lua_settop(L, 3);
  vlua_tensor *X = check_matrix_as(L, fname, 1, "X", VL_F64);
  vlua_tensor *Y = check_matrix_as(L, fname, 2, "Y", VL_F64);
  if (X->t.shape[0] != Y->t.shape[0])
    luaL_error(L, "%s: X has %I rows but Y has %I", fname, (lua_Integer)X->t.shape[0],
               (lua_Integer)Y->t.shape[0]);
  int64_t k = vlua_checkint_range(L, 3, "n_neighbors", 1, INT32_MAX);
  double t = 0;
  vl_error err;
  vlua_check_status(L, fname, vl_trustworthiness(vlua_ctx(L), (const double *)X->t.data,
                                                 X->t.shape[0], X->t.shape[1],
                                                 (const double *)Y->t.data, Y->t.shape[1], k, &t,
                                                 &err), &err);
  lua_pushnumber(L, t);
  return 1;
}

void vlua_register_umap(lua_State *L) {
  static const luaL_Reg regs[] = {
    {"umap_prune", l_umap_prune}, {"graph_components", l_graph_components},
    {"spectral_components", l_spectral_components}, {"sym_eig", l_sym_eig},
    {"umap_optimize", l_umap_optimize}, {"trustworthiness", l_trustworthiness}, {NULL, NULL}};
  vlua_setfuncs(L, regs);
}
