/*
 * cffnn/rowkernel.h: y = b + x W for one row x, W row-major of shape (n_in, n_out).
 *
 * The forward pass of a few rows. Why not BLAS: a GEMM with one row spends its time
 * packing W (0.8 MB for 784x256: 230 us per call measured here), and a gemv chain pays a
 * call and a threading decision per layer; this loop streams W once with a block of
 * outputs held in vector registers (benchmarks/compare_core.py, "forward ... x1").
 * Measured: it runs at the ~40-50 GB/s one core of this machine gets from L3, so the
 * 0.9 MB of a 784-256-128-10 network's weights cost ~20 us.
 *
 * (Small GEMMs built from this loop, for batches of 32 on a 64-32-10 network, were
 * measured 2x slower than OpenBLAS's sgemm: a row at a time leaves too few independent
 * accumulators. BLAS keeps those.)
 *
 * Rows of W whose input is exactly 0 are skipped: they add nothing, and after a ReLU
 * about half the inputs are 0. The nonzero inputs are first listed without branches (in
 * `nonzero`, n_in ints of scratch), so skipping costs no mispredicted branch.
 *
 * b may be NULL (y = x W) and may equal y (y += x W). On x86-64 with GCC or clang the
 * loops also exist as AVX2+FMA code, picked once at run time (a wheel cannot assume
 * AVX2): outputs go in blocks of 8, 4 or 1 registers, accumulated over a chunk of rows
 * of W before they are stored.
 */
#ifndef CFFNN_ROWKERNEL_H
#define CFFNN_ROWKERNEL_H

#include <stddef.h>

#include "cffnn/cpu.h"

/* How many x[i] are nonzero (a reduction the compiler vectorises), and the list of
 * those i in nonzero, built only when worth it (see the dispatch below): the list is a
 * serial chain through `count`, ~1 us for the 1168 inputs of a 784-256-128-10 row. */
#define CFFNN_DEFINE_NONZERO(NAME, T)                                                   \
static inline ptrdiff_t NAME##_count(const T *x, ptrdiff_t n) {                         \
    ptrdiff_t count = 0;                                                                \
    for (ptrdiff_t i = 0; i < n; i++) count += (x[i] != 0);                             \
    return count;                                                                       \
}                                                                                       \
static inline void NAME(const T *x, ptrdiff_t n, int *nonzero) {                        \
    ptrdiff_t count = 0;                                                                \
    for (ptrdiff_t i = 0; i < n; i++) {                                                 \
        nonzero[count] = (int)i;                                                        \
        count += (x[i] != 0);                                                           \
    }                                                                                   \
}
CFFNN_DEFINE_NONZERO(cffnn_nonzero_f, float)
CFFNN_DEFINE_NONZERO(cffnn_nonzero_d, double)

/* Portable version: y = b + x W, row of W by row of W (rows listed, or all if NULL). */
#define CFFNN_DEFINE_ROW_BASE(NAME, T)                                                  \
static void NAME(const T *x, const T *W, const T *b, T *y, ptrdiff_t n_out,             \
                 const int *nonzero, ptrdiff_t n_used) {                                \
    for (ptrdiff_t j = 0; j < n_out; j++) y[j] = b ? b[j] : 0;                          \
    for (ptrdiff_t t = 0; t < n_used; t++) {                                            \
        const ptrdiff_t i = nonzero ? nonzero[t] : t;                                   \
        const T xi = x[i], *w = W + i * n_out;                                          \
        for (ptrdiff_t j = 0; j < n_out; j++) y[j] += xi * w[j];                        \
    }                                                                                   \
}
CFFNN_DEFINE_ROW_BASE(cffnn_row_times_matrix_f_base, float)
CFFNN_DEFINE_ROW_BASE(cffnn_row_times_matrix_d_base, double)

#ifdef CFFNN_X86_AVX2
#define CFFNN_ROW_AVX2 1
#include <immintrin.h>

/* Columns [j0, j0 + NV * LANES) of y, with NV accumulator registers (NV a constant, so
 * the compiler keeps acc[] in registers), over rows of W taken CHUNK at a time: all
 * column blocks of one chunk of rows are done before the next chunk, so W is read nearly
 * in order (measured: 784x256 in 11 us this way, 19 us one whole column block at a time,
 * where every row contributes 256 bytes out of each kilobyte). ROW(t) is the t-th row
 * used: t itself when every input is nonzero, else nonzero[t].
 * VEC/LOAD/STORE/SET1/FMA/ZERO name the intrinsics. */
#define CFFNN_ROW_CHUNK 16
#define CFFNN_DEFINE_COLUMNS_AVX2(NAME, T, NV, LANES, VEC, LOAD, STORE, SET1, FMA, ZERO) \
__attribute__((target("avx2,fma")))                                                     \
static inline void NAME(const T *x, const T *W, T *y, ptrdiff_t n_out,                  \
                        const int *nonzero, ptrdiff_t t0, ptrdiff_t t1, ptrdiff_t j0) { \
    VEC acc[NV];                                                                        \
    for (int v = 0; v < NV; v++) acc[v] = LOAD(y + j0 + v * LANES);                     \
    if (nonzero == NULL) {                                                              \
        for (ptrdiff_t i = t0; i < t1; i++) {                                           \
            const VEC xi = SET1(x[i]);                                                  \
            const T *w = W + i * n_out + j0;                                            \
            for (int v = 0; v < NV; v++) acc[v] = FMA(xi, LOAD(w + v * LANES), acc[v]); \
        }                                                                               \
    } else {                                                                            \
        for (ptrdiff_t t = t0; t < t1; t++) {                                           \
            const ptrdiff_t i = nonzero[t];                                             \
            const VEC xi = SET1(x[i]);                                                  \
            const T *w = W + i * n_out + j0;                                            \
            for (int v = 0; v < NV; v++) acc[v] = FMA(xi, LOAD(w + v * LANES), acc[v]); \
        }                                                                               \
    }                                                                                   \
    for (int v = 0; v < NV; v++) STORE(y + j0 + v * LANES, acc[v]);                     \
}
CFFNN_DEFINE_COLUMNS_AVX2(cffnn_columns8_f, float, 8, 8, __m256, _mm256_loadu_ps,
                          _mm256_storeu_ps, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_setzero_ps)
CFFNN_DEFINE_COLUMNS_AVX2(cffnn_columns4_f, float, 4, 8, __m256, _mm256_loadu_ps,
                          _mm256_storeu_ps, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_setzero_ps)
CFFNN_DEFINE_COLUMNS_AVX2(cffnn_columns1_f, float, 1, 8, __m256, _mm256_loadu_ps,
                          _mm256_storeu_ps, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_setzero_ps)
CFFNN_DEFINE_COLUMNS_AVX2(cffnn_columns8_d, double, 8, 4, __m256d, _mm256_loadu_pd,
                          _mm256_storeu_pd, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_setzero_pd)
CFFNN_DEFINE_COLUMNS_AVX2(cffnn_columns4_d, double, 4, 4, __m256d, _mm256_loadu_pd,
                          _mm256_storeu_pd, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_setzero_pd)
CFFNN_DEFINE_COLUMNS_AVX2(cffnn_columns1_d, double, 1, 4, __m256d, _mm256_loadu_pd,
                          _mm256_storeu_pd, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_setzero_pd)

/* y = b + x W: y starts as b (or 0), then chunks of rows are added in, column block by
 * column block; nonzero is NULL when every row is used. */
#define CFFNN_DEFINE_ROW_AVX2(NAME, T, LANES, SUFFIX)                                    \
__attribute__((target("avx2,fma")))                                                     \
static void NAME(const T *x, const T *W, const T *b, T *y, ptrdiff_t n_out,             \
                 const int *nonzero, ptrdiff_t n_used) {                                \
    for (ptrdiff_t j = 0; j < n_out; j++) y[j] = b ? b[j] : 0;                          \
    for (ptrdiff_t t0 = 0; t0 < n_used; t0 += CFFNN_ROW_CHUNK) {                        \
        const ptrdiff_t t1 = t0 + CFFNN_ROW_CHUNK < n_used ? t0 + CFFNN_ROW_CHUNK : n_used; \
        ptrdiff_t j0 = 0;                                                               \
        for (; j0 + 8 * LANES <= n_out; j0 += 8 * LANES)                                \
            cffnn_columns8_##SUFFIX(x, W, y, n_out, nonzero, t0, t1, j0);               \
        for (; j0 + 4 * LANES <= n_out; j0 += 4 * LANES)                                \
            cffnn_columns4_##SUFFIX(x, W, y, n_out, nonzero, t0, t1, j0);               \
        for (; j0 + LANES <= n_out; j0 += LANES)                                        \
            cffnn_columns1_##SUFFIX(x, W, y, n_out, nonzero, t0, t1, j0);               \
        for (; j0 < n_out; j0++)                                                        \
            for (ptrdiff_t t = t0; t < t1; t++) {                                       \
                const ptrdiff_t i = nonzero ? nonzero[t] : t;                           \
                y[j0] += x[i] * W[i * n_out + j0];                                      \
            }                                                                           \
    }                                                                                   \
}
CFFNN_DEFINE_ROW_AVX2(cffnn_row_times_matrix_f_avx2, float, 8, f)
CFFNN_DEFINE_ROW_AVX2(cffnn_row_times_matrix_d_avx2, double, 4, d)
#endif

/* y (n_out) = b + x W (b NULL: 0; b == y: y += x W); nonzero: scratch of n_in ints.
 * Zero inputs are skipped when they are at least a quarter of the row: below that the
 * indirection through the list costs more than the skipped rows save. */
#define CFFNN_DEFINE_ROW_DISPATCH(NAME, T, SUFFIX)                                       \
static inline void NAME(const T *x, const T *W, const T *b, T *y, ptrdiff_t n_in,       \
                        ptrdiff_t n_out, int *nonzero) {                                \
    ptrdiff_t n_used = cffnn_nonzero_##SUFFIX##_count(x, n_in);                         \
    const int *rows = NULL;                                                             \
    if (4 * n_used <= 3 * n_in) {                                                       \
        cffnn_nonzero_##SUFFIX(x, n_in, nonzero);                                       \
        rows = nonzero;                                                                 \
    } else {                                                                            \
        n_used = n_in;                                                                  \
    }                                                                                   \
    CFFNN_ROW_PICK_AVX2(NAME, SUFFIX)                                                   \
    cffnn_row_times_matrix_##SUFFIX##_base(x, W, b, y, n_out, rows, n_used);            \
}
#ifdef CFFNN_ROW_AVX2
#define CFFNN_ROW_PICK_AVX2(NAME, SUFFIX)                                                \
    if (cffnn_has_avx2_fma()) {                                                         \
        cffnn_row_times_matrix_##SUFFIX##_avx2(x, W, b, y, n_out, rows, n_used);        \
        return;                                                                         \
    }
#else
#define CFFNN_ROW_PICK_AVX2(NAME, SUFFIX)
#endif
CFFNN_DEFINE_ROW_DISPATCH(cffnn_row_times_matrix_f, float, f)
CFFNN_DEFINE_ROW_DISPATCH(cffnn_row_times_matrix_d, double, d)

#endif /* CFFNN_ROWKERNEL_H */
