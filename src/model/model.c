/* Loading a checkpoint into f32 weights. */
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/dtype.h"
#include "kernels/kernels.h"
#include "model/checkpoint.h"
#include "model/rope_freq.h"

const ll_config *ll_model_config(const ll_model *m) { return &m->cfg; }
const char *ll_model_format(const ll_model *m) { return m->format; }

void ll_model_free(ll_model *m) {
    if (!m) return;
    ll_workspace_free(&m->ws);
    free(m->weights);
    free(m->layers);
    free(m->path);
    free(m);
}

/* GGUF/llama2.c order rows of each head as interleaved pairs (x0,x1),(x2,x3)...
 * for RoPE; HF orders them as two halves. Row r = 2i + j of a head moves to
 * j * (hd/2) + i. Applies to weight rows (cols values each) and bias rows. */
static int unpermute_rows(float *w, size_t rows, size_t cols, int head_dim) {
    const size_t half = (size_t)head_dim / 2;
    float *tmp = malloc((size_t)head_dim * cols * sizeof(float));
    if (!tmp) return 0;
    for (size_t h = 0; h < rows / (size_t)head_dim; h++) {
        float *base = w + h * (size_t)head_dim * cols;
        for (size_t i = 0; i < half; i++)
            for (size_t j = 0; j < 2; j++)
                memcpy(tmp + (j * half + i) * cols, base + (2 * i + j) * cols, cols * sizeof(float));
        memcpy(base, tmp, (size_t)head_dim * cols * sizeof(float));
    }
    free(tmp);
    return 1;
}

/* Copy a stored tensor into dst as f32 after checking its shape. */
static int load_tensor(const ll_checkpoint *c, const char *name, int64_t rows, int64_t cols, float *dst,
                       int head_dim, ll_error *err) {
    const ll_tensor_info *t = ll_checkpoint_find(c, name);
    const char *path = ll_checkpoint_path(c);
    if (!t) {
        char buf[160];
        const char *stored = ll_checkpoint_stored_name(c, name, buf, sizeof buf);
        if (strcmp(stored, name))
            return ll_fail(err, LL_ERR_SHAPE, "%s: tensor '%s' (stored as '%s') is missing", path, name, stored);
        return ll_fail(err, LL_ERR_SHAPE, "%s: tensor '%s' is missing", path, name);
    }
    const int want_ndim = rows > 0 ? 2 : 1;
    const int64_t want0 = rows > 0 ? rows : cols;
    int ok = t->ndim == want_ndim && t->shape[0] == want0 && (want_ndim == 1 || t->shape[1] == cols);
    /* Some writers store norm weights as [1, C]; accept that. */
    if (!ok && want_ndim == 1 && t->ndim == 2 && t->shape[0] == 1 && t->shape[1] == cols) ok = 1;
    if (!ok) {
        char got[96] = "", *p = got;
        for (int d = 0; d < t->ndim; d++) p += snprintf(p, got + sizeof got - p, d ? ", %lld" : "%lld", (long long)t->shape[d]);
        if (want_ndim == 2)
            return ll_fail(err, LL_ERR_SHAPE, "%s: tensor '%s' (stored as '%s') has shape [%s], expected [%lld, %lld]",
                           t->file, name, t->stored_name, got, (long long)rows, (long long)cols);
        return ll_fail(err, LL_ERR_SHAPE, "%s: tensor '%s' (stored as '%s') has shape [%s], expected [%lld]", t->file,
                       name, t->stored_name, got, (long long)cols);
    }
    if (!ll_dtype_is_float_convertible(t->dtype))
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s, which is not supported", t->file,
                       t->stored_name, t->dtype_name);
    const size_t r = rows > 0 ? (size_t)rows : (size_t)cols, cc = rows > 0 ? (size_t)cols : 1;
    if (t->rope_interleaved && r % (size_t)head_dim)
        return ll_fail(err, LL_ERR_SHAPE, "%s: tensor '%s' rows not a multiple of the head dimension", t->file, name);
    if (!dst) return LL_OK; /* check only */
    ll_dequantize(t->dtype, t->data, dst, (size_t)t->n_elems);
    /* Corrupt weights would turn every result into NaN with exit 0: checked once, here, at about 1 ns a value. */
    const size_t bad = ll_first_nonfinite(dst, (size_t)t->n_elems);
    if (bad < (size_t)t->n_elems)
        return ll_fail(err, LL_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value (%g) at element %zu (row %zu): "
                       "the checkpoint is corrupt", t->file, t->stored_name, dst[bad], bad, bad / cc);
    if (t->rope_interleaved && !unpermute_rows(dst, r, cc, head_dim))
        return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    return LL_OK;
}

/* 1 if the loader reads tensor `name` for this config (or it is one that
 * transformers itself ignores); 0 for a tensor the model would drop. */
static int tensor_is_used(const char *name, const ll_config *p) {
    if (!strcmp(name, "model.embed_tokens.weight") || !strcmp(name, "model.norm.weight") ||
        !strcmp(name, "rope_freqs.weight"))
        return 1;
    /* an LM head (read for generation, ignored when tied as transformers
     * does; classification has no use for it, as LlamaModel) and a merged classifier's head (read by the
     * classifier, ll_classifier_load_head) */
    if (!strcmp(name, "lm_head.weight")) return 1;
    if (!strcmp(name, "score.weight") || !strcmp(name, "score.bias")) return 1;
    /* RoPE tables older transformers saved as buffers; transformers
     * recomputes them from the config and ignores these */
    if (!strcmp(name, "model.rotary_emb.inv_freq")) return 1;
    int layer, n = 0;
    if (sscanf(name, "model.layers.%d.%n", &layer, &n) != 1 || n == 0 || layer < 0 || layer >= p->n_layers) return 0;
    const char *s = name + n;
    static const char *const always[] = {"input_layernorm.weight", "post_attention_layernorm.weight",
                                         "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                         "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                                         "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
                                         "self_attn.rotary_emb.inv_freq"};
    for (size_t i = 0; i < sizeof always / sizeof always[0]; i++)
        if (!strcmp(s, always[i])) return 1;
    if (!strcmp(s, "self_attn.q_proj.bias") || !strcmp(s, "self_attn.k_proj.bias") ||
        !strcmp(s, "self_attn.v_proj.bias"))
        return p->qkv_bias;
    if (!strcmp(s, "self_attn.o_proj.bias")) return p->o_bias;
    if (!strcmp(s, "mlp.gate_proj.bias") || !strcmp(s, "mlp.up_proj.bias") || !strcmp(s, "mlp.down_proj.bias"))
        return p->mlp_bias;
    return 0;
}

/* Every tensor of the checkpoint is used or refused by name: a tensor the
 * config does not enable (o_proj.bias without attention_bias) or one no
 * supported architecture has would otherwise be dropped without a word. */
static int check_all_used(const ll_checkpoint *c, const ll_config *p, ll_error *err) {
    for (size_t i = 0; i < ll_checkpoint_n_tensors(c); i++) {
        const ll_tensor_info *t = ll_checkpoint_tensor(c, i);
        if (tensor_is_used(t->name, p)) continue;
        const char *why = "";
        if (strstr(t->name, "o_proj.bias") && !strcmp(p->arch, "llama"))
            why = " (config.json has no \"attention_bias\": true)";
        else if (strstr(t->name, "_proj.bias") && strstr(t->name, ".mlp.") && !strcmp(p->arch, "llama"))
            why = " (config.json has no \"mlp_bias\": true)";
        else if (strstr(t->name, "_proj.bias") && !strcmp(p->arch, "llama"))
            why = " (config.json has no \"attention_bias\": true)";
        else if (strstr(t->name, "_proj.bias"))
            why = " (transformers' model of this architecture has no such bias)";
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: tensor '%s' is not used by a %s model with this config%s; "
                       "refusing to drop it", t->file, t->stored_name, p->arch, why);
    }
    return LL_OK;
}

int ll_model_load(ll_model **out, const char *path, const ll_load_options *opt, ll_error *err) {
    *out = NULL;
    ll_checkpoint *c;
    int rc = ll_checkpoint_open(&c, path, err);
    if (rc) return rc;
    ll_model *m = calloc(1, sizeof *m);
    if (!m) {
        ll_checkpoint_close(c);
        return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    }
    m->cfg = *ll_checkpoint_config(c);
    snprintf(m->format, sizeof m->format, "%s", ll_checkpoint_format(c));
    m->path = strdup(path);
    const ll_config *p = &m->cfg;
    const size_t D = p->dim, F = p->hidden_dim, hd = p->head_dim, QD = (size_t)p->n_heads * hd,
                 KVD = (size_t)p->n_kv_heads * hd, V = p->vocab_size, L = p->n_layers;
    const int want_head = opt && opt->with_lm_head;
    const int own_head = want_head && !p->tied_embeddings;
    const size_t per_layer = 2 * D + QD * D + 2 * KVD * D + D * QD + 3 * F * D + (p->qkv_bias ? QD + 2 * KVD : 0) +
                             (p->o_bias ? D : 0) + (p->mlp_bias ? 2 * F + D : 0);
    m->n_weight_floats = V * D + L * per_layer + D + (own_head ? V * D : 0) + hd / 2;
    ll_layer scratch_layer;
    float *w = NULL;
    /* Pass 0 checks every tensor's presence, shape and type without storage,
     * so a header alone never decides how much memory we ask for; pass 1
     * allocates and converts. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            m->weights = malloc(m->n_weight_floats * sizeof(float));
            m->layers = calloc(L, sizeof *m->layers);
            if (!m->weights || !m->layers || !m->path) {
                rc = ll_fail(err, LL_ERR_NOMEM, "%s: cannot allocate %.1f MB for weights", path,
                             m->n_weight_floats * 4.0 / 1e6);
                goto done;
            }
            w = m->weights;
        }
#define CARVE(ptr, n) (ptr = w, w = w ? w + (n) : NULL)
        CARVE(m->tok_emb, V * D);
        if ((rc = load_tensor(c, "model.embed_tokens.weight", (int64_t)V, (int64_t)D, m->tok_emb, (int)hd, err))) goto done;
        char name[160];
        for (size_t l = 0; l < L; l++) {
            ll_layer *ly = pass ? &m->layers[l] : &scratch_layer;
            struct {
                float **dst;
                const char *suffix;
                size_t rows, cols;
            } items[] = {
                {&ly->attn_norm, "input_layernorm.weight", 0, D},
                {&ly->wq, "self_attn.q_proj.weight", QD, D},
                {&ly->wk, "self_attn.k_proj.weight", KVD, D},
                {&ly->wv, "self_attn.v_proj.weight", KVD, D},
                {&ly->wo, "self_attn.o_proj.weight", D, QD},
                {&ly->ffn_norm, "post_attention_layernorm.weight", 0, D},
                {&ly->w_gate, "mlp.gate_proj.weight", F, D},
                {&ly->w_up, "mlp.up_proj.weight", F, D},
                {&ly->w_down, "mlp.down_proj.weight", D, F},
                {&ly->bq, "self_attn.q_proj.bias", 0, QD},
                {&ly->bk, "self_attn.k_proj.bias", 0, KVD},
                {&ly->bv, "self_attn.v_proj.bias", 0, KVD},
                {&ly->bo, "self_attn.o_proj.bias", 0, D},
                {&ly->b_gate, "mlp.gate_proj.bias", 0, F},
                {&ly->b_up, "mlp.up_proj.bias", 0, F},
                {&ly->b_down, "mlp.down_proj.bias", 0, D},
            };
            for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
                const int on = i < 9 || (i < 12 ? p->qkv_bias : i < 13 ? p->o_bias : p->mlp_bias);
                if (!on) continue;
                const size_t n = items[i].rows ? items[i].rows * items[i].cols : items[i].cols;
                CARVE(*items[i].dst, n);
                snprintf(name, sizeof name, "model.layers.%zu.%s", l, items[i].suffix);
                if ((rc = load_tensor(c, name, (int64_t)items[i].rows, (int64_t)items[i].cols, *items[i].dst, (int)hd, err)))
                    goto done;
            }
        }
        CARVE(m->final_norm, D);
        if ((rc = load_tensor(c, "model.norm.weight", 0, (int64_t)D, m->final_norm, (int)hd, err))) goto done;
        if (own_head) {
            CARVE(m->lm_head, V * D);
            if ((rc = load_tensor(c, "lm_head.weight", (int64_t)V, (int64_t)D, m->lm_head, (int)hd, err))) goto done;
        } else if (want_head) {
            m->lm_head = m->tok_emb;
        }
        CARVE(m->rope_inv_freq, hd / 2);
#undef CARVE
        /* GGUF Llama 3 files carry their frequency scaling as a tensor. */
        const ll_tensor_info *rf = ll_checkpoint_find(c, "rope_freqs.weight");
        float *divisors = NULL;
        if (rf) {
            divisors = pass ? malloc(hd / 2 * sizeof(float)) : NULL;
            if (pass && !divisors) {
                rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
                goto done;
            }
            if ((rc = load_tensor(c, "rope_freqs.weight", 0, (int64_t)(hd / 2), divisors, (int)hd, err))) {
                free(divisors);
                goto done;
            }
        }
        if (pass == 0) {
            if ((rc = check_all_used(c, p, err))) goto done;
            continue;
        }
        ll_rope_inv_freq(m->rope_inv_freq, p, divisors);
        free(divisors);
    }
done:
    ll_checkpoint_close(c);
    if (rc) {
        ll_model_free(m);
        return rc;
    }
    *out = m;
    return LL_OK;
}
