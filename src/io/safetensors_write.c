#include "io/safetensors_write.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/atomic_file.h"

/* The safetensors spelling of t (which is ll_dtype_name's) and its element
 * size, or NULL for a type safetensors cannot hold (the block-quantized ones). */
static const char *st_dtype_string(ll_dtype t, size_t *elem) {
    switch (t) {
    case LL_DTYPE_F32: case LL_DTYPE_F16: case LL_DTYPE_BF16: case LL_DTYPE_I32: case LL_DTYPE_I64: case LL_DTYPE_U8:
        *elem = ll_dtype_block_bytes(t);
        return ll_dtype_name(t);
    default: return NULL;
    }
}

/* ---- a growing text buffer for the header --------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        const int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap ? b->cap : 1024;
        while (cap <= b->n + (size_t)k) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np, b->cap = cap;
    }
}

/* JSON string with escapes. */
static void sb_string(sbuf *b, const char *s) {
    sb_printf(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') sb_printf(b, "\\%c", *c);
        else if (*c < 0x20) sb_printf(b, "\\u%04x", *c);
        else sb_printf(b, "%c", *c);
    }
    sb_printf(b, "\"");
}

/* ---- writer ------------------------------------------------------------------ */

typedef struct entry {
    const ll_st_write_tensor *t;
    const char *dtype;
    size_t elem;
    uint64_t n_elems, nbytes, begin;
} entry;

static int entry_cmp(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->elem != y->elem) return x->elem > y->elem ? -1 : 1;
    return strcmp(x->t->name, y->t->name);
}

/* The f32 values of a row-produced tensor, one row at a time: calls fn(ctx,
 * values, n) per row; 0 when fn returns 0 or out of memory (*nomem set). */
static int for_each_row(const entry *e, int (*fn)(void *ctx, const float *x, uint64_t at, size_t n), void *ctx,
                        int *nomem) {
    const ll_st_write_tensor *t = e->t;
    const size_t rows = t->ndim ? (size_t)t->shape[0] : 1, cols = rows ? (size_t)(e->n_elems / rows) : 0;
    float *buf = malloc((cols ? cols : 1) * sizeof(float));
    if (!buf) return !(*nomem = 1);
    int ok = 1;
    for (size_t r = 0; r < rows && ok; r++) {
        t->row_fn(t->row_ctx, r, buf);
        ok = fn(ctx, buf, (uint64_t)r * cols, cols);
    }
    free(buf);
    return ok;
}

typedef struct write_ctx {
    FILE *fp;
    ll_dtype dtype;
} write_ctx;

/* Convert n f32 values x and write them (chunked, so no full-size copy). */
static int write_f32s(void *ctx, const float *x, uint64_t at, size_t n) {
    const write_ctx *w = ctx;
    (void)at;
    if (w->dtype == LL_DTYPE_F32) return n == 0 || fwrite(x, sizeof(float), n, w->fp) == n;
    uint16_t chunk[4096];
    for (size_t i = 0; i < n;) {
        const size_t m = n - i < 4096 ? n - i : 4096;
        for (size_t j = 0; j < m; j++)
            chunk[j] = w->dtype == LL_DTYPE_F16 ? ll_fp32_to_fp16(x[i + j]) : ll_fp32_to_bf16(x[i + j]);
        if (fwrite(chunk, 2, m, w->fp) != m) return 0;
        i += m;
    }
    return 1;
}

static int write_data(FILE *fp, const entry *e) {
    const ll_st_write_tensor *t = e->t;
    write_ctx w = {fp, t->dtype};
    if (t->row_fn) {
        int nomem = 0;
        return for_each_row(e, write_f32s, &w, &nomem);
    }
    if (t->dtype != LL_DTYPE_F16 && t->dtype != LL_DTYPE_BF16)
        return e->nbytes == 0 || fwrite(t->data, 1, e->nbytes, fp) == e->nbytes;
    return write_f32s(&w, t->data, 0, (size_t)e->n_elems);
}

typedef struct check_ctx {
    const char *path;
    const entry *e;
    ll_error *err;
    int rc;
} check_ctx;

/* No file of ours holds a NaN or an infinity, and a value too large for the
 * stored type (F16's largest is 65504) is an error, not an infinity. */
static int check_f32s(void *ctx, const float *x, uint64_t at, size_t n) {
    check_ctx *c = ctx;
    const ll_dtype dt = c->e->t->dtype;
    for (size_t i = 0; i < n; i++) {
        int bad = !isfinite(x[i]);
        if (!bad && dt == LL_DTYPE_F16) bad = (ll_fp32_to_fp16(x[i]) & 0x7C00) == 0x7C00;
        if (!bad && dt == LL_DTYPE_BF16) bad = (ll_fp32_to_bf16(x[i]) & 0x7F80) == 0x7F80;
        if (bad) {
            c->rc = ll_fail(c->err, LL_ERR_ARG, "%s: tensor '%s' element %llu is %g, which %s: not written", c->path,
                            c->e->t->name, (unsigned long long)(at + i), x[i],
                            !isfinite(x[i]) ? "is not finite" : dt == LL_DTYPE_F16 ? "does not fit F16 (largest 65504; "
                                                                "write f32 or bf16)" : "does not fit BF16");
            return 0;
        }
    }
    return 1;
}

static int check_values(const char *path, const entry *e, ll_error *err) {
    const ll_dtype dt = e->t->dtype;
    if (dt != LL_DTYPE_F32 && dt != LL_DTYPE_F16 && dt != LL_DTYPE_BF16) return LL_OK;
    check_ctx c = {path, e, err, LL_OK};
    if (!e->t->row_fn) {
        check_f32s(&c, e->t->data, 0, (size_t)e->n_elems);
        return c.rc;
    }
    int nomem = 0;
    for_each_row(e, check_f32s, &c, &nomem);
    if (nomem) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", path);
    return c.rc;
}

int ll_st_write_stream(FILE *fp, const char *path, const ll_st_write_tensor *tensors, size_t n,
                    const char *const *metadata, size_t n_meta, ll_error *err) {
    entry *es = calloc(n ? n : 1, sizeof *es);
    if (!es) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", path);
    int rc = LL_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        const ll_st_write_tensor *t = &tensors[i];
        entry *e = &es[i];
        e->t = t;
        if (!t->name || !*t->name || !strcmp(t->name, "__metadata__"))
            rc = ll_fail(err, LL_ERR_ARG, "%s: tensor %zu has an invalid name", path, i);
        else if (!(e->dtype = st_dtype_string(t->dtype, &e->elem)))
            rc = ll_fail(err, LL_ERR_ARG, "%s: tensor '%s': type %s cannot be written", path, t->name,
                         ll_dtype_name(t->dtype));
        else if (t->ndim < 0 || t->ndim > ST_MAX_DIMS)
            rc = ll_fail(err, LL_ERR_ARG, "%s: tensor '%s': %d dimensions", path, t->name, t->ndim);
        e->n_elems = 1;
        for (int d = 0; d < t->ndim && !rc; d++) {
            if (t->shape[d] < 0) rc = ll_fail(err, LL_ERR_ARG, "%s: tensor '%s': negative dimension", path, t->name);
            else e->n_elems *= (uint64_t)t->shape[d];
        }
        e->nbytes = e->n_elems * e->elem;
        if (!rc && t->row_fn && t->dtype != LL_DTYPE_F32 && t->dtype != LL_DTYPE_F16 && t->dtype != LL_DTYPE_BF16)
            rc = ll_fail(err, LL_ERR_ARG, "%s: tensor '%s': rows are produced as f32, not %s", path, t->name,
                         ll_dtype_name(t->dtype));
        if (!rc && e->n_elems && !t->data && !t->row_fn)
            rc = ll_fail(err, LL_ERR_ARG, "%s: tensor '%s' has no data", path, t->name);
        for (size_t j = 0; j < i && !rc; j++)
            if (!strcmp(tensors[j].name, t->name))
                rc = ll_fail(err, LL_ERR_ARG, "%s: tensor '%s' given twice", path, t->name);
        if (!rc) rc = check_values(path, e, err);
    }
    if (rc) {
        free(es);
        return rc;
    }
    qsort(es, n, sizeof *es, entry_cmp);
    sbuf h = {0};
    sb_printf(&h, "{\"__metadata__\":{");
    if (!metadata) {
        sb_printf(&h, "\"format\":\"pt\"");
    } else {
        for (size_t i = 0; i < n_meta; i++) {
            if (i) sb_printf(&h, ",");
            sb_string(&h, metadata[2 * i]);
            sb_printf(&h, ":");
            sb_string(&h, metadata[2 * i + 1]);
        }
    }
    sb_printf(&h, "}");
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        entry *e = &es[i];
        e->begin = off;
        sb_printf(&h, ",");
        sb_string(&h, e->t->name);
        sb_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", e->dtype);
        for (int d = 0; d < e->t->ndim; d++) sb_printf(&h, d ? ",%lld" : "%lld", (long long)e->t->shape[d]);
        sb_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                  (unsigned long long)(off + e->nbytes));
        off += e->nbytes;
    }
    sb_printf(&h, "}");
    while (!h.oom && h.n % 8) sb_printf(&h, " ");
    if (h.oom) {
        free(h.p);
        free(es);
        return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory for the header", path);
    }
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)h.n >> (8 * i));
    int ok = fwrite(len, 1, 8, fp) == 8 && fwrite(h.p, 1, h.n, fp) == h.n;
    for (size_t i = 0; i < n && ok; i++) ok = write_data(fp, &es[i]);
    if (!ok) rc = ll_fail(err, LL_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    free(h.p);
    free(es);
    return rc;
}

int ll_st_write_file(const char *path, const ll_st_write_tensor *tensors, size_t n, const char *const *metadata,
                  size_t n_meta, ll_error *err) {
    ll_atomic_file f;
    int rc = ll_atomic_open(&f, path, err);
    if (rc) return rc;
    if ((rc = ll_st_write_stream(f.fp, path, tensors, n, metadata, n_meta, err))) {
        ll_atomic_abort(&f);
        return rc;
    }
    if ((rc = ll_atomic_close(&f, err))) return rc;
    return ll_atomic_commit(&f, err);
}
