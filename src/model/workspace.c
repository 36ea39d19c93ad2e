/* The inference workspace: planned by one carving function (core/carve.h). */
#include "model/workspace.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/carve.h"
#include "kernels/kernels.h"
#include "model/lora.h"
#include "model/model.h"

/* The sizes one workspace is carved for (every field in elements). */
typedef struct workspace_dims {
    size_t tokens, seqs, len, lora_r;     /* T, S, N, r */
    size_t D, QD, KVD, F, half, in_max;   /* model widths; half = hd / 2 */
    size_t scratch;                       /* attention scratch floats */
    size_t local_half, post_D;            /* half with a sliding layers' RoPE base, D with post-norms; else 0 */
} workspace_dims;

/* Every buffer of ll_workspace, in this order (the layout results were made with). */
static void carve_workspace(ll_carver *cv, void *fields, const void *ctx) {
    ll_workspace *ws = fields;
    const workspace_dims *d = ctx;
    const size_t T = d->tokens;
    ws->x = ll_carve_f32(cv, T * d->D);
    ws->xn = ll_carve_f32(cv, T * d->D);
    ws->q = ll_carve_f32(cv, T * d->QD);
    ws->att = ll_carve_f32(cv, T * d->QD);
    ws->k = ll_carve_f32(cv, T * d->KVD);
    ws->v = ll_carve_f32(cv, T * d->KVD);
    ws->g = ll_carve_f32(cv, T * d->F);
    ws->u = ll_carve_f32(cv, T * d->F);
    ws->scratch = ll_carve_f32(cv, d->scratch);
    ws->rope_cos = ll_carve_f32(cv, d->len * d->half);
    ws->rope_sin = ll_carve_f32(cv, d->len * d->half);
    ws->lora_xd = ll_carve_f32(cv, d->lora_r ? T * d->in_max : 0);
    ws->lora_xa = ll_carve_f32(cv, T * d->lora_r);
    ws->pos = ll_carve_i32(cv, T);
    ws->last_rows = ll_carve_f32(cv, d->seqs * d->D);
    ws->rope_cos_local = ll_carve_f32(cv, d->len * d->local_half);
    ws->rope_sin_local = ll_carve_f32(cv, d->len * d->local_half);
    ws->y = ll_carve_f32(cv, T * d->post_D);
}

void ll_workspace_free(ll_workspace *ws) {
    free(ws->block);
    memset(ws, 0, sizeof *ws);
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

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
    if (tokens > ws->cap_tokens) tokens = max_size(tokens, 2 * ws->cap_tokens);
    const ll_config *p = &m->cfg;
    workspace_dims d = {.tokens = max_size(tokens, ws->cap_tokens), .seqs = max_size(seqs, ws->cap_seqs),
                        .len = max_size(max_len, ws->cap_len), .lora_r = max_size(lora_r, ws->cap_lora_r),
                        .D = (size_t)p->dim, .QD = (size_t)p->n_heads * p->head_dim,
                        .KVD = (size_t)p->n_kv_heads * p->head_dim, .F = (size_t)p->hidden_dim,
                        .half = (size_t)p->head_dim / 2};
    d.in_max = ll_lora_max_in(&m->cfg);
    d.scratch = ll_attention_scratch_floats(d.len);
    d.local_half = m->rope_inv_freq_local ? d.half : 0;
    d.post_D = ll_model_post_norms(m) ? d.D : 0;
    char what[64];
    snprintf(what, sizeof what, "the forward workspace (%zu tokens)", d.tokens);
    void *old = ws->block;
    int rc = ll_carve_alloc(&ws->block, NULL, carve_workspace, ws, sizeof *ws, &d, what, err);
    if (rc) return rc;
    free(old);
    ws->cap_tokens = d.tokens;
    ws->cap_seqs = d.seqs;
    ws->cap_len = d.len;
    ws->cap_lora_r = d.lora_r;
    ws->cap_threads = threads;
    ll_rope_tables(ws->rope_cos, ws->rope_sin, m->rope_inv_freq, (int)d.half, d.len);
    if (m->rope_inv_freq_local) ll_rope_tables(ws->rope_cos_local, ws->rope_sin_local, m->rope_inv_freq_local,
                                              (int)d.half, d.len);
    return LL_OK;
}
