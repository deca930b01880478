/* Fused inverted dropout: the mask is drawn, applied and kept (as bytes, for the backward
 * pass) in one pass. The draws are those of vl_random_uniform filling a tensor of x's shape
 * and dtype, and the arithmetic is that of velua.nn.F.dropout (keep where u >= p, scale
 * 1 / (1 - p) in x's dtype), so outputs and generator state are bitwise those of the
 * composed version. */
#ifndef VELUA_DROPOUT_H
#define VELUA_DROPOUT_H

#include "parallel.h"
#include "random.h"
#include "tensor.h"

/* out = x * (keep ? 1 / (1 - p) : 0), keep[i] = (u_i >= p) with u_i the i-th uniform of g's
 * stream in x's dtype (row-major order); g advances by ceil(numel / 4) blocks for f32,
 * ceil(numel / 2) for f64. x f32 or f64
 * contiguous, out contiguous of x's dtype and shape, keep contiguous bool of that shape;
 * 0 <= p < 1. */
vl_status vl_dropout_forward(vl_ctx *ctx, vl_philox *g, const vl_tensor *x, double p,
                             const vl_tensor *out, const vl_tensor *keep, vl_error *err);

/* grad = g_out * (keep ? 1 / (1 - p) : 0); g_out any strides of keep's shape, grad contiguous. */
vl_status vl_dropout_backward(vl_ctx *ctx, const vl_tensor *g_out, const vl_tensor *keep,
                              double p, const vl_tensor *grad, vl_error *err);

#endif
