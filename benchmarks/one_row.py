"""What the helper thread (include/cffnn/helper.h) gains on forward passes of one row.

    python benchmarks/one_row.py [--rounds 15] [--calls 2000] [--no-busy]

For 784-256-128-10 (float32 and float64) and one-row inputs (a dense random row, and
Fashion-MNIST test images taken in turn when the dataset is installed), times
Network.forward with n_threads=1 and with the default (every usable core: the helper
takes half of layers 0 and 1), in alternating rounds of --calls calls, and prints each
median and the median of the paired ratios 1-thread/default (> 1: the helper pays).

Then the same beside a busy process (a Python loop on one core): the case the helper's
rules for a contested core are for (a stale helper is skipped, a late one left alone
for a cooldown). There the default should cost about what one thread costs.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
import timeit

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cffnn  # noqa: E402
from cffnn import _kernels  # noqa: E402
from benchmarks.training import load_fashion  # noqa: E402

SIZES = [784, 256, 128, 10]


def rows_to_time():
    """{name: list of (1, 784) float64 rows}: the calls take them in turn."""
    rng = np.random.default_rng(0)
    rows = {"dense row": [rng.random((1, 784))]}
    fashion = load_fashion("t10k")
    if fashion is not None:
        rows["Fashion images"] = [fashion[0][i:i + 1].astype(np.float64)
                                  for i in range(200)]
    return rows


def paired_rounds(net, rows, rounds, calls):
    """(median 1-thread us, median default us, median paired ratio, share the helper took)."""
    def timed(n_threads):
        position = [0]

        def call():
            position[0] = (position[0] + 1) % len(rows)
            net.forward(rows[position[0]], n_threads=n_threads)
        return timeit.timeit(call, number=calls) / calls * 1e6

    one, default = [], []
    before = _kernels.helper_tasks_run()
    for round_ in range(rounds):      # which goes first alternates: no position bias
        if round_ % 2:
            default.append(timed(None))
            one.append(timed(1))
        else:
            one.append(timed(1))
            default.append(timed(None))
    taken = (_kernels.helper_tasks_run() - before) / (rounds * calls)
    ratios = [a / b for a, b in zip(one, default)]
    return statistics.median(one), statistics.median(default), statistics.median(ratios), taken


def report(label, rows_by_name, rounds, calls):
    print(f"-- {label}")
    for dtype in (np.float32, np.float64):
        net = cffnn.Network(SIZES, random_state=0, dtype=dtype)
        for name, rows in rows_by_name.items():
            rows = [np.ascontiguousarray(row.astype(dtype)) for row in rows]
            one, default, ratio, taken = paired_rounds(net, rows, rounds, calls)
            print(f"{np.dtype(dtype).name:8s} {name:15s} n_threads=1 {one:6.2f} us   "
                  f"default {default:6.2f} us   1-thread/default {ratio:4.2f}   "
                  f"helper took {taken:4.0%} of the halves")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--no-busy", action="store_true",
                        help="skip the measurement beside a busy process")
    args = parser.parse_args()
    print(f"cffnn {cffnn.__version__}; helper thread available: "
          f"{_kernels.helper_available()}; usable cores: {len(os.sched_getaffinity(0))}"
          if hasattr(os, "sched_getaffinity") else "")
    rows_by_name = rows_to_time()
    report("idle machine", rows_by_name, args.rounds, args.calls)
    if args.no_busy:
        return
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        report("beside a busy process", rows_by_name, args.rounds, args.calls)
    finally:
        busy.kill()
        busy.wait()


if __name__ == "__main__":
    main()
