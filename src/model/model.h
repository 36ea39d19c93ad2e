/* Internal model representation: f32 weights in one allocation, HF layout
 * (q/k rows in rotate-half order), plus a forward workspace sized for the
 * largest batch seen so far (model/workspace.h). */
#ifndef LL_MODEL_MODEL_H
#define LL_MODEL_MODEL_H

#include <stddef.h>

#include "lsllama.h"
#include "model/workspace.h"

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

#endif
