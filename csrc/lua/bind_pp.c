/* Preprocessing kernels for lua/velua/pp: k-nearest neighbours (exact and NN-descent), UMAP's
 * fuzzy graph, exact PCA and the sparse helpers of filtering, normalisation and moments.
 * CSR matrices are passed as their components (indptr, indices, values, nrows, ncols; 0-based
 * as stored in files, like bind_sparse.c); neighbour indices are 1-based on the Lua side. */
#include <string.h>

#include "knn.h"
#include "bind_args.h"
#include "gram_f32.h"
#include "pca.h"
#include "pp_kernels.h"
#include "umap_graph.h"

/* ---------- argument helpers ---------- */

/* A 2-d f32/f64 tensor at arg (made contiguous in place on the stack). */
static vlua_tensor *check_matrix(lua_State *L, const char *fname, int arg, const char *name) {
  if (!vlua_test(L, arg))
    luaL_error(L, "%s: %s must be a tensor, got %s", fname, name, luaL_typename(L, arg));
  vlua_tensor *t = vlua_check(L, arg);
  if (t->t.ndim != 2 || !vl_dtype_is_float(t->t.dtype)) {
    char s[64];
    luaL_error(L, "%s: %s must be a 2-d f32 or f64 tensor, got %s %s", fname, name,
               vl_dtype_name(t->t.dtype), vl_shape_str(t->t.ndim, t->t.shape, s, sizeof s));
  }
  return t;
}

static lua_Integer opt_int_field(lua_State *L, int arg, const char *key, lua_Integer def) {
  if (lua_type(L, arg) != LUA_TTABLE) return def;
  lua_getfield(L, arg, key);
  lua_Integer v = def;
  if (!lua_isnil(L, -1)) {
    int isnum;
    v = lua_tointegerx(L, -1, &isnum);
    if (!isnum) luaL_error(L, "knn_nndescent: option %s must be an integer", key);
  }
  lua_pop(L, 1);
  return v;
}

/* 0-based i64 indices in place -> 1-based (-1 "none" becomes 0) */
static void to_one_based(vlua_tensor *t) {
  int64_t *p = (int64_t *)t->t.data, n = vl_numel(&t->t);
  for (int64_t i = 0; i < n; i++) p[i] += 1;
}

/* ---------- kNN ---------- */

/* knn_exact(x [n, d] [, queries [m, d]], k) -> indices [m, k] (i64, 1-based), distances */
static int l_knn_exact(lua_State *L) {
  const char *fname = "knn_exact";
  vlua_tensor *x = check_matrix(L, fname, 1, "data");
  vlua_tensor *q = NULL;
  int karg = 2;
  if (vlua_test(L, 2)) {
    q = check_matrix(L, fname, 2, "queries");
    karg = 3;
  }
  int64_t k = vlua_checkint_range(L, karg, "k", 1, x->t.shape[0]);
  int64_t m = q ? q->t.shape[0] : x->t.shape[0];
  int64_t shape[2] = {m, k};
  vlua_tensor *idx = vlua_new(L, VL_I64, 2, shape);
  vlua_tensor *dist = vlua_new(L, x->t.dtype, 2, shape);
  vl_error err;
  vlua_check_status(L, fname, vl_knn_exact(vlua_ctx(L), &x->t, q ? &q->t : NULL, k, &idx->t,
                                           &dist->t, &err), &err);
  to_one_based(idx);
  return 2;
}

/* knn_nndescent(x, k [, {seed=, n_trees=, leaf_size=, max_candidates=, max_iters=, delta=}])
 * -> indices (1-based), distances, iterations run */
static int l_knn_nndescent(lua_State *L) {
  const char *fname = "knn_nndescent";
  vlua_tensor *x = check_matrix(L, fname, 1, "data");
  int64_t k = vlua_checkint_range(L, 2, "k", 1, x->t.shape[0]);
  vl_nndescent_opts o;
  vl_nndescent_defaults(&o, x->t.shape[0], k);
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    o.seed = (uint64_t)opt_int_field(L, 3, "seed", (lua_Integer)o.seed);
    o.n_trees = (int)opt_int_field(L, 3, "n_trees", o.n_trees);
    o.leaf_size = (int)opt_int_field(L, 3, "leaf_size", o.leaf_size);
    o.max_candidates = (int)opt_int_field(L, 3, "max_candidates", o.max_candidates);
    o.max_iters = (int)opt_int_field(L, 3, "max_iters", o.max_iters);
    lua_getfield(L, 3, "delta");
    if (!lua_isnil(L, -1)) o.delta = luaL_checknumber(L, -1);
    lua_pop(L, 1);
  }
  lua_settop(L, 3);
  int64_t shape[2] = {x->t.shape[0], k};
  vlua_tensor *idx = vlua_new(L, VL_I64, 2, shape);
  vlua_tensor *dist = vlua_new(L, x->t.dtype, 2, shape);
  vl_error err;
  vlua_check_status(L, fname, vl_knn_nndescent(vlua_ctx(L), &x->t, k, &o, &idx->t, &dist->t,
                                               &err), &err);
  to_one_based(idx);
  lua_pushinteger(L, o.iters_done);
  return 3;
}

/* knn_graph(indices [n, k] (1-based, 0 for none), distances [n, k] [, ncols = n])
 * -> indptr, indices, values (CSR, 0-based, sorted columns, zero distances dropped) */
static int l_knn_graph(lua_State *L) {
  const char *fname = "knn_graph";
  if (!vlua_test(L, 1) || !vlua_test(L, 2))
    luaL_error(L, "%s: indices and distances must be tensors", fname);
  vlua_tensor *ix = vlua_check(L, 1), *dx = vlua_check(L, 2);
  if (ix->t.ndim != 2 || ix->t.dtype != VL_I64)
    luaL_error(L, "%s: indices must be a 2-d i64 tensor", fname);
  if (dx->t.ndim != 2 || !vl_dtype_is_float(dx->t.dtype) || dx->t.shape[0] != ix->t.shape[0] ||
      dx->t.shape[1] != ix->t.shape[1])
    luaL_error(L, "%s: distances must be a float tensor shaped like the indices", fname);
  int64_t n = ix->t.shape[0], k = ix->t.shape[1];
  int64_t ncols = lua_isnoneornil(L, 3) ? n : vlua_arg_size(L, fname, 3, "ncols");
  lua_settop(L, 3);
  int64_t shp[2] = {n, k};
  vlua_tensor *ic = vlua_new(L, VL_I64, 2, shp); /* 4 */
  {
    vlua_tensor *src = vlua_contiguous(L, 1);
    const int64_t *s = (const int64_t *)src->t.data;
    int64_t *d = (int64_t *)ic->t.data;
    for (int64_t t = 0; t < n * k; t++) d[t] = s[t] - 1;
    lua_pop(L, 1);
  }
  vlua_tensor *dc = vlua_contiguous(L, 2); /* 5 */
  int64_t n1 = n + 1;
  vlua_tensor *ip = vlua_new(L, VL_I64, 1, &n1); /* 6 */
  vl_error err;
  vlua_check_status(L, fname, vl_knn_graph_csr(n, ncols, k, (const int64_t *)ic->t.data,
                                               dc->t.data, dc->t.dtype, (int64_t *)ip->t.data,
                                               NULL, NULL, &err), &err);
  int64_t nnz = ((int64_t *)ip->t.data)[n];
  vlua_tensor *ind = vlua_new(L, VL_I64, 1, &nnz);
  vlua_tensor *val = vlua_new(L, dc->t.dtype, 1, &nnz);
  vlua_check_status(L, fname, vl_knn_graph_csr(n, ncols, k, (const int64_t *)ic->t.data,
                                               dc->t.data, dc->t.dtype, (int64_t *)ip->t.data,
                                               (int64_t *)ind->t.data, val->t.data, &err), &err);
  lua_pushvalue(L, 6);
  lua_pushvalue(L, 7);
  lua_pushvalue(L, 8);
  return 3;
}

/* ---------- UMAP graph ---------- */

/* umap_graph(indices [n, k] (1-based, 0 for none), distances [n, k] f32,
 *            local_connectivity, set_op_mix_ratio)
 * -> indptr, indices, values (CSR, 0-based, f32), sigmas, rhos */
static int l_umap_graph(lua_State *L) {
  const char *fname = "umap_graph";
  if (!vlua_test(L, 1) || !vlua_test(L, 2))
    luaL_error(L, "%s: indices and distances must be tensors", fname);
  vlua_tensor *ix = vlua_check(L, 1), *dx = vlua_check(L, 2);
  double lc = luaL_optnumber(L, 3, 1.0), mix = luaL_optnumber(L, 4, 1.0);
  if (ix->t.ndim != 2 || ix->t.dtype != VL_I64)
    luaL_error(L, "%s: indices must be a 2-d i64 tensor", fname);
  if (dx->t.ndim != 2 || dx->t.dtype != VL_F32 || dx->t.shape[0] != ix->t.shape[0] ||
      dx->t.shape[1] != ix->t.shape[1])
    luaL_error(L, "%s: distances must be an f32 tensor shaped like the indices", fname);
  lua_settop(L, 4);
  int64_t n = ix->t.shape[0], k = ix->t.shape[1];
  /* 0-based copy of the indices */
  int64_t shp[2] = {n, k};
  vlua_tensor *ic = vlua_new(L, VL_I64, 2, shp); /* 5 */
  {
    vlua_tensor *src = vlua_contiguous(L, 1);
    const int64_t *s = (const int64_t *)src->t.data;
    int64_t *d = (int64_t *)ic->t.data;
    for (int64_t t = 0; t < n * k; t++) d[t] = s[t] - 1;
    lua_pop(L, 1);
  }
  vlua_tensor *dc = vlua_contiguous(L, 2); /* 6 */
  vlua_tensor *sig = vlua_new(L, VL_F32, 1, &n); /* 7 */
  vlua_tensor *rho = vlua_new(L, VL_F32, 1, &n); /* 8 */
  int64_t n1 = n + 1, cap = 2 * n * k;
  vlua_tensor *ip = vlua_new(L, VL_I64, 1, &n1);  /* 9 */
  vlua_tensor *ind = vlua_new(L, VL_I64, 1, &cap); /* 10 */
  vlua_tensor *val = vlua_new(L, VL_F32, 1, &cap); /* 11 */
  vl_umap_graph_in in = {n, k, (const int64_t *)ic->t.data, (const float *)dc->t.data, lc, mix};
  vl_error err;
  vl_ctx *ctx = vlua_ctx(L);
  vlua_check_status(L, fname, vl_umap_smooth_knn(ctx, &in, (float *)sig->t.data,
                                                 (float *)rho->t.data, &err), &err);
  int64_t nnz = 0;
  vlua_check_status(L, fname, vl_umap_fuzzy_union(ctx, &in, (float *)sig->t.data,
                                                  (float *)rho->t.data, (int64_t *)ip->t.data,
                                                  (int64_t *)ind->t.data, (float *)val->t.data,
                                                  &nnz, &err), &err);
  /* compact copies of the first nnz entries */
  vlua_tensor *ind2 = vlua_new(L, VL_I64, 1, &nnz); /* 12 */
  vlua_tensor *val2 = vlua_new(L, VL_F32, 1, &nnz); /* 13 */
  memcpy(ind2->t.data, ind->t.data, sizeof(int64_t) * (size_t)nnz);
  memcpy(val2->t.data, val->t.data, sizeof(float) * (size_t)nnz);
  lua_pushvalue(L, 9);
  lua_pushvalue(L, 12);
  lua_pushvalue(L, 13);
  lua_pushvalue(L, 7);
  lua_pushvalue(L, 8);
  return 5;
}

/* ---------- PCA ---------- */

/* pca_dense(x [n, g], k) or pca_csr(indptr, indices, values, nrows, ncols, k)
 * -> scores [n, k] f64, components [g, k] f64, singular values [k] f64, means [g] f64,
 *    total variance (number) */
static int do_pca(lua_State *L, const vl_csr *sp, const vl_tensor *dense, int64_t n, int64_t g,
                  int64_t k) {
  int64_t s1[2] = {n, k}, s2[2] = {g, k};
  vlua_tensor *sc = vlua_new(L, VL_F64, 2, s1);
  vlua_tensor *co = vlua_new(L, VL_F64, 2, s2);
  vlua_tensor *sv = vlua_new(L, VL_F64, 1, &k);
  vlua_tensor *mu = vlua_new(L, VL_F64, 1, &g);
  vl_pca_out out = {(double *)sc->t.data, (double *)co->t.data, (double *)sv->t.data,
                    (double *)mu->t.data, 0};
  vl_error err;
  vlua_check_status(L, "pca", vl_pca(vlua_ctx(L), sp, dense, k, &out, &err), &err);
  lua_pushnumber(L, out.total_var);
  return 5;
}

static int l_pca_dense(lua_State *L) {
  vlua_tensor *x = check_matrix(L, "pca", 1, "X");
  int64_t k = (int64_t)luaL_checkinteger(L, 2);
  lua_settop(L, 2);
  return do_pca(L, NULL, &x->t, x->t.shape[0], x->t.shape[1], k);
}

static int l_pca_csr(lua_State *L) {
  vl_csr a;
  lua_settop(L, 6);
  vlua_arg_csr(L, "pca", 1, &a);
  int64_t k = (int64_t)luaL_checkinteger(L, 6);
  return do_pca(L, &a, NULL, a.nrows, a.ncols, k);
}

/* pca_gram_dense(x [n, g], blas_only) or pca_gram_csr(indptr, indices, values, nrows, ncols,
 * blas_only) -> the centred Gram matrix vl_pca decomposes [m, m] f64 (m = min(n, g)), means [g]
 * f64: for the tests of the Gram kernels */
static int do_pca_gram(lua_State *L, const vl_csr *sp, const vl_tensor *dense, int64_t n,
                       int64_t g, bool blas_only) {
  int64_t m = n < g ? n : g, s2[2] = {m, m};
  vlua_tensor *G = vlua_new(L, VL_F64, 2, s2);
  vlua_tensor *mu = vlua_new(L, VL_F64, 1, &g);
  vl_error err;
  vlua_check_status(L, "pca_gram",
                    vl_pca_gram(vlua_ctx(L), sp, dense, blas_only, (double *)G->t.data,
                                (double *)mu->t.data, &err),
                    &err);
  return 2;
}

static int l_pca_gram_dense(lua_State *L) {
  vlua_tensor *x = check_matrix(L, "pca_gram", 1, "X");
  bool blas_only = lua_toboolean(L, 2);
  lua_settop(L, 1);
  return do_pca_gram(L, NULL, &x->t, x->t.shape[0], x->t.shape[1], blas_only);
}

static int l_pca_gram_csr(lua_State *L) {
  vl_csr a;
  lua_settop(L, 6);
  bool blas_only = lua_toboolean(L, 6);
  vlua_arg_csr(L, "pca_gram", 1, &a);
  return do_pca_gram(L, &a, NULL, a.nrows, a.ncols, blas_only);
}

/* gram_f32_available() -> does PCA use velua's AVX-512 Gram kernel on this CPU? */
static int l_gram_f32_available(lua_State *L) {
  lua_pushboolean(L, vl_gram_f32_available());
  return 1;
}

/* ---------- sparse helpers ---------- */

/* csr_scale_rows(indptr, indices, values, nrows, ncols, scale [nrows]) -> new values */
static int l_csr_scale_rows(lua_State *L) {
  const char *fname = "csr_scale_rows";
  vl_csr a;
  lua_settop(L, 6);
  vlua_arg_csr_indptr(L, fname, 1, &a); /* no column index is read */
  vlua_tensor *s = vlua_arg_vector(L, fname, 6, "scale", true);
  if (s->t.shape[0] != a.nrows || s->t.dtype != a.dtype)
    luaL_error(L, "%s: scale must have nrows entries of the values' dtype", fname);
  vlua_tensor *out = vlua_new(L, a.dtype, 1, &a.nnz);
  vl_error err;
  vlua_check_status(L, fname, vl_pp_scale_rows(vlua_ctx(L), &a, s->t.data, out->t.data, &err),
                    &err);
  return 1;
}

/* csr_row_sums(indptr, indices, values, nrows, ncols) -> [nrows] (scipy's order) */
static int l_csr_row_sums(lua_State *L) {
  vl_csr a;
  lua_settop(L, 5);
  vlua_arg_csr_indptr(L, "csr_row_sums", 1, &a); /* no column index is read */
  vlua_tensor *out = vlua_new(L, a.dtype, 1, &a.nrows);
  vl_error err;
  vlua_check_status(L, "csr_row_sums", vl_pp_row_sums(vlua_ctx(L), &a, out->t.data, &err), &err);
  return 1;
}

/* csr_col_stats(indptr, indices, values, nrows, ncols [, y f64 [nrows]])
 * -> sums, sums of squares [ncols] f64 (f32-accumulated for f32 values) [, sums of x*y] */
static int l_csr_col_stats(lua_State *L) {
  const char *fname = "csr_col_stats";
  vl_csr a;
  lua_settop(L, 6);
  vlua_arg_csr_indptr(L, fname, 1, &a); /* the kernel checks each column index */
  const double *y = NULL;
  if (!lua_isnil(L, 6)) {
    vlua_tensor *yt = vlua_arg_vector(L, fname, 6, "y", true);
    if (yt->t.dtype != VL_F64 || yt->t.shape[0] != a.nrows)
      luaL_error(L, "%s: y must be an f64 vector with nrows entries", fname);
    y = (const double *)yt->t.data;
  }
  vlua_tensor *s = vlua_new(L, VL_F64, 1, &a.ncols);
  vlua_tensor *q = vlua_new(L, VL_F64, 1, &a.ncols);
  vlua_tensor *xy = y ? vlua_new(L, VL_F64, 1, &a.ncols) : NULL;
  vl_error err;
  vlua_check_status(L, fname, vl_pp_col_stats(&a, y, (double *)s->t.data, (double *)q->t.data,
                                              xy ? (double *)xy->t.data : NULL, &err), &err);
  return y ? 3 : 2;
}

/* csr_count_corr_stats(indptr, indices, values, nrows, ncols)
 * -> y [nrows], sums, sums of squares, sums of x*y [ncols], all f64 */
static int l_csr_count_corr_stats(lua_State *L) {
  const char *fname = "csr_count_corr_stats";
  vl_csr a;
  lua_settop(L, 5);
  vlua_arg_csr_indptr(L, fname, 1, &a); /* the kernel checks each column index */
  vlua_tensor *y = vlua_new(L, VL_F64, 1, &a.nrows);
  vlua_tensor *s = vlua_new(L, VL_F64, 1, &a.ncols);
  vlua_tensor *q = vlua_new(L, VL_F64, 1, &a.ncols);
  vlua_tensor *xy = vlua_new(L, VL_F64, 1, &a.ncols);
  vl_error err;
  vlua_check_status(L, fname, vl_pp_count_corr_stats(&a, (double *)y->t.data, (double *)s->t.data,
                                                     (double *)q->t.data, (double *)xy->t.data,
                                                     &err), &err);
  return 4;
}

/* seurat_norm(dispersions f64 [n], bins i64 [n] (1..nbins, 0 for none), nbins) -> f64 [n] */
static int l_seurat_norm(lua_State *L) {
  const char *fname = "seurat_norm";
  lua_settop(L, 3);
  vlua_tensor *d = vlua_arg_vector(L, fname, 1, "dispersions", true);
  vlua_tensor *b = vlua_arg_vector(L, fname, 2, "bins", false);
  int64_t nbins = vlua_arg_size(L, fname, 3, "nbins");
  int64_t n = d->t.shape[0];
  if (d->t.dtype != VL_F64) luaL_error(L, "%s: dispersions must be f64", fname);
  if (b->t.shape[0] != n)
    luaL_error(L, "%s: bins has %I entries but dispersions has %I", fname,
               (lua_Integer)b->t.shape[0], (lua_Integer)n);
  vlua_tensor *out = vlua_new(L, VL_F64, 1, &n);
  vl_pp_seurat_norm(n, (const double *)d->t.data, (const int64_t *)b->t.data, nbins,
                    (double *)out->t.data);
  return 1;
}

/* shared_counts(spliced csr (5 args), unspliced csr (5 args)) -> f32 [ncols] */
static int l_shared_counts(lua_State *L) {
  const char *fname = "shared_counts";
  vl_csr s, u;
  lua_settop(L, 10);
  vlua_arg_csr_indptr(L, fname, 1, &s); /* the kernel checks each column index */
  vlua_arg_csr_indptr(L, fname, 6, &u);
  vlua_tensor *out = vlua_new(L, VL_F32, 1, &s.ncols);
  vl_error err;
  vlua_check_status(L, fname, vl_pp_shared_counts(&s, &u, (float *)out->t.data, &err), &err);
  return 1;
}

typedef vl_status (*two_pass_fn)(vl_ctx *ctx, const vl_csr *a, const void *arg,
                                 int64_t *indptr, int64_t *indices, void *values, vl_error *err);

typedef struct {
  const int64_t *map;
  const void *scale;
} select_arg;

static vl_status tp_select(vl_ctx *ctx, const vl_csr *a, const void *arg, int64_t *ip,
                           int64_t *ix, void *v, vl_error *err) {
  const select_arg *s = arg;
  return vl_pp_select_columns(ctx, a, s->map, s->scale, ip, ix, v, err);
}
static vl_status tp_moments(vl_ctx *ctx, const vl_csr *a, const void *arg, int64_t *ip,
                            int64_t *ix, void *v, vl_error *err) {
  return vl_pp_moments_operator(a, ip, ix, v, err);
}
static vl_status tp_top(vl_ctx *ctx, const vl_csr *a, const void *arg, int64_t *ip, int64_t *ix,
                        void *v, vl_error *err) {
  return vl_pp_top_per_row(a, *(const int64_t *)arg, ip, ix, v, err);
}

/* Runs a two-pass kernel and pushes indptr, indices, values. */
static int two_pass(lua_State *L, const char *fname, const vl_csr *a, two_pass_fn fn,
                    const void *arg, vl_dtype vdt) {
  int64_t n1 = a->nrows + 1;
  vlua_tensor *ip = vlua_new(L, VL_I64, 1, &n1);
  vl_error err;
  vl_ctx *ctx = vlua_ctx(L);
  vlua_check_status(L, fname, fn(ctx, a, arg, (int64_t *)ip->t.data, NULL, NULL, &err), &err);
  int64_t nnz = ((int64_t *)ip->t.data)[a->nrows];
  vlua_tensor *ix = vlua_new(L, VL_I64, 1, &nnz);
  vlua_tensor *v = vlua_new(L, vdt, 1, &nnz);
  vlua_check_status(L, fname, fn(ctx, a, arg, (int64_t *)ip->t.data, (int64_t *)ix->t.data,
                                 v->t.data, &err), &err);
  return 3;
}

/* csr_select_columns(csr (5 args), keep (i64, 1-based column numbers in their new order)
 * [, row_scale (one factor per row, the values' dtype)])
 * -> indptr, indices, values of the matrix restricted to those columns (values times their
 *    row's factor when row_scale is given) */
static int l_csr_select_columns(lua_State *L) {
  const char *fname = "csr_select_columns";
  vl_csr a;
  lua_settop(L, 7);
  vlua_arg_csr_indptr(L, fname, 1, &a); /* the kernel's first pass checks every column index */
  vlua_tensor *keep = vlua_arg_vector(L, fname, 6, "columns", false);
  const void *scale = NULL;
  if (!lua_isnil(L, 7)) {
    vlua_tensor *s = vlua_arg_vector(L, fname, 7, "row_scale", true);
    if (s->t.shape[0] != a.nrows || s->t.dtype != a.dtype)
      luaL_error(L, "%s: row_scale must have nrows = %I entries of the values' dtype %s, got "
                 "%I of %s", fname, (lua_Integer)a.nrows, vl_dtype_name(a.dtype),
                 (lua_Integer)s->t.shape[0], vl_dtype_name(s->t.dtype));
    scale = s->t.data;
  }
  int64_t *map = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(a.ncols > 0 ? a.ncols : 1), 0);
  for (int64_t j = 0; j < a.ncols; j++) map[j] = -1;
  const int64_t *kp = (const int64_t *)keep->t.data;
  for (int64_t t = 0; t < keep->t.shape[0]; t++) {
    int64_t c = kp[t] - 1;
    if (c < 0 || c >= a.ncols)
      luaL_error(L, "%s: column %I (at position %I) out of range 1..%I", fname, (lua_Integer)kp[t],
                 (lua_Integer)t + 1, (lua_Integer)a.ncols);
    if (map[c] >= 0)
      luaL_error(L, "%s: column %I listed twice", fname, (lua_Integer)kp[t]);
    map[c] = t;
  }
  select_arg sa = {map, scale};
  return two_pass(L, fname, &a, tp_select, &sa, a.dtype);
}

/* moments_operator(connectivities csr (5 args)) -> indptr, indices, values (f32) */
static int l_moments_operator(lua_State *L) {
  vl_csr a;
  lua_settop(L, 5);
  vlua_arg_csr(L, "moments_operator", 1, &a);
  return two_pass(L, "moments_operator", &a, tp_moments, NULL, VL_F32);
}

/* csr_top_per_row(csr (5 args), keep) -> indptr, indices, values */
static int l_csr_top_per_row(lua_State *L) {
  vl_csr a;
  lua_settop(L, 6);
  vlua_arg_csr(L, "csr_top_per_row", 1, &a);
  int64_t keep = vlua_checkint_range(L, 6, "keep", 0, INT64_MAX);
  return two_pass(L, "csr_top_per_row", &a, tp_top, &keep, a.dtype);
}

void vlua_register_pp(lua_State *L) {
  static const luaL_Reg regs[] = {
    {"knn_exact", l_knn_exact}, {"knn_nndescent", l_knn_nndescent},
    {"knn_graph", l_knn_graph}, {"umap_graph", l_umap_graph}, {"pca_dense", l_pca_dense}, {"pca_csr", l_pca_csr},
    {"pca_gram_dense", l_pca_gram_dense}, {"pca_gram_csr", l_pca_gram_csr},
    {"gram_f32_available", l_gram_f32_available},
    {"csr_scale_rows", l_csr_scale_rows}, {"csr_row_sums", l_csr_row_sums},
    {"csr_col_stats", l_csr_col_stats}, {"csr_count_corr_stats", l_csr_count_corr_stats},
    {"shared_counts", l_shared_counts}, {"seurat_norm", l_seurat_norm},
    {"csr_select_columns", l_csr_select_columns}, {"moments_operator", l_moments_operator},
    {"csr_top_per_row", l_csr_top_per_row}, {NULL, NULL}};
  vlua_setfuncs(L, regs);
}
