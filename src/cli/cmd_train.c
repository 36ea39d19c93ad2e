/* lsllama train / eval / predict: sequence classification (LS-LLaMA) and
 * token classification (NER, LS-unLLaMA) with LoRA. */
#include <errno.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "data/dataset.h"
#include "lsllama.h"
#include "lsllama_tokenizer.h"
#include "model/lora.h"
#include "train/adapter.h"
#include "train/classifier.h"
#include "train/metrics.h"
#include "train/seqeval.h"
#include "train/trainer.h"

/* Options shared by the three commands. */
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
    ll_train_options to;
    int json;
    int no_progress;                   /* eval, predict: --no-progress */
} cls_args;

/* --lora-targets: a comma-separated list read in place (any length, every
 * item checked: no empty or unknown item is skipped). */
static int parse_targets(const char *s, unsigned *mask) {
    *mask = 0;
    if (!strcmp(s, "all-linear")) {
        *mask = (1u << LL_LORA_N_TARGETS) - 1;
        return 1;
    }
    for (const char *t = s;; t++) {
        const size_t len = strcspn(t, ",");
        int found = -1;
        for (int i = 0; i < LL_LORA_N_TARGETS && len; i++) {
            const char *n = ll_lora_target_names[i];
            const size_t short_len = strcspn(n, "_"); /* "q" for "q_proj" */
            if ((len == strlen(n) || len == short_len) && !strncmp(t, n, len)) found = i;
        }
        if (found < 0) {
            if (len) fprintf(stderr, "lsllama train: --lora-targets: unknown module '%.*s'", (int)len, t);
            else fprintf(stderr, "lsllama train: --lora-targets: empty module name in '%s'", s);
            fprintf(stderr, " (q,k,v,o,gate,up,down, *_proj or all-linear)\n");
            return 0;
        }
        *mask |= 1u << found;
        t += len;
        if (!*t) break;
    }
    return 1;
}

/* A finite number in [lo, hi] (hi_open: [lo, hi)); on a bad value *ok = 0 after the message. */
static double parse_float(const char *cmd, const char *opt, const char *s, double lo, double hi, int hi_open, int *ok) {
    double v = 0;
    if (!cli_parse_double(cmd, opt, s, lo, hi, hi_open, &v)) *ok = 0;
    return v;
}

/* Options that the model bounds: --max-length within its context (when the
 * checkpoint states one), --bidirectional-from within its layers. */
static int check_model_bounds(const char *cmd, long max_length, int max_length_given, int bidirectional_from,
                              const ll_model *m) {
    const ll_config *p = ll_model_config(m);
    if (max_length_given && p->max_seq_len > 0 && max_length > p->max_seq_len) {
        fprintf(stderr, "lsllama %s: --max-length %ld exceeds the model's context length %d\n", cmd, max_length,
                p->max_seq_len);
        return 0;
    }
    if (bidirectional_from > p->n_layers) {
        fprintf(stderr, "lsllama %s: --bidirectional-from %d exceeds the model's %d layers\n", cmd, bidirectional_from,
                p->n_layers);
        return 0;
    }
    return 1;
}

/* The options of parse_common that take a value. */
#define COMMON_VALUE_OPTS                                                                                   \
    "--text-column --label-column --format --word-column --tag-column --tokens-field --tags-field --tag-names " \
    "--max-length --batch-tokens --tokenizer"

/* Returns 1 if handled, 0 if unknown, -1 on a bad value. */
static int parse_common(const char *cmd, cls_args *a, int argc, char **argv, int *i) {
    const char *o = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    long n;
    int ok = 1;
#define TAKE() ((*i)++, v)
    if (!strcmp(o, "--text-column") && v) a->data_opt.text_columns = TAKE();
    else if (!strcmp(o, "--label-column") && v) a->data_opt.label_column = TAKE();
    else if (!strcmp(o, "--format") && v) {
        const char *f = TAKE();
        a->data_opt.format = !strcmp(f, "tsv") ? LL_DATA_TSV : !strcmp(f, "csv") ? LL_DATA_CSV
                           : !strcmp(f, "jsonl") ? LL_DATA_JSONL : !strcmp(f, "lines") ? LL_DATA_LINES
                           : !strcmp(f, "conll") ? LL_DATA_CONLL : -1;
        if ((int)a->data_opt.format < 0) {
            fprintf(stderr, "lsllama %s: --format must be tsv, csv, jsonl, lines or conll\n", cmd);
            return -1;
        }
        a->tok_opt.format = a->data_opt.format;
    } else if (!strcmp(o, "--word-column") && v) {
        if (!cli_parse_int(cmd, o, TAKE(), 0, 1 << 20, &n)) return -1;
        a->tok_opt.word_column = (int)n;
    } else if (!strcmp(o, "--tag-column") && v) {
        const char *t = TAKE();
        if (!strcmp(t, "last")) a->tok_opt.tag_column = LL_COLUMN_LAST;
        else if (!cli_parse_int(cmd, o, t, 0, 1 << 20, &n)) return -1;
        else a->tok_opt.tag_column = (int)n;
    } else if (!strcmp(o, "--tokens-field") && v) a->tok_opt.tokens_field = TAKE();
    else if (!strcmp(o, "--tags-field") && v) a->tok_opt.tags_field = TAKE();
    else if (!strcmp(o, "--tag-names") && v) a->tag_names = TAKE();
    else if (!strcmp(o, "--label-all-subtokens")) a->tt_opt.label_all_subtokens = 1;
    else if (!strcmp(o, "--any-tags")) a->tok_opt.any_tags = 1;
    else if (!strcmp(o, "--header")) a->data_opt.header = LL_HEADER_YES;
    else if (!strcmp(o, "--no-header")) a->data_opt.header = LL_HEADER_NO;
    else if (!strcmp(o, "--skip-invalid")) a->data_opt.skip_invalid = a->tok_opt.skip_invalid = 1;
    else if (!strcmp(o, "--multi-label")) a->data_opt.multi_label = a->cc.multi_label = 1;
    else if (!strcmp(o, "--max-length") && v) {
        if (!cli_parse_int(cmd, o, TAKE(), 1, 1 << 20, &a->max_length)) return -1;
        a->max_length_given = 1;
    } else if (!strcmp(o, "--batch-tokens") && v) {
        if (!cli_parse_int(cmd, o, TAKE(), 1, 1 << 24, &n)) return -1;
        a->to.batch_tokens = (size_t)n;
    } else if (!strcmp(o, "--tokenizer") && v) a->tokenizer = TAKE();
    else if (!strcmp(o, "--json")) a->json = 1;
    else if (!strcmp(o, "--no-progress")) a->no_progress = 1, a->to.progress = 0;
    else return 0;
#undef TAKE
    return ok ? 1 : -1;
}

/* All of stdin (not mappable, maybe not a regular file); NULL (after a
 * message) when out of memory or on a read error: never a silently cut input. */
static char *read_stdin(const char *cmd, size_t *len) {
    size_t cap = 1 << 16;
    char *text = malloc(cap);
    *len = 0;
    for (size_t got; text && (got = fread(text + *len, 1, cap - *len, stdin)) > 0;) {
        *len += got;
        if (*len == cap) {
            char *t2 = realloc(text, cap *= 2);
            if (!t2) free(text);
            text = t2;
        }
    }
    if (!text) fprintf(stderr, "lsllama %s: out of memory reading standard input\n", cmd);
    else if (ferror(stdin)) {
        fprintf(stderr, "lsllama %s: error reading standard input: %s\n", cmd, strerror(errno));
        free(text);
        text = NULL;
    }
    return text;
}

/* Token task: sentences -> tags -> windows. no_tags: prediction input.
 * path NULL: read stdin. */
static int load_token_split(const char *cmd, const cls_args *a, const char *path, ll_tokenizer *tok,
                            ll_labelmap **map, int no_tags, ll_dataset **out) {
    ll_error err = {0};
    ll_dataset *ds = NULL;
    ll_labelmap *names = NULL;
    ll_token_data_options o = a->tok_opt;
    o.no_tags = no_tags;
    int rc = 0;
    if (a->tag_names && ll_tag_names_load(&names, a->tag_names, &err)) rc = 1;
    o.tag_names = names;
    if (!rc && path && ll_token_dataset_load(&ds, path, &o, &err)) rc = 1;
    if (!rc && !path) {
        size_t len;
        char *text = read_stdin(cmd, &len);
        if (!text) {
            ll_labelmap_free(names);
            return 1;
        }
        if (ll_token_dataset_load_memory(&ds, text, len, "<stdin>", &o, &err)) rc = 1;
        free(text);
        path = "<stdin>";
    }
    if (!rc && !no_tags && ((*map == NULL && ll_labelmap_build(map, ds, &err)) || ll_dataset_apply_labels(ds, *map, &err)))
        rc = 1;
    if (!rc && ll_token_dataset_tokenize(ds, tok, (int)a->max_length, &a->tt_opt, &err)) rc = 1;
    ll_labelmap_free(names);
    if (rc) {
        fprintf(stderr, "lsllama %s: %s\n", cmd, err.message);
        ll_dataset_free(ds);
        return 1;
    }
    fprintf(stderr, "%s: %zu sentences, %zu words, %zu windows", path, ds->n_sent, ds->n_words, ds->n);
    if (ds->n_skipped) fprintf(stderr, ", %zu invalid sentences skipped (first: %s)", ds->n_skipped, ds->first_skip);
    if (ds->n_split) fprintf(stderr, ", %zu sentences split into overlapping windows", ds->n_split);
    if (ds->n_empty_words) fprintf(stderr, ", %zu words without tokens (predicted O)", ds->n_empty_words);
    if (ds->n_cut_words) fprintf(stderr, ", %zu words longer than a window (cut)", ds->n_cut_words);
    fputc('\n', stderr);
    if (ds->n_sent == 0) {
        fprintf(stderr, "lsllama %s: %s: no usable sentences\n", cmd, path);
        ll_dataset_free(ds);
        return 1;
    }
    *out = ds;
    return 0;
}

static int load_split(const char *cmd, const cls_args *a, const char *path, ll_tokenizer *tok, ll_labelmap **map,
                      ll_dataset **out) {
    if (a->token_task) return load_token_split(cmd, a, path, tok, map, 0, out);
    ll_error err = {0};
    ll_dataset *ds = NULL;
    if (ll_dataset_load(&ds, path, &a->data_opt, &err) ||
        (*map == NULL && ll_labelmap_build(map, ds, &err)) || ll_dataset_apply_labels(ds, *map, &err) ||
        ll_dataset_tokenize(ds, tok, (int)a->max_length, &err)) {
        fprintf(stderr, "lsllama %s: %s\n", cmd, err.message);
        ll_dataset_free(ds);
        return 1;
    }
    fprintf(stderr, "%s: %zu examples", path, ds->n);
    if (ds->n_skipped) fprintf(stderr, ", %zu invalid rows skipped (first: %s)", ds->n_skipped, ds->first_skip);
    if (ds->n_truncated) fprintf(stderr, ", %zu truncated to %ld tokens", ds->n_truncated, a->max_length);
    fputc('\n', stderr);
    if (ds->n == 0) {
        fprintf(stderr, "lsllama %s: %s: no usable examples\n", cmd, path);
        ll_dataset_free(ds);
        return 1;
    }
    *out = ds;
    return 0;
}

static void train_usage(FILE *f) {
    fprintf(f,
        "usage: lsllama train MODEL --train FILE --out DIR [--dev FILE] [options]\n\n"
        "Label-supervised LoRA fine-tuning of a sequence classifier (LS-LLaMA) or, with --task token,\n"
        "of a token classifier for NER (LS-unLLaMA: bidirectional attention by default).\n"
        "task:   --task seq|token (seq)\n"
        "data:   --text-column C --label-column C (names, or 0-based indices; default text/sentence, label)\n"
        "        --format tsv|csv|jsonl|conll  --header|--no-header  --skip-invalid  --multi-label\n"
        "        --max-length N (256; token tasks: longer sentences become overlapping windows)\n"
        "        --tokenizer PATH (default: the model's own)\n"
        "token:  --word-column N (0)  --tag-column N|last (last)  --tokens-field F (tokens)  --tags-field F\n"
        "        (ner_tags)  --tag-names FILE (names of integer tags)  --label-all-subtokens\n"
        "        --any-tags (any tag, e.g. POS; default: O, B, I, E, S, B-/I-/E-/S-TYPE as seqeval reads them)\n"
        "model:  --pool last|mean|max|first (last)  --mask causal|bidirectional (causal; token: bidirectional)\n"
        "        --bidirectional-from K  --head-bias (token: always)  --head-dropout P (token: 0.1)\n"
        "LoRA:   --lora-r R (12)  --lora-alpha A (32)  --lora-dropout P (0.1)  --rslora\n"
        "        --lora-targets q,v (PEFT's Llama default; any of q,k,v,o,gate,up,down or all-linear)\n"
        "        --head-only (no LoRA: train the score head alone)\n"
        "train:  --epochs N (1)  --max-steps N (overrides --epochs)  --lr X (1e-4)  --weight-decay X (0.01)\n"
        "        --warmup-ratio X (0.06)  --max-grad-norm X (1.0)  --grad-accum N (1)  --batch-tokens N (2048)\n"
        "        --batch-size N (no limit)\n"
        "        --seed N (42)  --eval-every N (epoch ends only)  --patience N\n"
        "        --metric accuracy|macro_f1 (seq: accuracy) | f1|token_accuracy (token: f1, entity-level micro)\n"
        "        --checkpoint-every N  --resume (continue DIR's run)  --overwrite (replace DIR's run)  --no-progress\n"
        "        --dump-batches FILE (each step's example indices: to train another tool on the same batches)\n"
        "Writes DIR/best (best dev metric) and DIR/final as PEFT adapters, DIR/log.jsonl, DIR/checkpoint.\n"
        "DIR must be new or empty unless --resume or --overwrite; one process writes it at a time.\n");
}

int cmd_train(int argc, char **argv) {
    cls_args a = {0};
    ll_data_options_default(&a.data_opt);
    ll_train_options_default(&a.to);
    a.to.progress = 1;
    a.max_length = 256;
    a.cc = (ll_classifier_config){.pool = LL_POOL_LAST, .bidirectional_from = -1, .lora_r = 12, .lora_alpha = 32,
                                  .lora_dropout = 0.1f};
    a.targets = "q,v";
    ll_token_data_options_default(&a.tok_opt);
    int mask_bidir = -1, metric = -1, ok = 1;
    double head_dropout = -1;
    long n;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = parse_common("train", &a, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            train_usage(stdout);
            return 0;
        } else if (!strcmp(o, "--train") && v) a.train = argv[++i];
        else if (!strcmp(o, "--dev") && v) a.dev = argv[++i];
        else if (!strcmp(o, "--out") && v) a.out = argv[++i];
        else if (!strcmp(o, "--pool") && v) {
            const char *p = argv[++i];
            a.cc.pool = !strcmp(p, "last") ? LL_POOL_LAST : !strcmp(p, "mean") ? LL_POOL_MEAN
                      : !strcmp(p, "max") ? LL_POOL_MAX : !strcmp(p, "first") ? LL_POOL_FIRST : (ll_pool)-1;
            if ((int)a.cc.pool < 0) {
                fprintf(stderr, "lsllama train: --pool must be last, mean, max or first\n");
                return 2;
            }
        } else if (!strcmp(o, "--mask") && v) {
            const char *m = argv[++i];
            if (strcmp(m, "causal") && strcmp(m, "bidirectional")) {
                fprintf(stderr, "lsllama train: --mask must be causal or bidirectional\n");
                return 2;
            }
            mask_bidir = !strcmp(m, "bidirectional");
        } else if (!strcmp(o, "--bidirectional-from") && v) {
            if (!cli_parse_int("train", o, argv[++i], 0, 1 << 20, &n)) return 2;
            a.cc.bidirectional_from = (int)n;
        } else if (!strcmp(o, "--head-bias")) a.cc.head_bias = 1;
        else if (!strcmp(o, "--head-dropout") && v) head_dropout = parse_float("train", o, argv[++i], 0, 1, 1, &ok);
        else if (!strcmp(o, "--task") && v) {
            const char *t = argv[++i];
            if (strcmp(t, "seq") && strcmp(t, "token")) {
                fprintf(stderr, "lsllama train: --task must be seq or token\n");
                return 2;
            }
            a.token_task = !strcmp(t, "token");
        }
        else if (!strcmp(o, "--lora-r") && v) {
            if (!cli_parse_int("train", o, argv[++i], 0, 4096, &n)) return 2;
            a.cc.lora_r = (int)n;
        } else if (!strcmp(o, "--lora-alpha") && v) a.cc.lora_alpha = (float)parse_float("train", o, argv[++i], 1e-6, 1e6, 0, &ok);
        else if (!strcmp(o, "--lora-dropout") && v) a.cc.lora_dropout = (float)parse_float("train", o, argv[++i], 0, 1, 1, &ok);
        else if (!strcmp(o, "--lora-targets") && v) a.targets = argv[++i];
        else if (!strcmp(o, "--rslora")) a.cc.use_rslora = 1;
        else if (!strcmp(o, "--head-only")) a.head_only = 1;
        else if (!strcmp(o, "--epochs") && v) {
            if (!cli_parse_int("train", o, argv[++i], 1, 100000, &n)) return 2;
            a.to.epochs = (int)n;
        } else if (!strcmp(o, "--max-steps") && v) {
            if (!cli_parse_int("train", o, argv[++i], 1, 1L << 40, &n)) return 2;
            a.to.max_steps = n;
        } else if (!strcmp(o, "--lr") && v) a.to.lr = (float)parse_float("train", o, argv[++i], 1e-12, 10, 0, &ok);
        else if (!strcmp(o, "--weight-decay") && v) a.to.weight_decay = (float)parse_float("train", o, argv[++i], 0, 10, 0, &ok);
        else if (!strcmp(o, "--warmup-ratio") && v) a.to.warmup_ratio = (float)parse_float("train", o, argv[++i], 0, 1, 0, &ok);
        else if (!strcmp(o, "--max-grad-norm") && v) a.to.max_grad_norm = (float)parse_float("train", o, argv[++i], 0, 1e6, 0, &ok);
        else if (!strcmp(o, "--grad-accum") && v) {
            if (!cli_parse_int("train", o, argv[++i], 1, 1 << 16, &n)) return 2;
            a.to.grad_accum = (int)n;
        } else if (!strcmp(o, "--batch-size") && v) {
            if (!cli_parse_int("train", o, argv[++i], 1, 1 << 20, &n)) return 2;
            a.to.batch_seqs = (size_t)n;
        } else if (!strcmp(o, "--seed") && v) {
            if (!cli_parse_int("train", o, argv[++i], 0, 1L << 62, &n)) return 2;
            a.to.seed = (uint64_t)n;
        } else if (!strcmp(o, "--eval-every") && v) {
            if (!cli_parse_int("train", o, argv[++i], 1, 1L << 40, &n)) return 2;
            a.to.eval_every = n;
        } else if (!strcmp(o, "--patience") && v) {
            if (!cli_parse_int("train", o, argv[++i], 1, 1 << 20, &n)) return 2;
            a.to.patience = (int)n;
        } else if (!strcmp(o, "--metric") && v) {
            const char *m = argv[++i];
            metric = !strcmp(m, "accuracy") ? LL_METRIC_ACCURACY : !strcmp(m, "macro_f1") ? LL_METRIC_MACRO_F1
                   : !strcmp(m, "f1") ? LL_METRIC_ENTITY_F1 : !strcmp(m, "token_accuracy") ? LL_METRIC_TOKEN_ACCURACY
                   : -1;
            if (metric < 0) {
                fprintf(stderr, "lsllama train: --metric must be accuracy, macro_f1, f1 or token_accuracy\n");
                return 2;
            }
        } else if (!strcmp(o, "--checkpoint-every") && v) {
            if (!cli_parse_int("train", o, argv[++i], 1, 1L << 40, &n)) return 2;
            a.to.checkpoint_every = n;
        } else if (!strcmp(o, "--stop-after-steps") && v) { /* testing: end as if killed */
            if (!cli_parse_int("train", o, argv[++i], 1, 1L << 40, &n)) return 2;
            a.to.stop_after_steps = n;
        } else if (!strcmp(o, "--dump-batches") && v) a.to.batches_out = argv[++i];
        else if (!strcmp(o, "--resume")) a.to.resume = 1;
        else if (!strcmp(o, "--overwrite")) a.to.overwrite = 1;
        else if (o[0] == '-' || a.model) {
            cli_unexpected("train", o, !v,
                           COMMON_VALUE_OPTS " --train --dev --out --pool --mask --bidirectional-from --head-dropout "
                                             "--task --lora-r --lora-alpha --lora-dropout --lora-targets --epochs "
                                             "--max-steps --lr --weight-decay --warmup-ratio --max-grad-norm "
                                             "--grad-accum --batch-size --seed --eval-every --patience --metric "
                                             "--checkpoint-every --stop-after-steps --dump-batches");
            return 2;
        } else a.model = o;
        if (!ok) return 2;
    }
    if (!a.model || !a.train || !a.out) {
        fprintf(stderr, "lsllama train: MODEL, --train and --out are required (see --help)\n");
        return 2;
    }
    /* token tasks: LS-unLLaMA's defaults and transformers' token head */
    if (a.token_task) {
        if (a.cc.multi_label) {
            fprintf(stderr, "lsllama train: --multi-label is for sequence tasks\n");
            return 2;
        }
        if (metric == LL_METRIC_ACCURACY || metric == LL_METRIC_MACRO_F1) {
            fprintf(stderr, "lsllama train: --metric for token tasks is f1 or token_accuracy\n");
            return 2;
        }
        a.to.metric = metric < 0 ? LL_METRIC_ENTITY_F1 : metric;
        a.cc.token_task = 1;
        a.cc.head_bias = 1;
        a.cc.head_dropout = head_dropout < 0 ? 0.1f : (float)head_dropout;
        if (mask_bidir < 0 && a.cc.bidirectional_from < 0) mask_bidir = 1;
    } else {
        if (metric == LL_METRIC_ENTITY_F1 || metric == LL_METRIC_TOKEN_ACCURACY) {
            fprintf(stderr, "lsllama train: --metric for sequence tasks is accuracy or macro_f1\n");
            return 2;
        }
        if (head_dropout >= 0) {
            fprintf(stderr, "lsllama train: --head-dropout is for token tasks (transformers' sequence head has none)\n");
            return 2;
        }
        if (metric >= 0) a.to.metric = metric;
    }
    if (a.head_only) a.cc.lora_r = 0, a.cc.lora_targets = 0;
    else if (a.cc.lora_r == 0) {
        fprintf(stderr, "lsllama train: --lora-r 0 with LoRA requested (use --head-only to train the head alone)\n");
        return 2;
    } else if (!parse_targets(a.targets, &a.cc.lora_targets)) return 2;
    ll_error err = {0};
    ll_model *m = NULL;
    ll_tokenizer *tok = NULL;
    ll_labelmap *map = NULL;
    ll_dataset *train = NULL, *dev = NULL;
    ll_classifier *c = NULL;
    ll_run_dir *run_dir = NULL;
    int rc = 1;
    if (a.to.resume && a.to.overwrite) {
        fprintf(stderr, "lsllama train: --resume and --overwrite exclude each other\n");
        return 2;
    }
    /* Lock and check --out before minutes of loading: a finished run is never replaced unasked. */
    if (ll_run_dir_open(&run_dir, a.out, a.to.resume ? LL_RUN_RESUME : a.to.overwrite ? LL_RUN_OVERWRITE : LL_RUN_NEW,
                        &err)) {
        fprintf(stderr, "lsllama train: --out %s\n", err.message);
        return 1;
    }
    a.to.run_dir = run_dir;
    if (ll_model_load(&m, a.model, NULL, &err) || ll_tokenizer_load(&tok, a.tokenizer ? a.tokenizer : a.model, &err)) {
        fprintf(stderr, "lsllama train: %s\n", err.message);
        goto done;
    }
    cli_tokenizer_warning("train", tok);
    if (!check_model_bounds("train", a.max_length, a.max_length_given, a.cc.bidirectional_from, m)) {
        rc = 2;
        goto done;
    }
    const int L = ll_model_config(m)->n_layers;
    if (a.cc.bidirectional_from < 0) a.cc.bidirectional_from = mask_bidir > 0 ? 0 : L;
    if (load_split("train", &a, a.train, tok, &map, &train)) goto done;
    if (!a.token_task && train->multi_label) { /* JSONL label arrays make the data multi-label on their own */
        a.cc.multi_label = 1;
        a.data_opt.multi_label = 1;
    }
    if (a.dev && load_split("train", &a, a.dev, tok, &map, &dev)) goto done;
    a.cc.n_labels = map->n;
    if (ll_classifier_create(&c, m, &a.cc, a.to.seed, &err)) {
        fprintf(stderr, "lsllama train: %s\n", err.message);
        goto done;
    }
    a.to.out_dir = a.out;
    a.to.base_model_name = a.model;
    a.to.label_names = (const char *const *)map->names;
    fprintf(stderr, "training %zu trainable parameters (LoRA r=%d on %s, %d labels), %s attention, %s\n",
            c->n_params, a.cc.lora_r, a.head_only ? "nothing" : a.targets, map->n,
            a.cc.bidirectional_from >= L ? "causal" : a.cc.bidirectional_from == 0 ? "bidirectional" : "mixed",
            a.token_task ? "token head" : (const char *[]){"last pooling", "mean pooling", "max pooling",
                                                            "first pooling"}[a.cc.pool]);
    ll_train_result res = {0};
    if (ll_train(c, train, dev, &a.to, &res, &err)) {
        fprintf(stderr, "lsllama train: %s\n", err.message);
        goto done;
    }
    if (a.to.stop_after_steps > 0 && res.steps == 0) {
        rc = 0;
        goto done;
    }
    /* only what exists: without --dev (or before its first evaluation) there is no best adapter */
    printf("steps %lld, %.1f s, %.0f training tokens/s; ", (long long)res.steps, res.seconds, res.train_tokens_per_s);
    if (dev && res.best_step >= 0)
        printf("best dev %s %.4f at step %lld; adapters in %s/best and %s/final\n",
               (const char *[]){"accuracy", "macro-F1", "entity F1", "token accuracy"}[a.to.metric], res.best_metric,
               (long long)res.best_step, a.out, a.out);
    else
        printf("%s; adapter in %s/final\n", dev ? "no dev evaluation ran" : "no --dev file, so no best adapter",
               a.out);
    rc = 0;
done:
    ll_classifier_free(c);
    ll_dataset_free(train);
    ll_dataset_free(dev);
    ll_labelmap_free(map);
    ll_tokenizer_free(tok);
    ll_model_free(m);
    ll_run_dir_close(run_dir);
    return rc;
}

/* ---- eval ----------------------------------------------------------------------- */

/* A trained classifier ready to use: base model, tokenizer, adapter, labels. */
typedef struct cls_session {
    ll_model *m;
    ll_tokenizer *tok;
    ll_classifier *c;
    ll_adapter_info info;
    ll_labelmap *map;
} cls_session;

/* MODEL with --adapter DIR, or a folder written by `lsllama merge` alone. */
static int session_open(const char *cmd, const cls_args *a, cls_session *s) {
    ll_error err = {0};
    memset(s, 0, sizeof *s);
    if (!a->adapter && !ll_merged_is_classifier(a->model)) {
        fprintf(stderr, "lsllama %s: %s is not a merged classifier folder (config.json with a "
                        "*ForSequenceClassification or *ForTokenClassification architecture): give --adapter DIR\n",
                cmd, a->model);
        return 2;
    }
    if (ll_model_load(&s->m, a->model, NULL, &err) ||
        ll_tokenizer_load(&s->tok, a->tokenizer ? a->tokenizer : a->model, &err) ||
        (a->adapter ? ll_adapter_load(a->adapter, s->m, NULL, &s->c, &s->info, &err)
                    : ll_merged_load(a->model, s->m, &s->c, &s->info, &err)) ||
        ll_labelmap_from_names(&s->map, (const char *const *)s->info.id2label, s->info.n_labels, &err)) {
        fprintf(stderr, "lsllama %s: %s\n", cmd, err.message);
        return 1;
    }
    cli_tokenizer_warning(cmd, s->tok);
    if (!check_model_bounds(cmd, a->max_length, a->max_length_given, -1, s->m)) return 2;
    return 0;
}

/* 1 if every figure of m is finite; else names the first one that is not. */
static int metrics_finite(const char *cmd, const char *path, const ll_class_metrics *m, double loss) {
    const char *bad = !isfinite(loss) ? "mean loss" : !isfinite(m->accuracy) ? "accuracy"
                    : !isfinite(m->macro_precision) || !isfinite(m->macro_recall) || !isfinite(m->macro_f1) ? "macro average"
                    : !isfinite(m->weighted_precision) || !isfinite(m->weighted_recall) || !isfinite(m->weighted_f1)
                        ? "weighted average"
                    : m->multi_label && !(isfinite(m->micro_precision) && isfinite(m->micro_recall) &&
                                          isfinite(m->micro_f1)) ? "micro average"
                    : m->multi_label && !(isfinite(m->samples_precision) && isfinite(m->samples_recall) &&
                                          isfinite(m->samples_f1)) ? "samples average" : NULL;
    for (int k = 0; !bad && k < m->n_classes; k++)
        if (!isfinite(m->precision[k]) || !isfinite(m->recall[k]) || !isfinite(m->f1[k])) bad = "per-class figures";
    if (bad) fprintf(stderr, "lsllama %s: %s: non-finite %s (model or adapter weights corrupt?)\n", cmd, path, bad);
    return !bad;
}

/* Eval of a token classifier: entity-level metrics as seqeval computes them. */
static int eval_tokens(const cls_args *a, cls_session *ss) {
    ll_error err = {0};
    ll_dataset *ds = NULL;
    ll_ner_report rep = {0};
    double loss = 0;
    int rc = 1;
    if (load_token_split("eval", a, a->data, ss->tok, &ss->map, 0, &ds)) return 1;
    cli_progress pr;
    cli_progress_init(&pr, "eval", "windows", !a->no_progress);
    const ll_eval_progress ep = {cli_progress_update, &pr};
    const int erc = ll_evaluate_tokens_progress(ss->c, ds, ss->map, a->to.batch_tokens, &rep, &loss, NULL, NULL, &ep, &err);
    cli_progress_end(&pr);
    if (erc) {
        fprintf(stderr, "lsllama eval: %s\n", err.message);
        goto done;
    }
    if (!isfinite(loss) || !isfinite(rep.micro_f1) || !isfinite(rep.token_accuracy)) {
        fprintf(stderr, "lsllama eval: %s: non-finite %s (model or adapter weights corrupt?)\n", a->data,
                !isfinite(loss) ? "mean loss" : "metrics");
        goto done;
    }
    if (a->json) {
        cJSON *j = ll_ner_report_json(&rep);
        char *text = j ? cJSON_PrintUnformatted(j) : NULL;
        cJSON_Delete(j);
        if (!text) {
            fprintf(stderr, "lsllama eval: out of memory\n");
            goto done;
        }
        printf("%s\n", text);
        free(text);
    } else {
        printf("%s: %zu sentences, %zu words, mean token loss %.4f\n\n", a->data, ds->n_sent, ds->n_words, loss);
        ll_ner_report_print(stdout, &rep);
    }
    rc = 0;
done:
    ll_ner_report_free(&rep);
    ll_dataset_free(ds);
    return rc;
}

static void session_close(cls_session *s) {
    ll_labelmap_free(s->map);
    ll_adapter_info_free(&s->info);
    ll_classifier_free(s->c);
    ll_tokenizer_free(s->tok);
    ll_model_free(s->m);
}

int cmd_eval(int argc, char **argv) {
    cls_args a = {0};
    ll_data_options_default(&a.data_opt);
    ll_token_data_options_default(&a.tok_opt);
    a.max_length = 256;
    a.to.batch_tokens = 2048;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = parse_common("eval", &a, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            printf("usage: lsllama eval MODEL [--adapter DIR] --data FILE [--json] [--no-progress]\n"
                   "                      [data options as for train]\n\n"
                   "scikit-learn's classification_report of a trained adapter on a labelled file (per-class\n"
                   "precision/recall/F1/support; accuracy, macro and weighted averages; multi-label: micro,\n"
                   "macro, weighted and samples averages and subset accuracy) and, single-label, the confusion\n"
                   "matrix with its gold and predicted labels; as a table (or one JSON object with --json).\n"
                   "For a token (NER) adapter: seqeval's classification_report (entity-level precision/recall/\n"
                   "F1 per type; micro, macro and weighted averages, as seqeval computes them by default)\n"
                   "and token accuracy. Ratios with nothing to divide by are 0, the default of both.\n"
                   "MODEL without --adapter: a folder written by `lsllama merge`.\n"
                   "A progress line goes to stderr while it is a terminal (--no-progress: none).\n");
            return 0;
        } else if (!strcmp(o, "--adapter") && v) a.adapter = argv[++i];
        else if (!strcmp(o, "--data") && v) a.data = argv[++i];
        else if (o[0] == '-' || a.model) {
            cli_unexpected("eval", o, !v, COMMON_VALUE_OPTS " --adapter --data");
            return 2;
        } else a.model = o;
    }
    if (!a.model || !a.data) {
        fprintf(stderr, "lsllama eval: MODEL and --data are required, and --adapter unless MODEL is a merged "
                        "folder (see --help)\n");
        return 2;
    }
    cls_session ss;
    ll_dataset *ds = NULL;
    ll_class_metrics met = {0};
    ll_error err = {0};
    int rc = session_open("eval", &a, &ss);
    if (rc) goto done;
    rc = 1;
    if (ss.c->cfg.token_task) {
        rc = eval_tokens(&a, &ss);
        goto done;
    }
    a.data_opt.multi_label = ss.c->cfg.multi_label; /* the adapter says how to read the labels */
    if (load_split("eval", &a, a.data, ss.tok, &ss.map, &ds)) goto done;
    ll_classifier *c = ss.c;
    const ll_labelmap *map = ss.map;
    double loss;
    if (!(c->cfg.multi_label ? ll_metrics_init_multi(&met, map->n) : ll_metrics_init(&met, map->n))) {
        fprintf(stderr, "lsllama eval: out of memory\n");
        goto done;
    }
    cli_progress pr;
    cli_progress_init(&pr, "eval", "examples", !a.no_progress);
    const ll_eval_progress ep = {cli_progress_update, &pr};
    const int erc = ll_evaluate_progress(c, ds, a.to.batch_tokens, &met, &loss, &ep, &err);
    cli_progress_end(&pr);
    if (erc) {
        fprintf(stderr, "lsllama eval: %s\n", err.message);
        goto done;
    }
    if (!metrics_finite("eval", a.data, &met, loss)) goto done;
    if (a.json) ll_metrics_write_json(&met, (const char *const *)map->names, stdout);
    else {
        printf("%s: %lld examples, mean loss %.4f\n\n", a.data, (long long)met.total, loss);
        ll_metrics_write_table(&met, (const char *const *)map->names, stdout);
    }
    rc = 0;
done:
    ll_metrics_free(&met);
    ll_dataset_free(ds);
    session_close(&ss);
    return rc;
}

/* ---- predict -------------------------------------------------------------------- */

static void json_str_n(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        const unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

static void json_str(FILE *f, const char *s) { json_str_n(f, s, strlen(s)); }

/* Token task: each sentence's words, their predicted tags, and the entity
 * spans (seqeval's chunking of the predicted tags) with character offsets
 * into the sentence text and a score: the mean softmax probability of the
 * entity's words' tags. */
static int predict_tokens(const cls_args *a, cls_session *ss) {
    ll_error err = {0};
    ll_dataset *ds = NULL;
    int32_t *pred = NULL;
    float *score = NULL;
    ll_strset *types = ll_strset_new();
    ll_entity_list ents = {0};
    const char **tags = NULL;
    int rc = 1;
    if (!types || load_token_split("predict", a, a->input, ss->tok, &ss->map, 1, &ds)) goto done;
    pred = malloc((ds->n_words + 1) * sizeof *pred);
    score = malloc((ds->n_words + 1) * sizeof *score);
    tags = malloc((ds->n_words + 1) * sizeof *tags);
    if (!pred || !score || !tags) {
        fprintf(stderr, "lsllama predict: out of memory\n");
        goto done;
    }
    cli_progress pr;
    cli_progress_init(&pr, "predict", "windows", !a->no_progress);
    const ll_eval_progress ep = {cli_progress_update, &pr};
    const int erc = ll_evaluate_tokens_progress(ss->c, ds, ss->map, a->to.batch_tokens, NULL, NULL, pred, score, &ep, &err);
    cli_progress_end(&pr);
    if (erc) {
        fprintf(stderr, "lsllama predict: %s\n", err.message);
        goto done;
    }
    if (!cli_all_finite(score, ds->n_words)) { /* cannot happen with finite logits; never print nan */
        fprintf(stderr, "lsllama predict: %s: non-finite tag scores (model or adapter weights corrupt?)\n", ds->path);
        goto done;
    }
    for (size_t s = 0; s < ds->n_sent; s++) {
        const ll_sentence *st = &ds->sent[s];
        const char *text = ll_sentence_text(ds, s);
        for (int w = 0; w < st->n_words; w++) {
            const int32_t p = pred[st->word_off + w];
            tags[w] = p >= 0 ? ss->map->names[p] : "O"; /* no token, and the tags have no O */
        }
        ents.n = 0;
        if (ll_seqeval_entities(tags, (size_t)st->n_words, types, &ents, &err) < 0) {
            fprintf(stderr, "lsllama predict: %s\n", err.message);
            goto done;
        }
        fputs("{\"text\": ", stdout);
        json_str_n(stdout, text, st->text_len);
        fputs(", \"words\": [", stdout);
        for (int w = 0; w < st->n_words; w++) {
            fputs(w ? ", " : "", stdout);
            json_str(stdout, ll_word_text(ds, (size_t)(st->word_off + w)));
        }
        fputs("], \"tags\": [", stdout);
        for (int w = 0; w < st->n_words; w++) {
            fputs(w ? ", " : "", stdout);
            json_str(stdout, tags[w]);
        }
        fputs("], \"entities\": [", stdout);
        for (size_t e = 0; e < ents.n; e++) {
            const ll_word *first = &ds->words[st->word_off + ents.v[e].start],
                          *last = &ds->words[st->word_off + ents.v[e].end - 1];
            double sc = 0;
            for (int w = ents.v[e].start; w < ents.v[e].end; w++) sc += score[st->word_off + w];
            sc /= (double)(ents.v[e].end - ents.v[e].start);
            fputs(e ? ", " : "", stdout);
            fputs("{\"type\": ", stdout);
            json_str(stdout, ll_strset_get(types, ents.v[e].type));
            fputs(", \"text\": ", stdout);
            json_str_n(stdout, text + first->byte_start, (size_t)(last->byte_end - first->byte_start));
            printf(", \"start\": %d, \"end\": %d, \"word_start\": %d, \"word_end\": %d, \"score\": %.6f}",
                   first->char_start, last->char_end, ents.v[e].start, ents.v[e].end, sc);
        }
        fputs("]}\n", stdout);
        if (!cli_output_ok("predict", stdout, "standard output")) goto done; /* stop at the first failed write */
    }
    rc = 0;
done:
    ll_entity_list_free(&ents);
    ll_strset_free(types);
    free(tags);
    free(pred);
    free(score);
    ll_dataset_free(ds);
    return rc;
}

int cmd_predict(int argc, char **argv) {
    cls_args a = {0};
    ll_data_options_default(&a.data_opt);
    ll_token_data_options_default(&a.tok_opt);
    a.data_opt.format = LL_DATA_LINES;
    a.data_opt.no_labels = 1;
    a.max_length = 256;
    a.to.batch_tokens = 2048;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = parse_common("predict", &a, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            printf("usage: lsllama predict MODEL [--adapter DIR] [--input FILE] [--format lines|tsv|csv|jsonl|conll\n"
                   "                         --text-column C] [--no-progress]\n\n"
                   "Classifies text lines (stdin or FILE; or a column of a data file) and writes one JSON\n"
                   "object per input: {\"text\", \"label\", \"probabilities\": {label: p, ...}}.\n"
                   "A token (NER) adapter reads text lines (words split on whitespace) or pre-split words\n"
                   "(--format conll or jsonl with a \"tokens\" field) and writes per sentence {\"text\", \"words\",\n"
                   "\"tags\", \"entities\": [{\"type\", \"text\", \"start\", \"end\" (character offsets in text),\n"
                   "\"word_start\", \"word_end\", \"score\" (mean tag probability of its words)}]}.\n"
                   "MODEL without --adapter: a folder written by `lsllama merge`.\n"
                   "A progress line goes to stderr while it is a terminal (--no-progress: none).\n");
            return 0;
        } else if (!strcmp(o, "--adapter") && v) a.adapter = argv[++i];
        else if (!strcmp(o, "--input") && v) a.input = argv[++i];
        else if (o[0] == '-' || a.model) {
            cli_unexpected("predict", o, !v, COMMON_VALUE_OPTS " --adapter --input");
            return 2;
        } else a.model = o;
    }
    if (!a.model) {
        fprintf(stderr, "lsllama predict: MODEL is required, and --adapter unless MODEL is a merged folder (see "
                        "--help)\n");
        return 2;
    }
    if (a.data_opt.format != LL_DATA_LINES) a.data_opt.no_labels = 1;
    cls_session ss;
    ll_dataset *ds = NULL;
    ll_batch_plan plan = {0};
    ll_batch_buf buf = {0};
    ll_error err = {0};
    int rc = session_open("predict", &a, &ss);
    if (rc) goto done;
    rc = 1;
    if (ss.c->cfg.token_task) {
        if (a.data_opt.format == LL_DATA_LINES || a.tok_opt.format == LL_DATA_AUTO) a.tok_opt.format = a.data_opt.format;
        rc = predict_tokens(&a, &ss);
        goto done;
    }
    ll_classifier *c = ss.c;
    const ll_labelmap *map = ss.map;
    int load_rc;
    if (a.input) {
        load_rc = ll_dataset_load(&ds, a.input, &a.data_opt, &err);
    } else {
        size_t len;
        char *text = read_stdin("predict", &len);
        if (!text) goto done;
        load_rc = ll_dataset_load_memory(&ds, text, len, "<stdin>", &a.data_opt, &err);
        free(text);
    }
    if (load_rc || ll_dataset_tokenize(ds, ss.tok, (int)a.max_length, &err)) {
        fprintf(stderr, "lsllama predict: %s\n", err.message);
        goto done;
    }
    ll_batching_options bo = {.max_batch_tokens = a.to.batch_tokens};
    if (ll_batch_plan_make(&plan, ds, &bo, &err) || ll_batch_buf_reserve(&buf, plan.max_tokens, plan.max_seqs, map->n, &err)) {
        fprintf(stderr, "lsllama predict: %s\n", err.message);
        goto done;
    }
    const int K = map->n;
    cli_progress pr;
    cli_progress_init(&pr, "predict", "examples", !a.no_progress);
    size_t done_ex = 0;
    for (size_t b = 0; b < plan.n_batches; b++) {
        if (ll_batch_fill(&buf, ds, &plan, b, &err) || ll_classifier_forward(c, &buf.batch, 0, 0, NULL, &err)) {
            cli_progress_end(&pr);
            fprintf(stderr, "lsllama predict: %s\n", err.message);
            goto done;
        }
        for (int s = 0; s < buf.batch.n_seqs; s++)
            if (!cli_all_finite(c->logits + (size_t)s * K, (size_t)K)) {
                /* nan/inf never reach the JSON: the input line and the likely cause */
                cli_progress_end(&pr);
                fprintf(stderr, "lsllama predict: %s:%d: non-finite logits (model or adapter weights corrupt?)\n",
                        ds->path, ds->ex[buf.example_ids[s]].line);
                goto done;
            }
        for (int s = 0; s < buf.batch.n_seqs && c->cfg.multi_label; s++) {
            /* multi-label: independent sigmoids; the labels are those above 0.5 */
            const float *z = c->logits + (size_t)s * K;
            fputs("{\"text\": ", stdout);
            json_str(stdout, ll_example_text(ds, (size_t)buf.example_ids[s]));
            fputs(", \"labels\": [", stdout);
            for (int k = 0, first = 1; k < K; k++)
                if (z[k] > 0) {
                    fputs(first ? "" : ", ", stdout);
                    json_str(stdout, map->names[k]);
                    first = 0;
                }
            fputs("], \"probabilities\": {", stdout);
            for (int k = 0; k < K; k++) {
                fputs(k ? ", " : "", stdout);
                json_str(stdout, map->names[k]);
                printf(": %.6f", 1.0 / (1.0 + exp(-(double)z[k])));
            }
            fputs("}}\n", stdout);
            if (!cli_output_ok("predict", stdout, "standard output")) break;
        }
        for (int s = 0; s < buf.batch.n_seqs && !c->cfg.multi_label; s++) {
            const float *z = c->logits + (size_t)s * K;
            int best = 0;
            for (int k = 1; k < K; k++)
                if (z[k] > z[best]) best = k;
            double se = 0;
            for (int k = 0; k < K; k++) se += exp((double)z[k] - z[best]);
            fputs("{\"text\": ", stdout);
            json_str(stdout, ll_example_text(ds, (size_t)buf.example_ids[s]));
            fputs(", \"label\": ", stdout);
            json_str(stdout, map->names[best]);
            fputs(", \"probabilities\": {", stdout);
            for (int k = 0; k < K; k++) {
                fputs(k ? ", " : "", stdout);
                json_str(stdout, map->names[k]);
                printf(": %.6f", exp((double)z[k] - z[best]) / se);
            }
            fputs("}}\n", stdout);
            if (!cli_output_ok("predict", stdout, "standard output")) break;
        }
        done_ex += (size_t)buf.batch.n_seqs;
        if (!cli_output_ok("predict", stdout, "standard output")) { /* stop at the first failed write */
            cli_progress_end(&pr);
            goto done;
        }
        cli_progress_update(&pr, done_ex, ds->n);
    }
    cli_progress_end(&pr);
    rc = 0;
done:
    ll_batch_plan_free(&plan);
    ll_batch_buf_free(&buf);
    ll_dataset_free(ds);
    session_close(&ss);
    return rc;
}

/* ---- merge ---------------------------------------------------------------------- */

int cmd_merge(int argc, char **argv) {
    const char *model = NULL, *adapter = NULL, *out = NULL, *dtype = "f32", *tok_path = NULL;
    int overwrite = 0, allow_inexact = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            printf("usage: lsllama merge MODEL --adapter DIR --out DIR [--dtype f32|f16|bf16] [--tokenizer PATH]\n"
                   "                    [--overwrite] [--allow-inexact]\n\n"
                   "Writes a Hugging Face model folder (config.json with id2label, label2id and pad_token_id,\n"
                   "model.safetensors, tokenizer.json + tokenizer_config.json from the base's tokenizer (MODEL, or\n"
                   "--tokenizer), README.md) with the LoRA deltas merged into the base weights and the score head,\n"
                   "for adapter-free inference: transformers' *ForSequenceClassification (or\n"
                   "*ForTokenClassification for a TOKEN_CLS adapter) and pipeline(), or `lsllama predict/eval DIR`.\n"
                   "A classifier transformers would compute differently (pooling other than last, bidirectional\n"
                   "attention, a non-zero head bias, a tokenizer without an exact tokenizer.json, ...) is refused\n"
                   "with the reasons; --allow-inexact writes it anyway and records the reasons in README.md and\n"
                   "config.json (\"lsllama_inexact\"). DIR must be new or empty; --overwrite replaces an earlier\n"
                   "merged model there (never a file the merge does not write). The folder is written beside DIR\n"
                   "and swapped in whole.\n");
            return 0;
        } else if (!strcmp(o, "--adapter") && v) adapter = argv[++i];
        else if (!strcmp(o, "--out") && v) out = argv[++i];
        else if (!strcmp(o, "--dtype") && v) dtype = argv[++i];
        else if (!strcmp(o, "--tokenizer") && v) tok_path = argv[++i];
        else if (!strcmp(o, "--overwrite")) overwrite = 1;
        else if (!strcmp(o, "--allow-inexact")) allow_inexact = 1;
        else if (o[0] == '-' || model) {
            cli_unexpected("merge", o, !v, "--adapter --out --dtype --tokenizer");
            return 2;
        } else model = o;
    }
    if (!model || !adapter || !out) {
        fprintf(stderr, "lsllama merge: MODEL, --adapter and --out are required (see --help)\n");
        return 2;
    }
    ll_merge_options mo = ll_merge_options_default();
    if (!strcmp(dtype, "f32")) mo.dtype = LL_DTYPE_F32;
    else if (!strcmp(dtype, "f16")) mo.dtype = LL_DTYPE_F16;
    else if (!strcmp(dtype, "bf16")) mo.dtype = LL_DTYPE_BF16;
    else {
        fprintf(stderr, "lsllama merge: --dtype must be f32, f16 or bf16\n");
        return 2;
    }
    /* an earlier merged model (or anything else) in --out is replaced only when asked */
    DIR *od = overwrite ? NULL : opendir(out);
    for (struct dirent *e; od && (e = readdir(od));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            fprintf(stderr, "lsllama merge: --out %s is not empty (holds '%s'): choose a new folder, or pass "
                            "--overwrite to replace a merged model there\n", out, e->d_name);
            closedir(od);
            return 1;
        }
    if (od) closedir(od);
    ll_error err = {0};
    ll_model *m = NULL;
    ll_classifier *c = NULL;
    ll_adapter_info info = {0};
    ll_tokenizer *tok = NULL;
    int rc = 1;
    if (ll_model_load(&m, model, NULL, &err) || ll_adapter_load(adapter, m, NULL, &c, &info, &err)) {
        fprintf(stderr, "lsllama merge: %s\n", err.message);
        goto done;
    }
    /* the folder is complete only with the tokenizer */
    if (ll_tokenizer_load(&tok, tok_path ? tok_path : model, &err)) {
        if (!allow_inexact) {
            fprintf(stderr, "lsllama merge: %s\n(the merged folder needs the base's tokenizer: give --tokenizer PATH; "
                            "--allow-inexact writes the folder without tokenizer files)\n", err.message);
            goto done;
        }
        fprintf(stderr, "lsllama merge: warning: no tokenizer files written: %s\n", err.message);
    }
    mo.id2label = (const char *const *)info.id2label;
    mo.task_type = info.task_type; /* TOKEN_CLS: *ForTokenClassification */
    mo.tokenizer = tok;
    mo.tokenizer_source = tok_path ? tok_path : model;
    mo.allow_inexact = allow_inexact;
    ll_merge_report rep = {0};
    if (ll_merge_check(c, &mo, &rep, &err) || ll_merge_save(c, out, &mo, &err)) {
        fprintf(stderr, "lsllama merge: %s\n", err.message);
        goto done;
    }
    for (int i = 0; i < rep.n; i++)
        fprintf(stderr, "lsllama merge: warning: not exact in transformers: %s\n", rep.reason[i]);
    printf("merged model written to %s%s\n", out, rep.n ? " (inexact in transformers: see its README.md)" : "");
    rc = 0;
done:
    ll_tokenizer_free(tok);
    ll_adapter_info_free(&info);
    ll_classifier_free(c);
    ll_model_free(m);
    return rc;
}
