# Row-major GEMM on top of the BLAS that SciPy ships (scipy.linalg.cython_blas, no link step).
#
# BLAS is column-major; a row-major matrix is the transpose of the same buffer read
# column-major. So C = op(A) op(B) in row-major terms is computed as the column-major
# product C^T = op(B)^T op(A)^T, i.e. gemm with the operands swapped and M and N exchanged.
# Callers check that every dimension fits in a C int before calling (see _kernels.pyx).

from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating* a, int lda,
                      const floating* b, int ldb,
                      floating beta, floating* c, int ldc) noexcept nogil:
    """C = alpha op(A) op(B) + beta C, all row-major.

    op(A) is (m, k), op(B) is (k, n), C is (m, n); lda, ldb, ldc are row strides
    (in elements) of the buffers as stored.
    """
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*> b, &ldb, <float*> a, &lda,
              &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*> b, &ldb, <double*> a, &lda,
              &beta, c, &ldc)
