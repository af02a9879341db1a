"""The compiled forward pass, loss and gradient agree with cffnn.reference (plain NumPy).

The reference is evaluated in float64 on the network's own parameters and on X cast to
the network's dtype, so the float32 tolerance measures the kernels' float32 rounding only.
Batches above 64 rows span several row blocks (1026 = 16 x 64 + 2 ends with a block of
two rows); with n_threads=2 and more than ~1e6 multiply-adds (1000 rows through a 64- or
300-wide layer) the kernels run an OpenMP team.
"""
import numpy as np
import pytest

from _testing import (HIDDEN_ACTIVATIONS, KINKED, OUTPUT_LOSS_PAIRS, PAIR_IDS,
                      make_targets, network, reference_results, rel_err, sample_features)

RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}
DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]


def assert_matches_reference(net, X, Y, Y_matrix, alpha=0.0, sample_weight=None,
                             n_threads=None):
    rtol = RTOL[np.dtype(net.dtype)]
    expected_output, expected_loss, expected_grad = reference_results(
        net, X, Y_matrix, alpha, sample_weight)

    output = net.forward(X, n_threads=n_threads)
    assert output.dtype == net.dtype
    assert rel_err(output, expected_output) <= rtol

    value = net.loss(X, Y, alpha=alpha, sample_weight=sample_weight, n_threads=n_threads)
    assert isinstance(value, float)
    assert abs(value - expected_loss) <= rtol * abs(expected_loss)

    value, grad = net.loss_and_gradient(X, Y, alpha=alpha, sample_weight=sample_weight,
                                        n_threads=n_threads)
    assert abs(value - expected_loss) <= rtol * abs(expected_loss)
    assert grad.dtype == net.dtype and grad.shape == net.params.shape
    assert rel_err(grad, expected_grad) <= rtol


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("width", [1, 3, 64, 300])
@pytest.mark.parametrize("batch", [1, 2, 7, 128, 1000, 1026])
@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_sizes_and_widths(dtype, batch, width, n_threads):
    rng = np.random.default_rng(batch * 1000 + width)
    # relu in float64; gelu in float32, where a pre-activation within rounding of 0
    # could take the other side of the kink than in the float64 reference.
    activation = "relu" if dtype is np.float64 else "gelu"
    net = network([20, width, 4], activation=activation, output="softmax", dtype=dtype,
                  random_state=batch + width)
    X = sample_features(net, batch, rng)
    Y, Y_matrix = make_targets("softmax", "log_loss", batch, 4, rng)
    assert_matches_reference(net, X, Y, Y_matrix, alpha=0.01, n_threads=n_threads)


@pytest.mark.parametrize("output, loss", OUTPUT_LOSS_PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_activation_and_loss(dtype, activation, output, loss):
    """150 rows (three row blocks, the last one partial), penalty and sample weights."""
    rng = np.random.default_rng(HIDDEN_ACTIVATIONS.index(activation))
    net = network([6, 16, 16, 4], activation=activation, output=output, loss=loss,
                  dtype=dtype, random_state=1)
    margin = 1e-4 if dtype is np.float32 and activation in KINKED else 0.0
    X = sample_features(net, 150, rng, margin=margin)
    Y, Y_matrix = make_targets(output, loss, 150, 4, rng)
    sample_weight = rng.uniform(0, 2, 150)
    assert_matches_reference(net, X, Y, Y_matrix, alpha=0.3, sample_weight=sample_weight)


@pytest.mark.parametrize("output, loss", OUTPUT_LOSS_PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_deep_network_on_two_threads(dtype, output, loss):
    """Five hidden layers of widths 64, 1, 300, 3, 64 on 1000 rows: a multithreaded call."""
    rng = np.random.default_rng(7)
    activations = ["tanh", "gelu", "softplus", "logistic",
                   "elu" if dtype is np.float64 else "gelu"]
    net = network([20, 64, 1, 300, 3, 64, 5], activation=activations, output=output,
                  loss=loss, dtype=dtype, random_state=2)
    X = sample_features(net, 1000, rng)
    Y, Y_matrix = make_targets(output, loss, 1000, 5, rng)
    sample_weight = rng.integers(0, 3, 1000).astype(np.float64)
    assert_matches_reference(net, X, Y, Y_matrix, alpha=0.05, sample_weight=sample_weight,
                             n_threads=2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_no_hidden_layer(dtype):
    rng = np.random.default_rng(3)
    net = network([9, 3], output="logistic", dtype=dtype)
    X = sample_features(net, 77, rng)
    Y, Y_matrix = make_targets("logistic", "binary_log_loss", 77, 3, rng)
    assert_matches_reference(net, X, Y, Y_matrix, alpha=1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_family_on_many_blocks_and_threads(dtype):
    """relu, leaky_relu and elu on 1000 rows with two threads (float32 data kept off the
    kinks by resampling)."""
    rng = np.random.default_rng(4)
    net = network([20, 64, 32, 16, 3], activation=["relu", "leaky_relu", "elu"],
                  output="identity", dtype=dtype, random_state=4)
    margin = 1e-5 if dtype is np.float32 else 0.0
    X = sample_features(net, 1000, rng, margin=margin, max_tries=1000)
    Y, Y_matrix = make_targets("identity", "squared_error", 1000, 3, rng)
    assert_matches_reference(net, X, Y, Y_matrix, alpha=0.1, n_threads=2)


@pytest.mark.parametrize("n_in", [1, 3, 4, 5, 8, 9, 12, 33, 300])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_with_zero_inputs_match_reference(dtype, n_in):
    """Up to 4 rows go through include/cffnn/rowkernel.h, which skips the rows of W whose
    input is exactly 0 when at least a quarter of the inputs are: it lists the nonzero
    inputs 4 or 8 at a time (AVX2; each of the 16 patterns of 4 lanes occurs here), then
    the rest one by one, and prefetches rows further down that list. Rows with no zero,
    just under and exactly a quarter, half, nearly all and all inputs 0, with input widths
    around those lane counts; identity hidden layers, so the zeros are the inputs'."""
    rng = np.random.default_rng(n_in)
    net = network([n_in, 24, 70, 3], activation="identity", output="softmax", dtype=dtype,
                  random_state=n_in)
    rows = []
    for zero_share in (0.0, 0.2, 0.25, 0.5, 0.9, 1.0):
        x = rng.normal(size=n_in)
        x[rng.permutation(n_in)[:int(zero_share * n_in)]] = 0.0
        rows.append(x)
    X = np.array(rows).astype(dtype)
    expected = reference_results(net, X, np.eye(3)[[0] * len(rows)])[0]
    for n_rows in (1, 4):           # one row at a time, and rowkernel.h's largest batch
        for start in range(0, len(rows), n_rows):
            batch = X[start:start + n_rows]
            assert rel_err(net.forward(batch), expected[start:start + n_rows]) \
                <= RTOL[np.dtype(dtype)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("batch", [1, 3, 4, 5, 6, 7, 8, 9, 13, 31, 64])
@pytest.mark.parametrize("sizes", [[7, 9, 17, 8], [5, 16, 33, 12], [64, 32, 10], [8, 64, 64, 1]],
                         ids=lambda sizes: "-".join(map(str, sizes)))
def test_small_products_match_reference(sizes, batch, dtype):
    """Products of up to 8192 weights and ~1e6 multiply-adds skip BLAS for
    include/cffnn/smallgemm.h on AVX2 machines: tiles of 6 and 4 rows (rows past the
    batch; the batches cover each choice of tile heights), tiles of 16 float32 or 8
    float64 columns (masked columns past the layer's width), the transposed operands of
    the backward pass and of the weight gradient, and gradient accumulation onto the L2
    penalty. Widths here cover each of those edges for both types."""
    rng = np.random.default_rng(batch)
    net = network(sizes, activation="tanh", output="softmax" if sizes[-1] > 1 else "identity",
                  dtype=dtype, random_state=batch)
    X = sample_features(net, batch, rng)
    if sizes[-1] > 1:
        Y, Y_matrix = make_targets("softmax", "log_loss", batch, sizes[-1], rng)
    else:
        Y, Y_matrix = make_targets("identity", "squared_error", batch, 1, rng)
    assert_matches_reference(net, X, Y, Y_matrix, alpha=0.01)


@pytest.mark.parametrize("sizes, output, n_rows", [
    ([13, 40, 17, 10], "softmax", 37),
    # one output: the forward product is smallgemm.h's dot products (cffnn_small_gemv_f),
    # with k % 8 = 3 left over, and 37 rows = 9 groups of 4 and one row
    ([13, 43, 1], "identity", 37),
    # a first layer too large for the small-product rule: its forward product (37 rows,
    # at most 64) still goes to the kernel (cffnn_medium_gemm_pays), over k = 300 in two
    # blocks of p (256 + 44) and 40 columns in panels of 16, 16 and 8
    ([300, 40, 10], "softmax", 37),
    # a weight gradient summed over 1000 rows (dW[0]: 20 x 8, k = 1000 in four blocks)
    # on top of the L2 penalty: the blocks continue each FMA chain through C
    ([20, 8, 3], "identity", 1000),
    # weight gradients of a minibatch of a large layer (cffnn_gradient_gemm_pays): dW[0]
    # in two tasks of 150 rows, whose 130 columns (8 panels of 16 and a masked one of 2)
    # are 520 bytes apart, so that each full panel of delta is packed first; 200 rows
    # in one k block, on top of the L2 penalty
    ([300, 130, 10], "softmax", 200),
    # float64: dW[0] in two tasks of 112 rows, over rows of delta 64 doubles (512 bytes)
    # apart, so that the small product packs its panels of 8 columns
    ([200, 64, 3], "softmax", 100),
])
# the kernel adds a forward product's bias in its registers (and, for relu, applies the
# activation there too); gelu keeps A for its derivative, so only its bias is fused
@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_small_product_kernel_and_blas_agree(sizes, output, n_rows, activation, dtype):
    """The same network through include/cffnn/smallgemm.h and through BLAS
    (set_small_gemm(False)): equal to rounding, and the switch is restored."""
    from cffnn import _kernels
    rng = np.random.default_rng(3)
    net = network(sizes, activation=activation, output=output, dtype=dtype,
                  random_state=3)
    X = sample_features(net, n_rows, rng)
    if output == "softmax":
        y = rng.integers(0, sizes[-1], n_rows)
    else:
        y = rng.normal(size=(n_rows, sizes[-1])).astype(dtype)
    results = {}
    for enabled in (True, False):
        previous = _kernels.set_small_gemm(enabled)
        try:
            results[enabled] = (net.forward(X), *net.loss_and_gradient(X, y, alpha=0.1))
        finally:
            _kernels.set_small_gemm(previous)
    assert _kernels.set_small_gemm(True) is True
    for kernel, blas in zip(results[True], results[False]):
        assert rel_err(np.asarray(kernel), np.asarray(blas)) <= (
            1e-5 if dtype == np.float32 else 1e-12)
