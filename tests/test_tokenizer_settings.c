/* Every tokenizer.json setting lsllama implements, id-for-id and
 * offset-for-offset against Hugging Face `tokenizers` on an edge corpus, and
 * every setting it refuses refused by name (key and value in the message).
 * References: tools/gen_fixtures_tokenizer_settings.py into
 * LL_BUILD_DIR/generated/tokenizer_settings (scripts/test.sh runs it before
 * ctest); missing references fail the test. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsllama_tokenizer.h"
#include "test_util.h"

#define GEN LL_BUILD_DIR "/generated/tokenizer_settings"


/* "ids\tS-E S-E ..." -> n tokens */
static size_t parse_ref(char *line, int32_t *ids, int32_t *offs, size_t cap) {
    char *tab = strchr(line, '\t');
    if (tab) *tab = 0;
    size_t n = 0;
    char *p = line, *e;
    for (;;) {
        long v = strtol(p, &e, 10);
        if (e == p || n == cap) break;
        ids[n++] = (int32_t)v;
        p = e;
    }
    p = tab ? tab + 1 : "";
    for (size_t k = 0; k < n; k++) {
        offs[2 * k] = (int32_t)strtol(p, &e, 10);
        p = e + 1;
        offs[2 * k + 1] = (int32_t)strtol(p, &e, 10);
        p = e;
    }
    return n;
}

static void run_case(const char *name, const test_lines *T) {
    char path[1024];
    snprintf(path, sizeof path, GEN "/%s.json", name);
    ll_tokenizer *t = NULL;
    ll_error err;
    if (ll_tokenizer_load(&t, path, &err)) {
        CHECK_MSG(0, "%s: load failed: %s", name, err.message);
        return;
    }
    snprintf(path, sizeof path, GEN "/%s.ref", name);
    test_lines R;
    if (test_read_lines(path, &R)) {
        CHECK_MSG(0, "missing reference %s", path);
        ll_tokenizer_free(t);
        return;
    }
    CHECK_MSG(R.n == T->n, "%s: %zu references for %zu texts", name, R.n, T->n);
    size_t cap = 1 << 16, bad = 0;
    int32_t *ids = malloc(cap * sizeof *ids), *offs = malloc(2 * cap * sizeof *offs);
    char *text = malloc(1 << 16);
    ll_encoding enc = {0};
    for (size_t i = 0; i < R.n && i < T->n; i++) {
        size_t tl = test_unhex(T->line[i], text);
        size_t rn = parse_ref(R.line[i], ids, offs, cap);
        if (ll_tokenizer_encode(t, text, tl, LL_TOK_DEFAULT, &enc, &err)) {
            CHECK_MSG(0, "%s[%zu]: encode failed: %s", name, i, err.message);
            continue;
        }
        int same = enc.n == rn && memcmp(enc.ids, ids, rn * sizeof *ids) == 0;
        for (size_t k = 0; same && k < rn; k++)
            if (enc.char_start[k] != offs[2 * k] || enc.char_end[k] != offs[2 * k + 1]) same = 0;
        if (!same && bad++ < 2) {
            fprintf(stderr, "%s[%zu] differs: text '%.*s'\n  want:", name, i, (int)(tl > 80 ? 80 : tl), text);
            for (size_t k = 0; k < rn && k < 16; k++) fprintf(stderr, " %d(%d-%d)", ids[k], offs[2 * k], offs[2 * k + 1]);
            fprintf(stderr, "\n  got: ");
            for (size_t k = 0; k < enc.n && k < 16; k++)
                fprintf(stderr, " %d(%d-%d)", enc.ids[k], enc.char_start[k], enc.char_end[k]);
            fprintf(stderr, "\n");
        }
    }
    printf("settings %-36s texts %4zu mismatches %zu\n", name, R.n, bad);
    CHECK_MSG(bad == 0, "%s: %zu of %zu texts differ from tokenizers", name, bad, R.n);
    free(ids);
    free(offs);
    free(text);
    ll_encoding_free(&enc);
    test_free_lines(&R);
    ll_tokenizer_free(t);
}

/* issue 11's headline: "the movie" with ignore_merges -> the, Ġmovie */
static void headline(void) {
    ll_tokenizer *t = NULL;
    ll_error err;
    int rc = ll_tokenizer_load(&t, GEN "/issue_ignore_merges.json", &err);
    CHECK_MSG(rc == 0, "issue_ignore_merges: %s", rc ? err.message : "");
    if (rc) return;
    ll_encoding enc = {0};
    CHECK(ll_tokenizer_encode(t, "the movie", 9, LL_TOK_DEFAULT, &enc, &err) == 0);
    CHECK_MSG(enc.n == 2, "the movie: %zu tokens, want 2", enc.n);
    if (enc.n == 2) {
        size_t l0, l1;
        const char *p0 = ll_tokenizer_piece(t, enc.ids[0], &l0), *p1 = ll_tokenizer_piece(t, enc.ids[1], &l1);
        CHECK(l0 == 3 && !memcmp(p0, "the", 3));
        CHECK(l1 == 7 && !memcmp(p1, "\xC4\xA0movie", 7));
        CHECK(enc.char_start[1] == 3 && enc.char_end[1] == 9);
    }
    ll_encoding_free(&enc);
    ll_tokenizer_free(t);
}

static void refusals(void) {
    test_lines L;
    if (test_read_lines(GEN "/REFUSED", &L)) {
        CHECK_MSG(0, "missing %s", GEN "/REFUSED");
        return;
    }
    for (size_t i = 0; i < L.n; i++) {
        char *f[4] = {L.line[i], NULL, NULL, NULL};
        for (int k = 1; k < 4 && f[k - 1]; k++) {
            char *tab = strchr(f[k - 1], '\t');
            if (tab) *tab = 0, f[k] = tab + 1;
        }
        char path[1024];
        snprintf(path, sizeof path, GEN "/refuse/%s.json", f[0]);
        ll_tokenizer *t = NULL;
        ll_error err;
        int rc = ll_tokenizer_load(&t, path, &err);
        CHECK_MSG(rc == LL_ERR_UNSUPPORTED, "%s: loaded (rc %d), want LL_ERR_UNSUPPORTED", f[0], rc);
        if (rc == 0) {
            ll_tokenizer_free(t);
            continue;
        }
        for (int k = 1; k < 4 && f[k]; k++)
            CHECK_MSG(strstr(err.message, f[k]) != NULL, "%s: message '%s' does not name '%s'", f[0], err.message, f[k]);
        CHECK_MSG(strstr(err.message, path) != NULL, "%s: message '%s' does not name the file", f[0], err.message);
        printf("refused  %-36s %s\n", f[0], err.message);
    }
    test_free_lines(&L);
}

int main(void) {
    headline();
    test_lines T, C;
    int ok = test_read_lines(GEN "/texts.hex", &T) == 0 && test_read_lines(GEN "/CASES", &C) == 0;
    CHECK_MSG(ok, "missing references in %s (run tools/gen_fixtures_tokenizer_settings.py)", GEN);
    if (ok) {
        for (size_t i = 0; i < C.n; i++)
            if (C.line[i][0]) run_case(C.line[i], &T);
        test_free_lines(&T);
        test_free_lines(&C);
    }
    refusals();
    return test_summary("test_tokenizer_settings");
}
