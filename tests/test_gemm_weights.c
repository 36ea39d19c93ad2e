/* ll_gemm_weights on a weight kept in its stored type, for every weight type
 * (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K):
 *
 *  - bit-identical (memcmp) to ll_gemm_weights on an F32 ll_matrix holding
 *    the same values (ll_dequantize of every row): the promise that a base
 *    kept as stored computes what the same base converted to f32 at load
 *    computes;
 *  - within 1e-4 of a double-precision product, relative to the sum of the
 *    magnitudes of the terms (an independent check that the product is right,
 *    not only the same both ways);
 *  - the same bits with 1 and with 2 threads (both ways of splitting C: by
 *    columns for the wide matrices below, by rows for a tall A of 300 rows
 *    against a narrow op(W): 40 rows of W for tw = 1, 64 or 256 columns for
 *    tw = 0).
 *
 * Both orientations (tw = 1: x W^T, the forward; tw = 0: dy W, the input
 * gradient), op(A) plain and transposed, alpha 1 beta 0 (C holds NaN: it must
 * not be read) and alpha 0.5 beta 1 (C nonzero), M in {1, 3, 7, 13, 100}
 * (ragged against every kernel's MR: 12, 6, 4), N and K across the kernel's
 * blocking (KC = 256, NC = 2048): tw = 1 with W of 2100 rows (N crosses
 * NC) by 288 columns for 32-element blocks (K crosses KC, not a multiple of
 * it), 768 for K-quants, 289 for plain types; tw = 0 with W of 300 rows (K)
 * by 2304 columns (N crosses NC); and K across the AVX2 kernel's KC of 1024
 * for a tall A (1056 or 1280 columns for tw = 1, 1100 rows for tw = 0). The
 * tw = 1 matrices have a row stride one block wider than their rows, the extra block holding NaN scales, so a read
 * past a row's end would show. (The sanitizer build leaves out M = 100.)
 *
 * Valid random blocks: random bytes with every f16 scale/min field replaced
 * by a small finite value (fp16 of uniform(-0.05, 0.05)); Q6_K's d is its
 * last field.
 *
 * ll_gemm_weights_fused gives the bits of separate products (check_fused).
 *
 * The kernel is chosen once per process: ctest runs this binary three times,
 * as is and with LSLLAMA_GEMM=avx2 and =c (test_gemm_weights_avx2,
 * test_gemm_weights_c in CMakeLists.txt); each run checks that the kernel it
 * reports is the one asked for when the CPU has it. */
#include <omp.h>
#include <stddef.h>
#include <stdint.h>

#include "io/dtype.h"
#include "io/quants.h"
#include "kernels/kernels.h"
#include "test_util.h"
#include "weight_types_util.h"

static const char *names_ta[] = {"A", "A^T"};

/* Every check for one matrix W in orientation tw. */
static void check_matrix(const wtype *w, int tw, size_t wrows, size_t wcols, size_t ld_blocks, const size_t *Ms,
                         size_t n_ms) {
    uint8_t *storage;
    const ll_matrix W = make_matrix(w, wrows, wcols, ld_blocks, &storage);
    float *W32 = dequantized(&W);
    const ll_matrix F = {LL_DTYPE_F32, W32, wrows, wcols, wcols, LL_DTYPE_F32};
    const size_t N = tw ? wrows : wcols, K = tw ? wcols : wrows;
    const char *tn = ll_dtype_name(w->dt);
    const struct {
        float alpha, beta;
    } ab[] = {{1.0f, 0.0f}, {0.5f, 1.0f}};
    double worst = 0.0;
    int identical = 0, compared = 0;
    for (size_t mi = 0; mi < n_ms; mi++) {
        const size_t M = Ms[mi];
        /* op(A) is the same logical M x K matrix for ta 0 and 1 */
        float *A0 = malloc(M * K * sizeof(float)), *A1 = malloc(M * K * sizeof(float));
        float *C0 = malloc(M * N * sizeof(float)), *Ct = malloc(M * N * sizeof(float)),
              *Cf = malloc(M * N * sizeof(float));
        double *ref = malloc(M * N * sizeof(double)), *mag = malloc(M * N * sizeof(double));
        REQUIRE(A0 && A1 && C0 && Ct && Cf && ref && mag);
        for (size_t i = 0; i < M; i++)
            for (size_t k = 0; k < K; k++) A0[i * K + k] = A1[k * M + i] = uniform(-1.0f, 1.0f);
        for (size_t i = 0; i < M * N; i++) C0[i] = uniform(-1.0f, 1.0f);
        /* the double reference of op(A) op(W) on a sample of rows (all of a short A) */
        for (size_t i = 0; i < M; i++) {
            if (M > 13 && i % 7 && i != M - 1) continue;
            for (size_t j = 0; j < N; j++) {
                double s = 0.0, a = 0.0;
                for (size_t k = 0; k < K; k++) {
                    const double p = (double)A0[i * K + k] * (tw ? W32[j * wcols + k] : W32[k * wcols + j]);
                    s += p, a += fabs(p);
                }
                ref[i * N + j] = s, mag[i * N + j] = a;
            }
        }
        for (int ta = 0; ta < 2; ta++)
            for (size_t v = 0; v < sizeof ab / sizeof *ab; v++) {
                const float alpha = ab[v].alpha, beta = ab[v].beta;
                const float *A = ta ? A1 : A0;
                const size_t lda = ta ? M : K;
                for (size_t i = 0; i < M * N; i++) Ct[i] = Cf[i] = beta == 0.0f ? NAN : C0[i]; /* beta 0: not read */
                ll_gemm_weights(ta, tw, M, N, K, alpha, A, lda, &W, beta, Ct, N);
                ll_gemm_weights(ta, tw, M, N, K, alpha, A, lda, &F, beta, Cf, N);
                compared++;
                const int same = !memcmp(Ct, Cf, M * N * sizeof(float));
                identical += same;
                CHECK_MSG(same, "%s tw=%d op=%s M=%zu N=%zu K=%zu alpha=%g beta=%g: stored-type product differs from "
                          "the f32 one", tn, tw, names_ta[ta], M, N, K, alpha, beta);
                double err = 0.0;
                for (size_t i = 0; i < M; i++) {
                    if (M > 13 && i % 7 && i != M - 1) continue;
                    for (size_t j = 0; j < N; j++) {
                        const double want = alpha * ref[i * N + j] + (beta != 0.0f ? beta * (double)C0[i * N + j] : 0.0);
                        const double scale = fabs(alpha) * mag[i * N + j] +
                                             (beta != 0.0f ? fabs(beta * (double)C0[i * N + j]) : 0.0) + 1e-30;
                        const double e = fabs((double)Ct[i * N + j] - want) / scale;
                        if (!(e <= err)) err = e; /* NaN counts as the worst */
                    }
                }
                CHECK_MSG(err <= 1e-4, "%s tw=%d op=%s M=%zu N=%zu K=%zu alpha=%g beta=%g: relative error %.3g against "
                          "the double product", tn, tw, names_ta[ta], M, N, K, alpha, beta, err);
                if (!(err <= worst)) worst = err;
            }
        /* thread-count independence, on the products big enough to be split:
         * by columns when C has more column tiles than row tiles (the wide
         * matrices), else by rows (the tall case in main) */
        if (M >= 13) {
            float *C1 = malloc(M * N * sizeof(float)), *C2 = malloc(M * N * sizeof(float));
            REQUIRE(C1 && C2);
            memcpy(C1, C0, M * N * sizeof(float));
            memcpy(C2, C0, M * N * sizeof(float));
            omp_set_num_threads(1);
            ll_gemm_weights(0, tw, M, N, K, 0.5f, A0, K, &W, 1.0f, C1, N);
            omp_set_num_threads(2);
            ll_gemm_weights(0, tw, M, N, K, 0.5f, A0, K, &W, 1.0f, C2, N);
            CHECK_MSG(!memcmp(C1, C2, M * N * sizeof(float)), "%s tw=%d M=%zu N=%zu K=%zu: 1 and 2 threads differ", tn,
                      tw, M, N, K);
            free(C1), free(C2);
        }
        free(A0), free(A1), free(C0), free(Ct), free(Cf), free(ref), free(mag);
    }
    printf("%-5s tw=%d W %4zu x %4zu (stride %zu blocks): %d/%d products bit-identical to f32, worst relative error "
           "%.2e\n", tn, tw, wrows, wcols, ld_blocks, identical, compared, worst);
    free(W32);
    free(storage);
}

/* The kernel the process runs against what LSLLAMA_GEMM asked for. */
static void check_backend(void) {
    const char *got = ll_gemm_weights_backend(), *env = getenv("LSLLAMA_GEMM");
    printf("ll_gemm_weights backend: %s (LSLLAMA_GEMM=%s)\n", got, env ? env : "");
    int avx512 = 0, avx2 = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    avx512 = __builtin_cpu_supports("avx512f");
    avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    if (env && !strcmp(env, "c")) {
        CHECK_MSG(!strcmp(got, "c"), "LSLLAMA_GEMM=c: backend %s", got);
    } else if (env && !strcmp(env, "avx2")) {
        if (avx2) CHECK_MSG(!strcmp(got, "avx2"), "LSLLAMA_GEMM=avx2 on a CPU with AVX2 and FMA: backend %s", got);
        else printf("(no AVX2/FMA on this CPU: the avx2 kernel cannot be checked here)\n");
    } else if (!env || !*env) {
        const char *widest = avx512 ? "avx512" : avx2 ? "avx2" : "c";
        CHECK_MSG(!strcmp(got, widest), "no LSLLAMA_GEMM: backend %s, the CPU's widest is %s", got, widest);
    }
}

/* ll_gemm_weights_fused against one ll_gemm_weights call per weight, bit
 * for bit: three weights of type w read by one A (as q, k, v), with row
 * counts that are whole tiles of every kernel (64, 32, 96; the last may be
 * ragged: 77) and a set where one is not (40: the separate-calls fallback),
 * op(A) plain and transposed, beta 0 and 1, M from 1 to 300 (splits by rows
 * and by columns), compute f32 and (where the CPU has it) bf16. */
static void check_fused(const wtype *w, size_t K) {
    const size_t rows_sets[][3] = {{64, 32, 77}, {64, 40, 32}};
    const size_t Ms[] = {1, 13, 300};
    int compared = 0;
    for (int bf = 0; bf < 1 + ll_gemm_bf16_supported(); bf++)
        for (size_t rs = 0; rs < 2; rs++) {
            uint8_t *st[3];
            ll_matrix W[3];
            const ll_matrix *Wp[3];
            size_t Ntot = 0;
            for (int s = 0; s < 3; s++) {
                W[s] = make_matrix(w, rows_sets[rs][s], K, K / (size_t)ll_dtype_block_elems(w->dt), &st[s]);
                W[s].compute = bf ? LL_DTYPE_BF16 : LL_DTYPE_F32;
                Wp[s] = &W[s];
                Ntot += rows_sets[rs][s];
            }
            for (size_t mi = 0; mi < sizeof Ms / sizeof *Ms; mi++) {
                const size_t M = Ms[mi];
                float *A0 = malloc(M * K * sizeof(float)), *A1 = malloc(M * K * sizeof(float));
                float *Cf = malloc(M * Ntot * sizeof(float)), *Cs = malloc(M * Ntot * sizeof(float));
                REQUIRE(A0 && A1 && Cf && Cs);
                for (size_t i = 0; i < M; i++)
                    for (size_t k = 0; k < K; k++) A0[i * K + k] = A1[k * M + i] = uniform(-1.0f, 1.0f);
                for (int ta = 0; ta < 2; ta++)
                    for (int b1 = 0; b1 < 2; b1++) {
                        for (size_t i = 0; i < M * Ntot; i++) Cf[i] = Cs[i] = b1 ? uniform(-1.0f, 1.0f) : NAN;
                        float *Cfp[3], *Csp[3];
                        size_t ldc[3], off = 0;
                        for (int s = 0; s < 3; s++) { /* each output its own [M, rows] block */
                            Cfp[s] = Cf + off, Csp[s] = Cs + off, ldc[s] = rows_sets[rs][s];
                            off += M * rows_sets[rs][s];
                        }
                        const float *A = ta ? A1 : A0;
                        const size_t lda = ta ? M : K;
                        ll_gemm_weights_fused(ta, M, K, 0.5f, A, lda, Wp, 3, b1 ? 1.0f : 0.0f, Cfp, ldc);
                        for (int s = 0; s < 3; s++)
                            ll_gemm_weights(ta, 1, M, W[s].rows, K, 0.5f, A, lda, &W[s], b1 ? 1.0f : 0.0f, Csp[s],
                                            ldc[s]);
                        compared++;
                        CHECK_MSG(!memcmp(Cf, Cs, M * Ntot * sizeof(float)),
                                  "%s fused %zu/%zu/%zu M=%zu K=%zu ta=%d beta=%d %s: differs from separate products",
                                  ll_dtype_name(w->dt), rows_sets[rs][0], rows_sets[rs][1], rows_sets[rs][2], M, K,
                                  ta, b1, bf ? "bf16" : "f32");
                    }
                free(A0), free(A1), free(Cf), free(Cs);
            }
            for (int s = 0; s < 3; s++) free(st[s]);
        }
    printf("%-5s fused products: %d compared with separate ones\n", ll_dtype_name(w->dt), compared);
}

#if defined(__SANITIZE_ADDRESS__)
/* The sanitizer pass (an unoptimised build) keeps every edge case but the
 * 100-row A, which adds only whole tiles and takes most of the time there. */
static const size_t wide_ms[] = {1, 3, 7, 13};
#else
static const size_t wide_ms[] = {1, 3, 7, 13, 100};
#endif
static const size_t tall_ms[] = {300};

int main(void) {
    rng_state = 0x9E3779B97F4A7C15ull;
    check_backend();
    omp_set_num_threads(2);
    for (size_t t = 0; t < N_WEIGHT_TYPES; t++) {
        const wtype *w = &weight_types[t];
        const size_t be = (size_t)ll_dtype_block_elems(w->dt), nw = sizeof wide_ms / sizeof *wide_ms;
        /* tw = 1: N = 2100 rows cross NC; K = the row length crosses KC without being a multiple of it */
        const size_t k_cols = be == 1 ? 289 : be == 32 ? 288 : 512 + 256;
        check_matrix(w, 1, 2100, k_cols, k_cols / be + 1, wide_ms, nw);
        /* tw = 0: K = 300 rows cross KC; N = 2304 columns cross NC */
        check_matrix(w, 0, 300, 2304, 2304 / be, wide_ms, nw);
        /* a tall A against a narrow op(W) (more row tiles than column tiles:
         * the team splits C by rows and packs each block of W together) */
        check_matrix(w, 1, 40, k_cols, k_cols / be, tall_ms, 1);
        const size_t n_narrow = be == 256 ? 256 : 64; /* op(W)'s columns for tw = 0: whole blocks */
        check_matrix(w, 0, 300, n_narrow, n_narrow / be, tall_ms, 1);
        /* K across the AVX2 kernel's 1024-deep slices (the others' 256 too) */
        const size_t k_long = be == 256 ? 1280 : be == 32 ? 1056 : 1033;
        check_matrix(w, 1, 40, k_long, k_long / be, tall_ms, 1);
        check_matrix(w, 0, 1100, n_narrow, n_narrow / be, tall_ms, 1);
        check_fused(w, k_cols);
    }
    return test_summary("test_gemm_weights");
}
