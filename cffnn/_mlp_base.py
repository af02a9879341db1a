"""The training loop shared by MLPClassifier and MLPRegressor.

The estimators hold a cffnn.Network; `coefs_` and `intercepts_` are views into its flat
parameter buffer. Python runs once per epoch (stopping rules, learning-rate schedule,
validation, verbose line); each epoch is one compiled ``Network.fit_epoch`` call, and
L-BFGS is one ``Network.fit_lbfgs`` call. Stopping rules, schedules and warnings follow
scikit-learn's BaseMultilayerPerceptron so that a user's settings mean the same thing.
"""
import numbers
import time
import warnings

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from cffnn._kernels import as_ready_matrix
from cffnn._parallelism import effective_n_threads
from cffnn.network import Network, _check_activations
from cffnn.optimizers import RPROP, SGD, Adam

SOLVERS = ("lbfgs", "sgd", "adam", "rprop")
EPOCH_SOLVERS = ("sgd", "adam", "rprop")          # one compiled fit_epoch per epoch
LEARNING_RATES = ("constant", "invscaling", "adaptive")


class BaseMLP(BaseEstimator):
    """Shared fit / partial_fit / forward machinery; see MLPClassifier and MLPRegressor.

    Subclasses define:
      _prepare_targets(y, first_pass, incremental) -> (Y for the network, labels for
          scoring, per-sample class weights or None);
      _prepare_validation_targets(y) -> (Y for the network, labels for scoring);
      _output_activation() -> "logistic", "softmax", "identity" or "exp";
      _score_output(output, labels, sample_weight) -> accuracy or R^2 of network output;
      _y_validation_options() -> extra keywords for validate_data (y_numeric);
      _stratify_split() -> whether early stopping's split is stratified by label.
    """

    # -- fitting -------------------------------------------------------------------------

    def _fit(self, X, y, sample_weight=None, incremental=False, validation_data=None):
        self._check_params()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        hidden = _hidden_layer_sizes(self.hidden_layer_sizes)
        has_weights = hasattr(self, "coefs_")
        first_pass = not has_weights or (not self.warm_start and not incremental)

        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=first_pass,
                             **self._y_validation_options())
        X = _dense(X)
        Y, labels, class_weights = self._prepare_targets(y, first_pass, incremental)
        sample_weight = _combine_weights(sample_weight, class_weights, X.shape[0])
        n_outputs = Y.shape[1] if Y.ndim == 2 else len(self.classes_)
        layer_sizes = [X.shape[1], *hidden, n_outputs]
        self._random_state = check_random_state(self.random_state)

        if first_pass:
            self._initialize(layer_sizes, X.dtype)
        elif "_net" not in self.__dict__ or not hasattr(self, "n_iter_"):
            # coefs_ / intercepts_ given by the user before a warm_start fit
            self._start_from_given_weights(layer_sizes, X.dtype)
        net = self._network()
        if list(net.layer_sizes) != layer_sizes:
            raise ValueError(f"the fitted network has layer sizes {list(net.layer_sizes)} "
                             f"but this fit needs {layer_sizes}; set warm_start=False to "
                             f"start again")
        X = X.astype(net.dtype, copy=False)

        if self.solver == "lbfgs":
            validation = None
            if validation_data is not None:
                validation = self._read_validation_data(validation_data, X.dtype)
                self.validation_scores_, self.validation_loss_curve_ = [], []
                self.best_validation_score_ = -np.inf
            self._fit_lbfgs(net, X, Y, sample_weight, validation)
        else:
            validation = self._validation_set(X, Y, labels, sample_weight, validation_data,
                                              incremental)
            self._fit_epochs(net, validation, incremental)
        if not np.isfinite(net.params).all():   # defensive: fit_epoch raises before this
            raise ValueError("Solver produced non-finite parameter weights. The input data "
                             "may contain large values and need to be preprocessed.")
        return self

    def _initialize(self, layer_sizes, dtype):
        """A fresh network and the attributes of a first fit (scikit-learn's names)."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = layer_sizes[-1]
        self.n_layers_ = len(layer_sizes)
        self.out_activation_ = self._output_activation()
        net = Network(layer_sizes, activation=_activation_list(self.activation, layer_sizes),
                      output=self.out_activation_, dtype=dtype,
                      random_state=self._random_state)
        self._adopt(net)
        self._reset_curves()

    def _reset_curves(self):
        """The per-epoch records of scikit-learn's epoch solvers (lbfgs has none)."""
        for name in ("loss_curve_", "best_loss_", "validation_scores_",
                     "validation_loss_curve_", "best_validation_score_", "_best_params",
                     "_optimizer", "_no_improvement_count"):
            self.__dict__.pop(name, None)
        if self.solver in EPOCH_SOLVERS:
            self.loss_curve_ = []
            self.best_loss_ = None if self.early_stopping else np.inf
            self.validation_scores_ = [] if self.early_stopping else None
            self.validation_loss_curve_ = [] if self.early_stopping else None
            self.best_validation_score_ = -np.inf if self.early_stopping else None
            self._no_improvement_count = 0

    def _start_from_given_weights(self, layer_sizes, dtype):
        """Build the network from coefs_ / intercepts_ set by the user (warm_start)."""
        coefs, intercepts = self.coefs_, getattr(self, "intercepts_", None)
        if intercepts is None:
            raise ValueError("coefs_ was set but intercepts_ was not; set both to start "
                             "from given weights")
        expected = [(layer_sizes[k], layer_sizes[k + 1]) for k in range(len(layer_sizes) - 1)]
        got_coefs = [np.shape(c) for c in coefs]
        got_intercepts = [np.shape(b) for b in intercepts]
        if got_coefs != expected or got_intercepts != [(m,) for _, m in expected]:
            raise ValueError(f"coefs_ / intercepts_ have shapes {got_coefs} / "
                             f"{got_intercepts}, but this data and hidden_layer_sizes need "
                             f"{expected} / {[(m,) for _, m in expected]}")
        if not hasattr(self, "n_iter_"):
            self.n_iter_ = 0
            self.t_ = 0
            self.n_outputs_ = layer_sizes[-1]
            self.n_layers_ = len(layer_sizes)
            self.out_activation_ = self._output_activation()
            self._reset_curves()
        net = Network(layer_sizes, activation=_activation_list(self.activation, layer_sizes),
                      output=self.out_activation_, dtype=dtype, random_state=0)
        for k, (coef, intercept) in enumerate(zip(coefs, intercepts)):
            coef, intercept = np.asarray(coef, dtype=float), np.asarray(intercept, dtype=float)
            if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
                raise ValueError(f"coefs_[{k}] or intercepts_[{k}] holds NaN or infinity")
            net.weights[k][...] = coef
            net.biases[k][...] = intercept
        self._adopt(net)

    def _adopt(self, net):
        """Make net the estimator's network: coefs_ and intercepts_ become its views."""
        self._net = net
        self.coefs_ = net.weights
        self.intercepts_ = net.biases

    def _network(self):
        """The fitted Network, rebuilt if coefs_ / intercepts_ were replaced."""
        net = self.__dict__.get("_net")
        if net is None:
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet. "
                                 f"Call 'fit' with appropriate arguments first.")
        coefs, intercepts = self.coefs_, self.intercepts_
        if (len(coefs) != len(net.weights) or len(intercepts) != len(net.biases)
                or any(a is not b for a, b in zip(coefs, net.weights))
                or any(a is not b for a, b in zip(intercepts, net.biases))):
            self._start_from_given_weights(_layer_sizes_of(coefs), net.dtype)
            net = self._net
        return net

    def _validation_set(self, X, Y, labels, sample_weight, validation_data, incremental):
        """(train, validation): each a tuple (X, Y, labels, sample_weight); validation is
        None without validation data. Split as scikit-learn does under early_stopping."""
        if validation_data is not None:
            validation = self._read_validation_data(validation_data, X.dtype)
        elif self.early_stopping:
            from sklearn.model_selection import train_test_split   # training only

            stratify = labels if self._stratify_split() else None
            train, val = train_test_split(np.arange(X.shape[0]), random_state=self._random_state,
                                          test_size=self.validation_fraction, stratify=stratify)
            if val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            weight_of = (lambda rows: None) if sample_weight is None else (
                lambda rows: sample_weight[rows])
            validation = (X[val], Y[val], labels[val], weight_of(val))
            X, Y, labels, sample_weight = X[train], Y[train], labels[train], weight_of(train)
        else:
            validation = None
        if "loss_curve_" not in self.__dict__:     # warm start after an lbfgs fit
            self._reset_curves()
        if validation is not None and self.validation_scores_ is None:
            self.validation_scores_, self.validation_loss_curve_ = [], []
            self.best_validation_score_ = -np.inf
        return (X, Y, labels, sample_weight), validation

    def _read_validation_data(self, validation_data, dtype):
        """(X_val, Y_val, labels_val, None) from the user's (X_val, y_val)."""
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a tuple (X_val, y_val)")
        X_val, y_val = validation_data
        X_val, y_val = validate_data(self, X_val, y_val, accept_sparse=["csr", "csc"],
                                     multi_output=True, dtype=(np.float64, np.float32),
                                     reset=False, **self._y_validation_options())
        X_val = _dense(X_val).astype(dtype, copy=False)
        Y_val, labels_val = self._prepare_validation_targets(y_val)
        return X_val, Y_val, labels_val, None

    def _make_optimizer(self):
        if self.solver == "sgd":
            return SGD(learning_rate=self.learning_rate_init, momentum=self.momentum,
                       nesterov=self.nesterovs_momentum)
        if self.solver == "adam":
            return Adam(learning_rate=self.learning_rate_init, beta_1=self.beta_1,
                        beta_2=self.beta_2, epsilon=self.epsilon)
        return RPROP()

    def _fit_epochs(self, net, data, incremental):
        """Epochs of net.fit_epoch with scikit-learn's stopping rules (its
        _fit_stochastic): stop after n_iter_no_change epochs without an improvement of
        the training loss (or, with early_stopping, of the validation score) by tol; the
        adaptive schedule first divides the learning rate by 5 instead."""
        (X, Y, labels, sample_weight), validation = data
        if not incremental or "_optimizer" not in self.__dict__:
            self._optimizer = self._make_optimizer()
        optimizer = self._optimizer
        n_samples = X.shape[0]
        batch_size = self._batch_size(n_samples)
        n_threads = self.n_threads
        if not incremental:
            self.n_iter_ = 0
        # checked once here, not again in every epoch (Network._fit_epoch_checked)
        checked = net._check_epoch_inputs(X, Y, self.alpha, sample_weight)
        try:
            for _ in range(1 if incremental else self.max_iter):
                start = time.perf_counter()
                loss = net._fit_epoch_checked(checked, optimizer, batch_size, self.shuffle,
                                              self._random_state, n_threads)
                self.n_iter_ += 1
                self.t_ += n_samples
                self.loss_ = loss
                self.loss_curve_.append(loss)
                line = f"Iteration {self.n_iter_}, loss = {loss:.8f}"
                if validation is not None:
                    score, val_loss = self._validate(net, validation)
                    line += f", validation score = {score:.6f}, validation loss = {val_loss:.8f}"
                self._update_no_improvement_count()
                if self.verbose:
                    print(f"{line}, time = {time.perf_counter() - start:.3f}s", flush=True)
                if self.solver == "sgd" and self.learning_rate == "invscaling":
                    optimizer.learning_rate = (self.learning_rate_init
                                               / (self.t_ + 1) ** self.power_t)
                if self._no_improvement_count > self.n_iter_no_change:
                    if self._stop_or_slow_down(optimizer):
                        break
                    self._no_improvement_count = 0
                if not incremental and self.n_iter_ == self.max_iter:
                    warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                                  f"reached and the optimization hasn't converged yet.",
                                  ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        if self.early_stopping and "_best_params" in self.__dict__:
            net.params = self._best_params

    def _validate(self, net, validation):
        """Record the validation score and loss (without the L2 penalty) after an epoch."""
        X_val, Y_val, labels_val, weight_val = validation
        output, val_loss = net._output_and_loss(X_val, Y_val, sample_weight=weight_val,
                                                n_threads=self.n_threads)
        score = self._score_output(output, labels_val, weight_val)
        self.validation_scores_.append(score)
        self.validation_loss_curve_.append(val_loss)
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            if self.early_stopping and self.solver != "lbfgs":   # lbfgs does not stop early
                self._best_params = net.params.copy()
        return score, val_loss

    def _update_no_improvement_count(self):
        """scikit-learn's rule: an epoch improves when it beats the best so far by tol
        (the validation score with early_stopping, else the training loss)."""
        if self.early_stopping:
            scores = self.validation_scores_
            improved = not scores[-1] < max(scores[:-1], default=-np.inf) + self.tol
        else:
            improved = not self.loss_curve_[-1] > self.best_loss_ - self.tol
            self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])
        self._no_improvement_count = 0 if improved else self._no_improvement_count + 1

    def _stop_or_slow_down(self, optimizer):
        """scikit-learn's trigger_stopping: True to stop; the adaptive schedule divides
        the learning rate by 5 instead, until it is <= 1e-6."""
        what = "Validation score" if self.early_stopping else "Training loss"
        message = (f"{what} did not improve more than tol={self.tol:f} for "
                   f"{self.n_iter_no_change} consecutive epochs.")
        if self.solver == "sgd" and self.learning_rate == "adaptive":
            if optimizer.learning_rate > 1e-6:
                optimizer.learning_rate /= 5.0
                if self.verbose:
                    print(f"{message} Setting learning rate to {optimizer.learning_rate:f}")
                return False
            message += " Learning rate too small."
        if self.verbose:
            print(f"{message} Stopping.")
        return True

    def _fit_lbfgs(self, net, X, Y, sample_weight, validation):
        """One scipy L-BFGS-B run (Network.fit_lbfgs); with validation data, the score
        and loss of every iterate are recorded, as the epoch solvers record each epoch."""
        start, iteration = [time.perf_counter()], [0]

        def after_iteration(intermediate_result):
            iteration[0] += 1
            line = f"Iteration {iteration[0]}, loss = {intermediate_result.fun:.8f}"
            if validation is not None:
                net.params = intermediate_result.x   # the next evaluation sets them again
                score, val_loss = self._validate(net, validation)
                line += f", validation score = {score:.6f}, validation loss = {val_loss:.8f}"
            if self.verbose:
                now = time.perf_counter()
                print(f"{line}, time = {now - start[0]:.3f}s", flush=True)
                start[0] = now

        track = self.verbose or validation is not None
        result = net.fit_lbfgs(X, Y, alpha=self.alpha, sample_weight=sample_weight,
                               max_iter=self.max_iter, max_fun=self.max_fun, tol=self.tol,
                               n_threads=self.n_threads,
                               callback=after_iteration if track else None)
        if result.status != 0:
            warnings.warn(f"lbfgs failed to converge after {result.nit} iteration(s) "
                          f"(status={result.status}): {result.message}. Increase the "
                          f"number of iterations (max_iter={self.max_iter}, "
                          f"max_fun={self.max_fun}) or scale the data.", ConvergenceWarning)
        self.n_iter_ = min(int(result.nit), self.max_iter)
        self.loss_ = float(result.fun)

    def _batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                          "going to be clipped")
        return min(self.batch_size, n_samples)

    # -- prediction ------------------------------------------------------------------------

    def _forward(self, X):
        """Network output for X, shape (n_samples, n_outputs_), in the weights' dtype.

        An ndarray that is already C-contiguous, aligned, finite, of the weights' dtype
        (or of the other float dtype, which is converted) and width skips scikit-learn's
        validation: one compiled check (as_ready_matrix) instead of ~50 us of
        validate_data, for one-row predictions (and up to 4 such rows skip the Python edge
        of Network.forward as well: _compiled.forward_few_rows)."""
        net = self.__dict__.get("_net")
        if net is None:
            self._network()       # raises NotFittedError
        if self.coefs_ is not net.weights or self.intercepts_ is not net.biases:
            net = self._network()
        if "feature_names_in_" not in self.__dict__:
            out = net._compiled.forward_few_rows(X, effective_n_threads(self.n_threads))
            if out is not None:        # up to 4 ready rows (None otherwise)
                return out
            ready = as_ready_matrix(X, net.dtype.num, net.layer_sizes[0])
            if ready is not None:
                return net._forward_checked(ready, self.n_threads)
        X = _dense(validate_data(self, X, accept_sparse=["csr", "csc"],
                                 dtype=(np.float64, np.float32), reset=False))
        return net.forward(X, n_threads=self.n_threads)

    # -- persistence -----------------------------------------------------------------------

    def __getstate__(self):
        """Pickle without the compiled network: it is rebuilt from coefs_ on load."""
        state = dict(super().__getstate__())   # a copy: BaseEstimator returns __dict__
        state.pop("_net", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "coefs_" in state and "n_layers_" in state:
            coefs = state["coefs_"]
            self._start_from_given_weights(_layer_sizes_of(coefs), np.asarray(coefs[0]).dtype)

    def save(self, path):
        """Write the fitted model to path (.npz + JSON metadata, no pickle); read it back
        with cffnn.load."""
        from cffnn.persistence import save_model
        save_model(self, path)

    def __sklearn_is_fitted__(self):
        return "_net" in self.__dict__

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # -- parameter checks ----------------------------------------------------------------

    def _check_params(self):
        """Clear ValueError / TypeError for every bad constructor parameter, before
        any data is touched."""
        hidden = _hidden_layer_sizes(self.hidden_layer_sizes)
        _check_activations(self.activation, len(hidden))
        _choice("solver", self.solver, SOLVERS)
        _choice("learning_rate", self.learning_rate, LEARNING_RATES)
        _real("alpha", self.alpha, 0.0)
        _real("learning_rate_init", self.learning_rate_init, 0.0, low_open=True)
        _real("power_t", self.power_t, 0.0)
        _real("tol", self.tol, 0.0)
        _real("momentum", self.momentum, 0.0, 1.0)
        _real("validation_fraction", self.validation_fraction, 0.0, 1.0, high_open=True)
        _real("beta_1", self.beta_1, 0.0, 1.0, high_open=True)
        _real("beta_2", self.beta_2, 0.0, 1.0, high_open=True)
        _real("epsilon", self.epsilon, 0.0, low_open=True)
        _integer("max_iter", self.max_iter, 1)
        _integer("max_fun", self.max_fun, 1)
        if self.n_iter_no_change != np.inf:
            _integer("n_iter_no_change", self.n_iter_no_change, 1)
        if self.batch_size != "auto":
            _integer("batch_size", self.batch_size, 1, hint=' or "auto"')
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if isinstance(self.verbose, bool) is False and not isinstance(self.verbose,
                                                                       numbers.Integral):
            raise TypeError(f"verbose must be a bool or an int, got {self.verbose!r}")
        effective_n_threads(self.n_threads)


# -- helpers ---------------------------------------------------------------------------------

def _dense(X):
    """CSR / CSC input becomes a dense C-contiguous array (the kernels are dense)."""
    return X.toarray() if scipy.sparse.issparse(X) else X


def _layer_sizes_of(coefs):
    """[n_in, widths..., n_out] of a list of weight matrices set by the user."""
    if not isinstance(coefs, (list, tuple)) or not coefs or any(np.ndim(c) != 2 for c in coefs):
        raise ValueError("coefs_ must be a non-empty list of 2-D weight matrices")
    return [np.shape(c)[0] for c in coefs] + [np.shape(coefs[-1])[1]]


def _combine_weights(sample_weight, class_weights, n_samples):
    """sample_weight * class_weights as a float64 array, or None when both are None."""
    if sample_weight is None:
        return class_weights
    if isinstance(sample_weight, numbers.Real) and not isinstance(sample_weight, bool):
        sample_weight = np.full(n_samples, float(sample_weight))
    sample_weight = np.asarray(sample_weight)
    if sample_weight.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must hold real numbers, got dtype "
                        f"{sample_weight.dtype}")
    if sample_weight.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},), got shape "
                         f"{sample_weight.shape}")
    sample_weight = sample_weight.astype(np.float64)
    return sample_weight if class_weights is None else sample_weight * class_weights


def _hidden_layer_sizes(hidden_layer_sizes):
    sizes = (list(hidden_layer_sizes) if hasattr(hidden_layer_sizes, "__iter__")
             and not isinstance(hidden_layer_sizes, str) else [hidden_layer_sizes])
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, numbers.Integral):
            raise TypeError(f"hidden_layer_sizes must be an int or a sequence of ints, got "
                            f"{hidden_layer_sizes!r}")
    if any(size <= 0 for size in sizes):
        raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
    return [int(size) for size in sizes]


def _activation_list(activation, layer_sizes):
    """One activation name per hidden layer (Network's checks and messages)."""
    return list(_check_activations(activation, len(layer_sizes) - 2))


def _choice(name, value, allowed):
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, "
                         f"got {value!r}")


def _real(name, value, low, high=np.inf, low_open=False, high_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high or np.isnan(value):
        interval = (("(" if low_open else "[") + f"{low}, {high}"
                    + (")" if high_open or high == np.inf else "]"))
        raise ValueError(f"{name} must be in {interval}, got {value!r}")


def _integer(name, value, low, hint=""):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int{hint}, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
