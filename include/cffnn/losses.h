/*
 * cffnn/losses.h: loss codes and the row reductions the output layer needs.
 *
 *   squared_error    l_i = 1/2 sum_k (z_ik - y_ik)^2
 *   binary_log_loss  l_i = sum_k log(1 + e^a_ik) - y_ik a_ik     (= -[y log p + (1-y) log(1-p)])
 *   log_loss         l_i = sum_k y_ik (logsumexp(a_i) - a_ik)     (= -sum_k y_ik log softmax(a_i)_k)
 *   poisson          l_i = sum_k e^a_ik - y_ik a_ik + y_ik log y_ik - y_ik
 *                    (half the Poisson deviance with an exp output, as scikit-learn's
 *                    MLPRegressor(loss="poisson") writes it, constant terms included)
 *
 * Both log losses are written on the logits a, so that a logit of 1e4 gives a finite
 * loss instead of log(0): log(1 + e^a) through cffnn_log1pexp (activations.h), and
 * logsumexp with the row maximum subtracted (cffnn/_losses.pxd, fused with the softmax
 * of the output delta). Reductions accumulate in double whatever the data type.
 */
#ifndef CFFNN_LOSSES_H
#define CFFNN_LOSSES_H

enum cffnn_loss {
    CFFNN_SQUARED_ERROR = 0,
    CFFNN_BINARY_LOG_LOSS = 1,
    CFFNN_LOG_LOSS = 2,
    CFFNN_POISSON = 3
};

#endif /* CFFNN_LOSSES_H */
