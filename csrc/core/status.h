/* Status codes and the error buffer that every fallible core function fills.
 * The core never aborts: it returns a code and a message; csrc/lua turns it into a Lua error. */
#ifndef VELUA_STATUS_H
#define VELUA_STATUS_H

typedef enum {
  VL_OK = 0,
  VL_ERR_SHAPE,       /* shapes do not fit together */
  VL_ERR_DTYPE,       /* dtype not supported by the operation */
  VL_ERR_INDEX,       /* index out of range */
  VL_ERR_VALUE,       /* bad value (negative size, NaN where not allowed, ...) */
  VL_ERR_NOMEM,       /* allocation failed */
  VL_ERR_IO,          /* file or library failure */
  VL_ERR_UNSUPPORTED, /* valid request the core cannot do */
  VL_ERR_INTERRUPTED  /* stopped early on request (ctx->interrupt); outputs are incomplete */
} vl_status;

#define VL_ERRMSG_SIZE 512

typedef struct {
  vl_status code;
  char msg[VL_ERRMSG_SIZE];
} vl_error;

/* Records code and a printf-style message in err (which may be NULL) and returns code. */
vl_status vl_fail(vl_error *err, vl_status code, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  ;

/* Clears err to VL_OK with an empty message. */
void vl_error_clear(vl_error *err);

#endif
