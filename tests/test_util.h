/* Minimal assertion helpers for the C tests (each tests/test_*.c is one ctest
 * test). A failed CHECK prints file:line and the condition and marks the test
 * failed; the test's main returns test_summary(). */
#ifndef LL_TEST_UTIL_H
#define LL_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures_ = 0, test_checks_ = 0;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        test_checks_++;                                                                 \
        if (!(cond)) {                                                                  \
            test_failures_++;                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);     \
        }                                                                               \
    } while (0)

#define CHECK_MSG(cond, ...)                                                            \
    do {                                                                                \
        test_checks_++;                                                                 \
        if (!(cond)) {                                                                  \
            test_failures_++;                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
        }                                                                               \
    } while (0)

/* Stop the test now (e.g. a fixture could not be read). */
#define REQUIRE(cond)                                                                   \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond);   \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)

static inline int test_summary(const char *name) {
    printf("%s: %d checks, %d failed\n", name, test_checks_, test_failures_);
    return test_failures_ ? 1 : 0;
}

static inline double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || d != d) m = d != d ? INFINITY : d;
    }
    return m;
}

static inline double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

/* Checks got[n] against a reference want[n]: the largest difference at most tol times want's largest magnitude
 * (or tol when want is all zeros); returns that ratio. */
static inline double test_close_rel(const char *what, const float *got, const float *want, size_t n, double tol) {
    const double scale = max_abs(want, n), d = max_abs_diff(got, want, n);
    CHECK_MSG(d <= tol * (scale > 0 ? scale : 1), "%s: max abs error %.3g vs max |ref| %.3g", what, d, scale);
    return d / (scale > 0 ? scale : 1);
}

/* A whole file, NUL-terminated (malloc'd), its size in *n (may be NULL);
 * NULL when it cannot be opened or read. */
static inline char *test_read_file_n(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    const long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (s && fread(s, 1, (size_t)len, f) != (size_t)len) {
        free(s);
        s = NULL;
    }
    if (s) s[len] = 0;
    fclose(f);
    if (s && n) *n = len;
    return s;
}

/* A whole file, NUL-terminated (malloc'd), or NULL when it cannot be opened or read. */
static inline char *test_read_file(const char *path) { return test_read_file_n(path, NULL); }

/* A whole file into *out (as test_read_file): its size in bytes, or -1. */
static inline long test_file_bytes(const char *path, char **out) {
    long n = -1;
    *out = test_read_file_n(path, &n);
    return *out ? n : -1;
}

/* 1 when two files exist, are not empty and hold the same bytes. */
static inline int test_same_bytes(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    const long na = test_file_bytes(a, &x), nb = test_file_bytes(b, &y);
    const int same = na > 0 && na == nb && !memcmp(x, y, (size_t)na);
    free(x), free(y);
    return same;
}

/* Runs a shell command, echoed first (for the test's log); system()'s status. */
static inline int test_run(const char *cmd) {
    printf("$ %s\n", cmd);
    fflush(stdout);
    return system(cmd);
}

/* A text file split into lines (the newlines replaced by NULs, in one buffer). */
typedef struct test_lines {
    char *buf;
    char **line;
    size_t n;
} test_lines;

/* 0, or -1 when the file cannot be read. */
static inline int test_read_lines(const char *path, test_lines *L) {
    L->line = NULL;
    L->n = 0;
    if (!(L->buf = test_read_file(path))) return -1;
    size_t cap = 1024;
    L->line = malloc(cap * sizeof *L->line);
    REQUIRE(L->line);
    char *p = L->buf, *end = L->buf + strlen(L->buf);
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        *nl = 0;
        if (L->n == cap) REQUIRE((L->line = realloc(L->line, (cap *= 2) * sizeof *L->line)));
        L->line[L->n++] = p;
        p = nl + 1;
    }
    return 0;
}

static inline void test_free_lines(test_lines *L) {
    free(L->buf);
    free(L->line);
}

/* Hex digits (two a byte) to bytes; returns the byte count. */
static inline size_t test_unhex(const char *h, char *out) {
    size_t n = 0;
    for (; h[0] && h[1]; h += 2) {
        unsigned v;
        if (sscanf(h, "%2x", &v) != 1) break;
        out[n++] = (char)v;
    }
    return n;
}

/* Writes text to dir/name (the test stops if it cannot). */
static inline void test_write_file(const char *dir, const char *name, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
}

/* Writes n bytes (NULs allowed) to dir/name and returns the path (one of 8
 * rotating buffers: valid until eight more calls). The test stops if it cannot. */
static inline const char *test_write_bytes(const char *dir, const char *name, const char *bytes, size_t n) {
    static char paths[8][1024];
    static int k;
    char *p = paths[k++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    REQUIRE(f);
    REQUIRE(fwrite(bytes, 1, n, f) == n);
    REQUIRE(fclose(f) == 0);
    return p;
}

/* buf = the path of a model file scripts/setup.sh fetched into the cache (LSLLAMA_CACHE, else ~/.cache/lsllama). */
static inline void test_cached_model(char *buf, size_t cap, const char *file) {
    const char *cache = getenv("LSLLAMA_CACHE");
    if (cache && *cache) snprintf(buf, cap, "%s/models/%s", cache, file);
    else snprintf(buf, cap, "%s/.cache/lsllama/models/%s", getenv("HOME") ? getenv("HOME") : ".", file);
}

/* The default real model, fetched by scripts/setup.sh into the cache. */
static inline const char *test_smollm2_path(void) {
    static char buf[4096];
    test_cached_model(buf, sizeof buf, "SmolLM2-135M-Instruct.Q4_1.gguf");
    return buf;
}

/* Gemma 3 270M (Q4_K_M GGUF), fetched by scripts/setup.sh --tests into the cache. */
static inline const char *test_gemma3_path(void) {
    static char buf[4096];
    test_cached_model(buf, sizeof buf, "gemma-3-270m-q4_k_m.gguf");
    return buf;
}

#endif
