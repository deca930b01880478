/* Fused optimizer updates (see optim_kernels.h). */
#include "optim_kernels.h"
#include "clones.h"

#include <math.h>

/* An AVX2 clone of the update loops where the CPU has it (twice the lanes for its square root
 * and two divisions per element, which bound the loop); no FMA contraction, so every machine
 * and clone computes the same values. */
#pragma GCC optimize("fp-contract=off")

typedef struct {
  const vl_adam_config *c;
  char *p, *g, *m, *v, *vmax;
  double step_size, bc2_sqrt;
} adam_job;

#define ADAM_LOOP(T, SQRT)                                                          \
  do {                                                                              \
    T *p = (T *)j->p, *m = (T *)j->m, *v = (T *)j->v, *vmax = (T *)j->vmax;         \
    const T *g = (const T *)j->g;                                                   \
    const T b1 = (T)c->beta1, b2 = (T)c->beta2, wd = (T)c->weight_decay;            \
    const T decay = (T)(1.0 - c->lr * c->weight_decay);                             \
    const T step_size = (T)j->step_size, bc2_sqrt = (T)j->bc2_sqrt, eps = (T)c->eps; \
    for (int64_t i = lo; i < hi; i++) {                                             \
      T gi = c->maximize ? -g[i] : g[i];                                            \
      T pi = p[i];                                                                  \
      if (wd != 0) {                                                                \
        if (c->decoupled) pi *= decay;                                              \
        else gi += wd * pi;                                                         \
      }                                                                             \
      T mi = m[i] * b1 + gi * (1 - b1);                                             \
      T vi = v[i] * b2 + gi * gi * (1 - b2);                                        \
      m[i] = mi;                                                                    \
      v[i] = vi;                                                                    \
      T vh = vi;                                                                    \
      if (c->amsgrad) {                                                             \
        vh = vmax[i] > vi ? vmax[i] : vi;                                           \
        vmax[i] = vh;                                                               \
      }                                                                             \
      p[i] = pi - step_size * mi / (SQRT(vh) / bc2_sqrt + eps);                     \
    }                                                                               \
  } while (0)

VL_CLONES static void adam_range(int64_t lo, int64_t hi, int chunk, void *vp) {
  const adam_job *j = vp;
  const vl_adam_config *c = j->c;
  (void)chunk;
  ADAM_LOOP(float, sqrtf);
}

VL_CLONES static void adam_range_f64(int64_t lo, int64_t hi, int chunk, void *vp) {
  const adam_job *j = vp;
  const vl_adam_config *c = j->c;
  (void)chunk;
  ADAM_LOOP(double, sqrt);
}

static bool same_layout(const vl_tensor *a, const vl_tensor *b) {
  if (a->ndim != b->ndim || a->dtype != b->dtype || !vl_is_contiguous(b)) return false;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return false;
  return true;
}

vl_status vl_adam_step(vl_ctx *ctx, const vl_adam_config *c, const vl_tensor *p,
                       const vl_tensor *g, const vl_tensor *m, const vl_tensor *v,
                       const vl_tensor *vmax, vl_error *err) {
  if (!vl_dtype_is_float(p->dtype) || !vl_is_contiguous(p))
    return vl_fail(err, VL_ERR_DTYPE, "adam: parameter must be a contiguous f32 or f64 tensor");
  if (!same_layout(p, g) || !same_layout(p, m) || !same_layout(p, v) ||
      (c->amsgrad && (!vmax || !same_layout(p, vmax))))
    return vl_fail(err, VL_ERR_SHAPE, "adam: gradient and state must match the parameter's shape, "
                   "dtype and contiguity");
  if (c->step < 1) return vl_fail(err, VL_ERR_VALUE, "adam: step must be >= 1");
  adam_job j = {c, p->data, g->data, m->data, v->data, vmax ? vmax->data : NULL, 0, 0};
  double bc1 = 1.0 - pow(c->beta1, (double)c->step);
  double bc2 = 1.0 - pow(c->beta2, (double)c->step);
  j.step_size = c->lr / bc1;
  j.bc2_sqrt = sqrt(bc2);
  vl_parallel_for(ctx, vl_numel(p), 32768, p->dtype == VL_F32 ? adam_range : adam_range_f64, &j);
  return VL_OK;
}
