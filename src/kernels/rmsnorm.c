/* RMSNorm (transformers' LlamaRMSNorm): y = x / sqrt(mean(x^2) + eps) * w per
 * row, forward and backward. */
#include <math.h>
#include <omp.h>

#include "kernels/kernels.h"

/* y[T,C] = x[T,C] / rms(x row) * w[C]. */
void ll_rmsnorm_forward(float *y, const float *x, const float *w, size_t T, size_t C, float eps) {
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < T; t++) {
        const float *xr = x + t * C;
        float *yr = y + t * C;
        float ss = 0.0f;
        for (size_t i = 0; i < C; i++) ss += xr[i] * xr[i];
        const float r = 1.0f / sqrtf(ss / (float)C + eps);
        for (size_t i = 0; i < C; i++) yr[i] = w[i] * (xr[i] * r);
    }
}

/* dx[T,C] += d/dx of y = x / rms(x) * w given dy[T,C]; x[T,C] is the norm's
 * input, w[C] its weight (frozen: no weight gradient). With r = 1/rms:
 * dx = r dy w - x r^3 (dy w . x) / C. */
void ll_rmsnorm_backward(float *dx, const float *dy, const float *x, const float *w, size_t T, size_t C, float eps) {
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < T; t++) {
        const float *xr = x + t * C, *dyr = dy + t * C;
        float *dxr = dx + t * C;
        float ss = 0.0f, dot = 0.0f;
        for (size_t i = 0; i < C; i++) {
            ss += xr[i] * xr[i];
            dot += dyr[i] * w[i] * xr[i];
        }
        const float r = 1.0f / sqrtf(ss / (float)C + eps);
        const float k = r * r * r * dot / (float)C;
        for (size_t i = 0; i < C; i++) dxr[i] += r * dyr[i] * w[i] - k * xr[i];
    }
}

/* Columns in blocks of 16 per thread: each element's sum runs over the rows in order. */
void ll_rmsnorm_weight_grad(float *dw, const float *dy, const float *x, size_t T, size_t C, float eps, float *r) {
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < T; t++) {
        const float *xr = x + t * C;
        float ss = 0.0f;
        for (size_t i = 0; i < C; i++) ss += xr[i] * xr[i];
        r[t] = 1.0f / sqrtf(ss / (float)C + eps);
    }
#pragma omp parallel for schedule(static)
    for (size_t c0 = 0; c0 < C; c0 += 16) {
        const size_t c1 = c0 + 16 < C ? c0 + 16 : C;
        for (size_t t = 0; t < T; t++)
            for (size_t i = c0; i < c1; i++) dw[i] += dy[t * C + i] * (x[t * C + i] * r[t]);
    }
}
