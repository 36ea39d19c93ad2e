/* LS-LLaMA training step against transformers + PEFT, on two fixtures:
 *  - tools/gen_fixtures_peft.py (committed): a tiny LlamaForSequenceClassification
 *    with LoRA r=4, alpha=8 on q,v,o (dropout 0) and the score head;
 *  - tools/gen_fixtures_peft_gemma3.py (run by scripts/test.sh into
 *    LL_BUILD_DIR/generated/peft_gemma3): a tiny Gemma3TextForSequenceClassification
 *    with sliding layers (window 4) and LoRA on all seven linear targets.
 * Step 0: logits, loss and every LoRA/head gradient within 1e-4 of each
 * tensor's largest magnitude; then 5 steps of AdamW under the linear warm-up
 * schedule with global-norm clipping: losses, learning rates, gradient norms
 * and all parameters within 1e-3. Also the mean-pooled bidirectional variant
 * (for Gemma: transformers' use_bidirectional_attention, window halved). */
#include "io/safetensors.h"
#include "train/classifier.h"
#include "train/optim.h"
#include "test_util.h"

typedef struct {
    const char *name, *dir;
    unsigned targets; /* LL_LORA_* bits */
    size_t n_views;   /* LoRA A and B per target and layer, plus the score head */
} fixture;

static const fixture FIXTURES[] = {
    {"llama", LL_SOURCE_DIR "/tests/fixtures/peft_seqcls", (1u << LL_LORA_Q) | (1u << LL_LORA_V) | (1u << LL_LORA_O),
     2 * 3 * 2 + 1},
    {"gemma3", LL_BUILD_DIR "/generated/peft_gemma3",
     (1u << LL_LORA_Q) | (1u << LL_LORA_K) | (1u << LL_LORA_V) | (1u << LL_LORA_O) | (1u << LL_LORA_GATE) |
         (1u << LL_LORA_UP) | (1u << LL_LORA_DOWN),
     3 * 7 * 2 + 1},
};

static const ll_st_file *E;

static const float *ref(const char *name, size_t n) {
    const ll_st_tensor *t = ll_st_find(E, name);
    if (!t || t->dtype != LL_DTYPE_F32 || t->n_elems != n) {
        fprintf(stderr, "fixture tensor %s missing or of the wrong size\n", name);
        exit(1);
    }
    return (const float *)t->data;
}


/* fixture names "layers.0.q.lora_A" <-> ours "layers.0.q_proj.lora_A" */
static void fixture_name(const char *ours, const char *prefix, char *buf, size_t cap) {
    if (!strcmp(ours, "score.weight")) {
        snprintf(buf, cap, "%sscore", prefix);
        return;
    }
    int l;
    char mod[16], ab[8];
    sscanf(ours, "layers.%d.%15[a-z]_proj.lora_%7s", &l, mod, ab);
    snprintf(buf, cap, "%slayers.%d.%s.lora_%s", prefix, l, mod, ab);
}

static void load_init(ll_classifier *c) {
    for (size_t i = 0; i < c->n_views; i++) {
        char name[128];
        fixture_name(c->views[i].name, "init.", name, sizeof name);
        const size_t n = (size_t)(c->views[i].rows * c->views[i].cols);
        memcpy(c->views[i].data, ref(name, n), n * sizeof(float));
    }
}

static void run(const fixture *fx, int bidir_mean) {
    ll_error err = {0};
    ll_model *m;
    char base[1024];
    snprintf(base, sizeof base, "%s/base", fx->dir);
    if (ll_model_load(&m, base, NULL, &err)) {
        fprintf(stderr, "%s: %s\n", base, err.message);
        exit(1);
    }
    const ll_config *p = ll_model_config(m);
    ll_classifier_config cc = {.n_labels = 3, .pool = bidir_mean ? LL_POOL_MEAN : LL_POOL_LAST,
                               .bidirectional_from = bidir_mean ? 0 : p->n_layers, .lora_r = 4, .lora_alpha = 8,
                               .lora_targets = fx->targets};
    ll_classifier *c;
    REQUIRE(ll_classifier_create(&c, m, &cc, 1, &err) == 0);
    CHECK(c->n_views == fx->n_views);
    load_init(c);
    const ll_st_tensor *tok = ll_st_find(E, "tokens"), *ss = ll_st_find(E, "seq_start"), *lab = ll_st_find(E, "labels");
    REQUIRE(tok && ss && lab);
    ll_batch b = {(const int32_t *)tok->data, (const int32_t *)ss->data, (int)ss->n_elems - 1};
    const int32_t *labels = (const int32_t *)lab->data;
    const char *pre = bidir_mean ? "mean_bidir." : "";
    char name[128];
    float loss;
    memset(c->grads, 0, c->n_params * sizeof(float));
    REQUIRE(ll_classifier_train_step(c, &b, labels, NULL, 0, 1.0f, &loss, &err) == 0);
    snprintf(name, sizeof name, "%slogits0", pre);
    test_close_rel(name, c->logits, ref(name, 18), 18, 1e-4);
    snprintf(name, sizeof name, "%sloss0", pre);
    const float want_loss = ref(name, 1)[0];
    CHECK_MSG(fabs(loss - want_loss) <= 1e-4 * fabs(want_loss), "loss0 %.7g vs %.7g", loss, want_loss);
    printf("%s, %s: loss0 %.7f (transformers+PEFT %.7f)\n", fx->name, bidir_mean ? "mean/bidirectional" : "last/causal",
           loss, want_loss);
    double worst = 0;
    for (size_t i = 0; i < c->n_views; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "%sgrad.", pre);
        fixture_name(c->views[i].name, prefix, name, sizeof name);
        const size_t n = (size_t)(c->views[i].rows * c->views[i].cols);
        const float *w = ref(name, n);
        const double rel = max_abs_diff(c->views[i].grad, w, n) / max_abs(w, n);
        if (rel > worst) worst = rel;
        test_close_rel(name, c->views[i].grad, w, n, 1e-4);
    }
    printf("  step-0 gradients of %zu tensors: worst error %.2e of max |grad|\n", c->n_views, worst);
    if (!bidir_mean) {
        /* 5 optimiser steps */
        ll_adamw opt;
        REQUIRE(ll_adamw_init(&opt, c->n_params, 0.9f, 0.999f, 1e-8f, 0.01f));
        for (int k = 0; k < 5; k++) {
            memset(c->grads, 0, c->n_params * sizeof(float));
            REQUIRE(ll_classifier_train_step(c, &b, labels, NULL, 0, 1.0f, &loss, &err) == 0);
            const float gn = ll_clip_grad_norm(c->grads, c->n_params, 1.0f);
            const float lr = ll_lr_linear(k, 2, 10, 1e-2f);
            ll_adamw_step(&opt, c->params, c->grads, lr);
            snprintf(name, sizeof name, "loss.step%d", k);
            const float wl = ref(name, 1)[0];
            snprintf(name, sizeof name, "gradnorm.step%d", k);
            const float wg = ref(name, 1)[0];
            snprintf(name, sizeof name, "lr.step%d", k);
            const float wlr = ref(name, 1)[0];
            CHECK_MSG(fabs(loss - wl) <= 1e-3 * fabs(wl), "step %d loss %.7g vs %.7g", k, loss, wl);
            CHECK_MSG(fabs(gn - wg) <= 1e-3 * fabs(wg), "step %d grad norm %.7g vs %.7g", k, gn, wg);
            CHECK_MSG(fabs(lr - wlr) <= 1e-7, "step %d lr %.7g vs %.7g", k, lr, wlr);
            printf("  step %d: loss %.6f (ref %.6f)  grad norm %.5f (ref %.5f)  lr %.5f\n", k, loss, wl, gn, wg, lr);
        }
        worst = 0;
        for (size_t i = 0; i < c->n_views; i++) {
            fixture_name(c->views[i].name, "final.", name, sizeof name);
            const size_t n = (size_t)(c->views[i].rows * c->views[i].cols);
            const float *w = ref(name, n);
            const double rel = max_abs_diff(c->views[i].data, w, n) / max_abs(w, n);
            if (rel > worst) worst = rel;
            test_close_rel(name, c->views[i].data, w, n, 1e-3);
        }
        printf("  parameters after 5 steps: worst error %.2e of max |param|\n", worst);
        float logits[18];
        REQUIRE(ll_classifier_forward(c, &b, 0, 0, logits, &err) == 0);
        test_close_rel("logits_trained", logits, ref("logits_trained", 18), 18, 1e-3);
        ll_adamw_free(&opt);
    }
    ll_classifier_free(c);
    ll_model_free(m);
}

int main(void) {
    for (size_t f = 0; f < sizeof FIXTURES / sizeof *FIXTURES; f++) {
        ll_st_file *e;
        ll_error err = {0};
        char path[1024];
        snprintf(path, sizeof path, "%s/expected.safetensors", FIXTURES[f].dir);
        if (ll_st_open(&e, path, &err)) {
            fprintf(stderr, "%s (scripts/test.sh generates the Gemma 3 fixture): %s\n", path, err.message);
            return 1;
        }
        E = e;
        run(&FIXTURES[f], 0);
        run(&FIXTURES[f], 1);
        ll_st_close(e);
    }
    return test_summary("test_peft_parity");
}
