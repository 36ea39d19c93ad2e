/* Finite-difference checks of every backward kernel: for a random projection
 * r, L = sum(r * y(x)); the analytic dL/dx must agree with central
 * differences, norm-wise relative error <= 1e-3. */
#include "kernels/kernels.h"
#include "lsllama.h"
#include "model/rope_freq.h"
#include "test_util.h"

static unsigned long long rng_state = 42;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
}
static void fill(float *a, size_t n, float s) {
    for (size_t i = 0; i < n; i++) a[i] = s * frand();
}

typedef void (*forward_fn)(void *ctx, const float *x, float *y);

/* Central differences of L = sum(r*y) w.r.t. every x[i]. */
static double fd_check(const char *name, forward_fn f, void *ctx, float *x, size_t nx, size_t ny, const float *r,
                       const float *analytic) {
    float *y = malloc(ny * sizeof(float));
    double num2 = 0, den2 = 0;
    for (size_t i = 0; i < nx; i++) {
        const float save = x[i], h = 1e-2f * (fabsf(save) > 1 ? fabsf(save) : 1);
        double lp = 0, lm = 0;
        x[i] = save + h;
        f(ctx, x, y);
        for (size_t j = 0; j < ny; j++) lp += (double)r[j] * y[j];
        x[i] = save - h;
        f(ctx, x, y);
        for (size_t j = 0; j < ny; j++) lm += (double)r[j] * y[j];
        x[i] = save;
        const double g = (lp - lm) / (2.0 * h);
        num2 += (g - analytic[i]) * (g - analytic[i]);
        den2 += g * g;
    }
    free(y);
    const double rel = sqrt(num2 / (den2 > 1e-30 ? den2 : 1e-30));
    printf("%-28s relative error %.2e\n", name, rel);
    CHECK_MSG(rel <= 1e-3, "%s: relative error %.3g", name, rel);
    return rel;
}

/* ---- rmsnorm ---- */
typedef struct { const float *w; size_t T, C; } norm_ctx;
static void norm_f(void *c, const float *x, float *y) {
    norm_ctx *n = c;
    ll_rmsnorm_forward(y, x, n->w, n->T, n->C, 1e-5f);
}

/* ---- rope ---- */
typedef struct { const int32_t *pos; const float *cs, *sn; size_t T; int nh, hd; } rope_ctx;
static void rope_f(void *c, const float *x, float *y) {
    rope_ctx *r = c;
    memcpy(y, x, r->T * r->nh * r->hd * sizeof(float));
    ll_rope_forward(y, r->pos, r->cs, r->sn, r->T, r->nh, r->hd);
}

/* ---- attention: differentiate w.r.t. the concatenation [q | k | v] ---- */
typedef struct { const int32_t *ss; int n_seqs, nh, nkv, hd; ll_attn_mask mask; size_t T, max_len; float *scratch; } att_ctx;
static void att_f(void *c, const float *x, float *y) {
    att_ctx *a = c;
    const size_t qn = a->T * a->nh * a->hd, kn = a->T * a->nkv * a->hd;
    ll_attention_forward(y, x, x + qn, x + qn + kn, a->ss, a->n_seqs, a->nh, a->nkv, a->hd, &a->mask, a->scratch,
                         a->max_len);
}

/* ---- gated activation (SwiGLU, GeGLU, ReGLU): w.r.t. [g | u] ---- */
typedef struct { size_t n; int act; } glu_ctx;
static void glu_f(void *c, const float *x, float *y) {
    glu_ctx *g = c;
    ll_glu_forward(y, x, x + g->n, g->n, g->act);
}

/* ---- pooling ---- */
typedef struct { const int32_t *ss; int n, pool; size_t C; } pool_ctx;
static void pool_f(void *c, const float *x, float *y) {
    pool_ctx *p = c;
    ll_pool_forward(y, NULL, x, p->ss, p->n, p->C, p->pool);
}

/* ---- linear ---- */
typedef struct { const float *W; size_t T, in, out; } lin_ctx;
static void lin_f(void *c, const float *x, float *y) {
    lin_ctx *l = c;
    const ll_matrix w = {LL_DTYPE_F32, l->W, l->out, l->in, l->in, LL_DTYPE_F32};
    ll_linear_forward(y, x, &w, NULL, l->T, l->in, l->out, 0);
}

int main(void) {
    const size_t T = 9, C = 12;
    float x[T * C], w[C], r[T * C], dx[T * C];
    fill(x, T * C, 2.0f);
    fill(w, C, 1.0f);
    fill(r, T * C, 1.0f);
    memset(dx, 0, sizeof dx);
    ll_rmsnorm_backward(dx, r, x, w, T, C, 1e-5f);
    norm_ctx nc = {w, T, C};
    fd_check("rmsnorm", norm_f, &nc, x, T * C, T * C, r, dx);

    /* rope: 3 heads of dim 6, positions 0..8 */
    const int nh = 3, hd = 6;
    float inv[3], cs[20 * 3], sn[20 * 3], xr[T * 18], rr[T * 18], dxr[T * 18];
    ll_config cfg = {.head_dim = hd, .rope_theta = 10000.0f};
    ll_rope_inv_freq(inv, &cfg, NULL);
    ll_rope_tables(cs, sn, inv, hd / 2, 20);
    int32_t pos[T];
    for (size_t t = 0; t < T; t++) pos[t] = (int32_t)(t * 2 % 20);
    fill(xr, T * 18, 1.0f);
    fill(rr, T * 18, 1.0f);
    memcpy(dxr, rr, sizeof rr);
    ll_rope_backward(dxr, pos, cs, sn, T, nh, hd);
    rope_ctx rc = {pos, cs, sn, T, nh, hd};
    fd_check("rope", rope_f, &rc, xr, T * 18, T * 18, rr, dxr);

    /* attention: 2 sequences (lengths 4 and 5), 4 heads, 2 kv heads, hd 4; then
     * a 70-token sequence (more than one 64-query chunk of the forward pass)
     * and a 3-token one, 2 heads sharing 1 kv head, hd 8 */
    struct { size_t T; int n_seqs; int32_t ss[3]; int nh, nkv, hd; } att_cases[] = {
        {9, 2, {0, 4, 9}, 4, 2, 4},
        {73, 2, {0, 70, 73}, 2, 1, 8},
    };
    for (int c = 0; c < 2; c++)
        for (int mode = 0; mode < 4; mode++) {
            /* causal and bidirectional; then with a window of 5 keys (either way) and a scale of its own */
            const int causal = mode & 1;
            const ll_attn_mask mask = {causal, mode & 2 ? 5 : 0, mode & 2 ? 0.3f : 0.0f};
            const size_t aT = att_cases[c].T, max_len = (size_t)(att_cases[c].ss[1] > 5 ? 70 : 8);
            const int ah = att_cases[c].nh, akv = att_cases[c].nkv, ahd = att_cases[c].hd;
            const int32_t *ss = att_cases[c].ss;
            const size_t qn = aT * ah * ahd, kn = aT * akv * ahd;
            float *qkv = malloc((qn + 2 * kn) * sizeof(float)), *g = calloc(qn + 2 * kn, sizeof(float));
            float *ro = malloc(qn * sizeof(float));
            float *scratch = malloc(ll_attention_scratch_floats(max_len) * sizeof(float));
            fill(qkv, qn + 2 * kn, 1.5f);
            fill(ro, qn, 1.0f);
            ll_attention_backward(g, g + qn, g + qn + kn, ro, qkv, qkv + qn, qkv + qn + kn, ss, att_cases[c].n_seqs, ah, akv, ahd,
                                  &mask, scratch, max_len);
            att_ctx ac = {ss, att_cases[c].n_seqs, ah, akv, ahd, mask, aT, max_len, scratch};
            char name[64];
            snprintf(name, sizeof name, "attention %s%s, %zu tokens", causal ? "causal" : "bidirectional",
                     mask.window ? " window 5" : "", aT);
            fd_check(name, att_f, &ac, qkv, qn + 2 * kn, qn, ro, g);
            free(qkv), free(g), free(ro), free(scratch);
        }

    /* gated activations: every hidden_act the loader accepts (relu's kink
     * at 0 kept out of the difference step) */
    static const struct { int act; const char *name; } acts[] = {
        {LL_ACT_SILU, "glu silu"}, {LL_ACT_GELU, "glu gelu (erf)"}, {LL_ACT_GELU_TANH, "glu gelu (tanh)"},
        {LL_ACT_RELU, "glu relu"}};
    for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++) {
        const size_t n = 40;
        float gu[2 * n], dgu[2 * n], rh[n];
        fill(gu, 2 * n, 3.0f);
        for (size_t i = 0; i < n; i++)
            if (fabsf(gu[i]) < 0.1f) gu[i] += gu[i] < 0 ? -0.2f : 0.2f;
        fill(rh, n, 1.0f);
        memset(dgu, 0, sizeof dgu);
        ll_glu_backward(dgu, dgu + n, rh, gu, gu + n, n, acts[ai].act);
        glu_ctx gc = {n, acts[ai].act};
        fd_check(acts[ai].name, glu_f, &gc, gu, 2 * n, n, rh, dgu);
    }

    /* pooling: every mode, sequences of 1, 3 and 5 rows; distinct values so
     * no maximum is tied */
    for (int pool = 0; pool < 4; pool++) {
        int32_t ss[4] = {0, 1, 4, 9};
        const size_t PC = 6;
        float hx[9 * PC], rp[3 * PC], am_buf[1], dh[9 * PC];
        int32_t am[3 * PC];
        (void)am_buf;
        for (size_t i = 0; i < 9 * PC; i++) hx[i] = (float)((i * 7919) % 97) * 0.05f - 2.0f;
        fill(rp, 3 * PC, 1.0f);
        float pooled[3 * PC];
        ll_pool_forward(pooled, am, hx, ss, 3, PC, pool);
        memset(dh, 0, sizeof dh);
        ll_pool_backward(dh, rp, am, ss, 3, PC, pool);
        pool_ctx pc = {ss, 3, pool, PC};
        const char *names[] = {"pool last", "pool mean", "pool max", "pool first"};
        fd_check(names[pool], pool_f, &pc, hx, 9 * PC, 3 * PC, rp, dh);
    }

    /* linear (input gradient of a frozen weight) */
    const size_t in = 7, out = 5;
    float W[out * in], xl[T * in], rl[T * out], dxl[T * in];
    fill(W, out * in, 1.0f);
    fill(xl, T * in, 1.0f);
    fill(rl, T * out, 1.0f);
    memset(dxl, 0, sizeof dxl);
    const ll_matrix wm = {LL_DTYPE_F32, W, out, in, in, LL_DTYPE_F32};
    ll_linear_backward_input(dxl, rl, &wm, T, in, out, 1);
    lin_ctx lc = {W, T, in, out};
    fd_check("linear (input)", lin_f, &lc, xl, T * in, T * out, rl, dxl);
    return test_summary("test_grad_ops");
}
