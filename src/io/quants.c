/* Scalar reference dequantizers. The arithmetic order matches the gguf Python
 * package (and ggml's reference C) so results agree bit for bit; this file is
 * compiled without FMA contraction for that reason. */
#pragma GCC optimize("fp-contract=off")
#include "io/quants.h"

#include <math.h>

#include "io/dtype.h" /* ll_fp16_to_fp32 */

void ll_dequantize_row_q4_0(const void *blocks, float *y, size_t n) {
    const ll_block_q4_0 *x = blocks;
    for (size_t b = 0; b < n / LL_QK4_0; b++, y += LL_QK4_0) {
        const float d = ll_fp16_to_fp32(x[b].d);
        for (int j = 0; j < LL_QK4_0 / 2; j++) {
            y[j] = d * (float)((int)(x[b].qs[j] & 0x0F) - 8);
            y[j + LL_QK4_0 / 2] = d * (float)((int)(x[b].qs[j] >> 4) - 8);
        }
    }
}

void ll_dequantize_row_q4_1(const void *blocks, float *y, size_t n) {
    const ll_block_q4_1 *x = blocks;
    for (size_t b = 0; b < n / LL_QK4_1; b++, y += LL_QK4_1) {
        const float d = ll_fp16_to_fp32(x[b].d);
        const float m = ll_fp16_to_fp32(x[b].m);
        for (int j = 0; j < LL_QK4_1 / 2; j++) {
            y[j] = d * (float)(x[b].qs[j] & 0x0F) + m;
            y[j + LL_QK4_1 / 2] = d * (float)(x[b].qs[j] >> 4) + m;
        }
    }
}

/* The fifth bit of element j of a q5_0/q5_1 block, as 0 or 16. */
static int q5_high(const uint8_t qh[4], int j) {
    const uint32_t bits = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
    return (int)((bits >> j) & 1u) << 4;
}

void ll_dequantize_row_q5_0(const void *blocks, float *y, size_t n) {
    const ll_block_q5_0 *x = blocks;
    for (size_t b = 0; b < n / LL_QK5_0; b++, y += LL_QK5_0) {
        const float d = ll_fp16_to_fp32(x[b].d);
        for (int j = 0; j < LL_QK5_0 / 2; j++) {
            y[j] = d * (float)(((x[b].qs[j] & 0x0F) | q5_high(x[b].qh, j)) - 16);
            y[j + LL_QK5_0 / 2] = d * (float)(((x[b].qs[j] >> 4) | q5_high(x[b].qh, j + LL_QK5_0 / 2)) - 16);
        }
    }
}

void ll_dequantize_row_q5_1(const void *blocks, float *y, size_t n) {
    const ll_block_q5_1 *x = blocks;
    for (size_t b = 0; b < n / LL_QK5_1; b++, y += LL_QK5_1) {
        const float d = ll_fp16_to_fp32(x[b].d);
        const float m = ll_fp16_to_fp32(x[b].m);
        for (int j = 0; j < LL_QK5_1 / 2; j++) {
            y[j] = d * (float)((x[b].qs[j] & 0x0F) | q5_high(x[b].qh, j)) + m;
            y[j + LL_QK5_1 / 2] = d * (float)((x[b].qs[j] >> 4) | q5_high(x[b].qh, j + LL_QK5_1 / 2)) + m;
        }
    }
}

void ll_dequantize_row_q8_0(const void *blocks, float *y, size_t n) {
    const ll_block_q8_0 *x = blocks;
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

void ll_dequantize_row_q4_K(const void *blocks, float *y, size_t n) {
    const ll_block_q4_K *x = blocks;
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

void ll_dequantize_row_q5_K(const void *blocks, float *y, size_t n) {
    const ll_block_q5_K *x = blocks;
    for (size_t b = 0; b < n / LL_QK_K; b++) {
        const uint8_t *q = x[b].qs, *qh = x[b].qh;
        const float d = ll_fp16_to_fp32(x[b].d);
        const float dmin = ll_fp16_to_fp32(x[b].dmin);
        /* sub-blocks is and is + 1 take the low and high nibbles of the next 32 bytes, and bits is and is + 1 of qh */
        for (int j = 0, is = 0; j < LL_QK_K; j += 64, is += 2) {
            uint8_t sc, m;
            scale_min_k4(is, x[b].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            scale_min_k4(is + 1, x[b].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)((q[l] & 0xF) | ((qh[l] >> is) & 1) << 4) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)((q[l] >> 4) | ((qh[l] >> (is + 1)) & 1) << 4) - m2;
            q += 32;
        }
    }
}

void ll_dequantize_row_q6_K(const void *blocks, float *y, size_t n) {
    const ll_block_q6_K *x = blocks;
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

void ll_quantize_row_q8_0(const float *x, void *blocks, size_t n) {
    ll_block_q8_0 *y = blocks;
    for (size_t b = 0; b < n / LL_QK8_0; b++) {
        const float *v = x + b * LL_QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < LL_QK8_0; j++) amax = fabsf(v[j]) > amax ? fabsf(v[j]) : amax;
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = ll_fp32_to_fp16(d);
        for (int j = 0; j < LL_QK8_0; j++) y[b].qs[j] = (int8_t)roundf(v[j] * id); /* roundf: half away from zero */
    }
}
