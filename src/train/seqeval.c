/* seqeval-compatible entity metrics. The chunker is seqeval's default
 * (conlleval) state machine, rule for rule, including its quirks:
 *
 * - Only the prefixes B I E S O and '.' have rules; any other first character
 *   (as in "X" or "PER") starts a chunk only where the type changes and ends
 *   one only where the type changes.
 * - A chunk ends only at a type change or after B/I/E/S, so a chunk opened by
 *   another prefix and followed by "O" is never closed: it is dropped.
 * - A chunk "closed" without having been opened (e.g. "X" after "O" with the
 *   same type "_", then "B-PER") takes the start of the last chunk opened,
 *   which may lie in an earlier sentence. seqeval does this; so do we.
 *
 * seqeval evaluates a list of sentences by joining them with one "O" after
 * each, which closes every chunk a B/I/E/S tag opened; evaluation here walks
 * the same stream, so positions count those separators too. */
#include "train/seqeval.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/metrics.h"

/* A tag as seqeval splits it. prefix: the first character when ASCII; any
 * non-ASCII first character has no rule, so they all share one value. */
typedef struct parsed_tag {
    unsigned char prefix;
    const char *type; /* not NUL-terminated where it is "_" for an empty type */
    size_t type_len;
} parsed_tag;

enum { PREFIX_OTHER = 0x80 };

/* seqeval: prefix = tag[0] (a code point), type = tag[1:].split('-', 1)[-1] or '_'. */
static void parse_tag(const char *s, parsed_tag *t) {
    const unsigned char c = (unsigned char)s[0];
    const char *rest = s + 1;
    if (c >= 0x80)
        while (((unsigned char)*rest & 0xC0) == 0x80) rest++; /* the rest of that code point */
    const char *dash = strchr(rest, '-');
    t->prefix = c < 0x80 ? c : PREFIX_OTHER;
    t->type = dash ? dash + 1 : rest;
    t->type_len = strlen(t->type);
    if (t->type_len == 0) {
        t->type = "_";
        t->type_len = 1;
    }
}

/* The "O" seqeval appends after each sentence (its type is "_"). */
static const parsed_tag SEPARATOR = {'O', "_", 1};

static bool types_differ(const parsed_tag *a, const parsed_tag *b) {
    return a->type_len != b->type_len || memcmp(a->type, b->type, a->type_len) != 0;
}

/* seqeval's end_of_chunk: did a chunk end just before cur? */
static bool chunk_ends(const parsed_tag *prev, const parsed_tag *cur) {
    const unsigned char p = prev->prefix, t = cur->prefix;
    if (p == 'E' || p == 'S') return true;
    if ((p == 'B' || p == 'I') && (t == 'B' || t == 'S' || t == 'O')) return true;
    return p != 'O' && p != '.' && types_differ(prev, cur);
}

/* seqeval's start_of_chunk: does a chunk start at cur? */
static bool chunk_starts(const parsed_tag *prev, const parsed_tag *cur) {
    const unsigned char p = prev->prefix, t = cur->prefix;
    if (t == 'B' || t == 'S') return true;
    if ((p == 'E' || p == 'S' || p == 'O') && (t == 'E' || t == 'I')) return true;
    return t != 'O' && t != '.' && types_differ(prev, cur);
}

typedef struct chunker {
    parsed_tag prev;
    int64_t begin, pos; /* start of the open chunk; index of the next tag */
} chunker;

/* seqeval starts as after an "O" whose type is the empty string (so the
 * first non-O tag always starts a chunk; after a separator "_" does not). */
static void chunker_init(chunker *c) {
    c->prev = (parsed_tag){'O', "", 0};
    c->begin = c->pos = 0;
}

static int list_push(ll_entity_list *l, ll_entity e) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        ll_entity *v = realloc(l->v, cap * sizeof *v);
        if (!v) return LL_ERR_NOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = e;
    return LL_OK;
}

void ll_entity_list_free(ll_entity_list *l) {
    if (!l) return;
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Feed one tag: emit the chunk that ends before it (type interned), then note
 * whether one starts at it. Callers keep pos within int32. */
static int chunker_step(chunker *c, const parsed_tag *cur, ll_strset *types, ll_entity_list *out) {
    if (chunk_ends(&c->prev, cur)) {
        const int32_t type = ll_strset_intern(types, c->prev.type, c->prev.type_len);
        if (type < 0) return LL_ERR_NOMEM;
        const ll_entity e = {type, (int32_t)c->begin, (int32_t)c->pos};
        if (list_push(out, e)) return LL_ERR_NOMEM;
    }
    if (chunk_starts(&c->prev, cur)) c->begin = c->pos;
    c->prev = *cur;
    c->pos++;
    return LL_OK;
}

int ll_seqeval_entities(const char *const *tags, size_t n, ll_strset *types, ll_entity_list *out, ll_error *err) {
    if ((!tags && n) || !types || !out) return ll_fail(err, LL_ERR_ARG, "seqeval entities: NULL argument");
    if (n >= INT32_MAX) return ll_fail(err, LL_ERR_ARG, "seqeval entities: %zu tags is too many", n);
    const size_t before = out->n;
    chunker c;
    chunker_init(&c);
    for (size_t i = 0; i <= n; i++) {
        parsed_tag t = SEPARATOR; /* seqeval appends one "O" to close the last chunk */
        if (i < n) {
            if (!tags[i] || !tags[i][0]) {
                out->n = before;
                return ll_fail(err, LL_ERR_ARG, "seqeval entities: tag %zu is %s", i, tags[i] ? "empty" : "NULL");
            }
            parse_tag(tags[i], &t);
        }
        if (chunker_step(&c, &t, types, out)) {
            out->n = before;
            return ll_fail(err, LL_ERR_NOMEM, "seqeval entities: out of memory");
        }
    }
    return (int)(out->n - before);
}

/* ---- evaluation ---------------------------------------------------------- */

/* Names must be usable tags; ids in range; the joined stream (words plus one
 * separator per sentence) must fit ll_entity's int32 positions. */
static int check_inputs(const int32_t *gold, const int32_t *pred, const int32_t *sent_len, size_t n_sent,
                        const char *const *names, int n_names, int64_t *n_words, ll_error *err) {
    if (!names || n_names <= 0) return ll_fail(err, LL_ERR_ARG, "ner evaluate: no tag names");
    for (int i = 0; i < n_names; i++)
        if (!names[i] || !names[i][0])
            return ll_fail(err, LL_ERR_ARG, "ner evaluate: tag name %d is %s", i, names[i] ? "empty" : "NULL");
    if (n_sent && !sent_len) return ll_fail(err, LL_ERR_ARG, "ner evaluate: NULL sentence lengths");
    int64_t total = 0;
    for (size_t s = 0; s < n_sent; s++) {
        if (sent_len[s] < 0)
            return ll_fail(err, LL_ERR_ARG, "ner evaluate: sentence %zu has length %d", s, sent_len[s]);
        total += sent_len[s];
        if (total + (int64_t)s + 1 >= INT32_MAX)
            return ll_fail(err, LL_ERR_ARG, "ner evaluate: more than %d words and sentences", INT32_MAX - 1);
    }
    if (total && (!gold || !pred)) return ll_fail(err, LL_ERR_ARG, "ner evaluate: NULL gold or predicted tags");
    const int32_t *ids[2] = {gold, pred};
    for (int k = 0; k < 2; k++)
        for (size_t s = 0, w = 0; s < n_sent; s++)
            for (int32_t i = 0; i < sent_len[s]; i++, w++)
                if (ids[k][w] < 0 || ids[k][w] >= n_names)
                    return ll_fail(err, LL_ERR_ARG,
                                   "ner evaluate: %s tag id %d at sentence %zu word %d is out of range [0, %d)",
                                   k ? "predicted" : "gold", ids[k][w], s, i, n_names);
    *n_words = total;
    return LL_OK;
}

/* Entities of all sentences, chunked as one stream with a separator after
 * each sentence (positions count the separators). */
static int chunk_stream(const int32_t *ids, const int32_t *sent_len, size_t n_sent, const parsed_tag *parsed,
                        ll_strset *types, ll_entity_list *out) {
    chunker c;
    chunker_init(&c);
    size_t w = 0;
    for (size_t s = 0; s < n_sent; s++) {
        for (int32_t i = 0; i < sent_len[s]; i++, w++)
            if (chunker_step(&c, &parsed[ids[w]], types, out)) return LL_ERR_NOMEM;
        if (chunker_step(&c, &SEPARATOR, types, out)) return LL_ERR_NOMEM;
    }
    return LL_OK;
}

/* Count gold, predicted and matching entities per type. Both lists are in
 * order of strictly increasing end (one chunk at most ends at each position),
 * so a merge finds the entities equal in type, start and end. */
static void count_entities(const ll_entity_list *g, const ll_entity_list *p, ll_ner_type_stats *st) {
    for (size_t i = 0; i < g->n; i++) st[g->v[i].type].n_gold++;
    for (size_t j = 0; j < p->n; j++) st[p->v[j].type].n_pred++;
    for (size_t i = 0, j = 0; i < g->n && j < p->n;) {
        const ll_entity a = g->v[i], b = p->v[j];
        if (a.end < b.end) i++;
        else if (a.end > b.end) j++;
        else {
            if (a.start == b.start && a.type == b.type) st[a.type].n_correct++;
            i++, j++;
        }
    }
}

/* seqeval's zero_division="warn": a ratio with nothing to divide by is 0.0. */
static double ratio(int64_t num, int64_t den) { return den ? (double)num / (double)den : 0.0; }

/* Same operation order as seqeval (numpy): (2 * p) * r / (p + r), 0 if p + r == 0. */
static double f1_of(double p, double r) {
    const double d = p + r;
    return d == 0 ? 0.0 : 2.0 * p * r / d;
}

static int cmp_type_name(const void *a, const void *b) {
    return strcmp(((const ll_ner_type_stats *)a)->name, ((const ll_ner_type_stats *)b)->name);
}

/* Per-type figures, then micro (pooled counts), macro (plain mean over the
 * types, types seen only in predictions included) and weighted (mean weighted
 * by gold count; all 0 when there is no gold entity, as seqeval returns). The
 * means sum in numpy's pairwise order (np.average), so they are seqeval's to
 * the last bit. Returns LL_ERR_NOMEM when out of memory. */
static int finish_figures(ll_ner_report *r) {
    const size_t k = r->n_types;
    double *v = malloc(7 * (k ? k : 1) * sizeof *v); /* p, r, f1, p*gold, r*gold, f1*gold, gold per type */
    if (!v) return LL_ERR_NOMEM;
    int64_t tp = 0, np = 0;
    r->support = 0;
    for (size_t i = 0; i < k; i++) {
        ll_ner_type_stats *t = &r->types[i];
        t->precision = ratio(t->n_correct, t->n_pred);
        t->recall = ratio(t->n_correct, t->n_gold);
        t->f1 = f1_of(t->precision, t->recall);
        tp += t->n_correct, np += t->n_pred, r->support += t->n_gold;
        const double g = (double)t->n_gold;
        v[i] = t->precision, v[k + i] = t->recall, v[2 * k + i] = t->f1;
        v[3 * k + i] = t->precision * g, v[4 * k + i] = t->recall * g, v[5 * k + i] = t->f1 * g, v[6 * k + i] = g;
    }
    r->micro_p = ratio(tp, np);
    r->micro_r = ratio(tp, r->support);
    r->micro_f1 = f1_of(r->micro_p, r->micro_r);
    const double n = (double)k; /* numpy's mean of no types is NaN */
    r->macro_p = k ? ll_np_sum(v, k) / n : NAN;
    r->macro_r = k ? ll_np_sum(v + k, k) / n : NAN;
    r->macro_f1 = k ? ll_np_sum(v + 2 * k, k) / n : NAN;
    const double w = r->support ? ll_np_sum(v + 6 * k, k) : 0;
    r->weighted_p = r->support ? ll_np_sum(v + 3 * k, k) / w : 0.0;
    r->weighted_r = r->support ? ll_np_sum(v + 4 * k, k) / w : 0.0;
    r->weighted_f1 = r->support ? ll_np_sum(v + 5 * k, k) / w : 0.0;
    r->token_accuracy = r->n_tokens ? (double)r->n_tokens_correct / (double)r->n_tokens : NAN;
    free(v);
    return LL_OK;
}

/* One row per interned type (names copied), sorted by name. */
static int build_types(const ll_strset *types, const ll_entity_list *g, const ll_entity_list *p, ll_ner_report *r) {
    r->n_types = types->n;
    r->types = calloc(types->n ? types->n : 1, sizeof *r->types);
    if (!r->types) return LL_ERR_NOMEM;
    for (size_t i = 0; i < types->n; i++) {
        const char *s = ll_strset_get(types, (int32_t)i);
        if (!(r->types[i].name = malloc(strlen(s) + 1))) return LL_ERR_NOMEM;
        strcpy(r->types[i].name, s);
    }
    count_entities(g, p, r->types); /* indexed by type id: before sorting */
    qsort(r->types, r->n_types, sizeof *r->types, cmp_type_name);
    return LL_OK;
}

/* Word accuracy compares tag strings, as seqeval does, so two ids with the
 * same name count as equal. */
static void count_tokens(const int32_t *gold, const int32_t *pred, int64_t n, const char *const *names,
                         ll_ner_report *r) {
    r->n_tokens = n;
    r->n_tokens_correct = 0;
    for (int64_t i = 0; i < n; i++)
        r->n_tokens_correct += gold[i] == pred[i] || strcmp(names[gold[i]], names[pred[i]]) == 0;
}

int ll_ner_evaluate(const int32_t *gold, const int32_t *pred, const int32_t *sent_len, size_t n_sent,
                    const char *const *names, int n_names, ll_ner_report *out, ll_error *err) {
    if (!out) return ll_fail(err, LL_ERR_ARG, "ner evaluate: NULL report");
    memset(out, 0, sizeof *out);
    int64_t n_words = 0;
    int rc = check_inputs(gold, pred, sent_len, n_sent, names, n_names, &n_words, err);
    if (rc) return rc;
    parsed_tag *parsed = malloc((size_t)n_names * sizeof *parsed);
    ll_strset *types = ll_strset_new();
    ll_entity_list ge = {0}, pe = {0};
    rc = parsed && types ? LL_OK : LL_ERR_NOMEM;
    for (int i = 0; !rc && i < n_names; i++) parse_tag(names[i], &parsed[i]);
    if (!rc) rc = chunk_stream(gold, sent_len, n_sent, parsed, types, &ge);
    if (!rc) rc = chunk_stream(pred, sent_len, n_sent, parsed, types, &pe);
    if (!rc) rc = build_types(types, &ge, &pe, out);
    if (!rc) {
        out->n_sentences = (int64_t)n_sent;
        count_tokens(gold, pred, n_words, names, out);
        rc = finish_figures(out);
    }
    free(parsed);
    ll_strset_free(types);
    ll_entity_list_free(&ge);
    ll_entity_list_free(&pe);
    if (rc) {
        ll_ner_report_free(out);
        return ll_fail(err, rc, "ner evaluate: out of memory");
    }
    return LL_OK;
}

void ll_ner_report_free(ll_ner_report *r) {
    if (!r) return;
    for (size_t i = 0; r->types && i < r->n_types; i++) free(r->types[i].name);
    free(r->types);
    memset(r, 0, sizeof *r);
}

/* ---- output -------------------------------------------------------------- */

/* NaN (a figure seqeval leaves undefined) becomes null. */
static bool add_num(cJSON *o, const char *key, double v) {
    return isnan(v) ? cJSON_AddNullToObject(o, key) != NULL : cJSON_AddNumberToObject(o, key, v) != NULL;
}

static cJSON *type_json(const ll_ner_type_stats *t) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    bool ok = cJSON_AddStringToObject(o, "type", t->name) != NULL;
    ok = ok && add_num(o, "precision", t->precision) && add_num(o, "recall", t->recall) && add_num(o, "f1", t->f1);
    ok = ok && add_num(o, "support", (double)t->n_gold) && add_num(o, "n_pred", (double)t->n_pred);
    ok = ok && add_num(o, "n_correct", (double)t->n_correct);
    if (!ok) cJSON_Delete(o);
    return ok ? o : NULL;
}

cJSON *ll_ner_report_json(const ll_ner_report *r) {
    cJSON *o = cJSON_CreateObject(), *arr = NULL;
    if (!o) return NULL;
    const struct { const char *key; double v; } nums[] = {
        {"n_sentences", (double)r->n_sentences}, {"n_tokens", (double)r->n_tokens},
        {"n_tokens_correct", (double)r->n_tokens_correct}, {"token_accuracy", r->token_accuracy},
        {"support", (double)r->support}, {"micro_precision", r->micro_p}, {"micro_recall", r->micro_r},
        {"micro_f1", r->micro_f1}, {"macro_precision", r->macro_p}, {"macro_recall", r->macro_r},
        {"macro_f1", r->macro_f1}, {"weighted_precision", r->weighted_p}, {"weighted_recall", r->weighted_r},
        {"weighted_f1", r->weighted_f1},
    };
    bool ok = true;
    for (size_t i = 0; ok && i < sizeof nums / sizeof nums[0]; i++) ok = add_num(o, nums[i].key, nums[i].v);
    ok = ok && (arr = cJSON_AddArrayToObject(o, "per_type")) != NULL;
    for (size_t i = 0; ok && i < r->n_types; i++) {
        cJSON *t = type_json(&r->types[i]);
        ok = t && cJSON_AddItemToArray(arr, t);
    }
    if (!ok) cJSON_Delete(o);
    return ok ? o : NULL;
}


static void print_row(FILE *f, const char *name, size_t width, double p, double r, double f1, int64_t support) {
    ll_print_right(f, name, width);
    fprintf(f, "  %9.4f %9.4f %9.4f %9lld\n", p, r, f1, (long long)support);
}

/* Layout of seqeval's StringReporter: names right-aligned to the widest of
 * the type names and "weighted avg", four columns of width 9. */
void ll_ner_report_print(FILE *f, const ll_ner_report *r) {
    size_t width = strlen("weighted avg");
    for (size_t i = 0; i < r->n_types; i++)
        if (ll_text_width(r->types[i].name) > width) width = ll_text_width(r->types[i].name);
    ll_print_right(f, "", width);
    fprintf(f, "  %9s %9s %9s %9s\n\n", "precision", "recall", "f1-score", "support");
    for (size_t i = 0; i < r->n_types; i++) {
        const ll_ner_type_stats *t = &r->types[i];
        print_row(f, t->name, width, t->precision, t->recall, t->f1, t->n_gold);
    }
    fputc('\n', f);
    print_row(f, "micro avg", width, r->micro_p, r->micro_r, r->micro_f1, r->support);
    print_row(f, "macro avg", width, r->macro_p, r->macro_r, r->macro_f1, r->support);
    print_row(f, "weighted avg", width, r->weighted_p, r->weighted_r, r->weighted_f1, r->support);
    fprintf(f, "\ntoken accuracy %.4f (%lld of %lld words, %lld sentences)\n", r->token_accuracy,
            (long long)r->n_tokens_correct, (long long)r->n_tokens, (long long)r->n_sentences);
}
