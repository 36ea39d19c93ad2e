#include "model/loss.h"

#include <math.h>

#include "kernels/kernels.h"

/* ---- probabilities ------------------------------------------------------ */

size_t ll_argmax_row(const float *z, size_t K) {
    size_t best = 0;
    for (size_t k = 1; k < K; k++)
        if (z[k] > z[best]) best = k;
    return best;
}

double ll_softmax_sum(const float *z, size_t K, float zmax) {
    double s = 0;
    for (size_t k = 0; k < K; k++) s += exp((double)z[k] - zmax);
    return s;
}

size_t ll_softmax_row(double *p, const float *z, size_t K) {
    const size_t best = ll_argmax_row(z, K);
    const double s = ll_softmax_sum(z, K, z[best]);
    for (size_t k = 0; k < K; k++) p[k] = exp((double)z[k] - z[best]) / s;
    return best;
}

double ll_softmax_top(const float *z, size_t K, size_t *best) {
    *best = ll_argmax_row(z, K);
    return 1.0 / ll_softmax_sum(z, K, z[*best]);
}

void ll_sigmoid_row(double *p, const float *z, size_t K) {
    for (size_t k = 0; k < K; k++) p[k] = 1.0 / (1.0 + exp(-(double)z[k]));
}

void ll_multilabel_predict(int *pred, const float *z, size_t K) {
    for (size_t k = 0; k < K; k++) pred[k] = z[k] > 0;
}

/* ---- cross-entropy ------------------------------------------------------ */

/* The largest of z[K] by fmaxf, which skips a NaN where ll_argmax_row's ">"
 * would keep one; equal for finite rows. Training has always shifted by this
 * maximum; kept so a NaN logit's loss and gradient stay bit for bit as they
 * were. */
static float row_max(const float *z, size_t K) {
    float zmax = z[0];
    for (size_t k = 1; k < K; k++) zmax = fmaxf(zmax, z[k]);
    return zmax;
}

double ll_crossentropy_row(const float *z, size_t K, int32_t y) {
    const float zmax = row_max(z, K);
    return zmax + log(ll_softmax_sum(z, K, zmax)) - z[y];
}

size_t ll_crossentropy_forward(double *sum, const float *logits, const int32_t *labels, size_t N, size_t K) {
    size_t n_labelled = 0;
    for (size_t n = 0; n < N; n++) {
        if (labels[n] < 0) continue;
        *sum += ll_crossentropy_row(logits + n * K, K, labels[n]);
        n_labelled++;
    }
    return n_labelled;
}

void ll_crossentropy_backward(float *dlogits, const float *logits, const int32_t *labels, size_t N, size_t K,
                              size_t n_labelled, float scale) {
    for (size_t n = 0; n < N; n++) {
        const float *z = logits + n * K;
        float *dz = dlogits + n * K;
        const int32_t y = labels[n];
        if (y < 0) {
            for (size_t k = 0; k < K; k++) dz[k] = 0.0f;
            continue;
        }
        const float zmax = row_max(z, K);
        const double s = ll_softmax_sum(z, K, zmax);
        for (size_t k = 0; k < K; k++) {
            const float p = (float)(exp((double)z[k] - zmax) / s);
            dz[k] = (p - (k == (size_t)y ? 1.0f : 0.0f)) / (float)n_labelled * scale;
        }
    }
}

/* ---- binary cross-entropy with logits ----------------------------------- */

double ll_bce_logits_elem(float x, float y) { return fmax(x, 0) - x * y + log1p(exp(-fabs(x))); }

void ll_bce_logits_forward(double *sum, const float *logits, const float *targets, size_t N, size_t K) {
    for (size_t i = 0; i < N * K; i++) *sum += ll_bce_logits_elem(logits[i], targets[i]);
}

double ll_bce_logits_row_mean(const float *z, const float *y, size_t K) {
    double row = 0;
    for (size_t k = 0; k < K; k++) row += ll_bce_logits_elem(z[k], y[k]);
    return row / (double)K;
}

void ll_bce_logits_backward(float *dlogits, const float *logits, const float *targets, size_t N, size_t K,
                            float scale) {
    for (size_t i = 0; i < N * K; i++) {
        const float x = logits[i];
        dlogits[i] = (1.0f / (1.0f + expf(-x)) - targets[i]) / (float)(N * K) * scale;
    }
}

/* ---- the score head ------------------------------------------------------ */

void ll_linear_head_backward(float *dx, float *dW, float *db, const float *dy, const float *x, const float *W,
                             size_t N, size_t D, size_t K) {
    ll_gemm(1, 0, K, D, N, 1.0f, dy, K, x, D, 1.0f, dW, D);
    if (db)
        for (size_t n = 0; n < N; n++)
            for (size_t k = 0; k < K; k++) db[k] += dy[n * K + k];
    if (dx) ll_gemm(0, 0, N, D, K, 1.0f, dy, K, W, D, 0.0f, dx, D);
}
