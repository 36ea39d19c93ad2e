/* Linear layer of a frozen weight: forward and the input gradient. The
 * products go through ll_gemm (gemm.c). */
#include "kernels/kernels.h"

/* y[T,out] = x[T,in] W[out,in]^T (+ b[out]); accumulate: y += instead of =. */
void ll_linear_forward(float *y, const float *x, const float *W, const float *b, size_t T, size_t in, size_t out,
                       int accumulate) {
    ll_gemm(0, 1, T, out, in, 1.0f, x, in, W, in, accumulate ? 1.0f : 0.0f, y, out);
    if (b) {
#pragma omp parallel for schedule(static)
        for (size_t t = 0; t < T; t++)
            for (size_t o = 0; o < out; o++) y[t * out + o] += b[o];
    }
}

/* dx[T,in] += dy[T,out] W[out,in]: the input gradient only (the base weight
 * is frozen; LoRA computes its own factors' gradients). */
void ll_linear_backward_input(float *dx, const float *dy, const float *W, size_t T, size_t in, size_t out) {
    ll_gemm(0, 0, T, in, out, 1.0f, dy, out, W, in, 1.0f, dx, in);
}
