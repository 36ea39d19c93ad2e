/* Gated MLP activation (transformers' LlamaMLP: down(act(gate(x)) * up(x))):
 * h = act(g) * u elementwise, forward and backward, act an ll_activation
 * (silu, gelu with erf, gelu's tanh approximation, relu; formulas in
 * lsllama.h). */
#include <math.h>
#include <omp.h>

#include "kernels/kernels.h"
#include "lsllama.h" /* ll_activation */

/* h[n] = act(g[n]) * u[n]; g and h may alias. */
void ll_glu_forward(float *h, const float *g, const float *u, size_t n, int act) {
    switch (act) {
    case LL_ACT_GELU:
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            const float x = g[i];
            h[i] = 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2)) * u[i];
        }
        break;
    case LL_ACT_GELU_TANH:
        /* (1 + tanh a) / 2 = sigmoid(2a): the same function, computed by
         * ll_expf, which vectorises (glibc's tanhf does not, and took 15% of
         * a Gemma 3 training step), and accurate in both tails, where 1 + tanh a
         * would cancel */
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) {
            const float x = g[i];
            const float a = 0.7978845608028654f * (x + 0.044715f * x * x * x); /* sqrt(2/pi) (x + 0.044715 x^3) */
            h[i] = x / (1.0f + ll_expf(-2.0f * a)) * u[i];
        }
        break;
    case LL_ACT_RELU:
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) h[i] = (g[i] > 0.0f ? g[i] : 0.0f) * u[i];
        break;
    default: /* LL_ACT_SILU */
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) {
            const float x = g[i];
            h[i] = x / (1.0f + ll_expf(-x)) * u[i];
        }
    }
}

/* dg[n] = dh * u * act'(g), du[n] = dh * act(g) given dh[n] and the forward
 * inputs g[n], u[n]; act' is the exact derivative of the forward formula
 * (relu'(0) = 0, as PyTorch). Written, not added: the only caller had
 * zeroed dg and du first, two R x F buffers per layer. */
void ll_glu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n, int act) {
    switch (act) {
    case LL_ACT_GELU: /* act = x Phi(x): act' = Phi(x) + x phi(x) */
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            const float x = g[i], cdf = 0.5f * (1.0f + erff(x * (float)M_SQRT1_2));
            const float pdf = 0.3989422804014327f * expf(-0.5f * x * x); /* 1/sqrt(2 pi) e^(-x^2/2) */
            dg[i] = dh[i] * u[i] * (cdf + x * pdf);
            du[i] = dh[i] * x * cdf;
        }
        break;
    case LL_ACT_GELU_TANH:
        /* act = x (1 + tanh a) / 2 = x s, s = sigmoid(2a), a = c (x + k x^3):
         * act' = s + x s' = s + 2 x s (1 - s) c (1 + 3 k x^2), since
         * (1 - tanh^2 a) / 2 = 2 s (1 - s) */
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) {
            const float x = g[i], c = 0.7978845608028654f, k = 0.044715f;
            const float s = 1.0f / (1.0f + ll_expf(-2.0f * c * (x + k * x * x * x)));
            const float d = s + 2.0f * x * s * (1.0f - s) * c * (1.0f + 3.0f * k * x * x);
            dg[i] = dh[i] * u[i] * d;
            du[i] = dh[i] * x * s;
        }
        break;
    case LL_ACT_RELU:
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) {
            const int on = g[i] > 0.0f;
            dg[i] = on ? dh[i] * u[i] : 0.0f;
            du[i] = on ? dh[i] * g[i] : 0.0f;
        }
        break;
    default: /* LL_ACT_SILU */
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) {
            const float x = g[i], sig = 1.0f / (1.0f + ll_expf(-x)), silu = x * sig;
            dg[i] = dh[i] * u[i] * sig * (1.0f + x * (1.0f - sig));
            du[i] = dh[i] * silu;
        }
    }
}
