/* The server's inference worker: takes every waiting job of the kind at the
 * queue's head (first come, first served), packs their sequences into
 * forward batches of at most max_batch_tokens tokens, runs them and hands
 * each job its rows. One worker owns the model: the library's handles are
 * single-threaded, and one batch at a time keeps every core on one product. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_internal.h"

const double serve_batch_bounds[N_BATCH_BUCKETS] = {8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};

/* A sequence of a job, as the worker lays them out. */
typedef struct seq_ref {
    job *j;
    int s;
} seq_ref;

typedef struct scratch {
    int32_t *tokens, *start;
    size_t cap_tokens, cap_seqs;
    float *out;
    size_t cap_out;
    seq_ref *refs;
    size_t cap_refs;
} scratch;

static int grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, nc * size);
    if (!q) return -1;
    *p = q;
    *cap = nc;
    return 0;
}

int serve_fail(ll_error *err, int code, const char *message) {
    if (err) {
        snprintf(err->message, sizeof err->message, "%s", message);
        err->code = code;
    }
    return code;
}

static size_t job_tokens(const job *j) { return j->kind == JOB_NER ? 0 : (size_t)j->start[j->n]; }

/* Takes the jobs of the next batch off the queue (lock held): the head job, and every later job of its kind
 * while their tokens fit in the budget beside it. NER jobs run one at a time. */
static job *take_jobs(job_queue *q) {
    job *first = q->head, *taken = first, *last = first;
    q->head = first->next;
    if (!q->head) q->tail = NULL;
    first->next = NULL;
    int n = 1;
    if (first->kind != JOB_NER) {
        size_t tokens = job_tokens(first);
        job *prev = NULL;
        for (job *j = q->head; j;) {
            job *next = j->next;
            if (j->kind == first->kind && tokens + job_tokens(j) <= q->opt->max_batch_tokens) {
                tokens += job_tokens(j);
                if (prev) prev->next = next;
                else q->head = next;
                if (q->tail == j) q->tail = prev;
                j->next = NULL;
                last->next = j;
                last = j;
                n++;
            } else {
                prev = j;
            }
            j = next;
        }
    }
    atomic_fetch_sub(&q->metrics->queue_size, n);
    return taken;
}

static void count_batch(serve_metrics *mt, size_t tokens) {
    int b = 0;
    while (b < N_BATCH_BUCKETS && (double)tokens > serve_batch_bounds[b]) b++;
    atomic_fetch_add(&mt->batch_bucket[b], 1);
    atomic_fetch_add(&mt->batches, 1);
    atomic_fetch_add(&mt->batch_tokens_sum, (long long)tokens);
}

/* Row width of a job kind's outputs. */
static size_t out_width(const job_queue *q, job_kind kind) {
    return kind == JOB_CLASSIFY ? (size_t)ll_labelmap_size(q->sm->map) : (size_t)ll_model_config(q->sm->m)->dim;
}

/* One forward batch over refs[0..n): the outputs land in each job's rows. */
static int run_batch(job_queue *q, scratch *sc, const seq_ref *refs, int n, job_kind kind, ll_error *err) {
    size_t T = 0;
    if (grow((void **)&sc->start, &sc->cap_seqs, (size_t)n + 1, sizeof *sc->start)) goto nomem;
    for (int i = 0; i < n; i++) {
        const job *j = refs[i].j;
        const size_t len = (size_t)(j->start[refs[i].s + 1] - j->start[refs[i].s]);
        if (grow((void **)&sc->tokens, &sc->cap_tokens, T + len, sizeof *sc->tokens)) goto nomem;
        memcpy(sc->tokens + T, j->tokens + j->start[refs[i].s], len * sizeof *sc->tokens);
        sc->start[i] = (int32_t)T;
        T += len;
    }
    sc->start[n] = (int32_t)T;
    const size_t W = out_width(q, kind), rows = kind == JOB_EMBED_ALL ? T : (size_t)n;
    if (grow((void **)&sc->out, &sc->cap_out, rows * W, sizeof *sc->out)) goto nomem;
    const ll_batch b = {.tokens = sc->tokens, .seq_start = sc->start, .n_seqs = n};
    int rc;
    if (q->sm->c) {
        ll_classifier_outputs o = {.pool = q->opt->pool};
        if (kind == JOB_CLASSIFY) o.logits = sc->out;
        else if (kind == JOB_EMBED) o.pooled = sc->out;
        else o.hidden = sc->out;
        rc = ll_classifier_infer(q->sm->c, &b, &o, err);
    } else {
        const ll_forward_options fo = {.bidirectional_from = q->opt->bidirectional_from};
        ll_forward_outputs o = {.pool = q->opt->pool};
        if (kind == JOB_EMBED) o.pooled = sc->out;
        else o.hidden = sc->out;
        rc = ll_forward(q->sm->m, &b, &fo, &o, err);
    }
    if (rc) return rc;
    for (size_t i = 0; i < rows * W; i++)
        if (!isfinite(sc->out[i]))
            return serve_fail(err, LL_ERR_ARG, "non-finite outputs (model or adapter weights corrupt?)");
    count_batch(q->metrics, T);
    for (int i = 0; i < n; i++) {
        job *j = refs[i].j;
        const int s = refs[i].s;
        if (kind == JOB_EMBED_ALL)
            memcpy(j->out + (size_t)j->start[s] * W, sc->out + (size_t)sc->start[i] * W,
                   (size_t)(j->start[s + 1] - j->start[s]) * W * sizeof(float));
        else
            memcpy(j->out + (size_t)s * W, sc->out + (size_t)i * W, W * sizeof(float));
    }
    return 0;
nomem:
    return serve_fail(err, LL_ERR_NOMEM, "out of memory for a batch");
}

/* NER: one job's sentences through the library's token prediction; every sentence's entities are kept as the
 * job's strategy aggregates them. */
typedef struct ner_ctx {
    job *j;
    const char *const *names;
} ner_ctx;

static int on_sentence(void *ctx, const ll_sentence_prediction *p) {
    ner_ctx *c = ctx;
    job *j = c->j;
    if (ner_aggregate(p, c->names, j->aggregation, &j->ents, &j->n_ents, &j->ents_cap)) return LL_ERR_NOMEM;
    j->ent_first[p->index + 1] = j->n_ents;
    return 0;
}

static void run_ner(job_queue *q, job *j) {
    ll_dataset_info info;
    ll_dataset_get_info(j->ner, &info);
    j->ent_first = calloc(info.n_sentences + 1, sizeof *j->ent_first);
    if (!j->ent_first) {
        j->rc = serve_fail(&j->err, LL_ERR_NOMEM, "out of memory");
        return;
    }
    ner_ctx c = {j, ll_labelmap_names(q->sm->map)};
    j->rc = ll_classifier_predict_tokens(q->sm->c, j->ner, q->sm->map, q->opt->max_batch_tokens, NULL, on_sentence,
                                         &c, &j->err);
    if (j->rc == LL_ERR_NOMEM && !j->err.message[0]) /* on_sentence's status */
        serve_fail(&j->err, LL_ERR_NOMEM, "out of memory for the entities");
}

/* Runs the jobs of one take: their sequences in order, in batches of at most max_batch_tokens tokens (a longer
 * sequence alone). A failed batch fails the jobs it held. */
static void run_jobs(job_queue *q, scratch *sc, job *jobs) {
    if (jobs->kind == JOB_NER) {
        run_ner(q, jobs);
        return;
    }
    size_t n_refs = 0;
    for (job *j = jobs; j; j = j->next) n_refs += (size_t)j->n;
    if (grow((void **)&sc->refs, &sc->cap_refs, n_refs, sizeof *sc->refs)) {
        for (job *j = jobs; j; j = j->next) j->rc = serve_fail(&j->err, LL_ERR_NOMEM, "out of memory");
        return;
    }
    size_t r = 0;
    for (job *j = jobs; j; j = j->next)
        for (int s = 0; s < j->n; s++) sc->refs[r++] = (seq_ref){j, s};
    for (size_t a = 0; a < n_refs;) {
        size_t b = a, tokens = 0;
        while (b < n_refs) {
            const job *j = sc->refs[b].j;
            const size_t len = (size_t)(j->start[sc->refs[b].s + 1] - j->start[sc->refs[b].s]);
            if (b > a && tokens + len > q->opt->max_batch_tokens) break;
            tokens += len;
            b++;
        }
        ll_error err = {0};
        if (run_batch(q, sc, sc->refs + a, (int)(b - a), jobs->kind, &err))
            for (size_t i = a; i < b; i++)
                if (!sc->refs[i].j->rc) sc->refs[i].j->rc = err.code ? err.code : LL_ERR_ARG, sc->refs[i].j->err = err;
        a = b;
    }
}

static void *worker_main(void *arg) {
    job_queue *q = arg;
    omp_set_num_threads(q->opt->threads);
    scratch sc = {0};
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (!q->head && !q->stop) pthread_cond_wait(&q->cv, &q->mu);
        if (!q->head) {
            pthread_mutex_unlock(&q->mu);
            break;
        }
        job *jobs = take_jobs(q);
        pthread_mutex_unlock(&q->mu);
        run_jobs(q, &sc, jobs);
        for (job *j = jobs, *next; j; j = next) {
            next = j->next; /* read before done: the job may be freed from then on */
            j->done(j);
        }
    }
    free(sc.tokens), free(sc.start), free(sc.out), free(sc.refs);
    return NULL;
}

int worker_start(job_queue *q, const serve_model *sm, const serve_options *opt, serve_metrics *metrics) {
    memset(q, 0, sizeof *q);
    q->sm = sm, q->opt = opt, q->metrics = metrics;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    return pthread_create(&q->thread, NULL, worker_main, q);
}

int worker_submit(job_queue *q, job *j) {
    j->next = NULL;
    pthread_mutex_lock(&q->mu);
    if (q->stop) {
        pthread_mutex_unlock(&q->mu);
        return -1;
    }
    atomic_fetch_add(&q->metrics->queue_size, 1);
    if (q->tail) q->tail->next = j;
    else q->head = j;
    q->tail = j;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

void worker_stop(job_queue *q) {
    pthread_mutex_lock(&q->mu);
    q->stop = 1;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
}
