/*
 * cffnn/checks.h: the input checks of the Python edge's fast path, as loops the compiler
 * vectorises: a float is NaN or infinite exactly when its exponent bits are all ones, so
 * "any non-finite" and "any outside [lower, upper]" are OR-reductions of integer flags
 * (a floating-point sum would be a serial chain of additions, 4x slower).
 */
#ifndef CFFNN_CHECKS_H
#define CFFNN_CHECKS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cffnn/cpu.h"

/* 1 when every x[i] is finite and in [lower, upper] (check_bounds = 0: finite only).
 * The loop is also compiled for AVX2 (32 bytes a step instead of SSE2's 16) and picked at
 * run time: the finite scan of a 128-row batch of 784 floats (400 KB, in cache) took 17 us
 * in SSE2, 3% of that batch's forward pass. */
#define CFFNN_CHECK_LOOP(U, EXPONENT)                                                   \
    U bad = 0;                                                                          \
    for (ptrdiff_t i = 0; i < n; i++) {                                                 \
        U bits;                                                                         \
        memcpy(&bits, x + i, sizeof bits);                                              \
        bad |= (U)((bits & EXPONENT) == EXPONENT);                                      \
    }                                                                                   \
    if (check_bounds)                                                                   \
        for (ptrdiff_t i = 0; i < n; i++)                                               \
            bad |= (U)((x[i] < lower) | (x[i] > upper));                                \
    return bad == 0;

#define CFFNN_DEFINE_CHECK(SUFFIX, T, U, EXPONENT)                                       \
static inline int cffnn_all_finite_in_##SUFFIX##_base(const T *x, ptrdiff_t n,          \
                                                      int check_bounds, T lower, T upper) { \
    CFFNN_CHECK_LOOP(U, EXPONENT)                                                       \
}                                                                                       \
CFFNN_DEFINE_CHECK_AVX2(SUFFIX, T, U, EXPONENT)                                         \
static inline int cffnn_all_finite_in_##SUFFIX(const T *x, ptrdiff_t n, int check_bounds, \
                                               T lower, T upper) {                     \
    CFFNN_CHECK_PICK_AVX2(SUFFIX)                                                       \
    return cffnn_all_finite_in_##SUFFIX##_base(x, n, check_bounds, lower, upper);       \
}

#ifdef CFFNN_X86_AVX2
#define CFFNN_DEFINE_CHECK_AVX2(SUFFIX, T, U, EXPONENT)                                  \
__attribute__((target("avx2")))                                                         \
static int cffnn_all_finite_in_##SUFFIX##_avx2(const T *x, ptrdiff_t n,                 \
                                               int check_bounds, T lower, T upper) {   \
    CFFNN_CHECK_LOOP(U, EXPONENT)                                                       \
}
#define CFFNN_CHECK_PICK_AVX2(SUFFIX)                                                    \
    if (cffnn_has_avx2_fma())                                                           \
        return cffnn_all_finite_in_##SUFFIX##_avx2(x, n, check_bounds, lower, upper);
#else
#define CFFNN_DEFINE_CHECK_AVX2(SUFFIX, T, U, EXPONENT)
#define CFFNN_CHECK_PICK_AVX2(SUFFIX)
#endif

CFFNN_DEFINE_CHECK(f, float, uint32_t, 0x7f800000u)
CFFNN_DEFINE_CHECK(d, double, uint64_t, 0x7ff0000000000000u)

#endif /* CFFNN_CHECKS_H */
