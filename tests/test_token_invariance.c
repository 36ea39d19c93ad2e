// LL_TEST_LABELS: slow
/* Padding and batching invariance of the token classifier on the real model
 * (SmolLM2-135M-Instruct Q4_1) and real CoNLL-2003 dev sentences: batches
 * are packed without padding and attention stays inside each sequence, so a
 * sentence's logits must not depend on what else is in its batch. (The
 * reference LS-unLLaMA code pads batches and, with the causal mask removed,
 * attends to the padding: its predictions change with the batch.)
 *
 * A token classifier with LoRA r=4 on q and v (B random, so the adapters
 * change the hidden states) and a random head with bias, in bidirectional,
 * causal and bidirectional-from-layer-15 modes:
 *  - 6 short and 6 long sentences, each window run alone (a batch of one) and
 *    in two packed batches, every short sentence at a different position in
 *    each (short before long in reversed order; the shorts side by side in
 *    the middle of the long ones): logits within TOL, and every token's
 *    argmax identical (where the top two logits of the alone run are more
 *    than 2 TOL apart: float noise may reorder a genuine tie);
 *  - control: a short sentence followed by a long one as ONE sequence (what
 *    attending to other tokens of the batch would do): causal mode keeps the
 *    short sentence's logits (a prefix), the bidirectional modes change them
 *    far beyond TOL, so the comparison above would see leakage;
 *  - ll_evaluate_tokens over the 12 sentences (file order: long, short, long,
 *    ...) with batch budgets of 64 and 4096 tokens (one batch): per-word
 *    predictions identical to those read from the alone runs (same tie
 *    rule), scores within TOL, and the same mean loss and entity F1.
 * TOL is relative to the largest logit (they reach about 5): 1e-4 x that.
 * OpenBLAS runs a batch of one and a packed batch through different gemm
 * paths, so the logits differ by float rounding (observed up to ~7e-5),
 * never by the O(1) a leak across sequences makes. */
#include <time.h>
#include <unistd.h>

#include "data/dataset.h"
#include "lsllama_tokenizer.h"
#include "train/classifier.h"
#include "train/trainer.h"
#include "test_util.h"

#define N_SHORT 6
#define N_LONG 6
#define N_EX (N_SHORT + N_LONG)
/* max abs logit difference allowed between batchings of the same window:
 * TOL_REL x the largest |logit| of the alone runs */
#define TOL_REL 1e-4
static double TOL;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static unsigned long long rng = 99;
static float frand(void) { /* uniform in [-1, 1) */
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
}

/* Append sentence s of src as CoNLL lines ("word tag"). */
static void append_sentence(char **buf, size_t *len, size_t *cap, const ll_dataset *src, size_t s) {
    const ll_sentence *st = &src->sent[s];
    for (int32_t w = st->word_off; w < st->word_off + st->n_words; w++) {
        const char *word = ll_word_text(src, (size_t)w), *tag = ll_word_raw_tag(src, (size_t)w);
        REQUIRE(tag);
        const size_t need = strlen(word) + strlen(tag) + 4;
        if (*len + need + 2 > *cap) {
            *cap = 2 * (*cap + need);
            *buf = realloc(*buf, *cap);
            REQUIRE(*buf);
        }
        *len += (size_t)sprintf(*buf + *len, "%s %s\n", word, tag);
    }
    (*buf)[(*len)++] = '\n';
    (*buf)[*len] = 0;
}

/* Run the examples ex[0..n) as one packed batch (merge: as ONE sequence);
 * the logits go to out [tokens, K]. */
static void run_batch(ll_classifier *c, const ll_dataset *ds, const int *ex, int n, int merge, float *out) {
    int32_t tokens[4096], starts[N_EX + 1];
    size_t T = 0;
    starts[0] = 0;
    for (int i = 0; i < n; i++) {
        const ll_example *e = &ds->ex[ex[i]];
        REQUIRE(T + (size_t)e->n_tok <= sizeof tokens / sizeof tokens[0]);
        memcpy(tokens + T, ll_example_tokens(ds, (size_t)ex[i]), (size_t)e->n_tok * sizeof(int32_t));
        T += (size_t)e->n_tok;
        starts[i + 1] = (int32_t)T;
    }
    if (merge) starts[1] = (int32_t)T;
    ll_batch b = {tokens, starts, merge ? 1 : n};
    ll_error err = {0};
    CHECK_MSG(ll_classifier_forward(c, &b, 0, 0, out, &err) == 0, "%s", err.message);
}

static int argmax(const float *z, int K) {
    int a = 0;
    for (int k = 1; k < K; k++)
        if (z[k] > z[a]) a = k;
    return a;
}

/* top logit minus the runner-up */
static double top_gap(const float *z, int K) {
    const int a = argmax(z, K);
    double g = INFINITY;
    for (int k = 0; k < K; k++)
        if (k != a && z[a] - z[k] < g) g = z[a] - z[k];
    return g;
}

static double min_gap = INFINITY; /* the smallest top-two gap seen in the alone runs */
static int near_ties;             /* tokens whose argmax is not compared (gap <= 2 TOL) */

/* Compare the logits of window `ex` in a batch (`got`) with its alone run;
 * returns the max abs difference, counts argmax mismatches. */
static double compare(const ll_dataset *ds, int ex, const float *got, const float *alone, int K, int *mismatch) {
    const size_t n = (size_t)ds->ex[ex].n_tok;
    for (size_t t = 0; t < n; t++) {
        const double g = top_gap(alone + t * K, K);
        if (g < min_gap) min_gap = g;
        if (g <= 2 * TOL) near_ties++;
        else if (argmax(got + t * K, K) != argmax(alone + t * K, K)) (*mismatch)++;
    }
    return max_abs_diff(got, alone, n * (size_t)K);
}

int main(void) {
    const double t_start = now_s();
    ll_error err = {0};
    const char *mpath = test_smollm2_path();
    if (access(mpath, R_OK) != 0) {
        fprintf(stderr, "%s missing (run scripts/setup.sh to fetch the model)\n", mpath);
        return 1;
    }
    ll_model *m;
    ll_tokenizer *tok;
    REQUIRE(ll_model_load(&m, mpath, NULL, &err) == 0);
    REQUIRE(ll_tokenizer_load(&tok, mpath, &err) == 0);
    const int L = ll_model_config(m)->n_layers;
    const size_t D = (size_t)ll_model_config(m)->dim;

    /* the CoNLL-2003 dev set: the tag set, and 6 short + 6 long sentences */
    ll_dataset *full;
    REQUIRE(ll_token_dataset_load(&full, LL_SHARED_DIR "/data/conll2003/valid.txt", NULL, &err) == 0);
    ll_labelmap *map;
    REQUIRE(ll_labelmap_build(&map, full, &err) == 0);
    const int K = map->n;
    CHECK(K == 9);
    size_t shorts[N_SHORT], longs[N_LONG];
    int ns = 0, nl = 0;
    for (size_t s = 0; s < full->n_sent && (ns < N_SHORT || nl < N_LONG); s++) {
        const int nw = full->sent[s].n_words;
        if (nw >= 4 && nw <= 8 && ns < N_SHORT) shorts[ns++] = s;
        else if (nw >= 20 && nw <= 28 && nl < N_LONG) longs[nl++] = s;
    }
    REQUIRE(ns == N_SHORT && nl == N_LONG);
    /* the small dataset: short i is example 2i + 1, long i example 2i */
    size_t cap = 1 << 14, len = 0;
    char *text = malloc(cap);
    text[0] = 0;
    for (int i = 0; i < N_SHORT; i++) {
        append_sentence(&text, &len, &cap, full, longs[i]);
        append_sentence(&text, &len, &cap, full, shorts[i]);
    }
    ll_dataset *ds;
    REQUIRE(ll_token_dataset_load_memory(&ds, text, len, "conll2003-valid-subset", NULL, &err) == 0);
    REQUIRE(ll_dataset_apply_labels(ds, map, &err) == 0);
    REQUIRE(ll_token_dataset_tokenize(ds, tok, 256, NULL, &err) == 0);
    REQUIRE(ds->n == N_EX && ds->n_split == 0); /* one window per sentence */
    int short_ex[N_SHORT], long_ex[N_LONG];
    size_t n_tokens = 0;
    for (int i = 0; i < N_SHORT; i++) long_ex[i] = 2 * i, short_ex[i] = 2 * i + 1;
    for (size_t i = 0; i < ds->n; i++) n_tokens += (size_t)ds->ex[i].n_tok;
    printf("%d short windows (%d..%d tokens), %d long (%d..%d tokens), %zu tokens\n", N_SHORT,
           ds->ex[short_ex[0]].n_tok, ds->ex[short_ex[N_SHORT - 1]].n_tok, N_LONG, ds->ex[long_ex[0]].n_tok,
           ds->ex[long_ex[N_LONG - 1]].n_tok, n_tokens);
    for (int i = 0; i < N_SHORT; i++) CHECK(ds->ex[short_ex[i]].n_tok < ds->ex[long_ex[i]].n_tok);

    /* packed orders (the file order, long before short, is ll_evaluate_tokens'
     * one batch below): short before long, reversed; all shorts side by side
     * in the middle of the long ones */
    int order_b[N_EX], order_c[N_EX];
    for (int i = 0; i < N_SHORT; i++)
        order_b[2 * i] = short_ex[N_SHORT - 1 - i], order_b[2 * i + 1] = long_ex[N_SHORT - 1 - i];
    for (int i = 0; i < N_LONG / 2; i++) order_c[i] = long_ex[i], order_c[N_EX - 1 - i] = long_ex[N_LONG - 1 - i];
    for (int i = 0; i < N_SHORT; i++) order_c[N_LONG / 2 + i] = short_ex[(i * 5) % N_SHORT];
    const int *orders[2] = {order_b, order_c};

    const struct {
        const char *name;
        int from;
    } modes[] = {{"bidirectional", 0}, {"causal", L}, {"bidir_from_15", 15}};
    float *alone = malloc(n_tokens * K * sizeof(float)), *packed = malloc(n_tokens * K * sizeof(float));
    size_t off[N_EX];
    off[0] = 0;
    for (int i = 1; i < N_EX; i++) off[i] = off[i - 1] + (size_t)ds->ex[i - 1].n_tok;
    int32_t *pred[2], *pred_alone = malloc(ds->n_words * sizeof(int32_t));
    float *score[2], *score_alone = malloc(ds->n_words * sizeof(float));
    for (int k = 0; k < 2; k++) {
        pred[k] = malloc(ds->n_words * sizeof(int32_t));
        score[k] = malloc(ds->n_words * sizeof(float));
    }
    for (size_t mi = 0; mi < sizeof modes / sizeof modes[0]; mi++) {
        const double t0 = now_s();
        ll_classifier_config cc = {.n_labels = K, .bidirectional_from = modes[mi].from, .head_bias = 1, .lora_r = 4,
                                   .lora_alpha = 8, .lora_targets = (1u << LL_LORA_Q) | (1u << LL_LORA_V),
                                   .token_task = 1, .head_dropout = 0.1f};
        ll_classifier *c;
        REQUIRE(ll_classifier_create(&c, m, &cc, 5, &err) == 0);
        rng = 99; /* the same adapters and head in every mode */
        for (size_t v = 0; v < c->n_views; v++)
            if (strstr(c->views[v].name, "lora_B"))
                for (int64_t i = 0; i < c->views[v].rows * c->views[v].cols; i++) c->views[v].data[i] = 0.05f * frand();
        for (size_t i = 0; i < (size_t)K * D; i++) c->head_w[i] = 0.05f * frand();
        for (int k = 0; k < K; k++) c->head_b[k] = 0.5f * frand();

        /* every window alone */
        for (int i = 0; i < N_EX; i++) run_batch(c, ds, &i, 1, 0, alone + off[i] * K);
        const double scale = max_abs(alone, n_tokens * K);
        CHECK(scale > 1.0); /* the head is not negligible */
        TOL = TOL_REL * scale;
        min_gap = INFINITY, near_ties = 0;
        if (mi == 0) { /* the adapters matter: B = 0 changes the logits */
            float *noB = malloc(n_tokens * K * sizeof(float)), *saveB = malloc(c->n_params * sizeof(float));
            memcpy(saveB, c->params, c->n_params * sizeof(float));
            for (size_t v = 0; v < c->n_views; v++)
                if (strstr(c->views[v].name, "lora_B"))
                    memset(c->views[v].data, 0, (size_t)(c->views[v].rows * c->views[v].cols) * sizeof(float));
            run_batch(c, ds, &short_ex[0], 1, 0, noB);
            const double dl = max_abs_diff(noB, alone + off[short_ex[0]] * K, (size_t)ds->ex[short_ex[0]].n_tok * K);
            CHECK_MSG(dl > 100 * TOL, "%s: LoRA changes the logits by only %.3g", modes[mi].name, dl);
            memcpy(c->params, saveB, c->n_params * sizeof(float));
            free(noB);
            free(saveB);
        }

        /* packed batches in two orders */
        double worst_short = 0, worst_long = 0;
        int mismatch = 0;
        for (int o = 0; o < 2; o++) {
            run_batch(c, ds, orders[o], N_EX, 0, packed);
            size_t row = 0;
            for (int j = 0; j < N_EX; j++) {
                const int ex = orders[o][j];
                const double d = compare(ds, ex, packed + row * K, alone + off[ex] * K, K, &mismatch);
                if (ex % 2) worst_short = d > worst_short ? d : worst_short;
                else worst_long = d > worst_long ? d : worst_long;
                CHECK_MSG(d <= TOL, "%s order %d: window %d (%d tokens) at position %d: max abs logit difference %.3g "
                          "> %.3g", modes[mi].name, o, ex, ds->ex[ex].n_tok, j, d, TOL);
                row += (size_t)ds->ex[ex].n_tok;
            }
        }
        CHECK_MSG(mismatch == 0, "%s: %d tokens change their argmax with the batch", modes[mi].name, mismatch);

        /* control: short sentence + long sentence as one sequence */
        double leak = INFINITY;
        for (int i = 0; i < 2; i++) {
            const int pair[2] = {short_ex[i], long_ex[i]};
            run_batch(c, ds, pair, 2, 1, packed);
            const double d = max_abs_diff(packed, alone + off[short_ex[i]] * K, (size_t)ds->ex[short_ex[i]].n_tok * K);
            if (d < leak) leak = d;
        }
        if (modes[mi].from >= L)
            CHECK_MSG(leak <= TOL, "causal: a prefix's logits changed by %.3g", leak);
        else
            CHECK_MSG(leak > 100 * TOL, "%s: attending to the next sentence changed the logits by only %.3g",
                      modes[mi].name, leak);

        /* ll_evaluate_tokens with two batch budgets (64: several batches of
         * one long and one short window, or one long alone; 4096: one batch) */
        const size_t budgets[2] = {64, 4096};
        double losses[2];
        ll_ner_report rep[2];
        for (int k = 0; k < 2; k++)
            CHECK_MSG(ll_evaluate_tokens(c, ds, map, budgets[k], &rep[k], &losses[k], pred[k], score[k], &err) == 0,
                      "%s", err.message);
        for (int i = 0; i < N_EX; i++)
            REQUIRE(ll_token_collect(ds, (size_t)i, alone + off[i] * K, map, pred_alone, score_alone, &err) == 0);
        double score_diff = 0, alone_loss = 0;
        int word_mismatch = 0, n_lab = 0;
        for (int i = 0; i < N_EX; i++)
            for (int32_t t = 0; t < ds->ex[i].n_tok; t++) {
                const int32_t y = ds->tok_labels[ds->ex[i].tok_off + (size_t)t];
                if (y < 0) continue;
                const float *z = alone + (off[i] + (size_t)t) * K;
                double se = 0;
                for (int k = 0; k < K; k++) se += exp((double)z[k]);
                alone_loss += log(se) - z[y];
                n_lab++;
            }
        alone_loss /= n_lab;
        for (int k = 0; k < 2; k++) {
            for (size_t w = 0; w < ds->n_words; w++) {
                /* ll_evaluate_tokens maps "no token" (-1) to O's id */
                const int32_t pa = pred_alone[w] < 0 ? ds->o_label : pred_alone[w];
                const ll_word *wd = &ds->words[w];
                const int tie = wd->first >= 0 &&
                                top_gap(alone + (off[wd->owner] + (size_t)wd->first) * K, K) <= 2 * TOL;
                if (pred[k][w] != pa && !tie) word_mismatch++;
                const double d = fabs((double)score[k][w] - score_alone[w]);
                if (d > score_diff) score_diff = d;
            }
            CHECK_MSG(fabs(losses[k] - alone_loss) <= TOL, "%s: mean loss %.9g (budget %zu) vs %.9g (alone)",
                      modes[mi].name, losses[k], budgets[k], alone_loss);
        }
        CHECK(rep[1].micro_f1 == rep[0].micro_f1 && rep[1].n_tokens_correct == rep[0].n_tokens_correct);
        for (int k = 0; k < 2; k++) ll_ner_report_free(&rep[k]);
        CHECK_MSG(word_mismatch == 0, "%s: %d word predictions depend on the batch budget", modes[mi].name,
                  word_mismatch);
        CHECK_MSG(score_diff <= TOL, "%s: word scores differ by %.3g", modes[mi].name, score_diff);
        printf("%-14s packed vs alone: max abs logit difference short %.3g, long %.3g (TOL %.3g, logits up to "
               "%.3g); argmax mismatches %d (near ties skipped %d, smallest top-two gap %.3g); short+long as one "
               "sequence: min change %.3g; evaluate budgets 64/4096: word mismatches %d, max score difference %.3g, "
               "loss %.7f/%.7f (alone %.7f)  (%.1f s)\n",
               modes[mi].name, worst_short, worst_long, TOL, scale, mismatch, near_ties, min_gap, leak, word_mismatch,
               score_diff, losses[0], losses[1], alone_loss, now_s() - t0);
        ll_classifier_free(c);
    }
    for (int k = 0; k < 2; k++) free(pred[k]), free(score[k]);
    free(pred_alone);
    free(score_alone);
    free(alone);
    free(packed);
    free(text);
    ll_dataset_free(ds);
    ll_dataset_free(full);
    ll_labelmap_free(map);
    ll_tokenizer_free(tok);
    ll_model_free(m);
    printf("total %.1f s\n", now_s() - t_start);
    return test_summary("test_token_invariance");
}
