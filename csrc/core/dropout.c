/* Fused inverted dropout (see dropout.h). */
#include "dropout.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
  const char *x;
  char *out;
  uint8_t *keep;
  const vl_philox *g;
  uint64_t base; /* the generator's counter at the call */
  int64_t n;
  double p;
  vl_dtype dt;
} drop_job;

/* Blocks [lo, hi) of the stream: elements per lo .. min(per hi, n) - 1, per = 4 (f32) or 2
 * (f64) uniforms per block, as vl_random_uniform. */
static void drop_range(int64_t lo, int64_t hi, int chunk, void *arg) {
  const drop_job *j = arg;
  (void)chunk;
  uint32_t w[4];
  if (j->dt == VL_F32) {
    const float *x = (const float *)j->x;
    float *o = (float *)j->out;
    const float pf = (float)j->p, scale = (float)(1.0 / (1.0 - j->p));
    for (int64_t b = lo; b < hi; b++) {
      vl_philox_at(j->g, j->base + (uint64_t)b, w);
      for (int l = 0; l < 4 && b * 4 + l < j->n; l++) {
        int64_t i = b * 4 + l;
        float u = (float)((double)(w[l] >> 8) * 0x1p-24);
        bool k = u >= pf;
        j->keep[i] = k;
        o[i] = x[i] * (k ? scale : 0.0f);
      }
    }
  } else {
    const double *x = (const double *)j->x;
    double *o = (double *)j->out;
    const double scale = 1.0 / (1.0 - j->p);
    for (int64_t b = lo; b < hi; b++) {
      vl_philox_at(j->g, j->base + (uint64_t)b, w);
      for (int l = 0; l < 2 && b * 2 + l < j->n; l++) {
        int64_t i = b * 2 + l;
        double u = vl_u01_f64(w[2 * l], w[2 * l + 1]);
        bool k = u >= j->p;
        j->keep[i] = k;
        o[i] = x[i] * (k ? scale : 0.0);
      }
    }
  }
}

typedef struct {
  const vl_tensor *g;
  const uint8_t *keep;
  char *grad;
  double p;
} drop_back_job;

static void drop_back_range(int64_t lo, int64_t hi, int chunk, void *arg) {
  const drop_back_job *j = arg;
  (void)chunk;
  const vl_tensor *g = j->g;
  const int64_t cols = g->ndim ? g->shape[g->ndim - 1] : 1;
  const int64_t cs = g->ndim ? g->stride[g->ndim - 1] : 0;
  /* rows of the last dim; the leading dims walked by index */
  for (int64_t r = lo; r < hi; r++) {
    int64_t off = 0, rest = r;
    for (int d = g->ndim - 2; d >= 0; d--) {
      off += (rest % g->shape[d]) * g->stride[d];
      rest /= g->shape[d];
    }
    const uint8_t *k = j->keep + r * cols;
    if (g->dtype == VL_F32) {
      const float *gi = (const float *)g->data + off;
      float *o = (float *)j->grad + r * cols;
      const float scale = (float)(1.0 / (1.0 - j->p));
      for (int64_t c = 0; c < cols; c++) o[c] = gi[c * cs] * (k[c] ? scale : 0.0f);
    } else {
      const double *gi = (const double *)g->data + off;
      double *o = (double *)j->grad + r * cols;
      const double scale = 1.0 / (1.0 - j->p);
      for (int64_t c = 0; c < cols; c++) o[c] = gi[c * cs] * (k[c] ? scale : 0.0);
    }
  }
}

static bool same_shape(const vl_tensor *a, const vl_tensor *b) {
  if (a->ndim != b->ndim) return false;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return false;
  return true;
}

vl_status vl_dropout_forward(vl_ctx *ctx, vl_philox *g, const vl_tensor *x, double p,
                             const vl_tensor *out, const vl_tensor *keep, vl_error *err) {
  if (!vl_dtype_is_float(x->dtype) || !vl_is_contiguous(x))
    return vl_fail(err, VL_ERR_DTYPE, "dropout: x must be a contiguous f32 or f64 tensor");
  if (!(p >= 0 && p < 1))
    return vl_fail(err, VL_ERR_VALUE, "dropout: p must be in [0, 1), got %g", p);
  if (out->dtype != x->dtype || !same_shape(out, x) || !vl_is_contiguous(out) ||
      keep->dtype != VL_BOOL || !same_shape(keep, x) || !vl_is_contiguous(keep))
    return vl_fail(err, VL_ERR_SHAPE, "dropout: out and keep must be contiguous and shaped as x");
  int64_t per = x->dtype == VL_F32 ? 4 : 2;
  int64_t n = vl_numel(x), blocks = (n + per - 1) / per;
  drop_job j = {x->data, out->data, (uint8_t *)keep->data, g, g->counter, n, p, x->dtype};
  vl_parallel_for(ctx, blocks, 4096, drop_range, &j);
  g->counter += (uint64_t)blocks;
  return VL_OK;
}

vl_status vl_dropout_backward(vl_ctx *ctx, const vl_tensor *g_out, const vl_tensor *keep,
                              double p, const vl_tensor *grad, vl_error *err) {
  if (!vl_dtype_is_float(g_out->dtype))
    return vl_fail(err, VL_ERR_DTYPE, "dropout: the gradient must be f32 or f64");
  if (!(p >= 0 && p < 1))
    return vl_fail(err, VL_ERR_VALUE, "dropout: p must be in [0, 1), got %g", p);
  if (keep->dtype != VL_BOOL || !same_shape(keep, g_out) || !vl_is_contiguous(keep) ||
      grad->dtype != g_out->dtype || !same_shape(grad, g_out) || !vl_is_contiguous(grad))
    return vl_fail(err, VL_ERR_SHAPE, "dropout: keep and grad must be contiguous and shaped as "
                   "the gradient");
  int64_t cols = g_out->ndim ? g_out->shape[g_out->ndim - 1] : 1;
  int64_t rows = cols > 0 ? vl_numel(g_out) / cols : 0;
  drop_back_job j = {g_out, (const uint8_t *)keep->data, grad->data, p};
  vl_parallel_for(ctx, rows, 16, drop_back_range, &j);
  return VL_OK;
}
