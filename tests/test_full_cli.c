/* Full fine-tuning through the command line, on stories260K and 48 SST-2
 * sentences: `train --full` writes best/ and final/ as model folders
 * (config.json, model.safetensors, tokenizer files); 8 steps straight and 4
 * steps + stop (as if killed after the step-4 checkpoint) + --resume give
 * the same model.safetensors bytes; `eval DIR/final` reproduces the dev
 * accuracy the run logged for its last evaluation, and `predict` reads the
 * folder; --full-targets trains only the named tensors (q,v; norms and
 * embeddings), the others keeping their stored values; options that do not apply to full fine-tuning, a
 * resume that changes the trained matrices, and unknown module names are
 * refused by name. */
#include <sys/stat.h>

#include "io/safetensors.h"
#include "model/model.h"
#include "train/classifier.h"
#include "test_util.h"

#define MODEL_DIR LL_SHARED_DIR "/models/stories260K"
#define MODEL MODEL_DIR "/stories260K.bin --tokenizer " MODEL_DIR "/tok512.bin"

static char tmp[] = "/tmp/lsllama_full_cli_XXXXXX";

/* Runs cmd with stderr into tmp/err.txt; its exit status, and the text in *msg (caller frees). */
static int run_err(const char *cmd, char **msg) {
    char full[8192];
    snprintf(full, sizeof full, "%s 2>%s/err.txt", cmd, tmp);
    const int rc = test_run(full);
    snprintf(full, sizeof full, "%s/err.txt", tmp);
    *msg = test_read_file(full);
    return rc;
}

/* The last "accuracy" value logged by a dev evaluation in DIR/log.jsonl. */
static double last_dev_accuracy(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    test_lines L;
    double acc = -1;
    if (test_read_lines(path, &L)) return -1;
    for (size_t i = 0; i < L.n; i++) {
        const char *a = strstr(L.line[i], "\"eval\": \"dev\"") ? strstr(L.line[i], "\"accuracy\": ") : NULL;
        if (a) acc = atof(a + 12);
    }
    test_free_lines(&L);
    return acc;
}

int main(void) {
    REQUIRE(mkdtemp(tmp));
    char cmd[8192], train[512], dev[512], a[512], b[512], *msg = NULL;
    ll_error err = {0};
    ll_st_file *trained;
    snprintf(train, sizeof train, "%s/train.tsv", tmp);
    snprintf(dev, sizeof dev, "%s/dev.tsv", tmp);
    snprintf(cmd, sizeof cmd, "head -49 %s/data/sst2/train.tsv > %s && head -41 %s/data/sst2/dev.tsv > %s",
             LL_SHARED_DIR, train, LL_SHARED_DIR, dev);
    REQUIRE(system(cmd) == 0);
    const char *common = "--full --batch-tokens 96 --max-steps 8 --lr 1e-3 --seed 7 --checkpoint-every 4 "
                         "--eval-every 4 --no-progress";
    snprintf(cmd, sizeof cmd, "%s train %s --train %s --dev %s --out %s/straight %s", LL_CLI_PATH, MODEL, train, dev,
             tmp, common);
    CHECK(test_run(cmd) == 0);
    const char *files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 4; i++)
        for (int w = 0; w < 2; w++) {
            struct stat st;
            snprintf(a, sizeof a, "%s/straight/%s/%s", tmp, w ? "best" : "final", files[i]);
            CHECK_MSG(stat(a, &st) == 0 && st.st_size > 0, "%s missing", a);
        }

    /* killed after the step-4 checkpoint, resumed: the same bytes */
    snprintf(cmd, sizeof cmd, "%s train %s --train %s --dev %s --out %s/resumed %s --stop-after-steps 4", LL_CLI_PATH,
             MODEL, train, dev, tmp, common);
    CHECK(test_run(cmd) == 0);
    snprintf(cmd, sizeof cmd, "%s train %s --train %s --dev %s --out %s/resumed %s --resume", LL_CLI_PATH, MODEL,
             train, dev, tmp, common);
    CHECK(test_run(cmd) == 0);
    snprintf(a, sizeof a, "%s/straight/final/model.safetensors", tmp);
    snprintf(b, sizeof b, "%s/resumed/final/model.safetensors", tmp);
    CHECK_MSG(test_same_bytes(a, b), "resumed model differs from the straight run");

    /* eval of final/ gives the accuracy the run logged at step 8 (its last evaluation, on final's weights) */
    snprintf(a, sizeof a, "%s/straight", tmp);
    const double logged = last_dev_accuracy(a);
    CHECK(logged >= 0);
    snprintf(cmd, sizeof cmd, "%s eval %s/straight/final --data %s > %s/eval.txt 2>&1", LL_CLI_PATH, tmp, dev, tmp);
    CHECK(test_run(cmd) == 0);
    snprintf(a, sizeof a, "%s/eval.txt", tmp);
    char *ev = test_read_file(a);
    const char *acc = ev ? strstr(ev, "\naccuracy ") : NULL;
    CHECK_MSG(acc && fabs(atof(acc + 10) - logged) < 1e-4, "eval accuracy %s vs logged %.4f", acc ? acc + 10 : "?",
              logged);
    free(ev);
    snprintf(cmd, sizeof cmd, "%s predict %s/straight/final --input %s --format tsv > %s/pred.jsonl", LL_CLI_PATH,
             tmp, dev, tmp);
    CHECK(test_run(cmd) == 0);
    snprintf(a, sizeof a, "%s/pred.jsonl", tmp);
    test_lines P;
    CHECK(test_read_lines(a, &P) == 0 && P.n == 40 && strstr(P.line[0], "\"probabilities\""));
    test_free_lines(&P);

    /* --full-targets: only those matrices change */
    snprintf(cmd, sizeof cmd, "%s train %s --train %s --out %s/qv --full-targets q,v --batch-tokens 96 --max-steps 3 "
             "--lr 1e-3 --no-progress", LL_CLI_PATH, MODEL, train, tmp);
    CHECK(test_run(cmd) == 0);
    snprintf(a, sizeof a, "%s/qv/final/model.safetensors", tmp);
    REQUIRE(ll_st_open(&trained, a, &err) == 0);
    /* the stored values: a fully fine-tuned classifier's copies before any step */
    ll_model *base;
    ll_classifier *fresh;
    REQUIRE(ll_model_load(&base, MODEL_DIR "/stories260K.bin", NULL, &err) == 0);
    ll_classifier_config cc = {.n_labels = 2, .bidirectional_from = 5, .full_targets = (1u << LL_LORA_N_TARGETS) - 1};
    REQUIRE(ll_classifier_create(&fresh, base, &cc, 1, &err) == 0);
    const char *names[] = {"model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight",
                           "model.layers.1.mlp.up_proj.weight"};
    for (int i = 0; i < 3; i++) {
        const ll_st_tensor *t = ll_st_find(trained, names[i]);
        const ll_param_view *v = ll_classifier_find_param(fresh, names[i]);
        REQUIRE(t && t->dtype == LL_DTYPE_F32 && v && (size_t)(v->rows * v->cols) == t->n_elems);
        const int same = !memcmp(v->data, t->data, t->n_elems * sizeof(float));
        CHECK_MSG(same == (i > 0), "%s %s its stored values", names[i], same ? "kept" : "left");
    }
    ll_st_close(trained);
    /* --full-targets norms,embeddings: those move, the linear weights keep their values */
    snprintf(cmd, sizeof cmd, "%s train %s --train %s --out %s/ne --full-targets norms,embeddings --batch-tokens 96 "
             "--max-steps 3 --lr 1e-3 --no-progress", LL_CLI_PATH, MODEL, train, tmp);
    CHECK(test_run(cmd) == 0);
    snprintf(a, sizeof a, "%s/ne/final/model.safetensors", tmp);
    REQUIRE(ll_st_open(&trained, a, &err) == 0);
    const char *ne[] = {"model.layers.1.self_attn.q_proj.weight", "model.layers.0.input_layernorm.weight",
                        "model.norm.weight", "model.embed_tokens.weight"};
    for (int i = 0; i < 4; i++) {
        const ll_st_tensor *t = ll_st_find(trained, ne[i]);
        REQUIRE(t && t->dtype == LL_DTYPE_F32);
        const float *was = NULL;
        if (i == 0) was = ll_classifier_find_param(fresh, ne[0])->data;
        else if (i == 1) was = base->layers[0].attn_norm;
        else if (i == 2) was = base->final_norm;
        float *rows = NULL;
        if (i == 3) { /* the stored embeddings, dequantized */
            rows = malloc(t->n_elems * sizeof(float));
            for (size_t r = 0; r < base->tok_emb.rows; r++)
                ll_matrix_row_f32(&base->tok_emb, r, rows + r * base->tok_emb.cols);
            was = rows;
        }
        const int same = !memcmp(was, t->data, t->n_elems * sizeof(float));
        CHECK_MSG(same == (i == 0), "%s %s its stored values", ne[i], same ? "kept" : "left");
        free(rows);
    }
    ll_classifier_free(fresh);
    ll_model_free(base);
    ll_st_close(trained);

    /* refusals, by name */
    snprintf(cmd, sizeof cmd, "%s train %s --train %s --out %s/bad --full --lora-r 8", LL_CLI_PATH, MODEL, train, tmp);
    CHECK(run_err(cmd, &msg) != 0 && msg && strstr(msg, "--lora-r") && strstr(msg, "full fine-tuning"));
    free(msg);
    snprintf(cmd, sizeof cmd, "%s train %s --train %s --out %s/bad --full-targets q,wq", LL_CLI_PATH, MODEL, train, tmp);
    CHECK(run_err(cmd, &msg) != 0 && msg && strstr(msg, "--full-targets") && strstr(msg, "'wq'"));
    free(msg);
    snprintf(cmd, sizeof cmd, "%s train %s --train %s --dev %s --out %s/resumed %s --resume --full-targets q",
             LL_CLI_PATH, MODEL, train, dev, tmp, common);
    CHECK(run_err(cmd, &msg) != 0 && msg && strstr(msg, "full_targets was q_proj"));
    free(msg);
    /* a resume without the full fine-tuning options is told which run it was */
    snprintf(cmd, sizeof cmd, "%s train %s --train %s --dev %s --out %s/resumed --batch-tokens 96 --max-steps 8 "
             "--lr 1e-3 --seed 7 --checkpoint-every 4 --eval-every 4 --no-progress --resume", LL_CLI_PATH, MODEL, train,
             dev, tmp);
    CHECK(run_err(cmd, &msg) != 0 && msg && strstr(msg, "full_targets was q_proj,k_proj,v_proj,o_proj,gate_proj,"
                                                            "up_proj,down_proj, now none (LoRA)"));
    free(msg);
    /* a model folder given as an adapter: named as what it is */
    snprintf(cmd, sizeof cmd, "%s eval %s --adapter %s/straight/final --data %s", LL_CLI_PATH, MODEL, tmp, dev);
    CHECK(run_err(cmd, &msg) != 0 && msg && strstr(msg, "is a model folder") && strstr(msg, "without --adapter"));
    free(msg);
    /* --overwrite replaces a finished full fine-tuning run (its model folders are training's own files) */
    snprintf(cmd, sizeof cmd, "%s train %s --train %s --out %s/straight --full-targets q --batch-tokens 96 "
             "--max-steps 2 --no-progress --overwrite", LL_CLI_PATH, MODEL, train, tmp);
    CHECK(test_run(cmd) == 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0);
    return test_summary("test_full_cli");
}
