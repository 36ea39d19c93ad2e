/* What train, eval, predict and merge share: their options, the data
 * options every one of them parses, loading a data file with its summary
 * line on stderr, and opening a trained classifier (base model, tokenizer,
 * adapter or merged folder, labels). Uses the public API only. */
#ifndef LL_CLI_CLASSIFY_H
#define LL_CLI_CLASSIFY_H

#include <stdio.h>

#include "lsllama.h"
#include "lsllama_tokenizer.h"
#include "lsllama_train.h"

/* Options of the classifier commands (each uses its part). */
typedef struct cls_args {
    const char *model, *train, *dev, *data, *out, *adapter, *input, *tokenizer;
    ll_data_options data_opt;
    int token_task;                    /* train: --task token; eval/predict: from the adapter */
    ll_token_data_options tok_opt;     /* token tasks: CoNLL/JSONL reading */
    ll_token_tokenize_options tt_opt;  /* token tasks: labelling of sub-tokens, windows */
    const char *tag_names;             /* JSONL integer tags: a names file */
    long max_length;
    int max_length_given;              /* --max-length given: checked against the model's context */
    ll_classifier_config cc;
    int head_only;
    const char *targets;
    const char *full_targets; /* --full / --full-targets: the base weights trained in full; NULL: LoRA */
    const char *lora_option;  /* the first LoRA option given (refused beside --full) */
    ll_train_options to;
    int no_progress;                   /* --no-progress: no progress lines on stderr */
    int json;
    ll_base_precision base_precision; /* --base-precision */
    int base_precision_given;
    ll_compute compute; /* --compute */
    int compute_given;
} cls_args;

/* The options of cls_parse_common that take a value. */
#define CLS_COMMON_VALUE_OPTS                                                                               \
    "--text-column --label-column --format --word-column --tag-column --tokens-field --tags-field --tag-names " \
    "--max-length --batch-tokens --tokenizer --base-precision --compute"

/* argv[*i] if it is a common option (its value consumed, *i advanced):
 * 1 if handled, 0 if not a common option, -1 on a bad value (message printed). */
int cls_parse_common(const char *cmd, cls_args *a, int argc, char **argv, int *i);

/* Options that the model bounds: --max-length within its context (when the
 * checkpoint states one), --bidirectional-from within its layers (< 0: not
 * checked). 1 if fine, else 0 after the message. */
int cls_check_model_bounds(const char *cmd, long max_length, int max_length_given, int bidirectional_from,
                           const ll_model *m);

/* All of stdin; NULL (after a message) when out of memory or on a read error. */
char *cls_read_stdin(const char *cmd, size_t *len);

/* Load, label (through *map, built from this file when NULL) and tokenize a
 * data file, then print its summary line on stderr. Token tasks
 * (a->token_task) read sentences; no_tags: prediction input (path NULL:
 * stdin). 0, or 1 after the message. */
int cls_load_split(const char *cmd, const cls_args *a, const char *path, ll_tokenizer *tok, ll_labelmap **map,
                   ll_dataset **out);
int cls_load_token_split(const char *cmd, const cls_args *a, const char *path, ll_tokenizer *tok, ll_labelmap **map,
                         int no_tags, ll_dataset **out);

/* A trained classifier ready to use: base model, tokenizer, adapter, labels. */
typedef struct cls_session {
    ll_model *m;
    ll_tokenizer *tok;
    ll_classifier *c;
    ll_adapter_info info;
    ll_labelmap *map;
} cls_session;

/* MODEL with --adapter DIR, or a folder written by `lsllama merge` alone.
 * 0, else the exit status after the message. */
int cls_session_open(const char *cmd, const cls_args *a, cls_session *s);
void cls_session_close(cls_session *s);

/* s[0..n) (cls_json_str: NUL-terminated) as a JSON string. */
void cls_json_str_n(FILE *f, const char *s, size_t n);
void cls_json_str(FILE *f, const char *s);

#endif
