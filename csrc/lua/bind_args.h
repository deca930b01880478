/* Argument checks shared by the binding files that take CSR matrices as their components
 * (indptr, indices, values, nrows, ncols; 0-based i64 indptr/indices as stored in files):
 * each raises a Lua error "<fname>: <name> ..." naming the argument, the expected and the
 * actual value. */
#ifndef VELUA_BIND_ARGS_H
#define VELUA_BIND_ARGS_H

#include <stdbool.h>

#include "lua_tensor.h"
#include "sparse_csr.h"

/* A 1-d tensor at arg of dtype i64 (or f32/f64 when want_float), replaced on the stack by a
 * contiguous copy when needed so that it stays alive for the call. */
vlua_tensor *vlua_arg_vector(lua_State *L, const char *fname, int arg, const char *name,
                             bool want_float);

/* A non-negative integer (a size) at arg. */
int64_t vlua_arg_size(lua_State *L, const char *fname, int arg, const char *name);

/* The CSR matrix at arg .. arg + 4, checked and validated (vl_csr_validate). */
void vlua_arg_csr(lua_State *L, const char *fname, int arg, vl_csr *a);

/* The same with only indptr checked (non-decreasing from 0 to nnz), for kernels that read no
 * column index or check each one they read. */
void vlua_arg_csr_indptr(lua_State *L, const char *fname, int arg, vl_csr *a);

#endif
