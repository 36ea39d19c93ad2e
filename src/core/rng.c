#include "core/rng.h"

#include <math.h>

double ll_rng_uniform01(uint64_t *state) {
    return ((ll_splitmix64_next(state) >> 11) + 0.5) * (1.0 / 9007199254740992.0); /* / 2^53 */
}

double ll_rng_normal(uint64_t *state) {
    /* two statements: the order of the draws is part of the stream */
    const double radius = sqrt(-2.0 * log(ll_rng_uniform01(state)));
    return radius * cos(2.0 * M_PI * ll_rng_uniform01(state));
}

ll_dropout ll_dropout_make(float p, uint64_t origin, uint64_t stride) {
    return (ll_dropout){.origin = origin, .stride = stride, .threshold = (uint64_t)((double)p * 16777216.0),
                        .keep_scale = 1.0f / (1.0f - p)};
}

void ll_dropout_forward(const ll_dropout *d, float *out, const float *x, size_t n) {
    const ll_dropout mask = *d; /* a local copy: out may alias nothing the loop reads from *d */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = ll_dropout_keeps(&mask, i) ? x[i] * mask.keep_scale : 0.0f;
}

void ll_dropout_backward(const ll_dropout *d, float *dx, const float *dy, const float *x, const float *out, size_t n,
                         int accumulate) {
    const ll_dropout mask = *d;
    const float ks = mask.keep_scale;
    /* Where x is 0, out cannot tell: hash again (rare). This loop writes only
     * those elements, each after reading its own dy, so dx may be dy. */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        if (x[i] == 0.0f) {
            const float g = ll_dropout_keeps(&mask, i) ? dy[i] * ks : 0.0f;
            dx[i] = accumulate ? dx[i] + g : g;
        }
    /* Elsewhere a kept element is non-zero (|x| <= |x * keep_scale|). */
    if (accumulate) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) dx[i] += x[i] != 0.0f && out[i] != 0.0f ? dy[i] * ks : 0.0f;
    } else {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) dx[i] = x[i] == 0.0f ? dx[i] : out[i] != 0.0f ? dy[i] * ks : 0.0f;
    }
}
