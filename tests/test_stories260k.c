/* stories260K (llama2.c legacy checkpoint, GQA, interleaved RoPE rows):
 * greedy decoding from "Once upon a time", with the prompt encoded by
 * llama2.c's tokenizer (tok512.bin), reproduces the golden text published
 * with llama2.c (../shared/models/README.md), and all 40 generated ids equal
 * transformers' greedy generate() on the same weights
 * (tools/gen_fixtures_stories260k.py). */
#include "lsllama.h"
#include "lsllama_tokenizer.h"
#include "test_util.h"

#define MODEL_DIR LL_SHARED_DIR "/models/stories260K"

static const char *golden =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park";

int main(void) {
    ll_error err = {0};
    ll_model *m;
    ll_load_options lo = {.with_lm_head = 1};
    if (ll_model_load(&m, MODEL_DIR "/stories260K.bin", &lo, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    ll_tokenizer *tok;
    if (ll_tokenizer_load(&tok, MODEL_DIR "/tok512.bin", &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    const ll_config *c = ll_model_config(m);
    CHECK(c->dim == 64 && c->n_layers == 5 && c->n_heads == 8 && c->n_kv_heads == 4 && c->vocab_size == 512);
    ll_encoding enc = {0};
    const char *prompt = "Once upon a time";
    REQUIRE(ll_tokenizer_encode(tok, prompt, strlen(prompt), LL_TOK_DEFAULT, &enc, &err) == 0);
    CHECK(enc.n >= 2 && enc.ids[0] == 1); /* BOS first, as llama2.c's run.c encodes */
    /* reference ids: line 1 the prompt, line 2 the generated ids */
    FILE *fx = fopen(LL_SOURCE_DIR "/tests/fixtures/stories260k/expected.txt", "r");
    REQUIRE(fx);
    int ref_prompt[16], ref_gen[64], np_ = 0, ng = 0, ch = 0;
    char line[4096];
    REQUIRE(fgets(line, sizeof line, fx));
    for (char *q = strtok(line, " \n"); q && np_ < 16; q = strtok(NULL, " \n")) ref_prompt[np_++] = atoi(q);
    REQUIRE(fgets(line, sizeof line, fx));
    for (char *q = strtok(line, " \n"); q && ng < 64; q = strtok(NULL, " \n")) ref_gen[ng++] = atoi(q);
    fclose(fx);
    (void)ch;
    CHECK((int)enc.n == np_);
    for (int i = 0; i < np_ && i < (int)enc.n; i++) CHECK(enc.ids[i] == ref_prompt[i]);
    const int steps = 40;
    int32_t *seq = malloc((enc.n + steps) * sizeof *seq);
    memcpy(seq, enc.ids, enc.n * sizeof *seq);
    int n = (int)enc.n;
    float *logits = malloc((size_t)c->vocab_size * sizeof *logits);
    for (int s = 0; s < steps; s++) {
        int32_t starts[2] = {0, n};
        ll_batch b = {seq, starts, 1};
        ll_forward_options fo = {.bidirectional_from = c->n_layers};
        ll_forward_outputs out = {.logits_last = logits};
        REQUIRE(ll_forward(m, &b, &fo, &out, &err) == 0);
        int best = 0;
        for (int v = 1; v < c->vocab_size; v++)
            if (logits[v] > logits[best]) best = v;
        seq[n++] = best;
    }
    int same = 0;
    while (same < ng && same < steps && seq[enc.n + same] == ref_gen[same]) same++;
    printf("generated ids equal to transformers' greedy decoding: %d of %d\n", same, ng);
    CHECK(ng == steps && same == steps);
    char *text;
    size_t len;
    REQUIRE(ll_tokenizer_decode(tok, seq, (size_t)n, 1, &text, &len, &err) == 0);
    const char *t = text;
    while (*t == ' ') t++;
    printf("generated: %s\n", t);
    CHECK_MSG(strncmp(t, golden, strlen(golden)) == 0, "text differs from the golden text");
    /* How many generated tokens the golden text spans. */
    int covered = 0;
    for (int k = (int)enc.n + 1; k <= n; k++) {
        char *prefix;
        size_t pl;
        REQUIRE(ll_tokenizer_decode(tok, seq, (size_t)k, 1, &prefix, &pl, &err) == 0);
        const char *p = prefix;
        while (*p == ' ') p++;
        if (strlen(p) <= strlen(golden) && strncmp(p, golden, strlen(p)) == 0) covered = k - (int)enc.n;
        free(prefix);
    }
    printf("golden text covers %d generated tokens (%d with the prompt)\n", covered, covered + (int)enc.n - 1);
    CHECK(covered + (int)enc.n - 1 >= 30);
    free(text);
    free(seq);
    free(logits);
    ll_encoding_free(&enc);
    ll_tokenizer_free(tok);
    ll_model_free(m);
    return test_summary("test_stories260k");
}
