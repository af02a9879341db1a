"""Load cffnn's OpenMP runtime with idle threads that sleep instead of spinning.

By default libgomp's idle team threads spin for a while before they sleep, and LLVM's
libomp for 200 ms. On a machine whose cores are busy with other work that spinning
steals the cores the working threads need. Measured on the 2-core development machine
with one other busy process: 100 epochs of a 64-100-10 network on 200 rows took 0.14-0.29
s on 2 threads with spinning threads and 0.038-0.052 s passive (1 thread: 0.035-0.048 s);
a 1347-row digits epoch (64-100-10, batches of 200) 4-14 ms with a spin count of 3000 to
10000, 1.8-2.7 ms passive. The price on the idle machine is the wake-up of sleeping
threads: Adam steps on 2 threads cost 3-11% more than with spinning threads
(benchmarks of 1.5M to 30M multiply-adds a step: 64-100-10 x200 214 vs 202 us,
784-256-128-10 x128 1821 vs 1709 us).

The policy is read once, when the runtime initialises, so it is set for that moment
only, and only when the user has not chosen one: os.environ is left as it was. A runtime
that another library loaded and initialised first keeps its own policy.
"""
import os

_POLICY = "OMP_WAIT_POLICY"
# What the runtime was loaded with, for show_config: "passive (cffnn's default)" or the
# user's value.
wait_policy = None


def load():
    """Import cffnn._threads (which loads the OpenMP runtime) under the passive policy."""
    global wait_policy
    chosen_by_user = _POLICY in os.environ
    wait_policy = (os.environ[_POLICY] + " (OMP_WAIT_POLICY)" if chosen_by_user
                   else "passive (cffnn's default)")
    if not chosen_by_user:
        os.environ[_POLICY] = "passive"
    try:
        from cffnn import _threads
        _threads.openmp_max_threads()    # libomp reads its settings on first use
    finally:
        if not chosen_by_user:
            del os.environ[_POLICY]
    return _threads
