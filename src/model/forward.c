/* Forward pass over a packed batch: every matmul sees [total_tokens, dim],
 * attention runs per sequence, no padding anywhere. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "model/pass.h"

void ll_workspace_free(ll_workspace *ws) {
    free(ws->block);
    memset(ws, 0, sizeof *ws);
}

int ll_workspace_reserve(ll_model *m, size_t tokens, size_t seqs, size_t max_len, size_t lora_r, ll_error *err) {
    ll_workspace *ws = &m->ws;
    /* the attention scratch has a slice per thread: more threads than it was
     * sized for (omp_set_num_threads after a pass) need a new one */
    const int threads = omp_get_max_threads();
    if (tokens <= ws->cap_tokens && seqs <= ws->cap_seqs && max_len <= ws->cap_len && lora_r <= ws->cap_lora_r &&
        threads <= ws->cap_threads)
        return LL_OK;
    /* Grow geometrically so a sequence of slightly larger batches does not
     * reallocate every time. */
    tokens = tokens > ws->cap_tokens ? (tokens > 2 * ws->cap_tokens ? tokens : 2 * ws->cap_tokens) : ws->cap_tokens;
    seqs = seqs > ws->cap_seqs ? seqs : ws->cap_seqs;
    max_len = max_len > ws->cap_len ? max_len : ws->cap_len;
    lora_r = lora_r > ws->cap_lora_r ? lora_r : ws->cap_lora_r;
    const ll_config *p = &m->cfg;
    const size_t D = p->dim, QD = (size_t)p->n_heads * p->head_dim, KVD = (size_t)p->n_kv_heads * p->head_dim,
                 F = p->hidden_dim, half = p->head_dim / 2;
    const size_t in_max = D > QD ? (D > F ? D : F) : (QD > F ? QD : F);
    const size_t lora_floats = lora_r ? tokens * (in_max + lora_r) : 0;
    const size_t floats = tokens * (2 * D + 2 * QD + 2 * KVD + 2 * F) + ll_attention_scratch_floats(max_len) +
                          2 * max_len * half + lora_floats;
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
    ws->scratch = f, f += ll_attention_scratch_floats(max_len);
    ws->rope_cos = f, f += max_len * half;
    ws->rope_sin = f, f += max_len * half;
    ws->lora_xd = lora_r ? f : NULL, f += lora_r ? tokens * in_max : 0;
    ws->lora_xa = lora_r ? f : NULL, f += lora_r ? tokens * lora_r : 0;
    ws->pos = (int32_t *)f;
    ws->cap_tokens = tokens;
    ws->cap_seqs = seqs;
    ws->cap_len = max_len;
    ws->cap_lora_r = lora_r;
    ws->cap_threads = threads;
    ll_rope_tables(ws->rope_cos, ws->rope_sin, m->rope_inv_freq, (int)half, max_len);
    return LL_OK;
}

int ll_forward(ll_model *m, const ll_batch *b, const ll_forward_options *opt, ll_forward_outputs *out,
               ll_error *err) {
    if (out && out->logits_last && !m->lm_head)
        return ll_fail(err, LL_ERR_ARG, "logits requested but the model was loaded without an LM head");
    if (out && out->pooled && (out->pool < LL_POOL_LAST || out->pool > LL_POOL_FIRST))
        return ll_fail(err, LL_ERR_ARG, "unknown pooling %d", (int)out->pool);
    const ll_config *p = &m->cfg;
    const int bidir_from = opt ? opt->bidirectional_from : p->n_layers;
    float *hidden = out && out->hidden ? out->hidden : NULL; /* NULL: the workspace holds them */
    int rc = ll_stack_forward(m, b, bidir_from, NULL, NULL, hidden, err);
    if (rc) return rc;
    if (!hidden) hidden = m->ws.xn;
    const size_t D = p->dim;
    if (out && out->pooled) ll_pool_forward(out->pooled, NULL, hidden, b->seq_start, b->n_seqs, D, out->pool);
    if (out && out->logits_last) {
        /* Gather the last row of each sequence, then one GEMM against the head. */
        float *last = m->ws.att;
        if ((size_t)p->n_heads * p->head_dim < D) last = m->ws.g;
        for (int s = 0; s < b->n_seqs; s++)
            memcpy(last + (size_t)s * D, hidden + (size_t)(b->seq_start[s + 1] - 1) * D, D * sizeof(float));
        ll_linear_forward(out->logits_last, last, m->lm_head, NULL, (size_t)b->n_seqs, D, (size_t)p->vocab_size, 0);
    }
    return LL_OK;
}
