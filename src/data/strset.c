#include "data/strset.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h;
}

ll_strset *ll_strset_new(void) {
    ll_strset *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->tcap = 64;
    s->table = malloc(s->tcap * sizeof *s->table);
    if (!s->table) { free(s); return NULL; }
    memset(s->table, 0xff, s->tcap * sizeof *s->table);
    return s;
}

void ll_strset_free(ll_strset *s) {
    if (!s) return;
    free(s->buf);
    free(s->off);
    free(s->len);
    free(s->table);
    free(s);
}

static size_t slot_of(const ll_strset *s, const char *str, size_t len) {
    size_t mask = s->tcap - 1, i = (size_t)hash_bytes(str, len) & mask;
    for (;;) {
        int32_t id = s->table[i];
        if (id < 0 || (s->len[id] == len && memcmp(s->buf + s->off[id], str, len) == 0)) return i;
        i = (i + 1) & mask;
    }
}

int32_t ll_strset_find(const ll_strset *s, const char *str, size_t len) {
    return s->table[slot_of(s, str, len)];
}

static int grow_table(ll_strset *s) {
    size_t ncap = s->tcap * 2;
    int32_t *t = malloc(ncap * sizeof *t);
    if (!t) return -1;
    memset(t, 0xff, ncap * sizeof *t);
    free(s->table);
    s->table = t;
    s->tcap = ncap;
    for (size_t id = 0; id < s->n; id++) s->table[slot_of(s, s->buf + s->off[id], s->len[id])] = (int32_t)id;
    return 0;
}

int32_t ll_strset_intern(ll_strset *s, const char *str, size_t len) {
    size_t slot = slot_of(s, str, len);
    if (s->table[slot] >= 0) return s->table[slot];
    if (s->n >= INT32_MAX - 1 || len > UINT32_MAX) return -1;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        size_t *o = realloc(s->off, nc * sizeof *o);
        if (!o) return -1;
        s->off = o;
        uint32_t *l = realloc(s->len, nc * sizeof *l);
        if (!l) return -1;
        s->len = l;
        s->cap = nc;
    }
    if (s->buf_len + len + 1 > s->buf_cap) {
        size_t nc = s->buf_cap ? s->buf_cap : 256;
        while (nc < s->buf_len + len + 1) nc *= 2;
        char *b = realloc(s->buf, nc);
        if (!b) return -1;
        s->buf = b;
        s->buf_cap = nc;
    }
    memcpy(s->buf + s->buf_len, str, len);
    s->buf[s->buf_len + len] = 0;
    int32_t id = (int32_t)s->n++;
    s->off[id] = s->buf_len;
    s->len[id] = (uint32_t)len;
    s->buf_len += len + 1;
    s->table[slot] = id;
    if (s->n * 2 > s->tcap && grow_table(s)) return -1;
    return id;
}
