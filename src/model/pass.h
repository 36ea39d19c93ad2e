/* One implementation of the transformer stack for inference and training.
 * Training stores, per layer, the residual input, q and k (after RoPE), v,
 * the attention output and the residual after attention. The FFN
 * pre-activations (gate and up projections, 2 x T x FFN floats per layer)
 * are stored too while they fit LL_FFN_STORE_MAX_BYTES; for larger batches
 * the backward pass recomputes them (two extra GEMMs per layer, about 20% of
 * a training step). Both paths compute the same values bit for bit. */
#ifndef LL_MODEL_PASS_H
#define LL_MODEL_PASS_H

#include "model/lora.h"
#include "model/model.h"

typedef struct ll_acts {
    size_t cap_tokens;
    int n_layers;
    /* stored activations, layer l at offset l * cap_tokens * width */
    float *x_in, *q, *k, *v, *att, *x_mid;
    float *ffn_g, *ffn_u; /* gate / up pre-activations per layer [L, cap, F]; NULL: recomputed */
    float *x_final; /* residual before the final norm [T, D] */
    /* backward temporaries */
    float *dx, *dxn, *dq, *dk, *dv, *datt, *dg, *du, *xn, *g, *u, *h;
    float *lora_xd, *lora_tmp, *lora_xa, *lora_dxa;
    void *block;
} ll_acts;

/* Store the FFN pre-activations while they take at most this much (SmolLM2-135M: up to 2,730 tokens). */
#define LL_FFN_STORE_MAX_BYTES ((size_t)1 << 30)

/* Plan activation memory for up to max_tokens tokens (no-op if it fits). */
int ll_acts_reserve(ll_acts *a, const ll_model *m, const ll_lora *lora, size_t max_tokens, ll_error *err);
void ll_acts_free(ll_acts *a);

/* Forward through embeddings, all layers and the final norm into hidden
 * [T, D] (hidden == NULL: into the model's workspace, m->ws.xn).
 * acts == NULL: inference (nothing stored). */
int ll_stack_forward(ll_model *m, const ll_batch *b, int bidirectional_from, const ll_lora_pass *lp, ll_acts *acts,
                     float *hidden, ll_error *err);

/* Backward from dhidden [T, D] (gradient of the final-norm output) to the
 * LoRA gradients (added into lora->modules[*].dA/dB). Needs the acts of the
 * matching ll_stack_forward call (same batch, options and lp). */
int ll_stack_backward(ll_model *m, const ll_batch *b, int bidirectional_from, const ll_lora_pass *lp, ll_acts *acts,
                      const float *dhidden, ll_error *err);

#endif
