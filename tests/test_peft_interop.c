/* Interop with transformers + PEFT (tools/interop_peft.py; needs python3 with
 * torch, transformers and peft, which scripts/setup.sh installs):
 *   1. lsllama writes an adapter (LoRA on q, k, v, o, gate, up, down with
 *      B != 0, rsLoRA, named labels), its logits for a batch, and the merged
 *      model; PEFT loads the adapter onto the same base and transformers
 *      loads the merged model: both give lsllama's logits within 1e-3.
 *   2. The script perturbs the PEFT model's weights and saves the adapter
 *      with PEFT; lsllama loads it and reproduces PEFT's logits within 1e-3.
 * Bases: the PEFT fixture's Llama, a Llama-3.1-style one (llama3 RoPE scaling,
 * tied embeddings, bf16, no score head), a Qwen2 one (q/k/v biases, f16) and
 * a Gemma 3 one (tools/gen_fixtures_config.py: Gemma3TextForSequenceClassification).
 *
 * Token classification (TOKEN_CLS, causal: bidirectional_from = n_layers; the
 * Llama fixture): per-token logits [T, K] of a head with bias, within 1e-3,
 *   1. lsllama adapter -> PeftModelForTokenClassification on
 *      LlamaForTokenClassification; `lsllama merge` (the CLI) -> a
 *      LlamaForTokenClassification config that transformers loads;
 *   2. a fresh PEFT TOKEN_CLS adapter (get_peft_model, B != 0, random head
 *      and bias, save_pretrained) -> lsllama; the script also checks that
 *      PEFT's adapter_config.json values and tensor names/shapes are the ones
 *      lsllama writes for the same settings;
 *   3. a head-only token classifier (r 0, no targets): lsllama saves and
 *      reloads it with the same logits; PEFT refuses the folder; its merged
 *      model (ll_merge_save without a task type: the classifier's) gives the
 *      same logits in transformers. */
#include <sys/wait.h>

#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "train/adapter.h"
#include "test_util.h"

#define FIX LL_SOURCE_DIR "/tests/fixtures/peft_seqcls"

/* One base: lsllama -> PEFT / transformers, and (reverse) PEFT -> lsllama. */
static void run(const char *root, const char *base_dir, const char *tag, int reverse, const ll_batch *b,
                const ll_st_tensor *tok, const ll_st_tensor *ss) {
    ll_error err = {0};
    ll_model *m;
    REQUIRE(ll_model_load(&m, base_dir, NULL, &err) == 0);
    const ll_config *pc = ll_model_config(m);
    /* 1. lsllama -> PEFT / transformers */
    ll_classifier_config cc = {.n_labels = 4, .pool = LL_POOL_LAST,
                               .bidirectional_from = ll_config_default_bidirectional_from(pc), .lora_r = 4,
                               .lora_alpha = 16, .lora_targets = (1u << LL_LORA_N_TARGETS) - 1, .use_rslora = 1};
    ll_classifier *c;
    REQUIRE(ll_classifier_create(&c, m, &cc, 42, &err) == 0);
    uint64_t s = 12345;
    for (size_t i = 0; i < c->n_views; i++) /* B != 0 (PEFT starts it at 0), so the adapter matters */
        if (strstr(c->views[i].name, "lora_B"))
            for (int64_t k = 0; k < c->views[i].rows * c->views[i].cols; k++) {
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                c->views[i].data[k] = 0.2f * ((float)(s >> 40) / (float)(1ull << 24) - 0.5f);
            }
    float logits[6 * 4];
    REQUIRE(b->n_seqs == 6 && ll_classifier_forward(c, b, 0, 0, logits, &err) == 0);
    char adapter[700], merged[700], batch[700], out[700], cmd[4096];
    snprintf(adapter, sizeof adapter, "%s/%s/adapter", root, tag);
    snprintf(merged, sizeof merged, "%s/%s/merged", root, tag);
    snprintf(batch, sizeof batch, "%s/%s/batch.safetensors", root, tag);
    snprintf(out, sizeof out, "%s/%s", root, tag);
    static const char *const labels[] = {"sadness", "joy", "anger", "fear"};
    ll_adapter_meta meta = {base_dir, labels, "SEQ_CLS"};
    int rc = ll_adapter_save(c, adapter, &meta, &err);
    CHECK_MSG(rc == 0, "%s: %s", tag, err.message);
    ll_merge_options mo = ll_merge_options_default();
    mo.id2label = labels;
    rc = rc ? rc : ll_merge_save(c, merged, &mo, &err);
    CHECK_MSG(rc == 0, "%s: %s", tag, err.message);
    ll_st_write_tensor ts[] = {
        {"tokens", LL_DTYPE_I32, 1, {tok->shape[0]}, tok->data, NULL, NULL},
        {"seq_start", LL_DTYPE_I32, 1, {ss->shape[0]}, ss->data, NULL, NULL},
        {"logits", LL_DTYPE_F32, 2, {b->n_seqs, 4}, logits, NULL, NULL},
    };
    REQUIRE(rc || ll_st_write_file(batch, ts, 3, NULL, 0, &err) == 0);
    snprintf(cmd, sizeof cmd,
             "python3 '%s/tools/interop_peft.py' --base '%s' --adapter '%s' --batch '%s' --merged '%s' %s%s%s "
             "--tol 1e-3",
             LL_SOURCE_DIR, base_dir, adapter, batch, merged, reverse ? "--peft-out '" : "", reverse ? out : "",
             reverse ? "'" : "");
    printf("== %s (%s)\n%s\n", tag, pc->arch, cmd);
    fflush(stdout);
    const int st = rc ? -1 : system(cmd);
    const int py_ok = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    CHECK_MSG(py_ok, "%s: interop_peft.py failed (status %d)", tag, st);
    if (py_ok && !pc->use_bidirectional_attention && !strcmp(pc->arch, "gemma3_text")) {
        /* a causal merged classifier whose config.json is then told use_bidirectional_attention contradicts
         * itself (lsllama.bidirectional_from > 0): refused by the key, not run either way */
        char bad[800];
        snprintf(bad, sizeof bad, "%s/merged_contradiction", out);
        snprintf(cmd, sizeof cmd,
                 "rm -rf '%s' && cp -r '%s' '%s' && python3 -c \"import json, sys; p = sys.argv[1] + '/config.json'; "
                 "c = json.load(open(p)); c['use_bidirectional_attention'] = True; json.dump(c, open(p, 'w'))\" '%s'",
                 bad, merged, bad, bad);
        REQUIRE(system(cmd) == 0);
        ll_model *bm;
        ll_classifier *bc = NULL;
        REQUIRE(ll_model_load(&bm, bad, NULL, &err) == 0);
        const int brc = ll_merged_load(bad, bm, &bc, NULL, &err);
        CHECK_MSG(brc == LL_ERR_CONFIG && strstr(err.message, "lsllama.bidirectional_from") &&
                      strstr(err.message, "use_bidirectional_attention"),
                  "contradicting merged folder: %d %s", brc, err.message);
        printf("contradicting merged folder refused: %s\n", err.message);
        ll_classifier_free(bc);
        ll_model_free(bm);
    }

    /* 2. PEFT -> lsllama */
    if (py_ok && reverse) {
        char peft_dir[800], peft_logits[800];
        snprintf(peft_dir, sizeof peft_dir, "%s/peft_adapter", out);
        snprintf(peft_logits, sizeof peft_logits, "%s/peft_logits.safetensors", out);
        ll_classifier *p;
        rc = ll_adapter_load(peft_dir, m, NULL, &p, NULL, &err);
        CHECK_MSG(rc == 0, "loading the PEFT-written adapter: %s", err.message);
        ll_st_file *pl;
        REQUIRE(ll_st_open(&pl, peft_logits, &err) == 0);
        const ll_st_tensor *want = ll_st_find(pl, "logits");
        REQUIRE(want && want->n_elems == 24 && want->dtype == LL_DTYPE_F32);
        if (!rc) {
            CHECK(p->cfg.lora_targets == cc.lora_targets && p->cfg.use_rslora && p->cfg.n_labels == 4);
            float got[24];
            REQUIRE(ll_classifier_forward(p, b, 0, 0, got, &err) == 0);
            const double scale = fmax(1.0, max_abs((const float *)want->data, 24)),
                         d = max_abs_diff(got, (const float *)want->data, 24);
            CHECK_MSG(d <= 1e-3 * scale, "PEFT-saved adapter in lsllama: max |diff| %.3g", d);
            printf("PEFT-saved adapter in lsllama vs PEFT: max |diff| %.3g (tolerance %.3g)\n", d, 1e-3 * scale);
            CHECK(memcmp(got, logits, sizeof got)); /* the perturbation changed something */
            ll_classifier_free(p);
        }
        ll_st_close(pl);
    }
    ll_classifier_free(c);
    ll_model_free(m);
}

/* Deterministic values in [-scale/2, scale/2). */
static void fill(float *x, int64_t n, float scale, uint64_t *s) {
    for (int64_t k = 0; k < n; k++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        x[k] = scale * ((float)(*s >> 40) / (float)(1ull << 24) - 0.5f);
    }
}

static int run_cmd(const char *cmd) {
    printf("%s\n", cmd);
    fflush(stdout);
    const int st = system(cmd);
    return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Token classification on the Llama fixture: both directions, the CLI merge,
 * and a head-only adapter. */
static void run_token(const char *root, const char *base_dir, const ll_batch *b, const ll_st_tensor *tok,
                      const ll_st_tensor *ss) {
    enum { K = 5 };
    static const char *const labels[K] = {"O", "B-PER", "I-PER", "B-LOC", "I-LOC"};
    ll_error err = {0};
    ll_model *m;
    REQUIRE(ll_model_load(&m, base_dir, NULL, &err) == 0);
    const ll_config *pc = ll_model_config(m);
    const int T = b->seq_start[b->n_seqs];
    char dir[700], adapter[800], merged[800], batch[800], head_only[800], cmd[4096];
    snprintf(dir, sizeof dir, "%s/token", root);
    snprintf(adapter, sizeof adapter, "%s/adapter", dir);
    snprintf(merged, sizeof merged, "%s/merged_cli", dir);
    snprintf(batch, sizeof batch, "%s/batch.safetensors", dir);
    snprintf(head_only, sizeof head_only, "%s/head_only", dir);
    printf("== token (%s)\n", pc->arch);

    /* 1. LoRA on every projection (plain alpha/r scaling this time), B != 0,
     * head weight and bias random; dropout is training-only */
    ll_classifier_config cc = {.n_labels = K, .bidirectional_from = pc->n_layers, .head_bias = 1, .lora_r = 4,
                               .lora_alpha = 8, .lora_targets = (1u << LL_LORA_N_TARGETS) - 1, .token_task = 1,
                               .head_dropout = 0.1f};
    ll_classifier *c;
    REQUIRE(ll_classifier_create(&c, m, &cc, 7, &err) == 0);
    uint64_t s = 777;
    for (size_t i = 0; i < c->n_views; i++) {
        ll_param_view *v = &c->views[i];
        if (strstr(v->name, "lora_B")) fill(v->data, v->rows * v->cols, 0.2f, &s);
        else if (!strcmp(v->name, "score.weight")) fill(v->data, v->rows * v->cols, 0.6f, &s);
        else if (!strcmp(v->name, "score.bias")) fill(v->data, v->rows, 2.0f, &s);
    }
    REQUIRE(ll_classifier_logit_rows(c, b) == (size_t)T);
    float *logits = malloc((size_t)T * K * sizeof *logits), *got = malloc((size_t)T * K * sizeof *got);
    REQUIRE(logits && got);
    REQUIRE(ll_classifier_forward(c, b, 0, 0, logits, &err) == 0);
    ll_adapter_meta meta = {base_dir, labels, "TOKEN_CLS"};
    int rc = ll_adapter_save(c, adapter, &meta, &err);
    CHECK_MSG(rc == 0, "token adapter: %s", err.message);
    /* a token head is no *ForSequenceClassification */
    ll_merge_options mo = ll_merge_options_default();
    mo.task_type = "SEQ_CLS";
    char wrong[800];
    snprintf(wrong, sizeof wrong, "%s/merged_wrong", dir);
    CHECK(ll_merge_save(c, wrong, &mo, &err) == LL_ERR_ARG && strstr(err.message, "does not fit a token"));

    /* 3. head-only: saved as r 0 / target_modules [], reloaded with the same logits */
    ll_classifier_config hc = cc;
    hc.lora_r = 0, hc.lora_targets = 0;
    ll_classifier *h, *h2 = NULL;
    REQUIRE(ll_classifier_create(&h, m, &hc, 8, &err) == 0);
    REQUIRE(h->n_views == 2);
    fill(h->head_w, (int64_t)K * pc->dim, 0.6f, &s);
    fill(h->head_b, K, 2.0f, &s);
    float *hl = malloc((size_t)T * K * sizeof *hl);
    REQUIRE(hl && ll_classifier_forward(h, b, 0, 0, hl, &err) == 0);
    int hrc = ll_adapter_save(h, head_only, &meta, &err);
    CHECK_MSG(hrc == 0, "head-only adapter: %s", err.message);
    if (!hrc) hrc = ll_adapter_load(head_only, m, NULL, &h2, NULL, &err);
    CHECK_MSG(hrc == 0, "reloading the head-only adapter: %s", err.message);
    if (!hrc) {
        CHECK(h2->cfg.lora_r == 0 && !h2->cfg.lora_targets && h2->cfg.token_task && h2->cfg.head_bias &&
              h2->cfg.n_labels == K && h2->cfg.bidirectional_from == pc->n_layers);
        REQUIRE(ll_classifier_forward(h2, b, 0, 0, got, &err) == 0);
        const double d = max_abs_diff(got, hl, (size_t)T * K);
        CHECK_MSG(d == 0, "head-only adapter reloaded: max |diff| %.3g", d);
        printf("head-only token adapter saved and reloaded by lsllama: max |diff| %.3g\n", d);
        ll_classifier_free(h2);
    }
    /* merged (task from the classifier: TOKEN_CLS), which transformers can load */
    char head_merged[800];
    snprintf(head_merged, sizeof head_merged, "%s/head_only_merged", dir);
    if (!hrc) hrc = ll_merge_save(h, head_merged, NULL, &err);
    CHECK_MSG(hrc == 0, "merging the head-only classifier: %s", err.message);
    ll_st_write_tensor ts[] = {
        {"tokens", LL_DTYPE_I32, 1, {tok->shape[0]}, tok->data, NULL, NULL},
        {"seq_start", LL_DTYPE_I32, 1, {ss->shape[0]}, ss->data, NULL, NULL},
        {"logits", LL_DTYPE_F32, 2, {T, K}, logits, NULL, NULL},
        {"head_only_logits", LL_DTYPE_F32, 2, {T, K}, hl, NULL, NULL},
    };
    REQUIRE(rc || ll_st_write_file(batch, ts, 4, NULL, 0, &err) == 0);
    free(hl);
    ll_classifier_free(h);

    /* merged by the CLI: the adapter's task type must reach the config (the
     * fixture base has no tokenizer: --allow-inexact writes none) */
    snprintf(cmd, sizeof cmd, "'%s' merge '%s' --adapter '%s' --out '%s' --allow-inexact > /dev/null 2>&1", LL_CLI_PATH, base_dir, adapter,
             merged);
    const int merged_ok = !rc && run_cmd(cmd);
    CHECK_MSG(merged_ok, "lsllama merge of the TOKEN_CLS adapter failed");

    /* 1 + 2 in Python, and PEFT's refusal of the head-only folder */
    snprintf(cmd, sizeof cmd,
             "python3 '%s/tools/interop_peft.py' --base '%s' --adapter '%s' --batch '%s' --merged '%s' "
             "--peft-out '%s' --refused '%s' --refused-merged '%s' --tol 1e-3",
             LL_SOURCE_DIR, base_dir, adapter, batch, merged, dir, head_only, head_merged);
    const int py_ok = merged_ok && !hrc && run_cmd(cmd);
    CHECK_MSG(py_ok, "token: interop_peft.py failed");

    /* 2. PEFT -> lsllama */
    if (py_ok) {
        char peft_dir[800], peft_logits[800];
        snprintf(peft_dir, sizeof peft_dir, "%s/peft_adapter", dir);
        snprintf(peft_logits, sizeof peft_logits, "%s/peft_logits.safetensors", dir);
        ll_classifier *p;
        ll_adapter_info info;
        rc = ll_adapter_load(peft_dir, m, NULL, &p, &info, &err);
        CHECK_MSG(rc == 0, "loading the PEFT-written TOKEN_CLS adapter: %s", err.message);
        ll_st_file *pl;
        REQUIRE(ll_st_open(&pl, peft_logits, &err) == 0);
        const ll_st_tensor *want = ll_st_find(pl, "logits");
        REQUIRE(want && want->n_elems == (int64_t)T * K && want->dtype == LL_DTYPE_F32);
        if (!rc) {
            CHECK(!strcmp(info.task_type, "TOKEN_CLS") && !info.has_label_map);
            CHECK(p->cfg.token_task && p->cfg.head_bias && p->cfg.lora_targets == cc.lora_targets &&
                  p->cfg.lora_r == 4 && !p->cfg.use_rslora && p->cfg.n_labels == K &&
                  p->cfg.bidirectional_from == pc->n_layers);
            REQUIRE(ll_classifier_forward(p, b, 0, 0, got, &err) == 0);
            const double scale = fmax(1.0, max_abs((const float *)want->data, (size_t)T * K)),
                         d = max_abs_diff(got, (const float *)want->data, (size_t)T * K);
            CHECK_MSG(d <= 1e-3 * scale, "PEFT-saved TOKEN_CLS adapter in lsllama: max |diff| %.3g", d);
            printf("PEFT-saved TOKEN_CLS adapter in lsllama vs PEFT: max |diff| %.3g (tolerance %.3g), [%d, %d]\n", d,
                   1e-3 * scale, T, K);
            ll_adapter_info_free(&info);
            ll_classifier_free(p);
        }
        ll_st_close(pl);
    }
    free(logits);
    free(got);
    ll_classifier_free(c);
    ll_model_free(m);
}

int main(void) {
    char root[512];
    snprintf(root, sizeof root, "%s/test_peft_interop.XXXXXX", LL_BUILD_DIR);
    REQUIRE(mkdtemp(root));
    ll_error err = {0};
    ll_st_file *e;
    REQUIRE(ll_st_open(&e, FIX "/expected.safetensors", &err) == 0);
    const ll_st_tensor *tok = ll_st_find(e, "tokens"), *ss = ll_st_find(e, "seq_start");
    REQUIRE(tok && ss);
    ll_batch b = {(const int32_t *)tok->data, (const int32_t *)ss->data, (int)ss->n_elems - 1};
    run(root, FIX "/base", "llama", 1, &b, tok, ss);
    /* Llama 3.1 RoPE scaling, tied embeddings, bf16 weights, no score head in the base */
    run(root, LL_SOURCE_DIR "/tests/fixtures/tiny_llama/hf_bf16_sharded", "llama3_bf16", 0, &b, tok, ss);
    /* Qwen2: q/k/v biases */
    run(root, LL_SOURCE_DIR "/tests/fixtures/tiny_llama/hf_qwen2_f16", "qwen2_f16", 0, &b, tok, ss);
    /* Gemma 3 (q/k norms, post-norms, (1 + w) norms, sliding layers with a window of 3 that the batch's
     * sequences pass, attention biases): the config sweep's tiny model (vocabulary 61: ids folded into it) */
    int32_t gemma_tok[64];
    REQUIRE(tok->n_elems <= 64);
    for (int64_t i = 0; i < tok->n_elems; i++) gemma_tok[i] = ((const int32_t *)tok->data)[i] % 61;
    ll_st_tensor gtok = *tok;
    gtok.data = (const uint8_t *)gemma_tok;
    ll_batch gb = {gemma_tok, b.seq_start, b.n_seqs};
    run(root, LL_BUILD_DIR "/generated/config_sweep/ok/gemma3_attention_bias", "gemma3", 1, &gb, &gtok, ss);
    /* ... and one whose config.json sets use_bidirectional_attention: every layer bidirectional, the window halved,
     * in PEFT, in the merged folder (lsllama writes the key for such classifiers) and back in lsllama */
    run(root, LL_BUILD_DIR "/generated/config_sweep/ok/gemma3_default_bidirectional_key", "gemma3_bidirectional", 1,
        &gb, &gtok, ss);
    /* token classification (TOKEN_CLS), causal */
    run_token(root, FIX "/base", &b, tok, ss);
    ll_st_close(e);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (!test_failures_ && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    return test_summary("test_peft_interop");
}
