/* --compute through the CLI (stories260K, 40 SST-2 sentences):
 *  - a bad value is an error naming the option; on a CPU without bf16
 *    products (LSLLAMA_GEMM_BF16=none stands for one) --compute bf16 is
 *    refused with a message naming the CPU and the instructions, before
 *    --out is created;
 *  - where the CPU has them: a run trained with --compute bf16 records
 *    "compute": "bf16" and its kernel in log.jsonl's first line and
 *    label_map.json; stopped after its step-2 checkpoint and resumed WITHOUT
 *    the flag it continues in bf16 and gives the straight run's adapter byte
 *    for byte; its adapter differs from the f32 run's (bf16 really ran) while
 *    the logged losses agree to 2% (bf16's precision); predict runs with
 *    --compute bf16 and its probabilities are within 0.02 of f32's. */
#include <sys/stat.h>
#include <sys/wait.h>

#include "test_util.h"

static char tmp[] = "/tmp/lsllama_compute_cli_XXXXXX";

#define STORIES LL_SHARED_DIR "/models/stories260K/stories260K.bin"
#define TOK LL_SHARED_DIR "/models/stories260K/tok512.bin"

/* The "loss" of log line `step` in dir/log.jsonl, or NAN. */
static double logged_loss(const char *dir, int step) {
    char path[700], key[40];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    char *log = test_read_file(path);
    double loss = NAN;
    snprintf(key, sizeof key, "{\"step\": %d,", step);
    const char *line = log ? strstr(log, key) : NULL;
    const char *l = line ? strstr(line, "\"loss\": ") : NULL;
    if (l) loss = atof(l + 8);
    free(log);
    return loss;
}

/* The first "probabilities" value of each line of two predict outputs: the largest difference. */
static double max_prob_diff(const char *a, const char *b) {
    char *x = test_read_file(a), *y = test_read_file(b);
    double worst = x && y ? 0.0 : INFINITY;
    const char *p = x, *q = y;
    int lines = 0;
    while (p && q && (p = strstr(p, "\"probabilities\": {")) && (q = strstr(q, "\"probabilities\": {"))) {
        p = strchr(p + 18, ':'), q = strchr(q + 18, ':');
        if (!p || !q) break;
        const double d = fabs(atof(p + 1) - atof(q + 1));
        if (d > worst) worst = d;
        lines++;
    }
    free(x), free(y);
    return lines >= 10 ? worst : INFINITY;
}

int main(void) {
    REQUIRE(mkdtemp(tmp));
    char cmd[8192], a[700], b[700];
    snprintf(cmd, sizeof cmd, "head -41 %s/data/sst2/train.tsv > %s/train.tsv && head -21 %s/data/sst2/dev.tsv > %s/dev.tsv",
             LL_SHARED_DIR, tmp, LL_SHARED_DIR, tmp);
    REQUIRE(system(cmd) == 0);
    char common[2048];
    snprintf(common, sizeof common, "--tokenizer %s --train %s/train.tsv --batch-tokens 64 --max-steps 4 --seed 3 "
             "--checkpoint-every 2 --no-progress", TOK, tmp);

    /* a bad value names the option */
    snprintf(cmd, sizeof cmd, "%s train %s %s --out %s/bad --compute fp16 2> %s/err_bad.txt", LL_CLI_PATH, STORIES,
             common, tmp, tmp);
    CHECK(WEXITSTATUS(test_run(cmd)) == 2);
    snprintf(a, sizeof a, "%s/err_bad.txt", tmp);
    char *err = test_read_file(a);
    CHECK_MSG(err && strstr(err, "--compute must be f32 or bf16, got 'fp16'"), "message: %s", err ? err : "(none)");
    free(err);

    /* a CPU without bf16 products: refused before --out exists */
    snprintf(cmd, sizeof cmd, "LSLLAMA_GEMM_BF16=none %s train %s %s --out %s/refused --compute bf16 2> %s/err_cpu.txt",
             LL_CLI_PATH, STORIES, common, tmp, tmp);
    CHECK(WEXITSTATUS(test_run(cmd)) == 2);
    snprintf(a, sizeof a, "%s/err_cpu.txt", tmp);
    err = test_read_file(a);
    CHECK_MSG(err && strstr(err, "AVX512-BF16") && strstr(err, "AMX-BF16") && strstr(err, "this CPU ("),
              "message: %s", err ? err : "(none)");
    free(err);
    struct stat st;
    snprintf(a, sizeof a, "%s/refused", tmp);
    CHECK_MSG(stat(a, &st) != 0, "a refused run created --out");
    snprintf(cmd, sizeof cmd, "cd %s && tail -n +2 dev.tsv | cut -f1 | LSLLAMA_GEMM_BF16=none %s predict %s --tokenizer "
             "%s --adapter nowhere --compute bf16 > /dev/null 2> err_pred.txt", tmp, LL_CLI_PATH, STORIES, TOK);
    CHECK(test_run(cmd) != 0);
    snprintf(a, sizeof a, "%s/err_pred.txt", tmp);
    err = test_read_file(a);
    CHECK_MSG(err && strstr(err, "AVX512-BF16"), "predict's message: %s", err ? err : "(none)");
    free(err);

    snprintf(cmd, sizeof cmd, "grep -qw avx512_bf16 /proc/cpuinfo");
    if (test_run(cmd) != 0) {
        printf("no AVX512-BF16 on this CPU: bf16 training cannot run here (the refusal was checked)\n");
        return test_summary("test_compute_cli");
    }
    snprintf(cmd, sizeof cmd, "%s train %s %s --out %s/f32", LL_CLI_PATH, STORIES, common, tmp);
    CHECK(test_run(cmd) == 0);
    snprintf(cmd, sizeof cmd, "%s train %s %s --out %s/straight --compute bf16", LL_CLI_PATH, STORIES, common, tmp);
    CHECK(test_run(cmd) == 0);
    snprintf(cmd, sizeof cmd, "%s train %s %s --out %s/resumed --compute bf16 --stop-after-steps 2", LL_CLI_PATH,
             STORIES, common, tmp);
    CHECK(test_run(cmd) == 0);
    snprintf(cmd, sizeof cmd, "%s train %s %s --out %s/resumed --resume", LL_CLI_PATH, STORIES, common, tmp);
    CHECK_MSG(test_run(cmd) == 0, "a bf16 run resumed without --compute");
    snprintf(a, sizeof a, "%s/straight/final/adapter_model.safetensors", tmp);
    snprintf(b, sizeof b, "%s/resumed/final/adapter_model.safetensors", tmp);
    CHECK_MSG(test_same_bytes(a, b), "the resumed bf16 adapter differs from the straight bf16 run's");
    snprintf(b, sizeof b, "%s/f32/final/adapter_model.safetensors", tmp);
    CHECK_MSG(!test_same_bytes(a, b), "bf16 and f32 runs gave the same adapter: bf16 did not run");
    /* what was recorded */
    snprintf(a, sizeof a, "%s/straight/log.jsonl", tmp);
    char *log = test_read_file(a);
    CHECK_MSG(log && strstr(log, "\"compute\": \"bf16\"") &&
                  (strstr(log, "\"weights_gemm\": \"amx_bf16\"") || strstr(log, "\"weights_gemm\": \"avx512_bf16\"")),
              "log's first line: %.300s", log ? log : "(none)");
    free(log);
    snprintf(a, sizeof a, "%s/straight/final/label_map.json", tmp);
    char *lm = test_read_file(a);
    CHECK_MSG(lm && strstr(lm, "\"compute\"") && strstr(lm, "\"bf16\""), "label_map.json: %s", lm ? lm : "(none)");
    free(lm);
    snprintf(a, sizeof a, "%s/straight", tmp);
    snprintf(b, sizeof b, "%s/f32", tmp);
    for (int step = 1; step <= 4; step++) {
        const double lb = logged_loss(a, step), lf = logged_loss(b, step);
        CHECK_MSG(isfinite(lb) && isfinite(lf) && fabs(lb - lf) <= 0.02 * fabs(lf),
                  "step %d: loss %.6g in bf16, %.6g in f32", step, lb, lf);
    }
    /* predict in bf16 and f32 with one adapter */
    const char *fmt = "cd %s && tail -n +2 dev.tsv | cut -f1 | %s predict %s --tokenizer %s --adapter f32/final %s > %s";
    snprintf(cmd, sizeof cmd, fmt, tmp, LL_CLI_PATH, STORIES, TOK, "--compute bf16", "p_bf16.jsonl");
    CHECK(test_run(cmd) == 0);
    snprintf(cmd, sizeof cmd, fmt, tmp, LL_CLI_PATH, STORIES, TOK, "", "p_f32.jsonl");
    CHECK(test_run(cmd) == 0);
    snprintf(a, sizeof a, "%s/p_bf16.jsonl", tmp);
    snprintf(b, sizeof b, "%s/p_f32.jsonl", tmp);
    const double d = max_prob_diff(a, b);
    CHECK_MSG(d <= 0.02, "bf16 and f32 probabilities differ by %g", d);
    if (!test_failures_) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
        (void)system(cmd);
    }
    return test_summary("test_compute_cli");
}
