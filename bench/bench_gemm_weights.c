/* ll_gemm_weights (the frozen weight in its stored type, dequantized while
 * packing) against ll_gemm on the same weight converted to f32, side by side
 * in one run, on the products of a LLaMA-2-7B training step at T tokens:
 * forward x W^T for q/k/v/o (4096 x 4096) and gate/up (11008 x 4096), the
 * input gradients dy W of the same, and down (4096 x 11008) both ways. The
 * ratio is the cost of reading the stored type (1.00: none). Each product is
 * the best of several repetitions. Also prints the CPU and the kernels.
 *
 *   bench_gemm_weights [T=512] [reps=3] [TYPE ...]   (types: F32 BF16 Q8_0 Q4_1 Q4_K Q5_K Q6_K; default all) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "io/dtype.h"
#include "kernels/kernels.h"

/* Byte offsets of the f16 scale fields in one block of t (set to a small
 * finite value so random quants give finite, moderate weights). */
static int scale_offsets(ll_dtype t, int off[2]) {
    switch (t) {
    case LL_DTYPE_Q8_0: case LL_DTYPE_Q4_0: case LL_DTYPE_Q5_0: off[0] = 0; return 1;
    case LL_DTYPE_Q4_1: case LL_DTYPE_Q5_1: case LL_DTYPE_Q4_K: case LL_DTYPE_Q5_K: off[0] = 0, off[1] = 2; return 2;
    case LL_DTYPE_Q6_K: off[0] = 208; return 1;
    default: return 0;
    }
}

/* A rows x cols matrix of type t with random contents. */
static ll_matrix random_matrix(ll_dtype t, size_t rows, size_t cols, uint64_t seed) {
    const size_t be = (size_t)ll_dtype_block_elems(t), bb = ll_dtype_block_bytes(t), nblocks = rows * cols / be;
    uint8_t *p = malloc(nblocks * bb);
    uint64_t s = seed;
    for (size_t i = 0; i < nblocks * bb; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (uint8_t)(s >> 56);
    }
    if (t == LL_DTYPE_F32)
        for (size_t i = 0; i < rows * cols; i++) ((float *)p)[i] = (float)((i * 7) % 13) * 0.001f;
    if (t == LL_DTYPE_BF16 || t == LL_DTYPE_F16)
        for (size_t i = 0; i < rows * cols; i++)
            ((uint16_t *)p)[i] = t == LL_DTYPE_BF16 ? ll_fp32_to_bf16((float)((i * 7) % 13) * 0.001f)
                                                   : ll_fp32_to_fp16((float)((i * 7) % 13) * 0.001f);
    int off[2];
    const int n = scale_offsets(t, off);
    for (size_t b = 0; b < nblocks; b++)
        for (int k = 0; k < n; k++) memcpy(p + b * bb + off[k], &(uint16_t){0x1800}, 2); /* 2^-9 */
    return (ll_matrix){t, p, rows, cols, cols / be, LL_DTYPE_F32};
}

static double best_of(int reps, int typed, int tw, size_t M, size_t N, size_t K, const float *A, const ll_matrix *W,
                      const float *W32, float *C) {
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        const double t0 = bench_now();
        if (typed) ll_gemm_weights(0, tw, M, N, K, 1.0f, A, K, W, 0.0f, C, N);
        else ll_gemm(0, tw, M, N, K, 1.0f, A, K, W32, W->cols, 0.0f, C, N);
        const double dt = bench_now() - t0;
        if (r && dt < best) best = dt; /* r = 0 warms up */
    }
    return best;
}

int main(int argc, char **argv) {
    const size_t T = argc > 1 ? (size_t)atol(argv[1]) : 512;
    const int reps = argc > 2 ? atoi(argv[2]) : 3;
    const char *all[] = {"F32", "BF16", "Q8_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K"};
    const char **types = argc > 3 ? (const char **)argv + 3 : all;
    const int n_types = argc > 3 ? argc - 3 : (int)(sizeof all / sizeof *all);
    bench_print_machine(stdout);
    printf("T=%zu\n", T);
    /* {rows, cols} of W and tw: forward x W^T (tw 1), input gradient dy W (tw 0) */
    const size_t shapes[][3] = {{4096, 4096, 1}, {11008, 4096, 1}, {4096, 11008, 1},
                                {4096, 4096, 0}, {11008, 4096, 0}, {4096, 11008, 0}};
    float *A = malloc(sizeof(float) * T * 11008), *C = malloc(sizeof(float) * T * 11008),
          *W32 = malloc(sizeof(float) * 11008 * 4096);
    for (size_t i = 0; i < T * 11008; i++) A[i] = (float)((i * 5) % 11) * 0.01f;
    for (int ti = 0; ti < n_types; ti++) {
        ll_dtype t = LL_DTYPE_INVALID;
        for (int k = 0; k < LL_DTYPE_COUNT; k++)
            if (!strcmp(ll_dtype_name((ll_dtype)k), types[ti])) t = (ll_dtype)k;
        if (t == LL_DTYPE_INVALID || !ll_dtype_is_float_convertible(t)) {
            fprintf(stderr, "bench_gemm_weights: unknown type %s\n", types[ti]);
            return 2;
        }
        double sum_typed = 0, sum_f32 = 0, flops = 0;
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            const size_t rows = shapes[s][0], cols = shapes[s][1];
            const int tw = (int)shapes[s][2];
            const ll_matrix W = random_matrix(t, rows, cols, 1 + s);
            ll_dequantize(t, W.data, W32, rows * cols);
            const size_t N = tw ? rows : cols, K = tw ? cols : rows;
            const double typed = best_of(reps, 1, tw, T, N, K, A, &W, W32, C);
            const double f32 = best_of(reps, 0, tw, T, N, K, A, &W, W32, C);
            const double gf = 2.0 * T * N * K / 1e9;
            sum_typed += typed, sum_f32 += f32, flops += gf;
            printf("%-5s %s W[%5zu,%5zu]  stored %6.1f GFLOP/s  as f32 %6.1f GFLOP/s  ratio %.3f\n", types[ti],
                   tw ? "x W^T" : "dy W ", rows, cols, gf / typed, gf / f32, f32 / typed);
            free((void *)W.data);
        }
        printf("%-5s all six: stored %.1f GFLOP/s, as f32 %.1f GFLOP/s, time ratio stored/f32 %.3f\n", types[ti],
               flops / sum_typed, flops / sum_f32, sum_typed / sum_f32);
    }
    free(A), free(C), free(W32);
    return 0;
}
