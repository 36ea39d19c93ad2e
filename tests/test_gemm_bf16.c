/* bf16 products (ll_gemm_weights on an ll_matrix with compute = BF16).
 *
 * The AVX512-BF16 kernel (vdpbf16ps) is compared bit for bit with a scalar
 * reference that follows its arithmetic exactly:
 *  - both operands rounded to bf16 to nearest even (ll_fp32_to_bf16, the
 *    rounding of vcvtne2ps2bf16 on finite values);
 *  - per C element, K in slices of 256 (gemm.c's KC), each slice summed
 *    from 0 in f32 two k at a time as vdpbf16ps defines it (Intel SDM): for
 *    the pair (2p, 2p + 1) of the slice, acc += a[2p+1] b[2p+1], then
 *    acc += a[2p] b[2p], each bf16 product exact in f32, each sum rounded;
 *  - each slice's sum s finishes as the f32 kernel's epilogue does:
 *    r = alpha s, then C = r (first slice, beta 0), fma(beta, C, r) (first
 *    slice) or fma(1, C, r) (later slices).
 * The AMX kernel (tdpbf16ps) rounds inside each instruction in its own way
 * (no sequential f32 order reproduces it): it is compared with the exact
 * product of the bf16-rounded operands, within 1e-5 of the terms'
 * magnitudes (f32 accumulation; operands left unrounded would be off by
 * about 2e-3). The default run tests the kernel the CPU picks (AMX where it
 * has it); ctest runs the binary again with LSLLAMA_GEMM_BF16=avx512_bf16.
 *
 * For every weight type (the weight dequantized, then rounded to bf16), both
 * orientations (tw = 1: x W^T, tw = 0: dy W), op(A) plain and transposed,
 * alpha/beta with and without reading C (C holds NaN when beta is 0), M
 * ragged against the 12- and 32-row tiles, N ragged against the 32-column
 * tile, K odd (a pair with one member), ragged against AMX's 32-deep steps
 * and across the 256-deep slices. Also: within 1e-2 of the double product of
 * the unrounded operands (bf16's precision), the same bits with 1 and 2
 * threads, a BF16-stored matrix giving the bits of the F32 matrix holding
 * its values.
 *
 * On a CPU without AVX512-BF16 there is no kernel to test: the test checks
 * that ll_gemm_bf16_supported() says so (as /proc/cpuinfo does) and stops;
 * test_compute_cli checks that --compute bf16 is refused there. */
#include <omp.h>
#include <stdio.h>

#include "io/dtype.h"
#include "kernels/kernels.h"
#include "test_util.h"
#include "weight_types_util.h"

enum { KC_REF = 256 };

static float bf(float x) { return ll_bf16_to_fp32(ll_fp32_to_bf16(x)); }

/* The reference C[M,N] (as the kernel computes it) for op(A) = A0 (M x K,
 * row-major) and op(W) from the f32 values W32 (rows x wcols). */
static void reference(int tw, size_t M, size_t N, size_t K, float alpha, const float *A0, const float *W32,
                      size_t wcols, float beta, float *C) {
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            float c = C[i * N + j];
            for (size_t pc = 0; pc < K; pc += KC_REF) {
                const size_t kc = K - pc < KC_REF ? K - pc : KC_REF;
                float acc = 0.0f;
                for (size_t k = pc; k < pc + kc; k += 2) {
                    for (int odd = 1; odd >= 0; odd--) {
                        const size_t kk = k + (size_t)odd;
                        if (kk >= pc + kc) continue; /* the padded member: + 0 * 0 leaves acc */
                        const float a = bf(A0[i * K + kk]), w = bf(tw ? W32[j * wcols + kk] : W32[kk * wcols + j]);
                        const float prod = a * w; /* exact: two 8-bit significands */
                        acc = acc + prod;
                    }
                }
                const float r = alpha * acc;
                if (pc == 0) c = beta != 0.0f ? __builtin_fmaf(beta, c, r) : r;
                else c = __builtin_fmaf(1.0f, c, r);
            }
            C[i * N + j] = c;
        }
}

static int has_flag(const char *flag) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return -1;
    char line[8192];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5)) continue;
        for (char *t = strtok(line, " \t\n:"); t; t = strtok(NULL, " \t\n:"))
            if (!strcmp(t, flag)) found = 1;
        break;
    }
    fclose(f);
    return found;
}

static int exact; /* the kernel is vdpbf16ps: bit-exact reference */

static void check_matrix(const wtype *w, int tw, size_t wrows, size_t wcols, const size_t *Ms, size_t n_ms) {
    uint8_t *storage;
    ll_matrix W = make_matrix(w, wrows, wcols, wcols / (size_t)ll_dtype_block_elems(w->dt), &storage);
    W.compute = LL_DTYPE_BF16;
    float *W32 = dequantized(&W);
    const size_t N = tw ? wrows : wcols, K = tw ? wcols : wrows;
    const char *tn = ll_dtype_name(w->dt);
    const struct {
        float alpha, beta;
    } ab[] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-2.0f, 0.25f}};
    int same = 0, compared = 0;
    double worst = 0.0, worst_rounded = 0.0;
    for (size_t mi = 0; mi < n_ms; mi++) {
        const size_t M = Ms[mi];
        float *A0 = malloc(M * K * sizeof(float)), *A1 = malloc(M * K * sizeof(float));
        float *C0 = malloc(M * N * sizeof(float)), *Ck = malloc(M * N * sizeof(float)),
              *Cr = malloc(M * N * sizeof(float));
        REQUIRE(A0 && A1 && C0 && Ck && Cr);
        for (size_t i = 0; i < M; i++)
            for (size_t k = 0; k < K; k++) A0[i * K + k] = A1[k * M + i] = uniform(-1.0f, 1.0f);
        for (size_t i = 0; i < M * N; i++) C0[i] = uniform(-1.0f, 1.0f);
        for (int ta = 0; ta < 2; ta++)
            for (size_t v = 0; v < sizeof ab / sizeof *ab; v++) {
                const float alpha = ab[v].alpha, beta = ab[v].beta;
                for (size_t i = 0; i < M * N; i++) Ck[i] = beta == 0.0f ? NAN : C0[i];
                memcpy(Cr, C0, M * N * sizeof(float));
                ll_gemm_weights(ta, tw, M, N, K, alpha, ta ? A1 : A0, ta ? M : K, &W, beta, Ck, N);
                reference(tw, M, N, K, alpha, A0, W32, wcols, beta, Cr);
                compared++;
                if (exact) {
                    size_t bad = M * N;
                    for (size_t i = 0; i < M * N && bad == M * N; i++)
                        if (memcmp(&Ck[i], &Cr[i], sizeof(float))) bad = i;
                    same += bad == M * N;
                    CHECK_MSG(bad == M * N, "%s tw=%d ta=%d M=%zu N=%zu K=%zu alpha=%g beta=%g: C[%zu][%zu] = %.9g, "
                              "the reference %.9g", tn, tw, ta, M, N, K, alpha, beta, bad / N, bad % N, Ck[bad],
                              Cr[bad]);
                }
                /* the kernel against the exact product of the bf16 operands
                 * (AMX: to f32 accumulation), and both against the product of
                 * the unrounded operands (to bf16's precision) */
                double err_rounded = 0.0;
                for (size_t i = 0; i < M; i++)
                    for (size_t j = 0; j < N; j++) {
                        double s = 0.0, mag = 0.0, sb = 0.0, magb = 0.0;
                        for (size_t k = 0; k < K; k++) {
                            const float a = A0[i * K + k], w = tw ? W32[j * wcols + k] : W32[k * wcols + j];
                            const double p = (double)a * w, pb = (double)bf(a) * bf(w);
                            s += p, mag += fabs(p), sb += pb, magb += fabs(pb);
                        }
                        const double c0 = beta != 0.0f ? C0[i * N + j] : 0.0;
                        const double e = fabs(Ck[i * N + j] - (alpha * s + beta * c0)) /
                                         (fabs(alpha) * mag + fabs(beta * c0) + 1e-30);
                        const double eb = fabs(Ck[i * N + j] - (alpha * sb + beta * c0)) /
                                          (fabs(alpha) * magb + fabs(beta * c0) + 1e-30);
                        if (!(e <= worst)) worst = e;
                        if (!(eb <= err_rounded)) err_rounded = eb;
                    }
                CHECK_MSG(err_rounded < 1e-5, "%s tw=%d ta=%d M=%zu N=%zu K=%zu alpha=%g beta=%g: relative error %.3g "
                          "against the exact product of the bf16-rounded operands", tn, tw, ta, M, N, K, alpha, beta,
                          err_rounded);
                if (!(err_rounded <= worst_rounded)) worst_rounded = err_rounded;
            }
        if (M >= 13) { /* 1 and 2 threads */
            float *C1 = malloc(M * N * sizeof(float)), *C2 = malloc(M * N * sizeof(float));
            REQUIRE(C1 && C2);
            omp_set_num_threads(1);
            ll_gemm_weights(0, tw, M, N, K, 1.0f, A0, K, &W, 0.0f, C1, N);
            omp_set_num_threads(2);
            ll_gemm_weights(0, tw, M, N, K, 1.0f, A0, K, &W, 0.0f, C2, N);
            CHECK_MSG(!memcmp(C1, C2, M * N * sizeof(float)), "%s tw=%d M=%zu: 1 and 2 threads differ", tn, tw, M);
            free(C1), free(C2);
        }
        free(A0), free(A1), free(C0), free(Ck), free(Cr);
    }
    CHECK_MSG(worst < 1e-2, "%s tw=%d: relative error %.3g against the double product", tn, tw, worst);
    if (exact) printf("%-5s tw=%d W %4zu x %4zu: %d/%d products equal the scalar reference; ", tn, tw, wrows, wcols, same,
                      compared);
    else printf("%-5s tw=%d W %4zu x %4zu: %d products; ", tn, tw, wrows, wcols, compared);
    printf("relative error %.2e against the bf16 operands' exact product, %.2e against the f32 operands'\n",
           worst_rounded, worst);
    free(W32), free(storage);
}

/* A matrix stored as BF16 and the F32 matrix of the same values: one result. */
static void check_bf16_stored_equals_f32(void) {
    const size_t rows = 70, cols = 300, M = 29;
    uint16_t *h = malloc(rows * cols * 2);
    float *f = malloc(rows * cols * 4), *A = malloc(M * cols * 4), *C1 = malloc(M * cols * 4), *C2 = malloc(M * cols * 4);
    REQUIRE(h && f && A && C1 && C2);
    for (size_t i = 0; i < rows * cols; i++) f[i] = ll_bf16_to_fp32(h[i] = ll_fp32_to_bf16(uniform(-1.0f, 1.0f)));
    for (size_t i = 0; i < M * cols; i++) A[i] = uniform(-1.0f, 1.0f);
    const ll_matrix Wh = {LL_DTYPE_BF16, h, rows, cols, cols, LL_DTYPE_BF16},
                    Wf = {LL_DTYPE_F32, f, rows, cols, cols, LL_DTYPE_BF16};
    for (int tw = 0; tw < 2; tw++) {
        const size_t N = tw ? rows : cols, K = tw ? cols : rows, m = tw ? M : 11;
        ll_gemm_weights(0, tw, m, N, K, 1.0f, A, K, &Wh, 0.0f, C1, N);
        ll_gemm_weights(0, tw, m, N, K, 1.0f, A, K, &Wf, 0.0f, C2, N);
        CHECK_MSG(!memcmp(C1, C2, m * N * sizeof(float)), "tw=%d: BF16-stored and F32 matrices differ", tw);
    }
    free(h), free(f), free(A), free(C1), free(C2);
}

int main(void) {
    const int flag = has_flag("avx512_bf16");
    printf("ll_gemm_bf16_supported() = %d, /proc/cpuinfo avx512_bf16: %d\n", ll_gemm_bf16_supported(), flag);
    if (flag >= 0) CHECK_MSG(ll_gemm_bf16_supported() == flag, "bf16 support %d, the CPU's flags say %d",
                             ll_gemm_bf16_supported(), flag);
    if (!ll_gemm_bf16_supported()) {
        printf("no AVX512-BF16 on this CPU: no bf16 kernel to test\n");
        return test_summary("test_gemm_bf16");
    }
    const char *kernel = ll_gemm_bf16_backend(), *env = getenv("LSLLAMA_GEMM_BF16");
    printf("bf16 kernel: %s (LSLLAMA_GEMM_BF16=%s)\n", kernel, env ? env : "");
    if (env && !strcmp(env, "avx512_bf16")) CHECK_MSG(!strcmp(kernel, "avx512_bf16"), "asked for avx512_bf16, got %s",
                                                      kernel);
    exact = !strcmp(kernel, "avx512_bf16");
    rng_state = 20261130;
#if defined(__SANITIZE_ADDRESS__)
    const size_t Ms[] = {1, 3, 13, 33};
#else
    const size_t Ms[] = {1, 3, 13, 33, 100};
#endif
    const size_t n_ms = sizeof Ms / sizeof *Ms;
    for (size_t t = 0; t < N_WEIGHT_TYPES; t++) {
        const wtype *w = &weight_types[t];
        const size_t be = (size_t)ll_dtype_block_elems(w->dt);
        /* K: odd and across two slices for plain types; whole blocks (288:
         * across one slice boundary, 768 for K-quants) for block types */
        const size_t k_len = be == 1 ? 515 : be == 32 ? 288 : 768;
        check_matrix(w, 1, 77, k_len, Ms, n_ms);            /* x W^T: N = 77 rows */
        check_matrix(w, 0, be == 1 ? 301 : 263, be == 1 ? 97 : k_len, Ms, n_ms); /* dy W */
    }
    check_bf16_stored_equals_f32();
    return test_summary("test_gemm_bf16");
}
