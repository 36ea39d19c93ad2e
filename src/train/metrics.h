/* Classification metrics as scikit-learn's classification_report computes and
 * prints them (default zero_division="warn": a ratio with nothing to divide by
 * is 0.0), with every class of the label map as `labels` (a class never gold
 * nor predicted is a row of zeros and counts in the macro average):
 *
 * - per class: precision = tp / predicted, recall = tp / gold,
 *   f1 = 2 tp / (gold + predicted) (scikit-learn's F-beta on counts), support
 *   = gold count;
 * - macro avg: the mean of the per-class figures; weighted avg: their mean
 *   weighted by support (numpy.average; with no support at all, the plain
 *   mean, as scikit-learn's _nanaverage falls back to); sums in numpy's
 *   pairwise order, so the figures are the reference's to the last bit;
 * - single-label: accuracy (the "accuracy" row: scikit-learn's micro average)
 *   and the confusion matrix (rows = gold, columns = predicted, in label order:
 *   sklearn.metrics.confusion_matrix with labels = every class);
 * - multi-label (ll_metrics_init_multi, label indicator matrices): per-label
 *   figures, micro avg (pooled counts), macro, weighted, samples avg (the mean
 *   over examples of each example's precision/recall/F1, each 0 where its
 *   denominator is 0), and accuracy = subset accuracy (accuracy_score: every
 *   label of an example right); no confusion matrix. */
#ifndef LL_TRAIN_METRICS_H
#define LL_TRAIN_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct ll_class_metrics {
    int n_classes;
    int64_t total, correct; /* examples; examples right (multi-label: every label right) */
    int64_t *confusion;  /* [n_classes * n_classes], [gold * n_classes + predicted] */
    double *precision, *recall, *f1; /* [n_classes] */
    int64_t *support;    /* [n_classes] gold count per class */
    int64_t support_sum; /* sum of support: the average rows' support column */
    double accuracy, macro_precision, macro_recall, macro_f1, weighted_precision, weighted_recall, weighted_f1;
    int multi_label;
    int64_t *ml_counts;  /* multi-label: tp, fp, fn per label ([3 * n_classes]) */
    double micro_precision, micro_recall, micro_f1;        /* multi-label */
    double samples_sum[3];                                  /* multi-label: per-example p, r, f1 summed */
    double samples_precision, samples_recall, samples_f1; /* multi-label: samples avg */
} ll_class_metrics;

/* Returns 1, or 0 when out of memory (m zeroed). */
int ll_metrics_init(ll_class_metrics *m, int n_classes);
void ll_metrics_free(ll_class_metrics *m);
void ll_metrics_reset(ll_class_metrics *m);
/* One example; ids outside [0, n_classes) are ignored. */
void ll_metrics_add(ll_class_metrics *m, int gold, int predicted);
int ll_metrics_init_multi(ll_class_metrics *m, int n_labels);
/* One example: gold[k] (> 0.5: the label is gold) and predicted[k] (non-zero: predicted) for every label. */
void ll_metrics_add_multi(ll_class_metrics *m, const float *gold, const int *predicted);
void ll_metrics_finish(ll_class_metrics *m); /* compute the derived figures */

/* One JSON object on one line; names[c] labels class c (NULL: "0", "1", ...).
 * Keys: n, support, accuracy, macro_/weighted_ precision/recall/f1,
 * per_class [{label, precision, recall, f1, support}], labels (the confusion
 * matrix's row and column order) and confusion [gold][predicted];
 * multi-label: multi_label, subset_accuracy, micro_* and samples_* instead of
 * labels/confusion. Numbers with 17 significant digits. */
void ll_metrics_write_json(const ll_class_metrics *m, const char *const *names, FILE *f);
/* scikit-learn's classification_report(digits=4, target_names=names) text,
 * then (single-label) the confusion matrix with its gold and predicted labels,
 * (multi-label) the subset accuracy. */
void ll_metrics_write_table(const ll_class_metrics *m, const char *const *names, FILE *f);

/* numpy's pairwise summation of a contiguous float64 array (pairwise_sum_DOUBLE
 * in numpy's umath loops, what np.sum, np.mean and np.average use): runs below
 * 8 summed in order, up to 128 in 8 interleaved partial sums, longer ones
 * split in two halves at a multiple of 8. Summing in this order gives
 * scikit-learn's and seqeval's averages to the last bit. */
double ll_np_sum(const double *a, size_t n);

/* Report layout shared with seqeval.c: a UTF-8 string's display width as
 * Python's len() counts it (code points), and s right-aligned in width. */
size_t ll_text_width(const char *s);
void ll_print_right(FILE *f, const char *s, size_t width);

#endif
