/* Hugging Face tokenizer.json reader (model type BPE). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/tok_internal.h"

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int jbool(const cJSON *o, const char *key, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return def;
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
        int rc = get_pattern(t, n, "normalizer Replace", &pat, &literal, err);
        if (rc) return rc;
        if (!content) return ll_fail(err, LL_ERR_FORMAT, "%s: normalizer Replace without \"content\"", t->name);
        return tok_add_norm(t, literal ? NORM_REPLACE_STR : NORM_REPLACE_REGEX, pat, strlen(pat), content,
                            strlen(content), err);
    }
    if (!strcmp(type, "Prepend")) {
        const char *p = jstr(n, "prepend");
        if (!p) return ll_fail(err, LL_ERR_FORMAT, "%s: normalizer Prepend without \"prepend\"", t->name);
        return tok_add_norm(t, NORM_PREPEND, "", 0, p, strlen(p), err);
    }
    if (!strcmp(type, "Strip")) {
        int rc = tok_add_norm(t, NORM_STRIP, "", 0, "", 0, err);
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
        *byte_level = 1;
        if (jbool(p, "add_prefix_space", 0)) {
            if (t->n_split)
                return ll_fail(err, LL_ERR_UNSUPPORTED,
                               "%s: ByteLevel add_prefix_space after a splitting pre-tokenizer is not supported",
                               t->name);
            int rc = tok_add_norm(t, NORM_PREPEND_IF_NOT, "", 0, " ", 1, err);
            if (rc) return rc;
        }
        if (jbool(p, "use_regex", 1))
            return tok_add_split(t, LL_GPT2_PATTERN, strlen(LL_GPT2_PATTERN), 0, SPLIT_ISOLATED, 0, err);
        return LL_OK;
    }
    if (!strcmp(type, "Digits")) {
        const char *pat = jbool(p, "individual_digits", 0) ? "\\p{N}" : "\\p{N}+";
        return tok_add_split(t, pat, strlen(pat), 0, SPLIT_ISOLATED, 0, err);
    }
    if (!strcmp(type, "Split")) {
        const char *pat = NULL;
        int literal = 0;
        int rc = get_pattern(t, p, "pre_tokenizer Split", &pat, &literal, err);
        if (rc) return rc;
        int beh = parse_behavior(jstr(p, "behavior"));
        if (beh < 0) return ll_fail(err, LL_ERR_FORMAT, "%s: pre_tokenizer Split: missing or unknown \"behavior\"", t->name);
        return tok_add_split(t, pat, strlen(pat), literal, beh, jbool(p, "invert", 0), err);
    }
    if (!strcmp(type, "Metaspace")) {
        const char *rep = jstr(p, "replacement");
        if (!rep || !*rep) return ll_fail(err, LL_ERR_FORMAT, "%s: Metaspace without \"replacement\"", t->name);
        if (t->n_split)
            return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: Metaspace after a splitting pre-tokenizer is not supported",
                           t->name);
        int rc = tok_add_norm(t, NORM_REPLACE_STR, " ", 1, rep, strlen(rep), err);
        if (rc) return rc;
        const char *scheme = jstr(p, "prepend_scheme");
        int prepend = scheme ? strcmp(scheme, "never") != 0 : jbool(p, "add_prefix_space", 1);
        if (prepend) {
            rc = tok_add_norm(t, NORM_PREPEND_IF_NOT, "", 0, rep, strlen(rep), err);
            if (rc) return rc;
            t->norm[t->n_norm - 1].first_only = scheme && !strcmp(scheme, "first");
        }
        t->decode_strip_space = prepend;
        if (jbool(p, "split", 1)) return tok_add_split(t, rep, strlen(rep), 1, SPLIT_MERGED_NEXT, 0, err);
        return LL_OK;
    }
    if (!strcmp(type, "Whitespace")) return tok_add_split(t, "\\w+|[^\\w\\s]+", 14, 0, SPLIT_REMOVED, 1, err);
    if (!strcmp(type, "WhitespaceSplit")) return tok_add_split(t, "\\s+", 3, 0, SPLIT_REMOVED, 0, err);
    if (!strcmp(type, "Punctuation")) {
        int beh = parse_behavior(jstr(p, "behavior"));
        if (beh < 0) beh = SPLIT_ISOLATED;
        const char *pat = "[\\p{P}!-/:-@\\[-`{-~]";
        return tok_add_split(t, pat, strlen(pat), 0, beh, 0, err);
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
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(p, "processors");
        const cJSON *e;
        cJSON_ArrayForEach(e, arr) {
            int rc = load_post(t, e, err);
            if (rc) return rc;
        }
        return LL_OK;
    }
    if (!strcmp(type, "ByteLevel")) return LL_OK; /* offsets trimming only */
    if (!strcmp(type, "TemplateProcessing")) {
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
        t->pre_ids[t->n_pre++] = (int32_t)ci->valuedouble;
        t->post_ids[t->n_post++] = (int32_t)si->valuedouble;
        return LL_OK;
    }
    return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: post_processor type \"%s\" is not supported", t->name, type);
}

static int load_model(ll_tokenizer **out, const cJSON *root, const char *name, ll_error *err) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) return ll_fail(err, LL_ERR_FORMAT, "%s: no \"model\" object", name);
    const char *type = jstr(model, "type");
    if (type && strcmp(type, "BPE") != 0)
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: model type \"%s\" is not supported (only BPE)", name, type);
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab)) return ll_fail(err, LL_ERR_FORMAT, "%s: model has no \"vocab\" object", name);
    const char *csp = jstr(model, "continuing_subword_prefix"), *eow = jstr(model, "end_of_word_suffix");
    if ((csp && *csp) || (eow && *eow))
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: continuing_subword_prefix / end_of_word_suffix are not supported",
                       name);
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0)
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: BPE dropout is not supported", name);

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

    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    int byte_level = 0;
    ll_tokenizer *t;
    int rc = tok_new(&t, name, LL_TOK_SPM_BPE, LL_TOKFMT_JSON, (size_t)max_id + 1, err);
    if (rc) return rc;
    cJSON_ArrayForEach(e, vocab) {
        if ((rc = tok_set_piece(t, (int32_t)e->valuedouble, e->string, strlen(e->string), 0, 0, err))) goto fail;
    }
    /* JSON strings cannot hold NUL inside cJSON; pieces with embedded NUL are lost (none in practice) */
    cJSON_ArrayForEach(e, added) {
        int32_t id = (int32_t)cJSON_GetObjectItemCaseSensitive(e, "id")->valuedouble;
        const char *c = jstr(e, "content");
        if (t->len[id] == UINT32_MAX && (rc = tok_set_piece(t, id, c, strlen(c), 0, 0, err))) goto fail;
    }
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
    if ((rc = tok_finish_vocab(t, err))) goto fail;
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
    }
    cJSON_ArrayForEach(e, added) {
        int32_t id = (int32_t)cJSON_GetObjectItemCaseSensitive(e, "id")->valuedouble;
        const char *c = jstr(e, "content");
        if ((rc = tok_add_added(t, c, strlen(c), id, jbool(e, "special", 0), jbool(e, "lstrip", 0),
                                jbool(e, "rstrip", 0), jbool(e, "single_word", 0), err)))
            goto fail;
    }
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
        if ((rc = tok_add_merge_str(t, a, an, b, bn, rank, err))) goto fail;
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
    if ((rc = tok_ready(t, err))) goto fail;
    *out = t;
    return LL_OK;
fail:
    ll_tokenizer_free(t);
    return rc;
}

int tok_load_json(ll_tokenizer **out, const char *text, size_t len, const char *name, ll_error *err) {
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
