"""Find the OpenBLAS libraries loaded in this process, for the kernels' thread limiter.

The compiled kernels run their own OpenMP team and call BLAS from every thread of it, so
BLAS's own pool must stay at one thread meanwhile (DESIGN.md: "one pool at a time").
threadpoolctl tells which OpenBLAS copies are loaded (scipy's, numpy's); their
set/get_num_threads entry points are handed to cffnn._threads as C addresses so that a
kernel call limits and restores them for the cost of two C calls, with no Python.

For another BLAS (MKL, BLIS, Accelerate) the addresses are not known; Network then wraps
multithreaded kernel calls in threadpoolctl.threadpool_limits instead (slower per call).
"""
import ctypes
import itertools

import scipy.linalg.cython_blas  # noqa: F401  (load scipy's BLAS before looking for it)
from threadpoolctl import threadpool_info

_PREFIXES = ("", "scipy_")
_SUFFIXES = ("", "64_", "_64")


def _openblas_entry_points(filepath):
    """(set_num_threads address, get_num_threads address) of one library, or None."""
    try:
        library = ctypes.CDLL(filepath)   # already loaded: dlopen returns the same handle
    except OSError:
        return None
    for prefix, suffix in itertools.product(_PREFIXES, _SUFFIXES):
        set_name = f"{prefix}openblas_set_num_threads{suffix}"
        get_name = f"{prefix}openblas_get_num_threads{suffix}"
        if hasattr(library, set_name) and hasattr(library, get_name):
            set_fn, get_fn = getattr(library, set_name), getattr(library, get_name)
            return (ctypes.cast(set_fn, ctypes.c_void_p).value,
                    ctypes.cast(get_fn, ctypes.c_void_p).value)
    return None


def find_blas_thread_functions():
    """Address pairs to hold from C, and whether that covers every BLAS loaded.

    Returns (pairs, all_held): pairs = [(set address, get address)] of each pthreads
    OpenBLAS; all_held is False when some other BLAS is loaded (it then needs
    threadpoolctl). An OpenMP-threaded BLAS needs nothing: inside our team it nests
    to one thread by itself.
    """
    pairs, all_held = [], True
    for info in threadpool_info():
        if info["user_api"] != "blas" or info.get("threading_layer") == "openmp":
            continue
        entry_points = None
        if info["internal_api"] == "openblas":
            entry_points = _openblas_entry_points(info["filepath"])
        if entry_points is None:
            all_held = False
        else:
            pairs.append(entry_points)
    return pairs, all_held
