/* libFuzzer target: the token-classification readers (CoNLL, JSON Lines, raw
 * lines) on the input after two option bytes, then tag map build and mapping,
 * tokenization into windows of a small max length with a real tokenizer, and
 * the invariants: every word owned by exactly one window, every window 1..max
 * tokens, labels and word indices in range, batches and prediction collection
 * cover every word. The tokenizer is $LL_FUZZ_TOKENIZER, else
 * ../shared/models/stories260K/tok512.bin (run from the repository root);
 * without one only the readers run. Build: sh fuzz/build.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"

static ll_tokenizer *tok;
static ll_labelmap *names;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *p = getenv("LL_FUZZ_TOKENIZER");
    ll_error err;
    if (ll_tokenizer_load(&tok, p ? p : "../shared/models/stories260K/tok512.bin", &err)) {
        fprintf(stderr, "fuzz_token_data: no tokenizer (%s): readers only\n", err.message);
        tok = NULL;
    }
    static const char *const n[] = {"O", "B-PER", "I-PER", "B-LOC", "I-LOC"};
    if (ll_labelmap_from_names(&names, n, 5, &err)) abort();
    return 0;
}

static void check_tokenized(ll_dataset *ds, int max_length, const ll_labelmap *m) {
    int *owned = calloc(ds->n_words ? ds->n_words : 1, sizeof *owned);
    if (!owned) return;
    for (size_t i = 0; i < ds->n; i++) {
        const ll_example *e = &ds->ex[i];
        if (e->n_tok < 1 || e->n_tok > max_length) abort();
        if (e->own_lo < e->word_lo || e->own_hi > e->word_hi || e->own_lo >= e->own_hi) abort();
        for (int32_t w = e->own_lo; w < e->own_hi; w++) owned[w]++;
        for (int32_t t = 0; t < e->n_tok; t++) {
            int32_t l = ds->tok_labels[e->tok_off + (size_t)t], w = ds->tok_words[e->tok_off + (size_t)t];
            if (l != LL_IGNORE_LABEL && (l < 0 || !m || l >= m->n)) abort();
            if (w != -1 && (w < e->word_lo || w >= e->word_hi)) abort();
        }
    }
    for (size_t w = 0; w < ds->n_words; w++)
        if (owned[w] != 1) abort();
    free(owned);
    /* batches and collection: every word gets a prediction */
    const ll_labelmap *pm = m ? m : names;
    ll_batching_options bo = {.max_batch_tokens = 64, .shuffle = 1, .seed = 3};
    ll_batch_plan plan;
    ll_batch_buf buf = {0};
    ll_error err;
    int32_t *pred = malloc((ds->n_words ? ds->n_words : 1) * sizeof *pred);
    float *score = malloc((ds->n_words ? ds->n_words : 1) * sizeof *score);
    if (pred && score && ll_batch_plan_make(&plan, ds, &bo, &err) == 0) {
        for (size_t w = 0; w < ds->n_words; w++) pred[w] = -2;
        float *logits = calloc(plan.max_tokens * (size_t)pm->n + 1, sizeof *logits);
        for (size_t b = 0; logits && b < plan.n_batches; b++) {
            if (ll_batch_fill(&buf, ds, &plan, b, &err)) abort();
            if (ll_token_collect_batch(ds, &buf, logits, pm, pred, score, &err)) abort();
        }
        for (size_t w = 0; logits && w < ds->n_words; w++)
            if (pred[w] == -2) abort();
        free(logits);
        ll_batch_plan_free(&plan);
    }
    ll_batch_buf_free(&buf);
    free(pred);
    free(score);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const uint8_t f = data[0], g = data[1];
    ll_token_data_options o;
    ll_token_data_options_default(&o);
    static const ll_data_format fmts[4] = {LL_DATA_CONLL, LL_DATA_JSONL, LL_DATA_LINES, LL_DATA_CONLL};
    o.format = fmts[f & 3];
    o.skip_invalid = (f >> 2) & 1;
    o.any_tags = (f >> 3) & 1;
    if (f & 0x10) o.tag_column = 1;
    o.no_tags = (f >> 5) & 1;
    if (f & 0x40) o.tag_names = names;
    if (f & 0x80) { o.tokens_field = "w"; o.tags_field = "t"; }
    ll_dataset *ds = NULL;
    ll_error err;
    if (ll_token_dataset_load_memory(&ds, (const char *)data + 2, size - 2, "fuzz.conll", &o, &err)) return 0;
    for (size_t w = 0; w < ds->n_words; w++) (void)ll_word_raw_tag(ds, w);
    ll_labelmap *m = NULL;
    if (ds->has_labels && ll_labelmap_build(&m, ds, &err) == 0) {
        if (ll_dataset_apply_labels(ds, m, &err)) {
            ll_labelmap_free(m);
            ll_dataset_free(ds);
            return 0;
        }
        int64_t *counts = calloc((size_t)m->n, sizeof *counts);
        if (counts) ll_dataset_label_counts(ds, counts);
        free(counts);
    }
    if (tok) {
        const int max_length = 1 + (g & 15);
        ll_token_tokenize_options to = {.label_all_subtokens = (g >> 4) & 1, .own_tokens = (g >> 5) & 3};
        if (ll_token_dataset_tokenize(ds, tok, max_length, &to, &err) == 0) check_tokenized(ds, max_length, m);
    }
    ll_labelmap_free(m);
    ll_dataset_free(ds);
    return 0;
}
