"""BLAS held at one thread while kernel calls run (cffnn/_threads.pyx), when calls
overlap: Python threads calling at once, and a process forked during a call.

The thread count is one setting for the whole process, so the first call to come sets
one thread and the last to leave restores the count. A call must never run BLAS with
more threads because another call ended first: its results would depend on the timing
(float64 forward passes through BLAS in 4 threads at once differed in the last bits from
a lone call before the count was shared)."""
import sys
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from cffnn import _threads
from _testing import forward_in_threads_matches, network, run_in_forked_child

# float64 products of this size go through BLAS (smallgemm.h takes float64 only when small)
SIZES = [300, 256, 128, 10]


def blas_thread_counts():
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_threads_calling_at_once_get_the_bits_of_a_lone_call():
    net = network(SIZES, activation="tanh", dtype=np.float64)
    X = np.random.default_rng(21).normal(size=(300, SIZES[0]))
    inputs = [X[:13 + 12 * i] for i in range(24)]         # 13 .. 289 rows
    expected = [net.forward(rows, n_threads=1) for rows in inputs]
    counts = blas_thread_counts()
    assert forward_in_threads_matches(net, inputs, expected)
    assert _threads.blas_holders_now() == 0
    assert blas_thread_counts() == counts          # restored by the last call to leave


def _forward_in_child(queue):
    net = network(SIZES, activation="tanh", dtype=np.float64)
    X = np.random.default_rng(22).normal(size=(200, SIZES[0]))
    holders_at_start = _threads.blas_holders_now()
    net.forward(X, n_threads=2)
    queue.put((holders_at_start, _threads.blas_holders_now()))


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method: Linux")
def test_a_child_forked_during_calls_in_another_thread_does_not_hang():
    """The child has no thread holding BLAS: no holders, and a lock it can take."""
    net = network(SIZES, activation="tanh", dtype=np.float64)
    X = np.random.default_rng(23).normal(size=(200, SIZES[0]))
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            net.forward(X, n_threads=2)

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        for _ in range(5):
            assert run_in_forked_child(_forward_in_child) == (0, 0)
    finally:
        stop.set()
        worker.join()
    assert _threads.blas_holders_now() == 0
