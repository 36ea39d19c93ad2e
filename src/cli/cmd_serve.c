/* lsllama serve: the trained classifier (or a bare model's embeddings) as an
 * HTTP service; options here, the server in src/serve/. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_classify.h"
#include "cli_util.h"
#include "commands.h"
#include "lsllama.h"
#include "lsllama_train.h"
#include "serve/serve.h"

static void serve_usage(void) {
    printf("usage: lsllama serve MODEL [--adapter DIR] [--tokenizer PATH] [--host 127.0.0.1] [--port 8080]\n"
           "                       [--threads N] [--http-threads N] [--max-batch-tokens 4096]\n"
           "                       [--max-client-batch-size 32] [--max-concurrent 512] [--max-length L]\n"
           "                       [--auto-truncate] [--payload-limit 2000000] [--api-key KEY] [--served-name NAME]\n"
           "                       [--timeout 30] [--pooling last|mean|max|first] [--bidirectional-from K]\n"
           "                       [--port-file FILE] [--base-precision P] [--compute C]\n\n"
           "Serves a classifier over HTTP: MODEL with --adapter DIR, or a folder written by `lsllama merge`.\n"
           "A bare MODEL serves only its embeddings and its tokenizer. Routes (docs/serve.md):\n"
           "  text-embeddings-inference: GET /health /info /metrics, POST /predict /embed /embed_all /tokenize /\n"
           "  vLLM: POST /classify; OpenAI: POST /v1/embeddings, GET /v1/models\n"
           "  POST /ner: entities in the transformers token-classification pipeline's shape\n"
           "--threads N: compute threads of the inference worker (default: OMP_NUM_THREADS or the cores)\n"
           "--http-threads N: request threads that parse and tokenize (default 2)\n"
           "--max-batch-tokens N: tokens per forward batch; waiting requests are packed up to it (default 4096)\n"
           "--max-client-batch-size N: inputs per request (default 32); --max-concurrent N: requests queued or\n"
           "        running, one more is answered 429 (default 512)\n"
           "--max-length L: tokens per input (default: the model's context, at most --max-batch-tokens); a\n"
           "        longer input is refused (413) unless the request sets \"truncate\" or --auto-truncate\n"
           "--payload-limit BYTES: request body size, larger is refused (413) (default 2000000)\n"
           "--api-key KEY: every route but /health needs `Authorization: Bearer KEY` (401 otherwise)\n"
           "--served-name NAME: the model's name in /info, /v1/models and answers (default: the adapter folder's\n"
           "        name, else MODEL's)\n"
           "--timeout S: a request's body must arrive within S seconds, an idle connection is closed after\n"
           "        S seconds (default 30)\n"
           "--pooling P: the pooling of /embed and /v1/embeddings (default: a sequence classifier's own, else mean)\n"
           "--bidirectional-from K: a bare model's attention, bidirectional from layer K (default: causal)\n"
           "--port 0 takes a free port; --port-file FILE receives the port once the server listens.\n"
           "SIGTERM or SIGINT: stop accepting, answer what was accepted, exit 0.\n"
           "Default base precision: the one the adapter was trained with (label_map.json), else stored.\n"
           CLI_BASE_PRECISION_HELP CLI_COMPUTE_HELP);
}

/* The last path component of p without a trailing slash, into buf. */
static const char *base_name(const char *p, char *buf, size_t cap) {
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') n--;
    size_t s = n;
    while (s > 0 && p[s - 1] != '/') s--;
    snprintf(buf, cap, "%.*s", (int)(n - s), p + s);
    return buf;
}

#define SERVE_VALUE_OPTS                                                                                            \
    "--adapter --tokenizer --host --port --threads --http-threads --max-batch-tokens --max-client-batch-size "    \
    "--max-concurrent --max-length --payload-limit --api-key --served-name --timeout --pooling "                  \
    "--bidirectional-from --port-file --base-precision --compute"

int cmd_serve(int argc, char **argv) {
    cls_args a = {0};
    serve_options o = {.host = "127.0.0.1", .port = 8080, .http_threads = 2, .threads = omp_get_max_threads(),
                       .max_batch_tokens = 4096, .max_client_batch_size = 32, .max_concurrent = 512,
                       .payload_limit = 2000000, .timeout_s = 30, .bidirectional_from = -1};
    long v_l = 0, max_length = 0;
    int pool_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define INT_OPT(name, lo, hi, dst)                                                                                  \
    else if (!strcmp(opt, name) && v) {                                                                              \
        if (!cli_parse_int("serve", name, argv[++i], lo, hi, &v_l)) return 2;                                        \
        dst = v_l;                                                                                                   \
    }
        if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
            serve_usage();
            return 0;
        } else if (!strcmp(opt, "--adapter") && v) a.adapter = argv[++i];
        else if (!strcmp(opt, "--tokenizer") && v) a.tokenizer = argv[++i];
        else if (!strcmp(opt, "--host") && v) o.host = argv[++i];
        else if (!strcmp(opt, "--api-key") && v) o.api_key = argv[++i];
        else if (!strcmp(opt, "--served-name") && v) o.served_name = argv[++i];
        else if (!strcmp(opt, "--port-file") && v) o.port_file = argv[++i];
        else if (!strcmp(opt, "--auto-truncate")) o.auto_truncate = 1;
        INT_OPT("--port", 0, 65535, o.port)
        INT_OPT("--threads", 1, 1024, o.threads)
        INT_OPT("--http-threads", 1, 256, o.http_threads)
        INT_OPT("--max-batch-tokens", 1, 1L << 24, o.max_batch_tokens)
        INT_OPT("--max-client-batch-size", 1, 1L << 20, o.max_client_batch_size)
        INT_OPT("--max-concurrent", 1, 1L << 20, o.max_concurrent)
        INT_OPT("--max-length", 1, 1L << 24, max_length)
        INT_OPT("--payload-limit", 1, 1L << 40, o.payload_limit)
        INT_OPT("--timeout", 1, 86400, o.timeout_s)
        INT_OPT("--bidirectional-from", 0, 1L << 20, o.bidirectional_from)
        else if (!strcmp(opt, "--pooling") && v) {
            if (ll_pool_parse(argv[++i], &o.pool)) {
                fprintf(stderr, "lsllama serve: --pooling %s: expected last, mean, max or first\n", argv[i]);
                return 2;
            }
            pool_given = 1;
        } else if (!strcmp(opt, "--base-precision") && v) {
            if (!cli_parse_base_precision("serve", argv[++i], &a.base_precision)) return 2;
            a.base_precision_given = 1;
        } else if (!strcmp(opt, "--compute") && v) {
            if (!cli_parse_compute("serve", argv[++i], &a.compute)) return 2;
            a.compute_given = 1;
        } else if (opt[0] == '-' || a.model) {
            cli_unexpected("serve", opt, !v, SERVE_VALUE_OPTS);
            return 2;
        } else a.model = opt;
#undef INT_OPT
    }
    if (!a.model) {
        fprintf(stderr, "lsllama serve: MODEL is required (see --help)\n");
        return 2;
    }
    if (max_length > (long)o.max_batch_tokens) {
        fprintf(stderr, "lsllama serve: --max-length %ld is more than --max-batch-tokens %zu: an input of that length "
                        "could not be batched\n", max_length, o.max_batch_tokens);
        return 2;
    }
    const int classifier = a.adapter || ll_merged_is_classifier(a.model);
    cls_session ss = {0};
    ll_error err = {0};
    int rc;
    if (classifier) {
        a.max_length = max_length, a.max_length_given = max_length > 0;
        if ((rc = cls_session_open("serve", &a, &ss))) goto done;
        if (o.bidirectional_from >= 0) {
            fprintf(stderr, "lsllama serve: --bidirectional-from is for a bare model: a classifier attends as it was "
                            "trained\n");
            rc = 2;
            goto done;
        }
    } else {
        ll_load_options lo = {.base_precision = a.base_precision, .compute = a.compute};
        if (ll_model_load(&ss.m, a.model, &lo, &err) ||
            ll_tokenizer_load(&ss.tok, a.tokenizer ? a.tokenizer : a.model, &err)) {
            fprintf(stderr, "lsllama serve: %s\n", err.message);
            rc = 1;
            goto done;
        }
        cli_tokenizer_warning("serve", ss.tok);
        if (!cls_check_model_bounds("serve", max_length, max_length > 0, o.bidirectional_from, ss.m)) {
            rc = 2;
            goto done;
        }
    }
    const ll_config *cfg = ll_model_config(ss.m);
    if (o.bidirectional_from < 0) o.bidirectional_from = ll_config_default_bidirectional_from(cfg);
    if (!pool_given) {
        const ll_classifier_config *cc = ss.c ? ll_classifier_get_config(ss.c) : NULL;
        o.pool = cc && !cc->token_task ? cc->pool : LL_POOL_MEAN;
    }
    if (!max_length) {
        max_length = (long)o.max_batch_tokens;
        if (cfg->max_seq_len > 0 && cfg->max_seq_len < max_length) max_length = cfg->max_seq_len;
    }
    o.max_length = (int)max_length;
    char name[256];
    if (!o.served_name) o.served_name = base_name(a.adapter ? a.adapter : a.model, name, sizeof name);
    o.tokenizer_path = a.tokenizer ? a.tokenizer : a.model;
    const serve_model sm = {.m = ss.m, .c = ss.c, .map = ss.map, .tok = ss.tok};
    rc = serve_run(&sm, &o);
done:
    cls_session_close(&ss);
    return rc;
}
