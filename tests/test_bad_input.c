/* Bad input for the checkpoint readers. A valid tiny llama (dim 8, 2 heads,
 * 1 kv head, ffn 12, 2 layers, vocab 16) is written as GGUF, safetensors and
 * llama2.c by tests/fixture_writer.h; the three must load and agree. Then each
 * case breaks one thing and checks the error code and that the message names
 * the file and the key, tensor or line at fault. The CLI is run on broken
 * files and bad token lines too. */
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture_writer.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "lsllama.h"
#include "test_util.h"

static char tmp_root[256];
static fw_model M; /* the valid tiny model */

/* ---- helpers -------------------------------------------------------------- */

/* tmp_root/name in one of a few rotating buffers. */
static const char *tpath(const char *fmt, ...) {
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    snprintf(b, 512, "%s/%s", tmp_root, name);
    return b;
}

static int load(const char *path, ll_error *err) {
    ll_model *m = NULL;
    memset(err, 0, sizeof *err);
    int rc = ll_model_load(&m, path, NULL, err);
    if (!rc) ll_model_free(m);
    return rc;
}

/* The load of path fails with code, and the message names file_in_msg (the
 * file at fault, may differ from path for folders) and every needle. */
static void expect_fail_at(const char *label, const char *path, const char *file_in_msg, int code,
                           const char *needle1, const char *needle2) {
    ll_error err;
    const int rc = load(path, &err);
    const int ok = rc == code && err.code == code && strstr(err.message, file_in_msg) &&
                   (!needle1 || strstr(err.message, needle1)) && (!needle2 || strstr(err.message, needle2));
    CHECK_MSG(ok, "%s: rc %d (%s), want %d (%s), message '%s', want '%s', '%s', '%s'", label, rc, ll_status_name(rc),
              code, ll_status_name(code), err.message, file_in_msg, needle1 ? needle1 : "", needle2 ? needle2 : "");
}
static void expect_fail(const char *label, const char *path, int code, const char *needle1, const char *needle2) {
    expect_fail_at(label, path, path, code, needle1, needle2);
}

static const char *write_buf(const char *name, const void *p, size_t n) {
    const char *path = tpath("%s", name);
    REQUIRE(fw_write_file(path, p, n));
    return path;
}

/* ---- GGUF ----------------------------------------------------------------- */

static const char *write_gguf(const fw_gguf *g, const char *name) {
    fw_buf b = {0};
    fw_gguf_serialize(g, &b, NULL);
    const char *path = write_buf(name, b.p, b.n);
    fw_free(&b);
    return path;
}

/* One case: a fresh valid GGUF, mutated by the caller's statements. */
#define GGUF_CASE(label, code, needle1, needle2, ...)                                                                 \
    do {                                                                                                              \
        fw_gguf g;                                                                                                    \
        fw_gguf_from_model(&g, &M);                                                                                   \
        __VA_ARGS__;                                                                                                  \
        expect_fail(label, write_gguf(&g, "case.gguf"), code, needle1, needle2);                                      \
        fw_gguf_free(&g);                                                                                             \
    } while (0)

static void test_gguf_truncated(void) {
    fw_gguf g;
    fw_gguf_from_model(&g, &M);
    fw_buf b = {0};
    size_t header_end;
    fw_gguf_serialize(&g, &b, &header_end);
    const char *path = tpath("trunc.gguf");
    int bad = 0;
    /* every cut inside the header: a format error naming the file, never a crash */
    for (size_t cut = 0; cut < header_end; cut++) {
        REQUIRE(fw_write_file(path, b.p, cut));
        ll_error err;
        const int rc = load(path, &err);
        if (rc != LL_ERR_FORMAT || !strstr(err.message, path)) {
            if (bad++ < 5) fprintf(stderr, "cut %zu: rc %d '%s'\n", cut, rc, err.message);
        }
    }
    CHECK_MSG(bad == 0, "%d of %zu header cuts did not give a format error naming the file", bad, header_end);
    /* cuts in the data name the tensor whose data is cut short */
    const ll_gguf_tensor *last = NULL;
    ll_gguf_file *gf = NULL;
    ll_error err;
    REQUIRE(write_buf("full.gguf", b.p, b.n));
    REQUIRE(ll_gguf_open(&gf, tpath("full.gguf"), &err) == 0);
    const size_t cuts[] = {(header_end + 31) / 32 * 32, (header_end + 31) / 32 * 32 + 100, b.n / 2, b.n - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        /* the first tensor (in file order of data) whose data extends past the cut */
        const char *victim = NULL;
        for (uint64_t i = 0; i < gf->n_tensors; i++) {
            const ll_gguf_tensor *t = &gf->tensors[i];
            if (gf->data_offset + t->offset + t->nbytes > cuts[k]) {
                victim = t->name;
                break;
            }
        }
        REQUIRE(victim);
        REQUIRE(fw_write_file(path, b.p, cuts[k]));
        char label[64];
        snprintf(label, sizeof label, "gguf cut at %zu of %zu", cuts[k], b.n);
        expect_fail(label, path, LL_ERR_FORMAT, victim, "past the end");
    }
    last = &gf->tensors[gf->n_tensors - 1];
    CHECK(!strcmp(last->name, "output_norm.weight"));
    ll_gguf_close(gf);
    fw_free(&b);
    fw_gguf_free(&g);
}

/* 100000 tiny tensor infos, the last one repeating an earlier name: found
 * (by sorting; a pairwise check took 15 s on this file). */
static void test_gguf_many_tensors(void) {
    const uint64_t n = 100000;
    fw_buf b = {0};
    fw_text(&b, "GGUF");
    fw_u32(&b, 3);
    fw_u64(&b, n);
    fw_u64(&b, 0);
    for (uint64_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%llu", (unsigned long long)(i + 1 < n ? i : 4321));
        fw_gstr(&b, name);
        fw_u32(&b, 1);  /* n_dims */
        fw_u64(&b, 1);  /* ne[0] */
        fw_u32(&b, 0);  /* F32 */
        fw_u64(&b, 0);  /* offset */
    }
    fw_pad(&b, 32, 0);
    fw_u32(&b, 0);
    const char *path = write_buf("many.gguf", b.p, b.n);
    ll_gguf_file *g = NULL;
    ll_error err = {0};
    const int rc = ll_gguf_open(&g, path, &err);
    CHECK_MSG(rc == LL_ERR_FORMAT && strstr(err.message, path) && strstr(err.message, "'t4321' appears twice"),
              "many tensors, one duplicate: %d '%s'", rc, err.message);
    ll_gguf_close(g);
    fw_free(&b);
}

static void test_gguf_header(void) {
    /* wrong magic: the GGUF reader says so; the loader, which reads any file
     * without GGUF magic as llama2.c, says how it read it */
    {
        fw_gguf g;
        fw_gguf_from_model(&g, &M);
        fw_buf b = {0};
        fw_gguf_serialize(&g, &b, NULL);
        b.p[3] = 'X';
        const char *path = write_buf("magic.gguf", b.p, b.n);
        ll_gguf_file *gf;
        ll_error err = {0};
        const int rc = ll_gguf_open(&gf, path, &err);
        CHECK_MSG(rc == LL_ERR_FORMAT && strstr(err.message, path) && strstr(err.message, "magic"), "bad magic: %d '%s'",
                  rc, err.message);
        expect_fail("bad magic, loader", path, LL_ERR_CONFIG, "no GGUF magic", NULL);
        fw_free(&b);
        fw_gguf_free(&g);
    }
    GGUF_CASE("version 1", LL_ERR_UNSUPPORTED, "version 1", NULL, g.version = 1);
    GGUF_CASE("version 4", LL_ERR_UNSUPPORTED, "version 4", NULL, g.version = 4);
    GGUF_CASE("n_kv huge", LL_ERR_FORMAT, "keys", "more than the file holds", g.n_kv_override = 1ll << 40);
    GGUF_CASE("n_tensors huge", LL_ERR_FORMAT, "tensors", "more than the file holds", g.n_tensors_override = 1ll << 40);
    /* one more key than written: the first tensor info is read as a key */
    GGUF_CASE("n_kv + 1", LL_ERR_FORMAT, NULL, NULL, g.n_kv_override = (int64_t)g.n_kv + 1);
    GGUF_CASE("n_tensors + 1", LL_ERR_FORMAT, "tensor info #", NULL, g.n_tensors_override = (int64_t)g.n_t + 1);
    {
        fw_buf v = {0};
        fw_u64(&v, 1ull << 40);
        fw_text(&v, "tiny");
        GGUF_CASE("string length past end", LL_ERR_FORMAT, "general.name", "past the end",
                  fw_gguf_set_raw(&g, "general.name", FW_GGUF_STRING, v.p, v.n));
        v.n = 0;
        fw_u32(&v, FW_GGUF_UINT32);
        fw_u64(&v, 1ull << 40);
        fw_u32(&v, 7);
        GGUF_CASE("array count past end", LL_ERR_FORMAT, "test.array", "past the end",
                  fw_gguf_set_raw(&g, "test.array", FW_GGUF_ARRAY, v.p, v.n));
        v.n = 0;
        fw_u32(&v, FW_GGUF_STRING);
        fw_u64(&v, 1ull << 40);
        fw_gstr(&v, "a");
        GGUF_CASE("string array count past end", LL_ERR_FORMAT, "test.strings", "past the end",
                  fw_gguf_set_raw(&g, "test.strings", FW_GGUF_ARRAY, v.p, v.n));
        v.n = 0;
        fw_u32(&v, FW_GGUF_STRING);
        fw_u64(&v, 2);
        fw_gstr(&v, "a");
        fw_u64(&v, 1ull << 40);
        GGUF_CASE("string array element past end", LL_ERR_FORMAT, "test.strings", "past the end",
                  fw_gguf_set_raw(&g, "test.strings", FW_GGUF_ARRAY, v.p, v.n));
        v.n = 0;
        fw_u32(&v, 77);
        fw_u64(&v, 1);
        GGUF_CASE("array of unknown type", LL_ERR_FORMAT, "test.array", "unknown array element type",
                  fw_gguf_set_raw(&g, "test.array", FW_GGUF_ARRAY, v.p, v.n));
        v.n = 0;
        fw_u32(&v, 1);
        GGUF_CASE("unknown value type", LL_ERR_FORMAT, "test.value", "unknown value type",
                  fw_gguf_set_raw(&g, "test.value", 99, v.p, v.n));
        fw_free(&v);
    }
    GGUF_CASE("alignment not a power of two", LL_ERR_FORMAT, "general.alignment", NULL,
              fw_gguf_set_u32(&g, "general.alignment", 24));
}

static void test_gguf_tensors(void) {
    GGUF_CASE("offset past end", LL_ERR_FORMAT, "blk.0.attn_v.weight", "past the end",
              fw_gguf_get_tensor(&g, "blk.0.attn_v.weight")->offset = 1 << 20);
    GGUF_CASE("offset near UINT64_MAX", LL_ERR_FORMAT, "blk.0.attn_v.weight", "past the end",
              fw_gguf_get_tensor(&g, "blk.0.attn_v.weight")->offset = INT64_MAX - 31);
    GGUF_CASE("misaligned offset", LL_ERR_FORMAT, "blk.0.attn_k.weight", "not aligned",
              fw_gguf_get_tensor(&g, "blk.0.attn_k.weight")->offset = 4);
    GGUF_CASE("n_dims 0", LL_ERR_FORMAT, "blk.1.ffn_gate.weight", "0 dimensions",
              fw_gguf_get_tensor(&g, "blk.1.ffn_gate.weight")->n_dims = 0);
    GGUF_CASE("n_dims 5", LL_ERR_FORMAT, "blk.1.ffn_gate.weight", "5 dimensions",
              fw_gguf_get_tensor(&g, "blk.1.ffn_gate.weight")->n_dims = 5);
    GGUF_CASE("zero dimension", LL_ERR_FORMAT, "blk.0.ffn_down.weight", "invalid dimension",
              fw_gguf_get_tensor(&g, "blk.0.ffn_down.weight")->ne[1] = 0);
    GGUF_CASE("huge dimension", LL_ERR_FORMAT, "blk.0.ffn_down.weight", "invalid dimension",
              fw_gguf_get_tensor(&g, "blk.0.ffn_down.weight")->ne[1] = 1ull << 62);
    GGUF_CASE("unknown ggml type", LL_ERR_UNSUPPORTED, "blk.0.attn_q.weight", "unknown GGML type 99",
              fw_gguf_get_tensor(&g, "blk.0.attn_q.weight")->type = 99);
    /* F64 (id 28): a known GGML type we cannot load; the data size fits */
    GGUF_CASE("F64 layer tensor", LL_ERR_UNSUPPORTED, "blk.0.attn_q.weight", "F64", {
        fw_gguf_tensor *t = fw_gguf_get_tensor(&g, "blk.0.attn_q.weight");
        t->type = 28;
        fw_put(&t->data, t->data.p, t->data.n); /* twice the bytes */
    });
    /* Q3_K (a type lsllama cannot load) on a row length the block (256) fits, in a dim-256 model; Q5_K
     * there loads */
    {
        fw_model big;
        fw_model_init(&big, 256, 12, 1, 2, 1, 16);
        fw_gguf g;
        fw_gguf_from_model(&g, &big);
        CHECK_MSG(load(write_gguf(&g, "big.gguf"), &(ll_error){0}) == 0, "dim-256 model should load");
        fw_gguf_tensor *t = fw_gguf_get_tensor(&g, "blk.0.attn_q.weight");
        t->type = 13; /* Q5_K: 256 elements in 176 bytes, all zero */
        t->data.n = 256 * 176;
        memset(t->data.p, 0, t->data.n);
        CHECK_MSG(load(write_gguf(&g, "case.gguf"), &(ll_error){0}) == 0, "a Q5_K layer tensor should load");
        t->type = 11; /* Q3_K: 256 elements in 110 bytes */
        t->data.n = 256 * 110;
        expect_fail("Q3_K layer tensor", write_gguf(&g, "case.gguf"), LL_ERR_UNSUPPORTED, "blk.0.attn_q.weight",
                    "Q3_K");
        fw_gguf_free(&g);
        fw_model_free(&big);
    }
    GGUF_CASE("row not a whole number of blocks", LL_ERR_FORMAT, "blk.0.attn_q.weight", "block size",
              fw_gguf_get_tensor(&g, "blk.0.attn_q.weight")->type = 13);
    GGUF_CASE("missing tensor", LL_ERR_SHAPE, "blk.1.ffn_up.weight", "missing",
              fw_gguf_remove_tensor(&g, "blk.1.ffn_up.weight"));
    GGUF_CASE("missing embedding", LL_ERR_SHAPE, "token_embd.weight", "missing",
              fw_gguf_remove_tensor(&g, "token_embd.weight"));
    GGUF_CASE("no vocabulary size", LL_ERR_CONFIG, "vocabulary size 0", NULL, fw_gguf_remove_tensor(&g, "token_embd.weight");
              fw_gguf_remove_kv(&g, "tokenizer.ggml.tokens"));
    GGUF_CASE("mis-shaped tensor", LL_ERR_SHAPE, "blk.0.attn_k.weight", "expected [4, 8]", {
        fw_gguf_tensor *t = fw_gguf_get_tensor(&g, "blk.0.attn_k.weight");
        t->ne[1] = 8;
        fw_put(&t->data, t->data.p, t->data.n);
    });
    GGUF_CASE("duplicate tensor", LL_ERR_FORMAT, "blk.0.ffn_up.weight", "twice",
              snprintf(fw_gguf_get_tensor(&g, "blk.1.ffn_up.weight")->name, 96, "blk.0.ffn_up.weight"));
    GGUF_CASE("missing block_count", LL_ERR_CONFIG, "llama.block_count", "missing",
              fw_gguf_remove_kv(&g, "llama.block_count"));
    GGUF_CASE("missing architecture", LL_ERR_CONFIG, "general.architecture", "missing",
              fw_gguf_remove_kv(&g, "general.architecture"));
    GGUF_CASE("string for an int", LL_ERR_CONFIG, "llama.embedding_length", "expected an integer",
              fw_gguf_set_str(&g, "llama.embedding_length", "8"));
    GGUF_CASE("int for a string", LL_ERR_CONFIG, "general.architecture", "expected string",
              fw_gguf_set_u32(&g, "general.architecture", 1));
    GGUF_CASE("string for a float", LL_ERR_CONFIG, "llama.attention.layer_norm_rms_epsilon", "expected a number",
              fw_gguf_set_str(&g, "llama.attention.layer_norm_rms_epsilon", "1e-5"));
    GGUF_CASE("heads do not divide dim", LL_ERR_CONFIG, "llama.attention.head_count", "does not divide",
              fw_gguf_set_u32(&g, "llama.attention.head_count", 3));
    GGUF_CASE("kv heads do not divide heads", LL_ERR_CONFIG, "not a multiple of 2 key/value heads", NULL, {
        fw_gguf_set_u32(&g, "llama.attention.head_count", 3);
        fw_gguf_set_u32(&g, "llama.attention.head_count_kv", 2);
        fw_gguf_set_u32(&g, "llama.attention.key_length", 2);
        fw_gguf_set_u32(&g, "llama.rope.dimension_count", 2);
    });
    GGUF_CASE("block_count 0", LL_ERR_CONFIG, "layer count 0", NULL, fw_gguf_set_u32(&g, "llama.block_count", 0));
    GGUF_CASE("head_count 0", LL_ERR_CONFIG, "head count 0", NULL,
              fw_gguf_set_u32(&g, "llama.attention.head_count", 0));
    GGUF_CASE("negative embedding_length", LL_ERR_CONFIG, "hidden size", NULL,
              fw_gguf_set_i32(&g, "llama.embedding_length", -8));
    GGUF_CASE("partial rope", LL_ERR_UNSUPPORTED, "llama.rope.dimension_count", NULL,
              fw_gguf_set_u32(&g, "llama.rope.dimension_count", 2));
    /* a header claiming a huge model over tiny tensors: a shape error, not a
     * terabyte allocation (ASan would abort on it) */
    GGUF_CASE("huge header, tiny tensors", LL_ERR_SHAPE, "token_embd.weight", "expected [16777216, 65536]", {
        fw_gguf_set_u32(&g, "llama.embedding_length", 65536);
        fw_gguf_set_u32(&g, "llama.attention.head_count", 1024);
        fw_gguf_set_u32(&g, "llama.attention.head_count_kv", 1024);
        fw_gguf_set_u32(&g, "llama.feed_forward_length", 1 << 20);
        fw_gguf_set_u32(&g, "llama.block_count", 1024);
        fw_gguf_set_u32(&g, "llama.vocab_size", 1 << 24);
        fw_gguf_remove_kv(&g, "llama.rope.dimension_count");
    });
    GGUF_CASE("architecture gpt2", LL_ERR_UNSUPPORTED, "'gpt2'", NULL,
              fw_gguf_set_str(&g, "general.architecture", "gpt2"));
}

/* ---- safetensors ---------------------------------------------------------- */

static char cfg_json[4096];

/* A fresh folder with config.json (text may be NULL: none) and
 * model.safetensors from the given bytes; returns the folder. */
static const char *st_folder(const char *name, const char *config, const void *st, size_t st_n) {
    const char *dir = tpath("%s", name);
    REQUIRE(mkdir(dir, 0700) == 0);
    char p[600];
    if (config) {
        snprintf(p, sizeof p, "%s/config.json", dir);
        REQUIRE(fw_write_text(p, config));
    }
    if (st) {
        snprintf(p, sizeof p, "%s/model.safetensors", dir);
        REQUIRE(fw_write_file(p, st, st_n));
    }
    return dir;
}

static int case_no;

/* One case: the valid tensors, mutated, then written; the message must name
 * model.safetensors inside the case folder. */
#define ST_CASE(label, code, needle1, needle2, ...) ST_CASE_IN(label, 0, code, needle1, needle2, __VA_ARGS__)
/* folder_only: the message names the folder (e.g. a tensor missing from all files) */
#define ST_CASE_IN(label, folder_only, code, needle1, needle2, ...)                                                   \
    do {                                                                                                              \
        fw_st s;                                                                                                      \
        fw_st_from_model(&s, &M);                                                                                     \
        __VA_ARGS__;                                                                                                  \
        fw_buf b_ = {0};                                                                                              \
        fw_st_serialize(&s, &b_);                                                                                     \
        char name_[32];                                                                                               \
        snprintf(name_, sizeof name_, "st%d", case_no++);                                                             \
        const char *dir_ = st_folder(name_, cfg_json, b_.p, b_.n);                                                    \
        char file_[600];                                                                                              \
        snprintf(file_, sizeof file_, "%s/model.safetensors", dir_);                                                  \
        expect_fail_at(label, dir_, (folder_only) ? dir_ : file_, code, needle1, needle2);                            \
        fw_free(&b_);                                                                                                 \
        fw_st_free(&s);                                                                                               \
    } while (0)

/* A case from a raw header text (data: nbytes zeros). */
static void st_raw_case(const char *label, const char *header, size_t ndata, int code, const char *needle1,
                        const char *needle2) {
    fw_buf b = {0};
    fw_st_assemble(header, strlen(header), NULL, &b);
    for (size_t i = 0; i < ndata; i++) fw_u8(&b, 0);
    char name[32];
    snprintf(name, sizeof name, "st%d", case_no++);
    const char *dir = st_folder(name, cfg_json, b.p, b.n);
    char file[600];
    snprintf(file, sizeof file, "%s/model.safetensors", dir);
    expect_fail_at(label, dir, file, code, needle1, needle2);
    fw_free(&b);
}

static void test_safetensors_file(void) {
    {
        const char *dir = st_folder("st_short", cfg_json, "\x10\0\0", 3);
        char file[600];
        snprintf(file, sizeof file, "%s/model.safetensors", dir);
        expect_fail_at("shorter than 8 bytes", dir, file, LL_ERR_FORMAT, "too short", NULL);
    }
    {
        fw_buf b = {0};
        fw_u64(&b, 1000);
        fw_text(&b, "{}      ");
        const char *dir = st_folder("st_hlen", cfg_json, b.p, b.n);
        char file[600];
        snprintf(file, sizeof file, "%s/model.safetensors", dir);
        expect_fail_at("header length past end", dir, file, LL_ERR_FORMAT, "header length 1000", NULL);
        b.n = 0;
        fw_u64(&b, UINT64_MAX);
        fw_text(&b, "{}      ");
        dir = st_folder("st_hlen2", cfg_json, b.p, b.n);
        snprintf(file, sizeof file, "%s/model.safetensors", dir);
        expect_fail_at("header length UINT64_MAX", dir, file, LL_ERR_FORMAT, "header length", NULL);
        fw_free(&b);
    }
    st_raw_case("header not JSON", "{\"a\": [1, 2,, }", 0, LL_ERR_FORMAT, "not valid JSON", NULL);
    st_raw_case("header truncated JSON", "{\"w\": {\"dtype\": \"F32\"", 0, LL_ERR_FORMAT, "not valid JSON", NULL);
    st_raw_case("header an array", "[1, 2, 3]", 0, LL_ERR_FORMAT, "header", NULL);
    st_raw_case("header entry not an object", "{\"w\": 5}", 0, LL_ERR_FORMAT, "'w'", "not an object");
    st_raw_case("entry without dtype", "{\"w\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", 8, LL_ERR_FORMAT, "'w'",
                "dtype");
    st_raw_case("entry without shape", "{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 8]}}", 8, LL_ERR_FORMAT,
                "'w'", "shape");
    st_raw_case("entry without data_offsets", "{\"w\": {\"dtype\": \"F32\", \"shape\": [2]}}", 8, LL_ERR_FORMAT, "'w'",
                "data_offsets");
    st_raw_case("one data offset", "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0]}}", 8,
                LL_ERR_FORMAT, "'w'", "data_offsets");
    st_raw_case("negative shape", "{\"w\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", 8,
                LL_ERR_FORMAT, "'w'", "shape");
    st_raw_case("fractional offset", "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0.5, 8]}}", 8,
                LL_ERR_FORMAT, "'w'", "data_offsets");
    st_raw_case("offsets reversed", "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", 8,
                LL_ERR_FORMAT, "'w'", "data_offsets");
    st_raw_case("too many dims",
                "{\"w\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", 4,
                LL_ERR_FORMAT, "'w'", "dimensions");
    st_raw_case("data_offsets past the end", "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
                4, LL_ERR_FORMAT, "'w'", "past the end");
    st_raw_case("data_offsets far past the end",
                "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [1125899906842624, 1125899906842632]}}",
                8, LL_ERR_FORMAT, "'w'", "past the end");
    ST_CASE("data size does not match shape", LL_ERR_FORMAT, "model.layers.0.self_attn.k_proj.weight",
            "do not fit shape", fw_st_get(&s, "model.layers.0.self_attn.k_proj.weight")->shape[0] = 5);
    ST_CASE("unknown dtype", LL_ERR_UNSUPPORTED, "model.layers.0.self_attn.v_proj.weight", "F33",
            snprintf(fw_st_get(&s, "model.layers.0.self_attn.v_proj.weight")->dtype, 16, "F33"));
    ST_CASE("I8 weights", LL_ERR_UNSUPPORTED, "model.layers.0.self_attn.q_proj.weight", "I8", {
        fw_st_tensor *t = fw_st_get(&s, "model.layers.0.self_attn.q_proj.weight");
        snprintf(t->dtype, 16, "I8");
        t->data.n /= 4;
    });
    ST_CASE("F64 weights", LL_ERR_UNSUPPORTED, "model.norm.weight", "F64", {
        fw_st_tensor *t = fw_st_get(&s, "model.norm.weight");
        snprintf(t->dtype, 16, "F64");
        fw_put(&t->data, t->data.p, t->data.n);
    });
    ST_CASE_IN("missing tensor", 1, LL_ERR_SHAPE, "model.layers.1.mlp.up_proj.weight", "missing",
            fw_st_remove(&s, "model.layers.1.mlp.up_proj.weight"));
    ST_CASE("mis-shaped tensor", LL_ERR_SHAPE, "model.layers.0.mlp.down_proj.weight", "expected [8, 12]", {
        fw_st_tensor *t = fw_st_get(&s, "model.layers.0.mlp.down_proj.weight");
        t->shape[0] = 12, t->shape[1] = 8;
    });
    ST_CASE("duplicate tensor", LL_ERR_FORMAT, "model.norm.weight", "twice",
            snprintf(fw_st_get(&s, "model.layers.1.post_attention_layernorm.weight")->name, 96, "model.norm.weight"));
}

static void test_safetensors_config(void) {
    fw_st s;
    fw_st_from_model(&s, &M);
    fw_buf st = {0}, cfg = {0};
    fw_st_serialize(&s, &st);
    char file[600];
    const char *dir = st_folder("cfg_none", NULL, st.p, st.n);
    snprintf(file, sizeof file, "%s/config.json", dir);
    expect_fail_at("missing config.json", dir, file, LL_ERR_IO, "cannot open", NULL);
    /* a .safetensors path with no config.json beside it */
    char single[600];
    snprintf(single, sizeof single, "%s/model.safetensors", dir);
    expect_fail_at("single file without config", single, file, LL_ERR_IO, "cannot open", NULL);

    dir = st_folder("cfg_bad", "{\"model_type\": \"llama\", \"hidden_size\": 8,,}", st.p, st.n);
    snprintf(file, sizeof file, "%s/config.json", dir);
    expect_fail_at("config not JSON", dir, file, LL_ERR_FORMAT, NULL, NULL);

    fw_hf_config(&M, "llama", "hidden_size", &cfg);
    dir = st_folder("cfg_nohidden", (const char *)cfg.p, st.p, st.n);
    snprintf(file, sizeof file, "%s/config.json", dir);
    expect_fail_at("config without hidden_size", dir, file, LL_ERR_CONFIG, "'hidden_size'", "missing");

    cfg.n = 0;
    fw_hf_config(&M, "gpt2", NULL, &cfg);
    dir = st_folder("cfg_gpt2", (const char *)cfg.p, st.p, st.n);
    snprintf(file, sizeof file, "%s/config.json", dir);
    expect_fail_at("model_type gpt2", dir, file, LL_ERR_UNSUPPORTED, "'gpt2'", NULL);

    dir = st_folder("cfg_strint", "{\"model_type\": \"llama\", \"hidden_size\": \"8\"}", st.p, st.n);
    snprintf(file, sizeof file, "%s/config.json", dir);
    expect_fail_at("config hidden_size a string", dir, file, LL_ERR_CONFIG, "'hidden_size'", "integer");

    /* neither model.safetensors nor an index */
    dir = st_folder("cfg_only", cfg_json, NULL, 0);
    expect_fail("folder without weights", dir, LL_ERR_IO, "model.safetensors.index.json", NULL);
    fw_free(&st);
    fw_free(&cfg);
    fw_st_free(&s);
}

/* Sharded: tensors split over two files with an index. */
static void test_safetensors_sharded(void) {
    fw_st all, a = {0}, b = {0};
    fw_st_from_model(&all, &M);
    for (size_t i = 0; i < all.n_t; i++) {
        fw_st *dst = i < all.n_t / 2 ? &a : &b;
        const fw_st_tensor *t = &all.t[i];
        fw_st_add(dst, t->name, t->dtype, t->ndim, t->shape, t->data.p, t->data.n);
    }
    fw_buf ba = {0}, bb = {0}, idx = {0};
    fw_st_serialize(&a, &ba);
    fw_st_serialize(&b, &bb);
    /* index text for all tensors; override maps one name to another file */
    const char *a_name = "model-00001-of-00002.safetensors", *b_name = "model-00002-of-00002.safetensors";
    struct {
        const char *label, *dir, *extra_name, *extra_file, *missing_shard;
        int code;
        const char *needle1, *needle2;
    } cases[] = {
        {"sharded valid", "sh_ok", NULL, NULL, NULL, 0, NULL, NULL},
        {"index points at a missing shard", "sh_missing", "model.norm.weight", "model-00003-of-00002.safetensors",
         NULL, LL_ERR_IO, "model-00003-of-00002.safetensors", "cannot open"},
        {"index names a tensor absent from its shard", "sh_absent", "model.layers.9.mlp.up_proj.weight", a_name, NULL,
         LL_ERR_SHAPE, "model.layers.9.mlp.up_proj.weight", a_name},
        {"index names the wrong shard", "sh_wrong", "model.norm.weight", a_name, NULL, LL_ERR_SHAPE,
         "model.norm.weight", a_name},
        {"shard file missing", "sh_gone", NULL, NULL, b_name, LL_ERR_IO, b_name, "cannot open"},
        {"tensor in both shards", "sh_dup", NULL, NULL, NULL, LL_ERR_FORMAT, "model.embed_tokens.weight",
         "another shard"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *dir = st_folder(cases[k].dir, cfg_json, NULL, 0);
        char p[700];
        idx.n = 0;
        fw_text(&idx, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
        for (size_t i = 0; i < all.n_t; i++) {
            const char *file = i < all.n_t / 2 ? a_name : b_name;
            const char *name = all.t[i].name;
            if (cases[k].extra_name && !strcmp(name, cases[k].extra_name)) continue;
            snprintf(p, sizeof p, "%s\"%s\": \"%s\"", i ? ", " : "", name, file);
            fw_text(&idx, p);
        }
        if (cases[k].extra_name) {
            snprintf(p, sizeof p, ", \"%s\": \"%s\"", cases[k].extra_name, cases[k].extra_file);
            fw_text(&idx, p);
        }
        fw_text(&idx, "}}");
        fw_u8(&idx, 0);
        snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
        REQUIRE(fw_write_text(p, (const char *)idx.p));
        const int dup = !strcmp(cases[k].dir, "sh_dup");
        fw_buf bdup = {0};
        if (dup) { /* shard b also holds the embedding */
            fw_st b2 = {0};
            const fw_st_tensor *e = &all.t[0];
            fw_st_add(&b2, e->name, e->dtype, e->ndim, e->shape, e->data.p, e->data.n);
            for (size_t i = 0; i < b.n_t; i++)
                fw_st_add(&b2, b.t[i].name, b.t[i].dtype, b.t[i].ndim, b.t[i].shape, b.t[i].data.p, b.t[i].data.n);
            fw_st_serialize(&b2, &bdup);
            fw_st_free(&b2);
        }
        snprintf(p, sizeof p, "%s/%s", dir, a_name);
        REQUIRE(fw_write_file(p, ba.p, ba.n));
        if (!cases[k].missing_shard) {
            snprintf(p, sizeof p, "%s/%s", dir, b_name);
            REQUIRE(fw_write_file(p, dup ? bdup.p : bb.p, dup ? bdup.n : bb.n));
        }
        fw_free(&bdup);
        if (cases[k].code == 0) {
            ll_error err;
            CHECK_MSG(load(dir, &err) == 0, "sharded model: %s", err.message);
        } else {
            /* the message names the index, a shard, or the file it could not open: all inside dir */
            expect_fail_at(cases[k].label, dir, dir, cases[k].code, cases[k].needle1, cases[k].needle2);
        }
    }
    fw_free(&ba);
    fw_free(&bb);
    fw_free(&idx);
    fw_st_free(&all);
    fw_st_free(&a);
    fw_st_free(&b);
}

/* ---- llama2.c ------------------------------------------------------------- */

static void test_llama2c(void) {
    fw_buf b = {0};
    fw_llama2c_serialize(&M, &b);
    const char *path = write_buf("case.bin", b.p, 10);
    expect_fail("llama2c shorter than header", path, LL_ERR_FORMAT, "too short", NULL);
    int32_t h[7];
    memcpy(h, b.p, sizeof h);
    struct {
        const char *label;
        int field;
        int32_t value;
        const char *needle;
    } hdr[] = {
        {"llama2c n_heads 0", 3, 0, "head count 0"},      {"llama2c negative dim", 0, -8, "hidden size -8"},
        {"llama2c negative layers", 2, -2, "layer count -2"}, {"llama2c n_kv_heads 3", 4, 3, "key/value head"},
        {"llama2c dim not divisible", 0, 9, "multiple"},   {"llama2c seq_len 0", 6, 0, "sequence length 0"},
        {"llama2c vocab INT32_MIN", 5, INT32_MIN, "vocabulary size"},
    };
    for (size_t k = 0; k < sizeof hdr / sizeof hdr[0]; k++) {
        fw_buf c = {0};
        fw_put(&c, b.p, b.n);
        memcpy(c.p + 4 * hdr[k].field, &hdr[k].value, 4);
        expect_fail(hdr[k].label, write_buf("case.bin", c.p, c.n), LL_ERR_CONFIG, hdr[k].needle, "llama2.c header");
        fw_free(&c);
    }
    /* truncated inside a tensor: layer 1's q rows start after the embedding,
     * both attention norms and layer 0's q */
    const size_t D = M.dim, q_bytes = D * D * 4;
    const size_t q1 = 28 + (size_t)M.vocab * D * 4 + 2 * D * 4 + q_bytes;
    expect_fail("llama2c cut in q of layer 1", write_buf("case.bin", b.p, q1 + 5), LL_ERR_FORMAT,
                "model.layers.1.self_attn.q_proj.weight", "ends inside");
    expect_fail("llama2c cut in embedding", write_buf("case.bin", b.p, 100), LL_ERR_FORMAT,
                "model.embed_tokens.weight", "ends inside");
    expect_fail("llama2c cut in freq_cis", write_buf("case.bin", b.p, b.n - 4), LL_ERR_FORMAT, "freq_cis",
                "ends inside");
    fw_put(&b, "extra", 5);
    expect_fail("llama2c trailing bytes", write_buf("case.bin", b.p, b.n), LL_ERR_FORMAT, "header implies", NULL);
    fw_free(&b);
}

/* ---- valid files and parity ----------------------------------------------- */

static float *hidden_states(const char *path, const ll_batch *batch, size_t n_tokens) {
    ll_model *m = NULL;
    ll_error err = {0};
    int rc = ll_model_load(&m, path, NULL, &err);
    CHECK_MSG(rc == 0, "valid model %s does not load: %s", path, err.message);
    if (rc) return NULL;
    const ll_config *cfg = ll_model_config(m);
    CHECK(cfg->dim == M.dim && cfg->n_layers == M.n_layers && cfg->n_heads == M.n_heads &&
          cfg->n_kv_heads == M.n_kv_heads && cfg->hidden_dim == M.hidden && cfg->vocab_size == M.vocab);
    float *h = calloc(n_tokens * (size_t)M.dim, sizeof *h);
    ll_forward_options fo = {.bidirectional_from = M.n_layers};
    ll_forward_outputs out = {.hidden = h};
    rc = ll_forward(m, batch, &fo, &out, &err);
    CHECK_MSG(rc == 0, "forward on %s: %s", path, err.message);
    ll_model_free(m);
    return h;
}

static const char *gguf_path, *st_dir, *l2c_path;

static void test_valid_parity(void) {
    fw_gguf g;
    fw_gguf_from_model(&g, &M);
    gguf_path = write_gguf(&g, "valid.gguf");
    gguf_path = strdup(gguf_path);
    fw_gguf_free(&g);
    fw_st s;
    fw_st_from_model(&s, &M);
    fw_buf b = {0};
    fw_st_serialize(&s, &b);
    st_dir = strdup(st_folder("valid_hf", cfg_json, b.p, b.n));
    fw_st_free(&s);
    fw_llama2c_serialize(&M, &b);
    l2c_path = strdup(write_buf("valid.bin", b.p, b.n));
    fw_free(&b);

    const int32_t tokens[] = {1, 5, 3, 7, 15, 2, 9, 0, 12};
    const int32_t starts[] = {0, 5, 9};
    const ll_batch batch = {tokens, starts, 2};
    const size_t n = 9;
    float *hg = hidden_states(gguf_path, &batch, n), *hs = hidden_states(st_dir, &batch, n),
          *hl = hidden_states(l2c_path, &batch, n);
    if (hg && hs && hl) {
        const size_t k = n * (size_t)M.dim;
        CHECK_MSG(max_abs(hs, k) > 0.1, "hidden states look empty");
        CHECK_MSG(max_abs_diff(hg, hs, k) < 1e-5, "GGUF vs safetensors: %g", max_abs_diff(hg, hs, k));
        CHECK_MSG(max_abs_diff(hl, hs, k) < 1e-5, "llama2.c vs safetensors: %g", max_abs_diff(hl, hs, k));
    }
    free(hg), free(hs), free(hl);
    /* GGUF version 2 (same 64-bit counts as v3) reads the same */
    {
        fw_gguf g2;
        fw_gguf_from_model(&g2, &M);
        g2.version = 2;
        float *h2 = hidden_states(write_gguf(&g2, "valid_v2.gguf"), &batch, n);
        hs = hidden_states(st_dir, &batch, n);
        CHECK_MSG(h2 && hs && max_abs_diff(h2, hs, n * (size_t)M.dim) < 1e-5, "GGUF v2 differs from safetensors");
        free(h2), free(hs);
        fw_gguf_free(&g2);
    }
    /* the GGUF q/k rows really are permuted: storing them in HF order changes the output */
    {
        fw_gguf g2;
        fw_gguf_from_model(&g2, &M);
        fw_tensor_ref refs[FW_MAX_TENSORS];
        const size_t nr = fw_model_tensors(&M, refs, FW_MAX_TENSORS);
        for (size_t i = 0; i < nr; i++)
            if (refs[i].interleave) {
                fw_gguf_tensor *t = fw_gguf_get_tensor(&g2, refs[i].gguf_name);
                memcpy(t->data.p, refs[i].data, t->data.n);
            }
        float *hu = hidden_states(write_gguf(&g2, "unpermuted.gguf"), &batch, n);
        hs = hidden_states(st_dir, &batch, n);
        if (hu && hs) CHECK_MSG(max_abs_diff(hu, hs, n * (size_t)M.dim) > 1e-3, "q/k order makes no difference?");
        free(hu), free(hs);
        fw_gguf_free(&g2);
    }
}

/* ---- CLI ------------------------------------------------------------------ */

/* Run a shell command; returns the exit status, or -1 if it died by a signal. */
static int run_cmd(const char *cmd) {
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

static char *slurp(const char *path) {
    char *s = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    s = calloc((size_t)n + 1, 1);
    if (n > 0 && fread(s, 1, (size_t)n, f) != (size_t)n) s[0] = 0;
    fclose(f);
    return s;
}

/* Run `lsllama ARGS` with stdin from input (may be NULL); expect the exit
 * code (want_rc, or any non-zero if want_rc < 0) and needle in stderr. */
static void cli_case(const char *label, const char *args, const char *input, int want_rc, const char *needle,
                     const char *needle2) {
    char cmd[4096];
    const char *in = tpath("cli_in.txt"), *out = tpath("cli_out.txt"), *errf = tpath("cli_err.txt");
    REQUIRE(fw_write_text(in, input ? input : ""));
    snprintf(cmd, sizeof cmd, "'%s' %s < '%s' > '%s' 2> '%s'", LL_CLI_PATH, args, in, out, errf);
    const int rc = run_cmd(cmd);
    char *e = slurp(errf);
    /* no crash, and (in sanitizer builds) no ASan/UBSan/LSan report */
    const int clean = !strstr(e, "Sanitizer") && !strstr(e, "runtime error");
    const int ok = rc >= 0 && rc < 128 && clean && (want_rc < 0 ? rc != 0 : rc == want_rc) &&
                   (!needle || strstr(e, needle)) && (!needle2 || strstr(e, needle2));
    CHECK_MSG(ok, "%s: exit %d, stderr '%s', want %s / %s", label, rc, e, needle ? needle : "",
              needle2 ? needle2 : "");
    free(e);
}

static void test_cli(void) {
    char args[2048];
    fw_gguf g;
    fw_gguf_from_model(&g, &M);
    fw_buf b = {0};
    fw_gguf_serialize(&g, &b, NULL);
    const char *broken = write_buf("cli_broken.gguf", b.p, b.n / 2);
    char *broken_copy = strdup(broken);
    snprintf(args, sizeof args, "inspect '%s'", broken_copy);
    cli_case("inspect broken gguf", args, NULL, -1, broken_copy, "past the end");
    snprintf(args, sizeof args, "embed '%s'", broken_copy);
    cli_case("embed broken gguf", args, "1 2 3\n", -1, broken_copy, NULL);
    fw_gguf_get_tensor(&g, "blk.0.attn_q.weight")->type = 99;
    const char *bad_type = strdup(write_gguf(&g, "cli_badtype.gguf"));
    snprintf(args, sizeof args, "inspect '%s'", bad_type);
    cli_case("inspect unknown type", args, NULL, -1, bad_type, "blk.0.attn_q.weight");
    snprintf(args, sizeof args, "embed '%s'", l2c_path);
    cli_case("embed valid llama2c", args, "1 2 3\n", 0, NULL, NULL); /* valid: sanity */
    const char *bin = strdup(write_buf("cli_trunc.bin", b.p, 40)); /* GGUF magic, header cut */
    snprintf(args, sizeof args, "embed '%s'", bin);
    cli_case("embed truncated gguf head", args, "1\n", -1, bin, NULL);
    snprintf(args, sizeof args, "inspect '%s'", st_dir);
    cli_case("inspect valid folder", args, NULL, 0, NULL, NULL);
    snprintf(args, sizeof args, "inspect '%s/nonexistent.gguf'", tmp_root);
    cli_case("inspect missing file", args, NULL, -1, "nonexistent.gguf", NULL);
    /* bad token lines */
    snprintf(args, sizeof args, "embed '%s'", gguf_path);
    cli_case("embed valid", args, "1 2 3\n4 5\n", 0, NULL, NULL);
    cli_case("embed non-integer", args, "1 2 3\n4 x 5\n", -1, "<stdin>:2", "'x'");
    cli_case("embed id >= vocab", args, "16\n", -1, "<stdin>:1", "16");
    cli_case("embed negative id", args, "3\n2\n-1\n", -1, "<stdin>:3", NULL);
    cli_case("embed empty line", args, "1 2\n\n3\n", -1, "<stdin>:2", "empty");
    cli_case("embed huge id", args, "99999999999999999999\n", -1, "<stdin>:1", NULL);
    free(broken_copy);
    free((void *)bad_type);
    free((void *)bin);
    fw_free(&b);
    fw_gguf_free(&g);
}

int main(void) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/lsllama_bad_input_XXXXXX");
    REQUIRE(mkdtemp(tmp_root));
    fw_model_init(&M, 8, 12, 2, 2, 1, 16);
    fw_buf cfg = {0};
    fw_hf_config(&M, "llama", NULL, &cfg);
    snprintf(cfg_json, sizeof cfg_json, "%s", (const char *)cfg.p);
    fw_free(&cfg);

    test_valid_parity();
    test_gguf_truncated();
    test_gguf_header();
    test_gguf_many_tensors();
    test_gguf_tensors();
    test_safetensors_file();
    test_safetensors_config();
    test_safetensors_sharded();
    test_llama2c();
    test_cli();

    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    CHECK(system(cmd) == 0);
    free((void *)gguf_path), free((void *)st_dir), free((void *)l2c_path);
    fw_model_free(&M);
    return test_summary("test_bad_input");
}
