"""The main job (`cffnn` / `python -m cffnn`): trains on digits or a CSV file, saves and
applies models, and answers bad arguments and unreadable files with one line."""
import subprocess
import sys
import warnings

import numpy as np
import pytest

import cffnn
from cffnn.__main__ import main


def run_cli(cwd, *args):
    # From a neutral directory, so that Python imports the installed package.
    return subprocess.run([sys.executable, "-m", "cffnn", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def write_csv(path, header, rows):
    path.write_text(",".join(header) + "\n"
                    + "".join(",".join(map(str, row)) + "\n" for row in rows))
    return path


@pytest.fixture
def blobs_csv(tmp_path):
    """Three separable classes with string labels, 240 rows, 3 numeric features."""
    rng = np.random.default_rng(0)
    labels = np.array(["cat", "dog", "eel"])[np.arange(240) % 3]
    centers = {"cat": (0, 0, 50), "dog": (4, 0, 60), "eel": (0, 4, 70)}
    X = np.array([centers[label] for label in labels]) + rng.normal(size=(240, 3))
    rows = [(*np.round(x, 4), label) for x, label in zip(X, labels)]
    return write_csv(tmp_path / "blobs.csv", ["a", "b", "c", "animal"], rows)


def test_default_job_trains_on_digits_and_reports(tmp_path):
    result = run_cli(tmp_path, "--epochs", "15")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "digits" in out
    assert out.count("Iteration ") == 15                  # progress per epoch
    accuracy = float(out.split("test accuracy:")[1].split()[0])
    assert accuracy > 0.9
    assert "training:" in out and "NumPy reference" in out and "faster" in out


def test_csv_classification_save_and_predict(tmp_path, blobs_csv):
    model_path = tmp_path / "model.npz"
    result = run_cli(tmp_path, "--csv", str(blobs_csv), "--target", "animal", "--epochs",
                     "100", "--learning-rate", "0.01", "--hidden", "16,8", "--save",
                     str(model_path), "--quiet", "--no-reference")
    assert result.returncode == 0, result.stderr
    assert "classification" in result.stdout and "3 classes" in result.stdout
    assert float(result.stdout.split("test accuracy:")[1].split()[0]) > 0.95

    model = cffnn.load(model_path)
    assert list(model.classes_) == ["cat", "dog", "eel"]
    assert [layer.shape for layer in model.coefs_] == [(3, 16), (16, 8), (8, 3)]
    assert list(model.feature_names_in_) == ["a", "b", "c"]

    # The saved model takes raw feature values (the scaling is folded into layer 1),
    # and --predict finds the feature columns by name, whatever their order.
    new_rows = [("0.1", "0.2", "50.3"), ("4.1", "-0.2", "59.8"), ("-0.3", "4.2", "70.1")]
    new_csv = write_csv(tmp_path / "new.csv", ["c", "b", "a"],
                        [(c, b, a) for a, b, c in new_rows])
    result = run_cli(tmp_path, "--predict", str(model_path), "--csv", str(new_csv))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["prediction", "cat", "dog", "eel"]

    out_path = tmp_path / "predictions.csv"
    result = run_cli(tmp_path, "--predict", str(model_path), "--csv", str(new_csv),
                     "--output", str(out_path))
    assert result.returncode == 0, result.stderr
    assert out_path.read_text().split() == ["prediction", "cat", "dog", "eel"]


def test_csv_regression_is_detected_and_forced(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    y = 3 * X[:, 0] - 2 * X[:, 1] + 0.05 * rng.normal(size=300)
    path = write_csv(tmp_path / "reg.csv", ["x0", "x1", "y"],
                     [(*np.round(x, 5), round(t, 5)) for x, t in zip(X, y)])
    result = run_cli(tmp_path, "--csv", str(path), "--target", "y", "--epochs", "200",
                     "--learning-rate", "0.01", "--quiet", "--no-reference")
    assert result.returncode == 0, result.stderr
    assert "regression" in result.stdout
    assert float(result.stdout.split("test R^2:")[1].split()[0]) > 0.95

    # whole-number targets with few values read as classes, unless forced
    labels = write_csv(tmp_path / "int.csv", ["x0", "y"], [(i % 7, i % 2) for i in range(40)])
    result = run_cli(tmp_path, "--csv", str(labels), "--target", "y", "--epochs", "2",
                     "--quiet", "--no-reference")
    assert "classification" in result.stdout, result.stderr
    result = run_cli(tmp_path, "--csv", str(labels), "--target", "y", "--epochs", "2",
                     "--quiet", "--no-reference", "--task", "regression")
    assert "regression" in result.stdout, result.stderr


def test_lbfgs_solver_reports_per_evaluation_speed(tmp_path):
    result = run_cli(tmp_path, "--solver", "lbfgs", "--epochs", "20", "--hidden", "32",
                     "--quiet")
    assert result.returncode == 0, result.stderr
    assert "loss-and-gradient evaluation" in result.stdout


BAD_CALLS = [
    (["--hidden", "x"], "comma-separated integers"),
    (["--hidden", "0"], ">= 1"),
    (["--activation", "nope"], "unknown activation"),
    (["--solver", "newton"], "invalid choice"),
    (["--epochs", "many"], "invalid int value"),
    (["--epochs", "0"], "max_iter"),
    (["--test-size", "1.5"], "--test-size"),
    (["--csv", "missing.csv", "--target", "y"], "No such file"),
    (["--csv", "data.csv"], "--target"),
    (["--target", "y"], "--csv"),
    (["--predict", "missing.npz", "--csv", "data.csv"], "No such file"),
    (["--predict", "data.csv", "--csv", "data.csv"], "not a readable cffnn model"),
    (["--predict", "model.npz"], "needs --csv"),
    (["--predict", "model.npz", "--csv", "wide.csv"], "takes 1 features"),
    (["--csv", "data.csv", "--target", "nope"], "no column named 'nope'"),
    (["--csv", "text.csv", "--target", "y"], "not a number"),
    (["--csv", "ragged.csv", "--target", "y"], "fields"),
    (["--csv", "binary.csv", "--target", "y"], "not a text CSV"),
    (["--csv", "gaps.csv", "--target", "y"], "missing value"),
    (["--csv", "infinite.csv", "--target", "y"], "missing or infinite"),
]


@pytest.fixture
def bad_files(tmp_path, monkeypatch):
    write_csv(tmp_path / "data.csv", ["x", "y"], [(i, i % 2) for i in range(20)])
    write_csv(tmp_path / "wide.csv", ["x", "z", "y"], [(i, i, i % 2) for i in range(20)])
    write_csv(tmp_path / "text.csv", ["x", "y"], [("a", 1), ("b", 0)])
    (tmp_path / "ragged.csv").write_text("x,y\n1,2\n3\n")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x81" * 100)
    write_csv(tmp_path / "gaps.csv", ["x", "z", "y"], [(1, "", 0), (2, 3, 1)])
    write_csv(tmp_path / "infinite.csv", ["x", "y"], [(1, 0), ("inf", 1)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # ConvergenceWarning after one epoch
        model = cffnn.MLPClassifier(hidden_layer_sizes=(2,), max_iter=1).fit(
            [[0.0], [1.0]], [0, 1])
    model.save(tmp_path / "model.npz")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("args, words", BAD_CALLS)
def test_bad_arguments_and_files_give_one_clear_line(bad_files, capsys, args, words):
    try:
        code = main(args)
    except SystemExit as exit:          # argparse's errors
        code = exit.code
    captured = capsys.readouterr()
    assert code != 0
    assert words in captured.err
    assert len(captured.err.strip().splitlines()) == 1, captured.err


@pytest.mark.parametrize("args, words", [BAD_CALLS[0], BAD_CALLS[11]])
def test_bad_calls_in_a_process_exit_without_traceback(bad_files, args, words):
    result = run_cli(bad_files, *args)
    assert result.returncode in (1, 2)
    assert words in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_help_documents_the_options(tmp_path):
    result = run_cli(tmp_path, "--help")
    assert result.returncode == 0
    for option in ("--csv", "--target", "--task", "--hidden", "--solver", "--epochs",
                   "--save", "--predict"):
        assert option in result.stdout
