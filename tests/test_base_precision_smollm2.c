/* The real default model (SmolLM2-135M-Instruct Q4_1 GGUF, fetched by
 * scripts/setup.sh) kept as stored (Q4_1 matrices, mostly mapped from the
 * file) against the same file converted to f32 at load: the final hidden
 * states of the SST-2 dev sentences of tests/fixtures/smollm2 (causal and
 * bidirectional) and one classifier training step's loss and gradients
 * (LoRA on all seven targets with dropout, last-token pooling) are equal
 * byte for byte; the stored base takes under a fifth of f32's memory, all
 * of it but the reordered q/k rows read from the file mapping.
 * The tiny per-type files: test_base_precision.c. */
#include "io/safetensors.h"
#include "lsllama.h"
#include "model/model.h"
#include "train/classifier.h"
#include "test_util.h"

static ll_model *load(ll_base_precision p) {
    ll_load_options o = {.base_precision = p};
    ll_model *m = NULL;
    ll_error err = {0};
    if (ll_model_load(&m, test_smollm2_path(), &o, &err))
        fprintf(stderr, "%s\n(run scripts/setup.sh to fetch the model)\n", err.message);
    REQUIRE(m);
    return m;
}

static size_t resident(const ll_model *m) {
    size_t s = 0;
    for (int t = 0; t < LL_DTYPE_COUNT; t++) s += m->resident[t];
    return s;
}

int main(void) {
    ll_st_file *e;
    ll_error err = {0};
    REQUIRE(ll_st_open(&e, LL_SOURCE_DIR "/tests/fixtures/smollm2/expected.safetensors", &err) == 0);
    const ll_st_tensor *tok = ll_st_find(e, "tokens"), *ss = ll_st_find(e, "seq_start");
    REQUIRE(tok && ss && tok->dtype == LL_DTYPE_I32 && ss->dtype == LL_DTYPE_I32 && ss->n_elems >= 5);
    const int32_t *tokens = (const int32_t *)tok->data, *starts = (const int32_t *)ss->data;
    ll_model *ms = load(LL_BASE_STORED), *mf = load(LL_BASE_F32);
    const ll_config *c = ll_model_config(ms);
    CHECK(c->n_layers == 30 && c->dim == 576);
    /* the file's types: the embedding Q8_0, the layers' matrices Q4_1 */
    CHECK_MSG(ms->tok_emb.dtype == LL_DTYPE_Q8_0 && ms->layers[0].w_down.dtype == LL_DTYPE_Q4_1 &&
                  mf->tok_emb.dtype == LL_DTYPE_F32 && mf->layers[0].w_down.dtype == LL_DTYPE_F32,
              "matrices kept as %s, %s / %s, %s", ll_dtype_name(ms->tok_emb.dtype),
              ll_dtype_name(ms->layers[0].w_down.dtype), ll_dtype_name(mf->tok_emb.dtype),
              ll_dtype_name(mf->layers[0].w_down.dtype));
    /* every matrix but the reordered q/k is read from the file mapping */
    size_t qk = 0, mapped = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const ll_matrix *w[] = {&ms->layers[l].wq, &ms->layers[l].wk};
        for (int k = 0; k < 2; k++) qk += w[k]->rows * w[k]->ld_blocks * ll_dtype_block_bytes(w[k]->dtype);
    }
    for (int t = 0; t < LL_DTYPE_COUNT; t++) mapped += ms->mapped[t];
    CHECK_MSG(mapped == resident(ms) - qk && 5 * resident(ms) < resident(mf),
              "stored: %zu bytes resident (%zu mapped, %zu q/k), f32: %zu", resident(ms), mapped, qk, resident(mf));
    printf("resident matrix bytes: stored %zu (Q8_0 + Q4_1, %zu of them mapped), f32 %zu\n", resident(ms), mapped,
           resident(mf));

    /* hidden states of every sentence of the fixture */
    const int n = (int)ss->n_elems - 1;
    const size_t T = (size_t)tok->n_elems, D = (size_t)c->dim;
    const ll_batch all = {tokens, starts, n};
    float *hs = malloc(T * D * sizeof(float)), *hf = malloc(T * D * sizeof(float));
    REQUIRE(hs && hf);
    for (int bidir = 0; bidir < 2; bidir++) {
        ll_forward_options fo = {.bidirectional_from = bidir ? 0 : c->n_layers};
        ll_forward_outputs os = {.hidden = hs}, of = {.hidden = hf};
        REQUIRE(ll_forward(ms, &all, &fo, &os, &err) == 0);
        REQUIRE(ll_forward(mf, &all, &fo, &of, &err) == 0);
        CHECK_MSG(!memcmp(hs, hf, T * D * sizeof(float)), "%s: hidden states differ stored vs f32 (max %.3g)",
                  bidir ? "bidirectional" : "causal", max_abs_diff(hs, hf, T * D));
        printf("%d sentences, %zu tokens, %s: hidden states %s\n", n, T, bidir ? "bidirectional" : "causal",
               memcmp(hs, hf, T * D * sizeof(float)) ? "DIFFER" : "byte-identical");
    }
    free(hs), free(hf);

    /* one training step on the first four sentences */
    const ll_batch four = {tokens, starts, 4};
    const int32_t labels[] = {1, 0, 0, 1};
    ll_classifier_config cc;
    ll_classifier_config_default(&cc, ms);
    cc.n_labels = 2;
    cc.lora_r = 4;
    cc.lora_targets = (1u << LL_LORA_N_TARGETS) - 1;
    cc.lora_dropout = 0.1f;
    ll_classifier *cs, *cf;
    REQUIRE(ll_classifier_create(&cs, ms, &cc, 5, &err) == 0);
    REQUIRE(ll_classifier_create(&cf, mf, &cc, 5, &err) == 0);
    REQUIRE(cs->n_params == cf->n_params);
    /* B = 0 (PEFT's init) would leave every A gradient zero: give B values, the same in both */
    for (size_t v = 0; v < cs->n_views; v++)
        if (strstr(cs->views[v].name, "lora_B"))
            for (int64_t i = 0; i < cs->views[v].rows * cs->views[v].cols; i++)
                cs->views[v].data[i] = cf->views[v].data[i] = 0.02f * (float)((i * 37 % 19) - 9) / 9.0f;
    memset(cs->grads, 0, cs->n_params * sizeof(float));
    memset(cf->grads, 0, cf->n_params * sizeof(float));
    float ls = -1, lf = -2;
    REQUIRE(ll_classifier_train_step(cs, &four, labels, NULL, 99, 1.0f, &ls, &err) == 0);
    REQUIRE(ll_classifier_train_step(cf, &four, labels, NULL, 99, 1.0f, &lf, &err) == 0);
    CHECK_MSG(isfinite(ls) && !memcmp(&ls, &lf, sizeof ls), "loss %.9g stored, %.9g f32", ls, lf);
    const int same = !memcmp(cs->grads, cf->grads, cs->n_params * sizeof(float));
    CHECK_MSG(same, "gradients differ stored vs f32 (max %.3g)", max_abs_diff(cs->grads, cf->grads, cs->n_params));
    size_t zero = 0;
    for (size_t v = 0; v < cs->n_views; v++)
        zero += max_abs(cs->views[v].grad, (size_t)(cs->views[v].rows * cs->views[v].cols)) == 0.0;
    CHECK_MSG(zero == 0 && cs->n_views == 2 * 7 * (size_t)c->n_layers + 1, "%zu of %zu gradient tensors zero", zero,
              cs->n_views);
    printf("train step, LoRA r 4 on all targets (%zu parameters): loss %.6f, gradients %s\n", cs->n_params, ls,
           same ? "byte-identical" : "DIFFER");
    ll_classifier_free(cs);
    ll_classifier_free(cf);
    ll_model_free(ms);
    ll_model_free(mf);
    ll_st_close(e);
    return test_summary("test_base_precision_smollm2");
}
