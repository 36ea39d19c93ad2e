/* Linear layer of a frozen weight: forward and the input gradient. The
 * products go through ll_gemm_weights (gemm.c), which reads W in its stored
 * type. */
#include "kernels/kernels.h"

void ll_add_bias(float *y, const float *b, size_t T, size_t out) {
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < T; t++)
        for (size_t o = 0; o < out; o++) y[t * out + o] += b[o];
}

/* y[T,out] = x[T,in] W[out,in]^T (+ b[out]); accumulate: y += instead of =. */
void ll_linear_forward(float *y, const float *x, const ll_matrix *W, const float *b, size_t T, size_t in, size_t out,
                       int accumulate) {
    ll_gemm_weights(0, 1, T, out, in, 1.0f, x, in, W, accumulate ? 1.0f : 0.0f, y, out);
    if (b) ll_add_bias(y, b, T, out);
}

/* The same with an f32 W (the trainable head), through ll_gemm. */
void ll_linear_forward_f32(float *y, const float *x, const float *W, const float *b, size_t T, size_t in, size_t out,
                           int accumulate) {
    ll_gemm(0, 1, T, out, in, 1.0f, x, in, W, in, accumulate ? 1.0f : 0.0f, y, out);
    if (b) ll_add_bias(y, b, T, out);
}

/* dx[T,in] (+)= dy[T,out] W[out,in]: the input gradient only (the base
 * weight is frozen; LoRA computes its own factors' gradients). */
void ll_linear_backward_input(float *dx, const float *dy, const ll_matrix *W, size_t T, size_t in, size_t out,
                              int accumulate) {
    ll_gemm_weights(0, 0, T, in, out, 1.0f, dy, out, W, accumulate ? 1.0f : 0.0f, dx, in);
}

void ll_embedding_lookup(float *x, const ll_matrix *E, const int32_t *tokens, size_t T) {
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < T; t++) ll_matrix_row_f32(E, (size_t)tokens[t], x + t * E->cols);
}

void ll_embedding_backward(float *dE, const float *dx, const int32_t *tokens, size_t T, size_t D) {
#pragma omp parallel for schedule(static)
    for (size_t c0 = 0; c0 < D; c0 += 16) {
        const size_t c1 = c0 + 16 < D ? c0 + 16 : D;
        for (size_t t = 0; t < T; t++)
            for (size_t i = c0; i < c1; i++) dE[(size_t)tokens[t] * D + i] += dx[t * D + i];
    }
}
