/* Reference measurements (see bench_reference.h). */
#include "bench_reference.h"

#include <cblas.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memory.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* aligned_alloc wants a size that is a multiple of the alignment (C11 7.22.3.1) */
static void *alloc64(size_t nbytes) {
  if (nbytes > SIZE_MAX - 63) return NULL;
  return aligned_alloc(64, (nbytes + 63) & ~(size_t)63);
}

vl_status vl_bench_gemm(vl_dtype dtype, int n, bool trans_a, int reps, double *best,
                        vl_error *err) {
  if (dtype != VL_F32 && dtype != VL_F64)
    return vl_fail(err, VL_ERR_DTYPE, "GEMM reference needs dtype f32 or f64");
  if (n < 1 || reps < 1) return vl_fail(err, VL_ERR_VALUE, "n and reps must be >= 1");
  size_t esz = vl_dtype_size(dtype), count = (size_t)n * (size_t)n;
  if (count > SIZE_MAX / esz) return vl_fail(err, VL_ERR_NOMEM, "%d x %d matrices are too big", n, n);
  void *a = alloc64(count * esz), *b = alloc64(count * esz), *c = alloc64(count * esz);
  if (!a || !b || !c) {
    free(a);
    free(b);
    free(c);
    return vl_fail(err, VL_ERR_NOMEM, "out of memory for three %d x %d matrices", n, n);
  }
  /* values in [-0.5, 0.5): no denormals, no overflow; c is written by the warm-up call */
  for (size_t i = 0; i < count; i++) {
    double v = (double)((i * 2654435761u) % 1000) / 1000.0 - 0.5;
    if (dtype == VL_F32) {
      ((float *)a)[i] = (float)v;
      ((float *)b)[i] = (float)-v;
    } else {
      ((double *)a)[i] = v;
      ((double *)b)[i] = -v;
    }
  }
  CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
  *best = 1e300;
  for (int r = 0; r <= reps; r++) { /* r == 0 warms up (OpenBLAS threads, caches, pages of c) */
    double t0 = now();
    if (dtype == VL_F32)
      cblas_sgemm(CblasRowMajor, ta, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    else
      cblas_dgemm(CblasRowMajor, ta, CblasNoTrans, n, n, n, 1.0, a, n, b, n, 0.0, c, n);
    double dt = now() - t0;
    if (r > 0 && dt < *best) *best = dt;
  }
  free(a);
  free(b);
  free(c);
  return VL_OK;
}

typedef struct {
  char *dst;
  const char *src;
  size_t n;
} copy_part;

static void *copy_worker(void *arg) {
  copy_part *p = arg;
  memcpy(p->dst, p->src, p->n);
  return NULL;
}

#define BENCH_MAX_THREADS 64

/* One timed copy of [src, src + nbytes) split over `threads` threads (this one included). */
static vl_status timed_copy(char *dst, const char *src, size_t nbytes, int threads, double *dt,
                            vl_error *err) {
  copy_part parts[BENCH_MAX_THREADS];
  pthread_t tids[BENCH_MAX_THREADS];
  size_t chunk = (nbytes / (size_t)threads + 63) & ~(size_t)63;
  for (int t = 0; t < threads; t++) {
    size_t lo = (size_t)t * chunk;
    lo = lo > nbytes ? nbytes : lo;
    size_t hi = lo + chunk > nbytes ? nbytes : lo + chunk;
    parts[t] = (copy_part){dst + lo, src + lo, hi - lo};
  }
  double t0 = now();
  int started = 0;
  vl_status st = VL_OK;
  for (int t = 1; t < threads; t++, started++)
    if (pthread_create(&tids[t], NULL, copy_worker, &parts[t]) != 0) {
      st = vl_fail(err, VL_ERR_UNSUPPORTED, "could not start copy thread %d", t + 1);
      break;
    }
  copy_worker(&parts[0]);
  for (int t = 1; t <= started; t++) pthread_join(tids[t], NULL);
  *dt = now() - t0;
  return st;
}

vl_status vl_bench_memcpy(size_t nbytes, int threads, int reps, double *best, vl_error *err) {
  if (nbytes < 1 || reps < 1) return vl_fail(err, VL_ERR_VALUE, "nbytes and reps must be >= 1");
  if (threads < 1 || threads > BENCH_MAX_THREADS)
    return vl_fail(err, VL_ERR_VALUE, "threads must be in [1, %d]", BENCH_MAX_THREADS);
  char *src = alloc64(nbytes), *dst = alloc64(nbytes);
  if (!src || !dst) {
    free(src);
    free(dst);
    return vl_fail(err, VL_ERR_NOMEM, "out of memory for two %zu-byte buffers", nbytes);
  }
  vl_advise_huge_pages(src, nbytes); /* as velua does for big tensors */
  vl_advise_huge_pages(dst, nbytes);
  memset(src, 1, nbytes); /* first touch outside the timing */
  memset(dst, 2, nbytes);
  *best = 1e300;
  vl_status st = VL_OK;
  for (int r = 0; r < reps && st == VL_OK; r++) {
    double dt;
    st = timed_copy(dst, src, nbytes, threads, &dt, err);
    if (dt < *best) *best = dt;
  }
  volatile char sink = dst[nbytes / 2]; /* the copy has an observable effect */
  (void)sink;
  free(src);
  free(dst);
  return st;
}

const char *vl_bench_blas_config(void) { return openblas_get_config(); }

const char *vl_bench_blas_corename(void) { return openblas_get_corename(); }
