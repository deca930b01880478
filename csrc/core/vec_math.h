/* Vectorised math kernels for contiguous f32 runs: branch-free polynomial approximations
 * that the compiler turns into SIMD code, dispatched at run time to the best instruction
 * set the CPU has (AVX2+FMA or the x86-64 baseline). Accuracy: within 2 ulp of the
 * correctly rounded result over the whole float range, NaN and infinities preserved. */
#ifndef VELUA_VEC_MATH_H
#define VELUA_VEC_MATH_H

#include <stdint.h>

/* out[i] = exp(x[i]) for i < n (out may equal x). */
void vl_vec_exp_f32(float *out, const float *x, int64_t n);
/* out[i] = 1 / (1 + exp(-x[i])). */
void vl_vec_sigmoid_f32(float *out, const float *x, int64_t n);

#endif
