/*
 * cffnn/gather.h: out[r, :] = x[order[r], :] for r < n_rows, the rows of a shuffled
 * minibatch made contiguous for GEMM.
 *
 * Why a header: GCC turns a plain copy loop into a call to memcpy, one call per row. For
 * short rows (the 8 features and 1 target of a regression row) the calls cost more than
 * the copy: 6% of the regression task's epoch went to memmove. Short rows are copied
 * here by a loop GCC is told to keep, which asks for the row CFFNN_GATHER_AHEAD rows on
 * (the rows of a shuffled minibatch lie anywhere in X): that cut the gather's share of a
 * regression epoch from 4.4% to 3.5-3.8% (perf, 2 threads); alone, the 100000 rows of 8
 * floats in blocks of 64 took 0.62 ms without, 0.43-0.47 ms 4 rows ahead (2: 0.50-0.58,
 * 8: 0.47-0.48). Rows of 32 values or more go through memcpy: copying Fashion-MNIST's
 * rows a line at a time while prefetching the next row's gathered them 1.2-1.4x faster
 * alone, but did not lower the gather's share of an epoch (3.0% memcpy, 3.3% so).
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
#define CFFNN_GATHER_AHEAD 4

#if defined(__GNUC__) || defined(__clang__)
#define CFFNN_PREFETCH(address) __builtin_prefetch((address), 0, 3)
#else
#define CFFNN_PREFETCH(address) ((void)(address))
#endif

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
        if (r + CFFNN_GATHER_AHEAD < n_rows)                                            \
            CFFNN_PREFETCH(x + order[r + CFFNN_GATHER_AHEAD] * width);                  \
        for (ptrdiff_t k = 0; k < width; k++)                                           \
            out[r * width + k] = row[k];                                                \
    }                                                                                   \
}

CFFNN_DEFINE_GATHER(cffnn_gather_rows_f, float)
CFFNN_DEFINE_GATHER(cffnn_gather_rows_d, double)

#endif /* CFFNN_GATHER_H */
