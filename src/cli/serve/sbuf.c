#include "sbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(sbuf *b, size_t more) {
    if (b->oom) return -1;
    if (b->len + more + 1 <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->len + more + 1) nc *= 2;
    char *q = realloc(b->p, nc);
    if (!q) {
        b->oom = 1;
        return -1;
    }
    b->p = q;
    b->cap = nc;
    return 0;
}

void sb_put(sbuf *b, const char *s, size_t n) {
    if (reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

void sb_printf(sbuf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        sb_put(b, small, (size_t)n);
        return;
    }
    if (reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sb_json_str(sbuf *b, const char *s, size_t n) {
    if (reserve(b, n + 2)) return;
    b->p[b->len++] = '"';
    size_t run = 0; /* bytes copied as they are, in one go */
    for (size_t i = 0; i < n; i++) {
        const unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\') continue;
        sb_put(b, s + run, i - run);
        if (ch == '"' || ch == '\\') {
            const char esc[2] = {'\\', (char)ch};
            sb_put(b, esc, 2);
        } else {
            sb_printf(b, "\\u%04x", ch);
        }
        run = i + 1;
    }
    sb_put(b, s + run, n - run);
    sb_put(b, "\"", 1);
}

void sb_json_float(sbuf *b, float v) { sb_printf(b, "%.9g", (double)v); }

char *sb_take(sbuf *b, size_t *len) {
    if (b->oom || reserve(b, 0)) {
        sb_free(b);
        return NULL;
    }
    char *p = b->p;
    if (len) *len = b->len;
    memset(b, 0, sizeof *b);
    return p;
}

void sb_free(sbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}
