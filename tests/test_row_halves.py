"""A few rows of a large network: layers 0 and 1 in halves, the second half on the
helper thread of include/cffnn/helper.h when n_threads > 1 (cffnn/_kernels.pyx,
first_layers_in_halves).

Whether the helper takes part must never change a result: one thread and two give the
same bits, and both agree with the NumPy reference. The networks here have twice the
weights the cut needs (row_split_column: 128 KB in layers 0 and 1)."""
import sys

import numpy as np
import pytest

from cffnn import _kernels, check_gradient
from _testing import (HIDDEN_ACTIVATIONS, OUTPUT_LOSS_PAIRS, PAIR_IDS,
                      forward_in_threads_matches, helper_can_run, helper_takes_part,
                      make_targets, network, reference_results, rel_err,
                      run_in_forked_child, sample_features)

# (n0 + n2) * n1 * itemsize >= 256 KB, and a third layer after the two halves
SIZES = {np.float32: [400, 144, 112, 3], np.float64: [200, 144, 80, 3]}
# a two-layer network: the second half's share is the output layer's logits
TWO_LAYERS = {np.float32: [500, 144, 4], np.float64: [240, 144, 4]}
DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: 1e-4, np.float64: 1e-10}


def rows_of(net, rng, n_rows):
    X = rng.normal(size=(n_rows, net.layer_sizes[0]))
    X[:, ::3] = 0          # zeros: rowkernel.h's list of the rows of W it uses
    return np.ascontiguousarray(X.astype(net.dtype))


def forward_twice(net, X):
    """(one thread, two threads) outputs of the edge's path for a few rows, the second
    after a call that starts the helper and warms it (helper.h starts it on the second
    of two calls in quick succession)."""
    one = net._compiled.forward_few_rows(X, 1)
    for _ in range(3):
        two = net._compiled.forward_few_rows(X, 2)
    return one, two


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("output", ["identity", "logistic", "softmax"])
def test_one_thread_and_two_give_the_same_bits(dtype, activation, output):
    rng = np.random.default_rng(7)
    for sizes in (SIZES[dtype], TWO_LAYERS[dtype]):
        net = network(sizes, activation=activation, output=output, dtype=dtype)
        for n_rows in (1, 2, 3, 4):
            X = rows_of(net, rng, n_rows)
            one, two = forward_twice(net, X)
            assert one.dtype == dtype
            np.testing.assert_array_equal(one, two)
            # the public call, and the general path behind Python's checks, agree
            np.testing.assert_array_equal(net.forward(X, n_threads=2), one)
            np.testing.assert_array_equal(net._forward_checked(X, 2), one)
            np.testing.assert_array_equal(net._forward_checked(X, 1), one)
            expected, _, _ = reference_results(net, X, np.zeros((n_rows, sizes[-1])))
            assert rel_err(one, expected) <= TOLERANCE[dtype]


def dense_rows(net, rng, n_rows):
    return rng.normal(size=(n_rows, net.layer_sizes[0])).astype(net.dtype)


def test_few_dense_rows_take_smallgemm_where_it_reads_w_fewer_times():
    """few_rows_by_gemm: 3 or 4 float32 rows whose reads of W through rowkernel.h add up
    to more than two dense rows' go through smallgemm.h instead (W read once); fewer or
    sparser rows stay with rowkernel.h; never float64, nor a layer 1 under 16 wide, nor
    without smallgemm.h (no AVX2/FMA)."""
    rng = np.random.default_rng(8)
    net = network(SIZES[np.float32], dtype=np.float32)
    takes = net._compiled.few_rows_take_gemm
    if not _kernels.small_gemm_available():
        assert not takes(dense_rows(net, rng, 4))
        return
    assert [takes(dense_rows(net, rng, n)) for n in (1, 2, 3, 4)] == [False, False, True,
                                                                      True]
    half_zeros = dense_rows(net, rng, 4)
    half_zeros[:, ::2] = 0                                  # two dense rows' reads
    assert not takes(half_zeros)
    assert not takes(rows_of(net, rng, 3))                  # a third 0: 3 x 2/3 rows
    assert takes(rows_of(net, rng, 4))
    net64 = network(SIZES[np.float64], dtype=np.float64)
    assert not net64._compiled.few_rows_take_gemm(dense_rows(net64, rng, 4))
    narrow = network(TWO_LAYERS[np.float32], dtype=np.float32)          # n2 = 4
    assert not narrow._compiled.few_rows_take_gemm(dense_rows(narrow, rng, 4))


@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("output", ["identity", "logistic", "softmax"])
def test_dense_rows_through_smallgemm_give_the_same_bits_on_one_thread_and_two(
        activation, output):
    """Layer 0 in one product on one thread, in two halves of columns on two (the
    helper's through smallgemm.h too): the same sums per column."""
    rng = np.random.default_rng(9)
    net = network(SIZES[np.float32], activation=activation, output=output,
                  dtype=np.float32)
    for n_rows in (3, 4):
        X = dense_rows(net, rng, n_rows)
        one, two = forward_twice(net, X)
        np.testing.assert_array_equal(one, two)
        np.testing.assert_array_equal(net.forward(X, n_threads=2), one)
        expected, _, _ = reference_results(net, X, np.zeros((n_rows, 3)))
        assert rel_err(one, expected) <= TOLERANCE[np.float32]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("output", ["identity", "logistic", "softmax"])
def test_five_or_six_rows_give_the_same_bits_on_one_thread_and_two(dtype, activation,
                                                                   output):
    """5-6 float32 rows share layer 0's columns with the helper (layer0_column_split):
    each column is summed as in one call, so the bits are one thread's."""
    rng = np.random.default_rng(10)
    net = network(SIZES[dtype], activation=activation, output=output, dtype=dtype)
    for n_rows in (5, 6):
        for X in (dense_rows(net, rng, n_rows), rows_of(net, rng, n_rows)):
            one = net.forward(X, n_threads=1)
            for _ in range(3):
                np.testing.assert_array_equal(net.forward(X, n_threads=2), one)
            expected, _, _ = reference_results(net, X, np.zeros((n_rows, 3)))
            assert rel_err(one, expected) <= TOLERANCE[dtype]


@pytest.mark.skipif(not helper_can_run(),
                    reason="helper.h's thread exists on Linux with 2 usable cores or more")
def test_the_helper_takes_layer_0_columns_of_six_rows_in_a_loop_of_calls():
    if not _kernels.small_gemm_available():
        pytest.skip("the columns are cut only where smallgemm.h runs (AVX2, FMA)")
    net = network(SIZES[np.float32], activation="relu", dtype=np.float32)
    X = dense_rows(net, np.random.default_rng(11), 6)
    expected = net.forward(X, n_threads=1)

    def call():
        np.testing.assert_array_equal(net.forward(X, n_threads=2), expected)
    assert helper_takes_part(call)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output, loss", OUTPUT_LOSS_PAIRS, ids=PAIR_IDS)
def test_loss_and_gradient_of_a_few_rows_match_the_reference(dtype, output, loss):
    """The loss (on two threads when asked) and the training path (on one) cut the
    network the same way; gelu keeps the pre-activations of both halves."""
    rng = np.random.default_rng(3)
    for activation in ("gelu", "tanh"):
        net = network(SIZES[dtype], activation=activation, output=output, loss=loss,
                      dtype=dtype)
        for n_rows in (1, 4):
            X = rows_of(net, rng, n_rows)
            Y, Y_matrix = make_targets(output, loss, n_rows, net.layer_sizes[-1], rng)
            _, expected_loss, expected_grad = reference_results(net, X, Y_matrix)
            losses = [net.loss(X, Y, n_threads=t) for t in (1, 2, 2)]
            assert losses[0] == losses[1] == losses[2]
            assert rel_err(losses[0], expected_loss) <= TOLERANCE[dtype]
            value, grad = net.loss_and_gradient(X, Y, n_threads=2)
            assert rel_err(value, expected_loss) <= TOLERANCE[dtype]
            assert rel_err(grad, expected_grad) <= 10 * TOLERANCE[dtype]


def test_gradient_through_the_halves_matches_finite_differences():
    rng = np.random.default_rng(5)
    net = network([96, 256, 32, 2], activation="gelu", output="softmax")   # 320 KB
    X = sample_features(net, 3, rng)
    Y, _ = make_targets("softmax", "log_loss", 3, 2, rng)
    assert check_gradient(net, X, Y, alpha=1e-3) <= 1e-6


@pytest.mark.skipif(not helper_can_run(),
                    reason="helper.h's thread exists on Linux with 2 usable cores or more")
def test_the_helper_thread_takes_halves_in_a_loop_of_calls():
    """In a loop of one-row calls the helper spins between them and takes the second
    half of most (a loaded machine may keep it from some, never from all)."""
    rng = np.random.default_rng(1)
    net = network(SIZES[np.float32], activation="relu", dtype=np.float32)
    X = rows_of(net, rng, 1)
    expected = net._compiled.forward_few_rows(X, 1)

    def call():
        np.testing.assert_array_equal(net._compiled.forward_few_rows(X, 2), expected)
    assert helper_takes_part(call)


def test_threads_calling_at_once_get_their_own_results():
    """One caller holds the helper at a time; the others run both halves themselves."""
    rng = np.random.default_rng(2)
    net = network(SIZES[np.float32], activation="tanh", dtype=np.float32)
    X = rows_of(net, rng, 32)
    inputs = [X[i:i + 1 + i % 4] for i in range(28)]          # 1-4 rows each
    expected = [net.forward(rows, n_threads=1) for rows in inputs]
    assert forward_in_threads_matches(net, inputs, expected, rounds=12, repeats=5)


def _forward_in_child(queue):
    net = network(SIZES[np.float64], activation="relu", dtype=np.float64)
    X = rows_of(net, np.random.default_rng(4), 1)
    results = [net._compiled.forward_few_rows(X, 2) for _ in range(200)]
    queue.put(all(np.array_equal(r, net._compiled.forward_few_rows(X, 1)) for r in results))


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method: Linux")
def test_a_forked_child_starts_its_own_helper():
    """A thread does not survive fork(): the child must not wait for the parent's."""
    net = network(SIZES[np.float64], activation="relu", dtype=np.float64)
    X = rows_of(net, np.random.default_rng(4), 1)
    for _ in range(50):                        # the parent's helper is running now
        net._compiled.forward_few_rows(X, 2)
    assert run_in_forked_child(_forward_in_child)
