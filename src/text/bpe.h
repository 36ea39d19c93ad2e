/* BPE merge engine over one pre-token. */
#ifndef LL_TEXT_BPE_H
#define LL_TEXT_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "text/maps.h"

typedef struct ll_bpe_scratch ll_bpe_scratch;

typedef struct ll_bpe_params {
    const ll_pairmap *merges;
    int byte_level;          /* initial symbols: bytes via byte_id (else UTF-8 chars via lookup) */
    const int32_t *byte_id;  /* [256] byte-level alphabet ids, or byte-fallback ids (-1: none) */
    const uint32_t *byte_char; /* [256] byte-level: the code point standing for each byte (GPT-2 alphabet) */
    const int32_t *ascii_id; /* [128] single-char ids (char mode) */
    int byte_fallback, fuse_unk, ignore_merges;
    int32_t unk_id;
    int32_t (*lookup)(const void *ctx, const char *s, size_t n);
    const void *lookup_ctx;
} ll_bpe_params;

/* called per output token: id and its byte span [start, start+len) in the piece */
typedef int (*ll_bpe_emit_fn)(void *ctx, int32_t id, uint32_t start, uint32_t len);

ll_bpe_scratch *ll_bpe_scratch_new(void);
void ll_bpe_scratch_free(ll_bpe_scratch *s);
/* returns 0, -1 on allocation failure, or the emit callback's non-zero code */
int ll_bpe_encode_piece(const ll_bpe_params *p, ll_bpe_scratch *s, const uint8_t *text, size_t n, ll_bpe_emit_fn emit,
                     void *ctx);

#endif
