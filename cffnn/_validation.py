"""Input checks at the Python edge: everything compiled code relies on is established here.

Each function returns a fresh or borrowed C-contiguous array of the wanted dtype (no copy
when the input already is one) and never modifies what the caller passed. Errors name the
argument and what was wrong: TypeError for a wrong kind of object or dtype, ValueError for
a wrong shape or value.
"""
import math
import numbers

import numpy as np
import scipy.sparse

from cffnn._kernels import as_ready_matrix, one_hot

INT_MAX = 2**31 - 1   # BLAS dimensions are C ints


def _as_numeric_array(value, name):
    if scipy.sparse.issparse(value):
        raise TypeError(f"{name} is a scipy.sparse matrix; cffnn.Network takes dense arrays "
                        f"(use {name}.toarray())")
    try:
        array = np.asarray(value)
    except Exception as error:   # ragged lists, objects numpy cannot take
        raise ValueError(f"{name} could not be converted to an array: {error}") from None
    if array.dtype.kind in "biuf":
        return array
    if array.dtype.kind == "O":
        try:
            return array.astype(np.float64)
        except (TypeError, ValueError):
            pass
    raise TypeError(f"{name} must hold real numbers, got an array of dtype {array.dtype}")


def check_features(X, dtype, n_features, name="X"):
    """X as a C-contiguous (n_samples, n_features) array of dtype (a numpy.dtype), finite,
    n_samples >= 1."""
    ready = as_ready_matrix(X, dtype.num, n_features)
    if ready is not None:
        return ready
    X = _as_numeric_array(X, name)
    if X.ndim != 2:
        hint = (f"; for one sample use {name}.reshape(1, -1)" if X.ndim == 1 else "")
        raise ValueError(f"{name} must be 2-D of shape (n_samples, {n_features}), "
                         f"got shape {X.shape}{hint}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} has no samples (shape {X.shape})")
    if X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features per sample but the network "
                         f"takes {n_features}")
    X = np.require(X, dtype=dtype, requirements="CA")   # C order, aligned, native
    if X.shape[0] > INT_MAX:
        raise ValueError(f"{name} has {X.shape[0]} samples; at most {INT_MAX} per call")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinity (after conversion to {X.dtype})")
    return X


def check_targets(Y, dtype, n_samples, n_outputs, output, loss):
    """Y as a C-contiguous (n_samples, n_outputs) matrix of dtype.

    softmax output: class indices of shape (n_samples,) in [0, n_outputs), or a matrix
    of shape (n_samples, n_outputs). Otherwise a matrix, or shape (n_samples,) when
    n_outputs == 1. Log losses take targets in [0, 1] only, poisson targets >= 0.
    """
    lower, upper = {"squared_error": (-np.inf, np.inf), "poisson": (0.0, np.inf)}.get(
        loss, (0.0, 1.0))
    ready = as_ready_matrix(Y, dtype.num, n_outputs, lower, upper)
    if ready is not None and ready.shape[0] == n_samples:
        return ready
    if output == "softmax" and getattr(Y, "shape", None) == (n_samples,):
        encoded = one_hot(Y, n_outputs, dtype)
        if encoded is not None:
            return encoded
    Y = _as_numeric_array(Y, "Y")
    if Y.ndim == 1 and output == "softmax":
        return _one_hot(Y, dtype, n_samples, n_outputs)
    if Y.ndim == 1 and n_outputs == 1:
        Y = Y.reshape(-1, 1)
    if Y.ndim != 2 or Y.shape[1] != n_outputs:
        raise ValueError(f"Y must have shape (n_samples, {n_outputs})"
                         + (" or (n_samples,) of class indices" if output == "softmax" else "")
                         + (" or (n_samples,)" if n_outputs == 1 else "")
                         + f", got shape {Y.shape}")
    if Y.shape[0] != n_samples:
        raise ValueError(f"X has {n_samples} samples but Y has {Y.shape[0]}")
    Y = np.require(Y, dtype=dtype, requirements="CA")
    if not np.isfinite(Y).all():
        raise ValueError("Y contains NaN or infinity")
    if Y.min() < lower or Y.max() > upper:
        allowed = "[0, 1]" if upper == 1.0 else ">= 0"
        raise ValueError(f"{loss} takes targets {allowed}; Y holds values in "
                         f"[{Y.min()}, {Y.max()}]")
    return Y


def _one_hot(labels, dtype, n_samples, n_classes):
    if labels.shape[0] != n_samples:
        raise ValueError(f"X has {n_samples} samples but Y has {labels.shape[0]}")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise ValueError("class indices in Y must be whole numbers")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"class indices in Y must be in [0, {n_classes}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    encoded = np.zeros((n_samples, n_classes), dtype=dtype)
    encoded[np.arange(n_samples), labels.astype(np.intp)] = 1
    return encoded


def check_sample_weight(sample_weight, n_samples):
    """(weights, scale): None and 1.0 without weights, else float64 weights of shape
    (n_samples,) divided by their maximum (so that their sum neither overflows nor
    underflows) and that maximum. The caller's weights are weights * scale.

    Weights must be finite, >= 0 and not all 0. A scalar is broadcast to every sample
    (as scikit-learn does).
    """
    if sample_weight is None:
        return None, 1.0
    if isinstance(sample_weight, numbers.Real) and not isinstance(sample_weight, bool):
        sample_weight = np.full(n_samples, float(sample_weight))
    weights = _as_numeric_array(sample_weight, "sample_weight")
    if weights.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},), "
                         f"got shape {weights.shape}")
    weights = weights.astype(np.float64)   # always a copy: scaled below
    if not np.all(np.isfinite(weights)):
        raise ValueError("sample_weight contains NaN or infinity")
    if np.any(weights < 0):
        raise ValueError("sample_weight must be non-negative")
    scale = float(weights.max())
    if not scale > 0:
        raise ValueError("sample_weight must have a positive sum, but every weight is zero")
    weights /= scale
    return weights, scale


def check_nonnegative(name, value, upper=math.inf, upper_open=False):
    """value as a finite float in [0, upper] ([0, upper) with upper_open)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value >= 0
            and (value < upper if upper_open else value <= upper)):
        bound = "" if upper == math.inf else (f" and < {upper}" if upper_open
                                                else f" and <= {upper}")
        raise ValueError(f"{name} must be finite and >= 0{bound}, got {value}")
    return value


def check_alpha(alpha):
    """alpha as a finite float >= 0."""
    return check_nonnegative("alpha", alpha)
