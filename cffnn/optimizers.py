"""Gradient-descent optimisers over a flat parameter buffer (scikit-learn's update rules).

Each optimiser holds its hyper-parameters and its state: flat arrays in the layout and
dtype of the parameters, created at the first step. ``step(params, grad)`` updates params
in place with one fused compiled loop (cffnn/_optimizers.pyx); the compiled epoch loop of
Network.fit_epoch will use the same loops between minibatches.
"""
import math
import numbers

import numpy as np

from cffnn import _optimizers


def _check_positive(name, value, upper=math.inf, upper_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value >= 0 and (value < upper if upper_open
                                                      else value <= upper)):
        bound = f"< {upper}" if upper_open else f"<= {upper}"
        raise ValueError(f"{name} must be finite, >= 0 and {bound}, got {value}")
    return value


def _check_step_arrays(params, grad):
    """params: writeable C-contiguous 1-D float32/float64 ndarray; grad: same shape, cast
    to params' dtype."""
    if not (isinstance(params, np.ndarray) and params.ndim == 1
            and params.dtype in (np.float32, np.float64) and params.flags.c_contiguous
            and params.flags.writeable):
        raise TypeError("params must be a writeable, C-contiguous 1-D float32 or float64 "
                        "array (such as Network.params)")
    grad = np.ascontiguousarray(grad, dtype=params.dtype)
    if grad.shape != params.shape:
        raise ValueError(f"grad has shape {grad.shape} but params has {params.shape}")
    return grad


def _state_like(state, params):
    """state if it already matches params, else zeros of params' shape and dtype."""
    if state is None or state.shape != params.shape or state.dtype != params.dtype:
        return np.zeros_like(params)
    return state


class SGD:
    """Stochastic gradient descent, with optional momentum and Nesterov momentum.

    v = momentum * v - learning_rate * grad, then params += v, or, with nesterov,
    params += momentum * v - learning_rate * grad: scikit-learn's SGDOptimizer.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        self.learning_rate = _check_positive("learning_rate", learning_rate)
        self.momentum = _check_positive("momentum", momentum, upper=1.0)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be a bool, got {nesterov!r}")
        self.nesterov = bool(nesterov)
        self.velocity = None

    def step(self, params, grad):
        """params (n_params,) += the update for grad (n_params,), in place."""
        grad = _check_step_arrays(params, grad)
        self.velocity = _state_like(self.velocity, params)
        _optimizers.sgd_step(params, grad, self.velocity, self.learning_rate,
                             self.momentum, self.nesterov)

    def reset(self):
        """Forget the velocity (the next step starts from rest)."""
        self.velocity = None

    def __repr__(self):
        return (f"SGD(learning_rate={self.learning_rate}, momentum={self.momentum}, "
                f"nesterov={self.nesterov})")


class Adam:
    """Adam, as scikit-learn's AdamOptimizer.

    m = beta_1 m + (1 - beta_1) grad;  s = beta_2 s + (1 - beta_2) grad^2;  t += 1
    params -= lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(s) + epsilon)
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        self.learning_rate = _check_positive("learning_rate", learning_rate)
        self.beta_1 = _check_positive("beta_1", beta_1, upper=1.0, upper_open=True)
        self.beta_2 = _check_positive("beta_2", beta_2, upper=1.0, upper_open=True)
        self.epsilon = _check_positive("epsilon", epsilon)
        self.reset()

    def step(self, params, grad):
        """params (n_params,) += the update for grad (n_params,), in place."""
        grad = _check_step_arrays(params, grad)
        self.first_moment = _state_like(self.first_moment, params)
        self.second_moment = _state_like(self.second_moment, params)
        self.t += 1
        step_size = (self.learning_rate * math.sqrt(1 - self.beta_2 ** self.t)
                     / (1 - self.beta_1 ** self.t))
        _optimizers.adam_step(params, grad, self.first_moment, self.second_moment,
                              step_size, self.beta_1, self.beta_2, self.epsilon)

    def reset(self):
        """Forget the moments and the step count."""
        self.t = 0
        self.first_moment = None
        self.second_moment = None

    def __repr__(self):
        return (f"Adam(learning_rate={self.learning_rate}, beta_1={self.beta_1}, "
                f"beta_2={self.beta_2}, epsilon={self.epsilon})")
