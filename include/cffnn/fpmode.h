/*
 * cffnn/fpmode.h: flush subnormal floats to zero inside the training loop, and put the
 * caller's mode back afterwards.
 *
 * Why: Adam's moment estimates for rarely active inputs decay geometrically into
 * subnormal numbers, on which x86 arithmetic is ~100x slower (the NumPy reference's
 * Fashion-MNIST epoch grows 1.6x over six epochs from that alone). Flush-to-zero (FTZ)
 * and denormals-are-zero (DAZ) make those moments exact zeros instead of tiny ones,
 * which changes the update by less than epsilon does.
 *
 * x86-64 (SSE MXCSR) only; elsewhere these do nothing. They act on the calling thread,
 * so the threads of an OpenMP team take the caller's mode at the start of each parallel
 * region (cffnn_adopt_fp_mode) and put their own back at its end: otherwise the Adam
 * chunks of a worker thread would keep their subnormals, and a block's results would
 * depend on which thread ran it.
 */
#ifndef CFFNN_FPMODE_H
#define CFFNN_FPMODE_H

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#define CFFNN_MXCSR_FTZ_DAZ 0x8040u

static inline unsigned int cffnn_flush_subnormals_begin(void) {
    unsigned int previous = _mm_getcsr();
    _mm_setcsr(previous | CFFNN_MXCSR_FTZ_DAZ);
    return previous;
}
static inline void cffnn_flush_subnormals_end(unsigned int previous) {
    _mm_setcsr(previous);
}
static inline unsigned int cffnn_fp_mode(void) { return _mm_getcsr(); }
/* this thread takes `mode` (from cffnn_fp_mode on the caller); returns its own */
static inline unsigned int cffnn_adopt_fp_mode(unsigned int mode) {
    unsigned int previous = _mm_getcsr();
    _mm_setcsr(mode);
    return previous;
}
#else
static inline unsigned int cffnn_flush_subnormals_begin(void) { return 0; }
static inline void cffnn_flush_subnormals_end(unsigned int previous) { (void)previous; }
static inline unsigned int cffnn_fp_mode(void) { return 0; }
static inline unsigned int cffnn_adopt_fp_mode(unsigned int mode) { (void)mode; return 0; }
#endif

#endif /* CFFNN_FPMODE_H */
