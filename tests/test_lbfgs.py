"""Network.fit_lbfgs: scipy's L-BFGS-B driving the compiled loss and gradient."""
import numpy as np
import pytest
from scipy.optimize import minimize

import cffnn
from cffnn import reference


def problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] * X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    sample_weight = rng.random(120) + 0.5
    return X, y, np.eye(3)[y], sample_weight


def test_reaches_the_loss_scipy_reaches_on_the_numpy_reference():
    X, y, Y, sample_weight = problem()
    net = cffnn.Network([4, 10, 3], activation="tanh", dtype=np.float64, random_state=0)
    start = net.params.copy()
    shapes = [(w.shape, b.shape) for w, b in zip(net.weights, net.biases)]

    def unpack(flat):
        weights, biases, offset = [], [], 0
        for (w_shape, b_shape) in shapes:
            size = w_shape[0] * w_shape[1]
            weights.append(flat[offset:offset + size].reshape(w_shape))
            offset += size
            biases.append(flat[offset:offset + b_shape[0]])
            offset += b_shape[0]
        return weights, biases

    def reference_loss_and_gradient(flat):
        weights, biases = unpack(flat)
        loss, grad_w, grad_b = reference.loss_and_gradient(
            weights, biases, X, Y, net.activations, "softmax", "log_loss", 0.01, sample_weight)
        return loss, reference.flatten(grad_w, grad_b)

    expected = minimize(reference_loss_and_gradient, start, jac=True, method="L-BFGS-B",
                        options={"maxiter": 150, "maxfun": 15000, "gtol": 1e-6})
    result = net.fit_lbfgs(X, y, alpha=0.01, sample_weight=sample_weight, max_iter=150,
                           tol=1e-6)
    assert result.fun == pytest.approx(expected.fun, rel=1e-6)
    assert net.loss(X, y, alpha=0.01, sample_weight=sample_weight) == pytest.approx(result.fun)
    np.testing.assert_array_equal(net.params, result.x)


def test_float32_network_trains_and_stays_float32():
    X, y, _, _ = problem()
    net = cffnn.Network([4, 10, 3], activation="relu", dtype=np.float32, random_state=0)
    before = net.loss(X, y)
    result = net.fit_lbfgs(X, y, max_iter=50)
    assert net.params.dtype == np.float32 and result.fun < 0.8 * before


@pytest.mark.parametrize("kwargs, error", [
    ({"max_iter": 0}, ValueError), ({"max_fun": 2.5}, ValueError),
    ({"tol": -1.0}, ValueError), ({"tol": "small"}, TypeError),
])
def test_bad_arguments_raise(kwargs, error):
    X, y, _, _ = problem()
    net = cffnn.Network([4, 10, 3], random_state=0)
    with pytest.raises(error):
        net.fit_lbfgs(X, y, **kwargs)
