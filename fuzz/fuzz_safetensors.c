/* libFuzzer target for the safetensors reader: parse the input as an
 * in-memory .safetensors file; on success touch every tensor (first and last
 * data byte) and check the lookup agrees with the table. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "io/mapped_file.h"
#include "io/safetensors.h"

static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ll_error err;
    ll_mapped_file f;
    if (ll_map_memory(&f, data, size, "fuzz.safetensors", &err)) return 0;
    ll_st_file *s;
    if (ll_st_open_mapped(&s, &f, &err)) return 0;
    for (size_t i = 0; i < s->n_tensors; i++) {
        const ll_st_tensor *t = &s->tensors[i];
        sink += strlen(t->name) + strlen(t->dtype_name) + t->n_elems + (uint64_t)t->ndim;
        for (int d = 0; d < t->ndim; d++) sink += (uint64_t)t->shape[d];
        if (t->nbytes) sink += t->data[0] + t->data[t->nbytes - 1];
        if (ll_st_find(s, t->name) != t) __builtin_trap();
    }
    ll_st_close(s);
    return 0;
}
