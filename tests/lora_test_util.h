/* LoRA set-up shared by the whole-stack tests (test_grad_model,
 * test_backward_isolation): every target of every layer, dimensions from the
 * LoRA target table, A and B random. */
#ifndef LL_TESTS_LORA_TEST_UTIL_H
#define LL_TESTS_LORA_TEST_UTIL_H

#include <stdlib.h>

#include "model/lora.h"
#include "test_util.h"

/* in_dims[t], out_dims[t] of every LoRA target t for config c. */
static inline void test_lora_dims(const ll_config *c, size_t in_dims[LL_LORA_N_TARGETS],
                                  size_t out_dims[LL_LORA_N_TARGETS]) {
    for (int t = 0; t < LL_LORA_N_TARGETS; t++) ll_lora_target_dims(c, t, &in_dims[t], &out_dims[t]);
}

/* Allocate A [r, in], B [out, r] and their gradients for every target of
 * every layer of lora (lora->r, ->n_layers set; targets all); A then B of
 * each module, layer by layer, drawn as 0.2 * frand(). */
static inline void test_lora_random(ll_lora *lora, const ll_config *c, float (*frand)(void)) {
    size_t in_dims[LL_LORA_N_TARGETS], out_dims[LL_LORA_N_TARGETS];
    test_lora_dims(c, in_dims, out_dims);
    lora->modules = calloc((size_t)c->n_layers * LL_LORA_N_TARGETS, sizeof *lora->modules);
    REQUIRE(lora->modules);
    for (int l = 0; l < c->n_layers; l++)
        for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
            ll_lora_module *md = ll_lora_at(lora, l, t);
            const size_t na = (size_t)lora->r * in_dims[t], nb = out_dims[t] * (size_t)lora->r;
            md->A = malloc(na * 4), md->B = malloc(nb * 4), md->dA = malloc(na * 4), md->dB = malloc(nb * 4);
            REQUIRE(md->A && md->B && md->dA && md->dB);
            for (size_t i = 0; i < na; i++) md->A[i] = 0.2f * frand();
            for (size_t i = 0; i < nb; i++) md->B[i] = 0.2f * frand();
        }
}

static inline void test_lora_free(ll_lora *lora) {
    for (int l = 0; l < lora->n_layers; l++)
        for (int t = 0; t < LL_LORA_N_TARGETS; t++) {
            ll_lora_module *md = ll_lora_at(lora, l, t);
            free(md->A), free(md->B), free(md->dA), free(md->dB);
        }
    free(lora->modules);
    lora->modules = NULL;
}

#endif
