"""asv benchmarks of cffnn.Network against the NumPy reference, torch and scikit-learn.

The implementation is a benchmark parameter (``impl``), as in numpy's and scipy's suites,
so every case is timed for each implementation on the same seeded weights and data. All
networks are float32 with ReLU hidden layers, a softmax output and the log loss.
Implementations that are not installed (torch) are skipped by raising
NotImplementedError in ``setup``.
"""
import numpy as np

from .common import (BATCH_CASES, IMPLS, MNIST_SIZES, ONE_ROW_IMPLS, SEED, make_data,
                     make_network, make_runner, warm_up)
from .training import load_fashion, synthetic_images


class Minibatch:
    """One minibatch through a network: forward pass and loss + gradient.

    case "784-256-128-10 x128": MNIST-sized net, batch of 128 rows (784 features).
    case "64-32-10 x32": small net, batch of 32 rows (64 features).
    """
    params = [IMPLS, list(BATCH_CASES)]
    param_names = ["impl", "case"]

    def setup(self, impl, case):
        layer_sizes, batch = BATCH_CASES[case]
        self.runner = make_runner(impl, make_network(layer_sizes))
        self.X, y = make_data(layer_sizes[0], layer_sizes[-1], batch)
        self.Y = self.runner.prepare_targets(y)
        warm_up(self.runner, self.X, self.Y)

    def time_forward(self, impl, case):
        """Softmax output of the network for the batch."""
        self.runner.forward(self.X)

    def time_loss_and_gradient(self, impl, case):
        """Mean log loss of the batch and its gradient w.r.t. every weight and bias."""
        self.runner.loss_and_gradient(self.X, self.Y)

    def peakmem_loss_and_gradient(self, impl, case):
        """Peak resident memory of the process (asv: includes the interpreter, imports
        and setup data) after one loss + gradient of the batch; compare across impls."""
        self.runner.loss_and_gradient(self.X, self.Y)


class ForwardOneRow:
    """Forward pass of ONE row (784 features) through the 784-256-128-10 net: the
    per-call overhead of each library (scikit-learn: MLPClassifier.predict_proba)."""
    params = [ONE_ROW_IMPLS]
    param_names = ["impl"]

    def setup(self, impl):
        self.runner = make_runner(impl, make_network(MNIST_SIZES))
        self.X, _ = make_data(MNIST_SIZES[0], MNIST_SIZES[-1], 1)
        warm_up(self.runner, self.X)

    def time_forward_one_row(self, impl):
        """Softmax output for a (1, 784) float32 input."""
        self.runner.forward(self.X)


class ForwardManyRows:
    """Forward pass of 10000 rows (784 features) through the 784-256-128-10 net:
    throughput on a large input (batch inference)."""
    params = [IMPLS]
    param_names = ["impl"]

    def setup(self, impl):
        self.runner = make_runner(impl, make_network(MNIST_SIZES))
        self.X, _ = make_data(MNIST_SIZES[0], MNIST_SIZES[-1], 10000)
        warm_up(self.runner, self.X)

    def time_forward_10000_rows(self, impl):
        """Softmax output for a (10000, 784) float32 input."""
        self.runner.forward(self.X)


class ForwardImages:
    """Forward pass of 10000 images through the 784-256-128-10 net: the Fashion-MNIST
    test images where installed, else synthetic images with as many zeros (half their
    pixels), which cffnn's float32 products skip (include/cffnn/sparserows.h)."""
    params = [IMPLS]
    param_names = ["impl"]

    def setup(self, impl):
        self.runner = make_runner(impl, make_network(MNIST_SIZES))
        test = load_fashion("t10k")
        self.X = (test[0] if test is not None
                  else synthetic_images(10000, np.random.default_rng(SEED)))
        warm_up(self.runner, self.X)

    def time_forward_10000_images(self, impl):
        """Softmax output for a (10000, 784) float32 input with many zeros."""
        self.runner.forward(self.X)
