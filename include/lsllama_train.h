/* lsllama training API: datasets, classifiers, LoRA training, evaluation,
 * prediction, PEFT adapters and merged Hugging Face folders.
 *
 * Flow (examples/train_classify.c is a complete program):
 *   ll_model_load(&m, ...); ll_tokenizer_load(&tok, ...);            lsllama.h, lsllama_tokenizer.h
 *   ll_dataset_load(&train, "train.tsv", &data_opt, &err);          rows: text + raw labels
 *   ll_labelmap_build(&map, train, &err);                           sorted label set
 *   ll_dataset_apply_labels(train, map, &err);                      raw labels -> ids
 *   ll_dataset_tokenize(train, tok, 256, &err);                     token ids, truncated
 *   ll_classifier_create(&c, m, &cls_cfg, seed, &err);              LoRA + score head on the frozen base
 *   ll_train(c, train, dev, &train_opt, &res, &err);                writes out_dir/best, final, log.jsonl
 *   ll_classifier_evaluate(c, dev, map, 2048, NULL, &report, &err); metrics as data
 *   ll_classifier_predict(c, ds, 2048, NULL, on_prediction, ctx, &err);
 *   ll_adapter_load("out/best", m, NULL, &c2, &info, &err);         a saved (or PEFT-written) adapter
 *
 * Conventions (as lsllama.h): every fallible call returns 0 (LL_OK) or a
 * negative ll_status and fills err (may be NULL) with a message naming the
 * file, line, key or option value at fault; the library never prints or
 * exits. Handles are opaque; the caller frees what it creates or loads with
 * the matching *_free (NULL is accepted). Strings handed in are copied or
 * only read during the call unless a field says "borrowed".
 *
 * Threads: calls on different handles may run concurrently. One classifier
 * (and the model under it) is used by one thread at a time: training,
 * evaluation and prediction write its activation buffers and the model's
 * workspace. A dataset, once tokenized, and a label map are read-only and may
 * be shared by concurrent evaluations. */
#ifndef LSLLAMA_TRAIN_H
#define LSLLAMA_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "lsllama.h"
#include "lsllama_tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#pragma GCC visibility push(default) /* exported from liblsllama.so (see lsllama.h) */
#endif

/* ---- names: one list each, shared by the CLI, the adapter files and callers --------------------
 * *_parse returns 0 and sets *out, or LL_ERR_ARG (out unchanged) for a name
 * not in the list; *_name returns the canonical name, NULL out of range. */

typedef enum ll_task { LL_TASK_SEQ = 0, LL_TASK_TOKEN = 1 } ll_task; /* "seq", "token" */
/* ll_pool and ll_mask, with their parse/name pairs: include/lsllama.h */

/* Dev metric that picks the best adapter: sequence tasks accuracy or
 * macro-F1; token tasks entity-level micro F1 (seqeval's default) or token
 * accuracy. Names "accuracy", "macro_f1", "f1", "token_accuracy". */
typedef enum ll_metric {
    LL_METRIC_TASK_DEFAULT = -1, /* ll_train_options' default: accuracy (sequence), entity F1 (token) */
    LL_METRIC_ACCURACY = 0,
    LL_METRIC_MACRO_F1 = 1,
    LL_METRIC_ENTITY_F1 = 2,
    LL_METRIC_TOKEN_ACCURACY = 3,
} ll_metric;

typedef enum ll_data_format {
    LL_DATA_AUTO = 0,  /* "auto": from the extension: .tsv, .csv, .jsonl/.ndjson/.json, .txt */
    LL_DATA_TSV = 1,   /* "tsv" */
    LL_DATA_CSV = 2,   /* "csv" */
    LL_DATA_JSONL = 3, /* "jsonl" */
    LL_DATA_LINES = 4, /* "lines": one text per non-blank line, no labels (prediction input) */
    LL_DATA_CONLL = 5, /* "conll": token tasks only: one word per line, columns, blank line between sentences */
} ll_data_format;

/* Merged-model weight types (the values of io's LL_DTYPE_F32/F16/BF16). Names "f32", "f16", "bf16". */
/* LL_MERGE_DEFAULT: BF16 when the base holds block-quantized matrices
 * (Q4_K, Q8_0, ...: their values are written exactly only by f32, and bf16
 * halves the size) and LoRA adapted it, else F32 (a fully fine-tuned model's
 * trained weights are f32). */
typedef enum ll_merge_dtype { LL_MERGE_DEFAULT = -1, LL_MERGE_F32 = 0, LL_MERGE_F16 = 1, LL_MERGE_BF16 = 2 } ll_merge_dtype;

int ll_task_parse(const char *name, ll_task *out);
const char *ll_task_name(ll_task t);
int ll_metric_parse(const char *name, ll_metric *out);
const char *ll_metric_name(ll_metric m);
/* For reports: "accuracy", "macro-F1", "entity F1", "token accuracy". */
const char *ll_metric_title(ll_metric m);
int ll_data_format_parse(const char *name, ll_data_format *out); /* "auto" included */
const char *ll_data_format_name(ll_data_format f);
int ll_merge_dtype_parse(const char *name, ll_merge_dtype *out);
const char *ll_merge_dtype_name(ll_merge_dtype d);

/* LoRA target modules: a comma-separated list of q,k,v,o,gate,up,down (or
 * their PEFT names q_proj, ..., down_proj), or "all-linear". *mask gets bit i
 * per module in that order. An empty or unknown item is LL_ERR_ARG with a
 * message naming it (and listing the valid names). */
int ll_lora_targets_parse(const char *list, unsigned *mask, ll_error *err);

/* ---- datasets ----------------------------------------------------------------------------------- */

typedef struct ll_dataset ll_dataset;   /* examples (sequence task) or sentences cut into token windows */
typedef struct ll_labelmap ll_labelmap; /* label id <-> label string */

/* Header rows of TSV/CSV (ll_data_options.header). */
enum { LL_HEADER_AUTO = 0, LL_HEADER_YES = 1, LL_HEADER_NO = 2 };

/* Sequence-task files. */
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

/* All zeros is the default (what this sets): format and header AUTO, text
 * "text"/"sentence", label "label", join " ", label_sep ",". opt may be NULL
 * in the load calls. */
void ll_data_options_default(ll_data_options *opt);

/* Load a file, or (load_memory) size bytes of data named name in messages.
 * Errors name the file and the 1-based line where the row starts. */
int ll_dataset_load(ll_dataset **out, const char *path, const ll_data_options *opt, ll_error *err);
int ll_dataset_load_memory(ll_dataset **out, const char *data, size_t size, const char *name,
                           const ll_data_options *opt, ll_error *err);
void ll_dataset_free(ll_dataset *ds);

/* Column index meaning "the last column" (CoNLL tag column default). */
#define LL_COLUMN_LAST (-1)

/* Token-task (NER) files. */
typedef struct ll_token_data_options {
    /* LL_DATA_AUTO: .jsonl/.ndjson/.json are JSON Lines, anything else CoNLL.
     * LL_DATA_CONLL, LL_DATA_JSONL, or LL_DATA_LINES (raw text for prediction:
     * each non-blank line one sentence, words split on ASCII whitespace). */
    ll_data_format format;
    int word_column;  /* CoNLL: 0-based (default 0) */
    int tag_column;   /* CoNLL: 0-based, or LL_COLUMN_LAST (default) */
    const char *tokens_field; /* JSONL: NULL: "tokens" */
    const char *tags_field;   /* JSONL: NULL: "ner_tags" */
    /* JSONL integer tags: tag k is tag_names' name k (see ll_tag_names_load;
     * borrowed during the load). Without it integer tags are an error. */
    const ll_labelmap *tag_names;
    int no_tags;      /* the data has no tags (CoNLL: only the word column is read) */
    int any_tags;     /* accept any non-empty tag (POS columns; CLI --any-tags); default: the tags seqeval
                       * reads without a warning: O, B, I, E, S, B-/I-/E-/S- + any type (also empty) */
    int skip_invalid; /* drop bad sentences (counted in n_skipped) instead of failing */
} ll_token_data_options;

/* Defaults: format AUTO, word column 0, tag column last, fields
 * "tokens"/"ner_tags". opt may be NULL in the load calls (= defaults). */
void ll_token_data_options_default(ll_token_data_options *opt);

int ll_token_dataset_load(ll_dataset **out, const char *path, const ll_token_data_options *opt, ll_error *err);
int ll_token_dataset_load_memory(ll_dataset **out, const char *data, size_t size, const char *name,
                                 const ll_token_data_options *opt, ll_error *err);

/* Tag names for integer tags: a JSON array of strings (["O", "B-PER", ...]),
 * a JSON object with id2label/label2id (a label-map file, config.json), or a
 * text file with one name per line (blank lines at the end ignored). */
int ll_tag_names_load(ll_labelmap **out, const char *path, ll_error *err);

/* The sorted label set of a dataset: numerically if every label is an
 * integer ("-3", "0", "12"), else by byte-wise string order. Token tasks:
 * the set of word tags (CoNLL: B-LOC, B-MISC, ..., I-PER, O). */
int ll_labelmap_build(ll_labelmap **out, const ll_dataset *ds, ll_error *err);
/* From explicit names (id = position, n of them); duplicates are an error. */
int ll_labelmap_from_names(ll_labelmap **out, const char *const *names, int n, ll_error *err);
void ll_labelmap_free(ll_labelmap *m);
int ll_labelmap_size(const ll_labelmap *m);
/* [ll_labelmap_size] names, id order; owned by m. */
const char *const *ll_labelmap_names(const ll_labelmap *m);

/* Map every row's raw labels through m. A label absent from m is an error
 * naming file, line and label (or the row is dropped with skip_invalid).
 * Token tasks: every word's tag; apply labels before tokenizing. */
int ll_dataset_apply_labels(ll_dataset *ds, const ll_labelmap *m, ll_error *err);

/* Encode every text and truncate to max_length tokens (BOS/EOS the tokenizer
 * adds kept at their ends, as Hugging Face truncation). A token task goes to
 * ll_token_dataset_tokenize with default options. */
int ll_dataset_tokenize(ll_dataset *ds, ll_tokenizer *tok, int max_length, ll_error *err);

typedef struct ll_token_tokenize_options {
    int label_all_subtokens; /* every sub-token of an owned word carries its label (default: only the first) */
    int own_tokens;          /* split sentences: tokens a window owns at most; 0: half the window's room */
} ll_token_tokenize_options;

/* Token task: encode every sentence (words joined by single spaces) and cut
 * it into overlapping windows of at most max_length tokens, so every word is
 * owned by one window (opt may be NULL). */
int ll_token_dataset_tokenize(ll_dataset *ds, ll_tokenizer *tok, int max_length, const ll_token_tokenize_options *opt,
                              ll_error *err);

/* What a loaded dataset holds (for reports); pointers borrowed from ds. */
typedef struct ll_dataset_info {
    const char *path;         /* the file, or the name given to load_memory */
    int token_task, multi_label, has_labels;
    size_t n_examples;        /* examples kept; token tasks: windows */
    size_t n_skipped;         /* bad rows dropped (skip_invalid) */
    const char *first_skip;   /* the first dropped row's message ("file:line: ..."), "" if none */
    size_t n_truncated;       /* sequence task: examples cut to max_length */
    size_t n_sentences, n_words; /* token tasks */
    size_t n_split;           /* token tasks: sentences split into several windows */
    size_t n_empty_words;     /* token tasks: words that encode to no token (predicted O) */
    size_t n_cut_words;       /* token tasks: words longer than a window (cut) */
} ll_dataset_info;

void ll_dataset_get_info(const ll_dataset *ds, ll_dataset_info *info);

/* ---- classifier ----------------------------------------------------------------------------------- */

typedef struct ll_classifier ll_classifier; /* LoRA adapters + score head on a borrowed, frozen model */

typedef struct ll_classifier_config {
    int n_labels;
    ll_pool pool;
    int bidirectional_from; /* n_layers: causal (LS-LLaMA); 0: bidirectional (LS-unLLaMA) */
    int head_bias;
    int multi_label;        /* BCE over K independent labels */
    int lora_r;             /* 0: head only */
    float lora_alpha, lora_dropout;
    unsigned lora_targets;  /* bit per module (ll_lora_targets_parse) */
    int use_rslora;
    int token_task;         /* a label per token instead of per sequence (pool and multi_label unused) */
    float head_dropout;     /* token task: dropout on the head's input while training ([0, 1)) */
    /* Full fine-tuning: bit per module, as lora_targets (ll_lora_targets_parse), whose base weight W [out, in]
     * is trained itself in every layer, plus LL_FULL_NORMS (every RMSNorm weight) and LL_FULL_EMBEDDINGS (the
     * token embeddings; their gradient reaches only the rows of the batch's tokens). Each trained tensor's f32
     * copy (dequantized exactly) becomes a parameter, with its gradient and AdamW's two moments: 16 bytes per
     * trained value. 0 (the default): the base is frozen. Requires lora_r 0 (LoRA and full fine-tuning of the
     * same model are not combined). */
    unsigned full_targets;
} ll_classifier_config;

/* ll_classifier_config.full_targets bits beyond the seven linear modules (ll_full_targets_parse: "norms",
 * "embeddings"). */
#define LL_FULL_NORMS (1u << 7)
#define LL_FULL_EMBEDDINGS (1u << 8)
/* The modules of a comma-separated list as full_targets bits: the names ll_lora_targets_parse reads (q, k, v, o,
 * gate, up, down, *_proj, all-linear) plus norms and embeddings; "all": every one of them. Errors name the item. */
int ll_full_targets_parse(const char *list, unsigned *mask, ll_error *err);

/* The paper's LS-LLaMA settings for base (a sequence task: last-token pooling,
 * causal attention, LoRA r = 12, alpha = 32, dropout 0.1 on q_proj and
 * v_proj, no head bias, head dropout 0.1); n_labels is left 0 for the caller.
 * A token task (LS-unLLaMA) sets token_task = 1, bidirectional_from = 0 and
 * head_bias = 1, as `lsllama train --task token` does. Start from this rather
 * than from a zeroed struct: zero means fully bidirectional attention. */
void ll_classifier_config_default(ll_classifier_config *cfg, const ll_model *base);

/* Create on base (borrowed: it must outlive the classifier) with LoRA A
 * Kaiming-uniform (a = sqrt 5, as PEFT), B zero, head N(0, 0.02), bias zero;
 * seed picks the initial values. */
int ll_classifier_create(ll_classifier **out, ll_model *base, const ll_classifier_config *cfg, uint64_t seed,
                         ll_error *err);
void ll_classifier_free(ll_classifier *c);
/* The settings it was created or loaded with (owned by c). */
const ll_classifier_config *ll_classifier_get_config(const ll_classifier *c);
/* Trainable parameters (LoRA A and B, or the fully trained base weights; head weight and bias). */
size_t ll_classifier_n_params(const ll_classifier *c);

/* ---- training ----------------------------------------------------------------------------------- */

typedef struct ll_run_dir ll_run_dir; /* a locked training output folder */

typedef enum ll_run_mode { LL_RUN_NEW = 0, LL_RUN_RESUME = 1, LL_RUN_OVERWRITE = 2 } ll_run_mode;

/* Create path if needed, lock it (flock on path/lsllama.lock, released when
 * the process dies), clean what a killed writer left, check it for mode:
 * NEW: new or empty; RESUME: holds checkpoint/; OVERWRITE: only a training
 * run's own entries, removed when training begins to write. Errors: LL_ERR_IO
 * (cannot create, lock held: the message names the owner's pid), LL_ERR_ARG
 * (not empty, nothing to resume). Lock before minutes of loading. */
int ll_run_dir_open(ll_run_dir **out, const char *path, ll_run_mode mode, ll_error *err);
/* Release the lock and free; a folder created by open and never written is removed. NULL is fine. */
void ll_run_dir_close(ll_run_dir *rd);

/* ---- data-parallel training (MPI) ------------------------------------------------------------------ */

/* The processes that train one run together: W ranks started by mpirun (or
 * another MPI-3 launcher), or this process alone. Built with -DLL_MPI=ON,
 * ll_dist_init joins MPI_COMM_WORLD when a launcher started the process
 * (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in the environment) and is
 * alone otherwise; built without MPI it is always alone. When OMP_NUM_THREADS
 * is unset, each rank's OpenMP team gets the cores of its node divided by the
 * ranks on that node (at least 1), or the cores it is bound to.
 *
 * ll_train with options.dist of size W gives the same bytes as W = 1 (see
 * ll_train_options.dist). Returns LL_ERR_ARG if MPI cannot start. A rank
 * whose ll_train fails returns its error while the others may be waiting for
 * it: call ll_dist_abort then (as `lsllama train` does), not ll_dist_finalize. */
typedef struct ll_dist ll_dist;
int ll_dist_init(ll_dist **out, int *argc, char ***argv, ll_error *err);
int ll_dist_rank(const ll_dist *d);       /* 0 .. size-1; 0 for NULL */
int ll_dist_size(const ll_dist *d);       /* W; 1 for NULL */
int ll_dist_local_size(const ll_dist *d); /* ranks on this node; 1 for NULL */
int ll_dist_threads(const ll_dist *d);    /* the OpenMP threads this rank uses */
int ll_dist_compiled(void);               /* 1 in a build with MPI */
/* Every rank passes its own status (0 or an ll_status); all get the first
 * nonzero one in rank order, with the rank that had it (*bad_rank, may be
 * NULL; -1 when all are 0). A collective: every rank must call it. */
int ll_dist_agree(const ll_dist *d, int status, int *bad_rank);
/* Rank 0's bytes to every rank (alone: nothing to do). A collective. */
int ll_dist_bcast(const ll_dist *d, void *buf, size_t bytes, ll_error *err);
/* Stop every rank of the group at once (MPI_Abort); alone: returns. */
void ll_dist_abort(const ll_dist *d, int exit_code);
/* MPI_Finalize when this process joined MPI; frees d (NULL is fine). */
void ll_dist_finalize(ll_dist *d);

/* One progress report of ll_train, delivered on the training thread. */
typedef enum ll_train_event_kind {
    LL_TRAIN_STEP = 0, /* an optimiser step ended (logged) */
    LL_TRAIN_EVAL = 1, /* a dev evaluation ended (logged; best/ is saved after the report when best) */
    LL_TRAIN_END = 2,  /* the last step ended; the final adapter is saved next */
} ll_train_event_kind;

typedef struct ll_train_event {
    ll_train_event_kind kind;
    int64_t step;        /* optimiser steps done */
    int64_t total_steps;
    int64_t epoch;       /* STEP: 0-based epoch the step belongs to */
    double loss;         /* STEP: mean training loss of the step's micro-batches */
    double tokens_per_s; /* STEP: training tokens per second of this run, evaluation time left out */
    double eta_s;        /* STEP: estimated seconds to the last step */
    int token_task;      /* EVAL: which figures below are set */
    double dev_loss;     /* EVAL: mean dev loss */
    double accuracy, macro_f1;                    /* EVAL, sequence task */
    double f1, precision, recall, token_accuracy; /* EVAL, token task: entity-level micro averages */
    int best;            /* EVAL: the best dev metric so far (best/ is saved) */
    double lr;           /* STEP: the learning rate the step used (log.jsonl's "lr") */
    double grad_norm;    /* STEP: the global gradient norm before clipping (log.jsonl's "grad_norm") */
} ll_train_event;

typedef void (*ll_train_progress_fn)(void *ctx, const ll_train_event *ev);

typedef struct ll_train_options {
    int epochs;               /* passes over the training set */
    int64_t max_steps;        /* > 0: exactly this many optimiser steps, over as many epochs as that takes
                                 (overrides epochs, as transformers' max_steps) */
    float lr, weight_decay, warmup_ratio, max_grad_norm;
    float beta1, beta2, adam_eps;
    int grad_accum;           /* micro-batches per optimiser step */
    size_t batch_tokens;      /* token budget of one micro-batch */
    size_t batch_seqs;        /* 0: no limit */
    int recompute;            /* activation checkpointing: keep only each layer's input in the forward pass and
                                 recompute the layer in the backward pass (SmolLM2-135M: 143 KB of activations
                                 per batch token instead of 757 KB, up to about a third more time); results
                                 bit-identical, so a resume may change it */
    uint64_t seed;
    int64_t eval_every;       /* steps; 0: at epoch ends only */
    int patience;             /* stop after this many evaluations without improvement; 0: never */
    int metric;               /* ll_metric used to pick the best adapter (one of the task's) */
    int64_t checkpoint_every; /* steps; 0: none */
    const char *out_dir;
    const char *base_model_name; /* written into adapter_config.json */
    const char *const *label_names; /* n_labels names written with the adapters (ll_labelmap_names) */
    int resume;               /* continue from out_dir/checkpoint */
    int overwrite;            /* replace a finished run in out_dir (else a non-empty out_dir is refused) */
    ll_run_dir *run_dir;      /* optional: out_dir already opened (locked, checked) with ll_run_dir_open;
                                   NULL: ll_train opens it for the mode that resume / overwrite give */
    ll_train_progress_fn progress; /* optional: called after every step and evaluation, and at the end */
    void *progress_ctx;       /* passed to progress */
    int64_t stop_after_steps; /* > 0: end this run after that many steps without final save (tests a kill) */
    const char *batches_out;  /* optional: write each micro-batch's example indices, one line per batch
                                 (for running another trainer on exactly the same batches) */
    const ll_dist *dist;      /* optional: train with W = ll_dist_size ranks (NULL: alone). Every rank makes
                                 the same plan of micro-batches; of step s's grad_accum micro-batches (W must
                                 divide grad_accum) rank r computes the r-th contiguous block; each
                                 micro-batch's gradient starts from zero and rank 0 sums them in micro-batch
                                 order, then sends the sum to all, so the result is the same bytes at every W
                                 (W = 1 takes the same path). Dropout masks depend on (seed, epoch, batch),
                                 never on the rank. Clipping and AdamW run on every rank; a parameter checksum
                                 compared across ranks every dist_check_every steps fails on drift. Dev
                                 evaluation is split by batches and its logits gathered, then scored in
                                 example order on every rank. Only rank 0 opens out_dir and writes logs,
                                 adapters and checkpoints (run_dir, progress and batches_out are rank 0's;
                                 other ranks leave them NULL); --resume reads the checkpoint on rank 0 and
                                 sends it to all, so a run may resume at another W. */
    int64_t dist_check_every; /* steps between parameter checksums across ranks (0: 10) */
    /* Full fine-tuning (ll_classifier_config.full_targets) writes best/ and final/ as whole model folders: the
     * base's tokenizer, written into them as tokenizer.json (NULL: none), and the path it was loaded from. */
    const ll_tokenizer *tokenizer;
    const char *tokenizer_source;
    /* Optional (NULL: none): read after every step, its evaluation and its checkpoint; once *stop is non-zero,
     * training ends there as --patience ends it (the LL_TRAIN_END report, final/ saved, the result filled). Set it
     * from the progress callback (a caller's "stop now") or from another thread. Training alone only: a
     * data-parallel run (dist of size > 1) ignores it, as only rank 0 would see it. */
    const volatile int *stop;
} ll_train_options;

/* epochs 1, lr 1e-4, weight decay 0.01, warm-up 0.06, clipping 1.0, AdamW
 * (0.9, 0.999, 1e-8), grad_accum 1, 2048 batch tokens, seed 42, accuracy. */
void ll_train_options_default(ll_train_options *o);

typedef struct ll_train_result {
    int64_t steps;
    double best_metric;       /* -1: no dev evaluation ran */
    int64_t best_step;        /* -1: none */
    double train_tokens_per_s;
    double seconds;
} ll_train_result;

/* Train c on train (tokenized, labels applied), evaluating on dev (may be
 * NULL) as options say; writes out_dir/best, final (PEFT adapters with
 * label_map.json), log.jsonl and checkpoint/. A non-finite loss, gradient
 * norm or dev loss stops with an error naming the step. */
int ll_train(ll_classifier *c, ll_dataset *train, ll_dataset *dev, const ll_train_options *o, ll_train_result *res,
             ll_error *err);

/* ---- evaluation ----------------------------------------------------------------------------------- */

/* Optional progress report: fn(ctx, done, total) after each batch, in
 * examples (token tasks: windows). */
typedef struct ll_eval_progress {
    void (*fn)(void *ctx, size_t done, size_t total);
    void *ctx;
} ll_eval_progress;

typedef struct ll_eval_report ll_eval_report; /* the figures of one evaluation */

/* Evaluate c in file order on ds (tokenized, labels applied through map):
 * sequence tasks scikit-learn's classification_report figures (multi-label:
 * with micro and samples averages), token tasks seqeval's entity-level
 * report. progress may be NULL. Non-finite logits are an error naming the
 * example's line. */
int ll_classifier_evaluate(ll_classifier *c, const ll_dataset *ds, const ll_labelmap *map, size_t batch_tokens,
                           const ll_eval_progress *progress, ll_eval_report **out, ll_error *err);
void ll_eval_report_free(ll_eval_report *r);

typedef struct ll_eval_summary {
    int token_task, multi_label;
    int64_t n;               /* examples; token tasks: sentences */
    double mean_loss;        /* per example (cross-entropy or BCE); token tasks: per labelled token */
    double accuracy;         /* single-label accuracy, multi-label subset accuracy, token accuracy */
    double macro_precision, macro_recall, macro_f1;
    double weighted_precision, weighted_recall, weighted_f1;
    double micro_precision, micro_recall, micro_f1; /* multi-label; token tasks: the entity-level figures */
    int n_classes;           /* rows of ll_eval_report_class: labels; token tasks: entity types */
} ll_eval_summary;

void ll_eval_report_summary(const ll_eval_report *r, ll_eval_summary *out);

typedef struct ll_eval_class {
    const char *name;        /* borrowed from the report */
    double precision, recall, f1;
    int64_t support;         /* gold examples (multi-label: gold labels); token tasks: gold entities */
} ll_eval_class;

/* Row k in [0, n_classes); LL_ERR_ARG out of range. */
int ll_eval_report_class(const ll_eval_report *r, int k, ll_eval_class *out, ll_error *err);

/* The name of the first non-finite figure ("mean loss", "accuracy", "macro
 * average", ...; token tasks "mean loss" or "metrics"), NULL if all are finite. */
const char *ll_eval_report_nonfinite(const ll_eval_report *r);

/* The report as `lsllama eval` prints it after its heading line: json 0:
 * classification_report tables (with the confusion matrix, or seqeval's
 * report and token accuracy); json 1: one JSON object and a newline. *out is
 * a NUL-terminated malloc'd string the caller frees. */
int ll_eval_report_text(const ll_eval_report *r, int json, char **out, ll_error *err);

/* ---- prediction ----------------------------------------------------------------------------------- */

/* One sequence's prediction; pointers valid during the callback only. */
typedef struct ll_seq_prediction {
    size_t index;                 /* example, in file order */
    const char *text;
    int n_labels;
    int label;                    /* single-label: the argmax (lowest id on ties); multi-label: -1 */
    const float *logits;          /* [n_labels]; multi-label: label k is predicted when logits[k] > 0 */
    const double *probabilities;  /* [n_labels]: softmax; multi-label: independent sigmoids */
    const int *predicted;         /* multi-label: [n_labels], 1 where label k is predicted (logit > 0,
                                     as evaluation decides); single-label: NULL */
} ll_seq_prediction;

/* Return 0 to go on; non-zero stops the prediction, which returns that value. */
typedef int (*ll_seq_prediction_fn)(void *ctx, const ll_seq_prediction *p);

/* Sequence task: classify every example of ds (tokenized; labels not
 * needed) in file order, in batches of about batch_tokens tokens, calling fn
 * per example and progress (may be NULL) per batch. Non-finite logits are an
 * error naming the input line, before anything of that batch is reported. */
int ll_classifier_predict(ll_classifier *c, const ll_dataset *ds, size_t batch_tokens,
                          const ll_eval_progress *progress, ll_seq_prediction_fn fn, void *ctx, ll_error *err);

/* ---- one packed batch (serving) ----------------------------------------------------------------------- */

/* What ll_classifier_infer writes; every pointer may be NULL (not computed). */
typedef struct ll_classifier_outputs {
    float *logits;  /* [n_seqs, K]; token task [n_tokens, K] */
    float *hidden;  /* [n_tokens, dim]: the adapted model's final-norm hidden states */
    float *pooled;  /* [n_seqs, dim]: hidden pooled by `pool` (a sequence classifier's own pooling gives the
                       head's input) */
    ll_pool pool;
} ll_classifier_outputs;

/* Run c without dropout on a packed batch of tokenized sequences (ids < the
 * model's vocabulary; each sequence within the model's context). Each
 * sequence's outputs depend on its own tokens alone: they are bit-identical
 * whether it runs alone or beside any other sequences. Non-finite logits
 * are an error (LL_ERR_ARG naming the sequence). */
int ll_classifier_infer(ll_classifier *c, const ll_batch *b, const ll_classifier_outputs *out, ll_error *err);

/* The probabilities of one row of K logits as prediction reports them (the
 * same arithmetic as ll_classifier_predict and evaluation): softmax in
 * double, or independent sigmoids when multi_label. Returns the argmax
 * (lowest index on ties), -1 for multi_label. */
int ll_logits_probabilities(const float *logits, int K, int multi_label, double *p);

typedef struct ll_entity_span {
    const char *type;             /* "PER", ...; "_" for untyped tags */
    int start, end;               /* code-point offsets in the sentence text (a Python str slice) */
    int byte_start, byte_end;     /* the same in bytes */
    int word_start, word_end;     /* words [word_start, word_end) */
    double score;                 /* mean tag probability of its words */
} ll_entity_span;

/* One sentence's prediction; pointers valid during the callback only. */
typedef struct ll_sentence_prediction {
    size_t index;                 /* sentence, in file order */
    const char *text;             /* the words joined by single spaces (or the input line), text_len bytes */
    size_t text_len;
    int n_words;
    const char *const *words;     /* [n_words] NUL-terminated */
    const char *const *tags;      /* [n_words] predicted tags ("O" for a word without tokens) */
    const float *scores;          /* [n_words] softmax probability of each tag */
    size_t n_entities;
    const ll_entity_span *entities; /* seqeval's chunks of the predicted tags */
    /* Sub-tokens (what the transformers token-classification pipeline's aggregation strategies read), in
     * text order, each from the window that owns its word: word w's rows are word_token[w] .. word_token[w + 1):
     * the tokens of no word just before it (token_between 1: a lone space piece, empty span at w's start), then
     * w's own (none for a word without tokens; a word longer than a window keeps the tokens its window holds). */
    int n_labels;
    const int *word_token;        /* [n_words + 1] */
    const unsigned char *token_between;
    const float *token_probs;     /* [word_token[n_words], n_labels]: softmax, as scores */
    const int *token_label;       /* the argmax of each token's logits (lowest id on ties) */
    const int *token_start, *token_end;           /* each token's span in text: code points, within its word */
    const int *token_byte_start, *token_byte_end; /* the same in bytes */
    const int *token_index;       /* each token's position in the sentence's encoding (special tokens counted:
                                     the transformers pipeline's "index") */
} ll_sentence_prediction;

typedef int (*ll_sentence_prediction_fn)(void *ctx, const ll_sentence_prediction *p);

/* Token task: tag every word of ds (tokenized with ll_token_dataset_tokenize;
 * tags not needed) through map, each word from the window that owns it, and
 * call fn per sentence in file order after all windows ran (progress per
 * batch of windows). Returns fn's non-zero value when it stops early. */
int ll_classifier_predict_tokens(ll_classifier *c, const ll_dataset *ds, const ll_labelmap *map, size_t batch_tokens,
                                 const ll_eval_progress *progress, ll_sentence_prediction_fn fn, void *ctx,
                                 ll_error *err);

/* ---- adapters and merged models -------------------------------------------------------------------- */

typedef struct ll_adapter_meta {
    const char *base_model_name_or_path; /* NULL: written as null */
    const char *const *id2label;         /* n_labels names; NULL: "LABEL_0", "LABEL_1", ... */
    const char *task_type;               /* NULL: "SEQ_CLS"; "TOKEN_CLS" for token classification */
} ll_adapter_meta;

/* Write c's LoRA weights and head as a PEFT adapter folder (adapter_config.json,
 * adapter_model.safetensors, label_map.json) into dir (created, with parents,
 * if needed), each file complete before any replaces an earlier one. meta may be NULL. */
int ll_adapter_save(const ll_classifier *c, const char *dir, const ll_adapter_meta *meta, ll_error *err);

typedef struct ll_adapter_info {
    char task_type[16];            /* "SEQ_CLS", "TOKEN_CLS" */
    char *base_model_name_or_path; /* NULL when absent or null */
    int n_labels;
    char **id2label;               /* [n_labels]; "LABEL_i" without a label map */
    int has_label_map;             /* label_map.json was found */
} ll_adapter_info;

void ll_adapter_info_free(ll_adapter_info *info);

/* Read the adapter in dir (written by lsllama or PEFT) onto base and create
 * a classifier holding it. LoRA settings, n_labels and head_bias come from
 * the files; pooling, bidirectional_from and multi_label from head when
 * given, else from label_map.json, else last token, causal, single-label.
 * info (optional) receives the labels. Errors name the file and key. */
int ll_adapter_load(const char *dir, ll_model *base, const ll_classifier_config *head, ll_classifier **out,
                    ll_adapter_info *info, ll_error *err);

/* The base precision recorded in dir/label_map.json ("lsllama":
 * {"base_precision"}) by the training that wrote the adapter: 1 and *out
 * set; 0 when none is recorded (PEFT's adapters, older lsllama);
 * LL_ERR_CONFIG (err names the file and key) for a value that is not one. */
int ll_adapter_base_precision(const char *dir, ll_base_precision *out, ll_error *err);
/* The same for a training run's folder: the precision its log.jsonl's first
 * line records (what --resume continues with unless told otherwise). */
int ll_run_base_precision(const char *out_dir, ll_base_precision *out, ll_error *err);
/* The same for the products' arithmetic (log.jsonl's "compute"): 1 and *out
 * set, 0 when none is recorded (a run of an older version: f32),
 * LL_ERR_CONFIG naming the file for a value that is not one. */
int ll_run_compute(const char *out_dir, ll_compute *out, ll_error *err);

typedef struct ll_merge_options {
    const char *const *id2label; /* n_labels names; NULL: "LABEL_0", ... */
    const char *task_type;       /* "SEQ_CLS": *ForSequenceClassification; "TOKEN_CLS": *ForTokenClassification;
                                    NULL: the classifier's (cfg.token_task); one that does not fit it is an error */
    int dtype;                   /* ll_merge_dtype */
    int pad_token_id;            /* < 0: the tokenizer's EOS (transformers' convention for Llama classifiers,
                                    whose vocabularies have no pad), else the base config's EOS; none: null */
    const ll_tokenizer *tokenizer; /* the base's tokenizer: written as tokenizer.json + tokenizer_config.json;
                                      NULL: no tokenizer files (README.md says so) */
    const char *tokenizer_source;  /* the path it was loaded from (a tokenizer.json is copied as it is) */
    int allow_inexact;           /* write a folder transformers computes differently, with the reasons in
                                    README.md and config.json's "lsllama_inexact" */
} ll_merge_options;

/* LL_MERGE_DEFAULT dtype, pad id from the tokenizer, labels LABEL_i, the
 * classifier's task, no tokenizer, exact only. */
ll_merge_options ll_merge_options_default(void);

#define LL_MERGE_MAX_REASONS 8
/* Why transformers would compute something other than c on the merged
 * folder (pooling other than last, bidirectional attention, a non-zero
 * sequence head bias, ...); n = 0: the export is exact. */
typedef struct ll_merge_report {
    int n;
    char reason[LL_MERGE_MAX_REASONS][320];
} ll_merge_report;

int ll_merge_check(const ll_classifier *c, const ll_merge_options *opt, ll_merge_report *rep, ll_error *err);

/* Write the merged model (W' = W + scale B A, plus the score head; for a fully
 * fine-tuned classifier its trained weights, f32 by default) into
 * out_dir as a Hugging Face folder: config.json, model.safetensors,
 * README.md, tokenizer files. An inexact export fails with
 * LL_ERR_UNSUPPORTED naming every reason unless allow_inexact. */
int ll_merge_save(const ll_classifier *c, const char *out_dir, const ll_merge_options *opt, ll_error *err);

/* 1 if path is a folder whose config.json names a *ForSequenceClassification
 * or *ForTokenClassification architecture (a merged model). */
int ll_merged_is_classifier(const char *path);

/* The classifier of a merged folder on base (loaded from the same folder):
 * task, labels and head from its config.json and weights; no LoRA. */
int ll_merged_load(const char *dir, ll_model *base, ll_classifier **out, ll_adapter_info *info, ll_error *err);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
