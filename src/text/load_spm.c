/* SentencePiece tokenizer.model (ModelProto, protobuf wire format) and
 * llama2.c tokenizer.bin readers. Every length is checked against the data. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/tok_internal.h"

/* ---- protobuf wire format ---- */

typedef struct pb {
    const uint8_t *p, *end;
} pb;

static int pb_varint(pb *b, uint64_t *v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end) return -1;
        uint8_t c = *b->p++;
        r |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* read one field: number, wire type, and its value (varint / fixed / bytes) */
typedef struct pb_field {
    uint32_t num, wt;
    uint64_t v;
    const uint8_t *data;
    size_t len;
} pb_field;

static int pb_next(pb *b, pb_field *f) {
    uint64_t key;
    if (pb_varint(b, &key)) return -1;
    f->num = (uint32_t)(key >> 3);
    f->wt = (uint32_t)(key & 7);
    if (f->num == 0) return -1;
    switch (f->wt) {
    case 0:
        return pb_varint(b, &f->v);
    case 1:
        if (b->end - b->p < 8) return -1;
        memcpy(&f->v, b->p, 8);
        b->p += 8;
        return 0;
    case 5: {
        if (b->end - b->p < 4) return -1;
        uint32_t x;
        memcpy(&x, b->p, 4);
        f->v = x;
        b->p += 4;
        return 0;
    }
    case 2: {
        uint64_t n;
        if (pb_varint(b, &n)) return -1;
        if (n > (uint64_t)(b->end - b->p)) return -1;
        f->data = b->p;
        f->len = (size_t)n;
        b->p += n;
        return 0;
    }
    default:
        return -1; /* groups (3, 4) and reserved types are not used by sentencepiece */
    }
}

typedef struct spm_info {
    int model_type, byte_fallback;
    int64_t unk_id, bos_id, eos_id;
    int add_dummy_prefix, remove_extra_ws, escape_ws;
    size_t charsmap_len;
    char norm_name[64];
    size_t n_pieces;
    int treat_ws_suffix;
} spm_info;

static int parse_trainer(const uint8_t *d, size_t n, spm_info *s) {
    pb b = {d, d + n};
    pb_field f;
    while (b.p < b.end) {
        if (pb_next(&b, &f)) return -1;
        if (f.wt != 0) continue;
        switch (f.num) {
        case 3: s->model_type = (int)f.v; break;
        case 24: s->treat_ws_suffix = f.v != 0; break;
        case 35: s->byte_fallback = f.v != 0; break;
        case 40: s->unk_id = (int32_t)f.v; break;
        case 41: s->bos_id = (int32_t)f.v; break;
        case 42: s->eos_id = (int32_t)f.v; break;
        default: break;
        }
    }
    return 0;
}

static int parse_normalizer(const uint8_t *d, size_t n, spm_info *s) {
    pb b = {d, d + n};
    pb_field f;
    while (b.p < b.end) {
        if (pb_next(&b, &f)) return -1;
        if (f.num == 1 && f.wt == 2) {
            size_t l = f.len < sizeof s->norm_name - 1 ? f.len : sizeof s->norm_name - 1;
            memcpy(s->norm_name, f.data, l);
            s->norm_name[l] = 0;
        } else if (f.num == 2 && f.wt == 2) {
            s->charsmap_len = f.len;
        } else if (f.wt == 0) {
            if (f.num == 3) s->add_dummy_prefix = f.v != 0;
            if (f.num == 4) s->remove_extra_ws = f.v != 0;
            if (f.num == 5) s->escape_ws = f.v != 0;
        }
    }
    return 0;
}

int ll_tok_load_spm(ll_tokenizer **out, const uint8_t *data, size_t len, const char *name, ll_error *err) {
    *out = NULL;
    spm_info s = {.model_type = 1, .unk_id = 0, .bos_id = 1, .eos_id = 2, .add_dummy_prefix = 1,
                  .remove_extra_ws = 1, .escape_ws = 1};
    pb b = {data, data + len};
    pb_field f;
    while (b.p < b.end) {
        if (pb_next(&b, &f))
            return ll_fail(err, LL_ERR_FORMAT, "%s: malformed or truncated SentencePiece model (protobuf error at byte %zu)",
                           name, (size_t)(b.p - data));
        if (f.wt != 2) continue;
        if (f.num == 1) s.n_pieces++;
        else if (f.num == 2 && parse_trainer(f.data, f.len, &s))
            return ll_fail(err, LL_ERR_FORMAT, "%s: malformed trainer_spec", name);
        else if (f.num == 3) {
            if (parse_normalizer(f.data, f.len, &s)) return ll_fail(err, LL_ERR_FORMAT, "%s: malformed normalizer_spec", name);
        }
    }
    if (s.n_pieces == 0) return ll_fail(err, LL_ERR_FORMAT, "%s: SentencePiece model has no pieces", name);
    if (s.model_type != 2)
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: SentencePiece model type %d is not supported (only BPE = 2)", name,
                       s.model_type);
    if (s.charsmap_len > 0 && strcmp(s.norm_name, "identity") != 0)
        return ll_fail(err, LL_ERR_UNSUPPORTED,
                       "%s: SentencePiece normalization '%s' (precompiled charsmap) is not supported, only identity", name,
                       s.norm_name);
    if (s.treat_ws_suffix)
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: treat_whitespace_as_suffix is not supported", name);
    ll_tokenizer *t;
    int rc = ll_tok_new(&t, name, LL_TOK_SPM_BPE, LL_TOKFMT_SPM, s.n_pieces, err);
    if (rc) return rc;
    b.p = data;
    int32_t id = 0;
    while (b.p < b.end) {
        pb_next(&b, &f);
        if (f.num != 1 || f.wt != 2) continue;
        pb pp = {f.data, f.data + f.len};
        pb_field g;
        const uint8_t *ps = (const uint8_t *)"";
        size_t pl = 0;
        float score = 0;
        int type = 1;
        while (pp.p < pp.end) {
            if (pb_next(&pp, &g)) {
                rc = ll_fail(err, LL_ERR_FORMAT, "%s: piece %d is malformed", name, (int)id);
                goto fail;
            }
            if (g.num == 1 && g.wt == 2) {
                ps = g.data;
                pl = g.len;
            } else if (g.num == 2 && g.wt == 5) {
                uint32_t x = (uint32_t)g.v;
                memcpy(&score, &x, 4);
            } else if (g.num == 3 && g.wt == 0) {
                type = (int)g.v;
            }
        }
        uint8_t attr = 0;
        if (type == 2 || type == 3) attr |= TOK_ATTR_SPECIAL;
        if (type == 6) attr |= TOK_ATTR_BYTE;
        if (type == 5) attr |= TOK_ATTR_UNUSED;
        if ((rc = ll_tok_set_piece(t, id, (const char *)ps, pl, score, attr, err))) goto fail;
        id++;
    }
    if ((rc = ll_tok_finish_vocab(t, err))) goto fail;
    t->byte_fallback = s.byte_fallback;
    if (!s.byte_fallback)
        for (int k = 0; k < 256; k++) t->byte_id[k] = -1;
    t->unk_id = s.unk_id >= 0 && s.unk_id < t->n_vocab ? (int32_t)s.unk_id : -1;
    t->bos_id = s.bos_id >= 0 && s.bos_id < t->n_vocab ? (int32_t)s.bos_id : -1;
    t->eos_id = s.eos_id >= 0 && s.eos_id < t->n_vocab ? (int32_t)s.eos_id : -1;
    /* sentencepiece keeps unknown characters as one unk each */
    t->fuse_unk = 0;
    /* user-defined pieces (type 4) are matched in the text before BPE */
    b.p = data;
    id = 0;
    while (b.p < b.end) {
        pb_next(&b, &f);
        if (f.num != 1 || f.wt != 2) continue;
        pb pp = {f.data, f.data + f.len};
        pb_field g;
        while (pp.p < pp.end && !pb_next(&pp, &g))
            if (g.num == 3 && g.wt == 0 && g.v == 4 && t->len[id] > 0 &&
                (rc = ll_tok_add_added(t, t->pool + t->off[id], t->len[id], id, 0, 0, 0, 0, err)))
                goto fail;
        id++;
    }
    /* normalizer: (remove extra whitespace), dummy prefix, spaces -> U+2581 */
    if (s.remove_extra_ws && (rc = ll_tok_add_norm(t, NORM_SPM_WHITESPACE, "", 0, "", 0, err))) goto fail;
    if (s.add_dummy_prefix && (rc = ll_tok_add_norm(t, NORM_PREPEND, "", 0, " ", 1, err))) goto fail;
    if (s.escape_ws && (rc = ll_tok_add_norm(t, NORM_REPLACE_STR, " ", 1, "\xE2\x96\x81", 3, err))) goto fail;
    t->decode_space_char = 1;
    t->decode_strip_space = s.add_dummy_prefix;
    if ((rc = ll_tok_merges_from_scores(t, 1, err))) goto fail;
    if (t->bos_id >= 0) t->pre_ids[t->n_pre++] = t->bos_id; /* Llama convention: BOS, no EOS */
    if ((rc = ll_tok_ready(t, err))) goto fail;
    *out = t;
    return LL_OK;
fail:
    ll_tokenizer_free(t);
    return rc;
}

/* ---- llama2.c tokenizer.bin ---- */

/* 1 if data starts like a llama2.c model checkpoint (run.c's Config: dim,
 * hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (negative: unshared
 * classifier), seq_len as int32) and is long enough for its embeddings. */
static int looks_like_llama2c_model(const uint8_t *data, size_t len) {
    int32_t h[7];
    if (len < sizeof h) return 0;
    memcpy(h, data, sizeof h);
    const int64_t dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kv = h[4], vocab = h[5] < 0 ? -(int64_t)h[5] : h[5],
                  seq = h[6];
    if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kv <= 0 || vocab <= 0 || seq <= 0) return 0;
    if (dim > (1 << 16) || hidden > (1 << 18) || layers > 1024 || vocab > (1 << 22) || seq > (1 << 24)) return 0;
    return dim % heads == 0 && heads % kv == 0 && (uint64_t)len >= sizeof h + 4 * (uint64_t)(vocab * dim);
}

int ll_tok_load_llama2c(ll_tokenizer **out, const uint8_t *data, size_t len, const char *name, ll_error *err) {
    *out = NULL;
    if (looks_like_llama2c_model(data, len))
        return ll_fail(err, LL_ERR_FORMAT, "%s: a llama2.c model checkpoint, which holds no tokenizer; give its "
                       "tokenizer file (a llama2.c tokenizer.bin such as tok512.bin, or tokenizer.model)", name);
    if (len < 4) return ll_fail(err, LL_ERR_FORMAT, "%s: too short for a llama2.c tokenizer (%zu bytes)", name, len);
    int32_t maxlen;
    memcpy(&maxlen, data, 4);
    if (maxlen <= 0 || maxlen > 65536)
        return ll_fail(err, LL_ERR_FORMAT, "%s: bad max_token_length %d in llama2.c tokenizer header", name, (int)maxlen);
    /* count entries */
    size_t pos = 4, n = 0;
    while (pos < len) {
        if (len - pos < 8)
            return ll_fail(err, LL_ERR_FORMAT, "%s: truncated entry for token %zu at byte %zu", name, n, pos);
        int32_t l;
        memcpy(&l, data + pos + 4, 4);
        if (l < 0 || l > maxlen)
            return ll_fail(err, LL_ERR_FORMAT, "%s: token %zu has bad length %d at byte %zu (max_token_length %d)", name, n,
                           (int)l, pos, (int)maxlen);
        if ((size_t)l > len - pos - 8)
            return ll_fail(err, LL_ERR_FORMAT, "%s: truncated: token %zu (%d bytes at byte %zu) runs past the end", name,
                           n, (int)l, pos + 8);
        pos += 8 + (size_t)l;
        n++;
    }
    ll_tokenizer *t;
    int rc = ll_tok_new(&t, name, LL_TOK_SPM_BPE, LL_TOKFMT_LLAMA2C, n, err);
    if (rc) return rc;
    pos = 4;
    for (size_t i = 0; i < n; i++) {
        float sc;
        int32_t l;
        memcpy(&sc, data + pos, 4);
        memcpy(&l, data + pos + 4, 4);
        if ((rc = ll_tok_set_piece(t, (int32_t)i, (const char *)data + pos + 8, (size_t)l, sc, 0, err))) goto fail;
        pos += 8 + (size_t)l;
    }
    if ((rc = ll_tok_finish_vocab(t, err))) goto fail;
    /* llama2.c conventions: 0 <unk>, 1 <s>, 2 </s>, byte b -> id b + 3 */
    t->unk_id = 0;
    t->bos_id = n > 1 ? 1 : -1;
    t->eos_id = n > 2 ? 2 : -1;
    if (n > 1) t->attr[1] |= TOK_ATTR_SPECIAL;
    if (n > 2) t->attr[2] |= TOK_ATTR_SPECIAL;
    t->byte_fallback = 1;
    for (int b = 0; b < 256; b++) {
        t->byte_id[b] = (size_t)b + 3 < n ? b + 3 : -1;
        if (t->byte_id[b] >= 0) t->attr[b + 3] |= TOK_ATTR_BYTE;
    }
    /* dummy prefix: llama2.c prepends the " " token to non-empty text */
    if ((rc = ll_tok_add_norm(t, NORM_PREPEND, "", 0, " ", 1, err))) goto fail;
    t->decode_space_char = 0;
    t->decode_strip_space = 1;
    if ((rc = ll_tok_merges_from_scores(t, 0, err))) goto fail;
    if (t->bos_id >= 0) t->pre_ids[t->n_pre++] = t->bos_id;
    if ((rc = ll_tok_ready(t, err))) goto fail;
    *out = t;
    return LL_OK;
fail:
    ll_tokenizer_free(t);
    return rc;
}
