/* Test-side writers for tiny checkpoints: GGUF v3, safetensors (+ config.json
 * and sharded index), llama2.c .bin. Tests build a valid model, then break one
 * thing (a key, a tensor, a byte) before serializing, so every bad-input case
 * is a small, readable edit of a known-good file.
 *
 * Weights are kept in Hugging Face layout ([out, in], rotate-half q/k rows);
 * the GGUF and llama2.c writers permute q/k rows to the interleaved order
 * those formats use: HF row (h, j*hd/2 + i) <-> stored row (h, 2i + j). */
#ifndef LL_TESTS_FIXTURE_WRITER_H
#define LL_TESTS_FIXTURE_WRITER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- growable byte buffer ------------------------------------------------- */

typedef struct fw_buf {
    uint8_t *p;
    size_t n, cap;
} fw_buf;

static inline void fw_put(fw_buf *b, const void *src, size_t n) {
    /* src may point into b itself (appending a copy of its own bytes) */
    const int inside = b->p && (const uint8_t *)src >= b->p && (const uint8_t *)src < b->p + b->n;
    const size_t src_off = inside ? (size_t)((const uint8_t *)src - b->p) : 0;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    if (inside) src = b->p + src_off;
    if (n) memmove(b->p + b->n, src, n);
    b->n += n;
}
static inline void fw_u8(fw_buf *b, uint8_t v) { fw_put(b, &v, 1); }
static inline void fw_u32(fw_buf *b, uint32_t v) { fw_put(b, &v, 4); }
static inline void fw_i32(fw_buf *b, int32_t v) { fw_put(b, &v, 4); }
static inline void fw_u64(fw_buf *b, uint64_t v) { fw_put(b, &v, 8); }
static inline void fw_f32(fw_buf *b, float v) { fw_put(b, &v, 4); }
static inline void fw_gstr(fw_buf *b, const char *s) { /* GGUF string: u64 length + bytes */
    fw_u64(b, strlen(s));
    fw_put(b, s, strlen(s));
}
static inline void fw_text(fw_buf *b, const char *s) { fw_put(b, s, strlen(s)); }
static inline void fw_pad(fw_buf *b, size_t align, uint8_t fill) {
    while (b->n % align) fw_u8(b, fill);
}
static inline void fw_free(fw_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

static inline int fw_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return fclose(f) == 0 && w == n;
}
static inline int fw_write_text(const char *path, const char *s) { return fw_write_file(path, s, strlen(s)); }

/* ---- the tiny model ------------------------------------------------------- */

typedef struct fw_model {
    int dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
    float eps, theta;
    /* HF layout, all f32 */
    float *emb;                      /* [vocab, dim] */
    float *attn_norm, *ffn_norm;     /* [L, dim] */
    float *wq, *wk, *wv, *wo;        /* [L, QD, dim], [L, KVD, dim] x2, [L, dim, QD] */
    float *gate, *up, *down;         /* [L, F, dim] x2, [L, dim, F] */
    float *final_norm;               /* [dim] */
} fw_model;

static uint64_t fw_rng_state = 0x9E3779B97F4A7C15ull;
static inline float fw_randf(void) { /* uniform in [-1, 1) */
    fw_rng_state ^= fw_rng_state << 13;
    fw_rng_state ^= fw_rng_state >> 7;
    fw_rng_state ^= fw_rng_state << 17;
    return (float)((fw_rng_state >> 40) * (1.0 / (1 << 23)) - 1.0);
}
static inline float *fw_rand_array(size_t n, float center, float scale) {
    float *a = malloc((n ? n : 1) * sizeof *a);
    if (!a) abort();
    for (size_t i = 0; i < n; i++) a[i] = center + scale * fw_randf();
    return a;
}

static inline int fw_head_dim(const fw_model *m) { return m->dim / m->n_heads; }

static inline void fw_model_init(fw_model *m, int dim, int hidden, int n_layers, int n_heads, int n_kv_heads, int vocab) {
    memset(m, 0, sizeof *m);
    m->dim = dim, m->hidden = hidden, m->n_layers = n_layers, m->n_heads = n_heads, m->n_kv_heads = n_kv_heads;
    m->vocab = vocab, m->seq_len = 32, m->eps = 1e-5f, m->theta = 10000.0f;
    const size_t D = dim, F = hidden, L = n_layers, hd = dim / n_heads, QD = n_heads * hd, KVD = n_kv_heads * hd;
    m->emb = fw_rand_array((size_t)vocab * D, 0, 0.5f);
    m->attn_norm = fw_rand_array(L * D, 1, 0.2f);
    m->ffn_norm = fw_rand_array(L * D, 1, 0.2f);
    m->wq = fw_rand_array(L * QD * D, 0, 0.4f);
    m->wk = fw_rand_array(L * KVD * D, 0, 0.4f);
    m->wv = fw_rand_array(L * KVD * D, 0, 0.4f);
    m->wo = fw_rand_array(L * D * QD, 0, 0.4f);
    m->gate = fw_rand_array(L * F * D, 0, 0.4f);
    m->up = fw_rand_array(L * F * D, 0, 0.4f);
    m->down = fw_rand_array(L * D * F, 0, 0.4f);
    m->final_norm = fw_rand_array(D, 1, 0.2f);
}

static inline void fw_model_free(fw_model *m) {
    free(m->emb), free(m->attn_norm), free(m->ffn_norm), free(m->wq), free(m->wk), free(m->wv), free(m->wo);
    free(m->gate), free(m->up), free(m->down), free(m->final_norm);
    memset(m, 0, sizeof *m);
}

/* Copy of rows x cols with the rows of every head of head_dim rows moved from
 * HF order (j*hd/2 + i) to interleaved order (2i + j). */
static inline float *fw_interleave_rows(const float *w, size_t rows, size_t cols, size_t head_dim) {
    float *out = malloc(rows * cols * sizeof *out);
    if (!out) abort();
    const size_t half = head_dim / 2;
    for (size_t h = 0; h < rows / head_dim; h++)
        for (size_t i = 0; i < half; i++)
            for (size_t j = 0; j < 2; j++)
                memcpy(out + (h * head_dim + 2 * i + j) * cols, w + (h * head_dim + j * half + i) * cols,
                       cols * sizeof *out);
    return out;
}

/* One named tensor of the model, HF names and shapes. Enumerates in a fixed
 * order: embedding, then per layer, then the final norm. */
typedef struct fw_tensor_ref {
    char hf_name[96], gguf_name[96];
    int ndim;
    int64_t shape[2]; /* outermost first */
    const float *data;
    int interleave;   /* q/k: stored interleaved in GGUF/llama2.c */
} fw_tensor_ref;

static inline size_t fw_model_tensors(const fw_model *m, fw_tensor_ref *out, size_t cap) {
    const size_t D = m->dim, F = m->hidden, hd = fw_head_dim(m), QD = m->n_heads * hd, KVD = m->n_kv_heads * hd;
    size_t n = 0;
#define FW_ADD(hf, gg, nd, r, c, ptr, il)                                                                             \
    do {                                                                                                              \
        if (n < cap) {                                                                                                \
            fw_tensor_ref *t_ = &out[n];                                                                              \
            snprintf(t_->hf_name, sizeof t_->hf_name, "%s", hf);                                                      \
            snprintf(t_->gguf_name, sizeof t_->gguf_name, "%s", gg);                                                  \
            t_->ndim = nd, t_->shape[0] = nd == 1 ? (int64_t)(c) : (int64_t)(r), t_->shape[1] = (int64_t)(c);         \
            t_->data = ptr, t_->interleave = il;                                                                      \
        }                                                                                                             \
        n++;                                                                                                          \
    } while (0)
    FW_ADD("model.embed_tokens.weight", "token_embd.weight", 2, m->vocab, D, m->emb, 0);
    for (int l = 0; l < m->n_layers; l++) {
        char hf[96], gg[96];
#define FW_LAYER(hfs, ggs, nd, r, c, ptr, il)                                                                         \
    do {                                                                                                              \
        snprintf(hf, sizeof hf, "model.layers.%d.%s", l, hfs);                                                        \
        snprintf(gg, sizeof gg, "blk.%d.%s", l, ggs);                                                                 \
        FW_ADD(hf, gg, nd, r, c, ptr, il);                                                                            \
    } while (0)
        FW_LAYER("input_layernorm.weight", "attn_norm.weight", 1, 1, D, m->attn_norm + l * D, 0);
        FW_LAYER("self_attn.q_proj.weight", "attn_q.weight", 2, QD, D, m->wq + l * QD * D, 1);
        FW_LAYER("self_attn.k_proj.weight", "attn_k.weight", 2, KVD, D, m->wk + l * KVD * D, 1);
        FW_LAYER("self_attn.v_proj.weight", "attn_v.weight", 2, KVD, D, m->wv + l * KVD * D, 0);
        FW_LAYER("self_attn.o_proj.weight", "attn_output.weight", 2, D, QD, m->wo + l * D * QD, 0);
        FW_LAYER("post_attention_layernorm.weight", "ffn_norm.weight", 1, 1, D, m->ffn_norm + l * D, 0);
        FW_LAYER("mlp.gate_proj.weight", "ffn_gate.weight", 2, F, D, m->gate + l * F * D, 0);
        FW_LAYER("mlp.up_proj.weight", "ffn_up.weight", 2, F, D, m->up + l * F * D, 0);
        FW_LAYER("mlp.down_proj.weight", "ffn_down.weight", 2, D, F, m->down + l * D * F, 0);
#undef FW_LAYER
    }
    FW_ADD("model.norm.weight", "output_norm.weight", 1, 1, D, m->final_norm, 0);
#undef FW_ADD
    return n;
}

/* ---- GGUF ----------------------------------------------------------------- */

enum { FW_GGUF_UINT32 = 4, FW_GGUF_INT32 = 5, FW_GGUF_FLOAT32 = 6, FW_GGUF_STRING = 8, FW_GGUF_ARRAY = 9 };

#define FW_MAX_KV 64
#define FW_MAX_TENSORS 64

typedef struct fw_gguf_kv {
    char key[96];
    uint32_t type;
    fw_buf val; /* encoded value, without the type */
} fw_gguf_kv;

typedef struct fw_gguf_tensor {
    char name[96];
    uint32_t n_dims;
    uint64_t ne[8];   /* GGML order: ne[0] contiguous */
    uint32_t type;    /* GGML type id */
    fw_buf data;      /* raw bytes */
    int64_t offset;   /* -1: computed (aligned); else written as is */
} fw_gguf_tensor;

typedef struct fw_gguf {
    uint32_t version;
    int64_t n_kv_override, n_tensors_override; /* -1: real counts */
    fw_gguf_kv kv[FW_MAX_KV];
    size_t n_kv;
    fw_gguf_tensor t[FW_MAX_TENSORS];
    size_t n_t;
} fw_gguf;

static inline fw_gguf_kv *fw_gguf_find_kv(fw_gguf *g, const char *key) {
    for (size_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}
/* Add a key, or replace the value of an existing one (keeping its place). */
static inline fw_gguf_kv *fw_gguf_kv_begin(fw_gguf *g, const char *key, uint32_t type) {
    fw_gguf_kv *kv = fw_gguf_find_kv(g, key);
    if (!kv) {
        if (g->n_kv == FW_MAX_KV) abort();
        kv = &g->kv[g->n_kv++];
        memset(kv, 0, sizeof *kv);
        snprintf(kv->key, sizeof kv->key, "%s", key);
    }
    kv->type = type;
    kv->val.n = 0;
    return kv;
}
static inline void fw_gguf_set_u32(fw_gguf *g, const char *key, uint32_t v) { fw_u32(&fw_gguf_kv_begin(g, key, FW_GGUF_UINT32)->val, v); }
static inline void fw_gguf_set_i32(fw_gguf *g, const char *key, int32_t v) { fw_i32(&fw_gguf_kv_begin(g, key, FW_GGUF_INT32)->val, v); }
static inline void fw_gguf_set_f32(fw_gguf *g, const char *key, float v) { fw_f32(&fw_gguf_kv_begin(g, key, FW_GGUF_FLOAT32)->val, v); }
static inline void fw_gguf_set_str(fw_gguf *g, const char *key, const char *s) { fw_gstr(&fw_gguf_kv_begin(g, key, FW_GGUF_STRING)->val, s); }
/* Any type: raw encoded value bytes. */
static inline void fw_gguf_set_raw(fw_gguf *g, const char *key, uint32_t type, const void *val, size_t n) {
    fw_put(&fw_gguf_kv_begin(g, key, type)->val, val, n);
}
static inline void fw_gguf_set_str_array(fw_gguf *g, const char *key, const char *const *s, size_t n) {
    fw_buf *b = &fw_gguf_kv_begin(g, key, FW_GGUF_ARRAY)->val;
    fw_u32(b, FW_GGUF_STRING);
    fw_u64(b, n);
    for (size_t i = 0; i < n; i++) fw_gstr(b, s[i]);
}
static inline void fw_gguf_remove_kv(fw_gguf *g, const char *key) {
    fw_gguf_kv *kv = fw_gguf_find_kv(g, key);
    if (!kv) abort();
    fw_free(&kv->val);
    memmove(kv, kv + 1, (size_t)(g->kv + g->n_kv - kv - 1) * sizeof *kv);
    g->n_kv--;
}

static inline fw_gguf_tensor *fw_gguf_find_tensor(fw_gguf *g, const char *name) {
    for (size_t i = 0; i < g->n_t; i++)
        if (!strcmp(g->t[i].name, name)) return &g->t[i];
    return NULL;
}
static inline fw_gguf_tensor *fw_gguf_get_tensor(fw_gguf *g, const char *name) { /* must exist */
    fw_gguf_tensor *t = fw_gguf_find_tensor(g, name);
    if (!t) abort();
    return t;
}
static inline fw_gguf_tensor *fw_gguf_add_tensor(fw_gguf *g, const char *name, uint32_t type, uint32_t n_dims,
                                          const uint64_t *ne, const void *data, size_t nbytes) {
    if (g->n_t == FW_MAX_TENSORS) abort();
    fw_gguf_tensor *t = &g->t[g->n_t++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < n_dims && d < 8; d++) t->ne[d] = ne[d];
    t->type = type;
    t->offset = -1;
    fw_put(&t->data, data, nbytes);
    return t;
}
static inline void fw_gguf_remove_tensor(fw_gguf *g, const char *name) {
    fw_gguf_tensor *t = fw_gguf_find_tensor(g, name);
    if (!t) abort();
    fw_free(&t->data);
    memmove(t, t + 1, (size_t)(g->t + g->n_t - t - 1) * sizeof *t);
    g->n_t--;
}

static inline void fw_gguf_free(fw_gguf *g) {
    for (size_t i = 0; i < g->n_kv; i++) fw_free(&g->kv[i].val);
    for (size_t i = 0; i < g->n_t; i++) fw_free(&g->t[i].data);
    memset(g, 0, sizeof *g);
}

/* Serialize with 32-byte alignment. *header_end receives the size of the
 * header before padding (optional). */
static inline void fw_gguf_serialize(const fw_gguf *g, fw_buf *out, size_t *header_end) {
    out->n = 0;
    fw_text(out, "GGUF");
    fw_u32(out, g->version);
    fw_u64(out, g->n_tensors_override >= 0 ? (uint64_t)g->n_tensors_override : g->n_t);
    fw_u64(out, g->n_kv_override >= 0 ? (uint64_t)g->n_kv_override : g->n_kv);
    for (size_t i = 0; i < g->n_kv; i++) {
        fw_gstr(out, g->kv[i].key);
        fw_u32(out, g->kv[i].type);
        fw_put(out, g->kv[i].val.p, g->kv[i].val.n);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < g->n_t; i++) {
        const fw_gguf_tensor *t = &g->t[i];
        fw_gstr(out, t->name);
        fw_u32(out, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) fw_u64(out, d < 8 ? t->ne[d] : 1);
        fw_u32(out, t->type);
        fw_u64(out, t->offset >= 0 ? (uint64_t)t->offset : off);
        off += (t->data.n + 31) / 32 * 32;
    }
    if (header_end) *header_end = out->n;
    fw_pad(out, 32, 0);
    for (size_t i = 0; i < g->n_t; i++) {
        fw_put(out, g->t[i].data.p, g->t[i].data.n);
        fw_pad(out, 32, 0);
    }
}

static const char *const fw_vocab_tokens[] = {"<unk>", "<s>", "</s>", "a", "b", "c", "d", "e",
                                              "f",     "g",   "h",    "i", "j", "k", "l", "m"};

/* The model as a complete llama GGUF v3 file description. */
static inline void fw_gguf_from_model(fw_gguf *g, const fw_model *m) {
    memset(g, 0, sizeof *g);
    g->version = 3;
    g->n_kv_override = g->n_tensors_override = -1;
    fw_gguf_set_str(g, "general.architecture", "llama");
    fw_gguf_set_str(g, "general.name", "tiny");
    fw_gguf_set_u32(g, "llama.context_length", (uint32_t)m->seq_len);
    fw_gguf_set_u32(g, "llama.embedding_length", (uint32_t)m->dim);
    fw_gguf_set_u32(g, "llama.feed_forward_length", (uint32_t)m->hidden);
    fw_gguf_set_u32(g, "llama.block_count", (uint32_t)m->n_layers);
    fw_gguf_set_u32(g, "llama.attention.head_count", (uint32_t)m->n_heads);
    fw_gguf_set_u32(g, "llama.attention.head_count_kv", (uint32_t)m->n_kv_heads);
    fw_gguf_set_f32(g, "llama.attention.layer_norm_rms_epsilon", m->eps);
    fw_gguf_set_f32(g, "llama.rope.freq_base", m->theta);
    fw_gguf_set_u32(g, "llama.rope.dimension_count", (uint32_t)fw_head_dim(m));
    fw_gguf_set_str(g, "tokenizer.ggml.model", "llama");
    const char *toks[256];
    for (int i = 0; i < m->vocab && i < 256; i++) toks[i] = i < 16 ? fw_vocab_tokens[i] : "x";
    fw_gguf_set_str_array(g, "tokenizer.ggml.tokens", toks, (size_t)(m->vocab < 256 ? m->vocab : 256));
    fw_gguf_set_u32(g, "tokenizer.ggml.bos_token_id", 1);
    fw_gguf_set_u32(g, "tokenizer.ggml.eos_token_id", 2);
    fw_tensor_ref refs[FW_MAX_TENSORS];
    const size_t n = fw_model_tensors(m, refs, FW_MAX_TENSORS);
    for (size_t i = 0; i < n && i < FW_MAX_TENSORS; i++) {
        const fw_tensor_ref *r = &refs[i];
        const size_t rows = r->ndim == 2 ? (size_t)r->shape[0] : 1, cols = (size_t)r->shape[r->ndim - 1];
        float *tmp = r->interleave ? fw_interleave_rows(r->data, rows, cols, (size_t)fw_head_dim(m)) : NULL;
        const uint64_t ne[2] = {cols, rows};
        fw_gguf_add_tensor(g, r->gguf_name, 0 /* F32 */, (uint32_t)r->ndim, ne, tmp ? tmp : r->data,
                           rows * cols * sizeof(float));
        free(tmp);
    }
}

/* ---- safetensors ---------------------------------------------------------- */

typedef struct fw_st_tensor {
    char name[96];
    char dtype[16];
    int ndim;
    int64_t shape[8];
    fw_buf data;
} fw_st_tensor;

typedef struct fw_st {
    fw_st_tensor t[FW_MAX_TENSORS];
    size_t n_t;
} fw_st;

static inline fw_st_tensor *fw_st_find(fw_st *s, const char *name) {
    for (size_t i = 0; i < s->n_t; i++)
        if (!strcmp(s->t[i].name, name)) return &s->t[i];
    return NULL;
}
static inline fw_st_tensor *fw_st_get(fw_st *s, const char *name) { /* must exist */
    fw_st_tensor *t = fw_st_find(s, name);
    if (!t) abort();
    return t;
}
static inline fw_st_tensor *fw_st_add(fw_st *s, const char *name, const char *dtype, int ndim, const int64_t *shape,
                               const void *data, size_t nbytes) {
    if (s->n_t == FW_MAX_TENSORS) abort();
    fw_st_tensor *t = &s->t[s->n_t++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    fw_put(&t->data, data, nbytes);
    return t;
}
static inline void fw_st_remove(fw_st *s, const char *name) {
    fw_st_tensor *t = fw_st_find(s, name);
    if (!t) abort();
    fw_free(&t->data);
    memmove(t, t + 1, (size_t)(s->t + s->n_t - t - 1) * sizeof *t);
    s->n_t--;
}
static inline void fw_st_free(fw_st *s) {
    for (size_t i = 0; i < s->n_t; i++) fw_free(&s->t[i].data);
    memset(s, 0, sizeof *s);
}

/* The JSON header (without length prefix or padding). */
static inline void fw_st_header_json(const fw_st *s, fw_buf *out) {
    char tmp[512];
    uint64_t off = 0;
    fw_text(out, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < s->n_t; i++) {
        const fw_st_tensor *t = &s->t[i];
        snprintf(tmp, sizeof tmp, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, t->dtype);
        fw_text(out, tmp);
        for (int d = 0; d < t->ndim; d++) {
            snprintf(tmp, sizeof tmp, d ? ",%lld" : "%lld", (long long)t->shape[d]);
            fw_text(out, tmp);
        }
        snprintf(tmp, sizeof tmp, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + t->data.n));
        fw_text(out, tmp);
        off += t->data.n;
    }
    fw_text(out, "}");
}

/* Length prefix + header (space-padded to 8 bytes) + data. */
static inline void fw_st_assemble(const char *header, size_t hlen, const fw_st *s, fw_buf *out) {
    out->n = 0;
    const size_t padded = (hlen + 7) / 8 * 8;
    fw_u64(out, padded);
    fw_put(out, header, hlen);
    for (size_t i = hlen; i < padded; i++) fw_u8(out, ' ');
    for (size_t i = 0; s && i < s->n_t; i++) fw_put(out, s->t[i].data.p, s->t[i].data.n);
}
static inline void fw_st_serialize(const fw_st *s, fw_buf *out) {
    fw_buf h = {0};
    fw_st_header_json(s, &h);
    fw_st_assemble((const char *)h.p, h.n, s, out);
    fw_free(&h);
}

static inline void fw_st_from_model(fw_st *s, const fw_model *m) {
    memset(s, 0, sizeof *s);
    fw_tensor_ref refs[FW_MAX_TENSORS];
    const size_t n = fw_model_tensors(m, refs, FW_MAX_TENSORS);
    for (size_t i = 0; i < n && i < FW_MAX_TENSORS; i++) {
        const fw_tensor_ref *r = &refs[i];
        const size_t elems = r->ndim == 2 ? (size_t)(r->shape[0] * r->shape[1]) : (size_t)r->shape[0];
        fw_st_add(s, r->hf_name, "F32", r->ndim, r->shape, r->data, elems * sizeof(float));
    }
}

/* config.json for the model; extra (may be NULL) is spliced in as
 * additional members, e.g. "\"foo\": 1". drop names a key to leave out. */
static inline void fw_hf_config(const fw_model *m, const char *model_type, const char *drop, fw_buf *out) {
    char tmp[256];
    struct {
        const char *key;
        char val[64];
    } kv[] = {
        {"model_type", ""}, {"hidden_size", ""}, {"intermediate_size", ""}, {"num_hidden_layers", ""},
        {"num_attention_heads", ""}, {"num_key_value_heads", ""}, {"vocab_size", ""},
        {"max_position_embeddings", ""}, {"rms_norm_eps", ""}, {"rope_theta", ""}, {"tie_word_embeddings", ""},
        {"bos_token_id", ""}, {"eos_token_id", ""},
    };
    snprintf(kv[0].val, 64, "\"%s\"", model_type);
    snprintf(kv[1].val, 64, "%d", m->dim);
    snprintf(kv[2].val, 64, "%d", m->hidden);
    snprintf(kv[3].val, 64, "%d", m->n_layers);
    snprintf(kv[4].val, 64, "%d", m->n_heads);
    snprintf(kv[5].val, 64, "%d", m->n_kv_heads);
    snprintf(kv[6].val, 64, "%d", m->vocab);
    snprintf(kv[7].val, 64, "%d", m->seq_len);
    snprintf(kv[8].val, 64, "%g", m->eps);
    snprintf(kv[9].val, 64, "%g", m->theta);
    snprintf(kv[10].val, 64, "true");
    snprintf(kv[11].val, 64, "1");
    snprintf(kv[12].val, 64, "2");
    fw_text(out, "{\"architectures\": [\"LlamaForCausalLM\"]");
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        if (drop && !strcmp(drop, kv[i].key)) continue;
        snprintf(tmp, sizeof tmp, ",\n  \"%s\": %s", kv[i].key, kv[i].val);
        fw_text(out, tmp);
    }
    fw_text(out, "\n}\n");
    fw_u8(out, 0);
    out->n--; /* keep it NUL-terminated for fw_write_text */
}

/* ---- llama2.c ------------------------------------------------------------- */

/* Header (7 int32) + weights in llama2.c order, shared classifier. */
static inline void fw_llama2c_serialize(const fw_model *m, fw_buf *out) {
    out->n = 0;
    const size_t D = m->dim, F = m->hidden, L = m->n_layers, hd = fw_head_dim(m), QD = m->n_heads * hd,
                 KVD = m->n_kv_heads * hd;
    const int32_t h[7] = {m->dim, m->hidden, m->n_layers, m->n_heads, m->n_kv_heads, m->vocab, m->seq_len};
    fw_put(out, h, sizeof h);
    fw_put(out, m->emb, (size_t)m->vocab * D * 4);
    fw_put(out, m->attn_norm, L * D * 4);
    for (size_t l = 0; l < L; l++) {
        float *q = fw_interleave_rows(m->wq + l * QD * D, QD, D, hd);
        fw_put(out, q, QD * D * 4);
        free(q);
    }
    for (size_t l = 0; l < L; l++) {
        float *k = fw_interleave_rows(m->wk + l * KVD * D, KVD, D, hd);
        fw_put(out, k, KVD * D * 4);
        free(k);
    }
    fw_put(out, m->wv, L * KVD * D * 4);
    fw_put(out, m->wo, L * D * QD * 4);
    fw_put(out, m->ffn_norm, L * D * 4);
    fw_put(out, m->gate, L * F * D * 4);
    fw_put(out, m->down, L * D * F * 4);
    fw_put(out, m->up, L * F * D * 4);
    fw_put(out, m->final_norm, D * 4);
    for (size_t i = 0; i < 2 * (size_t)m->seq_len * (hd / 2); i++) fw_f32(out, 0.0f); /* freq_cis real, imag */
}

#endif
