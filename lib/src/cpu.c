/* CPU feature detection for run-time kernel dispatch. */
#include <stdlib.h>
#include <string.h>

#include "longrange/core.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* clang's __builtin_cpu_supports does not know "f16c": ask CPUID leaf 1 (ECX bit 29). */
static int has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

static lr_cpu_level detect_hardware(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    /* The compiler runtime also checks that the OS saves the wide registers (XCR0). */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("fma") && has_f16c())
        return LR_CPU_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        has_f16c())
        return LR_CPU_AVX2;
#endif
    return LR_CPU_REF;
}

const char *lr_cpu_level_name(lr_cpu_level level)
{
    switch (level) {
    case LR_CPU_REF: return "ref";
    case LR_CPU_AVX2: return "avx2";
    case LR_CPU_AVX512: return "avx512";
    }
    return "?";
}

lr_cpu_level lr_cpu_detect(void)
{
    lr_cpu_level hw = detect_hardware();
    const char *want = getenv("LR_CPU");
    if (!want || !*want)
        return hw;
    for (int l = LR_CPU_REF; l <= LR_CPU_AVX512; l++) {
        if (strcmp(want, lr_cpu_level_name((lr_cpu_level)l)) == 0)
            return (lr_cpu_level)l < hw ? (lr_cpu_level)l : hw; /* never above what the CPU has */
    }
    return hw;
}
