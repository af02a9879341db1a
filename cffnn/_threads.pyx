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


cdef long long limit_blas_threads() noexcept nogil:
    """Hold BLAS at one thread; return the previous counts, packed, for restore.

    Each library's previous count takes 16 bits of the result, so that concurrent
    callers each restore what they found (no shared saved state).
    """
    cdef int i
    cdef long long count, previous = 0
    for i in range(n_blas_libraries):
        count = blas_get_num_threads[i]()
        if count != 1:
            blas_set_num_threads[i](1)
        previous |= (count & 0xFFFF) << (16 * i)
    return previous


cdef void restore_blas_threads(long long previous) noexcept nogil:
    cdef int i, count
    for i in range(n_blas_libraries):
        count = <int> ((previous >> (16 * i)) & 0xFFFF)
        if count > 1:
            blas_set_num_threads[i](count)
