/* Read-only file mappings. */
#ifndef LL_IO_MAPPED_FILE_H
#define LL_IO_MAPPED_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "lsllama.h"

typedef struct ll_mapped_file {
    const uint8_t *data;
    size_t size;
    char *path;     /* owned copy, used in error messages */
    int is_mapping; /* 1: munmap on close; 0: borrowed memory */
} ll_mapped_file;

int ll_map_file(ll_mapped_file *f, const char *path, ll_error *err);
/* Wrap caller-owned memory (tests, fuzzers); nothing is copied. */
int ll_map_memory(ll_mapped_file *f, const void *data, size_t size, const char *name, ll_error *err);
void ll_unmap_file(ll_mapped_file *f);

/* Read a whole (small) text file into a NUL-terminated malloc'd buffer. */
int ll_read_text_file(const char *path, char **out, size_t *len, ll_error *err);

#endif
