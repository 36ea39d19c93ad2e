/* ll_gemm against a double-precision reference: every transpose combination,
 * ragged shapes (edges of the 12 x 32 and 6 x 16 tiles, K across the
 * 256-deep slices and the AVX2 kernel's 1024-deep ones), leading dimensions
 * wider than the matrices, alpha and beta, beta = 0 never reading C, thin shapes that go to OpenBLAS; for a
 * packed kernel (AVX-512, AVX2), results that do not depend on the thread
 * count, within 1e-5 of OpenBLAS sgemm on random ragged shapes, and caller
 * threads running products at once. ctest runs it as is and with
 * LSLLAMA_GEMM=avx2 and =blas (CMakeLists.txt). */
#include <omp.h>
#include <pthread.h>
#include <stdint.h>

#include <cblas.h>

#include "kernels/kernels.h"
#include "test_util.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}

/* op(X)[r][c] of a row-major X with leading dimension ld. */
static double at(const float *X, size_t ld, int t, size_t r, size_t c) { return t ? X[c * ld + r] : X[r * ld + c]; }

static void check_case(int ta, int tb, size_t M, size_t N, size_t K, float alpha, float beta, size_t pad) {
    const size_t arows = ta ? K : M, acols = ta ? M : K, brows = tb ? N : K, bcols = tb ? K : N;
    const size_t lda = acols + pad, ldb = bcols + pad, ldc = N + pad;
    float *A = malloc(sizeof(float) * arows * lda), *B = malloc(sizeof(float) * brows * ldb);
    float *C = malloc(sizeof(float) * M * ldc), *C0 = malloc(sizeof(float) * M * ldc);
    for (size_t i = 0; i < arows * lda; i++) A[i] = frand();
    for (size_t i = 0; i < brows * ldb; i++) B[i] = frand();
    for (size_t i = 0; i < M * ldc; i++) C0[i] = beta == 0.0f ? NAN : frand(); /* beta 0 must not read C */
    memcpy(C, C0, sizeof(float) * M * ldc);
    ll_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    double worst = 0.0;
    int padding_touched = 0;
    for (size_t i = 0; i < M; i++) {
        for (size_t j = 0; j < N; j++) {
            double ref = 0.0, mag = 0.0;
            for (size_t k = 0; k < K; k++) {
                const double p = at(A, lda, ta, i, k) * at(B, ldb, tb, k, j);
                ref += p, mag += fabs(p);
            }
            ref = alpha * ref + (beta != 0.0f ? beta * (double)C0[i * ldc + j] : 0.0);
            mag = fabs(alpha) * mag + fabs(beta) * (beta != 0.0f ? fabs(C0[i * ldc + j]) : 0.0) + 1e-30;
            const double err = fabs(C[i * ldc + j] - ref) / mag;
            if (!(err <= worst)) worst = err; /* NaN counts as worst */
        }
        for (size_t j = N; j < ldc; j++)
            if (memcmp(&C[i * ldc + j], &C0[i * ldc + j], sizeof(float))) padding_touched = 1;
    }
    CHECK_MSG(worst < 1e-5, "ta=%d tb=%d M=%zu N=%zu K=%zu alpha=%g beta=%g pad=%zu: error %g", ta, tb, M, N, K,
              alpha, beta, pad, worst);
    CHECK_MSG(!padding_touched, "ta=%d tb=%d M=%zu N=%zu K=%zu: wrote outside C's columns", ta, tb, M, N, K);
    free(A), free(B), free(C), free(C0);
}

/* The same product with 1 and with 2 threads: bitwise equal. */
static void check_thread_independence(int ta, int tb, size_t M, size_t N, size_t K) {
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
    for (size_t i = 0; i < M * K; i++) A[i] = frand();
    for (size_t i = 0; i < K * N; i++) B[i] = frand();
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    ll_gemm(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C1, N);
    omp_set_num_threads(2);
    ll_gemm(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C2, N);
    omp_set_num_threads(saved);
    CHECK_MSG(!memcmp(C1, C2, sizeof(float) * M * N), "ta=%d tb=%d %zux%zux%zu differs between 1 and 2 threads", ta,
              tb, M, N, K);
    free(A), free(B), free(C1), free(C2);
}

/* Two caller threads, each running its own products at once (as two models
 * in one server would): each must get its own packing buffers. */
typedef struct {
    const float *A, *B, *expect;
    size_t M, N, K;
    int mismatches;
} concurrent_job;

static void *concurrent_worker(void *arg) {
    concurrent_job *j = arg;
    float *C = malloc(sizeof(float) * j->M * j->N);
    for (int rep = 0; rep < 200; rep++) {
        ll_gemm(0, 1, j->M, j->N, j->K, 1.0f, j->A, j->K, j->B, j->K, 0.0f, C, j->N);
        if (memcmp(C, j->expect, sizeof(float) * j->M * j->N)) j->mismatches++;
    }
    free(C);
    return NULL;
}

static void check_concurrent_callers(void) {
    concurrent_job jobs[2] = {{.M = 200, .N = 300, .K = 280}, {.M = 150, .N = 500, .K = 330}};
    for (int i = 0; i < 2; i++) {
        concurrent_job *j = &jobs[i];
        float *A = malloc(sizeof(float) * j->M * j->K), *B = malloc(sizeof(float) * j->N * j->K),
              *E = malloc(sizeof(float) * j->M * j->N);
        for (size_t x = 0; x < j->M * j->K; x++) A[x] = frand();
        for (size_t x = 0; x < j->N * j->K; x++) B[x] = frand();
        ll_gemm(0, 1, j->M, j->N, j->K, 1.0f, A, j->K, B, j->K, 0.0f, E, j->N);
        j->A = A, j->B = B, j->expect = E;
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++) REQUIRE(pthread_create(&th[i], NULL, concurrent_worker, &jobs[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        CHECK_MSG(jobs[i].mismatches == 0, "caller thread %d: %d of 200 products differ", i, jobs[i].mismatches);
        free((void *)jobs[i].A), free((void *)jobs[i].B), free((void *)jobs[i].expect);
    }
}

/* The packed kernel against OpenBLAS sgemm on the same operands: within
 * 1e-5 of the larger magnitude sum, elementwise (the two sum in different
 * orders). */
static void check_against_openblas(int ta, int tb, size_t M, size_t N, size_t K) {
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
    for (size_t i = 0; i < M * K; i++) A[i] = frand();
    for (size_t i = 0; i < K * N; i++) B[i] = frand();
    const size_t lda = ta ? M : K, ldb = tb ? K : N;
    ll_gemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C1, N);
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N,
                (blasint)K, 1.0f, A, (blasint)lda, B, (blasint)ldb, 0.0f, C2, (blasint)N);
    double worst = 0.0;
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double mag = 0.0;
            for (size_t k = 0; k < K; k++) mag += fabs(at(A, lda, ta, i, k) * at(B, ldb, tb, k, j));
            const double e = fabs((double)C1[i * N + j] - C2[i * N + j]) / (mag + 1e-30);
            if (!(e <= worst)) worst = e;
        }
    CHECK_MSG(worst < 1e-5, "ta=%d tb=%d %zux%zux%zu: %s and OpenBLAS differ by %g", ta, tb, M, N, K,
              ll_gemm_backend(), worst);
    free(A), free(B), free(C1), free(C2);
}

int main(void) {
    const size_t shapes[][3] = {
        {1, 1, 1},     {12, 32, 1},   {13, 33, 7},    {24, 64, 256}, {25, 65, 257}, {100, 70, 300},
        {7, 40, 20},   {40, 7, 20},   {5, 100, 50},   {96, 16, 600}, {97, 2049, 3}, {200, 31, 513},
        {12, 576, 64}, {64, 12, 576}, {130, 192, 40}, {0, 5, 5},     {5, 0, 5},     {13, 40, 1100},
        {31, 17, 2100},
    };
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
                const size_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                check_case(ta, tb, M, N, K, 1.0f, 0.0f, 0);
                check_case(ta, tb, M, N, K, 0.5f, 1.0f, 3);
                check_case(ta, tb, M, N, K, -2.0f, 0.25f, 17);
            }
    /* K = 0: C = beta C */
    check_case(0, 1, 30, 40, 0, 1.0f, 0.5f, 0);
    /* OpenBLAS (a CPU without AVX2, or LSLLAMA_GEMM=blas) does not promise this */
    const int packed = strcmp(ll_gemm_backend(), "openblas") != 0;
    printf("backend %s (LSLLAMA_GEMM=%s)\n", ll_gemm_backend(), getenv("LSLLAMA_GEMM") ? getenv("LSLLAMA_GEMM") : "");
    const char *env = getenv("LSLLAMA_GEMM");
    if (env && !strcmp(env, "blas")) CHECK_MSG(!strcmp(ll_gemm_backend(), "openblas"), "LSLLAMA_GEMM=blas ran %s",
                                               ll_gemm_backend());
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (env && !strcmp(env, "avx2") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        CHECK_MSG(!strcmp(ll_gemm_backend(), "avx2"), "LSLLAMA_GEMM=avx2 on a CPU with AVX2: %s", ll_gemm_backend());
#endif
    for (int ta = 0; ta < 2 && packed; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_thread_independence(ta, tb, 301, 577, 300);
            check_thread_independence(ta, tb, 40, 1000, 129);
            check_thread_independence(ta, tb, 130, 70, 1100);
        }
    for (int ta = 0; ta < 2 && packed; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_against_openblas(ta, tb, 301, 577, 300);
            check_against_openblas(ta, tb, 97, 2049, 513);
            check_against_openblas(ta, tb, 130, 70, 1100);
        }
    if (packed) check_concurrent_callers();
    return test_summary("test_gemm");
}
