/* Classification data: readers (TSV, CSV, JSON Lines, plain text lines),
 * per-row validation, label maps, tokenization with truncation, and
 * length-bucketed batches packed without padding. Token classification (NER)
 * uses the same dataset, plan and batches: its examples are token windows of
 * sentences (see "token classification" below). See docs/data.md.
 *
 * Flow:
 *   ll_dataset_load(&train, "train.tsv", &opt, &err);     rows: text + raw labels
 *   ll_labelmap_build(&map, train, &err);                 sorted label set
 *   ll_dataset_apply_labels(train, map, &err);            raw labels -> ids
 *   ll_dataset_tokenize(train, tok, max_length, &err);    ids, truncated
 *   ll_batch_plan_make(&plan, train, &bopt, &err);        epoch order + batch bounds
 *   for i in batches: ll_batch_fill(&buf, train, &plan, i, &err) -> buf.batch, buf.labels
 *
 * Every error names the file and the 1-based physical line where the row
 * starts. With opt.skip_invalid, bad rows are dropped instead (at load, at
 * label mapping and at tokenization) and counted in ds->n_skipped.
 * Nothing here prints or exits. */
#ifndef LL_DATA_DATASET_H
#define LL_DATA_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lsllama.h"
#include "lsllama_tokenizer.h"
#include "lsllama_train.h"
#include "data/strset.h"

/* ---- loading ------------------------------------------------------------- */

/* ll_data_format, ll_data_options and the public calls: include/lsllama_train.h. */

/* One example. Offsets index the dataset's arenas. */
typedef struct ll_example {
    size_t text_off;   /* ds->text + text_off, NUL-terminated */
    uint32_t text_len;
    int32_t line;      /* 1-based physical line where the row starts */
    uint32_t lab_off;  /* ds->raw_labs / ds->labs [lab_off .. lab_off + n_lab) */
    uint32_t n_lab;
    int32_t label;     /* single-label: the label id after ll_dataset_apply_labels; -1 before/unlabelled */
    size_t tok_off;    /* ds->tokens + tok_off, n_tok ids (after ll_dataset_tokenize) */
    int32_t n_tok;
    int32_t n_tok_full; /* token count before truncation (token tasks: of the whole sentence) */
    /* Token tasks (-1 / 0 otherwise): the window's sentence, the words with
     * tokens in it (owned + context) and the words it owns, as global word
     * indices [lo, hi). Only owned words carry labels in the window, and a
     * word's prediction is read from its owner window. */
    int32_t sent;
    int32_t word_lo, word_hi;
    int32_t own_lo, own_hi;
} ll_example;

/* Token tasks: one sentence (a CoNLL block, a JSONL row, a text line). */
typedef struct ll_sentence {
    size_t text_off;    /* ds->text + text_off: the words joined by single spaces (the text the
                           tokenizer sees); for LL_DATA_LINES the original line */
    uint32_t text_len;
    int32_t line;       /* 1-based line of its first word */
    int32_t word_off;   /* ds->words[word_off .. word_off + n_words) */
    int32_t n_words;    /* >= 1 */
    int32_t ex_off, n_ex; /* its windows ds->ex[ex_off .. ex_off + n_ex) */
    int32_t n_tok;      /* tokens of the whole sentence (after tokenize) */
} ll_sentence;

/* Token tasks: one word. */
typedef struct ll_word {
    size_t text_off;    /* ds->text + text_off, NUL-terminated */
    uint32_t len;       /* bytes */
    int32_t line;       /* 1-based line (CoNLL: the word's own line) */
    int32_t sent;       /* sentence index */
    int32_t raw_tag;    /* id in ds->raw of the tag string as read; -1 unlabelled */
    int32_t tag;        /* label-map id after ll_dataset_apply_labels; -1 before / unlabelled */
    /* span in the sentence text: code points (a Python str index) and bytes */
    int32_t char_start, char_end;
    int32_t byte_start, byte_end;
    /* after tokenize */
    int32_t n_tok;      /* its sub-tokens in the sentence encoding (0: the word encodes to nothing) */
    int32_t owner;      /* the example (window) that owns it */
    int32_t first;      /* position of its first token inside the owner window; -1 if it has none */
} ll_word;

typedef struct ll_dataset {
    char *path;
    ll_data_format format;
    int skip_invalid;
    int multi_label;   /* rows may hold several labels */
    int has_labels;
    size_t n;          /* examples kept */
    ll_example *ex;
    size_t ex_cap;
    size_t n_skipped;  /* bad rows dropped (skip_invalid), all stages together */
    char first_skip[512]; /* the first dropped row's message ("file:line: ..."), "" if none */
    size_t n_truncated;   /* examples cut to max_length */
    /* text arena */
    char *text;
    size_t text_len, text_cap;
    /* labels of every row, flattened (see ll_example.lab_off): raw_labs are
     * ids in `raw` (the label strings of this file), labs the label-map ids
     * (after ll_dataset_apply_labels) */
    int32_t *raw_labs, *labs;
    size_t labs_len, labs_cap;
    ll_strset *raw;
    int mapped;
    int n_labels;      /* label-map size once mapped */
    /* tokens of every example (after tokenize) */
    int32_t *tokens;
    size_t tokens_len, tokens_cap;
    int tokenized;
    int max_length;
    /* token tasks (ll_token_dataset_load): token_task = 1; ex[] are windows */
    int token_task;
    ll_sentence *sent;
    size_t n_sent, sent_cap;
    ll_word *words;
    size_t n_words, words_cap;
    /* parallel to tokens, tokens_len entries each (after tokenize): */
    int32_t *tok_labels; /* label id of the token, or LL_IGNORE_LABEL (-100): not in the loss */
    int32_t *tok_words;  /* global index of the word the token belongs to; -1: a special token (BOS/EOS);
                            LL_TOKEN_BETWEEN: a text token of no word (a lone space piece before a word) */
    /* the token's span in its sentence's text (code points, bytes), within its word's span (between words:
     * empty, at the next word's start; special tokens: 0, 0) */
    int32_t *tok_char_start, *tok_char_end, *tok_byte_start, *tok_byte_end;
    int32_t *tok_index;  /* the token's position in its whole sentence's encoding (special tokens counted) */
    size_t tok_aux_cap;
    int o_label;         /* id of "O" once mapped (-1 if the map has none) */
    size_t n_empty_words; /* words that encode to no token (predicted "O") */
    size_t n_cut_words;   /* words longer than a window: sub-tokens after the window's room cut */
    size_t n_split;       /* sentences split into several windows */
} ll_dataset;

/* tok_words value of a text token that belongs to no word. */
#define LL_TOKEN_BETWEEN (-2)

/* tok_labels / batch token_labels value of a token outside the loss (PyTorch's ignore_index). */
#define LL_IGNORE_LABEL (-100)


static inline const char *ll_example_text(const ll_dataset *ds, size_t i) { return ds->text + ds->ex[i].text_off; }
static inline const int32_t *ll_example_tokens(const ll_dataset *ds, size_t i) {
    return ds->tokens + ds->ex[i].tok_off;
}
/* Raw label string k of example i before or after mapping (NULL if none). */
const char *ll_example_raw_label(const ll_dataset *ds, size_t i, size_t k);

/* ---- label map ----------------------------------------------------------- */

typedef struct ll_labelmap {
    int n;
    char **names;          /* id -> label string */
    ll_strset *set;        /* label string -> id */
} ll_labelmap;

int ll_labelmap_find(const ll_labelmap *m, const char *s, size_t len); /* id or -1 */
/* {"id2label": {"0": "neg", ...}, "label2id": {"neg": 0, ...}} (transformers'
 * config keys). add_to_json adds both keys to an existing object. */
int ll_labelmap_add_to_json(const ll_labelmap *m, cJSON *obj, ll_error *err);
int ll_labelmap_from_json(ll_labelmap **out, const cJSON *obj, const char *name, ll_error *err);
/* Written atomically (temporary file, fsync, rename). */
int ll_labelmap_save(const ll_labelmap *m, const char *path, ll_error *err);
/* A label-map file or any JSON object holding id2label (e.g. config.json). */
int ll_labelmap_load(ll_labelmap **out, const char *path, ll_error *err);

/* Examples per label id (counts has m->n entries, as mapped); token tasks: words per tag. */
void ll_dataset_label_counts(const ll_dataset *ds, int64_t *counts);

/* ---- tokenization --------------------------------------------------------- */

/* ll_dataset_tokenize: include/lsllama_train.h (LL_TOK_DEFAULT encoding, start kept on truncation;
 * max_length < 1: LL_ERR_ARG; a text with no tokens is a bad row). */

/* ---- batching ------------------------------------------------------------- */

typedef struct ll_batching_options {
    size_t max_batch_tokens; /* token budget per batch (> 0) */
    size_t max_batch_seqs;   /* 0: no limit */
    int shuffle;             /* 0: file order (evaluation) */
    uint64_t seed, epoch;    /* the order is a function of (seed, epoch) */
    size_t bucket_batches;   /* sort window = bucket_batches x typical batch size; 0: 100 */
} ll_batching_options;

/* One epoch's batches: batch b holds the examples order[bounds[b] .. bounds[b+1]). */
typedef struct ll_batch_plan {
    int32_t *order;     /* n_examples indices, each exactly once */
    int32_t *bounds;    /* n_batches + 1 */
    size_t n_examples, n_batches;
    size_t max_tokens, max_seqs; /* the largest batch (to plan buffers) */
    uint64_t hash;      /* FNV-1a of order + bounds: store it with a checkpoint to check a resume */
} ll_batch_plan;

int ll_batch_plan_make(ll_batch_plan *plan, const ll_dataset *ds, const ll_batching_options *opt, ll_error *err);
void ll_batch_plan_free(ll_batch_plan *plan);

/* Reusable packed-batch buffers: tokens, seq_start, labels (single-label),
 * targets (multi-label [n_seqs, n_labels] 0/1), example ids, token_labels
 * (one per packed token: a token task's label id or LL_IGNORE_LABEL; all
 * LL_IGNORE_LABEL for other datasets). */
typedef struct ll_batch_buf {
    ll_batch batch;     /* points into tokens/seq_start */
    size_t n_tokens;
    int32_t *tokens, *seq_start, *labels, *example_ids;
    int32_t *token_labels; /* cap_tokens entries */
    float *targets;
    size_t cap_tokens, cap_seqs, cap_targets;
} ll_batch_buf;

/* Reserve for batches up to max_tokens / max_seqs (optional: fill grows as needed). */
int ll_batch_buf_reserve(ll_batch_buf *b, size_t max_tokens, size_t max_seqs, int n_labels, ll_error *err);
/* Fill batch i of plan. No allocation once reserved for the plan's maxima. */
int ll_batch_fill(ll_batch_buf *b, const ll_dataset *ds, const ll_batch_plan *plan, size_t i, ll_error *err);
void ll_batch_buf_free(ll_batch_buf *b);

/* ---- token classification (NER) ---------------------------------------------
 *
 * A token-task dataset is an ll_dataset whose examples are token windows of
 * sentences; plans and batches work on them unchanged.
 *
 *   ll_token_dataset_load(&train, "train.txt", &topt, &err);  sentences, words, raw tags
 *   ll_labelmap_build(&map, train, &err);                     the tag set
 *   ll_dataset_apply_labels(train, map, &err);                tags -> ids (dev/test: the train map)
 *   ll_token_dataset_tokenize(train, tok, max_length, NULL, &err);  windows, tok_labels, tok_words
 *   ll_batch_plan_make / ll_batch_fill as above: buf.token_labels per packed token
 *   forward -> logits [n_tokens, n_labels];
 *   ll_token_collect_batch(ds, &buf, logits, map, pred, score, &err);  per-word predictions
 *
 * Windows: a sentence of at most max_length tokens is one window. A longer
 * one is cut at word boundaries into consecutive chunks of words (each at
 * most own_tokens tokens, default half the window's room); each chunk is the
 * owned core of one window, which then takes context words on both sides
 * (the side with less context first) while it fits max_length. Every word is
 * owned by exactly one window; special tokens the tokenizer adds (BOS/EOS)
 * are at both ends of every window. See docs/data.md. */

/* ll_token_data_options, the token loaders and ll_tag_names_load: include/lsllama_train.h. */

/* ll_token_dataset_tokenize (include/lsllama_train.h) encodes every sentence with
 * ll_tokenizer_align_words (words joined by single spaces, LL_TOK_DEFAULT) and cuts
 * it into windows of at most max_length tokens. max_length must leave room for one word token
 * next to the special tokens the tokenizer adds, else LL_ERR_ARG. A word
 * longer than a window's room keeps its first tokens (counted in
 * n_cut_words); a word with no token is counted in n_empty_words. A sentence
 * that encodes to no token at all is a bad row. Rebuilds ds->ex. */

/* Predictions of the words example (window) ex owns, from its logits
 * [ex.n_tok, map->n] (row-major, the window's tokens in order): pred[w] =
 * argmax at the word's first token (the lowest id on ties), score[w] = its
 * softmax probability, for global word indices w in [own_lo, own_hi). A word
 * with no token gets the id of "O" (-1 if the map has none) and score 0. */
int ll_token_collect(const ll_dataset *ds, size_t ex, const float *logits, const ll_labelmap *map, int32_t *pred,
                     float *score, ll_error *err);
/* The same for every sequence of a filled batch: logits [b->n_tokens, map->n]. */
int ll_token_collect_batch(const ll_dataset *ds, const ll_batch_buf *b, const float *logits, const ll_labelmap *map,
                           int32_t *pred, float *score, ll_error *err);

/* Every word's tokens in the window that owns it, with their label probabilities (what the transformers
 * pipeline's aggregation strategies read): word w's rows are word_tok[w] .. word_tok[w + 1): the tokens
 * between the previous word and w (between[r] = 1), then w's own (none for a word without tokens; a word
 * longer than a window keeps the tokens its window holds). */
typedef struct ll_token_probs {
    size_t K;
    int32_t *word_tok;  /* [n_words + 1] */
    float *probs;       /* [word_tok[n_words], K]: softmax in double (model/loss.h), rounded to float */
    int32_t *label;     /* argmax of the token's logits (the lowest id on ties) */
    int32_t *char_start, *char_end, *byte_start, *byte_end; /* the token's span in its sentence text */
    int32_t *index;     /* its position in the sentence's encoding (special tokens counted) */
    unsigned char *between; /* 1: a token of no word, before word w */
    double *row;        /* [K] scratch */
} ll_token_probs;

/* Plan tp for tokenized ds and K labels (rows counted per word). */
int ll_token_probs_init(ll_token_probs *tp, const ll_dataset *ds, size_t K, ll_error *err);
void ll_token_probs_free(ll_token_probs *tp);
/* The rows of the words each window of a filled batch owns, from its logits [b->n_tokens, K]. */
void ll_token_probs_collect_batch(ll_token_probs *tp, const ll_dataset *ds, const ll_batch_buf *b,
                                  const float *logits);

static inline const char *ll_word_text(const ll_dataset *ds, size_t w) { return ds->text + ds->words[w].text_off; }
static inline const char *ll_sentence_text(const ll_dataset *ds, size_t s) { return ds->text + ds->sent[s].text_off; }
/* The tag string of word w as read (NULL if unlabelled). */
const char *ll_word_raw_tag(const ll_dataset *ds, size_t w);

/* Internal (token_data.c): the token-task halves of apply_labels and tokenize. */
int ll_token_apply_labels(ll_dataset *ds, const ll_labelmap *m, ll_error *err);

/* Internal: a printable excerpt of s[0..n) for messages, in buf (control
 * bytes escaped as \xNN, cut with "..." to fit cap). */
const char *ll_data_excerpt(const char *s, size_t n, char *buf, size_t cap);

/* Internal: the offset of the first NUL byte in s[0..n) (json: or of a
 * "\u0000" escape, which cJSON would decode into one and so cut the string),
 * or n if there is none. A NUL would silently cut a text or label. */
size_t ll_data_find_nul(const char *s, size_t n, int json);

/* Internal: a bad row of ds at line: with skip_invalid count it and return 0
 * (the caller drops the row), else fail with "file:line: message". */
int ll_data_bad_row(ll_dataset *ds, ll_error *err, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
