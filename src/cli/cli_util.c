#include "cli_util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lsllama_tokenizer.h"

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

int cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi, int hi_open, double *out) {
    char *end = NULL;
    errno = 0;
    const double v = s ? strtod(s, &end) : 0;
    /* NaN fails both comparisons; "inf" and overflow fail the range. The value is stored as a float: its rounded
     * value must be in range too (0.99999999999 becomes 1.0f, which [0, 1) excludes). */
    const double vf = (double)(float)v;
    /* the bounds as floats too: a bound such as 1e-12 rounds to a float below itself, and the value written as
     * the bound must pass, as the message says */
    const double lof = (double)(float)lo, hif = (double)(float)hi;
    if (!s || !*s || *end || !isfinite(v) || !(v >= lo) || (hi_open ? !(v < hi) : !(v <= hi)) || !isfinite(vf) ||
        !(vf >= lof) || (hi_open ? !(vf < hif) : !(vf <= hif))) {
        fprintf(stderr, "lsllama %s: %s expects a number in [%g, %g%c, got '%s'\n", cmd, opt, lo, hi,
                hi_open ? ')' : ']', s ? s : "(nothing)");
        return 0;
    }
    *out = v;
    return 1;
}

void cli_unexpected(const char *cmd, const char *arg, int is_last, const char *value_opts) {
    const size_t n = strlen(arg);
    for (const char *p = value_opts; is_last && n && (p = strstr(p, arg)); p += n)
        if ((p == value_opts || p[-1] == ' ') && (p[n] == ' ' || !p[n])) {
            fprintf(stderr, "lsllama %s: %s needs a value (see --help)\n", cmd, arg);
            return;
        }
    fprintf(stderr, "lsllama %s: unexpected argument '%s' (see --help)\n", cmd, arg);
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

/* ---- output ----------------------------------------------------------------- */

static const FILE *reported[8]; /* streams whose failure was already reported */

static int was_reported(const FILE *f) {
    for (size_t i = 0; i < sizeof reported / sizeof reported[0]; i++)
        if (reported[i] == f) return 1;
    return 0;
}

static int report(const char *cmd, FILE *f, const char *name, int e) {
    for (size_t i = 0; i < sizeof reported / sizeof reported[0]; i++)
        if (!reported[i]) {
            reported[i] = f;
            break;
        }
    fprintf(stderr, "lsllama %s: error writing %s: %s\n", cmd, name, strerror(e ? e : EIO));
    return 0;
}

int cli_output_ok(const char *cmd, FILE *f, const char *name) {
    int e = errno; /* set by the write that failed, when it was the last call */
    if (was_reported(f)) return 0;
    if (!ferror(f)) return 1;
    clearerr(f);
    if (fflush(f) != 0) e = errno; /* what is still buffered fails again, with a fresh reason */
    return report(cmd, f, name, e);
}

int cli_output_finish(const char *cmd, FILE *f, const char *name, int close_it) {
    int e = 0, bad = was_reported(f) || ferror(f);
    errno = 0;
    if (fflush(f) != 0) bad = 1, e = errno;
    if (close_it && fclose(f) != 0 && !e) bad = 1, e = errno;
    if (!bad) return 1;
    return was_reported(f) ? 0 : report(cmd, f, name, e);
}

int cli_all_finite(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* ---- progress --------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_progress_init(cli_progress *p, const char *what, const char *unit, int enabled) {
    memset(p, 0, sizeof *p);
    p->on = enabled && isatty(STDERR_FILENO);
    p->what = what;
    p->unit = unit;
    p->t0 = now_s();
}

void cli_progress_update(void *ctx, size_t done, size_t total) {
    cli_progress *p = ctx;
    if (!p || !p->on) return;
    const double t = now_s();
    if (p->shown && done < total && t - p->last < 0.2) return;
    const double el = t - p->t0, eta = done ? el / (double)done * (double)(total - done) : 0;
    fprintf(stderr, "\r%s: %zu/%zu %s (%.0f%%)  %.1f %s/s  ETA %02d:%02d:%02d   ", p->what, done, total, p->unit,
            total ? 100.0 * (double)done / (double)total : 100.0, el > 0 ? (double)done / el : 0.0, p->unit,
            (int)(eta / 3600), (int)fmod(eta / 60, 60), (int)fmod(eta, 60));
    p->last = t;
    p->shown = 1;
}

void cli_progress_end(cli_progress *p) {
    if (p->on && p->shown) fputc('\n', stderr);
    p->shown = 0;
}

void cli_tokenizer_warning(const char *cmd, const struct ll_tokenizer *t) {
    const char *w = ll_tokenizer_warning(t);
    if (w) fprintf(stderr, "lsllama %s: warning: %s\n", cmd, w);
}

int cli_parse_compute(const char *cmd, const char *s, ll_compute *out) {
    if (ll_compute_parse(s, out) == LL_OK) return 1;
    fprintf(stderr, "lsllama %s: --compute must be f32 or bf16, got '%s'\n", cmd, s);
    return 0;
}

int cli_parse_base_precision(const char *cmd, const char *s, ll_base_precision *out) {
    if (ll_base_precision_parse(s, out) == LL_OK) return 1;
    fprintf(stderr, "lsllama %s: --base-precision must be stored, bf16, q8_0 or f32, got '%s'\n", cmd, s);
    return 0;
}
