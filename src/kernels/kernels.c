#include "kernels/kernels.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "lsllama.h"

void ll_linear_forward(float *y, const float *x, const float *W, const float *b, size_t T, size_t in, size_t out,
                       int accumulate) {
    ll_gemm(0, 1, T, out, in, 1.0f, x, in, W, in, accumulate ? 1.0f : 0.0f, y, out);
    if (b) {
#pragma omp parallel for schedule(static)
        for (size_t t = 0; t < T; t++)
            for (size_t o = 0; o < out; o++) y[t * out + o] += b[o];
    }
}

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
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            const float x = g[i];
            const float a = 0.7978845608028654f * (x + 0.044715f * x * x * x); /* sqrt(2/pi) (x + 0.044715 x^3) */
            h[i] = 0.5f * x * (1.0f + tanhf(a)) * u[i];
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

void ll_rope_inv_freq(float *inv_freq, const ll_config *cfg, const float *freq_divisors) {
    const int half = cfg->head_dim / 2;
    for (int i = 0; i < half; i++) {
        double f = 1.0 / pow((double)cfg->rope_theta, (2.0 * i) / (double)cfg->head_dim);
        if (cfg->rope_scaling == LL_ROPE_LINEAR) {
            f /= cfg->rope_factor;
        } else if (cfg->rope_scaling == LL_ROPE_LLAMA3) {
            /* Llama 3.1: long wavelengths are divided by factor, short ones
             * kept, and the band between interpolated smoothly. */
            const double old_ctx = cfg->rope_original_max_pos, lo = cfg->rope_low_freq_factor,
                         hi = cfg->rope_high_freq_factor, factor = cfg->rope_factor;
            const double wavelen = 2.0 * M_PI / f;
            if (wavelen > old_ctx / lo) {
                f = f / factor;
            } else if (wavelen >= old_ctx / hi) {
                const double smooth = (old_ctx / wavelen - lo) / (hi - lo);
                f = (1.0 - smooth) * f / factor + smooth * f;
            }
        }
        if (freq_divisors) f /= freq_divisors[i];
        inv_freq[i] = (float)f;
    }
}

void ll_rope_tables(float *cos_t, float *sin_t, const float *inv_freq, int half, size_t n_pos) {
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < n_pos; p++)
        for (int i = 0; i < half; i++) {
            const float angle = (float)p * inv_freq[i]; /* float32 product, as transformers computes it */
            cos_t[p * half + i] = (float)cos((double)angle);
            sin_t[p * half + i] = (float)sin((double)angle);
        }
}
