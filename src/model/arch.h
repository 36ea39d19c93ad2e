/* The architecture table: one row per model family (after llama.cpp's
 * llama-arch.h: names, a tensor-name map, the per-arch options), and one table
 * of LoRA targets. Everything that differs between Llama, Mistral and Qwen2
 * outside the forward pass is data here; checkpoint.c, model.c, classifier.c
 * and adapter.c read the row instead of comparing architecture strings.
 *
 * Adding an architecture is a row (plus its forward differences, if any).
 * The built-in rows are ll_arch_builtin; a caller may supply more rows for one
 * load (ll_model_load_archs, ll_checkpoint_open_archs) without any global
 * registry: the library keeps no global state.
 *
 * Tensor names. The engine names every tensor by its canonical name, Hugging
 * Face Llama's ("model.layers.3.self_attn.q_proj.weight"), whatever the file
 * calls it: a row maps its HF and GGUF names to roles, and a role has one
 * canonical name (ll_arch_canonical_name). */
#ifndef LL_MODEL_ARCH_H
#define LL_MODEL_ARCH_H

#include <stddef.h>

#include "lsllama.h"

/* A size read from the config, for tensor shapes and LoRA dimensions. */
typedef enum ll_dim {
    LL_DIM_NONE = 0,  /* no such dimension (rows of a vector) */
    LL_DIM_MODEL,     /* dim (hidden_size) */
    LL_DIM_Q,         /* n_heads * head_dim */
    LL_DIM_KV,        /* n_kv_heads * head_dim */
    LL_DIM_FF,        /* hidden_dim (intermediate_size) */
    LL_DIM_VOCAB,     /* vocab_size */
    LL_DIM_ROPE_HALF, /* head_dim / 2 (one value per rotated pair) */
    LL_DIM_HEAD,      /* head_dim */
} ll_dim;

/* The value of d for config p (0 for LL_DIM_NONE). */
size_t ll_dim_size(const ll_config *p, ll_dim d);

/* What a tensor is to the model: where the loader puts it. Roles below
 * LL_ROLE_FIRST_LAYER are global, the others exist once per layer. */
typedef enum ll_role {
    LL_ROLE_TOKEN_EMBD = 0, /* [vocab, dim] */
    LL_ROLE_OUTPUT_NORM,    /* [dim] final norm */
    LL_ROLE_OUTPUT,         /* [vocab, dim] LM head, absent when tied */
    LL_ROLE_ROPE_FREQS,     /* [head_dim/2] GGUF per-frequency divisors */
    LL_ROLE_ROPE_BUFFER,    /* RoPE table older transformers saved; recomputed, never read */
    LL_ROLE_FIRST_LAYER,
    LL_ROLE_ATTN_NORM = LL_ROLE_FIRST_LAYER, /* [dim] */
    LL_ROLE_Q,              /* [n_heads*hd, dim] */
    LL_ROLE_K,              /* [n_kv*hd, dim] */
    LL_ROLE_V,              /* [n_kv*hd, dim] */
    LL_ROLE_O,              /* [dim, n_heads*hd] */
    LL_ROLE_FFN_NORM,       /* [dim] */
    LL_ROLE_GATE,           /* [hidden, dim] */
    LL_ROLE_UP,             /* [hidden, dim] */
    LL_ROLE_DOWN,           /* [dim, hidden] */
    LL_ROLE_Q_BIAS,         /* [n_heads*hd] */
    LL_ROLE_K_BIAS,         /* [n_kv*hd] */
    LL_ROLE_V_BIAS,         /* [n_kv*hd] */
    LL_ROLE_O_BIAS,         /* [dim] */
    LL_ROLE_GATE_BIAS,      /* [hidden] */
    LL_ROLE_UP_BIAS,        /* [hidden] */
    LL_ROLE_DOWN_BIAS,      /* [dim] */
    LL_ROLE_LAYER_ROPE_BUFFER, /* per-layer RoPE table of older transformers; never read */
    LL_ROLE_Q_NORM,         /* [head_dim] RMSNorm of each query head before RoPE (Gemma 3) */
    LL_ROLE_K_NORM,         /* [head_dim] RMSNorm of each key head before RoPE (Gemma 3) */
    LL_ROLE_ATTN_POST_NORM, /* [dim] RMSNorm of the attention output before the residual add (Gemma 3) */
    LL_ROLE_FFN_POST_NORM,  /* [dim] RMSNorm of the MLP output before the residual add (Gemma 3) */
    LL_N_ROLES
} ll_role;

/* When a tensor is part of a model with config p. */
typedef enum ll_when {
    LL_WHEN_ALWAYS = 0, /* required */
    LL_WHEN_QKV_BIAS,   /* required iff p->qkv_bias */
    LL_WHEN_O_BIAS,     /* required iff p->o_bias */
    LL_WHEN_MLP_BIAS,   /* required iff p->mlp_bias */
    LL_WHEN_OPTIONAL,   /* read when present and wanted (LM head, rope_freqs) */
    LL_WHEN_IGNORED,    /* accepted and never read (transformers ignores it too) */
} ll_when;

/* One tensor of an architecture: its role, its names in the two formats
 * (NULL: that format has no such tensor), its shape [rows, cols] from the
 * config (rows LL_DIM_NONE: a vector of cols values) and when it is present.
 * Per-layer names are suffixes after the row's layer prefix and the layer
 * index: "self_attn.q_proj.weight" in "model.layers.3.self_attn.q_proj.weight". */
typedef struct ll_arch_tensor {
    ll_role role;
    const char *hf, *gguf;
    ll_dim rows, cols;
    ll_when when;
} ll_arch_tensor;

/* How the config asks for projection biases. */
typedef enum ll_arch_bias {
    LL_BIAS_NONE = 0,    /* none (Mistral) */
    LL_BIAS_QKV_ALWAYS,  /* q/k/v always, o/MLP never (Qwen2) */
    LL_BIAS_CONFIG_KEYS, /* config.json attention_bias (q, k, v, o) and mlp_bias (gate, up, down) (Llama) */
    LL_BIAS_ATTENTION_KEY, /* config.json attention_bias (q, k, v, o); never MLP biases (Gemma 3) */
} ll_arch_bias;

/* How config.json asks for sliding-window attention. */
typedef enum ll_arch_window {
    LL_WINDOW_NONE = 0,       /* never: sliding_window is not read (Llama) */
    LL_WINDOW_EVERY_LAYER,    /* sliding_window (default in hf_defaults, null: none) on every layer (Mistral) */
    LL_WINDOW_IF_ENABLED,     /* only with use_sliding_window, on the layers layer_types or
                               * max_window_layers pick (Qwen2) */
    LL_WINDOW_LAYER_TYPES,    /* on the layers layer_types marks sliding_attention, by default all but every
                               * sliding_window_pattern-th (Gemma 3: 6); bidirectional layers see |q - k| <
                               * sliding_window / 2 + 1 (Gemma3TextConfig with use_bidirectional_attention) */
} ll_arch_window;

/* GGUF order of the q/k rows within a head. */
typedef enum ll_arch_rope_rows {
    LL_ROPE_ROWS_INTERLEAVED = 0, /* pairs (x0,x1),(x2,x3): llama.cpp's llama/mistral; permuted at load */
    LL_ROPE_ROWS_HALVES,          /* rotate-half (NEOX), as Hugging Face: qwen2 */
} ll_arch_rope_rows;

/* transformers' class defaults for keys config.json leaves out. */
typedef struct ll_hf_defaults {
    int vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads;
    int num_key_value_heads; /* 0: the head count (LlamaConfig's None) */
    int max_position_embeddings, bos_token_id, eos_token_id; /* ids -1: none */
    int sliding_window;      /* used by LL_WINDOW_* other than NONE */
    float rms_norm_eps;
    int head_dim;            /* 0: hidden_size / num_attention_heads */
    int tie_word_embeddings;
    const char *hidden_act;  /* NULL: "silu" */
    float query_pre_attn_scalar; /* 0: head_dim */
    float rope_theta;        /* 0: 10000 */
    float rope_local_theta;  /* 0: the sliding layers use rope_theta */
} ll_hf_defaults;

typedef struct ll_arch {
    const char *name;            /* config.json model_type, and ll_config.arch: "llama" */
    const char *gguf_name;       /* GGUF general.architecture (its key prefix); NULL: no GGUF form */
    const char *hf_class_prefix; /* "Llama" in LlamaForSequenceClassification; NULL: no export */
    const char *hf_base_prefix;  /* what a bare base model (LlamaModel) leaves out of its names: "model." */
    const char *hf_layer_prefix; /* per-layer HF names: prefix, index, '.', suffix: "model.layers." */
    const char *gguf_layer_prefix; /* "blk." */
    const ll_arch_tensor *tensors; /* per-layer entries contiguous; loading follows this order */
    size_t n_tensors;
    ll_arch_rope_rows gguf_rope_rows;
    ll_arch_bias bias;
    ll_arch_window window;
    ll_hf_defaults hf_defaults;
    /* Gemma-style layers (0 / NULL for the Llama family) */
    const char *hf_act_key;  /* config.json key of the MLP activation; NULL: "hidden_act" */
    float hf_norm_offset;    /* every RMSNorm multiplies by (offset + weight); HF files store weight, GGUF files
                              * offset + weight (llama.cpp's converter adds it): the model keeps offset + weight */
    int embed_scale_sqrt_dim; /* token embeddings multiplied by sqrt(hidden_size), rounded to float */
    int gguf_sliding_pattern; /* GGUF: every n-th layer global, the others sliding (llama.cpp's fixed pattern) */
    float gguf_rope_local_theta; /* GGUF: RoPE base of the sliding layers (llama.cpp's fixed value) */
    int hf_no_token_class;   /* transformers has no <prefix>ForTokenClassification (Gemma 3) */
} ll_arch;

/* The built-in rows (llama, mistral, qwen2), NULL-terminated. */
extern const ll_arch *const ll_arch_builtin[];

/* The row whose name (config.json model_type) / gguf_name is `name`: built-in
 * rows first, then extra (NULL-terminated, may be NULL); NULL if none. */
const ll_arch *ll_arch_find(const char *name, const ll_arch *const *extra);
const ll_arch *ll_arch_find_gguf(const char *gguf_name, const ll_arch *const *extra);

/* The supported names for an error message, built-in then extra:
 * "llama, mistral and qwen2" (last_sep " and ") or "llama, mistral, qwen2"
 * (last_sep ", "); gguf: list gguf_name (rows without one left out). */
void ll_arch_list_names(char *buf, size_t cap, const ll_arch *const *extra, int gguf, const char *last_sep);

/* The canonical name of a role ("model.layers.<layer>.self_attn.q_proj.weight";
 * layer ignored for global roles). Returns buf. */
const char *ll_arch_canonical_name(ll_role role, int layer, char *buf, size_t cap);

/* The role and layer of a canonical name; 0 if it names no role (layer -1 for
 * global roles). */
int ll_arch_parse_canonical(const char *name, ll_role *role, int *layer);

/* The row's entry for a role; NULL if the row has none. */
const ll_arch_tensor *ll_arch_tensor_of(const ll_arch *a, ll_role role);

/* The entry for a name as stored in a file of the row's format (gguf: 0 HF,
 * 1 GGUF), and its layer (-1 for global entries); NULL if the row has no such
 * name. */
const ll_arch_tensor *ll_arch_match_stored(const ll_arch *a, int gguf, const char *stored, int *layer);

/* The name a role has in a file of the row's format; NULL if that format has
 * no such tensor. Returns buf. */
const char *ll_arch_stored_name(const ll_arch *a, int gguf, ll_role role, int layer, char *buf, size_t cap);

/* 1 if the entry is part of a model with config p (present or not). */
int ll_arch_tensor_used(const ll_arch_tensor *t, const ll_config *p);

#endif
