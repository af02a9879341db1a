# OpenMP facts of this build and the BLAS thread limiter (see _threads.pxd).
#
# The `#ifdef _OPENMP` shim lets the package build and run serially with a compiler
# that has no OpenMP (Apple clang without libomp); prange then runs on one thread.

cdef extern from * nogil:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define CFFNN_OPENMP_ENABLED 1
    #define CFFNN_OPENMP_VERSION _OPENMP
    #else
    #define CFFNN_OPENMP_ENABLED 0
    #define CFFNN_OPENMP_VERSION 0
    static int omp_get_max_threads(void) { return 1; }
    #endif
    """
    int CFFNN_OPENMP_ENABLED
    int CFFNN_OPENMP_VERSION
    int omp_get_max_threads()

import os

from cpython.pythread cimport (PyThread_type_lock, PyThread_allocate_lock,
                               PyThread_acquire_lock, PyThread_release_lock, WAIT_LOCK)

ctypedef void (*set_threads_fn)(int) noexcept nogil
ctypedef int (*get_threads_fn)() noexcept nogil

DEF MAX_BLAS_LIBRARIES_ = 4    # OpenBLAS copies loaded at once (scipy's, numpy's, a system one)
cdef set_threads_fn blas_set_num_threads[MAX_BLAS_LIBRARIES_]
cdef get_threads_fn blas_get_num_threads[MAX_BLAS_LIBRARIES_]
cdef int n_blas_libraries = 0
MAX_BLAS_LIBRARIES = MAX_BLAS_LIBRARIES_


def openmp_enabled():
    """True when this build was compiled with OpenMP."""
    return bool(CFFNN_OPENMP_ENABLED)


def openmp_version():
    """The _OPENMP date macro of the build (e.g. 201511), or 0 without OpenMP."""
    return CFFNN_OPENMP_VERSION


def openmp_max_threads():
    """omp_get_max_threads(): honours OMP_NUM_THREADS; 1 without OpenMP."""
    return omp_get_max_threads()


def set_blas_thread_functions(addresses):
    """Install [(set_num_threads address, get_num_threads address), ...] of BLAS libraries.

    Every library listed is held at one thread during a kernel call. At most
    MAX_BLAS_LIBRARIES are kept; returns how many were installed.
    """
    global n_blas_libraries
    n_blas_libraries = 0
    for set_address, get_address in addresses[:MAX_BLAS_LIBRARIES_]:
        blas_set_num_threads[n_blas_libraries] = <set_threads_fn> <size_t> set_address
        blas_get_num_threads[n_blas_libraries] = <get_threads_fn> <size_t> get_address
        n_blas_libraries += 1
    return n_blas_libraries


def blas_threads_controlled():
    """True when the kernels can hold BLAS at one thread with direct C calls."""
    return n_blas_libraries > 0


# Kernel calls may overlap (Python threads calling at once), and the BLAS thread count is
# one setting for the whole process: so the first call to come saves the counts and sets
# 1, and the last to leave restores them. (When each call restored what it had found, a
# call that ended restored the count while another was still in BLAS: measured, a
# float64 forward pass in 4 Python threads at once then gave results that differed in
# the last bits from a lone call, and ran BLAS threads inside its own team.)
cdef PyThread_type_lock blas_hold_lock = PyThread_allocate_lock()
cdef int blas_holders = 0             # kernel calls holding BLAS at one thread now
cdef long long blas_saved_counts = 0  # the counts before the first of them, 16 bits each


cdef void limit_blas_threads() noexcept nogil:
    """Hold BLAS at one thread until the matching restore_blas_threads()."""
    global blas_holders, blas_saved_counts
    cdef int i
    cdef long long count
    PyThread_acquire_lock(blas_hold_lock, WAIT_LOCK)
    if blas_holders == 0:
        blas_saved_counts = 0
        for i in range(n_blas_libraries):
            count = blas_get_num_threads[i]()
            if count != 1:
                blas_set_num_threads[i](1)
            blas_saved_counts |= (count & 0xFFFF) << (16 * i)
    blas_holders += 1
    PyThread_release_lock(blas_hold_lock)


cdef void restore_blas_threads() noexcept nogil:
    """End a limit_blas_threads(): the last call holding BLAS restores its counts."""
    global blas_holders
    PyThread_acquire_lock(blas_hold_lock, WAIT_LOCK)
    blas_holders -= 1
    if blas_holders == 0:
        restore_saved_counts()
    PyThread_release_lock(blas_hold_lock)


cdef void restore_saved_counts() noexcept nogil:
    cdef int i, count
    for i in range(n_blas_libraries):
        count = <int> ((blas_saved_counts >> (16 * i)) & 0xFFFF)
        if count > 1:
            blas_set_num_threads[i](count)


def blas_holders_now():
    """How many kernel calls hold BLAS at one thread now (for the tests)."""
    return blas_holders


def _after_fork_in_child():
    """A forked child has only the thread that forked: calls that held BLAS in other
    threads do not exist there. A new lock (the old one may have been held), no holders,
    the counts restored."""
    global blas_hold_lock, blas_holders
    blas_hold_lock = PyThread_allocate_lock()
    if blas_holders > 0:
        blas_holders = 0
        restore_saved_counts()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
