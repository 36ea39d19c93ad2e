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

typedef struct st_tensor {
    char *name;
    char dtype_name[16]; /* as written in the file ("F32", "BF16", ...) */
    ll_dtype dtype;      /* LL_DTYPE_INVALID for types we cannot load */
    int ndim;
    int64_t shape[ST_MAX_DIMS]; /* outermost first */
    uint64_t n_elems;
    const uint8_t *data;
    uint64_t nbytes;
} st_tensor;

typedef struct st_file {
    ll_mapped_file file;
    st_tensor *tensors;
    size_t n_tensors;
} st_file;

/* Takes ownership of *file on success and failure alike. */
int st_open_mapped(st_file **out, ll_mapped_file *file, ll_error *err);
int st_open(st_file **out, const char *path, ll_error *err);
void st_close(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);

#endif
