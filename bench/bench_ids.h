/* Token-id files for the forward benchmarks: one sequence per line of
 * whitespace-separated ids, blank lines skipped. Header-only and free of
 * lsllama's headers, so bench/llamacpp_forward.c (built against libllama
 * alone) reads the same sequences as bench_forward. */
#ifndef LL_BENCH_IDS_H
#define LL_BENCH_IDS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Reads f to its end: *tok the ids laid end to end, *start[n + 1] each
 * sequence's first id (start[0] = 0); returns n, the number of sequences.
 * Exits with a message when memory runs out. */
static inline size_t bench_read_ids(FILE *f, int32_t **tok_out, int32_t **start_out) {
    size_t cap = 1 << 16, n_tok = 0, cap_s = 1024, n_seq = 0;
    int32_t *tok = malloc(cap * sizeof *tok), *start = malloc(cap_s * sizeof *start);
    char *line = NULL;
    size_t lcap = 0;
    if (!tok || !start) goto nomem;
    start[0] = 0;
    while (getline(&line, &lcap, f) > 0) {
        char *p = line, *end;
        const size_t before = n_tok;
        for (long v = strtol(p, &end, 10); end != p; p = end, v = strtol(p, &end, 10)) {
            if (n_tok == cap && !(tok = realloc(tok, (cap *= 2) * sizeof *tok))) goto nomem;
            tok[n_tok++] = (int32_t)v;
        }
        if (n_tok == before) continue;
        if (n_seq + 2 >= cap_s && !(start = realloc(start, (cap_s *= 2) * sizeof *start))) goto nomem;
        start[++n_seq] = (int32_t)n_tok;
    }
    free(line);
    *tok_out = tok, *start_out = start;
    return n_seq;
nomem:
    fprintf(stderr, "out of memory reading token ids\n");
    exit(1);
}

#endif
