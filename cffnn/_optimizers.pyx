# cython: boundscheck=False, wraparound=False, cdivision=True
"""Python entry points of the fused optimiser updates (the loops are in _optimizers.pxd).

cffnn/optimizers.py validates the arrays and holds the state; these update in place and
return whether every new parameter is finite (the flag the epoch loop refuses a step on).
"""
from cython cimport floating

from cffnn._optimizers cimport adam_update, rprop_update, sgd_update


cdef check_lengths(Py_ssize_t n, lengths):
    """ValueError unless every (name, length) of lengths has length n: the loops write
    n values into each state array. optimizers.py always passes matching arrays, but a
    length read twice from a shared optimiser could change between the reads (two Python
    threads stepping one Adam over networks of two sizes wrote past an array's end)."""
    for name, length in lengths:
        if length != n:
            raise ValueError(f"{name} has {length} values but params has {n}")


def sgd_step(floating[::1] params, const floating[::1] grad, floating[::1] velocity,
             double learning_rate, double momentum, bint nesterov):
    """One SGD step in place; arrays of equal length (checked here) and dtype."""
    cdef bint finite
    check_lengths(params.shape[0], (("grad", grad.shape[0]),
                                    ("velocity", velocity.shape[0])))
    with nogil:
        finite = sgd_update(&params[0], &grad[0], &velocity[0], &velocity[0], &params[0],
                            params.shape[0], <floating> learning_rate, <floating> momentum,
                            nesterov)
    return finite


def adam_step(floating[::1] params, const floating[::1] grad, floating[::1] first_moment,
              floating[::1] second_moment, double step_size, double beta_1, double beta_2,
              double epsilon):
    """One Adam step in place, with the bias-corrected step size already computed."""
    cdef bint finite
    check_lengths(params.shape[0], (("grad", grad.shape[0]),
                                    ("first_moment", first_moment.shape[0]),
                                    ("second_moment", second_moment.shape[0])))
    with nogil:
        finite = adam_update(&params[0], &grad[0], &first_moment[0], &second_moment[0],
                             &params[0], params.shape[0], <floating> step_size,
                             <floating> beta_1, <floating> (1 - beta_1), <floating> beta_2,
                             <floating> (1 - beta_2), <floating> epsilon)
    return finite


def rprop_step(floating[::1] params, const floating[::1] grad, floating[::1] previous_grad,
               floating[::1] step_sizes, double increase, double decrease, double delta_min,
               double delta_max):
    """One iRPROP- step in place (full-batch gradient)."""
    cdef bint finite
    check_lengths(params.shape[0], (("grad", grad.shape[0]),
                                    ("previous_grad", previous_grad.shape[0]),
                                    ("step_sizes", step_sizes.shape[0])))
    with nogil:
        finite = rprop_update(&params[0], &grad[0], &previous_grad[0], &step_sizes[0],
                              &params[0], params.shape[0], <floating> increase,
                              <floating> decrease, <floating> delta_min, <floating> delta_max)
    return finite
