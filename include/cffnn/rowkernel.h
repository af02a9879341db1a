/*
 * cffnn/rowkernel.h: y = b + x W for one row x, W row-major of shape (n_in, n_out).
 *
 * The forward pass of a few rows. Why not BLAS: a GEMM with one row spends its time
 * packing W (0.8 MB for 784x256: 230 us per call measured here), and a gemv chain pays a
 * call and a threading decision per layer; this loop streams W once with a block of
 * outputs held in vector registers (benchmarks/compare_core.py, "forward ... x1").
 * Measured: it runs at the speed one core of this machine reads from L3: the 0.9 MB of
 * a 784-256-128-10 network's weights took 12.4-14.5 us through this loop for a row
 * without zeros (no Python around it), and a plain sum over 935 KB took 11.7-12.1 us
 * (~80 GB/s). Only inputs that are 0, whose rows are skipped, make it faster than that,
 * and a second core reading the other half (helper.h).
 *
 * (Small GEMMs built from this loop, for batches of 32 on a 64-32-10 network, were
 * measured 2x slower than OpenBLAS's sgemm: a row at a time leaves too few independent
 * accumulators. BLAS keeps those.)
 *
 * Rows of W whose input is exactly 0 are skipped: they add nothing, and after a ReLU
 * about half the inputs are 0 (and half the pixels of a Fashion-MNIST image). The nonzero
 * inputs are first listed without branches (in `nonzero`), so skipping costs no
 * mispredicted branch; the rows so listed are scattered over W, where the hardware
 * prefetcher cannot guess the next one, so the loop asks for the row CFFNN_ROW_AHEAD
 * places further down the list itself.
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

/* How far down the list of nonzero inputs the sparse loop prefetches rows of W.
 * Measured on Fashion-MNIST rows (784-256-128-10, weights in L3), per forward of one
 * row: 8.5-10.2 us without, 7.5-7.7 us 8 rows ahead, 8.8-9.0 us 4 ahead, 9.1-10.3 us 16
 * ahead. The list is padded with CFFNN_ROW_AHEAD copies of its last entry, so the loop
 * needs no bound check: callers give n_in + CFFNN_ROW_AHEAD ints of scratch. */
#define CFFNN_ROW_AHEAD 8
#define CFFNN_ROW_SCRATCH(n_in) ((n_in) + CFFNN_ROW_AHEAD)

/* The list of the i with x[i] != 0 in nonzero[0 .. count), padded as said above;
 * returns count. Portable: a serial chain through `count`, ~0.5 us for 784 inputs. */
#define CFFNN_DEFINE_NONZERO(NAME, T)                                                   \
static inline ptrdiff_t NAME(const T *x, ptrdiff_t n, int *nonzero) {                   \
    ptrdiff_t count = 0;                                                                \
    for (ptrdiff_t i = 0; i < n; i++) {                                                 \
        nonzero[count] = (int)i;                                                        \
        count += (x[i] != 0);                                                           \
    }                                                                                   \
    return count;                                                                       \
}
CFFNN_DEFINE_NONZERO(cffnn_nonzero_f_base, float)
CFFNN_DEFINE_NONZERO(cffnn_nonzero_d_base, double)

/* The rows of W to use, given the count of nonzero inputs listed in nonzero: that list
 * (padded here) when at least a quarter of the n_in inputs are 0, else NULL, all rows:
 * below a quarter the indirection through the list costs more than the skipped rows
 * save. *n_used receives the number of rows. */
static inline const int *cffnn_rows_used(ptrdiff_t count, ptrdiff_t n_in, int *nonzero,
                                         ptrdiff_t *n_used) {
    const int last = count > 0 ? nonzero[count - 1] : 0;
    for (int a = 0; a < CFFNN_ROW_AHEAD; a++) nonzero[count + a] = last;
    if (4 * count > 3 * n_in) {
        *n_used = n_in;
        return NULL;
    }
    *n_used = count;
    return nonzero;
}

/* Portable version: y = b + x W, row of W by row of W (rows listed, or all if NULL). */
#define CFFNN_DEFINE_ROW_BASE(NAME, T)                                                  \
static void NAME(const T *x, const T *W, ptrdiff_t ldw, const T *b, T *y,               \
                 ptrdiff_t n_out, const int *nonzero, ptrdiff_t n_used) {               \
    for (ptrdiff_t j = 0; j < n_out; j++) y[j] = b ? b[j] : 0;                          \
    for (ptrdiff_t t = 0; t < n_used; t++) {                                            \
        const ptrdiff_t i = nonzero ? nonzero[t] : t;                                   \
        const T xi = x[i], *w = W + i * ldw;                                            \
        for (ptrdiff_t j = 0; j < n_out; j++) y[j] += xi * w[j];                        \
    }                                                                                   \
}
CFFNN_DEFINE_ROW_BASE(cffnn_row_times_matrix_f_base, float)
CFFNN_DEFINE_ROW_BASE(cffnn_row_times_matrix_d_base, double)

#ifdef CFFNN_X86_AVX2
#define CFFNN_ROW_AVX2 1
#include <immintrin.h>

/* The list of nonzero inputs, 4 values at a time: their "!= 0" bits make a mask m of 4
 * bits, and the positions of m's set bits, at most 4 of them, are stored in one go:
 * byte r of cffnn_lanes_of_mask[m] is the position of the r-th set bit (the bytes past
 * the last are 0; the next store overwrites them). ~0.1 us for 784 inputs. */
static const unsigned int cffnn_lanes_of_mask[16] = {
    0x00000000, 0x00000000, 0x00000001, 0x00000100,   /* -, 0, 1, 0 1 */
    0x00000002, 0x00000200, 0x00000201, 0x00020100,   /* 2, 0 2, 1 2, 0 1 2 */
    0x00000003, 0x00000300, 0x00000301, 0x00030100,   /* 3, 0 3, 1 3, 0 1 3 */
    0x00000302, 0x00030200, 0x00030201, 0x03020100,   /* 2 3, 0 2 3, 1 2 3, 0 1 2 3 */
};
static const unsigned char cffnn_bits_of_mask[16] = {0, 1, 1, 2, 1, 2, 2, 3,
                                                     1, 2, 2, 3, 2, 3, 3, 4};

/* nonzero[count ..] = base + the positions of mask's set bits; returns the new count */
__attribute__((target("avx2,fma"), always_inline))
static inline ptrdiff_t cffnn_append_lanes(int *nonzero, ptrdiff_t count, ptrdiff_t base,
                                           int mask) {
    const __m128i lanes = _mm_cvtepu8_epi32(_mm_cvtsi32_si128((int)cffnn_lanes_of_mask[mask]));
    _mm_storeu_si128((__m128i *)(nonzero + count),
                     _mm_add_epi32(lanes, _mm_set1_epi32((int)base)));
    return count + cffnn_bits_of_mask[mask];
}

/* LANES values a step (8 floats or 4 doubles: one AVX2 register), whose "!= 0" bits
 * MASK(p) gives, appended 4 at a time; then the rest one by one. */
#define CFFNN_DEFINE_NONZERO_AVX2(SUFFIX, T, LANES, MASK)                                \
__attribute__((target("avx2,fma")))                                                     \
static ptrdiff_t cffnn_nonzero_##SUFFIX##_avx2(const T *x, ptrdiff_t n, int *nonzero) { \
    ptrdiff_t count = 0, i = 0;                                                         \
    for (; i + LANES <= n; i += LANES) {                                                \
        const int mask = MASK(x + i);                                                   \
        for (int q = 0; q < LANES; q += 4)                                              \
            count = cffnn_append_lanes(nonzero, count, i + q, (mask >> q) & 15);        \
    }                                                                                   \
    for (; i < n; i++) {                                                                \
        nonzero[count] = (int)i;                                                        \
        count += (x[i] != 0);                                                           \
    }                                                                                   \
    return count;                                                                       \
}
#define CFFNN_NONZERO_MASK_F(p)                                                          \
    _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p), _mm256_setzero_ps(), _CMP_NEQ_UQ))
#define CFFNN_NONZERO_MASK_D(p)                                                          \
    _mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(p), _mm256_setzero_pd(), _CMP_NEQ_UQ))
CFFNN_DEFINE_NONZERO_AVX2(f, float, 8, CFFNN_NONZERO_MASK_F)
CFFNN_DEFINE_NONZERO_AVX2(d, double, 4, CFFNN_NONZERO_MASK_D)

/* Columns [j0, j0 + NV * LANES) of y, with NV accumulator registers (NV a constant, so
 * the compiler keeps acc[] in registers), over rows of W taken CHUNK at a time: all
 * column blocks of one chunk of rows are done before the next chunk, so W is read nearly
 * in order (measured: 784x256 in 11 us this way, 19 us one whole column block at a time,
 * where every row contributes 256 bytes out of each kilobyte). Without a list every row
 * is used, in order; with one, row nonzero[t] is used, and the same columns of row
 * nonzero[t + CFFNN_ROW_AHEAD] are prefetched (one cache line per two registers).
 * VEC/LOAD/STORE/SET1/FMA/ZERO name the intrinsics. */
#define CFFNN_ROW_CHUNK 16
#define CFFNN_DEFINE_COLUMNS_AVX2(NAME, T, NV, LANES, VEC, LOAD, STORE, SET1, FMA, ZERO) \
__attribute__((target("avx2,fma")))                                                     \
static inline void NAME(const T *x, const T *W, ptrdiff_t ldw, T *y,                   \
                        const int *nonzero, ptrdiff_t t0, ptrdiff_t t1, ptrdiff_t j0) { \
    VEC acc[NV];                                                                        \
    for (int v = 0; v < NV; v++) acc[v] = LOAD(y + j0 + v * LANES);                     \
    if (nonzero == NULL) {                                                              \
        for (ptrdiff_t i = t0; i < t1; i++) {                                           \
            const VEC xi = SET1(x[i]);                                                  \
            const T *w = W + i * ldw + j0;                                              \
            for (int v = 0; v < NV; v++) acc[v] = FMA(xi, LOAD(w + v * LANES), acc[v]); \
        }                                                                               \
    } else {                                                                            \
        for (ptrdiff_t t = t0; t < t1; t++) {                                           \
            const ptrdiff_t i = nonzero[t];                                             \
            const VEC xi = SET1(x[i]);                                                  \
            const T *w = W + i * ldw + j0;                                              \
            const T *ahead = W + nonzero[t + CFFNN_ROW_AHEAD] * ldw + j0;               \
            for (int v = 0; v < NV; v += 2)                                             \
                _mm_prefetch((const char *)(ahead + v * LANES), _MM_HINT_T0);           \
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
static void NAME(const T *x, const T *W, ptrdiff_t ldw, const T *b, T *y,               \
                 ptrdiff_t n_out, const int *nonzero, ptrdiff_t n_used) {               \
    for (ptrdiff_t j = 0; j < n_out; j++) y[j] = b ? b[j] : 0;                          \
    for (ptrdiff_t t0 = 0; t0 < n_used; t0 += CFFNN_ROW_CHUNK) {                        \
        const ptrdiff_t t1 = t0 + CFFNN_ROW_CHUNK < n_used ? t0 + CFFNN_ROW_CHUNK : n_used; \
        ptrdiff_t j0 = 0;                                                               \
        for (; j0 + 8 * LANES <= n_out; j0 += 8 * LANES)                                \
            cffnn_columns8_##SUFFIX(x, W, ldw, y, nonzero, t0, t1, j0);               \
        for (; j0 + 4 * LANES <= n_out; j0 += 4 * LANES)                                \
            cffnn_columns4_##SUFFIX(x, W, ldw, y, nonzero, t0, t1, j0);               \
        for (; j0 + LANES <= n_out; j0 += LANES)                                        \
            cffnn_columns1_##SUFFIX(x, W, ldw, y, nonzero, t0, t1, j0);               \
        for (; j0 < n_out; j0++)                                                        \
            for (ptrdiff_t t = t0; t < t1; t++) {                                       \
                const ptrdiff_t i = nonzero ? nonzero[t] : t;                           \
                y[j0] += x[i] * W[i * ldw + j0];                                        \
            }                                                                           \
    }                                                                                   \
}
CFFNN_DEFINE_ROW_AVX2(cffnn_row_times_matrix_f_avx2, float, 8, f)
CFFNN_DEFINE_ROW_AVX2(cffnn_row_times_matrix_d_avx2, double, 4, d)
#endif

/* y (n_out) = b + x W (b NULL: 0; b == y: y += x W), where row i of W starts at
 * W + i * ldw (ldw >= n_out: W may be a block of columns of a wider matrix); nonzero:
 * CFFNN_ROW_SCRATCH(n_in) ints of scratch. */
#define CFFNN_DEFINE_ROW_DISPATCH(NAME, T, SUFFIX)                                       \
static inline void NAME(const T *x, const T *W, ptrdiff_t ldw, const T *b, T *y,        \
                        ptrdiff_t n_in, ptrdiff_t n_out, int *nonzero) {                \
    ptrdiff_t n_used;                                                                   \
    const int *rows;                                                                    \
    CFFNN_ROW_PICK_AVX2(NAME, SUFFIX)                                                   \
    rows = cffnn_rows_used(cffnn_nonzero_##SUFFIX##_base(x, n_in, nonzero), n_in,       \
                           nonzero, &n_used);                                           \
    cffnn_row_times_matrix_##SUFFIX##_base(x, W, ldw, b, y, n_out, rows, n_used);       \
}
#ifdef CFFNN_ROW_AVX2
#define CFFNN_ROW_PICK_AVX2(NAME, SUFFIX)                                                \
    if (cffnn_has_avx2_fma()) {                                                         \
        rows = cffnn_rows_used(cffnn_nonzero_##SUFFIX##_avx2(x, n_in, nonzero), n_in,   \
                               nonzero, &n_used);                                       \
        cffnn_row_times_matrix_##SUFFIX##_avx2(x, W, ldw, b, y, n_out, rows, n_used);   \
        return;                                                                         \
    }
#else
#define CFFNN_ROW_PICK_AVX2(NAME, SUFFIX)
#endif
CFFNN_DEFINE_ROW_DISPATCH(cffnn_row_times_matrix_f, float, f)
CFFNN_DEFINE_ROW_DISPATCH(cffnn_row_times_matrix_d, double, d)

/* How many of x[0 .. n) are not 0 (NaN counts): the scan above, whose list goes to
 * nonzero (CFFNN_ROW_SCRATCH(n) ints of scratch). For a caller that weighs what the rows
 * of a few inputs would cost here (cffnn/_kernels.pyx, few_rows_by_gemm). */
static inline ptrdiff_t cffnn_count_nonzero_f(const float *x, ptrdiff_t n, int *nonzero) {
#ifdef CFFNN_ROW_AVX2
    if (cffnn_has_avx2_fma())
        return cffnn_nonzero_f_avx2(x, n, nonzero);
#endif
    return cffnn_nonzero_f_base(x, n, nonzero);
}

#endif /* CFFNN_ROWKERNEL_H */
