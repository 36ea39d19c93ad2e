/* Classification metrics against scikit-learn (fixture:
 * tools/gen_fixtures_metrics.py), including classes never predicted or never
 * in the gold labels (zero_division = 0). */
#include "train/metrics.h"
#include "test_util.h"

static int read_row(FILE *f, const char *key, double *v, int n) {
    char word[32];
    if (fscanf(f, "%31s", word) != 1 || strcmp(word, key)) return 0;
    for (int i = 0; i < n; i++)
        if (fscanf(f, "%lf", &v[i]) != 1) return 0;
    return 1;
}

/* The per-class rows (precision, recall, F1, support) and the macro row,
 * read from the fixture and compared with m; what names the case in messages. */
static void check_per_class_and_macro(FILE *f, const ll_class_metrics *m, int k, const char *what, int case_no) {
    double v[16];
    const char *rows[] = {"precision", "recall", "f1", "support"};
    for (int r = 0; r < 4; r++) {
        REQUIRE(read_row(f, rows[r], v, k));
        for (int c = 0; c < k; c++) {
            const double got = r == 0 ? m->precision[c] : r == 1 ? m->recall[c] : r == 2 ? m->f1[c] : (double)m->support[c];
            CHECK_MSG(fabs(got - v[c]) < 1e-12, "%s %d %s[%d]: %.17g vs %.17g", what, case_no, rows[r], c, got, v[c]);
        }
    }
    REQUIRE(read_row(f, "macro", v, 3));
    CHECK(fabs(m->macro_precision - v[0]) < 1e-12 && fabs(m->macro_recall - v[1]) < 1e-12 &&
          fabs(m->macro_f1 - v[2]) < 1e-12);
}

int main(void) {
    FILE *f = fopen(LL_SOURCE_DIR "/tests/fixtures/metrics/cases.txt", "r");
    REQUIRE(f);
    int k, n, cases = 0;
    while (fscanf(f, " case %d %d", &k, &n) == 2) {
        double *gold = malloc(n * sizeof(double)), *pred = malloc(n * sizeof(double)), v[16], acc;
        REQUIRE(read_row(f, "gold", gold, n) && read_row(f, "pred", pred, n));
        ll_class_metrics m;
        REQUIRE(ll_metrics_init(&m, k));
        for (int i = 0; i < n; i++) ll_metrics_add(&m, (int)gold[i], (int)pred[i]);
        ll_metrics_finish(&m);
        REQUIRE(read_row(f, "accuracy", &acc, 1));
        CHECK(fabs(m.accuracy - acc) < 1e-12);
        check_per_class_and_macro(f, &m, k, "case", cases);
        REQUIRE(read_row(f, "weighted_f1", v, 1));
        CHECK(fabs(m.weighted_f1 - v[0]) < 1e-12);
        if (cases == 1) ll_metrics_write_table(&m, NULL, stdout);
        ll_metrics_free(&m);
        free(gold);
        free(pred);
        cases++;
    }
    /* multi-label cases (label indicator matrices) */
    int ml_cases = 0;
    while (fscanf(f, " mlcase %d %d", &k, &n) == 2) {
        double *gold = malloc((size_t)n * k * sizeof(double)), *pred = malloc((size_t)n * k * sizeof(double)), v[16];
        REQUIRE(read_row(f, "gold", gold, n * k) && read_row(f, "pred", pred, n * k));
        ll_class_metrics m;
        REQUIRE(ll_metrics_init_multi(&m, k));
        for (int i = 0; i < n; i++) {
            float g[16];
            int p[16];
            for (int c = 0; c < k; c++) g[c] = (float)gold[i * k + c], p[c] = (int)pred[i * k + c];
            ll_metrics_add_multi(&m, g, p);
        }
        ll_metrics_finish(&m);
        REQUIRE(read_row(f, "accuracy", v, 1));
        CHECK_MSG(fabs(m.accuracy - v[0]) < 1e-12, "ml case %d subset accuracy %.17g vs %.17g", ml_cases, m.accuracy, v[0]);
        check_per_class_and_macro(f, &m, k, "ml case", ml_cases);
        REQUIRE(read_row(f, "micro", v, 3));
        CHECK_MSG(fabs(m.micro_precision - v[0]) < 1e-12 && fabs(m.micro_recall - v[1]) < 1e-12 &&
                  fabs(m.micro_f1 - v[2]) < 1e-12, "ml case %d micro %.17g %.17g %.17g", ml_cases, m.micro_precision,
                  m.micro_recall, m.micro_f1);
        REQUIRE(read_row(f, "weighted_f1", v, 1));
        CHECK_MSG(fabs(m.weighted_f1 - v[0]) < 1e-12, "ml case %d weighted F1 %.17g vs %.17g", ml_cases, m.weighted_f1, v[0]);
        if (ml_cases == 1) ll_metrics_write_table(&m, NULL, stdout);
        ll_metrics_free(&m);
        free(gold);
        free(pred);
        ml_cases++;
    }
    fclose(f);
    CHECK(cases == 5);
    CHECK(ml_cases == 3);
    return test_summary("test_metrics");
}
