/* lsllama embed MODEL: pooled final hidden states for token-id sequences. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "lsllama.h"
#include "lsllama_tokenizer.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: lsllama embed MODEL [--pool last|mean|max|first] [--mask causal|bidirectional]\n"
            "                         [--bidirectional-from K] [--batch-tokens N] [--input FILE]\n"
            "                         [--text [--tokenizer PATH]] [--base-precision P] [--compute f32|bf16]\n\n"
            "Reads token-id sequences, one per line (ids separated by spaces), from FILE or stdin and\n"
            "writes one line per sequence: the pooled final-norm hidden state, values separated by spaces.\n"
            "  --text               input lines are text, encoded with the model's own tokenizer (GGUF\n"
            "                       metadata or the folder's tokenizer.json), or with --tokenizer PATH\n"
            "  --pool               last (default), mean, max or first token\n"
            "  --mask               causal (default; bidirectional for a model whose config sets\n"
            "                       use_bidirectional_attention) or bidirectional attention in every layer\n"
            "  --bidirectional-from causal in layers < K, bidirectional from layer K on (0 = all)\n"
            "  --batch-tokens       pack sequences into batches of about N tokens (default 2048)\n"
            "  " CLI_BASE_PRECISION_HELP "        (default stored)\n"
            "  " CLI_COMPUTE_HELP);
}

typedef struct pending {
    int32_t *tokens;
    int32_t *seq_start;
    long *lineno;       /* each sequence's input line */
    size_t n_tokens, cap_tokens;
    int n_seqs, cap_seqs;
} pending;

/* Runs the pending sequences and writes their vectors; stops at a non-finite
 * value (never printed as nan) or a failed write. */
static int flush(ll_model *m, pending *b, const ll_forward_options *fo, ll_pool pool, float **pooled, size_t *cap,
                 const char *name) {
    if (b->n_seqs == 0) return 0;
    const size_t D = (size_t)ll_model_config(m)->dim;
    if ((size_t)b->n_seqs * D > *cap) {
        *cap = (size_t)b->n_seqs * D;
        free(*pooled);
        *pooled = malloc(*cap * sizeof(float));
        if (!*pooled) {
            fprintf(stderr, "lsllama embed: out of memory\n");
            return 1;
        }
    }
    ll_batch batch = {b->tokens, b->seq_start, b->n_seqs};
    ll_forward_outputs out = {.pooled = *pooled, .pool = pool};
    ll_error err = {0};
    if (ll_forward(m, &batch, fo, &out, &err)) {
        fprintf(stderr, "lsllama embed: %s\n", err.message);
        return 1;
    }
    for (int s = 0; s < b->n_seqs; s++) {
        const float *v = *pooled + (size_t)s * D;
        if (!cli_all_finite(v, D)) {
            fprintf(stderr, "lsllama embed: %s:%ld: non-finite hidden state (model weights corrupt?)\n", name,
                    b->lineno[s]);
            return 1;
        }
        for (size_t i = 0; i < D; i++) printf(i ? " %.7g" : "%.7g", v[i]);
        putchar('\n');
        if (!cli_output_ok("embed", stdout, "standard output")) return 1;
    }
    b->n_seqs = 0;
    b->n_tokens = 0;
    return 0;
}

int cmd_embed(int argc, char **argv) {
    ll_load_options lo = {0};
    const char *path = NULL, *input = NULL, *tok_path = NULL;
    int text_mode = 0;
    ll_pool pool = LL_POOL_LAST;
    int bidirectional = -1; /* -1: no --mask (the model's default) */
    long bidir_from = -1, batch_tokens = 2048;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--pool") && val) {
            i++;
            if (ll_pool_parse(val, &pool)) {
                fprintf(stderr, "lsllama embed: --pool must be last, mean, max or first, got '%s'\n", val);
                return 2;
            }
        } else if (!strcmp(a, "--mask") && val) {
            i++;
            ll_mask mask;
            if (!ll_mask_parse(val, &mask)) bidirectional = mask == LL_MASK_BIDIRECTIONAL;
            else {
                fprintf(stderr, "lsllama embed: --mask must be causal or bidirectional, got '%s'\n", val);
                return 2;
            }
        } else if (!strcmp(a, "--bidirectional-from") && val) {
            i++;
            if (!cli_parse_int("embed", a, val, 0, 1 << 20, &bidir_from)) return 2;
        } else if (!strcmp(a, "--batch-tokens") && val) {
            i++;
            if (!cli_parse_int("embed", a, val, 1, 1 << 24, &batch_tokens)) return 2;
        } else if (!strcmp(a, "--text")) {
            text_mode = 1;
        } else if (!strcmp(a, "--tokenizer") && val) {
            tok_path = argv[++i];
            text_mode = 1;
        } else if (!strcmp(a, "--input") && val) {
            input = argv[++i];
        } else if (!strcmp(a, "--base-precision") && val) {
            if (!cli_parse_base_precision("embed", argv[++i], &lo.base_precision)) return 2;
        } else if (!strcmp(a, "--compute") && val) {
            if (!cli_parse_compute("embed", argv[++i], &lo.compute)) return 2;
        } else if (a[0] == '-' || path) {
            cli_unexpected("embed", a, !val, "--pool --mask --bidirectional-from --batch-tokens --tokenizer --input --base-precision "
                          "--compute");
            return 2;
        } else {
            path = a;
        }
    }
    if (!path) {
        fprintf(stderr, "lsllama embed: missing MODEL (see --help)\n");
        return 2;
    }
    FILE *in = stdin;
    if (input && !(in = fopen(input, "r"))) {
        fprintf(stderr, "lsllama embed: --input %s: %s\n", input, strerror(errno));
        return 1;
    }
    ll_model *m;
    ll_error err = {0};
    if (ll_model_load(&m, path, &lo, &err)) {
        fprintf(stderr, "lsllama embed: %s\n", err.message);
        if (in != stdin) fclose(in);
        return 1;
    }
    const ll_config *cfg = ll_model_config(m);
    if (bidir_from > cfg->n_layers) {
        fprintf(stderr, "lsllama embed: --bidirectional-from %ld exceeds the %d layers\n", bidir_from, cfg->n_layers);
        ll_model_free(m);
        return 2;
    }
    ll_tokenizer *tok = NULL;
    ll_encoding enc = {0};
    if (text_mode && ll_tokenizer_load(&tok, tok_path ? tok_path : path, &err)) {
        fprintf(stderr, "lsllama embed: %s\n", err.message);
        ll_model_free(m);
        if (in != stdin) fclose(in);
        return 1;
    }
    if (tok) cli_tokenizer_warning("embed", tok);
    ll_forward_options fo = {.bidirectional_from = bidir_from >= 0   ? (int)bidir_from
                                                   : bidirectional > 0 ? 0
                                                   : bidirectional == 0 ? cfg->n_layers
                                                                        : ll_config_default_bidirectional_from(cfg)};
    pending b = {0};
    char *line = NULL;
    size_t line_cap = 0, ids_cap = 0, pooled_cap = 0;
    int32_t *ids = NULL;
    float *pooled = NULL;
    long n, lineno = 0;
    int rc = 0;
    const char *name = input ? input : "<stdin>";
    while (!rc && (n = cli_getline(&line, &line_cap, in)) >= 0) {
        lineno++;
        char msg[256];
        long k;
        if (tok) {
            if (ll_tokenizer_encode(tok, line, (size_t)n, LL_TOK_DEFAULT, &enc, &err)) {
                fprintf(stderr, "lsllama embed: %s:%ld: %s\n", name, lineno, err.message);
                rc = 1;
                break;
            }
            if (enc.n > ids_cap) {
                int32_t *ni = realloc(ids, enc.n * sizeof *ni);
                if (!ni) {
                    fprintf(stderr, "lsllama embed: out of memory\n");
                    rc = 1;
                    break;
                }
                ids = ni;
                ids_cap = enc.n;
            }
            memcpy(ids, enc.ids, enc.n * sizeof *ids);
            k = (long)enc.n;
        } else {
            k = cli_parse_ids(line, &ids, &ids_cap, msg, sizeof msg);
        }
        if (k < 0) {
            fprintf(stderr, "lsllama embed: %s:%ld: %s\n", name, lineno, msg);
            rc = 1;
            break;
        }
        if (k == 0) {
            fprintf(stderr, "lsllama embed: %s:%ld: empty sequence%s\n", name, lineno,
                    tok ? " (the text encodes to no tokens)" : "");
            rc = 1;
            break;
        }
        for (long j = 0; j < k; j++)
            if (ids[j] >= cfg->vocab_size) {
                fprintf(stderr, "lsllama embed: %s:%ld: token id %d is outside the vocabulary (0..%d)\n", name, lineno,
                        ids[j], cfg->vocab_size - 1);
                rc = 1;
            }
        if (rc) break;
        if (cfg->max_seq_len > 0 && k > cfg->max_seq_len) {
            fprintf(stderr, "lsllama embed: %s:%ld: %ld tokens exceed the model's context length %d\n", name, lineno, k,
                    cfg->max_seq_len);
            rc = 1;
            break;
        }
        if (b.n_tokens > 0 && b.n_tokens + (size_t)k > (size_t)batch_tokens)
            rc = flush(m, &b, &fo, pool, &pooled, &pooled_cap, name);
        if (rc) break;
        if (b.n_tokens + (size_t)k > b.cap_tokens || b.n_seqs + 2 > b.cap_seqs) {
            b.cap_tokens = 2 * (b.n_tokens + (size_t)k);
            b.cap_seqs = 2 * (b.n_seqs + 2);
            int32_t *t = realloc(b.tokens, b.cap_tokens * sizeof *t), *s = realloc(b.seq_start, (size_t)b.cap_seqs * sizeof *s);
            long *l = realloc(b.lineno, (size_t)b.cap_seqs * sizeof *l);
            if (t) b.tokens = t;
            if (s) b.seq_start = s;
            if (l) b.lineno = l;
            if (!t || !s || !l) {
                fprintf(stderr, "lsllama embed: out of memory\n");
                rc = 1;
                break;
            }
        }
        b.seq_start[b.n_seqs] = (int32_t)b.n_tokens;
        b.lineno[b.n_seqs] = lineno;
        memcpy(b.tokens + b.n_tokens, ids, (size_t)k * sizeof *ids);
        b.n_tokens += (size_t)k;
        b.n_seqs++;
        b.seq_start[b.n_seqs] = (int32_t)b.n_tokens;
    }
    if (!rc && ferror(in)) {
        fprintf(stderr, "lsllama embed: error reading %s: %s\n", name, strerror(errno));
        rc = 1;
    }
    if (!rc) rc = flush(m, &b, &fo, pool, &pooled, &pooled_cap, name);
    free(line);
    free(ids);
    free(pooled);
    ll_encoding_free(&enc);
    ll_tokenizer_free(tok);
    free(b.tokens);
    free(b.seq_start);
    free(b.lineno);
    ll_model_free(m);
    if (in != stdin) fclose(in);
    return rc;
}
