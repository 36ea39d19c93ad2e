/* ll_cpu_check: the CPU against the instruction sets the library was compiled for (cpu_check.h).
 *
 * CMakeLists.txt compiles this file for the x86-64 baseline (-march=x86-64), whatever LL_NATIVE says, so that it
 * runs on any x86-64 CPU and can report what is missing before code that uses it runs. It calls nothing of the
 * library's (which may be compiled for newer CPUs): the message is written here with snprintf. */
#include <cpuid.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cpu/cpu_check.h"

static const struct {
    uint64_t bit;
    const char *name; /* as /proc/cpuinfo's flags spell it, but SSE3 ("pni" there) */
} isa_names[] = {
    {LL_ISA_SSE3, "sse3"},          {LL_ISA_SSSE3, "ssse3"},           {LL_ISA_SSE4_1, "sse4_1"},
    {LL_ISA_SSE4_2, "sse4_2"},      {LL_ISA_POPCNT, "popcnt"},         {LL_ISA_AVX, "avx"},
    {LL_ISA_AVX2, "avx2"},          {LL_ISA_FMA, "fma"},               {LL_ISA_F16C, "f16c"},
    {LL_ISA_BMI, "bmi1"},           {LL_ISA_BMI2, "bmi2"},             {LL_ISA_AVX512F, "avx512f"},
    {LL_ISA_AVX512VL, "avx512vl"},  {LL_ISA_AVX512BW, "avx512bw"},     {LL_ISA_AVX512DQ, "avx512dq"},
    {LL_ISA_AVX512CD, "avx512cd"},  {LL_ISA_AVX512VNNI, "avx512_vnni"}, {LL_ISA_AVX512BF16, "avx512_bf16"},
    {LL_ISA_AVX512VBMI, "avx512vbmi"}, {LL_ISA_AVX512IFMA, "avx512ifma"}, {LL_ISA_AVX512VBMI2, "avx512_vbmi2"},
    {LL_ISA_AVX512BITALG, "avx512_bitalg"}, {LL_ISA_AVX512VPOPCNTDQ, "avx512_vpopcntdq"}, {LL_ISA_GFNI, "gfni"},
    {LL_ISA_VPCLMULQDQ, "vpclmulqdq"},
};

const char *ll_isa_name(uint64_t bit) {
    for (size_t i = 0; i < sizeof isa_names / sizeof isa_names[0]; i++)
        if (isa_names[i].bit == bit) return isa_names[i].name;
    return NULL;
}

uint64_t ll_cpu_isa(void) {
    __builtin_cpu_init();
    uint64_t have = 0;
    /* __builtin_cpu_supports also asks whether the OS saves the wider registers (XGETBV), not just cpuid. */
#define HAS(bit, name) \
    if (__builtin_cpu_supports(name)) have |= (bit)
    HAS(LL_ISA_SSE3, "sse3");
    HAS(LL_ISA_SSSE3, "ssse3");
    HAS(LL_ISA_SSE4_1, "sse4.1");
    HAS(LL_ISA_SSE4_2, "sse4.2");
    HAS(LL_ISA_POPCNT, "popcnt");
    HAS(LL_ISA_AVX, "avx");
    HAS(LL_ISA_AVX2, "avx2");
    HAS(LL_ISA_FMA, "fma");
    HAS(LL_ISA_BMI, "bmi");
    HAS(LL_ISA_BMI2, "bmi2");
    HAS(LL_ISA_AVX512F, "avx512f");
    HAS(LL_ISA_AVX512VL, "avx512vl");
    HAS(LL_ISA_AVX512BW, "avx512bw");
    HAS(LL_ISA_AVX512DQ, "avx512dq");
    HAS(LL_ISA_AVX512CD, "avx512cd");
    HAS(LL_ISA_AVX512VNNI, "avx512vnni");
    HAS(LL_ISA_AVX512BF16, "avx512bf16");
    HAS(LL_ISA_AVX512VBMI, "avx512vbmi");
    HAS(LL_ISA_AVX512IFMA, "avx512ifma");
    HAS(LL_ISA_AVX512VBMI2, "avx512vbmi2");
    HAS(LL_ISA_AVX512BITALG, "avx512bitalg");
    HAS(LL_ISA_AVX512VPOPCNTDQ, "avx512vpopcntdq");
    HAS(LL_ISA_GFNI, "gfni");
    HAS(LL_ISA_VPCLMULQDQ, "vpclmulqdq");
#undef HAS
    /* F16C (GCC 12's __builtin_cpu_supports does not know it): cpuid leaf 1, ECX bit 29, usable only where the
     * OS saves the AVX registers, which the "avx" answer above already includes. */
    unsigned a, b, c, d;
    if ((have & LL_ISA_AVX) && __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29))) have |= LL_ISA_F16C;
    return have;
}

int ll_cpu_isa_compare(uint64_t need, uint64_t have, const char *cpu, ll_error *err) {
    const uint64_t missing = need & ~have;
    if (!missing) return LL_OK;
    if (!err) return LL_ERR_UNSUPPORTED;
    char names[512] = "";
    size_t len = 0;
    for (size_t i = 0; i < sizeof isa_names / sizeof isa_names[0]; i++)
        if ((missing & isa_names[i].bit) && len < sizeof names)
            len += snprintf(names + len, sizeof names - len, "%s%s", len ? ", " : "", isa_names[i].name);
    err->code = LL_ERR_UNSUPPORTED;
    snprintf(err->message, sizeof err->message,
             "this CPU (%s) lacks %s, which this liblsllama was compiled to use (a build takes the instruction "
             "sets of the machine that built it: -march=native, the CMake option LL_NATIVE); rebuild it on this "
             "machine (pip install ./python builds the wheel here), or build a portable one with LL_NATIVE=OFF",
             cpu, names);
    return LL_ERR_UNSUPPORTED;
}

int ll_cpu_check(ll_error *err) { return ll_cpu_isa_compare(ll_build_isa, ll_cpu_isa(), ll_cpu_name(), err); }

static char cpu_name[128] = "unknown CPU";
static pthread_once_t cpu_name_once = PTHREAD_ONCE_INIT;

static void read_cpu_name(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        const char *colon = strchr(line, ':');
        if (!colon || strncmp(line, "model name", 10)) continue;
        colon += 1 + strspn(colon + 1, " \t");
        snprintf(cpu_name, sizeof cpu_name, "%.*s", (int)strcspn(colon, "\n"), colon);
        break;
    }
    fclose(f);
}

const char *ll_cpu_name(void) {
    pthread_once(&cpu_name_once, read_cpu_name);
    return cpu_name;
}
