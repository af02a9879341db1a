"""Helpers shared by the test modules: networks, data, targets and the NumPy oracle."""
import multiprocessing
import os
import queue as queue_module
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import cffnn
from cffnn import _kernels, reference

HIDDEN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu", "leaky_relu", "elu",
                      "softplus", "gelu")
OUTPUT_LOSS_PAIRS = (
    ("identity", "squared_error"),
    ("logistic", "binary_log_loss"),
    ("logistic", "squared_error"),
    ("softmax", "log_loss"),
    ("softmax", "squared_error"),
    ("exp", "poisson"),
)
PAIR_IDS = [f"{output}+{loss}" for output, loss in OUTPUT_LOSS_PAIRS]
# Activations whose derivative jumps at 0 (elu's second derivative does): data for
# gradient comparisons is kept away from 0 for these.
KINKED = ("relu", "leaky_relu", "elu")


def rel_err(actual, expected):
    """Relative error in the max norm: max|a - b| / max|b| (max|a - b| if b == 0)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    error = np.max(np.abs(actual - expected))
    scale = np.max(np.abs(expected))
    return float(error / scale) if scale > 0 else float(error)


def make_targets(output, loss, n_samples, n_outputs, rng, kind="hard"):
    """(Y_api, Y_matrix): targets as passed to Network and as the 2-D matrix the
    reference takes.

    kind="hard": class indices for softmax (Y_api 1-D), 0/1 for logistic, normal
    values for identity; kind="soft": targets in [0, 1] (rows need not sum to 1).
    """
    if output == "identity":
        Y = rng.normal(size=(n_samples, n_outputs))
        return Y, Y
    if output == "exp":                    # counts, zeros included
        Y = rng.poisson(1.5, size=(n_samples, n_outputs)).astype(np.float64)
        return Y, Y
    if kind == "soft" or loss == "squared_error" and output != "softmax":
        Y = rng.uniform(0, 1, size=(n_samples, n_outputs))
        return Y, Y
    if output == "softmax":
        labels = rng.integers(0, n_outputs, n_samples)
        return labels, np.eye(n_outputs)[labels]
    Y = rng.integers(0, 2, size=(n_samples, n_outputs)).astype(np.float64)
    return Y, Y


def hidden_margin(net, X):
    """Smallest |pre-activation| of the hidden layers with a kink, in float64."""
    kinked = [k for k, name in enumerate(net.activations) if name in KINKED]
    if not kinked:
        return np.inf
    weights = [W.astype(np.float64) for W in net.weights]
    biases = [b.astype(np.float64) for b in net.biases]
    _, A, _ = reference.forward(weights, biases, np.asarray(X, dtype=np.float64),
                                net.activations, net.output, keep=True)
    return min(float(np.min(np.abs(A[k]))) for k in kinked)


def sample_features(net, n_samples, rng, margin=0.0, scale=1.0, max_tries=200):
    """Normal features for net, resampled until every kinked hidden pre-activation is
    at least `margin` away from 0 (see hidden_margin)."""
    for _ in range(max_tries):
        X = scale * rng.normal(size=(n_samples, net.layer_sizes[0]))
        if margin == 0 or hidden_margin(net, X.astype(net.dtype)) > margin:
            return X.astype(net.dtype)
    raise RuntimeError(f"no data {margin} away from the kinks of {net!r} in "
                       f"{max_tries} tries: pick another seed or a smaller problem")


def as_float64(net):
    """The network's weights and biases as float64 lists (for the reference)."""
    return ([W.astype(np.float64) for W in net.weights],
            [b.astype(np.float64) for b in net.biases])


def reference_results(net, X, Y_matrix, alpha=0.0, sample_weight=None):
    """(output, loss, flat gradient) of the NumPy reference, computed in float64 from
    the network's parameters and X as the network sees them (cast to its dtype)."""
    weights, biases = as_float64(net)
    X64 = np.asarray(X).astype(net.dtype).astype(np.float64)
    Y64 = np.asarray(Y_matrix).astype(net.dtype).astype(np.float64)
    output = reference.forward(weights, biases, X64, net.activations, net.output)
    value, grad_weights, grad_biases = reference.loss_and_gradient(
        weights, biases, X64, Y64, net.activations, net.output, net.loss_name,
        alpha, sample_weight)
    return output, value, reference.flatten(grad_weights, grad_biases)


def network(layer_sizes, activation="tanh", output="softmax", loss=None,
            dtype=np.float64, random_state=0):
    return cffnn.Network(layer_sizes, activation=activation, output=output, loss=loss,
                         dtype=dtype, random_state=random_state)


def helper_can_run():
    """Whether include/cffnn/helper.h's thread can take part here: Linux, 2 usable cores
    or more."""
    return (_kernels.helper_available() and hasattr(os, "sched_getaffinity")
            and len(os.sched_getaffinity(0)) >= 2)


def helper_takes_part(call, seconds=5.0):
    """Whether helper.h's thread runs a task while call() is called again and again, for
    at most `seconds`: longer than the longest time the helper is left alone after it
    was late (CFFNN_HELPER_LAST_COOLDOWN_NS, 3.2 s), which on a loaded machine an earlier
    test may have started."""
    before = _kernels.helper_tasks_run()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(20):
            call()
        if _kernels.helper_tasks_run() > before:
            return True
    return False


def forward_in_threads_matches(net, inputs, expected, n_threads=4, rounds=8, repeats=2):
    """Whether net.forward(inputs[i], n_threads=2) gives expected[i] bit for bit in every
    call of n_threads Python threads calling at once, each going through the inputs in
    an order of its own `repeats` times (rounds such runs, spread over the threads)."""
    def calls(seed):
        order = np.random.default_rng(seed).permutation(len(inputs))
        return all(np.array_equal(net.forward(inputs[i], n_threads=2), expected[i])
                   for i in order for _ in range(repeats))

    with ThreadPoolExecutor(n_threads) as pool:
        return all(pool.map(calls, range(rounds)))


def run_in_forked_child(target, *args, timeout=120):
    """What target(queue, *args), run in a child forked from this process, puts in the
    queue; fails the test when the child hangs (a forked child may wait for ever for a
    thread that was not forked) or dies before it reports."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=target, args=(queue, *args))
    child.start()
    try:
        result = queue.get(timeout=timeout)     # before join: a large result fills the pipe
    except queue_module.Empty:
        child.kill()
        pytest.fail("the forked child hung (or died) before it reported")
    child.join(timeout=timeout)
    assert child.exitcode == 0
    return result
