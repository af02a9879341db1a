/*
 * cffnn/activations.h: scalar maths of cffnn's layers, in float and double.
 *
 * Every function is static inline, allocation-free and safe for any finite input:
 * exponentials are only ever taken of non-positive numbers (or, in float64 tanh, of at
 * most 44), so nothing overflows.
 *
 *   activation h(a)                     derivative h'(a), taken from z = h(a) where possible
 *   identity   a                        1
 *   logistic   1 / (1 + exp(-a))        z (1 - z)
 *   tanh       tanh(a)                  1 - z^2
 *   relu       max(a, 0)                [z > 0]
 *   leaky_relu a if a > 0 else 0.01 a   1 if z > 0 else 0.01
 *   elu        a if a > 0 else e^a - 1  1 if z > 0 else z + 1
 *   softplus   log(1 + e^a)             sigmoid(a) = 1 - exp(-z)
 *   gelu       a/2 (1 + tanh(c (a + k a^3)))   from a (gelu is not invertible)
 *   exp        e^a (output layer only: the log link of the Poisson loss)    z
 *
 * The codes below are the ones the Cython kernels and the Python layer use.
 */
#ifndef CFFNN_ACTIVATIONS_H
#define CFFNN_ACTIVATIONS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cffnn/cpu.h"

enum cffnn_activation {
    CFFNN_IDENTITY = 0,
    CFFNN_LOGISTIC = 1,
    CFFNN_TANH = 2,
    CFFNN_RELU = 3,
    CFFNN_LEAKY_RELU = 4,
    CFFNN_ELU = 5,
    CFFNN_SOFTPLUS = 6,
    CFFNN_GELU = 7,
    CFFNN_SOFTMAX = 8,  /* output layer only: a row-wise map, see losses.h */
    CFFNN_EXP = 9       /* output layer only: e^a, may overflow to inf (a diverged fit) */
};

#define CFFNN_LEAKY_SLOPE 0.01
#define CFFNN_GELU_C 0.7978845608028654   /* sqrt(2 / pi) */
#define CFFNN_GELU_K 0.044715

/* ---- log(1 + exp(a)) without overflow: max(a, 0) + log1p(exp(-|a|)) ---- */
static inline double cffnn_log1pexp_d(double a) {
    return (a > 0.0 ? a : 0.0) + log1p(exp(-fabs(a)));
}
static inline float cffnn_log1pexp_f(float a) {
    return (a > 0.0f ? a : 0.0f) + log1pf(expf(-fabsf(a)));
}

/* ---- sigmoid(a), exp taken of -|a| only ---- */
static inline double cffnn_sigmoid_d(double a) {
    if (a >= 0.0) return 1.0 / (1.0 + exp(-a));
    double e = exp(a);
    return e / (1.0 + e);
}
static inline float cffnn_sigmoid_f(float a) {
    if (a >= 0.0f) return 1.0f / (1.0f + expf(-a));
    float e = expf(a);
    return e / (1.0f + e);
}

/* ---- tanh for float32 as a rational function the compiler can vectorise ----
 * libm's tanhf is a scalar call of ~20 ns: for a 64-wide tanh layer at batch 64 it cost
 * more than the layer's GEMM. This is the odd 13/6 rational approximation used by Eigen
 * (its coefficients), clamped where tanh rounds to +-1 in float32 and exact (x) near 0:
 * measured against float64 tanh over [-10, 10] in steps of 1e-5, at most 6.6 ulp,
 * relative error 3.9e-7. */
static inline float cffnn_tanh_fast_f(float a) {
    const float x = a > 7.90531110763549805f ? 7.90531110763549805f
                  : (a < -7.90531110763549805f ? -7.90531110763549805f : a);
    const float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 - 8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    const float ratio = x * p / q;   /* computed unconditionally: a select, not a branch */
    return fabsf(a) < 0.0004f ? a : ratio;
}

/* ---- e^t in float64, vectorisable, for the float64 tanh and sigmoid below ----
 * e^t = up / down for t in [-708, 44], Cephes's exp without branches: t = n ln 2 + r,
 * e^r = (Q + P) / (Q - P) in r^2, up = 2^n (Q + P) (2^n built in the exponent bits),
 * down = Q - P. n is found by adding and taking away 1.5 * 2^52 (exact, and without
 * conversions, which kept the AVX2 loop 3x slower); the low bits of the sum hold n. */
static inline void cffnn_exp_fraction_d(double t, double *up, double *down) {
    const double shifted = 1.4426950408889634073599 * t + 6755399441055744.0;
    const double n = shifted - 6755399441055744.0;
    double r = t - n * 6.93145751953125E-1;
    r = r - n * 1.42860682030941723212E-6;
    const double rr = r * r;
    const double px = r * ((1.26177193074810590878E-4 * rr + 3.02994407707441961300E-2) * rr
                           + 9.99999999999999999910E-1);
    const double qx = ((3.00198505138664455042E-6 * rr + 2.52448340349684104192E-3) * rr
                       + 2.27265548208155028766E-1) * rr + 2.00000000000000000009E0;
    int64_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    bits = (bits - 0x4338000000000000LL + 1023) << 52;       /* 2^n (n + 1023 > 0) */
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    *up = scale * (qx + px);
    *down = qx - px;
}

/* ---- tanh for float64, vectorisable ----
 * libm's tanh is a scalar call of ~20-30 ns: it was 60% of a float64 epoch of the
 * regression task (8-64-64-1, tanh), which took 8x as long as the float32 one. This is
 * Cephes's tanh written without branches: for |a| < 0.625 its rational form
 * z (Q(s) + s P(s)) / Q(s), s = a^2; above, (e - 1) / (e + 1) with e = e^{2|a|} from
 * Cephes's exp (cffnn_exp_fraction_d, above); both as num / den, so one division a
 * value; the sign of a copied onto the result (tanh(-0) = -0, NaN stays NaN, |a| >= 22
 * gives +-1). Measured against libm's tanh at 4,000,001 points of [-25, 25]: at most
 * 3 ulp (relative error 4.6e-16); 2.1-2.3 ns a value in the AVX2 loop below, 6.6 ns in
 * SSE2, libm 27.6-28.2 ns. */
static inline double cffnn_tanh_fast_d(double a) {
    const double z = fabs(a);
    double up, down;                                  /* e^{2|a|} = up / down */
    cffnn_exp_fraction_d(2.0 * (z < 22.0 ? z : 22.0), &up, &down);
    const double s = z * z;
    const double p = (-9.64399179425052238628E-1 * s - 9.92877231001918586564E1) * s
                     - 1.61468768441708447952E3;
    const double q = ((s + 1.12811678491632931402E2) * s + 2.23548839060100448583E3) * s
                     + 4.84406305325125486048E3;
    const int large = z >= 0.625;
    const double num = large ? up - down : z * (q + s * p);
    const double den = large ? up + down : q;
    return copysign(num / den, a);
}

/* ---- sigmoid for float64 layers, vectorisable: with e = e^-|a| = up / down from the
 * exp above, 1 / (1 + e) = down / (down + up) for a >= 0 and e / (1 + e) = up / (down +
 * up) below: one division. Where the exp stops (|a| > 708, e < 3.3e-308) it is 1 or 0
 * exactly; NaN stays NaN. ---- */
static inline double cffnn_sigmoid_fast_d(double a) {
    const double minus_abs = -fabs(a);
    double up, down;
    cffnn_exp_fraction_d(minus_abs > -708.0 ? minus_abs : -708.0, &up, &down);
    const double sigmoid = minus_abs < -708.0 ? (a >= 0.0 ? 1.0 : 0.0)
                         : (a >= 0.0 ? down : up) / (down + up);
    return a != a ? a : sigmoid;
}

/* ---- x[i] = FN(x[i]) over an array of T, vectorised ----
 * CFFNN_DEFINE_ARRAY_MAP(NAME, FN, T) defines NAME(x, n) for a branch-free scalar FN. The
 * wheel's baseline is SSE2 (4 or 2 lanes); where the compiler can, the loop is also built
 * for AVX2 + FMA (8 or 4 lanes) and picked at run time (cpu.h). The FMA build may round
 * FN's polynomial differently in the last bit; a given machine always takes the same
 * path. */
#ifdef CFFNN_X86_AVX2
#define CFFNN_ARRAY_MAP_AVX2(NAME, FN, T)                                                \
__attribute__((target("avx2,fma")))                                                     \
static void NAME##_avx2(T *x, ptrdiff_t n) {                                            \
    for (ptrdiff_t i = 0; i < n; i++) x[i] = FN(x[i]);                                  \
}
#define CFFNN_ARRAY_MAP_PICK(NAME)                                                       \
    if (cffnn_has_avx2_fma()) {                                                         \
        NAME##_avx2(x, n);                                                              \
        return;                                                                         \
    }
#else
#define CFFNN_ARRAY_MAP_AVX2(NAME, FN, T)
#define CFFNN_ARRAY_MAP_PICK(NAME)
#endif
#define CFFNN_DEFINE_ARRAY_MAP(NAME, FN, T)                                              \
static inline void NAME##_base(T *x, ptrdiff_t n) {                                     \
    for (ptrdiff_t i = 0; i < n; i++) x[i] = FN(x[i]);                                  \
}                                                                                       \
CFFNN_ARRAY_MAP_AVX2(NAME, FN, T)                                                       \
static inline void NAME(T *x, ptrdiff_t n) {                                            \
    CFFNN_ARRAY_MAP_PICK(NAME)                                                          \
    NAME##_base(x, n);                                                                  \
}

/* ---- delta[i] *= h'(a[i]), h' taken from z = h(a), for the common activations ----
 * Backpropagation's elementwise step (_layers.pxd's multiply_derivative). Also built for
 * AVX2 (8 or 4 lanes instead of SSE2's 4 or 2) and picked at run time, but without FMA:
 * every product and difference is rounded as in the baseline loop, so both give the
 * same bits. */
#ifdef CFFNN_X86_AVX2
#define CFFNN_DELTA_MAP_AVX2(NAME, T, UPDATE)                                            \
__attribute__((target("avx2")))                                                         \
static void NAME##_avx2(T *delta, const T *z, ptrdiff_t n) {                            \
    for (ptrdiff_t i = 0; i < n; i++) UPDATE;                                           \
}
#define CFFNN_DELTA_MAP_PICK(NAME)                                                       \
    if (cffnn_has_avx2_fma()) {                                                         \
        NAME##_avx2(delta, z, n);                                                       \
        return;                                                                         \
    }
#else
#define CFFNN_DELTA_MAP_AVX2(NAME, T, UPDATE)
#define CFFNN_DELTA_MAP_PICK(NAME)
#endif
#define CFFNN_DEFINE_DELTA_MAP(NAME, T, UPDATE)                                          \
static inline void NAME##_base(T *delta, const T *z, ptrdiff_t n) {                     \
    for (ptrdiff_t i = 0; i < n; i++) UPDATE;                                           \
}                                                                                       \
CFFNN_DELTA_MAP_AVX2(NAME, T, UPDATE)                                                   \
static inline void NAME(T *delta, const T *z, ptrdiff_t n) {                            \
    CFFNN_DELTA_MAP_PICK(NAME)                                                          \
    NAME##_base(delta, z, n);                                                           \
}

/* relu: h' = 1 where z > 0, else 0 */
CFFNN_DEFINE_DELTA_MAP(cffnn_relu_delta_f, float, delta[i] = z[i] > 0 ? delta[i] : 0.0f)
CFFNN_DEFINE_DELTA_MAP(cffnn_relu_delta_d, double, delta[i] = z[i] > 0 ? delta[i] : 0.0)
/* tanh: h' = 1 - z^2 */
CFFNN_DEFINE_DELTA_MAP(cffnn_tanh_delta_f, float, delta[i] *= 1.0f - z[i] * z[i])
CFFNN_DEFINE_DELTA_MAP(cffnn_tanh_delta_d, double, delta[i] *= 1.0 - z[i] * z[i])
/* logistic: h' = z (1 - z) */
CFFNN_DEFINE_DELTA_MAP(cffnn_logistic_delta_f, float, delta[i] *= z[i] * (1.0f - z[i]))
CFFNN_DEFINE_DELTA_MAP(cffnn_logistic_delta_d, double, delta[i] *= z[i] * (1.0 - z[i]))

/* z[i] = tanh(z[i]): the rational forms above divide, 4 (2) lanes per division in SSE2,
 * 8 (4) in AVX2 (float32, measured: 2x on a tanh-bound forward pass). */
CFFNN_DEFINE_ARRAY_MAP(cffnn_tanh_array_f, cffnn_tanh_fast_f, float)
CFFNN_DEFINE_ARRAY_MAP(cffnn_tanh_array_d, cffnn_tanh_fast_d, double)
CFFNN_DEFINE_ARRAY_MAP(cffnn_sigmoid_array_d, cffnn_sigmoid_fast_d, double)

/* ---- gelu, tanh form, and its derivative from a ----
 * With cffnn's own tanh (cffnn_tanh_fast_*, above; libm's tanh is a call a value), and
 * without branches, so that a loop over them vectorises. */
static inline double cffnn_gelu_d(double a) {
    return 0.5 * a * (1.0 + cffnn_tanh_fast_d(CFFNN_GELU_C * (a + CFFNN_GELU_K * a * a * a)));
}
static inline float cffnn_gelu_f(float a) {
    return 0.5f * a * (1.0f + cffnn_tanh_fast_f((float)CFFNN_GELU_C
                                                * (a + (float)CFFNN_GELU_K * a * a * a)));
}
/* h'(a) = (1 + t)/2 + a/2 (1 - t^2) c (1 + 3 k a^2),  t = tanh(c (a + k a^3)).
 * Where t saturates, 1 - t^2 is exactly 0 and the second term is 0 (a^2 may be inf). */
static inline double cffnn_gelu_grad_d(double a) {
    double t = cffnn_tanh_fast_d(CFFNN_GELU_C * (a + CFFNN_GELU_K * a * a * a));
    double sech2 = 1.0 - t * t;
    double tail = sech2 == 0.0 ? 0.0
        : 0.5 * a * sech2 * CFFNN_GELU_C * (1.0 + 3.0 * CFFNN_GELU_K * a * a);
    return 0.5 * (1.0 + t) + tail;
}
static inline float cffnn_gelu_grad_f(float a) {
    float t = cffnn_tanh_fast_f((float)CFFNN_GELU_C * (a + (float)CFFNN_GELU_K * a * a * a));
    float sech2 = 1.0f - t * t;
    float tail = sech2 == 0.0f ? 0.0f
        : 0.5f * a * sech2 * (float)CFFNN_GELU_C * (1.0f + 3.0f * (float)CFFNN_GELU_K * a * a);
    return 0.5f * (1.0f + t) + tail;
}


/* ---- e^x for x <= 0 (softmax's logits minus their row maximum), vectorisable ----
 * libm's expf is a call per value, which no loop vectorises. Here x = n ln2 + r with
 * |r| <= ln2/2 (ln2 split in two, Cody-Waite), e^r by Cephes' degree-6 polynomial (about
 * 1 ulp), and 2^n written into the exponent bits. Below -87 (where e^x is no longer a
 * normal float) the result is 0. n comes from a truncating conversion, which rounds
 * correctly because x <= 0, so SSE2 needs no floor instruction. */
static inline float cffnn_exp_nonpositive_f(float x) {
    const float clamped = x < -87.0f ? -87.0f : x;
    const float n = (float)(int32_t)(clamped * 1.44269504088896341f - 0.5f);
    float r = clamped - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x < -87.0f ? 0.0f : p * scale;
}
/* ---- softplus for float32 layers, and its derivative from z, vectorisable ----
 * libm's log1pf and expm1f are calls a value: a softplus network's epoch took 10x a relu
 * one's. log(1 + e^a) = max(a, 0) + log1p(e), e = e^-|a| from the exp above, with
 * log1p(e) = 2 atanh(s), s = e / (2 + e) in [0, 1/3], as its odd series to s^15 (no
 * rounding of 1 + e, so tiny e keep their digits). h'(a) = sigmoid(a) = 1 - e^-z from
 * z = h(a): below z = 1/2 the series of -expm1(-z) to z^9 / 9! (1 - e^-z would cancel),
 * above 1 - e^-z. Measured against float64 at 2,000,001 points of [-60, 60]: softplus
 * within 3.3 ulp, its derivative within 1.3 ulp. The loss's log1pexp keeps libm. */
static inline float cffnn_softplus_fast_f(float a) {
    const float e = cffnn_exp_nonpositive_f(-fabsf(a));
    const float s = e / (2.0f + e), s2 = s * s;
    float p = 1.0f / 15.0f;
    p = p * s2 + 1.0f / 13.0f;
    p = p * s2 + 1.0f / 11.0f;
    p = p * s2 + 1.0f / 9.0f;
    p = p * s2 + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    p = p * s2 + 1.0f;
    return (a > 0.0f ? a : 0.0f) + 2.0f * s * p;
}
static inline float cffnn_softplus_grad_fast_f(float z) {
    const float x = -z;
    float p = 1.0f / 362880.0f;
    p = p * x + 1.0f / 40320.0f;
    p = p * x + 1.0f / 5040.0f;
    p = p * x + 1.0f / 720.0f;
    p = p * x + 1.0f / 120.0f;
    p = p * x + 1.0f / 24.0f;
    p = p * x + 1.0f / 6.0f;
    p = p * x + 0.5f;
    p = p * x + 1.0f;
    const float series = -(x * p), direct = 1.0f - cffnn_exp_nonpositive_f(x);
    return z < 0.5f ? series : direct;
}

/* x[i] = e^x[i] for an array of values <= 0. GCC 12 vectorises the loop over the scalar
 * function above for SSE2 but not for AVX2 ("control flow in loop": its two selects stay
 * branches there, which left the AVX2 build scalar, 10% of a digits epoch), so the AVX2
 * twin is written out with intrinsics, step for step the same maths. */
static inline void cffnn_exp_nonpositive_array_f_base(float *x, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) x[i] = cffnn_exp_nonpositive_f(x[i]);
}
#ifdef CFFNN_X86_AVX2
#include <immintrin.h>
/* e^value for 8 values <= 0 (0 below -87), as cffnn_exp_nonpositive_f */
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 cffnn_exp_nonpositive_ps(__m256 value) {
    const __m256 lowest = _mm256_set1_ps(-87.0f);
    const __m256 clamped = _mm256_max_ps(value, lowest);
    const __m256 n_float = _mm256_cvtepi32_ps(_mm256_cvttps_epi32(_mm256_fmsub_ps(
        clamped, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f))));
    __m256 r = _mm256_fnmadd_ps(n_float, _mm256_set1_ps(0.693359375f), clamped);
    r = _mm256_fnmadd_ps(n_float, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0f));
    const __m256i bits = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvttps_epi32(n_float), _mm256_set1_epi32(127)), 23);
    const __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
    /* 0 below -87, as the scalar function */
    return _mm256_andnot_ps(_mm256_cmp_ps(value, lowest, _CMP_LT_OQ), result);
}
__attribute__((target("avx2,fma")))
static void cffnn_exp_nonpositive_array_f_avx2(float *x, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, cffnn_exp_nonpositive_ps(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) x[i] = cffnn_exp_nonpositive_f(x[i]);
}
#endif
static inline void cffnn_exp_nonpositive_array_f(float *x, ptrdiff_t n) {
    CFFNN_ARRAY_MAP_PICK(cffnn_exp_nonpositive_array_f)
    cffnn_exp_nonpositive_array_f_base(x, n);
}

/* ---- sigmoid for float32 layers, vectorisable: e = e^-|a| from the exp above, then
 * (a >= 0 ? 1 : e) / (1 + e), in [0, 1]. cffnn_sigmoid_f called libm's expf a value, and a
 * logistic network's epoch took 4x a relu one's. Within 2 ulp of the float64 sigmoid
 * (test_numerics). The loss's logistic output keeps cffnn_sigmoid_f. ---- */
static inline float cffnn_sigmoid_fast_f(float a) {
    const float e = cffnn_exp_nonpositive_f(-fabsf(a));
    return (a >= 0.0f ? 1.0f : e) / (1.0f + e);
}
static inline void cffnn_sigmoid_array_f_base(float *x, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) x[i] = cffnn_sigmoid_fast_f(x[i]);
}
#ifdef CFFNN_X86_AVX2
__attribute__((target("avx2,fma")))
static void cffnn_sigmoid_array_f_avx2(float *x, ptrdiff_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 a = _mm256_loadu_ps(x + i);
        const __m256 e = cffnn_exp_nonpositive_ps(_mm256_or_ps(a, sign));    /* e^-|a| */
        const __m256 numerator = _mm256_blendv_ps(
            one, e, _mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_LT_OQ));
        const __m256 sigmoid = _mm256_div_ps(numerator, _mm256_add_ps(one, e));
        /* NaN stays NaN (the vector exp's clamp would make it a number) */
        _mm256_storeu_ps(x + i,
                         _mm256_blendv_ps(sigmoid, a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q)));
    }
    for (; i < n; i++) x[i] = cffnn_sigmoid_fast_f(x[i]);
}
#endif
static inline void cffnn_sigmoid_array_f(float *x, ptrdiff_t n) {
    CFFNN_ARRAY_MAP_PICK(cffnn_sigmoid_array_f)
    cffnn_sigmoid_array_f_base(x, n);
}

/* ---- h(a) for an elementwise activation code (the same functions as the layers' loops
 * in cffnn/_layers.pxd) ---- */
static inline double cffnn_activate_d(int code, double a) {
    switch (code) {
    case CFFNN_LOGISTIC:   return cffnn_sigmoid_fast_d(a);
    case CFFNN_TANH:       return cffnn_tanh_fast_d(a);
    case CFFNN_RELU:       return a > 0.0 ? a : 0.0;
    case CFFNN_LEAKY_RELU: return a > 0.0 ? a : CFFNN_LEAKY_SLOPE * a;
    case CFFNN_ELU:        return a > 0.0 ? a : expm1(a);
    case CFFNN_SOFTPLUS:   return cffnn_log1pexp_d(a);
    case CFFNN_GELU:       return cffnn_gelu_d(a);
    case CFFNN_EXP:        return exp(a);
    default:               return a;   /* identity */
    }
}
static inline float cffnn_activate_f(int code, float a) {
    switch (code) {
    case CFFNN_LOGISTIC:   return cffnn_sigmoid_fast_f(a);
    case CFFNN_TANH:       return cffnn_tanh_fast_f(a);
    case CFFNN_RELU:       return a > 0.0f ? a : 0.0f;
    case CFFNN_LEAKY_RELU: return a > 0.0f ? a : (float)CFFNN_LEAKY_SLOPE * a;
    case CFFNN_ELU:        return a > 0.0f ? a : expm1f(a);
    case CFFNN_SOFTPLUS:   return cffnn_softplus_fast_f(a);
    case CFFNN_GELU:       return cffnn_gelu_f(a);
    case CFFNN_EXP:        return expf(a);
    default:               return a;
    }
}

/* ---- h'(a) from z = h(a) (and a, used by gelu only) ---- */
static inline double cffnn_derivative_d(int code, double z, double a) {
    switch (code) {
    case CFFNN_LOGISTIC:   return z * (1.0 - z);
    case CFFNN_TANH:       return 1.0 - z * z;
    case CFFNN_RELU:       return z > 0.0 ? 1.0 : 0.0;
    case CFFNN_LEAKY_RELU: return z > 0.0 ? 1.0 : CFFNN_LEAKY_SLOPE;
    case CFFNN_ELU:        return z > 0.0 ? 1.0 : z + 1.0;
    case CFFNN_SOFTPLUS:   return -expm1(-z);
    case CFFNN_GELU:       return cffnn_gelu_grad_d(a);
    case CFFNN_EXP:        return z;
    default:               return 1.0;
    }
}
static inline float cffnn_derivative_f(int code, float z, float a) {
    switch (code) {
    case CFFNN_LOGISTIC:   return z * (1.0f - z);
    case CFFNN_TANH:       return 1.0f - z * z;
    case CFFNN_RELU:       return z > 0.0f ? 1.0f : 0.0f;
    case CFFNN_LEAKY_RELU: return z > 0.0f ? 1.0f : (float)CFFNN_LEAKY_SLOPE;
    case CFFNN_ELU:        return z > 0.0f ? 1.0f : z + 1.0f;
    case CFFNN_SOFTPLUS:   return cffnn_softplus_grad_fast_f(z);
    case CFFNN_GELU:       return cffnn_gelu_grad_f(a);
    case CFFNN_EXP:        return z;
    default:               return 1.0f;
    }
}

#endif /* CFFNN_ACTIVATIONS_H */
