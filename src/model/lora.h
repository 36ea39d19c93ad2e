/* LoRA adapters on the frozen base, as PEFT computes them:
 *   y = W x + scale * B A dropout(x),  scale = alpha / r (rsLoRA: alpha / sqrt(r)),
 * with A [r, in] and B [out, r] per targeted module and layer. Dropout masks
 * come from a counter-based hash of (seed, layer, module, element), so the
 * backward pass regenerates them instead of storing them, and results do not
 * depend on the thread count. */
#ifndef LL_MODEL_LORA_H
#define LL_MODEL_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "model/arch.h"

enum {
    LL_LORA_Q = 0, LL_LORA_K, LL_LORA_V, LL_LORA_O, LL_LORA_GATE, LL_LORA_UP, LL_LORA_DOWN, LL_LORA_N_TARGETS
};

/* The modules LoRA can adapt, indexed by the enum above: PEFT's module name
 * (what target_modules lists: ll_lora_target_names[t], a plain string array
 * since the CLI and tests list and match it), its parent module in PEFT's key
 * ("...layers.3.self_attn.q_proj.lora_A.weight"), the base weight it adapts,
 * and its input and output width from the config (A is [r, in], B [out, r]).
 * Every user of LoRA shapes (classifier, adapter load/save, merge) reads this
 * one table. */
extern const char *const ll_lora_target_names[LL_LORA_N_TARGETS];

typedef struct ll_lora_target {
    const char *parent; /* "self_attn" or "mlp" */
    ll_role weight;     /* LL_ROLE_Q: the [out, in] weight W in y = W x + scale B A x */
    ll_dim in, out;
} ll_lora_target;

extern const ll_lora_target ll_lora_targets[LL_LORA_N_TARGETS];

/* in and out of target t for config p. */
void ll_lora_target_dims(const ll_config *p, int t, size_t *in, size_t *out);
/* The widest LoRA input of any target for config p (the LoRA scratch's row width). */
size_t ll_lora_max_in(const ll_config *p);

typedef struct ll_lora_module {
    float *A, *B;   /* parameters, NULL when the module is not targeted */
    float *dA, *dB; /* gradients (same layout) */
} ll_lora_module;

typedef struct ll_lora {
    int r;
    float alpha, scale, dropout;
    unsigned targets; /* bit i set: module i adapted */
    int n_layers;
    ll_lora_module *modules; /* [n_layers * LL_LORA_N_TARGETS] */
} ll_lora;

static inline ll_lora_module *ll_lora_at(const ll_lora *l, int layer, int target) {
    return &l->modules[(size_t)layer * LL_LORA_N_TARGETS + target];
}

/* Full fine-tuning: where backward adds the gradient of each trained base
 * tensor; a NULL pointer (or entry) leaves that tensor frozen. */
typedef struct ll_full_grads {
    float *const *weights; /* [n_layers * LL_LORA_N_TARGETS] (indexed as ll_lora_at): dW [out, in] += dy^T x */
    float *const *norms;   /* [n_layers * 2]: input_layernorm, post_attention_layernorm weights [dim] */
    float *final_norm;     /* [dim] */
    float *embeddings;     /* [vocab, dim]: rows of the batch's tokens */
} ll_full_grads;

/* Dropout state for one forward/backward pass, and its one row option. */
typedef struct ll_lora_pass {
    const ll_lora *lora; /* NULL: no adapters */
    int training;        /* dropout active */
    uint64_t seed;       /* per step */
    int last_rows;       /* the last layer for each sequence's last token alone (model/pass.h) */
    const ll_full_grads *full; /* full fine-tuning's gradients, or NULL (a frozen base) */
} ll_lora_pass;

#endif
