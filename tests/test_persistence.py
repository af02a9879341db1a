"""Persistence: pickle / joblib round trips, model.save + cffnn.load, damaged files.

The issue's requirements: pickle and joblib round trips give bit-identical predictions
(also when joblib memory-maps the weights read-only); model.save(path) / cffnn.load(path)
use an .npz read with allow_pickle=False plus JSON metadata (format version, cffnn
version, estimator parameters, classes); a truncated, corrupted, foreign or newer file
raises cffnn.ModelFileError with a clear message, never another exception and never code
execution; a saved model loads and predicts without scikit-learn's training machinery.
"""
import json
import pickle
import subprocess
import sys
import warnings
import zipfile

import joblib
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import cffnn

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N_SAMPLES, N_FEATURES = 48, 4
STRING_LABELS = np.array(["cat", "dog", "eel"])


def _data(dtype=np.float64):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES)).astype(dtype)
    index = np.arange(N_SAMPLES) % 3
    targets = {
        "binary": (X[:, 0] > 0).astype(int),
        "multiclass": index,
        "multilabel": (rng.uniform(size=(N_SAMPLES, 3)) > 0.5).astype(int),
        "strings": STRING_LABELS[index],
        "object_strings": STRING_LABELS[index].astype(object),
        "regression": X @ np.array([1.0, -2.0, 0.5, 0.0]),
        "multi_output": np.column_stack([X[:, 0] - X[:, 1], X[:, 2] * 2.0]),
    }
    return X, targets


CASES = ("binary", "multiclass", "multilabel", "strings", "object_strings", "regression",
         "multi_output")
DTYPES = (np.float32, np.float64)
CASE_PARAMS = [pytest.param(case, dtype, id=f"{case}-{np.dtype(dtype).name}")
               for case in CASES for dtype in DTYPES]
_FITTED = {}


def _fitted(case, dtype, solver="adam", **params):
    """A small model fitted on case's target (cached; callers must not modify it)."""
    key = (case, np.dtype(dtype).name, solver, tuple(sorted(params.items())))
    if key not in _FITTED:
        X, targets = _data(dtype)
        regressor = case in ("regression", "multi_output")
        cls = cffnn.MLPRegressor if regressor else cffnn.MLPClassifier
        settings = dict(hidden_layer_sizes=(6, 5), max_iter=12, random_state=0,
                        solver=solver)
        settings.update(params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            _FITTED[key] = cls(**settings).fit(X, targets[case])
    return _FITTED[key]


def _is_classifier(model):
    return isinstance(model, cffnn.MLPClassifier)


def _assert_same_predictions(model, other, X):
    np.testing.assert_array_equal(other.predict(X), model.predict(X))
    assert other.predict(X).dtype == model.predict(X).dtype
    if _is_classifier(model):
        np.testing.assert_array_equal(other.predict_proba(X), model.predict_proba(X))
        assert other.predict_proba(X).dtype == model.predict_proba(X).dtype


def _assert_same_classes(model, other):
    if _is_classifier(model):
        np.testing.assert_array_equal(other.classes_, model.classes_)
        assert other.classes_.dtype == model.classes_.dtype
        assert [type(c) for c in other.classes_] == [type(c) for c in model.classes_]


def _assert_same_weights(model, other):
    for theirs, ours in zip(other.coefs_ + other.intercepts_,
                            model.coefs_ + model.intercepts_, strict=True):
        np.testing.assert_array_equal(theirs, ours)
        assert theirs.dtype == ours.dtype


def _assert_weights_drive_predictions(model, X):
    """coefs_ of a restored model are views into its working network: zeroing the first
    layer's weights in place makes every sample's output the same."""
    before = model.predict_proba(X) if _is_classifier(model) else model.predict(X)
    model.coefs_[0][...] = 0
    after = model.predict_proba(X) if _is_classifier(model) else model.predict(X)
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after, np.broadcast_to(after[:1], after.shape))


# -- 1. pickle and joblib ---------------------------------------------------------------

@pytest.mark.parametrize("case, dtype", CASE_PARAMS)
def test_pickle_round_trip_is_bit_identical(case, dtype):
    model = _fitted(case, dtype)
    X, _ = _data(dtype)
    other = pickle.loads(pickle.dumps(model))
    _assert_same_predictions(model, other, X)
    _assert_same_classes(model, other)
    _assert_same_weights(model, other)
    assert other.get_params() == model.get_params()
    _assert_weights_drive_predictions(other, X)


@pytest.mark.parametrize("mmap_mode", [None, "r"])
@pytest.mark.parametrize("case, dtype", CASE_PARAMS)
def test_joblib_round_trip_is_bit_identical(case, dtype, mmap_mode, tmp_path):
    model = _fitted(case, dtype)
    X, _ = _data(dtype)
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    other = joblib.load(path, mmap_mode=mmap_mode)
    _assert_same_predictions(model, other, X)
    _assert_same_classes(model, other)
    _assert_same_weights(model, other)
    _assert_weights_drive_predictions(other, X)
    # the in-place change went to the model's own buffer, not to the file
    _assert_same_predictions(model, joblib.load(path, mmap_mode=mmap_mode), X)


_CONTINUE_MAPPED = """
import sys
import joblib
import numpy as np
model = joblib.load(sys.argv[1], mmap_mode="r")
data = np.load(sys.argv[2])
model.partial_fit(data["X"], data["y"])
np.savez(sys.argv[3], *model.coefs_, *model.intercepts_)
"""


def test_joblib_memory_mapped_model_keeps_training(tmp_path):
    """partial_fit on a model whose weights and optimizer state joblib memory-mapped
    read-only continues exactly as the original does. In subprocesses (one per solver,
    run concurrently): a write into a read-only mapping would crash the interpreter."""
    X, targets = _data()
    np.savez(tmp_path / "data.npz", X=X, y=targets["multiclass"])
    solvers = ("sgd", "adam", "rprop")
    processes = {}
    for solver in solvers:
        joblib.dump(_fitted("multiclass", np.float64, solver=solver),
                    tmp_path / f"{solver}.joblib")
        processes[solver] = subprocess.Popen(
            [sys.executable, "-c", _CONTINUE_MAPPED, f"{solver}.joblib", "data.npz",
             f"{solver}_out.npz"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    failures = {}
    for solver, process in processes.items():
        _, stderr = process.communicate(timeout=120)
        if process.returncode != 0:
            failures[solver] = (process.returncode, stderr[-1000:])
    assert not failures, failures
    for solver in solvers:
        model = _fitted("multiclass", np.float64, solver=solver)
        expected = pickle.loads(pickle.dumps(model)).partial_fit(X, targets["multiclass"])
        with np.load(tmp_path / f"{solver}_out.npz") as out:
            got = [out[f"arr_{k}"] for k in range(len(out.files))]
        for theirs, ours in zip(got, expected.coefs_ + expected.intercepts_, strict=True):
            np.testing.assert_array_equal(theirs, ours)
        # the file itself is unchanged
        _assert_same_predictions(
            model, joblib.load(tmp_path / f"{solver}.joblib", mmap_mode="r"), X)


@pytest.mark.parametrize("solver", ["sgd", "adam", "rprop"])
@pytest.mark.parametrize("case", ["multiclass", "regression"])
def test_unpickled_model_continues_training_like_the_original(case, solver):
    X, targets = _data()
    original = pickle.loads(pickle.dumps(_fitted(case, np.float64, solver=solver)))
    copy = pickle.loads(pickle.dumps(original))
    # partial_fit: one more epoch, from the same weights and optimizer state
    original.partial_fit(X, targets[case])
    copy.partial_fit(X, targets[case])
    _assert_same_weights(original, copy)
    assert copy.n_iter_ == original.n_iter_ and copy.t_ == original.t_
    _assert_same_predictions(original, copy, X)
    # warm_start fit from the unpickled weights
    original.set_params(warm_start=True, max_iter=3)
    copy = pickle.loads(pickle.dumps(original))
    original.fit(X, targets[case])
    copy.fit(X, targets[case])
    _assert_same_weights(original, copy)
    assert copy.loss_curve_ == original.loss_curve_
    _assert_same_predictions(original, copy, X)


# -- 2. model.save / cffnn.load ----------------------------------------------------------

ATTRIBUTES = ("n_iter_", "t_", "loss_", "n_outputs_", "n_layers_", "out_activation_",
              "n_features_in_", "loss_curve_", "best_loss_", "validation_scores_",
              "validation_loss_curve_", "best_validation_score_")


def _assert_same_fitted_attributes(model, other):
    for name in ATTRIBUTES:
        assert hasattr(other, name) == hasattr(model, name), name
        if hasattr(model, name):
            assert getattr(other, name) == getattr(model, name), name
    assert getattr(other, "_multilabel", False) == getattr(model, "_multilabel", False)


def _save_load(model, tmp_path, name="model.npz"):
    path = tmp_path / name
    model.save(path)
    return cffnn.load(path)


@pytest.mark.parametrize("case, dtype", CASE_PARAMS)
def test_save_load_round_trip(case, dtype, tmp_path):
    model = _fitted(case, dtype)
    X, _ = _data(dtype)
    other = _save_load(model, tmp_path)
    assert type(other) is type(model)
    _assert_same_predictions(model, other, X)
    _assert_same_classes(model, other)
    _assert_same_weights(model, other)
    assert other.coefs_[0].dtype == np.dtype(dtype)
    params = other.get_params()
    assert params == model.get_params()
    assert type(params["hidden_layer_sizes"]) is tuple
    _assert_same_fitted_attributes(model, other)
    assert not hasattr(other, "feature_names_in_")
    _assert_weights_drive_predictions(other, X)


@pytest.mark.parametrize("case", ["binary", "multiclass", "regression"])
def test_save_load_lbfgs_model(case, tmp_path):
    model = _fitted(case, np.float64, solver="lbfgs")
    assert not hasattr(model, "loss_curve_")
    X, _ = _data()
    other = _save_load(model, tmp_path)
    _assert_same_predictions(model, other, X)
    _assert_same_fitted_attributes(model, other)
    assert not hasattr(other, "loss_curve_")


def test_save_load_early_stopping_attributes(tmp_path):
    model = _fitted("multiclass", np.float64, early_stopping=True, validation_fraction=0.25)
    assert model.best_loss_ is None and len(model.validation_scores_) == model.n_iter_
    other = _save_load(model, tmp_path)
    _assert_same_fitted_attributes(model, other)
    _assert_same_predictions(model, other, _data()[0])


def test_save_load_other_parameters(tmp_path):
    X, targets = _data()
    model = cffnn.MLPClassifier(hidden_layer_sizes=7, activation=["tanh"], solver="sgd",
                                class_weight={0: 1.0, 1: 2.5, 2: 0.5}, batch_size=16,
                                max_iter=5, n_iter_no_change=np.inf, alpha=0.0,
                                random_state=3).fit(X, targets["multiclass"])
    other = _save_load(model, tmp_path)
    assert other.get_params() == model.get_params()
    _assert_same_predictions(model, other, X)
    assert other.best_loss_ == model.best_loss_


def test_save_load_keeps_feature_names(tmp_path):
    pd = pytest.importorskip("pandas")
    X, targets = _data()
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    model = cffnn.MLPClassifier((5,), max_iter=5, random_state=0).fit(frame,
                                                                       targets["strings"])
    other = _save_load(model, tmp_path)
    np.testing.assert_array_equal(other.feature_names_in_, model.feature_names_in_)
    assert other.feature_names_in_.dtype == model.feature_names_in_.dtype
    np.testing.assert_array_equal(other.predict_proba(frame), model.predict_proba(frame))
    with pytest.raises(ValueError):
        other.predict(frame[["d", "c", "b", "a"]])


def test_loaded_model_keeps_training(tmp_path):
    X, targets = _data()
    model = _fitted("multiclass", np.float64)
    other = _save_load(model, tmp_path)
    other.partial_fit(X, targets["multiclass"])
    assert other.n_iter_ == model.n_iter_ + 1
    assert not np.array_equal(other.coefs_[0], model.coefs_[0])
    other = _save_load(model, tmp_path, "again.npz")
    other.set_params(warm_start=True, max_iter=2).fit(X, targets["multiclass"])
    assert len(other.loss_curve_) == len(model.loss_curve_) + 2


@pytest.mark.parametrize("cls", ["MLPClassifier", "MLPRegressor"])
def test_save_unfitted_raises_not_fitted(cls, tmp_path):
    path = tmp_path / "model.npz"
    with pytest.raises(NotFittedError):
        getattr(cffnn, cls)().save(path)
    assert not path.exists()


def test_file_format(tmp_path):
    """An .npz that reads with allow_pickle=False, metadata as UTF-8 JSON."""
    model = _fitted("strings", np.float32)
    path = tmp_path / "model.npz"
    model.save(path)
    assert zipfile.is_zipfile(path)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    assert set(arrays) == {"params", "classes", "metadata"}
    assert all(array.dtype.kind != "O" for array in arrays.values())
    assert arrays["params"].dtype == np.float32
    np.testing.assert_array_equal(arrays["classes"], STRING_LABELS)
    assert arrays["metadata"].dtype == np.uint8
    metadata = json.loads(arrays["metadata"].tobytes().decode("utf-8"))
    assert metadata["format"] == "cffnn-model"
    assert metadata["format_version"] == 1
    assert metadata["cffnn_version"] == cffnn.__version__
    assert metadata["estimator"] == "MLPClassifier"
    assert metadata["params"]["hidden_layer_sizes"] == [6, 5]
    assert metadata["params"]["random_state"] == 0
    assert metadata["layer_sizes"] == [N_FEATURES, 6, 5, 3]
    assert metadata["dtype"] == "float32"
    assert metadata["classes_kind"] == "str"
    assert metadata["multilabel"] is False
    assert metadata["attributes"]["n_iter_"] == model.n_iter_


def test_object_dtype_classes_stay_objects(tmp_path):
    """fit makes classes_ a unicode array even for object labels; classes_ of dtype
    object (set by a user, or from an older fit) keep that dtype through save / load."""
    model = pickle.loads(pickle.dumps(_fitted("object_strings", np.float64)))
    model.classes_ = model.classes_.astype(object)
    path = tmp_path / "model.npz"
    model.save(path)
    assert _metadata(path)["classes_kind"] == "object-str"
    other = cffnn.load(path)
    assert other.classes_.dtype == object
    assert all(type(label) is str for label in other.classes_)
    _assert_same_predictions(model, other, _data()[0])
    assert other.predict(_data()[0]).dtype == object


def test_load_missing_path_raises_os_error(tmp_path):
    assert issubclass(cffnn.ModelFileError, ValueError)
    with pytest.raises(FileNotFoundError):
        cffnn.load(tmp_path / "absent.npz")


# -- 3. damaged, foreign and hostile files -----------------------------------------------

@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(path, bytes, X) of a saved string-label multiclass model."""
    path = tmp_path_factory.mktemp("saved") / "model.npz"
    _fitted("object_strings", np.float64).save(path)
    return path, path.read_bytes(), _data()[0]


def _expect_error(path):
    with pytest.raises(cffnn.ModelFileError) as info:
        cffnn.load(path)
    message = str(info.value)
    assert str(path) in message and len(message) > len(str(path)) + 10, message
    return message


def _arrays(path):
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def _metadata(path):
    return json.loads(_arrays(path)["metadata"].tobytes().decode("utf-8"))


def _encode(metadata):
    return np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8)


def _rewrite(source, target, **changes):
    """source's arrays with changes (None removes an entry), saved by np.savez."""
    arrays = _arrays(source)
    for name, value in changes.items():
        if value is None:
            arrays.pop(name, None)
        else:
            arrays[name] = value
    np.savez(target, **arrays)
    return target


def test_empty_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    _expect_error(path)


def test_truncated_files(saved, tmp_path):
    _, content, _ = saved
    cuts = sorted(set(np.linspace(1, len(content) - 1, 30).astype(int).tolist()
                      + [len(content) - 22, len(content) - 1]))
    for cut in cuts:
        path = tmp_path / f"cut{cut}.npz"
        path.write_bytes(content[:cut])
        _expect_error(path)


def test_random_byte_flips(saved, tmp_path):
    _, content, X = saved
    rng = np.random.default_rng(12345)
    outcomes = {"loaded": 0, "error": 0}
    for variant in range(50):
        damaged = bytearray(content)
        for position in rng.choice(len(content), size=rng.integers(1, 4), replace=False):
            damaged[position] ^= int(rng.integers(1, 256))
        path = tmp_path / f"flip{variant}.npz"
        path.write_bytes(bytes(damaged))
        try:
            model = cffnn.load(path)
        except cffnn.ModelFileError as error:
            assert str(path) in str(error)
            outcomes["error"] += 1
            continue
        outcomes["loaded"] += 1
        probabilities = model.predict_proba(X)
        assert probabilities.shape == (X.shape[0], 3)
        assert np.isfinite(probabilities).all()
        assert set(model.predict(X)) <= set(model.classes_)
    assert outcomes["error"] > 0, outcomes


def test_random_flips_in_params(saved, tmp_path):
    """Bit flips inside the weights, written back with valid CRCs: a flip in a mantissa
    or sign bit loads and predicts finite values; one that makes a weight NaN or
    infinite (every exponent bit set) raises ModelFileError."""
    path, _, X = saved
    params = _arrays(path)["params"]
    assert params.dtype == np.float64
    rng = np.random.default_rng(2024)
    outcomes = {"loaded": 0, "error": 0}
    for variant in range(50):
        bits = params.view(np.uint64).copy()
        index = int(rng.integers(bits.shape[0]))
        if variant % 5 == 0:          # exponent all ones: infinity or NaN
            bits[index] |= np.uint64(0x7FF << 52) | np.uint64(int(rng.integers(2)) << 51)
        else:                         # a mantissa or the sign bit
            bit = int(rng.choice([*range(52), 63]))
            bits[index] ^= np.uint64(1) << np.uint64(bit)
        damaged = bits.view(np.float64)
        target = _rewrite(path, tmp_path / f"params{variant}.npz", params=damaged)
        if not np.isfinite(damaged).all():
            _expect_error(target)
            outcomes["error"] += 1
            continue
        model = cffnn.load(target)
        outcomes["loaded"] += 1
        np.testing.assert_array_equal(model._network().params, damaged)
        assert np.isfinite(model.predict_proba(X)).all()
    assert outcomes == {"loaded": 40, "error": 10}, outcomes


def test_non_finite_params(saved, tmp_path):
    path, _, _ = saved
    params = _arrays(path)["params"]
    for name, value in [("nan", np.nan), ("inf", np.inf), ("minus_inf", -np.inf)]:
        damaged = params.copy()
        damaged[len(damaged) // 2] = value
        message = _expect_error(_rewrite(path, tmp_path / f"{name}.npz", params=damaged))
        assert "NaN" in message or "inf" in message.lower()


def test_text_file(tmp_path):
    path = tmp_path / "model.npz"
    path.write_text("this is not a model\n" * 20)
    _expect_error(path)


def test_foreign_npz(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weights=np.ones((3, 3)), labels=np.arange(3))
    _expect_error(path)


def test_plain_npy_file(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.arange(10.0))
    _expect_error(path)


def test_zip_that_is_not_an_npz(tmp_path):
    path = tmp_path / "archive.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    _expect_error(path)


def test_zip_with_raw_members_named_like_entries(saved, tmp_path):
    """Members without the .npy format come out of np.load as bytes, not arrays."""
    source, _, _ = saved
    metadata = json.dumps(_metadata(source))
    variants = {
        "metadata": {"metadata": metadata, "params.npy": None},
        "params": {"metadata.npy": None, "params": b"\x00" * 64},
        "classes": {"metadata.npy": None, "params.npy": None, "classes": b"cat dog eel"},
    }
    for name, members in variants.items():
        path = tmp_path / f"raw_{name}.npz"
        with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as archive:
            for member, content in members.items():
                archive.writestr(member, original.read(member) if content is None
                                 else content)
        _expect_error(path)


def _metadata_variants(metadata):
    def changed(**changes):
        new = json.loads(json.dumps(metadata))
        for key, value in changes.items():
            if value is ...:
                del new[key]
            else:
                new[key] = value
        return new

    def changed_attribute(**changes):
        new = json.loads(json.dumps(metadata))
        new["attributes"].update(changes)
        return new

    def changed_param(**changes):
        new = json.loads(json.dumps(metadata))
        new["params"].update(changes)
        return new

    variants = {
        "list": [1, 2, 3], "string": "cffnn-model", "null": None,
        "wrong_format": changed(format="keras"), "no_format": changed(format=...),
        "version_string": changed(format_version="1"),
        "version_float": changed(format_version=1.5), "version_zero": changed(format_version=0),
        "no_version": changed(format_version=...),
        "estimator": changed(estimator="Pipeline"), "no_estimator": changed(estimator=...),
        "params_list": changed(params=[1, 2]), "no_params": changed(params=...),
        "unknown_param": changed_param(bogus=1),
        "bad_hidden": changed_param(hidden_layer_sizes="abc"),
        "bad_solver": changed_param(solver="newton"), "bad_alpha": changed_param(alpha=-1),
        "class_weight_dict": changed_param(class_weight={"a": 1}),
        "class_weight_pairs": changed_param(class_weight={"pairs": "xy"}),
        "no_layer_sizes": changed(layer_sizes=...), "layer_sizes_int": changed(layer_sizes=4),
        "layer_sizes_str": changed(layer_sizes=["4", "x"]),
        "layer_sizes_empty": changed(layer_sizes=[]),
        "layer_sizes_negative": changed(layer_sizes=[4, -6, 5, 3]),
        "layer_sizes_zero": changed(layer_sizes=[4, 0, 5, 3]),
        "layer_sizes_longer": changed(layer_sizes=[4, 6, 5, 3, 3],
                                      activations=["relu"] * 3),
        "layer_sizes_shorter": changed(layer_sizes=[4, 6, 3], activations=["relu"]),
        "layer_sizes_permuted": changed(layer_sizes=[4, 5, 6, 3]),
        "layer_sizes_wrong_input": changed(layer_sizes=[5, 6, 5, 3]),
        "no_activations": changed(activations=...), "activations_int": changed(activations=5),
        "activations_unknown": changed(activations=["relu", "sinc"]),
        "activations_too_few": changed(activations=["relu"]),
        "out_activation": changed(out_activation="sinc"),
        "out_activation_mismatch": changed(out_activation="logistic"),
        "no_dtype": changed(dtype=...), "dtype_int": changed(dtype="int64"),
        "dtype_half": changed(dtype="float16"), "dtype_other": changed(dtype="float32"),
        "dtype_bogus": changed(dtype="bogus"), "dtype_number": changed(dtype=3),
        "classes_kind": changed(classes_kind="numeric"),
        "classes_kind_bogus": changed(classes_kind="pickle"),
        "regressor": changed(estimator="MLPRegressor"),
        "no_attributes": changed(attributes=...), "attributes_list": changed(attributes=[1]),
        "unknown_attribute": changed_attribute(__class__="x"),
        "unknown_attribute_2": changed_attribute(_net=None),
        "n_features_in": changed_attribute(n_features_in_=5),
        "n_outputs": changed_attribute(n_outputs_=2),
        "out_activation_attribute": changed_attribute(out_activation_="logistic"),
    }
    return variants


def test_metadata_of_wrong_content(saved, tmp_path):
    source, _, _ = saved
    metadata = _metadata(source)
    assert metadata["layer_sizes"] == [N_FEATURES, 6, 5, 3]
    for name, variant in _metadata_variants(metadata).items():
        path = _rewrite(source, tmp_path / f"meta_{name}.npz", metadata=_encode(variant))
        _expect_error(path)


def _consistent_changes(metadata, **changes):
    new = json.loads(json.dumps(metadata))
    if "output" in changes:
        new["out_activation"] = new["attributes"]["out_activation_"] = changes["output"]
    if "multilabel" in changes:
        new["multilabel"] = changes["multilabel"]
    return new


@pytest.mark.parametrize("case, changes", [
    ("multiclass", {"output": "logistic"}),
    ("multiclass", {"output": "identity"}),
    ("multiclass", {"multilabel": True}),
    ("binary", {"output": "identity"}),
    ("binary", {"output": "softmax"}),
    ("multilabel", {"output": "softmax"}),
    ("multilabel", {"multilabel": False}),
    ("regression", {"output": "logistic"}),
], ids=lambda value: "-".join(f"{k}={v}" for k, v in value.items())
   if isinstance(value, dict) else value)
def test_output_activation_must_fit_the_estimator(case, changes, tmp_path):
    """Metadata that agrees with itself but gives an output layer the estimator never
    has (softmax exactly for a single-label classifier with 3+ classes, logistic for
    binary / multilabel, identity for a regressor) is a damaged file, not a model."""
    model = _fitted(case, np.float64)
    source = tmp_path / "model.npz"
    model.save(source)
    metadata = _consistent_changes(_metadata(source), **changes)
    _expect_error(_rewrite(source, tmp_path / "changed.npz", metadata=_encode(metadata)))


def test_metadata_that_is_not_json(saved, tmp_path):
    source, _, _ = saved
    variants = {
        "not_json": b"not json {", "empty": b"", "not_utf8": b"\xff\xfe\x00{}",
        "truncated": json.dumps(_metadata(source)).encode()[:-5],
        "nan": b'{"format": NaN}',
        "deeply_nested": b"[" * 100_000 + b"]" * 100_000,
    }
    for name, text in variants.items():
        path = _rewrite(source, tmp_path / f"text_{name}.npz",
                        metadata=np.frombuffer(text, dtype=np.uint8))
        _expect_error(path)


def test_metadata_entry_of_wrong_type(saved, tmp_path):
    source, _, _ = saved
    text = json.dumps(_metadata(source)).encode()
    variants = {
        "missing": None,
        "float": np.frombuffer(text, dtype=np.uint8).astype(np.float64),
        "int8": np.frombuffer(text, dtype=np.int8),
        "two_d": np.frombuffer(text, dtype=np.uint8)[: len(text) // 2 * 2].reshape(2, -1),
        "string": np.array(text.decode()),
        "scalar": np.uint8(7),
    }
    for name, value in variants.items():
        path = _rewrite(source, tmp_path / f"entry_{name}.npz", metadata=value)
        _expect_error(path)


def test_array_entries_of_wrong_content(saved, tmp_path):
    source, _, _ = saved
    arrays = _arrays(source)
    params, classes = arrays["params"], arrays["classes"]
    variants = {
        "no_params": {"params": None},
        "params_float32": {"params": params.astype(np.float32)},
        "params_int": {"params": params.astype(np.int64)},
        "params_short": {"params": params[:-1]},
        "params_long": {"params": np.append(params, 0.0)},
        "params_two_d": {"params": params.reshape(1, -1)},
        "params_strings": {"params": params.astype(str)},
        "no_classes": {"classes": None},
        "classes_too_few": {"classes": classes[:2]},
        "classes_too_many": {"classes": np.append(classes, "fox")},
        "classes_two_d": {"classes": classes.reshape(3, 1)},
        "classes_numeric": {"classes": np.arange(3)},
        "classes_bytes": {"classes": classes.astype(bytes)},
        "feature_names_short": {"feature_names_in": np.array(["a", "b"])},
        "feature_names_numeric": {"feature_names_in": np.arange(N_FEATURES)},
    }
    for name, changes in variants.items():
        _expect_error(_rewrite(source, tmp_path / f"array_{name}.npz", **changes))


def test_huge_layer_sizes_do_not_allocate(saved, tmp_path):
    """Layer sizes whose network needs more memory than any machine has (2**56
    parameters) must be rejected as not matching params, not by a MemoryError."""
    source, _, _ = saved
    metadata = _metadata(source)
    metadata.update(layer_sizes=[2**28, 2**28, 3], activations=["relu"])
    metadata["attributes"].update(n_features_in_=2**28, n_layers_=3)
    _expect_error(_rewrite(source, tmp_path / "huge.npz", metadata=_encode(metadata)))


def test_regressor_file_with_classifier_label(tmp_path):
    model = _fitted("regression", np.float64)
    path = tmp_path / "regressor.npz"
    model.save(path)
    metadata = _metadata(path)
    metadata["estimator"] = "MLPClassifier"
    _expect_error(_rewrite(path, tmp_path / "relabelled.npz", metadata=_encode(metadata)))


def test_newer_format_version_asks_to_upgrade(saved, tmp_path):
    source, _, _ = saved
    metadata = _metadata(source)
    metadata.update(format_version=2, cffnn_version="9.0.0")
    message = _expect_error(_rewrite(source, tmp_path / "newer.npz",
                                     metadata=_encode(metadata)))
    assert "upgrade" in message.lower()
    assert "2" in message


class _CreatesFile:
    """Unpickling this creates the file at path (what a hostile pickle could do)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("entry", ["metadata", "params", "classes", "feature_names_in"])
def test_pickled_entry_is_never_unpickled(entry, saved, tmp_path):
    source, _, _ = saved
    marker = tmp_path / "code_was_executed"
    hostile = np.empty(2, dtype=object)
    hostile[0], hostile[1] = _CreatesFile(marker), "x"
    path = _rewrite(source, tmp_path / f"hostile_{entry}.npz", **{entry: hostile})
    # the file really is hostile: unpickling it runs the code
    with np.load(path, allow_pickle=True) as archive:
        _ = archive[entry]
    assert marker.exists()
    marker.unlink()
    _expect_error(path)
    assert not marker.exists()


# -- 4. prediction without scikit-learn's training machinery ------------------------------

_PREDICT_ONLY = """
import sys
import numpy as np
import cffnn
X = np.load("X.npy")
for name in sys.argv[1:]:
    model = cffnn.load(name + ".npz")
    np.save(name + "_predict.npy", model.predict(X))
    if hasattr(model, "predict_proba"):
        np.save(name + "_proba.npy", model.predict_proba(X))
training = sorted(name for name in sys.modules
                  if name.split(".")[:2] in (["sklearn", "neural_network"],
                                             ["sklearn", "model_selection"]))
print("TRAINING_MODULES", training)
"""


def test_load_and_predict_without_training_machinery(tmp_path):
    """A fresh interpreter loads a classifier and a regressor and predicts exactly as
    the fitted models do, without importing scikit-learn's MLP or model_selection."""
    X, _ = _data(np.float32)
    np.save(tmp_path / "X.npy", X)
    cases = ("strings", "multi_output")
    for case in cases:
        _fitted(case, np.float32).save(tmp_path / f"{case}.npz")
    result = subprocess.run([sys.executable, "-c", _PREDICT_ONLY, *cases],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for case in cases:
        model = _fitted(case, np.float32)
        np.testing.assert_array_equal(np.load(tmp_path / f"{case}_predict.npy"),
                                      model.predict(X))
        if _is_classifier(model):
            np.testing.assert_array_equal(np.load(tmp_path / f"{case}_proba.npy"),
                                          model.predict_proba(X))
    assert "TRAINING_MODULES []" in result.stdout, result.stdout
