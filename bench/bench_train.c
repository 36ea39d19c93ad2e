/* Training throughput: LS-LLaMA steps (forward, loss, backward to LoRA and
 * head gradients, clipping, AdamW) over SST-2 sentences packed into batches
 * of about N tokens, beside GEMM figures from the same run (ll_gemm, OpenBLAS). FLOPs counted
 * as 4 x (non-embedding matmul parameters) per token -- forward plus the
 * input-gradient GEMMs of the frozen base -- plus attention (forward and
 * backward) and the LoRA products; the FFN recomputation in backward is real
 * work but not counted.
 *
 *   bench_train MODEL --tsv FILE [--batch-tokens 4096] [--steps 6] [--lora-r 12]
 *               [--mask causal|bidirectional] [--recompute] [--tokenizer PATH]
 *               [--base-precision stored|bf16|q8_0|f32] [--compute f32|bf16]
 *
 * --recompute: activation checkpointing (ll_acts.recompute); the recomputed
 * attention half is real work but not counted either.
 * --tokenizer reads the tokenizer from another file (a GGUF, tokenizer.json,
 * tokenizer.model or folder, as lsllama's CLI takes it) -- for a model file
 * that holds none, such as bench/make_synthetic_gguf.py's.
 * --base-precision: how the frozen matrices are held (ll_base_precision).
 * --compute: the arithmetic of the frozen-weight products (ll_compute).
 * The output starts with the machine lines (bench_print_machine: the CPU, its
 * instruction sets, the threads, the kernels that ran). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "data/dataset.h"
#include "lsllama_tokenizer.h"
#include "train/classifier.h"
#include "train/optim.h"
#include "bench_util.h"

int main(int argc, char **argv) {
    const char *model = NULL, *tsv = NULL, *tok_path = NULL;
    long batch_tokens = 4096, steps = 6, r = 12;
    int bidir = 0, recompute = 0, full = 0;
    ll_load_options lo = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tsv") && i + 1 < argc) tsv = argv[++i];
        else if (!strcmp(argv[i], "--batch-tokens") && i + 1 < argc) batch_tokens = atol(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atol(argv[++i]);
        else if (!strcmp(argv[i], "--lora-r") && i + 1 < argc) r = atol(argv[++i]);
        else if (!strcmp(argv[i], "--mask") && i + 1 < argc) bidir = !strcmp(argv[++i], "bidirectional");
        else if (!strcmp(argv[i], "--recompute")) recompute = 1;
        else if (!strcmp(argv[i], "--full")) full = 1;
        else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tok_path = argv[++i];
        else if (!strcmp(argv[i], "--base-precision") && i + 1 < argc) {
            if (ll_base_precision_parse(argv[++i], &lo.base_precision)) {
                fprintf(stderr, "bench_train: --base-precision must be stored, bf16, q8_0 or f32\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--compute") && i + 1 < argc) {
            if (ll_compute_parse(argv[++i], &lo.compute)) {
                fprintf(stderr, "bench_train: --compute must be f32 or bf16\n");
                return 2;
            }
        }
        else model = argv[i];
    }
    if (!model || !tsv || batch_tokens < 1 || steps < 1 || r < 1) {
        fprintf(stderr, "usage: bench_train MODEL --tsv FILE [--batch-tokens N] [--steps S] [--lora-r R] [--mask M] "
                        "[--recompute] [--full] [--tokenizer PATH] [--base-precision P] [--compute C]\n");
        return 2;
    }
    ll_error err = {0};
    ll_model *m;
    ll_tokenizer *tok;
    ll_dataset *ds;
    ll_labelmap *map;
    if (ll_model_load(&m, model, &lo, &err) || ll_tokenizer_load(&tok, tok_path ? tok_path : model, &err) ||
        ll_dataset_load(&ds, tsv, NULL, &err) || ll_labelmap_build(&map, ds, &err) ||
        ll_dataset_apply_labels(ds, map, &err) || ll_dataset_tokenize(ds, tok, 256, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.message);
        return 1;
    }
    const ll_config *p = ll_model_config(m);
    ll_classifier_config cc = {.n_labels = map->n, .pool = LL_POOL_LAST, .bidirectional_from = bidir ? 0 : p->n_layers,
                               .lora_r = full ? 0 : (int)r, .lora_alpha = 32, .lora_dropout = 0.1f,
                               .lora_targets = full ? 0 : (1u << LL_LORA_Q) | (1u << LL_LORA_V),
                               .full_targets = full ? (1u << LL_LORA_N_TARGETS) - 1 : 0};
    ll_classifier *c;
    ll_batching_options bo = {.max_batch_tokens = (size_t)batch_tokens, .shuffle = 1, .seed = 1};
    ll_batch_plan plan = {0};
    ll_batch_buf buf = {0};
    ll_adamw opt;
    if (ll_classifier_create(&c, m, &cc, 1, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.message);
        return 1;
    }
    ll_classifier_set_recompute(c, recompute);
    if (ll_batch_plan_make(&plan, ds, &bo, &err) ||
        ll_batch_buf_reserve(&buf, plan.max_tokens, plan.max_seqs, map->n, &err) ||
        ll_classifier_reserve(c, plan.max_tokens, plan.max_seqs, &err) ||
        !ll_adamw_init(&opt, c->n_params, 0.9f, 0.999f, 1e-8f, 0.01f)) {
        fprintf(stderr, "bench_train: %s\n", err.message);
        return 1;
    }
    const double D = p->dim, F = p->hidden_dim, QD = (double)p->n_heads * p->head_dim,
                 KVD = (double)p->n_kv_heads * p->head_dim;
    const double matmul = p->n_layers * (D * QD + 2 * D * KVD + QD * D + 3 * D * F);
    /* per token: forward 2 and input gradient 2 FLOPs per frozen weight; full fine-tuning adds the weight
     * gradient: 6 x parameters, the usual count */
    const double lora_per_tok = full ? 0 : p->n_layers * 2.0 * (r * D + QD * r + r * D + KVD * r) * 3;
    const double per_weight = full ? 6 : 4;
    double flops = 0, tokens = 0, t_total = 0;
    float loss_first = 0, loss_last = 0;
    if (steps > (long)plan.n_batches) steps = (long)plan.n_batches;
    for (long s = 0; s <= steps; s++) { /* step 0 warms up, not timed */
        if (ll_batch_fill(&buf, ds, &plan, (size_t)s, &err)) return 1;
        const double t0 = bench_now();
        memset(c->grads, 0, c->n_params * sizeof(float));
        float loss;
        if (ll_classifier_train_step(c, &buf.batch, buf.labels, NULL, (uint64_t)s, 1.0f, &loss, &err)) {
            fprintf(stderr, "bench_train: %s\n", err.message);
            return 1;
        }
        ll_clip_grad_norm(c->grads, c->n_params, 1.0f);
        ll_adamw_step(&opt, c->params, c->grads, 1e-4f);
        const double dt = bench_now() - t0;
        if (s == 0) loss_first = loss;
        loss_last = loss;
        if (s == 0) continue;
        t_total += dt;
        tokens += (double)buf.n_tokens;
        for (int q = 0; q < buf.batch.n_seqs; q++) {
            const double L = buf.batch.seq_start[q + 1] - buf.batch.seq_start[q];
            const double pairs = bidir ? L * L : L * (L + 1) / 2;
            flops += L * (per_weight * matmul + lora_per_tok) + p->n_layers * 4.0 * pairs * QD * 3; /* + attention */
        }
    }
    struct rusage ru; /* before the GEMM measurements below allocate their own matrices */
    getrusage(RUSAGE_SELF, &ru);
    const double gemm = bench_gemm_gflops(1, (int)batch_tokens, (int)F, (int)D, 4);
    const double blas = bench_gemm_gflops(0, (int)batch_tokens, (int)F, (int)D, 4);
    bench_print_machine(stdout);
    if (full)
        printf("model            %s, full fine-tuning of every linear weight (%zu parameters with the head, f32: "
               "16 bytes each with gradient and AdamW moments, %.0f MB), %s, base precision %s\n", model,
               c->n_params, c->n_params * 16.0 / 1e6, bidir ? "bidirectional" : "causal",
               ll_base_precision_name(ll_model_base_precision(m)));
    else
        printf("model            %s, LoRA r=%ld on q,v, %s, base precision %s\n", model, r,
               bidir ? "bidirectional" : "causal", ll_base_precision_name(ll_model_base_precision(m)));
    printf("compute          %s: frozen-weight products by %s\n", ll_compute_name(ll_model_compute(m)),
           ll_compute_kernel(ll_model_compute(m)));
    if (tok_path) printf("tokenizer        %s\n", tok_path);
    printf("steps            %ld timed (after 1 warm-up), batches of <= %ld tokens, %.0f tokens\n", steps,
           batch_tokens, tokens);
    printf("loss             %.4f at the warm-up step, %.4f at the last%s\n", loss_first, loss_last,
           isfinite(loss_first) && isfinite(loss_last) ? "" : " (NOT FINITE)");
    printf("throughput       %.0f training tokens/s (%.2f s per step)\n", tokens / t_total, t_total / steps);
    printf("achieved         %.1f GFLOP/s (%s)\n", flops / t_total / 1e9,
           full ? "6 x linear weights per token, plus attention" : "4 x base linear weights per token, plus LoRA and "
                                                                    "attention");
    printf("gemm %ldx%dx%d  ll_gemm (%s) %.1f GFLOP/s -> training at %.0f%% of it; OpenBLAS sgemm %.1f GFLOP/s\n",
           batch_tokens, (int)F, (int)D, ll_gemm_backend(), gemm, 100 * flops / t_total / 1e9 / gemm, blas);
    printf("peak RSS         %.0f MB (model, activations and training; before the GEMM figures)\n",
           ru.ru_maxrss / 1024.0);
    /* the whole ll_acts carve (stored activations, backward temporaries, attention scratch) per planned token */
    printf("activations      %.0f bytes per token (recompute %s)\n", (double)c->acts.bytes / (double)c->acts.cap_tokens,
           recompute ? "on" : "off");
    return 0;
}
