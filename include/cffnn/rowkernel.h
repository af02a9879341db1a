/*
 * cffnn/rowkernel.h: y = b + x W for one row x, W row-major of shape (n_in, n_out).
 *
 * Why not BLAS: a GEMM with one row spends its time packing W (0.8 MB for 784x256),
 * and gemv pays a call and a thread check per layer; for a handful of rows this loop,
 * which streams W once and keeps 64 outputs in vector registers, is several times faster
 * (benchmarks/compare_core.py, "forward one row").
 *
 * Rows of W whose input is exactly 0 are skipped: they add nothing (ReLU layers and
 * image borders make half the inputs 0).
 *
 * The body is compiled twice on x86-64 with GCC or clang: for AVX2+FMA and for the
 * baseline, chosen once at run time, since a wheel cannot assume AVX2.
 */
#ifndef CFFNN_ROWKERNEL_H
#define CFFNN_ROWKERNEL_H

#include <stddef.h>

/* Defines NAME(x, W, b, y, n_in, n_out) for element type T, keeping BLOCK outputs in
 * registers: 64 floats or 32 doubles are 8 AVX registers, half of them. */
#define CFFNN_DEFINE_ROW_TIMES_MATRIX(NAME, T, CFFNN_ROW_BLOCK, ATTRIBUTES)                             \
ATTRIBUTES static void NAME(const T *x, const T *W, const T *b, T *y,                  \
                            ptrdiff_t n_in, ptrdiff_t n_out)                           \
{                                                                                      \
    ptrdiff_t i, j, j0 = 0;                                                            \
    for (; j0 + CFFNN_ROW_BLOCK <= n_out; j0 += CFFNN_ROW_BLOCK) {                     \
        T acc[CFFNN_ROW_BLOCK];                                                        \
        for (j = 0; j < CFFNN_ROW_BLOCK; j++) acc[j] = b[j0 + j];                      \
        for (i = 0; i < n_in; i++) {                                                   \
            const T xi = x[i];                                                         \
            const T *w = W + i * n_out + j0;                                           \
            if (xi == 0) continue;                                                     \
            for (j = 0; j < CFFNN_ROW_BLOCK; j++) acc[j] += xi * w[j];                 \
        }                                                                              \
        for (j = 0; j < CFFNN_ROW_BLOCK; j++) y[j0 + j] = acc[j];                      \
    }                                                                                  \
    if (j0 < n_out) {                                                                  \
        const ptrdiff_t width = n_out - j0;                                            \
        for (j = 0; j < width; j++) y[j0 + j] = b[j0 + j];                             \
        for (i = 0; i < n_in; i++) {                                                   \
            const T xi = x[i];                                                         \
            const T *w = W + i * n_out + j0;                                           \
            if (xi == 0) continue;                                                     \
            for (j = 0; j < width; j++) y[j0 + j] += xi * w[j];                        \
        }                                                                              \
    }                                                                                  \
}

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define CFFNN_ROW_DISPATCH 1
CFFNN_DEFINE_ROW_TIMES_MATRIX(cffnn_row_times_matrix_f_avx2, float, 64,
                              __attribute__((target("avx2,fma"))))
CFFNN_DEFINE_ROW_TIMES_MATRIX(cffnn_row_times_matrix_d_avx2, double, 32,
                              __attribute__((target("avx2,fma"))))
#endif
CFFNN_DEFINE_ROW_TIMES_MATRIX(cffnn_row_times_matrix_f_base, float, 64, )
CFFNN_DEFINE_ROW_TIMES_MATRIX(cffnn_row_times_matrix_d_base, double, 32, )

static inline int cffnn_has_avx2_fma(void) {
#ifdef CFFNN_ROW_DISPATCH
    static int cached = -1;   /* a benign race: every thread computes the same value */
    if (cached < 0)
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return cached;
#else
    return 0;
#endif
}

static inline void cffnn_row_times_matrix_f(const float *x, const float *W, const float *b,
                                            float *y, ptrdiff_t n_in, ptrdiff_t n_out) {
#ifdef CFFNN_ROW_DISPATCH
    if (cffnn_has_avx2_fma()) {
        cffnn_row_times_matrix_f_avx2(x, W, b, y, n_in, n_out);
        return;
    }
#endif
    cffnn_row_times_matrix_f_base(x, W, b, y, n_in, n_out);
}

static inline void cffnn_row_times_matrix_d(const double *x, const double *W, const double *b,
                                            double *y, ptrdiff_t n_in, ptrdiff_t n_out) {
#ifdef CFFNN_ROW_DISPATCH
    if (cffnn_has_avx2_fma()) {
        cffnn_row_times_matrix_d_avx2(x, W, b, y, n_in, n_out);
        return;
    }
#endif
    cffnn_row_times_matrix_d_base(x, W, b, y, n_in, n_out);
}

#endif /* CFFNN_ROWKERNEL_H */
