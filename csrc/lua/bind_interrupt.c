/* SIGINT as a Lua error "interrupted" (the notebook's "interrupt kernel", Ctrl-C in a script):
 * interrupt_call(f, msgh, ...) runs f like xpcall with a SIGINT handler installed. The handler
 * sets a flag that long C kernels poll through their context (vl_ctx.interrupt: blocked loops
 * stop starting blocks) and a count hook, as lua.c's laction does, so that plain Lua loops stop
 * at their next instruction. Whichever notices first raises "interrupted" and consumes the flag.
 *
 * Signal dispositions are process-wide, so this state is too: the one place with C globals
 * (as lua.c's globalL). One Lua state at a time is armed; nested calls keep the outer arming. */
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "lua_tensor.h"

static volatile sig_atomic_t flag;  /* a SIGINT arrived while armed and is not yet consumed */
static volatile sig_atomic_t armed; /* inside interrupt_call */
static lua_State *armed_L;          /* the state the hook goes on */
static pthread_t armed_thread;      /* the thread running armed_L */
static vl_ctx *armed_ctx;
static const volatile sig_atomic_t *saved_ctx_interrupt;
static struct sigaction saved_action; /* SIGINT disposition before arming */
static lua_Hook saved_hook;           /* the user's own hook (a debugger, coverage) */
static int saved_mask, saved_count;

static void restore_hook(lua_State *L);

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  restore_hook(L);
  if (!armed || !flag) return; /* already consumed by a C kernel's check */
  flag = 0;
  lua_pushliteral(L, "interrupted");
  lua_error(L);
}

static void restore_hook(lua_State *L) {
  if (lua_gethook(L) == interrupt_hook) lua_sethook(L, saved_hook, saved_mask, saved_count);
}

static void on_sigint(int sig) {
  if (!armed) return;
  flag = 1;
  if (!pthread_equal(pthread_self(), armed_thread)) {
    /* landed on a worker (ours or OpenBLAS's): the hook must be set by the Lua thread */
    pthread_kill(armed_thread, sig);
    return;
  }
  if (lua_gethook(armed_L) != interrupt_hook) {
    saved_hook = lua_gethook(armed_L);
    saved_mask = lua_gethookmask(armed_L);
    saved_count = lua_gethookcount(armed_L);
  }
  /* count events only: no hook on the calls of C functions (a C message handler included) */
  lua_sethook(armed_L, interrupt_hook, LUA_MASKCOUNT, 1);
}

static void arm(lua_State *L) {
  armed_L = L;
  armed_thread = pthread_self();
  armed_ctx = vlua_ctx(L);
  saved_ctx_interrupt = armed_ctx->interrupt;
  armed_ctx->interrupt = &flag;
  flag = 0;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART; /* reads and writes in progress resume instead of failing */
  armed = 1;
  sigaction(SIGINT, &sa, &saved_action);
}

/* Back to the state before arm(); a SIGINT now has its previous effect. Pure C: no Lua code runs
 * in between, so no hook can fire half-way. */
static void disarm(void) {
  if (!armed) return;
  armed = 0;
  sigaction(SIGINT, &saved_action, NULL);
  restore_hook(armed_L);
  flag = 0;
  armed_ctx->interrupt = saved_ctx_interrupt;
}

void vlua_interrupt_check(lua_State *L) {
  if (!armed || !flag) return;
  flag = 0;
  restore_hook(armed_L);
  lua_pushliteral(L, "interrupted");
  lua_error(L);
}

/* message handler of an armed call: disarms before any Lua runs (the user's handler included),
 * then calls the user's handler (upvalue 1) if any */
static int armed_msgh(lua_State *L) {
  disarm();
  if (lua_isnil(L, lua_upvalueindex(1))) return 1;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  return 1;
}

/* interrupt_call(f, msgh, ...) -> true, results... | false, msgh(err): xpcall(f, msgh, ...)
 * during which SIGINT raises "interrupted" inside f. msgh may be nil. */
static int l_interrupt_call(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, lua_gettop(L) < 2 ? 2 : lua_gettop(L));
  int nargs = lua_gettop(L) - 2;
  bool outer = !armed;
  if (outer) {
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, armed_msgh, 1);
  } else {
    lua_pushvalue(L, 2); /* nested: a plain xpcall, the outer call owns the arming */
  }
  lua_replace(L, 2); /* index 2: the message handler */
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 1); /* f above the handler, then the arguments */
  lua_remove(L, 1);    /* handler at 1, f at 2, args */
  if (outer) arm(L);
  int st = lua_pcall(L, nargs, LUA_MULTRET, lua_isnil(L, 1) && !outer ? 0 : 1);
  if (outer) disarm();
  lua_pushboolean(L, st == LUA_OK);
  lua_replace(L, 1);
  return lua_gettop(L);
}

/* interrupt_ignore(): SIGINT is ignored outside interrupt_call (a kernel waiting for requests) */
static int l_interrupt_ignore(lua_State *L) {
  if (armed) {
    memset(&saved_action, 0, sizeof saved_action);
    saved_action.sa_handler = SIG_IGN;
    sigemptyset(&saved_action.sa_mask);
  } else {
    signal(SIGINT, SIG_IGN);
  }
  return 0;
}

/* interrupt_pending() -> bool: a SIGINT arrived during the current interrupt_call and has not
 * raised yet (for code that wants to stop at a clean point itself) */
static int l_interrupt_pending(lua_State *L) {
  lua_pushboolean(L, armed && flag);
  return 1;
}

void vlua_register_interrupt(lua_State *L) {
  static const luaL_Reg regs[] = {
    {"interrupt_call", l_interrupt_call},
    {"interrupt_ignore", l_interrupt_ignore},
    {"interrupt_pending", l_interrupt_pending},
    {NULL, NULL}};
  vlua_setfuncs(L, regs);
}
