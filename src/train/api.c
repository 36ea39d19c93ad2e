/* The parts of include/lsllama_train.h that are not a module's own calls:
 * the name lists, accessors of opaque handles, and evaluation and
 * prediction as data (the loops the CLI's eval and predict print from). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/dataset.h"
#include "io/dtype.h"
#include "lsllama_train.h"
#include "model/lora.h"
#include "model/loss.h"
#include "train/classifier.h"
#include "train/metrics.h"
#include "train/seqeval.h"
#include "train/trainer.h"

_Static_assert(LL_MERGE_F32 == (int)LL_DTYPE_F32 && LL_MERGE_F16 == (int)LL_DTYPE_F16 &&
                   LL_MERGE_BF16 == (int)LL_DTYPE_BF16,
               "ll_merge_dtype values are io's dtype ids");

/* ---- names ------------------------------------------------------------------------------------- */

static const char *const task_names[] = {"seq", "token"};
static const char *const mask_names[] = {"causal", "bidirectional"};
static const char *const pool_names[] = {"last", "mean", "max", "first"};
static const char *const metric_names[] = {"accuracy", "macro_f1", "f1", "token_accuracy"};
static const char *const metric_titles[] = {"accuracy", "macro-F1", "entity F1", "token accuracy"};
static const char *const format_names[] = {"auto", "tsv", "csv", "jsonl", "lines", "conll"};
static const char *const dtype_names[] = {"f32", "f16", "bf16"};
#define COUNT(a) ((int)(sizeof(a) / sizeof(a)[0]))

/* Index of name in names[0..n), or LL_ERR_ARG. */
static int find_name(const char *const *names, int n, const char *name, int *out) {
    for (int i = 0; name && i < n; i++)
        if (!strcmp(names[i], name)) {
            *out = i;
            return LL_OK;
        }
    return LL_ERR_ARG;
}

static const char *name_at(const char *const *names, int n, int i) { return i >= 0 && i < n ? names[i] : NULL; }

/* One parse/name pair per enum: the list above is its only spelling. */
#define NAME_PAIR(type, parse, namefn, list)                                                                \
    int parse(const char *name, type *out) {                                                               \
        int i, rc = find_name(list, COUNT(list), name, &i);                                                \
        if (rc == LL_OK) *out = (type)i;                                                                   \
        return rc;                                                                                         \
    }                                                                                                      \
    const char *namefn(type v) { return name_at(list, COUNT(list), (int)v); }

NAME_PAIR(ll_task, ll_task_parse, ll_task_name, task_names)
NAME_PAIR(ll_mask, ll_mask_parse, ll_mask_name, mask_names)
NAME_PAIR(ll_pool, ll_pool_parse, ll_pool_name, pool_names)
NAME_PAIR(ll_metric, ll_metric_parse, ll_metric_name, metric_names)
NAME_PAIR(ll_data_format, ll_data_format_parse, ll_data_format_name, format_names)
NAME_PAIR(ll_merge_dtype, ll_merge_dtype_parse, ll_merge_dtype_name, dtype_names)

const char *ll_metric_title(ll_metric m) { return name_at(metric_titles, COUNT(metric_titles), (int)m); }

int ll_lora_targets_parse(const char *list, unsigned *mask, ll_error *err) {
    static const char valid[] = " (q,k,v,o,gate,up,down, *_proj or all-linear)";
    *mask = 0;
    if (!strcmp(list, "all-linear")) {
        *mask = (1u << LL_LORA_N_TARGETS) - 1;
        return LL_OK;
    }
    for (const char *t = list;; t++) { /* every item checked: none empty or unknown is skipped */
        const size_t len = strcspn(t, ",");
        int found = -1;
        for (int i = 0; i < LL_LORA_N_TARGETS && len; i++) {
            const char *n = ll_lora_target_names[i];
            const size_t short_len = strcspn(n, "_"); /* "q" for "q_proj" */
            if ((len == strlen(n) || len == short_len) && !strncmp(t, n, len)) found = i;
        }
        if (found < 0) {
            *mask = 0;
            if (len) return ll_fail(err, LL_ERR_ARG, "unknown module '%.*s'%s", (int)len, t, valid);
            return ll_fail(err, LL_ERR_ARG, "empty module name in '%s'%s", list, valid);
        }
        *mask |= 1u << found;
        t += len;
        if (!*t) break;
    }
    return LL_OK;
}

#define FULL_VALID " (q,k,v,o,gate,up,down, *_proj, all-linear, norms, embeddings or all)"
_Static_assert(LL_FULL_NORMS == 1u << LL_LORA_N_TARGETS && LL_FULL_EMBEDDINGS == LL_FULL_NORMS << 1,
               "full_targets: the extra bits follow the linear modules");

int ll_full_targets_parse(const char *list, unsigned *mask, ll_error *err) {
    const unsigned linear = (1u << LL_LORA_N_TARGETS) - 1;
    *mask = 0;
    for (const char *t = list;; t++) { /* every item checked, as ll_lora_targets_parse does */
        const size_t len = strcspn(t, ",");
        char item[64];
        snprintf(item, sizeof item, "%.*s", (int)(len < sizeof item - 1 ? len : sizeof item - 1), t);
        unsigned bits = 0;
        if (!strcmp(item, "all")) bits = linear | LL_FULL_NORMS | LL_FULL_EMBEDDINGS;
        else if (!strcmp(item, "norms")) bits = LL_FULL_NORMS;
        else if (!strcmp(item, "embeddings")) bits = LL_FULL_EMBEDDINGS;
        else if (!len || len >= sizeof item - 1 || ll_lora_targets_parse(item, &bits, NULL) != LL_OK) {
            *mask = 0;
            if (!len) return ll_fail(err, LL_ERR_ARG, "empty module name in '%s'%s", list, FULL_VALID);
            return ll_fail(err, LL_ERR_ARG, "unknown module '%.*s'%s", (int)len, t, FULL_VALID);
        }
        *mask |= bits;
        t += len;
        if (!*t) break;
    }
    return LL_OK;
}

/* ---- accessors ------------------------------------------------------------------------------------- */

int ll_labelmap_size(const ll_labelmap *m) { return m->n; }
const char *const *ll_labelmap_names(const ll_labelmap *m) { return (const char *const *)m->names; }
const ll_classifier_config *ll_classifier_get_config(const ll_classifier *c) { return &c->cfg; }
size_t ll_classifier_n_params(const ll_classifier *c) { return c->n_params; }

void ll_dataset_get_info(const ll_dataset *ds, ll_dataset_info *info) {
    *info = (ll_dataset_info){.path = ds->path, .token_task = ds->token_task, .multi_label = ds->multi_label,
                              .has_labels = ds->has_labels, .n_examples = ds->n, .n_skipped = ds->n_skipped,
                              .first_skip = ds->first_skip, .n_truncated = ds->n_truncated,
                              .n_sentences = ds->n_sent, .n_words = ds->n_words, .n_split = ds->n_split,
                              .n_empty_words = ds->n_empty_words, .n_cut_words = ds->n_cut_words};
}

/* ---- evaluation --------------------------------------------------------------------------------------- */

struct ll_eval_report {
    int token_task;
    double mean_loss;
    ll_class_metrics met; /* sequence task */
    ll_ner_report ner;    /* token task */
    char **names;         /* [met.n_classes] label names (sequence task), copied from the map */
};

void ll_eval_report_free(ll_eval_report *r) {
    if (!r) return;
    for (int k = 0; r->names && k < r->met.n_classes; k++) free(r->names[k]);
    free(r->names);
    ll_metrics_free(&r->met);
    ll_ner_report_free(&r->ner);
    free(r);
}

/* Sequence task: metrics over ds with the label names of map copied in. */
static int evaluate_sequences(ll_classifier *c, const ll_dataset *ds, const ll_labelmap *map, size_t batch_tokens,
                              const ll_eval_progress *progress, ll_eval_report *r, ll_error *err) {
    if (!(c->cfg.multi_label ? ll_metrics_init_multi(&r->met, map->n) : ll_metrics_init(&r->met, map->n)) ||
        !(r->names = calloc((size_t)map->n, sizeof *r->names)))
        return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    for (int k = 0; k < map->n; k++)
        if (!(r->names[k] = strdup(map->names[k]))) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    return ll_evaluate_progress(c, ds, batch_tokens, &r->met, &r->mean_loss, progress, err);
}

int ll_classifier_evaluate(ll_classifier *c, const ll_dataset *ds, const ll_labelmap *map, size_t batch_tokens,
                           const ll_eval_progress *progress, ll_eval_report **out, ll_error *err) {
    *out = NULL;
    if (map && map->n != c->cfg.n_labels)
        return ll_fail(err, LL_ERR_SHAPE, "%s: %d labels in the label map, the classifier has %d", ds->path, map->n,
                       c->cfg.n_labels);
    ll_eval_report *r = calloc(1, sizeof *r);
    if (!r) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    r->token_task = c->cfg.token_task;
    const int rc = r->token_task ? ll_evaluate_tokens_progress(c, ds, map, batch_tokens, &r->ner, &r->mean_loss, NULL,
                                                               NULL, NULL, progress, err)
                                 : evaluate_sequences(c, ds, map, batch_tokens, progress, r, err);
    if (rc) {
        ll_eval_report_free(r);
        return rc;
    }
    *out = r;
    return LL_OK;
}

void ll_eval_report_summary(const ll_eval_report *r, ll_eval_summary *s) {
    const ll_class_metrics *m = &r->met;
    const ll_ner_report *e = &r->ner;
    if (r->token_task)
        *s = (ll_eval_summary){.token_task = 1, .n = (int64_t)e->n_sentences, .mean_loss = r->mean_loss,
                               .accuracy = e->token_accuracy, .macro_precision = e->macro_p,
                               .macro_recall = e->macro_r, .macro_f1 = e->macro_f1, .weighted_precision = e->weighted_p,
                               .weighted_recall = e->weighted_r, .weighted_f1 = e->weighted_f1,
                               .micro_precision = e->micro_p, .micro_recall = e->micro_r, .micro_f1 = e->micro_f1,
                               .n_classes = (int)e->n_types};
    else
        *s = (ll_eval_summary){.multi_label = m->multi_label, .n = m->total, .mean_loss = r->mean_loss,
                               .accuracy = m->accuracy, .macro_precision = m->macro_precision,
                               .macro_recall = m->macro_recall, .macro_f1 = m->macro_f1,
                               .weighted_precision = m->weighted_precision, .weighted_recall = m->weighted_recall,
                               .weighted_f1 = m->weighted_f1, .micro_precision = m->micro_precision,
                               .micro_recall = m->micro_recall, .micro_f1 = m->micro_f1, .n_classes = m->n_classes};
}

int ll_eval_report_class(const ll_eval_report *r, int k, ll_eval_class *out, ll_error *err) {
    const int n = r->token_task ? (int)r->ner.n_types : r->met.n_classes;
    if (k < 0 || k >= n) return ll_fail(err, LL_ERR_ARG, "class %d out of range (the report has %d)", k, n);
    if (r->token_task) {
        const ll_ner_type_stats *t = &r->ner.types[k];
        *out = (ll_eval_class){t->name, t->precision, t->recall, t->f1, t->n_gold};
    } else {
        const ll_class_metrics *m = &r->met;
        *out = (ll_eval_class){r->names[k], m->precision[k], m->recall[k], m->f1[k], m->support[k]};
    }
    return LL_OK;
}

const char *ll_eval_report_nonfinite(const ll_eval_report *r) {
    if (r->token_task)
        return !isfinite(r->mean_loss) ? "mean loss"
               : !isfinite(r->ner.micro_f1) || !isfinite(r->ner.token_accuracy) ? "metrics" : NULL;
    const ll_class_metrics *m = &r->met;
    const char *bad = !isfinite(r->mean_loss) ? "mean loss" : !isfinite(m->accuracy) ? "accuracy"
                    : !isfinite(m->macro_precision) || !isfinite(m->macro_recall) || !isfinite(m->macro_f1) ? "macro average"
                    : !isfinite(m->weighted_precision) || !isfinite(m->weighted_recall) || !isfinite(m->weighted_f1)
                        ? "weighted average"
                    : m->multi_label && !(isfinite(m->micro_precision) && isfinite(m->micro_recall) &&
                                          isfinite(m->micro_f1)) ? "micro average"
                    : m->multi_label && !(isfinite(m->samples_precision) && isfinite(m->samples_recall) &&
                                          isfinite(m->samples_f1)) ? "samples average" : NULL;
    for (int k = 0; !bad && k < m->n_classes; k++)
        if (!isfinite(m->precision[k]) || !isfinite(m->recall[k]) || !isfinite(m->f1[k])) bad = "per-class figures";
    return bad;
}

int ll_eval_report_text(const ll_eval_report *r, int json, char **out, ll_error *err) {
    *out = NULL;
    if (r->token_task && json) { /* the report's JSON object, one line */
        cJSON *j = ll_ner_report_json(&r->ner);
        char *text = j ? cJSON_PrintUnformatted(j) : NULL;
        cJSON_Delete(j);
        const size_t n = text ? strlen(text) : 0;
        char *line = text ? malloc(n + 2) : NULL;
        if (line) memcpy(line, text, n), memcpy(line + n, "\n", 2);
        free(text);
        if (!line) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
        *out = line;
        return LL_OK;
    }
    /* the report writers take a FILE: give them one in memory */
    size_t len = 0;
    FILE *f = open_memstream(out, &len);
    if (!f) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    const char *const *names = (const char *const *)r->names;
    if (r->token_task) ll_ner_report_print(f, &r->ner);
    else if (json) ll_metrics_write_json(&r->met, names, f);
    else ll_metrics_write_table(&r->met, names, f);
    if (ferror(f) | fclose(f)) {
        free(*out);
        *out = NULL;
        return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    }
    return LL_OK;
}

/* ---- prediction ---------------------------------------------------------------------------------------- */

int ll_logits_probabilities(const float *z, int K, int multi_label, double *p) {
    if (multi_label) { /* model/loss.h, shared with evaluation */
        ll_sigmoid_row(p, z, (size_t)K);
        return -1;
    }
    return (int)ll_softmax_row(p, z, (size_t)K);
}

/* 1 if all n values are finite. */
static int all_finite(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* One batch of plan: forward, check, report every sequence. */
static int predict_batch(ll_classifier *c, const ll_dataset *ds, const ll_batch_plan *plan, size_t b,
                         ll_batch_buf *buf, double *probs, int *predicted, ll_seq_prediction_fn fn, void *ctx,
                         ll_error *err) {
    const int K = c->cfg.n_labels;
    int rc = ll_batch_fill(buf, ds, plan, b, err);
    if (rc || (rc = ll_classifier_forward(c, &buf->batch, 0, 0, NULL, err))) return rc;
    for (int s = 0; s < buf->batch.n_seqs; s++) /* nan/inf never reach the caller: the input line */
        if (!all_finite(c->logits + (size_t)s * K, (size_t)K))
            return ll_fail(err, LL_ERR_ARG, "%s:%d: non-finite logits (model or adapter weights corrupt?)", ds->path,
                           ds->ex[buf->example_ids[s]].line);
    for (int s = 0; s < buf->batch.n_seqs; s++) {
        const float *z = c->logits + (size_t)s * K;
        const size_t ex = (size_t)buf->example_ids[s];
        if (c->cfg.multi_label) ll_multilabel_predict(predicted, z, (size_t)K);
        const ll_seq_prediction p = {.index = ex, .text = ll_example_text(ds, ex), .n_labels = K,
                                     .label = ll_logits_probabilities(z, K, c->cfg.multi_label, probs), .logits = z,
                                     .probabilities = probs, .predicted = c->cfg.multi_label ? predicted : NULL};
        if ((rc = fn(ctx, &p))) return rc;
    }
    return LL_OK;
}

int ll_classifier_predict(ll_classifier *c, const ll_dataset *ds, size_t batch_tokens,
                          const ll_eval_progress *progress, ll_seq_prediction_fn fn, void *ctx, ll_error *err) {
    if (c->cfg.token_task) return ll_fail(err, LL_ERR_ARG, "a token classifier predicts with ll_classifier_predict_tokens");
    ll_batch_plan plan = {0};
    ll_batch_buf buf = {0};
    const ll_batching_options bo = {.max_batch_tokens = batch_tokens};
    double *probs = malloc(((size_t)c->cfg.n_labels + 1) * sizeof *probs);
    int *predicted = malloc(((size_t)c->cfg.n_labels + 1) * sizeof *predicted);
    int rc = probs && predicted ? LL_OK : ll_fail(err, LL_ERR_NOMEM, "out of memory");
    if (!rc && !(rc = ll_batch_plan_make(&plan, ds, &bo, err)))
        rc = ll_batch_buf_reserve(&buf, plan.max_tokens, plan.max_seqs, c->cfg.n_labels, err);
    size_t done = 0;
    for (size_t b = 0; !rc && b < plan.n_batches; b++) {
        if ((rc = predict_batch(c, ds, &plan, b, &buf, probs, predicted, fn, ctx, err))) break;
        done += (size_t)buf.batch.n_seqs;
        if (progress && progress->fn) progress->fn(progress->ctx, done, ds->n);
    }
    free(probs);
    free(predicted);
    ll_batch_plan_free(&plan);
    ll_batch_buf_free(&buf);
    return rc;
}

/* Per-word predictions of a token task and the buffers one sentence's report needs. */
typedef struct word_predictions {
    int32_t *pred;          /* [n_words] tag id, -1: no token */
    float *score;           /* [n_words] */
    const char **tags;      /* [n_words] of one sentence */
    const char **words;     /* [n_words] of one sentence */
    ll_entity_span *spans;  /* [n_words]: a sentence has at most one entity per word */
    ll_strset *types;
    ll_entity_list ents;
    ll_token_probs tp;      /* every word's tokens */
    int *word_token;        /* [n_words + 1] of one sentence */
} word_predictions;

static void word_predictions_free(word_predictions *w) {
    ll_token_probs_free(&w->tp);
    free(w->word_token);
    free(w->pred), free(w->score), free(w->tags), free(w->words), free(w->spans);
    ll_strset_free(w->types);
    ll_entity_list_free(&w->ents);
}

/* Sentence s of ds as a prediction: its words' tags, and seqeval's chunks of
 * them with offsets and the mean probability of their words' tags. */
static int report_sentence(const ll_dataset *ds, const ll_labelmap *map, size_t s, word_predictions *w,
                           ll_sentence_prediction_fn fn, void *ctx, ll_error *err) {
    const ll_sentence *st = &ds->sent[s];
    const char *text = ll_sentence_text(ds, s);
    for (int i = 0; i < st->n_words; i++) {
        const int32_t p = w->pred[st->word_off + i];
        w->tags[i] = p >= 0 ? map->names[p] : "O"; /* no token, and the tags have no O */
        w->words[i] = ll_word_text(ds, (size_t)(st->word_off + i));
    }
    w->ents.n = 0;
    if (ll_seqeval_entities(w->tags, (size_t)st->n_words, w->types, &w->ents, err) < 0) return err ? err->code : LL_ERR_ARG;
    for (size_t e = 0; e < w->ents.n; e++) {
        const ll_entity *en = &w->ents.v[e];
        const ll_word *first = &ds->words[st->word_off + en->start], *last = &ds->words[st->word_off + en->end - 1];
        double sc = 0;
        for (int i = en->start; i < en->end; i++) sc += w->score[st->word_off + i];
        w->spans[e] = (ll_entity_span){.type = ll_strset_get(w->types, en->type), .start = first->char_start,
                                       .end = last->char_end, .byte_start = first->byte_start,
                                       .byte_end = last->byte_end, .word_start = en->start, .word_end = en->end,
                                       .score = sc / (double)(en->end - en->start)};
    }
    const int32_t base = w->tp.word_tok[st->word_off];
    for (int i = 0; i <= st->n_words; i++) w->word_token[i] = w->tp.word_tok[st->word_off + i] - base;
    const ll_sentence_prediction p = {.index = s, .text = text, .text_len = st->text_len, .n_words = st->n_words,
                                      .words = w->words, .tags = w->tags, .scores = w->score + st->word_off,
                                      .n_entities = w->ents.n, .entities = w->spans, .n_labels = map->n,
                                      .word_token = w->word_token, .token_probs = w->tp.probs + (size_t)base * map->n,
                                      .token_label = w->tp.label + base, .token_start = w->tp.char_start + base,
                                      .token_end = w->tp.char_end + base, .token_byte_start = w->tp.byte_start + base,
                                      .token_byte_end = w->tp.byte_end + base, .token_index = w->tp.index + base,
                                      .token_between = w->tp.between + base};
    return fn(ctx, &p);
}

int ll_classifier_predict_tokens(ll_classifier *c, const ll_dataset *ds, const ll_labelmap *map, size_t batch_tokens,
                                 const ll_eval_progress *progress, ll_sentence_prediction_fn fn, void *ctx,
                                 ll_error *err) {
    if (!c->cfg.token_task) return ll_fail(err, LL_ERR_ARG, "a sequence classifier predicts with ll_classifier_predict");
    const size_t n = ds->n_words + 1;
    word_predictions w = {.pred = malloc(n * sizeof *w.pred), .score = malloc(n * sizeof *w.score),
                          .tags = malloc(n * sizeof *w.tags), .words = malloc(n * sizeof *w.words),
                          .spans = malloc(n * sizeof *w.spans), .types = ll_strset_new(),
                          .word_token = malloc((n + 1) * sizeof *w.word_token)};
    int rc = w.pred && w.score && w.tags && w.words && w.spans && w.types && w.word_token
                 ? LL_OK
                 : ll_fail(err, LL_ERR_NOMEM, "out of memory");
    if (!rc) rc = ll_token_probs_init(&w.tp, ds, (size_t)map->n, err);
    if (!rc)
        rc = ll_evaluate_tokens_progress(c, ds, map, batch_tokens, NULL, NULL, w.pred, w.score, &w.tp, progress, err);
    if (!rc && !all_finite(w.score, ds->n_words)) /* cannot happen with finite logits; never report nan */
        rc = ll_fail(err, LL_ERR_ARG, "%s: non-finite tag scores (model or adapter weights corrupt?)", ds->path);
    for (size_t s = 0; !rc && s < ds->n_sent; s++) rc = report_sentence(ds, map, s, &w, fn, ctx, err);
    word_predictions_free(&w);
    return rc;
}
