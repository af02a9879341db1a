"""cffnn.Network: a dense feed-forward network whose maths runs in compiled code.

    A[k] = Z[k-1] W[k] + b[k],  Z[k] = h_k(A[k]),  Z[-1] = X,  output Z[L-1]

All weights and biases live in one flat buffer, `params` (W[0] row-major, b[0], W[1],
b[1], ...); `weights[k]` and `biases[k]` are views into it. This class validates and
converts inputs once, then hands raw buffers to cffnn._kernels.
"""
import math
import numbers

import numpy as np

from cffnn import _kernels
from cffnn._parallelism import barrier_team_threads, blas_limits, effective_n_threads
from cffnn.optimizers import RPROP, SGD, Adam
from cffnn._validation import (
    INT_MAX, check_alpha, check_features, check_nonnegative, check_sample_weight,
    check_targets)

HIDDEN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu", "leaky_relu", "elu",
                      "softplus", "gelu")
OUTPUT_LOSSES = {   # output activation -> losses it may be paired with, canonical first
    "identity": ("squared_error",),
    "logistic": ("binary_log_loss", "squared_error"),
    "softmax": ("log_loss", "squared_error"),
    "exp": ("poisson",),
}
# He-uniform initialisation for these, Glorot-uniform (scikit-learn's bounds) otherwise.
RELU_FAMILY = ("relu", "leaky_relu", "elu", "gelu")


class Network:
    """A multilayer perceptron with compiled forward pass, loss and gradient.

    Parameters
    ----------
    layer_sizes : sequence of int
        Widths from input to output, e.g. ``[784, 256, 128, 10]``; ``[n_in, n_out]``
        (no hidden layer) is allowed.
    activation : str or sequence of str, default="relu"
        Hidden activation, one name for every hidden layer or one per hidden layer:
        identity, logistic, tanh, relu, leaky_relu (slope 0.01), elu, softplus, gelu
        (tanh form).
    output : {"identity", "logistic", "softmax", "exp"}, default="softmax"
        exp (e^a, for counts and rates) pairs with the poisson loss only.
    loss : {"squared_error", "binary_log_loss", "log_loss", "poisson"}, default=None
        None picks the canonical partner of ``output``. Also allowed: squared_error
        with a logistic or softmax output (then the gradient takes the general chain rule).
    dtype : numpy.float32 or numpy.float64, default=numpy.float32
        Dtype of the parameters, the computations and the outputs.
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        Seeds the initialisation: Glorot-uniform with scikit-learn's bounds
        (sqrt(6 / (fan_in + fan_out)), factor 2 instead of 6 for logistic), He-uniform
        (sqrt(6 / fan_in)) for relu, leaky_relu, elu and gelu layers. Biases are drawn
        with the same bound, as scikit-learn does.

    Attributes
    ----------
    dtype : numpy.dtype
    params : ndarray of shape (n_params,)
        The flat parameter buffer. Assigning to ``net.params`` copies into it.
    weights : list of ndarray, weights[k] of shape (layer_sizes[k], layer_sizes[k+1])
    biases : list of ndarray, biases[k] of shape (layer_sizes[k+1],)
    """

    def __init__(self, layer_sizes, activation="relu", output="softmax", loss=None,
                 dtype=np.float32, random_state=None):
        self.layer_sizes = _check_layer_sizes(layer_sizes)
        n_hidden = len(self.layer_sizes) - 2
        self.activations = _check_activations(activation, n_hidden)
        self.output, self.loss_name = _check_output_and_loss(output, loss,
                                                             self.layer_sizes[-1])
        self.dtype = _check_dtype(dtype)

        sizes = self.layer_sizes
        n_layers = len(sizes) - 1
        self._sizes = np.asarray(sizes, dtype=np.intp)
        self._codes = np.asarray(
            [_kernels.ACTIVATION_CODES[name] for name in self.activations + (self.output,)],
            dtype=np.intc)
        self._loss_code = _kernels.LOSS_CODES[self.loss_name]
        self._weight_offsets = np.empty(n_layers, dtype=np.intp)
        self._bias_offsets = np.empty(n_layers, dtype=np.intp)
        offset = 0
        for k in range(n_layers):
            self._weight_offsets[k] = offset
            offset += sizes[k] * sizes[k + 1]
            self._bias_offsets[k] = offset
            offset += sizes[k + 1]
        self._params = _aligned_empty(offset, self.dtype)
        self._compiled = _kernels.CompiledNetwork(
            self._sizes, self._codes, self._weight_offsets, self._bias_offsets, self._params,
            self._loss_code)
        self.weights = [self._params[w:b].reshape(sizes[k], sizes[k + 1])
                        for k, (w, b) in enumerate(zip(self._weight_offsets,
                                                       self._bias_offsets))]
        self.biases = [self._params[b:b + sizes[k + 1]]
                       for k, b in enumerate(self._bias_offsets)]
        self._initialise(random_state)
        self._epochs_run = 0

    # -- parameters -------------------------------------------------------------------

    @property
    def params(self):
        return self._params

    @params.setter
    def params(self, values):
        values = np.asarray(values)
        if values.shape != self._params.shape:
            raise ValueError(f"params must have shape {self._params.shape}, "
                             f"got {values.shape}")
        self._params[...] = values

    @property
    def n_params(self):
        return self._params.shape[0]

    @property
    def n_layers(self):
        """Number of weight layers (hidden layers + 1)."""
        return len(self.layer_sizes) - 1

    def _initialise(self, random_state):
        rng = _check_random_state(random_state)
        for k in range(self.n_layers):
            fan_in, fan_out = self.layer_sizes[k], self.layer_sizes[k + 1]
            # scikit-learn uses the hidden activation for every layer, the output included
            name = self.activations[k] if k < len(self.activations) else (
                self.activations[-1] if self.activations else self.output)
            if name in RELU_FAMILY:
                bound = np.sqrt(6.0 / fan_in)
            else:
                bound = np.sqrt((2.0 if name == "logistic" else 6.0) / (fan_in + fan_out))
            self.weights[k][...] = rng.uniform(-bound, bound, (fan_in, fan_out))
            self.biases[k][...] = rng.uniform(-bound, bound, fan_out)

    def __getstate__(self):
        """Pickle and copy as constructor arguments plus the parameters (the compiled
        layout is rebuilt on load)."""
        return {"layer_sizes": self.layer_sizes, "activation": list(self.activations),
                "output": self.output, "loss": self.loss_name, "dtype": self.dtype.name,
                "params": self._params.copy()}

    def __setstate__(self, state):
        state = dict(state)
        params = state.pop("params")
        self.__init__(**state, random_state=0)
        self.params = params

    def __repr__(self):
        return (f"Network(layer_sizes={list(self.layer_sizes)}, "
                f"activation={list(self.activations)!r}, output={self.output!r}, "
                f"loss={self.loss_name!r}, dtype={self.dtype.name})")

    # -- compiled maths ----------------------------------------------------------------

    def forward(self, X, n_threads=None):
        """Network output for X.

        X : array-like of shape (n_samples, n_features)
        Returns ndarray of shape (n_samples, n_outputs), in the network's dtype:
        probabilities for logistic and softmax outputs.
        """
        # up to 4 rows that need no conversion skip the Python edge (None otherwise)
        out = self._compiled.forward_few_rows(X, effective_n_threads(n_threads))
        if out is not None:
            return out
        return self._forward_checked(check_features(X, self.dtype, self.layer_sizes[0]),
                                     n_threads)

    def _forward_checked(self, X, n_threads):
        """forward for an X that check_features (or as_ready_matrix) has returned."""
        n_threads = effective_n_threads(n_threads)
        out = np.empty((X.shape[0], self.layer_sizes[-1]), dtype=self.dtype)
        with blas_limits(n_threads):
            self._compiled.forward(X, out, n_threads)
        return out

    def loss(self, X, Y, alpha=0.0, sample_weight=None, n_threads=None):
        """Loss of the network on (X, Y), as a float.

        sum_i s_i l_i / sum_i s_i + alpha sum_k ||W[k]||^2 / (2 sum_i s_i), with s_i = 1
        without sample weights; l_i the per-sample loss summed over outputs (DESIGN.md).
        X : (n_samples, n_features); Y : see ``cffnn.Network`` targets; sample_weight :
        (n_samples,) or None.
        """
        return self._loss_checked(self._check_fit_inputs(X, Y, alpha, sample_weight),
                                  n_threads)

    def _output_and_loss(self, X, Y, sample_weight=None, n_threads=None):
        """(forward(X), loss(X, Y, sample_weight=sample_weight)) from one forward pass and
        one check of the inputs: the estimators' validation step after each epoch, which
        otherwise ran the network over the validation rows twice."""
        checked = self._check_fit_inputs(X, Y, 0.0, sample_weight)
        out = np.empty((checked[0].shape[0], self.layer_sizes[-1]), dtype=self.dtype)
        return out, self._loss_checked(checked, n_threads, out)

    def _loss_checked(self, checked, n_threads, out=None):
        """loss for what _check_fit_inputs returned; out, if given, receives the output."""
        X, Y, weights, inv_weight_sum, alpha_over_weight_sum = checked
        n_threads = effective_n_threads(n_threads)
        with blas_limits(n_threads):
            return self._compiled.loss(X, Y, weights, inv_weight_sum, alpha_over_weight_sum,
                                       n_threads, out)

    def loss_and_gradient(self, X, Y, alpha=0.0, sample_weight=None, n_threads=None):
        """(loss, grad): the loss of ``loss`` and its gradient with respect to ``params``.

        grad : ndarray of shape (n_params,), in the layout of ``params`` and its dtype.
        """
        X, Y, weights, inv_weight_sum, alpha_over_weight_sum = self._check_fit_inputs(
            X, Y, alpha, sample_weight)
        n_threads = barrier_team_threads(n_threads)
        grad = np.empty_like(self._params)
        with blas_limits(n_threads):
            loss = self._compiled.loss_and_gradient(
                X, Y, weights, inv_weight_sum, alpha_over_weight_sum, grad, n_threads)
        return loss, grad

    def fit_epoch(self, X, Y, optimizer, batch_size=200, shuffle=True, alpha=0.0,
                  sample_weight=None, random_state=None, n_threads=None):
        """One epoch of minibatch training with `optimizer`; returns its mean loss.

        X : (n_samples, n_features); Y : targets as for ``loss``; optimizer : cffnn.SGD,
        cffnn.Adam or cffnn.RPROP (its state carries over from epoch to epoch; RPROP always
        takes the whole epoch as one batch). Minibatches of batch_size
        rows (clipped to n_samples): consecutive slices in order with shuffle=False (the
        last may be smaller), else the slices of the permutation that random_state
        determines: an int in [0, 2**64) is its seed; a Generator or RandomState (None:
        NumPy's global one) gives the seed by one draw, so that it moves on and the next
        epoch's permutation differs (include/cffnn/shuffle.h: 5 us for 1797 rows, where
        numpy.random.default_rng(seed).permutation took 44-58 us, 5-8% of a digits epoch).
        Each minibatch takes one step on its loss
        and gradient (penalty alpha / (2 * its weight sum), as ``loss``). The whole epoch
        runs in compiled code without the GIL.

        Returns the mean over minibatches of their loss, weighted by their weight sums
        (their sizes without sample weights). Raises DivergenceError when a loss, gradient
        or updated parameter is not finite; the parameters are then those before the
        minibatch at fault.
        """
        checked = self._check_epoch_inputs(X, Y, alpha, sample_weight)
        return self._fit_epoch_checked(checked, optimizer, batch_size, shuffle, random_state,
                                       n_threads)

    def _fit_epoch_checked(self, checked, optimizer, batch_size, shuffle, random_state,
                           n_threads):
        """fit_epoch for inputs that _check_epoch_inputs has accepted; checked is what it
        returned. The estimators check their data once per fit instead of once per epoch:
        the scan of Fashion-MNIST's X for non-finite values alone took 12-23 ms, 2-4% of
        an epoch."""
        X, Y, weights, scale, alpha = checked
        batch_size = _check_batch_size(batch_size, X.shape[0])
        order = _shuffled_order(random_state, X.shape[0]) if shuffle else None
        # the state arrays as _prepare returns them: read again from the optimiser, they
        # could be another thread's, sized for another network
        if isinstance(optimizer, SGD):
            kind, states = "sgd", (optimizer._prepare(self._params), None)
        elif isinstance(optimizer, Adam):
            kind, states = "adam", optimizer._prepare(self._params)
        elif isinstance(optimizer, RPROP):
            kind, states = "rprop", optimizer._prepare(self._params)
            batch_size = X.shape[0]          # RPROP is a full-batch method
        else:
            raise TypeError(f"optimizer must be cffnn.SGD, cffnn.Adam or cffnn.RPROP, "
                            f"got {type(optimizer).__name__}")
        n_threads = barrier_team_threads(n_threads)
        self._epochs_run += 1
        with blas_limits(n_threads):
            status, loss_sum, weight_sum, minibatch, layer, t = self._compiled.fit_epoch(
                X, Y, weights, scale, order, batch_size, alpha, kind, optimizer, *states,
                n_threads)
        if isinstance(optimizer, Adam):
            optimizer.t = t
        if status == 0 and isinstance(optimizer, SGD):
            optimizer.end_epoch(loss_sum / weight_sum if weight_sum > 0 else math.nan,
                                X.shape[0])
        if status != 0:
            what = _kernels.EPOCH_STATUS[status]
            where = f" in layer {layer}" if layer >= 0 else ""
            hint = "try a smaller learning rate"
            if alpha > 0 and weights is not None:
                # the penalty is alpha / (a minibatch's sum of weights) ||W||^2 / 2: not
                # invariant to the weights' scale, unlike the weighted mean of the loss
                hint += (", or a smaller alpha relative to the sample weights (the penalty "
                         "is divided by each minibatch's sum of weights)")
            raise DivergenceError(
                f"training diverged in epoch {self._epochs_run} (of this network's "
                f"fit_epoch calls), minibatch {minibatch}: non-finite {what}{where}. The "
                f"parameters are those before that minibatch; {hint}.")
        return loss_sum / weight_sum if weight_sum > 0 else float("nan")

    def fit_lbfgs(self, X, Y, alpha=0.0, sample_weight=None, max_iter=200, max_fun=15000,
                  tol=1e-4, n_threads=None, callback=None):
        """Minimise ``loss`` over all of (X, Y) with L-BFGS-B (scipy.optimize.minimize,
        as scikit-learn's lbfgs solver: maxiter=max_iter, maxfun=max_fun, gtol=tol).

        Each evaluation is one compiled ``loss_and_gradient``; the only copies are the
        ones scipy forces (its float64 x into params, and a float32 gradient to float64).
        The network ends at scipy's solution; returns scipy's OptimizeResult.
        callback is passed to scipy: after each iteration it is called with the current
        x, or with scipy's intermediate OptimizeResult (``nit``, ``fun``) when its one
        parameter is named ``intermediate_result``.
        """
        from scipy.optimize import minimize

        X, Y, weights, inv_weight_sum, alpha_over_weight_sum = self._check_fit_inputs(
            X, Y, alpha, sample_weight)
        for name, value in (("max_iter", max_iter), ("max_fun", max_fun)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        tol = check_nonnegative("tol", tol)
        n_threads = barrier_team_threads(n_threads)

        def loss_and_gradient(flat):
            self._params[...] = flat
            grad = np.empty_like(self._params)   # scipy may keep the previous one
            with blas_limits(n_threads):
                loss = self._compiled.loss_and_gradient(
                    X, Y, weights, inv_weight_sum, alpha_over_weight_sum, grad, n_threads)
            return loss, grad.astype(np.float64, copy=False)

        result = minimize(loss_and_gradient, self._params.astype(np.float64), jac=True,
                          method="L-BFGS-B", callback=callback,
                          options={"maxiter": int(max_iter), "maxfun": int(max_fun),
                                   "gtol": tol})
        self._params[...] = result.x
        return result

    def _check_epoch_inputs(self, X, Y, alpha, sample_weight):
        X = check_features(X, self.dtype, self.layer_sizes[0])
        Y = check_targets(Y, self.dtype, X.shape[0], self.layer_sizes[-1], self.output,
                          self.loss_name)
        weights, scale = check_sample_weight(sample_weight, X.shape[0])
        return X, Y, weights, scale, check_alpha(alpha)

    def _check_fit_inputs(self, X, Y, alpha, sample_weight):
        """Validated (X, Y, weights, inv_weight_sum, alpha_over_weight_sum) for the kernels.

        The kernels weight sample i by weights[i] * inv_weight_sum (= s_i / sum(s)) and
        the penalty by alpha / sum(s); weights come scaled to a maximum of 1 so that
        sum(s) is formed without overflow.
        """
        X, Y, weights, scale, alpha = self._check_epoch_inputs(X, Y, alpha, sample_weight)
        scaled_sum = X.shape[0] if weights is None else float(weights.sum())
        return X, Y, weights, 1.0 / scaled_sum, alpha / scale / scaled_sum


def _aligned_empty(n, dtype, alignment=64):
    """np.empty(n, dtype) starting on a cache-line boundary: the one-row kernel's vector
    loads then never straddle two lines (measured: 784x256 in 15 us aligned, 19.5 us with
    the weights 4 bytes off)."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.empty(n + alignment // itemsize, dtype=dtype)
    start = (-raw.ctypes.data % alignment) // itemsize
    return raw[start:start + n]


class DivergenceError(FloatingPointError, ValueError):
    """Training produced a non-finite loss, gradient or parameter (see fit_epoch).

    A ValueError too, so that code written for scikit-learn (whose MLP raises ValueError
    for non-finite weights) catches it."""


def _check_batch_size(batch_size, n_samples):
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"batch_size must be an int, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return min(int(batch_size), n_samples)


# -- constructor checks ---------------------------------------------------------------

def _check_layer_sizes(layer_sizes):
    if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__"):
        raise TypeError("layer_sizes must be a sequence of ints, e.g. [784, 256, 10]")
    sizes = []
    for size in layer_sizes:
        if isinstance(size, bool) or not isinstance(size, numbers.Integral):
            raise TypeError(f"layer_sizes must hold ints, got {size!r}")
        if not 1 <= size <= INT_MAX:
            raise ValueError(f"every layer size must be in [1, {INT_MAX}], got {int(size)}")
        sizes.append(int(size))
    if len(sizes) < 2:
        raise ValueError("layer_sizes needs at least an input and an output width, "
                         f"got {list(sizes)}")
    if len(sizes) - 1 > _kernels.MAX_N_LAYERS:
        raise ValueError(f"at most {_kernels.MAX_N_LAYERS} weight layers are supported, "
                         f"got {len(sizes) - 1}")
    return tuple(sizes)


def _check_activations(activation, n_hidden):
    if isinstance(activation, str):
        names = [activation] * n_hidden
    elif isinstance(activation, (list, tuple)):
        names = list(activation)
    else:
        raise TypeError(f"activation must be a name or a list of names, got {activation!r}")
    if len(names) != n_hidden:
        raise ValueError(f"activation lists {len(names)} names but the network has "
                         f"{n_hidden} hidden layers")
    for name in names:
        if not isinstance(name, str) or name not in HIDDEN_ACTIVATIONS:
            raise ValueError(f"unknown activation {name!r}; choose from "
                             f"{', '.join(HIDDEN_ACTIVATIONS)}")
    return tuple(names)


def _check_output_and_loss(output, loss, n_outputs):
    if not isinstance(output, str) or output not in OUTPUT_LOSSES:
        raise ValueError(f"unknown output {output!r}; choose from "
                         f"{', '.join(OUTPUT_LOSSES)}")
    if output == "softmax" and n_outputs < 2:
        raise ValueError("a softmax output needs at least 2 units; use output='logistic' "
                         "for one binary output")
    if loss is None:
        return output, OUTPUT_LOSSES[output][0]
    if not isinstance(loss, str) or loss not in OUTPUT_LOSSES[output]:
        raise ValueError(f"loss {loss!r} cannot be paired with output {output!r}; "
                         f"allowed: {', '.join(OUTPUT_LOSSES[output])}")
    return output, loss


def _check_dtype(dtype):
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64, got {dtype!r}") from None
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64, got {dtype}")
    return dtype


def _shuffled_order(random_state, n_rows):
    """fit_epoch's row order, the permutation of range(n_rows) that random_state
    determines: an int in [0, 2**64) is the seed; a Generator or RandomState gives the
    seed by one 64-bit draw (random_state=None: NumPy's global RandomState)."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if not 0 <= random_state < 2**64:
            raise ValueError(f"random_state must be an int in [0, 2**64), got {random_state}")
        seed = int(random_state)
    else:
        rng = _check_random_state(random_state)
        if isinstance(rng, np.random.Generator):
            seed = rng.bit_generator.random_raw()
        else:
            seed = int(rng.randint(np.iinfo(np.uint64).max, dtype=np.uint64))
    return _kernels.shuffled_order(seed, n_rows)


def _check_random_state(random_state):
    if random_state is None:
        return np.random.mtrand._rand
    if isinstance(random_state, (np.random.RandomState, np.random.Generator)):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return np.random.RandomState(int(random_state))
    raise TypeError(f"random_state must be None, an int, a RandomState or a Generator, "
                    f"got {random_state!r}")
