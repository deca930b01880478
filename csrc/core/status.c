/* Error recording for the core (see status.h). */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>

vl_status vl_fail(vl_error *err, vl_status code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
  }
  return code;
}

void vl_error_clear(vl_error *err) {
  if (err) {
    err->code = VL_OK;
    err->msg[0] = '\0';
  }
}
