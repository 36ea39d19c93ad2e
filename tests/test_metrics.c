/* Classification metrics against scikit-learn's classification_report
 * (fixture: tools/gen_fixtures_metrics.py, default zero_division): every row
 * of the report (per class, accuracy / micro, macro, weighted, samples avg)
 * and column (precision, recall, f1-score, support) to the last bit (samples
 * avg: 1e-12), the report text, the confusion matrix, and the JSON output
 * carrying the same figures with the confusion matrix's labels. */
#include <cjson/cJSON.h>

#include "test_util.h"
#include "train/metrics.h"

/* Exact where the C side follows numpy's summation order. */
static int same(double got, const cJSON *want, double tol) {
    return cJSON_IsNumber(want) && fabs(got - want->valuedouble) <= tol;
}

static void check_row(const char *cname, const char *row, const cJSON *want, double p, double r, double f1,
                      int64_t support, double tol) {
    CHECK_MSG(want != NULL, "%s: no row %s in the reference", cname, row);
    if (!want) return;
    CHECK_MSG(same(p, cJSON_GetObjectItem(want, "precision"), tol), "%s %s precision %.17g", cname, row, p);
    CHECK_MSG(same(r, cJSON_GetObjectItem(want, "recall"), tol), "%s %s recall %.17g", cname, row, r);
    CHECK_MSG(same(f1, cJSON_GetObjectItem(want, "f1-score"), tol), "%s %s f1 %.17g", cname, row, f1);
    CHECK_MSG(same((double)support, cJSON_GetObjectItem(want, "support"), 0), "%s %s support %lld", cname, row,
              (long long)support);
}

/* The report's rows in its order: classes, then the averages; no row left over. */
static void check_report(const char *cname, const ll_class_metrics *m, const char *const *names,
                         const cJSON *report) {
    int c = 0, n_avg = 0;
    for (const cJSON *row = report->child; row; row = row->next) {
        const char *key = row->string;
        if (!strcmp(key, "accuracy")) {
            CHECK_MSG(!m->multi_label && same(m->accuracy, row, 0), "%s accuracy row %.17g", cname, m->accuracy);
            n_avg++;
        } else if (!strcmp(key, "micro avg")) {
            CHECK(m->multi_label);
            check_row(cname, key, row, m->micro_precision, m->micro_recall, m->micro_f1, m->support_sum, 0);
            n_avg++;
        } else if (!strcmp(key, "macro avg")) {
            check_row(cname, key, row, m->macro_precision, m->macro_recall, m->macro_f1, m->support_sum, 0);
            n_avg++;
        } else if (!strcmp(key, "weighted avg")) {
            check_row(cname, key, row, m->weighted_precision, m->weighted_recall, m->weighted_f1, m->support_sum, 0);
            n_avg++;
        } else if (!strcmp(key, "samples avg")) {
            CHECK(m->multi_label);
            check_row(cname, key, row, m->samples_precision, m->samples_recall, m->samples_f1, m->support_sum, 1e-12);
            n_avg++;
        } else {
            char want[16];
            snprintf(want, sizeof want, "%d", c);
            CHECK_MSG(c < m->n_classes && !strcmp(key, names ? names[c] : want), "%s: row %d is %s", cname, c, key);
            if (c < m->n_classes) check_row(cname, key, row, m->precision[c], m->recall[c], m->f1[c], m->support[c], 0);
            c++;
        }
    }
    CHECK_MSG(c == m->n_classes && n_avg == (m->multi_label ? 4 : 3), "%s: %d class rows, %d average rows", cname, c,
              n_avg);
}

/* The table (json = 0) or the JSON line, in *out (free it). */
static void capture(const ll_class_metrics *m, const char *const *names, int json, char **out) {
    size_t len = 0;
    *out = NULL;
    FILE *f = open_memstream(out, &len);
    REQUIRE(f);
    if (json) ll_metrics_write_json(m, names, f);
    else ll_metrics_write_table(m, names, f);
    fclose(f);
}

/* The table starts with classification_report(digits=4)'s text; then the
 * confusion matrix, a header of predicted labels and one row per gold label. */
static void check_text(const char *cname, const ll_class_metrics *m, const char *const *names, const cJSON *c) {
    char *t;
    capture(m, names, 0, &t);
    const char *want = cJSON_GetObjectItem(c, "report_text")->valuestring;
    CHECK_MSG(!strncmp(t, want, strlen(want)), "%s: table\n%s\nscikit-learn\n%s", cname, t, want);
    if (!m->multi_label) {
        const char *cm = strstr(t, "confusion matrix");
        CHECK_MSG(cm && strstr(cm, "gold \\ predicted"), "%s: no labelled confusion matrix\n%s", cname, t);
        /* every label heads a column and a row: it appears twice after the title */
        for (int k = 0; cm && names && k < m->n_classes; k++) {
            const char *a = strstr(cm, names[k]);
            CHECK_MSG(a && strstr(a + strlen(names[k]), names[k]), "%s: label %s missing in\n%s", cname, names[k], cm);
        }
    } else CHECK(strstr(t, "subset accuracy") != NULL);
    free(t);
}

/* --json: the same figures (17 digits: exact), labels and the confusion matrix. */
static void check_json(const char *cname, const ll_class_metrics *m, const char *const *names, const cJSON *c) {
    char *t;
    capture(m, names, 1, &t);
    cJSON *j = cJSON_Parse(t);
    CHECK_MSG(j != NULL, "%s: --json is not JSON: %s", cname, t);
    free(t);
    if (!j) return;
    const cJSON *report = cJSON_GetObjectItem(c, "report");
    const char *avg[] = {"macro", "weighted", "micro", "samples"};
    for (int a = 0; a < (m->multi_label ? 4 : 2); a++) {
        char key[64], row[32];
        snprintf(row, sizeof row, "%s avg", avg[a]);
        const cJSON *want = cJSON_GetObjectItem(report, row);
        const char *cols[] = {"precision", "recall", "f1"}, *wcols[] = {"precision", "recall", "f1-score"};
        for (int k = 0; k < 3; k++) {
            snprintf(key, sizeof key, "%s_%s", avg[a], cols[k]);
            const cJSON *got = cJSON_GetObjectItem(j, key);
            CHECK_MSG(got && same(got->valuedouble, cJSON_GetObjectItem(want, wcols[k]), a == 3 ? 1e-12 : 0),
                      "%s --json %s", cname, key);
        }
    }
    CHECK(same(cJSON_GetObjectItem(j, "accuracy")->valuedouble, cJSON_GetObjectItem(c, "accuracy"), 0));
    CHECK(cJSON_GetObjectItem(j, "support")->valuedouble == (double)m->support_sum);
    const cJSON *per = cJSON_GetObjectItem(j, "per_class");
    CHECK(cJSON_GetArraySize(per) == m->n_classes);
    int k = 0;
    for (const cJSON *row = per ? per->child : NULL; row; row = row->next, k++) {
        const cJSON *want = cJSON_GetObjectItem(report, cJSON_GetObjectItem(row, "label")->valuestring);
        CHECK_MSG(want && same(cJSON_GetObjectItem(row, "recall")->valuedouble, cJSON_GetObjectItem(want, "recall"), 0) &&
                      same(cJSON_GetObjectItem(row, "precision")->valuedouble, cJSON_GetObjectItem(want, "precision"), 0) &&
                      same(cJSON_GetObjectItem(row, "f1")->valuedouble, cJSON_GetObjectItem(want, "f1-score"), 0),
                  "%s --json per_class %d", cname, k);
    }
    if (!m->multi_label) {
        const cJSON *labels = cJSON_GetObjectItem(j, "labels"), *conf = cJSON_GetObjectItem(j, "confusion");
        CHECK(cJSON_GetArraySize(labels) == m->n_classes && cJSON_GetArraySize(conf) == m->n_classes);
        for (int g = 0; names && g < cJSON_GetArraySize(labels); g++)
            CHECK(!strcmp(cJSON_GetArrayItem(labels, g)->valuestring, names[g]));
        const cJSON *want = cJSON_GetObjectItem(c, "confusion");
        for (int g = 0; g < m->n_classes; g++)
            for (int p = 0; p < m->n_classes; p++)
                CHECK_MSG(cJSON_GetArrayItem(cJSON_GetArrayItem(conf, g), p)->valuedouble ==
                              cJSON_GetArrayItem(cJSON_GetArrayItem(want, g), p)->valuedouble,
                          "%s --json confusion[%d][%d]", cname, g, p);
    }
    cJSON_Delete(j);
}

/* All examples of a case, then ll_metrics_finish. */
static void feed(ll_class_metrics *m, const cJSON *gold, const cJSON *pred, int n) {
    const cJSON *g = gold->child, *p = pred->child;
    for (int i = 0; i < n; i++) {
        if (m->multi_label) {
            float gv[16];
            int pv[16];
            for (int l = 0; l < m->n_classes; l++, g = g->next, p = p->next)
                gv[l] = (float)g->valueint, pv[l] = p->valueint;
            ll_metrics_add_multi(m, gv, pv);
        } else {
            ll_metrics_add(m, g->valueint, p->valueint);
            g = g->next, p = p->next;
        }
    }
    ll_metrics_finish(m);
}

static void check_case(const cJSON *c) {
    const char *cname = cJSON_GetObjectItem(c, "name")->valuestring;
    const int multi = cJSON_IsTrue(cJSON_GetObjectItem(c, "multi_label"));
    const int k = cJSON_GetObjectItem(c, "k")->valueint, n = cJSON_GetObjectItem(c, "n")->valueint;
    const cJSON *jn = cJSON_GetObjectItem(c, "names"), *gold = cJSON_GetObjectItem(c, "gold"),
                *pred = cJSON_GetObjectItem(c, "pred");
    const char *names_buf[16];
    const char *const *names = NULL;
    REQUIRE(k <= 16 && cJSON_GetArraySize(gold) == n * (multi ? k : 1));
    if (cJSON_IsArray(jn)) {
        for (int i = 0; i < k; i++) names_buf[i] = cJSON_GetArrayItem(jn, i)->valuestring;
        names = names_buf;
    }
    ll_class_metrics m;
    REQUIRE(multi ? ll_metrics_init_multi(&m, k) : ll_metrics_init(&m, k));
    feed(&m, gold, pred, n);
    /* reset, then the same examples again: the same figures (nothing carried over) */
    const double samples_f1 = m.samples_f1, weighted_p = m.weighted_precision;
    ll_metrics_reset(&m);
    feed(&m, gold, pred, n);
    CHECK(m.samples_f1 == samples_f1 && m.weighted_precision == weighted_p);
    CHECK_MSG(same(m.accuracy, cJSON_GetObjectItem(c, "accuracy"), 0), "%s accuracy %.17g", cname, m.accuracy);
    check_report(cname, &m, names, cJSON_GetObjectItem(c, "report"));
    check_text(cname, &m, names, c);
    check_json(cname, &m, names, c);
    if (!strcmp(cname, "names_unused_class") || !strcmp(cname, "multi_named")) ll_metrics_write_table(&m, names, stdout);
    ll_metrics_free(&m);
}

int main(void) {
    char *text = test_read_file(LL_SOURCE_DIR "/tests/fixtures/metrics/cases.json");
    REQUIRE(text);
    cJSON *doc = cJSON_Parse(text);
    REQUIRE(doc);
    int n = 0, n_multi = 0;
    for (const cJSON *c = cJSON_GetObjectItem(doc, "cases")->child; c; c = c->next, n++) {
        n_multi += cJSON_IsTrue(cJSON_GetObjectItem(c, "multi_label"));
        check_case(c);
    }
    CHECK_MSG(n == 13 && n_multi == 5, "%d cases, %d multi-label", n, n_multi);
    cJSON_Delete(doc);
    free(text);
    return test_summary("test_metrics");
}
