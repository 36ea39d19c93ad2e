/* Finite differences through the whole classifier (stack + pooling + head +
 * cross-entropy / BCE): for every pooling (last, mean, max, first) in causal
 * and bidirectional modes, the analytic gradients of LoRA A, B (q and v) and
 * the score head match fourth-order central differences of the loss: error
 * norm <= 1e-3 x max(norm of the tensor's difference quotients, 1% of the
 * whole gradient's norm). The floor keeps float rounding in the loss from
 * dominating tensors whose gradient is tiny (q when attention is nearly
 * uniform). Max pooling is checked here through the head only (steps in
 * LoRA weights flip near-tied maxima of the tiny model); its backward is
 * checked against the hidden states in test_grad_ops.
 *
 * Token task (NER head: dropout, Linear with bias on every token, mean
 * cross-entropy over the tokens not labelled -100): the same criterion for
 * every LoRA A and B of every layer (q and v) and the head weight and bias,
 * in causal, bidirectional and bidirectional-from-layer-1 modes, with head
 * dropout 0 and 0.3 (and 0.3 with LoRA dropout 0.2: the masks are functions
 * of the step seed, so for a fixed seed the loss is a deterministic,
 * differentiable function of the parameters), on a batch with ignored
 * tokens and a sequence with no labelled token; the same with a head-only
 * classifier (lora_r 0). An all-ignored batch gives loss 0 and leaves the
 * gradients at zero; gradients are added (accumulation) and scale with
 * loss_scale while the reported loss does not.
 *
 * Full fine-tuning: the gradients dW = dy^T x of every linear weight (see
 * full_cases). */
#include <omp.h>

#include "data/dataset.h"
#include "train/classifier.h"
#include "test_util.h"

static double loss_at(ll_classifier *c, const ll_batch *b, const int32_t *labels, const float *targets,
                      uint64_t seed) {
    ll_error err;
    float loss;
    /* the gradient buffer is scratch here */
    REQUIRE(ll_classifier_train_step(c, b, labels, targets, seed, 1.0f, &loss, &err) == 0);
    return loss;
}

/* Norm-wise relative error of the analytic gradient of one parameter tensor
 * against fourth-order central differences at up to ~n_probe entries spread
 * over it (see the top comment for the floor). */
static double fd_view(ll_classifier *c, size_t v, const float *analytic, double gnorm, const ll_batch *b,
                      const int32_t *labels, const float *targets, uint64_t seed, int n_probe) {
    const int64_t n = c->views[v].rows * c->views[v].cols, stride = n > n_probe ? n / n_probe : 1;
    float *prm = c->views[v].data;
    const float *g = analytic + (c->views[v].grad - c->grads);
    double num2 = 0, den2 = 0;
    for (int64_t i = 0; i < n; i += stride) {
        const float save = prm[i], h = 2e-2f;
        const float offs[4] = {2 * h, h, -h, -2 * h};
        double f[4];
        for (int k = 0; k < 4; k++) {
            prm[i] = save + offs[k];
            f[k] = loss_at(c, b, labels, targets, seed);
        }
        prm[i] = save;
        const double fd = (8 * (f[1] - f[2]) - (f[0] - f[3])) / (12.0 * h);
        num2 += (fd - g[i]) * (fd - g[i]);
        den2 += fd * fd;
    }
    const double floor2 = 1e-4 * gnorm * gnorm;
    return sqrt(num2 / (den2 > floor2 ? den2 : floor2));
}

static double grad_norm(const float *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

/* One step's gradients from zero (a malloc'd copy: the probes use c->grads as scratch) and their norm, checked
 * positive; the loss in *l0. */
static float *step_gradients(ll_classifier *c, const ll_batch *b, const int32_t *labels, const float *targets,
                             uint64_t seed, float *l0, double *gnorm) {
    ll_error err = {0};
    memset(c->grads, 0, c->n_params * sizeof(float));
    REQUIRE(ll_classifier_train_step(c, b, labels, targets, seed, 1.0f, l0, &err) == 0);
    float *analytic = malloc(c->n_params * sizeof(float));
    REQUIRE(analytic);
    memcpy(analytic, c->grads, c->n_params * sizeof(float));
    *gnorm = grad_norm(analytic, c->n_params);
    CHECK(*gnorm > 0);
    return analytic;
}

/* B = 0 would hide the A gradients: give B values; a nonzero bias */
static void set_b_and_bias(ll_classifier *c, int K) {
    for (size_t v = 0; v < c->n_views; v++)
        if (strstr(c->views[v].name, "lora_B"))
            for (int64_t i = 0; i < c->views[v].rows * c->views[v].cols; i++)
                c->views[v].data[i] = 0.5f * (float)((i * 37 % 19) - 9) / 9.0f;
    if (c->head_b)
        for (int k = 0; k < K; k++) c->head_b[k] = 0.1f * (float)(k % 3) - 0.05f;
}

static void token_cases(ll_model *m) {
    ll_error err = {0};
    const int L = ll_model_config(m)->n_layers, K = 4;
    /* three sequences (4, 3 and 8 tokens); the middle one has no labelled
     * token, the others some ignored ones */
    int32_t tokens[] = {5, 17, 3, 88, 42, 9, 61, 2, 33, 70, 11, 12, 7, 64, 21};
    int32_t starts[] = {0, 4, 7, 15};
    ll_batch b = {tokens, starts, 3};
    const size_t T = 15;
    int32_t labels[] = {2, LL_IGNORE_LABEL, 0, 3, /**/ LL_IGNORE_LABEL, LL_IGNORE_LABEL, LL_IGNORE_LABEL,
                        /**/ LL_IGNORE_LABEL, 1, 3, LL_IGNORE_LABEL, 0, 2, LL_IGNORE_LABEL, 1};
    const struct {
        const char *name;
        int from;
    } modes[] = {{"causal", L}, {"bidirectional", 0}, {"bidir_from_1", 1}};
    const struct {
        float head, lora;
    } drops[] = {{0.0f, 0.0f}, {0.3f, 0.0f}, {0.3f, 0.2f}};
    for (int rank = 2; rank >= 0; rank -= 2)
        for (int mi = 0; mi < 3; mi++)
            for (int di = 0; di < 3; di++) {
                if (!rank && drops[di].lora > 0) continue;
                ll_classifier_config cc = {.n_labels = K, .bidirectional_from = modes[mi].from, .head_bias = 1,
                                           .lora_r = rank, .lora_alpha = 8, .lora_dropout = drops[di].lora,
                                           .lora_targets = rank ? (1u << LL_LORA_Q) | (1u << LL_LORA_V) : 0,
                                           .token_task = 1, .head_dropout = drops[di].head};
                ll_classifier *c;
                REQUIRE(ll_classifier_create(&c, m, &cc, 11 + mi, &err) == 0);
                set_b_and_bias(c, K);
                /* a larger head than the N(0, 0.02) init: the loss must depend on it visibly */
                for (int64_t i = 0; i < (int64_t)K * ll_model_config(m)->dim; i++)
                    c->head_w[i] = 0.2f * (float)((i * 53 % 23) - 11) / 11.0f;
                const uint64_t seed = 1234 + 17 * (uint64_t)di;
                float l0;
                double gnorm;
                float *analytic = step_gradients(c, &b, labels, NULL, seed, &l0, &gnorm);
                CHECK(isfinite(l0) && l0 > 0);
                double worst = 0;
                for (size_t v = 0; v < c->n_views; v++) {
                    const double rel = fd_view(c, v, analytic, gnorm, &b, labels, NULL, seed, 16);
                    if (rel > worst) worst = rel;
                    CHECK_MSG(rel <= 1e-3, "token r=%d %s head dropout %.1f lora dropout %.1f %s: relative error %.3g",
                              rank, modes[mi].name, drops[di].head, drops[di].lora, c->views[v].name, rel);
                }
                printf("token r=%d %-13s head dropout %.1f lora dropout %.1f  %2zu tensors  worst relative error "
                       "%.2e\n", rank, modes[mi].name, drops[di].head, drops[di].lora, c->n_views, worst);
                if (rank && mi == 1 && di == 1) {
                    /* accumulation: a second step adds the same gradient;
                     * loss_scale scales the gradient, not the loss */
                    float l1;
                    memset(c->grads, 0, c->n_params * sizeof(float)); /* the probes used it as scratch */
                    REQUIRE(ll_classifier_train_step(c, &b, labels, NULL, seed, 1.0f, &l1, &err) == 0);
                    REQUIRE(ll_classifier_train_step(c, &b, labels, NULL, seed, 1.0f, &l1, &err) == 0);
                    double d2 = 0;
                    for (size_t i = 0; i < c->n_params; i++) {
                        const double d = c->grads[i] - 2.0 * analytic[i];
                        d2 += d * d;
                    }
                    CHECK_MSG(sqrt(d2) <= 1e-5 * gnorm, "two steps do not add: %.3g", sqrt(d2) / gnorm);
                    memset(c->grads, 0, c->n_params * sizeof(float));
                    REQUIRE(ll_classifier_train_step(c, &b, labels, NULL, seed, 0.25f, &l1, &err) == 0);
                    CHECK(l1 == l0);
                    d2 = 0;
                    for (size_t i = 0; i < c->n_params; i++) {
                        const double d = c->grads[i] - 0.25 * analytic[i];
                        d2 += d * d;
                    }
                    CHECK_MSG(sqrt(d2) <= 1e-5 * gnorm, "loss_scale 0.25: %.3g", sqrt(d2) / gnorm);
                }
                if (mi == 1 && di == 2 - (rank ? 0 : 1)) {
                    /* nothing labelled: loss 0, no gradient (not NaN) */
                    int32_t none[15];
                    for (size_t t = 0; t < T; t++) none[t] = LL_IGNORE_LABEL;
                    memset(c->grads, 0, c->n_params * sizeof(float));
                    float ln = -1;
                    REQUIRE(ll_classifier_train_step(c, &b, none, NULL, seed, 1.0f, &ln, &err) == 0);
                    CHECK_MSG(ln == 0.0f, "all-ignored batch: loss %g", ln);
                    CHECK_MSG(grad_norm(c->grads, c->n_params) == 0.0, "all-ignored batch: gradient norm %g",
                              grad_norm(c->grads, c->n_params));
                    /* a label outside 0..K-1 is refused */
                    none[3] = K;
                    CHECK(ll_classifier_train_step(c, &b, none, NULL, seed, 1.0f, &ln, &err) != 0);
                }
                free(analytic);
                ll_classifier_free(c);
            }
}

/* Full fine-tuning (full_targets): every linear weight of every layer and
 * the head, by the same criterion, for a sequence head (causal with
 * last-token pooling, which trims the last layer to the pooled rows, and
 * bidirectional with mean pooling) and a token head (dropout 0.3, ignored
 * tokens). LoRA beside it is refused. */
static void full_cases(ll_model *m) {
    ll_error err = {0};
    const int L = ll_model_config(m)->n_layers;
    int32_t tokens[] = {5, 17, 3, 88, 42, 9, 17, 2, 33, 70, 11, 12};
    int32_t starts[] = {0, 4, 5, 12};
    ll_batch b = {tokens, starts, 3};
    int32_t labels[] = {2, 0, 1};
    int32_t tags[] = {2, LL_IGNORE_LABEL, 0, 1, 1, 0, 2, LL_IGNORE_LABEL, 1, 2, 0, 0};
    const unsigned all = ((1u << LL_LORA_N_TARGETS) - 1) | LL_FULL_NORMS | LL_FULL_EMBEDDINGS;
    const struct {
        const char *name;
        int from, token;
        ll_pool pool;
    } cases[] = {{"seq causal last", L, 0, LL_POOL_LAST},
                 {"seq bidirectional mean", 0, 0, LL_POOL_MEAN},
                 {"token bidirectional", 0, 1, LL_POOL_LAST}};
    for (int ci = 0; ci < 3; ci++) {
        ll_classifier_config cc = {.n_labels = 3, .pool = cases[ci].pool, .bidirectional_from = cases[ci].from,
                                   .head_bias = 1, .token_task = cases[ci].token,
                                   .head_dropout = cases[ci].token ? 0.3f : 0.0f, .full_targets = all};
        ll_classifier *c;
        REQUIRE(ll_classifier_create(&c, m, &cc, 5 + ci, &err) == 0);
        CHECK(c->n_views == (size_t)L * (LL_LORA_N_TARGETS + 2) + 2 + 2); /* + final norm, embeddings; head */
        for (int64_t i = 0; i < 3 * ll_model_config(m)->dim; i++)
            c->head_w[i] = 0.2f * (float)((i * 53 % 23) - 11) / 11.0f;
        const int32_t *lab = cases[ci].token ? tags : labels;
        float l0;
        double gnorm;
        float *analytic = step_gradients(c, &b, lab, NULL, 77, &l0, &gnorm);
        double worst = 0;
        for (size_t v = 0; v < c->n_views; v++) {
            const int emb = !strcmp(c->views[v].name, "model.embed_tokens.weight");
            const ll_param_view whole = c->views[v];
            for (int k = 0; k < (emb ? 3 : 1); k++) {
                if (emb) { /* the rows of three of the batch's tokens (17 twice: its gradients add up) */
                    const int32_t row = k == 0 ? 17 : k == 1 ? 88 : 12;
                    c->views[v].data = whole.data + (size_t)row * whole.cols;
                    c->views[v].grad = whole.grad + (size_t)row * whole.cols;
                    c->views[v].rows = 1;
                }
                const double rel = fd_view(c, v, analytic, gnorm, &b, lab, NULL, 77, 12);
                if (rel > worst) worst = rel;
                CHECK_MSG(rel <= 1e-3, "full %s %s: relative error %.3g", cases[ci].name, c->views[v].name, rel);
            }
            c->views[v] = whole;
        }
        /* rows of tokens the batch lacks get no gradient */
        const ll_param_view *E = ll_classifier_find_param(c, "model.embed_tokens.weight");
        REQUIRE(E);
        CHECK(max_abs(analytic + (E->grad - c->grads) + 4 * E->cols, (size_t)E->cols) == 0.0);
        printf("full %-22s %2zu tensors  worst relative error %.2e\n", cases[ci].name, c->n_views, worst);
        if (ci == 0) { /* the trimmed last layer (pooled rows only) gives the untrimmed gradients bit for bit */
            float *trimmed = malloc(c->n_params * sizeof(float)), l1;
            memset(c->grads, 0, c->n_params * sizeof(float));
            REQUIRE(ll_classifier_train_step(c, &b, lab, NULL, 77, 1.0f, &l1, &err) == 0);
            memcpy(trimmed, c->grads, c->n_params * sizeof(float));
            setenv("LSLLAMA_TRIM", "0", 1);
            memset(c->grads, 0, c->n_params * sizeof(float));
            REQUIRE(ll_classifier_train_step(c, &b, lab, NULL, 77, 1.0f, &l1, &err) == 0);
            unsetenv("LSLLAMA_TRIM");
            CHECK_MSG(!memcmp(trimmed, c->grads, c->n_params * sizeof(float)),
                      "full fine-tuning: trimmed and untrimmed gradients differ");
            free(trimmed);
        }
        free(analytic);
        ll_classifier_free(c);
    }
    ll_classifier_config both = {.n_labels = 2, .bidirectional_from = L, .lora_r = 2, .lora_alpha = 4,
                                 .lora_targets = 1u << LL_LORA_Q, .full_targets = all};
    ll_classifier *c = NULL;
    CHECK(ll_classifier_create(&c, m, &both, 1, &err) == LL_ERR_ARG && !c);
    CHECK_MSG(strstr(err.message, "full fine-tuning") != NULL, "message: %s", err.message);
}

int main(void) {
    omp_set_num_threads(1);
    ll_model *m;
    ll_error err = {0};
    REQUIRE(ll_model_load(&m, LL_SOURCE_DIR "/tests/fixtures/tiny_llama/hf", NULL, &err) == 0);
    const int L = ll_model_config(m)->n_layers;
    int32_t tokens[] = {5, 17, 3, 88, 42, 9, 61, 2, 33, 70, 11, 12};
    int32_t starts[] = {0, 4, 5, 12};
    ll_batch b = {tokens, starts, 3};
    int32_t labels[] = {2, 0, 1};
    float targets[] = {1, 0, 1, 0, 0, 1, 1, 1, 0};
    const char *pools[] = {"last", "mean", "max", "first"};
    for (int multi = 0; multi < 2; multi++)
        for (int bidir = 0; bidir < 2; bidir++)
            for (int pool = 0; pool < 4; pool++) {
                if (multi && pool != 1) continue; /* BCE: one pooling is enough */
                ll_classifier_config cc = {.n_labels = 3, .pool = (ll_pool)pool, .bidirectional_from = bidir ? 0 : L,
                                           .head_bias = 1, .multi_label = multi, .lora_r = 2, .lora_alpha = 8,
                                           .lora_targets = (1u << LL_LORA_Q) | (1u << LL_LORA_V)};
                ll_classifier *c;
                REQUIRE(ll_classifier_create(&c, m, &cc, 3 + pool, &err) == 0);
                /* B = 0 would hide the A gradients: give B values */
                for (size_t v = 0; v < c->n_views; v++)
                    if (strstr(c->views[v].name, "lora_B"))
                        for (int64_t i = 0; i < c->views[v].rows * c->views[v].cols; i++)
                            c->views[v].data[i] = 0.5f * (float)((i * 37 % 19) - 9) / 9.0f;
                for (int64_t i = 0; i < c->views[0].rows; i++) c->head_b[i % 3] = 0.1f;
                memset(c->grads, 0, c->n_params * sizeof(float));
                float l0;
                REQUIRE(ll_classifier_train_step(c, &b, labels, targets, 0, 1.0f, &l0, &err) == 0);
                float *analytic = malloc(c->n_params * sizeof(float));
                memcpy(analytic, c->grads, c->n_params * sizeof(float));
                double gnorm = 0;
                for (size_t i = 0; i < c->n_params; i++) gnorm += (double)analytic[i] * analytic[i];
                gnorm = sqrt(gnorm);
                double worst = 0;
                for (size_t v = 0; v < c->n_views; v++) {
                    if (strstr(c->views[v].name, "layers.1.")) continue; /* layer 0 and the head */
                    if (pool == LL_POOL_MAX && strstr(c->views[v].name, "lora")) continue;
                    const double rel = fd_view(c, v, analytic, gnorm, &b, labels, targets, 0, 12);
                    if (rel > worst) worst = rel;
                    CHECK_MSG(rel <= 1e-3, "%s %s %s %s: relative error %.3g", multi ? "BCE" : "CE",
                              bidir ? "bidirectional" : "causal", pools[pool], c->views[v].name, rel);
                }
                printf("%-3s %-13s pool %-5s  worst relative error %.2e\n", multi ? "BCE" : "CE",
                       bidir ? "bidirectional" : "causal", pools[pool], worst);
                free(analytic);
                ll_classifier_free(c);
            }
    token_cases(m);
    full_cases(m);
    ll_model_free(m);
    return test_summary("test_grad_classifier");
}
