"""Random estimator settings and inputs never crash: each call either works or raises a
ValueError / TypeError (or NotFittedError) with a message. The calls run in a child
process, so that a segfault or abort fails this test instead of ending the run."""
import os
import subprocess
import sys

import pytest

FUZZ = r'''
import sys, warnings
import numpy as np
import scipy.sparse
import cffnn
from sklearn.exceptions import NotFittedError

warnings.simplefilter("ignore")
rng = np.random.default_rng(int(sys.argv[1]))
VALID = {
    "hidden_layer_sizes": [(), (1,), (3,), (4, 2)],
    "activation": ["relu", "tanh", "gelu", "logistic"],
    "solver": ["adam", "sgd", "rprop", "lbfgs"],
    "alpha": [0.0, 1e-4, 10.0],
    "batch_size": ["auto", 1, 7, 10000],
    "learning_rate": ["constant", "invscaling", "adaptive"],
    "learning_rate_init": [1e-3, 1.0, 1e6],
    "max_iter": [1, 3],
    "early_stopping": [False, True],
    "validation_fraction": [0.1, 0.5],
    "momentum": [0.0, 0.9],
    "n_iter_no_change": [1, 10, np.inf],
    "warm_start": [False, True],
    "n_threads": [None, 1, 2, -1],
    "tol": [1e-4, 0.0],
}
INVALID = {
    "hidden_layer_sizes": [0, (2, -1), "5", (2.5,)],
    "activation": [["elu"], "swish", 3],
    "solver": ["newton"],
    "alpha": [-1.0, float("nan"), "x"],
    "batch_size": [0, 2.5],
    "learning_rate": ["cosine"],
    "learning_rate_init": [0.0, float("inf")],
    "max_iter": [0, -2],
    "early_stopping": ["yes"],
    "validation_fraction": [1.0],
    "momentum": [1.5],
    "n_iter_no_change": [0],
    "n_threads": [0, "2"],
    "tol": [-1.0],
}
ALLOWED = (ValueError, TypeError, NotFittedError, AttributeError)


def random_X(n, d):
    kind = rng.integers(0, 9)
    X = rng.normal(size=(n, d)) * 10.0 ** rng.integers(-3, 4)
    if kind == 0:
        X[rng.integers(0, n), rng.integers(0, d)] = np.nan
    elif kind == 1:
        X = X.astype(np.float32)
    elif kind == 2:
        X = scipy.sparse.csr_matrix(np.where(np.abs(X) > 1, X, 0))
    elif kind == 3:
        X = np.asfortranarray(X)
    elif kind == 4:
        X = X[:, :max(1, d - 1)]
    elif kind == 5:
        X = X.astype(int)
    elif kind == 6:
        X = X.tolist()
    return X


fitted = 0
for trial in range(12):
    params = {name: values[rng.integers(0, len(values))]
              for name, values in VALID.items() if rng.random() < 0.4}
    if rng.random() < 0.25:       # one invalid setting
        name = list(INVALID)[rng.integers(0, len(INVALID))]
        params[name] = INVALID[name][rng.integers(0, len(INVALID[name]))]
    regress = rng.random() < 0.4
    cls = cffnn.MLPRegressor if regress else cffnn.MLPClassifier
    n, d = int(rng.integers(1, 40)), int(rng.integers(1, 6))
    y_kind = rng.integers(0, 5)
    if regress:
        y = rng.normal(size=(n, 2) if y_kind == 0 else n)
    elif y_kind == 0:
        y = rng.integers(0, 2, size=(n, 3))
    elif y_kind == 1:
        y = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    else:
        y = rng.integers(0, 1 + int(y_kind), n)
    try:
        model = cls(**params)
        model.fit(random_X(n, d), y)
        for method in ("predict", "predict_proba", "score", "partial_fit"):
            if hasattr(model, method):
                try:
                    args = (random_X(int(rng.integers(1, 5)), d),)
                    if method in ("score", "partial_fit"):
                        args = (random_X(n, d), y)
                    getattr(model, method)(*args)
                except ALLOWED as error:
                    assert str(error), method
        model.save("fuzz-model.npz")
        cffnn.load("fuzz-model.npz").predict(random_X(2, d))
        fitted += 1
    except ALLOWED as error:
        assert str(error), (params, type(error))
print("ok", fitted)
'''


@pytest.mark.parametrize("seed", range(4))
def test_random_estimator_calls_never_crash(seed, tmp_path):
    result = subprocess.run([sys.executable, "-c", FUZZ, str(seed)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[0] == "ok"
