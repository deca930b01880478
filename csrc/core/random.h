/* Random numbers from explicit generators: Philox4x32-10, the counter-based generator of
 * J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel random numbers: as easy as
 * 1, 2, 3", SC'11 (Random123).
 *
 * Philox4x32-10 maps a 128-bit counter (c0, c1, c2, c3) and a 64-bit key (k0, k1) to four
 * 32-bit words by ten rounds of
 *     (hi0, lo0) = M0 * c0,  (hi1, lo1) = M1 * c2        (32x32 -> 64-bit products)
 *     (c0, c1, c2, c3) <- (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
 * with the key bumped, k0 += W0, k1 += W1 (mod 2^32), before every round but the first.
 *     M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9 (golden ratio), W1 = 0xBB67AE85 (sqrt 3)
 * Checked against the Random123 known-answer vectors (tests/random_spec.lua).
 *
 * Stream layout. A generator is (key = seed, counter = blocks consumed). Block b of its stream
 * is philox(counter = (lo32(b), hi32(b), 0, 0), key = (lo32(key), hi32(key))). A fill of n
 * elements with base = counter reads blocks base .. base + B(n) - 1, then advances the counter
 * by B(n). Element i (in row-major order of the output's shape) reads fixed words of fixed
 * blocks, so results are identical on any thread count and for contiguous or strided outputs:
 *   uniform f32:  block i/4, word i%4: u = (w >> 8) 2^-24 (24 bits)          B = ceil(n/4)
 *   uniform f64:  block i/2, words 2(i%2), 2(i%2)+1: u = vl_u01_f64 (53 bits) B = ceil(n/2)
 *                 value lo + (hi - lo) u, rounded down to the largest value below hi if
 *                 rounding reached hi, so values lie in [lo, hi).
 *   normal:       block i/2 gives u1 = u01(w0, w1), u2 = u01(w2, w3) for the pair (2k, 2k+1);
 *                 Box-Muller in f64: r = sqrt(-2 log(1 - u1)), th = 2 pi u2, z(2k) = r cos th,
 *                 z(2k+1) = r sin th; value mean + std z, cast to the dtype  B = ceil(n/2)
 *   integers:     block i: x = (w1 << 32 | w0), then (w3 << 32 | w2), accepted if below the
 *                 largest multiple of range = hi - lo in 2^64, result lo + x mod range
 *                 (unbiased rejection). If both are rejected (probability < 1/4, and below
 *                 (range/2^64)^2), element i retries on its own sub-stream: blocks with counter
 *                 (lo32(base + i), hi32(base + i), attempt = 1, 2, ..., 2)          B = n
 *   bernoulli:    1 if the f64 uniform of element i (as above) < p              B = ceil(n/2)
 *   randperm:     Fisher-Yates: for i = n-1 .. 1, swap position i with an integer in [0, i]
 *                 drawn as above from block base + n-1-i                        B = n
 * Counter word 3 tags disjoint streams: 0 plain fills, 1 per-element sub-streams of
 * random_gamma.h, 2 integer retries. */
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
/* A double in [0, 1) from two words: 27 high bits of w0 and 26 of w1 (53 bits). */
double vl_u01_f64(uint32_t w0, uint32_t w1);

void vl_philox_seed(vl_philox *g, uint64_t seed);

/* The fills below write every element of out (any strides, but no zero stride on a dim of
 * size > 1) and advance g as documented above; on error g is unchanged. */

/* Uniform on [lo, hi); out f32 or f64; lo < hi, both finite, hi - lo finite. */
vl_status vl_random_uniform(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, double lo, double hi,
                            vl_error *err);
/* Normal(mean, std); out f32 or f64; std >= 0. */
vl_status vl_random_normal(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, double mean,
                           double std, vl_error *err);
/* Integers in [lo, hi_exclusive); out i64, or f32/f64 when every value is exact in the dtype
 * (|v| <= 2^24 or 2^53). */
vl_status vl_random_integers(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, int64_t lo,
                             int64_t hi_exclusive, vl_error *err);
/* 1 with probability p in [0, 1], else 0; out of any dtype (bool: true/false). */
vl_status vl_random_bernoulli(vl_ctx *ctx, vl_philox *g, const vl_tensor *out, double p,
                              vl_error *err);
/* out[0..n) = a random permutation of 0..n-1 (nothing for n <= 0). */
void vl_randperm(vl_philox *g, int64_t *out, int64_t n);

#endif
