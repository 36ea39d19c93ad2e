/* The command line under faults and bad values, on the tiny stories260K
 * model (llama2.c checkpoint + tok512; seconds even under ASan):
 *
 * 1. Write errors: predict, eval (table and --json), embed, inspect,
 *    tokenize (and --decode), generate, train's summary and --help with
 *    standard output on /dev/full exit non-zero with one message naming
 *    standard output and the reason; predict into a file size limit (a nearly
 *    full disk: `ulimit -f`, SIGXFSZ ignored) stops with "File too large"
 *    instead of exiting 0 with a cut file.
 * 2. nan/inf never reach the output: a copy of the model whose embeddings are
 *    NaN makes predict, eval --json, embed and generate fail with a message
 *    about non-finite values (or the loader's refusal of NaN weights), and
 *    nothing nan/inf on standard output.
 * 3. Option values: --lora-targets longer than 255 characters is read whole
 *    (a valid tail is trained, a bad tail is an error naming it); generate
 *    --steps and --max-length beyond the model's 512-token context, and
 *    --bidirectional-from beyond its 5 layers, are errors naming the option
 *    and the bound; out-of-range floats; bad ids for tokenize --decode and
 *    generate --ids name the line or option; embed lines longer than the
 *    context; plot labels too long to keep whole.
 * 4. Messages: train without --dev names only the adapter that exists;
 *    embed --input names the option of a missing file; a read error on
 *    standard input (a folder) is an error naming it, not an empty result.
 *    An option given last without its value is named as such.
 * 5. Progress: eval and predict draw a progress line on stderr when it is a
 *    terminal (a pseudo-terminal here), none with --no-progress, none when
 *    stderr is a file.
 * Write errors, nan and progress are checked for a token (NER) adapter too. */
#define _GNU_SOURCE /* posix_openpt, ptsname */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

#define MODEL_DIR LL_SHARED_DIR "/models/stories260K"
#define TOK "--tokenizer " MODEL_DIR "/tok512.bin"
#define MODEL MODEL_DIR "/stories260K.bin " TOK
#define NAN_MODEL "nan.bin " TOK

static char tmp[] = "/tmp/lsllama_cli_output_XXXXXX";

/* ---- files and processes ------------------------------------------------------- */

static char *slurp(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    char *s = test_read_file(path);
    return s ? s : strdup("");
}

static int exists(const char *name) {
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    return stat(path, &st) == 0;
}

static int status_code(int st) { return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1; }

/* Runs `lsllama ARGS` in tmp with stdin from `in` (a file in tmp, or
 * /dev/null), stdout to `out` (a file in tmp or /dev/full) and stderr in
 * err.txt; returns the exit status (-1: a signal). `prefix` runs before it in
 * the same shell (e.g. a ulimit). */
static int run_cli(const char *prefix, const char *in, const char *out, const char *fmt, ...) {
    char args[8192], cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd %s && %s %s %s < %s > %s 2> err.txt", tmp, prefix ? prefix : "", LL_CLI_PATH, args,
             in ? in : "/dev/null", out);
    printf("$ lsllama %.200s%s > %s\n", args, strlen(args) > 200 ? "..." : "", out);
    fflush(stdout);
    const int code = status_code(system(cmd));
    char *err = slurp("err.txt");
    CHECK_MSG(!strstr(err, "Sanitizer") && !strstr(err, "runtime error"), "sanitizer report: %s", err);
    free(err);
    return code;
}
#define cli(...) run_cli(NULL, NULL, "out.txt", __VA_ARGS__)
#define cli_in(in, ...) run_cli(NULL, in, "out.txt", __VA_ARGS__)

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

static int icontains(const char *hay, const char *needle) {
    for (const char *h = hay; *h; h++) {
        size_t i = 0;
        while (needle[i] && h[i] && tolower((unsigned char)h[i]) == tolower((unsigned char)needle[i])) i++;
        if (!needle[i]) return 1;
    }
    return 0;
}

/* "nan" or "inf" as a word of its own (a number printed by printf), not
 * inside another word ("infinite"). */
static int has_nonfinite_word(const char *s) {
    for (const char *p = s; *p; p++) {
        if (strncasecmp(p, "nan", 3) && strncasecmp(p, "inf", 3)) continue;
        const int before = p > s && isalpha((unsigned char)p[-1]), after = isalpha((unsigned char)p[3]) &&
                                                                               strncasecmp(p, "infinity", 8);
        if (!before && !after) return 1;
    }
    return 0;
}

/* The last command's stderr. */
static char *err_text(void) { return slurp("err.txt"); }

static void write_text(const char *name, const char *text) { test_write_file(tmp, name, text); }

/* The first n data rows of a shared SST-2 split (with its header). */
static void copy_rows(const char *split, const char *name, int n) {
    char src[1024];
    snprintf(src, sizeof src, "%s/data/sst2/%s", LL_SHARED_DIR, split);
    char *all = test_read_file(src);
    REQUIRE(all);
    char *p = all;
    for (int i = 0; i <= n && p; i++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    if (p) *p = 0;
    write_text(name, all);
    free(all);
}

/* ---- 1. write errors ------------------------------------------------------------ */

/* One command with standard output on /dev/full: a non-zero exit, exactly one
 * message, naming standard output and the reason. */
static void full_case(const char *label, const char *in, const char *args) {
    const int rc = run_cli(NULL, in, "/dev/full", "%s", args);
    char *e = err_text();
    const char *msg = strstr(e, "error writing standard output: ");
    CHECK_MSG(rc > 0 && rc < 128, "%s: exit %d on /dev/full, want an error", label, rc);
    CHECK_MSG(msg && contains(msg, strerror(ENOSPC)), "%s: stderr '%s' names no write error", label, e);
    CHECK_MSG(!msg || !strstr(msg + 1, "error writing"), "%s: the write error is reported more than once: %s", label, e);
    free(e);
}

static void test_write_errors(void) {
    if (access("/dev/full", W_OK) != 0) {
        printf("no /dev/full: write-error cases skipped\n");
        return;
    }
    full_case("predict", NULL, "predict " MODEL " --adapter run/final --input in.txt");
    full_case("predict stdin", "in.txt", "predict " MODEL " --adapter run/final");
    full_case("eval --json", NULL, "eval " MODEL " --adapter run/final --data dev.tsv --json");
    full_case("eval table", NULL, "eval " MODEL " --adapter run/final --data dev.tsv");
    full_case("embed", "ids.txt", "embed " MODEL_DIR "/stories260K.bin");
    full_case("embed --text", "in.txt", "embed " MODEL " --text");
    full_case("inspect", NULL, "inspect " MODEL_DIR "/stories260K.bin");
    full_case("tokenize", "in.txt", "tokenize " MODEL_DIR "/tok512.bin");
    full_case("tokenize --decode", "ids.txt", "tokenize " MODEL_DIR "/tok512.bin --decode");
    full_case("tokenize --info", NULL, "tokenize " MODEL_DIR "/tok512.bin --info");
    full_case("predict (token adapter)", NULL, "predict " MODEL " --adapter ner/final --input ner_in.txt");
    full_case("eval --json (token adapter)", NULL, "eval " MODEL " --adapter ner/final --data ner.txt --json");
    full_case("generate", NULL, "generate " MODEL_DIR "/stories260K.bin --ids 1 --steps 4");
    full_case("train summary", NULL,
              "train " MODEL " --train train.tsv --out run_full --max-steps 1 --batch-tokens 256 --no-progress");
    full_case("help", NULL, "--help");
    full_case("eval --help", NULL, "eval --help");

    /* A nearly full disk: a 4 KiB file size limit. predict must stop with an
     * error (not exit 0 with a cut file), the file holds only whole lines
     * written before the failure, and there is exactly one message. */
    const int rc = run_cli("ulimit -f 4 && trap '' XFSZ &&", NULL, "limited.txt", "predict " MODEL
                           " --adapter run/final --input big.txt --batch-tokens 256");
    char *e = err_text(), *out = slurp("limited.txt");
    CHECK_MSG(rc > 0 && rc < 128, "predict over a file size limit: exit %d, want an error", rc);
    CHECK_MSG(contains(e, "error writing standard output") && contains(e, strerror(EFBIG)),
              "predict over a file size limit: stderr '%s'", e);
    CHECK_MSG(strlen(out) <= 4096, "the limit did not apply (%zu bytes)", strlen(out));
    CHECK_MSG(strlen(out) > 0, "predict wrote nothing before the limit");
    free(e), free(out);
}

/* ---- 2. nan / inf --------------------------------------------------------------- */

/* stories260K with a NaN final-norm weight. llama2.c layout after the 7
 * int32 header (dim, hidden, layers, heads, kv heads, vocab, seq_len), all
 * f32: embeddings [vocab, dim], per layer-stacked rms_att [L, dim], wq, wk,
 * wv, wo, rms_ffn [L, dim], w1, w2, w3, then rms_final [dim]. The final norm
 * makes every hidden state, pooled vector and logit NaN without passing NaN
 * through the kernels' fast exp (attention softmax, SiLU), whose float->int
 * conversion of NaN UBSan reports (see the report of issue 10). */
static void write_nan_model(void) {
    char *src = NULL;
    FILE *f = fopen(MODEL_DIR "/stories260K.bin", "rb");
    REQUIRE(f);
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    src = malloc((size_t)n);
    REQUIRE(src && fread(src, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    int32_t h[7];
    memcpy(h, src, sizeof h);
    const long dim = h[0], hidden = h[1], L = h[2], heads = h[3], kv = h[4], vocab = h[5] < 0 ? -h[5] : h[5];
    const long kv_dim = dim / heads * kv;
    const long rms_final = vocab * dim + L * (dim + dim * dim + 2 * dim * kv_dim + dim * dim + dim + 3 * dim * hidden);
    REQUIRE(28 + 4 * (rms_final + dim) <= n);
    const float nan = NAN;
    for (long i = 0; i < dim; i++) memcpy(src + 28 + 4 * (rms_final + i), &nan, 4);
    char path[1024];
    snprintf(path, sizeof path, "%s/nan.bin", tmp);
    f = fopen(path, "wb");
    REQUIRE(f && fwrite(src, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    free(src);
}

static void nan_case(const char *label, const char *in, const char *args) {
    const int rc = cli_in(in, "%s", args);
    char *e = err_text(), *out = slurp("out.txt");
    CHECK_MSG(rc > 0 && rc < 128, "%s: exit %d with NaN weights, want an error", label, rc);
    CHECK_MSG(!has_nonfinite_word(out), "%s: nan/inf in the output: %.300s", label, out);
    CHECK_MSG(icontains(e, "non-finite") || icontains(e, "nan"), "%s: stderr '%s' does not say non-finite / NaN",
              label, e);
    free(e), free(out);
}

static void test_nonfinite(void) {
    write_nan_model();
    nan_case("predict", NULL, "predict " NAN_MODEL " --adapter run/final --input in.txt");
    nan_case("eval --json", NULL, "eval " NAN_MODEL " --adapter run/final --data dev.tsv --json");
    nan_case("eval", NULL, "eval " NAN_MODEL " --adapter run/final --data dev.tsv");
    nan_case("predict (token adapter)", NULL, "predict " NAN_MODEL " --adapter ner/final --input ner_in.txt");
    nan_case("eval --json (token adapter)", NULL, "eval " NAN_MODEL " --adapter ner/final --data ner.txt --json");
    nan_case("embed", "ids.txt", "embed nan.bin");
    nan_case("generate", NULL, "generate nan.bin --ids 1 --steps 3");
    /* the message names the input line of the first example */
    cli("predict " NAN_MODEL " --adapter run/final --input in.txt");
    char *e = err_text();
    CHECK_MSG(contains(e, "in.txt:1") || icontains(e, "nan.bin"), "predict: no line or file named: %s", e);
    free(e);
}

/* ---- 3. option values ----------------------------------------------------------- */

/* The last command failed with a usage error (exit 2, or 1) whose message has every needle. */
static void expect_error(const char *label, int rc, const char *n1, const char *n2) {
    char *e = err_text();
    CHECK_MSG(rc > 0 && rc < 128 && (!n1 || contains(e, n1)) && (!n2 || contains(e, n2)),
              "%s: exit %d, stderr '%s', want '%s' '%s'", label, rc, e, n1 ? n1 : "", n2 ? n2 : "");
    free(e);
}

static void test_options(void) {
    /* --lora-targets longer than 255 characters: read whole */
    char targets[1024] = "", args[4096];
    for (int i = 0; i < 130; i++) strcat(targets, "q,");
    REQUIRE(strlen(targets) > 255);
    snprintf(args, sizeof args, "train " MODEL " --train train.tsv --out run_long --max-steps 1 --batch-tokens 256 "
                                "--no-progress --lora-targets %sv", targets);
    CHECK_MSG(cli("%s", args) == 0, "long valid --lora-targets refused");
    char *cfg = slurp("run_long/final/adapter_config.json");
    CHECK_MSG(contains(cfg, "\"v_proj\"") && contains(cfg, "\"q_proj\""),
              "the tail of a long --lora-targets was dropped: %s", cfg);
    free(cfg);
    snprintf(args, sizeof args, "train " MODEL " --train train.tsv --out run_bad --max-steps 1 --batch-tokens 256 "
                                "--no-progress --lora-targets %sbogus", targets);
    expect_error("long --lora-targets with a bad tail", cli("%s", args), "--lora-targets", "'bogus'");
    CHECK(!exists("run_bad/final"));
    expect_error("--lora-targets empty item",
                 cli("train " MODEL " --train train.tsv --out run_bad --max-steps 1 --lora-targets q,,v"),
                 "--lora-targets", "empty");

    /* loops and lengths bounded by the model (context 512, 5 layers) */
    /* (the old code ran on past the context for minutes: a time limit keeps a regression from hanging) */
    expect_error("generate --steps beyond the context",
                 run_cli("timeout 120", NULL, "out.txt", "generate " MODEL_DIR "/stories260K.bin --ids 1 --steps 600"),
                 "--steps 600", "context length 512");
    CHECK_MSG(cli("generate " MODEL_DIR "/stories260K.bin --ids 1 --steps 8") == 0, "generate --steps 8 failed");
    expect_error("generate --ids outside the vocabulary", cli("generate " MODEL_DIR "/stories260K.bin --ids '1 600'"),
                 "--ids", "600");
    expect_error("train --max-length beyond the context",
                 cli("train " MODEL " --train train.tsv --out run_bad --max-steps 1 --max-length 100000"),
                 "--max-length", "512");
    expect_error("eval --max-length beyond the context",
                 cli("eval " MODEL " --adapter run/final --data dev.tsv --max-length 4096"), "--max-length", "512");
    expect_error("predict --max-length beyond the context",
                 cli("predict " MODEL " --adapter run/final --input in.txt --max-length 4096"), "--max-length", "512");
    expect_error("train --bidirectional-from beyond the layers",
                 cli("train " MODEL " --train train.tsv --out run_bad --max-steps 1 --bidirectional-from 9"),
                 "--bidirectional-from", "5 layers");
    CHECK(!exists("run_bad"));

    /* numbers: finite and in range, the option named */
    const char *bad_floats[][2] = {{"--lr", "0"},           {"--lr", "nan"},         {"--lr", "1e999"},
                                   {"--lora-dropout", "1"}, {"--lora-dropout", "-0.1"}, {"--warmup-ratio", "1.5"},
                                   {"--weight-decay", "inf"}, {"--max-grad-norm", "-1"}, {"--lora-alpha", "0"},
                                   {"--lr", "1e-3x"},       {"--epochs", "0"},       {"--max-steps", "9999999999999999999"},
                                   {"--lora-dropout", "0.99999999999"}}; /* rounds to 1.0f */
    for (size_t i = 0; i < sizeof bad_floats / sizeof bad_floats[0]; i++) {
        char label[128];
        snprintf(label, sizeof label, "train %s %s", bad_floats[i][0], bad_floats[i][1]);
        expect_error(label, cli("train " MODEL " --train train.tsv --out run_bad --max-steps 1 %s '%s'",
                                bad_floats[i][0], bad_floats[i][1]),
                     bad_floats[i][0], bad_floats[i][1]);
    }

    /* the bounds the messages state are accepted, written as they are printed (1e-12 is below its own float) */
    const char *edge_floats[][2] = {{"--lr", "1e-12"}, {"--lr", "10"}, {"--lora-alpha", "1e-06"},
                                    {"--lora-dropout", "0"}, {"--warmup-ratio", "1"}, {"--max-grad-norm", "0"}};
    for (size_t i = 0; i < sizeof edge_floats / sizeof edge_floats[0]; i++)
        CHECK_MSG(cli("train " MODEL " --train train.tsv --out run_edge%zu --max-steps 1 --no-progress %s %s", i,
                      edge_floats[i][0], edge_floats[i][1]) == 0,
                  "train %s %s (the stated bound) refused", edge_floats[i][0], edge_floats[i][1]);

    /* ids read by tokenize --decode: every one an integer in the vocabulary, errors name the line */
    write_text("bad_ids.txt", "1 2 3\n4 x 5\n");
    expect_error("tokenize --decode non-integer", cli_in("bad_ids.txt", "tokenize " MODEL_DIR "/tok512.bin --decode"),
                 "<stdin>:2", "'x'");
    write_text("bad_ids.txt", "1 2\n3 99999\n");
    expect_error("tokenize --decode id outside the vocabulary",
                 cli_in("bad_ids.txt", "tokenize " MODEL_DIR "/tok512.bin --decode"), "<stdin>:2", "99999");

    /* embed: a line longer than the context */
    {
        FILE *f;
        char path[1024];
        snprintf(path, sizeof path, "%s/long_ids.txt", tmp);
        REQUIRE((f = fopen(path, "w")));
        fputs("1 2 3\n", f);
        for (int i = 0; i < 600; i++) fprintf(f, "%s%d", i ? " " : "", 1 + i % 500);
        fputs("\n", f);
        fclose(f);
        expect_error("embed line beyond the context", cli_in("long_ids.txt", "embed " MODEL_DIR "/stories260K.bin"),
                     "<stdin>:2", "512");
    }

    /* plot: a label too long to keep whole */
    char label[400];
    memset(label, 'L', sizeof label - 1);
    label[sizeof label - 1] = 0;
    expect_error("plot label too long", cli("plot run=%s --y loss --out p.svg", label), "label", NULL);
    CHECK(!exists("p.svg"));
    CHECK_MSG(cli("plot run=short --y loss --out p.svg") == 0 && exists("p.svg"), "plot with a short label failed");
}

/* ---- 4. messages ------------------------------------------------------------------ */

static void test_messages(void) {
    /* train without --dev: the summary names only run/final (run/best does not exist) */
    char *out = slurp("train_nodev.out");
    CHECK_MSG(!exists("run/best"), "run/best exists without --dev?");
    CHECK_MSG(contains(out, "run/final") && !contains(out, "run/best") && !contains(out, "-1"),
              "summary without --dev: '%s'", out);
    free(out);
    out = slurp("train_dev.out");
    CHECK_MSG(exists("run_dev/best") && contains(out, "run_dev/best") && contains(out, "run_dev/final") &&
                  !contains(out, "step -1"),
              "summary with --dev: '%s'", out);
    free(out);
    /* an option given last without its value is named as such */
    expect_error("train --lr without a value", cli("train " MODEL " --train train.tsv --out run_bad --lr"), "--lr",
                 "needs a value");
    expect_error("eval --data without a value", cli("eval " MODEL " --adapter run/final --data"), "--data",
                 "needs a value");
    expect_error("generate --steps without a value", cli("generate " MODEL_DIR "/stories260K.bin --ids 1 --steps"),
                 "--steps", "needs a value");
    /* a read error on the input (standard input a folder) is an error, not an empty result */
    expect_error("tokenize reading a folder", cli_in(".", "tokenize " MODEL_DIR "/tok512.bin"), "reading standard input",
                 strerror(EISDIR));
    expect_error("tokenize --decode reading a folder", cli_in(".", "tokenize " MODEL_DIR "/tok512.bin --decode"),
                 "reading standard input", strerror(EISDIR));
    expect_error("predict reading a folder", cli_in(".", "predict " MODEL " --adapter run/final"),
                 "reading standard input", strerror(EISDIR));
    expect_error("embed reading a folder", cli_in(".", "embed " MODEL_DIR "/stories260K.bin"), "<stdin>",
                 strerror(EISDIR));
    expect_error("embed --input missing", cli("embed " MODEL_DIR "/stories260K.bin --input nonexistent.txt"), "--input",
                 "nonexistent.txt");
}

/* ---- 5. progress ------------------------------------------------------------------ */

/* Runs `lsllama ARGS` with stderr on a pseudo-terminal (stdout to
 * out.txt); returns the exit status and what the terminal received. */
static int cli_tty(char **tty_text, const char *args) {
    *tty_text = strdup("");
    const int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) || unlockpt(master)) return -2;
    const char *name = ptsname(master);
    const int slave = name ? open(name, O_RDWR | O_NOCTTY) : -1;
    if (slave < 0) return -2;
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd %s && exec %s %s < /dev/null > out.txt", tmp, LL_CLI_PATH, args);
    printf("$ lsllama %s 2> (terminal)\n", args);
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(slave, 2);
        close(master), close(slave);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(slave);
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    for (;;) { /* read until the child's end closes the terminal (EIO) */
        if (len + 4096 > cap) buf = realloc(buf, cap *= 2);
        const ssize_t r = read(master, buf + len, 4096);
        if (r > 0) len += (size_t)r;
        else if (r < 0 && errno == EINTR) continue;
        else break;
    }
    buf[len] = 0;
    close(master);
    int st;
    waitpid(pid, &st, 0);
    free(*tty_text);
    *tty_text = buf;
    return status_code(st);
}

static void test_progress(void) {
    char *t;
    int rc = cli_tty(&t, "eval " MODEL " --adapter run/final --data dev.tsv");
    if (rc == -2) {
        printf("no pseudo-terminal: progress cases skipped\n");
        free(t);
        return;
    }
    CHECK_MSG(rc == 0 && contains(t, "eval: 20/20 examples"), "eval on a terminal: exit %d, terminal '%s'", rc, t);
    free(t);
    rc = cli_tty(&t, "eval " MODEL " --adapter run/final --data dev.tsv --no-progress");
    CHECK_MSG(rc == 0 && !contains(t, "20/20"), "eval --no-progress on a terminal: exit %d, terminal '%s'", rc, t);
    free(t);
    rc = cli_tty(&t, "eval " MODEL " --adapter ner/final --data ner.txt");
    CHECK_MSG(rc == 0 && contains(t, "eval: 30/30 windows"), "token eval on a terminal: exit %d, terminal '%s'", rc, t);
    free(t);
    rc = cli_tty(&t, "predict " MODEL " --adapter run/final --input in.txt");
    CHECK_MSG(rc == 0 && contains(t, "predict: 20/20 examples"), "predict on a terminal: exit %d, terminal '%s'", rc, t);
    free(t);
    rc = cli_tty(&t, "predict " MODEL " --adapter run/final --input in.txt --no-progress");
    CHECK_MSG(rc == 0 && !contains(t, "20/20"), "predict --no-progress: exit %d, terminal '%s'", rc, t);
    free(t);
    char *out = slurp("out.txt");
    int lines = 0;
    for (const char *p = out; (p = strchr(p, '\n')); p++) lines++;
    CHECK_MSG(lines == 20, "predict wrote %d lines for 20 inputs", lines);
    free(out);
    /* stderr a file: no progress line */
    CHECK(cli("eval " MODEL " --adapter run/final --data dev.tsv") == 0);
    char *e = err_text();
    CHECK_MSG(!contains(e, "20/20") && !contains(e, "\r"), "progress written to a file: '%s'", e);
    free(e);
    /* train: on a terminal the step line, rewritten in place; to a file only the dev lines, no carriage return */
    const char *train = "train " MODEL " --train train.tsv --dev dev.tsv --out %s --max-steps 2 --eval-every 1 "
                        "--batch-tokens 256";
    char args[1024];
    snprintf(args, sizeof args, train, "run_tty");
    rc = cli_tty(&t, args);
    CHECK_MSG(rc == 0 && contains(t, "\rstep 2/2") && contains(t, "dev @2"), "train on a terminal: exit %d, '%s'", rc,
              t);
    free(t);
    snprintf(args, sizeof args, train, "run_file");
    CHECK(cli("%s", args) == 0);
    e = err_text();
    CHECK_MSG(contains(e, "  dev @1: loss") && contains(e, "  dev @2: loss") && !contains(e, "\r") &&
                  !contains(e, "step 2/2") && !contains(e, "\n\n"),
              "train progress written to a file: '%s'", e);
    free(e);
}

int main(void) {
    REQUIRE(mkdtemp(tmp));
    copy_rows("train.tsv", "train.tsv", 40);
    copy_rows("dev.tsv", "dev.tsv", 20);
    { /* in.txt: the dev sentences; big.txt: 400 lines; ids.txt: token ids */
        char *dev = slurp("dev.tsv"), *p = strchr(dev, '\n') + 1;
        char path[1024];
        snprintf(path, sizeof path, "%s/in.txt", tmp);
        FILE *in = fopen(path, "w");
        snprintf(path, sizeof path, "%s/big.txt", tmp);
        FILE *big = fopen(path, "w");
        REQUIRE(in && big);
        for (char *line = strtok(p, "\n"); line; line = strtok(NULL, "\n")) {
            fprintf(in, "%.*s\n", (int)strcspn(line, "\t"), line);
            for (int k = 0; k < 20; k++) fprintf(big, "%.*s\n", (int)strcspn(line, "\t"), line);
        }
        fclose(in), fclose(big);
        free(dev);
        write_text("ids.txt", "1 2 3\n4 5 6 7\n8\n");
    }
    { /* a token task: 30 CoNLL sentences, and their words as text lines */
        char path[1024];
        snprintf(path, sizeof path, "%s/ner.txt", tmp);
        FILE *c = fopen(path, "w");
        snprintf(path, sizeof path, "%s/ner_in.txt", tmp);
        FILE *t = fopen(path, "w");
        REQUIRE(c && t);
        static const char *per[] = {"Tom", "Anna", "Bob"}, *loc[] = {"Paris", "London", "Berlin", "Rome", "Oslo"};
        for (int i = 0; i < 30; i++) {
            fprintf(c, "%s B-PER\nvisited O\n%s B-LOC\n. O\n\n", per[i % 3], loc[i % 5]);
            fprintf(t, "%s visited %s .\n", per[i % 3], loc[i % 5]);
        }
        fclose(c), fclose(t);
    }
    REQUIRE(cli("train " MODEL " --task token --train ner.txt --out ner --max-steps 1 --batch-tokens 256 "
                "--no-progress") == 0);
    REQUIRE(cli("train " MODEL " --train train.tsv --out run --max-steps 2 --batch-tokens 256 --no-progress") == 0);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp %s/out.txt %s/train_nodev.out", tmp, tmp);
    REQUIRE(system(cmd) == 0);
    REQUIRE(cli("train " MODEL " --train train.tsv --dev dev.tsv --out run_dev --max-steps 2 --batch-tokens 256 "
                "--no-progress") == 0);
    snprintf(cmd, sizeof cmd, "cp %s/out.txt %s/train_dev.out", tmp, tmp);
    REQUIRE(system(cmd) == 0);

    test_write_errors();
    test_nonfinite();
    test_options();
    test_messages();
    test_progress();

    const int rc = test_summary("test_cli_output");
    if (!rc) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
        if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp);
    }
    return rc;
}
