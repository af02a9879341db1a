"""What the small-product kernel (include/cffnn/smallgemm.h) saves over BLAS.

    python benchmarks/small_gemm.py [--rounds 15]

Float32 products of at most 8192 weights (and ~1e6 multiply-adds), and forward products
of at most 64 rows, skip BLAS on CPUs with AVX2 and FMA; cffnn._kernels.set_small_gemm(False)
sends them back to BLAS. This times both ways on the networks of benchmarks/compare.py,
in alternating rounds (so that the machine's noise falls on both alike), and prints
medians and the ratio BLAS / kernel:

    loss_and_gradient of one minibatch (digits 64-32-10 x32, regression 8-64-64-1 x64,
    fashion 784-256-128-10 x128: two blocks of 64 rows, whose forward products skip BLAS)
    one epoch of fit_epoch (the digits and regression tasks of compare.py)
"""
import argparse
import os
import statistics
import sys
import timeit

import numpy as np

import cffnn
from cffnn import _kernels

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmarks.training import TASKS, cffnn_epoch  # noqa: E402


def minibatch_case(task, X, y):
    n_out = 10 if task["classify"] else 1
    net = cffnn.Network([X.shape[1], *task["hidden"], n_out], activation=task["activation"],
                        output="softmax" if task["classify"] else "identity",
                        dtype=np.float32, random_state=0)
    rows = slice(0, task["batch"])
    Xb, yb = np.ascontiguousarray(X[rows]), y[rows]
    return lambda: net.loss_and_gradient(Xb, yb, n_threads=1)


def per_call(run, number):
    return min(timeit.repeat(run, number=number, repeat=3)) / number


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    cases = []
    # (task, calls per timing of a minibatch, whether to time an epoch too: not fashion's,
    # whose epochs take a second each)
    for name, calls, with_epoch in (("digits", 200, True), ("regression", 200, True),
                                    ("fashion", 20, False)):
        task = TASKS[name]
        X, y, _ = task["load"]()
        cases.append((f"loss_and_gradient {name} x{task['batch']}", minibatch_case(task, X, y),
                      calls))
        if with_epoch:
            cases.append((f"epoch {name}", cffnn_epoch(task, X, y, 2), 1))
    print(f"{'case':<34}{'BLAS':>12}{'smallgemm':>12}{'BLAS/kernel':>13}")
    for label, run, number in cases:
        times = {True: [], False: []}
        run()
        for _ in range(args.rounds):
            for enabled in (False, True):
                _kernels.set_small_gemm(enabled)
                times[enabled].append(per_call(run, number))
        _kernels.set_small_gemm(True)
        blas, kernel = statistics.median(times[False]), statistics.median(times[True])
        unit, scale = ("us", 1e6) if blas < 1e-2 else ("ms", 1e3)
        print(f"{label:<34}{blas * scale:>9.1f} {unit}{kernel * scale:>9.1f} {unit}"
              f"{blas / kernel:>13.2f}")


if __name__ == "__main__":
    main()
