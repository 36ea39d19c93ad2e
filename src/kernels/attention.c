/* Attention over packed sequences, forward and backward, as small matrix
 * products per (sequence, head, chunk of up to QUERY_CHUNK queries): scores
 * S = scale Q K^T, P = softmax(S) row by row (causal: keys up to the query),
 * O = P V; backward dP = dO V^T, dS = P (dP - rowsum(P dP)) scale,
 * dQ += dS K, dK += dS^T Q, dV += P^T dO. The products go through the packed
 * GEMM kernel on the calling thread (ll_gemm_serial); threads take tasks. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels/kernels.h"

/* Queries per task: bounds the scratch to QUERY_CHUNK x max_len scores, and
 * splits one long sequence over the threads. */
enum { QUERY_CHUNK = 64 };

size_t ll_attention_scratch_floats(size_t max_len) {
    return (size_t)omp_get_max_threads() * 2 * QUERY_CHUNK * max_len;
}

/* The keys [*lo, *hi) query i of a sequence of len tokens sees under mask m. */
static void visible_keys(const ll_attn_mask *m, size_t i, size_t len, size_t *lo, size_t *hi) {
    const size_t w = m->window > 0 ? (size_t)m->window : 0;
    *lo = w && i + 1 > w ? i + 1 - w : 0;
    *hi = m->causal ? i + 1 : w && i + w < len ? i + w : len;
}

/* The keys [*k0, *k1) any query of [q0, q0 + nq) sees: one chunk's scores. */
static void chunk_keys(const ll_attn_mask *m, size_t q0, size_t nq, size_t len, size_t *k0, size_t *k1) {
    size_t lo, hi;
    visible_keys(m, q0, len, k0, &hi);
    visible_keys(m, q0 + nq - 1, len, &lo, k1);
}

/* Rows r of S (nq x nk; query q0 + r, keys from k0) become softmax over the
 * keys the query sees, zero elsewhere. Not inlined (nor ds_rows): the full
 * and the last-query kernels run one compiled body, so a row's reductions
 * are vectorised alike in both. */
__attribute__((noinline)) static void softmax_rows(float *S, size_t nq, size_t nk, const ll_attn_mask *m, size_t q0,
                                                   size_t k0, size_t len) {
    for (size_t r = 0; r < nq; r++) {
        float *row = S + r * nk;
        size_t lo, hi;
        visible_keys(m, q0 + r, len, &lo, &hi);
        lo -= k0, hi -= k0;
        for (size_t j = 0; j < lo; j++) row[j] = 0.0f;
        float *vis = row + lo;
        const size_t n = hi - lo;
        float mx = -INFINITY;
        for (size_t j = 0; j < n; j++) mx = vis[j] > mx ? vis[j] : mx;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (size_t j = 0; j < n; j++) sum += (vis[j] = ll_expf(vis[j] - mx));
        const float inv = 1.0f / sum;
#pragma omp simd
        for (size_t j = 0; j < n; j++) vis[j] *= inv;
        for (size_t j = hi; j < nk; j++) row[j] = 0.0f;
    }
}

float ll_attn_scale(const ll_attn_mask *m, int head_dim) {
    return m->scale > 0 ? m->scale : 1.0f / sqrtf((float)head_dim);
}

/* dS = P (dP - rowsum(P dP)) scale, in place of dP, rows of nk. */
__attribute__((noinline)) static void ds_rows(const float *P, float *dP, size_t nq, size_t nk, float scale) {
    for (size_t r = 0; r < nq; r++) {
        const float *pr = P + r * nk;
        float *dr = dP + r * nk, pdp = 0.0f;
#pragma omp simd reduction(+ : pdp)
        for (size_t j = 0; j < nk; j++) pdp += pr[j] * dr[j];
#pragma omp simd
        for (size_t j = 0; j < nk; j++) dr[j] = pr[j] * (dr[j] - pdp) * scale;
    }
}

/* Number of query chunks of sequence s. */
static size_t chunks_of(const int32_t *seq_start, int s) {
    return ((size_t)(seq_start[s + 1] - seq_start[s]) + QUERY_CHUNK - 1) / QUERY_CHUNK;
}

void ll_attention_forward(float *out, const float *q, const float *k, const float *v, const int32_t *seq_start,
                          int n_seqs, int n_heads, int n_kv_heads, int head_dim, const ll_attn_mask *mask,
                          float *scratch, size_t max_len) {
    const int group = n_heads / n_kv_heads;
    const size_t qd = (size_t)n_heads * head_dim, kvd = (size_t)n_kv_heads * head_dim, hd = (size_t)head_dim;
    const float scale = ll_attn_scale(mask, head_dim);
    size_t n_tasks = 0; /* (sequence, head, chunk), sequence-major */
    for (int s = 0; s < n_seqs; s++) n_tasks += chunks_of(seq_start, s) * n_heads;
#pragma omp parallel
    {
        float *S = scratch + (size_t)omp_get_thread_num() * 2 * QUERY_CHUNK * max_len;
        int s = 0;
        size_t s_first = 0; /* index of sequence s's first task */
#pragma omp for schedule(dynamic, 1)
        for (size_t task = 0; task < n_tasks; task++) {
            if (task < s_first) s = 0, s_first = 0; /* the dynamic schedule may move backwards */
            while (task >= s_first + chunks_of(seq_start, s) * n_heads) s_first += chunks_of(seq_start, s++) * n_heads;
            const size_t a = (size_t)seq_start[s], len = (size_t)seq_start[s + 1] - a;
            const size_t chunks = chunks_of(seq_start, s), local = task - s_first;
            const int h = (int)(local / chunks), kh = h / group;
            const size_t t0 = a + (local % chunks) * QUERY_CHUNK;
            const size_t nq = t0 + QUERY_CHUNK < a + len ? QUERY_CHUNK : a + len - t0;
            size_t k0, k1; /* keys any query of the chunk sees */
            chunk_keys(mask, t0 - a, nq, len, &k0, &k1);
            const size_t nk = k1 - k0;
            const float *qh = q + t0 * qd + (size_t)h * hd, *kh_ = k + (a + k0) * kvd + (size_t)kh * hd,
                        *vh = v + (a + k0) * kvd + (size_t)kh * hd;
            ll_gemm_serial(0, 1, nq, nk, hd, scale, qh, qd, kh_, kvd, 0.0f, S, nk);
            softmax_rows(S, nq, nk, mask, t0 - a, k0, len);
            ll_gemm_serial(0, 0, nq, hd, nk, 1.0f, S, nk, vh, kvd, 0.0f, out + t0 * qd + (size_t)h * hd, qd);
        }
    }
}

void ll_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                           const float *v, const int32_t *seq_start, int n_seqs, int n_heads, int n_kv_heads,
                           int head_dim, const ll_attn_mask *mask, float *scratch, size_t max_len) {
    const int group = n_heads / n_kv_heads;
    const size_t qd = (size_t)n_heads * head_dim, kvd = (size_t)n_kv_heads * head_dim, hd = (size_t)head_dim;
    const float scale = ll_attn_scale(mask, head_dim);
    /* One task per (sequence, kv head): it owns that slice of dk and dv, so
     * no two threads write the same gradient. */
#pragma omp parallel
    {
        float *P = scratch + (size_t)omp_get_thread_num() * 2 * QUERY_CHUNK * max_len;
        float *dP = P + QUERY_CHUNK * max_len;
#pragma omp for schedule(dynamic, 1)
        for (size_t task = 0; task < (size_t)n_seqs * n_kv_heads; task++) {
            const int s = (int)(task / n_kv_heads), kh = (int)(task % n_kv_heads);
            const size_t a = (size_t)seq_start[s], len = (size_t)seq_start[s + 1] - a;
            for (int h = kh * group; h < (kh + 1) * group; h++)
                for (size_t t0 = a; t0 < a + len; t0 += QUERY_CHUNK) {
                    const size_t nq = t0 + QUERY_CHUNK < a + len ? QUERY_CHUNK : a + len - t0;
                    size_t k0, k1;
                    chunk_keys(mask, t0 - a, nq, len, &k0, &k1);
                    const size_t nk = k1 - k0;
                    const float *kh_ = k + (a + k0) * kvd + (size_t)kh * hd, *vh = v + (a + k0) * kvd + (size_t)kh * hd;
                    float *dkh = dk + (a + k0) * kvd + (size_t)kh * hd, *dvh = dv + (a + k0) * kvd + (size_t)kh * hd;
                    const float *qh = q + t0 * qd + (size_t)h * hd, *doh = dout + t0 * qd + (size_t)h * hd;
                    ll_gemm_serial(0, 1, nq, nk, hd, scale, qh, qd, kh_, kvd, 0.0f, P, nk);
                    softmax_rows(P, nq, nk, mask, t0 - a, k0, len);
                    ll_gemm_serial(0, 1, nq, nk, hd, 1.0f, doh, qd, vh, kvd, 0.0f, dP, nk);
                    ds_rows(P, dP, nq, nk, scale);
                    ll_gemm_serial(0, 0, nq, hd, nk, 1.0f, dP, nk, kh_, kvd, 1.0f, dq + t0 * qd + (size_t)h * hd,
                                   qd);
                    ll_gemm_serial(1, 0, nk, hd, nq, 1.0f, dP, nk, qh, qd, 1.0f, dkh, kvd);
                    ll_gemm_serial(1, 0, nk, hd, nq, 1.0f, P, nk, doh, qd, 1.0f, dvh, kvd);
                }
        }
    }
}

/* ---- the last query of each sequence alone ------------------------------------ */

/* Row offset (in scratch rows of nk) of the last query of a sequence of len
 * tokens within its query chunk: the full kernels compute that row there,
 * and the last-query kernels put it at the same place, so its reductions
 * see the same addresses (alignment) as well as the same values. */
static size_t last_row_in_chunk(size_t len) { return (len - 1) % QUERY_CHUNK; }

/* The last query's chunk in the full kernels: its keys [*k0, len) and the
 * query's row offset in the scratch (rows of len - k0 scores), so that the
 * last-query kernels compute its row at the same place with the same
 * operands, hence the same bits. */
static size_t last_row_keys(const ll_attn_mask *m, size_t len, size_t *k0) {
    const size_t q0 = (len - 1) / QUERY_CHUNK * QUERY_CHUNK;
    size_t k1;
    chunk_keys(m, q0, len - q0, len, k0, &k1);
    return last_row_in_chunk(len) * (len - *k0);
}

void ll_attention_forward_last(float *out, const float *q, const float *k, const float *v, const int32_t *seq_start,
                               int n_seqs, int n_heads, int n_kv_heads, int head_dim, const ll_attn_mask *mask,
                               float *scratch, size_t max_len) {
    const int group = n_heads / n_kv_heads;
    const size_t qd = (size_t)n_heads * head_dim, kvd = (size_t)n_kv_heads * head_dim, hd = (size_t)head_dim;
    const float scale = ll_attn_scale(mask, head_dim);
#pragma omp parallel
    {
        float *S0 = scratch + (size_t)omp_get_thread_num() * 2 * QUERY_CHUNK * max_len;
#pragma omp for schedule(dynamic, 1)
        for (size_t task = 0; task < (size_t)n_seqs * n_heads; task++) {
            const int s = (int)(task / n_heads), h = (int)(task % n_heads), kh = h / group;
            const size_t a = (size_t)seq_start[s], len = (size_t)seq_start[s + 1] - a, t = a + len - 1;
            size_t k0;
            float *S = S0 + last_row_keys(mask, len, &k0);
            const size_t nk = len - k0;
            ll_gemm_serial(0, 1, 1, nk, hd, scale, q + t * qd + (size_t)h * hd, qd,
                           k + (a + k0) * kvd + (size_t)kh * hd, kvd, 0.0f, S, nk);
            softmax_rows(S, 1, nk, mask, len - 1, k0, len);
            ll_gemm_serial(0, 0, 1, hd, nk, 1.0f, S, nk, v + (a + k0) * kvd + (size_t)kh * hd, kvd, 0.0f,
                           out + (size_t)s * qd + (size_t)h * hd, qd);
        }
    }
}

void ll_attention_backward_last(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                const float *v, const int32_t *seq_start, int n_seqs, int n_heads, int n_kv_heads,
                                int head_dim, const ll_attn_mask *mask, float *scratch, size_t max_len) {
    const int group = n_heads / n_kv_heads;
    const size_t qd = (size_t)n_heads * head_dim, kvd = (size_t)n_kv_heads * head_dim, hd = (size_t)head_dim;
    const float scale = ll_attn_scale(mask, head_dim);
#pragma omp parallel
    {
        float *P0 = scratch + (size_t)omp_get_thread_num() * 2 * QUERY_CHUNK * max_len;
#pragma omp for schedule(dynamic, 1)
        for (size_t task = 0; task < (size_t)n_seqs * n_kv_heads; task++) {
            const int s = (int)(task / n_kv_heads), kh = (int)(task % n_kv_heads);
            const size_t a = (size_t)seq_start[s], len = (size_t)seq_start[s + 1] - a, t = a + len - 1;
            size_t k0;
            float *P = P0 + last_row_keys(mask, len, &k0), *dP = P + QUERY_CHUNK * max_len;
            const size_t nk = len - k0;
            const float *kh_ = k + (a + k0) * kvd + (size_t)kh * hd, *vh = v + (a + k0) * kvd + (size_t)kh * hd;
            float *dkh = dk + (a + k0) * kvd + (size_t)kh * hd, *dvh = dv + (a + k0) * kvd + (size_t)kh * hd;
            for (int h = kh * group; h < (kh + 1) * group; h++) {
                const float *qh = q + t * qd + (size_t)h * hd, *doh = dout + (size_t)s * qd + (size_t)h * hd;
                ll_gemm_serial(0, 1, 1, nk, hd, scale, qh, qd, kh_, kvd, 0.0f, P, nk);
                softmax_rows(P, 1, nk, mask, len - 1, k0, len);
                ll_gemm_serial(0, 1, 1, nk, hd, 1.0f, doh, qd, vh, kvd, 0.0f, dP, nk);
                ds_rows(P, dP, 1, nk, scale);
                ll_gemm_serial(0, 0, 1, hd, nk, 1.0f, dP, nk, kh_, kvd, 1.0f, dq + t * qd + (size_t)h * hd, qd);
                ll_gemm_serial(1, 0, nk, hd, 1, 1.0f, dP, nk, qh, qd, 1.0f, dkh, kvd);
                ll_gemm_serial(1, 0, nk, hd, 1, 1.0f, P, nk, doh, qd, 1.0f, dvh, kvd);
            }
        }
    }
}
