/* ll_tokenizer_to_json: a loaded tokenizer as a Hugging Face tokenizer.json
 * (see save_json.h for what is written and what is refused). */
#include "text/save_json.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/gguf.h"
#include "io/mapped_file.h"
#include "text/tok_internal.h"

/* well-formed UTF-8 without NUL (cJSON strings end at NUL) */
static int valid_utf8(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        const unsigned c = p[i];
        size_t k;
        unsigned lo = 0x80, hi = 0xBF; /* range of the second byte */
        if (c == 0) return 0;
        if (c < 0x80) k = 0;
        else if (c >= 0xC2 && c <= 0xDF) k = 1;
        else if (c >= 0xE0 && c <= 0xEF) k = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        else if (c >= 0xF0 && c <= 0xF4) k = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        else return 0;
        if (n - i <= k) return 0;
        for (size_t j = 1; j <= k; j++)
            if (p[i + j] < (j == 1 ? lo : 0x80) || p[i + j] > (j == 1 ? hi : 0xBF)) return 0;
        i += k + 1;
    }
    return 1;
}

static cJSON *str_n(const char *s, size_t n) {
    char *z = malloc(n + 1);
    if (!z) return NULL;
    memcpy(z, s, n);
    z[n] = 0;
    cJSON *j = cJSON_CreateString(z);
    free(z);
    return j;
}

static cJSON *piece_json(const ll_tokenizer *t, int32_t id) { return str_n(t->pool + t->off[id], t->len[id]); }

/* tokenizer.json as it is: the source file, or the one in the source folder */
static int copy_source(const char *src, char **out, size_t *len, ll_error *err) {
    struct stat st;
    char path[4096];
    if (!stat(src, &st) && S_ISDIR(st.st_mode)) snprintf(path, sizeof path, "%s/tokenizer.json", src);
    else snprintf(path, sizeof path, "%s", src);
    return ll_read_text_file(path, out, len, err);
}

/* The tokenizer.json form of a GGUF's pre-tokenizer, for the llama.cpp types
 * whose splits tokenizer.json has an exact spelling of (checked by the merge
 * tests against `tokenizers`): the GPT-2 regex alone is ByteLevel(use_regex);
 * digits one by one and then GPT-2 (smollm, starcoder, ...) is SmolLM2's own
 * Sequence[Digits(individual_digits), ByteLevel(use_regex)]. Others refused. */
enum { PRE_GPT2 = 1, PRE_DIGITS_GPT2 = 2 };

static int gguf_pre_form(const char *src, int *form, ll_error *err) {
    ll_gguf_file *g;
    int rc = ll_gguf_open(&g, src, err);
    if (rc) return rc;
    char pre[64] = "default";
    rc = ll_gguf_get_string(g, "tokenizer.ggml.pre", 0, pre, sizeof pre, err);
    ll_gguf_close(g);
    if (rc) return rc;
    const char *const *p = ll_tok_gguf_pre_patterns(pre);
    const char *gpt2 = ll_tok_gpt2_pattern();
    *form = 0;
    if (p && p[0] && !strcmp(p[0], gpt2) && !p[1]) *form = PRE_GPT2;
    else if (p && p[0] && !strcmp(p[0], "\\p{N}") && p[1] && !strcmp(p[1], gpt2) && !p[2]) *form = PRE_DIGITS_GPT2;
    if (*form) return LL_OK;
    return ll_fail(err, LL_ERR_UNSUPPORTED,
                   "%s: tokenizer.ggml.pre = '%s': its split regexes have no tokenizer.json form lsllama writes "
                   "exactly (the GPT-2 regex alone, or digits one by one and then GPT-2, as smollm)", src, pre);
}

typedef struct merge_row {
    int32_t rank, merged, a, b;
} merge_row;

static int cmp_merge(const void *x, const void *y) {
    const merge_row *p = x, *q = y;
    if (p->rank != q->rank) return p->rank < q->rank ? -1 : 1;
    if (p->merged != q->merged) return p->merged < q->merged ? -1 : 1;
    if (p->a != q->a) return p->a < q->a ? -1 : 1;
    return (p->b > q->b) - (p->b < q->b);
}

static cJSON *merges_json(const ll_tokenizer *t) {
    merge_row *rows = malloc((t->merges.count + 1) * sizeof *rows);
    cJSON *arr = cJSON_CreateArray();
    if (!rows || !arr) {
        free(rows);
        cJSON_Delete(arr);
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; t->merges.slots && i <= t->merges.mask; i++) {
        const ll_pair_entry *e = &t->merges.slots[i];
        if (e->key == UINT64_MAX) continue;
        rows[n++] = (merge_row){e->rank, e->merged, (int32_t)(e->key >> 32), (int32_t)(e->key & 0xffffffffu)};
    }
    qsort(rows, n, sizeof *rows, cmp_merge);
    for (size_t i = 0; i < n; i++) {
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(arr, pair);
        cJSON_AddItemToArray(pair, piece_json(t, rows[i].a));
        cJSON_AddItemToArray(pair, piece_json(t, rows[i].b));
    }
    free(rows);
    return arr;
}

static cJSON *replace_op(const char *kind, const char *pattern, size_t plen, const char *content, size_t clen) {
    cJSON *o = cJSON_CreateObject(), *p = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "Replace");
    cJSON_AddItemToObject(o, "pattern", p);
    cJSON_AddItemToObject(p, kind, str_n(pattern, plen));
    cJSON_AddItemToObject(o, "content", str_n(content, clen));
    return o;
}

/* lsllama's normalizer steps as tokenizer.json normalizers; NULL + error for
 * one without an exact form */
static int normalizer_json(const ll_tokenizer *t, cJSON **out, ll_error *err) {
    *out = NULL;
    if (!t->n_norm) return LL_OK;
    cJSON *seq = cJSON_CreateObject(), *list = cJSON_CreateArray();
    cJSON_AddStringToObject(seq, "type", "Sequence");
    cJSON_AddItemToObject(seq, "normalizers", list);
    for (size_t i = 0; i < t->n_norm; i++) {
        const norm_op *op = &t->norm[i];
        if (op->kind == NORM_REPLACE_STR) {
            cJSON_AddItemToArray(list, replace_op("String", op->a, op->alen, op->b, op->blen));
        } else if (op->kind == NORM_PREPEND) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "type", "Prepend");
            cJSON_AddItemToObject(o, "prepend", str_n(op->b, op->blen));
            cJSON_AddItemToArray(list, o);
        } else if (op->kind == NORM_SPM_WHITESPACE) {
            /* sentencepiece remove_extra_whitespaces: runs of ' ' -> one, then none at either end */
            cJSON_AddItemToArray(list, replace_op("Regex", " {2,}", 5, " ", 1));
            cJSON_AddItemToArray(list, replace_op("Regex", "^ | $", 5, "", 0));
        } else {
            cJSON_Delete(seq);
            static const char *const names[] = {"", "Replace (regex)", "", "Prepend (unless present)", "Strip", ""};
            return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: normalizer step %s has no exact tokenizer.json form here",
                           t->name, op->kind < 6 ? names[op->kind] : "?");
        }
    }
    *out = seq;
    return LL_OK;
}

static cJSON *special_item(const ll_tokenizer *t, int32_t id) {
    cJSON *o = cJSON_CreateObject(), *s = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "SpecialToken", s);
    cJSON_AddItemToObject(s, "id", piece_json(t, id));
    cJSON_AddNumberToObject(s, "type_id", 0);
    return o;
}

/* TemplateProcessing adding the BOS/EOS ids lsllama adds */
static cJSON *post_processor_json(const ll_tokenizer *t) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "TemplateProcessing");
    cJSON *single = cJSON_AddArrayToObject(o, "single"), *pair = cJSON_AddArrayToObject(o, "pair");
    cJSON *sp = cJSON_AddObjectToObject(o, "special_tokens");
    for (int half = 0; half < 2; half++) {
        cJSON *tpl = half ? pair : single;
        for (int seq = 0; seq <= half; seq++) {
            for (int i = 0; i < t->n_pre; i++) cJSON_AddItemToArray(tpl, special_item(t, t->pre_ids[i]));
            cJSON *q = cJSON_CreateObject(), *qs = cJSON_CreateObject();
            cJSON_AddItemToObject(q, "Sequence", qs);
            cJSON_AddStringToObject(qs, "id", seq ? "B" : "A");
            cJSON_AddNumberToObject(qs, "type_id", seq);
            cJSON_AddItemToArray(tpl, q);
            for (int i = 0; i < t->n_post; i++) cJSON_AddItemToArray(tpl, special_item(t, t->post_ids[i]));
        }
    }
    for (int k = 0; k < t->n_pre + t->n_post; k++) {
        const int32_t id = k < t->n_pre ? t->pre_ids[k] : t->post_ids[k - t->n_pre];
        cJSON *name = piece_json(t, id);
        if (!name || cJSON_GetObjectItemCaseSensitive(sp, name->valuestring)) {
            cJSON_Delete(name);
            continue;
        }
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObject(e, "id", cJSON_Duplicate(name, 1));
        cJSON_AddItemToArray(cJSON_AddArrayToObject(e, "ids"), cJSON_CreateNumber(id));
        cJSON_AddItemToArray(cJSON_AddArrayToObject(e, "tokens"), cJSON_Duplicate(name, 1));
        cJSON_AddItemToObject(sp, name->valuestring, e);
        cJSON_Delete(name);
    }
    return o;
}

static cJSON *decoder_json(const ll_tokenizer *t) {
    cJSON *o = cJSON_CreateObject();
    if (t->kind == LL_TOK_BYTE_LEVEL_BPE) {
        cJSON_AddStringToObject(o, "type", "ByteLevel");
        cJSON_AddBoolToObject(o, "add_prefix_space", 1);
        cJSON_AddBoolToObject(o, "trim_offsets", 1);
        cJSON_AddBoolToObject(o, "use_regex", 1);
        return o;
    }
    cJSON_AddStringToObject(o, "type", "Sequence");
    cJSON *list = cJSON_AddArrayToObject(o, "decoders");
    if (t->decode_space_char) cJSON_AddItemToArray(list, replace_op("String", "\xE2\x96\x81", 3, " ", 1));
    cJSON *bf = cJSON_CreateObject(), *fu = cJSON_CreateObject();
    cJSON_AddStringToObject(bf, "type", "ByteFallback");
    cJSON_AddStringToObject(fu, "type", "Fuse");
    cJSON_AddItemToArray(list, bf);
    cJSON_AddItemToArray(list, fu);
    /* the space a prepended "▁" decodes to is stripped; a tokenizer that prepends none (Gemma) strips nothing */
    int prepends = 0;
    for (size_t i = 0; i < t->n_norm; i++) prepends |= t->norm[i].kind == NORM_PREPEND;
    if (t->decode_strip_space || (t->decode_space_char && prepends) || t->format == LL_TOKFMT_LLAMA2C) {
        cJSON *st = cJSON_CreateObject();
        cJSON_AddStringToObject(st, "type", "Strip");
        cJSON_AddStringToObject(st, "content", " ");
        cJSON_AddNumberToObject(st, "start", 1);
        cJSON_AddNumberToObject(st, "stop", 0);
        cJSON_AddItemToArray(list, st);
    }
    return o;
}

int ll_tokenizer_to_json(const ll_tokenizer *t, const char *source_path, char **out, size_t *len, ll_error *err) {
    *out = NULL;
    *len = 0;
    if (t->format == LL_TOKFMT_JSON) return copy_source(source_path, out, len, err);
    int rc = LL_OK, pre_form = 0;
    if (t->kind == LL_TOK_BYTE_LEVEL_BPE) {
        if (t->format != LL_TOKFMT_GGUF)
            return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: a byte-level tokenizer from this format cannot be written as "
                           "tokenizer.json", t->name);
        if ((rc = gguf_pre_form(source_path, &pre_form, err))) return rc;
        if (t->n_norm || t->n_split != (size_t)pre_form)
            return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: %zu normalizer steps and %zu splits, unlike its "
                           "tokenizer.ggml.pre", t->name, t->n_norm, t->n_split);
    } else if (t->n_split) {
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: a SentencePiece tokenizer with pre-tokenizer splits cannot be "
                       "written as tokenizer.json", t->name);
    }
    cJSON *normalizer = NULL;
    if ((rc = normalizer_json(t, &normalizer, err))) return rc;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (size_t i = 0; i < t->n_added; i++) {
        const ll_tok_added *a = &t->added[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", a->id);
        cJSON_AddItemToObject(o, "content", str_n(a->content, a->len));
        cJSON_AddBoolToObject(o, "single_word", a->single_word);
        cJSON_AddBoolToObject(o, "lstrip", a->lstrip);
        cJSON_AddBoolToObject(o, "rstrip", a->rstrip);
        cJSON_AddBoolToObject(o, "normalized", 0); /* lsllama matches them before normalization */
        cJSON_AddBoolToObject(o, "special", a->special);
        cJSON_AddItemToArray(added, o);
    }
    if (normalizer) cJSON_AddItemToObject(root, "normalizer", normalizer);
    else cJSON_AddNullToObject(root, "normalizer");
    if (t->kind == LL_TOK_BYTE_LEVEL_BPE) {
        cJSON *pt = cJSON_AddObjectToObject(root, "pre_tokenizer"), *bl = pt;
        if (pre_form == PRE_DIGITS_GPT2) {
            cJSON_AddStringToObject(pt, "type", "Sequence");
            cJSON *seq = cJSON_AddArrayToObject(pt, "pretokenizers"), *digits = cJSON_CreateObject();
            cJSON_AddStringToObject(digits, "type", "Digits");
            cJSON_AddBoolToObject(digits, "individual_digits", 1);
            cJSON_AddItemToArray(seq, digits);
            cJSON_AddItemToArray(seq, bl = cJSON_CreateObject());
        }
        cJSON_AddStringToObject(bl, "type", "ByteLevel");
        cJSON_AddBoolToObject(bl, "add_prefix_space", 0);
        cJSON_AddBoolToObject(bl, "trim_offsets", 1);
        cJSON_AddBoolToObject(bl, "use_regex", 1);
    } else {
        cJSON_AddNullToObject(root, "pre_tokenizer");
    }
    cJSON_AddItemToObject(root, "post_processor", post_processor_json(t));
    cJSON_AddItemToObject(root, "decoder", decoder_json(t));
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    if (t->kind != LL_TOK_BYTE_LEVEL_BPE && t->unk_id >= 0) cJSON_AddItemToObject(model, "unk_token", piece_json(t, t->unk_id));
    else cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", t->kind != LL_TOK_BYTE_LEVEL_BPE && t->fuse_unk);
    cJSON_AddBoolToObject(model, "byte_fallback", t->kind != LL_TOK_BYTE_LEVEL_BPE && t->byte_fallback);
    cJSON_AddBoolToObject(model, "ignore_merges", t->ignore_merges);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (int32_t id = 0; id < t->n_vocab && !rc; id++) {
        const char *p = t->pool + t->off[id];
        const size_t n = t->len[id];
        if (!valid_utf8(p, n))
            rc = ll_fail(err, LL_ERR_UNSUPPORTED, "%s: piece %d is not valid UTF-8: a tokenizer.json vocabulary "
                         "cannot hold it", t->name, id);
        else if (ll_strmap_get(&t->vocab, t->pool, t->off, t->len, p, n) != id)
            rc = ll_fail(err, LL_ERR_UNSUPPORTED, "%s: piece %d ('%.*s') appears twice in the vocabulary: a "
                         "tokenizer.json vocabulary cannot hold it", t->name, id, (int)(n > 40 ? 40 : n), p);
        else {
            cJSON *key = str_n(p, n);
            cJSON_AddNumberToObject(vocab, key->valuestring, id);
            cJSON_Delete(key);
        }
    }
    cJSON *merges = rc ? NULL : merges_json(t);
    if (!rc && !merges) rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
    if (!rc) cJSON_AddItemToObject(model, "merges", merges);
    char *text = rc ? NULL : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!rc && !text) rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
    if (rc) return rc;
    *len = strlen(text);
    *out = text;
    return LL_OK;
}
