/* lsllama serve: a trained classifier (or a bare model's embeddings) as an
 * HTTP service speaking Hugging Face text-embeddings-inference's routes,
 * vLLM's /classify, OpenAI's /v1/embeddings and a /ner route in the
 * transformers token-classification pipeline's shape. See docs/serve.md.
 *
 * Threads: libmicrohttpd's pool of http_threads request threads parses
 * (cJSON), validates and tokenizes each request (one tokenizer handle per
 * request thread), then queues it as a job and suspends the connection; one
 * inference worker packs every waiting job of one kind into forward batches
 * of at most max_batch_tokens tokens (the packed layout of ll_batch), writes
 * each job's outputs and resumes its connection, whose thread answers.
 * Outputs of a sequence do not depend on the batch it ran in
 * (ll_classifier_infer), so an answer does not depend on the load.
 *
 * Uses the public API only (lsllama.h, lsllama_tokenizer.h, lsllama_train.h). */
#ifndef LL_SERVE_H
#define LL_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "lsllama.h"
#include "lsllama_tokenizer.h"
#include "lsllama_train.h"

typedef struct serve_options {
    const char *host;           /* listening address (IPv4 or IPv6 literal) */
    int port;                   /* 0: any free port (the one taken is printed) */
    int http_threads;           /* request threads (and tokenizer handles) */
    int threads;                /* the worker's OpenMP threads */
    size_t max_batch_tokens;    /* tokens per forward batch */
    int max_client_batch_size;  /* inputs per request */
    int max_concurrent;         /* requests queued or running; one more gets 429 */
    int max_length;             /* tokens per input; longer ones: 413 unless truncated */
    int auto_truncate;          /* truncate longer inputs without being asked */
    size_t payload_limit;       /* request body bytes; more: 413 */
    int timeout_s;              /* a request's whole upload and a connection's idle time */
    const char *api_key;        /* NULL: no authentication */
    const char *served_name;    /* model name in /info, /v1/models, vLLM and OpenAI answers */
    ll_pool pool;               /* pooling of /embed and /v1/embeddings */
    int bidirectional_from;     /* bare model: its attention (classifiers use their own) */
    const char *tokenizer_path; /* loaded http_threads times */
    const char *port_file;      /* written with the port once listening (tests); NULL: none */
} serve_options;

/* What is served: a classifier on its base model (c and map non-NULL), or a
 * bare model (c NULL: embeddings and tokenization only). Borrowed. */
typedef struct serve_model {
    ll_model *m;
    ll_classifier *c;
    const ll_labelmap *map;
    ll_tokenizer *tok; /* the first request thread's handle is this one */
} serve_model;

/* Run the server until SIGTERM or SIGINT: then stop accepting, answer what
 * was accepted, and return 0. Non-zero after a message on stderr when it
 * cannot start (address in use, tokenizer, ...). */
int serve_run(const serve_model *sm, const serve_options *opt);

#endif
