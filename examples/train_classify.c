/* A complete LS-LLaMA run through the public API alone (include/ only):
 * train a sentiment classifier (LoRA + last-token head) on a few hundred
 * SST-2 rows, evaluate it on dev rows, classify a few sentences, then load
 * the adapter it saved and check that it classifies them the same.
 *
 *   train_classify [MODEL TOKENIZER TRAIN.tsv DEV.tsv OUT_DIR]
 *
 * Defaults: stories260K with its tok512.bin tokenizer and SST-2 from
 * ../shared, OUT_DIR runs/example (new or empty). Reads the first 300
 * training and 100 dev rows (after the header line). Output: a few lines
 * on stdout (figures with 17 digits, so a test can compare them with
 * `lsllama eval --json` on the same rows); errors on stderr, exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsllama.h"
#include "lsllama_tokenizer.h"
#include "lsllama_train.h"

enum { TRAIN_ROWS = 300, DEV_ROWS = 100, MAX_LENGTH = 64 };

static const char *const sentences[] = {
    "a gripping , funny and moving film .",
    "dull , lifeless and far too long .",
    "it is neither good nor bad .",
};
enum { N_SENTENCES = sizeof sentences / sizeof sentences[0] };

/* The header line and the first rows lines of path, malloc'd (NULL on error). */
static char *read_head(const char *path, int rows, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16;
    char *buf = malloc(cap);
    *len = 0;
    for (int c, lines = 0; buf && lines <= rows && (c = fgetc(f)) != EOF;) {
        if (*len + 1 >= cap) {
            char *b2 = realloc(buf, cap *= 2);
            if (!b2) free(buf);
            buf = b2;
            if (!buf) break;
        }
        buf[(*len)++] = (char)c;
        lines += c == '\n';
    }
    fclose(f);
    return buf;
}

/* A labelled split: rows of path, labels through *map (built from this split when NULL), tokenized. */
static int load_split(const char *path, int rows, ll_tokenizer *tok, ll_labelmap **map, ll_dataset **ds,
                      ll_error *err) {
    size_t len;
    char *text = read_head(path, rows, &len);
    if (!text) {
        snprintf(err->message, sizeof err->message, "%s: cannot read", path);
        return LL_ERR_IO;
    }
    int rc = ll_dataset_load_memory(ds, text, len, path, NULL, err);
    free(text);
    if (!rc && !*map) rc = ll_labelmap_build(map, *ds, err);
    if (!rc) rc = ll_dataset_apply_labels(*ds, *map, err);
    if (!rc) rc = ll_dataset_tokenize(*ds, tok, MAX_LENGTH, err);
    return rc;
}

/* Predictions of the sentences: the label id and its probability per sentence. */
typedef struct predictions {
    int label[N_SENTENCES];
    double prob[N_SENTENCES];
} predictions;

static int keep_prediction(void *ctx, const ll_seq_prediction *p) {
    predictions *out = ctx;
    out->label[p->index] = p->label;
    out->prob[p->index] = p->probabilities[p->label];
    return 0;
}

/* Classify the example sentences with c. */
static int predict(ll_classifier *c, ll_tokenizer *tok, predictions *out, ll_error *err) {
    char text[1024] = "";
    for (int i = 0; i < N_SENTENCES; i++) strcat(strcat(text, sentences[i]), "\n");
    ll_data_options opt;
    ll_data_options_default(&opt);
    opt.format = LL_DATA_LINES; /* one text per line, no labels */
    opt.no_labels = 1;
    ll_dataset *ds = NULL;
    int rc = ll_dataset_load_memory(&ds, text, strlen(text), "sentences", &opt, err);
    if (!rc) rc = ll_dataset_tokenize(ds, tok, MAX_LENGTH, err);
    if (!rc) rc = ll_classifier_predict(c, ds, 1024, NULL, keep_prediction, out, err);
    ll_dataset_free(ds);
    return rc;
}

/* Train c on train (dev picks the best adapter), writing out_dir. */
static int train(ll_classifier *c, ll_dataset *tr, ll_dataset *dev, const ll_labelmap *map, const char *out_dir,
                 ll_error *err) {
    ll_train_options o;
    ll_train_options_default(&o);
    o.max_steps = 24;
    o.lr = 2e-3f;
    o.batch_tokens = 512;
    o.eval_every = 12;
    o.seed = 7;
    o.out_dir = out_dir;
    o.base_model_name = "stories260K";
    o.label_names = ll_labelmap_names(map);
    ll_train_result res;
    const int rc = ll_train(c, tr, dev, &o, &res, err);
    if (!rc) printf("trained %lld steps; best dev accuracy %.4f at step %lld\n", (long long)res.steps, res.best_metric,
                    (long long)res.best_step);
    return rc;
}

/* Evaluate c on dev and print the figures. */
static int evaluate(ll_classifier *c, const ll_dataset *dev, const ll_labelmap *map, ll_error *err) {
    ll_eval_report *rep = NULL;
    int rc = ll_classifier_evaluate(c, dev, map, 1024, NULL, &rep, err);
    if (rc) return rc;
    ll_eval_summary s;
    ll_eval_report_summary(rep, &s);
    printf("dev examples %lld\naccuracy %.17g\nmacro_f1 %.17g\nmean_loss %.17g\n", (long long)s.n, s.accuracy,
           s.macro_f1, s.mean_loss);
    for (int k = 0; k < s.n_classes && !rc; k++) {
        ll_eval_class row;
        if (!(rc = ll_eval_report_class(rep, k, &row, err)))
            printf("class %s precision %.4f recall %.4f f1 %.4f support %lld\n", row.name, row.precision, row.recall,
                   row.f1, (long long)row.support);
    }
    ll_eval_report_free(rep);
    return rc;
}

/* Load out_dir/final onto m and check it classifies the sentences as before. */
static int reload_and_compare(ll_model *m, ll_tokenizer *tok, const char *out_dir, const predictions *before,
                              ll_error *err) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/final", out_dir);
    ll_classifier *c = NULL;
    ll_adapter_info info = {0};
    predictions after = {0};
    int rc = ll_adapter_load(dir, m, NULL, &c, &info, err);
    if (!rc) rc = predict(c, tok, &after, err);
    if (!rc) {
        const int same = !memcmp(before->label, after.label, sizeof after.label) &&
                         !memcmp(before->prob, after.prob, sizeof after.prob);
        printf("reloaded %s (%d labels): %s predictions\n", dir, info.n_labels, same ? "same" : "DIFFERENT");
        if (!same) rc = LL_ERR_FORMAT;
    }
    ll_adapter_info_free(&info);
    ll_classifier_free(c);
    return rc;
}

/* Model, tokenizer, data, classifier: everything but the steps, so one cleanup frees it all. */
typedef struct run {
    ll_model *m;
    ll_tokenizer *tok;
    ll_labelmap *map;
    ll_dataset *train, *dev;
    ll_classifier *c;
} run;

static int run_all(run *r, char **paths, ll_error *err) {
    const char *model = paths[0], *tok_path = paths[1], *out_dir = paths[4];
    int rc = ll_model_load(&r->m, model, NULL, err);
    if (!rc) rc = ll_tokenizer_load(&r->tok, tok_path, err);
    if (!rc) rc = load_split(paths[2], TRAIN_ROWS, r->tok, &r->map, &r->train, err);
    if (!rc) rc = load_split(paths[3], DEV_ROWS, r->tok, &r->map, &r->dev, err);
    if (rc) return rc;
    ll_classifier_config cfg;
    ll_classifier_config_default(&cfg, r->m); /* LS-LLaMA: last token, causal, LoRA on q,v */
    cfg.n_labels = ll_labelmap_size(r->map);
    cfg.lora_r = 8, cfg.lora_alpha = 16; /* a smaller adapter for the tiny model */
    if ((rc = ll_lora_targets_parse("q,v", &cfg.lora_targets, err)) ||
        (rc = ll_classifier_create(&r->c, r->m, &cfg, 7, err)))
        return rc;
    printf("labels %d, trainable parameters %zu\n", cfg.n_labels, ll_classifier_n_params(r->c));
    predictions before = {0};
    if ((rc = train(r->c, r->train, r->dev, r->map, out_dir, err)) || (rc = evaluate(r->c, r->dev, r->map, err)) ||
        (rc = predict(r->c, r->tok, &before, err)))
        return rc;
    const char *const *names = ll_labelmap_names(r->map);
    for (int i = 0; i < N_SENTENCES; i++)
        printf("predict %d %s %.6f %s\n", i, names[before.label[i]], before.prob[i], sentences[i]);
    return reload_and_compare(r->m, r->tok, out_dir, &before, err);
}

int main(int argc, char **argv) {
    char *defaults[] = {"../shared/models/stories260K/stories260K.bin", "../shared/models/stories260K/tok512.bin",
                        "../shared/data/sst2/train.tsv", "../shared/data/sst2/dev.tsv", "runs/example"};
    if (argc != 1 && argc != 6) {
        fprintf(stderr, "usage: %s [MODEL TOKENIZER TRAIN.tsv DEV.tsv OUT_DIR]\n", argv[0]);
        return 2;
    }
    ll_error err = {0};
    run r = {0};
    const int rc = run_all(&r, argc == 6 ? argv + 1 : defaults, &err);
    if (rc) fprintf(stderr, "train_classify: %s\n", err.message);
    ll_classifier_free(r.c);
    ll_dataset_free(r.train);
    ll_dataset_free(r.dev);
    ll_labelmap_free(r.map);
    ll_tokenizer_free(r.tok);
    ll_model_free(r.m);
    return rc ? 1 : 0;
}
