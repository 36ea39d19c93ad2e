/* Element types of stored tensors: one traits table (name, block geometry,
 * GGML type id, conversion to f32), GGML type ids, and the f16/bf16 scalar
 * conversions.
 *
 * Each quantized format is one block struct with a static_assert on its size
 * (quants.h) and one scalar reference dequantizer (quants.c); tests compare
 * them bit for bit with the gguf Python package. Adding a type: its ll_dtype
 * below, its block struct and to_f32 in quants.{h,c}, its row in dtype.c's
 * traits table (and, for a GGML type, removing it from the unloadable list
 * there). */
#ifndef LL_IO_DTYPE_H
#define LL_IO_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum ll_dtype {
    LL_DTYPE_F32 = 0,
    LL_DTYPE_F16,
    LL_DTYPE_BF16,
    LL_DTYPE_Q8_0,
    LL_DTYPE_Q4_0,
    LL_DTYPE_Q4_1,
    LL_DTYPE_Q4_K,
    LL_DTYPE_Q6_K,
    LL_DTYPE_Q5_0,
    LL_DTYPE_Q5_1,
    LL_DTYPE_Q5_K,
    LL_DTYPE_I32,
    LL_DTYPE_I64,
    LL_DTYPE_U8,
    LL_DTYPE_COUNT,
    LL_DTYPE_INVALID = -1,
} ll_dtype;

/* dst[n] = src's first n elements as f32; n is a whole number of blocks. */
typedef void (*ll_to_f32_fn)(const void *src, float *dst, size_t n);

/* What the loaders and converters know of one element type. */
typedef struct ll_type_traits {
    const char *name;    /* as GGUF and safetensors spell it: "Q4_1", "BF16" */
    int block_elems;     /* elements per block (1 for plain types) */
    size_t block_bytes;  /* bytes per block: sizeof of its block struct or element */
    int ggml_type;       /* its GGML type id in GGUF files, -1 if GGML has none */
    ll_to_f32_fn to_f32; /* NULL for types that are not weights (integers) */
} ll_type_traits;

/* The traits of t, or NULL when t is not a valid ll_dtype. */
const ll_type_traits *ll_get_type_traits(ll_dtype t);

const char *ll_dtype_name(ll_dtype t);   /* "invalid" for an invalid t */
int ll_dtype_block_elems(ll_dtype t);    /* elements per block (1 for plain types; 0 if invalid) */
size_t ll_dtype_block_bytes(ll_dtype t); /* bytes per block (0 if invalid) */
/* Can this type be turned into f32 weights by ll_dequantize? */
int ll_dtype_is_float_convertible(ll_dtype t);
/* A plain (one element per block) floating-point type: F32, F16 or BF16, the
 * types adapters and classifier heads are stored in. */
static inline int ll_dtype_is_plain_float(ll_dtype t) {
    return t == LL_DTYPE_F32 || t == LL_DTYPE_F16 || t == LL_DTYPE_BF16;
}

/* Bytes needed for n elements; returns 0 if n is not a whole number of
 * blocks or the size overflows. */
int ll_dtype_nbytes(ll_dtype t, uint64_t n, uint64_t *bytes);

/* Convert n elements (a whole number of blocks) at src to f32 dst[n]; a type
 * with no to_f32 gives zeros. */
void ll_dequantize(ll_dtype t, const void *src, float *dst, size_t n);

float ll_fp16_to_fp32(uint16_t h);
uint16_t ll_fp32_to_fp16(float f); /* round to nearest even */
float ll_bf16_to_fp32(uint16_t h);
uint16_t ll_fp32_to_bf16(float f); /* round to nearest even (NaN stays NaN) */

/* GGML type ids as stored in GGUF files. */
enum {
    LL_GGML_F32 = 0, LL_GGML_F16 = 1, LL_GGML_Q4_0 = 2, LL_GGML_Q4_1 = 3, LL_GGML_Q5_0 = 6,
    LL_GGML_Q5_1 = 7, LL_GGML_Q8_0 = 8, LL_GGML_Q8_1 = 9, LL_GGML_Q2_K = 10, LL_GGML_Q3_K = 11,
    LL_GGML_Q4_K = 12, LL_GGML_Q5_K = 13, LL_GGML_Q6_K = 14, LL_GGML_Q8_K = 15, LL_GGML_I8 = 24,
    LL_GGML_I16 = 25, LL_GGML_I32 = 26, LL_GGML_I64 = 27, LL_GGML_F64 = 28, LL_GGML_BF16 = 30,
};

/* Name and block geometry of any GGML type id, loadable or not (used to
 * validate offsets and to print tensor tables). Returns 0 for unknown ids. */
int ll_ggml_type_info(uint32_t ggml_type, const char **name, int *block_elems, size_t *block_bytes);
/* The ll_dtype for a GGML type id, or LL_DTYPE_INVALID if we cannot load it. */
ll_dtype ll_dtype_from_ggml(uint32_t ggml_type);

#endif
