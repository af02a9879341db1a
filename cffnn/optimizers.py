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
from cffnn._validation import check_nonnegative


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


def _state_like(state, params, fill=0.0):
    """state if it is a writable C-contiguous array matching params; a writable copy if it
    matches but is read-only or strided (a memory-mapped model, say); else params' shape
    and dtype filled with `fill`. The compiled updates write into what this returns."""
    if (not isinstance(state, np.ndarray) or state.shape != params.shape
            or state.dtype != params.dtype):
        return np.full_like(params, fill)
    if not (state.flags.writeable and state.flags.c_contiguous and state.flags.aligned):
        return np.array(state, order="C")
    return state


class SGD:
    """Stochastic gradient descent, with optional momentum and Nesterov momentum.

    v = momentum * v - learning_rate * grad, then params += v, or, with nesterov,
    params += momentum * v - learning_rate * grad: scikit-learn's SGDOptimizer.

    schedule, scikit-learn's learning-rate schedules, applied by Network.fit_epoch at the
    end of every epoch (end_epoch):
      "constant"    learning_rate stays learning_rate_init;
      "invscaling"  learning_rate = learning_rate_init / (t + 1) ** power_t, t = samples
                    seen so far;
      "adaptive"    learning_rate is divided by 5 once the epoch loss has failed to beat
                    the best loss by tol for more than n_iter_no_change epochs; when it is
                    already <= 1e-6, `converged` becomes True instead (time to stop).
    """

    SCHEDULES = ("constant", "invscaling", "adaptive")

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False,
                 schedule="constant", power_t=0.5, n_iter_no_change=10, tol=1e-4):
        self.learning_rate_init = check_nonnegative("learning_rate", learning_rate)
        self.momentum = check_nonnegative("momentum", momentum, upper=1.0)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be a bool, got {nesterov!r}")
        self.nesterov = bool(nesterov)
        if schedule not in self.SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(self.SCHEDULES)}, "
                             f"got {schedule!r}")
        self.schedule = schedule
        self.power_t = check_nonnegative("power_t", power_t)
        if (isinstance(n_iter_no_change, bool)
                or not isinstance(n_iter_no_change, numbers.Integral) or n_iter_no_change < 1):
            raise ValueError(f"n_iter_no_change must be an int >= 1, got {n_iter_no_change!r}")
        self.n_iter_no_change = int(n_iter_no_change)
        self.tol = check_nonnegative("tol", tol)
        self.reset()

    def step(self, params, grad):
        """params (n_params,) += the update for grad (n_params,), in place."""
        grad = _check_step_arrays(params, grad)
        _optimizers.sgd_step(params, grad, self._prepare(params), self.learning_rate,
                             self.momentum, self.nesterov)

    def _prepare(self, params):
        """The velocity for params: kept when it matches them, else fresh. Returned, not
        read again from self, which another thread may change."""
        self.velocity = velocity = _state_like(self.velocity, params)
        return velocity

    def end_epoch(self, epoch_loss, n_samples):
        """Apply the schedule after an epoch of n_samples rows whose mean loss was
        epoch_loss (Network.fit_epoch calls this)."""
        self.samples_seen += n_samples
        if self.schedule == "invscaling":
            self.learning_rate = (self.learning_rate_init
                                  / (self.samples_seen + 1) ** self.power_t)
        elif self.schedule == "adaptive":
            if epoch_loss > self.best_loss - self.tol:
                self.no_improvement_count += 1
            else:
                self.no_improvement_count = 0
            self.best_loss = min(self.best_loss, epoch_loss)
            if self.no_improvement_count > self.n_iter_no_change:
                if self.learning_rate <= 1e-6:
                    self.converged = True
                else:
                    self.learning_rate /= 5.0
                    self.no_improvement_count = 0

    def reset(self):
        """Forget the velocity and the schedule's progress (start from rest)."""
        self.velocity = None
        self.learning_rate = self.learning_rate_init
        self.samples_seen = 0
        self.best_loss = math.inf
        self.no_improvement_count = 0
        self.converged = False

    def __repr__(self):
        return (f"SGD(learning_rate={self.learning_rate_init}, momentum={self.momentum}, "
                f"nesterov={self.nesterov}, schedule={self.schedule!r})")


class Adam:
    """Adam, as scikit-learn's AdamOptimizer.

    m = beta_1 m + (1 - beta_1) grad;  s = beta_2 s + (1 - beta_2) grad^2;  t += 1
    params -= lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(s) + epsilon)
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        self.learning_rate = check_nonnegative("learning_rate", learning_rate)
        self.beta_1 = check_nonnegative("beta_1", beta_1, upper=1.0, upper_open=True)
        self.beta_2 = check_nonnegative("beta_2", beta_2, upper=1.0, upper_open=True)
        self.epsilon = check_nonnegative("epsilon", epsilon)
        self.reset()

    def step(self, params, grad):
        """params (n_params,) += the update for grad (n_params,), in place."""
        grad = _check_step_arrays(params, grad)
        first_moment, second_moment = self._prepare(params)
        self.t += 1
        step_size = (self.learning_rate * math.sqrt(1 - self.beta_2 ** self.t)
                     / (1 - self.beta_1 ** self.t))
        _optimizers.adam_step(params, grad, first_moment, second_moment, step_size,
                              self.beta_1, self.beta_2, self.epsilon)

    def _prepare(self, params):
        """(first_moment, second_moment) for params: kept when they match them, else
        fresh. Returned, not read again from self, which another thread may change."""
        self.first_moment = first_moment = _state_like(self.first_moment, params)
        self.second_moment = second_moment = _state_like(self.second_moment, params)
        return first_moment, second_moment

    def reset(self):
        """Forget the moments and the step count."""
        self.t = 0
        self.first_moment = None
        self.second_moment = None

    def __repr__(self):
        return (f"Adam(learning_rate={self.learning_rate}, beta_1={self.beta_1}, "
                f"beta_2={self.beta_2}, epsilon={self.epsilon})")


class RPROP:
    """iRPROP- (resilient backpropagation without weight backtracking), full batch.

    Per parameter, a step size grows by `increase` while the gradient keeps its sign and
    shrinks by `decrease` when it flips (that step then makes no move); the parameter
    moves by the step size against the gradient's sign. Defaults are FANN's (increase
    1.2, decrease 0.5, delta_min 0, delta_max 50, delta_zero 0.1), and so is the guard
    that a step size is at least 1e-4 before it is scaled. Unlike FANN, a zero gradient
    moves nothing and weights are not clipped to +-1500. Network.fit_epoch gives RPROP
    the whole epoch as one batch.
    """

    def __init__(self, increase=1.2, decrease=0.5, delta_min=0.0, delta_max=50.0,
                 delta_zero=0.1):
        self.increase = check_nonnegative("increase", increase)
        self.decrease = check_nonnegative("decrease", decrease, upper=1.0)
        if self.increase < 1.0:
            raise ValueError(f"increase must be >= 1, got {self.increase}")
        self.delta_min = check_nonnegative("delta_min", delta_min)
        self.delta_max = check_nonnegative("delta_max", delta_max)
        self.delta_zero = check_nonnegative("delta_zero", delta_zero)
        if self.delta_max < self.delta_min:
            raise ValueError("delta_max must be >= delta_min")
        self.reset()

    def _prepare(self, params):
        """(step_sizes, previous_grad) for params: kept when they match them (copied if
        read-only), else fresh. Returned, not read again from self, which another thread
        may change."""
        step_sizes, previous_grad = self.step_sizes, self.previous_grad
        if not all(isinstance(state, np.ndarray) and state.shape == params.shape
                   and state.dtype == params.dtype for state in (step_sizes, previous_grad)):
            step_sizes = previous_grad = None
        self.step_sizes = step_sizes = _state_like(step_sizes, params, fill=self.delta_zero)
        self.previous_grad = previous_grad = _state_like(previous_grad, params)
        return step_sizes, previous_grad

    def step(self, params, grad):
        """params (n_params,) += the update for the full-batch grad (n_params,), in place."""
        grad = _check_step_arrays(params, grad)
        step_sizes, previous_grad = self._prepare(params)
        _optimizers.rprop_step(params, grad, previous_grad, step_sizes, self.increase,
                               self.decrease, self.delta_min, self.delta_max)

    def reset(self):
        """Forget the step sizes and the previous gradient."""
        self.step_sizes = None
        self.previous_grad = None

    def __repr__(self):
        return (f"RPROP(increase={self.increase}, decrease={self.decrease}, "
                f"delta_min={self.delta_min}, delta_max={self.delta_max}, "
                f"delta_zero={self.delta_zero})")
