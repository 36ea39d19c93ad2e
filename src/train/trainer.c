#include "train/trainer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/rng.h"
#include "io/atomic_dir.h"
#include "io/atomic_file.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "model/loss.h"
#include "train/adapter.h"
#include "train/dist.h"
#include "train/optim.h"
#include "train/run_dir.h"

void ll_train_options_default(ll_train_options *o) {
    memset(o, 0, sizeof *o);
    o->epochs = 1;
    o->lr = 1e-4f;
    o->weight_decay = 0.01f;
    o->warmup_ratio = 0.06f;
    o->max_grad_norm = 1.0f;
    o->beta1 = 0.9f, o->beta2 = 0.999f, o->adam_eps = 1e-8f;
    o->grad_accum = 1;
    o->batch_tokens = 2048;
    o->seed = 42;
    o->metric = LL_METRIC_TASK_DEFAULT;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- evaluation ------------------------------------------------------------ */

/* The first of n sequences (rows of K logits; token tasks: tokens) with a
 * non-finite logit, or -1. */
static long first_nonfinite_row(const float *logits, size_t n, int K) {
    for (size_t r = 0; r < n; r++)
        for (int k = 0; k < K; k++)
            if (!isfinite(logits[r * (size_t)K + k])) return (long)r;
    return -1;
}

/* W > 1: this rank's share of the plan's batches runs forward and the logits
 * of all shares are gathered, so that every rank holds all of them: *all
 * [rows, K] with batch i's rows from (*row_off)[i]. The scoring that follows
 * reads them in batch order exactly as W = 1 reads each batch's logits as it
 * runs (so the figures are the same bytes at every W). W = 1: nothing. */
static int gather_logits(ll_classifier *c, const ll_dataset *ds, const ll_batch_plan *plan, ll_batch_buf *buf,
                         const ll_dist *dist, const ll_eval_progress *progress, float **all, size_t **row_off,
                         ll_error *err) {
    *all = NULL, *row_off = NULL;
    const int W = ll_dist_size(dist), me = ll_dist_rank(dist);
    if (W == 1) return LL_OK;
    const size_t K = (size_t)c->cfg.n_labels, nb = plan->n_batches, per = (nb + (size_t)W - 1) / (size_t)W;
    size_t *off = malloc((nb + 1) * sizeof *off), *rank_off = malloc(((size_t)W + 1) * sizeof *rank_off);
    if (!off || !rank_off) {
        free(off), free(rank_off);
        return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    }
    off[0] = 0;
    for (size_t i = 0; i < nb; i++) { /* a batch's logit rows: its sequences, or a token task's tokens */
        size_t rows = (size_t)(plan->bounds[i + 1] - plan->bounds[i]);
        if (c->cfg.token_task) {
            rows = 0;
            for (int32_t q = plan->bounds[i]; q < plan->bounds[i + 1]; q++) rows += (size_t)ds->ex[plan->order[q]].n_tok;
        }
        off[i + 1] = off[i] + rows;
    }
    for (int r = 0; r <= W; r++) {
        size_t lo, hi;
        ll_dist_block(nb, per, r < W ? r : W - 1, &lo, &hi);
        rank_off[r] = (r < W ? off[lo] : off[hi]) * K;
    }
    float *z = malloc((off[nb] ? off[nb] : 1) * K * sizeof *z);
    int rc = z ? LL_OK : ll_fail(err, LL_ERR_NOMEM, "out of memory for %zu x %zu dev logits", off[nb], K);
    size_t lo, hi, done_ex = 0;
    ll_dist_block(nb, per, me, &lo, &hi);
    for (size_t i = lo; !rc && i < hi; i++) {
        if ((rc = ll_batch_fill(buf, ds, plan, i, err))) break;
        if ((rc = ll_classifier_forward(c, &buf->batch, 0, 0, NULL, err))) break;
        memcpy(z + off[i] * K, c->logits, (off[i + 1] - off[i]) * K * sizeof *z);
        done_ex += (size_t)buf->batch.n_seqs;
        if (progress && progress->fn) progress->fn(progress->ctx, done_ex, ds->n);
    }
    /* every rank learns whether all shares ran before the gather (a failed rank would leave the others waiting) */
    int bad_rank;
    const int agreed = ll_dist_agree(dist, rc, &bad_rank);
    if (!rc && agreed) rc = ll_fail(err, agreed, "%s: evaluation failed on rank %d", ds->path, bad_rank);
    if (!rc) rc = ll_dist_allgather_floats(dist, z, rank_off, err);
    free(rank_off);
    if (rc) {
        free(z), free(off);
        return rc;
    }
    *all = z, *row_off = off;
    return LL_OK;
}

static int evaluate_seq(ll_classifier *c, const ll_dataset *ds, size_t batch_tokens, ll_class_metrics *m,
                        double *mean_loss, const ll_eval_progress *progress, const ll_dist *dist, ll_error *err);

int ll_evaluate(ll_classifier *c, const ll_dataset *ds, size_t batch_tokens, ll_class_metrics *m, double *mean_loss,
                ll_error *err) {
    return evaluate_seq(c, ds, batch_tokens, m, mean_loss, NULL, NULL, err);
}

int ll_evaluate_progress(ll_classifier *c, const ll_dataset *ds, size_t batch_tokens, ll_class_metrics *m,
                         double *mean_loss, const ll_eval_progress *progress, ll_error *err) {
    return evaluate_seq(c, ds, batch_tokens, m, mean_loss, progress, NULL, err);
}

static int evaluate_seq(ll_classifier *c, const ll_dataset *ds, size_t batch_tokens, ll_class_metrics *m,
                        double *mean_loss, const ll_eval_progress *progress, const ll_dist *dist, ll_error *err) {
    /* without labels every example would be skipped and the figures be 0 */
    if (!ds->mapped) return ll_fail(err, LL_ERR_ARG, "%s: the data has no labels to evaluate against", ds->path);
    ll_batching_options bo = {.max_batch_tokens = batch_tokens, .shuffle = 0};
    ll_batch_plan plan = {0};
    ll_batch_buf buf = {0};
    int rc = ll_batch_plan_make(&plan, ds, &bo, err);
    if (!rc) rc = ll_batch_buf_reserve(&buf, plan.max_tokens, plan.max_seqs, c->cfg.n_labels, err);
    const int K = c->cfg.n_labels;
    double loss = 0;
    size_t n = 0, done_ex = 0;
    int *pred01 = c->cfg.multi_label ? malloc((size_t)K * sizeof *pred01) : NULL;
    if (c->cfg.multi_label && !pred01) rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
    if (m && !!m->multi_label != !!c->cfg.multi_label && !rc)
        rc = ll_fail(err, LL_ERR_ARG, "metrics and classifier disagree on multi-label");
    if (m) ll_metrics_reset(m);
    float *all = NULL;
    size_t *row_off = NULL;
    if (!rc) rc = gather_logits(c, ds, &plan, &buf, dist, progress, &all, &row_off, err);
    for (size_t i = 0; !rc && i < plan.n_batches; i++) {
        if ((rc = ll_batch_fill(&buf, ds, &plan, i, err))) break;
        if (!all && (rc = ll_classifier_forward(c, &buf.batch, 0, 0, NULL, err))) break;
        const float *logits = all ? all + row_off[i] * (size_t)K : c->logits;
        const long bad = first_nonfinite_row(logits, (size_t)buf.batch.n_seqs, K);
        if (bad >= 0) {
            rc = ll_fail(err, LL_ERR_FORMAT, "%s:%d: non-finite logits (model or adapter weights corrupt?)", ds->path,
                         ds->ex[buf.example_ids[bad]].line);
            break;
        }
        done_ex += (size_t)buf.batch.n_seqs;
        if (!all && progress && progress->fn) progress->fn(progress->ctx, done_ex, ds->n);
        const size_t rows = (size_t)buf.batch.n_seqs;
        if (c->cfg.multi_label) { /* BCE (mean over labels) and sigmoid > 0.5, i.e. logit > 0 */
            for (size_t s = 0; s < rows && buf.targets; s++, n++) {
                const float *z = logits + s * K, *y = buf.targets + s * K;
                loss += ll_bce_logits_row_mean(z, y, (size_t)K);
                ll_multilabel_predict(pred01, z, (size_t)K);
                if (m) ll_metrics_add_multi(m, y, pred01);
            }
            continue;
        }
        /* the mean runs over every example (an unlabelled one, -1, adds 0) */
        if (buf.labels) ll_crossentropy_forward(&loss, logits, buf.labels, rows, (size_t)K);
        n += rows;
        for (size_t s = 0; s < rows && buf.labels && m; s++)
            if (buf.labels[s] >= 0) ll_metrics_add(m, buf.labels[s], (int)ll_argmax_row(logits + s * K, (size_t)K));
    }
    free(all);
    free(row_off);
    free(pred01);
    if (m) ll_metrics_finish(m);
    if (mean_loss) *mean_loss = n ? loss / (double)n : 0;
    ll_batch_plan_free(&plan);
    ll_batch_buf_free(&buf);
    return rc;
}

static int evaluate_tokens(ll_classifier *c, const ll_dataset *ds, const ll_labelmap *map, size_t batch_tokens,
                           ll_ner_report *rep, double *mean_loss, int32_t *pred, float *score, ll_token_probs *tp,
                           const ll_eval_progress *progress, const ll_dist *dist, ll_error *err);

int ll_evaluate_tokens(ll_classifier *c, const ll_dataset *ds, const ll_labelmap *map, size_t batch_tokens,
                       ll_ner_report *rep, double *mean_loss, int32_t *pred, float *score, ll_error *err) {
    return evaluate_tokens(c, ds, map, batch_tokens, rep, mean_loss, pred, score, NULL, NULL, NULL, err);
}

int ll_evaluate_tokens_progress(ll_classifier *c, const ll_dataset *ds, const ll_labelmap *map, size_t batch_tokens,
                                ll_ner_report *rep, double *mean_loss, int32_t *pred, float *score, ll_token_probs *tp,
                                const ll_eval_progress *progress, ll_error *err) {
    return evaluate_tokens(c, ds, map, batch_tokens, rep, mean_loss, pred, score, tp, progress, NULL, err);
}

static int evaluate_tokens(ll_classifier *c, const ll_dataset *ds, const ll_labelmap *map, size_t batch_tokens,
                           ll_ner_report *rep, double *mean_loss, int32_t *pred, float *score, ll_token_probs *tp,
                           const ll_eval_progress *progress, const ll_dist *dist, ll_error *err) {
    if (!ds->token_task || !c->cfg.token_task)
        return ll_fail(err, LL_ERR_ARG, "%s: token evaluation needs a token dataset and a token classifier", ds->path);
    if (map->n != c->cfg.n_labels)
        return ll_fail(err, LL_ERR_SHAPE, "%s: %d tags in the label map, the classifier has %d", ds->path, map->n,
                       c->cfg.n_labels);
    /* a report needs tags (prediction, rep == NULL, runs on untagged words) */
    if (rep && !ds->mapped) return ll_fail(err, LL_ERR_ARG, "%s: the data has no tags to evaluate against", ds->path);
    ll_batching_options bo = {.max_batch_tokens = batch_tokens, .shuffle = 0};
    ll_batch_plan plan = {0};
    ll_batch_buf buf = {0};
    const int K = c->cfg.n_labels;
    int32_t *own_pred = pred ? NULL : malloc((ds->n_words + 1) * sizeof *own_pred);
    float *own_score = score ? NULL : malloc((ds->n_words + 1) * sizeof *own_score);
    int32_t *gold = NULL, *sent_len = NULL;
    const char **names = NULL; /* map->names + "O" when words without tokens need an "O" the map lacks */
    if (!pred) pred = own_pred;
    if (!score) score = own_score;
    int rc = !pred || !score ? ll_fail(err, LL_ERR_NOMEM, "out of memory") : LL_OK;
    if (!rc) rc = ll_batch_plan_make(&plan, ds, &bo, err);
    if (!rc) rc = ll_batch_buf_reserve(&buf, plan.max_tokens, plan.max_seqs, K, err);
    double loss = 0;
    size_t n_lab = 0, done_ex = 0;
    float *all = NULL;
    size_t *row_off = NULL;
    if (!rc) rc = gather_logits(c, ds, &plan, &buf, dist, progress, &all, &row_off, err);
    for (size_t i = 0; !rc && i < plan.n_batches; i++) {
        if ((rc = ll_batch_fill(&buf, ds, &plan, i, err))) break;
        if (!all && (rc = ll_classifier_forward(c, &buf.batch, 0, 0, NULL, err))) break;
        const float *logits = all ? all + row_off[i] * (size_t)K : c->logits;
        const long bad = first_nonfinite_row(logits, buf.n_tokens, K);
        if (bad >= 0) {
            int s = 0; /* the sequence of the bad token */
            while (s + 1 < buf.batch.n_seqs && buf.batch.seq_start[s + 1] <= bad) s++;
            rc = ll_fail(err, LL_ERR_FORMAT, "%s:%d: non-finite logits (model or adapter weights corrupt?)", ds->path,
                         ds->sent[ds->ex[buf.example_ids[s]].sent].line);
            break;
        }
        done_ex += (size_t)buf.batch.n_seqs;
        if (!all && progress && progress->fn) progress->fn(progress->ctx, done_ex, ds->n);
        if ((rc = ll_token_collect_batch(ds, &buf, logits, map, pred, score, err))) break;
        if (tp) ll_token_probs_collect_batch(tp, ds, &buf, logits);
        n_lab += ll_crossentropy_forward(&loss, logits, buf.token_labels, buf.n_tokens, (size_t)K);
    }
    free(all);
    free(row_off);
    if (mean_loss) *mean_loss = n_lab ? loss / (double)n_lab : 0;
    if (!rc && rep) {
        gold = malloc((ds->n_words + 1) * sizeof *gold);
        sent_len = malloc((ds->n_sent + 1) * sizeof *sent_len);
        if (!gold || !sent_len) rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
        for (size_t w = 0; !rc && w < ds->n_words; w++) {
            gold[w] = ds->words[w].tag;
            if (gold[w] < 0) rc = ll_fail(err, LL_ERR_ARG, "%s:%d: word without a tag", ds->path, ds->words[w].line);
        }
        for (size_t s2 = 0; !rc && s2 < ds->n_sent; s2++) sent_len[s2] = ds->sent[s2].n_words;
        /* A word with no token is predicted "O": its id, or -1 when the tags have no "O"; then the metrics
         * get an extra name "O" after the map's (id 0 instead would count a predicted entity). */
        int n_names = map->n;
        for (size_t w = 0; !rc && w < ds->n_words; w++)
            if (pred[w] < 0) {
                pred[w] = ds->o_label >= 0 ? ds->o_label : map->n;
                if (ds->o_label < 0) n_names = map->n + 1;
            }
        if (!rc && n_names > map->n) {
            names = malloc((size_t)n_names * sizeof *names);
            if (!names) rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
            else {
                memcpy(names, map->names, (size_t)map->n * sizeof *names);
                names[map->n] = "O";
            }
        }
        if (!rc)
            rc = ll_ner_evaluate(gold, pred, sent_len, ds->n_sent,
                                 names ? names : (const char *const *)map->names, n_names, rep, err);
        for (size_t w = 0; n_names > map->n && w < ds->n_words; w++) /* the caller's pred: -1 again */
            if (pred[w] == map->n) pred[w] = -1;
    }
    free(names);
    free(gold);
    free(sent_len);
    free(own_pred);
    free(own_score);
    ll_batch_plan_free(&plan);
    ll_batch_buf_free(&buf);
    return rc;
}

/* ---- checkpoints ------------------------------------------------------------ */

typedef struct train_state {
    int64_t step, epoch, batch_in_epoch, best_step, evals_since_best, tokens_seen;
    double best_metric;
    uint64_t plan_hash;
} train_state;

static int path_join(char *buf, size_t cap, const char *dir, const char *name, ll_error *err) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--; /* "out/" and "out" name the same files */
    if ((size_t)snprintf(buf, cap, "%.*s/%s", (int)n, dir, name) >= cap)
        return ll_fail(err, LL_ERR_ARG, "%s: path too long", dir);
    return LL_OK;
}

/* ---- what a checkpoint belongs to ------------------------------------------ */

static uint64_t fnv_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

/* Examples, their tokens and labels (mapped ids), and the token labels of a token task. */
static uint64_t dataset_hash(const ll_dataset *ds) {
    uint64_t h = 0xCBF29CE484222325ull;
    h = fnv_bytes(h, &ds->n, sizeof ds->n);
    for (size_t i = 0; i < ds->n; i++) {
        const ll_example *e = &ds->ex[i];
        h = fnv_bytes(h, &e->label, sizeof e->label);
        h = fnv_bytes(h, &e->n_tok, sizeof e->n_tok);
        if (ds->labs && e->n_lab) h = fnv_bytes(h, ds->labs + e->lab_off, e->n_lab * sizeof *ds->labs);
    }
    if (ds->tokens) h = fnv_bytes(h, ds->tokens, ds->tokens_len * sizeof *ds->tokens);
    if (ds->tok_labels) h = fnv_bytes(h, ds->tok_labels, ds->tokens_len * sizeof *ds->tok_labels);
    return h;
}

static void fnv_float(void *ctx, float v) {
    uint64_t *h = ctx;
    *h = fnv_bytes(*h, &v, sizeof v);
}

/* The base model: its hyper-parameters, its final norm and every 1024th
 * weight value (as f32, in the layout of older versions: the same for a
 * model loaded as stored or as f32, and across versions). */
static uint64_t model_hash(const ll_model *m) {
    uint64_t h = fnv_bytes(0xCBF29CE484222325ull, &m->cfg, sizeof m->cfg);
    h = fnv_bytes(h, m->final_norm, (size_t)m->cfg.dim * sizeof(float));
    ll_model_visit_samples(m, 1024, fnv_float, &h);
    return h;
}

/* Everything that decides a run's numbers, as "name": "value" strings: a
 * resume must find each one unchanged, or it would continue another run.
 * Options that change only memory or speed (recompute) are not part of it. */
static cJSON *run_identity(const ll_classifier *c, const ll_dataset *train, const ll_dataset *dev,
                           const ll_train_options *o, int64_t total_steps) {
    const ll_classifier_config *cc = &c->cfg;
    cJSON *j = cJSON_CreateObject();
    char v[64];
#define ADD(name, fmt, val) (snprintf(v, sizeof v, fmt, val), cJSON_AddStringToObject(j, name, v))
    ADD("base_model", "%016llx", (unsigned long long)model_hash(c->base));
    ADD("train_data", "%016llx", (unsigned long long)dataset_hash(train));
    if (dev) ADD("dev_data", "%016llx", (unsigned long long)dataset_hash(dev));
    else cJSON_AddStringToObject(j, "dev_data", "none");
    uint64_t lh = 0xCBF29CE484222325ull;
    for (int k = 0; o->label_names && k < cc->n_labels; k++)
        lh = fnv_bytes(lh, o->label_names[k], strlen(o->label_names[k]) + 1);
    ADD("label_names", "%016llx", (unsigned long long)lh);
    ADD("n_labels", "%d", cc->n_labels);
    ADD("task", "%s", cc->token_task ? "token" : cc->multi_label ? "multi-label" : "sequence");
    ADD("pool", "%d", (int)cc->pool);
    ADD("bidirectional_from", "%d", cc->bidirectional_from);
    ADD("head_bias", "%d", cc->head_bias);
    ADD("head_dropout", "%.9g", cc->head_dropout);
    char full[160] = "";
    for (int t = 0; t < LL_LORA_N_TARGETS; t++)
        if (cc->full_targets & (1u << t))
            snprintf(full + strlen(full), sizeof full - strlen(full), "%s%s", full[0] ? "," : "", ll_lora_target_names[t]);
    if (cc->full_targets & LL_FULL_NORMS) snprintf(full + strlen(full), sizeof full - strlen(full), "%snorms", full[0] ? "," : "");
    if (cc->full_targets & LL_FULL_EMBEDDINGS)
        snprintf(full + strlen(full), sizeof full - strlen(full), "%sembeddings", full[0] ? "," : "");
    /* before the LoRA fields: a resume that forgot --full-targets is told so, not that lora_r changed */
    ADD("full_targets", "%s", full[0] ? full : "none (LoRA)");
    ADD("lora_r", "%d", cc->lora_r);
    ADD("lora_alpha", "%.9g", cc->lora_alpha);
    ADD("lora_dropout", "%.9g", cc->lora_dropout);
    ADD("lora_targets", "%u", cc->lora_targets);
    ADD("use_rslora", "%d", cc->use_rslora);
    ADD("total_steps", "%lld", (long long)total_steps);
    ADD("lr", "%.9g", o->lr);
    ADD("weight_decay", "%.9g", o->weight_decay);
    ADD("warmup_ratio", "%.9g", o->warmup_ratio);
    ADD("max_grad_norm", "%.9g", o->max_grad_norm);
    ADD("adam_beta1", "%.9g", o->beta1);
    ADD("adam_beta2", "%.9g", o->beta2);
    ADD("adam_epsilon", "%.9g", o->adam_eps);
    ADD("grad_accum", "%d", o->grad_accum);
    ADD("batch_tokens", "%zu", o->batch_tokens);
    ADD("batch_seqs", "%zu", o->batch_seqs);
    ADD("seed", "%llu", (unsigned long long)o->seed);
    ADD("eval_every", "%lld", (long long)o->eval_every);
    ADD("patience", "%d", o->patience);
    ADD("metric", "%d", o->metric);
#undef ADD
    return j;
}

/* The first line of out_dir/log.jsonl when it is the run's start record
 * ({"run": "start", ...}), parsed, with its path in path[cap]; NULL when the
 * log is missing or of an older version. */
static cJSON *run_start_record(const char *out_dir, char *path, size_t cap) {
    if (snprintf(path, cap, "%s/log.jsonl", out_dir) >= (int)cap) return NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *line = NULL;
    size_t lcap = 0;
    const ssize_t n = getline(&line, &lcap, f);
    fclose(f);
    cJSON *j = n > 0 ? cJSON_Parse(line) : NULL;
    free(line);
    const cJSON *run = j ? cJSON_GetObjectItemCaseSensitive(j, "run") : NULL;
    if (!cJSON_IsString(run) || strcmp(run->valuestring, "start")) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

int ll_run_base_precision(const char *out_dir, ll_base_precision *out, ll_error *err) {
    char path[4096];
    cJSON *j = run_start_record(out_dir, path, sizeof path);
    const int rc = j ? ll_base_precision_from_json(cJSON_GetObjectItemCaseSensitive(j, "base_precision"), path,
                                                   "base_precision (line 1)", out, err)
                     : 0;
    cJSON_Delete(j);
    return rc;
}

int ll_run_compute(const char *out_dir, ll_compute *out, ll_error *err) {
    char path[4096];
    cJSON *j = run_start_record(out_dir, path, sizeof path);
    const cJSON *c = j ? cJSON_GetObjectItemCaseSensitive(j, "compute") : NULL;
    int rc = 0; /* older runs recorded none: they ran in f32, the default */
    if (c && cJSON_IsString(c) && ll_compute_parse(c->valuestring, out) == LL_OK) rc = 1;
    else if (c) rc = ll_fail(err, LL_ERR_CONFIG, "%s: line 1: \"compute\" is not one of \"f32\", \"bf16\"", path);
    cJSON_Delete(j);
    return rc;
}

/* Every entry of want equals got's; else an error naming the first that differs. */
static int check_identity(const cJSON *want, const cJSON *got, const char *path, ll_error *err) {
    if (!cJSON_IsObject(got))
        return ll_fail(err, LL_ERR_FORMAT, "%s: 'run' is missing: the checkpoint cannot be matched to this run", path);
    /* keys added after checkpoints were first written, and what an older checkpoint means by lacking one */
    static const char *const later_keys[][2] = {{"full_targets", "none (LoRA)"}};
    for (const cJSON *w = want->child; w; w = w->next) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(got, w->string);
        const char *gv = cJSON_IsString(g) ? g->valuestring : "(missing)";
        for (size_t k = 0; !g && k < sizeof later_keys / sizeof later_keys[0]; k++)
            if (!strcmp(w->string, later_keys[k][0])) gv = later_keys[k][1];
        if (strcmp(gv, w->valuestring))
            return ll_fail(err, LL_ERR_CONFIG, "%s: the run's %s was %s, now %s%s: a resume continues exactly the run "
                           "that wrote the checkpoint (same model, data and options); start again with --overwrite "
                           "to train with these", path, w->string, gv, w->valuestring,
                           !strcmp(w->string, "base_model") ? " (another model file, or the base held in another "
                           "--base-precision than the run's: log.jsonl's first line names it)" : "");
    }
    return LL_OK;
}

/* The checkpoint is one folder committed as a unit (io/atomic_dir.h):
 * state.safetensors (params, adam_m, adam_v and the step they belong to) and
 * state.json (counters, and the byte length of the log and batch files at that
 * step, to which a resume cuts them back). */
#define CHECKPOINT_FORMAT 2

typedef struct run_files {
    FILE *log, *batches;
    const char *log_path, *batches_path;
} run_files;

/* Flush a run file and check every write to it so far. */
static int flush_checked(FILE *fp, const char *path, int sync, ll_error *err) {
    if (!fp) return LL_OK;
    if (ferror(fp) || fflush(fp) != 0 || (sync && fsync(fileno(fp)) != 0))
        return ll_fail(err, LL_ERR_IO, "%s: cannot write: %s", path, strerror(errno ? errno : EIO));
    return LL_OK;
}

static int save_checkpoint(const ll_classifier *c, const ll_adamw *opt, const train_state *st, const run_files *rf,
                           const cJSON *identity, const char *dir, ll_error *err) {
    /* the log and batch lines up to this step are on disk before the state that counts them */
    int rc = flush_checked(rf->log, rf->log_path, 1, err);
    if (!rc) rc = flush_checked(rf->batches, rf->batches_path, 1, err);
    if (rc) return rc;
    const long log_bytes = rf->log ? ftell(rf->log) : 0, batches_bytes = rf->batches ? ftell(rf->batches) : 0;
    if (log_bytes < 0 || batches_bytes < 0) return ll_fail(err, LL_ERR_IO, "%s: cannot tell its length", rf->log_path);
    const int64_t step = st->step;
    ll_st_write_tensor t[4] = {
        {"params", LL_DTYPE_F32, 1, {(int64_t)c->n_params}, c->params, NULL, NULL},
        {"adam_m", LL_DTYPE_F32, 1, {(int64_t)c->n_params}, opt->m, NULL, NULL},
        {"adam_v", LL_DTYPE_F32, 1, {(int64_t)c->n_params}, opt->v, NULL, NULL},
        {"step", LL_DTYPE_I64, 1, {1}, &step, NULL, NULL},
    };
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "format", CHECKPOINT_FORMAT);
    cJSON_AddNumberToObject(j, "step", (double)st->step);
    cJSON_AddNumberToObject(j, "epoch", (double)st->epoch);
    cJSON_AddNumberToObject(j, "batch_in_epoch", (double)st->batch_in_epoch);
    cJSON_AddNumberToObject(j, "adam_t", (double)opt->t);
    cJSON_AddNumberToObject(j, "best_metric", st->best_metric);
    cJSON_AddNumberToObject(j, "best_step", (double)st->best_step);
    cJSON_AddNumberToObject(j, "evals_since_best", (double)st->evals_since_best);
    cJSON_AddNumberToObject(j, "tokens_seen", (double)st->tokens_seen);
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)st->plan_hash);
    cJSON_AddStringToObject(j, "data_order_hash", hash);
    cJSON_AddNumberToObject(j, "n_params", (double)c->n_params);
    cJSON_AddNumberToObject(j, "log_bytes", (double)log_bytes);
    cJSON_AddNumberToObject(j, "batches_bytes", (double)batches_bytes);
    cJSON_AddItemToObject(j, "run", cJSON_Duplicate(identity, 1));
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    ll_atomic_dir d;
    char *path = NULL;
    if (!(rc = ll_atomic_dir_open(&d, dir, err))) {
        if (!(path = ll_atomic_dir_file(&d, "state.safetensors"))) rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
        if (!rc) rc = ll_st_write_file(path, t, 4, NULL, 0, err);
        free(path);
        path = NULL;
        if (!rc && !(path = ll_atomic_dir_file(&d, "state.json"))) rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
        if (!rc) rc = ll_atomic_write(path, text, strlen(text), err);
        free(path);
        if (!rc) rc = ll_atomic_dir_commit(&d, err);
        else ll_atomic_dir_abort(&d);
    }
    free(text);
    return rc;
}

enum { K_STEP, K_EPOCH, K_BATCH, K_ADAM_T, K_BEST, K_BEST_STEP, K_SINCE_BEST, K_TOKENS, K_NPARAMS, K_LOG, K_BATCHES,
       K_FORMAT, N_KEYS };

static int load_checkpoint(ll_classifier *c, ll_adamw *opt, train_state *st, int64_t *log_bytes,
                           int64_t *batches_bytes, const cJSON *identity, const char *dir, ll_error *err) {
    char path[4096], *text = NULL;
    int rc = path_join(path, sizeof path, dir, "state.json", err);
    if (!rc) rc = ll_read_text_file(path, &text, NULL, err);
    if (rc) return rc;
    cJSON *j = cJSON_ParseWithOpts(text, NULL, 1); /* nothing may follow the object */
    free(text);
    if (!j) return ll_fail(err, LL_ERR_FORMAT, "%s: not valid JSON: the checkpoint is damaged", path);
    const char *keys[N_KEYS] = {"step", "epoch", "batch_in_epoch", "adam_t", "best_metric", "best_step",
                                "evals_since_best", "tokens_seen", "n_params", "log_bytes", "batches_bytes", "format"};
    double v[N_KEYS];
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    if (!cJSON_IsNumber(fmt) || fmt->valuedouble != CHECKPOINT_FORMAT) {
        cJSON_Delete(j);
        return ll_fail(err, LL_ERR_FORMAT, "%s: checkpoint written by an older lsllama, whose two files could be "
                       "left from different steps by a kill: it cannot be verified; start again with --overwrite",
                       path);
    }
    for (int i = 0; i < N_KEYS; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) ||
            (i != K_BEST && (x->valuedouble < (i == K_BEST_STEP ? -1 : 0) || x->valuedouble > 9e15))) {
            cJSON_Delete(j);
            return ll_fail(err, LL_ERR_FORMAT, "%s: '%s' is missing or out of range", path, keys[i]);
        }
        v[i] = x->valuedouble;
    }
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "data_order_hash");
    st->plan_hash = cJSON_IsString(h) ? strtoull(h->valuestring, NULL, 16) : 0;
    rc = check_identity(identity, cJSON_GetObjectItemCaseSensitive(j, "run"), path, err);
    cJSON_Delete(j);
    if (rc) return rc;
    if ((size_t)v[K_NPARAMS] != c->n_params)
        return ll_fail(err, LL_ERR_SHAPE, "%s: checkpoint holds %.0f parameters, the classifier %zu (other options?)",
                       path, v[K_NPARAMS], c->n_params);
    st->step = (int64_t)v[K_STEP], st->epoch = (int64_t)v[K_EPOCH], st->batch_in_epoch = (int64_t)v[K_BATCH];
    opt->t = (int64_t)v[K_ADAM_T];
    st->best_metric = v[K_BEST], st->best_step = (int64_t)v[K_BEST_STEP];
    st->evals_since_best = (int64_t)v[K_SINCE_BEST];
    st->tokens_seen = (int64_t)v[K_TOKENS];
    *log_bytes = (int64_t)v[K_LOG], *batches_bytes = (int64_t)v[K_BATCHES];
    ll_st_file *f;
    if ((rc = path_join(path, sizeof path, dir, "state.safetensors", err)) || (rc = ll_st_open(&f, path, err))) return rc;
    const char *names[3] = {"params", "adam_m", "adam_v"};
    float *dst[3] = {c->params, opt->m, opt->v};
    for (int i = 0; i < 3 && !rc; i++) {
        const ll_st_tensor *t = ll_st_find(f, names[i]);
        if (!t || t->dtype != LL_DTYPE_F32 || t->n_elems != c->n_params)
            rc = ll_fail(err, LL_ERR_SHAPE, "%s: tensor '%s' missing or not F32 [%zu]", path, names[i], c->n_params);
        else
            memcpy(dst[i], t->data, c->n_params * sizeof(float));
    }
    const ll_st_tensor *ts = rc ? NULL : ll_st_find(f, "step");
    int64_t tensor_step = -1;
    if (ts && ts->dtype == LL_DTYPE_I64 && ts->n_elems == 1) memcpy(&tensor_step, ts->data, sizeof tensor_step);
    if (!rc && tensor_step != st->step)
        rc = ll_fail(err, LL_ERR_FORMAT, "%s: holds the state of step %lld, state.json step %lld: the checkpoint is "
                     "inconsistent; not resuming", path, (long long)tensor_step, (long long)st->step);
    for (size_t i = 0; !rc && i < c->n_params; i++)
        if (!isfinite(c->params[i]) || !isfinite(opt->m[i]) || !isfinite(opt->v[i]))
            rc = ll_fail(err, LL_ERR_FORMAT, "%s: parameter %zu or its AdamW moments are not finite: the checkpoint "
                         "is damaged", path, i);
    ll_st_close(f);
    return rc;
}

/* Open a run file for appending after cutting it back to the length the
 * checkpoint counted (a kill may have left lines of later steps). */
static FILE *open_resumed(const char *path, int64_t bytes, ll_error *err) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        ll_fail(err, LL_ERR_IO, "%s: cannot resume it: %s", path, strerror(errno));
        return NULL;
    }
    if ((int64_t)sb.st_size < bytes) {
        ll_fail(err, LL_ERR_FORMAT, "%s: holds %lld bytes, the checkpoint counted %lld: it was changed since; not "
                "resuming", path, (long long)sb.st_size, (long long)bytes);
        return NULL;
    }
    if (truncate(path, (off_t)bytes) != 0) {
        ll_fail(err, LL_ERR_IO, "%s: cannot cut it back to the checkpoint's %lld bytes: %s", path, (long long)bytes,
                strerror(errno));
        return NULL;
    }
    FILE *fp = fopen(path, "a");
    if (!fp) ll_fail(err, LL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    return fp;
}

/* ---- the loop ---------------------------------------------------------------- */

static double metric_value(const ll_class_metrics *m, int which) {
    return which == LL_METRIC_MACRO_F1 ? m->macro_f1 : m->accuracy;
}

static double ner_metric_value(const ll_ner_report *r, int which) {
    return which == LL_METRIC_TOKEN_ACCURACY ? r->token_accuracy : r->micro_f1;
}

/* out_dir/name: a PEFT adapter, or with full fine-tuning the whole model as a
 * Hugging Face folder (f32 weights, the head, the tokenizer when given; a
 * setting transformers would compute otherwise is recorded in its README.md,
 * and lsllama reads the folder back exactly). */
static int save_adapter(const ll_classifier *c, const ll_train_options *o, const char *name, ll_error *err) {
    char dir[4096];
    int rc = path_join(dir, sizeof dir, o->out_dir, name, err);
    if (rc) return rc;
    if (c->cfg.full_targets) {
        ll_merge_options mo = ll_merge_options_default();
        mo.dtype = LL_MERGE_F32;
        mo.id2label = o->label_names;
        mo.tokenizer = o->tokenizer;
        mo.tokenizer_source = o->tokenizer_source;
        mo.allow_inexact = 1;
        return ll_merge_save(c, dir, &mo, err);
    }
    ll_adapter_meta meta = {o->base_model_name, o->label_names, c->cfg.token_task ? "TOKEN_CLS" : "SEQ_CLS"};
    return ll_adapter_save(c, dir, &meta, err);
}

/* Every option in its range, named with its value when it is not. */
static int check_options(const ll_train_options *o, const ll_classifier *c, ll_error *err) {
#define BAD(cond, ...) \
    if (cond) return ll_fail(err, LL_ERR_ARG, "training option " __VA_ARGS__)
    BAD(o->epochs < 1, "epochs must be at least 1, got %lld", (long long)o->epochs);
    BAD(o->max_steps < 0, "max_steps must be >= 0, got %lld", (long long)o->max_steps);
    BAD(o->grad_accum < 1, "grad_accum must be at least 1, got %lld", (long long)o->grad_accum);
    BAD(o->batch_tokens < 1, "batch_tokens must be at least 1, got %lld", (long long)o->batch_tokens);
    BAD(!(o->lr > 0) || !isfinite(o->lr), "lr must be a positive number, got %g", o->lr);
    BAD(!(o->warmup_ratio >= 0 && o->warmup_ratio <= 1), "warmup_ratio must be in [0, 1], got %g", o->warmup_ratio);
    BAD(!(o->weight_decay >= 0) || !isfinite(o->weight_decay), "weight_decay must be >= 0, got %g", o->weight_decay);
    BAD(!(o->max_grad_norm >= 0) || !isfinite(o->max_grad_norm), "max_grad_norm must be >= 0 (0: no clipping), got %g",
        o->max_grad_norm);
    BAD(!(o->beta1 >= 0 && o->beta1 < 1), "beta1 must be in [0, 1), got %g", o->beta1);
    BAD(!(o->beta2 >= 0 && o->beta2 < 1), "beta2 must be in [0, 1), got %g", o->beta2);
    BAD(!(o->adam_eps > 0) || !isfinite(o->adam_eps), "adam_eps must be a positive number, got %g", o->adam_eps);
    BAD(o->eval_every < 0, "eval_every must be >= 0, got %lld", (long long)o->eval_every);
    BAD(o->checkpoint_every < 0, "checkpoint_every must be >= 0, got %lld", (long long)o->checkpoint_every);
    BAD(o->patience < 0, "patience must be >= 0, got %d", o->patience);
    const int token_metric = o->metric == LL_METRIC_ENTITY_F1 || o->metric == LL_METRIC_TOKEN_ACCURACY;
    BAD(o->metric < LL_METRIC_ACCURACY || o->metric > LL_METRIC_TOKEN_ACCURACY, "metric %d is not an ll_metric",
        o->metric);
    BAD(token_metric != !!c->cfg.token_task, "metric %s is for %s tasks", ll_metric_name((ll_metric)o->metric),
        token_metric ? "token" : "sequence");
#undef BAD
    return LL_OK;
}

/* Batch b's tokens, from the plan (every rank knows them for every batch, whoever runs it). */
static size_t plan_batch_tokens(const ll_batch_plan *plan, const ll_dataset *ds, size_t b) {
    size_t n = 0;
    for (int32_t q = plan->bounds[b]; q < plan->bounds[b + 1]; q++) n += (size_t)ds->ex[plan->order[q]].n_tok;
    return n;
}

/* FNV-1a of the parameters' bytes: equal on every rank unless one drifted. */
static int check_same_params(const ll_classifier *c, const ll_dist *dist, int64_t step, ll_error *err) {
    const int W = ll_dist_size(dist);
    if (W == 1) return LL_OK;
    uint64_t *all = malloc((size_t)W * sizeof *all);
    if (!all) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    const uint64_t h = fnv_bytes(0xcbf29ce484222325ULL, c->params, c->n_params * sizeof(float));
    int rc = ll_dist_allgather_u64(dist, &h, 1, all, err);
    for (int r = 1; !rc && r < W; r++)
        if (all[r] != all[0])
            rc = ll_fail(err, LL_ERR_CONFIG, "step %lld: the parameters of rank %d differ from rank 0's (checksum "
                         "%016llx, rank 0 %016llx): the ranks computed differently (another lsllama build, CPU or "
                         "kernel?)", (long long)step, r, (unsigned long long)all[r], (unsigned long long)all[0]);
    free(all);
    return rc;
}

/* Every rank must train the same run with the same kernels, and take the
 * same path through it (a rank resuming while another starts afresh would
 * wait for the other forever): each item's hash is compared with rank 0's,
 * and the first that differs is named. */
static int check_same_run(const ll_classifier *c, const ll_train_options *o, const cJSON *identity,
                          const ll_dist *dist, ll_error *err) {
    const int W = ll_dist_size(dist), me = ll_dist_rank(dist);
    enum { EXTRA = 3 };
    const int n = cJSON_GetArraySize(identity) + EXTRA;
    const char **names = malloc((size_t)n * sizeof *names);
    uint64_t *mine = malloc((size_t)n * sizeof *mine), *all = malloc((size_t)n * (size_t)W * sizeof *all);
    if (!names || !mine || !all) {
        free(names), free(mine), free(all);
        return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    }
    char kernels[160], flags[2][32];
    const ll_compute compute = ll_model_compute(c->base);
    snprintf(kernels, sizeof kernels, "base %s, %s products on %s, other products on %s",
             ll_base_precision_name(ll_model_base_precision(c->base)), ll_compute_name(compute),
             ll_compute_kernel(compute), ll_gemm_backend());
    snprintf(flags[0], sizeof flags[0], "%d", !!o->resume);
    snprintf(flags[1], sizeof flags[1], "%lld", (long long)o->stop_after_steps);
    const char *extra_names[EXTRA] = {"matrix kernels", "--resume", "--stop-after-steps"};
    const char *extra_values[EXTRA] = {kernels, flags[0], flags[1]};
    int i = 0;
    for (const cJSON *it = identity->child; it; it = it->next, i++) {
        names[i] = it->string;
        const char *v = cJSON_IsString(it) ? it->valuestring : "";
        mine[i] = fnv_bytes(0xcbf29ce484222325ULL, v, strlen(v));
    }
    for (int e = 0; e < EXTRA; e++, i++)
        names[i] = extra_names[e], mine[i] = fnv_bytes(0xcbf29ce484222325ULL, extra_values[e], strlen(extra_values[e]));
    int rc = ll_dist_allgather_u64(dist, mine, (size_t)n, all, err);
    for (int r = 1; !rc && r < W; r++)
        for (int k = 0; !rc && k < n; k++) {
            if (all[(size_t)r * n + k] == all[k]) continue;
            if (k == n - EXTRA)
                rc = ll_fail(err, LL_ERR_CONFIG, "rank %d's matrix kernels differ from rank 0's (rank %d here: %s): "
                             "micro-batch gradients would depend on the rank that computes them; give every rank the "
                             "same lsllama build, --compute, --base-precision and LSLLAMA_GEMM", r, me, kernels);
            else
                rc = ll_fail(err, LL_ERR_CONFIG, "rank %d's %s differs from rank 0's: every rank must be given the same "
                             "model, data files (the same bytes on every host) and options", r, names[k]);
        }
    free(names), free(mine), free(all);
    return rc;
}

int ll_train(ll_classifier *c, ll_dataset *train, ll_dataset *dev, const ll_train_options *o, ll_train_result *res,
             ll_error *err) {
    if (!o->out_dir) return ll_fail(err, LL_ERR_ARG, "training needs an output folder");
    const ll_dist *dist = o->dist;
    const int W = ll_dist_size(dist), me = ll_dist_rank(dist), lead = me == 0;
    if (o->grad_accum >= 1 && o->grad_accum % W) /* below 1: check_options says so */
        return ll_fail(err, LL_ERR_ARG, "--grad-accum %d: the %d processes must divide it (each takes grad-accum / W "
                       "micro-batches of a step)", o->grad_accum, W);
    ll_train_options resolved = *o; /* the task's default metric made concrete for everything below */
    if (resolved.metric == LL_METRIC_TASK_DEFAULT)
        resolved.metric = c->cfg.token_task ? LL_METRIC_ENTITY_F1 : LL_METRIC_ACCURACY;
    o = &resolved;
    int rc = check_options(o, c, err);
    if (rc) return rc;
    if (!train->tokenized || !train->mapped) return ll_fail(err, LL_ERR_ARG, "%s: not tokenized/labelled", train->path);
    if (dev && (!dev->tokenized || !dev->mapped)) return ll_fail(err, LL_ERR_ARG, "%s: not tokenized/labelled", dev->path);
    if (!!train->token_task != !!c->cfg.token_task || (dev && !!dev->token_task != !!c->cfg.token_task))
        return ll_fail(err, LL_ERR_ARG, "%s: the data and the classifier disagree on the task (sequence or token)",
                       train->path);
    if (o->resume && o->overwrite) return ll_fail(err, LL_ERR_ARG, "--resume and --overwrite exclude each other");
    /* the folder's one writer from here on (the caller may have opened it already) */
    ll_run_dir *own_rd = NULL;
    if (!o->run_dir && lead &&
        (rc = ll_run_dir_open(&own_rd, o->out_dir, o->resume ? LL_RUN_RESUME : o->overwrite ? LL_RUN_OVERWRITE : LL_RUN_NEW,
                              err)))
        return rc;
    char path[4096], ckpt_dir[4096];
    ll_adamw opt;
    if ((rc = path_join(ckpt_dir, sizeof ckpt_dir, o->out_dir, "checkpoint", err)) ||
        (rc = path_join(path, sizeof path, o->out_dir, "log.jsonl", err))) {
        ll_run_dir_close(own_rd);
        return rc;
    }
    if (!ll_adamw_init(&opt, c->n_params, o->beta1, o->beta2, o->adam_eps, o->weight_decay)) {
        ll_run_dir_close(own_rd);
        return ll_fail(err, LL_ERR_NOMEM, "out of memory for optimiser state");
    }
    int64_t log_bytes = 0, batches_bytes = 0;
    float *acc = NULL, *mine = NULL; /* the step's gradient sum; this rank's micro-batch gradients */
    train_state st = {.best_metric = -1, .best_step = -1};
    ll_batch_plan plan = {0};
    ll_batch_buf buf = {0};
    ll_class_metrics met = {0};
    FILE *log = NULL, *batches = NULL;
    ll_labelmap *tag_map = NULL; /* token tasks: to collect per-word predictions */
    cJSON *identity = NULL;      /* what the checkpoint belongs to */
    if (!(c->cfg.multi_label ? ll_metrics_init_multi(&met, c->cfg.n_labels) : ll_metrics_init(&met, c->cfg.n_labels))) {
        ll_adamw_free(&opt);
        ll_run_dir_close(own_rd);
        return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    }
    /* Steps per epoch come from the first epoch's plan; every epoch has the
     * same number of batches up to bucketing, so plan them all alike. */
    ll_batching_options bo = {.max_batch_tokens = o->batch_tokens, .max_batch_seqs = o->batch_seqs, .shuffle = 1,
                              .seed = o->seed, .epoch = 0};
    if ((rc = ll_batch_plan_make(&plan, train, &bo, err))) goto done;
    if (c->cfg.token_task && dev) {
        if (!o->label_names) {
            rc = ll_fail(err, LL_ERR_ARG, "token training with a dev set needs the tag names");
            goto done;
        }
        if ((rc = ll_labelmap_from_names(&tag_map, o->label_names, c->cfg.n_labels, err))) goto done;
    }
    const int64_t steps_per_epoch = (int64_t)((plan.n_batches + (size_t)o->grad_accum - 1) / (size_t)o->grad_accum);
    int64_t total = steps_per_epoch * o->epochs;
    if (o->max_steps > 0) total = o->max_steps; /* overrides epochs, as transformers' max_steps */
    const int64_t warmup = (int64_t)ceil(o->warmup_ratio * (double)total);
    if (!(identity = run_identity(c, train, dev, o, total))) {
        rc = ll_fail(err, LL_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (W > 1 && ((rc = check_same_run(c, o, identity, dist, err)) || (rc = check_same_params(c, dist, 0, err))))
        goto done;
    if (o->resume) { /* rank 0 reads the checkpoint (it holds only global state) and sends it to all */
        int bad_rank;
        if (lead) rc = load_checkpoint(c, &opt, &st, &log_bytes, &batches_bytes, identity, ckpt_dir, err);
        const int agreed = ll_dist_agree(dist, rc, &bad_rank);
        if (rc) goto done;
        if (agreed) {
            rc = ll_fail(err, agreed, "%s: rank %d could not resume from it", ckpt_dir, bad_rank);
            goto done;
        }
        if ((rc = ll_dist_bcast(dist, c->params, c->n_params * sizeof(float), err)) ||
            (rc = ll_dist_bcast(dist, opt.m, c->n_params * sizeof(float), err)) ||
            (rc = ll_dist_bcast(dist, opt.v, c->n_params * sizeof(float), err)) ||
            (rc = ll_dist_bcast(dist, &opt.t, sizeof opt.t, err)) || (rc = ll_dist_bcast(dist, &st, sizeof st, err)))
            goto done;
        if (st.epoch != 0) {
            ll_batch_plan_free(&plan);
            bo.epoch = (uint64_t)st.epoch;
            if ((rc = ll_batch_plan_make(&plan, train, &bo, err))) goto done;
        }
        if ((size_t)st.batch_in_epoch > plan.n_batches || st.step > total || st.best_metric > 1 ||
            (st.best_metric < 0 && st.best_metric != -1) || st.best_step > st.step) {
            rc = ll_fail(err, LL_ERR_FORMAT, "%s: its position (step %lld, batch %lld of %zu, best %g at step %lld) "
                         "does not fit this run: the checkpoint is damaged", ckpt_dir, (long long)st.step,
                         (long long)st.batch_in_epoch, plan.n_batches, st.best_metric, (long long)st.best_step);
            goto done;
        }
        if (st.plan_hash && st.plan_hash != plan.hash) {
            rc = ll_fail(err, LL_ERR_CONFIG, "%s: the data order differs from the checkpoint's (other data, seed or "
                                             "batch options?)", ckpt_dir);
            goto done;
        }
    }
    /* Plan every buffer once, for the largest batch of any epoch (bounded by
     * the token budget or the longest example). */
    size_t longest = 0;
    for (size_t i = 0; i < train->n; i++)
        if ((size_t)train->ex[i].n_tok > longest) longest = (size_t)train->ex[i].n_tok;
    const size_t cap_tokens = o->batch_tokens > longest ? o->batch_tokens : longest;
    const size_t cap_seqs = o->batch_seqs ? o->batch_seqs : cap_tokens;
    if ((rc = ll_batch_buf_reserve(&buf, cap_tokens, cap_seqs, c->cfg.n_labels, err))) goto done;
    ll_classifier_set_recompute(c, o->recompute);
    if ((rc = ll_classifier_reserve(c, cap_tokens, cap_seqs, err))) goto done;
    /* Each of this rank's micro-batch gradients with its loss after the P floats (ranks above 0 send them to
     * rank 0, which sums all of a step's in micro-batch order into acc as they come). */
    const size_t P = c->n_params, per = (size_t)(o->grad_accum / W);
    /* Alone with one micro-batch per step, that micro-batch's gradient is the step's: no sum, no copies, no more
     * memory (full fine-tuning: 16 bytes per trained value instead of 20, or 24 with ranks) */
    const int fold = W > 1 || o->grad_accum > 1;
    acc = fold ? malloc(P * sizeof *acc) : c->grads;
    mine = W > 1 ? malloc((lead ? 1 : per) * (P + 1) * sizeof *mine) : NULL;
    if (!acc || (W > 1 && !mine)) {
        rc = ll_fail(err, LL_ERR_NOMEM, "out of memory for %zu gradients", P);
        goto done;
    }
    /* The batch file of a new run is opened before the earlier run is removed: a bad path fails first. */
    if (lead && o->batches_out && !o->resume) {
        struct stat sb;
        if (!o->overwrite && stat(o->batches_out, &sb) == 0 && sb.st_size > 0) {
            rc = ll_fail(err, LL_ERR_ARG, "%s: exists: --dump-batches does not replace a file unless --overwrite is "
                         "given", o->batches_out);
            goto done;
        }
        if (!(batches = fopen(o->batches_out, "w"))) {
            rc = ll_fail(err, LL_ERR_IO, "%s: cannot open: %s", o->batches_out, strerror(errno));
            goto done;
        }
    }
    if (!lead) goto setup_done;
    if ((rc = ll_run_dir_begin(o->run_dir ? o->run_dir : own_rd, err))) goto setup_done;
    if (o->resume) {
        if (!(log = open_resumed(path, log_bytes, err)) ||
            (o->batches_out && !(batches = open_resumed(o->batches_out, batches_bytes, err)))) {
            rc = err ? err->code : LL_ERR_IO;
            goto setup_done;
        }
    } else if (!(log = fopen(path, "w"))) {
        rc = ll_fail(err, LL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto setup_done;
    } else { /* how the base was held and which kernels ran (no "step": plots skip it) */
        const ll_compute compute = ll_model_compute(c->base);
        fprintf(log, "{\"run\": \"start\", \"base_precision\": \"%s\", \"compute\": \"%s\", \"weights_gemm\": \"%s\", "
                "\"gemm\": \"%s\", \"recompute\": %s, \"cpu\": ", ll_base_precision_name(ll_model_base_precision(c->base)),
                ll_compute_name(compute), ll_compute_kernel(compute), ll_gemm_backend(), o->recompute ? "true" : "false");
        cJSON *cpu_item = cJSON_CreateStringReference(ll_cpu_name()); /* the name as a JSON string */
        char *cpu = cpu_item ? cJSON_PrintUnformatted(cpu_item) : NULL;
        fprintf(log, "%s}\n", cpu ? cpu : "\"unknown CPU\"");
        cJSON_free(cpu);
        cJSON_Delete(cpu_item);
    }
    if (batches) { /* two writers of one file would interleave their lines */
        struct stat a, b;
        if (fstat(fileno(log), &a) == 0 && fstat(fileno(batches), &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino) {
            rc = ll_fail(err, LL_ERR_ARG, "%s: --dump-batches names the training log itself", o->batches_out);
            goto setup_done;
        }
    }
setup_done:; /* every rank learns whether rank 0 could start writing the run */
    int bad_rank;
    const int agreed = ll_dist_agree(dist, rc, &bad_rank);
    if (rc) goto done;
    if (agreed) {
        rc = ll_fail(err, agreed, "rank %d could not start the run", bad_rank);
        goto done;
    }
    const run_files rf = {log, batches, path, o->batches_out};
    const double t_start = now_s();
    int64_t tokens_run = 0, steps_run = 0;
    double eval_s = 0; /* evaluation time, left out of the training throughput */
    int stop = 0;
    while (!stop && st.step < total) {
        /* One optimiser step over the next grad_accum micro-batches of the epoch (fewer at its end); rank r
         * computes its block of them; each gradient starts from zero and acc is their sum in micro-batch order,
         * whatever W is. */
        const size_t first = (size_t)st.batch_in_epoch, left = plan.n_batches - first;
        const size_t micro = left < (size_t)o->grad_accum ? left : (size_t)o->grad_accum;
        size_t lo, hi;
        ll_dist_block(micro, per, me, &lo, &hi);
        double loss_sum = 0;
        for (size_t j = 0; batches && j < micro; j++) { /* every micro-batch of the step, whichever rank runs it */
            fprintf(batches, "%lld", (long long)st.step);
            for (int32_t q = plan.bounds[first + j]; q < plan.bounds[first + j + 1]; q++)
                fprintf(batches, " %d", plan.order[q]);
            fputc('\n', batches);
        }
        for (size_t j = lo; j < hi; j++) {
            const size_t b = first + j;
            if ((rc = ll_batch_fill(&buf, train, &plan, b, err))) goto done;
            /* dropout masks: a function of (seed, epoch, batch) only */
            const uint64_t seed = o->seed * LL_SPLITMIX64_GAMMA ^ ((uint64_t)st.epoch << 40) ^ (uint64_t)b;
            float loss;
            memset(c->grads, 0, P * sizeof(float));
            if ((rc = ll_classifier_train_step(c, &buf.batch, c->cfg.token_task ? buf.token_labels : buf.labels,
                                               buf.targets, seed,
                                               1.0f / (float)o->grad_accum, &loss, err)))
                goto done;
            if (!isfinite(loss)) {
                rc = ll_fail(err, LL_ERR_ARG, "step %lld: the training loss is not finite (%s): stopping; the weights, "
                             "the adapter or the learning rate give numbers out of range; nothing from this step is "
                             "saved", (long long)st.step + 1, isnan(loss) ? "nan" : "infinite");
                goto done;
            }
            if (lead) { /* rank 0's block comes first: fold as it runs */
                if (j == 0 && acc != c->grads) memcpy(acc, c->grads, P * sizeof *acc);
                else
                    for (size_t i = 0; i < P; i++) acc[i] += c->grads[i];
                loss_sum += loss;
            } else {
                float *g = mine + (j - lo) * (P + 1);
                memcpy(g, c->grads, P * sizeof *g);
                g[P] = loss;
            }
        }
        if (lead)
            for (size_t j = hi; j < micro; j++) { /* the other ranks' blocks, in micro-batch order */
                if ((rc = ll_dist_recv_floats(dist, mine, P + 1, (int)(j / per), (int)(j % 32768), err))) goto done;
                for (size_t i = 0; i < P; i++) acc[i] += mine[i];
                loss_sum += mine[P];
            }
        else
            for (size_t j = lo; j < hi; j++)
                if ((rc = ll_dist_send_floats(dist, mine + (j - lo) * (P + 1), P + 1, 0, (int)(j % 32768), err)))
                    goto done; /* tags below MPI's least upper bound, 32767; one sender's messages keep their order */
        if ((rc = ll_dist_bcast(dist, acc, P * sizeof *acc, err)) || (rc = ll_dist_bcast(dist, &loss_sum, sizeof loss_sum, err)))
            goto done;
        if (acc != c->grads) memcpy(c->grads, acc, P * sizeof *acc);
        for (size_t j = 0; j < micro; j++) {
            const int64_t n_tok = (int64_t)plan_batch_tokens(&plan, train, first + j);
            tokens_run += n_tok;
            st.tokens_seen += n_tok;
        }
        st.batch_in_epoch = (int64_t)(first + micro);
        const float gnorm = ll_clip_grad_norm(c->grads, c->n_params, o->max_grad_norm);
        if (!isfinite(gnorm)) {
            rc = ll_fail(err, LL_ERR_ARG, "step %lld: the gradient norm is not finite (%s): stopping; nothing from "
                         "this step is saved", (long long)st.step + 1, isnan(gnorm) ? "nan" : "infinite");
            goto done;
        }
        const float lr = ll_lr_linear(st.step, warmup, total, o->lr);
        ll_adamw_step(&opt, c->params, c->grads, lr);
        st.step++, steps_run++;
        const int epoch_end = (size_t)st.batch_in_epoch >= plan.n_batches;
        const double elapsed = now_s() - t_start, train_s = elapsed - eval_s,
                     tps = tokens_run / (train_s > 0 ? train_s : 1);
        if (log)
            fprintf(log, "{\"step\": %lld, \"epoch\": %lld, \"loss\": %.6f, \"lr\": %.6g, \"grad_norm\": %.5f, "
                         "\"tokens_per_s\": %.1f, \"elapsed_s\": %.2f}\n",
                    (long long)st.step, (long long)st.epoch, loss_sum / (double)micro, lr, gnorm, tps, elapsed);
        if (lead && o->progress) {
            const ll_train_event ev = {.kind = LL_TRAIN_STEP, .step = st.step, .total_steps = total,
                                       .epoch = st.epoch, .loss = loss_sum / (double)micro, .tokens_per_s = tps,
                                       .eta_s = steps_run ? elapsed / steps_run * (double)(total - st.step) : 0,
                                       .lr = lr, .grad_norm = gnorm};
            o->progress(o->progress_ctx, &ev);
        }
        if (dev && ((o->eval_every > 0 && st.step % o->eval_every == 0) || epoch_end || st.step == total)) {
            double dev_loss, v;
            int better;
            const double t_eval = now_s();
            if (c->cfg.token_task) {
                ll_ner_report rep = {0};
                if ((rc = evaluate_tokens(c, dev, tag_map, o->batch_tokens, &rep, &dev_loss, NULL, NULL, NULL, NULL, dist, err)))
                    goto done;
                v = ner_metric_value(&rep, o->metric);
                if (!isfinite(dev_loss)) {
                    ll_ner_report_free(&rep);
                    rc = ll_fail(err, LL_ERR_ARG, "step %lld: the dev loss is not finite: stopping", (long long)st.step);
                    goto done;
                }
                better = v > st.best_metric;
                if (log)
                    fprintf(log, "{\"step\": %lld, \"eval\": \"dev\", \"loss\": %.6f, \"f1\": %.6f, \"precision\": %.6f, "
                             "\"recall\": %.6f, \"macro_f1\": %.6f, \"token_accuracy\": %.6f, \"best\": %s}\n",
                        (long long)st.step, dev_loss, rep.micro_f1, rep.micro_p, rep.micro_r,
                        isnan(rep.macro_f1) ? 0.0 : rep.macro_f1, rep.token_accuracy, better ? "true" : "false");
                if (lead && o->progress) {
                    const ll_train_event ev = {.kind = LL_TRAIN_EVAL, .step = st.step, .total_steps = total,
                                               .epoch = st.epoch, .token_task = 1, .dev_loss = dev_loss,
                                               .f1 = rep.micro_f1, .precision = rep.micro_p, .recall = rep.micro_r,
                                               .token_accuracy = rep.token_accuracy, .best = better};
                    o->progress(o->progress_ctx, &ev);
                }
                ll_ner_report_free(&rep);
            } else {
                if ((rc = evaluate_seq(c, dev, o->batch_tokens, &met, &dev_loss, NULL, dist, err))) goto done;
                v = metric_value(&met, o->metric);
                if (!isfinite(dev_loss)) {
                    rc = ll_fail(err, LL_ERR_ARG, "step %lld: the dev loss is not finite: stopping", (long long)st.step);
                    goto done;
                }
                better = v > st.best_metric;
                if (log) {
                    fprintf(log, "{\"step\": %lld, \"eval\": \"dev\", \"loss\": %.6f, \"accuracy\": %.6f, "
                            "\"macro_f1\": %.6f, ", (long long)st.step, dev_loss, met.accuracy, met.macro_f1);
                    if (met.multi_label) fprintf(log, "\"micro_f1\": %.6f, ", met.micro_f1);
                    fprintf(log, "\"best\": %s}\n", better ? "true" : "false");
                }
                if (lead && o->progress) {
                    const ll_train_event ev = {.kind = LL_TRAIN_EVAL, .step = st.step, .total_steps = total,
                                               .epoch = st.epoch, .dev_loss = dev_loss, .accuracy = met.accuracy,
                                               .macro_f1 = met.macro_f1, .best = better};
                    o->progress(o->progress_ctx, &ev);
                }
            }
            eval_s += now_s() - t_eval;
            if (better) {
                st.best_metric = v, st.best_step = st.step, st.evals_since_best = 0;
                if (lead && (rc = save_adapter(c, o, "best", err))) goto done;
            } else if (o->patience > 0 && ++st.evals_since_best >= o->patience) {
                stop = 1;
            }
        }
        if ((rc = flush_checked(log, path, 0, err))) goto done;
        if (epoch_end && st.step < total) {
            st.epoch++;
            st.batch_in_epoch = 0;
            ll_batch_plan_free(&plan);
            bo.epoch = (uint64_t)st.epoch;
            if ((rc = ll_batch_plan_make(&plan, train, &bo, err))) goto done;
        }
        st.plan_hash = plan.hash;
        if (lead && o->checkpoint_every > 0 && st.step % o->checkpoint_every == 0 &&
            (rc = save_checkpoint(c, &opt, &st, &rf, identity, ckpt_dir, err)))
            goto done;
        const int64_t check_every = o->dist_check_every > 0 ? o->dist_check_every : 10;
        if ((st.step % check_every == 0 || st.step == total) && (rc = check_same_params(c, dist, st.step, err)))
            goto done;
        if (o->stop_after_steps > 0 && steps_run >= o->stop_after_steps) goto done; /* as if killed */
        if (o->stop && *o->stop && ll_dist_size(dist) == 1) stop = 1; /* the caller's request, as patience stops */
    }
    if (lead && o->progress) {
        const ll_train_event ev = {.kind = LL_TRAIN_END, .step = st.step, .total_steps = total, .epoch = st.epoch};
        o->progress(o->progress_ctx, &ev);
    }
    if ((rc = check_same_params(c, dist, st.step, err))) goto done;
    if (lead && (rc = save_adapter(c, o, "final", err))) goto done;
    if (lead && o->checkpoint_every > 0 && (rc = save_checkpoint(c, &opt, &st, &rf, identity, ckpt_dir, err)))
        goto done;
    if ((rc = flush_checked(log, path, 1, err)) || (rc = flush_checked(batches, o->batches_out, 1, err))) goto done;
    if (res) {
        res->steps = st.step;
        res->best_metric = st.best_metric;
        res->best_step = st.best_step;
        res->seconds = now_s() - t_start;
        res->train_tokens_per_s = tokens_run / (res->seconds - eval_s > 0 ? res->seconds - eval_s : 1);
    }
done:
    if (log && fclose(log) != 0 && !rc) rc = ll_fail(err, LL_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    if (batches && fclose(batches) != 0 && !rc)
        rc = ll_fail(err, LL_ERR_IO, "%s: cannot write: %s", o->batches_out, strerror(errno));
    ll_run_dir_close(own_rd);
    if (acc != c->grads) free(acc);
    free(mine);
    cJSON_Delete(identity);
    ll_labelmap_free(tag_map);
    ll_metrics_free(&met);
    ll_batch_plan_free(&plan);
    ll_batch_buf_free(&buf);
    ll_adamw_free(&opt);
    return rc;
}
