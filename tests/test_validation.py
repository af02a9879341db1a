"""Every bad input raises ValueError or TypeError with a message naming the problem.

Inputs are validated in Python before any compiled code runs (DESIGN.md: a wrong shape
reaching compiled code is a crash). tests/test_fuzz.py feeds random malformed inputs in
a subprocess, so that a crash shows up as a failed test rather than a dead pytest.
"""
import numpy as np
import pytest
import scipy.sparse

import cffnn

N, N_FEATURES, N_OUTPUTS = 5, 4, 3


def _net(output="softmax", loss=None, dtype=np.float64, n_outputs=N_OUTPUTS):
    return cffnn.Network([N_FEATURES, 6, n_outputs], activation="tanh", output=output,
                         loss=loss, dtype=dtype, random_state=0)


def _X(n=N):
    return np.random.default_rng(0).normal(size=(n, N_FEATURES))


LABELS = np.array([0, 1, 2, 1, 0])

METHODS = {
    "forward": lambda net, X, Y, **kw: net.forward(X, **kw),
    "loss": lambda net, X, Y, **kw: net.loss(X, Y, **kw),
    "loss_and_gradient": lambda net, X, Y, **kw: net.loss_and_gradient(X, Y, **kw),
}
FIT_METHODS = {name: METHODS[name] for name in ("loss", "loss_and_gradient")}


def _with(index, value, shape=(N, N_FEATURES)):
    X = _X(shape[0]) if shape[1] == N_FEATURES else np.ones(shape)
    X[index] = value
    return X


def _ragged():
    return [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0]]


BAD_X = {
    "1d": (np.ones(N_FEATURES), ValueError, "2-D"),
    "3d": (np.ones((N, N_FEATURES, 1)), ValueError, "2-D"),
    "scalar": (1.0, ValueError, "2-D"),
    "wrong_width": (np.ones((N, N_FEATURES + 1)), ValueError, "features"),
    "too_narrow": (np.ones((N, 1)), ValueError, "features"),
    "no_rows": (np.ones((0, N_FEATURES)), ValueError, "no samples"),
    "nan": (_with((2, 1), np.nan), ValueError, "NaN"),
    "inf": (_with((0, 3), np.inf), ValueError, "infinity"),
    "minus_inf": (_with((4, 0), -np.inf), ValueError, "infinity"),
    "strings": (np.full((N, N_FEATURES), "a"), TypeError, "real numbers"),
    "complex": (np.ones((N, N_FEATURES), dtype=complex), TypeError, "real numbers"),
    "object_strings": (np.array([["a"] * N_FEATURES] * N, dtype=object), TypeError,
                       "real numbers"),
    "object_none": (np.array([[None] * N_FEATURES] * N, dtype=object), ValueError,
                    "NaN"),   # numpy casts None to NaN
    "none": (None, ValueError, "2-D"),
    "sparse_csr": (scipy.sparse.csr_matrix(np.ones((N, N_FEATURES))), TypeError, "sparse"),
    "sparse_coo": (scipy.sparse.coo_array(np.ones((N, N_FEATURES))), TypeError, "sparse"),
    "ragged_list": (_ragged(), ValueError, "could not be converted"),
}


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("case", list(BAD_X))
def test_bad_X_is_rejected(case, method):
    X, error, match = BAD_X[case]
    n = 2 if case == "ragged_list" else N
    with pytest.raises(error, match=match):
        METHODS[method](_net(), X, LABELS[:n])


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("method", list(METHODS))
def test_X_overflowing_float32_is_rejected(method):
    """1e39 is finite in float64 but inf in a float32 network."""
    with pytest.raises(ValueError, match="infinity"):
        METHODS[method](_net(dtype=np.float32), _with((1, 1), 1e39), LABELS)


BAD_Y = {
    # name: (network output, loss, Y, error, match)
    "softmax_too_many_columns": ("softmax", None, np.zeros((N, N_OUTPUTS + 1)), ValueError,
                                 "shape"),
    "softmax_label_column": ("softmax", None, LABELS[:, None], ValueError, "shape"),
    "3d": ("softmax", None, np.zeros((N, N_OUTPUTS, 1)), ValueError, "shape"),
    "scalar": ("identity", None, 0.5, ValueError, "shape"),
    "logistic_1d_for_3_outputs": ("logistic", None, np.zeros(N), ValueError, "shape"),
    "too_many_labels": ("softmax", None, np.append(LABELS, 0), ValueError, "samples"),
    "too_few_rows": ("identity", None, np.zeros((N - 1, N_OUTPUTS)), ValueError,
                     "samples"),
    "nan_matrix": ("identity", None, np.where(np.eye(N, N_OUTPUTS) > 0, np.nan, 0.0),
                   ValueError, "NaN"),
    "inf_matrix": ("logistic", "squared_error", np.full((N, N_OUTPUTS), np.inf),
                   ValueError, "infinity"),
    "nan_label": ("softmax", None, np.array([0, 1, np.nan, 1, 0]), ValueError,
                  "whole numbers"),
    "fractional_label": ("softmax", None, np.array([0, 1, 1.5, 1, 0]), ValueError,
                         "whole numbers"),
    "label_too_large": ("softmax", None, np.array([0, 1, N_OUTPUTS, 1, 0]), ValueError,
                        "class indices"),
    "negative_label": ("softmax", None, np.array([0, -1, 2, 1, 0]), ValueError,
                       "class indices"),
    "strings": ("softmax", None, np.array(["a", "b", "c", "a", "b"]), TypeError,
                "real numbers"),
    "binary_target_above_1": ("logistic", None, np.full((N, N_OUTPUTS), 1.5), ValueError,
                              r"\[0, 1\]"),
    "binary_target_below_0": ("logistic", None, np.full((N, N_OUTPUTS), -0.5), ValueError,
                              r"\[0, 1\]"),
    "log_loss_target_above_1": ("softmax", "log_loss", 2 * np.eye(N, N_OUTPUTS), ValueError,
                                r"\[0, 1\]"),
}


@pytest.mark.parametrize("method", list(FIT_METHODS))
@pytest.mark.parametrize("case", list(BAD_Y))
def test_bad_Y_is_rejected(case, method):
    output, loss, Y, error, match = BAD_Y[case]
    with pytest.raises(error, match=match):
        FIT_METHODS[method](_net(output, loss), _X(), Y)


@pytest.mark.parametrize("output", ["identity", "logistic", "softmax"])
def test_squared_error_takes_targets_outside_unit_interval(output):
    """The [0, 1] restriction is for the log losses only."""
    net = _net(output, "squared_error")
    Y = np.full((N, N_OUTPUTS), -2.5)
    assert np.isfinite(net.loss(_X(), Y))


BAD_SAMPLE_WEIGHT = {
    "too_long": (np.ones(N + 1), ValueError, "shape"),
    "column": (np.ones((N, 1)), ValueError, "shape"),
    "0d_array": (np.array(1.0), ValueError, "shape"),
    "negative": (np.array([1, 1, -1, 1, 1.0]), ValueError, "non-negative"),
    "nan": (np.array([1, np.nan, 1, 1, 1]), ValueError, "NaN"),
    "inf": (np.array([1, np.inf, 1, 1, 1]), ValueError, "infinity"),
    "all_zero": (np.zeros(N), ValueError, "positive sum"),
    "scalar_zero": (0.0, ValueError, "positive sum"),
    "scalar_negative": (-1.0, ValueError, "non-negative"),
    "strings": (np.array(["a"] * N), TypeError, "real numbers"),
    "sparse": (scipy.sparse.csr_matrix(np.ones((1, N))), TypeError, "sparse"),
}


@pytest.mark.parametrize("method", list(FIT_METHODS))
@pytest.mark.parametrize("case", list(BAD_SAMPLE_WEIGHT))
def test_bad_sample_weight_is_rejected(case, method):
    sample_weight, error, match = BAD_SAMPLE_WEIGHT[case]
    with pytest.raises(error, match=match):
        FIT_METHODS[method](_net(), _X(), LABELS, sample_weight=sample_weight)


BAD_ALPHA = {
    "negative": (-0.1, ValueError),
    "nan": (np.nan, ValueError),
    "inf": (np.inf, ValueError),
    "string": ("0.1", TypeError),
    "none": (None, TypeError),
    "bool": (True, TypeError),
    "complex": (1j, TypeError),
    "array": (np.array([0.1, 0.2]), TypeError),
}


@pytest.mark.parametrize("method", list(FIT_METHODS))
@pytest.mark.parametrize("case", list(BAD_ALPHA))
def test_bad_alpha_is_rejected(case, method):
    alpha, error = BAD_ALPHA[case]
    with pytest.raises(error, match="alpha"):
        FIT_METHODS[method](_net(), _X(), LABELS, alpha=alpha)


BAD_N_THREADS = {
    "zero": (0, ValueError),
    "string": ("2", TypeError),
    "float": (1.5, TypeError),
    "whole_float": (2.0, TypeError),
    "bool": (True, TypeError),
}


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("case", list(BAD_N_THREADS))
def test_bad_n_threads_is_rejected(case, method):
    n_threads, error = BAD_N_THREADS[case]
    with pytest.raises(error, match="n_threads"):
        METHODS[method](_net(), _X(), LABELS, n_threads=n_threads)


@pytest.mark.parametrize("n_threads", [1, 2, 64, -1, -2, -1000, np.int32(2)])
def test_valid_n_threads_are_accepted(n_threads):
    net = _net()
    assert net.forward(_X(), n_threads=n_threads).shape == (N, N_OUTPUTS)
    assert np.isfinite(net.loss(_X(), LABELS, n_threads=n_threads))


@pytest.mark.parametrize("n_threads", [2**31, 2**64])
def test_huge_n_threads_is_capped_or_rejected_with_a_clear_error(n_threads):
    """A thread count beyond C int range either runs (capped) or raises ValueError /
    TypeError naming n_threads; an OverflowError from the C conversion is not that."""
    net = _net()
    try:
        output = net.forward(_X(), n_threads=n_threads)
    except (ValueError, TypeError) as error:
        assert "n_threads" in str(error)
    else:
        np.testing.assert_array_equal(output, net.forward(_X(), n_threads=1))


# -- constructor ---------------------------------------------------------------------

BAD_CONSTRUCTOR = {
    # name: (keyword arguments, error, match)
    "one_size": (dict(layer_sizes=[4]), ValueError, "at least"),
    "no_sizes": (dict(layer_sizes=[]), ValueError, "at least"),
    "zero_width": (dict(layer_sizes=[4, 0, 3]), ValueError, "layer size"),
    "zero_input": (dict(layer_sizes=[0, 3]), ValueError, "layer size"),
    "negative_width": (dict(layer_sizes=[4, -2, 3]), ValueError, "layer size"),
    "width_beyond_int": (dict(layer_sizes=[4, 2**31, 3]), ValueError, "layer size"),
    "float_width": (dict(layer_sizes=[4, 2.0, 3]), TypeError, "ints"),
    "string_width": (dict(layer_sizes=[4, "3"]), TypeError, "ints"),
    "bool_width": (dict(layer_sizes=[4, True]), TypeError, "ints"),
    "int_not_sequence": (dict(layer_sizes=4), TypeError, "sequence"),
    "string_not_sequence": (dict(layer_sizes="43"), TypeError, "sequence"),
    "too_many_layers": (dict(layer_sizes=[2] * 200), ValueError, "at most"),
    "unknown_activation": (dict(activation="sigmoid"), ValueError, "unknown activation"),
    "softmax_hidden": (dict(activation="softmax"), ValueError, "unknown activation"),
    "unknown_in_list": (dict(layer_sizes=[4, 5, 5, 3], activation=["relu", "swish"]),
                        ValueError, "unknown activation"),
    "list_too_long": (dict(activation=["relu", "tanh"]), ValueError, "hidden layers"),
    "list_too_short": (dict(layer_sizes=[4, 5, 5, 3], activation=["relu"]), ValueError,
                       "hidden layers"),
    "list_without_hidden": (dict(layer_sizes=[4, 3], activation=["relu"]), ValueError,
                            "hidden layers"),
    "unknown_output": (dict(output="relu"), ValueError, "unknown output"),
    "output_none": (dict(output=None), ValueError, "unknown output"),
    "identity_log_loss": (dict(output="identity", loss="log_loss"), ValueError,
                          "cannot be paired"),
    "identity_binary": (dict(output="identity", loss="binary_log_loss"), ValueError,
                        "cannot be paired"),
    "logistic_log_loss": (dict(output="logistic", loss="log_loss"), ValueError,
                          "cannot be paired"),
    "softmax_binary": (dict(output="softmax", loss="binary_log_loss"), ValueError,
                       "cannot be paired"),
    "unknown_loss": (dict(loss="hinge"), ValueError, "cannot be paired"),
    "softmax_one_output": (dict(layer_sizes=[4, 1]), ValueError, "softmax"),
    "dtype_int32": (dict(dtype=np.int32), TypeError, "dtype"),
    "dtype_float16": (dict(dtype=np.float16), TypeError, "dtype"),
    "dtype_complex": (dict(dtype=np.complex128), TypeError, "dtype"),
    "dtype_nonsense": (dict(dtype="not a dtype"), TypeError, "dtype"),
    "random_state_string": (dict(random_state="x"), TypeError, "random_state"),
    "random_state_float": (dict(random_state=1.5), TypeError, "random_state"),
    "random_state_bool": (dict(random_state=True), TypeError, "random_state"),
}


@pytest.mark.parametrize("case", list(BAD_CONSTRUCTOR))
def test_bad_constructor_arguments_are_rejected(case):
    kwargs, error, match = BAD_CONSTRUCTOR[case]
    kwargs = {"layer_sizes": [4, 5, 3], **kwargs}
    with pytest.raises(error, match=match):
        cffnn.Network(**kwargs)


@pytest.mark.parametrize("argument, value", [("activation", None), ("activation", 5),
                                             ("output", ["softmax"])])
def test_non_string_names_are_rejected_with_a_clear_message(argument, value):
    """activation / output of the wrong type raise ValueError or TypeError naming the
    argument (not a bare "'NoneType' object is not iterable")."""
    with pytest.raises((TypeError, ValueError), match=argument):
        cffnn.Network([4, 5, 3], **{argument: value})


@pytest.mark.parametrize("dtype", [np.float32, np.float64, "float32", "float64", float])
def test_accepted_dtype_spellings(dtype):
    assert cffnn.Network([2, 3], dtype=dtype).params.dtype == np.dtype(dtype)


@pytest.mark.parametrize("value", [np.zeros(3), np.zeros((1, 25)), np.zeros(26), []])
def test_params_of_the_wrong_shape_are_rejected(value):
    net = cffnn.Network([4, 5], output="identity", random_state=0)   # 25 parameters
    before = net.params.copy()
    with pytest.raises(ValueError, match="shape"):
        net.params = value
    np.testing.assert_array_equal(net.params, before)


def test_check_gradient_validates_its_inputs():
    with pytest.raises(ValueError, match="NaN"):
        cffnn.check_gradient(_net(), _with((0, 0), np.nan), LABELS)
    with pytest.raises(ValueError, match="class indices"):
        cffnn.check_gradient(_net(), _X(), LABELS + 5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_the_fast_finite_scan_finds_one_bad_value_anywhere(dtype, value):
    """include/cffnn/checks.h scans ready arrays in vector steps (AVX2 or SSE2) and a
    scalar tail: one non-finite value is found at every position of arrays 1-40 values
    long and near the start, middle and end of a long one; the extremes of the dtype
    (largest, smallest subnormal) pass."""
    from cffnn._kernels import is_ready_matrix
    typenum = np.dtype(dtype).num
    info = np.finfo(dtype)
    for n in list(range(1, 41)) + [100_003]:
        X = np.full((n, 1), info.max, dtype=dtype)
        X[::2] = info.smallest_subnormal
        assert is_ready_matrix(X, typenum, 1)
        for position in (range(n) if n <= 40 else (0, 17, n // 2, n - 9, n - 1)):
            X[position] = value
            assert not is_ready_matrix(X, typenum, 1), (n, position)
            X[position] = -info.max
