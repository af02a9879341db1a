"""asv: the scikit-learn-compatible estimators, cffnn.MLPClassifier against
sklearn.neural_network.MLPClassifier, at identical parameters.

The implementation is a benchmark parameter (``impl``), as in bench_network.py. Both
libraries get 2 threads (cffnn: n_threads; scikit-learn: a threadpoolctl BLAS limit), as
in bench_training.py. Timings include each estimator's input validation: this is the
cost a user of the estimator API pays.
"""
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from .common import MNIST_SIZES, SEED, make_data, sklearn_available

IMPLS = ["cffnn", "sklearn"]
THREADS = 2


def estimator_class(impl):
    """MLPClassifier of ``impl``; NotImplementedError (asv: skip) if it is missing."""
    if impl == "cffnn":
        import cffnn

        return cffnn.MLPClassifier, {"n_threads": THREADS}
    if not sklearn_available():
        raise NotImplementedError("sklearn is not installed")
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier, {}


def quiet_fit(model, X, y):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


class _Threads:
    """Caps scikit-learn's BLAS threads at THREADS for the duration of the benchmark."""

    def _limit_threads(self, impl):
        self.limits = threadpool_limits(THREADS) if impl == "sklearn" else None

    def teardown(self, impl, *args):
        if getattr(self, "limits", None) is not None:
            self.limits.restore_original_limits()


class FitDigits(_Threads):
    """MLPClassifier.fit on scikit-learn's digits (1797 x 64, float32 in [0, 1], 10
    classes): a 64-(32,)-10 ReLU net, Adam, batches of 32, exactly 5 epochs (tol=0 and
    n_iter_no_change above max_iter, so neither library stops early)."""
    params = [IMPLS]
    param_names = ["impl"]
    timeout = 300
    MAX_ITER = 5

    def setup(self, impl):
        from sklearn.datasets import load_digits

        cls, extra = estimator_class(impl)
        data = load_digits()
        self.X = (data.data / 16).astype(np.float32)
        self.y = data.target
        self.make = lambda: cls(hidden_layer_sizes=(32,), activation="relu", solver="adam",
                                batch_size=32, max_iter=self.MAX_ITER, tol=0.0,
                                n_iter_no_change=self.MAX_ITER + 1, random_state=SEED,
                                **extra)
        self._limit_threads(impl)
        quiet_fit(self.make(), self.X, self.y)                  # warm-up

    def time_fit(self, impl):
        quiet_fit(self.make(), self.X, self.y)


class PredictMNIST(_Threads):
    """predict and predict_proba of a fitted 784-(256, 128)-10 ReLU MLPClassifier on
    float32, C-contiguous input of 1 row (per-call overhead) or 1000 rows (throughput).
    The model is fitted in setup for one epoch on 1000 seeded random rows: the weights
    do not matter for the time of a prediction."""
    params = [IMPLS, [1, 1000]]
    param_names = ["impl", "n_rows"]

    def setup(self, impl, n_rows):
        cls, extra = estimator_class(impl)
        X_train, y_train = make_data(MNIST_SIZES[0], MNIST_SIZES[-1], 1000)
        self.model = quiet_fit(cls(hidden_layer_sizes=MNIST_SIZES[1:-1], activation="relu",
                                   max_iter=1, random_state=SEED, **extra),
                               X_train, y_train)
        self.X, _ = make_data(MNIST_SIZES[0], MNIST_SIZES[-1], n_rows, seed=SEED + 1)
        self._limit_threads(impl)
        self.model.predict(self.X)                              # warm-up
        self.model.predict_proba(self.X)

    def time_predict(self, impl, n_rows):
        self.model.predict(self.X)

    def time_predict_proba(self, impl, n_rows):
        self.model.predict_proba(self.X)
