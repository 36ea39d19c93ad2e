/* /ner's entities as transformers' TokenClassificationPipeline aggregates
 * token scores (pipelines/token_classification.py: aggregate, aggregate_word,
 * group_entities, get_tag), from lsllama's per-token probabilities. Words are
 * the whitespace-separated words lsllama tags (what the pipeline's fallback
 * word heuristic finds in space-separated text: a token starts a word when a
 * space precedes it; a lone space piece, which the heuristic makes a word of
 * its own, is part of no word here, as in training). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serve_internal.h"

int ner_strategy_parse(const char *name) {
    static const char *const names[] = {[AGG_NONE] = "none", [AGG_SIMPLE] = "simple", [AGG_FIRST] = "first",
                                        [AGG_AVERAGE] = "average", [AGG_MAX] = "max"};
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (!strcasecmp(name, names[i])) return i;
    return -1;
}

typedef struct ents_out {
    ner_entity **v;
    size_t *n, *cap;
} ents_out;

static ner_entity *push(ents_out *o) {
    if (*o->n == *o->cap) {
        const size_t nc = *o->cap ? *o->cap * 2 : 32;
        ner_entity *q = realloc(*o->v, nc * sizeof *q);
        if (!q) return NULL;
        *o->v = q, *o->cap = nc;
    }
    ner_entity *e = &(*o->v)[(*o->n)++];
    memset(e, 0, sizeof *e);
    return e;
}

/* get_tag: "B-X" -> (B, X), "I-X" -> (I, X), anything else -> (I, name). */
static void get_tag(const char *name, char *bi, const char **tag) {
    if (!strncmp(name, "B-", 2)) *bi = 'B', *tag = name + 2;
    else if (!strncmp(name, "I-", 2)) *bi = 'I', *tag = name + 2;
    else *bi = 'I', *tag = name;
}

/* group_sub_entities over items[a, b): the first one's label after its "-" (if any), the mean score, the span
 * from the first's start to the last's end. */
static int group(ents_out *o, const ner_entity *items, size_t a, size_t b) {
    ner_entity *g = push(o);
    if (!g) return -1;
    const char *dash = strchr(items[a].label, '-');
    snprintf(g->label, sizeof g->label, "%s", dash ? dash + 1 : items[a].label);
    double sum = 0;
    for (size_t i = a; i < b; i++) sum += items[i].score;
    g->score = sum / (double)(b - a);
    g->start = items[a].start, g->byte_start = items[a].byte_start;
    g->end = items[b - 1].end, g->byte_end = items[b - 1].byte_end;
    g->index = -1;
    g->group = 1;
    return 0;
}

/* group_entities: consecutive items of one tag join unless the next one begins with B-. */
static int group_entities(ents_out *o, const ner_entity *items, size_t n) {
    size_t a = 0;
    for (size_t i = 1; i <= n; i++) {
        if (i < n) {
            char bi, last_bi;
            const char *tag, *last_tag;
            get_tag(items[i].label, &bi, &tag);
            get_tag(items[i - 1].label, &last_bi, &last_tag);
            if (!strcmp(tag, last_tag) && bi != 'B') continue;
        }
        if (n && group(o, items, a, i)) return -1;
        a = i;
    }
    return 0;
}

int ner_aggregate(const ll_sentence_prediction *p, const char *const *names, int strategy, ner_entity **v, size_t *n,
                  size_t *cap) {
    ents_out out = {v, n, cap};
    const int K = p->n_labels;
    const int T = p->word_token[p->n_words];
    /* the items before grouping: one per token (none, simple) or per word (first, average, max) */
    ner_entity *items = malloc(((size_t)(T > p->n_words ? T : p->n_words) + 1) * sizeof *items);
    double *mean = malloc(((size_t)K + 1) * sizeof *mean);
    if (!items || !mean) {
        free(items), free(mean);
        return -1;
    }
    size_t m = 0;
    if (strategy == AGG_NONE || strategy == AGG_SIMPLE) {
        for (int t = 0; t < T; t++) {
            ner_entity *e = &items[m++];
            memset(e, 0, sizeof *e);
            snprintf(e->label, sizeof e->label, "%s", names[p->token_label[t]]);
            e->score = p->token_probs[(size_t)t * K + p->token_label[t]];
            e->start = p->token_start[t], e->end = p->token_end[t];
            e->byte_start = p->token_byte_start[t], e->byte_end = p->token_byte_end[t];
            e->index = p->token_index[t];
        }
    } else {
        for (int w = 0; w < p->n_words; w++) {
            int a = p->word_token[w];
            const int b = p->word_token[w + 1];
            while (a < b && p->token_between[a]) a++; /* tokens of no word are no word's part */
            if (a == b) continue; /* no token: the pipeline never sees the word */
            int label, from = a;
            double score;
            if (strategy == AGG_FIRST) {
                label = p->token_label[a];
                score = p->token_probs[(size_t)a * K + label];
            } else if (strategy == AGG_MAX) { /* the token whose best score is highest (the first of equals) */
                for (int t = a + 1; t < b; t++)
                    if (p->token_probs[(size_t)t * K + p->token_label[t]] >
                        p->token_probs[(size_t)from * K + p->token_label[from]])
                        from = t;
                label = p->token_label[from];
                score = p->token_probs[(size_t)from * K + label];
            } else { /* average: the mean of the tokens' score vectors, its argmax */
                for (int k = 0; k < K; k++) {
                    double s = 0;
                    for (int t = a; t < b; t++) s += p->token_probs[(size_t)t * K + k];
                    mean[k] = s / (double)(b - a);
                }
                label = 0;
                for (int k = 1; k < K; k++)
                    if (mean[k] > mean[label]) label = k;
                score = mean[label];
            }
            ner_entity *e = &items[m++];
            memset(e, 0, sizeof *e);
            snprintf(e->label, sizeof e->label, "%s", names[label]);
            e->score = score;
            e->start = p->token_start[a], e->end = p->token_end[b - 1];
            e->byte_start = p->token_byte_start[a], e->byte_end = p->token_byte_end[b - 1];
            e->index = -1;
        }
    }
    int rc = 0;
    if (strategy == AGG_NONE) {
        for (size_t i = 0; i < m && !rc; i++) {
            ner_entity *e = push(&out);
            if (!e) rc = -1;
            else *e = items[i];
        }
    } else {
        rc = group_entities(&out, items, m);
    }
    free(items);
    free(mean);
    return rc;
}
