/* safetensors reader: an 8-byte little-endian header length, a JSON header
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__"},
 * then the raw data. Every offset is checked against the file. */
#ifndef LL_IO_SAFETENSORS_H
#define LL_IO_SAFETENSORS_H

#include <stdint.h>

#include "io/dtype.h"
#include "io/mapped_file.h"
#include "lsllama.h"

#define ST_MAX_DIMS 8

typedef struct ll_st_tensor {
    char *name;
    char dtype_name[16]; /* as written in the file ("F32", "BF16", ...) */
    ll_dtype dtype;      /* LL_DTYPE_INVALID for types we cannot load */
    int ndim;
    int64_t shape[ST_MAX_DIMS]; /* outermost first */
    uint64_t n_elems;
    const uint8_t *data;
    uint64_t nbytes;
} ll_st_tensor;

typedef struct ll_st_file {
    ll_mapped_file file;
    ll_st_tensor *tensors;
    size_t n_tensors;
} ll_st_file;

/* Takes ownership of *file on success and failure alike. */
int ll_st_open_mapped(ll_st_file **out, ll_mapped_file *file, ll_error *err);
int ll_st_open(ll_st_file **out, const char *path, ll_error *err);
void ll_st_close(ll_st_file *f);
const ll_st_tensor *ll_st_find(const ll_st_file *f, const char *name);

#endif
