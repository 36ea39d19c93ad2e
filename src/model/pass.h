/* One implementation of the transformer stack for inference and training.
 * Training stores, per layer, the residual input, q and k (after RoPE), v,
 * the attention output and the residual after attention. The FFN
 * pre-activations (gate and up projections, 2 x T x FFN floats per layer)
 * are stored too while they fit LL_FFN_STORE_MAX_BYTES; for larger batches
 * the backward pass recomputes them (two extra GEMMs per layer, about 20% of
 * a training step). Both paths compute the same values bit for bit.
 *
 * Activation checkpointing (ll_acts.recompute): only each layer's input is
 * kept for every layer; q, k, v, the attention output and the residual after
 * attention are kept for one layer, and the backward pass recomputes layer l's
 * attention half from its input (same kernels, same arguments, same dropout
 * masks) before it runs layer l's backward, the FFN pre-activations as above.
 * About one extra forward pass of work; every result bit-identical. */
#ifndef LL_MODEL_PASS_H
#define LL_MODEL_PASS_H

#include "model/lora.h"
#include "model/model.h"

/* Everything a backward pass reads, owned by the forward pass that wrote it
 * (llm.c's ActivationTensors): other passes through the same model between
 * a training forward and its backward (an evaluation, a generation) touch
 * only the model's workspace, never these. Shapes: C = cap_tokens, L =
 * n_layers, D = dim, QD = n_heads * hd, KVD = n_kv_heads * hd, F =
 * hidden_dim, r = LoRA rank, in_max = max(D, QD, F); layer l of an [L, C, w]
 * buffer starts at l * C * w, token t of a layer at t * w. S = layer_slots:
 * L, or 1 with recompute (then every layer uses slot 0). */
typedef struct ll_acts {
    size_t cap_tokens; /* C: tokens per batch the buffers hold */
    int n_layers;      /* L */
    int cap_threads;   /* threads the attention scratch has slices for */
    int recompute;     /* set by the owner before a forward pass: keep only x_in per layer, recompute the rest in
                          backward (a change re-carves at the next reserve, dropping what was stored) */
    int carved_recompute; /* the layout carved: without (0) or with (1) recompute */
    int layer_slots;   /* S: layers the q .. x_mid buffers hold as carved (L; 1 with recompute) */
    int slot_layer;    /* with S = 1: the layer whose values slot 0 holds now (-1: none) */
    int last_rows;     /* the stored forward pass had ll_lora_pass.last_rows: x_final and the last layer's att,
                          x_mid and FFN pre-activations hold n_seqs compacted rows (sequence s's last token at s) */
    size_t bytes;      /* the whole carve: every buffer below */
    /* stored by the forward pass */
    float *x_in;           /* [L, C, D] residual entering each layer */
    float *q, *k, *v;      /* [S, C, QD], [S, C, KVD], [S, C, KVD]; q and k after RoPE */
    float *att;            /* [S, C, QD] attention output (o_proj input) */
    float *x_mid;          /* [S, C, D] residual after attention */
    float *x_final;        /* [C, D] residual before the final norm */
    float *ffn_g, *ffn_u;  /* [L, C, F] gate / up pre-activations; NULL: backward recomputes them (always
                              with recompute) */
    /* backward temporaries, one layer at a time */
    float *dx, *dxn;       /* [C, D] gradient of the residual; of a normed block input */
    float *dq, *dk, *dv;   /* [C, QD], [C, KVD], [C, KVD] */
    float *datt;           /* [C, QD] */
    float *dg, *du;        /* [C, F] */
    float *xn;             /* [C, D] a block's normed input, recomputed */
    float *g, *u, *h;      /* [C, F] recomputed gate / up (when not stored); GLU output */
    float *lora_xd;        /* [C, in_max] a LoRA input after dropout; NULL without LoRA */
    float *lora_tmp;       /* [C, in_max] (dxa A) before the dropout mask; NULL without LoRA */
    float *lora_xa, *lora_dxa; /* [C, r] A xd and its gradient; NULL without LoRA */
    float *dh;             /* [C, F] gradient of the GLU output */
    float *attn_scratch;   /* ll_attention_scratch_floats(C) at cap_threads threads */
    /* the batch's geometry, written by the forward pass */
    float *rope_cos, *rope_sin; /* [C, hd/2] RoPE tables for positions 0 .. C-1 (no sequence is longer) */
    int32_t *pos;          /* [C] position of each token in its sequence */
    float *row_scale;      /* [C] scratch: an RMSNorm's 1 / rms per row (the norm weights' gradients) */
    /* Gemma 3 (empty otherwise) */
    float *q_raw, *k_raw;  /* [S, C, QD], [S, C, KVD] q and k before their head norms (ll_model_qk_norms) */
    float *o_raw;          /* [S, C, D] the o-projection's output before its post-norm (ll_model_post_norms) */
    float *y, *dy;         /* [C, D] a block's output before its post-norm, recomputed; its gradient */
    float *rope_cos_local, *rope_sin_local; /* [C, hd/2] the sliding layers' RoPE tables (own base) */
    void *block;           /* the one allocation all of the above point into */
} ll_acts;

/* Store the FFN pre-activations while they take at most this much (SmolLM2-135M: up to 2,730 tokens). */
#define LL_FFN_STORE_MAX_BYTES ((size_t)1 << 30)

/* Plan activation memory for up to max_tokens tokens at the current thread
 * count, in the layout a->recompute asks for (no-op if it fits; growing or a
 * changed layout drops what was stored). a->bytes is then the carve's size. */
int ll_acts_reserve(ll_acts *a, const ll_model *m, const ll_lora *lora, size_t max_tokens, ll_error *err);

/* Bytes ll_acts_reserve would carve for max_tokens tokens at the current
 * thread count, with (recompute != 0) or without recompute; allocates nothing. */
size_t ll_acts_bytes(const ll_model *m, const ll_lora *lora, size_t max_tokens, int recompute);
void ll_acts_free(ll_acts *a);

/* Forward through embeddings, all layers and the final norm into hidden
 * [T, D] (hidden == NULL: into the model's workspace, m->ws.xn).
 * acts == NULL: inference (nothing stored).
 *
 * lp->last_rows (a causal last layer only, else LL_ERR_ARG): the last layer
 * computes k and v (and q, inside the fused product) for every token, but
 * attention, the o-projection, the residual, the FFN and the final norm only
 * for each sequence's last token, and hidden gets [n_seqs, D] (row s: the
 * last token of sequence s), bit for bit those rows of the full pass: the
 * same kernels per row, each row with its own LoRA dropout mask, the LoRA
 * factors' gradients summed over the same K slices. Last-token pooling
 * reads nothing else. */
int ll_stack_forward(ll_model *m, const ll_batch *b, int bidirectional_from, const ll_lora_pass *lp, ll_acts *acts,
                     float *hidden, ll_error *err);

/* Backward from dhidden [T, D] ([n_seqs, D] with lp->last_rows; the
 * gradient of the final-norm output) to the
 * LoRA gradients (added into lora->modules[*].dA/dB) and, for full
 * fine-tuning, the base weights' (added into lp->weight_grads). Needs the acts of the
 * matching ll_stack_forward call (same batch, options and lp), and no more
 * threads than that call had; reads nothing else of it, so other passes
 * through m may run in between. */
int ll_stack_backward(ll_model *m, const ll_batch *b, int bidirectional_from, const ll_lora_pass *lp, ll_acts *acts,
                      const float *dhidden, ll_error *err);

#endif
