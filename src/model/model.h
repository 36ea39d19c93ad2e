/* Internal model representation: f32 weights in one allocation, HF layout
 * (q/k rows in rotate-half order), plus a forward workspace sized for the
 * largest batch seen so far. */
#ifndef LL_MODEL_MODEL_H
#define LL_MODEL_MODEL_H

#include <stddef.h>

#include "lsllama.h"

typedef struct ll_layer {
    float *attn_norm;         /* [dim] */
    float *wq, *wk, *wv, *wo; /* [nh*hd, dim], [nkv*hd, dim], [nkv*hd, dim], [dim, nh*hd] */
    float *bq, *bk, *bv;      /* [nh*hd], [nkv*hd], [nkv*hd]; NULL unless qkv_bias */
    float *bo;                /* [dim]; NULL unless o_bias */
    float *ffn_norm;          /* [dim] */
    float *w_gate, *w_up;     /* [hidden, dim] */
    float *w_down;            /* [dim, hidden] */
    float *b_gate, *b_up, *b_down; /* [hidden], [hidden], [dim]; NULL unless mlp_bias */
} ll_layer;

typedef struct ll_workspace {
    size_t cap_tokens, cap_seqs, cap_len;
    float *x, *xn, *q, *k, *v, *att, *g, *u; /* activations for one layer */
    float *scratch;                          /* attention (ll_attention_scratch_floats) */
    float *lora_xd, *lora_xa;                /* LoRA input after dropout [T, max in], A x [T, r] */
    size_t cap_lora_r;
    int cap_threads;                         /* the thread count the scratch was sized for */
    int32_t *pos;
    float *rope_cos, *rope_sin;              /* [cap_len, hd/2] */
    void *block;                             /* the one allocation */
} ll_workspace;

struct ll_arch;

struct ll_model {
    ll_config cfg;
    const struct ll_arch *arch; /* its row of model/arch.h (built-in, or a caller's that outlives the model) */
    char format[16];
    char *path;
    float *weights; /* one allocation holding every tensor below */
    size_t n_weight_floats;
    float *tok_emb;    /* [vocab, dim] */
    ll_layer *layers;  /* [n_layers] */
    float *final_norm; /* [dim] */
    float *lm_head;    /* [vocab, dim], NULL unless loaded; may alias tok_emb */
    float *rope_inv_freq; /* [hd/2] */
    ll_workspace ws;
};

/* ll_model_load, knowing the rows of extra_archs (NULL-terminated, may be
 * NULL) besides the built-in architectures: how a caller (a test, a program
 * with its own model family) adds an architecture without global state. The
 * rows must outlive the model. */
int ll_model_load_archs(ll_model **out, const char *path, const ll_load_options *opt,
                        const struct ll_arch *const *extra_archs, ll_error *err);

/* Grow the workspace to hold a batch (no-op when it already fits). */
int ll_workspace_reserve(ll_model *m, size_t tokens, size_t seqs, size_t max_len, size_t lora_r, ll_error *err);
void ll_workspace_free(ll_workspace *ws);

#endif
