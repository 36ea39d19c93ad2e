/* Block readers fed anything: random bytes, NaN and infinite f16 scales
 * (quiet, signalling, negative), the largest finite f16, subnormals, payload
 * bytes 0x00 / 0xFF / 0x80 / 0x7F, for every weight type (F32, F16, BF16,
 * Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K). Under the sanitizer pass
 * of scripts/test.sh (ASan + UBSan, buffers of exactly the right size) any
 * read or write outside them, or undefined arithmetic, stops the test.
 *
 *  - every dequantizer (ll_dequantize and the traits table's to_f32, which
 *    must agree bit for bit) on 1..8 blocks: a block whose f16 scale/min
 *    fields are all finite gives only finite values (the largest finite
 *    scale times the largest quant stays far below FLT_MAX), a block with a
 *    non-finite one gives only non-finite values; F32 is copied bit for bit,
 *    F16 and BF16 values are those of the bit patterns (computed here);
 *  - ll_gemm_weights on small random shapes (both orientations, op(A) plain
 *    and transposed, row strides wider than the rows, C wider than N, alpha
 *    and beta values, A with huge and tiny values): the same bits as the
 *    product on the dequantized f32 matrix (NaN where it has NaN), and no
 *    write outside C's N columns;
 *  - model files whose matrix holds a NaN or infinite scale, or an F32 file
 *    with a NaN weight (tools/gen_fixtures_precision.py: tiny_Q4_K_nan.gguf,
 *    tiny_Q6_K_inf_q.gguf for a q matrix the loader reorders, tiny_F32_nan.gguf)
 *    are refused at load under every --base-precision, with a message naming
 *    the file and the tensor. */
#include <float.h>
#include <stddef.h>
#include <stdint.h>

#include "io/dtype.h"
#include "io/quants.h"
#include "kernels/kernels.h"
#include "lsllama.h"
#include "test_util.h"
#include "weight_types_util.h"

#define FIXTURES LL_BUILD_DIR "/generated/precision"

static size_t below(size_t n) { return (size_t)(next_u64() % n); }

/* f16 (and, shifted, bf16) bit patterns at the edges: NaNs, infinities, the
 * largest finite, subnormals, zeros, one. */
static const uint16_t f16_special[] = {0x7E00, 0x7C01, 0xFE00, 0xFFFF, 0x7C00, 0xFC00, 0x7BFF,
                                       0xFBFF, 0x0001, 0x83FF, 0x0000, 0x8000, 0x3C00};
static const uint8_t byte_special[] = {0x00, 0xFF, 0x80, 0x7F};
static const uint32_t f32_special[] = {0x7FC00000, 0x7F800001, 0xFFFFFFFF, 0x7F800000, 0xFF800000,
                                       0x7F7FFFFF, 0xFF7FFFFF, 0x00000001, 0x80000000, 0x3F800000};

static uint16_t fuzz_f16(void) {
    return below(3) ? (uint16_t)next_u64() : f16_special[below(sizeof f16_special / sizeof *f16_special)];
}

/* n_blocks fuzzed blocks of w at p: random bytes, an extreme byte repeated,
 * or random payload; scale fields random, special, or finite (only finite
 * ones, and finite plain values, when `finite`). */
static void fuzz_blocks(const wtype *w, uint8_t *p, size_t n_blocks, int finite) {
    const size_t bb = ll_dtype_block_bytes(w->dt);
    for (size_t b = 0; b < n_blocks; b++, p += bb) {
        if (finite && ll_dtype_is_plain_float(w->dt)) { /* +-[0, 1) times 2^-20 .. 2^10, or a tiny value */
            const float x = below(8) ? ldexpf((float)(next_u64() >> 40) / 8388608.0f - 1.0f, (int)below(31) - 20)
                                     : (below(2) ? 1e-40f : -3e-8f);
            const uint16_t h = w->dt == LL_DTYPE_F16 ? ll_fp32_to_fp16(x) : ll_fp32_to_bf16(x);
            if (w->dt == LL_DTYPE_F32) memcpy(p, &x, 4);
            else memcpy(p, &h, 2);
            continue;
        }
        if (w->dt == LL_DTYPE_F32) {
            const uint32_t v = below(3) ? (uint32_t)next_u64() : f32_special[below(sizeof f32_special / 4)];
            memcpy(p, &v, 4);
            continue;
        }
        if (w->dt == LL_DTYPE_F16 || w->dt == LL_DTYPE_BF16) {
            const uint16_t v = fuzz_f16();
            memcpy(p, &v, 2);
            continue;
        }
        const size_t mode = finite ? 3 : below(4);
        if (mode == 1) memset(p, byte_special[below(sizeof byte_special)], bb);
        else
            for (size_t i = 0; i < bb; i++) p[i] = (uint8_t)next_u64();
        if (mode >= 2)
            for (int f = 0; f < w->n_f16; f++) {
                const uint16_t h = mode == 2 ? fuzz_f16() : (uint16_t)(next_u64() & 0x7BFF); /* 3: finite */
                memcpy(p + w->f16_at[f], &h, 2);
            }
    }
}

static int f16_finite(uint16_t h) { return (h & 0x7C00) != 0x7C00; }

/* The value of an f16 bit pattern, computed apart from the library. */
static float f16_value(uint16_t h) {
    const int s = h >> 15, e = (h >> 10) & 0x1F, m = h & 0x3FF;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return (float)(s ? -v : v);
}

static void fuzz_dequantizers(void) {
    for (size_t t = 0; t < N_WEIGHT_TYPES; t++) {
        const wtype *w = &weight_types[t];
        const size_t be = (size_t)ll_dtype_block_elems(w->dt), bb = ll_dtype_block_bytes(w->dt);
        const ll_type_traits *tr = ll_get_type_traits(w->dt);
        REQUIRE(tr && tr->to_f32);
        size_t finite_blocks = 0, bad_blocks = 0, wrong = 0;
        for (int trial = 0; trial < 300; trial++) {
            const size_t nb = 1 + below(8), n = nb * be;
            uint8_t *src = malloc(nb * bb); /* exact sizes: the sanitizer sees any overrun */
            float *y = malloc(n * sizeof(float)), *y2 = malloc(n * sizeof(float));
            REQUIRE(src && y && y2);
            fuzz_blocks(w, src, nb, 0);
            ll_dequantize(w->dt, src, y, n);
            tr->to_f32(src, y2, n);
            CHECK_MSG(!memcmp(y, y2, n * sizeof(float)), "%s: ll_dequantize and to_f32 differ", tr->name);
            for (size_t b = 0; b < nb; b++) {
                const uint8_t *blk = src + b * bb;
                const float *v = y + b * be;
                if (w->dt == LL_DTYPE_F32) {
                    wrong += memcmp(v, blk, 4) != 0;
                    continue;
                }
                if (w->dt == LL_DTYPE_F16 || w->dt == LL_DTYPE_BF16) {
                    uint16_t h;
                    memcpy(&h, blk, 2);
                    if (w->dt == LL_DTYPE_BF16) {
                        const uint32_t want = (uint32_t)h << 16;
                        wrong += memcmp(v, &want, 4) != 0;
                    } else {
                        const float want = f16_value(h);
                        wrong += !(want == v[0] && signbit(want) == signbit(v[0])) && !(isnan(want) && isnan(v[0]));
                    }
                    continue;
                }
                int all_finite = 1;
                for (int f = 0; f < w->n_f16; f++) {
                    uint16_t h;
                    memcpy(&h, blk + w->f16_at[f], 2);
                    all_finite &= f16_finite(h);
                }
                size_t finite = 0;
                for (size_t i = 0; i < be; i++) finite += isfinite(v[i]) != 0;
                if (all_finite) finite_blocks++, wrong += finite != be;
                else bad_blocks++, wrong += finite != 0;
            }
            free(src), free(y), free(y2);
        }
        CHECK_MSG(wrong == 0, "%s: %zu blocks with the wrong values (finite where a scale is not, or the reverse)",
                  tr->name, wrong);
        if (w->n_f16) {
            CHECK_MSG(finite_blocks > 50 && bad_blocks > 50, "%s: %zu finite, %zu non-finite blocks", tr->name,
                      finite_blocks, bad_blocks);
            printf("%-5s dequantizers: %zu blocks with finite scales, %zu with non-finite ones\n", tr->name,
                   finite_blocks, bad_blocks);
        } else {
            printf("%-5s dequantizers: values as their bit patterns say\n", tr->name);
        }
    }
}

static int same_or_both_nan(float a, float b) { return !memcmp(&a, &b, sizeof a) || (isnan(a) && isnan(b)); }

static void fuzz_gemm(void) {
    static const float alphas[] = {1.0f, 0.5f, -2.0f, 0.0f}, betas[] = {0.0f, 1.0f, 0.25f};
    for (size_t t = 0; t < N_WEIGHT_TYPES; t++) {
        const wtype *w = &weight_types[t];
        const size_t be = (size_t)ll_dtype_block_elems(w->dt), bb = ll_dtype_block_bytes(w->dt);
        size_t differ = 0, outside = 0, nan_products = 0, finite_nan = 0;
        for (int trial = 0; trial < 40; trial++) {
            const int ta = (int)below(2), tw = (int)below(2);
            const size_t nb = 1 + below(be == 1 ? 70 : be == 32 ? 5 : 2), cols = nb * be, rows = 1 + below(40);
            const size_t ld_blocks = nb + below(3), M = 1 + below(20);
            const size_t N = tw ? rows : cols, K = tw ? cols : rows;
            const size_t lda = (ta ? M : K) + below(3), ldc = N + below(3), arows = ta ? K : M;
            uint8_t *wdata = malloc(rows * ld_blocks * bb);
            float *w32 = malloc(rows * cols * sizeof(float)), *A = malloc(arows * lda * sizeof(float));
            float *C0 = malloc(M * ldc * sizeof(float)), *Ct = malloc(M * ldc * sizeof(float)),
                  *Cf = malloc(M * ldc * sizeof(float));
            REQUIRE(wdata && w32 && A && C0 && Ct && Cf);
            /* half the products on finite weights and moderate A (so that C is
             * finite and compared bit for bit), half on anything */
            const int finite = trial % 2;
            fuzz_blocks(w, wdata, rows * ld_blocks, finite);
            for (size_t r = 0; r < rows; r++)
                ll_dequantize(w->dt, wdata + r * ld_blocks * bb, w32 + r * cols, cols);
            for (size_t i = 0; i < arows * lda; i++) {
                const size_t k = below(16);
                A[i] = k == 0 ? (finite ? 1e-6f : 1e30f) : k == 1 ? -3e-39f : k == 2 ? 0.0f
                                                                       : (float)(next_u64() >> 40) / 8388608.0f - 1.0f;
            }
            for (size_t i = 0; i < M * ldc; i++) C0[i] = (float)(next_u64() >> 40) / 8388608.0f - 1.0f;
            const float alpha = alphas[below(4)], beta = betas[below(3)];
            const ll_matrix W = {w->dt, wdata, rows, cols, ld_blocks, LL_DTYPE_F32}, F = {LL_DTYPE_F32, w32, rows, cols, cols, LL_DTYPE_F32};
            memcpy(Ct, C0, M * ldc * sizeof(float));
            memcpy(Cf, C0, M * ldc * sizeof(float));
            ll_gemm_weights(ta, tw, M, N, K, alpha, A, lda, &W, beta, Ct, ldc);
            ll_gemm_weights(ta, tw, M, N, K, alpha, A, lda, &F, beta, Cf, ldc);
            int d = 0, o = 0, nan = 0;
            for (size_t i = 0; i < M; i++) {
                for (size_t j = 0; j < N; j++) {
                    d |= !same_or_both_nan(Ct[i * ldc + j], Cf[i * ldc + j]);
                    nan |= isnan(Ct[i * ldc + j]) != 0;
                }
                for (size_t j = N; j < ldc; j++) o |= memcmp(&Ct[i * ldc + j], &C0[i * ldc + j], sizeof(float)) != 0;
            }
            CHECK_MSG(!d, "%s ta=%d tw=%d M=%zu W %zu x %zu (stride %zu blocks) alpha=%g beta=%g: stored-type product "
                      "differs from the f32 one", ll_dtype_name(w->dt), ta, tw, M, rows, cols, ld_blocks, alpha, beta);
            differ += d, outside += o, nan_products += nan, finite_nan += finite && nan;
            free(wdata), free(w32), free(A), free(C0), free(Ct), free(Cf);
        }
        CHECK_MSG(outside == 0, "%s: %zu products wrote outside C's columns", ll_dtype_name(w->dt), outside);
        CHECK_MSG(finite_nan == 0, "%s: %zu products of finite operands hold NaN", ll_dtype_name(w->dt), finite_nan);
        printf("%-5s ll_gemm_weights: 40 fuzzed products, %zu differ from f32, %zu with NaN in C\n",
               ll_dtype_name(w->dt), differ, nan_products);
    }
}

/* Corrupt model files are refused, naming the file, the tensor and the row
 * as the file stores it (q rows are reordered at load). */
static void corrupt_models(void) {
    const struct {
        const char *file, *tensor, *row;
    } cases[] = {{"tiny_Q4_K_nan.gguf", "blk.1.ffn_down.weight", "(row 5)"},
                 {"tiny_Q6_K_inf_q.gguf", "blk.0.attn_q.weight", "(row 5)"},
                 {"tiny_F32_nan.gguf", "blk.0.ffn_up.weight", "(row 3)"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int p = LL_BASE_STORED; p <= LL_BASE_F32; p++) {
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", FIXTURES, cases[i].file);
            FILE *f = fopen(path, "rb");
            if (!f) fprintf(stderr, "%s: missing (run tools/gen_fixtures_precision.py --out %s)\n", path, FIXTURES);
            REQUIRE(f);
            fclose(f);
            ll_load_options o = {.base_precision = (ll_base_precision)p};
            ll_model *m = NULL;
            ll_error err = {0};
            const int rc = ll_model_load(&m, path, &o, &err);
            CHECK_MSG(rc == LL_ERR_FORMAT && !m && strstr(err.message, path) && strstr(err.message, cases[i].tensor) &&
                          strstr(err.message, "non-finite") && strstr(err.message, cases[i].row),
                      "%s with --base-precision %s: rc %d, message '%s'", cases[i].file,
                      ll_base_precision_name((ll_base_precision)p), rc, err.message);
            if (p == LL_BASE_STORED) printf("%s: %s\n", cases[i].file, err.message);
            ll_model_free(m);
        }
}

int main(void) {
    rng_state = 0xD1B54A32D192ED03ull;
    fuzz_dequantizers();
    fuzz_gemm();
    corrupt_models();
    return test_summary("test_quant_fuzz");
}
