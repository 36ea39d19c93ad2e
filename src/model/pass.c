/* The transformer stack, forward (inference or training) and backward. */
#include "model/pass.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/carve.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/kernels.h"
#include "model/arch.h"
#include "model/model.h"

/* ---- LoRA pieces ---------------------------------------------------------- */

/* The dropout mask of one module's input in one layer: a function of (step
 * seed, layer, module, element) only; element i draws
 * ll_splitmix64_hash(key + i) with key = hash(seed ^ hash(layer, module)). */
static ll_dropout lora_mask(const ll_lora_pass *lp, int layer, int target) {
    const uint64_t module_key = ll_splitmix64_hash((uint64_t)(layer * LL_LORA_N_TARGETS + target + 1));
    const uint64_t key = ll_splitmix64_hash(lp->seed ^ module_key);
    return ll_dropout_make(lp->lora->dropout, key + LL_SPLITMIX64_GAMMA, 1);
}

static int lora_dropout_on(const ll_lora_pass *lp) { return lp->training && lp->lora->dropout > 0.0f; }

/* Rows of a pass: the batch's T rows (ends == NULL), or the last row of each
 * sequence alone, compacted: row r stands for batch row ends[r] - 1 (ends =
 * seq_start + 1). */
static size_t batch_row(const int32_t *ends, size_t r) { return ends ? (size_t)ends[r] - 1 : r; }

/* The mask of a module's input x[T, in] at row r of x: element c of the row
 * is element batch_row(r) * in + c of the batch's mask, so a compacted row
 * draws its own batch row's mask. */
static ll_dropout row_mask(ll_dropout mask, const int32_t *ends, size_t r, size_t in) {
    mask.origin += (uint64_t)(batch_row(ends, r) * in) * mask.stride;
    return mask;
}

/* xd[T, in] = dropout(x) with PEFT semantics (kept values scaled by 1/(1-p)),
 * or x itself when no dropout applies. */
static const float *lora_dropout(const ll_lora_pass *lp, int layer, int target, const float *x, size_t T, size_t in,
                                 const int32_t *ends, float *xd) {
    if (!lora_dropout_on(lp)) return x;
    const ll_dropout mask = lora_mask(lp, layer, target);
    if (!ends) {
        ll_dropout_forward(&mask, xd, x, T * in);
        return xd;
    }
    for (size_t r = 0; r < T; r++) {
        const ll_dropout m = row_mask(mask, ends, r, in);
        ll_dropout_forward(&m, xd + r * in, x + r * in, in);
    }
    return xd;
}

/* C[M, N] += alpha A^T B for A [T, M], B [T, N] (a LoRA factor's gradient, a
 * sum over rows). With compacted rows (ends), summed as the product over the
 * batch's rows sums it with zeros on the others (zeros change no sum): the
 * rows of one K slice of ll_gemm (ll_gemm_k_slice) in one product each. */
static void gemm_tn_rows(size_t M, size_t N, size_t T, float alpha, const float *A, size_t lda, const float *B,
                         size_t ldb, float *C, size_t ldc, const int32_t *ends) {
    if (!ends) {
        ll_gemm(1, 0, M, N, T, alpha, A, lda, B, ldb, 1.0f, C, ldc);
        return;
    }
    const size_t slice = ll_gemm_k_slice();
    for (size_t r0 = 0, r1; r0 < T; r0 = r1) {
        for (r1 = r0 + 1; r1 < T && batch_row(ends, r1) / slice == batch_row(ends, r0) / slice; r1++) continue;
        ll_gemm(1, 0, M, N, r1 - r0, alpha, A + r0 * lda, lda, B + r0 * ldb, ldb, 1.0f, C, ldc);
    }
}

static const ll_lora_module *lora_module(const ll_lora_pass *lp, int layer, int target) {
    if (!lp || !lp->lora || !(lp->lora->targets & (1u << target))) return NULL;
    const ll_lora_module *md = ll_lora_at(lp->lora, layer, target);
    return md->A ? md : NULL;
}

/* y[T,out] += scale * dropout(x) A^T B^T: the LoRA path of one module (if any). */
static void lora_fwd(float *y, const float *x, size_t T, size_t in, size_t out, const ll_lora_pass *lp, int layer,
                     int target, const int32_t *ends, float *xd_buf, float *xa_buf) {
    const ll_lora_module *md = lora_module(lp, layer, target);
    if (!md) return;
    const size_t r = (size_t)lp->lora->r;
    const float *xd = lora_dropout(lp, layer, target, x, T, in, ends, xd_buf);
    ll_gemm(0, 1, T, r, in, 1.0f, xd, in, md->A, in, 0.0f, xa_buf, r);
    ll_gemm(0, 1, T, out, r, lp->lora->scale, xa_buf, r, md->B, r, 1.0f, y, out);
}

/* y[T,out] (+)= x W^T + b + scale * dropout(x) A^T B^T */
static void linear_fwd(float *y, const float *x, const ll_matrix *W, const float *bias, size_t T, size_t in, size_t out,
                       int accumulate, const ll_lora_pass *lp, int layer, int target, const int32_t *ends,
                       float *xd_buf, float *xa_buf) {
    ll_linear_forward(y, x, W, bias, T, in, out, accumulate);
    lora_fwd(y, x, T, in, out, lp, layer, target, ends, xd_buf, xa_buf);
}

/* One of several linear layers that read the same input (q, k, v; gate, up). */
typedef struct linear_out {
    float *y;
    const ll_matrix *W;
    const float *bias;
    size_t out;
    int target;
} linear_out;

/* linear_fwd (accumulate 0) of each o[s], s < n, on one x: the base
 * products as one fused product (ll_gemm_weights_fused: the same bits as
 * separate ones), then each one's bias and LoRA path. */
static void linear_fwd_fused(const linear_out *o, size_t n, const float *x, size_t T, size_t in,
                             const ll_lora_pass *lp, int layer, const int32_t *ends, float *xd_buf,
                             float *xa_buf) {
    const ll_matrix *W[LL_FUSED_MAX];
    float *C[LL_FUSED_MAX];
    size_t ldc[LL_FUSED_MAX];
    for (size_t s = 0; s < n; s++) W[s] = o[s].W, C[s] = o[s].y, ldc[s] = o[s].out;
    ll_gemm_weights_fused(0, T, in, 1.0f, x, in, W, n, 0.0f, C, ldc);
    for (size_t s = 0; s < n; s++) {
        if (o[s].bias) ll_add_bias(o[s].y, o[s].bias, T, o[s].out);
        lora_fwd(o[s].y, x, T, in, o[s].out, lp, layer, o[s].target, ends, xd_buf, xa_buf);
    }
}

/* q, k, v of one layer from the normed input xn (fused). */
static void qkv_fwd(const ll_layer *ly, float *q, float *k, float *v, const float *xn, size_t T, size_t D, size_t QD,
                    size_t KVD, const ll_lora_pass *lp, int l, float *xd_buf, float *xa_buf) {
    const linear_out o[3] = {{q, &ly->wq, ly->bq, QD, LL_LORA_Q},
                             {k, &ly->wk, ly->bk, KVD, LL_LORA_K},
                             {v, &ly->wv, ly->bv, KVD, LL_LORA_V}};
    linear_fwd_fused(o, 3, xn, T, D, lp, l, NULL, xd_buf, xa_buf);
}

/* The FFN's gate and up pre-activations from the normed input xn (fused). */
static void gate_up_fwd(const ll_layer *ly, float *g, float *u, const float *xn, size_t T, size_t D, size_t F,
                        const ll_lora_pass *lp, int l, const int32_t *ends, float *xd_buf, float *xa_buf) {
    const linear_out o[2] = {{g, &ly->w_gate, ly->b_gate, F, LL_LORA_GATE}, {u, &ly->w_up, ly->b_up, F, LL_LORA_UP}};
    linear_fwd_fused(o, 2, xn, T, D, lp, l, ends, xd_buf, xa_buf);
}

/* dx[T,in] = dy W, or += with accumulate (+ LoRA path); LoRA gradients
 * added into dA, dB; a trained W's gradient (full fine-tuning) into its dW. */
static void linear_bwd(float *dx, int accumulate, const float *dy, const float *x, const ll_matrix *W, size_t T,
                       size_t in, size_t out, const ll_lora_pass *lp, int layer, int target, const int32_t *ends,
                       ll_acts *a) {
    ll_linear_backward_input(dx, dy, W, T, in, out, accumulate);
    float *dW = lp && lp->full && lp->full->weights ? lp->full->weights[(size_t)layer * LL_LORA_N_TARGETS + target]
                                                     : NULL;
    if (dW) gemm_tn_rows(out, in, T, 1.0f, dy, out, x, in, dW, in, ends); /* dW += dy^T x */
    const ll_lora_module *md = lora_module(lp, layer, target);
    if (!md) return;
    const size_t r = (size_t)lp->lora->r;
    const float s = lp->lora->scale;
    const float *xd = lora_dropout(lp, layer, target, x, T, in, ends, a->lora_xd);
    ll_gemm(0, 1, T, r, in, 1.0f, xd, in, md->A, in, 0.0f, a->lora_xa, r); /* xa = xd A^T */
    gemm_tn_rows(out, r, T, s, dy, out, a->lora_xa, r, md->dB, r, ends);  /* dB += s dy^T xa */
    ll_gemm(0, 0, T, r, out, s, dy, out, md->B, r, 0.0f, a->lora_dxa, r);  /* dxa = s dy B */
    gemm_tn_rows(r, in, T, 1.0f, a->lora_dxa, r, xd, in, md->dA, in, ends); /* dA += dxa^T xd */
    if (xd == x) {
        ll_gemm(0, 0, T, in, r, 1.0f, a->lora_dxa, r, md->A, in, 1.0f, dx, in); /* dx += dxa A */
        return;
    }
    /* through dropout: the gradient flows where the mask kept x */
    ll_gemm(0, 0, T, in, r, 1.0f, a->lora_dxa, r, md->A, in, 0.0f, a->lora_tmp, in);
    const ll_dropout mask = lora_mask(lp, layer, target);
    if (!ends) {
        ll_dropout_backward(&mask, dx, a->lora_tmp, x, xd, T * in, 1);
        return;
    }
    for (size_t t = 0; t < T; t++) {
        const ll_dropout m = row_mask(mask, ends, t, in);
        ll_dropout_backward(&m, dx + t * in, a->lora_tmp + t * in, x + t * in, xd + t * in, in, 1);
    }
}

/* ---- memory planning ------------------------------------------------------ */

/* The sizes one ll_acts is carved for (in elements). */
typedef struct acts_dims {
    size_t L, T, D, QD, KVD, F, half, in_max, r; /* T = cap_tokens, half = hd / 2 */
    size_t S;                                    /* layers of q .. x_mid kept: L, or 1 with recompute */
    size_t ffn_T;                                /* tokens of stored FFN pre-activations: T or 0 */
    size_t scratch;                              /* attention scratch floats */
    int qk_norms, post_norms, local_rope;        /* Gemma 3's extra state */
} acts_dims;

/* Every buffer of ll_acts, in this order (the layout results were made with). */
static void carve_acts(ll_carver *cv, void *fields, const void *ctx) {
    ll_acts *a = fields;
    const acts_dims *d = ctx;
    const size_t L = d->L, S = d->S, T = d->T, D = d->D, QD = d->QD, KVD = d->KVD, F = d->F;
    a->x_in = ll_carve_f32(cv, L * T * D);
    a->q = ll_carve_f32(cv, S * T * QD);
    a->k = ll_carve_f32(cv, S * T * KVD);
    a->v = ll_carve_f32(cv, S * T * KVD);
    a->att = ll_carve_f32(cv, S * T * QD);
    a->x_mid = ll_carve_f32(cv, S * T * D);
    a->x_final = ll_carve_f32(cv, T * D);
    a->ffn_g = ll_carve_f32(cv, L * d->ffn_T * F);
    a->ffn_u = ll_carve_f32(cv, L * d->ffn_T * F);
    a->dx = ll_carve_f32(cv, T * D);
    a->dxn = ll_carve_f32(cv, T * D);
    a->dq = ll_carve_f32(cv, T * QD);
    a->dk = ll_carve_f32(cv, T * KVD);
    a->dv = ll_carve_f32(cv, T * KVD);
    a->datt = ll_carve_f32(cv, T * QD);
    a->dg = ll_carve_f32(cv, T * F);
    a->du = ll_carve_f32(cv, T * F);
    a->xn = ll_carve_f32(cv, T * D);
    a->g = ll_carve_f32(cv, T * F);
    a->u = ll_carve_f32(cv, T * F);
    a->h = ll_carve_f32(cv, T * F);
    a->lora_xd = ll_carve_f32(cv, d->r ? T * d->in_max : 0);
    a->lora_tmp = ll_carve_f32(cv, d->r ? T * d->in_max : 0);
    a->lora_xa = ll_carve_f32(cv, T * d->r);
    a->lora_dxa = ll_carve_f32(cv, T * d->r);
    a->dh = ll_carve_f32(cv, T * F);
    a->attn_scratch = ll_carve_f32(cv, d->scratch);
    a->rope_cos = ll_carve_f32(cv, T * d->half);
    a->rope_sin = ll_carve_f32(cv, T * d->half);
    a->pos = ll_carve_i32(cv, T);
    a->row_scale = ll_carve_f32(cv, T);
    a->q_raw = ll_carve_f32(cv, d->qk_norms ? S * T * QD : 0);
    a->k_raw = ll_carve_f32(cv, d->qk_norms ? S * T * KVD : 0);
    a->o_raw = ll_carve_f32(cv, d->post_norms ? S * T * D : 0);
    a->y = ll_carve_f32(cv, d->post_norms ? T * D : 0);
    a->dy = ll_carve_f32(cv, d->post_norms ? T * D : 0);
    a->rope_cos_local = ll_carve_f32(cv, d->local_rope ? T * d->half : 0);
    a->rope_sin_local = ll_carve_f32(cv, d->local_rope ? T * d->half : 0);
}

void ll_acts_free(ll_acts *a) {
    free(a->block);
    memset(a, 0, sizeof *a);
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* The sizes of an ll_acts for T tokens at the current thread count. */
static acts_dims acts_dims_for(const ll_model *m, const ll_lora *lora, size_t T, int recompute) {
    const ll_config *p = &m->cfg;
    acts_dims d = {.L = (size_t)p->n_layers, .T = T, .D = (size_t)p->dim, .QD = (size_t)p->n_heads * p->head_dim,
                   .KVD = (size_t)p->n_kv_heads * p->head_dim, .F = (size_t)p->hidden_dim,
                   .half = (size_t)p->head_dim / 2, .r = lora ? (size_t)lora->r : 0};
    d.S = recompute ? 1 : d.L;
    d.in_max = ll_lora_max_in(&m->cfg);
    /* with recompute the backward pass recomputes each layer's FFN input
     * anyway: its pre-activations are two more GEMMs on it, not L stored layers */
    d.ffn_T = !recompute && 2 * d.L * T * d.F * sizeof(float) <= LL_FFN_STORE_MAX_BYTES ? T : 0;
    /* positions never exceed the batch: the attention scratch and RoPE
     * tables for C tokens cover any sequence of the batch */
    d.scratch = ll_attention_scratch_floats(T);
    d.qk_norms = ll_model_qk_norms(m);
    d.post_norms = ll_model_post_norms(m);
    d.local_rope = m->rope_inv_freq_local != NULL;
    return d;
}

size_t ll_acts_bytes(const ll_model *m, const ll_lora *lora, size_t T, int recompute) {
    const acts_dims d = acts_dims_for(m, lora, T, recompute);
    ll_acts scratch = {0};
    ll_carver count = {0};
    carve_acts(&count, &scratch, &d);
    return count.used;
}

int ll_acts_reserve(ll_acts *a, const ll_model *m, const ll_lora *lora, size_t T, ll_error *err) {
    const int threads = omp_get_max_threads();
    const int recompute = !!a->recompute;
    if (a->block && T <= a->cap_tokens && threads <= a->cap_threads && recompute == a->carved_recompute) return LL_OK;
    T = max_size(T, a->cap_tokens);
    const acts_dims d = acts_dims_for(m, lora, T, recompute);
    char what[96];
    snprintf(what, sizeof what, "training activations for %zu tokens%s", T, recompute ? " (recompute)" : "");
    void *old = a->block;
    size_t bytes = 0;
    int rc = ll_carve_alloc(&a->block, &bytes, carve_acts, a, sizeof *a, &d, what, err);
    if (rc) return rc;
    free(old);
    a->bytes = bytes;
    a->cap_tokens = T;
    a->n_layers = (int)d.L;
    a->cap_threads = threads;
    a->carved_recompute = recompute;
    a->layer_slots = (int)d.S;
    a->slot_layer = -1;
    ll_rope_tables(a->rope_cos, a->rope_sin, m->rope_inv_freq, (int)d.half, T);
    if (d.local_rope) ll_rope_tables(a->rope_cos_local, a->rope_sin_local, m->rope_inv_freq_local, (int)d.half, T);
    return LL_OK;
}

/* First element of layer l in an [S, C, w] buffer: slot l, or the one slot. */
static size_t slot_of(const ll_acts *a, int l, size_t w) {
    return (a->layer_slots == 1 ? 0 : (size_t)l) * a->cap_tokens * w;
}

/* ---- the last layer's rows (ll_lora_pass.last_rows) --------------------------- */

/* The compacted rows of layer l (batch_row): each sequence's last token in the
 * last layer with last_rows, else NULL (all T rows). */
static const int32_t *layer_ends(const ll_config *p, const ll_batch *b, const ll_lora_pass *lp, int l) {
    return lp && lp->last_rows && l == p->n_layers - 1 ? b->seq_start + 1 : NULL;
}

/* dst[n, D] = the compacted rows of src[T, D]; dst may be src (each row moves
 * to or before where it was, rows ascending). */
static void gather_rows(float *dst, const float *src, const int32_t *ends, size_t n, size_t D) {
    for (size_t r = 0; r < n; r++)
        if (dst + r * D != src + batch_row(ends, r) * D)
            memmove(dst + r * D, src + batch_row(ends, r) * D, D * sizeof(float));
}

/* In place, x[n_seqs, D] (sequence s's last row at row s) -> x[T, D]: each row
 * back at its sequence's last token, every other row 0 (sequences
 * descending: a row moves to or after where it was, and the rows zeroed for
 * sequence s, from seq_start[s] >= s on, hold no row still to move). */
static void scatter_last_rows(float *x, const int32_t *seq_start, int n_seqs, size_t D) {
    for (int s = n_seqs - 1; s >= 0; s--) {
        const size_t a = (size_t)seq_start[s], e = (size_t)seq_start[s + 1] - 1;
        if (e != (size_t)s) memmove(x + e * D, x + (size_t)s * D, D * sizeof(float));
        memset(x + a * D, 0, (e - a) * D * sizeof(float));
    }
}

/* ---- forward -------------------------------------------------------------- */

/* Layer l's attention mask: causal below bidir_from; a sliding layer's window
 * (a bidirectional one's as Gemma3TextConfig halves it); the scale from
 * query_pre_attn_scalar (transformers: query_pre_attn_scalar ** -0.5). */
static ll_attn_mask layer_mask(const ll_model *m, int l, int bidir_from) {
    const ll_config *p = &m->cfg;
    ll_attn_mask mk = {l < bidir_from, 0, 0.0f};
    if (p->query_pre_attn_scalar > 0) mk.scale = (float)pow((double)p->query_pre_attn_scalar, -0.5);
    if (ll_config_layer_sliding(p, l))
        mk.window = mk.causal ? p->sliding_window
                    : m->arch->window == LL_WINDOW_LAYER_TYPES ? p->sliding_window / 2 + 1
                                                               : 0; /* refused by check_batch beyond it */
    return mk;
}

/* The RoPE tables of layer l: the sliding layers' own, or the model's. */
static void layer_rope(const ll_model *m, int l, const float *cos_t, const float *sin_t, const float *cos_local,
                       const float *sin_local, const float **c, const float **s) {
    const int local = m->rope_inv_freq_local && ll_config_layer_sliding(&m->cfg, l);
    *c = local ? cos_local : cos_t;
    *s = local ? sin_local : sin_t;
}

static int check_batch(const ll_model *m, const ll_batch *b, int bidir_from, size_t *max_len, ll_error *err) {
    if (!b || !b->tokens || !b->seq_start || b->n_seqs < 1) return ll_fail(err, LL_ERR_ARG, "empty batch");
    if (b->seq_start[0] != 0) return ll_fail(err, LL_ERR_ARG, "batch: seq_start[0] must be 0");
    /* a bidirectional sliding layer of an architecture that defines no bidirectional window */
    int undefined_window = 0;
    for (int l = bidir_from < 0 ? 0 : bidir_from; l < m->cfg.n_layers && !undefined_window; l++)
        undefined_window = ll_config_layer_sliding(&m->cfg, l) && m->arch->window != LL_WINDOW_LAYER_TYPES;
    *max_len = 0;
    for (int s = 0; s < b->n_seqs; s++) {
        if (b->seq_start[s + 1] <= b->seq_start[s])
            return ll_fail(err, LL_ERR_ARG, "batch: sequence %d is empty or seq_start decreases", s);
        const size_t len = (size_t)(b->seq_start[s + 1] - b->seq_start[s]);
        if (len > *max_len) *max_len = len;
        /* a window changes nothing up to its length */
        if (undefined_window && len > (size_t)m->cfg.sliding_window)
            return ll_fail(err, LL_ERR_UNSUPPORTED,
                           "batch: sequence %d has %zu tokens, more than the model's sliding_window = %d; a "
                           "bidirectional sliding-window layer is not defined for %s (only causal ones are)", s, len,
                           m->cfg.sliding_window, m->cfg.arch);
    }
    const int32_t T = b->seq_start[b->n_seqs];
    for (int32_t t = 0; t < T; t++)
        if (b->tokens[t] < 0 || b->tokens[t] >= m->cfg.vocab_size)
            return ll_fail(err, LL_ERR_ARG, "batch: token id %d at position %d is outside the vocabulary (0..%d)",
                           b->tokens[t], t, m->cfg.vocab_size - 1);
    return LL_OK;
}

/* x[n] += y[n] */
static void add_into(float *x, const float *y, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

/* The buffers one layer's attention half works in (forward: the workspace
 * and the layer's stored slots; recompute: the activations' own). */
typedef struct attn_bufs {
    float *xn;              /* [T, D] the normed input; then the post-norm's output */
    float *q, *k, *v, *att; /* [T, QD], [T, KVD], [T, KVD], [T, QD] */
    float *q_raw, *k_raw;   /* q, k before their head norms, kept for backward; NULL: not kept */
    float *o_raw;           /* [T, D] the o-projection's output (post-norms) */
    float *lora_xd, *lora_xa, *scratch;
    size_t scratch_len;
    const int32_t *pos;
    const float *cos, *sin, *cos_local, *sin_local;
} attn_bufs;

/* Layer l's attention half: x_out[R, D] = x_in (compacted rows with
 * last_rows) + o-projection(attention(norm(x_in))) (post-normed where the
 * model has post-norms). x_out may be x_in. */
static void attention_half(const ll_model *m, const ll_batch *b, int bidir_from, const ll_lora_pass *lp, int l,
                           const float *x_in, float *x_out, size_t T, const attn_bufs *f) {
    const ll_config *p = &m->cfg;
    const ll_layer *ly = &m->layers[l];
    const size_t D = p->dim, QD = (size_t)p->n_heads * p->head_dim, KVD = (size_t)p->n_kv_heads * p->head_dim;
    const int32_t *ends = layer_ends(p, b, lp, l);
    const size_t R = ends ? (size_t)b->n_seqs : T;
    const ll_attn_mask mask = layer_mask(m, l, bidir_from);
    const float *cos_t, *sin_t;
    layer_rope(m, l, f->cos, f->sin, f->cos_local, f->sin_local, &cos_t, &sin_t);
    ll_rmsnorm_forward(f->xn, x_in, ly->attn_norm, T, D, p->rms_eps);
    qkv_fwd(ly, f->q, f->k, f->v, f->xn, T, D, QD, KVD, lp, l, f->lora_xd, f->lora_xa);
    if (ly->q_norm) { /* Gemma 3: each head normed over head_dim before RoPE */
        if (f->q_raw) memcpy(f->q_raw, f->q, T * QD * sizeof(float));
        if (f->k_raw) memcpy(f->k_raw, f->k, T * KVD * sizeof(float));
        ll_rmsnorm_forward(f->q, f->q, ly->q_norm, T * (size_t)p->n_heads, (size_t)p->head_dim, p->rms_eps);
        ll_rmsnorm_forward(f->k, f->k, ly->k_norm, T * (size_t)p->n_kv_heads, (size_t)p->head_dim, p->rms_eps);
    }
    ll_rope_forward(f->q, f->pos, cos_t, sin_t, T, p->n_heads, p->head_dim);
    ll_rope_forward(f->k, f->pos, cos_t, sin_t, T, p->n_kv_heads, p->head_dim);
    if (ends) {
        ll_attention_forward_last(f->att, f->q, f->k, f->v, b->seq_start, b->n_seqs, p->n_heads, p->n_kv_heads,
                                  p->head_dim, &mask, f->scratch, f->scratch_len);
    } else {
        ll_attention_forward(f->att, f->q, f->k, f->v, b->seq_start, b->n_seqs, p->n_heads, p->n_kv_heads,
                             p->head_dim, &mask, f->scratch, f->scratch_len);
    }
    gather_rows(x_out, x_in, ends, R, D);
    if (ly->attn_post_norm) {
        linear_fwd(f->o_raw, f->att, &ly->wo, ly->bo, R, QD, D, 0, lp, l, LL_LORA_O, ends, f->lora_xd, f->lora_xa);
        ll_rmsnorm_forward(f->xn, f->o_raw, ly->attn_post_norm, R, D, p->rms_eps);
        add_into(x_out, f->xn, R * D);
    } else { /* the residual add inside the GEMM (beta = 1) */
        linear_fwd(x_out, f->att, &ly->wo, ly->bo, R, QD, D, 1, lp, l, LL_LORA_O, ends, f->lora_xd, f->lora_xa);
    }
}

int ll_stack_forward(ll_model *m, const ll_batch *b, int bidir_from, const ll_lora_pass *lp, ll_acts *acts,
                     float *hidden, ll_error *err) {
    size_t max_len = 0;
    int rc = check_batch(m, b, bidir_from, &max_len, err);
    if (rc) return rc;
    const ll_config *p = &m->cfg;
    const size_t T = (size_t)b->seq_start[b->n_seqs];
    const size_t lora_r = lp && lp->lora ? (size_t)lp->lora->r : 0;
    if ((rc = ll_workspace_reserve(m, T, (size_t)b->n_seqs, max_len, lora_r, err))) return rc;
    if (acts && (rc = ll_acts_reserve(acts, m, lp ? lp->lora : NULL, T, err))) return rc;
    ll_workspace *ws = &m->ws;
    const size_t D = p->dim, QD = (size_t)p->n_heads * p->head_dim, KVD = (size_t)p->n_kv_heads * p->head_dim,
                 F = p->hidden_dim, cap = acts ? acts->cap_tokens : 0;
    if (p->use_bidirectional_attention && bidir_from > 0)
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: config.json sets use_bidirectional_attention: every layer is "
                       "bidirectional, so causal attention below layer %d (bidirectional_from %d) would compute another "
                       "model; run it bidirectional from layer 0", m->path ? m->path : "the model", bidir_from,
                       bidir_from);
    const int last_rows = lp && lp->last_rows;
    if (last_rows && p->n_layers - 1 >= bidir_from)
        return ll_fail(err, LL_ERR_ARG, "last_rows needs a causal last layer (bidirectional from layer %d of %d)",
                       bidir_from, p->n_layers);

    /* positions and RoPE tables: the activations' own while training (backward reads them) */
    int32_t *pos = acts ? acts->pos : ws->pos;
    for (int s = 0; s < b->n_seqs; s++)
        for (int32_t t = b->seq_start[s]; t < b->seq_start[s + 1]; t++) pos[t] = t - b->seq_start[s];
    float *x = ws->x;
    ll_embedding_lookup(x, &m->tok_emb, b->tokens, T);
    if (m->embed_scale != 1.0f)
        for (size_t i = 0; i < T * D; i++) x[i] *= m->embed_scale;

    for (int l = 0; l < p->n_layers; l++) {
        const ll_layer *ly = &m->layers[l];
        /* Training keeps these per layer; inference reuses one buffer. */
        attn_bufs f = {ws->xn,
                       acts ? acts->q + slot_of(acts, l, QD) : ws->q,
                       acts ? acts->k + slot_of(acts, l, KVD) : ws->k,
                       acts ? acts->v + slot_of(acts, l, KVD) : ws->v,
                       acts ? acts->att + slot_of(acts, l, QD) : ws->att,
                       acts && ly->q_norm ? acts->q_raw + slot_of(acts, l, QD) : NULL,
                       acts && ly->q_norm ? acts->k_raw + slot_of(acts, l, KVD) : NULL,
                       acts && ly->attn_post_norm ? acts->o_raw + slot_of(acts, l, D) : ws->y,
                       ws->lora_xd, ws->lora_xa, ws->scratch, ws->cap_len, pos,
                       acts ? acts->rope_cos : ws->rope_cos, acts ? acts->rope_sin : ws->rope_sin,
                       acts ? acts->rope_cos_local : ws->rope_cos_local,
                       acts ? acts->rope_sin_local : ws->rope_sin_local};
        /* k and v for every row; with last_rows the rest of the last layer for R = n_seqs compacted rows */
        const int32_t *ends = layer_ends(p, b, lp, l);
        const size_t R = ends ? (size_t)b->n_seqs : T;
        if (acts) memcpy(acts->x_in + l * cap * D, x, T * D * sizeof(float));
        attention_half(m, b, bidir_from, lp, l, x, x, T, &f);
        if (acts) memcpy(acts->x_mid + slot_of(acts, l, D), x, R * D * sizeof(float));
        ll_rmsnorm_forward(ws->xn, x, ly->ffn_norm, R, D, p->rms_eps);
        /* with stored FFN activations, gate and up go straight to their slots */
        float *g = acts && acts->ffn_g ? acts->ffn_g + l * cap * F : ws->g,
              *u = acts && acts->ffn_u ? acts->ffn_u + l * cap * F : ws->u;
        gate_up_fwd(ly, g, u, ws->xn, R, D, F, lp, l, ends, ws->lora_xd, ws->lora_xa);
        ll_glu_forward(ws->g, g, u, R * F, p->hidden_act);
        if (ly->ffn_post_norm) {
            linear_fwd(ws->y, ws->g, &ly->w_down, ly->b_down, R, F, D, 0, lp, l, LL_LORA_DOWN, ends, ws->lora_xd,
                       ws->lora_xa);
            ll_rmsnorm_forward(ws->xn, ws->y, ly->ffn_post_norm, R, D, p->rms_eps);
            add_into(x, ws->xn, R * D);
        } else {
            linear_fwd(x, ws->g, &ly->w_down, ly->b_down, R, F, D, 1, lp, l, LL_LORA_DOWN, ends, ws->lora_xd,
                       ws->lora_xa);
        }
    }
    const size_t R = last_rows ? (size_t)b->n_seqs : T; /* rows of x now */
    if (acts) {
        memcpy(acts->x_final, x, R * D * sizeof(float));
        acts->slot_layer = p->n_layers - 1; /* with one slot: the last layer's values are in it */
        acts->last_rows = last_rows;
    }
    ll_rmsnorm_forward(hidden ? hidden : ws->xn, x, m->final_norm, R, D, p->rms_eps);
    return LL_OK;
}

/* ---- backward ------------------------------------------------------------- */

/* Recompute: layer l's attention half into slot 0, from its stored input, as
 * ll_stack_forward computed it: the same function with the same arguments
 * (the attention's results do not depend on which scratch it is given), the
 * same LoRA dropout masks (a function of seed, layer and module). */
static void recompute_attention(const ll_model *m, const ll_batch *b, int bidir_from, const ll_lora_pass *lp,
                                ll_acts *a, int l, size_t T) {
    const ll_config *p = &m->cfg;
    const size_t D = p->dim;
    const float *x_in = a->x_in + (size_t)l * a->cap_tokens * D;
    const attn_bufs f = {a->xn, a->q, a->k, a->v, a->att, a->q_raw, a->k_raw, a->o_raw, a->lora_xd, a->lora_xa,
                         a->attn_scratch, a->cap_tokens, a->pos, a->rope_cos, a->rope_sin, a->rope_cos_local,
                         a->rope_sin_local};
    attention_half(m, b, bidir_from, lp, l, x_in, a->x_mid, T, &f);
    a->slot_layer = l;
}

int ll_stack_backward(ll_model *m, const ll_batch *b, int bidir_from, const ll_lora_pass *lp, ll_acts *a,
                      const float *dhidden, ll_error *err) {
    const ll_config *p = &m->cfg;
    const size_t T = (size_t)b->seq_start[b->n_seqs];
    if (!a || T > a->cap_tokens || !a->x_in) return ll_fail(err, LL_ERR_ARG, "backward without matching forward");
    if (omp_get_max_threads() > a->cap_threads)
        return ll_fail(err, LL_ERR_ARG, "backward with %d threads after a forward pass sized for %d",
                       omp_get_max_threads(), a->cap_threads);
    const size_t D = p->dim, QD = (size_t)p->n_heads * p->head_dim, KVD = (size_t)p->n_kv_heads * p->head_dim,
                 F = p->hidden_dim, cap = a->cap_tokens, hd = (size_t)p->head_dim;
    const int last_rows = lp && lp->last_rows;
    if (last_rows != a->last_rows)
        return ll_fail(err, LL_ERR_ARG, "backward %s last_rows after a forward pass %s", last_rows ? "with" : "without",
                       a->last_rows ? "with" : "without");
    const size_t R_top = last_rows ? (size_t)b->n_seqs : T; /* rows of dhidden */
    memset(a->dx, 0, R_top * D * sizeof(float));
    const ll_full_grads *full = lp ? lp->full : NULL;
    ll_rmsnorm_backward(a->dx, dhidden, a->x_final, m->final_norm, R_top, D, p->rms_eps);
    if (full && full->final_norm) ll_rmsnorm_weight_grad(full->final_norm, dhidden, a->x_final, R_top, D, p->rms_eps, a->row_scale);
    for (int l = p->n_layers - 1; l >= 0; l--) {
        const ll_layer *ly = &m->layers[l];
        /* with last_rows, the last layer's FFN and o-projection on R = n_seqs compacted rows */
        const int32_t *ends = layer_ends(p, b, lp, l);
        const size_t R = ends ? (size_t)b->n_seqs : T;
        /* one slot: the top layer's values are still there from the forward pass */
        if (a->layer_slots == 1 && a->slot_layer != l) recompute_attention(m, b, bidir_from, lp, a, l, T);
        const float *x_in = a->x_in + l * cap * D, *x_mid = a->x_mid + slot_of(a, l, D);
        const float *q = a->q + slot_of(a, l, QD), *k = a->k + slot_of(a, l, KVD), *v = a->v + slot_of(a, l, KVD),
                    *att = a->att + slot_of(a, l, QD);
        /* FFN: its normed input (cheap) and, unless stored, its pre-activations
         * are recomputed (same dropout masks: same seed) */
        ll_rmsnorm_forward(a->xn, x_mid, ly->ffn_norm, R, D, p->rms_eps);
        const float *g = a->g, *u = a->u;
        if (a->ffn_g) {
            g = a->ffn_g + l * cap * F, u = a->ffn_u + l * cap * F;
        } else {
            gate_up_fwd(ly, a->g, a->u, a->xn, R, D, F, lp, l, ends, a->lora_xd, a->lora_xa);
        }
        ll_glu_forward(a->h, g, u, R * F, p->hidden_act);
        const float *d_down = a->dx; /* the gradient of the down-projection's output */
        if (ly->ffn_post_norm) { /* its output recomputed, then through the post-norm */
            linear_fwd(a->y, a->h, &ly->w_down, ly->b_down, R, F, D, 0, lp, l, LL_LORA_DOWN, ends, a->lora_xd,
                       a->lora_xa);
            memset(a->dy, 0, R * D * sizeof(float));
            ll_rmsnorm_backward(a->dy, a->dx, a->y, ly->ffn_post_norm, R, D, p->rms_eps);
            d_down = a->dy;
        }
        /* each gradient buffer's first product writes it (no zeroing: 25 MB a layer for SmolLM2 at 1,024 tokens) */
        linear_bwd(a->dh, 0, d_down, a->h, &ly->w_down, R, F, D, lp, l, LL_LORA_DOWN, ends, a);
        ll_glu_backward(a->dg, a->du, a->dh, g, u, R * F, p->hidden_act);
        linear_bwd(a->dxn, 0, a->dg, a->xn, &ly->w_gate, R, D, F, lp, l, LL_LORA_GATE, ends, a);
        linear_bwd(a->dxn, 1, a->du, a->xn, &ly->w_up, R, D, F, lp, l, LL_LORA_UP, ends, a);
        ll_rmsnorm_backward(a->dx, a->dxn, x_mid, ly->ffn_norm, R, D, p->rms_eps); /* dx is now dL/dx_mid */
        if (full && full->norms && full->norms[2 * l + 1])
            ll_rmsnorm_weight_grad(full->norms[2 * l + 1], a->dxn, x_mid, R, D, p->rms_eps, a->row_scale);
        /* attention */
        const float *d_o = a->dx; /* the gradient of the o-projection's output */
        if (ly->attn_post_norm) {
            memset(a->dy, 0, R * D * sizeof(float));
            ll_rmsnorm_backward(a->dy, a->dx, a->o_raw + slot_of(a, l, D), ly->attn_post_norm, R, D, p->rms_eps);
            d_o = a->dy;
        }
        linear_bwd(a->datt, 0, d_o, att, &ly->wo, R, QD, D, lp, l, LL_LORA_O, ends, a);
        memset(a->dq, 0, T * QD * sizeof(float));
        memset(a->dk, 0, T * KVD * sizeof(float));
        memset(a->dv, 0, T * KVD * sizeof(float));
        const ll_attn_mask mask = layer_mask(m, l, bidir_from);
        if (ends) {
            scatter_last_rows(a->dx, b->seq_start, b->n_seqs, D); /* dL/dx_mid: zero off the last rows */
            ll_attention_backward_last(a->dq, a->dk, a->dv, a->datt, q, k, v, b->seq_start, b->n_seqs, p->n_heads,
                                       p->n_kv_heads, p->head_dim, &mask, a->attn_scratch, cap);
        } else {
            ll_attention_backward(a->dq, a->dk, a->dv, a->datt, q, k, v, b->seq_start, b->n_seqs, p->n_heads,
                                  p->n_kv_heads, p->head_dim, &mask, a->attn_scratch, cap);
        }
        const float *cos_t, *sin_t;
        layer_rope(m, l, a->rope_cos, a->rope_sin, a->rope_cos_local, a->rope_sin_local, &cos_t, &sin_t);
        ll_rope_backward(a->dq, a->pos, cos_t, sin_t, T, p->n_heads, p->head_dim);
        ll_rope_backward(a->dk, a->pos, cos_t, sin_t, T, p->n_kv_heads, p->head_dim);
        ll_rmsnorm_forward(a->xn, x_in, ly->attn_norm, T, D, p->rms_eps);
        const float *dq_in = a->dq, *dk_in = a->dk; /* gradients of the q and k projections' outputs */
        if (ly->q_norm) { /* through the head norms, into datt (free now) one after the other */
            memset(a->datt, 0, T * QD * sizeof(float));
            ll_rmsnorm_backward(a->datt, a->dq, a->q_raw + slot_of(a, l, QD), ly->q_norm, T * (size_t)p->n_heads, hd,
                                p->rms_eps);
            dq_in = a->datt;
        }
        linear_bwd(a->dxn, 0, dq_in, a->xn, &ly->wq, T, D, QD, lp, l, LL_LORA_Q, NULL, a);
        if (ly->k_norm) {
            memset(a->datt, 0, T * KVD * sizeof(float));
            ll_rmsnorm_backward(a->datt, a->dk, a->k_raw + slot_of(a, l, KVD), ly->k_norm, T * (size_t)p->n_kv_heads,
                                hd, p->rms_eps);
            dk_in = a->datt;
        }
        linear_bwd(a->dxn, 1, dk_in, a->xn, &ly->wk, T, D, KVD, lp, l, LL_LORA_K, NULL, a);
        linear_bwd(a->dxn, 1, a->dv, a->xn, &ly->wv, T, D, KVD, lp, l, LL_LORA_V, NULL, a);
        ll_rmsnorm_backward(a->dx, a->dxn, x_in, ly->attn_norm, T, D, p->rms_eps); /* dL/dx_in */
        if (full && full->norms && full->norms[2 * l])
            ll_rmsnorm_weight_grad(full->norms[2 * l], a->dxn, x_in, T, D, p->rms_eps, a->row_scale);
    }
    /* dx: the gradient of the embeddings' output; of the table's rows through the scale */
    if (full && full->embeddings) {
        if (m->embed_scale != 1.0f)
            for (size_t i = 0; i < T * D; i++) a->dx[i] *= m->embed_scale;
        ll_embedding_backward(full->embeddings, a->dx, b->tokens, T, D);
    }
    return LL_OK;
}
