"""cffnn (or python -m cffnn): build a network on built-in data, check its gradient, time it.

Until the estimators exist this is cffnn's main job: it shows that the compiled
gradient agrees with finite differences and what the compiled forward pass costs
next to the NumPy reference, on a 64-32-10 network and a synthetic 10-class problem.
"""
import argparse
import sys
import time

import numpy as np

import cffnn
from cffnn import reference


def make_blobs(n_samples=2000, n_features=64, n_classes=10, seed=0):
    """Gaussian blobs, one per class: X (n_samples, n_features) float32, y (n_samples,)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(n_classes, n_features))
    y = rng.integers(0, n_classes, n_samples)
    X = centers[y] + rng.normal(size=(n_samples, n_features))
    return X.astype(np.float32), y


def median_seconds(function, repeat=7):
    """Median time of one call, over `repeat` timings of enough calls to take ~20 ms."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            function()
        if time.perf_counter() - start > 0.02:
            break
        number *= 2
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            function()
        timings.append((time.perf_counter() - start) / number)
    return float(np.median(timings))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="cffnn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", default="32",
                        help="hidden layer widths, comma-separated (default: 32)")
    parser.add_argument("--activation", default="relu", help="hidden activation (default: relu)")
    parser.add_argument("--config", action="store_true", help="print cffnn.show_config() first")
    args = parser.parse_args(argv)
    try:
        hidden = [int(width) for width in args.hidden.split(",") if width]
        X, y = make_blobs()
        net = cffnn.Network([X.shape[1], *hidden, 10], activation=args.activation,
                            output="softmax", random_state=0)
    except ValueError as error:
        print(f"cffnn: {error}", file=sys.stderr)
        return 2
    if args.config:
        cffnn.show_config()
        print()

    print(f"{net}\n{X.shape[0]} samples, {X.shape[1]} features, 10 classes")
    loss, grad = net.loss_and_gradient(X, y, alpha=1e-4)
    print(f"loss at initialisation: {loss:.4f}  (log(10) = {np.log(10):.4f})")

    X_small, y_small = X[:50], y[:50]
    net64 = cffnn.Network(net.layer_sizes, activation=args.activation, output="softmax",
                          dtype=np.float64, random_state=0)
    error64 = cffnn.check_gradient(net64, X_small, y_small, alpha=1e-4)
    error32 = cffnn.check_gradient(net, X_small, y_small, alpha=1e-4)
    print(f"gradient vs finite differences, max relative error: "
          f"float64 {error64:.1e}, float32 {error32:.1e}")

    Y = np.eye(10, dtype=np.float32)[y]
    batch, one_row = X[:32], X[:1]
    cases = [
        ("forward, 1 row", lambda: net.forward(one_row),
         lambda: reference.forward(net.weights, net.biases, one_row, net.activations, "softmax")),
        ("loss_and_gradient, 32 rows", lambda: net.loss_and_gradient(batch, Y[:32]),
         lambda: reference.loss_and_gradient(net.weights, net.biases, batch, Y[:32],
                                             net.activations, "softmax", "log_loss")),
        (f"loss_and_gradient, {X.shape[0]} rows", lambda: net.loss_and_gradient(X, Y),
         lambda: reference.loss_and_gradient(net.weights, net.biases, X, Y,
                                             net.activations, "softmax", "log_loss")),
    ]
    print(f"\n{'float32, median per call':<34}{'cffnn':>10}{'NumPy':>10}{'speed-up':>10}")
    for label, fast, slow in cases:
        fast_time, slow_time = median_seconds(fast), median_seconds(slow)
        print(f"{label:<34}{fast_time * 1e6:>8.1f}us{slow_time * 1e6:>8.1f}us"
              f"{slow_time / fast_time:>9.1f}x")
    ok = error64 < 1e-6 and error32 < 1e-2
    print("\ngradient check " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
