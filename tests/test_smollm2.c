// LL_TEST_LABELS: slow
/* The real default model: SmolLM2-135M-Instruct Q4_1 GGUF (fetched by
 * scripts/setup.sh). Its final hidden states for 8 SST-2 dev sentences must
 * match transformers loading the same GGUF (fixture:
 * tools/gen_fixtures_smollm2.py) within 1e-3 of the largest magnitude,
 * causal and bidirectional, and the pooled vectors likewise. */
#include "io/safetensors.h"
#include "lsllama.h"
#include "test_util.h"

static const float *f32(const ll_st_file *f, const char *name, size_t want) {
    const ll_st_tensor *t = ll_st_find(f, name);
    REQUIRE(t && t->dtype == LL_DTYPE_F32 && t->n_elems == want);
    return (const float *)t->data;
}

int main(void) {
    ll_st_file *e;
    ll_error err = {0};
    REQUIRE(ll_st_open(&e, LL_SOURCE_DIR "/tests/fixtures/smollm2/expected.safetensors", &err) == 0);
    const ll_st_tensor *tok = ll_st_find(e, "tokens"), *ss = ll_st_find(e, "seq_start");
    REQUIRE(tok && ss && tok->dtype == LL_DTYPE_I32 && ss->dtype == LL_DTYPE_I32);
    ll_model *m;
    const char *path = test_smollm2_path();
    if (ll_model_load(&m, path, NULL, &err)) {
        fprintf(stderr, "%s\n(run scripts/setup.sh to fetch the model)\n", err.message);
        return 1;
    }
    const ll_config *c = ll_model_config(m);
    CHECK(c->n_layers == 30 && c->dim == 576 && c->n_heads == 9 && c->n_kv_heads == 3 && c->vocab_size == 49152);
    const int n = (int)ss->n_elems - 1;
    const size_t T = (size_t)tok->n_elems, D = (size_t)c->dim;
    CHECK(n >= 8);
    ll_batch b = {(const int32_t *)tok->data, (const int32_t *)ss->data, n};
    float *hidden = malloc(T * D * sizeof(float)), *pooled = malloc((size_t)n * D * sizeof(float));
    const struct {
        const char *mask, *hidden_name, *pooled_name;
        int from;
        ll_pool pool;
    } cases[] = {{"causal", "hidden_causal", "pooled_last_causal", c->n_layers, LL_POOL_LAST},
                 {"bidirectional", "hidden_bidirectional", "pooled_mean_bidirectional", 0, LL_POOL_MEAN}};
    for (int k = 0; k < 2; k++) {
        ll_forward_options fo = {.bidirectional_from = cases[k].from};
        ll_forward_outputs out = {.hidden = hidden, .pooled = pooled, .pool = cases[k].pool};
        CHECK(ll_forward(m, &b, &fo, &out, &err) == 0);
        const float *want = f32(e, cases[k].hidden_name, T * D);
        const double scale = max_abs(want, T * D), d = max_abs_diff(hidden, want, T * D);
        CHECK_MSG(d <= 1e-3 * scale, "%s: max abs error %.3g > 1e-3 x %.3g", cases[k].hidden_name, d, scale);
        printf("%-22s %zu tokens: max abs error %.3g, largest magnitude %.3g, ratio %.2e\n", cases[k].hidden_name, T,
               d, scale, d / scale);
        const float *wp = f32(e, cases[k].pooled_name, (size_t)n * D);
        const double ps = max_abs(wp, (size_t)n * D), pd = max_abs_diff(pooled, wp, (size_t)n * D);
        CHECK_MSG(pd <= 1e-3 * ps, "%s: max abs error %.3g", cases[k].pooled_name, pd);
        printf("%-22s ratio %.2e\n", cases[k].pooled_name, pd / ps);
    }
    free(hidden);
    free(pooled);
    ll_model_free(m);
    ll_st_close(e);
    return test_summary("test_smollm2");
}
