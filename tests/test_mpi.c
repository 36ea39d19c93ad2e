// LL_TEST_LABELS: mpi
/* Data-parallel training over MPI (built with -DLL_MPI=ON): the same seed
 * gives the same adapter bytes and the same logged losses and dev figures at
 * W = 1, 2 and 4 under mpirun and without mpirun, on a sequence task and a
 * token task (dropout on: masks must not depend on the rank); a run stopped
 * at W = 2 resumes at W = 1 to the same bytes; the same run across two
 * network namespaces over OpenMPI's TCP transport (tests/mpi_two_hosts.sh)
 * gives the same bytes; a bad data file and a grad-accum W does not divide
 * stop every rank with a message naming the cause. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "test_util.h"

static char tmp[] = "/tmp/lsllama_mpi_XXXXXX";
static char cmd[16384];

#define MODEL LL_SHARED_DIR "/models/stories260K/stories260K.bin --tokenizer " LL_SHARED_DIR "/models/stories260K/tok512.bin"
#define MPIRUN LL_MPIEXEC " --oversubscribe --bind-to none -np"

/* log.jsonl without its timing fields (tokens_per_s, elapsed_s end each step line) */
static void masked_log(const char *run, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s.log", tmp, run);
    snprintf(cmd, sizeof cmd, "sed 's/\"tokens_per_s.*//' %s/%s/log.jsonl > %s", tmp, run, out);
    REQUIRE(system(cmd) == 0);
}

/* Two runs agree: final (and best, when there is one) adapter bytes and the masked logs. */
static void check_same_run(const char *a, const char *b) {
    char pa[4096], pb[4096];
    const char *parts[] = {"final/adapter_model.safetensors", "best/adapter_model.safetensors",
                           "final/label_map.json"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        snprintf(pa, sizeof pa, "%s/%s/%s", tmp, a, parts[i]);
        snprintf(pb, sizeof pb, "%s/%s/%s", tmp, b, parts[i]);
        CHECK_MSG(test_same_bytes(pa, pb), "%s and %s differ in %s", a, b, parts[i]);
    }
    masked_log(a, pa, sizeof pa);
    masked_log(b, pb, sizeof pb);
    CHECK_MSG(test_same_bytes(pa, pb), "the logs of %s and %s differ (timing fields masked)", a, b);
}

static int train(const char *launcher, const char *args, const char *out, const char *extra) {
    snprintf(cmd, sizeof cmd, "%s %s train " MODEL " %s --out %s/%s --no-progress %s >%s/%s.out 2>%s/%s.err",
             launcher, LL_CLI_PATH, args, tmp, out, extra, tmp, out, tmp, out);
    return test_run(cmd);
}

static int contains(const char *path, const char *needle) {
    char *text = test_read_file(path);
    const int yes = text && strstr(text, needle);
    if (!yes) fprintf(stderr, "%s lacks \"%s\":\n%s\n", path, needle, text ? text : "(unreadable)");
    free(text);
    return yes;
}

int main(void) {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1); /* OpenMPI refuses root without both */
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    unsetenv("OMP_NUM_THREADS"); /* each rank takes its share of the cores */
    REQUIRE(mkdtemp(tmp));
    snprintf(cmd, sizeof cmd,
             "head -97 %s/data/sst2/train.tsv > %s/train.tsv && head -41 %s/data/sst2/dev.tsv > %s/dev.tsv && "
             "head -1500 %s/data/conll2003/train.txt > %s/ner_train.txt && "
             "head -400 %s/data/conll2003/valid.txt > %s/ner_dev.txt",
             LL_SHARED_DIR, tmp, LL_SHARED_DIR, tmp, LL_SHARED_DIR, tmp, LL_SHARED_DIR, tmp);
    REQUIRE(system(cmd) == 0);

    /* sequence task: 4 micro-batches a step, all-linear LoRA with dropout, dev evaluation every 3 steps */
    char seq[2048];
    snprintf(seq, sizeof seq, "--train %s/train.tsv --dev %s/dev.tsv --batch-tokens 256 --grad-accum 4 --max-steps 6 "
             "--lora-targets all-linear --eval-every 3 --seed 11", tmp, tmp);
    CHECK(train("", seq, "alone", "") == 0);
    CHECK(train(MPIRUN " 1", seq, "w1", "") == 0);
    CHECK(train(MPIRUN " 2", seq, "w2", "") == 0);
    CHECK(train(MPIRUN " 4", seq, "w4", "") == 0);
    check_same_run("alone", "w1");
    check_same_run("alone", "w2");
    check_same_run("alone", "w4");
    char p[4096];
    snprintf(p, sizeof p, "%s/w2.out", tmp); /* rank 0 alone reports */
    CHECK(contains(p, "steps 6,"));
    snprintf(p, sizeof p, "%s/w2.err", tmp);
    CHECK(contains(p, "data-parallel: 2 ranks"));

    /* token task (bidirectional, head dropout): the dev windows are split between the ranks */
    char tok[2048];
    snprintf(tok, sizeof tok, "--task token --train %s/ner_train.txt --dev %s/ner_dev.txt --batch-tokens 128 "
             "--grad-accum 4 --max-steps 6 --eval-every 2", tmp, tmp);
    CHECK(train("", tok, "tok_alone", "") == 0);
    CHECK(train(MPIRUN " 4", tok, "tok_w4", "") == 0);
    check_same_run("tok_alone", "tok_w4");

    /* 3 steps at W = 2, killed; resumed at W = 1: the uninterrupted run's bytes */
    CHECK(train(MPIRUN " 2", seq, "resumed", "--checkpoint-every 3 --stop-after-steps 3") == 0);
    CHECK(train("", seq, "resumed", "--checkpoint-every 3 --resume") == 0);
    check_same_run("alone", "resumed");

    /* across two hosts: two network namespaces joined by a veth pair, TCP between them */
    snprintf(cmd, sizeof cmd, "%s/tests/mpi_two_hosts.sh 2", LL_SOURCE_DIR);
    CHECK(train(cmd, seq, "two_hosts", "") == 0);
    check_same_run("alone", "two_hosts");

    /* a bad line in the training file stops every rank before training, with the file and line named */
    snprintf(cmd, sizeof cmd, "sed '70s/\\t/ /' %s/train.tsv > %s/bad.tsv", tmp, tmp); /* no label column */
    REQUIRE(system(cmd) == 0);
    char bad[2048];
    snprintf(bad, sizeof bad, "--train %s/bad.tsv --batch-tokens 256 --grad-accum 4 --max-steps 6", tmp);
    CHECK(train(MPIRUN " 2", bad, "bad", "") != 0);
    snprintf(p, sizeof p, "%s/bad.err", tmp);
    CHECK(contains(p, "bad.tsv:70: missing label column"));
    CHECK(contains(p, "stopping every rank"));
    snprintf(p, sizeof p, "%s/bad/final", tmp);
    FILE *f = fopen(p, "r");
    CHECK_MSG(!f, "%s exists after a failed run", p);
    if (f) fclose(f);

    /* ranks that would compute differently are refused: another seed; another matrix kernel (mpirun's MPMD form) */
    snprintf(cmd, sizeof cmd, "%s --oversubscribe --bind-to none -np 1 %s train " MODEL " %s --out %s/mixed "
             "--no-progress : -np 1 %s train " MODEL " %s --seed 12 --out %s/mixed --no-progress 2>%s/mixed.err",
             LL_MPIEXEC, LL_CLI_PATH, seq, tmp, LL_CLI_PATH, seq, tmp, tmp);
    CHECK(test_run(cmd) != 0);
    snprintf(p, sizeof p, "%s/mixed.err", tmp);
    CHECK(contains(p, "rank 1's seed differs from rank 0's"));
    /* a rank resuming while another starts afresh would wait for it forever: refused */
    CHECK(train("", seq, "half", "--checkpoint-every 3 --stop-after-steps 3") == 0);
    snprintf(cmd, sizeof cmd, "timeout 120 %s --oversubscribe --bind-to none -np 1 %s train " MODEL " %s --out %s/half "
             "--no-progress --resume : -np 1 %s train " MODEL " %s --out %s/half --no-progress 2>%s/half.err",
             LL_MPIEXEC, LL_CLI_PATH, seq, tmp, LL_CLI_PATH, seq, tmp, tmp);
    const int half = test_run(cmd);
    CHECK_MSG(half != 0 && WEXITSTATUS(half) != 124, "status %d (124: hung until the timeout)", half);
    snprintf(p, sizeof p, "%s/half.err", tmp);
    CHECK(contains(p, "rank 1's --resume differs from rank 0's"));
    snprintf(cmd, sizeof cmd, "%s --oversubscribe --bind-to none -np 1 %s train " MODEL " %s --out %s/kernels "
             "--no-progress : -np 1 -x LSLLAMA_GEMM=c %s train " MODEL " %s --out %s/kernels --no-progress "
             "2>%s/kernels.err", LL_MPIEXEC, LL_CLI_PATH, seq, tmp, LL_CLI_PATH, seq, tmp, tmp);
    CHECK(test_run(cmd) != 0);
    snprintf(p, sizeof p, "%s/kernels.err", tmp);
    CHECK(contains(p, "matrix kernels differ from rank 0's"));

    /* W must divide grad-accum */
    snprintf(bad, sizeof bad, "--train %s/train.tsv --batch-tokens 256 --grad-accum 3 --max-steps 2", tmp);
    CHECK(train(MPIRUN " 2", bad, "accum", "") != 0);
    snprintf(p, sizeof p, "%s/accum.err", tmp);
    CHECK(contains(p, "--grad-accum 3: the 2 processes must divide it"));

    if (!test_failures_) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
        CHECK(system(cmd) == 0);
    }
    return test_summary("test_mpi");
}
