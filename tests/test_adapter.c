/* PEFT adapters and merged models (src/train/adapter.c) on the fixture of
 * tools/gen_fixtures_peft.py (tiny LlamaForSequenceClassification, LoRA r=4,
 * alpha=8 on q, v, o):
 *   (a) PEFT's adapter_init / adapter_trained loaded onto base/ reproduce
 *       transformers' logits0 / logits_trained within 1e-4 of max |ref|;
 *   (b) save -> load is bit-exact (also with every target, rsLoRA, a bias);
 *   (c) the saved files: adapter_config.json keys and values, exactly PEFT's
 *       tensor names, label_map.json;
 *   (d) merge -> ll_model_load -> same logits with LoRA off;
 *   (e) bad input: each a clear error naming the file and key, and a failed
 *       save leaves the adapter already in the folder byte-identical.
 * Also the safetensors writer (dtypes, alignment, padding). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "model/model.h"
#include "train/adapter.h"
#include "test_util.h"

#define FIX LL_SOURCE_DIR "/tests/fixtures/peft_seqcls"

static char tmp_root[512];
static const ll_st_file *E;
static ll_model *M; /* fixture base */

static const char *tpath(const char *fmt, ...) {
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ % 8], name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    snprintf(b, 1024, "%s/%s", tmp_root, name);
    return b;
}

static const float *ref(const char *name, size_t n) {
    const ll_st_tensor *t = ll_st_find(E, name);
    REQUIRE(t && t->dtype == LL_DTYPE_F32 && t->n_elems == n);
    return (const float *)t->data;
}

static ll_batch fixture_batch(void) {
    const ll_st_tensor *tok = ll_st_find(E, "tokens"), *ss = ll_st_find(E, "seq_start");
    REQUIRE(tok && ss);
    return (ll_batch){(const int32_t *)tok->data, (const int32_t *)ss->data, (int)ss->n_elems - 1};
}

static double rel_err(const float *got, const float *want, size_t n) {
    const double s = max_abs(want, n);
    return max_abs_diff(got, want, n) / (s > 0 ? s : 1);
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    REQUIRE(b && fread(b, 1, (size_t)n, f) == (size_t)n);
    b[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return b;
}

static void spit(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f && fwrite(text, 1, strlen(text), f) == strlen(text));
    fclose(f);
}

static void copy_file(const char *src, const char *dst) {
    size_t n;
    char *b = slurp(src, &n);
    REQUIRE(b);
    FILE *f = fopen(dst, "wb");
    REQUIRE(f && fwrite(b, 1, n, f) == n);
    fclose(f);
    free(b);
}

/* A fresh folder holding a copy of a fixture adapter. */
static const char *copy_adapter(const char *src, const char *name) {
    const char *dst = tpath("%s", name);
    REQUIRE(mkdir(dst, 0755) == 0);
    char a[1024], b[1024];
    for (int i = 0; i < 2; i++) {
        const char *f = i ? "adapter_model.safetensors" : "adapter_config.json";
        snprintf(a, sizeof a, "%s/%s", src, f);
        snprintf(b, sizeof b, "%s/%s", dst, f);
        copy_file(a, b);
    }
    return dst;
}

/* ---- (a) PEFT-written adapters --------------------------------------------------- */

static void test_load_peft(void) {
    static const char *const dirs[] = {"adapter_init", "adapter_trained"}, *const want[] = {"logits0", "logits_trained"};
    ll_batch b = fixture_batch();
    for (int i = 0; i < 2; i++) {
        ll_error err = {0};
        ll_classifier *c;
        ll_adapter_info info;
        char dir[1024];
        snprintf(dir, sizeof dir, FIX "/%s", dirs[i]);
        const int rc = ll_adapter_load(dir, M, NULL, &c, &info, &err);
        CHECK_MSG(rc == 0, "%s: %s", dir, err.message);
        if (rc) continue;
        CHECK(c->cfg.lora_r == 4 && c->cfg.lora_alpha == 8 && c->cfg.n_labels == 3 && !c->cfg.head_bias);
        CHECK(c->cfg.lora_targets == ((1u << LL_LORA_Q) | (1u << LL_LORA_V) | (1u << LL_LORA_O)));
        CHECK(c->cfg.pool == LL_POOL_LAST && c->cfg.bidirectional_from == 2);
        CHECK(!strcmp(info.task_type, "SEQ_CLS") && !info.has_label_map && !strcmp(info.id2label[2], "LABEL_2"));
        CHECK(info.base_model_name_or_path && !strcmp(info.base_model_name_or_path, "tests/fixtures/peft_seqcls/base"));
        float logits[18];
        REQUIRE(ll_classifier_forward(c, &b, 0, 0, logits, &err) == 0);
        const double e = rel_err(logits, ref(want[i], 18), 18);
        CHECK_MSG(e <= 1e-4, "%s: logits error %.3g of max |ref|", dirs[i], e);
        printf("(a) PEFT %s loaded: logits vs transformers+PEFT %s: %.2e of max |ref|\n", dirs[i], want[i], e);
        ll_adapter_info_free(&info);
        ll_classifier_free(c);
    }
}

/* ---- (b), (c) save / load ------------------------------------------------------- */

static int same_params(const ll_classifier *a, const ll_classifier *b) {
    if (a->n_params != b->n_params || a->n_views != b->n_views) return 0;
    for (size_t i = 0; i < a->n_views; i++)
        if (strcmp(a->views[i].name, b->views[i].name) || a->views[i].rows != b->views[i].rows ||
            a->views[i].cols != b->views[i].cols)
            return 0;
    return !memcmp(a->params, b->params, a->n_params * sizeof(float));
}

static const cJSON *jkey(const cJSON *j, const char *k) { return cJSON_GetObjectItemCaseSensitive(j, k); }

static void check_saved_files(const char *dir, const ll_classifier *c, const char *const *labels) {
    char path[1024];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    char *text = slurp(path, NULL);
    REQUIRE(text);
    cJSON *j = cJSON_Parse(text);
    REQUIRE(j);
    CHECK(!strcmp(jkey(j, "peft_type")->valuestring, "LORA"));
    CHECK(!strcmp(jkey(j, "task_type")->valuestring, "SEQ_CLS"));
    CHECK(jkey(j, "r")->valuedouble == c->cfg.lora_r);
    CHECK(jkey(j, "lora_alpha")->valuedouble == c->cfg.lora_alpha);
    CHECK((float)jkey(j, "lora_dropout")->valuedouble == c->cfg.lora_dropout);
    CHECK(cJSON_IsBool(jkey(j, "use_rslora")) && cJSON_IsTrue(jkey(j, "use_rslora")) == c->cfg.use_rslora);
    CHECK(!strcmp(jkey(j, "bias")->valuestring, "none"));
    CHECK(cJSON_IsFalse(jkey(j, "fan_in_fan_out")) && cJSON_IsFalse(jkey(j, "use_dora")));
    CHECK(cJSON_IsTrue(jkey(j, "init_lora_weights")) && cJSON_IsTrue(jkey(j, "inference_mode")));
    CHECK(!strcmp(jkey(j, "base_model_name_or_path")->valuestring, FIX "/base"));
    const cJSON *mts = jkey(j, "modules_to_save");
    CHECK(cJSON_GetArraySize(mts) == 1 && !strcmp(cJSON_GetArrayItem(mts, 0)->valuestring, "score"));
    unsigned targets = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, jkey(j, "target_modules")) {
        for (int t = 0; t < LL_LORA_N_TARGETS; t++)
            if (!strcmp(x->valuestring, ll_lora_target_names[t])) targets |= 1u << t;
    }
    CHECK(targets == c->cfg.lora_targets && cJSON_GetArraySize(jkey(j, "target_modules")) == __builtin_popcount(targets));
    cJSON_Delete(j);
    free(text);
    /* tensor names: exactly PEFT's */
    ll_st_file *f;
    ll_error err = {0};
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    REQUIRE(ll_st_open(&f, path, &err) == 0);
    const ll_config *p = ll_model_config(c->base);
    size_t want_n = 1 + (c->cfg.head_bias ? 1 : 0);
    for (int l = 0; l < p->n_layers; l++)
        for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
            if (!(c->cfg.lora_targets & (1u << t))) continue;
            for (int ab = 0; ab < 2; ab++) {
                char key[160];
                snprintf(key, sizeof key, "base_model.model.model.layers.%d.%s.%s.lora_%c.weight", l,
                         t <= LL_LORA_O ? "self_attn" : "mlp", ll_lora_target_names[t], ab ? 'B' : 'A');
                const ll_st_tensor *st = ll_st_find(f, key);
                CHECK_MSG(st && st->dtype == LL_DTYPE_F32 && st->ndim == 2, "%s missing", key);
                want_n++;
            }
        }
    CHECK(ll_st_find(f, "base_model.model.score.weight"));
    CHECK(!c->cfg.head_bias || ll_st_find(f, "base_model.model.score.bias"));
    CHECK_MSG(f->n_tensors == want_n, "%zu tensors, want %zu", f->n_tensors, want_n);
    ll_st_close(f);
    /* label map */
    snprintf(path, sizeof path, "%s/label_map.json", dir);
    text = slurp(path, NULL);
    REQUIRE(text && (j = cJSON_Parse(text)));
    CHECK(jkey(j, "num_labels")->valueint == c->cfg.n_labels);
    for (int k = 0; k < c->cfg.n_labels; k++) {
        char id[8];
        snprintf(id, sizeof id, "%d", k);
        CHECK(!strcmp(jkey(jkey(j, "id2label"), id)->valuestring, labels[k]));
        CHECK(jkey(jkey(j, "label2id"), labels[k])->valueint == k);
    }
    cJSON_Delete(j);
    free(text);
}

/* save c into dir, load it back: bit-exact, same logits */
static void round_trip(ll_classifier *c, const char *dir, const char *const *labels, const char *what) {
    ll_error err = {0};
    ll_adapter_meta meta = {FIX "/base", labels, NULL};
    int rc = ll_adapter_save(c, dir, &meta, &err);
    CHECK_MSG(rc == 0, "%s: save: %s", what, err.message);
    if (rc) return;
    check_saved_files(dir, c, labels);
    ll_classifier *d;
    ll_adapter_info info;
    rc = ll_adapter_load(dir, M, NULL, &d, &info, &err);
    CHECK_MSG(rc == 0, "%s: load: %s", what, err.message);
    if (rc) return;
    CHECK_MSG(same_params(c, d), "%s: parameters differ after save -> load", what);
    CHECK(d->cfg.lora_r == c->cfg.lora_r && d->cfg.lora_alpha == c->cfg.lora_alpha &&
          d->cfg.lora_dropout == c->cfg.lora_dropout && d->cfg.lora_targets == c->cfg.lora_targets &&
          d->cfg.use_rslora == c->cfg.use_rslora && d->cfg.head_bias == c->cfg.head_bias &&
          d->cfg.pool == c->cfg.pool && d->cfg.bidirectional_from == c->cfg.bidirectional_from &&
          d->cfg.multi_label == c->cfg.multi_label && d->lora.scale == c->lora.scale);
    CHECK(info.has_label_map && info.n_labels == c->cfg.n_labels);
    for (int k = 0; k < info.n_labels; k++) CHECK(!strcmp(info.id2label[k], labels[k]));
    ll_batch b = fixture_batch();
    float l1[64], l2[64];
    REQUIRE(ll_classifier_forward(c, &b, 0, 0, l1, &err) == 0 && ll_classifier_forward(d, &b, 0, 0, l2, &err) == 0);
    CHECK(!memcmp(l1, l2, (size_t)b.n_seqs * c->cfg.n_labels * sizeof(float)));
    for (int i = 0; i < b.n_seqs * c->cfg.n_labels; i++) CHECK(isfinite(l1[i]));
    printf("(b, c) %s: save -> load bit-exact (%zu parameters), files as PEFT names them\n", what, c->n_params);
    ll_adapter_info_free(&info);
    ll_classifier_free(d);
}

/* ---- (d) merge -------------------------------------------------------------------- */

static void merge_check(ll_classifier *c, const char *dir, ll_dtype dtype, double tol, const char *what) {
    ll_error err = {0};
    ll_merge_options o = ll_merge_options_default();
    o.dtype = dtype;
    o.pad_token_id = 0;
    o.allow_inexact = 1; /* lsllama reading its own folder back: any head (transformers: test_merge_fidelity) */
    int rc = ll_merge_save(c, dir, &o, &err);
    CHECK_MSG(rc == 0, "%s: merge: %s", what, err.message);
    if (rc) return;
    ll_model *mm;
    rc = ll_model_load(&mm, dir, NULL, &err);
    CHECK_MSG(rc == 0, "%s: load merged: %s", what, err.message);
    if (rc) return;
    ll_classifier_config cc = c->cfg;
    cc.lora_r = 0, cc.lora_targets = 0;
    ll_classifier *h;
    REQUIRE(ll_classifier_create(&h, mm, &cc, 0, &err) == 0);
    rc = ll_classifier_load_head(h, dir, &err);
    CHECK_MSG(rc == 0, "%s: head: %s", what, err.message);
    ll_batch b = fixture_batch();
    const size_t n = (size_t)b.n_seqs * cc.n_labels;
    float l1[64], l2[64];
    REQUIRE(ll_classifier_forward(c, &b, 0, 0, l1, &err) == 0 && ll_classifier_forward(h, &b, 0, 0, l2, &err) == 0);
    const double e = rel_err(l2, l1, n);
    CHECK_MSG(e <= tol, "%s: merged logits error %.3g of max |logit|", what, e);
    printf("(d) %s: merged model (%s) reloaded, logits vs adapter: %.2e of max |logit|\n", what, ll_dtype_name(dtype), e);
    /* config.json carries the labels */
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = slurp(path, NULL);
    cJSON *j = cJSON_Parse(text);
    REQUIRE(j);
    char arch[64];
    snprintf(arch, sizeof arch, "%sForSequenceClassification",
             strcmp(ll_model_config(c->base)->arch, "qwen2") ? "Llama" : "Qwen2");
    CHECK(!strcmp(cJSON_GetArrayItem(jkey(j, "architectures"), 0)->valuestring, arch));
    CHECK(cJSON_GetArraySize(jkey(j, "id2label")) == cc.n_labels && jkey(j, "pad_token_id")->valueint == 0);
    cJSON_Delete(j);
    free(text);
    ll_classifier_free(h);
    ll_model_free(mm);
}

/* ---- (e) bad input ------------------------------------------------------------ */

static void expect_load_fail(const char *label, const char *dir, int code, const char *n1, const char *n2) {
    ll_error err = {0};
    ll_classifier *c = NULL;
    const int rc = ll_adapter_load(dir, M, NULL, &c, NULL, &err);
    const int ok = rc == code && err.code == code && !c && (!n1 || strstr(err.message, n1)) &&
                   (!n2 || strstr(err.message, n2));
    CHECK_MSG(ok, "%s: rc %d (%s), want %d (%s); message '%s'; want '%s', '%s'", label, rc, ll_status_name(rc), code,
              ll_status_name(code), err.message, n1 ? n1 : "", n2 ? n2 : "");
    if (ok) printf("(e) %s: %s\n", label, err.message);
    ll_classifier_free(c);
}

/* Rewrite one key of a copied adapter_config.json (value: JSON text; NULL deletes). */
static void edit_config(const char *dir, const char *key, const char *value) {
    char path[1024];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    char *text = slurp(path, NULL);
    cJSON *j = cJSON_Parse(text);
    REQUIRE(j);
    cJSON_DeleteItemFromObjectCaseSensitive(j, key);
    if (value) cJSON_AddItemToObject(j, key, cJSON_Parse(value));
    char *out = cJSON_Print(j);
    spit(path, out);
    cJSON_free(out);
    cJSON_Delete(j);
    free(text);
}

/* Rewrite the copied safetensors: drop tensor `drop`, or give `reshape` the shape [r0, r1] (data cut short). */
static void edit_weights(const char *dir, const char *drop, const char *reshape, int64_t r0, int64_t r1,
                         const char *add) {
    char path[1024];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    ll_st_file *f;
    ll_error err = {0};
    REQUIRE(ll_st_open(&f, path, &err) == 0);
    ll_st_write_tensor ts[32];
    size_t n = 0;
    static float zeros[4096];
    for (size_t i = 0; i < f->n_tensors; i++) {
        const ll_st_tensor *t = &f->tensors[i];
        if (drop && !strcmp(t->name, drop)) continue;
        ts[n] = (ll_st_write_tensor){t->name, LL_DTYPE_F32, t->ndim, {t->shape[0], t->shape[1]}, t->data, NULL, NULL};
        if (reshape && !strcmp(t->name, reshape)) ts[n].shape[0] = r0, ts[n].shape[1] = r1, ts[n].data = zeros;
        n++;
    }
    if (add) ts[n++] = (ll_st_write_tensor){add, LL_DTYPE_F32, 1, {60}, zeros, NULL, NULL};
    REQUIRE(ll_st_write_file(path, ts, n, NULL, 0, &err) == 0);
    ll_st_close(f);
}

static void test_bad_input(ll_classifier *trained) {
    const char *src = FIX "/adapter_trained", *d;
    char buf[1024];
    d = copy_adapter(src, "bad_shape");
    edit_weights(d, NULL, "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight", 60, 4, NULL);
    expect_load_fail("lora_B shape", d, LL_ERR_SHAPE, "layers.1.self_attn.v_proj.lora_B.weight", "[60, 4]");
    expect_load_fail("lora_B shape names both shapes", d, LL_ERR_SHAPE, "[20, 4]", "adapter_model.safetensors");
    d = copy_adapter(src, "bad_rank");
    edit_config(d, "r", "8");
    expect_load_fail("r in config vs tensors", d, LL_ERR_SHAPE, "lora_A.weight' has shape [4, 60]", "[8, 60]");
    d = copy_adapter(src, "bad_score");
    edit_weights(d, NULL, "base_model.model.score.weight", 3, 50, NULL);
    expect_load_fail("score shape", d, LL_ERR_SHAPE, "base_model.model.score.weight", "[3, 60]");
    d = copy_adapter(src, "unknown_target");
    edit_config(d, "target_modules", "[\"q_proj\", \"lm_head\", \"v_proj\", \"o_proj\"]");
    expect_load_fail("unknown target module", d, LL_ERR_CONFIG, "'lm_head'", "adapter_config.json");
    d = copy_adapter(src, "r0");
    edit_config(d, "r", "0");
    expect_load_fail("r = 0", d, LL_ERR_CONFIG, "'r'", "adapter_config.json");
    d = copy_adapter(src, "no_weights");
    snprintf(buf, sizeof buf, "%s/adapter_model.safetensors", d);
    REQUIRE(unlink(buf) == 0);
    expect_load_fail("missing adapter_model.safetensors", d, LL_ERR_IO, buf, NULL);
    d = copy_adapter(src, "no_config");
    snprintf(buf, sizeof buf, "%s/adapter_config.json", d);
    REQUIRE(unlink(buf) == 0);
    expect_load_fail("missing adapter_config.json", d, LL_ERR_IO, buf, NULL);
    d = copy_adapter(src, "malformed_config");
    snprintf(buf, sizeof buf, "%s/adapter_config.json", d);
    spit(buf, "{\n  \"peft_type\": \"LORA\",\n  \"r\": 4,\n  \"target_modules\": [\"q_proj\"\n}\n");
    expect_load_fail("malformed adapter_config.json", d, LL_ERR_FORMAT, buf, "malformed JSON");
    d = copy_adapter(src, "missing_B");
    edit_weights(d, "base_model.model.model.layers.0.self_attn.o_proj.lora_B.weight", NULL, 0, 0, NULL);
    expect_load_fail("missing lora_B", d, LL_ERR_SHAPE, "layers.0.self_attn.o_proj.lora_B.weight", "missing");
    d = copy_adapter(src, "missing_score");
    edit_weights(d, "base_model.model.score.weight", NULL, 0, 0, NULL);
    expect_load_fail("missing score head", d, LL_ERR_SHAPE, "base_model.model.score.weight", "adapter_model.safetensors");
    d = copy_adapter(src, "extra_key");
    edit_weights(d, NULL, NULL, 0, 0, "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector");
    expect_load_fail("unexpected tensor", d, LL_ERR_FORMAT, "lora_magnitude_vector", "adapter_model.safetensors");
    d = copy_adapter(src, "not_targeted");
    edit_config(d, "target_modules", "[\"q_proj\", \"v_proj\"]");
    expect_load_fail("tensor of a module not targeted", d, LL_ERR_CONFIG, "o_proj", "target_modules");
    d = copy_adapter(src, "qualified");
    edit_config(d, "target_modules", "[\"o_proj\", \"self_attn.q_proj\", \"v_proj\"]");
    edit_config(d, "modules_to_save", "[\"classifier\", \"score\"]");
    {
        ll_classifier *c = NULL;
        ll_error err = {0};
        CHECK_MSG(ll_adapter_load(d, M, NULL, &c, NULL, &err) == 0 && same_params(c, trained),
                  "qualified target names: %s", err.message);
        ll_classifier_free(c);
    }
    d = copy_adapter(src, "all_linear");
    edit_config(d, "target_modules", "\"all-linear\"");
    expect_load_fail("all-linear, but only q/v/o in the file", d, LL_ERR_SHAPE, "layers.0.self_attn.k_proj.lora_A", "missing");
    d = copy_adapter(src, "regex");
    edit_config(d, "target_modules", "\".*q_proj\"");
    expect_load_fail("regex target_modules", d, LL_ERR_UNSUPPORTED, "'.*q_proj'", "adapter_config.json");
    d = copy_adapter(src, "dora");
    edit_config(d, "use_dora", "true");
    expect_load_fail("DoRA", d, LL_ERR_UNSUPPORTED, "use_dora", "adapter_config.json");
    d = copy_adapter(src, "prefix");
    edit_config(d, "peft_type", "\"PREFIX_TUNING\"");
    expect_load_fail("peft_type", d, LL_ERR_UNSUPPORTED, "PREFIX_TUNING", "adapter_config.json");
    d = copy_adapter(src, "bad_labels");
    snprintf(buf, sizeof buf, "%s/label_map.json", d);
    spit(buf, "{\"id2label\": {\"0\": \"a\", \"1\": \"b\"}}");
    expect_load_fail("label map size", d, LL_ERR_CONFIG, "label_map.json", "3 rows");
    /* an adapter for 2 layers onto a 3-layer base: the missing layer is named */
    {
        ll_model *m3;
        ll_error err = {0};
        REQUIRE(ll_model_load(&m3, LL_SOURCE_DIR "/tests/fixtures/tiny_llama/hf", NULL, &err) == 0);
        ll_classifier *c = NULL;
        const int rc = ll_adapter_load(src, m3, NULL, &c, NULL, &err);
        CHECK_MSG(rc == LL_ERR_SHAPE && strstr(err.message, "layers.2.self_attn.q_proj.lora_A.weight"),
                  "other base: rc %d '%s'", rc, err.message);
        printf("(e) adapter onto a base with more layers: %s\n", err.message);
        ll_classifier_free(c);
        ll_model_free(m3);
    }
    /* r = 0 with LoRA requested, at creation */
    {
        ll_classifier_config cc = {.n_labels = 3, .bidirectional_from = 2, .lora_r = 0, .lora_alpha = 8,
                                   .lora_targets = 1u << LL_LORA_Q};
        ll_classifier *c = NULL;
        ll_error err = {0};
        CHECK(ll_classifier_create(&c, M, &cc, 0, &err) == LL_ERR_ARG && strstr(err.message, "r = 0") && !c);
    }

    /* failed saves leave the adapter already there byte-identical */
    const char *dir = tpath("keep");
    ll_error err = {0};
    REQUIRE(ll_adapter_save(trained, dir, NULL, &err) == 0);
    static const char *const files[] = {"adapter_config.json", "adapter_model.safetensors", "label_map.json"};
    char *before[3];
    size_t len[3];
    for (int i = 0; i < 3; i++) {
        snprintf(buf, sizeof buf, "%s/%s", dir, files[i]);
        REQUIRE((before[i] = slurp(buf, &len[i])));
    }
    /* change the parameters, so a partial write would show */
    ll_classifier_config cc = trained->cfg;
    ll_classifier *other;
    REQUIRE(ll_classifier_create(&other, M, &cc, 77, &err) == 0);
    for (size_t i = 0; i < other->n_params; i++) other->params[i] += 0.5f;
    /* the folder holds a file the adapter does not (a user's notes): replacing the folder would delete it, so
     * the save is refused and nothing changes */
    snprintf(buf, sizeof buf, "%s/README.md", dir);
    test_write_file(dir, "README.md", "my notes\n");
    int rc = ll_adapter_save(other, dir, NULL, &err);
    CHECK_MSG(rc == LL_ERR_IO && strstr(err.message, "README.md"), "blocked save: rc %d '%s'", rc, err.message);
    printf("(e) save over a folder with a foreign file: %s\n", err.message);
    REQUIRE(unlink(buf) == 0);
    /* the folder the save targets is below a file */
    snprintf(buf, sizeof buf, "%s/adapter_model.safetensors/sub", dir);
    rc = ll_adapter_save(other, buf, NULL, &err);
    CHECK_MSG(rc == LL_ERR_IO && strstr(err.message, buf), "save below a file: rc %d '%s'", rc, err.message);
    printf("(e) save into a folder below a file: %s\n", err.message);
    rc = ll_merge_save(other, buf, NULL, &err);
    CHECK_MSG(rc == LL_ERR_IO && strstr(err.message, buf), "merge below a file: rc %d '%s'", rc, err.message);
    for (int i = 0; i < 3; i++) {
        size_t n;
        snprintf(buf, sizeof buf, "%s/%s", dir, files[i]);
        char *after = slurp(buf, &n);
        CHECK_MSG(after && n == len[i] && !memcmp(after, before[i], n), "%s changed by a failed save", files[i]);
        free(after);
        free(before[i]);
    }
    /* no temporary files left behind */
    DIR *dd = opendir(dir);
    REQUIRE(dd);
    int n_files = 0;
    for (struct dirent *e; (e = readdir(dd));)
        if (e->d_name[0] != '.') {
            n_files++;
            CHECK_MSG(!strstr(e->d_name, ".tmp."), "temporary file %s left behind", e->d_name);
        }
    closedir(dd);
    CHECK(n_files == 3);
    ll_classifier *back;
    CHECK(ll_adapter_load(dir, M, NULL, &back, NULL, &err) == 0 && same_params(back, trained));
    ll_classifier_free(back);
    ll_classifier_free(other);
}

/* ---- safetensors writer ------------------------------------------------------- */

static void test_writer(void) {
    const float f[6] = {1.0f, -2.5f, 65504.0f, 1e-8f, 3.14159265f, -0.0f};
    const int32_t ints[3] = {7, -1, 1 << 30};
    const uint8_t bytes[5] = {1, 2, 3, 4, 5};
    ll_st_write_tensor ts[] = {
        {"z.f32", LL_DTYPE_F32, 2, {2, 3}, f, NULL, NULL},
        {"a.f16", LL_DTYPE_F16, 1, {6}, f, NULL, NULL},
        {"b.bf16", LL_DTYPE_BF16, 2, {3, 2}, f, NULL, NULL},
        {"c.i32", LL_DTYPE_I32, 1, {3}, ints, NULL, NULL},
        {"u8", LL_DTYPE_U8, 1, {5}, bytes, NULL, NULL},
        {"scalar", LL_DTYPE_F32, 0, {0}, f, NULL, NULL},
    };
    const char *path = tpath("w.safetensors");
    ll_error err = {0};
    REQUIRE(ll_st_write_file(path, ts, 6, NULL, 0, &err) == 0);
    size_t n;
    char *raw = slurp(path, &n);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)(uint8_t)raw[i] << (8 * i);
    CHECK(hl % 8 == 0 && raw[8] == '{' && strstr(raw + 8, "\"__metadata__\":{\"format\":\"pt\"}"));
    CHECK(raw[8 + hl - 1] == ' ' || raw[8 + hl - 1] == '}');
    free(raw);
    ll_st_file *sf;
    REQUIRE(ll_st_open(&sf, path, &err) == 0);
    const ll_st_tensor *t = ll_st_find(sf, "z.f32");
    CHECK(t && t->dtype == LL_DTYPE_F32 && !memcmp(t->data, f, sizeof f) && t->ndim == 2 && t->shape[1] == 3);
    CHECK(((uintptr_t)t->data - (uintptr_t)sf->file.data) % 4 == 0);
    t = ll_st_find(sf, "a.f16");
    float back[6];
    REQUIRE(t && t->dtype == LL_DTYPE_F16);
    ll_dequantize(LL_DTYPE_F16, t->data, back, 6);
    CHECK(back[0] == 1.0f && back[1] == -2.5f && back[2] == 65504.0f && fabsf(back[4] - f[4]) < 2e-3f);
    t = ll_st_find(sf, "b.bf16");
    REQUIRE(t && t->dtype == LL_DTYPE_BF16);
    ll_dequantize(LL_DTYPE_BF16, t->data, back, 6);
    CHECK(back[0] == 1.0f && back[1] == -2.5f && fabsf(back[4] - f[4]) < 2e-2f && back[3] > 0);
    t = ll_st_find(sf, "c.i32");
    CHECK(t && t->dtype == LL_DTYPE_I32 && !memcmp(t->data, ints, sizeof ints));
    t = ll_st_find(sf, "u8");
    CHECK(t && t->dtype == LL_DTYPE_U8 && !memcmp(t->data, bytes, 5));
    t = ll_st_find(sf, "scalar");
    CHECK(t && t->ndim == 0 && t->n_elems == 1 && ((const float *)t->data)[0] == 1.0f);
    ll_st_close(sf);
    /* an error leaves the old file and no temporary file */
    ll_st_write_tensor dup[] = {{"x", LL_DTYPE_F32, 1, {1}, f, NULL, NULL}, {"x", LL_DTYPE_F32, 1, {1}, f, NULL, NULL}};
    CHECK(ll_st_write_file(path, dup, 2, NULL, 0, &err) == LL_ERR_ARG && strstr(err.message, path) &&
          strstr(err.message, "'x'"));
    REQUIRE(ll_st_open(&sf, path, &err) == 0);
    CHECK(sf->n_tensors == 6);
    ll_st_close(sf);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(access(tmp, F_OK) != 0);
    CHECK(ll_fp32_to_bf16(1.0f) == 0x3f80 && ll_fp32_to_bf16(-2.0f) == 0xc000);
    CHECK(ll_fp32_to_bf16(1.00390625f) == 0x3f80); /* tie to even */
    CHECK(ll_fp32_to_bf16(1.01171875f) == 0x3f82);  /* tie to even (up) */
    printf("safetensors writer: F32/F16/BF16/I32/U8/scalar read back, header 8-aligned, failure leaves the file\n");
}

int main(void) {
    snprintf(tmp_root, sizeof tmp_root, "%s/test_adapter.XXXXXX", LL_BUILD_DIR);
    REQUIRE(mkdtemp(tmp_root));
    ll_st_file *e;
    ll_error err = {0};
    REQUIRE(ll_st_open(&e, FIX "/expected.safetensors", &err) == 0);
    E = e;
    REQUIRE(ll_model_load(&M, FIX "/base", NULL, &err) == 0);

    test_writer();
    test_load_peft();

    ll_classifier *trained;
    ll_adapter_info info;
    REQUIRE(ll_adapter_load(FIX "/adapter_trained", M, NULL, &trained, &info, &err) == 0);
    ll_adapter_info_free(&info);
    static const char *const labels3[] = {"negative", "neutral", "positive \"quoted\" ü"};
    round_trip(trained, tpath("saved_trained"), labels3, "PEFT-trained adapter");
    /* every target module, rsLoRA, head bias, dropout, mean pooling, bidirectional */
    ll_classifier_config cc = {.n_labels = 5, .pool = LL_POOL_MEAN, .bidirectional_from = 1, .head_bias = 1,
                               .lora_r = 3, .lora_alpha = 7.5f, .lora_dropout = 0.1f,
                               .lora_targets = (1u << LL_LORA_N_TARGETS) - 1, .use_rslora = 1};
    ll_classifier *all;
    REQUIRE(ll_classifier_create(&all, M, &cc, 5, &err) == 0);
    for (size_t i = 0; i < all->n_params; i++) all->params[i] += 0.01f * (float)((int)((i * 7919) % 101) - 50) / 50.0f;
    static const char *const labels5[] = {"A", "B", "C", "D", "E"};
    round_trip(all, tpath("saved_all"), labels5, "all targets, rsLoRA, bias");

    merge_check(trained, tpath("merged_trained"), LL_DTYPE_F32, 1e-4, "PEFT-trained adapter");
    merge_check(all, tpath("merged_all"), LL_DTYPE_F32, 1e-4, "all targets, rsLoRA, bias");
    merge_check(trained, tpath("merged_f16"), LL_DTYPE_F16, 1e-2, "PEFT-trained adapter");
    merge_check(trained, tpath("merged_bf16"), LL_DTYPE_BF16, 3e-2, "PEFT-trained adapter");
    /* other bases: Llama 3.1 RoPE scaling + tied embeddings (bf16), Qwen2 q/k/v biases (f16) */
    static const char *const others[] = {"hf_bf16_sharded", "hf_qwen2_f16"};
    for (int i = 0; i < 2; i++) {
        char path[1024];
        snprintf(path, sizeof path, LL_SOURCE_DIR "/tests/fixtures/tiny_llama/%s", others[i]);
        ll_model *om;
        REQUIRE(ll_model_load(&om, path, NULL, &err) == 0);
        ll_classifier_config oc = cc;
        oc.bidirectional_from = ll_model_config(om)->n_layers;
        oc.pool = LL_POOL_LAST;
        ll_classifier *o;
        REQUIRE(ll_classifier_create(&o, om, &oc, 9, &err) == 0);
        for (size_t k = 0; k < o->n_params; k++) o->params[k] += 0.01f * (float)((int)((k * 7919) % 101) - 50) / 50.0f;
        merge_check(o, tpath("merged_%s", others[i]), LL_DTYPE_F32, 1e-4, others[i]);
        ll_classifier_free(o);
        ll_model_free(om);
    }
    test_bad_input(trained);

    ll_classifier_free(all);
    ll_classifier_free(trained);
    ll_model_free(M);
    ll_st_close(e);
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (!test_failures_ && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
    return test_summary("test_adapter");
}
