/* Functions compiled several times for the CPU generations GCC's target_clones can tell apart,
 * one chosen at load time by the CPU (the build's baseline stays x86-64-v2):
 * - VL_CLONES: AVX2 + FMA (x86-64-v3) and the baseline;
 * - VL_CLONES_AVX512: also AVX-512 (x86-64-v4), for kernels written with 64-byte vectors.
 * Empty elsewhere (other compilers, other architectures). An FMA-using clone may round
 * differently from the baseline: results depend on the CPU, never on the thread count. */
#ifndef VELUA_CLONES_H
#define VELUA_CLONES_H

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define VL_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#define VL_CLONES_AVX512 \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VL_CLONES
#define VL_CLONES_AVX512
#endif

#endif
