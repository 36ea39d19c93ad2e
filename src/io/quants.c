/* Scalar reference dequantizers. The arithmetic order matches the gguf Python
 * package (and ggml's reference C) so results agree bit for bit; this file is
 * compiled without FMA contraction for that reason. */
#pragma GCC optimize("fp-contract=off")
#include "io/quants.h"

#include <string.h>

#include "io/dtype.h"

void ll_dequantize_row_q4_0(const ll_block_q4_0 *x, float *y, size_t n) {
    for (size_t b = 0; b < n / LL_QK4_0; b++, y += LL_QK4_0) {
        const float d = ll_fp16_to_fp32(x[b].d);
        for (int j = 0; j < LL_QK4_0 / 2; j++) {
            y[j] = d * (float)((int)(x[b].qs[j] & 0x0F) - 8);
            y[j + LL_QK4_0 / 2] = d * (float)((int)(x[b].qs[j] >> 4) - 8);
        }
    }
}

void ll_dequantize_row_q4_1(const ll_block_q4_1 *x, float *y, size_t n) {
    for (size_t b = 0; b < n / LL_QK4_1; b++, y += LL_QK4_1) {
        const float d = ll_fp16_to_fp32(x[b].d);
        const float m = ll_fp16_to_fp32(x[b].m);
        for (int j = 0; j < LL_QK4_1 / 2; j++) {
            y[j] = d * (float)(x[b].qs[j] & 0x0F) + m;
            y[j + LL_QK4_1 / 2] = d * (float)(x[b].qs[j] >> 4) + m;
        }
    }
}

void ll_dequantize_row_q8_0(const ll_block_q8_0 *x, float *y, size_t n) {
    for (size_t b = 0; b < n / LL_QK8_0; b++, y += LL_QK8_0) {
        const float d = ll_fp16_to_fp32(x[b].d);
        for (int j = 0; j < LL_QK8_0; j++) y[j] = (float)x[b].qs[j] * d;
    }
}

/* Sub-block j (0..7) of a K-quant: 6-bit scale and 6-bit min. */
static void scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

void ll_dequantize_row_q4_K(const ll_block_q4_K *x, float *y, size_t n) {
    for (size_t b = 0; b < n / LL_QK_K; b++) {
        const uint8_t *q = x[b].qs;
        const float d = ll_fp16_to_fp32(x[b].d);
        const float dmin = ll_fp16_to_fp32(x[b].dmin);
        for (int j = 0, is = 0; j < LL_QK_K; j += 64, is += 2) {
            uint8_t sc, m;
            scale_min_k4(is, x[b].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            scale_min_k4(is + 1, x[b].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
            q += 32;
        }
    }
}

void ll_dequantize_row_q6_K(const ll_block_q6_K *x, float *y, size_t n) {
    for (size_t b = 0; b < n / LL_QK_K; b++) {
        const float d = ll_fp16_to_fp32(x[b].d);
        const uint8_t *ql = x[b].ql, *qh = x[b].qh;
        const int8_t *sc = x[b].scales;
        for (int half = 0; half < LL_QK_K; half += 128) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = (d * sc[is + 0]) * (float)q1;
                y[l + 32] = (d * sc[is + 2]) * (float)q2;
                y[l + 64] = (d * sc[is + 4]) * (float)q3;
                y[l + 96] = (d * sc[is + 6]) * (float)q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

/* ---- plain types ---------------------------------------------------------- */

float ll_fp16_to_fp32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                mant <<= 1;
            } while ((mant & 0x400) == 0);
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3FF) << 13);
        }
    } else if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ll_fp32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    const uint32_t exp = (x >> 23) & 0xFF;
    uint32_t mant = x & 0x7FFFFF;
    if (exp == 0xFF) return (uint16_t)(sign | 0x7C00 | (mant ? 0x200 : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7C00);
    if (e <= 0) { /* subnormal half or zero, round to nearest even */
        if (e < -10) return sign;
        mant |= 0x800000;
        const int shift = 14 - e;
        uint32_t h = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* may carry into exponent: fine */
    return (uint16_t)(sign | h);
}

float ll_bf16_to_fp32(uint16_t h) {
    const uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* ---- type tables ---------------------------------------------------------- */

static const struct {
    const char *name;
    int block_elems;
    size_t block_bytes;
} dtype_table[LL_DTYPE_COUNT] = {
    [LL_DTYPE_F32] = {"F32", 1, 4},          [LL_DTYPE_F16] = {"F16", 1, 2},
    [LL_DTYPE_BF16] = {"BF16", 1, 2},        [LL_DTYPE_Q8_0] = {"Q8_0", 32, 34},
    [LL_DTYPE_Q4_0] = {"Q4_0", 32, 18},      [LL_DTYPE_Q4_1] = {"Q4_1", 32, 20},
    [LL_DTYPE_Q4_K] = {"Q4_K", 256, 144},    [LL_DTYPE_Q6_K] = {"Q6_K", 256, 210},
    [LL_DTYPE_I32] = {"I32", 1, 4},          [LL_DTYPE_I64] = {"I64", 1, 8},
    [LL_DTYPE_U8] = {"U8", 1, 1},
};

const char *ll_dtype_name(ll_dtype t) {
    return (t >= 0 && t < LL_DTYPE_COUNT) ? dtype_table[t].name : "invalid";
}
int ll_dtype_block_elems(ll_dtype t) { return (t >= 0 && t < LL_DTYPE_COUNT) ? dtype_table[t].block_elems : 0; }
size_t ll_dtype_block_bytes(ll_dtype t) { return (t >= 0 && t < LL_DTYPE_COUNT) ? dtype_table[t].block_bytes : 0; }
int ll_dtype_is_float_convertible(ll_dtype t) { return t >= LL_DTYPE_F32 && t <= LL_DTYPE_Q6_K; }

int ll_dtype_nbytes(ll_dtype t, uint64_t n, uint64_t *bytes) {
    const int be = ll_dtype_block_elems(t);
    if (be <= 0 || n % (uint64_t)be != 0) return 0;
    const uint64_t blocks = n / (uint64_t)be, bb = ll_dtype_block_bytes(t);
    if (blocks > UINT64_MAX / bb) return 0;
    *bytes = blocks * bb;
    return 1;
}

void ll_dequantize(ll_dtype t, const void *src, float *dst, size_t n) {
    switch (t) {
    case LL_DTYPE_F32: memcpy(dst, src, n * sizeof(float)); break;
    case LL_DTYPE_F16: {
        const uint8_t *s = src;
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = ll_fp16_to_fp32(h);
        }
        break;
    }
    case LL_DTYPE_BF16: {
        const uint8_t *s = src;
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = ll_bf16_to_fp32(h);
        }
        break;
    }
    case LL_DTYPE_Q8_0: ll_dequantize_row_q8_0(src, dst, n); break;
    case LL_DTYPE_Q4_0: ll_dequantize_row_q4_0(src, dst, n); break;
    case LL_DTYPE_Q4_1: ll_dequantize_row_q4_1(src, dst, n); break;
    case LL_DTYPE_Q4_K: ll_dequantize_row_q4_K(src, dst, n); break;
    case LL_DTYPE_Q6_K: ll_dequantize_row_q6_K(src, dst, n); break;
    default: memset(dst, 0, n * sizeof(float)); break;
    }
}

static const struct {
    uint32_t id;
    const char *name;
    int block_elems;
    size_t block_bytes;
    ll_dtype dtype;
} ggml_table[] = {
    {0, "F32", 1, 4, LL_DTYPE_F32},          {1, "F16", 1, 2, LL_DTYPE_F16},
    {2, "Q4_0", 32, 18, LL_DTYPE_Q4_0},      {3, "Q4_1", 32, 20, LL_DTYPE_Q4_1},
    {6, "Q5_0", 32, 22, LL_DTYPE_INVALID},   {7, "Q5_1", 32, 24, LL_DTYPE_INVALID},
    {8, "Q8_0", 32, 34, LL_DTYPE_Q8_0},      {9, "Q8_1", 32, 36, LL_DTYPE_INVALID},
    {10, "Q2_K", 256, 84, LL_DTYPE_INVALID}, {11, "Q3_K", 256, 110, LL_DTYPE_INVALID},
    {12, "Q4_K", 256, 144, LL_DTYPE_Q4_K},   {13, "Q5_K", 256, 176, LL_DTYPE_INVALID},
    {14, "Q6_K", 256, 210, LL_DTYPE_Q6_K},   {15, "Q8_K", 256, 292, LL_DTYPE_INVALID},
    {16, "IQ2_XXS", 256, 66, LL_DTYPE_INVALID}, {17, "IQ2_XS", 256, 74, LL_DTYPE_INVALID},
    {18, "IQ3_XXS", 256, 98, LL_DTYPE_INVALID}, {19, "IQ1_S", 256, 50, LL_DTYPE_INVALID},
    {20, "IQ4_NL", 32, 18, LL_DTYPE_INVALID},   {21, "IQ3_S", 256, 110, LL_DTYPE_INVALID},
    {22, "IQ2_S", 256, 82, LL_DTYPE_INVALID},   {23, "IQ4_XS", 256, 136, LL_DTYPE_INVALID},
    {24, "I8", 1, 1, LL_DTYPE_INVALID},      {25, "I16", 1, 2, LL_DTYPE_INVALID},
    {26, "I32", 1, 4, LL_DTYPE_I32},         {27, "I64", 1, 8, LL_DTYPE_I64},
    {28, "F64", 1, 8, LL_DTYPE_INVALID},     {29, "IQ1_M", 256, 56, LL_DTYPE_INVALID},
    {30, "BF16", 1, 2, LL_DTYPE_BF16},       {34, "TQ1_0", 256, 54, LL_DTYPE_INVALID},
    {35, "TQ2_0", 256, 66, LL_DTYPE_INVALID}, {39, "MXFP4", 32, 17, LL_DTYPE_INVALID},
};

int ll_ggml_type_info(uint32_t id, const char **name, int *block_elems, size_t *block_bytes) {
    for (size_t i = 0; i < sizeof ggml_table / sizeof ggml_table[0]; i++) {
        if (ggml_table[i].id == id) {
            if (name) *name = ggml_table[i].name;
            if (block_elems) *block_elems = ggml_table[i].block_elems;
            if (block_bytes) *block_bytes = ggml_table[i].block_bytes;
            return 1;
        }
    }
    return 0;
}

ll_dtype ll_dtype_from_ggml(uint32_t id) {
    for (size_t i = 0; i < sizeof ggml_table / sizeof ggml_table[0]; i++)
        if (ggml_table[i].id == id) return ggml_table[i].dtype;
    return LL_DTYPE_INVALID;
}
