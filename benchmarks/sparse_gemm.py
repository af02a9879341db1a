"""What skipping the zeros of a weight gradient's inputs saves (include/cffnn/smallgemm.h).

    python benchmarks/sparse_gemm.py [--pairs 12]

A float32 weight gradient dW = Z^T delta of a minibatch goes through smallgemm.h, in
tiles of 6 inputs; the samples in which all 6 are 0 add nothing to those rows of dW, and
where enough of them are 0 the kernel skips them (cffnn_small_gemm_sparse). Fashion-MNIST's
pixels are half 0. cffnn._kernels.set_sparse_gemm(False) turns the skipping off; this
times both ways, in turn, on two networks of the same seed (so that each keeps its own
optimiser state):

    loss_and_gradient of one Fashion-MNIST minibatch (784-256-128-10, 128 rows), 1 thread
    one epoch of compare.py's "fashion" task (Adam, batch 128), default threads

and prints the medians and the median over pairs of off/on. Both ways give the same
bits (tests/test_sparse_gemm.py), so the two networks stay equal too. On synthetic data
(no Fashion-MNIST here) nothing is 0 and the ratio is ~1.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

from cffnn import _kernels

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmarks.training import TASKS, cffnn_network  # noqa: E402


def paired(run_off, run_on, pairs):
    """(median off, median on, median of off/on) over pairs run in alternating order."""
    times = {False: [], True: []}
    for pair in range(pairs + 1):                    # pair 0 warms up
        for enabled in ((False, True) if pair % 2 else (True, False)):
            _kernels.set_sparse_gemm(enabled)
            start = time.perf_counter()
            (run_on if enabled else run_off)(pair)
            if pair > 0:
                times[enabled].append(time.perf_counter() - start)
    _kernels.set_sparse_gemm(True)
    ratios = [off / on for off, on in zip(times[False], times[True])]
    return statistics.median(times[False]), statistics.median(times[True]), statistics.median(ratios)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=12)
    args = parser.parse_args(argv)
    task = TASKS["fashion"]
    X, y, source = task["load"]()
    print(f"{source}: {np.mean(X == 0):.0%} of the inputs are 0")
    print(f"{'case':<44}{'off':>10}{'on':>10}{'off/on':>8}")

    net = cffnn_network(task, X)[0]
    Xb, yb = np.ascontiguousarray(X[:task["batch"]]), y[:task["batch"]]

    def minibatch(_):
        for _ in range(20):
            net.loss_and_gradient(Xb, yb, n_threads=1)

    off, on, ratio = paired(minibatch, minibatch, args.pairs)
    print(f"{'loss_and_gradient x128, 1 thread (per call)':<44}{off / 20 * 1e3:>7.2f} ms"
          f"{on / 20 * 1e3:>7.2f} ms{ratio:>8.3f}")

    networks = {enabled: cffnn_network(task, X) for enabled in (False, True)}

    def epoch(enabled):
        def run(pair):
            network, optimizer = networks[enabled]
            network.fit_epoch(X, y, optimizer, batch_size=task["batch"], random_state=pair)
        return run

    off, on, ratio = paired(epoch(False), epoch(True), max(1, args.pairs // 2))
    print(f"{'fit_epoch fashion, default threads':<44}{off:>8.3f} s{on:>8.3f} s{ratio:>8.3f}")
    same = np.array_equal(networks[False][0].params, networks[True][0].params)
    print(f"parameters after the epochs {'equal' if same else 'DIFFER'} with and without")


if __name__ == "__main__":
    main()
