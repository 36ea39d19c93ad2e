/* A sequence or token classifier on a frozen base: LoRA adapters, then
 *  - sequence task (LS-LLaMA): pooling of the final-norm hidden states, a
 *    Linear(hidden, K) "score" head, single-label cross-entropy or
 *    multi-label BCE, as transformers' *ForSequenceClassification;
 *  - token task (NER): dropout on every token's hidden state, a Linear(hidden,
 *    K) "score" head with bias on every token, cross-entropy over the tokens
 *    whose label is not LL_IGNORE_LABEL (-100), as
 *    transformers' LlamaForTokenClassification. All trainable tensors live in one contiguous parameter array (and
 * one gradient array of the same layout), so the optimiser, clipping and
 * checkpoints treat them as one vector. */
#ifndef LL_TRAIN_CLASSIFIER_H
#define LL_TRAIN_CLASSIFIER_H

#include <stdint.h>

#include "lsllama.h"
#include "lsllama_train.h"
#include "model/lora.h"
#include "model/pass.h"

/* ll_classifier_config: include/lsllama_train.h. */

typedef struct ll_param_view {
    char name[96];  /* e.g. "layers.3.q_proj.lora_A", "score.weight" */
    float *data, *grad;
    int64_t rows, cols; /* cols = 1 for vectors */
} ll_param_view;

typedef struct ll_classifier {
    ll_model *base; /* borrowed, never changed */
    /* The model the passes run: base, or with full fine-tuning (cfg.full_targets) trained, a copy of base's
     * struct whose trained weights are f32 matrices over their parameters (the rest shared with base). */
    ll_model *model, *trained;
    /* full fine-tuning: where backward adds the trained tensors' gradients (into the gradient array); the two
     * pointer arrays it names ([n_layers * LL_LORA_N_TARGETS] and [n_layers * 2]) are owned */
    ll_full_grads full;
    float **weight_grads, **norm_grads;
    ll_classifier_config cfg;
    ll_lora lora;
    size_t n_params;
    float *params, *grads;
    float *head_w, *head_b, *dhead_w, *dhead_b;
    ll_param_view *views;
    size_t n_views;
    ll_acts acts;
    /* head buffers, planned for cap_tokens / cap_seqs */
    size_t cap_tokens, cap_seqs;
    /* pooled/dpooled: the head's input, [n_seqs, D] pooled states (sequence
     * task) or [n_tokens, D] dropped-out hidden states (token task, while
     * dropout applies; else the head reads hidden); logits
     * [n_seqs or n_tokens, K] */
    float *hidden, *dhidden, *pooled, *dpooled, *logits, *dlogits;
    int32_t *argmax; /* max pooling: source row per (seq, dim) */
    void *head_block; /* the one allocation hidden .. argmax point into */
} ll_classifier;

/* ll_classifier_create / ll_classifier_free: include/lsllama_train.h. */
const ll_param_view *ll_classifier_find_param(const ll_classifier *c, const char *name);

/* Activation checkpointing for the training steps from now on (ll_acts.recompute:
 * less memory, about one more forward pass of work, the same results bit for
 * bit); the next reserve or training step re-plans the activations. */
void ll_classifier_set_recompute(ll_classifier *c, int on);

/* Plan every buffer for batches up to max_tokens / max_seqs (call once). */
int ll_classifier_reserve(ll_classifier *c, size_t max_tokens, size_t max_seqs, ll_error *err);

/* Logits [n_seqs, K] (token task: [n_tokens, K]); training enables dropout
 * (seed picks the masks). */
int ll_classifier_forward(ll_classifier *c, const ll_batch *b, int training, uint64_t seed, float *logits,
                          ll_error *err);

/* Rows of the logits for batch b: n_seqs, or n_tokens for a token task. */
size_t ll_classifier_logit_rows(const ll_classifier *c, const ll_batch *b);

/* Forward + loss + backward; gradients are ADDED into c->grads (zero them
 * per optimiser step; accumulate across micro-batches). labels: int32 class
 * ids [n] (single-label), float targets [n, K] (multi-label), or for a token
 * task int32 ids [n_tokens] with LL_IGNORE_LABEL (-100) for tokens outside
 * the loss (the mean runs over the others; none: loss 0). loss_scale
 * multiplies the mean loss before backward (1/accumulation steps). Returns
 * the mean loss in *loss, logits in c->logits. */
int ll_classifier_train_step(ll_classifier *c, const ll_batch *b, const int32_t *labels, const float *targets,
                             uint64_t seed, float loss_scale, float *loss, ll_error *err);

#endif
