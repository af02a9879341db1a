"""What the helper thread (include/cffnn/helper.h) gains on forward passes of 10-128 rows.

    python benchmarks/small_batch.py [--rounds 11] [--seconds 0.02] [--no-busy]

A batch of one or two blocks (up to 128 rows of a large network) gives an OpenMP team at
most two blocks to share, and its threads take ~26 us to wake here; so the helper takes
the second of two blocks, or the second half of one block's rows (float32). This times
Network.forward of random dense batches with n_threads=1 and with the default (every
usable core), in alternating rounds (benchmarks/one_row.py's paired_rounds), and prints
each median and the median of the paired ratios 1-thread/default (> 1: two threads pay).

Then a few of the same beside a busy process (a Python loop on one core), where the
default should cost about what one thread costs.
"""
import argparse
import os
import subprocess
import sys
import time
import timeit

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cffnn  # noqa: E402
from cffnn import _kernels  # noqa: E402
from one_row import paired_rounds  # noqa: E402

CASES = [([784, 256, 128, 10], np.float32), ([784, 256, 128, 10], np.float64),
         ([64, 64, 64, 10], np.float32)]
BATCHES = (5, 10, 16, 32, 64, 96, 128)
BUSY_CASES = [([784, 256, 128, 10], np.float32, 32), ([784, 256, 128, 10], np.float32, 128),
              ([64, 64, 64, 10], np.float32, 128)]


def time_batch(sizes, dtype, n_rows, rounds, seconds):
    net = cffnn.Network(sizes, random_state=0, dtype=dtype)
    X = np.random.default_rng(0).random((n_rows, sizes[0])).astype(dtype)
    once = timeit.timeit(lambda: net.forward(X, n_threads=1), number=5) / 5
    calls = max(1, int(seconds / once))
    cooldowns = _kernels.helper_cooldowns()
    one, default, ratio, taken = paired_rounds(net, [X], rounds, calls)
    cooldowns = _kernels.helper_cooldowns() - cooldowns
    name = "-".join(map(str, sizes))
    print(f"{name:15s} {np.dtype(dtype).name:8s} {n_rows:4d} rows  n_threads=1 "
          f"{one:8.1f} us   default {default:8.1f} us   1-thread/default {ratio:4.2f}   "
          f"helper took {taken:4.0%} of the calls ({cooldowns} cooldowns)", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--seconds", type=float, default=0.02,
                        help="length of one measurement (default 0.02 s)")
    parser.add_argument("--no-busy", action="store_true",
                        help="skip the measurement beside a busy process")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"cffnn {cffnn.__version__}; helper thread available: "
          f"{_kernels.helper_available()}; smallgemm.h: {_kernels.small_gemm_available()}; "
          f"usable cores: {cores}")
    print("-- idle machine")
    for sizes, dtype in CASES:
        for n_rows in BATCHES:
            time_batch(sizes, dtype, n_rows, args.rounds, args.seconds)
    if args.no_busy:
        return
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        print("-- beside a busy process")
        for sizes, dtype, n_rows in BUSY_CASES:
            time_batch(sizes, dtype, n_rows, args.rounds, args.seconds)
    finally:
        busy.kill()
        busy.wait()


if __name__ == "__main__":
    main()
