/*
 * cffnn/sgd.h: SGD's fused update over a flat buffer (the maths: cffnn/_optimizers.pxd).
 *
 *   v' = momentum v - lr g;  out = p + v'                  (plain, or momentum)
 *   v' = momentum v - lr g;  out = p + momentum v' - lr g  (Nesterov, as scikit-learn)
 *
 * v' goes into v_out, which may be v itself (the optimiser's step) or another buffer
 * (fit_epoch's update fused into its gradient tasks, which must leave v as it was when
 * the step is refused). Returns 1 when every new value out[i] is finite, from a flag ORed
 * in the loop (checks.h); in C rather than Cython so that the flag has the values' width,
 * which keeps the float64 loop vectorised. out may be p itself.
 *
 * The loop is also compiled for AVX2 (8 float lanes instead of SSE2's 4) and picked at
 * run time like adam.h's, but without FMA: each product is rounded as in the baseline
 * loop, so both give the same bits.
 */
#ifndef CFFNN_SGD_H
#define CFFNN_SGD_H

#include <stddef.h>
#include <stdint.h>

#include "cffnn/checks.h"
#include "cffnn/cpu.h"

#define CFFNN_SGD_LOOP(SUFFIX, T, U)                                                    \
    U bad = 0;                                                                          \
    if (nesterov) {                                                                     \
        for (ptrdiff_t i = 0; i < n; i++) {                                             \
            const T velocity = momentum * v[i] - learning_rate * g[i];                  \
            v_out[i] = velocity;                                                        \
            const T value = p[i] + (momentum * velocity - learning_rate * g[i]);        \
            out[i] = value;                                                             \
            bad |= cffnn_nonfinite_##SUFFIX(value);                                     \
        }                                                                               \
    } else {                                                                            \
        for (ptrdiff_t i = 0; i < n; i++) {                                             \
            const T velocity = momentum * v[i] - learning_rate * g[i];                  \
            v_out[i] = velocity;                                                        \
            const T value = p[i] + velocity;                                            \
            out[i] = value;                                                             \
            bad |= cffnn_nonfinite_##SUFFIX(value);                                     \
        }                                                                               \
    }                                                                                   \
    return bad == 0;

#define CFFNN_SGD_ARGS(T)                                                               \
    const T *p, const T *g, const T *v, T *v_out, T *out, ptrdiff_t n, T learning_rate, \
    T momentum, int nesterov

#define CFFNN_DEFINE_SGD(SUFFIX, T, U)                                                  \
static inline int cffnn_sgd_##SUFFIX##_base(CFFNN_SGD_ARGS(T)) {                        \
    CFFNN_SGD_LOOP(SUFFIX, T, U)                                                        \
}                                                                                       \
CFFNN_DEFINE_SGD_AVX2(SUFFIX, T, U)                                                     \
static inline int cffnn_sgd_##SUFFIX(CFFNN_SGD_ARGS(T)) {                               \
    CFFNN_SGD_PICK_AVX2(SUFFIX)                                                         \
    return cffnn_sgd_##SUFFIX##_base(p, g, v, v_out, out, n, learning_rate, momentum,   \
                                     nesterov);                                         \
}

#ifdef CFFNN_X86_AVX2
#define CFFNN_DEFINE_SGD_AVX2(SUFFIX, T, U)                                             \
__attribute__((target("avx2")))                                                         \
static int cffnn_sgd_##SUFFIX##_avx2(CFFNN_SGD_ARGS(T)) {                               \
    CFFNN_SGD_LOOP(SUFFIX, T, U)                                                        \
}
#define CFFNN_SGD_PICK_AVX2(SUFFIX)                                                     \
    if (cffnn_has_avx2_fma())                                                           \
        return cffnn_sgd_##SUFFIX##_avx2(p, g, v, v_out, out, n, learning_rate,         \
                                         momentum, nesterov);
#else
#define CFFNN_DEFINE_SGD_AVX2(SUFFIX, T, U)
#define CFFNN_SGD_PICK_AVX2(SUFFIX)
#endif

CFFNN_DEFINE_SGD(f, float, uint32_t)
CFFNN_DEFINE_SGD(d, double, uint64_t)

#endif /* CFFNN_SGD_H */
