// LL_TEST_LABELS: slow
/* Training gives the same bytes whatever the number of OpenMP threads the
 * process starts with (OMP_NUM_THREADS = 1 or 2), on a real model's shapes
 * (SmolLM2-135M: LoRA's thin rank-12 products, a token task's head, dropout
 * on). Data-parallel ranks run with fewer threads than a process alone, so
 * the same adapter at every world size rests on this. OpenBLAS's sgemm failed
 * it for LoRA's thin products (its blocking follows the threads it started
 * with); ll_gemm now runs them on its own kernels. */
#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"

static char tmp[] = "/tmp/lsllama_threads_XXXXXX";

static void train(const char *threads, const char *args, const char *out) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=%s %s train %s %s --out %s/%s --no-progress >/dev/null 2>%s/%s.err",
             threads, LL_CLI_PATH, test_smollm2_path(), args, tmp, out, tmp, out);
    CHECK_MSG(test_run(cmd) == 0, "training failed: see %s/%s.err", tmp, out);
}

static void check_same(const char *a, const char *b) {
    char pa[4096], pb[4096];
    snprintf(pa, sizeof pa, "%s/%s/final/adapter_model.safetensors", tmp, a);
    snprintf(pb, sizeof pb, "%s/%s/final/adapter_model.safetensors", tmp, b);
    CHECK_MSG(test_same_bytes(pa, pb), "%s and %s differ", pa, pb);
}

int main(void) {
    REQUIRE(mkdtemp(tmp));
    char seq[2048], tok[2048];
    snprintf(seq, sizeof seq, "--train %s/data/sst2/train.tsv --batch-tokens 512 --max-steps 2 --warmup-ratio 0 "
             "--lr 5e-4 --lora-targets all-linear", LL_SHARED_DIR);
    train("1", seq, "seq1");
    train("2", seq, "seq2");
    check_same("seq1", "seq2");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "head -300 %s/data/conll2003/train.txt > %s/ner.txt", LL_SHARED_DIR, tmp);
    REQUIRE(system(cmd) == 0);
    snprintf(tok, sizeof tok, "--task token --train %s/ner.txt --batch-tokens 512 --max-steps 2 --warmup-ratio 0 "
             "--lr 5e-4", tmp);
    train("1", tok, "tok1");
    train("2", tok, "tok2");
    check_same("tok1", "tok2");
    if (!test_failures_) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
        CHECK(system(cmd) == 0);
    }
    return test_summary("test_thread_independence");
}
