/* Strided n-ary iteration (see strided_loop.h). */
#include "strided_loop.h"

#include <string.h>

typedef struct {
  int nops, ndim;
  int64_t shape[VL_MAX_DIMS];
  int64_t strides[VL_LOOP_MAX_OPS][VL_MAX_DIMS]; /* bytes */
  char *base[VL_LOOP_MAX_OPS];
  vl_inner_fn fn;
  void *arg;
} loop_plan;

static void run_range(int64_t lo, int64_t hi, int chunk, void *vp) {
  (void)chunk;
  const loop_plan *p = vp;
  int nd = p->ndim, last = nd - 1;
  int64_t idx[VL_MAX_DIMS];
  int64_t rem = lo;
  for (int d = last; d >= 0; d--) {
    idx[d] = rem % p->shape[d];
    rem /= p->shape[d];
  }
  char *ptr[VL_LOOP_MAX_OPS];
  int64_t inner_stride[VL_LOOP_MAX_OPS];
  for (int k = 0; k < p->nops; k++) {
    int64_t off = 0;
    for (int d = 0; d < nd; d++) off += idx[d] * p->strides[k][d];
    ptr[k] = p->base[k] + off;
    inner_stride[k] = p->strides[k][last];
  }
  int64_t pos = lo;
  while (pos < hi) {
    int64_t run = p->shape[last] - idx[last];
    if (run > hi - pos) run = hi - pos;
    p->fn(ptr, inner_stride, run, p->arg);
    pos += run;
    if (pos >= hi) break;
    /* advance the multi-index by `run` along the last dim, carrying into outer dims */
    for (int k = 0; k < p->nops; k++) ptr[k] += run * inner_stride[k];
    idx[last] += run;
    for (int d = last; d > 0 && idx[d] == p->shape[d]; d--) {
      idx[d] = 0;
      idx[d - 1]++;
      for (int k = 0; k < p->nops; k++)
        ptr[k] += p->strides[k][d - 1] - p->shape[d] * p->strides[k][d];
    }
  }
}

void vl_loop(vl_ctx *ctx, int nops, const vl_tensor *const *ops, vl_inner_fn fn, void *arg) {
  loop_plan p;
  memset(&p, 0, sizeof p);
  p.nops = nops;
  p.fn = fn;
  p.arg = arg;
  const vl_tensor *t0 = ops[0];
  int64_t n = vl_numel(t0);
  if (n == 0) return;
  /* drop size-1 dims, then merge dims contiguous for every operand */
  int nd = 0;
  for (int d = 0; d < t0->ndim; d++) {
    if (t0->shape[d] == 1) continue;
    p.shape[nd] = t0->shape[d];
    for (int k = 0; k < nops; k++)
      p.strides[k][nd] = ops[k]->stride[d] * (int64_t)vl_dtype_size(ops[k]->dtype);
    nd++;
  }
  if (nd == 0) {
    p.shape[0] = 1;
    for (int k = 0; k < nops; k++) p.strides[k][0] = 0;
    nd = 1;
  }
  int m = 0;
  for (int d = 1; d < nd; d++) {
    bool mergeable = true;
    for (int k = 0; k < nops && mergeable; k++)
      mergeable = p.strides[k][m] == p.strides[k][d] * p.shape[d];
    if (mergeable) {
      p.shape[m] *= p.shape[d];
      for (int k = 0; k < nops; k++) p.strides[k][m] = p.strides[k][d];
    } else {
      m++;
      p.shape[m] = p.shape[d];
      for (int k = 0; k < nops; k++) p.strides[k][m] = p.strides[k][d];
    }
  }
  p.ndim = m + 1;
  for (int k = 0; k < nops; k++) p.base[k] = ops[k]->data;
  vl_parallel_for(ctx, n, VL_LOOP_GRAIN, run_range, &p);
}
