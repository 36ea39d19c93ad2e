/* Shared by the benchmarks: a monotonic clock, the machine lines every
 * benchmark starts its output with (bench_print_machine: the CPU, the
 * instruction sets the kernels choose by, the threads, the kernels that run),
 * and the GEMM reference figures (lsllama's ll_gemm and OpenBLAS sgemm on a
 * linear layer's shape). */
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

/* The threads the OpenMP kernels run on. */
static inline int bench_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* 1 when /proc/cpuinfo's first "flags" line lists flag (a whole word). */
static inline int bench_cpuinfo_flag(const char *flag) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0;
    int found = 0;
    const size_t n = strlen(flag);
    while (getline(&line, &cap, f) > 0) {
        if (strncmp(line, "flags", 5)) continue;
        for (char *p = strchr(line, ':'); p && (p = strstr(p, flag)); p += n)
            if (p[-1] == ' ' && (p[n] == ' ' || p[n] == '\n' || p[n] == 0)) found = 1;
        break; /* every core lists the same flags */
    }
    free(line);
    fclose(f);
    return found;
}

/* The machine lines every benchmark starts with, so that a figure always
 * says where it was measured:
 *   cpu              MODEL NAME, N threads
 *   instructions     avx2 fma avx512f avx512_bf16 amx_bf16 (absent: ...)
 *   kernels          f32: ll_gemm K1, ll_gemm_weights K2; bf16 (--compute bf16): K3 [; forced by LSLLAMA_GEMM=...]
 * The instruction sets are those lsllama's kernels choose by (avx2+fma: the
 * AVX2 kernel, avx512f: the AVX-512 one, avx512_bf16 and amx_bf16: the bf16
 * kernels of --compute bf16). __builtin_cpu_supports answers for those the
 * compilers know (the test gemm.c's choice makes); amx_bf16 comes from
 * /proc/cpuinfo, as clang 14 does not know its name. The CPU's name is the
 * one log.jsonl records (ll_cpu_name). */
static inline void bench_print_machine(FILE *out) {
    fprintf(out, "cpu              %s, %d threads\n", ll_cpu_name(), bench_threads());
    struct {
        const char *name;
        int present;
    } isa[] = {
#if defined(__x86_64__) || defined(__i386__)
        {"avx2", __builtin_cpu_supports("avx2")},
        {"fma", __builtin_cpu_supports("fma")},
        {"avx512f", __builtin_cpu_supports("avx512f")},
        {"avx512_bf16", __builtin_cpu_supports("avx512bf16")},
#else
        {"avx2", 0}, {"fma", 0}, {"avx512f", 0}, {"avx512_bf16", 0},
#endif
        {"amx_bf16", bench_cpuinfo_flag("amx_bf16")},
    };
    const int n = (int)(sizeof isa / sizeof *isa);
    int n_absent = 0, any = 0;
    fprintf(out, "instructions    ");
    for (int i = 0; i < n; i++)
        if (isa[i].present) fprintf(out, " %s", isa[i].name), any = 1;
        else n_absent++;
    if (!any) fprintf(out, " none of them");
    if (n_absent) {
        fprintf(out, " (absent:");
        for (int i = 0; i < n; i++)
            if (!isa[i].present) fprintf(out, " %s", isa[i].name);
        fprintf(out, ")");
    }
    const char *env = getenv("LSLLAMA_GEMM");
    fprintf(out, "\nkernels          f32: ll_gemm %s, ll_gemm_weights %s; bf16 (--compute bf16): %s%s%s\n",
            ll_gemm_backend(), ll_gemm_weights_backend(), ll_gemm_bf16_backend(),
            env ? "; forced by LSLLAMA_GEMM=" : "", env ? env : "");
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
