/* Reductions (see ops_reduce.h). Two kernels: along a contiguous run (inner == 1) with
 * unrolled partial sums, and across rows (inner > 1) accumulating whole rows. Floating sums
 * accumulate in double. */
#include "ops_reduce.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 16384 /* elements per partial result in long reductions */

const char *vl_reduce_name(vl_reduce_op op) {
  static const char *n[] = {"sum", "prod", "max", "min", "any", "all"};
  return op < VL_REDUCE_COUNT ? n[op] : "?";
}

vl_dtype vl_reduce_out_dtype(vl_reduce_op op, vl_dtype dt) {
  if (op == VL_ANY || op == VL_ALL) return VL_BOOL;
  if ((op == VL_SUM || op == VL_PROD) && dt == VL_BOOL) return VL_I64;
  return dt;
}

/* Accumulator: double for floats, int64 for integers/bools. Each partial carries the value,
 * and for max/min the index of the extreme and whether it is NaN. */
typedef struct {
  double f;
  int64_t i;
  int64_t idx;
} acc;

static double elem_f(const char *p, vl_dtype dt) {
  switch (dt) {
    case VL_F32: return *(const float *)p;
    case VL_F64: return *(const double *)p;
    case VL_I64: return (double)*(const int64_t *)p;
    default: return *(const uint8_t *)p;
  }
}

static int64_t elem_i(const char *p, vl_dtype dt) {
  switch (dt) {
    case VL_I64: return *(const int64_t *)p;
    case VL_BOOL: return *(const uint8_t *)p;
    case VL_F32: return (int64_t)*(const float *)p;
    default: return (int64_t) * (const double *)p;
  }
}

static acc acc_init(vl_reduce_op op) {
  acc a = {0, 0, -1};
  if (op == VL_PROD || op == VL_ALL) {
    a.f = 1;
    a.i = 1;
  }
  return a;
}

/* Reduces n elements spaced `step` bytes apart starting at p; positions start at pos0. */
static acc reduce_run(vl_reduce_op op, vl_dtype dt, const char *p, int64_t n, int64_t step,
                      int64_t pos0) {
  acc a = acc_init(op);
  bool fl = vl_dtype_is_float(dt);
  switch (op) {
    case VL_SUM:
      if (dt == VL_F32 && step == 4) {
        const float *x = (const float *)p;
        double s[8] = {0};
        int64_t i = 0;
        for (; i + 8 <= n; i += 8)
          for (int k = 0; k < 8; k++) s[k] += x[i + k];
        for (; i < n; i++) s[0] += x[i];
        a.f = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
      } else if (dt == VL_F64 && step == 8) {
        const double *x = (const double *)p;
        double s[8] = {0};
        int64_t i = 0;
        for (; i + 8 <= n; i += 8)
          for (int k = 0; k < 8; k++) s[k] += x[i + k];
        for (; i < n; i++) s[0] += x[i];
        a.f = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
      } else if (fl) {
        for (int64_t i = 0; i < n; i++) a.f += elem_f(p + i * step, dt);
      } else {
        uint64_t s = 0;
        for (int64_t i = 0; i < n; i++) s += (uint64_t)elem_i(p + i * step, dt);
        a.i = (int64_t)s;
      }
      break;
    case VL_PROD:
      if (fl) for (int64_t i = 0; i < n; i++) a.f *= elem_f(p + i * step, dt);
      else {
        uint64_t s = 1;
        for (int64_t i = 0; i < n; i++) s *= (uint64_t)elem_i(p + i * step, dt);
        a.i = (int64_t)s;
      }
      break;
    case VL_MAX:
    case VL_MIN: {
      bool mx = op == VL_MAX;
      if (n == 0) break;
      if (fl) {
        double best = elem_f(p, dt);
        int64_t bi = 0;
        if (!isnan(best)) {
          for (int64_t i = 1; i < n; i++) {
            double v = elem_f(p + i * step, dt);
            if (isnan(v)) { best = v; bi = i; break; }
            if (mx ? v > best : v < best) { best = v; bi = i; }
          }
        }
        a.f = best;
        a.idx = pos0 + bi;
      } else {
        int64_t best = elem_i(p, dt), bi = 0;
        for (int64_t i = 1; i < n; i++) {
          int64_t v = elem_i(p + i * step, dt);
          if (mx ? v > best : v < best) { best = v; bi = i; }
        }
        a.i = best;
        a.idx = pos0 + bi;
      }
      break;
    }
    case VL_ANY:
      for (int64_t i = 0; i < n && !a.i; i++) a.i = elem_f(p + i * step, dt) != 0;
      break;
    case VL_ALL:
      for (int64_t i = 0; i < n && a.i; i++) a.i = elem_f(p + i * step, dt) != 0;
      break;
    default: break;
  }
  return a;
}

/* Combines partial b (later positions) into a. */
static void acc_merge(vl_reduce_op op, bool fl, acc *a, const acc *b) {
  switch (op) {
    case VL_SUM: if (fl) a->f += b->f; else a->i = (int64_t)((uint64_t)a->i + (uint64_t)b->i); break;
    case VL_PROD: if (fl) a->f *= b->f; else a->i = (int64_t)((uint64_t)a->i * (uint64_t)b->i); break;
    case VL_MAX:
    case VL_MIN: {
      if (b->idx < 0) break;
      if (a->idx < 0) { *a = *b; break; }
      bool mx = op == VL_MAX;
      if (fl) {
        if (isnan(a->f)) break;
        if (isnan(b->f) || (mx ? b->f > a->f : b->f < a->f)) *a = *b;
      } else if (mx ? b->i > a->i : b->i < a->i) {
        *a = *b;
      }
      break;
    }
    case VL_ANY: a->i = a->i || b->i; break;
    case VL_ALL: a->i = a->i && b->i; break;
    default: break;
  }
}

static void store(vl_reduce_op op, const vl_tensor *values, const vl_tensor *indices, int64_t k,
                  const acc *a, bool fl) {
  if (values) {
    char *p = values->data + k * (int64_t)vl_dtype_size(values->dtype);
    switch (values->dtype) {
      case VL_F32: *(float *)p = (float)a->f; break;
      case VL_F64: *(double *)p = a->f; break;
      case VL_I64: *(int64_t *)p = fl ? (int64_t)a->f : a->i; break;
      case VL_BOOL: *(uint8_t *)p = (uint8_t)(a->i != 0); break;
      default: break;
    }
  }
  if (indices) ((int64_t *)indices->data)[k] = a->idx;
}

typedef struct {
  vl_reduce_op op;
  const vl_tensor *x, *values, *indices;
  int64_t outer, r, inner;
  size_t esz;
  acc *partials;
} job;

/* inner == 1, many outputs: one output per item */
static void rows_task(int64_t lo, int64_t hi, int chunk, void *vp) {
  const job *j = vp;
  bool fl = vl_dtype_is_float(j->x->dtype);
  for (int64_t o = lo; o < hi; o++) {
    const char *p = j->x->data + o * j->r * (int64_t)j->esz;
    acc a = acc_init(j->op);
    for (int64_t b = 0; b < j->r; b += BLOCK) {
      int64_t n = j->r - b < BLOCK ? j->r - b : BLOCK;
      acc part = reduce_run(j->op, j->x->dtype, p + b * (int64_t)j->esz, n, (int64_t)j->esz, b);
      if (b == 0) a = part;
      else acc_merge(j->op, fl, &a, &part);
    }
    store(j->op, j->values, j->indices, o, &a, fl);
  }
}

/* a single long run split into fixed blocks: one partial per block */
static void block_task(int64_t lo, int64_t hi, int chunk, void *vp) {
  const job *j = vp;
  j->partials[chunk] = reduce_run(j->op, j->x->dtype, j->x->data + lo * (int64_t)j->esz, hi - lo,
                                  (int64_t)j->esz, lo);
}

/* inner > 1: each item is a (outer index, column range) pair; accumulate rows over r */
#define COLS 256
static void cols_task(int64_t lo, int64_t hi, int chunk, void *vp) {
  const job *j = vp;
  bool fl = vl_dtype_is_float(j->x->dtype);
  int64_t nchunks = (j->inner + COLS - 1) / COLS;
  acc a[COLS];
  for (int64_t item = lo; item < hi; item++) {
    int64_t o = item / nchunks, c0 = (item % nchunks) * COLS;
    int64_t nc = j->inner - c0 < COLS ? j->inner - c0 : COLS;
    const char *base = j->x->data + (o * j->r * j->inner + c0) * (int64_t)j->esz;
    if (j->op == VL_SUM && (j->x->dtype == VL_F32 || j->x->dtype == VL_F64)) {
      double s[COLS];
      memset(s, 0, sizeof(double) * (size_t)nc);
      for (int64_t k = 0; k < j->r; k++) {
        const char *row = base + k * j->inner * (int64_t)j->esz;
        if (j->x->dtype == VL_F32) {
          const float *x = (const float *)row;
          for (int64_t c = 0; c < nc; c++) s[c] += x[c];
        } else {
          const double *x = (const double *)row;
          for (int64_t c = 0; c < nc; c++) s[c] += x[c];
        }
      }
      for (int64_t c = 0; c < nc; c++) {
        acc t = {s[c], 0, -1};
        store(j->op, j->values, j->indices, o * j->inner + c0 + c, &t, fl);
      }
      continue;
    }
    for (int64_t c = 0; c < nc; c++) a[c] = acc_init(j->op);
    for (int64_t k = 0; k < j->r; k++) {
      const char *row = base + k * j->inner * (int64_t)j->esz;
      for (int64_t c = 0; c < nc; c++) {
        acc one = reduce_run(j->op, j->x->dtype, row + c * (int64_t)j->esz, 1, 0, k);
        if (k == 0) a[c] = one;
        else acc_merge(j->op, fl, &a[c], &one);
      }
    }
    for (int64_t c = 0; c < nc; c++) store(j->op, j->values, j->indices, o * j->inner + c0 + c, &a[c], fl);
  }
}

vl_status vl_reduce(vl_ctx *ctx, vl_reduce_op op, const vl_tensor *x, int64_t outer, int64_t r,
                    int64_t inner, const vl_tensor *values, const vl_tensor *indices,
                    vl_error *err) {
  const char *name = vl_reduce_name(op);
  if (op >= VL_REDUCE_COUNT) return vl_fail(err, VL_ERR_VALUE, "unknown reduction %d", (int)op);
  if (!vl_is_contiguous(x)) return vl_fail(err, VL_ERR_VALUE, "%s: input must be contiguous", name);
  if (outer * r * inner != vl_numel(x))
    return vl_fail(err, VL_ERR_SHAPE, "%s: [outer, r, inner] does not match the input", name);
  if (values && (!vl_is_contiguous(values) || vl_numel(values) != outer * inner ||
                 values->dtype != vl_reduce_out_dtype(op, x->dtype)))
    return vl_fail(err, VL_ERR_SHAPE, "%s: values output has the wrong size or dtype", name);
  if (indices && (op != VL_MAX && op != VL_MIN))
    return vl_fail(err, VL_ERR_VALUE, "%s: indices are only produced by max and min", name);
  if (indices && (indices->dtype != VL_I64 || !vl_is_contiguous(indices) ||
                  vl_numel(indices) != outer * inner))
    return vl_fail(err, VL_ERR_SHAPE, "%s: indices output has the wrong size or dtype", name);
  if ((op == VL_MAX || op == VL_MIN) && r == 0 && outer * inner > 0)
    return vl_fail(err, VL_ERR_SHAPE, "%s: cannot reduce over a dim of size 0", name);
  if (outer * inner == 0) return VL_OK;
  job j = {op, x, values, indices, outer, r, inner, vl_dtype_size(x->dtype), NULL};
  bool fl = vl_dtype_is_float(x->dtype);
  if (inner > 1) {
    int64_t items = outer * ((inner + COLS - 1) / COLS);
    int64_t grain = r * COLS > 0 ? 1 + 32768 / (r * COLS) : 1;
    vl_parallel_for(ctx, items, grain, cols_task, &j);
  } else if (outer >= 2 * (ctx ? ctx->num_threads : 1) || r < 4 * BLOCK) {
    int64_t grain = 1 + 32768 / (r > 0 ? r : 1);
    vl_parallel_for(ctx, outer, grain, rows_task, &j);
  } else {
    /* few long rows: split each row into fixed blocks (thread-count independent) */
    int64_t nblocks = (r + BLOCK - 1) / BLOCK;
    j.partials = malloc(sizeof(acc) * (size_t)nblocks);
    if (!j.partials) return vl_fail(err, VL_ERR_NOMEM, "%s: out of memory", name);
    for (int64_t o = 0; o < outer; o++) {
      vl_tensor row = *x;
      row.data = x->data + o * r * (int64_t)j.esz;
      j.x = &row;
      vl_parallel_blocks(ctx, r, BLOCK, block_task, &j);
      acc a = j.partials[0];
      for (int64_t b = 1; b < nblocks; b++) acc_merge(op, fl, &a, &j.partials[b]);
      store(op, values, indices, o, &a, fl);
    }
    free(j.partials);
  }
  return VL_OK;
}
