/* Loading a checkpoint into f32 weights: the architecture row's tensor list
 * (model/arch.h), carved from one allocation by one function (core/carve.h). */
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/carve.h"
#include "core/error.h"
#include "io/dtype.h"
#include "kernels/kernels.h"
#include "model/arch.h"
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

/* 1 if the loader reads tensor `name` (canonical) for this architecture and
 * config, or it is one that transformers itself ignores (the row says which:
 * RoPE tables older transformers saved, recomputed from the config; an LM
 * head, read for generation and ignored when tied, as transformers does);
 * 0 for a tensor the model would drop. A merged classifier's head is read by
 * the classifier (ll_classifier_load_head). */
static int tensor_is_used(const char *name, const ll_arch *a, const ll_config *p) {
    if (!strcmp(name, "score.weight") || !strcmp(name, "score.bias")) return 1;
    ll_role role;
    int layer;
    if (!ll_arch_parse_canonical(name, &role, &layer) || layer >= p->n_layers) return 0;
    const ll_arch_tensor *t = ll_arch_tensor_of(a, role);
    return t && ll_arch_tensor_used(t, p);
}

/* Every tensor of the checkpoint is used or refused by name: a tensor the
 * config does not enable (o_proj.bias without attention_bias) or one no
 * supported architecture has would otherwise be dropped without a word. */
static int check_all_used(const ll_checkpoint *c, const ll_arch *a, const ll_config *p, ll_error *err) {
    const int bias_keys = a->bias == LL_BIAS_CONFIG_KEYS; /* then config.json could have asked for it */
    for (size_t i = 0; i < ll_checkpoint_n_tensors(c); i++) {
        const ll_tensor_info *t = ll_checkpoint_tensor(c, i);
        if (tensor_is_used(t->name, a, p)) continue;
        const char *why = "";
        if (strstr(t->name, "o_proj.bias") && bias_keys)
            why = " (config.json has no \"attention_bias\": true)";
        else if (strstr(t->name, "_proj.bias") && strstr(t->name, ".mlp.") && bias_keys)
            why = " (config.json has no \"mlp_bias\": true)";
        else if (strstr(t->name, "_proj.bias") && bias_keys)
            why = " (config.json has no \"attention_bias\": true)";
        else if (strstr(t->name, "_proj.bias"))
            why = " (transformers' model of this architecture has no such bias)";
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: tensor '%s' is not used by a %s model with this config%s; "
                       "refusing to drop it", t->file, t->stored_name, p->arch, why);
    }
    return LL_OK;
}

/* Where the model keeps a role's weights; NULL for a role read elsewhere
 * (rope_freqs) or never (RoPE buffers). ly: the layer of a per-layer role. */
static float **role_slot(ll_model *m, ll_layer *ly, ll_role role) {
    switch (role) {
    case LL_ROLE_TOKEN_EMBD: return &m->tok_emb;
    case LL_ROLE_OUTPUT_NORM: return &m->final_norm;
    case LL_ROLE_OUTPUT: return &m->lm_head;
    case LL_ROLE_ATTN_NORM: return &ly->attn_norm;
    case LL_ROLE_Q: return &ly->wq;
    case LL_ROLE_K: return &ly->wk;
    case LL_ROLE_V: return &ly->wv;
    case LL_ROLE_O: return &ly->wo;
    case LL_ROLE_FFN_NORM: return &ly->ffn_norm;
    case LL_ROLE_GATE: return &ly->w_gate;
    case LL_ROLE_UP: return &ly->w_up;
    case LL_ROLE_DOWN: return &ly->w_down;
    case LL_ROLE_Q_BIAS: return &ly->bq;
    case LL_ROLE_K_BIAS: return &ly->bk;
    case LL_ROLE_V_BIAS: return &ly->bv;
    case LL_ROLE_O_BIAS: return &ly->bo;
    case LL_ROLE_GATE_BIAS: return &ly->b_gate;
    case LL_ROLE_UP_BIAS: return &ly->b_up;
    case LL_ROLE_DOWN_BIAS: return &ly->b_down;
    default: return NULL;
    }
}

/* What one carving pass over the weights needs besides the carver. */
typedef struct weights_pass {
    ll_model *m;
    const ll_checkpoint *c;
    int want_head; /* keep an output projection (with_lm_head) */
    ll_layer *scratch_layer; /* the counting pass's stand-in for m->layers (not allocated yet) */
} weights_pass;

/* Carve entry t of layer `layer` (-1: global) and load it, or only check it
 * on a counting carver (no storage: dst NULL). */
static int carve_tensor(ll_carver *cv, const weights_pass *wp, const ll_arch_tensor *t, int layer, ll_error *err) {
    ll_model *m = wp->m;
    const ll_config *p = &m->cfg;
    ll_layer *ly = layer < 0 ? NULL : cv->base ? &m->layers[layer] : wp->scratch_layer;
    float **slot = role_slot(m, ly, t->role);
    if (!slot || !ll_arch_tensor_used(t, p) || t->when == LL_WHEN_IGNORED) return LL_OK;
    if (t->role == LL_ROLE_OUTPUT && (!wp->want_head || p->tied_embeddings)) {
        if (wp->want_head) m->lm_head = m->tok_emb; /* tied */
        return LL_OK;
    }
    const size_t rows = ll_dim_size(p, t->rows), cols = ll_dim_size(p, t->cols);
    *slot = ll_carve_f32(cv, rows ? rows * cols : cols);
    char name[160];
    ll_arch_canonical_name(t->role, layer, name, sizeof name);
    return load_tensor(wp->c, name, (int64_t)rows, (int64_t)cols, *slot, p->head_dim, err);
}

/* The one carving function of the weights: every tensor of the row's list in
 * its order (globals before the per-layer run, the per-layer run once per
 * layer, globals after it), then the RoPE frequencies. The counting pass
 * (cv->base NULL) checks every tensor's presence, shape and type without
 * storage, so a header alone never decides how much memory we ask for; the
 * real pass converts. */
static int carve_weights(ll_carver *cv, const weights_pass *wp, ll_error *err) {
    const ll_arch *a = wp->m->arch;
    int rc = LL_OK;
    for (size_t i = 0; i < a->n_tensors && !rc;) {
        if (a->tensors[i].role < LL_ROLE_FIRST_LAYER) {
            rc = carve_tensor(cv, wp, &a->tensors[i++], -1, err);
            continue;
        }
        size_t end = i;
        while (end < a->n_tensors && a->tensors[end].role >= LL_ROLE_FIRST_LAYER) end++;
        for (int l = 0; l < wp->m->cfg.n_layers && !rc; l++)
            for (size_t k = i; k < end && !rc; k++) rc = carve_tensor(cv, wp, &a->tensors[k], l, err);
        i = end;
    }
    wp->m->rope_inv_freq = ll_carve_f32(cv, (size_t)wp->m->cfg.head_dim / 2);
    return rc;
}

/* The RoPE inverse frequencies, with GGUF Llama 3's per-frequency divisors
 * (the rope_freqs tensor) when the file has them; check: only check the
 * tensor. */
static int load_rope(ll_model *m, const ll_checkpoint *c, int check, ll_error *err) {
    const size_t half = (size_t)m->cfg.head_dim / 2;
    char name[64];
    ll_arch_canonical_name(LL_ROLE_ROPE_FREQS, -1, name, sizeof name);
    const ll_arch_tensor *entry = ll_arch_tensor_of(m->arch, LL_ROLE_ROPE_FREQS);
    float *divisors = NULL;
    if (entry && ll_checkpoint_find(c, name)) {
        if (!check && !(divisors = malloc(half * sizeof(float))))
            return ll_fail(err, LL_ERR_NOMEM, "out of memory");
        int rc = load_tensor(c, name, 0, (int64_t)half, divisors, m->cfg.head_dim, err);
        if (rc) {
            free(divisors);
            return rc;
        }
    }
    if (!check) ll_rope_inv_freq(m->rope_inv_freq, &m->cfg, divisors);
    free(divisors);
    return LL_OK;
}

int ll_model_load(ll_model **out, const char *path, const ll_load_options *opt, ll_error *err) {
    return ll_model_load_archs(out, path, opt, NULL, err);
}

int ll_model_load_archs(ll_model **out, const char *path, const ll_load_options *opt,
                        const ll_arch *const *extra_archs, ll_error *err) {
    *out = NULL;
    ll_checkpoint *c;
    int rc = ll_checkpoint_open_archs(&c, path, extra_archs, err);
    if (rc) return rc;
    ll_model *m = calloc(1, sizeof *m);
    if (!m) {
        ll_checkpoint_close(c);
        return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    }
    m->cfg = *ll_checkpoint_config(c);
    m->arch = ll_checkpoint_arch(c);
    snprintf(m->format, sizeof m->format, "%s", ll_checkpoint_format(c));
    m->path = strdup(path);
    ll_layer scratch_layer;
    const weights_pass wp = {m, c, opt && opt->with_lm_head, &scratch_layer};
    ll_carver count = {0};
    if ((rc = carve_weights(&count, &wp, err)) || (rc = load_rope(m, c, 1, err)) ||
        (rc = check_all_used(c, m->arch, &m->cfg, err)))
        goto done;
    m->n_weight_floats = count.used / sizeof(float);
    m->weights = malloc(count.used);
    m->layers = calloc((size_t)m->cfg.n_layers, sizeof *m->layers);
    if (!m->weights || !m->layers || !m->path) {
        rc = ll_fail(err, LL_ERR_NOMEM, "%s: cannot allocate %.1f MB for weights", path, count.used / 1e6);
        goto done;
    }
    ll_carver real = {.base = (char *)m->weights};
    if (!(rc = carve_weights(&real, &wp, err))) rc = load_rope(m, c, 0, err);
done:
    ll_checkpoint_close(c);
    if (rc) {
        ll_model_free(m);
        return rc;
    }
    *out = m;
    return LL_OK;
}
