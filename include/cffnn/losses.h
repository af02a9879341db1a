/*
 * cffnn/losses.h: loss codes and the row reductions the output layer needs.
 *
 *   squared_error    l_i = 1/2 sum_k (z_ik - y_ik)^2
 *   binary_log_loss  l_i = sum_k log(1 + e^a_ik) - y_ik a_ik     (= -[y log p + (1-y) log(1-p)])
 *   log_loss         l_i = sum_k y_ik (logsumexp(a_i) - a_ik)     (= -sum_k y_ik log softmax(a_i)_k)
 *
 * Both log losses are written on the logits a, so that a logit of 1e4 gives a finite
 * loss instead of log(0). Reductions accumulate in double whatever the data type.
 */
#ifndef CFFNN_LOSSES_H
#define CFFNN_LOSSES_H

#include <math.h>
#include <stddef.h>

enum cffnn_loss {
    CFFNN_SQUARED_ERROR = 0,
    CFFNN_BINARY_LOG_LOSS = 1,
    CFFNN_LOG_LOSS = 2
};

/* max_k a[k] + log sum_k exp(a[k] - max): finite for any finite row; width >= 1. */
static inline double cffnn_logsumexp_d(const double *a, ptrdiff_t width) {
    double m = a[0], s = 0.0;
    for (ptrdiff_t k = 1; k < width; k++) if (a[k] > m) m = a[k];
    for (ptrdiff_t k = 0; k < width; k++) s += exp(a[k] - m);
    return m + log(s);
}
static inline double cffnn_logsumexp_f(const float *a, ptrdiff_t width) {
    float m = a[0];
    double s = 0.0;
    for (ptrdiff_t k = 1; k < width; k++) if (a[k] > m) m = a[k];
    for (ptrdiff_t k = 0; k < width; k++) s += (double)expf(a[k] - m);
    return (double)m + log(s);
}

#endif /* CFFNN_LOSSES_H */
