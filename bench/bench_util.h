/* Shared by the benchmarks: a monotonic clock, the CPU's name and thread
 * count, and the GEMM reference figures (lsllama's ll_gemm and OpenBLAS sgemm
 * on a linear layer's shape). */
#ifndef LL_BENCH_UTIL_H
#define LL_BENCH_UTIL_H

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/kernels.h"

static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The CPU's model name from /proc/cpuinfo ("unknown CPU" where there is none). */
static inline void bench_cpu_name(char *out, size_t cap) {
    snprintf(out, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon || strncmp(line, "model name", 10)) continue;
        colon++;
        while (*colon == ' ' || *colon == '\t') colon++;
        colon[strcspn(colon, "\n")] = 0;
        snprintf(out, cap, "%s", colon);
        break;
    }
    fclose(f);
}

/* The threads the OpenMP kernels run on. */
static inline int bench_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* Best-of-reps GFLOP/s of C[M,N] = A[M,K] B[N,K]^T (a linear layer's shape)
 * through ll_gemm (use_ll) or OpenBLAS sgemm; one warm-up run first. */
static inline double bench_gemm_gflops(int use_ll, int M, int N, int K, int reps) {
    float *A = malloc((size_t)M * K * 4), *B = malloc((size_t)N * K * 4), *C = malloc((size_t)M * N * 4);
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)((i * 7) % 13) * 0.01f;
    for (size_t i = 0; i < (size_t)N * K; i++) B[i] = (float)((i * 5) % 11) * 0.01f;
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        const double t0 = bench_now();
        if (use_ll)
            ll_gemm(0, 1, (size_t)M, (size_t)N, (size_t)K, 1.0f, A, (size_t)K, B, (size_t)K, 0.0f, C, (size_t)N);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
        const double dt = bench_now() - t0;
        if (r > 0 && dt < best) best = dt;
    }
    free(A), free(B), free(C);
    return 2.0 * M * N * K / best / 1e9;
}

#endif
