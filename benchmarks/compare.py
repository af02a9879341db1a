"""One epoch of training, side by side: cffnn, the NumPy reference, scikit-learn, PyTorch.

    python benchmarks/compare.py [--repeat 5] [--only TEXT] [--threads 2] [--settle 0.2]

Tasks (float32, every implementation on --threads threads, same run, medians of --repeat
measurements after one warm-up epoch, the implementations taking turns; a measurement is
one epoch, or the mean of consecutive epochs lasting 0.1 s where one is shorter; ratios
> 1 mean cffnn is faster):

    fashion     784-256-128-10, ReLU, softmax, Adam, batch 128, one epoch of 60000 rows
                (Fashion-MNIST when `apt-get install dataset-fashion-mnist` put it on this
                machine, else synthetic data of that shape)
    digits      64-32-10, ReLU, softmax, Adam, batch 32, scikit-learn's digits (1797 rows);
                also reported per minibatch step
    regression  8-64-64-1, tanh, squared error, SGD momentum 0.9, batch 64, 100000 rows

For fashion, cffnn also runs on one thread in the same rounds, and a line under the row
gives how much faster --threads threads are than one (issue 3's target: 1.7x on 2).
Another line counts cffnn's epochs that ran on a team: fit_epoch runs an epoch on one
thread when a team would not pay, to time one thread (its second epoch), and after a
team went solo or ran slower than one thread (_kernels.judge_team).

The NumPy reference is cffnn/reference.py's loss_and_gradient plus its Adam/SGD steps in
a Python loop over minibatches; scikit-learn runs MLPClassifier/MLPRegressor.partial_fit
on one shuffled epoch; PyTorch a Sequential with torch.optim (Adam(fused=True) where
available) and a DataLoader-free loop over index slices.

Before and after the table, a line of benchmarks/machine_probe.py says how much a second
thread added to matrix products at that moment: about 2x when the host gave the two
vCPUs a core each, about 1x when they shared one. Absolute times from the two states
differ by up to 1.5x here; the ratios, measured in the same rounds, much less.
"""
import argparse
import functools
import os
import statistics
import sys
import time

import cffnn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmarks.common import autorange_number, busy_wait  # noqa: E402
from benchmarks.training import IMPLEMENTATIONS, TASKS, peer_blas_limits  # noqa: E402
from machine_probe import describe as describe_machine  # noqa: E402

ONE_THREAD = "cffnn, 1 thread"   # the extra run of the fashion task
SHORT_EPOCH = 0.1   # seconds: one measurement of shorter epochs times several in a row


def median_epochs(runs, repeat, settle):
    """{impl: median seconds of an epoch}, the implementations interleaved in every round.

    runs: {impl: (run, limits)}, limits a context for the BLAS threads of the epoch. Each
    implementation first runs one warm-up epoch, which also sets how many epochs one
    measurement times: one, or for epochs under SHORT_EPOCH seconds as many consecutive
    ones as last SHORT_EPOCH (1, 2, 5, 10, ... as timeit's autorange), the measurement
    being their mean. A lone epoch of a millisecond measures how fast the core comes back
    from the pause below more than how fast the implementation trains. Then every round
    times one measurement of each implementation in turn, after `settle` seconds for the
    previous one's spinning threads (see compare_core.time_case) and, for short epochs,
    one untimed epoch that warms its caches again. Interleaving makes the machine's
    changes of speed (on a shared machine, 2x within a minute) hit every implementation
    alike: one after the other, a digits run once measured sklearn/cffnn 17.5 where the
    runs before gave 30-61.
    """
    numbers = {}
    for impl, (run, limits) in runs.items():
        with limits():
            start = time.perf_counter()
            run()
            short = time.perf_counter() - start < SHORT_EPOCH
            numbers[impl] = autorange_number(run, SHORT_EPOCH) if short else 1
    times = {impl: [] for impl in runs}
    for _ in range(repeat):
        for impl, (run, limits) in runs.items():
            with limits():
                busy_wait(settle)
                if numbers[impl] > 1:
                    run()
                start = time.perf_counter()
                for _ in range(numbers[impl]):
                    run()
                times[impl].append((time.perf_counter() - start) / numbers[impl])
    return {impl: statistics.median(samples) for impl, samples in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="", help="run only tasks whose name contains this")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--settle", type=float, default=0.2,
                        help="seconds of idle before each timed epoch (default 0.2)")
    args = parser.parse_args(argv)
    print(f"cffnn {cffnn.__version__}; {args.threads} threads for every implementation; "
          f"median of {args.repeat} epochs (s); ratio = other / cffnn")
    print(describe_machine())   # before and after the table: the host moves our vCPUs
    header = f"{'task':<12}{'data':<34}" + "".join(f"{name:>10}" for name in IMPLEMENTATIONS)
    print(header + "".join(f"{name + '/c':>11}" for name in list(IMPLEMENTATIONS)[1:]))
    for name, task in TASKS.items():
        if args.only not in name:
            continue
        X, y, source = task["load"]()
        runs = {}
        for impl, make in IMPLEMENTATIONS.items():
            try:
                run = make(task, X, y, args.threads)
            except ImportError:
                continue
            runs[impl] = (run, functools.partial(peer_blas_limits, impl, args.threads))
        if name == "fashion" and args.threads > 1:
            runs[ONE_THREAD] = (IMPLEMENTATIONS["cffnn"](task, X, y, 1),
                                functools.partial(peer_blas_limits, "cffnn", 1))
        times = dict.fromkeys(IMPLEMENTATIONS)
        times.update(median_epochs(runs, args.repeat, args.settle))
        cells = "".join(f"{times[i]:>10.4f}" if times[i] is not None else f"{'-':>10}"
                        for i in IMPLEMENTATIONS)
        ratios = "".join(f"{times[i] / times['cffnn']:>11.2f}" if times[i] else f"{'-':>11}"
                         for i in list(IMPLEMENTATIONS)[1:])
        print(f"{name:<12}{source[:33]:<34}{cells}{ratios}", flush=True)
        if times.get(ONE_THREAD) and times["cffnn"]:
            print(f"{'':<12}cffnn on 1 thread: {times[ONE_THREAD]:.4f} s; on {args.threads} "
                  f"threads {times[ONE_THREAD] / times['cffnn']:.2f}x faster", flush=True)
        if args.threads > 1 and "cffnn" in runs:
            net = runs["cffnn"][0].net
            team, solo, slow = net._compiled.team_statistics()
            print(f"{'':<12}cffnn's epochs: {team} of {net._epochs_run} on a team of "
                  f"{args.threads} ({solo} went solo, {slow} slower than one thread, "
                  f"{net._compiled.streamed_epochs()} streamed Adam's update, "
                  f"{net._compiled.owned_epochs()} had layer 0 owned by parts)")
        if name == "digits" and times["cffnn"]:
            steps = -(-X.shape[0] // task["batch"])
            print(f"{'':<12}per minibatch step: "
                  + ", ".join(f"{i} {times[i] / steps * 1e6:.1f} us"
                              for i in IMPLEMENTATIONS if times[i]))
    print(describe_machine())


if __name__ == "__main__":
    main()
