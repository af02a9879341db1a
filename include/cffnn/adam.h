/*
 * cffnn/adam.h: Adam's fused update over a flat buffer (the maths: cffnn/_optimizers.pxd).
 *
 *   m = b1 m + (1 - b1) g;  s = b2 s + (1 - b2) g^2;  out = p - step m / (sqrt(s) + eps)
 *
 * Returns 1 when every new value out[i] is finite: the flag is ORed in the same loop as
 * integer bits (checks.h), which the compiler vectorises with the rest, instead of a
 * second pass over out (in a Fashion-MNIST epoch that pass and the gradient's took 2-4%).
 *
 * A square root and a divide per parameter bound this loop; in SSE2 (a wheel's baseline)
 * they go 4 lanes at a time, so the loop is also compiled for AVX2 + FMA (8 lanes) and
 * picked at run time. out may be p itself. The FMA build rounds b1 m + (1 - b1) g once
 * instead of twice; a given machine always takes the same path.
 */
#ifndef CFFNN_ADAM_H
#define CFFNN_ADAM_H

#include <math.h>
#include <stddef.h>

#include "cffnn/checks.h"
#include "cffnn/cpu.h"

#define CFFNN_ADAM_LOOP(SUFFIX, T, U, SQRT)                                             \
    U bad = 0;                                                                          \
    for (ptrdiff_t i = 0; i < n; i++) {                                                 \
        m[i] = beta_1 * m[i] + one_minus_beta_1 * g[i];                                 \
        s[i] = beta_2 * s[i] + one_minus_beta_2 * (g[i] * g[i]);                        \
        const T value = p[i] + (-step * m[i] / (SQRT(s[i]) + eps));                     \
        out[i] = value;                                                                 \
        bad |= cffnn_nonfinite_##SUFFIX(value);                                         \
    }                                                                                   \
    return bad == 0;

#define CFFNN_DEFINE_ADAM(SUFFIX, T, U, SQRT)                                           \
static inline int cffnn_adam_##SUFFIX##_base(                                           \
        const T *p, const T *g, T *m, T *s, T *out, ptrdiff_t n, T step, T beta_1,      \
        T one_minus_beta_1, T beta_2, T one_minus_beta_2, T eps) {                      \
    CFFNN_ADAM_LOOP(SUFFIX, T, U, SQRT)                                                 \
}                                                                                       \
CFFNN_DEFINE_ADAM_AVX2(SUFFIX, T, U, SQRT)                                              \
static inline int cffnn_adam_##SUFFIX(                                                  \
        const T *p, const T *g, T *m, T *s, T *out, ptrdiff_t n, T step, T beta_1,      \
        T one_minus_beta_1, T beta_2, T one_minus_beta_2, T eps) {                      \
    CFFNN_ADAM_PICK_AVX2(SUFFIX)                                                        \
    return cffnn_adam_##SUFFIX##_base(p, g, m, s, out, n, step, beta_1,                 \
                                      one_minus_beta_1, beta_2, one_minus_beta_2, eps); \
}

#ifdef CFFNN_X86_AVX2
#define CFFNN_DEFINE_ADAM_AVX2(SUFFIX, T, U, SQRT)                                      \
__attribute__((target("avx2,fma")))                                                     \
static int cffnn_adam_##SUFFIX##_avx2(                                                  \
        const T *p, const T *g, T *m, T *s, T *out, ptrdiff_t n, T step, T beta_1,      \
        T one_minus_beta_1, T beta_2, T one_minus_beta_2, T eps) {                      \
    CFFNN_ADAM_LOOP(SUFFIX, T, U, SQRT)                                                 \
}
#define CFFNN_ADAM_PICK_AVX2(SUFFIX)                                                    \
    if (cffnn_has_avx2_fma())                                                           \
        return cffnn_adam_##SUFFIX##_avx2(p, g, m, s, out, n, step, beta_1,             \
                                          one_minus_beta_1, beta_2, one_minus_beta_2,   \
                                          eps);
#else
#define CFFNN_DEFINE_ADAM_AVX2(SUFFIX, T, U, SQRT)
#define CFFNN_ADAM_PICK_AVX2(SUFFIX)
#endif

CFFNN_DEFINE_ADAM(f, float, uint32_t, sqrtf)
CFFNN_DEFINE_ADAM(d, double, uint64_t, sqrt)

#endif /* CFFNN_ADAM_H */
