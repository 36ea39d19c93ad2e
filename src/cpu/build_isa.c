/* The instruction-set extensions this build's compiler flags let GCC use anywhere in the library (-march=native
 * on the building machine, see CMakeLists.txt's LL_NATIVE), as a bit set of cpu_check.h's LL_ISA_* bits.
 *
 * Data only, no code: this file is compiled with the library's flags, so the macros below say what the rest of the
 * library was compiled for, and cpu_check.c (compiled for the x86-64 baseline) reads the result before any code
 * that may use those instructions runs. */
#include "cpu/cpu_check.h"

const uint64_t ll_build_isa = 0
#ifdef __SSE3__
    | LL_ISA_SSE3
#endif
#ifdef __SSSE3__
    | LL_ISA_SSSE3
#endif
#ifdef __SSE4_1__
    | LL_ISA_SSE4_1
#endif
#ifdef __SSE4_2__
    | LL_ISA_SSE4_2
#endif
#ifdef __POPCNT__
    | LL_ISA_POPCNT
#endif
#ifdef __AVX__
    | LL_ISA_AVX
#endif
#ifdef __AVX2__
    | LL_ISA_AVX2
#endif
#ifdef __FMA__
    | LL_ISA_FMA
#endif
#ifdef __F16C__
    | LL_ISA_F16C
#endif
#ifdef __BMI__
    | LL_ISA_BMI
#endif
#ifdef __BMI2__
    | LL_ISA_BMI2
#endif
#ifdef __AVX512F__
    | LL_ISA_AVX512F
#endif
#ifdef __AVX512VL__
    | LL_ISA_AVX512VL
#endif
#ifdef __AVX512BW__
    | LL_ISA_AVX512BW
#endif
#ifdef __AVX512DQ__
    | LL_ISA_AVX512DQ
#endif
#ifdef __AVX512CD__
    | LL_ISA_AVX512CD
#endif
#ifdef __AVX512VNNI__
    | LL_ISA_AVX512VNNI
#endif
#ifdef __AVX512BF16__
    | LL_ISA_AVX512BF16
#endif
#ifdef __AVX512VBMI__
    | LL_ISA_AVX512VBMI
#endif
#ifdef __AVX512IFMA__
    | LL_ISA_AVX512IFMA
#endif
#ifdef __AVX512VBMI2__
    | LL_ISA_AVX512VBMI2
#endif
#ifdef __AVX512BITALG__
    | LL_ISA_AVX512BITALG
#endif
#ifdef __AVX512VPOPCNTDQ__
    | LL_ISA_AVX512VPOPCNTDQ
#endif
#ifdef __GFNI__
    | LL_ISA_GFNI
#endif
#ifdef __VPCLMULQDQ__
    | LL_ISA_VPCLMULQDQ
#endif
    ;
