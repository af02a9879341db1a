"""Standalone timing table of cffnn against the NumPy reference, torch and scikit-learn.

    python benchmarks/compare_core.py [--repeat 15] [--target 0.05] [--settle 0.2] [--only TEXT]
                                      [--impls cffnn,numpy,torch,sklearn]

Times the cases of the asv suite (benchmarks/benchmarks/bench_network.py) in one run,
without asv, on the same seeded networks and data (benchmarks/benchmarks/common.py),
and one case on real data that the suite does not have:

    forward / loss_and_gradient  784-256-128-10, batch 128
    forward / loss_and_gradient  64-32-10, batch 32
    forward                      784-256-128-10, one row (+ sklearn predict_proba)
    forward                      784-256-128-10, one Fashion-MNIST test image a call
                                 (when the dataset is installed; about half its pixels
                                 are 0, whose weights cffnn's one-row kernel skips)
    forward                      784-256-128-10, 10000 rows

float32, ReLU hidden layers, softmax output, log loss; torch on 2 threads, cffnn with its
default n_threads (every usable core). For each case, every implementation gets one
warm-up call and a call count ``number`` chosen like timeit's autorange (1, 2, 5, 10, ...
calls until one measurement lasts ``--target`` seconds); then ``--repeat`` rounds each
time every implementation once, in turn (after --settle seconds idle), so that machine
noise hits all of them alike.
The table shows the median time per call and the ratios numpy/cffnn and torch/cffnn
(> 1: cffnn is faster).

The implementations share one process, and PyTorch's calls slow the others' one-row
calls after them, settling or not: measured the same day, cffnn 10.5-11.0 us and NumPy
39 us with torch timed in turn, 8.6-8.7 us and 26.7 us with `--impls cffnn,numpy,sklearn`
(NumPy's alone, with torch merely imported: 16-28 us either way). For the figures of a
program that uses one library, time torch in a run of its own (`--impls torch`).
"""
import argparse
import itertools
import os
import statistics
import sys
import time
import timeit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmarks.common import (  # noqa: E402
    BATCH_CASES, IMPLS, MNIST_SIZES, ONE_ROW_IMPLS, TORCH_THREADS, autorange_number,
    busy_wait, is_available, make_data, make_network, make_runner)
from benchmarks.training import load_fashion  # noqa: E402
from machine_probe import describe as describe_machine  # noqa: E402

COLUMNS = ["cffnn", "numpy", "torch", "sklearn"]


def build_cases(wanted):
    """[(case name, {impl: zero-argument callable})] for every case and every available
    impl of `wanted`."""
    cases = []
    for name, (sizes, batch) in BATCH_CASES.items():
        net = make_network(sizes)
        X, y = make_data(sizes[0], sizes[-1], batch)
        forward, gradient = {}, {}
        for impl in available(IMPLS, wanted):
            runner = make_runner(impl, net)
            Y = runner.prepare_targets(y)
            forward[impl] = bind(runner.forward, X)
            gradient[impl] = bind(runner.loss_and_gradient, X, Y)
        cases.append((f"forward {name}", forward))
        cases.append((f"loss_and_gradient {name}", gradient))

    net = make_network(MNIST_SIZES)
    for n_rows, impls in ((1, ONE_ROW_IMPLS), (10000, IMPLS)):
        X, _ = make_data(MNIST_SIZES[0], MNIST_SIZES[-1], n_rows)
        calls = {impl: bind(make_runner(impl, net).forward, X)
                 for impl in available(impls, wanted)}
        cases.append((f"forward 784-256-128-10 x{n_rows}", calls))
        if n_rows == 1:
            fashion = load_fashion("t10k")
            if fashion is not None:
                rows = [fashion[0][i:i + 1] for i in range(FASHION_ROWS)]
                calls = {impl: cycle(make_runner(impl, net).forward, rows)
                         for impl in available(impls, wanted)}
                cases.append(("forward 784-256-128-10 x1 Fashion", calls))
    return cases


def available(impls, wanted):
    return [impl for impl in impls if impl in wanted and is_available(impl)]


def bind(function, *args):
    return lambda: function(*args)


FASHION_ROWS = 200     # test images taken in turn, one a call


def cycle(function, rows):
    """A call of function on the next of rows each time, so that no one row's data (or,
    for cffnn, its list of nonzero pixels) is the only one in cache."""
    rows = itertools.cycle(rows)
    return lambda: function(next(rows))


def time_case(calls, repeat, target, settle):
    """{impl: median seconds per call}, the implementations interleaved in every round.

    Before each measurement this thread waits `settle` seconds: after a call, OpenBLAS's
    workers (numpy's, scipy's) spin for up to ~0.1 s and OpenMP's (cffnn's, torch's) for a
    while too; on 2 cores a pool that starts in that window shares a core with a spinner
    (measured: cffnn's 2-thread forward at batch 128 takes 2.6 ms right after a NumPy
    matmul, 0.7 ms once NumPy's pool sleeps; NumPy slows likewise after cffnn). Settling
    gives every implementation the machine as a program that calls only it would find; one
    untimed call after the pause warms its caches again.
    """
    numbers = {}
    for impl, call in calls.items():
        call()                                            # warm-up
        numbers[impl] = autorange_number(call, target)
    samples = {impl: [] for impl in calls}
    timers = {impl: timeit.Timer(call) for impl, call in calls.items()}
    for _ in range(repeat):
        for impl, timer in timers.items():
            if settle:
                busy_wait(settle)
                calls[impl]()        # re-warm this implementation's caches and threads
            samples[impl].append(timer.timeit(numbers[impl]) / numbers[impl])
    return {impl: statistics.median(times) for impl, times in samples.items()}


def format_time(seconds):
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_ratio(numerator, denominator):
    if numerator is None or denominator is None:
        return "-"
    return f"{numerator / denominator:.2f}"


def print_table(rows):
    header = ["case"] + COLUMNS + ["numpy/cffnn", "torch/cffnn"]
    lines = []
    for case, medians in rows:
        get = medians.get
        lines.append([case] + [format_time(get(impl)) for impl in COLUMNS]
                     + [format_ratio(get("numpy"), get("cffnn")),
                        format_ratio(get("torch"), get("cffnn"))])
    widths = [max(len(str(line[i])) for line in [header] + lines) for i in range(len(header))]

    def render(line):
        return "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(line, widths)))

    print(render(header))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(render(line))


def print_environment(wanted):
    import cffnn
    import numpy

    try:                                   # private helper: informative only
        from cffnn._parallelism import effective_n_threads
        threads = f" (n_threads={effective_n_threads(None)})"
    except (ImportError, AttributeError):
        threads = ""
    parts = [f"cffnn {cffnn.__version__}{threads}", f"numpy {numpy.__version__}"]
    if "torch" in wanted and is_available("torch"):
        import torch
        parts.append(f"torch {torch.__version__} (threads={TORCH_THREADS})")
    if "sklearn" in wanted and is_available("sklearn"):
        import sklearn
        parts.append(f"scikit-learn {sklearn.__version__}")
    print("; ".join(parts))
    print("median time per call; ratio > 1 means cffnn is faster")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15,
                        help="interleaved rounds per case (default 15)")
    parser.add_argument("--settle", type=float, default=0.2,
                        help="seconds of idle before each measurement, so that no other "
                             "library's thread pool is still spinning (default 0.2; 0 to "
                             "measure back-to-back)")
    parser.add_argument("--target", type=float, default=0.05,
                        help="seconds one measurement should last (default 0.05)")
    parser.add_argument("--only", default="",
                        help="time only the cases whose name contains this text")
    parser.add_argument("--impls", default=",".join(COLUMNS),
                        help="comma-separated implementations to time (default: every "
                             "installed one of " + ",".join(COLUMNS) + ")")
    args = parser.parse_args(argv)
    wanted = args.impls.split(",")
    unknown = sorted(set(wanted) - set(COLUMNS))
    if unknown:
        parser.error(f"unknown implementation(s) {', '.join(unknown)}; choose from "
                     f"{', '.join(COLUMNS)}")

    print_environment(wanted)
    print(describe_machine())   # before and after: the host moves our vCPUs
    rows = []
    for case, calls in build_cases(wanted):
        if args.only not in case:
            continue
        start = time.perf_counter()
        rows.append((case, time_case(calls, args.repeat, args.target, args.settle)))
        print(f"  timed {case} in {time.perf_counter() - start:.1f} s", flush=True)
    print(describe_machine())
    print()
    print_table(rows)


if __name__ == "__main__":
    main()
