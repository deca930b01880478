/* Reference measurements for bench/ scripts (names start with bench_). */
#include "bench_reference.h"
#include "lua_tensor.h"

/* bench_cblas_gemm(dtype, n, reps): best seconds of a direct cblas GEMM */
static int l_bench_cblas_gemm(lua_State *L) {
  vl_dtype dt = vlua_checkdtype(L, 1);
  int n = (int)vlua_checkint_range(L, 2, "n", 1, 20000);
  int reps = (int)vlua_checkint_range(L, 3, "reps", 1, 1000);
  double best;
  vl_error err;
  vlua_check_status(L, "bench_cblas_gemm", vl_bench_gemm(dt, n, reps, &best, &err), &err);
  lua_pushnumber(L, best);
  return 1;
}

/* bench_memcpy(nbytes, reps): best seconds of a memcpy */
static int l_bench_memcpy(lua_State *L) {
  int64_t nbytes = vlua_checkint_range(L, 1, "nbytes", 1, (int64_t)1 << 36);
  int reps = (int)vlua_checkint_range(L, 2, "reps", 1, 1000);
  double best;
  vl_error err;
  vlua_check_status(L, "bench_memcpy", vl_bench_memcpy((size_t)nbytes, reps, &best, &err), &err);
  lua_pushnumber(L, best);
  return 1;
}

static int l_bench_blas_config(lua_State *L) {
  lua_pushstring(L, vl_bench_blas_config());
  return 1;
}

void vlua_register_bench(lua_State *L) {
  static const luaL_Reg regs[] = {
    {"bench_cblas_gemm", l_bench_cblas_gemm}, {"bench_memcpy", l_bench_memcpy},
    {"bench_blas_config", l_bench_blas_config}, {NULL, NULL}};
  vlua_setfuncs(L, regs);
}
