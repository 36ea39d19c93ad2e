/* Token classification data: CoNLL / JSON Lines / raw-line readers, tag
 * validation, bad input with file:line errors, word alignment with the real
 * SmolLM2 tokenizer on CoNLL-2003, windows of long sentences (ownership,
 * context, special tokens), packed batches with token labels, and per-word
 * prediction collection. Real data: ../shared/data/conll2003. */
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

static const char *conll(const char *split) {
    static char b[4][1024];
    static int k;
    char *p = b[k++ % 4];
    snprintf(p, 1024, "%s/data/conll2003/%s.txt", LL_SHARED_DIR, split);
    return p;
}

static const char *write_tmp(const char *name, const char *bytes) {
    return test_write_bytes(tmp_root, name, bytes, strlen(bytes));
}

static ll_token_data_options topts(void) {
    ll_token_data_options o;
    ll_token_data_options_default(&o);
    return o;
}

static ll_dataset *load_mem(const char *text, const char *name, const ll_token_data_options *o) {
    ll_dataset *ds = NULL;
    ll_error err = {0};
    int rc = ll_token_dataset_load_memory(&ds, text, strlen(text), name, o, &err);
    CHECK_MSG(rc == 0, "%s: %s", name, err.message);
    return ds;
}

static int word_is(const ll_dataset *ds, size_t w, const char *text, const char *tag, int line) {
    const char *t = ll_word_raw_tag(ds, w);
    return w < ds->n_words && !strcmp(ll_word_text(ds, w), text) && ((!tag && !t) || (tag && t && !strcmp(t, tag))) &&
           ds->words[w].line == line;
}

/* The load (and, with map, the label mapping) of a file with these bytes fails
 * with code, and the message holds "path:line: " and needle. */
static void expect_bad(const char *what, const char *name, const char *bytes, const ll_token_data_options *o,
                       const ll_labelmap *map, int code, int line, const char *needle) {
    const char *path = write_tmp(name, bytes);
    ll_dataset *ds = NULL;
    ll_error err = {0};
    int rc = ll_token_dataset_load(&ds, path, o, &err);
    if (!rc && map) rc = ll_dataset_apply_labels(ds, map, &err);
    char where[600];
    if (line > 0) snprintf(where, sizeof where, "%s:%d: ", path, line);
    else snprintf(where, sizeof where, "%s", path);
    CHECK_MSG(rc == code && err.code == code && strstr(err.message, where) && strstr(err.message, needle),
              "%s: rc %d, message '%s', want '%s' and '%s'", what, rc, err.message, where, needle);
    ll_dataset_free(ds);
}

/* ---- readers ---------------------------------------------------------------------- */

static void test_conll_small(void) {
    /* DOCSTART, several blank lines, a whitespace-only separator, tabs and runs of
     * spaces between columns, CRLF, a BOM, no trailing newline */
    const char text[] = "\xEF\xBB\xBF-DOCSTART- -X- -X- O\n"     /* 1 */
                        "\n"                                     /* 2 */
                        "EU NNP B-NP B-ORG\n"                    /* 3 */
                        "rejects\tVBZ  B-VP \t O\n"              /* 4 */
                        "\n\n"                                   /* 5, 6 */
                        "  \t \n"                                /* 7 */
                        "Peter NNP B-NP B-PER\n"                 /* 8 */
                        "Blackburn NNP I-NP I-PER\r\n"           /* 9 */
                        " \r\n"                                  /* 10 */
                        "-DOCSTART- -X- -X- O\n"                 /* 11 */
                        "BRUSSELS NNP B-NP B-LOC\n"              /* 12 */
                        "1996-08-22 CD I-NP O";                  /* 13 */
    ll_token_data_options o = topts();
    ll_dataset *ds = load_mem(text, "small.conll", &o);
    REQUIRE(ds);
    CHECK(ds->token_task && ds->format == LL_DATA_CONLL && ds->has_labels);
    CHECK_MSG(ds->n_sent == 3 && ds->n_words == 6 && ds->n == 3, "%zu sentences, %zu words", ds->n_sent, ds->n_words);
    CHECK(word_is(ds, 0, "EU", "B-ORG", 3) && word_is(ds, 1, "rejects", "O", 4) && word_is(ds, 2, "Peter", "B-PER", 8) &&
          word_is(ds, 3, "Blackburn", "I-PER", 9) && word_is(ds, 4, "BRUSSELS", "B-LOC", 12) &&
          word_is(ds, 5, "1996-08-22", "O", 13));
    CHECK(!strcmp(ll_sentence_text(ds, 0), "EU rejects") && !strcmp(ll_sentence_text(ds, 2), "BRUSSELS 1996-08-22"));
    CHECK(ds->sent[1].line == 8 && ds->sent[1].word_off == 2 && ds->sent[1].n_words == 2);
    CHECK(ds->words[1].byte_start == 3 && ds->words[1].byte_end == 10 && ds->words[1].char_start == 3 &&
          ds->words[3].sent == 1);
    /* before tokenizing, each sentence is one window owning all its words */
    CHECK(ds->ex[1].sent == 1 && ds->ex[1].own_lo == 2 && ds->ex[1].own_hi == 4 && ds->ex[1].line == 8);
    /* label map: the sorted tag set; counts per word */
    ll_labelmap *map = NULL;
    ll_error err = {0};
    REQUIRE(ll_labelmap_build(&map, ds, &err) == 0);
    const char *want[] = {"B-LOC", "B-ORG", "B-PER", "I-PER", "O"};
    CHECK(map->n == 5);
    for (int i = 0; i < 5 && i < map->n; i++) CHECK_MSG(!strcmp(map->names[i], want[i]), "%d: %s", i, map->names[i]);
    REQUIRE(ll_dataset_apply_labels(ds, map, &err) == 0);
    CHECK(ds->mapped && ds->o_label == 4 && ds->words[0].tag == 1 && ds->words[5].tag == 4);
    int64_t c[5];
    ll_dataset_label_counts(ds, c);
    CHECK(c[0] == 1 && c[1] == 1 && c[2] == 1 && c[3] == 1 && c[4] == 2);
    ll_dataset_free(ds);
    ll_labelmap_free(map);

    /* tag column by index: the chunk column; words from another column */
    o.tag_column = 2;
    ds = load_mem(text, "small.conll", &o);
    REQUIRE(ds);
    CHECK(word_is(ds, 0, "EU", "B-NP", 3) && word_is(ds, 5, "1996-08-22", "I-NP", 13));
    ll_dataset_free(ds);
    o.word_column = 1;
    o.tag_column = 3;
    ds = load_mem(text, "small.conll", &o);
    REQUIRE(ds);
    CHECK(word_is(ds, 0, "NNP", "B-ORG", 3) && word_is(ds, 5, "CD", "O", 13));
    ll_dataset_free(ds);
    /* the POS column is not an entity tag set unless any_tags */
    o = topts();
    o.tag_column = 1;
    expect_bad("POS as tags", "pos.conll", text, &o, NULL, LL_ERR_FORMAT, 3,
               "tag 'NNP' is not O, B, I, E, S or B-/I-/E-/S-TYPE");
    o.any_tags = 1;
    ds = load_mem(text, "small.conll", &o);
    REQUIRE(ds);
    CHECK(word_is(ds, 1, "rejects", "VBZ", 4) && ds->raw->n == 3);
    ll_dataset_free(ds);
    /* no tags: one column is enough */
    o = topts();
    o.no_tags = 1;
    ds = load_mem("a\nb\n\nc\n", "words.conll", &o);
    REQUIRE(ds);
    CHECK(!ds->has_labels && ds->n_sent == 2 && word_is(ds, 2, "c", NULL, 4));
    ll_dataset_free(ds);
    /* BIOES and IOB1 tag sets are accepted as they are */
    o = topts();
    ds = load_mem("New S-LOC\nYork E-LOC\nx I-PER\n", "bioes.conll", &o);
    CHECK(ds && ds->n_words == 3);
    ll_dataset_free(ds);
    /* tags without a type (biomedical corpora: B I O, B I O E S) and the other tags seqeval reads without a
     * warning: "B-" (empty type), several dashes; issue 11's example file */
    ds = load_mem("Aspirin B\ninduced O\nhepatic B\ninjury I\n. O\n\nNo O\nadverse O\nreaction B\n", "bio.conll", &o);
    CHECK(ds && ds->n_sent == 2 && ds->n_words == 8 && ds->raw->n == 3 && word_is(ds, 3, "injury", "I", 4));
    ll_dataset_free(ds);
    ds = load_mem("a E\nb S\nc B-\nd I-ORG-X\ne E-\nf S-A-B-C\n", "odd.conll", &o);
    CHECK(ds && ds->n_words == 6 && word_is(ds, 2, "c", "B-", 3) && word_is(ds, 3, "d", "I-ORG-X", 4));
    ll_dataset_free(ds);
    /* the word and tag columns cannot be the same */
    o.tag_column = 0;
    ll_error e2 = {0};
    CHECK(ll_token_dataset_load_memory(&ds, "a O\n", 4, "x.conll", &o, &e2) == LL_ERR_ARG);
}

static void test_jsonl(void) {
    ll_token_data_options o = topts();
    const char text[] = "{\"tokens\": [\"EU\", \"rejects\", \"German\"], \"ner_tags\": [\"B-ORG\", \"O\", \"B-MISC\"]}\n"
                        "\n"
                        "{\"id\": 7, \"ner_tags\": [\"B-PER\", \"I-PER\"], \"tokens\": [\"Peter\", \"Blackburn\"]}\n";
    ll_dataset *ds = load_mem(text, "s.jsonl", &o);
    REQUIRE(ds);
    CHECK(ds->format == LL_DATA_JSONL && ds->n_sent == 2 && ds->n_words == 5);
    CHECK(word_is(ds, 2, "German", "B-MISC", 1) && word_is(ds, 4, "Blackburn", "I-PER", 3) && ds->sent[1].line == 3);
    CHECK(!strcmp(ll_sentence_text(ds, 0), "EU rejects German") && ds->words[2].char_start == 11);
    ll_dataset_free(ds);

    /* integer tags through tag names: a JSON array, a text file, a label-map file */
    const char ints[] = "{\"words\": [\"EU\", \"rejects\", \"Köln\"], \"tags\": [3, 0, 5]}\n";
    o.tokens_field = "words";
    o.tags_field = "tags";
    const char *lists[3] = {
        write_tmp("names.json", "[\"O\", \"B-PER\", \"I-PER\", \"B-ORG\", \"I-ORG\", \"B-LOC\", \"I-LOC\"]"),
        write_tmp("names.txt", "O\nB-PER\nI-PER\nB-ORG\r\nI-ORG\nB-LOC\nI-LOC\n\n"),
        write_tmp("map.json", "{\"id2label\": {\"0\": \"O\", \"1\": \"B-PER\", \"2\": \"I-PER\", \"3\": \"B-ORG\", "
                              "\"4\": \"I-ORG\", \"5\": \"B-LOC\", \"6\": \"I-LOC\"}}")};
    for (int k = 0; k < 3; k++) {
        ll_labelmap *names = NULL;
        ll_error err = {0};
        int rc = ll_tag_names_load(&names, lists[k], &err);
        CHECK_MSG(rc == 0 && names && names->n == 7, "%s: %s", lists[k], err.message);
        if (rc) continue;
        o.tag_names = names;
        ds = load_mem(ints, "i.jsonl", &o);
        CHECK(ds && word_is(ds, 0, "EU", "B-ORG", 1) && word_is(ds, 1, "rejects", "O", 1) &&
              word_is(ds, 2, "Köln", "B-LOC", 1));
        CHECK(ds && ds->words[2].byte_end - ds->words[2].byte_start == 5 &&
              ds->words[2].char_end - ds->words[2].char_start == 4);
        ll_dataset_free(ds);
        /* out of range */
        expect_bad("tag id out of range", "range.jsonl", "{\"words\": [\"a\"], \"tags\": [7]}\n", &o, NULL,
                   LL_ERR_FORMAT, 1, "tags[0] = 7 is outside the 7 tag names");
        ll_labelmap_free(names);
    }
    o.tag_names = NULL;
    expect_bad("integer tags without names", "nonames.jsonl", ints, &o, NULL, LL_ERR_FORMAT, 1,
               "integer tags need tag names");
    /* bad tag-name lists */
    ll_labelmap *names = NULL;
    ll_error err = {0};
    const char *gap = write_tmp("gap.txt", "O\n\nB-PER\n");
    CHECK(ll_tag_names_load(&names, gap, &err) == LL_ERR_FORMAT && strstr(err.message, "gap.txt:2: blank line"));
    const char *dup = write_tmp("dup.json", "[\"O\", \"O\"]");
    CHECK(ll_tag_names_load(&names, dup, &err) == LL_ERR_FORMAT && strstr(err.message, "appears twice") &&
          strstr(err.message, "dup.json"));
}

static void test_lines_format(ll_tokenizer *tok) {
    ll_token_data_options o = topts();
    o.format = LL_DATA_LINES;
    const char text[] = "  Peter Blackburn\tvisited   Brüssel.\r\n"  /* 1 */
                        "\n"                                      /* 2 */
                        " \t \n"                                  /* 3 */
                        "Zürich";                                 /* 4 */
    ll_dataset *ds = load_mem(text, "raw.txt", &o);
    REQUIRE(ds);
    CHECK(!ds->has_labels && ds->n_sent == 2 && ds->n_words == 5);
    CHECK(!strcmp(ll_sentence_text(ds, 0), "  Peter Blackburn\tvisited   Brüssel."));
    const ll_word *w = ds->words;
    CHECK(word_is(ds, 3, "Brüssel.", NULL, 1) && word_is(ds, 4, "Zürich", NULL, 4) && ds->sent[1].line == 4);
    CHECK(w[0].byte_start == 2 && w[0].byte_end == 7 && w[1].byte_start == 8 && w[2].byte_start == 18);
    CHECK(w[3].byte_start == 28 && w[3].byte_end == 37 && w[3].char_start == 28 && w[3].char_end == 36);
    CHECK(w[4].byte_start == 0 && w[4].byte_end == 7 && w[4].char_end == 6);
    for (size_t i = 0; i < ds->n_words; i++) {
        const char *s = ll_sentence_text(ds, (size_t)w[i].sent);
        CHECK(!memcmp(s + w[i].byte_start, ll_word_text(ds, i), (size_t)(w[i].byte_end - w[i].byte_start)));
    }
    if (tok) {
        /* unlabelled windows: no token carries a label; predictions come back per word */
        ll_error err = {0};
        REQUIRE(ll_token_dataset_tokenize(ds, tok, 64, NULL, &err) == 0);
        size_t labelled = 0;
        for (size_t t = 0; t < ds->tokens_len; t++) labelled += ds->tok_labels[t] != LL_IGNORE_LABEL;
        CHECK(labelled == 0 && ds->n == 2);
        const char *names[] = {"B-LOC", "B-PER", "I-PER", "O"};
        ll_labelmap *map = NULL;
        REQUIRE(ll_labelmap_from_names(&map, names, 4, &err) == 0);
        ll_batching_options bo = {.max_batch_tokens = 1000};
        ll_batch_plan plan;
        ll_batch_buf buf = {0};
        REQUIRE(ll_batch_plan_make(&plan, ds, &bo, &err) == 0 && plan.n_batches == 1);
        REQUIRE(ll_batch_fill(&buf, ds, &plan, 0, &err) == 0);
        /* fake logits: each token votes for its word index mod 4 */
        float *logits = calloc(buf.n_tokens * 4, sizeof *logits);
        int32_t pred[5];
        float score[5];
        REQUIRE(logits);
        for (int s = 0; s < buf.batch.n_seqs; s++) {
            const ll_example *e = &ds->ex[buf.example_ids[s]];
            for (int32_t t = 0; t < e->n_tok; t++) {
                int32_t wi = ds->tok_words[e->tok_off + (size_t)t];
                if (wi >= 0) logits[(size_t)(buf.seq_start[s] + t) * 4 + (size_t)(wi % 4)] = 5.0f;
            }
        }
        CHECK(ll_token_collect_batch(ds, &buf, logits, map, pred, score, &err) == 0);
        int ok = 1;
        for (int i = 0; i < 5; i++) ok &= pred[i] == i % 4 && fabsf(score[i] - expf(5) / (expf(5) + 3)) < 1e-5f;
        CHECK(ok);
        free(logits);
        ll_batch_buf_free(&buf);
        ll_batch_plan_free(&plan);
        ll_labelmap_free(map);
    }
    ll_dataset_free(ds);
}

/* ---- bad input -------------------------------------------------------------------------- */

static void test_bad_input(ll_tokenizer *tok, ll_tokenizer *llama) {
    ll_token_data_options o = topts();
    expect_bad("ragged (tag column last)", "ragged.conll", "EU NNP B-NP B-ORG\nrejects VBZ O\n", &o, NULL,
               LL_ERR_FORMAT, 2, "3 columns, but line 1 has 4");
    expect_bad("too few columns", "few.conll", "EU NNP B-NP B-ORG\n\n\nrejects\n", &o, NULL, LL_ERR_FORMAT, 4,
               "1 column, need 2");
    o.tag_column = 3;
    expect_bad("too few columns (tag column 3)", "few3.conll", "EU NNP B-NP B-ORG\nrejects VBZ O\n", &o, NULL,
               LL_ERR_FORMAT, 2, "3 columns, need 4 (word column 0, tag column 3)");
    o = topts();
    /* tags seqeval warns about are refused; the message names the option that reads them */
    expect_bad("bad prefix", "xper.conll", "a O\nb X-PER\n", &o, NULL, LL_ERR_FORMAT, 2,
               "tag 'X-PER' is not O, B, I, E, S or B-/I-/E-/S-TYPE, the tags seqeval reads without a warning "
               "(case matters; --any-tags reads any tag");
    expect_bad("O with a type", "oper.conll", "a O-PER\n", &o, NULL, LL_ERR_FORMAT, 1, "tag 'O-PER' is not O");
    expect_bad("prefix without dash", "bper.conll", "a BPER\n", &o, NULL, LL_ERR_FORMAT, 1, "tag 'BPER' is not O");
    expect_bad("lowercase o", "lower.conll", "a O\n\nb o\n", &o, NULL, LL_ERR_FORMAT, 3, "tag 'o' is not O");
    expect_bad("invalid UTF-8 (CoNLL)", "u8.conll", "a O\nb\xC3\x28 O\n", &o, NULL, LL_ERR_FORMAT, 2,
               "invalid UTF-8 at byte 2");
    expect_bad("invalid UTF-8 (JSONL)", "u8.jsonl", "{\"tokens\": [\"a\", \"b\xff\"], \"ner_tags\": [\"O\", \"O\"]}\n", &o,
               NULL, LL_ERR_FORMAT, 1, "invalid UTF-8 in tokens[1]");
    expect_bad("empty sentence", "empty.jsonl",
               "{\"tokens\": [\"a\"], \"ner_tags\": [\"O\"]}\n{\"tokens\": [], \"ner_tags\": []}\n", &o, NULL,
               LL_ERR_FORMAT, 2, "empty sentence");
    expect_bad("length mismatch", "len.jsonl", "\n{\"tokens\": [\"a\", \"b\"], \"ner_tags\": [\"O\"]}\n", &o, NULL,
               LL_ERR_FORMAT, 2, "'tokens' has 2 entries, 'ner_tags' 1");
    expect_bad("missing tags", "mt.jsonl", "{\"tokens\": [\"a\"]}\n", &o, NULL, LL_ERR_FORMAT, 1,
               "missing field 'ner_tags'");
    expect_bad("token not a string", "ns.jsonl", "{\"tokens\": [1], \"ner_tags\": [\"O\"]}\n", &o, NULL, LL_ERR_FORMAT,
               1, "tokens[0] is not a string");
    expect_bad("malformed JSON", "mf.jsonl", "{\"tokens\": [\"a\"], \"ner_tags\": [\"O\"]\n", &o, NULL, LL_ERR_FORMAT, 1,
               "malformed JSON");
    expect_bad("no sentences", "blank.conll", "-DOCSTART- -X- -X- O\n\n \n", &o, NULL, LL_ERR_FORMAT, 0,
               ": no sentences");
    o.format = LL_DATA_LINES;
    expect_bad("invalid UTF-8 (lines)", "u8.txt", "fine\n\nbad \xff line\n", &o, NULL, LL_ERR_FORMAT, 3,
               "invalid UTF-8 at byte 5");
    o = topts();
    {
        char missing[512];
        snprintf(missing, sizeof missing, "%s/nope.conll", tmp_root);
        ll_dataset *ds = NULL;
        ll_error err = {0};
        CHECK(ll_token_dataset_load(&ds, missing, &o, &err) == LL_ERR_IO && strstr(err.message, missing));
    }

    /* a dev tag absent from the train map: file, the word's line and the tag */
    ll_labelmap *map = NULL;
    ll_error err = {0};
    const char *names[] = {"B-PER", "I-PER", "O"};
    REQUIRE(ll_labelmap_from_names(&map, names, 3, &err) == 0);
    expect_bad("unknown tag", "dev.conll", "a O\nb B-PER\n\nc O\nd B-FOO\ne O\n", &o, map, LL_ERR_FORMAT, 5,
               "tag 'B-FOO' is not in the label map (3 labels: B-PER, I-PER, ...)");

    /* skip_invalid: each bad sentence dropped whole and counted */
    o.skip_invalid = 1;
    const char mixed[] = "good O\none B-PER\n\n"   /* 1-2 kept */
                         "rag O x\nmore O\n\n"     /* 4: ragged (3 columns) */
                         "bad X-PER\n\n"           /* 7: bad tag */
                         "u\xff O\n\n"             /* 9: invalid UTF-8 */
                         "unk B-FOO\nz O\n\n"      /* 11: not in the map (at mapping) */
                         "last O\nword O";         /* 14-15 kept, no newline */
    ll_dataset *ds = NULL;
    int rc = ll_token_dataset_load_memory(&ds, mixed, sizeof mixed - 1, "mixed.conll", &o, &err);
    CHECK_MSG(rc == 0, "%s", err.message);
    if (!rc) {
        CHECK_MSG(ds->n_sent == 3 && ds->n_words == 6 && ds->n_skipped == 3, "%zu sentences %zu words %zu skipped",
                  ds->n_sent, ds->n_words, ds->n_skipped);
        CHECK_MSG(strstr(ds->first_skip, "mixed.conll:4: 3 columns, but line 1 has 2"), "%s", ds->first_skip);
        rc = ll_dataset_apply_labels(ds, map, &err);
        CHECK_MSG(rc == 0 && ds->n_sent == 2 && ds->n_words == 4 && ds->n_skipped == 4 && ds->n == 2, "%s",
                  err.message);
        CHECK(word_is(ds, 2, "last", "O", 14) && ds->words[3].sent == 1 && ds->sent[1].word_off == 2 &&
              ds->ex[1].own_lo == 2 && ds->ex[1].own_hi == 4);
        ll_dataset_free(ds);
    }
    o.format = LL_DATA_JSONL;
    const char skip[] = "{\"tokens\": [], \"ner_tags\": []}\n{\"tokens\": [\"x\"], \"ner_tags\": [\"O\"]}\n";
    rc = ll_token_dataset_load_memory(&ds, skip, sizeof skip - 1, "skip.jsonl", &o, &err);
    CHECK_MSG(rc == 0 && ds && ds->n_sent == 1 && ds->n_skipped == 1 && ds->sent[0].line == 2, "%s", err.message);
    ll_dataset_free(ds);
    ds = NULL;
    rc = ll_token_dataset_load_memory(&ds, skip, 31, "allbad.jsonl", &o, &err); /* the first row only */
    CHECK_MSG(rc == LL_ERR_FORMAT && strstr(err.message, "no valid sentences (1 skipped; first: allbad.jsonl:1: empty"),
              "%s", err.message);

    /* tokenization limits */
    o = topts();
    ds = load_mem("a O\nb B-PER\n", "t.conll", &o);
    REQUIRE(ds);
    REQUIRE(ll_dataset_apply_labels(ds, map, &err) == 0);
    if (tok) {
        rc = ll_token_dataset_tokenize(ds, tok, 0, NULL, &err);
        CHECK_MSG(rc == LL_ERR_ARG && strstr(err.message, "--max-length 0: must be at least 1"), "%s", err.message);
        /* SmolLM2 adds no special tokens: one token of room is enough */
        rc = ll_token_dataset_tokenize(ds, tok, 1, NULL, &err);
        CHECK_MSG(rc == 0 && ds->n == 2 && ds->tokens_len == 2, "%s", err.message);
        rc = ll_dataset_apply_labels(ds, map, &err);
        CHECK_MSG(rc == LL_ERR_ARG && strstr(err.message, "before tokenizing"), "%s", err.message);
    }
    if (llama) {
        /* Llama 2 adds BOS: max length 1 leaves no room */
        rc = ll_token_dataset_tokenize(ds, llama, 1, NULL, &err);
        CHECK_MSG(rc == LL_ERR_ARG && strstr(err.message, "--max-length 1 leaves no room for a word token") &&
                      strstr(err.message, "1 special token"),
                  "%s", err.message);
        rc = ll_token_dataset_tokenize(ds, llama, 2, NULL, &err);
        CHECK_MSG(rc == 0 && ds->n == 2 && ds->tokens_len == 4, "%s", err.message);
    }
    ll_dataset_free(ds);
    /* a CoNLL file given to the classification reader */
    ll_data_options co;
    ll_data_options_default(&co);
    co.format = LL_DATA_CONLL;
    CHECK(ll_dataset_load_memory(&ds, "a O\n", 4, "c.conll", &co, &err) == LL_ERR_ARG && strstr(err.message, "c.conll"));
    ll_labelmap_free(map);
}

/* ---- alignment and windows on real data ------------------------------------------------------- */

/* Load a CoNLL split, map with *map (built from it when NULL). */
static ll_dataset *load_conll(const char *split, ll_labelmap **map) {
    ll_dataset *ds = NULL;
    ll_error err = {0};
    int rc = ll_token_dataset_load(&ds, conll(split), NULL, &err);
    CHECK_MSG(rc == 0, "%s", err.message);
    if (rc) return NULL;
    if (!*map) REQUIRE(ll_labelmap_build(map, ds, &err) == 0);
    rc = ll_dataset_apply_labels(ds, *map, &err);
    CHECK_MSG(rc == 0, "%s", err.message);
    return ds;
}

static void test_conll2003_counts(void) {
    static const struct { const char *split; size_t sents, words; int64_t per, loc, org, misc; } want[3] = {
        {"train", 14041, 203621, 6600, 7140, 6321, 3438},
        {"valid", 3250, 51362, 1842, 1837, 1341, 922},
        {"test", 3453, 46435, 1617, 1668, 1661, 702}};
    ll_labelmap *map = NULL;
    for (int k = 0; k < 3; k++) {
        double t0 = now_s();
        ll_dataset *ds = load_conll(want[k].split, &map);
        double t1 = now_s();
        if (!ds) continue;
        CHECK_MSG(ds->n_sent == want[k].sents && ds->n_words == want[k].words, "%s: %zu sentences, %zu words",
                  want[k].split, ds->n_sent, ds->n_words);
        CHECK(ds->n == ds->n_sent && ds->n_skipped == 0);
        if (k == 0) {
            /* 9 tags: O and B-/I- of 4 types (this copy is IOB2: every entity starts with B-) */
            CHECK(map->n == 9 && ds->raw->n == 9 && !strcmp(map->names[0], "B-LOC") && !strcmp(map->names[8], "O"));
            CHECK(ds->words[0].line == 3 && !strcmp(ll_word_text(ds, 0), "EU"));
        }
        int64_t c[9] = {0};
        ll_dataset_label_counts(ds, c);
        int per = ll_labelmap_find(map, "B-PER", 5), loc = ll_labelmap_find(map, "B-LOC", 5),
            org = ll_labelmap_find(map, "B-ORG", 5), misc = ll_labelmap_find(map, "B-MISC", 6);
        CHECK_MSG(c[per] == want[k].per && c[loc] == want[k].loc && c[org] == want[k].org && c[misc] == want[k].misc,
                  "%s: B-PER %lld B-LOC %lld B-ORG %lld B-MISC %lld", want[k].split, (long long)c[per],
                  (long long)c[loc], (long long)c[org], (long long)c[misc]);
        int64_t total = 0;
        for (int i = 0; i < 9; i++) total += c[i];
        CHECK((size_t)total == ds->n_words);
        printf("CoNLL-2003 %s: %zu sentences, %zu words, load + map %.3f s\n", want[k].split, ds->n_sent, ds->n_words,
               t1 - t0);
        ll_dataset_free(ds);
    }
    ll_labelmap_free(map);
}

/* Checks that hold for any tokenized token dataset. */
static void check_windows(const char *what, const ll_dataset *ds, ll_tokenizer *tok, int max_length, int label_all) {
    int *owned = calloc(ds->n_words ? ds->n_words : 1, sizeof *owned);
    REQUIRE(owned);
    const int bos = ll_tokenizer_bos_id(tok);
    int adds_bos = 0;
    {
        ll_encoding enc = {0};
        ll_error err;
        REQUIRE(ll_tokenizer_encode(tok, "x", 1, LL_TOK_DEFAULT, &enc, &err) == 0);
        adds_bos = enc.n > 0 && enc.ids[0] == bos && enc.byte_end[0] == 0;
        ll_encoding_free(&enc);
    }
    ll_encoding enc = {0};
    const char *ptrs[512];
    int32_t wf[512], we[512], enc_sent = -1;
    size_t too_long = 0, bad_own = 0, bad_bos = 0, bad_edges = 0, bad_first = 0, labelled = 0, bad_labels = 0;
    size_t windows_split = 0, bad_context = 0, with_left = 0, with_right = 0, need_left = 0, need_right = 0;
    for (size_t i = 0; i < ds->n; i++) {
        const ll_example *e = &ds->ex[i];
        const ll_sentence *S = &ds->sent[e->sent];
        const int32_t *ids = ds->tokens + e->tok_off, *tw = ds->tok_words + e->tok_off, *tl = ds->tok_labels + e->tok_off;
        too_long += e->n_tok > max_length || e->n_tok < 1;
        bad_own += !(S->word_off <= e->word_lo && e->word_lo <= e->own_lo && e->own_lo < e->own_hi &&
                     e->own_hi <= e->word_hi && e->word_hi <= S->word_off + S->n_words);
        if (adds_bos) bad_bos += ids[0] != bos;
        for (int32_t w = e->own_lo; w < e->own_hi; w++) owned[w]++;
        /* word boundaries: the first/last word token of the window belongs to word_lo / word_hi - 1 */
        int32_t t0 = 0, t1 = e->n_tok - 1;
        while (t0 < e->n_tok && tw[t0] < 0) t0++;
        while (t1 >= 0 && tw[t1] < 0) t1--;
        if (t0 <= t1) {
            int32_t lo = e->word_lo, hi = e->word_hi - 1;
            while (lo < hi && ds->words[lo].n_tok == 0) lo++;
            while (hi > lo && ds->words[hi].n_tok == 0) hi--;
            bad_edges += tw[t0] != lo || tw[t1] != hi;
        }
        for (int32_t t = 0; t < e->n_tok; t++) {
            if (tl[t] == LL_IGNORE_LABEL) continue;
            labelled++;
            int32_t w = tw[t];
            bad_labels += w < e->own_lo || w >= e->own_hi || ds->words[w].tag != tl[t] ||
                          (!label_all && ds->words[w].first != t);
        }
        if (S->n_ex > 1) {
            /* context: a window has words on each side where the sentence has more, unless
             * the next word would not fit (measured on the whole sentence's encoding) */
            windows_split++;
            int first = e->own_lo == S->word_off, last = e->own_hi == S->word_off + S->n_words;
            int left = e->word_lo < e->own_lo, right = e->word_hi > e->own_hi;
            need_left += !first;
            need_right += !last;
            with_left += !first && left;
            with_right += !last && right;
            if ((!first && !left) || (!last && !right)) {
                if (enc_sent != e->sent) {
                    REQUIRE(S->n_words <= 512);
                    for (int32_t k = 0; k < S->n_words; k++) ptrs[k] = ll_word_text(ds, (size_t)(S->word_off + k));
                    ll_error err;
                    REQUIRE(ll_tokenizer_align_words(tok, ptrs, (size_t)S->n_words, LL_TOK_DEFAULT, &enc, wf, we,
                                                     &err) == 0);
                    enc_sent = e->sent;
                }
                int32_t ts = INT32_MAX, te = -1;
                for (int32_t w = e->word_lo; w < e->word_hi; w++) {
                    int32_t k = w - S->word_off;
                    if (we[k] > wf[k]) { ts = wf[k] < ts ? wf[k] : ts; te = we[k] > te ? we[k] : te; }
                }
                int32_t room = max_length - (e->n_tok - (te - ts));
                if (!first && !left) {
                    int32_t k = e->own_lo - 1 - S->word_off;
                    bad_context += we[k] > wf[k] && te - (wf[k] < ts ? wf[k] : ts) <= room;
                }
                if (!last && !right) {
                    int32_t k = e->own_hi - S->word_off;
                    bad_context += we[k] > wf[k] && (we[k] > te ? we[k] : te) - ts <= room;
                }
            }
        }
    }
    size_t not_once = 0, empty = 0, tokens_of_owned = 0;
    for (size_t w = 0; w < ds->n_words; w++) {
        const ll_word *W = &ds->words[w];
        not_once += owned[w] != 1;
        empty += W->n_tok == 0;
        tokens_of_owned += (size_t)W->n_tok;
        if (W->n_tok == 0) { bad_first += W->first != -1; continue; }
        const ll_example *e = &ds->ex[W->owner];
        bad_first += W->first < 0 || W->first >= e->n_tok || ds->tok_words[e->tok_off + (size_t)W->first] != (int32_t)w ||
                     (int32_t)w < e->own_lo || (int32_t)w >= e->own_hi;
    }
    CHECK_MSG(too_long == 0, "%s: %zu windows longer than %d (or empty)", what, too_long, max_length);
    CHECK_MSG(bad_own == 0, "%s: %zu windows with bad word ranges", what, bad_own);
    CHECK_MSG(not_once == 0, "%s: %zu words not owned exactly once", what, not_once);
    CHECK_MSG(bad_bos == 0, "%s: %zu windows without BOS", what, bad_bos);
    CHECK_MSG(bad_edges == 0, "%s: %zu windows not cut at word boundaries", what, bad_edges);
    CHECK_MSG(bad_first == 0, "%s: %zu words whose first token is wrong", what, bad_first);
    CHECK_MSG(bad_labels == 0, "%s: %zu labels on the wrong token", what, bad_labels);
    CHECK_MSG(empty == ds->n_empty_words, "%s: %zu empty words, counted %zu", what, empty, ds->n_empty_words);
    if (!label_all)
        CHECK_MSG(labelled == ds->n_words - ds->n_empty_words, "%s: %zu labelled tokens, %zu words (%zu empty)", what,
                  labelled, ds->n_words, ds->n_empty_words);
    else if (ds->n_cut_words == 0)
        CHECK_MSG(labelled == tokens_of_owned, "%s: %zu labelled tokens, words have %zu", what, labelled,
                  tokens_of_owned);
    CHECK_MSG(bad_context == 0, "%s: %zu window sides without context where a word would fit", what, bad_context);
    printf("%s: %zu sentences -> %zu windows (%zu split; of their %zu windows %zu/%zu have left, %zu/%zu right "
           "context), %zu tokens, %zu empty words, %zu cut words\n", what, ds->n_sent, ds->n, ds->n_split,
           windows_split, with_left, need_left, with_right, need_right, ds->tokens_len, ds->n_empty_words,
           ds->n_cut_words);
    ll_encoding_free(&enc);
    free(owned);
}

/* Labels and the token stream of every split sentence agree with one encoding of the whole sentence. */
static void check_alignment(const char *what, const ll_dataset *ds, ll_tokenizer *tok, size_t max_sent) {
    ll_encoding enc = {0};
    ll_error err = {0};
    size_t words = 0, bad_span = 0, bad_decode = 0, bad_label = 0, bad_other = 0, shown = 0;
    const char *ptrs[512];
    int32_t wf[512], we[512];
    for (size_t s = 0; s < ds->n_sent && s < max_sent; s++) {
        const ll_sentence *S = &ds->sent[s];
        if (S->n_words > 512) continue;
        for (int32_t k = 0; k < S->n_words; k++) ptrs[k] = ll_word_text(ds, (size_t)(S->word_off + k));
        REQUIRE(ll_tokenizer_align_words(tok, ptrs, (size_t)S->n_words, LL_TOK_DEFAULT, &enc, wf, we, &err) == 0);
        for (int32_t k = 0; k < S->n_words; k++) {
            const size_t w = (size_t)(S->word_off + k);
            const ll_word *W = &ds->words[w];
            words++;
            if (W->n_tok != we[k] - wf[k]) { bad_other++; continue; }
            if (!W->n_tok) continue;
            /* the first token starts at the word or on the space before it */
            int64_t b0 = enc.byte_start[wf[k]];
            bad_span += !(b0 == W->byte_start || b0 == W->byte_start - 1);
            /* the word's tokens in its owner window are the same ids and decode to the word */
            const ll_example *e = &ds->ex[W->owner];
            const int32_t *ids = ds->tokens + e->tok_off + W->first;
            size_t n = (size_t)W->n_tok;
            if (W->first + W->n_tok > e->n_tok) n = (size_t)(e->n_tok - W->first); /* a cut word */
            if (memcmp(ids, enc.ids + wf[k], n * sizeof *ids)) { bad_other++; continue; }
            char *dec = NULL;
            size_t dl = 0;
            REQUIRE(ll_tokenizer_decode(tok, ids, n, 0, &dec, &dl, &err) == 0);
            const char *d = dec;
            if (dl && d[0] == ' ') { d++; dl--; }
            if (n == (size_t)W->n_tok && (dl != W->len || memcmp(d, ll_word_text(ds, w), dl))) {
                if (shown++ < 5) fprintf(stderr, "%s: word '%s' decodes to '%s'\n", what, ll_word_text(ds, w), dec);
                bad_decode++;
            }
            free(dec);
            /* the label sits on the first sub-token only */
            const int32_t *tl = ds->tok_labels + e->tok_off + W->first;
            bad_label += tl[0] != W->tag;
            for (size_t j = 1; j < n; j++) bad_label += tl[j] != LL_IGNORE_LABEL;
        }
    }
    CHECK_MSG(bad_span == 0, "%s: %zu of %zu words: first token not at the word", what, bad_span, words);
    CHECK_MSG(bad_decode == 0, "%s: %zu of %zu words do not decode to themselves", what, bad_decode, words);
    CHECK_MSG(bad_label == 0, "%s: %zu labels not on first sub-tokens", what, bad_label);
    CHECK_MSG(bad_other == 0, "%s: %zu words whose tokens differ from the sentence encoding", what, bad_other);
    ll_encoding_free(&enc);
}

/* Batches carry the dataset's token labels; collected predictions come from first tokens. */
static void check_batches(const char *what, const ll_dataset *ds, const ll_labelmap *map) {
    ll_error err = {0};
    ll_batching_options bo = {.max_batch_tokens = 256, .shuffle = 1, .seed = 7};
    ll_batch_plan plan;
    ll_batch_buf buf = {0};
    REQUIRE(ll_batch_plan_make(&plan, ds, &bo, &err) == 0);
    REQUIRE(ll_batch_buf_reserve(&buf, plan.max_tokens, plan.max_seqs, map->n, &err) == 0);
    const int32_t *tp = buf.tokens, *lp = buf.token_labels;
    const size_t K = (size_t)map->n;
    float *logits = malloc(plan.max_tokens * K * sizeof *logits);
    int32_t *pred = malloc(ds->n_words * sizeof *pred);
    float *score = malloc(ds->n_words * sizeof *score);
    REQUIRE(logits && pred && score);
    for (size_t w = 0; w < ds->n_words; w++) pred[w] = -2;
    size_t labelled = 0, mismatch = 0, moved = 0;
    for (size_t b = 0; b < plan.n_batches; b++) {
        REQUIRE(ll_batch_fill(&buf, ds, &plan, b, &err) == 0);
        moved += buf.tokens != tp || buf.token_labels != lp;
        for (int s = 0; s < buf.batch.n_seqs; s++) {
            const ll_example *e = &ds->ex[buf.example_ids[s]];
            mismatch += memcmp(buf.token_labels + buf.seq_start[s], ds->tok_labels + e->tok_off,
                               (size_t)e->n_tok * sizeof *buf.token_labels) != 0;
        }
        /* logits: a labelled token votes for its label, any other token for a wrong one */
        for (size_t t = 0; t < buf.n_tokens; t++) {
            int32_t l = buf.token_labels[t];
            labelled += l != LL_IGNORE_LABEL;
            for (size_t k = 0; k < K; k++) logits[t * K + k] = 0.0f;
            if (l != LL_IGNORE_LABEL) logits[t * K + (size_t)l] = 4.0f;
            else logits[t * K + (t % K)] = 4.0f;
        }
        REQUIRE(ll_token_collect_batch(ds, &buf, logits, map, pred, score, &err) == 0);
    }
    size_t wrong = 0, unset = 0;
    for (size_t w = 0; w < ds->n_words; w++) {
        unset += pred[w] == -2;
        int32_t want = ds->words[w].n_tok ? ds->words[w].tag : ds->o_label;
        wrong += pred[w] != want || (ds->words[w].n_tok && fabsf(score[w] - expf(4) / (expf(4) + (float)K - 1)) > 1e-5f);
    }
    CHECK_MSG(moved == 0, "%s: batch buffers reallocated after reserve", what);
    CHECK_MSG(mismatch == 0, "%s: %zu sequences whose token labels differ from the dataset", what, mismatch);
    CHECK_MSG(labelled == ds->n_words - ds->n_empty_words, "%s: %zu labelled tokens in batches", what, labelled);
    CHECK_MSG(unset == 0 && wrong == 0, "%s: %zu words without a prediction, %zu wrong", what, unset, wrong);
    free(logits);
    free(pred);
    free(score);
    ll_batch_buf_free(&buf);
    ll_batch_plan_free(&plan);
}

static void test_conll2003_windows(ll_tokenizer *tok, ll_tokenizer *llama) {
    ll_labelmap *map = NULL;
    ll_dataset *ds = load_conll("train", &map);
    REQUIRE(ds);
    ll_error err = {0};
    if (tok) {
        /* whole sentences (the longest CoNLL sentence fits in 256 tokens) */
        double t0 = now_s();
        REQUIRE(ll_token_dataset_tokenize(ds, tok, 256, NULL, &err) == 0);
        double t1 = now_s();
        printf("CoNLL-2003 train: tokenize + align (SmolLM2, max length 256) %.3f s\n", t1 - t0);
        CHECK(ds->n == ds->n_sent && ds->n_split == 0);
        check_windows("train, SmolLM2, 256", ds, tok, 256, 0);
        check_alignment("train, SmolLM2, 256", ds, tok, 3000);
        check_batches("train, SmolLM2, 256", ds, map);
        /* small windows: every long sentence split */
        REQUIRE(ll_token_dataset_tokenize(ds, tok, 16, NULL, &err) == 0);
        CHECK(ds->n > ds->n_sent && ds->n_split > 1000);
        check_windows("train, SmolLM2, 16", ds, tok, 16, 0);
        check_alignment("train, SmolLM2, 16", ds, tok, 3000);
        check_batches("train, SmolLM2, 16", ds, map);
        /* all sub-tokens labelled */
        ll_token_tokenize_options to = {.label_all_subtokens = 1};
        REQUIRE(ll_token_dataset_tokenize(ds, tok, 16, &to, &err) == 0);
        check_windows("train, SmolLM2, 16, all sub-tokens", ds, tok, 16, 1);
        /* a smaller core: more windows, still each word once */
        to = (ll_token_tokenize_options){.own_tokens = 3};
        REQUIRE(ll_token_dataset_tokenize(ds, tok, 16, &to, &err) == 0);
        check_windows("train, SmolLM2, 16, own 3", ds, tok, 16, 0);
        /* the classification entry point does the same */
        REQUIRE(ll_dataset_tokenize(ds, tok, 16, &err) == 0);
        check_windows("train, SmolLM2, 16 (ll_dataset_tokenize)", ds, tok, 16, 0);
    }
    if (llama) {
        REQUIRE(ll_token_dataset_tokenize(ds, llama, 16, NULL, &err) == 0);
        check_windows("train, Llama 2 (BOS), 16", ds, llama, 16, 0);
        check_alignment("train, Llama 2 (BOS), 16", ds, llama, 3000);
        check_batches("train, Llama 2 (BOS), 16", ds, map);
        /* max length 3: BOS + 2 tokens; long words are cut and keep their first tokens */
        REQUIRE(ll_token_dataset_tokenize(ds, llama, 3, NULL, &err) == 0);
        CHECK(ds->n_cut_words > 0);
        check_windows("train, Llama 2 (BOS), 3", ds, llama, 3, 0);
        check_batches("train, Llama 2 (BOS), 3", ds, map);
    }
    ll_dataset_free(ds);
    ll_labelmap_free(map);
}

/* Words that encode to nothing keep their tag, get no token and are predicted O. */
static void test_empty_words(ll_tokenizer *tok) {
    if (!tok) return;
    ll_token_data_options o = topts();
    const char text[] = "{\"tokens\": [\"EU\", \"\", \"rejects\", \"\"], \"ner_tags\": [\"B-ORG\", \"B-PER\", \"O\", \"O\"]}\n"
                        "{\"tokens\": [\"\"], \"ner_tags\": [\"O\"]}\n"
                        "{\"tokens\": [\"Peter\", \"Blackburn\"], \"ner_tags\": [\"B-PER\", \"I-PER\"]}\n";
    ll_dataset *ds = load_mem(text, "e.jsonl", &o);
    REQUIRE(ds);
    ll_labelmap *map = NULL;
    ll_error err = {0};
    REQUIRE(ll_labelmap_build(&map, ds, &err) == 0 && ll_dataset_apply_labels(ds, map, &err) == 0);
    /* SmolLM2 adds no special token: the second sentence encodes to nothing (a bad row) */
    int rc = ll_token_dataset_tokenize(ds, tok, 8, NULL, &err);
    CHECK_MSG(rc == LL_ERR_FORMAT && strstr(err.message, "e.jsonl:2: the sentence encodes to no tokens"), "%s",
              err.message);
    ll_dataset_free(ds);
    o.skip_invalid = 1;
    ds = load_mem(text, "e.jsonl", &o);
    REQUIRE(ds);
    REQUIRE(ll_dataset_apply_labels(ds, map, &err) == 0);
    REQUIRE(ll_token_dataset_tokenize(ds, tok, 8, NULL, &err) == 0);
    /* the dropped middle sentence is gone from sentences, words, windows and tok_words */
    CHECK(ds->n_sent == 2 && ds->n_words == 6 && ds->n_skipped == 1 && ds->n_empty_words == 2 && ds->n == 2);
    CHECK(ds->words[1].n_tok == 0 && ds->words[1].first == -1 && ds->words[1].tag == ll_labelmap_find(map, "B-PER", 5));
    CHECK(ds->sent[1].line == 3 && ds->sent[1].word_off == 4 && ds->words[5].sent == 1 && ds->words[5].owner == 1 &&
          ds->ex[1].sent == 1 && ds->ex[1].own_lo == 4 && ds->ex[1].own_hi == 6 && word_is(ds, 4, "Peter", "B-PER", 3));
    CHECK(ds->tok_words[ds->ex[1].tok_off] == 4);
    check_windows("empty words", ds, tok, 8, 0);
    /* with max length 2 the sentence splits; the trailing empty word still has an owner */
    REQUIRE(ll_token_dataset_tokenize(ds, tok, 2, NULL, &err) == 0);
    check_windows("empty words, 2", ds, tok, 2, 0);
    check_batches("empty words, 2", ds, map);
    ll_dataset_free(ds);
    ll_labelmap_free(map);
}

/* Classification batches carry token_labels too, all ignored. */
static void test_classification_batches(ll_tokenizer *tok) {
    if (!tok) return;
    ll_data_options o;
    ll_data_options_default(&o);
    o.format = LL_DATA_TSV;
    const char tsv[] = "text\tlabel\nhello world\t1\nbye\t0\n";
    ll_dataset *ds = NULL;
    ll_error err = {0};
    REQUIRE(ll_dataset_load_memory(&ds, tsv, sizeof tsv - 1, "c.tsv", &o, &err) == 0);
    REQUIRE(ll_dataset_tokenize(ds, tok, 16, &err) == 0);
    CHECK(!ds->token_task && ds->ex[0].sent == -1);
    ll_batching_options bo = {.max_batch_tokens = 100};
    ll_batch_plan plan;
    ll_batch_buf buf = {0};
    REQUIRE(ll_batch_plan_make(&plan, ds, &bo, &err) == 0);
    REQUIRE(ll_batch_fill(&buf, ds, &plan, 0, &err) == 0);
    int ok = buf.n_tokens > 0;
    for (size_t t = 0; t < buf.n_tokens; t++) ok &= buf.token_labels[t] == LL_IGNORE_LABEL;
    CHECK(ok);
    ll_batch_buf_free(&buf);
    ll_batch_plan_free(&plan);
    ll_dataset_free(ds);
}

int main(void) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/ll_test_token_data_XXXXXX");
    REQUIRE(mkdtemp(tmp_root));
    ll_tokenizer *tok = NULL, *llama = NULL;
    ll_error err = {0};
    if (access(test_smollm2_path(), R_OK) == 0) {
        if (ll_tokenizer_load(&tok, test_smollm2_path(), &err)) {
            CHECK_MSG(0, "SmolLM2 tokenizer: %s", err.message);
            tok = NULL;
        }
    } else {
        printf("SmolLM2 model not found at %s: SmolLM2 alignment checks skipped (scripts/setup.sh fetches it)\n",
               test_smollm2_path());
    }
    char lp[1024];
    snprintf(lp, sizeof lp, "%s/models/llama2-tokenizer/tokenizer.model", LL_SHARED_DIR);
    if (ll_tokenizer_load(&llama, lp, &err)) {
        printf("Llama 2 tokenizer missing (%s): BOS window checks skipped\n", err.message);
        llama = NULL;
    }
    test_conll_small();
    test_jsonl();
    test_lines_format(tok);
    test_bad_input(tok, llama);
    test_empty_words(tok);
    test_classification_batches(tok);
    test_conll2003_counts();
    test_conll2003_windows(tok, llama);
    ll_tokenizer_free(tok);
    ll_tokenizer_free(llama);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
    return test_summary("test_token_data");
}
