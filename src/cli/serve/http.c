/* The server's HTTP side (libmicrohttpd): routes, request parsing and
 * validation (cJSON), tokenization on the request threads, answers in the
 * shapes of text-embeddings-inference (TEI), vLLM, OpenAI and the
 * transformers token-classification pipeline, errors, authentication,
 * admission (429) and Prometheus metrics. docs/serve.md lists every route. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "sbuf.h"
#include "serve_internal.h"

const double serve_latency_bounds[N_LATENCY_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                        0.5,   1,    2.5,   5,    10,  30};

/* ---- routes --------------------------------------------------------------------------------------------- */

typedef enum route {
    R_HEALTH, R_INFO, R_METRICS, R_PREDICT, R_EMBED, R_EMBED_ALL, R_TOKENIZE, R_ROOT, R_CLASSIFY,
    R_V1_EMBEDDINGS, R_V1_MODELS, R_NER, N_ROUTES
} route;

static const struct {
    const char *path, *method;
} routes[N_ROUTES] = {
    [R_HEALTH] = {"/health", "GET"},      [R_INFO] = {"/info", "GET"},
    [R_METRICS] = {"/metrics", "GET"},    [R_PREDICT] = {"/predict", "POST"},
    [R_EMBED] = {"/embed", "POST"},       [R_EMBED_ALL] = {"/embed_all", "POST"},
    [R_TOKENIZE] = {"/tokenize", "POST"}, [R_ROOT] = {"/", "POST"},
    [R_CLASSIFY] = {"/classify", "POST"}, [R_V1_EMBEDDINGS] = {"/v1/embeddings", "POST"},
    [R_V1_MODELS] = {"/v1/models", "GET"}, [R_NER] = {"/ner", "POST"},
};

/* Status codes counted in the metrics (the last slot: any other). */
static const int counted_status[] = {200, 400, 401, 404, 405, 413, 422, 424, 429, 500, 503, 0};
enum { N_STATUS = sizeof counted_status / sizeof counted_status[0] };

enum task { TASK_NONE, TASK_SEQUENCE, TASK_TOKEN };

typedef struct server {
    const serve_model *sm;
    const serve_options *opt;
    struct MHD_Daemon *d;
    job_queue q;
    serve_metrics mt;
    atomic_long requests[N_ROUTES + 1][N_STATUS]; /* + requests to no route */
    atomic_int open_requests;                      /* request contexts alive (queued, running or answering) */
    atomic_int accepting;                          /* 0 once shutting down: new requests get 503 */
    enum task task;
    long created;                                  /* unix time of start (OpenAI's "created") */
    /* tokenizer handles, one per request thread: a stack of free ones */
    pthread_mutex_t tok_mu;
    ll_tokenizer **toks, **free_toks;
    int n_toks, n_free;
} server;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- one request -------------------------------------------------------------------------------------- */

typedef struct req {
    server *sv;
    struct MHD_Connection *conn;
    int route;            /* N_ROUTES: none */
    double t0;
    char *body;
    size_t len, cap;
    int too_large;        /* the body passed --payload-limit: answered 413 once it ends */
    int answered;         /* a response is queued */
    int queued;           /* job handed to the worker (in_flight counted) */
    job j;
    /* the parsed request, kept for the answer */
    cJSON *doc;
    int single;           /* "inputs" was one string, not a list */
    int n;
    const char **texts;   /* [n] borrowed from doc */
    size_t *lens;
    int raw_scores, normalize, base64;
    int top_k;            /* /predict "parameters.top_k": labels answered, 0: all */
    int function_to_apply; /* -1: the model's (softmax, multi-label sigmoid); 0 softmax, 1 sigmoid */
    const cJSON *ignore_labels; /* /ner: NULL: ["O"] */
    int *ner_sentence;    /* /ner: [n] sentence of input i, -1 for a blank input */
} req;

static void req_free_job(req *r) {
    free(r->j.tokens), free(r->j.start), free(r->j.out), free(r->j.ents), free(r->j.ent_first);
    ll_dataset_free(r->j.ner);
    memset(&r->j, 0, sizeof r->j);
}

static void req_free(req *r) {
    req_free_job(r);
    cJSON_Delete(r->doc);
    free(r->body), free(r->texts), free(r->lens), free(r->ner_sentence);
    free(r);
}

static int status_slot(int status) {
    for (int i = 0; i < N_STATUS - 1; i++)
        if (counted_status[i] == status) return i;
    return N_STATUS - 1;
}

/* Queue body (malloc'd, handed over) as the answer, count it in the metrics. */
static enum MHD_Result reply(req *r, int status, char *body, size_t len, const char *content_type) {
    server *sv = r->sv;
    r->answered = 1;
    atomic_fetch_add(&sv->requests[r->route][status_slot(status)], 1);
    const double dt = now_s() - r->t0;
    int b = 0;
    while (b < N_LATENCY_BUCKETS && dt > serve_latency_bounds[b]) b++;
    atomic_fetch_add(&sv->mt.latency_bucket[b], 1);
    atomic_fetch_add(&sv->mt.latency_count, 1);
    atomic_fetch_add(&sv->mt.latency_sum_us, (long long)(dt * 1e6));
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body ? body : (void *)"",
                                                                body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    if (content_type) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    const enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static enum MHD_Result reply_json(req *r, int status, sbuf *b) {
    size_t len = 0;
    char *text = sb_take(b, &len);
    if (!text) {
        static const char oom[] = "{\"error\":\"out of memory\",\"error_type\":\"backend\"}";
        return reply(r, 500, strdup(oom), sizeof oom - 1, "application/json");
    }
    return reply(r, status, text, len, "application/json");
}

/* An error in TEI's shape {"error", "error_type"}, or under /v1/ in OpenAI's
 * {"error": {"message", "type", "param", "code"}}. */
static enum MHD_Result reply_error(req *r, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum MHD_Result reply_error(req *r, int status, const char *type, const char *fmt, ...) {
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sbuf b = {0};
    if (r->route == R_V1_EMBEDDINGS || r->route == R_V1_MODELS) { /* OpenAI's types, by status */
        const char *otype = status == 401 ? "authentication_error" : status == 429 ? "rate_limit_error"
                            : status >= 424 && status != 429 ? "server_error" : "invalid_request_error";
        (void)type;
        sb_puts(&b, "{\"error\":{\"message\":");
        sb_json_str(&b, msg, strlen(msg));
        sb_puts(&b, ",\"type\":");
        sb_json_str(&b, otype, strlen(otype));
        sb_printf(&b, ",\"param\":null,\"code\":%d}}", status);
    } else {
        sb_puts(&b, "{\"error\":");
        sb_json_str(&b, msg, strlen(msg));
        sb_puts(&b, ",\"error_type\":");
        sb_json_str(&b, type, strlen(type));
        sb_puts(&b, "}");
    }
    return reply_json(r, status, &b);
}

/* ---- tokenizer handles ------------------------------------------------------------------------------------- */

static ll_tokenizer *tok_acquire(server *sv) {
    pthread_mutex_lock(&sv->tok_mu);
    ll_tokenizer *t = sv->n_free ? sv->free_toks[--sv->n_free] : NULL;
    pthread_mutex_unlock(&sv->tok_mu);
    return t; /* never NULL: one handle per request thread */
}

static void tok_release(server *sv, ll_tokenizer *t) {
    pthread_mutex_lock(&sv->tok_mu);
    sv->free_toks[sv->n_free++] = t;
    pthread_mutex_unlock(&sv->tok_mu);
}

/* ---- parsing ---------------------------------------------------------------------------------------------- */

/* Offset of the first byte of s[0..n) that is not valid UTF-8 (Unicode's well-formed sequences: no overlongs,
 * surrogates or code points above U+10FFFF), or n. */
static size_t utf8_invalid_at(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        const unsigned c = s[i];
        size_t k;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) { i++; continue; }
        else if (c >= 0xC2 && c <= 0xDF) k = 1;
        else if (c >= 0xE0 && c <= 0xEF) { k = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
        else if (c >= 0xF0 && c <= 0xF4) { k = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
        else return i;
        for (size_t t = 1; t <= k; t++) {
            if (i + t >= n) return i;
            const unsigned d = s[i + t];
            if (d < (t == 1 ? lo : 0x80) || d > (t == 1 ? hi : 0xBF)) return i;
        }
        i += k + 1;
    }
    return n;
}

/* The request body as a JSON object: 0, or the error answered. */
static int parse_body(req *r, enum MHD_Result *res) {
    if (!r->len) {
        *res = reply_error(r, 422, "validation", "the request has no body: a JSON object was expected");
        return -1;
    }
    const size_t bad = utf8_invalid_at((const unsigned char *)r->body, r->len);
    if (bad < r->len) {
        *res = reply_error(r, 422, "validation", "the request body is not valid UTF-8 (byte %zu: 0x%02x)", bad + 1,
                           (unsigned)(unsigned char)r->body[bad]);
        return -1;
    }
    const char *end = NULL;
    r->doc = cJSON_ParseWithLengthOpts(r->body, r->len, &end, 0);
    size_t at = end ? (size_t)(end - r->body) : r->len;
    if (r->doc)
        while (at < r->len && strchr(" \t\r\n", r->body[at])) at++;
    if (!r->doc || at < r->len) { /* on failure cJSON sets end at the error (the last byte when the text ends) */
        *res = reply_error(r, 422, "validation", "the request body is not valid JSON (%s byte %zu of %zu)",
                           r->doc ? "text after the object at" : "error near", at + 1, r->len);
        return -1;
    }
    if (!cJSON_IsObject(r->doc)) {
        *res = reply_error(r, 422, "validation", "the request body must be a JSON object");
        return -1;
    }
    return 0;
}

/* A boolean field: 0/1, def when absent or null; -1 after an error answer. */
static int get_bool(req *r, const char *key, int def, enum MHD_Result *res) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->doc, key);
    if (!v || cJSON_IsNull(v)) return def;
    if (!cJSON_IsBool(v)) {
        *res = reply_error(r, 422, "validation", "`%s` must be true or false", key);
        return -1;
    }
    return cJSON_IsTrue(v);
}

/* A field lsllama does not implement: refused by name unless absent, null or def_value (a string). */
static int refuse_field(req *r, const char *key, const char *def_value, const char *why, enum MHD_Result *res) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->doc, key);
    if (!v || cJSON_IsNull(v) || (def_value && cJSON_IsString(v) && !strcmp(v->valuestring, def_value))) return 0;
    *res = reply_error(r, 422, "validation", "`%s` is not supported: %s", key, why);
    return -1;
}

/* The input texts: a string or a non-empty list of strings under key. Fields of TEI, vLLM or OpenAI requests
 * that lsllama does not implement are refused by name on every route (other unknown fields are ignored, as TEI
 * and OpenAI servers ignore them). */
static int get_inputs(req *r, const char *key, enum MHD_Result *res) {
    const serve_options *o = r->sv->opt;
    if (refuse_field(r, "prompt_name", NULL, "lsllama has no prompts", res) ||
        refuse_field(r, "truncate_prompt_tokens", NULL, "use `truncate` (the end is cut at --max-length)", res))
        return -1;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->doc, key);
    if (!v) {
        *res = reply_error(r, 422, "validation", "missing field `%s`", key);
        return -1;
    }
    r->single = cJSON_IsString(v);
    if (!r->single && !cJSON_IsArray(v)) {
        *res = reply_error(r, 422, "validation", "`%s` must be a string or a list of strings", key);
        return -1;
    }
    r->n = r->single ? 1 : cJSON_GetArraySize(v);
    if (r->n == 0) {
        *res = reply_error(r, 400, "empty", "`%s` cannot be empty", key);
        return -1;
    }
    if (r->n > o->max_client_batch_size) {
        *res = reply_error(r, 413, "validation", "batch size %d > maximum allowed batch size %d", r->n,
                           o->max_client_batch_size);
        return -1;
    }
    r->texts = malloc((size_t)r->n * sizeof *r->texts);
    r->lens = malloc((size_t)r->n * sizeof *r->lens);
    if (!r->texts || !r->lens) {
        *res = reply_error(r, 500, "backend", "out of memory");
        return -1;
    }
    int i = 0;
    for (const cJSON *e = r->single ? v : v->child; i < r->n; e = e->next, i++) {
        if (!cJSON_IsString(e)) {
            *res = reply_error(r, 422, "validation", "`%s`[%d] must be a string (token ids and text pairs are not "
                                                     "supported)", key, i);
            return -1;
        }
        r->texts[i] = e->valuestring;
        r->lens[i] = strlen(e->valuestring);
    }
    return 0;
}

/* The truncation a request asks for: `truncate` (default --auto-truncate), `truncation_direction` Right only. */
static int get_truncate(req *r, enum MHD_Result *res) {
    const int t = get_bool(r, "truncate", r->sv->opt->auto_truncate, res);
    if (t < 0) return -1;
    const cJSON *dir = cJSON_GetObjectItemCaseSensitive(r->doc, "truncation_direction");
    if (dir && !cJSON_IsNull(dir) && !(cJSON_IsString(dir) && !strcasecmp(dir->valuestring, "right"))) {
        *res = reply_error(r, 422, "validation", "`truncation_direction` must be \"Right\" (the end of a text is cut, "
                                                 "as lsllama predict does)");
        return -1;
    }
    return t;
}

/* Tokenizes every input into the job (packed ids): 0, or the error answered. */
static int tokenize_inputs(req *r, int truncate, enum MHD_Result *res) {
    server *sv = r->sv;
    const size_t L = (size_t)sv->opt->max_length;
    ll_tokenizer *tok = tok_acquire(sv);
    ll_encoding enc = {0};
    ll_error err = {0};
    size_t total = 0, cap = 0;
    int rc = 0;
    r->j.n = r->n;
    r->j.start = malloc(((size_t)r->n + 1) * sizeof *r->j.start);
    if (!r->j.start) rc = -1, *res = reply_error(r, 500, "backend", "out of memory");
    for (int i = 0; !rc && i < r->n; i++) {
        r->j.start[i] = (int32_t)total;
        if (!r->lens[i]) { /* refused whatever BOS/EOS the tokenizer would add */
            rc = -1, *res = reply_error(r, 400, "empty", "input %d is an empty text", i);
            break;
        }
        if (ll_tokenizer_encode(tok, r->texts[i], r->lens[i], LL_TOK_DEFAULT, &enc, &err)) {
            rc = -1, *res = reply_error(r, 422, "tokenizer", "input %d: %s", i, err.message);
            break;
        }
        if (enc.n == 0) {
            rc = -1, *res = reply_error(r, 400, "empty", "input %d encodes to no tokens", i);
            break;
        }
        if (enc.n > L && !truncate) {
            rc = -1, *res = reply_error(r, 413, "validation",
                                        "input %d has %zu tokens, more than the %zu of --max-length (set `truncate`, "
                                        "or start the server with --auto-truncate)", i, enc.n, L);
            break;
        }
        ll_encoding_truncate(&enc, L);
        if (total + enc.n > cap) {
            size_t nc = cap ? cap * 2 : 256;
            while (nc < total + enc.n) nc *= 2;
            int32_t *p = realloc(r->j.tokens, nc * sizeof *p);
            if (!p) {
                rc = -1, *res = reply_error(r, 500, "backend", "out of memory");
                break;
            }
            r->j.tokens = p, cap = nc;
        }
        memcpy(r->j.tokens + total, enc.ids, enc.n * sizeof *enc.ids);
        total += enc.n;
    }
    if (!rc) r->j.start[r->n] = (int32_t)total;
    ll_encoding_free(&enc);
    tok_release(sv, tok);
    if (!rc) atomic_fetch_add(&sv->mt.input_tokens, (long long)total);
    return rc;
}

/* ---- jobs ---------------------------------------------------------------------------------------------------- */

static void job_done(job *j) {
    req *r = j->done_ctx;
    MHD_resume_connection(r->conn);
}

/* Hand the job to the worker and suspend the connection until it is done; 429 when --max-concurrent requests
 * are already admitted. */
static enum MHD_Result submit(req *r, job_kind kind) {
    server *sv = r->sv;
    if (atomic_fetch_add(&sv->mt.in_flight, 1) >= sv->opt->max_concurrent) {
        atomic_fetch_sub(&sv->mt.in_flight, 1);
        return reply_error(r, 429, "overloaded", "model is overloaded: %d requests are queued or running",
                           sv->opt->max_concurrent);
    }
    const size_t T = r->j.start ? (size_t)r->j.start[r->j.n] : 0;
    const size_t rows = kind == JOB_CLASSIFY || kind == JOB_EMBED ? (size_t)r->j.n : T;
    const size_t W = kind == JOB_CLASSIFY ? (size_t)ll_labelmap_size(sv->sm->map)
                                          : (size_t)ll_model_config(sv->sm->m)->dim;
    r->j.kind = kind;
    if (kind != JOB_NER && !(r->j.out = malloc(rows * W * sizeof(float) + 1))) {
        atomic_fetch_sub(&sv->mt.in_flight, 1);
        return reply_error(r, 500, "backend", "out of memory");
    }
    r->j.done = job_done;
    r->j.done_ctx = r;
    MHD_suspend_connection(r->conn);
    if (worker_submit(&sv->q, &r->j)) { /* the worker has stopped: shutting down */
        MHD_resume_connection(r->conn);
        atomic_fetch_sub(&sv->mt.in_flight, 1);
        return reply_error(r, 503, "unhealthy", "the server is shutting down");
    }
    r->queued = 1;
    return MHD_YES;
}

/* ---- answers --------------------------------------------------------------------------------------------------- */

static const char *const *label_names(const server *sv) { return ll_labelmap_names(sv->sm->map); }

/* /predict (TEI): every label with its score, highest first; a list of such lists for a list of inputs. */
static void answer_predict(req *r, sbuf *b) {
    const int K = ll_labelmap_size(r->sv->sm->map);
    const int multi = r->function_to_apply >= 0 ? r->function_to_apply
                                                 : ll_classifier_get_config(r->sv->sm->c)->multi_label;
    const int n_out = r->top_k > 0 && r->top_k < K ? r->top_k : K;
    const char *const *names = label_names(r->sv);
    double p[K + 1];
    int order[K + 1];
    if (!r->single) sb_puts(b, "[");
    for (int i = 0; i < r->n; i++) {
        const float *z = r->j.out + (size_t)i * K;
        ll_logits_probabilities(z, K, multi, p);
        if (r->raw_scores)
            for (int k = 0; k < K; k++) p[k] = z[k];
        for (int k = 0; k < K; k++) order[k] = k;
        for (int a = 1; a < K; a++) /* insertion sort, stable: ties keep label order */
            for (int c = a; c > 0 && p[order[c]] > p[order[c - 1]]; c--) {
                const int t = order[c];
                order[c] = order[c - 1], order[c - 1] = t;
            }
        sb_puts(b, i ? ",[" : "[");
        for (int k = 0; k < n_out; k++) {
            sb_puts(b, k ? ",{\"label\":" : "{\"label\":");
            sb_json_str(b, names[order[k]], strlen(names[order[k]]));
            sb_printf(b, ",\"score\":%.6f}", p[order[k]]);
        }
        sb_puts(b, "]");
    }
    if (!r->single) sb_puts(b, "]");
}

/* /classify (vLLM): data[{index, label, probs, num_classes}], usage. */
static void answer_classify(req *r, sbuf *b) {
    server *sv = r->sv;
    const int K = ll_labelmap_size(sv->sm->map);
    const int multi = ll_classifier_get_config(sv->sm->c)->multi_label;
    const char *const *names = label_names(sv);
    double p[K + 1];
    const long tokens = (long)r->j.start[r->n];
    sb_printf(b, "{\"id\":\"classify-%lx%x\",\"object\":\"list\",\"created\":%ld,\"model\":", (unsigned long)time(NULL),
              (unsigned)(uintptr_t)r & 0xffffu, (long)time(NULL));
    sb_json_str(b, sv->opt->served_name, strlen(sv->opt->served_name));
    sb_puts(b, ",\"data\":[");
    for (int i = 0; i < r->n; i++) {
        const float *z = r->j.out + (size_t)i * K;
        int best = ll_logits_probabilities(z, K, multi, p);
        if (best < 0) /* multi-label: the most probable label */
            for (int k = best = 0; k < K; k++)
                if (p[k] > p[best]) best = k;
        sb_printf(b, "%s{\"index\":%d,\"label\":", i ? "," : "", i);
        sb_json_str(b, names[best], strlen(names[best]));
        sb_puts(b, ",\"probs\":[");
        for (int k = 0; k < K; k++) sb_printf(b, "%s%.6f", k ? "," : "", p[k]);
        sb_printf(b, "],\"num_classes\":%d}", K);
    }
    sb_printf(b, "],\"usage\":{\"prompt_tokens\":%ld,\"total_tokens\":%ld,\"completion_tokens\":0,"
                 "\"prompt_tokens_details\":null}}", tokens, tokens);
}

/* Row v[0..D) scaled to unit L2 norm (in double) when asked. */
static void embedding_row(sbuf *b, const float *v, size_t D, int normalize) {
    double ss = 0;
    for (size_t d = 0; d < D; d++) ss += (double)v[d] * v[d];
    const double scale = normalize && ss > 0 ? 1.0 / sqrt(ss) : 1.0;
    sb_puts(b, "[");
    for (size_t d = 0; d < D; d++) {
        if (d) sb_puts(b, ",");
        sb_json_float(b, (float)(v[d] * scale));
    }
    sb_puts(b, "]");
}

static void base64_floats(sbuf *b, const float *v, size_t D, int normalize) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    double ss = 0;
    for (size_t d = 0; d < D; d++) ss += (double)v[d] * v[d];
    const double scale = normalize && ss > 0 ? 1.0 / sqrt(ss) : 1.0;
    const size_t n = D * 4;
    unsigned char *raw = malloc(n + 3);
    if (!raw) {
        b->oom = 1;
        return;
    }
    for (size_t d = 0; d < D; d++) {
        const float f = (float)(v[d] * scale);
        memcpy(raw + 4 * d, &f, 4); /* little-endian float32, as OpenAI's encoding_format "base64" */
    }
    sb_puts(b, "\"");
    for (size_t i = 0; i < n; i += 3) {
        const unsigned x =
            (unsigned)raw[i] << 16 | (i + 1 < n ? (unsigned)raw[i + 1] << 8 : 0) | (i + 2 < n ? raw[i + 2] : 0);
        const char q[4] = {tab[x >> 18 & 63], tab[x >> 12 & 63], i + 1 < n ? tab[x >> 6 & 63] : '=',
                           i + 2 < n ? tab[x & 63] : '='};
        sb_put(b, q, 4);
    }
    sb_puts(b, "\"");
    free(raw);
}

static void answer_embed(req *r, sbuf *b) {
    const size_t D = (size_t)ll_model_config(r->sv->sm->m)->dim;
    sb_puts(b, "[");
    for (int i = 0; i < r->n; i++) {
        if (i) sb_puts(b, ",");
        embedding_row(b, r->j.out + (size_t)i * D, D, r->normalize);
    }
    sb_puts(b, "]");
}

static void answer_embed_all(req *r, sbuf *b) {
    const size_t D = (size_t)ll_model_config(r->sv->sm->m)->dim;
    sb_puts(b, "[");
    for (int i = 0; i < r->n; i++) {
        sb_puts(b, i ? ",[" : "[");
        for (int32_t t = r->j.start[i]; t < r->j.start[i + 1]; t++) {
            if (t > r->j.start[i]) sb_puts(b, ",");
            embedding_row(b, r->j.out + (size_t)t * D, D, 0);
        }
        sb_puts(b, "]");
    }
    sb_puts(b, "]");
}

static void answer_v1_embeddings(req *r, sbuf *b) {
    const size_t D = (size_t)ll_model_config(r->sv->sm->m)->dim;
    const long tokens = (long)r->j.start[r->n];
    sb_puts(b, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < r->n; i++) {
        sb_puts(b, i ? ",{\"object\":\"embedding\",\"embedding\":" : "{\"object\":\"embedding\",\"embedding\":");
        if (r->base64) base64_floats(b, r->j.out + (size_t)i * D, D, 1);
        else embedding_row(b, r->j.out + (size_t)i * D, D, 1);
        sb_printf(b, ",\"index\":%d}", i);
    }
    sb_puts(b, "],\"model\":");
    sb_json_str(b, r->sv->opt->served_name, strlen(r->sv->opt->served_name));
    sb_printf(b, ",\"usage\":{\"prompt_tokens\":%ld,\"total_tokens\":%ld}}", tokens, tokens);
}

static int ignored_label(const req *r, const char *label) {
    if (!r->ignore_labels) return !strcmp(label, "O");
    for (const cJSON *e = r->ignore_labels->child; e; e = e->next)
        if (!strcmp(e->valuestring, label)) return 1;
    return 0;
}

/* /ner: per input, its entities in the transformers pipeline's shape: {entity_group, score, word, start, end}
 * ({entity, score, index, word, start, end} with aggregation none); "word" is the input's text at [start, end). */
static void answer_ner(req *r, sbuf *b) {
    if (!r->single) sb_puts(b, "[");
    for (int i = 0; i < r->n; i++) {
        sb_puts(b, i ? ",[" : "[");
        const int s = r->ner_sentence[i];
        int first = 1;
        for (size_t e = s < 0 ? 0 : r->j.ent_first[s]; s >= 0 && e < r->j.ent_first[s + 1]; e++) {
            const ner_entity *en = &r->j.ents[e];
            if (ignored_label(r, en->label)) continue;
            sb_puts(b, first ? "{" : ",{");
            first = 0;
            sb_puts(b, en->group ? "\"entity_group\":" : "\"entity\":");
            sb_json_str(b, en->label, strlen(en->label));
            sb_printf(b, ",\"score\":%.6f", en->score);
            if (!en->group) sb_printf(b, ",\"index\":%d", en->index);
            sb_puts(b, ",\"word\":");
            sb_json_str(b, r->texts[i] + en->byte_start, (size_t)(en->byte_end - en->byte_start));
            sb_printf(b, ",\"start\":%d,\"end\":%d}", en->start, en->end);
        }
        sb_puts(b, "]");
    }
    if (!r->single) sb_puts(b, "]");
}

/* The worker finished r's job: its answer. */
static enum MHD_Result answer_job(req *r) {
    server *sv = r->sv;
    atomic_fetch_sub(&sv->mt.in_flight, 1);
    if (r->j.rc)
        return reply_error(r, r->j.rc == LL_ERR_NOMEM ? 500 : 424, "backend", "%s", r->j.err.message);
    sbuf b = {0};
    switch (r->route) {
    case R_CLASSIFY: answer_classify(r, &b); break;
    case R_EMBED: answer_embed(r, &b); break;
    case R_EMBED_ALL: answer_embed_all(r, &b); break;
    case R_V1_EMBEDDINGS: answer_v1_embeddings(r, &b); break;
    case R_NER: answer_ner(r, &b); break;
    default: /* /predict, and / for a classifier */
        if (r->j.kind == JOB_NER) answer_ner(r, &b);
        else if (r->j.kind == JOB_EMBED) answer_embed(r, &b);
        else answer_predict(r, &b);
    }
    return reply_json(r, 200, &b);
}

/* ---- handlers --------------------------------------------------------------------------------------------------- */

static const char *task_name(enum task t) {
    return t == TASK_SEQUENCE ? "text-classification" : t == TASK_TOKEN ? "token-classification" : "feature-extraction";
}

static void json_labels(sbuf *b, const server *sv) {
    const int K = ll_labelmap_size(sv->sm->map);
    const char *const *names = label_names(sv);
    sb_puts(b, "{\"id2label\":{");
    for (int k = 0; k < K; k++) {
        sb_printf(b, "%s\"%d\":", k ? "," : "", k);
        sb_json_str(b, names[k], strlen(names[k]));
    }
    sb_puts(b, "},\"label2id\":{");
    for (int k = 0; k < K; k++) {
        if (k) sb_puts(b, ",");
        sb_json_str(b, names[k], strlen(names[k]));
        sb_printf(b, ":%d", k);
    }
    sb_puts(b, "}}");
}

static enum MHD_Result handle_info(req *r) {
    server *sv = r->sv;
    const serve_options *o = sv->opt;
    const ll_config *cfg = ll_model_config(sv->sm->m);
    const int bidir = sv->sm->c ? ll_classifier_get_config(sv->sm->c)->bidirectional_from : o->bidirectional_from;
    sbuf b = {0};
    sb_puts(&b, "{\"model_id\":");
    sb_json_str(&b, o->served_name, strlen(o->served_name));
    sb_puts(&b, ",\"model_sha\":null,\"model_dtype\":");
    const char *prec = ll_base_precision_name(ll_model_base_precision(sv->sm->m));
    sb_json_str(&b, prec, strlen(prec));
    sb_puts(&b, ",\"model_type\":");
    if (sv->task != TASK_NONE) {
        sb_puts(&b, "{\"classifier\":");
        json_labels(&b, sv);
        sb_puts(&b, "}");
    } else {
        sb_printf(&b, "{\"embedding\":{\"pooling\":\"%s\"}}", ll_pool_name(o->pool));
    }
    sb_printf(&b, ",\"task\":\"%s\",\"architecture\":", task_name(sv->task));
    sb_json_str(&b, cfg->arch, strlen(cfg->arch));
    sb_printf(&b, ",\"hidden_size\":%d,\"pooling\":\"%s\",\"mask\":", cfg->dim, ll_pool_name(o->pool));
    if (bidir >= cfg->n_layers) sb_puts(&b, "\"causal\"");
    else if (bidir <= 0) sb_puts(&b, "\"bidirectional\"");
    else sb_printf(&b, "\"bidirectional from layer %d\"", bidir);
    if (sv->task != TASK_NONE)
        sb_printf(&b, ",\"multi_label\":%s", ll_classifier_get_config(sv->sm->c)->multi_label ? "true" : "false");
    sb_printf(&b, ",\"max_concurrent_requests\":%d,\"max_input_length\":%d,\"max_batch_tokens\":%zu,"
                  "\"max_batch_requests\":null,\"max_client_batch_size\":%d,\"auto_truncate\":%s,"
                  "\"tokenization_workers\":%d,\"payload_limit\":%zu,\"version\":\"lsllama\"}",
              o->max_concurrent, o->max_length, o->max_batch_tokens, o->max_client_batch_size,
              o->auto_truncate ? "true" : "false", o->http_threads, o->payload_limit);
    return reply_json(r, 200, &b);
}

static enum MHD_Result handle_metrics(req *r) {
    server *sv = r->sv;
    serve_metrics *mt = &sv->mt;
    sbuf b = {0};
    sb_puts(&b, "# HELP lsllama_requests_total Requests answered, by route and HTTP status.\n"
                "# TYPE lsllama_requests_total counter\n");
    for (int rt = 0; rt <= N_ROUTES; rt++)
        for (int s = 0; s < N_STATUS; s++) {
            const long v = atomic_load(&sv->requests[rt][s]);
            if (!v) continue;
            char st[16];
            if (counted_status[s]) snprintf(st, sizeof st, "%d", counted_status[s]);
            else snprintf(st, sizeof st, "other");
            sb_printf(&b, "lsllama_requests_total{route=\"%s\",status=\"%s\"} %ld\n",
                      rt < N_ROUTES ? routes[rt].path : "other", st, v);
        }
    sb_puts(&b, "# HELP lsllama_request_duration_seconds Time from a request's headers to its answer.\n"
                "# TYPE lsllama_request_duration_seconds histogram\n");
    long cum = 0;
    for (int i = 0; i <= N_LATENCY_BUCKETS; i++) {
        cum += atomic_load(&mt->latency_bucket[i]);
        if (i < N_LATENCY_BUCKETS)
            sb_printf(&b, "lsllama_request_duration_seconds_bucket{le=\"%g\"} %ld\n", serve_latency_bounds[i], cum);
        else sb_printf(&b, "lsllama_request_duration_seconds_bucket{le=\"+Inf\"} %ld\n", cum);
    }
    sb_printf(&b, "lsllama_request_duration_seconds_sum %.6f\nlsllama_request_duration_seconds_count %ld\n",
              (double)atomic_load(&mt->latency_sum_us) * 1e-6, atomic_load(&mt->latency_count));
    sb_puts(&b, "# HELP lsllama_batch_tokens Tokens per forward batch of the inference worker.\n"
                "# TYPE lsllama_batch_tokens histogram\n");
    cum = 0;
    for (int i = 0; i <= N_BATCH_BUCKETS; i++) {
        cum += atomic_load(&mt->batch_bucket[i]);
        if (i < N_BATCH_BUCKETS)
            sb_printf(&b, "lsllama_batch_tokens_bucket{le=\"%g\"} %ld\n", serve_batch_bounds[i], cum);
        else sb_printf(&b, "lsllama_batch_tokens_bucket{le=\"+Inf\"} %ld\n", cum);
    }
    sb_printf(&b, "lsllama_batch_tokens_sum %lld\nlsllama_batch_tokens_count %ld\n",
              (long long)atomic_load(&mt->batch_tokens_sum), atomic_load(&mt->batches));
    sb_printf(&b, "# HELP lsllama_queue_size Requests waiting for the inference worker.\n"
                  "# TYPE lsllama_queue_size gauge\nlsllama_queue_size %d\n"
                  "# HELP lsllama_requests_in_flight Requests queued or running (429 beyond --max-concurrent).\n"
                  "# TYPE lsllama_requests_in_flight gauge\nlsllama_requests_in_flight %d\n"
                  "# HELP lsllama_input_tokens_total Tokens of the inputs admitted.\n"
                  "# TYPE lsllama_input_tokens_total counter\nlsllama_input_tokens_total %lld\n",
              atomic_load(&mt->queue_size), atomic_load(&mt->in_flight), (long long)atomic_load(&mt->input_tokens));
    size_t len = 0;
    char *text = sb_take(&b, &len);
    if (!text) return reply_error(r, 500, "backend", "out of memory");
    return reply(r, 200, text, len, "text/plain; version=0.0.4");
}

static enum MHD_Result handle_models(req *r) {
    sbuf b = {0};
    sb_puts(&b, "{\"object\":\"list\",\"data\":[{\"id\":");
    sb_json_str(&b, r->sv->opt->served_name, strlen(r->sv->opt->served_name));
    sb_printf(&b, ",\"object\":\"model\",\"created\":%ld,\"owned_by\":\"lsllama\"}]}", r->sv->created);
    return reply_json(r, 200, &b);
}

/* /tokenize (TEI): per input, its tokens {id, text, special, start, stop} (character offsets; special tokens
 * have no span: null). Runs on the request thread. */
static enum MHD_Result handle_tokenize(req *r) {
    enum MHD_Result res = MHD_NO;
    int add_special;
    if (parse_body(r, &res) || get_inputs(r, "inputs", &res) ||
        (add_special = get_bool(r, "add_special_tokens", 1, &res)) < 0)
        return res;
    server *sv = r->sv;
    ll_tokenizer *tok = tok_acquire(sv);
    ll_encoding enc = {0};
    ll_error err = {0};
    sbuf b = {0};
    int failed = -1;
    sb_puts(&b, "[");
    for (int i = 0; i < r->n && failed < 0; i++) {
        if (ll_tokenizer_encode(tok, r->texts[i], r->lens[i], add_special ? LL_TOK_DEFAULT : LL_TOK_PARSE_SPECIAL, &enc,
                                &err)) {
            failed = i;
            break;
        }
        sb_puts(&b, i ? ",[" : "[");
        for (size_t t = 0; t < enc.n; t++) {
            const int special = ll_tokenizer_is_special(tok, enc.ids[t]);
            sb_printf(&b, "%s{\"id\":%d,\"text\":", t ? "," : "", enc.ids[t]);
            if (enc.byte_start[t] == enc.byte_end[t]) { /* added by the post-processor: its piece, no span */
                size_t plen = 0;
                const char *piece = ll_tokenizer_piece(tok, enc.ids[t], &plen);
                sb_json_str(&b, piece ? piece : "", piece ? plen : 0);
                sb_printf(&b, ",\"special\":%s,\"start\":null,\"stop\":null}", special ? "true" : "false");
            } else {
                sb_json_str(&b, r->texts[i] + enc.byte_start[t], (size_t)(enc.byte_end[t] - enc.byte_start[t]));
                sb_printf(&b, ",\"special\":%s,\"start\":%d,\"stop\":%d}", special ? "true" : "false",
                          enc.char_start[t], enc.char_end[t]);
            }
        }
        sb_puts(&b, "]");
    }
    sb_puts(&b, "]");
    ll_encoding_free(&enc);
    tok_release(sv, tok);
    if (failed >= 0) {
        sb_free(&b);
        return reply_error(r, 422, "tokenizer", "input %d: %s", failed, err.message);
    }
    return reply_json(r, 200, &b);
}

/* "model" of an OpenAI or vLLM request: absent, null or the served name. */
static int check_model_name(req *r, enum MHD_Result *res) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->doc, "model");
    if (!v || cJSON_IsNull(v) || (cJSON_IsString(v) && !strcmp(v->valuestring, r->sv->opt->served_name))) return 0;
    *res = reply_error(r, 404, "validation", "The model `%s` does not exist: this server serves `%s`",
                       cJSON_IsString(v) ? v->valuestring : "(not a string)", r->sv->opt->served_name);
    return -1;
}

/* "parameters" of the Hugging Face Inference API's text-classification request (what huggingface_hub's
 * InferenceClient sends to a TEI endpoint): top_k (labels answered) and function_to_apply (softmax, sigmoid,
 * none = the logits). Any other parameter is refused by name. */
static int get_parameters(req *r, enum MHD_Result *res) {
    r->function_to_apply = -1;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(r->doc, "parameters");
    if (!p || cJSON_IsNull(p)) return 0;
    if (!cJSON_IsObject(p)) {
        *res = reply_error(r, 422, "validation", "`parameters` must be an object");
        return -1;
    }
    for (const cJSON *e = p->child; e; e = e->next) {
        if (cJSON_IsNull(e)) continue;
        if (!strcmp(e->string, "top_k")) {
            if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble != (int)e->valuedouble) {
                *res = reply_error(r, 422, "validation", "`parameters.top_k` must be an integer >= 1");
                return -1;
            }
            r->top_k = (int)e->valuedouble;
        } else if (!strcmp(e->string, "function_to_apply")) {
            const char *f = cJSON_IsString(e) ? e->valuestring : "";
            if (!strcmp(f, "softmax")) r->function_to_apply = 0;
            else if (!strcmp(f, "sigmoid")) r->function_to_apply = 1;
            else if (!strcmp(f, "none")) r->raw_scores = 1;
            else {
                *res = reply_error(r, 422, "validation",
                                   "`parameters.function_to_apply` must be \"softmax\", \"sigmoid\" or \"none\"");
                return -1;
            }
        } else {
            *res = reply_error(r, 422, "validation", "`parameters.%s` is not supported (top_k, function_to_apply are)",
                               e->string);
            return -1;
        }
    }
    return 0;
}

/* /predict, /classify and / on a sequence classifier. */
static enum MHD_Result handle_classify(req *r, const char *key) {
    enum MHD_Result res = MHD_NO;
    int truncate;
    if (parse_body(r, &res) || (r->route == R_CLASSIFY && check_model_name(r, &res)) || get_inputs(r, key, &res) ||
        (r->raw_scores = get_bool(r, "raw_scores", 0, &res)) < 0 || (truncate = get_truncate(r, &res)) < 0 ||
        get_parameters(r, &res) || tokenize_inputs(r, truncate, &res))
        return res;
    return submit(r, JOB_CLASSIFY);
}

static enum MHD_Result handle_embed(req *r, job_kind kind) {
    enum MHD_Result res = MHD_NO;
    const int v1 = r->route == R_V1_EMBEDDINGS;
    int truncate;
    if (parse_body(r, &res) || (v1 && check_model_name(r, &res)) || get_inputs(r, v1 ? "input" : "inputs", &res) ||
        (r->normalize = v1 ? 1 : get_bool(r, "normalize", 1, &res)) < 0 || (truncate = get_truncate(r, &res)) < 0)
        return res;
    if (v1) {
        const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(r->doc, "encoding_format");
        const cJSON *dims = cJSON_GetObjectItemCaseSensitive(r->doc, "dimensions");
        const int D = ll_model_config(r->sv->sm->m)->dim;
        if (fmt && !cJSON_IsNull(fmt) &&
            !(cJSON_IsString(fmt) && (!strcmp(fmt->valuestring, "float") || !strcmp(fmt->valuestring, "base64"))))
            return reply_error(r, 422, "validation", "`encoding_format` must be \"float\" or \"base64\"");
        r->base64 = fmt && cJSON_IsString(fmt) && !strcmp(fmt->valuestring, "base64");
        if (dims && !cJSON_IsNull(dims) && !(cJSON_IsNumber(dims) && dims->valuedouble == D))
            return reply_error(r, 422, "validation",
                               "`dimensions` is not supported: the embeddings have the model's %d dimensions", D);
    } else if (refuse_field(r, "dimensions", NULL, "the embeddings have the model's hidden size", &res)) {
        return res;
    }
    if (tokenize_inputs(r, truncate, &res)) return res;
    return submit(r, kind);
}

/* /ner (and / on a token classifier): the texts as sentences of a token dataset (words split on whitespace, as
 * `lsllama predict` reads text lines), windows of --max-length tokens; aggregation_strategy as the transformers
 * pipeline's (default "first": the tag of each word's first token, as lsllama trains and predicts). */
static enum MHD_Result handle_ner(req *r) {
    enum MHD_Result res = MHD_NO;
    if (parse_body(r, &res) || get_inputs(r, "inputs", &res)) return res;
    /* the pipeline's arguments, at the top level or (the Inference API's form) under "parameters" */
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(r->doc, "parameters");
    if (params && !cJSON_IsNull(params) && !cJSON_IsObject(params))
        return reply_error(r, 422, "validation", "`parameters` must be an object");
    const cJSON *agg = NULL, *ign = NULL;
    for (const cJSON *src = r->doc; src; src = src == r->doc && cJSON_IsObject(params) ? params : NULL) {
        for (const cJSON *e = src->child; src == params && e; e = e->next)
            if (strcmp(e->string, "aggregation_strategy") && strcmp(e->string, "ignore_labels") && !cJSON_IsNull(e))
                return reply_error(r, 422, "validation", "`parameters.%s` is not supported (aggregation_strategy, "
                                                         "ignore_labels are; long texts are cut into windows of "
                                                         "--max-length tokens without asking)", e->string);
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(src, "aggregation_strategy");
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(src, "ignore_labels");
        if (a && !cJSON_IsNull(a)) agg = a;
        if (g && !cJSON_IsNull(g)) ign = g;
    }
    r->j.aggregation = AGG_FIRST;
    if (agg && (!cJSON_IsString(agg) || (r->j.aggregation = ner_strategy_parse(agg->valuestring)) < 0))
        return reply_error(r, 422, "validation", "`aggregation_strategy` must be \"none\", \"simple\", \"first\", "
                                                 "\"average\" or \"max\"");
    if (ign) {
        int ok = cJSON_IsArray(ign);
        for (const cJSON *e = ok ? ign->child : NULL; e; e = e->next) ok &= cJSON_IsString(e);
        if (!ok) return reply_error(r, 422, "validation", "`ignore_labels` must be a list of strings");
        r->ignore_labels = ign;
    }
    /* one line per non-blank input; newlines inside an input become spaces (same offsets, same words) */
    size_t total = 0;
    for (int i = 0; i < r->n; i++) total += r->lens[i] + 1;
    char *text = malloc(total + 1);
    r->ner_sentence = malloc((size_t)r->n * sizeof *r->ner_sentence);
    if (!text || !r->ner_sentence) {
        free(text);
        return reply_error(r, 500, "backend", "out of memory");
    }
    size_t len = 0;
    int n_sent = 0;
    for (int i = 0; i < r->n; i++) {
        int blank = 1;
        for (size_t k = 0; k < r->lens[i] && blank; k++) blank = strchr(" \t\n\v\f\r", r->texts[i][k]) != NULL;
        r->ner_sentence[i] = blank ? -1 : n_sent++;
        if (blank) continue;
        for (size_t k = 0; k < r->lens[i]; k++) {
            const char ch = r->texts[i][k];
            text[len++] = ch == '\n' || ch == '\r' ? ' ' : ch;
        }
        text[len++] = '\n';
    }
    if (!n_sent) { /* nothing to tag: every answer is empty */
        free(text);
        r->j.ent_first = calloc(1, sizeof *r->j.ent_first);
        sbuf b = {0};
        answer_ner(r, &b);
        return reply_json(r, 200, &b);
    }
    ll_token_data_options to;
    ll_token_data_options_default(&to);
    to.format = LL_DATA_LINES;
    to.no_tags = 1;
    ll_error err = {0};
    ll_tokenizer *tok = tok_acquire(r->sv);
    int rc = ll_token_dataset_load_memory(&r->j.ner, text, len, "request", &to, &err);
    if (!rc) rc = ll_token_dataset_tokenize(r->j.ner, tok, r->sv->opt->max_length, NULL, &err);
    tok_release(r->sv, tok);
    free(text);
    if (rc) return reply_error(r, 422, "tokenizer", "%s", err.message);
    return submit(r, JOB_NER);
}

/* A request whose body has arrived. */
static enum MHD_Result handle(req *r) {
    server *sv = r->sv;
    if (!atomic_load(&sv->accepting) && r->route != R_HEALTH)
        return reply_error(r, 503, "unhealthy", "the server is shutting down");
    if (r->too_large)
        return reply_error(r, 413, "validation", "the request body is larger than the payload limit (%zu bytes)",
                           sv->opt->payload_limit);
    switch (r->route) {
    case R_HEALTH:
        if (!atomic_load(&sv->accepting)) return reply_error(r, 503, "unhealthy", "the server is shutting down");
        return reply(r, 200, NULL, 0, NULL);
    case R_INFO: return handle_info(r);
    case R_METRICS: return handle_metrics(r);
    case R_V1_MODELS: return handle_models(r);
    case R_TOKENIZE: return handle_tokenize(r);
    case R_EMBED: return handle_embed(r, JOB_EMBED);
    case R_EMBED_ALL: return handle_embed(r, JOB_EMBED_ALL);
    case R_V1_EMBEDDINGS: return handle_embed(r, JOB_EMBED);
    case R_ROOT:
        return sv->task == TASK_SEQUENCE ? handle_classify(r, "inputs")
               : sv->task == TASK_TOKEN  ? handle_ner(r)
                                         : handle_embed(r, JOB_EMBED);
    case R_PREDICT: return handle_classify(r, "inputs");
    case R_CLASSIFY: return handle_classify(r, "input");
    case R_NER: return handle_ner(r);
    default: return reply_error(r, 404, "validation", "no such route");
    }
}

/* The route of url for method, or an early error status (404, 405, 404 for a route the model does not serve). */
static int find_route(const server *sv, const char *url, const char *method, int *route) {
    *route = N_ROUTES;
    for (int i = 0; i < N_ROUTES; i++)
        if (!strcmp(url, routes[i].path)) {
            *route = i;
            if (strcmp(method, routes[i].method)) return 405;
            const int seq = i == R_PREDICT || i == R_CLASSIFY, tok = i == R_NER;
            if ((seq && sv->task != TASK_SEQUENCE) || (tok && sv->task != TASK_TOKEN)) return 404;
            return 0;
        }
    return 404;
}

/* Bearer token check, in time independent of where the key differs. */
static int authorized(const server *sv, struct MHD_Connection *conn) {
    if (!sv->opt->api_key) return 1;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7)) return 0;
    h += 7;
    const char *k = sv->opt->api_key;
    const size_t hl = strlen(h), kl = strlen(k);
    unsigned diff = hl != kl;
    for (size_t i = 0; i < kl; i++) diff |= (unsigned char)k[i] ^ (unsigned char)(i < hl ? h[i] : 0);
    return diff == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    server *sv = cls;
    req *r = *con_cls;
    if (!r) { /* headers arrived */
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        r->sv = sv, r->conn = conn, r->t0 = now_s();
        *con_cls = r;
        atomic_fetch_add(&sv->open_requests, 1);
        const int early = find_route(sv, url, method, &r->route);
        if (early == 405)
            return reply_error(r, 405, "validation", "%s takes %s, not %s", routes[r->route].path,
                               routes[r->route].method, method);
        if (early == 404 && r->route < N_ROUTES) {
            const char *serves = sv->task == TASK_SEQUENCE ? "a sequence classifier (use /predict)"
                                 : sv->task == TASK_TOKEN  ? "a token classifier (use /ner)"
                                                           : "not a classifier (give --adapter, or a merged folder)";
            return reply_error(r, 404, "validation", "%s is not served: the model is %s", routes[r->route].path,
                               serves);
        }
        if (early == 404) return reply_error(r, 404, "validation", "no route %s %s", method, url);
        if (r->route != R_HEALTH && !authorized(sv, conn))
            return reply_error(r, 401, "unauthorized", "missing or wrong API key (Authorization: Bearer KEY)");
        /* A body announced too large is refused before it is sent when the client waits for "100 Continue";
         * other clients send it anyway: it is read and dropped (within --timeout), so they can read the 413 */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
        if (cl && strtoull(cl, NULL, 10) > sv->opt->payload_limit && expect && !strcasecmp(expect, "100-continue"))
            return reply_error(r, 413, "validation", "the request body (%s bytes) is larger than the payload limit "
                                                     "(%zu bytes)", cl, sv->opt->payload_limit);
        return MHD_YES;
    }
    if (r->answered) { /* an early answer: the rest of the body is dropped */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        if (now_s() - r->t0 > sv->opt->timeout_s) return MHD_NO; /* a client too slow to send its body: closed */
        const size_t n = *upload_size;
        *upload_size = 0;
        if (r->too_large || r->len + n > sv->opt->payload_limit) {
            r->too_large = 1;
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t nc = r->cap ? r->cap : 4096;
            while (nc < r->len + n + 1) nc *= 2;
            char *p = realloc(r->body, nc);
            if (!p) return MHD_NO;
            r->body = p, r->cap = nc;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        r->body[r->len] = 0;
        return MHD_YES;
    }
    if (r->queued) return answer_job(r); /* resumed by the worker */
    return handle(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)conn, (void)toe;
    server *sv = cls;
    req *r = *con_cls;
    if (!r) return;
    if (r->queued && !r->answered) atomic_fetch_sub(&sv->mt.in_flight, 1); /* never answered (client gone) */
    req_free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&sv->open_requests, 1);
}

/* ---- start and stop ------------------------------------------------------------------------------------------- */

static int write_port_file(const char *path, int port) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    const int ok = fprintf(f, "%d\n", port) > 0;
    if (fclose(f) || !ok || rename(tmp, path)) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int serve_run(const serve_model *sm, const serve_options *opt) {
    server sv_storage, *sv = &sv_storage;
    memset(sv, 0, sizeof *sv);
    sv->sm = sm, sv->opt = opt;
    sv->task = !sm->c ? TASK_NONE : ll_classifier_get_config(sm->c)->token_task ? TASK_TOKEN : TASK_SEQUENCE;
    sv->created = (long)time(NULL);
    atomic_store(&sv->accepting, 1);
    pthread_mutex_init(&sv->tok_mu, NULL);
    int rc = 1;
    /* one tokenizer per request thread */
    sv->n_toks = opt->http_threads;
    sv->toks = calloc((size_t)sv->n_toks, sizeof *sv->toks);
    sv->free_toks = calloc((size_t)sv->n_toks, sizeof *sv->free_toks);
    if (!sv->toks || !sv->free_toks) {
        fprintf(stderr, "lsllama serve: out of memory\n");
        goto done;
    }
    sv->toks[0] = sm->tok;
    for (int i = 1; i < sv->n_toks; i++) {
        ll_error err = {0};
        if (ll_tokenizer_load(&sv->toks[i], opt->tokenizer_path, &err)) {
            fprintf(stderr, "lsllama serve: %s\n", err.message);
            goto done;
        }
    }
    for (int i = 0; i < sv->n_toks; i++) sv->free_toks[sv->n_free++] = sv->toks[i];

    /* SIGTERM/SIGINT are taken by sigwait below: blocked in every thread started from here */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    socklen_t alen;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, opt->host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)opt->port);
        alen = sizeof *a4;
    } else if (inet_pton(AF_INET6, opt->host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)opt->port);
        alen = sizeof *a6;
        flags |= MHD_USE_IPv6;
    } else {
        fprintf(stderr, "lsllama serve: --host %s: not an IPv4 or IPv6 address\n", opt->host);
        goto done;
    }
    (void)alen;
    if (worker_start(&sv->q, sm, opt, &sv->mt)) {
        fprintf(stderr, "lsllama serve: cannot start the inference worker\n");
        goto done;
    }
    sv->d = MHD_start_daemon(flags, (uint16_t)opt->port, NULL, NULL, on_request, sv,
                             MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                             MHD_OPTION_THREAD_POOL_SIZE, (unsigned)opt->http_threads,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)opt->timeout_s,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, sv,
                             MHD_OPTION_END); /* no SO_REUSEPORT: a port in use is refused, never shared */
    if (!sv->d) {
        fprintf(stderr, "lsllama serve: cannot listen on %s port %d: %s\n", opt->host, opt->port, strerror(errno));
        worker_stop(&sv->q);
        goto done;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(sv->d, MHD_DAEMON_INFO_BIND_PORT);
    const int port = info ? (int)info->port : opt->port;
    fprintf(stderr, "lsllama serve: %s on http://%s%s%s:%d (%s; %d request threads, %d compute threads)\n",
            opt->served_name, strchr(opt->host, ':') ? "[" : "", opt->host, strchr(opt->host, ':') ? "]" : "", port,
            task_name(sv->task), opt->http_threads, opt->threads);
    if (opt->port_file && write_port_file(opt->port_file, port)) {
        fprintf(stderr, "lsllama serve: cannot write %s: %s\n", opt->port_file, strerror(errno));
        MHD_stop_daemon(sv->d);
        worker_stop(&sv->q);
        goto done;
    }
    int sig = 0;
    while (sigwait(&sigs, &sig)) {
    }
    /* stop accepting, answer what was accepted (a client that never reads is given up after the timeout) */
    fprintf(stderr, "lsllama serve: %s: finishing %d requests\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
            atomic_load(&sv->open_requests));
    atomic_store(&sv->accepting, 0);
    MHD_quiesce_daemon(sv->d);
    worker_stop(&sv->q); /* answers every queued job (each connection resumed) and refuses new ones */
    const double t_end = now_s() + opt->timeout_s + 5;
    while (atomic_load(&sv->open_requests) > 0 && now_s() < t_end) usleep(10000);
    MHD_stop_daemon(sv->d);
    rc = 0;
done:
    for (int i = 1; sv->toks && i < sv->n_toks; i++) ll_tokenizer_free(sv->toks[i]);
    free(sv->toks);
    free(sv->free_toks);
    pthread_mutex_destroy(&sv->tok_mu);
    return rc;
}
