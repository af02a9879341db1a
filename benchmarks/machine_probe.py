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

Nor does it see how fast the two vCPUs exchange data, which a team of threads sharing a
minibatch depends on: in some spells a 2-thread epoch of the regression task was 1.3x
faster than a 1-thread one, in others 2x slower, with the matrix products gaining 1.9x
all along. So the line also gives cffnn's own team gain: epochs of a small network
(8-64-64-1, batch 64, 20000 rows) on a team of 2 kept together, against one thread.
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


def team_gain(rows=20000, repeat=5):
    """Median over `repeat` pairs of (1-thread epoch time / 2-thread epoch time) of
    cffnn's fit_epoch on a small network, its team kept together (set_team_limits)."""
    import cffnn
    from cffnn import _kernels
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 8)).astype(np.float32)
    y = np.sin(X[:, 0]).astype(np.float32)
    runs = {}
    for n_threads in (1, 2):
        net = cffnn.Network([8, 64, 64, 1], activation="tanh", output="identity",
                            dtype=np.float32, random_state=0)
        runs[n_threads] = (net, cffnn.SGD(0.001, momentum=0.9))
    previous = _kernels.set_team_limits(1.0, 1e9)     # never leave the team: time it
    try:
        ratios = []
        for pair in range(repeat + 1):                 # pair 0 warms up
            times = {}
            for n_threads, (net, optimizer) in runs.items():
                start = time.perf_counter()
                net.fit_epoch(X, y, optimizer, batch_size=64, random_state=pair,
                              n_threads=n_threads)
                times[n_threads] = time.perf_counter() - start
            if pair:
                ratios.append(times[1] / times[2])
    finally:
        _kernels.set_team_limits(*previous)
    ratios.sort()
    return ratios[len(ratios) // 2]


def describe(seconds=0.3):
    """One line for a benchmark's output."""
    gain, gflops = second_thread_gain(seconds)
    verdict = ("a core each" if gain >= 1.7 else "sharing a core" if gain < 1.3
               else "partly sharing")
    team = team_gain()
    team_verdict = ("exchanges fast" if team >= 1.1 else "exchanges slow" if team < 0.9
                    else "no gain")
    return (f"machine probe: one thread {gflops:.0f} GFLOP/s in matrix products, two "
            f"threads {gain:.2f}x that ({verdict}); a cffnn team of 2 on a small "
            f"network {team:.2f}x one thread ({team_verdict})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.3)
    print(describe(parser.parse_args().seconds))
