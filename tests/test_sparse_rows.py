"""Forward products of float32 rows with many zeros skip them, in pairs of rows
(include/cffnn/sparserows.h): the results are the bits of the dense kernel, the skipping
happens where inputs are mostly zeros, and not where they have few. (Epochs with and
without it, on 1 and 2 threads: test_sparse_gemm.py.)"""
import numpy as np
import pytest

import cffnn
from cffnn import _kernels, reference

from _testing import as_float64, forward_in_threads_matches, rel_err
from test_sparse_gemm import image_like

pytestmark = pytest.mark.skipif(not _kernels.small_gemm_available(),
                                reason="smallgemm.h's kernel needs AVX2 and FMA")


@pytest.fixture(autouse=True)
def skipping_back_on():
    yield
    _kernels.set_sparse_gemm(True)


def forward_both_ways(net, X):
    """(output with skipping, output without, products that skipped zeros)."""
    _kernels.set_sparse_gemm(True)
    before = _kernels.sparse_products()
    skipping = net.forward(X, n_threads=1)
    skipped = _kernels.sparse_products() - before
    _kernels.set_sparse_gemm(False)
    dense = net.forward(X, n_threads=1)
    return skipping, dense, skipped


def reference_error(net, X, output):
    """rel_err of output against the NumPy reference's forward pass, in float64."""
    weights, biases = as_float64(net)
    expected = reference.forward(weights, biases, X.astype(np.float64), net.activations,
                                 net.output)
    return rel_err(output, expected)


# (layer sizes, rows): the first layer's product of at least 2^20 multiply-adds with
# whole panels of 32 columns; an odd row count leaves a last row without a partner;
# k = 100 and 780 end in a part group of p (100 = 12 x 8 + 4)
CASES = [([784, 256, 10], 64), ([784, 256, 10], 9), ([100, 384, 3], 37),
         ([780, 64, 5], 63), ([784, 32, 2], 48)]
CASE_IDS = [f"{'-'.join(map(str, sizes))}-x{rows}" for sizes, rows in CASES]


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("sizes, rows", CASES, ids=CASE_IDS)
def test_skipping_zeros_gives_the_same_bits(sizes, rows, activation):
    rng = np.random.default_rng(rows)
    net = cffnn.Network(sizes, activation=activation, dtype=np.float32, random_state=1)
    net.biases[0][:] = rng.normal(size=sizes[1])
    X = image_like(rows, sizes[0], rng, np.float32)
    skipping, dense, skipped = forward_both_ways(net, X)
    assert skipped >= 1
    np.testing.assert_array_equal(skipping, dense)
    assert reference_error(net, X, skipping) <= 1e-5


def test_hidden_relu_outputs_skip_too():
    """The zeros a ReLU layer makes are skipped in the next layer's product as well."""
    rng = np.random.default_rng(3)
    net = cffnn.Network([64, 256, 128, 4], activation="relu", dtype=np.float32,
                        random_state=2)
    X = rng.normal(size=(64, 64)).astype(np.float32)     # no zeros: only layer 1 skips
    skipping, dense, skipped = forward_both_ways(net, X)
    assert skipped == 1
    np.testing.assert_array_equal(skipping, dense)


def test_non_finite_activations_propagate_as_in_the_dense_product():
    """Infinities count as not 0: X is checked for them at the edge, but a layer's
    outputs can overflow, and the next product (whose infinities and NaN the ReLU after
    it makes inf and 0) then gives what the dense kernel gives."""
    rng = np.random.default_rng(4)
    net = cffnn.Network([784, 256, 128, 3], activation="relu", dtype=np.float32,
                        random_state=0)
    net.weights[0][:, :40] = 3e38          # units 0-39 of layer 0 overflow to inf
    X = image_like(40, 784, rng, np.float32)
    skipping, dense, skipped = forward_both_ways(net, X)
    assert skipped >= 2
    np.testing.assert_array_equal(skipping, dense)


@pytest.mark.parametrize("sizes, rows, dtype", [
    ([784, 250, 10], 64, np.float32),       # columns that do not fill panels of 32
    ([64, 64, 10], 64, np.float32),         # under 2^20 multiply-adds
    ([784, 256, 10], 4, np.float32),        # rows few enough for rowkernel.h
    ([784, 256, 10], 64, np.float64),       # float64 has no such path
])
def test_products_outside_its_bounds_take_the_dense_kernel(sizes, rows, dtype):
    rng = np.random.default_rng(5)
    net = cffnn.Network(sizes, activation="tanh", dtype=dtype, random_state=0)
    X = image_like(rows, sizes[0], rng, dtype)
    skipping, dense, skipped = forward_both_ways(net, X)
    assert skipped == 0
    np.testing.assert_array_equal(skipping, dense)


def test_inputs_with_few_zeros_take_the_dense_kernel():
    rng = np.random.default_rng(6)
    net = cffnn.Network([784, 256, 10], activation="tanh", dtype=np.float32,
                        random_state=0)
    X = rng.uniform(0.1, 1.0, size=(64, 784)).astype(np.float32)
    X[rng.uniform(size=X.shape) < 0.05] = 0
    skipping, dense, skipped = forward_both_ways(net, X)
    assert skipped == 0
    np.testing.assert_array_equal(skipping, dense)


def test_blocks_of_many_rows_skip_in_chunks_of_64():
    """A block of more than 64 rows (a large batch's) goes 64 rows at a time through the
    same kernel when its first 64 rows have enough zeros, so each row's output has the
    bits of a forward pass of 64 rows; without skipping, BLAS does the block."""
    rng = np.random.default_rng(8)
    net = cffnn.Network([784, 256, 10], activation="relu", dtype=np.float32,
                        random_state=0)
    X = image_like(1100, 784, rng, np.float32)      # blocks of 192 rows (the last 140)
    X[1024:] = rng.uniform(0.1, 1.0, size=(76, 784))   # the last block's later chunks
    skipping, dense, skipped = forward_both_ways(net, X)   # have no zeros: dense tiles
    assert skipped == 16
    for start in range(0, 1100, 64):
        stop = min(start + 64, (start // 192 + 1) * 192, 1100)
        np.testing.assert_array_equal(skipping[start:stop],
                                      net.forward(X[start:stop], n_threads=1))
    assert rel_err(skipping, dense) <= 1e-5
    assert reference_error(net, X, skipping) <= 1e-5


def test_blocks_without_zeros_stay_with_blas():
    rng = np.random.default_rng(9)
    net = cffnn.Network([784, 256, 10], activation="tanh", dtype=np.float32,
                        random_state=0)
    X = rng.uniform(0.1, 1.0, size=(1100, 784)).astype(np.float32)
    skipping, dense, skipped = forward_both_ways(net, X)
    assert skipped == 0
    np.testing.assert_array_equal(skipping, dense)


def test_python_threads_each_with_their_scratch_agree():
    """Each thread (Python's, the OpenMP team's, the helper) builds its masks and packs W
    in a scratch buffer of its own: forwards of image batches of 40-1100 rows from 4
    Python threads at once, 2 threads each, equal their serial outputs."""
    rng = np.random.default_rng(10)
    net = cffnn.Network([784, 256, 128, 10], dtype=np.float32, random_state=0)
    inputs = [image_like(rows, 784, rng, np.float32) for rows in (40, 64, 130, 1100)]
    expected = [net.forward(X, n_threads=2) for X in inputs]
    before = _kernels.sparse_products()
    assert forward_in_threads_matches(net, inputs, expected, rounds=4)
    assert _kernels.sparse_products() > before
