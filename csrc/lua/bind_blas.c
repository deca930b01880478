/* matmul from Lua with torch.matmul semantics: 1-d operands are promoted to matrices and the
 * added dim removed again; leading dims broadcast (batched GEMM). */
#include "blas.h"
#include "lua_tensor.h"

static int l_matmul(lua_State *L) {
  vlua_tensor *ta = vlua_check(L, 1), *tb = vlua_check(L, 2);
  lua_settop(L, 2);
  vl_tensor a = ta->t, b = tb->t;
  vl_error err;
  char s1[128], s2[128];
  if (a.ndim == 0 || b.ndim == 0)
    luaL_error(L, "matmul: both operands need at least 1 dim, got shapes %s and %s",
               vl_shape_str(a.ndim, a.shape, s1, sizeof s1),
               vl_shape_str(b.ndim, b.shape, s2, sizeof s2));
  if (a.dtype != b.dtype) {
    vl_dtype dt = vl_dtype_promote(a.dtype, b.dtype);
    a = vlua_cast(L, 1, dt)->t;
    b = vlua_cast(L, 2, dt)->t;
  }
  if (a.dtype == VL_BOOL) luaL_error(L, "matmul: not defined for bool tensors");
  bool a_vec = a.ndim == 1, b_vec = b.ndim == 1;
  vl_tensor a2 = a, b2 = b;
  if (a_vec) vl_view_unsqueeze(&a, 0, &a2, &err);
  if (b_vec) vl_view_unsqueeze(&b, 1, &b2, &err);
  int64_t k_a = a2.shape[a2.ndim - 1], k_b = b2.shape[b2.ndim - 2];
  if (k_a != k_b)
    luaL_error(L, "matmul: shapes %s and %s do not match (dim %d of a vs dim %d of b)",
               vl_shape_str(ta->t.ndim, ta->t.shape, s1, sizeof s1),
               vl_shape_str(tb->t.ndim, tb->t.shape, s2, sizeof s2), ta->t.ndim,
               tb->t.ndim == 1 ? 1 : tb->t.ndim - 1);
  /* broadcast the batch dims */
  int64_t batch[VL_MAX_DIMS];
  int nb;
  vlua_check_status(L, "matmul", vl_broadcast_shape(a2.ndim - 2, a2.shape, b2.ndim - 2, b2.shape,
                                                    &nb, batch, &err), &err);
  if (nb + 2 > VL_MAX_DIMS) luaL_error(L, "matmul: too many dims");
  int64_t sa[VL_MAX_DIMS], sb[VL_MAX_DIMS], sc[VL_MAX_DIMS];
  for (int d = 0; d < nb; d++) sa[d] = sb[d] = sc[d] = batch[d];
  int64_t m = a2.shape[a2.ndim - 2], k = k_a, n = b2.shape[b2.ndim - 1];
  sa[nb] = m; sa[nb + 1] = k;
  sb[nb] = k; sb[nb + 1] = n;
  sc[nb] = m; sc[nb + 1] = n;
  vl_tensor ea, eb;
  vlua_check_status(L, "matmul", vl_broadcast_to(&a2, nb + 2, sa, &ea, &err), &err);
  vlua_check_status(L, "matmul", vl_broadcast_to(&b2, nb + 2, sb, &eb, &err), &err);
  /* result shape without the dims added for vectors */
  int64_t rshape[VL_MAX_DIMS];
  int rn = 0;
  for (int d = 0; d < nb; d++) rshape[rn++] = batch[d];
  if (!a_vec) rshape[rn++] = m;
  if (!b_vec) rshape[rn++] = n;
  vlua_tensor *out = vlua_new(L, a.dtype, rn, rshape);
  vl_tensor c = out->t;
  c.ndim = nb + 2;
  for (int d = 0; d < nb + 2; d++) c.shape[d] = sc[d];
  vl_set_contiguous_strides(&c);
  vlua_check_status(L, "matmul", vl_matmul(vlua_ctx(L), &ea, &eb, &c, &err), &err);
  return 1;
}

/* linear(x, w [, b]): x w^T + b over the last dim of x ([..., k] -> [..., n]; w [n, k], b [n]),
 * as torch.nn.functional.linear. One GEMM onto the pre-written bias (vl_linear). */
static int l_linear(lua_State *L) {
  vlua_tensor *tx = vlua_check(L, 1), *tw = vlua_check(L, 2);
  vlua_tensor *tb = lua_isnoneornil(L, 3) ? NULL : vlua_check(L, 3);
  lua_settop(L, 3);
  char s1[128], s2[128];
  if (!vl_dtype_is_float(tx->t.dtype) || tw->t.dtype != tx->t.dtype ||
      (tb && tb->t.dtype != tx->t.dtype))
    luaL_error(L, "linear: input (%s), weight (%s)%s%s must be all f32 or all f64",
               vl_dtype_name(tx->t.dtype), vl_dtype_name(tw->t.dtype), tb ? " and bias " : "",
               tb ? vl_dtype_name(tb->t.dtype) : "");
  if (tw->t.ndim != 2)
    luaL_argerror(L, 2, lua_pushfstring(L, "weight must be 2-d [out, in], got %d dims", tw->t.ndim));
  int64_t n = tw->t.shape[0], k = tw->t.shape[1];
  if (tx->t.ndim < 1 || tx->t.shape[tx->t.ndim - 1] != k)
    luaL_error(L, "linear: input of shape %s does not match weight of shape %s (last dim of the "
               "input must be %lld)", vl_shape_str(tx->t.ndim, tx->t.shape, s1, sizeof s1),
               vl_shape_str(2, tw->t.shape, s2, sizeof s2), (long long)k);
  if (tb && (tb->t.ndim != 1 || tb->t.shape[0] != n))
    luaL_argerror(L, 3, lua_pushfstring(L, "bias must have shape {%d}, got %s", (int)n,
                                        vl_shape_str(tb->t.ndim, tb->t.shape, s1, sizeof s1)));
  vl_error err;
  int64_t m = 1;
  for (int d = 0; d < tx->t.ndim - 1; d++) m *= tx->t.shape[d];
  int64_t shape2[2] = {m, k};
  vl_tensor x2;
  if (vl_view_reshape(&tx->t, 2, shape2, &x2, &err) != VL_OK) {
    vlua_contiguous(L, 1); /* stack 4 */
    vl_view_reshape(&vlua_check(L, 4)->t, 2, shape2, &x2, &err);
  }
  int64_t oshape[VL_MAX_DIMS];
  int on = tx->t.ndim;
  for (int d = 0; d < on - 1; d++) oshape[d] = tx->t.shape[d];
  oshape[on - 1] = n;
  vlua_tensor *out = vlua_new(L, tx->t.dtype, on, oshape);
  vl_tensor o2 = out->t;
  o2.ndim = 2;
  o2.shape[0] = m;
  o2.shape[1] = n;
  vl_set_contiguous_strides(&o2);
  vlua_check_status(L, "linear", vl_linear(vlua_ctx(L), &x2, &tw->t, tb ? &tb->t : NULL, &o2, &err),
                    &err);
  return 1;
}

void vlua_register_blas(lua_State *L) {
  static const luaL_Reg regs[] = {{"matmul", l_matmul}, {"linear", l_linear}, {NULL, NULL}};
  vlua_setfuncs(L, regs);
}
