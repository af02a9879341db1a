"""How much a second thread adds on this machine right now: a probe to print beside timings.

    python benchmarks/machine_probe.py [--seconds 0.3]

On the project's shared 2-vCPU virtual machine, the host places the two vCPUs sometimes
on two physical cores and sometimes on the two hyperthreads of one core, and moves them
within minutes (measured with an FMA-bound C loop: two threads ran at 94 GFLOP/s each
one minute, 48.6 each the next). Compute-bound work on a team then gains 2x or nothing,
and a 2-thread timing means little without knowing which it met. This probe runs
single-threaded float32 matrix products (NumPy's BLAS held at one thread) on one Python
thread, then on two at once (NumPy releases the GIL in them), and reports the second
thread's gain: about 2 when the vCPUs have a core each, about 1 when they share one (or
another process has the other core). What it does not see is another guest on the other
hyperthread of a core we have: that shows only as a lower one-thread figure (62-97
GFLOP/s seen in one session), and it slowed Python-bound calls here up to 2.2x (the
forward of one row of a 4-4-2 network: 0.69 us, then 1.53 us an hour later).
"""
import argparse
import threading
import time

import numpy as np
from threadpoolctl import threadpool_limits

SIZE = 192   # 7M multiply-adds a product: ~0.1 ms, long beside the GIL's hand-over


def products_per_second(n_threads, seconds):
    """Products per second summed over n_threads Python threads running for `seconds`."""
    rng = np.random.default_rng(0)
    operands = [rng.random((SIZE, SIZE), dtype=np.float32) for _ in range(2 * n_threads)]
    counts = [0] * n_threads
    start_line = threading.Barrier(n_threads)

    def work(i):
        a, b = operands[2 * i], operands[2 * i + 1]
        out = np.empty_like(a)
        start_line.wait()
        stop = time.perf_counter() + seconds
        while time.perf_counter() < stop:
            np.matmul(a, b, out=out)
            counts[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    begin = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - begin)


def second_thread_gain(seconds=0.3):
    """(gain, GFLOP/s of one thread): throughput of two concurrent threads over one's."""
    with threadpool_limits(limits=1, user_api="blas"):
        products_per_second(1, 0.05)                        # warm-up
        one = products_per_second(1, seconds)
        two = products_per_second(2, seconds)
    return two / one, one * 2 * SIZE ** 3 / 1e9


def describe(seconds=0.3):
    """One line for a benchmark's output."""
    gain, gflops = second_thread_gain(seconds)
    verdict = ("a core each" if gain >= 1.7 else "sharing a core" if gain < 1.3
               else "partly sharing")
    return (f"machine probe: one thread {gflops:.0f} GFLOP/s in matrix products, two "
            f"threads {gain:.2f}x that ({verdict})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.3)
    print(describe(parser.parse_args().seconds))
