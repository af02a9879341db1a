# Optimiser updates over one flat parameter buffer (and its state buffers, same layout),
# with scikit-learn's rules:
#
#   SGD   v = momentum v - lr g;   p' = p + v                   (plain, or momentum)
#         p' = p + momentum v - lr g  (v already updated)       (Nesterov, as scikit-learn)
#   Adam  m = b1 m + (1 - b1) g;   s = b2 s + (1 - b2) g^2
#         p' = p - step m / (sqrt(s) + eps),  step = lr sqrt(1 - b2^t) / (1 - b1^t)
#
# Each is one fused loop (state update and step in one pass), nogil and inline, so that
# the compiled epoch loop (_kernels.pyx) runs them between minibatches. Adam's loop is C
# (include/cffnn/adam.h): its square root and divide gain from the AVX2 build there; so
# is SGD's (include/cffnn/sgd.h), whose flag must have the values' width. The new
# parameters go to `out`, which may be `params` itself (the epoch loop writes them into a
# second buffer and swaps it in only when they are all finite, so that a diverging step
# can be refused). Each returns whether every new parameter is finite: a flag ORed in the
# loop from the value's exponent bits (checks.h's cffnn_nonfinite_f / _d), an integer
# reduction the compiler vectorises with the rest (a floating-point flag made Adam's loop
# scalar: ~10 cycles per parameter); a second pass over out cost more. (RPROP's loop,
# full-batch and branching, is not vectorised in float64, flag or not.) Arithmetic is in
# the parameters' dtype, in the order of scikit-learn's NumPy code, with scalar
# coefficients (1 - b1 among them) formed in double by the caller.

from cython cimport floating

cdef extern from "cffnn/checks.h" nogil:
    unsigned int cffnn_nonfinite_f(float x)
    unsigned long long cffnn_nonfinite_d(double x)

cdef extern from "cffnn/adam.h" nogil:
    bint cffnn_adam_f(const float* p, const float* g, float* m, float* s, float* out,
                      Py_ssize_t n, float step, float beta_1, float one_minus_beta_1,
                      float beta_2, float one_minus_beta_2, float eps)
    bint cffnn_adam_d(const double* p, const double* g, double* m, double* s, double* out,
                      Py_ssize_t n, double step, double beta_1, double one_minus_beta_1,
                      double beta_2, double one_minus_beta_2, double eps)
    # the same update with out written by streaming stores (adam.h: for teams)
    bint cffnn_adam_streaming_f(const float* p, const float* g, float* m, float* s,
                                float* out, Py_ssize_t n, float step, float beta_1,
                                float one_minus_beta_1, float beta_2,
                                float one_minus_beta_2, float eps)
    bint cffnn_adam_streaming_d(const double* p, const double* g, double* m, double* s,
                                double* out, Py_ssize_t n, double step, double beta_1,
                                double one_minus_beta_1, double beta_2,
                                double one_minus_beta_2, double eps)


cdef extern from "cffnn/sgd.h" nogil:
    bint cffnn_sgd_f(const float* p, const float* g, const float* v, float* v_out,
                     float* out, Py_ssize_t n, float learning_rate, float momentum,
                     bint nesterov)
    bint cffnn_sgd_d(const double* p, const double* g, const double* v, double* v_out,
                     double* out, Py_ssize_t n, double learning_rate, double momentum,
                     bint nesterov)


cdef inline unsigned int nonfinite(floating x) noexcept nogil:
    """1 when x is NaN or infinite, else 0 (checks.h: from the exponent bits)."""
    if floating is float:
        return cffnn_nonfinite_f(x)
    else:
        return <unsigned int> cffnn_nonfinite_d(x)


cdef inline bint sgd_update(const floating* params, const floating* grad,
                            const floating* velocity, floating* velocity_out, floating* out,
                            Py_ssize_t n, floating learning_rate, floating momentum,
                            bint nesterov) noexcept nogil:
    # the loop is in include/cffnn/sgd.h; velocity_out may be velocity
    if floating is float:
        return cffnn_sgd_f(params, grad, velocity, velocity_out, out, n, learning_rate,
                           momentum, nesterov)
    else:
        return cffnn_sgd_d(params, grad, velocity, velocity_out, out, n, learning_rate,
                           momentum, nesterov)


cdef inline bint adam_update(const floating* params, const floating* grad,
                             floating* first_moment, floating* second_moment,
                             floating* out, Py_ssize_t n, floating step_size,
                             floating beta_1, floating one_minus_beta_1, floating beta_2,
                             floating one_minus_beta_2, floating epsilon,
                             bint streaming=False) noexcept nogil:
    # the loop is in include/cffnn/adam.h, compiled for AVX2 as well as the baseline;
    # streaming writes out with non-temporal stores (the same bits: adam.h says when)
    if floating is float:
        if streaming:
            return cffnn_adam_streaming_f(params, grad, first_moment, second_moment, out, n,
                                          step_size, beta_1, one_minus_beta_1, beta_2,
                                          one_minus_beta_2, epsilon)
        return cffnn_adam_f(params, grad, first_moment, second_moment, out, n, step_size,
                            beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, epsilon)
    else:
        if streaming:
            return cffnn_adam_streaming_d(params, grad, first_moment, second_moment, out, n,
                                          step_size, beta_1, one_minus_beta_1, beta_2,
                                          one_minus_beta_2, epsilon)
        return cffnn_adam_d(params, grad, first_moment, second_moment, out, n, step_size,
                            beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, epsilon)


cdef inline bint rprop_update(const floating* params, const floating* grad,
                              floating* previous_grad, floating* step_sizes, floating* out,
                              Py_ssize_t n, floating increase, floating decrease,
                              floating delta_min, floating delta_max) noexcept nogil:
    """iRPROP- (Igel and Huesken), with FANN's guard that a step size is at least 1e-4.

    d = max(step, 1e-4); if g * g_prev >= 0: step = min(d * increase, delta_max),
    else: step = max(d * decrease, delta_min) and g = 0 (no move, and no sign memory);
    p' = p - sign(g) step;  g_prev = g.
    """
    cdef Py_ssize_t i
    cdef floating g, size
    cdef unsigned int bad = 0
    for i in range(n):
        size = step_sizes[i] if step_sizes[i] > <floating> 1e-4 else <floating> 1e-4
        g = grad[i]
        if previous_grad[i] * g >= 0:
            size = min(size * increase, delta_max)
        else:
            size = max(size * decrease, delta_min)
            g = 0
        out[i] = params[i] - ((g > 0) - (g < 0)) * size
        step_sizes[i] = size
        previous_grad[i] = g
        bad |= nonfinite(out[i])
    return bad == 0
