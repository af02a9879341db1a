"""MLPClassifier / MLPRegressor: what cffnn adds to scikit-learn's MLP, and how the
estimators sit on the compiled core (one fit_epoch per epoch, views of the parameters,
dtypes, the prediction fast path, parameter checks)."""
import warnings

import numpy as np
import pytest
import scipy.sparse
from sklearn.datasets import load_iris, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import log_loss
from sklearn.utils.class_weight import compute_sample_weight

import cffnn
from cffnn.network import Network

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    order = np.random.default_rng(0).permutation(len(y))
    return X[order], y[order]


def small_classifier(**params):
    defaults = dict(hidden_layer_sizes=(8,), max_iter=30, random_state=0,
                    learning_rate_init=0.01)
    return cffnn.MLPClassifier(**{**defaults, **params})


# -- extensions over scikit-learn ----------------------------------------------------------

@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu", "leaky_relu",
                                        "elu", "softplus", "gelu"])
def test_every_activation_learns_iris(iris, activation):
    X, y = iris
    model = small_classifier(activation=activation, max_iter=200).fit(X, y)
    assert model.score(X, y) > 0.9


def test_activation_list_gives_one_per_hidden_layer(iris):
    X, y = iris
    model = small_classifier(hidden_layer_sizes=(6, 5), activation=["tanh", "gelu"]).fit(X, y)
    assert model._network().activations == ("tanh", "gelu")
    assert [c.shape for c in model.coefs_] == [(4, 6), (6, 5), (5, 3)]
    with pytest.raises(ValueError, match="activation lists 1 names"):
        small_classifier(hidden_layer_sizes=(6, 5), activation=["tanh"]).fit(X, y)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        small_classifier(activation="swish").fit(X, y)


def test_class_weight_balanced_equals_its_sample_weights(iris):
    X, y = iris[0][:110], iris[1][:110]          # unbalanced: 50/50/10 or so
    weighted = small_classifier(class_weight="balanced").fit(X, y)
    explicit = small_classifier().fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    np.testing.assert_array_equal(weighted.predict_proba(X), explicit.predict_proba(X))
    both = small_classifier(class_weight={0: 2.0}).fit(X, y, sample_weight=np.full(110, 3.0))
    by_hand = small_classifier().fit(X, y, sample_weight=np.where(y == 0, 6.0, 3.0))
    np.testing.assert_array_equal(both.predict_proba(X), by_hand.predict_proba(X))


def test_class_weight_dict_shifts_predictions(iris):
    X, y = iris
    favour_two = small_classifier(class_weight={0: 1e-3, 1: 1e-3, 2: 1.0}).fit(X, y)
    assert np.mean(favour_two.predict(X) == 2) > 0.6
    with pytest.raises(ValueError, match="not classes"):
        small_classifier(class_weight={7: 1.0}).fit(X, y)
    with pytest.raises(ValueError, match="multilabel"):
        small_classifier(class_weight="balanced").fit(X, np.eye(3, dtype=int)[y])
    with pytest.raises(ValueError, match="partial_fit"):
        small_classifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(TypeError, match="class_weight"):
        small_classifier(class_weight=[1, 2, 3]).fit(X, y)


def test_validation_data_records_scores_and_losses(iris):
    X, y = iris
    X_train, y_train, X_val, y_val = X[:100], y[:100], X[100:], y[100:]
    model = small_classifier(max_iter=12).fit(X_train, y_train,
                                              validation_data=(X_val, y_val))
    assert len(model.validation_scores_) == len(model.validation_loss_curve_) == 12
    assert model.validation_scores_[-1] == pytest.approx(model.score(X_val, y_val),
                                                         abs=1e-12)
    assert model.best_validation_score_ == max(model.validation_scores_)
    # the validation loss has no L2 penalty: it is the log loss of the predictions
    assert model.validation_loss_curve_[-1] == pytest.approx(
        log_loss(y_val, model.predict_proba(X_val)), rel=1e-9)
    assert model.t_ == 12 * 100                    # every training row, every epoch
    assert model.best_loss_ == min(model.loss_curve_)


def test_validation_data_replaces_the_split_under_early_stopping(iris):
    X, y = iris
    model = small_classifier(early_stopping=True, max_iter=500, n_iter_no_change=3).fit(
        X[:100], y[:100], validation_data=(X[100:], y[100:]))
    assert model.n_iter_ < 500
    assert model.t_ == model.n_iter_ * 100         # nothing split off the training rows
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert model.score(X[100:], y[100:]) == pytest.approx(model.best_validation_score_,
                                                          abs=1e-12)   # best restored
    split = small_classifier(early_stopping=True, max_iter=5).fit(X, y)
    assert len(split.validation_loss_curve_) == 5
    with pytest.raises(ValueError, match="classes"):
        small_classifier().fit(X[:100], y[:100], validation_data=(X[:5], np.full(5, 9)))
    with pytest.raises(ValueError, match="tuple"):
        small_classifier().fit(X, y, validation_data=X)


def test_regressor_validation_data():
    X, y = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=0)
    y = y / y.std()
    model = cffnn.MLPRegressor(hidden_layer_sizes=(16,), max_iter=20, random_state=0,
                               learning_rate_init=0.01).fit(X[:150], y[:150],
                                                            validation_data=(X[150:], y[150:]))
    assert model.validation_scores_[-1] == pytest.approx(model.score(X[150:], y[150:]),
                                                         rel=1e-12)
    residual = model.predict(X[150:]) - y[150:]
    assert model.validation_loss_curve_[-1] == pytest.approx(0.5 * np.mean(residual ** 2),
                                                             rel=1e-9)


def test_given_coefs_start_a_warm_start_fit(iris):
    X, y = iris
    trained = small_classifier(max_iter=100).fit(X, y)
    fresh = small_classifier(solver="sgd", learning_rate_init=1e-12, momentum=0.0,
                             max_iter=1, warm_start=True)
    fresh.coefs_ = [c.copy() for c in trained.coefs_]
    fresh.intercepts_ = [b.copy() for b in trained.intercepts_]
    fresh.fit(X, y)
    np.testing.assert_allclose(fresh.predict_proba(X), trained.predict_proba(X), atol=1e-9)
    assert fresh.coefs_[0] is fresh._network().weights[0]   # views of the network again

    wrong = small_classifier(warm_start=True)
    wrong.coefs_ = [np.zeros((3, 8)), np.zeros((8, 3))]
    wrong.intercepts_ = [np.zeros(8), np.zeros(3)]
    with pytest.raises(ValueError, match="shapes"):
        wrong.fit(X, y)


def test_replacing_coefs_on_a_fitted_model_changes_predictions(iris):
    X, y = iris
    model = small_classifier().fit(X, y)
    model.coefs_ = [np.zeros_like(c) for c in model.coefs_]
    model.intercepts_ = [np.zeros_like(b) for b in model.intercepts_]
    np.testing.assert_allclose(model.predict_proba(X), 1 / 3)
    model.intercepts_[-1][...] = [0.0, 5.0, 0.0]          # views: in-place writes count
    assert (model.predict(X) == 1).all()


# -- the compiled core underneath ------------------------------------------------------------

def test_each_epoch_is_one_compiled_fit_epoch_call(iris, monkeypatch):
    """One Network epoch per epoch, on data checked once per fit, not once per epoch."""
    X, y = iris
    epochs, checks = [], []
    original_epoch = Network._fit_epoch_checked
    original_check = Network._check_epoch_inputs

    def counting_epoch(self, checked, optimizer, batch_size, *args):
        epochs.append(batch_size)
        return original_epoch(self, checked, optimizer, batch_size, *args)

    def counting_check(self, *args):
        checks.append(args)
        return original_check(self, *args)

    monkeypatch.setattr(Network, "_fit_epoch_checked", counting_epoch)
    monkeypatch.setattr(Network, "_check_epoch_inputs", counting_check)
    model = small_classifier(max_iter=7, batch_size=16).fit(X, y)
    assert len(epochs) == model.n_iter_ == 7 and set(epochs) == {16}
    assert len(checks) == 1


@pytest.mark.parametrize("solver", ["adam", "sgd", "rprop", "lbfgs"])
def test_float32_in_float32_out(iris, solver):
    X, y = iris[0].astype(np.float32), iris[1]
    model = small_classifier(solver=solver).fit(X, y)
    assert all(c.dtype == np.float32 for c in model.coefs_ + model.intercepts_)
    assert model.predict_proba(X).dtype == np.float32
    for rows in (X[:1], X[:4], X):     # float64 input is converted like astype
        np.testing.assert_array_equal(model.predict_proba(rows.astype(np.float64)),
                                      model.predict_proba(rows))
    regressor = cffnn.MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, solver=solver,
                                   random_state=0).fit(X, X[:, 0])
    assert regressor.predict(X).dtype == np.float32
    model64 = small_classifier(solver=solver).fit(X.astype(np.float64), y)
    assert model64.coefs_[0].dtype == np.float64


def test_sparse_input_equals_dense(iris):
    X, y = iris
    X = np.where(np.abs(X) < 0.5, 0.0, X)
    dense = small_classifier().fit(X, y)
    for container in (scipy.sparse.csr_matrix, scipy.sparse.csc_matrix,
                      scipy.sparse.csr_array):
        sparse = small_classifier().fit(container(X), y)
        np.testing.assert_array_equal(sparse.predict_proba(container(X)),
                                      dense.predict_proba(X))


def test_results_do_not_depend_on_the_thread_count():
    X, y = make_classification(n_samples=600, n_features=40, n_informative=10, n_classes=3,
                               random_state=0)
    fits = [cffnn.MLPClassifier(hidden_layer_sizes=(256,), max_iter=3, random_state=0,
                                n_threads=n).fit(X, y) for n in (1, 2)]
    np.testing.assert_array_equal(fits[0].coefs_[0], fits[1].coefs_[0])


def test_string_and_object_labels(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])
    for labels in (names[y], names[y].astype(object)):
        model = small_classifier(max_iter=100).fit(X, labels)
        assert list(model.classes_) == list(names)     # as scikit-learn: sorted, unicode
        assert set(model.predict(X)) <= set(names)
        assert model.score(X, labels) > 0.9


def test_binary_and_multilabel_outputs(iris):
    X, y = iris
    binary = small_classifier().fit(X, y == 2)
    assert binary.out_activation_ == "logistic" and binary.n_outputs_ == 1
    proba = binary.predict_proba(X)
    assert proba.shape == (150, 2) and np.allclose(proba.sum(axis=1), 1)
    multilabel = small_classifier().fit(X, np.column_stack([y == 0, y == 1, y > 0]))
    assert multilabel.predict(X).shape == (150, 3)
    assert multilabel.predict_proba(X).shape == (150, 3)
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(binary.predict_log_proba(X),
                                      np.log(binary.predict_proba(X)))


def test_divergence_is_a_value_error_and_leaves_finite_weights():
    X, y = make_regression(n_samples=100, n_features=4, random_state=0)
    model = cffnn.MLPRegressor(solver="sgd", learning_rate_init=1e6, max_iter=50,
                               random_state=0)
    with pytest.raises(ValueError, match="diverged"):
        model.fit(X * 1e3, y * 1e3)
    assert all(np.isfinite(c).all() for c in model.coefs_)


def test_verbose_prints_one_line_per_epoch(iris, capsys):
    X, y = iris
    small_classifier(max_iter=4, verbose=True).fit(X[:100], y[:100],
                                                    validation_data=(X[100:], y[100:]))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Iter")]
    assert len(lines) == 4
    assert all("loss = " in line and "validation score = " in line and "time = " in line
               for line in lines)


def test_rprop_learns_and_continues_with_partial_fit(iris):
    X, y = iris
    model = small_classifier(solver="rprop", max_iter=100).fit(X, y)
    assert model.score(X, y) > 0.95
    before = model.n_iter_
    model.partial_fit(X, y)
    assert model.n_iter_ == before + 1
    assert not hasattr(small_classifier(solver="lbfgs"), "partial_fit")


# -- prediction -------------------------------------------------------------------------------

def test_prediction_fast_and_validated_paths_agree(iris):
    X, y = iris
    model = small_classifier().fit(X, y)
    expected = model.predict_proba(np.ascontiguousarray(X))
    for variant in (np.asfortranarray(X), X.tolist(), X.astype(np.float32), X[::1].copy(),
                    scipy.sparse.csr_matrix(X)):
        np.testing.assert_allclose(model.predict_proba(variant), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.full((1, 4), np.nan))
    with pytest.raises(ValueError, match="4 features"):
        model.predict(np.ones((1, 5)))


def test_unfitted_estimators_raise_not_fitted():
    for model in (cffnn.MLPClassifier(), cffnn.MLPRegressor()):
        with pytest.raises(NotFittedError):
            model.predict(np.ones((1, 2)))
        with pytest.raises(NotFittedError):
            model.save("never-written.npz")


@pytest.mark.parametrize("params, error, words", [
    ({"hidden_layer_sizes": (4, 0)}, ValueError, "hidden_layer_sizes must be > 0"),
    ({"hidden_layer_sizes": "4"}, TypeError, "hidden_layer_sizes"),
    ({"solver": "newton"}, ValueError, "solver must be one of"),
    ({"learning_rate": "cosine"}, ValueError, "learning_rate must be one of"),
    ({"alpha": -1.0}, ValueError, "alpha must be in"),
    ({"learning_rate_init": 0.0}, ValueError, "learning_rate_init must be in"),
    ({"momentum": 1.5}, ValueError, "momentum must be in"),
    ({"beta_2": 1.0}, ValueError, "beta_2 must be in"),
    ({"validation_fraction": 1.0}, ValueError, "validation_fraction"),
    ({"max_iter": 0}, ValueError, "max_iter must be >= 1"),
    ({"max_iter": 2.5}, TypeError, "max_iter must be an int"),
    ({"batch_size": "all"}, TypeError, "batch_size must be an int"),
    ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
    ({"shuffle": "yes"}, TypeError, "shuffle must be a bool"),
    ({"n_iter_no_change": 0}, ValueError, "n_iter_no_change"),
    ({"n_threads": 0}, ValueError, "n_threads"),
    ({"tol": float("nan")}, ValueError, "tol must be in"),
])
def test_bad_parameters_are_named(iris, params, error, words):
    X, y = iris
    with pytest.raises(error, match=words):
        cffnn.MLPClassifier(**params).fit(X, y)
    with pytest.raises(ValueError, match="'squared_error' or 'poisson'"):
        cffnn.MLPRegressor(loss="absolute_error").fit(X, X[:, 0])


def test_inputs_are_not_modified(iris):
    X, y = iris
    X_copy, y_copy, weights = X.copy(), y.copy(), np.linspace(1, 2, 150)
    weights_copy = weights.copy()
    small_classifier(class_weight="balanced", early_stopping=True).fit(X, y, weights)
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(y, y_copy)
    np.testing.assert_array_equal(weights, weights_copy)


def test_convergence_warning_at_max_iter(iris):
    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning, match="Maximum iterations \\(2\\)"):
            small_classifier(max_iter=2).fit(X, y)


def test_lbfgs_records_validation_per_iteration(iris, capsys):
    X, y = iris
    model = small_classifier(solver="lbfgs", max_iter=15, verbose=True).fit(
        X[:100], y[:100], validation_data=(X[100:], y[100:]))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Iter")]
    assert len(model.validation_scores_) == len(model.validation_loss_curve_) == len(lines)
    assert len(lines) == model.n_iter_
    assert model.validation_scores_[-1] == pytest.approx(model.score(X[100:], y[100:]),
                                                         abs=1e-12)
    assert model.validation_loss_curve_[-1] == pytest.approx(
        log_loss(y[100:], model.predict_proba(X[100:])), rel=1e-9)
    assert not hasattr(model, "loss_curve_")            # as scikit-learn's lbfgs


def test_validation_scores_equal_scikit_learns_metrics():
    from sklearn.metrics import accuracy_score, r2_score
    rng = np.random.default_rng(0)
    X, weights = rng.normal(size=(60, 3)), rng.uniform(0.5, 2.0, 60)
    labels = np.array(["a", "b", "c"])[rng.integers(0, 3, 60)]
    classifier = small_classifier(max_iter=3).fit(X, labels)
    output = classifier._forward(X)
    for w in (None, weights):
        assert classifier._score_output(output, labels, w) == pytest.approx(
            accuracy_score(labels, classifier.predict(X), sample_weight=w), abs=1e-12)
    multilabel = rng.integers(0, 2, (60, 3))
    classifier = small_classifier(max_iter=3).fit(X, multilabel)
    assert classifier._score_output(classifier._forward(X), multilabel, None) == \
        pytest.approx(accuracy_score(multilabel, classifier.predict(X)), abs=1e-12)
    Y = np.column_stack([X @ [1.0, 2.0, 0.0], np.full(60, 3.0)])   # constant 2nd output
    regressor = cffnn.MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    for targets in (Y, Y[:, 0]):
        regressor.fit(X, targets)
        output = regressor._forward(X)
        for w in (None, weights):
            assert regressor._score_output(output, targets, w) == pytest.approx(
                r2_score(targets, regressor.predict(X), sample_weight=w), rel=1e-12)


def test_poisson_regressor_matches_scikit_learns_loss_and_learns_rates():
    from sklearn.neural_network._base import poisson_loss
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3))
    y = rng.poisson(np.exp(0.5 * X[:, 0] - 0.3 * X[:, 1]))
    model = cffnn.MLPRegressor(loss="poisson", hidden_layer_sizes=(8,), solver="lbfgs",
                               alpha=0.0, random_state=0).fit(X, y)
    assert model.out_activation_ == "exp"
    prediction = model.predict(X)
    assert (prediction > 0).all()
    assert model.loss_ == pytest.approx(poisson_loss(y, prediction), rel=1e-6)
    true_rate = np.exp(0.5 * X[:, 0] - 0.3 * X[:, 1])
    assert np.corrcoef(prediction, true_rate)[0, 1] > 0.9
    with pytest.raises(ValueError, match="negative"):
        cffnn.MLPRegressor(loss="poisson").fit(X, -y)
    with pytest.raises(ValueError, match="diverged"):
        cffnn.MLPRegressor(loss="poisson", solver="sgd", learning_rate_init=1e3,
                           max_iter=20, random_state=0).fit(X * 100, y * 100)


def test_malformed_coefs_are_a_value_error(iris):
    X, y = iris
    model = small_classifier().fit(X, y)
    for coefs in ([], [np.zeros(4)], "weights"):
        model.coefs_ = coefs
        with pytest.raises(ValueError, match="coefs_"):
            model.predict(X)
