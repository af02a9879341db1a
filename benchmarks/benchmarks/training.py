"""Training tasks of the benchmarks and one epoch of each implementation on them.

Used by benchmarks/compare.py (all tasks, one table), benchmarks/fashion_accuracy.py
and the asv suite (bench_training.py: the smaller tasks). Every factory
``make(task, X, y, threads, seed=0)`` returns a callable that runs one epoch, with a
``predict(X)`` attribute (class labels, or values for regression) for the model it
trains; seed seeds the initial weights and the shuffling. Data are loaded or made by the
task's `load`. ``run.set_learning_rate(lr)`` changes the learning rate from the next
epoch on (fashion_accuracy.py's --drop-at). Heavy imports (scikit-learn, torch) happen
only inside the factories that need them.
"""
import contextlib
import gzip
import os

import numpy as np

import cffnn
from cffnn import reference

FASHION_DIRS = ["/usr/share/dataset-fashion-mnist", "/usr/share/datasets/fashion-mnist",
                "/usr/share/fashion-mnist"]


def load_fashion(part="train"):
    """(X float32 in [0, 1], y, source) of Fashion-MNIST's 60000 training images (part
    "train") or 10000 test images (part "t10k"); for "train" without the files,
    synthetic data of the same shape, for "t10k" None."""
    for folder in FASHION_DIRS:
        images = os.path.join(folder, f"{part}-images-idx3-ubyte.gz")
        labels = os.path.join(folder, f"{part}-labels-idx1-ubyte.gz")
        if os.path.exists(images) and os.path.exists(labels):
            with gzip.open(images) as f:
                X = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
            with gzip.open(labels) as f:
                y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
            return (X / np.float32(255)).astype(np.float32), y, "Fashion-MNIST"
    if part != "train":
        return None
    rng = np.random.default_rng(0)
    return (synthetic_images(60000, rng), rng.integers(0, 10, 60000),
            "synthetic, Fashion-MNIST's shape")


def synthetic_images(n_images, rng):
    """(n_images, 784) float32 28x28 "images" with Fashion-MNIST's share of zeros: 0
    outside a random rectangle (a background), uniform in (0, 1] inside it with 7%
    of its pixels 0. Fashion-MNIST's images are 0 at 50% of their pixels (std 15%
    between images), these at 50% (std 16%). Without zeros, cffnn's products that skip
    them (include/cffnn/sparserows.h, smallgemm.h) would not be measured."""
    side = np.arange(28)
    height, width = rng.integers(13, 29, size=(2, n_images, 1, 1))
    top = (rng.random((n_images, 1, 1)) * (29 - height)).astype(np.int64)
    left = (rng.random((n_images, 1, 1)) * (29 - width)).astype(np.int64)
    inside = ((side[:, None] >= top) & (side[:, None] < top + height)
              & (side[None, :] >= left) & (side[None, :] < left + width))
    values = 1 - rng.random((n_images, 28, 28), dtype=np.float32)
    values[rng.random((n_images, 28, 28)) < 0.07] = 0
    return np.where(inside, values, np.float32(0)).reshape(n_images, 784)


def load_digits():
    from sklearn.datasets import load_digits as sklearn_digits
    data = sklearn_digits()
    return (data.data / 16).astype(np.float32), data.target.astype(np.int64), "digits"


def make_regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100000, 8)).astype(np.float32)
    y = (np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=100000))
    return X, y.astype(np.float32), "synthetic"


TASKS = {
    "fashion": dict(load=load_fashion, hidden=(256, 128), activation="relu", batch=128,
                    optimizer="adam", classify=True),
    "digits": dict(load=load_digits, hidden=(32,), activation="relu", batch=32,
                   optimizer="adam", classify=True),
    "regression": dict(load=make_regression, hidden=(64, 64), activation="tanh", batch=64,
                       optimizer="sgd", classify=False),
}


def cffnn_network(task, X, seed=0, package=cffnn):
    """(net, optimizer) of cffnn for a task, as every cffnn benchmark trains it, in X's
    dtype; package: the cffnn package to use (benchmarks/ab_builds.py passes copies of
    other builds)."""
    n_out = 10 if task["classify"] else 1
    net = package.Network([X.shape[1], *task["hidden"], n_out],
                          activation=task["activation"],
                          output="softmax" if task["classify"] else "identity",
                          dtype=X.dtype, random_state=seed)
    optimizer = (package.Adam(0.001) if task["optimizer"] == "adam"
                 else package.SGD(0.001, momentum=0.9))
    return net, optimizer


def predictions(task, output):
    """Class labels (classification) or values (regression) from a network's output."""
    return output.argmax(axis=1) if task["classify"] else output.ravel()


def cffnn_epoch(task, X, y, threads, seed=0, package=cffnn):
    net, optimizer = cffnn_network(task, X, seed, package)
    epoch = [0]

    def run():
        epoch[0] += 1
        net.fit_epoch(X, y, optimizer, batch_size=task["batch"],
                      random_state=1000 * seed + epoch[0], n_threads=threads)
    run.predict = lambda X: predictions(task, net.forward(X, n_threads=threads))
    run.net = net
    run.set_learning_rate = lambda lr: setattr(optimizer, "learning_rate", lr)
    return run


def numpy_epoch(task, X, y, threads, seed=0):
    """The NumPy reference from cffnn's initial weights (so both do the same maths)."""
    net, _ = cffnn_network(task, X, seed)
    weights, biases = [w.copy() for w in net.weights], [b.copy() for b in net.biases]
    Y = np.eye(10, dtype=np.float32)[y] if task["classify"] else y.reshape(-1, 1)
    output, loss = ("softmax", "log_loss") if task["classify"] else ("identity",
                                                                      "squared_error")
    params = weights + biases
    state = [[np.zeros_like(p) for p in params] for _ in range(2)]
    t = [0]
    learning_rate = [0.001]
    rng = np.random.default_rng(seed)

    def run():
        order = rng.permutation(X.shape[0])
        for start in range(0, X.shape[0], task["batch"]):
            rows = order[start:start + task["batch"]]
            _, grad_w, grad_b = reference.loss_and_gradient(
                weights, biases, X[rows], Y[rows], net.activations, output, loss)
            for i, (p, g) in enumerate(zip(params, grad_w + grad_b)):
                if task["optimizer"] == "adam":
                    reference.adam_step(p, g, state[0][i], state[1][i], t[0] + 1,
                                        learning_rate[0], 0.9, 0.999, 1e-8)
                else:
                    reference.sgd_step(p, g, state[0][i], learning_rate[0], 0.9, False)
            t[0] += 1
    run.predict = lambda X: predictions(task, reference.forward(
        weights, biases, X, net.activations, output))
    run.set_learning_rate = lambda lr: learning_rate.__setitem__(0, lr)
    return run


def sklearn_epoch(task, X, y, threads, seed=0):
    """scikit-learn's MLP with its own initialisation (Glorot) and its default
    alpha=1e-4; threads is left to its BLAS."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    common = dict(hidden_layer_sizes=task["hidden"], activation=task["activation"],
                  batch_size=task["batch"], learning_rate_init=0.001, random_state=seed,
                  solver=task["optimizer"], momentum=0.9, nesterovs_momentum=False)
    if task["classify"]:
        model = MLPClassifier(**common)

        def run():
            model.partial_fit(X, y, classes=np.arange(10))
    else:
        model = MLPRegressor(**common)

        def run():
            model.partial_fit(X, y)

    def set_learning_rate(lr):
        # partial_fit creates model._optimizer once and keeps it: Adam recomputes its
        # rate from learning_rate_init at every step, SGD (constant schedule) uses
        # learning_rate
        model.learning_rate_init = lr
        if hasattr(model, "_optimizer"):
            model._optimizer.learning_rate_init = model._optimizer.learning_rate = lr
    run.predict = model.predict
    run.set_learning_rate = set_learning_rate
    return run


def torch_epoch(task, X, y, threads, seed=0):
    """PyTorch with its own initialisation (torch.nn.Linear's)."""
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    n_out = 10 if task["classify"] else 1
    act = torch.nn.ReLU if task["activation"] == "relu" else torch.nn.Tanh
    layers, n_in = [], X.shape[1]
    for width in task["hidden"]:
        layers += [torch.nn.Linear(n_in, width), act()]
        n_in = width
    model = torch.nn.Sequential(*layers, torch.nn.Linear(n_in, n_out))
    if task["optimizer"] == "adam":
        try:
            optimizer = torch.optim.Adam(model.parameters(), lr=0.001, fused=True)
        except (RuntimeError, TypeError):
            optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    X_t = torch.from_numpy(X)
    y_t = torch.from_numpy(y) if task["classify"] else torch.from_numpy(y).reshape(-1, 1)
    loss_fn = torch.nn.CrossEntropyLoss() if task["classify"] else torch.nn.MSELoss()
    generator = torch.Generator().manual_seed(seed)

    def run():
        order = torch.randperm(X.shape[0], generator=generator)
        for start in range(0, X.shape[0], task["batch"]):
            rows = order[start:start + task["batch"]]
            optimizer.zero_grad()
            loss_fn(model(X_t[rows]), y_t[rows]).backward()
            optimizer.step()

    def predict(X):
        with torch.no_grad():
            return predictions(task, model(torch.from_numpy(X)).numpy())

    def set_learning_rate(lr):
        for group in optimizer.param_groups:
            group["lr"] = lr
    run.predict = predict
    run.set_learning_rate = set_learning_rate
    return run


def peer_blas_limits(impl, threads):
    """The context an epoch of impl runs in: the BLAS-based peers (numpy, sklearn) get
    `threads` BLAS threads; cffnn and torch set their own."""
    if impl in ("numpy", "sklearn"):
        from threadpoolctl import threadpool_limits
        return threadpool_limits(threads, user_api="blas")
    return contextlib.nullcontext()


IMPLEMENTATIONS = {"cffnn": cffnn_epoch, "numpy": numpy_epoch, "sklearn": sklearn_epoch,
                   "torch": torch_epoch}
