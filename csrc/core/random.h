/* Random numbers from explicit generators: Philox4x32-10 (Salmon, Moraes, Dror, Shaw,
 * "Parallel random numbers: as easy as 1, 2, 3", SC'11), a counter-based generator: block b
 * of a stream is philox(counter = (b_lo, b_hi, 0, 0), key = (seed_lo, seed_hi)), four 32-bit
 * words. The generator state is (key, counter); a fill of n elements reads the blocks
 * counter .. counter + B(n) - 1 and then advances the counter by B(n). Element i of a fill
 * uses fixed words of fixed blocks (below), so results do not depend on the thread count or
 * on the output's strides.
 *   uniform f32:  block i/4, word i%4; (w >> 8) * 2^-24                          B = ceil(n/4)
 *   uniform f64:  block i/2, words 2(i%2), 2(i%2)+1; 53 bits                     B = ceil(n/2)
 *   normal:       block i/2 gives two f64 uniforms per pair of elements; Box-Muller
 *                 z0 = r cos(2 pi u2), z1 = r sin(2 pi u2), r = sqrt(-2 log(1 - u1))  B = ceil(n/2)
 *   integers:     block i: 64-bit words (w0,w1), then (w2,w3), each accepted if below the
 *                 largest multiple of the range (unbiased rejection); a second rejection, with
 *                 probability below (range/2^64)^2, falls back to the modulo        B = n
 *   bernoulli:    f64 uniform < p                                                 B = ceil(n/2)
 *   randperm:     Fisher-Yates, swap position i with an integer drawn from block n-1-i   B = n */
#ifndef VELUA_RANDOM_H
#define VELUA_RANDOM_H

#include <stdint.h>

#include "parallel.h"
#include "tensor.h"

typedef struct {
  uint64_t key;     /* the seed */
  uint64_t counter; /* blocks consumed so far */
} vl_philox;

/* One Philox4x32-10 block. */
void vl_philox_block(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
/* Block b of the stream of g (no state change). */
void vl_philox_at(const vl_philox *g, uint64_t b, uint32_t out[4]);
/* A double in [0, 1) from two words (53 bits). */
double vl_u01_f64(uint32_t w0, uint32_t w1);

void vl_philox_seed(vl_philox *g, uint64_t seed);

vl_status vl_random_uniform(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, double lo, double hi,
                            vl_error *err);
vl_status vl_random_normal(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, double mean,
                           double std, vl_error *err);
/* Integers in [lo, hi_exclusive). */
vl_status vl_random_integers(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, int64_t lo,
                             int64_t hi_exclusive, vl_error *err);
vl_status vl_random_bernoulli(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, double p,
                              vl_error *err);
/* out[0..n) = a random permutation of 0..n-1. */
void vl_randperm(vl_philox *g, int64_t *out, int64_t n);

#endif
