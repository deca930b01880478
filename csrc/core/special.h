/* Special functions for distributions: the regularised incomplete beta function I_x(a, b)
 * and its derivatives with respect to a and b (for implicit reparameterisation gradients). */
#ifndef VELUA_SPECIAL_H
#define VELUA_SPECIAL_H

#include "parallel.h"
#include "tensor.h"

/* I_x(a, b) by the continued fraction (modified Lentz), relative accuracy ~1e-14. */
double vl_betainc(double a, double b, double x);
/* dI/da and dI/db at (a, b, x): 4th-order central differences of vl_betainc with a step
 * relative to the parameter (h = 1e-3 max(a, 1e-3) scaled down for small parameters);
 * relative accuracy ~1e-9. */
void vl_betainc_grad(double a, double b, double x, double *da, double *db);

/* out = I_x(a, b), or (which = 1) dI/da, (which = 2) dI/db, elementwise; a, b, x, out of one
 * shape (broadcast beforehand) and one float dtype. */
vl_status vl_betainc_op(vl_ctx *ctx, int which, const vl_tensor *out, const vl_tensor *a,
                        const vl_tensor *b, const vl_tensor *x, vl_error *err);

#endif
