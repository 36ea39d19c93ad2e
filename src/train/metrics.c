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

void ll_metrics_free(ll_class_metrics *m) {
    free(m->confusion);
    free(m->support);
    free(m->precision);
    memset(m, 0, sizeof *m);
}

void ll_metrics_reset(ll_class_metrics *m) {
    const int k = m->n_classes;
    memset(m->confusion, 0, (size_t)k * k * sizeof *m->confusion);
    m->total = m->correct = 0;
}

void ll_metrics_add(ll_class_metrics *m, int gold, int pred) {
    if (gold < 0 || gold >= m->n_classes || pred < 0 || pred >= m->n_classes) return;
    m->confusion[(size_t)gold * m->n_classes + pred]++;
    m->total++;
    m->correct += gold == pred;
}

void ll_metrics_finish(ll_class_metrics *m) {
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
               "\"macro_f1\": %.6f, \"weighted_f1\": %.6f, \"per_class\": [",
            (long long)m->total, m->accuracy, m->macro_precision, m->macro_recall, m->macro_f1, m->weighted_f1);
    for (int c = 0; c < k; c++) {
        fprintf(f, "%s{\"label\": ", c ? ", " : "");
        if (names) json_string(f, names[c]);
        else fprintf(f, "\"%d\"", c);
        fprintf(f, ", \"precision\": %.6f, \"recall\": %.6f, \"f1\": %.6f, \"support\": %lld}", m->precision[c],
                m->recall[c], m->f1[c], (long long)m->support[c]);
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
    fprintf(f, "%-16s %9s %9s %9.4f %9lld\n", "weighted avg", "", "", m->weighted_f1, (long long)m->total);
    fprintf(f, "accuracy %.4f (%lld of %lld)\n\nconfusion matrix (rows: gold, columns: predicted)\n", m->accuracy,
            (long long)m->correct, (long long)m->total);
    for (int g = 0; g < k; g++) {
        for (int p = 0; p < k; p++) fprintf(f, "%8lld", (long long)m->confusion[(size_t)g * k + p]);
        fputc('\n', f);
    }
}
