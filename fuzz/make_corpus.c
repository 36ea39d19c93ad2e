/* Seed corpora for the fuzz targets, made with the test-side fixture writer:
 *   make_corpus GGUF_DIR SAFETENSORS_DIR [REAL.gguf]
 * writes the valid tiny model as GGUF v3 and v2, a variant with every scalar
 * key type, arrays and general.alignment, a dim-32 model, the tiny model and a
 * subset as safetensors, one tensor per safetensors dtype and, if given, the
 * first 64 KiB of a real GGUF file. */
#include <stdio.h>

#include "fixture_writer.h"

static void put(const char *dir, const char *name, const void *data, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!fw_write_file(path, data, n)) {
        fprintf(stderr, "make_corpus: cannot write %s\n", path);
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: make_corpus GGUF_DIR SAFETENSORS_DIR [REAL.gguf]\n");
        return 2;
    }
    fw_model m;
    fw_model_init(&m, 8, 12, 2, 2, 1, 16);
    fw_buf b = {0};
    fw_gguf g;
    fw_gguf_from_model(&g, &m);
    fw_gguf_serialize(&g, &b, NULL);
    put(argv[1], "tiny_v3.gguf", b.p, b.n);
    g.version = 2;
    fw_gguf_serialize(&g, &b, NULL);
    put(argv[1], "tiny_v2.gguf", b.p, b.n);
    /* every scalar type once, a numeric array, a nested array, an alignment key */
    g.version = 3;
    for (uint32_t t = 0; t <= 12; t++) {
        if (t == FW_GGUF_STRING || t == FW_GGUF_ARRAY) continue;
        char key[32];
        uint8_t v[8] = {1, 0, 0, 0, 0, 0, 0, 0};
        const size_t sz = t <= 1 || t == 7 ? 1 : t <= 3 ? 2 : t <= 6 ? 4 : 8;
        snprintf(key, sizeof key, "test.type%u", t);
        fw_gguf_set_raw(&g, key, t, v, sz);
    }
    fw_buf arr = {0};
    fw_u32(&arr, 5), fw_u64(&arr, 3), fw_u32(&arr, 7), fw_u32(&arr, 8), fw_u32(&arr, 9);
    fw_gguf_set_raw(&g, "test.i32_array", FW_GGUF_ARRAY, arr.p, arr.n);
    arr.n = 0;
    fw_u32(&arr, FW_GGUF_ARRAY), fw_u64(&arr, 1), fw_u32(&arr, 0), fw_u64(&arr, 2), fw_u8(&arr, 1), fw_u8(&arr, 2);
    fw_gguf_set_raw(&g, "test.nested", FW_GGUF_ARRAY, arr.p, arr.n);
    fw_free(&arr);
    fw_gguf_set_u32(&g, "general.alignment", 32);
    fw_gguf_serialize(&g, &b, NULL);
    put(argv[1], "tiny_types.gguf", b.p, b.n);
    fw_gguf_free(&g);

    fw_st s;
    fw_st_from_model(&s, &m);
    fw_st_serialize(&s, &b);
    put(argv[2], "tiny.safetensors", b.p, b.n);
    while (s.n_t > 3) fw_st_remove(&s, s.t[s.n_t - 1].name);
    fw_st_serialize(&s, &b);
    put(argv[2], "tiny_part.safetensors", b.p, b.n);
    static const struct {
        const char *name;
        size_t bytes;
    } dtypes[] = {{"F16", 2}, {"BF16", 2}, {"I32", 4}, {"I64", 8}, {"U8", 1}, {"I8", 1}, {"F64", 8}, {"BOOL", 1}};
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++) {
        fw_st d = {0};
        const int64_t shape[2] = {2, 4};
        const uint8_t zeros[64] = {0};
        fw_st_add(&d, "w", dtypes[i].name, 2, shape, zeros, 8 * dtypes[i].bytes);
        fw_st_serialize(&d, &b);
        char name[64];
        snprintf(name, sizeof name, "dtype_%s.safetensors", dtypes[i].name);
        put(argv[2], name, b.p, b.n);
        fw_st_free(&d);
    }
    fw_st_free(&s);

    fw_model big;
    fw_model_init(&big, 32, 48, 1, 4, 2, 20);
    fw_gguf_from_model(&g, &big);
    fw_gguf_serialize(&g, &b, NULL);
    put(argv[1], "small_v3.gguf", b.p, b.n);
    fw_gguf_free(&g);
    fw_model_free(&big);

    if (argc > 3) {
        FILE *fp = fopen(argv[3], "rb");
        if (!fp) {
            fprintf(stderr, "make_corpus: cannot open %s\n", argv[3]);
            return 1;
        }
        static uint8_t head[65536];
        size_t n = fread(head, 1, sizeof head, fp);
        fclose(fp);
        put(argv[1], "real_head64k.gguf", head, n);
    }
    fw_free(&b);
    fw_model_free(&m);
    return 0;
}
