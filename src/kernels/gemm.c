/* ll_gemm and ll_gemm_weights: the entry points for big matrix products.
 *
 * Two kinds of product go through here:
 *  - ll_gemm: both operands f32 (activations, LoRA factors, the head). On CPUs
 *    with AVX-512 or AVX2/FMA the packed kernel below runs it, thin shapes
 *    included (results independent of the thread count, which OpenBLAS's are
 *    not); OpenBLAS sgemm on other CPUs or with LSLLAMA_GEMM=blas.
 *  - ll_gemm_weights: B is a frozen weight matrix in its stored type (F32, F16,
 *    BF16 or a GGML block format). The packing of each KC x NC block of op(B)
 *    dequantizes into the f32 panel, so the conversion is paid once per block
 *    and shared by all M rows of A; no f32 copy of the weight ever exists.
 *    These products always run a packed kernel (AVX-512, else AVX2/FMA, else
 *    portable C), whatever the type, so a weight kept in its stored type gives
 *    the same bits as the same weight converted to f32 at load: the kernel sees
 *    the same f32 values in the same order.
 *
 * Why our own kernel: Debian's OpenBLAS 0.3.21 does not know current AMD cores,
 * and environments that pin it (OPENBLAS_CORETYPE=Haswell, as ours does, since
 * its AVX-512 kernels misbehave on some of them) get its AVX2 kernels: half the
 * FMA width. Measured on this project's 2-core Zen 5 machine: OpenBLAS
 * (Haswell) 250 GFLOP/s, the AVX-512 kernel about 1.8x that (bench_gemm).
 *
 * Scheme (Goto/BLIS): C is cut into MC x NC blocks; K into KC slices. For each
 * slice the KC x NC block of op(B) is packed into NR-wide panels (k-major) and
 * each MC x KC block of op(A) into MR-tall panels (k-major), so the micro-kernel
 * streams both contiguously and keeps an MR x NR tile of C in registers.
 * Packing absorbs the transposes, zero-pads ragged edges, and the B panel stays
 * in L1 while the A panels stream from L2. Each instruction set is one
 * gemm_kernel (tile sizes, slice depth, packers, micro-kernel); MC and NC are shared.
 *
 * Threads split C into disjoint row (or column) ranges at whole tiles; every
 * element of C is summed in the same order whatever the split, so results do
 * not depend on the thread count. Packing buffers are allocated once per OS
 * thread and reused. */
#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define LL_HAVE_X86_KERNELS 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* KC_BASE: the K slice depth of every kernel but AVX2's (gemm_kernel.kc);
 * KC_MAX: the deepest of any kernel, which the packing buffers are sized for. */
enum { KC_BASE = 256, KC_MAX = 1024, MC = 96, NC = 2048, MR_MAX = 12, NR_MAX = 32, GROUP_MAX = 256 };

/* ll_gemm's contract (C[M,N] = alpha op(A) op(B) + beta C, row-major) by OpenBLAS. */
static void gemm_blas(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                      const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)M,
                (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

/* One instruction set's packed GEMM: tile MR x NR (MC a multiple of MR,
 * NR dividing GROUP_MAX), and its three pieces. */
typedef struct gemm_kernel {
    const char *name;
    size_t mr, nr;
    /* The depth of a K slice (KC): a multiple of 256, so that a slice holds
     * whole blocks of every stored type (block sizes 1, 32, 256), at most KC_MAX. */
    size_t kc;
    /* op(A) rows i0.., columns p0..: mc x kc into MR-tall panels Ap[panel][k][i], zero rows past mc. */
    void (*pack_a)(int ta, const float *A, size_t lda, size_t i0, size_t p0, size_t mc, size_t kc, float *Ap);
    /* One NR-wide panel of op(B): rows (k) p0..p0+kc, columns j0..j0+nr (nr <= NR), as Bp[k][j], zero past nr. */
    void (*pack_b)(int tb, const float *B, size_t ldb, size_t p0, size_t j0, size_t kc, size_t nr, float *dst);
    /* C[mr, nr] = alpha * Ap Bp + beta * C for one tile (beta 0: C is not read). */
    void (*micro)(size_t kc, const float *restrict Ap, const float *restrict Bp, float *C, size_t ldc, float alpha,
                  float beta, size_t mr, size_t nr);
    /* Panels are laid out for a depth of kc rounded up to a multiple of this
     * (0 or 1: kc itself); the packers zero-fill the added depth. */
    size_t kc_align;
    /* Optional: run by each thread before and after its micro-kernel calls
     * of one K slice (AMX: load and release the tile configuration). */
    void (*begin)(void), (*end)(void);
} gemm_kernel;

/* The depth one K slice's panels are laid out for (see kc_align). */
static inline size_t panel_depth(const gemm_kernel *k, size_t kc) {
    return k->kc_align > 1 ? (kc + k->kc_align - 1) / k->kc_align * k->kc_align : kc;
}

/* ---- portable C kernel ----------------------------------------------------- */

enum { MR_C = 4, NR_C = 16 };

static void pack_a_generic(size_t MR, int ta, const float *A, size_t lda, size_t i0, size_t p0, size_t mc, size_t kc,
                           float *Ap) {
    for (size_t ir = 0; ir < mc; ir += MR) {
        const size_t mr = mc - ir < MR ? mc - ir : MR;
        float *dst = Ap + ir * kc;
        for (size_t k = 0; k < kc; k++)
            for (size_t i = 0; i < MR; i++)
                dst[k * MR + i] = i >= mr ? 0.0f : ta ? A[(p0 + k) * lda + i0 + ir + i] : A[(i0 + ir + i) * lda + p0 + k];
    }
}

static void pack_b_generic(size_t NR, int tb, const float *B, size_t ldb, size_t p0, size_t j0, size_t kc, size_t nr,
                           float *dst) {
    for (size_t k = 0; k < kc; k++)
        for (size_t j = 0; j < NR; j++)
            dst[k * NR + j] = j >= nr ? 0.0f : tb ? B[(j0 + j) * ldb + p0 + k] : B[(p0 + k) * ldb + j0 + j];
}

/* The tile's epilogue, shared by the kernels that finish in a local array:
 * C = alpha * acc + beta * C (one rounding: fmaf). */
static void store_tile(const float *acc, size_t NR, float *C, size_t ldc, float alpha, float beta, size_t mr,
                       size_t nr) {
    for (size_t i = 0; i < mr; i++)
        for (size_t j = 0; j < nr; j++) {
            const float a = alpha * acc[i * NR + j];
            C[i * ldc + j] = beta != 0.0f ? __builtin_fmaf(beta, C[i * ldc + j], a) : a;
        }
}

static void pack_a_c(int ta, const float *A, size_t lda, size_t i0, size_t p0, size_t mc, size_t kc, float *Ap) {
    pack_a_generic(MR_C, ta, A, lda, i0, p0, mc, kc, Ap);
}
static void pack_b_c(int tb, const float *B, size_t ldb, size_t p0, size_t j0, size_t kc, size_t nr, float *dst) {
    pack_b_generic(NR_C, tb, B, ldb, p0, j0, kc, nr, dst);
}
static void micro_c(size_t kc, const float *restrict Ap, const float *restrict Bp, float *C, size_t ldc, float alpha,
                    float beta, size_t mr, size_t nr) {
    float acc[MR_C * NR_C] = {0};
    for (size_t k = 0; k < kc; k++)
        for (size_t i = 0; i < MR_C; i++) {
            const float a = Ap[k * MR_C + i];
            for (size_t j = 0; j < NR_C; j++) acc[i * NR_C + j] = __builtin_fmaf(a, Bp[k * NR_C + j], acc[i * NR_C + j]);
        }
    store_tile(acc, NR_C, C, ldc, alpha, beta, mr, nr);
}

static const gemm_kernel kernel_c = {"c", MR_C, NR_C, KC_BASE, pack_a_c, pack_b_c, micro_c, 0, NULL, NULL};

#ifdef LL_HAVE_X86_KERNELS

/* ---- AVX2/FMA kernel: 6 x 16 tile, 12 accumulators ------------------------- */

/* KC_AVX2: four times the others' 256. With 256, the products of a SmolLM2
 * training step ran at 0.79-0.86x OpenBLAS's sgemm on this project's AVX2
 * EPYC (Zen 3 class: 32 KiB L1d, 512 KiB L2 per core); with 512 at
 * 0.91-0.97x, with 1024 at 0.99-1.04x (bench_gemm, all eight products, the
 * variants in alternating runs). Fewer slices mean fewer passes over C and
 * fewer packing rounds; the 64 KiB B panel then streams from L2. */
enum { MR_2 = 6, NR_2 = 16, KC_AVX2 = 1024 };
_Static_assert(KC_AVX2 % 256 == 0 && (size_t)KC_AVX2 <= (size_t)KC_MAX,
               "a K slice holds whole blocks and fits the packing buffers");
#define AVX2 __attribute__((target("avx2,fma")))

/* In-register transpose of an 8 x 8 block: r[i][j] -> r[j][i]. */
AVX2 static inline void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 2; g++) {
        u[4 * g + 0] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
        r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
    }
}

/* op(A) = A (rows along k): 6 rows by 8 k at a time, transposed in
 * registers, the k-columns stored 6 lanes wide; the ragged edges generic. */
AVX2 static void pack_a_avx2(int ta, const float *A, size_t lda, size_t i0, size_t p0, size_t mc, size_t kc,
                             float *Ap) {
    if (ta) {
        pack_a_generic(MR_2, ta, A, lda, i0, p0, mc, kc, Ap);
        return;
    }
    for (size_t ir = 0; ir < mc; ir += MR_2) {
        const size_t mr = mc - ir < MR_2 ? mc - ir : MR_2;
        float *dst = Ap + ir * kc;
        size_t k0 = 0;
        if (mr == MR_2)
            for (; k0 + 8 <= kc; k0 += 8) {
                __m256 r[8];
                for (int i = 0; i < MR_2; i++) r[i] = _mm256_loadu_ps(A + (i0 + ir + i) * lda + p0 + k0);
                r[6] = r[7] = _mm256_setzero_ps();
                transpose8(r);
                for (int l = 0; l < 8; l++) { /* six lanes as four and two: a masked store is slow on AMD's cores */
                    _mm_storeu_ps(dst + (k0 + l) * MR_2, _mm256_castps256_ps128(r[l]));
                    _mm_storel_pi((__m64 *)(dst + (k0 + l) * MR_2 + 4), _mm256_extractf128_ps(r[l], 1));
                }
            }
        for (size_t k = k0; k < kc; k++)
            for (size_t i = 0; i < MR_2; i++) dst[k * MR_2 + i] = i < mr ? A[(i0 + ir + i) * lda + p0 + k] : 0.0f;
    }
}
AVX2 static void pack_b_avx2(int tb, const float *B, size_t ldb, size_t p0, size_t j0, size_t kc, size_t nr,
                             float *dst) {
    if (tb && nr == NR_2) { /* op(B) = B^T: 8 k of 16 B rows, two 8 x 8 transposes */
        size_t k0 = 0;
        for (; k0 + 8 <= kc; k0 += 8)
            for (int h = 0; h < 2; h++) {
                __m256 r[8];
                for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(B + (j0 + 8 * h + j) * ldb + p0 + k0);
                transpose8(r);
                for (int l = 0; l < 8; l++) _mm256_storeu_ps(dst + (k0 + l) * NR_2 + 8 * h, r[l]);
            }
        for (size_t k = k0; k < kc; k++)
            for (size_t j = 0; j < NR_2; j++) dst[k * NR_2 + j] = B[(j0 + j) * ldb + p0 + k];
        return;
    }
    if (tb || nr < NR_2) {
        pack_b_generic(NR_2, tb, B, ldb, p0, j0, kc, nr, dst);
        return;
    }
    for (size_t k = 0; k < kc; k++) {
        const float *src = B + (p0 + k) * ldb + j0;
        _mm256_storeu_ps(dst + k * NR_2, _mm256_loadu_ps(src));
        _mm256_storeu_ps(dst + k * NR_2 + 8, _mm256_loadu_ps(src + 8));
    }
}
AVX2 static void micro_avx2(size_t kc, const float *restrict Ap, const float *restrict Bp, float *C, size_t ldc,
                            float alpha, float beta, size_t mr, size_t nr) {
    /* twelve named accumulators: an array of them made GCC store each to the
     * stack on every iteration (16 ymm registers leave it no slack) */
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
           c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 4
    for (size_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_loadu_ps(Bp + k * NR_2), b1 = _mm256_loadu_ps(Bp + k * NR_2 + 8);
        const float *a = Ap + k * MR_2;
        __m256 ai = _mm256_broadcast_ss(a);
        c00 = _mm256_fmadd_ps(ai, b0, c00), c01 = _mm256_fmadd_ps(ai, b1, c01);
        ai = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(ai, b0, c10), c11 = _mm256_fmadd_ps(ai, b1, c11);
        ai = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(ai, b0, c20), c21 = _mm256_fmadd_ps(ai, b1, c21);
        ai = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(ai, b0, c30), c31 = _mm256_fmadd_ps(ai, b1, c31);
        ai = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(ai, b0, c40), c41 = _mm256_fmadd_ps(ai, b1, c41);
        ai = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(ai, b0, c50), c51 = _mm256_fmadd_ps(ai, b1, c51);
    }
    const __m256 c[MR_2][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (mr == MR_2 && nr == NR_2) {
        for (int i = 0; i < MR_2; i++) {
            float *r = C + i * ldc;
            __m256 r0 = _mm256_mul_ps(va, c[i][0]), r1 = _mm256_mul_ps(va, c[i][1]);
            if (beta != 0.0f) {
                r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(r), r0);
                r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(r + 8), r1);
            }
            _mm256_storeu_ps(r, r0);
            _mm256_storeu_ps(r + 8, r1);
        }
        return;
    }
    float acc[MR_2 * NR_2]; /* a ragged tile: the same arithmetic, through memory */
    for (int i = 0; i < MR_2; i++) {
        _mm256_storeu_ps(acc + i * NR_2, c[i][0]);
        _mm256_storeu_ps(acc + i * NR_2 + 8, c[i][1]);
    }
    store_tile(acc, NR_2, C, ldc, alpha, beta, mr, nr);
}

static const gemm_kernel kernel_avx2 = {"avx2", MR_2, NR_2, KC_AVX2,
                                        pack_a_avx2, pack_b_avx2, micro_avx2, 0, NULL, NULL};

/* ---- AVX-512 kernel: 12 x 32 tile, 24 accumulators ------------------------- */

enum { MR = 12, NR = 32 };
#define AVX512 __attribute__((target("avx512f")))

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

AVX512 static void pack_a_avx512(int ta, const float *A, size_t lda, size_t i0, size_t p0, size_t mc, size_t kc,
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

AVX512 static void pack_b_avx512(int tb, const float *B, size_t ldb, size_t p0, size_t j0, size_t kc, size_t nr,
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

/* The 12 x 32 tile's epilogue: C = alpha * c + beta * C (beta 0: C is not
 * read), rows < mr and columns < nr only. Shared by the f32 and bf16 kernels. */
AVX512 static inline __attribute__((always_inline)) void store_tile_avx512(__m512 c[MR][2], float *C, size_t ldc, float alpha, float beta, size_t mr,
                                                                      size_t nr) {
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

AVX512 static void micro_avx512(size_t kc, const float *restrict Ap, const float *restrict Bp, float *C, size_t ldc,
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
    store_tile_avx512(c, C, ldc, alpha, beta, mr, nr);
}

static const gemm_kernel kernel_avx512 = {"avx512", MR, NR, KC_BASE,
                                          pack_a_avx512, pack_b_avx512, micro_avx512, 0, NULL, NULL};


/* ---- AVX512-BF16 kernel: 12 x 32 tile of k-pairs ---------------------------- */

/* Both operands are packed as bf16 (rounded to nearest even by
 * vcvtne2ps2bf16), two consecutive k in each 32-bit lane (the even k in the
 * low half): Ap[kp][i] and Bp[kp][j] for k = 2kp, 2kp + 1, a zero pair member
 * past kc. vdpbf16ps then adds both products of a pair into the f32
 * accumulator: per Intel's definition acc += a[2kp+1] b[2kp+1], then
 * acc += a[2kp] b[2kp], each product exact, each sum rounded to nearest even,
 * denormal inputs and results flushed to zero. The panels occupy the first
 * half of the f32 panels' space (same offsets: no buffer of its own). */

#define AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))

/* Lanes (up to 16) of consecutive rows: row l of the packed operand gets the
 * pairs of src row l (k along the row, from k0: kk values, zero past them),
 * as 16 pair-lanes per row, stored transposed: dst[p * stride + l] for pair p
 * < (kk + 1) / 2, rows l < n (the rest of the 16 lanes stored only where
 * store_lanes reaches: zero rows). */
AVX512BF16 static void pairs_along_rows(const float *src, size_t ld, size_t n, size_t kk, uint32_t *dst, size_t stride,
                                        size_t store_lanes) {
    __m512 r[16];
    const __mmask16 lo = low_mask(kk), hi = kk > 16 ? low_mask(kk - 16) : 0, st = low_mask(store_lanes);
    for (size_t l = 0; l < 16; l++) {
        if (l >= n) {
            r[l] = _mm512_setzero_ps();
            continue;
        }
        const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, src + l * ld + 16),
                                               _mm512_maskz_loadu_ps(lo, src + l * ld));
        r[l] = _mm512_castsi512_ps((__m512i)b);
    }
    transpose16(r);
    for (size_t p = 0; p < (kk + 1) / 2; p++) _mm512_mask_storeu_ps((float *)(dst + p * stride), st, r[p]);
}

/* Lanes along a row: lane l of pair p is (src[2p][l], src[2p + 1][l]) for
 * k rows 2p, 2p + 1 of src (stride ld, kc of them, zero past kc) and lanes l
 * < n (zero past n); dst[p * stride + l] for l < store_lanes. */
AVX512BF16 static void pairs_across_rows(const float *src, size_t ld, size_t n, size_t kc, uint32_t *dst,
                                         size_t stride, size_t store_lanes) {
    /* cvtne2ps puts the even row's 16 bf16 in the low half, the odd row's in
     * the high half; this permutation interleaves them into pairs */
    const __m512i inter = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                           21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __mmask16 m = low_mask(n), st = low_mask(store_lanes);
    for (size_t k = 0; k < kc; k += 2) {
        const __m512 e = _mm512_maskz_loadu_ps(m, src + k * ld);
        const __m512 o = k + 1 < kc ? _mm512_maskz_loadu_ps(m, src + (k + 1) * ld) : _mm512_setzero_ps();
        const __m512i b = _mm512_permutexvar_epi16(inter, (__m512i)_mm512_cvtne2ps_pbh(o, e));
        _mm512_mask_storeu_epi32(dst + k / 2 * stride, st, b);
    }
}

AVX512BF16 static void pack_a_bf16(int ta, const float *A, size_t lda, size_t i0, size_t p0, size_t mc, size_t kc,
                                   float *Ap) {
    for (size_t ir = 0; ir < mc; ir += MR) {
        const size_t mr = mc - ir < MR ? mc - ir : MR;
        uint32_t *dst = (uint32_t *)Ap + ir * kc; /* gemm_rows' panel offsets, in 32-bit units */
        if (!ta)
            for (size_t k0 = 0; k0 < kc; k0 += 32)
                pairs_along_rows(A + (i0 + ir) * lda + p0 + k0, lda, mr, kc - k0 < 32 ? kc - k0 : 32,
                                 dst + k0 / 2 * MR, MR, MR);
        else
            pairs_across_rows(A + p0 * lda + i0 + ir, lda, mr, kc, dst, MR, MR);
    }
}

AVX512BF16 static void pack_b_bf16(int tb, const float *B, size_t ldb, size_t p0, size_t j0, size_t kc, size_t nr,
                                   float *dst) {
    uint32_t *d = (uint32_t *)dst;
    for (size_t h = 0; h < NR; h += 16) {
        const size_t n = nr > h ? (nr - h < 16 ? nr - h : 16) : 0;
        if (!tb)
            pairs_across_rows(B + p0 * ldb + j0 + h, ldb, n, kc, d + h, NR, 16);
        else
            for (size_t k0 = 0; k0 < kc; k0 += 32)
                pairs_along_rows(B + (j0 + h) * ldb + p0 + k0, ldb, n, kc - k0 < 32 ? kc - k0 : 32,
                                 d + k0 / 2 * NR + h, NR, 16);
    }
}

AVX512BF16 static void micro_bf16(size_t kc, const float *restrict Ap, const float *restrict Bp, float *C, size_t ldc,
                                  float alpha, float beta, size_t mr, size_t nr) {
    const uint32_t *a = (const uint32_t *)Ap;
    const uint32_t *b = (const uint32_t *)Bp;
    __m512 c[MR][2];
    for (int i = 0; i < MR; i++) c[i][0] = c[i][1] = _mm512_setzero_ps();
    for (size_t p = 0; p < (kc + 1) / 2; p++) {
        const __m512bh b0 = (__m512bh)_mm512_load_si512(b + p * NR), b1 = (__m512bh)_mm512_load_si512(b + p * NR + 16);
        for (int i = 0; i < MR; i++) {
            const __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[p * MR + i]);
            c[i][0] = _mm512_dpbf16_ps(c[i][0], ai, b0);
            c[i][1] = _mm512_dpbf16_ps(c[i][1], ai, b1);
        }
    }
    store_tile_avx512(c, C, ldc, alpha, beta, mr, nr);
}

static const gemm_kernel kernel_bf16 = {"avx512_bf16", MR, NR, KC_BASE,
                                        pack_a_bf16, pack_b_bf16, micro_bf16, 0, NULL, NULL};

/* ---- AMX-BF16 kernel: 32 x 32 tile from four 16 x 16 AMX tiles -------------- */

/* Intel AMX (Sapphire Rapids and later): tdpbf16ps multiplies a 16 x 32 bf16
 * tile of A by a 32 x 16 tile of B (stored as 16 rows of k-pairs, the layout
 * pack_b_bf16 writes) into a 16 x 16 f32 tile, about ten times the f32 FMA
 * rate of AVX-512 on this class of CPU. Operands are rounded to bf16 as for
 * the AVX512-BF16 kernel; the hardware's order and rounding of the sums
 * inside one tdpbf16ps are its own (they match no sequential f32 order; the
 * SDM gives the products and the f32 accumulation, not the rounding of each
 * step), so results agree with the AVX512-BF16 kernel only to f32 rounding;
 * they do not depend on the thread count (each C element's sequence of
 * instructions is fixed by K alone). A panels are row-major (32 rows of
 * panel_depth bf16), B panels are pack_b_bf16's with the depth zero-filled to
 * a multiple of 32. */

enum { MR_AMX = 32, NR_AMX = 32, KB_AMX = 32 };
#define AMX __attribute__((target("avx512f,avx512bw,avx512bf16,amx-tile,amx-bf16")))

typedef struct amx_tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) amx_tile_config;

/* Tiles 0-3: C (16 rows x 64 bytes), 4-5: A, 6-7: B, all 16 x 64 bytes. */
AMX static void amx_begin(void) {
    amx_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
    /* ldtilecfg by asm with a memory operand: GCC 12's _tile_loadconfig does
     * not tell the optimiser that it reads cfg, and the stores above were
     * dropped as dead */
    __asm__ volatile("ldtilecfg %0" : : "m"(cfg));
}
AMX static void amx_end(void) { _tile_release(); }

/* Rows i of op(A) (mr of them, zero rows up to 32) as bf16 rows of the
 * panel's depth kd (zero past kc). */
AMX static void pack_a_amx(int ta, const float *A, size_t lda, size_t i0, size_t p0, size_t mc, size_t kc,
                           float *Ap) {
    const size_t kd = (kc + KB_AMX - 1) / KB_AMX * KB_AMX;
    for (size_t ir = 0; ir < mc; ir += MR_AMX) {
        const size_t mr = mc - ir < MR_AMX ? mc - ir : MR_AMX;
        uint16_t *dst = (uint16_t *)(Ap + ir * kd);
        if (!ta) {
            for (size_t i = 0; i < MR_AMX; i++)
                for (size_t k0 = 0; k0 < kd; k0 += 32) {
                    const size_t kk = i < mr && k0 < kc ? (kc - k0 < 32 ? kc - k0 : 32) : 0;
                    const float *src = A + (i0 + ir + i) * lda + p0 + k0;
                    const __mmask16 lo = low_mask(kk), hi = kk > 16 ? low_mask(kk - 16) : 0;
                    const __m512bh b =
                        _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, src + 16), _mm512_maskz_loadu_ps(lo, src));
                    _mm512_storeu_si512(dst + i * kd + k0, (__m512i)b);
                }
        } else {
            /* op(A) = A^T: k-rows of A are contiguous along i. Pairs of
             * k-rows interleaved give 16 rows' pairs (pairs_across_rows);
             * 16 of them transposed give each row's 32 consecutive k. */
            uint32_t pairs[16 * 16] __attribute__((aligned(64)));
            for (size_t h = 0; h < MR_AMX; h += 16) {
                const size_t n = mr > h ? (mr - h < 16 ? mr - h : 16) : 0;
                for (size_t k0 = 0; k0 < kd; k0 += 32) {
                    const size_t kk = k0 < kc ? (kc - k0 < 32 ? kc - k0 : 32) : 0;
                    memset(pairs, 0, sizeof pairs);
                    if (kk && n) pairs_across_rows(A + (p0 + k0) * lda + i0 + ir + h, lda, n, kk, pairs, 16, 16);
                    __m512 r[16];
                    for (int p = 0; p < 16; p++) r[p] = _mm512_load_ps((const float *)(pairs + p * 16));
                    transpose16(r);
                    for (size_t i = 0; i < 16; i++) _mm512_storeu_ps((float *)(dst + (h + i) * kd + k0), r[i]);
                }
            }
        }
    }
}

AMX static void pack_b_amx(int tb, const float *B, size_t ldb, size_t p0, size_t j0, size_t kc, size_t nr,
                           float *dst) {
    const size_t kd = (kc + KB_AMX - 1) / KB_AMX * KB_AMX;
    pack_b_bf16(tb, B, ldb, p0, j0, kc, nr, dst);
    /* the pairs past kc's up to the panel depth: zero */
    const size_t filled = (kc + 1) / 2;
    memset((uint32_t *)dst + filled * NR_AMX, 0, (kd / 2 - filled) * NR_AMX * sizeof(uint32_t));
}

AMX static void micro_amx(size_t kc, const float *restrict Ap, const float *restrict Bp, float *C, size_t ldc,
                          float alpha, float beta, size_t mr, size_t nr) {
    const size_t kd = (kc + KB_AMX - 1) / KB_AMX * KB_AMX;
    const uint16_t *a = (const uint16_t *)Ap;
    const uint32_t *b = (const uint32_t *)Bp;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (size_t k0 = 0; k0 < kd; k0 += KB_AMX) {
        _tile_loadd(4, a + k0, kd * 2);           /* rows 0-15, k0..k0+31 */
        _tile_loadd(5, a + 16 * kd + k0, kd * 2); /* rows 16-31 */
        _tile_loadd(6, b + k0 / 2 * NR_AMX, NR_AMX * 4);      /* pairs of k0.., columns 0-15 */
        _tile_loadd(7, b + k0 / 2 * NR_AMX + 16, NR_AMX * 4); /* columns 16-31 */
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    float acc[MR_AMX * NR_AMX] __attribute__((aligned(64)));
    _tile_stored(0, acc, NR_AMX * 4);
    _tile_stored(1, acc + 16, NR_AMX * 4);
    _tile_stored(2, acc + 16 * NR_AMX, NR_AMX * 4);
    _tile_stored(3, acc + 16 * NR_AMX + 16, NR_AMX * 4);
    /* the epilogue of the AVX-512 kernels: C = alpha acc (+ beta C by one fma) */
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    const __mmask16 m0 = low_mask(nr), m1 = nr <= 16 ? 0 : low_mask(nr - 16);
    for (size_t i = 0; i < mr; i++) {
        float *r = C + i * ldc;
        __m512 r0 = _mm512_mul_ps(va, _mm512_load_ps(acc + i * NR_AMX)),
               r1 = _mm512_mul_ps(va, _mm512_load_ps(acc + i * NR_AMX + 16));
        if (beta != 0.0f) {
            r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, r), r0);
            r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, r + 16), r1);
        }
        _mm512_mask_storeu_ps(r, m0, r0);
        _mm512_mask_storeu_ps(r + 16, m1, r1);
    }
}

static const gemm_kernel kernel_amx = {"amx_bf16", MR_AMX, NR_AMX, KC_BASE, pack_a_amx, pack_b_amx, micro_amx,
                                       KB_AMX, amx_begin, amx_end};

/* AMX-BF16 in the CPU (CPUID.7.0:EDX bits 22 and 24) and its tile data
 * state granted to this process by the kernel (Linux 5.16+:
 * arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)). */
static int amx_usable(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 22)) || !(d & (1u << 24))) return 0;
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
}


#endif /* LL_HAVE_X86_KERNELS */

/* ---- kernel choice ----------------------------------------------------------- */

/* The kernel for frozen-weight products: the widest the CPU has, or the one
 * LSLLAMA_GEMM names ("avx2", "c": for tests and side-by-side figures; "blas"
 * sends ll_gemm's f32 products to OpenBLAS and leaves this choice alone). */
static const gemm_kernel *weights_kernel(void) {
    static const gemm_kernel *chosen; /* read and set atomically: the first call may come from several threads */
    const gemm_kernel *k = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (k) return k;
    const char *env = getenv("LSLLAMA_GEMM");
    k = &kernel_c;
#ifdef LL_HAVE_X86_KERNELS
    __builtin_cpu_init();
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (__builtin_cpu_supports("avx512f")) k = &kernel_avx512;
    else if (avx2) k = &kernel_avx2;
    if (env && !strcmp(env, "avx2") && avx2) k = &kernel_avx2;
#endif
    if (env && !strcmp(env, "c")) k = &kernel_c;
    __atomic_store_n(&chosen, k, __ATOMIC_RELEASE);
    return k;
}

/* The kernel for f32 products, or NULL for OpenBLAS: the frozen-weight
 * kernel (AVX-512, else AVX2/FMA, or the one LSLLAMA_GEMM names), except
 * OpenBLAS where only the portable C kernel would run (a CPU without AVX2:
 * OpenBLAS's own kernels for it are faster) or LSLLAMA_GEMM=blas. */
static const gemm_kernel *f32_kernel(void) {
    static int use_blas = -1; /* read and set atomically, as weights_kernel's choice */
    int b = __atomic_load_n(&use_blas, __ATOMIC_RELAXED);
    if (b < 0) {
        const char *env = getenv("LSLLAMA_GEMM");
        b = (env && !strcmp(env, "blas")) || (weights_kernel() == &kernel_c && !(env && !strcmp(env, "c")));
        __atomic_store_n(&use_blas, b, __ATOMIC_RELAXED);
    }
    return b ? NULL : weights_kernel();
}

/* The kernel of bf16 products, or NULL where the CPU has none: AMX-BF16
 * where the CPU and the OS allow it, else AVX512-BF16. LSLLAMA_GEMM_BF16 =
 * avx512_bf16 chooses the latter on an AMX machine, = none acts as a CPU
 * without either (tests of the refusal). */
static const gemm_kernel *bf16_kernel(void) {
#ifdef LL_HAVE_X86_KERNELS
    static const gemm_kernel *chosen;
    static int decided;
    if (__atomic_load_n(&decided, __ATOMIC_ACQUIRE)) return chosen;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    if (!decided) {
        __builtin_cpu_init();
        const char *env = getenv("LSLLAMA_GEMM_BF16");
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512bf16") && !(env && !strcmp(env, "none")))
            chosen = !(env && !strcmp(env, "avx512_bf16")) && amx_usable() ? &kernel_amx : &kernel_bf16;
        __atomic_store_n(&decided, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&lock);
    return chosen;
#else
    return NULL;
#endif
}

int ll_gemm_bf16_supported(void) { return bf16_kernel() != NULL; }
const char *ll_gemm_bf16_backend(void) { return bf16_kernel() ? bf16_kernel()->name : "none"; }

const char *ll_gemm_backend(void) { return f32_kernel() ? f32_kernel()->name : "openblas"; }
const char *ll_gemm_weights_backend(void) { return weights_kernel()->name; }
size_t ll_gemm_k_slice(void) { return f32_kernel() ? f32_kernel()->kc : KC_BASE; }

/* ---- packing buffers --------------------------------------------------------- */

typedef struct pack_buffers {
    float *a;       /* MC x KC_MAX */
    float *b;       /* KC_MAX x NC */
    float *staging; /* KC_MAX x GROUP_MAX: op(B) dequantized before packing */
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
    free(b->a), free(b->b), free(b->staging), free(b);
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
    if (!p->a && !(p->a = aligned_alloc(64, sizeof(float) * MC * KC_MAX))) return NULL;
    if (!p->staging && !(p->staging = aligned_alloc(64, sizeof(float) * KC_MAX * GROUP_MAX))) return NULL;
    if (want_b && !p->b && !(p->b = aligned_alloc(64, sizeof(float) * KC_MAX * NC))) return NULL;
    return p;
}

/* ---- the B operand: f32, or a weight in its stored type ---------------------- */

typedef struct b_operand {
    int tb;               /* 1: op(B) = B^T */
    const float *f;       /* f32 data (row stride ld floats), or NULL for a typed weight */
    const ll_matrix *w;   /* the typed weight when f is NULL */
    size_t ld;
    /* A fused product (ll_gemm_weights_fused): op(B) = [W_0; W_1; ...]^T,
     * segment s spanning columns [n0[s], n0[s + 1]) and written to its own
     * C (C[s], ldc[s]); boundaries are whole NR tiles. n_seg 0: the fields
     * above and the caller's C. */
    size_t n_seg;
    const ll_matrix *const *ws;
    size_t n0[LL_FUSED_MAX + 1];
    float *const *C;
    const size_t *ldc;
} b_operand;

/* Segment s of a fused operand as a plain one (its columns from 0). */
static b_operand segment_of(const b_operand *bo, size_t s) {
    const ll_matrix *w = bo->ws[s];
    return (b_operand){bo->tb, w->dtype == LL_DTYPE_F32 ? (const float *)w->data : NULL, w, w->ld_blocks, 0, NULL,
                       {0}, NULL, NULL};
}

/* The segment holding column j of a fused operand. */
static size_t segment_at(const b_operand *bo, size_t j) {
    size_t s = 0;
    while (s + 1 < bo->n_seg && j >= bo->n0[s + 1]) s++;
    return s;
}

/* Where the tile at row i, column j (of op(B), j0-relative column jr) of C starts. */
static inline float *tile_c(const b_operand *bo, float *C, size_t ldc, size_t i, size_t j0, size_t jr) {
    if (!bo->n_seg) return C + i * ldc + jr;
    const size_t s = segment_at(bo, j0 + jr);
    return bo->C[s] + i * bo->ldc[s] + (j0 + jr - bo->n0[s]);
}

/* Columns of op(B) packed per unit of work: one NR panel, or for a
 * quantized B read along its rows (tb 0) the panels spanning whole blocks. */
static size_t b_group(const gemm_kernel *k, const b_operand *bo) {
    if (bo->f || bo->tb) return k->nr;
    const size_t be = (size_t)ll_dtype_block_elems(bo->w->dtype);
    return be <= k->nr ? k->nr : be; /* block sizes (32, 256) are multiples of NR (16, 32) */
}

/* Elements [c0, c0 + n) of weight row r, as f32. c0 and n are whole blocks:
 * rows are (checked at load), and so are kernels' kc, NC and b_group's widths. */
static void weight_row_segment(const ll_matrix *w, size_t r, size_t c0, size_t n, float *dst) {
    const size_t be = (size_t)ll_dtype_block_elems(w->dtype), bb = ll_dtype_block_bytes(w->dtype);
    ll_dequantize(w->dtype, (const uint8_t *)ll_matrix_row(w, r) + c0 / be * bb, dst, n);
}

/* Packs the columns [g0, g0 + gw) of the KC x nc block (rows p0..p0+kc,
 * columns j0.. of op(B)) into their panels of Bp: a group of b_group() columns. */
static void pack_b_group(const gemm_kernel *k, const b_operand *bo, size_t p0, size_t kc, size_t j0, size_t g0,
                         size_t gw, float *Bp, float *staging) {
    const size_t NRk = k->nr, kd = panel_depth(k, kc);
    if (bo->n_seg) { /* a group lies in one segment: pack it from there */
        const size_t s = segment_at(bo, j0 + g0);
        const b_operand one = segment_of(bo, s);
        pack_b_group(k, &one, p0, kc, j0 - bo->n0[s], g0, gw, Bp, staging);
        return;
    }
    if (bo->f) {
        for (size_t jr = g0; jr < g0 + gw; jr += NRk)
            k->pack_b(bo->tb, bo->f, bo->ld, p0, j0 + jr, kc, g0 + gw - jr < NRk ? g0 + gw - jr : NRk, Bp + jr * kd);
        return;
    }
    if (bo->tb) { /* op(B) = W^T: columns are weight rows; dequantize gw rows' [p0, p0 + kc) */
        for (size_t j = 0; j < gw; j++) weight_row_segment(bo->w, j0 + g0 + j, p0, kc, staging + j * kc);
        k->pack_b(1, staging, kc, 0, 0, kc, gw, Bp + g0 * kd);
        return;
    }
    /* op(B) = W: rows are weight rows; dequantize kc rows' [j0 + g0, + gw) */
    for (size_t kk = 0; kk < kc; kk++) weight_row_segment(bo->w, p0 + kk, j0 + g0, gw, staging + kk * gw);
    for (size_t jr = g0; jr < g0 + gw; jr += NRk)
        k->pack_b(0, staging, gw, 0, jr - g0, kc, g0 + gw - jr < NRk ? g0 + gw - jr : NRk, Bp + jr * kd);
}

/* ---- the blocked product ----------------------------------------------------- */

/* Rows [m0, m1) of C against the packed kc x nc block Bp (columns jc..), K slice pc.. */
static void gemm_rows(const gemm_kernel *k, int ta, size_t m0, size_t m1, size_t jc, size_t nc, size_t pc, size_t kc,
                      float alpha, const float *A, size_t lda, const float *Bp, float beta_k, const b_operand *bo,
                      size_t j0, float *C, size_t ldc, float *Ap) {
    const size_t kd = panel_depth(k, kc);
    if (k->begin) k->begin();
    for (size_t ic = m0; ic < m1; ic += MC) {
        const size_t mc = m1 - ic < MC ? m1 - ic : MC;
        k->pack_a(ta, A, lda, ic, pc, mc, kc, Ap);
        for (size_t jr = 0; jr < nc; jr += k->nr) {
            const size_t nr = nc - jr < k->nr ? nc - jr : k->nr;
            for (size_t ir = 0; ir < mc; ir += k->mr) {
                const size_t mr = mc - ir < k->mr ? mc - ir : k->mr;
                float *Ct = tile_c(bo, C, ldc, ic + ir, j0, jc + jr);
                k->micro(kc, Ap + ir * kd, Bp + jr * kd, Ct, bo->n_seg ? bo->ldc[segment_at(bo, j0 + jc + jr)] : ldc,
                         alpha, beta_k, mr, nr);
            }
        }
    }
    if (k->end) k->end();
}

/* The whole product by the calling thread alone (columns j0.. of op(B)). */
static void gemm_packed(const gemm_kernel *k, int ta, size_t M, size_t N, size_t K, float alpha, const float *A,
                        size_t lda, const b_operand *bo, size_t j0, float beta, float *C, size_t ldc,
                        pack_buffers *buf) {
    const size_t group = b_group(k, bo);
    for (size_t jc = 0; jc < N; jc += NC) {
        const size_t nc = N - jc < NC ? N - jc : NC;
        for (size_t pc = 0; pc < K; pc += k->kc) {
            const size_t kc = K - pc < k->kc ? K - pc : k->kc;
            for (size_t g0 = 0; g0 < nc; g0 += group)
                pack_b_group(k, bo, pc, kc, j0 + jc, g0, nc - g0 < group ? nc - g0 : group, buf->b, buf->staging);
            gemm_rows(k, ta, 0, M, jc, nc, pc, kc, alpha, A, lda, buf->b, pc == 0 ? beta : 1.0f, bo, j0, C, ldc,
                      buf->a);
        }
    }
}

/* The product by a team of threads (called by each inside a parallel region):
 * they pack each B block together into Bp (the calling thread's buffer), then
 * each runs its own rows of C (whole MR units) against it, packing its own A. */
static void gemm_team(const gemm_kernel *k, int ta, size_t M, size_t N, size_t K, float alpha, const float *A,
                      size_t lda, const b_operand *bo, float beta, float *C, size_t ldc, float *Bp, pack_buffers *own) {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const size_t units = (M + k->mr - 1) / k->mr, group = b_group(k, bo);
    const size_t m0 = units * (size_t)t / (size_t)nt * k->mr, m1e = units * (size_t)(t + 1) / (size_t)nt * k->mr;
    const size_t m1 = m1e < M ? m1e : M;
    for (size_t jc = 0; jc < N; jc += NC) {
        const size_t nc = N - jc < NC ? N - jc : NC;
        for (size_t pc = 0; pc < K; pc += k->kc) {
            const size_t kc = K - pc < k->kc ? K - pc : k->kc;
#pragma omp for schedule(static)
            for (size_t g0 = 0; g0 < nc; g0 += group)
                pack_b_group(k, bo, pc, kc, jc, g0, nc - g0 < group ? nc - g0 : group, Bp, own->staging);
            /* (the loop's implicit barrier: the block is complete) */
            if (m0 < m1)
                gemm_rows(k, ta, m0, m1, jc, nc, pc, kc, alpha, A, lda, Bp, pc == 0 ? beta : 1.0f, bo, 0, C, ldc,
                          own->a);
#pragma omp barrier
        }
    }
}

/* Columns of C (thread t of nt, whole groups) by one thread. */
static void gemm_columns(const gemm_kernel *k, int ta, size_t M, size_t N, size_t K, float alpha, const float *A,
                         size_t lda, const b_operand *bo, float beta, float *C, size_t ldc, int t, int nt,
                         pack_buffers *buf) {
    const size_t group = b_group(k, bo), units = (N + group - 1) / group;
    const size_t lo = units * (size_t)t / (size_t)nt * group, hi_e = units * (size_t)(t + 1) / (size_t)nt * group;
    const size_t hi = hi_e < N ? hi_e : N;
    if (lo < hi) gemm_packed(k, ta, M, hi - lo, K, alpha, A, lda, bo, lo, beta, bo->n_seg ? C : C + lo, ldc, buf);
}

/* The product by kernel k, on the calling thread alone when `serial` or the
 * product is small, else by a team; 0 when packing buffers could not be had. */
static int gemm_run(const gemm_kernel *k, int serial, int ta, size_t M, size_t N, size_t K, float alpha,
                    const float *A, size_t lda, const b_operand *bo, float beta, float *C, size_t ldc) {
    pack_buffers *mine = thread_buffers(1);
    if (!mine) return 0;
    const double flops = 2.0 * (double)M * (double)N * (double)K;
    if (serial || omp_in_parallel() || flops < 4e6 || omp_get_max_threads() == 1) {
        gemm_packed(k, ta, M, N, K, alpha, A, lda, bo, 0, beta, C, ldc, mine);
        return 1;
    }
    /* Rows when C has at least as many row tiles as column tiles (a step's
     * products: T tokens by a layer's width), else columns (LoRA's r x in; a
     * weight times a few tokens). Every thread first gets its buffers; if one
     * cannot, none starts. */
    const int by_rows = (M + k->mr - 1) / k->mr >= (N + k->nr - 1) / k->nr;
    int all_ok = 1;
#pragma omp parallel
    {
        pack_buffers *buf = omp_get_thread_num() == 0 ? mine : thread_buffers(!by_rows);
        if (!buf) {
#pragma omp atomic write
            all_ok = 0;
        }
#pragma omp barrier
        int go;
#pragma omp atomic read
        go = all_ok;
        if (go && by_rows)
            gemm_team(k, ta, M, N, K, alpha, A, lda, bo, beta, C, ldc, mine->b, buf);
        else if (go)
            gemm_columns(k, ta, M, N, K, alpha, A, lda, bo, beta, C, ldc, omp_get_thread_num(),
                         omp_get_num_threads(), buf);
    }
    return all_ok;
}

/* C = beta C (K == 0: BLAS would reject a leading dimension of 0). */
static void scale_c(size_t M, size_t N, float beta, float *C, size_t ldc) {
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

/* ---- entry points ------------------------------------------------------------- */

void ll_gemm_serial(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                    const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (M == 0 || N == 0) return;
    const gemm_kernel *k = f32_kernel();
    const b_operand bo = {.tb = tb, .f = B, .ld = ldb};
    if (K > 0 && k && gemm_run(k, 1, ta, M, N, K, alpha, A, lda, &bo, beta, C, ldc)) return;
    ll_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void ll_gemm(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
             const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    const gemm_kernel *k = f32_kernel();
    const b_operand bo = {.tb = tb, .f = B, .ld = ldb};
    /* Thin products (LoRA's rank-r factors) too: padded to whole tiles they still beat OpenBLAS here (SmolLM2
     * training 460 against 447 tokens/s on a Xeon, AVX-512), and OpenBLAS's results depend on how many threads
     * it started with (OMP_NUM_THREADS at process start), which data-parallel ranks must not. */
    if (k && gemm_run(k, 0, ta, M, N, K, alpha, A, lda, &bo, beta, C, ldc)) return;
    gemm_blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* The kernel of products by W: by its compute type. */
static const gemm_kernel *kernel_for(const ll_matrix *W) {
    if (W->compute != LL_DTYPE_BF16) return weights_kernel();
    const gemm_kernel *k = bf16_kernel();
    if (!k) { /* the model loader refuses bf16 products on a CPU without them: this is a caller's bug */
        fprintf(stderr, "lsllama: internal error: bf16 products requested on a CPU without AVX512-BF16\n");
        abort();
    }
    return k;
}

/* The product one element at a time, dequantizing a block per weight read
 * (with bf16 products, both operands rounded to bf16 first): only when no
 * thread could get its packing buffers (out of memory). */
static void gemm_weights_naive(int ta, int tw, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                               const ll_matrix *W, float beta, float *C, size_t ldc) {
    const size_t be = (size_t)ll_dtype_block_elems(W->dtype);
    const int bf16 = W->compute == LL_DTYPE_BF16;
    float blk[256];
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            float acc = 0.0f;
            for (size_t p = 0; p < K; p++) {
                const size_t r = tw ? j : p, c = tw ? p : j;
                weight_row_segment(W, r, c / be * be, be, blk);
                const float a = ta ? A[p * lda + i] : A[i * lda + p], w = blk[c % be];
                acc += bf16 ? ll_bf16_to_fp32(ll_fp32_to_bf16(a)) * ll_bf16_to_fp32(ll_fp32_to_bf16(w)) : a * w;
            }
            C[i * ldc + j] = alpha * acc + (beta != 0.0f ? beta * C[i * ldc + j] : 0.0f);
        }
}

void ll_gemm_weights(int ta, int tw, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                     const ll_matrix *W, float beta, float *C, size_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    const b_operand bo = {.tb = tw, .f = W->dtype == LL_DTYPE_F32 ? (const float *)W->data : NULL, .w = W,
                          .ld = W->ld_blocks};
    const gemm_kernel *k = kernel_for(W);
    if (!gemm_run(k, 0, ta, M, N, K, alpha, A, lda, &bo, beta, C, ldc))
        gemm_weights_naive(ta, tw, M, N, K, alpha, A, lda, W, beta, C, ldc);
}

void ll_gemm_weights_fused(int ta, size_t M, size_t K, float alpha, const float *A, size_t lda,
                           const ll_matrix *const *W, size_t n, float beta, float *const *C, const size_t *ldc) {
    const gemm_kernel *k = n ? kernel_for(W[0]) : NULL;
    b_operand bo = {.tb = 1, .n_seg = n, .ws = W, .C = C, .ldc = ldc};
    int fusable = n >= 2 && n <= LL_FUSED_MAX && M > 0 && K > 0;
    for (size_t s = 0; s < n && fusable; s++) {
        /* one kernel for all, and segment boundaries at whole tiles: then
         * every element is computed as by its own product */
        fusable = W[s]->cols == K && W[s]->compute == W[0]->compute && (s == n - 1 || W[s]->rows % k->nr == 0);
        bo.n0[s + 1] = bo.n0[s] + W[s]->rows;
    }
    if (fusable && gemm_run(k, 0, ta, M, bo.n0[n], K, alpha, A, lda, &bo, beta, C[0], ldc[0])) return;
    for (size_t s = 0; s < n; s++) ll_gemm_weights(ta, 1, M, W[s]->rows, K, alpha, A, lda, W[s], beta, C[s], ldc[s]);
}
