/* The frozen base kept in its stored precision (issue 18), on tiny LLaMA GGUF
 * files written by the gguf package, one per weight type with every matrix
 * (token_embd included) in that type (tools/gen_fixtures_precision.py, run by
 * scripts/test.sh into build/generated/precision). For each type, the file
 * loaded with --base-precision stored and with f32:
 *
 *  (a) every weight value equal (ll_model_visit_samples, every 1), and the
 *      values of four matrices equal to the gguf package's dequantization;
 *  (b) ll_forward's hidden states memcmp-equal (causal and bidirectional);
 *  (c) one classifier training step (LoRA r 4 on all seven targets, LoRA
 *      dropout 0.1; a sequence head, and a token head with head dropout)
 *      gives the same loss and gradients, byte for byte, with no gradient
 *      tensor zero;
 *  (d) resident bytes: the matrices' stored size as stored (less than f32
 *      for every type but F32), every matrix but q/k read from the file
 *      mapping, none after a conversion to f32.
 *
 * For the F32 file, --base-precision q8_0 and bf16 keep exactly the bytes
 * gguf.quants.quantize(W, Q8_0 / BF16) makes of four non-q/k matrices (the
 * loader reorders q/k rows, so their bytes are not the file's order), with
 * rows that put both roundings on exact ties; a quantized file keeps its type
 * under bf16 and q8_0. The real model: test_base_precision_smollm2.c. */
#include <stdint.h>

#include "data/dataset.h"
#include "io/dtype.h"
#include "lsllama.h"
#include "model/model.h"
#include "train/classifier.h"
#include "test_util.h"

#define FIXTURES LL_BUILD_DIR "/generated/precision"

static const char *const type_names[] = {"F32",  "F16",  "BF16", "Q8_0", "Q4_0", "Q4_1",
                                         "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"};
static const char *const checked[] = {"blk.0.ffn_up.weight", "blk.1.ffn_down.weight", "blk.0.attn_v.weight",
                                      "token_embd.weight"};

static ll_dtype dtype_named(const char *name) {
    for (int t = 0; t < LL_DTYPE_COUNT; t++)
        if (!strcmp(ll_dtype_name((ll_dtype)t), name)) return (ll_dtype)t;
    return LL_DTYPE_INVALID;
}

/* A whole binary fixture file (malloc'd) and its size; the test stops if it is missing. */
static void *read_bin(const char *name, size_t *n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", FIXTURES, name);
    FILE *f = fopen(path, "rb");
    if (!f) fprintf(stderr, "%s: missing (run tools/gen_fixtures_precision.py --out %s)\n", path, FIXTURES);
    REQUIRE(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(*n ? *n : 1);
    REQUIRE(p && fread(p, 1, *n, f) == *n);
    fclose(f);
    return p;
}

static ll_model *load(const char *type, const char *suffix, ll_base_precision p) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tiny_%s%s.gguf", FIXTURES, type, suffix);
    ll_load_options o = {.base_precision = p};
    ll_model *m = NULL;
    ll_error err = {0};
    if (ll_model_load(&m, path, &o, &err))
        fprintf(stderr, "%s (%s): %s\n(run tools/gen_fixtures_precision.py --out %s)\n", path,
                ll_base_precision_name(p), err.message, FIXTURES);
    REQUIRE(m);
    return m;
}

/* The model's matrix of a GGUF name (the ones in `checked`). */
static const ll_matrix *matrix_named(const ll_model *m, const char *name) {
    if (!strcmp(name, "token_embd.weight")) return &m->tok_emb;
    int l = -1;
    char role[64] = "";
    REQUIRE(sscanf(name, "blk.%d.%63[a-z_]", &l, role) == 2 && l >= 0 && l < m->cfg.n_layers);
    const ll_layer *ly = &m->layers[l];
    if (!strcmp(role, "ffn_up")) return &ly->w_up;
    if (!strcmp(role, "ffn_down")) return &ly->w_down;
    if (!strcmp(role, "attn_v")) return &ly->wv;
    REQUIRE(!"unknown matrix");
    return NULL;
}

static size_t matrix_bytes(const ll_matrix *w) {
    return w->rows * w->ld_blocks * ll_dtype_block_bytes(w->dtype);
}

/* Every matrix of the model (the embedding, then 7 per layer), and which are q/k (reordered at load). */
static size_t all_matrices(const ll_model *m, const ll_matrix **out, int *is_qk) {
    size_t n = 0;
    out[n] = &m->tok_emb, is_qk[n++] = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const ll_layer *ly = &m->layers[l];
        const ll_matrix *ms[] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->w_gate, &ly->w_up, &ly->w_down};
        for (int k = 0; k < 7; k++) out[n] = ms[k], is_qk[n++] = k < 2;
    }
    return n;
}

typedef struct values {
    float *v;
    size_t n, cap;
} values;

static void collect(void *ctx, float x) {
    values *s = ctx;
    if (s->n == s->cap) REQUIRE((s->v = realloc(s->v, (s->cap = s->cap ? 2 * s->cap : 1 << 16) * sizeof(float))));
    s->v[s->n++] = x;
}

/* (a) the same weight values, and those of the checked matrices as gguf dequantizes them */
static void check_values(const char *type, ll_model *ms, ll_model *mf) {
    values a = {0}, b = {0};
    ll_model_visit_samples(ms, 1, collect, &a);
    ll_model_visit_samples(mf, 1, collect, &b);
    CHECK_MSG(a.n == b.n && a.n > 1000000, "%s: %zu values stored, %zu as f32", type, a.n, b.n);
    CHECK_MSG(a.n == b.n && !memcmp(a.v, b.v, a.n * sizeof(float)), "%s: weight values differ stored vs f32", type);
    free(a.v), free(b.v);
    for (size_t i = 0; i < sizeof checked / sizeof *checked; i++) {
        char name[160];
        snprintf(name, sizeof name, "%s.%s.f32.bin", type, checked[i]);
        size_t n;
        float *want = read_bin(name, &n);
        const ll_matrix *w = matrix_named(ms, checked[i]), *wf = matrix_named(mf, checked[i]);
        REQUIRE(n == w->rows * w->cols * sizeof(float));
        CHECK_MSG(w->dtype == dtype_named(type), "%s %s kept as %s", type, checked[i], ll_dtype_name(w->dtype));
        float *got = malloc(n);
        for (size_t r = 0; r < w->rows; r++)
            ll_dequantize(w->dtype, (const char *)w->data + r * w->ld_blocks * ll_dtype_block_bytes(w->dtype),
                          got + r * w->cols, w->cols);
        CHECK_MSG(!memcmp(got, want, n), "%s %s: stored values differ from the gguf package's", type, checked[i]);
        CHECK_MSG(wf->dtype == LL_DTYPE_F32 && wf->ld_blocks == wf->cols && !memcmp(wf->data, want, n),
                  "%s %s: f32 copy differs from the gguf package's values", type, checked[i]);
        free(got), free(want);
    }
}

/* (b) hidden states over a small packed batch, causal and bidirectional */
static void check_forward(const char *type, ll_model *ms, ll_model *mf) {
    const int32_t tokens[] = {1, 17, 299, 42, 0, 256, 73, 5, 188, 9, 240, 31, 64, 128, 7, 250, 3};
    const int32_t starts[] = {0, 6, 7, 17};
    const ll_batch b = {tokens, starts, 3};
    const size_t T = 17, D = (size_t)ms->cfg.dim;
    float *hs = malloc(T * D * sizeof(float)), *hf = malloc(T * D * sizeof(float));
    for (int bidir = 0; bidir < 2; bidir++) {
        ll_forward_options fo = {.bidirectional_from = bidir ? 0 : ms->cfg.n_layers};
        ll_forward_outputs os = {.hidden = hs}, of = {.hidden = hf};
        ll_error err = {0};
        REQUIRE(ll_forward(ms, &b, &fo, &os, &err) == 0);
        REQUIRE(ll_forward(mf, &b, &fo, &of, &err) == 0);
        CHECK_MSG(ll_first_nonfinite(hs, T * D) == T * D && max_abs(hs, T * D) > 0.1, "%s: hidden states degenerate",
                  type);
        CHECK_MSG(!memcmp(hs, hf, T * D * sizeof(float)), "%s %s: hidden states differ stored vs f32 (max %.3g)", type,
                  bidir ? "bidirectional" : "causal", max_abs_diff(hs, hf, T * D));
    }
    free(hs), free(hf);
}

/* (c) one training step of a classifier with LoRA on all targets and dropout */
static void check_train_step(const char *type, ll_model *ms, ll_model *mf, int token_task) {
    const int L = ms->cfg.n_layers;
    const int32_t tokens[] = {4, 99, 123, 7, 299, 55, 18, 230, 2, 77, 160, 12, 8};
    const int32_t starts[] = {0, 5, 6, 13};
    const ll_batch b = {tokens, starts, 3};
    const int32_t seq_labels[] = {2, 0, 1};
    const int32_t tok_labels[] = {0, 1, LL_IGNORE_LABEL, 2, 1, 0, 2, 2, LL_IGNORE_LABEL, 1, 0, 1, 2};
    ll_classifier_config cc = {.n_labels = 3, .pool = LL_POOL_LAST, .bidirectional_from = token_task ? 0 : L,
                               .head_bias = 1, .lora_r = 4, .lora_alpha = 8, .lora_dropout = 0.1f,
                               .lora_targets = (1u << LL_LORA_N_TARGETS) - 1, .token_task = token_task,
                               .head_dropout = token_task ? 0.1f : 0.0f};
    ll_classifier *cs, *cf;
    ll_error err = {0};
    REQUIRE(ll_classifier_create(&cs, ms, &cc, 42, &err) == 0);
    REQUIRE(ll_classifier_create(&cf, mf, &cc, 42, &err) == 0);
    REQUIRE(cs->n_params == cf->n_params && cs->n_views == cf->n_views);
    CHECK_MSG(!memcmp(cs->params, cf->params, cs->n_params * sizeof(float)), "%s: initial parameters differ", type);
    /* B = 0 (PEFT's init) would leave every A gradient zero: give B values, the same in both */
    for (size_t v = 0; v < cs->n_views; v++)
        if (strstr(cs->views[v].name, "lora_B"))
            for (int64_t i = 0; i < cs->views[v].rows * cs->views[v].cols; i++)
                cs->views[v].data[i] = cf->views[v].data[i] = 0.05f * (float)((i * 37 % 19) - 9) / 9.0f;
    memset(cs->grads, 0, cs->n_params * sizeof(float));
    memset(cf->grads, 0, cf->n_params * sizeof(float));
    float ls = -1, lf = -2;
    const int32_t *labels = token_task ? tok_labels : seq_labels;
    REQUIRE(ll_classifier_train_step(cs, &b, labels, NULL, 1234, 1.0f, &ls, &err) == 0);
    REQUIRE(ll_classifier_train_step(cf, &b, labels, NULL, 1234, 1.0f, &lf, &err) == 0);
    const char *task = token_task ? "token" : "sequence";
    CHECK_MSG(isfinite(ls) && ls > 0 && !memcmp(&ls, &lf, sizeof ls), "%s %s: loss %.9g stored, %.9g f32", type, task,
              ls, lf);
    CHECK_MSG(!memcmp(cs->grads, cf->grads, cs->n_params * sizeof(float)),
              "%s %s: gradients differ stored vs f32 (max %.3g)", type, task,
              max_abs_diff(cs->grads, cf->grads, cs->n_params));
    size_t zero = 0;
    for (size_t v = 0; v < cs->n_views; v++)
        if (max_abs(cs->views[v].grad, (size_t)(cs->views[v].rows * cs->views[v].cols)) == 0.0) {
            fprintf(stderr, "%s %s: gradient of %s is zero\n", type, task, cs->views[v].name);
            zero++;
        }
    CHECK_MSG(zero == 0 && cs->n_views == 2 * 7 * (size_t)L + 2, "%s %s: %zu of %zu gradient tensors zero", type,
              task, zero, cs->n_views);
    CHECK(ll_first_nonfinite(cs->grads, cs->n_params) == cs->n_params);
    ll_classifier_free(cs);
    ll_classifier_free(cf);
}

/* (d) bytes resident and mapped per type */
static void check_resident(const char *type, const ll_model *ms, const ll_model *mf) {
    const ll_dtype t = dtype_named(type);
    const ll_matrix *mats[64];
    int is_qk[64];
    const size_t n = all_matrices(ms, mats, is_qk);
    size_t total = 0, qk = 0, elems = 0;
    for (size_t i = 0; i < n; i++) {
        REQUIRE(mats[i]->dtype == t && mats[i]->ld_blocks * (size_t)ll_dtype_block_elems(t) == mats[i]->cols);
        total += matrix_bytes(mats[i]);
        if (is_qk[i]) qk += matrix_bytes(mats[i]);
        elems += mats[i]->rows * mats[i]->cols;
    }
    size_t other = 0;
    for (int d = 0; d < LL_DTYPE_COUNT; d++)
        if (d != (int)t) other += ms->resident[d];
    CHECK_MSG(ms->resident[t] == total && other == 0, "%s stored: %zu bytes resident as %s (+%zu other), expected %zu",
              type, ms->resident[t], type, other, total);
    CHECK_MSG(ms->mapped[t] == total - qk && ms->mapped[t] > 0,
              "%s stored: %zu bytes mapped, expected %zu (all but q/k)", type, ms->mapped[t], total - qk);
    CHECK_MSG(mf->resident[LL_DTYPE_F32] == elems * sizeof(float), "%s as f32: %zu bytes resident, expected %zu", type,
              mf->resident[LL_DTYPE_F32], elems * sizeof(float));
    CHECK_MSG(mf->mapped[LL_DTYPE_F32] == (t == LL_DTYPE_F32 ? total - qk : 0), "%s as f32: %zu bytes mapped", type,
              mf->mapped[LL_DTYPE_F32]);
    if (t == LL_DTYPE_F32) CHECK(ms->resident[t] == mf->resident[LL_DTYPE_F32]);
    else CHECK_MSG(ms->resident[t] < mf->resident[LL_DTYPE_F32], "%s: stored %zu bytes, not less than f32's %zu", type,
                   ms->resident[t], mf->resident[LL_DTYPE_F32]);
    /* the public report says the same */
    const char *names[LL_DTYPE_COUNT];
    size_t bytes[LL_DTYPE_COUNT], mapped[LL_DTYPE_COUNT];
    const int k = ll_model_resident(ms, names, bytes, mapped, LL_DTYPE_COUNT);
    CHECK(k == 1 && !strcmp(names[0], type) && bytes[0] == total && mapped[0] == total - qk);
    printf("%-5s stored: %8zu bytes resident (%zu mapped), f32: %8zu\n", type, ms->resident[t], ms->mapped[t],
           mf->resident[LL_DTYPE_F32]);
}

/* The F32 file converted at load: the bytes the gguf package's converters make. */
static void check_conversions(void) {
    const struct {
        ll_base_precision p;
        ll_dtype t;
        const char *ext;
    } cases[] = {{LL_BASE_Q8_0, LL_DTYPE_Q8_0, "q8_0"}, {LL_BASE_BF16, LL_DTYPE_BF16, "bf16"}};
    for (int c = 0; c < 2; c++) {
        ll_model *m = load("F32", "", cases[c].p);
        for (size_t i = 0; i < sizeof checked / sizeof *checked; i++) {
            char name[160];
            snprintf(name, sizeof name, "F32.%s.%s.bin", checked[i], cases[c].ext);
            size_t n;
            void *want = read_bin(name, &n);
            const ll_matrix *w = matrix_named(m, checked[i]);
            CHECK_MSG(w->dtype == cases[c].t, "%s as %s: kept as %s", checked[i], cases[c].ext,
                      ll_dtype_name(w->dtype));
            CHECK_MSG(matrix_bytes(w) == n && !memcmp(w->data, want, n),
                      "%s as %s: resident bytes differ from the gguf package's (%zu vs %zu bytes)", checked[i],
                      cases[c].ext, matrix_bytes(w), n);
            free(want);
        }
        const ll_matrix *mats[64];
        int is_qk[64];
        const size_t nm = all_matrices(m, mats, is_qk);
        size_t elems = 0;
        for (size_t i = 0; i < nm; i++) elems += mats[i]->rows * mats[i]->cols;
        const size_t want = cases[c].t == LL_DTYPE_Q8_0 ? elems / 32 * 34 : elems * 2;
        CHECK_MSG(m->resident[cases[c].t] == want && m->mapped[cases[c].t] == 0 && m->resident[LL_DTYPE_F32] == 0,
                  "F32 as %s: %zu bytes resident (%zu mapped), expected %zu", cases[c].ext, m->resident[cases[c].t],
                  m->mapped[cases[c].t], want);
        printf("F32   as %-4s: %zu bytes resident, the gguf package's bytes for %zu matrices\n", cases[c].ext,
               m->resident[cases[c].t], sizeof checked / sizeof *checked);
        ll_model_free(m);
    }
    /* a quantized base keeps its type under bf16 and q8_0 (they convert plain floats only) */
    for (int c = 0; c < 2; c++) {
        ll_model *m = load("Q4_K", "", cases[c].p);
        CHECK_MSG(m->tok_emb.dtype == LL_DTYPE_Q4_K && m->layers[1].w_down.dtype == LL_DTYPE_Q4_K &&
                      m->resident[cases[c].t] == 0 && m->mapped[LL_DTYPE_Q4_K] > 0,
                  "Q4_K as %s: converted", cases[c].ext);
        ll_model_free(m);
    }
}

int main(void) {
    for (size_t i = 0; i < sizeof type_names / sizeof *type_names; i++) {
        const char *type = type_names[i];
        ll_model *ms = load(type, "", LL_BASE_STORED), *mf = load(type, "", LL_BASE_F32);
        CHECK(ll_model_base_precision(ms) == LL_BASE_STORED && ll_model_base_precision(mf) == LL_BASE_F32);
        const int before = test_failures_;
        check_values(type, ms, mf);
        check_forward(type, ms, mf);
        check_train_step(type, ms, mf, 0);
        check_train_step(type, ms, mf, 1);
        check_resident(type, ms, mf);
        printf("%-5s stored vs f32: values, hidden states, loss and gradients %s\n", type,
               test_failures_ == before ? "byte-identical" : "DIFFER");
        ll_model_free(ms);
        ll_model_free(mf);
    }
    check_conversions();
    return test_summary("test_base_precision");
}
