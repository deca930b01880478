/* The Lua side of a tensor: storage as a garbage-collected full userdata, tensor views that hold
 * their storage through user value 1, and the helpers every binding file uses to check
 * arguments and raise errors. All 1-based <-> 0-based conversion happens in csrc/lua. */
#ifndef VELUA_LUA_TENSOR_H
#define VELUA_LUA_TENSOR_H

#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>

#include "parallel.h"
#include "tensor.h"

#define VLUA_TENSOR_MT "velua.Tensor"
#define VLUA_STORAGE_MT "velua.Storage"
#define VLUA_STORAGE_ALIGN 64

/* Storage: header followed by the bytes, all inside one userdata the collector accounts for. */
typedef struct {
  size_t nbytes;  /* usable bytes from data */
  char *data;     /* VLUA_STORAGE_ALIGN-aligned pointer into this userdata */
  bool freed;     /* set by free(): every view of it is then unusable */
  uint64_t version; /* bumped by every in-place write (autodiff checks saved tensors) */
} vlua_storage;

/* Tensor userdata: the view, plus its storage (also kept alive by user value 1).
 * User value 2 is reserved for autograd state kept by the Lua layer. */
typedef struct {
  vl_tensor t;
  vlua_storage *storage;
} vlua_tensor;

/* The execution context (thread pool, thread count): upvalue 1 of every binding function. */
vl_ctx *vlua_ctx(lua_State *L);
/* Registers regs into the table on top of the stack with the context as their upvalue. */
void vlua_setfuncs(lua_State *L, const luaL_Reg *regs);

/* Pushes a new contiguous tensor (uninitialised memory); raises on a bad shape or no memory. */
vlua_tensor *vlua_new(lua_State *L, vl_dtype dtype, int ndim, const int64_t *shape);
/* Pushes a new tensor shaped like `like`. */
vlua_tensor *vlua_new_like(lua_State *L, const vl_tensor *like, vl_dtype dtype);
/* Pushes a view `view` sharing the storage of the tensor at stack index `base`. */
vlua_tensor *vlua_new_view(lua_State *L, int base, const vl_tensor *view);

/* The tensor at arg (raises "bad argument #arg to 'fn' (velua.Tensor expected, got X)" or
 * "... memory was released by free()"). */
vlua_tensor *vlua_check(lua_State *L, int arg);
/* The tensor at arg, or NULL if the value is not a tensor (no error). */
vlua_tensor *vlua_test(lua_State *L, int arg);

/* Records an in-place write into t's storage (bumps its version). */
static inline void vlua_mark_written(vlua_tensor *t) { t->storage->version++; }

/* Raises a Lua error "fname: message" when st != VL_OK, and "interrupted" when an interrupt
 * arrived during an interrupt_call (see bind_interrupt.c) or st is VL_ERR_INTERRUPTED. */
void vlua_check_status(lua_State *L, const char *fname, vl_status st, const vl_error *err);
/* Raises "interrupted" (and consumes the interrupt) if a SIGINT arrived while armed. */
void vlua_interrupt_check(lua_State *L);

/* A 1-based dim (negative counts from the end) at arg converted to 0-based; `extra` allows the
 * position one past the last dim (for unsqueeze/stack). */
int vlua_checkdim(lua_State *L, int arg, int ndim, bool extra);
/* A shape given as a table {3, 4} at arg or as numbers arg, arg+1, ...; returns ndim.
 * *next receives the first stack index after the shape. */
int vlua_checkshape(lua_State *L, int arg, int64_t *shape, int *next);
/* Reads option `key` (a dtype name) from the options table at arg, or returns def. */
vl_dtype vlua_optdtype(lua_State *L, int arg, vl_dtype def);
/* Parses a dtype name at arg. */
vl_dtype vlua_checkdtype(lua_State *L, int arg);
/* An integer argument within [lo, hi] with a message naming it. */
int64_t vlua_checkint_range(lua_State *L, int arg, const char *what, int64_t lo, int64_t hi);

/* Pushes a Lua array of n integers (a shape, strides, ...). */
void vlua_push_int_array(lua_State *L, int n, const int64_t *v);

/* Pushes the value of element `index` of t as a Lua number, integer or boolean. */
void vlua_push_elem(lua_State *L, const vl_tensor *t, const int64_t *index);

/* Pushes a contiguous tensor with the same values as the one at arg (itself if already
 * contiguous) and returns it. */
vlua_tensor *vlua_contiguous(lua_State *L, int arg);
/* Pushes a tensor with the values of the one at arg converted to dtype (itself if already). */
vlua_tensor *vlua_cast(lua_State *L, int arg, vl_dtype dtype);

/* Registration of each binding file's functions into the module table on top of the stack. */
void vlua_register_tensor(lua_State *L);
void vlua_register_ops(lua_State *L);
void vlua_register_reduce(lua_State *L);
void vlua_register_blas(lua_State *L);
void vlua_register_index(lua_State *L);
void vlua_register_random(lua_State *L);
void vlua_register_sparse(lua_State *L);
void vlua_register_bench(lua_State *L);
void vlua_register_h5(lua_State *L);
void vlua_register_optim(lua_State *L);
void vlua_register_special(lua_State *L);
void vlua_register_pp(lua_State *L);
void vlua_register_deepvelo(lua_State *L);
void vlua_register_dropout(lua_State *L);
void vlua_register_velocity(lua_State *L);
void vlua_register_interrupt(lua_State *L);
void vlua_register_memory(lua_State *L);

#endif
