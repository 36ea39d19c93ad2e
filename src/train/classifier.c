#include "train/classifier.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/dataset.h"
#include "kernels/kernels.h"
#include "model/loss.h"

/* ---- deterministic initialisation ----------------------------------------- */

static uint64_t mix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double uniform01(uint64_t *s) { return ((mix64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
static double normal(uint64_t *s) { return sqrt(-2.0 * log(uniform01(s))) * cos(2.0 * M_PI * uniform01(s)); }

/* ---- construction ----------------------------------------------------------- */

/* [in, out] of LoRA target t: the one table (model/lora.h) */
static void module_dims(const ll_config *p, int t, size_t *in, size_t *out) { ll_lora_target_dims(p, t, in, out); }

void ll_classifier_free(ll_classifier *c) {
    if (!c) return;
    free(c->params);
    free(c->grads);
    free(c->views);
    free(c->lora.modules);
    ll_acts_free(&c->acts);
    free(c->hidden);
    free(c->argmax);
    free(c);
}

int ll_classifier_create(ll_classifier **out, ll_model *base, const ll_classifier_config *cfg, uint64_t seed,
                         ll_error *err) {
    *out = NULL;
    const ll_config *p = ll_model_config(base);
    if (cfg->n_labels < 1) return ll_fail(err, LL_ERR_ARG, "the classifier needs at least one label");
    if (cfg->lora_r < 0 || (cfg->lora_r == 0 && cfg->lora_targets))
        return ll_fail(err, LL_ERR_ARG, "LoRA rank must be at least 1 when LoRA target modules are given (r = %d)",
                       cfg->lora_r);
    if (cfg->lora_r > 0 && !cfg->lora_targets)
        return ll_fail(err, LL_ERR_ARG, "LoRA rank %d given but no target modules", cfg->lora_r);
    if (cfg->lora_dropout < 0 || cfg->lora_dropout >= 1)
        return ll_fail(err, LL_ERR_ARG, "LoRA dropout must be in [0, 1), got %g", cfg->lora_dropout);
    if (cfg->pool < LL_POOL_LAST || cfg->pool > LL_POOL_FIRST) return ll_fail(err, LL_ERR_ARG, "unknown pooling");
    if (cfg->bidirectional_from < 0) return ll_fail(err, LL_ERR_ARG, "bidirectional_from must be >= 0");
    if (cfg->head_dropout < 0 || cfg->head_dropout >= 1)
        return ll_fail(err, LL_ERR_ARG, "head dropout must be in [0, 1), got %g", cfg->head_dropout);
    if (cfg->token_task && cfg->multi_label)
        return ll_fail(err, LL_ERR_ARG, "a token classifier is single-label (one tag per token)");
    ll_classifier *c = calloc(1, sizeof *c);
    if (!c) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    c->base = base;
    c->cfg = *cfg;
    const int L = p->n_layers, K = cfg->n_labels;
    const size_t D = p->dim, r = (size_t)cfg->lora_r;
    c->lora = (ll_lora){.r = cfg->lora_r, .alpha = cfg->lora_alpha, .dropout = cfg->lora_dropout,
                        .targets = cfg->lora_targets, .n_layers = L};
    c->lora.scale = r ? (cfg->use_rslora ? cfg->lora_alpha / sqrtf((float)r) : cfg->lora_alpha / (float)r) : 0.0f;
    c->lora.modules = calloc((size_t)L * LL_LORA_N_TARGETS, sizeof *c->lora.modules);
    /* count parameters and views */
    size_t n = 0, nv = 0;
    for (int l = 0; l < L && r; l++)
        for (int t = 0; t < LL_LORA_N_TARGETS; t++)
            if (cfg->lora_targets & (1u << t)) {
                size_t in, o;
                module_dims(p, t, &in, &o);
                n += r * in + o * r;
                nv += 2;
            }
    n += (size_t)K * D + (cfg->head_bias ? (size_t)K : 0);
    nv += 1 + (cfg->head_bias ? 1 : 0);
    c->n_params = n;
    c->params = calloc(n, sizeof(float));
    c->grads = calloc(n, sizeof(float));
    c->views = calloc(nv, sizeof *c->views);
    if (!c->lora.modules || !c->params || !c->grads || !c->views) {
        ll_classifier_free(c);
        return ll_fail(err, LL_ERR_NOMEM, "out of memory for %zu trainable parameters", n);
    }
    uint64_t rng = seed ^ 0x5DEECE66Dull;
    size_t off = 0;
#define VIEW(ptrp, gradp, rows_, cols_, ...)                                                                          \
    do {                                                                                                              \
        ll_param_view *v_ = &c->views[c->n_views++];                                                                  \
        snprintf(v_->name, sizeof v_->name, __VA_ARGS__);                                                             \
        v_->data = c->params + off, v_->grad = c->grads + off, v_->rows = (int64_t)(rows_), v_->cols = (int64_t)(cols_); \
        ptrp = v_->data, gradp = v_->grad;                                                                            \
        off += (size_t)(rows_) * (size_t)(cols_);                                                                     \
    } while (0)
    for (int l = 0; l < L && r; l++)
        for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
            if (!(cfg->lora_targets & (1u << t))) continue;
            ll_lora_module *md = ll_lora_at(&c->lora, l, t);
            size_t in, o;
            module_dims(p, t, &in, &o);
            VIEW(md->A, md->dA, r, in, "layers.%d.%s.lora_A", l, ll_lora_target_names[t]);
            VIEW(md->B, md->dB, o, r, "layers.%d.%s.lora_B", l, ll_lora_target_names[t]);
            /* kaiming_uniform_(a = sqrt 5): bound = 1 / sqrt(fan_in); B stays 0 */
            const double bound = 1.0 / sqrt((double)in);
            for (size_t i = 0; i < r * in; i++) md->A[i] = (float)((2.0 * uniform01(&rng) - 1.0) * bound);
        }
    VIEW(c->head_w, c->dhead_w, K, D, "score.weight");
    for (size_t i = 0; i < (size_t)K * D; i++) c->head_w[i] = (float)(0.02 * normal(&rng));
    if (cfg->head_bias) VIEW(c->head_b, c->dhead_b, K, 1, "score.bias");
#undef VIEW
    *out = c;
    return LL_OK;
}

const ll_param_view *ll_classifier_find_param(const ll_classifier *c, const char *name) {
    for (size_t i = 0; i < c->n_views; i++)
        if (!strcmp(c->views[i].name, name)) return &c->views[i];
    return NULL;
}

int ll_classifier_reserve(ll_classifier *c, size_t T, size_t S, ll_error *err) {
    if (T <= c->cap_tokens && S <= c->cap_seqs) return LL_OK;
    T = T > c->cap_tokens ? T : c->cap_tokens;
    S = S > c->cap_seqs ? S : c->cap_seqs;
    const size_t D = (size_t)ll_model_config(c->base)->dim, K = (size_t)c->cfg.n_labels;
    const size_t H = c->cfg.token_task ? T : S; /* rows of the head */
    float *f = malloc((2 * T * D + 2 * H * D + 2 * H * K) * sizeof(float));
    int32_t *am = malloc(S * D * sizeof(int32_t));
    if (!f || !am) {
        free(f);
        free(am);
        return ll_fail(err, LL_ERR_NOMEM, "out of memory for a batch of %zu tokens", T);
    }
    free(c->hidden);
    free(c->argmax);
    c->hidden = f, f += T * D;
    c->dhidden = f, f += T * D;
    c->pooled = f, f += H * D;
    c->dpooled = f, f += H * D;
    c->logits = f, f += H * K;
    c->dlogits = f;
    c->argmax = am;
    c->cap_tokens = T, c->cap_seqs = S;
    return ll_acts_reserve(&c->acts, c->base, c->cfg.lora_r ? &c->lora : NULL, T, err);
}

/* ---- pooling and head ----------------------------------------------------- */

static void pool_backward(ll_classifier *c, const ll_batch *b, size_t D, size_t T) {
    memset(c->dhidden, 0, T * D * sizeof(float));
    ll_pool_backward(c->dhidden, c->dpooled, c->argmax, b->seq_start, b->n_seqs, D, c->cfg.pool);
}

/* Token task: the head's input is dropout(hidden) while training. The mask
 * is a function of (seed, element) alone, so backward recomputes it; kept
 * values are scaled by 1 / (1 - p) as torch.nn.Dropout does. mode 0: x ->
 * out; mode 1: the gradient through the same mask, in place. */
static void head_dropout(const ll_classifier *c, uint64_t seed, float *out, const float *x, size_t n, int grad) {
    const float p = c->cfg.head_dropout, keep_scale = 1.0f / (1.0f - p);
    const uint64_t threshold = (uint64_t)((double)p * 16777216.0);
    uint64_t st = seed ^ 0xD1B54A32D192ED03ull; /* a stream apart from LoRA's masks */
    const uint64_t base = mix64(&st);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        uint64_t z = base + i * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        const int drop = ((z ^ (z >> 31)) >> 40) < threshold; /* 24 random bits */
        out[i] = drop ? 0.0f : (grad ? out[i] : x[i]) * keep_scale;
    }
}

static int head_dropout_on(const ll_classifier *c, int training) {
    return training && c->cfg.token_task && c->cfg.head_dropout > 0;
}

/* Token task: the head's input, dropout(hidden) in c->pooled while dropout
 * applies, else the hidden states themselves (kept in c->hidden for backward). */
static const float *token_head_input(const ll_classifier *c, int training) {
    return head_dropout_on(c, training) ? c->pooled : c->hidden;
}

static int run_forward(ll_classifier *c, const ll_batch *b, int training, uint64_t seed, ll_acts *acts,
                       ll_error *err) {
    const ll_config *p = ll_model_config(c->base);
    if (!b || b->n_seqs < 1 || !b->seq_start) return ll_fail(err, LL_ERR_ARG, "empty batch");
    const size_t T = (size_t)b->seq_start[b->n_seqs], D = (size_t)p->dim, K = (size_t)c->cfg.n_labels;
    int rc = ll_classifier_reserve(c, T, (size_t)b->n_seqs, err);
    if (rc) return rc;
    ll_lora_pass lp = {c->cfg.lora_r ? &c->lora : NULL, training, seed};
    if ((rc = ll_stack_forward(c->base, b, c->cfg.bidirectional_from, &lp, acts, c->hidden, err))) return rc;
    if (c->cfg.token_task) {
        if (head_dropout_on(c, training)) head_dropout(c, seed, c->pooled, c->hidden, T * D, 0);
        ll_linear_forward(c->logits, token_head_input(c, training), c->head_w, c->head_b, T, D, K, 0);
        return LL_OK;
    }
    ll_pool_forward(c->pooled, c->argmax, c->hidden, b->seq_start, b->n_seqs, D, c->cfg.pool);
    ll_linear_forward(c->logits, c->pooled, c->head_w, c->head_b, (size_t)b->n_seqs, D, K, 0);
    return LL_OK;
}

size_t ll_classifier_logit_rows(const ll_classifier *c, const ll_batch *b) {
    return c->cfg.token_task ? (size_t)b->seq_start[b->n_seqs] : (size_t)b->n_seqs;
}

int ll_classifier_forward(ll_classifier *c, const ll_batch *b, int training, uint64_t seed, float *logits,
                          ll_error *err) {
    int rc = run_forward(c, b, training, seed, NULL, err);
    if (!rc && logits) memcpy(logits, c->logits, ll_classifier_logit_rows(c, b) * c->cfg.n_labels * sizeof(float));
    return rc;
}

/* Token task: cross-entropy over the labelled tokens (mean), the head's
 * gradients, then through dropout into dhidden and down the stack. */
static int token_train_step(ll_classifier *c, const ll_batch *b, const int32_t *labels, uint64_t seed,
                            float loss_scale, float *loss, ll_error *err) {
    const int K = c->cfg.n_labels;
    if (!labels) return ll_fail(err, LL_ERR_ARG, "training step without labels");
    if (!b || b->n_seqs < 1 || !b->seq_start) return ll_fail(err, LL_ERR_ARG, "empty batch");
    const size_t T = (size_t)b->seq_start[b->n_seqs], D = (size_t)ll_model_config(c->base)->dim;
    size_t n = 0;
    for (size_t t = 0; t < T; t++) {
        if (labels[t] == LL_IGNORE_LABEL) continue;
        if (labels[t] < 0 || labels[t] >= K)
            return ll_fail(err, LL_ERR_ARG, "label %d of token %zu is outside 0..%d", labels[t], t, K - 1);
        n++;
    }
    int rc = run_forward(c, b, 1, seed, c->cfg.lora_r ? &c->acts : NULL, err);
    if (rc) return rc;
    double total = 0;
    ll_crossentropy_forward(&total, c->logits, labels, T, (size_t)K);
    ll_crossentropy_backward(c->dlogits, c->logits, labels, T, (size_t)K, n, loss_scale);
    *loss = n ? (float)(total / (double)n) : 0.0f;
    if (!n) return LL_OK; /* nothing labelled: no gradient */
    /* head only: no gradient wanted below the head */
    ll_linear_head_backward(c->cfg.lora_r ? c->dhidden : NULL, c->dhead_w, c->dhead_b, c->dlogits,
                            token_head_input(c, 1), c->head_w, T, D, (size_t)K);
    if (!c->cfg.lora_r) return LL_OK; /* head only */
    if (head_dropout_on(c, 1)) head_dropout(c, seed, c->dhidden, NULL, T * D, 1);
    ll_lora_pass lp = {&c->lora, 1, seed};
    return ll_stack_backward(c->base, b, c->cfg.bidirectional_from, &lp, &c->acts, c->dhidden, err);
}

int ll_classifier_train_step(ll_classifier *c, const ll_batch *b, const int32_t *labels, const float *targets,
                             uint64_t seed, float loss_scale, float *loss, ll_error *err) {
    if (c->cfg.token_task) return token_train_step(c, b, labels, seed, loss_scale, loss, err);
    const int K = c->cfg.n_labels, n = b ? b->n_seqs : 0;
    if (c->cfg.multi_label ? !targets : !labels) return ll_fail(err, LL_ERR_ARG, "training step without labels");
    for (int s = 0; s < n && !c->cfg.multi_label; s++)
        if (labels[s] < 0 || labels[s] >= K)
            return ll_fail(err, LL_ERR_ARG, "label %d of sequence %d is outside 0..%d", labels[s], s, K - 1);
    int rc = run_forward(c, b, 1, seed, c->cfg.lora_r ? &c->acts : NULL, err);
    if (rc) return rc;
    const size_t D = (size_t)ll_model_config(c->base)->dim, T = (size_t)b->seq_start[n];
    const size_t N = (size_t)n;
    double total = 0;
    if (c->cfg.multi_label) { /* BCE with logits, mean over n * K */
        ll_bce_logits_forward(&total, c->logits, targets, N, (size_t)K);
        ll_bce_logits_backward(c->dlogits, c->logits, targets, N, (size_t)K, loss_scale);
        *loss = (float)(total / ((double)n * K));
    } else { /* cross-entropy, mean over n */
        ll_crossentropy_forward(&total, c->logits, labels, N, (size_t)K);
        ll_crossentropy_backward(c->dlogits, c->logits, labels, N, (size_t)K, N, loss_scale);
        *loss = (float)(total / n);
    }
    ll_linear_head_backward(c->dpooled, c->dhead_w, c->dhead_b, c->dlogits, c->pooled, c->head_w, N, D, (size_t)K);
    pool_backward(c, b, D, T);
    if (!c->cfg.lora_r) return LL_OK; /* head only: nothing below the head is trained */
    ll_lora_pass lp = {&c->lora, 1, seed};
    return ll_stack_backward(c->base, b, c->cfg.bidirectional_from, &lp, &c->acts, c->dhidden, err);
}
