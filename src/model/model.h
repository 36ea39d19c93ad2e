/* Internal model representation: the weight matrices as ll_matrix in the
 * precision chosen at load (ll_base_precision: by default the checkpoint's
 * own type, pointing into its file mapping where possible), vectors (norms,
 * biases, RoPE frequencies) as f32, HF layout (q/k rows in rotate-half
 * order), plus a forward workspace sized for the largest batch seen so far
 * (model/workspace.h). */
#ifndef LL_MODEL_MODEL_H
#define LL_MODEL_MODEL_H

#include <stddef.h>

#include "kernels/kernels.h"
#include "lsllama.h"
#include "model/workspace.h"

typedef struct ll_layer {
    float *attn_norm;         /* [dim] */
    ll_matrix wq, wk, wv, wo; /* [nh*hd, dim], [nkv*hd, dim], [nkv*hd, dim], [dim, nh*hd] */
    float *bq, *bk, *bv;      /* [nh*hd], [nkv*hd], [nkv*hd]; NULL unless qkv_bias */
    float *bo;                /* [dim]; NULL unless o_bias */
    float *ffn_norm;          /* [dim] */
    ll_matrix w_gate, w_up;   /* [hidden, dim] */
    ll_matrix w_down;         /* [dim, hidden] */
    float *b_gate, *b_up, *b_down; /* [hidden], [hidden], [dim]; NULL unless mlp_bias */
    /* Gemma 3 (NULL otherwise); every norm weight here is the multiplier, (1 + w) of transformers' Gemma3RMSNorm */
    float *q_norm, *k_norm;   /* [head_dim] each head of q / k normed before RoPE */
    float *attn_post_norm;    /* [dim] the attention output normed before the residual add */
    float *ffn_post_norm;     /* [dim] the MLP output normed before the residual add */
} ll_layer;

/* The matrix of layer ly in role r (LL_ROLE_Q .. LL_ROLE_DOWN), or NULL for a
 * role that is not one of a layer's matrices. */
ll_matrix *ll_layer_matrix(ll_layer *ly, int role);

struct ll_arch;
struct ll_checkpoint;

/* One tensor of the model in load order (the order of the f32 layout older
 * versions kept in one allocation): what ll_model_visit_samples walks. */
typedef struct ll_model_entry {
    const float *vec;      /* a vector, or NULL */
    const ll_matrix *mat;  /* a matrix, or NULL */
    size_t n;              /* elements */
} ll_model_entry;

struct ll_model {
    ll_config cfg;
    const struct ll_arch *arch; /* its row of model/arch.h (built-in, or a caller's that outlives the model) */
    char format[16];
    char *path;
    ll_base_precision precision;
    ll_compute compute; /* the products' arithmetic: every matrix's ll_matrix.compute */
    struct ll_checkpoint *ckpt; /* kept open: matrices may point into its file mappings */
    void *owned;       /* one allocation: the vectors and every matrix not read from a mapping */
    size_t owned_bytes;
    size_t resident[LL_DTYPE_COUNT], mapped[LL_DTYPE_COUNT]; /* matrix bytes per type; of them mapped */
    ll_model_entry *entries; /* [n_entries], load order */
    size_t n_entries;
    ll_matrix tok_emb;   /* [vocab, dim] */
    ll_layer *layers;    /* [n_layers] */
    float *final_norm;   /* [dim] */
    ll_matrix lm_head;   /* [vocab, dim], data NULL unless loaded; may equal tok_emb (tied) */
    float *rope_inv_freq; /* [hd/2] */
    float *rope_inv_freq_local; /* [hd/2] of the sliding layers (cfg.rope_local_theta > 0), else NULL */
    float embed_scale;    /* token embeddings multiplied by it (Gemma: sqrt(dim) as a float), 1 otherwise */
    ll_workspace ws;
};

/* 1 if the layers norm their attention and MLP outputs (ll_layer.attn_post_norm, Gemma 3). */
int ll_model_post_norms(const ll_model *m);
/* 1 if the layers norm each query and key head (ll_layer.q_norm, Gemma 3). */
int ll_model_qk_norms(const ll_model *m);

/* ll_model_load, knowing the rows of extra_archs (NULL-terminated, may be
 * NULL) besides the built-in architectures: how a caller (a test, a program
 * with its own model family) adds an architecture without global state. The
 * rows must outlive the model. */
int ll_model_load_archs(ll_model **out, const char *path, const ll_load_options *opt,
                        const struct ll_arch *const *extra_archs, ll_error *err);

/* The load's plan without the load: every tensor checked (presence, shape,
 * type), the memory sized per type (ll_model_resident, m->owned_bytes), no
 * weight read or converted. The result holds no weights: only
 * ll_model_config, ll_model_resident and ll_model_free may be called on it. */
int ll_model_plan(ll_model **out, const char *path, const ll_load_options *opt, ll_error *err);

/* Calls fn(ctx, value) for elements every, 2 every, ... of the weights laid
 * end to end in load order (the f32 layout of older versions, so that a
 * fingerprint of the base stays the same across versions and precisions
 * that give the same values). */
void ll_model_visit_samples(const ll_model *m, size_t every, void (*fn)(void *ctx, float v), void *ctx);

#endif
