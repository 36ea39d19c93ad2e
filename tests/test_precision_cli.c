/* The base precision through the CLI (stories260K, 40 SST-2 sentences):
 * a run trained with --base-precision bf16, stopped after its step-2
 * checkpoint and resumed WITHOUT the flag, continues in bf16 (the precision
 * its log.jsonl recorded) and gives the straight bf16 run's adapter byte for
 * byte; predict picks up the precision the adapter recorded (the same
 * probabilities as with the flag, other than with stored); a label_map.json naming an unknown
 * precision is an error naming the file and key; inspect plans the memory
 * of every precision (q8_0 converts the F32 matrices whose rows are whole
 * blocks). */
#include <sys/stat.h>

#include "test_util.h"

static char tmp[] = "/tmp/lsllama_precision_cli_XXXXXX";

#define STORIES LL_SHARED_DIR "/models/stories260K/stories260K.bin"
#define TOK LL_SHARED_DIR "/models/stories260K/tok512.bin"

int main(void) {
    REQUIRE(mkdtemp(tmp));
    char cmd[8192], a[600], b[600];
    snprintf(cmd, sizeof cmd, "head -41 %s/data/sst2/train.tsv > %s/train.tsv && head -21 %s/data/sst2/dev.tsv > %s/dev.tsv",
             LL_SHARED_DIR, tmp, LL_SHARED_DIR, tmp);
    REQUIRE(system(cmd) == 0);
    char common[2048];
    snprintf(common, sizeof common, "--tokenizer %s --train %s/train.tsv --batch-tokens 64 --max-steps 4 --seed 3 "
             "--checkpoint-every 2 --no-progress", TOK, tmp);
    snprintf(cmd, sizeof cmd, "%s train %s %s --out %s/straight --base-precision bf16", LL_CLI_PATH, STORIES, common, tmp);
    CHECK(test_run(cmd) == 0);
    snprintf(cmd, sizeof cmd, "%s train %s %s --out %s/resumed --base-precision bf16 --stop-after-steps 2", LL_CLI_PATH,
             STORIES, common, tmp);
    CHECK(test_run(cmd) == 0);
    snprintf(cmd, sizeof cmd, "%s train %s %s --out %s/resumed --resume", LL_CLI_PATH, STORIES, common, tmp);
    CHECK_MSG(test_run(cmd) == 0, "a bf16 run resumed without --base-precision must continue in bf16");
    snprintf(a, sizeof a, "%s/straight/final/adapter_model.safetensors", tmp);
    snprintf(b, sizeof b, "%s/resumed/final/adapter_model.safetensors", tmp);
    CHECK_MSG(test_same_bytes(a, b), "resumed bf16 adapter differs from the straight bf16 run");
    /* a stored run is another base: resumed as bf16 it is refused, and the message says why */
    snprintf(cmd, sizeof cmd, "%s train %s %s --out %s/stored --stop-after-steps 2 && %s train %s %s --out %s/stored "
             "--resume --base-precision bf16 2> %s/err.txt", LL_CLI_PATH, STORIES, common, tmp, LL_CLI_PATH, STORIES,
             common, tmp, tmp);
    CHECK(test_run(cmd) != 0);
    snprintf(a, sizeof a, "%s/err.txt", tmp);
    char *err = test_read_file(a);
    CHECK_MSG(err && strstr(err, "--base-precision"), "message: %s", err ? err : "(none)");
    free(err);
    /* predict: the adapter's recorded precision is the default (probabilities printed in full) */
    const char *fmt = "cd %s && tail -n +2 dev.tsv | cut -f1 | %s predict %s --tokenizer %s --adapter straight/final %s > %s";
    snprintf(cmd, sizeof cmd, fmt, tmp, LL_CLI_PATH, STORIES, TOK, "", "p_default.jsonl");
    CHECK(test_run(cmd) == 0);
    snprintf(cmd, sizeof cmd, fmt, tmp, LL_CLI_PATH, STORIES, TOK, "--base-precision bf16", "p_bf16.jsonl");
    CHECK(test_run(cmd) == 0);
    snprintf(cmd, sizeof cmd, fmt, tmp, LL_CLI_PATH, STORIES, TOK, "--base-precision stored", "p_stored.jsonl");
    CHECK(test_run(cmd) == 0);
    snprintf(a, sizeof a, "%s/p_default.jsonl", tmp);
    snprintf(b, sizeof b, "%s/p_bf16.jsonl", tmp);
    CHECK_MSG(test_same_bytes(a, b), "predict without the flag must use the adapter's bf16");
    snprintf(b, sizeof b, "%s/p_stored.jsonl", tmp);
    CHECK_MSG(!test_same_bytes(a, b), "bf16 and stored probabilities should differ");
    const char *efmt = "%s eval %s --tokenizer %s --adapter %s/straight/final --data %s/dev.tsv --json %s > %s/%s";
    /* an unknown recorded precision is an error naming the file and key */
    snprintf(cmd, sizeof cmd, "sed -i 's/\"base_precision\": *\"bf16\"/\"base_precision\": \"fp8\"/' %s/straight/final/label_map.json"
             " && grep -q fp8 %s/straight/final/label_map.json", tmp, tmp);
    REQUIRE(test_run(cmd) == 0);
    snprintf(cmd, sizeof cmd, efmt, LL_CLI_PATH, STORIES, TOK, tmp, tmp, "", tmp, "e_bad.json 2> err2.txt");
    char full[9000];
    snprintf(full, sizeof full, "cd %s && %s", tmp, cmd);
    CHECK(test_run(full) != 0);
    snprintf(a, sizeof a, "%s/err2.txt", tmp);
    err = test_read_file(a);
    CHECK_MSG(err && strstr(err, "label_map.json") && strstr(err, "base_precision") && strstr(err, "fp8"),
              "message: %s", err ? err : "(none)");
    free(err);
    /* inspect plans each precision: stories260K is F32; q8_0 converts all but w_down (172 columns) */
    snprintf(cmd, sizeof cmd, "%s inspect %s --no-metadata --no-tensors --base-precision q8_0 > %s/inspect.txt",
             LL_CLI_PATH, STORIES, tmp);
    CHECK(test_run(cmd) == 0);
    snprintf(a, sizeof a, "%s/inspect.txt", tmp);
    char *out = test_read_file(a);
    CHECK_MSG(out && strstr(out, "Q8_0   matrices 212.0 KiB") && strstr(out, "F32    matrices 215.0 KiB"), "%s",
              out ? out : "(none)");
    free(out);
    if (!test_failures_) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
        (void)system(cmd);
    }
    return test_summary("test_precision_cli");
}
