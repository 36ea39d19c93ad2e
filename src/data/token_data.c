/* Token classification data: CoNLL / JSON Lines / raw-line readers into
 * sentences and words, tag validation, label mapping, tokenization with
 * word alignment into overlapping windows, per-word prediction collection.
 * Word strings and sentence texts live in the dataset's text arena; a bad
 * sentence rolls the arena and the word array back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/error.h"
#include "data/dataset.h"
#include "io/mapped_file.h"
#include "model/loss.h"
#include "text/utf8.h"

#define MAX_COLS 64

void ll_token_data_options_default(ll_token_data_options *opt) {
    memset(opt, 0, sizeof *opt);
    opt->tag_column = LL_COLUMN_LAST;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 1024;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, nc * elem);
    if (!q) return -1;
    *p = q;
    *cap = nc;
    return 0;
}

static int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

static int oom(const ll_dataset *ds, ll_error *err) { return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", ds->path); }

#define excerpt ll_data_excerpt

/* Byte offset of the first invalid UTF-8 sequence in s[0..n), or n. */
static size_t first_invalid(const char *s, size_t n) {
    size_t at = 0;
    while (at < n) {
        int bad, l = ll_utf8_valid_len((const uint8_t *)s + at, n - at, &bad);
        if (!l) break;
        at += (size_t)l;
    }
    return at;
}

static int32_t count_chars(const char *s, size_t n) {
    int32_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* The tags seqeval reads without a warning in its default mode (its
 * get_entities' _validate_chunk): O, B, I, E, S, and B-, I-, E-, S- followed by
 * anything. seqeval's type is what follows the first '-' ("B-ORG-X": "ORG-X"),
 * "_" when there is none or it is empty ("B", "I-": "_"). */
static int tag_ok(const char *t, size_t n) {
    const int bies = n >= 1 && (t[0] == 'B' || t[0] == 'I' || t[0] == 'E' || t[0] == 'S');
    if (n == 1) return bies || t[0] == 'O';
    return bies && t[1] == '-';
}

/* ---- building sentences --------------------------------------------------------- */

typedef struct reader {
    ll_dataset *ds;
    const ll_token_data_options *opt;
    size_t word0, text0; /* rollback point: the current sentence's first word / arena length */
} reader;

static void sentence_begin(reader *r) {
    r->word0 = r->ds->n_words;
    r->text0 = r->ds->text_len;
}

static void sentence_rollback(reader *r) {
    r->ds->n_words = r->word0;
    r->ds->text_len = r->text0;
}

/* Check a tag and intern it; returns its raw id (>= 0), or -1 after a bad
 * row (*rc set: 0 = skipped, else the error), or -2 out of memory. */
static int32_t intern_tag(reader *r, int line, const char *t, size_t n, int *rc, ll_error *err) {
    ll_dataset *ds = r->ds;
    char eb[96];
    if (!n) { *rc = ll_data_bad_row(ds, err, line, "empty tag"); return -1; }
    if (!ll_utf8_is_valid((const uint8_t *)t, n)) {
        *rc = ll_data_bad_row(ds, err, line, "invalid UTF-8 in tag '%s'", excerpt(t, n, eb, sizeof eb));
        return -1;
    }
    if (!r->opt->any_tags && !tag_ok(t, n)) {
        *rc = ll_data_bad_row(ds, err, line,
                              "tag '%s' is not O, B, I, E, S or B-/I-/E-/S-TYPE, the tags seqeval reads without "
                              "a warning (case matters; --any-tags reads any tag, scored as seqeval scores it)",
                              excerpt(t, n, eb, sizeof eb));
        return -1;
    }
    if (!ds->raw && !(ds->raw = ll_strset_new())) { *rc = oom(ds, err); return -2; }
    int32_t id = ll_strset_intern(ds->raw, t, n);
    if (id < 0) { *rc = oom(ds, err); return -2; }
    return id;
}

/* Append a word (bytes already checked as UTF-8). byte/char offsets are set
 * by the caller or by sentence_end (joined text). */
static int add_word(reader *r, int line, const char *p, size_t n, int32_t raw_tag, ll_error *err) {
    ll_dataset *ds = r->ds;
    if (n > UINT32_MAX - 1 || ds->n_words >= INT32_MAX - 1)
        return ll_fail(err, LL_ERR_FORMAT, "%s:%d: word or word count too large", ds->path, line);
    if (grow((void **)&ds->words, &ds->words_cap, ds->n_words + 1, sizeof *ds->words) ||
        grow((void **)&ds->text, &ds->text_cap, ds->text_len + n + 1, 1))
        return oom(ds, err);
    ll_word *w = &ds->words[ds->n_words++];
    memset(w, 0, sizeof *w);
    w->text_off = ds->text_len;
    w->len = (uint32_t)n;
    w->line = line;
    w->sent = -1;
    w->raw_tag = raw_tag;
    w->tag = -1;
    w->owner = -1;
    w->first = -1;
    if (n) memcpy(ds->text + ds->text_len, p, n);
    ds->text[ds->text_len + n] = 0;
    ds->text_len += n + 1;
    return 0;
}

/* Close the current sentence (no-op when it has no word). text == NULL: the
 * sentence text is the words joined by single spaces and the word spans are
 * computed here; else text[0..n) is the sentence text and spans are set. */
static int sentence_end(reader *r, const char *text, size_t text_n, ll_error *err) {
    ll_dataset *ds = r->ds;
    size_t nw = ds->n_words - r->word0;
    if (!nw) { sentence_rollback(r); return 0; }
    ll_word *w = ds->words + r->word0;
    size_t len = text_n;
    if (!text) {
        len = nw - 1;
        for (size_t i = 0; i < nw; i++) len += w[i].len;
    }
    if (len > INT32_MAX - 1) return ll_fail(err, LL_ERR_FORMAT, "%s:%d: sentence longer than 2 GiB", ds->path, w[0].line);
    if (grow((void **)&ds->text, &ds->text_cap, ds->text_len + len + 1, 1) ||
        grow((void **)&ds->sent, &ds->sent_cap, ds->n_sent + 1, sizeof *ds->sent))
        return oom(ds, err);
    char *t = ds->text + ds->text_len;
    if (text) {
        memcpy(t, text, len);
    } else {
        size_t k = 0;
        int32_t ch = 0;
        for (size_t i = 0; i < nw; i++) {
            if (i) { t[k++] = ' '; ch++; }
            w[i].byte_start = (int32_t)k;
            w[i].char_start = ch;
            memcpy(t + k, ds->text + w[i].text_off, w[i].len);
            k += w[i].len;
            ch += count_chars(ds->text + w[i].text_off, w[i].len);
            w[i].byte_end = (int32_t)k;
            w[i].char_end = ch;
        }
    }
    t[len] = 0;
    ll_sentence *s = &ds->sent[ds->n_sent];
    memset(s, 0, sizeof *s);
    s->text_off = ds->text_len;
    s->text_len = (uint32_t)len;
    s->line = w[0].line;
    s->word_off = (int32_t)r->word0;
    s->n_words = (int32_t)nw;
    for (size_t i = 0; i < nw; i++) w[i].sent = (int32_t)ds->n_sent;
    ds->n_sent++;
    ds->text_len += len + 1;
    sentence_begin(r);
    return 0;
}

/* ---- CoNLL ------------------------------------------------------------------------ */

typedef struct span { const char *p; size_t n; } span;

static int load_conll(reader *r, const char *data, size_t size, ll_error *err) {
    ll_dataset *ds = r->ds;
    const ll_token_data_options *opt = r->opt;
    const int wc = opt->word_column, tc = opt->tag_column;
    if (wc < 0 || wc >= MAX_COLS || (ds->has_labels && (tc < LL_COLUMN_LAST || tc >= MAX_COLS)))
        return ll_fail(err, LL_ERR_ARG, "%s: word column %d / tag column %d: columns are 0..%d (tag: or the last)",
                       ds->path, wc, tc, MAX_COLS - 1);
    if (ds->has_labels && tc == wc)
        return ll_fail(err, LL_ERR_ARG, "%s: the word and the tag column are both %d", ds->path, wc);
    int need = wc + 1;
    if (ds->has_labels && tc + 1 > need) need = tc + 1;
    if (ds->has_labels && tc == LL_COLUMN_LAST && need < 2) need = 2;
    int ncols0 = 0, ncols0_line = 0; /* the first word line's column count (tag column "last") */
    int skipping = 0;                /* after a bad line (skip_invalid): drop the rest of the sentence */
    size_t i = 0;
    int line = 0;
    sentence_begin(r);
    while (i < size) {
        line++;
        const char *s = data + i;
        const char *nl = memchr(s, '\n', size - i);
        size_t len = nl ? (size_t)(nl - s) : size - i;
        i += len + (nl ? 1 : 0);
        if (line == INT32_MAX) return ll_fail(err, LL_ERR_FORMAT, "%s: too many lines", ds->path);
        span f[MAX_COLS];
        int nf = 0;
        span last = {0};
        for (size_t k = 0; k < len;) {
            while (k < len && is_ws((unsigned char)s[k])) k++;
            if (k == len) break;
            size_t b = k;
            while (k < len && !is_ws((unsigned char)s[k])) k++;
            last = (span){s + b, k - b};
            if (nf < MAX_COLS) f[nf] = last;
            if (nf < INT32_MAX) nf++;
        }
        if (nf == 0) { /* a blank or whitespace-only line ends the sentence */
            int rc = skipping ? (sentence_rollback(r), 0) : sentence_end(r, NULL, 0, err);
            if (rc) return rc;
            skipping = 0;
            continue;
        }
        if (f[0].n == 10 && !memcmp(f[0].p, "-DOCSTART-", 10)) { /* a document marker also ends a sentence */
            int rc = skipping ? (sentence_rollback(r), 0) : sentence_end(r, NULL, 0, err);
            if (rc) return rc;
            skipping = 0;
            continue;
        }
        if (skipping) continue;
        int rc = 0;
        size_t bad_at = first_invalid(s, len), z = ll_data_find_nul(s, len, 0);
        if (z < len) {
            rc = ll_data_bad_row(ds, err, line, "NUL byte at byte %zu", z + 1);
        } else if (bad_at < len) {
            rc = ll_data_bad_row(ds, err, line, "invalid UTF-8 at byte %zu (0x%02x)", bad_at + 1,
                                 (unsigned)(unsigned char)s[bad_at]);
        } else if (nf < need) {
            char cols[64];
            if (!ds->has_labels) snprintf(cols, sizeof cols, "word column %d", wc);
            else if (tc == LL_COLUMN_LAST) snprintf(cols, sizeof cols, "word column %d, tag column: the last", wc);
            else snprintf(cols, sizeof cols, "word column %d, tag column %d", wc, tc);
            rc = ll_data_bad_row(ds, err, line, "%d column%s, need %d (%s)", nf, nf == 1 ? "" : "s", need, cols);
        } else if (ncols0 && nf != ncols0) { /* one row rule: every word line has the first one's columns */
            rc = ll_data_bad_row(ds, err, line, "%d columns, but line %d has %d (every word line has the same columns)",
                                 nf, ncols0_line, ncols0);
        } else {
            if (!ncols0) { ncols0 = nf; ncols0_line = line; }
            int32_t raw = -1;
            if (ds->has_labels) {
                span t = tc == LL_COLUMN_LAST ? last : f[tc];
                raw = intern_tag(r, line, t.p, t.n, &rc, err);
                if (raw == -2) return rc;
            }
            if (raw != -1 || !ds->has_labels) {
                if ((rc = add_word(r, line, f[wc].p, f[wc].n, raw, err))) return rc;
                continue;
            }
        }
        if (rc) return rc;
        sentence_rollback(r); /* skipped: drop the whole sentence */
        skipping = 1;
    }
    if (skipping) { sentence_rollback(r); return 0; }
    return sentence_end(r, NULL, 0, err);
}

/* ---- JSON Lines --------------------------------------------------------------------- */

static int jsonl_row(reader *r, int line, const cJSON *o, const char *tokens_field, const char *tags_field,
                     ll_error *err) {
    ll_dataset *ds = r->ds;
    const cJSON *tv = cJSON_GetObjectItemCaseSensitive(o, tokens_field);
    if (!tv || cJSON_IsNull(tv)) return ll_data_bad_row(ds, err, line, "missing field '%s'", tokens_field);
    if (!cJSON_IsArray(tv)) return ll_data_bad_row(ds, err, line, "field '%s' is not an array", tokens_field);
    const cJSON *gv = NULL;
    int nt = cJSON_GetArraySize(tv);
    if (ds->has_labels) {
        gv = cJSON_GetObjectItemCaseSensitive(o, tags_field);
        if (!gv || cJSON_IsNull(gv)) return ll_data_bad_row(ds, err, line, "missing field '%s'", tags_field);
        if (!cJSON_IsArray(gv)) return ll_data_bad_row(ds, err, line, "field '%s' is not an array", tags_field);
        int ng = cJSON_GetArraySize(gv);
        if (ng != nt)
            return ll_data_bad_row(ds, err, line, "'%s' has %d entries, '%s' %d", tokens_field, nt, tags_field, ng);
    }
    if (nt == 0) return ll_data_bad_row(ds, err, line, "empty sentence ('%s' is [])", tokens_field);
    const cJSON *t = tv->child, *g = gv ? gv->child : NULL;
    for (int k = 0; k < nt; k++, t = t->next, g = g ? g->next : NULL) {
        if (!cJSON_IsString(t)) return ll_data_bad_row(ds, err, line, "%s[%d] is not a string", tokens_field, k);
        size_t n = strlen(t->valuestring);
        size_t bad_at = first_invalid(t->valuestring, n);
        if (bad_at < n)
            return ll_data_bad_row(ds, err, line, "invalid UTF-8 in %s[%d] at byte %zu (0x%02x)", tokens_field, k,
                                   bad_at + 1, (unsigned)(unsigned char)t->valuestring[bad_at]);
        int32_t raw = -1;
        if (g) {
            const char *ts;
            size_t tn;
            if (cJSON_IsString(g)) {
                ts = g->valuestring;
                tn = strlen(ts);
            } else if (cJSON_IsNumber(g)) {
                double x = g->valuedouble;
                const ll_labelmap *names = r->opt->tag_names;
                if (!(x >= 0 && x < 2147483647.0) || x != (double)(int32_t)x)
                    return ll_data_bad_row(ds, err, line, "%s[%d] = %g is not a tag id (an integer >= 0)", tags_field, k,
                                           x);
                if (!names)
                    return ll_data_bad_row(ds, err, line,
                                           "%s[%d] = %d: integer tags need tag names (a file with one name per line "
                                           "or a JSON array)", tags_field, k, (int)x);
                if ((int)x >= names->n)
                    return ll_data_bad_row(ds, err, line, "%s[%d] = %d is outside the %d tag names (0..%d)", tags_field,
                                           k, (int)x, names->n, names->n - 1);
                ts = names->names[(int)x];
                tn = strlen(ts);
            } else {
                return ll_data_bad_row(ds, err, line, "%s[%d] is not a string or an integer", tags_field, k);
            }
            int rc = 0;
            raw = intern_tag(r, line, ts, tn, &rc, err);
            if (raw < 0) return rc;
        }
        int rc = add_word(r, line, t->valuestring, n, raw, err);
        if (rc) return rc;
    }
    return 0;
}

static int load_jsonl(reader *r, const char *data, size_t size, ll_error *err) {
    ll_dataset *ds = r->ds;
    const char *tf = r->opt->tokens_field ? r->opt->tokens_field : "tokens";
    const char *gf = r->opt->tags_field ? r->opt->tags_field : "ner_tags";
    size_t i = 0;
    int line = 0;
    while (i < size) {
        line++;
        const char *s = data + i;
        const char *nl = memchr(s, '\n', size - i);
        size_t len = nl ? (size_t)(nl - s) : size - i;
        i += len + (nl ? 1 : 0);
        size_t a = 0, b = len;
        while (a < b && (is_ws((unsigned char)s[a]))) a++;
        while (b > a && (is_ws((unsigned char)s[b - 1]))) b--;
        if (a == b) continue;
        sentence_begin(r);
        const char *end = NULL;
        const size_t z = ll_data_find_nul(s, len, 1);
        cJSON *o = z < len ? NULL : cJSON_ParseWithLengthOpts(s, len, &end, 0);
        int rc;
        if (z < len) {
            rc = ll_data_bad_row(ds, err, line, "NUL byte (%s) at column %zu", s[z] ? "\\u0000" : "raw", z + 1);
        } else if (!o) {
            size_t col = end && end >= s && end <= s + len ? (size_t)(end - s) + 1 : 0;
            rc = ll_data_bad_row(ds, err, line, "malformed JSON (column %zu)", col);
        } else if (end && (size_t)(end - s) < b) {
            rc = ll_data_bad_row(ds, err, line, "malformed JSON: extra text after the object");
        } else if (!cJSON_IsObject(o)) {
            rc = ll_data_bad_row(ds, err, line, "expected a JSON object per line");
        } else {
            size_t before = ds->n_skipped;
            rc = jsonl_row(r, line, o, tf, gf, err);
            if (!rc && ds->n_skipped == before) rc = sentence_end(r, NULL, 0, err);
        }
        cJSON_Delete(o);
        if (rc) return rc;
        sentence_rollback(r); /* no-op after sentence_end; drops a skipped row's words */
    }
    return 0;
}

/* ---- raw text lines ------------------------------------------------------------------ */

static int load_lines(reader *r, const char *data, size_t size, ll_error *err) {
    ll_dataset *ds = r->ds;
    size_t i = 0;
    int line = 0;
    while (i < size) {
        line++;
        const char *s = data + i;
        const char *nl = memchr(s, '\n', size - i);
        size_t len = nl ? (size_t)(nl - s) : size - i;
        i += len + (nl ? 1 : 0);
        if (len && s[len - 1] == '\r') len--;
        size_t k = 0;
        while (k < len && is_ws((unsigned char)s[k])) k++;
        if (k == len) continue;
        sentence_begin(r);
        size_t bad_at = first_invalid(s, len), z = ll_data_find_nul(s, len, 0);
        if (z < len || bad_at < len) {
            int rc = z < len ? ll_data_bad_row(ds, err, line, "NUL byte at byte %zu", z + 1)
                             : ll_data_bad_row(ds, err, line, "invalid UTF-8 at byte %zu (0x%02x)", bad_at + 1,
                                               (unsigned)(unsigned char)s[bad_at]);
            if (rc) return rc;
            continue;
        }
        if (len > INT32_MAX - 1) return ll_fail(err, LL_ERR_FORMAT, "%s:%d: line longer than 2 GiB", ds->path, line);
        int32_t ch = 0; /* code points before k */
        size_t at = 0;
        for (k = 0; k < len;) {
            while (k < len && is_ws((unsigned char)s[k])) k++;
            if (k == len) break;
            size_t b = k;
            while (k < len && !is_ws((unsigned char)s[k])) k++;
            ch += count_chars(s + at, b - at);
            int32_t c0 = ch;
            ch += count_chars(s + b, k - b);
            at = k;
            int rc = add_word(r, line, s + b, k - b, -1, err);
            if (rc) return rc;
            ll_word *w = &ds->words[ds->n_words - 1];
            w->byte_start = (int32_t)b;
            w->byte_end = (int32_t)k;
            w->char_start = c0;
            w->char_end = ch;
        }
        int rc = sentence_end(r, s, len, err);
        if (rc) return rc;
    }
    return 0;
}

/* ---- entry points --------------------------------------------------------------------- */

/* The windows before tokenization: one per sentence, owning all its words. */
static int whole_sentence_windows(ll_dataset *ds, ll_error *err) {
    if (grow((void **)&ds->ex, &ds->ex_cap, ds->n_sent ? ds->n_sent : 1, sizeof *ds->ex)) return oom(ds, err);
    for (size_t s = 0; s < ds->n_sent; s++) {
        ll_sentence *S = &ds->sent[s];
        ll_example *e = &ds->ex[s];
        memset(e, 0, sizeof *e);
        e->text_off = S->text_off;
        e->text_len = S->text_len;
        e->line = S->line;
        e->label = -1;
        e->sent = (int32_t)s;
        e->word_lo = e->own_lo = S->word_off;
        e->word_hi = e->own_hi = S->word_off + S->n_words;
        S->ex_off = (int32_t)s;
        S->n_ex = 1;
    }
    ds->n = ds->n_sent;
    return 0;
}

int ll_token_dataset_load_memory(ll_dataset **out, const char *data, size_t size, const char *name,
                                 const ll_token_data_options *opt_in, ll_error *err) {
    *out = NULL;
    ll_token_data_options defaults;
    ll_token_data_options_default(&defaults);
    const ll_token_data_options *opt = opt_in ? opt_in : &defaults;
    ll_dataset *ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->path = strdup(name ? name : "<memory>"))) {
        free(ds);
        return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", name ? name : "<memory>");
    }
    ds->token_task = 1;
    ds->o_label = -1;
    ds->skip_invalid = opt->skip_invalid;
    ds->format = opt->format;
    if (ds->format == LL_DATA_AUTO) {
        const char *dot = strrchr(ds->path, '.'), *slash = strrchr(ds->path, '/');
        int json = dot && (!slash || dot > slash) &&
                   (!strcasecmp(dot, ".jsonl") || !strcasecmp(dot, ".ndjson") || !strcasecmp(dot, ".json"));
        ds->format = json ? LL_DATA_JSONL : LL_DATA_CONLL;
    }
    ds->has_labels = !opt->no_tags && ds->format != LL_DATA_LINES;
    reader r = {.ds = ds, .opt = opt};
    if (size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) { data += 3; size -= 3; }
    int rc;
    switch (ds->format) {
    case LL_DATA_CONLL: rc = load_conll(&r, data, size, err); break;
    case LL_DATA_JSONL: rc = load_jsonl(&r, data, size, err); break;
    case LL_DATA_LINES: rc = load_lines(&r, data, size, err); break;
    default:
        rc = ll_fail(err, LL_ERR_ARG, "%s: token classification reads CoNLL, JSON Lines or text lines, not %s",
                     ds->path, ds->format == LL_DATA_TSV ? "TSV" : "CSV");
    }
    if (!rc && ds->n_sent == 0)
        rc = ds->n_skipped ? ll_fail(err, LL_ERR_FORMAT, "%s: no valid sentences (%zu skipped; first: %s)", ds->path,
                                     ds->n_skipped, ds->first_skip)
                           : ll_fail(err, LL_ERR_FORMAT, "%s: no sentences", ds->path);
    if (!rc) rc = whole_sentence_windows(ds, err);
    if (rc) { ll_dataset_free(ds); return rc; }
    *out = ds;
    return 0;
}

int ll_token_dataset_load(ll_dataset **out, const char *path, const ll_token_data_options *opt, ll_error *err) {
    *out = NULL;
    char *buf;
    size_t size = 0;
    int rc = ll_read_text_file(path, &buf, &size, err); /* files and pipes alike */
    if (rc) return rc;
    rc = ll_token_dataset_load_memory(out, buf, size, path, opt, err);
    free(buf);
    return rc;
}

const char *ll_word_raw_tag(const ll_dataset *ds, size_t w) {
    if (!ds->token_task || w >= ds->n_words || ds->words[w].raw_tag < 0 || !ds->raw) return NULL;
    return ll_strset_get(ds->raw, ds->words[w].raw_tag);
}

/* ---- tag names ---------------------------------------------------------------------------- */

int ll_tag_names_load(ll_labelmap **out, const char *path, ll_error *err) {
    *out = NULL;
    char *buf;
    size_t size = 0;
    int rc = ll_read_text_file(path, &buf, &size, err); /* files and pipes alike */
    if (rc) return rc;
    size_t a = 0;
    if (size >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) a = 3;
    while (a < size && (is_ws((unsigned char)buf[a]) || buf[a] == '\n')) a++;
    const char **names = NULL;
    int n = 0;
    cJSON *j = NULL;
    if (a < size && (buf[a] == '[' || buf[a] == '{')) {
        j = cJSON_ParseWithLength(buf + a, size - a);
        if (!j) {
            rc = ll_fail(err, LL_ERR_FORMAT, "%s: malformed JSON", path);
        } else if (cJSON_IsObject(j)) {
            rc = ll_labelmap_from_json(out, j, path, err);
        } else {
            n = cJSON_GetArraySize(j);
            names = calloc((size_t)(n ? n : 1), sizeof *names);
            if (!names) rc = ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", path);
            int k = 0;
            const cJSON *it;
            cJSON_ArrayForEach(it, j) {
                if (rc) break;
                if (!cJSON_IsString(it)) rc = ll_fail(err, LL_ERR_FORMAT, "%s: tag name %d is not a string", path, k);
                else names[k++] = it->valuestring;
            }
        }
    } else {
        /* one name per line; blank lines only at the end */
        size_t cap = 64;
        names = malloc(cap * sizeof *names);
        if (!names) rc = ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", path);
        size_t i = size >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
        int line = 0, blank_line = 0;
        while (!rc && i < size) {
            line++;
            char *s = buf + i;
            char *nl = memchr(s, '\n', size - i);
            size_t len = nl ? (size_t)(nl - s) : size - i;
            i += len + (nl ? 1 : 0);
            while (len && is_ws((unsigned char)s[len - 1])) len--;
            while (len && is_ws((unsigned char)s[0])) { s++; len--; }
            if (!len) { if (!blank_line) blank_line = line; continue; }
            if (blank_line) {
                rc = ll_fail(err, LL_ERR_FORMAT, "%s:%d: blank line among the tag names (a name's id is its line)", path,
                             blank_line);
                break;
            }
            if (memchr(s, 0, len)) { rc = ll_fail(err, LL_ERR_FORMAT, "%s:%d: NUL byte in a tag name", path, line); break; }
            if (!ll_utf8_is_valid((const uint8_t *)s, len)) { rc = ll_fail(err, LL_ERR_FORMAT, "%s:%d: invalid UTF-8", path, line); break; }
            s[len] = 0; /* the line ends at its newline (or the buffer's NUL) */
            for (int k = 0; k < n && !rc; k++) /* blank lines come only at the end: name k is on line k + 1 */
                if (!strcmp(names[k], s))
                    rc = ll_fail(err, LL_ERR_FORMAT, "%s:%d: tag name '%s' appears twice (also on line %d)", path,
                                 line, s, k + 1);
            if (rc) break;
            if ((size_t)n == cap) {
                const char **q = realloc(names, 2 * cap * sizeof *names);
                if (!q) { rc = ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", path); break; }
                names = q;
                cap *= 2;
            }
            names[n++] = s;
        }
    }
    if (!rc && !*out) {
        if (!n) rc = ll_fail(err, LL_ERR_FORMAT, "%s: no tag names", path);
        else if ((rc = ll_labelmap_from_names(out, names, n, err)) && !strstr(err->message, path))
            ll_fail_prefix(err, "%s: ", path);
    }
    free(names);
    cJSON_Delete(j);
    free(buf);
    return rc;
}

/* ---- labels ------------------------------------------------------------------------------ */

/* Keep the sentences with keep[s] (in order), their words renumbered. */
static void compact_sentences(ll_dataset *ds, const char *keep) {
    size_t ws = 0, ww = 0;
    for (size_t s = 0; s < ds->n_sent; s++) {
        if (!keep[s]) continue;
        ll_sentence S = ds->sent[s];
        memmove(ds->words + ww, ds->words + S.word_off, (size_t)S.n_words * sizeof *ds->words);
        for (int32_t k = 0; k < S.n_words; k++) ds->words[ww + (size_t)k].sent = (int32_t)ws;
        S.word_off = (int32_t)ww;
        ww += (size_t)S.n_words;
        ds->sent[ws++] = S;
    }
    ds->n_sent = ws;
    ds->n_words = ww;
}

int ll_token_apply_labels(ll_dataset *ds, const ll_labelmap *m, ll_error *err) {
    if (!ds->has_labels) return ll_fail(err, LL_ERR_ARG, "%s: the data has no tags", ds->path);
    if (ds->tokenized)
        return ll_fail(err, LL_ERR_ARG, "%s: apply the label map before tokenizing a token-classification dataset",
                       ds->path);
    char *keep = malloc(ds->n_sent ? ds->n_sent : 1);
    if (!keep) return oom(ds, err);
    size_t dropped = 0;
    for (size_t s = 0; s < ds->n_sent; s++) {
        const ll_sentence *S = &ds->sent[s];
        keep[s] = 1;
        for (int32_t k = 0; k < S->n_words; k++) {
            ll_word *w = &ds->words[S->word_off + k];
            const char *t = ll_strset_get(ds->raw, w->raw_tag);
            int id = ll_labelmap_find(m, t, ds->raw->len[w->raw_tag]);
            if (id < 0) {
                int rc = ll_data_bad_row(ds, err, w->line, "tag '%s' is not in the label map (%d labels: %s%s%s%s)", t,
                                         m->n, m->names[0], m->n > 1 ? ", " : "", m->n > 1 ? m->names[1] : "",
                                         m->n > 2 ? ", ..." : "");
                if (rc) { free(keep); return rc; }
                keep[s] = 0;
                dropped++;
                break;
            }
            w->tag = id;
        }
    }
    if (dropped) compact_sentences(ds, keep);
    free(keep);
    if (!ds->n_sent)
        return ll_fail(err, LL_ERR_FORMAT, "%s: no sentences left (%zu skipped; first: %s)", ds->path, ds->n_skipped,
                       ds->first_skip);
    int rc = whole_sentence_windows(ds, err);
    if (rc) return rc;
    ds->mapped = 1;
    ds->n_labels = m->n;
    ds->o_label = ll_labelmap_find(m, "O", 1);
    return 0;
}

/* ---- tokenization into windows ----------------------------------------------------------- */

/* Token span of the non-empty words in [a, b) (local word indices). */
typedef struct tspan { int has; int32_t ts, te; } tspan;

static tspan span_add(tspan sp, int32_t f, int32_t e) {
    if (e <= f) return sp;
    if (!sp.has) return (tspan){1, f, e};
    if (f < sp.ts) sp.ts = f;
    if (e > sp.te) sp.te = e;
    return sp;
}
static int32_t span_len(tspan sp) { return sp.has ? sp.te - sp.ts : 0; }

typedef struct tok_ctx {
    ll_dataset *ds;
    const ll_encoding *enc;
    const int32_t *wf, *we; /* per local word: tokens [wf, we) in enc */
    int32_t w0;             /* global index of local word 0 */
    int32_t sent;
    int32_t pre, suf;       /* special tokens at the start / end of enc */
    int label_all;
    const int32_t *jc, *jb; /* per local word: its start in the joined text the tokenizer saw (code points, bytes) */
} tok_ctx;

/* v moved by `shift` and clamped to [lo, hi]. */
static int32_t clamp_shift(int64_t v, int64_t shift, int32_t lo, int32_t hi) {
    const int64_t x = v + shift;
    return x < lo ? lo : x > hi ? hi : (int32_t)x;
}

/* Emit the window of words [a, b) owning [c0, c1), content tokens [ts, te). */
static int emit_window(tok_ctx *c, int32_t a, int32_t b, int32_t c0, int32_t c1, int32_t ts, int32_t te,
                       ll_error *err) {
    ll_dataset *ds = c->ds;
    const ll_encoding *enc = c->enc;
    const size_t n = enc->n;
    const size_t k = (size_t)c->pre + (size_t)(te - ts) + (size_t)c->suf;
    size_t need = ds->tokens_len + k;
    if (ds->n >= INT32_MAX - 1) return ll_fail(err, LL_ERR_FORMAT, "%s: too many windows", ds->path);
    if (grow((void **)&ds->tokens, &ds->tokens_cap, need, sizeof *ds->tokens) ||
        grow((void **)&ds->ex, &ds->ex_cap, ds->n + 1, sizeof *ds->ex))
        return oom(ds, err);
    if (need > ds->tok_aux_cap) {
        const size_t cap = ds->tokens_cap;
        int32_t **aux[] = {&ds->tok_labels, &ds->tok_words, &ds->tok_char_start, &ds->tok_char_end,
                           &ds->tok_byte_start, &ds->tok_byte_end, &ds->tok_index};
        for (size_t i = 0; i < sizeof aux / sizeof aux[0]; i++) {
            int32_t *q = realloc(*aux[i], cap * sizeof *q);
            if (!q) return oom(ds, err); /* the arrays grown so far stay valid; tok_aux_cap is not raised */
            *aux[i] = q;
        }
        ds->tok_aux_cap = cap;
    }
    int32_t *ids = ds->tokens + ds->tokens_len, *lab = ds->tok_labels + ds->tokens_len,
            *tw = ds->tok_words + ds->tokens_len;
    int32_t *cs = ds->tok_char_start + ds->tokens_len, *ce = ds->tok_char_end + ds->tokens_len,
            *bs = ds->tok_byte_start + ds->tokens_len, *be = ds->tok_byte_end + ds->tokens_len,
            *ix = ds->tok_index + ds->tokens_len;
    memcpy(ids, enc->ids, (size_t)c->pre * sizeof *ids);
    memcpy(ids + c->pre, enc->ids + ts, (size_t)(te - ts) * sizeof *ids);
    memcpy(ids + c->pre + (te - ts), enc->ids + n - (size_t)c->suf, (size_t)c->suf * sizeof *ids);
    for (size_t t = 0; t < k; t++) { lab[t] = LL_IGNORE_LABEL; tw[t] = -1; cs[t] = ce[t] = bs[t] = be[t] = 0; }
    for (int32_t t = 0; t < c->pre; t++) ix[t] = t;
    for (int32_t t = ts; t < te; t++) ix[c->pre + t - ts] = t, tw[c->pre + t - ts] = LL_TOKEN_BETWEEN;
    for (int32_t t = 0; t < c->suf; t++) ix[c->pre + (te - ts) + t] = (int32_t)n - c->suf + t;
    /* every token of a word in the window points to it (the first word wins a shared token); its span is
     * moved from the joined text into the sentence text, within the word (a token that starts on the space
     * before its word starts with the word) */
    for (int32_t w = a; w < b; w++) {
        int32_t lo = c->wf[w] > ts ? c->wf[w] : ts, hi = c->we[w] < te ? c->we[w] : te;
        const ll_word *W = &ds->words[c->w0 + w];
        /* tokens of no word just before it (a lone space piece): an empty span at its start */
        for (int32_t t = lo - 1; t >= ts && tw[c->pre + t - ts] == LL_TOKEN_BETWEEN; t--) {
            const size_t p = (size_t)(c->pre + t - ts);
            cs[p] = ce[p] = W->char_start;
            bs[p] = be[p] = W->byte_start;
        }
        for (int32_t t = lo; t < hi; t++) {
            const size_t p = (size_t)(c->pre + t - ts);
            if (tw[p] >= 0) continue;
            tw[p] = c->w0 + w;
            cs[p] = clamp_shift(enc->char_start[t], W->char_start - c->jc[w], W->char_start, W->char_end);
            ce[p] = clamp_shift(enc->char_end[t], W->char_start - c->jc[w], W->char_start, W->char_end);
            bs[p] = clamp_shift(enc->byte_start[t], W->byte_start - c->jb[w], W->byte_start, W->byte_end);
            be[p] = clamp_shift(enc->byte_end[t], W->byte_start - c->jb[w], W->byte_start, W->byte_end);
        }
    }
    const int32_t ex = (int32_t)ds->n;
    for (int32_t w = c0; w < c1; w++) {
        ll_word *W = &ds->words[c->w0 + w];
        W->owner = ex;
        W->n_tok = c->we[w] - c->wf[w];
        W->first = -1;
        if (W->n_tok <= 0) { W->n_tok = 0; continue; }
        W->first = c->pre + c->wf[w] - ts;
        if (W->tag < 0) continue;
        int32_t hi = c->label_all ? (c->we[w] < te ? c->we[w] : te) : c->wf[w] + 1;
        for (int32_t t = c->wf[w]; t < hi; t++)
            if (lab[c->pre + t - ts] == LL_IGNORE_LABEL) lab[c->pre + t - ts] = W->tag;
    }
    const ll_sentence *S = &ds->sent[c->sent];
    ll_example *e = &ds->ex[ds->n++];
    memset(e, 0, sizeof *e);
    e->text_off = S->text_off;
    e->text_len = S->text_len;
    e->line = ds->words[c->w0 + c0].line;
    e->label = -1;
    e->tok_off = ds->tokens_len;
    e->n_tok = (int32_t)k;
    e->n_tok_full = (int32_t)n;
    e->sent = c->sent;
    e->word_lo = c->w0 + a;
    e->word_hi = c->w0 + b;
    e->own_lo = c->w0 + c0;
    e->own_hi = c->w0 + c1;
    ds->tokens_len += k;
    return 0;
}

/* Cut one encoded sentence of nw words into windows (room = max content tokens). */
static int make_windows(tok_ctx *c, int32_t nw, int32_t room, int32_t own, int32_t *chunk, ll_error *err) {
    ll_dataset *ds = c->ds;
    tspan all = {0};
    for (int32_t w = 0; w < nw; w++) all = span_add(all, c->wf[w], c->we[w]);
    if (span_len(all) <= room) {
        int32_t ts = all.has ? all.ts : c->pre, te = all.has ? all.te : c->pre;
        return emit_window(c, 0, nw, 0, nw, ts, te, err);
    }
    /* cores: consecutive words, each chunk <= own tokens (a single longer word alone),
     * at least one word with tokens per chunk */
    int32_t nc = 0;
    for (int32_t c0 = 0; c0 < nw;) {
        tspan sp = span_add((tspan){0}, c->wf[c0], c->we[c0]);
        int32_t c1 = c0 + 1;
        while (c1 < nw) {
            tspan nx = span_add(sp, c->wf[c1], c->we[c1]);
            if (sp.has && span_len(nx) > own) break;
            sp = nx;
            c1++;
        }
        if (!sp.has && nc > 0) { /* trailing words without tokens join the last chunk */
            c0 = c1;
            break;
        }
        chunk[nc++] = c0;
        c0 = c1;
    }
    chunk[nc] = nw;
    ds->n_split += nc > 1;
    for (int32_t k = 0; k < nc; k++) {
        const int32_t c0 = chunk[k], c1 = chunk[k + 1];
        tspan sp = {0};
        for (int32_t w = c0; w < c1; w++) sp = span_add(sp, c->wf[w], c->we[w]);
        int32_t a = c0, b = c1;
        if (span_len(sp) > room) { /* one word longer than the room: keep its first tokens */
            ds->n_cut_words++;
            ds->n_truncated++;
            int rc = emit_window(c, a, b, c0, c1, sp.ts, sp.ts + room, err);
            if (rc) return rc;
            continue;
        }
        const tspan core = sp;
        int left = a > 0, right = b < nw;
        while (left || right) {
            int32_t lctx = sp.has && core.has ? core.ts - sp.ts : 0, rctx = sp.has && core.has ? sp.te - core.te : 0;
            int go_left = left && (!right || lctx <= rctx);
            int32_t w = go_left ? a - 1 : b;
            tspan nx = span_add(sp, c->wf[w], c->we[w]);
            if (span_len(nx) > room) {
                if (go_left) left = 0;
                else right = 0;
                continue;
            }
            sp = nx;
            if (go_left) left = --a > 0;
            else right = ++b < nw;
        }
        int rc = emit_window(c, a, b, c0, c1, sp.ts, sp.te, err);
        if (rc) return rc;
    }
    return 0;
}

int ll_token_dataset_tokenize(ll_dataset *ds, ll_tokenizer *tok, int max_length, const ll_token_tokenize_options *opt,
                              ll_error *err) {
    if (!ds->token_task) return ll_fail(err, LL_ERR_ARG, "%s: not a token-classification dataset", ds->path);
    if (max_length < 1) return ll_fail(err, LL_ERR_ARG, "--max-length %d: must be at least 1", max_length);
    ll_token_tokenize_options defaults = {0};
    if (!opt) opt = &defaults;
    if (opt->own_tokens < 0) return ll_fail(err, LL_ERR_ARG, "own_tokens %d: must be >= 0", opt->own_tokens);
    int32_t max_words = 0;
    for (size_t s = 0; s < ds->n_sent; s++)
        if (ds->sent[s].n_words > max_words) max_words = ds->sent[s].n_words;
    const char **ptrs = malloc(((size_t)max_words + 1) * sizeof *ptrs);
    int32_t *wf = malloc(((size_t)max_words + 1) * sizeof *wf), *we = malloc(((size_t)max_words + 1) * sizeof *we);
    int32_t *chunk = malloc(((size_t)max_words + 2) * sizeof *chunk);
    int32_t *jc = malloc(((size_t)max_words + 1) * sizeof *jc), *jb = malloc(((size_t)max_words + 1) * sizeof *jb);
    char *keep = malloc(ds->n_sent ? ds->n_sent : 1);
    ll_encoding enc = {0};
    int rc = 0;
    if (!ptrs || !wf || !we || !chunk || !keep || !jc || !jb) { rc = oom(ds, err); goto done; }
    ds->tokenized = 0;
    ds->tokens_len = 0;
    ds->n = 0;
    ds->n_truncated = ds->n_empty_words = ds->n_cut_words = ds->n_split = 0;
    size_t dropped = 0;
    for (size_t s = 0; s < ds->n_sent; s++) {
        const ll_sentence *S = &ds->sent[s];
        keep[s] = 0;
        for (int32_t k = 0; k < S->n_words; k++) { /* the words, and where each starts once joined by spaces */
            const ll_word *W = &ds->words[S->word_off + k], *prev = W - 1;
            ptrs[k] = ds->text + W->text_off;
            jc[k] = k ? jc[k - 1] + (prev->char_end - prev->char_start) + 1 : 0;
            jb[k] = k ? jb[k - 1] + (int32_t)prev->len + 1 : 0;
        }
        rc = ll_tokenizer_align_words(tok, ptrs, (size_t)S->n_words, LL_TOK_DEFAULT, &enc, wf, we, err);
        if (rc) { ll_fail_prefix(err, "%s:%d: ", ds->path, S->line); goto done; }
        const int32_t n = (int32_t)enc.n;
        if (enc.n > INT32_MAX / 2) { rc = ll_fail(err, LL_ERR_FORMAT, "%s:%d: sentence too long", ds->path, S->line); goto done; }
        if (n == 0) {
            if ((rc = ll_data_bad_row(ds, err, S->line, "the sentence encodes to no tokens"))) goto done;
            dropped++;
            continue;
        }
        int32_t pre = 0, suf = 0;
        while (pre < n && enc.byte_start[pre] == enc.byte_end[pre]) pre++;
        while (suf < n - pre && enc.byte_start[n - 1 - suf] == enc.byte_end[n - 1 - suf]) suf++;
        const int32_t room = max_length - pre - suf;
        if (room < 1) {
            rc = ll_fail(err, LL_ERR_ARG,
                         "--max-length %d leaves no room for a word token: the tokenizer adds %d special token%s per "
                         "sequence", max_length, pre + suf, pre + suf == 1 ? "" : "s");
            goto done;
        }
        keep[s] = 1;
        /* indices are the current ones; renumbered below if sentences were dropped */
        tok_ctx c = {.ds = ds, .enc = &enc, .wf = wf, .we = we, .w0 = S->word_off, .sent = (int32_t)s,
                     .pre = pre, .suf = suf, .label_all = opt->label_all_subtokens, .jc = jc, .jb = jb};
        const size_t ex0 = ds->n;
        const int32_t own = opt->own_tokens ? (opt->own_tokens < room ? opt->own_tokens : room)
                                            : (room / 2 > 0 ? room / 2 : 1);
        if ((rc = make_windows(&c, S->n_words, room, own, chunk, err))) goto done;
        for (int32_t k = 0; k < S->n_words; k++) ds->n_empty_words += wf[k] >= we[k];
        ds->sent[s].ex_off = (int32_t)ex0;
        ds->sent[s].n_ex = (int32_t)(ds->n - ex0);
        ds->sent[s].n_tok = n;
    }
    if (dropped) {
        /* renumber: sentence s -> its kept index, word w -> its kept index */
        int32_t ws = 0, ww = 0;
        int32_t *snew = malloc(ds->n_sent * sizeof *snew), *wnew = malloc((ds->n_words ? ds->n_words : 1) * sizeof *wnew);
        if (!snew || !wnew) { free(snew); free(wnew); rc = oom(ds, err); goto done; }
        for (size_t s = 0; s < ds->n_sent; s++) {
            snew[s] = keep[s] ? ws++ : -1;
            const ll_sentence *S = &ds->sent[s];
            for (int32_t k = 0; k < S->n_words; k++) wnew[S->word_off + k] = keep[s] ? ww++ : -1;
        }
        for (size_t i = 0; i < ds->n; i++) {
            ll_example *e = &ds->ex[i];
            e->sent = snew[e->sent];
            e->word_lo = wnew[e->word_lo];
            e->word_hi = wnew[e->word_hi - 1] + 1;
            e->own_lo = wnew[e->own_lo];
            e->own_hi = wnew[e->own_hi - 1] + 1;
        }
        for (size_t t = 0; t < ds->tokens_len; t++)
            if (ds->tok_words[t] >= 0) ds->tok_words[t] = wnew[ds->tok_words[t]];
        free(snew);
        free(wnew);
        compact_sentences(ds, keep);
    }
    if (!ds->n_sent) {
        rc = ll_fail(err, LL_ERR_FORMAT, "%s: no sentences left (%zu skipped; first: %s)", ds->path, ds->n_skipped,
                     ds->first_skip);
        goto done;
    }
    if (ds->mapped) { /* labelled data whose words all encode to nothing: no token carries a tag */
        size_t labelled = 0;
        for (size_t t = 0; t < ds->tokens_len && !labelled; t++) labelled = ds->tok_labels[t] != LL_IGNORE_LABEL;
        if (!labelled) {
            rc = ll_fail(err, LL_ERR_FORMAT,
                         "%s: none of the %zu words has a token to carry its tag (%zu encode to no token): no "
                         "labelled token to train or evaluate on", ds->path, ds->n_words, ds->n_empty_words);
            goto done;
        }
    }
    ds->tokenized = 1;
    ds->max_length = max_length;
done:
    if (rc) {
        ds->n = 0; /* windows are incomplete: re-tokenize */
        ds->tokens_len = 0;
    }
    free(ptrs);
    free(wf);
    free(we);
    free(chunk);
    free(keep);
    free(jc);
    free(jb);
    ll_encoding_free(&enc);
    return rc;
}

/* ---- predictions --------------------------------------------------------------------------- */

int ll_token_collect(const ll_dataset *ds, size_t ex, const float *logits, const ll_labelmap *map, int32_t *pred,
                     float *score, ll_error *err) {
    if (!ds->token_task || !ds->tokenized)
        return ll_fail(err, LL_ERR_ARG, "%s: collecting token predictions needs a tokenized token-classification dataset",
                       ds->path);
    if (ex >= ds->n) return ll_fail(err, LL_ERR_ARG, "%s: example %zu out of range (%zu)", ds->path, ex, ds->n);
    if (!map || map->n < 1 || (ds->mapped && map->n != ds->n_labels))
        return ll_fail(err, LL_ERR_ARG, "%s: label map of %d labels, the data was mapped with %d", ds->path,
                       map ? map->n : 0, ds->n_labels);
    const ll_example *e = &ds->ex[ex];
    const size_t K = (size_t)map->n;
    const int32_t o = ll_labelmap_find(map, "O", 1);
    for (int32_t w = e->own_lo; w < e->own_hi; w++) {
        const ll_word *W = &ds->words[w];
        if (W->first < 0 || W->first >= e->n_tok) {
            pred[w] = o;
            score[w] = 0.0f;
            continue;
        }
        size_t best;
        score[w] = (float)ll_softmax_top(logits + (size_t)W->first * K, K, &best);
        pred[w] = (int32_t)best;
    }
    return 0;
}

/* Rows of word w in its owner window: the tokens of no word just before it (*lead of them), then its own from
 * its first position while they point to w. */
static int32_t word_rows_in_owner(const ll_dataset *ds, int32_t w, int32_t *lead) {
    const ll_word *W = &ds->words[w];
    *lead = 0;
    if (W->first < 0 || W->owner < 0) return 0;
    const ll_example *e = &ds->ex[W->owner];
    const int32_t *tw = ds->tok_words + e->tok_off;
    while (W->first - *lead - 1 >= 0 && tw[W->first - *lead - 1] == LL_TOKEN_BETWEEN) (*lead)++;
    int32_t n = 0;
    while (W->first + n < e->n_tok && tw[W->first + n] == w) n++;
    return *lead + n;
}

int ll_token_probs_init(ll_token_probs *tp, const ll_dataset *ds, size_t K, ll_error *err) {
    memset(tp, 0, sizeof *tp);
    if (!ds->token_task || !ds->tokenized)
        return ll_fail(err, LL_ERR_ARG, "%s: token probabilities need a tokenized token-classification dataset",
                       ds->path);
    tp->K = K;
    tp->word_tok = malloc((ds->n_words + 1) * sizeof *tp->word_tok);
    if (!tp->word_tok) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    size_t total = 0;
    for (size_t w = 0; w < ds->n_words; w++) {
        int32_t lead;
        tp->word_tok[w] = (int32_t)total;
        total += (size_t)word_rows_in_owner(ds, (int32_t)w, &lead);
    }
    tp->word_tok[ds->n_words] = (int32_t)total;
    const size_t n = total + 1;
    tp->probs = malloc(n * K * sizeof *tp->probs);
    tp->row = malloc((K + 1) * sizeof *tp->row);
    tp->label = malloc(n * sizeof *tp->label);
    tp->char_start = malloc(n * sizeof(int32_t)), tp->char_end = malloc(n * sizeof(int32_t));
    tp->byte_start = malloc(n * sizeof(int32_t)), tp->byte_end = malloc(n * sizeof(int32_t));
    tp->index = malloc(n * sizeof(int32_t));
    tp->between = malloc(n);
    if (!tp->probs || !tp->row || !tp->label || !tp->char_start || !tp->char_end || !tp->byte_start ||
        !tp->byte_end || !tp->index || !tp->between) {
        ll_token_probs_free(tp);
        return ll_fail(err, LL_ERR_NOMEM, "out of memory for %zu token probabilities", total);
    }
    return 0;
}

void ll_token_probs_free(ll_token_probs *tp) {
    free(tp->word_tok), free(tp->probs), free(tp->row), free(tp->label);
    free(tp->char_start), free(tp->char_end), free(tp->byte_start), free(tp->byte_end), free(tp->index);
    free(tp->between);
    memset(tp, 0, sizeof *tp);
}

void ll_token_probs_collect_batch(ll_token_probs *tp, const ll_dataset *ds, const ll_batch_buf *b,
                                  const float *logits) {
    const size_t K = tp->K;
    double *p = tp->row;
    for (int s = 0; s < b->batch.n_seqs; s++) {
        const ll_example *e = &ds->ex[b->example_ids[s]];
        const float *z = logits + (size_t)b->seq_start[s] * K;
        for (int32_t w = e->own_lo; w < e->own_hi; w++) {
            const ll_word *W = &ds->words[w];
            int32_t lead;
            word_rows_in_owner(ds, w, &lead);
            for (int32_t r = tp->word_tok[w], k = -lead; r < tp->word_tok[w + 1]; r++, k++) {
                const size_t pos = (size_t)(W->first + k), t = e->tok_off + pos;
                tp->between[r] = k < 0;
                tp->label[r] = (int32_t)ll_softmax_row(p, z + pos * K, K);
                for (size_t j = 0; j < K; j++) tp->probs[(size_t)r * K + j] = (float)p[j];
                tp->char_start[r] = ds->tok_char_start[t], tp->char_end[r] = ds->tok_char_end[t];
                tp->byte_start[r] = ds->tok_byte_start[t], tp->byte_end[r] = ds->tok_byte_end[t];
                tp->index[r] = ds->tok_index[t];
            }
        }
    }
}

int ll_token_collect_batch(const ll_dataset *ds, const ll_batch_buf *b, const float *logits, const ll_labelmap *map,
                           int32_t *pred, float *score, ll_error *err) {
    const size_t K = map ? (size_t)map->n : 0;
    for (int s = 0; s < b->batch.n_seqs; s++) {
        size_t ex = (size_t)b->example_ids[s];
        if (ex < ds->n && ds->ex[ex].n_tok != b->seq_start[s + 1] - b->seq_start[s])
            return ll_fail(err, LL_ERR_ARG, "%s: the batch does not fit the data (example %zu)", ds->path, ex);
        int rc = ll_token_collect(ds, ex, logits + (size_t)b->seq_start[s] * K, map, pred, score, err);
        if (rc) return rc;
    }
    return 0;
}
