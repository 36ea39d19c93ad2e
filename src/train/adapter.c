#include "train/adapter.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/atomic_dir.h"
#include "io/atomic_file.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "kernels/kernels.h"
#include "model/arch.h"
#include "model/checkpoint.h"
#include "model/model.h"
#include "model/rope_freq.h"
#include "text/save_json.h"

/* ---- names and shapes --------------------------------------------------------- */

#define PEFT_PREFIX "base_model.model."

/* [in, out] of module t (the LoRA target table, model/lora.h). */
static void lora_dims(const ll_config *p, int t, int64_t *in, int64_t *out) {
    size_t i, o;
    ll_lora_target_dims(p, t, &i, &o);
    *in = (int64_t)i;
    *out = (int64_t)o;
}

/* q/k/v/o under self_attn, gate/up/down under mlp */
static const char *module_parent(int t) { return ll_lora_targets[t].parent; }

/* "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight" */
static void peft_key(char *buf, size_t cap, int layer, int t, char ab) {
    snprintf(buf, cap, PEFT_PREFIX "model.layers.%d.%s.%s.lora_%c.weight", layer, module_parent(t),
             ll_lora_target_names[t], ab);
}

static char *path_join(const char *dir, const char *name) {
    const size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    char *p = buf;
    p += snprintf(p, cap, "[");
    for (int d = 0; d < ndim && p < buf + cap; d++)
        p += snprintf(p, (size_t)(buf + cap - p), d ? ", %lld" : "%lld", (long long)shape[d]);
    if (p < buf + cap) snprintf(p, (size_t)(buf + cap - p), "]");
}

/* A float as the shortest decimal that reads back as the same float, so
 * 0.1f is written 0.1, not 0.10000000149011612. */
static cJSON *json_float(float v) {
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return cJSON_CreateNumber(strtod(buf, NULL));
}

/* Label names: given, or LABEL_i; rejects duplicates (label2id needs them unique). */
static int label_names(const char *const *given, int K, char ***out, const char *where, ll_error *err) {
    char **names = calloc((size_t)K, sizeof *names);
    if (!names) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    for (int k = 0; k < K; k++) {
        char buf[32];
        snprintf(buf, sizeof buf, "LABEL_%d", k);
        names[k] = strdup(given && given[k] ? given[k] : buf);
        if (!names[k]) {
            for (int i = 0; i < k; i++) free(names[i]);
            free(names);
            return ll_fail(err, LL_ERR_NOMEM, "out of memory");
        }
        for (int i = 0; i < k; i++)
            if (!strcmp(names[i], names[k])) {
                int rc = ll_fail(err, LL_ERR_ARG, "%s: label '%s' appears twice (ids %d and %d)", where, names[k], i, k);
                for (int j = 0; j <= k; j++) free(names[j]);
                free(names);
                return rc;
            }
    }
    *out = names;
    return LL_OK;
}

static void free_names(char **names, int K) {
    if (!names) return;
    for (int k = 0; k < K; k++) free(names[k]);
    free(names);
}

/* id2label {"0": name} and label2id {name: 0} into j. */
static void add_label_maps(cJSON *j, char *const *names, int K) {
    cJSON *i2l = cJSON_AddObjectToObject(j, "id2label"), *l2i = cJSON_AddObjectToObject(j, "label2id");
    for (int k = 0; k < K; k++) {
        char id[16];
        snprintf(id, sizeof id, "%d", k);
        cJSON_AddStringToObject(i2l, id, names[k]);
        cJSON_AddNumberToObject(l2i, names[k], k);
    }
}

/* lsllama's own head settings (transformers has no place for them). */
static void add_lsllama_settings(cJSON *j, const ll_classifier *c, int head_bias) {
    const ll_classifier_config *cc = &c->cfg;
    cJSON *s = cJSON_AddObjectToObject(j, "lsllama");
    cJSON_AddStringToObject(s, "pooling", ll_pool_name(cc->pool));
    cJSON_AddNumberToObject(s, "bidirectional_from", cc->bidirectional_from);
    cJSON_AddBoolToObject(s, "head_bias", head_bias);
    /* the precision the base was held in while this was trained or merged */
    cJSON_AddStringToObject(s, "base_precision", ll_base_precision_name(ll_model_base_precision(c->base)));
    /* and the products' arithmetic (informative: eval and predict run f32 unless told) */
    cJSON_AddStringToObject(s, "compute", ll_compute_name(ll_model_compute(c->base)));
}

/* A tensor read into dst must be finite: NaN weights would make every
 * prediction NaN with exit 0. */
static int check_finite(const float *dst, const ll_st_tensor *t, const char *path, ll_error *err) {
    const size_t bad = ll_first_nonfinite(dst, (size_t)t->n_elems);
    if (bad < (size_t)t->n_elems)
        return ll_fail(err, LL_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value (%g) at element %zu: the adapter "
                       "is corrupt", path, t->name, dst[bad], bad);
    return LL_OK;
}

/* ---- writing a folder: every file into a new folder beside the target, which
 * is then swapped in whole (io/atomic_dir.h): a kill leaves the old version or
 * the new one, never a mix of the two ---- */

typedef struct folder_writer {
    ll_atomic_dir dir;
    ll_atomic_file files[8];
    int n;
} folder_writer;

static void fw_abort(folder_writer *w) {
    for (int i = 0; i < w->n; i++) ll_atomic_abort(&w->files[i]);
    w->n = 0;
    ll_atomic_dir_abort(&w->dir);
}

static int fw_begin(folder_writer *w, const char *dir, ll_error *err) {
    memset(w, 0, sizeof *w);
    return ll_atomic_dir_open(&w->dir, dir, err);
}

static ll_atomic_file *fw_open(folder_writer *w, const char *name, ll_error *err) {
    char *path = ll_atomic_dir_file(&w->dir, name);
    if (!path) {
        ll_fail(err, LL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ll_atomic_file *f = &w->files[w->n];
    const int rc = ll_atomic_open(f, path, err);
    free(path);
    if (rc) return NULL;
    w->n++;
    return f;
}

/* JSON laid out as Python's json.dumps(indent=2) lays it out (what PEFT and
 * transformers write), except that arrays of scalars stay on one line. */
static int json_write(FILE *fp, const cJSON *j, int depth) {
    const int container = cJSON_IsObject(j) || cJSON_IsArray(j);
    if (!container || !j->child) {
        if (container) return fputs(cJSON_IsObject(j) ? "{}" : "[]", fp) >= 0;
        char *leaf = cJSON_PrintUnformatted(j);
        const int ok = leaf && fputs(leaf, fp) >= 0;
        cJSON_free(leaf);
        return ok;
    }
    int flat = cJSON_IsArray(j);
    for (const cJSON *x = j->child; x && flat; x = x->next) flat = !cJSON_IsObject(x) && !cJSON_IsArray(x);
    int ok = fputc(cJSON_IsObject(j) ? '{' : '[', fp) != EOF;
    for (const cJSON *x = j->child; x && ok; x = x->next) {
        if (flat) ok = fputs(x == j->child ? "" : ", ", fp) >= 0;
        else ok = fprintf(fp, "%s\n%*s", x == j->child ? "" : ",", 2 * (depth + 1), "") >= 0;
        if (ok && cJSON_IsObject(j)) {
            cJSON key = {.type = cJSON_String, .valuestring = x->string};
            ok = json_write(fp, &key, depth + 1) && fputs(": ", fp) >= 0;
        }
        if (ok) ok = json_write(fp, x, depth + 1);
    }
    if (ok && !flat) ok = fprintf(fp, "\n%*s", 2 * depth, "") >= 0;
    return ok && fputc(cJSON_IsObject(j) ? '}' : ']', fp) != EOF;
}

static int fw_json(folder_writer *w, const char *name, const cJSON *j, ll_error *err) {
    ll_atomic_file *f = fw_open(w, name, err);
    if (!f) return err ? err->code : LL_ERR_IO;
    int rc = LL_OK;
    if (!json_write(f->fp, j, 0) || fputc('\n', f->fp) == EOF)
        rc = ll_fail(err, LL_ERR_IO, "%s: cannot write: %s", f->path, strerror(errno));
    else
        rc = ll_atomic_close(f, err);
    if (rc) {
        if (f->path) ll_atomic_abort(f); /* close aborts on its own failure */
        w->n--;
    }
    return rc;
}

static int fw_text(folder_writer *w, const char *name, const char *text, size_t len, ll_error *err) {
    ll_atomic_file *f = fw_open(w, name, err);
    if (!f) return err ? err->code : LL_ERR_IO;
    int rc = LL_OK;
    if (fwrite(text, 1, len, f->fp) != len)
        rc = ll_fail(err, LL_ERR_IO, "%s: cannot write: %s", f->path, strerror(errno));
    else
        rc = ll_atomic_close(f, err);
    if (rc) {
        if (f->path) ll_atomic_abort(f);
        w->n--;
    }
    return rc;
}

static int fw_safetensors(folder_writer *w, const char *name, const ll_st_write_tensor *t, size_t n, ll_error *err) {
    ll_atomic_file *f = fw_open(w, name, err);
    if (!f) return err ? err->code : LL_ERR_IO;
    int rc = ll_st_write_stream(f->fp, f->path, t, n, NULL, 0, err);
    if (!rc) rc = ll_atomic_close(f, err);
    if (rc) {
        if (f->path) ll_atomic_abort(f);
        w->n--;
    }
    return rc;
}

/* All files complete: each renamed to its name inside the new folder, then
 * the folder swapped in. */
static int fw_commit(folder_writer *w, ll_error *err) {
    int rc = LL_OK;
    for (int i = 0; i < w->n; i++) {
        if (rc) ll_atomic_abort(&w->files[i]);
        else rc = ll_atomic_commit(&w->files[i], err);
    }
    w->n = 0;
    if (!rc) return ll_atomic_dir_commit(&w->dir, err);
    ll_atomic_dir_abort(&w->dir);
    return rc;
}

/* ---- saving an adapter ---------------------------------------------------------- */

static cJSON *adapter_config_json(const ll_classifier *c, const ll_adapter_meta *meta, const char *task) {
    const ll_classifier_config *cc = &c->cfg;
    cJSON *j = cJSON_CreateObject();
    /* keys in PEFT's order (it writes them sorted) */
    cJSON_AddItemToObject(j, "alpha_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(j, "auto_mapping");
    if (meta && meta->base_model_name_or_path)
        cJSON_AddStringToObject(j, "base_model_name_or_path", meta->base_model_name_or_path);
    else
        cJSON_AddNullToObject(j, "base_model_name_or_path");
    cJSON_AddStringToObject(j, "bias", "none");
    cJSON_AddNullToObject(j, "exclude_modules");
    cJSON_AddFalseToObject(j, "fan_in_fan_out");
    cJSON_AddTrueToObject(j, "inference_mode");
    cJSON_AddTrueToObject(j, "init_lora_weights");
    cJSON_AddNullToObject(j, "layer_replication");
    cJSON_AddNullToObject(j, "layers_pattern");
    cJSON_AddNullToObject(j, "layers_to_transform");
    cJSON_AddItemToObject(j, "lora_alpha", json_float(cc->lora_alpha));
    cJSON_AddFalseToObject(j, "lora_bias");
    cJSON_AddItemToObject(j, "lora_dropout", json_float(cc->lora_dropout));
    cJSON *mts = cJSON_AddArrayToObject(j, "modules_to_save");
    if (!strcmp(task, "TOKEN_CLS")) /* PeftModelForTokenClassification adds both head names */
        cJSON_AddItemToArray(mts, cJSON_CreateString("classifier"));
    cJSON_AddItemToArray(mts, cJSON_CreateString("score"));
    cJSON_AddStringToObject(j, "peft_type", "LORA");
    cJSON_AddNumberToObject(j, "r", cc->lora_r);
    cJSON_AddItemToObject(j, "rank_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(j, "revision");
    cJSON *tm = cJSON_AddArrayToObject(j, "target_modules");
    for (int t = 0; t < LL_LORA_N_TARGETS; t++)
        if (cc->lora_targets & (1u << t)) cJSON_AddItemToArray(tm, cJSON_CreateString(ll_lora_target_names[t]));
    cJSON_AddStringToObject(j, "task_type", task);
    cJSON_AddFalseToObject(j, "use_dora");
    cJSON_AddBoolToObject(j, "use_rslora", cc->use_rslora);
    return j;
}

static cJSON *label_map_json(const ll_classifier *c, char *const *names) {
    const ll_classifier_config *cc = &c->cfg;
    cJSON *j = cJSON_CreateObject();
    add_label_maps(j, names, cc->n_labels);
    cJSON_AddNumberToObject(j, "num_labels", cc->n_labels);
    cJSON_AddStringToObject(j, "problem_type",
                            cc->multi_label ? "multi_label_classification" : "single_label_classification");
    add_lsllama_settings(j, c, cc->head_bias);
    return j;
}

static int check_task(const char *task, ll_error *err) {
    if (strcmp(task, "SEQ_CLS") && strcmp(task, "TOKEN_CLS"))
        return ll_fail(err, LL_ERR_ARG, "task type '%s' is not supported (SEQ_CLS, TOKEN_CLS)", task);
    return LL_OK;
}

int ll_adapter_save(const ll_classifier *c, const char *dir, const ll_adapter_meta *meta, ll_error *err) {
    const ll_classifier_config *cc = &c->cfg;
    const ll_config *p = ll_model_config(c->base);
    const char *task = meta && meta->task_type ? meta->task_type : cc->token_task ? "TOKEN_CLS" : "SEQ_CLS";
    int rc = check_task(task, err);
    if (rc) return rc;
    if (!strcmp(task, "TOKEN_CLS") != !!cc->token_task)
        return ll_fail(err, LL_ERR_ARG, "%s: task type %s does not fit a %s classifier", dir, task,
                       cc->token_task ? "token" : "sequence");
    /* A head-only classifier (r = 0, no target modules) is saved with r 0 and
     * target_modules []: lsllama reads it back; PEFT refuses a LoRA config
     * that targets nothing, so such a folder is not a PEFT adapter. */
    if (cc->full_targets)
        return ll_fail(err, LL_ERR_ARG, "%s: a fully fine-tuned classifier has no adapter: save it as a model folder "
                       "(ll_merge_save)", dir);
    if ((cc->lora_r < 1) != !cc->lora_targets)
        return ll_fail(err, LL_ERR_ARG, "%s: LoRA rank %d with %s target modules", dir, cc->lora_r,
                       cc->lora_targets ? "some" : "no");
    const size_t bad = ll_first_nonfinite(c->params, c->n_params);
    if (bad < c->n_params)
        return ll_fail(err, LL_ERR_ARG, "%s: not saved: trainable parameter %zu is not finite (%g)", dir, bad,
                       c->params[bad]);
    char **names = NULL;
    if ((rc = label_names(meta ? meta->id2label : NULL, cc->n_labels, &names, dir, err))) return rc;
    /* tensors under PEFT's names */
    const size_t max_t = (size_t)p->n_layers * LL_LORA_N_TARGETS * 2 + 2;
    ll_st_write_tensor *ts = calloc(max_t, sizeof *ts);
    char(*keys)[160] = calloc(max_t, sizeof *keys);
    cJSON *cfg_j = NULL, *labels_j = NULL;
    folder_writer w = {0};
    if (!ts || !keys) {
        rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t n = 0;
    for (int l = 0; l < p->n_layers; l++)
        for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
            if (!(cc->lora_targets & (1u << t))) continue;
            const ll_lora_module *md = ll_lora_at(&c->lora, l, t);
            int64_t in, out;
            lora_dims(p, t, &in, &out);
            peft_key(keys[n], sizeof keys[n], l, t, 'A');
            ts[n] = (ll_st_write_tensor){keys[n], LL_DTYPE_F32, 2, {cc->lora_r, in}, md->A, NULL, NULL};
            n++;
            peft_key(keys[n], sizeof keys[n], l, t, 'B');
            ts[n] = (ll_st_write_tensor){keys[n], LL_DTYPE_F32, 2, {out, cc->lora_r}, md->B, NULL, NULL};
            n++;
        }
    ts[n++] = (ll_st_write_tensor){PEFT_PREFIX "score.weight", LL_DTYPE_F32, 2, {cc->n_labels, p->dim}, c->head_w, NULL, NULL};
    if (c->head_b) ts[n++] = (ll_st_write_tensor){PEFT_PREFIX "score.bias", LL_DTYPE_F32, 1, {cc->n_labels}, c->head_b, NULL, NULL};
    cfg_j = adapter_config_json(c, meta, task);
    labels_j = label_map_json(c, names);
    if (!cfg_j || !labels_j) {
        rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = fw_begin(&w, dir, err))) goto done;
    if ((rc = fw_safetensors(&w, LL_ADAPTER_WEIGHTS_FILE, ts, n, err))) goto done;
    if ((rc = fw_json(&w, LL_ADAPTER_CONFIG_FILE, cfg_j, err))) goto done;
    if ((rc = fw_json(&w, LL_ADAPTER_LABELS_FILE, labels_j, err))) goto done;
    rc = fw_commit(&w, err);
done:
    fw_abort(&w);
    cJSON_Delete(cfg_j);
    cJSON_Delete(labels_j);
    free(ts);
    free(keys);
    free_names(names, cc->n_labels);
    return rc;
}

/* ---- loading an adapter --------------------------------------------------------- */

void ll_adapter_info_free(ll_adapter_info *info) {
    if (!info) return;
    free(info->base_model_name_or_path);
    free_names(info->id2label, info->n_labels);
    memset(info, 0, sizeof *info);
}

static int read_json(const char *path, cJSON **out, ll_error *err) {
    char *text = NULL;
    int rc = ll_read_text_file(path, &text, NULL, err);
    if (rc) return rc;
    const char *end = NULL;
    *out = cJSON_ParseWithOpts(text, &end, 1);
    if (!*out) {
        /* line of the first character cJSON could not take */
        int line = 1;
        for (const char *q = text; end && q < end && *q; q++) line += *q == '\n';
        free(text);
        return ll_fail(err, LL_ERR_FORMAT, "%s:%d: malformed JSON", path, line);
    }
    free(text);
    if (!cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return ll_fail(err, LL_ERR_FORMAT, "%s: not a JSON object", path);
    }
    return LL_OK;
}

/* Present and not null. */
static const cJSON *jget(const cJSON *j, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    return x && !cJSON_IsNull(x) ? x : NULL;
}

static int jnum(const cJSON *j, const char *key, double def, double *out, const char *path, ll_error *err) {
    const cJSON *x = jget(j, key);
    if (!x) return (*out = def), LL_OK;
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble))
        return ll_fail(err, LL_ERR_CONFIG, "%s: key '%s' must be a number", path, key);
    *out = x->valuedouble;
    return LL_OK;
}

static int jbool(const cJSON *j, const char *key, int *out, const char *path, ll_error *err) {
    const cJSON *x = jget(j, key);
    if (!x) return (*out = 0), LL_OK;
    if (!cJSON_IsBool(x)) return ll_fail(err, LL_ERR_CONFIG, "%s: key '%s' must be true or false", path, key);
    *out = cJSON_IsTrue(x);
    return LL_OK;
}

/* A PEFT target_modules entry: a module name, or one qualified by its parent
 * ("self_attn.q_proj"), matched as PEFT matches it (by name suffix). */
static int target_index(const char *s) {
    for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
        const char *name = ll_lora_target_names[t];
        const size_t ls = strlen(s), ln = strlen(name);
        if (!strcmp(s, name)) return t;
        if (ls > ln && s[ls - ln - 1] == '.' && !strcmp(s + ls - ln, name)) {
            const char *parent = module_parent(t);
            const size_t lp = strlen(parent);
            if (ls - ln - 1 >= lp && !strncmp(s + ls - ln - 1 - lp, parent, lp)) return t;
        }
    }
    return -1;
}

typedef struct adapter_settings {
    int r;
    float alpha, dropout;
    unsigned targets;
    int use_rslora;
    char task[16];
    char *base_name;
} adapter_settings;

static int parse_adapter_config(const cJSON *j, const char *path, adapter_settings *s, ll_error *err) {
    const cJSON *pt = jget(j, "peft_type");
    if (!cJSON_IsString(pt)) return ll_fail(err, LL_ERR_CONFIG, "%s: required key 'peft_type' is missing", path);
    if (strcmp(pt->valuestring, "LORA"))
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: peft_type '%s' is not supported (LORA)", path, pt->valuestring);
    const cJSON *tt = jget(j, "task_type");
    snprintf(s->task, sizeof s->task, "SEQ_CLS");
    if (tt) {
        if (!cJSON_IsString(tt) || (strcmp(tt->valuestring, "SEQ_CLS") && strcmp(tt->valuestring, "TOKEN_CLS")))
            return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: task_type %s%s%s is not supported (SEQ_CLS, TOKEN_CLS)", path,
                           cJSON_IsString(tt) ? "'" : "", cJSON_IsString(tt) ? tt->valuestring : "(not a string)",
                           cJSON_IsString(tt) ? "'" : "");
        snprintf(s->task, sizeof s->task, "%s", tt->valuestring);
    }
    double r = 0, alpha = 0, dropout = 0;
    int rc;
    /* defaults as LoraConfig's: r 8, lora_alpha 8, lora_dropout 0 */
    if ((rc = jnum(j, "r", 8, &r, path, err)) || (rc = jnum(j, "lora_alpha", 8, &alpha, path, err)) ||
        (rc = jnum(j, "lora_dropout", 0, &dropout, path, err)) || (rc = jbool(j, "use_rslora", &s->use_rslora, path, err)))
        return rc;
    const cJSON *tm_probe = jget(j, "target_modules");
    const int head_only = r == 0 && cJSON_IsArray(tm_probe) && !cJSON_GetArraySize(tm_probe); /* lsllama --head-only */
    if (!head_only && (r != floor(r) || r < 1 || r > 1e6))
        return ll_fail(err, LL_ERR_CONFIG, "%s: key 'r' must be a positive integer (LoRA rank), got %g", path, r);
    if (dropout < 0 || dropout >= 1)
        return ll_fail(err, LL_ERR_CONFIG, "%s: key 'lora_dropout' must be in [0, 1), got %g", path, dropout);
    if (!isfinite((float)alpha)) /* as a float: 1e39 would scale every update to infinity */
        return ll_fail(err, LL_ERR_CONFIG, "%s: key 'lora_alpha' must be a number within float range, got %g", path,
                       alpha);
    s->r = (int)r, s->alpha = (float)alpha, s->dropout = (float)dropout;
    /* settings that change the computation in ways we do not implement */
    static const char *const flags[] = {"use_dora", "fan_in_fan_out", "lora_bias", "use_qalora"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        int on = 0;
        if ((rc = jbool(j, flags[i], &on, path, err))) return rc;
        if (on) return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: '%s': true is not supported", path, flags[i]);
    }
    const cJSON *bias = jget(j, "bias");
    if (bias && (!cJSON_IsString(bias) || strcmp(bias->valuestring, "none")))
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: 'bias' other than \"none\" is not supported", path);
    static const char *const must_be_empty[] = {"rank_pattern", "alpha_pattern", "layers_to_transform",
                                                "layer_replication", "target_parameters", "trainable_token_indices"};
    for (size_t i = 0; i < sizeof must_be_empty / sizeof must_be_empty[0]; i++) {
        const cJSON *x = jget(j, must_be_empty[i]);
        if (x && !((cJSON_IsObject(x) || cJSON_IsArray(x)) && !cJSON_GetArraySize(x)))
            return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: '%s' is not supported (must be empty or null)", path,
                           must_be_empty[i]);
    }
    const cJSON *tm = jget(j, "target_modules");
    s->targets = 0;
    if (cJSON_IsString(tm)) {
        if (strcmp(tm->valuestring, "all-linear"))
            return ll_fail(err, LL_ERR_UNSUPPORTED,
                           "%s: target_modules '%s': a regular expression is not supported (give a list of modules)",
                           path, tm->valuestring);
        s->targets = (1u << LL_LORA_N_TARGETS) - 1;
    } else if (cJSON_IsArray(tm)) {
        const cJSON *x;
        cJSON_ArrayForEach(x, tm) {
            if (!cJSON_IsString(x))
                return ll_fail(err, LL_ERR_CONFIG, "%s: target_modules must hold strings", path);
            const int t = target_index(x->valuestring);
            if (t < 0)
                return ll_fail(err, LL_ERR_CONFIG,
                               "%s: unknown target module '%s' in target_modules (q_proj, k_proj, v_proj, o_proj, "
                               "gate_proj, up_proj, down_proj)", path, x->valuestring);
            s->targets |= 1u << t;
        }
    } else {
        return ll_fail(err, LL_ERR_CONFIG, "%s: required key 'target_modules' is missing", path);
    }
    if (!s->targets && !head_only) return ll_fail(err, LL_ERR_CONFIG, "%s: target_modules is empty", path);
    const cJSON *bn = jget(j, "base_model_name_or_path");
    if (cJSON_IsString(bn) && !(s->base_name = strdup(bn->valuestring)))
        return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    return LL_OK;
}

int ll_base_precision_from_json(const cJSON *bp, const char *path, const char *key, ll_base_precision *out,
                                ll_error *err) {
    if (!bp) return 0;
    if (cJSON_IsString(bp) && ll_base_precision_parse(bp->valuestring, out) == LL_OK) return 1;
    return ll_fail(err, LL_ERR_CONFIG, "%s: %s must be \"stored\", \"bf16\", \"q8_0\" or \"f32\"%s%s%s", path, key,
                   cJSON_IsString(bp) ? ", not \"" : "", cJSON_IsString(bp) ? bp->valuestring : "",
                   cJSON_IsString(bp) ? "\"" : "");
}

int ll_adapter_base_precision(const char *dir, ll_base_precision *out, ll_error *err) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/label_map.json", dir) >= (int)sizeof path) return 0;
    char *text = NULL;
    size_t len = 0;
    ll_error e = {0};
    if (ll_read_text_file(path, &text, &len, &e)) return 0; /* no label map: PEFT's adapter; its loader says more */
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *ls = j ? cJSON_GetObjectItemCaseSensitive(j, "lsllama") : NULL;
    const int rc = ll_base_precision_from_json(ls ? cJSON_GetObjectItemCaseSensitive(ls, "base_precision") : NULL,
                                               path, "lsllama.base_precision", out, err);
    cJSON_Delete(j);
    return rc;
}

/* label_map.json: labels (n must equal K) and head settings. */
static int parse_label_map(const cJSON *j, const char *path, int K, char ***names, ll_classifier_config *hc,
                           ll_error *err) {
    const cJSON *i2l = jget(j, "id2label");
    if (!cJSON_IsObject(i2l)) return ll_fail(err, LL_ERR_CONFIG, "%s: required key 'id2label' is missing", path);
    if (cJSON_GetArraySize(i2l) != K)
        return ll_fail(err, LL_ERR_CONFIG, "%s: id2label has %d labels, but the score head in %s has %d rows", path,
                       cJSON_GetArraySize(i2l), LL_ADAPTER_WEIGHTS_FILE, K);
    char **given = calloc((size_t)K, sizeof *given);
    if (!given) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    for (int k = 0; k < K; k++) {
        char id[16];
        snprintf(id, sizeof id, "%d", k);
        const cJSON *x = jget(i2l, id);
        if (!cJSON_IsString(x)) {
            free(given);
            return ll_fail(err, LL_ERR_CONFIG, "%s: id2label has no string for id '%s'", path, id);
        }
        given[k] = x->valuestring;
    }
    int rc = label_names((const char *const *)given, K, names, path, err);
    free(given);
    if (rc) return rc;
    const cJSON *pt = jget(j, "problem_type");
    if (cJSON_IsString(pt)) hc->multi_label = !strcmp(pt->valuestring, "multi_label_classification");
    const cJSON *ls = jget(j, "lsllama");
    if (cJSON_IsObject(ls)) {
        const cJSON *pool = jget(ls, "pooling");
        if (pool) {
            int found = 0;
            if (cJSON_IsString(pool) && ll_pool_parse(pool->valuestring, &hc->pool) == LL_OK) found = 1;
            if (!found)
                return ll_fail(err, LL_ERR_CONFIG, "%s: lsllama.pooling must be \"last\", \"mean\", \"max\" or \"first\"",
                               path);
        }
        double bf = 0;
        if ((rc = jnum(ls, "bidirectional_from", hc->bidirectional_from, &bf, path, err))) return rc;
        if (bf < 0 || bf != floor(bf) || bf > 1e6)
            return ll_fail(err, LL_ERR_CONFIG, "%s: lsllama.bidirectional_from must be a layer index >= 0", path);
        hc->bidirectional_from = (int)bf;
    }
    return LL_OK;
}

/* Which slot a PEFT key fills: layer/target/A-or-B, or the head. */
enum { KEY_LORA, KEY_SCORE_W, KEY_SCORE_B };
static int parse_peft_key(const char *key, int *layer, int *target, int *is_b) {
    if (!strcmp(key, PEFT_PREFIX "score.weight")) return KEY_SCORE_W;
    if (!strcmp(key, PEFT_PREFIX "score.bias")) return KEY_SCORE_B;
    int l, used = 0;
    char parent[16], mod[16], ab[2];
    if (sscanf(key, PEFT_PREFIX "model.layers.%d.%15[a-z_].%15[a-z_].lora_%1[AB].weight%n", &l, parent, mod, ab,
               &used) != 4 || key[used] != '\0' || l < 0)
        return -1;
    for (int t = 0; t < LL_LORA_N_TARGETS; t++)
        if (!strcmp(mod, ll_lora_target_names[t]) && !strcmp(parent, module_parent(t))) {
            *layer = l, *target = t, *is_b = ab[0] == 'B';
            /* reject non-canonical spellings ("layers.01") */
            char canon[160];
            peft_key(canon, sizeof canon, l, t, ab[0]);
            return strcmp(canon, key) ? -1 : KEY_LORA;
        }
    return -1;
}

static int check_shape(const ll_st_tensor *t, const char *path, int64_t rows, int64_t cols, const char *why,
                       ll_error *err) {
    const int ndim = cols > 0 ? 2 : 1;
    const int64_t want[2] = {rows, cols};
    if (t->ndim == ndim && t->shape[0] == rows && (ndim == 1 || t->shape[1] == cols)) {
        if (!ll_dtype_is_plain_float(t->dtype))
            return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s (F32, F16 or BF16 expected)", path,
                           t->name, t->dtype_name);
        return LL_OK;
    }
    char got[96], exp[96];
    shape_str(got, sizeof got, t->ndim, t->shape);
    shape_str(exp, sizeof exp, ndim, want);
    return ll_fail(err, LL_ERR_SHAPE, "%s: tensor '%s' has shape %s, but %s needs %s", path, t->name, got, why, exp);
}

int ll_adapter_load(const char *dir, ll_model *base, const ll_classifier_config *head, ll_classifier **out,
                    ll_adapter_info *info, ll_error *err) {
    *out = NULL;
    if (info) memset(info, 0, sizeof *info);
    const ll_config *p = ll_model_config(base);
    char *cfg_path = path_join(dir, LL_ADAPTER_CONFIG_FILE), *w_path = path_join(dir, LL_ADAPTER_WEIGHTS_FILE),
         *l_path = path_join(dir, LL_ADAPTER_LABELS_FILE);
    cJSON *cj = NULL, *lj = NULL;
    ll_st_file *sf = NULL;
    const ll_st_tensor **slots = NULL; /* [n_layers * N_TARGETS * 2] */
    char **names = NULL;
    ll_classifier *c = NULL;
    adapter_settings s = {0};
    int K = 0, rc = LL_OK;
    if (!cfg_path || !w_path || !l_path) {
        rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
        goto done;
    }
    struct stat st;
    if (stat(cfg_path, &st) != 0 && ll_merged_is_classifier(dir)) { /* a model folder given as an adapter */
        rc = ll_fail(err, LL_ERR_ARG, "%s is a model folder (config.json, model.safetensors: a merged or fully "
                     "fine-tuned classifier), not a LoRA adapter: give it as the MODEL, without --adapter", dir);
        goto done;
    }
    if ((rc = read_json(cfg_path, &cj, err)) || (rc = parse_adapter_config(cj, cfg_path, &s, err))) goto done;
    if ((rc = ll_st_open(&sf, w_path, err))) goto done;
    const size_t n_slots = (size_t)p->n_layers * LL_LORA_N_TARGETS * 2;
    slots = calloc(n_slots, sizeof *slots);
    if (!slots) {
        rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* every tensor in the file must have a place */
    const ll_st_tensor *score_w = NULL, *score_b = NULL;
    for (size_t i = 0; i < sf->n_tensors; i++) {
        const ll_st_tensor *t = &sf->tensors[i];
        int l, tg, is_b;
        const int kind = parse_peft_key(t->name, &l, &tg, &is_b);
        if (kind < 0) {
            rc = ll_fail(err, LL_ERR_FORMAT,
                         "%s: tensor '%s' is not a LoRA weight of a Llama projection or the score head", w_path,
                         t->name);
            goto done;
        }
        if (kind == KEY_SCORE_W) score_w = t;
        if (kind == KEY_SCORE_B) score_b = t;
        if (kind != KEY_LORA) continue;
        if (l >= p->n_layers) {
            rc = ll_fail(err, LL_ERR_SHAPE, "%s: tensor '%s' is for layer %d, but the base has %d layers", w_path,
                         t->name, l, p->n_layers);
            goto done;
        }
        if (!(s.targets & (1u << tg))) {
            rc = ll_fail(err, LL_ERR_CONFIG, "%s: tensor '%s' adapts %s, which is not in target_modules of %s", w_path,
                         t->name, ll_lora_target_names[tg], cfg_path);
            goto done;
        }
        slots[((size_t)l * LL_LORA_N_TARGETS + tg) * 2 + is_b] = t;
    }
    /* the head gives the number of labels */
    if (!score_w) {
        rc = ll_fail(err, LL_ERR_SHAPE, "%s: tensor '" PEFT_PREFIX "score.weight' (the classification head) is missing",
                     w_path);
        goto done;
    }
    if (score_w->ndim != 2 || score_w->shape[0] < 1 || score_w->shape[0] > 1000000) {
        char got[96];
        shape_str(got, sizeof got, score_w->ndim, score_w->shape);
        rc = ll_fail(err, LL_ERR_SHAPE, "%s: tensor '%s' has shape %s, expected [num_labels, %d]", w_path,
                     score_w->name, got, p->dim);
        goto done;
    }
    K = (int)score_w->shape[0];
    char why[128];
    snprintf(why, sizeof why, "the base (hidden size %d)", p->dim);
    if ((rc = check_shape(score_w, w_path, K, p->dim, why, err))) goto done;
    if (score_b && (rc = check_shape(score_b, w_path, K, 0, "the score head", err))) goto done;
    for (int l = 0; l < p->n_layers; l++)
        for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
            if (!(s.targets & (1u << t))) continue;
            int64_t in, o;
            lora_dims(p, t, &in, &o);
            for (int b = 0; b < 2; b++) {
                const ll_st_tensor *x = slots[((size_t)l * LL_LORA_N_TARGETS + t) * 2 + b];
                char key[160];
                peft_key(key, sizeof key, l, t, b ? 'B' : 'A');
                if (!x) {
                    rc = ll_fail(err, LL_ERR_SHAPE, "%s: tensor '%s' is missing (%s is in target_modules of %s)",
                                 w_path, key, ll_lora_target_names[t], cfg_path);
                    goto done;
                }
                snprintf(why, sizeof why, "r = %d (%s) on the base's %s (in %lld, out %lld)", s.r,
                         LL_ADAPTER_CONFIG_FILE, ll_lora_target_names[t], (long long)in, (long long)o);
                if ((rc = check_shape(x, w_path, b ? o : s.r, b ? s.r : in, why, err))) goto done;
            }
        }
    /* head settings: caller's, else label_map.json's, else LS-LLaMA's */
    ll_classifier_config cc = {.pool = LL_POOL_LAST, .bidirectional_from = ll_config_default_bidirectional_from(p)};
    FILE *probe = fopen(l_path, "rb");
    const int has_labels = probe != NULL;
    if (probe) fclose(probe);
    if (has_labels) {
        if ((rc = read_json(l_path, &lj, err)) || (rc = parse_label_map(lj, l_path, K, &names, &cc, err))) goto done;
    } else if ((rc = label_names(NULL, K, &names, dir, err))) {
        goto done;
    }
    if (head) {
        cc.pool = head->pool;
        cc.bidirectional_from = head->bidirectional_from;
        cc.multi_label = head->multi_label;
    }
    cc.token_task = !strcmp(s.task, "TOKEN_CLS");
    if (cc.token_task) cc.multi_label = 0;
    cc.n_labels = K;
    cc.head_bias = score_b != NULL;
    cc.lora_r = s.r, cc.lora_alpha = s.alpha, cc.lora_dropout = s.dropout, cc.lora_targets = s.targets;
    cc.use_rslora = s.use_rslora;
    if ((rc = ll_classifier_create(&c, base, &cc, 0, err))) {
        ll_fail_prefix(err, "%s: ", dir);
        goto done;
    }
    for (int l = 0; l < p->n_layers; l++)
        for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
            if (!(s.targets & (1u << t))) continue;
            ll_lora_module *md = ll_lora_at(&c->lora, l, t);
            const ll_st_tensor *a = slots[((size_t)l * LL_LORA_N_TARGETS + t) * 2],
                            *b = slots[((size_t)l * LL_LORA_N_TARGETS + t) * 2 + 1];
            ll_dequantize(a->dtype, a->data, md->A, (size_t)a->n_elems);
            ll_dequantize(b->dtype, b->data, md->B, (size_t)b->n_elems);
            if ((rc = check_finite(md->A, a, w_path, err)) || (rc = check_finite(md->B, b, w_path, err))) goto done;
        }
    ll_dequantize(score_w->dtype, score_w->data, c->head_w, (size_t)score_w->n_elems);
    if (score_b) ll_dequantize(score_b->dtype, score_b->data, c->head_b, (size_t)score_b->n_elems);
    if ((rc = check_finite(c->head_w, score_w, w_path, err)) ||
        (score_b && (rc = check_finite(c->head_b, score_b, w_path, err))))
        goto done;
    if (info) {
        snprintf(info->task_type, sizeof info->task_type, "%s", s.task);
        info->base_model_name_or_path = s.base_name, s.base_name = NULL;
        info->n_labels = K;
        info->id2label = names, names = NULL;
        info->has_label_map = has_labels;
    }
    *out = c, c = NULL;
done:
    ll_classifier_free(c);
    free_names(names, K);
    free(s.base_name);
    free(slots);
    ll_st_close(sf);
    cJSON_Delete(cj);
    cJSON_Delete(lj);
    free(cfg_path);
    free(w_path);
    free(l_path);
    return rc;
}

/* ---- merged model ------------------------------------------------------------- */

ll_merge_options ll_merge_options_default(void) {
    return (ll_merge_options){.id2label = NULL, .task_type = NULL, .dtype = LL_MERGE_DEFAULT, .pad_token_id = -1};
}

/* pad_token_id for config.json: given, else the tokenizer's EOS, else the base's; -1: none */
static int merge_pad_id(const ll_classifier *c, const ll_merge_options *o) {
    if (o->pad_token_id >= 0) return o->pad_token_id;
    if (o->tokenizer && ll_tokenizer_eos_id(o->tokenizer) >= 0) return ll_tokenizer_eos_id(o->tokenizer);
    return ll_model_config(c->base)->eos_token_id;
}

static int is_token_task(const ll_classifier *c, const ll_merge_options *o) {
    return o->task_type ? !strcmp(o->task_type, "TOKEN_CLS") : c->cfg.token_task;
}

/* a sequence head's bias that changes a logit (an all-zero one is dropped, exactly) */
static int seq_bias_matters(const ll_classifier *c) {
    for (int k = 0; c->head_b && k < c->cfg.n_labels; k++)
        if (c->head_b[k] != 0.0f) return 1;
    return 0;
}

#define REASON(...)                                                                                          \
    do {                                                                                                     \
        if (rep->n < LL_MERGE_MAX_REASONS) snprintf(rep->reason[rep->n++], sizeof rep->reason[0], __VA_ARGS__); \
    } while (0)

/* tok_msg: NULL when the tokenizer files can be written, else why not */
static void merge_reasons(const ll_classifier *c, const ll_merge_options *o, const char *tok_msg,
                          ll_merge_report *rep) {
    const ll_classifier_config *cc = &c->cfg;
    const ll_config *p = ll_model_config(c->base);
    const int token = is_token_task(c, o), pad = merge_pad_id(c, o);
    rep->n = 0;
    if (!token && cc->pool != LL_POOL_LAST)
        REASON("pooling '%s': transformers' *ForSequenceClassification takes the last token that is not "
               "pad_token_id", ll_pool_name(cc->pool));
    const int whole_bidirectional = c->base->arch->window == LL_WINDOW_LAYER_TYPES && cc->bidirectional_from == 0;
    if (cc->bidirectional_from < p->n_layers && !whole_bidirectional)
        REASON("bidirectional_from %d: attention is bidirectional from layer %d of %d; transformers' %s attention is "
               "causal in every layer", cc->bidirectional_from, cc->bidirectional_from, p->n_layers, p->arch);
    if (!token && seq_bias_matters(c))
        REASON("head_bias: the score head has a non-zero bias; transformers' *ForSequenceClassification score has "
               "none and would drop score.bias");
    if (!token && pad < 0)
        REASON("pad_token_id: neither the tokenizer nor the base has an EOS to pad with; transformers refuses "
               "batches larger than one without one");
    if (!token && pad >= 0 && o->tokenizer) {
        const ll_tokenizer *t = o->tokenizer;
        ll_encoding enc = {0};
        ll_error e = {0};
        /* what the tokenizer adds around any text: is the pad id among the trailing tokens? */
        if (!ll_tokenizer_encode((ll_tokenizer *)t, "a", 1, LL_TOK_DEFAULT, &enc, &e) && enc.n &&
            enc.ids[enc.n - 1] == pad)
            REASON("pad_token_id %d: the tokenizer appends it (EOS) to every text, so transformers would pool the "
                   "token before it", pad);
        ll_encoding_free(&enc);
    }
    if (!token && cc->n_labels == 1 && !cc->multi_label)
        REASON("num_labels 1 single-label: transformers' pipeline applies a sigmoid to one label, lsllama a "
               "softmax");
    if (o->tokenizer && tok_msg) REASON("tokenizer: %s", tok_msg);
}

int ll_merge_check(const ll_classifier *c, const ll_merge_options *opt, ll_merge_report *rep, ll_error *err) {
    const ll_merge_options o = opt ? *opt : ll_merge_options_default();
    char *text = NULL, msg[256] = "";
    size_t len;
    ll_error e = {0};
    if (o.tokenizer && ll_tokenizer_to_json(o.tokenizer, o.tokenizer_source, &text, &len, &e)) {
        if (e.code != LL_ERR_UNSUPPORTED) return ll_fail(err, e.code, "%s", e.message);
        snprintf(msg, sizeof msg, "%s", e.message);
    }
    free(text);
    merge_reasons(c, &o, msg[0] ? msg : NULL, rep);
    return LL_OK;
}

/* The name a tensor of the base has in a Hugging Face folder of its
 * architecture ("model.layers.3.self_attn.q_proj.weight" for Llama); the
 * canonical name where the row has none. Returns buf. */
static const char *hf_name(const ll_arch *a, ll_role role, int layer, char *buf, size_t cap) {
    const char *s = ll_arch_stored_name(a, 0, role, layer, buf, cap);
    return s ? s : ll_arch_canonical_name(role, layer, buf, cap);
}

/* A norm's n weights as a Hugging Face file stores them: the model keeps the
 * multiplier, offset + weight in Gemma's RMSNorm (arch.h hf_norm_offset);
 * shifted copies are taken from *pool. */
static const float *hf_norm(const ll_arch *a, const float *mult, size_t n, float **pool) {
    if (a->hf_norm_offset == 0.0f) return mult;
    float *w = *pool;
    *pool += n;
    for (size_t i = 0; i < n; i++) w[i] = mult[i] - a->hf_norm_offset;
    return w;
}

/* config.json's sliding-window keys, as the architecture's config class reads them */
static void add_window_keys(cJSON *j, const ll_arch *a, const ll_config *p) {
    if (a->window == LL_WINDOW_NONE) return;
    if (p->sliding_window <= 0) {
        cJSON_AddNullToObject(j, "sliding_window");
        return;
    }
    cJSON_AddNumberToObject(j, "sliding_window", p->sliding_window);
    if (a->window == LL_WINDOW_IF_ENABLED) cJSON_AddBoolToObject(j, "use_sliding_window", 1);
    if (a->window == LL_WINDOW_IF_ENABLED || a->window == LL_WINDOW_LAYER_TYPES) {
        /* the layers that slide, by name (Qwen2Config and Gemma3TextConfig read layer_types first) */
        cJSON *lt = cJSON_AddArrayToObject(j, "layer_types");
        for (int l = 0; l < p->n_layers; l++)
            cJSON_AddItemToArray(lt, cJSON_CreateString(ll_config_layer_sliding(p, l) ? "sliding_attention"
                                                                                      : "full_attention"));
    }
}

static cJSON *merged_config_json(const ll_classifier *c, const ll_merge_options *o, char *const *names,
                                 const char *cls, int head_bias, const ll_merge_report *rep) {
    const ll_config *p = ll_model_config(c->base);
    const ll_arch *row = c->base->arch;
    const int bias_keys = row->bias == LL_BIAS_CONFIG_KEYS;
    const ll_classifier_config *cc = &c->cfg;
    cJSON *j = cJSON_CreateObject();
    char arch[96];
    snprintf(arch, sizeof arch, "%sFor%sClassification", cls,
             o->task_type && !strcmp(o->task_type, "TOKEN_CLS") ? "Token" : "Sequence");
    cJSON *a = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(a, cJSON_CreateString(arch));
    cJSON_AddStringToObject(j, "model_type", p->arch);
    if (bias_keys || row->bias == LL_BIAS_ATTENTION_KEY)
        cJSON_AddBoolToObject(j, "attention_bias", p->qkv_bias || p->o_bias);
    cJSON_AddNumberToObject(j, "attention_dropout", 0);
    if (p->bos_token_id >= 0) cJSON_AddNumberToObject(j, "bos_token_id", p->bos_token_id);
    if (p->eos_token_id >= 0) cJSON_AddNumberToObject(j, "eos_token_id", p->eos_token_id);
    const int pad = merge_pad_id(c, o);
    if (pad >= 0) cJSON_AddNumberToObject(j, "pad_token_id", pad);
    else cJSON_AddNullToObject(j, "pad_token_id");
    cJSON_AddNumberToObject(j, "head_dim", p->head_dim);
    cJSON_AddStringToObject(j, row->hf_act_key ? row->hf_act_key : "hidden_act",
                            p->hidden_act_name[0] ? p->hidden_act_name : "silu");
    cJSON_AddNumberToObject(j, "hidden_size", p->dim);
    cJSON_AddItemToObject(j, "initializer_range", json_float(0.02f));
    cJSON_AddNumberToObject(j, "intermediate_size", p->hidden_dim);
    cJSON_AddNumberToObject(j, "max_position_embeddings", p->max_seq_len > 0 ? p->max_seq_len : 2048);
    if (bias_keys) cJSON_AddBoolToObject(j, "mlp_bias", p->mlp_bias);
    cJSON_AddNumberToObject(j, "num_attention_heads", p->n_heads);
    cJSON_AddNumberToObject(j, "num_hidden_layers", p->n_layers);
    cJSON_AddNumberToObject(j, "num_key_value_heads", p->n_kv_heads);
    cJSON_AddItemToObject(j, "rms_norm_eps", json_float(p->rms_eps));
    /* the legacy spelling, which transformers 4 and 5 both read */
    cJSON_AddItemToObject(j, "rope_theta", json_float(p->rope_theta));
    if (p->rope_scaling == LL_ROPE_NONE) {
        cJSON_AddNullToObject(j, "rope_scaling");
    } else {
        cJSON *rs = cJSON_AddObjectToObject(j, "rope_scaling");
        cJSON_AddStringToObject(rs, "rope_type", p->rope_scaling == LL_ROPE_LINEAR ? "linear" : "llama3");
        cJSON_AddItemToObject(rs, "factor", json_float(p->rope_factor));
        if (p->rope_scaling == LL_ROPE_LLAMA3) {
            cJSON_AddItemToObject(rs, "low_freq_factor", json_float(p->rope_low_freq_factor));
            cJSON_AddItemToObject(rs, "high_freq_factor", json_float(p->rope_high_freq_factor));
            cJSON_AddNumberToObject(rs, "original_max_position_embeddings", p->rope_original_max_pos);
        }
    }
    add_window_keys(j, row, p);
    if (row->hf_defaults.query_pre_attn_scalar > 0) { /* Gemma3TextConfig's own keys */
        cJSON_AddItemToObject(j, "query_pre_attn_scalar", json_float(p->query_pre_attn_scalar > 0
                                                                          ? p->query_pre_attn_scalar
                                                                          : (float)p->head_dim));
        cJSON_AddItemToObject(j, "rope_local_base_freq", json_float(p->rope_local_theta > 0 ? p->rope_local_theta
                                                                                              : p->rope_theta));
        cJSON_AddNullToObject(j, "attn_logit_softcapping");
        cJSON_AddNullToObject(j, "final_logit_softcapping");
        /* every layer bidirectional is what use_bidirectional_attention computes, windows halved alike */
        cJSON_AddBoolToObject(j, "use_bidirectional_attention", cc->bidirectional_from == 0);
    }
    cJSON_AddBoolToObject(j, "tie_word_embeddings", p->tied_embeddings);
    cJSON_AddStringToObject(j, "torch_dtype", o->dtype == LL_DTYPE_F16 ? "float16"
                                              : o->dtype == LL_DTYPE_BF16 ? "bfloat16" : "float32");
    cJSON_AddBoolToObject(j, "use_cache", 1);
    cJSON_AddNumberToObject(j, "vocab_size", p->vocab_size);
    add_label_maps(j, names, cc->n_labels);
    cJSON_AddStringToObject(j, "problem_type",
                            cc->multi_label ? "multi_label_classification" : "single_label_classification");
    add_lsllama_settings(j, c, head_bias);
    if (rep->n) { /* written only with allow_inexact: what transformers computes differently */
        cJSON *r = cJSON_AddArrayToObject(j, "lsllama_inexact");
        for (int i = 0; i < rep->n; i++) cJSON_AddItemToArray(r, cJSON_CreateString(rep->reason[i]));
    }
    return j;
}

/* tokenizer_config.json for transformers' PreTrainedTokenizerFast over the
 * tokenizer.json written beside it: special token names, right padding
 * (Llama's positions count from the first token, so left padding would
 * shift them) */
/* 1 if lsllama's tokenizer reads the text of token id as that token (an
 * added/special token matched in text): transformers matches every special
 * token named in tokenizer_config.json */
static int matched_in_text(const ll_tokenizer *t, int id) {
    size_t n = 0;
    const char *piece = ll_tokenizer_piece(t, id, &n);
    ll_encoding enc = {0};
    ll_error e = {0};
    const int ok = piece && !ll_tokenizer_encode((ll_tokenizer *)t, piece, n, LL_TOK_PARSE_SPECIAL, &enc, &e) &&
                   enc.n == 1 && enc.ids[0] == id;
    ll_encoding_free(&enc);
    return ok;
}

static cJSON *tokenizer_config_json(const ll_tokenizer *t, int pad, int max_len) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "tokenizer_class", "PreTrainedTokenizerFast");
    const char *keys[4] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    const int ids[4] = {ll_tokenizer_bos_id(t), ll_tokenizer_eos_id(t), ll_tokenizer_unk_id(t), pad};
    for (int k = 0; k < 4; k++) {
        size_t n = 0;
        /* BOS/EOS/UNK named only where lsllama matches them in text too (the
         * post-processor adds BOS/EOS without the names); the pad token always
         * (batching needs it) */
        const char *piece = ids[k] >= 0 && (k == 3 || matched_in_text(t, ids[k])) ? ll_tokenizer_piece(t, ids[k], &n)
                                                                                  : NULL;
        char *z = piece ? strndup(piece, n) : NULL;
        if (z) cJSON_AddStringToObject(j, keys[k], z);
        else cJSON_AddNullToObject(j, keys[k]);
        free(z);
    }
    cJSON_AddBoolToObject(j, "clean_up_tokenization_spaces", 0);
    cJSON_AddNumberToObject(j, "model_max_length", max_len > 0 ? max_len : 2048);
    cJSON_AddStringToObject(j, "padding_side", "right");
    cJSON_AddStringToObject(j, "truncation_side", "right");
    return j;
}

/* README.md: what the folder is, how to load it, and (allow_inexact) what
 * transformers computes differently */
static char *readme_text(const ll_classifier *c, const ll_merge_options *o, char *const *names, const char *arch,
                         const ll_merge_report *rep) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    const int token = is_token_task(c, o);
    const int full = c->cfg.full_targets != 0;
    fprintf(f, "# %s %s by lsllama\n\n", arch, full ? "fine-tuned in full" : "merged");
    fprintf(f, "A %s classifier (%d labels:", token ? "token" : "sequence", c->cfg.n_labels);
    for (int k = 0; k < c->cfg.n_labels; k++) fprintf(f, "%s `%s`", k ? "," : "", names[k]);
    if (full) fprintf(f, ") whose base weights were trained themselves (lsllama train --full-targets ...).\n\n");
    else fprintf(f, ") with the LoRA deltas merged into the base weights.\n\n");
    fprintf(f, "```python\nfrom transformers import pipeline\npipe = pipeline(\"%s\", model=\"<this folder>\", "
               "dtype=\"float32\")\n```\n\n",
            token ? "token-classification" : "text-classification");
    fprintf(f, "lsllama: `lsllama predict <this folder>` (no `--adapter`).\n\n");
    const int pad = merge_pad_id(c, o);
    if (o->tokenizer && pad >= 0 && !matched_in_text(o->tokenizer, pad)) {
        size_t n = 0;
        const char *piece = ll_tokenizer_piece(o->tokenizer, pad, &n);
        fprintf(f, "Note: transformers reads the pad token's text (`%.*s`) written in an input as the pad token; "
                   "lsllama's tokenizer for this base reads it as plain text. Inputs without that text tokenize "
                   "alike.\n\n", (int)n, piece ? piece : "");
    }
    if (rep->n) {
        fprintf(f, "## Not exact in transformers\n\n%s: transformers computes something other than the lsllama "
                   "classifier, because\n\n", full ? "Written by lsllama train" : "Written with `--allow-inexact`");
        for (int i = 0; i < rep->n; i++) fprintf(f, "- %s\n", rep->reason[i]);
        fprintf(f, "\nlsllama itself reads the settings from config.json (\"lsllama\") and computes the "
                   "classifier as trained.\n");
    } else {
        fprintf(f, "transformers computes the same logits as lsllama (up to float rounding).\n");
    }
    if (!o->tokenizer)
        fprintf(f, "\nThis folder has no tokenizer files: use the base model's tokenizer.\n");
    if (fclose(f)) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Does the base hold a matrix in a block-quantized type? */
static int base_is_quantized(const ll_model *m) {
    for (int t = 0; t < LL_DTYPE_COUNT; t++)
        if (m->resident[t] && ll_dtype_block_elems((ll_dtype)t) > 1) return 1;
    return 0;
}

/* One matrix of the merged folder, produced a row at a time (no f32 copy of
 * the base): the weight dequantized exactly, plus scale * B A when LoRA
 * adapts it. */
typedef struct merged_rows {
    const ll_matrix *w;
    const ll_lora_module *md; /* NULL: the base weight alone */
    float scale;
    size_t r;
} merged_rows;

static void merged_row(const void *ctx, size_t row, float *dst) {
    const merged_rows *mr = ctx;
    const ll_matrix *w = mr->w;
    ll_matrix_row_f32(w, row, dst);
    /* W'[row] = W[row] + scale * B[row] A; the packed kernel on one row gives
     * each element as it gives it in the whole product */
    if (mr->md)
        ll_gemm_serial(0, 0, 1, w->cols, mr->r, mr->scale, mr->md->B + row * mr->r, mr->r, mr->md->A, w->cols, 1.0f,
                       dst, w->cols);
}

int ll_merge_save(const ll_classifier *c, const char *out_dir, const ll_merge_options *opt, ll_error *err) {
    ll_merge_options o = opt ? *opt : ll_merge_options_default();
    const ll_model *m = c->model; /* with full fine-tuning, the trained weights */
    const ll_config *p = ll_model_config(m);
    const ll_classifier_config *cc = &c->cfg;
    /* the classifier's own task unless given; a token head written as a
     * *ForSequenceClassification (or the reverse) would load in transformers
     * and compute something else, so a mismatch is an error */
    const char *task = o.task_type ? o.task_type : cc->token_task ? "TOKEN_CLS" : "SEQ_CLS";
    int rc = check_task(task, err);
    if (rc) return rc;
    if (!strcmp(task, "TOKEN_CLS") != !!cc->token_task)
        return ll_fail(err, LL_ERR_ARG, "%s: task type %s does not fit a %s classifier", out_dir, task,
                       cc->token_task ? "token" : "sequence");
    o.task_type = task;
    const ll_arch *a = m->arch;
    const char *cls = a->hf_class_prefix;
    if (!cls)
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: cannot write a model of type '%s' (its adapter works with "
                       "lsllama predict, eval and serve)", out_dir, p->arch);
    if (!strcmp(task, "TOKEN_CLS") && a->hf_no_token_class)
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: transformers has no %sForTokenClassification: a %s token "
                       "classifier cannot be written as a model folder (its adapter works with lsllama predict, "
                       "eval and serve)", out_dir, cls, p->arch);
    /* trained weights are f32: kept so unless asked */
    if (o.dtype == LL_MERGE_DEFAULT) o.dtype = base_is_quantized(m) && !cc->full_targets ? LL_DTYPE_BF16 : LL_DTYPE_F32;
    if (o.dtype != LL_DTYPE_F32 && o.dtype != LL_DTYPE_F16 && o.dtype != LL_DTYPE_BF16)
        return ll_fail(err, LL_ERR_ARG, "%s: merged weights can be F32, F16 or BF16, not %s", out_dir,
                       ll_dtype_name(o.dtype));
    if ((p->o_bias && a->bias != LL_BIAS_CONFIG_KEYS && a->bias != LL_BIAS_ATTENTION_KEY) ||
        (p->mlp_bias && a->bias != LL_BIAS_CONFIG_KEYS))
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: a %s base with o_proj or MLP biases cannot be written", out_dir,
                       p->arch);
    /* frequencies config.json cannot express (GGUF per-frequency divisors) */
    float *inv = malloc((size_t)(p->head_dim / 2 + 1) * sizeof(float));
    if (!inv) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    ll_rope_inv_freq(inv, p, NULL);
    int same = 1;
    for (int i = 0; i < p->head_dim / 2; i++) same &= inv[i] == m->rope_inv_freq[i];
    free(inv);
    if (!same)
        return ll_fail(err, LL_ERR_UNSUPPORTED,
                       "%s: the base's RoPE frequencies (from the checkpoint's rope_freqs tensor) have no config.json "
                       "form; merge from a Hugging Face copy of the base", out_dir);
    /* exact, or refused unless asked */
    char *tok_json = NULL, tok_msg[256] = "";
    size_t tok_len = 0;
    if (o.tokenizer) {
        ll_error e = {0};
        if (ll_tokenizer_to_json(o.tokenizer, o.tokenizer_source, &tok_json, &tok_len, &e)) {
            if (e.code != LL_ERR_UNSUPPORTED) return ll_fail(err, e.code, "%s", e.message);
            snprintf(tok_msg, sizeof tok_msg, "%s", e.message);
        }
    }
    ll_merge_report rep;
    merge_reasons(c, &o, tok_msg[0] ? tok_msg : NULL, &rep);
    if (rep.n && !o.allow_inexact) {
        char all[LL_MERGE_MAX_REASONS * 330] = "";
        for (int i = 0; i < rep.n; i++)
            snprintf(all + strlen(all), sizeof all - strlen(all), "\n  - %s", rep.reason[i]);
        free(tok_json);
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: not written: transformers' %sFor%sClassification would compute "
                       "something else:%s\n(--allow-inexact writes it anyway, with these reasons in README.md and "
                       "config.json)", out_dir, cls, is_token_task(c, &o) ? "Token" : "Sequence", all);
    }
    /* the token head has a bias in transformers (zeros when c has none); a
     * sequence head's bias only when it matters (then inexact) */
    const int token = is_token_task(c, &o), write_bias = token || seq_bias_matters(c);
    float *zero_bias = token && !c->head_b ? calloc((size_t)cc->n_labels, sizeof(float)) : NULL;
    if (token && !c->head_b && !zero_bias) {
        free(tok_json);
        return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    }
    char **names = NULL;
    if ((rc = label_names(o.id2label, cc->n_labels, &names, out_dir, err))) {
        free(tok_json);
        free(zero_bias);
        return rc;
    }
    const int L = p->n_layers;
    const size_t max_t = (size_t)L * 20 + 5;
    /* norms as the files store them (Gemma: weight = multiplier - 1) */
    const size_t hd_ = (size_t)p->head_dim, D_ = (size_t)p->dim;
    float *norm_pool = calloc((size_t)L * (4 * D_ + 2 * hd_) + D_, sizeof(float)), *np_ = norm_pool;
    /* Llama's attention_bias gives q, k, v and o biases together: a base with
     * only some of them (GGUF) gets zeros for the others, which add nothing */
    const size_t QD_ = (size_t)p->n_heads * p->head_dim, widest = QD_ > (size_t)p->dim ? QD_ : (size_t)p->dim;
    float *zeros = calloc(widest, sizeof(float));
    ll_st_write_tensor *ts = calloc(max_t, sizeof *ts);
    char(*keys)[128] = calloc(max_t, sizeof *keys);
    merged_rows *mrows = calloc((size_t)L * LL_LORA_N_TARGETS + 1, sizeof *mrows);
    cJSON *cj = NULL, *tcj = NULL;
    char *readme = NULL;
    folder_writer w = {0};
    size_t n = 0;
    if (!ts || !keys || !mrows || !zeros || !norm_pool) {
        rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
        goto done;
    }
#define ADD(name_fmt, data_, ndim_, d0, d1, ...)                                                                  \
    do {                                                                                                         \
        snprintf(keys[n], sizeof keys[n], name_fmt, __VA_ARGS__);                                                \
        ts[n] = (ll_st_write_tensor){keys[n], o.dtype, ndim_, {d0, d1}, data_, NULL, NULL};                         \
        n++;                                                                                                     \
    } while (0)
    char nm[160]; /* names in the base architecture's Hugging Face spelling */
#define NAME(role, layer) hf_name(a, role, layer, nm, sizeof nm)
#define ADD_MATRIX(rows_ctx, ...)                                                                              \
    do {                                                                                                         \
        ADD(__VA_ARGS__);                                                                                        \
        ts[n - 1].row_fn = merged_row, ts[n - 1].row_ctx = rows_ctx;                                             \
    } while (0)
    mrows[0] = (merged_rows){&m->tok_emb, NULL, 0.0f, 0};
    ADD_MATRIX(&mrows[0], "%s", NULL, 2, p->vocab_size, p->dim, NAME(LL_ROLE_TOKEN_EMBD, -1));
    for (int l = 0; l < L; l++) {
        const ll_layer *ly = &m->layers[l];
        const ll_matrix *W[LL_LORA_N_TARGETS] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->w_gate, &ly->w_up, &ly->w_down};
        ADD("%s", hf_norm(a, ly->attn_norm, D_, &np_), 1, p->dim, 0, NAME(LL_ROLE_ATTN_NORM, l));
        ADD("%s", hf_norm(a, ly->ffn_norm, D_, &np_), 1, p->dim, 0, NAME(LL_ROLE_FFN_NORM, l));
        if (ly->q_norm) {
            ADD("%s", hf_norm(a, ly->q_norm, hd_, &np_), 1, p->head_dim, 0, NAME(LL_ROLE_Q_NORM, l));
            ADD("%s", hf_norm(a, ly->k_norm, hd_, &np_), 1, p->head_dim, 0, NAME(LL_ROLE_K_NORM, l));
        }
        if (ly->attn_post_norm) {
            ADD("%s", hf_norm(a, ly->attn_post_norm, D_, &np_), 1, p->dim, 0, NAME(LL_ROLE_ATTN_POST_NORM, l));
            ADD("%s", hf_norm(a, ly->ffn_post_norm, D_, &np_), 1, p->dim, 0, NAME(LL_ROLE_FFN_POST_NORM, l));
        }
        for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
            int64_t in, out;
            lora_dims(p, t, &in, &out);
            merged_rows *mr = &mrows[1 + (size_t)l * LL_LORA_N_TARGETS + t];
            *mr = (merged_rows){W[t], NULL, c->lora.scale, (size_t)cc->lora_r};
            if (cc->lora_r > 0 && (cc->lora_targets & (1u << t))) mr->md = ll_lora_at(&c->lora, l, t);
            ADD_MATRIX(mr, "%s", NULL, 2, out, in, NAME(ll_lora_targets[t].weight, l));
        }
        /* attention_bias gives q, k, v and o biases together */
        const int attention_bias = (a->bias == LL_BIAS_CONFIG_KEYS || a->bias == LL_BIAS_ATTENTION_KEY) &&
                                   (p->qkv_bias || p->o_bias);
        if (p->qkv_bias || attention_bias) {
            const int64_t QD = (int64_t)p->n_heads * p->head_dim, KVD = (int64_t)p->n_kv_heads * p->head_dim;
            ADD("%s", ly->bq ? ly->bq : zeros, 1, QD, 0, NAME(LL_ROLE_Q_BIAS, l));
            ADD("%s", ly->bk ? ly->bk : zeros, 1, KVD, 0, NAME(LL_ROLE_K_BIAS, l));
            ADD("%s", ly->bv ? ly->bv : zeros, 1, KVD, 0, NAME(LL_ROLE_V_BIAS, l));
        }
        if (attention_bias) ADD("%s", ly->bo ? ly->bo : zeros, 1, p->dim, 0, NAME(LL_ROLE_O_BIAS, l));
        if (p->mlp_bias) {
            ADD("%s", ly->b_gate, 1, p->hidden_dim, 0, NAME(LL_ROLE_GATE_BIAS, l));
            ADD("%s", ly->b_up, 1, p->hidden_dim, 0, NAME(LL_ROLE_UP_BIAS, l));
            ADD("%s", ly->b_down, 1, p->dim, 0, NAME(LL_ROLE_DOWN_BIAS, l));
        }
    }
    ADD("%s", hf_norm(a, m->final_norm, D_, &np_), 1, p->dim, 0, NAME(LL_ROLE_OUTPUT_NORM, -1));
#undef NAME
    ADD("%s", c->head_w, 2, cc->n_labels, p->dim, "score.weight");
    if (write_bias) ADD("%s", c->head_b ? c->head_b : zero_bias, 1, cc->n_labels, 0, "score.bias");
#undef ADD_MATRIX
#undef ADD
    char arch[96];
    snprintf(arch, sizeof arch, "%sFor%sClassification", cls, token ? "Token" : "Sequence");
    if (!(cj = merged_config_json(c, &o, names, cls, write_bias, &rep)) || !(readme = readme_text(c, &o, names, arch, &rep)) ||
        (o.tokenizer && !(tcj = tokenizer_config_json(o.tokenizer, merge_pad_id(c, &o), p->max_seq_len)))) {
        rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = fw_begin(&w, out_dir, err))) goto done;
    if ((rc = fw_safetensors(&w, "model.safetensors", ts, n, err))) goto done;
    if ((rc = fw_json(&w, "config.json", cj, err))) goto done;
    if ((rc = fw_text(&w, "README.md", readme, strlen(readme), err))) goto done;
    if (tok_json && (rc = fw_text(&w, "tokenizer.json", tok_json, tok_len, err))) goto done;
    if (tcj && (rc = fw_json(&w, "tokenizer_config.json", tcj, err))) goto done;
    rc = fw_commit(&w, err);
done:
    fw_abort(&w);
    cJSON_Delete(cj);
    cJSON_Delete(tcj);
    free(readme);
    free(tok_json);
    free(zero_bias);
    free(mrows);
    free(norm_pool);
    free(zeros);
    free(ts);
    free(keys);
    free_names(names, cc->n_labels);
    return rc;
}

int ll_classifier_load_head(ll_classifier *c, const char *path, ll_error *err) {
    ll_checkpoint *ck;
    const ll_arch *base_arch[2] = {c->base->arch, NULL}; /* a folder of the base's architecture, whatever its row */
    int rc = ll_checkpoint_open_archs(&ck, path, base_arch, err);
    if (rc) return rc;
    const int K = c->cfg.n_labels, D = ll_model_config(c->base)->dim;
    const ll_tensor_info *w = ll_checkpoint_find(ck, "score.weight"), *b = ll_checkpoint_find(ck, "score.bias");
    char want[64], got[96];
    if (!w) {
        rc = ll_fail(err, LL_ERR_SHAPE, "%s: tensor 'score.weight' (the classification head) is missing", path);
    } else if (w->ndim != 2 || w->shape[0] != K || w->shape[1] != D || !ll_dtype_is_plain_float(w->dtype)) {
        shape_str(got, sizeof got, w->ndim, w->shape);
        snprintf(want, sizeof want, "[%d, %d]", K, D);
        rc = ll_fail(err, LL_ERR_SHAPE, "%s: tensor 'score.weight' is %s %s, the classifier needs F32/F16/BF16 %s",
                     w->file, w->dtype_name, got, want);
    } else if (c->head_b && (!b || b->ndim != 1 || b->shape[0] != K || !ll_dtype_is_plain_float(b->dtype))) {
        rc = ll_fail(err, LL_ERR_SHAPE, "%s: tensor 'score.bias' is missing or not [%d]", path, K);
    } else if (!c->head_b && b) {
        rc = ll_fail(err, LL_ERR_SHAPE, "%s: has 'score.bias', but the classifier has no head bias", path);
    } else {
        ll_dequantize(w->dtype, w->data, c->head_w, (size_t)w->n_elems);
        if (b) ll_dequantize(b->dtype, b->data, c->head_b, (size_t)b->n_elems);
        size_t bad = ll_first_nonfinite(c->head_w, (size_t)w->n_elems);
        if (bad < (size_t)w->n_elems)
            rc = ll_fail(err, LL_ERR_FORMAT, "%s: tensor 'score.weight' holds a non-finite value at element %zu: the "
                         "file is corrupt", w->file, bad);
        else if (b && (bad = ll_first_nonfinite(c->head_b, (size_t)b->n_elems)) < (size_t)b->n_elems)
            rc = ll_fail(err, LL_ERR_FORMAT, "%s: tensor 'score.bias' holds a non-finite value at element %zu: the "
                         "file is corrupt", b->file, bad);
    }
    ll_checkpoint_close(ck);
    return rc;
}

/* ---- a merged folder as a classifier -------------------------------------------- */

/* config.json's first architecture, when it is a classifier: 1 sequence, 2 token, 0 other */
static int merged_kind(const cJSON *cfg) {
    const cJSON *a = jget(cfg, "architectures");
    const cJSON *first = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, 0) : NULL;
    if (!cJSON_IsString(first)) return 0;
    const char *s = first->valuestring;
    const size_t n = strlen(s), ns = strlen("ForSequenceClassification"), nt = strlen("ForTokenClassification");
    if (n > ns && !strcmp(s + n - ns, "ForSequenceClassification")) return 1;
    if (n > nt && !strcmp(s + n - nt, "ForTokenClassification")) return 2;
    return 0;
}

int ll_merged_is_classifier(const char *path) {
    char *cfg_path = path_join(path, "config.json");
    FILE *probe = cfg_path ? fopen(cfg_path, "rb") : NULL;
    int kind = 0;
    if (probe) {
        fclose(probe);
        cJSON *j = NULL;
        ll_error e = {0};
        if (!read_json(cfg_path, &j, &e)) kind = merged_kind(j);
        cJSON_Delete(j);
    }
    free(cfg_path);
    return kind != 0;
}

int ll_merged_load(const char *dir, ll_model *base, ll_classifier **out, ll_adapter_info *info, ll_error *err) {
    *out = NULL;
    char *cfg_path = path_join(dir, "config.json");
    if (!cfg_path) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    cJSON *j = NULL;
    char **names = NULL;
    ll_classifier *c = NULL;
    ll_checkpoint *ck = NULL;
    int K = 0, rc = read_json(cfg_path, &j, err);
    if (rc) goto done;
    const int kind = merged_kind(j);
    if (!kind) {
        rc = ll_fail(err, LL_ERR_CONFIG, "%s: 'architectures' names no *ForSequenceClassification or "
                     "*ForTokenClassification model", cfg_path);
        goto done;
    }
    const cJSON *i2l = jget(j, "id2label");
    K = cJSON_IsObject(i2l) ? cJSON_GetArraySize(i2l) : 0;
    if (K < 1) {
        rc = ll_fail(err, LL_ERR_CONFIG, "%s: a classifier needs 'id2label' with at least one label", cfg_path);
        goto done;
    }
    const ll_config *p = ll_model_config(base);
    ll_classifier_config cc = {.pool = LL_POOL_LAST, .bidirectional_from = ll_config_default_bidirectional_from(p)};
    if ((rc = parse_label_map(j, cfg_path, K, &names, &cc, err))) goto done;
    if (cc.bidirectional_from > p->n_layers) {
        rc = ll_fail(err, LL_ERR_CONFIG, "%s: lsllama.bidirectional_from %d exceeds the model's %d layers", cfg_path,
                     cc.bidirectional_from, p->n_layers);
        goto done;
    }
    if (p->use_bidirectional_attention && cc.bidirectional_from > 0) {
        rc = ll_fail(err, LL_ERR_CONFIG, "%s: lsllama.bidirectional_from is %d (causal attention below that layer), but "
                     "use_bidirectional_attention is true (every layer bidirectional, as transformers computes this "
                     "folder): the file contradicts itself; set one of the two", cfg_path, cc.bidirectional_from);
        goto done;
    }
    const ll_arch *base_arch[2] = {base->arch, NULL}; /* a folder of the base's architecture, whatever its row */
    if ((rc = ll_checkpoint_open_archs(&ck, dir, base_arch, err))) goto done;
    cc.token_task = kind == 2;
    if (cc.token_task) cc.multi_label = 0, cc.pool = LL_POOL_LAST;
    cc.n_labels = K;
    cc.head_bias = ll_checkpoint_find(ck, "score.bias") != NULL;
    if ((rc = ll_classifier_create(&c, base, &cc, 0, err)) || (rc = ll_classifier_load_head(c, dir, err))) {
        ll_fail_prefix(err, "%s: ", dir);
        goto done;
    }
    if (info) {
        memset(info, 0, sizeof *info);
        snprintf(info->task_type, sizeof info->task_type, "%s", cc.token_task ? "TOKEN_CLS" : "SEQ_CLS");
        info->n_labels = K;
        info->id2label = names, names = NULL;
        info->has_label_map = 1;
    }
    *out = c, c = NULL;
done:
    ll_checkpoint_close(ck);
    ll_classifier_free(c);
    free_names(names, K);
    cJSON_Delete(j);
    free(cfg_path);
    return rc;
}
