#include "io/mapped_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

int ll_map_file(ll_mapped_file *f, const char *path, ll_error *err) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ll_fail(err, LL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ll_fail(err, LL_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ll_fail(err, LL_ERR_IO, "%s: %s", path,
                       S_ISDIR(st.st_mode) ? "is a folder, not a file" : "not a regular file (cannot be mapped)");
    }
    f->path = strdup(path);
    f->size = (size_t)st.st_size;
    if (f->size > 0) {
        void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            free(f->path);
            memset(f, 0, sizeof *f);
            return ll_fail(err, LL_ERR_IO, "%s: cannot mmap: %s", path, strerror(e));
        }
        f->data = p;
        f->is_mapping = 1;
    }
    close(fd);
    return LL_OK;
}

int ll_map_memory(ll_mapped_file *f, const void *data, size_t size, const char *name, ll_error *err) {
    memset(f, 0, sizeof *f);
    f->data = data;
    f->size = size;
    f->path = strdup(name ? name : "<memory>");
    if (!f->path) return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    return LL_OK;
}

void ll_unmap_file(ll_mapped_file *f) {
    if (!f) return;
    if (f->is_mapping && f->data) munmap((void *)f->data, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

int ll_read_text_file(const char *path, char **out, size_t *len, ll_error *err) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return ll_fail(err, LL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) { /* fopen opens a folder; reading it fails */
        fclose(fp);
        return ll_fail(err, LL_ERR_IO, "%s: is a folder, not a file", path);
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(fp);
        return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(fp);
                return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, fp);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(fp), e = errno;
    fclose(fp);
    if (bad) {
        free(buf);
        return ll_fail(err, LL_ERR_IO, "%s: read error: %s", path, strerror(e));
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return LL_OK;
}
