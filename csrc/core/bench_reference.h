/* Reference measurements for the benchmarks in bench/: a direct cblas GEMM and a memcpy,
 * timed in the same process as velua's own operations so that ratios compare like with like.
 * Plain C11 (plus POSIX threads); returns status codes, never aborts. */
#ifndef VELUA_BENCH_REFERENCE_H
#define VELUA_BENCH_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>

#include "tensor.h"

/* Best wall time (seconds) over reps calls of cblas_sgemm/cblas_dgemm (dtype f32 or f64) with
 * C = A * B on n x n row-major buffers filled deterministically; with trans_a, A is passed as
 * CblasTrans (the layout of a transposed view). One untimed call warms up first. The thread
 * count is OpenBLAS's current one. */
vl_status vl_bench_gemm(vl_dtype dtype, int n, bool trans_a, int reps, double *best,
                        vl_error *err);

/* Best wall time of copying nbytes with memcpy, split into `threads` equal contiguous parts
 * copied concurrently (threads >= 1; 1 = a plain memcpy on the calling thread). Both buffers
 * are touched before timing. */
vl_status vl_bench_memcpy(size_t nbytes, int threads, int reps, double *best, vl_error *err);

/* OpenBLAS's build description ("OpenBLAS 0.3.21 DYNAMIC_ARCH ... Haswell MAX_THREADS=64"). */
const char *vl_bench_blas_config(void);
/* The kernel set OpenBLAS chose at run time ("Haswell", "Zen", ...). */
const char *vl_bench_blas_corename(void);

#endif
