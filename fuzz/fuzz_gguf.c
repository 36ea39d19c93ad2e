/* libFuzzer target for the GGUF reader: parse the input as an in-memory GGUF
 * file; on success touch every key/value and tensor (first and last data
 * byte, every string array element, the typed getters), then run the
 * checkpoint builder (config extraction, tensor name mapping, validation) and
 * walk its tensor table and metadata. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "io/gguf.h"
#include "io/mapped_file.h"
#include "model/checkpoint.h"

static volatile uint64_t sink;
static volatile double fsink;

static void visit(void *ctx, const char *key, const char *value) {
    (void)ctx;
    sink += strlen(key) + strlen(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ll_error err;
    ll_mapped_file f;
    if (ll_map_memory(&f, data, size, "fuzz.gguf", &err)) return 0;
    ll_gguf_file *g;
    if (ll_gguf_open_mapped(&g, &f, &err)) return 0;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const ll_gguf_kv *kv = &g->kv[i];
        int64_t iv;
        double fv;
        int bv;
        char buf[64];
        ll_gguf_get_int(g, kv->key, 1, &iv, &err);
        ll_gguf_get_float(g, kv->key, 1, &fv, &err);
        ll_gguf_get_bool(g, kv->key, 1, &bv, &err);
        ll_gguf_get_string(g, kv->key, 1, buf, sizeof buf, &err);
        if (kv->type == GGUF_TYPE_STRING && kv->str.len) sink += (uint8_t)kv->str.ptr[0] + (uint8_t)kv->str.ptr[kv->str.len - 1];
        if (kv->type != GGUF_TYPE_ARRAY) continue;
        if (kv->arr_strs)
            for (uint64_t j = 0; j < kv->arr_n; j++) {
                const ll_gguf_str *s = &kv->arr_strs[j];
                for (uint64_t k = 0; k < s->len; k++) sink += (uint8_t)s->ptr[k];
            }
        else if (kv->arr_data)
            for (uint64_t j = 0; j < kv->arr_n; j++) fsink += ll_gguf_arr_num(kv, j);
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const ll_gguf_tensor *t = &g->tensors[i];
        sink += strlen(t->name) + t->n_elems;
        if (t->nbytes) sink += t->data[0] + t->data[t->nbytes - 1];
        if (ll_gguf_find_tensor(g, t->name) != t) __builtin_trap();
    }
    ll_checkpoint *c;
    if (ll_checkpoint_from_gguf(&c, g, &err)) return 0; /* owns g now */
    for (size_t i = 0; i < ll_checkpoint_n_tensors(c); i++) {
        const ll_tensor_info *t = ll_checkpoint_tensor(c, i);
        const uint8_t *p = t->data;
        if (t->nbytes) sink += p[0] + p[t->nbytes - 1];
    }
    ll_checkpoint_visit_metadata(c, visit, NULL);
    ll_checkpoint_close(c);
    return 0;
}
