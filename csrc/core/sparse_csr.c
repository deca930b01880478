/* CSR kernels. Row-parallel kernels split the rows into ranges of about equal work (one unit
 * per row plus one per stored entry), so a few dense rows do not leave threads idle; each row
 * is computed by one thread in a fixed order, so results never depend on the split. */
#include "sparse_csr.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

vl_status vl_csr_validate(const vl_csr *a, vl_error *err) {
  if (a->nrows < 0 || a->ncols < 0 || a->nnz < 0)
    return vl_fail(err, VL_ERR_VALUE, "negative size (nrows %" PRId64 ", ncols %" PRId64
                   ", nnz %" PRId64 ")", a->nrows, a->ncols, a->nnz);
  if (a->dtype != VL_F32 && a->dtype != VL_F64)
    return vl_fail(err, VL_ERR_DTYPE, "values must be f32 or f64, got %s",
                   vl_dtype_name(a->dtype));
  const int64_t *ip = a->indptr, *ix = a->indices;
  if (ip[0] != 0)
    return vl_fail(err, VL_ERR_VALUE, "indptr[0] = %" PRId64 ", expected 0 (0-based positions)",
                   ip[0]);
  for (int64_t i = 0; i < a->nrows; i++)
    if (ip[i + 1] < ip[i])
      return vl_fail(err, VL_ERR_VALUE, "indptr decreases at 0-based position %" PRId64
                     ": indptr[%" PRId64 "] = %" PRId64 " < indptr[%" PRId64 "] = %" PRId64,
                     i + 1, i + 1, ip[i + 1], i, ip[i]);
  if (ip[a->nrows] != a->nnz)
    return vl_fail(err, VL_ERR_VALUE, "indptr[%" PRId64 "] = %" PRId64 " (the last entry) must "
                   "equal the number of stored entries %" PRId64, a->nrows, ip[a->nrows], a->nnz);
  for (int64_t i = 0; i < a->nrows; i++)
    for (int64_t p = ip[i]; p < ip[i + 1]; p++)
      if (ix[p] < 0 || ix[p] >= a->ncols)
        return vl_fail(err, VL_ERR_INDEX, "indices[%" PRId64 "] = %" PRId64 " (row %" PRId64
                       ") is out of range [0, %" PRId64 ") (0-based positions)", p, ix[p], i,
                       a->ncols);
  return VL_OK;
}

/* ---------- row-parallel kernels ---------- */

typedef enum { OP_SPMM, OP_TO_DENSE } row_op;

typedef struct {
  row_op op;
  const vl_csr *a;
  const vl_tensor *b, *out;
  int64_t k, bs0, bs1, os0, os1;
  int64_t ntasks;
} row_job;

/* First row of task t of ntasks: the first row r with indptr[r] + r >= t * total / ntasks. */
static int64_t task_start(const vl_csr *a, int64_t t, int64_t ntasks) {
  if (t <= 0) return 0;
  if (t >= ntasks) return a->nrows;
  int64_t total = a->nnz + a->nrows;
  int64_t target = total / ntasks * t + total % ntasks * t / ntasks;
  int64_t lo = 0, hi = a->nrows;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (a->indptr[mid] + mid < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* out[i, :] = sum over p in row i of values[p] * b[indices[p], :]. The contiguous case is an
 * axpy over k that the compiler vectorises; k == 1 (sparse x vector) accumulates in a register
 * in the same order, so it gives the same bits as the general loops. */
#define SPMM_ROWS(T, NAME)                                                                   \
  static void NAME(const row_job *j, int64_t r0, int64_t r1) {                               \
    const int64_t *ip = j->a->indptr, *ix = j->a->indices;                                   \
    const T *val = (const T *)j->a->values, *B = (const T *)j->b->data;                      \
    T *O = (T *)j->out->data;                                                                \
    const int64_t k = j->k, bs0 = j->bs0, bs1 = j->bs1, os0 = j->os0, os1 = j->os1;          \
    for (int64_t i = r0; i < r1; i++) {                                                      \
      T *restrict o = O + i * os0;                                                           \
      if (k == 1) {                                                                          \
        T s = 0;                                                                             \
        for (int64_t p = ip[i]; p < ip[i + 1]; p++) s += val[p] * B[ix[p] * bs0];            \
        o[0] = s;                                                                            \
      } else if (bs1 == 1 && os1 == 1) {                                                     \
        for (int64_t c = 0; c < k; c++) o[c] = 0;                                            \
        for (int64_t p = ip[i]; p < ip[i + 1]; p++) {                                        \
          const T v = val[p];                                                                \
          const T *restrict b = B + ix[p] * bs0;                                             \
          for (int64_t c = 0; c < k; c++) o[c] += v * b[c];                                  \
        }                                                                                    \
      } else {                                                                               \
        for (int64_t c = 0; c < k; c++) o[c * os1] = 0;                                      \
        for (int64_t p = ip[i]; p < ip[i + 1]; p++) {                                        \
          const T v = val[p];                                                                \
          const T *b = B + ix[p] * bs0;                                                      \
          for (int64_t c = 0; c < k; c++) o[c * os1] += v * b[c * bs1];                      \
        }                                                                                    \
      }                                                                                      \
    }                                                                                        \
  }

#define TO_DENSE_ROWS(T, NAME)                                                               \
  static void NAME(const row_job *j, int64_t r0, int64_t r1) {                               \
    const int64_t *ip = j->a->indptr, *ix = j->a->indices;                                   \
    const T *val = (const T *)j->a->values;                                                  \
    T *O = (T *)j->out->data;                                                                \
    for (int64_t i = r0; i < r1; i++)                                                        \
      for (int64_t p = ip[i]; p < ip[i + 1]; p++) O[i * j->os0 + ix[p] * j->os1] += val[p];  \
  }

SPMM_ROWS(float, spmm_f32)
SPMM_ROWS(double, spmm_f64)
TO_DENSE_ROWS(float, to_dense_f32)
TO_DENSE_ROWS(double, to_dense_f64)

static void run_tasks(int64_t lo, int64_t hi, int chunk, void *arg) {
  const row_job *j = arg;
  int64_t r0 = task_start(j->a, lo, j->ntasks), r1 = task_start(j->a, hi, j->ntasks);
  bool f32 = j->a->dtype == VL_F32;
  if (j->op == OP_SPMM) (f32 ? spmm_f32 : spmm_f64)(j, r0, r1);
  else (f32 ? to_dense_f32 : to_dense_f64)(j, r0, r1);
}

bool vl_bfs_order(int64_t n, const int64_t *indptr, const int64_t *indices, int64_t *order) {
  char *seen = calloc((size_t)(n > 0 ? n : 1), 1);
  if (!seen) return false;
  int64_t head = 0, tail = 0;
  for (int64_t s0 = 0; s0 < n; s0++) {
    if (seen[s0]) continue;
    seen[s0] = 1;
    order[tail++] = s0;
    while (head < tail) {
      int64_t i = order[head++];
      for (int64_t p = indptr[i]; p < indptr[i + 1]; p++) {
        int64_t c = indices[p];
        if (!seen[c]) { seen[c] = 1; order[tail++] = c; }
      }
    }
  }
  free(seen);
  return true;
}

/* Rows visited breadth-first over the pattern of a square matrix (a kNN graph): rows handled
 * one after the other then share most of the dense rows they read, which stay in cache. Each
 * output row is still computed on its own, so the result does not change. */
typedef struct {
  const row_job *j;
  const int64_t *order;
} ordered_job;

static void run_ordered(int64_t lo, int64_t hi, int chunk, void *arg) {
  (void)chunk;
  const ordered_job *oj = arg;
  bool f32 = oj->j->a->dtype == VL_F32;
  for (int64_t q = lo; q < hi; q++) {
    int64_t i = oj->order[q];
    (f32 ? spmm_f32 : spmm_f64)(oj->j, i, i + 1);
  }
}

static bool run_rows_bfs(vl_ctx *ctx, row_job *j) {
  const vl_csr *a = j->a;
  int64_t n = a->nrows;
  if (a->ncols != n || n < 1024 || j->k < 32) return false;
  int64_t *order = malloc((size_t)n * sizeof *order);
  if (!order || !vl_bfs_order(n, a->indptr, a->indices, order)) { free(order); return false; }
  ordered_job oj = {j, order};
  (void)vl_parallel_blocks(ctx, n, 64, run_ordered, &oj); /* the binding raises when interrupted */
  free(order);
  return true;
}

static void run_rows(vl_ctx *ctx, row_job *j) {
  if (j->op == OP_SPMM && run_rows_bfs(ctx, j)) return;
  /* below ~32k multiply-adds a thread hand-off costs more than it saves */
  double work = (double)(j->a->nnz + j->a->nrows) * (double)(j->k > 0 ? j->k : 1);
  j->ntasks = (ctx && work >= 32768.0) ? ctx->num_threads : 1;
  if (j->ntasks > j->a->nrows) j->ntasks = j->a->nrows;
  vl_parallel_for(ctx, j->ntasks, 1, run_tasks, j);
}

vl_status vl_csr_spmm(vl_ctx *ctx, const vl_csr *a, const vl_tensor *b, const vl_tensor *out,
                      vl_error *err) {
  if (b->ndim != 1 && b->ndim != 2)
    return vl_fail(err, VL_ERR_SHAPE, "dense operand must be 1-d or 2-d, got %d-d", b->ndim);
  if (out->ndim != b->ndim)
    return vl_fail(err, VL_ERR_SHAPE, "output must be %d-d like the dense operand, got %d-d",
                   b->ndim, out->ndim);
  int64_t k = b->ndim == 2 ? b->shape[1] : 1;
  if (b->shape[0] != a->ncols) {
    char s1[64], s2[64];
    int64_t as[2] = {a->nrows, a->ncols};
    return vl_fail(err, VL_ERR_SHAPE, "shapes %s and %s do not match (dim 2 of a vs dim 1 of b)",
                   vl_shape_str(2, as, s1, sizeof s1), vl_shape_str(b->ndim, b->shape, s2, sizeof s2));
  }
  if (out->shape[0] != a->nrows || (out->ndim == 2 && out->shape[1] != k)) {
    char s1[64];
    return vl_fail(err, VL_ERR_SHAPE, "output shape %s, expected {%" PRId64 ",%" PRId64 "}",
                   vl_shape_str(out->ndim, out->shape, s1, sizeof s1), a->nrows, k);
  }
  if (b->dtype != a->dtype || out->dtype != a->dtype)
    return vl_fail(err, VL_ERR_DTYPE, "dtypes differ: values %s, dense %s, output %s",
                   vl_dtype_name(a->dtype), vl_dtype_name(b->dtype), vl_dtype_name(out->dtype));
  row_job j = {OP_SPMM, a, b, out, k, b->stride[0], b->ndim == 2 ? b->stride[1] : 1,
               out->stride[0], out->ndim == 2 ? out->stride[1] : 1, 1};
  if (k > 0) run_rows(ctx, &j);
  return VL_OK;
}

vl_status vl_csr_to_dense(vl_ctx *ctx, const vl_csr *a, const vl_tensor *out, vl_error *err) {
  if (out->ndim != 2 || out->shape[0] != a->nrows || out->shape[1] != a->ncols) {
    char s1[64];
    return vl_fail(err, VL_ERR_SHAPE, "output shape %s, expected {%" PRId64 ",%" PRId64 "}",
                   vl_shape_str(out->ndim, out->shape, s1, sizeof s1), a->nrows, a->ncols);
  }
  if (out->dtype != a->dtype)
    return vl_fail(err, VL_ERR_DTYPE, "output dtype %s differs from the values' %s",
                   vl_dtype_name(out->dtype), vl_dtype_name(a->dtype));
  row_job j = {OP_TO_DENSE, a, NULL, out, 1, 0, 0, out->stride[0], out->stride[1], 1};
  run_rows(ctx, &j);
  return VL_OK;
}

/* ---------- serial conversions (O(nnz + rows + cols), memory-bound) ---------- */

vl_status vl_csr_transpose(const vl_csr *a, int64_t *tp, int64_t *ti, void *tv, vl_error *err) {
  const int64_t *ip = a->indptr, *ix = a->indices;
  const int64_t nc = a->ncols;
  /* count entries per column into tp[c + 1]; prefix sums make tp[c] the start of column c */
  memset(tp, 0, sizeof(int64_t) * (size_t)(nc + 1));
  for (int64_t p = 0; p < a->nnz; p++) tp[ix[p] + 1]++;
  for (int64_t c = 0; c < nc; c++) tp[c + 1] += tp[c];
  /* place row by row, using tp[c] as the cursor of column c: rows arrive in increasing order */
  for (int64_t i = 0; i < a->nrows; i++)
    for (int64_t p = ip[i]; p < ip[i + 1]; p++) {
      int64_t q = tp[ix[p]]++;
      ti[q] = i;
      if (a->dtype == VL_F32) ((float *)tv)[q] = ((const float *)a->values)[p];
      else ((double *)tv)[q] = ((const double *)a->values)[p];
    }
  /* each cursor now holds the end of its column, i.e. the start of the next */
  memmove(tp + 1, tp, sizeof(int64_t) * (size_t)nc);
  tp[0] = 0;
  (void)err;
  return VL_OK;
}

vl_status vl_csr_from_dense(const vl_tensor *d, int64_t *indptr, int64_t *indices, void *values,
                            vl_error *err) {
  if (d->ndim != 2)
    return vl_fail(err, VL_ERR_SHAPE, "dense matrix must be 2-d, got %d-d", d->ndim);
  if (d->dtype != VL_F32 && d->dtype != VL_F64)
    return vl_fail(err, VL_ERR_DTYPE, "dense matrix must be f32 or f64, got %s",
                   vl_dtype_name(d->dtype));
  const bool f32 = d->dtype == VL_F32;
  int64_t n = 0;
  indptr[0] = 0;
  for (int64_t i = 0; i < d->shape[0]; i++) {
    for (int64_t c = 0; c < d->shape[1]; c++) {
      int64_t off = i * d->stride[0] + c * d->stride[1];
      double x = f32 ? ((const float *)d->data)[off] : ((const double *)d->data)[off];
      if (x == 0) continue;
      if (indices) {
        indices[n] = c;
        if (f32) ((float *)values)[n] = (float)x;
        else ((double *)values)[n] = x;
      }
      n++;
    }
    indptr[i + 1] = n;
  }
  return VL_OK;
}
