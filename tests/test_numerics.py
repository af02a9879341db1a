"""Numerical robustness: huge logits, saturated activations, probabilities, dtypes,
closed-form loss values and double accumulation in float32."""
import numpy as np
import pytest

import cffnn

from _testing import (HIDDEN_ACTIVATIONS, OUTPUT_LOSS_PAIRS, make_targets,
                      network, reference_results, rel_err)

DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]
RTOL = {np.float64: 1e-10, np.float32: 1e-4}

# Two samples through a layer without hidden units: sample 0 gets logits (s, -s, ...),
# sample 1 gets (-s, s, ...); both have target "unit 1", so sample 0 is confidently
# wrong (loss 2 s) and sample 1 confidently right (loss 0): the mean loss is s.
X_TWO = np.array([[1.0, 0.0], [0.0, 1.0]])


def _confident_network(output, loss, scale, dtype):
    n_outputs = 2 if output == "logistic" else 3
    net = network([2, n_outputs], output=output, loss=loss, dtype=dtype)
    net.weights[0][...] = 0
    net.weights[0][0, :2] = [scale, -scale]
    net.weights[0][1, :2] = [-scale, scale]
    net.biases[0][...] = 0
    return net


@pytest.mark.parametrize("scale", [1e4, 1e30])
@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_log_loss_of_huge_logits_is_finite_and_exact(dtype, scale):
    net = _confident_network("logistic", "binary_log_loss", scale, dtype)
    Y = np.array([[0.0, 1.0], [0.0, 1.0]])
    value, grad = net.loss_and_gradient(X_TWO, Y)
    assert value == pytest.approx(scale, rel=1e-6)
    assert net.loss(X_TWO, Y) == pytest.approx(scale, rel=1e-6)
    # delta = (sigmoid(a) - y) / 2: (1/2, -1/2) for sample 0, (0, 0) for sample 1
    expected_grad = np.array([0.5, -0.5, 0, 0, 0.5, -0.5])
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, expected_grad, atol=1e-6)
    probabilities = net.forward(X_TWO)
    np.testing.assert_array_equal(probabilities, [[1, 0], [0, 1]])


@pytest.mark.parametrize("scale", [1e4, 1e30])
@pytest.mark.parametrize("dtype", DTYPES)
def test_log_loss_of_huge_logits_is_finite_and_exact(dtype, scale):
    net = _confident_network("softmax", "log_loss", scale, dtype)
    labels = np.array([1, 1])
    value, grad = net.loss_and_gradient(X_TWO, labels)
    assert value == pytest.approx(scale, rel=1e-6)
    assert net.loss(X_TWO, labels) == pytest.approx(scale, rel=1e-6)
    # delta = (softmax(a) - y) / 2: (1/2, -1/2, 0) for sample 0, 0 for sample 1
    expected_grad = np.array([0.5, -0.5, 0, 0, 0, 0, 0.5, -0.5, 0])
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, expected_grad, atol=1e-6)
    probabilities = net.forward(X_TWO)
    np.testing.assert_array_equal(probabilities, [[1, 0, 0], [0, 1, 0]])


BOUNDED_PAIRS = [pair for pair in OUTPUT_LOSS_PAIRS if pair[0] != "exp"]


@pytest.mark.parametrize("output, loss", BOUNDED_PAIRS,
                         ids=[f"{output}+{loss}" for output, loss in BOUNDED_PAIRS])
@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_logits_behind_a_hidden_layer(dtype, output, loss):
    """Output weights of +-1e4 scale: logits of order 1e4, everything finite and equal to
    the (log-sum-exp based) reference. (Not for the exp output: e^1e4 is infinite, and a
    fit that gets there stops with DivergenceError.)"""
    rng = np.random.default_rng(0)
    net = network([4, 8, 3], activation="tanh", output=output, loss=loss, dtype=dtype)
    net.weights[1][...] = rng.choice([-1e4, 1e4], size=net.weights[1].shape)
    X = rng.normal(size=(50, 4)).astype(dtype)
    Y, Y_matrix = make_targets(output, loss, 50, 3, rng)
    logits = np.tanh(X @ net.weights[0] + net.biases[0]) @ net.weights[1]
    assert np.max(np.abs(logits)) > 1e4

    output_values = net.forward(X)
    value, grad = net.loss_and_gradient(X, Y, alpha=0.1)
    assert np.all(np.isfinite(output_values))
    assert np.isfinite(value) and np.isfinite(net.loss(X, Y, alpha=0.1))
    assert np.all(np.isfinite(grad))

    expected_output, expected_loss, expected_grad = reference_results(net, X, Y_matrix, 0.1)
    assert rel_err(output_values, expected_output) <= RTOL[dtype]
    assert value == pytest.approx(expected_loss, rel=RTOL[dtype])
    assert rel_err(grad, expected_grad) <= RTOL[dtype]


@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_saturated_hidden_activations_stay_finite(dtype, activation):
    """Hidden pre-activations of +-1e4 give finite outputs, losses and gradients."""
    net = network([2, 4, 3], activation=activation, output="softmax", dtype=dtype)
    net.weights[0][...] = 1e4 * np.array([[1, -1, 1, -1], [1, 1, -1, -1]])
    net.biases[0][...] = 0
    net.weights[1][...] = 1e-4 * np.arange(12).reshape(4, 3)
    X = np.array([[1.0, 0.0], [0.0, -1.0], [1.0, 1.0], [-1.0, 0.0]])
    labels = np.array([0, 1, 2, 1])
    output_values = net.forward(X)
    value, grad = net.loss_and_gradient(X, labels, alpha=0.01)
    assert np.all(np.isfinite(output_values))
    assert np.isfinite(value)
    assert np.all(np.isfinite(grad))
    expected_output, expected_loss, expected_grad = reference_results(
        net, X, np.eye(3)[labels], 0.01)
    assert rel_err(output_values, expected_output) <= RTOL[dtype]
    assert value == pytest.approx(expected_loss, rel=RTOL[dtype])
    assert rel_err(grad, expected_grad) <= RTOL[dtype]


@pytest.mark.parametrize("output", ["logistic", "softmax"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_probabilities_in_unit_interval_and_softmax_rows_sum_to_one(dtype, output):
    rng = np.random.default_rng(1)
    net = network([5, 16, 10], activation="relu", output=output, dtype=dtype)
    # inputs of scale 100 saturate many outputs at 0 or 1
    X = np.concatenate([rng.normal(size=(200, 5)), 100 * rng.normal(size=(200, 5))])
    probabilities = net.forward(X)
    assert probabilities.min() >= 0 and probabilities.max() <= 1
    if output == "softmax":
        atol = 1e-6 if dtype is np.float32 else 1e-14
        np.testing.assert_allclose(probabilities.sum(axis=1, dtype=np.float64), 1.0,
                                   rtol=0, atol=atol)


@pytest.mark.parametrize("x_dtype", [np.float32, np.float64, np.int64, np.float16, bool])
@pytest.mark.parametrize("dtype", DTYPES)
def test_outputs_have_the_network_dtype(dtype, x_dtype):
    """float32 networks compute and return float32, float64 ones float64, whatever X is."""
    rng = np.random.default_rng(2)
    net = network([3, 4, 2], activation="tanh", output="logistic", dtype=dtype)
    assert net.params.dtype == dtype
    assert all(W.dtype == dtype for W in net.weights)
    X = (3 * rng.normal(size=(6, 3))).astype(x_dtype)
    Y = rng.integers(0, 2, size=(6, 2)).astype(x_dtype)
    assert net.forward(X).dtype == dtype
    value, grad = net.loss_and_gradient(X, Y)
    assert type(value) is float and type(net.loss(X, Y)) is float
    assert grad.dtype == dtype


def test_default_dtype_is_float32():
    net = cffnn.Network([3, 2])
    assert net.params.dtype == np.float32
    assert net.forward(np.ones((1, 3))).dtype == np.float32


# -- closed-form values --------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_closed_form_losses_of_a_zero_network(dtype):
    """Zero weights and biases: log_loss = log K, binary_log_loss = K log 2 and
    squared_error = sum(Y^2) / (2 n)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 5))
    for output, loss, n_outputs, expected in [
            ("softmax", "log_loss", 4, np.log(4)),
            ("logistic", "binary_log_loss", 3, 3 * np.log(2))]:
        net = network([5, n_outputs], output=output, loss=loss, dtype=dtype)
        net.params = np.zeros(net.n_params)
        Y, _ = make_targets(output, loss, 40, n_outputs, rng)
        assert net.loss(X, Y) == pytest.approx(expected, rel=1e-6)
    net = network([5, 2], output="identity", dtype=dtype)
    net.params = np.zeros(net.n_params)
    Y = rng.normal(size=(40, 2))
    assert net.loss(X, Y) == pytest.approx(0.5 * np.sum(Y.astype(dtype) ** 2) / 40,
                                           rel=1e-6)


@pytest.mark.parametrize("sample_weight", [None, "weights"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_closed_form_l2_penalty(dtype, sample_weight):
    """Zero data loss, W = 1: loss = alpha n_in n_out / (2 S), dW = alpha W / S, db = 0,
    with S = n_samples or sum(sample_weight)."""
    n_samples, alpha = 8, 0.6
    weights = None if sample_weight is None else np.arange(1.0, n_samples + 1)
    total = n_samples if weights is None else weights.sum()
    net = network([3, 2], output="identity", dtype=dtype)
    net.weights[0][...] = 1.0
    net.biases[0][...] = 0.0
    X, Y = np.zeros((n_samples, 3)), np.zeros((n_samples, 2))
    expected = alpha * 6 / (2 * total)
    assert net.loss(X, Y, alpha=alpha, sample_weight=weights) == \
        pytest.approx(expected, rel=1e-6)
    value, grad = net.loss_and_gradient(X, Y, alpha=alpha, sample_weight=weights)
    assert value == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(grad[:6], alpha / total, rtol=1e-6)
    np.testing.assert_array_equal(grad[6:], 0)


def test_float32_reductions_accumulate_in_double():
    """200000 float32 rows: the loss and the bias gradient are accurate to ~1e-7, which
    summing in float32 would not give (DESIGN.md: reductions accumulate in double)."""
    n_samples = 200_000
    labels = np.repeat([0, 1, 2], [120_000, 60_000, 20_000])
    net = network([2, 3], output="softmax", dtype=np.float32)
    net.params = np.zeros(net.n_params)
    X = np.ones((n_samples, 2), dtype=np.float32)
    value, grad = net.loss_and_gradient(X, labels, n_threads=1)
    assert value == pytest.approx(np.log(3), rel=1e-6)
    assert net.loss(X, labels) == pytest.approx(np.log(3), rel=1e-6)
    # db = mean(softmax(0) - y) = 1/3 - class frequency
    expected_bias_grad = 1 / 3 - np.array([0.6, 0.3, 0.1])
    np.testing.assert_allclose(grad[6:], expected_bias_grad, rtol=0, atol=1e-6)


def test_float32_softmax_delta_is_accurate_across_the_exp_range():
    """The float32 log-loss path exponentiates with its own vectorised exp (activations.h):
    softmax - y must match float64 to ~1 ulp for logit gaps from 0 to 90 (e^-90 is below
    the smallest normal float: those probabilities become 0), and the loss must match."""
    rng = np.random.default_rng(0)
    n_classes = 64
    net = network([n_classes, n_classes], output="softmax", dtype=np.float32)
    net.weights[0][...] = np.eye(n_classes, dtype=np.float32)
    net.biases[0][...] = 0
    for _ in range(50):
        X = rng.uniform(-90, 0, size=(1, n_classes)).astype(np.float32)
        X[0, 0] = 0.0
        loss, grad = net.loss_and_gradient(X, np.array([1]))
        logits = X[0].astype(np.float64)
        p = np.exp(logits) / np.exp(logits).sum()
        expected = p - np.eye(n_classes)[1]
        bias_grad = grad[n_classes * n_classes:]
        normal = np.abs(expected) > 1e-37
        np.testing.assert_allclose(bias_grad[normal], expected[normal], rtol=3e-7)
        assert np.all(np.abs(bias_grad[~normal]) <= 1e-37)
        assert loss == pytest.approx(np.log(np.exp(logits).sum()) - logits[1], rel=1e-6)


@pytest.mark.parametrize("dtype, max_ulp", [(np.float64, 3), (np.float32, 7)],
                         ids=["float64", "float32"])
def test_tanh_layer_is_accurate_to_a_few_ulp(dtype, max_ulp):
    """Both types compute tanh with their own vectorisable forms (activations.h): float64
    Cephes's, float32 Eigen's rational approximation. Through a [1, 1, 1] network whose
    weights are 1 and biases 0, the output is the hidden tanh itself: it must be within
    max_ulp of float64 libm tanh (rounded to the dtype) over [-30, 30], at both ends of
    each form's range, and keep the sign, the limits and NaN-free saturation."""
    net = network([1, 1, 1], activation="tanh", output="identity", dtype=dtype)
    net.params[...] = [1, 0, 1, 0]
    x = np.concatenate([np.linspace(-30, 30, 600001), [0.625, -0.625, 0.6249999, 1e-300,
                                                       -1e-300, 21.99, 22.0, 400.0]])
    x = np.append(x.astype(dtype), -np.finfo(dtype).max)
    output = net.forward(x.reshape(-1, 1)).ravel()
    expected = np.tanh(x.astype(np.float64)).astype(dtype)
    ulp = np.spacing(np.abs(expected).astype(dtype))
    assert np.all(np.abs(output - expected) <= max_ulp * ulp)
    assert np.all(np.sign(output) == np.sign(expected))
    assert np.all(np.abs(output) <= 1)


@pytest.mark.parametrize("dtype, max_ulp, span", [(np.float32, 2, 100), (np.float64, 4, 750)],
                         ids=["float32", "float64"])
def test_logistic_layer_is_accurate_and_keeps_nan(dtype, max_ulp, span):
    """Logistic layers use a vectorised sigmoid (activations.h; float32: e^-|a| from the
    softmax's exp, float64: from Cephes's exp): within max_ulp of scipy's expit, or within
    twice the smallest normal number of it where the exp stops (float32 gives e^a = 0 below
    a = -87, float64 0 below a = -708), in [0, 1], 1/2 at 0; and a NaN pre-activation
    (from inf weights, which params accepts) stays NaN, so that divergence still shows in
    the loss."""
    from scipy.special import expit
    net = network([1, 1, 1], activation="logistic", output="identity", dtype=dtype)
    net.params[...] = [1, 0, 1, 0]
    x = np.concatenate([np.linspace(-span, span, 400001), [0.0, -0.0, 87.0, -87.0, -88.0,
                                                           708.0, -708.0, -709.0]])
    x = np.append(x.astype(dtype), [-np.finfo(dtype).max, np.finfo(dtype).max])
    output = net.forward(x.reshape(-1, 1)).ravel()
    expected = expit(x.astype(np.float64)).astype(dtype)
    tolerance = np.maximum(max_ulp * np.spacing(expected), 2 * np.finfo(dtype).tiny)
    assert np.all(np.abs(output - expected) <= tolerance)
    assert np.all((output >= 0) & (output <= 1)) and output[-10] == 0.5
    net.params[...] = [np.inf, 0, 1, 0]
    with np.errstate(invalid="ignore"):
        assert np.isnan(net.forward(np.zeros((9, 1), dtype=dtype))).all()


def test_float32_softplus_layer_and_its_derivative_are_accurate():
    """float32 softplus layers compute log(1 + e^a), and from z = h(a) the derivative
    1 - e^-z, with their own vectorisable forms (activations.h): the output within 4 ulp
    of float64 (or within twice the smallest normal float, where e^a underflows), and
    the weight gradient within 1e-6 of float64's, also where z is tiny and 1 - e^-z
    would cancel (a = -20: z = 2e-9)."""
    net = network([1, 1, 1], activation="softplus", output="identity", dtype=np.float32)
    net.params[...] = [1, 0, 1, 0]
    x = np.concatenate([np.linspace(-60, 60, 240001), [0.0, 1e-30, -1e-30, 87.0, -87.0,
                                                       -88.0, -1e30, 1e30]]).astype(np.float32)
    output = net.forward(x.reshape(-1, 1)).ravel()
    x64 = x.astype(np.float64)
    expected = (np.maximum(x64, 0) + np.log1p(np.exp(-np.abs(x64)))).astype(np.float32)
    tolerance = np.maximum(4 * np.spacing(expected), 2 * np.finfo(np.float32).tiny)
    assert np.all(np.abs(output - expected) <= tolerance)
    # loss z^2 / 2 of one row a (target 0): dW1 = a h'(a) z, with h'(a) = sigmoid(a)
    for a in np.linspace(-20, 20, 81)[np.linspace(-20, 20, 81) != 0]:
        _, grad = net.loss_and_gradient(np.array([[a]], dtype=np.float32),
                                        np.zeros((1, 1), dtype=np.float32))
        softplus = np.logaddexp(0.0, a)
        expected_grad = a * (1 / (1 + np.exp(-a))) * softplus
        assert abs(grad[0] - expected_grad) <= 1e-6 * abs(expected_grad)
