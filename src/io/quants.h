/* GGML quantization block layouts (facts of the GGUF format): one struct per
 * block, its size checked at compile time (dtype.c's traits table takes
 * block_bytes from sizeof), and one scalar reference dequantizer per format. */
#ifndef LL_IO_QUANTS_H
#define LL_IO_QUANTS_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define LL_QK4_0 32
#define LL_QK4_1 32
#define LL_QK5_0 32
#define LL_QK5_1 32
#define LL_QK8_0 32
#define LL_QK_K 256
#define LL_K_SCALE_SIZE 12

typedef struct {
    uint16_t d;               /* f16 scale */
    uint8_t qs[LL_QK4_0 / 2]; /* nibbles: low = first half, high = second half */
} ll_block_q4_0;
static_assert(sizeof(ll_block_q4_0) == 18, "q4_0 block size");

typedef struct {
    uint16_t d;               /* f16 scale */
    uint16_t m;               /* f16 min */
    uint8_t qs[LL_QK4_1 / 2];
} ll_block_q4_1;
static_assert(sizeof(ll_block_q4_1) == 20, "q4_1 block size");

typedef struct {
    uint16_t d;               /* f16 scale */
    uint8_t qh[4];            /* fifth bits: bit j of the little-endian uint32 belongs to element j */
    uint8_t qs[LL_QK5_0 / 2]; /* low nibbles: low = first half, high = second half */
} ll_block_q5_0;
static_assert(sizeof(ll_block_q5_0) == 22, "q5_0 block size");

typedef struct {
    uint16_t d;               /* f16 scale */
    uint16_t m;               /* f16 min */
    uint8_t qh[4];            /* fifth bits, as q5_0 */
    uint8_t qs[LL_QK5_1 / 2];
} ll_block_q5_1;
static_assert(sizeof(ll_block_q5_1) == 24, "q5_1 block size");

typedef struct {
    uint16_t d; /* f16 scale */
    int8_t qs[LL_QK8_0];
} ll_block_q8_0;
static_assert(sizeof(ll_block_q8_0) == 34, "q8_0 block size");

typedef struct {
    uint16_t d;                         /* f16 super-block scale for scales */
    uint16_t dmin;                      /* f16 super-block scale for mins */
    uint8_t scales[LL_K_SCALE_SIZE];    /* 8 x (6-bit scale, 6-bit min) packed */
    uint8_t qs[LL_QK_K / 2];            /* 4-bit quants */
} ll_block_q4_K;
static_assert(sizeof(ll_block_q4_K) == 144, "q4_K block size");

typedef struct {
    uint16_t d;                      /* f16 super-block scale for scales */
    uint16_t dmin;                   /* f16 super-block scale for mins */
    uint8_t scales[LL_K_SCALE_SIZE]; /* 8 x (6-bit scale, 6-bit min), packed as q4_K's */
    uint8_t qh[LL_QK_K / 8];         /* fifth bits: bit i of qh[l] for element l of sub-block i */
    uint8_t qs[LL_QK_K / 2];         /* low 4 bits, as q4_K */
} ll_block_q5_K;
static_assert(sizeof(ll_block_q5_K) == 176, "q5_K block size");

typedef struct {
    uint8_t ql[LL_QK_K / 2];      /* low 4 bits */
    uint8_t qh[LL_QK_K / 4];      /* high 2 bits */
    int8_t scales[LL_QK_K / 16];  /* 8-bit sub-block scales */
    uint16_t d;                   /* f16 super-block scale */
} ll_block_q6_K;
static_assert(sizeof(ll_block_q6_K) == 210, "q6_K block size");

/* y[n] = the n elements (n a multiple of the block size) of the blocks at x
 * (an array of the format's block struct), as f32. Signatures are
 * ll_to_f32_fn's, so the traits table points at them directly. */
void ll_dequantize_row_q4_0(const void *x, float *y, size_t n);
void ll_dequantize_row_q4_1(const void *x, float *y, size_t n);
void ll_dequantize_row_q5_0(const void *x, float *y, size_t n);
void ll_dequantize_row_q5_1(const void *x, float *y, size_t n);
/* y = x[n] (n a whole number of blocks) quantized to Q8_0 exactly as the
 * gguf package's quants.quantize and llama.cpp's quantize_row_q8_0_ref: per
 * block d = max|x| / 127 (f32), q = round-half-away(x / d computed as x * (1/d)),
 * d stored as f16 (nearest even). */
void ll_quantize_row_q8_0(const float *x, void *y, size_t n);
void ll_dequantize_row_q8_0(const void *x, float *y, size_t n);
void ll_dequantize_row_q4_K(const void *x, float *y, size_t n);
void ll_dequantize_row_q5_K(const void *x, float *y, size_t n);
void ll_dequantize_row_q6_K(const void *x, float *y, size_t n);

#endif
