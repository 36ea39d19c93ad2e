/* Data safety through the CLI on the tiny stories260K model (issue 10): a
 * training set with one label is refused (it used to train with loss 0 and
 * report "best dev accuracy 1.0000"); a TSV row with more fields than the
 * header is refused by train as by eval (train used to make the stray field a
 * class), and skipped and reported with --skip-invalid; a NUL byte in a label
 * names file and line; --train DIR says it is a folder. */
#include <sys/stat.h>
#include <sys/wait.h>

#include "test_util.h"

#define MODEL LL_SHARED_DIR "/models/stories260K/stories260K.bin"
#define TOKENIZER LL_SHARED_DIR "/models/stories260K/tok512.bin"

static char tmp[] = "/tmp/lsllama_datasafety_XXXXXX";

/* Runs lsllama with args in tmp; returns the exit code (-1: signal), stderr in *err (malloc'd). */
static int run(const char *args, char **err) {
    char cmd[8192], errp[600];
    snprintf(errp, sizeof errp, "%s/stderr.txt", tmp);
    snprintf(cmd, sizeof cmd, "cd %s && %s %s > stdout.txt 2> %s", tmp, LL_CLI_PATH, args, errp);
    const int st = system(cmd);
    *err = test_read_file(errp);
    if (!*err) *err = calloc(1, 1);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void expect_fail(const char *label, const char *args, const char *n1, const char *n2) {
    char *err;
    const int code = run(args, &err);
    CHECK_MSG(code > 0, "%s: exit %d (want a non-zero exit, no signal)", label, code);
    CHECK_MSG((!n1 || strstr(err, n1)) && (!n2 || strstr(err, n2)), "%s: stderr lacks '%s'/'%s': %s", label,
              n1 ? n1 : "", n2 ? n2 : "", err);
    CHECK_MSG(!strstr(err, "best dev") && !strstr(err, "Sanitizer"), "%s: trained or crashed: %s", label, err);
    printf("%-36s -> %s", label, *err ? err : "(no message)\n");
    free(err);
}

static void write_file(const char *name, const char *bytes, size_t n) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", tmp, name);
    FILE *f = fopen(p, "wb");
    REQUIRE(f && fwrite(bytes, 1, n, f) == n);
    fclose(f);
}

int main(void) {
    REQUIRE(mkdtemp(tmp));
    char args[4096], buf[8192];
    const char *T = "train " MODEL " --tokenizer " TOKENIZER " --train %s --dev %s --out %s --max-steps 2 "
                    "--batch-tokens 256 --no-progress %s";
    /* fault 6: 50 rows, all labelled 1 */
    size_t k = (size_t)snprintf(buf, sizeof buf, "sentence\tlabel\n");
    for (int i = 0; i < 50; i++) k += (size_t)snprintf(buf + k, sizeof buf - k, "once upon a time %d\t1\n", i);
    write_file("one.tsv", buf, k);
    snprintf(args, sizeof args, T, "one.tsv", "one.tsv", "run_one", "");
    expect_fail("one label in the training data", args, "one.tsv", "'1'");
    /* token task: every tag O */
    const char *all_o = "Tom O\nran O\n\nLily O\nsang O\n";
    write_file("all_o.conll", all_o, strlen(all_o));
    snprintf(args, sizeof args, T, "all_o.conll", "all_o.conll", "run_o", "--task token");
    expect_fail("token task, every tag O", args, "all_o.conll", "'O'");

    /* fault 7: a stray tab in a row */
    const char *good = "sentence\tlabel\nthe cat was happy\t1\nthe dog was sad\t0\nlily smiled\t1\ntom cried\t0\n";
    const char *stray = "sentence\tlabel\nthe cat was happy\t1\nthe dog was\tsad\t0\nlily smiled\t1\ntom cried\t0\n";
    write_file("good.tsv", good, strlen(good));
    write_file("stray.tsv", stray, strlen(stray));
    snprintf(args, sizeof args, T, "stray.tsv", "good.tsv", "run_stray", "");
    expect_fail("train: a row with 3 fields", args, "stray.tsv:3:", "3 fields");
    snprintf(args, sizeof args, T, "good.tsv", "stray.tsv", "run_stray", "");
    expect_fail("train: a dev row with 3 fields", args, "stray.tsv:3:", "3 fields");
    /* --skip-invalid: skipped and reported, two classes */
    snprintf(args, sizeof args, T, "stray.tsv", "good.tsv", "run_skip", "--skip-invalid");
    char *err;
    int code = run(args, &err);
    CHECK_MSG(code == 0 && strstr(err, "1 invalid rows skipped") && strstr(err, "stray.tsv:3:"),
              "train --skip-invalid: exit %d, %s", code, err);
    free(err);
    char p[700];
    snprintf(p, sizeof p, "%s/run_skip/best/label_map.json", tmp);
    char *map = test_read_file(p);
    CHECK_MSG(map && strstr(map, "\"num_labels\": 2") && !strstr(map, "sad"), "label map of the --skip-invalid run: %s",
              map ? map : "(none)");
    free(map);
    /* eval applies the same rule (and says the same) */
    snprintf(args, sizeof args, "eval " MODEL " --tokenizer " TOKENIZER " --adapter run_skip/best --data stray.tsv");
    expect_fail("eval: a row with 3 fields", args, "stray.tsv:3:", "3 fields");

    /* fault 8: a NUL byte inside a label */
    static const char nul[] = "sentence\tlabel\nthe cat was happy\t1\nthe dog was sad\t1\0x\ntom cried\t0\n";
    write_file("nul.tsv", nul, sizeof nul - 1);
    snprintf(args, sizeof args, T, "nul.tsv", "good.tsv", "run_nul", "");
    expect_fail("train: NUL byte in a label", args, "nul.tsv:3:", "NUL");
    /* --train DIR */
    snprintf(p, sizeof p, "%s/data_dir", tmp);
    REQUIRE(mkdir(p, 0700) == 0);
    snprintf(args, sizeof args, T, "data_dir", "good.tsv", "run_dir", "");
    expect_fail("train: --train is a folder", args, "data_dir", "is a folder");
    snprintf(args, sizeof args, T, "no_such.tsv", "good.tsv", "run_dir", "");
    expect_fail("train: --train missing", args, "no_such.tsv", "No such file");

    snprintf(buf, sizeof buf, "rm -rf %s", tmp);
    (void)system(buf);
    return test_summary("test_data_safety_cli");
}
