/* Pooling of each packed sequence's hidden states into one row (last, mean,
 * max, first), forward and backward. */
#include <omp.h>
#include <string.h>

#include "kernels/kernels.h"
#include "lsllama.h" /* ll_pool */

/* pooled[n_seqs, C] from hidden h[T, C], sequence s spanning rows
 * seq_start[s]..seq_start[s+1]. argmax (optional, [n_seqs, C]) records the
 * source row of each max, for the backward. */
void ll_pool_forward(float *pooled, int32_t *argmax, const float *h, const int32_t *seq_start, int n_seqs, size_t C,
                     int pool) {
#pragma omp parallel for schedule(static)
    for (int s = 0; s < n_seqs; s++) {
        const size_t a = (size_t)seq_start[s], e = (size_t)seq_start[s + 1];
        float *o = pooled + (size_t)s * C;
        if (pool == LL_POOL_LAST || pool == LL_POOL_FIRST) {
            memcpy(o, h + (pool == LL_POOL_LAST ? e - 1 : a) * C, C * sizeof(float));
        } else if (pool == LL_POOL_MEAN) {
            for (size_t i = 0; i < C; i++) o[i] = 0.0f;
            for (size_t t = a; t < e; t++)
                for (size_t i = 0; i < C; i++) o[i] += h[t * C + i];
            for (size_t i = 0; i < C; i++) o[i] /= (float)(e - a);
        } else {
            int32_t *am = argmax ? argmax + (size_t)s * C : NULL;
            for (size_t i = 0; i < C; i++) {
                o[i] = h[a * C + i];
                if (am) am[i] = (int32_t)a;
            }
            for (size_t t = a + 1; t < e; t++)
                for (size_t i = 0; i < C; i++)
                    if (h[t * C + i] > o[i]) {
                        o[i] = h[t * C + i];
                        if (am) am[i] = (int32_t)t;
                    }
        }
    }
}

/* dh[T, C]: dpooled[n_seqs, C] scattered back to the entries each sequence
 * pooled from (argmax [n_seqs, C] for max). Overwrites those entries (unlike
 * the other backward kernels, which add) and leaves the rest as they are. */
void ll_pool_backward(float *dh, const float *dpooled, const int32_t *argmax, const int32_t *seq_start, int n_seqs,
                      size_t C, int pool) {
#pragma omp parallel for schedule(static)
    for (int s = 0; s < n_seqs; s++) {
        const size_t a = (size_t)seq_start[s], e = (size_t)seq_start[s + 1];
        const float *g = dpooled + (size_t)s * C;
        if (pool == LL_POOL_LAST || pool == LL_POOL_FIRST) {
            memcpy(dh + (pool == LL_POOL_LAST ? e - 1 : a) * C, g, C * sizeof(float));
        } else if (pool == LL_POOL_MEAN) {
            const float inv = 1.0f / (float)(e - a);
            for (size_t t = a; t < e; t++)
                for (size_t i = 0; i < C; i++) dh[t * C + i] = g[i] * inv;
        } else {
            const int32_t *am = argmax + (size_t)s * C;
            for (size_t i = 0; i < C; i++) dh[(size_t)am[i] * C + i] = g[i];
        }
    }
}
