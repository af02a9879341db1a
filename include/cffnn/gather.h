/*
 * cffnn/gather.h: out[r, :] = x[order[r], :] for r < n_rows, the rows of a shuffled
 * minibatch made contiguous for GEMM.
 *
 * Why a header: GCC turns a plain copy loop into a call to memcpy, one call per row. For
 * short rows (the 8 features and 1 target of a regression row) the calls cost more than
 * the copy: 6% of the regression task's epoch went to memmove. Short rows are copied
 * here by a loop GCC is told to keep; rows of 32 values or more go through memcpy.
 */
#ifndef CFFNN_GATHER_H
#define CFFNN_GATHER_H

#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__)
#define CFFNN_KEEP_COPY_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define CFFNN_KEEP_COPY_LOOPS
#endif

#define CFFNN_MEMCPY_MIN_WIDTH 32

#define CFFNN_DEFINE_GATHER(NAME, T)                                                    \
CFFNN_KEEP_COPY_LOOPS                                                                   \
static void NAME(const T *x, ptrdiff_t width, const ptrdiff_t *order,                   \
                 ptrdiff_t n_rows, T *out) {                                            \
    if (width >= CFFNN_MEMCPY_MIN_WIDTH) {                                              \
        for (ptrdiff_t r = 0; r < n_rows; r++)                                          \
            memcpy(out + r * width, x + order[r] * width, (size_t)width * sizeof(T));   \
        return;                                                                         \
    }                                                                                   \
    for (ptrdiff_t r = 0; r < n_rows; r++) {                                            \
        const T *row = x + order[r] * width;                                            \
        for (ptrdiff_t k = 0; k < width; k++)                                           \
            out[r * width + k] = row[k];                                                \
    }                                                                                   \
}

CFFNN_DEFINE_GATHER(cffnn_gather_rows_f, float)
CFFNN_DEFINE_GATHER(cffnn_gather_rows_d, double)

#endif /* CFFNN_GATHER_H */
