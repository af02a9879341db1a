"""What the caller passes: sample weights, memory layouts, target encodings, thread
counts. Results must not depend on how an input is laid out in memory or on the number
of threads, and the caller's arrays must never be written to."""
import subprocess
import sys

import numpy as np
import pytest

from _testing import OUTPUT_LOSS_PAIRS, PAIR_IDS, make_targets, network

DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]
RTOL = {np.float64: 1e-12, np.float32: 1e-5}


def _problem(output="softmax", loss=None, dtype=np.float64, n_samples=30, seed=0,
             sizes=(6, 10, 4), activation="tanh"):
    rng = np.random.default_rng(seed)
    net = network(list(sizes), activation=activation, output=output, loss=loss,
                  dtype=dtype, random_state=seed)
    X = rng.normal(size=(n_samples, sizes[0]))
    Y, _ = make_targets(output, net.loss_name, n_samples, sizes[-1], rng)
    sample_weight = rng.uniform(0.5, 2.0, n_samples)
    return net, X, Y, sample_weight


def _all_results(net, X, Y, sample_weight=None, alpha=0.1, n_threads=None):
    value, grad = net.loss_and_gradient(X, Y, alpha=alpha, sample_weight=sample_weight,
                                        n_threads=n_threads)
    return (net.forward(X, n_threads=n_threads),
            net.loss(X, Y, alpha=alpha, sample_weight=sample_weight, n_threads=n_threads),
            value, grad)


def _assert_results_close(actual, expected, rtol):
    output, loss, loss2, grad = actual
    np.testing.assert_allclose(output, expected[0], rtol=rtol, atol=0)
    assert loss == pytest.approx(expected[1], rel=rtol)
    assert loss2 == pytest.approx(expected[2], rel=rtol)
    np.testing.assert_allclose(grad, expected[3], rtol=rtol,
                               atol=rtol * np.max(np.abs(expected[3])))


# -- sample weights ------------------------------------------------------------------

@pytest.mark.parametrize("output, loss", OUTPUT_LOSS_PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_integer_sample_weights_equal_repeated_rows(dtype, output, loss):
    net, X, Y, _ = _problem(output, loss, dtype, n_samples=200)
    counts = np.random.default_rng(1).integers(0, 4, 200)    # zeros drop rows
    X_repeated, Y_repeated = np.repeat(X, counts, axis=0), np.repeat(Y, counts, axis=0)
    for alpha in (0.0, 0.5):
        weighted = net.loss_and_gradient(X, Y, alpha=alpha, sample_weight=counts)
        repeated = net.loss_and_gradient(X_repeated, Y_repeated, alpha=alpha)
        assert weighted[0] == pytest.approx(repeated[0], rel=RTOL[dtype])
        assert net.loss(X, Y, alpha=alpha, sample_weight=counts) == \
            pytest.approx(net.loss(X_repeated, Y_repeated, alpha=alpha), rel=RTOL[dtype])
        np.testing.assert_allclose(weighted[1], repeated[1], rtol=0,
                                   atol=RTOL[dtype] * np.max(np.abs(repeated[1])))


def test_unit_sample_weights_equal_no_sample_weights():
    net, X, Y, _ = _problem(n_samples=100)
    ones = np.ones(100)
    assert net.loss(X, Y, alpha=0.2, sample_weight=ones) == net.loss(X, Y, alpha=0.2)
    weighted, unweighted = (net.loss_and_gradient(X, Y, alpha=0.2, sample_weight=ones),
                            net.loss_and_gradient(X, Y, alpha=0.2))
    assert weighted[0] == unweighted[0]
    np.testing.assert_array_equal(weighted[1], unweighted[1])


@pytest.mark.parametrize("scale", [3.0, 1e-150, 1e150])
def test_data_loss_invariant_to_rescaled_sample_weights(scale):
    """Without a penalty, s and c*s (or the scalar c) give one loss and gradient: the
    weights are normalised by their sum. (The penalty is divided by sum(s), so it does
    change with c.)"""
    net, X, Y, sample_weight = _problem(n_samples=50)
    expected = net.loss_and_gradient(X, Y, sample_weight=sample_weight)
    scaled = net.loss_and_gradient(X, Y, sample_weight=scale * sample_weight)
    assert scaled[0] == pytest.approx(expected[0], rel=1e-12)
    np.testing.assert_allclose(scaled[1], expected[1], rtol=0,
                               atol=1e-12 * np.max(np.abs(expected[1])))
    assert net.loss(X, Y, sample_weight=scale) == pytest.approx(net.loss(X, Y), rel=1e-12)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("weight", [1e306, 5e-321], ids=["sum_overflows", "subnormal"])
def test_extreme_but_valid_sample_weights_are_not_silently_wrong(weight):
    """Equal finite positive weights are equivalent to no weights. When their sum
    overflows (1000 x 1e306) or its inverse does (subnormal weights), the loss must
    still be right, or the weights rejected with a ValueError; not 0 or NaN."""
    net, X, Y, _ = _problem(n_samples=1000)
    expected_loss, expected_grad = net.loss_and_gradient(X, Y)
    sample_weight = np.full(1000, weight)
    try:
        value, grad = net.loss_and_gradient(X, Y, sample_weight=sample_weight)
    except ValueError as error:
        assert "sample_weight" in str(error)
        return
    assert value == pytest.approx(expected_loss, rel=1e-9)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-9, atol=1e-15)


# -- target encodings ----------------------------------------------------------------

@pytest.mark.parametrize("loss", ["log_loss", "squared_error"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_class_indices_equal_one_hot_targets(dtype, loss):
    net, X, labels, _ = _problem("softmax", loss, dtype)
    one_hot = np.eye(4)[labels]
    for as_labels in (labels, labels.astype(np.float64), labels.astype(np.uint8),
                      labels.tolist()):
        assert net.loss(X, as_labels) == net.loss(X, one_hot)
        np.testing.assert_array_equal(net.loss_and_gradient(X, as_labels)[1],
                                      net.loss_and_gradient(X, one_hot)[1])


@pytest.mark.parametrize("output, loss", [("logistic", "binary_log_loss"),
                                          ("identity", "squared_error")])
def test_one_output_takes_1d_targets(output, loss):
    net, X, Y, _ = _problem(output, loss, sizes=(6, 10, 1))
    assert Y.shape == (30, 1)
    assert net.loss(X, Y.ravel()) == net.loss(X, Y)
    np.testing.assert_array_equal(net.loss_and_gradient(X, Y.ravel())[1],
                                  net.loss_and_gradient(X, Y)[1])


# -- memory layouts ------------------------------------------------------------------

def _read_only(a):
    a = a.copy()
    a.setflags(write=False)
    return a


def _row_strided(a):
    wide = np.zeros((2 * a.shape[0],) + a.shape[1:], dtype=a.dtype)
    wide[::2] = a
    return wide[::2]


def _column_strided(a):
    if a.ndim == 1:
        return _row_strided(a)
    wide = np.zeros((a.shape[0], 2 * a.shape[1]), dtype=a.dtype)
    wide[:, ::2] = a
    return wide[:, ::2]


LAYOUTS = {
    "read_only": _read_only,
    "fortran": np.asfortranarray,
    "row_strided": _row_strided,
    "column_strided": _column_strided,
    "reversed": lambda a: np.ascontiguousarray(a[::-1])[::-1],
    "list": lambda a: a.tolist(),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_layout_of_inputs_does_not_change_results(dtype, layout):
    """X, Y and sample_weight as read-only, Fortran, strided, reversed or nested-list
    inputs give the results of C-contiguous arrays (byte order: see below)."""
    net, X, _, sample_weight = _problem("logistic", "binary_log_loss", dtype, n_samples=70)
    Y = np.random.default_rng(5).integers(0, 2, size=(70, 4)).astype(np.float64)
    for X_in in (X, X.astype(dtype)):   # conversion path and no-copy path
        expected = _all_results(net, np.ascontiguousarray(X_in), Y, sample_weight)
        transform = LAYOUTS[layout]
        actual = _all_results(net, transform(X_in), transform(Y), transform(sample_weight))
        _assert_results_close(actual, expected, RTOL[dtype])


def _swap_byte_order(a):
    a = np.asarray(a)
    return a.astype(a.dtype.newbyteorder(">" if a.dtype.isnative else "<"))


@pytest.mark.parametrize("argument", ["X", "Y", "sample_weight"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_non_native_byte_order_input(dtype, argument):
    """An input in the network's own dtype but the other byte order is read by value,
    not by its bytes."""
    net = network([3, 2], output="logistic", dtype=dtype)
    inputs = dict(X=np.array([[1.0, 2.0, 3.0], [0.5, -0.25, 4.0]], dtype=dtype),
                  Y=np.array([[1.0, 0.0], [0.0, 1.0]], dtype=dtype),
                  sample_weight=np.array([1.0, 3.0]))
    swapped = dict(inputs, **{argument: _swap_byte_order(inputs[argument])})
    assert not swapped[argument].dtype.isnative
    if argument == "X":
        np.testing.assert_array_equal(net.forward(swapped["X"]), net.forward(inputs["X"]))
    assert net.loss(**swapped) == net.loss(**inputs)
    value, grad = net.loss_and_gradient(**swapped)
    expected_value, expected_grad = net.loss_and_gradient(**inputs)
    assert value == expected_value
    np.testing.assert_array_equal(grad, expected_grad)


UNALIGNED_SCRIPT = """
import sys
import numpy as np
import cffnn

for dtype in (np.float32, np.float64):
    for n_rows, n_features in [(5, 3), (1000, 64)]:
        net = cffnn.Network([n_features, 300, 4], activation="gelu", dtype=dtype,
                            random_state=0)
        X = np.random.default_rng(0).normal(size=(n_rows, n_features)).astype(dtype)
        raw = np.zeros(X.nbytes + 1, np.uint8)
        X_unaligned = raw[1:].view(dtype).reshape(X.shape)
        X_unaligned[...] = X
        assert not X_unaligned.flags.aligned and X_unaligned.flags.c_contiguous
        labels = np.arange(n_rows) % 4
        for n_threads in (1, 2):
            assert np.array_equal(net.forward(X_unaligned, n_threads=n_threads),
                                  net.forward(X, n_threads=n_threads))
            loss_u, grad_u = net.loss_and_gradient(X_unaligned, labels, n_threads=n_threads)
            loss_a, grad_a = net.loss_and_gradient(X, labels, n_threads=n_threads)
            assert loss_u == loss_a and np.array_equal(grad_u, grad_a)
print("done")
"""


def test_unaligned_input(tmp_path):
    """A C-contiguous X whose data is not aligned to its item size (run in a subprocess:
    an aligned SIMD load on it would crash)."""
    result = subprocess.run([sys.executable, "-X", "faulthandler", "-c", UNALIGNED_SCRIPT],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "done" in result.stdout


def test_memory_mapped_read_only_input(tmp_path):
    net, X, Y, sample_weight = _problem(dtype=np.float32)
    path = tmp_path / "X.npy"
    np.save(path, X.astype(np.float32))
    X_mapped = np.load(path, mmap_mode="r")
    assert not X_mapped.flags.writeable
    _assert_results_close(_all_results(net, X_mapped, Y, sample_weight),
                          _all_results(net, X.astype(np.float32), Y, sample_weight),
                          RTOL[np.float32])


def test_float32_network_converts_float64_input_like_astype():
    net, X, Y, _ = _problem(dtype=np.float32)
    np.testing.assert_array_equal(net.forward(X), net.forward(X.astype(np.float32)))
    assert net.loss(X, Y) == net.loss(X.astype(np.float32), Y)


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_edge_converts_the_other_float_dtype_in_compiled_code(dtype):
    """_kernels.as_ready_matrix: a ready array of the net's dtype comes back itself; one
    of the other float dtype, C-contiguous and native, comes back converted like astype
    (float64 values up to float32's largest included); anything else is left to the full
    checks (None). Rows of the other dtype take the few-rows fast path too."""
    from cffnn._kernels import as_ready_matrix
    other = np.float64 if dtype == np.float32 else np.float32
    typenum = np.dtype(dtype).num
    rng = np.random.default_rng(5)
    X = rng.normal(size=(7, 9)).astype(dtype)
    assert as_ready_matrix(X, typenum, 9) is X
    for source in (X.astype(other), rng.normal(size=(3, 9)),
                   np.full((2, 9), np.finfo(np.float32).max, dtype=other),
                   np.full((2, 9), np.finfo(np.float32).tiny / 3, dtype=other)):
        source = source.astype(other)
        original = source.copy()
        converted = as_ready_matrix(source, typenum, 9)
        assert converted.dtype == dtype and converted.flags.c_contiguous
        assert converted.flags.owndata and not np.shares_memory(converted, source)
        np.testing.assert_array_equal(converted, source.astype(dtype))
        np.testing.assert_array_equal(source, original)
    left_to_the_checks = [X.astype(other)[:, :8], np.asfortranarray(X.astype(other)),
                          X.astype(other).astype(np.dtype(other).newbyteorder()),
                          X.astype(other)[::2], X.astype(np.int64), X.astype(np.float16),
                          X.astype(other)[None], X.astype(other)[0], X.tolist(),
                          np.where(np.eye(7, 9) > 0, np.nan, X).astype(other)]
    if other == np.float64:    # beyond float32: infinite after conversion
        left_to_the_checks.append(np.full((1, 9), 1e39))
    for source in left_to_the_checks:
        assert as_ready_matrix(source, typenum, 9) is None
    # bounds (targets of a log loss) are checked on the source values
    Y = np.array([[0.0, 1.0], [0.25, 0.5]], dtype=other)
    assert as_ready_matrix(Y, typenum, 2, 0.0, 1.0) is not None
    assert as_ready_matrix(Y + 0.75, typenum, 2, 0.0, 1.0) is None
    net = network([9, 16, 3], activation="relu", output="softmax", dtype=dtype)
    for rows in (1, 4):
        rows_of_other_dtype = X[:rows].astype(other)
        np.testing.assert_array_equal(
            net._compiled.forward_few_rows(rows_of_other_dtype, 1),
            net._forward_checked(rows_of_other_dtype.astype(dtype), 1))


# -- the edge's fast path for a few rows (CompiledNetwork.forward_few_rows) ---------

@pytest.mark.parametrize("n_rows", [1, 2, 4, 5])
@pytest.mark.parametrize("dtype", DTYPES)
def test_few_rows_fast_path_equals_general_path(dtype, n_rows):
    """Up to 4 ready rows skip Python's checks (whatever n_threads); the result must be
    the general path's, bit for bit, and every other form of the same rows, converted on
    the general path, must give what the general path gives for them. The result is a
    fresh array of the net's dtype."""
    rng = np.random.default_rng(n_rows)
    net = network([9, 16, 3], activation="relu", output="softmax", dtype=dtype,
                  random_state=1)
    X = np.ascontiguousarray(rng.normal(size=(n_rows, 9)).astype(dtype))
    expected = net._forward_checked(X, 1)             # the general path
    assert (net._compiled.forward_few_rows(X, 1) is None) == (n_rows > 4)
    X_read_only = X.copy()
    X_read_only.flags.writeable = False
    X_strided = np.zeros((n_rows, 18), dtype=dtype)[:, ::2]
    X_strided[...] = X
    forms = [X, X_read_only, np.asfortranarray(X), X_strided, X.astype(np.float64),
             X.astype(np.float32), X.tolist()]
    for form in forms:
        original = np.array(form, copy=True)
        output = net.forward(form)
        assert output.dtype == dtype and output.shape == (n_rows, 3)
        assert output.flags.c_contiguous and output.flags.writeable and output.flags.owndata
        np.testing.assert_array_equal(   # the general path on the same values
            output, net._forward_checked(np.ascontiguousarray(form, dtype=dtype), 1))
        if np.asarray(form).dtype == dtype:
            np.testing.assert_array_equal(output, expected)
        np.testing.assert_array_equal(np.asarray(form), original)
    assert not np.shares_memory(net.forward(X), X)


@pytest.mark.parametrize("bad, match", [
    (np.full((1, 9), np.nan), "NaN or infinity"),
    (np.ones((1, 8)), "8 features"),
    (np.ones(9), "2-D"),
    (np.ones((0, 9)), "no samples"),
    (np.ones((1, 1, 9)), "2-D"),
])
@pytest.mark.parametrize("dtype", DTYPES)
def test_few_rows_fast_path_leaves_bad_rows_to_the_checks(dtype, bad, match):
    net = network([9, 16, 3], activation="relu", output="softmax", dtype=dtype)
    with pytest.raises(ValueError, match=match):
        net.forward(bad.astype(dtype))


# -- the caller's arrays ---------------------------------------------------------------

@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_inputs_and_params_are_never_modified(dtype, n_threads):
    """X, Y (already of the network's dtype and C-contiguous, so passed without a copy),
    sample_weight and the parameters are unchanged by every call."""
    rng = np.random.default_rng(3)
    net = network([20, 300, 4], activation="gelu", output="softmax", dtype=dtype)
    X = rng.normal(size=(1000, 20)).astype(dtype)
    Y = np.eye(4, dtype=dtype)[rng.integers(0, 4, 1000)]
    labels = rng.integers(0, 4, 1000)
    sample_weight = rng.uniform(0, 1, 1000)
    originals = [a.copy() for a in (X, Y, labels, sample_weight, net.params)]
    net.forward(X, n_threads=n_threads)
    for targets in (Y, labels):
        net.loss(X, targets, alpha=0.1, sample_weight=sample_weight, n_threads=n_threads)
        net.loss_and_gradient(X, targets, alpha=0.1, sample_weight=sample_weight,
                              n_threads=n_threads)
    for current, original in zip((X, Y, labels, sample_weight, net.params), originals):
        np.testing.assert_array_equal(current, original)


def test_results_are_fresh_arrays():
    """Outputs do not alias the inputs, the parameters or an earlier call's result."""
    net, X, Y, _ = _problem()
    X = np.ascontiguousarray(X)
    output = net.forward(X)
    _, grad = net.loss_and_gradient(X, Y)
    for result in (output, grad):
        assert not np.shares_memory(result, X)
        assert not np.shares_memory(result, net.params)
    expected_output, expected_grad = output.copy(), grad.copy()
    output[...] = 0
    grad[...] = 0
    np.testing.assert_array_equal(net.forward(X), expected_output)
    np.testing.assert_array_equal(net.loss_and_gradient(X, Y)[1], expected_grad)


# -- threads -----------------------------------------------------------------------

THREADED_CASES = {
    # name: (layer sizes, activation, output, loss); every case is above the kernels'
    # ~1e6 multiply-add threshold for a team on 1000 rows (16 blocks, the last partial).
    "gelu_softmax": ([20, 300, 10], "gelu", "softmax", "log_loss"),
    "deep_relu": ([30, 64, 64, 64, 5], "relu", "identity", "squared_error"),
    "one_input": ([1, 2000, 3], "tanh", "softmax", "squared_error"),
    "one_output": ([10, 500, 1], "elu", "logistic", "binary_log_loss"),
    "mixed": ([16, 128, 2, 256, 4], ["softplus", "logistic", "leaky_relu"],
              "logistic", "squared_error"),
}


def _threaded_problem(case, dtype):
    sizes, activation, output, loss = THREADED_CASES[case]
    rng = np.random.default_rng(4)
    net = network(sizes, activation=activation, output=output, loss=loss, dtype=dtype)
    X = rng.normal(size=(1000, sizes[0])).astype(dtype)
    Y, _ = make_targets(output, loss, 1000, sizes[-1], rng)
    return net, X, Y, rng.uniform(0, 2, 1000)


THREAD_COUNTS = (2, 3, -1, None)


@pytest.mark.parametrize("case", list(THREADED_CASES))
@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_and_loss_do_not_depend_on_the_thread_count(dtype, case):
    """n_threads=1, 2, 3, -1 and None give bit-identical outputs and losses (fixed row
    blocks, block losses summed in block order)."""
    net, X, Y, sample_weight = _threaded_problem(case, dtype)
    expected = _all_results(net, X, Y, sample_weight, alpha=0.1, n_threads=1)
    for n_threads in THREAD_COUNTS:
        actual = _all_results(net, X, Y, sample_weight, alpha=0.1, n_threads=n_threads)
        np.testing.assert_array_equal(actual[0], expected[0])
        assert actual[1] == expected[1] and actual[2] == expected[2]


@pytest.mark.parametrize("case", list(THREADED_CASES))
@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_does_not_depend_on_the_thread_count(dtype, case):
    """The gradient is bit-identical for every thread count, as the kernels' design
    promises (DESIGN: results do not depend on the number of threads)."""
    net, X, Y, sample_weight = _threaded_problem(case, dtype)
    _, expected = net.loss_and_gradient(X, Y, alpha=0.1, sample_weight=sample_weight,
                                        n_threads=1)
    for n_threads in THREAD_COUNTS:
        _, grad = net.loss_and_gradient(X, Y, alpha=0.1, sample_weight=sample_weight,
                                        n_threads=n_threads)
        mismatched = np.flatnonzero(grad != expected)
        assert mismatched.size == 0, (
            f"n_threads={n_threads}: {mismatched.size} of {grad.size} gradient entries "
            f"differ from n_threads=1 (first at {mismatched[:5]}), max relative difference "
            f"{np.max(np.abs(grad - expected)[mismatched] / np.abs(expected[mismatched]))}")


def test_loss_equals_loss_of_loss_and_gradient():
    net, X, Y, sample_weight = _problem(n_samples=500)
    for alpha in (0.0, 0.7):
        assert net.loss(X, Y, alpha=alpha, sample_weight=sample_weight) == pytest.approx(
            net.loss_and_gradient(X, Y, alpha=alpha, sample_weight=sample_weight)[0],
            rel=1e-13)
