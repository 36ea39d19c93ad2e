/* Id-for-id (and offset) parity of the C tokenizers with Hugging Face,
 * sentencepiece and llama2.c on whole datasets. The references are made by
 * tools/gen_fixtures_tokenizer.py into LL_BUILD_DIR/generated/tokenizer
 * (scripts/test.sh runs it before ctest); missing references fail the test. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsllama_tokenizer.h"
#include "test_util.h"

#define GEN LL_BUILD_DIR "/generated/tokenizer"


/* parse "1 2 3\t0-1 1-2 ..." */
static size_t parse_ref(char *line, int32_t *ids, int32_t *offs, int *has_offs) {
    char *tab = strchr(line, '\t');
    if (tab) *tab = 0;
    size_t n = 0;
    char *p = line, *e;
    for (;;) {
        long v = strtol(p, &e, 10);
        if (e == p) break;
        ids[n++] = (int32_t)v;
        p = e;
    }
    *has_offs = 0;
    if (tab && strcmp(tab + 1, "-") != 0) {
        *has_offs = 1;
        p = tab + 1;
        size_t k = 0;
        while (*p && k < 2 * n) {
            long a = strtol(p, &e, 10);
            if (e == p) break;
            p = e + 1; /* '-' */
            long b = strtol(p, &e, 10);
            offs[k++] = (int32_t)a;
            offs[k++] = (int32_t)b;
            p = e;
            while (*p == ' ') p++;
        }
    }
    return n;
}

static const char *SETS[] = {"sst2_train", "sst2_dev", "sst5_train", "sst5_dev", "sst5_test", "ag_news_test",
                             "conll_train", "conll_valid", "conll_test", "edge", NULL};

static size_t total_texts, total_tokens, total_bad;

static int is_decode_set(const char *set) {
    return !strcmp(set, "edge") || !strcmp(set, "sst2_dev") || !strcmp(set, "conll_valid");
}

/* decode the reference ids and compare with the reference decoder's text */
static void run_decode(const char *label, ll_tokenizer *t, const char *ref_name, const char *set) {
    char p1[1024], p2[1024];
    snprintf(p1, sizeof p1, GEN "/ref/%s/%s.ref", ref_name, set);
    snprintf(p2, sizeof p2, GEN "/dec/%s/%s.hex", ref_name, set);
    test_lines R, D;
    int ok1 = test_read_lines(p1, &R) == 0, ok2 = test_read_lines(p2, &D) == 0;
    CHECK_MSG(ok1 && ok2, "missing decode reference %s", p2);
    if (!ok1 || !ok2) {
        if (ok1) test_free_lines(&R);
        if (ok2) test_free_lines(&D);
        return;
    }
    int32_t *ids = malloc((1 << 16) * sizeof *ids), *offs = malloc((1 << 17) * sizeof *offs);
    char *want = malloc(1 << 20);
    size_t bad = 0;
    for (size_t i = 0; i < R.n && i < D.n; i++) {
        int has;
        size_t n = parse_ref(R.line[i], ids, offs, &has);
        size_t wl = test_unhex(D.line[i], want);
        char *got;
        size_t gl;
        ll_error err;
        if (ll_tokenizer_decode(t, ids, n, 0, &got, &gl, &err)) {
            bad++;
            continue;
        }
        if (gl != wl || memcmp(got, want, wl) != 0) {
            if (bad++ < 3) fprintf(stderr, "%s decode %s[%zu]: want '%.*s' got '%s'\n", label, set, i, (int)wl, want, got);
        }
        free(got);
    }
    printf("decode %-14s %-13s texts %6zu mismatches %zu\n", label, set, R.n, bad);
    CHECK_MSG(bad == 0, "%s decode %s: %zu mismatches", label, set, bad);
    free(ids);
    free(offs);
    free(want);
    test_free_lines(&R);
    test_free_lines(&D);
}

static void run_parity(const char *label, const char *tok_path, const char *ref_name, int check_offsets, int check_decode) {
    ll_tokenizer *t = NULL;
    ll_error err;
    int rc = ll_tokenizer_load(&t, tok_path, &err);
    CHECK_MSG(rc == 0, "%s: cannot load %s: %s", label, tok_path, err.message);
    if (rc) return;
    ll_encoding enc = {0};
    size_t cap = 1 << 16;
    int32_t *ids = malloc(cap * sizeof *ids), *offs = malloc(2 * cap * sizeof *offs);
    char *text = malloc(1 << 20);
    for (int s = 0; SETS[s]; s++) {
        char p1[1024], p2[1024];
        snprintf(p1, sizeof p1, GEN "/texts/%s.hex", SETS[s]);
        snprintf(p2, sizeof p2, GEN "/ref/%s/%s.ref", ref_name, SETS[s]);
        test_lines T, R;
        int ok1 = test_read_lines(p1, &T) == 0, ok2 = test_read_lines(p2, &R) == 0;
        CHECK_MSG(ok1 && ok2, "missing reference %s or %s (run tools/gen_fixtures_tokenizer.py --out %s)", p1, p2, GEN);
        if (!ok1 || !ok2) {
            if (ok1) test_free_lines(&T);
            if (ok2) test_free_lines(&R);
            continue;
        }
        CHECK_MSG(R.n <= T.n, "%s: more references than texts", p2);
        size_t n_texts = R.n < T.n ? R.n : T.n, n_tok = 0, bad_ids = 0, bad_offs = 0, printed = 0;
        for (size_t i = 0; i < n_texts; i++) {
            size_t tl = test_unhex(T.line[i], text);
            int has_offs;
            size_t rn = parse_ref(R.line[i], ids, offs, &has_offs);
            rc = ll_tokenizer_encode(t, text, tl, LL_TOK_DEFAULT, &enc, &err);
            if (rc) {
                CHECK_MSG(0, "%s %s[%zu]: encode failed: %s", label, SETS[s], i, err.message);
                bad_ids++;
                continue;
            }
            n_tok += rn;
            int same = enc.n == rn && memcmp(enc.ids, ids, rn * sizeof *ids) == 0;
            if (!same) {
                bad_ids++;
                if (printed++ < 3) {
                    fprintf(stderr, "%s %s[%zu] ids differ: text '%.*s'\n  want:", label, SETS[s], i,
                            (int)(tl > 200 ? 200 : tl), text);
                    for (size_t k = 0; k < rn && k < 40; k++) fprintf(stderr, " %d", ids[k]);
                    fprintf(stderr, "\n  got: ");
                    for (size_t k = 0; k < enc.n && k < 40; k++) fprintf(stderr, " %d", enc.ids[k]);
                    fprintf(stderr, "\n");
                }
                continue;
            }
            if (check_offsets && has_offs) {
                int oksame = 1;
                for (size_t k = 0; k < rn; k++)
                    if (enc.char_start[k] != offs[2 * k] || enc.char_end[k] != offs[2 * k + 1]) oksame = 0;
                if (!oksame) {
                    bad_offs++;
                    if (printed++ < 3) {
                        fprintf(stderr, "%s %s[%zu] offsets differ: text '%.*s'\n  want:", label, SETS[s], i,
                                (int)(tl > 200 ? 200 : tl), text);
                        for (size_t k = 0; k < rn && k < 20; k++) fprintf(stderr, " %d-%d", offs[2 * k], offs[2 * k + 1]);
                        fprintf(stderr, "\n  got: ");
                        for (size_t k = 0; k < enc.n && k < 20; k++)
                            fprintf(stderr, " %d-%d", enc.char_start[k], enc.char_end[k]);
                        fprintf(stderr, "\n");
                    }
                }
            }
        }
        printf("parity %-14s %-13s texts %6zu tokens %8zu id-mismatches %zu offset-mismatches %zu\n", label, SETS[s],
               n_texts, n_tok, bad_ids, bad_offs);
        CHECK_MSG(bad_ids == 0 && bad_offs == 0, "%s %s: %zu id and %zu offset mismatches", label, SETS[s], bad_ids,
                  bad_offs);
        total_texts += n_texts;
        total_tokens += n_tok;
        total_bad += bad_ids + bad_offs;
        if (check_decode && is_decode_set(SETS[s])) run_decode(label, t, ref_name, SETS[s]);
        test_free_lines(&T);
        test_free_lines(&R);
    }
    free(ids);
    free(offs);
    free(text);
    ll_encoding_free(&enc);
    ll_tokenizer_free(t);
}

/* word alignment vs Hugging Face char_to_token on CoNLL */
static void run_align(const char *label, const char *tok_path, const char *ref_name) {
    ll_tokenizer *t = NULL;
    ll_error err;
    if (ll_tokenizer_load(&t, tok_path, &err)) {
        CHECK_MSG(0, "%s: %s", label, err.message);
        return;
    }
    const char *splits[] = {"train", "valid", "test"};
    ll_encoding enc = {0};
    for (int s = 0; s < 3; s++) {
        char p1[1024], p2[1024];
        snprintf(p1, sizeof p1, GEN "/texts/conll_%s.hex", splits[s]);
        snprintf(p2, sizeof p2, GEN "/align/%s/conll_%s.ref", ref_name, splits[s]);
        test_lines T, R;
        int ok1 = test_read_lines(p1, &T) == 0, ok2 = test_read_lines(p2, &R) == 0;
        CHECK_MSG(ok1 && ok2, "missing alignment reference %s", p2);
        if (!ok1 || !ok2) continue;
        size_t bad = 0, n_words = 0;
        char *text = malloc(1 << 20);
        for (size_t i = 0; i < R.n && i < T.n; i++) {
            size_t tl = test_unhex(T.line[i], text);
            text[tl] = 0;
            /* split on single spaces: the words */
            const char *words[1024];
            size_t nw = 0;
            char *p = text;
            words[nw++] = p;
            for (char *q = text; *q; q++)
                if (*q == ' ' && nw < 1024) {
                    *q = 0;
                    words[nw++] = q + 1;
                }
            int32_t first[1024], end[1024];
            if (ll_tokenizer_align_words(t, words, nw, LL_TOK_DEFAULT, &enc, first, end, &err)) {
                bad++;
                continue;
            }
            char *r = R.line[i];
            int line_bad = 0;
            for (size_t w = 0; w < nw; w++) {
                int a, b, used;
                if (sscanf(r, "%d-%d%n", &a, &b, &used) == 2) {
                    if (first[w] != a || end[w] != b) line_bad = 1;
                    r += used;
                } else {
                    /* 'x': Hugging Face found no token for the word */
                    if (first[w] != end[w]) line_bad = 1;
                    while (*r && *r != ' ') r++;
                }
                while (*r == ' ') r++;
            }
            n_words += nw;
            if (line_bad && bad++ < 3) fprintf(stderr, "%s align conll_%s[%zu] differs: %s\n", label, splits[s], i, R.line[i]);
        }
        free(text);
        printf("align  %-14s conll_%-7s sentences %6zu words %7zu mismatches %zu\n", label, splits[s], R.n, n_words, bad);
        CHECK_MSG(bad == 0, "%s conll_%s: %zu alignment mismatches", label, splits[s], bad);
        test_free_lines(&T);
        test_free_lines(&R);
    }
    ll_encoding_free(&enc);
    ll_tokenizer_free(t);
}

/* A model file of the cache scripts/setup.sh fills (LSLLAMA_CACHE, else ~/.cache/lsllama). */
static void cached_model(char *path, size_t cap, const char *name) {
    const char *cache = getenv("LSLLAMA_CACHE");
    if (cache && *cache) snprintf(path, cap, "%s/models/%s", cache, name);
    else snprintf(path, cap, "%s/.cache/lsllama/models/%s", getenv("HOME"), name);
}

int main(void) {
    char gguf[2048];
    cached_model(gguf, sizeof gguf, "SmolLM2-135M-Instruct.Q4_1.gguf");
    /* the GGUF as llama.cpp maps tokenizer.ggml.pre = smollm (digits split) */
    run_parity("smollm2-gguf", gguf, "smollm2_llamacpp", 1, 1);
    /* Gemma 3's SentencePiece BPE (issue 13), from the GGUF (transformers' Gemma rules: space runs respelled as
     * U+2581 runs, merges in file order) and as the tokenizer.json transformers converts from it */
    cached_model(gguf, sizeof gguf, "gemma-3-270m-q4_k_m.gguf");
    run_parity("gemma3-gguf", gguf, "gemma3", 1, 1);
    run_parity("gemma3-json", GEN "/tok/gemma3/tokenizer.json", "gemma3", 1, 1);
    run_parity("smollm2-json", GEN "/tok/smollm2/tokenizer.json", "smollm2", 1, 1);
    run_parity("llama2-json", GEN "/tok/llama2/tokenizer.json", "llama2", 1, 1);
    run_parity("llama2-auto", GEN "/tok/llama2_auto/tokenizer.json", "llama2_auto", 1, 1);
    run_parity("llama2-model", LL_SHARED_DIR "/models/llama2-tokenizer/tokenizer.model", "llama2_spm", 0, 1);
    run_parity("tok512-bin", LL_SHARED_DIR "/models/stories260K/tok512.bin", "tok512", 0, 0);
    run_align("smollm2-json", GEN "/tok/smollm2", "smollm2");
    run_align("llama2-json", GEN "/tok/llama2", "llama2");
    run_align("gemma3-json", GEN "/tok/gemma3", "gemma3");
    printf("parity total: texts %zu tokens %zu mismatches %zu\n", total_texts, total_tokens, total_bad);
    return test_summary("test_tokenizer_parity");
}
