/* A GGUF byte-level BPE tokenizer without tokenizer.ggml.pre loads as
 * llama.cpp loads it (its 'default' pre-tokenizer) and says so
 * (ll_tokenizer_warning), as llama.cpp warns; with the key, or for a
 * SentencePiece vocabulary (which has no pre-tokenizer), there is no warning.
 * The CLI prints the warning (lsllama tokenize). */
#include <stdint.h>

#include "fixture_writer.h"
#include "lsllama_tokenizer.h"
#include "test_util.h"

static char tmp[] = "/tmp/lsllama_tokwarn_XXXXXX";

static void make_gguf(fw_buf *out, const char *model, const char *pre) {
    fw_gguf g = {.version = 3, .n_kv_override = -1, .n_tensors_override = -1};
    fw_gguf_set_str(&g, "general.architecture", "llama");
    fw_gguf_set_str(&g, "tokenizer.ggml.model", model);
    if (pre) fw_gguf_set_str(&g, "tokenizer.ggml.pre", pre);
    const char *toks[] = {"a", "b", "ab", "\xC4\xA0", "\xC4\xA0" "a"};
    fw_gguf_set_str_array(&g, "tokenizer.ggml.tokens", toks, 5);
    if (!strcmp(model, "gpt2")) {
        const char *merges[] = {"a b", "\xC4\xA0 a"};
        fw_gguf_set_str_array(&g, "tokenizer.ggml.merges", merges, 2);
    }
    fw_gguf_serialize(&g, out, NULL);
    fw_gguf_free(&g);
}

int main(void) {
    REQUIRE(mkdtemp(tmp));
    struct {
        const char *model, *pre;
        int warns;
    } cases[] = {{"gpt2", NULL, 1}, {"gpt2", "default", 0}, {"gpt2", "smollm", 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fw_buf b = {0};
        make_gguf(&b, cases[i].model, cases[i].pre);
        ll_tokenizer *t = NULL;
        ll_error err = {0};
        const int rc = ll_tokenizer_load_memory(&t, b.p, b.n, LL_TOKFMT_GGUF, "vocab.gguf", &err);
        CHECK_MSG(rc == 0, "%s / pre %s: %s", cases[i].model, cases[i].pre ? cases[i].pre : "(none)", err.message);
        if (!rc) {
            const char *w = ll_tokenizer_warning(t);
            CHECK_MSG(!!w == cases[i].warns && (!w || (strstr(w, "tokenizer.ggml.pre") && strstr(w, "default") &&
                                                       strstr(w, "vocab.gguf"))),
                      "%s / pre %s: warning %s", cases[i].model, cases[i].pre ? cases[i].pre : "(none)",
                      w ? w : "(none)");
            if (w) printf("warning: %s\n", w);
            /* the default pre-tokenizer splits " ab" off; merge "a b" comes first: "ab ab" -> ab, Ġ, ab */
            ll_encoding enc = {0};
            if (!cases[i].pre && ll_tokenizer_encode(t, "ab ab", 5, 0, &enc, &err) == 0) {
                CHECK_MSG(enc.n == 3 && enc.ids[0] == 2 && enc.ids[1] == 3 && enc.ids[2] == 2, "ids %zu", enc.n);
                ll_encoding_free(&enc);
            }
        }
        ll_tokenizer_free(t);
        if (i == 0) { /* the CLI says it */
            char path[512], cmd[1024];
            snprintf(path, sizeof path, "%s/vocab.gguf", tmp);
            FILE *f = fopen(path, "wb");
            REQUIRE(f && fwrite(b.p, 1, b.n, f) == b.n && fclose(f) == 0);
            snprintf(cmd, sizeof cmd, "echo ab | %s tokenize %s > %s/out.txt 2> %s/err.txt", LL_CLI_PATH, path, tmp, tmp);
            CHECK(system(cmd) == 0);
            snprintf(path, sizeof path, "%s/err.txt", tmp);
            char *e = test_read_file(path);
            CHECK_MSG(e && strstr(e, "warning") && strstr(e, "tokenizer.ggml.pre"), "CLI stderr: %s", e ? e : "");
            free(e);
        }
        fw_free(&b);
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    (void)system(cmd);
    return test_summary("test_tokenizer_warning");
}
