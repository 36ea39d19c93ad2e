#include "train/classifier.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/carve.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "kernels/kernels.h"
#include "model/loss.h"

/* ---- construction ----------------------------------------------------------- */

/* [in, out] of LoRA target t: the one table (model/lora.h) */
static void module_dims(const ll_config *p, int t, size_t *in, size_t *out) { ll_lora_target_dims(p, t, in, out); }

void ll_classifier_free(ll_classifier *c) {
    if (!c) return;
    if (c->trained) {
        ll_workspace_free(&c->trained->ws);
        free(c->trained->layers);
        free(c->trained);
    }
    free(c->weight_grads);
    free(c->norm_grads);
    free(c->params);
    free(c->grads);
    free(c->views);
    free(c->lora.modules);
    ll_acts_free(&c->acts);
    free(c->head_block);
    free(c);
}

/* One trainable tensor [rows, cols] carved from the parameter block, named
 * (printf-style) in the next view; its gradient sits at the same offset of
 * c->grads. On a counting carver (no memory, c->views not yet allocated)
 * only counts the view; returns NULL and sets *grad to NULL. */
static float *carve_param(ll_carver *cv, ll_classifier *c, size_t rows, size_t cols, float **grad, const char *fmt,
                          ...) {
    float *data = ll_carve_f32(cv, rows * cols);
    *grad = data ? c->grads + (data - c->params) : NULL;
    if (c->views) {
        ll_param_view *v = &c->views[c->n_views];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->name, sizeof v->name, fmt, ap);
        va_end(ap);
        v->data = data, v->grad = *grad, v->rows = (int64_t)rows, v->cols = (int64_t)cols;
    }
    c->n_views++;
    return data;
}

/* The trainable tensors in their fixed order (of c->params, the gradients,
 * the optimiser state and checkpoints): per layer, each fully trained base
 * weight [out, in] under its Hugging Face name; per layer and targeted module
 * lora_A [r, in] then lora_B [out, r]; score.weight [K, D]; score.bias [K]. */
static void carve_params(ll_carver *cv, ll_classifier *c) {
    const ll_config *p = ll_model_config(c->base);
    const size_t r = (size_t)c->cfg.lora_r;
    c->n_views = 0;
    for (int l = 0; l < p->n_layers && c->cfg.full_targets; l++)
        for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
            if (!(c->cfg.full_targets & (1u << t))) continue;
            size_t in, o;
            module_dims(p, t, &in, &o);
            char name[96];
            float *dW;
            ll_arch_canonical_name(ll_lora_targets[t].weight, l, name, sizeof name);
            float *W = carve_param(cv, c, o, in, &dW, "%s", name);
            if (c->weight_grads) c->weight_grads[(size_t)l * LL_LORA_N_TARGETS + t] = dW;
            if (c->trained) /* the copy the passes read: an f32 matrix over the parameter */
                *ll_layer_matrix(&c->trained->layers[l], ll_lora_targets[t].weight) =
                    (ll_matrix){.dtype = LL_DTYPE_F32, .data = W, .rows = o, .cols = in, .ld_blocks = in,
                                .compute = ll_layer_matrix(&c->base->layers[l], ll_lora_targets[t].weight)->compute};
        }
    const size_t D = (size_t)p->dim;
    for (int l = 0; l < p->n_layers && (c->cfg.full_targets & LL_FULL_NORMS); l++)
        for (int k = 0; k < 2; k++) {
            char name[96];
            float *dw, *w = carve_param(cv, c, D, 1, &dw, "%s",
                                        ll_arch_canonical_name(k ? LL_ROLE_FFN_NORM : LL_ROLE_ATTN_NORM, l, name,
                                                               sizeof name));
            if (c->norm_grads) c->norm_grads[2 * l + k] = dw;
            if (c->trained) *(k ? &c->trained->layers[l].ffn_norm : &c->trained->layers[l].attn_norm) = w;
        }
    if (c->cfg.full_targets & LL_FULL_NORMS) {
        c->trained->final_norm = carve_param(cv, c, D, 1, &c->full.final_norm, "model.norm.weight");
    }
    if (c->cfg.full_targets & LL_FULL_EMBEDDINGS) {
        const size_t V = (size_t)p->vocab_size;
        float *E = carve_param(cv, c, V, D, &c->full.embeddings, "model.embed_tokens.weight");
        c->trained->tok_emb = (ll_matrix){.dtype = LL_DTYPE_F32, .data = E, .rows = V, .cols = D, .ld_blocks = D,
                                          .compute = c->base->tok_emb.compute};
    }
    for (int l = 0; l < p->n_layers && r; l++)
        for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
            if (!(c->cfg.lora_targets & (1u << t))) continue;
            ll_lora_module *md = ll_lora_at(&c->lora, l, t);
            size_t in, o;
            module_dims(p, t, &in, &o);
            const char *name = ll_lora_target_names[t];
            md->A = carve_param(cv, c, r, in, &md->dA, "layers.%d.%s.lora_A", l, name);
            md->B = carve_param(cv, c, o, r, &md->dB, "layers.%d.%s.lora_B", l, name);
        }
    c->head_w = carve_param(cv, c, (size_t)c->cfg.n_labels, (size_t)p->dim, &c->dhead_w, "score.weight");
    if (c->cfg.head_bias) c->head_b = carve_param(cv, c, (size_t)c->cfg.n_labels, 1, &c->dhead_b, "score.bias");
}

/* Fully trained base weights: their stored values, dequantized exactly;
 * LoRA A Kaiming-uniform (a = sqrt 5: bound 1 / sqrt(fan_in)), module by
 * module, then the head N(0, 0.02), from one stream; B and the bias stay 0. */
static void init_params(ll_classifier *c, uint64_t seed) {
    const ll_config *p = ll_model_config(c->base);
    const size_t r = (size_t)c->cfg.lora_r;
    for (int l = 0; l < p->n_layers && c->cfg.full_targets; l++)
        for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
            if (!(c->cfg.full_targets & (1u << t))) continue;
            const ll_matrix *W0 = ll_layer_matrix(&c->base->layers[l], ll_lora_targets[t].weight);
            const ll_matrix *W = ll_layer_matrix(&c->trained->layers[l], ll_lora_targets[t].weight);
            float *dst = (float *)W->data;
            for (size_t row = 0; row < W0->rows; row++) ll_matrix_row_f32(W0, row, dst + row * W0->cols);
        }
    const size_t D = (size_t)p->dim;
    for (int l = 0; l < p->n_layers && (c->cfg.full_targets & LL_FULL_NORMS); l++) {
        memcpy(c->trained->layers[l].attn_norm, c->base->layers[l].attn_norm, D * sizeof(float));
        memcpy(c->trained->layers[l].ffn_norm, c->base->layers[l].ffn_norm, D * sizeof(float));
    }
    if (c->cfg.full_targets & LL_FULL_NORMS) memcpy(c->trained->final_norm, c->base->final_norm, D * sizeof(float));
    if (c->cfg.full_targets & LL_FULL_EMBEDDINGS)
        for (size_t row = 0; row < c->base->tok_emb.rows; row++)
            ll_matrix_row_f32(&c->base->tok_emb, row, (float *)c->trained->tok_emb.data + row * D);
    uint64_t rng = seed ^ 0x5DEECE66Dull;
    for (int l = 0; l < p->n_layers && r; l++)
        for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
            if (!(c->cfg.lora_targets & (1u << t))) continue;
            ll_lora_module *md = ll_lora_at(&c->lora, l, t);
            size_t in, o;
            module_dims(p, t, &in, &o);
            const double bound = 1.0 / sqrt((double)in);
            for (size_t i = 0; i < r * in; i++) md->A[i] = (float)((2.0 * ll_rng_uniform01(&rng) - 1.0) * bound);
        }
    const size_t head = (size_t)c->cfg.n_labels * (size_t)p->dim;
    for (size_t i = 0; i < head; i++) c->head_w[i] = (float)(0.02 * ll_rng_normal(&rng));
}

void ll_classifier_config_default(ll_classifier_config *cfg, const ll_model *base) {
    *cfg = (ll_classifier_config){.pool = LL_POOL_LAST, .bidirectional_from = ll_model_config(base)->n_layers,
                                  .lora_r = 12, .lora_alpha = 32.0f, .lora_dropout = 0.1f,
                                  .lora_targets = (1u << LL_LORA_Q) | (1u << LL_LORA_V), .head_dropout = 0.1f};
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
    if (cfg->lora_targets & ~((1u << LL_LORA_N_TARGETS) - 1))
        return ll_fail(err, LL_ERR_ARG, "lora_targets 0x%x has bits beyond the %d LoRA target modules",
                       cfg->lora_targets, LL_LORA_N_TARGETS);
    /* alpha 0 makes the LoRA scale 0: B would never move and only the head would learn */
    if (cfg->lora_r > 0 && !(cfg->lora_alpha > 0 && isfinite(cfg->lora_alpha)))
        return ll_fail(err, LL_ERR_ARG, "lora_alpha must be a positive number, got %g", cfg->lora_alpha);
    if (cfg->lora_dropout < 0 || cfg->lora_dropout >= 1)
        return ll_fail(err, LL_ERR_ARG, "LoRA dropout must be in [0, 1), got %g", cfg->lora_dropout);
    if (cfg->pool < LL_POOL_LAST || cfg->pool > LL_POOL_FIRST) return ll_fail(err, LL_ERR_ARG, "unknown pooling");
    if (cfg->bidirectional_from < 0) return ll_fail(err, LL_ERR_ARG, "bidirectional_from must be >= 0");
    if (cfg->head_dropout < 0 || cfg->head_dropout >= 1)
        return ll_fail(err, LL_ERR_ARG, "head dropout must be in [0, 1), got %g", cfg->head_dropout);
    if (cfg->token_task && cfg->multi_label)
        return ll_fail(err, LL_ERR_ARG, "a token classifier is single-label (one tag per token)");
    if (cfg->full_targets & ~(((1u << LL_LORA_N_TARGETS) - 1) | LL_FULL_NORMS | LL_FULL_EMBEDDINGS))
        return ll_fail(err, LL_ERR_ARG, "full_targets 0x%x has bits beyond the linear modules, LL_FULL_NORMS and "
                       "LL_FULL_EMBEDDINGS", cfg->full_targets);
    /* full fine-tuning ends in model folders, written as lsllama merge writes them */
    if (cfg->full_targets && !base->arch->hf_class_prefix)
        return ll_fail(err, LL_ERR_UNSUPPORTED, "full fine-tuning writes model folders, and lsllama cannot write a "
                       "%s model folder yet (LoRA adapters are written)", p->arch);
    if ((cfg->full_targets & LL_FULL_NORMS) && (ll_model_post_norms(base) || ll_model_qk_norms(base)))
        return ll_fail(err, LL_ERR_UNSUPPORTED, "full fine-tuning of the norms (--full-targets norms) is not "
                       "supported for %s (its post-norms and q/k norms)", p->arch);
    if (cfg->full_targets && cfg->lora_r)
        return ll_fail(err, LL_ERR_ARG, "full fine-tuning trains the base weights themselves: LoRA (rank %d) is not "
                       "combined with it", cfg->lora_r);
    ll_classifier *c = calloc(1, sizeof *c);
    if (!c) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    c->base = c->model = base;
    c->cfg = *cfg;
    const int L = p->n_layers;
    const size_t r = (size_t)cfg->lora_r;
    c->lora = (ll_lora){.r = cfg->lora_r, .alpha = cfg->lora_alpha, .dropout = cfg->lora_dropout,
                        .targets = cfg->lora_targets, .n_layers = L};
    c->lora.scale = r ? (cfg->use_rslora ? cfg->lora_alpha / sqrtf((float)r) : cfg->lora_alpha / (float)r) : 0.0f;
    c->lora.modules = calloc((size_t)L * LL_LORA_N_TARGETS, sizeof *c->lora.modules);
    if (!c->lora.modules) {
        ll_classifier_free(c);
        return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    }
    if (cfg->full_targets) { /* the model the passes run: base's, with the trained weights repointed */
        c->trained = malloc(sizeof *c->trained);
        c->weight_grads = calloc((size_t)L * LL_LORA_N_TARGETS, sizeof *c->weight_grads);
        c->norm_grads = calloc((size_t)L * 2, sizeof *c->norm_grads);
        c->full = (ll_full_grads){.weights = c->weight_grads, .norms = c->norm_grads};
        ll_layer *layers = malloc((size_t)L * sizeof *layers);
        if (c->trained) *c->trained = *base, c->trained->ws = (ll_workspace){0}, c->trained->layers = layers;
        if (!c->trained || !layers || !c->weight_grads || !c->norm_grads) {
            if (!c->trained) free(layers);
            ll_classifier_free(c);
            return ll_fail(err, LL_ERR_NOMEM, "out of memory");
        }
        memcpy(layers, base->layers, (size_t)L * sizeof *layers);
        c->model = c->trained;
    }
    /* count, allocate, carve: carve_params is the one description of the layout */
    ll_carver count = {0};
    carve_params(&count, c);
    c->n_params = count.used / sizeof(float);
    c->params = calloc(c->n_params, sizeof(float));
    c->grads = calloc(c->n_params, sizeof(float));
    c->views = calloc(c->n_views, sizeof *c->views);
    if (!c->params || !c->grads || !c->views) {
        const size_t n = c->n_params;
        ll_classifier_free(c);
        return ll_fail(err, LL_ERR_NOMEM, "out of memory for %zu trainable parameters", n);
    }
    ll_carver params = {.base = (char *)c->params};
    carve_params(&params, c);
    init_params(c, seed);
    *out = c;
    return LL_OK;
}

const ll_param_view *ll_classifier_find_param(const ll_classifier *c, const char *name) {
    for (size_t i = 0; i < c->n_views; i++)
        if (!strcmp(c->views[i].name, name)) return &c->views[i];
    return NULL;
}

/* The sizes of the head's buffers (in elements). */
typedef struct head_dims {
    size_t T, S, D, K; /* tokens, sequences, hidden width, labels */
    size_t H;          /* rows of the head: T (token task) or S */
} head_dims;

/* hidden, dhidden [T, D]; pooled, dpooled [H, D]; logits, dlogits [H, K];
 * argmax [S, D], in this order. */
static void carve_head(ll_carver *cv, void *fields, const void *ctx) {
    ll_classifier *c = fields;
    const head_dims *d = ctx;
    c->hidden = ll_carve_f32(cv, d->T * d->D);
    c->dhidden = ll_carve_f32(cv, d->T * d->D);
    c->pooled = ll_carve_f32(cv, d->H * d->D);
    c->dpooled = ll_carve_f32(cv, d->H * d->D);
    c->logits = ll_carve_f32(cv, d->H * d->K);
    c->dlogits = ll_carve_f32(cv, d->H * d->K);
    c->argmax = ll_carve_i32(cv, d->S * d->D);
}

void ll_classifier_set_recompute(ll_classifier *c, int on) { c->acts.recompute = !!on; }

int ll_classifier_reserve(ll_classifier *c, size_t T, size_t S, ll_error *err) {
    /* the activations may need a new layout (recompute changed) even when the head's buffers fit */
    if (T <= c->cap_tokens && S <= c->cap_seqs)
        return c->cap_tokens ? ll_acts_reserve(&c->acts, c->model, c->cfg.lora_r ? &c->lora : NULL, c->cap_tokens, err)
                             : LL_OK;
    T = T > c->cap_tokens ? T : c->cap_tokens;
    S = S > c->cap_seqs ? S : c->cap_seqs;
    const head_dims d = {.T = T, .S = S, .D = (size_t)ll_model_config(c->base)->dim, .K = (size_t)c->cfg.n_labels,
                         .H = c->cfg.token_task ? T : S};
    char what[80];
    snprintf(what, sizeof what, "the classifier's buffers for a batch of %zu tokens", T);
    void *old = c->head_block;
    int rc = ll_carve_alloc(&c->head_block, NULL, carve_head, c, sizeof *c, &d, what, err);
    if (rc) return rc;
    free(old);
    c->cap_tokens = T, c->cap_seqs = S;
    return ll_acts_reserve(&c->acts, c->model, c->cfg.lora_r ? &c->lora : NULL, T, err);
}

/* ---- pooling and head ----------------------------------------------------- */

/* Something below the head is trained (LoRA, or base weights in full): the
 * backward pass runs down the stack. */
static int trains_stack(const ll_classifier *c) { return c->cfg.lora_r || c->cfg.full_targets; }

static void pool_backward(ll_classifier *c, const ll_batch *b, size_t D, size_t T) {
    memset(c->dhidden, 0, T * D * sizeof(float));
    ll_pool_backward(c->dhidden, c->dpooled, c->argmax, b->seq_start, b->n_seqs, D, c->cfg.pool);
}

/* Token task: the head's input is dropout(hidden) while training, kept
 * values scaled by 1 / (1 - p) as torch.nn.Dropout does. The mask is a
 * function of (seed, element) alone, so backward regenerates it; element i
 * draws ll_mix64(key + i * gamma), a stream apart from LoRA's masks. */
static ll_dropout head_mask(const ll_classifier *c, uint64_t seed) {
    return ll_dropout_make(c->cfg.head_dropout, ll_splitmix64_hash(seed ^ 0xD1B54A32D192ED03ull),
                           LL_SPLITMIX64_GAMMA);
}

static int head_dropout_on(const ll_classifier *c, int training) {
    return training && c->cfg.token_task && c->cfg.head_dropout > 0;
}

/* Token task: the head's input, dropout(hidden) in c->pooled while dropout
 * applies, else the hidden states themselves (kept in c->hidden for backward). */
static const float *token_head_input(const ll_classifier *c, int training) {
    return head_dropout_on(c, training) ? c->pooled : c->hidden;
}

/* Last-token pooling over a causal last layer reads one row per sequence of
 * the last layer's output: the stack then computes the last layer past k and
 * v for those rows alone (ll_lora_pass.last_rows), the same bits as the full
 * pass. LSLLAMA_TRIM=0 turns it off (tests run both); off too when ll_gemm
 * runs on OpenBLAS, whose sums are its own and may follow the number of rows. */
static int trims(const ll_classifier *c) {
    const char *env = getenv("LSLLAMA_TRIM");
    return !(env && !strcmp(env, "0")) && !c->cfg.token_task && c->cfg.pool == LL_POOL_LAST &&
           ll_model_config(c->base)->n_layers - 1 < c->cfg.bidirectional_from && strcmp(ll_gemm_backend(), "openblas");
}

static int run_forward_rows(ll_classifier *c, const ll_batch *b, int training, uint64_t seed, ll_acts *acts,
                            int all_rows, ll_error *err) {
    const ll_config *p = ll_model_config(c->base);
    if (!b || b->n_seqs < 1 || !b->seq_start) return ll_fail(err, LL_ERR_ARG, "empty batch");
    const size_t T = (size_t)b->seq_start[b->n_seqs], D = (size_t)p->dim, K = (size_t)c->cfg.n_labels;
    int rc = ll_classifier_reserve(c, T, (size_t)b->n_seqs, err);
    if (rc) return rc;
    ll_lora_pass lp = {c->cfg.lora_r ? &c->lora : NULL, training, seed, !all_rows && trims(c),
                       c->trained ? &c->full : NULL};
    if ((rc = ll_stack_forward(c->model, b, c->cfg.bidirectional_from, &lp, acts, c->hidden, err))) return rc;
    if (c->cfg.token_task) {
        if (head_dropout_on(c, training)) {
            const ll_dropout mask = head_mask(c, seed);
            ll_dropout_forward(&mask, c->pooled, c->hidden, T * D);
        }
        ll_linear_forward_f32(c->logits, token_head_input(c, training), c->head_w, c->head_b, T, D, K, 0);
        return LL_OK;
    }
    if (lp.last_rows) /* hidden holds the sequences' last rows: the pooled rows themselves */
        memcpy(c->pooled, c->hidden, (size_t)b->n_seqs * D * sizeof(float));
    else
        ll_pool_forward(c->pooled, c->argmax, c->hidden, b->seq_start, b->n_seqs, D, c->cfg.pool);
    ll_linear_forward_f32(c->logits, c->pooled, c->head_w, c->head_b, (size_t)b->n_seqs, D, K, 0);
    return LL_OK;
}

/* The forward pass of the classifier; the stack computes only the last rows where the head needs no more. */
static int run_forward(ll_classifier *c, const ll_batch *b, int training, uint64_t seed, ll_acts *acts,
                       ll_error *err) {
    return run_forward_rows(c, b, training, seed, acts, 0, err);
}

int ll_classifier_infer(ll_classifier *c, const ll_batch *b, const ll_classifier_outputs *out, ll_error *err) {
    const size_t D = (size_t)ll_model_config(c->base)->dim, K = (size_t)c->cfg.n_labels;
    const int own_pool = !c->cfg.token_task && out->pool == c->cfg.pool;
    /* every row is needed for the hidden states, and for a pooling other than the head's */
    const int all_rows = out->hidden || (out->pooled && !own_pool);
    int rc = run_forward_rows(c, b, 0, 0, NULL, all_rows, err);
    if (rc) return rc;
    const size_t rows = ll_classifier_logit_rows(c, b), T = (size_t)b->seq_start[b->n_seqs];
    for (size_t r = 0; r < rows; r++) /* nan/inf never reach the caller */
        for (size_t k = 0; k < K; k++)
            if (!isfinite(c->logits[r * K + k]))
                return ll_fail(err, LL_ERR_ARG, "non-finite logits for %s %zu of the batch (model or adapter weights "
                                                "corrupt?)", c->cfg.token_task ? "token" : "sequence", r);
    if (out->logits) memcpy(out->logits, c->logits, rows * K * sizeof(float));
    if (out->hidden) memcpy(out->hidden, c->hidden, T * D * sizeof(float));
    if (out->pooled) {
        if (own_pool) memcpy(out->pooled, c->pooled, (size_t)b->n_seqs * D * sizeof(float));
        else ll_pool_forward(out->pooled, NULL, c->hidden, b->seq_start, b->n_seqs, D, out->pool);
    }
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
    int rc = run_forward(c, b, 1, seed, trains_stack(c) ? &c->acts : NULL, err);
    if (rc) return rc;
    double total = 0;
    ll_crossentropy_forward(&total, c->logits, labels, T, (size_t)K);
    ll_crossentropy_backward(c->dlogits, c->logits, labels, T, (size_t)K, n, loss_scale);
    *loss = n ? (float)(total / (double)n) : 0.0f;
    if (!n) return LL_OK; /* nothing labelled: no gradient */
    /* head only: no gradient wanted below the head */
    ll_linear_head_backward(trains_stack(c) ? c->dhidden : NULL, c->dhead_w, c->dhead_b, c->dlogits,
                            token_head_input(c, 1), c->head_w, T, D, (size_t)K);
    if (!trains_stack(c)) return LL_OK; /* head only */
    if (head_dropout_on(c, 1)) {
        const ll_dropout mask = head_mask(c, seed);
        ll_dropout_backward(&mask, c->dhidden, c->dhidden, c->hidden, c->pooled, T * D, 0);
    }
    ll_lora_pass lp = {c->cfg.lora_r ? &c->lora : NULL, 1, seed, 0, c->trained ? &c->full : NULL};
    return ll_stack_backward(c->model, b, c->cfg.bidirectional_from, &lp, &c->acts, c->dhidden, err);
}

int ll_classifier_train_step(ll_classifier *c, const ll_batch *b, const int32_t *labels, const float *targets,
                             uint64_t seed, float loss_scale, float *loss, ll_error *err) {
    if (c->cfg.token_task) return token_train_step(c, b, labels, seed, loss_scale, loss, err);
    const int K = c->cfg.n_labels, n = b ? b->n_seqs : 0;
    if (c->cfg.multi_label ? !targets : !labels) return ll_fail(err, LL_ERR_ARG, "training step without labels");
    for (int s = 0; s < n && !c->cfg.multi_label; s++)
        if (labels[s] < 0 || labels[s] >= K)
            return ll_fail(err, LL_ERR_ARG, "label %d of sequence %d is outside 0..%d", labels[s], s, K - 1);
    int rc = run_forward(c, b, 1, seed, trains_stack(c) ? &c->acts : NULL, err);
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
    if (!trains_stack(c)) return LL_OK; /* head only: nothing below the head is trained */
    ll_lora_pass lp = {c->cfg.lora_r ? &c->lora : NULL, 1, seed, trims(c), c->trained ? &c->full : NULL};
    if (lp.last_rows) /* the stack's output rows are the pooled rows: dhidden is dpooled */
        return ll_stack_backward(c->model, b, c->cfg.bidirectional_from, &lp, &c->acts, c->dpooled, err);
    pool_backward(c, b, D, T);
    return ll_stack_backward(c->model, b, c->cfg.bidirectional_from, &lp, &c->acts, c->dhidden, err);
}
