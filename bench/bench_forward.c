/* Forward throughput of a model over real sentences packed into batches of
 * about N tokens (no padding), beside GEMM figures measured in the same run
 * (ll_gemm and OpenBLAS sgemm). Prints tokens/s, achieved GFLOP/s, the
 * fraction of ll_gemm's rate, peak RSS.
 *
 *   bench_forward MODEL (--tsv FILE | --ids FILE) [--batch-tokens 2048]
 *                 [--reps 3] [--mask causal|bidirectional] [--compute f32|bf16]
 *
 * --tsv: a TSV with a header whose first column is the text (SST-2), encoded
 * with the model's own tokenizer; --ids: one token-id sequence per line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "lsllama.h"
#include "lsllama_tokenizer.h"
#include "bench_ids.h"
#include "bench_util.h"

int main(int argc, char **argv) {
    const char *model_path = NULL, *ids_path = NULL, *tsv_path = NULL;
    ll_load_options lo = {0};
    int batch_tokens = 2048, reps = 3, bidir = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ids") && i + 1 < argc) ids_path = argv[++i];
        else if (!strcmp(argv[i], "--tsv") && i + 1 < argc) tsv_path = argv[++i];
        else if (!strcmp(argv[i], "--batch-tokens") && i + 1 < argc) batch_tokens = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mask") && i + 1 < argc) bidir = !strcmp(argv[++i], "bidirectional");
        else if (!strcmp(argv[i], "--compute") && i + 1 < argc) {
            if (ll_compute_parse(argv[++i], &lo.compute)) {
                fprintf(stderr, "bench_forward: --compute must be f32 or bf16\n");
                return 2;
            }
        }
        else model_path = argv[i];
    }
    if (!model_path || !(ids_path || tsv_path) || batch_tokens < 1 || reps < 1) {
        fprintf(stderr, "usage: bench_forward MODEL (--tsv FILE | --ids FILE) [--batch-tokens N] [--reps R] "
                        "[--mask causal|bidirectional] [--compute f32|bf16]\n");
        return 2;
    }
    ll_error err = {0};
    FILE *f;
    if (tsv_path) { /* tokenize the first column into a temporary id file */
        ll_tokenizer *tk;
        if (ll_tokenizer_load(&tk, model_path, &err)) {
            fprintf(stderr, "bench_forward: %s\n", err.message);
            return 1;
        }
        FILE *in = fopen(tsv_path, "r");
        if (!in) {
            perror(tsv_path);
            return 1;
        }
        f = tmpfile();
        char *l = NULL;
        size_t lc = 0;
        ll_encoding enc = {0};
        for (int first = 1; getline(&l, &lc, in) > 0; first = 0) {
            if (first) continue; /* header */
            const size_t n = strcspn(l, "\t\n");
            if (ll_tokenizer_encode(tk, l, n, LL_TOK_DEFAULT, &enc, &err)) {
                fprintf(stderr, "bench_forward: %s\n", err.message);
                return 1;
            }
            for (size_t i = 0; i < enc.n; i++) fprintf(f, i ? " %d" : "%d", enc.ids[i]);
            fputc('\n', f);
        }
        free(l);
        fclose(in);
        ll_encoding_free(&enc);
        ll_tokenizer_free(tk);
        rewind(f);
    } else if (!(f = fopen(ids_path, "r"))) {
        perror(ids_path);
        return 1;
    }
    int32_t *tok, *start;
    const size_t n_seq = bench_read_ids(f, &tok, &start), n_tok = (size_t)start[n_seq];
    fclose(f);

    ll_model *m;
    double t0 = bench_now();
    if (ll_model_load(&m, model_path, &lo, &err)) {
        fprintf(stderr, "bench_forward: %s\n", err.message);
        return 1;
    }
    const double load_s = bench_now() - t0;
    const ll_config *c = ll_model_config(m);
    const double D = c->dim, F = c->hidden_dim, QD = (double)c->n_heads * c->head_dim,
                 KVD = (double)c->n_kv_heads * c->head_dim;
    const double matmul_params = c->n_layers * (D * QD + 2 * D * KVD + QD * D + 3 * D * F);

    /* Batches: consecutive sentences up to batch_tokens each. */
    size_t n_batches = 0, *bstart = malloc((n_seq + 1) * sizeof *bstart);
    bstart[0] = 0;
    for (size_t s = 0; s < n_seq;) {
        size_t e = s + 1;
        while (e < n_seq && (size_t)(start[e + 1] - start[s]) <= (size_t)batch_tokens) e++;
        bstart[++n_batches] = e;
        s = e;
    }
    double flops = 0;
    for (size_t s = 0; s < n_seq; s++) {
        const double L = start[s + 1] - start[s];
        const double pairs = bidir ? L * L : L * (L + 1) / 2; /* attended (query, key) pairs */
        flops += 2 * matmul_params * L + c->n_layers * 4.0 * pairs * QD;
    }
    ll_forward_options fo = {.bidirectional_from = bidir ? 0 : c->n_layers};
    int32_t *sub = malloc((n_seq + 1) * 4);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t1 = bench_now();
        for (size_t b = 0; b < n_batches; b++) {
            const size_t s0 = bstart[b], s1 = bstart[b + 1];
            for (size_t s = s0; s <= s1; s++) sub[s - s0] = start[s] - start[s0];
            ll_batch batch = {tok + start[s0], sub, (int)(s1 - s0)};
            if (ll_forward(m, &batch, &fo, NULL, &err)) {
                fprintf(stderr, "bench_forward: %s\n", err.message);
                return 1;
            }
        }
        double dt = bench_now() - t1;
        if (dt < best) best = dt;
    }
    const double gemm_model = bench_gemm_gflops(1, batch_tokens, (int)F, (int)D, 5);
    const double blas_model = bench_gemm_gflops(0, batch_tokens, (int)F, (int)D, 5);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double gflops = flops / best / 1e9;
    bench_print_machine(stdout);
    printf("compute          %s: frozen-weight products by %s\n", ll_compute_name(ll_model_compute(m)),
           ll_compute_kernel(ll_model_compute(m)));
    printf("model            %s (%d layers, dim %d, %.1f M matmul parameters)\n", model_path, c->n_layers, c->dim,
           matmul_params / 1e6);
    printf("data             %zu sequences, %zu tokens, %zu batches of <= %d tokens, mask %s\n", n_seq, n_tok,
           n_batches, batch_tokens, bidir ? "bidirectional" : "causal");
    printf("load             %.2f s\n", load_s);
    printf("forward          %.3f s per pass (best of %d)\n", best, reps);
    printf("throughput       %.0f tokens/s\n", n_tok / best);
    printf("achieved         %.1f GFLOP/s (%.2f GFLOP per pass)\n", gflops, flops / 1e9);
    printf("gemm %dx%dx%d  ll_gemm (%s) %.1f GFLOP/s -> forward at %.0f%% of it; OpenBLAS sgemm %.1f GFLOP/s\n",
           batch_tokens, (int)F, (int)D, ll_gemm_backend(), gemm_model, 100 * gflops / gemm_model, blas_model);
    printf("peak RSS         %.0f MB\n", ru.ru_maxrss / 1024.0);
    ll_model_free(m);
    free(tok);
    free(start);
    free(bstart);
    free(sub);
    return 0;
}
