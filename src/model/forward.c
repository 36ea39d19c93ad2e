/* Forward pass over a packed batch: every matmul sees [total_tokens, dim],
 * attention runs per sequence, no padding anywhere. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/kernels.h"
#include "model/model.h"

void ll_workspace_free(ll_workspace *ws) {
    free(ws->block);
    memset(ws, 0, sizeof *ws);
}

int ll_workspace_reserve(ll_model *m, size_t tokens, size_t seqs, size_t max_len, ll_error *err) {
    ll_workspace *ws = &m->ws;
    if (tokens <= ws->cap_tokens && seqs <= ws->cap_seqs && max_len <= ws->cap_len) return LL_OK;
    /* Grow geometrically so a sequence of slightly larger batches does not
     * reallocate every time. */
    tokens = tokens > ws->cap_tokens ? (tokens > 2 * ws->cap_tokens ? tokens : 2 * ws->cap_tokens) : ws->cap_tokens;
    seqs = seqs > ws->cap_seqs ? seqs : ws->cap_seqs;
    max_len = max_len > ws->cap_len ? max_len : ws->cap_len;
    const ll_config *p = &m->cfg;
    const size_t D = p->dim, QD = (size_t)p->n_heads * p->head_dim, KVD = (size_t)p->n_kv_heads * p->head_dim,
                 F = p->hidden_dim, half = p->head_dim / 2, nt = (size_t)omp_get_max_threads();
    const size_t floats = tokens * (2 * D + 2 * QD + 2 * KVD + 2 * F) + nt * max_len + 2 * max_len * half;
    void *block = malloc(floats * sizeof(float) + tokens * sizeof(int32_t));
    if (!block)
        return ll_fail(err, LL_ERR_NOMEM, "cannot allocate %.1f MB of activations for %zu tokens",
                       floats * 4.0 / 1e6, tokens);
    free(ws->block);
    ws->block = block;
    float *f = block;
    ws->x = f, f += tokens * D;
    ws->xn = f, f += tokens * D;
    ws->q = f, f += tokens * QD;
    ws->att = f, f += tokens * QD;
    ws->k = f, f += tokens * KVD;
    ws->v = f, f += tokens * KVD;
    ws->g = f, f += tokens * F;
    ws->u = f, f += tokens * F;
    ws->scratch = f, f += nt * max_len;
    ws->rope_cos = f, f += max_len * half;
    ws->rope_sin = f, f += max_len * half;
    ws->pos = (int32_t *)f;
    ws->cap_tokens = tokens;
    ws->cap_seqs = seqs;
    ws->cap_len = max_len;
    ll_rope_tables(ws->rope_cos, ws->rope_sin, m->rope_inv_freq, (int)half, max_len);
    return LL_OK;
}

static int check_batch(const ll_model *m, const ll_batch *b, size_t *max_len, ll_error *err) {
    if (!b || !b->tokens || !b->seq_start || b->n_seqs < 1)
        return ll_fail(err, LL_ERR_ARG, "empty batch");
    if (b->seq_start[0] != 0) return ll_fail(err, LL_ERR_ARG, "batch: seq_start[0] must be 0");
    *max_len = 0;
    for (int s = 0; s < b->n_seqs; s++) {
        if (b->seq_start[s + 1] <= b->seq_start[s])
            return ll_fail(err, LL_ERR_ARG, "batch: sequence %d is empty or seq_start decreases", s);
        const size_t len = (size_t)(b->seq_start[s + 1] - b->seq_start[s]);
        if (len > *max_len) *max_len = len;
    }
    const int32_t T = b->seq_start[b->n_seqs];
    for (int32_t t = 0; t < T; t++)
        if (b->tokens[t] < 0 || b->tokens[t] >= m->cfg.vocab_size)
            return ll_fail(err, LL_ERR_ARG, "batch: token id %d at position %d is outside the vocabulary (0..%d)",
                           b->tokens[t], t, m->cfg.vocab_size - 1);
    return LL_OK;
}

static void pool_hidden(float *pooled, const float *h, const int32_t *seq_start, int n_seqs, size_t D, ll_pool pool) {
#pragma omp parallel for schedule(static)
    for (int s = 0; s < n_seqs; s++) {
        const size_t a = (size_t)seq_start[s], b = (size_t)seq_start[s + 1];
        float *o = pooled + (size_t)s * D;
        switch (pool) {
        case LL_POOL_FIRST: memcpy(o, h + a * D, D * sizeof(float)); break;
        case LL_POOL_LAST: memcpy(o, h + (b - 1) * D, D * sizeof(float)); break;
        case LL_POOL_MEAN:
            for (size_t i = 0; i < D; i++) o[i] = 0.0f;
            for (size_t t = a; t < b; t++)
                for (size_t i = 0; i < D; i++) o[i] += h[t * D + i];
            for (size_t i = 0; i < D; i++) o[i] /= (float)(b - a);
            break;
        case LL_POOL_MAX:
            memcpy(o, h + a * D, D * sizeof(float));
            for (size_t t = a + 1; t < b; t++)
                for (size_t i = 0; i < D; i++) o[i] = fmaxf(o[i], h[t * D + i]);
            break;
        }
    }
}

int ll_forward(ll_model *m, const ll_batch *b, const ll_forward_options *opt, ll_forward_outputs *out,
               ll_error *err) {
    size_t max_len = 0;
    int rc = check_batch(m, b, &max_len, err);
    if (rc) return rc;
    if (out && out->logits_last && !m->lm_head)
        return ll_fail(err, LL_ERR_ARG, "logits requested but the model was loaded without an LM head");
    if (out && out->pooled && (out->pool < LL_POOL_LAST || out->pool > LL_POOL_FIRST))
        return ll_fail(err, LL_ERR_ARG, "unknown pooling %d", (int)out->pool);
    const ll_config *p = &m->cfg;
    const size_t T = (size_t)b->seq_start[b->n_seqs];
    if ((rc = ll_workspace_reserve(m, T, (size_t)b->n_seqs, max_len, err))) return rc;
    ll_workspace *ws = &m->ws;
    const size_t D = p->dim, QD = (size_t)p->n_heads * p->head_dim, KVD = (size_t)p->n_kv_heads * p->head_dim,
                 F = p->hidden_dim;
    const int bidir_from = opt ? opt->bidirectional_from : p->n_layers;

    for (int s = 0; s < b->n_seqs; s++)
        for (int32_t t = b->seq_start[s]; t < b->seq_start[s + 1]; t++) ws->pos[t] = t - b->seq_start[s];
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < T; t++) memcpy(ws->x + t * D, m->tok_emb + (size_t)b->tokens[t] * D, D * sizeof(float));

    for (int l = 0; l < p->n_layers; l++) {
        const ll_layer *ly = &m->layers[l];
        ll_rmsnorm_forward(ws->xn, ws->x, ly->attn_norm, T, D, p->rms_eps);
        ll_linear_forward(ws->q, ws->xn, ly->wq, ly->bq, T, D, QD, 0);
        ll_linear_forward(ws->k, ws->xn, ly->wk, ly->bk, T, D, KVD, 0);
        ll_linear_forward(ws->v, ws->xn, ly->wv, ly->bv, T, D, KVD, 0);
        ll_rope_forward(ws->q, ws->pos, ws->rope_cos, ws->rope_sin, T, p->n_heads, p->head_dim);
        ll_rope_forward(ws->k, ws->pos, ws->rope_cos, ws->rope_sin, T, p->n_kv_heads, p->head_dim);
        ll_attention_forward(ws->att, ws->q, ws->k, ws->v, b->seq_start, b->n_seqs, p->n_heads, p->n_kv_heads,
                             p->head_dim, l < bidir_from, ws->scratch, ws->cap_len);
        ll_linear_forward(ws->x, ws->att, ly->wo, NULL, T, QD, D, 1); /* residual add inside the GEMM */
        ll_rmsnorm_forward(ws->xn, ws->x, ly->ffn_norm, T, D, p->rms_eps);
        ll_linear_forward(ws->g, ws->xn, ly->w_gate, NULL, T, D, F, 0);
        ll_linear_forward(ws->u, ws->xn, ly->w_up, NULL, T, D, F, 0);
        ll_swiglu_forward(ws->g, ws->g, ws->u, T * F);
        ll_linear_forward(ws->x, ws->g, ly->w_down, NULL, T, F, D, 1);
    }
    float *hidden = out && out->hidden ? out->hidden : ws->xn;
    ll_rmsnorm_forward(hidden, ws->x, m->final_norm, T, D, p->rms_eps);
    if (out && out->pooled) pool_hidden(out->pooled, hidden, b->seq_start, b->n_seqs, D, out->pool);
    if (out && out->logits_last) {
        /* Gather the last row of each sequence, then one GEMM against the head. */
        float *last = ws->att; /* free now; n_seqs * D <= T * QD only if QD >= D, so use x */
        if (QD < D) last = ws->x;
        for (int s = 0; s < b->n_seqs; s++)
            memcpy(last + (size_t)s * D, hidden + (size_t)(b->seq_start[s + 1] - 1) * D, D * sizeof(float));
        ll_linear_forward(out->logits_last, last, m->lm_head, NULL, (size_t)b->n_seqs, D, (size_t)p->vocab_size, 0);
    }
    return LL_OK;
}
