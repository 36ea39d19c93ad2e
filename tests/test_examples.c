/* examples/train_classify (built against include/ alone) trains, evaluates
 * and predicts, and what it reports through the public API is what the CLI
 * computes from the adapter it saved:
 *  - it exits 0 and its reloaded adapter predicts the same as the trained one;
 *  - accuracy and macro-F1 lie in [0, 1] and equal, to the last digit,
 *    `lsllama eval --json` of OUT/final on the same 100 dev rows;
 *  - each example sentence gets label 0 or 1 with probability in [0.5, 1],
 *    the same label and printed probability as `lsllama predict`. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "test_util.h"

#define MODEL_DIR LL_SHARED_DIR "/models/stories260K"
#define MODEL MODEL_DIR "/stories260K.bin"
#define TOKENIZER MODEL_DIR "/tok512.bin"
#define SST2 LL_SHARED_DIR "/data/sst2"

enum { N_SENTENCES = 3 };

static char tmp[] = "/tmp/ll_test_examples_XXXXXX";

/* Run the shell command (printf-style) in tmp; its exit status (-1: a signal). */
static int run(const char *fmt, ...) {
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd %s && %s", tmp, args);
    printf("$ %s\n", args);
    fflush(stdout);
    const int st = system(cmd);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    char *s = test_read_file(path);
    return s ? s : strdup("");
}

/* The text after "key " on its line in out, copied into buf (empty if absent). */
static const char *field(const char *out, const char *key, char *buf, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\n%s ", key);
    const char *p = strstr(out, pat);
    buf[0] = 0;
    if (p) snprintf(buf, cap, "%.*s", (int)strcspn(p + strlen(pat), "\n"), p + strlen(pat));
    return buf;
}

/* The example's "predict i LABEL PROB TEXT" lines. */
typedef struct prediction {
    char label[16], prob[16];
} prediction;

static int read_predictions(const char *out, prediction *p) {
    int n = 0;
    for (const char *s = strstr(out, "\npredict "); s && n < N_SENTENCES; s = strstr(s + 1, "\npredict ")) {
        int i;
        if (sscanf(s, "\npredict %d %15s %15s", &i, p[n].label, p[n].prob) == 3 && i == n) n++;
    }
    return n;
}

/* Compares the example's dev figures with `lsllama eval --json` on the same rows. */
static void check_eval(const char *out) {
    char acc[64], f1[64];
    field(out, "accuracy", acc, sizeof acc), field(out, "macro_f1", f1, sizeof f1);
    const double a = atof(acc), f = atof(f1);
    CHECK_MSG(acc[0] && a >= 0 && a <= 1, "accuracy '%s'", acc);
    CHECK_MSG(f1[0] && f >= 0 && f <= 1, "macro_f1 '%s'", f1);
    CHECK(run("%s eval %s --tokenizer %s --adapter run/final --data dev.tsv --max-length 64 --batch-tokens 1024 "
              "--json --no-progress > eval.json 2> eval.err", LL_CLI_PATH, MODEL, TOKENIZER) == 0);
    char *t = slurp("eval.json");
    cJSON *j = cJSON_Parse(t);
    CHECK_MSG(j != NULL, "not JSON: %s", t);
    const cJSON *ja = cJSON_GetObjectItem(j, "accuracy"), *jf = cJSON_GetObjectItem(j, "macro_f1"),
                *jn = cJSON_GetObjectItem(j, "n");
    CHECK_MSG(cJSON_IsNumber(ja) && ja->valuedouble == a, "eval accuracy %g, example %s", ja ? ja->valuedouble : -1, acc);
    CHECK_MSG(cJSON_IsNumber(jf) && jf->valuedouble == f, "eval macro_f1 %g, example %s", jf ? jf->valuedouble : -1, f1);
    CHECK(cJSON_IsNumber(jn) && jn->valueint == 100);
    cJSON_Delete(j);
    free(t);
}

/* Compares the example's predictions with `lsllama predict` of the same sentences. */
static void check_predict(const char *out) {
    prediction p[N_SENTENCES];
    CHECK(read_predictions(out, p) == N_SENTENCES);
    test_write_file(tmp, "sentences.txt", "a gripping , funny and moving film .\ndull , lifeless and far too long .\n"
                                          "it is neither good nor bad .\n");
    CHECK(run("%s predict %s --tokenizer %s --adapter run/final --input sentences.txt --max-length 64 --no-progress "
              "> predict.jsonl 2> predict.err", LL_CLI_PATH, MODEL, TOKENIZER) == 0);
    char *t = slurp("predict.jsonl");
    const char *line = t;
    for (int i = 0; i < N_SENTENCES; i++, line = strchr(line, '\n') + 1) {
        CHECK_MSG(!strcmp(p[i].label, "0") || !strcmp(p[i].label, "1"), "label '%s'", p[i].label);
        const double prob = atof(p[i].prob);
        CHECK_MSG(prob >= 0.5 && prob <= 1, "probability %s", p[i].prob);
        char want[128];
        snprintf(want, sizeof want, "\"label\": \"%s\"", p[i].label);
        CHECK_MSG(strstr(line, want) && strchr(line, '\n') > strstr(line, want), "line %d: %s", i, line);
        snprintf(want, sizeof want, "\"%s\": %s", p[i].label, p[i].prob);
        CHECK_MSG(strstr(line, want) && strchr(line, '\n') > strstr(line, want), "line %d wants %s: %s", i, want, line);
        if (!strchr(line, '\n')) break;
    }
    free(t);
}

int main(void) {
    REQUIRE(mkdtemp(tmp));
    /* the CLI evaluates the example's dev rows: the header and the first 100 */
    REQUIRE(run("head -n 101 %s/dev.tsv > dev.tsv", SST2) == 0);
    const int rc = run("%s/example_train_classify %s %s %s/train.tsv %s/dev.tsv run > example.out 2> example.err",
                       LL_BUILD_DIR, MODEL, TOKENIZER, SST2, SST2);
    char *out = slurp("example.out"), *err = slurp("example.err");
    printf("%s%s", out, err);
    CHECK_MSG(rc == 0, "example exit %d: %s", rc, err);
    CHECK(strstr(out, "(2 labels): same predictions\n") != NULL);
    char *nl_out = malloc(strlen(out) + 2); /* a leading newline: every field is "\nkey " */
    REQUIRE(nl_out);
    nl_out[0] = '\n';
    strcpy(nl_out + 1, out);
    check_eval(nl_out);
    check_predict(nl_out);
    free(nl_out);
    free(out);
    free(err);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp);
    return test_summary("test_examples");
}
