/* GGUF v2/v3 reader: metadata key/values and the tensor table, over a
 * read-only mapping. Every length, count and offset is checked against the
 * file size; errors name the file and the key or tensor at fault. */
#ifndef LL_IO_GGUF_H
#define LL_IO_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "io/dtype.h"
#include "io/mapped_file.h"
#include "lsllama.h"

typedef enum ll_gguf_type {
    GGUF_TYPE_UINT8 = 0, GGUF_TYPE_INT8 = 1, GGUF_TYPE_UINT16 = 2, GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4, GGUF_TYPE_INT32 = 5, GGUF_TYPE_FLOAT32 = 6, GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8, GGUF_TYPE_ARRAY = 9, GGUF_TYPE_UINT64 = 10, GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12, GGUF_TYPE_COUNT = 13,
} ll_gguf_type;

/* A string inside the mapping: not NUL-terminated. */
typedef struct ll_gguf_str {
    const char *ptr;
    uint64_t len;
} ll_gguf_str;

typedef struct ll_gguf_kv {
    char *key;     /* NUL-terminated copy */
    uint32_t type; /* ll_gguf_type */
    /* scalar value (numbers and bools) */
    union {
        uint64_t u;
        int64_t i;
        double f;
    } num;
    ll_gguf_str str;           /* GGUF_TYPE_STRING */
    uint32_t arr_type;      /* GGUF_TYPE_ARRAY: element type */
    uint64_t arr_n;         /* element count */
    const uint8_t *arr_data;/* raw elements (numeric arrays) */
    ll_gguf_str *arr_strs;     /* string arrays: one entry per element */
} ll_gguf_kv;

typedef struct ll_gguf_tensor {
    char *name;
    uint32_t ggml_type;
    ll_dtype dtype;    /* LL_DTYPE_INVALID if the type cannot be loaded */
    int n_dims;
    uint64_t ne[4];    /* GGML order: ne[0] is the contiguous dimension */
    uint64_t n_elems;
    uint64_t offset;   /* relative to the data section */
    uint64_t nbytes;
    const uint8_t *data;
} ll_gguf_tensor;

typedef struct ll_gguf_file {
    ll_mapped_file file;
    uint32_t version;
    uint64_t n_kv, n_tensors;
    ll_gguf_kv *kv;
    ll_gguf_tensor *tensors;
    uint64_t alignment;
    uint64_t data_offset;
} ll_gguf_file;

/* Parse an already mapped file; takes ownership of *file on success and on
 * failure alike (it is unmapped by ll_gguf_close or on error). */
int ll_gguf_open_mapped(ll_gguf_file **out, ll_mapped_file *file, ll_error *err);
int ll_gguf_open(ll_gguf_file **out, const char *path, ll_error *err);
void ll_gguf_close(ll_gguf_file *g);

const ll_gguf_kv *ll_gguf_find_kv(const ll_gguf_file *g, const char *key);
const ll_gguf_tensor *ll_gguf_find_tensor(const ll_gguf_file *g, const char *name);
const char *ll_gguf_type_name(uint32_t t);

/* Typed getters: LL_OK, or an error naming file and key if the key is
 * missing (only when required) or of an incompatible type. When the key is
 * absent and not required, *out is left unchanged and LL_OK returned. */
int ll_gguf_get_int(const ll_gguf_file *g, const char *key, int required, int64_t *out, ll_error *err);
int ll_gguf_get_float(const ll_gguf_file *g, const char *key, int required, double *out, ll_error *err);
int ll_gguf_get_bool(const ll_gguf_file *g, const char *key, int required, int *out, ll_error *err);
/* Copies into buf (NUL-terminated, truncated to cap-1). */
int ll_gguf_get_string(const ll_gguf_file *g, const char *key, int required, char *buf, size_t cap, ll_error *err);

/* Array elements (caller checks kv->arr_type and index < arr_n). */
double ll_gguf_arr_num(const ll_gguf_kv *kv, uint64_t i);

#endif
