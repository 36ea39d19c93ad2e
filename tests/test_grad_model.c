// LL_TEST_LABELS: slow
/* Whole-stack gradient check: the tiny Llama fixture with LoRA on every
 * linear module (random A and B), loss L = sum(r * hidden). The analytic
 * LoRA gradients from ll_stack_backward must match central differences
 * (norm-wise relative error <= 1e-3 per module) in causal, bidirectional and
 * bidirectional-from-layer-1 modes, with and without dropout (the masks are
 * a deterministic function of the seed, so the loss stays differentiable). */
#include <omp.h>

#include "lora_test_util.h"
#include "model/pass.h"
#include "test_util.h"

static unsigned long long rng = 7;
static float frand(void) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
}

static double loss(ll_model *m, const ll_batch *b, int from, const ll_lora_pass *lp, float *hidden, const float *r,
                   size_t n) {
    ll_error err;
    REQUIRE(ll_stack_forward(m, b, from, lp, NULL, hidden, &err) == 0);
    double l = 0;
    for (size_t i = 0; i < n; i++) l += (double)r[i] * hidden[i];
    return l;
}

int main(void) {
    omp_set_num_threads(1); /* thousands of tiny passes: threads only add overhead */
    ll_model *m;
    ll_error err = {0};
    REQUIRE(ll_model_load(&m, LL_SOURCE_DIR "/tests/fixtures/tiny_llama/hf", NULL, &err) == 0);
    const ll_config *c = ll_model_config(m);
    const size_t D = c->dim;
    const int r = 3;
    size_t in_dims[LL_LORA_N_TARGETS], out_dims[LL_LORA_N_TARGETS];
    test_lora_dims(c, in_dims, out_dims);
    ll_lora lora = {.r = r, .alpha = 6.0f, .scale = 2.0f, .dropout = 0.0f, .targets = 0x7F, .n_layers = c->n_layers};
    test_lora_random(&lora, c, frand);
    int32_t tokens[] = {5, 17, 3, 88, 42, 9, 61, 2, 33, 70, 11};
    int32_t starts[] = {0, 4, 5, 11};
    ll_batch b = {tokens, starts, 3};
    const size_t T = 11, n = T * D;
    float *hidden = malloc(n * 4), *rr = malloc(n * 4);
    for (size_t i = 0; i < n; i++) rr[i] = frand();
    const struct {
        const char *name;
        int from;
        float dropout;
    } modes[] = {{"causal", c->n_layers, 0.0f}, {"bidirectional", 0, 0.0f}, {"bidir_from_1", 1, 0.0f},
                 {"causal+dropout", c->n_layers, 0.3f}, {"bidirectional+dropout", 0, 0.3f}};
    for (size_t mi = 0; mi < sizeof modes / sizeof modes[0]; mi++) {
        lora.dropout = modes[mi].dropout;
        ll_lora_pass lp = {&lora, 1, 1234 + mi, 0, NULL};
        for (int l = 0; l < c->n_layers; l++)
            for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
                ll_lora_module *md = ll_lora_at(&lora, l, t);
                memset(md->dA, 0, r * in_dims[t] * 4);
                memset(md->dB, 0, out_dims[t] * r * 4);
            }
        ll_acts acts = {0};
        REQUIRE(ll_stack_forward(m, &b, modes[mi].from, &lp, &acts, hidden, &err) == 0);
        if (mi == 0) { /* more threads after the forward pass than its workspace was sized for: an error */
            const int threads = omp_get_max_threads();
            omp_set_num_threads(threads + 1);
            CHECK(ll_stack_backward(m, &b, modes[mi].from, &lp, &acts, rr, &err) == LL_ERR_ARG);
            CHECK_MSG(strstr(err.message, "threads") != NULL, "message: %s", err.message);
            omp_set_num_threads(threads);
        }
        REQUIRE(ll_stack_backward(m, &b, modes[mi].from, &lp, &acts, rr, &err) == 0);
        double worst = 0;
        /* Check every module of layer 0 and the last layer, 10 entries
         * spread over each A and B. */
        for (int l = 0; l < c->n_layers; l += c->n_layers - 1)
            for (int t = 0; t < LL_LORA_N_TARGETS; t++)
                for (int which = 0; which < 2; which++) {
                    ll_lora_module *md = ll_lora_at(&lora, l, t);
                    float *prm = which ? md->B : md->A, *grad = which ? md->dB : md->dA;
                    const size_t np = which ? out_dims[t] * r : r * in_dims[t];
                    const size_t stride = np > 10 ? np / 10 : 1;
                    double num2 = 0, den2 = 0;
                    for (size_t i = 0; i < np; i += stride) {
                        /* fourth-order central difference: float rounding
                         * noise allows no smaller step */
                        const float save = prm[i], h = 3e-2f;
                        double f[4];
                        const float offs[4] = {2 * h, h, -h, -2 * h};
                        for (int k = 0; k < 4; k++) {
                            prm[i] = save + offs[k];
                            f[k] = loss(m, &b, modes[mi].from, &lp, hidden, rr, n);
                        }
                        prm[i] = save;
                        const double g = (8 * (f[1] - f[2]) - (f[0] - f[3])) / (12.0 * h);
                        num2 += (g - grad[i]) * (g - grad[i]);
                        den2 += g * g;
                    }
                    const double rel = sqrt(num2 / (den2 > 1e-20 ? den2 : 1e-20));
                    if (rel > worst) worst = rel;
                    CHECK_MSG(rel <= 1e-3, "%s layer %d %s lora_%c: relative error %.3g", modes[mi].name, l,
                              ll_lora_target_names[t], which ? 'B' : 'A', rel);
                }
        printf("%-24s worst relative error over q,k,v,o,gate,up,down A/B: %.2e\n", modes[mi].name, worst);
        ll_acts_free(&acts);
    }
    test_lora_free(&lora);
    free(hidden);
    free(rr);
    ll_model_free(m);
    return test_summary("test_grad_model");
}
