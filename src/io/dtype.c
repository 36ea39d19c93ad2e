/* The element-type traits table, the f16/bf16 scalar conversions, and the
 * GGML type ids' geometry. The quantized formats' block structs and
 * dequantizers are in quants.{h,c}. */
#include "io/dtype.h"

#include <string.h>

#include "io/quants.h"

/* ---- f16 and bf16 scalars -------------------------------------------------- */

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

uint16_t ll_fp32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* ---- to_f32 of the plain float types ------------------------------------- */

static void f32_to_f32(const void *src, float *dst, size_t n) { memcpy(dst, src, n * sizeof(float)); }

/* Elements are read through memcpy: a safetensors tensor's data need not be
 * 2-byte aligned. */
static void f16_to_f32(const void *src, float *dst, size_t n) {
    const uint8_t *s = src;
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        dst[i] = ll_fp16_to_fp32(h);
    }
}

static void bf16_to_f32(const void *src, float *dst, size_t n) {
    const uint8_t *s = src;
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        dst[i] = ll_bf16_to_fp32(h);
    }
}

/* ---- the traits table ---------------------------------------------------- */

static const ll_type_traits type_traits[LL_DTYPE_COUNT] = {
    [LL_DTYPE_F32] = {"F32", 1, sizeof(float), LL_GGML_F32, f32_to_f32},
    [LL_DTYPE_F16] = {"F16", 1, sizeof(uint16_t), LL_GGML_F16, f16_to_f32},
    [LL_DTYPE_BF16] = {"BF16", 1, sizeof(uint16_t), LL_GGML_BF16, bf16_to_f32},
    [LL_DTYPE_Q8_0] = {"Q8_0", LL_QK8_0, sizeof(ll_block_q8_0), LL_GGML_Q8_0, ll_dequantize_row_q8_0},
    [LL_DTYPE_Q4_0] = {"Q4_0", LL_QK4_0, sizeof(ll_block_q4_0), LL_GGML_Q4_0, ll_dequantize_row_q4_0},
    [LL_DTYPE_Q4_1] = {"Q4_1", LL_QK4_1, sizeof(ll_block_q4_1), LL_GGML_Q4_1, ll_dequantize_row_q4_1},
    [LL_DTYPE_Q4_K] = {"Q4_K", LL_QK_K, sizeof(ll_block_q4_K), LL_GGML_Q4_K, ll_dequantize_row_q4_K},
    [LL_DTYPE_Q6_K] = {"Q6_K", LL_QK_K, sizeof(ll_block_q6_K), LL_GGML_Q6_K, ll_dequantize_row_q6_K},
    [LL_DTYPE_Q5_0] = {"Q5_0", LL_QK5_0, sizeof(ll_block_q5_0), LL_GGML_Q5_0, ll_dequantize_row_q5_0},
    [LL_DTYPE_Q5_1] = {"Q5_1", LL_QK5_1, sizeof(ll_block_q5_1), LL_GGML_Q5_1, ll_dequantize_row_q5_1},
    [LL_DTYPE_Q5_K] = {"Q5_K", LL_QK_K, sizeof(ll_block_q5_K), LL_GGML_Q5_K, ll_dequantize_row_q5_K},
    [LL_DTYPE_I32] = {"I32", 1, sizeof(int32_t), LL_GGML_I32, NULL},
    [LL_DTYPE_I64] = {"I64", 1, sizeof(int64_t), LL_GGML_I64, NULL},
    [LL_DTYPE_U8] = {"U8", 1, sizeof(uint8_t), -1, NULL},
};

const ll_type_traits *ll_get_type_traits(ll_dtype t) {
    return (t >= 0 && t < LL_DTYPE_COUNT) ? &type_traits[t] : NULL;
}

const char *ll_dtype_name(ll_dtype t) {
    const ll_type_traits *tr = ll_get_type_traits(t);
    return tr ? tr->name : "invalid";
}

int ll_dtype_block_elems(ll_dtype t) {
    const ll_type_traits *tr = ll_get_type_traits(t);
    return tr ? tr->block_elems : 0;
}

size_t ll_dtype_block_bytes(ll_dtype t) {
    const ll_type_traits *tr = ll_get_type_traits(t);
    return tr ? tr->block_bytes : 0;
}

int ll_dtype_is_float_convertible(ll_dtype t) {
    const ll_type_traits *tr = ll_get_type_traits(t);
    return tr && tr->to_f32;
}

int ll_dtype_nbytes(ll_dtype t, uint64_t n, uint64_t *bytes) {
    const int be = ll_dtype_block_elems(t);
    if (be <= 0 || n % (uint64_t)be != 0) return 0;
    const uint64_t blocks = n / (uint64_t)be, bb = ll_dtype_block_bytes(t);
    if (blocks > UINT64_MAX / bb) return 0;
    *bytes = blocks * bb;
    return 1;
}

void ll_dequantize(ll_dtype t, const void *src, float *dst, size_t n) {
    const ll_type_traits *tr = ll_get_type_traits(t);
    if (tr && tr->to_f32)
        tr->to_f32(src, dst, n);
    else
        memset(dst, 0, n * sizeof(float));
}

/* ---- GGML type ids ------------------------------------------------------- */

/* GGML types we cannot load, with their geometry (facts of the GGUF format,
 * kept to validate a file's offsets and name its tensors' types). A type
 * that becomes loadable leaves this list for the traits table. */
static const struct {
    uint32_t id;
    const char *name;
    int block_elems;
    size_t block_bytes;
} ggml_unloadable[] = {
    {9, "Q8_1", 32, 36},      {10, "Q2_K", 256, 84},   {11, "Q3_K", 256, 110},  {15, "Q8_K", 256, 292},
    {16, "IQ2_XXS", 256, 66},
    {17, "IQ2_XS", 256, 74},  {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50}, {20, "IQ4_NL", 32, 18},
    {21, "IQ3_S", 256, 110},  {22, "IQ2_S", 256, 82},  {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},
    {25, "I16", 1, 2},        {28, "F64", 1, 8},       {29, "IQ1_M", 256, 56},  {34, "TQ1_0", 256, 54},
    {35, "TQ2_0", 256, 66},   {39, "MXFP4", 32, 17},
};

ll_dtype ll_dtype_from_ggml(uint32_t id) {
    for (int t = 0; t < LL_DTYPE_COUNT; t++)
        if (type_traits[t].ggml_type >= 0 && (uint32_t)type_traits[t].ggml_type == id) return (ll_dtype)t;
    return LL_DTYPE_INVALID;
}

int ll_ggml_type_info(uint32_t id, const char **name, int *block_elems, size_t *block_bytes) {
    const ll_dtype t = ll_dtype_from_ggml(id);
    if (t != LL_DTYPE_INVALID) {
        if (name) *name = type_traits[t].name;
        if (block_elems) *block_elems = type_traits[t].block_elems;
        if (block_bytes) *block_bytes = type_traits[t].block_bytes;
        return 1;
    }
    for (size_t i = 0; i < sizeof ggml_unloadable / sizeof ggml_unloadable[0]; i++)
        if (ggml_unloadable[i].id == id) {
            if (name) *name = ggml_unloadable[i].name;
            if (block_elems) *block_elems = ggml_unloadable[i].block_elems;
            if (block_bytes) *block_bytes = ggml_unloadable[i].block_bytes;
            return 1;
        }
    return 0;
}
