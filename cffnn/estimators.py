"""cffnn.MLPClassifier and cffnn.MLPRegressor: scikit-learn's MLP estimators, compiled.

Same constructor parameters, defaults, fitted attributes and methods as
sklearn.neural_network.MLPClassifier / MLPRegressor, plus:
  - solver="rprop" (iRPROP-, full batch) besides lbfgs, sgd and adam;
  - activation: one name or a list with one per hidden layer, from identity, logistic,
    tanh, relu, leaky_relu, elu, softplus, gelu;
  - class_weight ("balanced" or a dict) on the classifier;
  - fit(..., validation_data=(X_val, y_val)) instead of a validation_fraction split, and
    validation_loss_curve_ (the loss on the validation data after each epoch, without
    the L2 penalty) whenever there is validation data;
  - coefs_ / intercepts_ set before a warm_start fit are the starting weights;
  - n_threads (None: every usable core);
  - model.save(path) / cffnn.load(path), a file format that never runs code.
Differences: weights start He-uniform for the ReLU family (scikit-learn: Glorot); with
several regression outputs loss_ sums the squared errors over outputs (scikit-learn
averages them, while its gradient does not: its issue #8349); sparse X is densified.
"""
import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call, check_classification_targets, type_of_target,
    unique_labels)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import column_or_1d

from cffnn._mlp_base import EPOCH_SOLVERS, BaseMLP


def _has_epoch_solver(estimator):
    """partial_fit exists only for the epoch solvers, as in scikit-learn."""
    if estimator.solver not in EPOCH_SOLVERS:
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                             f"{estimator.solver} is not stochastic.")
    return True

_SHARED_PARAMETERS = """
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Width of each hidden layer; () for none.
    activation : str or list of str, default="relu"
        identity, logistic, tanh, relu, leaky_relu, elu, softplus or gelu; a list gives
        one name per hidden layer.
    solver : {"adam", "sgd", "lbfgs", "rprop"}, default="adam"
    alpha : float, default=1e-4
        L2 penalty alpha * sum ||W||^2 / (2 n) (n: sum of sample weights of the batch).
    batch_size : int or "auto", default="auto" (min(200, n_samples))
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant" (sgd only)
    learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose,
    warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction,
    beta_1, beta_2, epsilon, n_iter_no_change, max_fun :
        As scikit-learn's. verbose prints one line per epoch: loss, validation score
        and loss when there is validation data, and the epoch's time.
    n_threads : int or None, default=None
        Threads for the compiled kernels; None uses every usable core.
"""


class MLPClassifier(ClassifierMixin, BaseMLP):
    __doc__ = ("""Multilayer perceptron classifier: scikit-learn's MLPClassifier, compiled.

    Binary (one logistic output), multiclass (softmax) and multilabel (one logistic
    output per label) targets; labels of any type scikit-learn accepts.

    Parameters
    ----------""" + _SHARED_PARAMETERS + """    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into sample_weight; "balanced" uses
        n_samples / (n_classes * count of the class). Not for multilabel targets.
    """)

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 class_weight=None, n_threads=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.class_weight = class_weight
        self.n_threads = n_threads

    def fit(self, X, y, sample_weight=None, validation_data=None):
        """Fit to X (n_samples, n_features), dense or CSR/CSC, and labels y (n_samples,)
        or a 0/1 indicator matrix (n_samples, n_labels); returns self.

        validation_data : (X_val, y_val), optional
            Scored after every epoch (validation_scores_, validation_loss_curve_); with
            early_stopping=True it replaces the validation_fraction split.
        """
        return self._fit(X, y, sample_weight, incremental=False,
                         validation_data=validation_data)

    @available_if(_has_epoch_solver)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y); classes (every label there will be) is required on the
        first call. Only for the epoch solvers (sgd, adam, rprop)."""
        _check_partial_fit_first_call(self, classes)   # sets classes_ on the first call
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Labels, shape (n_samples,), or (n_samples, n_labels) 0/1 for multilabel."""
        return self._labels_from_output(self._forward(X))

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes) (columns in classes_
        order), or (n_samples, n_labels) for multilabel."""
        output = self._forward(X)
        if self.n_outputs_ == 1 and not self._multilabel:
            return np.hstack([1.0 - output, output])
        return output

    def predict_log_proba(self, X):
        """log of predict_proba."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    # -- targets ---------------------------------------------------------------------------

    def _y_validation_options(self):
        return {}

    def _output_activation(self):
        return "logistic" if self._multilabel or len(self.classes_) <= 2 else "softmax"

    def _stratify_split(self):
        return not self._multilabel

    def _prepare_targets(self, y, first_pass, incremental):
        """(Y for the network, labels, class weights per sample or None)."""
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y")
        if y_type == "multiclass-multioutput":
            raise ValueError("Multioutput target data is not supported with label "
                             "binarization")
        multilabel = y_type == "multilabel-indicator"
        if first_pass or not hasattr(self, "_multilabel"):   # (or coefs_ set by the user)
            self._multilabel = multilabel
        elif multilabel != self._multilabel:
            raise ValueError("y is " + ("multilabel" if multilabel else "not multilabel")
                             + " but the model was fitted on the other kind of target")
        classes = np.arange(y.shape[1]) if multilabel else unique_labels(y)
        if (first_pass and not incremental) or not hasattr(self, "classes_"):
            self.classes_ = classes
        elif self.warm_start and not incremental:
            if set(classes) != set(self.classes_):
                raise ValueError(f"warm_start can only be used where `y` has the same "
                                 f"classes as in the previous call to fit. Previously "
                                 f"got {self.classes_}, `y` has {classes}")
        elif not multilabel and len(np.setdiff1d(classes, self.classes_)):
            raise ValueError(f"`y` has classes not in `self.classes_`. "
                             f"`self.classes_` has {self.classes_}. 'y' has {classes}.")
        Y = self._encode(y)
        return Y, y, self._class_weights_per_sample(y, incremental)

    def _encode(self, y):
        """Network targets: class indices for softmax, a 0/1 matrix otherwise."""
        if self._multilabel:
            return np.asarray(y, dtype=np.float64)
        if self.classes_.shape[0] == 1:     # one class: the output learns to say "not"
            return np.zeros((y.shape[0], 1))
        indices = np.searchsorted(self.classes_, y)
        if self.classes_.shape[0] == 2:
            return indices.reshape(-1, 1).astype(np.float64)
        return indices

    def _prepare_validation_targets(self, y):
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        labels = np.arange(y.shape[1]) if y.ndim == 2 else unique_labels(y)
        if y.ndim == 1 and len(np.setdiff1d(labels, self.classes_)):
            raise ValueError(f"validation_data has classes {np.setdiff1d(labels, self.classes_)}"
                             f" not in the training classes {self.classes_}")
        return self._encode(y), y

    def _class_weights_per_sample(self, y, incremental):
        class_weight = self.class_weight
        if class_weight is None:
            return None
        if self._multilabel:
            raise ValueError("class_weight is not supported for multilabel targets")
        if isinstance(class_weight, str):
            if class_weight != "balanced":
                raise ValueError(f"class_weight must be 'balanced', a dict or None, got "
                                 f"{class_weight!r}")
            if incremental:
                raise ValueError("class_weight 'balanced' is not supported for partial_fit: "
                                 "its counts would be those of one batch. Pass a dict, e.g. "
                                 "from sklearn.utils.class_weight.compute_class_weight.")
            present = unique_labels(y)
            per_class = dict(zip(present, compute_class_weight("balanced", classes=present,
                                                               y=y)))
        elif isinstance(class_weight, dict):
            unknown = [key for key in class_weight if key not in set(self.classes_.tolist())]
            if unknown:
                raise ValueError(f"class_weight has keys {unknown} that are not classes; "
                                 f"the classes are {self.classes_}")
            per_class = class_weight
        else:
            raise TypeError(f"class_weight must be 'balanced', a dict or None, got "
                            f"{class_weight!r}")
        weights = np.array([float(per_class.get(label, 1.0)) for label in self.classes_])
        if not (np.isfinite(weights).all() and (weights >= 0).all()):
            raise ValueError("class_weight values must be finite and >= 0")
        return weights[np.searchsorted(self.classes_, y)]

    def _labels_from_output(self, output):
        if self._multilabel:
            return (output > 0.5).astype(int)
        if self.n_outputs_ == 1:
            if self.classes_.shape[0] == 1:
                return np.repeat(self.classes_, output.shape[0])
            return self.classes_[(output[:, 0] > 0.5).astype(np.intp)]
        return self.classes_[np.argmax(output, axis=1)]

    def _score_output(self, output, labels, sample_weight):
        """Accuracy (subset accuracy for multilabel), as sklearn.metrics.accuracy_score
        computes it, without its input checks (this runs after every epoch)."""
        if not np.isfinite(output).all():
            return np.nan
        correct = self._labels_from_output(output) == np.asarray(labels)
        if correct.ndim == 2:
            correct = correct.all(axis=1)
        return float(np.average(correct, weights=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    __doc__ = ("""Multilayer perceptron regressor: scikit-learn's MLPRegressor, compiled.

    y of shape (n_samples,) or (n_samples, n_outputs).

    Parameters
    ----------
    loss : {"squared_error", "poisson"}, default="squared_error"
        squared_error: identity output, 0.5 * sum over outputs of (prediction - y)^2,
        averaged over samples. poisson: exp output (log link), half the Poisson deviance
        sum over outputs of y log(y / prediction) - y + prediction, for targets >= 0;
        both as scikit-learn's MLPRegressor.""" + _SHARED_PARAMETERS)

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 n_threads=None):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.n_threads = n_threads

    def fit(self, X, y, sample_weight=None, validation_data=None):
        """Fit to X (n_samples, n_features), dense or CSR/CSC, and y (n_samples,) or
        (n_samples, n_outputs); returns self. validation_data as for MLPClassifier.fit."""
        return self._fit(X, y, sample_weight, incremental=False,
                         validation_data=validation_data)

    @available_if(_has_epoch_solver)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y). Only for the epoch solvers (sgd, adam, rprop)."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predictions, shape (n_samples,) with one output, else (n_samples, n_outputs)."""
        output = self._forward(X)
        return output.ravel() if output.shape[1] == 1 else output

    def _check_params(self):
        if self.loss not in ("squared_error", "poisson"):
            raise ValueError(f"loss must be 'squared_error' or 'poisson', got {self.loss!r}")
        super()._check_params()

    def _y_validation_options(self):
        return {"y_numeric": True}

    def _output_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _stratify_split(self):
        return False

    def _prepare_targets(self, y, first_pass, incremental):
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if self.loss == "poisson" and np.min(Y) < 0:
            raise ValueError("Some value(s) of y are negative which is not allowed for "
                             "Poisson regression.")
        if not first_pass and hasattr(self, "n_outputs_") and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs but the model was fitted with "
                             f"{self.n_outputs_}")
        return Y, y, None

    def _prepare_validation_targets(self, y):
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return (y.reshape(-1, 1) if y.ndim == 1 else y), y

    def _score_output(self, output, labels, sample_weight):
        """R^2 averaged over outputs, as sklearn.metrics.r2_score computes it (an output
        with constant targets scores 1 if predicted exactly, else 0), without its input
        checks (this runs after every epoch)."""
        if not np.isfinite(output).all():
            return np.nan
        y = np.asarray(labels, dtype=np.float64).reshape(output.shape)
        weights = (np.ones(y.shape[0]) if sample_weight is None else sample_weight)[:, None]
        residual = (weights * (y - output) ** 2).sum(axis=0)
        spread = (weights * (y - np.average(y, axis=0, weights=weights[:, 0])) ** 2).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = np.where(spread > 0, 1 - residual / spread, np.where(residual == 0, 1, 0))
        return float(scores.mean())
