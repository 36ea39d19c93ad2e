/* Final hidden states, pooled vectors and LM-head logits of tiny random
 * models against transformers (fixtures: tools/gen_fixtures_forward.py):
 * a Llama with GQA and hidden size 60 read from safetensors and from an F32
 * GGUF (interleaved q/k rows), a Llama-3.1-style model with llama3 RoPE
 * scaling and tied embeddings from bf16 sharded safetensors, and a Qwen2
 * model with q/k/v biases from f16 safetensors. Causal, fully bidirectional
 * and bidirectional-from-layer-1 attention; all five pooling modes. */
#include <omp.h>

#include "io/safetensors.h"
#include "lsllama.h"
#include "test_util.h"

#define FIX LL_SOURCE_DIR "/tests/fixtures/tiny_llama"

static const float *tensor_f32(const ll_st_file *f, const char *name, size_t *n) {
    const ll_st_tensor *t = ll_st_find(f, name);
    if (!t || t->dtype != LL_DTYPE_F32) {
        fprintf(stderr, "%s: no F32 tensor %s\n", f->file.path, name);
        exit(1);
    }
    if (n) *n = (size_t)t->n_elems;
    return (const float *)t->data;
}

static void check_close(const char *what, const float *got, const float *want, size_t n, double tol) {
    const double d = max_abs_diff(got, want, n);
    CHECK_MSG(d <= tol, "%s: max abs error %.3g > %.1g", what, d, tol);
    printf("  %-40s max abs error %.2e\n", what, d);
}

static void run_case(const char *label, const char *model_path, const char *expected_path, int has_logits) {
    printf("%s (%s)\n", label, model_path);
    ll_st_file *e;
    ll_error err = {0};
    REQUIRE(ll_st_open(&e, expected_path, &err) == 0);
    const ll_st_tensor *tok = ll_st_find(e, "tokens"), *ss = ll_st_find(e, "seq_start");
    REQUIRE(tok && ss && tok->dtype == LL_DTYPE_I32 && ss->dtype == LL_DTYPE_I32);
    ll_load_options lo = {.with_lm_head = has_logits};
    ll_model *m;
    if (ll_model_load(&m, model_path, &lo, &err)) {
        fprintf(stderr, "load failed: %s\n", err.message);
        CHECK(0);
        ll_st_close(e);
        return;
    }
    const ll_config *c = ll_model_config(m);
    const int n_seqs = (int)ss->n_elems - 1;
    const size_t T = (size_t)tok->n_elems, D = (size_t)c->dim;
    ll_batch b = {(const int32_t *)tok->data, (const int32_t *)ss->data, n_seqs};
    float *hidden = malloc(T * D * sizeof(float)), *pooled = malloc((size_t)n_seqs * D * sizeof(float));
    float *logits = malloc((size_t)n_seqs * c->vocab_size * sizeof(float));
    const struct {
        const char *name;
        int from;
    } masks[] = {{"causal", c->n_layers}, {"bidirectional", 0}, {"bidir_from_1", 1}};
    const char *pools[] = {"last", "mean", "max", "first"};
    /* The first pass runs on one thread, the rest on one more thread than
     * usual: the workspace must grow its per-thread attention scratch. */
    const int threads = omp_get_max_threads();
    for (int k = 0; k < 3; k++) {
        ll_forward_options fo = {.bidirectional_from = masks[k].from};
        char name[96];
        ll_forward_outputs out = {.hidden = hidden, .logits_last = (has_logits && k == 0) ? logits : NULL};
        omp_set_num_threads(k == 0 ? 1 : threads + 1);
        CHECK(ll_forward(m, &b, &fo, &out, &err) == 0);
        snprintf(name, sizeof name, "hidden_%s", masks[k].name);
        size_t n;
        const float *want = tensor_f32(e, name, &n);
        REQUIRE(n == T * D);
        check_close(name, hidden, want, n, 1e-4);
        if (out.logits_last) {
            const float *wl = tensor_f32(e, "logits_last_causal", &n);
            REQUIRE(n == (size_t)n_seqs * c->vocab_size);
            check_close("logits_last_causal", logits, wl, n, 1e-4);
        }
        if (k == 2) continue; /* the fixture pools causal and bidirectional only */
        for (int p = 0; p < 4; p++) {
            ll_forward_outputs po = {.pooled = pooled, .pool = (ll_pool)p};
            CHECK(ll_forward(m, &b, &fo, &po, &err) == 0);
            snprintf(name, sizeof name, "pooled_%s_%s", pools[p], masks[k].name);
            const float *wp = tensor_f32(e, name, &n);
            REQUIRE(n == (size_t)n_seqs * D);
            check_close(name, pooled, wp, n, 1e-4);
        }
    }
    omp_set_num_threads(threads);
    /* A sequence's hidden states must not depend on its batch neighbours. */
    for (int k = 0; k < 2; k++) {
        ll_forward_options fo = {.bidirectional_from = masks[k].from};
        ll_forward_outputs out = {.hidden = hidden};
        CHECK(ll_forward(m, &b, &fo, &out, &err) == 0);
        double worst = 0;
        for (int s = 0; s < n_seqs; s++) {
            const int32_t a = b.seq_start[s], z = b.seq_start[s + 1];
            int32_t starts[2] = {0, z - a};
            ll_batch one = {b.tokens + a, starts, 1};
            float *alone = malloc((size_t)(z - a) * D * sizeof(float));
            ll_forward_outputs o1 = {.hidden = alone};
            CHECK(ll_forward(m, &one, &fo, &o1, &err) == 0);
            const double d = max_abs_diff(alone, hidden + (size_t)a * D, (size_t)(z - a) * D);
            if (d > worst) worst = d;
            free(alone);
        }
        CHECK_MSG(worst < 1e-5, "%s: alone vs batched differ by %.3g", masks[k].name, worst);
        printf("  %-40s alone vs batched %.2e\n", masks[k].name, worst);
    }
    free(hidden);
    free(pooled);
    free(logits);
    ll_model_free(m);
    ll_st_close(e);
}

int main(void) {
    run_case("tiny llama, safetensors f32", FIX "/hf", FIX "/expected.safetensors", 1);
    run_case("tiny llama, single .safetensors file", FIX "/hf/model.safetensors", FIX "/expected.safetensors", 1);
    run_case("tiny llama, GGUF F32", FIX "/tiny_llama_f32.gguf", FIX "/expected.safetensors", 1);
    run_case("llama3 rope scaling, bf16 sharded, tied", FIX "/hf_bf16_sharded", FIX "/hf_bf16_sharded/expected.safetensors", 0);
    run_case("qwen2 q/k/v bias, f16", FIX "/hf_qwen2_f16", FIX "/hf_qwen2_f16/expected.safetensors", 0);
    return test_summary("test_forward_reference");
}
