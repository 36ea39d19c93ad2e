/* An interning set of byte strings: each distinct string gets a dense id in
 * order of first insertion. Strings live in one arena (NUL-terminated). */
#ifndef LL_DATA_STRSET_H
#define LL_DATA_STRSET_H

#include <stddef.h>
#include <stdint.h>

typedef struct ll_strset {
    char *buf;          /* arena of NUL-terminated strings */
    size_t buf_len, buf_cap;
    size_t *off;        /* id -> offset in buf */
    uint32_t *len;      /* id -> length */
    size_t n, cap;
    int32_t *table;     /* open addressing: id or -1; size tcap (power of two) */
    size_t tcap;
} ll_strset;

ll_strset *ll_strset_new(void);
void ll_strset_free(ll_strset *s);
/* Id of s[0..len), inserting it if new; -1 on allocation failure. */
int32_t ll_strset_intern(ll_strset *s, const char *str, size_t len);
/* Id or -1 if absent. */
int32_t ll_strset_find(const ll_strset *s, const char *str, size_t len);
static inline const char *ll_strset_get(const ll_strset *s, int32_t id) { return s->buf + s->off[id]; }

#endif
