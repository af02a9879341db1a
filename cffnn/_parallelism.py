"""How many threads a kernel call gets, and keeping BLAS's pool out of its way.

n_threads (the one public knob): None = every usable core, honouring OMP_NUM_THREADS
and the process's CPU affinity and cgroup quota; -1 = every usable core; -k = all but
k - 1; a positive k = k threads; 0 is an error. The kernels themselves start no team
for small work, whatever is asked.
"""
import contextlib
import math
import numbers
import os

from threadpoolctl import threadpool_limits

from cffnn import _threads
from cffnn._blas_threads import find_blas_thread_functions


def _cgroup_cpu_quota():
    """CPUs allowed by a cgroup v2 (cpu.max) or v1 (cfs_quota/period) quota, or None."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
        return None
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            quota = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            period = int(f.read())
        if quota > 0 and period > 0:
            return max(1, math.ceil(quota / period))
    except (OSError, ValueError):
        pass
    return None


def usable_cpu_count():
    """Cores this process may run on: affinity mask and cgroup quota taken into account."""
    if hasattr(os, "sched_getaffinity"):
        count = len(os.sched_getaffinity(0))
    else:
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return min(count, quota) if quota is not None else count


_DEFAULT_N_THREADS = None
MAX_THREADS = 4096   # a C int for the kernels, and far beyond any machine's cores


def effective_n_threads(n_threads):
    """The thread count a kernel call may use for the user's n_threads (see module doc)."""
    global _DEFAULT_N_THREADS
    if n_threads is None:
        if _DEFAULT_N_THREADS is None:
            _DEFAULT_N_THREADS = max(1, min(_threads.openmp_max_threads(), usable_cpu_count()))
        count = _DEFAULT_N_THREADS
    elif type(n_threads) is int and 0 < n_threads <= MAX_THREADS:
        count = n_threads    # the usual count, without the ABC check below (~0.5 us a call)
    elif isinstance(n_threads, numbers.Integral) and not isinstance(n_threads, bool):
        n_threads = int(n_threads)
        if n_threads == 0:
            raise ValueError("n_threads=0 is not allowed: use None (all usable cores), "
                             "a positive count, or -1 (all cores)")
        if abs(n_threads) > MAX_THREADS:
            raise ValueError(f"n_threads={n_threads} is out of range: at most {MAX_THREADS}")
        count = n_threads if n_threads > 0 else max(1, usable_cpu_count() + 1 + n_threads)
    else:
        raise TypeError(f"n_threads must be None or an int, got {type(n_threads).__name__}")
    return count if _threads.openmp_enabled() else 1


_USABLE_CPUS = None


def barrier_team_threads(n_threads):
    """effective_n_threads(n_threads) capped at the usable cores (counted once), for the
    kernels whose team meets at spinning barriers (include/cffnn/team.h): fit_epoch and
    loss_and_gradient. More threads than cores wait most of their time. Measured with
    n_threads=8 on this 2-core machine (784-256-128-10, batch 512): fit_epoch's team went
    solo at once and the epochs ran on one thread, 2.3x slower than with n_threads=2."""
    global _USABLE_CPUS
    if _USABLE_CPUS is None:
        _USABLE_CPUS = usable_cpu_count()
    return min(effective_n_threads(n_threads), _USABLE_CPUS)


_blas_pairs, _ALL_BLAS_HELD_FROM_C = find_blas_thread_functions()
_threads.set_blas_thread_functions(_blas_pairs)
_ALL_BLAS_HELD_FROM_C = _ALL_BLAS_HELD_FROM_C and len(_blas_pairs) <= _threads.MAX_BLAS_LIBRARIES


_NO_LIMITS = contextlib.nullcontext()   # reusable: no allocation on the fast path


def blas_limits(n_threads):
    """Context for a kernel call on n_threads: holds BLAS at one thread from Python
    (threadpoolctl) only for a BLAS the kernels cannot hold from C, else does nothing."""
    if n_threads > 1 and not _ALL_BLAS_HELD_FROM_C:
        return threadpool_limits(limits=1, user_api="blas")
    return _NO_LIMITS
