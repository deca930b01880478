/* A small blocking thread pool (workers sleep on a condition variable; nothing spins) and the
 * execution context every core kernel receives. One context per Lua state: no C globals. */
#ifndef VELUA_PARALLEL_H
#define VELUA_PARALLEL_H

#include <signal.h>
#include <stdint.h>

#include "status.h"

typedef struct vl_pool vl_pool;

typedef struct {
  vl_pool *pool;    /* NULL: run everything on the calling thread */
  int num_threads;  /* threads used by parallel loops, >= 1 */
  /* Set to non-zero (by whoever owns it, e.g. a signal handler) to ask long kernels to stop;
   * NULL: never. The core only reads it. */
  const volatile sig_atomic_t *interrupt;
} vl_ctx;

/* Has the owner of ctx asked long work to stop? Kernels may poll this between steps. */
static inline int vl_ctx_interrupted(const vl_ctx *ctx) {
  return ctx && ctx->interrupt && *ctx->interrupt;
}

/* Body of a parallel loop: handles the half-open range [lo, hi); `chunk` numbers the range. */
typedef void (*vl_range_fn)(int64_t lo, int64_t hi, int chunk, void *arg);

/* Starts a pool able to run loops on up to max_threads threads (max_threads - 1 workers). */
vl_status vl_pool_create(int max_threads, vl_pool **out, vl_error *err);
/* Stops and joins the workers; safe on NULL. */
void vl_pool_destroy(vl_pool *pool);
int vl_pool_capacity(const vl_pool *pool);

/* Sets the thread count of ctx, clamped to [1, pool capacity]; returns the count in force. */
int vl_ctx_set_threads(vl_ctx *ctx, int n);

/* Splits [0, n) into at most ctx->num_threads contiguous ranges of at least `grain` items and
 * runs fn on each, the first on the calling thread. Runs serially when nested or when small.
 * Always runs every range, also when interrupted: there are only as many ranges as threads (all
 * start at once), and callers may rely on the whole output in the serial code that follows. */
void vl_parallel_for(vl_ctx *ctx, int64_t n, int64_t grain, vl_range_fn fn, void *arg);

/* Runs fn once per fixed block of `block` items ([k*block, min(n, (k+1)*block)), chunk = k),
 * spreading blocks over threads. The blocks do not depend on the thread count, so per-block
 * partial results combined in block order are reproducible on any number of threads.
 * Polls ctx->interrupt before each block: once it is set no further block starts (running ones
 * finish) and VL_ERR_INTERRUPTED is returned; the skipped blocks' outputs are left unwritten,
 * so callers must treat everything computed as incomplete (the Lua binding raises
 * "interrupted" and drops the results). VL_OK otherwise. */
vl_status vl_parallel_blocks(vl_ctx *ctx, int64_t n, int64_t block, vl_range_fn fn, void *arg);

#endif
