/* cpu/cpu_check: the CPU's instruction sets as cpuid reports them agree with the kernel's account
 * (/proc/cpuinfo's flags, an independent reader of the same cpuid bits); this build's own CPU passes
 * ll_cpu_check; and a build for a CPU with more extensions is refused with a message naming the CPU and exactly
 * the missing extensions. */
#include <stdio.h>
#include <string.h>

#include "cpu/cpu_check.h"
#include "test_util.h"

/* The bits, with /proc/cpuinfo's flag for each (the kernel calls SSE3 "pni"). */
static const struct {
    uint64_t bit;
    const char *flag;
} flags[] = {
    {LL_ISA_SSE3, "pni"},           {LL_ISA_SSSE3, "ssse3"},           {LL_ISA_SSE4_1, "sse4_1"},
    {LL_ISA_SSE4_2, "sse4_2"},      {LL_ISA_POPCNT, "popcnt"},         {LL_ISA_AVX, "avx"},
    {LL_ISA_AVX2, "avx2"},          {LL_ISA_FMA, "fma"},               {LL_ISA_F16C, "f16c"},
    {LL_ISA_BMI, "bmi1"},           {LL_ISA_BMI2, "bmi2"},             {LL_ISA_AVX512F, "avx512f"},
    {LL_ISA_AVX512VL, "avx512vl"},  {LL_ISA_AVX512BW, "avx512bw"},     {LL_ISA_AVX512DQ, "avx512dq"},
    {LL_ISA_AVX512CD, "avx512cd"},  {LL_ISA_AVX512VNNI, "avx512_vnni"}, {LL_ISA_AVX512BF16, "avx512_bf16"},
    {LL_ISA_AVX512VBMI, "avx512vbmi"}, {LL_ISA_AVX512IFMA, "avx512ifma"}, {LL_ISA_AVX512VBMI2, "avx512_vbmi2"},
    {LL_ISA_AVX512BITALG, "avx512_bitalg"}, {LL_ISA_AVX512VPOPCNTDQ, "avx512_vpopcntdq"}, {LL_ISA_GFNI, "gfni"},
    {LL_ISA_VPCLMULQDQ, "vpclmulqdq"},
};

static void test_against_proc_cpuinfo(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    REQUIRE(f);
    static char line[1 << 16];
    char flag_line[1 << 16] = "";
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) {
            snprintf(flag_line, sizeof flag_line, " %s", strchr(line, ':') + 1);
            break;
        }
    fclose(f);
    REQUIRE(flag_line[0]);
    flag_line[strcspn(flag_line, "\n")] = ' ';
    const uint64_t have = ll_cpu_isa();
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        char word[64];
        snprintf(word, sizeof word, " %s ", flags[i].flag);
        const int listed = strstr(flag_line, word) != NULL;
        CHECK_MSG(listed == !!(have & flags[i].bit), "%s: /proc/cpuinfo %s it, cpuid %s", flags[i].flag,
                  listed ? "lists" : "does not list", have & flags[i].bit ? "reports it" : "does not");
    }
}

static void test_this_build(void) {
    ll_error err = {0};
    CHECK_MSG(ll_cpu_check(&err) == 0, "%s", err.message);
    CHECK((ll_build_isa & ~ll_cpu_isa()) == 0);
#if defined(__AVX2__)
    CHECK(ll_build_isa & LL_ISA_AVX2); /* the test is compiled with the library's flags */
#endif
}

static void test_refusal(void) {
    ll_error err = {0};
    CHECK(ll_cpu_isa_compare(LL_ISA_AVX2 | LL_ISA_FMA, LL_ISA_AVX | LL_ISA_AVX2 | LL_ISA_FMA, "Some CPU", &err) == 0);
    const int rc = ll_cpu_isa_compare(LL_ISA_AVX2 | LL_ISA_AVX512F | LL_ISA_AVX512BF16, LL_ISA_AVX2, "Old CPU 3000",
                                      &err);
    CHECK(rc == LL_ERR_UNSUPPORTED && err.code == LL_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(err.message, "this CPU (Old CPU 3000) lacks avx512f, avx512_bf16, which this liblsllama") != NULL, "%s",
              err.message);
    CHECK_MSG(!strstr(err.message, "avx2") && strstr(err.message, "LL_NATIVE=OFF"), "%s", err.message);
    CHECK(ll_cpu_isa_compare(LL_ISA_AVX512F, 0, "x", NULL) == LL_ERR_UNSUPPORTED);
}

int main(void) {
    test_against_proc_cpuinfo();
    test_this_build();
    test_refusal();
    return test_summary("test_cpu_check");
}
