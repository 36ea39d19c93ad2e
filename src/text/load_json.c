/* Hugging Face tokenizer.json reader (model type BPE). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/tok_internal.h"
#include "text/utf8.h"

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int jbool(const cJSON *o, const char *key, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return def;
}

/* a JSON value as short text for messages ("0.1", "\"##\"", "{...}") */
static void jtext(const cJSON *v, char *out, size_t cap) {
    char *p = v ? cJSON_PrintUnformatted(v) : NULL;
    snprintf(out, cap, "%s", p ? p : "?");
    if (p && strlen(p) >= cap && cap > 4) memcpy(out + cap - 4, "...", 4);
    free(p);
}

/* Every key of o must be one of `known` (NULL-terminated). A key this reader
 * does not implement is refused with its name and value, never ignored. */
static int check_keys(const char *name, const cJSON *o, const char *what, const char *const *known, ll_error *err) {
    const cJSON *e;
    cJSON_ArrayForEach(e, o) {
        int ok = 0;
        for (int k = 0; known[k] && !ok; k++) ok = e->string && !strcmp(e->string, known[k]);
        if (!ok) {
            char v[96];
            jtext(e, v, sizeof v);
            return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: %s key \"%s\" = %s is not supported", name, what,
                           e->string ? e->string : "", v);
        }
    }
    return LL_OK;
}

#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* a setting whose value is not implemented: refused with key and value */
static int refuse(const char *name, const char *what, const char *key, const cJSON *v, const char *why, ll_error *err) {
    char txt[96];
    jtext(v, txt, sizeof txt);
    return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: %s \"%s\" = %s is not supported%s%s", name, what, key, txt,
                   why ? ": " : "", why ? why : "");
}

/* pattern object {"String": s} or {"Regex": r} */
static int get_pattern(ll_tokenizer *t, const cJSON *o, const char *what, const char **pat, int *literal,
                       ll_error *err) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "pattern");
    const char *s = jstr(p, "String"), *r = jstr(p, "Regex");
    if (s) {
        *pat = s;
        *literal = 1;
        return LL_OK;
    }
    if (r) {
        *pat = r;
        *literal = 0;
        return LL_OK;
    }
    return ll_fail(err, LL_ERR_FORMAT, "%s: %s: \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}", t->name,
                   what);
}

static int parse_behavior(const char *b) {
    if (!b) return -1;
    if (!strcmp(b, "Removed")) return SPLIT_REMOVED;
    if (!strcmp(b, "Isolated")) return SPLIT_ISOLATED;
    if (!strcmp(b, "MergedWithPrevious")) return SPLIT_MERGED_PREV;
    if (!strcmp(b, "MergedWithNext")) return SPLIT_MERGED_NEXT;
    if (!strcmp(b, "Contiguous")) return SPLIT_CONTIGUOUS;
    return -1;
}

static int load_normalizer(ll_tokenizer *t, const cJSON *n, ll_error *err) {
    if (!n || cJSON_IsNull(n)) return LL_OK;
    const char *type = jstr(n, "type");
    if (!type) return ll_fail(err, LL_ERR_FORMAT, "%s: normalizer without a \"type\"", t->name);
    if (!strcmp(type, "Sequence")) {
        int rk = check_keys(t->name, n, "normalizer Sequence", KEYS("type", "normalizers"), err);
        if (rk) return rk;
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        if (!cJSON_IsArray(arr)) return ll_fail(err, LL_ERR_FORMAT, "%s: normalizer Sequence without \"normalizers\"", t->name);
        const cJSON *e;
        cJSON_ArrayForEach(e, arr) {
            int rc = load_normalizer(t, e, err);
            if (rc) return rc;
        }
        return LL_OK;
    }
    if (!strcmp(type, "Replace")) {
        const char *pat = NULL, *content = jstr(n, "content");
        int literal = 0;
        int rc = check_keys(t->name, n, "normalizer Replace", KEYS("type", "pattern", "content"), err);
        if (!rc) rc = get_pattern(t, n, "normalizer Replace", &pat, &literal, err);
        if (rc) return rc;
        if (!content) return ll_fail(err, LL_ERR_FORMAT, "%s: normalizer Replace without \"content\"", t->name);
        return ll_tok_add_norm(t, literal ? NORM_REPLACE_STR : NORM_REPLACE_REGEX, pat, strlen(pat), content,
                            strlen(content), err);
    }
    if (!strcmp(type, "Prepend")) {
        int rk = check_keys(t->name, n, "normalizer Prepend", KEYS("type", "prepend"), err);
        if (rk) return rk;
        const char *p = jstr(n, "prepend");
        if (!p) return ll_fail(err, LL_ERR_FORMAT, "%s: normalizer Prepend without \"prepend\"", t->name);
        return ll_tok_add_norm(t, NORM_PREPEND, "", 0, p, strlen(p), err);
    }
    if (!strcmp(type, "Strip")) {
        int rc = check_keys(t->name, n, "normalizer Strip", KEYS("type", "strip_left", "strip_right"), err);
        if (!rc) rc = ll_tok_add_norm(t, NORM_STRIP, "", 0, "", 0, err);
        if (rc) return rc;
        t->norm[t->n_norm - 1].left = jbool(n, "strip_left", 1);
        t->norm[t->n_norm - 1].right = jbool(n, "strip_right", 1);
        return LL_OK;
    }
    return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: normalizer type \"%s\" is not supported", t->name, type);
}

/* stage: 0 while no splitting pre-tokenizer has been added yet */
static int load_pretok(ll_tokenizer *t, const cJSON *p, int *byte_level, ll_error *err) {
    if (!p || cJSON_IsNull(p)) return LL_OK;
    const char *type = jstr(p, "type");
    if (!type) return ll_fail(err, LL_ERR_FORMAT, "%s: pre_tokenizer without a \"type\"", t->name);
    if (!strcmp(type, "Sequence")) {
        int rk = check_keys(t->name, p, "pre_tokenizer Sequence", KEYS("type", "pretokenizers"), err);
        if (rk) return rk;
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
        if (!cJSON_IsArray(arr))
            return ll_fail(err, LL_ERR_FORMAT, "%s: pre_tokenizer Sequence without \"pretokenizers\"", t->name);
        const cJSON *e;
        cJSON_ArrayForEach(e, arr) {
            int rc = load_pretok(t, e, byte_level, err);
            if (rc) return rc;
        }
        return LL_OK;
    }
    if (!strcmp(type, "ByteLevel")) {
        /* trim_offsets belongs to the ByteLevel post-processor; the
         * pre-tokenizer does not read it */
        int rk = check_keys(t->name, p, "pre_tokenizer ByteLevel", KEYS("type", "add_prefix_space", "trim_offsets", "use_regex"),
                            err);
        if (rk) return rk;
        *byte_level = 1;
        if (jbool(p, "add_prefix_space", 0)) {
            if (t->n_split)
                return ll_fail(err, LL_ERR_UNSUPPORTED,
                               "%s: ByteLevel add_prefix_space after a splitting pre-tokenizer is not supported",
                               t->name);
            int rc = ll_tok_add_norm(t, NORM_PREPEND_IF_NOT, "", 0, " ", 1, err);
            if (rc) return rc;
        }
        if (jbool(p, "use_regex", 1))
            return ll_tok_add_split(t, ll_gpt2_pattern_text, strlen(ll_gpt2_pattern_text), 0, SPLIT_ISOLATED, 0, err);
        return LL_OK;
    }
    if (!strcmp(type, "Digits")) {
        int rk = check_keys(t->name, p, "pre_tokenizer Digits", KEYS("type", "individual_digits"), err);
        if (rk) return rk;
        const char *pat = jbool(p, "individual_digits", 0) ? "\\p{N}" : "\\p{N}+";
        return ll_tok_add_split(t, pat, strlen(pat), 0, SPLIT_ISOLATED, 0, err);
    }
    if (!strcmp(type, "Split")) {
        const char *pat = NULL;
        int literal = 0;
        int rc = check_keys(t->name, p, "pre_tokenizer Split", KEYS("type", "pattern", "behavior", "invert"), err);
        if (!rc) rc = get_pattern(t, p, "pre_tokenizer Split", &pat, &literal, err);
        if (rc) return rc;
        int beh = parse_behavior(jstr(p, "behavior"));
        if (beh < 0) return ll_fail(err, LL_ERR_FORMAT, "%s: pre_tokenizer Split: missing or unknown \"behavior\"", t->name);
        return ll_tok_add_split(t, pat, strlen(pat), literal, beh, jbool(p, "invert", 0), err);
    }
    if (!strcmp(type, "Metaspace")) {
        int rk = check_keys(t->name, p, "pre_tokenizer Metaspace",
                            KEYS("type", "replacement", "str_rep", "prepend_scheme", "split", "add_prefix_space"), err);
        if (rk) return rk;
        const char *rep = jstr(p, "replacement");
        if (!rep || !*rep) return ll_fail(err, LL_ERR_FORMAT, "%s: Metaspace without \"replacement\"", t->name);
        if (ll_utf8_len((uint8_t)rep[0]) != (int)strlen(rep))
            return refuse(t->name, "pre_tokenizer Metaspace", "replacement", cJSON_GetObjectItemCaseSensitive(p, "replacement"),
                          "it must be one character", err);
        if (t->n_split)
            return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: Metaspace after a splitting pre-tokenizer is not supported",
                           t->name);
        int rc = ll_tok_add_norm(t, NORM_REPLACE_STR, " ", 1, rep, strlen(rep), err);
        if (rc) return rc;
        const char *scheme = jstr(p, "prepend_scheme");
        if (scheme && strcmp(scheme, "always") && strcmp(scheme, "first") && strcmp(scheme, "never"))
            return refuse(t->name, "pre_tokenizer Metaspace", "prepend_scheme",
                          cJSON_GetObjectItemCaseSensitive(p, "prepend_scheme"), "known values are always, first, never", err);
        int prepend = scheme ? strcmp(scheme, "never") != 0 : jbool(p, "add_prefix_space", 1);
        if (prepend) {
            rc = ll_tok_add_norm(t, NORM_PREPEND_IF_NOT, "", 0, rep, strlen(rep), err);
            if (rc) return rc;
            t->norm[t->n_norm - 1].first_only = scheme && !strcmp(scheme, "first");
        }
        t->decode_strip_space = prepend;
        if (jbool(p, "split", 1)) return ll_tok_add_split(t, rep, strlen(rep), 1, SPLIT_MERGED_NEXT, 0, err);
        return LL_OK;
    }
    if (!strcmp(type, "Whitespace") || !strcmp(type, "WhitespaceSplit") || !strcmp(type, "Punctuation")) {
        int rk = !strcmp(type, "Punctuation") ? check_keys(t->name, p, "pre_tokenizer Punctuation", KEYS("type", "behavior"), err)
                                              : check_keys(t->name, p, "pre_tokenizer", KEYS("type"), err);
        if (rk) return rk;
    }
    if (!strcmp(type, "Whitespace")) {
        static const char ws[] = "\\w+|[^\\w\\s]+";
        return ll_tok_add_split(t, ws, sizeof ws - 1, 0, SPLIT_REMOVED, 1, err);
    }
    if (!strcmp(type, "WhitespaceSplit")) return ll_tok_add_split(t, "\\s+", 3, 0, SPLIT_REMOVED, 0, err);
    if (!strcmp(type, "Punctuation")) {
        int beh = parse_behavior(jstr(p, "behavior"));
        if (beh < 0 && cJSON_GetObjectItemCaseSensitive(p, "behavior"))
            return refuse(t->name, "pre_tokenizer Punctuation", "behavior", cJSON_GetObjectItemCaseSensitive(p, "behavior"), NULL,
                          err);
        if (beh < 0) beh = SPLIT_ISOLATED; /* tokenizers' default */
        const char *pat = "[\\p{P}!-/:-@\\[-`{-~]";
        return ll_tok_add_split(t, pat, strlen(pat), 0, beh, 0, err);
    }
    return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: pre_tokenizer type \"%s\" is not supported", t->name, type);
}

static int find_id(ll_tokenizer *t, const char *tok, int32_t *id) {
    *id = ll_tokenizer_piece_id(t, tok, strlen(tok));
    return *id >= 0;
}

static int load_template_side(ll_tokenizer *t, const cJSON *single, const cJSON *specials, ll_error *err) {
    int seen_seq = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, single) {
        if (cJSON_GetObjectItemCaseSensitive(e, "Sequence")) {
            seen_seq = 1;
            continue;
        }
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(e, "SpecialToken");
        const char *name = jstr(sp, "id");
        if (!name) return ll_fail(err, LL_ERR_FORMAT, "%s: post_processor template item is neither Sequence nor SpecialToken", t->name);
        /* ids from the special_tokens table, else the vocabulary */
        const cJSON *def = cJSON_GetObjectItemCaseSensitive(specials, name);
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(def, "ids");
        int32_t list[4];
        int nl = 0;
        if (cJSON_IsArray(ids)) {
            const cJSON *x;
            cJSON_ArrayForEach(x, ids) {
                if (!cJSON_IsNumber(x) || nl >= 4)
                    return ll_fail(err, LL_ERR_FORMAT, "%s: post_processor special token \"%s\": bad \"ids\"", t->name, name);
                list[nl++] = (int32_t)x->valuedouble;
            }
        } else {
            int32_t id;
            if (!find_id(t, name, &id))
                return ll_fail(err, LL_ERR_FORMAT, "%s: post_processor special token \"%s\" not in the vocabulary", t->name, name);
            list[nl++] = id;
        }
        for (int k = 0; k < nl; k++) {
            if (list[k] < 0 || list[k] >= t->n_vocab)
                return ll_fail(err, LL_ERR_FORMAT, "%s: post_processor special token \"%s\" has id %d outside the vocabulary",
                               t->name, name, (int)list[k]);
            int32_t *arr = seen_seq ? t->post_ids : t->pre_ids;
            int *cnt = seen_seq ? &t->n_post : &t->n_pre;
            if (*cnt >= 4) return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: more than 4 template special tokens", t->name);
            arr[(*cnt)++] = list[k];
        }
    }
    return LL_OK;
}

static int load_post(ll_tokenizer *t, const cJSON *p, ll_error *err) {
    if (!p || cJSON_IsNull(p)) return LL_OK;
    const char *type = jstr(p, "type");
    if (!type) return ll_fail(err, LL_ERR_FORMAT, "%s: post_processor without a \"type\"", t->name);
    if (!strcmp(type, "Sequence")) {
        int rk = check_keys(t->name, p, "post_processor Sequence", KEYS("type", "processors"), err);
        if (rk) return rk;
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(p, "processors");
        const cJSON *e;
        cJSON_ArrayForEach(e, arr) {
            int rc = load_post(t, e, err);
            if (rc) return rc;
        }
        return LL_OK;
    }
    if (!strcmp(type, "ByteLevel") || !strcmp(type, "RobertaProcessing")) {
        /* offsets trimming (tokenizers' process_offsets): leading/trailing
         * "Ġ" or whitespace of a token are cut from its offsets */
        int rk = !strcmp(type, "ByteLevel")
                     ? check_keys(t->name, p, "post_processor ByteLevel", KEYS("type", "add_prefix_space", "trim_offsets", "use_regex"),
                                  err)
                     : check_keys(t->name, p, "post_processor RobertaProcessing",
                                  KEYS("type", "sep", "cls", "trim_offsets", "add_prefix_space"), err);
        if (rk) return rk;
        if (jbool(p, "trim_offsets", 1)) {
            if (t->n_pre || t->n_post)
                return ll_fail(err, LL_ERR_UNSUPPORTED,
                               "%s: post_processor %s with trim_offsets after a processor that adds special tokens is not "
                               "supported",
                               t->name, type);
            t->trim_offsets = 1;
            t->trim_prefix_space = jbool(p, "add_prefix_space", 1);
        }
        if (!strcmp(type, "ByteLevel")) return LL_OK;
    }
    if (!strcmp(type, "TemplateProcessing")) {
        int rk = check_keys(t->name, p, "post_processor TemplateProcessing", KEYS("type", "single", "pair", "special_tokens"), err);
        if (rk) return rk;
        const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
        if (!cJSON_IsArray(single))
            return ll_fail(err, LL_ERR_FORMAT, "%s: TemplateProcessing without a \"single\" template", t->name);
        return load_template_side(t, single, cJSON_GetObjectItemCaseSensitive(p, "special_tokens"), err);
    }
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(p, "cls"), *sep = cJSON_GetObjectItemCaseSensitive(p, "sep");
        const cJSON *ci = cJSON_GetArrayItem(cls, 1), *si = cJSON_GetArrayItem(sep, 1);
        if (!cJSON_IsNumber(ci) || !cJSON_IsNumber(si))
            return ll_fail(err, LL_ERR_FORMAT, "%s: %s without cls/sep", t->name, type);
        if (!strcmp(type, "BertProcessing")) {
            int rk = check_keys(t->name, p, "post_processor BertProcessing", KEYS("type", "sep", "cls"), err);
            if (rk) return rk;
        }
        if (t->n_pre >= 4 || t->n_post >= 4)
            return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: more than 4 template special tokens", t->name);
        if (ci->valuedouble < 0 || ci->valuedouble >= t->n_vocab || si->valuedouble < 0 || si->valuedouble >= t->n_vocab)
            return ll_fail(err, LL_ERR_FORMAT, "%s: %s cls/sep id outside the vocabulary", t->name, type);
        t->pre_ids[t->n_pre++] = (int32_t)ci->valuedouble;
        t->post_ids[t->n_post++] = (int32_t)si->valuedouble;
        return LL_OK;
    }
    return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: post_processor type \"%s\" is not supported", t->name, type);
}

/* The decoder is read for its type only (lsllama's decode follows the
 * pre-tokenizer: byte-level or "▁" pieces, byte fallback, one leading space
 * dropped after a prepended one); decoders outside that shape are refused. */
static int load_decoder(ll_tokenizer *t, const cJSON *d, ll_error *err) {
    if (!d || cJSON_IsNull(d)) return LL_OK;
    const char *type = jstr(d, "type");
    if (!type) return ll_fail(err, LL_ERR_FORMAT, "%s: decoder without a \"type\"", t->name);
    if (!strcmp(type, "Sequence")) {
        int rk = check_keys(t->name, d, "decoder Sequence", KEYS("type", "decoders"), err);
        if (rk) return rk;
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(d, "decoders")) {
            rk = load_decoder(t, e, err);
            if (rk) return rk;
        }
        return LL_OK;
    }
    int byte_level = t->kind == LL_TOK_BYTE_LEVEL_BPE;
    if (!strcmp(type, "ByteLevel") && byte_level)
        return check_keys(t->name, d, "decoder ByteLevel", KEYS("type", "add_prefix_space", "trim_offsets", "use_regex"), err);
    if (!strcmp(type, "ByteFallback") || !strcmp(type, "Fuse")) return check_keys(t->name, d, "decoder", KEYS("type"), err);
    if (!strcmp(type, "Metaspace") && !byte_level)
        return check_keys(t->name, d, "decoder Metaspace",
                          KEYS("type", "replacement", "str_rep", "prepend_scheme", "split", "add_prefix_space"), err);
    if (!strcmp(type, "Replace") && !byte_level) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(d, "pattern");
        const char *ps = jstr(pat, "String"), *c = jstr(d, "content");
        if (ps && c && !strcmp(ps, "\xE2\x96\x81") && !strcmp(c, " ")) return LL_OK;
        return refuse(t->name, "decoder Replace", "pattern", pat, "only \"▁\" -> \" \" is implemented", err);
    }
    if (!strcmp(type, "Strip") && !byte_level) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(d, "start"), *sp = cJSON_GetObjectItemCaseSensitive(d, "stop");
        const char *c = jstr(d, "content");
        if (c && !strcmp(c, " ") && cJSON_IsNumber(st) && st->valuedouble == 1 && cJSON_IsNumber(sp) && sp->valuedouble == 0 &&
            t->decode_strip_space)
            return LL_OK;
        return refuse(t->name, "decoder Strip", "start", st, "only content \" \", start 1, stop 0 after a prepended \"▁\"", err);
    }
    return refuse(t->name, "decoder", "type", cJSON_GetObjectItemCaseSensitive(d, "type"),
                  byte_level ? "with a ByteLevel pre-tokenizer only the ByteLevel decoder is implemented" : NULL, err);
}

static int load_model(ll_tokenizer **out, const cJSON *root, const char *name, ll_error *err) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) return ll_fail(err, LL_ERR_FORMAT, "%s: no \"model\" object", name);
    const char *type = jstr(model, "type");
    if (type && strcmp(type, "BPE") != 0)
        return refuse(name, "model", "type", cJSON_GetObjectItemCaseSensitive(model, "type"), "only BPE is implemented", err);
    int rc = check_keys(name, root, "tokenizer.json",
                        KEYS("version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer", "model",
                             "post_processor", "decoder"),
                        err);
    if (!rc)
        rc = check_keys(name, model, "model (BPE)",
                        KEYS("type", "dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk",
                             "byte_fallback", "ignore_merges", "vocab", "merges"),
                        err);
    if (rc) return rc;
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab)) return ll_fail(err, LL_ERR_FORMAT, "%s: model has no \"vocab\" object", name);
    /* an empty prefix/suffix is what tokenizers does without one */
    static const char *const affix[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, affix[k]);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && !*v->valuestring))
            return refuse(name, "model (BPE)", affix[k], v, NULL, err);
    }
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (dropout && !cJSON_IsNull(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
        return refuse(name, "model (BPE)", "dropout", dropout, "BPE dropout is random; only null or 0 are deterministic", err);
    static const char *const flags[] = {"fuse_unk", "byte_fallback", "ignore_merges"};
    for (int k = 0; k < 3; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, flags[k]);
        if (v && !cJSON_IsBool(v)) return ll_fail(err, LL_ERR_FORMAT, "%s: model \"%s\" is not a boolean", name, flags[k]);
    }

    /* vocabulary size = max id + 1 over vocab and added_tokens */
    int64_t max_id = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > 16e6 || e->valuedouble != (double)(int64_t)e->valuedouble)
            return ll_fail(err, LL_ERR_FORMAT, "%s: vocab entry \"%.64s\" has no valid id", name, e->string ? e->string : "");
        if ((int64_t)e->valuedouble > max_id) max_id = (int64_t)e->valuedouble;
    }
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (added && !cJSON_IsArray(added) && !cJSON_IsNull(added))
        return ll_fail(err, LL_ERR_FORMAT, "%s: \"added_tokens\" is not an array", name);
    cJSON_ArrayForEach(e, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 16e6 || !jstr(e, "content"))
            return ll_fail(err, LL_ERR_FORMAT, "%s: added token without a valid \"id\" and \"content\"", name);
        if ((int64_t)id->valuedouble > max_id) max_id = (int64_t)id->valuedouble;
    }
    if (max_id < 0) return ll_fail(err, LL_ERR_FORMAT, "%s: empty vocabulary", name);

    cJSON_ArrayForEach(e, added) {
        if ((rc = check_keys(name, e, "added_tokens entry",
                             KEYS("id", "content", "single_word", "lstrip", "rstrip", "normalized", "special"), err)))
            return rc;
    }
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    int byte_level = 0;
    ll_tokenizer *t;
    ll_strmap model_vocab = {0};
    rc = ll_tok_new(&t, name, LL_TOK_SPM_BPE, LL_TOKFMT_JSON, (size_t)max_id + 1, err);
    if (rc) return rc;
    cJSON_ArrayForEach(e, vocab) {
        if ((rc = ll_tok_set_piece(t, (int32_t)e->valuedouble, e->string, strlen(e->string), 0, 0, err))) goto fail;
    }
    /* the vocabulary alone, hashed: looking each added token up in the JSON object instead (a linear scan) took
     * 25 s for Gemma's 6,414 added tokens in 262,144 pieces */
    if (ll_strmap_init(&model_vocab, (size_t)max_id + 1)) {
        rc = ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    cJSON_ArrayForEach(e, vocab) ll_strmap_put(&model_vocab, t->pool, t->off, t->len, (int32_t)e->valuedouble);
    /* JSON strings cannot hold NUL inside cJSON; pieces with embedded NUL are lost (none in practice) */
    cJSON_ArrayForEach(e, added) {
        int32_t id = (int32_t)cJSON_GetObjectItemCaseSensitive(e, "id")->valuedouble;
        const char *c = jstr(e, "content");
        /* an added token must agree with the vocabulary: tokenizers then gives its content the vocabulary's id
         * (or another id of its own) where lsllama would give the declared one */
        const int32_t vid = ll_strmap_get(&model_vocab, t->pool, t->off, t->len, c, strlen(c));
        if ((vid >= 0 && vid != id) ||
            (t->len[id] != UINT32_MAX && (t->len[id] != strlen(c) || memcmp(t->pool + t->off[id], c, strlen(c))))) {
            rc = ll_fail(err, LL_ERR_UNSUPPORTED, "%s: added token \"%.64s\" has id %d, but the model's vocabulary %s: "
                         "the file disagrees with itself (tokenizers would not use id %d); not supported",
                         name, c, (int)id, vid >= 0 && vid != id ? "gives that text another id" : "gives that id to "
                         "another text", (int)id);
            goto fail;
        }
        if (t->len[id] == UINT32_MAX && (rc = ll_tok_set_piece(t, id, c, strlen(c), 0, 0, err))) goto fail;
    }
    ll_strmap_free(&model_vocab);
    /* pre-tokenizer first (it decides byte-level), then the normalizer must run
     * before it: load normalizer ops first into the list, then pre-tok ops */
    if ((rc = load_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), err))) goto fail;
    if ((rc = load_pretok(t, pre, &byte_level, err))) goto fail;
    t->kind = byte_level ? LL_TOK_BYTE_LEVEL_BPE : LL_TOK_SPM_BPE;
    if (!byte_level) {
        /* decoder: Replace ▁ -> ' ' means pieces carry U+2581 for spaces; a Strip
         * decoder (or a Prepend normalizer) means one leading space is dropped */
        t->decode_space_char = 1;
        for (size_t k = 0; k < t->n_norm; k++)
            if (t->norm[k].kind == NORM_PREPEND || t->norm[k].kind == NORM_PREPEND_IF_NOT) t->decode_strip_space = 1;
    }
    if ((rc = ll_tok_finish_vocab(t, err))) goto fail;
    t->byte_fallback = jbool(model, "byte_fallback", 0);
    t->fuse_unk = jbool(model, "fuse_unk", 0);
    t->ignore_merges = jbool(model, "ignore_merges", 0);
    const char *unk = jstr(model, "unk_token");
    if (unk) {
        t->unk_id = ll_tokenizer_piece_id(t, unk, strlen(unk));
        if (t->unk_id < 0) {
            rc = ll_fail(err, LL_ERR_FORMAT, "%s: unk_token \"%.64s\" is not in the vocabulary", name, unk);
            goto fail;
        }
    }
    if (!t->byte_fallback) {
        if (t->kind != LL_TOK_BYTE_LEVEL_BPE)
            for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    } else if (t->kind == LL_TOK_BYTE_LEVEL_BPE) {
        /* byte_fallback acts only on a character missing from the vocabulary;
         * with the whole byte-level alphabet present it never does */
        for (int b = 0; b < 256; b++)
            if (t->byte_id[b] < 0) {
                rc = refuse(name, "model (BPE)", "byte_fallback", cJSON_GetObjectItemCaseSensitive(model, "byte_fallback"),
                            "with a ByteLevel pre-tokenizer whose alphabet is not all in the vocabulary", err);
                goto fail;
            }
    }
    const cJSON *normalizer = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    cJSON_ArrayForEach(e, added) {
        int32_t id = (int32_t)cJSON_GetObjectItemCaseSensitive(e, "id")->valuedouble;
        const char *c = jstr(e, "content");
        int special = jbool(e, "special", 0);
        /* tokenizers' default: a special token is matched in the raw text,
         * any other in the normalized text */
        int normalized = jbool(e, "normalized", !special);
        if (normalized && normalizer && !cJSON_IsNull(normalizer)) {
            rc = ll_fail(err, LL_ERR_UNSUPPORTED,
                         "%s: added token \"%.64s\": \"normalized\" = true with a normalizer is not supported (it "
                         "would be matched in the normalized text)",
                         name, c);
            goto fail;
        }
        size_t before = t->n_added;
        if ((rc = ll_tok_add_added(t, c, strlen(c), id, special, jbool(e, "lstrip", 0), jbool(e, "rstrip", 0),
                                jbool(e, "single_word", 0), err)))
            goto fail;
        if (t->n_added > before) {
            t->added[before].normalized = normalized;
            if (normalized) t->has_normalized_added = 1;
        }
    }
    if ((rc = load_decoder(t, cJSON_GetObjectItemCaseSensitive(root, "decoder"), err))) goto fail;
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (merges && !cJSON_IsArray(merges)) {
        rc = ll_fail(err, LL_ERR_FORMAT, "%s: \"merges\" is not an array", name);
        goto fail;
    }
    if (ll_pairmap_init(&t->merges, (size_t)cJSON_GetArraySize(merges) + 16)) {
        rc = ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    int32_t rank = 0;
    cJSON_ArrayForEach(e, merges) {
        const char *a, *b;
        size_t an, bn;
        if (cJSON_IsString(e)) {
            const char *s = e->valuestring, *sp = strchr(s + (s[0] ? 1 : 0), ' ');
            if (!sp) {
                rc = ll_fail(err, LL_ERR_FORMAT, "%s: merge %d \"%.64s\" is not \"left right\"", name, (int)rank, s);
                goto fail;
            }
            a = s;
            an = (size_t)(sp - s);
            b = sp + 1;
            bn = strlen(b);
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(cJSON_GetArrayItem(e, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(e, 1))) {
            a = cJSON_GetArrayItem(e, 0)->valuestring;
            b = cJSON_GetArrayItem(e, 1)->valuestring;
            an = strlen(a);
            bn = strlen(b);
        } else {
            rc = ll_fail(err, LL_ERR_FORMAT, "%s: merge %d is neither \"a b\" nor [\"a\", \"b\"]", name, (int)rank);
            goto fail;
        }
        if ((rc = ll_tok_add_merge_str(t, a, an, b, bn, rank, err))) goto fail;
        rank++;
    }
    if ((rc = load_post(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), err))) goto fail;
    for (int i = 0; i < t->n_pre; i++)
        if (t->pre_ids[i] >= 0 && t->bos_id < 0) t->bos_id = t->pre_ids[i];
    for (int i = 0; i < t->n_post; i++)
        if (t->post_ids[i] >= 0 && t->eos_id < 0) t->eos_id = t->post_ids[i];
    /* without a template, guess BOS/EOS from well-known added tokens */
    static const char *bos_names[] = {"<s>", "<|begin_of_text|>", "<|endoftext|>", "<|im_start|>", NULL};
    static const char *eos_names[] = {"</s>", "<|end_of_text|>", "<|eot_id|>", "<|im_end|>", "<|endoftext|>", NULL};
    for (int i = 0; t->bos_id < 0 && bos_names[i]; i++) find_id(t, bos_names[i], &t->bos_id);
    for (int i = 0; t->eos_id < 0 && eos_names[i]; i++) find_id(t, eos_names[i], &t->eos_id);
    if ((rc = ll_tok_ready(t, err))) goto fail;
    *out = t;
    return LL_OK;
fail:
    ll_strmap_free(&model_vocab);
    ll_tokenizer_free(t);
    return rc;
}

int ll_tok_load_json(ll_tokenizer **out, const char *text, size_t len, const char *name, ll_error *err) {
    *out = NULL;
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= text && at <= text + len ? (size_t)(at - text) : 0;
        size_t line = 1;
        for (size_t i = 0; i < off; i++) line += text[i] == '\n';
        return ll_fail(err, LL_ERR_FORMAT, "%s: invalid JSON near line %zu (byte %zu)", name, line, off);
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ll_fail(err, LL_ERR_FORMAT, "%s: not a JSON object", name);
    }
    int rc = load_model(out, root, name, err);
    cJSON_Delete(root);
    return rc;
}
