/* The element-type traits table (io/dtype.c): every row agrees with the GGUF
 * format's block geometry and with the GGML id lookups, and ll_dequantize goes
 * through each row's to_f32 (hand-built blocks with known values). */
#include <stdint.h>

#include "io/dtype.h"
#include "io/quants.h"
#include "test_util.h"

/* Every row is complete and the per-field accessors read the same row. */
static void check_rows(void) {
    for (int i = 0; i < LL_DTYPE_COUNT; i++) {
        const ll_dtype t = (ll_dtype)i;
        const ll_type_traits *tr = ll_get_type_traits(t);
        REQUIRE(tr);
        CHECK_MSG(tr->name && tr->name[0] && !strcmp(ll_dtype_name(t), tr->name), "dtype %d name", i);
        CHECK_MSG(tr->block_elems >= 1 && tr->block_bytes >= 1, "%s geometry", tr->name);
        CHECK(ll_dtype_block_elems(t) == tr->block_elems && ll_dtype_block_bytes(t) == tr->block_bytes);
        CHECK_MSG(ll_dtype_is_float_convertible(t) == (tr->to_f32 != NULL), "%s convertible", tr->name);
        if (tr->ggml_type >= 0) { /* the GGML id maps back to this row, with this row's geometry */
            const char *name = NULL;
            int be = 0;
            size_t bb = 0;
            CHECK_MSG(ll_dtype_from_ggml((uint32_t)tr->ggml_type) == t, "%s from GGML id", tr->name);
            CHECK_MSG(ll_ggml_type_info((uint32_t)tr->ggml_type, &name, &be, &bb) && name && !strcmp(name, tr->name) &&
                          be == tr->block_elems && bb == tr->block_bytes,
                      "%s GGML info", tr->name);
        }
    }
    CHECK(ll_get_type_traits(LL_DTYPE_INVALID) == NULL && ll_get_type_traits(LL_DTYPE_COUNT) == NULL);
    CHECK(!strcmp(ll_dtype_name(LL_DTYPE_INVALID), "invalid") && !ll_dtype_is_float_convertible(LL_DTYPE_INVALID));
    CHECK(!ll_dtype_is_float_convertible(LL_DTYPE_I32) && ll_dtype_is_float_convertible(LL_DTYPE_Q6_K));
}

/* Block geometry as the GGUF format fixes it (ggml-common.h's block sizes). */
static void check_gguf_geometry(void) {
    const struct {
        ll_dtype t;
        int elems;
        size_t bytes;
    } want[] = {{LL_DTYPE_F32, 1, 4},    {LL_DTYPE_F16, 1, 2},    {LL_DTYPE_BF16, 1, 2},
                {LL_DTYPE_Q8_0, 32, 34}, {LL_DTYPE_Q4_0, 32, 18}, {LL_DTYPE_Q4_1, 32, 20},
                {LL_DTYPE_Q4_K, 256, 144}, {LL_DTYPE_Q6_K, 256, 210}, {LL_DTYPE_Q5_0, 32, 22},
                {LL_DTYPE_Q5_1, 32, 24}, {LL_DTYPE_Q5_K, 256, 176}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK_MSG(ll_dtype_block_elems(want[i].t) == want[i].elems && ll_dtype_block_bytes(want[i].t) == want[i].bytes,
                  "%s: %d elements in %zu bytes", ll_dtype_name(want[i].t), want[i].elems, want[i].bytes);
    uint64_t bytes = 0;
    CHECK(ll_dtype_nbytes(LL_DTYPE_Q4_1, 64, &bytes) && bytes == 40);
    CHECK(!ll_dtype_nbytes(LL_DTYPE_Q4_1, 33, &bytes));                  /* not whole blocks */
    CHECK(!ll_dtype_nbytes(LL_DTYPE_F32, UINT64_MAX / 2, &bytes));         /* overflows */
    CHECK(!ll_dtype_nbytes(LL_DTYPE_INVALID, 4, &bytes));
    /* GGML ids: a loadable one, a known unloadable one, an unknown one */
    const char *name = NULL;
    int be = 0;
    size_t bb = 0;
    CHECK(ll_dtype_from_ggml(LL_GGML_Q4_1) == LL_DTYPE_Q4_1 && ll_dtype_from_ggml(LL_GGML_I32) == LL_DTYPE_I32);
    CHECK(ll_ggml_type_info(LL_GGML_Q3_K, &name, &be, &bb) && !strcmp(name, "Q3_K") && be == 256 && bb == 110);
    CHECK(ll_dtype_from_ggml(LL_GGML_Q3_K) == LL_DTYPE_INVALID);
    CHECK(ll_dtype_from_ggml(LL_GGML_Q5_K) == LL_DTYPE_Q5_K && ll_dtype_from_ggml(LL_GGML_Q5_0) == LL_DTYPE_Q5_0);
    CHECK(!ll_ggml_type_info(5, &name, &be, &bb) && ll_dtype_from_ggml(5) == LL_DTYPE_INVALID);
}

/* ll_dequantize dispatches to the row's to_f32: two blocks of Q4_1 and one of
 * Q8_0 built by hand, and an integer type (no to_f32) gives zeros. */
static void check_dequantize(void) {
    ll_block_q4_1 q41[2];
    for (int b = 0; b < 2; b++) {
        q41[b].d = ll_fp32_to_fp16(b ? 0.25f : 0.5f);
        q41[b].m = ll_fp32_to_fp16(-1.0f);
        for (int j = 0; j < LL_QK4_1 / 2; j++) q41[b].qs[j] = (uint8_t)(j | (15 - j) << 4);
    }
    float y[2 * LL_QK4_1];
    ll_dequantize(LL_DTYPE_Q4_1, q41, y, 2 * LL_QK4_1);
    int bad = 0;
    for (int b = 0; b < 2; b++)
        for (int j = 0; j < LL_QK4_1 / 2; j++) { /* low nibbles first, then the high ones */
            const float d = b ? 0.25f : 0.5f;
            bad += y[b * LL_QK4_1 + j] != d * (float)j - 1.0f;
            bad += y[b * LL_QK4_1 + LL_QK4_1 / 2 + j] != d * (float)(15 - j) - 1.0f;
        }
    CHECK_MSG(bad == 0, "Q4_1: %d values differ", bad);

    ll_block_q8_0 q80 = {.d = ll_fp32_to_fp16(2.0f)};
    for (int j = 0; j < LL_QK8_0; j++) q80.qs[j] = (int8_t)(j - 16);
    float z[LL_QK8_0];
    ll_dequantize(LL_DTYPE_Q8_0, &q80, z, LL_QK8_0);
    bad = 0;
    for (int j = 0; j < LL_QK8_0; j++) bad += z[j] != 2.0f * (float)(j - 16);
    CHECK_MSG(bad == 0, "Q8_0: %d values differ", bad);

    const int32_t ints[3] = {1, 2, 3};
    float w[3] = {7, 7, 7};
    ll_dequantize(LL_DTYPE_I32, ints, w, 3);
    CHECK(w[0] == 0.0f && w[1] == 0.0f && w[2] == 0.0f);
}

int main(void) {
    check_rows();
    check_gguf_geometry();
    check_dequantize();
    return test_summary("test_dtype_traits");
}
