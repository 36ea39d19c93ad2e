/* Entity-level NER metrics as the Python package seqeval (1.2.2) computes them
 * by default (mode=None: conlleval-compatible lenient chunking, prefixes
 * B I E S O, zero_division="warn" which scores 0.0), plus word-level tag
 * accuracy (seqeval's accuracy_score).
 *
 * Where seqeval gives no number (macro average over zero entity types: numpy
 * mean of an empty array; accuracy over zero words: ZeroDivisionError) the
 * report holds NaN and the JSON null. */
#ifndef LL_TRAIN_SEQEVAL_H
#define LL_TRAIN_SEQEVAL_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>

#include "data/strset.h"
#include "lsllama.h"

/* One entity: words [start, end) of a sentence-flattened sequence, type index into names. */
typedef struct ll_entity {
    int32_t type;
    int32_t start, end;
} ll_entity;

/* A growable array of entities. Zero-initialise; free with ll_entity_list_free. */
typedef struct ll_entity_list {
    ll_entity *v;
    size_t n, cap;
} ll_entity_list;

void ll_entity_list_free(ll_entity_list *l);

/* Chunk one sentence's tags (seqeval's get_entities on a flat list) and append
 * its entities to *out in order of their end; positions are word indices in
 * the sentence, end exclusive. A tag's prefix is its first character, its
 * type what follows the first '-' after it (all of the rest when there is no
 * '-'), "_" when that is empty: "B" and "I-" have type "_", "B-PER-X" has
 * "PER-X". Types are interned into *types (ids as ll_entity.type). Returns the
 * number of entities appended, or a negative ll_status (NULL or empty tag:
 * seqeval fails on those too) with *out unchanged. */
int ll_seqeval_entities(const char *const *tags, size_t n, ll_strset *types, ll_entity_list *out, ll_error *err);

typedef struct ll_ner_type_stats {
    char *name;
    int64_t n_gold, n_pred, n_correct;
    double precision, recall, f1;
} ll_ner_type_stats;

typedef struct ll_ner_report {
    size_t n_types;
    ll_ner_type_stats *types; /* sorted by name (bytewise = code point order), as seqeval's report */
    double micro_p, micro_r, micro_f1, macro_p, macro_r, macro_f1, weighted_p, weighted_r, weighted_f1;
    int64_t support; /* gold entities */
    int64_t n_tokens, n_tokens_correct;
    double token_accuracy; /* word-level tag accuracy (seqeval accuracy_score) */
    int64_t n_sentences;
} ll_ner_report;

/* gold/pred: tag ids per word, all sentences concatenated; sent_len[s] words in
 * sentence s; names[id] = tag string. Entities never cross sentence boundaries
 * (seqeval joins sentences with an "O"; its one exception, a chunk opened by a
 * prefix other than B I E S O or '.', is reproduced, see seqeval.c). Tokens
 * count as correct when their tag strings are equal. Fills *out (free with
 * ll_ner_report_free); on error *out is zeroed. */
int ll_ner_evaluate(const int32_t *gold, const int32_t *pred, const int32_t *sent_len, size_t n_sent,
                    const char *const *names, int n_names, ll_ner_report *out, ll_error *err);
void ll_ner_report_free(ll_ner_report *r);

/* {"n_sentences", "n_tokens", "n_tokens_correct", "token_accuracy", "support",
 *  "micro_precision", ..., "weighted_f1", "per_type": [{"type", "precision",
 *  "recall", "f1", "support", "n_pred", "n_correct"}]}; NULL when out of memory. */
cJSON *ll_ner_report_json(const ll_ner_report *r);

/* seqeval's classification_report(digits=4) text, then a token accuracy line. */
void ll_ner_report_print(FILE *f, const ll_ner_report *r);

#endif
