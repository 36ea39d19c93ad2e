/* Data safety at the library level (issue 10): every reader applies one row
 * rule set whichever command reads the data, degenerate training sets are
 * refused where the label map is built, a NUL byte in any text, label or tag
 * is an error naming file and line, and file-reading errors name the path and
 * the real cause. Each case failed (was accepted, or said too little) before
 * the fix. */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "lsllama_tokenizer.h"
#include "test_util.h"

static char tmp_root[] = "/tmp/ll_test_data_safety_XXXXXX";

static const char *write_bytes(const char *name, const char *bytes, size_t n) {
    return test_write_bytes(tmp_root, name, bytes, n);
}
static const char *write_text(const char *name, const char *text) { return write_bytes(name, text, strlen(text)); }

static ll_data_options opts(void) {
    ll_data_options o;
    ll_data_options_default(&o);
    return o;
}

static int has(const char *msg, const char *needle) { return needle == NULL || strstr(msg, needle) != NULL; }

/* A load (+ label map) that must have failed with every needle in its message. */
static void expect_failed(const char *what, int rc, const ll_error *err, const char *n1, const char *n2,
                          const char *n3) {
    CHECK_MSG(rc != 0 && has(err->message, n1) && has(err->message, n2) && has(err->message, n3),
              "%s: rc %d, message '%s', want '%s' '%s' '%s'", what, rc, rc ? err->message : "", n1 ? n1 : "",
              n2 ? n2 : "", n3 ? n3 : "");
    printf("%-44s -> %s\n", what, rc ? err->message : "(accepted)");
}

/* load (+ build a label map when build): must fail, the message holding every needle */
static void expect_seq_fail(const char *what, const char *path, const ll_data_options *o, int build, const char *n1,
                            const char *n2, const char *n3) {
    ll_dataset *ds = NULL;
    ll_labelmap *map = NULL;
    ll_error err = {0};
    int rc = ll_dataset_load(&ds, path, o, &err);
    if (!rc && build) rc = ll_labelmap_build(&map, ds, &err);
    expect_failed(what, rc, &err, n1, n2, n3);
    ll_labelmap_free(map);
    ll_dataset_free(ds);
}

static void expect_tok_fail(const char *what, const char *path, const ll_token_data_options *o, int build,
                            const char *n1, const char *n2, const char *n3) {
    ll_dataset *ds = NULL;
    ll_labelmap *map = NULL;
    ll_error err = {0};
    int rc = ll_token_dataset_load(&ds, path, o, &err);
    if (!rc && build) rc = ll_labelmap_build(&map, ds, &err);
    expect_failed(what, rc, &err, n1, n2, n3);
    ll_labelmap_free(map);
    ll_dataset_free(ds);
}

/* ---- fault 7: one row rule ------------------------------------------------- */

static void test_field_count(void) {
    /* a stray tab: "film" would become a third class */
    const char *p = write_text("stray.tsv", "sentence\tlabel\na fine film\t1\na dull\tfilm\t0\ngood\t1\nbad\t0\n");
    ll_data_options o = opts();
    expect_seq_fail("TSV row with 3 fields, header 2 (train)", p, &o, 1, "stray.tsv:3:", "3 fields", "has 2");
    /* the same rule without labels (predict reads the text column only) */
    o.no_labels = 1;
    expect_seq_fail("TSV row with 3 fields (no labels, predict)", p, &o, 0, "stray.tsv:3:", "3 fields", NULL);
    /* skipped and counted with skip_invalid; the label set stays {0, 1} */
    o = opts();
    o.skip_invalid = 1;
    ll_dataset *ds = NULL;
    ll_labelmap *map = NULL;
    ll_error err = {0};
    REQUIRE(ll_dataset_load(&ds, p, &o, &err) == 0);
    CHECK(ds->n == 3 && ds->n_skipped == 1 && strstr(ds->first_skip, "stray.tsv:3:") && strstr(ds->first_skip, "3 fields"));
    REQUIRE(ll_labelmap_build(&map, ds, &err) == 0);
    CHECK(map->n == 2 && ll_labelmap_find(map, "film", 4) < 0);
    ll_labelmap_free(map);
    ll_dataset_free(ds);
    /* fewer fields than the header, but every chosen column present */
    p = write_text("short.tsv", "sentence\tlabel\tsource\na fine film\t1\tweb\na dull film\t0\n");
    o = opts();
    expect_seq_fail("TSV row with 2 fields, header 3", p, &o, 0, "short.tsv:3:", "2 fields", "has 3");
    /* CSV: an unquoted comma */
    p = write_text("stray.csv", "text,label\n\"a fine, warm film\",1\na dull, slow film,0\n");
    expect_seq_fail("CSV row with an unquoted comma", p, &o, 0, "stray.csv:3:", "3 fields", "comma");
    /* no header: the first row sets the count */
    p = write_text("nohdr.tsv", "1\ta fine film\n0\ta dull\tfilm\n");
    o.text_columns = "1";
    o.label_column = "0";
    expect_seq_fail("headerless TSV, ragged row", p, &o, 0, "nohdr.tsv:2:", "3 fields", "first row (line 1) has 2");
    /* CoNLL with a numbered tag column: every word line has the same columns */
    p = write_text("ragged.conll", "EU NNP B-ORG\nrejects VBZ O\nGerman JJ B-MISC extra\n\nPeter NNP B-PER\n");
    ll_token_data_options t;
    ll_token_data_options_default(&t);
    t.tag_column = 2;
    expect_tok_fail("CoNLL ragged line, tag column 2", p, &t, 0, "ragged.conll:3:", "4 columns", "line 1 has 3");
    t.skip_invalid = 1;
    REQUIRE(ll_token_dataset_load(&ds, p, &t, &err) == 0);
    CHECK(ds->n_sent == 1 && ds->n_skipped == 1);
    ll_dataset_free(ds);
    /* JSON Lines: tokens and tags of different lengths */
    p = write_text("len.jsonl", "{\"tokens\": [\"EU\", \"rejects\"], \"ner_tags\": [\"B-ORG\", \"O\"]}\n"
                                "{\"tokens\": [\"Peter\", \"Blackburn\"], \"ner_tags\": [\"B-PER\"]}\n");
    ll_token_data_options_default(&t);
    expect_tok_fail("JSONL tokens/tags of different lengths", p, &t, 0, "len.jsonl:2:", "2 entries", "1");
}

/* ---- fault 6: degenerate tasks ---------------------------------------------- */

static void test_degenerate(void) {
    char buf[4096];
    size_t k = (size_t)snprintf(buf, sizeof buf, "sentence\tlabel\n");
    for (int i = 0; i < 50; i++) k += (size_t)snprintf(buf + k, sizeof buf - k, "sentence number %d\t1\n", i);
    const char *p = write_text("one_label.tsv", buf);
    ll_data_options o = opts();
    expect_seq_fail("50 rows, all labelled 1", p, &o, 1, "one_label.tsv", "'1'", "line 2");
    /* the same after bad rows are skipped: the only other label was on a bad row */
    p = write_text("one_left.tsv", "sentence\tlabel\na fine film\t1\n\t0\na good film\t1\n");
    o.skip_invalid = 1;
    expect_seq_fail("one label left after skipping", p, &o, 1, "one_left.tsv", "'1'", "at least 2");
    /* a JSONL file with one label */
    p = write_text("one.jsonl", "{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": \"b\", \"label\": \"pos\"}\n");
    o = opts();
    expect_seq_fail("JSONL, one label", p, &o, 1, "one.jsonl", "'pos'", "line 1");
    /* multi-label: every row has the same label set */
    p = write_text("same.jsonl", "{\"text\": \"a\", \"label\": [\"x\", \"y\"]}\n{\"text\": \"b\", \"label\": [\"y\", \"x\"]}\n");
    expect_seq_fail("multi-label, one label set", p, &o, 1, "same.jsonl", "same label set", "line 1");
    /* multi-label with one label that is sometimes absent is a task (binary) */
    p = write_text("some.jsonl", "{\"text\": \"a\", \"label\": [\"x\"]}\n{\"text\": \"b\", \"label\": []}\n");
    ll_dataset *ds = NULL;
    ll_labelmap *map = NULL;
    ll_error err = {0};
    CHECK(ll_dataset_load(&ds, p, &o, &err) == 0 && ll_labelmap_build(&map, ds, &err) == 0 && map->n == 1);
    ll_labelmap_free(map);
    ll_dataset_free(ds);
    /* token task: every tag O */
    p = write_text("all_o.conll", "The O\ncat O\n\nA O\ndog O\n");
    ll_token_data_options t;
    ll_token_data_options_default(&t);
    expect_tok_fail("CoNLL, every tag O", p, &t, 1, "all_o.conll", "'O'", "line 1");
    /* token task whose words all encode to no token (only the tokenizer's BOS): no labelled token */
    ll_tokenizer *tok = NULL;
    ll_error terr = {0};
    if (ll_tokenizer_load(&tok, LL_SHARED_DIR "/models/stories260K/tok512.bin", &terr) == 0) {
        p = write_text("empty_words.jsonl", "{\"tokens\": [\"\", \"\"], \"ner_tags\": [\"B-PER\", \"O\"]}\n");
        ll_dataset *tds = NULL;
        ll_labelmap *tmap = NULL;
        REQUIRE(ll_token_dataset_load(&tds, p, &t, &terr) == 0 && ll_labelmap_build(&tmap, tds, &terr) == 0 &&
                ll_dataset_apply_labels(tds, tmap, &terr) == 0);
        const int rc = ll_token_dataset_tokenize(tds, tok, 16, NULL, &terr);
        /* tok512 adds BOS, so the sentence has a token, but no word has one */
        CHECK_MSG(rc != 0 && strstr(terr.message, "empty_words.jsonl") && strstr(terr.message, "labelled token"),
                  "no labelled token: rc %d, %s", rc, terr.message);
        printf("%-44s -> %s\n", "token task, no word has a token", rc ? terr.message : "(accepted)");
        ll_labelmap_free(tmap);
        ll_dataset_free(tds);
        ll_tokenizer_free(tok);
    } else {
        printf("(tok512.bin not found: %s)\n", terr.message);
    }
    /* two labels are fine */
    p = write_text("two.tsv", "sentence\tlabel\na\t1\nb\t0\n");
    ds = NULL;
    map = NULL;
    CHECK(ll_dataset_load(&ds, p, &o, &err) == 0 && ll_labelmap_build(&map, ds, &err) == 0 && map->n == 2);
    ll_labelmap_free(map);
    ll_dataset_free(ds);
}

/* ---- fault 8: NUL bytes, label-map messages, file errors --------------------- */

static void test_nul_bytes(void) {
    ll_data_options o = opts();
    /* a NUL inside a label: "1\0x" used to read as a second '1' */
    static const char lab[] = "sentence\tlabel\na fine film\t1\na dull film\t1\0x\nbad\t0\n";
    const char *p = write_bytes("nul_label.tsv", lab, sizeof lab - 1);
    expect_seq_fail("NUL byte in a TSV label", p, &o, 1, "nul_label.tsv:3:", "NUL", NULL);
    static const char txt[] = "sentence\tlabel\na fine\0 film\t1\nbad\t0\n";
    p = write_bytes("nul_text.tsv", txt, sizeof txt - 1);
    expect_seq_fail("NUL byte in a TSV text", p, &o, 0, "nul_text.tsv:2:", "NUL", NULL);
    p = write_text("nul_esc.jsonl", "{\"text\": \"fine\", \"label\": \"1\"}\n{\"text\": \"cut\\u0000 here\", \"label\": \"0\"}\n");
    expect_seq_fail("\\u0000 in a JSONL text", p, &o, 0, "nul_esc.jsonl:2:", "NUL", NULL);
    /* an escaped backslash before u0000 is ordinary text */
    p = write_text("bs.jsonl", "{\"text\": \"a\\\\u0000b\", \"label\": \"1\"}\n{\"text\": \"c\", \"label\": \"0\"}\n");
    ll_dataset *ds = NULL;
    ll_error err = {0};
    CHECK(ll_dataset_load(&ds, p, &o, &err) == 0 && ds && !strcmp(ll_example_text(ds, 0), "a\\u0000b"));
    ll_dataset_free(ds);
    static const char lines[] = "one line\nsecond\0line\n";
    p = write_bytes("nul.txt", lines, sizeof lines - 1);
    expect_seq_fail("NUL byte in a text line (predict input)", p, &o, 0, "nul.txt:2:", "NUL", NULL);
    /* skipped and counted like any bad row */
    o.skip_invalid = 1;
    p = write_bytes("nul_label2.tsv", lab, sizeof lab - 1);
    REQUIRE(ll_dataset_load(&ds, p, &o, &err) == 0);
    CHECK(ds->n == 2 && ds->n_skipped == 1);
    ll_dataset_free(ds);
    /* token readers */
    ll_token_data_options t;
    ll_token_data_options_default(&t);
    static const char conll[] = "EU B-ORG\nrej\0ects O\n";
    p = write_bytes("nul.conll", conll, sizeof conll - 1);
    expect_tok_fail("NUL byte in a CoNLL word", p, &t, 0, "nul.conll:2:", "NUL", NULL);
    static const char conll_tag[] = "EU B-ORG\nrejects O\0\n";
    p = write_bytes("nul_tag.conll", conll_tag, sizeof conll_tag - 1);
    expect_tok_fail("NUL byte in a CoNLL tag", p, &t, 0, "nul_tag.conll:2:", "NUL", NULL);
    p = write_text("nul_tok.jsonl", "{\"tokens\": [\"EU\", \"rej\\u0000\"], \"ner_tags\": [\"B-ORG\", \"O\"]}\n");
    expect_tok_fail("\\u0000 in a JSONL token", p, &t, 0, "nul_tok.jsonl:1:", "NUL", NULL);
    t.format = LL_DATA_LINES;
    p = write_bytes("nul_lines.txt", lines, sizeof lines - 1);
    expect_tok_fail("NUL byte in a raw text line (NER)", p, &t, 0, "nul_lines.txt:2:", "NUL", NULL);
    /* tag names: a NUL, and a duplicate named by its lines */
    static const char names[] = "O\nB-PER\nI-PER\0x\n";
    ll_labelmap *m = NULL;
    p = write_bytes("names_nul.txt", names, sizeof names - 1);
    CHECK_MSG(ll_tag_names_load(&m, p, &err) != 0 && strstr(err.message, "names_nul.txt:3:") && strstr(err.message, "NUL"),
              "tag names with NUL: %s", err.message);
    ll_labelmap_free(m);
    m = NULL;
    p = write_text("names_dup.txt", "O\nB-PER\nI-PER\nB-PER\n");
    CHECK_MSG(ll_tag_names_load(&m, p, &err) != 0 && strstr(err.message, "names_dup.txt:4:") &&
                  strstr(err.message, "'B-PER'") && strstr(err.message, "line 2"),
              "tag names duplicate: %s", err.message);
    ll_labelmap_free(m);
    m = NULL;
    /* explicit label names: a duplicate names both ids */
    const char *dup[] = {"neg", "pos", "neg"};
    CHECK_MSG(ll_labelmap_from_names(&m, dup, 3, &err) != 0 && strstr(err.message, "'neg'") &&
                  strstr(err.message, "ids 0 and 2"),
              "duplicate names: %s", err.message);
    ll_labelmap_free(m);
}

static void test_file_errors(void) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/a_folder.tsv", tmp_root);
    REQUIRE(mkdir(dir, 0700) == 0);
    ll_data_options o = opts();
    expect_seq_fail("data path is a folder", dir, &o, 0, "a_folder.tsv", "is a folder", NULL);
    ll_token_data_options t;
    ll_token_data_options_default(&t);
    expect_tok_fail("token data path is a folder", dir, &t, 0, "a_folder.tsv", "is a folder", NULL);
    ll_labelmap *m = NULL;
    ll_error err = {0};
    CHECK_MSG(ll_labelmap_load(&m, dir, &err) != 0 && strstr(err.message, "a_folder.tsv") &&
                  strstr(err.message, "is a folder"),
              "label map from a folder: %s", err.message);
    CHECK_MSG(ll_tag_names_load(&m, dir, &err) != 0 && strstr(err.message, "is a folder"), "tag names from a folder: %s",
              err.message);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope.tsv", tmp_root);
    expect_seq_fail("missing data file", missing, &o, 0, "nope.tsv", strerror(ENOENT), NULL);
    if (geteuid() != 0) { /* root reads anything */
        const char *p = write_text("secret.tsv", "sentence\tlabel\na\t1\nb\t0\n");
        REQUIRE(chmod(p, 0) == 0);
        expect_seq_fail("unreadable data file", p, &o, 0, "secret.tsv", strerror(EACCES), NULL);
    }
    /* a model or tokenizer path that is a folder without the expected files */
    ll_model *model = NULL;
    CHECK_MSG(ll_model_load(&model, dir, NULL, &err) != 0 && strstr(err.message, "config.json") &&
                  strstr(err.message, strerror(ENOENT)),
              "model from an empty folder: %s", err.message);
    snprintf(missing, sizeof missing, "%s/nope.gguf", tmp_root);
    CHECK_MSG(ll_model_load(&model, missing, NULL, &err) != 0 && strstr(err.message, "nope.gguf") &&
                  strstr(err.message, strerror(ENOENT)),
              "missing model: %s", err.message);
}

int main(void) {
    REQUIRE(mkdtemp(tmp_root));
    test_field_count();
    test_degenerate();
    test_nul_bytes();
    test_file_errors();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx %s; rm -rf %s", tmp_root, tmp_root);
    (void)system(cmd);
    return test_summary("test_data_safety");
}
