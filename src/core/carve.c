#include "core/carve.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

int ll_carve_alloc(void **block, size_t *bytes, ll_carve_fn carve, void *fields, size_t fields_size,
                   const void *ctx, const char *what, ll_error *err) {
    /* counting pass on a copy, so fields keeps its pointers if malloc fails */
    void *scratch = malloc(fields_size);
    if (!scratch) return ll_fail(err, LL_ERR_NOMEM, "out of memory planning %s", what);
    memcpy(scratch, fields, fields_size);
    ll_carver cv = {0};
    carve(&cv, scratch, ctx);
    free(scratch);
    void *mem = malloc(cv.used ? cv.used : 1);
    if (!mem) return ll_fail(err, LL_ERR_NOMEM, "cannot allocate %.1f MB for %s", cv.used / 1e6, what);
    ll_carver real = {.base = mem};
    carve(&real, fields, ctx);
    *block = mem;
    if (bytes) *bytes = real.used;
    return LL_OK;
}
