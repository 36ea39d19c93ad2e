/* The model's inference workspace: the buffers one forward pass works in,
 * sized for the largest batch seen so far and owned by the model. Nothing a
 * backward pass reads lives here (that is the activations' own memory,
 * ll_acts in model/pass.h): any later pass may overwrite all of it.
 * Shapes: T = cap_tokens, S = cap_seqs, N = cap_len, hd = head_dim,
 * QD = n_heads * hd, KVD = n_kv_heads * hd, F = hidden_dim, r = cap_lora_r,
 * in_max = max(D, QD, F). */
#ifndef LL_MODEL_WORKSPACE_H
#define LL_MODEL_WORKSPACE_H

#include <stddef.h>
#include <stdint.h>

#include "lsllama.h"

typedef struct ll_workspace {
    size_t cap_tokens, cap_seqs, cap_len; /* T, S, N: tokens per batch, sequences, tokens per sequence */
    size_t cap_lora_r;                    /* r: LoRA rank the LoRA buffers hold (0: none) */
    int cap_threads;                      /* the thread count the attention scratch has slices for */
    float *x;                             /* [T, D] residual stream */
    float *xn;                            /* [T, D] normed input of the current block */
    float *q, *att;                       /* [T, QD] queries after RoPE; attention output */
    float *k, *v;                         /* [T, KVD] keys after RoPE; values */
    float *g, *u;                         /* [T, F] gate (then GLU output), up pre-activations */
    float *scratch;                       /* attention: ll_attention_scratch_floats(N) at cap_threads */
    float *rope_cos, *rope_sin;           /* [N, hd/2] RoPE tables for positions 0 .. N-1 */
    float *lora_xd;                       /* [T, in_max] LoRA input after dropout; NULL when r = 0 */
    float *lora_xa;                       /* [T, r] A x; NULL when r = 0 */
    int32_t *pos;                         /* [T] position of each token in its sequence */
    float *last_rows;                     /* [S, D] ll_forward: each sequence's last hidden row */
    float *rope_cos_local, *rope_sin_local; /* [N, hd/2] the sliding layers' tables; NULL without their own base */
    float *y;                             /* [T, D] a block's output before its post-norm; NULL without post-norms */
    void *block;                          /* the one allocation all of the above point into */
} ll_workspace;

/* Grow m's workspace to hold a batch of `tokens` tokens in `seqs` sequences
 * of at most max_len tokens, with LoRA rank lora_r (0: none), for the
 * current thread count; a no-op when it already fits. Grows geometrically
 * in tokens. On failure the old workspace is kept. */
int ll_workspace_reserve(ll_model *m, size_t tokens, size_t seqs, size_t max_len, size_t lora_r, ll_error *err);
void ll_workspace_free(ll_workspace *ws);

#endif
