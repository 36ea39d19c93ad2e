/* Tokenizer throughput, one thread: encode every SST-2 train sentence (the
 * sentence column, as the parity test reads it), several passes.
 * usage: bench_tokenizer [TOKENIZER] [SST2_TSV] [PASSES]
 * Prints tokens/s per pass and the best; bench/bench_tokenizer.sh runs it
 * next to the Hugging Face fast tokenizer and prints the ratio. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "lsllama_tokenizer.h"

int main(int argc, char **argv) {
    char def_tok[2048];
    snprintf(def_tok, sizeof def_tok, "%s/.cache/lsllama/models/SmolLM2-135M-Instruct.Q4_1.gguf", getenv("HOME"));
    const char *tok = argc > 1 ? argv[1] : def_tok;
    const char *tsv = argc > 2 ? argv[2] : "../shared/data/sst2/train.tsv";
    int passes = argc > 3 ? atoi(argv[3]) : 5;
    ll_tokenizer *t;
    ll_error err;
    double t0 = bench_now();
    if (ll_tokenizer_load(&t, tok, &err)) {
        fprintf(stderr, "bench_tokenizer: %s\n", err.message);
        return 1;
    }
    double load_s = bench_now() - t0;
    FILE *f = fopen(tsv, "rb");
    if (!f) {
        fprintf(stderr, "bench_tokenizer: cannot open %s\n", tsv);
        return 1;
    }
    size_t cap = 1 << 16, n = 0;
    char **lines = malloc(cap * sizeof *lines);
    size_t *lens = malloc(cap * sizeof *lens);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t r;
    int first = 1;
    size_t bytes = 0;
    while ((r = getline(&line, &lcap, f)) >= 0) {
        if (first) { first = 0; continue; } /* header */
        char *tab = strrchr(line, '\t');
        size_t l = tab ? (size_t)(tab - line) : (size_t)r;
        if (n == cap) {
            cap *= 2;
            lines = realloc(lines, cap * sizeof *lines);
            lens = realloc(lens, cap * sizeof *lens);
        }
        lines[n] = malloc(l + 1);
        memcpy(lines[n], line, l);
        lines[n][l] = 0;
        lens[n++] = l;
        bytes += l;
    }
    fclose(f);
    free(line);
    ll_encoding enc = {0};
    double best = 0;
    size_t tokens = 0;
    bench_print_machine(stdout);
    printf("lsllama: %s (load %.3f s), %zu sentences, %zu bytes\n", tok, load_s, n, bytes);
    for (int p = 0; p < passes; p++) {
        tokens = 0;
        double s = bench_now();
        for (size_t i = 0; i < n; i++) {
            if (ll_tokenizer_encode(t, lines[i], lens[i], LL_TOK_DEFAULT, &enc, &err)) {
                fprintf(stderr, "bench_tokenizer: %s\n", err.message);
                return 1;
            }
            tokens += enc.n;
        }
        double dt = bench_now() - s;
        double tps = tokens / dt;
        if (tps > best) best = tps;
        printf("lsllama pass %d: %zu tokens in %.3f s = %.0f tokens/s (%.1f MB/s)\n", p + 1, tokens, dt, tps,
               bytes / dt / 1e6);
    }
    printf("lsllama best: %.0f tokens/s\n", best);
    ll_encoding_free(&enc);
    for (size_t i = 0; i < n; i++) free(lines[i]);
    free(lines);
    free(lens);
    ll_tokenizer_free(t);
    return 0;
}
