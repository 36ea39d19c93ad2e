/* Finite differences through the whole classifier (stack + pooling + head +
 * cross-entropy / BCE): for every pooling (last, mean, max, first) in causal
 * and bidirectional modes, the analytic gradients of LoRA A, B (q and v) and
 * the score head match fourth-order central differences of the loss: error
 * norm <= 1e-3 x max(norm of the tensor's difference quotients, 1% of the
 * whole gradient's norm). The floor keeps float rounding in the loss from
 * dominating tensors whose gradient is tiny (q when attention is nearly
 * uniform). Max pooling is checked here through the head only (steps in
 * LoRA weights flip near-tied maxima of the tiny model); its backward is
 * checked against the hidden states in test_grad_ops. */
#include <omp.h>

#include "train/classifier.h"
#include "test_util.h"

static double loss_at(ll_classifier *c, const ll_batch *b, const int32_t *labels, const float *targets) {
    ll_error err;
    float loss;
    /* the gradient buffer is scratch here */
    REQUIRE(ll_classifier_train_step(c, b, labels, targets, 0, 1.0f, &loss, &err) == 0);
    return loss;
}

int main(void) {
    omp_set_num_threads(1);
    ll_model *m;
    ll_error err = {0};
    REQUIRE(ll_model_load(&m, LL_SOURCE_DIR "/tests/fixtures/tiny_llama/hf", NULL, &err) == 0);
    const int L = ll_model_config(m)->n_layers;
    int32_t tokens[] = {5, 17, 3, 88, 42, 9, 61, 2, 33, 70, 11, 12};
    int32_t starts[] = {0, 4, 5, 12};
    ll_batch b = {tokens, starts, 3};
    int32_t labels[] = {2, 0, 1};
    float targets[] = {1, 0, 1, 0, 0, 1, 1, 1, 0};
    const char *pools[] = {"last", "mean", "max", "first"};
    for (int multi = 0; multi < 2; multi++)
        for (int bidir = 0; bidir < 2; bidir++)
            for (int pool = 0; pool < 4; pool++) {
                if (multi && pool != 1) continue; /* BCE: one pooling is enough */
                ll_classifier_config cc = {.n_labels = 3, .pool = (ll_pool)pool, .bidirectional_from = bidir ? 0 : L,
                                           .head_bias = 1, .multi_label = multi, .lora_r = 2, .lora_alpha = 8,
                                           .lora_targets = (1u << LL_LORA_Q) | (1u << LL_LORA_V)};
                ll_classifier *c;
                REQUIRE(ll_classifier_create(&c, m, &cc, 3 + pool, &err) == 0);
                /* B = 0 would hide the A gradients: give B values */
                for (size_t v = 0; v < c->n_views; v++)
                    if (strstr(c->views[v].name, "lora_B"))
                        for (int64_t i = 0; i < c->views[v].rows * c->views[v].cols; i++)
                            c->views[v].data[i] = 0.5f * (float)((i * 37 % 19) - 9) / 9.0f;
                for (int64_t i = 0; i < c->views[0].rows; i++) c->head_b[i % 3] = 0.1f;
                memset(c->grads, 0, c->n_params * sizeof(float));
                float l0;
                REQUIRE(ll_classifier_train_step(c, &b, labels, targets, 0, 1.0f, &l0, &err) == 0);
                float *analytic = malloc(c->n_params * sizeof(float));
                memcpy(analytic, c->grads, c->n_params * sizeof(float));
                double gnorm = 0;
                for (size_t i = 0; i < c->n_params; i++) gnorm += (double)analytic[i] * analytic[i];
                gnorm = sqrt(gnorm);
                double worst = 0;
                for (size_t v = 0; v < c->n_views; v++) {
                    if (strstr(c->views[v].name, "layers.1.")) continue; /* layer 0 and the head */
                    if (pool == LL_POOL_MAX && strstr(c->views[v].name, "lora")) continue;
                    const int64_t n = c->views[v].rows * c->views[v].cols, stride = n > 12 ? n / 12 : 1;
                    float *prm = c->views[v].data;
                    const float *g = analytic + (c->views[v].grad - c->grads);
                    double num2 = 0, den2 = 0;
                    for (int64_t i = 0; i < n; i += stride) {
                        const float save = prm[i], h = 2e-2f;
                        const float offs[4] = {2 * h, h, -h, -2 * h};
                        double f[4];
                        for (int k = 0; k < 4; k++) {
                            prm[i] = save + offs[k];
                            f[k] = loss_at(c, &b, labels, targets);
                        }
                        prm[i] = save;
                        const double fd = (8 * (f[1] - f[2]) - (f[0] - f[3])) / (12.0 * h);
                        num2 += (fd - g[i]) * (fd - g[i]);
                        den2 += fd * fd;
                    }
                    const double floor2 = 1e-4 * gnorm * gnorm;
                    const double rel = sqrt(num2 / (den2 > floor2 ? den2 : floor2));
                    if (rel > worst) worst = rel;
                    CHECK_MSG(rel <= 1e-3, "%s %s %s %s: relative error %.3g", multi ? "BCE" : "CE",
                              bidir ? "bidirectional" : "causal", pools[pool], c->views[v].name, rel);
                }
                printf("%-3s %-13s pool %-5s  worst relative error %.2e\n", multi ? "BCE" : "CE",
                       bidir ? "bidirectional" : "causal", pools[pool], worst);
                free(analytic);
                ll_classifier_free(c);
            }
    ll_model_free(m);
    return test_summary("test_grad_classifier");
}
