/* The one place that iterates strided memory. Operands share one shape (broadcast beforehand
 * with vl_broadcast_to); the loop merges dims that are contiguous for every operand and calls
 * an inner function on runs along the last remaining dim, in parallel over element ranges. */
#ifndef VELUA_STRIDED_LOOP_H
#define VELUA_STRIDED_LOOP_H

#include "parallel.h"
#include "tensor.h"

#define VL_LOOP_MAX_OPS 4
#define VL_LOOP_GRAIN 524288 /* elements per thread below which a loop runs serially: smaller
                                * loops lose more to waking a worker (and to OpenBLAS's spinning
                                * idle threads on 2 cores) than they gain */

/* Called on a run of n elements: ptrs[k] is operand k's first element, strides[k] its step in
 * bytes (0 for a broadcast operand). */
typedef void (*vl_inner_fn)(char **ptrs, const int64_t *strides, int64_t n, void *arg);

/* Runs fn over every element of ops[0..nops) (all of the same shape). Operand 0 is usually the
 * output. Element order within a run is increasing; runs never overlap between threads as long
 * as operand 0 has no zero strides. */
void vl_loop(vl_ctx *ctx, int nops, const vl_tensor *const *ops, vl_inner_fn fn, void *arg);

#endif
