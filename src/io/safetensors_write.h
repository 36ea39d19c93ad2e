/* safetensors writer: the 8-byte little-endian header length, a JSON header
 * ({"__metadata__": {...}, "name": {"dtype", "shape", "data_offsets"}, ...}
 * padded with spaces to a multiple of 8 bytes, as the reference Rust
 * implementation pads it), then the tensors' bytes. Tensors are laid out by
 * element size (largest first), then by name, so every tensor starts at an
 * offset aligned to its element size. The file is replaced atomically (see
 * io/atomic_file.h). */
#ifndef LL_IO_SAFETENSORS_WRITE_H
#define LL_IO_SAFETENSORS_WRITE_H

#include <stdint.h>
#include <stdio.h>

#include "io/dtype.h"
#include "io/safetensors.h"
#include "lsllama.h"

typedef struct ll_st_write_tensor {
    const char *name;
    ll_dtype dtype; /* stored type: F32, F16, BF16 (converted from f32 data), I32, I64, U8 (raw data) */
    int ndim;       /* 0..ST_MAX_DIMS */
    int64_t shape[ST_MAX_DIMS];
    const void *data; /* f32 values for F32/F16/BF16, else elements of dtype; NULL when row_fn gives them */
    /* Instead of data, for F32/F16/BF16: row r (of shape[0]) as f32 values
     * dst[shape[1]], produced when the writer needs it (checked, then
     * written: called twice per row), so no full f32 copy need exist. */
    void (*row_fn)(const void *ctx, size_t r, float *dst);
    const void *row_ctx;
} ll_st_write_tensor;

/* Write the file body to fp (path names it in errors). metadata: n_meta
 * string pairs (key, value) for "__metadata__"; NULL for {"format": "pt"}. */
int ll_st_write_stream(FILE *fp, const char *path, const ll_st_write_tensor *tensors, size_t n,
                    const char *const *metadata, size_t n_meta, ll_error *err);

/* Write path atomically. */
int ll_st_write_file(const char *path, const ll_st_write_tensor *tensors, size_t n, const char *const *metadata,
                  size_t n_meta, ll_error *err);

#endif
