/* libFuzzer target: the SentencePiece tokenizer.model reader (and the llama2.c tokenizer.bin reader on the same bytes), then encode/decode with
 * whatever loads. Build: CC=clang cmake -DLL_FUZZ=ON
 * -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link,address,undefined -B build-fuzz */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_tokenizer_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ll_tokenizer *t;
    ll_error err;
    if (ll_tokenizer_load_memory(&t, data, size, LL_TOKFMT_SPM, "fuzz.model", &err) == 0) {
        exercise(t, data, size);
        ll_tokenizer_free(t);
    }
    if (ll_tokenizer_load_memory(&t, data, size, LL_TOKFMT_LLAMA2C, "fuzz.bin", &err) == 0) {
        exercise(t, data, size);
        ll_tokenizer_free(t);
    }
    return 0;
}
