/* llama.cpp's side of bench/bench_vs_llamacpp.sh: the forward pass of
 * bench_forward, run by llama.cpp (libllama) on the same token sequences in
 * the same batches. Built by that script against the llama.cpp it builds
 * under ~/.cache/lsllama/llama.cpp (not part of the CMake build: the file name
 * is not bench_*.c, and llama.h is not a dependency of the project).
 *
 *   llamacpp_forward MODEL --ids FILE [--batch-tokens 2048] [--reps 3]
 *                    [--threads N] [--ubatch U] [--outputs last|none]
 *                    [--kv unified|separate]
 *
 * FILE holds one token-id sequence per line (bench_forward --ids reads the
 * same file). Batches are cut as bench_forward cuts them: consecutive
 * sequences while their total stays <= N tokens. Each batch is one
 * llama_decode call, every sequence its own seq_id from position 0 (none
 * attends to another, as in lsllama's packed batches), the KV cache emptied
 * before each batch. --outputs last (the default) asks for the
 * logits of each sequence's last token, what a last-token classifier needs;
 * none asks for no output. --ubatch: llama.cpp's physical batch (default:
 * the whole batch, as lsllama computes it). --kv: one KV stream shared by
 * the batch's sequences (the default; attention masks the others out) or a
 * stream per sequence (llama.cpp then splits the batch into pieces holding
 * as many tokens of every sequence, one piece per distinct length).
 *
 * Prints the same figures as bench_forward's "data", "forward" and
 * "throughput" lines, and the llama.cpp system info line (its instruction
 * sets). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_ids.h"
#include "llama.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* llama.cpp logs every tensor and buffer at load; keep errors only. */
static void quiet_log(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *ids_path = NULL;
    int batch_tokens = 2048, reps = 3, threads = 0, ubatch = 0, out_last = 1, unified = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ids") && i + 1 < argc) ids_path = argv[++i];
        else if (!strcmp(argv[i], "--batch-tokens") && i + 1 < argc) batch_tokens = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ubatch") && i + 1 < argc) ubatch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--outputs") && i + 1 < argc) out_last = strcmp(argv[++i], "none") != 0;
        else if (!strcmp(argv[i], "--kv") && i + 1 < argc) unified = strcmp(argv[++i], "separate") != 0;
        else model_path = argv[i];
    }
    if (!model_path || !ids_path || batch_tokens < 1 || reps < 1 || threads < 0 || ubatch < 0) {
        fprintf(stderr, "usage: llamacpp_forward MODEL --ids FILE [--batch-tokens N] [--reps R] [--threads N] "
                        "[--ubatch U] [--outputs last|none]\n");
        return 2;
    }
    FILE *f = fopen(ids_path, "r");
    if (!f) {
        perror(ids_path);
        return 1;
    }
    /* The sequences, read (bench_ids.h) and cut into batches exactly as bench_forward does. */
    int32_t *tok, *start;
    const size_t n_seq = bench_read_ids(f, &tok, &start), n_tok = (size_t)start[n_seq];
    fclose(f);
    if (!n_seq) {
        fprintf(stderr, "llamacpp_forward: %s holds no token ids\n", ids_path);
        return 1;
    }
    size_t n_batches = 0, *bstart = malloc((n_seq + 1) * sizeof *bstart);
    size_t max_tokens = 0, max_seqs = 0, max_len = 0;
    bstart[0] = 0;
    for (size_t s = 0; s < n_seq;) {
        size_t e = s + 1;
        while (e < n_seq && (size_t)(start[e + 1] - start[s]) <= (size_t)batch_tokens) e++;
        bstart[++n_batches] = e;
        if ((size_t)(start[e] - start[s]) > max_tokens) max_tokens = start[e] - start[s];
        if (e - s > max_seqs) max_seqs = e - s;
        for (size_t q = s; q < e; q++)
            if ((size_t)(start[q + 1] - start[q]) > max_len) max_len = start[q + 1] - start[q];
        s = e;
    }
    /* llama.cpp's seq_ids stop at LLAMA_MAX_SEQ. */
    if (max_seqs > 256) {
        fprintf(stderr, "llamacpp_forward: a batch holds %zu sequences, llama.cpp takes at most 256: lower "
                        "--batch-tokens\n", max_seqs);
        return 1;
    }

    llama_log_set(quiet_log, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    double t0 = now();
    struct llama_model *model = llama_model_load_from_file(model_path, mp);
    if (!model) {
        fprintf(stderr, "llamacpp_forward: cannot load %s\n", model_path);
        return 1;
    }
    const double load_s = now() - t0;
    struct llama_context_params cp = llama_context_default_params();
    /* The context holds one batch (with separate streams, each stream holds
     * the longest sequence); the physical batch is the whole batch unless
     * --ubatch says otherwise. */
    cp.n_ctx = (uint32_t)(unified ? max_tokens : max_seqs * max_len);
    cp.n_batch = (uint32_t)max_tokens;
    cp.n_ubatch = ubatch ? (uint32_t)ubatch : (uint32_t)max_tokens;
    cp.n_seq_max = (uint32_t)max_seqs;
    cp.kv_unified = unified;
    if (threads) cp.n_threads = cp.n_threads_batch = threads;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        fprintf(stderr, "llamacpp_forward: cannot create a llama.cpp context for %s\n", model_path);
        return 1;
    }
    struct llama_batch batch = llama_batch_init((int32_t)max_tokens, 0, 1);
    llama_memory_t mem = llama_get_memory(ctx);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        const double t1 = now();
        for (size_t b = 0; b < n_batches; b++) {
            const size_t s0 = bstart[b], s1 = bstart[b + 1];
            int32_t n = 0;
            for (size_t s = s0; s < s1; s++)
                for (int32_t i = start[s]; i < start[s + 1]; i++, n++) {
                    batch.token[n] = tok[i];
                    batch.pos[n] = i - start[s];
                    batch.n_seq_id[n] = 1;
                    batch.seq_id[n][0] = (llama_seq_id)(s - s0);
                    batch.logits[n] = (int8_t)(out_last && i == start[s + 1] - 1);
                }
            batch.n_tokens = n;
            llama_memory_clear(mem, true);
            const int rc = llama_decode(ctx, batch);
            if (rc) {
                fprintf(stderr, "llamacpp_forward: llama_decode failed (%d) on batch %zu\n", rc, b);
                return 1;
            }
            llama_synchronize(ctx);
        }
        const double dt = now() - t1;
        if (dt < best) best = dt;
    }
    printf("llama.cpp        %s\n", llama_print_system_info());
    printf("settings         %d threads, n_batch %u, n_ubatch %u, %s, outputs %s\n", llama_n_threads_batch(ctx),
           cp.n_batch, cp.n_ubatch, unified ? "one KV stream for the batch" : "a KV stream per sequence",
           out_last ? "the last token of each sequence" : "none");
    printf("data             %zu sequences, %zu tokens, %zu batches of <= %d tokens\n", n_seq, n_tok, n_batches,
           batch_tokens);
    printf("load             %.2f s\n", load_s);
    printf("forward          %.3f s per pass (best of %d)\n", best, reps);
    printf("throughput       %.0f tokens/s\n", n_tok / best);
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    free(tok);
    free(start);
    free(bstart);
    return 0;
}
