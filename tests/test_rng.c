/* core/rng: splitmix64 matches the published reference stream, its pure
 * form agrees with the sequential one, the draws have the right range and
 * moments, and the dropout gradient uses exactly the forward's mask, also
 * where the input is 0 (where the output alone cannot tell a kept element
 * from a dropped one). */
#include "core/rng.h"
#include "test_util.h"

static void test_splitmix64(void) {
    /* Vigna's splitmix64.c from state 0 */
    const uint64_t expected[] = {0xE220A8397B1DCDAFull, 0x6E789E6AA1B965F4ull, 0x06C45D188009454Full};
    uint64_t state = 0;
    for (int i = 0; i < 3; i++) {
        const uint64_t key = state;
        const uint64_t got = ll_splitmix64_next(&state);
        CHECK_MSG(got == expected[i], "draw %d: %016llx", i, (unsigned long long)got);
        CHECK(ll_splitmix64_hash(key) == got);
    }
    CHECK(state == 3 * LL_SPLITMIX64_GAMMA);
}

static void test_uniform_normal(void) {
    uint64_t st = 42;
    double sum = 0, sum2 = 0, lo = 1, hi = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        const double u = ll_rng_uniform01(&st);
        lo = u < lo ? u : lo, hi = u > hi ? u : hi;
    }
    CHECK(lo > 0.0 && hi < 1.0 && lo < 1e-4 && hi > 1 - 1e-4);
    for (int i = 0; i < n; i++) {
        const double z = ll_rng_normal(&st);
        sum += z, sum2 += z * z;
    }
    const double mean = sum / n, var = sum2 / n - mean * mean;
    CHECK_MSG(fabs(mean) < 0.01 && fabs(var - 1) < 0.02, "normal: mean %g, variance %g", mean, var);
    /* two uniform draws per normal, the radius's first */
    uint64_t a = 9, b = 9;
    const double u1 = ll_rng_uniform01(&b), u2 = ll_rng_uniform01(&b);
    CHECK(ll_rng_normal(&a) == sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

static void test_dropout(void) {
    enum { N = 4096 };
    static float x[N], out[N], dy[N], dx[N], acc[N];
    for (int i = 0; i < N; i++) {
        x[i] = i % 7 == 0 ? 0.0f : (float)(i % 13) - 6.5f; /* every 7th element exactly 0 */
        dy[i] = 0.25f * (float)(i % 11) + 1.0f;            /* never 0 */
        acc[i] = 1.0f;
    }
    const float p = 0.3f;
    const ll_dropout d = ll_dropout_make(p, 0x1234, LL_SPLITMIX64_GAMMA);
    ll_dropout_forward(&d, out, x, N);
    int kept = 0, zero_kept = 0, zero_dropped = 0;
    for (int i = 0; i < N; i++) {
        const int k = ll_dropout_keeps(&d, i);
        kept += k;
        if (x[i] == 0.0f) zero_kept += k, zero_dropped += !k;
        CHECK(out[i] == (k ? x[i] * d.keep_scale : 0.0f));
    }
    CHECK_MSG(fabs(kept / (double)N - (1 - p)) < 0.03, "kept %d of %d", kept, N);
    CHECK(zero_kept > 0 && zero_dropped > 0); /* both cases of the read-back are exercised */
    /* the gradient: the same mask, hashed or read back */
    ll_dropout_backward(&d, dx, dy, x, out, N, 0);
    ll_dropout_backward(&d, acc, dy, x, out, N, 1);
    int wrong = 0, wrong_acc = 0;
    for (int i = 0; i < N; i++) {
        const float g = ll_dropout_keeps(&d, i) ? dy[i] * d.keep_scale : 0.0f;
        wrong += dx[i] != g;
        wrong_acc += acc[i] != 1.0f + g;
    }
    CHECK_MSG(wrong == 0 && wrong_acc == 0, "%d / %d gradients off the mask", wrong, wrong_acc);
    /* in place (dx == dy) */
    memcpy(dx, dy, sizeof dx);
    ll_dropout_backward(&d, dx, dx, x, out, N, 0);
    wrong = 0;
    for (int i = 0; i < N; i++) wrong += dx[i] != (ll_dropout_keeps(&d, i) ? dy[i] * d.keep_scale : 0.0f);
    CHECK_MSG(wrong == 0, "in place: %d gradients off the mask", wrong);
    /* another origin, another mask; p = 0 keeps everything unscaled */
    const ll_dropout e = ll_dropout_make(p, 0x1235, LL_SPLITMIX64_GAMMA);
    int same = 0;
    for (int i = 0; i < N; i++) same += ll_dropout_keeps(&d, i) == ll_dropout_keeps(&e, i);
    CHECK(same < N * 0.9);
    const ll_dropout none = ll_dropout_make(0.0f, 7, 1);
    ll_dropout_forward(&none, out, x, N);
    CHECK(memcmp(out, x, sizeof x) == 0);
}

int main(void) {
    test_splitmix64();
    test_uniform_normal();
    test_dropout();
    return test_summary("test_rng");
}
