/* A backward pass reads only what its own forward pass stored: other passes
 * through the same model between a training forward and its backward (an
 * evaluation, a generation step) must not change the gradients. The tiny
 * Llama fixture with LoRA (dropout on) on every linear module: forward with
 * activations, then ll_forward and an inference ll_stack_forward on a
 * different, longer batch (new positions, a grown workspace), then backward.
 * Every LoRA gradient must equal, bit for bit, the one of a plain
 * forward + backward. */
#include <omp.h>

#include "lora_test_util.h"
#include "model/pass.h"
#include "test_util.h"

static unsigned long long rng = 11;
static float frand(void) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
}

/* Every module's dA and dB, concatenated: [sum over modules of r * in + out * r]. */
static size_t gather_grads(const ll_lora *lora, const size_t *in_dims, const size_t *out_dims, float *dst) {
    size_t n = 0;
    for (int l = 0; l < lora->n_layers; l++)
        for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
            const ll_lora_module *md = ll_lora_at(lora, l, t);
            const size_t na = (size_t)lora->r * in_dims[t], nb = out_dims[t] * (size_t)lora->r;
            if (dst) memcpy(dst + n, md->dA, na * sizeof(float)), memcpy(dst + n + na, md->dB, nb * sizeof(float));
            n += na + nb;
        }
    return n;
}

static void zero_grads(ll_lora *lora, const size_t *in_dims, const size_t *out_dims) {
    for (int l = 0; l < lora->n_layers; l++)
        for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
            ll_lora_module *md = ll_lora_at(lora, l, t);
            memset(md->dA, 0, (size_t)lora->r * in_dims[t] * sizeof(float));
            memset(md->dB, 0, out_dims[t] * (size_t)lora->r * sizeof(float));
        }
}

int main(void) {
    omp_set_num_threads(2); /* the attention scratch has a slice per thread */
    ll_model *m;
    ll_error err = {0};
    const ll_load_options lo = {.with_lm_head = 1};
    REQUIRE(ll_model_load(&m, LL_SOURCE_DIR "/tests/fixtures/tiny_llama/hf", &lo, &err) == 0);
    const ll_config *c = ll_model_config(m);
    const size_t D = c->dim;
    const int r = 2;
    size_t in_dims[LL_LORA_N_TARGETS], out_dims[LL_LORA_N_TARGETS];
    test_lora_dims(c, in_dims, out_dims);
    ll_lora lora = {.r = r, .alpha = 4.0f, .scale = 2.0f, .dropout = 0.25f, .targets = 0x7F, .n_layers = c->n_layers};
    test_lora_random(&lora, c, frand);
    /* the training batch: three sequences, positions restart at 4 and 5 */
    int32_t tokens[] = {5, 17, 3, 88, 42, 9, 61, 2, 33, 70, 11};
    int32_t starts[] = {0, 4, 5, 11};
    const ll_batch b = {tokens, starts, 3};
    /* the interleaved batch: one longer sequence (token t at position t) */
    enum { LONG = 40 };
    int32_t long_tokens[LONG], long_starts[] = {0, LONG};
    for (int t = 0; t < LONG; t++) long_tokens[t] = (7 * t + 3) % c->vocab_size;
    const ll_batch b_long = {long_tokens, long_starts, 1};

    const size_t T = 11, n_grads = gather_grads(&lora, in_dims, out_dims, NULL);
    float *hidden = malloc(T * D * 4), *dhidden = malloc(T * D * 4), *other = malloc(LONG * D * 4);
    float *logits = malloc((size_t)c->vocab_size * 4), *pooled = malloc(D * 4);
    float *ref = malloc(n_grads * 4), *got = malloc(n_grads * 4);
    for (size_t i = 0; i < T * D; i++) dhidden[i] = frand();
    const int modes[] = {c->n_layers, 1}; /* causal; bidirectional from layer 1 */
    for (size_t mi = 0; mi < sizeof modes / sizeof modes[0]; mi++) {
        const int from = modes[mi];
        const ll_lora_pass lp = {&lora, 1, 99 + mi, 0, NULL};
        /* reference: forward, backward */
        ll_acts acts = {0};
        zero_grads(&lora, in_dims, out_dims);
        REQUIRE(ll_stack_forward(m, &b, from, &lp, &acts, hidden, &err) == 0);
        REQUIRE(ll_stack_backward(m, &b, from, &lp, &acts, dhidden, &err) == 0);
        gather_grads(&lora, in_dims, out_dims, ref);
        ll_acts_free(&acts);
        /* the same, with other passes through the model in between */
        zero_grads(&lora, in_dims, out_dims);
        REQUIRE(ll_stack_forward(m, &b, from, &lp, &acts, hidden, &err) == 0);
        ll_forward_outputs out = {.hidden = other, .pooled = pooled, .pool = LL_POOL_MEAN, .logits_last = logits};
        const ll_forward_options fo = {.bidirectional_from = 0};
        REQUIRE(ll_forward(m, &b_long, &fo, &out, &err) == 0);
        const ll_lora_pass eval = {&lora, 0, 5, 0, NULL};
        REQUIRE(ll_stack_forward(m, &b_long, c->n_layers, &eval, NULL, NULL, &err) == 0);
        REQUIRE(ll_stack_backward(m, &b, from, &lp, &acts, dhidden, &err) == 0);
        gather_grads(&lora, in_dims, out_dims, got);
        ll_acts_free(&acts);
        size_t differ = 0;
        for (size_t i = 0; i < n_grads; i++) differ += memcmp(&ref[i], &got[i], sizeof(float)) != 0;
        CHECK_MSG(differ == 0, "mode %zu: %zu of %zu gradients changed by the interleaved passes (max diff %g)", mi,
                  differ, n_grads, max_abs_diff(ref, got, n_grads));
        CHECK(max_abs(ref, n_grads) > 0); /* the gradients are not trivially zero */
    }
    test_lora_free(&lora);
    free(hidden), free(dhidden), free(other), free(logits), free(pooled), free(ref), free(got);
    ll_model_free(m);
    return test_summary("test_backward_isolation");
}
