/* Readers for classification data: TSV/CSV (RFC 4180 quoting), JSON Lines,
 * plain text lines; per-row validation. Texts go into one arena; a bad row
 * rolls the arena back, so nothing is allocated per row. */
#include "data/dataset.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/mapped_file.h"
#include "text/utf8.h"

#define MAX_COLS 16

void ll_data_options_default(ll_data_options *opt) { memset(opt, 0, sizeof *opt); }

/* ---- growable arrays ------------------------------------------------------- */

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

/* ---- bad rows -------------------------------------------------------------- */

/* A bad row: with skip_invalid count it (keep the first message) and return
 * 0 so the caller drops the row; else fail with "file:line: ...". */
int ll_data_bad_row(ll_dataset *ds, ll_error *err, int line, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ds->skip_invalid) {
        if (ds->n_skipped++ == 0) snprintf(ds->first_skip, sizeof ds->first_skip, "%s:%d: %s", ds->path, line, msg);
        return 0;
    }
    return ll_fail(err, LL_ERR_FORMAT, "%s:%d: %s", ds->path, line, msg);
}

const char *ll_data_excerpt(const char *s, size_t n, char *buf, size_t cap) {
    size_t k = 0, i = 0;
    for (; i < n && k + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) k += (size_t)snprintf(buf + k, cap - k, "\\x%02x", c);
        else buf[k++] = (char)c;
    }
    if (i < n) { memcpy(buf + k, "...", 3); k += 3; }
    buf[k] = 0;
    return buf;
}

#define excerpt ll_data_excerpt

size_t ll_data_find_nul(const char *s, size_t n, int json) {
    for (size_t i = 0; i < n; i++) {
        if (!s[i]) return i;
        if (json && s[i] == '\\' && i + 1 < n) {
            if (s[i + 1] == 'u' && i + 6 <= n && !memcmp(s + i + 2, "0000", 4)) return i;
            i++; /* an escaped character: skip it (an escaped backslash before u0000 is text) */
        }
    }
    return n;
}

/* ---- row building ---------------------------------------------------------- */

typedef struct piece { const char *p; size_t n; } piece;

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static void trim(const char **p, size_t *n) {
    while (*n && is_space((unsigned char)(*p)[0])) { (*p)++; (*n)--; }
    while (*n && is_space((unsigned char)(*p)[*n - 1])) (*n)--;
}

typedef struct row_ctx {
    ll_dataset *ds;
    const ll_data_options *opt;
    const char *join;
    size_t join_len;
    const char *label_sep;
    char text_desc[160]; /* the text column(s), for messages */
} row_ctx;

/* Validate and add one row: text pieces (joined) and label strings (already
 * split; NULL labels = unlabelled data). Returns 0 (added or skipped) or an
 * error code. */
static int add_row(row_ctx *c, int line, const piece *texts, int n_texts, const piece *labels, int n_labels,
                   ll_error *err) {
    ll_dataset *ds = c->ds;
    size_t total = 0;
    for (int i = 0; i < n_texts; i++) total += texts[i].n + (i ? c->join_len : 0);
    if (total > UINT32_MAX - 1) return ll_data_bad_row(ds, err, line, "text longer than 4 GiB");
    if (grow((void **)&ds->text, &ds->text_cap, ds->text_len + total + 1, 1))
        return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", ds->path);
    char *t = ds->text + ds->text_len;
    size_t k = 0;
    for (int i = 0; i < n_texts; i++) {
        if (i) { memcpy(t + k, c->join, c->join_len); k += c->join_len; }
        if (texts[i].n) memcpy(t + k, texts[i].p, texts[i].n);
        k += texts[i].n;
    }
    const char *tp = t;
    size_t tn = k;
    if (c->opt->strip_text) trim(&tp, &tn);
    {
        const char *q = tp;
        size_t qn = tn;
        trim(&q, &qn);
        if (!qn) return ll_data_bad_row(ds, err, line, "empty text (%s)", c->text_desc);
    }
    {
        const char *z = memchr(tp, 0, tn);
        if (z) return ll_data_bad_row(ds, err, line, "NUL byte in text (%s) at byte %zu", c->text_desc, (size_t)(z - tp) + 1);
    }
    if (!ll_utf8_is_valid((const uint8_t *)tp, tn)) {
        size_t at = 0;
        while (at < tn) {
            int bad, l = ll_utf8_valid_len((const uint8_t *)tp + at, tn - at, &bad);
            if (!l) break;
            at += (size_t)l;
        }
        return ll_data_bad_row(ds, err, line, "invalid UTF-8 in text at byte %zu (0x%02x)", at,
                               (unsigned)(unsigned char)tp[at]);
    }
    /* labels */
    int32_t ids[256];
    int n_ids = 0;
    if (ds->has_labels) {
        char eb[96];
        for (int i = 0; i < n_labels; i++) {
            const char *lp = labels[i].p;
            size_t ln = labels[i].n;
            trim(&lp, &ln);
            if (!ln) continue;
            if (memchr(lp, 0, ln))
                return ll_data_bad_row(ds, err, line, "NUL byte in label '%s'", excerpt(lp, ln, eb, sizeof eb));
            if (!ll_utf8_is_valid((const uint8_t *)lp, ln))
                return ll_data_bad_row(ds, err, line, "invalid UTF-8 in label '%s'", excerpt(lp, ln, eb, sizeof eb));
            if (n_ids == (int)(sizeof ids / sizeof ids[0]))
                return ll_data_bad_row(ds, err, line, "more than %d labels", n_ids);
            if (!ds->raw && !(ds->raw = ll_strset_new()))
                return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", ds->path);
            int32_t id = ll_strset_intern(ds->raw, lp, ln);
            if (id < 0) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", ds->path);
            ids[n_ids++] = id;
        }
        if (!n_ids && !(ds->multi_label && n_labels < 0))
            return ll_data_bad_row(ds, err, line, "missing label");
        if (!ds->multi_label && n_ids > 1)
            return ll_data_bad_row(ds, err, line, "%d labels in a single-label dataset (set multi_label)", n_ids);
    }
    /* commit */
    if (grow((void **)&ds->ex, &ds->ex_cap, ds->n + 1, sizeof *ds->ex) ||
        grow((void **)&ds->raw_labs, &ds->labs_cap, ds->labs_len + (size_t)n_ids, sizeof *ds->raw_labs))
        return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", ds->path);
    if (n_ids) memcpy(ds->raw_labs + ds->labs_len, ids, (size_t)n_ids * sizeof *ids);
    if (tp != t) memmove(t, tp, tn);
    t[tn] = 0;
    ll_example *e = &ds->ex[ds->n++];
    memset(e, 0, sizeof *e);
    e->text_off = ds->text_len;
    e->text_len = (uint32_t)tn;
    e->line = line;
    e->lab_off = (uint32_t)ds->labs_len;
    e->n_lab = (uint32_t)n_ids;
    e->label = -1;
    e->sent = -1;
    ds->text_len += tn + 1;
    ds->labs_len += (size_t)n_ids;
    return 0;
}

/* Split a label field on label_sep (multi-label TSV/CSV) into pieces. */
static int split_labels(const row_ctx *c, const char *p, size_t n, piece *out, int cap) {
    if (!c->ds->multi_label) { out[0] = (piece){p, n}; return 1; }
    size_t sl = strlen(c->label_sep);
    int k = 0;
    size_t s = 0;
    for (size_t i = 0; i + sl <= n && sl; i++) {
        if (memcmp(p + i, c->label_sep, sl) == 0) {
            if (k < cap) out[k++] = (piece){p + s, i - s};
            i += sl - 1;
            s = i + 1;
        }
    }
    if (k < cap) out[k++] = (piece){p + s, n - s};
    return k;
}

/* ---- column specs ---------------------------------------------------------- */

typedef struct colspec { char name[128]; int index; } colspec; /* index -1: by name */

static int parse_cols(const char *spec, colspec *out, int cap, const char *what, const char *path, ll_error *err) {
    int n = 0;
    const char *p = spec;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && is_space((unsigned char)*p)) { p++; len--; }
        while (len && is_space((unsigned char)p[len - 1])) len--;
        if (!len || len >= sizeof out[0].name)
            return ll_fail(err, LL_ERR_ARG, "%s: bad %s column list '%s'", path, what, spec);
        if (n == cap) return ll_fail(err, LL_ERR_ARG, "%s: more than %d %s columns", path, cap, what);
        memcpy(out[n].name, p, len);
        out[n].name[len] = 0;
        out[n].index = -1;
        size_t d = 0;
        while (d < len && p[d] >= '0' && p[d] <= '9') d++;
        if (d == len) {
            long v = strtol(out[n].name, NULL, 10);
            if (v > 100000) return ll_fail(err, LL_ERR_ARG, "%s: %s column index %ld too large", path, what, v);
            out[n].index = (int)v;
        }
        n++;
        if (!e) break;
        p = e + 1;
    }
    return n;
}

/* ---- delimited (TSV/CSV) ----------------------------------------------------- */

typedef struct field { size_t off, len; } field;

typedef struct dsv {
    const char *p;
    size_t n, i;
    int line;       /* physical line at i */
    char delim;
    int quotes;
    char *scratch;  /* unescaped fields of the current record */
    size_t scratch_len, scratch_cap;
    field *f;
    size_t nf, f_cap;
    char problem[160]; /* set when the record is malformed */
} dsv;

static int push(dsv *d, char ch) {
    if (d->scratch_len == d->scratch_cap && grow((void **)&d->scratch, &d->scratch_cap, d->scratch_len + 1, 1))
        return -1;
    d->scratch[d->scratch_len++] = ch;
    return 0;
}

/* Parse one record at d->i. Returns 1 (record; d->problem set if malformed),
 * 0 at end of input, -1 out of memory. Blank lines are skipped. */
static int dsv_next(dsv *d, int *rec_line) {
    while (d->i < d->n) {
        if (d->p[d->i] == '\n') { d->i++; d->line++; continue; }
        if (d->p[d->i] == '\r' && d->i + 1 < d->n && d->p[d->i + 1] == '\n') { d->i += 2; d->line++; continue; }
        break;
    }
    if (d->i >= d->n) return 0;
    *rec_line = d->line;
    d->nf = 0;
    d->scratch_len = 0;
    d->problem[0] = 0;
    const size_t start = d->i;
    const int start_line = d->line;
    for (;;) {
        size_t off = d->scratch_len;
        if (d->quotes && d->i < d->n && d->p[d->i] == '"') {
            d->i++;
            int closed = 0;
            while (d->i < d->n) {
                char ch = d->p[d->i];
                if (ch == '"') {
                    if (d->i + 1 < d->n && d->p[d->i + 1] == '"') {
                        if (push(d, '"')) return -1;
                        d->i += 2;
                        continue;
                    }
                    d->i++;
                    closed = 1;
                    break;
                }
                if (ch == '\n') d->line++;
                if (push(d, ch)) return -1;
                d->i++;
            }
            if (!closed) {
                snprintf(d->problem, sizeof d->problem, "quoted field (field %zu) is never closed", d->nf + 1);
                /* resume after the record's first physical line */
                d->i = start;
                d->line = start_line;
                while (d->i < d->n && d->p[d->i] != '\n') d->i++;
                if (d->i < d->n) { d->i++; d->line++; }
                return 1;
            }
            if (d->i < d->n && d->p[d->i] != d->delim && d->p[d->i] != '\n' &&
                !(d->p[d->i] == '\r' && (d->i + 1 == d->n || d->p[d->i + 1] == '\n'))) {
                snprintf(d->problem, sizeof d->problem, "unexpected character '%c' after the closing quote of field %zu",
                         d->p[d->i], d->nf + 1);
                while (d->i < d->n && d->p[d->i] != '\n') d->i++;
                if (d->i < d->n) { d->i++; d->line++; }
                return 1;
            }
            if (d->i < d->n && d->p[d->i] == '\r') d->i++;
        } else {
            while (d->i < d->n && d->p[d->i] != d->delim && d->p[d->i] != '\n') {
                if (push(d, d->p[d->i])) return -1;
                d->i++;
            }
            /* CRLF: the CR belongs to the line ending */
            if (d->i < d->n && d->p[d->i] == '\n' && d->scratch_len > off && d->scratch[d->scratch_len - 1] == '\r')
                d->scratch_len--;
            else if (d->i == d->n && d->scratch_len > off && d->scratch[d->scratch_len - 1] == '\r')
                d->scratch_len--;
        }
        if (grow((void **)&d->f, &d->f_cap, d->nf + 1, sizeof *d->f)) return -1;
        d->f[d->nf++] = (field){off, d->scratch_len - off};
        if (d->i < d->n && d->p[d->i] == d->delim) { d->i++; continue; }
        if (d->i < d->n && d->p[d->i] == '\n') { d->i++; d->line++; }
        return 1;
    }
}

static void describe_cols(row_ctx *c, const colspec *cols, int n, int by_name) {
    size_t k = (size_t)snprintf(c->text_desc, sizeof c->text_desc, "%s", n > 1 ? "columns " : "column ");
    for (int i = 0; i < n && k + 1 < sizeof c->text_desc; i++) {
        if (by_name) k += (size_t)snprintf(c->text_desc + k, sizeof c->text_desc - k, "%s'%s'", i ? ", " : "", cols[i].name);
        else k += (size_t)snprintf(c->text_desc + k, sizeof c->text_desc - k, "%s%d", i ? ", " : "", cols[i].index);
    }
}

static int find_header(const dsv *d, const char *name) {
    for (size_t k = 0; k < d->nf; k++)
        if (d->f[k].len == strlen(name) && memcmp(d->scratch + d->f[k].off, name, d->f[k].len) == 0) return (int)k;
    return -1;
}

static void header_list(const dsv *d, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = 0;
    for (size_t j = 0; j < d->nf && k + 8 < cap; j++) {
        char eb[64];
        k += (size_t)snprintf(buf + k, cap - k, "%s'%s'", j ? ", " : "",
                              excerpt(d->scratch + d->f[j].off, d->f[j].len, eb, sizeof eb));
    }
}

static int load_dsv(row_ctx *c, const char *data, size_t size, ll_error *err) {
    ll_dataset *ds = c->ds;
    const ll_data_options *opt = c->opt;
    dsv d = {.p = data, .n = size, .i = 0, .line = 1, .delim = ds->format == LL_DATA_TSV ? '\t' : ',',
             .quotes = !opt->no_quotes};
    int rc = 0;
    if (grow((void **)&d.scratch, &d.scratch_cap, 256, 1)) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", ds->path);
    colspec tcols[MAX_COLS], lcol[1];
    int n_t = 0, n_l = 0, defaults = !opt->text_columns;
    if (opt->text_columns && (n_t = parse_cols(opt->text_columns, tcols, MAX_COLS, "text", ds->path, err)) < 0) {
        rc = n_t;
        goto done;
    }
    if (ds->has_labels && opt->label_column &&
        (n_l = parse_cols(opt->label_column, lcol, 1, "label", ds->path, err)) < 0) {
        rc = n_l;
        goto done;
    }
    int by_name = defaults || (ds->has_labels && !opt->label_column);
    for (int k = 0; k < n_t; k++) by_name |= tcols[k].index < 0;
    for (int k = 0; k < n_l; k++) by_name |= lcol[k].index < 0;
    int header = opt->header == LL_HEADER_YES || (opt->header == LL_HEADER_AUTO && by_name);
    int rline = 0;
    /* One row rule for every caller: each record has as many fields as the
     * header (or, without one, as the first well-formed record). */
    size_t want_nf = 0;
    int want_line = 0;
    if (header) {
        int r = dsv_next(&d, &rline);
        if (r < 0) { rc = ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", ds->path); goto done; }
        if (r == 0) { rc = ll_fail(err, LL_ERR_FORMAT, "%s: empty file (expected a header row)", ds->path); goto done; }
        if (d.problem[0]) { rc = ll_fail(err, LL_ERR_FORMAT, "%s:%d: header: %s", ds->path, rline, d.problem); goto done; }
        char cols[512];
        header_list(&d, cols, sizeof cols);
        want_nf = d.nf;
        want_line = rline;
        if (defaults) {
            int k = find_header(&d, "text");
            const char *nm = "text";
            if (k < 0) { k = find_header(&d, "sentence"); nm = "sentence"; }
            if (k < 0) {
                rc = ll_fail(err, LL_ERR_FORMAT,
                             "%s:%d: no column 'text' or 'sentence' in the header (columns: %s); choose the text "
                             "column by name or index", ds->path, rline, cols);
                goto done;
            }
            snprintf(tcols[0].name, sizeof tcols[0].name, "%s", nm);
            tcols[0].index = k;
            n_t = 1;
        }
        if (ds->has_labels && !opt->label_column) {
            snprintf(lcol[0].name, sizeof lcol[0].name, "label");
            lcol[0].index = -1;
            n_l = 1;
        }
        for (int k = 0; k < n_t + n_l; k++) {
            colspec *cs = k < n_t ? &tcols[k] : &lcol[k - n_t];
            if (cs->index >= 0) continue;
            cs->index = find_header(&d, cs->name);
            if (cs->index < 0) {
                rc = ll_fail(err, LL_ERR_FORMAT, "%s:%d: no %s column named '%s' in the header (columns: %s)%s",
                             ds->path, rline, k < n_t ? "text" : "label", cs->name, cols,
                             k >= n_t && !opt->label_column ? "; choose the label column, or no labels" : "");
                goto done;
            }
        }
    } else if (by_name) {
        rc = ll_fail(err, LL_ERR_ARG, "%s: columns chosen by name need a header row", ds->path);
        goto done;
    }
    int need = 0;
    for (int k = 0; k < n_t; k++)
        if (tcols[k].index + 1 > need) need = tcols[k].index + 1;
    describe_cols(c, tcols, n_t, header);
    if (n_l && lcol[0].index + 1 > need) need = lcol[0].index + 1;
    for (;;) {
        int r = dsv_next(&d, &rline);
        if (r < 0) { rc = ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", ds->path); goto done; }
        if (r == 0) break;
        if (d.problem[0]) {
            if ((rc = ll_data_bad_row(ds, err, rline, "%s", d.problem))) goto done;
            continue;
        }
        if ((int)d.nf < need) {
            const colspec *miss = NULL;
            for (int k = 0; k < n_t + n_l && !miss; k++) {
                const colspec *cs = k < n_t ? &tcols[k] : &lcol[k - n_t];
                if (cs->index >= (int)d.nf) miss = cs;
            }
            char what[160];
            if (header) snprintf(what, sizeof what, "'%s' (index %d)", miss->name, miss->index);
            else snprintf(what, sizeof what, "%d", miss->index);
            if ((rc = ll_data_bad_row(ds, err, rline, "missing %s column %s: the row has %zu field%s",
                                      miss == lcol ? "label" : "text", what, d.nf, d.nf == 1 ? "" : "s")))
                goto done;
            continue;
        }
        if (!want_nf) {
            want_nf = d.nf;
            want_line = rline;
        } else if (d.nf != want_nf) {
            const char *hint = d.nf < want_nf ? ""
                               : d.delim == '\t' ? ": a stray tab?"
                                                 : ": a stray comma? (quote fields that contain commas)";
            if ((rc = ll_data_bad_row(ds, err, rline, "%zu fields, but the %s (line %d) has %zu%s", d.nf,
                                      header ? "header" : "first row", want_line, want_nf, hint)))
                goto done;
            continue;
        }
        piece texts[MAX_COLS], labels[256];
        for (int k = 0; k < n_t; k++) texts[k] = (piece){d.scratch + d.f[tcols[k].index].off, d.f[tcols[k].index].len};
        int nl = 0;
        if (n_l) {
            const field *lf = &d.f[lcol[0].index];
            nl = split_labels(c, d.scratch + lf->off, lf->len, labels, 256);
        }
        if ((rc = add_row(c, rline, texts, n_t, labels, nl, err))) goto done;
    }
done:
    free(d.scratch);
    free(d.f);
    return rc;
}

/* ---- JSON Lines ------------------------------------------------------------ */

static int json_label(row_ctx *c, const cJSON *v, piece *out, char (*nums)[32], int cap, int line, int *bad,
                      ll_error *err) {
    /* one scalar into out[0]; returns 1, or 0 with *bad set (row error raised) */
    ll_dataset *ds = c->ds;
    if (cJSON_IsString(v)) {
        out->p = v->valuestring;
        out->n = strlen(v->valuestring);
        return 1;
    }
    if (cJSON_IsNumber(v)) {
        double x = v->valuedouble;
        if (!(x >= -9007199254740992.0 && x <= 9007199254740992.0) || x != (double)(long long)x) {
            *bad = ll_data_bad_row(ds, err, line, "label %g is not an integer (labels are strings or integers)", x);
            return 0;
        }
        snprintf(nums[0], 32, "%lld", (long long)x);
        out->p = nums[0];
        out->n = strlen(nums[0]);
        return 1;
    }
    *bad = ll_data_bad_row(ds, err, line, "label must be a string, an integer or an array of them");
    return 0;
}

static int load_jsonl(row_ctx *c, const char *data, size_t size, ll_error *err) {
    ll_dataset *ds = c->ds;
    const ll_data_options *opt = c->opt;
    colspec tcols[MAX_COLS], lcol[1] = {{"label", -1}};
    int n_t = 0, rc = 0;
    if (opt->text_columns) {
        if ((n_t = parse_cols(opt->text_columns, tcols, MAX_COLS, "text", ds->path, err)) < 0) return n_t;
    }
    if (ds->has_labels && opt->label_column) {
        if (strchr(opt->label_column, ','))
            return ll_fail(err, LL_ERR_ARG, "%s: one label field expected, got '%s'", ds->path, opt->label_column);
        snprintf(lcol[0].name, sizeof lcol[0].name, "%s", opt->label_column);
    }
    if (n_t) {
        size_t k = (size_t)snprintf(c->text_desc, sizeof c->text_desc, "%s", n_t > 1 ? "fields " : "field ");
        for (int j = 0; j < n_t && k + 1 < sizeof c->text_desc; j++)
            k += (size_t)snprintf(c->text_desc + k, sizeof c->text_desc - k, "%s'%s'", j ? ", " : "", tcols[j].name);
    }
    char (*nums)[32] = malloc(256 * sizeof *nums);
    if (!nums) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", ds->path);
    size_t i = 0;
    int line = 0;
    while (i < size) {
        line++;
        const char *s = data + i;
        const char *nl = memchr(s, '\n', size - i);
        size_t len = nl ? (size_t)(nl - s) : size - i;
        i += len + (nl ? 1 : 0);
        const char *q = s;
        size_t qn = len;
        trim(&q, &qn);
        if (!qn) continue;
        size_t z = ll_data_find_nul(s, len, 1);
        if (z < len) {
            if ((rc = ll_data_bad_row(ds, err, line, "NUL byte (%s) at column %zu", s[z] ? "\\u0000" : "raw", z + 1)))
                break;
            continue;
        }
        const char *end = NULL;
        cJSON *o = cJSON_ParseWithLengthOpts(s, len, &end, 0);
        if (!o) {
            size_t col = end && end >= s && end <= s + len ? (size_t)(end - s) + 1 : 0;
            if ((rc = ll_data_bad_row(ds, err, line, "malformed JSON (column %zu)", col))) break;
            continue;
        }
        if (end && end < s + len) {
            const char *r = end;
            size_t rn = (size_t)(s + len - end);
            trim(&r, &rn);
            if (rn) {
                cJSON_Delete(o);
                if ((rc = ll_data_bad_row(ds, err, line, "malformed JSON: extra text after the object (column %zu)",
                                          (size_t)(r - s) + 1)))
                    break;
                continue;
            }
        }
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            if ((rc = ll_data_bad_row(ds, err, line, "expected a JSON object per line"))) break;
            continue;
        }
        piece texts[MAX_COLS], labels[256];
        int n_texts = 0, bad = 0, ok = 1;
        if (n_t) {
            for (int k = 0; k < n_t && ok; k++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, tcols[k].name);
                if (!v || cJSON_IsNull(v)) { bad = ll_data_bad_row(ds, err, line, "missing field '%s'", tcols[k].name); ok = 0; }
                else if (!cJSON_IsString(v)) { bad = ll_data_bad_row(ds, err, line, "field '%s' is not a string", tcols[k].name); ok = 0; }
                else texts[n_texts++] = (piece){v->valuestring, strlen(v->valuestring)};
            }
        } else {
            const char *nm = "text";
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, nm);
            if (!v) v = cJSON_GetObjectItemCaseSensitive(o, nm = "sentence");
            snprintf(c->text_desc, sizeof c->text_desc, "field '%s'", v ? nm : "text");
            if (!v || cJSON_IsNull(v)) { bad = ll_data_bad_row(ds, err, line, "missing field 'text' (or 'sentence')"); ok = 0; }
            else if (!cJSON_IsString(v)) { bad = ll_data_bad_row(ds, err, line, "field '%s' is not a string", nm); ok = 0; }
            else texts[n_texts++] = (piece){v->valuestring, strlen(v->valuestring)};
        }
        int nl_count = 0;
        if (ok && ds->has_labels) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, lcol[0].name);
            if (!v || cJSON_IsNull(v)) {
                bad = ll_data_bad_row(ds, err, line, "missing label (field '%s')", lcol[0].name);
                ok = 0;
            } else if (cJSON_IsArray(v)) {
                ds->multi_label = 1;
                const cJSON *el;
                nl_count = -1; /* an explicit (possibly empty) label set */
                int k = 0;
                cJSON_ArrayForEach(el, v) {
                    if (k == 256) { bad = ll_data_bad_row(ds, err, line, "more than 256 labels"); ok = 0; break; }
                    if (!json_label(c, el, &labels[k], &nums[k], 1, line, &bad, err)) { ok = 0; break; }
                    k++;
                }
                if (ok && k) nl_count = k;
            } else if (json_label(c, v, &labels[0], &nums[0], 1, line, &bad, err)) {
                nl_count = 1;
            } else {
                ok = 0;
            }
        }
        if (ok) bad = add_row(c, line, texts, n_texts, labels, nl_count, err);
        cJSON_Delete(o);
        if (bad) { rc = bad; break; }
    }
    free(nums);
    return rc;
}

/* ---- plain lines ----------------------------------------------------------- */

static int load_lines(row_ctx *c, const char *data, size_t size, ll_error *err) {
    size_t i = 0;
    int line = 0;
    snprintf(c->text_desc, sizeof c->text_desc, "line");
    while (i < size) {
        line++;
        const char *s = data + i;
        const char *nl = memchr(s, '\n', size - i);
        size_t len = nl ? (size_t)(nl - s) : size - i;
        i += len + (nl ? 1 : 0);
        if (len && s[len - 1] == '\r') len--;
        if (!len) continue;
        piece t = {s, len};
        int rc = add_row(c, line, &t, 1, NULL, 0, err);
        if (rc) return rc;
    }
    return 0;
}

/* ---- entry points ------------------------------------------------------------ */

static ll_data_format format_from_path(const char *path) {
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) return LL_DATA_AUTO;
    if (!strcasecmp(dot, ".tsv")) return LL_DATA_TSV;
    if (!strcasecmp(dot, ".csv")) return LL_DATA_CSV;
    if (!strcasecmp(dot, ".jsonl") || !strcasecmp(dot, ".ndjson") || !strcasecmp(dot, ".json")) return LL_DATA_JSONL;
    if (!strcasecmp(dot, ".txt")) return LL_DATA_LINES;
    return LL_DATA_AUTO;
}

int ll_dataset_load_memory(ll_dataset **out, const char *data, size_t size, const char *name,
                           const ll_data_options *opt_in, ll_error *err) {
    *out = NULL;
    ll_data_options defaults;
    ll_data_options_default(&defaults);
    const ll_data_options *opt = opt_in ? opt_in : &defaults;
    ll_dataset *ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->path = strdup(name ? name : "<memory>"))) {
        free(ds);
        return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", name ? name : "<memory>");
    }
    ds->format = opt->format ? opt->format : format_from_path(ds->path);
    ds->skip_invalid = opt->skip_invalid;
    ds->multi_label = opt->multi_label;
    ds->has_labels = !opt->no_labels && !(opt->label_column && !opt->label_column[0]) && ds->format != LL_DATA_LINES;
    int rc = 0;
    row_ctx c = {.ds = ds, .opt = opt, .join = opt->text_join ? opt->text_join : " ",
                 .label_sep = opt->label_sep && opt->label_sep[0] ? opt->label_sep : ","};
    c.join_len = strlen(c.join);
    /* UTF-8 byte-order mark */
    if (size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) { data += 3; size -= 3; }
    switch (ds->format) {
    case LL_DATA_TSV:
    case LL_DATA_CSV: rc = load_dsv(&c, data, size, err); break;
    case LL_DATA_JSONL: {
        const char *q = data;
        size_t qn = size;
        trim(&q, &qn);
        if (qn && q[0] == '[')
            rc = ll_fail(err, LL_ERR_UNSUPPORTED,
                         "%s: a JSON array is not supported; use JSON Lines (one object per line)", ds->path);
        else
            rc = load_jsonl(&c, data, size, err);
        break;
    }
    case LL_DATA_LINES: rc = load_lines(&c, data, size, err); break;
    case LL_DATA_CONLL:
        rc = ll_fail(err, LL_ERR_ARG, "%s: CoNLL is a token-classification format (ll_token_dataset_load)", ds->path);
        break;
    default:
        rc = ll_fail(err, LL_ERR_ARG, "%s: cannot tell the data format from the extension (use .tsv, .csv, .jsonl, "
                     ".txt or set the format)", ds->path);
    }
    if (!rc && ds->n == 0)
        rc = ds->n_skipped ? ll_fail(err, LL_ERR_FORMAT, "%s: no valid rows (%zu skipped; first: %s)", ds->path,
                                     ds->n_skipped, ds->first_skip)
                           : ll_fail(err, LL_ERR_FORMAT, "%s: no rows", ds->path);
    if (rc) { ll_dataset_free(ds); return rc; }
    *out = ds;
    return 0;
}

int ll_dataset_load(ll_dataset **out, const char *path, const ll_data_options *opt, ll_error *err) {
    *out = NULL;
    char *buf;
    size_t size;
    int rc = ll_read_text_file(path, &buf, &size, err); /* files and pipes alike */
    if (rc) return rc;
    rc = ll_dataset_load_memory(out, buf, size, path, opt, err);
    free(buf);
    return rc;
}

void ll_dataset_free(ll_dataset *ds) {
    if (!ds) return;
    free(ds->path);
    free(ds->ex);
    free(ds->text);
    free(ds->raw_labs);
    free(ds->labs);
    ll_strset_free(ds->raw);
    free(ds->tokens);
    free(ds->sent);
    free(ds->words);
    free(ds->tok_labels);
    free(ds->tok_words);
    free(ds->tok_char_start), free(ds->tok_char_end), free(ds->tok_byte_start), free(ds->tok_byte_end), free(ds->tok_index);
    free(ds);
}

const char *ll_example_raw_label(const ll_dataset *ds, size_t i, size_t k) {
    if (i >= ds->n || k >= ds->ex[i].n_lab) return NULL;
    return ll_strset_get(ds->raw, ds->raw_labs[ds->ex[i].lab_off + k]);
}
