/* Reference measurements (see bench_reference.h). */
#include "bench_reference.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

vl_status vl_bench_gemm(vl_dtype dtype, int n, int reps, double *best, vl_error *err) {
  if (dtype != VL_F32 && dtype != VL_F64) return vl_fail(err, VL_ERR_DTYPE, "bench_gemm: f32 or f64");
  size_t esz = vl_dtype_size(dtype), count = (size_t)n * (size_t)n;
  void *a = aligned_alloc(64, count * esz), *b = aligned_alloc(64, count * esz),
       *c = aligned_alloc(64, count * esz);
  if (!a || !b || !c) {
    free(a); free(b); free(c);
    return vl_fail(err, VL_ERR_NOMEM, "bench_gemm: out of memory");
  }
  for (size_t i = 0; i < count; i++) {
    double v = (double)((i * 2654435761u) % 1000) / 1000.0 - 0.5;
    if (dtype == VL_F32) { ((float *)a)[i] = (float)v; ((float *)b)[i] = (float)-v; }
    else { ((double *)a)[i] = v; ((double *)b)[i] = -v; }
  }
  *best = 1e300;
  for (int r = 0; r < reps + 1; r++) { /* the first call warms up */
    double t0 = now();
    if (dtype == VL_F32)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    else
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a, n, b, n, 0.0, c, n);
    double dt = now() - t0;
    if (r > 0 && dt < *best) *best = dt;
  }
  free(a); free(b); free(c);
  return VL_OK;
}

vl_status vl_bench_memcpy(size_t nbytes, int reps, double *best, vl_error *err) {
  char *src = aligned_alloc(64, nbytes), *dst = aligned_alloc(64, nbytes);
  if (!src || !dst) {
    free(src); free(dst);
    return vl_fail(err, VL_ERR_NOMEM, "bench_memcpy: out of memory");
  }
  memset(src, 1, nbytes);
  memset(dst, 2, nbytes);
  *best = 1e300;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    memcpy(dst, src, nbytes);
    double dt = now() - t0;
    if (dt < *best) *best = dt;
  }
  volatile char sink = dst[nbytes / 2];
  (void)sink;
  free(src); free(dst);
  return VL_OK;
}

const char *vl_bench_blas_config(void) { return openblas_get_config(); }
