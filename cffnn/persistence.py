"""Model files that never execute code: model.save(path) and cffnn.load(path).

A model file is an uncompressed .npz (a zip of .npy arrays), read with
allow_pickle=False, holding:

    params             the flat parameter vector (float32 or float64), the layout of
                       cffnn.Network.params: W1 row-major, b1, W2, b2, ...
    classes            the classifier's classes_ (numbers or strings), if a classifier
    feature_names_in   the column names seen in fit, if any
    metadata           UTF-8 JSON as uint8: format tag and version, cffnn version,
                       estimator class, constructor parameters, network shape and the
                       fitted attributes that are not arrays (see _METADATA_KEYS)

Anything wrong with a file's contents (not a zip, truncated, missing or foreign
entries, wrong shapes, a newer format version) raises ModelFileError; a missing or
unreadable path raises the usual OSError.
"""
import io
import json
import math
import zipfile

import numpy as np

FORMAT = "cffnn-model"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file cannot be read: not a cffnn model, damaged, or from a newer cffnn."""


def save_model(estimator, path):
    """Write a fitted MLPClassifier / MLPRegressor to path (conventionally *.npz)."""
    import cffnn

    net = estimator._network()
    arrays = {"params": net.params}
    classes_kind = None
    if hasattr(estimator, "classes_"):
        arrays["classes"], classes_kind = _encode_labels(estimator.classes_)
    if hasattr(estimator, "feature_names_in_"):
        arrays["feature_names_in"] = np.asarray(estimator.feature_names_in_, dtype=str)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "cffnn_version": cffnn.__version__,
        "estimator": type(estimator).__name__,
        "params": _json_params(estimator.get_params(deep=False)),
        "layer_sizes": list(net.layer_sizes),
        "activations": list(net.activations),
        "out_activation": net.output,
        "dtype": net.dtype.name,
        "classes_kind": classes_kind,
        "multilabel": bool(getattr(estimator, "_multilabel", False)),
        "attributes": {name: _json_value(getattr(estimator, name))
                       for name in _FITTED_ATTRIBUTES if hasattr(estimator, name)},
    }
    text = json.dumps(metadata)
    arrays["metadata"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with open(path, "wb") as file:
        file.write(buffer.getvalue())


def load(path):
    """The estimator saved at path by ``model.save(path)``, ready to predict.

    Raises ModelFileError when the file is not a cffnn model, is damaged or truncated,
    or comes from a newer model format than this cffnn reads.
    """
    with open(path, "rb") as file:
        content = file.read()
    try:
        archive = np.load(io.BytesIO(content), allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):   # a bare .npy file
            raise ValueError("not an .npz archive")
        with archive:
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile,
            NotImplementedError, RuntimeError) as error:
        raise ModelFileError(f"{path}: not a readable cffnn model file ({error})") from None
    for name, value in arrays.items():
        if not isinstance(value, np.ndarray):   # a zip member that is not .npy
            raise ModelFileError(f"{path}: not a readable cffnn model file (entry {name!r} "
                                 f"is not an array)")
    return _build(arrays, path)


# -- reading -------------------------------------------------------------------------------

_FITTED_ATTRIBUTES = ("n_iter_", "t_", "loss_", "n_outputs_", "n_layers_",
                      "out_activation_", "n_features_in_", "loss_curve_", "best_loss_",
                      "validation_scores_", "validation_loss_curve_",
                      "best_validation_score_")


def _build(arrays, path):
    from cffnn.estimators import MLPClassifier, MLPRegressor
    from cffnn.network import Network

    def fail(reason):
        raise ModelFileError(f"{path}: {reason}")

    if "metadata" not in arrays or arrays["metadata"].dtype != np.uint8 \
            or arrays["metadata"].ndim != 1:
        fail("not a cffnn model file (no metadata entry)")
    try:
        metadata = json.loads(arrays["metadata"].tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as error:   # bad UTF-8, bad or too deep JSON
        fail(f"damaged metadata ({type(error).__name__}: {error})")
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        fail("not a cffnn model file (wrong format tag)")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version < 1:
        fail(f"invalid format version {version!r}")
    if version > FORMAT_VERSION:
        fail(f"written by cffnn {metadata.get('cffnn_version')} in model format version "
             f"{version}; this cffnn reads versions up to {FORMAT_VERSION}: upgrade cffnn")
    classes_by_name = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}
    cls = classes_by_name.get(metadata.get("estimator"))
    if cls is None:
        fail(f"unknown estimator {metadata.get('estimator')!r}")
    try:
        params = _params_from_json(metadata["params"])
        estimator = cls(**params)
        estimator._check_params()
        layer_sizes = _layer_sizes(metadata["layer_sizes"], arrays.get("params"))
        net = Network(layer_sizes, activation=list(metadata["activations"]),
                      output=metadata["out_activation"], dtype=metadata["dtype"],
                      random_state=0)
        attributes = dict(metadata["attributes"])
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as error:
        fail(f"damaged metadata ({type(error).__name__}: {error})")
    if net.output != _expected_output(estimator, metadata, layer_sizes[-1]):
        fail(f"output {net.output!r} with {layer_sizes[-1]} units does not fit this "
             f"{cls.__name__}")
    flat = arrays.get("params")
    if flat is None or flat.shape != net.params.shape or flat.dtype != net.dtype:
        fail(f"params entry does not match the network {layer_sizes} "
             f"({None if flat is None else (flat.shape, flat.dtype)})")
    if not np.isfinite(flat).all():
        fail("params holds NaN or infinity")
    net.params = flat
    if not isinstance(metadata.get("multilabel", False), bool):
        fail("damaged metadata (multilabel is not a bool)")
    estimator._multilabel = metadata.get("multilabel", False)
    for name, value in attributes.items():
        if name not in _FITTED_ATTRIBUTES:
            fail(f"unknown attribute {name!r}")
        setattr(estimator, name, value)
    if estimator.__dict__.get("n_features_in_") != layer_sizes[0] \
            or estimator.__dict__.get("n_outputs_") != layer_sizes[-1] \
            or estimator.__dict__.get("out_activation_") != net.output:
        fail("metadata disagrees with the network's shape")
    if cls is MLPClassifier:
        if "classes" not in arrays:
            fail("classifier without classes")
        estimator.classes_ = _decode_labels(arrays["classes"], metadata.get("classes_kind"),
                                            fail)
        n_classes = estimator.classes_.shape[0]
        expected = (n_classes if estimator._multilabel or n_classes > 2 else 1)
        if estimator.classes_.ndim != 1 or expected != layer_sizes[-1]:
            fail(f"{n_classes} classes do not fit a network with {layer_sizes[-1]} outputs")
    if "feature_names_in" in arrays:
        names = arrays["feature_names_in"]
        if names.dtype.kind != "U" or names.shape != (layer_sizes[0],):
            fail("damaged feature names")
        estimator.feature_names_in_ = names.astype(object)
    estimator._adopt(net)
    return estimator


def _layer_sizes(sizes, flat):
    """Layer sizes checked against the params entry before anything is allocated."""
    if not isinstance(sizes, list) or len(sizes) < 2 or not all(
            isinstance(size, int) and not isinstance(size, bool) and size >= 1
            for size in sizes):
        raise ValueError(f"layer_sizes must be a list of at least two ints >= 1, got {sizes!r}")
    n_params = sum(n_in * n_out + n_out for n_in, n_out in zip(sizes, sizes[1:]))
    if not isinstance(flat, np.ndarray) or flat.shape != (n_params,):
        raise ValueError(f"layer_sizes {sizes} need {n_params} parameters, the params "
                         f"entry has shape {getattr(flat, 'shape', None)}")
    return sizes


def _expected_output(estimator, metadata, n_outputs):
    """The output a file's network must have: the regressor's own (identity, or exp for
    poisson); for a classifier, logistic units for multilabel or binary targets (one
    unit), softmax for three classes or more (the class count is checked later)."""
    from sklearn.base import is_classifier

    if not is_classifier(estimator):
        return estimator._output_activation()
    return "logistic" if metadata.get("multilabel") or n_outputs == 1 else "softmax"


# -- JSON encoding of parameters and attributes ----------------------------------------------

def _json_value(value):
    """Python / NumPy scalars and lists as JSON-able values (inf as the string "inf")."""
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    return value


def _from_json_value(value):
    if isinstance(value, dict) and set(value) == {"float"}:
        return float(value["float"])
    if isinstance(value, list):
        return [_from_json_value(item) for item in value]
    return value


def _json_params(params):
    """Constructor parameters as JSON. A RandomState random_state is saved as None;
    class_weight dicts become lists of [class, weight] pairs."""
    out = {}
    for name, value in params.items():
        if name == "random_state" and not (value is None or isinstance(value, int)):
            value = None
        elif name == "class_weight" and isinstance(value, dict):
            value = {"pairs": [[_json_value(k), _json_value(v)] for k, v in value.items()]}
        out[name] = _json_value(value)
    return out


def _params_from_json(params):
    if not isinstance(params, dict):
        raise TypeError("params is not a mapping")
    out = {}
    for name, value in params.items():
        if name == "class_weight" and isinstance(value, dict):
            value = {key: weight for key, weight in value["pairs"]}
        elif name == "hidden_layer_sizes" and isinstance(value, list):
            value = tuple(value)
        else:
            value = _from_json_value(value)
        out[name] = value
    return out


def _encode_labels(classes):
    """(array without objects, kind): numbers as they are, strings as unicode."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "biuf":
        return classes, "numeric"
    if classes.dtype.kind == "U":
        return classes, "str"
    if classes.dtype.kind == "O" and all(isinstance(label, str) for label in classes):
        return classes.astype(str), "object-str"
    raise ValueError(f"cannot save classes of dtype {classes.dtype} (numbers and strings "
                     f"only): {classes[:5]}")


def _decode_labels(classes, kind, fail):
    if kind == "numeric" and classes.dtype.kind in "biuf":
        return classes
    if kind == "str" and classes.dtype.kind == "U":
        return classes
    if kind == "object-str" and classes.dtype.kind == "U":
        return classes.astype(object)
    fail(f"damaged classes entry ({kind!r}, dtype {classes.dtype})")
