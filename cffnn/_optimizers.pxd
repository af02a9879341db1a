# Optimiser updates over one flat parameter buffer (and its state buffers, same layout).
# Each is one fused loop: state update and parameter step in a single pass, nogil, so the
# compiled epoch loop can call them between minibatches without touching Python.

from cython cimport floating

cdef void sgd_update(floating* params, const floating* grad, floating* velocity,
                     Py_ssize_t n, floating learning_rate, floating momentum,
                     bint nesterov) noexcept nogil

cdef void adam_update(floating* params, const floating* grad, floating* first_moment,
                      floating* second_moment, Py_ssize_t n, floating step_size,
                      floating beta_1, floating one_minus_beta_1, floating beta_2,
                      floating one_minus_beta_2, floating epsilon) noexcept nogil
