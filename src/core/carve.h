/* One sizes table, then carve (after llm.c's fill_in_activation_sizes +
 * malloc_and_point_activations): a buffer set is described by ONE function
 * that carves every field from an ll_carver. Run it once on a counting carver
 * (no memory: every pointer comes back NULL, only the total grows), allocate
 * the total, then run the same function again on the allocation. The code
 * that counts the bytes is the code that hands them out, so the two can never
 * disagree.
 *
 *   static void carve_x(ll_carver *cv, x_bufs *b, size_t T) {
 *       b->h  = ll_carve_f32(cv, T * D);   // [T, D]
 *       b->id = ll_carve_i32(cv, T);       // [T]
 *   }
 *   void *block;
 *   int rc = ll_carve_alloc(&block, carve_x_fn, &ctx, "activations", err);
 *
 * Pieces are laid end to end in the order carved, each aligned to its own
 * element size only (no padding between floats): the layout, and therefore
 * every result, is the same as a hand-written `f += n` carver. */
#ifndef LL_CORE_CARVE_H
#define LL_CORE_CARVE_H

#include <stddef.h>
#include <stdint.h>

#include "lsllama.h"

typedef struct ll_carver {
    char *base;  /* NULL: counting pass */
    size_t used; /* bytes handed out (or counted) so far */
} ll_carver;

/* n elements of elem_size bytes (elem_size a power of two <= 16), aligned to
 * elem_size; NULL on a counting carver or when n == 0. */
static inline void *ll_carve(ll_carver *cv, size_t n, size_t elem_size) {
    cv->used = (cv->used + elem_size - 1) & ~(elem_size - 1);
    void *p = cv->base && n ? cv->base + cv->used : NULL;
    cv->used += n * elem_size;
    return p;
}
static inline float *ll_carve_f32(ll_carver *cv, size_t n) { return (float *)ll_carve(cv, n, sizeof(float)); }
static inline int32_t *ll_carve_i32(ll_carver *cv, size_t n) { return (int32_t *)ll_carve(cv, n, sizeof(int32_t)); }

/* The carving function of a buffer set: carves every field of `fields` from
 * cv (fields may be a scratch copy on the counting pass). */
typedef void (*ll_carve_fn)(ll_carver *cv, void *fields, const void *ctx);

/* Count with carve(NULL carver, scratch fields), malloc the total, carve into
 * `fields` for real. On success *block owns the memory (free() it) and every
 * field points into it; *bytes (optional) is the total. On failure nothing is
 * changed and LL_ERR_NOMEM names `what` and the size. fields_size is
 * sizeof(*fields) (a scratch copy is counted, so fields keeps its old
 * pointers until the allocation succeeded). */
int ll_carve_alloc(void **block, size_t *bytes, ll_carve_fn carve, void *fields, size_t fields_size,
                   const void *ctx, const char *what, ll_error *err);

#endif
