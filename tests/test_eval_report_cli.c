/* `lsllama eval` reports through the command line, on the tiny stories260K
 * model (issue 11, faults 5 and 6):
 *
 * 1. Tags without a type (B I O as in biomedical corpora; B I E S O) train and
 *    evaluate; the report has seqeval's type "_"; its figures equal
 *    ll_ner_evaluate (seqeval-exact, test_seqeval) on `predict`'s tags.
 *    Tags seqeval warns about ("X-PER") are refused with a message naming
 *    --any-tags, an option `train --help` lists, and read with it.
 * 2. Sequence classification, single- and multi-label: the table is
 *    scikit-learn's classification_report (every row: accuracy or micro,
 *    macro, weighted with precision and recall, samples avg) plus a labelled
 *    confusion matrix, and both the table and --json equal what ll_metrics
 *    (scikit-learn-exact, test_metrics) gives on `predict`'s labels. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
#include "train/metrics.h"
#include "train/seqeval.h"

#define MODEL_DIR LL_SHARED_DIR "/models/stories260K"
#define MODEL MODEL_DIR "/stories260K.bin --tokenizer " MODEL_DIR "/tok512.bin"

static char tmp[] = "/tmp/lsllama_eval_report_XXXXXX";

static char *slurp(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    char *s = test_read_file(path);
    return s ? s : strdup("");
}

/* `lsllama ARGS` in tmp, stdout in out.txt, stderr in err.txt; the exit status (-1: a signal). */
static int cli(const char *fmt, ...) {
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd %s && %s %s > out.txt 2> err.txt", tmp, LL_CLI_PATH, args);
    printf("$ lsllama %s\n", args);
    fflush(stdout);
    const int st = system(cmd);
    char *err = slurp("err.txt");
    CHECK_MSG(!strstr(err, "Sanitizer") && !strstr(err, "runtime error"), "sanitizer report: %s", err);
    const int code = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (code) printf("%s", err);
    free(err);
    return code;
}

/* stdout of the last command parsed as one JSON value. */
static cJSON *out_json(void) {
    char *t = slurp("out.txt");
    cJSON *j = cJSON_Parse(t);
    CHECK_MSG(j != NULL, "not JSON: %s", t);
    free(t);
    return j;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    CHECK_MSG(cJSON_IsNumber(v), "no number '%s'", key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* A report printed to a string. */
static char *print_ner(const ll_ner_report *r) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    REQUIRE(f);
    ll_ner_report_print(f, r);
    fclose(f);
    return buf;
}

static char *print_metrics(const ll_class_metrics *m, const char *const *names) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    REQUIRE(f);
    ll_metrics_write_table(m, names, f);
    fclose(f);
    return buf;
}

static int index_of(const char *const *names, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
}

/* ---- 1. tags without a type ----------------------------------------------------- */

/* Gold tags of a CoNLL file "word tag" per line, blank lines between sentences. */
typedef struct tagged {
    const char *tags[64];
    int32_t sent_len[16];
    int n_words, n_sent;
} tagged;

/* Train and evaluate a token classifier on FILE (also its dev file); check
 * the report against ll_ner_evaluate on predict's tags; want_types: the
 * report's types, space-separated. */
static void check_token_run(const char *file, const char *out, const tagged *gold, const char *extra,
                            const char *want_types) {
    CHECK(cli("train " MODEL " --task token --format conll --train %s --dev %s --out %s --max-steps 3 --lr 1e-2 "
              "--batch-tokens 256 --no-progress %s", file, file, out, extra) == 0);
    /* eval --json: seqeval's report */
    REQUIRE(cli("eval " MODEL " --format conll --adapter %s/final --data %s --no-progress --json %s", out, file,
                extra) == 0);
    cJSON *ev = out_json();
    REQUIRE(ev);
    char types[256] = "";
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(ev, "per_type")) {
        const size_t len = strlen(types);
        snprintf(types + len, sizeof types - len, "%s%s", len ? " " : "", cJSON_GetObjectItem(t, "type")->valuestring);
    }
    CHECK_MSG(!strcmp(types, want_types), "%s: types '%s', want '%s'", file, types, want_types);
    /* predict the same words; their tags scored here */
    REQUIRE(cli("predict " MODEL " --format conll --adapter %s/final --input %s --no-progress %s", out, file, extra) == 0);
    char *pred_text = slurp("out.txt");
    const char *names[128];
    int n_names = 0;
    int32_t g[64], p[64];
    int w = 0, s = 0;
    for (char *line = strtok(pred_text, "\n"); line; line = strtok(NULL, "\n"), s++) {
        cJSON *j = cJSON_Parse(line);
        REQUIRE(j && s < gold->n_sent);
        const cJSON *tags = cJSON_GetObjectItem(j, "tags");
        CHECK_MSG(cJSON_GetArraySize(tags) == gold->sent_len[s], "%s sentence %d: %d tags", file, s,
                  cJSON_GetArraySize(tags));
        cJSON_ArrayForEach(t, tags) {
            REQUIRE(w < gold->n_words && n_names < 126);
            int id = index_of(names, n_names, t->valuestring);
            if (id < 0) names[id = n_names++] = strdup(t->valuestring);
            p[w] = id;
            if ((id = index_of(names, n_names, gold->tags[w])) < 0) names[id = n_names++] = strdup(gold->tags[w]);
            g[w++] = id;
        }
        cJSON_Delete(j);
    }
    free(pred_text);
    CHECK_MSG(w == gold->n_words && s == gold->n_sent, "%s: predict gave %d words in %d sentences", file, w, s);
    ll_ner_report r;
    ll_error err = {0};
    REQUIRE(ll_ner_evaluate(g, p, gold->sent_len, (size_t)gold->n_sent, names, n_names, &r, &err) == 0);
    CHECK_MSG(num(ev, "micro_f1") == r.micro_f1 && num(ev, "micro_precision") == r.micro_p &&
                  num(ev, "micro_recall") == r.micro_r && num(ev, "support") == (double)r.support &&
                  num(ev, "weighted_precision") == r.weighted_p && num(ev, "token_accuracy") == r.token_accuracy,
              "%s: eval --json differs from seqeval's figures on predict's tags", file);
    /* the table: seqeval's classification_report of the same figures */
    REQUIRE(cli("eval " MODEL " --format conll --adapter %s/final --data %s --no-progress %s", out, file, extra) == 0);
    char *table = slurp("out.txt"), *want = print_ner(&r);
    CHECK_MSG(strstr(table, want) != NULL, "%s: eval table\n%s\nwant\n%s", file, table, want);
    if (!strcmp(want_types, "_")) CHECK_MSG(strstr(table, "\n           _  "), "%s: no row '_':\n%s", file, table);
    free(table);
    free(want);
    ll_ner_report_free(&r);
    for (int i = 0; i < n_names; i++) free((char *)names[i]);
    cJSON_Delete(ev);
}

static void put_tagged(const char *name, tagged *t, const char *const *lines, int n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    memset(t, 0, sizeof *t);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s\n", lines[i]);
        if (!lines[i][0]) {
            t->n_sent++;
            continue;
        }
        t->tags[t->n_words++] = strrchr(lines[i], ' ') + 1;
        t->sent_len[t->n_sent]++;
    }
    t->n_sent++;
    fclose(f);
}

static void test_untyped_tags(void) {
    /* issue 11's file, word and tag per line */
    static const char *bio[] = {"Aspirin B", "induced O", "hepatic B", "injury I", ". O", "", "No O", "adverse O",
                                "reaction B"};
    tagged t;
    put_tagged("bio.txt", &t, bio, 9);
    check_token_run("bio.txt", "run_bio", &t, "", "_");
    static const char *bioes[] = {"Aspirin S", "induced O", "acute B", "hepatic I", "injury E", ". O", "",
                                  "No O", "adverse B", "reaction E", "seen O"};
    put_tagged("bioes.txt", &t, bioes, 11);
    check_token_run("bioes.txt", "run_bioes", &t, "", "_");
    /* mixed with typed tags, an empty type and a type with a dash */
    static const char *mixed[] = {"Aspirin B-CHEM", "induced O", "hepatic B", "injury I", "in O", "mice B-",
                                  "", "No O", "ORG-X B-ORG-X", "reaction I-ORG-X"};
    put_tagged("mixed.txt", &t, mixed, 10);
    check_token_run("mixed.txt", "run_mixed", &t, "", "CHEM ORG-X _");

    /* a tag seqeval warns about: refused, naming the option that reads it */
    static const char *xper[] = {"Tom X-PER", "ran O", "", "Ann X-PER", "sat O"};
    put_tagged("xper.txt", &t, xper, 5);
    CHECK(cli("train " MODEL " --task token --format conll --train xper.txt --out run_x --max-steps 1 "
              "--no-progress") == 1);
    char *e = slurp("err.txt");
    CHECK_MSG(strstr(e, "xper.txt:1: tag 'X-PER'") && strstr(e, "--any-tags") && !strstr(e, "any_tags"),
              "message: %s", e);
    free(e);
    CHECK(cli("train --help") == 0);
    char *help = slurp("out.txt");
    CHECK_MSG(strstr(help, "--any-tags"), "train --help lists no --any-tags:\n%s", help);
    free(help);
    check_token_run("xper.txt", "run_x", &t, "--any-tags", "PER");
}

/* ---- 2. sequence classification -------------------------------------------------- */

static const char *const WORDS[] = {"cat", "dog", "sun"}; /* sorted: the label map's order */

/* n rows "text<TAB>label" (label: the first of cat/dog/sun in the text) or
 * JSONL with label arrays (every one of them in the text). */
static void write_seq(const char *name, int n, unsigned seed, int multi) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    if (!multi) fprintf(f, "sentence\tlabel\n");
    static const char *fill[] = {"the", "a", "big", "red", "runs", "sleeps", "today", "here"};
    unsigned x = seed;
    for (int i = 0; i < n; i++) {
        int has[3] = {0}, first = -1;
        char text[128] = "";
        for (int k = 0; k < 4; k++) {
            x = x * 1103515245u + 12345u;
            const unsigned r = (x >> 16) % 11;
            const size_t len = strlen(text);
            if (r < 3) {
                snprintf(text + len, sizeof text - len, "%s%s", len ? " " : "", WORDS[r]);
                has[r] = 1;
                if (first < 0) first = (int)r;
            } else snprintf(text + len, sizeof text - len, "%s%s", len ? " " : "", fill[r - 3]);
        }
        if (!multi) fprintf(f, "%s\t%s\n", text, WORDS[first < 0 ? (int)(x >> 8) % 3 : first]);
        else {
            fprintf(f, "{\"text\": \"%s\", \"label\": [", text);
            for (int k = 0, c = 0; k < 3; k++)
                if (has[k]) fprintf(f, "%s\"%s\"", c++ ? ", " : "", WORDS[k]);
            fprintf(f, "]}\n");
        }
    }
    fclose(f);
}

/* Gold labels of the dev file in order: single-label ids, or 0/1 per label. */
static void read_gold(const char *name, int multi, int *ids, float (*sets)[3], int *n) {
    char *text = slurp(name);
    *n = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!multi) {
            const char *tab = strchr(line, '\t');
            if (!strcmp(line, "sentence\tlabel") || !tab) continue;
            ids[(*n)++] = index_of(WORDS, 3, tab + 1);
        } else {
            cJSON *j = cJSON_Parse(line);
            REQUIRE(j);
            const cJSON *l;
            sets[*n][0] = sets[*n][1] = sets[*n][2] = 0;
            cJSON_ArrayForEach(l, cJSON_GetObjectItem(j, "label")) sets[*n][index_of(WORDS, 3, l->valuestring)] = 1;
            (*n)++;
            cJSON_Delete(j);
        }
    }
    free(text);
}

static void check_seq_run(int multi) {
    const char *train = multi ? "train.jsonl" : "train.tsv", *dev = multi ? "dev.jsonl" : "dev.tsv";
    const char *out = multi ? "run_ml" : "run_seq", *fmt = multi ? "--format jsonl" : "--format tsv";
    write_seq(train, 90, 7, multi);
    write_seq(dev, 40, 99, multi);
    REQUIRE(cli("train " MODEL " %s --train %s --out %s --max-steps 6 --lr 1e-2 --batch-tokens 256 --no-progress",
                fmt, train, out) == 0);
    static int gold[64];
    static float sets[64][3];
    int n = 0;
    read_gold(dev, multi, gold, sets, &n);
    REQUIRE(n == 40);
    /* predict's labels, scored by ll_metrics */
    REQUIRE(cli("predict " MODEL " %s --adapter %s/final --input %s --no-progress", fmt, out, dev) == 0);
    ll_class_metrics m;
    REQUIRE(multi ? ll_metrics_init_multi(&m, 3) : ll_metrics_init(&m, 3));
    char *pred = slurp("out.txt");
    int i = 0;
    char *save = NULL;
    for (char *line = strtok_r(pred, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
        cJSON *j = cJSON_Parse(line);
        REQUIRE(j && i < n);
        if (!multi) ll_metrics_add(&m, gold[i], index_of(WORDS, 3, cJSON_GetObjectItem(j, "label")->valuestring));
        else {
            int p[3] = {0};
            const cJSON *l;
            cJSON_ArrayForEach(l, cJSON_GetObjectItem(j, "labels")) p[index_of(WORDS, 3, l->valuestring)] = 1;
            ll_metrics_add_multi(&m, sets[i], p);
        }
        cJSON_Delete(j);
    }
    free(pred);
    CHECK(i == n);
    ll_metrics_finish(&m);
    /* the table: classification_report, then the labelled confusion matrix */
    REQUIRE(cli("eval " MODEL " %s --adapter %s/final --data %s --no-progress", fmt, out, dev) == 0);
    char *table = slurp("out.txt"), *want = print_metrics(&m, WORDS);
    CHECK_MSG(strstr(table, want) != NULL, "eval table\n%s\nwant\n%s", table, want);
    double p, r, f;
    long long sup;
    const char *wrow = strstr(table, "weighted avg");
    CHECK_MSG(wrow && sscanf(wrow, "weighted avg %lf %lf %lf %lld", &p, &r, &f, &sup) == 4 && sup == (long long)m.support_sum,
              "weighted avg row without precision and recall:\n%s", table);
    if (!multi) {
        CHECK(strstr(table, "    accuracy  ") && strstr(table, "gold \\ predicted"));
        CHECK_MSG(strstr(table, "gold \\ predicted  cat  dog  sun\n") && strstr(table, "\n             cat  "),
                  "confusion matrix without labels:\n%s", table);
    } else CHECK(strstr(table, "   micro avg  ") && strstr(table, " samples avg  "));
    free(table);
    free(want);
    /* --json: the same figures to the last bit, every average's precision and recall */
    REQUIRE(cli("eval " MODEL " %s --adapter %s/final --data %s --no-progress --json", fmt, out, dev) == 0);
    cJSON *ev = out_json();
    REQUIRE(ev);
    CHECK(num(ev, "accuracy") == m.accuracy && num(ev, "support") == (double)m.support_sum);
    CHECK(num(ev, "macro_precision") == m.macro_precision && num(ev, "macro_recall") == m.macro_recall &&
          num(ev, "macro_f1") == m.macro_f1);
    CHECK_MSG(num(ev, "weighted_precision") == m.weighted_precision && num(ev, "weighted_recall") == m.weighted_recall &&
                  num(ev, "weighted_f1") == m.weighted_f1, "weighted average in --json");
    if (multi)
        CHECK(num(ev, "micro_precision") == m.micro_precision && num(ev, "micro_f1") == m.micro_f1 &&
              num(ev, "samples_precision") == m.samples_precision && num(ev, "samples_recall") == m.samples_recall &&
              num(ev, "samples_f1") == m.samples_f1);
    else {
        const cJSON *labels = cJSON_GetObjectItem(ev, "labels"), *conf = cJSON_GetObjectItem(ev, "confusion");
        CHECK(cJSON_GetArraySize(labels) == 3 && cJSON_GetArraySize(conf) == 3);
        for (int g = 0; g < 3 && cJSON_GetArraySize(labels) == 3; g++) {
            CHECK(!strcmp(cJSON_GetArrayItem(labels, g)->valuestring, WORDS[g]));
            for (int q = 0; q < 3; q++)
                CHECK(cJSON_GetArrayItem(cJSON_GetArrayItem(conf, g), q)->valuedouble == (double)m.confusion[g * 3 + q]);
        }
    }
    const cJSON *pc;
    int c = 0;
    cJSON_ArrayForEach(pc, cJSON_GetObjectItem(ev, "per_class")) {
        CHECK(c < 3 && !strcmp(cJSON_GetObjectItem(pc, "label")->valuestring, WORDS[c]) &&
              num(pc, "precision") == m.precision[c] && num(pc, "recall") == m.recall[c] && num(pc, "f1") == m.f1[c] &&
              num(pc, "support") == (double)m.support[c]);
        c++;
    }
    CHECK(c == 3);
    cJSON_Delete(ev);
    ll_metrics_free(&m);
}

int main(void) {
    REQUIRE(mkdtemp(tmp));
    test_untyped_tags();
    check_seq_run(0);
    check_seq_run(1);
    const int rc = test_summary("test_eval_report_cli");
    if (!rc) {
        char cmd[1100];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
        if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp);
    }
    return rc;
}
