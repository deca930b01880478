/* Reference measurements for the bench/ scripts, registered into velua.core under names
 * starting with bench_ (not part of the public API of velua.tensor). */
#include "bench_reference.h"
#include "lua_tensor.h"

/* bench_cblas_gemm(dtype, n, reps [, trans_a]) -> best seconds of one direct
 * cblas_sgemm/cblas_dgemm on n x n row-major buffers (A passed as CblasTrans with trans_a). */
static int l_bench_cblas_gemm(lua_State *L) {
  vl_dtype dt = vlua_checkdtype(L, 1);
  luaL_argcheck(L, dt == VL_F32 || dt == VL_F64, 1, "dtype must be f32 or f64");
  int n = (int)vlua_checkint_range(L, 2, "n", 1, 32768);
  int reps = (int)vlua_checkint_range(L, 3, "reps", 1, 100000);
  bool trans_a = lua_toboolean(L, 4);
  double best;
  vl_error err;
  vlua_check_status(L, "bench_cblas_gemm", vl_bench_gemm(dt, n, trans_a, reps, &best, &err),
                    &err);
  lua_pushnumber(L, best);
  return 1;
}

/* bench_memcpy(nbytes, reps [, threads]) -> best seconds of a memcpy of nbytes (split over
 * `threads` threads, default 1) between buffers touched beforehand. */
static int l_bench_memcpy(lua_State *L) {
  int64_t nbytes = vlua_checkint_range(L, 1, "nbytes", 1, (int64_t)1 << 40);
  int reps = (int)vlua_checkint_range(L, 2, "reps", 1, 100000);
  int threads = lua_isnoneornil(L, 3) ? 1 : (int)vlua_checkint_range(L, 3, "threads", 1, 64);
  double best;
  vl_error err;
  vlua_check_status(L, "bench_memcpy",
                    vl_bench_memcpy((size_t)nbytes, threads, reps, &best, &err), &err);
  lua_pushnumber(L, best);
  return 1;
}

/* bench_blas_config() -> OpenBLAS's build description, the core name chosen at run time */
static int l_bench_blas_config(lua_State *L) {
  const char *config = vl_bench_blas_config(), *core = vl_bench_blas_corename();
  lua_pushstring(L, config ? config : "?");
  lua_pushstring(L, core ? core : "?");
  return 2;
}

void vlua_register_bench(lua_State *L) {
  static const luaL_Reg regs[] = {{"bench_cblas_gemm", l_bench_cblas_gemm},
                                  {"bench_memcpy", l_bench_memcpy},
                                  {"bench_blas_config", l_bench_blas_config},
                                  {NULL, NULL}};
  vlua_setfuncs(L, regs);
}
