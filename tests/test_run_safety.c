/* A training run's output is never lost or mixed up (issue 10, faults 1-3 and
 * 5), through the CLI on stories260K and SST-2 rows:
 *
 *  - kill -9 after every rename of a run (checkpoint, best/ and final/ folder
 *    swaps, the files inside them), on the RENAME_EXCHANGE path and on the
 *    two-rename fallback: --resume then ends byte-identical to the run that
 *    was never killed (adapters, checkpoint, the log's figures), or, killed
 *    before the first checkpoint, refuses clearly; nothing "*.tmp.*" or
 *    "*.old.*" is left;
 *  - a checkpoint whose two files disagree, or of the old unverifiable
 *    format, is refused;
 *  - a second `train` into a finished --out is refused and changes nothing;
 *    --overwrite replaces it, but never a file that training did not write;
 *  - a second writer of the same --out is refused, naming the first's pid;
 *  - a checkpoint with a NaN weight, an adapter with a NaN weight and a
 *    learning rate that overflows give clear errors, and no adapter is
 *    written from non-finite state. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "test_util.h"

#define S(x) ((x) ? (x) : "(none)")
#define MODEL_DIR LL_SHARED_DIR "/models/stories260K"
#define TOKENIZER MODEL_DIR "/tok512.bin"

static char tmp[] = "/tmp/lsllama_runsafety_XXXXXX";

/* Run the CLI in tmp with argv (NULL-terminated), an optional environment
 * assignment, stdout/stderr to out.txt/err.txt; returns the wait status. */
static long child_fsize_limit; /* > 0: the child's RLIMIT_FSIZE in bytes (a full disk, as far as it can tell) */

static int run_cli(const char *env, const char *const *args) {
    fflush(stdout);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (child_fsize_limit > 0) {
            const struct rlimit rl = {(rlim_t)child_fsize_limit, (rlim_t)child_fsize_limit};
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(126);
        }
        if (chdir(tmp) != 0) _exit(126);
        const int o = open("out.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open("err.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) _exit(126);
        if (env) putenv((char *)env);
        const char *argv[64] = {LL_CLI_PATH};
        int n = 1;
        for (; args[n - 1] && n < 63; n++) argv[n] = args[n - 1];
        argv[n] = NULL;
        execv(LL_CLI_PATH, (char *const *)argv);
        _exit(127);
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    return st;
}

static int exited_ok(int st) { return WIFEXITED(st) && WEXITSTATUS(st) == 0; }
static int killed(int st) { return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL; }

static char *tpath(const char *fmt, ...) {
    static char buf[4][1024];
    static int k;
    char rel[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp, rel);
    return buf[k];
}

static char *slurp_n(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)*n + 1);
    if (fread(s, 1, (size_t)*n, f) != (size_t)*n) *n = -1;
    s[*n > 0 ? *n : 0] = 0;
    fclose(f);
    return s;
}

static int same_file(const char *a, const char *b) {
    long na, nb;
    char *x = slurp_n(a, &na), *y = slurp_n(b, &nb);
    const int same = x && y && na == nb && !memcmp(x, y, (size_t)na);
    free(x);
    free(y);
    return same;
}

/* A file with the values of keys that measure time (or the length of a log
 * holding times) dropped: the rest must match exactly. */
static char *without_times(const char *path) {
    long n;
    char *s = slurp_n(path, &n);
    if (!s) return NULL;
    static const char *const keys[] = {"\"tokens_per_s\":", "\"elapsed_s\":", "\"log_bytes\":"};
    for (int k = 0; k < 3; k++)
        for (char *p = strstr(s, keys[k]); p; p = strstr(p + 1, keys[k])) {
            const char *key = keys[k];
            char *v = p + strlen(key), *end = v;
            while (*end && *end != ',' && *end != '}') end++;
            memmove(v, end, strlen(end) + 1); /* drop the value */
        }
    return s;
}

static const char *const run_files[] = {"best/adapter_model.safetensors", "best/adapter_config.json",
                                        "best/label_map.json",           "final/adapter_model.safetensors",
                                        "final/adapter_config.json",     "final/label_map.json",
                                        "checkpoint/state.safetensors",  "checkpoint/state.json"};
enum { N_RUN_FILES = sizeof run_files / sizeof run_files[0] };

/* out matches ref: every adapter and checkpoint file, the log's figures; no leftovers. */
static int same_run(const char *ref, const char *out, const char *label) {
    int ok = 1;
    for (int i = 0; i < N_RUN_FILES; i++) {
        int same;
        if (strstr(run_files[i], "state.json")) { /* it counts the log's bytes, whose timings vary in length */
            char *a = without_times(tpath("%s/%s", ref, run_files[i])), *b = without_times(tpath("%s/%s", out, run_files[i]));
            same = a && b && !strcmp(a, b);
            free(a);
            free(b);
        } else {
            same = same_file(tpath("%s/%s", ref, run_files[i]), tpath("%s/%s", out, run_files[i]));
        }
        if (!same) {
            CHECK_MSG(0, "%s: %s/%s differs from the uninterrupted run's", label, out, run_files[i]);
            ok = 0;
        }
    }
    char *a = without_times(tpath("%s/log.jsonl", ref)), *b = without_times(tpath("%s/log.jsonl", out));
    if (!(a && b && !strcmp(a, b))) {
        CHECK_MSG(0, "%s: %s/log.jsonl differs from the uninterrupted run's:\n%s\n--- vs ---\n%s", label, out,
                  b ? b : "(none)", a ? a : "(none)");
        ok = 0;
    }
    free(a);
    free(b);
    DIR *d = opendir(tpath("%s", out));
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.") || strstr(e->d_name, ".old.")) {
            CHECK_MSG(0, "%s: %s left in %s", label, e->d_name, S(out));
            ok = 0;
        }
    if (d) closedir(d);
    return ok;
}

#define TRAIN_ARGS(out)                                                                                              \
    "train", MODEL_DIR "/stories260K.bin", "--tokenizer", TOKENIZER, "--train", "train.tsv", "--dev", "dev.tsv",     \
        "--out", out, "--max-steps", "6", "--batch-tokens", "160", "--eval-every", "2", "--checkpoint-every", "1",   \
        "--lora-targets", "all-linear", "--lr", "5e-3", "--seed", "3", "--no-progress"

/* Kill after the N-th rename for N = 1, 2, ... until a run is not killed;
 * after each kill, --resume (or, with no checkpoint yet, a fresh
 * --overwrite run) must give the reference run. Returns the number of kills. */
static int kill_after_every_rename(const char *extra_env) {
    int kills = 0;
    for (int n = 1; n < 200; n++) {
        char env[64];
        snprintf(env, sizeof env, "LSLLAMA_FAULT_KILL_AFTER_RENAME=%d", n);
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf %s/crash", tmp);
        REQUIRE(system(cmd) == 0);
        const char *first[] = {TRAIN_ARGS("crash"), NULL};
        const char *resume[] = {TRAIN_ARGS("crash"), "--resume", NULL};
        const char *again[] = {TRAIN_ARGS("crash"), "--overwrite", NULL};
        if (extra_env) putenv((char *)extra_env);
        int st = run_cli(env, first);
        if (!killed(st)) {
            CHECK_MSG(exited_ok(st), "kill at rename %d: the run neither died nor succeeded (status %d)", n, st);
            break;
        }
        kills++;
        st = run_cli(NULL, resume);
        char label[96];
        snprintf(label, sizeof label, "killed after rename %d%s", n, extra_env ? " (no exchange)" : "");
        if (!exited_ok(st)) { /* only acceptable: no checkpoint yet, said clearly */
            char *err = test_read_file(tpath("err.txt"));
            CHECK_MSG(err && strstr(err, "no checkpoint"), "%s: resume failed: %s", label, err ? err : "");
            free(err);
            CHECK_MSG(exited_ok(run_cli(NULL, again)), "%s: a fresh --overwrite run failed", label);
        }
        same_run("ref", "crash", label);
    }
    if (extra_env) unsetenv("LSLLAMA_FAULT_NO_EXCHANGE");
    return kills;
}

static void test_kills(void) {
    const char *ref[] = {TRAIN_ARGS("ref"), NULL};
    REQUIRE(exited_ok(run_cli(NULL, ref)));
    for (int i = 0; i < N_RUN_FILES; i++) REQUIRE(access(tpath("ref/%s", run_files[i]), F_OK) == 0);
    const int k1 = kill_after_every_rename(NULL);
    const int k2 = kill_after_every_rename("LSLLAMA_FAULT_NO_EXCHANGE=1");
    printf("kill -9 after each rename: %d kill points with folder exchange, %d with the two-rename fallback\n", k1, k2);
    /* 6 checkpoints, 3 best saves and final: each a folder of 2-3 files */
    CHECK_MSG(k1 >= 25 && k2 > k1, "too few kill points: %d, %d", k1, k2);
}

/* Checkpoints that cannot be trusted are refused. */
static void test_bad_checkpoints(void) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf %s/torn && cp -r %s/ref %s/torn", tmp, tmp, tmp);
    REQUIRE(system(cmd) == 0);
    const char *resume[] = {TRAIN_ARGS("torn"), "--resume", NULL};
    /* state.json of another step than state.safetensors (what two renames cut apart gave) */
    char *js = test_read_file(tpath("torn/checkpoint/state.json"));
    REQUIRE(js);
    char *p = strstr(js, "\"step\":");
    REQUIRE(p);
    char *q = p + 7;
    while (*q == ' ' || *q == '\t') q++;
    *q = '5'; /* step 6 -> 5 */
    test_write_file(tmp, "torn/checkpoint/state.json", js);
    int st = run_cli(NULL, resume);
    char *err = test_read_file(tpath("err.txt"));
    CHECK_MSG(!exited_ok(st) && err && strstr(err, "inconsistent"), "torn checkpoint: status %d, %s", st, S(err));
    printf("(e) torn checkpoint: %s", err ? err : "\n");
    free(err);
    /* the old two-file format, which cannot be verified */
    char *f = strstr(js, "\"format\":");
    REQUIRE(f);
    memcpy(f, "\"formax\"", 8);
    test_write_file(tmp, "torn/checkpoint/state.json", js);
    st = run_cli(NULL, resume);
    err = test_read_file(tpath("err.txt"));
    CHECK_MSG(!exited_ok(st) && err && strstr(err, "older lsllama"), "old checkpoint: status %d, %s", st, S(err));
    free(err);
    free(js);
    /* a log shorter than the checkpoint counted */
    snprintf(cmd, sizeof cmd, "rm -rf %s/torn && cp -r %s/ref %s/torn && : > %s/torn/log.jsonl", tmp, tmp, tmp, tmp);
    REQUIRE(system(cmd) == 0);
    st = run_cli(NULL, resume);
    err = test_read_file(tpath("err.txt"));
    CHECK_MSG(!exited_ok(st) && err && strstr(err, "log.jsonl"), "emptied log: status %d, %s", st, S(err));
    free(err);
}

/* A finished run is never replaced unasked; --overwrite replaces only its own files. */
static void test_existing_out(void) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf %s/done && cp -r %s/ref %s/done", tmp, tmp, tmp);
    REQUIRE(system(cmd) == 0);
    const char *again[] = {TRAIN_ARGS("done"), "--lr", "1e-1", NULL};
    int st = run_cli(NULL, again);
    char *err = test_read_file(tpath("err.txt"));
    CHECK_MSG(!exited_ok(st) && err && strstr(err, "already holds a training run") && strstr(err, "--overwrite"),
              "second run into a finished --out: status %d, %s", st, S(err));
    printf("(e) second run: %s", err ? err : "\n");
    free(err);
    same_run("ref", "done", "refused second run");
    /* a folder with someone else's file */
    REQUIRE(mkdir(tpath("notes"), 0755) == 0);
    test_write_file(tmp, "notes/thesis.tex", "\\chapter{}\n");
    const char *into_notes[] = {TRAIN_ARGS("notes"), NULL};
    st = run_cli(NULL, into_notes);
    err = test_read_file(tpath("err.txt"));
    CHECK_MSG(!exited_ok(st) && err && strstr(err, "thesis.tex"), "non-empty --out: status %d, %s", st, S(err));
    free(err);
    /* --overwrite replaces a run, but refuses when the folder holds a file training did not write */
    test_write_file(tmp, "done/loss.svg", "<svg/>\n");
    const char *overwrite[] = {TRAIN_ARGS("done"), "--overwrite", "--max-steps", "2", NULL};
    st = run_cli(NULL, overwrite);
    err = test_read_file(tpath("err.txt"));
    CHECK_MSG(!exited_ok(st) && err && strstr(err, "loss.svg"), "--overwrite with a foreign file: status %d, %s", st,
              err);
    free(err);
    CHECK(access(tpath("done/loss.svg"), F_OK) == 0 && access(tpath("done/best/label_map.json"), F_OK) == 0);
    REQUIRE(unlink(tpath("done/loss.svg")) == 0);
    CHECK(exited_ok(run_cli(NULL, overwrite)));
    char *log = test_read_file(tpath("done/log.jsonl"));
    CHECK_MSG(log && strstr(log, "\"step\": 2,") && !strstr(log, "\"step\": 3,"), "overwritten log: %s", S(log));
    free(log);
    /* --resume and --overwrite together make no sense */
    const char *both[] = {TRAIN_ARGS("done"), "--overwrite", "--resume", NULL};
    CHECK(!exited_ok(run_cli(NULL, both)));

    /* merge: a merged model is replaced only with --overwrite, and never a file merge does not write */
    const char *merge[] = {"merge", MODEL_DIR "/stories260K.bin", "--tokenizer", MODEL_DIR "/tok512.bin", "--adapter",
                           "ref/best", "--out", "merged", NULL};
    const char *merge_ow[] = {"merge", MODEL_DIR "/stories260K.bin", "--tokenizer", MODEL_DIR "/tok512.bin", "--adapter",
                              "ref/best", "--out", "merged", "--overwrite", NULL};
    CHECK(exited_ok(run_cli(NULL, merge)));
    long n0;
    char *first = slurp_n(tpath("merged/model.safetensors"), &n0);
    REQUIRE(first);
    st = run_cli(NULL, merge);
    err = test_read_file(tpath("err.txt"));
    CHECK_MSG(!exited_ok(st) && err && strstr(err, "not empty") && strstr(err, "--overwrite"),
              "second merge into the same --out: status %d, %s", st, S(err));
    free(err);
    CHECK(exited_ok(run_cli(NULL, merge_ow)));
    CHECK(access(tpath("merged/config.json"), F_OK) == 0 && access(tpath("merged.tmp"), F_OK) != 0);
    test_write_file(tmp, "merged/notes.txt", "notes\n");
    st = run_cli(NULL, merge_ow);
    err = test_read_file(tpath("err.txt"));
    CHECK_MSG(!exited_ok(st) && err && strstr(err, "notes.txt"), "--overwrite over a foreign file: status %d, %s", st,
              S(err));
    free(err);
    long n1;
    char *after = slurp_n(tpath("merged/model.safetensors"), &n1);
    CHECK(after && n1 == n0 && !memcmp(first, after, (size_t)n0) && access(tpath("merged/notes.txt"), F_OK) == 0);
    free(first);
    free(after);
}

/* One writer per folder: the lock names its owner. */
static void test_second_writer(void) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf %s/busy && cp -r %s/ref %s/busy", tmp, tmp, tmp);
    REQUIRE(system(cmd) == 0);
    const int fd = open(tpath("busy/lsllama.lock"), O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0);
    char pid[32];
    snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    REQUIRE(ftruncate(fd, 0) == 0 && write(fd, pid, strlen(pid)) == (ssize_t)strlen(pid));
    const char *resume[] = {TRAIN_ARGS("busy"), "--resume", NULL};
    const char *overwrite[] = {TRAIN_ARGS("busy"), "--overwrite", NULL};
    for (int i = 0; i < 2; i++) {
        const int st = run_cli(NULL, i ? overwrite : resume);
        char *err = test_read_file(tpath("err.txt"));
        pid[strcspn(pid, "\n")] = 0;
        CHECK_MSG(!exited_ok(st) && err && strstr(err, "another lsllama process") && strstr(err, pid),
                  "second writer: status %d, %s", st, S(err));
        if (!i) printf("(e) second writer: %s", err ? err : "\n");
        free(err);
    }
    close(fd); /* lock released: the run can go on */
    same_run("ref", "busy", "locked folder");
    CHECK(exited_ok(run_cli(NULL, resume)));
}

/* Overwrite the first float of tensor `name` in a safetensors file with NaN. */
static void poison_safetensors(const char *path, const char *name) {
    ll_st_file *f;
    ll_error err;
    REQUIRE(ll_st_open(&f, path, &err) == 0);
    const ll_st_tensor *t = ll_st_find(f, name);
    REQUIRE(t && t->dtype == LL_DTYPE_F32);
    const long off = (long)(t->data - f->file.data);
    ll_st_close(f);
    FILE *fp = fopen(path, "r+b");
    REQUIRE(fp && fseek(fp, off + 4, SEEK_SET) == 0);
    const float nan = NAN;
    REQUIRE(fwrite(&nan, 4, 1, fp) == 1 && fclose(fp) == 0);
}

static void test_non_finite(void) {
    /* base checkpoint: a NaN inside a layer matrix (llama2.c: 7 int32, then the embedding [512 x 64], ...) */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp %s/stories260K.bin %s/nan.bin", MODEL_DIR, tmp);
    REQUIRE(system(cmd) == 0);
    FILE *fp = fopen(tpath("nan.bin"), "r+b");
    const float nan = NAN;
    REQUIRE(fp && fseek(fp, 28 + 4 * (512 * 64 + 5 * 64 + 100), SEEK_SET) == 0 && fwrite(&nan, 4, 1, fp) == 1);
    REQUIRE(fclose(fp) == 0);
    const char *bad_base[] = {"train", "nan.bin", "--tokenizer", TOKENIZER, "--train", "train.tsv", "--dev",
                              "dev.tsv", "--out", "nanbase", "--max-steps", "2", "--no-progress", NULL};
    int st = run_cli(NULL, bad_base);
    char *err = test_read_file(tpath("err.txt"));
    CHECK_MSG(!exited_ok(st) && err && strstr(err, "non-finite") && strstr(err, "nan.bin"),
              "NaN base weight: status %d, %s", st, S(err));
    printf("(e) NaN weight in the checkpoint: %s", err ? err : "\n");
    free(err);
    CHECK(access(tpath("nanbase/best"), F_OK) != 0 && access(tpath("nanbase/final"), F_OK) != 0);
    /* an adapter with a NaN weight: eval and predict refuse it */
    snprintf(cmd, sizeof cmd, "rm -rf %s/nanad && cp -r %s/ref/best %s/nanad", tmp, tmp, tmp);
    REQUIRE(system(cmd) == 0);
    poison_safetensors(tpath("nanad/adapter_model.safetensors"), "base_model.model.score.weight");
    const char *eval[] = {"eval", MODEL_DIR "/stories260K.bin", "--tokenizer", TOKENIZER, "--adapter", "nanad",
                          "--data", "dev.tsv", "--json", NULL};
    const char *predict[] = {"predict", MODEL_DIR "/stories260K.bin", "--tokenizer", TOKENIZER, "--adapter", "nanad",
                             "--input", "dev.tsv", NULL};
    for (int i = 0; i < 2; i++) {
        st = run_cli(NULL, i ? predict : eval);
        err = test_read_file(tpath("err.txt"));
        char *out = test_read_file(tpath("out.txt"));
        CHECK_MSG(!exited_ok(st) && err && strstr(err, "non-finite") && strstr(err, "score.weight"),
                  "%s with a NaN adapter: status %d, %s", i ? "predict" : "eval", st, S(err));
        CHECK_MSG(out && !strstr(out, "nan") && !strstr(out, "inf"), "NaN in the output: %s", S(out));
        free(err);
        free(out);
    }
    /* finite weights whose products overflow (final norm weights of 1e38): the loss is not finite at the first
     * step, which is named; no adapter, checkpoint or non-finite log figure is written */
    snprintf(cmd, sizeof cmd, "cp %s/stories260K.bin %s/huge.bin", MODEL_DIR, tmp);
    REQUIRE(system(cmd) == 0);
    const long D = 64, F = 172, KV = 32, L = 5, V = 512;
    const long final_norm = 7 + V * D + L * D + L * D * D + 2 * L * KV * D + L * D * D + L * D + 3 * L * F * D;
    fp = fopen(tpath("huge.bin"), "r+b");
    REQUIRE(fp && fseek(fp, 4 * final_norm, SEEK_SET) == 0);
    const float huge[64] = {[0 ... 63] = 1e38f};
    REQUIRE(fwrite(huge, 4, 64, fp) == 64 && fclose(fp) == 0);
    const char *blowup[] = {"train", "huge.bin", "--tokenizer", TOKENIZER, "--train", "train.tsv", "--dev",
                            "dev.tsv", "--out", "blowup", "--max-steps", "2", "--checkpoint-every", "1",
                            "--no-progress", NULL};
    st = run_cli(NULL, blowup);
    err = test_read_file(tpath("err.txt"));
    CHECK_MSG(!exited_ok(st) && err && strstr(err, "not finite") && strstr(err, "step "),
              "overflowing lr: status %d, %s", st, S(err));
    printf("(e) overflowing learning rate: %s", err ? err : "\n");
    free(err);
    CHECK(access(tpath("blowup/final"), F_OK) != 0 && access(tpath("blowup/best"), F_OK) != 0 &&
          access(tpath("blowup/checkpoint"), F_OK) != 0);
    char *log = test_read_file(tpath("blowup/log.jsonl"));
    CHECK_MSG(log && !strstr(log, "nan") && !strstr(log, "inf"), "non-finite figures in the log: %s", S(log));
    free(log);
}

/* What a first look at this work found: each a way to lose or mix up a run. */
static void test_more_ways_to_lose_a_run(void) {
    char cmd[1024];
    /* --overwrite never removes a file inside best/ that training did not write */
    snprintf(cmd, sizeof cmd, "rm -rf %s/ow && cp -r %s/ref %s/ow", tmp, tmp, tmp);
    REQUIRE(system(cmd) == 0);
    test_write_file(tmp, "ow/best/dev.json", "{}\n");
    const char *overwrite[] = {TRAIN_ARGS("ow"), "--overwrite", NULL};
    int st = run_cli(NULL, overwrite);
    char *err = test_read_file(tpath("err.txt"));
    CHECK_MSG(!exited_ok(st) && err && strstr(err, "best") && strstr(err, "dev.json"),
              "--overwrite with a file in best/: status %d, %s", st, S(err));
    free(err);
    same_run("ref", "ow", "--overwrite refused over best/dev.json");
    REQUIRE(unlink(tpath("ow/best/dev.json")) == 0);
    /* a bad --dump-batches path fails before the earlier run is removed; an existing file is not replaced */
    const char *bad_dump[] = {TRAIN_ARGS("ow"), "--overwrite", "--dump-batches", "no/such/dir/b.txt", NULL};
    CHECK(!exited_ok(run_cli(NULL, bad_dump)));
    same_run("ref", "ow", "--overwrite with a bad --dump-batches");
    test_write_file(tmp, "batches.txt", "keep me\n");
    const char *dump_over[] = {TRAIN_ARGS("dumped"), "--dump-batches", "batches.txt", NULL};
    st = run_cli(NULL, dump_over);
    char *kept = test_read_file(tpath("batches.txt"));
    CHECK_MSG(!exited_ok(st) && kept && !strcmp(kept, "keep me\n"), "--dump-batches over a file: status %d", st);
    free(kept);
    /* a refused run leaves no lock file behind, and --out inside another run's folder is refused */
    CHECK(access(tpath("notes/lsllama.lock"), F_OK) != 0 && access(tpath("dumped"), F_OK) != 0);
    const char *nested[] = {TRAIN_ARGS("ref/best"), NULL};
    st = run_cli(NULL, nested);
    err = test_read_file(tpath("err.txt"));
    CHECK_MSG(!exited_ok(st) && err && strstr(err, "inside the training run folder"), "nested --out: %d, %s", st,
              S(err));
    free(err);
    CHECK(access(tpath("ref/best/lsllama.lock"), F_OK) != 0);
    /* a resume with other options, data or model continues no run: refused, naming what changed */
    snprintf(cmd, sizeof cmd, "rm -rf %s/rs && cp -r %s/ref %s/rs && sed 's/\t0$/\tX/; s/\t1$/\t0/; s/\tX$/\t1/' "
             "%s/train.tsv > %s/flipped.tsv", tmp, tmp, tmp, tmp, tmp);
    REQUIRE(system(cmd) == 0);
    const char *other_lr[] = {TRAIN_ARGS("rs"), "--resume", "--lr", "1e-3", NULL};
    const char *other_data[] = {TRAIN_ARGS("rs"), "--resume", "--train", "flipped.tsv", NULL};
    const char *other_steps[] = {TRAIN_ARGS("rs"), "--resume", "--max-steps", "8", NULL};
    const char *const *changed[] = {other_lr, other_data, other_steps};
    const char *named[] = {"lr", "train_data", "total_steps"};
    for (int i = 0; i < 3; i++) {
        st = run_cli(NULL, changed[i]);
        err = test_read_file(tpath("err.txt"));
        char want[64];
        snprintf(want, sizeof want, "run's %s was", named[i]);
        CHECK_MSG(!exited_ok(st) && err && strstr(err, want), "resume with another %s: status %d, %s", named[i], st,
                  S(err));
        if (!i) printf("(e) resume with another --lr: %s", err ? err : "\n");
        free(err);
    }
    same_run("ref", "rs", "refused resumes");
    /* a checkpoint that cannot be written (the disk is full) is an error that names the cause; no crash */
    child_fsize_limit = 400000; /* the all-linear state is 834 KB */
    const char *full[] = {TRAIN_ARGS("full"), NULL};
    st = run_cli(NULL, full);
    child_fsize_limit = 0;
    err = test_read_file(tpath("err.txt"));
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 1 && err && strstr(err, "File too large"),
              "checkpoint on a full disk: status %d, %s", st, S(err));
    free(err);
    /* plot never replaces a device, pipe or link named by --out */
    REQUIRE(mkfifo(tpath("fifo"), 0644) == 0);
    const char *plot[] = {"plot", "ref", "--y", "loss", "--out", "fifo", NULL};
    st = run_cli(NULL, plot);
    struct stat sb;
    CHECK_MSG(!exited_ok(st) && lstat(tpath("fifo"), &sb) == 0 && S_ISFIFO(sb.st_mode), "plot --out FIFO: %d", st);
    /* nothing non-finite is ever written into a safetensors file, nor a value F16 cannot hold */
    const float big = 1e5f, nan = NAN;
    ll_error e;
    ll_st_write_tensor t = {"score.weight", LL_DTYPE_F16, 1, {1}, &big, NULL, NULL};
    CHECK(ll_st_write_file(tpath("big.safetensors"), &t, 1, NULL, 0, &e) != 0 && strstr(e.message, "F16"));
    t = (ll_st_write_tensor){"score.weight", LL_DTYPE_F32, 1, {1}, &nan, NULL, NULL};
    CHECK(ll_st_write_file(tpath("nan.safetensors"), &t, 1, NULL, 0, &e) != 0 && strstr(e.message, "not finite"));
    CHECK(access(tpath("big.safetensors"), F_OK) != 0 && access(tpath("nan.safetensors"), F_OK) != 0);
    /* an adapter whose lora_alpha overflows a float is refused by name */
    snprintf(cmd, sizeof cmd, "rm -rf %s/alpha && cp -r %s/ref/best %s/alpha && sed -i 's/\"lora_alpha\": [0-9.]*/"
             "\"lora_alpha\": 1e39/' %s/alpha/adapter_config.json", tmp, tmp, tmp, tmp);
    REQUIRE(system(cmd) == 0);
    const char *eval[] = {"eval", MODEL_DIR "/stories260K.bin", "--tokenizer", TOKENIZER, "--adapter", "alpha",
                          "--data", "dev.tsv", NULL};
    st = run_cli(NULL, eval);
    err = test_read_file(tpath("err.txt"));
    CHECK_MSG(!exited_ok(st) && err && strstr(err, "lora_alpha"), "lora_alpha 1e39: status %d, %s", st, S(err));
    free(err);
}

int main(void) {
    REQUIRE(mkdtemp(tmp));
    /* many short runs: one thread each (results do not depend on the thread count; OpenMP's spinning threads
     * make tiny runs slow on a busy machine) */
    setenv("OMP_NUM_THREADS", "1", 1);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "head -41 %s/data/sst2/train.tsv > %s/train.tsv && head -17 %s/data/sst2/dev.tsv > %s/dev.tsv",
             LL_SHARED_DIR, tmp, LL_SHARED_DIR, tmp);
    REQUIRE(system(cmd) == 0);
    test_kills();
    test_bad_checkpoints();
    test_existing_out();
    test_second_writer();
    test_non_finite();
    test_more_ways_to_lose_a_run();
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    (void)system(cmd);
    return test_summary("test_run_safety");
}
