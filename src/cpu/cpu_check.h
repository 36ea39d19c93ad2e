/* Does this CPU have the instruction-set extensions the library was compiled to use?
 *
 * With LL_NATIVE (the default) the whole library is compiled with -march=native: GCC may use any extension of the
 * building CPU in any function, so a library (or a Python wheel) copied to an older CPU would die of SIGILL at some
 * later call. ll_cpu_check (lsllama.h) compares ll_build_isa with what cpuid reports, from code compiled for the
 * x86-64 baseline, and names the missing extensions instead. The runtime-dispatched matrix kernels (gemm.c's
 * target attributes) are not part of this: they check the CPU themselves. */
#ifndef LL_CPU_CHECK_H
#define LL_CPU_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "lsllama.h"

enum {
    LL_ISA_SSE3 = 1u << 0, LL_ISA_SSSE3 = 1u << 1, LL_ISA_SSE4_1 = 1u << 2, LL_ISA_SSE4_2 = 1u << 3,
    LL_ISA_POPCNT = 1u << 4, LL_ISA_AVX = 1u << 5, LL_ISA_AVX2 = 1u << 6, LL_ISA_FMA = 1u << 7,
    LL_ISA_F16C = 1u << 8, LL_ISA_BMI = 1u << 9, LL_ISA_BMI2 = 1u << 10, LL_ISA_AVX512F = 1u << 11,
    LL_ISA_AVX512VL = 1u << 12, LL_ISA_AVX512BW = 1u << 13, LL_ISA_AVX512DQ = 1u << 14,
    LL_ISA_AVX512CD = 1u << 15, LL_ISA_AVX512VNNI = 1u << 16, LL_ISA_AVX512BF16 = 1u << 17,
    LL_ISA_AVX512VBMI = 1u << 18, LL_ISA_AVX512IFMA = 1u << 19, LL_ISA_AVX512VBMI2 = 1u << 20,
    LL_ISA_AVX512BITALG = 1u << 21, LL_ISA_AVX512VPOPCNTDQ = 1u << 22, LL_ISA_GFNI = 1u << 23,
    LL_ISA_VPCLMULQDQ = 1u << 24,
};

#define LL_ISA_LAST LL_ISA_VPCLMULQDQ

/* The name of one LL_ISA_* bit as /proc/cpuinfo's flags spell it ("avx2", "avx512_bf16"), except SSE3, which the
 * kernel calls "pni"; NULL for another value. */
const char *ll_isa_name(uint64_t bit);

/* The extensions the library's compiler flags allowed (build_isa.c). */
extern const uint64_t ll_build_isa;

/* The extensions this CPU has (cpuid, through GCC's __builtin_cpu_supports), as LL_ISA_* bits. */
uint64_t ll_cpu_isa(void);

/* 0 when `have` holds every bit of `need`; else LL_ERR_UNSUPPORTED with err naming `cpu` (the CPU's model name),
 * the extensions of `need` it lacks (as /proc/cpuinfo spells them) and how to rebuild. err may be NULL. */
int ll_cpu_isa_compare(uint64_t need, uint64_t have, const char *cpu, ll_error *err);

/* The CPU's model name from /proc/cpuinfo ("unknown CPU" without one), read once. */
const char *ll_cpu_name(void);

#endif
