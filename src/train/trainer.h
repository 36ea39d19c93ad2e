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

#include "lsllama_train.h"
#include "data/dataset.h"
#include "train/classifier.h"
#include "train/metrics.h"
#include "train/run_dir.h"
#include "train/seqeval.h"

/* ll_metric, ll_train_options (with its progress callback), ll_train_result,
 * ll_train and ll_eval_progress: include/lsllama_train.h. */

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
/* The same with progress per batch, and (tp non-NULL, planned with ll_token_probs_init) every word's token
 * probabilities. */
int ll_evaluate_tokens_progress(ll_classifier *c, const ll_dataset *ds, const ll_labelmap *map, size_t batch_tokens,
                                ll_ner_report *rep, double *mean_loss, int32_t *pred, float *score, ll_token_probs *tp,
                                const ll_eval_progress *progress, ll_error *err);

#endif
