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

/* 1 when every x[i] is finite and in [lower, upper] (check_bounds = 0: finite only). */
static inline int cffnn_all_finite_in_f(const float *x, ptrdiff_t n, int check_bounds,
                                        float lower, float upper) {
    uint32_t bad = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, x + i, sizeof bits);
        bad |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
    }
    if (check_bounds)
        for (ptrdiff_t i = 0; i < n; i++)
            bad |= (uint32_t)((x[i] < lower) | (x[i] > upper));
    return bad == 0;
}

static inline int cffnn_all_finite_in_d(const double *x, ptrdiff_t n, int check_bounds,
                                        double lower, double upper) {
    uint64_t bad = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        uint64_t bits;
        memcpy(&bits, x + i, sizeof bits);
        bad |= (uint64_t)((bits & 0x7ff0000000000000u) == 0x7ff0000000000000u);
    }
    if (check_bounds)
        for (ptrdiff_t i = 0; i < n; i++)
            bad |= (uint64_t)((x[i] < lower) | (x[i] > upper));
    return bad == 0;
}

#endif /* CFFNN_CHECKS_H */
