/* The architecture table (src/model/arch.h): a new architecture is a row.
 *
 * "toyllama" below is a Llama under other tensor names (GPT-2-like:
 * "transformer.h.N.attn.q.weight"), defined here only, handed to the loader
 * as an extra row (ll_model_load_archs: no global registry). The test renames
 * the tiny random Llama fixture's tensors into it, loads both, and expects the
 * same weights and bit-identical hidden states and logits; the messages for
 * unsupported architectures list the rows (built-in, then extra), a missing
 * tensor is named as the file stores it, a tensor the row does not know is
 * refused by name, and the LoRA target table gives the fixture's shapes. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "lsllama.h"
#include "model/arch.h"
#include "model/lora.h"
#include "model/model.h"
#include "test_util.h"

#define FIX LL_SOURCE_DIR "/tests/fixtures/tiny_llama"

/* ---- the test-only row ------------------------------------------------------ */

/* Every weight value of a model, in load order (ll_model_visit_samples). */
typedef struct float_list {
    float *v;
    size_t n, cap;
    int oom;
} float_list;

static void push_float(void *ctx, float x) {
    float_list *l = ctx;
    if (l->n == l->cap) {
        float *nv = realloc(l->v, (l->cap ? 2 * l->cap : 4096) * sizeof(float));
        if (!nv) {
            l->oom = 1;
            return;
        }
        l->v = nv, l->cap = l->cap ? 2 * l->cap : 4096;
    }
    l->v[l->n++] = x;
}

static const ll_arch_tensor toy_tensors[] = {
    {LL_ROLE_TOKEN_EMBD, "transformer.wte.weight", NULL, LL_DIM_VOCAB, LL_DIM_MODEL, LL_WHEN_ALWAYS},
    {LL_ROLE_ATTN_NORM, "ln_1.weight", NULL, LL_DIM_NONE, LL_DIM_MODEL, LL_WHEN_ALWAYS},
    {LL_ROLE_Q, "attn.q.weight", NULL, LL_DIM_Q, LL_DIM_MODEL, LL_WHEN_ALWAYS},
    {LL_ROLE_K, "attn.k.weight", NULL, LL_DIM_KV, LL_DIM_MODEL, LL_WHEN_ALWAYS},
    {LL_ROLE_V, "attn.v.weight", NULL, LL_DIM_KV, LL_DIM_MODEL, LL_WHEN_ALWAYS},
    {LL_ROLE_O, "attn.o.weight", NULL, LL_DIM_MODEL, LL_DIM_Q, LL_WHEN_ALWAYS},
    {LL_ROLE_FFN_NORM, "ln_2.weight", NULL, LL_DIM_NONE, LL_DIM_MODEL, LL_WHEN_ALWAYS},
    {LL_ROLE_GATE, "mlp.gate.weight", NULL, LL_DIM_FF, LL_DIM_MODEL, LL_WHEN_ALWAYS},
    {LL_ROLE_UP, "mlp.up.weight", NULL, LL_DIM_FF, LL_DIM_MODEL, LL_WHEN_ALWAYS},
    {LL_ROLE_DOWN, "mlp.down.weight", NULL, LL_DIM_MODEL, LL_DIM_FF, LL_WHEN_ALWAYS},
    {LL_ROLE_OUTPUT_NORM, "transformer.ln_f.weight", NULL, LL_DIM_NONE, LL_DIM_MODEL, LL_WHEN_ALWAYS},
    {LL_ROLE_OUTPUT, "lm_head.weight", NULL, LL_DIM_VOCAB, LL_DIM_MODEL, LL_WHEN_OPTIONAL},
};

static const ll_arch toy = {
    .name = "toyllama",
    .gguf_name = NULL, /* no GGUF form: its rows below have no GGUF names */
    .hf_class_prefix = NULL, /* nothing to export to */
    .hf_base_prefix = "transformer.",
    .hf_layer_prefix = "transformer.h.",
    .gguf_layer_prefix = NULL,
    .tensors = toy_tensors,
    .n_tensors = sizeof toy_tensors / sizeof toy_tensors[0],
    .gguf_rope_rows = LL_ROPE_ROWS_INTERLEAVED,
    .bias = LL_BIAS_CONFIG_KEYS,
    .window = LL_WINDOW_NONE,
    .hf_defaults = {32000, 4096, 11008, 32, 32, 0, 2048, 1, 2, 0, 1e-6f, 0, 0, NULL, 0, 0, 0},
};
static const ll_arch *const extra[] = {&toy, NULL};

/* ---- the renamed checkpoint --------------------------------------------------- */

/* The fixture's Llama name in the toy spelling, by plain text replacement
 * (written out here, not taken from the library, so the test does not check
 * the table against itself). */
static void toy_name(const char *llama, char *out, size_t cap) {
    static const char *const swaps[][2] = {
        {"model.embed_tokens.", "transformer.wte."}, {"model.norm.", "transformer.ln_f."},
        {"model.layers.", "transformer.h."},         {"input_layernorm.", "ln_1."},
        {"post_attention_layernorm.", "ln_2."},      {"self_attn.q_proj.", "attn.q."},
        {"self_attn.k_proj.", "attn.k."},            {"self_attn.v_proj.", "attn.v."},
        {"self_attn.o_proj.", "attn.o."},            {"mlp.gate_proj.", "mlp.gate."},
        {"mlp.up_proj.", "mlp.up."},                 {"mlp.down_proj.", "mlp.down."},
    };
    char buf[256];
    snprintf(out, cap, "%s", llama);
    for (size_t i = 0; i < sizeof swaps / sizeof swaps[0]; i++) {
        char *at = strstr(out, swaps[i][0]);
        if (!at) continue;
        snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - out), out, swaps[i][1], at + strlen(swaps[i][0]));
        snprintf(out, cap, "%s", buf);
    }
}

/* dir/model.safetensors = the fixture's tensors under toy names, except
 * `drop` (a toy name, or NULL), plus `add` (a toy name for a copy of the
 * final norm, or NULL); dir/config.json = the fixture's, model_type toyllama. */
static void write_toy(const char *dir, const char *drop, const char *add) {
    REQUIRE(mkdir(dir, 0700) == 0);
    ll_st_file *f;
    ll_error err = {0};
    REQUIRE(ll_st_open(&f, FIX "/hf/model.safetensors", &err) == 0);
    ll_st_write_tensor *ts = calloc(f->n_tensors + 1, sizeof *ts);
    char(*names)[256] = calloc(f->n_tensors + 1, sizeof *names);
    REQUIRE(ts && names);
    size_t n = 0;
    for (size_t i = 0; i < f->n_tensors; i++) {
        const ll_st_tensor *t = &f->tensors[i];
        REQUIRE(t->dtype == LL_DTYPE_F32);
        toy_name(t->name, names[n], sizeof names[n]);
        if (drop && !strcmp(names[n], drop)) continue;
        ts[n] = (ll_st_write_tensor){names[n], LL_DTYPE_F32, t->ndim, {0}, t->data, NULL, NULL};
        memcpy(ts[n].shape, t->shape, sizeof t->shape);
        if (add && !strcmp(t->name, "model.norm.weight")) {
            ts[n + 1] = ts[n];
            snprintf(names[n + 1], sizeof names[n + 1], "%s", add);
            ts[n + 1].name = names[n + 1];
            n++;
        }
        n++;
    }
    char path[700];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    REQUIRE(ll_st_write_file(path, ts, n, NULL, 0, &err) == 0);
    free(ts);
    free(names);
    ll_st_close(f);
    char *text = test_read_file(FIX "/hf/config.json");
    REQUIRE(text);
    cJSON *j = cJSON_Parse(text);
    REQUIRE(j);
    cJSON_ReplaceItemInObjectCaseSensitive(j, "model_type", cJSON_CreateString("toyllama"));
    char *out = cJSON_Print(j);
    test_write_file(dir, "config.json", out);
    free(out);
    cJSON_Delete(j);
    free(text);
}

/* ---- checks ------------------------------------------------------------------------ */

/* The toy checkpoint computes exactly what the Llama one does. */
static void check_same_model(const char *toy_dir) {
    ll_error err = {0};
    ll_load_options lo = {.with_lm_head = 1};
    ll_model *llama, *renamed;
    REQUIRE(ll_model_load(&llama, FIX "/hf", &lo, &err) == 0);
    if (ll_model_load_archs(&renamed, toy_dir, &lo, extra, &err)) {
        CHECK_MSG(0, "toy row: %s", err.message);
        ll_model_free(llama);
        return;
    }
    const ll_config *a = ll_model_config(llama), *b = ll_model_config(renamed);
    CHECK(!strcmp(b->arch, "toyllama") && renamed->arch == &toy);
    CHECK(a->dim == b->dim && a->n_layers == b->n_layers && a->n_kv_heads == b->n_kv_heads &&
          a->head_dim == b->head_dim && a->vocab_size == b->vocab_size && a->hidden_dim == b->hidden_dim);
    float_list wa = {0}, wb = {0};
    ll_model_visit_samples(llama, 1, push_float, &wa);
    ll_model_visit_samples(renamed, 1, push_float, &wb);
    REQUIRE(!wa.oom && !wb.oom);
    CHECK(wa.n > 0 && wa.n == wb.n);
    CHECK(!memcmp(wa.v, wb.v, wa.n * sizeof(float)));
    /* forward: hidden states of every token and LM-head logits, bit for bit */
    const int32_t tokens[] = {1, 5, 17, 42, 3, 1, 96, 7, 8};
    const int32_t starts[] = {0, 5, 9};
    const ll_batch batch = {tokens, starts, 2};
    const size_t T = 9, D = (size_t)a->dim, V = (size_t)a->vocab_size;
    float *h[2], *lg[2];
    ll_model *ms[2] = {llama, renamed};
    for (int i = 0; i < 2; i++) {
        h[i] = malloc(T * D * sizeof(float));
        lg[i] = malloc(2 * V * sizeof(float));
        REQUIRE(h[i] && lg[i]);
        ll_forward_options fo = {.bidirectional_from = a->n_layers};
        ll_forward_outputs out = {.hidden = h[i], .logits_last = lg[i]};
        CHECK_MSG(ll_forward(ms[i], &batch, &fo, &out, &err) == 0, "%s", err.message);
    }
    CHECK(max_abs(h[0], T * D) > 0.1); /* a real output, not zeros */
    CHECK(!memcmp(h[0], h[1], T * D * sizeof(float)));
    CHECK(!memcmp(lg[0], lg[1], 2 * V * sizeof(float)));
    printf("  toy row: %zu weights identical, hidden [%zu, %zu] and logits [2, %zu] bit-identical\n",
           wa.n, T, D, V);
    free(wa.v), free(wb.v);
    for (int i = 0; i < 2; i++) free(h[i]), free(lg[i]);
    ll_model_free(llama);
    ll_model_free(renamed);
}

/* Expect loading dir (with the toy row, or without: rows NULL) to fail with
 * code and a message holding want. */
static void expect_fail(const char *what, const char *dir, const ll_arch *const *rows, int code, const char *want) {
    ll_model *m = NULL;
    ll_error err = {0};
    const int rc = ll_model_load_archs(&m, dir, NULL, rows, &err);
    CHECK_MSG(rc == code && strstr(err.message, want), "%s: rc %d, message '%s' (want %d, '%s')", what, rc,
              err.message, code, want);
    if (!rc) ll_model_free(m);
    else printf("  %-28s %s\n", what, err.message);
}

static void check_messages(const char *root) {
    char dir[600];
    /* without the row the toy is refused, and the message lists the table */
    snprintf(dir, sizeof dir, "%s/toy", root);
    expect_fail("no toy row", dir, NULL, LL_ERR_UNSUPPORTED, "model_type 'toyllama' is not supported (llama, mistral, qwen2, gemma3_text)");
    /* with it, an unknown type lists the extra row too */
    snprintf(dir, sizeof dir, "%s/other", root);
    REQUIRE(mkdir(dir, 0700) == 0);
    test_write_file(dir, "config.json", "{\"model_type\": \"gpt2\"}");
    expect_fail("unknown type, toy row", dir, extra, LL_ERR_UNSUPPORTED,
                "model_type 'gpt2' is not supported (llama, mistral, qwen2, gemma3_text, toyllama)");
    char names[128];
    ll_arch_list_names(names, sizeof names, extra, 1, " and ");
    CHECK_MSG(!strcmp(names, "llama, mistral, qwen2 and gemma3"), "GGUF list '%s'", names); /* toyllama has no GGUF form */
    ll_arch_list_names(names, sizeof names, extra, 0, " and ");
    CHECK_MSG(!strcmp(names, "llama, mistral, qwen2, gemma3_text and toyllama"), "list '%s'", names);
    /* a missing tensor is named as the toy file would store it */
    snprintf(dir, sizeof dir, "%s/missing", root);
    write_toy(dir, "transformer.h.1.mlp.up.weight", NULL);
    expect_fail("missing up weight", dir, extra, LL_ERR_SHAPE,
                "tensor 'model.layers.1.mlp.up_proj.weight' (stored as 'transformer.h.1.mlp.up.weight') is missing");
    /* a name the row does not have is refused by name, not dropped */
    snprintf(dir, sizeof dir, "%s/unknown", root);
    write_toy(dir, NULL, "transformer.h.0.attn.rotary.weight");
    expect_fail("unknown tensor", dir, extra, LL_ERR_UNSUPPORTED,
                "tensor 'transformer.h.0.attn.rotary.weight' is not used by a toyllama model");
    /* the Llama spelling is not the toy's */
    snprintf(dir, sizeof dir, "%s/llama_names", root);
    write_toy(dir, NULL, "model.layers.0.self_attn.q_proj.weight");
    expect_fail("Llama name in a toy file", dir, extra, LL_ERR_UNSUPPORTED,
                "tensor 'model.layers.0.self_attn.q_proj.weight' is not used by a toyllama model");
}

/* The LoRA target table on the fixture's config: hidden 60, 6 heads and 2
 * key/value heads of 10, intermediate 100. */
static void check_lora_targets(void) {
    const ll_config p = {.dim = 60, .hidden_dim = 100, .n_heads = 6, .n_kv_heads = 2, .head_dim = 10};
    const size_t want[LL_LORA_N_TARGETS][2] = {{60, 60}, {60, 20}, {60, 20}, {60, 60}, {60, 100}, {60, 100}, {100, 60}};
    for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
        size_t in, out;
        ll_lora_target_dims(&p, t, &in, &out);
        CHECK_MSG(in == want[t][0] && out == want[t][1], "%s: in %zu out %zu", ll_lora_target_names[t], in, out);
        /* the adapted weight's shape in the row is [out, in] */
        const ll_arch_tensor *w = ll_arch_tensor_of(ll_arch_builtin[0], ll_lora_targets[t].weight);
        CHECK(w && ll_dim_size(&p, w->rows) == out && ll_dim_size(&p, w->cols) == in);
    }
    CHECK(!strcmp(ll_lora_targets[LL_LORA_O].parent, "self_attn") && !strcmp(ll_lora_targets[LL_LORA_UP].parent, "mlp"));
}

int main(void) {
    char root[512];
    snprintf(root, sizeof root, "%s/test_arch_table.XXXXXX", LL_BUILD_DIR);
    REQUIRE(mkdtemp(root));
    char dir[600];
    snprintf(dir, sizeof dir, "%s/toy", root);
    write_toy(dir, NULL, NULL);
    check_same_model(dir);
    check_messages(root);
    check_lora_targets();
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", root);
    return test_summary("test_arch_table");
}
