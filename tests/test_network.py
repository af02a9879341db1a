"""Network structure: the flat parameter buffer and its views, initialisation."""
import numpy as np
import pytest

import cffnn
from _testing import HIDDEN_ACTIVATIONS

DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]
RELU_FAMILY = ("relu", "leaky_relu", "elu", "gelu")


@pytest.mark.parametrize("layer_sizes", [[3, 2], [4, 5, 3], [784, 256, 128, 10],
                                         [1, 1, 1, 1, 1, 1, 1], [2, 7, 1]])
def test_params_length_and_view_shapes(layer_sizes):
    net = cffnn.Network(layer_sizes, output="logistic", random_state=0)
    pairs = list(zip(layer_sizes[:-1], layer_sizes[1:]))
    assert net.params.shape == (sum(n_in * n_out + n_out for n_in, n_out in pairs),)
    assert net.n_params == net.params.size
    assert len(net.weights) == len(net.biases) == len(pairs)
    for W, b, (n_in, n_out) in zip(net.weights, net.biases, pairs):
        assert W.shape == (n_in, n_out) and b.shape == (n_out,)


def test_params_layout_is_W0_b0_W1_b1():
    """W[0] row-major, b[0], W[1], b[1], ... in one contiguous buffer."""
    net = cffnn.Network([3, 4, 2], activation="tanh", dtype=np.float64, random_state=0)
    expected = np.concatenate([net.weights[0].ravel(), net.biases[0],
                               net.weights[1].ravel(), net.biases[1]])
    np.testing.assert_array_equal(net.params, expected)
    assert net.params.flags.c_contiguous
    for view in net.weights + net.biases:
        assert np.shares_memory(view, net.params)


@pytest.mark.parametrize("dtype", DTYPES)
def test_writing_a_weight_view_changes_params_and_output(dtype):
    net = cffnn.Network([3, 4, 2], activation="tanh", dtype=dtype, random_state=0)
    X = np.random.default_rng(0).normal(size=(5, 3))
    before = net.forward(X)
    net.weights[0][0, 0] += 1.5
    assert net.params[0] == net.weights[0][0, 0]
    assert not np.allclose(net.forward(X), before)
    net.weights[0][0, 0] -= 1.5
    np.testing.assert_allclose(net.forward(X), before, rtol=1e-6)


def test_writing_a_bias_view_changes_params_and_output():
    net = cffnn.Network([3, 4, 2], activation="tanh", output="identity",
                        dtype=np.float64, random_state=0)
    X = np.random.default_rng(0).normal(size=(5, 3))
    before = net.forward(X)
    net.biases[1][...] += [1.0, -2.0]          # output bias shifts identity outputs
    assert net.params[-2] == net.biases[1][0]
    np.testing.assert_allclose(net.forward(X), before + [1.0, -2.0], rtol=1e-12)


def test_assigning_params_copies_into_the_buffer():
    net = cffnn.Network([3, 4, 2], activation="tanh", dtype=np.float64, random_state=0)
    buffer, first_weights = net.params, net.weights[0]
    values = np.arange(net.n_params, dtype=np.float64)
    net.params = values
    assert net.params is buffer                # same buffer, the views still valid
    np.testing.assert_array_equal(net.params, values)
    np.testing.assert_array_equal(first_weights, values[:12].reshape(3, 4))
    values[:] = -1                             # the caller's array is not aliased
    assert net.params[0] == 0
    net.params = list(range(net.n_params))     # array-likes are accepted
    assert net.params[5] == 5


def test_assigning_params_casts_to_the_network_dtype():
    net = cffnn.Network([3, 2], random_state=0)      # float32
    net.params = np.full(net.n_params, 0.1, dtype=np.float64)
    assert net.params.dtype == np.float32
    np.testing.assert_array_equal(net.params, np.float32(0.1))


def test_networks_do_not_share_parameters():
    a = cffnn.Network([3, 4, 2], random_state=0)
    b = cffnn.Network([3, 4, 2], random_state=0)
    a.params = np.zeros(a.n_params)
    assert not np.shares_memory(a.params, b.params)
    assert np.any(b.params != 0)


# -- initialisation ----------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_same_random_state_gives_identical_params(dtype):
    kwargs = dict(layer_sizes=[5, 8, 8, 3], activation="relu", dtype=dtype)
    a = cffnn.Network(**kwargs, random_state=42)
    np.testing.assert_array_equal(a.params, cffnn.Network(**kwargs, random_state=42).params)
    np.testing.assert_array_equal(
        a.params, cffnn.Network(**kwargs, random_state=np.random.RandomState(42)).params)
    np.testing.assert_array_equal(
        cffnn.Network(**kwargs, random_state=np.random.default_rng(7)).params,
        cffnn.Network(**kwargs, random_state=np.random.default_rng(7)).params)
    assert np.any(a.params != cffnn.Network(**kwargs, random_state=43).params)


def test_random_state_none_draws_fresh_params():
    a = cffnn.Network([5, 8, 3], random_state=None)
    b = cffnn.Network([5, 8, 3], random_state=None)
    assert np.any(a.params != b.params)


def _expected_bound(name, fan_in, fan_out):
    if name in RELU_FAMILY:
        return np.sqrt(6.0 / fan_in)
    return np.sqrt((2.0 if name == "logistic" else 6.0) / (fan_in + fan_out))


@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_initialisation_bounds(activation):
    """Glorot-uniform (factor 2 for logistic) or He-uniform for the relu family, biases
    with the same bound; the output layer takes the last hidden layer's rule, as
    scikit-learn does. Large layers make max|W| come within 10% of the bound."""
    sizes = [60, 50, 40]
    net = cffnn.Network(sizes, activation=activation, output="softmax", random_state=0)
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        bound = _expected_bound(activation, fan_in, fan_out)
        W, b = net.weights[k], net.biases[k]
        assert np.max(np.abs(W)) <= bound * (1 + 1e-6)
        assert np.max(np.abs(W)) >= 0.9 * bound
        assert np.max(np.abs(b)) <= bound * (1 + 1e-6)
        assert np.max(np.abs(b)) >= 0.5 * bound


def test_initialisation_bounds_per_layer_activation_list():
    sizes = [80, 60, 50, 40, 30]
    activations = ["relu", "logistic", "tanh"]
    net = cffnn.Network(sizes, activation=activations, output="identity", random_state=1)
    for k, name in enumerate(activations + [activations[-1]]):
        bound = _expected_bound(name, sizes[k], sizes[k + 1])
        assert 0.9 * bound <= np.max(np.abs(net.weights[k])) <= bound * (1 + 1e-6)


@pytest.mark.parametrize("output, factor", [("logistic", 2.0), ("identity", 6.0),
                                            ("softmax", 6.0)])
def test_initialisation_without_hidden_layer_follows_the_output(output, factor):
    net = cffnn.Network([70, 50], output=output, random_state=0)
    bound = np.sqrt(factor / 120)
    assert 0.9 * bound <= np.max(np.abs(net.weights[0])) <= bound * (1 + 1e-6)


@pytest.mark.parametrize("activation, factor", [("tanh", 6.0), ("logistic", 2.0),
                                                ("identity", 6.0)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_initialisation_matches_scikit_learn(dtype, activation, factor):
    """RandomState(seed).uniform(-b, b, (fan_in, fan_out)) then uniform(-b, b, fan_out),
    layer after layer, exactly as MLPClassifier._init_coef draws them."""
    seed, sizes = 12, [7, 5, 3]
    net = cffnn.Network(sizes, activation=activation, output="softmax", dtype=dtype,
                        random_state=seed)
    rng = np.random.RandomState(seed)
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        bound = np.sqrt(factor / (fan_in + fan_out))
        expected_W = rng.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype)
        expected_b = rng.uniform(-bound, bound, fan_out).astype(dtype)
        np.testing.assert_array_equal(net.weights[k], expected_W)
        np.testing.assert_array_equal(net.biases[k], expected_b)


# -- behaviour of the constructor's choices ------------------------------------------

@pytest.mark.parametrize("output, canonical", [("identity", "squared_error"),
                                               ("logistic", "binary_log_loss"),
                                               ("softmax", "log_loss")])
def test_default_loss_is_the_canonical_partner(output, canonical):
    rng = np.random.default_rng(0)
    default = cffnn.Network([4, 6, 3], output=output, dtype=np.float64, random_state=0)
    explicit = cffnn.Network([4, 6, 3], output=output, loss=canonical, dtype=np.float64,
                             random_state=0)
    X = rng.normal(size=(10, 4))
    Y = rng.integers(0, 2, size=(10, 3)).astype(float)
    assert default.loss(X, Y) == explicit.loss(X, Y)
    if output != "identity":   # squared_error is a different loss for the other outputs
        other = cffnn.Network([4, 6, 3], output=output, loss="squared_error",
                              dtype=np.float64, random_state=0)
        assert other.loss(X, Y) != default.loss(X, Y)


def test_one_activation_name_applies_to_every_hidden_layer():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 4))
    one = cffnn.Network([4, 5, 5, 5, 2], activation="elu", dtype=np.float64,
                        random_state=0)
    listed = cffnn.Network([4, 5, 5, 5, 2], activation=["elu"] * 3, dtype=np.float64,
                           random_state=0)
    np.testing.assert_array_equal(one.forward(X), listed.forward(X))


def test_forward_output_shape_and_repr():
    net = cffnn.Network([4, 8, 3], activation="tanh", output="softmax", random_state=0)
    assert net.forward(np.zeros((5, 4))).shape == (5, 3)
    assert net.forward(np.zeros((1, 4))).shape == (1, 3)
    text = repr(net)
    assert "[4, 8, 3]" in text and "tanh" in text and "softmax" in text


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pickle_and_deepcopy_round_trip(dtype):
    """A pickled or deep-copied network has equal parameters, its own buffer, and
    bit-identical outputs."""
    import copy
    import pickle

    net = cffnn.Network([5, 7, 3], activation=["gelu"], output="softmax", dtype=dtype,
                        random_state=3)
    X = np.random.default_rng(0).normal(size=(9, 5))
    for clone in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert clone.dtype == net.dtype and clone.activations == net.activations
        np.testing.assert_array_equal(clone.params, net.params)
        np.testing.assert_array_equal(clone.forward(X), net.forward(X))
        clone.weights[0][0, 0] += 1.0
        assert clone.params[0] != net.params[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("output, loss", [("softmax", "log_loss"), ("softmax", "squared_error"),
                                          ("logistic", "binary_log_loss"),
                                          ("identity", "squared_error"), ("exp", "poisson")])
@pytest.mark.parametrize("sizes, n_samples", [([20, 64, 5], 1), ([20, 64, 5], 3),
                                              ([20, 64, 5], 7), ([300, 96, 5], 300)],
                         ids=["1-row", "3-rows", "7-rows", "300-rows-team"])
def test_output_and_loss_in_one_pass_equal_forward_and_loss(dtype, output, loss, sizes,
                                                            n_samples):
    """Network._output_and_loss (the estimators' validation step after each epoch) gives
    exactly forward(X) and loss(X, Y), bit for bit, from one forward pass: through the
    one-row kernel, the GEMM path and, at 300 rows, a team of blocks."""
    from _testing import make_targets
    rng = np.random.default_rng(n_samples)
    net = cffnn.Network(sizes, activation="relu", output=output, loss=loss, dtype=dtype,
                        random_state=0)
    X = rng.normal(size=(n_samples, sizes[0]))
    Y, _ = make_targets(output, loss, n_samples, sizes[-1], rng)
    weights = rng.uniform(0.5, 2.0, n_samples)
    out, value = net._output_and_loss(X, Y, sample_weight=weights, n_threads=2)
    assert out.dtype == dtype and out.shape == (n_samples, sizes[-1])
    np.testing.assert_array_equal(out, net.forward(X, n_threads=2))
    assert value == net.loss(X, Y, sample_weight=weights, n_threads=2)
