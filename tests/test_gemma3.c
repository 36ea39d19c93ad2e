// LL_TEST_LABELS: slow
/* Gemma 3 270M from its GGUF (Q4_K_M: Q4_K, Q5_0, Q6_K, Q8_0 matrices)
 * against transformers loading the same file (tools/gen_fixtures_gemma3.py,
 * run by scripts/test.sh into LL_BUILD_DIR/generated/gemma3): the config
 * read from the GGUF (sliding layers, RoPE bases, attention scale), then the
 * final-norm hidden states of 8 SST-2 sentences packed in one batch and of
 * one 1,200-token sequence (longer than the 512-token window), causal and
 * bidirectional, within 1e-3 of the largest magnitude. */
#include <math.h>

#include "io/safetensors.h"
#include "lsllama.h"
#include "test_util.h"

#define GEN LL_BUILD_DIR "/generated/gemma3/expected.safetensors"

static void compare(ll_model *m, const char *what, const int32_t *tokens, const int32_t *ss, int n, size_t T,
                    int bidirectional, const float *want) {
    const size_t D = (size_t)ll_model_config(m)->dim;
    float *h = malloc(T * D * sizeof(float));
    REQUIRE(h);
    ll_batch b = {tokens, ss, n};
    ll_forward_options fo = {.bidirectional_from = bidirectional ? 0 : ll_model_config(m)->n_layers};
    ll_forward_outputs out = {.hidden = h};
    ll_error err = {0};
    const int rc = ll_forward(m, &b, &fo, &out, &err);
    CHECK_MSG(rc == 0, "%s: %s", what, err.message);
    if (!rc) {
        double mag = 0, d = 0;
        for (size_t i = 0; i < T * D; i++) {
            mag = fmax(mag, fabs(want[i]));
            d = fmax(d, fabs((double)h[i] - want[i]));
        }
        CHECK_MSG(d <= 1e-3 * mag, "%s %s: max abs error %.3g > 1e-3 x %.3g", what,
                  bidirectional ? "bidirectional" : "causal", d, mag);
        printf("  %-34s %-13s max abs error %.3g (%.2e of the largest magnitude %.1f)\n", what,
               bidirectional ? "bidirectional" : "causal", d, d / mag, mag);
    }
    free(h);
}

int main(void) {
    ll_st_file *e;
    ll_error err = {0};
    if (ll_st_open(&e, GEN, &err)) {
        fprintf(stderr, "%s\n(run tools/gen_fixtures_gemma3.py after scripts/setup.sh --tests)\n", err.message);
        return 1;
    }
    ll_model *m = NULL;
    if (ll_model_load(&m, test_gemma3_path(), NULL, &err)) {
        fprintf(stderr, "%s\n(run scripts/setup.sh --tests to fetch the model)\n", err.message);
        return 1;
    }
    const ll_config *c = ll_model_config(m);
    CHECK(!strcmp(c->arch, "gemma3_text"));
    CHECK(c->n_layers == 18 && c->dim == 640 && c->hidden_dim == 2048 && c->n_heads == 4 && c->n_kv_heads == 1 &&
          c->head_dim == 256 && c->vocab_size == 262144 && c->tied_embeddings);
    CHECK(c->sliding_window == 512 && c->query_pre_attn_scalar == 256.0f && c->rope_theta == 1e6f &&
          c->rope_local_theta == 1e4f && c->hidden_act == LL_ACT_GELU_TANH);
    for (int l = 0; l < c->n_layers; l++) /* every 6th layer global */
        CHECK_MSG(ll_config_layer_sliding(c, l) == ((l + 1) % 6 != 0), "layer %d", l);
    const ll_st_tensor *tok = ll_st_find(e, "tokens"), *ss = ll_st_find(e, "seq_start"),
                       *long_tok = ll_st_find(e, "long_tokens");
    REQUIRE(tok && ss && long_tok);
    const char *names[2][2] = {{"hidden_causal", "hidden_bidirectional"},
                               {"long_hidden_causal", "long_hidden_bidirectional"}};
    for (int bidir = 0; bidir < 2; bidir++) {
        const ll_st_tensor *h = ll_st_find(e, names[0][bidir]), *lh = ll_st_find(e, names[1][bidir]);
        REQUIRE(h && lh);
        compare(m, "8 SST-2 sentences, one batch", (const int32_t *)tok->data, (const int32_t *)ss->data,
                (int)ss->n_elems - 1, (size_t)tok->n_elems, bidir, (const float *)h->data);
        const int32_t long_ss[2] = {0, (int32_t)long_tok->n_elems};
        compare(m, "1,200 tokens (window 512)", (const int32_t *)long_tok->data, long_ss, 1,
                (size_t)long_tok->n_elems, bidir, (const float *)lh->data);
    }
    ll_model_free(m);
    ll_st_close(e);
    return test_summary("test_gemma3");
}
