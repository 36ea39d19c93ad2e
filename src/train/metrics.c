#include "train/metrics.h"

#include <stdlib.h>
#include <string.h>

int ll_metrics_init(ll_class_metrics *m, int k) {
    memset(m, 0, sizeof *m);
    m->n_classes = k;
    m->confusion = calloc((size_t)k * k, sizeof *m->confusion);
    m->support = calloc((size_t)k, sizeof *m->support);
    m->precision = calloc((size_t)k * 3, sizeof(double));
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
    if (!(m->ml_counts = calloc((size_t)k * 3, sizeof *m->ml_counts))) {
        ll_metrics_free(m);
        return 0;
    }
    return 1;
}

void ll_metrics_add_multi(ll_class_metrics *m, const float *gold, const int *pred) {
    if (!m->multi_label) return;
    int exact = 1;
    for (int c = 0; c < m->n_classes; c++) {
        const int g = gold[c] > 0.5f, p = pred[c] != 0;
        m->ml_counts[3 * c] += g && p;
        m->ml_counts[3 * c + 1] += !g && p;
        m->ml_counts[3 * c + 2] += g && !p;
        exact &= g == p;
    }
    m->total++;
    m->correct += exact;
}

static double safe_div(double a, double b) { return b > 0 ? a / b : 0.0; }

/* F1 from precision and recall, 0 when both are 0 (zero_division=0). */
static double f1_of(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }

static void finish_multi(ll_class_metrics *m) {
    const int k = m->n_classes;
    int64_t tp = 0, fp = 0, fn = 0, support = 0;
    m->macro_precision = m->macro_recall = m->macro_f1 = m->weighted_f1 = 0;
    for (int c = 0; c < k; c++) {
        const int64_t t = m->ml_counts[3 * c], f_p = m->ml_counts[3 * c + 1], f_n = m->ml_counts[3 * c + 2];
        m->support[c] = t + f_n;
        m->precision[c] = safe_div((double)t, (double)(t + f_p));
        m->recall[c] = safe_div((double)t, (double)(t + f_n));
        m->f1[c] = f1_of(m->precision[c], m->recall[c]);
        m->macro_precision += m->precision[c] / k;
        m->macro_recall += m->recall[c] / k;
        m->macro_f1 += m->f1[c] / k;
        tp += t, fp += f_p, fn += f_n, support += m->support[c];
    }
    for (int c = 0; c < k; c++) m->weighted_f1 += safe_div(m->f1[c] * (double)m->support[c], (double)support);
    m->micro_precision = safe_div((double)tp, (double)(tp + fp));
    m->micro_recall = safe_div((double)tp, (double)(tp + fn));
    m->micro_f1 = f1_of(m->micro_precision, m->micro_recall);
    m->accuracy = safe_div((double)m->correct, (double)m->total);
}

void ll_metrics_free(ll_class_metrics *m) {
    free(m->ml_counts);
    free(m->confusion);
    free(m->support);
    free(m->precision);
    memset(m, 0, sizeof *m);
}

void ll_metrics_reset(ll_class_metrics *m) {
    const int k = m->n_classes;
    memset(m->confusion, 0, (size_t)k * k * sizeof *m->confusion);
    if (m->ml_counts) memset(m->ml_counts, 0, (size_t)k * 3 * sizeof *m->ml_counts);
    m->total = m->correct = 0;
}

void ll_metrics_add(ll_class_metrics *m, int gold, int pred) {
    if (gold < 0 || gold >= m->n_classes || pred < 0 || pred >= m->n_classes) return;
    m->confusion[(size_t)gold * m->n_classes + pred]++;
    m->total++;
    m->correct += gold == pred;
}

void ll_metrics_finish(ll_class_metrics *m) {
    if (m->multi_label) {
        finish_multi(m);
        return;
    }
    const int k = m->n_classes;
    m->macro_precision = m->macro_recall = m->macro_f1 = m->weighted_f1 = 0;
    for (int c = 0; c < k; c++) {
        int64_t tp = m->confusion[(size_t)c * k + c], pred = 0, gold = 0;
        for (int j = 0; j < k; j++) {
            pred += m->confusion[(size_t)j * k + c];
            gold += m->confusion[(size_t)c * k + j];
        }
        m->support[c] = gold;
        m->precision[c] = pred ? (double)tp / pred : 0.0;
        m->recall[c] = gold ? (double)tp / gold : 0.0;
        const double s = m->precision[c] + m->recall[c];
        m->f1[c] = s > 0 ? 2 * m->precision[c] * m->recall[c] / s : 0.0;
        m->macro_precision += m->precision[c] / k;
        m->macro_recall += m->recall[c] / k;
        m->macro_f1 += m->f1[c] / k;
        m->weighted_f1 += m->total ? m->f1[c] * gold / (double)m->total : 0.0;
    }
    m->accuracy = m->total ? (double)m->correct / m->total : 0.0;
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

void ll_metrics_write_json(const ll_class_metrics *m, const char *const *names, FILE *f) {
    const int k = m->n_classes;
    fprintf(f, "{\"n\": %lld, \"accuracy\": %.6f, \"macro_precision\": %.6f, \"macro_recall\": %.6f, "
               "\"macro_f1\": %.6f, \"weighted_f1\": %.6f, ",
            (long long)m->total, m->accuracy, m->macro_precision, m->macro_recall, m->macro_f1, m->weighted_f1);
    if (m->multi_label)
        fprintf(f, "\"multi_label\": true, \"subset_accuracy\": %.6f, \"micro_precision\": %.6f, "
                   "\"micro_recall\": %.6f, \"micro_f1\": %.6f, ",
                m->accuracy, m->micro_precision, m->micro_recall, m->micro_f1);
    fprintf(f, "\"per_class\": [");
    for (int c = 0; c < k; c++) {
        fprintf(f, "%s{\"label\": ", c ? ", " : "");
        if (names) json_string(f, names[c]);
        else fprintf(f, "\"%d\"", c);
        fprintf(f, ", \"precision\": %.6f, \"recall\": %.6f, \"f1\": %.6f, \"support\": %lld}", m->precision[c],
                m->recall[c], m->f1[c], (long long)m->support[c]);
    }
    if (m->multi_label) {
        fprintf(f, "]}\n");
        return;
    }
    fprintf(f, "], \"confusion\": [");
    for (int g = 0; g < k; g++) {
        fprintf(f, "%s[", g ? ", " : "");
        for (int p = 0; p < k; p++) fprintf(f, "%s%lld", p ? ", " : "", (long long)m->confusion[(size_t)g * k + p]);
        fputc(']', f);
    }
    fprintf(f, "]}\n");
}

void ll_metrics_write_table(const ll_class_metrics *m, const char *const *names, FILE *f) {
    const int k = m->n_classes;
    fprintf(f, "%-16s %9s %9s %9s %9s\n", "label", "precision", "recall", "f1", "support");
    for (int c = 0; c < k; c++) {
        char buf[32];
        if (names) snprintf(buf, sizeof buf, "%s", names[c]);
        else snprintf(buf, sizeof buf, "%d", c);
        fprintf(f, "%-16s %9.4f %9.4f %9.4f %9lld\n", buf, m->precision[c], m->recall[c], m->f1[c],
                (long long)m->support[c]);
    }
    fprintf(f, "%-16s %9.4f %9.4f %9.4f %9lld\n", "macro avg", m->macro_precision, m->macro_recall, m->macro_f1,
            (long long)m->total);
    if (m->multi_label) {
        int64_t support = 0;
        for (int c = 0; c < k; c++) support += m->support[c];
        fprintf(f, "%-16s %9.4f %9.4f %9.4f %9lld\n", "micro avg", m->micro_precision, m->micro_recall, m->micro_f1,
                (long long)support);
        fprintf(f, "%-16s %9s %9s %9.4f %9lld\n", "weighted avg", "", "", m->weighted_f1, (long long)support);
        fprintf(f, "subset accuracy %.4f (%lld of %lld examples with every label right)\n", m->accuracy,
                (long long)m->correct, (long long)m->total);
        return;
    }
    fprintf(f, "%-16s %9s %9s %9.4f %9lld\n", "weighted avg", "", "", m->weighted_f1, (long long)m->total);
    fprintf(f, "accuracy %.4f (%lld of %lld)\n\nconfusion matrix (rows: gold, columns: predicted)\n", m->accuracy,
            (long long)m->correct, (long long)m->total);
    for (int g = 0; g < k; g++) {
        for (int p = 0; p < k; p++) fprintf(f, "%8lld", (long long)m->confusion[(size_t)g * k + p]);
        fputc('\n', f);
    }
}
