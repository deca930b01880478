/* Reference measurements for the benchmarks: a direct cblas GEMM and a memcpy, timed in the
 * same process as velua's own operations so that ratios compare like with like. */
#ifndef VELUA_BENCH_REFERENCE_H
#define VELUA_BENCH_REFERENCE_H

#include <stddef.h>

#include "tensor.h"

/* Best wall time (seconds) over reps calls of cblas_sgemm/dgemm on n x n row-major buffers. */
vl_status vl_bench_gemm(vl_dtype dtype, int n, int reps, double *best, vl_error *err);
/* Best wall time of memcpy over nbytes (buffers touched first). */
vl_status vl_bench_memcpy(size_t nbytes, int reps, double *best, vl_error *err);
/* OpenBLAS's build description (core, threads). */
const char *vl_bench_blas_config(void);

#endif
