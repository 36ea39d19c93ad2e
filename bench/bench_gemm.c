/* ll_gemm against OpenBLAS sgemm on the products of a SmolLM2-135M training
 * step (T tokens; forward x W^T and backward dy W for q/o, k/v, gate/up and
 * down), each timed as the best of several repetitions, side by side in one run.
 *
 *   bench_gemm [T=1024] [reps=5] */
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"

int main(int argc, char **argv) {
    const size_t T = argc > 1 ? (size_t)atol(argv[1]) : 1024;
    const int reps = argc > 2 ? atoi(argv[2]) : 5;
    /* {tb, N, K}: forward y = x W^T has tb 1, backward dx = dy W has tb 0 */
    const size_t cases[][3] = {{1, 576, 576}, {1, 192, 576}, {1, 1536, 576}, {1, 576, 1536},
                               {0, 576, 576}, {0, 576, 192}, {0, 576, 1536}, {0, 1536, 576}};
    float *A = malloc(sizeof(float) * T * 1536), *B = malloc(sizeof(float) * 1536 * 1536),
          *C = malloc(sizeof(float) * T * 1536);
    for (size_t i = 0; i < T * 1536; i++) A[i] = (float)(i % 13) * 0.01f;
    for (size_t i = 0; i < 1536 * 1536; i++) B[i] = (float)(i % 7) * 0.01f;
    bench_print_machine(stdout);
    printf("T=%zu\n", T);
    double sum_ll = 0, sum_blas = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int tb = (int)cases[c][0];
        const size_t N = cases[c][1], K = cases[c][2], ldb = tb ? K : N;
        double best_ll = 1e30, best_blas = 1e30;
        for (int r = 0; r <= reps; r++) {
            double t0 = bench_now();
            ll_gemm(0, tb, T, N, K, 1.0f, A, K, B, ldb, 0.0f, C, N);
            const double t_ll = bench_now() - t0;
            t0 = bench_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)T, (blasint)N,
                        (blasint)K, 1.0f, A, (blasint)K, B, (blasint)ldb, 0.0f, C, (blasint)N);
            const double t_blas = bench_now() - t0;
            if (r && t_ll < best_ll) best_ll = t_ll; /* r = 0 warms up */
            if (r && t_blas < best_blas) best_blas = t_blas;
        }
        const double gf = 2.0 * T * N * K / 1e9;
        sum_ll += best_ll, sum_blas += best_blas;
        printf("%s %zux%zux%zu  ll_gemm %6.1f GFLOP/s  openblas %6.1f GFLOP/s  ratio %.2fx\n", tb ? "x W^T" : "dy W ",
               T, N, K, gf / best_ll, gf / best_blas, best_blas / best_ll);
    }
    printf("all eight: ll_gemm %.2f ms, openblas %.2f ms, ratio %.2fx\n", sum_ll * 1e3, sum_blas * 1e3,
           sum_blas / sum_ll);
    free(A), free(B), free(C);
    return 0;
}
