# One pool at a time: the compiled kernels run their own OpenMP team and call BLAS
# single-threaded inside it, so BLAS's own threads must be held at 1 for the duration
# of a kernel call (see DESIGN.md, "Threads"). These helpers do that with two plain C
# calls into the BLAS library that scipy.linalg.cython_blas uses, found at import, and
# count the calls that overlap: the first sets one thread, the last restores the count.

cdef void limit_blas_threads() noexcept nogil
cdef void restore_blas_threads() noexcept nogil
