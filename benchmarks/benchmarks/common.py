"""Shared fixtures of the benchmarks: the shapes, seeded data, and one "runner" per
implementation that exposes the same two calls.

Used by the asv suite (bench_network.py) and by the standalone compare_core.py, so both
time exactly the same work. Nothing heavy happens at import time: torch and scikit-learn
are imported only when a runner for them is built.

Every runner has
    forward(X)                -> network output (softmax probabilities)
    loss_and_gradient(X, y)   -> the mean log loss and its gradient w.r.t. all parameters
and takes the *integer labels* y, converting them (once, in ``prepare_targets``) into the
form its implementation wants, so that the timed calls do only the library's work.
"""
import importlib.util
import time
import timeit

import numpy as np

DTYPE = np.float32
SEED = 0
TORCH_THREADS = 2

# name -> (layer sizes, batch size) of the minibatch cases
BATCH_CASES = {
    "784-256-128-10 x128": ((784, 256, 128, 10), 128),
    "64-32-10 x32": ((64, 32, 10), 32),
}
MNIST_SIZES = (784, 256, 128, 10)

IMPLS = ["cffnn", "numpy", "torch"]
ONE_ROW_IMPLS = IMPLS + ["sklearn"]


def torch_available():
    return importlib.util.find_spec("torch") is not None


def sklearn_available():
    return importlib.util.find_spec("sklearn") is not None


def make_network(layer_sizes):
    """The cffnn.Network every implementation copies its weights from: float32, ReLU
    hidden layers, softmax output, log loss, seeded initialisation."""
    import cffnn

    return cffnn.Network(layer_sizes, activation="relu", output="softmax",
                         dtype=DTYPE, random_state=SEED)


def make_data(n_features, n_classes, n_samples, seed=SEED):
    """Seeded standard-normal features (float32, C-contiguous) and integer labels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features), dtype=DTYPE)
    y = rng.integers(0, n_classes, size=n_samples)
    return X, y


class CffnnRunner:
    """The compiled library: Network.forward and Network.loss_and_gradient."""

    def __init__(self, net):
        self.net = net

    def prepare_targets(self, y):
        return y                                   # class indices are accepted as is

    def forward(self, X):
        return self.net.forward(X)

    def loss_and_gradient(self, X, Y):
        return self.net.loss_and_gradient(X, Y)


class NumpyRunner:
    """The plain-NumPy reference (cffnn.reference), on the same weights."""

    def __init__(self, net):
        from cffnn import reference

        self.reference = reference
        self.weights = [W.copy() for W in net.weights]
        self.biases = [b.copy() for b in net.biases]
        self.activations, self.output, self.loss = net.activations, net.output, net.loss_name
        self.n_classes = net.layer_sizes[-1]

    def prepare_targets(self, y):
        return np.eye(self.n_classes, dtype=DTYPE)[y]          # one-hot rows

    def forward(self, X):
        return self.reference.forward(self.weights, self.biases, X, self.activations,
                                      self.output)

    def loss_and_gradient(self, X, Y):
        return self.reference.loss_and_gradient(self.weights, self.biases, X, Y,
                                                self.activations, self.output, self.loss)


class TorchRunner:
    """An equivalent torch.nn.Sequential (Linear/ReLU, CPU, float32, 2 threads).

    forward: softmax(model(X)) under torch.no_grad().
    loss_and_gradient: zero the grads, model(X), cross_entropy (mean), backward().
    """

    def __init__(self, net):
        import torch

        torch.set_num_threads(TORCH_THREADS)
        self.torch = torch
        layers = []
        for k, (W, b) in enumerate(zip(net.weights, net.biases)):
            linear = torch.nn.Linear(W.shape[0], W.shape[1])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                linear.bias.copy_(torch.from_numpy(b.copy()))
            layers.append(linear)
            if k < len(net.weights) - 1:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)

    def prepare_targets(self, y):
        return self.torch.from_numpy(np.asarray(y, dtype=np.int64))

    def forward(self, X):
        torch = self.torch
        with torch.no_grad():
            return torch.softmax(self.model(torch.from_numpy(X)), dim=1)

    def loss_and_gradient(self, X, Y):
        torch = self.torch
        self.model.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(self.model(torch.from_numpy(X)), Y)
        loss.backward()
        return loss.item(), [p.grad for p in self.model.parameters()]


class SklearnRunner:
    """scikit-learn's MLPClassifier(hidden_layer_sizes=(256, 128)) with the same weights;
    forward is predict_proba (input validation included). No loss_and_gradient."""

    def __init__(self, net):
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        sizes = net.layer_sizes
        n_classes = sizes[-1]
        # A one-iteration fit on a tiny data set sets up classes_, n_layers_, out_activation_...
        X, _ = make_data(sizes[0], n_classes, 2 * n_classes)
        y = np.arange(2 * n_classes) % n_classes
        clf = MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), activation="relu",
                            max_iter=1, random_state=SEED)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
        # ... then the weights are replaced by the network's
        clf.coefs_ = [W.copy() for W in net.weights]
        clf.intercepts_ = [b.copy() for b in net.biases]
        self.clf = clf

    def prepare_targets(self, y):
        raise NotImplementedError("sklearn exposes no loss_and_gradient")

    def forward(self, X):
        return self.clf.predict_proba(X)


RUNNERS = {"cffnn": CffnnRunner, "numpy": NumpyRunner, "torch": TorchRunner,
           "sklearn": SklearnRunner}


def is_available(impl):
    """False for an optional implementation whose package is not installed."""
    if impl == "torch":
        return torch_available()
    if impl == "sklearn":
        return sklearn_available()
    return True


def warm_up(runner, X, Y=None):
    """Call each benchmarked function once, so that one-off costs (thread pools, lazy
    initialisation, first-touch of buffers) stay out of the timings, --quick included."""
    runner.forward(X)
    if Y is not None:
        runner.loss_and_gradient(X, Y)


def make_runner(impl, net):
    """A runner of implementation ``impl`` holding the weights of ``net``; raises
    NotImplementedError (asv's "skip this parameter") when its package is missing."""
    if not is_available(impl):
        raise NotImplementedError(f"{impl} is not installed")
    return RUNNERS[impl](net)


def busy_wait(seconds):
    """Keep this thread busy for `seconds`: long enough for other pools' spinning workers
    to go to sleep, without letting the core idle (time.sleep lets it clock down, and a
    one-row forward then measured 25 us instead of 17.5 us)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def autorange_number(call, target):
    """Smallest of 1, 2, 5, 10, 20, 50, ... calls that last at least ``target`` seconds."""
    timer = timeit.Timer(call)
    number = 1
    while True:
        for factor in (1, 2, 5):
            if timer.timeit(number * factor) >= target:
                return number * factor
        number *= 10
