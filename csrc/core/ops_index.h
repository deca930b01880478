/* Indexing kernels: index_select / index_add along a dim with a list of 0-based positions,
 * and gather / scatter_add with an index tensor of the same rank (as in PyTorch). */
#ifndef VELUA_OPS_INDEX_H
#define VELUA_OPS_INDEX_H

#include "parallel.h"
#include "tensor.h"

/* out = x with dim reduced to positions idx[0..n); out's dim has size n. idx already checked
 * to lie in [0, x->shape[dim]). */
vl_status vl_index_select(vl_ctx *ctx, const vl_tensor *x, int dim, const int64_t *idx, int64_t n,
                          const vl_tensor *out, vl_error *err);
/* dst[..., idx[i], ...] += src[..., i, ...] along dim, in order i = 0..n-1 (duplicates add). */
vl_status vl_index_add(vl_ctx *ctx, const vl_tensor *dst, int dim, const int64_t *idx, int64_t n,
                       const vl_tensor *src, vl_error *err);
/* out[p] = x[p with coordinate dim replaced by index[p]]; index i64 with out's shape,
 * entries 0-based and checked here. */
vl_status vl_gather(const vl_tensor *x, int dim, const vl_tensor *index, const vl_tensor *out,
                    vl_error *err);
/* dst[p with coordinate dim replaced by index[p]] += src[p] for every p of index's shape. */
vl_status vl_scatter_add(const vl_tensor *dst, int dim, const vl_tensor *index,
                         const vl_tensor *src, vl_error *err);

#endif
