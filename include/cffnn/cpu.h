/*
 * cffnn/cpu.h: which vector instructions this CPU has, asked once at run time.
 *
 * A wheel is compiled for the baseline x86-64 (SSE2), so the hot loops that gain from
 * AVX2 and FMA are compiled a second time with __attribute__((target("avx2,fma"))) and
 * picked with cffnn_has_avx2_fma(). CFFNN_X86_AVX2 is defined where that is possible
 * (GCC or clang on x86-64); elsewhere only the portable loops exist.
 */
#ifndef CFFNN_CPU_H
#define CFFNN_CPU_H

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define CFFNN_X86_AVX2 1

#include <stdlib.h>

/* True when the AVX2 + FMA loops may run. CFFNN_DISABLE_AVX2=1 in the environment (read
 * once) forces the portable loops, so that the tests check them on an AVX2 machine too. */
static inline int cffnn_has_avx2_fma(void) {
    static int cached = -1;   /* a benign race: every thread computes the same value */
    if (cached < 0) {
        const char *disable = getenv("CFFNN_DISABLE_AVX2");
        cached = !(disable && disable[0] && disable[0] != '0')
                 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
}
#endif

#endif /* CFFNN_CPU_H */
