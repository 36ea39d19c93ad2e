/* Tokenizer from GGUF metadata (tokenizer.ggml.*): model gpt2 (byte-level
 * BPE with merges) or llama (SentencePiece BPE with scores). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/gguf.h"
#include "text/tok_internal.h"
#include "text/utf8.h"

/* tokenizer.ggml.pre -> the split regexes llama.cpp applies (llama-vocab.cpp:
 * the pre-type of each name, then its regex_exprs), each splitting the
 * pieces of the one before and keeping matches and gaps (Isolated).
 * ignore_merges: llama.cpp sets tokenizer_ignore_merges for these names.
 * Names llama.cpp maps to other regexes are refused by name. */
typedef struct pre_map {
    const char *names; /* '|'-separated */
    int ignore_merges;
    const char *patterns[5];
} pre_map;

#define GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define LLAMA3                                                                                                   \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|" \
    "\\s+(?!\\S)|\\s+"
#define QWEN2                                                                                                    \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|" \
    "\\s+(?!\\S)|\\s+"

static const pre_map PRE_MAPS[] = {
    /* LLAMA_VOCAB_PRE_TYPE_DEFAULT (also a missing tokenizer.ggml.pre) */
    {"default", 0, {"[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]", NULL}},
    {"llama3|llama-v3|llama-bpe|falcon3", 1, {LLAMA3, NULL}},
    {"dbrx|smaug-bpe", 0, {LLAMA3, NULL}},
    {"falcon", 0, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]", NULL}},
    /* STARCODER, REFACT, COMMAND_R, SMOLLM, CODESHELL, EXAONE, MINERVA: digits
     * one by one, then GPT-2 (SmolLM2's own tokenizer.json: Digits
     * individual_digits + ByteLevel) */
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b", 0, {"\\p{N}", GPT2, NULL}},
    {"gpt-2|phi-2|jina-es|jina-de|gigachat|jina-v1-en|jina-v2-es|jina-v2-de|jina-v2-code|roberta-bpe|mpt|olmo|jais",
     0,
     {GPT2, NULL}},
    {"qwen2|stablelm2|megrez|deepseek-r1-qwen", 0, {QWEN2, NULL}},
    {NULL, 0, {NULL}},
};

static int name_in(const char *name, const char *list) {
    size_t n = strlen(name);
    const char *p = list;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == n && !memcmp(p, name, n)) return 1;
        if (!bar) break;
        p = bar + 1;
    }
    return 0;
}

const char *const *ll_tok_gguf_pre_patterns(const char *pre) {
    const pre_map *pm = NULL;
    for (const pre_map *m = PRE_MAPS; m->names; m++)
        if (name_in(pre, m->names)) pm = m;
    return pm ? pm->patterns : NULL;
}

const char *ll_tok_gpt2_pattern(void) { return GPT2; }

/* Python's str.isspace for one code point: Unicode White_Space plus the
 * separators U+001C..U+001F */
static int py_isspace(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

/* transformers' Gemma GGUF tokenizer (integrations/gguf, gemma_tokenizer)
 * respells a piece that is only whitespace and holds a space ("  ", the
 * file's user-defined space runs) as that many U+2581, so BPE builds it from
 * the text's escaped spaces. Returns the piece's length in characters when it
 * is respelled, else 0. */
static size_t gemma_respelled_chars(const char *p, size_t n) {
    size_t chars = 0;
    int space = 0;
    if (n == 0 || !ll_utf8_is_valid((const uint8_t *)p, n)) return 0;
    for (size_t i = 0; i < n; chars++) {
        uint32_t cp;
        i += (size_t)ll_utf8_decode((const uint8_t *)p + i, &cp);
        if (!py_isspace(cp)) return 0;
        space |= cp == ' ';
    }
    return space ? chars : 0;
}

static int gguf_tok(ll_tokenizer **out, ll_gguf_file *g, const char *name, ll_error *err) {
    /* llama.cpp: a missing tokenizer.ggml.pre is its 'default' pre-tokenizer */
    char model[64] = "", pre[64] = "default";
    int rc = ll_gguf_get_string(g, "tokenizer.ggml.model", 1, model, sizeof model, err);
    if (rc) return rc;
    if ((rc = ll_gguf_get_string(g, "tokenizer.ggml.pre", 0, pre, sizeof pre, err))) return rc;
    int is_bpe = !strcmp(model, "gpt2"), is_spm = !strcmp(model, "llama");
    if (!is_bpe && !is_spm)
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model = '%s' is not supported (gpt2, llama are)", name,
                       model);
    const ll_gguf_kv *toks = ll_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (!toks || toks->type != GGUF_TYPE_ARRAY || toks->arr_type != GGUF_TYPE_STRING || toks->arr_n == 0)
        return ll_fail(err, LL_ERR_FORMAT, "%s: tokenizer.ggml.tokens missing or not a string array", name);
    const ll_gguf_kv *types = ll_gguf_find_kv(g, "tokenizer.ggml.token_type");
    if (types && (types->type != GGUF_TYPE_ARRAY || types->arr_n != toks->arr_n || types->arr_type == GGUF_TYPE_STRING))
        return ll_fail(err, LL_ERR_FORMAT, "%s: tokenizer.ggml.token_type must be a numeric array of %llu entries", name,
                       (unsigned long long)toks->arr_n);
    const ll_gguf_kv *scores = ll_gguf_find_kv(g, "tokenizer.ggml.scores");
    if (scores && (scores->type != GGUF_TYPE_ARRAY || scores->arr_n != toks->arr_n || scores->arr_type == GGUF_TYPE_STRING))
        return ll_fail(err, LL_ERR_FORMAT, "%s: tokenizer.ggml.scores must be a numeric array of %llu entries", name,
                       (unsigned long long)toks->arr_n);
    if (is_spm && !scores) return ll_fail(err, LL_ERR_FORMAT, "%s: tokenizer.ggml.scores missing for a llama tokenizer", name);
    const ll_gguf_kv *merges = ll_gguf_find_kv(g, "tokenizer.ggml.merges");
    if (is_bpe && (!merges || merges->type != GGUF_TYPE_ARRAY || merges->arr_type != GGUF_TYPE_STRING))
        return ll_fail(err, LL_ERR_FORMAT, "%s: tokenizer.ggml.merges missing or not a string array", name);

    /* Gemma's SentencePiece vocabulary as transformers reads it from a GGUF
     * (integrations/gguf, gemma_tokenizer): space runs respelled (above), and
     * merges ranked by the order of the pieces in the file, which Gemma's
     * scores do not follow; the respelled pieces are no longer matched as
     * user-defined tokens (transformers adds only those still in the vocabulary) */
    char arch[64] = "";
    if ((rc = ll_gguf_get_string(g, "general.architecture", 0, arch, sizeof arch, err))) return rc;
    const int gemma = is_spm && name_in(arch, "gemma|gemma2|gemma3");
    if (gemma && toks->arr_n > (1u << 24))
        return ll_fail(err, LL_ERR_FORMAT, "%s: %llu tokens: too many for a Gemma vocabulary", name,
                       (unsigned long long)toks->arr_n);
    uint8_t *respelled = gemma ? calloc(toks->arr_n, 1) : NULL;
    if (gemma && !respelled) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", name);
    ll_tokenizer *t;
    if ((rc = ll_tok_new(&t, name, is_bpe ? LL_TOK_BYTE_LEVEL_BPE : LL_TOK_SPM_BPE, LL_TOKFMT_GGUF, toks->arr_n, err))) {
        free(respelled);
        return rc;
    }
    for (uint64_t i = 0; i < toks->arr_n; i++) {
        int type = types ? (int)ll_gguf_arr_num(types, i) : 1;
        uint8_t attr = 0;
        if (type == 2 || type == 3) attr |= TOK_ATTR_SPECIAL;
        if (type == 6) attr |= TOK_ATTR_BYTE;
        if (type == 5) attr |= TOK_ATTR_UNUSED;
        float sc = scores ? (float)ll_gguf_arr_num(scores, i) : 0.0f;
        const char *piece = toks->arr_strs[i].ptr;
        size_t plen = toks->arr_strs[i].len, chars = 0;
        char *buf = NULL;
        if (gemma) {
            sc = -(float)i; /* exact: i < 2^24 */
            chars = gemma_respelled_chars(piece, plen);
        }
        if (chars) { /* every character one U+2581 (3 bytes): at most 3 times the piece's bytes */
            if (!(buf = malloc(3 * chars))) {
                rc = ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", name);
                goto fail;
            }
            for (size_t k = 0; k < chars; k++) memcpy(buf + 3 * k, "\xE2\x96\x81", 3);
            piece = buf;
            plen = 3 * chars;
            respelled[i] = 1;
        }
        rc = ll_tok_set_piece(t, (int32_t)i, piece, plen, sc, attr, err);
        free(buf);
        if (rc) goto fail;
    }
    if ((rc = ll_tok_finish_vocab(t, err))) goto fail;
    int64_t v;
    v = -1;
    if ((rc = ll_gguf_get_int(g, "tokenizer.ggml.bos_token_id", 0, &v, err))) goto fail;
    t->bos_id = v >= 0 && v < t->n_vocab ? (int32_t)v : -1;
    v = -1;
    if ((rc = ll_gguf_get_int(g, "tokenizer.ggml.eos_token_id", 0, &v, err))) goto fail;
    t->eos_id = v >= 0 && v < t->n_vocab ? (int32_t)v : -1;
    v = -1;
    if ((rc = ll_gguf_get_int(g, "tokenizer.ggml.unknown_token_id", 0, &v, err))) goto fail;
    t->unk_id = v >= 0 && v < t->n_vocab ? (int32_t)v : -1;
    int add_bos = is_spm, add_eos = 0;
    if ((rc = ll_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", 0, &add_bos, err))) goto fail;
    if ((rc = ll_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", 0, &add_eos, err))) goto fail;
    if (add_bos && t->bos_id >= 0) t->pre_ids[t->n_pre++] = t->bos_id;
    if (add_eos && t->eos_id >= 0) t->post_ids[t->n_post++] = t->eos_id;
    /* control and user-defined tokens are matched in the text */
    if (types)
        for (uint64_t i = 0; i < toks->arr_n; i++) {
            int type = (int)ll_gguf_arr_num(types, i);
            if ((type == 3 || type == 4) && t->len[i] > 0 && !(respelled && respelled[i]) &&
                (rc = ll_tok_add_added(t, t->pool + t->off[i], t->len[i], (int32_t)i, type == 3, 0, 0, 0, err)))
                goto fail;
        }
    if (is_bpe) {
        if (ll_pairmap_init(&t->merges, merges->arr_n + 16)) {
            rc = ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", name);
            goto fail;
        }
        for (uint64_t i = 0; i < merges->arr_n; i++) {
            const char *s = merges->arr_strs[i].ptr;
            size_t n = merges->arr_strs[i].len;
            const char *sp = n > 1 ? memchr(s + 1, ' ', n - 1) : NULL;
            if (!sp) {
                rc = ll_fail(err, LL_ERR_FORMAT, "%s: tokenizer.ggml.merges[%llu] is not \"left right\"", name,
                             (unsigned long long)i);
                goto fail;
            }
            if ((rc = ll_tok_add_merge_str(t, s, (size_t)(sp - s), sp + 1, n - (size_t)(sp - s) - 1, (int32_t)i, err)))
                goto fail;
        }
        const pre_map *pm = NULL;
        for (const pre_map *m = PRE_MAPS; m->names; m++)
            if (name_in(pre, m->names)) pm = m;
        if (!pm) {
            rc = ll_fail(err, LL_ERR_UNSUPPORTED,
                         "%s: tokenizer.ggml.pre = '%s' is not supported (llama.cpp pre-tokenizer types implemented: "
                         "default, llama3, llama-v3, llama-bpe, falcon3, dbrx, smaug-bpe, falcon, starcoder, refact, "
                         "command-r, smollm, codeshell, exaone, minerva-7b, gpt-2, phi-2, jina-*, gigachat, roberta-bpe, "
                         "mpt, olmo, jais, qwen2, stablelm2, megrez, deepseek-r1-qwen)",
                         name, pre);
            goto fail;
        }
        t->ignore_merges = pm->ignore_merges;
        for (int k = 0; pm->patterns[k]; k++)
            if ((rc = ll_tok_add_split(t, pm->patterns[k], strlen(pm->patterns[k]), 0, SPLIT_ISOLATED, 0, err))) goto fail;
    } else {
        int add_space = 1;
        if ((rc = ll_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", 0, &add_space, err))) goto fail;
        t->byte_fallback = 1;
        if (add_space && (rc = ll_tok_add_norm(t, NORM_PREPEND, "", 0, " ", 1, err))) goto fail;
        if ((rc = ll_tok_add_norm(t, NORM_REPLACE_STR, " ", 1, "\xE2\x96\x81", 3, err))) goto fail;
        t->decode_space_char = 1;
        t->decode_strip_space = add_space;
        if ((rc = ll_tok_merges_from_scores(t, 1, err))) goto fail;
    }
    if ((rc = ll_tok_ready(t, err))) goto fail;
    free(respelled);
    *out = t;
    return LL_OK;
fail:
    free(respelled);
    ll_tokenizer_free(t);
    return rc;
}

int ll_tok_load_gguf(ll_tokenizer **out, const uint8_t *data, size_t len, const char *name, ll_error *err) {
    *out = NULL;
    ll_mapped_file mf;
    int rc = ll_map_memory(&mf, data, len, name, err);
    if (rc) return rc;
    ll_gguf_file *g;
    if ((rc = ll_gguf_open_mapped(&g, &mf, err))) return rc;
    rc = gguf_tok(out, g, name, err);
    char model[64] = "";
    ll_error ignored;
    if (!rc && !ll_gguf_find_kv(g, "tokenizer.ggml.pre") &&
        !ll_gguf_get_string(g, "tokenizer.ggml.model", 1, model, sizeof model, &ignored) && !strcmp(model, "gpt2"))
        snprintf((*out)->warning, sizeof (*out)->warning,
                 "%s: no tokenizer.ggml.pre: using llama.cpp's 'default' pre-tokenizer, as llama.cpp does; text may "
                 "be split unlike the model's own tokenizer", name);
    ll_gguf_close(g);
    return rc;
}
