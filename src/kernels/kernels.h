/* Compute kernels: one file per op family, each op's forward beside its
 * backward (linear.c, rmsnorm.c, rope.c, attention.c, glu.c, pool.c), the
 * matrix products in gemm.c, small vector helpers inline below. Kernels know
 * nothing of models: they take plain arrays, shapes and tables.
 *
 * Shapes are in the comments; T = tokens in the packed batch (sequences laid
 * end to end, sequence s spanning rows seq_start[s]..seq_start[s+1]),
 * row-major throughout. Each *_backward ADDS into the input gradients it
 * produces (callers zero them once per step), so residual branches need no
 * extra add; ll_pool_backward alone overwrites (see it). The base weights are
 * frozen: backward kernels produce input gradients only. */
#ifndef LL_KERNELS_H
#define LL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "cpu/cpu_check.h"
#include "io/dtype.h"

/* ---- matrix products (gemm.c) --------------------------------------------- */

/* A frozen weight matrix in its stored element type (io/dtype.h): rows x
 * cols elements, row r starting at data + r * ld_blocks * block_bytes; cols
 * is a whole number of the type's blocks (checked at load). The memory is
 * the model's (often a read-only file mapping). */
typedef struct ll_matrix {
    ll_dtype dtype;
    const void *data;
    size_t rows, cols;
    size_t ld_blocks; /* row stride in blocks (cols / block_elems for a dense matrix) */
    /* The type its products run in: LL_DTYPE_F32 (0, the default) or
     * LL_DTYPE_BF16 (both operands rounded to bf16, f32 accumulation; only
     * where ll_gemm_bf16_supported()). */
    ll_dtype compute;
} ll_matrix;

/* Row r of w: where its first block starts. */
static inline const void *ll_matrix_row(const ll_matrix *w, size_t r) {
    return (const char *)w->data + r * w->ld_blocks * ll_dtype_block_bytes(w->dtype);
}

/* Row r of w as f32 values dst[w->cols]. */
static inline void ll_matrix_row_f32(const ll_matrix *w, size_t r, float *dst) {
    ll_dequantize(w->dtype, ll_matrix_row(w, r), dst, w->cols);
}

/* The f32 product (gemm.c: the packed kernel for the CPU, AVX-512 or
 * AVX2/FMA; OpenBLAS for thin shapes, on CPUs without AVX2, or with
 * LSLLAMA_GEMM=blas): C[M,N] = alpha * op(A) op(B) + beta * C, row-major,
 * op = transpose if t*. The packed kernels' results do not depend on the
 * thread count. */
void ll_gemm(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
             const float *B, size_t ldb, float beta, float *C, size_t ldc);
/* The same product by the calling thread alone, whatever its shape (for the
 * many small products of attention, run inside a parallel region). */
void ll_gemm_serial(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                    const float *B, size_t ldb, float beta, float *C, size_t ldc);
/* C[M,N] = alpha * op(A) op(W) + beta * C with W a weight in its stored type:
 * tw = 1: op(W) = W^T (the forward x W^T: N = W->rows, K = W->cols);
 * tw = 0: op(W) = W (the input gradient dy W: K = W->rows, N = W->cols).
 * Each KC x NC block of op(W) is dequantized while it is packed; the result
 * is bit-identical to ll_gemm's packed kernel on the dequantized f32 matrix,
 * and independent of the thread count. Always a packed kernel: AVX-512, else
 * AVX2/FMA, else portable C (LSLLAMA_GEMM=avx2 or =c chooses a narrower one).
 * W->compute = LL_DTYPE_BF16: the AVX512-BF16 kernel (vdpbf16ps): A and
 * op(W) rounded to bf16 (nearest even) while packing, products summed in f32
 * two k at a time (gemm.c gives the exact order); the caller must have
 * checked ll_gemm_bf16_supported() (the process aborts otherwise). */
void ll_gemm_weights(int ta, int tw, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                     const ll_matrix *W, float beta, float *C, size_t ldc);
/* The forward products of several weights that read the same input (q, k,
 * v; gate, up) as one: C[s][M, W[s]->rows] = alpha * op(A) W[s]^T + beta *
 * C[s] (leading dimension ldc[s]) for s < n <= LL_FUSED_MAX, every W[s] with
 * K columns. The weights are one stacked op(B) to the kernel: op(A) is
 * packed (and, in bf16, converted) once instead of n times, and threads
 * split the whole. Each element is computed exactly as by its own
 * ll_gemm_weights call (bit-identical); where that cannot be promised (a
 * segment that is not whole tiles, mixed compute types, one weight) it is
 * n such calls. */
enum { LL_FUSED_MAX = 3 };
void ll_gemm_weights_fused(int ta, size_t M, size_t K, float alpha, const float *A, size_t lda,
                           const ll_matrix *const *W, size_t n, float beta, float *const *C, const size_t *ldc);
/* 1 when the CPU has the instructions of bf16 products (AVX512-BF16), else 0. */
int ll_gemm_bf16_supported(void);
/* The kernel of bf16 products: "amx_bf16" (AMX tiles, where the CPU and OS
 * allow them), "avx512_bf16" (vdpbf16ps) or "none". */
const char *ll_gemm_bf16_backend(void);
/* ll_gemm's kernel: "avx512", "avx2" (packed kernels, results independent of
 * the thread count), "c" (only when LSLLAMA_GEMM=c) or "openblas". */
const char *ll_gemm_backend(void);
/* The depth KC of ll_gemm's K slices (the f32 kernel's: 1024 for avx2, 256
 * for the others): a product with K above it is summed slice by slice
 * (k = 0..KC-1, KC..2KC-1, ...), C = alpha * (the slice's sum) + C after each
 * (the packed kernels; OpenBLAS's order is its own). */
size_t ll_gemm_k_slice(void);
/* ll_gemm_weights' kernel for f32 products: "avx512", "avx2" or "c". */
const char *ll_gemm_weights_backend(void);

/* ---- vector helpers (inline) ---------------------------------------------- */

/* sum a[i] b[i], vectorised (lane-wise partial sums: its rounding differs
 * from a serial loop's, and is the same on every run). */
static inline float ll_dot(const float *a, const float *b, int n) {
    float d = 0.0f;
#pragma omp simd reduction(+ : d)
    for (int i = 0; i < n; i++) d += a[i] * b[i];
    return d;
}

/* Index of the first NaN or infinity in x[n], or n when all are finite. */
static inline size_t ll_first_nonfinite(const float *x, size_t n) {
    const size_t block = 4096;
    for (size_t b = 0; b < n; b += block) { /* a vectorised test per block, the exact index only on a hit */
        const size_t e = b + block < n ? b + block : n;
        int any = 0;
#pragma omp simd reduction(| : any)
        for (size_t i = b; i < e; i++) any |= !(x[i] - x[i] == 0.0f); /* inf - inf and NaN - NaN are NaN */
        if (any)
            for (size_t i = b; i < e; i++)
                if (!(x[i] - x[i] == 0.0f)) return i;
    }
    return n;
}

/* e^x in plain arithmetic that vectorises under omp simd (glibc's expf only
 * does with -ffast-math): 2^n e^r, |r| <= ln2/2, e^r by its degree-7 Taylor
 * polynomial; relative error about 2e-7 (a few ulp). x is clamped to
 * [-87, 88], where 2^n stays a normal float: e^-87 ~ 1.6e-38 stands for 0
 * (and for e^-inf), e^88 ~ 1.7e38 for e^+inf. NaN gives NaN, so non-finite
 * inputs stay visible downstream (and the integer conversion below never sees
 * a NaN, which would be undefined behaviour). */
static inline float ll_expf(float x) {
    const float in = x;
    x = x != x ? 0.0f : x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    const float n = __builtin_rintf(x * 1.44269504088896341f);
    const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f; /* ln 2 in two parts */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union {
        int32_t i;
        float f;
    } two_n = {.i = ((int32_t)n + 127) << 23};
    return in != in ? in : p * two_n.f;
}

/* ---- linear (linear.c) ----------------------------------------------------- */

/* y[T,out] = x[T,in] W[out,in]^T (+ b[out]) ; accumulate: y += instead of = */
void ll_linear_forward(float *y, const float *x, const ll_matrix *W, const float *b, size_t T, size_t in, size_t out,
                       int accumulate);
/* y[T,out] += b[out] on every row. */
void ll_add_bias(float *y, const float *b, size_t T, size_t out);
/* The same for an f32 W[out,in] (the classifier head), by ll_gemm. */
void ll_linear_forward_f32(float *y, const float *x, const float *W, const float *b, size_t T, size_t in, size_t out,
                           int accumulate);
/* dx[T,in] = dy[T,out] W[out,in], or += with accumulate (frozen weight: no weight gradient) */
void ll_linear_backward_input(float *dx, const float *dy, const ll_matrix *W, size_t T, size_t in, size_t out,
                              int accumulate);
/* x[T,D] = rows tokens[t] of the embedding matrix E [vocab, D], dequantized. */
void ll_embedding_lookup(float *x, const ll_matrix *E, const int32_t *tokens, size_t T);
/* dE[tokens[t]] += dx[t] for t < T (dE [vocab, D], dx [T, D]): each element summed over t in order, whatever the
 * thread count. */
void ll_embedding_backward(float *dE, const float *dx, const int32_t *tokens, size_t T, size_t D);

/* ---- RMSNorm (rmsnorm.c) --------------------------------------------------- */

/* y[T,C] = x / rms(x) * w[C], per row. */
void ll_rmsnorm_forward(float *y, const float *x, const float *w, size_t T, size_t C, float eps);
/* dx[T,C] += d/dx of y = x / rms(x) * w given dy[T,C]; x[T,C] is the norm's input. */
void ll_rmsnorm_backward(float *dx, const float *dy, const float *x, const float *w, size_t T, size_t C, float eps);
/* dw[C] += sum over rows t of dy[t] * (x[t] / rms(x row t)): the weight's gradient (rms as the forward pass computes
 * it), each element summed over t in order, whatever the thread count. row_scale: scratch of T floats (it receives
 * each row's 1 / rms). */
void ll_rmsnorm_weight_grad(float *dw, const float *dy, const float *x, size_t T, size_t C, float eps,
                            float *row_scale);

/* ---- rotary position embedding (rope.c) ------------------------------------ */

/* cos/sin tables [n_pos, half] from inv_freq[half] (model/rope_freq.h computes
 * inv_freq from a config). */
void ll_rope_tables(float *cos_t, float *sin_t, const float *inv_freq, int half, size_t n_pos);
/* Rotate-half RoPE in place on x[T, n_heads*head_dim]; pos[T] positions;
 * cos/sin tables [max_pos, head_dim/2]. */
void ll_rope_forward(float *x, const int32_t *pos, const float *cos_t, const float *sin_t, size_t T,
                     int n_heads, int head_dim);
/* In place on dx[T, n_heads*head_dim]: turn dL/d(rotated) into dL/d(unrotated)
 * (the inverse rotation). */
void ll_rope_backward(float *dx, const int32_t *pos, const float *cos_t, const float *sin_t, size_t T, int n_heads,
                      int head_dim);

/* ---- attention (attention.c) ----------------------------------------------- */

/* Which keys a query sees, and the scores' scale. Query i of a sequence of
 * len tokens sees key j iff (causal ? j <= i : j < len) and, with a window
 * W > 0, i - W < j (causal: transformers' sliding_window_overlay) or
 * |i - j| < W (bidirectional: Gemma 3's _bidirectional_window_overlay, W
 * already halved as Gemma3TextConfig does). */
typedef struct ll_attn_mask {
    int causal;
    int window; /* W; 0: none */
    float scale; /* scores = scale q k^T; 0: 1 / sqrt(head_dim) */
} ll_attn_mask;
/* The scale m gives heads of head_dim. */
float ll_attn_scale(const ll_attn_mask *m, int head_dim);

/* Floats of scratch the attention kernels need for sequences of up to
 * max_len tokens with omp_get_max_threads() threads. */
size_t ll_attention_scratch_floats(size_t max_len);
/* out[T, nh*hd] = softmax(scale q k^T + mask) v per sequence and head.
 * q [T, nh*hd], k/v [T, nkv*hd]; seq_start[n_seqs + 1]; the visible keys
 * and the scale: ll_attn_mask. scratch: ll_attention_scratch_floats. */
void ll_attention_forward(float *out, const float *q, const float *k, const float *v, const int32_t *seq_start,
                          int n_seqs, int n_heads, int n_kv_heads, int head_dim, const ll_attn_mask *mask,
                          float *scratch, size_t max_len);
/* Given dout [T, nh*hd] and the forward inputs q [T, nh*hd], k/v [T, nkv*hd]
 * (q and k after RoPE), add into dq [T, nh*hd], dk, dv [T, nkv*hd].
 * Probabilities are recomputed. scratch: ll_attention_scratch_floats. */
void ll_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                           const float *v, const int32_t *seq_start, int n_seqs, int n_heads, int n_kv_heads,
                           int head_dim, const ll_attn_mask *mask, float *scratch, size_t max_len);
/* Causal attention for the last query of each sequence alone (row
 * seq_start[s+1]-1 of q): out[n_seqs, nh*hd], row s bit for bit the row
 * ll_attention_forward (the same causal mask) writes at that query. */
void ll_attention_forward_last(float *out, const float *q, const float *k, const float *v, const int32_t *seq_start,
                               int n_seqs, int n_heads, int n_kv_heads, int head_dim, const ll_attn_mask *mask,
                               float *scratch, size_t max_len);
/* Its backward, given dout [n_seqs, nh*hd]: adds into dq at each sequence's
 * last row and into dk, dv [T, nkv*hd] exactly what ll_attention_backward
 * (causal) adds when dout is zero on every other row. */
void ll_attention_backward_last(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                const float *v, const int32_t *seq_start, int n_seqs, int n_heads, int n_kv_heads,
                                int head_dim, const ll_attn_mask *mask, float *scratch, size_t max_len);

/* ---- gated MLP activation (glu.c) ------------------------------------------ */

/* h[n] = act(g) * u (transformers' LlamaMLP: down(act(gate(x)) * up(x))) with
 * act an ll_activation (silu, gelu with erf, gelu's tanh approximation, relu;
 * formulas in lsllama.h); g and h may alias. */
void ll_glu_forward(float *h, const float *g, const float *u, size_t n, int act);
/* dg[n] = dh * u * act'(g), du[n] = dh * act(g) (written, not added); act'
 * is the exact derivative of the forward formula (relu'(0) = 0, as PyTorch). */
void ll_glu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n, int act);

/* ---- pooling (pool.c) ------------------------------------------------------ */

/* pooled[n, C] from hidden[T, C] per sequence (ll_pool: last, mean, max,
 * first). argmax (optional, [n, C]) records the source row of each max. */
void ll_pool_forward(float *pooled, int32_t *argmax, const float *hidden, const int32_t *seq_start, int n_seqs,
                     size_t C, int pool);
/* dhidden[T, C] = scatter of dpooled[n, C] (overwrites the entries it pools;
 * the only backward that does not add). */
void ll_pool_backward(float *dhidden, const float *dpooled, const int32_t *argmax, const int32_t *seq_start,
                      int n_seqs, size_t C, int pool);

#endif
