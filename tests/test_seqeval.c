/* Entity-level NER metrics against seqeval 1.2.2 (fixture:
 * tools/gen_fixtures_seqeval.py; IOB2, IOB1, BIOES typed and without a type,
 * "B-", types with dashes, malformed and odd tags): every per-type and averaged figure, micro
 * scores, token accuracy, the text report, and get_entities' entity lists;
 * then hand-derived cases (conlleval's chunk rules) and bad arguments. */
#include <cjson/cJSON.h>

#include "test_util.h"
#include "train/seqeval.h"

#define TOL 0 /* exact: the same operations in the same order as seqeval (numpy) */

/* A fixture number; null stands for a figure seqeval leaves undefined (NaN). */
static int same(double got, const cJSON *want) {
    if (cJSON_IsNull(want)) return isnan(got);
    return cJSON_IsNumber(want) && fabs(got - want->valuedouble) <= TOL;
}

static int32_t *int_array(const cJSON *a, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(a);
    int32_t *v = malloc((*n ? *n : 1) * sizeof *v);
    REQUIRE(v);
    size_t i = 0;
    for (const cJSON *x = a ? a->child : NULL; x; x = x->next) v[i++] = (int32_t)x->valuedouble;
    return v;
}

static const char **string_array(const cJSON *a, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(a);
    const char **v = malloc((*n ? *n : 1) * sizeof *v);
    REQUIRE(v);
    size_t i = 0;
    for (const cJSON *x = a ? a->child : NULL; x; x = x->next) v[i++] = x->valuestring;
    return v;
}

static int is_avg_row(const char *key) {
    return !strcmp(key, "micro avg") || !strcmp(key, "macro avg") || !strcmp(key, "weighted avg");
}

static void check_row(const char *cname, const char *row, const cJSON *want, double p, double r, double f1,
                      int64_t support) {
    CHECK_MSG(same(p, cJSON_GetObjectItem(want, "precision")), "%s %s precision %.17g", cname, row, p);
    CHECK_MSG(same(r, cJSON_GetObjectItem(want, "recall")), "%s %s recall %.17g", cname, row, r);
    CHECK_MSG(same(f1, cJSON_GetObjectItem(want, "f1-score")), "%s %s f1 %.17g", cname, row, f1);
    CHECK_MSG(same((double)support, cJSON_GetObjectItem(want, "support")), "%s %s support %lld", cname, row,
              (long long)support);
}

/* classification_report(output_dict=True): types in sorted order, then the averages. */
static void check_report(const char *cname, const ll_ner_report *r, const cJSON *report) {
    size_t i = 0;
    for (const cJSON *row = report->child; row; row = row->next) {
        if (is_avg_row(row->string)) continue;
        CHECK_MSG(i < r->n_types && !strcmp(r->types[i].name, row->string), "%s: type %zu is %s, seqeval %s", cname,
                  i, i < r->n_types ? r->types[i].name : "(none)", row->string);
        if (i < r->n_types) {
            const ll_ner_type_stats *t = &r->types[i];
            check_row(cname, row->string, row, t->precision, t->recall, t->f1, t->n_gold);
            CHECK(t->n_correct <= t->n_gold && t->n_correct <= t->n_pred);
        }
        i++;
    }
    CHECK_MSG(i == r->n_types, "%s: %zu types, seqeval %zu", cname, r->n_types, i);
    check_row(cname, "micro", cJSON_GetObjectItem(report, "micro avg"), r->micro_p, r->micro_r, r->micro_f1,
              r->support);
    check_row(cname, "macro", cJSON_GetObjectItem(report, "macro avg"), r->macro_p, r->macro_r, r->macro_f1,
              r->support);
    check_row(cname, "weighted", cJSON_GetObjectItem(report, "weighted avg"), r->weighted_p, r->weighted_r,
              r->weighted_f1, r->support);
}

/* Our table starts with seqeval's classification_report(digits=4) text. */
static void check_text(const char *cname, const ll_ner_report *r, const cJSON *want) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    REQUIRE(f);
    ll_ner_report_print(f, r);
    fclose(f);
    if (cJSON_IsString(want))
        CHECK_MSG(!strncmp(buf, want->valuestring, strlen(want->valuestring)), "%s: table\n%s\nseqeval\n%s", cname,
                  buf, want->valuestring);
    CHECK(strstr(buf, "token accuracy") != NULL);
    free(buf);
}

/* The JSON object carries the same figures (NaN as null). */
static void check_json(const ll_ner_report *r) {
    cJSON *j = ll_ner_report_json(r);
    REQUIRE(j);
    CHECK(same(r->micro_f1, cJSON_GetObjectItem(j, "micro_f1")));
    CHECK(same(r->macro_p, cJSON_GetObjectItem(j, "macro_precision")));
    CHECK(same(r->token_accuracy, cJSON_GetObjectItem(j, "token_accuracy")));
    const cJSON *types = cJSON_GetObjectItem(j, "per_type");
    CHECK((size_t)cJSON_GetArraySize(types) == r->n_types);
    if (r->n_types) {
        const cJSON *t0 = cJSON_GetArrayItem(types, 0);
        CHECK(!strcmp(cJSON_GetObjectItem(t0, "type")->valuestring, r->types[0].name));
        CHECK(same(r->types[0].f1, cJSON_GetObjectItem(t0, "f1")));
    }
    char *s = cJSON_PrintUnformatted(j);
    CHECK(s && !strstr(s, "nan"));
    free(s);
    cJSON_Delete(j);
}

/* get_entities(tags) of one sentence: [type, start, end inclusive]. */
static int check_entities(const cJSON *item) {
    size_t n, n_want = (size_t)cJSON_GetArraySize(cJSON_GetObjectItem(item, "entities"));
    const char **tags = string_array(cJSON_GetObjectItem(item, "tags"), &n);
    ll_strset *types = ll_strset_new();
    ll_entity_list got = {0};
    ll_error err = {0};
    REQUIRE(types);
    const int k = ll_seqeval_entities(tags, n, types, &got, &err);
    int ok = k >= 0 && (size_t)k == n_want && got.n == n_want;
    size_t i = 0;
    for (const cJSON *e = cJSON_GetObjectItem(item, "entities")->child; ok && e; e = e->next, i++) {
        const ll_entity x = got.v[i];
        ok = !strcmp(ll_strset_get(types, x.type), cJSON_GetArrayItem(e, 0)->valuestring) &&
             x.start == cJSON_GetArrayItem(e, 1)->valueint && x.end == cJSON_GetArrayItem(e, 2)->valueint + 1;
    }
    if (!ok) {
        fprintf(stderr, "entities differ for:");
        for (size_t t = 0; t < n; t++) fprintf(stderr, " %s", tags[t]);
        fprintf(stderr, "\n  got:");
        for (size_t t = 0; t < got.n; t++)
            fprintf(stderr, " (%s %d %d)", ll_strset_get(types, got.v[t].type), got.v[t].start, got.v[t].end);
        fputc('\n', stderr);
    }
    ll_entity_list_free(&got);
    ll_strset_free(types);
    free(tags);
    return ok;
}

static void check_case(const cJSON *c) {
    const char *cname = cJSON_GetObjectItem(c, "name")->valuestring;
    size_t n_names, n_sent, n_gold, n_pred;
    const char **names = string_array(cJSON_GetObjectItem(c, "names"), &n_names);
    int32_t *sent_len = int_array(cJSON_GetObjectItem(c, "sent_len"), &n_sent);
    int32_t *gold = int_array(cJSON_GetObjectItem(c, "gold"), &n_gold);
    int32_t *pred = int_array(cJSON_GetObjectItem(c, "pred"), &n_pred);
    REQUIRE(n_gold == n_pred);
    ll_ner_report r;
    ll_error err = {0};
    const int rc = ll_ner_evaluate(gold, pred, sent_len, n_sent, names, (int)n_names, &r, &err);
    CHECK_MSG(rc == 0, "%s: %s", cname, err.message);
    if (rc == 0) {
        check_report(cname, &r, cJSON_GetObjectItem(c, "report"));
        CHECK_MSG(same(r.micro_p, cJSON_GetObjectItem(c, "precision")), "%s precision_score", cname);
        CHECK_MSG(same(r.micro_r, cJSON_GetObjectItem(c, "recall")), "%s recall_score", cname);
        CHECK_MSG(same(r.micro_f1, cJSON_GetObjectItem(c, "f1")), "%s f1_score", cname);
        CHECK_MSG(same(r.token_accuracy, cJSON_GetObjectItem(c, "accuracy")), "%s accuracy %.17g", cname,
                  r.token_accuracy);
        CHECK(r.n_tokens == (int64_t)n_gold && r.n_sentences == (int64_t)n_sent);
        check_text(cname, &r, cJSON_GetObjectItem(c, "report_text"));
        check_json(&r);
        if (!strcmp(cname, "iob2")) ll_ner_report_print(stdout, &r);
    }
    ll_ner_report_free(&r);
    int n_ent = 0, bad = 0;
    for (const cJSON *e = cJSON_GetObjectItem(c, "entities")->child; e; e = e->next, n_ent++) bad += !check_entities(e);
    CHECK_MSG(bad == 0, "%s: %d of %d entity lists differ", cname, bad, n_ent);
    CHECK(n_ent > 0);
    free(names);
    free(sent_len);
    free(gold);
    free(pred);
}

static void test_fixture(void) {
    char *text = test_read_file(LL_SOURCE_DIR "/tests/fixtures/seqeval/cases.json");
    REQUIRE(text);
    cJSON *doc = cJSON_Parse(text);
    REQUIRE(doc);
    /* every scheme the generator writes, typed and without a type (seqeval's "_") */
    const char *want[] = {"iob2", "iob1", "bioes", "pred_all_o", "gold_all_o", "pred_extra_types", "all_o", "odd_tags",
                          "iob2_untyped", "iob1_untyped", "bioes_untyped", "mixed_untyped", "issue11_example"};
    const size_t n_want = sizeof want / sizeof want[0];
    size_t n = 0;
    for (const cJSON *c = cJSON_GetObjectItem(doc, "cases")->child; c; c = c->next, n++) {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        CHECK_MSG(n < n_want && !strcmp(name, want[n]), "case %zu is %s", n, name);
        check_case(c);
    }
    CHECK_MSG(n == n_want, "%zu cases, want %zu", n, n_want);
    cJSON_Delete(doc);
    free(text);
}

/* ---- hand-derived cases -------------------------------------------------- */

/* Entities of one sentence as "TYPE start end" (end exclusive), space-joined. */
static void entities_string(const char *const *tags, size_t n, char *out, size_t cap) {
    ll_strset *types = ll_strset_new();
    ll_entity_list l = {0};
    REQUIRE(types && ll_seqeval_entities(tags, n, types, &l, NULL) >= 0);
    out[0] = 0;
    for (size_t i = 0; i < l.n; i++) {
        const size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s %d %d", i ? " " : "", ll_strset_get(types, l.v[i].type), l.v[i].start,
                 l.v[i].end);
    }
    ll_entity_list_free(&l);
    ll_strset_free(types);
}

#define EXPECT_ENTITIES(want, ...)                                                     \
    do {                                                                               \
        const char *tags_[] = {__VA_ARGS__};                                           \
        char got_[512];                                                                \
        entities_string(tags_, sizeof tags_ / sizeof tags_[0], got_, sizeof got_);     \
        CHECK_MSG(!strcmp(got_, want), "got \"%s\", want \"%s\"", got_, want);         \
    } while (0)

/* conlleval: a chunk starts at B/S, at I/E after O/E/S, and at any type change;
 * it ends after E/S, before B/S/O, and at any type change. */
static void test_chunk_rules(void) {
    EXPECT_ENTITIES("PER 0 2 LOC 3 4", "B-PER", "I-PER", "O", "B-LOC");
    EXPECT_ENTITIES("PER 0 2 LOC 2 3 LOC 3 4 ORG 5 6", "I-PER", "I-PER", "I-LOC", "B-LOC", "O", "I-ORG"); /* IOB1 */
    EXPECT_ENTITIES("PER 0 1 LOC 1 4", "B-PER", "I-LOC", "I-LOC", "E-LOC", "O");     /* type switch */
    EXPECT_ENTITIES("PER 1 2 PER 2 3 PER 3 4 _ 4 5", "O", "E-PER", "S-PER", "I-PER", "B");
    EXPECT_ENTITIES("PER 0 3", "B-PER", "I-PER", "E-PER");                          /* BIOES */
    EXPECT_ENTITIES("PER 0 1 PER 1 2", "B-PER", "S-PER");                           /* S inside */
    EXPECT_ENTITIES("_ 0 3 _ 4 5", "B", "I", "I", "O", "I");                        /* bare tags: type "_" */
    EXPECT_ENTITIES("", "O", "O");
    ll_strset *types = ll_strset_new();
    ll_entity_list l = {0};
    ll_error err = {0};
    CHECK(ll_seqeval_entities(NULL, 0, types, &l, &err) == 0 && l.n == 0);
    const char *bad[] = {"B-PER", NULL}, *empty[] = {"B-PER", "I-PER", ""};
    CHECK(ll_seqeval_entities(bad, 2, types, &l, &err) == LL_ERR_ARG && l.n == 0 && strstr(err.message, "tag 1"));
    CHECK(ll_seqeval_entities(empty, 3, types, &l, &err) == LL_ERR_ARG && l.n == 0 && strstr(err.message, "empty"));
    ll_entity_list_free(&l);
    ll_strset_free(types);
}

static ll_ner_report eval_ok(const int32_t *gold, const int32_t *pred, const int32_t *len, size_t n_sent,
                             const char *const *names, int n_names) {
    ll_ner_report r;
    ll_error err = {0};
    const int rc = ll_ner_evaluate(gold, pred, len, n_sent, names, n_names, &r, &err);
    CHECK_MSG(rc == 0, "%s", err.message);
    return r;
}

static void test_hand_reports(void) {
    const char *names[] = {"O", "B-MISC", "I-MISC", "B-PER", "I-PER", "B-LOC"};
    /* seqeval's documented example: MISC predicted one word too early. */
    {
        const int32_t gold[] = {0, 0, 0, 1, 2, 2, 0, 3, 4, 0}, pred[] = {0, 0, 1, 2, 2, 2, 0, 3, 4, 0}, len[] = {7, 3};
        ll_ner_report r = eval_ok(gold, pred, len, 2, names, 6);
        CHECK(r.n_types == 2 && !strcmp(r.types[0].name, "MISC") && !strcmp(r.types[1].name, "PER"));
        CHECK(r.types[0].n_correct == 0 && r.types[0].f1 == 0 && r.types[1].f1 == 1);
        CHECK(r.micro_p == 0.5 && r.micro_r == 0.5 && r.micro_f1 == 0.5 && r.macro_f1 == 0.5 && r.support == 2);
        CHECK(r.n_tokens_correct == 8 && fabs(r.token_accuracy - 0.8) <= TOL);
        ll_ner_report_free(&r);
    }
    /* A type only predicted: LOC counts in the macro mean, with zero weight in the weighted one. */
    {
        const int32_t gold[] = {3, 0}, pred[] = {3, 5}, len[] = {2};
        ll_ner_report r = eval_ok(gold, pred, len, 1, names, 6);
        CHECK(r.n_types == 2 && !strcmp(r.types[0].name, "LOC") && r.types[0].n_gold == 0 && r.types[0].n_pred == 1);
        CHECK(r.micro_p == 0.5 && r.micro_r == 1 && fabs(r.micro_f1 - 2.0 / 3) <= TOL);
        CHECK(r.macro_p == 0.5 && r.macro_r == 0.5 && r.macro_f1 == 0.5);
        CHECK(r.weighted_p == 1 && r.weighted_r == 1 && r.weighted_f1 == 1 && r.token_accuracy == 0.5);
        ll_ner_report_free(&r);
    }
    /* Sentences are separate: I-PER at the start of sentence 2 opens a new entity. */
    {
        const int32_t gold[] = {3, 4, 4}, len[] = {2, 1};
        ll_ner_report r = eval_ok(gold, gold, len, 2, names, 6);
        CHECK(r.support == 2 && r.micro_f1 == 1 && r.token_accuracy == 1);
        ll_ner_report_free(&r);
    }
    /* No entity anywhere: micro and weighted 0, macro undefined (NaN). */
    {
        const int32_t gold[] = {0, 0, 0}, len[] = {0, 3, 0};
        ll_ner_report r = eval_ok(gold, gold, len, 3, names, 6);
        CHECK(r.n_types == 0 && r.micro_f1 == 0 && r.weighted_f1 == 0 && isnan(r.macro_f1) && r.token_accuracy == 1);
        ll_ner_report_print(stdout, &r);
        ll_ner_report_free(&r);
    }
    /* No sentence at all: accuracy undefined too. */
    {
        ll_ner_report r = eval_ok(NULL, NULL, NULL, 0, names, 6);
        CHECK(r.n_tokens == 0 && isnan(r.token_accuracy) && r.support == 0);
        ll_ner_report_free(&r);
    }
}

static void test_errors(void) {
    const char *names[] = {"O", "B-PER", "I-PER"}, *with_empty[] = {"O", ""}, *with_null[] = {"O", NULL};
    const int32_t gold[] = {0, 1, 2, 0}, pred[] = {0, 1, 3, 0}, neg[] = {0, -1, 0, 0};
    const int32_t len[] = {2, 2}, bad_len[] = {2, -2};
    ll_ner_report r;
    ll_error err = {0};
    CHECK(ll_ner_evaluate(gold, gold, len, 2, NULL, 3, &r, &err) == LL_ERR_ARG && strstr(err.message, "names"));
    CHECK(r.n_types == 0 && r.types == NULL);
    CHECK(ll_ner_evaluate(gold, pred, len, 2, names, 3, &r, &err) == LL_ERR_ARG);
    CHECK_MSG(strstr(err.message, "predicted tag id 3 at sentence 1 word 0 is out of range [0, 3)"), "%s", err.message);
    CHECK(ll_ner_evaluate(neg, gold, len, 2, names, 3, &r, &err) == LL_ERR_ARG &&
          strstr(err.message, "gold tag id -1"));
    CHECK(ll_ner_evaluate(gold, gold, len, 2, with_empty, 2, &r, &err) == LL_ERR_ARG && strstr(err.message, "empty"));
    CHECK(ll_ner_evaluate(gold, gold, len, 2, with_null, 2, &r, &err) == LL_ERR_ARG && strstr(err.message, "NULL"));
    CHECK(ll_ner_evaluate(gold, gold, bad_len, 2, names, 3, &r, &err) == LL_ERR_ARG && strstr(err.message, "length"));
    CHECK(ll_ner_evaluate(gold, gold, len, 2, names, 0, &r, &err) == LL_ERR_ARG);
    CHECK(ll_ner_evaluate(NULL, gold, len, 2, names, 3, &r, &err) == LL_ERR_ARG);
    CHECK(ll_ner_evaluate(gold, gold, len, 2, names, 3, NULL, &err) == LL_ERR_ARG);
    CHECK(ll_ner_evaluate(gold, pred, len, 2, names, 3, &r, NULL) == LL_ERR_ARG); /* err may be NULL */
}

int main(void) {
    test_fixture();
    test_chunk_rules();
    test_hand_reports();
    test_errors();
    return test_summary("test_seqeval");
}
