"""scikit-learn's MLP tests, ported to cffnn.MLPClassifier and cffnn.MLPRegressor.

Source: sklearn/neural_network/tests/test_mlp.py of scikit-learn 1.9.1. Each test names the
test it ports. cffnn initialises weights differently from scikit-learn (He-uniform for
relu), so numbers are compared cffnn with cffnn, with a hand-written NumPy update, or with
thresholds, never with scikit-learn's numbers. Where scikit-learn asserts on private state
(``_optimizer.learning_rate``, ``_no_improvement_count``), the port checks the same rule
through public attributes: ``loss_curve_`` replayed through scikit-learn's stopping rule,
``n_iter_``, ``t_``, and the exact parameter update of one SGD step.

Not ported:
- test_gradient: finite differences of the private ``_loss_grad_lbfgs``; cffnn's compiled
  gradient has its own tests (test_gradient.py, test_reference_agreement.py).
- test_mlp_vs_poisson_glm_equivalent: cffnn.MLPRegressor has no ``loss="poisson"``.
- test_mlp_diverging_loss asserts that a diverging fit with early stopping records a NaN
  validation score; cffnn raises DivergenceError instead, by design, and
  test_diverging_fit_raises checks that.
- test_preserve_feature_names needs pandas; it is ported but skipped where pandas is
  not installed.
"""
import pickle
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.sparse
from numpy.testing import assert_allclose, assert_array_equal

pytest.importorskip("sklearn")

from sklearn.datasets import (  # noqa: E402
    load_digits,
    load_iris,
    make_classification,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import log_loss, roc_auc_score  # noqa: E402
from sklearn.preprocessing import MinMaxScaler, StandardScaler, scale  # noqa: E402

import cffnn  # noqa: E402
from cffnn import MLPClassifier, MLPRegressor  # noqa: E402

SKLEARN_ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]
ALL_ACTIVATIONS = SKLEARN_ACTIVATIONS + ["leaky_relu", "elu", "softplus", "gelu"]
EPOCH_SOLVERS = ["sgd", "adam", "rprop"]
ESTIMATORS = [MLPClassifier, MLPRegressor]

X_digits, y_digits = load_digits(n_class=3, return_X_y=True)
X_digits_multi = MinMaxScaler().fit_transform(X_digits[:200])
y_digits_multi = y_digits[:200]

X_digits, y_digits = load_digits(n_class=2, return_X_y=True)   # 360 rows, binary
X_digits_binary = MinMaxScaler().fit_transform(X_digits[:200])
y_digits_binary = y_digits[:200]

CLASSIFICATION_DATASETS = [(X_digits_multi, y_digits_multi),
                           (X_digits_binary, y_digits_binary)]
DATASET_IDS = ["multiclass", "binary"]

X_reg, y_reg = make_regression(n_samples=200, n_features=10, bias=20.0, noise=100.0,
                               random_state=7)
y_reg = scale(y_reg)

X_iris, y_iris = load_iris(return_X_y=True)

ignore_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")


# -- helpers -------------------------------------------------------------------------------

def _stop_epoch(loss_curve, tol, n_iter_no_change, adaptive=False, learning_rate_init=1e-3):
    """Replay scikit-learn's stopping rule (_fit_stochastic, _update_no_improvement_count,
    SGDOptimizer.trigger_stopping) over a training-loss curve: the 1-based epoch at which
    it stops, or None if it never does."""
    best, count, learning_rate = np.inf, 0, learning_rate_init
    for epoch, loss in enumerate(loss_curve, start=1):
        count = count + 1 if loss > best - tol else 0
        best = min(best, loss)
        if count > n_iter_no_change:
            if adaptive and learning_rate > 1e-6:
                learning_rate /= 5.0
                count = 0
            else:
                return epoch
    return None


def _binary_sgd_step(coefs, intercepts, X, y, alpha, learning_rate, activation):
    """The plain SGD step (no momentum) of a one-hidden-layer binary classifier on the full
    batch (X, y), in NumPy: scikit-learn's backprop for a logistic output and log loss.
    Returns the steps for (coefs, intercepts)."""
    W1, W2 = (np.asarray(c, dtype=np.float64) for c in coefs)
    b1, b2 = (np.asarray(b, dtype=np.float64) for b in intercepts)
    n = X.shape[0]
    A1 = X @ W1 + b1
    if activation == "relu":
        Z1, dZ1 = np.maximum(A1, 0.0), (A1 > 0).astype(np.float64)
    else:
        assert activation == "logistic"
        Z1 = 1.0 / (1.0 + np.exp(-A1))
        dZ1 = Z1 * (1.0 - Z1)
    p = 1.0 / (1.0 + np.exp(-(Z1 @ W2 + b2)))
    delta2 = (p - y.reshape(-1, 1)) / n
    delta1 = dZ1 * (delta2 @ W2.T)
    grads_W = [X.T @ delta1 + alpha * W1 / n, Z1.T @ delta2 + alpha * W2 / n]
    grads_b = [delta1.sum(axis=0), delta2.sum(axis=0)]
    return ([-learning_rate * g for g in grads_W], [-learning_rate * g for g in grads_b])


def _params(mlp):
    """Copies of coefs_ and intercepts_."""
    return [c.copy() for c in mlp.coefs_], [b.copy() for b in mlp.intercepts_]


def _assert_same_params(mlp1, mlp2, rtol=1e-12):
    for a, b in zip(mlp1.coefs_ + mlp1.intercepts_, mlp2.coefs_ + mlp2.intercepts_):
        assert_allclose(a, b, rtol=rtol, atol=0)


def _solver_params(solver):
    """Learning rates that make each epoch solver learn within a few dozen epochs."""
    return {"sgd": {"learning_rate_init": 0.2}, "adam": {"learning_rate_init": 0.01},
            "rprop": {}, "lbfgs": {}}[solver]


# -- ports ---------------------------------------------------------------------------------

@ignore_convergence
def test_alpha():
    """test_alpha: a larger alpha gives weights closer to zero, in every layer."""
    X, y = X_digits_binary[:100], y_digits_binary[:100]
    norms = []
    for alpha in [0.0, 1.0, 10.0]:
        mlp = MLPClassifier(hidden_layer_sizes=10, alpha=alpha, random_state=1).fit(X, y)
        norms.append([np.abs(c).sum() for c in mlp.coefs_])
    norms = np.array(norms)
    assert (norms[:-1] > norms[1:]).all(), norms


def test_fit():
    """test_fit: scikit-learn's worked example of one SGD step (logistic units,
    alpha=0.1, learning rate 0.1) from given weights, then predict_proba."""
    X = np.array([[0.6, 0.8, 0.7]])
    y = np.array([0])
    mlp = MLPClassifier(solver="sgd", learning_rate_init=0.1, alpha=0.1,
                        activation="logistic", random_state=1, max_iter=1,
                        hidden_layer_sizes=2, momentum=0)
    mlp.coefs_ = [np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0.0]]), np.array([[0.1], [0.2]])]
    mlp.intercepts_ = [np.array([0.1, 0.1]), np.array([1.0])]
    mlp.partial_fit(X, y, classes=[0, 1])
    assert_allclose(mlp.coefs_[0], [[0.098, 0.195756], [0.2956664, 0.096008],
                                     [0.4939998, -0.002244]], atol=1e-3)
    assert_allclose(mlp.coefs_[1], [[0.04706], [0.154089]], atol=1e-3)
    assert_allclose(mlp.intercepts_[0], [0.098333, 0.09626], atol=1e-3)
    assert_allclose(mlp.intercepts_[1], [0.9235], atol=1e-3)
    assert_allclose(mlp.predict_proba(X)[0, 1], 0.739, atol=1e-3)


@pytest.mark.parametrize("activation", ["logistic", "relu"])
def test_fit_sgd_step_exact(activation):
    """test_fit, exactly: a partial_fit step of SGD without momentum from the network's own
    weights is -learning_rate * gradient, the gradient written out in NumPy."""
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, size=(6, 3))
    y = np.array([0, 1, 1, 0, 1, 0])
    mlp = MLPClassifier(solver="sgd", learning_rate_init=0.1, alpha=0.1,
                        activation=activation, random_state=1, hidden_layer_sizes=4,
                        momentum=0, batch_size=6, shuffle=False)
    mlp.partial_fit(X, y, classes=[0, 1])
    coefs, intercepts = _params(mlp)
    mlp.partial_fit(X, y)
    steps_W, steps_b = _binary_sgd_step(coefs, intercepts, X, y, 0.1, 0.1, activation)
    for k in range(2):
        assert_allclose(mlp.coefs_[k] - coefs[k], steps_W[k], rtol=1e-8, atol=1e-15)
        assert_allclose(mlp.intercepts_[k] - intercepts[k], steps_b[k], rtol=1e-8,
                        atol=1e-15)
    hidden = X @ mlp.coefs_[0] + mlp.intercepts_[0]
    hidden = np.maximum(hidden, 0) if activation == "relu" else 1 / (1 + np.exp(-hidden))
    p1 = 1 / (1 + np.exp(-(hidden @ mlp.coefs_[1] + mlp.intercepts_[1]))).ravel()
    assert_allclose(mlp.predict_proba(X), np.column_stack([1 - p1, p1]), rtol=1e-12)


@pytest.mark.parametrize("X,y", CLASSIFICATION_DATASETS, ids=DATASET_IDS)
@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
def test_lbfgs_classification(X, y, activation):
    """test_lbfgs_classification: lbfgs scores > 0.95 on binary and 3-class digits, and
    predict returns one label per row of y's kind (here for every cffnn activation)."""
    X_train, y_train, X_test = X[:150], y[:150], X[150:]
    mlp = MLPClassifier(solver="lbfgs", hidden_layer_sizes=50, max_iter=150, shuffle=True,
                        random_state=1, activation=activation)
    mlp.fit(X_train, y_train)
    y_predict = mlp.predict(X_test)
    assert mlp.score(X_train, y_train) > 0.95
    assert (y_predict.shape[0], y_predict.dtype.kind) == (X_test.shape[0],
                                                           y_train.dtype.kind)


@pytest.mark.parametrize("activation", SKLEARN_ACTIVATIONS)
def test_lbfgs_regression(activation):
    """test_lbfgs_regression: lbfgs R^2 > 0.98 on a noisy regression (> 0.80 for the
    linear identity network)."""
    mlp = MLPRegressor(solver="lbfgs", hidden_layer_sizes=50, max_iter=200, tol=1e-3,
                       shuffle=True, random_state=1, activation=activation)
    mlp.fit(X_reg, y_reg)
    assert mlp.score(X_reg, y_reg) > (0.80 if activation == "identity" else 0.98)


@pytest.mark.parametrize("X,y", CLASSIFICATION_DATASETS, ids=DATASET_IDS)
@pytest.mark.parametrize("activation", SKLEARN_ACTIVATIONS)
def test_lbfgs_classification_maxfun(X, y, activation):
    """test_lbfgs_classification_maxfun: max_fun limits lbfgs on its own, with a
    ConvergenceWarning."""
    mlp = MLPClassifier(solver="lbfgs", hidden_layer_sizes=50, max_iter=150, max_fun=10,
                        shuffle=True, random_state=1, activation=activation)
    with pytest.warns(ConvergenceWarning):
        mlp.fit(X, y)
    assert 1 <= mlp.n_iter_ <= 10


@pytest.mark.parametrize("activation", SKLEARN_ACTIVATIONS)
def test_lbfgs_regression_maxfun(activation):
    """test_lbfgs_regression_maxfun: max_fun limits lbfgs on its own, with a
    ConvergenceWarning."""
    mlp = MLPRegressor(solver="lbfgs", hidden_layer_sizes=50, tol=0.0, max_iter=150,
                       max_fun=10, shuffle=True, random_state=1, activation=activation)
    with pytest.warns(ConvergenceWarning):
        mlp.fit(X_reg, y_reg)
    assert 1 <= mlp.n_iter_ <= 10


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_lbfgs_max_iter_warns(Estimator):
    """The lbfgs branch of test_mlp_warm_start_no_convergence, without warm start: lbfgs
    stopped by max_iter warns and reports n_iter_ == max_iter."""
    mlp = Estimator(solver="lbfgs", max_iter=5, random_state=0)
    with pytest.warns(ConvergenceWarning):
        mlp.fit(X_iris, y_iris)
    assert mlp.n_iter_ == 5


@pytest.mark.parametrize("learning_rate", ["invscaling", "constant"])
def test_learning_rate_warmstart(learning_rate):
    """test_learning_rate_warmstart: after two warm-started fits of one epoch on 4 rows,
    t_ == 8 and the next SGD step uses learning_rate_init / (8 + 1) ** power_t under
    invscaling (learning_rate_init under constant). scikit-learn reads
    _optimizer.learning_rate; here the step of a following partial_fit is checked against
    the NumPy gradient."""
    X = np.array([[3, 2], [1, 6], [5, 6], [-2, -4]], dtype=np.float64)
    y = np.array([1, 1, 1, 0])
    mlp = MLPClassifier(solver="sgd", hidden_layer_sizes=4, learning_rate=learning_rate,
                        max_iter=1, power_t=0.25, warm_start=True, momentum=0.0,
                        random_state=0, shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X, y)
        mlp.fit(X, y)
    assert mlp.t_ == 8
    assert mlp.n_iter_ == 1
    coefs, intercepts = _params(mlp)
    mlp.partial_fit(X, y)
    assert mlp.t_ == 12
    expected_rate = mlp.learning_rate_init / (8 + 1) ** mlp.power_t \
        if learning_rate == "invscaling" else mlp.learning_rate_init
    steps_W, steps_b = _binary_sgd_step(coefs, intercepts, X, y, mlp.alpha, expected_rate,
                                        "relu")
    assert max(np.abs(s).max() for s in steps_W) > 0   # the check below is not vacuous
    for k in range(2):
        assert_allclose(mlp.coefs_[k] - coefs[k], steps_W[k], rtol=1e-7, atol=1e-15)
        assert_allclose(mlp.intercepts_[k] - intercepts[k], steps_b[k], rtol=1e-7,
                        atol=1e-15)


def test_multilabel_classification():
    """test_multilabel_classification: lbfgs and 100 partial_fit calls of SGD learn a
    multilabel problem; early stopping (unstratified for multilabel) still fits."""
    X, y = make_multilabel_classification(n_samples=50, random_state=0,
                                          return_indicator=True)
    mlp = MLPClassifier(solver="lbfgs", hidden_layer_sizes=50, alpha=1e-5, max_iter=150,
                        random_state=0, activation="logistic", learning_rate_init=0.2)
    mlp.fit(X, y)
    assert mlp.score(X, y) > 0.97

    mlp = MLPClassifier(solver="sgd", hidden_layer_sizes=50, max_iter=150, random_state=0,
                        activation="logistic", alpha=1e-5, learning_rate_init=0.2)
    for _ in range(100):
        mlp.partial_fit(X, y, classes=[0, 1, 2, 3, 4])
    assert mlp.score(X, y) > 0.9

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier(early_stopping=True, max_iter=20, random_state=0).fit(X, y)
    assert mlp.predict(X).shape == y.shape


def test_multioutput_regression():
    """test_multioutput_regression: lbfgs fits 5 targets with R^2 > 0.9."""
    X, y = make_regression(n_samples=200, n_targets=5, random_state=11)
    mlp = MLPRegressor(solver="lbfgs", hidden_layer_sizes=50, max_iter=200, tol=1e-2,
                       random_state=1)
    mlp.fit(X, y)
    assert mlp.score(X, y) > 0.9
    assert mlp.predict(X).shape == y.shape


def test_partial_fit_classes_error():
    """test_partial_fit_classes_error: other classes on a later partial_fit call are a
    ValueError."""
    clf = MLPClassifier(solver="sgd")
    clf.partial_fit([[3, 2]], [0], classes=[0, 1])
    with pytest.raises(ValueError):
        clf.partial_fit([[3, 2]], [0], classes=[1, 2])


@pytest.mark.parametrize("X,y", CLASSIFICATION_DATASETS, ids=DATASET_IDS)
@pytest.mark.parametrize("solver", EPOCH_SOLVERS)
def test_partial_fit_classification(X, y, solver):
    """test_partial_fit_classification: 100 partial_fit calls give the same network as
    fit with max_iter=100 (one batch per epoch, no shuffling), scoring > 0.95."""
    params = dict(solver=solver, random_state=1, alpha=1e-5, batch_size=X.shape[0],
                  shuffle=False, **_solver_params(solver))
    mlp_fit = MLPClassifier(max_iter=100, tol=0, n_iter_no_change=np.inf, **params)
    with pytest.warns(ConvergenceWarning):
        mlp_fit.fit(X, y)
    assert mlp_fit.n_iter_ == 100
    mlp = MLPClassifier(**params)
    for _ in range(100):
        mlp.partial_fit(X, y, classes=np.unique(y))
    assert_array_equal(mlp_fit.predict(X), mlp.predict(X))
    _assert_same_params(mlp_fit, mlp)
    assert_allclose(mlp_fit.loss_curve_, mlp.loss_curve_, rtol=1e-12)
    # (n_iter_ after partial_fit is not checked: scikit-learn resets it to 0 on every call,
    # so it reads 1; cffnn counts the epochs of all partial_fit calls.)
    assert mlp.t_ == mlp_fit.t_ == 100 * X.shape[0]
    assert mlp.score(X, y) > 0.95


@pytest.mark.parametrize("random_state", [0, 1, 2])
def test_partial_fit_unseen_classes(random_state):
    """test_partial_fit_unseen_classes: a class announced in `classes` but absent from the
    first batch can arrive in a later partial_fit call, and that call trains its column.
    (scikit-learn asserts score > 0 after two steps, which is chance: cffnn's initial
    network is sharper on raw inputs 1..4 and can start with all four wrong.)"""
    clf = MLPClassifier(random_state=random_state)
    clf.partial_fit([[1], [2], [3]], ["a", "b", "c"], classes=["a", "b", "c", "d"])
    proba_before = clf.predict_proba([[4]])[0]
    clf.partial_fit([[4]], ["d"])
    proba_after = clf.predict_proba([[4]])[0]
    assert_array_equal(clf.classes_, ["a", "b", "c", "d"])
    assert proba_after.shape == (4,)
    assert proba_after[3] > proba_before[3]
    assert set(clf.predict([[1], [2], [3], [4]])) <= {"a", "b", "c", "d"}
    for _ in range(300):
        clf.partial_fit([[1], [2], [3], [4]], ["a", "b", "c", "d"])
    assert clf.score([[1], [2], [3], [4]], ["a", "b", "c", "d"]) > 0


@pytest.mark.parametrize("solver,momentum", [("sgd", 0), ("sgd", 0.9), ("adam", 0.9),
                                             ("rprop", 0.9)])
def test_partial_fit_regression(solver, momentum):
    """test_partial_fit_regression: 100 partial_fit calls equal fit with max_iter=100
    (batch_size = n_samples), R^2 > 0.65 (momentum matters to sgd only)."""
    params = dict(solver=solver, activation="relu", random_state=1,
                  learning_rate_init=0.01, batch_size=X_reg.shape[0], momentum=momentum,
                  shuffle=False)
    mlp_fit = MLPRegressor(max_iter=100, n_iter_no_change=np.inf, **params)
    with pytest.warns(ConvergenceWarning):
        mlp_fit.fit(X_reg, y_reg)
    mlp = MLPRegressor(**params)
    for _ in range(100):
        mlp.partial_fit(X_reg, y_reg)
    assert_allclose(mlp_fit.predict(X_reg), mlp.predict(X_reg), rtol=1e-12)
    _assert_same_params(mlp_fit, mlp)
    assert mlp.score(X_reg, y_reg) > 0.65


def test_partial_fit_errors():
    """test_partial_fit_errors: y outside `classes`, no `classes` on the first call, and
    lbfgs (which has no partial_fit)."""
    X, y = [[3, 2], [1, 6]], [1, 0]
    with pytest.raises(ValueError):
        MLPClassifier(solver="sgd").partial_fit(X, y, classes=[2])
    with pytest.raises(ValueError):
        MLPClassifier(solver="sgd").partial_fit(X, y)
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    # scikit-learn 1.9's MLPRegressor means to do the same, but its available_if check
    # never calls _check_solver, so its lbfgs regressor has a partial_fit that runs lbfgs.
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")
    with pytest.raises(AttributeError):
        MLPClassifier(solver="lbfgs").partial_fit(X, y, classes=[0, 1])
    for solver in EPOCH_SOLVERS:
        assert hasattr(MLPClassifier(solver=solver), "partial_fit")
        assert hasattr(MLPRegressor(solver=solver), "partial_fit")


@pytest.mark.parametrize("solver", EPOCH_SOLVERS)
def test_nonfinite_params(solver):
    """test_nonfinite_params: data near float64's max makes the fit diverge; cffnn
    raises DivergenceError, a ValueError as scikit-learn raises."""
    rng = np.random.RandomState(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    y = rng.standard_normal(size=10)
    assert issubclass(cffnn.DivergenceError, ValueError)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(cffnn.DivergenceError):
            MLPRegressor(solver=solver, random_state=0).fit(X, y)


def test_diverging_fit_raises():
    """test_mlp_diverging_loss: scikit-learn records a NaN validation score when an SGD fit
    with early stopping diverges; cffnn raises DivergenceError instead."""
    mlp = MLPRegressor(hidden_layer_sizes=100, activation="identity", solver="sgd",
                       alpha=0.0001, learning_rate="constant", learning_rate_init=1,
                       shuffle=True, max_iter=20, early_stopping=True,
                       n_iter_no_change=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.raises(cffnn.DivergenceError):
            mlp.fit(X_iris, y_iris)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_predict_proba_binary(dtype):
    """test_predict_proba_binary: two columns, log-probabilities agree, perfect ranking;
    float32 data gives float32 probabilities."""
    X, y = X_digits_binary[:50].astype(dtype), y_digits_binary[:50]
    clf = MLPClassifier(hidden_layer_sizes=5, activation="logistic", random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    y_proba = clf.predict_proba(X)
    y_log_proba = clf.predict_log_proba(X)
    assert y_proba.shape == (50, 2)
    assert y_proba.dtype == dtype
    assert_allclose(y_proba.sum(axis=1), 1, rtol=1e-6 if dtype == np.float32 else 1e-12)
    assert_array_equal(y_proba.argmax(axis=1), y_log_proba.argmax(axis=1))
    assert_allclose(y_log_proba, np.log(y_proba), rtol=1e-5 if dtype == np.float32 else 1e-7)
    assert roc_auc_score(y, y_proba[:, 1]) == 1.0


@ignore_convergence
def test_predict_proba_multiclass():
    """test_predict_proba_multiclass: one column per class, rows sum to one,
    log-probabilities agree."""
    X, y = X_digits_multi[:10], y_digits_multi[:10]
    clf = MLPClassifier(hidden_layer_sizes=5, random_state=0).fit(X, y)
    y_proba = clf.predict_proba(X)
    y_log_proba = clf.predict_log_proba(X)
    assert y_proba.shape == (10, np.unique(y).size)
    assert_allclose(y_proba.sum(axis=1), 1, rtol=1e-12)
    assert_array_equal(y_proba.argmax(axis=1), y_log_proba.argmax(axis=1))
    assert_allclose(y_log_proba, np.log(y_proba))
    assert_array_equal(clf.predict(X), clf.classes_[y_proba.argmax(axis=1)])


def test_predict_proba_multilabel():
    """test_predict_proba_multilabel: independent sigmoids (rows need not sum to one),
    thresholded at 0.5 they reproduce the training labels."""
    X, Y = make_multilabel_classification(n_samples=50, random_state=0,
                                          return_indicator=True)
    clf = MLPClassifier(solver="lbfgs", hidden_layer_sizes=30, random_state=0).fit(X, Y)
    y_proba = clf.predict_proba(X)
    assert y_proba.shape == Y.shape
    assert_array_equal(y_proba > 0.5, Y)
    y_log_proba = clf.predict_log_proba(X)
    assert (y_proba.sum(1) - 1).dot(y_proba.sum(1) - 1) > 1e-10
    assert_array_equal(y_proba.argmax(axis=1), y_log_proba.argmax(axis=1))
    assert_allclose(y_log_proba, np.log(y_proba))


def test_shuffle():
    """test_shuffle: equal settings give equal weights with and without shuffling;
    shuffling changes the result."""
    X, y = make_regression(n_samples=50, n_features=5, n_targets=1, random_state=0)
    params = dict(hidden_layer_sizes=1, max_iter=1, batch_size=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for shuffle in [True, False]:
            mlp1 = MLPRegressor(shuffle=shuffle, **params).fit(X, y)
            mlp2 = MLPRegressor(shuffle=shuffle, **params).fit(X, y)
            assert_array_equal(mlp1.coefs_[0], mlp2.coefs_[0])
        mlp1 = MLPRegressor(shuffle=True, **params).fit(X, y)
        mlp2 = MLPRegressor(shuffle=False, **params).fit(X, y)
    assert not np.array_equal(mlp1.coefs_[0], mlp2.coefs_[0])


@pytest.mark.parametrize("container", [scipy.sparse.csr_matrix, scipy.sparse.csr_array,
                                       scipy.sparse.csc_matrix, scipy.sparse.csc_array])
@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_sparse_matrices(container, solver):
    """test_sparse_matrices: sparse input trains and predicts exactly as the dense input
    (cffnn densifies it)."""
    X, y = X_digits_binary[:50], y_digits_binary[:50]
    X_sparse = container(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dense = MLPClassifier(solver=solver, hidden_layer_sizes=15, random_state=1,
                              max_iter=50).fit(X, y)
        sparse = MLPClassifier(solver=solver, hidden_layer_sizes=15, random_state=1,
                               max_iter=50).fit(X_sparse, y)
    _assert_same_params(dense, sparse)
    assert_array_equal(dense.predict(X), sparse.predict(X_sparse))
    assert_array_equal(sparse.predict(X), sparse.predict(X_sparse))
    assert_allclose(sparse.predict_proba(X), sparse.predict_proba(X_sparse), rtol=1e-12)


def test_tolerance():
    """test_tolerance: a large tol stops SGD well before max_iter, at the epoch that
    scikit-learn's rule (n_iter_no_change epochs without improvement by tol) gives."""
    clf = MLPClassifier(tol=0.5, max_iter=3000, solver="sgd", random_state=0)
    clf.fit([[3, 2], [1, 6]], [1, 0])
    assert clf.n_iter_ < clf.max_iter
    assert len(clf.loss_curve_) == clf.n_iter_
    assert clf.n_iter_ == _stop_epoch(clf.loss_curve_, 0.5, 10)


def test_verbose_sgd(capsys):
    """test_verbose_sgd: one "Iteration N, loss = ..." line per epoch, from fit and from
    partial_fit; with validation data the line carries the validation score. (The number
    on the partial_fit line is not checked: scikit-learn restarts n_iter_ at every call.)"""
    X, y = [[3, 2], [1, 6]], [1, 0]
    clf = MLPClassifier(solver="sgd", max_iter=2, verbose=10, hidden_layer_sizes=2,
                        random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    clf.partial_fit(X, y)
    out, _ = capsys.readouterr()
    lines = [line for line in out.splitlines() if line.startswith("Iteration")]
    assert len(lines) == 3, out
    for n, line in enumerate(lines, start=1):
        match = re.match(rf"Iteration {n if n <= 2 else '[0-9]+'}, loss = ([-+0-9.eE]+)",
                         line)
        assert match, line
        assert float(match.group(1).rstrip(".,")) == pytest.approx(clf.loss_curve_[n - 1],
                                                                   rel=1e-5)

    X, y = X_digits_binary[:100], y_digits_binary[:100]
    clf = MLPClassifier(solver="sgd", max_iter=3, verbose=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X[:80], y[:80], validation_data=(X[80:], y[80:]))
    out, _ = capsys.readouterr()
    lines = [line for line in out.splitlines() if line.startswith("Iteration")]
    assert len(lines) == 3, out
    assert all("validation score" in line for line in lines), out

    clf = MLPClassifier(solver="adam", max_iter=3, verbose=True, random_state=0,
                        early_stopping=True, n_iter_no_change=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    out, _ = capsys.readouterr()
    lines = [line for line in out.splitlines() if line.startswith("Iteration")]
    assert len(lines) == 3 and all("validation score" in line for line in lines), out


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_early_stopping(Estimator):
    """test_early_stopping: with early_stopping, validation scores are recorded, the best
    is their max, training stops before max_iter, best_loss_ is None; without it the
    validation attributes are None."""
    X, y = X_digits_binary[:100], y_digits_binary[:100]
    tol = 0.2
    mlp = Estimator(tol=tol, max_iter=3000, solver="sgd", early_stopping=True,
                    random_state=0)
    mlp.fit(X, y)
    assert mlp.max_iter > mlp.n_iter_
    assert mlp.best_loss_ is None
    assert isinstance(mlp.validation_scores_, list)
    assert len(mlp.validation_scores_) == len(mlp.validation_loss_curve_) == mlp.n_iter_
    scores = mlp.validation_scores_
    assert max(scores) == mlp.best_validation_score_
    assert mlp.best_validation_score_ + tol > scores[-2]
    assert mlp.best_validation_score_ + tol > scores[-1]

    mlp = Estimator(tol=tol, max_iter=3000, solver="sgd", early_stopping=False,
                    random_state=0)
    mlp.fit(X, y)
    assert mlp.validation_scores_ is None
    assert mlp.best_validation_score_ is None
    assert mlp.best_loss_ is not None
    assert mlp.best_loss_ == min(mlp.loss_curve_)


def test_early_stopping_restores_best_weights_regressor():
    """test_early_stopping, the weights: the model ends with the weights of its best
    validation epoch (scikit-learn keeps _best_coefs), checked on given validation data."""
    X_train, y_train, X_val, y_val = X_reg[:120], y_reg[:120], X_reg[120:], y_reg[120:]
    mlp = MLPRegressor(hidden_layer_sizes=50, solver="adam", learning_rate_init=0.01,
                       early_stopping=True, n_iter_no_change=10, max_iter=500,
                       random_state=0)
    mlp.fit(X_train, y_train, validation_data=(X_val, y_val))
    assert mlp.n_iter_ < mlp.max_iter
    scores = mlp.validation_scores_
    assert len(scores) == mlp.n_iter_
    assert scores[-1] < mlp.best_validation_score_     # restoring the best matters here
    assert mlp.score(X_val, y_val) == pytest.approx(mlp.best_validation_score_, rel=1e-9)


def test_early_stopping_restores_best_weights_classifier():
    """test_early_stopping, the weights, for a classifier: the final validation accuracy is
    the best and the final validation log loss is that of the first best epoch."""
    X_train, y_train = X_digits_multi[:120], y_digits_multi[:120]
    X_val, y_val = X_digits_multi[120:], y_digits_multi[120:]
    mlp = MLPClassifier(hidden_layer_sizes=20, solver="sgd", learning_rate_init=0.05,
                        early_stopping=True, n_iter_no_change=5, max_iter=500,
                        random_state=0)
    mlp.fit(X_train, y_train, validation_data=(X_val, y_val))
    assert mlp.n_iter_ < mlp.max_iter
    scores = mlp.validation_scores_
    best_epoch = int(np.argmax(scores))
    assert best_epoch < mlp.n_iter_ - 1
    assert mlp.score(X_val, y_val) == pytest.approx(mlp.best_validation_score_, rel=1e-12)
    assert log_loss(y_val, mlp.predict_proba(X_val)) == pytest.approx(
        mlp.validation_loss_curve_[best_epoch], rel=1e-6)


def test_adaptive_learning_rate():
    """test_adaptive_learning_rate: the adaptive schedule divides the rate by 5 each time
    the loss stalls and stops once it is <= 1e-6 (scikit-learn reads the private rate;
    here the stopping epoch is replayed from loss_curve_)."""
    clf = MLPClassifier(tol=0.5, max_iter=3000, solver="sgd", learning_rate="adaptive",
                        random_state=0)
    clf.fit([[3, 2], [1, 6]], [1, 0])
    assert clf.max_iter > clf.n_iter_
    # 1e-3 / 5**5 <= 1e-6: five reductions of n_iter_no_change + 1 stalled epochs each,
    # then one more stall to stop.
    assert clf.n_iter_ >= 1 + 6 * 11
    assert clf.n_iter_ == _stop_epoch(clf.loss_curve_, 0.5, 10, adaptive=True,
                                      learning_rate_init=1e-3)
    # Under the constant schedule the same stall stops after 11 epochs.
    const = MLPClassifier(tol=0.5, max_iter=3000, solver="sgd", random_state=0)
    const.fit([[3, 2], [1, 6]], [1, 0])
    assert const.n_iter_ < clf.n_iter_


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("solver", ["sgd", "adam", "rprop"])
def test_convergence_warning_at_max_iter(Estimator, solver):
    """The ConvergenceWarning of every test that ignores it: an epoch solver stopped by
    max_iter warns and has run exactly max_iter epochs."""
    mlp = Estimator(solver=solver, max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        mlp.fit(X_iris, y_iris)
    assert mlp.n_iter_ == 3 and len(mlp.loss_curve_) == 3


def test_warm_start():
    """test_warm_start: a warm start with the same classes works; other classes are a
    ValueError."""
    X, y = X_iris, y_iris
    params = dict(hidden_layer_sizes=2, solver="lbfgs", warm_start=True, random_state=42,
                  tol=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(**params).fit(X, y)
        clf.fit(X, y)
        clf.fit(X, np.array([0] * 40 + [1] * 40 + [2] * 70))
        for y_i in (np.array([0] * 75 + [1] * 75),
                    np.array([0] * 50 + [1] * 50 + [3] * 50),
                    np.array([0] * 37 + [1] * 37 + [2] * 38 + [3] * 38),
                    np.array([0] * 30 + [1] * 30 + [2] * 30 + [3] * 30 + [4] * 30)):
            clf = MLPClassifier(**params).fit(X, y)
            with pytest.raises(ValueError, match="warm_start"):
                clf.fit(X, y_i)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_warm_start_continues(Estimator):
    """test_warm_start, the other half: a warm start continues from the previous weights
    (one more epoch of full-batch SGD equals one more partial_fit), a cold start does not
    (it is the same as a fresh fit)."""
    X, y = StandardScaler().fit_transform(X_iris), y_iris
    params = dict(hidden_layer_sizes=5, solver="sgd", max_iter=1, momentum=0.0,
                  batch_size=150, shuffle=False, random_state=0, learning_rate_init=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm = Estimator(warm_start=True, **params).fit(X, y).fit(X, y)
        cold = Estimator(warm_start=False, **params).fit(X, y).fit(X, y)
        fresh = Estimator(**params).fit(X, y)
    incremental = Estimator(**params)
    for _ in range(2):
        incremental.partial_fit(X, y, **({"classes": np.unique(y)}
                                         if Estimator is MLPClassifier else {}))
    _assert_same_params(warm, incremental)
    _assert_same_params(cold, fresh)
    assert not np.array_equal(warm.coefs_[0], cold.coefs_[0])


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("solver", EPOCH_SOLVERS)
def test_warm_start_full_iteration(Estimator, solver):
    """test_warm_start_full_iteration: a warm-started fit runs max_iter epochs again."""
    clf = Estimator(hidden_layer_sizes=2, solver=solver, warm_start=True, max_iter=3,
                    random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_iris, y_iris)
        assert clf.n_iter_ == 3
        clf.fit(X_iris, y_iris)
        assert clf.n_iter_ == 3
    assert clf.t_ == 6 * X_iris.shape[0]


@pytest.mark.parametrize("n_iter_no_change", [2, 5, 10, 50, 100])
def test_n_iter_no_change(n_iter_no_change):
    """test_n_iter_no_change: training stops after n_iter_no_change + 1 epochs without an
    improvement of the loss by tol (scikit-learn reads _no_improvement_count; here the
    rule is replayed from loss_curve_)."""
    X, y = X_digits_binary[:100], y_digits_binary[:100]
    clf = MLPClassifier(tol=0.01, max_iter=3000, solver="sgd",
                        n_iter_no_change=n_iter_no_change, random_state=0)
    clf.fit(X, y)
    assert clf.max_iter > clf.n_iter_ > n_iter_no_change
    assert clf.n_iter_ == _stop_epoch(clf.loss_curve_, 0.01, n_iter_no_change)


def test_n_iter_no_change_inf():
    """test_n_iter_no_change_inf: n_iter_no_change=inf never stops early, even when every
    epoch fails the (huge) tolerance."""
    X, y = X_digits_binary[:100], y_digits_binary[:100]
    clf = MLPClassifier(tol=1e9, max_iter=300, solver="sgd", n_iter_no_change=np.inf,
                        random_state=0)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    assert clf.n_iter_ == 300
    assert _stop_epoch(clf.loss_curve_, 1e9, 10) == 12   # a finite value would stop


def test_early_stopping_stratified():
    """test_early_stopping_stratified: the early-stopping split is stratified, so a class
    with one member is an error."""
    mlp = MLPClassifier(early_stopping=True)
    with pytest.raises(ValueError, match="least populated class"):
        mlp.fit([[1, 2], [2, 3], [3, 4], [4, 5]], [0, 0, 0, 1])


def test_mlp_early_stopping_string_labels():
    """test_mlp_early_stopping_string_labels: string labels work with early stopping."""
    X, y = make_classification(n_samples=200, n_features=10, n_classes=3, n_informative=5,
                               random_state=42)
    y = np.array(["class_a", "class_b", "class_c"], dtype=object)[y]
    mlp = MLPClassifier(early_stopping=True, max_iter=50, random_state=42)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X, y)
    assert mlp.validation_scores_ is not None
    assert len(mlp.validation_scores_) == mlp.n_iter_
    assert np.isfinite(mlp.validation_scores_).all()
    assert set(mlp.predict(X)) <= {"class_a", "class_b", "class_c"}


@ignore_convergence
def test_mlp_classifier_dtypes_casting():
    """test_mlp_classifier_dtypes_casting: float32 training predicts as float64 training."""
    params = dict(alpha=1e-5, hidden_layer_sizes=(5, 3), random_state=1, max_iter=100,
                  tol=1e-1)
    mlp_64 = MLPClassifier(**params).fit(X_digits[:300], y_digits[:300])
    mlp_32 = MLPClassifier(**params).fit(X_digits[:300].astype(np.float32), y_digits[:300])
    X_test = X_digits[300:]
    assert_array_equal(mlp_64.predict(X_test), mlp_32.predict(X_test.astype(np.float32)))
    # atol: a float32 probability near 0 computed as 1 - p (p near 1) is a multiple of
    # 2**-24 ~ 6e-8, so its relative error there is large (scikit-learn does the same).
    assert_allclose(mlp_64.predict_proba(X_test),
                    mlp_32.predict_proba(X_test.astype(np.float32)), rtol=1e-2, atol=1e-6)


@ignore_convergence
def test_mlp_regressor_dtypes_casting():
    """test_mlp_regressor_dtypes_casting: float32 training predicts as float64 training."""
    params = dict(alpha=1e-5, hidden_layer_sizes=(5, 3), random_state=1, max_iter=150,
                  tol=1e-3)
    mlp_64 = MLPRegressor(**params).fit(X_digits[:300], y_digits[:300])
    mlp_32 = MLPRegressor(**params).fit(X_digits[:300].astype(np.float32), y_digits[:300])
    X_test = X_digits[300:]
    assert_allclose(mlp_64.predict(X_test), mlp_32.predict(X_test.astype(np.float32)),
                    rtol=5e-4)


@ignore_convergence
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_mlp_param_dtypes(dtype, Estimator):
    """test_mlp_param_dtypes: the data's dtype is the dtype of the weights and of the
    outputs (predict for the regressor, predict_proba for the classifier)."""
    X, y = X_digits.astype(dtype), y_digits
    mlp = Estimator(alpha=1e-5, hidden_layer_sizes=(5, 3), random_state=1, max_iter=50,
                    tol=1e-1).fit(X[:300], y[:300])
    pred = mlp.predict(X[300:])
    assert all(intercept.dtype == dtype for intercept in mlp.intercepts_)
    assert all(coef.dtype == dtype for coef in mlp.coefs_)
    if Estimator is MLPRegressor:
        assert pred.dtype == dtype
    else:
        assert mlp.predict_proba(X[300:]).dtype == dtype


def test_mlp_loading_from_joblib_partial_fit(tmp_path):
    """test_mlp_loading_from_joblib_partial_fit: a model loaded with joblib keeps learning
    with partial_fit, exactly as the model that was saved (its Adam state included)."""
    joblib = pytest.importorskip("joblib")
    model = MLPRegressor(hidden_layer_sizes=(42,), random_state=42, learning_rate_init=0.01,
                         max_iter=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit([[2]], [4])
    assert model.predict([[2]])[0] > 3      # it learned the first target
    joblib.dump(model, tmp_path / "mlp.pkl")
    loaded = joblib.load(tmp_path / "mlp.pkl")
    assert_array_equal(loaded.predict([[2]]), model.predict([[2]]))
    for _ in range(200):
        loaded.partial_fit([[2]], [1])
        model.partial_fit([[2]], [1])
    assert_array_equal(loaded.predict([[2]]), model.predict([[2]]))
    # scikit-learn reaches rtol 1e-4 from its Glorot start; from cffnn's He-uniform start
    # Adam's fixed-size steps still swing by ~3e-4 around the target after 200 steps (the
    # same steps as scikit-learn's Adam from these weights).
    assert_allclose(loaded.predict([[2]]), [1], rtol=1e-3)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_mlp_loading_readonly_memmap(tmp_path, Estimator):
    """test_mlp_loading_from_joblib_partial_fit, with joblib's read-only memory map and
    with pickle: loaded models predict exactly as the original and still partial_fit."""
    joblib = pytest.importorskip("joblib")
    X, y = X_digits_multi, y_digits_multi
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = Estimator(hidden_layer_sizes=(20, 10), max_iter=20, random_state=0).fit(X, y)
    joblib.dump(model, tmp_path / "mlp.joblib")
    mapped = joblib.load(tmp_path / "mlp.joblib", mmap_mode="r")
    unpickled = pickle.loads(pickle.dumps(model))
    X_readonly = X.copy()
    X_readonly.flags.writeable = False
    for loaded in (mapped, unpickled):
        assert_array_equal(loaded.predict(X_readonly), model.predict(X))
        if Estimator is MLPClassifier:
            assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    before = unpickled.coefs_[0].copy()
    unpickled.partial_fit(X_readonly, y)
    assert not np.array_equal(unpickled.coefs_[0], before)
    # partial_fit on the memory-mapped model runs in a child process, so that a crash
    # (compiled code writing into the read-only map) fails this test instead of ending the
    # test run. It must work, or fail with a Python exception as scikit-learn does
    # ("ValueError: output array is read-only"): never crash.
    script = textwrap.dedent("""
        import sys, joblib, numpy as np
        loaded = joblib.load(sys.argv[1], mmap_mode="r")
        data = np.load(sys.argv[2])
        before = loaded.coefs_[0].copy()
        loaded.partial_fit(data["X"], data["y"])
        assert not np.array_equal(loaded.coefs_[0], before)
        assert np.array_equal(loaded.coefs_[0], np.load(sys.argv[3]))
        print("partial_fit ok")
        """)
    np.savez(tmp_path / "data.npz", X=X, y=y)
    np.save(tmp_path / "expected.npy", unpickled.coefs_[0])
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "mlp.joblib"),
                             str(tmp_path / "data.npz"), str(tmp_path / "expected.npy")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    crashed = result.returncode != 0 and "Traceback" not in result.stderr
    assert not crashed, (
        f"partial_fit on a model loaded with mmap_mode='r' crashed (returncode "
        f"{result.returncode}):\n{result.stderr[-2000:]}")
    if result.returncode != 0:
        assert "Error" in result.stderr.splitlines()[-1], result.stderr[-2000:]
    else:
        assert "partial_fit ok" in result.stdout, result.stdout
    assert_array_equal(joblib.load(tmp_path / "mlp.joblib").coefs_[0], model.coefs_[0])


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_preserve_feature_names(Estimator):
    """test_preserve_feature_names: early stopping on a DataFrame warns about no feature
    names."""
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X = pd.DataFrame(data=rng.randn(10, 2), columns=["colname_a", "colname_b"])
    y = pd.Series(data=np.full(10, 1), name="colname_y")
    model = Estimator(early_stopping=True, validation_fraction=0.2, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    assert_array_equal(model.feature_names_in_, ["colname_a", "colname_b"])


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_mlp_warm_start_with_early_stopping(Estimator):
    """test_mlp_warm_start_with_early_stopping: a warm start with early stopping keeps
    adding validation scores."""
    mlp = Estimator(max_iter=10, random_state=0, warm_start=True, early_stopping=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X_iris, y_iris)
        n_validation_scores = len(mlp.validation_scores_)
        mlp.set_params(max_iter=20)
        mlp.fit(X_iris, y_iris)
    assert len(mlp.validation_scores_) > n_validation_scores


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs", "rprop"])
def test_mlp_warm_start_no_convergence(Estimator, solver):
    """test_mlp_warm_start_no_convergence: a warm-started fit stops at max_iter, with a
    ConvergenceWarning each time."""
    model = Estimator(solver=solver, warm_start=True, early_stopping=False, max_iter=10,
                      n_iter_no_change=np.inf, random_state=0)
    with pytest.warns(ConvergenceWarning):
        model.fit(X_iris, y_iris)
    assert model.n_iter_ == 10
    model.set_params(max_iter=20)
    with pytest.warns(ConvergenceWarning):
        model.fit(X_iris, y_iris)
    assert model.n_iter_ == 20


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_mlp_partial_fit_after_fit(Estimator):
    """test_mlp_partial_fit_after_fit: partial_fit refuses early_stopping=True."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = Estimator(early_stopping=True, random_state=0, max_iter=20).fit(X_iris, y_iris)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        mlp.partial_fit(X_iris, y_iris)


def test_mlp_sample_weight_with_early_stopping():
    """test_mlp_sample_weight_with_early_stopping: weights of ones equal no weights through
    the early-stopping split."""
    X, y = make_regression(n_samples=100, n_features=2, n_informative=2, random_state=42)
    params = dict(hidden_layer_sizes=10, solver="adam", early_stopping=True, tol=1e-2,
                  learning_rate_init=0.01, batch_size=10, random_state=42)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m1 = MLPRegressor(**params).fit(X, y, sample_weight=np.ones_like(y))
        m2 = MLPRegressor(**params).fit(X, y, sample_weight=None)
    assert m1.n_iter_ == m2.n_iter_
    assert_allclose(m1.predict(X), m2.predict(X))


@ignore_convergence
@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("solver", ["lbfgs", "sgd", "adam", "rprop"])
def test_sample_weight_ones_equal_none(Estimator, solver):
    """sample_weight of ones is no weighting (scikit-learn's sample-weight contract)."""
    X, y = X_digits_multi[:100], y_digits_multi[:100]
    params = dict(hidden_layer_sizes=10, solver=solver, max_iter=30, random_state=0,
                  **_solver_params(solver))
    m1 = Estimator(**params).fit(X, y, sample_weight=np.ones(len(y)))
    m2 = Estimator(**params).fit(X, y)
    assert m1.n_iter_ == m2.n_iter_
    # A weighted mean may round differently from the plain mean in the last bit.
    _assert_same_params(m1, m2, rtol=1e-7)


@ignore_convergence
@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("solver", ["lbfgs", "sgd", "adam", "rprop"])
def test_integer_sample_weight_equals_repeated_rows(Estimator, solver):
    """Integer sample_weight (zeros included) equals repeating (or dropping) rows, for
    lbfgs and for the epoch solvers on one full batch ("auto" is min(200, n_samples))
    without shuffling."""
    X, y = X_digits_multi[:60], y_digits_multi[:60]
    sample_weight = np.random.RandomState(0).randint(0, 4, size=len(y))
    X_rep, y_rep = np.repeat(X, sample_weight, axis=0), np.repeat(y, sample_weight)
    params = dict(hidden_layer_sizes=10, solver=solver, max_iter=30, random_state=0,
                  batch_size="auto", shuffle=False, n_iter_no_change=np.inf,
                  **_solver_params(solver))
    weighted = Estimator(**params).fit(X, y, sample_weight=sample_weight)
    repeated = Estimator(**params).fit(X_rep, y_rep)
    assert weighted.n_iter_ == repeated.n_iter_
    # The same sums are accumulated in another order (weights times rows versus repeated
    # rows), so equality holds to rounding, which 30 iterations amplify a little.
    output = "predict_proba" if Estimator is MLPClassifier else "predict"
    assert_allclose(getattr(weighted, output)(X), getattr(repeated, output)(X), rtol=1e-5,
                    atol=1e-8)
    assert weighted.loss_ == pytest.approx(repeated.loss_, rel=1e-6)


def test_minimum_input_sample_size():
    """test_minimum_input_sample_size: a validation split of fewer than two rows is an
    error naming the cause."""
    X, y = make_regression(n_samples=2, n_features=5, random_state=0)
    with pytest.raises(ValueError, match="The validation set is too small"):
        MLPRegressor(early_stopping=True, random_state=0).fit(X, y)


@pytest.mark.parametrize("solver", ["lbfgs", "sgd", "adam", "rprop"])
def test_fit_iris_accuracy(solver):
    """Expected accuracy on a small problem (the thresholds of scikit-learn's tests, for
    every cffnn solver): each solver fits standardised iris to > 0.9 training accuracy."""
    X = StandardScaler().fit_transform(X_iris)
    clf = MLPClassifier(hidden_layer_sizes=10, solver=solver, max_iter=300, random_state=0,
                        n_iter_no_change=np.inf, **_solver_params(solver))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y_iris)
    assert clf.score(X, y_iris) > 0.9
    assert clf.n_layers_ == 3 and clf.n_outputs_ == 3 and clf.n_features_in_ == 4
    assert clf.out_activation_ == "softmax"
