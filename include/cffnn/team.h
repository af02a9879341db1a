/*
 * cffnn/team.h: a barrier and a work counter for an OpenMP team that stays together for a
 * whole training epoch.
 *
 * Why: fit_epoch used to open three parallel regions per minibatch (blocks of rows,
 * weight-gradient tasks, the update). cffnn's runtime is loaded with passive waiting
 * (_openmp_runtime.py), so every region start woke sleeping threads, and on this
 * project's virtual machine a wake-up takes ~26 us: more than a whole minibatch step of
 * a small network. Now the epoch runs in one parallel region, and the phases of a step
 * are separated by cffnn_barrier_wait, which spins for up to ~30 us (the usual wait, a few
 * microseconds when the threads' shares are even) and then sleeps (when a thread has
 * lost its core to another process: spinning longer would take the core it needs).
 *
 * A team is only as fast as its slowest thread. When another process shares a core, the
 * thread on that core is off it for milliseconds at a time, and every barrier waits for
 * it: measured with one busy process beside a 2-thread team, the regression task's epoch
 * took 2.2x as long as on one thread. So the barrier adds up the time its threads spend
 * waiting, and its last arrival declares the team `solo` once that exceeds
 * cffnn_team_max_wait of all the team's time since it assembled (a team of two that
 * waits half its time is no faster than one thread); the epoch loop then goes
 * on with thread 0 alone (see _kernels.pyx). A wait that is long only because the work
 * items are coarse (weight-gradient tasks of a large layer) counts the same, rightly.
 * The wait at the first barrier, for the team to assemble, does not count, nor does the
 * time before it: there thread 0 waits for a sleeping thread to wake, which on this
 * virtual machine took up to 2 ms when its vCPU was idle. Counted, it made 2-5 of 80
 * regression epochs go solo at the first judgement (2 ms in, having "waited" 1.7-3 ms
 * of 4), each followed by 4 or more epochs on one thread: up to half the epochs.
 *
 * cffnn_counter hands out work items dynamically: a thread takes item
 * cffnn_counter_next(...) - base until that reaches the phase's item count. Every thread
 * makes exactly one failing take per phase, so after the phase's barrier the counter
 * stands at base + n_items + n_threads, which every thread can compute: the counter is
 * never reset (cffnn_counter_after).
 *
 * Memory order: the barrier's last arrival publishes and the waiters acquire, so whatever
 * a thread wrote before the barrier is visible to all after it. A sleeper announces
 * itself and then reads the generation; the last arrival moves the generation and then
 * reads the sleepers: both pairs are sequentially consistent, so no wake-up is lost.
 * GCC/clang builtins, or MSVC interlocked functions. Sleeping uses futex on Linux;
 * elsewhere a waiting thread yields its core in a loop instead.
 */
#ifndef CFFNN_TEAM_H
#define CFFNN_TEAM_H

#include <stddef.h>

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX                   /* no min and max macros in the generated C */
#endif
#include <windows.h>
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#define cffnn_load_acquire(p) (*(volatile long *)(p))
#define cffnn_fetch_add(p, v) _InterlockedExchangeAdd((volatile long *)(p), (v))
#define cffnn_fetch_add64(p, v) _InterlockedExchangeAdd64((volatile long long *)(p), (v))
#define cffnn_load_seq_cst(p) _InterlockedOr((volatile long *)(p), 0)
#define cffnn_cpu_relax() YieldProcessor()
#define cffnn_yield() SwitchToThread()
typedef long cffnn_atomic_int;
#else
#define cffnn_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define cffnn_fetch_add(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define cffnn_fetch_add64(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define cffnn_load_seq_cst(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#include <sched.h>
#define cffnn_yield() sched_yield()
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cffnn_cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cffnn_cpu_relax() __asm__ __volatile__("yield")
#else
#define cffnn_cpu_relax() ((void)0)
#endif
typedef int cffnn_atomic_int;
#endif

#ifdef _OPENMP
#include <omp.h>
/* The size of the team running the caller: inside a parallel region, the threads the
 * runtime really started (which may be fewer than were asked for). */
static inline int cffnn_team_size(void) { return omp_get_num_threads(); }
static inline int cffnn_team_thread(void) { return omp_get_thread_num(); }
#else
static inline int cffnn_team_size(void) { return 1; }
static inline int cffnn_team_thread(void) { return 0; }
#endif

/* A monotonic clock in nanoseconds, for the waiting statistics. */
#if defined(_WIN32)
static inline long long cffnn_now_ns(void) {
    LARGE_INTEGER count, frequency;
    QueryPerformanceCounter(&count);
    QueryPerformanceFrequency(&frequency);
    return (long long)((double)count.QuadPart * 1e9 / (double)frequency.QuadPart);
}
#else
#include <time.h>
static inline long long cffnn_now_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}
#endif

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#define CFFNN_HAVE_FUTEX 1
#endif

/* Spins before a waiting thread sleeps: ~30 us on this project's machine, where a pause
 * takes 29 ns; about what a sleep and wake-up cost there, so a wait never costs more
 * than twice the better choice. An even step's wait is a few microseconds; a thread
 * that lost its core to another process is gone for milliseconds. */
#define CFFNN_BARRIER_SPINS 1000

/* The share of a team's time spent waiting beyond which it goes solo, and the time it
 * runs before that is judged (see the top of this file). Variables only so that tests
 * can force either outcome (cffnn._kernels.set_team_limits). */
static double cffnn_team_max_wait = 0.4;
static long long cffnn_team_min_judged_ns = 2000000;

/* Each field on its own cache line: the threads write `arrived` on every barrier and
 * `generation` is what the waiters spin on. */
typedef struct {
    cffnn_atomic_int arrived;        /* threads at the barrier in this generation */
    char pad_arrived[64 - sizeof(cffnn_atomic_int)];
    cffnn_atomic_int generation;     /* barriers completed so far */
    char pad_generation[64 - sizeof(cffnn_atomic_int)];
    cffnn_atomic_int sleepers;       /* threads that may be asleep on `generation` */
    char pad_sleepers[64 - sizeof(cffnn_atomic_int)];
    long long waited_ns;             /* time the threads have spent waiting, summed */
    long long start_ns;              /* when the barrier was set up */
    int solo;                        /* 1 once waiting took cffnn_team_max_wait or more */
} cffnn_barrier;

typedef struct {
    long long next;                  /* the next item to hand out (never reset) */
    char pad[64 - sizeof(long long)];
} cffnn_counter;

static inline void cffnn_barrier_init(cffnn_barrier *barrier) {
    barrier->arrived = 0;
    barrier->generation = 0;
    barrier->sleepers = 0;
    barrier->waited_ns = 0;
    barrier->start_ns = cffnn_now_ns();
    barrier->solo = 0;
}

/* Whether the team has been declared solo (read after a barrier: the last arrival wrote
 * it before releasing the others). */
static inline int cffnn_barrier_solo(const cffnn_barrier *barrier) { return barrier->solo; }

static inline void cffnn_counter_init(cffnn_counter *counter) { counter->next = 0; }

static void cffnn_barrier_sleep(cffnn_barrier *barrier, cffnn_atomic_int generation) {
#ifdef CFFNN_HAVE_FUTEX
    cffnn_fetch_add(&barrier->sleepers, 1);
    /* FUTEX_WAIT returns at once if generation has already moved on */
    while (cffnn_load_seq_cst(&barrier->generation) == generation)
        syscall(SYS_futex, &barrier->generation, FUTEX_WAIT_PRIVATE, generation, NULL,
                NULL, 0);
    cffnn_fetch_add(&barrier->sleepers, -1);
#else
    while (cffnn_load_acquire(&barrier->generation) == generation)
        cffnn_yield();
#endif
}

/* Wait until all n_threads threads of the team have called this (n_threads: the
 * team's actual size, omp_get_num_threads() inside the region). */
static inline void cffnn_barrier_wait(cffnn_barrier *barrier, int n_threads) {
    cffnn_atomic_int generation;
    long long arrival, team_ns;
    int spins;
    if (n_threads <= 1)
        return;
    arrival = cffnn_now_ns();
    generation = cffnn_load_acquire(&barrier->generation);
    if (cffnn_fetch_add(&barrier->arrived, 1) == n_threads - 1) {
        /* the last arrival: nobody touches `arrived` again before the generation moves */
        barrier->arrived = 0;
        team_ns = (arrival - barrier->start_ns) * n_threads;
        if (generation == 0)       /* the team has assembled: judged from now on */
            barrier->start_ns = arrival;
        else if (team_ns >= cffnn_team_min_judged_ns * n_threads
                 && cffnn_fetch_add64(&barrier->waited_ns, 0) >= cffnn_team_max_wait * team_ns)
            barrier->solo = 1;
        cffnn_fetch_add(&barrier->generation, 1);
#ifdef CFFNN_HAVE_FUTEX
        if (cffnn_load_seq_cst(&barrier->sleepers) > 0)
            syscall(SYS_futex, &barrier->generation, FUTEX_WAKE_PRIVATE, n_threads, NULL,
                    NULL, 0);
#endif
        return;
    }
    for (spins = 0; spins < CFFNN_BARRIER_SPINS; spins++) {
        if (cffnn_load_acquire(&barrier->generation) != generation)
            break;
        cffnn_cpu_relax();
    }
    if (spins == CFFNN_BARRIER_SPINS)
        cffnn_barrier_sleep(barrier, generation);
    if (generation != 0)           /* (not the wait for the team to assemble) */
        cffnn_fetch_add64(&barrier->waited_ns, cffnn_now_ns() - arrival);
}

/* The next work item, counted from the phase's base (see the top of this file). */
static inline long long cffnn_counter_next(cffnn_counter *counter, long long base) {
    return cffnn_fetch_add64(&counter->next, 1) - base;
}

/* The counter's value once a phase of n_items has passed its barrier. */
static inline long long cffnn_counter_after(long long base, long long n_items,
                                            int n_threads) {
    return base + n_items + n_threads;
}

#endif /* CFFNN_TEAM_H */
