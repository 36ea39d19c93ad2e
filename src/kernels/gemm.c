/* ll_gemm: the one entry point for big matrix products.
 *
 * On CPUs with AVX-512 the products run through the packed, register-tiled
 * kernel below; elsewhere, and for shapes too thin to fill its tiles, through
 * OpenBLAS sgemm. Why our own: Debian's OpenBLAS 0.3.21 does not know current
 * AMD cores, and environments that pin it (OPENBLAS_CORETYPE=Haswell, as ours
 * does, since its AVX-512 kernels misbehave on some of them) get its AVX2
 * kernels: half the FMA width. Measured on this project's 2-core Zen 5 machine:
 * OpenBLAS (Haswell) 250 GFLOP/s, this kernel about 1.8x that (bench_gemm).
 *
 * Scheme (Goto/BLIS): C is cut into MC x NC blocks; K into KC slices. For each
 * slice the KC x NC block of op(B) is packed into NR-wide panels (k-major) and
 * each MC x KC block of op(A) into MR-tall panels (k-major), so the micro-kernel
 * streams both contiguously and keeps an MR x NR tile of C in 24 registers.
 * Packing absorbs the transposes, zero-pads ragged edges, and the B panel stays
 * in L1 while the A panels stream from L2.
 *
 * Threads split C into disjoint row (or column) ranges; every element of C is
 * summed in the same order whatever the split, so results do not depend on the
 * thread count. Packing buffers are allocated once per OS thread and reused. */
#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define LL_HAVE_AVX512_KERNEL 1
#include <immintrin.h>
#endif

/* ll_gemm's contract (C[M,N] = alpha op(A) op(B) + beta C, row-major) by OpenBLAS. */
static void gemm_blas(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                      const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)M,
                (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

#ifdef LL_HAVE_AVX512_KERNEL

enum { MR = 12, NR = 32, KC = 256, MC = 96, NC = 2048 };

#define AVX512 __attribute__((target("avx512f")))

typedef struct {
    float *a; /* MC x KC */
    float *b; /* KC x NC */
} pack_buffers;

/* Each OS thread's own packing buffers, allocated on its first product and
 * kept (no allocation inside a training step after the first), freed when the
 * thread exits; threads of different callers (each with its own OpenMP team)
 * never share one. */
static pthread_key_t pack_key;
static int pack_key_ok;
static pthread_once_t pack_key_once = PTHREAD_ONCE_INIT;

static void free_pack_buffers(void *p) {
    pack_buffers *b = p;
    free(b->a), free(b->b), free(b);
}

static void make_pack_key(void) { pack_key_ok = pthread_key_create(&pack_key, free_pack_buffers) == 0; }

/* The calling thread's buffers (B's only when want_b), NULL when out of memory. */
static pack_buffers *thread_buffers(int want_b) {
    pthread_once(&pack_key_once, make_pack_key);
    if (!pack_key_ok) return NULL;
    pack_buffers *p = pthread_getspecific(pack_key);
    if (!p) {
        if (!(p = calloc(1, sizeof *p))) return NULL;
        if (pthread_setspecific(pack_key, p)) {
            free(p);
            return NULL;
        }
    }
    if (!p->a && !(p->a = aligned_alloc(64, sizeof(float) * MC * KC))) return NULL;
    if (want_b && !p->b && !(p->b = aligned_alloc(64, sizeof(float) * KC * NC))) return NULL;
    return p;
}

/* In-register transpose of a 16 x 16 block: r[i][j] -> r[j][i]. Pairs,
 * then quads within 128-bit lanes, then the lanes themselves. */
AVX512 static inline void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; g++) { /* u[4g + c]: rows 4g..4g+3 of column c (+4 per lane) */
        u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        const __m512 v = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), w = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        const __m512 v2 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD),
                     w2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
        r[c] = _mm512_shuffle_f32x4(v, w, 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(v, w, 0xDD);
        r[4 + c] = _mm512_shuffle_f32x4(v2, w2, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(v2, w2, 0xDD);
    }
}

AVX512 static inline __mmask16 low_mask(size_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

/* Loads rows (each at src + l * ld, n of them, the rest zero) of 16 contiguous
 * columns (the first kk) and transposes them: r[k] holds column k. */
AVX512 static inline void load_transposed(__m512 r[16], const float *src, size_t ld, size_t n, size_t kk) {
    const __mmask16 m = low_mask(kk);
    for (size_t l = 0; l < 16; l++) r[l] = l < n ? _mm512_maskz_loadu_ps(m, src + l * ld) : _mm512_setzero_ps();
    transpose16(r);
}

/* op(A) rows i0.., columns p0..: mc x kc into MR-tall panels, Ap[panel][k][i],
 * zero rows past mc. */
AVX512 static void pack_a(int ta, const float *A, size_t lda, size_t i0, size_t p0, size_t mc, size_t kc,
                          float *Ap) {
    for (size_t ir = 0; ir < mc; ir += MR) {
        const size_t mr = mc - ir < MR ? mc - ir : MR;
        float *dst = Ap + ir * kc;
        if (!ta) {
            __m512 r[16];
            for (size_t k0 = 0; k0 < kc; k0 += 16) {
                const size_t kk = kc - k0 < 16 ? kc - k0 : 16;
                load_transposed(r, A + (i0 + ir) * lda + p0 + k0, lda, mr, kk);
                for (size_t l = 0; l < kk; l++) _mm512_mask_storeu_ps(dst + (k0 + l) * MR, low_mask(MR), r[l]);
            }
        } else {
            for (size_t k = 0; k < kc; k++) {
                memcpy(dst + k * MR, A + (p0 + k) * lda + i0 + ir, mr * sizeof(float));
                for (size_t i = mr; i < MR; i++) dst[k * MR + i] = 0.0f;
            }
        }
    }
}

/* One NR-wide panel of op(B): rows (k) p0..p0+kc, columns j0..j0+nr (nr <= NR),
 * as Bp[k][j], zero columns past nr. */
AVX512 static void pack_b_panel(int tb, const float *B, size_t ldb, size_t p0, size_t j0, size_t kc, size_t nr,
                                float *dst) {
    if (!tb) {
        const __mmask16 m0 = low_mask(nr), m1 = nr <= 16 ? 0 : low_mask(nr - 16);
        for (size_t k = 0; k < kc; k++) {
            const float *src = B + (p0 + k) * ldb + j0;
            _mm512_store_ps(dst + k * NR, _mm512_maskz_loadu_ps(m0, src));
            _mm512_store_ps(dst + k * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
        }
    } else {
        __m512 r[16];
        for (size_t h = 0; h < NR; h += 16) {
            const size_t rows = nr > h ? (nr - h < 16 ? nr - h : 16) : 0;
            for (size_t k0 = 0; k0 < kc; k0 += 16) {
                const size_t kk = kc - k0 < 16 ? kc - k0 : 16;
                load_transposed(r, B + (j0 + h) * ldb + p0 + k0, ldb, rows, kk);
                for (size_t l = 0; l < kk; l++) _mm512_store_ps(dst + (k0 + l) * NR + h, r[l]);
            }
        }
    }
}

/* C[mr, nr] = alpha * Ap Bp + beta * C for one MR x NR tile (beta 0: C is not read). */
AVX512 static void micro_kernel(size_t kc, const float *restrict Ap, const float *restrict Bp, float *C, size_t ldc,
                                float alpha, float beta, size_t mr, size_t nr) {
    __m512 c[MR][2];
    for (int i = 0; i < MR; i++) c[i][0] = c[i][1] = _mm512_setzero_ps();
    for (size_t k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_load_ps(Bp + k * NR), b1 = _mm512_load_ps(Bp + k * NR + 16);
        for (int i = 0; i < MR; i++) {
            const __m512 a = _mm512_set1_ps(Ap[k * MR + i]);
            c[i][0] = _mm512_fmadd_ps(a, b0, c[i][0]);
            c[i][1] = _mm512_fmadd_ps(a, b1, c[i][1]);
        }
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    if (mr == MR && nr == NR) {
        for (int i = 0; i < MR; i++) {
            float *r = C + i * ldc;
            __m512 r0 = _mm512_mul_ps(va, c[i][0]), r1 = _mm512_mul_ps(va, c[i][1]);
            if (beta != 0.0f) {
                r0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(r), r0);
                r1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(r + 16), r1);
            }
            _mm512_storeu_ps(r, r0);
            _mm512_storeu_ps(r + 16, r1);
        }
        return;
    }
    const __mmask16 m0 = low_mask(nr), m1 = nr <= 16 ? 0 : low_mask(nr - 16);
    for (int i = 0; i < MR; i++) {
        if ((size_t)i >= mr) break;
        float *r = C + i * ldc;
        __m512 r0 = _mm512_mul_ps(va, c[i][0]), r1 = _mm512_mul_ps(va, c[i][1]);
        if (beta != 0.0f) {
            r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, r), r0);
            r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, r + 16), r1);
        }
        _mm512_mask_storeu_ps(r, m0, r0);
        _mm512_mask_storeu_ps(r + 16, m1, r1);
    }
}

/* Rows [m0, m1) of C against the packed kc x nc block Bp (columns jc..), K slice pc.. */
AVX512 static void gemm_rows(int ta, size_t m0, size_t m1, size_t jc, size_t nc, size_t pc, size_t kc, float alpha,
                             const float *A, size_t lda, const float *Bp, float beta_k, float *C, size_t ldc,
                             float *Ap) {
    for (size_t ic = m0; ic < m1; ic += MC) {
        const size_t mc = m1 - ic < MC ? m1 - ic : MC;
        pack_a(ta, A, lda, ic, pc, mc, kc, Ap);
        for (size_t jr = 0; jr < nc; jr += NR) {
            const size_t nr = nc - jr < NR ? nc - jr : NR;
            for (size_t ir = 0; ir < mc; ir += MR) {
                const size_t mr = mc - ir < MR ? mc - ir : MR;
                micro_kernel(kc, Ap + ir * kc, Bp + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc, alpha, beta_k, mr,
                             nr);
            }
        }
    }
}

/* The whole product by the calling thread alone (buffers buf). */
AVX512 static void gemm_packed(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A,
                               size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc,
                               pack_buffers *buf) {
    for (size_t jc = 0; jc < N; jc += NC) {
        const size_t nc = N - jc < NC ? N - jc : NC;
        for (size_t pc = 0; pc < K; pc += KC) {
            const size_t kc = K - pc < KC ? K - pc : KC;
            for (size_t jr = 0; jr < nc; jr += NR)
                pack_b_panel(tb, B, ldb, pc, jc + jr, kc, nc - jr < NR ? nc - jr : NR, buf->b + jr * kc);
            gemm_rows(ta, 0, M, jc, nc, pc, kc, alpha, A, lda, buf->b, pc == 0 ? beta : 1.0f, C, ldc, buf->a);
        }
    }
}

/* The product by a team of threads (called by each inside a parallel region):
 * they pack each B block together into Bp (the calling thread's buffer), then
 * each runs its own rows of C (whole MR units) against it, packing its own A
 * into Ap. */
AVX512 static void gemm_team(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                             const float *B, size_t ldb, float beta, float *C, size_t ldc, float *Bp, float *Ap) {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const size_t units = (M + MR - 1) / MR;
    const size_t m0 = units * (size_t)t / (size_t)nt * MR, m1e = units * (size_t)(t + 1) / (size_t)nt * MR;
    const size_t m1 = m1e < M ? m1e : M;
    for (size_t jc = 0; jc < N; jc += NC) {
        const size_t nc = N - jc < NC ? N - jc : NC;
        for (size_t pc = 0; pc < K; pc += KC) {
            const size_t kc = K - pc < KC ? K - pc : KC;
#pragma omp for schedule(static)
            for (size_t jr = 0; jr < nc; jr += NR)
                pack_b_panel(tb, B, ldb, pc, jc + jr, kc, nc - jr < NR ? nc - jr : NR, Bp + jr * kc);
            /* (the loop's implicit barrier: the block is complete) */
            if (m0 < m1)
                gemm_rows(ta, m0, m1, jc, nc, pc, kc, alpha, A, lda, Bp, pc == 0 ? beta : 1.0f, C, ldc, Ap);
#pragma omp barrier
        }
    }
}

/* 1: use the packed kernel; 0: OpenBLAS. LSLLAMA_GEMM=blas forces OpenBLAS
 * (for side-by-side measurements). */
static int packed_kernel_enabled(void) {
    static int enabled = -1; /* read and set atomically: the first call may come from several threads */
    int e = __atomic_load_n(&enabled, __ATOMIC_RELAXED);
    if (e < 0) {
        const char *env = getenv("LSLLAMA_GEMM");
        __builtin_cpu_init();
        e = __builtin_cpu_supports("avx512f") && !(env && !strcmp(env, "blas"));
        __atomic_store_n(&enabled, e, __ATOMIC_RELAXED);
    }
    return e;
}

/* Columns [lo, hi) of C (thread t of nt, whole NR units) by one thread. */
static void gemm_columns(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                         const float *B, size_t ldb, float beta, float *C, size_t ldc, int t, int nt,
                         pack_buffers *buf) {
    const size_t units = (N + NR - 1) / NR;
    const size_t lo = units * (size_t)t / (size_t)nt * NR, hi_e = units * (size_t)(t + 1) / (size_t)nt * NR;
    const size_t hi = hi_e < N ? hi_e : N;
    if (lo < hi)
        gemm_packed(ta, tb, M, hi - lo, K, alpha, A, lda, tb ? B + lo * ldb : B + lo, ldb, beta, C + lo, ldc, buf);
}

/* 1 when the packed kernel ran the product. */
static int gemm_avx512(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                       const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    /* Thin products (LoRA's rank-r factors) fill too little of a 12 x 32 tile. */
    if (M < MR / 2 || N < NR / 2 || !packed_kernel_enabled()) return 0;
    pack_buffers *mine = thread_buffers(1);
    if (!mine) return 0;
    const double flops = 2.0 * (double)M * (double)N * (double)K;
    if (omp_in_parallel() || flops < 4e6 || omp_get_max_threads() == 1) {
        gemm_packed(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, mine);
        return 1;
    }
    /* Rows when C has at least as many row tiles as column tiles (a step's
     * products: T tokens by a layer's width), else columns (LoRA's r x in).
     * Every thread first gets its buffers; if one cannot, none starts. */
    const int by_rows = (M + MR - 1) / MR >= (N + NR - 1) / NR;
    int all_ok = 1;
#pragma omp parallel
    {
        pack_buffers *buf = thread_buffers(!by_rows);
        if (!buf) {
#pragma omp atomic write
            all_ok = 0;
        }
#pragma omp barrier
        int go;
#pragma omp atomic read
        go = all_ok;
        if (go && by_rows)
            gemm_team(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, mine->b, buf->a);
        else if (go)
            gemm_columns(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, omp_get_thread_num(),
                         omp_get_num_threads(), buf);
    }
    return all_ok;
}

#endif /* LL_HAVE_AVX512_KERNEL */

const char *ll_gemm_backend(void) {
#ifdef LL_HAVE_AVX512_KERNEL
    if (packed_kernel_enabled()) return "avx512";
#endif
    return "openblas";
}

void ll_gemm_serial(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                    const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (M == 0 || N == 0) return;
#ifdef LL_HAVE_AVX512_KERNEL
    pack_buffers *buf = K > 0 && packed_kernel_enabled() ? thread_buffers(1) : NULL;
    if (buf) {
        gemm_packed(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, buf);
        return;
    }
#endif
    ll_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void ll_gemm(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
             const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) { /* C = beta C; BLAS would reject a leading dimension of 0 */
        for (size_t i = 0; i < M; i++)
            for (size_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return;
    }
#ifdef LL_HAVE_AVX512_KERNEL
    if (gemm_avx512(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
#endif
    gemm_blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
