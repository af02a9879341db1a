"""Weight gradients skip the samples in which a tile of inputs is all 0
(include/cffnn/smallgemm.h, cffnn_small_gemm_sparse): the results are the bits of the
plain loop, the skipping does happen where inputs have such zeros, and not where they
have none."""
import numpy as np
import pytest

import cffnn
from cffnn import _kernels

from _testing import reference_results, rel_err

pytestmark = pytest.mark.skipif(not _kernels.small_gemm_available(),
                                reason="smallgemm.h's kernel needs AVX2 and FMA")

# (layer sizes, batch rows): float32 weight gradients of at least 2^20 multiply-adds a
# task (smallgemm.h's CFFNN_SPARSE_MIN_MACS), with tiles of 4 rows at the end (160 inputs
# in tasks of 80 rows: 6 x 12 + 4 + 4; 784 in one task, 6 x 130 + 4, or in tasks of 160,
# 6 x 26 + 4), 256 samples (a whole k block), and masked column panels (70 and 100
# outputs: 4 x 16 + 6, 6 x 16 + 4)
CASES = [
    ([160, 70, 3], 200),
    ([300, 70, 3], 256),
    ([784, 100, 10], 64),
    ([784, 256, 10], 128),
]
CASE_IDS = [f"{'-'.join(map(str, sizes))}-x{rows}" for sizes, rows in CASES]


@pytest.fixture(autouse=True)
def skipping_back_on():
    yield
    _kernels.set_sparse_gemm(True)


def image_like(n_rows, n_features, rng, dtype):
    """Rows that are 0 outside a window of features (as an image's background), with
    a few more zeros inside it and two features 0 in every row."""
    X = rng.uniform(0.05, 1.0, size=(n_rows, n_features))
    for row in X:
        start = rng.integers(0, n_features // 2)
        row[:start] = 0
        row[start + rng.integers(n_features // 5, n_features // 2):] = 0
    X[rng.uniform(size=X.shape) < 0.1] = 0
    X[:, [3, n_features - 2]] = 0
    return X.astype(dtype)


def gradients_both_ways(net, X, Y, **kwargs):
    """(loss, grad) with skipping, (loss, grad) without, and how many products skipped."""
    _kernels.set_sparse_gemm(True)
    before = _kernels.sparse_products()
    with_skipping = net.loss_and_gradient(X, Y, **kwargs)
    skipped = _kernels.sparse_products() - before
    _kernels.set_sparse_gemm(False)
    without = net.loss_and_gradient(X, Y, **kwargs)
    return with_skipping, without, skipped


@pytest.mark.parametrize("sizes, rows", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("alpha, weighted", [(0.0, False), (0.3, True)])
def test_skipping_zeros_gives_the_same_bits(sizes, rows, alpha, weighted):
    rng = np.random.default_rng(rows)
    net = cffnn.Network(sizes, activation="tanh", dtype=np.float32, random_state=1)
    X = image_like(rows, sizes[0], rng, np.float32)
    labels = rng.integers(0, sizes[-1], rows)
    weights = rng.uniform(0.5, 2.0, rows) if weighted else None
    (loss, grad), (loss_plain, grad_plain), skipped = gradients_both_ways(
        net, X, labels, alpha=alpha, sample_weight=weights, n_threads=1)
    assert skipped >= 1
    assert loss == loss_plain
    np.testing.assert_array_equal(grad, grad_plain)
    _, _, expected = reference_results(net, X, np.eye(sizes[-1])[labels], alpha, weights)
    assert rel_err(grad, expected) <= 1e-4


def test_small_products_and_float64_take_the_plain_loop():
    """Below 2^20 multiply-adds (and so in float64, whose products here are the small
    ones) the scan would cost more than it saves."""
    rng = np.random.default_rng(1)
    for sizes, rows, dtype in (([64, 64, 3], 64, np.float32), ([50, 64, 3], 64, np.float64),
                               ([784, 256, 10], 128, np.float64)):
        net = cffnn.Network(sizes, dtype=dtype, random_state=0)
        X = image_like(rows, sizes[0], rng, dtype)
        _, _, skipped = gradients_both_ways(net, X, rng.integers(0, 3, rows), n_threads=1)
        assert skipped == 0


def test_inputs_without_zeros_take_the_plain_loop():
    """The scan for zeros gives up after the first tile of a dense input."""
    rng = np.random.default_rng(0)
    net = cffnn.Network([784, 256, 10], dtype=np.float32, random_state=0)
    X = rng.uniform(0.1, 1.0, size=(128, 784)).astype(np.float32)
    labels = rng.integers(0, 10, 128)
    (_, grad), (_, grad_plain), skipped = gradients_both_ways(net, X, labels, n_threads=1)
    assert skipped == 0
    np.testing.assert_array_equal(grad, grad_plain)


def test_features_zero_in_every_row_give_zero_gradient_rows():
    """A tile with no sample to take leaves its rows of dW at 0 (plus the penalty)."""
    rng = np.random.default_rng(2)
    net = cffnn.Network([300, 70, 3], dtype=np.float32, random_state=0)
    X = image_like(256, 300, rng, np.float32)
    X[:, 12:30] = 0
    labels = rng.integers(0, 3, 256)
    (_, grad), (_, grad_plain), skipped = gradients_both_ways(net, X, labels, n_threads=1)
    assert skipped >= 1
    dW1 = grad[:300 * 70].reshape(300, 70)
    assert not dW1[12:30].any()
    np.testing.assert_array_equal(grad, grad_plain)


@pytest.mark.parametrize("sizes, rows, batch_size", [
    ([300, 70, 3], 600, 200),
    ([784, 256, 128, 10], 512, 128),   # forward products skip too (sparserows.h)
])
def test_epochs_with_skipping_match_without_and_across_threads(sizes, rows, batch_size):
    rng = np.random.default_rng(5)
    X = image_like(rows, sizes[0], rng, np.float32)
    labels = rng.integers(0, sizes[-1], rows)
    results = {}
    for skipping, n_threads in ((True, 1), (True, 2), (False, 1)):
        _kernels.set_sparse_gemm(skipping)
        before = _kernels.sparse_products()
        net = cffnn.Network(sizes, dtype=np.float32, random_state=3)
        optimizer = cffnn.Adam(0.01)
        for epoch in range(2):
            net.fit_epoch(X, labels, optimizer, batch_size=batch_size, random_state=epoch,
                          n_threads=n_threads)
        results[skipping, n_threads] = net.params
        assert (_kernels.sparse_products() > before) == skipping
    np.testing.assert_array_equal(results[True, 1], results[True, 2])
    np.testing.assert_array_equal(results[True, 1], results[False, 1])


def test_python_threads_each_with_their_scratch_agree():
    """Each thread lists and packs into a scratch buffer of its own (smallgemm.h's
    cffnn_thread_scratch): gradients computed on 4 Python threads at once, some of them
    threads that end and new ones that start, equal the serial result."""
    from concurrent.futures import ThreadPoolExecutor
    rng = np.random.default_rng(7)
    net = cffnn.Network([784, 256, 10], dtype=np.float32, random_state=0)
    batches = [(image_like(128, 784, rng, np.float32), rng.integers(0, 10, 128))
               for _ in range(6)]
    expected = [net.loss_and_gradient(X, labels, n_threads=1)[1] for X, labels in batches]
    before = _kernels.sparse_products()
    for _ in range(3):
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda batch: net.loss_and_gradient(*batch,
                                                                        n_threads=1)[1],
                                    batches * 2))
        for got, want in zip(results, expected * 2):
            np.testing.assert_array_equal(got, want)
    assert _kernels.sparse_products() - before >= 36
