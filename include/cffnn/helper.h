/*
 * cffnn/helper.h: one helper thread that can take half of a forward pass of a few rows.
 *
 * Why: the forward pass of one row of a 784-256-128-10 network reads 0.9 MB of weights
 * once, and one core of this project's machine reads ~70 GB/s from its caches: 13-17 us
 * however the loop is written (rowkernel.h). Two cores, each reading the half of the
 * weights its half of the outputs needs, took 9.3 us instead of 17.3 (dense row) and
 * 5.6 us instead of 8.0 (a row with half its inputs 0), measured in C. An OpenMP team
 * cannot do this: cffnn's runtime waits passively (_openmp_runtime.py), and waking a
 * sleeping thread costs ~26 us here.
 *
 * So the helper is a thread of its own, which after each task spins for
 * CFFNN_HELPER_SPIN_NS, ready for the next one, and then sleeps. A caller never waits
 * for a helper that is not already running: it posts the task (cffnn_helper_post), does
 * its own half, and then (cffnn_helper_join) either finds the task taken, and waits for
 * the helper that is running it, or takes it back and runs it itself. Whether the
 * helper took part never changes the result: both halves compute what they would on
 * one thread.
 *
 * When the helper sleeps it is woken only if the previous call began or ended less than
 * CFFNN_HELPER_SPIN_NS ago (calls in quick succession: the next ones will find it
 * spinning); a call now and then runs on one thread and costs the other core nothing.
 * The thread is started the same way, on the second of two calls in quick succession.
 * A call ends at cffnn_helper_join, or, when its post returned 0, at
 * cffnn_helper_note_end (calls that take longer than the spin, such as a batch of 64
 * rows, would otherwise never count as quick succession).
 *
 * The other core may belong to another process. A helper off its core would keep the
 * caller waiting: so a post skips a spinning helper whose last note of the time is
 * older than CFFNN_HELPER_STALE_NS, and a join that had to wait for a helper that lost
 * its core mid-task (CFFNN_HELPER_LATE_NS), or that finds the caller lost its own
 * (CFFNN_HELPER_DISPLACED_NS: the caller's half took far longer than the helper's), or
 * that finds the helper finished on the caller's own CPU three calls in a row (the two
 * took turns on one core, the other process having the other), leaves it alone for a
 * cooldown, during which the calls run on one thread and the helper soon sleeps,
 * leaving a core to the other process (a late or displaced join does so when it is the
 * second within CFFNN_HELPER_STRIKE_WINDOW_NS: a lone one is a hiccup of the host).
 * Measured (benchmarks/one_row.py, a busy process beside a loop of one-row calls):
 * 1-thread/2-thread time 0.46-0.64 without these rules, 1.00-1.14 with them; 1.1-1.8 on
 * an idle machine (whose speed varied that much). Without the CPU rule the first
 * seconds beside the busy process still ran at
 * 0.47-0.69 (one row) and 0.78-0.79 (32 rows) in some runs; with it 0.99-1.01 in six.
 *
 * One caller at a time: a post made while another caller holds the helper returns 0
 * (run the task yourself). After fork() the child starts with no helper (a thread does
 * not survive a fork) and starts its own when needed.
 *
 * Linux only (futex); elsewhere cffnn_helper_post always returns 0.
 */
#ifndef CFFNN_HELPER_H
#define CFFNN_HELPER_H

#include "cffnn/fpmode.h" /* the caller's floating-point mode, for the helper's task */
#include "cffnn/team.h"   /* atomics, cffnn_cpu_relax, cffnn_now_ns, CFFNN_HAVE_FUTEX */

typedef void (*cffnn_helper_task)(void *arg);

/* How long the helper spins after a task before it sleeps: a one-row forward call from
 * Python comes every ~15-20 us in a loop of predictions. */
#define CFFNN_HELPER_SPIN_NS 100000LL
/* A spinning helper notes the time every ~2 us; a note older than this means it is off
 * its core (another process has it), and a post would wait for it: skip the helper. */
#define CFFNN_HELPER_STALE_NS 20000LL
/* A join that waited longer than this, beyond the time the caller took for its own half
 * (the helper's half is as long; a one-row half takes 3-10 us, its first after a sleep up
 * to ~100 us: its caches are cold), means that the helper lost its core to another
 * process while working, and the caller waited for that process's time slice
 * (milliseconds). Then (at the second such join within CFFNN_HELPER_STRIKE_WINDOW_NS)
 * the helper is left alone for a cooldown: the first one, doubled at each such wait up
 * to the last while they keep coming, forgotten after a quiet
 * CFFNN_HELPER_FORGET_NS (a second: beside a busy process the next call is late again
 * at once, while a lone hiccup of this virtual machine, which came every few seconds in
 * loops of batch calls, should not keep the helper away for seconds). */
#define CFFNN_HELPER_LATE_NS 500000LL
/* The same the other way round: a caller whose own half took more than twice as long as
 * the helper's, and this much longer, has lost its core. Then another process wants a
 * core, and with the helper spinning, three threads share two: leave the helper alone
 * (measured, benchmarks/small_batch.py beside a busy process: a 64-64-64-10 batch of
 * 128 rows took 1.7x as long on two threads as on one without this rule, 0.96x with
 * it). */
#define CFFNN_HELPER_DISPLACED_NS 200000LL
/* Joins in a row that find the helper finished on the caller's own CPU before a
 * cooldown (see the top of this file): one alone happened now and then on the idle
 * machine too (0.1 s cooldowns then cost 64-64-64-10 batches a third of their gain). */
#define CFFNN_HELPER_SHARED_JOINS 3
/* A late or displaced join starts a cooldown only when the one before came less than
 * this long ago. Beside a busy process they come every few milliseconds (each of its
 * time slices on a core of ours makes one), but on this virtual machine, idle, a lone
 * one came every second or so (a vCPU held up for half a millisecond or more): each
 * cost a 0.1-0.4 s cooldown, a third of the calls of a loop of one-row forwards ran on
 * one thread (14 us instead of 8), and the rule now takes them for what they are. */
#define CFFNN_HELPER_STRIKE_WINDOW_NS 50000000LL
#define CFFNN_HELPER_FIRST_COOLDOWN_NS 100000000LL
#define CFFNN_HELPER_LAST_COOLDOWN_NS 3200000000LL
#define CFFNN_HELPER_FORGET_NS 1000000000LL

#if defined(CFFNN_HAVE_FUTEX)
#include <pthread.h>
#include <signal.h>
#define CFFNN_HAVE_HELPER 1
/* glibc and musl have it; <sched.h> declares it only under _GNU_SOURCE, which must come
 * before Python.h's includes, out of this header's reach */
extern int sched_getcpu(void);

/* Each counter on its own cache line. Tickets count posts: the helper spins on
 * `request`; the task of ticket t is run by whoever moves `claimed` from t - 1 to t. */
static struct {
    unsigned int request;         /* tickets posted so far (wrapping) */
    char pad_request[64 - sizeof(unsigned int)];
    unsigned int claimed;         /* tickets taken, by the helper or back by the caller */
    char pad_claimed[64 - sizeof(unsigned int)];
    unsigned int finished;        /* the last ticket the helper finished */
    char pad_finished[64 - sizeof(unsigned int)];
    long long alive_ns;           /* when the spinning helper last noted the time */
    char pad_alive[64 - sizeof(long long)];
    int sleeping;                 /* 1 while the helper may be asleep on `request` */
    int busy;                     /* 1 while a caller holds the helper (post to join) */
    unsigned int ticket;          /* the holder's ticket (caller-owned) */
    unsigned long long tasks_run; /* tasks the helper thread ran (for the tests) */
    unsigned long long cooldowns_started; /* joins that started a cooldown (caller-owned) */
    long long task_ns;            /* how long the helper's last task took */
    int task_cpu;                 /* the CPU it finished that task on */
    int shared_cpu_joins;         /* joins in a row on that CPU (caller-owned) */
    int started;                  /* 0: no thread yet, 1: running, -1: could not start */
    long long last_post_ns;       /* when the previous post was made (caller-owned) */
    long long last_end_ns;        /* when the previous call ended (join, note_end) */
    long long cooldown_ns;        /* the last cooldown, 0 before any (caller-owned) */
    long long cooldown_end_ns;    /* no posts before this (caller-owned) */
    long long strike_ns;          /* the last late or displaced join, 0: none (caller-owned) */
    cffnn_helper_task task;       /* the posted task, written before `request` moves */
    void *arg;
    unsigned int fp_mode;         /* the poster's floating-point mode, for the task */
} cffnn_helper;

/* In a child process after fork(): no helper thread exists there. */
static void cffnn_helper_after_fork(void) {
    cffnn_helper.request = cffnn_helper.claimed = cffnn_helper.finished = 0;
    cffnn_helper.sleeping = cffnn_helper.busy = 0;
    cffnn_helper.started = 0;
    cffnn_helper.last_post_ns = cffnn_helper.last_end_ns = 0;
    cffnn_helper.cooldown_ns = cffnn_helper.cooldown_end_ns = cffnn_helper.strike_ns = 0;
    cffnn_helper.tasks_run = cffnn_helper.cooldowns_started = 0;
    cffnn_helper.shared_cpu_joins = 0;
}

static void *cffnn_helper_main(void *unused) {
    unsigned int last = 0, expected;
    long long spin_start, now;
    int spins;
    (void)unused;
    for (;;) {
        /* wait for a new ticket: spin for CFFNN_HELPER_SPIN_NS, then sleep */
        spin_start = cffnn_now_ns();
        __atomic_store_n(&cffnn_helper.alive_ns, spin_start, __ATOMIC_RELAXED);
        for (spins = 0; cffnn_load_acquire(&cffnn_helper.request) == last; spins++) {
            cffnn_cpu_relax();
            if ((spins & 63) != 63)
                continue;
            now = cffnn_now_ns();
            __atomic_store_n(&cffnn_helper.alive_ns, now, __ATOMIC_RELAXED);
            if (now - spin_start > CFFNN_HELPER_SPIN_NS) {
                __atomic_store_n(&cffnn_helper.sleeping, 1, __ATOMIC_SEQ_CST);
                /* FUTEX_WAIT returns at once if request has already moved on */
                while (cffnn_load_seq_cst(&cffnn_helper.request) == last)
                    syscall(SYS_futex, &cffnn_helper.request, FUTEX_WAIT_PRIVATE,
                            (int)last, NULL, NULL, 0);
                __atomic_store_n(&cffnn_helper.sleeping, 0, __ATOMIC_SEQ_CST);
            }
        }
        last = cffnn_load_acquire(&cffnn_helper.request);
        expected = last - 1u;
        /* take the newest ticket unless its caller has taken it back */
        if (__atomic_compare_exchange_n(&cffnn_helper.claimed, &expected, last, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            long long task_start = cffnn_now_ns();
            /* the task computes as the caller would: its flush-to-zero mode (fpmode.h) */
            unsigned int own_mode = cffnn_adopt_fp_mode(cffnn_helper.fp_mode);
            cffnn_helper.task(cffnn_helper.arg);
            cffnn_adopt_fp_mode(own_mode);
            cffnn_helper.task_ns = cffnn_now_ns() - task_start;   /* published below */
            cffnn_helper.task_cpu = sched_getcpu();
            __atomic_fetch_add(&cffnn_helper.tasks_run, 1ull, __ATOMIC_RELAXED);
            __atomic_store_n(&cffnn_helper.finished, last, __ATOMIC_RELEASE);
        }
    }
    return NULL;
}

/* Start the thread, with every signal blocked in it (Python handles signals on its main
 * thread); 1 on success. Called with `busy` held. */
static int cffnn_helper_start(void) {
    static int fork_handler_registered = 0;
    pthread_attr_t attributes;
    pthread_t thread;
    sigset_t all, previous;
    int status;
    if (!fork_handler_registered) {
        if (pthread_atfork(NULL, NULL, cffnn_helper_after_fork) != 0)
            return 0;
        fork_handler_registered = 1;
    }
    if (pthread_attr_init(&attributes) != 0)
        return 0;
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, 1 << 20);   /* tasks keep their data on the heap */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    status = pthread_create(&thread, &attributes, cffnn_helper_main, NULL);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    pthread_attr_destroy(&attributes);
    return status == 0;
}

/* Offer task(arg) to the helper. Returns 1 when it was posted (then call
 * cffnn_helper_join() after your own half: the task will have run when it returns), or
 * 0 when the helper is not at hand (run the task yourself). The helper runs the task in
 * the caller's floating-point mode (fpmode.h), as the caller itself would. */
static int cffnn_helper_post(cffnn_helper_task task, void *arg) {
    int free_ = 0;
    long long now = cffnn_now_ns(), previous;
    int recent;
    if (!__atomic_compare_exchange_n(&cffnn_helper.busy, &free_, 1, 0, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED))
        return 0;                             /* another caller holds it */
    /* the later of the previous call's beginning and its end */
    previous = __atomic_load_n(&cffnn_helper.last_end_ns, __ATOMIC_RELAXED);
    if (cffnn_helper.last_post_ns > previous)
        previous = cffnn_helper.last_post_ns;
    cffnn_helper.last_post_ns = now;
    recent = previous != 0 && now - previous < CFFNN_HELPER_SPIN_NS;
    if (cffnn_helper.started == 0 && recent)
        cffnn_helper.started = cffnn_helper_start() ? 1 : -1;
    if (cffnn_helper.started != 1 || now < cffnn_helper.cooldown_end_ns
            || (cffnn_load_seq_cst(&cffnn_helper.sleeping)
                ? !recent
                : now - __atomic_load_n(&cffnn_helper.alive_ns, __ATOMIC_RELAXED)
                  > CFFNN_HELPER_STALE_NS)) {
        __atomic_store_n(&cffnn_helper.busy, 0, __ATOMIC_RELEASE);
        return 0;
    }
    cffnn_helper.task = task;
    cffnn_helper.arg = arg;
    cffnn_helper.fp_mode = cffnn_fp_mode();
    /* the helper announces `sleeping` and then reads `request`; we move `request` and
     * then read `sleeping`: both sequentially consistent, so no wake-up is lost */
    cffnn_helper.ticket = __atomic_add_fetch(&cffnn_helper.request, 1u, __ATOMIC_SEQ_CST);
    if (cffnn_load_seq_cst(&cffnn_helper.sleeping))
        syscall(SYS_futex, &cffnn_helper.request, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    return 1;
}

/* After cffnn_helper_post returned 1: take the task back and run it if the helper has
 * not started it, else wait for the helper to finish it. */
static void cffnn_helper_join(void) {
    const unsigned int ticket = cffnn_helper.ticket;
    unsigned int expected = ticket - 1u;
    int spins = 0;
    long long wait_start, now, own_ns;
    if (__atomic_compare_exchange_n(&cffnn_helper.claimed, &expected, ticket, 0,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        cffnn_helper.task(cffnn_helper.arg);
        now = cffnn_now_ns();
    } else {
        wait_start = cffnn_now_ns();
        /* the helper is running it: a few microseconds, unless it has lost its core, in
         * which case spinning here must not keep it from getting one back */
        while (cffnn_load_acquire(&cffnn_helper.finished) != ticket) {
            if (++spins < CFFNN_BARRIER_SPINS)
                cffnn_cpu_relax();
            else
                cffnn_yield();
        }
        now = cffnn_now_ns();
        own_ns = wait_start - cffnn_helper.last_post_ns;    /* the caller's own half */
        if (cffnn_helper.task_cpu >= 0 && sched_getcpu() == cffnn_helper.task_cpu)
            cffnn_helper.shared_cpu_joins++;                  /* (-1: unknown) */
        else
            cffnn_helper.shared_cpu_joins = 0;
        int struck = now - wait_start > CFFNN_HELPER_LATE_NS + own_ns
                     || own_ns > 2 * cffnn_helper.task_ns + CFFNN_HELPER_DISPLACED_NS;
        int second_strike = struck && cffnn_helper.strike_ns != 0
                            && now - cffnn_helper.strike_ns < CFFNN_HELPER_STRIKE_WINDOW_NS;
        if (struck)
            cffnn_helper.strike_ns = now;
        if (second_strike || cffnn_helper.shared_cpu_joins >= CFFNN_HELPER_SHARED_JOINS) {
            if (cffnn_helper.cooldown_ns == 0
                    || now - cffnn_helper.cooldown_end_ns > CFFNN_HELPER_FORGET_NS)
                cffnn_helper.cooldown_ns = CFFNN_HELPER_FIRST_COOLDOWN_NS;
            else if (2 * cffnn_helper.cooldown_ns <= CFFNN_HELPER_LAST_COOLDOWN_NS)
                cffnn_helper.cooldown_ns *= 2;
            cffnn_helper.cooldown_end_ns = now + cffnn_helper.cooldown_ns;
            cffnn_helper.cooldowns_started++;
            cffnn_helper.shared_cpu_joins = 0;
            cffnn_helper.strike_ns = 0;
        }
    }
    __atomic_store_n(&cffnn_helper.last_end_ns, now, __ATOMIC_RELAXED);
    __atomic_store_n(&cffnn_helper.busy, 0, __ATOMIC_RELEASE);
}

/* After cffnn_helper_post returned 0 and the caller has run the whole call itself: the
 * call ends now (see the top of this file). */
static void cffnn_helper_note_end(void) {
    __atomic_store_n(&cffnn_helper.last_end_ns, cffnn_now_ns(), __ATOMIC_RELAXED);
}

/* How many tasks the helper thread has run in this process. */
static unsigned long long cffnn_helper_tasks_run(void) {
    return __atomic_load_n(&cffnn_helper.tasks_run, __ATOMIC_RELAXED);
}

/* How many joins started a cooldown (a core lost, or the two threads on one CPU). */
static unsigned long long cffnn_helper_cooldowns(void) {
    return cffnn_helper.cooldowns_started;
}

#else
#define CFFNN_HAVE_HELPER 0
static int cffnn_helper_post(cffnn_helper_task task, void *arg) {
    (void)task;
    (void)arg;
    return 0;
}
static void cffnn_helper_join(void) {}
static void cffnn_helper_note_end(void) {}
static unsigned long long cffnn_helper_tasks_run(void) { return 0; }
static unsigned long long cffnn_helper_cooldowns(void) { return 0; }
#endif

#endif /* CFFNN_HELPER_H */
