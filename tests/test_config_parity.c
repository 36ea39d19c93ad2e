/* Config-key parity sweep (issue 11): every implemented option of LlamaConfig,
 * MistralConfig and Qwen2Config (biases, activations, head_dim, RoPE
 * settings, windows that a sequence does not reach, keys left to their
 * defaults) on a tiny random transformers model gives final hidden states
 * within 1e-4 of transformers'; every refused option and stray tensor is
 * refused with its key or tensor name. Checkpoints and expected values:
 * tools/gen_fixtures_config.py, run by scripts/test.sh into
 * LL_BUILD_DIR/generated/config_sweep. Also: the LoRA training pass on a
 * Llama with both biases and gelu is exact (finite differences of the whole
 * stack), and a Mistral window shorter than a sequence is refused at run
 * time. */
#include "io/safetensors.h"
#include "lsllama.h"
#include "model/lora.h"
#include "model/pass.h"
#include "test_util.h"

#define GEN LL_BUILD_DIR "/generated/config_sweep"

static void parity_case(const char *name) {
    char dir[512], exp[600];
    snprintf(dir, sizeof dir, GEN "/ok/%s", name);
    snprintf(exp, sizeof exp, "%s/expected.safetensors", dir);
    ll_st_file *e;
    ll_error err = {0};
    REQUIRE(ll_st_open(&e, exp, &err) == 0);
    const ll_st_tensor *tok = ll_st_find(e, "tokens"), *ss = ll_st_find(e, "seq_start"), *hs = ll_st_find(e, "hidden");
    REQUIRE(tok && ss && hs);
    ll_model *m = NULL;
    if (ll_model_load(&m, dir, NULL, &err)) {
        CHECK_MSG(0, "%s: load failed: %s", name, err.message);
        ll_st_close(e);
        return;
    }
    const size_t T = (size_t)tok->n_elems, D = (size_t)ll_model_config(m)->dim;
    REQUIRE((size_t)hs->n_elems == T * D);
    ll_batch b = {(const int32_t *)tok->data, (const int32_t *)ss->data, (int)ss->n_elems - 1};
    float *h = malloc(T * D * sizeof(float));
    ll_forward_outputs out = {.hidden = h};
    /* causal; then, where the fixture has them (Gemma 3), every layer bidirectional. A config.json with
     * use_bidirectional_attention: bidirectional, and a causal pass refused */
    const ll_config *pc = ll_model_config(m);
    const ll_st_tensor *want[2] = {hs, ll_st_find(e, "hidden_bidirectional")};
    if (pc->use_bidirectional_attention) {
        ll_forward_options causal = {.bidirectional_from = pc->n_layers};
        const int rc = ll_forward(m, &b, &causal, &out, &err);
        CHECK_MSG(rc == LL_ERR_UNSUPPORTED && strstr(err.message, "use_bidirectional_attention"),
                  "%s: causal pass: rc %d '%s'", name, rc, rc ? err.message : "");
    }
    for (int bidir = 0; bidir < 2 && want[bidir]; bidir++) {
        ll_forward_options fo = {.bidirectional_from = bidir || pc->use_bidirectional_attention ? 0 : pc->n_layers};
        const int rc = ll_forward(m, &b, &fo, &out, &err);
        CHECK_MSG(rc == 0, "%s: forward: %s", name, err.message);
        if (rc) continue;
        const float *ref = (const float *)want[bidir]->data;
        const double d = max_abs_diff(h, ref, T * D);
        double mag = 0;
        for (size_t i = 0; i < T * D; i++) mag = fmax(mag, fabs(ref[i]));
        CHECK_MSG(d <= 1e-4, "%s%s: max abs error %.3g > 1e-4 (values up to %.3g)", name,
                  bidir ? " (bidirectional)" : "", d, mag);
        printf("  ok      %-34s max abs error %.2e (values up to %.2f)%s\n", name, d, mag,
               bidir ? " bidirectional" : "");
    }
    free(h);
    ll_model_free(m);
    ll_st_close(e);
}

static void refused_case(const char *name, const char *want) {
    char dir[512];
    snprintf(dir, sizeof dir, GEN "/refused/%s", name);
    ll_model *m = NULL;
    ll_error err = {0};
    const int rc = ll_model_load(&m, dir, NULL, &err);
    CHECK_MSG(rc != 0 && strstr(err.message, want), "%s: rc %d, message '%s', want one naming %s", name, rc,
              rc ? err.message : "(loaded)", want);
    printf("  refused %-34s %s\n", name, rc ? err.message + (strstr(err.message, GEN) ? strlen(GEN) : 0) : "");
    ll_model_free(m);
}

/* A Mistral model whose window (8) is shorter than a 9-token sequence:
 * computed causal (the window_3 cases check the values), refused
 * bidirectional (transformers defines no bidirectional window for Mistral). */
static void window_case(void) {
    ll_model *m = NULL;
    ll_error err = {0};
    REQUIRE(ll_model_load(&m, GEN "/ok/mistral_window_not_reached", NULL, &err) == 0);
    int32_t toks[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, ss[2] = {0, 9};
    ll_batch b = {toks, ss, 1};
    CHECK_MSG(ll_forward(m, &b, NULL, NULL, &err) == 0, "9 tokens, causal: %s", err.message);
    ll_forward_options fo = {.bidirectional_from = 1};
    const int rc = ll_forward(m, &b, &fo, NULL, &err);
    CHECK_MSG(rc == LL_ERR_UNSUPPORTED && strstr(err.message, "sliding_window = 8"), "window: rc %d '%s'", rc,
              err.message);
    printf("  refused 9 tokens through a bidirectional window of 8: %s\n", err.message);
    ss[1] = 8; /* up to the window: computed */
    CHECK_MSG(ll_forward(m, &b, &fo, NULL, &err) == 0, "8 tokens: %s", err.message);
    ll_model_free(m);
}

/* Whole-stack gradient: L = sum(r * hidden) w.r.t. one LoRA A matrix entry
 * per target module and layer (the training pass must see the same
 * forward): on the Llama with attention and MLP biases and gelu, and on the
 * Gemma 3 with attention biases (q/k norms, post-norms, two RoPE bases, a
 * window of 3 the 5-token sequence passes), causal and bidirectional, with
 * stored and with recomputed activations. */
static void grad_case(const char *name, int bidirectional, int recompute) {
    ll_model *m = NULL;
    ll_error err = {0};
    char dir[512];
    snprintf(dir, sizeof dir, GEN "/ok/%s", name);
    REQUIRE(ll_model_load(&m, dir, NULL, &err) == 0);
    const ll_config *p = ll_model_config(m);
    REQUIRE(p->qkv_bias && p->o_bias);
    const int bidir_from = bidirectional ? 0 : p->n_layers;
    const size_t D_ = (size_t)p->dim, QD = (size_t)p->n_heads * p->head_dim,
                 KVD = (size_t)p->n_kv_heads * p->head_dim, F = (size_t)p->hidden_dim;
    const size_t in_dims[LL_LORA_N_TARGETS] = {D_, D_, D_, QD, D_, D_, F};
    const size_t out_dims[LL_LORA_N_TARGETS] = {QD, KVD, KVD, D_, F, F, D_};
    const int rank = 2;
    ll_lora lora = {.r = rank, .alpha = 4.0f, .scale = 2.0f, .dropout = 0.0f, .targets = 0x7F, .n_layers = p->n_layers};
    lora.modules = calloc((size_t)p->n_layers * LL_LORA_N_TARGETS, sizeof *lora.modules);
    for (int l = 0; l < p->n_layers; l++)
        for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
            ll_lora_module *md = ll_lora_at(&lora, l, t);
            const size_t na = rank * in_dims[t], nb = out_dims[t] * rank;
            md->A = malloc(na * 4), md->B = malloc(nb * 4), md->dA = calloc(na, 4), md->dB = calloc(nb, 4);
            for (size_t i = 0; i < na; i++) md->A[i] = 0.04f * (float)((i * 7 + (size_t)t) % 11) - 0.2f;
            for (size_t i = 0; i < nb; i++) md->B[i] = 0.05f * (float)((i * 5 + (size_t)l) % 9) - 0.2f;
        }
    int32_t toks[7] = {3, 8, 19, 40, 2, 5, 11}, ss[3] = {0, 5, 7};
    ll_batch b = {toks, ss, 2};
    const size_t T = 7, D = (size_t)p->dim;
    float *h = malloc(T * D * sizeof(float)), *r = malloc(T * D * sizeof(float));
    for (size_t i = 0; i < T * D; i++) r[i] = (float)((i * 13) % 17) / 17.0f - 0.5f;
    ll_acts acts = {.recompute = recompute};
    ll_lora_pass lp = {.lora = &lora, .training = 0, .seed = 1};
    REQUIRE(ll_stack_forward(m, &b, bidir_from, &lp, &acts, h, &err) == 0);
    REQUIRE(ll_stack_backward(m, &b, bidir_from, &lp, &acts, r, &err) == 0);
    double worst = 0;
    for (int t = 0; t < LL_LORA_N_TARGETS; t++)
        for (int l = 0; l < p->n_layers; l++) {
            ll_lora_module *md = ll_lora_at(&lora, l, t);
            const size_t i = (size_t)(l * 5 + t * 3) % (rank * in_dims[t]);
            const float save = md->A[i], step = 1e-2f;
            double lpl = 0, lmi = 0;
            md->A[i] = save + step;
            REQUIRE(ll_stack_forward(m, &b, bidir_from, &lp, NULL, h, &err) == 0);
            for (size_t k = 0; k < T * D; k++) lpl += (double)r[k] * h[k];
            md->A[i] = save - step;
            REQUIRE(ll_stack_forward(m, &b, bidir_from, &lp, NULL, h, &err) == 0);
            for (size_t k = 0; k < T * D; k++) lmi += (double)r[k] * h[k];
            md->A[i] = save;
            const double fd = (lpl - lmi) / (2.0 * step), an = md->dA[i];
            const double rel = fabs(fd - an) / fmax(1e-3, fabs(fd));
            worst = fmax(worst, rel);
            CHECK_MSG(rel < 2e-2, "%s%s%s: layer %d %s: dA %.6g, finite difference %.6g", name,
                      bidirectional ? " bidirectional" : "", recompute ? " recompute" : "", l,
                      ll_lora_target_names[t], an, fd);
        }
    printf("  LoRA gradients of %s%s%s vs finite differences: worst relative error %.2e\n", name,
           bidirectional ? " (bidirectional)" : "", recompute ? " (recomputed activations)" : "", worst);
    ll_acts_free(&acts);
    for (int l = 0; l < p->n_layers; l++)
        for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
            ll_lora_module *md = ll_lora_at(&lora, l, t);
            free(md->A), free(md->B), free(md->dA), free(md->dB);
        }
    free(lora.modules);
    free(h);
    free(r);
    ll_model_free(m);
}

int main(void) {
    char path[600];
    snprintf(path, sizeof path, GEN "/manifest.txt");
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "missing %s (run tools/gen_fixtures_config.py --out %s)", path, GEN);
    if (!f) return test_summary("test_config_parity");
    char line[512];
    int n_ok = 0, n_ref = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char kind[16], name[128];
        int used = 0;
        if (sscanf(line, "%15s %127s %n", kind, name, &used) < 2) continue;
        if (!strcmp(kind, "ok")) parity_case(name), n_ok++;
        else refused_case(name, line + used), n_ref++;
    }
    fclose(f);
    CHECK_MSG(n_ok >= 20 && n_ref >= 10, "manifest: %d parity cases, %d refusals", n_ok, n_ref);
    window_case();
    grad_case("llama_both_biases_gelu", 0, 0);
    for (int mode = 0; mode < 4; mode++) grad_case("gemma3_attention_bias", mode & 1, mode >> 1);
    return test_summary("test_config_parity");
}
