/* The one source of pseudo-random numbers (after llm.c's rand.h): splitmix64
 * (Steele, Lea & Flood 2014) in two forms, uniform and normal draws from it,
 * and counter-based dropout masks.
 *
 *   - ll_splitmix64_next(&state): a sequential stream (data order, parameter
 *     initialisation); the state is one uint64.
 *   - ll_splitmix64_hash(key): the same generator as a pure function, the
 *     value a stream whose state is `key` would return next; keys are
 *     combined by hashing (dropout seeds per layer and module).
 *   - ll_dropout: element i of a mask is decided by hashing origin + i *
 *     stride alone, so a backward pass regenerates the mask instead of
 *     storing it and the mask does not depend on the thread count.
 *
 * Every stream is part of the results (adapters, logs): a change to any
 * constant or formula here changes every trained adapter. */
#ifndef LL_CORE_RNG_H
#define LL_CORE_RNG_H

#include <stddef.h>
#include <stdint.h>

/* splitmix64's increment, 2^64 / golden ratio (odd: the state visits every value). */
#define LL_SPLITMIX64_GAMMA 0x9E3779B97F4A7C15ull

/* splitmix64's output function: a bijective mix of the 64 bits of z. */
static inline uint64_t ll_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Advance the stream one step and return its next value. */
static inline uint64_t ll_splitmix64_next(uint64_t *state) { return ll_mix64(*state += LL_SPLITMIX64_GAMMA); }

/* The pure form: what ll_splitmix64_next would return from state `key`
 * (key itself unchanged). */
static inline uint64_t ll_splitmix64_hash(uint64_t key) { return ll_mix64(key + LL_SPLITMIX64_GAMMA); }

/* Uniform in (0, 1), never 0 (53 random bits, centred in their interval). */
double ll_rng_uniform01(uint64_t *state);

/* Standard normal (Box-Muller; two uniform draws, the radius's first). */
double ll_rng_normal(uint64_t *state);

/* ---- dropout ---------------------------------------------------------------- */

/* A dropout mask with rate p over a flat array: element i is dropped when
 * the top 24 bits of ll_mix64(origin + i * stride) fall below p * 2^24;
 * kept elements are scaled by 1 / (1 - p) (torch.nn.Dropout, PEFT). */
typedef struct ll_dropout {
    uint64_t origin, stride; /* element i hashes origin + i * stride */
    uint64_t threshold;      /* p * 2^24: draws below it drop */
    float keep_scale;        /* 1 / (1 - p) */
} ll_dropout;

/* The mask of rate p (0 <= p < 1) drawn at origin, stride. */
ll_dropout ll_dropout_make(float p, uint64_t origin, uint64_t stride);

/* 1 if element i is kept. */
static inline int ll_dropout_keeps(const ll_dropout *d, size_t i) {
    return (ll_mix64(d->origin + i * d->stride) >> 40) >= d->threshold;
}

/* out[n] = mask(x[n]) * keep_scale (dropped elements 0). */
void ll_dropout_forward(const ll_dropout *d, float *out, const float *x, size_t n);

/* The gradient through the mask that made out from x (ll_dropout_forward):
 * dx[n] = dy * mask * keep_scale, or dx += that with accumulate; dx may be
 * dy (in place, accumulate 0). The mask is read back from out (kept where it
 * is non-zero: a kept non-zero x stays non-zero) and hashed again only where
 * x is 0, where out cannot tell: exact, at a fraction of the hashing cost. */
void ll_dropout_backward(const ll_dropout *d, float *dx, const float *dy, const float *x, const float *out, size_t n,
                         int accumulate);

#endif
