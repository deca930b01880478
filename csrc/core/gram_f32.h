/* The Gram matrix P^T P of f32 data by an AVX-512 kernel of our own, summed in double.
 *
 * Why not SSYRK: OpenBLAS may run AVX2 kernels on a CPU with full-width AVX-512 units (versions
 * before 0.3.22 do not know AMD Zen 4/5, and OPENBLAS_CORETYPE may pin them), which halves the
 * speed of PCA's largest step; and the f32 products must anyway be summed in double every few
 * hundred rows, which costs an extra pass over the Gram matrix per slice through BLAS.
 *
 * Layout: a chunk of `rows` rows of the g columns is packed in panels of VL_GRAM_PANEL columns;
 * panel p holds, row after row, the VL_GRAM_PANEL values of columns [p W, p W + W) (columns past
 * g are zero): value (r, c) at P[((c / W) * rows + r) * W + c % W], W = VL_GRAM_PANEL.
 *
 * Each Gram entry is a sum of f32 products over blocks of VL_GRAM_SLICE rows (counted from the
 * chunk's first row), each block's sum added to a double accumulator, so the result does not
 * depend on the thread count, and a chunk of a multiple of VL_GRAM_SLICE rows gives the same
 * sums as if the rows came in one chunk. */
#ifndef VELUA_GRAM_F32_H
#define VELUA_GRAM_F32_H

#include <stdbool.h>
#include <stdint.h>

#include "parallel.h"

enum { VL_GRAM_PANEL = 32, VL_GRAM_SLICE = 256, VL_GRAM_TILE = 8 };

/* Does this CPU (and OS) run the AVX-512 kernel? */
bool vl_gram_f32_available(void);

/* Floats in a packed chunk of `rows` rows and g columns. */
int64_t vl_gram_f32_packed_size(int64_t rows, int64_t g);

/* G (g x g row-major, upper triangle: G[i g + j] for i <= j) += P^T P for the packed chunk P
 * (assign: = instead of +=; the lower triangle is not touched). Requires
 * vl_gram_f32_available(). VL_ERR_INTERRUPTED when stopped (G then incomplete). */
vl_status vl_gram_f32_add(vl_ctx *ctx, const float *P, int64_t rows, int64_t g, double *G,
                          bool assign);

/* The kernel's tile on its own: acc (VL_GRAM_TILE x VL_GRAM_PANEL doubles, row-major) = a^T b
 * over `rows` rows, a[r * lda + t] (t < VL_GRAM_TILE) and b[r * VL_GRAM_PANEL + c], summed as
 * above (f32 over slices of VL_GRAM_SLICE rows, then double). For other products of this shape
 * (PCA's scores: 8 cells by 32 components over the genes). Requires vl_gram_f32_available(). */
void vl_gram_f32_tile(const float *a, int64_t lda, const float *b, int64_t rows, double *acc);

#endif
