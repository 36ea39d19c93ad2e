#include "model/checkpoint.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/gguf.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "model/arch.h"

struct ll_checkpoint {
    char format[16];
    char *path;
    ll_config cfg;
    const ll_arch *arch;              /* the row the file names (llama2.c: llama) */
    const ll_arch *const *extra_archs; /* rows beyond the built-in ones, NULL-terminated; may be NULL */
    ll_tensor_info *tensors;
    size_t n_tensors, cap_tensors;
    /* backing storage */
    ll_gguf_file *gguf;
    ll_st_file **shards;
    size_t n_shards;
    ll_mapped_file raw; /* llama2.c */
    cJSON *hf_config;
};

/* ---- tensor table --------------------------------------------------------- */

static int add_tensor(ll_checkpoint *c, const char *name, const char *stored, const char *dtype_name, ll_dtype dt,
                      int ndim, const int64_t *shape, const void *data, uint64_t nbytes, const char *file,
                      int interleaved, ll_error *err) {
    if (c->n_tensors == c->cap_tensors) {
        size_t cap = c->cap_tensors ? 2 * c->cap_tensors : 64;
        ll_tensor_info *t = realloc(c->tensors, cap * sizeof *t);
        if (!t) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", c->path);
        c->tensors = t;
        c->cap_tensors = cap;
    }
    ll_tensor_info *t = &c->tensors[c->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->stored_name = strdup(stored);
    if (!t->name || !t->stored_name) {
        free(t->name);
        free(t->stored_name);
        return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", c->path);
    }
    c->n_tensors++;
    t->dtype_name = dtype_name;
    t->dtype = dt;
    t->ndim = ndim;
    t->n_elems = 1;
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        t->n_elems *= (uint64_t)shape[d];
    }
    t->data = data;
    t->nbytes = nbytes;
    t->file = file;
    t->rope_interleaved = interleaved;
    return LL_OK;
}

void ll_checkpoint_close(ll_checkpoint *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n_tensors; i++) {
        free(c->tensors[i].name);
        free(c->tensors[i].stored_name);
    }
    free(c->tensors);
    ll_gguf_close(c->gguf);
    for (size_t i = 0; i < c->n_shards; i++) ll_st_close(c->shards[i]);
    free(c->shards);
    ll_unmap_file(&c->raw);
    cJSON_Delete(c->hf_config);
    free(c->path);
    free(c);
}

const ll_config *ll_checkpoint_config(const ll_checkpoint *c) { return &c->cfg; }
const char *ll_checkpoint_format(const ll_checkpoint *c) { return c->format; }
const char *ll_checkpoint_path(const ll_checkpoint *c) { return c->path; }
const ll_arch *ll_checkpoint_arch(const ll_checkpoint *c) { return c->arch; }
size_t ll_checkpoint_n_tensors(const ll_checkpoint *c) { return c->n_tensors; }
const ll_tensor_info *ll_checkpoint_tensor(const ll_checkpoint *c, size_t i) { return &c->tensors[i]; }
const ll_tensor_info *ll_checkpoint_find(const ll_checkpoint *c, const char *name) {
    for (size_t i = 0; i < c->n_tensors; i++)
        if (!strcmp(c->tensors[i].name, name)) return &c->tensors[i];
    return NULL;
}

/* ---- config checks -------------------------------------------------------- */

int ll_config_validate(const ll_config *p, const char *path, ll_error *err) {
#define NEED(cond, ...)                                                                                               \
    do {                                                                                                              \
        if (!(cond)) {                                                                                                \
            char msg_[256];                                                                                           \
            snprintf(msg_, sizeof msg_, __VA_ARGS__);                                                                 \
            return ll_fail(err, LL_ERR_CONFIG, "%s: inconsistent config: %s", path, msg_);                            \
        }                                                                                                             \
    } while (0)
    NEED(p->dim > 0 && p->dim <= 65536, "hidden size %d", p->dim);
    NEED(p->hidden_dim > 0 && p->hidden_dim <= 1 << 20, "intermediate size %d", p->hidden_dim);
    NEED(p->n_layers > 0 && p->n_layers <= 1024, "layer count %d", p->n_layers);
    NEED(p->n_heads > 0 && p->n_heads <= 1024, "attention head count %d", p->n_heads);
    NEED(p->n_kv_heads > 0 && p->n_kv_heads <= p->n_heads, "key/value head count %d (heads %d)", p->n_kv_heads,
         p->n_heads);
    NEED(p->n_heads % p->n_kv_heads == 0, "%d heads are not a multiple of %d key/value heads", p->n_heads,
         p->n_kv_heads);
    NEED(p->head_dim > 0 && p->head_dim % 2 == 0 && p->head_dim <= 1024, "head dimension %d must be even",
         p->head_dim);
    NEED(p->vocab_size > 0 && p->vocab_size <= 1 << 24, "vocabulary size %d", p->vocab_size);
    NEED(p->rope_theta > 0 && isfinite(p->rope_theta), "rope theta %g", p->rope_theta);
    NEED(p->rms_eps > 0 && p->rms_eps < 1, "rms norm epsilon %g", p->rms_eps);
    NEED(p->rope_scaling == LL_ROPE_NONE || (p->rope_factor > 0 && isfinite(p->rope_factor)), "rope scaling factor %g",
         p->rope_factor);
    NEED(p->rope_scaling != LL_ROPE_LLAMA3 ||
             (p->rope_original_max_pos > 0 && p->rope_high_freq_factor > p->rope_low_freq_factor &&
              p->rope_low_freq_factor > 0),
         "llama3 rope scaling needs original_max_position_embeddings > 0 and high_freq_factor > low_freq_factor > 0");
#undef NEED
    return LL_OK;
}

static void config_defaults(ll_config *p) {
    memset(p, 0, sizeof *p);
    p->rope_theta = 10000.0f;
    p->rms_eps = 1e-5f;
    p->bos_token_id = p->eos_token_id = -1;
    p->max_seq_len = 2048;
    snprintf(p->hidden_act_name, sizeof p->hidden_act_name, "silu");
}

/* ---- GGUF ----------------------------------------------------------------- */

/* The canonical name of a tensor stored as `stored` in a file of row a's
 * format (gguf: 1 GGUF, 0 Hugging Face), or the stored name itself when the
 * row does not know it (refused later by name, unless it is a classifier
 * head); *entry (optional): the row's entry, NULL if none. A name the row does
 * not know but that is spelled like a canonical one (a Llama name in another
 * architecture's file) is kept as "?name": it must not stand in for the role
 * it spells. */
static void canonical_name(const ll_arch *a, int gguf, const char *stored, char *out, size_t cap,
                           const ll_arch_tensor **entry) {
    int layer;
    ll_role role;
    const ll_arch_tensor *t = ll_arch_match_stored(a, gguf, stored, &layer);
    if (t) ll_arch_canonical_name(t->role, layer, out, cap);
    else if (ll_arch_parse_canonical(stored, &role, &layer)) snprintf(out, cap, "?%s", stored);
    else snprintf(out, cap, "%s", stored);
    if (entry) *entry = t;
}

/* Every "<arch>." key of a GGUF file, as llama.cpp reads it for the llama,
 * mistral and qwen2 architectures: read by gguf_build, without effect on the
 * hidden states, or refused by name unless it holds the value that changes
 * nothing. A key this table does not know is refused: it may change what
 * llama.cpp computes. */
static int gguf_check_keys(ll_checkpoint *c, const char *arch, ll_error *err) {
    static const char *const read_or_inert[] = {
        /* read by gguf_build */
        "embedding_length", "feed_forward_length", "block_count", "attention.head_count",
        "attention.head_count_kv", "context_length", "rope.freq_base", "attention.layer_norm_rms_epsilon",
        "attention.key_length", "rope.dimension_count", "rope.scaling.type", "rope.scaling.factor", "vocab_size",
        /* no effect on the hidden states: YaRN-only context length, provenance, output pooling */
        "rope.scaling.original_context_length", "rope.scaling.finetuned", "tensor_data_layout", "pooling_type",
    };
    const ll_gguf_file *g = c->gguf;
    const size_t al = strlen(arch);
    ll_config *p = &c->cfg;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const ll_gguf_kv *kv = &g->kv[i];
        if (strncmp(kv->key, arch, al) || kv->key[al] != '.') continue;
        const char *k = kv->key + al + 1;
        int known = 0;
        for (size_t n = 0; n < sizeof read_or_inert / sizeof read_or_inert[0] && !known; n++)
            known = !strcmp(k, read_or_inert[n]);
        if (known) continue;
        const int numeric = kv->type != GGUF_TYPE_STRING && kv->type != GGUF_TYPE_ARRAY;
        const double x = !numeric ? NAN
                         : kv->type == GGUF_TYPE_FLOAT32 || kv->type == GGUF_TYPE_FLOAT64 ? kv->num.f
                         : kv->type == GGUF_TYPE_INT8 || kv->type == GGUF_TYPE_INT16 || kv->type == GGUF_TYPE_INT32 ||
                                   kv->type == GGUF_TYPE_INT64
                             ? (double)kv->num.i
                             : (double)kv->num.u;
        /* mixture of experts: a count of 0 is a dense model */
        if ((!strcmp(k, "expert_count") || !strcmp(k, "expert_used_count")) && x == 0) continue;
        /* a value head as wide as the key head is what this engine computes */
        if (!strcmp(k, "attention.value_length") && x == p->head_dim) continue;
        /* llama.cpp: causal attention unless this is false */
        if (!strcmp(k, "attention.causal") && x == 1) continue;
        /* 0 means "none" for these (llama.cpp: kq scale 1/sqrt(head_dim), no clamp, no multipliers) */
        if ((!strcmp(k, "attention.scale") || !strcmp(k, "attention.clamp_kqv") || !strcmp(k, "logit_scale") ||
             !strcmp(k, "embedding_scale") || !strcmp(k, "residual_scale")) && x == 0)
            continue;
        /* as in config.json: exact for sequences up to the window, longer ones refused */
        if (!strcmp(k, "attention.sliding_window") && numeric && x >= 1 && x <= 2e9) {
            p->sliding_window = (int)x;
            continue;
        }
        /* Gemma 3: the value head is the key head (checked above) */
        char val[64];
        if (kv->type == GGUF_TYPE_STRING)
            snprintf(val, sizeof val, "'%.*s'", (int)(kv->str.len > 40 ? 40 : kv->str.len), kv->str.ptr);
        else if (kv->type == GGUF_TYPE_ARRAY)
            snprintf(val, sizeof val, "[%llu x %s]", (unsigned long long)kv->arr_n, ll_gguf_type_name(kv->arr_type));
        else
            snprintf(val, sizeof val, "%g", x);
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: key '%s' = %s is not supported", c->path, kv->key, val);
    }
    return LL_OK;
}

/* Config and tensor table from the already parsed c->gguf. */
static int gguf_build(ll_checkpoint *c, ll_error *err) {
    int rc;
    ll_gguf_file *g = c->gguf;
    snprintf(c->format, sizeof c->format, "gguf");
    ll_config *p = &c->cfg;
    char arch[32] = "";
    if ((rc = ll_gguf_get_string(g, "general.architecture", 1, arch, sizeof arch, err))) return rc;
    if (!(c->arch = ll_arch_find_gguf(arch, c->extra_archs))) {
        char names[256];
        ll_arch_list_names(names, sizeof names, c->extra_archs, 1, " and ");
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported (%s are)", c->path, arch,
                       names);
    }
    snprintf(p->arch, sizeof p->arch, "%s", c->arch->name);
    /* llama.cpp rotates interleaved pairs for llama/mistral (and permutes the
     * q/k rows when converting), but rotate-half (NEOX) for qwen2. */
    const int interleaved = c->arch->gguf_rope_rows == LL_ROPE_ROWS_INTERLEAVED;
    char key[128];
    int64_t v;
    double f;
#define GETI(field, suffix, req)                                                                                      \
    do {                                                                                                              \
        snprintf(key, sizeof key, "%s.%s", arch, suffix);                                                             \
        v = p->field;                                                                                                 \
        if ((rc = ll_gguf_get_int(g, key, req, &v, err))) return rc;                                                     \
        if (v < INT32_MIN || v > INT32_MAX) return ll_fail(err, LL_ERR_CONFIG, "%s: key '%s' out of range", c->path, key); \
        p->field = (int)v;                                                                                            \
    } while (0)
#define GETF(field, suffix, req)                                                                                      \
    do {                                                                                                              \
        snprintf(key, sizeof key, "%s.%s", arch, suffix);                                                             \
        f = p->field;                                                                                                 \
        if ((rc = ll_gguf_get_float(g, key, req, &f, err))) return rc;                                                   \
        p->field = (float)f;                                                                                          \
    } while (0)
    GETI(dim, "embedding_length", 1);
    GETI(hidden_dim, "feed_forward_length", 1);
    GETI(n_layers, "block_count", 1);
    GETI(n_heads, "attention.head_count", 1);
    p->n_kv_heads = p->n_heads;
    GETI(n_kv_heads, "attention.head_count_kv", 0);
    GETI(max_seq_len, "context_length", 0);
    GETF(rope_theta, "rope.freq_base", 0);
    GETF(rms_eps, "attention.layer_norm_rms_epsilon", 1);
    p->head_dim = p->n_heads > 0 ? p->dim / p->n_heads : 0;
    snprintf(key, sizeof key, "%s.attention.key_length", arch);
    if (!ll_gguf_find_kv(g, key) && p->n_heads > 0 && p->dim % p->n_heads)
        return ll_fail(err, LL_ERR_CONFIG, "%s: key '%s.attention.head_count' = %d does not divide '%s.embedding_length' = %d",
                       c->path, arch, p->n_heads, arch, p->dim);
    GETI(head_dim, "attention.key_length", 0);
    int rope_dims = p->head_dim;
    snprintf(key, sizeof key, "%s.rope.dimension_count", arch);
    v = rope_dims;
    if ((rc = ll_gguf_get_int(g, key, 0, &v, err))) return rc;
    if (v != p->head_dim && p->head_dim > 0) /* (a bad head_dim is reported by ll_config_validate) */
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: key '%s' = %lld: partial rotary embeddings are not supported",
                       c->path, key, (long long)v);
    char scaling[32] = "none";
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    if ((rc = ll_gguf_get_string(g, key, 0, scaling, sizeof scaling, err))) return rc;
    if (!strcmp(scaling, "linear")) {
        p->rope_scaling = LL_ROPE_LINEAR;
        GETF(rope_factor, "rope.scaling.factor", 1);
    } else if (strcmp(scaling, "none")) {
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: key '%s' = '%s' is not supported (none, linear)", c->path, key,
                       scaling);
    }
    v = -1;
    if ((rc = ll_gguf_get_int(g, "tokenizer.ggml.bos_token_id", 0, &v, err))) return rc;
    p->bos_token_id = (int)v;
    v = -1;
    if ((rc = ll_gguf_get_int(g, "tokenizer.ggml.eos_token_id", 0, &v, err))) return rc;
    p->eos_token_id = (int)v;
#undef GETI
#undef GETF
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const ll_gguf_tensor *t = &g->tensors[i];
        char name[160];
        const ll_arch_tensor *e;
        canonical_name(c->arch, 1, t->name, name, sizeof name, &e);
        const int is_qk = e && (e->role == LL_ROLE_Q || e->role == LL_ROLE_K || e->role == LL_ROLE_Q_BIAS ||
                                e->role == LL_ROLE_K_BIAS);
        int64_t shape[4];
        for (int d = 0; d < t->n_dims; d++) shape[d] = (int64_t)t->ne[t->n_dims - 1 - d];
        const char *tname = "?";
        ll_ggml_type_info(t->ggml_type, &tname, NULL, NULL);
        if ((rc = add_tensor(c, name, t->name, tname, t->dtype, t->n_dims, shape, t->data, t->nbytes, c->path,
                             interleaved && is_qk, err)))
            return rc;
    }
    const ll_tensor_info *emb = ll_checkpoint_find(c, "model.embed_tokens.weight");
    int64_t vocab = emb && emb->ndim == 2 ? emb->shape[0] : 0;
    snprintf(key, sizeof key, "%s.vocab_size", arch);
    if ((rc = ll_gguf_get_int(g, key, 0, &vocab, err))) return rc;
    const ll_gguf_kv *toks = ll_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (!vocab && toks && toks->type == GGUF_TYPE_ARRAY) vocab = (int64_t)toks->arr_n;
    p->vocab_size = vocab > INT32_MAX ? -1 : (int)vocab;
    p->tied_embeddings = ll_checkpoint_find(c, "lm_head.weight") == NULL;
    /* llama.cpp loads these biases when the file has them (TENSOR_NOT_REQUIRED) */
    p->qkv_bias = ll_checkpoint_find(c, "model.layers.0.self_attn.q_proj.bias") != NULL;
    p->o_bias = ll_checkpoint_find(c, "model.layers.0.self_attn.o_proj.bias") != NULL;
    p->mlp_bias = ll_checkpoint_find(c, "model.layers.0.mlp.gate_proj.bias") != NULL;
    if ((rc = gguf_check_keys(c, arch, err))) return rc;
    /* which layers slide: Gemma 3's fixed pattern (llama.cpp: every 6th layer global, the others sliding with
     * RoPE base 10000), every layer otherwise (Mistral's config.json) */
    const ll_arch *a = c->arch;
    memset(p->sliding_layers, 0, sizeof p->sliding_layers);
    for (int l = 0; p->sliding_window > 0 && l < p->n_layers && l < LL_MAX_LAYERS; l++)
        if (!a->gguf_sliding_pattern || (l + 1) % a->gguf_sliding_pattern)
            p->sliding_layers[l / 64] |= 1ull << (l % 64);
    p->rope_local_theta = a->gguf_rope_local_theta;
    if (a->hf_defaults.hidden_act) {
        p->hidden_act = ll_activation_from_name(a->hf_defaults.hidden_act);
        snprintf(p->hidden_act_name, sizeof p->hidden_act_name, "%s", a->hf_defaults.hidden_act);
    }
    /* llama.cpp's gemma3: scores scaled by 1/sqrt(hidden / heads) in the 62-layer (27B) model, 1/sqrt(head_dim)
     * in the others: the query_pre_attn_scalar each model's config.json states */
    if (a->hf_defaults.query_pre_attn_scalar > 0)
        p->query_pre_attn_scalar = p->n_layers == 62 && p->n_heads > 0 ? (float)(p->dim / p->n_heads)
                                                                       : (float)p->head_dim;
    return LL_OK;
}

static int open_gguf(ll_checkpoint *c, ll_error *err) {
    int rc = ll_gguf_open(&c->gguf, c->path, err);
    return rc ? rc : gguf_build(c, err);
}

const char *ll_checkpoint_stored_name(const ll_checkpoint *c, const char *name, char *buf, size_t cap) {
    const ll_tensor_info *t = ll_checkpoint_find(c, name);
    if (t) return t->stored_name;
    ll_role role;
    int layer;
    if (!c->arch || !strcmp(c->format, "llama2c") || !ll_arch_parse_canonical(name, &role, &layer)) return name;
    const char *stored = ll_arch_stored_name(c->arch, c->gguf != NULL, role, layer, buf, cap);
    return stored ? stored : name;
}

/* ---- Hugging Face safetensors --------------------------------------------- */

static int path_is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}
static int path_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* Every hyper-parameter of config.json checked under its own key name, with
 * its value (and, for the derived head dimension, the keys it comes from),
 * before any tensor is read: ll_config_validate's generic words ("head
 * dimension 7") would not say which key to fix. theta_key / scale_key: where
 * rope_theta and the rope scaling were read. */
static int hf_check_config(const ll_config *p, const char *f, int head_dim_given, int max_pos_given,
                           const char *theta_key, const char *scale_key, ll_error *err) {
#define BAD(...) return ll_fail(err, LL_ERR_CONFIG, __VA_ARGS__)
    if (p->dim <= 0 || p->dim > 65536) BAD("%s: key 'hidden_size' = %d: must be 1..65536", f, p->dim);
    if (p->hidden_dim <= 0 || p->hidden_dim > 1 << 20)
        BAD("%s: key 'intermediate_size' = %d: must be 1..%d", f, p->hidden_dim, 1 << 20);
    if (p->n_layers <= 0 || p->n_layers > 1024) BAD("%s: key 'num_hidden_layers' = %d: must be 1..1024", f, p->n_layers);
    if (p->n_heads <= 0 || p->n_heads > 1024)
        BAD("%s: key 'num_attention_heads' = %d: must be 1..1024", f, p->n_heads);
    if (p->n_kv_heads <= 0 || p->n_kv_heads > p->n_heads)
        BAD("%s: key 'num_key_value_heads' = %d: must be 1..%d ('num_attention_heads')", f, p->n_kv_heads, p->n_heads);
    if (p->n_heads % p->n_kv_heads)
        BAD("%s: key 'num_key_value_heads' = %d does not divide 'num_attention_heads' = %d", f, p->n_kv_heads,
            p->n_heads);
    if (!head_dim_given && p->dim % p->n_heads)
        BAD("%s: key 'num_attention_heads' = %d does not divide 'hidden_size' = %d (or set 'head_dim')", f, p->n_heads,
            p->dim);
    if (head_dim_given && (p->head_dim <= 0 || p->head_dim > 1024 || p->head_dim % 2))
        BAD("%s: key 'head_dim' = %d: must be an even number 2..1024 (RoPE rotates pairs)", f, p->head_dim);
    if (!head_dim_given && (p->head_dim % 2 || p->head_dim > 1024))
        BAD("%s: head dimension 'hidden_size' / 'num_attention_heads' = %d / %d = %d: must be an even number 2..1024 "
            "(RoPE rotates pairs)", f, p->dim, p->n_heads, p->head_dim);
    if (p->vocab_size <= 0 || p->vocab_size > 1 << 24)
        BAD("%s: key 'vocab_size' = %d: must be 1..%d", f, p->vocab_size, 1 << 24);
    if (max_pos_given && (p->max_seq_len <= 0 || p->max_seq_len > 1 << 24))
        BAD("%s: key 'max_position_embeddings' = %d: must be 1..%d", f, p->max_seq_len, 1 << 24);
    if (!(p->rms_eps > 0 && p->rms_eps < 1)) BAD("%s: key 'rms_norm_eps' = %g: must be > 0 and < 1", f, p->rms_eps);
    if (!(p->rope_theta > 0 && isfinite(p->rope_theta)))
        BAD("%s: key '%s' = %g: must be > 0", f, theta_key, p->rope_theta);
    if (p->rope_scaling != LL_ROPE_NONE && !(p->rope_factor > 0 && isfinite(p->rope_factor)))
        BAD("%s: key '%s.factor' = %g: must be > 0", f, scale_key, p->rope_factor);
    if (p->rope_scaling == LL_ROPE_LLAMA3) {
        if (p->rope_original_max_pos <= 0)
            BAD("%s: key '%s.original_max_position_embeddings' = %d: must be > 0", f, scale_key,
                p->rope_original_max_pos);
        if (!(p->rope_low_freq_factor > 0 && p->rope_high_freq_factor > p->rope_low_freq_factor))
            BAD("%s: keys '%s.low_freq_factor' = %g and 'high_freq_factor' = %g: need high > low > 0", f, scale_key,
                p->rope_low_freq_factor, p->rope_high_freq_factor);
    }
#undef BAD
    return LL_OK;
}

/* transformers' ACT2FN names this engine computes exactly (forward and
 * derivative, kernels/glu.c), as ll_activation. */
static const struct {
    const char *name;
    int act;
} hf_activations[] = {
    {"silu", LL_ACT_SILU},          {"swish", LL_ACT_SILU},
    {"gelu", LL_ACT_GELU},          {"gelu_new", LL_ACT_GELU_TANH},
    {"gelu_pytorch_tanh", LL_ACT_GELU_TANH}, {"relu", LL_ACT_RELU},
};

int ll_activation_from_name(const char *name) {
    for (size_t i = 0; i < sizeof hf_activations / sizeof hf_activations[0]; i++)
        if (!strcmp(name, hf_activations[i].name)) return hf_activations[i].act;
    return -1;
}

/* A key that must keep its default (false / 0 / null / absent). */
static int hf_truthy(const cJSON *x) {
    return x && !cJSON_IsNull(x) && !cJSON_IsFalse(x) && !(cJSON_IsNumber(x) && x->valuedouble == 0.0);
}

static void json_text(const cJSON *x, char *buf, size_t cap) {
    char *t = x ? cJSON_PrintUnformatted(x) : NULL;
    snprintf(buf, cap, "%s", t ? t : "?");
    if (strlen(buf) > 60) snprintf(buf + 57, cap - 57, "...");
    free(t);
}

/* Gemma3TextConfig's own keys (the rows whose defaults carry a
 * query_pre_attn_scalar): the attention scale, and what this engine refuses
 * by name (soft-capping, a config that is bidirectional by itself). */
static int hf_parse_gemma(ll_config *p, const cJSON *j, const char *f, ll_error *err) {
    char val[64];
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(j, "query_pre_attn_scalar");
    if (q && !cJSON_IsNull(q)) {
        if (!cJSON_IsNumber(q) || !(q->valuedouble > 0) || !isfinite(q->valuedouble)) {
            json_text(q, val, sizeof val);
            return ll_fail(err, LL_ERR_CONFIG, "%s: key 'query_pre_attn_scalar' = %s must be a positive number", f,
                           val);
        }
        p->query_pre_attn_scalar = (float)q->valuedouble;
    }
    /* tanh soft-capping of the attention scores / the LM head's logits */
    const char *caps[2] = {"attn_logit_softcapping", "final_logit_softcapping"};
    for (int i = 0; i < 2; i++) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, caps[i]);
        if (c && !cJSON_IsNull(c)) {
            json_text(c, val, sizeof val);
            return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: key '%s' = %s is not supported (only null)", f, caps[i], val);
        }
    }
    /* every layer bidirectional by the config itself (EmbeddingGemma; lsllama's merged bidirectional
     * classifiers): the sliding window stays as written, the bidirectional layers halve it (layer_mask) */
    const cJSON *bi = cJSON_GetObjectItemCaseSensitive(j, "use_bidirectional_attention");
    if (bi && !cJSON_IsNull(bi) && !cJSON_IsBool(bi)) {
        json_text(bi, val, sizeof val);
        return ll_fail(err, LL_ERR_CONFIG, "%s: key 'use_bidirectional_attention' = %s must be true or false", f, val);
    }
    p->use_bidirectional_attention = cJSON_IsTrue(bi);
    return LL_OK;
}

/* The keys that change what the layers compute beyond the sizes: biases,
 * activation, attention window, dropout, quantization. Every key of
 * LlamaConfig / MistralConfig / Qwen2Config is read here or in
 * hf_parse_config, or has no effect on the hidden states (the table in
 * docs/fidelity/checkpoint.md); a value this engine does not compute is
 * refused with the key and the value. */
static int hf_parse_semantics(ll_config *p, const ll_arch *a, const cJSON *j, const char *f, ll_error *err) {
    char val[64];
    /* biases: LlamaConfig attention_bias (q, k, v, o) and mlp_bias (gate, up,
     * down); Qwen2 always has q/k/v biases and never o/mlp ones; Mistral has
     * none (MistralConfig and Qwen2Config have neither key: transformers
     * ignores them there, and so does this loader) */
    const int bias_keys = a->bias == LL_BIAS_CONFIG_KEYS, attn_key = bias_keys || a->bias == LL_BIAS_ATTENTION_KEY;
    const cJSON *ab = cJSON_GetObjectItemCaseSensitive(j, "attention_bias");
    const cJSON *mb = cJSON_GetObjectItemCaseSensitive(j, "mlp_bias");
    if (attn_key && ab && !cJSON_IsBool(ab)) {
        json_text(ab, val, sizeof val);
        return ll_fail(err, LL_ERR_CONFIG, "%s: key 'attention_bias' = %s must be true or false", f, val);
    }
    if (bias_keys && mb && !cJSON_IsBool(mb)) {
        json_text(mb, val, sizeof val);
        return ll_fail(err, LL_ERR_CONFIG, "%s: key 'mlp_bias' = %s must be true or false", f, val);
    }
    p->qkv_bias = a->bias == LL_BIAS_QKV_ALWAYS || (attn_key && cJSON_IsTrue(ab));
    p->o_bias = attn_key && cJSON_IsTrue(ab);
    p->mlp_bias = bias_keys && cJSON_IsTrue(mb);
    /* activation (Gemma's key is hidden_activation; its hidden_act is not read by transformers) */
    const char *act_key = a->hf_act_key ? a->hf_act_key : "hidden_act";
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(j, act_key);
    const char *act_default = a->hf_defaults.hidden_act ? a->hf_defaults.hidden_act : "silu";
    snprintf(p->hidden_act_name, sizeof p->hidden_act_name, "%s", act_default);
    p->hidden_act = ll_activation_from_name(act_default);
    if (act && !cJSON_IsNull(act)) {
        const int a = cJSON_IsString(act) ? ll_activation_from_name(act->valuestring) : -1;
        if (a < 0) {
            json_text(act, val, sizeof val);
            return ll_fail(err, LL_ERR_UNSUPPORTED,
                           "%s: key '%s' = %s is not supported (silu, swish, gelu, gelu_new, "
                           "gelu_pytorch_tanh and relu are)", f, act_key, val);
        }
        p->hidden_act = a;
        snprintf(p->hidden_act_name, sizeof p->hidden_act_name, "%s", act->valuestring);
    }
    /* attention dropout: transformers applies it while training */
    const cJSON *ad = cJSON_GetObjectItemCaseSensitive(j, "attention_dropout");
    if (hf_truthy(ad)) {
        json_text(ad, val, sizeof val);
        return ll_fail(err, LL_ERR_UNSUPPORTED,
                       "%s: key 'attention_dropout' = %s is not supported (transformers drops attention "
                       "probabilities while training; only 0 is)", f, val);
    }
    /* weights this engine cannot read as plain tensors */
    const cJSON *qc = cJSON_GetObjectItemCaseSensitive(j, "quantization_config");
    if (qc && !cJSON_IsNull(qc)) {
        json_text(qc, val, sizeof val);
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: key 'quantization_config' = %s is not supported", f, val);
    }
    /* sliding-window attention: key k is visible to query q iff q - k <
     * sliding_window (masking_utils.sliding_window_overlay), which changes
     * nothing for sequences of up to sliding_window tokens; longer ones are
     * refused at run time (p->sliding_window). Mistral applies it to every
     * layer (default 4096, null = none); Qwen2 only with use_sliding_window,
     * to the layers layer_types marks "sliding_attention" (default: index >=
     * max_window_layers). */
    p->sliding_window = 0;
    if (a->window != LL_WINDOW_NONE) {
        const int if_enabled = a->window == LL_WINDOW_IF_ENABLED;
        const cJSON *sw = cJSON_GetObjectItemCaseSensitive(j, "sliding_window");
        int window = sw ? 0 : a->hf_defaults.sliding_window;
        if (sw && !cJSON_IsNull(sw)) {
            if (!cJSON_IsNumber(sw) || sw->valuedouble != floor(sw->valuedouble) || sw->valuedouble < 1 ||
                sw->valuedouble > 2e9) {
                json_text(sw, val, sizeof val);
                return ll_fail(err, LL_ERR_CONFIG, "%s: key 'sliding_window' = %s must be a positive integer or null",
                               f, val);
            }
            window = (int)sw->valuedouble;
        }
        const int typed = a->window == LL_WINDOW_LAYER_TYPES;
        const cJSON *lt = if_enabled || typed ? cJSON_GetObjectItemCaseSensitive(j, "layer_types") : NULL;
        int any_sliding = 0, l = 0;
        memset(p->sliding_layers, 0, sizeof p->sliding_layers);
        if (lt && !cJSON_IsNull(lt)) {
            if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != p->n_layers) {
                json_text(lt, val, sizeof val);
                return ll_fail(err, LL_ERR_CONFIG, "%s: key 'layer_types' = %s must list one type per layer (%d)", f,
                               val, p->n_layers);
            }
            for (const cJSON *it = lt->child; it; it = it->next) {
                if (!cJSON_IsString(it) ||
                    (strcmp(it->valuestring, "sliding_attention") && strcmp(it->valuestring, "full_attention"))) {
                    json_text(it, val, sizeof val);
                    return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: key 'layer_types' holds %s (full_attention and "
                                   "sliding_attention are supported)", f, val);
                }
                const int sliding = !strcmp(it->valuestring, "sliding_attention");
                any_sliding |= sliding;
                if (sliding) p->sliding_layers[l / 64] |= 1ull << (l % 64);
                l++;
            }
        } else if (typed) {
            /* Gemma3TextConfig: layer i global iff (i + 1) % sliding_window_pattern == 0 (default 6) */
            int pattern = a->gguf_sliding_pattern;
            const cJSON *sp = cJSON_GetObjectItemCaseSensitive(j, "sliding_window_pattern");
            if (sp && !cJSON_IsNull(sp)) {
                if (!cJSON_IsNumber(sp) || sp->valuedouble != floor(sp->valuedouble) || sp->valuedouble < 1 ||
                    sp->valuedouble > 1e6) {
                    json_text(sp, val, sizeof val);
                    return ll_fail(err, LL_ERR_CONFIG, "%s: key 'sliding_window_pattern' = %s must be a positive "
                                   "integer", f, val);
                }
                pattern = (int)sp->valuedouble;
            }
            for (l = 0; l < p->n_layers && l < LL_MAX_LAYERS; l++)
                if ((l + 1) % pattern) p->sliding_layers[l / 64] |= 1ull << (l % 64);
        }
        if (if_enabled && window) {
            int any = 0;
            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "use_sliding_window"))) {
                if (lt && !cJSON_IsNull(lt)) {
                    any = any_sliding;
                } else {
                    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "max_window_layers");
                    any = (cJSON_IsNumber(m) ? m->valuedouble : 28.0) < p->n_layers;
                }
            }
            if (!any) window = 0;
        }
        p->sliding_window = window;
        /* Mistral: every layer; Qwen2: layer_types' sliding layers, else those from max_window_layers on */
        if (a->window == LL_WINDOW_EVERY_LAYER || (if_enabled && !(lt && !cJSON_IsNull(lt)))) {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "max_window_layers");
            const int from = if_enabled ? (cJSON_IsNumber(m) ? (int)m->valuedouble : 28) : 0;
            for (l = from < 0 ? 0 : from; l < p->n_layers && l < LL_MAX_LAYERS; l++)
                p->sliding_layers[l / 64] |= 1ull << (l % 64);
        }
        if (!window) memset(p->sliding_layers, 0, sizeof p->sliding_layers);
    }
    return a->hf_defaults.query_pre_attn_scalar > 0 ? hf_parse_gemma(p, j, f, err) : LL_OK;
}

/* Transformers 5 writes rope settings under "rope_parameters", older
 * versions under "rope_theta" / "rope_scaling". */
static int hf_parse_config(ll_checkpoint *c, const char *cfg_path, ll_error *err) {
    char *text = NULL;
    int rc = ll_read_text_file(cfg_path, &text, NULL, err);
    if (rc) return rc;
    c->hf_config = cJSON_Parse(text);
    free(text);
    const cJSON *j = c->hf_config;
    if (!cJSON_IsObject(j)) return ll_fail(err, LL_ERR_FORMAT, "%s: not a JSON object", cfg_path);
    ll_config *p = &c->cfg;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(j, "model_type");
    if (!cJSON_IsString(mt)) return ll_fail(err, LL_ERR_CONFIG, "%s: required key 'model_type' is missing", cfg_path);
    if (!(c->arch = ll_arch_find(mt->valuestring, c->extra_archs))) {
        char names[256];
        ll_arch_list_names(names, sizeof names, c->extra_archs, 0, ", ");
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: model_type '%s' is not supported (%s)", cfg_path,
                       mt->valuestring, names);
    }
    snprintf(p->arch, sizeof p->arch, "%s", c->arch->name);
#define JNUM(obj, name, required, dst, isint)                                                                         \
    do {                                                                                                              \
        const cJSON *x_ = cJSON_GetObjectItemCaseSensitive(obj, name);                                                \
        if (x_ && !cJSON_IsNull(x_)) {                                                                                \
            if (!cJSON_IsNumber(x_) || !isfinite(x_->valuedouble) ||                                                  \
                ((isint) && (x_->valuedouble != floor(x_->valuedouble) || fabs(x_->valuedouble) > 2e9)))              \
                return ll_fail(err, LL_ERR_CONFIG, "%s: key '%s' must be a%s number", cfg_path, name,                 \
                               (isint) ? "n integer" : "");                                                           \
            dst = (isint) ? (int)x_->valuedouble : (float)x_->valuedouble;                                            \
        } else if (required) {                                                                                        \
            return ll_fail(err, LL_ERR_CONFIG, "%s: required key '%s' is missing", cfg_path, name);                   \
        }                                                                                                             \
    } while (0)
    /* other absent keys take the config class's defaults (transformers 5:
     * configuration_{llama,mistral,qwen2}.py) */
    const ll_hf_defaults *d = &c->arch->hf_defaults;
    p->vocab_size = d->vocab_size;
    p->dim = d->hidden_size;
    p->hidden_dim = d->intermediate_size;
    p->n_layers = d->num_hidden_layers;
    p->n_heads = d->num_attention_heads;
    p->max_seq_len = d->max_position_embeddings;
    p->rms_eps = d->rms_norm_eps;
    p->bos_token_id = d->bos_token_id;
    p->eos_token_id = d->eos_token_id;
    if (d->rope_theta > 0) p->rope_theta = d->rope_theta;
    p->rope_local_theta = d->rope_local_theta;
    p->query_pre_attn_scalar = d->query_pre_attn_scalar;
    /* the sizes that fix every tensor's shape are required: transformers'
     * defaults (a 7B model's) never fit a checkpoint that leaves them out */
    JNUM(j, "hidden_size", 1, p->dim, 1);
    JNUM(j, "intermediate_size", 1, p->hidden_dim, 1);
    JNUM(j, "num_hidden_layers", 1, p->n_layers, 1);
    JNUM(j, "num_attention_heads", 1, p->n_heads, 1);
    p->n_kv_heads = d->num_key_value_heads ? d->num_key_value_heads : p->n_heads;
    JNUM(j, "num_key_value_heads", 0, p->n_kv_heads, 1);
    p->head_dim = d->head_dim ? d->head_dim : p->n_heads > 0 ? p->dim / p->n_heads : 0;
    const cJSON *hd_key = cJSON_GetObjectItemCaseSensitive(j, "head_dim");
    const int head_dim_given = d->head_dim || (hd_key && !cJSON_IsNull(hd_key));
    JNUM(j, "head_dim", 0, p->head_dim, 1);
    JNUM(j, "vocab_size", 1, p->vocab_size, 1);
    const cJSON *mp_key = cJSON_GetObjectItemCaseSensitive(j, "max_position_embeddings");
    const int max_pos_given = mp_key && !cJSON_IsNull(mp_key);
    JNUM(j, "max_position_embeddings", 0, p->max_seq_len, 1);
    JNUM(j, "rms_norm_eps", 0, p->rms_eps, 0);
    /* special ids (no effect on the hidden states); eos may be a list: its first id */
    const char *id_keys[2] = {"bos_token_id", "eos_token_id"};
    int *id_dst[2] = {&p->bos_token_id, &p->eos_token_id};
    for (int i = 0; i < 2; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, id_keys[i]);
        if (cJSON_IsArray(x)) x = x->child;
        if (cJSON_IsNumber(x) && x->valuedouble == floor(x->valuedouble) && fabs(x->valuedouble) < 2e9)
            *id_dst[i] = (int)x->valuedouble;
    }
    JNUM(j, "rope_theta", 0, p->rope_theta, 0);
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(j, "tie_word_embeddings");
    p->tied_embeddings = tie ? cJSON_IsTrue(tie) : d->tie_word_embeddings;
    if ((rc = hf_parse_semantics(p, c->arch, j, cfg_path, err))) return rc;
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(j, "rope_parameters");
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(j, "rope_scaling");
    /* Gemma 3: rope_parameters per layer type (transformers 5), or rope_theta, rope_scaling (the global layers')
     * and rope_local_base_freq */
    const char *rp_key = "rope_parameters";
    if (d->rope_local_theta > 0) {
        JNUM(j, "rope_local_base_freq", 0, p->rope_local_theta, 0);
        const cJSON *local = cJSON_IsObject(rp) ? cJSON_GetObjectItemCaseSensitive(rp, "sliding_attention") : NULL;
        if (cJSON_IsObject(local)) {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(local, "rope_type");
            if (type && !(cJSON_IsString(type) && !strcmp(type->valuestring, "default"))) {
                char val[64];
                json_text(type, val, sizeof val);
                return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: key 'rope_parameters.sliding_attention.rope_type' = %s "
                               "is not supported (default is)", cfg_path, val);
            }
            JNUM(local, "rope_theta", 0, p->rope_local_theta, 0);
        }
        if (cJSON_IsObject(rp)) {
            const cJSON *global = cJSON_GetObjectItemCaseSensitive(rp, "full_attention");
            rp = cJSON_IsObject(global) ? global : NULL;
            rp_key = "rope_parameters.full_attention";
        }
        if (!(p->rope_local_theta > 0 && isfinite(p->rope_local_theta)))
            return ll_fail(err, LL_ERR_CONFIG, "%s: the sliding layers' RoPE base (rope_local_base_freq) = %g: must "
                           "be > 0", cfg_path, p->rope_local_theta);
    }
    /* transformers 5 then takes rope_scaling alone, with the default rope_theta, whatever rope_parameters says: a
     * file that states two settings is refused rather than read as either */
    if (cJSON_IsObject(rp) && cJSON_IsObject(rs))
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: holds both 'rope_parameters' and 'rope_scaling': ambiguous "
                       "(transformers uses 'rope_scaling' with the default rope_theta and ignores 'rope_parameters'); "
                       "keep one of them", cfg_path);
    const char *theta_key = "rope_theta";
    if (cJSON_IsObject(rp)) {
        if (cJSON_GetObjectItemCaseSensitive(rp, "rope_theta"))
            theta_key = !strcmp(rp_key, "rope_parameters") ? "rope_parameters.rope_theta"
                                                           : "rope_parameters.full_attention.rope_theta";
        JNUM(rp, "rope_theta", 0, p->rope_theta, 0);
    }
    const cJSON *scale = cJSON_IsObject(rs) ? rs : (cJSON_IsObject(rp) ? rp : NULL);
    const char *scale_key = scale == rs ? "rope_scaling" : rp_key;
    if (scale) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(scale, "rope_type");
        if (!cJSON_IsString(type)) type = cJSON_GetObjectItemCaseSensitive(scale, "type");
        const char *t = cJSON_IsString(type) ? type->valuestring : "default";
        if (!strcmp(t, "default")) {
            p->rope_scaling = LL_ROPE_NONE;
        } else if (!strcmp(t, "linear")) {
            p->rope_scaling = LL_ROPE_LINEAR;
            JNUM(scale, "factor", 1, p->rope_factor, 0);
        } else if (!strcmp(t, "llama3")) {
            p->rope_scaling = LL_ROPE_LLAMA3;
            JNUM(scale, "factor", 1, p->rope_factor, 0);
            JNUM(scale, "low_freq_factor", 1, p->rope_low_freq_factor, 0);
            JNUM(scale, "high_freq_factor", 1, p->rope_high_freq_factor, 0);
            JNUM(scale, "original_max_position_embeddings", 1, p->rope_original_max_pos, 1);
        } else {
            return ll_fail(err, LL_ERR_UNSUPPORTED,
                           "%s: key '%s.rope_type' = '%s' is not supported (default, linear and llama3 are)", cfg_path,
                           scale_key, t);
        }
    }
    /* partial rotary embeddings (modeling_rope_utils: rotate only
     * head_dim * partial_rotary_factor dimensions) */
    const cJSON *where[2] = {j, scale};
    for (int i = 0; i < 2; i++) {
        const cJSON *prf = where[i] ? cJSON_GetObjectItemCaseSensitive(where[i], "partial_rotary_factor") : NULL;
        if (prf && !cJSON_IsNull(prf) && !(cJSON_IsNumber(prf) && prf->valuedouble == 1.0)) {
            char val[64];
            json_text(prf, val, sizeof val);
            return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: key '%s%spartial_rotary_factor' = %s is not supported (only 1)",
                           cfg_path, i ? scale_key : "", i ? "." : "", val);
        }
    }
#undef JNUM
    return hf_check_config(p, cfg_path, head_dim_given, max_pos_given, theta_key, scale_key, err);
}

/* Canonical name for a Hugging Face tensor name. A bare base model
 * (LlamaModel) saves its layers, embedding and final norm without the row's
 * base prefix ("layers.0...", not "model.layers.0..."). */
static void hf_canonical_name(const ll_arch *a, const char *name, char *out, size_t cap) {
    char full[256];
    const char *base = a->hf_base_prefix ? a->hf_base_prefix : "";
    const size_t nb = strlen(base);
    const char *bare_layers = !strncmp(a->hf_layer_prefix, base, nb) ? a->hf_layer_prefix + nb : NULL;
    snprintf(full, sizeof full, "%s%s", base, name);
    const ll_arch_tensor *emb = ll_arch_tensor_of(a, LL_ROLE_TOKEN_EMBD), *norm = ll_arch_tensor_of(a, LL_ROLE_OUTPUT_NORM);
    const int bare = nb && ((bare_layers && !strncmp(name, bare_layers, strlen(bare_layers))) ||
                            (emb && !strcmp(full, emb->hf)) || (norm && !strcmp(full, norm->hf)));
    canonical_name(a, 0, bare ? full : name, out, cap, NULL);
}

static int hf_add_shard(ll_checkpoint *c, const char *shard_path, ll_error *err) {
    ll_st_file **s = realloc(c->shards, (c->n_shards + 1) * sizeof *s);
    if (!s) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    c->shards = s;
    ll_st_file *f;
    int rc = ll_st_open(&f, shard_path, err);
    if (rc) return rc;
    c->shards[c->n_shards++] = f;
    for (size_t i = 0; i < f->n_tensors; i++) {
        const ll_st_tensor *t = &f->tensors[i];
        char name[256];
        hf_canonical_name(c->arch, t->name, name, sizeof name);
        if (ll_checkpoint_find(c, name))
            return ll_fail(err, LL_ERR_FORMAT, "%s: tensor '%s' is also in another shard", f->file.path, t->name);
        if ((rc = add_tensor(c, name, t->name, t->dtype_name, t->dtype, t->ndim, t->shape, t->data, t->nbytes,
                             f->file.path, 0, err)))
            return rc;
    }
    return LL_OK;
}

static int open_hf(ll_checkpoint *c, const char *dir, const char *single_file, ll_error *err) {
    snprintf(c->format, sizeof c->format, "safetensors");
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    int rc = hf_parse_config(c, path, err);
    if (rc) return rc;
    if (single_file) return hf_add_shard(c, single_file, err);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (path_exists(path)) return hf_add_shard(c, path, err);
    char index_path[4096];
    snprintf(index_path, sizeof index_path, "%s/model.safetensors.index.json", dir);
    if (!path_exists(index_path))
        return ll_fail(err, LL_ERR_IO, "%s: neither model.safetensors nor model.safetensors.index.json found", dir);
    char *text;
    if ((rc = ll_read_text_file(index_path, &text, NULL, err))) return rc;
    cJSON *idx = cJSON_Parse(text);
    free(text);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(idx, "weight_map");
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(idx);
        return ll_fail(err, LL_ERR_FORMAT, "%s: no 'weight_map' object", index_path);
    }
    /* Open each distinct shard once, in order of first mention. */
    for (const cJSON *it = map->child; it && !rc; it = it->next) {
        if (!cJSON_IsString(it) || strchr(it->valuestring, '/')) {
            rc = ll_fail(err, LL_ERR_FORMAT, "%s: weight_map entry '%s' must name a file in the same folder",
                         index_path, it->string ? it->string : "?");
            break;
        }
        int seen = 0;
        for (const cJSON *jt = map->child; jt != it; jt = jt->next)
            if (cJSON_IsString(jt) && !strcmp(jt->valuestring, it->valuestring)) seen = 1;
        if (seen) continue;
        snprintf(path, sizeof path, "%s/%s", dir, it->valuestring);
        rc = hf_add_shard(c, path, err);
    }
    /* Every tensor the index names must be in the shard it names. */
    for (const cJSON *it = map->child; it && !rc; it = it->next) {
        char name[256];
        hf_canonical_name(c->arch, it->string, name, sizeof name);
        const ll_tensor_info *t = ll_checkpoint_find(c, name);
        const char *base = t ? strrchr(t->file, '/') : NULL;
        base = base ? base + 1 : (t ? t->file : "");
        if (!t || strcmp(base, it->valuestring))
            rc = ll_fail(err, LL_ERR_SHAPE, "%s: tensor '%s' is listed for %s but not found there", index_path,
                         it->string, it->valuestring);
    }
    cJSON_Delete(idx);
    return rc;
}

/* ---- llama2.c legacy checkpoints ------------------------------------------ */

static int open_llama2c(ll_checkpoint *c, ll_error *err) {
    snprintf(c->format, sizeof c->format, "llama2c");
    int rc = ll_map_file(&c->raw, c->path, err);
    if (rc) return rc;
    if (c->raw.size < 28)
        return ll_fail(err, LL_ERR_FORMAT, "%s: too short for a llama2.c checkpoint (%zu bytes)", c->path,
                       c->raw.size);
    int32_t h[7];
    memcpy(h, c->raw.data, sizeof h);
    if ((uint32_t)h[0] == 0x616b3432u)
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: llama2.c version-2 (\"ak42\") checkpoints are not supported",
                       c->path);
    ll_config *p = &c->cfg;
    c->arch = ll_arch_find("llama", NULL);
    snprintf(p->arch, sizeof p->arch, "%s", c->arch->name);
    p->dim = h[0];
    p->hidden_dim = h[1];
    p->n_layers = h[2];
    p->n_heads = h[3];
    p->n_kv_heads = h[4];
    p->tied_embeddings = h[5] > 0;
    p->vocab_size = h[5] > 0 ? h[5] : (h[5] == INT32_MIN ? 0 : -h[5]);
    p->max_seq_len = h[6];
    p->head_dim = p->n_heads > 0 ? p->dim / p->n_heads : 0;
    p->bos_token_id = 1;
    p->eos_token_id = 2;
    /* Any file without GGUF magic ends up here: say how it was read. */
    char what[4200];
    snprintf(what, sizeof what, "%s: not a GGUF, safetensors or valid llama2.c model file: read as a llama2.c header "
             "(no GGUF magic)", c->path);
    if (p->n_heads > 0 && p->dim % p->n_heads) /* before the derived head dimension is checked */
        return ll_fail(err, LL_ERR_CONFIG, "%s: dim %d is not a multiple of %d heads", what, p->dim, p->n_heads);
    if ((rc = ll_config_validate(p, what, err))) return rc;
    if (p->max_seq_len <= 0 || p->max_seq_len > 1 << 20)
        return ll_fail(err, LL_ERR_CONFIG, "%s: sequence length %d", what, p->max_seq_len);
    const int64_t D = p->dim, F = p->hidden_dim, L = p->n_layers, V = p->vocab_size, hd = p->head_dim;
    const int64_t KV = (int64_t)p->n_kv_heads * hd, S = p->max_seq_len;
    /* Tensors in file order; per-layer tensors are stacked [L, ...]. */
    struct {
        const char *name;
        int64_t rows, cols;
        int per_layer, interleaved;
    } order[] = {
        {"model.embed_tokens.weight", V, D, 0, 0},
        {"input_layernorm.weight", 1, D, 1, 0},
        {"self_attn.q_proj.weight", D, D, 1, 1},
        {"self_attn.k_proj.weight", KV, D, 1, 1},
        {"self_attn.v_proj.weight", KV, D, 1, 0},
        {"self_attn.o_proj.weight", D, D, 1, 0},
        {"post_attention_layernorm.weight", 1, D, 1, 0},
        {"mlp.gate_proj.weight", F, D, 1, 0},
        {"mlp.down_proj.weight", D, F, 1, 0},
        {"mlp.up_proj.weight", F, D, 1, 0},
        {"model.norm.weight", 1, D, 0, 0},
        {"(freq_cis_real)", S, hd / 2, 0, 0},
        {"(freq_cis_imag)", S, hd / 2, 0, 0},
        {"lm_head.weight", V, D, 0, 0},
    };
    const size_t n_order = sizeof order / sizeof order[0] - (p->tied_embeddings ? 1 : 0);
    uint64_t off = 28;
    for (size_t i = 0; i < n_order; i++) {
        const uint64_t per = (uint64_t)order[i].rows * (uint64_t)order[i].cols * 4;
        const int reps = order[i].per_layer ? (int)L : 1;
        for (int l = 0; l < reps; l++) {
            char name[160];
            if (order[i].per_layer) snprintf(name, sizeof name, "model.layers.%d.%s", l, order[i].name);
            else snprintf(name, sizeof name, "%s", order[i].name);
            if (off + per > c->raw.size)
                return ll_fail(err, LL_ERR_FORMAT, "%s: file ends inside tensor '%s' (needs %llu bytes, has %zu)",
                               c->path, name, (unsigned long long)(off + per), c->raw.size);
            if (order[i].name[0] != '(') {
                int64_t shape[2] = {order[i].rows, order[i].cols};
                const int ndim = order[i].rows == 1 ? 1 : 2;
                if ((rc = add_tensor(c, name, name, "F32", LL_DTYPE_F32, ndim, ndim == 1 ? shape + 1 : shape,
                                     c->raw.data + off, per, c->path, order[i].interleaved, err)))
                    return rc;
            }
            off += per;
        }
    }
    if (off != c->raw.size)
        return ll_fail(err, LL_ERR_FORMAT, "%s: %zu bytes, but the header implies %llu (wrong header or not a llama2.c file)",
                       c->path, c->raw.size, (unsigned long long)off);
    return LL_OK;
}

/* ---- entry point ---------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

int ll_checkpoint_open(ll_checkpoint **out, const char *path, ll_error *err) {
    return ll_checkpoint_open_archs(out, path, NULL, err);
}

int ll_checkpoint_open_archs(ll_checkpoint **out, const char *path, const ll_arch *const *extra_archs,
                             ll_error *err) {
    *out = NULL;
    ll_checkpoint *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(path))) {
        free(c);
        return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    }
    c->extra_archs = extra_archs;
    config_defaults(&c->cfg);
    int rc;
    if (path_is_dir(path)) {
        rc = open_hf(c, path, NULL, err);
    } else if (ends_with(path, ".safetensors")) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
        rc = open_hf(c, dir, path, err);
    } else {
        FILE *fp = fopen(path, "rb");
        if (!fp) {
            rc = ll_fail(err, LL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        } else {
            char magic[4] = {0};
            size_t got = fread(magic, 1, 4, fp);
            fclose(fp);
            if (got == 4 && !memcmp(magic, "GGUF", 4)) rc = open_gguf(c, err);
            else rc = open_llama2c(c, err);
        }
    }
    if (!rc) rc = ll_config_validate(&c->cfg, path, err);
    if (rc) {
        ll_checkpoint_close(c);
        return rc;
    }
    *out = c;
    return LL_OK;
}

int ll_checkpoint_from_gguf(ll_checkpoint **out, ll_gguf_file *g, ll_error *err) {
    *out = NULL;
    ll_checkpoint *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(g->file.path ? g->file.path : "<memory>"))) {
        free(c);
        ll_gguf_close(g);
        return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    }
    config_defaults(&c->cfg);
    c->gguf = g;
    int rc = gguf_build(c, err);
    if (!rc) rc = ll_config_validate(&c->cfg, c->path, err);
    if (rc) {
        ll_checkpoint_close(c);
        return rc;
    }
    *out = c;
    return LL_OK;
}

void ll_checkpoint_visit_metadata(const ll_checkpoint *c, ll_meta_visitor fn, void *ctx) {
    char val[256];
    if (c->gguf) {
        const ll_gguf_file *g = c->gguf;
        snprintf(val, sizeof val, "%u", g->version);
        fn(ctx, "GGUF.version", val);
        for (uint64_t i = 0; i < g->n_kv; i++) {
            const ll_gguf_kv *kv = &g->kv[i];
            switch (kv->type) {
            case GGUF_TYPE_STRING:
                snprintf(val, sizeof val, "%.*s%s", (int)(kv->str.len > 80 ? 80 : kv->str.len), kv->str.ptr,
                         kv->str.len > 80 ? "..." : "");
                for (char *q = val; *q; q++)
                    if (*q == '\n' || *q == '\r' || *q == '\t') *q = ' ';
                break;
            case GGUF_TYPE_ARRAY:
                snprintf(val, sizeof val, "[%llu x %s]", (unsigned long long)kv->arr_n, ll_gguf_type_name(kv->arr_type));
                break;
            case GGUF_TYPE_FLOAT32: case GGUF_TYPE_FLOAT64: snprintf(val, sizeof val, "%g", kv->num.f); break;
            case GGUF_TYPE_BOOL: snprintf(val, sizeof val, "%s", kv->num.u ? "true" : "false"); break;
            case GGUF_TYPE_INT8: case GGUF_TYPE_INT16: case GGUF_TYPE_INT32: case GGUF_TYPE_INT64:
                snprintf(val, sizeof val, "%lld", (long long)kv->num.i);
                break;
            default: snprintf(val, sizeof val, "%llu", (unsigned long long)kv->num.u); break;
            }
            fn(ctx, kv->key, val);
        }
    } else if (c->hf_config) {
        for (const cJSON *it = c->hf_config->child; it; it = it->next) {
            char *s = cJSON_PrintUnformatted(it);
            if (!s) continue;
            snprintf(val, sizeof val, "%s", s);
            free(s);
            fn(ctx, it->string ? it->string : "?", val);
        }
    }
}
