/* lsllama generate MODEL: greedy decoding, for checking a model end to end
 * (classification never needs the LM head). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "lsllama.h"

int cmd_generate(int argc, char **argv) {
    ll_base_precision base_precision = LL_BASE_STORED;
    const char *path = NULL, *ids_arg = NULL;
    long steps = 32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: lsllama generate MODEL --ids \"ID ID ...\" [--steps N] [--base-precision P]\n\n"
                   "Greedy (temperature 0) decoding from the given prompt ids; prints the prompt and\n"
                   "generated ids on one line. Stops early at the end-of-sequence token.\n"
                   CLI_BASE_PRECISION_HELP "        (default stored)\n");
            return 0;
        } else if (!strcmp(a, "--base-precision") && val) {
            if (!cli_parse_base_precision("generate", argv[++i], &base_precision)) return 2;
        } else if (!strcmp(a, "--ids") && val) {
            ids_arg = argv[++i];
        } else if (!strcmp(a, "--steps") && val) {
            if (!cli_parse_int("generate", a, argv[++i], 1, 1 << 20, &steps)) return 2;
        } else if (a[0] == '-' || path) {
            cli_unexpected("generate", a, !val, "--ids --steps --base-precision");
            return 2;
        } else {
            path = a;
        }
    }
    if (!path || !ids_arg) {
        fprintf(stderr, "lsllama generate: MODEL and --ids are required (see --help)\n");
        return 2;
    }
    int32_t *ids = NULL;
    size_t cap = 0;
    char msg[256];
    long n = cli_parse_ids(ids_arg, &ids, &cap, msg, sizeof msg);
    if (n <= 0) {
        fprintf(stderr, "lsllama generate: --ids: %s\n", n < 0 ? msg : "no ids");
        free(ids);
        return 2;
    }
    ll_model *m;
    ll_error err = {0};
    ll_load_options lo = {.with_lm_head = 1, .base_precision = base_precision};
    if (ll_model_load(&m, path, &lo, &err)) {
        fprintf(stderr, "lsllama generate: %s\n", err.message);
        free(ids);
        return 1;
    }
    const ll_config *cfg = ll_model_config(m);
    for (long i = 0; i < n; i++)
        if (ids[i] >= cfg->vocab_size) {
            fprintf(stderr, "lsllama generate: --ids: token id %d (position %ld) is outside the vocabulary (0..%d)\n",
                    ids[i], i, cfg->vocab_size - 1);
            free(ids);
            ll_model_free(m);
            return 2;
        }
    /* the loop is bounded by what the model supports: prompt + steps within its context */
    if (cfg->max_seq_len > 0 && n + steps > cfg->max_seq_len) {
        if (n >= cfg->max_seq_len)
            fprintf(stderr, "lsllama generate: --ids: %ld prompt ids fill the model's context length %d\n", n,
                    cfg->max_seq_len);
        else
            fprintf(stderr, "lsllama generate: --steps %ld with %ld prompt ids exceeds the model's context length %d "
                    "(at most --steps %ld)\n", steps, n, cfg->max_seq_len, (long)cfg->max_seq_len - n);
        free(ids);
        ll_model_free(m);
        return 2;
    }
    int32_t *seq = malloc((size_t)(n + steps) * sizeof *seq);
    float *logits = malloc((size_t)cfg->vocab_size * sizeof *logits);
    int rc = !seq || !logits;
    if (rc) fprintf(stderr, "lsllama generate: out of memory\n");
    if (!rc) memcpy(seq, ids, (size_t)n * sizeof *seq);
    /* No KV cache: each step re-runs the prefix. Fine for checks; generation
     * is not what lsllama is for. */
    for (long s = 0; !rc && s < steps; s++) {
        int32_t starts[2] = {0, (int32_t)n};
        ll_batch b = {seq, starts, 1};
        ll_forward_options fo = {.bidirectional_from = cfg->n_layers};
        ll_forward_outputs out = {.logits_last = logits};
        if (ll_forward(m, &b, &fo, &out, &err)) {
            fprintf(stderr, "lsllama generate: %s\n", err.message);
            rc = 1;
            break;
        }
        if (!cli_all_finite(logits, (size_t)cfg->vocab_size)) {
            fprintf(stderr, "lsllama generate: step %ld: non-finite logits (model weights corrupt?)\n", s + 1);
            rc = 1;
            break;
        }
        int best = 0;
        for (int v = 1; v < cfg->vocab_size; v++)
            if (logits[v] > logits[best]) best = v;
        seq[n++] = best;
        if (best == cfg->eos_token_id) break;
    }
    if (!rc)
        for (long i = 0; i < n; i++) printf(i ? " %d" : "%d", seq[i]);
    if (!rc) putchar('\n');
    free(seq);
    free(logits);
    free(ids);
    ll_model_free(m);
    return rc;
}
