#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *ll_version(void) { return LL_VERSION_STRING; }

const char *ll_status_name(int code) {
    switch (code) {
    case LL_OK: return "ok";
    case LL_ERR_IO: return "i/o error";
    case LL_ERR_FORMAT: return "format error";
    case LL_ERR_UNSUPPORTED: return "unsupported";
    case LL_ERR_SHAPE: return "shape error";
    case LL_ERR_CONFIG: return "config error";
    case LL_ERR_NOMEM: return "out of memory";
    case LL_ERR_ARG: return "invalid argument";
    default: return "error";
    }
}

int ll_fail(ll_error *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int ll_fail_prefix(ll_error *err, const char *fmt, ...) {
    if (!err) return LL_ERR_ARG;
    char prefix[256], old[sizeof err->message - 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    snprintf(old, sizeof old, "%s", err->message);
    snprintf(err->message, sizeof err->message, "%s%s", prefix, old);
    return err->code;
}

void ll_error_clear(ll_error *err) {
    if (err) {
        err->code = LL_OK;
        err->message[0] = 0;
    }
}
