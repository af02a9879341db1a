# Elementwise work around the GEMMs of a dense layer, over a row-major block of
# shape (n_rows, width). One loop per activation code, so that the compiler can
# vectorise the cheap ones (relu, identity) instead of switching per element.
#
#   bias_activation:      A += b;  (A saved for gelu);  Z = h(A) in place
#   multiply_derivative:  delta *= h'(A), with h' taken from Z (from A for gelu)

from cython cimport floating

cdef extern from "cffnn/activations.h" nogil:
    enum:
        CFFNN_IDENTITY
        CFFNN_LOGISTIC
        CFFNN_TANH
        CFFNN_RELU
        CFFNN_LEAKY_RELU
        CFFNN_ELU
        CFFNN_SOFTPLUS
        CFFNN_GELU
        CFFNN_SOFTMAX
        CFFNN_EXP
    double CFFNN_LEAKY_SLOPE
    double cffnn_sigmoid_d(double a)
    float cffnn_sigmoid_f(float a)
    void cffnn_tanh_array_f(float* z, Py_ssize_t n)
    void cffnn_tanh_array_d(double* z, Py_ssize_t n)
    void cffnn_sigmoid_array_f(float* z, Py_ssize_t n)
    void cffnn_sigmoid_array_d(double* z, Py_ssize_t n)
    double cffnn_gelu_d(double a)
    float cffnn_softplus_fast_f(float a)
    float cffnn_softplus_grad_fast_f(float z)
    float cffnn_gelu_f(float a)
    double cffnn_gelu_grad_d(double a)
    float cffnn_gelu_grad_f(float a)
    double cffnn_activate_d(int code, double a)
    float cffnn_activate_f(int code, float a)
    double cffnn_derivative_d(int code, double z, double a)
    float cffnn_derivative_f(int code, float z, float a)
    void cffnn_relu_delta_f(float* delta, const float* z, Py_ssize_t n)
    void cffnn_relu_delta_d(double* delta, const double* z, Py_ssize_t n)
    void cffnn_tanh_delta_f(float* delta, const float* z, Py_ssize_t n)
    void cffnn_tanh_delta_d(double* delta, const double* z, Py_ssize_t n)
    void cffnn_logistic_delta_f(float* delta, const float* z, Py_ssize_t n)
    void cffnn_logistic_delta_d(double* delta, const double* z, Py_ssize_t n)

from libc.math cimport exp, expf


cdef inline floating row_maximum(const floating* row, Py_ssize_t width) noexcept nogil:
    """max_k row[k] of one row of width >= 1 (softmax subtracts it before exp)."""
    cdef Py_ssize_t k
    cdef floating maximum = row[0]
    for k in range(1, width):
        if row[k] > maximum:
            maximum = row[k]
    return maximum


cdef inline void softmax_rows(floating* z, Py_ssize_t n_rows, Py_ssize_t width) noexcept nogil:
    """z[i, :] = exp(a[i, :] - max) / sum exp(a[i, :] - max), in place; sum in double."""
    cdef Py_ssize_t i, k
    cdef floating* row
    cdef floating row_max
    cdef double total
    for i in range(n_rows):
        row = z + i * width
        row_max = row_maximum(row, width)
        total = 0.0
        for k in range(width):
            if floating is float:
                row[k] = expf(row[k] - row_max)
            else:
                row[k] = exp(row[k] - row_max)
            total += row[k]
        for k in range(width):
            row[k] = <floating> (row[k] / total)


cdef inline void bias_activation(floating* z, const floating* bias,
                                 Py_ssize_t n_rows, Py_ssize_t width, int code,
                                 floating* preactivation) noexcept nogil:
    """z holds Z_prev W of shape (n_rows, width); on exit z = h(Z_prev W + b).

    preactivation, when not NULL, receives A = Z_prev W + b (gelu needs it for h').
    bias may be NULL when z already holds Z_prev W + b.
    """
    cdef Py_ssize_t i, j, n = n_rows * width
    if bias != NULL:
        for i in range(n_rows):
            for j in range(width):
                z[i * width + j] += bias[j]
    if preactivation != NULL:
        for i in range(n):
            preactivation[i] = z[i]
    if code == CFFNN_IDENTITY:
        return
    if code == CFFNN_RELU:
        for i in range(n):
            z[i] = z[i] if z[i] > 0 else 0
    elif code == CFFNN_LEAKY_RELU:
        for i in range(n):
            z[i] = z[i] if z[i] > 0 else <floating> CFFNN_LEAKY_SLOPE * z[i]
    elif code == CFFNN_TANH:                   # vectorised, AVX2 where the CPU has it
        if floating is float:
            cffnn_tanh_array_f(z, n)
        else:
            cffnn_tanh_array_d(z, n)
    elif code == CFFNN_LOGISTIC:               # vectorised, AVX2 where the CPU has it
        if floating is float:
            cffnn_sigmoid_array_f(z, n)
        else:
            cffnn_sigmoid_array_d(z, n)
    elif code == CFFNN_GELU:
        for i in range(n):      # one loop a code, which the compiler can vectorise
            if floating is float:
                z[i] = cffnn_gelu_f(z[i])
            else:
                z[i] = cffnn_gelu_d(z[i])
    elif code == CFFNN_SOFTPLUS and floating is float:
        for i in range(n):      # vectorised by the compiler (SSE2)
            z[i] = cffnn_softplus_fast_f(<float> z[i])
    elif code == CFFNN_SOFTMAX:
        softmax_rows(z, n_rows, width)
    else:
        for i in range(n):
            if floating is float:
                z[i] = cffnn_activate_f(code, z[i])
            else:
                z[i] = cffnn_activate_d(code, z[i])


cdef inline void multiply_derivative(floating* delta, const floating* z,
                                     const floating* preactivation,
                                     Py_ssize_t n, int code) noexcept nogil:
    """delta[i] *= h'(a[i]) over n elements, h' taken from z = h(a) (from a for gelu)."""
    cdef Py_ssize_t i
    if code == CFFNN_IDENTITY:
        return
    # relu, tanh, logistic: activations.h's loops, also built for AVX2 (the same bits)
    if code == CFFNN_RELU:
        if floating is float:
            cffnn_relu_delta_f(delta, z, n)
        else:
            cffnn_relu_delta_d(delta, z, n)
    elif code == CFFNN_TANH:
        if floating is float:
            cffnn_tanh_delta_f(delta, z, n)
        else:
            cffnn_tanh_delta_d(delta, z, n)
    elif code == CFFNN_LOGISTIC:
        if floating is float:
            cffnn_logistic_delta_f(delta, z, n)
        else:
            cffnn_logistic_delta_d(delta, z, n)
    # the others: one loop a code, so that the compiler vectorises them (the switch of
    # cffnn_derivative_f inside the loop kept it scalar); the same arithmetic
    elif code == CFFNN_LEAKY_RELU:
        for i in range(n):
            delta[i] *= <floating> 1 if z[i] > 0 else <floating> CFFNN_LEAKY_SLOPE
    elif code == CFFNN_ELU:
        for i in range(n):
            delta[i] *= <floating> 1 if z[i] > 0 else z[i] + <floating> 1
    elif code == CFFNN_SOFTPLUS and floating is float:
        for i in range(n):
            delta[i] *= cffnn_softplus_grad_fast_f(<float> z[i])
    elif code == CFFNN_GELU:
        for i in range(n):
            if floating is float:
                delta[i] *= cffnn_gelu_grad_f(preactivation[i])
            else:
                delta[i] *= cffnn_gelu_grad_d(preactivation[i])
    else:
        for i in range(n):
            if floating is float:
                delta[i] *= cffnn_derivative_f(code, z[i], 0)
            else:
                delta[i] *= cffnn_derivative_d(code, z[i], 0)
