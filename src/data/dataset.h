/* Classification data: readers (TSV, CSV, JSON Lines, plain text lines),
 * per-row validation, label maps, tokenization with truncation, and
 * length-bucketed batches packed without padding. See docs/data.md.
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
#include "data/strset.h"

/* ---- loading ------------------------------------------------------------- */

typedef enum ll_data_format {
    LL_DATA_AUTO = 0, /* from the extension: .tsv, .csv, .jsonl/.ndjson/.json, .txt */
    LL_DATA_TSV = 1,
    LL_DATA_CSV = 2,
    LL_DATA_JSONL = 3,
    LL_DATA_LINES = 4, /* one text per non-blank line, no labels (prediction input) */
} ll_data_format;

typedef struct ll_data_options {
    ll_data_format format;
    /* TSV/CSV: LL_HEADER_AUTO (0): a header row is assumed when any column
     * is chosen by name (or by the default names), none when all are indices;
     * LL_HEADER_YES / LL_HEADER_NO say it explicitly. */
    int header;
    /* Comma-separated column list. TSV/CSV: header names, or 0-based indices
     * (a token made only of digits is an index). JSONL: field names. Several
     * text columns are joined with text_join. NULL: "text", else "sentence"
     * (first one present; TSV/CSV need a header for the default). */
    const char *text_columns;
    /* NULL: "label". "" or no_labels = 1: the data has no labels. */
    const char *label_column;
    int no_labels;
    const char *text_join; /* NULL: " " (one space) */
    /* Multi-label: TSV/CSV label fields are split on label_sep (NULL: ",");
     * JSONL array labels make a dataset multi-label on their own. */
    int multi_label;
    const char *label_sep;
    int no_quotes;     /* TSV/CSV: '"' is an ordinary character (files with stray quotes) */
    int strip_text;    /* trim leading/trailing ASCII whitespace of the text (default: keep as is) */
    int skip_invalid;  /* drop bad rows (counted) instead of failing */
} ll_data_options;

enum { LL_HEADER_AUTO = 0, LL_HEADER_YES = 1, LL_HEADER_NO = 2 };

/* All zeros is the default (what this sets): format and header AUTO, text
 * "text"/"sentence", label "label", join " ", label_sep ",". opt may be NULL
 * in the load calls. */
void ll_data_options_default(ll_data_options *opt);

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
    int32_t n_tok_full; /* token count before truncation */
} ll_example;

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
} ll_dataset;

int ll_dataset_load(ll_dataset **out, const char *path, const ll_data_options *opt, ll_error *err);
/* The same from memory; name is used as the file name in messages. */
int ll_dataset_load_memory(ll_dataset **out, const char *data, size_t size, const char *name,
                           const ll_data_options *opt, ll_error *err);
void ll_dataset_free(ll_dataset *ds);

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

/* The sorted label set of a dataset: numerically if every label is an
 * integer ("-3", "0", "12"), else by byte-wise string order. */
int ll_labelmap_build(ll_labelmap **out, const ll_dataset *ds, ll_error *err);
/* From explicit names (id = position); duplicates are an error. */
int ll_labelmap_from_names(ll_labelmap **out, const char *const *names, int n, ll_error *err);
void ll_labelmap_free(ll_labelmap *m);
int ll_labelmap_find(const ll_labelmap *m, const char *s, size_t len); /* id or -1 */
/* {"id2label": {"0": "neg", ...}, "label2id": {"neg": 0, ...}} (transformers'
 * config keys). add_to_json adds both keys to an existing object. */
int ll_labelmap_add_to_json(const ll_labelmap *m, cJSON *obj, ll_error *err);
int ll_labelmap_from_json(ll_labelmap **out, const cJSON *obj, const char *name, ll_error *err);
/* Written atomically (temporary file, fsync, rename). */
int ll_labelmap_save(const ll_labelmap *m, const char *path, ll_error *err);
/* A label-map file or any JSON object holding id2label (e.g. config.json). */
int ll_labelmap_load(ll_labelmap **out, const char *path, ll_error *err);

/* Map every row's raw labels through m. A label absent from m is an error
 * naming file, line and label (or the row is dropped with skip_invalid). */
int ll_dataset_apply_labels(ll_dataset *ds, const ll_labelmap *m, ll_error *err);
/* Examples per label id (counts has m->n entries, as mapped). */
void ll_dataset_label_counts(const ll_dataset *ds, int64_t *counts);

/* ---- tokenization --------------------------------------------------------- */

/* Encode every text (LL_TOK_DEFAULT) and truncate to max_length tokens,
 * keeping the start; special tokens the tokenizer adds (BOS/EOS) are kept at
 * their ends as Hugging Face truncation does. max_length < 1: LL_ERR_ARG.
 * A text with no tokens is a bad row. */
int ll_dataset_tokenize(ll_dataset *ds, ll_tokenizer *tok, int max_length, ll_error *err);

/* ---- batching ------------------------------------------------------------- */

/* splitmix64: the data-order PRNG (state is one uint64). */
static inline uint64_t ll_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

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
 * targets (multi-label [n_seqs, n_labels] 0/1), example ids. */
typedef struct ll_batch_buf {
    ll_batch batch;     /* points into tokens/seq_start */
    size_t n_tokens;
    int32_t *tokens, *seq_start, *labels, *example_ids;
    float *targets;
    size_t cap_tokens, cap_seqs, cap_targets;
} ll_batch_buf;

/* Reserve for batches up to max_tokens / max_seqs (optional: fill grows as needed). */
int ll_batch_buf_reserve(ll_batch_buf *b, size_t max_tokens, size_t max_seqs, int n_labels, ll_error *err);
/* Fill batch i of plan. No allocation once reserved for the plan's maxima. */
int ll_batch_fill(ll_batch_buf *b, const ll_dataset *ds, const ll_batch_plan *plan, size_t i, ll_error *err);
void ll_batch_buf_free(ll_batch_buf *b);

/* Internal: a bad row of ds at line: with skip_invalid count it and return 0
 * (the caller drops the row), else fail with "file:line: message". */
int ll_data_bad_row(ll_dataset *ds, ll_error *err, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
