/* Blocking thread pool for the core's parallel loops (see parallel.h). */
#include "parallel.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct vl_pool {
  int capacity;           /* threads including the caller */
  int nworkers;
  pthread_t *workers;
  pthread_mutex_t mu;
  pthread_cond_t work_cv; /* workers wait here for a new job */
  pthread_cond_t done_cv; /* the caller waits here for the job to finish */
  uint64_t generation;    /* bumped per job */
  bool stop;
  bool busy;              /* a job is in flight: nested loops run serially */
  /* the current job */
  vl_range_fn fn;
  void *arg;
  int64_t n, per;         /* range length and items per task */
  int ntasks;
  int next_task;          /* next task to claim */
  int pending;            /* tasks not yet finished */
  const volatile sig_atomic_t *halt; /* non-NULL: no task starts once *halt is set */
  bool skipped;           /* some tasks were not run because of *halt */
};

static void run_tasks(vl_pool *p) {
  /* called with p->mu held; returns with it held */
  while (p->next_task < p->ntasks) {
    if (p->halt && *p->halt) {
      /* interrupted: the unclaimed tasks count as done without running */
      p->pending -= p->ntasks - p->next_task;
      p->next_task = p->ntasks;
      p->skipped = true;
      if (p->pending == 0) pthread_cond_broadcast(&p->done_cv);
      break;
    }
    int k = p->next_task++;
    vl_range_fn fn = p->fn;
    void *arg = p->arg;
    int64_t lo = (int64_t)k * p->per;
    int64_t hi = lo + p->per < p->n ? lo + p->per : p->n;
    pthread_mutex_unlock(&p->mu);
    fn(lo, hi, k, arg);
    pthread_mutex_lock(&p->mu);
    if (--p->pending == 0) pthread_cond_broadcast(&p->done_cv);
  }
}

static void *worker_main(void *vp) {
  vl_pool *p = vp;
  uint64_t seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->stop && p->generation == seen) pthread_cond_wait(&p->work_cv, &p->mu);
    if (p->stop) break;
    seen = p->generation;
    run_tasks(p);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

vl_status vl_pool_create(int max_threads, vl_pool **out, vl_error *err) {
  *out = NULL;
  if (max_threads < 1) max_threads = 1;
  vl_pool *p = calloc(1, sizeof *p);
  if (!p) return vl_fail(err, VL_ERR_NOMEM, "cannot allocate the thread pool");
  p->capacity = max_threads;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work_cv, NULL);
  pthread_cond_init(&p->done_cv, NULL);
  if (max_threads > 1) {
    p->workers = calloc((size_t)max_threads - 1, sizeof(pthread_t));
    if (!p->workers) {
      vl_pool_destroy(p);
      return vl_fail(err, VL_ERR_NOMEM, "cannot allocate the thread pool");
    }
    for (int i = 0; i < max_threads - 1; i++) {
      if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0) break;
      p->nworkers++;
    }
    p->capacity = p->nworkers + 1;
  }
  *out = p;
  return VL_OK;
}

void vl_pool_destroy(vl_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = true;
  pthread_cond_broadcast(&p->work_cv);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->nworkers; i++) pthread_join(p->workers[i], NULL);
  free(p->workers);
  pthread_cond_destroy(&p->work_cv);
  pthread_cond_destroy(&p->done_cv);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

int vl_pool_capacity(const vl_pool *p) { return p ? p->capacity : 1; }

int vl_ctx_set_threads(vl_ctx *ctx, int n) {
  int cap = vl_pool_capacity(ctx->pool);
  if (n < 1) n = 1;
  if (n > cap) n = cap;
  ctx->num_threads = n;
  return n;
}

/* Runs ntasks tasks of `per` items over [0, n) on the pool, or serially. With halt non-NULL no
 * task starts once *halt is set; returns whether tasks were skipped that way. */
static bool run_job(vl_ctx *ctx, int64_t n, int64_t per, int ntasks, vl_range_fn fn, void *arg,
                    const volatile sig_atomic_t *halt) {
  vl_pool *p = ctx ? ctx->pool : NULL;
  bool parallel = p && ctx->num_threads > 1 && ntasks > 1;
  if (parallel) {
    pthread_mutex_lock(&p->mu);
    if (p->busy) parallel = false; /* nested loop: run serially */
    else p->busy = true;
    if (!parallel) pthread_mutex_unlock(&p->mu);
  }
  if (!parallel) {
    for (int k = 0; k < ntasks; k++) {
      if (halt && *halt) return true;
      int64_t lo = (int64_t)k * per, hi = lo + per < n ? lo + per : n;
      fn(lo, hi, k, arg);
    }
    return false;
  }
  p->fn = fn;
  p->arg = arg;
  p->n = n;
  p->per = per;
  p->ntasks = ntasks;
  p->next_task = 0;
  p->pending = ntasks;
  p->halt = halt;
  p->skipped = false;
  p->generation++;
  /* wake only as many workers as the thread count allows beyond the caller */
  int wake = ctx->num_threads - 1;
  if (wake >= p->nworkers) pthread_cond_broadcast(&p->work_cv);
  else for (int i = 0; i < wake; i++) pthread_cond_signal(&p->work_cv);
  run_tasks(p);
  while (p->pending > 0) pthread_cond_wait(&p->done_cv, &p->mu);
  bool skipped = p->skipped;
  p->halt = NULL;
  p->busy = false;
  pthread_mutex_unlock(&p->mu);
  return skipped;
}

void vl_parallel_for(vl_ctx *ctx, int64_t n, int64_t grain, vl_range_fn fn, void *arg) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int threads = ctx ? ctx->num_threads : 1;
  int64_t ntasks = n / grain;
  if (ntasks > threads) ntasks = threads;
  if (ntasks < 1) ntasks = 1;
  int64_t per = (n + ntasks - 1) / ntasks;
  run_job(ctx, n, per, (int)ntasks, fn, arg, NULL);
}

vl_status vl_parallel_blocks(vl_ctx *ctx, int64_t n, int64_t block, vl_range_fn fn, void *arg) {
  if (n <= 0) return VL_OK;
  if (block < 1) block = 1;
  int64_t nblocks = (n + block - 1) / block;
  if (nblocks > 0x7fffffff) nblocks = 0x7fffffff; /* cannot happen for real sizes */
  bool skipped = run_job(ctx, n, block, (int)nblocks, fn, arg, ctx ? ctx->interrupt : NULL);
  return skipped ? VL_ERR_INTERRUPTED : VL_OK;
}
