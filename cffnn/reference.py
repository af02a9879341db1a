"""The mathematics of cffnn in plain NumPy: the oracle of the tests, the baseline of
the benchmarks. Written to read like DESIGN.md; the fast path never imports it.

Shapes: X (n_samples, n_features); Y (n_samples, n_outputs) targets (one-hot rows for
softmax); weights[k] (n_k, n_{k+1}); biases[k] (n_{k+1},). Computations keep the dtype
of X and the parameters.
"""
import numpy as np


def log1pexp(a):
    """log(1 + exp(a)) without overflow."""
    return np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a)))


def sigmoid(a):
    """1 / (1 + exp(-a)), with exp taken of -|a| only."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def softmax(a):
    """Row-wise softmax with the row max subtracted."""
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def logsumexp(a):
    """log sum_k exp(a_k) per row, shape (n,)."""
    m = a.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=1, keepdims=True)))[:, 0]


GELU_C, GELU_K = np.sqrt(2 / np.pi), 0.044715


def activate(name, a):
    """h(a) for a hidden or output activation name."""
    if name == "identity":
        return a
    if name == "logistic":
        return sigmoid(a)
    if name == "tanh":
        return np.tanh(a)
    if name == "relu":
        return np.maximum(a, 0)
    if name == "leaky_relu":
        return np.where(a > 0, a, a.dtype.type(0.01) * a)
    if name == "elu":
        return np.where(a > 0, a, np.expm1(np.minimum(a, 0)))
    if name == "softplus":
        return log1pexp(a)
    if name == "gelu":
        return 0.5 * a * (1 + np.tanh(GELU_C * (a + GELU_K * a**3)))
    if name == "softmax":
        return softmax(a)
    if name == "exp":
        return np.exp(a)
    raise ValueError(f"unknown activation {name!r}")


def derivative(name, a, z):
    """h'(a) elementwise, given a and z = h(a)."""
    if name == "identity":
        return np.ones_like(a)
    if name == "logistic":
        return z * (1 - z)
    if name == "tanh":
        return 1 - z * z
    if name == "relu":
        return (a > 0).astype(a.dtype)
    if name == "leaky_relu":
        return np.where(a > 0, 1, 0.01).astype(a.dtype)
    if name == "elu":
        return np.where(a > 0, 1, z + 1).astype(a.dtype)
    if name == "softplus":
        return sigmoid(a)
    if name == "gelu":
        t = np.tanh(GELU_C * (a + GELU_K * a**3))
        return 0.5 * (1 + t) + 0.5 * a * (1 - t * t) * GELU_C * (1 + 3 * GELU_K * a * a)
    raise ValueError(f"unknown activation {name!r}")


def forward(weights, biases, X, activations, output, keep=False):
    """Network output h_out(A[L-1]); with keep=True also the lists (A, Z) of every layer.

    A[k] = Z[k-1] W[k] + b[k], Z[k] = h_k(A[k]), Z[-1] = X  (DESIGN.md eq. 5, 6)
    """
    names = list(activations) + [output]
    A, Z = [], []
    z = X
    for W, b, name in zip(weights, biases, names):
        a = z @ W + b
        z = activate(name, a)
        A.append(a)
        Z.append(z)
    return (z, A, Z) if keep else z


def sample_losses(logits, Y, output, loss):
    """Per-sample loss l_i summed over outputs, from the logits A[L-1]; shape (n,)."""
    if loss == "binary_log_loss":      # -[y log p + (1-y) log(1-p)] = log(1+e^a) - y a
        return (log1pexp(logits) - Y * logits).sum(axis=1)
    if loss == "log_loss":             # -sum_k y_k log softmax(a)_k
        return (Y * (logsumexp(logits)[:, None] - logits)).sum(axis=1)
    if loss == "squared_error":
        return 0.5 * ((activate(output, logits) - Y) ** 2).sum(axis=1)
    if loss == "poisson":              # half Poisson deviance: xlogy(y, y / e^a) - y + e^a
        return (np.exp(logits) - Y * logits - Y
                + np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1)), 0)).sum(axis=1)
    raise ValueError(f"unknown loss {loss!r}")


def output_delta(logits, Y, output, loss):
    """dl_i/dA[L-1] per sample (unweighted), shape (n, n_outputs)."""
    z = activate(output, logits)
    if (output, loss) in (("logistic", "binary_log_loss"), ("identity", "squared_error"),
                          ("exp", "poisson")):
        return z - Y
    if loss == "log_loss":
        return z * Y.sum(axis=1, keepdims=True) - Y
    g = z - Y                                       # squared error, general chain rule
    if output == "logistic":
        return g * z * (1 - z)
    if output == "softmax":
        return z * (g - (g * z).sum(axis=1, keepdims=True))
    raise ValueError(f"unknown output/loss pair {(output, loss)!r}")


def _sample_weights(n, sample_weight, dtype):
    """Per-sample weights w_i = s_i / sum(s) (1/n without weights), and sum(s)."""
    if sample_weight is None:
        return np.full(n, 1.0 / n), float(n)
    s = np.asarray(sample_weight, dtype=np.float64)
    return s / s.sum(), float(s.sum())


def loss(weights, biases, X, Y, activations, output, loss, alpha=0.0, sample_weight=None):
    """sum_i w_i l_i + alpha sum_k ||W[k]||^2 / (2 sum(s)), as a float (DESIGN.md)."""
    _, A, _ = forward(weights, biases, X, activations, output, keep=True)
    w, weight_sum = _sample_weights(X.shape[0], sample_weight, X.dtype)
    data = float(np.dot(w, sample_losses(A[-1], Y, output, loss).astype(np.float64)))
    penalty = sum(float(np.sum(W.astype(np.float64) ** 2)) for W in weights)
    return data + alpha * penalty / (2 * weight_sum)


def loss_and_gradient(weights, biases, X, Y, activations, output, loss_name, alpha=0.0,
                      sample_weight=None):
    """(loss, grad_weights, grad_biases) by backpropagation (DESIGN.md eq. 8-13).

    delta[L-1] = w_i dl_i/dA[L-1];  delta[k-1] = h'(A[k-1]) * (delta[k] W[k]^T)
    dW[k] = Z[k-1]^T delta[k] + alpha W[k] / sum(s);  db[k] = sum_i delta[k]_i
    """
    _, A, Z = forward(weights, biases, X, activations, output, keep=True)
    w, weight_sum = _sample_weights(X.shape[0], sample_weight, X.dtype)
    value = loss(weights, biases, X, Y, activations, output, loss_name, alpha, sample_weight)
    delta = (w[:, None] * output_delta(A[-1], Y, output, loss_name)).astype(X.dtype)
    grad_weights, grad_biases = [None] * len(weights), [None] * len(weights)
    for k in range(len(weights) - 1, -1, -1):
        layer_input = X if k == 0 else Z[k - 1]
        grad_weights[k] = layer_input.T @ delta + (alpha / weight_sum) * weights[k]
        grad_biases[k] = delta.sum(axis=0, dtype=np.float64).astype(X.dtype)
        if k > 0:
            delta = derivative(activations[k - 1], A[k - 1], Z[k - 1]) * (delta @ weights[k].T)
    return value, grad_weights, grad_biases


def flatten(grad_weights, grad_biases):
    """Pack per-layer arrays into the flat layout W[0] row-major, b[0], W[1], b[1], ..."""
    parts = []
    for W, b in zip(grad_weights, grad_biases):
        parts.extend([W.ravel(), b.ravel()])
    return np.concatenate(parts)


# -- optimiser steps, as scikit-learn's sklearn/neural_network/_stochastic_optimizers.py --

def sgd_step(params, grad, velocity, learning_rate, momentum, nesterov):
    """In place: v = momentum v - lr grad; params += v (or momentum v - lr grad, Nesterov)."""
    velocity[...] = momentum * velocity - learning_rate * grad
    update = momentum * velocity - learning_rate * grad if nesterov else velocity
    params += update


def adam_step(params, grad, first_moment, second_moment, t, learning_rate, beta_1, beta_2,
              epsilon):
    """In place, t = this step's number (1, 2, ...): scikit-learn's Adam update."""
    first_moment[...] = beta_1 * first_moment + (1 - beta_1) * grad
    second_moment[...] = beta_2 * second_moment + (1 - beta_2) * (grad ** 2)
    step_size = learning_rate * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
    params += -step_size * first_moment / (np.sqrt(second_moment) + epsilon)


def rprop_step(params, grad, previous_grad, step_sizes, increase=1.2, decrease=0.5,
               delta_min=0.0, delta_max=50.0):
    """In place: iRPROP- with FANN's 1e-4 floor on step sizes (see cffnn.RPROP)."""
    size = np.maximum(step_sizes, step_sizes.dtype.type(1e-4))
    same_sign = previous_grad * grad >= 0
    size = np.where(same_sign, np.minimum(size * step_sizes.dtype.type(increase), delta_max),
                    np.maximum(size * step_sizes.dtype.type(decrease), delta_min))
    grad = np.where(same_sign, grad, 0)
    params -= np.sign(grad) * size
    step_sizes[...] = size
    previous_grad[...] = grad
