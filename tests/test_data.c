/* Data module: readers (TSV/CSV/JSONL), label maps, validation with file:line
 * errors, --skip-invalid counting, tokenization + truncation, batch plans and
 * packed batches. Real data from ../shared/data (SST-2, AG News); small
 * fixtures in tests/fixtures/data; bad files are written to a temp folder. */
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data/dataset.h"
#include "lsllama_tokenizer.h"
#include "test_util.h"

static char tmp_root[256];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *fixture(const char *name) {
    static char b[4][1024];
    static int k;
    char *p = b[k++ % 4];
    snprintf(p, 1024, "%s/tests/fixtures/data/%s", LL_SOURCE_DIR, name);
    return p;
}
static const char *shared(const char *name) {
    static char b[4][1024];
    static int k;
    char *p = b[k++ % 4];
    snprintf(p, 1024, "%s/data/%s", LL_SHARED_DIR, name);
    return p;
}

/* Write bytes to tmp_root/name; returns the path. */
static const char *write_tmp(const char *name, const char *bytes) {
    return test_write_bytes(tmp_root, name, bytes, strlen(bytes));
}

static ll_data_options opts(void) {
    ll_data_options o;
    ll_data_options_default(&o);
    return o;
}

/* Load + (optionally) map labels with `map`; the whole chain must fail with
 * code and a message holding path:line and needle. */
static void expect_bad(const char *what, const char *path, const ll_data_options *o, const ll_labelmap *map,
                       int line, const char *needle) {
    ll_dataset *ds = NULL;
    ll_error err = {0};
    int rc = ll_dataset_load(&ds, path, o, &err);
    if (!rc && map) rc = ll_dataset_apply_labels(ds, map, &err);
    char where[600];
    snprintf(where, sizeof where, "%s:%d: ", path, line);
    CHECK_MSG(rc == LL_ERR_FORMAT && err.code == LL_ERR_FORMAT && strstr(err.message, where) &&
                  strstr(err.message, needle),
              "%s: rc %d, message '%s', want '%s' and '%s'", what, rc, err.message, where, needle);
    ll_dataset_free(ds);
}

/* ---- real data -------------------------------------------------------------- */

static ll_dataset *load_mapped(const char *path, const ll_data_options *o, ll_labelmap **map_io) {
    ll_dataset *ds = NULL;
    ll_error err = {0};
    int rc = ll_dataset_load(&ds, path, o, &err);
    CHECK_MSG(rc == 0, "%s: %s", path, err.message);
    if (rc) return NULL;
    if (!*map_io) {
        rc = ll_labelmap_build(map_io, ds, &err);
        CHECK_MSG(rc == 0, "%s", err.message);
    }
    rc = ll_dataset_apply_labels(ds, *map_io, &err);
    CHECK_MSG(rc == 0, "%s", err.message);
    return ds;
}

static void test_sst2(ll_tokenizer *tok) {
    ll_data_options o = opts();
    ll_labelmap *map = NULL;
    double t0 = now_s();
    ll_dataset *train = load_mapped(shared("sst2/train.tsv"), &o, &map);
    double t1 = now_s();
    REQUIRE(train && map);
    CHECK(train->n == 67349);
    CHECK(map->n == 2 && !strcmp(map->names[0], "0") && !strcmp(map->names[1], "1"));
    int64_t c[2];
    ll_dataset_label_counts(train, c);
    CHECK_MSG(c[0] == 29780 && c[1] == 37569, "train counts %lld %lld", (long long)c[0], (long long)c[1]);
    /* first row, line 2, trailing space kept */
    CHECK(train->ex[0].line == 2);
    CHECK_MSG(!strcmp(ll_example_text(train, 0), "hide new secretions from the parental units "), "'%s'",
              ll_example_text(train, 0));
    CHECK(train->ex[0].label == 0);

    ll_dataset *dev = load_mapped(shared("sst2/dev.tsv"), &o, &map);
    REQUIRE(dev);
    CHECK(dev->n == 872);
    ll_dataset_label_counts(dev, c);
    CHECK_MSG(c[0] == 428 && c[1] == 444, "dev counts %lld %lld", (long long)c[0], (long long)c[1]);

    if (tok) {
        ll_error err = {0};
        double t2 = now_s();
        int rc = ll_dataset_tokenize(train, tok, 128, &err);
        double t3 = now_s();
        CHECK_MSG(rc == 0, "%s", err.message);
        printf("SST-2 train: load %.3f s, tokenize %.3f s (%zu rows, %zu tokens, %zu truncated)\n", t1 - t0,
               t3 - t2, train->n, train->tokens_len, train->n_truncated);
        CHECK(train->n == 67349);
        /* tokens equal a direct encode */
        ll_encoding enc = {0};
        for (size_t i = 0; i < train->n; i += 997) {
            REQUIRE(ll_tokenizer_encode(tok, ll_example_text(train, i), train->ex[i].text_len, LL_TOK_DEFAULT, &enc,
                                        &err) == 0);
            size_t n = enc.n < 128 ? enc.n : 128;
            CHECK(train->ex[i].n_tok == (int32_t)n && !memcmp(ll_example_tokens(train, i), enc.ids, n * 4));
        }
        ll_encoding_free(&enc);
        /* truncation to 8 */
        rc = ll_dataset_tokenize(dev, tok, 8, &err);
        CHECK_MSG(rc == 0, "%s", err.message);
        size_t over = 0, bad = 0;
        for (size_t i = 0; i < dev->n; i++) {
            over += dev->ex[i].n_tok_full > 8;
            bad += dev->ex[i].n_tok > 8 || dev->ex[i].n_tok != (dev->ex[i].n_tok_full < 8 ? dev->ex[i].n_tok_full : 8);
        }
        CHECK(bad == 0 && over == dev->n_truncated && over > 700);
        /* max length below 1 */
        rc = ll_dataset_tokenize(dev, tok, 0, &err);
        CHECK_MSG(rc == LL_ERR_ARG && strstr(err.message, "--max-length 0: must be at least 1"), "rc %d '%s'", rc, err.message);
    } else {
        printf("SST-2 train: load %.3f s (no tokenizer: %s missing, tokenization skipped)\n", t1 - t0,
               test_smollm2_path());
    }
    ll_dataset_free(train);
    ll_dataset_free(dev);
    ll_labelmap_free(map);
}

static void test_ag_news(ll_tokenizer *tok) {
    ll_data_options o = opts();
    o.text_columns = "1,2"; /* title + " " + description */
    o.label_column = "0";
    ll_labelmap *map = NULL;
    ll_dataset *ds = load_mapped(shared("ag_news/test.csv"), &o, &map);
    REQUIRE(ds && map);
    CHECK(ds->n == 7600);
    CHECK(map->n == 4);
    for (int i = 0; i < map->n && map->n == 4; i++) {
        char want[2] = {(char)('1' + i), 0};
        CHECK(!strcmp(map->names[i], want));
    }
    int64_t c[4] = {0};
    ll_dataset_label_counts(ds, c);
    CHECK(c[0] == 1900 && c[1] == 1900 && c[2] == 1900 && c[3] == 1900);
    CHECK(ds->ex[0].line == 1 && ds->ex[0].label == 2);
    CHECK_MSG(!strncmp(ll_example_text(ds, 0), "Fears for T N pension after talks Unions representing", 53), "'%s'",
              ll_example_text(ds, 0));
    /* doubled quotes unescaped somewhere in the file */
    size_t quotes = 0;
    for (size_t i = 0; i < ds->n; i++) quotes += strchr(ll_example_text(ds, i), '"') != NULL;
    CHECK(quotes > 0);
    if (tok) {
        ll_error err = {0};
        CHECK(ll_dataset_tokenize(ds, tok, 256, &err) == 0);
    }
    ll_dataset_free(ds);
    /* description only */
    o.text_columns = "2";
    ds = load_mapped(shared("ag_news/test.csv"), &o, &map);
    REQUIRE(ds);
    CHECK(ds->n == 7600 && !strncmp(ll_example_text(ds, 0), "Unions representing", 19));
    ll_dataset_free(ds);
    ll_labelmap_free(map);
}

/* ---- fixtures ---------------------------------------------------------------- */

static void test_csv_quoting(void) {
    ll_data_options o = opts();
    ll_labelmap *map = NULL;
    ll_dataset *ds = load_mapped(fixture("quoting.csv"), &o, &map);
    REQUIRE(ds);
    CHECK(ds->n == 5);
    const char *want[] = {"hello, world", "she said \"hi\"", "line one\r\nline two", "plain text ",
                          "last row, no newline"};
    const int lines[] = {2, 3, 4, 6, 8};
    for (size_t i = 0; i < 5 && i < ds->n; i++) {
        CHECK_MSG(!strcmp(ll_example_text(ds, i), want[i]), "row %zu: '%s'", i, ll_example_text(ds, i));
        CHECK_MSG(ds->ex[i].line == lines[i], "row %zu line %d", i, ds->ex[i].line);
    }
    CHECK(map->n == 2);
    ll_dataset_free(ds);
    ll_labelmap_free(map);

    /* same content from memory as TSV with quotes disabled: quotes are data */
    o.format = LL_DATA_TSV;
    o.no_quotes = 1;
    ll_error err = {0};
    const char tsv[] = "text\tlabel\n\"quoted\" start\tx\n";
    CHECK(ll_dataset_load_memory(&ds, tsv, sizeof tsv - 1, "mem.tsv", &o, &err) == 0);
    CHECK(ds && ds->n == 1 && !strcmp(ll_example_text(ds, 0), "\"quoted\" start"));
    ll_dataset_free(ds);
}

static void test_pairs_and_multilabel(void) {
    ll_data_options o = opts();
    o.text_columns = "premise,hypothesis";
    o.text_join = " [SEP] ";
    ll_labelmap *map = NULL;
    ll_dataset *ds = load_mapped(fixture("pairs.tsv"), &o, &map);
    REQUIRE(ds);
    CHECK(ds->n == 2 && !strcmp(ll_example_text(ds, 0), "A man sleeps. [SEP] A person rests."));
    CHECK(map->n == 2 && !strcmp(map->names[0], "contradiction") && ds->ex[0].label == 1);
    ll_dataset_free(ds);
    ll_labelmap_free(map);

    /* multi-label TSV: label field split on label_sep */
    const char *p = write_tmp("multi.tsv", "text\tlabel\nx one\tb|a\ny two\tc\n");
    o = opts();
    o.multi_label = 1;
    o.label_sep = "|";
    map = NULL;
    ds = load_mapped(p, &o, &map);
    REQUIRE(ds);
    CHECK(ds->multi_label && map->n == 3 && ds->ex[0].n_lab == 2 && ds->ex[0].label == -1);
    ll_dataset_free(ds);
    ll_labelmap_free(map);
}

static void test_jsonl(void) {
    ll_data_options o = opts();
    ll_labelmap *map = NULL;
    ll_dataset *ds = load_mapped(fixture("labels.jsonl"), &o, &map);
    REQUIRE(ds);
    CHECK(ds->n == 4 && !ds->multi_label);
    /* integers sort numerically: -1, 2, 10 */
    CHECK(map->n == 3 && !strcmp(map->names[0], "-1") && !strcmp(map->names[1], "2") && !strcmp(map->names[2], "10"));
    CHECK(ds->ex[0].label == 2 && ds->ex[1].label == 1 && ds->ex[2].label == 0 && ds->ex[3].label == 1);
    CHECK(ds->ex[0].line == 1 && ds->ex[1].line == 3 && ds->ex[2].line == 5 && ds->ex[3].line == 6);
    CHECK(!strcmp(ll_example_text(ds, 2), "minus one"));
    ll_dataset_free(ds);
    ll_labelmap_free(map);

    o.label_column = "labels";
    map = NULL;
    ds = load_mapped(fixture("multi.jsonl"), &o, &map);
    REQUIRE(ds);
    CHECK(ds->n == 5 && ds->multi_label);
    /* strings (one is "3") sort byte-wise */
    CHECK(map->n == 4 && !strcmp(map->names[0], "3") && !strcmp(map->names[1], "a") && !strcmp(map->names[3], "c"));
    CHECK(ds->ex[0].n_lab == 2 && ds->ex[1].n_lab == 0 && ds->ex[3].n_lab == 1 && ds->ex[4].n_lab == 1);
    CHECK(ds->labs[ds->ex[4].lab_off] == 0);
    /* packed batch carries multi-hot targets */
    ll_tokenizer *tok = NULL;
    ll_error err = {0};
    char tp[1024];
    snprintf(tp, sizeof tp, "%s/models/stories260K/tok512.bin", LL_SHARED_DIR);
    if (ll_tokenizer_load(&tok, tp, &err) == 0) {
        CHECK(ll_dataset_tokenize(ds, tok, 64, &err) == 0);
        ll_batching_options bo = {.max_batch_tokens = 1000};
        ll_batch_plan plan;
        ll_batch_buf buf = {0};
        CHECK(ll_batch_plan_make(&plan, ds, &bo, &err) == 0);
        CHECK(plan.n_batches == 1);
        CHECK(ll_batch_fill(&buf, ds, &plan, 0, &err) == 0);
        const float want0[4] = {0, 1, 1, 0}, want1[4] = {0, 0, 0, 0}, want4[4] = {1, 0, 0, 0};
        CHECK(!memcmp(buf.targets, want0, sizeof want0) && !memcmp(buf.targets + 4, want1, sizeof want1) &&
              !memcmp(buf.targets + 16, want4, sizeof want4));
        ll_batch_buf_free(&buf);
        ll_batch_plan_free(&plan);
        ll_tokenizer_free(tok);
    }
    ll_dataset_free(ds);
    ll_labelmap_free(map);
}

static void test_labelmap_io(void) {
    const char *names[] = {"neg", "pos", "neutral \"q\""};
    ll_labelmap *m = NULL, *m2 = NULL;
    ll_error err = {0};
    REQUIRE(ll_labelmap_from_names(&m, names, 3, &err) == 0);
    char path[512];
    snprintf(path, sizeof path, "%s/labels.json", tmp_root);
    CHECK(ll_labelmap_save(m, path, &err) == 0);
    CHECK_MSG(ll_labelmap_load(&m2, path, &err) == 0, "%s", err.message);
    CHECK(m2 && m2->n == 3 && !strcmp(m2->names[2], "neutral \"q\"") && ll_labelmap_find(m2, "pos", 3) == 1);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);
    /* the file is transformers-style */
    FILE *f = fopen(path, "rb");
    char buf[1024] = {0};
    REQUIRE(f);
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    CHECK(got > 0 && strstr(buf, "\"id2label\"") && strstr(buf, "\"0\":\t\"neg\"") && strstr(buf, "\"label2id\""));
    ll_labelmap_free(m2);
    m2 = NULL;
    /* bad maps */
    const char *bad1 = write_tmp("bad1.json", "{\"id2label\": {\"0\": \"a\", \"2\": \"b\"}}");
    CHECK(ll_labelmap_load(&m2, bad1, &err) == LL_ERR_FORMAT && strstr(err.message, bad1));
    const char *bad2 = write_tmp("bad2.json", "{\"id2label\": {\"0\": \"a\", \"1\": \"b\"}, \"label2id\": {\"a\": 1, \"b\": 0}}");
    CHECK(ll_labelmap_load(&m2, bad2, &err) == LL_ERR_FORMAT && strstr(err.message, "does not match"));
    const char *only = write_tmp("only.json", "{\"label2id\": {\"b\": 1, \"a\": 0}, \"other\": 1}");
    CHECK(ll_labelmap_load(&m2, only, &err) == 0 && m2 && !strcmp(m2->names[1], "b"));
    ll_labelmap_free(m2);
    ll_labelmap_free(m);
}

/* ---- bad input ------------------------------------------------------------------ */

static void test_bad_input(void) {
    ll_data_options o = opts();
    expect_bad("missing column", write_tmp("mc.tsv", "sentence\tlabel\nfine \t1\nno label column\n"), &o, NULL, 3,
               "missing label column 'label'");
    expect_bad("empty text", write_tmp("et.tsv", "sentence\tlabel\nfine\t1\n   \t0\n"), &o, NULL, 3, "empty text");
    expect_bad("invalid utf-8", write_tmp("u8.tsv", "sentence\tlabel\nok\t1\nok\t0\nbad \xC3\x28 byte\t1\n"), &o, NULL,
               4, "invalid UTF-8");
    expect_bad("missing label", write_tmp("ml.tsv", "sentence\tlabel\nfine\t\n"), &o, NULL, 2, "missing label");
    expect_bad("csv unterminated quote", write_tmp("uq.csv", "text,label\n\"open,1\nnext,0\n"), &o, NULL, 2,
               "never closed");
    expect_bad("csv junk after quote", write_tmp("jq.csv", "text,label\n\"a\"b,1\n"), &o, NULL, 2,
               "after the closing quote");
    /* quoted field spanning lines: the error names the row's first line */
    o.text_columns = "0";
    o.label_column = "2";
    expect_bad("missing column (no header)", write_tmp("mc2.csv", "\"multi\nline\",x,1\n\"two\nlines\",y\n"), &o,
               NULL, 3, "missing label column 2");
    o = opts();
    expect_bad("jsonl missing label", write_tmp("ml.jsonl", "{\"text\": \"a\", \"label\": 1}\n\n{\"text\": \"b\"}\n"), &o,
               NULL, 3, "missing label (field 'label')");
    expect_bad("jsonl malformed", write_tmp("mf.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": }\n"),
               &o, NULL, 2, "malformed JSON");
    expect_bad("jsonl missing text", write_tmp("mt.jsonl", "{\"txt\": \"a\", \"label\": 1}\n"), &o, NULL, 1,
               "missing field 'text'");
    expect_bad("jsonl float label", write_tmp("fl.jsonl", "{\"text\": \"a\", \"label\": 1.5}\n"), &o, NULL, 1,
               "not an integer");
    expect_bad("jsonl invalid utf-8", write_tmp("u8.jsonl", "{\"text\": \"a\xff\", \"label\": 1}\n"), &o, NULL, 1,
               "invalid UTF-8");
    expect_bad("jsonl empty text", write_tmp("et.jsonl", "{\"text\": \" \\n\", \"label\": 1}\n"), &o, NULL, 1,
               "empty text");

    /* a dev label absent from the train map */
    const char *names[] = {"0", "1"};
    ll_labelmap *map = NULL;
    ll_error err = {0};
    REQUIRE(ll_labelmap_from_names(&map, names, 2, &err) == 0);
    expect_bad("unknown label", write_tmp("dev.tsv", "sentence\tlabel\na\t0\nb\t1\nc\t2\n"), &o, map, 4, "label '2'");

    /* file-level errors */
    ll_dataset *ds = NULL;
    int rc = ll_dataset_load(&ds, write_tmp("nohdr.tsv", "a\t1\n"), &o, &err);
    CHECK_MSG(rc == LL_ERR_FORMAT && strstr(err.message, "nohdr.tsv:1: no column 'text' or 'sentence'"), "%s",
              err.message);
    rc = ll_dataset_load(&ds, write_tmp("x.data", "a\n"), &o, &err);
    CHECK(rc == LL_ERR_ARG && strstr(err.message, "x.data"));
    rc = ll_dataset_load(&ds, write_tmp("arr.json", "[{\"text\": \"a\"}]"), &o, &err);
    CHECK(rc == LL_ERR_UNSUPPORTED && strstr(err.message, "JSON Lines"));
    char missing[512];
    snprintf(missing, sizeof missing, "%s/nope.tsv", tmp_root);
    rc = ll_dataset_load(&ds, missing, &o, &err);
    CHECK(rc == LL_ERR_IO && strstr(err.message, missing));
    rc = ll_dataset_load(&ds, write_tmp("empty.tsv", ""), &o, &err);
    CHECK(rc == LL_ERR_FORMAT && strstr(err.message, "empty file"));
    o.label_column = "lbl";
    rc = ll_dataset_load(&ds, write_tmp("lbl.tsv", "sentence\tlabel\na\t1\n"), &o, &err);
    CHECK(rc == LL_ERR_FORMAT && strstr(err.message, "no label column named 'lbl'"));

    /* --skip-invalid: every bad row above in one file, counted */
    o = opts();
    o.skip_invalid = 1;
    const char *mixed = write_tmp("mixed.tsv", "sentence\tlabel\n"
                                               "good one\t0\n"     /* 2 */
                                               "no label column\n" /* 3: missing column */
                                               " \t1\n"            /* 4: empty text */
                                               "bad \xff\t1\n"     /* 5: invalid UTF-8 */
                                               "x\t\n"             /* 6: missing label */
                                               "unknown\t7\n"      /* 7: not in map */
                                               "good two\t1\n");   /* 8 */
    rc = ll_dataset_load(&ds, mixed, &o, &err);
    CHECK_MSG(rc == 0, "%s", err.message);
    if (!rc) {
        CHECK(ds->n == 3 && ds->n_skipped == 4);
        CHECK_MSG(strstr(ds->first_skip, "mixed.tsv:3: missing label column"), "%s", ds->first_skip);
        rc = ll_dataset_apply_labels(ds, map, &err);
        CHECK(rc == 0 && ds->n == 2 && ds->n_skipped == 5 && ds->ex[1].line == 8);
        ll_dataset_free(ds);
    }
    o.format = LL_DATA_JSONL;
    rc = ll_dataset_load(&ds, write_tmp("skip.jsonl", "{\"text\": \"a\", \"label\": 1}\nnot json\n{\"text\": \"b\"}\n"),
                         &o, &err);
    CHECK(rc == 0 && ds && ds->n == 1 && ds->n_skipped == 2);
    ll_dataset_free(ds);
    /* all rows bad: an error even with skip_invalid */
    o = opts();
    o.skip_invalid = 1;
    rc = ll_dataset_load(&ds, write_tmp("allbad.tsv", "sentence\tlabel\n \t1\n"), &o, &err);
    CHECK_MSG(rc == LL_ERR_FORMAT && strstr(err.message, "no valid rows (1 skipped; first: ") &&
                  strstr(err.message, "allbad.tsv:2: empty text"),
              "%s", err.message);
    ll_labelmap_free(map);
}

/* ---- batching -------------------------------------------------------------------- */

static int plans_equal(const ll_batch_plan *a, const ll_batch_plan *b) {
    return a->n_batches == b->n_batches && a->n_examples == b->n_examples &&
           !memcmp(a->order, b->order, a->n_examples * sizeof *a->order) &&
           !memcmp(a->bounds, b->bounds, (a->n_batches + 1) * sizeof *a->bounds) && a->hash == b->hash;
}

static void check_plan(const char *what, const ll_dataset *ds, const ll_batch_plan *p, const ll_batching_options *bo) {
    char *seen = calloc(ds->n, 1);
    REQUIRE(seen);
    int once = p->n_examples == ds->n && p->bounds[0] == 0 && (size_t)p->bounds[p->n_batches] == ds->n;
    int budget = 1, sorted = 1, seqs_ok = 1;
    for (size_t b = 0; b < p->n_batches; b++) {
        size_t tokens = 0, n = (size_t)(p->bounds[b + 1] - p->bounds[b]);
        once &= n > 0;
        for (int32_t i = p->bounds[b]; i < p->bounds[b + 1]; i++) {
            once &= !seen[p->order[i]];
            seen[p->order[i]] = 1;
            tokens += (size_t)ds->ex[p->order[i]].n_tok;
            if (i > p->bounds[b] && ds->ex[p->order[i]].n_tok < ds->ex[p->order[i - 1]].n_tok) sorted = 0;
        }
        budget &= tokens <= bo->max_batch_tokens || n == 1;
        seqs_ok &= !bo->max_batch_seqs || n <= bo->max_batch_seqs;
    }
    for (size_t i = 0; i < ds->n; i++) once &= seen[i];
    CHECK_MSG(once, "%s: not every example exactly once", what);
    CHECK_MSG(budget, "%s: a batch over the token budget", what);
    CHECK_MSG(seqs_ok, "%s: a batch over max_batch_seqs", what);
    if (bo->shuffle) CHECK_MSG(sorted, "%s: a batch not sorted by length", what);
    free(seen);
}

static double mean_spread(const ll_dataset *ds, const ll_batch_plan *p) {
    double spread = 0;
    for (size_t k = 0; k < p->n_batches; k++) {
        int lo = 1 << 30, hi = 0;
        for (int32_t i = p->bounds[k]; i < p->bounds[k + 1]; i++) {
            int L = ds->ex[p->order[i]].n_tok;
            lo = L < lo ? L : lo;
            hi = L > hi ? L : hi;
        }
        spread += hi - lo;
    }
    return spread / (double)p->n_batches;
}

static void test_batching(ll_tokenizer *tok) {
    if (!tok) { printf("batching: no tokenizer, skipped\n"); return; }
    ll_data_options o = opts();
    ll_labelmap *map = NULL;
    ll_dataset *ds = load_mapped(shared("sst2/dev.tsv"), &o, &map);
    REQUIRE(ds);
    ll_error err = {0};
    REQUIRE(ll_dataset_tokenize(ds, tok, 64, &err) == 0);
    ll_batching_options bo = {.max_batch_tokens = 512, .shuffle = 1, .seed = 1234, .epoch = 0, .bucket_batches = 4};
    ll_batch_plan a, b, c, d, e;
    REQUIRE(ll_batch_plan_make(&a, ds, &bo, &err) == 0);
    check_plan("seed 1234", ds, &a, &bo);
    REQUIRE(ll_batch_plan_make(&b, ds, &bo, &err) == 0);
    CHECK_MSG(plans_equal(&a, &b), "same seed, different plan");
    bo.seed = 99;
    REQUIRE(ll_batch_plan_make(&c, ds, &bo, &err) == 0);
    check_plan("seed 99", ds, &c, &bo);
    CHECK(!plans_equal(&a, &c) && a.hash != c.hash);
    bo.seed = 1234;
    bo.epoch = 1;
    REQUIRE(ll_batch_plan_make(&d, ds, &bo, &err) == 0);
    CHECK(!plans_equal(&a, &d));
    /* bucketing: far less length spread inside batches than without sorting windows */
    {
        double sp4 = mean_spread(ds, &a);
        bo.bucket_batches = 0; /* default 100 */
        ll_batch_plan f;
        REQUIRE(ll_batch_plan_make(&f, ds, &bo, &err) == 0);
        double sp100 = mean_spread(ds, &f);
        ll_batch_plan_free(&f);
        bo.bucket_batches = 1; /* window = one batch: no bucketing */
        REQUIRE(ll_batch_plan_make(&f, ds, &bo, &err) == 0);
        double sp1 = mean_spread(ds, &f);
        ll_batch_plan_free(&f);
        printf("dev plan: %zu batches, max %zu tokens / %zu seqs; mean in-batch length spread: %.2f (window 1 batch), "
               "%.2f (4), %.2f (100)\n", a.n_batches, a.max_tokens, a.max_seqs, sp1, sp4, sp100);
        CHECK(sp100 < sp4 && sp4 < sp1 && sp100 < 0.2 * sp1);
        bo.bucket_batches = 4;
    }
    /* sequence cap, and an example longer than the budget alone */
    bo.max_batch_seqs = 7;
    bo.max_batch_tokens = 20;
    REQUIRE(ll_batch_plan_make(&e, ds, &bo, &err) == 0);
    check_plan("budget 20, 7 seqs", ds, &e, &bo);
    size_t singles = 0;
    for (size_t k = 0; k < e.n_batches; k++) {
        int32_t i = e.bounds[k];
        if (e.bounds[k + 1] - i == 1 && ds->ex[e.order[i]].n_tok > 20) singles++;
    }
    CHECK(singles > 0);
    ll_batch_plan_free(&e);
    /* evaluation: in file order */
    ll_batching_options eo = {.max_batch_tokens = 300};
    REQUIRE(ll_batch_plan_make(&e, ds, &eo, &err) == 0);
    check_plan("eval", ds, &e, &eo);
    int inorder = 1;
    for (size_t i = 0; i < e.n_examples; i++) inorder &= e.order[i] == (int32_t)i;
    CHECK(inorder);
    /* filling: tokens/labels match, no reallocation after the reserve */
    ll_batch_buf buf = {0};
    REQUIRE(ll_batch_buf_reserve(&buf, a.max_tokens, a.max_seqs, map->n, &err) == 0);
    const int32_t *tp = buf.tokens, *sp = buf.seq_start;
    int fill_ok = 1;
    size_t total = 0;
    for (size_t k = 0; k < a.n_batches; k++) {
        REQUIRE(ll_batch_fill(&buf, ds, &a, k, &err) == 0);
        fill_ok &= buf.tokens == tp && buf.seq_start == sp && buf.batch.tokens == buf.tokens;
        fill_ok &= buf.batch.n_seqs == a.bounds[k + 1] - a.bounds[k] && buf.seq_start[0] == 0 &&
                   (size_t)buf.seq_start[buf.batch.n_seqs] == buf.n_tokens;
        for (int s = 0; s < buf.batch.n_seqs; s++) {
            const ll_example *x = &ds->ex[a.order[a.bounds[k] + s]];
            fill_ok &= buf.seq_start[s + 1] - buf.seq_start[s] == x->n_tok && buf.labels[s] == x->label &&
                       !memcmp(buf.tokens + buf.seq_start[s], ds->tokens + x->tok_off, (size_t)x->n_tok * 4);
        }
        total += buf.n_tokens;
    }
    CHECK(fill_ok && total == ds->tokens_len);
    CHECK(ll_batch_fill(&buf, ds, &a, a.n_batches, &err) == LL_ERR_ARG);
    ll_batch_buf_free(&buf);
    ll_batch_plan_free(&a);
    ll_batch_plan_free(&b);
    ll_batch_plan_free(&c);
    ll_batch_plan_free(&d);
    ll_batch_plan_free(&e);
    ll_dataset_free(ds);
    ll_labelmap_free(map);
}

/* Truncation keeps the tokens the tokenizer adds (Llama 2 BOS). */
static void test_truncation_specials(void) {
    char tp[1024];
    snprintf(tp, sizeof tp, "%s/models/llama2-tokenizer/tokenizer.model", LL_SHARED_DIR);
    ll_tokenizer *tok = NULL;
    ll_error err = {0};
    if (ll_tokenizer_load(&tok, tp, &err)) { printf("llama2 tokenizer missing: %s\n", err.message); return; }
    ll_data_options o = opts();
    o.format = LL_DATA_LINES;
    const char text[] = "the quick brown fox jumps over the lazy dog\n";
    ll_dataset *ds = NULL;
    REQUIRE(ll_dataset_load_memory(&ds, text, sizeof text - 1, "lines.txt", &o, &err) == 0);
    REQUIRE(ll_dataset_tokenize(ds, tok, 3, &err) == 0);
    ll_encoding enc = {0};
    REQUIRE(ll_tokenizer_encode(tok, text, sizeof text - 2, LL_TOK_DEFAULT, &enc, &err) == 0);
    CHECK(ds->ex[0].n_tok == 3 && ds->ex[0].n_tok_full == (int32_t)enc.n && enc.n > 3);
    CHECK(ll_example_tokens(ds, 0)[0] == ll_tokenizer_bos_id(tok) && !memcmp(ll_example_tokens(ds, 0), enc.ids, 12));
    ll_encoding_free(&enc);
    ll_dataset_free(ds);
    ll_tokenizer_free(tok);
}

int main(void) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/ll_test_data_XXXXXX");
    REQUIRE(mkdtemp(tmp_root));
    ll_tokenizer *tok = NULL;
    ll_error err = {0};
    if (access(test_smollm2_path(), R_OK) == 0) {
        if (ll_tokenizer_load(&tok, test_smollm2_path(), &err)) {
            CHECK_MSG(0, "SmolLM2 tokenizer: %s", err.message);
            tok = NULL;
        }
    } else {
        printf("SmolLM2 model not found at %s: tokenization checks skipped (scripts/setup.sh fetches it)\n",
               test_smollm2_path());
    }
    test_csv_quoting();
    test_pairs_and_multilabel();
    test_jsonl();
    test_labelmap_io();
    test_bad_input();
    test_truncation_specials();
    test_ag_news(tok);
    test_sst2(tok);
    test_batching(tok);
    ll_tokenizer_free(tok);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
    return test_summary("test_data");
}
