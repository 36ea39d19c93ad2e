/* The training loop: length-bucketed packed batches, gradient accumulation,
 * global-norm clipping, AdamW under a linear warm-up schedule, evaluation on
 * the dev set every N steps and at each epoch end, the best adapter kept by
 * a dev metric (never the test set), optional early stopping, a JSONL log of
 * step metrics, atomic checkpoints every N steps and a bit-identical resume.
 *
 * Output folder:
 *   best/        PEFT adapter (+ label_map.json) with the best dev metric
 *   final/       PEFT adapter after the last step
 *   checkpoint/  state.safetensors (parameters, AdamW moments, step) + state.json
 *                (step, epoch, position, best metric, RNG seed, data-order hash,
 *                log length), committed as one folder (io/atomic_dir.h)
 *   log.jsonl    one line per optimiser step and per evaluation
 *   lsllama.lock the writer's lock (train/run_dir.h): one writer per folder
 *
 * A new run refuses a non-empty folder; resume needs checkpoint/ and cuts the
 * log back to the checkpoint's step; overwrite removes the earlier run's
 * entries first. A non-finite loss, gradient norm or dev loss stops training
 * with an error naming the step, before anything of that step is saved. */
#ifndef LL_TRAIN_TRAINER_H
#define LL_TRAIN_TRAINER_H

#include <stdint.h>

#include "data/dataset.h"
#include "train/classifier.h"
#include "train/metrics.h"
#include "train/run_dir.h"
#include "train/seqeval.h"

/* Dev metric that picks the best adapter. Token tasks: entity-level micro
 * F1 (seqeval's default) or token accuracy. */
enum { LL_METRIC_ACCURACY = 0, LL_METRIC_MACRO_F1 = 1, LL_METRIC_ENTITY_F1 = 2, LL_METRIC_TOKEN_ACCURACY = 3 };

typedef struct ll_train_options {
    int epochs;               /* passes over the training set */
    int64_t max_steps;        /* > 0: exactly this many optimiser steps, over as many epochs as that takes
                                 (overrides epochs, as transformers' max_steps) */
    float lr, weight_decay, warmup_ratio, max_grad_norm;
    float beta1, beta2, adam_eps;
    int grad_accum;           /* micro-batches per optimiser step */
    size_t batch_tokens;      /* token budget of one micro-batch */
    size_t batch_seqs;        /* 0: no limit */
    uint64_t seed;
    int64_t eval_every;       /* steps; 0: at epoch ends only */
    int patience;             /* stop after this many evaluations without improvement; 0: never */
    int metric;               /* LL_METRIC_* used to pick the best adapter */
    int64_t checkpoint_every; /* steps; 0: none */
    const char *out_dir;
    const char *base_model_name; /* written into adapter_config.json */
    const char *const *label_names;
    int resume;               /* continue from out_dir/checkpoint */
    int overwrite;            /* replace a finished run in out_dir (else a non-empty out_dir is refused) */
    ll_run_dir *run_dir;      /* optional: out_dir already opened (locked, checked) with ll_run_dir_open;
                                   NULL: ll_train opens it for the mode that resume / overwrite give */
    int progress;             /* progress line on stderr */
    int64_t stop_after_steps; /* > 0: end this run after that many steps without final save (tests a kill) */
    const char *batches_out;  /* optional: write each micro-batch's example indices, one line per batch
                                 (for running another trainer on exactly the same batches) */
} ll_train_options;

void ll_train_options_default(ll_train_options *o);

typedef struct ll_train_result {
    int64_t steps;
    double best_metric;
    int64_t best_step;
    double train_tokens_per_s;
    double seconds;
} ll_train_result;

int ll_train(ll_classifier *c, ll_dataset *train, ll_dataset *dev, const ll_train_options *o, ll_train_result *res,
             ll_error *err);

/* Optional progress report of an evaluation: fn(ctx, done, total) after
 * each batch, in examples (token tasks: windows) of ds->n. */
typedef struct ll_eval_progress {
    void (*fn)(void *ctx, size_t done, size_t total);
    void *ctx;
} ll_eval_progress;

/* Evaluate in file order: metrics (single-label) and mean loss. Non-finite
 * logits are an error naming the example's line. progress may be NULL. */
int ll_evaluate(ll_classifier *c, const ll_dataset *ds, size_t batch_tokens, ll_class_metrics *m, double *mean_loss,
                ll_error *err);
int ll_evaluate_progress(ll_classifier *c, const ll_dataset *ds, size_t batch_tokens, ll_class_metrics *m,
                         double *mean_loss, const ll_eval_progress *progress, ll_error *err);

/* Token task: run every window of ds (tokenized, labels applied through
 * map unless unlabelled), collect each word's prediction from the window
 * that owns it into pred / score (ds->n_words entries each; NULL: not
 * wanted), and when ds is labelled fill rep (entity-level, seqeval's
 * default) and the mean cross-entropy over labelled tokens (rep, mean_loss
 * may be NULL). Non-finite logits are an error naming the sentence's line. */
int ll_evaluate_tokens(ll_classifier *c, const ll_dataset *ds, const ll_labelmap *map, size_t batch_tokens,
                       ll_ner_report *rep, double *mean_loss, int32_t *pred, float *score, ll_error *err);
int ll_evaluate_tokens_progress(ll_classifier *c, const ll_dataset *ds, const ll_labelmap *map, size_t batch_tokens,
                                ll_ner_report *rep, double *mean_loss, int32_t *pred, float *score,
                                const ll_eval_progress *progress, ll_error *err);

#endif
