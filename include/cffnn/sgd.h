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
 */
#ifndef CFFNN_SGD_H
#define CFFNN_SGD_H

#include <stddef.h>
#include <stdint.h>

#include "cffnn/checks.h"

#define CFFNN_DEFINE_SGD(SUFFIX, T, U)                                                  \
static inline int cffnn_sgd_##SUFFIX(const T *p, const T *g, const T *v, T *v_out,       \
                                     T *out, ptrdiff_t n, T learning_rate, T momentum,  \
                                     int nesterov) {                                    \
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
    return bad == 0;                                                                    \
}

CFFNN_DEFINE_SGD(f, float, uint32_t)
CFFNN_DEFINE_SGD(d, double, uint64_t)

#endif /* CFFNN_SGD_H */
