/* Dequantizers and f16/bf16 conversions against the gguf Python package and
 * numpy, bit for bit (fixture: tools/gen_fixtures_quants.py). */
#include <stdint.h>

#include "io/dtype.h"
#include "io/safetensors.h"
#include "test_util.h"

static const ll_st_tensor *need(const ll_st_file *f, const char *name) {
    const ll_st_tensor *t = ll_st_find(f, name);
    if (!t) fprintf(stderr, "fixture lacks %s\n", name);
    REQUIRE(t);
    return t;
}

int main(void) {
    ll_st_file *f;
    ll_error err = {0};
    REQUIRE(ll_st_open(&f, LL_SOURCE_DIR "/tests/fixtures/quants/quants.safetensors", &err) == 0);
    const struct {
        const char *name;
        ll_dtype dt;
    } types[] = {{"Q8_0", LL_DTYPE_Q8_0}, {"Q4_0", LL_DTYPE_Q4_0}, {"Q4_1", LL_DTYPE_Q4_1}, {"Q4_K", LL_DTYPE_Q4_K},
                 {"Q6_K", LL_DTYPE_Q6_K}, {"Q5_0", LL_DTYPE_Q5_0}, {"Q5_1", LL_DTYPE_Q5_1}, {"Q5_K", LL_DTYPE_Q5_K}, {"F16", LL_DTYPE_F16},   {"BF16", LL_DTYPE_BF16}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char rn[32], en[32];
        snprintf(rn, sizeof rn, "%s_raw", types[i].name);
        snprintf(en, sizeof en, "%s_expected", types[i].name);
        const ll_st_tensor *raw = need(f, rn), *exp = need(f, en);
        const size_t n = (size_t)exp->n_elems;
        uint64_t want_bytes = 0;
        CHECK_MSG(ll_dtype_nbytes(types[i].dt, n, &want_bytes) && want_bytes == raw->nbytes, "%s size", types[i].name);
        float *got = malloc(n * sizeof(float));
        ll_dequantize(types[i].dt, raw->data, got, n);
        size_t mismatches = 0;
        for (size_t j = 0; j < n; j++) {
            uint32_t a, b;
            memcpy(&a, got + j, 4);
            memcpy(&b, exp->data + 4 * j, 4);
            if (a != b && mismatches++ < 3) fprintf(stderr, "%s[%zu]: got %08x expected %08x\n", types[i].name, j, a, b);
        }
        CHECK_MSG(mismatches == 0, "%s: %zu of %zu values differ", types[i].name, mismatches, n);
        printf("%-5s %zu values bit-identical: %s\n", types[i].name, n, mismatches ? "no" : "yes");
        free(got);
    }
    /* f32 -> f16 rounding (used when writing f16 tensors). */
    const ll_st_tensor *in = need(f, "F32toF16_input"), *ex = need(f, "F32toF16_expected");
    size_t bad = 0;
    for (size_t j = 0; j < in->n_elems; j++) {
        float x;
        uint16_t want;
        memcpy(&x, in->data + 4 * j, 4);
        memcpy(&want, ex->data + 2 * j, 2);
        const uint16_t got = ll_fp32_to_fp16(x);
        if (got != want && bad++ < 3) fprintf(stderr, "f32->f16 %.9g: got %04x expected %04x\n", x, got, want);
    }
    CHECK_MSG(bad == 0, "f32->f16: %zu of %llu differ", bad, (unsigned long long)in->n_elems);
    ll_st_close(f);
    return test_summary("test_quants");
}
