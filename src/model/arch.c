/* The architecture table and the LoRA target table (arch.h, lora.h). */
#include "model/arch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/lora.h"

size_t ll_dim_size(const ll_config *p, ll_dim d) {
    switch (d) {
    case LL_DIM_MODEL: return (size_t)p->dim;
    case LL_DIM_Q: return (size_t)p->n_heads * (size_t)p->head_dim;
    case LL_DIM_KV: return (size_t)p->n_kv_heads * (size_t)p->head_dim;
    case LL_DIM_FF: return (size_t)p->hidden_dim;
    case LL_DIM_VOCAB: return (size_t)p->vocab_size;
    case LL_DIM_ROPE_HALF: return (size_t)p->head_dim / 2;
    case LL_DIM_HEAD: return (size_t)p->head_dim;
    default: return 0;
    }
}

/* ---- canonical names: Hugging Face Llama's, the engine's own vocabulary -------- */

/* Global roles: the whole name; per-layer roles: the suffix after
 * "model.layers.<i>.". */
static const char *const canonical[LL_N_ROLES] = {
    [LL_ROLE_TOKEN_EMBD] = "model.embed_tokens.weight",
    [LL_ROLE_OUTPUT_NORM] = "model.norm.weight",
    [LL_ROLE_OUTPUT] = "lm_head.weight",
    [LL_ROLE_ROPE_FREQS] = "rope_freqs.weight",
    [LL_ROLE_ROPE_BUFFER] = "model.rotary_emb.inv_freq",
    [LL_ROLE_ATTN_NORM] = "input_layernorm.weight",
    [LL_ROLE_Q] = "self_attn.q_proj.weight",
    [LL_ROLE_K] = "self_attn.k_proj.weight",
    [LL_ROLE_V] = "self_attn.v_proj.weight",
    [LL_ROLE_O] = "self_attn.o_proj.weight",
    [LL_ROLE_FFN_NORM] = "post_attention_layernorm.weight",
    [LL_ROLE_GATE] = "mlp.gate_proj.weight",
    [LL_ROLE_UP] = "mlp.up_proj.weight",
    [LL_ROLE_DOWN] = "mlp.down_proj.weight",
    [LL_ROLE_Q_BIAS] = "self_attn.q_proj.bias",
    [LL_ROLE_K_BIAS] = "self_attn.k_proj.bias",
    [LL_ROLE_V_BIAS] = "self_attn.v_proj.bias",
    [LL_ROLE_O_BIAS] = "self_attn.o_proj.bias",
    [LL_ROLE_GATE_BIAS] = "mlp.gate_proj.bias",
    [LL_ROLE_UP_BIAS] = "mlp.up_proj.bias",
    [LL_ROLE_DOWN_BIAS] = "mlp.down_proj.bias",
    [LL_ROLE_LAYER_ROPE_BUFFER] = "self_attn.rotary_emb.inv_freq",
    [LL_ROLE_Q_NORM] = "self_attn.q_norm.weight",
    [LL_ROLE_K_NORM] = "self_attn.k_norm.weight",
    /* Gemma's own names for these two are its row's; these only need to
     * differ from every other role's (Llama's post_attention_layernorm is the
     * MLP's input norm, Gemma's the attention output's) */
    [LL_ROLE_ATTN_POST_NORM] = "self_attn.output_norm.weight",
    [LL_ROLE_FFN_POST_NORM] = "mlp.output_norm.weight",
};
#define CANONICAL_LAYER_PREFIX "model.layers."

const char *ll_arch_canonical_name(ll_role role, int layer, char *buf, size_t cap) {
    if (role < LL_ROLE_FIRST_LAYER) snprintf(buf, cap, "%s", canonical[role]);
    else snprintf(buf, cap, CANONICAL_LAYER_PREFIX "%d.%s", layer, canonical[role]);
    return buf;
}

/* "<prefix><n>." at the start of name: the layer n and the suffix after it;
 * NULL if name does not start so (or prefix is NULL: no per-layer names). */
static const char *after_layer_prefix(const char *name, const char *prefix, int *layer) {
    if (!prefix) return NULL;
    const size_t n = strlen(prefix);
    if (strncmp(name, prefix, n)) return NULL;
    int l, used = 0;
    if (sscanf(name + n, "%d.%n", &l, &used) != 1 || used == 0 || l < 0) return NULL;
    *layer = l;
    return name + n + used;
}

int ll_arch_parse_canonical(const char *name, ll_role *role, int *layer) {
    int l = -1;
    const char *suffix = after_layer_prefix(name, CANONICAL_LAYER_PREFIX, &l);
    for (int r = 0; r < LL_N_ROLES; r++) {
        const int per_layer = r >= LL_ROLE_FIRST_LAYER;
        if (per_layer ? suffix && !strcmp(suffix, canonical[r]) : !strcmp(name, canonical[r])) {
            *role = (ll_role)r;
            *layer = per_layer ? l : -1;
            return 1;
        }
    }
    return 0;
}

/* ---- the rows ------------------------------------------------------------------ */

/* Entries Llama's and Gemma 3's rows share: the projections and the attention biases. */
#define QKVO_ENTRIES \
    {LL_ROLE_Q, "self_attn.q_proj.weight", "attn_q.weight", LL_DIM_Q, LL_DIM_MODEL, LL_WHEN_ALWAYS}, \
    {LL_ROLE_K, "self_attn.k_proj.weight", "attn_k.weight", LL_DIM_KV, LL_DIM_MODEL, LL_WHEN_ALWAYS}, \
    {LL_ROLE_V, "self_attn.v_proj.weight", "attn_v.weight", LL_DIM_KV, LL_DIM_MODEL, LL_WHEN_ALWAYS}, \
    {LL_ROLE_O, "self_attn.o_proj.weight", "attn_output.weight", LL_DIM_MODEL, LL_DIM_Q, LL_WHEN_ALWAYS},
#define ATTN_BIAS_ENTRIES \
    {LL_ROLE_Q_BIAS, "self_attn.q_proj.bias", "attn_q.bias", LL_DIM_NONE, LL_DIM_Q, LL_WHEN_QKV_BIAS}, \
    {LL_ROLE_K_BIAS, "self_attn.k_proj.bias", "attn_k.bias", LL_DIM_NONE, LL_DIM_KV, LL_WHEN_QKV_BIAS}, \
    {LL_ROLE_V_BIAS, "self_attn.v_proj.bias", "attn_v.bias", LL_DIM_NONE, LL_DIM_KV, LL_WHEN_QKV_BIAS}, \
    {LL_ROLE_O_BIAS, "self_attn.o_proj.bias", "attn_output.bias", LL_DIM_NONE, LL_DIM_MODEL, LL_WHEN_O_BIAS},
#define FFN_ENTRIES \
    {LL_ROLE_GATE, "mlp.gate_proj.weight", "ffn_gate.weight", LL_DIM_FF, LL_DIM_MODEL, LL_WHEN_ALWAYS}, \
    {LL_ROLE_UP, "mlp.up_proj.weight", "ffn_up.weight", LL_DIM_FF, LL_DIM_MODEL, LL_WHEN_ALWAYS}, \
    {LL_ROLE_DOWN, "mlp.down_proj.weight", "ffn_down.weight", LL_DIM_MODEL, LL_DIM_FF, LL_WHEN_ALWAYS},

/* Llama, Mistral and Qwen2 share their tensor names. Order: the order the
 * weights are carved and checked in (model.c), which fixes every offset. */
static const ll_arch_tensor llama_tensors[] = {
    {LL_ROLE_TOKEN_EMBD, "model.embed_tokens.weight", "token_embd.weight", LL_DIM_VOCAB, LL_DIM_MODEL, LL_WHEN_ALWAYS},
    {LL_ROLE_ATTN_NORM, "input_layernorm.weight", "attn_norm.weight", LL_DIM_NONE, LL_DIM_MODEL, LL_WHEN_ALWAYS},
    QKVO_ENTRIES
    {LL_ROLE_FFN_NORM, "post_attention_layernorm.weight", "ffn_norm.weight", LL_DIM_NONE, LL_DIM_MODEL,
     LL_WHEN_ALWAYS},
    FFN_ENTRIES
    ATTN_BIAS_ENTRIES
    {LL_ROLE_GATE_BIAS, "mlp.gate_proj.bias", "ffn_gate.bias", LL_DIM_NONE, LL_DIM_FF, LL_WHEN_MLP_BIAS},
    {LL_ROLE_UP_BIAS, "mlp.up_proj.bias", "ffn_up.bias", LL_DIM_NONE, LL_DIM_FF, LL_WHEN_MLP_BIAS},
    {LL_ROLE_DOWN_BIAS, "mlp.down_proj.bias", "ffn_down.bias", LL_DIM_NONE, LL_DIM_MODEL, LL_WHEN_MLP_BIAS},
    {LL_ROLE_LAYER_ROPE_BUFFER, "self_attn.rotary_emb.inv_freq", NULL, LL_DIM_NONE, LL_DIM_ROPE_HALF,
     LL_WHEN_IGNORED},
    {LL_ROLE_OUTPUT_NORM, "model.norm.weight", "output_norm.weight", LL_DIM_NONE, LL_DIM_MODEL, LL_WHEN_ALWAYS},
    {LL_ROLE_OUTPUT, "lm_head.weight", "output.weight", LL_DIM_VOCAB, LL_DIM_MODEL, LL_WHEN_OPTIONAL},
    {LL_ROLE_ROPE_FREQS, "rope_freqs.weight", "rope_freqs.weight", LL_DIM_NONE, LL_DIM_ROPE_HALF, LL_WHEN_OPTIONAL},
    {LL_ROLE_ROPE_BUFFER, "model.rotary_emb.inv_freq", NULL, LL_DIM_NONE, LL_DIM_ROPE_HALF, LL_WHEN_IGNORED},
};
#define LLAMA_TENSORS llama_tensors, sizeof llama_tensors / sizeof llama_tensors[0]
#define LLAMA_PREFIXES "model.", "model.layers.", "blk."

/* transformers 5's configuration_{llama,mistral,qwen2}.py defaults */
static const ll_arch llama = {
    "llama", "llama", "Llama", LLAMA_PREFIXES, LLAMA_TENSORS, LL_ROPE_ROWS_INTERLEAVED, LL_BIAS_CONFIG_KEYS,
    LL_WINDOW_NONE, {32000, 4096, 11008, 32, 32, 0, 2048, 1, 2, 0, 1e-6f, 0, 0, NULL, 0, 0, 0},
    NULL, 0, 0, 0, 0, 0,
};
static const ll_arch mistral = {
    "mistral", "mistral", "Mistral", LLAMA_PREFIXES, LLAMA_TENSORS, LL_ROPE_ROWS_INTERLEAVED, LL_BIAS_NONE,
    LL_WINDOW_EVERY_LAYER, {32000, 4096, 14336, 32, 32, 8, 4096 * 32, 1, 2, 4096, 1e-6f, 0, 0, NULL, 0, 0, 0},
    NULL, 0, 0, 0, 0, 0,
};
static const ll_arch qwen2 = {
    "qwen2", "qwen2", "Qwen2", LLAMA_PREFIXES, LLAMA_TENSORS, LL_ROPE_ROWS_HALVES, LL_BIAS_QKV_ALWAYS,
    LL_WINDOW_IF_ENABLED, {151936, 4096, 22016, 32, 32, 32, 32768, -1, -1, 4096, 1e-6f, 0, 0, NULL, 0, 0, 0},
    NULL, 0, 0, 0, 0, 0,
};

/* Gemma 3 (transformers' Gemma3TextModel; llama.cpp's gemma3): four norms a
 * layer, q/k norms, biases only with attention_bias. */
static const ll_arch_tensor gemma3_tensors[] = {
    {LL_ROLE_TOKEN_EMBD, "model.embed_tokens.weight", "token_embd.weight", LL_DIM_VOCAB, LL_DIM_MODEL, LL_WHEN_ALWAYS},
    {LL_ROLE_ATTN_NORM, "input_layernorm.weight", "attn_norm.weight", LL_DIM_NONE, LL_DIM_MODEL, LL_WHEN_ALWAYS},
    QKVO_ENTRIES
    {LL_ROLE_Q_NORM, "self_attn.q_norm.weight", "attn_q_norm.weight", LL_DIM_NONE, LL_DIM_HEAD, LL_WHEN_ALWAYS},
    {LL_ROLE_K_NORM, "self_attn.k_norm.weight", "attn_k_norm.weight", LL_DIM_NONE, LL_DIM_HEAD, LL_WHEN_ALWAYS},
    {LL_ROLE_ATTN_POST_NORM, "post_attention_layernorm.weight", "post_attention_norm.weight", LL_DIM_NONE,
     LL_DIM_MODEL, LL_WHEN_ALWAYS},
    {LL_ROLE_FFN_NORM, "pre_feedforward_layernorm.weight", "ffn_norm.weight", LL_DIM_NONE, LL_DIM_MODEL,
     LL_WHEN_ALWAYS},
    FFN_ENTRIES
    {LL_ROLE_FFN_POST_NORM, "post_feedforward_layernorm.weight", "post_ffw_norm.weight", LL_DIM_NONE, LL_DIM_MODEL,
     LL_WHEN_ALWAYS},
    ATTN_BIAS_ENTRIES
    {LL_ROLE_OUTPUT_NORM, "model.norm.weight", "output_norm.weight", LL_DIM_NONE, LL_DIM_MODEL, LL_WHEN_ALWAYS},
    {LL_ROLE_OUTPUT, "lm_head.weight", "output.weight", LL_DIM_VOCAB, LL_DIM_MODEL, LL_WHEN_OPTIONAL},
};

/* transformers 5's configuration_gemma3.py (Gemma3TextConfig) defaults;
 * llama.cpp's gemma3 loader: every 6th layer global, local RoPE base 10000 */
static const ll_arch gemma3 = {
    "gemma3_text", "gemma3", "Gemma3Text", "model.", "model.layers.", "blk.", gemma3_tensors,
    sizeof gemma3_tensors / sizeof gemma3_tensors[0], LL_ROPE_ROWS_HALVES, LL_BIAS_ATTENTION_KEY,
    LL_WINDOW_LAYER_TYPES,
    {262208, 2304, 9216, 26, 8, 4, 131072, 2, 1, 4096, 1e-6f, 256, 1, "gelu_pytorch_tanh", 256.0f, 1e6f, 1e4f},
    "hidden_activation", 1.0f, 1, 6, 1e4f, 1,
};

const ll_arch *const ll_arch_builtin[] = {&llama, &mistral, &qwen2, &gemma3, NULL};

int ll_config_default_bidirectional_from(const ll_config *p) {
    return p->use_bidirectional_attention ? 0 : p->n_layers;
}

int ll_config_layer_sliding(const ll_config *p, int l) {
    return p->sliding_window > 0 && l >= 0 && l < p->n_layers && l < LL_MAX_LAYERS &&
           ((p->sliding_layers[l / 64] >> (l % 64)) & 1);
}

/* ---- lookups ------------------------------------------------------------------- */

/* The i-th row of built-in then extra; NULL past the end. */
static const ll_arch *row_at(size_t i, const ll_arch *const *extra) {
    const size_t nb = sizeof ll_arch_builtin / sizeof ll_arch_builtin[0] - 1;
    if (i < nb) return ll_arch_builtin[i];
    return extra ? extra[i - nb] : NULL;
}

const ll_arch *ll_arch_find(const char *name, const ll_arch *const *extra) {
    for (size_t i = 0; row_at(i, extra); i++)
        if (!strcmp(row_at(i, extra)->name, name)) return row_at(i, extra);
    return NULL;
}

const ll_arch *ll_arch_find_gguf(const char *gguf_name, const ll_arch *const *extra) {
    for (size_t i = 0; row_at(i, extra); i++)
        if (row_at(i, extra)->gguf_name && !strcmp(row_at(i, extra)->gguf_name, gguf_name)) return row_at(i, extra);
    return NULL;
}

void ll_arch_list_names(char *buf, size_t cap, const ll_arch *const *extra, int gguf, const char *last_sep) {
    const char *names[64];
    size_t n = 0;
    for (size_t i = 0; row_at(i, extra) && n < 64; i++) {
        const char *s = gguf ? row_at(i, extra)->gguf_name : row_at(i, extra)->name;
        if (s) names[n++] = s;
    }
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && used < cap; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? last_sep : ", ";
        used += (size_t)snprintf(buf + used, cap - used, "%s%s", sep, names[i]);
    }
}

const ll_arch_tensor *ll_arch_tensor_of(const ll_arch *a, ll_role role) {
    for (size_t i = 0; i < a->n_tensors; i++)
        if (a->tensors[i].role == role) return &a->tensors[i];
    return NULL;
}

const ll_arch_tensor *ll_arch_match_stored(const ll_arch *a, int gguf, const char *stored, int *layer) {
    int l = -1;
    const char *suffix = after_layer_prefix(stored, gguf ? a->gguf_layer_prefix : a->hf_layer_prefix, &l);
    for (size_t i = 0; i < a->n_tensors; i++) {
        const ll_arch_tensor *t = &a->tensors[i];
        const char *name = gguf ? t->gguf : t->hf;
        if (!name) continue;
        const int per_layer = t->role >= LL_ROLE_FIRST_LAYER;
        if (per_layer ? suffix && !strcmp(suffix, name) : !strcmp(stored, name)) {
            *layer = per_layer ? l : -1;
            return t;
        }
    }
    return NULL;
}

const char *ll_arch_stored_name(const ll_arch *a, int gguf, ll_role role, int layer, char *buf, size_t cap) {
    const ll_arch_tensor *t = ll_arch_tensor_of(a, role);
    const char *name = t ? (gguf ? t->gguf : t->hf) : NULL;
    if (!name) return NULL;
    if (role < LL_ROLE_FIRST_LAYER) snprintf(buf, cap, "%s", name);
    else snprintf(buf, cap, "%s%d.%s", gguf ? a->gguf_layer_prefix : a->hf_layer_prefix, layer, name);
    return buf;
}

int ll_arch_tensor_used(const ll_arch_tensor *t, const ll_config *p) {
    switch (t->when) {
    case LL_WHEN_QKV_BIAS: return p->qkv_bias;
    case LL_WHEN_O_BIAS: return p->o_bias;
    case LL_WHEN_MLP_BIAS: return p->mlp_bias;
    default: return 1;
    }
}

/* ---- LoRA targets (lora.h) ----------------------------------------------------- */

const char *const ll_lora_target_names[LL_LORA_N_TARGETS] = {
    [LL_LORA_Q] = "q_proj", [LL_LORA_K] = "k_proj", [LL_LORA_V] = "v_proj", [LL_LORA_O] = "o_proj",
    [LL_LORA_GATE] = "gate_proj", [LL_LORA_UP] = "up_proj", [LL_LORA_DOWN] = "down_proj",
};

const ll_lora_target ll_lora_targets[LL_LORA_N_TARGETS] = {
    [LL_LORA_Q] = {"self_attn", LL_ROLE_Q, LL_DIM_MODEL, LL_DIM_Q},
    [LL_LORA_K] = {"self_attn", LL_ROLE_K, LL_DIM_MODEL, LL_DIM_KV},
    [LL_LORA_V] = {"self_attn", LL_ROLE_V, LL_DIM_MODEL, LL_DIM_KV},
    [LL_LORA_O] = {"self_attn", LL_ROLE_O, LL_DIM_Q, LL_DIM_MODEL},
    [LL_LORA_GATE] = {"mlp", LL_ROLE_GATE, LL_DIM_MODEL, LL_DIM_FF},
    [LL_LORA_UP] = {"mlp", LL_ROLE_UP, LL_DIM_MODEL, LL_DIM_FF},
    [LL_LORA_DOWN] = {"mlp", LL_ROLE_DOWN, LL_DIM_FF, LL_DIM_MODEL},
};

void ll_lora_target_dims(const ll_config *p, int t, size_t *in, size_t *out) {
    *in = ll_dim_size(p, ll_lora_targets[t].in);
    *out = ll_dim_size(p, ll_lora_targets[t].out);
}

size_t ll_lora_max_in(const ll_config *p) {
    size_t widest = 0;
    for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
        const size_t in = ll_dim_size(p, ll_lora_targets[t].in);
        if (in > widest) widest = in;
    }
    return widest;
}
