/* Fused optimizer updates: one pass over a parameter, its gradient and its state, instead of
 * a chain of elementwise ops (and their temporaries). */
#ifndef VELUA_OPTIM_KERNELS_H
#define VELUA_OPTIM_KERNELS_H

#include <stdbool.h>

#include "parallel.h"
#include "tensor.h"

typedef struct {
  double lr, beta1, beta2, eps, weight_decay;
  long long step;   /* 1 for the first update */
  bool amsgrad, decoupled, maximize;
} vl_adam_config;

/* One Adam (decoupled = false) or AdamW step, as torch.optim.Adam/AdamW's single-tensor
 * path: p, g, m, v (and vmax when amsgrad) contiguous, of one shape and one float dtype. */
vl_status vl_adam_step(vl_ctx *ctx, const vl_adam_config *c, const vl_tensor *p,
                       const vl_tensor *g, const vl_tensor *m, const vl_tensor *v,
                       const vl_tensor *vmax, vl_error *err);

#endif
