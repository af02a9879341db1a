/*
 * cffnn/adam.h: Adam's fused update over a flat buffer (the maths: cffnn/_optimizers.pxd).
 *
 *   m = b1 m + (1 - b1) g;  s = b2 s + (1 - b2) g^2;  out = p - step m / (sqrt(s) + eps)
 *
 * Returns 1 when every new value out[i] is finite: the flag is ORed in the same loop as
 * integer bits (checks.h), which the compiler vectorises with the rest, instead of a
 * second pass over out (in a Fashion-MNIST epoch that pass and the gradient's took 2-4%).
 *
 * A square root and a divide per parameter bound this loop; in SSE2 (a wheel's baseline)
 * they go 4 lanes at a time, so the loop is also compiled for AVX2 + FMA (8 lanes) and
 * picked at run time. out may be p itself. The FMA build rounds b1 m + (1 - b1) g once
 * instead of twice; a given machine always takes the same path.
 *
 * cffnn_adam_streaming_f / _d: the same update, the same bits, but out written with
 * non-temporal (streaming) stores, for fit_epoch's teams on large networks, when the last
 * team epoch gained little over one thread (_kernels.pyx's judge_team). There every
 * thread's forward pass has just read all of p, so out's cache lines sit in both cores'
 * caches, and an ordinary store must first take each line away from the other core.
 * On this project's 2-vCPU host that made a team's update of the 784-256-128-10
 * network cost 2.7x its 1-thread time per parameter, and in the host's "slow exchange"
 * spells far more (a team epoch of 0.57-0.80 s against 0.58 s on one thread). Streaming
 * stores do not wait for the lines: those epochs took 0.47-0.50 s. The next forward
 * pass then reads the weights from memory, not from a cache: 1 thread 9% slower (so
 * one thread never streams), teams in fast spells 0-5% slower (so they stream only
 * when they gain less than 1.5x over one thread). The values are computed
 * by the same expression as the ordinary loop, a block of 256 bytes at a time, then
 * streamed; an SFENCE at the end orders the streamed stores before the caller's barrier.
 * (A large float32 W[0] is now owned by parts instead, _kernels.pyx's owned_parts: no
 * other core has read a thread's part, and its update never streams.)
 */
#ifndef CFFNN_ADAM_H
#define CFFNN_ADAM_H

#include <math.h>
#include <stddef.h>

#include "cffnn/checks.h"
#include "cffnn/cpu.h"

#ifdef CFFNN_X86_AVX2
#include <immintrin.h>
#include <stdint.h>
#endif

/* Parameter i's update, its new value into DEST, its finiteness into bad. */
#define CFFNN_ADAM_ONE(SUFFIX, T, SQRT, i, DEST)                                        \
    {                                                                                   \
        m[i] = beta_1 * m[i] + one_minus_beta_1 * g[i];                                 \
        s[i] = beta_2 * s[i] + one_minus_beta_2 * (g[i] * g[i]);                        \
        const T value = p[i] + (-step * m[i] / (SQRT(s[i]) + eps));                     \
        DEST = value;                                                                   \
        bad |= cffnn_nonfinite_##SUFFIX(value);                                         \
    }

#define CFFNN_ADAM_LOOP(SUFFIX, T, U, SQRT)                                             \
    U bad = 0;                                                                          \
    for (ptrdiff_t i = 0; i < n; i++)                                                   \
        CFFNN_ADAM_ONE(SUFFIX, T, SQRT, i, out[i])                                      \
    return bad == 0;

#define CFFNN_DEFINE_ADAM(SUFFIX, T, U, SQRT)                                           \
static inline int cffnn_adam_##SUFFIX##_base(                                           \
        const T *p, const T *g, T *m, T *s, T *out, ptrdiff_t n, T step, T beta_1,      \
        T one_minus_beta_1, T beta_2, T one_minus_beta_2, T eps) {                      \
    CFFNN_ADAM_LOOP(SUFFIX, T, U, SQRT)                                                 \
}                                                                                       \
CFFNN_DEFINE_ADAM_AVX2(SUFFIX, T, U, SQRT)                                              \
static inline int cffnn_adam_##SUFFIX(                                                  \
        const T *p, const T *g, T *m, T *s, T *out, ptrdiff_t n, T step, T beta_1,      \
        T one_minus_beta_1, T beta_2, T one_minus_beta_2, T eps) {                      \
    CFFNN_ADAM_PICK_AVX2(SUFFIX)                                                        \
    return cffnn_adam_##SUFFIX##_base(p, g, m, s, out, n, step, beta_1,                 \
                                      one_minus_beta_1, beta_2, one_minus_beta_2, eps); \
}

#ifdef CFFNN_X86_AVX2
#define CFFNN_DEFINE_ADAM_AVX2(SUFFIX, T, U, SQRT)                                      \
__attribute__((target("avx2,fma")))                                                     \
static int cffnn_adam_##SUFFIX##_avx2(                                                  \
        const T *p, const T *g, T *m, T *s, T *out, ptrdiff_t n, T step, T beta_1,      \
        T one_minus_beta_1, T beta_2, T one_minus_beta_2, T eps) {                      \
    CFFNN_ADAM_LOOP(SUFFIX, T, U, SQRT)                                                 \
}
#define CFFNN_ADAM_PICK_AVX2(SUFFIX)                                                    \
    if (cffnn_has_avx2_fma())                                                           \
        return cffnn_adam_##SUFFIX##_avx2(p, g, m, s, out, n, step, beta_1,             \
                                          one_minus_beta_1, beta_2, one_minus_beta_2,   \
                                          eps);

/* Ordinary stores up to out's first 32-byte boundary; then blocks of 256 bytes computed
 * into an aligned buffer and streamed (VEC_STREAM of VEC_LOAD, LANES values each); the
 * tail with ordinary stores again. */
#define CFFNN_DEFINE_ADAM_STREAMING_AVX2(SUFFIX, T, U, SQRT, LANES, VEC_LOAD, VEC_STREAM)  \
__attribute__((target("avx2,fma")))                                                     \
static int cffnn_adam_streaming_##SUFFIX##_avx2(                                        \
        const T *p, const T *g, T *m, T *s, T *out, ptrdiff_t n, T step, T beta_1,      \
        T one_minus_beta_1, T beta_2, T one_minus_beta_2, T eps) {                      \
    enum { BLOCK = 256 / sizeof(T) };                                                   \
    T block[BLOCK] __attribute__((aligned(32)));                                        \
    U bad = 0;                                                                          \
    ptrdiff_t i = 0;                                                                    \
    for (; i < n && ((uintptr_t)(out + i) & 31) != 0; i++)                              \
        CFFNN_ADAM_ONE(SUFFIX, T, SQRT, i, out[i])                                      \
    for (; i + BLOCK <= n; i += BLOCK) {                                                \
        for (ptrdiff_t k = 0; k < BLOCK; k++)                                           \
            CFFNN_ADAM_ONE(SUFFIX, T, SQRT, i + k, block[k])                            \
        for (ptrdiff_t k = 0; k < BLOCK; k += LANES)                                    \
            VEC_STREAM(out + i + k, VEC_LOAD(block + k));                               \
    }                                                                                   \
    for (; i < n; i++)                                                                  \
        CFFNN_ADAM_ONE(SUFFIX, T, SQRT, i, out[i])                                      \
    _mm_sfence();                                                                       \
    return bad == 0;                                                                    \
}
#define CFFNN_ADAM_STREAMING_PICK_AVX2(SUFFIX)                                          \
    if (cffnn_has_avx2_fma())                                                           \
        return cffnn_adam_streaming_##SUFFIX##_avx2(p, g, m, s, out, n, step, beta_1,   \
                                                    one_minus_beta_1, beta_2,           \
                                                    one_minus_beta_2, eps);
CFFNN_DEFINE_ADAM_STREAMING_AVX2(f, float, uint32_t, sqrtf, 8, _mm256_load_ps,
                                 _mm256_stream_ps)
CFFNN_DEFINE_ADAM_STREAMING_AVX2(d, double, uint64_t, sqrt, 4, _mm256_load_pd,
                                 _mm256_stream_pd)
#else
#define CFFNN_DEFINE_ADAM_AVX2(SUFFIX, T, U, SQRT)
#define CFFNN_ADAM_PICK_AVX2(SUFFIX)
#define CFFNN_ADAM_STREAMING_PICK_AVX2(SUFFIX)
#endif

CFFNN_DEFINE_ADAM(f, float, uint32_t, sqrtf)
CFFNN_DEFINE_ADAM(d, double, uint64_t, sqrt)

/* The streaming variant where the CPU has AVX2 + FMA, else the ordinary update (whose
 * bits it must match: the AVX2 build is the one it replaces). */
#define CFFNN_DEFINE_ADAM_STREAMING(SUFFIX, T)                                          \
static inline int cffnn_adam_streaming_##SUFFIX(                                        \
        const T *p, const T *g, T *m, T *s, T *out, ptrdiff_t n, T step, T beta_1,      \
        T one_minus_beta_1, T beta_2, T one_minus_beta_2, T eps) {                      \
    CFFNN_ADAM_STREAMING_PICK_AVX2(SUFFIX)                                              \
    return cffnn_adam_##SUFFIX(p, g, m, s, out, n, step, beta_1, one_minus_beta_1,      \
                               beta_2, one_minus_beta_2, eps);                          \
}
CFFNN_DEFINE_ADAM_STREAMING(f, float)
CFFNN_DEFINE_ADAM_STREAMING(d, double)

#endif /* CFFNN_ADAM_H */
