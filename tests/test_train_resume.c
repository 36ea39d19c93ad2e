// LL_TEST_LABELS: slow
/* Training end to end through the CLI on SmolLM2-135M and 48 SST-2
 * sentences: 12 steps straight, and 6 steps + stop (as if killed after the
 * step-6 checkpoint) + --resume for the remaining 6, give bit-identical
 * adapters; the dev evaluation runs and the best adapter exists. Then
 * `lsllama eval` and `lsllama predict` on the trained adapter. */
#include <sys/stat.h>

#include "test_util.h"

static char tmp[] = "/tmp/lsllama_resume_XXXXXX";

int main(void) {
    REQUIRE(mkdtemp(tmp));
    char cmd[8192], train[512], dev[512];
    snprintf(train, sizeof train, "%s/train.tsv", tmp);
    snprintf(dev, sizeof dev, "%s/dev.tsv", tmp);
    snprintf(cmd, sizeof cmd, "head -49 %s/data/sst2/train.tsv > %s && head -25 %s/data/sst2/dev.tsv > %s",
             LL_SHARED_DIR, train, LL_SHARED_DIR, dev);
    REQUIRE(system(cmd) == 0);
    const char *model = test_smollm2_path();
    const char *common = "--batch-tokens 96 --max-steps 12 --lr 1e-3 --seed 7 --checkpoint-every 6 --no-progress";
    snprintf(cmd, sizeof cmd, "%s train %s --train %s --dev %s --out %s/straight %s", LL_CLI_PATH, model, train, dev,
             tmp, common);
    CHECK(test_run(cmd) == 0);
    snprintf(cmd, sizeof cmd, "%s train %s --train %s --dev %s --out %s/resumed %s --stop-after-steps 6", LL_CLI_PATH,
             model, train, dev, tmp, common);
    CHECK(test_run(cmd) == 0);
    snprintf(cmd, sizeof cmd, "%s/resumed/final", tmp);
    struct stat st;
    CHECK_MSG(stat(cmd, &st) != 0, "a stopped run must not write its final adapter");
    snprintf(cmd, sizeof cmd, "%s train %s --train %s --dev %s --out %s/resumed %s --resume", LL_CLI_PATH, model,
             train, dev, tmp, common);
    CHECK(test_run(cmd) == 0);
    char a[512], b[512], *x = NULL, *y = NULL;
    snprintf(a, sizeof a, "%s/straight/final/adapter_model.safetensors", tmp);
    snprintf(b, sizeof b, "%s/resumed/final/adapter_model.safetensors", tmp);
    long na = test_file_bytes(a, &x), nb = test_file_bytes(b, &y);
    CHECK(na > 0 && na == nb);
    CHECK_MSG(na > 0 && na == nb && memcmp(x, y, (size_t)na) == 0, "resumed adapter differs from the straight run");
    printf("straight and resumed adapters: %ld bytes, %s\n", na,
           na > 0 && na == nb && !memcmp(x, y, (size_t)na) ? "identical" : "DIFFERENT");
    free(x);
    free(y);
    snprintf(a, sizeof a, "%s/straight/best/adapter_config.json", tmp);
    CHECK(stat(a, &st) == 0);
    /* eval and predict on the trained adapter */
    snprintf(cmd, sizeof cmd, "%s eval %s --adapter %s/straight/best --data %s --json > %s/eval.json", LL_CLI_PATH,
             model, tmp, dev, tmp);
    CHECK(test_run(cmd) == 0);
    snprintf(a, sizeof a, "%s/eval.json", tmp);
    CHECK(test_file_bytes(a, &x) > 0 && strstr(x, "\"accuracy\"") && strstr(x, "\"n\": 24"));
    free(x);
    snprintf(cmd, sizeof cmd, "printf 'a great film\\nterrible .\\n' | %s predict %s --adapter %s/straight/best > %s/pred.jsonl",
             LL_CLI_PATH, model, tmp, tmp);
    CHECK(test_run(cmd) == 0);
    snprintf(a, sizeof a, "%s/pred.jsonl", tmp);
    CHECK(test_file_bytes(a, &x) > 0 && strstr(x, "\"text\": \"a great film\"") && strstr(x, "\"probabilities\""));
    free(x);
    /* bad input: unknown target module and r = 0 are refused before any work */
    snprintf(cmd, sizeof cmd, "%s train %s --train %s --out %s/bad --lora-targets q,zz 2>/dev/null", LL_CLI_PATH,
             model, train, tmp);
    CHECK(test_run(cmd) != 0);
    snprintf(cmd, sizeof cmd, "%s train %s --train %s --out %s/bad --lora-r 0 2>/dev/null", LL_CLI_PATH, model, train,
             tmp);
    CHECK(test_run(cmd) != 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    test_run(cmd);
    return test_summary("test_train_resume");
}
