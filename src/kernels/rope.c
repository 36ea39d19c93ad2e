/* Rotary position embedding, rotate-half layout (transformers'
 * apply_rotary_pos_emb): the pair (x[i], x[i + head_dim/2]) is rotated by
 * angle pos * inv_freq[i]. The kernels take cos/sin tables only; how the
 * frequencies follow from a model's configuration is model/rope_freq.c's. */
#include <math.h>
#include <omp.h>

#include "kernels/kernels.h"

/* cos_t[p][i] = cos(p * inv_freq[i]), sin_t[p][i] likewise: [n_pos, half]
 * from inv_freq[half]. */
void ll_rope_tables(float *cos_t, float *sin_t, const float *inv_freq, int half, size_t n_pos) {
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < n_pos; p++)
        for (int i = 0; i < half; i++) {
            const float angle = (float)p * inv_freq[i]; /* float32 product, as transformers computes it */
            cos_t[p * half + i] = (float)cos((double)angle);
            sin_t[p * half + i] = (float)sin((double)angle);
        }
}

/* In place on x[T, n_heads*head_dim]: rotate every head of row t by position
 * pos[t]; cos_t/sin_t [max_pos, head_dim/2] from ll_rope_tables. */
void ll_rope_forward(float *x, const int32_t *pos, const float *cos_t, const float *sin_t, size_t T,
                     int n_heads, int head_dim) {
    const int half = head_dim / 2;
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < T; t++) {
        const float *c = cos_t + (size_t)pos[t] * half, *s = sin_t + (size_t)pos[t] * half;
        for (int h = 0; h < n_heads; h++) {
            float *xh = x + (t * n_heads + h) * head_dim;
            for (int i = 0; i < half; i++) {
                const float x0 = xh[i], x1 = xh[i + half];
                xh[i] = x0 * c[i] - x1 * s[i];
                xh[i + half] = x1 * c[i] + x0 * s[i];
            }
        }
    }
}

/* In place on dx[T, n_heads*head_dim]: turn dL/d(rotated) into
 * dL/d(unrotated), the inverse rotation (same pos and tables as forward). */
void ll_rope_backward(float *dx, const int32_t *pos, const float *cos_t, const float *sin_t, size_t T, int n_heads,
                      int head_dim) {
    const int half = head_dim / 2;
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < T; t++) {
        const float *c = cos_t + (size_t)pos[t] * half, *s = sin_t + (size_t)pos[t] * half;
        for (int h = 0; h < n_heads; h++) {
            float *g = dx + (t * n_heads + h) * head_dim;
            for (int i = 0; i < half; i++) {
                const float g0 = g[i], g1 = g[i + half];
                g[i] = g0 * c[i] + g1 * s[i];
                g[i + half] = g1 * c[i] - g0 * s[i];
            }
        }
    }
}
