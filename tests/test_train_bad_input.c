// LL_TEST_LABELS: slow
/* Bad input to `lsllama train`, `eval` and `predict`: each is refused with a
 * message naming the file and line (or option, module, tensor), a non-zero
 * exit and no crash, and an adapter and checkpoint already in the output
 * folder stay byte-identical. */
#include <sys/wait.h>

#include "test_util.h"

static char tmp[] = "/tmp/lsllama_trainbad_XXXXXX";

static char *slurp(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc((size_t)*n + 1, 1);
    if (fread(s, 1, (size_t)*n, f) != (size_t)*n) *n = -1;
    fclose(f);
    return s;
}

/* Run lsllama with args (paths relative to tmp via %s), expect failure and
 * every needle in stderr. */
static void expect_fail(const char *label, const char *args, const char *n1, const char *n2) {
    char cmd[8192], errp[512];
    snprintf(errp, sizeof errp, "%s/stderr.txt", tmp);
    snprintf(cmd, sizeof cmd, "cd %s && %s %s > /dev/null 2> %s", tmp, LL_CLI_PATH, args, errp);
    const int st = system(cmd);
    long n;
    char *err = slurp(errp, &n);
    const int exited = st != -1 && WIFEXITED(st), code = exited ? WEXITSTATUS(st) : -1;
    CHECK_MSG(exited && code != 0, "%s: exit status %d (want a non-zero exit, no signal)", label, code);
    CHECK_MSG(err && (!n1 || strstr(err, n1)) && (!n2 || strstr(err, n2)), "%s: stderr lacks '%s'/'%s': %s", label,
              n1 ? n1 : "", n2 ? n2 : "", err ? err : "(none)");
    CHECK_MSG(err && !strstr(err, "Sanitizer") && !strstr(err, "runtime error"), "%s: sanitizer report", label);
    printf("%-34s -> %s", label, err && *err ? err : "(no message)\n");
    free(err);
}

int main(void) {
    REQUIRE(mkdtemp(tmp));
    const char *M = test_smollm2_path();
    char cmd[8192], args[4096];
    test_write_file(tmp, "train.tsv", "sentence\tlabel\na fine film\t1\na dull film\t0\ngood\t1\nbad\t0\n");
    test_write_file(tmp, "dev.tsv", "sentence\tlabel\nnice\t1\nawful\t0\n");
    /* a first, good run leaves an adapter and a checkpoint */
    snprintf(cmd, sizeof cmd,
             "cd %s && %s train %s --train train.tsv --dev dev.tsv --out out --max-steps 2 --batch-tokens 64 "
             "--checkpoint-every 1 --no-progress > /dev/null 2>&1",
             tmp, LL_CLI_PATH, M);
    REQUIRE(system(cmd) == 0);
    const char *keep[] = {"out/best/adapter_model.safetensors", "out/best/adapter_config.json",
                          "out/checkpoint/state.safetensors", "out/checkpoint/state.json"};
    char *before[4];
    long nb[4];
    for (int i = 0; i < 4; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", tmp, keep[i]);
        before[i] = slurp(p, &nb[i]);
        REQUIRE(before[i] && nb[i] > 0);
    }
    test_write_file(tmp, "missing_col.tsv", "sentence\tlabel\na fine film\t1\nno label here\n");
    test_write_file(tmp, "empty_text.tsv", "sentence\tlabel\na fine film\t1\n   \t0\n");
    test_write_file(tmp, "bad_utf8.tsv", "sentence\tlabel\na fine film\t1\nbad \xff\xfe bytes\t0\n");
    test_write_file(tmp, "dev_unknown.tsv", "sentence\tlabel\nnice\t1\nmeh\t7\n");
    /* --overwrite: a run that fails on its inputs leaves the earlier run whole */
    const char *T = "train %s --train %s --dev dev.tsv --out out --overwrite --max-steps 2 --batch-tokens 64 "
                    "--no-progress %s";
    struct {
        const char *label, *train, *extra, *n1, *n2;
    } cases[] = {
        {"missing column", "missing_col.tsv", "", "missing_col.tsv:3", "label"},
        {"empty text", "empty_text.tsv", "", "empty_text.tsv:3", "empty"},
        {"invalid UTF-8", "bad_utf8.tsv", "", "bad_utf8.tsv:3", "UTF-8"},
        {"max length below 1", "train.tsv", "--max-length 0", "--max-length", NULL},
        {"r = 0 with LoRA", "train.tsv", "--lora-r 0", "--lora-r 0", NULL},
        {"unknown target module", "train.tsv", "--lora-targets q,qq", "'qq'", NULL},
        {"missing training file", "nope.tsv", "", "nope.tsv", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, T, M, cases[i].train, cases[i].extra);
        expect_fail(cases[i].label, args, cases[i].n1, cases[i].n2);
    }
    snprintf(args, sizeof args,
             "train %s --train train.tsv --dev dev_unknown.tsv --out out --overwrite --max-steps 2 --no-progress", M);
    expect_fail("dev label not in training map", args, "dev_unknown.tsv:3", "7");
    /* an adapter whose shapes do not fit the base: the tiny fixture model */
    snprintf(args, sizeof args, "eval %s --tokenizer %s --adapter out/best --data dev.tsv",
             LL_SOURCE_DIR "/tests/fixtures/tiny_llama/hf", M);
    expect_fail("adapter does not fit the base", args, "adapter_model.safetensors", NULL);
    snprintf(args, sizeof args, "predict %s --adapter out/no_such_adapter", M);
    expect_fail("missing adapter", args, "no_such_adapter", NULL);
    for (int i = 0; i < 4; i++) {
        char p[512];
        long n;
        snprintf(p, sizeof p, "%s/%s", tmp, keep[i]);
        char *after = slurp(p, &n);
        CHECK_MSG(after && n == nb[i] && !memcmp(after, before[i], (size_t)n), "%s changed", keep[i]);
        free(after);
        free(before[i]);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    (void)system(cmd);
    return test_summary("test_train_bad_input");
}
