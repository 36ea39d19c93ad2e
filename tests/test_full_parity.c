/* Full fine-tuning against transformers + torch (reference made at test
 * time by tools/gen_fixtures_full.py into LL_BUILD_DIR/generated/full_seqcls):
 * the tiny LlamaForSequenceClassification of tests/fixtures/peft_seqcls/base
 * with every linear weight and the score head trained (embeddings and norms
 * frozen: --full), and again with the RMSNorm weights and the input
 * embeddings trained as well (--full-targets all); causal attention,
 * last-token pooling. Step 0: logits, loss and the
 * gradient of every trained tensor within 1e-4 of each tensor's largest
 * magnitude; then 5 steps of AdamW (eps 1e-6) under the linear warm-up
 * schedule with global-norm clipping: losses, learning rates, gradient norms
 * and every trained parameter within 1e-3 relative, and the trained model's
 * logits. The trained classifier written as a model folder reads back with
 * the same logits. */
#include "io/safetensors.h"
#include "lsllama_train.h"
#include "train/classifier.h"
#include "train/optim.h"
#include "test_util.h"

#define BASE LL_SOURCE_DIR "/tests/fixtures/peft_seqcls/base"
#define INPUTS LL_SOURCE_DIR "/tests/fixtures/peft_seqcls/expected.safetensors"
#define GEN LL_BUILD_DIR "/generated/full_seqcls/"

static const float *ref(const ll_st_file *f, const char *name, size_t n) {
    const ll_st_tensor *t = ll_st_find(f, name);
    if (!t || t->dtype != LL_DTYPE_F32 || t->n_elems != n) {
        fprintf(stderr, "reference tensor %s missing or of the wrong size (run tools/gen_fixtures_full.py)\n", name);
        exit(1);
    }
    return (const float *)t->data;
}


/* One reference file: full_targets trained against GEN/file. */
static void run_case(unsigned full_targets, const char *file) {
    ll_error err = {0};
    ll_st_file *e, *in, *base_st;
    char path[512];
    snprintf(path, sizeof path, "%s%s", GEN, file);
    printf("== %s ==\n", path);
    REQUIRE(ll_st_open(&e, path, &err) == 0);
    REQUIRE(ll_st_open(&in, INPUTS, &err) == 0);
    REQUIRE(ll_st_open(&base_st, BASE "/model.safetensors", &err) == 0);
    ll_model *m;
    REQUIRE(ll_model_load(&m, BASE, NULL, &err) == 0);
    const ll_config *p = ll_model_config(m);
    ll_classifier_config cc = {.n_labels = 3, .pool = LL_POOL_LAST, .bidirectional_from = p->n_layers,
                               .full_targets = full_targets};
    ll_classifier *c;
    REQUIRE(ll_classifier_create(&c, m, &cc, 1, &err) == 0);
    /* per layer: the linear weights, plus 2 norms when they are trained; then the final norm and the embeddings */
    const int all = (full_targets & LL_FULL_NORMS) && (full_targets & LL_FULL_EMBEDDINGS);
    CHECK(c->n_views == (size_t)p->n_layers * (LL_LORA_N_TARGETS + 2 * all) + 2 * all + 1);
    memcpy(c->head_w, ref(base_st, "score.weight", (size_t)3 * p->dim), (size_t)3 * p->dim * sizeof(float));
    /* the trained copies start at the base's values */
    for (size_t i = 0; i + 1 < c->n_views; i++) {
        const size_t n = (size_t)(c->views[i].rows * c->views[i].cols);
        CHECK_MSG(!memcmp(c->views[i].data, ref(base_st, c->views[i].name, n), n * sizeof(float)), "%s init",
                  c->views[i].name);
    }
    const ll_st_tensor *tok = ll_st_find(in, "tokens"), *ss = ll_st_find(in, "seq_start"),
                       *lab = ll_st_find(in, "labels");
    REQUIRE(tok && ss && lab);
    ll_batch b = {(const int32_t *)tok->data, (const int32_t *)ss->data, (int)ss->n_elems - 1};
    const int32_t *labels = (const int32_t *)lab->data;
    char name[160];
    float loss;
    memset(c->grads, 0, c->n_params * sizeof(float));
    REQUIRE(ll_classifier_train_step(c, &b, labels, NULL, 0, 1.0f, &loss, &err) == 0);
    test_close_rel("logits0", c->logits, ref(e, "logits0", 18), 18, 1e-4);
    const float want_loss = ref(e, "loss0", 1)[0];
    CHECK_MSG(fabs(loss - want_loss) <= 1e-4 * fabs(want_loss), "loss0 %.7g vs %.7g", loss, want_loss);
    printf("loss0 %.7f (transformers %.7f)\n", loss, want_loss);
    double worst = 0;
    for (size_t i = 0; i < c->n_views; i++) {
        snprintf(name, sizeof name, "grad.%s", c->views[i].name);
        const size_t n = (size_t)(c->views[i].rows * c->views[i].cols);
        const double rel = test_close_rel(name, c->views[i].grad, ref(e, name, n), n, 1e-4);
        if (rel > worst) worst = rel;
    }
    printf("  step-0 gradients of %zu tensors: worst error %.2e of max |grad|\n", c->n_views, worst);
    ll_adamw opt;
    REQUIRE(ll_adamw_init(&opt, c->n_params, 0.9f, 0.999f, 1e-6f, 0.01f));
    for (int k = 0; k < 5; k++) {
        memset(c->grads, 0, c->n_params * sizeof(float));
        REQUIRE(ll_classifier_train_step(c, &b, labels, NULL, 0, 1.0f, &loss, &err) == 0);
        const float gn = ll_clip_grad_norm(c->grads, c->n_params, 1.0f);
        const float lr = ll_lr_linear(k, 2, 10, 1e-2f);
        ll_adamw_step(&opt, c->params, c->grads, lr);
        snprintf(name, sizeof name, "loss.step%d", k);
        const float wl = ref(e, name, 1)[0];
        snprintf(name, sizeof name, "gradnorm.step%d", k);
        const float wg = ref(e, name, 1)[0];
        snprintf(name, sizeof name, "lr.step%d", k);
        const float wlr = ref(e, name, 1)[0];
        CHECK_MSG(fabs(loss - wl) <= 1e-3 * fabs(wl), "step %d loss %.7g vs %.7g", k, loss, wl);
        CHECK_MSG(fabs(gn - wg) <= 1e-3 * fabs(wg), "step %d grad norm %.7g vs %.7g", k, gn, wg);
        CHECK_MSG(fabs(lr - wlr) <= 1e-7, "step %d lr %.7g vs %.7g", k, lr, wlr);
        printf("  step %d: loss %.6f (ref %.6f)  grad norm %.5f (ref %.5f)  lr %.5f\n", k, loss, wl, gn, wg, lr);
    }
    worst = 0;
    for (size_t i = 0; i < c->n_views; i++) {
        snprintf(name, sizeof name, "final.%s", c->views[i].name);
        const size_t n = (size_t)(c->views[i].rows * c->views[i].cols);
        const double rel = test_close_rel(name, c->views[i].data, ref(e, name, n), n, 1e-3);
        if (rel > worst) worst = rel;
    }
    printf("  parameters after 5 steps: worst error %.2e of max |param|\n", worst);
    float logits[18];
    REQUIRE(ll_classifier_forward(c, &b, 0, 0, logits, &err) == 0);
    test_close_rel("logits_trained", logits, ref(e, "logits_trained", 18), 18, 1e-3);

    /* the model folder the trainer writes reads back as the same classifier */
    char dir[] = "/tmp/lsllama_full_parity_XXXXXX";
    REQUIRE(mkdtemp(dir));
    char out[64];
    snprintf(out, sizeof out, "%s/final", dir);
    ll_merge_options mo = ll_merge_options_default();
    mo.dtype = LL_MERGE_F32, mo.allow_inexact = 1;
    REQUIRE(ll_merge_save(c, out, &mo, &err) == 0);
    ll_model *m2;
    ll_classifier *c2;
    ll_adapter_info info = {0};
    REQUIRE(ll_model_load(&m2, out, NULL, &err) == 0);
    REQUIRE(ll_merged_load(out, m2, &c2, &info, &err) == 0);
    float logits2[18];
    REQUIRE(ll_classifier_forward(c2, &b, 0, 0, logits2, &err) == 0);
    CHECK_MSG(max_abs_diff(logits, logits2, 18) <= 1e-6 * max_abs(logits, 18), "saved folder's logits differ by %.3g",
              max_abs_diff(logits, logits2, 18));
    /* a fully fine-tuned classifier has no adapter */
    CHECK(ll_adapter_save(c, out, NULL, &err) == LL_ERR_ARG);
    ll_adapter_info_free(&info);
    ll_classifier_free(c2);
    ll_model_free(m2);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    ll_adamw_free(&opt);
    ll_classifier_free(c);
    ll_model_free(m);
    ll_st_close(base_st);
    ll_st_close(in);
    ll_st_close(e);
}

int main(void) {
    const unsigned linear = (1u << LL_LORA_N_TARGETS) - 1;
    run_case(linear, "expected.safetensors");
    run_case(linear | LL_FULL_NORMS | LL_FULL_EMBEDDINGS, "expected_all.safetensors");
    return test_summary("test_full_parity");
}
