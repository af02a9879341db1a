/*
 * cffnn/smallgemm.h: C = A B (or C += A B) for the small GEMMs of small networks, float32
 * and float64, and in float32 also the forward products of a few rows and the weight
 * gradients of a minibatch of large ones, without BLAS.
 *
 * Why: a BLAS call packs both operands into its own layout and decides on threads before
 * it multiplies. For the 64x64 layers of a small network at batch 64 that overhead is
 * most of the call: in the regression task (8-64-64-1, batch 64) sgemm's packing
 * routines took 24% of the epoch and its kernel 36%. Operands this small already sit in
 * L1/L2, so this kernel reads them where they are. In a Fashion-MNIST epoch
 * (784-256-128-10, blocks of 64 rows) packing W for each block's forward product took 13%
 * of the epoch: that product comes here too (cffnn_medium_gemm_pays), and so do the
 * weight gradients of a minibatch (cffnn_gradient_gemm_pays), for which BLAS packed both
 * operands per task and zeroed C first. In float64 the small products gain the same way
 * (dgemm's packing was 18% of a 64-64-10 epoch at batch 200; digits epochs in float64
 * ran 1.35x faster with this kernel), but those larger products did not (0.84-0.88x of
 * dgemm in a float64 Fashion-MNIST epoch), so there they stay with BLAS.
 *
 * The kernel (smallgemm_kernel.h, once per type): tiles of 6 (or 4) rows x 16 float32
 * (8 float64) columns of C, held in 12 (or 8) AVX registers, one FMA chain per element in
 * order p = 0..k-1, over blocks of k that keep B's panel in L1 (copied into contiguous
 * scratch first where B's rows are far apart and many tiles read it). Columns past n are
 * masked, rows past m repeat row 0 and are not stored.
 * A layer's forward product also adds the bias, and applies a ReLU, to C while it is
 * still in registers (cffnn_small_gemm_bias_f / _d), instead of two passes over C; in
 * float32, rows with many zeros (images) go in pairs that skip them (sparserows.h). A
 * weight gradient skips the samples in which a tile's inputs are all 0, where enough are
 * (cffnn_small_gemm_sparse: a third of Fashion-MNIST's, in tiles of 6 pixels).
 *
 * Operands: A(r, p) = a[r * a_rs + p * a_cs] for r < m, p < k (so that A may be a row-major
 * matrix, a_rs = lda, a_cs = 1, or the transpose of one, a_rs = 1, a_cs = lda); B row-major
 * (k x n) with row stride ldb; C row-major (m x n) with row stride ldc.
 *
 * AVX2 + FMA only (x86-64 with GCC or clang): callers use BLAS where
 * cffnn_small_gemm_available() is false, and for the products where BLAS is faster
 * (cffnn_small_gemm_fits, cffnn_medium_gemm_pays, cffnn_gradient_gemm_pays).
 */
#ifndef CFFNN_SMALLGEMM_H
#define CFFNN_SMALLGEMM_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cffnn/cpu.h"

/* B (k x n values) must stay in L1/L2 while every tile of rows of A streams over it, and a
 * bigger product amortises BLAS's packing well enough. Below 8 columns most lanes would
 * be masked off (BLAS's gemv path is faster there). */
#define CFFNN_SMALL_GEMM_MAX_B 8192          /* values: 32 KB of floats, 64 KB of doubles */
#define CFFNN_SMALL_GEMM_MAX_MACS 1048576    /* m * n * k */

static inline int cffnn_small_gemm_fits(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k) {
    return n >= 8 && k * n <= CFFNN_SMALL_GEMM_MAX_B
           && (double)m * (double)n * (double)k <= CFFNN_SMALL_GEMM_MAX_MACS;
}

/* Larger products A B (A not transposed) of at most 64 rows still skip BLAS: the
 * forward pass of a large network's block of rows, for which BLAS packs all of W again
 * (for every block of every minibatch). This kernel reads W where it is instead, each
 * k block of a 16-column panel once from L2/L3 and then from L1 for every tile of rows.
 * Measured against OpenBLAS, one thread, hot caches: 64 x 784 by 784 x 256 1.0-1.13x,
 * 64 x 256 by 256 x 128 1.15-1.2x, but 128 rows 0.87-0.97x and 512 rows 0.8x; within a
 * Fashion-MNIST epoch (784-256-128-10, batch 128, where W is cold after each update)
 * 1.07-1.08x on 1 and 2 threads. The weight gradient's A^T B stays with BLAS: 0.95x. */
#define CFFNN_MEDIUM_GEMM_MAX_ROWS 64

static inline int cffnn_medium_gemm_pays(ptrdiff_t m, ptrdiff_t n) {
    return n >= 16 && m <= CFFNN_MEDIUM_GEMM_MAX_ROWS;
}

/* Weight gradients dW = Z^T delta of a minibatch (A transposed, k = the minibatch's rows)
 * skip BLAS too, with B's panels packed (below): BLAS packs both operands for every
 * task of phase 2 (include/cffnn/team.h) and first zeroes C. Measured against OpenBLAS,
 * one thread, hot caches, a Fashion-MNIST task (160 x 256 from 128 rows): 1.10-1.17x,
 * 256 x 128 from 128 rows 1.21-1.23x, 64 rows 1.19-1.25x, 256 rows 1.09-1.11x, but 1024
 * rows 1.02-1.03x: longer sums stay with BLAS. */
#define CFFNN_GRADIENT_GEMM_MAX_K 256

static inline int cffnn_gradient_gemm_pays(ptrdiff_t n, ptrdiff_t k) {
    return n >= 16 && k <= CFFNN_GRADIENT_GEMM_MAX_K;
}

/* A k block of a 16-column panel of B is copied into 16 KB of contiguous scratch when
 * enough tiles of rows reuse it and B's rows are far apart: rows 1 KB apart (a
 * 256-column W or delta) fall into 4 of L1's 64 sets, so an unpacked panel cannot stay in
 * L1 and every tile reads it again from L2. Measured on those gradient products:
 * unpacked 1.01-1.08x of OpenBLAS, packed 1.10-1.25x; for the 11 tiles of a 64-row
 * forward product packing gained 0-6%, and for small networks' products (rows 256 bytes
 * apart or less) it lost 5-15%, so those stay unpacked. */
#define CFFNN_PACK_MIN_ROWS 96     /* rows of C (16 tiles) */
#define CFFNN_PACK_MIN_ROW_BYTES 512   /* B's row stride: 128 floats, 64 doubles */

/* Zeros of a float32 weight gradient's A = Z^T (cffnn_small_gemm_sparse): skipped in
 * products of at least CFFNN_SPARSE_MIN_COLUMNS columns and CFFNN_SPARSE_MIN_MACS
 * multiply-adds (below, the scan and the call cost more than they save: the regression
 * task's dW of 64 x 64 from 64 rows, whose tanh inputs are never 0, ran 0.97x; so
 * float64, whose products here are the small ones, never skips), when at most
 * CFFNN_SPARSE_MAX_ACTIVE of the tiles' p are active, with the tiles' lists and packed
 * values in a scratch buffer of the thread (cffnn_thread_scratch) of at most
 * CFFNN_SPARSE_MAX_SCRATCH bytes. Measured (medians of paired runs, one thread, skipping
 * on / off): dW of 784 x 256 from a Fashion-MNIST minibatch of 128 rows (68% of its p
 * active), in tasks of 160 rows, 1.17-1.23x; with every p listed (an A without zeros)
 * 0.94x, hence the bound; the scan stops at a first tile with next to no zeros
 * (CFFNN_SPARSE_FIRST_MAX_ACTIVE: a task that starts mid-image may have one with few).
 * Reading the tiles' A values where they lie instead of packed cost 12-17% more a listed
 * p. Forward products of Fashion-MNIST images lost this way (0.91-0.93x, B packed too):
 * their tiles of 6 images have all pixels 0 at only 16.5% of p. (A later try listed each
 * tile's p per k block and read A where it lies, B packed: 64 x 784 by 784 x 256 ran
 * 1.25x faster alone with W hot, bit for bit, but within an epoch the forward product's
 * share stayed 33-34%.) Pairs of images are both 0 at 34% of p: forward products skip
 * zeros that way (sparserows.h), under the same switch and counter. */
#define CFFNN_SPARSE_MIN_COLUMNS 64
#define CFFNN_SPARSE_MIN_MACS 1048576
#define CFFNN_SPARSE_MAX_SCRATCH (1 << 20)
#define CFFNN_SPARSE_MAX_ACTIVE 0.92
#define CFFNN_SPARSE_FIRST_MAX_ACTIVE 0.98

/* 1 (the default): weight gradients skip the zeros of A where that pays; 0: never (set
 * through cffnn._kernels.set_sparse_gemm, for benchmarks/sparse_gemm.py, which measures
 * what skipping saves, and for tests that compare the two). */
static int cffnn_sparse_enabled = 1;

/* How many products have skipped zeros so far (for tests: cffnn._kernels.sparse_products) */
static unsigned long long cffnn_sparse_products = 0;

#define CFFNN_K_BLOCK 256      /* values of p per pass over a panel of B (16 KB) */
#define CFFNN_PREFETCH_ROWS 16 /* how far ahead in B (rows of it) a tile asks for data */

/* 1 (the default): small products take this kernel where the CPU allows; 0: BLAS for
 * every product. Set through cffnn._kernels.set_small_gemm, for benchmarks/small_gemm.py,
 * which measures the one against the other. */
static int cffnn_small_gemm_enabled = 1;

#ifdef CFFNN_X86_AVX2
#include <immintrin.h>

static inline int cffnn_small_gemm_available(void) {
    return cffnn_small_gemm_enabled && cffnn_has_avx2_fma();
}

/* One row of a tile at one p: C[r, :] += A[r, p] B[p, :], as two registers of columns;
 * A(r, p) at a_row + a_at * a_cs (a_at: p, or p's place in a tile's packed values) */
#define CFFNN_TILE_ROW(a_row, c_lo, c_hi)                                                 \
    do {                                                                                  \
        const CFFNN_SG_V x = CFFNN_SG_BROADCAST((a_row) + a_at * a_cs);                   \
        c_lo = CFFNN_SG_OP(fmadd)(x, b_lo, c_lo);                                         \
        c_hi = CFFNN_SG_OP(fmadd)(x, b_hi, c_hi);                                         \
    } while (0)

/* Rows of the next tile when `left` rows of C remain: 6 (12 accumulators: fewer loads of
 * B per FMA), but 4 where tiles of 6 would leave rows unused: 7 = 4 + 3, 8 = 4 + 4. */
static inline int cffnn_tile_height(ptrdiff_t left) {
    return left <= 4 || left == 7 || left == 8 ? 4 : 6;
}

/* The lists of active p of cffnn_small_gemm_sparse (cffnn_list_active_p makes them) */
typedef struct {
    const uint16_t *p;          /* tile t's active p, ascending, from p[t * k] ... */
    const int32_t *count;       /* ... count[t] of them */
    const void *a_packed;       /* A at tile t's q-th active p, row r: [(t * k + q) * 6 + r] */
    ptrdiff_t k;
} cffnn_active_p;

/* A scratch buffer of the calling thread, at least `bytes` long (NULL if that cannot be
 * had), kept for the thread's next calls and freed when it ends: the first sparse product
 * of a thread allocates it, a larger one grows it, and no minibatch allocates. Where
 * there are no POSIX threads there is none, and products do not skip zeros. */
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
static pthread_key_t cffnn_scratch_key;
static pthread_once_t cffnn_scratch_once = PTHREAD_ONCE_INIT;
static int cffnn_scratch_key_made = 0;

static inline void cffnn_make_scratch_key(void) {
    cffnn_scratch_key_made = pthread_key_create(&cffnn_scratch_key, free) == 0;
}

static inline void *cffnn_thread_scratch(size_t bytes) {
    enum { HEADER = 64 };        /* the size held, and the data 64-byte aligned after it */
    pthread_once(&cffnn_scratch_once, cffnn_make_scratch_key);
    if (!cffnn_scratch_key_made)
        return NULL;
    size_t *held = (size_t *)pthread_getspecific(cffnn_scratch_key);
    if (held == NULL || held[0] < bytes) {
        void *grown = NULL;     /* (posix_memalign: also where aligned_alloc is not, macOS) */
        if (posix_memalign(&grown, 64, HEADER + bytes) != 0
                || pthread_setspecific(cffnn_scratch_key, grown) != 0) {
            free(grown);
            return NULL;     /* (the smaller buffer stays the thread's) */
        }
        free(held);
        held = (size_t *)grown;
        held[0] = bytes;
    }
    return (char *)held + HEADER;
}
#else
static inline void *cffnn_thread_scratch(size_t bytes) { (void)bytes; return NULL; }
#endif

/* How many tiles cffnn_tile_height makes of m rows */
static inline ptrdiff_t cffnn_tile_count(ptrdiff_t m) {
    ptrdiff_t tiles = 0;
    for (ptrdiff_t i = 0; i < m; tiles++) {
        int height = cffnn_tile_height(m - i);
        i += m - i < height ? m - i : height;
    }
    return tiles;
}

/* The kernel, for float (8 lanes a register, panels of 16 columns) and double (4 lanes,
 * panels of 8): cffnn_small_gemm_f / _d, cffnn_small_gemm_bias_f / _d and their parts. */
#define CFFNN_SG_CAT2(name, suffix) name##_##suffix
#define CFFNN_SG_CAT(name, suffix) CFFNN_SG_CAT2(name, suffix)
#define CFFNN_SG(name) CFFNN_SG_CAT(name, CFFNN_SG_SUFFIX)

/* _mm256_<name>_ps or _pd, after CFFNN_SG_VS */
#define CFFNN_SG_PASTE(prefix, name, suffix) prefix##name##suffix
#define CFFNN_SG_EXPAND(prefix, name, suffix) CFFNN_SG_PASTE(prefix, name, suffix)
#define CFFNN_SG_OP(name) CFFNN_SG_EXPAND(_mm256_, name, CFFNN_SG_VS)

/* The forward product of float32 rows with many zeros (sparserows.h): the float kernel's
 * cffnn_small_gemm_bias_f tries it first; the double kernel has no such path. */
#include "cffnn/sparserows.h"

#define CFFNN_SG_SPARSE_ROWS cffnn_sparse_rows_product_f
#define CFFNN_SG_SUFFIX f
#define CFFNN_SG_T float
#define CFFNN_SG_V __m256
#define CFFNN_SG_LANES 8
#define CFFNN_SG_VS _ps
#define CFFNN_SG_BROADCAST _mm256_broadcast_ss
#define CFFNN_SG_LANES_BELOW(count)                                                       \
    _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(count)),                                   \
                       _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#include "cffnn/smallgemm_kernel.h"

#define CFFNN_SG_SPARSE_ROWS(m, n, k, a, lda, b, ldb, c, ldc, bias, relu) 0
#define CFFNN_SG_SUFFIX d
#define CFFNN_SG_T double
#define CFFNN_SG_V __m256d
#define CFFNN_SG_LANES 4
#define CFFNN_SG_VS _pd
#define CFFNN_SG_BROADCAST _mm256_broadcast_sd
#define CFFNN_SG_LANES_BELOW(count)                                                       \
    _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(count)), _mm256_setr_epi64x(0, 1, 2, 3))
#include "cffnn/smallgemm_kernel.h"

/* A forward product C = A W + bias (ReLU) of more than CFFNN_MEDIUM_GEMM_MAX_ROWS rows
 * (a block of a large batch, which the dense tiles leave to BLAS), when its rows have
 * many zeros: in chunks of that many rows, each through cffnn_small_gemm_bias_f, which
 * skips them where the chunk has enough (sparserows.h), else takes the dense tiles.
 * Returns 0, having done nothing, when the first chunk does not skip (then BLAS, the
 * faster without zeros, does it all). A chunk of A stays in L2 while W passes over it. */
__attribute__((target("avx2,fma")))
static int cffnn_sparse_rows_in_chunks_f(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                         const float *a, ptrdiff_t lda, const float *w,
                                         ptrdiff_t ldw, float *c, ptrdiff_t ldc,
                                         const float *bias, int relu) {
    const ptrdiff_t chunk = CFFNN_MEDIUM_GEMM_MAX_ROWS;
    if (m <= chunk
            || !cffnn_sparse_rows_product_f(chunk, n, k, a, lda, w, ldw, c, ldc, bias, relu))
        return 0;
    for (ptrdiff_t i = chunk; i < m; i += chunk)
        cffnn_small_gemm_bias_f(m - i < chunk ? m - i : chunk, n, k, a + i * lda, lda, w,
                                ldw, c + i * ldc, ldc, bias, relu);
    return 1;
}

/* out (k x n, row stride n) = the transpose of b (n x k, row stride ldb): 8 x 8 blocks
 * through registers (unpack, shuffle, permute: the usual AVX transpose), the edges one
 * value at a time. The scalar loop alone took 30% of cffnn_small_gemm_nt_f. */
__attribute__((target("avx2,fma")))
static void cffnn_transpose_f(ptrdiff_t n, ptrdiff_t k, const float *b, ptrdiff_t ldb,
                              float *out) {
    ptrdiff_t n8 = n - n % 8, k8 = k - k % 8;
    for (ptrdiff_t i = 0; i < n8; i += 8)
        for (ptrdiff_t p = 0; p < k8; p += 8) {
            const float *src = b + i * ldb + p;
            __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ldb);
            __m256 r2 = _mm256_loadu_ps(src + 2 * ldb), r3 = _mm256_loadu_ps(src + 3 * ldb);
            __m256 r4 = _mm256_loadu_ps(src + 4 * ldb), r5 = _mm256_loadu_ps(src + 5 * ldb);
            __m256 r6 = _mm256_loadu_ps(src + 6 * ldb), r7 = _mm256_loadu_ps(src + 7 * ldb);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *dst = out + p * n + i;
            _mm256_storeu_ps(dst, _mm256_permute2f128_ps(s0, s4, 0x20));
            _mm256_storeu_ps(dst + n, _mm256_permute2f128_ps(s1, s5, 0x20));
            _mm256_storeu_ps(dst + 2 * n, _mm256_permute2f128_ps(s2, s6, 0x20));
            _mm256_storeu_ps(dst + 3 * n, _mm256_permute2f128_ps(s3, s7, 0x20));
            _mm256_storeu_ps(dst + 4 * n, _mm256_permute2f128_ps(s0, s4, 0x31));
            _mm256_storeu_ps(dst + 5 * n, _mm256_permute2f128_ps(s1, s5, 0x31));
            _mm256_storeu_ps(dst + 6 * n, _mm256_permute2f128_ps(s2, s6, 0x31));
            _mm256_storeu_ps(dst + 7 * n, _mm256_permute2f128_ps(s3, s7, 0x31));
        }
    for (ptrdiff_t i = 0; i < n; i++)           /* the edges: columns p >= k8 ... */
        for (ptrdiff_t p = k8; p < k; p++)
            out[p * n + i] = b[i * ldb + p];
    for (ptrdiff_t i = n8; i < n; i++)          /* ... and rows i >= n8 */
        for (ptrdiff_t p = 0; p < k8; p++)
            out[p * n + i] = b[i * ldb + p];
}

/* The same for doubles, one value at a time (4 x 4 blocks through registers would be the
 * float loop's twin; small double networks have not needed it yet). */
static void cffnn_transpose_d(ptrdiff_t n, ptrdiff_t k, const double *b, ptrdiff_t ldb,
                              double *out) {
    for (ptrdiff_t i = 0; i < n; i++)
        for (ptrdiff_t p = 0; p < k; p++)
            out[p * n + i] = b[i * ldb + p];
}

/* C = A B^T (accumulate = 0) or C += A B^T, A row-major (m x k, lda), B row-major
 * (n x k, ldb): B^T is first copied into a heap buffer (n * k <= CFFNN_SMALL_GEMM_MAX_B
 * values; not the stack, which a caller's thread may have small), so that the kernel
 * reads rows of it. Returns 0, having done nothing, if that buffer cannot be had. */
#define CFFNN_DEFINE_SMALL_GEMM_NT(SUFFIX, T)                                            \
__attribute__((target("avx2,fma")))                                                     \
static int cffnn_small_gemm_nt_##SUFFIX(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,          \
                                        const T *a, ptrdiff_t lda, const T *b,          \
                                        ptrdiff_t ldb, T *c, ptrdiff_t ldc,             \
                                        int accumulate) {                               \
    T *b_transposed = (T *)malloc((size_t)(n * k) * sizeof(T));                          \
    if (b_transposed == NULL)                                                           \
        return 0;                                                                       \
    cffnn_transpose_##SUFFIX(n, k, b, ldb, b_transposed);                               \
    cffnn_small_gemm_##SUFFIX(m, n, k, a, lda, 1, b_transposed, n, c, ldc, accumulate); \
    free(b_transposed);                                                                 \
    return 1;                                                                           \
}
CFFNN_DEFINE_SMALL_GEMM_NT(f, float)
CFFNN_DEFINE_SMALL_GEMM_NT(d, double)

/* c[i] = A[i, :] . b (accumulate = 0) or c[i] += A[i, :] . b for i < m, A row-major
 * (m x k, lda), b and c contiguous: the forward product of a one-output layer, which the
 * tile kernel would compute in one masked lane of 16. Four rows at a time share each
 * load of b; each dot product is 8 lanes of partial sums over p = l, l + 8, ..., added
 * pairwise, then the last k % 8 products in order (the same order whatever m). */
__attribute__((target("avx2,fma")))
static void cffnn_small_gemv_f(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda,
                               const float *b, float *c, int accumulate) {
    ptrdiff_t k8 = k - k % 8;
    for (ptrdiff_t i = 0; i < m; i += 4) {
        int rows = m - i < 4 ? (int)(m - i) : 4;
        const float *r0 = a + i * lda;
        const float *r1 = rows > 1 ? r0 + lda : r0, *r2 = rows > 2 ? r0 + 2 * lda : r0;
        const float *r3 = rows > 3 ? r0 + 3 * lda : r0;
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (ptrdiff_t p = 0; p < k8; p += 8) {
            __m256 bp = _mm256_loadu_ps(b + p);
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + p), bp, s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1 + p), bp, s1);
            s2 = _mm256_fmadd_ps(_mm256_loadu_ps(r2 + p), bp, s2);
            s3 = _mm256_fmadd_ps(_mm256_loadu_ps(r3 + p), bp, s3);
        }
        /* horizontal sums: lanes (l, l + 4), then (l, l + 2), then (0, 1) */
        __m256 sums[4] = {s0, s1, s2, s3};
        for (int r = 0; r < rows; r++) {
            const float *row = r0 + r * lda;
            __m128 v = _mm_add_ps(_mm256_castps256_ps128(sums[r]),
                                  _mm256_extractf128_ps(sums[r], 1));
            v = _mm_add_ps(v, _mm_movehl_ps(v, v));
            v = _mm_add_ss(v, _mm_shuffle_ps(v, v, 1));
            float dot = _mm_cvtss_f32(v);
            for (ptrdiff_t p = k8; p < k; p++)
                dot = fmaf(row[p], b[p], dot);
            c[i + r] = accumulate ? c[i + r] + dot : dot;
        }
    }
}

#else  /* no AVX2 build: BLAS everywhere */

static inline int cffnn_small_gemm_available(void) { (void)cffnn_small_gemm_enabled; return 0; }
#define CFFNN_DEFINE_SMALL_GEMM_STUBS(SUFFIX, T)                                         \
static inline void cffnn_small_gemm_##SUFFIX(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,     \
                                             const T *a, ptrdiff_t a_rs, ptrdiff_t a_cs, \
                                             const T *b, ptrdiff_t ldb, T *c,           \
                                             ptrdiff_t ldc, int accumulate) {           \
    (void)m; (void)n; (void)k; (void)a; (void)a_rs; (void)a_cs; (void)b; (void)ldb;     \
    (void)c; (void)ldc; (void)accumulate;                                               \
}                                                                                       \
static inline void cffnn_small_gemm_bias_##SUFFIX(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, \
                                                  const T *a, ptrdiff_t lda, const T *b, \
                                                  ptrdiff_t ldb, T *c, ptrdiff_t ldc,   \
                                                  const T *bias, int relu) {            \
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)b; (void)ldb; (void)c;         \
    (void)ldc; (void)bias; (void)relu;                                                  \
}                                                                                       \
static inline int cffnn_small_gemm_nt_##SUFFIX(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,   \
                                               const T *a, ptrdiff_t lda, const T *b,   \
                                               ptrdiff_t ldb, T *c, ptrdiff_t ldc,      \
                                               int accumulate) {                        \
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)b; (void)ldb; (void)c;         \
    (void)ldc; (void)accumulate;                                                        \
    return 0;                                                                           \
}
CFFNN_DEFINE_SMALL_GEMM_STUBS(f, float)
CFFNN_DEFINE_SMALL_GEMM_STUBS(d, double)
static inline void cffnn_small_gemv_f(ptrdiff_t m, ptrdiff_t k, const float *a,
                                      ptrdiff_t lda, const float *b, float *c,
                                      int accumulate) {
    (void)m; (void)k; (void)a; (void)lda; (void)b; (void)c; (void)accumulate;
}
static inline int cffnn_sparse_rows_in_chunks_f(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                                const float *a, ptrdiff_t lda,
                                                const float *w, ptrdiff_t ldw, float *c,
                                                ptrdiff_t ldc, const float *bias, int relu) {
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)w; (void)ldw; (void)c;
    (void)ldc; (void)bias; (void)relu;
    return 0;
}

#endif

#endif /* CFFNN_SMALLGEMM_H */
