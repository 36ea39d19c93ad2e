/* Hash maps for the tokenizer: byte string -> id (vocabulary), and token-id
 * pair -> (rank, merged id) (BPE merges). Open addressing, power-of-two sized. */
#ifndef LL_TEXT_MAPS_H
#define LL_TEXT_MAPS_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t ll_hash_bytes(const void *p, size_t n) {
    /* FNV-1a 64 with a final mix */
    const uint8_t *s = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;
    return h;
}

/* Maps strings stored elsewhere (pool + offsets owned by the caller) to ids. */
typedef struct ll_strmap {
    int32_t *slots; /* id or -1 */
    size_t mask;
} ll_strmap;

int ll_strmap_init(ll_strmap *m, size_t expected);
void ll_strmap_free(ll_strmap *m);
/* id of string s, or -1 */
int32_t ll_strmap_get(const ll_strmap *m, const char *pool, const uint32_t *off, const uint32_t *len, const char *s,
                      size_t n);
/* insert id (string = pool[off[id]..+len[id]]); keeps an existing entry
 * (first id wins); returns the id stored for that string */
int32_t ll_strmap_put(ll_strmap *m, const char *pool, const uint32_t *off, const uint32_t *len, int32_t id);

typedef struct ll_pair_entry {
    uint64_t key; /* (left << 32) | right, UINT64_MAX = empty */
    int32_t rank;
    int32_t merged;
} ll_pair_entry;

typedef struct ll_pairmap {
    ll_pair_entry *slots;
    size_t mask, count;
} ll_pairmap;

int ll_pairmap_init(ll_pairmap *m, size_t expected);
void ll_pairmap_free(ll_pairmap *m);
/* keeps the lowest rank for a key */
int ll_pairmap_put(ll_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged);

static inline uint64_t ll_pair_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

static inline const ll_pair_entry *ll_pairmap_get(const ll_pairmap *m, int32_t a, int32_t b) {
    if (!m->slots) return NULL;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t i = ll_pair_hash(key) & m->mask;
    for (;;) {
        const ll_pair_entry *e = &m->slots[i];
        if (e->key == key) return e;
        if (e->key == UINT64_MAX) return NULL;
        i = (i + 1) & m->mask;
    }
}

#endif
