/* The public forward pass over a packed batch: every matmul sees
 * [total_tokens, dim], attention runs per sequence, no padding anywhere.
 * The stack itself is model/pass.c; this adds pooling and the LM head. */
#include <string.h>

#include "core/error.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "model/pass.h"

int ll_forward(ll_model *m, const ll_batch *b, const ll_forward_options *opt, ll_forward_outputs *out,
               ll_error *err) {
    if (out && out->logits_last && !m->lm_head.data)
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
        /* Gather the last row of each sequence [n_seqs, D], then one GEMM against the head. */
        float *last = m->ws.last_rows;
        for (int s = 0; s < b->n_seqs; s++)
            memcpy(last + (size_t)s * D, hidden + (size_t)(b->seq_start[s + 1] - 1) * D, D * sizeof(float));
        ll_linear_forward(out->logits_last, last, &m->lm_head, NULL, (size_t)b->n_seqs, D, (size_t)p->vocab_size, 0);
    }
    return LL_OK;
}
