"""cffnn (or python -m cffnn): train a multilayer perceptron and report what it cost.

With no arguments: an MLPClassifier on scikit-learn's digits (it ships with the
install), one progress line per epoch, then the test accuracy, the training time and
the speed-up over the NumPy reference (cffnn/reference.py) training the same network on
the same data.

  cffnn --csv data.csv --target label          train on your CSV (header row; numeric
                                               feature columns); classification or
                                               regression is detected from the target
  cffnn --csv data.csv --target y --save m.npz  ... and save the model
  cffnn --predict m.npz --csv new.csv          apply a saved model: one prediction per row

Features are standardised with the training rows' mean and standard deviation, and that
scaling is folded into the first layer's weights afterwards, so a saved model takes the
raw feature values.
"""
import argparse
import csv
import sys
import time
import warnings

import numpy as np

import cffnn
from cffnn import _csv, reference


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """One line, not the usage block: bad arguments are a typo to fix."""
        self.exit(2, f"cffnn: error: {message} (see cffnn --help)\n")


def build_parser():
    parser = _Parser(prog="cffnn", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--csv", metavar="PATH", help="CSV file with a header row (default: "
                      "scikit-learn's digits)")
    data.add_argument("--target", metavar="COLUMN", help="name of the target column "
                      "(required with --csv when training)")
    data.add_argument("--task", choices=("auto", "classification", "regression"),
                      default="auto", help="auto (default): regression for a numeric target "
                      "unless it holds at most 20 distinct whole numbers")
    data.add_argument("--test-size", type=float, default=0.25, metavar="FRACTION",
                      help="fraction of the rows held out for the test score (default 0.25)")
    model = parser.add_argument_group("model and training")
    model.add_argument("--hidden", default="100", metavar="WIDTHS",
                       help="hidden layer widths, comma-separated, e.g. 256,128 (default 100)")
    model.add_argument("--activation", default="relu", help="hidden activation (default relu)")
    model.add_argument("--solver", choices=("adam", "sgd", "rprop", "lbfgs"), default="adam",
                       help="default adam")
    model.add_argument("--epochs", type=int, default=50, metavar="N",
                       help="epochs (iterations for lbfgs), default 50")
    model.add_argument("--batch-size", type=int, default=200, metavar="N", help="default 200")
    model.add_argument("--learning-rate", type=float, default=0.001, metavar="RATE",
                       help="initial learning rate, default 0.001")
    model.add_argument("--alpha", type=float, default=1e-4, help="L2 penalty, default 1e-4")
    model.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    model.add_argument("--seed", type=int, default=0, help="random seed (split, weights)")
    model.add_argument("--threads", type=int, default=None, metavar="N",
                       help="threads for the kernels (default: every usable core)")
    out = parser.add_argument_group("output")
    out.add_argument("--save", metavar="PATH", help="write the trained model (.npz)")
    out.add_argument("--predict", metavar="MODEL", help="apply a saved model to --csv")
    out.add_argument("--output", metavar="PATH", help="with --predict: write the "
                     "predictions there instead of to standard output")
    out.add_argument("--quiet", action="store_true", help="no line per epoch")
    out.add_argument("--no-reference", action="store_true",
                     help="skip timing the NumPy reference")
    out.add_argument("--config", action="store_true", help="print cffnn.show_config() first")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config:
        cffnn.show_config()
        print()
    try:
        if args.predict:
            return predict_job(args)
        return train_job(args)
    except (OSError, ValueError) as error:   # unreadable files, bad data or settings
        print(f"cffnn: error: {error}", file=sys.stderr)
        return 1


# -- training ----------------------------------------------------------------------------

def train_job(args):
    from sklearn.model_selection import train_test_split

    hidden = _parse_hidden(args.hidden)
    X, y, task, feature_names, source = _training_data(args)
    dtype = np.dtype(args.dtype)
    X = X.astype(dtype)
    classify = task == "classification"
    if not 0.0 < args.test_size < 1.0:
        raise ValueError(f"--test-size must be between 0 and 1, got {args.test_size}")
    stratify = y if classify and np.unique(y, return_counts=True)[1].min() >= 2 else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=args.test_size, random_state=args.seed, stratify=stratify)

    mean, scale = X_train.mean(axis=0), X_train.std(axis=0)
    scale[scale == 0] = 1
    estimator = (cffnn.MLPClassifier if classify else cffnn.MLPRegressor)(
        hidden_layer_sizes=hidden, activation=args.activation, solver=args.solver,
        alpha=args.alpha, batch_size=args.batch_size, learning_rate_init=args.learning_rate,
        max_iter=args.epochs, random_state=args.seed, verbose=not args.quiet,
        n_threads=args.threads)
    print(f"{source}: {X.shape[0]} rows, {X.shape[1]} features, {task}"
          + (f", {np.unique(y).shape[0]} classes" if classify else "")
          + f"; {X_train.shape[0]} rows to train, {X_test.shape[0]} to test")
    n_classes = np.unique(y).shape[0] if classify else 0
    n_outputs = (1 if n_classes <= 2 else n_classes) if classify else 1
    print(f"network {'-'.join(map(str, [X.shape[1], *hidden, n_outputs]))}, "
          f"{args.activation}, solver {args.solver}, {args.dtype}")
    X_scaled = ((X_train - mean) / scale).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)   # ConvergenceWarning
        start = time.perf_counter()
        estimator.fit(X_scaled, y_train)
        fit_seconds = time.perf_counter() - start
    _fold_standardisation(estimator, mean, scale)
    if feature_names is not None:
        estimator.feature_names_in_ = np.asarray(feature_names, dtype=object)

    X_test_raw = np.ascontiguousarray(X_test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)   # arrays without names
        score = estimator.score(X_test_raw, y_test)
    metric = "accuracy" if classify else "R^2"
    n_epochs = estimator.n_iter_
    print(f"\ntest {metric}: {score:.4f}")
    print(f"training: {fit_seconds:.3f} s for {n_epochs} "
          f"{'iterations' if args.solver == 'lbfgs' else 'epochs'} of "
          f"{X_train.shape[0]} rows")
    if not args.no_reference:
        _report_reference_speed(estimator, X_scaled, y_train, args, fit_seconds)
    if args.save:
        estimator.save(args.save)
        print(f"model saved to {args.save}")
    return 0


def _training_data(args):
    """(X, y, task, feature names or None, description)."""
    if args.csv is None:
        if args.target is not None:
            raise ValueError("--target needs --csv")
        from sklearn.datasets import load_digits
        digits = load_digits()
        task = "regression" if args.task == "regression" else "classification"
        return digits.data, digits.target, task, None, "scikit-learn's digits"
    if args.target is None:
        raise ValueError("--csv needs --target COLUMN to train (or --predict MODEL to "
                         "apply a saved model)")
    header, rows = _csv.read_csv(args.csv)
    features = [name for name in header if name != args.target]
    values = _csv.target_column(args.csv, header, rows, args.target)
    X = _csv.numeric_matrix(args.csv, header, rows, features)
    y, task = _csv.as_task(values, args.task)
    return X, y, task, features, args.csv


def _parse_hidden(text):
    try:
        widths = tuple(int(width) for width in text.split(",") if width.strip())
    except ValueError:
        raise ValueError(f"--hidden takes comma-separated integers, e.g. 256,128; got "
                         f"{text!r}") from None
    if any(width < 1 for width in widths):
        raise ValueError(f"--hidden widths must be >= 1, got {text!r}")
    return widths


def _fold_standardisation(estimator, mean, scale):
    """Make the model take raw features: with X_s = (X - mean) / scale,
    X_s W + b = X (W / scale[:, None]) + (b - (mean / scale) W)."""
    weights, biases = estimator.coefs_[0], estimator.intercepts_[0]
    biases -= ((mean / scale) @ weights).astype(biases.dtype)
    weights /= scale[:, None].astype(weights.dtype)


def _report_reference_speed(estimator, X, y, args, fit_seconds):
    """The same training step in plain NumPy (cffnn/reference.py), timed per epoch."""
    net = estimator._network()
    Y = estimator._encode(y) if hasattr(estimator, "_encode") else y
    Y = np.asarray(Y)
    if Y.ndim == 1 and net.output == "softmax":
        Y = np.eye(net.layer_sizes[-1], dtype=net.dtype)[Y]
    Y = Y.reshape(X.shape[0], -1).astype(net.dtype)
    weights = [w.copy() for w in net.weights]
    biases = [b.copy() for b in net.biases]
    if args.solver == "lbfgs":
        def numpy_step():
            reference.loss_and_gradient(weights, biases, X, Y, net.activations, net.output,
                                        net.loss_name, alpha=args.alpha)
        numpy_seconds = _median_seconds(numpy_step)
        fast_seconds = _median_seconds(lambda: net.loss_and_gradient(X, Y, alpha=args.alpha))
        print(f"one loss-and-gradient evaluation: cffnn {fast_seconds * 1e3:.2f} ms, NumPy "
              f"reference {numpy_seconds * 1e3:.2f} ms: {numpy_seconds / fast_seconds:.1f}x")
        return
    epoch = _numpy_epoch(weights, biases, X, Y, net, args)
    numpy_seconds = _median_seconds(epoch, repeat=3)
    fast_seconds = fit_seconds / max(estimator.n_iter_, 1)
    print(f"per epoch: cffnn {fast_seconds * 1e3:.2f} ms, NumPy reference "
          f"{numpy_seconds * 1e3:.2f} ms: cffnn is {numpy_seconds / fast_seconds:.1f}x faster")


def _numpy_epoch(weights, biases, X, Y, net, args):
    params = weights + biases
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    rng = np.random.default_rng(args.seed)
    batch = X.shape[0] if args.solver == "rprop" else min(args.batch_size, X.shape[0])
    steps = [0]

    def epoch():
        order = rng.permutation(X.shape[0])
        for start in range(0, X.shape[0], batch):
            rows = order[start:start + batch]
            _, grad_w, grad_b = reference.loss_and_gradient(
                weights, biases, X[rows], Y[rows], net.activations, net.output,
                net.loss_name, alpha=args.alpha)
            steps[0] += 1
            for p, g, m, s in zip(params, grad_w + grad_b, first, second):
                if args.solver == "adam":
                    reference.adam_step(p, g, m, s, steps[0], args.learning_rate, 0.9, 0.999,
                                        1e-8)
                elif args.solver == "sgd":
                    reference.sgd_step(p, g, m, args.learning_rate, 0.9, True)
                else:
                    if steps[0] == 1:
                        s[...] = 0.1
                    reference.rprop_step(p, g, m, s)
    return epoch


def _median_seconds(function, repeat=5):
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return float(np.median(timings))


# -- prediction --------------------------------------------------------------------------

def predict_job(args):
    if args.csv is None:
        raise ValueError("--predict MODEL needs --csv PATH, the rows to predict")
    model = cffnn.load(args.predict)
    header, rows = _csv.read_csv(args.csv)
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        columns = [str(name) for name in names]
    else:
        columns = [name for name in header if name != args.target]
    X = _csv.numeric_matrix(args.csv, header, rows, columns)
    if X.shape[1] != model.n_features_in_:
        raise ValueError(f"the model takes {model.n_features_in_} features but {args.csv} "
                         f"has {X.shape[1]} feature columns")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)   # arrays without names
        predictions = model.predict(X)
    predictions = np.asarray(predictions)
    n_columns = 1 if predictions.ndim == 1 else predictions.shape[1]
    names = (["prediction"] if n_columns == 1
             else [f"prediction_{k}" for k in range(n_columns)])
    file = open(args.output, "w", newline="") if args.output else sys.stdout
    try:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(_format_row(row) for row in predictions)
    finally:
        if args.output:
            file.close()
            print(f"{predictions.shape[0]} predictions written to {args.output}")
    return 0


def _format_row(row):
    """One CSV row: floats in full precision (repr), labels as they are."""
    values = row if isinstance(row, np.ndarray) else [row]
    return [repr(float(value)) if isinstance(value, (float, np.floating)) else str(value)
            for value in values]


if __name__ == "__main__":
    sys.exit(main())
