#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* Element size of every safetensors dtype, loadable or not: a loadable one's
 * from the traits table, the others' (format facts) from this list. */
static int st_dtype_info(const char *s, size_t *elem_bytes, ll_dtype *dt) {
    static const struct {
        const char *name;
        ll_dtype dtype;
        size_t unloadable_bytes; /* element size of a dtype we cannot load */
    } table[] = {
        {"F32", LL_DTYPE_F32, 0},      {"F16", LL_DTYPE_F16, 0},      {"BF16", LL_DTYPE_BF16, 0},
        {"I32", LL_DTYPE_I32, 0},      {"I64", LL_DTYPE_I64, 0},      {"U8", LL_DTYPE_U8, 0},
        {"F64", LL_DTYPE_INVALID, 8},  {"I8", LL_DTYPE_INVALID, 1},   {"I16", LL_DTYPE_INVALID, 2},
        {"U16", LL_DTYPE_INVALID, 2},  {"U32", LL_DTYPE_INVALID, 4},  {"U64", LL_DTYPE_INVALID, 8},
        {"BOOL", LL_DTYPE_INVALID, 1}, {"F8_E4M3", LL_DTYPE_INVALID, 1}, {"F8_E5M2", LL_DTYPE_INVALID, 1},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(s, table[i].name)) {
            *dt = table[i].dtype;
            *elem_bytes = *dt == LL_DTYPE_INVALID ? table[i].unloadable_bytes : ll_dtype_block_bytes(*dt);
            return 1;
        }
    return 0;
}

void ll_st_close(ll_st_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    ll_unmap_file(&f->file);
    free(f);
}

static int json_u64(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    const double d = j->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != floor(d)) return 0; /* exact in a double */
    *out = (uint64_t)d;
    return 1;
}

static int parse_tensor(ll_st_file *f, const cJSON *item, ll_st_tensor *t, uint64_t data_size, ll_error *err) {
    const char *path = f->file.path;
    t->name = strdup(item->string);
    if (!t->name) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", path);
    if (!cJSON_IsObject(item))
        return ll_fail(err, LL_ERR_FORMAT, "%s: tensor '%s': header entry is not an object", path, t->name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return ll_fail(err, LL_ERR_FORMAT, "%s: tensor '%s': needs string 'dtype', array 'shape' and two 'data_offsets'",
                       path, t->name);
    size_t elem_bytes;
    if (!st_dtype_info(dtype->valuestring, &elem_bytes, &t->dtype))
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: tensor '%s': unknown dtype '%s'", path, t->name,
                       dtype->valuestring);
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dtype->valuestring);
    const int ndim = cJSON_GetArraySize(shape);
    if (ndim > ST_MAX_DIMS)
        return ll_fail(err, LL_ERR_FORMAT, "%s: tensor '%s': %d dimensions (at most %d)", path, t->name, ndim,
                       ST_MAX_DIMS);
    t->ndim = ndim;
    t->n_elems = 1;
    for (int d = 0; d < ndim; d++) {
        uint64_t v;
        if (!json_u64(cJSON_GetArrayItem(shape, d), &v) || v > (1ull << 40) ||
            (v && t->n_elems > UINT64_MAX / v))
            return ll_fail(err, LL_ERR_FORMAT, "%s: tensor '%s': invalid shape entry %d", path, t->name, d);
        t->shape[d] = (int64_t)v;
        t->n_elems *= v;
    }
    uint64_t begin, end;
    if (!json_u64(cJSON_GetArrayItem(offs, 0), &begin) || !json_u64(cJSON_GetArrayItem(offs, 1), &end) || end < begin)
        return ll_fail(err, LL_ERR_FORMAT, "%s: tensor '%s': invalid data_offsets", path, t->name);
    if (end > data_size)
        return ll_fail(err, LL_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the data (%llu bytes)", path,
                       t->name, (unsigned long long)begin, (unsigned long long)end, (unsigned long long)data_size);
    if (t->n_elems > UINT64_MAX / elem_bytes || end - begin != t->n_elems * elem_bytes)
        return ll_fail(err, LL_ERR_FORMAT, "%s: tensor '%s': %llu bytes of data do not fit shape and dtype %s", path,
                       t->name, (unsigned long long)(end - begin), t->dtype_name);
    t->nbytes = end - begin;
    return LL_OK;
}

static int cmp_str_ptr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int ll_st_open_mapped(ll_st_file **out, ll_mapped_file *file, ll_error *err) {
    *out = NULL;
    ll_st_file *f = calloc(1, sizeof *f);
    if (!f) {
        ll_unmap_file(file);
        return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    }
    f->file = *file;
    memset(file, 0, sizeof *file);
    const char *path = f->file.path;
    cJSON *root = NULL;
    int rc = LL_OK;
    uint64_t hlen = 0;
    if (f->file.size < 8) {
        rc = ll_fail(err, LL_ERR_FORMAT, "%s: too short for a safetensors file (%zu bytes)", path, f->file.size);
        goto done;
    }
    memcpy(&hlen, f->file.data, 8);
    if (hlen < 2 || hlen > f->file.size - 8 || hlen > (100u << 20)) {
        rc = ll_fail(err, LL_ERR_FORMAT, "%s: safetensors header length %llu does not fit the file (%zu bytes)", path,
                     (unsigned long long)hlen, f->file.size);
        goto done;
    }
    const char *hdr = (const char *)f->file.data + 8;
    if (hdr[0] != '{') {
        rc = ll_fail(err, LL_ERR_FORMAT, "%s: not a safetensors file (header does not start with '{')", path);
        goto done;
    }
    root = cJSON_ParseWithLength(hdr, (size_t)hlen);
    if (!cJSON_IsObject(root)) {
        rc = ll_fail(err, LL_ERR_FORMAT, "%s: safetensors header is not valid JSON", path);
        goto done;
    }
    const uint64_t data_size = f->file.size - 8 - hlen;
    const uint8_t *data = f->file.data + 8 + hlen;
    size_t n = 0;
    for (const cJSON *it = root->child; it; it = it->next) n++;
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    if (!f->tensors) {
        rc = ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (const cJSON *it = root->child; it; it = it->next) {
        if (!it->string) continue;
        if (!strcmp(it->string, "__metadata__")) continue;
        ll_st_tensor *t = &f->tensors[f->n_tensors++];
        if ((rc = parse_tensor(f, it, t, data_size, err))) goto done;
        t->data = data + (t->nbytes ? (uint64_t)cJSON_GetArrayItem(
                                          cJSON_GetObjectItemCaseSensitive(it, "data_offsets"), 0)->valuedouble
                                    : 0);
    }
    /* duplicate names: sorted, not pairwise (the header may list millions) */
    if (f->n_tensors > 1) {
        char **names = malloc(f->n_tensors * sizeof *names);
        if (!names) {
            rc = ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        for (size_t i = 0; i < f->n_tensors; i++) names[i] = f->tensors[i].name;
        qsort(names, f->n_tensors, sizeof *names, cmp_str_ptr);
        for (size_t i = 1; i < f->n_tensors && !rc; i++)
            if (!strcmp(names[i - 1], names[i]))
                rc = ll_fail(err, LL_ERR_FORMAT, "%s: tensor '%s' appears twice", path, names[i]);
        free(names);
    }
done:
    cJSON_Delete(root);
    if (rc) {
        ll_st_close(f);
        return rc;
    }
    *out = f;
    return LL_OK;
}

int ll_st_open(ll_st_file **out, const char *path, ll_error *err) {
    ll_mapped_file m;
    *out = NULL;
    int rc = ll_map_file(&m, path, err);
    if (rc) return rc;
    return ll_st_open_mapped(out, &m, err);
}

const ll_st_tensor *ll_st_find(const ll_st_file *f, const char *name) {
    for (size_t i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}
