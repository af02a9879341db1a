# The output layer's loss and delta, fused, from the logits A(L).
#
# For sample i with weight w_i = s_i / sum(s) (1/n without sample weights):
#   loss   = sum_i w_i l_i                            (l_i as in cffnn/losses.h)
#   delta  = dL/dA(L), row i = w_i dl_i/da_i:
#     identity + squared_error      a - y
#     logistic + binary_log_loss    sigmoid(a) - y
#     softmax  + log_loss           softmax(a) sum_k(y) - y      (= p - y for one-hot rows)
#     logistic + squared_error      g z (1 - z),                  g = z - y, z = sigmoid(a)
#     softmax  + squared_error      z (g - sum_k g_k z_k),        g = z - y, z = softmax(a)
# The logits are overwritten by delta: the training pass needs nothing else of them.

from cython cimport floating
from libc.math cimport exp, expf, log

from cffnn._layers cimport CFFNN_LOGISTIC, CFFNN_SOFTMAX, softmax_rows

cdef extern from "cffnn/losses.h" nogil:
    enum:
        CFFNN_SQUARED_ERROR
        CFFNN_BINARY_LOG_LOSS
        CFFNN_LOG_LOSS
    double cffnn_logsumexp_d(const double* a, Py_ssize_t width)
    double cffnn_logsumexp_f(const float* a, Py_ssize_t width)

cdef extern from "cffnn/activations.h" nogil:
    double cffnn_log1pexp_d(double a)
    float cffnn_log1pexp_f(float a)
    double cffnn_sigmoid_d(double a)
    float cffnn_sigmoid_f(float a)


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
    cdef floating z, g
    cdef double w, row_loss, total = 0.0, lse, y_sum, gz_sum
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
            if floating is float:
                lse = cffnn_logsumexp_f(a, width)
            else:
                lse = cffnn_logsumexp_d(a, width)
            y_sum = 0.0
            for k in range(width):
                row_loss += y[k] * (lse - a[k])
                y_sum += y[k]
            for k in range(width):
                a[k] = <floating> (w * (exp(a[k] - lse) * y_sum - y[k]))
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
