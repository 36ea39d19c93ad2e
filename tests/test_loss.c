/* The loss module (src/model/loss.c) against PyTorch: F.cross_entropy with
 * ignore_index=-100, F.binary_cross_entropy_with_logits, their gradients by
 * autograd, softmax, sigmoid, argmax and a Linear head's backward, on random
 * logits and on magnitudes up to 1000 (fixture: tools/gen_fixtures_loss.py,
 * float64 references from the float32 inputs).
 *
 * Tolerances: what is computed in double (losses, probabilities) to 1e-12
 * relative; what is float (gradients) to 1e-6 of the tensor's largest
 * entry, since a gradient entry (p - 1) / n is only as exact as float(p). */
#include <stdint.h>

#include "io/safetensors.h"
#include "model/loss.h"
#include "test_util.h"

static const ll_st_file *fixture;

/* The tensor `name` of the fixture as a fresh array of n elements (checked against the file). */
static void *load(const char *name, const char *dtype, size_t elem_bytes, size_t *n) {
    const ll_st_tensor *t = ll_st_find(fixture, name);
    if (!t) fprintf(stderr, "fixture lacks %s\n", name);
    REQUIRE(t && !strcmp(t->dtype_name, dtype) && t->nbytes == t->n_elems * elem_bytes);
    void *v = malloc(t->nbytes ? t->nbytes : 1);
    REQUIRE(v);
    memcpy(v, t->data, t->nbytes);
    if (n) *n = (size_t)t->n_elems;
    return v;
}
static float *load_f32(const char *case_name, const char *what, size_t *n) {
    char name[64];
    snprintf(name, sizeof name, "%s_%s", case_name, what);
    return load(name, "F32", 4, n);
}
static double *load_f64(const char *case_name, const char *what, size_t *n) {
    char name[64];
    snprintf(name, sizeof name, "%s_%s", case_name, what);
    return load(name, "F64", 8, n);
}
static int32_t *load_i32(const char *case_name, const char *what, size_t *n) {
    char name[64];
    snprintf(name, sizeof name, "%s_%s", case_name, what);
    return load(name, "I32", 4, n);
}

static int close_rel(double got, double want, double rel) { return fabs(got - want) <= rel * fabs(want) + 1e-300; }

/* Float results against a float64 reference: within 1e-6 of the largest |want|. */
static void check_float_grad(const char *what, const float *got, const double *want, size_t n, double scale) {
    double top = 0;
    for (size_t i = 0; i < n; i++) top = fmax(top, fabs(want[i] * scale));
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i] * scale) <= 1e-6 * top) && bad++ < 3)
            fprintf(stderr, "%s[%zu]: got %.9g want %.9g\n", what, i, got[i], want[i] * scale);
    CHECK_MSG(bad == 0, "%s: %zu of %zu gradients off", what, bad, n);
}

static void check_double_rel(const char *what, const double *got, const double *want, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        if (!close_rel(got[i], want[i], 1e-12) && bad++ < 3)
            fprintf(stderr, "%s[%zu]: got %.17g want %.17g\n", what, i, got[i], want[i]);
    CHECK_MSG(bad == 0, "%s: %zu of %zu values off", what, bad, n);
}

/* Probabilities of every row: softmax, its top class, sigmoid. */
static void check_probabilities(const char *cs, const float *z, size_t N, size_t K) {
    double *want_p = load_f64(cs, "softmax", NULL), *want_s = load_f64(cs, "sigmoid", NULL);
    int32_t *want_best = load_i32(cs, "argmax", NULL);
    double *p = malloc(N * K * sizeof *p), *s = malloc(N * K * sizeof *s);
    for (size_t r = 0; r < N; r++) {
        const float *row = z + r * K;
        const size_t best = ll_softmax_row(p + r * K, row, K);
        size_t top_best = K;
        const double top = ll_softmax_top(row, K, &top_best);
        CHECK_MSG(best == (size_t)want_best[r] && ll_argmax_row(row, K) == best && top_best == best,
                  "%s row %zu: argmax %zu, torch %d", cs, r, best, want_best[r]);
        CHECK_MSG(top == p[r * K + best], "%s row %zu: top probability %.17g != p[best] %.17g", cs, r, top,
                  p[r * K + best]);
        ll_sigmoid_row(s + r * K, row, K);
    }
    char what[64];
    snprintf(what, sizeof what, "%s softmax", cs);
    check_double_rel(what, p, want_p, N * K);
    snprintf(what, sizeof what, "%s sigmoid", cs);
    check_double_rel(what, s, want_s, N * K);
    free(p), free(s), free(want_p), free(want_s), free(want_best);
}

static void check_cross_entropy(const char *cs) {
    size_t NK, N;
    float *z = load_f32(cs, "logits", &NK);
    int32_t *y = load_i32(cs, "labels", &N);
    const size_t K = NK / N;
    double *want_loss = load_f64(cs, "loss", NULL), *want_sum = load_f64(cs, "sum", NULL);
    double *want_grad = load_f64(cs, "grad", NULL);
    size_t want_n = 0;
    for (size_t r = 0; r < N; r++) want_n += y[r] != -100;

    double sum = 0.25; /* a forward adds into the caller's running sum */
    const size_t n = ll_crossentropy_forward(&sum, z, y, N, K);
    CHECK_MSG(n == want_n, "%s: %zu labelled rows, expected %zu", cs, n, want_n);
    CHECK_MSG(close_rel(sum - 0.25, want_sum[0], 1e-12), "%s: sum %.17g, torch %.17g", cs, sum - 0.25, want_sum[0]);
    CHECK_MSG(close_rel((sum - 0.25) / (double)n, want_loss[0], 1e-12), "%s: mean %.17g, torch %.17g", cs,
              (sum - 0.25) / (double)n, want_loss[0]);
    double rows = 0;
    for (size_t r = 0; r < N; r++)
        if (y[r] >= 0) rows += ll_crossentropy_row(z + r * K, K, y[r]);
    CHECK_MSG(close_rel(rows, want_sum[0], 1e-12), "%s: rows add to %.17g, torch %.17g", cs, rows, want_sum[0]);

    float *dz = malloc(NK * sizeof *dz);
    char what[64];
    for (int pass = 0; pass < 2; pass++) { /* loss_scale 1, then 0.5 (gradient accumulation) */
        const float scale = pass ? 0.5f : 1.0f;
        for (size_t i = 0; i < NK; i++) dz[i] = 7.0f; /* overwritten, ignored rows included */
        ll_crossentropy_backward(dz, z, y, N, K, n, scale);
        snprintf(what, sizeof what, "%s grad (scale %g)", cs, scale);
        check_float_grad(what, dz, want_grad, NK, scale);
        for (size_t r = 0; r < N; r++)
            for (size_t k = 0; k < K && y[r] < 0; k++) CHECK_MSG(dz[r * K + k] == 0.0f, "%s: ignored row %zu", cs, r);
    }
    check_probabilities(cs, z, N, K);
    free(z), free(y), free(dz), free(want_loss), free(want_sum), free(want_grad);
}

/* Every row ignored: nothing added, a zero gradient (PyTorch's mean would be 0/0). */
static void check_all_ignored(void) {
    const float z[6] = {1, 2, 3, -80, 0, 80};
    const int32_t y[2] = {-100, -100};
    float dz[6] = {1, 1, 1, 1, 1, 1};
    double sum = 3.0;
    CHECK(ll_crossentropy_forward(&sum, z, y, 2, 3) == 0 && sum == 3.0);
    ll_crossentropy_backward(dz, z, y, 2, 3, 0, 1.0f);
    for (int i = 0; i < 6; i++) CHECK(dz[i] == 0.0f);
}

static void check_bce(const char *cs) {
    size_t NK, N;
    float *z = load_f32(cs, "logits", &NK), *y = load_f32(cs, "targets", NULL);
    double *want_loss = load_f64(cs, "loss", NULL), *want_sum = load_f64(cs, "sum", NULL);
    double *want_row = load_f64(cs, "rowmean", &N), *want_grad = load_f64(cs, "grad", NULL);
    const size_t K = NK / N;

    double sum = 0;
    ll_bce_logits_forward(&sum, z, y, N, K);
    CHECK_MSG(close_rel(sum, want_sum[0], 1e-12), "%s: sum %.17g, torch %.17g", cs, sum, want_sum[0]);
    CHECK_MSG(close_rel(sum / (double)NK, want_loss[0], 1e-12), "%s: training mean %.17g, torch %.17g", cs,
              sum / (double)NK, want_loss[0]);
    double *row = malloc(N * sizeof *row), eval_mean = 0;
    for (size_t r = 0; r < N; r++) eval_mean += (row[r] = ll_bce_logits_row_mean(z + r * K, y + r * K, K));
    char what[64];
    snprintf(what, sizeof what, "%s row means", cs);
    check_double_rel(what, row, want_row, N);
    CHECK_MSG(close_rel(eval_mean / (double)N, want_loss[0], 1e-12), "%s: evaluation mean %.17g, torch %.17g", cs,
              eval_mean / (double)N, want_loss[0]);

    float *dz = malloc(NK * sizeof *dz);
    ll_bce_logits_backward(dz, z, y, N, K, 0.5f);
    snprintf(what, sizeof what, "%s grad (scale 0.5)", cs);
    check_float_grad(what, dz, want_grad, NK, 0.5);

    int *pred = malloc(K * sizeof *pred);
    double *sig = malloc(K * sizeof *sig);
    for (size_t r = 0; r < N; r++) {
        ll_multilabel_predict(pred, z + r * K, K);
        ll_sigmoid_row(sig, z + r * K, K);
        for (size_t k = 0; k < K; k++) /* sigmoid > 0.5, except that a logit in (0, 2e-16) counts as positive */
            CHECK_MSG(pred[k] == (sig[k] > 0.5 || (z[r * K + k] > 0 && z[r * K + k] < 2e-16f)),
                      "%s [%zu, %zu]: predicted %d for logit %g", cs, r, k, pred[k], z[r * K + k]);
    }
    free(z), free(y), free(want_loss), free(want_sum), free(want_row), free(want_grad), free(row), free(dz);
    free(pred), free(sig);
}

static void check_head(void) {
    size_t ND, KD, K; /* x [N, D], W [K, D], dy [N, K], b [K] */
    float *x = load("head_x", "F32", 4, &ND), *W = load("head_W", "F32", 4, &KD), *dy = load("head_dy", "F32", 4, NULL);
    float *dW = load("head_dW0", "F32", 4, NULL), *db = load("head_db0", "F32", 4, &K);
    double *want_dW = load("head_dW", "F64", 8, NULL), *want_db = load("head_db", "F64", 8, NULL);
    double *want_dx = load("head_dx", "F64", 8, NULL);
    const size_t D = KD / K, N = ND / D;
    float *dx = malloc(ND * sizeof *dx);
    for (size_t i = 0; i < ND; i++) dx[i] = 7.0f; /* overwritten */
    ll_linear_head_backward(dx, dW, db, dy, x, W, N, D, K);
    check_float_grad("head dW (added to dW0)", dW, want_dW, KD, 1.0);
    check_float_grad("head db (added to db0)", db, want_db, K, 1.0);
    check_float_grad("head dx", dx, want_dx, ND, 1.0);
    /* No bias, no dx wanted: dW alone moves on by the same dW. */
    float *dW2 = load("head_dW0", "F32", 4, NULL);
    ll_linear_head_backward(NULL, dW2, NULL, dy, x, W, N, D, K);
    check_float_grad("head dW without bias or dx", dW2, want_dW, KD, 1.0);
    free(x), free(W), free(dy), free(dW), free(db), free(want_dW), free(want_db), free(want_dx), free(dx), free(dW2);
}

int main(void) {
    ll_st_file *f;
    ll_error err = {0};
    REQUIRE(ll_st_open(&f, LL_SOURCE_DIR "/tests/fixtures/loss/loss.safetensors", &err) == 0);
    fixture = f;
    const char *ce[] = {"ce_small", "ce_large", "ce_token", "ce_wide"};
    for (size_t i = 0; i < sizeof ce / sizeof ce[0]; i++) check_cross_entropy(ce[i]);
    check_all_ignored();
    const char *bce[] = {"bce_small", "bce_large", "bce_k1"};
    for (size_t i = 0; i < sizeof bce / sizeof bce[0]; i++) check_bce(bce[i]);
    check_head();
    ll_st_close(f);
    return test_summary("test_loss");
}
