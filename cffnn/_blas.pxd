# Row-major GEMM on top of the BLAS that SciPy ships (scipy.linalg.cython_blas, no link step).
#
# BLAS is column-major; a row-major matrix is the transpose of the same buffer read
# column-major. So C = op(A) op(B) in row-major terms is computed as the column-major
# product C^T = op(B)^T op(A)^T, i.e. gemm with the operands swapped and M and N exchanged.
# Callers check that every dimension fits in a C int before calling (see _kernels.pyx).

from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm

cdef extern from "cffnn/smallgemm.h" nogil:
    int cffnn_small_gemm_enabled
    int cffnn_sparse_enabled
    unsigned long long cffnn_sparse_products
    bint cffnn_small_gemm_available()
    bint cffnn_small_gemm_fits(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k)
    bint cffnn_medium_gemm_pays(Py_ssize_t m, Py_ssize_t n)
    bint cffnn_gradient_gemm_pays(Py_ssize_t n, Py_ssize_t k)
    bint cffnn_sparse_rows_in_chunks_f(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                       const float* a, Py_ssize_t lda, const float* w,
                                       Py_ssize_t ldw, float* c, Py_ssize_t ldc,
                                       const float* bias, bint relu)
    void cffnn_small_gemm_f(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float* a,
                            Py_ssize_t a_rs, Py_ssize_t a_cs, const float* b, Py_ssize_t ldb,
                            float* c, Py_ssize_t ldc, bint accumulate)
    void cffnn_small_gemm_d(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const double* a,
                            Py_ssize_t a_rs, Py_ssize_t a_cs, const double* b,
                            Py_ssize_t ldb, double* c, Py_ssize_t ldc, bint accumulate)
    bint cffnn_small_gemm_nt_f(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float* a,
                               Py_ssize_t lda, const float* b, Py_ssize_t ldb, float* c,
                               Py_ssize_t ldc, bint accumulate)
    bint cffnn_small_gemm_nt_d(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const double* a,
                               Py_ssize_t lda, const double* b, Py_ssize_t ldb, double* c,
                               Py_ssize_t ldc, bint accumulate)
    void cffnn_small_gemv_f(Py_ssize_t m, Py_ssize_t k, const float* a, Py_ssize_t lda,
                            const float* b, float* c, bint accumulate)
    void cffnn_small_gemm_bias_f(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float* a,
                                 Py_ssize_t lda, const float* b, Py_ssize_t ldb, float* c,
                                 Py_ssize_t ldc, const float* bias, bint relu)
    void cffnn_small_gemm_bias_d(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const double* a,
                                 Py_ssize_t lda, const double* b, Py_ssize_t ldb, double* c,
                                 Py_ssize_t ldc, const double* bias, bint relu)


cdef inline void small_gemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* a,
                            Py_ssize_t a_rs, Py_ssize_t a_cs, const floating* b,
                            Py_ssize_t ldb, floating* c, Py_ssize_t ldc,
                            bint accumulate) noexcept nogil:
    """smallgemm.h's kernel for the data's type (see there for the operands)."""
    if floating is float:
        cffnn_small_gemm_f(m, n, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate)
    else:
        cffnn_small_gemm_d(m, n, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate)


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating* a, int lda,
                      const floating* b, int ldb,
                      floating beta, floating* c, int ldc) noexcept nogil:
    """C = alpha op(A) op(B) + beta C, all row-major; through include/cffnn/smallgemm.h
    for the products that BLAS's packing would dominate (small ones, forward products of
    up to 64 rows, weight gradients of a minibatch) where the CPU has AVX2 and FMA, else
    through BLAS.

    op(A) is (m, k), op(B) is (k, n), C is (m, n); lda, ldb, ldc are row strides
    (in elements) of the buffers as stored.
    """
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if (alpha == 1 and (beta == 0 or beta == 1) and not (trans_a and trans_b)
            and cffnn_small_gemm_available()):
        # include/cffnn/smallgemm.h, which packs only what it must (see there)
        if not trans_b and (cffnn_small_gemm_fits(m, n, k) or (floating is float and (
                (not trans_a and cffnn_medium_gemm_pays(m, n))
                or (trans_a and cffnn_gradient_gemm_pays(n, k))))):
            # small products; in float32 also forward products of a few rows (whose W
            # BLAS would pack) and weight gradients of a minibatch (whose operands BLAS
            # would pack). In float64 those larger products stay with BLAS: 0.84-0.88x
            # of it through this kernel in a Fashion-MNIST epoch.
            small_gemm(m, n, k, a, 1 if trans_a else lda, lda if trans_a else 1,
                       b, ldb, c, ldc, beta == 1)
            return
        if cffnn_small_gemm_fits(m, n, k):
            if floating is float:
                if cffnn_small_gemm_nt_f(m, n, k, a, lda, b, ldb, c, ldc, beta == 1):
                    return   # (else out of memory for its transposed copy: BLAS below)
            else:
                if cffnn_small_gemm_nt_d(m, n, k, a, lda, b, ldb, c, ldc, beta == 1):
                    return
        elif trans_a and n == 1 and ldc == 1 and cffnn_small_gemm_fits(1, m, k):
            # the weight gradient of a one-output layer, dW (m x 1) = A^T b: computed as
            # the row C^T = b^T A, whose m columns fill the kernel's vectors (as C itself,
            # one masked column, would not)
            small_gemm(1, m, k, b, 0, ldb, a, lda, c, m, beta == 1)
            return
        elif (floating is float and not trans_a and not trans_b and n == 1 and ldb == 1
              and ldc == 1 and cffnn_small_gemm_fits(m, 8, k)):
            # the forward product of a one-output layer, C (m x 1) = A b: dot products
            cffnn_small_gemv_f(m, k, a, lda, b, c, beta == 1)
            return
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*> b, &ldb, <float*> a, &lda,
              &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*> b, &ldb, <double*> a, &lda,
              &beta, c, &ldc)


cdef inline bint gemm_bias(int m, int n, int k, const floating* a, int lda,
                           const floating* b, int ldb, floating* c, int ldc,
                           const floating* bias, bint relu) noexcept nogil:
    """C = A B + bias, then max(C, 0) with relu (row-major, no transposes: a layer's forward
    product), in smallgemm.h's registers, when gemm would take that kernel for this
    product; else False, having done nothing (the caller then runs gemm and adds the bias
    itself). In float32, blocks of more rows whose first 64 have many zeros (images) go
    through smallgemm.h too, 64 rows at a time, skipping them (sparserows.h)."""
    if (floating is float and cffnn_small_gemm_available()
            and cffnn_sparse_rows_in_chunks_f(m, n, k, a, lda, b, ldb, c, ldc, bias, relu)):
        return True
    if not (cffnn_small_gemm_available() and (cffnn_small_gemm_fits(m, n, k) or (
            floating is float and cffnn_medium_gemm_pays(m, n)))):
        return False
    if floating is float:
        cffnn_small_gemm_bias_f(m, n, k, a, lda, b, ldb, c, ldc, bias, relu)
    else:
        cffnn_small_gemm_bias_d(m, n, k, a, lda, b, ldb, c, ldc, bias, relu)
    return True


cdef inline bint forward_product_rowwise(Py_ssize_t m, Py_ssize_t n,
                                         Py_ssize_t k) noexcept nogil:
    """Whether a float32 layer's forward product of m rows, (m, k) by W (k, n), goes
    through smallgemm.h (gemm_bias, or gemm's one-output dot products), whose every
    element is one chain of FMAs over p = 0..k-1 whatever m is and whichever rows share
    the call: so does every product of fewer rows. The rows of such a product may be
    split between threads without changing a bit (forward_all); BLAS gives no such
    promise. (Pairs of rows that skip their zeros, sparserows.h, leave out only terms
    of +-0, which change no sum, bar the -0 case stated there.)"""
    return cffnn_small_gemm_available() and (
        cffnn_small_gemm_fits(m, n, k) or cffnn_medium_gemm_pays(m, n)
        or (n == 1 and cffnn_small_gemm_fits(m, 8, k)))
