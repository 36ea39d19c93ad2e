#include "cli/cli_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "lsllama %s: %s expects an integer in [%ld, %ld], got '%s'\n", cmd, opt, lo, hi,
                s ? s : "(nothing)");
        return 0;
    }
    *out = v;
    return 1;
}

long cli_getline(char **buf, size_t *cap, FILE *f) {
    ssize_t n = getline(buf, cap, f);
    if (n < 0) return -1;
    while (n > 0 && ((*buf)[n - 1] == '\n' || (*buf)[n - 1] == '\r')) (*buf)[--n] = 0;
    return (long)n;
}

long cli_parse_ids(const char *line, int32_t **ids, size_t *cap, char *errbuf, size_t errcap) {
    long n = 0;
    const char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ' ' && *end != '\t' && *end != ',')) {
            snprintf(errbuf, errcap, "'%.*s' is not a token id", (int)strcspn(p, " \t,"), p);
            return -1;
        }
        if ((size_t)n == *cap) {
            size_t nc = *cap ? 2 * *cap : 64;
            int32_t *ni = realloc(*ids, nc * sizeof *ni);
            if (!ni) {
                snprintf(errbuf, errcap, "out of memory");
                return -1;
            }
            *ids = ni;
            *cap = nc;
        }
        (*ids)[n++] = (int32_t)v;
        p = end;
    }
    return n;
}
