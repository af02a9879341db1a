"""Fashion-MNIST test accuracy after a number of epochs: cffnn and its peers, same recipe.

    python benchmarks/fashion_accuracy.py [--seeds 5] [--epochs 10] [--threads 2]
                                          [--only cffnn,torch] [--inits glorot,torch]
                                          [--drop-at 8]

The "fashion" task of benchmarks/compare.py (784-256-128-10, ReLU, softmax, Adam lr 0.001,
batch 128, float32, a new shuffle every epoch), trained from scratch once per seed by each
implementation, then scored on the 10000 test images. Needs Fashion-MNIST on this machine
(`apt-get install dataset-fashion-mnist`): accuracy on synthetic data means nothing.

Seed s gives every implementation its initial weights and shuffles from s. cffnn and the
NumPy reference start from the same weights (cffnn's He-uniform) and differ only in
rounding and shuffling; scikit-learn (Glorot, alpha=1e-4) and PyTorch (torch.nn.Linear's
initialisation) start from their own. Prints, per implementation, the test accuracy of
each seed, their mean and standard deviation, and the median epoch time; the
implementations train in turn, so a slow spell of the machine does not favour one.

--drop-at E divides every implementation's learning rate by 10 from epoch E on (epochs
counted from 1), as PyTorch's MultiStepLR(milestones=[E - 1], gamma=0.1) would: the same
recipe with a step decay of the learning rate. Without it the rate stays 0.001.

--inits adds cffnn started from other initial weights and biases (drawn from seed s too):
"glorot", U(+-sqrt(6 / (fan_in + fan_out))) as scikit-learn draws them for ReLU, and
"torch", U(+-1 / sqrt(fan_in)) as torch.nn.Linear does; whether the recipe's accuracy
depends on cffnn's initialisation.
"""
import argparse
import importlib.util
import os
import statistics
import sys
import time

import numpy as np

import cffnn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmarks.training import (  # noqa: E402
    IMPLEMENTATIONS, TASKS, cffnn_epoch, load_fashion, peer_blas_limits)

# half-width of the uniform distribution of a layer's weights and biases, by --inits name
INIT_BOUNDS = {"glorot": lambda fan_in, fan_out: (6 / (fan_in + fan_out)) ** 0.5,
               "torch": lambda fan_in, fan_out: fan_in ** -0.5}


def cffnn_initialised(init):
    """cffnn_epoch, its network's weights and biases redrawn as INIT_BOUNDS[init] says."""
    def make(task, X, y, threads, seed=0):
        run = cffnn_epoch(task, X, y, threads, seed=seed)
        rng = np.random.default_rng(seed)
        for weights, biases in zip(run.net.weights, run.net.biases):
            bound = INIT_BOUNDS[init](*weights.shape)
            weights[...] = rng.uniform(-bound, bound, weights.shape)
            biases[...] = rng.uniform(-bound, bound, biases.shape)
        return run
    return make


def train_and_score(make, X, y, X_test, y_test, epochs, threads, seed, drop_at=None):
    """(test accuracy, median epoch seconds) of one implementation trained from seed; from
    epoch drop_at on (1-based), at a tenth of the learning rate."""
    run = make(TASKS["fashion"], X, y, threads, seed=seed)
    times = []
    for epoch in range(1, epochs + 1):
        if epoch == drop_at:
            run.set_learning_rate(0.0001)
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float((run.predict(X_test) == y_test).mean()), statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1 (default 5)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default=",".join(IMPLEMENTATIONS),
                        help="comma-separated implementations (default: all)")
    parser.add_argument("--drop-at", type=int, default=None,
                        help="epoch (from 1) from which the learning rate is 0.0001 "
                             "instead of 0.001 (default: never)")
    parser.add_argument("--inits", default="",
                        help=f"comma-separated other initialisations of cffnn to add, from "
                             f"{', '.join(INIT_BOUNDS)} (default: none)")
    args = parser.parse_args(argv)
    test = load_fashion("t10k")
    if test is None:
        sys.exit("Fashion-MNIST is not on this machine (apt-get install "
                 "dataset-fashion-mnist); accuracy on synthetic data would mean nothing")
    X_test, y_test, _ = test
    X, y, _ = load_fashion("train")
    impls = {}
    for name in args.only.split(","):
        if name not in IMPLEMENTATIONS:
            parser.error(f"unknown implementation {name!r}; choose from "
                         f"{', '.join(IMPLEMENTATIONS)}")
        if name == "torch" and importlib.util.find_spec("torch") is None:
            print("torch is not installed: skipped")
            continue
        impls[name] = IMPLEMENTATIONS[name]
    for init in filter(None, args.inits.split(",")):
        if init not in INIT_BOUNDS:
            parser.error(f"unknown initialisation {init!r}; choose from "
                         f"{', '.join(INIT_BOUNDS)}")
        impls[f"cffnn/{init}"] = cffnn_initialised(init)
    schedule = ("learning rate 0.001" if args.drop_at is None else
                f"learning rate 0.001, 0.0001 from epoch {args.drop_at}")
    print(f"cffnn {cffnn.__version__}; Fashion-MNIST, {args.epochs} epochs, {schedule}, "
          f"{args.threads} threads, seeds 0-{args.seeds - 1}", flush=True)
    scores = {name: [] for name in impls}
    epoch_times = {name: [] for name in impls}
    for seed in range(args.seeds):
        for name, make in impls.items():
            with peer_blas_limits(name.split("/")[0], args.threads):
                accuracy, seconds = train_and_score(make, X, y, X_test, y_test,
                                                    args.epochs, args.threads, seed,
                                                    args.drop_at)
            scores[name].append(accuracy)
            epoch_times[name].append(seconds)
            print(f"  seed {seed} {name:<12} test accuracy {accuracy:.4f}, "
                  f"median epoch {seconds:.3f} s", flush=True)
    print(f"\n{'implementation':<16}{'mean':>8}{'std':>8}{'min':>8}{'max':>8}"
          f"{'epoch (s)':>11}")
    for name, values in scores.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{name:<16}{statistics.mean(values):>8.4f}{spread:>8.4f}{min(values):>8.4f}"
              f"{max(values):>8.4f}{statistics.median(epoch_times[name]):>11.3f}")


if __name__ == "__main__":
    main()
