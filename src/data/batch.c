/* Tokenization with truncation, length-bucketed batch plans, packed batches. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 4096;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, nc * elem);
    if (!q) return -1;
    *p = q;
    *cap = nc;
    return 0;
}

/* ---- tokenization -------------------------------------------------------- */

int ll_dataset_tokenize(ll_dataset *ds, ll_tokenizer *tok, int max_length, ll_error *err) {
    if (ds->token_task) return ll_token_dataset_tokenize(ds, tok, max_length, NULL, err);
    if (max_length < 1) return ll_fail(err, LL_ERR_ARG, "--max-length %d: must be at least 1", max_length);
    ll_encoding enc = {0};
    int rc = 0;
    size_t w = 0;
    ds->tokens_len = 0;
    ds->n_truncated = 0;
    for (size_t i = 0; i < ds->n; i++) {
        ll_example e = ds->ex[i];
        rc = ll_tokenizer_encode(tok, ds->text + e.text_off, e.text_len, LL_TOK_DEFAULT, &enc, err);
        if (rc) {
            ll_fail_prefix(err, "%s:%d: ", ds->path, e.line);
            break;
        }
        const size_t n = enc.n;
        if (n == 0) {
            if ((rc = ll_data_bad_row(ds, err, e.line, "the text encodes to no tokens"))) break;
            continue;
        }
        if (ll_encoding_truncate(&enc, (size_t)max_length)) ds->n_truncated++;
        const size_t kept = enc.n;
        if (grow((void **)&ds->tokens, &ds->tokens_cap, ds->tokens_len + kept, sizeof *ds->tokens)) {
            rc = ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", ds->path);
            break;
        }
        memcpy(ds->tokens + ds->tokens_len, enc.ids, kept * sizeof *ds->tokens);
        e.tok_off = ds->tokens_len;
        e.n_tok = (int32_t)kept;
        e.n_tok_full = n > INT32_MAX ? INT32_MAX : (int32_t)n;
        ds->tokens_len += kept;
        ds->ex[w++] = e;
    }
    ll_encoding_free(&enc);
    if (rc) return rc;
    ds->n = w;
    if (!ds->n) return ll_fail(err, LL_ERR_FORMAT, "%s: no rows left (%zu skipped; first: %s)", ds->path, ds->n_skipped, ds->first_skip);
    ds->tokenized = 1;
    ds->max_length = max_length;
    return 0;
}

/* ---- batch plans ------------------------------------------------------------- */

static uint64_t below(uint64_t *st, uint64_t n) { /* uniform in [0, n) */
    uint64_t lim = -n % n, x;
    do x = ll_splitmix64_next(st);
    while (x < lim); /* reject the biased low range */
    return x % n;
}

typedef struct lkey { int32_t len, pos, idx; } lkey;

static int cmp_len(const void *a, const void *b) {
    const lkey *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

void ll_batch_plan_free(ll_batch_plan *p) {
    free(p->order);
    free(p->bounds);
    memset(p, 0, sizeof *p);
}

int ll_batch_plan_make(ll_batch_plan *plan, const ll_dataset *ds, const ll_batching_options *opt, ll_error *err) {
    memset(plan, 0, sizeof *plan);
    if (!ds->tokenized) return ll_fail(err, LL_ERR_ARG, "%s: batching needs tokenized data", ds->path);
    if (!opt || opt->max_batch_tokens == 0) return ll_fail(err, LL_ERR_ARG, "batch token budget must be at least 1");
    if (ds->n > INT32_MAX - 1) return ll_fail(err, LL_ERR_ARG, "%s: too many examples", ds->path);
    const size_t n = ds->n, budget = opt->max_batch_tokens;
    const size_t max_seqs = opt->max_batch_seqs ? opt->max_batch_seqs : SIZE_MAX;
    plan->order = malloc((n ? n : 1) * sizeof *plan->order);
    plan->bounds = malloc((n + 1) * sizeof *plan->bounds);
    lkey *keys = malloc((n ? n : 1) * sizeof *keys);
    if (!plan->order || !plan->bounds || !keys) {
        free(keys);
        ll_batch_plan_free(plan);
        return ll_fail(err, LL_ERR_NOMEM, "batch plan: out of memory");
    }
    int32_t *ord = plan->order;
    for (size_t i = 0; i < n; i++) ord[i] = (int32_t)i;
    size_t window = n ? n : 1;
    uint64_t st = 0;
    if (opt->shuffle) {
        st = opt->seed ^ 0x6a09e667f3bcc909ull;
        ll_splitmix64_next(&st);
        st ^= (opt->epoch + 1) * 0xD1B54A32D192ED03ull;
        for (size_t i = n; i > 1; i--) {
            size_t j = (size_t)below(&st, i);
            int32_t t = ord[i - 1];
            ord[i - 1] = ord[j];
            ord[j] = t;
        }
        /* window: bucket_batches x the typical number of examples per batch */
        size_t total = 0;
        for (size_t i = 0; i < n; i++) total += (size_t)ds->ex[i].n_tok;
        size_t mean = n ? (total + n - 1) / n : 1;
        size_t per = budget / (mean ? mean : 1);
        if (per < 1) per = 1;
        if (per > max_seqs) per = max_seqs;
        size_t bb = opt->bucket_batches ? opt->bucket_batches : 100;
        window = per > SIZE_MAX / bb ? SIZE_MAX : per * bb;
    }
    /* sort each window by length (ties: shuffled order), pack greedily */
    size_t nb = 0;
    plan->bounds[0] = 0;
    for (size_t w0 = 0; w0 < n; w0 += window) {
        size_t w1 = n - w0 < window ? n : w0 + window;
        if (opt->shuffle) {
            for (size_t i = w0; i < w1; i++) keys[i] = (lkey){ds->ex[ord[i]].n_tok, (int32_t)i, ord[i]};
            qsort(keys + w0, w1 - w0, sizeof *keys, cmp_len);
            for (size_t i = w0; i < w1; i++) ord[i] = keys[i].idx;
        }
        size_t tokens = 0, seqs = 0;
        for (size_t i = w0; i < w1; i++) {
            size_t len = (size_t)ds->ex[ord[i]].n_tok;
            if (seqs && (tokens + len > budget || seqs == max_seqs)) {
                plan->bounds[++nb] = (int32_t)i;
                tokens = seqs = 0;
            }
            tokens += len;
            seqs++;
        }
        if (seqs) plan->bounds[++nb] = (int32_t)w1;
    }
    plan->n_examples = n;
    plan->n_batches = nb;
    if (opt->shuffle && nb > 1) {
        /* shuffle the batch order: permute batch ids, then rewrite order */
        int32_t *perm = malloc(nb * sizeof *perm), *nord = malloc(n * sizeof *nord),
                *nbnd = malloc((nb + 1) * sizeof *nbnd);
        if (!perm || !nord || !nbnd) {
            free(perm); free(nord); free(nbnd); free(keys);
            ll_batch_plan_free(plan);
            return ll_fail(err, LL_ERR_NOMEM, "batch plan: out of memory");
        }
        for (size_t b = 0; b < nb; b++) perm[b] = (int32_t)b;
        for (size_t b = nb; b > 1; b--) {
            size_t j = (size_t)below(&st, b);
            int32_t t = perm[b - 1];
            perm[b - 1] = perm[j];
            perm[j] = t;
        }
        size_t k = 0;
        nbnd[0] = 0;
        for (size_t b = 0; b < nb; b++) {
            for (int32_t i = plan->bounds[perm[b]]; i < plan->bounds[perm[b] + 1]; i++) nord[k++] = ord[i];
            nbnd[b + 1] = (int32_t)k;
        }
        free(plan->order);
        free(plan->bounds);
        plan->order = nord;
        plan->bounds = nbnd;
        free(perm);
    }
    free(keys);
    uint64_t h = 1469598103934665603ull;
    for (size_t b = 0; b < nb; b++) {
        size_t tokens = 0, seqs = (size_t)(plan->bounds[b + 1] - plan->bounds[b]);
        for (int32_t i = plan->bounds[b]; i < plan->bounds[b + 1]; i++) {
            tokens += (size_t)ds->ex[plan->order[i]].n_tok;
            uint32_t v = (uint32_t)plan->order[i];
            for (int k = 0; k < 4; k++) h = (h ^ ((v >> (8 * k)) & 0xff)) * 1099511628211ull;
        }
        h = (h ^ 0x100u) * 1099511628211ull; /* batch boundary */
        if (tokens > plan->max_tokens) plan->max_tokens = tokens;
        if (seqs > plan->max_seqs) plan->max_seqs = seqs;
    }
    plan->hash = h;
    return 0;
}

/* ---- packed batches ----------------------------------------------------------- */

static int reserve(ll_batch_buf *b, size_t tokens, size_t seqs, size_t targets) {
    if (tokens > b->cap_tokens) {
        int32_t *t = realloc(b->tokens, tokens * sizeof *t);
        if (!t) return -1;
        b->tokens = t;
        int32_t *l = realloc(b->token_labels, tokens * sizeof *l);
        if (!l) return -1;
        b->token_labels = l;
        b->cap_tokens = tokens;
    }
    if (seqs > b->cap_seqs) {
        int32_t *s = realloc(b->seq_start, (seqs + 1) * sizeof *s);
        if (!s) return -1;
        b->seq_start = s;
        int32_t *l = realloc(b->labels, seqs * sizeof *l);
        if (!l) return -1;
        b->labels = l;
        int32_t *x = realloc(b->example_ids, seqs * sizeof *x);
        if (!x) return -1;
        b->example_ids = x;
        b->cap_seqs = seqs;
    }
    if (targets > b->cap_targets) {
        float *f = realloc(b->targets, targets * sizeof *f);
        if (!f) return -1;
        b->targets = f;
        b->cap_targets = targets;
    }
    return 0;
}

int ll_batch_buf_reserve(ll_batch_buf *b, size_t max_tokens, size_t max_seqs, int n_labels, ll_error *err) {
    size_t nl = n_labels > 0 ? (size_t)n_labels : 0;
    if (reserve(b, max_tokens, max_seqs, max_seqs * nl)) return ll_fail(err, LL_ERR_NOMEM, "batch: out of memory");
    return 0;
}

int ll_batch_fill(ll_batch_buf *b, const ll_dataset *ds, const ll_batch_plan *plan, size_t i, ll_error *err) {
    if (i >= plan->n_batches)
        return ll_fail(err, LL_ERR_ARG, "batch %zu out of range (%zu batches)", i, plan->n_batches);
    const int32_t *ids = plan->order + plan->bounds[i];
    const size_t ns = (size_t)(plan->bounds[i + 1] - plan->bounds[i]);
    size_t nt = 0;
    for (size_t s = 0; s < ns; s++) {
        if ((size_t)ids[s] >= ds->n) return ll_fail(err, LL_ERR_ARG, "batch plan does not fit the data (%s)", ds->path);
        nt += (size_t)ds->ex[ids[s]].n_tok;
    }
    const int multi = ds->mapped && ds->multi_label;
    const size_t nl = multi ? (size_t)ds->n_labels : 0;
    if (reserve(b, nt, ns, ns * nl)) return ll_fail(err, LL_ERR_NOMEM, "batch: out of memory");
    size_t k = 0;
    for (size_t s = 0; s < ns; s++) {
        const ll_example *e = &ds->ex[ids[s]];
        b->seq_start[s] = (int32_t)k;
        memcpy(b->tokens + k, ds->tokens + e->tok_off, (size_t)e->n_tok * sizeof *b->tokens);
        if (ds->token_task) {
            memcpy(b->token_labels + k, ds->tok_labels + e->tok_off, (size_t)e->n_tok * sizeof *b->token_labels);
        } else {
            for (int32_t t = 0; t < e->n_tok; t++) b->token_labels[k + (size_t)t] = LL_IGNORE_LABEL;
        }
        k += (size_t)e->n_tok;
        b->example_ids[s] = ids[s];
        b->labels[s] = ds->mapped ? e->label : -1;
        if (multi) {
            float *t = b->targets + s * nl;
            memset(t, 0, nl * sizeof *t);
            for (uint32_t j = 0; j < e->n_lab; j++) t[ds->labs[e->lab_off + j]] = 1.0f;
        }
    }
    b->seq_start[ns] = (int32_t)k;
    b->n_tokens = k;
    b->batch.tokens = b->tokens;
    b->batch.seq_start = b->seq_start;
    b->batch.n_seqs = (int)ns;
    return 0;
}

void ll_batch_buf_free(ll_batch_buf *b) {
    free(b->tokens);
    free(b->token_labels);
    free(b->seq_start);
    free(b->labels);
    free(b->example_ids);
    free(b->targets);
    memset(b, 0, sizeof *b);
}
