#include "io/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

typedef struct cursor {
    const uint8_t *p, *end;
    const char *path;
} cursor;

static size_t left(const cursor *c) { return (size_t)(c->end - c->p); }

static int rd(cursor *c, void *dst, size_t n, const char *what, ll_error *err) {
    if (left(c) < n)
        return ll_fail(err, LL_ERR_FORMAT, "%s: truncated GGUF file while reading %s", c->path, what);
    memcpy(dst, c->p, n);
    c->p += n;
    return LL_OK;
}

static int rd_str(cursor *c, ll_gguf_str *s, const char *what, ll_error *err) {
    uint64_t len = 0;
    int rc = rd(c, &len, 8, what, err);
    if (rc) return rc;
    if (len > left(c))
        return ll_fail(err, LL_ERR_FORMAT, "%s: string length %llu of %s runs past the end of the file",
                       c->path, (unsigned long long)len, what);
    s->ptr = (const char *)c->p;
    s->len = len;
    c->p += len;
    return LL_OK;
}

static size_t scalar_size(uint32_t t) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

const char *ll_gguf_type_name(uint32_t t) {
    static const char *names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                  "bool", "string", "array", "uint64", "int64", "float64"};
    return t < GGUF_TYPE_COUNT ? names[t] : "unknown";
}

/* Decode one scalar at p into kv->num. */
static void decode_scalar(uint32_t t, const uint8_t *p, ll_gguf_kv *kv) {
    switch (t) {
    case GGUF_TYPE_UINT8: kv->num.u = p[0]; break;
    case GGUF_TYPE_BOOL: kv->num.u = p[0] != 0; break;
    case GGUF_TYPE_INT8: kv->num.i = (int8_t)p[0]; break;
    case GGUF_TYPE_UINT16: { uint16_t v; memcpy(&v, p, 2); kv->num.u = v; break; }
    case GGUF_TYPE_INT16: { int16_t v; memcpy(&v, p, 2); kv->num.i = v; break; }
    case GGUF_TYPE_UINT32: { uint32_t v; memcpy(&v, p, 4); kv->num.u = v; break; }
    case GGUF_TYPE_INT32: { int32_t v; memcpy(&v, p, 4); kv->num.i = v; break; }
    case GGUF_TYPE_FLOAT32: { float v; memcpy(&v, p, 4); kv->num.f = v; break; }
    case GGUF_TYPE_UINT64: memcpy(&kv->num.u, p, 8); break;
    case GGUF_TYPE_INT64: memcpy(&kv->num.i, p, 8); break;
    case GGUF_TYPE_FLOAT64: memcpy(&kv->num.f, p, 8); break;
    default: break;
    }
}

/* Skip (and validate) an array of arbitrary element type, possibly nested. */
static int skip_array(cursor *c, int depth, const char *key, ll_error *err) {
    uint32_t t = 0;
    uint64_t n = 0;
    int rc = rd(c, &t, 4, key, err);
    if (!rc) rc = rd(c, &n, 8, key, err);
    if (rc) return rc;
    if (depth > 8) return ll_fail(err, LL_ERR_FORMAT, "%s: key '%s': arrays nested too deeply", c->path, key);
    if (t == GGUF_TYPE_STRING) {
        for (uint64_t i = 0; i < n; i++) {
            ll_gguf_str s;
            if ((rc = rd_str(c, &s, key, err))) return rc;
        }
        return LL_OK;
    }
    if (t == GGUF_TYPE_ARRAY) {
        for (uint64_t i = 0; i < n; i++)
            if ((rc = skip_array(c, depth + 1, key, err))) return rc;
        return LL_OK;
    }
    const size_t sz = scalar_size(t);
    if (!sz) return ll_fail(err, LL_ERR_FORMAT, "%s: key '%s': unknown array element type %u", c->path, key, t);
    if (n > left(c) / sz)
        return ll_fail(err, LL_ERR_FORMAT, "%s: key '%s': array of %llu elements runs past the end of the file",
                       c->path, key, (unsigned long long)n);
    c->p += n * sz;
    return LL_OK;
}

static int read_kv(cursor *c, ll_gguf_kv *kv, uint64_t index, ll_error *err) {
    ll_gguf_str key;
    char what[64];
    snprintf(what, sizeof what, "metadata key #%llu", (unsigned long long)index);
    int rc = rd_str(c, &key, what, err);
    if (rc) return rc;
    kv->key = malloc(key.len + 1);
    if (!kv->key) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", c->path);
    memcpy(kv->key, key.ptr, key.len);
    kv->key[key.len] = 0;
    if ((rc = rd(c, &kv->type, 4, kv->key, err))) return rc;
    if (kv->type == GGUF_TYPE_STRING) return rd_str(c, &kv->str, kv->key, err);
    if (kv->type == GGUF_TYPE_ARRAY) {
        const uint8_t *start = c->p;
        if ((rc = rd(c, &kv->arr_type, 4, kv->key, err)) || (rc = rd(c, &kv->arr_n, 8, kv->key, err))) return rc;
        if (kv->arr_type == GGUF_TYPE_STRING) {
            if (kv->arr_n > left(c) / 8)
                return ll_fail(err, LL_ERR_FORMAT, "%s: key '%s': string array of %llu elements runs past the end",
                               c->path, kv->key, (unsigned long long)kv->arr_n);
            kv->arr_strs = malloc((size_t)(kv->arr_n ? kv->arr_n : 1) * sizeof(ll_gguf_str));
            if (!kv->arr_strs) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", c->path);
            for (uint64_t i = 0; i < kv->arr_n; i++)
                if ((rc = rd_str(c, &kv->arr_strs[i], kv->key, err))) return rc;
            return LL_OK;
        }
        if (kv->arr_type == GGUF_TYPE_ARRAY) { /* nested: validate and skip, contents not exposed */
            c->p = start;
            return skip_array(c, 0, kv->key, err);
        }
        const size_t sz = scalar_size(kv->arr_type);
        if (!sz)
            return ll_fail(err, LL_ERR_FORMAT, "%s: key '%s': unknown array element type %u", c->path, kv->key,
                           kv->arr_type);
        if (kv->arr_n > left(c) / sz)
            return ll_fail(err, LL_ERR_FORMAT, "%s: key '%s': array of %llu elements runs past the end of the file",
                           c->path, kv->key, (unsigned long long)kv->arr_n);
        kv->arr_data = c->p;
        c->p += kv->arr_n * sz;
        return LL_OK;
    }
    const size_t sz = scalar_size(kv->type);
    if (!sz) return ll_fail(err, LL_ERR_FORMAT, "%s: key '%s': unknown value type %u", c->path, kv->key, kv->type);
    if (left(c) < sz) return ll_fail(err, LL_ERR_FORMAT, "%s: truncated GGUF file while reading %s", c->path, kv->key);
    decode_scalar(kv->type, c->p, kv);
    c->p += sz;
    return LL_OK;
}

static int read_tensor_info(cursor *c, ll_gguf_tensor *t, uint64_t index, ll_error *err) {
    ll_gguf_str name;
    char what[64];
    snprintf(what, sizeof what, "tensor info #%llu", (unsigned long long)index);
    int rc = rd_str(c, &name, what, err);
    if (rc) return rc;
    if (name.len == 0) return ll_fail(err, LL_ERR_FORMAT, "%s: %s has an empty name", c->path, what);
    t->name = malloc(name.len + 1);
    if (!t->name) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", c->path);
    memcpy(t->name, name.ptr, name.len);
    t->name[name.len] = 0;
    uint32_t n_dims = 0;
    if ((rc = rd(c, &n_dims, 4, t->name, err))) return rc;
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return ll_fail(err, LL_ERR_FORMAT, "%s: tensor '%s': %u dimensions (1 to %d allowed)", c->path, t->name,
                       n_dims, GGUF_MAX_DIMS);
    t->n_dims = (int)n_dims;
    t->n_elems = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (int d = 0; d < t->n_dims; d++) {
        if ((rc = rd(c, &t->ne[d], 8, t->name, err))) return rc;
        if (t->ne[d] == 0 || t->ne[d] > (1ull << 40) || t->n_elems > UINT64_MAX / t->ne[d])
            return ll_fail(err, LL_ERR_FORMAT, "%s: tensor '%s': invalid dimension %d = %llu", c->path, t->name, d,
                           (unsigned long long)t->ne[d]);
        t->n_elems *= t->ne[d];
    }
    if ((rc = rd(c, &t->ggml_type, 4, t->name, err)) || (rc = rd(c, &t->offset, 8, t->name, err))) return rc;
    const char *tname;
    int be;
    size_t bb;
    if (!ll_ggml_type_info(t->ggml_type, &tname, &be, &bb))
        return ll_fail(err, LL_ERR_UNSUPPORTED, "%s: tensor '%s': unknown GGML type %u", c->path, t->name,
                       t->ggml_type);
    if (t->ne[0] % (uint64_t)be != 0)
        return ll_fail(err, LL_ERR_FORMAT, "%s: tensor '%s': row length %llu is not a multiple of the %s block size %d",
                       c->path, t->name, (unsigned long long)t->ne[0], tname, be);
    const uint64_t blocks = t->n_elems / (uint64_t)be;
    if (blocks > UINT64_MAX / bb)
        return ll_fail(err, LL_ERR_FORMAT, "%s: tensor '%s': size overflows", c->path, t->name);
    t->nbytes = blocks * bb;
    t->dtype = ll_dtype_from_ggml(t->ggml_type);
    return LL_OK;
}

void ll_gguf_close(ll_gguf_file *g) {
    if (!g) return;
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++) {
            free(g->kv[i].key);
            free(g->kv[i].arr_strs);
        }
    if (g->tensors)
        for (uint64_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    ll_unmap_file(&g->file);
    free(g);
}

static int cmp_str_ptr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A tensor name that occurs twice (sorted, not pairwise: a crafted file can
 * hold millions of tensor infos). */
static int find_duplicate_name(const ll_gguf_file *g, const char **dup, ll_error *err) {
    *dup = NULL;
    if (g->n_tensors < 2) return LL_OK;
    char **names = malloc((size_t)g->n_tensors * sizeof *names);
    if (!names) return ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", g->file.path);
    for (uint64_t i = 0; i < g->n_tensors; i++) names[i] = g->tensors[i].name;
    qsort(names, (size_t)g->n_tensors, sizeof *names, cmp_str_ptr);
    for (uint64_t i = 1; i < g->n_tensors && !*dup; i++)
        if (!strcmp(names[i - 1], names[i])) *dup = names[i];
    free(names);
    return LL_OK;
}

int ll_gguf_open_mapped(ll_gguf_file **out, ll_mapped_file *file, ll_error *err) {
    *out = NULL;
    ll_gguf_file *g = calloc(1, sizeof *g);
    if (!g) {
        ll_unmap_file(file);
        return ll_fail(err, LL_ERR_NOMEM, "out of memory");
    }
    g->file = *file;
    memset(file, 0, sizeof *file);
    const char *path = g->file.path;
    cursor c = {g->file.data, g->file.data + g->file.size, path};
    uint32_t magic = 0;
    int rc = rd(&c, &magic, 4, "the magic", err);
    if (rc) goto fail;
    if (magic != GGUF_MAGIC) {
        rc = ll_fail(err, LL_ERR_FORMAT, "%s: not a GGUF file (bad magic)", path);
        goto fail;
    }
    if ((rc = rd(&c, &g->version, 4, "the version", err))) goto fail;
    if (g->version != 2 && g->version != 3) {
        rc = ll_fail(err, LL_ERR_UNSUPPORTED, "%s: GGUF version %u is not supported (2 and 3 are)", path, g->version);
        goto fail;
    }
    if ((rc = rd(&c, &g->n_tensors, 8, "the tensor count", err)) || (rc = rd(&c, &g->n_kv, 8, "the key count", err)))
        goto fail;
    /* Each key/value needs at least 12 bytes and each tensor info at least 24. */
    if (g->n_kv > left(&c) / 12 || g->n_tensors > left(&c) / 24) {
        rc = ll_fail(err, LL_ERR_FORMAT, "%s: header claims %llu keys and %llu tensors, more than the file holds", path,
                     (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors);
        goto fail;
    }
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) {
        rc = ll_fail(err, LL_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (uint64_t i = 0; i < g->n_kv; i++)
        if ((rc = read_kv(&c, &g->kv[i], i, err))) goto fail;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const ll_gguf_kv *al = ll_gguf_find_kv(g, "general.alignment");
    if (al) {
        if (al->type != GGUF_TYPE_UINT32 || al->num.u == 0 || (al->num.u & (al->num.u - 1)) != 0) {
            rc = ll_fail(err, LL_ERR_FORMAT, "%s: key 'general.alignment' must be a power-of-two uint32", path);
            goto fail;
        }
        g->alignment = al->num.u;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if ((rc = read_tensor_info(&c, &g->tensors[i], i, err))) goto fail;
    const uint64_t header_end = (uint64_t)(c.p - g->file.data);
    g->data_offset = (header_end + g->alignment - 1) / g->alignment * g->alignment;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        ll_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment != 0) {
            rc = ll_fail(err, LL_ERR_FORMAT, "%s: tensor '%s': data offset %llu is not aligned to %llu", path, t->name,
                         (unsigned long long)t->offset, (unsigned long long)g->alignment);
            goto fail;
        }
        if (g->data_offset > g->file.size || t->offset > g->file.size - g->data_offset ||
            t->nbytes > g->file.size - g->data_offset - t->offset) {
            rc = ll_fail(err, LL_ERR_FORMAT,
                         "%s: tensor '%s': data (offset %llu, %llu bytes) runs past the end of the file (%zu bytes)",
                         path, t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes, g->file.size);
            goto fail;
        }
        t->data = g->file.data + g->data_offset + t->offset;
    }
    const char *dup = NULL;
    if ((rc = find_duplicate_name(g, &dup, err))) goto fail;
    if (dup) {
        rc = ll_fail(err, LL_ERR_FORMAT, "%s: tensor '%s' appears twice", path, dup);
        goto fail;
    }
    *out = g;
    return LL_OK;
fail:
    ll_gguf_close(g);
    return rc;
}

int ll_gguf_open(ll_gguf_file **out, const char *path, ll_error *err) {
    ll_mapped_file f;
    *out = NULL;
    int rc = ll_map_file(&f, path, err);
    if (rc) return rc;
    return ll_gguf_open_mapped(out, &f, err);
}

const ll_gguf_kv *ll_gguf_find_kv(const ll_gguf_file *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

const ll_gguf_tensor *ll_gguf_find_tensor(const ll_gguf_file *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

static int is_int_type(uint32_t t) {
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_INT8 || t == GGUF_TYPE_UINT16 || t == GGUF_TYPE_INT16 ||
           t == GGUF_TYPE_UINT32 || t == GGUF_TYPE_INT32 || t == GGUF_TYPE_UINT64 || t == GGUF_TYPE_INT64;
}
static int is_signed_type(uint32_t t) {
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 || t == GGUF_TYPE_INT64;
}

static const ll_gguf_kv *lookup(const ll_gguf_file *g, const char *key, int required, int *rc, ll_error *err) {
    const ll_gguf_kv *kv = ll_gguf_find_kv(g, key);
    *rc = LL_OK;
    if (!kv && required) *rc = ll_fail(err, LL_ERR_CONFIG, "%s: required key '%s' is missing", g->file.path, key);
    return kv;
}

int ll_gguf_get_int(const ll_gguf_file *g, const char *key, int required, int64_t *out, ll_error *err) {
    int rc;
    const ll_gguf_kv *kv = lookup(g, key, required, &rc, err);
    if (!kv) return rc;
    if (!is_int_type(kv->type))
        return ll_fail(err, LL_ERR_CONFIG, "%s: key '%s' has type %s, expected an integer", g->file.path, key,
                       ll_gguf_type_name(kv->type));
    if (!is_signed_type(kv->type) && kv->num.u > (uint64_t)INT64_MAX)
        return ll_fail(err, LL_ERR_CONFIG, "%s: key '%s' is out of range", g->file.path, key);
    *out = is_signed_type(kv->type) ? kv->num.i : (int64_t)kv->num.u;
    return LL_OK;
}

int ll_gguf_get_float(const ll_gguf_file *g, const char *key, int required, double *out, ll_error *err) {
    int rc;
    const ll_gguf_kv *kv = lookup(g, key, required, &rc, err);
    if (!kv) return rc;
    if (kv->type == GGUF_TYPE_FLOAT32 || kv->type == GGUF_TYPE_FLOAT64) *out = kv->num.f;
    else if (is_int_type(kv->type)) *out = is_signed_type(kv->type) ? (double)kv->num.i : (double)kv->num.u;
    else
        return ll_fail(err, LL_ERR_CONFIG, "%s: key '%s' has type %s, expected a number", g->file.path, key,
                       ll_gguf_type_name(kv->type));
    return LL_OK;
}

int ll_gguf_get_bool(const ll_gguf_file *g, const char *key, int required, int *out, ll_error *err) {
    int rc;
    const ll_gguf_kv *kv = lookup(g, key, required, &rc, err);
    if (!kv) return rc;
    if (kv->type != GGUF_TYPE_BOOL)
        return ll_fail(err, LL_ERR_CONFIG, "%s: key '%s' has type %s, expected bool", g->file.path, key,
                       ll_gguf_type_name(kv->type));
    *out = (int)kv->num.u;
    return LL_OK;
}

int ll_gguf_get_string(const ll_gguf_file *g, const char *key, int required, char *buf, size_t cap, ll_error *err) {
    int rc;
    const ll_gguf_kv *kv = lookup(g, key, required, &rc, err);
    if (!kv) return rc;
    if (kv->type != GGUF_TYPE_STRING)
        return ll_fail(err, LL_ERR_CONFIG, "%s: key '%s' has type %s, expected string", g->file.path, key,
                       ll_gguf_type_name(kv->type));
    size_t n = kv->str.len < cap - 1 ? (size_t)kv->str.len : cap - 1;
    memcpy(buf, kv->str.ptr, n);
    buf[n] = 0;
    return LL_OK;
}

double ll_gguf_arr_num(const ll_gguf_kv *kv, uint64_t i) {
    ll_gguf_kv tmp = {0};
    const size_t sz = scalar_size(kv->arr_type);
    decode_scalar(kv->arr_type, kv->arr_data + i * sz, &tmp);
    if (kv->arr_type == GGUF_TYPE_FLOAT32 || kv->arr_type == GGUF_TYPE_FLOAT64) return tmp.num.f;
    return is_signed_type(kv->arr_type) ? (double)tmp.num.i : (double)tmp.num.u;
}
