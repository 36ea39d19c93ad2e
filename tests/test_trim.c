// LL_TEST_LABELS: slow
/* Last-layer trimming (ll_lora_pass.last_rows; LSLLAMA_TRIM=0 turns it off):
 * with last-token pooling over a causal last layer the classifier runs the
 * last layer past k and v for each sequence's last token alone. The results
 * must not change by a bit. Through the CLI on stories260K, trimming on and
 * off: all-linear LoRA with dropout 0.1, grad-accum 2, a dev set, batches
 * over 256 tokens (several K slices of the LoRA gradients) and sequences
 * over 64 tokens (several attention query chunks), with and without
 * --recompute: final and best adapters and log.jsonl (timing fields masked)
 * byte-identical; eval and predict outputs identical. The configurations
 * that must not trim (mean pooling, a bidirectional last layer, the token
 * task) give the same bytes with the switch either way. Then SmolLM2-135M,
 * 2 steps: adapters identical. */
#include "test_util.h"

static char tmp[] = "/tmp/lsllama_trim_XXXXXX";
static const char *stories = LL_SHARED_DIR "/models/stories260K/stories260K.bin --tokenizer " LL_SHARED_DIR
                                           "/models/stories260K/tok512.bin";

/* `lsllama ARGS` with LSLLAMA_TRIM=trim; 0 when it succeeded. */
static int cli(int trim, const char *args) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd %s && LSLLAMA_TRIM=%d %s %s", tmp, trim, LL_CLI_PATH, args);
    return test_run(cmd);
}

/* 1 when tmp/a and tmp/b hold the same bytes. */
static int same(const char *a, const char *b) {
    char pa[1024], pb[1024];
    snprintf(pa, sizeof pa, "%s/%s", tmp, a);
    snprintf(pb, sizeof pb, "%s/%s", tmp, b);
    return test_same_bytes(pa, pb);
}

/* log.jsonl of run dir without its timing fields, into dir/log.masked. */
static void mask_log(const char *dir) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "sed -E 's/\"(tokens_per_s|elapsed_s)\": [0-9.eE+-]+//g' %s/%s/log.jsonl > %s/%s/log.masked", tmp, dir,
             tmp, dir);
    REQUIRE(system(cmd) == 0);
}

/* Trains `args` into run_off (LSLLAMA_TRIM=0) and run_on (=1); the adapters
 * (final, and best when `best`) and the masked logs must be the same bytes. */
static void train_both(const char *name, const char *args, int best) {
    char a[4096], off[256], on[256], fa[512], fb[512];
    snprintf(off, sizeof off, "%s_off", name);
    snprintf(on, sizeof on, "%s_on", name);
    for (int trim = 0; trim <= 1; trim++) {
        snprintf(a, sizeof a, "train %s --out %s %s", args, trim ? on : off, "--no-progress");
        CHECK(cli(trim, a) == 0);
    }
    const char *files[] = {"final/adapter_model.safetensors", "best/adapter_model.safetensors", "log.masked"};
    mask_log(off), mask_log(on);
    for (int i = 0; i < 3; i++) {
        if (i == 1 && !best) continue;
        snprintf(fa, sizeof fa, "%s/%s", off, files[i]);
        snprintf(fb, sizeof fb, "%s/%s", on, files[i]);
        CHECK_MSG(same(fa, fb), "%s: %s differs between trimming off and on", name, files[i]);
    }
}

int main(void) {
    REQUIRE(mkdtemp(tmp));
    char cmd[8192], args[4096];
    snprintf(cmd, sizeof cmd,
             "head -97 %s/data/sst2/train.tsv > %s/train.tsv && head -41 %s/data/sst2/dev.tsv > %s/dev.tsv && "
             "head -120 %s/data/conll2003/train.txt > %s/ner.txt",
             LL_SHARED_DIR, tmp, LL_SHARED_DIR, tmp, LL_SHARED_DIR, tmp);
    REQUIRE(system(cmd) == 0);
    const char *common = "--train train.tsv --dev dev.tsv --lora-targets all-linear --lora-dropout 0.1 "
                         "--grad-accum 2 --batch-tokens 600 --max-steps 4 --eval-every 2 --lr 1e-2 --seed 5";

    /* the trimmed configuration, without and with activation checkpointing */
    snprintf(args, sizeof args, "%s %s", stories, common);
    train_both("plain", args, 1);
    snprintf(args, sizeof args, "%s %s --recompute", stories, common);
    train_both("recompute", args, 1);
    CHECK_MSG(same("plain_on/final/adapter_model.safetensors", "recompute_on/final/adapter_model.safetensors"),
              "--recompute changes the trimmed adapter");

    /* eval and predict of the trained adapter, trimming off and on */
    for (int trim = 0; trim <= 1; trim++) {
        snprintf(args, sizeof args, "eval %s --adapter plain_on/best --data dev.tsv --json > eval%d.json", stories,
                 trim);
        CHECK(cli(trim, args) == 0);
        snprintf(args, sizeof args, "predict %s --adapter plain_on/best --input dev.tsv --format tsv > pred%d.jsonl",
                 stories, trim);
        CHECK(cli(trim, args) == 0);
    }
    CHECK_MSG(same("eval0.json", "eval1.json"), "eval output differs between trimming off and on");
    CHECK_MSG(same("pred0.jsonl", "pred1.jsonl"), "predict output differs between trimming off and on");

    /* the paths that must not trim: the same bytes either way */
    const char *quick = "--train train.tsv --lora-targets all-linear --batch-tokens 600 --max-steps 2 --lr 1e-2 "
                        "--seed 5";
    snprintf(args, sizeof args, "%s %s --pool mean", stories, quick);
    train_both("mean", args, 0);
    snprintf(args, sizeof args, "%s %s --bidirectional-from 4", stories, quick);
    train_both("bidir_last", args, 0);
    snprintf(args, sizeof args, "%s --task token --train ner.txt --lora-targets all-linear --batch-tokens 600 "
             "--max-steps 2 --lr 1e-2 --seed 5", stories);
    train_both("token", args, 0);

    /* SmolLM2-135M (GQA, 30 layers, Q4_1 weights): 2 steps */
    snprintf(args, sizeof args, "%s --train train.tsv --lora-targets all-linear --batch-tokens 512 --max-steps 2 "
             "--seed 5", test_smollm2_path());
    train_both("smollm2", args, 0);

    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (!test_failures_) test_run(cmd);
    return test_summary("test_trim");
}
