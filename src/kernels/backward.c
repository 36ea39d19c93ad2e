/* Backward kernels for a frozen base model (input gradients only). */
#include <math.h>
#include <omp.h>

#include "kernels/kernels.h"

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

void ll_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                           const float *v, const int32_t *seq_start, int n_seqs, int n_heads, int n_kv_heads,
                           int head_dim, int causal, float *scratch, size_t max_len) {
    const int group = n_heads / n_kv_heads;
    const size_t qd = (size_t)n_heads * head_dim, kvd = (size_t)n_kv_heads * head_dim;
    const float scale = 1.0f / sqrtf((float)head_dim);
    /* One task per (sequence, kv head): it owns that slice of dk and dv, so
     * no two threads write the same gradient. */
#pragma omp parallel
    {
        float *p = scratch + (size_t)omp_get_thread_num() * 2 * max_len, *dp = p + max_len;
#pragma omp for schedule(dynamic, 1)
        for (size_t task = 0; task < (size_t)n_seqs * n_kv_heads; task++) {
            const int s = (int)(task / n_kv_heads), kh = (int)(task % n_kv_heads);
            const size_t a = (size_t)seq_start[s], b = (size_t)seq_start[s + 1];
            for (int h = kh * group; h < (kh + 1) * group; h++)
                for (size_t t = a; t < b; t++) {
                    const size_t end = causal ? t + 1 : b;
                    const float *qr = q + t * qd + (size_t)h * head_dim;
                    const float *dor = dout + t * qd + (size_t)h * head_dim;
                    float mx = -INFINITY;
                    for (size_t j = a; j < end; j++) {
                        const float *kr = k + j * kvd + (size_t)kh * head_dim;
                        const float d = ll_dot(qr, kr, head_dim);
                        p[j - a] = d * scale;
                        if (p[j - a] > mx) mx = p[j - a];
                    }
                    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
                    for (size_t j = a; j < end; j++) sum += (p[j - a] = ll_expf(p[j - a] - mx));
                    const float inv = 1.0f / sum;
                    float pdp = 0.0f;
                    for (size_t j = a; j < end; j++) {
                        p[j - a] *= inv;
                        const float *vr = v + j * kvd + (size_t)kh * head_dim;
                        const float d = ll_dot(dor, vr, head_dim);
                        dp[j - a] = d;
                        pdp += p[j - a] * d;
                    }
                    float *dqr = dq + t * qd + (size_t)h * head_dim;
                    for (size_t j = a; j < end; j++) {
                        const float ds = p[j - a] * (dp[j - a] - pdp) * scale;
                        const float *kr = k + j * kvd + (size_t)kh * head_dim;
                        float *dkr = dk + j * kvd + (size_t)kh * head_dim, *dvr = dv + j * kvd + (size_t)kh * head_dim;
#pragma omp simd
                        for (int i = 0; i < head_dim; i++) {
                            dqr[i] += ds * kr[i];
                            dkr[i] += ds * qr[i];
                            dvr[i] += p[j - a] * dor[i];
                        }
                    }
                }
        }
    }
}

void ll_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        const float x = g[i], sig = 1.0f / (1.0f + ll_expf(-x)), silu = x * sig;
        dg[i] += dh[i] * u[i] * sig * (1.0f + x * (1.0f - sig));
        du[i] += dh[i] * silu;
    }
}
