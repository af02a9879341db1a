"""Batches of one or two blocks on two threads: the helper thread of
include/cffnn/helper.h takes the second of two blocks, or the second half of the rows
of one block (float32, every product in smallgemm.h), when n_threads > 1
(cffnn/_kernels.pyx, helper_split_row and forward_in_halves).

Whether the helper takes part must never change a result: one thread and two give the
same bits, and both agree with the NumPy reference."""
import numpy as np
import pytest

from cffnn import _kernels
from _testing import (HIDDEN_ACTIVATIONS, forward_in_threads_matches, helper_can_run,
                      helper_takes_part, make_targets, network, reference_results, rel_err,
                      sample_features)

TOLERANCE = {np.float32: 1e-4, np.float64: 1e-10}
# 21568 multiply-adds a row: a large network's blocks (64 rows), so up to 64 rows are
# one block, cut in two rows (float32, from 13 rows), and 65-128 rows are two blocks
ONE_BLOCK = [300, 64, 32, 10]
# the same with one output (smallgemm.h's dot products) and with three (BLAS: no cut of
# one block's rows, but two blocks still go to two threads)
ONE_OUTPUT = [300, 64, 32, 1]
THREE_OUTPUTS = [300, 64, 32, 3]
# 8832 multiply-adds a row: a small network, whose batch of 32 rows or more is two blocks
SMALL = [64, 64, 64, 10]
BATCHES = (13, 32, 64, 65, 100, 128)
# 119424 multiply-adds a row: from 5 rows on, cut in two (halves of 3 rows and less go
# through GEMM as the whole batch does, not rowkernel.h)
WIDE = [400, 256, 64, 10]
FEW = (5, 6, 7, 9)
# 234752 multiply-adds a row: two even blocks of 96-128 rows are 22-30M multiply-adds,
# which the helper takes too (BATCH_SPLIT_MAX_MACS), not an OpenMP team
LARGE = [784, 256, 128, 10]
LARGE_BATCHES = (96, 128)


def forward_on_two_threads(net, X):
    """Outputs of three calls on two threads: the first starts or wakes the helper
    (helper.h does so on the second of two calls in quick succession)."""
    return [net.forward(X, n_threads=2) for _ in range(3)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("output", ["identity", "logistic", "softmax"])
def test_one_thread_and_two_give_the_same_bits(dtype, activation, output):
    rng = np.random.default_rng(11)
    one_output = [ONE_OUTPUT] if output != "softmax" else []   # softmax needs 2 or more
    layouts = [(sizes, BATCHES) for sizes in [ONE_BLOCK, THREE_OUTPUTS, SMALL] + one_output]
    for sizes, batches in layouts + [(WIDE, FEW), (LARGE, LARGE_BATCHES)]:
        net = network(sizes, activation=activation, output=output, dtype=dtype)
        for n_rows in batches:
            X = sample_features(net, n_rows, rng)
            one = net.forward(X, n_threads=1)
            assert one.dtype == dtype
            for two in forward_on_two_threads(net, X):
                np.testing.assert_array_equal(two, one)
            expected, _, _ = reference_results(net, X, np.zeros((n_rows, sizes[-1])))
            assert rel_err(one, expected) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("output, loss", [("softmax", "log_loss"),
                                          ("identity", "squared_error")])
def test_the_loss_of_two_blocks_is_the_same_on_two_threads(dtype, output, loss):
    """The helper's block's loss is added after the caller's, as on one thread."""
    rng = np.random.default_rng(12)
    for sizes in (ONE_BLOCK, SMALL):
        net = network(sizes, activation="tanh", output=output, loss=loss, dtype=dtype)
        for n_rows in (65, 100, 128):
            X = sample_features(net, n_rows, rng)
            Y, Y_matrix = make_targets(output, loss, n_rows, sizes[-1], rng)
            weights = rng.uniform(0.5, 2.0, size=n_rows)
            for sample_weight in (None, weights):
                one = net.loss(X, Y, sample_weight=sample_weight, n_threads=1)
                twos = [net.loss(X, Y, sample_weight=sample_weight, n_threads=2)
                        for _ in range(3)]
                assert twos == [one] * 3
            _, expected, _ = reference_results(net, X, Y_matrix)
            assert rel_err(net.loss(X, Y, n_threads=2), expected) <= TOLERANCE[dtype]
            # the estimators' validation pass: output and loss of one forward pass
            out, value = net._output_and_loss(X, Y, n_threads=2)
            np.testing.assert_array_equal(out, net.forward(X, n_threads=1))
            assert value == net.loss(X, Y, n_threads=1)


@pytest.mark.skipif(not helper_can_run(),
                    reason="helper.h's thread exists on Linux with 2 usable cores or more")
@pytest.mark.parametrize("sizes, n_rows", [(ONE_BLOCK, 32), (SMALL, 100), (LARGE, 128)],
                         ids=["rows of one block", "two blocks",
                              "two blocks of a large network"])
def test_the_helper_thread_takes_halves_in_a_loop_of_calls(sizes, n_rows):
    """In a loop of batch calls the helper spins between them and takes the second half
    of most (a loaded machine may keep it from some, never from all). One block's rows
    are cut only where smallgemm.h computes every product (AVX2 and FMA)."""
    if sizes is ONE_BLOCK and not _kernels.small_gemm_available():
        pytest.skip("one block's rows are cut only where smallgemm.h runs (AVX2, FMA)")
    net = network(sizes, activation="relu", dtype=np.float32)
    X = sample_features(net, n_rows, np.random.default_rng(13))
    expected = net.forward(X, n_threads=1)

    def call():
        np.testing.assert_array_equal(net.forward(X, n_threads=2), expected)
    assert helper_takes_part(call)


def test_threads_calling_at_once_get_their_own_results():
    """One caller holds the helper at a time; the others run both halves themselves."""
    rng = np.random.default_rng(14)
    net = network(ONE_BLOCK, activation="gelu", dtype=np.float32)
    X = sample_features(net, 128, rng)
    inputs = [X[:13 + 5 * i] for i in range(24)]          # 13 .. 128 rows
    expected = [net.forward(rows, n_threads=1) for rows in inputs]
    assert forward_in_threads_matches(net, inputs, expected, repeats=3)
