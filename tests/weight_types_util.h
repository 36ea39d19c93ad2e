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

#endif
