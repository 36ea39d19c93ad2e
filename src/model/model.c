/* Loading a checkpoint: the architecture row's tensor list (model/arch.h),
 * carved by one function (core/carve.h). Matrices stay in the precision
 * asked for (ll_base_precision), pointing into the checkpoint's file mapping
 * when they need no change; vectors and the matrices that do (reordered q/k
 * rows, conversions) are carved from one owned allocation. */
#include "model/model.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/carve.h"
#include "core/error.h"
#include "io/dtype.h"
#include "io/quants.h"
#include "kernels/kernels.h"
#include "model/arch.h"
#include "model/checkpoint.h"
#include "model/rope_freq.h"

const ll_config *ll_model_config(const ll_model *m) { return &m->cfg; }

int ll_model_post_norms(const ll_model *m) { return ll_arch_tensor_of(m->arch, LL_ROLE_ATTN_POST_NORM) != NULL; }
int ll_model_qk_norms(const ll_model *m) { return ll_arch_tensor_of(m->arch, LL_ROLE_Q_NORM) != NULL; }
const char *ll_model_format(const ll_model *m) { return m->format; }

void ll_model_free(ll_model *m) {
    if (!m) return;
    ll_workspace_free(&m->ws);
    free(m->owned);
    free(m->entries);
    free(m->layers);
    ll_checkpoint_close(m->ckpt);
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

/* Where the model keeps a role's vector (float **) or matrix (ll_matrix *);
 * both NULL for a role read elsewhere (rope_freqs) or never (RoPE buffers).
 * ly: the layer of a per-layer role. */
static void role_slot(ll_model *m, ll_layer *ly, ll_role role, float ***vec, ll_matrix **mat) {
    *vec = NULL, *mat = NULL;
    switch (role) {
    case LL_ROLE_TOKEN_EMBD: *mat = &m->tok_emb; break;
    case LL_ROLE_OUTPUT_NORM: *vec = &m->final_norm; break;
    case LL_ROLE_OUTPUT: *mat = &m->lm_head; break;
    case LL_ROLE_ATTN_NORM: *vec = &ly->attn_norm; break;
    case LL_ROLE_Q: *mat = &ly->wq; break;
    case LL_ROLE_K: *mat = &ly->wk; break;
    case LL_ROLE_V: *mat = &ly->wv; break;
    case LL_ROLE_O: *mat = &ly->wo; break;
    case LL_ROLE_FFN_NORM: *vec = &ly->ffn_norm; break;
    case LL_ROLE_GATE: *mat = &ly->w_gate; break;
    case LL_ROLE_UP: *mat = &ly->w_up; break;
    case LL_ROLE_DOWN: *mat = &ly->w_down; break;
    case LL_ROLE_Q_BIAS: *vec = &ly->bq; break;
    case LL_ROLE_K_BIAS: *vec = &ly->bk; break;
    case LL_ROLE_V_BIAS: *vec = &ly->bv; break;
    case LL_ROLE_O_BIAS: *vec = &ly->bo; break;
    case LL_ROLE_GATE_BIAS: *vec = &ly->b_gate; break;
    case LL_ROLE_UP_BIAS: *vec = &ly->b_up; break;
    case LL_ROLE_DOWN_BIAS: *vec = &ly->b_down; break;
    case LL_ROLE_Q_NORM: *vec = &ly->q_norm; break;
    case LL_ROLE_K_NORM: *vec = &ly->k_norm; break;
    case LL_ROLE_ATTN_POST_NORM: *vec = &ly->attn_post_norm; break;
    case LL_ROLE_FFN_POST_NORM: *vec = &ly->ffn_post_norm; break;
    default: break;
    }
}

ll_matrix *ll_layer_matrix(ll_layer *ly, int role) {
    float **vec;
    ll_matrix *mat;
    if (role < LL_ROLE_FIRST_LAYER) return NULL;
    role_slot(NULL, ly, (ll_role)role, &vec, &mat);
    return mat;
}

/* What one carving pass over the weights needs besides the carver. */
typedef struct weights_pass {
    ll_model *m;
    const ll_checkpoint *c;
    int want_head; /* keep an output projection (with_lm_head) */
    ll_layer *scratch_layer; /* the counting pass's stand-in for m->layers (not allocated yet) */
    size_t n_entries;        /* entries recorded (counted on the counting pass) */
} weights_pass;

static void add_entry(weights_pass *wp, ll_carver *cv, const float *vec, const ll_matrix *mat, size_t n) {
    if (cv->base) wp->m->entries[wp->n_entries] = (ll_model_entry){vec, mat, n};
    wp->n_entries++;
}

/* The type a matrix stored as `stored` is kept in under precision p (cols: its row length). */
static ll_dtype resident_type(ll_base_precision p, ll_dtype stored, size_t cols) {
    switch (p) {
    case LL_BASE_F32: return LL_DTYPE_F32;
    case LL_BASE_BF16: return ll_dtype_is_plain_float(stored) ? LL_DTYPE_BF16 : stored;
    case LL_BASE_Q8_0: return ll_dtype_is_plain_float(stored) && cols % 32 == 0 ? LL_DTYPE_Q8_0 : stored;
    default: return stored;
    }
}

/* Fills dst (rows x cols in type `to`) from the stored tensor t, in HF row
 * order (interleaved q/k rows reordered), converting when `to` differs. */
static int fill_matrix(void *dst, ll_dtype to, const ll_tensor_info *t, size_t rows, size_t cols, int head_dim) {
    const ll_matrix src = {t->dtype, t->data, rows, cols, cols / (size_t)ll_dtype_block_elems(t->dtype), LL_DTYPE_F32};
    const size_t src_row = src.ld_blocks * ll_dtype_block_bytes(t->dtype);
    const size_t dst_row = cols / (size_t)ll_dtype_block_elems(to) * ll_dtype_block_bytes(to);
    const size_t hd = (size_t)head_dim, half = hd / 2;
    int ok = 1;
#pragma omp parallel
    {
        float *buf = to == t->dtype ? NULL : malloc(cols * sizeof(float));
        if (to != t->dtype && !buf) {
#pragma omp atomic write
            ok = 0;
        }
#pragma omp for schedule(static)
        for (size_t r = 0; r < rows; r++) {
            /* GGUF/llama2.c order rows of each head as interleaved pairs for
             * RoPE; HF as two halves: HF row h*hd + j*half + i is stored row h*hd + 2i + j */
            size_t from = r;
            if (t->rope_interleaved) {
                const size_t h = r / hd, w = r % hd, j = w / half, i = w % half;
                from = h * hd + 2 * i + j;
            }
            char *out = (char *)dst + r * dst_row;
            if (to == t->dtype) {
                memcpy(out, (const char *)t->data + from * src_row, src_row);
                continue;
            }
            if (!buf) continue;
            ll_matrix_row_f32(&src, from, to == LL_DTYPE_F32 ? (float *)out : buf);
            if (to == LL_DTYPE_BF16)
                for (size_t c = 0; c < cols; c++) ((uint16_t *)out)[c] = ll_fp32_to_bf16(buf[c]);
            else if (to == LL_DTYPE_Q8_0)
                ll_quantize_row_q8_0(buf, out, cols);
        }
        free(buf);
    }
    return ok;
}

/* The file pages of a tensor that was copied (reordered or converted) are
 * not read again: ask the kernel to drop them from this process's resident
 * set, or a 7B model would count its q/k matrices twice. MADV_PAGEOUT never
 * loses data (file pages are read back if touched; anonymous memory without
 * swap stays), unlike MADV_DONTNEED on memory that is not a file mapping. */
static void release_pages(const void *p, size_t n) {
#ifdef MADV_PAGEOUT
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = ((uintptr_t)p + page - 1) / page * page, hi = ((uintptr_t)p + n) / page * page;
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_PAGEOUT);
#else
    (void)p, (void)n;
#endif
}

/* The first row of w holding a NaN or infinity (its element in *col, value in
 * *val), or w->rows when every value is finite; SIZE_MAX when out of memory.
 * Corrupt weights would turn every result into NaN with exit 0: checked once,
 * at load, on the values the products will see. */
static size_t first_nonfinite_row(const ll_matrix *w, size_t *col, float *val) {
    size_t bad = w->rows;
    int nomem = 0;
#pragma omp parallel
    {
        float *buf = malloc(w->cols * sizeof(float));
        if (!buf) {
#pragma omp atomic write
            nomem = 1;
        }
#pragma omp for schedule(static) reduction(min : bad)
        for (size_t r = 0; r < w->rows; r++) {
            if (!buf) continue;
            ll_matrix_row_f32(w, r, buf);
            if (ll_first_nonfinite(buf, w->cols) < w->cols && r < bad) bad = r;
        }
        free(buf);
    }
    if (nomem) return SIZE_MAX;
    if (bad < w->rows) {
        float *buf = malloc(w->cols * sizeof(float));
        if (!buf) return SIZE_MAX;
        ll_matrix_row_f32(w, bad, buf);
        *col = ll_first_nonfinite(buf, w->cols);
        *val = buf[*col];
        free(buf);
    }
    return bad;
}

/* The matrix `name` ([rows, cols]) into *mat: pointing into the checkpoint's
 * mapping when it is kept as stored in HF row order, else carved from the
 * owned block and filled (reordered, converted). Counting carver: checks only. */
static int carve_matrix(ll_carver *cv, weights_pass *wp, const char *name, size_t rows, size_t cols,
                        ll_matrix *mat, ll_error *err) {
    ll_model *m = wp->m;
    int rc = load_tensor(wp->c, name, (int64_t)rows, (int64_t)cols, NULL, m->cfg.head_dim, err);
    if (rc) return rc;
    const ll_tensor_info *t = ll_checkpoint_find(wp->c, name);
    const size_t be = (size_t)ll_dtype_block_elems(t->dtype);
    if (cols % be)
        return ll_fail(err, LL_ERR_SHAPE, "%s: tensor '%s' has rows of %zu values, not whole %s blocks of %zu", t->file,
                       t->stored_name, cols, t->dtype_name, be);
    const ll_dtype to = resident_type(m->precision, t->dtype, cols);
    const size_t row_bytes = cols / (size_t)ll_dtype_block_elems(to) * ll_dtype_block_bytes(to);
    /* the mapping is used as is when nothing changes and it is aligned for the type's loads (f32
     * values: 4 bytes; f16/bf16 values and the quant blocks' f16 fields: 2) */
    const size_t align = to == LL_DTYPE_F32 ? 4 : 2;
    const int mapped = to == t->dtype && !t->rope_interleaved && (uintptr_t)t->data % align == 0 && row_bytes % align == 0;
    void *own = mapped ? NULL : ll_carve(cv, (rows * row_bytes + 15) / 16, 16);
    add_entry(wp, cv, NULL, mat, rows * cols);
    if (!cv->base) { /* the plan: what the real pass will hold, per type */
        m->resident[to] += rows * row_bytes;
        if (mapped) m->mapped[to] += rows * row_bytes;
        return LL_OK;
    }
    *mat = (ll_matrix){to, mapped ? t->data : own, rows, cols, cols / (size_t)ll_dtype_block_elems(to),
                       m->compute == LL_COMPUTE_BF16 ? LL_DTYPE_BF16 : LL_DTYPE_F32};
    size_t col = 0;
    float val = 0.0f;
    if (to == LL_DTYPE_Q8_0 && to != t->dtype) {
        /* Q8_0's block maximum passes over a NaN (as llama.cpp's does), and
         * the quantizer would turn it into an ordinary value (by a NaN to
         * int8 conversion C leaves undefined): check the source first. */
        const ll_matrix src = {t->dtype, t->data, rows, cols, cols / be, LL_DTYPE_F32};
        const size_t bad = first_nonfinite_row(&src, &col, &val);
        if (bad == SIZE_MAX) return ll_fail(err, LL_ERR_NOMEM, "out of memory checking '%s'", t->stored_name);
        if (bad < rows)
            return ll_fail(err, LL_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value (%g) at element %zu (row %zu): "
                           "the checkpoint is corrupt", t->file, t->stored_name, val, bad * cols + col, bad);
    }
    if (!mapped && !fill_matrix(own, to, t, rows, cols, m->cfg.head_dim))
        return ll_fail(err, LL_ERR_NOMEM, "out of memory converting '%s'", t->stored_name);
    if (!mapped) release_pages(t->data, (size_t)t->nbytes);
    size_t bad = first_nonfinite_row(mat, &col, &val);
    if (bad == SIZE_MAX) return ll_fail(err, LL_ERR_NOMEM, "out of memory checking '%s'", t->stored_name);
    if (bad < rows) {
        if (t->rope_interleaved) { /* the row as the file stores it (see fill_matrix) */
            const size_t hd = (size_t)m->cfg.head_dim, half = hd / 2, w = bad % hd;
            bad = bad / hd * hd + 2 * (w % half) + w / half;
        }
        return ll_fail(err, LL_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value (%g) at element %zu (row %zu)%s: "
                       "the checkpoint is corrupt", t->file, t->stored_name, val, bad * cols + col, bad,
                       to != t->dtype ? " after conversion" : "");
    }
    return LL_OK;
}

static int is_norm_role(ll_role r) {
    return r == LL_ROLE_OUTPUT_NORM || r == LL_ROLE_ATTN_NORM || r == LL_ROLE_FFN_NORM || r == LL_ROLE_Q_NORM ||
           r == LL_ROLE_K_NORM || r == LL_ROLE_ATTN_POST_NORM || r == LL_ROLE_FFN_POST_NORM;
}

/* Carve entry t of layer `layer` (-1: global) and load it, or only check it
 * on a counting carver (no storage). */
static int carve_tensor(ll_carver *cv, weights_pass *wp, const ll_arch_tensor *t, int layer, ll_error *err) {
    ll_model *m = wp->m;
    const ll_config *p = &m->cfg;
    ll_layer *ly = layer < 0 ? NULL : cv->base ? &m->layers[layer] : wp->scratch_layer;
    float **vec;
    ll_matrix *mat;
    role_slot(m, ly, t->role, &vec, &mat);
    if ((!vec && !mat) || !ll_arch_tensor_used(t, p) || t->when == LL_WHEN_IGNORED) return LL_OK;
    if (t->role == LL_ROLE_OUTPUT && (!wp->want_head || p->tied_embeddings)) {
        if (wp->want_head && cv->base) m->lm_head = m->tok_emb; /* tied */
        return LL_OK;
    }
    const size_t rows = ll_dim_size(p, t->rows), cols = ll_dim_size(p, t->cols);
    char name[160];
    ll_arch_canonical_name(t->role, layer, name, sizeof name);
    if (mat) return carve_matrix(cv, wp, name, rows, cols, mat, err);
    const size_t n = rows ? rows * cols : cols;
    *vec = ll_carve_f32(cv, n);
    add_entry(wp, cv, *vec, NULL, n);
    int rc = load_tensor(wp->c, name, (int64_t)rows, (int64_t)cols, *vec, p->head_dim, err);
    /* Gemma's RMSNorm multiplies by (1 + w): the model keeps the multiplier, which GGUF files store already */
    if (!rc && cv->base && is_norm_role(t->role) && m->arch->hf_norm_offset != 0.0f && strcmp(m->format, "gguf"))
        for (size_t i = 0; i < n; i++) (*vec)[i] = m->arch->hf_norm_offset + (*vec)[i];
    return rc;
}

/* The one carving function of the weights: every tensor of the row's list in
 * its order (globals before the per-layer run, the per-layer run once per
 * layer, globals after it), then the RoPE frequencies. The counting pass
 * (cv->base NULL) checks every tensor's presence, shape and type without
 * storage, so a header alone never decides how much memory we ask for; the
 * real pass loads. */
static int carve_weights(ll_carver *cv, weights_pass *wp, ll_error *err) {
    const ll_arch *a = wp->m->arch;
    int rc = LL_OK;
    wp->n_entries = 0;
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
    const size_t half = (size_t)wp->m->cfg.head_dim / 2;
    wp->m->rope_inv_freq = ll_carve_f32(cv, half);
    add_entry(wp, cv, wp->m->rope_inv_freq, NULL, half);
    if (wp->m->cfg.rope_local_theta > 0) {
        wp->m->rope_inv_freq_local = ll_carve_f32(cv, half);
        add_entry(wp, cv, wp->m->rope_inv_freq_local, NULL, half);
    }
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
    if (!check && m->rope_inv_freq_local) {
        /* the sliding layers: their own base, no scaling (Gemma 3's rope_parameters.sliding_attention) */
        ll_config local = m->cfg;
        local.rope_theta = m->cfg.rope_local_theta;
        local.rope_scaling = LL_ROPE_NONE;
        ll_rope_inv_freq(m->rope_inv_freq_local, &local, NULL);
    }
    free(divisors);
    return LL_OK;
}

int ll_model_load(ll_model **out, const char *path, const ll_load_options *opt, ll_error *err) {
    return ll_model_load_archs(out, path, opt, NULL, err);
}

/* Loads, or with plan_only checks every tensor and sizes the memory without
 * reading the weights (the counting pass alone). */
static int load_model(ll_model **out, const char *path, const ll_load_options *opt, const ll_arch *const *extra_archs,
                      int plan_only, ll_error *err) {
    *out = NULL;
    const ll_base_precision precision = opt ? opt->base_precision : LL_BASE_STORED;
    if (!ll_base_precision_name(precision))
        return ll_fail(err, LL_ERR_ARG, "base precision %d is not one of stored, bf16, q8_0, f32", (int)precision);
    const ll_compute compute = opt ? opt->compute : LL_COMPUTE_F32;
    int rc = ll_compute_check(compute, err);
    if (rc) return rc;
    ll_checkpoint *c;
    if ((rc = ll_checkpoint_open_archs(&c, path, extra_archs, err))) return rc;
    ll_model *m = calloc(1, sizeof *m);
    if (!m) {
        ll_checkpoint_close(c);
        return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    }
    m->ckpt = c;
    m->precision = precision;
    m->compute = compute;
    m->cfg = *ll_checkpoint_config(c);
    m->arch = ll_checkpoint_arch(c);
    /* Gemma3TextScaledWordEmbedding: sqrt(hidden_size) as a float tensor, cast to the weights' type (f32 here) */
    m->embed_scale = m->arch->embed_scale_sqrt_dim ? (float)sqrt((double)m->cfg.dim) : 1.0f;
    snprintf(m->format, sizeof m->format, "%s", ll_checkpoint_format(c));
    m->path = strdup(path);
    ll_layer scratch_layer;
    weights_pass wp = {m, c, opt && opt->with_lm_head, &scratch_layer, 0};
    ll_carver count = {0};
    if ((rc = carve_weights(&count, &wp, err)) || (rc = load_rope(m, c, 1, err)) ||
        (rc = check_all_used(c, m->arch, &m->cfg, err)))
        goto done;
    m->owned_bytes = count.used;
    if (plan_only) goto done;
    m->owned = malloc(count.used ? count.used : 1);
    m->layers = calloc((size_t)m->cfg.n_layers, sizeof *m->layers);
    m->entries = calloc(wp.n_entries, sizeof *m->entries);
    if (!m->owned || !m->layers || !m->path || !m->entries) {
        rc = ll_fail(err, LL_ERR_NOMEM, "%s: cannot allocate %.1f MB for weights", path, count.used / 1e6);
        goto done;
    }
    ll_carver real = {.base = (char *)m->owned};
    if (!(rc = carve_weights(&real, &wp, err))) rc = load_rope(m, c, 0, err);
    m->n_entries = wp.n_entries;
done:
    if (rc) {
        ll_model_free(m);
        return rc;
    }
    *out = m;
    return LL_OK;
}

int ll_model_load_archs(ll_model **out, const char *path, const ll_load_options *opt,
                        const ll_arch *const *extra_archs, ll_error *err) {
    return load_model(out, path, opt, extra_archs, 0, err);
}

int ll_model_plan(ll_model **out, const char *path, const ll_load_options *opt, ll_error *err) {
    return load_model(out, path, opt, NULL, 1, err);
}

ll_base_precision ll_model_base_precision(const ll_model *m) { return m->precision; }
ll_compute ll_model_compute(const ll_model *m) { return m->compute; }

int ll_model_resident(const ll_model *m, const char **names, size_t *bytes, size_t *mapped, int n) {
    int k = 0;
    for (int t = 0; t < LL_DTYPE_COUNT && k < n; t++) {
        if (!m->resident[t]) continue;
        names[k] = ll_dtype_name((ll_dtype)t);
        bytes[k] = m->resident[t];
        if (mapped) mapped[k] = m->mapped[t];
        k++;
    }
    return k;
}

/* The index of name in names[n], or -1 (name may be NULL). */
static int name_index(const char *const *names, int n, const char *name) {
    for (int i = 0; name && i < n; i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

static const char *const precision_names[] = {"stored", "bf16", "q8_0", "f32"};
enum { N_PRECISIONS = sizeof precision_names / sizeof *precision_names };

int ll_base_precision_parse(const char *name, ll_base_precision *out) {
    const int i = name_index(precision_names, N_PRECISIONS, name);
    if (i < 0) return LL_ERR_ARG;
    *out = (ll_base_precision)i;
    return LL_OK;
}

const char *ll_base_precision_name(ll_base_precision p) {
    return (int)p >= 0 && (int)p < N_PRECISIONS ? precision_names[p] : NULL;
}

static const char *const compute_names[] = {"f32", "bf16"};
enum { N_COMPUTES = sizeof compute_names / sizeof *compute_names };

int ll_compute_parse(const char *name, ll_compute *out) {
    const int i = name_index(compute_names, N_COMPUTES, name);
    if (i < 0) return LL_ERR_ARG;
    *out = (ll_compute)i;
    return LL_OK;
}

const char *ll_compute_name(ll_compute c) { return (int)c >= 0 && (int)c < N_COMPUTES ? compute_names[c] : NULL; }

int ll_compute_check(ll_compute c, ll_error *err) {
    if (!ll_compute_name(c)) return ll_fail(err, LL_ERR_ARG, "compute %d is not one of f32, bf16", (int)c);
    if (c == LL_COMPUTE_BF16 && !ll_gemm_bf16_supported())
        return ll_fail(err, LL_ERR_UNSUPPORTED, "bf16 products (--compute bf16) need a CPU with AVX512-BF16 "
                       "(vdpbf16ps) or AMX-BF16; this CPU (%s) has neither: use --compute f32", ll_cpu_name());
    return LL_OK;
}

const char *ll_compute_kernel(ll_compute c) {
    return c == LL_COMPUTE_BF16 ? ll_gemm_bf16_backend() : c == LL_COMPUTE_F32 ? ll_gemm_weights_backend() : "none";
}

void ll_model_visit_samples(const ll_model *m, size_t every, void (*fn)(void *ctx, float v), void *ctx) {
    size_t base = 0; /* offset of the entry in the layout */
    float *row = NULL;
    size_t row_at = SIZE_MAX; /* the matrix row in `row` */
    const ll_matrix *row_of = NULL;
    for (size_t e = 0; e < m->n_entries; e++) {
        const ll_model_entry *en = &m->entries[e];
        for (size_t i = (every - base % every) % every; i < en->n; i += every) {
            if (en->vec) {
                fn(ctx, en->vec[i]);
                continue;
            }
            const ll_matrix *w = en->mat;
            const size_t r = i / w->cols;
            if (row_of != w || row_at != r) {
                float *nr = realloc(row, w->cols * sizeof(float));
                if (!nr) break; /* out of memory: fewer samples, a fingerprint that will not match */
                row = nr, row_of = w, row_at = r;
                ll_matrix_row_f32(w, r, row);
            }
            fn(ctx, row[i % w->cols]);
        }
        base += en->n;
    }
    free(row);
}
