"""Load cffnn's OpenMP runtime with idle threads that sleep instead of spinning.

By default libgomp's idle team threads spin for a while before they sleep, and LLVM's
libomp for 200 ms. On a machine whose cores are busy with other work that spinning
steals the cores the working threads need. Measured on the 2-core development machine
with one other busy process, 100 epochs of a 64-100-10 network on 200 rows took 0.14-0.27 s
on 2 threads with the default policy and 0.04-0.05 s with OMP_WAIT_POLICY=passive (1
thread: 0.04-0.05 s); on the idle machine the two policies were within noise (tiny work
0.03-0.04 s either way; a Fashion-MNIST epoch 0.69-0.74 s passive, 0.71-0.76 s default).

The policy is read once, when the runtime initialises, so it is set for that moment
only, and only when the user has not chosen one: os.environ is left as it was. A runtime
that another library loaded and initialised first keeps its own policy.
"""
import os

_POLICY = "OMP_WAIT_POLICY"


def load():
    """Import cffnn._threads (which loads the OpenMP runtime) under the passive policy."""
    chosen_by_user = _POLICY in os.environ
    if not chosen_by_user:
        os.environ[_POLICY] = "passive"
    try:
        from cffnn import _threads
        _threads.openmp_max_threads()    # libomp reads its settings on first use
    finally:
        if not chosen_by_user:
            del os.environ[_POLICY]
    return _threads
