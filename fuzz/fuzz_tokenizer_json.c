/* libFuzzer target: the tokenizer.json reader, then encode/decode with
 * whatever loads. Build: CC=clang cmake -DLL_FUZZ=ON
 * -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link,address,undefined -B build-fuzz */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_tokenizer_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ll_tokenizer *t;
    ll_error err;
    if (ll_tokenizer_load_memory(&t, data, size, LL_TOKFMT_JSON, "fuzz.json", &err) == 0) {
        exercise(t, data, size);
        ll_tokenizer_free(t);
    }
    return 0;
}
