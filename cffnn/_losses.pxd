# The output layer's loss and delta, fused, from the logits A(L).
#
# For sample i with weight w_i = s_i / sum(s) (1/n without sample weights):
#   loss   = sum_i w_i l_i                            (l_i as in cffnn/losses.h)
#   delta  = dL/dA(L), row i = w_i dl_i/da_i:
#     identity + squared_error      a - y
#     logistic + binary_log_loss    sigmoid(a) - y
#     softmax  + log_loss           softmax(a) sum_k(y) - y      (= p - y for one-hot rows)
#     exp      + poisson            exp(a) - y
#     logistic + squared_error      g z (1 - z),                  g = z - y, z = sigmoid(a)
#     softmax  + squared_error      z (g - sum_k g_k z_k),        g = z - y, z = softmax(a)
# The logits are overwritten by delta: the training pass needs nothing else of them.

from cython cimport floating
from libc.math cimport exp, expf, log

from cffnn._layers cimport CFFNN_LOGISTIC, CFFNN_SOFTMAX, row_maximum, softmax_rows

cdef extern from "cffnn/losses.h" nogil:
    enum:
        CFFNN_SQUARED_ERROR
        CFFNN_BINARY_LOG_LOSS
        CFFNN_LOG_LOSS
        CFFNN_POISSON

cdef extern from "cffnn/activations.h" nogil:
    double cffnn_log1pexp_d(double a)
    float cffnn_log1pexp_f(float a)
    double cffnn_sigmoid_d(double a)
    float cffnn_sigmoid_f(float a)
    void cffnn_exp_nonpositive_array_f(float* x, Py_ssize_t n)


cdef inline double softmax_log_loss_f(
        float* logits, const float* targets, const double* sample_weight,
        double inv_weight_sum, Py_ssize_t n_rows, Py_ssize_t width) noexcept nogil:
    """The log_loss branch below for float32, in three passes over the block so that its
    exponentials go through one vectorised loop (activations.h) instead of a libm call
    each: shift each row by its maximum, exponentiate the block, then normalise."""
    cdef Py_ssize_t i, k
    cdef float* a
    cdef const float* y
    cdef float row_max
    cdef double w, total = 0.0, row_loss, y_sum, exp_sum
    cdef float scale, weight
    for i in range(n_rows):      # l = sum_k y_k (m - a_k) + y_sum log(s), first term
        a = logits + i * width
        y = targets + i * width
        w = inv_weight_sum if sample_weight == NULL else sample_weight[i] * inv_weight_sum
        row_max = row_maximum(a, width)
        row_loss = 0.0
        for k in range(width):
            row_loss += y[k] * (row_max - a[k])
            a[k] = a[k] - row_max
        total += w * row_loss
    cffnn_exp_nonpositive_array_f(logits, n_rows * width)
    for i in range(n_rows):      # second term, and delta = w (softmax y_sum - y)
        a = logits + i * width
        y = targets + i * width
        w = inv_weight_sum if sample_weight == NULL else sample_weight[i] * inv_weight_sum
        y_sum = 0.0
        exp_sum = 0.0
        for k in range(width):
            y_sum += y[k]
            exp_sum += a[k]
        total += w * y_sum * log(exp_sum)
        # one division a row, then float arithmetic (dividing each value in double took
        # most of this function's time)
        scale = <float> (w * y_sum / exp_sum)
        weight = <float> w
        for k in range(width):
            a[k] = a[k] * scale - weight * y[k]
    return total


cdef inline double loss_and_output_delta(
        floating* logits, const floating* targets, const double* sample_weight,
        double inv_weight_sum, Py_ssize_t n_rows, Py_ssize_t width,
        int output, int loss) noexcept nogil:
    """Weighted loss of a block of rows; logits (n_rows, width) become delta(L).

    sample_weight is NULL or points at this block's n_rows weights.
    """
    cdef Py_ssize_t i, k
    cdef floating* a
    cdef const floating* y
    cdef floating z, g, row_max
    cdef double w, row_loss, total = 0.0, y_sum, gz_sum, exp_sum
    if floating is float:
        if loss == CFFNN_LOG_LOSS:
            return softmax_log_loss_f(logits, targets, sample_weight, inv_weight_sum,
                                      n_rows, width)
    for i in range(n_rows):
        a = logits + i * width
        y = targets + i * width
        w = inv_weight_sum if sample_weight == NULL else sample_weight[i] * inv_weight_sum
        row_loss = 0.0
        if loss == CFFNN_BINARY_LOG_LOSS:            # logistic output
            for k in range(width):
                if floating is float:
                    row_loss += cffnn_log1pexp_f(a[k]) - y[k] * a[k]
                    a[k] = <floating> (w * (cffnn_sigmoid_f(a[k]) - y[k]))
                else:
                    row_loss += cffnn_log1pexp_d(a[k]) - y[k] * a[k]
                    a[k] = w * (cffnn_sigmoid_d(a[k]) - y[k])
        elif loss == CFFNN_LOG_LOSS:                 # softmax output
            # l = sum_k y_k (lse - a_k) = y_sum log(s) + sum_k y_k (m - a_k), with
            # m = max a, s = sum_k e_k, e_k = exp(a_k - m) <= 1: one exp per logit, in
            # the data's dtype, and e_k / s is then the softmax probability of the delta.
            row_max = row_maximum(a, width)
            y_sum = 0.0
            exp_sum = 0.0
            for k in range(width):
                y_sum += y[k]
                row_loss += y[k] * (row_max - a[k])
                if floating is float:
                    a[k] = expf(a[k] - row_max)
                else:
                    a[k] = exp(a[k] - row_max)
                exp_sum += a[k]
            row_loss += y_sum * log(exp_sum)
            for k in range(width):
                a[k] = <floating> (w * (a[k] / exp_sum * y_sum - y[k]))
        elif loss == CFFNN_POISSON:                  # exp output
            for k in range(width):
                if floating is float:
                    z = expf(a[k])
                else:
                    z = exp(a[k])
                row_loss += z - y[k] * a[k] - y[k]
                if y[k] > 0:
                    row_loss += y[k] * log(y[k])
                a[k] = <floating> (w * (z - y[k]))
        elif output == CFFNN_SOFTMAX:                # softmax + squared_error
            softmax_rows(a, 1, width)
            gz_sum = 0.0
            for k in range(width):
                g = a[k] - y[k]
                row_loss += 0.5 * g * g
                gz_sum += g * a[k]
            for k in range(width):
                a[k] = <floating> (w * a[k] * ((a[k] - y[k]) - gz_sum))
        else:                                        # squared_error, identity or logistic
            for k in range(width):
                if output == CFFNN_LOGISTIC:
                    if floating is float:
                        z = cffnn_sigmoid_f(a[k])
                    else:
                        z = cffnn_sigmoid_d(a[k])
                else:
                    z = a[k]
                g = z - y[k]
                row_loss += 0.5 * g * g
                if output == CFFNN_LOGISTIC:
                    g = g * z * (1 - z)
                a[k] = <floating> (w * g)
        total += w * row_loss
    return total
