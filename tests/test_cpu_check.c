/* cpu/cpu_check: the CPU's instruction sets as cpuid reports them agree with the kernel's account
 * (/proc/cpuinfo's flags, an independent reader of the same cpuid bits); this build's own CPU passes
 * ll_cpu_check; and a build for a CPU with more extensions is refused with a message naming the CPU and exactly
 * the missing extensions. */
#include <stdio.h>
#include <string.h>

#include "cpu/cpu_check.h"
#include "test_util.h"

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
    int named = 0;
    for (uint64_t bit = 1; bit <= LL_ISA_LAST; bit <<= 1) {
        const char *name = ll_isa_name(bit);
        CHECK_MSG(name != NULL, "bit %#llx has no name", (unsigned long long)bit);
        if (!name) continue;
        named++;
        char word[64];
        snprintf(word, sizeof word, " %s ", bit == LL_ISA_SSE3 ? "pni" : name); /* the kernel's name of SSE3 */
        const int listed = strstr(flag_line, word) != NULL;
        CHECK_MSG(listed == !!(have & bit), "%s: /proc/cpuinfo %s it, cpuid %s", name,
                  listed ? "lists" : "does not list", have & bit ? "reports it" : "does not");
    }
    CHECK(named == 25 && ll_isa_name(LL_ISA_LAST << 1) == NULL);
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
