/*
 * cffnn/smallgemm_kernel.h: the kernel of cffnn/smallgemm.h, written once for both element
 * types. smallgemm.h includes this file twice, defining first for float, then for double:
 *
 *   CFFNN_SG_SUFFIX                  f / d: CFFNN_SG(name) is name_f / name_d
 *   CFFNN_SG_T, CFFNN_SG_V           the element and its AVX register (__m256 / __m256d)
 *   CFFNN_SG_LANES                   elements a register (8 / 4); a panel is 2 registers
 *   CFFNN_SG_VS                      _ps / _pd: CFFNN_SG_OP(add) is _mm256_add_ps / _pd
 *   CFFNN_SG_BROADCAST               _mm256_broadcast_ss / _sd
 *   CFFNN_SG_LANES_BELOW(count)      a mask of the lanes l < count
 *   CFFNN_SG_SPARSE_ROWS(...)        the forward product skipping zeros: 1 if it did it
 *                                    (sparserows.h), 0 where there is none
 *
 * and this file undefines them at its end. No include guard, on purpose. See
 * smallgemm.h for the design.
 */

#define CFFNN_SG_PANEL (2 * CFFNN_SG_LANES)     /* columns of C a tile */

/* One tile: `height` (4 or 6, a constant where it is called) rows of C, of which rows
 * [0, rows) are real, x columns [0, CFFNN_SG_PANEL), masked by mask_lo / mask_hi, over k
 * values of p: C[r, :] = c0[r, :] + sum_p A[r, p] B[p, :], one FMA chain per element in
 * order of p, starting from c0 = C itself (from_c) or 0. Rows past `rows` repeat row 0
 * and are not stored. The epilogue, on the last k block of a forward product: bias
 * (NULL: none, else this tile's columns of it) is added to each row before the store,
 * and with relu the result then becomes max(C, 0) (0 for NaN, +0 for -0: as
 * bias_activation's "z if z > 0 else 0"). active: NULL (every p), or the n_active p of
 * the sum to take (k is then one block), with the tile's values of A at them in a_packed
 * (cffnn_small_gemm_sparse). */
__attribute__((target("avx2,fma"), always_inline))
static inline void CFFNN_SG(cffnn_small_gemm_tile)(
        int height, int rows, ptrdiff_t k, const CFFNN_SG_T *a, ptrdiff_t a_rs,
        ptrdiff_t a_cs, const CFFNN_SG_T *b, ptrdiff_t ldb, CFFNN_SG_T *c, ptrdiff_t ldc,
        int full, __m256i mask_lo, __m256i mask_hi, int from_c, const CFFNN_SG_T *bias,
        int relu, const uint16_t *active, const CFFNN_SG_T *a_packed, ptrdiff_t n_active) {
    if (active != NULL) {   /* A's values at the active p, 6 apart (cffnn_list_active_p) */
        a = a_packed;
        a_rs = 1;
        a_cs = 6;
    }
    const CFFNN_SG_T *a0 = a, *a1 = a + (rows > 1 ? a_rs : 0);
    const CFFNN_SG_T *a2 = a + (rows > 2 ? 2 * a_rs : 0), *a3 = a + (rows > 3 ? 3 * a_rs : 0);
    const CFFNN_SG_T *a4 = a + (rows > 4 ? 4 * a_rs : 0), *a5 = a + (rows > 5 ? 5 * a_rs : 0);
    CFFNN_SG_V tile[6][2];
    for (int r = 0; r < height; r++) {
        const CFFNN_SG_T *c_row = c + (r < rows ? r : 0) * ldc;
        if (!from_c) {
            tile[r][0] = tile[r][1] = CFFNN_SG_OP(setzero)();
        } else if (full) {
            tile[r][0] = CFFNN_SG_OP(loadu)(c_row);
            tile[r][1] = CFFNN_SG_OP(loadu)(c_row + CFFNN_SG_LANES);
        } else {
            tile[r][0] = CFFNN_SG_OP(maskload)(c_row, mask_lo);
            tile[r][1] = CFFNN_SG_OP(maskload)(c_row + CFFNN_SG_LANES, mask_hi);
        }
    }
    if (height < 6)   /* unused */
        tile[4][0] = tile[4][1] = tile[5][0] = tile[5][1] = CFFNN_SG_OP(setzero)();
    CFFNN_SG_V c00 = tile[0][0], c01 = tile[0][1], c10 = tile[1][0], c11 = tile[1][1];
    CFFNN_SG_V c20 = tile[2][0], c21 = tile[2][1], c30 = tile[3][0], c31 = tile[3][1];
    CFFNN_SG_V c40 = tile[4][0], c41 = tile[4][1], c50 = tile[5][0], c51 = tile[5][1];
/* C[r, :] += A[r, p] B[p, :] for the tile's rows at one p */
#define CFFNN_SG_TILE_STEP                                                                \
    do {                                                                                  \
        const CFFNN_SG_T *b_row = b + p * ldb;                                            \
        /* B's rows are ldb apart: ask for one CFFNN_PREFETCH_ROWS rows ahead, as the     \
         * first tile of a k block reads them from L2 or L3 (the others find them in L1) */ \
        _mm_prefetch((const char *)(b_row + CFFNN_PREFETCH_ROWS * ldb), _MM_HINT_T0);     \
        CFFNN_SG_V b_lo, b_hi;                                                            \
        if (full) {                                                                       \
            b_lo = CFFNN_SG_OP(loadu)(b_row);                                             \
            b_hi = CFFNN_SG_OP(loadu)(b_row + CFFNN_SG_LANES);                            \
        } else {                                                                          \
            b_lo = CFFNN_SG_OP(maskload)(b_row, mask_lo);                                 \
            b_hi = CFFNN_SG_OP(maskload)(b_row + CFFNN_SG_LANES, mask_hi);                \
        }                                                                                 \
        CFFNN_TILE_ROW(a0, c00, c01);                                                     \
        CFFNN_TILE_ROW(a1, c10, c11);                                                     \
        CFFNN_TILE_ROW(a2, c20, c21);                                                     \
        CFFNN_TILE_ROW(a3, c30, c31);                                                     \
        if (height > 4) {                                                                 \
            CFFNN_TILE_ROW(a4, c40, c41);                                                 \
            CFFNN_TILE_ROW(a5, c50, c51);                                                 \
        }                                                                                 \
    } while (0)
    if (active == NULL) {
        for (ptrdiff_t p = 0; p < k; p++) {
            const ptrdiff_t a_at = p;
            CFFNN_SG_TILE_STEP;
        }
    } else {
        /* only the active p, in order: where all the tile's A(r, p) are 0 the products
         * add nothing (cffnn_small_gemm_sparse); their A values packed */
        for (ptrdiff_t q = 0; q < n_active; q++) {
            const ptrdiff_t p = active[q], a_at = q;
            CFFNN_SG_TILE_STEP;
        }
    }
#undef CFFNN_SG_TILE_STEP
    CFFNN_SG_V result[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41},
                           {c50, c51}};
    if (bias != NULL) {
        const CFFNN_SG_V bias_lo = full ? CFFNN_SG_OP(loadu)(bias)
                                        : CFFNN_SG_OP(maskload)(bias, mask_lo);
        const CFFNN_SG_V bias_hi = full ? CFFNN_SG_OP(loadu)(bias + CFFNN_SG_LANES)
                                    : CFFNN_SG_OP(maskload)(bias + CFFNN_SG_LANES, mask_hi);
        for (int r = 0; r < height; r++) {
            result[r][0] = CFFNN_SG_OP(add)(result[r][0], bias_lo);
            result[r][1] = CFFNN_SG_OP(add)(result[r][1], bias_hi);
        }
    }
    if (relu)
        for (int r = 0; r < height; r++) {
            result[r][0] = CFFNN_SG_OP(max)(result[r][0], CFFNN_SG_OP(setzero)());
            result[r][1] = CFFNN_SG_OP(max)(result[r][1], CFFNN_SG_OP(setzero)());
        }
    for (int r = 0; r < rows; r++) {
        CFFNN_SG_T *c_row = c + r * ldc;
        if (full) {
            CFFNN_SG_OP(storeu)(c_row, result[r][0]);
            CFFNN_SG_OP(storeu)(c_row + CFFNN_SG_LANES, result[r][1]);
        } else {
            CFFNN_SG_OP(maskstore)(c_row, mask_lo, result[r][0]);
            CFFNN_SG_OP(maskstore)(c_row + CFFNN_SG_LANES, mask_hi, result[r][1]);
        }
    }
}

/* The tiles of rows of one k block of one column panel (full: all its columns real). */
__attribute__((target("avx2,fma"), always_inline))
static inline void CFFNN_SG(cffnn_small_gemm_panel)(
        ptrdiff_t m, ptrdiff_t k, const CFFNN_SG_T *a, ptrdiff_t a_rs, ptrdiff_t a_cs,
        const CFFNN_SG_T *b, ptrdiff_t ldb, CFFNN_SG_T *c, ptrdiff_t ldc, int full,
        __m256i mask_lo, __m256i mask_hi, int from_c, const CFFNN_SG_T *bias, int relu,
        const cffnn_active_p *active) {
    for (ptrdiff_t i = 0, tile = 0; i < m; tile++) {
        int height = cffnn_tile_height(m - i);
        int rows = m - i < height ? (int)(m - i) : height;
        const uint16_t *tile_p = NULL;
        const CFFNN_SG_T *tile_a = NULL;
        ptrdiff_t n_active = 0;
        if (active != NULL) {
            tile_p = active->p + tile * active->k;
            tile_a = (const CFFNN_SG_T *)active->a_packed + tile * active->k * 6;
            n_active = active->count[tile];
        }
        if (height == 6)
            CFFNN_SG(cffnn_small_gemm_tile)(6, rows, k, a + i * a_rs, a_rs, a_cs, b, ldb,
                                            c + i * ldc, ldc, full, mask_lo, mask_hi, from_c,
                                            bias, relu, tile_p, tile_a, n_active);
        else
            CFFNN_SG(cffnn_small_gemm_tile)(4, rows, k, a + i * a_rs, a_rs, a_cs, b, ldb,
                                            c + i * ldc, ldc, full, mask_lo, mask_hi, from_c,
                                            bias, relu, tile_p, tile_a, n_active);
        i += rows;
    }
}

/* packed (block x CFFNN_SG_PANEL, contiguous) = the k block of B's column panel at b */
__attribute__((target("avx2,fma")))
static inline void CFFNN_SG(cffnn_pack_panel)(ptrdiff_t block, const CFFNN_SG_T *b,
                                              ptrdiff_t ldb, CFFNN_SG_T *packed) {
    for (ptrdiff_t p = 0; p < block; p++) {
        CFFNN_SG_OP(store)(packed + CFFNN_SG_PANEL * p, CFFNN_SG_OP(loadu)(b + p * ldb));
        CFFNN_SG_OP(store)(packed + CFFNN_SG_PANEL * p + CFFNN_SG_LANES,
                       CFFNN_SG_OP(loadu)(b + p * ldb + CFFNN_SG_LANES));
    }
}

/* cffnn_small_gemm's loops over column panels and k blocks; packed: NULL, or 16 KB of
 * scratch into which each full panel's k block is first copied; bias and relu: the
 * epilogue of the last k block (cffnn_small_gemm_tile); active: NULL, or the p of each
 * tile to take (cffnn_small_gemm_sparse). */
__attribute__((target("avx2,fma"), always_inline))
static inline void CFFNN_SG(cffnn_small_gemm_panels)(
        ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const CFFNN_SG_T *a, ptrdiff_t a_rs,
        ptrdiff_t a_cs, const CFFNN_SG_T *b, ptrdiff_t ldb, CFFNN_SG_T *c, ptrdiff_t ldc,
        int accumulate, CFFNN_SG_T *packed, const CFFNN_SG_T *bias, int relu,
        const cffnn_active_p *active) {
    for (ptrdiff_t j = 0; j < n; j += CFFNN_SG_PANEL) {
        ptrdiff_t width = n - j < CFFNN_SG_PANEL ? n - j : CFFNN_SG_PANEL;
        /* lane l of the low (high) register is on when column j + l (j + LANES + l) < n */
        __m256i mask_lo = CFFNN_SG_LANES_BELOW(width);
        __m256i mask_hi = CFFNN_SG_LANES_BELOW(width - CFFNN_SG_LANES);
        ptrdiff_t p0 = 0;
        do {   /* (once when k = 0: C = 0, or C unchanged) */
            ptrdiff_t block = k - p0 < CFFNN_K_BLOCK ? k - p0 : CFFNN_K_BLOCK;
            int from_c = accumulate || p0 > 0, last = p0 + block == k;
            const CFFNN_SG_T *a_block = a + p0 * a_cs, *b_block = b + p0 * ldb + j;
            const CFFNN_SG_T *bias_j = last && bias != NULL ? bias + j : NULL;
            int relu_here = last && relu;
            if (width == CFFNN_SG_PANEL && packed != NULL) {
                CFFNN_SG(cffnn_pack_panel)(block, b_block, ldb, packed);
                CFFNN_SG(cffnn_small_gemm_panel)(m, block, a_block, a_rs, a_cs, packed,
                                                 CFFNN_SG_PANEL, c + j, ldc, 1, mask_lo,
                                                 mask_hi, from_c, bias_j, relu_here,
                                                 active);
            } else if (width == CFFNN_SG_PANEL) {
                CFFNN_SG(cffnn_small_gemm_panel)(m, block, a_block, a_rs, a_cs, b_block, ldb,
                                                 c + j, ldc, 1, mask_lo, mask_hi, from_c,
                                                 bias_j, relu_here, active);
            } else {
                CFFNN_SG(cffnn_small_gemm_panel)(m, block, a_block, a_rs, a_cs, b_block, ldb,
                                                 c + j, ldc, 0, mask_lo, mask_hi, from_c,
                                                 bias_j, relu_here, active);
            }
            p0 += block;
        } while (p0 < k);
    }
}

/* The packed variant, with its scratch on its own stack frame (not in the frames of the
 * small products, which are most calls): without skipping, and with (active). */
__attribute__((target("avx2,fma"), noinline))
static void CFFNN_SG(cffnn_small_gemm_packed_dense)(
        ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const CFFNN_SG_T *a, ptrdiff_t a_rs,
        ptrdiff_t a_cs, const CFFNN_SG_T *b, ptrdiff_t ldb, CFFNN_SG_T *c, ptrdiff_t ldc,
        int accumulate, const CFFNN_SG_T *bias, int relu) {
    CFFNN_SG_T packed[CFFNN_K_BLOCK * CFFNN_SG_PANEL] __attribute__((aligned(32)));
    CFFNN_SG(cffnn_small_gemm_panels)(m, n, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate,
                                      packed, bias, relu, NULL);
}

__attribute__((target("avx2,fma"), noinline))
static void CFFNN_SG(cffnn_small_gemm_packed)(
        ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const CFFNN_SG_T *a, ptrdiff_t a_rs,
        ptrdiff_t a_cs, const CFFNN_SG_T *b, ptrdiff_t ldb, CFFNN_SG_T *c, ptrdiff_t ldc,
        int accumulate, const CFFNN_SG_T *bias, int relu, const cffnn_active_p *active) {
    CFFNN_SG_T packed[CFFNN_K_BLOCK * CFFNN_SG_PANEL] __attribute__((aligned(32)));
    CFFNN_SG(cffnn_small_gemm_panels)(m, n, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate,
                                      packed, bias, relu, active);
}

/* The product without skipping (active NULL where the tile loop is compiled, so that its
 * plain loop is all there is) */
__attribute__((target("avx2,fma"), always_inline))
static inline void CFFNN_SG(cffnn_small_gemm_dense)(
        ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const CFFNN_SG_T *a, ptrdiff_t a_rs,
        ptrdiff_t a_cs, const CFFNN_SG_T *b, ptrdiff_t ldb, CFFNN_SG_T *c, ptrdiff_t ldc,
        int accumulate, const CFFNN_SG_T *bias, int relu, int pack) {
    if (pack)
        CFFNN_SG(cffnn_small_gemm_packed_dense)(m, n, k, a, a_rs, a_cs, b, ldb, c, ldc,
                                                accumulate, bias, relu);
    else
        CFFNN_SG(cffnn_small_gemm_panels)(m, n, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate,
                                          NULL, bias, relu, NULL);
}

/* The lists of cffnn_small_gemm_sparse, for A's columns contiguous (a_rs = 1) and k of
 * at most one block: for each tile t (cffnn_tile_height's tiles of A's m rows), the p < k
 * at which some row r of it has A(r, p) != 0 (or NaN), in order, from p_out[t * k]
 * (count[t] of them), and A's values there, a_out[(t * k + q) * 6 + r] for the q-th
 * listed p (0 for rows past the tile's), so that the tile loop reads them one after the
 * other. Returns how many p are listed in all, or -1 as soon as the first tile shows
 * next to no zeros (more than CFFNN_SPARSE_FIRST_MAX_ACTIVE of its p active): then the
 * scan of a dense A costs a tile's worth. a_out has room for 8 values more (whole
 * registers are stored). The tile's values at one p are side by side: one register's
 * load and compare each. */
__attribute__((target("avx2,fma")))
static ptrdiff_t CFFNN_SG(cffnn_list_active_p)(
        ptrdiff_t m, ptrdiff_t k, const CFFNN_SG_T *a, ptrdiff_t a_cs, uint16_t *p_out,
        CFFNN_SG_T *a_out, int32_t *count_out) {
    const CFFNN_SG_V zero = CFFNN_SG_OP(setzero)();
    ptrdiff_t total = 0;
    for (ptrdiff_t i = 0, tile = 0; i < m; tile++) {
        int height = cffnn_tile_height(m - i);
        int rows = m - i < height ? (int)(m - i) : height;
        const CFFNN_SG_T *a_tile = a + i;
        uint16_t *listed = p_out + tile * k;
        CFFNN_SG_T *packed = a_out + tile * k * 6;
        ptrdiff_t count = 0, p = 0;
        if (rows <= CFFNN_SG_LANES) {
            /* a plain load of a register where A's rows go on that far, else masked;
             * stored whole (the next p's values overwrite what is past this one's) */
            const __m256i lanes = CFFNN_SG_LANES_BELOW(rows);
            const int whole = i + CFFNN_SG_LANES <= m;
            for (; p < k; p++) {
                CFFNN_SG_V values = whole ? CFFNN_SG_OP(loadu)(a_tile + p * a_cs)
                                          : CFFNN_SG_OP(maskload)(a_tile + p * a_cs, lanes);
                values = CFFNN_SG_OP(and)(values, CFFNN_SG_OP(castsi256)(lanes));
                CFFNN_SG_OP(storeu)(packed + count * 6, values);
                listed[count] = (uint16_t)p;     /* kept when some value is not 0 */
                count += CFFNN_SG_OP(movemask)(CFFNN_SG_OP(cmp)(values, zero, _CMP_NEQ_UQ))
                         != 0;
            }
        }
        for (; p < k; p++) {   /* (tiles wider than a register; NaN != 0 is true) */
            int any = 0;
            for (int r = 0; r < 6; r++) {
                const CFFNN_SG_T value = r < rows ? a_tile[r + p * a_cs] : 0;
                packed[count * 6 + r] = value;
                any |= value != 0;
            }
            listed[count] = (uint16_t)p;
            count += any;
        }
        if (tile == 0 && (double)count > CFFNN_SPARSE_FIRST_MAX_ACTIVE * (double)k)
            return -1;
        count_out[tile] = (int32_t)count;
        total += count;
        i += rows;
    }
    return total;
}

/* C = A B (+ C) for A's columns contiguous (a weight gradient Z^T delta), skipping, for
 * each tile of rows of A, the p at which all its rows of A are 0: the samples of the
 * minibatch in which the tile's inputs are all 0 add nothing to those rows of dW (a
 * third of them, for Fashion-MNIST's pixels in tiles of 6). Where too few are 0 (more
 * than CFFNN_SPARSE_MAX_ACTIVE of the tiles' p active), the plain loop runs. A skipped
 * p would have added A(r, p) B[p, :] = +-0 to each element, which leaves a sum as it is
 * (a sum of 0 starts at +0 and stays +0), so the results are those of the plain loop,
 * bit for bit, unless B holds infinities or NaN, whose products with 0 the skipped p do
 * not add (as rowkernel.h skips the rows of W of inputs that are 0; an epoch's check of
 * the bias gradient, the column sums of delta, still sees them). */
__attribute__((target("avx2,fma"), noinline))
static void CFFNN_SG(cffnn_small_gemm_sparse)(
        ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const CFFNN_SG_T *a, ptrdiff_t a_rs,
        ptrdiff_t a_cs, const CFFNN_SG_T *b, ptrdiff_t ldb, CFFNN_SG_T *c, ptrdiff_t ldc,
        int accumulate, const CFFNN_SG_T *bias, int relu, int pack) {
    ptrdiff_t tiles = cffnn_tile_count(m);
    /* this thread's scratch: packed A (6 values a listed p, 8 more), then each tile's
     * count, then the lists; none for k past one block or past CFFNN_SPARSE_MAX_SCRATCH */
    size_t bytes = (size_t)(tiles * k * 6 + 8) * sizeof(CFFNN_SG_T) + (size_t)tiles * 4
                   + (size_t)(tiles * k) * 2;
    CFFNN_SG_T *a_packed = k <= CFFNN_K_BLOCK && bytes <= CFFNN_SPARSE_MAX_SCRATCH
                           ? (CFFNN_SG_T *)cffnn_thread_scratch(bytes) : NULL;
    int32_t *counts = NULL;
    uint16_t *active_p = NULL;
    ptrdiff_t count = -1;
    if (a_packed != NULL) {
        counts = (int32_t *)(a_packed + tiles * k * 6 + 8);
        active_p = (uint16_t *)(counts + tiles);
        count = CFFNN_SG(cffnn_list_active_p)(m, k, a, a_cs, active_p, a_packed, counts);
    }
    cffnn_active_p active = {active_p, counts, a_packed, k};
    if (count < 0 || (double)count > CFFNN_SPARSE_MAX_ACTIVE * (double)tiles * (double)k) {
        CFFNN_SG(cffnn_small_gemm_dense)(m, n, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate,
                                         bias, relu, pack);
        return;
    }
    __atomic_fetch_add(&cffnn_sparse_products, 1, __ATOMIC_RELAXED);
    if (pack)
        CFFNN_SG(cffnn_small_gemm_packed)(m, n, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate,
                                          bias, relu, &active);
    else
        CFFNN_SG(cffnn_small_gemm_panels)(m, n, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate,
                                          NULL, bias, relu, &active);
}

/* C = A B (accumulate = 0) or C += A B (accumulate = 1); see the top of this file.
 * Column panels of CFFNN_SG_PANEL, then k in blocks of CFFNN_K_BLOCK (the panel's slice
 * of B, 16 KB,
 * stays in L1 while every tile of rows passes over it; packed first where its rows are
 * far apart), then tiles of rows. Each element is one FMA chain in order p = 0..k-1,
 * continued from block to block through C, so neither the blocking, the packing nor the
 * tiles change a result. */
__attribute__((target("avx2,fma"), always_inline))
static inline void CFFNN_SG(cffnn_small_gemm_epilogue)(
        ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const CFFNN_SG_T *a, ptrdiff_t a_rs,
        ptrdiff_t a_cs, const CFFNN_SG_T *b, ptrdiff_t ldb, CFFNN_SG_T *c, ptrdiff_t ldc,
        int accumulate, const CFFNN_SG_T *bias, int relu) {
    int pack = m >= CFFNN_PACK_MIN_ROWS && n >= CFFNN_SG_PANEL
               && ldb * (ptrdiff_t)sizeof(CFFNN_SG_T) >= CFFNN_PACK_MIN_ROW_BYTES;
    if (CFFNN_SG_LANES == 8 && n >= CFFNN_SPARSE_MIN_COLUMNS && a_rs == 1
            && cffnn_sparse_enabled && (double)m * (double)n * (double)k >= CFFNN_SPARSE_MIN_MACS)
        CFFNN_SG(cffnn_small_gemm_sparse)(m, n, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate,
                                          bias, relu, pack);
    else
        CFFNN_SG(cffnn_small_gemm_dense)(m, n, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate,
                                         bias, relu, pack);
}

__attribute__((target("avx2,fma")))
static void CFFNN_SG(cffnn_small_gemm)(
        ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const CFFNN_SG_T *a, ptrdiff_t a_rs,
        ptrdiff_t a_cs, const CFFNN_SG_T *b, ptrdiff_t ldb, CFFNN_SG_T *c, ptrdiff_t ldc,
        int accumulate) {
    CFFNN_SG(cffnn_small_gemm_epilogue)(m, n, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate,
                                        NULL, 0);
}

/* The forward product of a layer, C = A B + b (A row-major, m x k, lda; B = W, k x n,
 * ldb; C m x n, ldc), then max(C, 0) with relu: bias_activation's bias and ReLU done in
 * the registers that hold C, instead of two more passes over it (the same arithmetic:
 * the bias is added to the finished sum, so the same bits). Rows with many zeros skip
 * them where CFFNN_SG_SPARSE_ROWS can (the same bits again). */
__attribute__((target("avx2,fma")))
static void CFFNN_SG(cffnn_small_gemm_bias)(
        ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const CFFNN_SG_T *a, ptrdiff_t lda,
        const CFFNN_SG_T *b, ptrdiff_t ldb, CFFNN_SG_T *c, ptrdiff_t ldc,
        const CFFNN_SG_T *bias, int relu) {
    if (CFFNN_SG_SPARSE_ROWS(m, n, k, a, lda, b, ldb, c, ldc, bias, relu))
        return;
    CFFNN_SG(cffnn_small_gemm_epilogue)(m, n, k, a, lda, 1, b, ldb, c, ldc, 0, bias, relu);
}

#undef CFFNN_SG_SUFFIX
#undef CFFNN_SG_T
#undef CFFNN_SG_V
#undef CFFNN_SG_LANES
#undef CFFNN_SG_VS
#undef CFFNN_SG_BROADCAST
#undef CFFNN_SG_LANES_BELOW
#undef CFFNN_SG_PANEL
#undef CFFNN_SG_SPARSE_ROWS
