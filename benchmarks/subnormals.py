"""What flushing subnormals to zero saves over several epochs of Adam in float32.

    python benchmarks/subnormals.py [--epochs 6]

Adam's first-moment estimate of a weight whose gradient has become exactly 0 (the
weights of image pixels that are always 0, say) shrinks by beta_1 every step until it
passes through the subnormal range, where x86 arithmetic is ~100x slower. fit_epoch sets
flush-to-zero / denormals-are-zero on its thread for the epoch (include/cffnn/fpmode.h).
This trains 784-256-128-10 (ReLU, Adam, batch 128) on Fashion-MNIST (or its synthetic
stand-in, where few gradients are exactly 0), once with flushing and once without, and
prints every epoch's time and the subnormal counts left in Adam's moments.
"""
import argparse
import os
import sys
import time

import numpy as np

import cffnn
from cffnn import _kernels

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmarks.training import load_fashion  # noqa: E402


def subnormal_count(values):
    tiny = np.finfo(values.dtype).tiny
    return int(np.count_nonzero((values != 0) & (np.abs(values) < tiny)))


def train(X, y, epochs, flush):
    previous = _kernels.set_flush_subnormals(flush)
    try:
        net = cffnn.Network([784, 256, 128, 10], random_state=0)
        optimizer = cffnn.Adam(0.001)
        times = []
        for epoch in range(epochs):
            start = time.perf_counter()
            net.fit_epoch(X, y, optimizer, batch_size=128, random_state=epoch)
            times.append(time.perf_counter() - start)
        return times, subnormal_count(optimizer.first_moment), \
            subnormal_count(optimizer.second_moment)
    finally:
        _kernels.set_flush_subnormals(previous)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args(argv)
    X, y, source = load_fashion()
    print(f"784-256-128-10, Adam, batch 128, float32, {source}; seconds per epoch")
    for flush in (True, False):
        times, first, second = train(X, y, args.epochs, flush)
        label = "flush to zero" if flush else "subnormals kept"
        print(f"{label:<16}" + " ".join(f"{t:6.3f}" for t in times)
              + f"   last/first {times[-1] / times[0]:.2f};  subnormal moments: "
                f"first {first}, second {second}", flush=True)


if __name__ == "__main__":
    main()
