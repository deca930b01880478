/* DeepVelo kernels (see deepvelo_kernels.h). The loops are written once in
 * deepvelo_kernels_impl.h and instantiated here for f32 and f64. */
#include "deepvelo_kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define DV_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define DV_CLONES
#endif

typedef struct {
  const char *v, *cur, *cand;
  int64_t sv, scur, scand; /* row strides in elements */
  const int64_t *idx;      /* [n, k], validated */
  int64_t k, d, n_cos;
  char *plus;              /* E+ rows, or E+ - E- rows when minus is NULL */
  char *minus;             /* E- rows, or NULL: then scratch rows per chunk */
  char *scratch;           /* num_threads rows of d elements when minus is NULL */
  double *row_sq;          /* [n, 2] sums of (v - E+)^2, (v + E-)^2 when minus is NULL */
  int64_t *counts;
} cand_job;

typedef struct {
  const char *v, *e;
  int64_t sv, se, d;
  char *out;
  double alpha;
} mle_back_job;

typedef struct {
  const char *x, *u, *s;
  int64_t sx, su, ss, n, g;
  double *scratch; /* 16 doubles per gene (forward), 10 (backward) */
  double *stats;   /* [G, 2, VL_DV_NSTAT] */
  double *r;       /* [G, 2] */
  const double *w; /* [G, 2] (backward) */
  char *grad;
  int64_t sg;      /* row stride of grad */
  bool accumulate;
} dir_job;

typedef struct {
  const char *h, *u, *s;
  int64_t sh, su, ss, so, G;
  bool pred_unspliced;
  char *out;
  /* dropout on h first (keep != NULL): */
  uint8_t *keep;        /* [n, kG] */
  int64_t kG;           /* columns of h */
  const vl_philox *gen;
  uint64_t base;        /* the generator's counter at the call */
  double p;
} head_job;

#define DV_T float
#define DV_FN(name) name##_f32
#include "deepvelo_kernels_impl.h"
#undef DV_T
#undef DV_FN
#define DV_T double
#define DV_FN(name) name##_f64
#include "deepvelo_kernels_impl.h"
#undef DV_T
#undef DV_FN

/* ---------- argument checks ---------- */

static vl_status check_mat(const vl_tensor *t, const char *name, vl_dtype dt, int64_t rows,
                           int64_t cols, bool contiguous, vl_error *err) {
  char s[64];
  if (t->ndim != 2 || t->dtype != dt || (rows >= 0 && t->shape[0] != rows) ||
      (cols >= 0 && t->shape[1] != cols)) {
    char want[64];
    snprintf(want, sizeof want, "[%s, %s]", rows >= 0 ? "n" : "N", cols >= 0 ? "" : "*");
    if (rows >= 0 && cols >= 0)
      snprintf(want, sizeof want, "[%lld, %lld]", (long long)rows, (long long)cols);
    else if (cols >= 0)
      snprintf(want, sizeof want, "[*, %lld]", (long long)cols);
    return vl_fail(err, VL_ERR_SHAPE, "%s must be a %s tensor %s, got %s %s", name,
                   vl_dtype_name(dt), want, vl_dtype_name(t->dtype),
                   vl_shape_str(t->ndim, t->shape, s, sizeof s));
  }
  if (contiguous ? !vl_is_contiguous(t) : (t->shape[1] > 1 && t->stride[1] != 1))
    return vl_fail(err, VL_ERR_SHAPE, "%s must be %s", name,
                   contiguous ? "contiguous" : "contiguous along its rows");
  return VL_OK;
}

static int64_t row_stride(const vl_tensor *t) { return t->shape[0] > 1 ? t->stride[0] : 0; }

static vl_status check_float_matrix(const vl_tensor *t, const char *name, vl_error *err) {
  if (t->ndim != 2 || !vl_dtype_is_float(t->dtype))
    return vl_fail(err, VL_ERR_DTYPE, "%s must be a 2-d f32 or f64 tensor", name);
  return VL_OK;
}

/* ---------- candidate means and the continuity loss ---------- */

static vl_status cand_setup(const vl_tensor *v, const vl_tensor *cur, const vl_tensor *cand,
                            const vl_tensor *idx, int64_t n_cos, const vl_tensor *counts,
                            cand_job *j, vl_error *err) {
  vl_status st;
  if ((st = check_float_matrix(v, "v", err)) != VL_OK) return st;
  vl_dtype dt = v->dtype;
  int64_t n = v->shape[0], d = v->shape[1];
  if ((st = check_mat(v, "v", dt, n, d, false, err)) != VL_OK) return st;
  if ((st = check_mat(cur, "current", dt, n, d, false, err)) != VL_OK) return st;
  if ((st = check_mat(cand, "candidates", dt, -1, d, false, err)) != VL_OK) return st;
  if (idx->ndim != 2 || idx->dtype != VL_I64 || idx->shape[0] != n || !vl_is_contiguous(idx))
    return vl_fail(err, VL_ERR_SHAPE, "idx must be a contiguous i64 tensor with %lld rows",
                   (long long)n);
  if (counts && (counts->ndim != 2 || counts->dtype != VL_I64 || counts->shape[0] != n ||
                 counts->shape[1] != 2 || !vl_is_contiguous(counts)))
    return vl_fail(err, VL_ERR_SHAPE, "counts must be a contiguous i64 tensor [n, 2]");
  if (n_cos < 1 || n_cos > d)
    return vl_fail(err, VL_ERR_VALUE, "n_cos = %lld must be in [1, %lld]", (long long)n_cos,
                   (long long)d);
  int64_t k = idx->shape[1], big_n = cand->shape[0];
  const int64_t *ix = (const int64_t *)idx->data;
  for (int64_t e = 0; e < n * k; e++)
    if (ix[e] < 0 || ix[e] >= big_n)
      return vl_fail(err, VL_ERR_INDEX, "candidate index %lld (row %lld) out of range for %lld "
                     "candidate rows", (long long)ix[e], (long long)(e / k), (long long)big_n);
  *j = (cand_job){v->data, cur->data, cand->data, row_stride(v), row_stride(cur),
                  row_stride(cand), ix, k, d, n_cos, NULL, NULL, NULL, NULL,
                  counts ? (int64_t *)counts->data : NULL};
  return VL_OK;
}

vl_status vl_dv_candidate_means(vl_ctx *ctx, const vl_tensor *v, const vl_tensor *cur,
                                const vl_tensor *cand, const vl_tensor *idx, int64_t n_cos,
                                const vl_tensor *plus, const vl_tensor *minus,
                                const vl_tensor *counts, vl_error *err) {
  cand_job j;
  vl_status st = cand_setup(v, cur, cand, idx, n_cos, counts, &j, err);
  if (st != VL_OK) return st;
  int64_t n = v->shape[0], d = v->shape[1];
  if ((st = check_mat(plus, "plus", v->dtype, n, d, true, err)) != VL_OK) return st;
  if ((st = check_mat(minus, "minus", v->dtype, n, d, true, err)) != VL_OK) return st;
  j.plus = plus->data;
  j.minus = minus->data;
  vl_parallel_for(ctx, n, 8, v->dtype == VL_F32 ? cand_range_f32 : cand_range_f64, &j);
  return VL_OK;
}

vl_status vl_dv_mle_forward(vl_ctx *ctx, const vl_tensor *v, const vl_tensor *cur,
                            const vl_tensor *cand, const vl_tensor *idx, int64_t n_cos,
                            const vl_tensor *ediff, const vl_tensor *counts, double *sq_plus,
                            double *sq_minus, vl_error *err) {
  cand_job j;
  vl_status st = cand_setup(v, cur, cand, idx, n_cos, counts, &j, err);
  if (st != VL_OK) return st;
  int64_t n = v->shape[0], d = v->shape[1];
  if ((st = check_mat(ediff, "ediff", v->dtype, n, d, true, err)) != VL_OK) return st;
  int nt = ctx && ctx->num_threads > 0 ? ctx->num_threads : 1;
  size_t esz = vl_dtype_size(v->dtype);
  j.scratch = malloc((size_t)nt * (size_t)(d > 0 ? d : 1) * esz);
  j.row_sq = malloc((size_t)(n > 0 ? n : 1) * 2 * sizeof(double));
  if (!j.scratch || !j.row_sq) {
    free(j.scratch);
    free(j.row_sq);
    return vl_fail(err, VL_ERR_NOMEM, "out of memory for %d scratch rows", nt);
  }
  j.plus = ediff->data;
  vl_parallel_for(ctx, n, 8, v->dtype == VL_F32 ? cand_range_f32 : cand_range_f64, &j);
  double sp = 0, sm = 0;
  for (int64_t i = 0; i < n; i++) sp += j.row_sq[2 * i], sm += j.row_sq[2 * i + 1];
  *sq_plus = sp;
  *sq_minus = sm;
  free(j.scratch);
  free(j.row_sq);
  return VL_OK;
}

vl_status vl_dv_mle_backward(vl_ctx *ctx, const vl_tensor *v, const vl_tensor *ediff,
                             double alpha, const vl_tensor *out, vl_error *err) {
  vl_status st;
  if ((st = check_float_matrix(v, "v", err)) != VL_OK) return st;
  int64_t n = v->shape[0], d = v->shape[1];
  if ((st = check_mat(v, "v", v->dtype, n, d, false, err)) != VL_OK) return st;
  if ((st = check_mat(ediff, "ediff", v->dtype, n, d, false, err)) != VL_OK) return st;
  if ((st = check_mat(out, "out", v->dtype, n, d, true, err)) != VL_OK) return st;
  mle_back_job j = {v->data, ediff->data, row_stride(v), row_stride(ediff), d, out->data, alpha};
  vl_parallel_for(ctx, n, 64, v->dtype == VL_F32 ? mle_back_range_f32 : mle_back_range_f64, &j);
  return VL_OK;
}

/* ---------- direction term ---------- */

static vl_status dir_setup(const vl_tensor *x, const vl_tensor *u, const vl_tensor *s,
                           const vl_tensor *stats, dir_job *j, vl_error *err) {
  vl_status st;
  if ((st = check_float_matrix(x, "x", err)) != VL_OK) return st;
  int64_t n = x->shape[0], g = x->shape[1];
  if ((st = check_mat(x, "x", x->dtype, n, g, false, err)) != VL_OK) return st;
  if ((st = check_mat(u, "u", x->dtype, n, g, false, err)) != VL_OK) return st;
  if ((st = check_mat(s, "s", x->dtype, n, g, false, err)) != VL_OK) return st;
  if (stats->dtype != VL_F64 || !vl_is_contiguous(stats) || vl_numel(stats) != g * 2 * VL_DV_NSTAT)
    return vl_fail(err, VL_ERR_SHAPE, "stats must be a contiguous f64 tensor of %lld entries",
                   (long long)(g * 2 * VL_DV_NSTAT));
  *j = (dir_job){x->data, u->data, s->data, row_stride(x), row_stride(u), row_stride(s), n, g,
                 NULL, (double *)stats->data, NULL, NULL, NULL, 0, false};
  return VL_OK;
}

vl_status vl_dv_direction_forward(vl_ctx *ctx, const vl_tensor *x, const vl_tensor *u,
                                  const vl_tensor *s, const vl_tensor *r, const vl_tensor *stats,
                                  vl_error *err) {
  dir_job j;
  vl_status st = dir_setup(x, u, s, stats, &j, err);
  if (st != VL_OK) return st;
  if (r->dtype != VL_F64 || !vl_is_contiguous(r) || vl_numel(r) != 2 * j.g)
    return vl_fail(err, VL_ERR_SHAPE, "r must be a contiguous f64 tensor of %lld entries",
                   (long long)(2 * j.g));
  j.r = (double *)r->data;
  j.scratch = malloc((size_t)(j.g > 0 ? j.g : 1) * 16 * sizeof(double));
  if (!j.scratch) return vl_fail(err, VL_ERR_NOMEM, "out of memory for per-gene sums");
  vl_parallel_for(ctx, j.g, 64, x->dtype == VL_F32 ? dir_forward_range_f32 : dir_forward_range_f64,
                  &j);
  free(j.scratch);
  return VL_OK;
}

vl_status vl_dv_direction_backward(vl_ctx *ctx, const vl_tensor *x, const vl_tensor *u,
                                   const vl_tensor *s, const vl_tensor *stats,
                                   const vl_tensor *w, const vl_tensor *grad, bool accumulate,
                                   vl_error *err) {
  dir_job j;
  vl_status st = dir_setup(x, u, s, stats, &j, err);
  if (st != VL_OK) return st;
  if (w->dtype != VL_F64 || !vl_is_contiguous(w) || vl_numel(w) != 2 * j.g)
    return vl_fail(err, VL_ERR_SHAPE, "w must be a contiguous f64 tensor of %lld entries",
                   (long long)(2 * j.g));
  if ((st = check_mat(grad, "grad", x->dtype, j.n, j.g, false, err)) != VL_OK) return st;
  j.w = (const double *)w->data;
  j.grad = grad->data;
  j.sg = row_stride(grad);
  j.accumulate = accumulate;
  j.scratch = malloc((size_t)(j.g > 0 ? j.g : 1) * 10 * sizeof(double));
  if (!j.scratch) return vl_fail(err, VL_ERR_NOMEM, "out of memory for per-gene coefficients");
  vl_parallel_for(ctx, j.g, 64,
                  x->dtype == VL_F32 ? dir_backward_range_f32 : dir_backward_range_f64, &j);
  free(j.scratch);
  return VL_OK;
}

/* ---------- velocity head ---------- */

static vl_status head_setup(const vl_tensor *h, const vl_tensor *u, const vl_tensor *s,
                            bool pred_unspliced, int64_t h_cols_factor, const vl_tensor *out,
                            int64_t out_cols_factor, const char *hname, const char *oname,
                            head_job *j, vl_error *err) {
  vl_status st;
  if ((st = check_float_matrix(u, "u", err)) != VL_OK) return st;
  int64_t n = u->shape[0], G = u->shape[1];
  vl_dtype dt = u->dtype;
  if ((st = check_mat(u, "u", dt, n, G, false, err)) != VL_OK) return st;
  if ((st = check_mat(s, "s", dt, n, G, false, err)) != VL_OK) return st;
  if ((st = check_mat(h, hname, dt, n, h_cols_factor * G, false, err)) != VL_OK) return st;
  if ((st = check_mat(out, oname, dt, n, out_cols_factor * G, true, err)) != VL_OK) return st;
  *j = (head_job){h->data, u->data, s->data, row_stride(h), row_stride(u), row_stride(s),
                  out_cols_factor * G, G, pred_unspliced, out->data, NULL,
                  (pred_unspliced ? 3 : 2) * G, NULL, 0, 0};
  return VL_OK;
}

static vl_status check_keep(const vl_tensor *keep, int64_t n, int64_t kg, vl_error *err) {
  if (keep->dtype != VL_BOOL || keep->ndim != 2 || keep->shape[0] != n || keep->shape[1] != kg ||
      !vl_is_contiguous(keep))
    return vl_fail(err, VL_ERR_SHAPE, "keep must be a contiguous bool tensor [%lld, %lld]",
                   (long long)n, (long long)kg);
  return VL_OK;
}

vl_status vl_dv_head_forward(vl_ctx *ctx, const vl_tensor *h, const vl_tensor *u,
                             const vl_tensor *s, bool pred_unspliced, const vl_tensor *out,
                             vl_error *err) {
  return vl_dv_head_dropout_forward(ctx, NULL, h, u, s, pred_unspliced, 0, out, NULL, err);
}

vl_status vl_dv_head_dropout_forward(vl_ctx *ctx, vl_philox *gen, const vl_tensor *h,
                                     const vl_tensor *u, const vl_tensor *s, bool pred_unspliced,
                                     double p, const vl_tensor *out, const vl_tensor *keep,
                                     vl_error *err) {
  head_job j;
  vl_status st = head_setup(h, u, s, pred_unspliced, pred_unspliced ? 3 : 2, out,
                            pred_unspliced ? 2 : 1, "h", "out", &j, err);
  if (st != VL_OK) return st;
  int64_t blocks = 0;
  if (keep) {
    if (!gen) return vl_fail(err, VL_ERR_VALUE, "a generator is needed for the dropout");
    if (!(p >= 0 && p < 1)) return vl_fail(err, VL_ERR_VALUE, "p must be in [0, 1), got %g", p);
    if (!vl_is_contiguous(h)) return vl_fail(err, VL_ERR_SHAPE, "h must be contiguous");
    if ((st = check_keep(keep, u->shape[0], j.kG, err)) != VL_OK) return st;
    j.keep = (uint8_t *)keep->data;
    j.gen = gen;
    j.base = gen->counter;
    j.p = p;
    int64_t per = h->dtype == VL_F32 ? 4 : 2;
    blocks = (vl_numel(h) + per - 1) / per;
  }
  vl_parallel_for(ctx, u->shape[0], 64, u->dtype == VL_F32 ? head_range_f32 : head_range_f64, &j);
  if (keep) gen->counter += (uint64_t)blocks;
  return VL_OK;
}

vl_status vl_dv_head_backward(vl_ctx *ctx, const vl_tensor *g, const vl_tensor *u,
                              const vl_tensor *s, bool pred_unspliced, const vl_tensor *keep,
                              double p, const vl_tensor *grad_h, vl_error *err) {
  head_job j;
  vl_status st = head_setup(g, u, s, pred_unspliced, pred_unspliced ? 2 : 1, grad_h,
                            pred_unspliced ? 3 : 2, "grad", "grad_h", &j, err);
  if (st != VL_OK) return st;
  if (keep) {
    if (!(p >= 0 && p < 1)) return vl_fail(err, VL_ERR_VALUE, "p must be in [0, 1), got %g", p);
    if ((st = check_keep(keep, u->shape[0], j.kG, err)) != VL_OK) return st;
    j.keep = (uint8_t *)keep->data;
    j.p = p;
  }
  vl_parallel_for(ctx, u->shape[0], 64,
                  u->dtype == VL_F32 ? head_back_range_f32 : head_back_range_f64, &j);
  return VL_OK;
}
