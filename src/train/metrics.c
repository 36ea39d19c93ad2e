/* Classification metrics with scikit-learn's definitions and arithmetic (see
 * metrics.h); the text table is classification_report's layout. */
#include "train/metrics.h"

#include <stdlib.h>
#include <string.h>

/* precision, recall, f1 and 4 scratch rows for the weighted average: [7 * k]
 * doubles; support and 2 scratch rows (tp, predicted): [3 * k] int64. The
 * figures are computed without allocating. */
enum { N_DOUBLE_ROWS = 7, N_COUNT_ROWS = 3 };

int ll_metrics_init(ll_class_metrics *m, int k) {
    memset(m, 0, sizeof *m);
    if (k < 0) return 0;
    const size_t n = k ? (size_t)k : 1;
    m->n_classes = k;
    m->confusion = calloc(n * n, sizeof *m->confusion);
    m->support = calloc(n * N_COUNT_ROWS, sizeof *m->support);
    m->precision = calloc(n * N_DOUBLE_ROWS, sizeof(double));
    if (!m->confusion || !m->support || !m->precision) {
        ll_metrics_free(m);
        return 0;
    }
    m->recall = m->precision + k;
    m->f1 = m->recall + k;
    return 1;
}

int ll_metrics_init_multi(ll_class_metrics *m, int k) {
    if (!ll_metrics_init(m, k)) return 0;
    m->multi_label = 1;
    if (!(m->ml_counts = calloc((k ? (size_t)k : 1) * 3, sizeof *m->ml_counts))) {
        ll_metrics_free(m);
        return 0;
    }
    return 1;
}

void ll_metrics_free(ll_class_metrics *m) {
    free(m->ml_counts);
    free(m->confusion);
    free(m->support);
    free(m->precision);
    memset(m, 0, sizeof *m);
}

void ll_metrics_reset(ll_class_metrics *m) {
    const size_t k = (size_t)m->n_classes;
    memset(m->confusion, 0, k * k * sizeof *m->confusion);
    if (m->ml_counts) memset(m->ml_counts, 0, k * 3 * sizeof *m->ml_counts);
    m->total = m->correct = 0;
    m->samples_sum[0] = m->samples_sum[1] = m->samples_sum[2] = 0;
}

void ll_metrics_add(ll_class_metrics *m, int gold, int pred) {
    if (m->multi_label || gold < 0 || gold >= m->n_classes || pred < 0 || pred >= m->n_classes) return;
    m->confusion[(size_t)gold * (size_t)m->n_classes + (size_t)pred]++;
    m->total++;
    m->correct += gold == pred;
}

/* scikit-learn's _prf_divide with zero_division="warn": 0.0 where the denominator is 0. */
static double prf_divide(double num, double den) { return den != 0 ? num / den : 0.0; }

/* F1 on counts as scikit-learn computes F-beta (beta = 1): 2 tp / (gold + predicted). */
static double f1_counts(int64_t tp, int64_t gold, int64_t pred) {
    return prf_divide(2.0 * (double)tp, (double)gold + (double)pred);
}

void ll_metrics_add_multi(ll_class_metrics *m, const float *gold, const int *pred) {
    if (!m->multi_label) return;
    int exact = 1;
    int64_t tp = 0, n_gold = 0, n_pred = 0;
    for (int c = 0; c < m->n_classes; c++) {
        const int g = gold[c] > 0.5f, p = pred[c] != 0;
        m->ml_counts[3 * c] += g && p;
        m->ml_counts[3 * c + 1] += !g && p;
        m->ml_counts[3 * c + 2] += g && !p;
        exact &= g == p;
        tp += g && p, n_gold += g, n_pred += p;
    }
    /* samples avg: this example's own precision, recall, F1 */
    m->samples_sum[0] += prf_divide((double)tp, (double)n_pred);
    m->samples_sum[1] += prf_divide((double)tp, (double)n_gold);
    m->samples_sum[2] += f1_counts(tp, n_gold, n_pred);
    m->total++;
    m->correct += exact;
}

/* numpy's pairwise_sum_DOUBLE, rule for rule (see metrics.h). */
double ll_np_sum(const double *a, size_t n) {
    if (n < 8) {
        double res = 0.0;
        for (size_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        memcpy(r, a, sizeof r);
        size_t i = 8;
        for (; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + (size_t)j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return ll_np_sum(a, n2) + ll_np_sum(a + n2, n - n2);
}

/* Per-class figures from counts; then macro (np.mean) and weighted (np.average
 * with weights = support; all-zero weights: the plain mean, as _nanaverage). */
static void finish_classes(ll_class_metrics *m, const int64_t *tp, const int64_t *pred) {
    const size_t k = (size_t)m->n_classes;
    double *wp = m->f1 + k, *wr = wp + k, *wf = wr + k, *ws = wf + k;
    m->support_sum = 0;
    for (size_t c = 0; c < k; c++) {
        const int64_t gold = m->support[c];
        m->precision[c] = prf_divide((double)tp[c], (double)pred[c]);
        m->recall[c] = prf_divide((double)tp[c], (double)gold);
        m->f1[c] = f1_counts(tp[c], gold, pred[c]);
        ws[c] = (double)gold;
        wp[c] = m->precision[c] * ws[c], wr[c] = m->recall[c] * ws[c], wf[c] = m->f1[c] * ws[c];
        m->support_sum += gold;
    }
    if (!k) return;
    m->macro_precision = ll_np_sum(m->precision, k) / (double)k;
    m->macro_recall = ll_np_sum(m->recall, k) / (double)k;
    m->macro_f1 = ll_np_sum(m->f1, k) / (double)k;
    const double scale = ll_np_sum(ws, k);
    m->weighted_precision = scale != 0 ? ll_np_sum(wp, k) / scale : m->macro_precision;
    m->weighted_recall = scale != 0 ? ll_np_sum(wr, k) / scale : m->macro_recall;
    m->weighted_f1 = scale != 0 ? ll_np_sum(wf, k) / scale : m->macro_f1;
}

/* Counts per class from the confusion matrix: gold (support), tp, predicted. */
static void finish_single(ll_class_metrics *m) {
    const size_t k = (size_t)m->n_classes;
    int64_t *tp = m->support + k, *pred = tp + k;
    memset(pred, 0, k * sizeof *pred);
    for (size_t g = 0; g < k; g++) {
        m->support[g] = 0;
        for (size_t p = 0; p < k; p++) {
            const int64_t n = m->confusion[g * k + p];
            m->support[g] += n;
            pred[p] += n;
        }
        tp[g] = m->confusion[g * k + g];
    }
    finish_classes(m, tp, pred);
    m->accuracy = prf_divide((double)m->correct, (double)m->total);
}

static void finish_multi(ll_class_metrics *m) {
    const size_t k = (size_t)m->n_classes;
    int64_t *tp = m->support + k, *pred = tp + k, TP = 0, FP = 0, FN = 0;
    for (size_t c = 0; c < k; c++) {
        const int64_t t = m->ml_counts[3 * c], fp = m->ml_counts[3 * c + 1], fn = m->ml_counts[3 * c + 2];
        m->support[c] = t + fn, tp[c] = t, pred[c] = t + fp;
        TP += t, FP += fp, FN += fn;
    }
    finish_classes(m, tp, pred);
    m->micro_precision = prf_divide((double)TP, (double)(TP + FP));
    m->micro_recall = prf_divide((double)TP, (double)(TP + FN));
    m->micro_f1 = f1_counts(TP, TP + FN, TP + FP);
    m->samples_precision = prf_divide(m->samples_sum[0], (double)m->total);
    m->samples_recall = prf_divide(m->samples_sum[1], (double)m->total);
    m->samples_f1 = prf_divide(m->samples_sum[2], (double)m->total);
    m->accuracy = prf_divide((double)m->correct, (double)m->total);
}

void ll_metrics_finish(ll_class_metrics *m) {
    if (m->multi_label) finish_multi(m);
    else finish_single(m);
}

/* ---- output -------------------------------------------------------------- */

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

static void json_label(FILE *f, const char *const *names, int c) {
    if (names) json_string(f, names[c]);
    else fprintf(f, "\"%d\"", c);
}

void ll_metrics_write_json(const ll_class_metrics *m, const char *const *names, FILE *f) {
    const int k = m->n_classes;
    fprintf(f, "{\"n\": %lld, \"support\": %lld, \"accuracy\": %.17g, ", (long long)m->total,
            (long long)m->support_sum, m->accuracy);
    fprintf(f, "\"macro_precision\": %.17g, \"macro_recall\": %.17g, \"macro_f1\": %.17g, ", m->macro_precision,
            m->macro_recall, m->macro_f1);
    fprintf(f, "\"weighted_precision\": %.17g, \"weighted_recall\": %.17g, \"weighted_f1\": %.17g, ",
            m->weighted_precision, m->weighted_recall, m->weighted_f1);
    if (m->multi_label) {
        fprintf(f, "\"multi_label\": true, \"subset_accuracy\": %.17g, \"micro_precision\": %.17g, "
                   "\"micro_recall\": %.17g, \"micro_f1\": %.17g, ",
                m->accuracy, m->micro_precision, m->micro_recall, m->micro_f1);
        fprintf(f, "\"samples_precision\": %.17g, \"samples_recall\": %.17g, \"samples_f1\": %.17g, ",
                m->samples_precision, m->samples_recall, m->samples_f1);
    }
    fprintf(f, "\"per_class\": [");
    for (int c = 0; c < k; c++) {
        fprintf(f, "%s{\"label\": ", c ? ", " : "");
        json_label(f, names, c);
        fprintf(f, ", \"precision\": %.17g, \"recall\": %.17g, \"f1\": %.17g, \"support\": %lld}", m->precision[c],
                m->recall[c], m->f1[c], (long long)m->support[c]);
    }
    if (m->multi_label) {
        fprintf(f, "]}\n");
        return;
    }
    fprintf(f, "], \"labels\": [");
    for (int c = 0; c < k; c++) {
        if (c) fputs(", ", f);
        json_label(f, names, c);
    }
    fprintf(f, "], \"confusion\": [");
    for (int g = 0; g < k; g++) {
        fprintf(f, "%s[", g ? ", " : "");
        for (int p = 0; p < k; p++)
            fprintf(f, "%s%lld", p ? ", " : "", (long long)m->confusion[(size_t)g * (size_t)k + (size_t)p]);
        fputc(']', f);
    }
    fprintf(f, "]}\n");
}

size_t ll_text_width(const char *s) {
    size_t w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

void ll_print_right(FILE *f, const char *s, size_t width) {
    for (size_t w = ll_text_width(s); w < width; w++) fputc(' ', f);
    fputs(s, f);
}

/* Class c's name: names[c], or its index as scikit-learn's "%s" % label. */
static const char *class_name(const char *const *names, int c, char *buf, size_t cap) {
    if (names) return names[c];
    snprintf(buf, cap, "%d", c);
    return buf;
}

/* classification_report's row_fmt: "{:>{width}s} " + " {:>9.4f}" * 3 + " {:>9}". */
static void report_row(FILE *f, const char *name, size_t width, double p, double r, double f1, int64_t support) {
    ll_print_right(f, name, width);
    fprintf(f, "  %9.4f %9.4f %9.4f %9lld\n", p, r, f1, (long long)support);
}

static size_t count_width(int64_t n) {
    char num[32];
    return (size_t)snprintf(num, sizeof num, "%lld", (long long)n);
}

/* Column p of the confusion matrix: as wide as its label and its largest count. */
static size_t column_width(const ll_class_metrics *m, const char *const *names, int p) {
    const size_t k = (size_t)m->n_classes;
    char buf[32];
    size_t w = ll_text_width(class_name(names, p, buf, sizeof buf));
    for (size_t g = 0; g < k; g++) {
        const size_t cw = count_width(m->confusion[g * k + (size_t)p]);
        if (cw > w) w = cw;
    }
    return w;
}

/* The confusion matrix under a header row of predicted labels, each row led by its gold label. */
static void write_confusion(const ll_class_metrics *m, const char *const *names, FILE *f) {
    const int k = m->n_classes;
    const char *corner = "gold \\ predicted";
    char buf[32], num[32];
    size_t lead = strlen(corner);
    for (int c = 0; c < k; c++) {
        const size_t w = ll_text_width(class_name(names, c, buf, sizeof buf));
        if (w > lead) lead = w;
    }
    size_t *cw = malloc((k > 0 ? (size_t)k : 1) * sizeof *cw); /* column widths; NULL: measured per cell */
    for (int c = 0; cw && c < k; c++) cw[c] = column_width(m, names, c);
    fprintf(f, "\nconfusion matrix (rows: gold label, columns: predicted label)\n");
    ll_print_right(f, corner, lead);
    for (int c = 0; c < k; c++) {
        fputs("  ", f);
        ll_print_right(f, class_name(names, c, buf, sizeof buf), cw ? cw[c] : column_width(m, names, c));
    }
    fputc('\n', f);
    for (int g = 0; g < k; g++) {
        ll_print_right(f, class_name(names, g, buf, sizeof buf), lead);
        for (int p = 0; p < k; p++) {
            snprintf(num, sizeof num, "%lld", (long long)m->confusion[(size_t)g * (size_t)k + (size_t)p]);
            fputs("  ", f);
            ll_print_right(f, num, cw ? cw[p] : column_width(m, names, p));
        }
        fputc('\n', f);
    }
    free(cw);
}

void ll_metrics_write_table(const ll_class_metrics *m, const char *const *names, FILE *f) {
    const int k = m->n_classes;
    char buf[32];
    size_t width = strlen("weighted avg"); /* max(longest name, len("weighted avg"), digits) */
    for (int c = 0; c < k; c++) {
        const size_t w = ll_text_width(class_name(names, c, buf, sizeof buf));
        if (w > width) width = w;
    }
    ll_print_right(f, "", width);
    fprintf(f, "  %9s %9s %9s %9s\n\n", "precision", "recall", "f1-score", "support");
    for (int c = 0; c < k; c++)
        report_row(f, class_name(names, c, buf, sizeof buf), width, m->precision[c], m->recall[c], m->f1[c],
                   m->support[c]);
    fputc('\n', f);
    if (m->multi_label) report_row(f, "micro avg", width, m->micro_precision, m->micro_recall, m->micro_f1,
                                   m->support_sum);
    else { /* scikit-learn's micro average of single-label data is the accuracy, printed in the f1 column */
        ll_print_right(f, "accuracy", width);
        fprintf(f, "  %9s %9s %9.4f %9lld\n", "", "", m->accuracy, (long long)m->support_sum);
    }
    report_row(f, "macro avg", width, m->macro_precision, m->macro_recall, m->macro_f1, m->support_sum);
    report_row(f, "weighted avg", width, m->weighted_precision, m->weighted_recall, m->weighted_f1, m->support_sum);
    if (m->multi_label) {
        report_row(f, "samples avg", width, m->samples_precision, m->samples_recall, m->samples_f1, m->support_sum);
        fprintf(f, "\nsubset accuracy %.4f (%lld of %lld examples with every label right)\n", m->accuracy,
                (long long)m->correct, (long long)m->total);
        return;
    }
    fprintf(f, "\naccuracy %.4f (%lld of %lld)\n", m->accuracy, (long long)m->correct, (long long)m->total);
    write_confusion(m, names, f);
}
