#define _GNU_SOURCE
/* Tokenizer construction, encoding pipeline (added tokens -> normalizers ->
 * pre-tokenizer splits -> BPE with cache -> post-processor), decoding and
 * word alignment. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/bpe.h"
#include "text/tok_internal.h"
#include "text/utf8.h"

const char *const ll_gpt2_pattern_text =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ---- pre-token cache ------------------------------------------------------ */

#define CACHE_SLOTS (1u << 16)
#define CACHE_ARENA (4u << 20)
#define CACHE_MAX_PIECE 64

typedef struct cache_slot {
    uint64_t hash;
    uint32_t key_off, key_len; /* in arena */
    uint32_t val_off, val_n;   /* val: val_n pairs of int32 (id, len) */
} cache_slot;

struct ll_tok_cache {
    cache_slot *slots;
    uint8_t *arena;
    size_t arena_used;
    size_t count;
    ll_bpe_scratch *bpe;
};

static ll_tok_cache *cache_new(void) {
    ll_tok_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->slots = calloc(CACHE_SLOTS, sizeof *c->slots);
    c->arena = malloc(CACHE_ARENA);
    c->bpe = ll_bpe_scratch_new();
    if (!c->slots || !c->arena || !c->bpe) {
        free(c->slots);
        free(c->arena);
        ll_bpe_scratch_free(c->bpe);
        free(c);
        return NULL;
    }
    return c;
}

static void cache_free(ll_tok_cache *c) {
    if (!c) return;
    free(c->slots);
    free(c->arena);
    ll_bpe_scratch_free(c->bpe);
    free(c);
}

static void cache_clear(ll_tok_cache *c) {
    memset(c->slots, 0, CACHE_SLOTS * sizeof *c->slots);
    c->arena_used = 0;
    c->count = 0;
}

/* ---- construction ---------------------------------------------------------- */

int ll_tok_new(ll_tokenizer **out, const char *name, ll_tokenizer_kind kind, ll_tokenizer_format fmt, size_t n_vocab,
            ll_error *err) {
    *out = NULL;
    if (n_vocab == 0) return ll_fail(err, LL_ERR_FORMAT, "%s: empty vocabulary", name);
    if (n_vocab > 16u * 1024 * 1024) return ll_fail(err, LL_ERR_FORMAT, "%s: vocabulary too large (%zu)", name, n_vocab);
    ll_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", name);
    t->kind = kind;
    t->format = fmt;
    t->name = strdup(name ? name : "<tokenizer>");
    t->n_vocab = (int32_t)n_vocab;
    t->off = calloc(n_vocab, sizeof *t->off);
    t->len = calloc(n_vocab, sizeof *t->len);
    t->score = calloc(n_vocab, sizeof *t->score);
    t->attr = calloc(n_vocab, 1);
    t->unk_id = t->bos_id = t->eos_id = -1;
    for (int i = 0; i < 256; i++) t->byte_id[i] = -1;
    for (int i = 0; i < 128; i++) t->ascii_id[i] = -1;
    t->pool_cap = n_vocab * 8 + 64;
    t->pool = malloc(t->pool_cap);
    if (!t->name || !t->off || !t->len || !t->score || !t->attr || !t->pool) {
        ll_tokenizer_free(t);
        return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", name);
    }
    /* mark unset pieces */
    for (size_t i = 0; i < n_vocab; i++) t->len[i] = UINT32_MAX;
    *out = t;
    return LL_OK;
}

int ll_tok_set_piece(ll_tokenizer *t, int32_t id, const char *s, size_t n, float score, uint8_t attr, ll_error *err) {
    if (id < 0 || id >= t->n_vocab)
        return ll_fail(err, LL_ERR_FORMAT, "%s: token id %d out of range [0, %d)", t->name, (int)id, (int)t->n_vocab);
    if (n > 65536) return ll_fail(err, LL_ERR_FORMAT, "%s: token %d is %zu bytes long", t->name, (int)id, n);
    if (t->pool_len + n > t->pool_cap) {
        size_t nc = t->pool_cap * 2;
        while (nc < t->pool_len + n) nc *= 2;
        char *np = realloc(t->pool, nc);
        if (!np) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
        t->pool = np;
        t->pool_cap = nc;
    }
    memcpy(t->pool + t->pool_len, s, n);
    t->off[id] = (uint32_t)t->pool_len;
    t->len[id] = (uint32_t)n;
    t->pool_len += n;
    t->score[id] = score;
    t->attr[id] = attr;
    return LL_OK;
}

static int32_t vocab_lookup(const void *ctx, const char *s, size_t n) {
    const ll_tokenizer *t = ctx;
    return ll_strmap_get(&t->vocab, t->pool, t->off, t->len, s, n);
}

/* GPT-2 bytes_to_unicode */
static void byte_level_alphabet(uint32_t cp[256]) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        cp[b] = printable ? (uint32_t)b : (uint32_t)(256 + n++);
    }
}

int ll_tok_finish_vocab(ll_tokenizer *t, ll_error *err) {
    if (t->pool_len > UINT32_MAX) return ll_fail(err, LL_ERR_FORMAT, "%s: vocabulary too large", t->name);
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->len[i] == UINT32_MAX)
            return ll_fail(err, LL_ERR_FORMAT, "%s: token id %d has no entry (ids must be 0..%d without gaps)",
                           t->name, (int)i, (int)t->n_vocab - 1);
    if (ll_strmap_init(&t->vocab, (size_t)t->n_vocab)) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
    for (int32_t i = 0; i < t->n_vocab; i++) ll_strmap_put(&t->vocab, t->pool, t->off, t->len, i);
    for (int c = 0; c < 128; c++) {
        char ch = (char)c;
        t->ascii_id[c] = vocab_lookup(t, &ch, 1);
    }
    if (t->kind == LL_TOK_BYTE_LEVEL_BPE) {
        byte_level_alphabet(t->byte_char);
        for (int b = 0; b < 256; b++) {
            char buf[4];
            int l = ll_utf8_encode(t->byte_char[b], buf);
            t->byte_id[b] = vocab_lookup(t, buf, (size_t)l);
        }
    } else if (t->format != LL_TOKFMT_LLAMA2C) {
        for (int b = 0; b < 256; b++) {
            char buf[8];
            snprintf(buf, sizeof buf, "<0x%02X>", b);
            t->byte_id[b] = vocab_lookup(t, buf, 6);
            if (t->byte_id[b] >= 0) t->attr[t->byte_id[b]] |= TOK_ATTR_BYTE;
        }
    }
    return LL_OK;
}

int ll_tok_add_merge_str(ll_tokenizer *t, const char *a, size_t an, const char *b, size_t bn, int32_t rank,
                      ll_error *err) {
    if (!t->merges.slots && ll_pairmap_init(&t->merges, 1024))
        return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
    int32_t ia = vocab_lookup(t, a, an), ib = vocab_lookup(t, b, bn);
    if (ia < 0 || ib < 0)
        return ll_fail(err, LL_ERR_FORMAT, "%s: merge %d ('%.*s' '%.*s'): %s not in the vocabulary", t->name,
                       (int)rank, (int)(an > 64 ? 64 : an), a, (int)(bn > 64 ? 64 : bn), b,
                       ia < 0 ? "left part" : "right part");
    char stackbuf[512];
    char *buf = an + bn <= sizeof stackbuf ? stackbuf : malloc(an + bn);
    if (!buf) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
    memcpy(buf, a, an);
    memcpy(buf + an, b, bn);
    int32_t im = vocab_lookup(t, buf, an + bn);
    if (buf != stackbuf) free(buf);
    if (im < 0)
        return ll_fail(err, LL_ERR_FORMAT, "%s: merge %d ('%.*s' '%.*s'): merged token not in the vocabulary",
                       t->name, (int)rank, (int)(an > 64 ? 64 : an), a, (int)(bn > 64 ? 64 : bn), b);
    if (ll_pairmap_put(&t->merges, ia, ib, rank, im)) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
    return LL_OK;
}

static int cmp_float_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x > y ? -1 : x < y ? 1 : 0;
}

int ll_tok_merges_from_scores(ll_tokenizer *t, int only_normal, ll_error *err) {
    size_t n = (size_t)t->n_vocab;
    float *sorted = malloc(n * sizeof *sorted);
    if (!sorted) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
    size_t nu = 0;
    for (size_t i = 0; i < n; i++) {
        float s = t->score[i];
        if (s != s) s = -3.0e38f; /* NaN scores sort last */
        sorted[nu++] = s;
    }
    qsort(sorted, nu, sizeof *sorted, cmp_float_desc);
    size_t u = 0;
    for (size_t i = 0; i < nu; i++)
        if (u == 0 || sorted[i] != sorted[u - 1]) sorted[u++] = sorted[i];
    if (ll_pairmap_init(&t->merges, n * 2)) {
        free(sorted);
        return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
    }
    for (size_t id = 0; id < n; id++) {
        if (only_normal && (t->attr[id] & (TOK_ATTR_SPECIAL | TOK_ATTR_BYTE | TOK_ATTR_UNUSED))) continue;
        const char *p = t->pool + t->off[id];
        size_t len = t->len[id];
        if (len < 2) continue;
        float s = t->score[id];
        if (s != s) s = -3.0e38f;
        /* dense rank by binary search */
        size_t lo = 0, hi = u;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (sorted[mid] > s) lo = mid + 1;
            else hi = mid;
        }
        int32_t rank = (int32_t)lo;
        for (size_t k = 1; k < len; k++) {
            if (((uint8_t)p[k] & 0xC0) == 0x80) continue; /* split at character boundaries only */
            int32_t a = vocab_lookup(t, p, k), b = vocab_lookup(t, p + k, len - k);
            if (a < 0 || b < 0) continue;
            if (only_normal && ((t->attr[a] | t->attr[b]) & (TOK_ATTR_SPECIAL | TOK_ATTR_BYTE))) continue;
            if (ll_pairmap_put(&t->merges, a, b, rank, (int32_t)id)) {
                free(sorted);
                return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
            }
        }
    }
    free(sorted);
    return LL_OK;
}

int ll_tok_add_added(ll_tokenizer *t, const char *content, size_t len, int32_t id, int special, int lstrip, int rstrip,
                  int single_word, ll_error *err) {
    if (id < 0 || id >= t->n_vocab)
        return ll_fail(err, LL_ERR_FORMAT, "%s: added token '%.*s' has id %d outside the vocabulary (%d)", t->name,
                       (int)(len > 64 ? 64 : len), content, (int)id, (int)t->n_vocab);
    t->attr[id] |= TOK_ATTR_ADDED | (special ? TOK_ATTR_SPECIAL : 0);
    /* an empty added token can never match; one that is not valid UTF-8 could
     * split a character of the (valid) input, so it is never matched either */
    if (len == 0 || !ll_utf8_is_valid((const uint8_t *)content, len)) return LL_OK;
    ll_tok_added *na = realloc(t->added, (t->n_added + 1) * sizeof *na);
    if (!na) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
    t->added = na;
    ll_tok_added *a = &t->added[t->n_added];
    a->content = malloc(len);
    if (!a->content) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
    memcpy(a->content, content, len);
    a->len = len;
    a->id = id;
    a->special = special;
    a->lstrip = lstrip;
    a->rstrip = rstrip;
    a->single_word = single_word;
    a->normalized = 0;
    t->n_added++;
    return LL_OK;
}

/* Unicode White_Space, what \s means to tokenizers' regex engines
 * (Oniguruma, Rust regex) and to char::is_whitespace; PCRE2's \s also takes
 * U+180E. */
#define WS_CLASS "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

/* pattern with \s written as WS_CLASS (inside a class or as one), and \S
 * outside a class as its complement (malloc'd) */
static char *rewrite_space_class(const char *p, size_t n, size_t *out_n) {
    size_t cap = n * 40 + 1, k = 0;
    char *o = malloc(cap);
    if (!o) return NULL;
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char d = p[i + 1];
            if (d == 's' || (d == 'S' && !in_class)) {
                const char *rep = d == 's' ? (in_class ? WS_CLASS : "[" WS_CLASS "]") : "[^" WS_CLASS "]";
                size_t rl = strlen(rep);
                memcpy(o + k, rep, rl);
                k += rl;
            } else {
                o[k++] = c;
                o[k++] = d;
            }
            i++;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = 1;
            o[k++] = c;
            /* a leading ']' or '^]' is literal */
            if (i + 1 < n && p[i + 1] == '^') o[k++] = p[++i];
            if (i + 1 < n && p[i + 1] == ']') o[k++] = p[++i];
            continue;
        }
        if (c == ']' && in_class) in_class = 0;
        o[k++] = c;
    }
    o[k] = 0;
    *out_n = k;
    return o;
}

/* Why a compiled tokenizer.json regex would not match as Oniguruma matches
 * it, or NULL: \h/\H (hex digits there, horizontal space here), \b/\B
 * (word boundaries differ), a pattern that can match the empty string
 * (tokenizers splits and replaces at empty matches otherwise), and
 * case-insensitive letters that fold to several (Oniguruma's (?i)SS matches
 * the German sharp s, PCRE2's does not). */
static const char *onig_difference(const pcre2_code *re, const char *p, size_t n) {
    uint32_t minlen = 1;
    if (pcre2_pattern_info(re, PCRE2_INFO_MINLENGTH, &minlen) == 0 && minlen == 0) return "can match the empty string";
    /* MINLENGTH is the subject length a match needs: a lookaround alone, such as (?=[A-Z]), needs one character and
     * matches none. Probe texts of every character class for an empty match. */
    static const char *const probes[] = {"aA", "Ab 1,2.3 x\tY\n", "\xC3\x9F Stra\xC3\x9F" "e \xE4\xB8\xAD", "Z9_-"};
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    for (size_t k = 0; md && k < sizeof probes / sizeof probes[0]; k++) {
        const size_t len = strlen(probes[k]);
        for (size_t at = 0; at <= len;) {
            if (pcre2_match(re, (PCRE2_SPTR)probes[k], len, at, 0, md, NULL) < 0) break;
            const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            if (ov[0] == ov[1]) {
                pcre2_match_data_free(md);
                return "can match the empty string";
            }
            at = ov[1];
        }
    }
    pcre2_match_data_free(md);
    int caseless = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\' && i + 1 < n) {
            const char c = p[++i];
            if (c == 'h' || c == 'H') return "uses \\h or \\H";
            if (c == 'b' || c == 'B') return "uses \\b or \\B";
            continue;
        }
        if (p[i] == '(' && i + 2 < n && p[i + 1] == '?') /* inline options "(?i)", "(?mi:", not "(?-i)" */
            for (size_t k = i + 2; k < n && strchr("imsxnJU", p[k]) && p[k]; k++) caseless |= p[k] == 'i';
    }
    static const char *const folds[] = {"ss", "st", "ff", "fi", "fl"}; /* ß, ﬅ/ﬆ, ﬀ, ﬁ, ﬂ */
    for (size_t i = 0; caseless && i + 1 < n; i++)
        for (int f = 0; f < 5; f++)
            if ((p[i] | 0x20) == folds[f][0] && (p[i + 1] | 0x20) == folds[f][1])
                return "is case-insensitive over letters that fold to several ('ss' and the like)";
    return NULL;
}

int ll_tok_compile(ll_tokenizer *t, pcre2_code **re, const char *pattern, size_t plen, int is_literal, ll_error *err) {
    int ec;
    PCRE2_SIZE eo;
    /* the pattern is checked for valid UTF-8 here (no PCRE2_NO_UTF_CHECK at
     * compile time); subjects are valid UTF-8 by construction */
    /* PCRE2_UCP may not be combined with PCRE2_LITERAL */
    uint32_t opts = PCRE2_UTF | (is_literal ? PCRE2_LITERAL : PCRE2_UCP);
    char *rw = NULL;
    if (!is_literal) {
        rw = rewrite_space_class(pattern, plen, &plen);
        if (!rw) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
        pattern = rw;
    }
    *re = pcre2_compile((PCRE2_SPTR)pattern, plen, opts, &ec, &eo, NULL);
    if (!*re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        const int rc = ll_fail(err, LL_ERR_FORMAT, "%s: cannot compile pre-tokenizer regex '%.*s': %s at offset %zu",
                               t->name, (int)(plen > 200 ? 200 : plen), pattern, (const char *)msg, (size_t)eo);
        free(rw);
        return rc;
    }
    /* tokenizer.json regexes are Oniguruma's (tokenizers); PCRE2 reads a few constructs otherwise: refused */
    const char *why = t->format == LL_TOKFMT_JSON && !is_literal ? onig_difference(*re, pattern, plen) : NULL;
    if (why) {
        const int rc = ll_fail(err, LL_ERR_UNSUPPORTED, "%s: regex '%.*s' %s, which tokenizers (Oniguruma) and lsllama "
                               "(PCRE2) read differently: not supported", t->name, (int)(plen > 200 ? 200 : plen),
                               pattern, why);
        pcre2_code_free(*re);
        *re = NULL;
        free(rw);
        return rc;
    }
    free(rw);
    pcre2_jit_compile(*re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if JIT is unavailable */
    return LL_OK;
}

int ll_tok_add_norm(ll_tokenizer *t, norm_kind kind, const char *a, size_t alen, const char *b, size_t blen,
                 ll_error *err) {
    if (!ll_utf8_is_valid((const uint8_t *)a, alen) || !ll_utf8_is_valid((const uint8_t *)b, blen))
        return ll_fail(err, LL_ERR_FORMAT, "%s: normalizer/pre-tokenizer string is not valid UTF-8", t->name);
    norm_op *nn = realloc(t->norm, (t->n_norm + 1) * sizeof *nn);
    if (!nn) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
    t->norm = nn;
    norm_op *op = &t->norm[t->n_norm];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->a = malloc(alen + 1);
    op->b = malloc(blen + 1);
    if (!op->a || !op->b) {
        free(op->a);
        free(op->b);
        return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
    }
    if (alen) memcpy(op->a, a, alen);
    if (blen) memcpy(op->b, b, blen);
    op->a[alen] = op->b[blen] = 0;
    op->alen = alen;
    op->blen = blen;
    t->n_norm++;
    if (kind == NORM_REPLACE_REGEX) return ll_tok_compile(t, &op->re, a, alen, 0, err);
    if (kind == NORM_REPLACE_STR && alen == 0)
        return ll_fail(err, LL_ERR_FORMAT, "%s: Replace normalizer with an empty pattern", t->name);
    return LL_OK;
}

int ll_tok_add_split(ll_tokenizer *t, const char *pattern, size_t plen, int is_literal, int behavior, int invert,
                  ll_error *err) {
    if (plen == 0) return ll_fail(err, LL_ERR_FORMAT, "%s: Split pre-tokenizer with an empty pattern", t->name);
    split_op *ns = realloc(t->split, (t->n_split + 1) * sizeof *ns);
    if (!ns) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
    t->split = ns;
    split_op *op = &t->split[t->n_split];
    memset(op, 0, sizeof *op);
    op->behavior = behavior;
    op->invert = invert;
    t->n_split++;
    return ll_tok_compile(t, &op->re, pattern, plen, is_literal, err);
}

/* orders added tokens by first byte, then longest first, then as inserted
 * (a key copied out, so the comparator needs no context) */
typedef struct {
    uint8_t first;
    size_t len;
    uint32_t k;
} added_key;
static int cmp_added(const void *pa, const void *pb) {
    const added_key *a = pa, *b = pb;
    if (a->first != b->first) return a->first < b->first ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->k < b->k ? -1 : a->k > b->k;
}

static int index_added(ll_tokenizer *t, ll_error *err) {
    free(t->added_order);
    t->added_order = NULL;
    memset(t->added_start, 0, sizeof t->added_start);
    if (!t->n_added) return LL_OK;
    if (t->n_added >= UINT32_MAX) return ll_fail(err, LL_ERR_FORMAT, "%s: too many added tokens", t->name);
    added_key *keys = malloc(t->n_added * sizeof *keys);
    t->added_order = malloc(t->n_added * sizeof *t->added_order);
    if (!keys || !t->added_order) {
        free(keys);
        return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
    }
    for (size_t k = 0; k < t->n_added; k++)
        keys[k] = (added_key){(uint8_t)t->added[k].content[0], t->added[k].len, (uint32_t)k};
    qsort(keys, t->n_added, sizeof *keys, cmp_added);
    for (size_t j = 0; j < t->n_added; j++) {
        t->added_order[j] = keys[j].k;
        t->added_start[keys[j].first + 1]++;
    }
    free(keys);
    for (int c = 0; c < 256; c++) t->added_start[c + 1] += t->added_start[c];
    return LL_OK;
}

int ll_tok_ready(ll_tokenizer *t, ll_error *err) {
    int irc = index_added(t, err);
    if (irc) return irc;
    for (size_t k = 0; k < t->n_added; k++)
        if (t->added[k].single_word && !t->word_re) {
            static const char word[] = "[\\p{L}\\p{Nl}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]";
            int rc = ll_tok_compile(t, &t->word_re, word, sizeof word - 1, 0, err);
            if (rc) return rc;
        }
    t->md = pcre2_match_data_create(4, NULL);
    t->cache = cache_new();
    if (!t->md || !t->cache) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
    if (t->unk_id >= t->n_vocab) t->unk_id = -1;
    if (t->bos_id >= t->n_vocab) t->bos_id = -1;
    if (t->eos_id >= t->n_vocab) t->eos_id = -1;
    return LL_OK;
}

void ll_tokenizer_free(ll_tokenizer *t) {
    if (!t) return;
    free(t->name);
    free(t->pool);
    free(t->off);
    free(t->len);
    free(t->score);
    free(t->attr);
    ll_strmap_free(&t->vocab);
    ll_pairmap_free(&t->merges);
    for (size_t i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    free(t->added_order);
    for (size_t i = 0; i < t->n_norm; i++) {
        free(t->norm[i].a);
        free(t->norm[i].b);
        if (t->norm[i].re) pcre2_code_free(t->norm[i].re);
    }
    free(t->norm);
    for (size_t i = 0; i < t->n_split; i++)
        if (t->split[i].re) pcre2_code_free(t->split[i].re);
    free(t->split);
    if (t->word_re) pcre2_code_free(t->word_re);
    if (t->md) pcre2_match_data_free(t->md);
    cache_free(t->cache);
    free(t);
}

/* ---- accessors ---------------------------------------------------------------- */

const char *ll_tokenizer_warning(const ll_tokenizer *t) { return t && t->warning[0] ? t->warning : NULL; }

ll_tokenizer_kind ll_tokenizer_get_kind(const ll_tokenizer *t) { return t->kind; }
ll_tokenizer_format ll_tokenizer_get_format(const ll_tokenizer *t) { return t->format; }
int ll_tokenizer_n_vocab(const ll_tokenizer *t) { return t->n_vocab; }
int ll_tokenizer_bos_id(const ll_tokenizer *t) { return t->bos_id; }
int ll_tokenizer_eos_id(const ll_tokenizer *t) { return t->eos_id; }
int ll_tokenizer_unk_id(const ll_tokenizer *t) { return t->unk_id; }

const char *ll_tokenizer_piece(const ll_tokenizer *t, int id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->len[id];
    return t->pool + t->off[id];
}

int ll_tokenizer_piece_id(const ll_tokenizer *t, const char *piece, size_t len) { return vocab_lookup(t, piece, len); }

int ll_tokenizer_is_special(const ll_tokenizer *t, int id) {
    return id >= 0 && id < t->n_vocab && (t->attr[id] & TOK_ATTR_SPECIAL);
}

/* ---- encoding ----------------------------------------------------------------- */

/* A normalized string: bytes plus, per byte, the span of sanitized-input bytes
 * it came from. a0 == NULL means identity (byte i <- base + i). */
typedef struct nstr {
    char *s;
    size_t n, cap;
    int64_t *a0, *a1;
    int64_t base;
} nstr;

typedef struct range {
    size_t s, e;
} range;

typedef struct enc_state {
    ll_tokenizer *t;
    ll_encoding *enc;
    const char *text; /* sanitized */
    size_t text_n;
    nstr ns[2];
    range *r[2];
    size_t rcap[2];
    size_t piece_base; /* normalized offset of the current piece */
    const nstr *cur;
    ll_error *err;
} enc_state;

static int enc_reserve(ll_encoding *e, size_t n) {
    if (n <= e->cap) return 0;
    size_t nc = e->cap ? e->cap * 2 : 64;
    while (nc < n) nc *= 2;
    int32_t *ids = realloc(e->ids, nc * sizeof *ids);
    if (ids) e->ids = ids;
    int32_t *cs = realloc(e->char_start, nc * sizeof *cs);
    if (cs) e->char_start = cs;
    int32_t *ce = realloc(e->char_end, nc * sizeof *ce);
    if (ce) e->char_end = ce;
    int64_t *bs = realloc(e->byte_start, nc * sizeof *bs);
    if (bs) e->byte_start = bs;
    int64_t *be = realloc(e->byte_end, nc * sizeof *be);
    if (be) e->byte_end = be;
    if (!ids || !cs || !ce || !bs || !be) return -1;
    e->cap = nc;
    return 0;
}

static inline int enc_push(ll_encoding *e, int32_t id, int64_t bs, int64_t be) {
    if (e->n == e->cap && enc_reserve(e, e->n + 1)) return -1;
    e->ids[e->n] = id;
    e->byte_start[e->n] = bs;
    e->byte_end[e->n] = be;
    e->n++;
    return 0;
}

/* Token i of e moved to position j (ids and both spans). */
static void encoding_move(ll_encoding *e, size_t j, size_t i) {
    e->ids[j] = e->ids[i];
    e->char_start[j] = e->char_start[i], e->char_end[j] = e->char_end[i];
    e->byte_start[j] = e->byte_start[i], e->byte_end[j] = e->byte_end[i];
}

int ll_encoding_truncate(ll_encoding *e, size_t max_length) {
    const size_t n = e->n;
    if (n <= max_length) return 0;
    size_t pre = 0, suf = 0; /* post-processor tokens: empty spans */
    while (pre < n && e->byte_start[pre] == e->byte_end[pre]) pre++;
    while (suf < n - pre && e->byte_start[n - 1 - suf] == e->byte_end[n - 1 - suf]) suf++;
    if (pre + suf < max_length) /* keep the prefix and the suffix, cut the body */
        for (size_t k = 0; k < suf; k++) encoding_move(e, max_length - suf + k, n - suf + k);
    e->n = max_length; /* else: the first max_length tokens */
    return 1;
}

void ll_encoding_free(ll_encoding *e) {
    if (!e) return;
    free(e->ids);
    free(e->char_start);
    free(e->char_end);
    free(e->byte_start);
    free(e->byte_end);
    memset(e, 0, sizeof *e);
}

static int nstr_reserve(nstr *x, size_t n, int aligned_unused) {
    if (n > x->cap) {
        size_t nc = x->cap ? x->cap : 256;
        while (nc < n) nc *= 2;
        char *s = realloc(x->s, nc + 1);
        if (!s) return -1;
        x->s = s;
        int64_t *a0 = realloc(x->a0, nc * sizeof *a0), *a1 = a0 ? realloc(x->a1, nc * sizeof *a1) : NULL;
        if (a0) x->a0 = a0;
        if (a1) x->a1 = a1;
        if (!a0 || !a1) return -1;
        x->cap = nc;
    }
    (void)aligned_unused;
    return 0;
}

static inline void nstr_span(const nstr *x, size_t s, size_t e, int64_t *o0, int64_t *o1) {
    *o0 = x->a0[s];
    *o1 = x->a1[e - 1];
}

/* append bytes with one alignment span for all of them */
static inline void nstr_put(nstr *x, const char *b, size_t n, int64_t s0, int64_t s1) {
    if (n == 0) return;
    memcpy(x->s + x->n, b, n);
    for (size_t i = 0; i < n; i++) {
        x->a0[x->n + i] = s0;
        x->a1[x->n + i] = s1;
    }
    x->n += n;
}

/* copy src[s..e) keeping alignments */
static inline void nstr_copy(nstr *x, const nstr *src, size_t s, size_t e) {
    size_t n = e - s;
    if (n == 0) return;
    memcpy(x->s + x->n, src->s + s, n);
    memcpy(x->a0 + x->n, src->a0 + s, n * sizeof *x->a0);
    memcpy(x->a1 + x->n, src->a1 + s, n * sizeof *x->a1);
    x->n += n;
}

static int is_ws_cp(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* apply normalizer op to *in, result in *out (swap afterwards). segment_at_start:
 * the segment begins the text (for first-only prepends). */
static int apply_norm(enc_state *st, const norm_op *op, const nstr *in, nstr *out, int segment_at_start) {
    out->n = 0;
    switch (op->kind) {
    case NORM_PREPEND:
    case NORM_PREPEND_IF_NOT: {
        int doit = in->n > 0;
        if (op->kind == NORM_PREPEND_IF_NOT) {
            if (in->n >= op->blen && memcmp(in->s, op->b, op->blen) == 0) doit = 0;
            if (op->first_only && !segment_at_start) doit = 0;
        }
        if (nstr_reserve(out, in->n + op->blen, 1)) return -1;
        if (doit) nstr_put(out, op->b, op->blen, in->a0[0], in->a1[0]);
        nstr_copy(out, in, 0, in->n);
        return 0;
    }
    case NORM_REPLACE_STR: {
        /* bound the output: every byte could become blen bytes */
        size_t worst = in->n + (op->blen > op->alen ? (in->n / op->alen + 1) * (op->blen - op->alen) : 0);
        if (nstr_reserve(out, worst, 1)) return -1;
        size_t i = 0;
        while (i < in->n) {
            const char *hit = op->alen <= in->n - i ? memmem(in->s + i, in->n - i, op->a, op->alen) : NULL;
            size_t h = hit ? (size_t)(hit - in->s) : in->n;
            nstr_copy(out, in, i, h);
            if (!hit) break;
            /* tokenizers aligns every replacement character with the last
             * character of the match */
            size_t lc = h + op->alen - 1;
            while (lc > h && ((uint8_t)in->s[lc] & 0xC0) == 0x80) lc--;
            nstr_put(out, op->b, op->blen, in->a0[lc], in->a1[h + op->alen - 1]);
            i = h + op->alen;
        }
        return 0;
    }
    case NORM_REPLACE_REGEX: {
        size_t i = 0, cap_needed = in->n;
        /* two passes would be exact; grow on demand instead */
        if (nstr_reserve(out, cap_needed + op->blen + 16, 1)) return -1;
        size_t start = 0;
        while (start <= in->n) {
            int rc = pcre2_match(op->re, (PCRE2_SPTR)in->s, in->n, start, PCRE2_NO_UTF_CHECK, st->t->md, NULL);
            if (rc < 0) break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(st->t->md);
            size_t ms = ov[0], me = ov[1];
            if (nstr_reserve(out, out->n + (ms - i) + op->blen + (in->n - ms), 1)) return -1;
            nstr_copy(out, in, i, ms);
            size_t lc = me > ms ? me - 1 : ms;
            while (lc > ms && ((uint8_t)in->s[lc] & 0xC0) == 0x80) lc--;
            int64_t s0 = lc < in->n ? in->a0[lc] : (in->n ? in->a1[in->n - 1] : 0);
            int64_t s1 = me > ms ? in->a1[me - 1] : s0;
            nstr_put(out, op->b, op->blen, s0, s1);
            i = me;
            if (me == ms) {
                if (me >= in->n) break;
                size_t cl = (size_t)ll_utf8_len((uint8_t)in->s[me]);
                nstr_copy(out, in, me, me + cl);
                i = me + cl;
            }
            start = i;
        }
        if (nstr_reserve(out, out->n + (in->n - i), 1)) return -1;
        if (i < in->n) nstr_copy(out, in, i, in->n);
        return 0;
    }
    case NORM_STRIP: {
        size_t s = 0, e = in->n;
        while (op->left && s < e) {
            uint32_t cp;
            int l = ll_utf8_decode((const uint8_t *)in->s + s, &cp);
            if (!is_ws_cp(cp)) break;
            s += (size_t)l;
        }
        while (op->right && e > s) {
            size_t p = e - 1;
            while (p > s && ((uint8_t)in->s[p] & 0xC0) == 0x80) p--;
            uint32_t cp;
            ll_utf8_decode((const uint8_t *)in->s + p, &cp);
            if (!is_ws_cp(cp)) break;
            e = p;
        }
        if (nstr_reserve(out, e - s, 1)) return -1;
        nstr_copy(out, in, s, e);
        return 0;
    }
    case NORM_SPM_WHITESPACE: {
        if (nstr_reserve(out, in->n, 1)) return -1;
        size_t i = 0;
        while (i < in->n && in->s[i] == ' ') i++;
        int pending = 0;
        size_t pend_at = 0;
        for (; i < in->n; i++) {
            if (in->s[i] == ' ') {
                if (!pending) pend_at = i;
                pending = 1;
                continue;
            }
            if (pending) nstr_copy(out, in, pend_at, pend_at + 1);
            pending = 0;
            nstr_copy(out, in, i, i + 1);
        }
        return 0;
    }
    }
    return 0;
}

/* ---- splitting ---- */

static int push_range(enc_state *st, int which, size_t s, size_t e, size_t *n) {
    if (*n == st->rcap[which]) {
        size_t nc = st->rcap[which] ? st->rcap[which] * 2 : 64;
        range *nr = realloc(st->r[which], nc * sizeof *nr);
        if (!nr) return -1;
        st->r[which] = nr;
        st->rcap[which] = nc;
    }
    st->r[which][*n].s = s;
    st->r[which][*n].e = e;
    (*n)++;
    return 0;
}

typedef struct seg {
    size_t s, e;
    int m;
} seg;

/* split one piece [ps, pe) of string x by op into ranges appended to r[which] */
static int split_piece(enc_state *st, const split_op *op, const char *x, size_t ps, size_t pe, int which, size_t *n) {
    /* walk the gap/match alternation (non-empty segments only) */
    size_t pos = 0, len = pe - ps;
    const char *sub = x + ps;
    /* state for behaviors */
    int have_last = 0;
    seg last = {0, 0, 0};
    int prev_match = 0;
    /* MergedWithNext needs lookahead: a match (not preceded by a match) merges
     * into the following segment. We implement it forward: a pending match
     * prefix that the next segment absorbs. */
    int have_pending = 0;
    size_t pending_s = 0;

#define EMIT(S, E)                                                                                 \
    do {                                                                                           \
        if ((E) > (S) && push_range(st, which, ps + (S), ps + (E), n)) return -1;                  \
    } while (0)

    for (;;) {
        size_t ms = len, me = len;
        int found = 0;
        if (pos < len) {
            size_t at = pos;
            for (;;) {
                int rc = pcre2_match(op->re, (PCRE2_SPTR)sub, len, at, PCRE2_NO_UTF_CHECK, st->t->md, NULL);
                if (rc < 0) break;
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(st->t->md);
                if (ov[1] > ov[0]) {
                    ms = ov[0];
                    me = ov[1];
                    found = 1;
                    break;
                }
                /* empty match: skip a character */
                if (ov[0] >= len) break;
                at = ov[0] + (size_t)ll_utf8_len((uint8_t)sub[ov[0]]);
                if (at > len) break;
            }
        }
        /* segments: gap [pos, ms) then match [ms, me) */
        seg segs[2];
        int ns = 0;
        if (ms > pos) segs[ns++] = (seg){pos, ms, op->invert ? 1 : 0};
        if (found) segs[ns++] = (seg){ms, me, op->invert ? 0 : 1};
        for (int k = 0; k < ns; k++) {
            seg g = segs[k];
            switch (op->behavior) {
            case SPLIT_REMOVED:
                if (!g.m) EMIT(g.s, g.e);
                break;
            case SPLIT_ISOLATED:
                EMIT(g.s, g.e);
                break;
            case SPLIT_CONTIGUOUS:
                /* tokenizers: consecutive segments of the same kind (matches,
                 * or non-matches after invert) are one */
                if (have_last && last.m == g.m) {
                    last.e = g.e;
                } else {
                    if (have_last) EMIT(last.s, last.e);
                    last = g;
                    have_last = 1;
                }
                break;
            case SPLIT_MERGED_PREV:
                if (g.m && !prev_match && have_last) {
                    last.e = g.e;
                } else {
                    if (have_last) EMIT(last.s, last.e);
                    last = g;
                    have_last = 1;
                }
                prev_match = g.m;
                break;
            case SPLIT_MERGED_NEXT:
                /* reverse fold of HF: a match whose following segment is not a
                 * match merges into that following segment. Forward: keep the
                 * match pending; the next non-match absorbs it. */
                if (g.m) {
                    if (have_pending) EMIT(pending_s, g.s); /* previous pending match stands alone */
                    have_pending = 1;
                    pending_s = g.s;
                } else {
                    size_t s0 = have_pending ? pending_s : g.s;
                    EMIT(s0, g.e);
                    have_pending = 0;
                }
                break;
            }
        }
        if (!found) break;
        pos = me;
    }
    if (op->behavior == SPLIT_CONTIGUOUS || op->behavior == SPLIT_MERGED_PREV) {
        if (have_last) EMIT(last.s, last.e);
    }
    if (op->behavior == SPLIT_MERGED_NEXT && have_pending) EMIT(pending_s, len);
#undef EMIT
    return 0;
}

/* ---- BPE with cache ---- */

typedef struct emit_ctx {
    enc_state *st;
    const nstr *x;
    size_t base; /* piece start in x */
    int32_t *tmp;
    size_t tmp_n, tmp_cap;
    int record;
} emit_ctx;

static inline void map_span(const nstr *x, size_t s, size_t e, int64_t *o0, int64_t *o1) {
    if (!x->a0) {
        *o0 = x->base + (int64_t)s;
        *o1 = x->base + (int64_t)e;
    } else {
        nstr_span(x, s, e, o0, o1);
    }
}

static int emit_token(void *vctx, int32_t id, uint32_t start, uint32_t len) {
    emit_ctx *c = vctx;
    int64_t o0, o1;
    map_span(c->x, c->base + start, c->base + start + len, &o0, &o1);
    if (enc_push(c->st->enc, id, o0, o1)) return -1;
    if (c->record) {
        if (c->tmp_n + 2 > c->tmp_cap) {
            size_t nc = c->tmp_cap ? c->tmp_cap * 2 : 64;
            int32_t *nt = realloc(c->tmp, nc * sizeof *nt);
            if (!nt) return -1;
            c->tmp = nt;
            c->tmp_cap = nc;
        }
        c->tmp[c->tmp_n++] = id;
        c->tmp[c->tmp_n++] = (int32_t)len;
    }
    return 0;
}

static int encode_piece(enc_state *st, const nstr *x, size_t ps, size_t pe, emit_ctx *ec) {
    ll_tokenizer *t = st->t;
    const char *p = x->s + ps;
    size_t n = pe - ps;
    ll_tok_cache *c = t->cache;
    uint64_t h = 0;
    cache_slot *slot = NULL;
    if (n <= CACHE_MAX_PIECE) {
        h = ll_hash_bytes(p, n) | 1;
        size_t i = h & (CACHE_SLOTS - 1);
        for (;;) {
            cache_slot *sl = &c->slots[i];
            if (sl->hash == 0) {
                slot = sl;
                break;
            }
            if (sl->hash == h && sl->key_len == n && memcmp(c->arena + sl->key_off, p, n) == 0) {
                const int32_t *v = (const int32_t *)(c->arena + sl->val_off);
                size_t at = ps;
                for (uint32_t k = 0; k < sl->val_n; k++) {
                    int64_t o0, o1;
                    map_span(x, at, at + (size_t)v[2 * k + 1], &o0, &o1);
                    if (enc_push(st->enc, v[2 * k], o0, o1)) return -1;
                    at += (size_t)v[2 * k + 1];
                }
                return 0;
            }
            i = (i + 1) & (CACHE_SLOTS - 1);
        }
    }
    ll_bpe_params bp = {
        .merges = &t->merges,
        .byte_level = t->kind == LL_TOK_BYTE_LEVEL_BPE,
        .byte_id = t->byte_id,
        .byte_char = t->byte_char,
        .ascii_id = t->ascii_id,
        .byte_fallback = t->byte_fallback,
        .fuse_unk = t->fuse_unk,
        .ignore_merges = t->ignore_merges,
        .unk_id = t->unk_id,
        .lookup = vocab_lookup,
        .lookup_ctx = t,
    };
    ec->x = x;
    ec->base = ps;
    ec->tmp_n = 0;
    ec->record = slot != NULL;
    int rc = ll_bpe_encode_piece(&bp, c->bpe, (const uint8_t *)p, n, emit_token, ec);
    if (rc) return -1;
    if (slot) {
        size_t need = n + 8 + ec->tmp_n * sizeof(int32_t);
        if (c->count * 2 >= CACHE_SLOTS || c->arena_used + need > CACHE_ARENA) {
            cache_clear(c);
            return 0; /* slot pointer is stale; simply skip caching this one */
        }
        size_t ko = c->arena_used;
        memcpy(c->arena + ko, p, n);
        size_t vo = (ko + n + 3) & ~(size_t)3;
        if (ec->tmp_n) memcpy(c->arena + vo, ec->tmp, ec->tmp_n * sizeof(int32_t));
        c->arena_used = vo + ec->tmp_n * sizeof(int32_t);
        slot->hash = h;
        slot->key_off = (uint32_t)ko;
        slot->key_len = (uint32_t)n;
        slot->val_off = (uint32_t)vo;
        slot->val_n = (uint32_t)(ec->tmp_n / 2);
        c->count++;
    }
    return 0;
}

/* normalize + pre-tokenize + BPE one segment [a, b) of the sanitized text */
static int encode_segment(enc_state *st, size_t a, size_t b, emit_ctx *ec) {
    ll_tokenizer *t = st->t;
    if (b <= a) return 0;
    const nstr *x;
    nstr ident = {.s = (char *)st->text + a, .n = b - a, .a0 = NULL, .base = (int64_t)a};
    if (t->n_norm == 0) {
        x = &ident;
    } else {
        nstr *in = &st->ns[0], *out = &st->ns[1];
        size_t n = b - a;
        if (nstr_reserve(in, n, 1)) return -1;
        memcpy(in->s, st->text + a, n);
        for (size_t i = 0; i < n; i++) {
            in->a0[i] = (int64_t)(a + i);
            in->a1[i] = (int64_t)(a + i + 1);
        }
        in->n = n;
        for (size_t k = 0; k < t->n_norm; k++) {
            if (apply_norm(st, &t->norm[k], in, out, a == 0)) return -1;
            nstr *tmp = in;
            in = out;
            out = tmp;
        }
        x = in;
    }
    if (x->n == 0) return 0;
    if (t->n_split == 0) return encode_piece(st, x, 0, x->n, ec);
    /* split stages */
    size_t n0 = 0;
    if (push_range(st, 0, 0, x->n, &n0)) return -1;
    int cur = 0;
    size_t ncur = n0;
    for (size_t k = 0; k < t->n_split; k++) {
        int nxt = cur ^ 1;
        size_t nn = 0;
        if (k + 1 == t->n_split) {
            /* last stage: encode pieces as they come, no second list */
            for (size_t i = 0; i < ncur; i++) {
                range r = st->r[cur][i];
                size_t before = 0;
                if (split_piece(st, &t->split[k], x->s, r.s, r.e, nxt, &before)) return -1;
                for (size_t j = 0; j < before; j++) {
                    range q = st->r[nxt][j];
                    if (encode_piece(st, x, q.s, q.e, ec)) return -1;
                }
            }
            return 0;
        }
        for (size_t i = 0; i < ncur; i++) {
            range r = st->r[cur][i];
            if (split_piece(st, &t->split[k], x->s, r.s, r.e, nxt, &nn)) return -1;
        }
        cur = nxt;
        ncur = nn;
    }
    return 0;
}

/* Rust regex's \w (Unicode word character: Alphabetic, marks, decimal
 * digits, connector punctuation, joiners), which tokenizers' single_word
 * test uses; Alphabetic is approximated by letters and letter numbers. */
static int is_word_char_at(ll_tokenizer *t, const char *s, size_t n, size_t at) {
    uint8_t c = (uint8_t)s[at];
    if (c < 0x80) return isalnum(c) || c == '_';
    if (!t->word_re) return 1;
    return pcre2_match(t->word_re, (PCRE2_SPTR)s, n, at, PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, t->md, NULL) >= 0;
}

static size_t prev_char_start(const char *s, size_t lo, size_t i) {
    size_t p = i - 1;
    while (p > lo && ((uint8_t)s[p] & 0xC0) == 0x80) p--;
    return p;
}

static int is_ws_at(const char *s, size_t at) {
    uint32_t cp;
    ll_utf8_decode((const uint8_t *)s + at, &cp);
    return is_ws_cp(cp);
}

/* tokenizers' AddedVocabulary::find_matches over s[lo, n) from pos, for the
 * added tokens of one pass (normalized = 0: matched first, in the raw text;
 * 1: in what the first pass leaves). The match is leftmost-longest; a match
 * that is refused (a special token while special tokens are not parsed, a
 * single_word token inside a word) is skipped whole and the search resumes
 * after it. lstrip/rstrip take in the whitespace (Unicode White_Space) beside
 * the token, lstrip never before pos (the previous match). */
static int find_added(ll_tokenizer *t, const char *s, size_t lo, size_t n, size_t pos, int parse_special, int pass,
                      size_t *ms, size_t *me, int32_t *id) {
    size_t i = pos;
    while (i < n) {
        uint8_t c = (uint8_t)s[i];
        const ll_tok_added *best = NULL;
        for (uint32_t j = t->added_start[c]; j < t->added_start[c + 1]; j++) {
            const ll_tok_added *a = &t->added[t->added_order[j]];
            if (a->normalized != pass || a->len > n - i) continue;
            if (memcmp(s + i, a->content, a->len) != 0) continue;
            best = a; /* longest first: the first match is the longest */
            break;
        }
        if (!best) {
            i++;
            continue;
        }
        size_t s0 = i, e0 = i + best->len;
        if ((best->special && !parse_special) ||
            (best->single_word && ((s0 > lo && is_word_char_at(t, s, n, prev_char_start(s, lo, s0))) ||
                                   (e0 < n && is_word_char_at(t, s, n, e0))))) {
            i = e0;
            continue;
        }
        if (best->lstrip)
            while (s0 > pos) {
                size_t p = prev_char_start(s, pos, s0);
                if (!is_ws_at(s, p)) break;
                s0 = p;
            }
        if (best->rstrip)
            while (e0 < n && is_ws_at(s, e0)) e0 += (size_t)ll_utf8_len((uint8_t)s[e0]);
        *ms = s0;
        *me = e0 > n ? n : e0;
        *id = best->id;
        return 1;
    }
    return 0;
}

/* text s[a, b) with added tokens of pass `pass` (and, inside the gaps of pass
 * 0, those of pass 1) matched and the rest encoded */
static int encode_text(enc_state *st, emit_ctx *ec, size_t a, size_t b, int pass, int parse_special) {
    ll_tokenizer *t = st->t;
    size_t pos = a;
    int rc = 0;
    while (!rc && pos < b) {
        size_t ms = b, me = b;
        int32_t id = -1;
        int found = t->n_added ? find_added(t, st->text, a, b, pos, parse_special, pass, &ms, &me, &id) : 0;
        if (pass == 0 && t->has_normalized_added)
            rc = encode_text(st, ec, pos, ms, 1, parse_special);
        else
            rc = encode_segment(st, pos, ms, ec);
        if (!rc && found) rc = enc_push(st->enc, id, (int64_t)ms, (int64_t)me);
        pos = found ? me : b;
    }
    return rc;
}

static void enc_state_free(enc_state *st, emit_ctx *ec) {
    for (int i = 0; i < 2; i++) {
        free(st->ns[i].s);
        free(st->ns[i].a0);
        free(st->ns[i].a1);
        free(st->r[i]);
    }
    free(ec->tmp);
}

/* tokenizers' ByteLevel process_offsets (post-processor trim_offsets): the
 * leading and trailing "Ġ" / whitespace characters of token i's string are cut
 * from its offsets, except one leading one of the first token when the
 * post-processor's add_prefix_space says it was added. index: position of the
 * token among the tokens of the text (special tokens of the template not
 * counted). Byte offsets move by the bytes those characters stand for. */
static void trim_offsets(const ll_tokenizer *t, ll_encoding *enc, size_t i, size_t index) {
    const char *p = t->pool + t->off[enc->ids[i]];
    size_t pl = t->len[enc->ids[i]];
    int32_t lead = 0, trail = 0;
    int64_t leadb = 0, trailb = 0;
    for (size_t k = 0; k < pl;) {
        uint32_t cp;
        int l = ll_utf8_decode((const uint8_t *)p + k, &cp);
        if (cp != 0x120 && !is_ws_cp(cp)) break;
        lead++;
        leadb += cp == 0x120 ? 1 : l;
        k += (size_t)l;
    }
    for (size_t e = pl; e > 0;) {
        size_t k = e - 1;
        while (k > 0 && ((uint8_t)p[k] & 0xC0) == 0x80) k--;
        uint32_t cp;
        int l = ll_utf8_decode((const uint8_t *)p + k, &cp);
        if (cp != 0x120 && !is_ws_cp(cp)) break;
        trail++;
        trailb += cp == 0x120 ? 1 : l;
        e = k;
    }
    if (lead > 0) {
        int first = index == 0 || enc->char_start[i] == 0;
        if (first && t->trim_prefix_space && lead == 1) lead = 0, leadb = 0;
        enc->char_start[i] = enc->char_start[i] + lead < enc->char_end[i] ? enc->char_start[i] + lead : enc->char_end[i];
        enc->byte_start[i] = enc->byte_start[i] + leadb < enc->byte_end[i] ? enc->byte_start[i] + leadb : enc->byte_end[i];
    }
    if (trail > 0 && enc->char_end[i] >= trail) {
        int32_t e = enc->char_end[i] - trail;
        enc->char_end[i] = e > enc->char_start[i] ? e : enc->char_start[i];
    }
    if (trailb > 0 && enc->byte_end[i] >= trailb) {
        int64_t e = enc->byte_end[i] - trailb;
        enc->byte_end[i] = e > enc->byte_start[i] ? e : enc->byte_start[i];
    }
}

int ll_tokenizer_encode(ll_tokenizer *t, const char *text, size_t len, int flags, ll_encoding *enc, ll_error *err) {
    if (!t || !enc || (!text && len)) return ll_fail(err, LL_ERR_ARG, "ll_tokenizer_encode: NULL argument");
    enc->n = 0;
    if (enc_reserve(enc, 64)) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
    if (!text) text = "";
    /* validate; sanitize only if needed */
    const uint8_t *u = (const uint8_t *)text;
    int ascii = 1, valid = 1;
    for (size_t i = 0; i < len;) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        ascii = 0;
        int bad, l = ll_utf8_valid_len(u + i, len - i, &bad);
        if (!l) {
            valid = 0;
            break;
        }
        i += (size_t)l;
    }
    char *san = NULL;
    int64_t *map = NULL;
    const char *s = text;
    size_t n = len;
    if (!valid) {
        if (ll_utf8_sanitize(u, len, &san, &n, &map)) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
        s = san;
    }
    enc_state st;
    memset(&st, 0, sizeof st);
    st.t = t;
    st.enc = enc;
    st.text = s;
    st.text_n = n;
    st.err = err;
    emit_ctx ec;
    memset(&ec, 0, sizeof ec);
    ec.st = &st;
    int rc = 0;
    if (flags & LL_TOK_ADD_SPECIAL)
        for (int i = 0; i < t->n_pre && !rc; i++) rc = enc_push(enc, t->pre_ids[i], -1, -1);
    if (!rc) rc = encode_text(&st, &ec, 0, n, 0, (flags & LL_TOK_PARSE_SPECIAL) != 0);
    if (flags & LL_TOK_ADD_SPECIAL)
        for (int i = 0; i < t->n_post && !rc; i++) rc = enc_push(enc, t->post_ids[i], -1, -1);
    enc_state_free(&st, &ec);
    if (rc) {
        free(san);
        free(map);
        return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory while encoding", t->name);
    }
    if (enc_reserve(enc, enc->n)) {
        free(san);
        free(map);
        return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
    }
    /* offsets: widen to whole characters, convert to code points and to the
     * caller's bytes */
    int32_t *cidx = NULL;
    if (!ascii) {
        cidx = malloc((n + 1) * sizeof *cidx);
        if (!cidx) {
            free(san);
            free(map);
            return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
        }
        /* cidx[i] = index of the character that byte i belongs to; cidx[n] = count */
        int32_t c = -1;
        for (size_t i = 0; i < n; i++) {
            if (((uint8_t)s[i] & 0xC0) != 0x80) c++;
            cidx[i] = c;
        }
        cidx[n] = c + 1;
    }
    size_t content_index = 0;
    for (size_t i = 0; i < enc->n; i++) {
        int64_t b0 = enc->byte_start[i], b1 = enc->byte_end[i];
        if (b0 < 0) {
            enc->byte_start[i] = enc->byte_end[i] = 0;
            enc->char_start[i] = enc->char_end[i] = 0;
            continue;
        }
        if (b0 > (int64_t)n) b0 = (int64_t)n;
        if (b1 > (int64_t)n) b1 = (int64_t)n;
        if (b1 < b0) b1 = b0;
        while (b0 > 0 && b0 < (int64_t)n && ((uint8_t)s[b0] & 0xC0) == 0x80) b0--;
        while (b1 < (int64_t)n && b1 > 0 && ((uint8_t)s[b1] & 0xC0) == 0x80) b1++;
        if (cidx) {
            enc->char_start[i] = cidx[b0];
            enc->char_end[i] = cidx[b1];
        } else {
            enc->char_start[i] = (int32_t)b0;
            enc->char_end[i] = (int32_t)b1;
        }
        if (map) {
            b0 = map[b0];
            b1 = map[b1];
        }
        enc->byte_start[i] = b0;
        enc->byte_end[i] = b1;
        if (t->trim_offsets) trim_offsets(t, enc, i, content_index);
        content_index++;
    }
    free(cidx);
    free(san);
    free(map);
    return LL_OK;
}

/* ---- decoding ----------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static int sb_put(sbuf *b, const char *s, size_t n) {
    if (n == 0 && b->p) return 0;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) return -1;
        b->p = np;
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

/* append raw bytes as valid UTF-8, replacing invalid sequences (lossy) */
static int sb_put_lossy(sbuf *b, const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        int bad, l = s[i] < 0x80 ? 1 : ll_utf8_valid_len(s + i, n - i, &bad);
        if (l) {
            if (sb_put(b, (const char *)s + i, (size_t)l)) return -1;
            i += (size_t)l;
        } else {
            if (sb_put(b, "\xEF\xBF\xBD", 3)) return -1;
            i += (size_t)bad;
        }
    }
    return 0;
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "<0xAB>" -> 0xAB, else -1 (pieces are not NUL-terminated) */
static int byte_piece_value(const char *p, size_t n) {
    if (n != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') return -1;
    int h = hexval(p[3]), l = hexval(p[4]);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
}

int ll_tokenizer_decode(const ll_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **out,
                        size_t *len, ll_error *err) {
    *out = NULL;
    if (len) *len = 0;
    sbuf res = {0}, raw = {0};
    int rc = 0;
    uint8_t inv[0x200];
    int inv_ok[0x200];
    if (t->kind == LL_TOK_BYTE_LEVEL_BPE) {
        memset(inv_ok, 0, sizeof inv_ok);
        for (int b = 0; b < 256; b++) {
            inv[t->byte_char[b]] = (uint8_t)b;
            inv_ok[t->byte_char[b]] = 1;
        }
    }
    for (size_t i = 0; i < n && !rc; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_vocab) {
            free(res.p);
            free(raw.p);
            return ll_fail(err, LL_ERR_ARG, "%s: cannot decode id %d (vocabulary has %d tokens)", t->name, (int)id,
                           (int)t->n_vocab);
        }
        uint8_t a = t->attr[id];
        if ((a & TOK_ATTR_SPECIAL) && skip_special) continue;
        const char *p = t->pool + t->off[id];
        size_t pl = t->len[id];
        if (a & TOK_ATTR_ADDED) {
            /* added tokens are written as they are */
            rc = sb_put_lossy(&res, (const uint8_t *)raw.p, raw.n);
            raw.n = 0;
            if (!rc) rc = sb_put(&res, p, pl);
            continue;
        }
        if (t->kind == LL_TOK_BYTE_LEVEL_BPE) {
            for (size_t k = 0; k < pl && !rc;) {
                uint32_t cp;
                int l = ll_utf8_decode((const uint8_t *)p + k, &cp);
                if (cp < 0x200 && inv_ok[cp]) {
                    uint8_t byte = inv[cp];
                    rc = sb_put(&raw, (const char *)&byte, 1);
                } else {
                    rc = sb_put(&raw, p + k, (size_t)l);
                }
                k += (size_t)l;
            }
            continue;
        }
        /* sentencepiece style */
        if ((a & TOK_ATTR_BYTE) || (t->format == LL_TOKFMT_LLAMA2C && id >= 3 && id < 259 && pl == 6 && p[0] == '<')) {
            int v = byte_piece_value(p, pl);
            if (v >= 0) {
                uint8_t byte = (uint8_t)v;
                rc = sb_put(&raw, (const char *)&byte, 1);
                continue;
            }
        }
        if (raw.n) {
            rc = sb_put_lossy(&res, (const uint8_t *)raw.p, raw.n);
            raw.n = 0;
        }
        if ((a & TOK_ATTR_SPECIAL) && t->format != LL_TOKFMT_JSON && t->format != LL_TOKFMT_GGUF) {
            /* control pieces (<s>, </s>) decode to nothing in sentencepiece */
            continue;
        }
        for (size_t k = 0; k < pl && !rc;) {
            if (t->decode_space_char && k + 3 <= pl && memcmp(p + k, "\xE2\x96\x81", 3) == 0) {
                rc = sb_put(&res, " ", 1);
                k += 3;
            } else {
                rc = sb_put(&res, p + k, 1);
                k++;
            }
        }
    }
    if (!rc && raw.n) rc = sb_put_lossy(&res, (const uint8_t *)raw.p, raw.n);
    if (!rc && !res.p) rc = sb_put(&res, "", 0);
    free(raw.p);
    if (rc) {
        free(res.p);
        return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory while decoding", t->name);
    }
    if (t->decode_strip_space && res.n && res.p[0] == ' ') {
        memmove(res.p, res.p + 1, res.n);
        res.n--;
    }
    *out = res.p;
    if (len) *len = res.n;
    return LL_OK;
}

/* ---- word alignment ------------------------------------------------------------ */

int ll_tokenizer_align_words(ll_tokenizer *t, const char *const *words, size_t n_words, int flags, ll_encoding *enc,
                             int32_t *word_first, int32_t *word_end, ll_error *err) {
    size_t total = 0;
    for (size_t w = 0; w < n_words; w++) {
        if (!words[w]) return ll_fail(err, LL_ERR_ARG, "ll_tokenizer_align_words: word %zu is NULL", w);
        total += strlen(words[w]) + 1;
    }
    char *joined = malloc(total + 1);
    int64_t *ws = malloc((n_words + 1) * 2 * sizeof *ws);
    if (!joined || !ws) {
        free(joined);
        free(ws);
        return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", t->name);
    }
    size_t p = 0;
    for (size_t w = 0; w < n_words; w++) {
        if (w) joined[p++] = ' ';
        size_t l = strlen(words[w]);
        ws[2 * w] = (int64_t)p;
        memcpy(joined + p, words[w], l);
        p += l;
        ws[2 * w + 1] = (int64_t)p;
    }
    joined[p] = 0;
    int rc = ll_tokenizer_encode(t, joined, p, flags, enc, err);
    free(joined);
    if (rc) {
        free(ws);
        return rc;
    }
    /* byte spans of the joined text (original bytes) */
    size_t k = 0;
    for (size_t w = 0; w < n_words; w++) {
        int64_t s0 = ws[2 * w], e0 = ws[2 * w + 1];
        /* skip tokens that end before the word (or empty special tokens) */
        while (k < enc->n && (enc->byte_end[k] <= s0 || enc->byte_end[k] == enc->byte_start[k]) &&
               !(enc->byte_end[k] == enc->byte_start[k] && enc->byte_start[k] > s0))
            k++;
        size_t first = k, j = k;
        while (j < enc->n && enc->byte_start[j] < e0 && enc->byte_end[j] > enc->byte_start[j]) j++;
        if (e0 == s0) j = first; /* empty word */
        word_first[w] = (int32_t)first;
        word_end[w] = (int32_t)j;
        /* a token spanning into the next word is shared: do not advance past it */
        k = j;
        if (j > first && enc->byte_end[j - 1] > e0) k = j - 1;
    }
    free(ws);
    return LL_OK;
}
