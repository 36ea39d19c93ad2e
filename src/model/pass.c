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

/* dx[T,in] += dy W (+ LoRA path); LoRA gradients added into dA, dB; a
 * trained W's gradient (full fine-tuning) into its dW. */
static void linear_bwd(float *dx, const float *dy, const float *x, const ll_matrix *W, size_t T, size_t in, size_t out,
                       const ll_lora_pass *lp, int layer, int target, const int32_t *ends, ll_acts *a) {
    ll_linear_backward_input(dx, dy, W, T, in, out);
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

static int check_batch(const ll_model *m, const ll_batch *b, size_t *max_len, ll_error *err) {
    if (!b || !b->tokens || !b->seq_start || b->n_seqs < 1) return ll_fail(err, LL_ERR_ARG, "empty batch");
    if (b->seq_start[0] != 0) return ll_fail(err, LL_ERR_ARG, "batch: seq_start[0] must be 0");
    *max_len = 0;
    for (int s = 0; s < b->n_seqs; s++) {
        if (b->seq_start[s + 1] <= b->seq_start[s])
            return ll_fail(err, LL_ERR_ARG, "batch: sequence %d is empty or seq_start decreases", s);
        const size_t len = (size_t)(b->seq_start[s + 1] - b->seq_start[s]);
        if (len > *max_len) *max_len = len;
        /* a window changes nothing up to its length (see ll_config) */
        if (m->cfg.sliding_window > 0 && len > (size_t)m->cfg.sliding_window)
            return ll_fail(err, LL_ERR_UNSUPPORTED,
                           "batch: sequence %d has %zu tokens, more than the model's sliding_window = %d; "
                           "sliding-window attention is not supported", s, len, m->cfg.sliding_window);
    }
    const int32_t T = b->seq_start[b->n_seqs];
    for (int32_t t = 0; t < T; t++)
        if (b->tokens[t] < 0 || b->tokens[t] >= m->cfg.vocab_size)
            return ll_fail(err, LL_ERR_ARG, "batch: token id %d at position %d is outside the vocabulary (0..%d)",
                           b->tokens[t], t, m->cfg.vocab_size - 1);
    return LL_OK;
}

int ll_stack_forward(ll_model *m, const ll_batch *b, int bidir_from, const ll_lora_pass *lp, ll_acts *acts,
                     float *hidden, ll_error *err) {
    size_t max_len = 0;
    int rc = check_batch(m, b, &max_len, err);
    if (rc) return rc;
    const ll_config *p = &m->cfg;
    const size_t T = (size_t)b->seq_start[b->n_seqs];
    const size_t lora_r = lp && lp->lora ? (size_t)lp->lora->r : 0;
    if ((rc = ll_workspace_reserve(m, T, (size_t)b->n_seqs, max_len, lora_r, err))) return rc;
    if (acts && (rc = ll_acts_reserve(acts, m, lp ? lp->lora : NULL, T, err))) return rc;
    ll_workspace *ws = &m->ws;
    const size_t D = p->dim, QD = (size_t)p->n_heads * p->head_dim, KVD = (size_t)p->n_kv_heads * p->head_dim,
                 F = p->hidden_dim, cap = acts ? acts->cap_tokens : 0;
    const int last_rows = lp && lp->last_rows;
    if (last_rows && p->n_layers - 1 >= bidir_from)
        return ll_fail(err, LL_ERR_ARG, "last_rows needs a causal last layer (bidirectional from layer %d of %d)",
                       bidir_from, p->n_layers);

    /* positions and RoPE tables: the activations' own while training (backward reads them) */
    int32_t *pos = acts ? acts->pos : ws->pos;
    const float *rope_cos = acts ? acts->rope_cos : ws->rope_cos, *rope_sin = acts ? acts->rope_sin : ws->rope_sin;
    for (int s = 0; s < b->n_seqs; s++)
        for (int32_t t = b->seq_start[s]; t < b->seq_start[s + 1]; t++) pos[t] = t - b->seq_start[s];
    float *x = ws->x;
    ll_embedding_lookup(x, &m->tok_emb, b->tokens, T);

    for (int l = 0; l < p->n_layers; l++) {
        const ll_layer *ly = &m->layers[l];
        /* Training keeps these per layer; inference reuses one buffer. */
        float *q = acts ? acts->q + slot_of(acts, l, QD) : ws->q, *k = acts ? acts->k + slot_of(acts, l, KVD) : ws->k,
              *v = acts ? acts->v + slot_of(acts, l, KVD) : ws->v,
              *att = acts ? acts->att + slot_of(acts, l, QD) : ws->att;
        /* k and v for every row; with last_rows the rest of the last layer for R = n_seqs compacted rows */
        const int32_t *ends = layer_ends(p, b, lp, l);
        const size_t R = ends ? (size_t)b->n_seqs : T;
        if (acts) memcpy(acts->x_in + l * cap * D, x, T * D * sizeof(float));
        ll_rmsnorm_forward(ws->xn, x, ly->attn_norm, T, D, p->rms_eps);
        qkv_fwd(ly, q, k, v, ws->xn, T, D, QD, KVD, lp, l, ws->lora_xd, ws->lora_xa);
        ll_rope_forward(q, pos, rope_cos, rope_sin, T, p->n_heads, p->head_dim);
        ll_rope_forward(k, pos, rope_cos, rope_sin, T, p->n_kv_heads, p->head_dim);
        if (ends) {
            ll_attention_forward_last(att, q, k, v, b->seq_start, b->n_seqs, p->n_heads, p->n_kv_heads, p->head_dim,
                                      ws->scratch, ws->cap_len);
            gather_rows(x, x, ends, R, D);
        } else {
            ll_attention_forward(att, q, k, v, b->seq_start, b->n_seqs, p->n_heads, p->n_kv_heads, p->head_dim,
                                 l < bidir_from, ws->scratch, ws->cap_len);
        }
        /* residual adds happen inside the GEMMs (beta = 1) */
        linear_fwd(x, att, &ly->wo, ly->bo, R, QD, D, 1, lp, l, LL_LORA_O, ends, ws->lora_xd, ws->lora_xa);
        if (acts) memcpy(acts->x_mid + slot_of(acts, l, D), x, R * D * sizeof(float));
        ll_rmsnorm_forward(ws->xn, x, ly->ffn_norm, R, D, p->rms_eps);
        /* with stored FFN activations, gate and up go straight to their slots */
        float *g = acts && acts->ffn_g ? acts->ffn_g + l * cap * F : ws->g,
              *u = acts && acts->ffn_u ? acts->ffn_u + l * cap * F : ws->u;
        gate_up_fwd(ly, g, u, ws->xn, R, D, F, lp, l, ends, ws->lora_xd, ws->lora_xa);
        ll_glu_forward(ws->g, g, u, R * F, p->hidden_act);
        linear_fwd(x, ws->g, &ly->w_down, ly->b_down, R, F, D, 1, lp, l, LL_LORA_DOWN, ends, ws->lora_xd,
                   ws->lora_xa);
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
 * ll_stack_forward computed it: the same kernels with the same arguments (the
 * attention's results do not depend on which scratch it is given), the same
 * LoRA dropout masks (a function of seed, layer and module), the residual
 * add inside the o-projection's GEMM on a copy of x_in. */
static void recompute_attention(const ll_model *m, const ll_batch *b, int bidir_from, const ll_lora_pass *lp,
                                ll_acts *a, int l, size_t T) {
    const ll_config *p = &m->cfg;
    const ll_layer *ly = &m->layers[l];
    const size_t D = p->dim, QD = (size_t)p->n_heads * p->head_dim, KVD = (size_t)p->n_kv_heads * p->head_dim;
    const float *x_in = a->x_in + (size_t)l * a->cap_tokens * D;
    const int32_t *ends = layer_ends(p, b, lp, l);
    const size_t R = ends ? (size_t)b->n_seqs : T;
    ll_rmsnorm_forward(a->xn, x_in, ly->attn_norm, T, D, p->rms_eps);
    qkv_fwd(ly, a->q, a->k, a->v, a->xn, T, D, QD, KVD, lp, l, a->lora_xd, a->lora_xa);
    ll_rope_forward(a->q, a->pos, a->rope_cos, a->rope_sin, T, p->n_heads, p->head_dim);
    ll_rope_forward(a->k, a->pos, a->rope_cos, a->rope_sin, T, p->n_kv_heads, p->head_dim);
    if (ends) {
        ll_attention_forward_last(a->att, a->q, a->k, a->v, b->seq_start, b->n_seqs, p->n_heads, p->n_kv_heads,
                                  p->head_dim, a->attn_scratch, a->cap_tokens);
    } else {
        ll_attention_forward(a->att, a->q, a->k, a->v, b->seq_start, b->n_seqs, p->n_heads, p->n_kv_heads,
                             p->head_dim, l < bidir_from, a->attn_scratch, a->cap_tokens);
    }
    gather_rows(a->x_mid, x_in, ends, R, D);
    linear_fwd(a->x_mid, a->att, &ly->wo, ly->bo, R, QD, D, 1, lp, l, LL_LORA_O, ends, a->lora_xd, a->lora_xa);
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
                 F = p->hidden_dim, cap = a->cap_tokens;
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
        memset(a->dxn, 0, R * D * sizeof(float));
        memset(a->dg, 0, R * F * sizeof(float));
        memset(a->du, 0, R * F * sizeof(float));
        memset(a->dh, 0, R * F * sizeof(float));
        linear_bwd(a->dh, a->dx, a->h, &ly->w_down, R, F, D, lp, l, LL_LORA_DOWN, ends, a);
        ll_glu_backward(a->dg, a->du, a->dh, g, u, R * F, p->hidden_act);
        linear_bwd(a->dxn, a->dg, a->xn, &ly->w_gate, R, D, F, lp, l, LL_LORA_GATE, ends, a);
        linear_bwd(a->dxn, a->du, a->xn, &ly->w_up, R, D, F, lp, l, LL_LORA_UP, ends, a);
        ll_rmsnorm_backward(a->dx, a->dxn, x_mid, ly->ffn_norm, R, D, p->rms_eps); /* dx is now dL/dx_mid */
        if (full && full->norms && full->norms[2 * l + 1])
            ll_rmsnorm_weight_grad(full->norms[2 * l + 1], a->dxn, x_mid, R, D, p->rms_eps, a->row_scale);
        /* attention */
        memset(a->datt, 0, R * QD * sizeof(float));
        linear_bwd(a->datt, a->dx, att, &ly->wo, R, QD, D, lp, l, LL_LORA_O, ends, a);
        memset(a->dq, 0, T * QD * sizeof(float));
        memset(a->dk, 0, T * KVD * sizeof(float));
        memset(a->dv, 0, T * KVD * sizeof(float));
        if (ends) {
            scatter_last_rows(a->dx, b->seq_start, b->n_seqs, D); /* dL/dx_mid: zero off the last rows */
            ll_attention_backward_last(a->dq, a->dk, a->dv, a->datt, q, k, v, b->seq_start, b->n_seqs, p->n_heads,
                                       p->n_kv_heads, p->head_dim, a->attn_scratch, cap);
        } else {
            ll_attention_backward(a->dq, a->dk, a->dv, a->datt, q, k, v, b->seq_start, b->n_seqs, p->n_heads,
                                  p->n_kv_heads, p->head_dim, l < bidir_from, a->attn_scratch, cap);
        }
        ll_rope_backward(a->dq, a->pos, a->rope_cos, a->rope_sin, T, p->n_heads, p->head_dim);
        ll_rope_backward(a->dk, a->pos, a->rope_cos, a->rope_sin, T, p->n_kv_heads, p->head_dim);
        ll_rmsnorm_forward(a->xn, x_in, ly->attn_norm, T, D, p->rms_eps);
        memset(a->dxn, 0, T * D * sizeof(float));
        linear_bwd(a->dxn, a->dq, a->xn, &ly->wq, T, D, QD, lp, l, LL_LORA_Q, NULL, a);
        linear_bwd(a->dxn, a->dk, a->xn, &ly->wk, T, D, KVD, lp, l, LL_LORA_K, NULL, a);
        linear_bwd(a->dxn, a->dv, a->xn, &ly->wv, T, D, KVD, lp, l, LL_LORA_V, NULL, a);
        ll_rmsnorm_backward(a->dx, a->dxn, x_in, ly->attn_norm, T, D, p->rms_eps); /* dL/dx_in */
        if (full && full->norms && full->norms[2 * l])
            ll_rmsnorm_weight_grad(full->norms[2 * l], a->dxn, x_in, T, D, p->rms_eps, a->row_scale);
    }
    /* dx: the gradient of the embeddings' output */
    if (full && full->embeddings) ll_embedding_backward(full->embeddings, a->dx, b->tokens, T, D);
    return LL_OK;
}
