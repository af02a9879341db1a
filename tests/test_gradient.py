"""The compiled gradient agrees with central finite differences (cffnn.check_gradient)."""
import numpy as np
import pytest

import cffnn
from _testing import (HIDDEN_ACTIVATIONS, OUTPUT_LOSS_PAIRS, PAIR_IDS, make_targets,
                      network, sample_features)

N_OUTPUTS = 3
HIDDEN_LAYOUTS = {"no_hidden": [], "one_hidden": [5], "five_hidden": [4, 4, 4, 4, 4]}
MARGIN = 1e-3          # keep pre-activations this far from the kinks of relu & co.
TOLERANCE = 1e-6       # float64 networks


def _problem(activation, output, loss, hidden, seed, n_samples=8, n_outputs=N_OUTPUTS,
             kind="hard", dtype=np.float64):
    rng = np.random.default_rng(seed)
    net = network([3, *hidden, n_outputs], activation=activation, output=output,
                  loss=loss, dtype=dtype, random_state=seed)
    X = sample_features(net, n_samples, rng, margin=MARGIN)
    Y, _ = make_targets(output, loss, n_samples, n_outputs, rng, kind=kind)
    return net, X, Y, rng


@pytest.mark.parametrize("hidden", list(HIDDEN_LAYOUTS.values()), ids=list(HIDDEN_LAYOUTS))
@pytest.mark.parametrize("output, loss", OUTPUT_LOSS_PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_gradient_matches_finite_differences(activation, output, loss, hidden):
    net, X, Y, _ = _problem(activation, output, loss, hidden, seed=len(hidden) + 7)
    assert cffnn.check_gradient(net, X, Y) <= TOLERANCE


@pytest.mark.parametrize("output, loss", OUTPUT_LOSS_PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_gradient_with_penalty_and_sample_weights(activation, output, loss):
    net, X, Y, rng = _problem(activation, output, loss, [5, 4], seed=3, n_samples=10)
    sample_weight = rng.uniform(0, 3, X.shape[0])
    sample_weight[[1, 4]] = 0.0                       # zero weights are allowed
    assert cffnn.check_gradient(net, X, Y, alpha=0.7, sample_weight=sample_weight) \
        <= TOLERANCE


@pytest.mark.parametrize("output, loss", [("logistic", "binary_log_loss"),
                                          ("softmax", "log_loss")])
@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu"])
def test_gradient_with_soft_targets(activation, output, loss):
    """Log losses with targets in [0, 1] that are not 0/1 (softmax rows not summing to 1)."""
    net, X, Y, _ = _problem(activation, output, loss, [6], seed=11, kind="soft")
    assert cffnn.check_gradient(net, X, Y, alpha=0.2) <= TOLERANCE


@pytest.mark.parametrize("output, loss", [("logistic", "binary_log_loss"),
                                          ("logistic", "squared_error"),
                                          ("identity", "squared_error")])
def test_gradient_single_output_with_1d_targets(output, loss):
    net, X, Y, _ = _problem("elu", output, loss, [6], seed=5, n_outputs=1)
    assert cffnn.check_gradient(net, X, Y.ravel()) <= TOLERANCE


@pytest.mark.parametrize("output, loss", OUTPUT_LOSS_PAIRS, ids=PAIR_IDS)
def test_gradient_of_mixed_activation_network(output, loss):
    activations = ["gelu", "relu", "softplus", "leaky_relu", "logistic", "elu", "tanh"]
    net, X, Y, rng = _problem(activations, output, loss, [4, 5, 3, 4, 5, 3, 4], seed=2)
    sample_weight = rng.integers(0, 4, X.shape[0]).astype(float) + 0.5
    assert cffnn.check_gradient(net, X, Y, alpha=0.1, sample_weight=sample_weight) \
        <= TOLERANCE


@pytest.mark.parametrize("output, loss", OUTPUT_LOSS_PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("activation", ["tanh", "softplus", "gelu"])
def test_float32_gradient_matches_finite_differences(activation, output, loss):
    """A float32 network's gradient is float32-accurate (check_gradient differentiates a
    float64 twin)."""
    net, X, Y, _ = _problem(activation, output, loss, [6, 5], seed=13, dtype=np.float32)
    assert cffnn.check_gradient(net, X, Y, alpha=0.1) <= 1e-5


def test_check_gradient_detects_a_wrong_gradient():
    """check_gradient is a real check: a gradient off in one entry gives a large error."""
    net, X, Y, _ = _problem("tanh", "softmax", "log_loss", [5], seed=1)
    correct = net.loss_and_gradient

    def wrong_gradient(*args, **kwargs):
        value, grad = correct(*args, **kwargs)
        grad = grad.copy()
        grad[3] += 0.05 * np.max(np.abs(grad))
        return value, grad

    assert cffnn.check_gradient(net, X, Y) <= TOLERANCE
    net.loss_and_gradient = wrong_gradient
    assert cffnn.check_gradient(net, X, Y) > 1e-2


def test_check_gradient_rejects_a_non_network():
    with pytest.raises(TypeError, match="Network"):
        cffnn.check_gradient(object(), np.zeros((2, 3)), np.zeros(2))
