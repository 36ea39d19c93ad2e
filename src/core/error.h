/* Internal error helpers. */
#ifndef LL_CORE_ERROR_H
#define LL_CORE_ERROR_H

#include "lsllama.h"

/* Record an error and return code (so callers can `return ll_fail(...)`).
 * err may be NULL. The first error recorded wins only if the caller does not
 * overwrite it; use ll_fail_prefix to add outer context. */
int ll_fail(ll_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prepend context ("file.gguf: ") to an existing message, keeping the code. */
int ll_fail_prefix(ll_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void ll_error_clear(ll_error *err);

#endif
