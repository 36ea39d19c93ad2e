/* Tokenizer unit tests: committed tiny fixtures (made by sentencepiece and
 * tokenizers, see tests/fixtures/tokenizer/README.md), real model files,
 * invalid UTF-8 / NUL / 10 MB input, bad and truncated files, decode, word
 * alignment and the CLI. Dataset-wide parity is in test_tokenizer_parity.c. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lsllama_tokenizer.h"
#include "test_util.h"

#define FIX LL_SOURCE_DIR "/tests/fixtures/tokenizer"
#define LLAMA_MODEL LL_SHARED_DIR "/models/llama2-tokenizer/tokenizer.model"
#define LLAMA_BIN LL_SHARED_DIR "/models/stories260K/tok512.bin"

static char gguf_path[2048];

static ll_tokenizer *load(const char *path) {
    ll_tokenizer *t = NULL;
    ll_error err;
    int rc = ll_tokenizer_load(&t, path, &err);
    CHECK_MSG(rc == 0, "load %s: %s", path, err.message);
    REQUIRE(t != NULL);
    return t;
}

static size_t parse_ids(const char *s, int32_t *ids) {
    size_t n = 0;
    char *e;
    for (;;) {
        long v = strtol(s, &e, 10);
        if (e == s) break;
        ids[n++] = (int32_t)v;
        s = e;
    }
    return n;
}

static int ids_equal(const ll_encoding *e, const int32_t *ids, size_t n) {
    return e->n == n && memcmp(e->ids, ids, n * sizeof *ids) == 0;
}

/* tests/fixtures/tokenizer/tiny_expected.txt: JSON text TAB spm ids TAB bytelevel ids TAB offsets */
static void test_tiny_fixtures(void) {
    ll_tokenizer *spm = load(FIX "/tiny_spm.model");
    ll_tokenizer *bl = load(FIX "/tiny_bytelevel.json");
    ll_tokenizer *gg = load(FIX "/tiny_spm.gguf"); /* same vocabulary as GGUF metadata (model = llama) */
    CHECK(ll_tokenizer_get_format(spm) == LL_TOKFMT_SPM);
    CHECK(ll_tokenizer_get_format(gg) == LL_TOKFMT_GGUF && ll_tokenizer_get_kind(gg) == LL_TOK_SPM_BPE);
    CHECK(ll_tokenizer_get_kind(bl) == LL_TOK_BYTE_LEVEL_BPE);
    FILE *f = fopen(FIX "/tiny_expected.txt", "r");
    REQUIRE(f);
    char line[8192];
    int n_cases = 0;
    ll_encoding enc = {0};
    ll_error err;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        line[strcspn(line, "\n")] = 0;
        char *f1 = strtok(line, "\t"), *f2 = strtok(NULL, "\t"), *f3 = strtok(NULL, "\t"), *f4 = strtok(NULL, "\t");
        REQUIRE(f1 && f2);
        cJSON *js = cJSON_Parse(f1);
        REQUIRE(cJSON_IsString(js));
        const char *text = js->valuestring;
        int32_t want[512], offs[1024];
        size_t n = parse_ids(f2, want);
        CHECK(ll_tokenizer_encode(spm, text, strlen(text), LL_TOK_DEFAULT, &enc, &err) == 0);
        CHECK_MSG(ids_equal(&enc, want, n), "tiny_spm ids for %s", f1);
        CHECK(ll_tokenizer_encode(gg, text, strlen(text), LL_TOK_DEFAULT, &enc, &err) == 0);
        CHECK_MSG(ids_equal(&enc, want, n), "tiny_spm.gguf ids for %s", f1);
        n = f3 ? parse_ids(f3, want) : 0;
        CHECK(ll_tokenizer_encode(bl, text, strlen(text), LL_TOK_DEFAULT, &enc, &err) == 0);
        CHECK_MSG(ids_equal(&enc, want, n), "tiny_bytelevel ids for %s", f1);
        size_t k = 0;
        for (char *p = f4; p && *p;) {
            char *e;
            offs[k++] = (int32_t)strtol(p, &e, 10);
            offs[k++] = (int32_t)strtol(e + 1, &e, 10);
            p = e;
            while (*p == ' ') p++;
        }
        int ok = k == 2 * enc.n;
        for (size_t i = 0; ok && i < enc.n; i++)
            ok = enc.char_start[i] == offs[2 * i] && enc.char_end[i] == offs[2 * i + 1];
        CHECK_MSG(ok, "tiny_bytelevel offsets for %s", f1);
        cJSON_Delete(js);
        n_cases++;
    }
    fclose(f);
    CHECK(n_cases >= 8);
    ll_encoding_free(&enc);
    ll_tokenizer_free(spm);
    ll_tokenizer_free(bl);
    ll_tokenizer_free(gg);
}

static void test_known_ids(void) {
    ll_encoding enc = {0};
    ll_error err;
    /* llama2.c: "Once upon a time" with BOS */
    ll_tokenizer *t = load(LLAMA_BIN);
    CHECK(ll_tokenizer_n_vocab(t) == 512);
    CHECK(ll_tokenizer_bos_id(t) == 1 && ll_tokenizer_eos_id(t) == 2);
    int32_t w1[] = {1, 403, 407, 261, 378};
    CHECK(ll_tokenizer_encode(t, "Once upon a time", 16, LL_TOK_DEFAULT, &enc, &err) == 0);
    CHECK(ids_equal(&enc, w1, 5));
    CHECK(ll_tokenizer_encode(t, "Once upon a time", 16, 0, &enc, &err) == 0);
    CHECK(ids_equal(&enc, w1 + 1, 4));
    char *s;
    size_t sl;
    CHECK(ll_tokenizer_decode(t, w1, 5, 1, &s, &sl, &err) == 0);
    CHECK_MSG(!strcmp(s, "Once upon a time"), "decoded '%s'", s);
    free(s);
    ll_tokenizer_free(t);

    /* Llama 2 sentencepiece */
    t = load(LLAMA_MODEL);
    CHECK(ll_tokenizer_n_vocab(t) == 32000);
    int32_t w2[] = {1, 15043, 3186};
    CHECK(ll_tokenizer_encode(t, "Hello world", 11, LL_TOK_DEFAULT, &enc, &err) == 0);
    CHECK(ids_equal(&enc, w2, 3));
    CHECK(enc.char_start[1] == 0 && enc.char_end[1] == 5 && enc.char_start[2] == 5 && enc.char_end[2] == 11);
    /* sentencepiece keeps whitespace runs as "▁" pieces (score of "▁▁" is -1e9) */
    int32_t w3[] = {1, 29871, 15043, 29871, 3186, 29871};
    CHECK(ll_tokenizer_encode(t, " Hello  world ", 14, LL_TOK_DEFAULT, &enc, &err) == 0);
    CHECK(ids_equal(&enc, w3, 6));
    /* byte fallback: U+1F600 -> <0xF0> <0x9F> <0x98> <0x80>, all spanning char 1 */
    int32_t w4[] = {1, 263, 243, 162, 155, 131, 29890};
    CHECK(ll_tokenizer_encode(t, "a\xF0\x9F\x98\x80" "b", 6, LL_TOK_DEFAULT, &enc, &err) == 0);
    CHECK(ids_equal(&enc, w4, 7));
    CHECK(enc.char_start[3] == 1 && enc.char_end[3] == 2 && enc.byte_start[3] == 1 && enc.byte_end[3] == 5);
    /* control pieces written in the text are plain text for sentencepiece */
    CHECK(ll_tokenizer_encode(t, "<s>", 3, 0, &enc, &err) == 0);
    CHECK(enc.n > 1 && enc.ids[0] != 1);
    const char *rt[] = {"Hello world", "naïve café 😀 日本語", "tabs\tand\nnewlines", "it's 12345", "a  b"};
    for (size_t i = 0; i < 5; i++) {
        CHECK(ll_tokenizer_encode(t, rt[i], strlen(rt[i]), LL_TOK_DEFAULT, &enc, &err) == 0);
        CHECK(ll_tokenizer_decode(t, enc.ids, enc.n, 1, &s, &sl, &err) == 0);
        CHECK_MSG(sl == strlen(rt[i]) && !memcmp(s, rt[i], sl), "round trip '%s' -> '%s'", rt[i], s);
        free(s);
    }
    size_t pl;
    const char *p = ll_tokenizer_piece(t, 15043, &pl);
    CHECK(p && pl == 8 && !memcmp(p, "\xE2\x96\x81Hello", 8));
    CHECK(ll_tokenizer_piece_id(t, "\xE2\x96\x81Hello", 8) == 15043);
    CHECK(ll_tokenizer_piece(t, 32000, NULL) == NULL && ll_tokenizer_piece(t, -1, NULL) == NULL);
    int32_t badid = 99999;
    CHECK(ll_tokenizer_decode(t, &badid, 1, 0, &s, &sl, &err) == LL_ERR_ARG);
    ll_tokenizer_free(t);
    ll_encoding_free(&enc);
}

static void test_smollm2(void) {
    if (access(gguf_path, R_OK) != 0) {
        CHECK_MSG(0, "%s missing (run scripts/setup.sh)", gguf_path);
        return;
    }
    ll_tokenizer *t = load(gguf_path);
    ll_encoding enc = {0};
    ll_error err;
    CHECK(ll_tokenizer_n_vocab(t) == 49152);
    CHECK(ll_tokenizer_get_kind(t) == LL_TOK_BYTE_LEVEL_BPE);
    /* as transformers: no BOS for SmolLM2, specials matched in text */
    int32_t w[] = {19556, 905, 216, 1, 357, 506, 216, 33, 34, 35, 36, 37};
    const char *txt = "Hello world <|im_start|> it's 12345";
    CHECK(ll_tokenizer_encode(t, txt, strlen(txt), LL_TOK_DEFAULT, &enc, &err) == 0);
    CHECK(ids_equal(&enc, w, 12));
    CHECK(enc.char_start[3] == 12 && enc.char_end[3] == 24);
    CHECK(ll_tokenizer_is_special(t, 1) && !ll_tokenizer_is_special(t, 19556));
    /* without special parsing the marker is ordinary text */
    CHECK(ll_tokenizer_encode(t, txt, strlen(txt), LL_TOK_ADD_SPECIAL, &enc, &err) == 0);
    int has1 = 0;
    for (size_t i = 0; i < enc.n; i++) has1 |= enc.ids[i] == 1;
    CHECK(!has1 && enc.n > 12);
    /* decode round trips byte-exactly, including emoji and CJK */
    const char *rt[] = {"Hello world", " leading  and trailing ", "😀👨‍👩‍👧 日本語 é", "<|im_start|>user\nhi<|im_end|>", ""};
    for (size_t i = 0; i < 5; i++) {
        char *s;
        size_t sl;
        CHECK(ll_tokenizer_encode(t, rt[i], strlen(rt[i]), LL_TOK_DEFAULT, &enc, &err) == 0);
        CHECK(ll_tokenizer_decode(t, enc.ids, enc.n, 0, &s, &sl, &err) == 0);
        CHECK_MSG(sl == strlen(rt[i]) && !memcmp(s, rt[i], sl), "round trip '%s' -> '%s'", rt[i], s);
        free(s);
    }

    /* invalid UTF-8: same ids as Python's errors='replace' string; byte
     * offsets index the original bytes, char offsets the replaced text */
    const char bad[] = "a\x80" "b\xE2\x82";
    const char rep[] = "a\xEF\xBF\xBD" "b\xEF\xBF\xBD";
    ll_encoding e2 = {0};
    CHECK(ll_tokenizer_encode(t, bad, sizeof bad - 1, LL_TOK_DEFAULT, &enc, &err) == 0);
    CHECK(ll_tokenizer_encode(t, rep, sizeof rep - 1, LL_TOK_DEFAULT, &e2, &err) == 0);
    CHECK(enc.n == e2.n && !memcmp(enc.ids, e2.ids, enc.n * sizeof *enc.ids));
    CHECK(enc.n > 0 && enc.byte_end[enc.n - 1] == (int64_t)(sizeof bad - 1));
    CHECK(enc.n > 0 && enc.char_end[enc.n - 1] == 4);
    int covered_x80 = 0;
    for (size_t i = 0; i < enc.n; i++) covered_x80 |= enc.byte_start[i] <= 1 && enc.byte_end[i] >= 2;
    CHECK(covered_x80);
    /* NUL is an ordinary character */
    CHECK(ll_tokenizer_encode(t, "a\0b", 3, LL_TOK_DEFAULT, &enc, &err) == 0);
    CHECK(enc.n == 3 && enc.char_start[1] == 1 && enc.char_end[1] == 2);
    /* 10 MB line */
    size_t big = 10u << 20;
    char *text = malloc(big);
    const char *words = "The quick brown fox jumps over the lazy dog 1234 naïve 😀 ";
    size_t wl = strlen(words);
    for (size_t i = 0; i < big; i++) text[i] = words[i % wl];
    /* cut at a character boundary */
    size_t n = big - 8;
    while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80) n--;
    CHECK(ll_tokenizer_encode(t, text, n, LL_TOK_DEFAULT, &enc, &err) == 0);
    CHECK(enc.n > 1000000 && enc.byte_end[enc.n - 1] == (int64_t)n);
    /* a single 10 MB "word" (one pre-token, no cache) */
    memset(text, 'a', big);
    CHECK(ll_tokenizer_encode(t, text, big, LL_TOK_DEFAULT, &enc, &err) == 0);
    CHECK(enc.n > 0 && enc.byte_end[enc.n - 1] == (int64_t)big);
    /* the same through sentencepiece: the whole line is one BPE piece */
    ll_tokenizer *l2 = load(LLAMA_MODEL);
    for (size_t i = 0; i < big; i++) text[i] = words[i % wl];
    CHECK(ll_tokenizer_encode(l2, text, n, LL_TOK_DEFAULT, &enc, &err) == 0);
    CHECK(enc.n > 1000000 && enc.byte_end[enc.n - 1] == (int64_t)n);
    ll_tokenizer_free(l2);
    free(text);

    /* word alignment */
    const char *ws[] = {"EU", "rejects", "German", "call", "1", "😀"};
    int32_t first[6], end[6];
    CHECK(ll_tokenizer_align_words(t, ws, 6, LL_TOK_DEFAULT, &enc, first, end, &err) == 0);
    CHECK(first[0] == 0);
    for (int i = 0; i < 6; i++) CHECK_MSG(end[i] > first[i], "word %d has tokens", i);
    for (int i = 1; i < 6; i++) CHECK(first[i] >= end[i - 1]);
    CHECK(end[5] == (int32_t)enc.n);
    ll_encoding_free(&e2);
    ll_encoding_free(&enc);
    ll_tokenizer_free(t);
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    if (n) REQUIRE(fwrite(data, 1, n, f) == n);
    fclose(f);
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*n + 1);
    REQUIRE(fread(b, 1, *n, f) == *n);
    fclose(f);
    return b;
}

/* load must fail with an error naming the file (and not crash) */
static void expect_fail(const char *path, const char *what, const char *needle) {
    ll_tokenizer *t = NULL;
    ll_error err;
    memset(&err, 0, sizeof err);
    int rc = ll_tokenizer_load(&t, path, &err);
    CHECK_MSG(rc < 0 && t == NULL, "%s: load should fail", what);
    CHECK_MSG(strstr(err.message, path) != NULL, "%s: message names the file: %s", what, err.message);
    if (needle) CHECK_MSG(strstr(err.message, needle) != NULL, "%s: message mentions '%s': %s", what, needle, err.message);
    if (t) ll_tokenizer_free(t);
}

static void test_bad_files(void) {
    char dir[] = "/tmp/ll_tok_test_XXXXXX";
    REQUIRE(mkdtemp(dir));
    char p[4096];
    size_t n;
    /* truncated tokenizer.model at many lengths */
    char *model = read_all(LLAMA_MODEL, &n);
    REQUIRE(model);
    size_t cuts[] = {1, 2, 7, 100, 1000, 4097, 250000, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        snprintf(p, sizeof p, "%s/trunc%zu.model", dir, cuts[i]);
        write_file(p, model, cuts[i]);
        expect_fail(p, "truncated tokenizer.model", NULL);
    }
    free(model);
    /* truncated llama2.c tokenizer */
    char *bin = read_all(LLAMA_BIN, &n);
    snprintf(p, sizeof p, "%s/trunc.bin", dir);
    write_file(p, bin, n - 3);
    expect_fail(p, "truncated tokenizer.bin", "truncated");
    write_file(p, bin, 2);
    expect_fail(p, "tiny tokenizer.bin", NULL);
    free(bin);
    /* truncated GGUF header */
    if (access(gguf_path, R_OK) == 0) {
        char *g = malloc(1 << 20);
        FILE *f = fopen(gguf_path, "rb");
        REQUIRE(fread(g, 1, 1 << 20, f) == 1 << 20);
        fclose(f);
        snprintf(p, sizeof p, "%s/trunc.gguf", dir);
        write_file(p, g, 1 << 20);
        expect_fail(p, "truncated GGUF", NULL);
        free(g);
    }
    /* tokenizer.json variants */
    struct {
        const char *json, *what, *needle;
    } js[] = {
        {"", "empty file", NULL},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}", "truncated JSON", "invalid JSON"},
        {"[1, 2]", "not an object", NULL},
        {"{}", "no model", "model"},
        {"{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "unigram", "Unigram"},
        {"{\"model\": {\"type\": \"BPE\"}}", "no vocab", "vocab"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}", "empty vocab", "empty"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}}}", "non-numeric id", "valid id"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 2}}}", "id gap", "no entry"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a c\"]}}", "merge of unknown token", "merge 0"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}", "merge result missing", "merged token"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"ab\"]}}", "merge without space", "merge 0"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": 5}}", "merges not array", "merges"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"unk_token\": \"<unk>\"}}", "unk missing", "unk_token"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"}}", "bad regex", "regex"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, \"behavior\": \"Sideways\"}}", "bad behavior", "behavior"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}, \"normalizer\": {\"type\": \"NFKC\"}}", "unsupported normalizer", "NFKC"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}, \"added_tokens\": [{\"id\": -1, \"content\": \"x\"}]}", "bad added token", "added token"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}, \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}}]}}", "template token missing", "<s>"},
    };
    for (size_t i = 0; i < sizeof js / sizeof js[0]; i++) {
        snprintf(p, sizeof p, "%s/bad%zu.json", dir, i);
        write_file(p, js[i].json, strlen(js[i].json));
        expect_fail(p, js[i].what, js[i].needle);
    }
    /* a minimal valid tokenizer.json loads and encodes (unknown chars dropped, no unk) */
    const char *ok = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [[\"a\", \"b\"]]}}";
    snprintf(p, sizeof p, "%s/ok.json", dir);
    write_file(p, ok, strlen(ok));
    ll_tokenizer *t = load(p);
    ll_encoding enc = {0};
    ll_error err;
    CHECK(ll_tokenizer_encode(t, "abxab", 5, LL_TOK_DEFAULT, &enc, &err) == 0);
    /* tokenizers 0.23 gives [2, 2] with offsets (0,2), (2,4): a dropped character
     * shifts the offsets after it (Word offsets sum the kept symbols) */
    CHECK(enc.n == 2 && enc.ids[0] == 2 && enc.ids[1] == 2 && enc.char_start[1] == 2 && enc.char_end[1] == 4);
    ll_encoding_free(&enc);
    ll_tokenizer_free(t);
    /* missing file / empty directory */
    snprintf(p, sizeof p, "%s/nope.json", dir);
    expect_fail(p, "missing file", "no such file");
    expect_fail(dir, "directory without tokenizer", "directory");
    /* memory loaders with garbage */
    unsigned char junk[64];
    for (int i = 0; i < 64; i++) junk[i] = (unsigned char)(i * 37 + 11);
    for (int fmt = 1; fmt <= 4; fmt++) {
        ll_tokenizer *x = NULL;
        CHECK(ll_tokenizer_load_memory(&x, junk, sizeof junk, (ll_tokenizer_format)fmt, "junk", &err) < 0 && !x);
        CHECK(strstr(err.message, "junk") != NULL);
    }
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static void test_cli(void) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "printf 'Once upon a time\\n\\nhi\\n' | '%s' tokenize '%s' --offsets", LL_CLI_PATH, LLAMA_BIN);
    FILE *f = popen(cmd, "r");
    REQUIRE(f);
    char out[4096] = "";
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    CHECK(pclose(f) == 0);
    CHECK_MSG(!strncmp(out, "1:0-0 403:0-4 407:4-9 261:9-11 378:11-16\n1:0-0\n", 47), "cli output: %s", out);
    snprintf(cmd, sizeof cmd, "printf 'Once upon a time\\n' | '%s' tokenize '%s' --no-special | '%s' tokenize '%s' --decode",
             LL_CLI_PATH, LLAMA_BIN, LL_CLI_PATH, LLAMA_BIN);
    f = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    CHECK(pclose(f) == 0);
    CHECK_MSG(!strcmp(out, "Once upon a time\n"), "cli decode: %s", out);
    snprintf(cmd, sizeof cmd, "'%s' tokenize /nonexistent/tokenizer.json < /dev/null 2>&1", LL_CLI_PATH);
    f = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    CHECK(pclose(f) != 0);
    CHECK_MSG(strstr(out, "/nonexistent/tokenizer.json") != NULL, "cli error: %s", out);
}

int main(void) {
    const char *cache = getenv("LSLLAMA_CACHE");
    if (cache && *cache)
        snprintf(gguf_path, sizeof gguf_path, "%s/models/SmolLM2-135M-Instruct.Q4_1.gguf", cache);
    else
        snprintf(gguf_path, sizeof gguf_path, "%s/.cache/lsllama/models/SmolLM2-135M-Instruct.Q4_1.gguf", getenv("HOME"));
    test_tiny_fixtures();
    test_known_ids();
    test_smollm2();
    test_bad_files();
    test_cli();
    return test_summary("test_tokenizer");
}
