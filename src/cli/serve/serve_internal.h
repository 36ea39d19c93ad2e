/* What the server's request threads (http.c) and its inference worker
 * (worker.c) share: jobs, the queue, the metrics. */
#ifndef LL_SERVE_INTERNAL_H
#define LL_SERVE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "serve.h"

typedef enum job_kind {
    JOB_CLASSIFY,  /* logits [n, K] */
    JOB_EMBED,     /* pooled [n, D] */
    JOB_EMBED_ALL, /* hidden [T, D] */
    JOB_NER,       /* a token dataset through ll_classifier_predict_tokens */
} job_kind;

/* transformers' AggregationStrategy values. */
enum { AGG_NONE, AGG_SIMPLE, AGG_FIRST, AGG_AVERAGE, AGG_MAX };
/* "none", "simple", "first", "average", "max" (any case): the strategy, or -1. */
int ner_strategy_parse(const char *name);

/* One entity of a NER answer: a token ("entity", strategy none) or a group ("entity_group"). */
typedef struct ner_entity {
    char label[64];           /* the tag (none) or the group's type */
    double score;
    int start, end;           /* code points of the input text */
    int byte_start, byte_end; /* bytes of the input text */
    int index;                /* strategy none: the token's position in the text's encoding; else -1 */
    int group;
} ner_entity;

/* Appends the entities of one sentence (*v grows, *n of *cap used) as the pipeline aggregates with strategy;
 * names: the label names. 0, or -1 when out of memory. */
int ner_aggregate(const ll_sentence_prediction *p, const char *const *names, int strategy, ner_entity **v,
                  size_t *n, size_t *cap);

typedef struct job {
    job_kind kind;
    int n;              /* sequences */
    int32_t *tokens;    /* packed ids, start[n] of them */
    int32_t *start;     /* n + 1 */
    float *out;         /* CLASSIFY [n, K]; EMBED [n, D]; EMBED_ALL [start[n], D] */
    ll_dataset *ner;    /* JOB_NER: tokenized sentences */
    int aggregation;    /* JOB_NER: an AGG_* strategy */
    ner_entity *ents;   /* JOB_NER results: per sentence s, ents[ent_first[s] .. ent_first[s + 1]) */
    size_t n_ents, ents_cap;
    size_t *ent_first;  /* sentences + 1 */
    int rc;             /* the worker's status (an ll_status) */
    ll_error err;
    /* Called by the worker once the outputs are written (or rc set); the
     * worker does not touch the job afterwards. */
    void (*done)(struct job *j);
    void *done_ctx;
    struct job *next;
} job;

/* Prometheus counters (atomics: request threads and the worker write them). */
enum { N_LATENCY_BUCKETS = 12, N_BATCH_BUCKETS = 10 };
extern const double serve_latency_bounds[N_LATENCY_BUCKETS]; /* seconds */
extern const double serve_batch_bounds[N_BATCH_BUCKETS];     /* tokens */

typedef struct serve_metrics {
    atomic_long latency_bucket[N_LATENCY_BUCKETS + 1]; /* + the +Inf bucket */
    atomic_long latency_count;
    atomic_llong latency_sum_us;
    atomic_long batch_bucket[N_BATCH_BUCKETS + 1];
    atomic_long batches;
    atomic_llong batch_tokens_sum;
    atomic_llong input_tokens;
    atomic_int queue_size;  /* jobs waiting for the worker */
    atomic_int in_flight;   /* requests admitted (queued or running) */
} serve_metrics;

typedef struct job_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail;
    int stop;           /* set at shutdown, after the last job was queued */
    const serve_model *sm;
    const serve_options *opt;
    serve_metrics *metrics;
    pthread_t thread;
} job_queue;

/* Fills err (may be NULL) with code and message; returns code. */
int serve_fail(ll_error *err, int code, const char *message);

int worker_start(job_queue *q, const serve_model *sm, const serve_options *opt, serve_metrics *metrics);
/* Queues j; -1 once worker_stop began (j not taken). */
int worker_submit(job_queue *q, job *j);
/* Answers every queued job, refuses new ones, joins the worker. */
void worker_stop(job_queue *q);

#endif
