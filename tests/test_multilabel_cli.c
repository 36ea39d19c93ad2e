/* Multi-label classification through the CLI on the tiny stories260K model:
 * JSONL label arrays make the data multi-label (BCE training), the dev
 * evaluation logs subset accuracy / macro-F1 / micro-F1, `eval --json` of the
 * best adapter reproduces the logged figures, and those figures equal the
 * ones this test counts itself from `predict`'s sigmoid probabilities
 * (threshold 0.5) against the gold label sets: an independent path from
 * logits to metrics. */
#include <cjson/cJSON.h>

#include "test_util.h"

#define MODEL LL_SHARED_DIR "/models/stories260K/stories260K.bin"
#define TOKENIZER LL_SHARED_DIR "/models/stories260K/tok512.bin"

static char tmp[] = "/tmp/lsllama_multilabel_XXXXXX";

static const char *const WORDS[] = {"sun", "rain", "cat", "dog", "tree", "sky", "ball", "fish"};
static const char *const LABELS[] = {"cat", "dog", "sun"}; /* sorted: the label map's order */

/* Deterministic data: three words per text; its labels are the words among cat/dog/sun. */
static void write_split(const char *name, int n, unsigned seed, int gold[][3], char texts[][64]) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    for (int i = 0; i < n; i++) {
        int w[3];
        for (int j = 0; j < 3; j++) {
            seed = seed * 1103515245u + 12345u;
            w[j] = (int)((seed >> 16) % 8);
        }
        snprintf(texts[i], 64, "%s %s %s", WORDS[w[0]], WORDS[w[1]], WORDS[w[2]]);
        fprintf(f, "{\"text\": \"%s\", \"label\": [", texts[i]);
        int first = 1;
        for (int k = 0; k < 3; k++) {
            gold[i][k] = 0;
            for (int j = 0; j < 3; j++) gold[i][k] |= !strcmp(WORDS[w[j]], LABELS[k]);
            if (gold[i][k]) fprintf(f, "%s\"%s\"", first ? "" : ", ", LABELS[k]), first = 0;
        }
        fprintf(f, "]}\n");
    }
    fclose(f);
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

int main(void) {
    REQUIRE(mkdtemp(tmp));
    static int gold_train[160][3], gold_dev[60][3];
    static char text_train[160][64], text_dev[60][64];
    write_split("train.jsonl", 160, 7, gold_train, text_train);
    write_split("dev.jsonl", 60, 99, gold_dev, text_dev);
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "cd %s && %s train %s --tokenizer %s --train train.jsonl --dev dev.jsonl --out run --epochs 3 "
             "--eval-every 5 --lr 1e-2 --batch-tokens 256 --no-progress > train.out 2> train.err",
             tmp, LL_CLI_PATH, MODEL, TOKENIZER);
    REQUIRE(system(cmd) == 0);

    /* the label map says multi-label; the log has the multi-label keys */
    char path[512];
    snprintf(path, sizeof path, "%s/run/best/label_map.json", tmp);
    char *lm = test_read_file(path);
    CHECK_MSG(lm && strstr(lm, "multi_label_classification"), "label_map.json: %s", lm ? lm : "(missing)");
    free(lm);
    snprintf(path, sizeof path, "%s/run/log.jsonl", tmp);
    char *log = test_read_file(path);
    REQUIRE(log);
    cJSON *best = NULL;
    int n_evals = 0;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        REQUIRE(j);
        if (cJSON_GetObjectItemCaseSensitive(j, "eval")) {
            n_evals++;
            CHECK(!isnan(num(j, "micro_f1")) && !isnan(num(j, "macro_f1")) && !isnan(num(j, "accuracy")));
            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "best"))) {
                cJSON_Delete(best);
                best = j;
                continue;
            }
        }
        cJSON_Delete(j);
    }
    free(log);
    CHECK(n_evals >= 2);
    REQUIRE(best);

    /* eval --json of the best adapter = the logged figures of its step */
    snprintf(cmd, sizeof cmd, "cd %s && %s eval %s --tokenizer %s --adapter run/best --data dev.jsonl --json > eval.json 2> eval.err",
             tmp, LL_CLI_PATH, MODEL, TOKENIZER);
    REQUIRE(system(cmd) == 0);
    snprintf(path, sizeof path, "%s/eval.json", tmp);
    char *ev_text = test_read_file(path);
    cJSON *ev = ev_text ? cJSON_Parse(ev_text) : NULL;
    free(ev_text);
    REQUIRE(ev);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev, "multi_label")));
    CHECK_MSG(fabs(num(ev, "subset_accuracy") - num(best, "accuracy")) < 1e-6, "subset accuracy %.6f vs logged %.6f",
              num(ev, "subset_accuracy"), num(best, "accuracy"));
    CHECK_MSG(fabs(num(ev, "macro_f1") - num(best, "macro_f1")) < 1e-6, "macro F1 %.6f vs logged %.6f",
              num(ev, "macro_f1"), num(best, "macro_f1"));
    CHECK_MSG(fabs(num(ev, "micro_f1") - num(best, "micro_f1")) < 1e-6, "micro F1 %.6f vs logged %.6f",
              num(ev, "micro_f1"), num(best, "micro_f1"));

    /* predict: sigmoid probabilities, labels = those above 0.5; count the metrics here */
    snprintf(cmd, sizeof cmd,
             "cd %s && %s predict %s --tokenizer %s --adapter run/best --input dev.jsonl --format jsonl > pred.jsonl "
             "2> pred.err",
             tmp, LL_CLI_PATH, MODEL, TOKENIZER);
    REQUIRE(system(cmd) == 0);
    snprintf(path, sizeof path, "%s/pred.jsonl", tmp);
    char *pred = test_read_file(path);
    REQUIRE(pred);
    int n = 0, exact = 0, tp[3] = {0}, fp[3] = {0}, fn[3] = {0};
    for (char *line = strtok(pred, "\n"); line; line = strtok(NULL, "\n"), n++) {
        cJSON *j = cJSON_Parse(line);
        REQUIRE(j && n < 60);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "text"), *probs = cJSON_GetObjectItemCaseSensitive(j, "probabilities"),
                    *labels = cJSON_GetObjectItemCaseSensitive(j, "labels");
        CHECK(cJSON_IsString(t) && !strcmp(t->valuestring, text_dev[n]));
        REQUIRE(cJSON_IsObject(probs) && cJSON_IsArray(labels));
        int all = 1, n_above = 0;
        for (int k = 0; k < 3; k++) {
            const double p = num(probs, LABELS[k]);
            CHECK(p >= 0 && p <= 1);
            const int yes = p > 0.5;
            n_above += yes;
            int listed = 0;
            const cJSON *x;
            cJSON_ArrayForEach(x, labels) listed |= cJSON_IsString(x) && !strcmp(x->valuestring, LABELS[k]);
            CHECK_MSG(listed == yes, "line %d: label %s listed %d, p %.4f", n, LABELS[k], listed, p);
            tp[k] += yes && gold_dev[n][k], fp[k] += yes && !gold_dev[n][k], fn[k] += !yes && gold_dev[n][k];
            all &= yes == gold_dev[n][k];
        }
        CHECK(cJSON_GetArraySize(labels) == n_above);
        exact += all;
        cJSON_Delete(j);
    }
    free(pred);
    CHECK(n == 60);
    double macro = 0;
    int TP = 0, FP = 0, FN = 0;
    for (int k = 0; k < 3; k++) {
        const double p = tp[k] + fp[k] ? (double)tp[k] / (tp[k] + fp[k]) : 0, r = tp[k] + fn[k] ? (double)tp[k] / (tp[k] + fn[k]) : 0;
        macro += (p + r > 0 ? 2 * p * r / (p + r) : 0) / 3;
        TP += tp[k], FP += fp[k], FN += fn[k];
    }
    const double micro = 2.0 * TP / (2.0 * TP + FP + FN);
    CHECK_MSG(fabs(num(ev, "subset_accuracy") - (double)exact / n) < 1e-6, "subset accuracy %.6f, counted %.6f",
              num(ev, "subset_accuracy"), (double)exact / n);
    CHECK_MSG(fabs(num(ev, "macro_f1") - macro) < 1e-6, "macro F1 %.6f, counted %.6f", num(ev, "macro_f1"), macro);
    CHECK_MSG(fabs(num(ev, "micro_f1") - micro) < 1e-6, "micro F1 %.6f, counted %.6f", num(ev, "micro_f1"), micro);
    printf("best dev step %.0f: subset accuracy %.4f, macro-F1 %.4f, micro-F1 %.4f (counted from predict: %.4f %.4f %.4f)\n",
           num(best, "step"), num(ev, "subset_accuracy"), num(ev, "macro_f1"), num(ev, "micro_f1"), (double)exact / n,
           macro, micro);
    cJSON_Delete(ev);
    cJSON_Delete(best);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return test_summary("test_multilabel_cli");
}
