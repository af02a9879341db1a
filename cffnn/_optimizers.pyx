# cython: boundscheck=False, wraparound=False, cdivision=True
"""Fused optimiser updates over a flat parameter buffer, with scikit-learn's rules.

    SGD   v = momentum v - lr g;   p += v                    (plain, or momentum)
          p += momentum v - lr g   (with v already updated)  (Nesterov, as scikit-learn)
    Adam  m = b1 m + (1 - b1) g;   s = b2 s + (1 - b2) g^2
          p -= step m / (sqrt(s) + eps),  step = lr sqrt(1 - b2^t) / (1 - b1^t)

Arithmetic is in the parameters' dtype, in the order scikit-learn's NumPy code uses, with
the scalar coefficients (1 - b1 among them) formed in double and then rounded to that
dtype as NumPy does, so that runs agree with scikit-learn's to rounding. cffnn/optimizers.py holds the objects and
their state; the compiled epoch loop calls these functions directly.
"""
from cython cimport floating
from libc.math cimport sqrt, sqrtf

cimport numpy as cnp

cnp.import_array()


cdef void sgd_update(floating* params, const floating* grad, floating* velocity,
                     Py_ssize_t n, floating learning_rate, floating momentum,
                     bint nesterov) noexcept nogil:
    cdef Py_ssize_t i
    if nesterov:
        for i in range(n):
            velocity[i] = momentum * velocity[i] - learning_rate * grad[i]
            params[i] += momentum * velocity[i] - learning_rate * grad[i]
    else:
        for i in range(n):
            velocity[i] = momentum * velocity[i] - learning_rate * grad[i]
            params[i] += velocity[i]


cdef void adam_update(floating* params, const floating* grad, floating* first_moment,
                      floating* second_moment, Py_ssize_t n, floating step_size,
                      floating beta_1, floating one_minus_beta_1, floating beta_2,
                      floating one_minus_beta_2, floating epsilon) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        first_moment[i] = beta_1 * first_moment[i] + one_minus_beta_1 * grad[i]
        second_moment[i] = beta_2 * second_moment[i] + one_minus_beta_2 * (grad[i] * grad[i])
        if floating is float:
            params[i] += -step_size * first_moment[i] / (sqrtf(second_moment[i]) + epsilon)
        else:
            params[i] += -step_size * first_moment[i] / (sqrt(second_moment[i]) + epsilon)


def sgd_step(floating[::1] params, const floating[::1] grad, floating[::1] velocity,
             double learning_rate, double momentum, bint nesterov):
    """One SGD step in place; arrays of equal length and dtype (checked by the caller)."""
    with nogil:
        sgd_update(&params[0], &grad[0], &velocity[0], params.shape[0],
                   <floating> learning_rate, <floating> momentum, nesterov)


def adam_step(floating[::1] params, const floating[::1] grad, floating[::1] first_moment,
              floating[::1] second_moment, double step_size, double beta_1, double beta_2,
              double epsilon):
    """One Adam step in place with the bias-corrected step size already computed."""
    with nogil:
        adam_update(&params[0], &grad[0], &first_moment[0], &second_moment[0],
                    params.shape[0], <floating> step_size, <floating> beta_1,
                    <floating> (1 - beta_1), <floating> beta_2, <floating> (1 - beta_2),
                    <floating> epsilon)
