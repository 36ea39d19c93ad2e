/* Shared by the tokenizer fuzz targets: after a reader accepted the input,
 * encode a few fixed texts (and decode them back) and a prefix of the input
 * itself, so the loaded vocabulary, merges and patterns are exercised. */
#ifndef LL_FUZZ_TOKENIZER_COMMON_H
#define LL_FUZZ_TOKENIZER_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lsllama_tokenizer.h"

static void exercise(ll_tokenizer *t, const uint8_t *data, size_t size) {
    static const char *texts[] = {"Hello world", " it's  12345 ", "a\xF0\x9F\x98\x80z\xff", "<|im_start|>x<s>", ""};
    ll_encoding enc = {0};
    ll_error err;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        if (ll_tokenizer_encode(t, texts[i], strlen(texts[i]), LL_TOK_DEFAULT, &enc, &err) == 0) {
            char *out;
            size_t len;
            if (ll_tokenizer_decode(t, enc.ids, enc.n, 0, &out, &len, &err) == 0) free(out);
        }
    }
    size_t n = size < 256 ? size : 256;
    ll_tokenizer_encode(t, (const char *)data, n, LL_TOK_DEFAULT, &enc, &err);
    ll_encoding_free(&enc);
}

#endif
