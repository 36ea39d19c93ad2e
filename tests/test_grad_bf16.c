/* Gradients in bf16 mode (--compute bf16) within what bf16 allows. The
 * tiny Llama fixture is loaded three ways: f32 (products in f32), bf16
 * compute (--compute bf16), and bf16 weights with f32 products
 * (--base-precision bf16: the rounding of the weights alone, a yardstick).
 * One training step of the same classifier (LoRA r = 2 on q, k, v, o, gate,
 * up, down with nonzero B, CE loss, pools last and mean, causal and
 * bidirectional) on each. The f32 gradients are the finite-difference
 * checked ones (test_grad_classifier). The bf16-compute gradients must:
 *  - differ from them (bf16 products really ran) by at most 6% norm-wise
 *    over all parameters, and by at most 8 times what rounding the weights
 *    alone does (bf16 compute also rounds activations and output gradients:
 *    2 to 4 times, measured);
 *  - per tensor, at most 20% (norm-wise, floored at 1% of the whole
 *    gradient's norm as test_grad_classifier does; measured at most 14%, on
 *    the small q_proj A gradients of this 3-layer random model: a wrong
 *    operand layout gives errors of order 1);
 *  - give the loss within 1e-2 relative.
 *
 * On a CPU without bf16 products, loading with compute = BF16 is refused
 * (LL_ERR_UNSUPPORTED, the message naming the instructions) and that is
 * what is checked. */
#include <omp.h>

#include "train/classifier.h"
#include "test_util.h"

#define TINY LL_SOURCE_DIR "/tests/fixtures/tiny_llama/hf"

static double norm_diff(const float *a, const float *b, size_t n, double *norm_b) {
    double d = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++) d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), s += (double)b[i] * b[i];
    *norm_b = sqrt(s);
    return sqrt(d);
}

int main(void) {
    omp_set_num_threads(2);
    ll_error err = {0};
    ll_model *mf, *mb, *mw;
    REQUIRE(ll_model_load(&mf, TINY, NULL, &err) == 0);
    const ll_load_options wbf16 = {.base_precision = LL_BASE_BF16};
    REQUIRE(ll_model_load(&mw, TINY, &wbf16, &err) == 0);
    const ll_load_options bf16 = {.compute = LL_COMPUTE_BF16};
    const int rc = ll_model_load(&mb, TINY, &bf16, &err);
    printf("bf16 kernel: %s\n", ll_compute_kernel(LL_COMPUTE_BF16));
    if (!ll_gemm_bf16_supported()) {
        CHECK_MSG(rc == LL_ERR_UNSUPPORTED && strstr(err.message, "AVX512-BF16"), "load in bf16: rc %d, %s", rc,
                  err.message);
        printf("no bf16 products on this CPU: the refusal was checked\n");
        ll_model_free(mw);
        ll_model_free(mf);
        return test_summary("test_grad_bf16");
    }
    REQUIRE(rc == 0);
    CHECK(ll_model_compute(mb) == LL_COMPUTE_BF16 && ll_model_compute(mf) == LL_COMPUTE_F32);
    const int L = ll_model_config(mf)->n_layers;
    int32_t tokens[] = {5, 17, 3, 88, 42, 9, 61, 2, 33, 70, 11, 12, 7, 19, 23, 4};
    int32_t starts[] = {0, 4, 5, 12, 16};
    ll_batch b = {tokens, starts, 4};
    int32_t labels[] = {2, 0, 1, 1};
    const ll_pool pools[] = {LL_POOL_LAST, LL_POOL_MEAN};
    for (int bidir = 0; bidir < 2; bidir++)
        for (int pi = 0; pi < 2; pi++) {
            ll_classifier_config cc = {.n_labels = 3, .pool = pools[pi], .bidirectional_from = bidir ? 0 : L,
                                       .head_bias = 1, .lora_r = 2, .lora_alpha = 8, .lora_targets = 0x7f};
            ll_classifier *cf, *cb, *cw;
            REQUIRE(ll_classifier_create(&cf, mf, &cc, 7, &err) == 0);
            REQUIRE(ll_classifier_create(&cb, mb, &cc, 7, &err) == 0);
            REQUIRE(ll_classifier_create(&cw, mw, &cc, 7, &err) == 0);
            REQUIRE(cf->n_params == cb->n_params);
            ll_classifier *all[3] = {cf, cb, cw};
            for (int ci = 0; ci < 3; ci++) /* B = 0 would hide the A gradients */
                for (size_t v = 0; v < all[ci]->n_views; v++)
                    if (strstr(all[ci]->views[v].name, "lora_B"))
                        for (int64_t i = 0; i < all[ci]->views[v].rows * all[ci]->views[v].cols; i++)
                            all[ci]->views[v].data[i] = 0.5f * (float)((i * 37 % 19) - 9) / 9.0f;
            CHECK(!memcmp(cf->params, cb->params, cf->n_params * sizeof(float)));
            memset(cf->grads, 0, cf->n_params * sizeof(float));
            memset(cb->grads, 0, cb->n_params * sizeof(float));
            memset(cw->grads, 0, cw->n_params * sizeof(float));
            float lf, lb, lw;
            REQUIRE(ll_classifier_train_step(cw, &b, labels, NULL, 1, 1.0f, &lw, &err) == 0);
            REQUIRE(ll_classifier_train_step(cf, &b, labels, NULL, 1, 1.0f, &lf, &err) == 0);
            REQUIRE(ll_classifier_train_step(cb, &b, labels, NULL, 1, 1.0f, &lb, &err) == 0);
            double gnorm;
            const double whole = norm_diff(cb->grads, cf->grads, cf->n_params, &gnorm) / gnorm;
            const double whole_w = norm_diff(cw->grads, cf->grads, cf->n_params, &gnorm) / gnorm;
            CHECK_MSG(whole <= 0.06 && whole > 0.0 && whole <= 8.0 * whole_w,
                      "%s pool %s: bf16 gradients off by %.3g (norm-wise; bf16 weights alone: %.3g)",
                      bidir ? "bidirectional" : "causal", pi ? "mean" : "last", whole, whole_w);
            double worst = 0.0;
            for (size_t v = 0; v < cf->n_views; v++) {
                const size_t off = (size_t)(cf->views[v].grad - cf->grads),
                             n = (size_t)(cf->views[v].rows * cf->views[v].cols);
                double nv;
                const double d = norm_diff(cb->grads + off, cf->grads + off, n, &nv);
                const double rel = d / (nv > 1e-2 * gnorm ? nv : 1e-2 * gnorm);
                if (rel > worst) worst = rel;
                CHECK_MSG(rel <= 0.2, "%s pool %s %s: relative error %.3g", bidir ? "bidirectional" : "causal",
                          pi ? "mean" : "last", cf->views[v].name, rel);
            }
            CHECK_MSG(fabs(lb - lf) <= 1e-2 * fabs(lf), "loss %.7g in bf16, %.7g in f32", lb, lf);
            printf("%-13s pool %-4s loss f32 %.6f bf16 %.6f; gradients: %.2e norm-wise (bf16 weights alone %.2e), "
                   "worst tensor %.2e\n", bidir ? "bidirectional" : "causal", pi ? "mean" : "last", lf, lb, whole,
                   whole_w, worst);
            ll_classifier_free(cf);
            ll_classifier_free(cb);
            ll_classifier_free(cw);
        }
    ll_model_free(mb);
    ll_model_free(mw);
    ll_model_free(mf);
    return test_summary("test_grad_bf16");
}
