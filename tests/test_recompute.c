/* Activation checkpointing (--recompute, ll_acts.recompute) changes memory,
 * never results. On stories260K (5 layers, GQA), LoRA on all seven linear
 * modules with dropout:
 *  - training: two classifiers created alike, one recomputing, run the same
 *    optimiser steps (grad accumulation over micro-batches of several
 *    sequences, one longer than an attention query chunk) in causal,
 *    bidirectional and bidirectional-from-layer-2 attention, sequence and
 *    token tasks: every micro-batch's loss, every step's gradients and the
 *    final parameters are equal byte for byte, and stay so when each switches
 *    over mid-run;
 *  - the stack alone: a recomputing backward with an inference pass on a
 *    longer batch between forward and backward (the model's workspace grown
 *    and overwritten), and a second backward after the first, gives the
 *    gradients the stored-activation path gives;
 *  - memory: the carve with recompute is smaller by exactly the stored
 *    per-layer buffers of L - 1 layers (q, k, v, attention output, residual
 *    after attention) and the stored FFN pre-activations of all L layers;
 *    ll_acts_bytes matches what reserve carved;
 *  - CLI: `lsllama train --recompute` writes adapters byte-identical to a
 *    run without it, and a run checkpointed without it resumes with it to the
 *    same adapter (recompute is no part of the run's identity). */
#include <cjson/cJSON.h>
#include <omp.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "train/classifier.h"
#include "train/optim.h"
#include "test_util.h"

#define MODEL LL_SHARED_DIR "/models/stories260K/stories260K.bin"
#define TOKENIZER LL_SHARED_DIR "/models/stories260K/tok512.bin"

static unsigned long long rng_state = 2024;
static unsigned urand(unsigned n) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)((rng_state >> 33) % n);
}

enum { K = 3, CAP_TOKENS = 320, CAP_SEQS = 8, MAX_SEQS = 4 };

/* A micro-batch: 1..4 sequences of 1..80 tokens (at least one past 64, the
 * attention's query chunk, in the first), random ids, labels per sequence
 * and per token (about one in five ignored). */
typedef struct test_batch {
    int32_t tokens[CAP_TOKENS], starts[MAX_SEQS + 1], seq_labels[MAX_SEQS], tok_labels[CAP_TOKENS];
    ll_batch b;
} test_batch;

static void make_batch(test_batch *t, int vocab, int first) {
    const int n = first ? 3 : 1 + (int)urand(MAX_SEQS);
    t->starts[0] = 0;
    for (int s = 0; s < n; s++) {
        const int len = first && s == 0 ? 70 : 1 + (int)urand(80);
        t->starts[s + 1] = t->starts[s] + len;
        t->seq_labels[s] = (int32_t)urand(K);
    }
    for (int i = 0; i < t->starts[n]; i++) {
        t->tokens[i] = (int32_t)urand((unsigned)vocab);
        t->tok_labels[i] = urand(5) == 0 ? LL_IGNORE_LABEL : (int32_t)urand(K);
    }
    t->b = (ll_batch){t->tokens, t->starts, n};
}

typedef struct test_case {
    const char *name;
    int bidir_from; /* -1: n_layers (causal) */
    int token_task;
    ll_pool pool;
    float lora_dropout;
    int grad_accum;
} test_case;

static ll_classifier *make_classifier(ll_model *m, const test_case *tc, int recompute) {
    ll_classifier_config cfg;
    ll_classifier_config_default(&cfg, m);
    const int L = ll_model_config(m)->n_layers;
    cfg.n_labels = K;
    cfg.pool = tc->pool;
    cfg.bidirectional_from = tc->bidir_from < 0 ? L : tc->bidir_from;
    cfg.lora_r = 4;
    cfg.lora_alpha = 8;
    cfg.lora_dropout = tc->lora_dropout;
    cfg.lora_targets = (1u << LL_LORA_N_TARGETS) - 1; /* q, k, v, o, gate, up, down */
    cfg.token_task = tc->token_task;
    cfg.head_bias = tc->token_task;
    cfg.head_dropout = tc->token_task ? 0.1f : 0.0f;
    ll_classifier *c = NULL;
    ll_error err = {0};
    REQUIRE(ll_classifier_create(&c, m, &cfg, 7, &err) == 0);
    ll_classifier_set_recompute(c, recompute);
    REQUIRE(ll_classifier_reserve(c, CAP_TOKENS, CAP_SEQS, &err) == 0);
    return c;
}

static size_t count_differing(const float *a, const float *b, size_t n) {
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += memcmp(&a[i], &b[i], sizeof(float)) != 0;
    return d;
}

/* The bytes recompute must save: the [L, C, w] buffers of q, k, v, att and
 * x_mid shrink to one layer, and the stored FFN pre-activations (2 x [L, C, F]
 * while they fit LL_FFN_STORE_MAX_BYTES) go. Counted here from the config. */
static size_t expected_saving(const ll_config *p, size_t C) {
    const size_t L = (size_t)p->n_layers, D = (size_t)p->dim, F = (size_t)p->hidden_dim;
    const size_t QD = (size_t)p->n_heads * p->head_dim, KVD = (size_t)p->n_kv_heads * p->head_dim;
    const size_t ffn = 2 * L * C * F * sizeof(float) <= LL_FFN_STORE_MAX_BYTES ? 2 * L * C * F : 0;
    return ((L - 1) * C * (QD + KVD + KVD + QD + D) + ffn) * sizeof(float);
}

static void training_case(ll_model *m, const test_case *tc) {
    ll_classifier *off = make_classifier(m, tc, 0), *on = make_classifier(m, tc, 1);
    const ll_config *p = ll_model_config(m);
    REQUIRE(off->n_params == on->n_params);
    CHECK(!memcmp(off->params, on->params, off->n_params * sizeof(float))); /* created alike */

    /* memory: the real carves */
    CHECK(off->acts.cap_tokens == CAP_TOKENS && on->acts.cap_tokens == CAP_TOKENS);
    CHECK_MSG(on->acts.bytes < off->acts.bytes, "%s: recompute carves %zu bytes, not less than %zu", tc->name,
              on->acts.bytes, off->acts.bytes);
    CHECK_MSG(off->acts.bytes - on->acts.bytes == expected_saving(p, CAP_TOKENS),
              "%s: recompute saves %zu bytes, expected %zu", tc->name, off->acts.bytes - on->acts.bytes,
              expected_saving(p, CAP_TOKENS));
    CHECK(on->acts.bytes == ll_acts_bytes(m, &on->lora, CAP_TOKENS, 1));
    CHECK(off->acts.bytes == ll_acts_bytes(m, &off->lora, CAP_TOKENS, 0));
    CHECK(on->acts.layer_slots == 1 && off->acts.layer_slots == p->n_layers && !on->acts.ffn_g && off->acts.ffn_g);
    /* every layer's input is still kept: L x C x D floats at least */
    CHECK(on->acts.bytes > (size_t)p->n_layers * CAP_TOKENS * p->dim * sizeof(float));

    ll_adamw opt_off, opt_on;
    REQUIRE(ll_adamw_init(&opt_off, off->n_params, 0.9f, 0.999f, 1e-8f, 0.01f));
    REQUIRE(ll_adamw_init(&opt_on, on->n_params, 0.9f, 0.999f, 1e-8f, 0.01f));
    float *init = malloc(off->n_params * sizeof(float));
    REQUIRE(init);
    memcpy(init, off->params, off->n_params * sizeof(float));
    test_batch tb;
    ll_error err = {0};
    const int steps = 4;
    size_t grads_differ = 0, losses_differ = 0;
    double gmax = 0;
    for (int step = 0; step < steps; step++) {
        memset(off->grads, 0, off->n_params * sizeof(float));
        memset(on->grads, 0, on->n_params * sizeof(float));
        for (int micro = 0; micro < tc->grad_accum; micro++) {
            make_batch(&tb, p->vocab_size, step == 0 && micro == 0);
            const uint64_t seed = 1000u + (uint64_t)step * 16u + (uint64_t)micro;
            const int32_t *labels = tc->token_task ? tb.tok_labels : tb.seq_labels;
            const float scale = 1.0f / (float)tc->grad_accum;
            float l_off, l_on;
            REQUIRE(ll_classifier_train_step(off, &tb.b, labels, NULL, seed, scale, &l_off, &err) == 0);
            REQUIRE(ll_classifier_train_step(on, &tb.b, labels, NULL, seed, scale, &l_on, &err) == 0);
            losses_differ += memcmp(&l_off, &l_on, sizeof l_off) != 0;
        }
        grads_differ += count_differing(off->grads, on->grads, off->n_params);
        const double g = max_abs(off->grads, off->n_params);
        gmax = g > gmax ? g : gmax;
        ll_clip_grad_norm(off->grads, off->n_params, 1.0f);
        ll_clip_grad_norm(on->grads, on->n_params, 1.0f);
        ll_adamw_step(&opt_off, off->params, off->grads, 1e-2f);
        ll_adamw_step(&opt_on, on->params, on->grads, 1e-2f);
    }
    CHECK_MSG(losses_differ == 0, "%s: %zu micro-batch losses differ with recompute", tc->name, losses_differ);
    CHECK_MSG(grads_differ == 0, "%s: %zu gradients differ with recompute", tc->name, grads_differ);
    const size_t params_differ = count_differing(off->params, on->params, off->n_params);
    CHECK_MSG(params_differ == 0, "%s: %zu of %zu parameters differ after %d steps (max diff %g)", tc->name,
              params_differ, off->n_params, steps, max_abs_diff(off->params, on->params, off->n_params));
    /* not trivially equal: gradients flowed and every LoRA factor of every layer moved */
    CHECK(gmax > 0);
    size_t unmoved = 0;
    for (size_t v = 0; v < off->n_views; v++) {
        const ll_param_view *pv = &off->views[v];
        const size_t n = (size_t)(pv->rows * pv->cols), at = (size_t)(pv->data - off->params);
        unmoved += count_differing(pv->data, init + at, n) == 0;
    }
    CHECK_MSG(unmoved == 0, "%s: %zu parameter tensors did not move", tc->name, unmoved);
    /* switched over mid-run, each re-plans its activations and still agrees */
    const size_t bytes_off = off->acts.bytes, bytes_on = on->acts.bytes;
    ll_classifier_set_recompute(off, 1);
    ll_classifier_set_recompute(on, 0);
    memset(off->grads, 0, off->n_params * sizeof(float));
    memset(on->grads, 0, on->n_params * sizeof(float));
    make_batch(&tb, p->vocab_size, 0);
    float l_off, l_on;
    const int32_t *labels = tc->token_task ? tb.tok_labels : tb.seq_labels;
    REQUIRE(ll_classifier_train_step(off, &tb.b, labels, NULL, 99, 1.0f, &l_off, &err) == 0);
    REQUIRE(ll_classifier_train_step(on, &tb.b, labels, NULL, 99, 1.0f, &l_on, &err) == 0);
    CHECK(off->acts.bytes == bytes_on && on->acts.bytes == bytes_off);
    CHECK_MSG(!memcmp(&l_off, &l_on, sizeof l_off) && count_differing(off->grads, on->grads, off->n_params) == 0,
              "%s: switching recompute mid-run changed the results", tc->name);
    printf("%s: %d steps x %d micro-batches, %zu parameters identical; activations %zu -> %zu bytes "
           "(%.0f -> %.0f per token)\n", tc->name, steps, tc->grad_accum, off->n_params, bytes_off, bytes_on,
           (double)bytes_off / CAP_TOKENS, (double)bytes_on / CAP_TOKENS);
    free(init);
    ll_adamw_free(&opt_off);
    ll_adamw_free(&opt_on);
    ll_classifier_free(off);
    ll_classifier_free(on);
}

/* The stack alone: forward, an inference pass on another, longer batch,
 * backward twice (gradients added twice), with and without recompute. */
static void isolation_case(ll_model *m, int bidir_from) {
    const test_case tc = {"stack", bidir_from, 0, LL_POOL_LAST, 0.25f, 1};
    ll_classifier *c[2] = {make_classifier(m, &tc, 0), make_classifier(m, &tc, 1)};
    const ll_config *p = ll_model_config(m);
    const size_t D = (size_t)p->dim;
    /* B away from zero so every A gets a gradient */
    for (int i = 0; i < 2; i++)
        for (size_t j = 0; j < c[i]->n_params; j++)
            if (c[i]->params[j] == 0.0f) c[i]->params[j] = 0.01f * (float)((int)(j % 23) - 11);
    test_batch tb, tl;
    make_batch(&tb, p->vocab_size, 1);
    enum { LONG = 150 };
    int32_t long_tokens[LONG], long_starts[] = {0, LONG};
    for (int t = 0; t < LONG; t++) long_tokens[t] = (7 * t + 3) % p->vocab_size;
    tl.b = (ll_batch){long_tokens, long_starts, 1};
    const size_t T = (size_t)tb.starts[tb.b.n_seqs];
    float *hidden = malloc(T * D * 4), *dhidden = malloc(T * D * 4), *other = malloc(LONG * D * 4);
    REQUIRE(hidden && dhidden && other);
    for (size_t i = 0; i < T * D; i++) dhidden[i] = (float)((int)urand(2001) - 1000) / 1000.0f;
    ll_error err = {0};
    for (int i = 0; i < 2; i++) {
        ll_classifier *ci = c[i];
        const ll_lora_pass lp = {&ci->lora, 1, 77, 0, NULL};
        memset(ci->grads, 0, ci->n_params * sizeof(float));
        REQUIRE(ll_stack_forward(m, &tb.b, ci->cfg.bidirectional_from, &lp, &ci->acts, hidden, &err) == 0);
        if (i == 1) { /* the recomputing one: other passes through the model in between */
            ll_forward_outputs out = {.hidden = other};
            const ll_forward_options fo = {.bidirectional_from = 0};
            REQUIRE(ll_forward(m, &tl.b, &fo, &out, &err) == 0);
            const ll_lora_pass eval = {&ci->lora, 0, 5, 0, NULL};
            REQUIRE(ll_stack_forward(m, &tl.b, p->n_layers, &eval, NULL, NULL, &err) == 0);
        }
        REQUIRE(ll_stack_backward(m, &tb.b, ci->cfg.bidirectional_from, &lp, &ci->acts, dhidden, &err) == 0);
        REQUIRE(ll_stack_backward(m, &tb.b, ci->cfg.bidirectional_from, &lp, &ci->acts, dhidden, &err) == 0);
    }
    const size_t differ = count_differing(c[0]->grads, c[1]->grads, c[0]->n_params);
    CHECK_MSG(differ == 0, "stack (bidirectional from %d): %zu of %zu gradients differ (max diff %g)", bidir_from,
              differ, c[0]->n_params, max_abs_diff(c[0]->grads, c[1]->grads, c[0]->n_params));
    /* every LoRA factor got a gradient (the head gets none from the stack) */
    size_t zero = 0;
    for (size_t v = 0; v < c[0]->n_views; v++)
        if (strstr(c[0]->views[v].name, "lora_"))
            zero += max_abs(c[0]->views[v].grad, (size_t)(c[0]->views[v].rows * c[0]->views[v].cols)) == 0;
    CHECK_MSG(zero == 0, "stack: %zu LoRA tensors without gradient", zero);
    free(hidden), free(dhidden), free(other);
    ll_classifier_free(c[0]);
    ll_classifier_free(c[1]);
}

/* ---- CLI -------------------------------------------------------------------- */

static char tmp[] = "/tmp/lsllama_recompute_XXXXXX";

static int same_file(const char *a, const char *b) {
    char *x, *y;
    const long na = test_file_bytes(a, &x), nb = test_file_bytes(b, &y);
    const int same = na > 0 && na == nb && !memcmp(x, y, (size_t)na);
    free(x), free(y);
    return same;
}

/* The log's figures that recompute must not change: every step's loss and
 * gradient norm, every evaluation's dev loss and accuracy; timings left out. */
static void compare_logs(const char *a, const char *b) {
    test_lines la, lb;
    REQUIRE(test_read_lines(a, &la) == 0 && test_read_lines(b, &lb) == 0);
    CHECK_MSG(la.n == lb.n, "%s has %zu lines, %s %zu", a, la.n, b, lb.n);
    static const char *const keys[] = {"step", "loss", "grad_norm", "lr", "dev_loss", "accuracy", "macro_f1"};
    size_t compared = 0;
    for (size_t i = 0; i < la.n && i < lb.n; i++) {
        cJSON *x = cJSON_Parse(la.line[i]), *y = cJSON_Parse(lb.line[i]);
        REQUIRE(x && y);
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            const cJSON *vx = cJSON_GetObjectItemCaseSensitive(x, keys[k]),
                        *vy = cJSON_GetObjectItemCaseSensitive(y, keys[k]);
            if (!vx && !vy) continue;
            CHECK_MSG(cJSON_IsNumber(vx) && cJSON_IsNumber(vy) && vx->valuedouble == vy->valuedouble,
                      "log line %zu: %s differs", i + 1, keys[k]);
            compared++;
        }
        cJSON_Delete(x), cJSON_Delete(y);
    }
    CHECK(compared >= 12);
    test_free_lines(&la), test_free_lines(&lb);
}

static void cli_case(void) {
    REQUIRE(mkdtemp(tmp));
    char cmd[8192], a[600], b[600];
    snprintf(cmd, sizeof cmd, "head -41 %s/data/sst2/train.tsv > %s/train.tsv && head -13 %s/data/sst2/dev.tsv > "
             "%s/dev.tsv", LL_SHARED_DIR, tmp, LL_SHARED_DIR, tmp);
    REQUIRE(system(cmd) == 0);
    char common[2048];
    snprintf(common, sizeof common,
             "%s train %s --tokenizer %s --train %s/train.tsv --dev %s/dev.tsv --lora-targets all-linear --lora-r 4 "
             "--lora-dropout 0.1 --grad-accum 2 --batch-tokens 96 --max-steps 6 --lr 1e-2 --seed 3 --eval-every 3 "
             "--checkpoint-every 3 --no-progress", LL_CLI_PATH, MODEL, TOKENIZER, tmp, tmp);
    snprintf(cmd, sizeof cmd, "%s --out %s/plain > /dev/null", common, tmp);
    CHECK(test_run(cmd) == 0);
    snprintf(cmd, sizeof cmd, "%s --out %s/recompute --recompute > /dev/null", common, tmp);
    CHECK(test_run(cmd) == 0);
    /* checkpointed without recompute, resumed with it */
    snprintf(cmd, sizeof cmd, "%s --out %s/resumed --stop-after-steps 3 > /dev/null", common, tmp);
    CHECK(test_run(cmd) == 0);
    snprintf(cmd, sizeof cmd, "%s --out %s/resumed --resume --recompute > /dev/null", common, tmp);
    CHECK_MSG(test_run(cmd) == 0, "a resume with --recompute was refused");
    static const char *const files[] = {"final/adapter_model.safetensors", "best/adapter_model.safetensors",
                                        "final/adapter_config.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(a, sizeof a, "%s/plain/%s", tmp, files[i]);
        snprintf(b, sizeof b, "%s/recompute/%s", tmp, files[i]);
        CHECK_MSG(same_file(a, b), "%s differs with --recompute", files[i]);
        snprintf(b, sizeof b, "%s/resumed/%s", tmp, files[i]);
        CHECK_MSG(same_file(a, b), "%s differs after a resume with --recompute", files[i]);
    }
    snprintf(a, sizeof a, "%s/plain/log.jsonl", tmp);
    snprintf(b, sizeof b, "%s/recompute/log.jsonl", tmp);
    compare_logs(a, b);
    /* the log's first line says how the run was computed */
    char *x, *y;
    test_file_bytes(a, &x), test_file_bytes(b, &y);
    CHECK(x && strstr(x, "\"recompute\": false") && y && strstr(y, "\"recompute\": true"));
    free(x), free(y);
    snprintf(cmd, sizeof cmd, "%s --help | grep -q -- --recompute", common);
    CHECK(test_run(cmd) == 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0);
}

int main(void) {
    omp_set_num_threads(2); /* the attention scratch has a slice per thread */
    ll_model *m = NULL;
    ll_error err = {0};
    REQUIRE(ll_model_load(&m, MODEL, NULL, &err) == 0);
    const test_case cases[] = {
        {"causal, last pooling", -1, 0, LL_POOL_LAST, 0.2f, 2},
        {"bidirectional, mean pooling", 0, 0, LL_POOL_MEAN, 0.2f, 3},
        {"bidirectional from layer 2, max pooling", 2, 0, LL_POOL_MAX, 0.1f, 1},
        {"token task, bidirectional", 0, 1, LL_POOL_LAST, 0.2f, 2},
        {"causal, no LoRA dropout", -1, 0, LL_POOL_MEAN, 0.0f, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) training_case(m, &cases[i]);
    isolation_case(m, ll_model_config(m)->n_layers);
    isolation_case(m, 0);
    ll_model_free(m);
    cli_case();
    return test_summary("test_recompute");
}
