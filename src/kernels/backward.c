/* Backward kernels for a frozen base model (input gradients only). */
#include <math.h>
#include <omp.h>

#include "kernels/kernels.h"
#include "lsllama.h"

void ll_linear_backward_input(float *dx, const float *dy, const float *W, size_t T, size_t in, size_t out) {
    ll_gemm(0, 0, T, in, out, 1.0f, dy, out, W, in, 1.0f, dx, in);
}

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

void ll_glu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n, int act) {
    switch (act) {
    case LL_ACT_GELU: /* act = x Phi(x): act' = Phi(x) + x phi(x) */
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            const float x = g[i], cdf = 0.5f * (1.0f + erff(x * (float)M_SQRT1_2));
            const float pdf = 0.3989422804014327f * expf(-0.5f * x * x); /* 1/sqrt(2 pi) e^(-x^2/2) */
            dg[i] += dh[i] * u[i] * (cdf + x * pdf);
            du[i] += dh[i] * x * cdf;
        }
        break;
    case LL_ACT_GELU_TANH: /* act = x (1 + tanh a) / 2, a = c (x + k x^3) */
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            const float x = g[i], c = 0.7978845608028654f, k = 0.044715f;
            const float t = tanhf(c * (x + k * x * x * x));
            const float d = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * c * (1.0f + 3.0f * k * x * x);
            dg[i] += dh[i] * u[i] * d;
            du[i] += dh[i] * 0.5f * x * (1.0f + t);
        }
        break;
    case LL_ACT_RELU:
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) {
            const int on = g[i] > 0.0f;
            dg[i] += on ? dh[i] * u[i] : 0.0f;
            du[i] += on ? dh[i] * g[i] : 0.0f;
        }
        break;
    default: /* LL_ACT_SILU */
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) {
            const float x = g[i], sig = 1.0f / (1.0f + ll_expf(-x)), silu = x * sig;
            dg[i] += dh[i] * u[i] * sig * (1.0f + x * (1.0f - sig));
            du[i] += dh[i] * silu;
        }
    }
}
