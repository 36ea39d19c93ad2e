#include "text/maps.h"

#include <stdlib.h>
#include <string.h>

static size_t pow2_for(size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2 + 2) cap <<= 1;
    return cap;
}

int ll_strmap_init(ll_strmap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    size_t cap = pow2_for(expected);
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots) return -1;
    memset(m->slots, 0xff, cap * sizeof *m->slots);
    m->mask = cap - 1;
    return 0;
}

void ll_strmap_free(ll_strmap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

int32_t ll_strmap_get(const ll_strmap *m, const char *pool, const uint32_t *off, const uint32_t *len, const char *s,
                      size_t n) {
    if (!m->slots) return -1;
    size_t i = ll_hash_bytes(s, n) & m->mask;
    for (;;) {
        int32_t id = m->slots[i];
        if (id < 0) return -1;
        if (len[id] == n && memcmp(pool + off[id], s, n) == 0) return id;
        i = (i + 1) & m->mask;
    }
}

int32_t ll_strmap_put(ll_strmap *m, const char *pool, const uint32_t *off, const uint32_t *len, int32_t id) {
    const char *s = pool + off[id];
    size_t n = len[id];
    size_t i = ll_hash_bytes(s, n) & m->mask;
    for (;;) {
        int32_t cur = m->slots[i];
        if (cur < 0) {
            m->slots[i] = id;
            return id;
        }
        if (len[cur] == n && memcmp(pool + off[cur], s, n) == 0) return cur;
        i = (i + 1) & m->mask;
    }
}

int ll_pairmap_init(ll_pairmap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    size_t cap = pow2_for(expected);
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots) return -1;
    for (size_t i = 0; i < cap; i++) m->slots[i].key = UINT64_MAX;
    m->mask = cap - 1;
    return 0;
}

void ll_pairmap_free(ll_pairmap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static int pairmap_grow(ll_pairmap *m) {
    size_t cap = (m->mask + 1) * 2;
    ll_pair_entry *ns = malloc(cap * sizeof *ns);
    if (!ns) return -1;
    for (size_t i = 0; i < cap; i++) ns[i].key = UINT64_MAX;
    for (size_t i = 0; i <= m->mask; i++) {
        ll_pair_entry e = m->slots[i];
        if (e.key == UINT64_MAX) continue;
        size_t j = ll_pair_hash(e.key) & (cap - 1);
        while (ns[j].key != UINT64_MAX) j = (j + 1) & (cap - 1);
        ns[j] = e;
    }
    free(m->slots);
    m->slots = ns;
    m->mask = cap - 1;
    return 0;
}

int ll_pairmap_put(ll_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged) {
    if ((m->count + 1) * 2 > m->mask + 1 && pairmap_grow(m)) return -1;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t i = ll_pair_hash(key) & m->mask;
    for (;;) {
        ll_pair_entry *e = &m->slots[i];
        if (e->key == UINT64_MAX) {
            e->key = key;
            e->rank = rank;
            e->merged = merged;
            m->count++;
            return 0;
        }
        if (e->key == key) {
            if (rank < e->rank) {
                e->rank = rank;
                e->merged = merged;
            }
            return 0;
        }
        i = (i + 1) & m->mask;
    }
}
