/* A growable text buffer for the server's answers (JSON, Prometheus text).
 * An allocation failure sets oom and makes further appends no-ops; the
 * caller checks oom once at the end. */
#ifndef LL_SERVE_SBUF_H
#define LL_SERVE_SBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

void sb_put(sbuf *b, const char *s, size_t n);
void sb_puts(sbuf *b, const char *s);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s[0..n) as a JSON string: quotes, '"' and '\\' escaped, control bytes as \u00XX; other bytes as they are
 * (the caller passes valid UTF-8). */
void sb_json_str(sbuf *b, const char *s, size_t n);
/* A float as JSON: the shortest "%.9g" form (round-trips a float exactly); the caller passes finite values. */
void sb_json_float(sbuf *b, float v);
/* Hands the text over (NUL-terminated; NULL after oom); b is empty afterwards. */
char *sb_take(sbuf *b, size_t *len);
void sb_free(sbuf *b);

#endif
