/* Classification metrics: accuracy, per-class precision/recall/F1 and
 * support, macro and weighted averages, confusion matrix (rows = gold,
 * columns = predicted). Definitions as scikit-learn's
 * precision_recall_fscore_support with zero_division=0.
 *
 * Multi-label (ll_metrics_init_multi): the same per-label figures over the
 * label indicator matrix, micro averages, and accuracy = subset accuracy
 * (every label of an example right), as scikit-learn computes them for
 * multilabel-indicator targets; no confusion matrix. */
#ifndef LL_TRAIN_METRICS_H
#define LL_TRAIN_METRICS_H

#include <stdint.h>
#include <stdio.h>

typedef struct ll_class_metrics {
    int n_classes;
    int64_t total, correct;
    int64_t *confusion;  /* [n_classes * n_classes] */
    double *precision, *recall, *f1; /* [n_classes] */
    int64_t *support;    /* gold count per class */
    double accuracy, macro_precision, macro_recall, macro_f1, weighted_f1;
    int multi_label;
    int64_t *ml_counts;  /* multi-label: tp, fp, fn per label ([3 * n_classes]) */
    double micro_precision, micro_recall, micro_f1; /* multi-label */
} ll_class_metrics;

int ll_metrics_init(ll_class_metrics *m, int n_classes);
void ll_metrics_free(ll_class_metrics *m);
void ll_metrics_reset(ll_class_metrics *m);
void ll_metrics_add(ll_class_metrics *m, int gold, int predicted);
int ll_metrics_init_multi(ll_class_metrics *m, int n_labels);
/* One example: gold[k] (0 or 1) and predicted[k] (0 or 1) for every label. */
void ll_metrics_add_multi(ll_class_metrics *m, const float *gold, const int *predicted);
void ll_metrics_finish(ll_class_metrics *m); /* compute the derived figures */

/* JSON object (one line) and an aligned text table; names may be NULL. */
void ll_metrics_write_json(const ll_class_metrics *m, const char *const *names, FILE *f);
void ll_metrics_write_table(const ll_class_metrics *m, const char *const *names, FILE *f);

#endif
