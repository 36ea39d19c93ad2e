/* Token classification (NER) through the command line, on the tiny
 * stories260K model (llama2.c checkpoint + tok512, seconds even under ASan):
 *
 * 1. `train --task token` on CoNLL written here (-DOCSTART- markers,
 *    whitespace-only separator lines, no trailing blank line): the log's dev
 *    evaluations, best/ and final/ TOKEN_CLS adapters with their label map,
 *    `eval --json` on the dev file reproducing the log line of the best step,
 *    `predict` on raw text lines (non-ASCII: offsets are code points) and on a
 *    JSONL words file (one object per sentence, a tag per word, every entity's
 *    text, offsets, type and score consistent with the words and tags); a run
 *    at --max-length 8, where sentences become overlapping windows, still
 *    predicts every word.
 * 2. N steps straight and N/2 + stop + --resume give byte-identical adapters
 *    and the same log (timings aside).
 * 3. --head-only adapters (r 0, no target modules) of a sequence and a token
 *    task load back in eval and predict.
 * 4. Bad input: a message naming file and line, a non-zero exit, and the
 *    adapters, checkpoint and log already in --out byte-identical; a word
 *    that encodes to no token (a JSONL token "") is predicted O; usage errors
 *    for --metric accuracy and --multi-label with --task token. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

#define MODEL_DIR LL_SHARED_DIR "/models/stories260K"
#define MODEL MODEL_DIR "/stories260K.bin --tokenizer " MODEL_DIR "/tok512.bin"

static char tmp[] = "/tmp/lsllama_tokcli_XXXXXX";

/* ---- files and processes ------------------------------------------------------- */

static char *slurp(const char *name, long *n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc((size_t)len + 1, 1);
    if (fread(s, 1, (size_t)len, f) != (size_t)len) len = -1;
    fclose(f);
    if (n) *n = len;
    return s;
}

static int exists(const char *name) {
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    return stat(path, &st) == 0;
}

/* Runs `lsllama ARGS` in tmp with stdout in out.txt and stderr in err.txt;
 * the exit status, -1 if it did not exit (a signal). */
static int cli(const char *fmt, ...) {
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd %s && %s %s > out.txt 2> err.txt", tmp, LL_CLI_PATH, args);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const int st = system(cmd);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("$ lsllama %s  (%.2f s)\n", args, (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    fflush(stdout);
    const int code = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    char *err = slurp("err.txt", NULL);
    CHECK_MSG(err && !strstr(err, "Sanitizer") && !strstr(err, "runtime error"), "sanitizer report: %s",
              err ? err : "");
    if (code != 0 && err) fputs(err, stdout);
    free(err);
    return code;
}

/* A JSON Lines file (a run's out.txt, a log.jsonl) as JSON objects. */
static cJSON **read_jsonl(const char *name, int *n) {
    char *text = slurp(name, NULL);
    REQUIRE(text);
    cJSON **v = NULL;
    *n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        CHECK_MSG(j != NULL, "%s: not JSON: %s", name, line);
        if (!j) continue;
        v = realloc(v, (size_t)(*n + 1) * sizeof *v);
        v[(*n)++] = j;
    }
    free(text);
    return v;
}

static void free_jsonl(cJSON **v, int n) {
    for (int i = 0; i < n; i++) cJSON_Delete(v[i]);
    free(v);
}

static double num(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    CHECK_MSG(cJSON_IsNumber(x), "missing number '%s'", key);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* ---- the data ------------------------------------------------------------------- */

static const char *PER[] = {"Tom", "Mary Smith", "Anna", "Bob Stone", "Lily"};
static const char *LOC[] = {"Paris", "New York", "London", "Zürich", "Berlin", "Sankt Gallen"};
static const char *ORG[] = {"Acme Corp", "Globex", "Initech Inc"};

/* Appends the words of NAME tagged B-/I-TYPE as CoNLL lines (word POS chunk tag). */
static void put_entity(FILE *f, const char *name, const char *type, int *n_words) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", name);
    int first = 1;
    for (char *w = strtok(buf, " "); w; w = strtok(NULL, " "), first = 0, (*n_words)++)
        fprintf(f, "%s NNP I-NP %s-%s\n", w, first ? "B" : "I", type);
}

static void put_words(FILE *f, const char *words, int *n_words) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", words);
    for (char *w = strtok(buf, " "); w; w = strtok(NULL, " "), (*n_words)++) fprintf(f, "%s XX O O\n", w);
}

/* n sentences from five templates; separators: an empty line or whitespace
 * only; -DOCSTART- at the start and every 10 sentences; the last sentence
 * ends with its word line (no blank line after it; no newline either if
 * no_final_newline). Returns the number of words. */
static int write_conll(const char *name, int n, int offset, int no_final_newline) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    static const char *seps[] = {"\n", " \n", "\t\n", "  \t \n", "\r\n"};
    int n_words = 0;
    for (int i = 0; i < n; i++) {
        if (i % 10 == 0) fprintf(f, "-DOCSTART- -X- -X- O\n%s", seps[i / 10 % 5]);
        const int k = i + offset;
        const char *p = PER[k % 5], *l = LOC[k % 6], *o = ORG[k % 3];
        switch (k % 5) {
        case 0: put_entity(f, p, "PER", &n_words), put_words(f, "went to", &n_words), put_entity(f, l, "LOC", &n_words);
            put_words(f, ".", &n_words);
            break;
        case 1: put_entity(f, p, "PER", &n_words), put_words(f, "works for", &n_words), put_entity(f, o, "ORG", &n_words);
            put_words(f, "in", &n_words), put_entity(f, l, "LOC", &n_words);
            break;
        case 2: put_words(f, "the cat sat on the mat", &n_words);
            break;
        case 3: put_entity(f, o, "ORG", &n_words), put_words(f, "hired", &n_words), put_entity(f, p, "PER", &n_words);
            break;
        default: put_entity(f, p, "PER", &n_words), put_words(f, "likes", &n_words), put_entity(f, l, "LOC", &n_words);
        }
        if (i + 1 < n) fputs(seps[i % 5], f);
    }
    fclose(f);
    struct stat st;
    if (no_final_newline) REQUIRE(stat(path, &st) == 0 && truncate(path, st.st_size - 1) == 0);
    return n_words;
}

/* ---- checks on predictions ------------------------------------------------------ */

/* Byte offset of code point cp in s (s's length if past its end). */
static size_t cp_to_byte(const char *s, int cp) {
    size_t b = 0;
    for (int i = 0; i < cp && s[b]; i++) {
        b++;
        while ((s[b] & 0xC0) == 0x80) b++;
    }
    return b;
}

static int is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* The words of text split on ASCII whitespace, with code-point spans. */
typedef struct words {
    int n;
    char *w[256];
    int start[256], end[256];
} words;

static void split_words(const char *text, words *ws) {
    ws->n = 0;
    int cp = 0;
    for (size_t b = 0; text[b] && ws->n < 256;) {
        if (is_ascii_space(text[b])) {
            b++, cp++;
            continue;
        }
        const size_t b0 = b;
        ws->start[ws->n] = cp;
        while (text[b] && !is_ascii_space(text[b])) {
            if ((text[b] & 0xC0) != 0x80) cp++;
            b++;
        }
        ws->end[ws->n] = cp;
        ws->w[ws->n] = strndup(text + b0, b - b0);
        ws->n++;
    }
}

static void free_words(words *ws) {
    for (int i = 0; i < ws->n; i++) free(ws->w[i]);
    ws->n = 0;
}

static const char *tag_type(const char *tag) { return tag[0] && tag[1] == '-' ? tag + 2 : ""; }

/* One predict output object against the text and words it should hold
 * (the words' code-point spans in text): tags per word, entities consistent
 * with the tags and the text. labels: the adapter's tags ("," around each).
 * Returns the number of entities. */
static int check_prediction(const cJSON *o, const char *want_text, const words *ws, const char *labels) {
    const char *text = str(o, "text");
    const cJSON *jw = cJSON_GetObjectItemCaseSensitive(o, "words"), *jt = cJSON_GetObjectItemCaseSensitive(o, "tags"),
                *je = cJSON_GetObjectItemCaseSensitive(o, "entities");
    CHECK_MSG(text && !strcmp(text, want_text), "text '%s', want '%s'", text ? text : "(none)", want_text);
    REQUIRE(cJSON_IsArray(jw) && cJSON_IsArray(jt) && cJSON_IsArray(je) && text);
    const int n = cJSON_GetArraySize(jw);
    CHECK_MSG(n == ws->n, "%d words, want %d: %s", n, ws->n, want_text);
    CHECK_MSG(cJSON_GetArraySize(jt) == n, "%d tags for %d words: %s", cJSON_GetArraySize(jt), n, want_text);
    if (n != ws->n || cJSON_GetArraySize(jt) != n) return 0;
    const char *tags[256];
    int covered[256] = {0};
    for (int w = 0; w < n; w++) {
        const cJSON *x = cJSON_GetArrayItem(jw, w), *t = cJSON_GetArrayItem(jt, w);
        CHECK_MSG(cJSON_IsString(x) && !strcmp(x->valuestring, ws->w[w]), "word %d: want '%s'", w, ws->w[w]);
        tags[w] = cJSON_IsString(t) ? t->valuestring : "";
        char needle[64];
        snprintf(needle, sizeof needle, ",%s,", tags[w]);
        CHECK_MSG(!strcmp(tags[w], "O") || strstr(labels, needle), "word %d '%s': tag '%s' is not a label", w,
                  ws->w[w], tags[w]);
    }
    const int n_ent = cJSON_GetArraySize(je);
    for (int e = 0; e < n_ent; e++) {
        const cJSON *x = cJSON_GetArrayItem(je, e);
        const char *type = str(x, "type"), *etext = str(x, "text");
        const int start = (int)num(x, "start"), end = (int)num(x, "end"), ws0 = (int)num(x, "word_start"),
                  ws1 = (int)num(x, "word_end");
        const double score = num(x, "score");
        REQUIRE(type && etext);
        CHECK_MSG(score >= 0 && score <= 1, "entity score %g", score);
        CHECK_MSG(0 <= ws0 && ws0 < ws1 && ws1 <= n, "entity words [%d, %d) of %d", ws0, ws1, n);
        if (!(0 <= ws0 && ws0 < ws1 && ws1 <= n)) continue;
        /* offsets: code points of the entity's first and last word in text */
        CHECK_MSG(start == ws->start[ws0] && end == ws->end[ws1 - 1], "entity '%s' at [%d, %d), its words at [%d, %d)",
                  etext, start, end, ws->start[ws0], ws->end[ws1 - 1]);
        const size_t b0 = cp_to_byte(text, start), b1 = cp_to_byte(text, end);
        CHECK_MSG(b1 >= b0 && strlen(etext) == b1 - b0 && !strncmp(text + b0, etext, b1 - b0),
                  "entity text '%s' is not text[%d:%d] of '%s'", etext, start, end, text);
        for (int w = ws0; w < ws1; w++) {
            CHECK_MSG(strcmp(tags[w], "O") && !strcmp(tag_type(tags[w]), type), "entity %s over word %d tagged %s",
                      type, w, tags[w]);
            covered[w]++;
        }
    }
    /* seqeval's chunks hold every tag that is not O, once */
    for (int w = 0; w < n; w++)
        CHECK_MSG(covered[w] == (strcmp(tags[w], "O") != 0), "word %d '%s' (%s) is in %d entities", w, ws->w[w],
                  tags[w], covered[w]);
    return n_ent;
}

/* "," + the adapter's tags joined by "," + "," from its label_map.json. */
static void read_labels(const char *adapter, char *out, size_t cap, int *n_labels) {
    char name[512];
    snprintf(name, sizeof name, "%s/label_map.json", adapter);
    char *text = slurp(name, NULL);
    REQUIRE(text);
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(j, "id2label");
    REQUIRE(cJSON_IsObject(id2label));
    snprintf(out, cap, ",");
    *n_labels = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, id2label) {
        REQUIRE(cJSON_IsString(x));
        snprintf(out + strlen(out), cap - strlen(out), "%s,", x->valuestring);
        (*n_labels)++;
    }
    cJSON_Delete(j);
}

static void check_adapter_dir(const char *dir, const char *task_type) {
    char name[512];
    snprintf(name, sizeof name, "%s/adapter_config.json", dir);
    char *text = slurp(name, NULL);
    CHECK_MSG(text != NULL, "%s missing", name);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    const char *tt = str(j, "task_type");
    CHECK_MSG(tt && !strcmp(tt, task_type), "%s: task_type %s, want %s", name, tt ? tt : "(none)", task_type);
    cJSON_Delete(j);
    free(text);
    snprintf(name, sizeof name, "%s/label_map.json", dir);
    CHECK_MSG(exists(name), "%s missing", name);
    snprintf(name, sizeof name, "%s/adapter_model.safetensors", dir);
    CHECK_MSG(exists(name), "%s missing", name);
}

static int files_equal(const char *a, const char *b) {
    long na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    const int same = x && y && na > 0 && na == nb && !memcmp(x, y, (size_t)na);
    free(x);
    free(y);
    return same;
}

/* ---- 1. train, eval, predict ---------------------------------------------------- */

static void test_train_eval_predict(void) {
    const int n_train_words = write_conll("train.conll", 40, 0, 0);
    const int n_dev_words = write_conll("dev.conll", 12, 3, 1);
    REQUIRE(cli("train " MODEL " --task token --train train.conll --dev dev.conll --out run --epochs 20 --max-steps 12"
                " --eval-every 3 --batch-tokens 160 --lr 5e-3 --seed 3 --no-progress") == 0);
    /* all sentences read, also the last one with no blank line (nor newline) after it */
    char *err = slurp("err.txt", NULL), want[128];
    snprintf(want, sizeof want, "train.conll: 40 sentences, %d words", n_train_words);
    CHECK_MSG(err && strstr(err, want), "stderr lacks '%s': %s", want, err ? err : "");
    snprintf(want, sizeof want, "dev.conll: 12 sentences, %d words", n_dev_words);
    CHECK_MSG(err && strstr(err, want), "stderr lacks '%s': %s", want, err ? err : "");
    free(err);

    /* the log: dev evaluations with the entity metrics; the best one */
    int n_log;
    cJSON **log = read_jsonl("run/log.jsonl", &n_log);
    const cJSON *best = NULL;
    int n_eval = 0, every3 = 0;
    for (int i = 0; i < n_log; i++) {
        const char *ev = str(log[i], "eval");
        if (!ev || strcmp(ev, "dev")) continue;
        n_eval++;
        every3 += (int)num(log[i], "step") % 3 == 0;
        static const char *keys[] = {"f1", "precision", "recall", "token_accuracy", "loss"};
        for (int k = 0; k < 5; k++) {
            const double v = num(log[i], keys[k]);
            CHECK_MSG(v >= 0 && (k == 4 || v <= 1), "log %s = %g", keys[k], v);
        }
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(log[i], "best"))) best = log[i];
    }
    /* every 3 steps, and at epoch ends */
    CHECK_MSG(every3 == 4 && n_eval >= 4, "%d dev evaluations in the log, %d at multiples of 3 (want 4 of 12 steps)",
              n_eval, every3);
    REQUIRE(best);
    printf("best dev step %d: f1 %.6f\n", (int)num(best, "step"), num(best, "f1"));
    check_adapter_dir("run/best", "TOKEN_CLS");
    check_adapter_dir("run/final", "TOKEN_CLS");
    char labels[512];
    int n_labels;
    read_labels("run/best", labels, sizeof labels, &n_labels);
    CHECK_MSG(n_labels == 7 && strstr(labels, ",O,") && strstr(labels, ",B-PER,") && strstr(labels, ",I-LOC,"),
              "labels %s", labels);

    /* eval --json on the dev file = the log line of the best step */
    REQUIRE(cli("eval " MODEL " --adapter run/best --data dev.conll --json") == 0);
    int n_rep;
    cJSON **rep = read_jsonl("out.txt", &n_rep);
    REQUIRE(n_rep == 1);
    static const char *pairs[][2] = {{"micro_f1", "f1"}, {"micro_precision", "precision"}, {"micro_recall", "recall"},
                                     {"token_accuracy", "token_accuracy"}};
    for (int k = 0; k < 4; k++) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%.6f", num(rep[0], pairs[k][0]));
        snprintf(b, sizeof b, "%.6f", num(best, pairs[k][1]));
        CHECK_MSG(!strcmp(a, b), "eval %s %s, log of the best step %s", pairs[k][0], a, b);
    }
    CHECK(num(rep[0], "n_sentences") == 12 && num(rep[0], "n_tokens") == n_dev_words);
    free_jsonl(rep, n_rep);
    free_jsonl(log, n_log);
    /* the text table as well */
    REQUIRE(cli("eval " MODEL " --adapter run/best --data dev.conll") == 0);
    char *table = slurp("out.txt", NULL);
    CHECK(table && strstr(table, "micro avg") && strstr(table, "token accuracy"));
    free(table);

    /* predict on raw text lines: blank lines are no sentences; runs of spaces
     * and tabs split words; offsets are code points */
    static const char *lines[] = {
        "Tom went to Zürich .",
        "  Mary   Smith\tworks for Acme Corp in New York  ",
        "Anna likes Zürich 😀 and Sankt Gallen",
        "😀😀 Bob Stone went to Paris , Zürich and München ( Bayern ) !",
        "the cat sat on the mat",
    };
    const int n_lines = 5;
    char input[2048] = "";
    for (int i = 0; i < n_lines; i++)
        snprintf(input + strlen(input), sizeof input - strlen(input), "%s\n%s", lines[i], i == 1 ? "\n \n" : "");
    test_write_file(tmp, "input.txt", input);
    REQUIRE(cli("predict " MODEL " --adapter run/best --input input.txt") == 0);
    int n_pred;
    cJSON **pred = read_jsonl("out.txt", &n_pred);
    CHECK_MSG(n_pred == n_lines, "%d predictions for %d lines", n_pred, n_lines);
    int n_ent = 0;
    for (int i = 0; i < n_pred && i < n_lines; i++) {
        words ws;
        split_words(lines[i], &ws);
        n_ent += check_prediction(pred[i], lines[i], &ws, labels);
        free_words(&ws);
    }
    printf("predict on %d lines: %d entities\n", n_pred, n_ent);
    free_jsonl(pred, n_pred);
    /* the same lines from stdin give the same output */
    char *from_file = slurp("out.txt", NULL), cmd[4096];
    snprintf(cmd, sizeof cmd, "cd %s && %s predict " MODEL " --adapter run/best < input.txt > stdin.txt 2>/dev/null",
             tmp, LL_CLI_PATH);
    CHECK(system(cmd) == 0);
    char *from_stdin = slurp("stdin.txt", NULL);
    CHECK_MSG(from_file && from_stdin && !strcmp(from_file, from_stdin), "predict from stdin differs");
    free(from_file);
    free(from_stdin);

    /* predict on pre-split words (JSONL): the text is the words joined by spaces */
    static const char *sents[][12] = {
        {"Tom", "went", "to", "Zürich", ".", NULL},
        {"Initech", "Inc", "hired", "Anna", "in", "São", "Paulo", "🙂", NULL},
        {"the", "cat", NULL},
        {"Lily", "likes", "Berlin", "(", "Germany", ")", NULL},
    };
    const int n_sents = 4;
    FILE *f;
    char path[1024];
    snprintf(path, sizeof path, "%s/words.jsonl", tmp);
    REQUIRE((f = fopen(path, "wb")));
    for (int s = 0; s < n_sents; s++) {
        fputs("{\"id\": 1, \"tokens\": [", f);
        for (int w = 0; sents[s][w]; w++) fprintf(f, "%s\"%s\"", w ? ", " : "", sents[s][w]);
        fputs("]}\n", f);
    }
    fclose(f);
    REQUIRE(cli("predict " MODEL " --adapter run/best --input words.jsonl --format jsonl") == 0);
    pred = read_jsonl("out.txt", &n_pred);
    CHECK_MSG(n_pred == n_sents, "%d predictions for %d sentences", n_pred, n_sents);
    for (int s = 0; s < n_pred && s < n_sents; s++) {
        char text[512] = "";
        for (int w = 0; sents[s][w]; w++) snprintf(text + strlen(text), sizeof text - strlen(text), "%s%s", w ? " " : "", sents[s][w]);
        words ws;
        split_words(text, &ws);
        check_prediction(pred[s], text, &ws, labels);
        free_words(&ws);
    }
    free_jsonl(pred, n_pred);
    /* and CoNLL words (the tags column, if any, is not needed) */
    REQUIRE(cli("predict " MODEL " --adapter run/best --input dev.conll --format conll") == 0);
    pred = read_jsonl("out.txt", &n_pred);
    CHECK_MSG(n_pred == 12, "%d predictions for the 12 dev sentences", n_pred);
    int n_w = 0;
    for (int s = 0; s < n_pred; s++) {
        words ws;
        const char *text = str(pred[s], "text");
        REQUIRE(text);
        split_words(text, &ws);
        n_w += ws.n;
        check_prediction(pred[s], text, &ws, labels);
        free_words(&ws);
    }
    CHECK_MSG(n_w == n_dev_words, "%d words predicted, dev has %d", n_w, n_dev_words);
    free_jsonl(pred, n_pred);
}

/* ---- 1b. windows: --max-length 8 ------------------------------------------------ */

/* Every word tagged B-LOC (capitalized) or B-PER, no O: the classifier can only
 * predict entities, so each word is an entity of its own and its offsets are
 * checked; a word a window did not predict would show up as O. */
static void test_windows(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/long.conll", tmp);
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    static const char *long_sent =
        "Tom and Mary went to Zürich with Anna and then to London and Paris and New York for the Acme Corp meeting";
    for (int s = 0; s < 8; s++) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", long_sent);
        int i = 0;
        for (char *w = strtok(buf, " "); w; w = strtok(NULL, " "), i++)
            if ((i + s) % 7) fprintf(f, "%s %s\n", w, w[0] >= 'A' && w[0] <= 'Z' ? "B-LOC" : "B-PER");
        fputs("\n", f);
    }
    fclose(f);
    REQUIRE(cli("train " MODEL " --task token --train long.conll --dev long.conll --out win --max-length 8"
                " --epochs 2 --batch-tokens 64 --lr 5e-3 --no-progress") == 0);
    char *err = slurp("err.txt", NULL);
    CHECK_MSG(err && strstr(err, "split into overlapping windows"), "training sentences not split: %s", err ? err : "");
    free(err);
    check_adapter_dir("win/best", "TOKEN_CLS");
    char labels[256];
    int n_labels;
    read_labels("win/best", labels, sizeof labels, &n_labels);
    CHECK_MSG(n_labels == 2, "labels %s", labels);
    static const char *lines[] = {
        "Tom went to Zürich and then to 😀 München , Köln , Kraków , São Paulo and 東京 with Mary Smith of Acme Corp",
        "a b c d e f g h i j k l m n o p q r s t u v w x y z",
        "short",
        "Ünïcödé wörds 👍🏽 everywhere 🇨🇭 flags , emoji ZWJ 👩‍👩‍👧 and combining e\xcc\x81 marks",
    };
    const int n_lines = 4;
    char input[2048] = "";
    for (int i = 0; i < n_lines; i++) snprintf(input + strlen(input), sizeof input - strlen(input), "%s\n", lines[i]);
    test_write_file(tmp, "long.txt", input);
    REQUIRE(cli("predict " MODEL " --adapter win/best --input long.txt --max-length 8") == 0);
    err = slurp("err.txt", NULL);
    CHECK_MSG(err && strstr(err, "split into overlapping windows"), "predict input not split: %s", err ? err : "");
    free(err);
    int n_pred;
    cJSON **pred = read_jsonl("out.txt", &n_pred);
    CHECK_MSG(n_pred == n_lines, "%d predictions for %d lines", n_pred, n_lines);
    for (int i = 0; i < n_pred && i < n_lines; i++) {
        words ws;
        split_words(lines[i], &ws);
        const int n_ent = check_prediction(pred[i], lines[i], &ws, labels);
        CHECK_MSG(n_ent == ws.n, "line %d: %d entities for %d words (each word is one)", i + 1, n_ent, ws.n);
        const cJSON *jt = cJSON_GetObjectItemCaseSensitive(pred[i], "tags");
        for (int w = 0; w < cJSON_GetArraySize(jt); w++) {
            const char *t = cJSON_GetArrayItem(jt, w)->valuestring;
            CHECK_MSG(!strcmp(t, "B-LOC") || !strcmp(t, "B-PER"), "line %d word %d '%s': tag %s", i + 1, w, ws.w[w], t);
        }
        free_words(&ws);
    }
    free_jsonl(pred, n_pred);
    /* eval at the same max length works on the split dev sentences */
    CHECK(cli("eval " MODEL " --adapter win/best --data long.conll --max-length 8 --json") == 0);
}

/* ---- 2. resume ------------------------------------------------------------------ */

static void test_resume(void) {
    const char *common = "--task token --train train.conll --dev dev.conll --epochs 20 --max-steps 10 --eval-every 2"
                         " --checkpoint-every 5 --batch-tokens 160 --lr 5e-3 --seed 11 --no-progress";
    CHECK(cli("train " MODEL " %s --out straight", common) == 0);
    CHECK(cli("train " MODEL " %s --out resumed --stop-after-steps 5", common) == 0);
    CHECK_MSG(!exists("resumed/final"), "a stopped run must not write its final adapter");
    CHECK(exists("resumed/checkpoint"));
    CHECK(cli("train " MODEL " %s --out resumed --resume", common) == 0);
    static const char *files[] = {"final/adapter_model.safetensors", "final/adapter_config.json",
                                  "final/label_map.json", "best/adapter_model.safetensors"};
    for (int i = 0; i < 4; i++) {
        char a[256], b[256];
        snprintf(a, sizeof a, "straight/%s", files[i]);
        snprintf(b, sizeof b, "resumed/%s", files[i]);
        CHECK_MSG(files_equal(a, b), "%s: resumed differs from straight", files[i]);
    }
    /* the same log, timings aside: losses, learning rates, dev evaluations, best flags */
    int na, nb;
    cJSON **la = read_jsonl("straight/log.jsonl", &na), **lb = read_jsonl("resumed/log.jsonl", &nb);
    CHECK_MSG(na == nb && na > 10, "log lines: straight %d, resumed %d", na, nb);
    for (int i = 0; i < na && i < nb; i++) {
        char *x[2];
        for (int k = 0; k < 2; k++) {
            cJSON *j = k ? lb[i] : la[i];
            cJSON_DeleteItemFromObjectCaseSensitive(j, "tokens_per_s");
            cJSON_DeleteItemFromObjectCaseSensitive(j, "elapsed_s");
            x[k] = cJSON_PrintUnformatted(j);
        }
        CHECK_MSG(!strcmp(x[0], x[1]), "log line %d: straight %s, resumed %s", i + 1, x[0], x[1]);
        free(x[0]);
        free(x[1]);
    }
    free_jsonl(la, na);
    free_jsonl(lb, nb);
}

/* ---- 3. head-only --------------------------------------------------------------- */

static void test_head_only(void) {
    test_write_file(tmp, "train.tsv", "sentence\tlabel\na fine film\t1\na dull film\t0\ngood\t1\nbad\t0\nnice work\t1\nawful\t0\n");
    REQUIRE(cli("train " MODEL " --train train.tsv --dev train.tsv --out ho_seq --head-only --epochs 3 --lr 1e-2"
                " --no-progress") == 0);
    REQUIRE(cli("train " MODEL " --task token --train train.conll --dev dev.conll --out ho_tok --head-only --epochs 2"
                " --batch-tokens 160 --lr 1e-2 --no-progress") == 0);
    static const char *dirs[] = {"ho_seq/best", "ho_tok/best"};
    for (int i = 0; i < 2; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s/adapter_config.json", dirs[i]);
        char *text = slurp(name, NULL);
        cJSON *j = text ? cJSON_Parse(text) : NULL;
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "r"), *tm = cJSON_GetObjectItemCaseSensitive(j, "target_modules");
        CHECK_MSG(cJSON_IsNumber(r) && r->valueint == 0 && cJSON_IsArray(tm) && cJSON_GetArraySize(tm) == 0,
                  "%s: want r 0 and target_modules []", name);
        cJSON_Delete(j);
        free(text);
        check_adapter_dir(dirs[i], i ? "TOKEN_CLS" : "SEQ_CLS");
    }
    /* sequence adapter: eval and predict */
    CHECK(cli("eval " MODEL " --adapter ho_seq/best --data train.tsv --json") == 0);
    int n;
    cJSON **v = read_jsonl("out.txt", &n);
    CHECK(n == 1 && num(v[0], "n") == 6 && num(v[0], "accuracy") >= 0);
    free_jsonl(v, n);
    test_write_file(tmp, "seq_input.txt", "a good film\nbad\n");
    CHECK(cli("predict " MODEL " --adapter ho_seq/best --input seq_input.txt") == 0);
    v = read_jsonl("out.txt", &n);
    CHECK(n == 2 && str(v[0], "label") && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(v[0], "probabilities")));
    free_jsonl(v, n);
    /* token adapter: eval and predict */
    CHECK(cli("eval " MODEL " --adapter ho_tok/best --data dev.conll --json") == 0);
    v = read_jsonl("out.txt", &n);
    CHECK(n == 1 && num(v[0], "n_sentences") == 12 && num(v[0], "token_accuracy") >= 0);
    free_jsonl(v, n);
    CHECK(cli("predict " MODEL " --adapter ho_tok/best --input input.txt") == 0);
    v = read_jsonl("out.txt", &n);
    char labels[512];
    int n_labels;
    read_labels("ho_tok/best", labels, sizeof labels, &n_labels);
    CHECK(n == 5);
    for (int i = 0; i < n; i++) {
        words ws;
        const char *text = str(v[i], "text");
        REQUIRE(text);
        split_words(text, &ws);
        check_prediction(v[i], text, &ws, labels);
        free_words(&ws);
    }
    free_jsonl(v, n);
}

/* ---- 4. bad input --------------------------------------------------------------- */

static void expect_fail(const char *label, int want_code, const char *n1, const char *n2, const char *fmt, ...) {
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    const int code = cli("%s", args);
    char *err = slurp("err.txt", NULL);
    CHECK_MSG(code > 0 && (!want_code || code == want_code), "%s: exit status %d (want %s)", label, code,
              want_code == 2 ? "2, a usage error" : "a non-zero exit, no signal");
    CHECK_MSG(err && (!n1 || strstr(err, n1)) && (!n2 || strstr(err, n2)), "%s: stderr lacks '%s'/'%s': %s", label,
              n1 ? n1 : "", n2 ? n2 : "", err ? err : "(none)");
    printf("%-36s -> exit %d%s\n", label, code, err && *err ? "" : ", no message");
    free(err);
}

static void test_bad_input(void) {
    const char *T = "train " MODEL " --task token --out good --overwrite --epochs 2 --batch-tokens 160 --no-progress";
    /* a good run leaves adapters, a checkpoint and a log; the failing runs below (--overwrite) leave them whole */
    REQUIRE(cli("%s --train train.conll --dev dev.conll --checkpoint-every 1", T) == 0);
    static const char *keep[] = {"good/best/adapter_model.safetensors", "good/best/adapter_config.json",
                                 "good/best/label_map.json", "good/final/adapter_model.safetensors",
                                 "good/checkpoint/state.safetensors", "good/checkpoint/state.json", "good/log.jsonl"};
    enum { NK = sizeof keep / sizeof keep[0] };
    char *before[NK];
    long nb[NK];
    for (int i = 0; i < NK; i++) {
        before[i] = slurp(keep[i], &nb[i]);
        CHECK_MSG(before[i] && nb[i] > 0, "%s missing after a good run", keep[i]);
    }
    test_write_file(tmp, "ragged.conll", "-DOCSTART- -X- -X- O\n\nTom NNP I-NP B-PER\nwent VBD I-VP O\n\nto TO O\nParis NNP I-NP B-LOC\n");
    test_write_file(tmp, "dev_unknown.conll", "Tom NNP I-NP B-PER\n\t\nAnna NNP I-NP B-PER\nfrom XX O O\nUlm NNP I-NP B-CITY\n");
    test_write_file(tmp, "empty.jsonl", "{\"tokens\": [\"Tom\"], \"ner_tags\": [\"B-PER\"]}\n\n{\"tokens\": [], \"ner_tags\": []}\n");
    test_write_file(tmp, "bad_utf8.conll", "Tom NNP I-NP B-PER\nwent VBD I-VP O\n\nZ\xc3rich NNP I-NP B-LOC\n");
    expect_fail("ragged CoNLL columns", 0, "ragged.conll:6:", "columns", "%s --train ragged.conll --dev dev.conll", T);
    expect_fail("dev tag not in the training tags", 0, "dev_unknown.conll:5:", "B-CITY",
                "%s --train train.conll --dev dev_unknown.conll", T);
    expect_fail("empty JSONL sentence", 0, "empty.jsonl:3:", "empty sentence", "%s --train empty.jsonl --dev dev.conll", T);
    expect_fail("invalid UTF-8 in a CoNLL word", 0, "bad_utf8.conll:4:", "UTF-8",
                "%s --train bad_utf8.conll --dev dev.conll", T);
    expect_fail("bad dev file in eval", 0, "dev_unknown.conll:5:", "B-CITY",
                "eval " MODEL " --adapter good/best --data dev_unknown.conll");
    expect_fail("--metric accuracy with --task token", 2, "--metric", NULL,
                "%s --train train.conll --dev dev.conll --metric accuracy", T);
    expect_fail("--multi-label with --task token", 2, "--multi-label", NULL, "%s --train train.conll --multi-label", T);
    for (int i = 0; i < NK; i++) {
        long n;
        char *after = slurp(keep[i], &n);
        CHECK_MSG(after && before[i] && n == nb[i] && !memcmp(after, before[i], (size_t)n), "%s changed", keep[i]);
        free(after);
        free(before[i]);
    }
    /* --skip-invalid drops the bad sentence and goes on */
    CHECK(cli("train " MODEL " --task token --train ragged.conll --skip-invalid --out skipped --no-progress") == 0);
    char *err = slurp("err.txt", NULL);
    CHECK_MSG(err && strstr(err, "1 invalid sentences skipped") && strstr(err, "ragged.conll:6:"), "%s", err ? err : "");
    free(err);
}

/* A word that encodes to no token: a JSONL token "" (a CoNLL word is never
 * empty; tok512 has byte fallback, so any other word has tokens). It is kept
 * with its gold tag (eval counts it), gets no token and is predicted O. */
static void test_empty_word(void) {
    test_write_file(tmp, "empty_word.jsonl",
               "{\"tokens\": [\"Tom\", \"\", \"went\", \"to\", \"Paris\"], \"ner_tags\": [\"B-PER\", \"O\", \"O\", \"O\", \"B-LOC\"]}\n"
               "{\"tokens\": [\"Anna\", \"\", \"\"], \"ner_tags\": [\"B-PER\", \"B-LOC\", \"O\"]}\n");
    CHECK(cli("train " MODEL " --task token --train empty_word.jsonl --dev empty_word.jsonl --out ew --epochs 2"
              " --no-progress") == 0);
    char *err = slurp("err.txt", NULL);
    CHECK_MSG(err && strstr(err, "3 words without tokens (predicted O)"), "%s", err ? err : "");
    free(err);
    CHECK(cli("eval " MODEL " --adapter ew/best --data empty_word.jsonl --json") == 0);
    int n;
    cJSON **v = read_jsonl("out.txt", &n);
    CHECK(n == 1 && num(v[0], "n_tokens") == 8 && num(v[0], "support") == 4);
    free_jsonl(v, n);
    CHECK(cli("predict " MODEL " --adapter ew/best --input empty_word.jsonl --format jsonl") == 0);
    v = read_jsonl("out.txt", &n);
    CHECK(n == 2);
    char labels[512];
    int n_labels;
    read_labels("ew/best", labels, sizeof labels, &n_labels);
    static const char *texts[] = {"Tom  went to Paris", "Anna  "};
    for (int i = 0; i < n && i < 2; i++) {
        const cJSON *jw = cJSON_GetObjectItemCaseSensitive(v[i], "words"), *jt = cJSON_GetObjectItemCaseSensitive(v[i], "tags");
        const char *text = str(v[i], "text");
        CHECK_MSG(text && !strcmp(text, texts[i]), "text '%s'", text ? text : "");
        for (int w = 0; w < cJSON_GetArraySize(jw) && w < cJSON_GetArraySize(jt); w++)
            if (!strcmp(cJSON_GetArrayItem(jw, w)->valuestring, ""))
                CHECK_MSG(!strcmp(cJSON_GetArrayItem(jt, w)->valuestring, "O"), "sentence %d: empty word %d tagged %s", i,
                          w, cJSON_GetArrayItem(jt, w)->valuestring);
    }
    free_jsonl(v, n);
    /* without an O among the tags (the windows adapter: B-LOC, B-PER) */
    CHECK(cli("predict " MODEL " --adapter win/best --input empty_word.jsonl --format jsonl") == 0);
    v = read_jsonl("out.txt", &n);
    CHECK(n == 2);
    for (int i = 0; i < n; i++) {
        const cJSON *jw = cJSON_GetObjectItemCaseSensitive(v[i], "words"), *jt = cJSON_GetObjectItemCaseSensitive(v[i], "tags"),
                    *je = cJSON_GetObjectItemCaseSensitive(v[i], "entities");
        int n_nonempty = 0;
        for (int w = 0; w < cJSON_GetArraySize(jw); w++) {
            const int empty = !strcmp(cJSON_GetArrayItem(jw, w)->valuestring, "");
            n_nonempty += !empty;
            if (empty)
                CHECK_MSG(!strcmp(cJSON_GetArrayItem(jt, w)->valuestring, "O"), "no O tag: empty word %d tagged %s", w,
                          cJSON_GetArrayItem(jt, w)->valuestring);
        }
        CHECK_MSG(cJSON_GetArraySize(je) == n_nonempty, "no O tag: %d entities, %d words with text",
                  cJSON_GetArraySize(je), n_nonempty);
    }
    free_jsonl(v, n);
    /* eval counts such a word as predicted O, not as the map's first tag */
    test_write_file(tmp, "empty_word_no_o.jsonl",
               "{\"tokens\": [\"Tom\", \"\", \"Paris\"], \"ner_tags\": [\"B-PER\", \"B-PER\", \"B-LOC\"]}\n");
    CHECK(cli("eval " MODEL " --adapter win/best --data empty_word_no_o.jsonl --json") == 0);
    v = read_jsonl("out.txt", &n);
    REQUIRE(n == 1);
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(v[0], "per_type"), *t;
    int n_pred = 0;
    cJSON_ArrayForEach(t, types) n_pred += (int)num(t, "n_pred");
    CHECK_MSG(n_pred == 2, "no O tag: %d predicted entities, want 2 (the words with text)", n_pred);
    CHECK(num(v[0], "support") == 3 && num(v[0], "n_tokens") == 3);
    free_jsonl(v, n);
}

int main(void) {
    REQUIRE(mkdtemp(tmp));
    /* One thread: the model is 64 wide, so threads only add synchronisation, and on a machine busy with other
     * jobs OpenMP's spinning threads made this test 25 times slower (66 s instead of 2.7 s). */
    setenv("OMP_NUM_THREADS", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    test_train_eval_predict();
    test_windows();
    test_resume();
    test_head_only();
    test_bad_input();
    test_empty_word();
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (!test_failures_) (void)system(cmd);
    else printf("files kept in %s\n", tmp);
    return test_summary("test_token_cli");
}
