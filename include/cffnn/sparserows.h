/*
 * cffnn/sparserows.h: the forward product of a layer, C = A W + bias (then ReLU), for
 * float32 rows of A with many zeros, skipping the zeros: part of cffnn/smallgemm.h,
 * which includes it (inside its AVX2 section) and calls it from cffnn_small_gemm_bias_f.
 *
 * Why: half of a Fashion-MNIST image's pixels are 0, and its first layer's forward
 * product, 64 images x 784 pixels by 784 x 256, was a third of a training epoch.
 * smallgemm.h's tiles of 6 rows can skip a pixel only where all 6 images are 0 there
 * (16% of pixels); tiles of 2 rows skip it where both are (34%): for each pair of rows,
 * a bit mask of the p at which either row is not 0, and a tile of 2 rows x 32 columns
 * (8 accumulators; 4 loads of W and 2 broadcasts a p for 8 FMAs, as few loads an FMA as
 * the 6 x 16 tile) that visits only those p. Measured on 200 blocks of 64 shuffled
 * Fashion-MNIST images, one thread: 288 us dense, 191.5 us this way with W hot (1.50x),
 * 1.42x after an 8 MB sweep; the scan for the masks is included. Blocks of more than 64
 * rows (large batches) take it 64 rows at a time: smallgemm.h's
 * cffnn_sparse_rows_in_chunks_f.
 *
 * The same bits as the dense tile: each element of C is one FMA chain over the p of the
 * sum in ascending order, starting from +0, and a p skipped for a row is one at which
 * that row's A is 0, whose product would add +-0 and leave the sum as it is. Two
 * exceptions, as in smallgemm.h's skipping weight gradients and rowkernel.h: an
 * infinite or NaN weight times a skipped 0 (NaN in the dense product) is not added, and
 * a sum that underflowed to -0 stays -0 where a skipped +0 product would make it +0
 * (only visible without ReLU and with a bias of -0).
 *
 * W's k block of a panel (128 rows of 32 columns, 16 KB) is copied to contiguous scratch
 * first: W's rows are 1 KB apart and would fall into 4 of L1's 64 sets.
 */
#ifndef CFFNN_SPARSEROWS_H
#define CFFNN_SPARSEROWS_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define CFFNN_SPARSE_ROWS_PANEL 32      /* columns of C a tile: 4 registers a row */
#define CFFNN_SPARSE_ROWS_K_BLOCK 128   /* p per packed block of W: 16 KB */
/* Used where at most this share of the pairs' p are active (the tile costs what the
 * dense one does per p it visits, plus the scan), in products of at least
 * CFFNN_SPARSE_MIN_MACS multiply-adds and 8 rows whose columns fill whole panels; the
 * scan gives up after a first pair with next to no zeros (as the weight gradient's). */
#define CFFNN_SPARSE_ROWS_MAX_ACTIVE 0.85
#define CFFNN_SPARSE_ROWS_FIRST_MAX_ACTIVE 0.98
#define CFFNN_SPARSE_ROWS_MIN_ROWS 8

/* masks[t * groups + g], bit j (groups = ceil(k / 8)): row 2t or row 2t + 1 (row 2t
 * again when m is odd and that row is the last) of A has A(r, 8g + j) != 0 (NaN counts
 * as not 0). Returns the number of active p over all pairs, or -1 as soon as the first
 * pair has more than CFFNN_SPARSE_ROWS_FIRST_MAX_ACTIVE of its p active. */
__attribute__((target("avx2,fma")))
static ptrdiff_t cffnn_pair_masks_f(ptrdiff_t m, ptrdiff_t k, const float *a,
                                    ptrdiff_t lda, uint8_t *masks) {
    const ptrdiff_t groups = (k + 7) / 8;
    const __m256 zero = _mm256_setzero_ps();
    ptrdiff_t active = 0;
    for (ptrdiff_t t = 0; 2 * t < m; t++) {
        const float *row0 = a + 2 * t * lda, *row1 = 2 * t + 1 < m ? row0 + lda : row0;
        uint8_t *out = masks + t * groups;
        ptrdiff_t g = 0;
        for (; 8 * g + 8 <= k; g++) {
            __m256 not_zero = _mm256_or_ps(
                _mm256_cmp_ps(_mm256_loadu_ps(row0 + 8 * g), zero, _CMP_NEQ_UQ),
                _mm256_cmp_ps(_mm256_loadu_ps(row1 + 8 * g), zero, _CMP_NEQ_UQ));
            out[g] = (uint8_t)_mm256_movemask_ps(not_zero);
            active += __builtin_popcount(out[g]);
        }
        if (g < groups) {      /* the last k % 8 p */
            unsigned bits = 0;
            for (ptrdiff_t p = 8 * g; p < k; p++)
                bits |= (unsigned)(!(row0[p] == 0) || !(row1[p] == 0)) << (p - 8 * g);
            out[g] = (uint8_t)bits;
            active += __builtin_popcount(bits);
        }
        if (t == 0 && (double)active > CFFNN_SPARSE_ROWS_FIRST_MAX_ACTIVE * (double)k)
            return -1;
    }
    return active;
}

/* C[r, j:j+32] for rows r = 2t and 2t + 1 (one_row: only 2t; row1 then repeats row0),
 * over the active p of the pair's masks in [p0, p0 + block), W's block packed (block x 32,
 * contiguous); starting from C (from_c) or +0; the bias and ReLU epilogue on the last
 * block (bias NULL: none). */
__attribute__((target("avx2,fma"), always_inline))
static inline void cffnn_sparse_rows_tile_f(
        const float *row0, const float *row1, float *c0, float *c1, int one_row,
        const uint8_t *masks, ptrdiff_t p0, ptrdiff_t block, const float *packed,
        int from_c, const float *bias, int relu) {
    __m256 s00, s01, s02, s03, s10, s11, s12, s13;   /* s<row><register> */
    if (from_c) {
        s00 = _mm256_loadu_ps(c0); s01 = _mm256_loadu_ps(c0 + 8);
        s02 = _mm256_loadu_ps(c0 + 16); s03 = _mm256_loadu_ps(c0 + 24);
        s10 = _mm256_loadu_ps(c1); s11 = _mm256_loadu_ps(c1 + 8);
        s12 = _mm256_loadu_ps(c1 + 16); s13 = _mm256_loadu_ps(c1 + 24);
    } else {
        s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = _mm256_setzero_ps();
    }
    const uint8_t *block_masks = masks + p0 / 8;
    for (ptrdiff_t g = 0; 8 * g < block; g++) {
        unsigned bits = block_masks[g];
        while (bits) {        /* C[r, :] += A(r, p) W[p, :] at each active p, in order */
            const ptrdiff_t q = 8 * g + __builtin_ctz(bits);
            bits &= bits - 1;
            const float *w = packed + q * CFFNN_SPARSE_ROWS_PANEL;
            const __m256 x0 = _mm256_broadcast_ss(row0 + p0 + q);
            const __m256 x1 = _mm256_broadcast_ss(row1 + p0 + q);
            const __m256 w0 = _mm256_load_ps(w), w1 = _mm256_load_ps(w + 8);
            const __m256 w2 = _mm256_load_ps(w + 16), w3 = _mm256_load_ps(w + 24);
            s00 = _mm256_fmadd_ps(x0, w0, s00); s10 = _mm256_fmadd_ps(x1, w0, s10);
            s01 = _mm256_fmadd_ps(x0, w1, s01); s11 = _mm256_fmadd_ps(x1, w1, s11);
            s02 = _mm256_fmadd_ps(x0, w2, s02); s12 = _mm256_fmadd_ps(x1, w2, s12);
            s03 = _mm256_fmadd_ps(x0, w3, s03); s13 = _mm256_fmadd_ps(x1, w3, s13);
        }
    }
    if (bias != NULL) {       /* the bias is added to the finished sum, as the dense tile */
        const __m256 b0 = _mm256_loadu_ps(bias), b1 = _mm256_loadu_ps(bias + 8);
        const __m256 b2 = _mm256_loadu_ps(bias + 16), b3 = _mm256_loadu_ps(bias + 24);
        s00 = _mm256_add_ps(s00, b0); s01 = _mm256_add_ps(s01, b1);
        s02 = _mm256_add_ps(s02, b2); s03 = _mm256_add_ps(s03, b3);
        s10 = _mm256_add_ps(s10, b0); s11 = _mm256_add_ps(s11, b1);
        s12 = _mm256_add_ps(s12, b2); s13 = _mm256_add_ps(s13, b3);
    }
    if (relu) {               /* max(C, 0): 0 for NaN and -0, as the dense tile */
        const __m256 z = _mm256_setzero_ps();
        s00 = _mm256_max_ps(s00, z); s01 = _mm256_max_ps(s01, z);
        s02 = _mm256_max_ps(s02, z); s03 = _mm256_max_ps(s03, z);
        s10 = _mm256_max_ps(s10, z); s11 = _mm256_max_ps(s11, z);
        s12 = _mm256_max_ps(s12, z); s13 = _mm256_max_ps(s13, z);
    }
    _mm256_storeu_ps(c0, s00); _mm256_storeu_ps(c0 + 8, s01);
    _mm256_storeu_ps(c0 + 16, s02); _mm256_storeu_ps(c0 + 24, s03);
    if (!one_row) {
        _mm256_storeu_ps(c1, s10); _mm256_storeu_ps(c1 + 8, s11);
        _mm256_storeu_ps(c1 + 16, s12); _mm256_storeu_ps(c1 + 24, s13);
    }
}

/* C = A W + bias, then max(C, 0) with relu, skipping zeros of A (see the top of this
 * file) where that pays: returns 1 having done it, or 0 having done nothing (too few
 * zeros, a product too small or of columns that do not fill whole panels, skipping
 * switched off, or no scratch). A row-major (m x k, lda), W (k x n, ldw), C (m x n, ldc);
 * bias: n values or NULL. */
__attribute__((target("avx2,fma")))
static int cffnn_sparse_rows_product_f(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                       const float *a, ptrdiff_t lda, const float *w,
                                       ptrdiff_t ldw, float *c, ptrdiff_t ldc,
                                       const float *bias, int relu) {
    const ptrdiff_t pairs = (m + 1) / 2, groups = (k + 7) / 8;
    const size_t packed_bytes = CFFNN_SPARSE_ROWS_K_BLOCK * CFFNN_SPARSE_ROWS_PANEL
                                * sizeof(float);
    const size_t bytes = packed_bytes + (size_t)(pairs * groups);
    if (!cffnn_sparse_enabled || m < CFFNN_SPARSE_ROWS_MIN_ROWS
            || n % CFFNN_SPARSE_ROWS_PANEL != 0
            || (double)m * (double)n * (double)k < CFFNN_SPARSE_MIN_MACS   /* so k > 0 */
            || bytes > CFFNN_SPARSE_MAX_SCRATCH)
        return 0;
    /* this thread's scratch (smallgemm.h), 64-byte aligned: packed W, then the masks */
    float *packed = (float *)cffnn_thread_scratch(bytes);
    if (packed == NULL)
        return 0;
    uint8_t *masks = (uint8_t *)((char *)packed + packed_bytes);
    const ptrdiff_t active = cffnn_pair_masks_f(m, k, a, lda, masks);
    if (active < 0
            || (double)active > CFFNN_SPARSE_ROWS_MAX_ACTIVE * (double)pairs * (double)k)
        return 0;
    __atomic_fetch_add(&cffnn_sparse_products, 1, __ATOMIC_RELAXED);
    for (ptrdiff_t j = 0; j < n; j += CFFNN_SPARSE_ROWS_PANEL) {
        for (ptrdiff_t p0 = 0; p0 < k; p0 += CFFNN_SPARSE_ROWS_K_BLOCK) {
            const ptrdiff_t block = k - p0 < CFFNN_SPARSE_ROWS_K_BLOCK
                                    ? k - p0 : CFFNN_SPARSE_ROWS_K_BLOCK;
            const int last = p0 + block == k;
            for (ptrdiff_t q = 0; q < block; q++) {
                const float *source = w + (p0 + q) * ldw + j;
                float *target = packed + q * CFFNN_SPARSE_ROWS_PANEL;
                _mm256_store_ps(target, _mm256_loadu_ps(source));
                _mm256_store_ps(target + 8, _mm256_loadu_ps(source + 8));
                _mm256_store_ps(target + 16, _mm256_loadu_ps(source + 16));
                _mm256_store_ps(target + 24, _mm256_loadu_ps(source + 24));
            }
            for (ptrdiff_t t = 0; t < pairs; t++) {
                const int one_row = 2 * t + 1 == m;
                const float *row0 = a + 2 * t * lda;
                float *c0 = c + 2 * t * ldc + j;
                cffnn_sparse_rows_tile_f(row0, one_row ? row0 : row0 + lda, c0,
                                         one_row ? c0 : c0 + ldc, one_row,
                                         masks + t * groups, p0, block, packed, p0 > 0,
                                         last && bias != NULL ? bias + j : NULL,
                                         last && relu);
            }
        }
    }
    return 1;
}

#endif /* CFFNN_SPARSEROWS_H */
