/* What the weight-type tests share: every type a frozen matrix can be stored
 * in, with the byte offsets of its blocks' f16 scale/min fields (set to finite
 * or special values by the tests), and a seedable splitmix64 stream
 * (core/rng.h's mixer: the tests' data differ by their seed only). */
#ifndef LL_TESTS_WEIGHT_TYPES_UTIL_H
#define LL_TESTS_WEIGHT_TYPES_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "io/dtype.h"
#include "io/quants.h"
#include "kernels/kernels.h"
#include "test_util.h"

typedef struct wtype {
    ll_dtype dt;
    int n_f16;        /* f16 scale/min fields per block */
    size_t f16_at[2]; /* their byte offsets */
} wtype;

static const wtype weight_types[] = {
    {LL_DTYPE_F32, 0, {0}},
    {LL_DTYPE_F16, 0, {0}},
    {LL_DTYPE_BF16, 0, {0}},
    {LL_DTYPE_Q8_0, 1, {offsetof(ll_block_q8_0, d)}},
    {LL_DTYPE_Q4_0, 1, {offsetof(ll_block_q4_0, d)}},
    {LL_DTYPE_Q4_1, 2, {offsetof(ll_block_q4_1, d), offsetof(ll_block_q4_1, m)}},
    {LL_DTYPE_Q5_0, 1, {offsetof(ll_block_q5_0, d)}},
    {LL_DTYPE_Q5_1, 2, {offsetof(ll_block_q5_1, d), offsetof(ll_block_q5_1, m)}},
    {LL_DTYPE_Q4_K, 2, {offsetof(ll_block_q4_K, d), offsetof(ll_block_q4_K, dmin)}},
    {LL_DTYPE_Q5_K, 2, {offsetof(ll_block_q5_K, d), offsetof(ll_block_q5_K, dmin)}},
    {LL_DTYPE_Q6_K, 1, {offsetof(ll_block_q6_K, d)}},
};
#define N_WEIGHT_TYPES (sizeof weight_types / sizeof *weight_types)

/* The test's random stream: set rng_state to seed it. */
static uint64_t rng_state;
static inline uint64_t next_u64(void) { return ll_splitmix64_next(&rng_state); }

static inline float uniform(float lo, float hi) { return lo + (hi - lo) * (float)((next_u64() >> 40) / (double)(1u << 24)); }

/* One valid random block (or element, for plain types) of type w at p. */
static inline void random_block(const wtype *w, uint8_t *p) {
    const size_t bb = ll_dtype_block_bytes(w->dt);
    if (w->dt == LL_DTYPE_F32) {
        const float v = uniform(-1.0f, 1.0f);
        memcpy(p, &v, 4);
        return;
    }
    if (w->dt == LL_DTYPE_F16 || w->dt == LL_DTYPE_BF16) {
        const float v = uniform(-1.0f, 1.0f);
        const uint16_t h = w->dt == LL_DTYPE_F16 ? ll_fp32_to_fp16(v) : ll_fp32_to_bf16(v);
        memcpy(p, &h, 2);
        return;
    }
    for (size_t i = 0; i < bb; i++) p[i] = (uint8_t)next_u64();
    for (int f = 0; f < w->n_f16; f++) {
        const uint16_t h = ll_fp32_to_fp16(uniform(-0.05f, 0.05f));
        memcpy(p + w->f16_at[f], &h, 2);
    }
}

/* A rows x cols matrix of type w with a row stride of ld_blocks blocks; the
 * blocks past cols are filled with 0xFF bytes (NaN scales, NaN floats). */
static inline ll_matrix make_matrix(const wtype *w, size_t rows, size_t cols, size_t ld_blocks, uint8_t **storage) {
    const size_t be = (size_t)ll_dtype_block_elems(w->dt), bb = ll_dtype_block_bytes(w->dt), nb = cols / be;
    REQUIRE(cols % be == 0 && ld_blocks >= nb);
    uint8_t *data = malloc(rows * ld_blocks * bb);
    REQUIRE(data);
    memset(data, 0xFF, rows * ld_blocks * bb);
    for (size_t r = 0; r < rows; r++)
        for (size_t b = 0; b < nb; b++) random_block(w, data + (r * ld_blocks + b) * bb);
    *storage = data;
    return (ll_matrix){w->dt, data, rows, cols, ld_blocks, LL_DTYPE_F32};
}

/* The same values as f32, dense (ll_dequantize row by row). */
static inline float *dequantized(const ll_matrix *W) {
    float *f = malloc(W->rows * W->cols * sizeof(float));
    REQUIRE(f);
    const size_t bb = ll_dtype_block_bytes(W->dtype);
    for (size_t r = 0; r < W->rows; r++)
        ll_dequantize(W->dtype, (const uint8_t *)W->data + r * W->ld_blocks * bb, f + r * W->cols, W->cols);
    for (size_t i = 0; i < W->rows * W->cols; i++) REQUIRE(isfinite(f[i])); /* valid blocks */
    return f;
}

#endif
