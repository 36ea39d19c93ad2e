/* The public training API refuses what would silently give a wrong result,
 * naming the option or file (found by a first user's trial of the API):
 *  - a classifier config with lora_alpha 0 (LoRA scale 0: B never moves) or
 *    target bits beyond the LoRA modules;
 *  - training options out of range, each named with its value, and a metric
 *    of the other task; the task's default metric when none is given;
 *  - evaluation or a dev set without labels (every figure would be 0), and a
 *    label map whose size is not the classifier's;
 *  - a llama2.c model given as a tokenizer, a text file given as a model: the
 *    message says what the file is;
 * and ll_classifier_config_default gives the paper's LS-LLaMA settings.
 * Real model: stories260K with its tokenizer; data written here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lsllama.h"
#include "lsllama_tokenizer.h"
#include "lsllama_train.h"
#include "test_util.h"

#define MODEL LL_SHARED_DIR "/models/stories260K/stories260K.bin"
#define TOKENIZER LL_SHARED_DIR "/models/stories260K/tok512.bin"

static const char LABELLED[] = "sentence\tlabel\n"
                               "a fine film\t1\n"
                               "a dull film\t0\n"
                               "a moving story\t1\n"
                               "a tired story\t0\n";
static const char LINES[] = "a fine film\na dull film\n";

static ll_dataset *load(const char *text, const char *name, const ll_data_options *opt, ll_labelmap **map,
                        ll_tokenizer *tok) {
    ll_error err = {0};
    ll_dataset *ds = NULL;
    REQUIRE(ll_dataset_load_memory(&ds, text, strlen(text), name, opt, &err) == 0);
    if (map) {
        if (!*map) REQUIRE(ll_labelmap_build(map, ds, &err) == 0);
        REQUIRE(ll_dataset_apply_labels(ds, *map, &err) == 0);
    }
    REQUIRE(ll_dataset_tokenize(ds, tok, 32, &err) == 0);
    return ds;
}

/* ll_train with o, expecting LL_ERR_ARG and a message containing want. */
static void refused(ll_classifier *c, ll_dataset *tr, ll_dataset *dev, const ll_train_options *o, const char *want) {
    ll_error err = {0};
    ll_train_result res;
    CHECK_MSG(ll_train(c, tr, dev, o, &res, &err) == LL_ERR_ARG && strstr(err.message, want),
              "want an error with '%s', got '%s'", want, err.message);
}

int main(void) {
    ll_error err = {0};
    ll_model *m = NULL;
    ll_tokenizer *tok = NULL;
    REQUIRE(ll_model_load(&m, MODEL, NULL, &err) == 0);
    REQUIRE(ll_tokenizer_load(&tok, TOKENIZER, &err) == 0);
    ll_labelmap *map = NULL;
    ll_dataset *tr = load(LABELLED, "train.tsv", NULL, &map, tok);

    /* files of the wrong kind say what they are */
    ll_tokenizer *none = NULL;
    CHECK(ll_tokenizer_load(&none, MODEL, &err) == LL_ERR_FORMAT && !none);
    CHECK_MSG(strstr(err.message, "a llama2.c model checkpoint, which holds no tokenizer"), "message: %s", err.message);
    ll_model *text_model = NULL;
    CHECK(ll_model_load(&text_model, LL_SHARED_DIR "/data/sst2/dev.tsv", NULL, &err) != 0 && !text_model);
    CHECK_MSG(strstr(err.message, "dev.tsv: not a GGUF, safetensors or valid llama2.c model file"), "message: %s",
              err.message);

    /* the defaults are the paper's LS-LLaMA settings */
    ll_classifier_config cfg;
    ll_classifier_config_default(&cfg, m);
    CHECK(cfg.pool == LL_POOL_LAST && cfg.bidirectional_from == ll_model_config(m)->n_layers);
    unsigned qv = 0;
    REQUIRE(ll_lora_targets_parse("q,v", &qv, &err) == 0);
    CHECK(cfg.lora_r == 12 && cfg.lora_alpha == 32.0f && cfg.lora_dropout == 0.1f && cfg.lora_targets == qv);
    CHECK(!cfg.head_bias && !cfg.token_task && !cfg.multi_label);
    cfg.n_labels = ll_labelmap_size(map);

    /* configs that would train nothing or address no module */
    ll_classifier *c = NULL;
    ll_classifier_config bad = cfg;
    bad.lora_alpha = 0;
    CHECK(ll_classifier_create(&c, m, &bad, 1, &err) == LL_ERR_ARG && strstr(err.message, "lora_alpha") && !c);
    bad = cfg;
    bad.lora_targets |= 1u << 31;
    CHECK(ll_classifier_create(&c, m, &bad, 1, &err) == LL_ERR_ARG && strstr(err.message, "lora_targets") && !c);
    REQUIRE(ll_classifier_create(&c, m, &cfg, 1, &err) == 0);

    /* every option named with its value */
    char out[] = "/tmp/lsllama_api_checks_XXXXXX";
    REQUIRE(mkdtemp(out));
    ll_train_options o;
    ll_train_options_default(&o);
    CHECK(o.metric == LL_METRIC_TASK_DEFAULT);
    o.out_dir = out;
    o.max_steps = 1;
    o.batch_tokens = 64;
    o.label_names = ll_labelmap_names(map);
    ll_train_options b = o;
    b.lr = -1;
    refused(c, tr, NULL, &b, "lr must be a positive number, got -1");
    b = o, b.grad_accum = 0;
    refused(c, tr, NULL, &b, "grad_accum must be at least 1, got 0");
    b = o, b.beta1 = 1.5f;
    refused(c, tr, NULL, &b, "beta1 must be in [0, 1), got 1.5");
    b = o, b.warmup_ratio = 2;
    refused(c, tr, NULL, &b, "warmup_ratio must be in [0, 1], got 2");
    b = o, b.metric = 99;
    refused(c, tr, NULL, &b, "metric 99 is not an ll_metric");
    b = o, b.metric = LL_METRIC_ENTITY_F1;
    refused(c, tr, NULL, &b, "metric f1 is for token tasks");

    /* a dev set and an evaluation without labels */
    ll_data_options lines;
    ll_data_options_default(&lines);
    lines.format = LL_DATA_LINES;
    lines.no_labels = 1;
    ll_dataset *unlabelled = load(LINES, "lines.txt", &lines, NULL, tok);
    refused(c, tr, unlabelled, &o, "lines.txt: not tokenized/labelled");
    ll_eval_report *rep = NULL;
    CHECK(ll_classifier_evaluate(c, unlabelled, map, 256, NULL, &rep, &err) == LL_ERR_ARG && !rep);
    CHECK_MSG(strstr(err.message, "lines.txt: the data has no labels"), "message: %s", err.message);

    /* a label map of another size */
    ll_labelmap *three = NULL;
    ll_dataset *tr3 = load("sentence\tlabel\nx\ta\ny\tb\nz\tc\n", "three.tsv", NULL, &three, tok);
    CHECK(ll_classifier_evaluate(c, tr, three, 256, NULL, &rep, &err) == LL_ERR_SHAPE && !rep);
    CHECK_MSG(strstr(err.message, "3 labels in the label map, the classifier has 2"), "message: %s", err.message);

    /* with the default metric the run picks by accuracy and trains */
    ll_train_result res;
    CHECK_MSG(ll_train(c, tr, tr, &o, &res, &err) == 0, "train: %s", err.message);
    CHECK(res.steps == 1 && res.best_metric >= 0 && res.best_metric <= 1);
    REQUIRE(ll_classifier_evaluate(c, tr, map, 256, NULL, &rep, &err) == 0);
    ll_eval_summary s;
    ll_eval_report_summary(rep, &s);
    CHECK(s.n == 4 && s.accuracy == res.best_metric);
    ll_eval_report_free(rep);

    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", out);
    CHECK(system(cmd) == 0);
    ll_dataset_free(tr3);
    ll_labelmap_free(three);
    ll_dataset_free(unlabelled);
    ll_dataset_free(tr);
    ll_labelmap_free(map);
    ll_classifier_free(c);
    ll_tokenizer_free(tok);
    ll_model_free(m);
    return test_summary("test_api_checks");
}
