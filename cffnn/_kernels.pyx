# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled forward pass, loss, backpropagation and training epoch of a dense network.

Maths (DESIGN.md): for layers k = 0..L-1 with W[k] of shape (n_k, n_{k+1}),

    A[k] = Z[k-1] W[k] + b[k],   Z[k] = h_k(A[k]),   Z[-1] = X
    delta[L-1] = dL/dA[L-1]                        (_losses.pxd, from the logits)
    delta[k-1] = h'_{k-1}(A[k-1]) * (delta[k] W[k]^T)
    dL/dW[k] = Z[k-1]^T delta[k] + alpha W[k] / S,   dL/db[k] = sum_i delta[k][i]

Design:
- Parameters and gradients are one flat buffer each: W[0] row-major, b[0], W[1], b[1], ...
  (`weight_offsets`, `bias_offsets` give where each starts).
- Every pass works on blocks of block_rows rows (a function of the network and the batch
  size). A block goes through forward, loss and delta propagation without any
  synchronisation with other blocks, so blocks are spread over an OpenMP team; each
  thread calls single-threaded BLAS on its own rows (BLAS's pool is held at one thread
  meanwhile, _threads.pxd). Because the blocks do not depend on the team size and block
  losses are summed in block order, results do not depend on the number of threads.
  Blocks are handed out dynamically: on a shared machine one thread may share its core
  (with another process, or with NumPy's OpenBLAS workers, which spin for ~0.1 s after
  each call), and the other then takes more blocks.
- Weight gradients need all rows, so they run after the blocks, as tasks of whole rows
  of dW[k] (each task owns its rows of the gradient: no reduction, no race, and a
  partition that depends on the layer and the batch size, not on the team either).
- In training, a large float32 W[0] is instead cut into parts of its rows, each owned by
  one thread for the whole minibatch (forward partial sums, gradient and update), so
  that no core writes weights another has read (owned_parts says why).
- Small work (under PARALLEL_MIN_MACS multiply-adds in a call, EPOCH_TEAM_MIN_MACS in a
  minibatch of an epoch, or one block) never starts a team.
- Team threads take the caller's floating-point mode for each parallel region
  (include/cffnn/fpmode.h), so that fit_epoch's flushing of subnormals reaches them too.
- An epoch (epoch_loop) is minibatches of the above plus the optimiser's fused update
  (_optimizers.pxd), all without the GIL, in one workspace allocated per epoch and in one
  parallel region: the phases of a minibatch are separated by include/cffnn/team.h's
  barriers, which spin briefly, instead of three regions whose sleeping threads each took
  ~26 us to wake. A team whose threads wait too much (another process has one of the
  cores) goes on with one thread (team.h, epoch_loop).
- Callers (cffnn/network.py) have validated shapes, dtypes, finiteness and that every
  dimension fits in a C int; the nogil loops never raise (allocation failure is reported
  by a status code, turned into MemoryError by CompiledNetwork).
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.float cimport FLT_MAX
from libc.limits cimport INT_MAX
from libc.math cimport INFINITY, ceil
from libc.stdlib cimport malloc, free
from libc.stdint cimport uint64_t, uintptr_t

import os

cimport numpy as cnp
import numpy as np

cnp.import_array()

from cffnn._blas cimport (cffnn_gradient_gemm_pays, cffnn_medium_gemm_pays,
                          cffnn_small_gemm_available,
                          cffnn_small_gemm_enabled, cffnn_sparse_enabled,
                          cffnn_sparse_products,
                          forward_product_rowwise, gemm, gemm_bias)
from cffnn._layers cimport (
    CFFNN_IDENTITY, CFFNN_LOGISTIC, CFFNN_TANH, CFFNN_RELU, CFFNN_LEAKY_RELU, CFFNN_ELU,
    CFFNN_SOFTPLUS, CFFNN_GELU, CFFNN_SOFTMAX, CFFNN_EXP, bias_activation,
    multiply_derivative)
from cffnn._losses cimport (
    CFFNN_SQUARED_ERROR, CFFNN_BINARY_LOG_LOSS, CFFNN_LOG_LOSS, CFFNN_POISSON,
    loss_and_output_delta)
from cffnn._optimizers cimport adam_update, rprop_update, sgd_update
from cffnn._threads cimport limit_blas_threads, restore_blas_threads
from libc.math cimport pow as c_pow
from libc.string cimport memcpy

cdef extern from "cffnn/checks.h" nogil:
    bint cffnn_all_finite_in_f(const float* x, Py_ssize_t n, bint check_bounds,
                               float lower, float upper)
    bint cffnn_all_finite_in_d(const double* x, Py_ssize_t n, bint check_bounds,
                               double lower, double upper)

cdef extern from "cffnn/fpmode.h" nogil:
    unsigned int cffnn_flush_subnormals_begin()
    void cffnn_flush_subnormals_end(unsigned int previous)
    unsigned int cffnn_fp_mode()
    unsigned int cffnn_adopt_fp_mode(unsigned int mode)

cdef extern from "cffnn/gather.h" nogil:
    void cffnn_gather_rows_f(const float* x, Py_ssize_t width, const Py_ssize_t* order,
                             Py_ssize_t n_rows, float* out)
    void cffnn_gather_rows_d(const double* x, Py_ssize_t width, const Py_ssize_t* order,
                             Py_ssize_t n_rows, double* out)

cdef extern from "cffnn/sums.h" nogil:
    void cffnn_column_sums_f(const float* x, Py_ssize_t n_rows, Py_ssize_t n_cols,
                             double* sums)
    void cffnn_column_sums_d(const double* x, Py_ssize_t n_rows, Py_ssize_t n_cols,
                             double* sums)

cdef extern from "cffnn/shuffle.h" nogil:
    void cffnn_shuffled_order(uint64_t seed, Py_ssize_t n, Py_ssize_t* order)
    uint64_t cffnn_uniform_below(uint64_t* state, uint64_t range)

cdef extern from "cffnn/team.h" nogil:
    ctypedef struct cffnn_barrier:
        pass
    ctypedef struct cffnn_counter:
        pass
    void cffnn_barrier_init(cffnn_barrier* barrier)
    void cffnn_counter_init(cffnn_counter* counter)
    void cffnn_barrier_wait(cffnn_barrier* barrier, int n_threads)
    bint cffnn_barrier_solo(const cffnn_barrier* barrier)
    long long cffnn_counter_next(cffnn_counter* counter, long long base)
    long long cffnn_counter_after(long long base, long long n_items, int n_threads)
    int cffnn_team_size()
    int cffnn_team_thread()
    double cffnn_team_max_wait
    long long cffnn_team_min_judged_ns
    long long cffnn_now_ns()

cdef extern from "cffnn/rowkernel.h" nogil:
    void cffnn_row_times_matrix_f(const float* x, const float* W, Py_ssize_t ldw,
                                  const float* b, float* y, Py_ssize_t n_in, Py_ssize_t n_out,
                                  int* nonzero)
    void cffnn_row_times_matrix_d(const double* x, const double* W, Py_ssize_t ldw,
                                  const double* b, double* y, Py_ssize_t n_in,
                                  Py_ssize_t n_out, int* nonzero)
    Py_ssize_t cffnn_count_nonzero_f(const float* x, Py_ssize_t n, int* nonzero)
    Py_ssize_t CFFNN_ROW_SCRATCH(Py_ssize_t n_in)

cdef extern from "cffnn/helper.h" nogil:
    ctypedef void (*cffnn_helper_task)(void* arg) noexcept nogil
    bint cffnn_helper_post(cffnn_helper_task task, void* arg)
    void cffnn_helper_join()
    void cffnn_helper_note_end()
    unsigned long long cffnn_helper_tasks_run()
    unsigned long long cffnn_helper_cooldowns()
    int CFFNN_HAVE_HELPER

ACTIVATION_CODES = {
    "identity": CFFNN_IDENTITY, "logistic": CFFNN_LOGISTIC, "tanh": CFFNN_TANH,
    "relu": CFFNN_RELU, "leaky_relu": CFFNN_LEAKY_RELU, "elu": CFFNN_ELU,
    "softplus": CFFNN_SOFTPLUS, "gelu": CFFNN_GELU, "softmax": CFFNN_SOFTMAX,
    "exp": CFFNN_EXP,
}
LOSS_CODES = {
    "squared_error": CFFNN_SQUARED_ERROR, "binary_log_loss": CFFNN_BINARY_LOG_LOSS,
    "log_loss": CFFNN_LOG_LOSS, "poisson": CFFNN_POISSON,
}

DEF MIN_BLOCK_ROWS = 16             # block sizes: see block_rows()
DEF LARGE_NETWORK_BLOCK_ROWS = 64
DEF MAX_BLOCK_ROWS = 512
DEF SMALL_NETWORK_MACS = 16384      # multiply-adds per row below which a network is small
DEF PARALLEL_MIN_MACS = 1000000     # below this many multiply-adds a team costs more than it saves
DEF EPOCH_TEAM_MIN_MACS = 131072    # the same for one minibatch of an epoch (epoch_team_size)
DEF GRADIENT_TASK_MACS = 3000000    # weight-gradient tasks: see gradient_task_rows()
DEF MIN_GRADIENT_ROWS = 64
DEF SMALL_GRADIENT_ROWS = 16
DEF MAX_LAYERS = 64                 # per-block pointer arrays live on the stack
DEF ROW_KERNEL_MAX_ROWS = 4         # up to this many rows, rowkernel.h instead of GEMM
DEF COLUMN_SPLIT_MAX_ROWS = 6       # ... up to this many, layer 0 in column halves
DEF ROW_SPLIT_MIN_BYTES = 131072    # weights of layers 0 and 1 from which rows go in halves
DEF BATCH_SPLIT_MIN_MACS = 262144   # multiply-adds from which a batch goes in halves
DEF BATCH_SPLIT_MAX_MACS = 41943040  # ... up to which two even blocks do (above: a team)
DEF UPDATE_CHUNK = 16384            # at most this many parameters per chunk of the update
DEF STREAMED_UPDATE_BYTES = 524288  # a team may stream Adam's new parameters from this
                                    # size (half a Zen 4 core's L2; measured at 940 KB)
DEF STREAM_BELOW_TEAM_GAIN = 1.5    # ... when its last epoch gained less than this over
                                    # one thread (judge_team)
DEF OWNED_PARTS = 2                 # layer 0 owned by threads in this many parts of its rows
DEF OWNED_MIN_BYTES = 524288        # ... when its float32 weights take this many bytes
                                    # (owned_parts)
DEF MIN_TEAM_COOLDOWN = 4           # epochs on one thread after a team went solo, doubling
DEF MAX_TEAM_COOLDOWN = 256         # up to this while it keeps happening (epoch_loop)

MAX_N_LAYERS = MAX_LAYERS


cdef struct Layout:
    # Borrowed from the Network's arrays; n_layers = L.
    Py_ssize_t n_layers
    const Py_ssize_t* sizes            # (L + 1,) widths, input first
    const int* codes                   # (L,) activation codes, output last
    const Py_ssize_t* weight_offsets   # (L,) start of W[k] in params
    const Py_ssize_t* bias_offsets     # (L,) start of b[k] in params


cdef inline Py_ssize_t macs_per_row(const Layout* net) noexcept nogil:
    cdef Py_ssize_t k, macs = 0
    for k in range(net.n_layers):
        macs += net.sizes[k] * net.sizes[k + 1]
    return macs


cdef inline bint split_for_team(const Layout* net, Py_ssize_t n_rows) noexcept nogil:
    """Whether a batch of n_rows of a small network is split finer than a large network's
    would be (block_rows, gradient_task_rows): when it has enough multiply-adds for an
    epoch's team. Otherwise the pieces would only cost calls (the digits task, whose
    minibatches run on one thread: two blocks and twice the tasks cost 3-5% there)."""
    cdef Py_ssize_t macs = macs_per_row(net)
    return macs < SMALL_NETWORK_MACS and n_rows * macs >= EPOCH_TEAM_MIN_MACS


cdef inline Py_ssize_t block_rows(const Layout* net, Py_ssize_t n_rows) noexcept nogil:
    """Rows per block for a batch of n_rows: a function of the network and n_rows, never
    of the team.

    n_rows / 8 rounded up to a multiple of 64, within [64, 512]: at least 8 blocks for
    threads to share when there are 512 rows or more, and few enough GEMM calls (each
    repacks W) to keep BLAS efficient; measured on 784-256-128-10, 10000 rows, 1 thread:
    84 ms with 64-row blocks, 67 ms with 512-row blocks. Small networks (whose products
    go to smallgemm.h, which packs nothing) split a minibatch of up to 128 rows in two
    blocks of a multiple of 16 rows, so that two threads can share it, when it is worth
    a team (split_for_team).
    """
    cdef Py_ssize_t rows = ((n_rows // 8 + LARGE_NETWORK_BLOCK_ROWS - 1)
                            // LARGE_NETWORK_BLOCK_ROWS * LARGE_NETWORK_BLOCK_ROWS)
    rows = min(MAX_BLOCK_ROWS, max(LARGE_NETWORK_BLOCK_ROWS, rows))
    if split_for_team(net, n_rows):
        rows = min(rows, max(MIN_BLOCK_ROWS, ((n_rows + 1) // 2 + MIN_BLOCK_ROWS - 1)
                                             // MIN_BLOCK_ROWS * MIN_BLOCK_ROWS))
    return rows


cdef inline Py_ssize_t block_count(const Layout* net, Py_ssize_t n_rows) noexcept nogil:
    """Blocks of block_rows rows in a batch of n_rows (the last may be shorter)."""
    cdef Py_ssize_t rows_per_block = block_rows(net, n_rows)
    return (n_rows + rows_per_block - 1) // rows_per_block


# Layer 0 owned by parts of its rows. In a team's minibatch, every thread's blocks of rows
# read all of W[0] in the forward pass, and the optimiser's update then rewrites it, each
# thread a share. A store to a cache line the other core has read must first take the
# line away from that core, which on this project's 2-vCPU machine stalled Adam's update
# of a Fashion-MNIST network: 66 ms of wall time an epoch on 2 threads against 45 ms on
# 1. A C microbenchmark of the update alone (235k parameters, each thread updating its
# own half after a "forward" read): 48 us a step when each thread had read only its
# half, 176 us when each had read all of it, 860-910 us in the host's slow spells. Nor
# may the threads' shares interleave finely: halves of every 1 KB row (as columns of W[0]
# would be) took 181-196 us, of 4 KB rows 125 us, of 16 KB rows 53-57 us (the hardware
# prefetchers read on into the other thread's lines).
# So where W[0] is large, its rows (the inputs) are cut into OWNED_PARTS contiguous parts,
# each owned by one thread for the whole batch: the thread gathers its inputs' columns of
# the batch, computes its part's product with W[0] for every row (a partial sum: phase
# 0 of train_thread), its rows of the weight gradient (phase 2) and their update
# (update_thread), and no other thread reads or writes those weights. The blocks of
# phase 1 add the parts' partial sums, in part order, then the bias. A function of the
# network and batch, never of the team, so one thread sums the same way: its results
# differ from the blocks' single sums by rounding only, and not at all between teams.
cdef bint own_layer0 = True                         # set_owned_layer0
cdef Py_ssize_t owned_min_bytes = OWNED_MIN_BYTES   # set_owned_layer0 (tests: smaller)


cdef inline Py_ssize_t layer0_part_capacity(const Layout* net) noexcept nogil:
    """The parts of rows that layer 0 can be cut into (owned_parts), 0 if none: a layer
    that is not the output layer, of at least 16 rows a part. A training workspace has
    room for their partial sums and flags (train_values, train_doubles)."""
    if net.n_layers < 2 or net.sizes[0] < 16 * OWNED_PARTS:
        return 0
    return OWNED_PARTS


cdef inline Py_ssize_t owned_parts(const Layout* net, Py_ssize_t n_rows,
                                   Py_ssize_t itemsize) noexcept nogil:
    """The parts into which W[0]'s rows are cut for a batch of n_rows, each owned by one
    thread (see above), or 0 for the usual blocks of rows.

    A function of the network, n_rows and the dtype, never of the team: float32 on a CPU
    with smallgemm.h (AVX2, FMA), whose products of a part take the same sums whatever
    thread runs them; a batch whose weight gradient also goes through smallgemm.h (at
    most 256 rows); and W[0] of at least owned_min_bytes."""
    if (not own_layer0 or itemsize != sizeof(float) or n_rows < 1
            or not cffnn_small_gemm_available()
            or not cffnn_medium_gemm_pays(LARGE_NETWORK_BLOCK_ROWS, net.sizes[1])
            or not cffnn_gradient_gemm_pays(net.sizes[1], n_rows)
            or net.sizes[0] * net.sizes[1] * itemsize < owned_min_bytes):
        return 0
    return layer0_part_capacity(net)


cdef inline Py_ssize_t part_start(const Layout* net, Py_ssize_t n_parts,
                                  Py_ssize_t part) noexcept nogil:
    """The first row of W[0] in part `part` of n_parts (n_0 for part n_parts): parts as
    even as the rows allow, cut where a part's weights, gradient and state start on a
    cache line (16 float32 values) in buffers that do: at a multiple of
    16 / gcd(n_1, 16) rows. (Cut at multiples of 16 rows, Fashion-MNIST's 784 inputs made
    parts of 384 and 400 rows; the thread of the smaller waited 20 ms an epoch at the
    barrier after phase 0, of a 0.34 s epoch.)"""
    cdef Py_ssize_t divisor = net.sizes[1], other = 16, rest, step
    if part >= n_parts:
        return net.sizes[0]
    while other != 0:                 # divisor = gcd(n_1, 16) (Euclid)
        rest = divisor % other
        divisor = other
        other = rest
    step = 16 // divisor
    return (net.sizes[0] * part // n_parts + step // 2) // step * step


cdef inline void owned_part_range(Py_ssize_t n_parts, int thread, int n_threads,
                                  Py_ssize_t* q0, Py_ssize_t* q1) noexcept nogil:
    """Parts [q0, q1) of layer 0 that thread `thread` of a team of n_threads owns: its
    contiguous share of the n_parts (none when there are more threads than parts)."""
    q0[0] = thread * n_parts // n_threads
    q1[0] = (thread + 1) * n_parts // n_threads


cdef inline Py_ssize_t partial_stride(Py_ssize_t n_rows, Py_ssize_t width) noexcept nogil:
    """Values between the partial sums of two parts in a workspace (train_values): n_rows
    rows of width, rounded up to a whole number of cache lines of float32."""
    return (n_rows * width + 15) // 16 * 16


cdef void gather_columns(const floating* x, Py_ssize_t n_in, const Py_ssize_t* order,
                         Py_ssize_t n_rows, Py_ssize_t c0, Py_ssize_t c1,
                         floating* out) noexcept nogil:
    """out[r] = x[order[r], c0:c1] for r < n_rows, out of shape (n_rows, c1 - c0): the
    inputs of a thread's parts of layer 0 (train_thread's phase 0)."""
    cdef Py_ssize_t r, width = c1 - c0
    for r in range(n_rows):
        memcpy(out + r * width, x + order[r] * n_in + c0, width * sizeof(floating))


cdef void layer0_partial_sums(const Layout* net, const float* params, const float* x,
                              Py_ssize_t ldx, Py_ssize_t n_rows, Py_ssize_t i0,
                              Py_ssize_t i1, float* partial) noexcept nogil:
    """partial = X[:, i0:i1] W[0][i0:i1, :] for all n_rows rows (no bias), into partial
    (n_rows, n_1); x points at X[0, i0], rows ldx apart. In chunks of
    LARGE_NETWORK_BLOCK_ROWS rows through gemm_bias (smallgemm.h, skipping zeros of X:
    sparserows.h), whose every element is one chain of FMAs over the part's rows."""
    cdef Py_ssize_t n_out = net.sizes[1], r0, rows
    cdef const float* weights = params + net.weight_offsets[0] + i0 * n_out
    for r0 in range(0, n_rows, LARGE_NETWORK_BLOCK_ROWS):
        rows = min(<Py_ssize_t> LARGE_NETWORK_BLOCK_ROWS, n_rows - r0)
        if not gemm_bias(<int> rows, <int> n_out, <int> (i1 - i0), x + r0 * ldx, <int> ldx,
                         weights, <int> n_out, partial + r0 * n_out, <int> n_out, NULL,
                         False):
            # (not reached while owned_parts holds: its products take gemm_bias)
            gemm(False, False, <int> rows, <int> n_out, <int> (i1 - i0), <float> 1,
                 x + r0 * ldx, <int> ldx, weights, <int> n_out, <float> 0,
                 partial + r0 * n_out, <int> n_out)


# OpenMP after fork(): GNU's runtime keeps a thread's team for its next parallel region,
# and a child forked from a process whose thread had run a team finds that team's
# threads gone and waits for them for ever (measured: a forward pass of 200 rows in a
# multiprocessing child hung, at c01a97f and before this). So a child of a
# process that ran a team runs none: every call there works on one thread, plus the
# helper thread of helper.h, which the child starts afresh (pthread_atfork).
cdef bint teams_started = False     # this process has run an OpenMP team
cdef bint teams_forbidden = False   # ... its parent had: no teams here


def _after_fork_in_child():
    global teams_forbidden
    if teams_started:
        teams_forbidden = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def openmp_teams_allowed():
    """False in a process forked from one that ran OpenMP teams (see above)."""
    return not teams_forbidden


cdef inline int threads_worth(const Layout* net, Py_ssize_t n_rows, int n_threads,
                              Py_ssize_t min_macs) noexcept nogil:
    """Threads worth a team for a batch of n_rows: 1 when it is one block or under
    min_macs multiply-adds, never more than its blocks; 1 in a forked child of a process
    that ran teams (teams_forbidden). Notes that a team will run (teams_started)."""
    global teams_started
    cdef Py_ssize_t n_blocks = block_count(net, n_rows)
    if (n_threads <= 1 or n_blocks < 2 or n_rows * macs_per_row(net) < min_macs
            or teams_forbidden):
        return 1
    teams_started = True
    return <int> (n_threads if n_threads < n_blocks else n_blocks)


cdef inline int team_size(const Layout* net, Py_ssize_t n_rows, int n_threads) noexcept nogil:
    """Threads worth starting for one call on n_rows: 1 for small work."""
    return threads_worth(net, n_rows, n_threads, PARALLEL_MIN_MACS)


cdef inline bint few_rows_by_gemm(const Layout* net, const floating* x, Py_ssize_t n_rows,
                                  int* scratch) noexcept nogil:
    """Whether layers 0 and 1 of a few float32 rows of a large network (cut at split,
    first_layers_in_halves) go through smallgemm.h, all rows at once, instead of
    rowkernel.h, a row at a time: when the rows' inputs are dense enough.

    rowkernel.h reads W once a row, its rows of nonzero inputs only (all of them unless
    a quarter are 0, cffnn_rows_used); smallgemm.h reads W once for up to 4 rows, but
    every row of it. Measured in C, layer 0 of 784-256-128-10: rowkernel.h 11.4 us a
    dense row (6.2 with half the inputs 0), smallgemm.h 23.1-23.7 us for 1-4 dense rows
    (24.5-27.5 half 0): so smallgemm.h when the rows' reads of W add up to more than two
    dense rows' (3-4 dense rows: 33.1 and 43.4 us against 23.7). A function of x, never
    of the threads, so that one thread and two sum alike. Every product of the halves
    must take smallgemm.h (gemm_bias): layer 0's halves (layer0_column_split) and layer
    1's shares, n2 >= 16 (cffnn_medium_gemm_pays). scratch: CFFNN_ROW_SCRATCH(n0) ints.
    """
    cdef Py_ssize_t row, n_in = net.sizes[0], nonzero = 0, reads = 0
    if (floating is double or n_rows < 3 or layer0_column_split(net, n_rows) == 0
            or not cffnn_medium_gemm_pays(n_rows, net.sizes[2])):
        return False
    for row in range(n_rows):
        if floating is float:
            nonzero = cffnn_count_nonzero_f(x + row * n_in, n_in, scratch)
        reads += n_in if 4 * nonzero > 3 * n_in else nonzero
    return reads > 2 * n_in


cdef void forward_block(const Layout* net, const floating* params,
                        const floating* x, Py_ssize_t n_rows,
                        floating** outputs, floating** preactivations,
                        bint stop_at_logits, bint may_share,
                        bint gemm_only) noexcept nogil:
    """Z[k] = h_k(Z[k-1] W[k] + b[k]) for one block of rows, into outputs[k].

    outputs[k] has room for (n_rows, n_{k+1}); preactivations[k] is NULL or receives A[k].
    With stop_at_logits the last layer is left as A[L-1] (the loss works on logits).
    Up to ROW_KERNEL_MAX_ROWS rows go through rowkernel.h instead of GEMM (unless
    gemm_only: a half of a larger batch, helper_split_row), layers 0 and 1 in halves when
    the network is large enough (row_split_column), on two threads when may_share and
    the helper thread is at hand (first_layers_in_halves); there 3-4 dense float32 rows
    take smallgemm.h for those two layers instead (few_rows_by_gemm). 5-6 float32 rows,
    one GEMM tile, share layer 0's columns with the helper when may_share
    (layer0_column_split), with the bits of one call.
    """
    cdef Py_ssize_t k, row, n_in, n_out, max_in = 0, first = 0, split = 0, scratch_ints
    cdef int code
    cdef const floating* previous = x
    cdef const floating* weights
    cdef const floating* biases
    cdef int* nonzero = NULL     # rowkernel.h's scratch: CFFNN_ROW_SCRATCH(max_k n_k) ints
    cdef floating* partial = NULL
    cdef void* row_scratch = NULL
    cdef bint fuse_relu
    cdef Py_ssize_t column_split = 0
    if (floating is float and may_share and not gemm_only
            and ROW_KERNEL_MAX_ROWS < n_rows <= COLUMN_SPLIT_MAX_ROWS):
        column_split = layer0_column_split(net, n_rows)
    if n_rows <= ROW_KERNEL_MAX_ROWS and not gemm_only:
        for k in range(net.n_layers):
            max_in = max(max_in, net.sizes[k])
        scratch_ints = CFFNN_ROW_SCRATCH(max_in)
        split = row_split_column(net, sizeof(floating))
        if split > 0:   # + the second half's share of layer 1, and its own row list
            row_scratch = malloc(n_rows * net.sizes[2] * sizeof(floating)
                                 + 2 * scratch_ints * sizeof(int))
            partial = <floating*> row_scratch
            if row_scratch != NULL:
                nonzero = <int*> (partial + n_rows * net.sizes[2])
        else:
            row_scratch = malloc(scratch_ints * sizeof(int))
            nonzero = <int*> row_scratch
        # NULL: GEMM below
    if nonzero != NULL and split > 0:
        first_layers_in_halves(net, params, x, n_rows, split, outputs[0], preactivations[0],
                               outputs[1], partial, nonzero, nonzero + scratch_ints,
                               may_share, few_rows_by_gemm(net, x, n_rows, nonzero))
        code = net.codes[1]
        if stop_at_logits and net.n_layers == 2:
            code = CFFNN_IDENTITY
        bias_activation(outputs[1], NULL, n_rows, net.sizes[2], code, preactivations[1])
        first = 2
        previous = outputs[1]
    for k in range(first, net.n_layers):
        n_in = net.sizes[k]
        n_out = net.sizes[k + 1]
        weights = params + net.weight_offsets[k]
        biases = params + net.bias_offsets[k]
        code = net.codes[k]
        if stop_at_logits and k == net.n_layers - 1:
            code = CFFNN_IDENTITY
        if nonzero != NULL:
            for row in range(n_rows):
                row_times_matrix(previous + row * n_in, weights, n_out, biases,
                                 outputs[k] + row * n_out, n_in, n_out, nonzero)
            biases = NULL   # already added
        else:
            fuse_relu = code == CFFNN_RELU and preactivations[k] == NULL
            if k == 0 and column_split > 0 and floating is float:
                # the same sums per column as the call below (layer0_column_split)
                if not gemm_bias_in_column_halves(
                        <int> n_rows, <int> n_out, <int> n_in, <const float*> previous,
                        <const float*> weights, <float*> outputs[k], <const float*> biases,
                        fuse_relu, <int> column_split):
                    gemm_bias(<int> n_rows, <int> n_out, <int> n_in, previous, <int> n_in,
                              weights, <int> n_out, outputs[k], <int> n_out, biases,
                              fuse_relu)
                    cffnn_helper_note_end()   # (the helper was not at hand)
                biases = NULL
                if fuse_relu:
                    code = CFFNN_IDENTITY
            elif gemm_bias(<int> n_rows, <int> n_out, <int> n_in, previous, <int> n_in,
                           weights, <int> n_out, outputs[k], <int> n_out, biases, fuse_relu):
                biases = NULL               # added, and the ReLU applied, in registers
                if fuse_relu:
                    code = CFFNN_IDENTITY
            else:
                gemm(False, False, <int> n_rows, <int> n_out, <int> n_in,
                     <floating> 1, previous, <int> n_in, weights, <int> n_out,
                     <floating> 0, outputs[k], <int> n_out)
        bias_activation(outputs[k], biases, n_rows, n_out, code, preactivations[k])
        previous = outputs[k]
    free(row_scratch)


cdef inline void row_times_matrix(const floating* x, const floating* weights, Py_ssize_t ldw,
                                  const floating* biases, floating* y, Py_ssize_t n_in,
                                  Py_ssize_t n_out, int* nonzero) noexcept nogil:
    """y (n_out,) = b + x W, row i of W at weights + i * ldw (rowkernel.h)."""
    if floating is float:
        cffnn_row_times_matrix_f(x, weights, ldw, biases, y, n_in, n_out, nonzero)
    else:
        cffnn_row_times_matrix_d(x, weights, ldw, biases, y, n_in, n_out, nonzero)


# --------------------------------------------------------------------------------------
# a few rows on two threads: layers 0 and 1 in halves (include/cffnn/helper.h)
# --------------------------------------------------------------------------------------

cdef inline Py_ssize_t row_split_column(const Layout* net, Py_ssize_t itemsize) noexcept nogil:
    """The column of layer 0 at which a forward pass of a few rows cuts it in two, or 0
    for no cut: a function of the network only, so that every pass of it sums alike.

    Cut when layers 0 and 1 hold ROW_SPLIT_MIN_BYTES of weights or more: a row reads
    them once, and two cores share that; below, the helper's post and join cost more than
    it saves. Measured, float32 one-row calls, 1-thread/2-thread time: 0.87 at 41 KB
    (100-64-64-10), 0.94 at 99 KB, 1.16 at 160 KB (256-128-64-10), 1.33 at 288 KB,
    1.56 at 912 KB (784-256-128-10). The cut is a multiple of 16 (whole AVX2 registers
    and cache lines) near the middle.
    """
    if net.n_layers < 2 or net.sizes[1] < 32:
        return 0
    if (net.sizes[0] + net.sizes[2]) * net.sizes[1] * itemsize < ROW_SPLIT_MIN_BYTES:
        return 0
    return net.sizes[1] // 32 * 16


cdef void first_layers_half(const Layout* net, const floating* params, const floating* x,
                            Py_ssize_t n_rows, Py_ssize_t c0, Py_ssize_t c1, bint layer0,
                            bint by_gemm, floating* hidden, floating* hidden_preactivation,
                            floating* share, int* nonzero) noexcept nogil:
    """Columns [c0, c1) of layer 0 and their share of layer 1, for n_rows rows of x:

        hidden[:, c0:c1] = h_0(x W0[:, c0:c1] + b0[c0:c1])    (only if layer0: else given)
        share = hidden[:, c0:c1] W1[c0:c1, :] (+ b1 when c0 == 0)

    hidden: (n_rows, n1); hidden_preactivation: NULL or (n_rows, n1), receives A0's
    columns; share: (n_rows, n2). Each column of hidden, and share, is summed the same way
    whichever thread runs this and whether layer 0 came in one pass (layer0 False):
    row by row through rowkernel.h, or with by_gemm (few_rows_by_gemm) all rows at once
    through smallgemm.h, whose sums do not depend on the columns taken either.
    """
    cdef Py_ssize_t row, n0 = net.sizes[0], n1 = net.sizes[1], n2 = net.sizes[2]
    cdef const floating* W0 = params + net.weight_offsets[0]
    cdef const floating* b0 = params + net.bias_offsets[0]
    cdef const floating* W1 = params + net.weight_offsets[1]
    cdef const floating* b1 = params + net.bias_offsets[1] if c0 == 0 else NULL
    cdef floating* z
    if layer0 and by_gemm:
        gemm_bias(<int> n_rows, <int> (c1 - c0), <int> n0, x, <int> n0, W0 + c0, <int> n1,
                  hidden + c0, <int> n1, b0 + c0, False)
    for row in range(n_rows):
        z = hidden + row * n1 + c0
        if layer0 and not by_gemm:
            row_times_matrix(x + row * n0, W0 + c0, n1, b0 + c0, z, n0, c1 - c0, nonzero)
        bias_activation(z, NULL, 1, c1 - c0, net.codes[0],
                        hidden_preactivation + row * n1 + c0
                        if hidden_preactivation != NULL else NULL)
        if not by_gemm:
            row_times_matrix(z, W1 + c0 * n2, n2, b1, share + row * n2, c1 - c0, n2, nonzero)
    if by_gemm:
        gemm_bias(<int> n_rows, <int> n2, <int> (c1 - c0), hidden + c0, <int> n1,
                  W1 + c0 * n2, <int> n2, share, <int> n2, b1, False)


cdef struct RowHalf:
    # first_layers_half's arguments for the second half, as the helper thread gets them
    const Layout* net
    const void* params
    const void* x
    Py_ssize_t n_rows, c0, c1
    bint by_gemm
    void* hidden
    void* hidden_preactivation
    void* share
    int* nonzero
    bint is_double


cdef void second_half_task(void* arg) noexcept nogil:
    """The helper thread's task (helper.h): first_layers_half for a RowHalf."""
    cdef RowHalf* half = <RowHalf*> arg
    if half.is_double:
        first_layers_half(half.net, <const double*> half.params, <const double*> half.x,
                          half.n_rows, half.c0, half.c1, True, half.by_gemm,
                          <double*> half.hidden,
                          <double*> half.hidden_preactivation, <double*> half.share,
                          half.nonzero)
    else:
        first_layers_half(half.net, <const float*> half.params, <const float*> half.x,
                          half.n_rows, half.c0, half.c1, True, half.by_gemm,
                          <float*> half.hidden,
                          <float*> half.hidden_preactivation, <float*> half.share,
                          half.nonzero)


cdef void first_layers_in_halves(const Layout* net, const floating* params,
                                 const floating* x, Py_ssize_t n_rows, Py_ssize_t split,
                                 floating* hidden, floating* hidden_preactivation,
                                 floating* out, floating* second_share, int* nonzero,
                                 int* second_nonzero, bint may_share,
                                 bint by_gemm) noexcept nogil:
    """Layers 0 and 1 of a few rows, the second without its activation:

        hidden = h_0(x W0 + b0)                      (n_rows, n1)
        out = (hidden[:, :split] W1[:split] + b1) + hidden[:, split:] W1[split:]

    Why in halves: the weights of these layers are most of a large network's (0.93 MB of
    0.94 for 784-256-128-10), and a row reads each once. With may_share, the helper thread
    takes columns [split, n1) of layer 0 and rows [split, n1) of W1 (helper.h), each half
    of the weights read by one core: measured in C, 9.3 us instead of 17.3 for a dense
    row of that network. Otherwise, or when the helper is not at hand, this thread runs
    layer 0 in one pass (the same sums per column, in the same order, as the halves:
    rowkernel.h adds the rows in the same chunks whatever the columns) and then the two
    shares of layer 1: the result is bit for bit the same either way. by_gemm: the
    products go through smallgemm.h instead of rowkernel.h (few_rows_by_gemm).
    """
    cdef Py_ssize_t n0 = net.sizes[0], n1 = net.sizes[1], n2 = net.sizes[2], i
    cdef RowHalf second
    second.net = net
    second.params = params
    second.x = x
    second.n_rows = n_rows
    second.c0 = split
    second.c1 = n1
    second.by_gemm = by_gemm
    second.hidden = hidden
    second.hidden_preactivation = hidden_preactivation
    second.share = second_share
    second.nonzero = second_nonzero
    second.is_double = floating is double
    if may_share and cffnn_helper_post(second_half_task, &second):
        first_layers_half(net, params, x, n_rows, 0, split, True, by_gemm, hidden,
                          hidden_preactivation, out, nonzero)
        cffnn_helper_join()      # the second half has run, here or on the helper
    else:
        if by_gemm:
            gemm_bias(<int> n_rows, <int> n1, <int> n0, x, <int> n0,
                      params + net.weight_offsets[0], <int> n1, hidden, <int> n1,
                      params + net.bias_offsets[0], False)
        else:
            for i in range(n_rows):
                row_times_matrix(x + i * n0, params + net.weight_offsets[0], n1,
                                 params + net.bias_offsets[0], hidden + i * n1, n0, n1,
                                 nonzero)
        first_layers_half(net, params, x, n_rows, 0, split, False, by_gemm, hidden,
                          hidden_preactivation, out, nonzero)
        first_layers_half(net, params, x, n_rows, split, n1, False, by_gemm, hidden,
                          hidden_preactivation, second_share, nonzero)
        if may_share:
            cffnn_helper_note_end()
    for i in range(n_rows * n2):
        out[i] += second_share[i]


# --------------------------------------------------------------------------------------
# 5-6 rows on two threads: layer 0's columns in halves (include/cffnn/helper.h)
# --------------------------------------------------------------------------------------

cdef inline Py_ssize_t layer0_column_split(const Layout* net, Py_ssize_t n_rows) noexcept nogil:
    """The column at which a forward pass of n_rows float32 rows cuts layer 0 for
    helper.h's thread through smallgemm.h, or 0 for no cut: where row_split_column cuts a
    large network and both halves take smallgemm.h (gemm_bias). For 5-6 rows (one tile
    of smallgemm.h, which helper_split_row does not cut by rows) layer 0 alone is cut so;
    3-4 dense rows also cut layer 1 (few_rows_by_gemm). Each column of smallgemm.h is one chain of FMAs whatever
    columns share the call, and the cut is a multiple of 16 (whole panels), so the halves
    give the bits of one call: one thread need not cut. Measured, 784-256-128-10,
    1-thread/2-thread time (before, 5-6 rows ran on one thread whatever n_threads):
    dense rows 1.50 (5 rows) and 1.54 (6), Fashion-MNIST rows 1.71 and 1.35. (Cutting
    layer 1 as first_layers_in_halves does would change its sums, and cost one thread
    3-11%.)
    """
    cdef Py_ssize_t split = row_split_column(net, sizeof(float))
    if (split == 0 or not cffnn_small_gemm_available()
            or not cffnn_medium_gemm_pays(n_rows, split)
            or not cffnn_medium_gemm_pays(n_rows, net.sizes[1] - split)):
        return 0
    return split


cdef struct ColumnHalf:
    # gemm_bias's arguments for columns [c0, n_out) of a layer, as the helper thread gets
    # them (float32 only: smallgemm.h's medium products are)
    int n_rows, n_out, n_in, c0
    const float* x
    const float* weights
    const float* biases
    float* out
    bint relu


cdef void column_half_task(void* arg) noexcept nogil:
    """The helper thread's task (helper.h): gemm_bias on a ColumnHalf's columns."""
    cdef ColumnHalf* half = <ColumnHalf*> arg
    gemm_bias(half.n_rows, half.n_out - half.c0, half.n_in, half.x, half.n_in,
              half.weights + half.c0, half.n_out, half.out + half.c0, half.n_out,
              half.biases + half.c0, half.relu)


cdef bint gemm_bias_in_column_halves(int n_rows, int n_out, int n_in, const float* x,
                                     const float* weights, float* out,
                                     const float* biases, bint relu,
                                     int split) noexcept nogil:
    """gemm_bias (out = x W + b, then ReLU with relu; biases not NULL) with columns
    [split, n_out) on helper.h's thread; False, having done nothing, when the helper is
    not at hand (then call gemm_bias on all columns: the same bits)."""
    cdef ColumnHalf second
    second.n_rows = n_rows
    second.n_out = n_out
    second.n_in = n_in
    second.c0 = split
    second.x = x
    second.weights = weights
    second.biases = biases
    second.out = out
    second.relu = relu
    if not cffnn_helper_post(column_half_task, &second):
        return False
    gemm_bias(n_rows, split, n_in, x, n_in, weights, n_out, out, n_out, biases, relu)
    cffnn_helper_join()      # the second half has run, here or on the helper
    return True


# --------------------------------------------------------------------------------------
# a batch of one or two blocks on two threads: the helper takes its second half
# --------------------------------------------------------------------------------------

cdef inline Py_ssize_t helper_split_row(const Layout* net, Py_ssize_t n_rows,
                                        bint with_targets, int n_threads,
                                        Py_ssize_t itemsize) noexcept nogil:
    """The row at which forward_all cuts a batch of n_rows in two, the second half for
    helper.h's thread, or 0 for no cut. A function of the network and n_rows, given
    n_threads > 1 and the work.

    A batch of one or two blocks (up to 128 rows of a large network, block_rows) gives
    an OpenMP team one block or two to share, and waking its threads takes ~26 us here
    (team.h): measured on 64-64-64-10 at 128 rows, 2 threads took 1.5x as long as 1. The
    helper thread, spinning between calls, starts in about a microsecond. So with
    BATCH_SPLIT_MIN_MACS multiply-adds or more (below, the post and join cost more than
    half the work saves), it takes:
    - half of the rows, from 7 rows (up to 6 are one tile of smallgemm.h, which costs
      about what a half's tile of 4 does: 784-256-128-10 at 5-6 rows old/new 0.98-1.00,
      at 7-9 rows 1.53-1.57), when the last block has more than ROW_KERNEL_MAX_ROWS rows
      (so that on one thread every row goes through GEMM; rowkernel.h sums differently,
      and the halves, even of 4 rows, take GEMM too: gemm_only) and the batch
      is float32 with every layer's product in smallgemm.h (forward_product_rowwise),
      which computes each row alike whichever rows share the call, and the activations
      work elementwise or a row at a time: each row comes out bit for bit as from the
      blocks on one thread, which therefore never cuts (tests/test_batch_halves.py
      checks every activation). BLAS, which float64 uses, promises no such thing. Not
      with targets: a block's loss is one sum over its rows.
    - else the second of two blocks, when it has at least half the rows of the first
      (the halves of a call should take about as long: helper.h judges whether a thread
      lost its core by comparing them); the blocks are the same on one thread, so are
      the bits.
    Two such even blocks of more than BATCH_SPLIT_MAX_MACS multiply-adds (40M: more
    than 128 rows of 784-256-128-10, ~0.4 ms a half) go to an OpenMP team instead: there
    the wake-up is a small part of the work. The bound was 8M, when a lone late half
    put the helper off for a cooldown (helper.h's strike window ended that): then the
    team was as fast as the helper at 128 rows of 784-256-128-10. Measured again with
    the window (the team's waking thread took 0.2 ms and more on this virtual machine,
    whose idle vCPUs sleep): 96 rows 505-533 us a call on the team, 249-332 us with the
    helper; 128 rows 513-546 us and 403-457 us (float32, loops of 200 calls);
    benchmarks/small_batch.py, 1-thread/2-thread time: float32 96 rows 1.19 -> 1.61-1.87,
    128 rows 1.37-1.42 -> 1.35-1.60, float64 96 rows 1.36 -> 1.43, 128 rows 1.78 ->
    1.70; beside a busy process, 128 rows 0.96 -> 1.07.
    """
    cdef Py_ssize_t k, rows_per_block = block_rows(net, n_rows)
    cdef Py_ssize_t n_blocks = block_count(net, n_rows)
    cdef Py_ssize_t macs = n_rows * macs_per_row(net)
    cdef bint rowwise = (not with_targets and itemsize == sizeof(float) and n_rows > 6
                         and n_rows - (n_blocks - 1) * rows_per_block > ROW_KERNEL_MAX_ROWS)
    cdef bint even_blocks = n_blocks == 2 and 2 * (n_rows - rows_per_block) >= rows_per_block
    if n_threads <= 1 or macs < BATCH_SPLIT_MIN_MACS or n_blocks > 2:
        return 0
    if even_blocks and macs > BATCH_SPLIT_MAX_MACS:
        return 0          # an OpenMP team shares them as well
    k = 0
    while rowwise and k < net.n_layers:   # the blocks' products, and so the halves'
        rowwise = forward_product_rowwise(min(n_rows, rows_per_block), net.sizes[k + 1],
                                          net.sizes[k])
        k += 1
    if rowwise:
        return (n_rows + 1) // 2
    return rows_per_block if even_blocks else 0


cdef struct BatchHalf:
    # forward_rows's arguments for the second half of a batch, as the helper thread gets
    # them, and what it returns
    const Layout* net
    const void* params
    const void* x
    Py_ssize_t row_start, row_stop
    void* out
    const void* targets
    const double* sample_weight
    double inv_weight_sum
    int loss
    void* scratch
    Py_ssize_t max_width
    bint is_double
    double result                   # forward_rows's return value (the half's loss)


cdef void batch_half_task(void* arg) noexcept nogil:
    """The helper thread's task (helper.h): forward_rows for a BatchHalf."""
    cdef BatchHalf* half = <BatchHalf*> arg
    if half.is_double:
        half.result = forward_rows(
            half.net, <const double*> half.params, <const double*> half.x, half.row_start,
            half.row_stop, <double*> half.out, <const double*> half.targets,
            half.sample_weight, half.inv_weight_sum, half.loss, <double*> half.scratch,
            half.max_width, False, True)
    else:
        half.result = forward_rows(
            half.net, <const float*> half.params, <const float*> half.x, half.row_start,
            half.row_stop, <float*> half.out, <const float*> half.targets,
            half.sample_weight, half.inv_weight_sum, half.loss, <float*> half.scratch,
            half.max_width, False, True)


cdef bint forward_in_halves(const Layout* net, const floating* params, const floating* x,
                            Py_ssize_t n_rows, Py_ssize_t split, floating* out,
                            const floating* targets, const double* sample_weight,
                            double inv_weight_sum, int loss, floating* scratch,
                            floating* second_scratch, Py_ssize_t max_width,
                            double* losses) noexcept nogil:
    """forward_rows for rows [0, split) here and rows [split, n_rows) on the helper
    thread (helper_split_row), their losses into losses[0] and losses[1]; False, having
    done nothing, when the helper is not at hand (then run the blocks as on one thread).
    scratch and second_scratch: forward_rows's scratch for each half."""
    cdef BatchHalf second
    second.net = net
    second.params = params
    second.x = x
    second.row_start = split
    second.row_stop = n_rows
    second.out = out
    second.targets = targets
    second.sample_weight = sample_weight
    second.inv_weight_sum = inv_weight_sum
    second.loss = loss
    second.scratch = second_scratch
    second.max_width = max_width
    second.is_double = floating is double
    if not cffnn_helper_post(batch_half_task, &second):
        return False
    losses[0] = forward_rows(net, params, x, 0, split, out, targets, sample_weight,
                             inv_weight_sum, loss, scratch, max_width, False, True)
    cffnn_helper_join()      # the second half has run, here or on the helper
    losses[1] = second.result
    return True


cdef void backward_block(const Layout* net, const floating* params, Py_ssize_t n_rows,
                         floating** activations, floating** deltas,
                         floating** preactivations) noexcept nogil:
    """delta[k-1] = h'_{k-1} * (delta[k] W[k]^T) for k = L-1 .. 1, on one block of rows."""
    cdef Py_ssize_t k, n_in, n_out
    for k in range(net.n_layers - 1, 0, -1):
        n_in = net.sizes[k]
        n_out = net.sizes[k + 1]
        gemm(False, True, <int> n_rows, <int> n_in, <int> n_out,
             <floating> 1, deltas[k], <int> n_out, params + net.weight_offsets[k], <int> n_out,
             <floating> 0, deltas[k - 1], <int> n_in)
        multiply_derivative(deltas[k - 1], activations[k - 1], preactivations[k - 1],
                            n_rows * n_in, net.codes[k - 1])


# --------------------------------------------------------------------------------------
# forward and loss: per-thread ping-pong buffers, nothing kept between layers
# --------------------------------------------------------------------------------------

cdef double forward_rows(const Layout* net, const floating* params, const floating* x,
                         Py_ssize_t row_start, Py_ssize_t row_stop,
                         floating* out, const floating* targets, const double* sample_weight,
                         double inv_weight_sum, int loss, floating* scratch,
                         Py_ssize_t max_width, bint may_share,
                         bint gemm_only) noexcept nogil:
    """Forward rows [row_start, row_stop) (at most block_rows(n) of them).

    Without targets, writes the network output into out; with targets, returns the
    block's weighted loss, and writes the output into out as well when out is not NULL
    (the same values: h_L applied to a copy of the logits). scratch holds
    2 * block_rows(n) * max_width elements. may_share: a few rows may take the helper
    thread; gemm_only: even a few rows go through GEMM (forward_block).
    """
    cdef Py_ssize_t k, L = net.n_layers, n_rows = row_stop - row_start
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[L]
    cdef floating* outputs[MAX_LAYERS]
    cdef floating* preactivations[MAX_LAYERS]
    cdef floating* buffers[2]
    cdef const double* block_weight = NULL
    buffers[0] = scratch
    buffers[1] = scratch + n_rows * max_width
    for k in range(L):
        outputs[k] = buffers[k % 2]
        preactivations[k] = NULL
    if targets == NULL:
        outputs[L - 1] = out + row_start * n_out
    forward_block(net, params, x + row_start * n_in, n_rows, outputs, preactivations,
                  targets != NULL, may_share, gemm_only)
    if targets == NULL:
        return 0.0
    if out != NULL:
        memcpy(out + row_start * n_out, outputs[L - 1], n_rows * n_out * sizeof(floating))
        bias_activation(out + row_start * n_out, NULL, n_rows, n_out, net.codes[L - 1], NULL)
    if sample_weight != NULL:
        block_weight = sample_weight + row_start
    return loss_and_output_delta(outputs[L - 1], targets + row_start * n_out, block_weight,
                                 inv_weight_sum, n_rows, n_out, net.codes[L - 1], loss)


cdef int forward_all(const Layout* net, const floating* params, const floating* x,
                     Py_ssize_t n_rows, floating* out, const floating* targets,
                     const double* sample_weight, double inv_weight_sum, int loss,
                     int n_threads, double* total) noexcept nogil:
    """forward_rows over all blocks: on the calling thread and helper.h's when the batch
    is one or two blocks and large enough (helper_split_row), else on a team when the work
    is large enough.

    Not on a team when the second of two blocks has ROW_KERNEL_MAX_ROWS rows or fewer:
    the team's second thread would have next to nothing to do, and starting it cost more
    than that saved (784-256-128-10 at 65-68 rows, 1-thread/2-thread time over four
    runs: float32 0.78-1.02 on a team, 0.99-1.01 without; float64 0.97-1.08 on a team,
    within the noise). The blocks are the same either way, so are the bits.

    Stores the summed loss (targets given) or 0 in total; returns -1 if out of memory.
    """
    cdef Py_ssize_t k, block, max_width = 1
    cdef Py_ssize_t rows_per_block = block_rows(net, n_rows)
    cdef Py_ssize_t n_blocks = block_count(net, n_rows)
    cdef Py_ssize_t split = helper_split_row(net, n_rows, targets != NULL, n_threads,
                                            sizeof(floating))
    cdef bint few_rows_left = (n_blocks == 2
                               and n_rows - rows_per_block <= ROW_KERNEL_MAX_ROWS)
    cdef int team = 1 if split > 0 or few_rows_left else team_size(net, n_rows, n_threads)
    cdef bint halves_done = False
    cdef unsigned int fp_mode = cffnn_fp_mode(), thread_fp_mode
    for k in range(1, net.n_layers + 1):
        if net.sizes[k] > max_width:
            max_width = net.sizes[k]
    # two (rows, max_width) buffers per thread (and one set for the helper's half);
    # sized to the batch when it is smaller than a block, so that a one-row call
    # allocates 2 KB, not 128 KB (which glibc would mmap and unmap on every call: +5 us
    # measured on a one-row forward)
    cdef Py_ssize_t scratch_size = 2 * min(rows_per_block, n_rows) * max_width
    cdef floating* scratch = <floating*> malloc((team + (split > 0)) * scratch_size
                                                * sizeof(floating))
    cdef double* block_losses = <double*> malloc(max(n_blocks, 2) * sizeof(double))
    if scratch == NULL or block_losses == NULL:
        free(scratch)
        free(block_losses)
        return -1
    if n_rows > ROW_KERNEL_MAX_ROWS:   # no BLAS call below that
        limit_blas_threads()
    if split > 0:      # the halves' losses into block_losses[0] and [1]
        halves_done = forward_in_halves(net, params, x, n_rows, split, out, targets,
                                        sample_weight, inv_weight_sum, loss, scratch,
                                        scratch + scratch_size, max_width, block_losses)
    if not halves_done and team == 1:
        for block in range(n_blocks):
            block_losses[block] = forward_rows(
                net, params, x, block * rows_per_block,
                min(n_rows, (block + 1) * rows_per_block),
                out, targets, sample_weight, inv_weight_sum, loss, scratch, max_width,
                n_threads > 1, False)
        if split > 0:
            cffnn_helper_note_end()   # (the helper was not at hand)
    elif not halves_done:
        with parallel(num_threads=team):
            thread_fp_mode = cffnn_adopt_fp_mode(fp_mode)   # fpmode.h: the caller's mode
            for block in prange(n_blocks, schedule='dynamic', chunksize=1):
                block_losses[block] = forward_rows(
                    net, params, x, block * rows_per_block,
                    min(n_rows, (block + 1) * rows_per_block),
                    out, targets, sample_weight, inv_weight_sum, loss,
                    scratch + threadid() * scratch_size, max_width, False, False)
            cffnn_adopt_fp_mode(thread_fp_mode)
    if n_rows > ROW_KERNEL_MAX_ROWS:
        restore_blas_threads()
    total[0] = 0.0
    for block in range(n_blocks):
        total[0] += block_losses[block]
    free(scratch)
    free(block_losses)
    return 0


# --------------------------------------------------------------------------------------
# loss and gradient: every layer's Z and delta kept for all rows, then dW = Z^T delta
# --------------------------------------------------------------------------------------

cdef double train_rows(const Layout* net, const floating* params, const floating* x,
                       const floating* y, const double* sample_weight,
                       const Py_ssize_t* order, floating* gathered_x, floating* gathered_y,
                       double* gathered_weights, double inv_weight_sum, int loss,
                       Py_ssize_t row_start, Py_ssize_t row_stop, floating** activations,
                       floating** deltas, floating** preactivations,
                       const floating* partials, Py_ssize_t n_parts,
                       Py_ssize_t part_step) noexcept nogil:
    """Forward, loss, output delta and delta propagation for rows [row_start, row_stop).

    activations[k], deltas[k], preactivations[k] point at full-batch buffers of shape
    (n_rows, n_{k+1}); deltas[L-1] is activations[L-1] (the logits become delta there),
    preactivations[k] is NULL except for gelu layers. Returns the block's weighted loss.
    With order, batch row i is row order[i] of x, y and sample_weight: the block first
    gathers its rows into the same rows of gathered_x, gathered_y and gathered_weights
    (on the thread that then uses them, while they are hot).
    With n_parts > 0 (layer 0 owned by parts, owned_parts), the batch's partial sums of
    layer 0's parts are at partials, part_step values apart (phase 0 of train_thread):
    the block adds them in part order, then the bias, for Z[0], and x is neither read
    nor gathered.
    """
    cdef Py_ssize_t k, i, q, L = net.n_layers, n_rows = row_stop - row_start, width
    cdef Py_ssize_t n_hidden = net.sizes[1]
    cdef Layout above_layer0
    cdef floating* z
    cdef const floating* partial
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[L]
    cdef floating* block_activations[MAX_LAYERS]
    cdef floating* block_deltas[MAX_LAYERS]
    cdef floating* block_preactivations[MAX_LAYERS]
    cdef const double* block_weight = NULL
    cdef double block_loss
    for k in range(L):
        width = net.sizes[k + 1]
        block_activations[k] = activations[k] + row_start * width
        block_deltas[k] = deltas[k] + row_start * width
        block_preactivations[k] = NULL
        if preactivations[k] != NULL:
            block_preactivations[k] = preactivations[k] + row_start * width
    if order != NULL:
        if floating is float:
            if n_parts == 0:
                cffnn_gather_rows_f(x, n_in, order + row_start, n_rows,
                                    gathered_x + row_start * n_in)
            cffnn_gather_rows_f(y, n_out, order + row_start, n_rows,
                                gathered_y + row_start * n_out)
        else:
            if n_parts == 0:
                cffnn_gather_rows_d(x, n_in, order + row_start, n_rows,
                                    gathered_x + row_start * n_in)
            cffnn_gather_rows_d(y, n_out, order + row_start, n_rows,
                                gathered_y + row_start * n_out)
        if sample_weight != NULL:
            for i in range(row_start, row_stop):
                gathered_weights[i] = sample_weight[order[i]]
            sample_weight = gathered_weights
        x = gathered_x
        y = gathered_y
    if sample_weight != NULL:
        block_weight = sample_weight + row_start
    if n_parts > 0:
        # A[0] = (partial_0 + partial_1 + ...) + b[0], Z[0] = h_0(A[0]); then layers 1..
        # as a network of their own, fed Z[0]
        z = block_activations[0]
        for i in range(n_rows * n_hidden):
            z[i] = partials[row_start * n_hidden + i]
        for q in range(1, n_parts):
            partial = partials + q * part_step + row_start * n_hidden
            for i in range(n_rows * n_hidden):
                z[i] = z[i] + partial[i]
        bias_activation(z, params + net.bias_offsets[0], n_rows, n_hidden, net.codes[0],
                        block_preactivations[0])
        above_layer0.n_layers = L - 1
        above_layer0.sizes = net.sizes + 1
        above_layer0.codes = net.codes + 1
        above_layer0.weight_offsets = net.weight_offsets + 1
        above_layer0.bias_offsets = net.bias_offsets + 1
        forward_block(&above_layer0, params, block_activations[0], n_rows,
                      block_activations + 1, block_preactivations + 1, True, False, False)
    else:
        forward_block(net, params, x + row_start * n_in, n_rows, block_activations,
                      block_preactivations, True, False, False)
    block_loss = loss_and_output_delta(
        block_deltas[L - 1], y + row_start * n_out, block_weight, inv_weight_sum, n_rows,
        n_out, net.codes[L - 1], loss)
    backward_block(net, params, n_rows, block_activations, block_deltas,
                   block_preactivations)
    return block_loss


cdef bint layer_gradient_rows(const Layout* net, const floating* params, Py_ssize_t k,
                              Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t n_rows,
                              const floating* rows_input, Py_ssize_t ld_input,
                              const floating* delta,
                              double alpha_over_weight_sum, floating* grad,
                              double* penalty_rows, double* bias_sums) noexcept nogil:
    """Rows [i0, i1) of layer k's weight gradient, and its whole bias gradient if i0 == 0;
    True when all the values it wrote are finite (checked while they are in cache).
    rows_input: column i0 of the layer's input Z[k-1] (rows ld_input apart).

    dW[k][i0:i1] = Z[k-1][:, i0:i1]^T delta[k] + alpha/S W[k][i0:i1]   (one GEMM)
    db[k] = sum over rows of delta[k], in double (bias_sums: n_{k+1} doubles)
    penalty_rows[i] = sum_j W[k][i, j]^2, in double (summed in row order by the caller)
    """
    cdef Py_ssize_t n_in = net.sizes[k], n_out = net.sizes[k + 1]
    cdef Py_ssize_t i, j
    cdef const floating* weights = params + net.weight_offsets[k]
    cdef floating* grad_weights = grad + net.weight_offsets[k]
    cdef floating* grad_biases = grad + net.bias_offsets[k]
    cdef floating beta = 0
    cdef double row_sum
    if alpha_over_weight_sum > 0:
        for i in range(i0, i1):
            row_sum = 0.0
            for j in range(n_out):
                row_sum += <double> weights[i * n_out + j] * weights[i * n_out + j]
                grad_weights[i * n_out + j] = <floating> (alpha_over_weight_sum
                                                          * weights[i * n_out + j])
            penalty_rows[i] = row_sum
        beta = 1
    gemm(True, False, <int> (i1 - i0), <int> n_out, <int> n_rows,
         <floating> 1, rows_input, <int> ld_input, delta, <int> n_out,
         beta, grad_weights + i0 * n_out, <int> n_out)
    if not all_finite(grad_weights + i0 * n_out, (i1 - i0) * n_out):
        return False
    if i0 != 0:
        return True
    if floating is float:
        cffnn_column_sums_f(delta, n_rows, n_out, bias_sums)
    else:
        cffnn_column_sums_d(delta, n_rows, n_out, bias_sums)
    for j in range(n_out):
        grad_biases[j] = <floating> bias_sums[j]
    return all_finite(grad_biases, n_out)


cdef Py_ssize_t train_workspace_bytes(const Layout* net, Py_ssize_t n_rows,
                                      Py_ssize_t itemsize) noexcept nogil:
    """Bytes of workspace train_all needs for a batch of up to n_rows rows.

    Doubles first (train_doubles): penalty_rows (n_k for each W[k]), bias_sums (n_{k+1}
    each), the gradient tasks' finiteness flags and their fused updates' (as doubles
    too: few, and the next arrays stay aligned; gradient_task_bound of each), layer 0's
    parts' two flags (layer0_part_capacity of each), block
    losses (at most n_rows / MIN_BLOCK_ROWS blocks); then, in the data's dtype, every
    layer's Z and delta (and A for gelu) for n_rows rows.
    """
    cdef Py_ssize_t k, n_doubles, n_values = 0
    n_doubles = ((n_rows + MIN_BLOCK_ROWS - 1) // MIN_BLOCK_ROWS
                 + 2 * gradient_task_bound(net)
                 + 2 * layer0_part_capacity(net))
    for k in range(net.n_layers):
        n_doubles += net.sizes[k] + net.sizes[k + 1]
        n_values += net.sizes[k + 1] * (1 + (k < net.n_layers - 1)
                                        + (net.codes[k] == CFFNN_GELU))
    # (+ 64 bytes an array: each starts on a cache line, train_values)
    return (n_doubles * <Py_ssize_t> sizeof(double) + n_rows * n_values * itemsize
            + layer0_part_capacity(net) * partial_stride(n_rows, net.sizes[1]) * itemsize
            + 64 * (3 * net.n_layers + 2))


cdef inline Py_ssize_t gradient_task_rows(const Layout* net, Py_ssize_t k,
                                         Py_ssize_t n_rows) noexcept nogil:
    """Rows of dW[k] per task of phase 2 for a batch of n_rows: the layer split into the
    fewest tasks of at most ~GRADIENT_TASK_MACS multiply-adds, rounded up to a multiple
    of 16 rows and to at least MIN_GRADIENT_ROWS.

    With BLAS each task's GEMM packs the layer's whole delta, so fewer, larger tasks pay
    less packing: dW of 784x256 from 128 rows took 962 us as 7 tasks of 128 rows and
    834 us as 2 of 392 (one thread, medians). float32 minibatches of up to 256 rows skip
    BLAS here (smallgemm.h), whose tasks cost the same however the layer is cut: 5 tasks
    of 160 rows what one of all 784 rows does (5 x 122 us, 626 us). Their cost per row
    varies with the zeros skipped (Fashion-MNIST's border pixels), so the last task to
    end decides when the phase does: with 6M (a Fashion-MNIST minibatch's dW of 784x256
    in 5 tasks, 7 in all) the thread that ended first waited 93-109 us a minibatch at
    the barrier after the tasks, with 3M (9 tasks, 12 in all) 21 us; the epoch on 2
    threads 1.040x faster (paired median, quartiles 1.007-1.067), on 1 thread 1.008x,
    loss_and_gradient of 512 and 2048 rows 1.012x and 0.990x.
    Small networks (block_rows) pack nothing, and when a team is worth it
    (split_for_team), their layers split in two tasks of at least SMALL_GRADIENT_ROWS
    rows, so that two threads can share their largest layer.
    """
    cdef double macs = <double> net.sizes[k] * net.sizes[k + 1] * n_rows
    cdef Py_ssize_t n_tasks = <Py_ssize_t> max(1.0, min(<double> net.sizes[k],
                                                         ceil(macs / GRADIENT_TASK_MACS)))
    cdef Py_ssize_t min_rows = MIN_GRADIENT_ROWS
    if split_for_team(net, n_rows):
        n_tasks = max(n_tasks, 2)
        min_rows = SMALL_GRADIENT_ROWS
    cdef Py_ssize_t rows = (net.sizes[k] + n_tasks - 1) // n_tasks
    rows = (rows + 15) // 16 * 16
    return min(net.sizes[k], max(rows, min_rows))


cdef inline Py_ssize_t layer_task_count(const Layout* net, Py_ssize_t k,
                                        Py_ssize_t n_rows) noexcept nogil:
    """Tasks of phase 2 for dW[k]: gradient_task_rows rows each."""
    cdef Py_ssize_t rows = gradient_task_rows(net, k, n_rows)
    return (net.sizes[k] + rows - 1) // rows


cdef inline Py_ssize_t gradient_task_count(const Layout* net, Py_ssize_t n_rows) noexcept nogil:
    """Tasks of phase 2 of train_all, layer after layer (layer_task_count each)."""
    cdef Py_ssize_t k, n_tasks = 0
    for k in range(net.n_layers):
        n_tasks += layer_task_count(net, k, n_rows)
    return n_tasks


cdef inline Py_ssize_t gradient_task_span(const Layout* net, Py_ssize_t n_rows,
                                          Py_ssize_t task, Py_ssize_t* i0,
                                          Py_ssize_t* i1) noexcept nogil:
    """The layer k (returned) and rows [i0, i1) of dW[k] of task number `task` of phase 2
    (gradient_task_rows rows each, in layer order)."""
    cdef Py_ssize_t k = 0, rows, n_layer_tasks
    while True:
        rows = gradient_task_rows(net, k, n_rows)
        n_layer_tasks = (net.sizes[k] + rows - 1) // rows
        if task < n_layer_tasks:
            break
        task -= n_layer_tasks
        k += 1
    i0[0] = task * rows
    i1[0] = min(net.sizes[k], (task + 1) * rows)
    return k


cdef bint gradient_task(const Layout* net, const floating* params, const floating* x,
                        Py_ssize_t n_rows, floating** activations, floating** deltas,
                        double alpha_over_weight_sum, Py_ssize_t task, floating* grad,
                        double* penalty_rows, double* bias_sums) noexcept nogil:
    """Task number `task` of phase 2: rows [i0, i1) of some dW[k] (gradient_task_span);
    True when what it wrote is finite.

    penalty_rows holds sum_k n_k doubles, bias_sums sum_k n_{k+1}, layer after layer.
    """
    cdef Py_ssize_t i0, i1, j, row_offset = 0, column_offset = 0
    cdef Py_ssize_t k = gradient_task_span(net, n_rows, task, &i0, &i1)
    for j in range(k):
        row_offset += net.sizes[j]
        column_offset += net.sizes[j + 1]
    return layer_gradient_rows(net, params, k, i0, i1, n_rows,
                               (x if k == 0 else activations[k - 1]) + i0, net.sizes[k],
                               deltas[k],
                               alpha_over_weight_sum, grad, penalty_rows + row_offset,
                               bias_sums + column_offset)


cdef struct OptimizerSettings:
    int kind                    # OPTIMIZER_SGD, OPTIMIZER_ADAM or OPTIMIZER_RPROP
    double learning_rate        # SGD, Adam
    double momentum             # SGD
    bint nesterov               # SGD
    double beta_1, beta_2, epsilon   # Adam
    long long t                 # Adam: steps taken so far (updated here)
    double increase, decrease, delta_min, delta_max   # RPROP


cdef struct FusedSGD:
    # SGD's update done by each gradient task on the rows it has just written (train_thread),
    # into buffers that the epoch adopts only when the whole step is finite. The arrays
    # are (n_params,) of the network's dtype (a struct cannot hold fused types).
    const OptimizerSettings* settings
    const void* params          # the current parameters and velocity ...
    const void* velocity
    void* params_out            # ... and where their updated values go
    void* velocity_out


cdef inline bint fused_sgd_range(const floating* grad, const FusedSGD* fused,
                                 Py_ssize_t start, Py_ssize_t n) noexcept nogil:
    """SGD's update of parameters [start, start + n) (include/cffnn/sgd.h); True when
    the new values are all finite."""
    return sgd_update(<const floating*> fused.params + start, grad + start,
                      <const floating*> fused.velocity + start,
                      <floating*> fused.velocity_out + start,
                      <floating*> fused.params_out + start, n,
                      <floating> fused.settings.learning_rate,
                      <floating> fused.settings.momentum, fused.settings.nesterov)


cdef bint fused_sgd_task(const Layout* net, Py_ssize_t n_rows, Py_ssize_t task,
                         const floating* grad, const FusedSGD* fused) noexcept nogil:
    """SGD's update of the parameters whose gradient task `task` wrote: rows [i0, i1) of
    W[k], and b[k] with the task of row 0; True when the new values are all finite.
    Elementwise, so the same values as one update of the whole buffer after the tasks."""
    cdef Py_ssize_t i0, i1
    cdef Py_ssize_t k = gradient_task_span(net, n_rows, task, &i0, &i1)
    return fused_sgd_rows(net, k, i0, i1, grad, fused)


cdef bint fused_sgd_rows(const Layout* net, Py_ssize_t k, Py_ssize_t i0, Py_ssize_t i1,
                         const floating* grad, const FusedSGD* fused) noexcept nogil:
    """SGD's update of rows [i0, i1) of W[k], and of b[k] with row 0; True when the new
    values are all finite."""
    cdef Py_ssize_t n_out = net.sizes[k + 1]
    cdef bint finite = fused_sgd_range(grad, fused, net.weight_offsets[k] + i0 * n_out,
                                       (i1 - i0) * n_out)
    if i0 == 0:
        finite = fused_sgd_range(grad, fused, net.bias_offsets[k], n_out) and finite
    return finite


cdef struct TrainDoubles:
    # The double part of a training workspace (train_workspace_bytes), for a batch.
    double* penalty_rows        # (sum_k n_k,) sum_j W[k][i, j]^2 for every row of every W
    double* bias_sums           # (sum_k n_{k+1},) every layer's bias gradient, in double
    double* task_finite         # (n_tasks,) 1 if the gradient task's values are finite
    double* update_finite       # (n_tasks,) 1 if its fused update's values are (FusedSGD)
    # layer 0 owned by parts (owned_parts: P parts), instead of its gradient tasks':
    double* part_finite         # (P,) 1 if the part's gradient values are finite
    double* part_update_finite  # (P,) 1 if its fused update's values are (FusedSGD)
    double* block_losses        # (n_blocks,) each block's weighted loss


cdef inline Py_ssize_t gradient_task_bound(const Layout* net) noexcept nogil:
    """At least gradient_task_count(net, n_rows) for every n_rows: a task has at least
    min(n_k, 16) rows of dW[k] (gradient_task_rows)."""
    cdef Py_ssize_t k, n_tasks = 0
    for k in range(net.n_layers):
        n_tasks += (net.sizes[k] + 15) // min(net.sizes[k], 16)
    return n_tasks


cdef void train_doubles(const Layout* net, Py_ssize_t n_rows, void* workspace,
                        TrainDoubles* doubles) noexcept nogil:
    """Where the double arrays of a workspace laid out for n_rows rows start.

    Only block_losses, last, depends on n_rows. An epoch's team reads the flags and
    penalties of a batch (batch_outcome) while a thread that is ahead may have begun the
    next batch's blocks, which write the Z and delta arrays after block_losses: a
    smaller last batch must not move them over the arrays still being read."""
    cdef Py_ssize_t k, n_weight_rows = 0
    for k in range(net.n_layers):
        n_weight_rows += net.sizes[k]
    doubles.penalty_rows = <double*> workspace
    doubles.bias_sums = doubles.penalty_rows + n_weight_rows
    doubles.task_finite = doubles.bias_sums + (n_weight_rows - net.sizes[0]
                                               + net.sizes[net.n_layers])
    doubles.update_finite = doubles.task_finite + gradient_task_bound(net)
    doubles.part_finite = doubles.update_finite + gradient_task_bound(net)
    doubles.part_update_finite = doubles.part_finite + layer0_part_capacity(net)
    doubles.block_losses = doubles.part_update_finite + layer0_part_capacity(net)


cdef inline void* line_start(void* address) noexcept nogil:
    """address moved on to the next 64-byte cache line boundary (itself if on one)."""
    return <void*> ((<uintptr_t> address + 63) & ~(<uintptr_t> 63))


cdef inline floating* next_line(floating* cursor) noexcept nogil:
    """line_start for a cursor in a workspace."""
    return <floating*> line_start(cursor)


cdef floating* train_values(const Layout* net, Py_ssize_t n_rows, void* workspace,
                            floating** activations, floating** deltas,
                            floating** preactivations) noexcept nogil:
    """Where each layer's Z, delta and (gelu) A start in a workspace laid out for n_rows
    rows: after the doubles, Z[k] for every layer, then delta[k] (and A[k]) layer by
    layer; delta[L-1] is Z[L-1] (train_rows). Returns where the partial sums of layer
    0's parts start (owned_parts; partial_stride(n_rows, n_1) apart). Each array starts
    on a cache line, so that no line holds values of two threads' parts."""
    cdef Py_ssize_t k, L = net.n_layers
    cdef TrainDoubles doubles
    train_doubles(net, n_rows, workspace, &doubles)
    cdef floating* cursor = <floating*> (doubles.block_losses
                                         + (n_rows + MIN_BLOCK_ROWS - 1) // MIN_BLOCK_ROWS)
    for k in range(L):
        activations[k] = next_line(cursor)
        cursor = activations[k] + n_rows * net.sizes[k + 1]
    for k in range(L):
        if k < L - 1:
            deltas[k] = next_line(cursor)
            cursor = deltas[k] + n_rows * net.sizes[k + 1]
        else:
            deltas[k] = activations[k]
        preactivations[k] = NULL
        if net.codes[k] == CFFNN_GELU:
            preactivations[k] = next_line(cursor)
            cursor = preactivations[k] + n_rows * net.sizes[k + 1]
    return next_line(cursor)


cdef long long train_thread(const Layout* net, const floating* params, const floating* x,
                            const floating* y, const double* sample_weight,
                            const Py_ssize_t* order, Py_ssize_t n_rows,
                            floating* gathered_x, floating* gathered_y,
                            double* gathered_weights, double inv_weight_sum,
                            double alpha_over_weight_sum, int loss, floating* grad,
                            void* workspace, const FusedSGD* fused, double* data_loss,
                            Py_ssize_t n_parts, floating* own_x,
                            cffnn_barrier* barrier, cffnn_counter* counter,
                            long long base, int n_threads) noexcept nogil:
    """One thread's share of the loss and gradient of a batch; every thread of a team
    of n_threads calls it (n_threads = 1: all of it, on the calling thread).

    Phase 0, only when layer 0 is owned by parts of its rows (n_parts = owned_parts(...)
    > 0): each thread computes its parts' partial sums (owned_part_range,
    layer0_partial_sums) for every row of the batch, from the batch's values of its
    parts' inputs (with order: gathered first into own_x, this thread's buffer of at
    least (n_rows, n_0) values). Phase 1: blocks of block_rows rows through train_rows
    (which adds the partial sums after phase 0). Phase 2, once every block is done (the
    weight gradients need all rows): after phase 0 the thread's own parts' rows of dW[0]
    (and the bias gradient with part 0), then the tasks of gradient_task (those of layer
    0 only without phase 0), each followed by its part of SGD's update when fused is not
    NULL (fused_sgd_rows). Work items come from counter, from base on (team.h); returns
    the next base. Every phase ends at a barrier, so every thread then sees the whole
    workspace and grad (batch_outcome).
    data_loss, if not NULL, receives the sum of the block losses in block order, read by
    each thread between the last two barriers: once the last is passed, another thread
    may be writing the next batch's block losses.
    The blocks, tasks and parts depend on the network and n_rows only, never on the team,
    and each writes its own part of the results, so results do not depend on the team
    either. x, y, sample_weight, order, gathered_*: as train_rows takes them.
    """
    cdef TrainDoubles doubles
    cdef floating* activations[MAX_LAYERS]
    cdef floating* deltas[MAX_LAYERS]
    cdef floating* preactivations[MAX_LAYERS]
    cdef Py_ssize_t rows_per_block = block_rows(net, n_rows)
    cdef Py_ssize_t n_blocks = block_count(net, n_rows)
    cdef Py_ssize_t n_tasks = gradient_task_count(net, n_rows)
    cdef Py_ssize_t first_task = 0, q0 = 0, q1 = 0, q, i0, i1, c0 = 0, c1 = 0
    cdef Py_ssize_t n_in = net.sizes[0], ld_own = n_in
    cdef Py_ssize_t part_step = partial_stride(n_rows, net.sizes[1])
    cdef floating* partials
    cdef const floating* own_input = x     # X[:, c0] of the thread's parts, ld_own apart
    cdef const floating* layer_0_input = x if order == NULL else gathered_x
    cdef int thread = cffnn_team_thread() if n_threads > 1 else 0
    cdef long long item
    cdef bint finite
    train_doubles(net, n_rows, workspace, &doubles)
    partials = train_values(net, n_rows, workspace, activations, deltas, preactivations)
    if n_parts > 0:
        first_task = layer_task_count(net, 0, n_rows)   # (replaced by the parts)
        owned_part_range(n_parts, thread, n_threads, &q0, &q1)
        c0 = part_start(net, n_parts, q0)
        c1 = part_start(net, n_parts, q1)
        own_input = x + c0
        if order != NULL and c1 > c0:
            gather_columns(x, n_in, order, n_rows, c0, c1, own_x)
            own_input = own_x
            ld_own = c1 - c0
        if floating is float:
            for q in range(q0, q1):
                i0 = part_start(net, n_parts, q)
                layer0_partial_sums(net, params, own_input + (i0 - c0), ld_own, n_rows, i0,
                                    part_start(net, n_parts, q + 1),
                                    partials + q * part_step)
        cffnn_barrier_wait(barrier, n_threads)
    while True:
        item = cffnn_counter_next(counter, base)
        if item >= n_blocks:
            break
        doubles.block_losses[item] = train_rows(
            net, params, x, y, sample_weight, order, gathered_x, gathered_y,
            gathered_weights, inv_weight_sum, loss, item * rows_per_block,
            min(n_rows, (item + 1) * rows_per_block), activations, deltas, preactivations,
            partials, n_parts, part_step)
    base = cffnn_counter_after(base, n_blocks, n_threads)
    cffnn_barrier_wait(barrier, n_threads)
    if data_loss != NULL:
        data_loss[0] = block_loss_sum(net, n_rows, workspace)
    for q in range(q0, q1):       # the thread's own parts of layer 0 (after phase 0)
        i0 = part_start(net, n_parts, q)
        i1 = part_start(net, n_parts, q + 1)
        finite = layer_gradient_rows(net, params, 0, i0, i1, n_rows,
                                     own_input + (i0 - c0), ld_own, deltas[0],
                                     alpha_over_weight_sum, grad, doubles.penalty_rows,
                                     doubles.bias_sums)
        doubles.part_finite[q] = finite
        doubles.part_update_finite[q] = (fused == NULL or not finite
                                         or fused_sgd_rows(net, 0, i0, i1, grad, fused))
    while True:
        item = cffnn_counter_next(counter, base)
        if item >= n_tasks - first_task:
            break
        item += first_task
        finite = gradient_task(net, params, layer_0_input, n_rows, activations, deltas,
                               alpha_over_weight_sum, item, grad, doubles.penalty_rows,
                               doubles.bias_sums)
        doubles.task_finite[item] = finite
        if fused != NULL:   # a refused step's update is never adopted: no need to do it
            doubles.update_finite[item] = (not finite
                                           or fused_sgd_task(net, n_rows, item, grad, fused))
    base = cffnn_counter_after(base, n_tasks - first_task, n_threads)
    cffnn_barrier_wait(barrier, n_threads)
    return base


cdef double block_loss_sum(const Layout* net, Py_ssize_t n_rows,
                           void* workspace) noexcept nogil:
    """The sum of a batch's block losses (train_thread's phase 1), in block order."""
    cdef TrainDoubles doubles
    cdef Py_ssize_t k
    cdef double total = 0.0
    train_doubles(net, n_rows, workspace, &doubles)
    for k in range(block_count(net, n_rows)):
        total += doubles.block_losses[k]
    return total


cdef double batch_outcome(const Layout* net, Py_ssize_t n_rows, Py_ssize_t n_parts,
                          void* workspace, double data_loss, double alpha_over_weight_sum,
                          bint* grad_finite, bint* update_finite) noexcept nogil:
    """The loss of a batch train_thread has done (with layer 0 in n_parts owned parts,
    or 0): data_loss (block_loss_sum), then the penalty row by row, so the same
    whatever the team. grad_finite and update_finite, if
    not NULL, receive whether every gradient value is finite and every value of the
    fused update (FusedSGD) is."""
    cdef TrainDoubles doubles
    cdef Py_ssize_t k, q, n_weight_rows = 0, first_task = 0
    cdef Py_ssize_t n_tasks = gradient_task_count(net, n_rows)
    cdef double total = data_loss
    train_doubles(net, n_rows, workspace, &doubles)
    for k in range(net.n_layers):
        n_weight_rows += net.sizes[k]
    if n_parts > 0:
        first_task = layer_task_count(net, 0, n_rows)   # (replaced by the parts)
    if alpha_over_weight_sum > 0:
        for k in range(n_weight_rows):
            total += 0.5 * alpha_over_weight_sum * doubles.penalty_rows[k]
    if grad_finite != NULL:
        grad_finite[0] = True
        for k in range(first_task, n_tasks):
            grad_finite[0] = grad_finite[0] and doubles.task_finite[k] != 0
        for q in range(n_parts):
            grad_finite[0] = grad_finite[0] and doubles.part_finite[q] != 0
    if update_finite != NULL:
        update_finite[0] = True
        for k in range(first_task, n_tasks):
            update_finite[0] = update_finite[0] and doubles.update_finite[k] != 0
        for q in range(n_parts):
            update_finite[0] = update_finite[0] and doubles.part_update_finite[q] != 0
    return total


cdef int train_all(const Layout* net, const floating* params, const floating* x,
                   Py_ssize_t n_rows, const floating* targets, const double* sample_weight,
                   double inv_weight_sum, double alpha_over_weight_sum, int loss,
                   floating* grad, int n_threads, double* total) noexcept nogil:
    """Loss (into total) and flat gradient of a whole batch, on a team when the work is
    large enough; -1 if out of memory."""
    cdef int team = team_size(net, n_rows, n_threads)
    cdef Py_ssize_t n_parts = owned_parts(net, n_rows, sizeof(floating))
    cdef unsigned int fp_mode = cffnn_fp_mode(), thread_fp_mode
    cdef cffnn_barrier barrier
    cdef cffnn_counter counter
    cdef void* workspace = malloc(train_workspace_bytes(net, n_rows, sizeof(floating)))
    if workspace == NULL:
        return -1
    cffnn_barrier_init(&barrier)
    cffnn_counter_init(&counter)
    limit_blas_threads()
    if team == 1:
        train_thread(net, params, x, targets, sample_weight, NULL, n_rows, NULL, NULL, NULL,
                     inv_weight_sum, alpha_over_weight_sum, loss, grad, workspace, NULL, NULL,
                     n_parts, NULL, &barrier, &counter, 0, 1)
    else:
        with parallel(num_threads=team):
            thread_fp_mode = cffnn_adopt_fp_mode(fp_mode)   # fpmode.h: the caller's mode
            train_thread(net, params, x, targets, sample_weight, NULL, n_rows, NULL, NULL,
                         NULL, inv_weight_sum, alpha_over_weight_sum, loss, grad, workspace,
                         NULL, NULL, n_parts, NULL, &barrier, &counter, 0,
                         cffnn_team_size())
            cffnn_adopt_fp_mode(thread_fp_mode)
    restore_blas_threads()
    total[0] = batch_outcome(net, n_rows, n_parts, workspace,
                             block_loss_sum(net, n_rows, workspace), alpha_over_weight_sum,
                             NULL, NULL)
    free(workspace)
    return 0


# --------------------------------------------------------------------------------------
# one epoch of minibatch training, entirely without the GIL
# --------------------------------------------------------------------------------------

cdef enum:
    OPTIMIZER_SGD = 0
    OPTIMIZER_ADAM = 1
    OPTIMIZER_RPROP = 2
    EPOCH_OK = 0
    EPOCH_NO_MEMORY = -1
    EPOCH_NONFINITE_LOSS = 1
    EPOCH_NONFINITE_GRADIENT = 2
    EPOCH_NONFINITE_UPDATE = 3

OPTIMIZER_CODES = {"sgd": OPTIMIZER_SGD, "adam": OPTIMIZER_ADAM, "rprop": OPTIMIZER_RPROP}
EPOCH_STATUS = {EPOCH_NONFINITE_LOSS: "loss", EPOCH_NONFINITE_GRADIENT: "gradient",
                EPOCH_NONFINITE_UPDATE: "update"}


cdef bint flush_subnormals = True
cdef bint fuse_sgd = True
cdef enum:
    STREAM_AUTO = 0        # judge_team decides (TeamBackoff.stream_update)
    STREAM_ALWAYS = 1
    STREAM_NEVER = 2
STREAM_MODES = {"auto": STREAM_AUTO, "always": STREAM_ALWAYS, "never": STREAM_NEVER}
cdef int stream_mode = STREAM_AUTO


def helper_available():
    """True where this build has helper.h's thread (Linux), which takes half of a
    forward pass of a few rows of a large network when n_threads > 1."""
    return bool(CFFNN_HAVE_HELPER)


def helper_tasks_run():
    """How many halves helper.h's thread has computed in this process (for the tests)."""
    return cffnn_helper_tasks_run()


def helper_cooldowns():
    """How many times a call found that helper.h's thread, or the caller, had lost its
    core (or that the two had taken turns on one), and left the helper alone for a
    cooldown (for the benchmarks)."""
    return cffnn_helper_cooldowns()


def small_gemm_available():
    """Whether small products take include/cffnn/smallgemm.h here (a CPU with AVX2 and
    FMA, not disabled): then the rows of a float32 batch may go to two threads without
    changing a bit (helper_split_row), and BLAS is not called for them."""
    return bool(cffnn_small_gemm_available())


def set_small_gemm(bint enabled):
    """Whether small products use include/cffnn/smallgemm.h where the CPU has
    AVX2 and FMA (default True) or BLAS always; returns the previous setting. For
    benchmarks/small_gemm.py, which shows what the kernel saves."""
    global cffnn_small_gemm_enabled
    previous = cffnn_small_gemm_enabled != 0
    cffnn_small_gemm_enabled = 1 if enabled else 0
    return previous


def set_sparse_gemm(bint enabled):
    """Whether weight gradients through include/cffnn/smallgemm.h skip the samples in
    which a tile of inputs is all 0, where enough are (default True), or never; returns
    the previous setting. For benchmarks/sparse_gemm.py, which measures what skipping
    saves, and for the tests that compare the two."""
    global cffnn_sparse_enabled
    previous = cffnn_sparse_enabled != 0
    cffnn_sparse_enabled = 1 if enabled else 0
    return previous


def sparse_products():
    """How many products of this process have skipped zeros (smallgemm.h), for tests."""
    return cffnn_sparse_products


def set_team_limits(double max_wait, double min_judged_seconds):
    """When an epoch's team goes solo (include/cffnn/team.h): once its threads have waited
    max_wait of their time (default 0.4), judged after min_judged_seconds (0.002).
    Returns the previous pair. For tests, which force a team to stay or to go solo."""
    global cffnn_team_max_wait, cffnn_team_min_judged_ns
    previous = (cffnn_team_max_wait, cffnn_team_min_judged_ns / 1e9)
    cffnn_team_max_wait = max_wait
    cffnn_team_min_judged_ns = <long long> (min_judged_seconds * 1e9)
    return previous


def judge_team_epochs(epochs, bint could_stream=True):
    """Replays epoch_threads and judge_team over epochs of minibatches large enough for a
    team of 2, from a new network's state. epochs: (batch_size, went_solo, whole_epoch,
    ns_per_row) of each, as epoch_loop would measure them; returns the threads each ran
    on, the slow_epochs count at the end and, for each, whether it streamed Adam's update
    (could_stream: the network's team may, as a large one trained with Adam in "auto"
    mode). For the tests of the policy, which real epochs on this machine cannot make
    slow at will."""
    cdef TeamBackoff backoff
    cdef int team_threads
    cdef bint streams
    new_team_backoff(&backoff)
    threads, streamed = [], []
    for batch_size, went_solo, whole_epoch, ns_per_row in epochs:
        team_threads = epoch_threads(&backoff, 2, batch_size)
        streams = could_stream and team_threads > 1 and backoff.stream_update
        judge_team(&backoff, team_threads, team_threads > 1 and went_solo, whole_epoch,
                   ns_per_row, could_stream and team_threads > 1, streams)
        threads.append(team_threads)
        streamed.append(streams)
    return threads, backoff.slow_epochs, streamed


def set_fused_sgd(bint fuse):
    """Whether fit_epoch fuses SGD's update into its gradient tasks (default True) or
    updates all parameters after them, as it does for Adam and RPROP; returns the previous
    setting. For the tests, which check that the two give the same bits, and for
    benchmarks/fused_sgd.py, which times them.

    Fused, a team saves a barrier and a pass over the gradient every minibatch, and a
    refused step (a non-finite update) leaves the velocity as it was. Measured on the
    regression task (8-64-64-1, batch 64), paired epochs, in the rounds where 2 threads
    ran faster than 1: 2 threads 1.10x faster fused, 1 thread 0.98x (the velocity's
    second buffer), with sgd.h's loop in SSE2; 1.025x and 0.99x since it also has an
    AVX2 build, which made the separate pass cheaper."""
    global fuse_sgd
    previous = fuse_sgd
    fuse_sgd = fuse
    return previous


def set_streaming_update(str mode):
    """When a team writes Adam's new parameters of STREAMED_UPDATE_BYTES or more with
    streaming stores (include/cffnn/adam.h says why): "auto" (the default: when
    judge_team says so), "always" or "never"; returns the previous mode. For the tests,
    which check that they give the same bits, and for benchmarks/streaming_update.py,
    which times them."""
    global stream_mode
    if mode not in STREAM_MODES:
        raise ValueError(f"mode must be one of {', '.join(STREAM_MODES)}, got {mode!r}")
    previous = [name for name, code in STREAM_MODES.items() if code == stream_mode][0]
    stream_mode = STREAM_MODES[mode]
    return previous


def set_owned_layer0(bint enabled, Py_ssize_t min_bytes=OWNED_MIN_BYTES):
    """Whether training cuts a large float32 layer 0 into parts of its rows, each owned by
    one thread (default True, for W[0] of min_bytes or more; owned_parts says when and
    why); returns the previous (enabled, min_bytes). For the tests, which check the
    owned parts' results (with min_bytes 0, on small networks), and for
    benchmarks/owned_layer0.py, which times both ways."""
    global own_layer0, owned_min_bytes
    if min_bytes < 0:
        raise ValueError(f"min_bytes must be >= 0, got {min_bytes}")
    previous = (own_layer0, owned_min_bytes)
    own_layer0 = enabled
    owned_min_bytes = min_bytes
    return previous


def set_flush_subnormals(bint flush):
    """Whether fit_epoch flushes subnormal floats to zero (default True); returns the
    previous setting. For benchmarks/subnormals.py, which shows what flushing saves."""
    global flush_subnormals
    previous = flush_subnormals
    flush_subnormals = flush
    return previous


cdef struct EpochResult:
    double loss_sum             # sum over minibatches of loss * minibatch weight
    double weight_sum           # sum of the weights (rows) of the minibatches done
                                # (both with weights in units of epoch_loop's weight_scale)
    Py_ssize_t minibatch        # the minibatch that stopped the epoch (status != 0)
    Py_ssize_t layer            # its first non-finite layer (gradient), else -1


cdef inline bint all_finite(const floating* values, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return cffnn_all_finite_in_f(values, n, False, 0, 0)
    else:
        return cffnn_all_finite_in_d(values, n, False, 0, 0)


cdef bint update_chunk(OptimizerSettings* optimizer, const floating* params,
                       const floating* grad, floating* state_a, floating* state_b,
                       floating* out, Py_ssize_t start, Py_ssize_t n,
                       bint streaming) noexcept nogil:
    """The optimiser's update of parameters [start, start + n), new values into out;
    True when they are all finite (checked by the update's loop as it writes them).
    streaming: Adam writes out with streaming stores (include/cffnn/adam.h)."""
    cdef double step_size
    if optimizer.kind == OPTIMIZER_SGD:
        return sgd_update(params + start, grad + start, state_a + start, state_a + start,
                          out + start, n, <floating> optimizer.learning_rate,
                          <floating> optimizer.momentum, optimizer.nesterov)
    if optimizer.kind == OPTIMIZER_RPROP:
        return rprop_update(params + start, grad + start, state_b + start, state_a + start,
                            out + start, n, <floating> optimizer.increase,
                            <floating> optimizer.decrease, <floating> optimizer.delta_min,
                            <floating> optimizer.delta_max)
    # lr sqrt(1 - b2^t) / (1 - b1^t), t already counts this step
    step_size = (optimizer.learning_rate * (1 - c_pow(optimizer.beta_2, optimizer.t)) ** 0.5
                 / (1 - c_pow(optimizer.beta_1, optimizer.t)))
    return adam_update(params + start, grad + start, state_a + start, state_b + start,
                       out + start, n, <floating> step_size, <floating> optimizer.beta_1,
                       <floating> (1 - optimizer.beta_1), <floating> optimizer.beta_2,
                       <floating> (1 - optimizer.beta_2), <floating> optimizer.epsilon,
                       streaming)


cdef bint update_thread(OptimizerSettings* optimizer, const Layout* net,
                        const floating* params, const floating* grad, floating* state_a,
                        floating* state_b, floating* out, Py_ssize_t n, Py_ssize_t n_parts,
                        Py_ssize_t chunk_size, int* chunk_ok, cffnn_barrier* barrier,
                        cffnn_counter* counter, long long* base, int n_threads,
                        bint streaming) noexcept nogil:
    """One thread's share of the update of all n parameters; after the barrier that ends
    it, every thread returns whether all new values are finite. Elementwise, so how it is
    shared does not change the results.

    With layer 0 owned by parts (n_parts > 0, owned_parts), the thread first updates
    its own parts' rows of W[0] (owned_part_range), and the chunks of chunk_size cover
    the parameters after W[0]; else they cover all. Chunks come from counter at base[0],
    which moves on. chunk_ok: a flag for each chunk, then one for each thread's parts.
    streaming: Adam's new values in the chunks go out by streaming stores
    (EpochTeam.stream_update)."""
    cdef Py_ssize_t first = 0, q0 = 0, q1 = 0, i0, i1
    cdef int thread = cffnn_team_thread() if n_threads > 1 else 0, t
    cdef long long chunk, n_chunks
    cdef bint ok = True
    if n_parts > 0:
        first = net.weight_offsets[0] + net.sizes[0] * net.sizes[1]
    n_chunks = (n - first + chunk_size - 1) // chunk_size
    if n_parts > 0:
        owned_part_range(n_parts, thread, n_threads, &q0, &q1)
        i0 = part_start(net, n_parts, q0)
        i1 = part_start(net, n_parts, q1)
        chunk_ok[n_chunks + thread] = i1 <= i0 or update_chunk(
            optimizer, params, grad, state_a, state_b, out,
            net.weight_offsets[0] + i0 * net.sizes[1], (i1 - i0) * net.sizes[1], False)
    while True:
        chunk = cffnn_counter_next(counter, base[0])
        if chunk >= n_chunks:
            break
        chunk_ok[chunk] = update_chunk(optimizer, params, grad, state_a, state_b, out,
                                       first + chunk * chunk_size,
                                       min(chunk_size, n - first - chunk * chunk_size),
                                       streaming)
    base[0] = cffnn_counter_after(base[0], n_chunks, n_threads)
    cffnn_barrier_wait(barrier, n_threads)
    for chunk in range(n_chunks):
        ok = ok and chunk_ok[chunk]
    if n_parts > 0:
        for t in range(n_threads):
            ok = ok and chunk_ok[n_chunks + t]
    return ok


cdef struct TeamBackoff:
    # Per network: epochs to run on one thread after a team went solo or was slower than
    # one thread (epoch_threads, judge_team).
    int remaining                   # epochs left to run on one thread
    int cooldown                    # epochs to run on one thread after the next such team
    bint timing_wanted              # the next epoch runs on one thread to time it
    bint was_slow                   # the last team epoch judged was slower than one thread
    bint stream_update              # the next team epoch streams Adam's new parameters
    double solo_ns_per_row          # the last whole 1-thread epoch's time a row (0: none)
    Py_ssize_t timed_batch_size     # the batch size of the epochs timed
    long long team_epochs           # epochs that started on a team (statistics) ...
    long long solo_epochs           # ... of those, the ones that went solo ...
    long long slow_epochs           # ... and the ones slower than one thread
    long long streamed_epochs       # team epochs that streamed Adam's update (statistics)
    long long owned_epochs          # epochs with layer 0 owned by parts (statistics)


cdef void new_team_backoff(TeamBackoff* backoff) noexcept nogil:
    """A new network's state: no epoch run yet."""
    backoff.remaining = 0
    backoff.cooldown = MIN_TEAM_COOLDOWN
    backoff.timing_wanted = False
    backoff.was_slow = False
    backoff.stream_update = False
    backoff.solo_ns_per_row = 0.0
    backoff.timed_batch_size = 0
    backoff.team_epochs = 0
    backoff.solo_epochs = 0
    backoff.slow_epochs = 0
    backoff.streamed_epochs = 0
    backoff.owned_epochs = 0


cdef int epoch_threads(TeamBackoff* backoff, int team_threads,
                       Py_ssize_t batch_size) noexcept nogil:
    """The threads of an epoch of minibatches of batch_size: team_threads
    (epoch_team_size), or 1 while judge_team has epochs left to run on one thread or
    wants one timed. A new batch size forgets the 1-thread time (a row costs more in
    smaller minibatches), and a timing wanted for the previous one."""
    if team_threads == 1:
        return 1
    if batch_size != backoff.timed_batch_size:
        backoff.solo_ns_per_row = 0.0
        backoff.timing_wanted = False
        backoff.was_slow = False
        backoff.stream_update = False
        backoff.timed_batch_size = batch_size
    if backoff.remaining > 0:
        backoff.remaining -= 1
        return 1
    if backoff.timing_wanted:
        backoff.timing_wanted = False
        return 1
    return team_threads


cdef void judge_team(TeamBackoff* backoff, int team_threads, bint went_solo,
                     bint whole_epoch, double ns_per_row, bint could_stream,
                     bint streamed) noexcept nogil:
    """After an epoch of minibatches large enough for a team (epoch_team_size), run on
    team_threads threads (epoch_threads): how many of this network's next epochs run on
    one thread.

    A team that went solo (team.h: a thread lost its core to another process) is
    followed by backoff.cooldown epochs on one thread; cooldown doubles while that keeps
    happening (up to MAX_TEAM_COOLDOWN) and is reset by a team epoch that was faster than
    one thread. A team that took longer a row than the last 1-thread epoch of the same
    batch size is followed by one 1-thread epoch, which times one thread again, and if
    the next team epoch is slower again, by cooldown epochs as after a solo. The first
    team epoch without a 1-thread time to compare with is followed by one 1-thread epoch
    too. Only whole epochs (not stopped by a non-finite value) are timed and judged by
    their time.

    Why the time: on this project's 2-vCPU machine, the host sometimes makes every
    exchange of data between the two vCPUs slow (their caches' lines moving from one to
    the other); then a 2-thread regression epoch (8-64-64-1, batch 64) took 0.080-0.098 s
    against 0.043 s on one thread, with both threads busy all the time, so that their
    waiting never made the team solo. Why twice: a single slow team epoch was also seen
    right after another library's threads had run (benchmarks/compare.py: 0.046 s, then
    0.033-0.035 s again), and 4 epochs on one thread would have cost more than it saved.
    With cffnn_team_max_wait >= 1 (tests) a team is never left, for its waiting or for
    its time.

    A whole team epoch that gained less than STREAM_BELOW_TEAM_GAIN over the last
    1-thread time also makes the next team epoch stream Adam's new parameters (adam.h),
    and one that gained more makes it store them as usual. Measured on the fashion task
    (784-256-128-10, batch 128) by blocks of rows (it now trains with W[0] owned by
    parts, whose updates never stream): teams gained 1.6-1.7x with ordinary stores and
    streaming cost them 0-5%; in the host's slow spells ordinary teams gained
    0.72-1.0x, streaming ones 1.2x. So a team that could_stream (epoch_loop: Adam's
    update, large, "auto" mode) but did not (streamed) and was slower than one thread
    is followed by a streaming team epoch, not by a 1-thread one.
    """
    if team_threads == 1:
        if whole_epoch:
            backoff.solo_ns_per_row = ns_per_row
        return
    backoff.team_epochs += 1
    if went_solo:
        backoff.solo_epochs += 1
    elif not whole_epoch:
        return
    else:
        if backoff.solo_ns_per_row > 0.0:     # how the next team epoch stores Adam's update
            backoff.stream_update = (ns_per_row * STREAM_BELOW_TEAM_GAIN
                                     > backoff.solo_ns_per_row)
        if cffnn_team_max_wait >= 1.0 or (backoff.solo_ns_per_row > 0.0
                                          and ns_per_row <= backoff.solo_ns_per_row):
            backoff.cooldown = MIN_TEAM_COOLDOWN
            backoff.was_slow = False
            return
        if backoff.solo_ns_per_row == 0.0:
            backoff.timing_wanted = True
            return
        backoff.slow_epochs += 1
        if could_stream and not streamed:
            return                             # the next team epoch streams: judge that
        if not backoff.was_slow:
            backoff.was_slow = True
            backoff.timing_wanted = True       # time one thread again, then judge again
            return
    backoff.remaining = backoff.cooldown
    backoff.cooldown = min(2 * backoff.cooldown, MAX_TEAM_COOLDOWN)


cdef struct EpochTeam:
    # What the threads of one epoch share: epoch_loop sets it up, epoch_thread uses it.
    cffnn_barrier barrier           # between the phases of a minibatch (team.h)
    cffnn_counter counter           # hands out blocks, gradient tasks and update chunks
    void* workspace                 # train_workspace_bytes(net, batch_size, itemsize)
    double* gathered_weights        # (batch_size,) with order and sample weights, else NULL
    int* chunk_ok                   # (n_chunks + team,) whether each update chunk is
                                    # finite, then each thread's parts (update_thread)
    Py_ssize_t layer0_parts         # owned_parts for the epoch's batch size
    Py_ssize_t own_x_stride         # ... > 0: values between threads' gathered inputs
    bint stream_update              # a team streams Adam's new parameters (adam.h)
    Py_ssize_t chunk_size           # parameters per update chunk
    unsigned int fp_mode            # the caller's floating-point mode, for every thread
    # set by thread 0 when the epoch ends:
    int status                      # EPOCH_OK or what went non-finite
    void* last_finite               # the parameter buffer holding the last finite values
    void* last_state_a              # the buffer holding the last finite state_a (FusedSGD)
    long long t                     # Adam's step count after the epoch


cdef inline Py_ssize_t update_chunk_size(Py_ssize_t n_params, int team) noexcept nogil:
    """All parameters in one chunk on one thread; on a team, chunks of at most UPDATE_CHUNK
    and about n_params / (2 team), so that small networks' updates are shared too."""
    if team == 1:
        return n_params
    return min(<Py_ssize_t> UPDATE_CHUNK,
               max(<Py_ssize_t> 256, (n_params + 2 * team - 1) // (2 * team)))


cdef inline int epoch_team_size(const Layout* net, Py_ssize_t batch_size,
                                int n_threads) noexcept nogil:
    """Threads for an epoch of minibatches of batch_size: 1 when a minibatch is one block
    or under EPOCH_TEAM_MIN_MACS multiply-adds, never more than its blocks.

    Measured with paired epochs on 2 threads against 1: the regression task's minibatch
    (8-64-64-1 x 64 rows, 299k multiply-adds) 1.15-1.55x, the digits task's (64-32-10 x
    32 rows, 76k) 0.83-1.11x: three barriers a step are too many for ~10 us of work.
    """
    return threads_worth(net, batch_size, n_threads, EPOCH_TEAM_MIN_MACS)


cdef void epoch_thread(const Layout* net, Py_ssize_t n_params, const floating* x,
                       const floating* y, const double* sample_weight,
                       const Py_ssize_t* order, Py_ssize_t n_rows, Py_ssize_t batch_size,
                       double scaled_alpha, int loss, const OptimizerSettings* settings,
                       floating* state_a, floating* state_b, floating* current,
                       floating* spare, floating* spare_state_a, floating* grad,
                       floating* gathered_x, floating* gathered_y, EpochTeam* team,
                       EpochResult* result) noexcept nogil:
    """One thread's part of an epoch (epoch_loop); every thread of the team runs it.

    Every thread walks through the same minibatches and takes the same decisions, from
    data that a barrier has made visible to all: whether a minibatch has weight, whether
    its loss and gradient are finite, whether its update is. Only thread 0 writes result
    and the end of team.

    With spare_state_a (SGD only), the update is fused into the gradient tasks
    (FusedSGD): new parameters into spare and new velocities into spare_state_a, both
    adopted, like the parameters of a separate update, when the step is finite. That
    saves the update's barrier and its second pass over the gradient.
    """
    cdef int thread = cffnn_team_thread(), n_threads = cffnn_team_size()
    cdef OptimizerSettings optimizer = settings[0]   # each thread counts Adam's t itself
    cdef unsigned int thread_fp_mode = cffnn_adopt_fp_mode(team.fp_mode)
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[net.n_layers]
    cdef Py_ssize_t start = 0, stop, rows, r, k, batch = 0
    cdef double batch_weight, batch_loss, data_loss, alpha_over_weight_sum
    cdef const Py_ssize_t* batch_order
    cdef const double* batch_weights
    cdef bint grad_finite, update_finite
    cdef int status = EPOCH_OK
    cdef long long base = 0
    cdef floating* swap
    cdef FusedSGD fused
    cdef FusedSGD* fused_or_null = NULL
    if spare_state_a != NULL:
        fused.settings = &optimizer
        fused_or_null = &fused
    while status == EPOCH_OK and start < n_rows:
        stop = min(n_rows, start + batch_size)
        rows = stop - start
        batch_order = NULL if order == NULL else order + start
        batch_weights = sample_weight
        if sample_weight != NULL and order == NULL:
            batch_weights = sample_weight + start
        batch_weight = rows
        if sample_weight != NULL:
            batch_weight = 0.0
            for r in range(rows):
                batch_weight += (batch_weights[r] if order == NULL
                                 else sample_weight[batch_order[r]])
        if batch_weight > 0:      # a minibatch whose weights are all 0 teaches nothing
            alpha_over_weight_sum = scaled_alpha / batch_weight
            if fused_or_null != NULL:     # this step's buffers (they swap every step)
                fused.params = current
                fused.velocity = state_a
                fused.params_out = spare
                fused.velocity_out = spare_state_a
            base = train_thread(
                net, current, x if order != NULL else x + start * n_in,
                y if order != NULL else y + start * n_out, batch_weights, batch_order,
                rows, gathered_x, gathered_y, team.gathered_weights, 1.0 / batch_weight,
                alpha_over_weight_sum, loss, grad, team.workspace, fused_or_null,
                &data_loss, team.layer0_parts,
                (gathered_x + thread * team.own_x_stride
                 if gathered_x != NULL and team.layer0_parts > 0 else NULL),
                &team.barrier, &team.counter, base, n_threads)
            if n_threads > 1 and cffnn_barrier_solo(&team.barrier):
                # another process has a core of the team (team.h): thread 0 goes on
                # alone; the blocks and tasks are the same, so are the results. The
                # others leave at once: thread 0, no longer waiting for them at barriers,
                # may already be writing what batch_outcome reads.
                if thread != 0:
                    break
                n_threads = 1
            batch_loss = batch_outcome(
                net, rows, team.layer0_parts, team.workspace, data_loss,
                alpha_over_weight_sum, &grad_finite,
                &update_finite if fused_or_null != NULL else NULL)
            if batch_loss - batch_loss != 0:
                status = EPOCH_NONFINITE_LOSS
            elif not grad_finite:
                status = EPOCH_NONFINITE_GRADIENT
            else:
                if optimizer.kind == OPTIMIZER_ADAM:
                    optimizer.t += 1
                if fused_or_null == NULL:
                    update_finite = update_thread(
                        &optimizer, net, current, grad, state_a, state_b, spare, n_params,
                        team.layer0_parts, team.chunk_size, team.chunk_ok, &team.barrier,
                        &team.counter, &base, n_threads,
                        team.stream_update and n_threads > 1)
                if not update_finite:
                    status = EPOCH_NONFINITE_UPDATE
                else:
                    swap = current
                    current = spare
                    spare = swap
                    if fused_or_null != NULL:
                        swap = state_a
                        state_a = spare_state_a
                        spare_state_a = swap
                    if thread == 0:   # weights in units of weight_scale, which the mean cancels
                        result.loss_sum += batch_loss * batch_weight
                        result.weight_sum += batch_weight
        if status == EPOCH_OK:
            batch += 1
            start = stop
    if thread == 0:
        team.status = status
        team.last_finite = current
        team.last_state_a = state_a
        team.t = optimizer.t
        result.minibatch = batch
        if status == EPOCH_NONFINITE_GRADIENT:
            for k in range(net.n_layers):
                if not all_finite(grad + net.weight_offsets[k],
                                  net.bias_offsets[k] + net.sizes[k + 1]
                                  - net.weight_offsets[k]):
                    result.layer = k
                    break
    cffnn_adopt_fp_mode(thread_fp_mode)


cdef inline floating* line_aligned(Py_ssize_t n, const floating* source,
                                    void** raw) noexcept nogil:
    """Room for n values starting on a 64-byte cache line, holding a copy of source's
    unless source is NULL; NULL if out of memory. raw[0] receives what to free."""
    raw[0] = malloc(n * sizeof(floating) + 64)
    if raw[0] == NULL:
        return NULL
    cdef floating* values = <floating*> line_start(raw[0])
    if source != NULL:
        memcpy(values, source, n * sizeof(floating))
    return values


cdef inline bint on_line(const void* values) noexcept nogil:
    """Whether values starts on a 64-byte cache line."""
    return <uintptr_t> values % 64 == 0


cdef int epoch_loop(const Layout* net, floating* params, Py_ssize_t n_params,
                    const floating* x, const floating* y, const double* sample_weight,
                    double weight_scale, const Py_ssize_t* order, Py_ssize_t n_rows,
                    Py_ssize_t batch_size, double alpha, int loss,
                    OptimizerSettings* optimizer, floating* state_a, floating* state_b,
                    int n_threads, TeamBackoff* backoff, EpochResult* result) noexcept nogil:
    """Minibatch gradient descent over rows order[0..n_rows) (0..n_rows without order).

    Per minibatch: loss and gradient (train_thread, in a workspace allocated once, which
    also gathers the shuffled rows of X and Y), then the optimiser's fused update; SGD's
    is done by the gradient tasks themselves (FusedSGD). A non-finite loss, gradient or
    updated parameter stops the epoch before that minibatch's update, so params stay at
    their last finite values; so does SGD's velocity, its update being fused (Adam's and
    RPROP's state are updated in place, so an update that overflowed has advanced them).
    sample_weight holds weights divided by weight_scale; minibatch penalties use
    alpha / (the minibatch's true weight sum), formed as (alpha / weight_scale) / (its
    sum of scaled weights). True sums are never formed: they could overflow (weights of
    1e308) or be subnormal (1e-320), which the flush to zero below makes 0; result's
    loss_sum and weight_sum are in units of weight_scale too.

    The whole epoch is one parallel region (when epoch_team_size says a team pays), whose
    threads meet at include/cffnn/team.h's barriers between the phases of a minibatch:
    three per minibatch (two with SGD; one more where layer 0 is owned by parts,
    owned_parts) instead of three thread wake-ups. An epoch whose team went solo
    (another process had one of its cores, team.h) or ran slower than one thread makes
    the next epochs of this network run on one thread (judge_team).

    The parameters live in two buffers, `current` and `spare`: an update reads current
    and writes spare, and the two swap when the new values are all finite (a copy back
    after every update cost ~3% of a Fashion-MNIST epoch). params gets the last finite
    values at the end. SGD's velocity lives in state_a and spare_state_a in the same way.
    """
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[net.n_layers]
    cdef int team_threads = epoch_team_size(net, batch_size, n_threads)
    cdef bint team_worth_it = team_threads > 1
    cdef bint could_stream
    cdef Py_ssize_t shared_params
    cdef long long start_ns
    cdef EpochTeam team
    cdef double scaled_alpha = alpha / weight_scale   # weight_scale: finite, > 0
    team_threads = epoch_threads(backoff, team_threads, batch_size)
    # every per-parameter buffer starts on a cache line, so that the rows of W[0] a
    # thread owns (owned_part_range, part_start) share no line with another's
    cdef void* raw_grad = NULL
    cdef void* raw_spare = NULL
    cdef void* raw_spare_state_a = NULL
    cdef void* raw_params = NULL
    cdef void* raw_state_a = NULL
    cdef void* raw_state_b = NULL
    cdef void* raw_gathered_x = NULL
    cdef void* raw_workspace = NULL
    cdef floating* grad = line_aligned(n_params, <const floating*> NULL, &raw_grad)
    cdef floating* spare = line_aligned(n_params, <const floating*> NULL, &raw_spare)
    cdef floating* spare_state_a = NULL   # SGD's velocity, for its fused update
    cdef floating* work_params = params   # the epoch's parameters and state: the caller's,
    cdef floating* work_state_a = state_a   # or copies on cache lines (layer 0 owned)
    cdef floating* work_state_b = state_b
    cdef bint fuse_update
    cdef floating* gathered_x = NULL
    cdef floating* gathered_y = NULL
    cdef unsigned int fp_mode = 0
    cffnn_barrier_init(&team.barrier)
    cffnn_counter_init(&team.counter)
    raw_workspace = malloc(train_workspace_bytes(net, batch_size, sizeof(floating)) + 64)
    team.workspace = NULL
    if raw_workspace != NULL:    # (on a cache line: train_values)
        team.workspace = line_start(raw_workspace)
    team.gathered_weights = NULL
    team.layer0_parts = owned_parts(net, batch_size, sizeof(floating))
    team.own_x_stride = (batch_size * n_in + 15) // 16 * 16
    shared_params = n_params     # the parameters of update_thread's chunks
    if team.layer0_parts > 0:
        shared_params -= net.sizes[0] * net.sizes[1]
    team.chunk_size = update_chunk_size(shared_params, team_threads)
    could_stream = (team_threads > 1 and optimizer.kind == OPTIMIZER_ADAM
                    and shared_params * <Py_ssize_t> sizeof(floating) >= STREAMED_UPDATE_BYTES)
    team.stream_update = could_stream and (
        stream_mode == STREAM_ALWAYS or (stream_mode == STREAM_AUTO and backoff.stream_update))
    if team.stream_update:
        backoff.streamed_epochs += 1
    if team.layer0_parts > 0:
        backoff.owned_epochs += 1
    team.chunk_ok = <int*> malloc(((shared_params + team.chunk_size - 1) // team.chunk_size
                                   + team_threads) * sizeof(int))
    team.status = EPOCH_OK
    team.last_finite = work_params
    team.last_state_a = work_state_a
    team.t = optimizer.t
    # SGD's update in the gradient tasks (epoch_thread, FusedSGD), on one thread too: the
    # same code and the same state after a refused step whatever the team
    fuse_update = fuse_sgd and optimizer.kind == OPTIMIZER_SGD
    if fuse_update:
        spare_state_a = line_aligned(n_params, <const floating*> NULL, &raw_spare_state_a)
    if team.layer0_parts > 0:
        if not on_line(params):
            work_params = line_aligned(n_params, params, &raw_params)
        if not on_line(state_a):
            work_state_a = line_aligned(n_params, state_a, &raw_state_a)
        if state_b != NULL and not on_line(state_b):
            work_state_b = line_aligned(n_params, state_b, &raw_state_b)
    if order != NULL:
        # one buffer for the blocks' rows, or each thread's own for the inputs of its
        # parts of layer 0 (train_thread's phase 0), each on its own cache lines
        gathered_x = line_aligned((team_threads if team.layer0_parts > 0 else 1)
                                  * team.own_x_stride, <const floating*> NULL,
                                  &raw_gathered_x)
        gathered_y = <floating*> malloc(batch_size * n_out * sizeof(floating))
        if sample_weight != NULL:
            team.gathered_weights = <double*> malloc(batch_size * sizeof(double))
    result.loss_sum = 0.0
    result.weight_sum = 0.0
    result.minibatch = 0
    result.layer = -1
    if (team.workspace == NULL or grad == NULL or spare == NULL or team.chunk_ok == NULL
            or (fuse_update and spare_state_a == NULL) or work_params == NULL
            or work_state_a == NULL or (state_b != NULL and work_state_b == NULL)
            or (order != NULL and (gathered_x == NULL or gathered_y == NULL
                                   or (sample_weight != NULL
                                       and team.gathered_weights == NULL)))):
        team.status = EPOCH_NO_MEMORY
    else:
        # BLAS is held at one thread for the whole epoch: a restore to n threads after
        # every minibatch woke OpenBLAS's workers, whose spinning then took the cores
        # from our team (a 784-256-128-10 epoch at batch 128 ran no faster on 2 threads
        # than on 1).
        limit_blas_threads()
        # subnormal optimiser state (Adam's moments) flushed to zero on every thread of
        # the team, which take this thread's mode (fpmode.h); the caller's is restored
        if flush_subnormals:
            fp_mode = cffnn_flush_subnormals_begin()
        team.fp_mode = cffnn_fp_mode()
        start_ns = cffnn_now_ns()
        if team_threads == 1:
            epoch_thread(net, n_params, x, y, sample_weight, order, n_rows, batch_size,
                         scaled_alpha, loss, optimizer, work_state_a, work_state_b,
                         work_params, spare, spare_state_a, grad, gathered_x, gathered_y,
                         &team, result)
        else:
            with parallel(num_threads=team_threads):
                epoch_thread(net, n_params, x, y, sample_weight, order, n_rows,
                             batch_size, scaled_alpha, loss, optimizer, work_state_a,
                             work_state_b, work_params, spare, spare_state_a, grad,
                             gathered_x, gathered_y, &team, result)
        if flush_subnormals:
            cffnn_flush_subnormals_end(fp_mode)
        restore_blas_threads()
        optimizer.t = team.t
        if team_worth_it:
            judge_team(backoff, team_threads,
                       team_threads > 1 and cffnn_barrier_solo(&team.barrier),
                       team.status == EPOCH_OK,
                       <double> (cffnn_now_ns() - start_ns) / n_rows,
                       could_stream and stream_mode == STREAM_AUTO, team.stream_update)
        if team.last_finite != <void*> params:   # the last finite values are in spare
            memcpy(params, team.last_finite, n_params * sizeof(floating))
        if team.last_state_a != <void*> state_a:   # ... or spare_state_a (or copies)
            memcpy(state_a, team.last_state_a, n_params * sizeof(floating))
        if work_state_b != state_b:
            memcpy(state_b, work_state_b, n_params * sizeof(floating))
    free(raw_workspace)
    free(team.gathered_weights)
    free(team.chunk_ok)
    free(raw_grad)
    free(raw_spare)
    free(raw_spare_state_a)
    free(raw_params)
    free(raw_state_a)
    free(raw_state_b)
    free(raw_gathered_x)
    free(gathered_y)
    return team.status


# --------------------------------------------------------------------------------------
# Python entry points. cffnn/network.py validates every argument; CompiledNetwork holds a
# network's layout once, so a call costs a method call and pointer reads, not the
# memoryview acquisitions and fused-type dispatch of a plain def (2 us of the 10 us
# budget of a one-row forward). The checks below are cheap guards against misuse of
# this private class, not user-facing validation.
# --------------------------------------------------------------------------------------

cdef inline void* data_of(cnp.ndarray array, Py_ssize_t rows, Py_ssize_t cols,
                          int typenum, str name) except NULL:
    """Pointer to a C-contiguous, aligned, native-order (rows, cols) array of typenum;
    cols < 0 means 1-D."""
    if (cnp.PyArray_TYPE(array) != typenum or not cnp.PyArray_IS_C_CONTIGUOUS(array)
            or not cnp.PyArray_ISBEHAVED_RO(array)
            or (cols < 0 and (cnp.PyArray_NDIM(array) != 1 or array.shape[0] != rows))
            or (cols >= 0 and (cnp.PyArray_NDIM(array) != 2 or array.shape[0] != rows
                               or array.shape[1] != cols))):
        raise ValueError(f"internal error: {name} does not match the compiled network")
    return cnp.PyArray_DATA(array)


cdef class CompiledNetwork:
    """A network's layout and parameter buffer as compiled code sees them.

    sizes (L + 1,) intp, codes (L,) intc (output code last), weight_offsets and
    bias_offsets (L,) intp, params (n_params,) float32 or float64: kept alive here.
    """
    cdef Layout layout
    cdef object arrays
    cdef cnp.ndarray params
    cdef int typenum
    cdef int loss_code
    cdef TeamBackoff team_backoff

    def __cinit__(self, cnp.ndarray sizes, cnp.ndarray codes, cnp.ndarray weight_offsets,
                  cnp.ndarray bias_offsets, cnp.ndarray params, int loss_code):
        cdef Py_ssize_t n_layers = codes.shape[0]
        if not 1 <= n_layers <= MAX_LAYERS:
            raise ValueError(f"internal error: {n_layers} layers")
        new_team_backoff(&self.team_backoff)
        self.typenum = cnp.PyArray_TYPE(params)
        if self.typenum not in (cnp.NPY_FLOAT32, cnp.NPY_FLOAT64):
            raise ValueError("internal error: params must be float32 or float64")
        self.layout.n_layers = n_layers
        self.layout.sizes = <const Py_ssize_t*> data_of(sizes, n_layers + 1, -1, cnp.NPY_INTP,
                                                        "sizes")
        self.layout.codes = <const int*> data_of(codes, n_layers, -1, cnp.NPY_INT, "codes")
        self.layout.weight_offsets = <const Py_ssize_t*> data_of(
            weight_offsets, n_layers, -1, cnp.NPY_INTP, "weight_offsets")
        self.layout.bias_offsets = <const Py_ssize_t*> data_of(
            bias_offsets, n_layers, -1, cnp.NPY_INTP, "bias_offsets")
        data_of(params, self.layout.bias_offsets[n_layers - 1] + self.layout.sizes[n_layers],
                -1, self.typenum, "params")
        self.arrays = (sizes, codes, weight_offsets, bias_offsets)
        self.params = params
        self.loss_code = loss_code

    def forward(self, cnp.ndarray X, cnp.ndarray out, int n_threads):
        """out (n_samples, n_outputs) = network output for X (n_samples, n_features)."""
        cdef Layout* net = &self.layout
        cdef Py_ssize_t n_rows = X.shape[0]
        self._forward(data_of(X, n_rows, net.sizes[0], self.typenum, "X"),
                      data_of(out, n_rows, net.sizes[net.n_layers], self.typenum, "out"),
                      n_rows, n_threads)

    cdef int _forward(self, const void* x, void* y, Py_ssize_t n_rows,
                      int n_threads) except -1:
        """forward_all without the GIL, for checked X data x and output data y."""
        cdef Layout* net = &self.layout
        cdef void* params = cnp.PyArray_DATA(self.params)
        cdef double unused
        cdef int status
        with nogil:
            if self.typenum == cnp.NPY_FLOAT32:
                status = forward_all(net, <float*> params, <const float*> x, n_rows,
                                     <float*> y, NULL, NULL, 0.0, 0, n_threads, &unused)
            else:
                status = forward_all(net, <double*> params, <const double*> x, n_rows,
                                     <double*> y, NULL, NULL, 0.0, 0, n_threads, &unused)
        if status != 0:
            raise MemoryError("cffnn: could not allocate the forward workspace")
        return 0

    def forward_few_rows(self, object X, int n_threads):
        """The network output for X when X is a ready matrix (is_ready_matrix) of at most
        ROW_KERNEL_MAX_ROWS rows, or one but for being float64 for a float32 network or
        float32 for a float64 one (as_ready_matrix converts it), else None, for the
        caller's general path.

        The edge's fast path for one-row predictions: those rows go through rowkernel.h
        (on the calling thread, and the helper thread of helper.h when n_threads > 1 and
        the network is large), so they need no BLAS limit, and the checks and the output
        array are made here instead of in Python (measured: 3 us of a 24 us forward of
        one row of a 784-256-128-10 network).
        """
        cdef Layout* net = &self.layout
        if (type(X) is not cnp.ndarray or cnp.PyArray_NDIM(<cnp.ndarray> X) != 2
                or (<cnp.ndarray> X).shape[0] > ROW_KERNEL_MAX_ROWS):
            return None
        X = ready_or_converted(X, self.typenum, net.sizes[0], -INFINITY, INFINITY)
        if X is None:
            return None
        cdef cnp.npy_intp shape[2]
        shape[0] = (<cnp.ndarray> X).shape[0]
        shape[1] = net.sizes[net.n_layers]
        cdef cnp.ndarray out = cnp.PyArray_EMPTY(2, shape, self.typenum, 0)
        # X is what forward's checks (data_of) require: ready_or_converted said so
        self._forward(cnp.PyArray_DATA(<cnp.ndarray> X), cnp.PyArray_DATA(out), shape[0],
                      n_threads)
        return out

    def loss(self, cnp.ndarray X, cnp.ndarray Y, object sample_weight,
             double inv_weight_sum, double alpha_over_weight_sum, int n_threads,
             object out=None):
        """sum_i w_i l_i + alpha/(2S) sum ||W||^2 for X (n, n_features), Y (n, n_outputs).

        sample_weight: None or float64 (n,); w_i = s_i inv_weight_sum (inv_weight_sum
        without weights); alpha_over_weight_sum = alpha / S. out: None, or an
        (n, n_outputs) array that receives the network output of the same pass.
        """
        cdef Layout* net = &self.layout
        cdef Py_ssize_t n_rows = X.shape[0]
        cdef void* x = data_of(X, n_rows, net.sizes[0], self.typenum, "X")
        cdef void* y = data_of(Y, n_rows, net.sizes[net.n_layers], self.typenum, "Y")
        cdef void* output = NULL
        if out is not None:
            output = data_of(out, n_rows, net.sizes[net.n_layers], self.typenum, "out")
        cdef const double* weights = self._sample_weight(sample_weight, n_rows)
        cdef void* params = cnp.PyArray_DATA(self.params)
        cdef double total
        cdef int status
        with nogil:
            if self.typenum == cnp.NPY_FLOAT32:
                status = forward_all(net, <float*> params, <float*> x, n_rows, <float*> output,
                                     <float*> y, weights, inv_weight_sum, self.loss_code,
                                     n_threads, &total)
                if alpha_over_weight_sum > 0:
                    total += 0.5 * alpha_over_weight_sum * squared_weights(net, <float*> params)
            else:
                status = forward_all(net, <double*> params, <double*> x, n_rows,
                                     <double*> output, <double*> y, weights, inv_weight_sum,
                                     self.loss_code, n_threads, &total)
                if alpha_over_weight_sum > 0:
                    total += 0.5 * alpha_over_weight_sum * squared_weights(net, <double*> params)
        if status != 0:
            raise MemoryError("cffnn: could not allocate the loss workspace")
        return total

    def loss_and_gradient(self, cnp.ndarray X, cnp.ndarray Y, object sample_weight,
                          double inv_weight_sum, double alpha_over_weight_sum,
                          cnp.ndarray grad, int n_threads):
        """The loss of `loss`; its gradient is written into grad (layout of params)."""
        cdef Layout* net = &self.layout
        cdef Py_ssize_t n_rows = X.shape[0]
        cdef void* x = data_of(X, n_rows, net.sizes[0], self.typenum, "X")
        cdef void* y = data_of(Y, n_rows, net.sizes[net.n_layers], self.typenum, "Y")
        cdef void* g = data_of(grad, self.params.shape[0], -1, self.typenum, "grad")
        cdef const double* weights = self._sample_weight(sample_weight, n_rows)
        cdef void* params = cnp.PyArray_DATA(self.params)
        cdef double total
        cdef int status
        with nogil:
            if self.typenum == cnp.NPY_FLOAT32:
                status = train_all(net, <float*> params, <float*> x, n_rows, <float*> y,
                                   weights, inv_weight_sum, alpha_over_weight_sum,
                                   self.loss_code, <float*> g, n_threads, &total)
            else:
                status = train_all(net, <double*> params, <double*> x, n_rows,
                                   <double*> y, weights, inv_weight_sum,
                                   alpha_over_weight_sum, self.loss_code, <double*> g,
                                   n_threads, &total)
        if status != 0:
            raise MemoryError("cffnn: could not allocate the training workspace")
        return total

    def fit_epoch(self, cnp.ndarray X, cnp.ndarray Y, object sample_weight,
                  double weight_scale, object order, Py_ssize_t batch_size, double alpha,
                  str kind, object optimizer, cnp.ndarray state_a, object state_b,
                  int n_threads):
        """One epoch of minibatch training; params are updated in place.

        X (n, n_features), Y (n, n_outputs); sample_weight None or float64 (n,) divided by
        weight_scale; order None (rows in order) or an intp permutation (n,). kind is
        "sgd", "adam" or "rprop" and optimizer the cffnn.optimizers object whose
        hyper-parameters are read here; state_a is SGD's velocity, Adam's first moment or
        RPROP's step sizes, state_b Adam's second moment or RPROP's previous gradient
        (layout and dtype of params).
        Returns (status, loss_sum, weight_sum, minibatch, layer, t), the sums with weights
        in units of weight_scale (their ratio is the epoch's mean loss): status 0, or the
        EPOCH_STATUS code of what went non-finite in `minibatch` (gradient: in `layer`);
        t is Adam's step count after the epoch.
        """
        cdef Layout* net = &self.layout
        cdef Py_ssize_t n_rows = X.shape[0], n_params = self.params.shape[0]
        cdef void* x = data_of(X, n_rows, net.sizes[0], self.typenum, "X")
        cdef void* y = data_of(Y, n_rows, net.sizes[net.n_layers], self.typenum, "Y")
        cdef const double* weights = self._sample_weight(sample_weight, n_rows)
        cdef const Py_ssize_t* row_order = NULL
        cdef void* a = data_of(state_a, n_params, -1, self.typenum, "state_a")
        cdef void* b = NULL
        cdef void* params = cnp.PyArray_DATA(self.params)
        cdef OptimizerSettings settings
        cdef EpochResult result
        cdef int status
        if order is not None:
            row_order = <const Py_ssize_t*> data_of(order, n_rows, -1, cnp.NPY_INTP, "order")
        if state_b is not None:
            b = data_of(state_b, n_params, -1, self.typenum, "state_b")
        settings.kind = OPTIMIZER_CODES[kind]
        if settings.kind != OPTIMIZER_SGD and b == NULL:
            raise ValueError("internal error: Adam and RPROP need two state arrays")
        if not 1 <= batch_size <= n_rows:
            raise ValueError("internal error: batch_size out of range")
        settings.learning_rate = getattr(optimizer, "learning_rate", 0.0)
        if settings.kind == OPTIMIZER_SGD:
            settings.momentum = optimizer.momentum
            settings.nesterov = optimizer.nesterov
        elif settings.kind == OPTIMIZER_ADAM:
            settings.beta_1 = optimizer.beta_1
            settings.beta_2 = optimizer.beta_2
            settings.epsilon = optimizer.epsilon
            settings.t = optimizer.t
        else:
            settings.increase = optimizer.increase
            settings.decrease = optimizer.decrease
            settings.delta_min = optimizer.delta_min
            settings.delta_max = optimizer.delta_max
        with nogil:
            if self.typenum == cnp.NPY_FLOAT32:
                status = epoch_loop(net, <float*> params, n_params, <float*> x, <float*> y,
                                    weights, weight_scale, row_order, n_rows, batch_size,
                                    alpha, self.loss_code, &settings, <float*> a,
                                    <float*> b, n_threads, &self.team_backoff, &result)
            else:
                status = epoch_loop(net, <double*> params, n_params, <double*> x,
                                    <double*> y, weights, weight_scale, row_order, n_rows,
                                    batch_size, alpha, self.loss_code, &settings,
                                    <double*> a, <double*> b, n_threads,
                                    &self.team_backoff, &result)
        if status == EPOCH_NO_MEMORY:
            raise MemoryError("cffnn: could not allocate the training workspace")
        return (status, result.loss_sum, result.weight_sum, result.minibatch, result.layer,
                settings.t)

    def team_statistics(self):
        """(epochs started on a team, how many of them went solo, how many were slower
        than one thread): how often another process took a core of fit_epoch's team
        (include/cffnn/team.h), or the team lost to one thread (judge_team)."""
        return (self.team_backoff.team_epochs, self.team_backoff.solo_epochs,
                self.team_backoff.slow_epochs)

    def streamed_epochs(self):
        """Team epochs that wrote Adam's new parameters with streaming stores
        (include/cffnn/adam.h, judge_team)."""
        return self.team_backoff.streamed_epochs

    def owned_epochs(self):
        """Epochs whose minibatches had layer 0 owned by parts (owned_parts), on one
        thread or a team."""
        return self.team_backoff.owned_epochs

    def few_rows_take_gemm(self, cnp.ndarray X):
        """Whether a forward pass of X's few rows (at most ROW_KERNEL_MAX_ROWS, C-contiguous
        in the network's dtype) runs layers 0 and 1 through smallgemm.h instead of
        rowkernel.h (few_rows_by_gemm), for the tests of that choice."""
        cdef Layout* net = &self.layout
        cdef Py_ssize_t n_rows = X.shape[0]
        cdef Py_ssize_t split = row_split_column(net, cnp.PyArray_ITEMSIZE(self.params))
        cdef const void* x = data_of(X, n_rows, net.sizes[0], self.typenum, "X")
        cdef int* scratch
        cdef bint by_gemm = False
        if n_rows > ROW_KERNEL_MAX_ROWS or split == 0 or self.typenum != cnp.NPY_FLOAT32:
            return False
        scratch = <int*> malloc(CFFNN_ROW_SCRATCH(net.sizes[0]) * sizeof(int))
        if scratch == NULL:
            raise MemoryError()
        by_gemm = few_rows_by_gemm(net, <const float*> x, n_rows, scratch)
        free(scratch)
        return by_gemm

    cdef const double* _sample_weight(self, object sample_weight, Py_ssize_t n_rows) except? NULL:
        if sample_weight is None:
            return NULL
        return <const double*> data_of(sample_weight, n_rows, -1, cnp.NPY_FLOAT64,
                                       "sample_weight")


cdef double squared_weights(const Layout* net, const floating* params) noexcept nogil:
    """sum_k ||W[k]||^2, accumulated in double (biases are not penalised)."""
    cdef Py_ssize_t k, i
    cdef double total = 0.0
    for k in range(net.n_layers):
        for i in range(net.weight_offsets[k], net.bias_offsets[k]):
            total += <double> params[i] * params[i]
    return total


def is_ready_matrix(object X, int typenum, Py_ssize_t n_columns,
                    double lower=-INFINITY, double upper=INFINITY):
    """True when X is already what the kernels take: a C-contiguous, aligned, native-order
    ndarray of typenum of shape (n_rows, n_columns), 1 <= n_rows <= INT_MAX, finite, with values in
    [lower, upper]. The edge's fast path: anything else goes through the full checks of
    cffnn/_validation.py, which also produce the error messages."""
    return ready_matrix(X, typenum, n_columns, lower, upper)


def as_ready_matrix(object X, int typenum, Py_ssize_t n_columns,
                    double lower=-INFINITY, double upper=INFINITY):
    """X itself when is_ready_matrix, a converted copy when X is ready but for being
    float64 where typenum is float32 or the other way round, else None (the full checks
    of cffnn/_validation.py then take X, and produce the error messages)."""
    return ready_or_converted(X, typenum, n_columns, lower, upper)


cdef object ready_or_converted(object X, int typenum, Py_ssize_t n_columns, double lower,
                               double upper):
    """as_ready_matrix, for calls from this module."""
    if ready_matrix(X, typenum, n_columns, lower, upper):
        return X
    return converted_matrix(X, typenum, n_columns, lower, upper)


cdef bint ready_shape(object X, Py_ssize_t n_columns) noexcept:
    """X is a C-contiguous, aligned, native-order ndarray of shape (n_rows, n_columns),
    1 <= n_rows <= INT_MAX: all ready_matrix asks but its dtype and values."""
    if type(X) is not cnp.ndarray:
        return False
    cdef cnp.ndarray array = <cnp.ndarray> X
    return (cnp.PyArray_NDIM(array) == 2 and 1 <= array.shape[0] <= INT_MAX
            and array.shape[1] == n_columns and cnp.PyArray_IS_C_CONTIGUOUS(array)
            and cnp.PyArray_ISBEHAVED_RO(array))


cdef bint ready_matrix(object X, int typenum, Py_ssize_t n_columns, double lower,
                       double upper) except -1:
    """is_ready_matrix, for calls from this module."""
    if not ready_shape(X, n_columns) or cnp.PyArray_TYPE(<cnp.ndarray> X) != typenum:
        return False
    cdef cnp.ndarray array = <cnp.ndarray> X
    cdef Py_ssize_t n = cnp.PyArray_SIZE(array)
    cdef bint bounded = lower > -INFINITY or upper < INFINITY
    cdef bint ok
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            ok = cffnn_all_finite_in_f(<const float*> cnp.PyArray_DATA(array), n, bounded,
                                       <float> lower, <float> upper)
        else:
            ok = cffnn_all_finite_in_d(<const double*> cnp.PyArray_DATA(array), n, bounded,
                                       lower, upper)
    return ok


cdef object converted_matrix(object X, int typenum, Py_ssize_t n_columns, double lower,
                             double upper):
    """A new C-contiguous array of typenum holding X, when X has the shape ready_shape
    asks and is float64 for a float32 typenum (or float32 for float64), with finite
    values in [lower, upper] that fit the new dtype; else None.

    The common case it is for: NumPy's default float64 rows given to a float32 network.
    np.require and np.isfinite took 5 us of a one-row forward there (a 4-4-2 network's
    forward 7.1 us instead of 0.7). The values are checked before the conversion, with
    the bounds narrowed to float32's range, so that it cannot overflow: values beyond
    it (which the full checks report as infinite) go to the full checks as well.
    """
    if not ready_shape(X, n_columns):
        return None
    cdef cnp.ndarray source = <cnp.ndarray> X
    cdef int source_type = cnp.PyArray_TYPE(source)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(source)
    cdef const void* values = cnp.PyArray_DATA(source)
    cdef bint ok
    if typenum == cnp.NPY_FLOAT32 and source_type == cnp.NPY_FLOAT64:
        with nogil:
            ok = cffnn_all_finite_in_d(<const double*> values, n, True,
                                       max(lower, -FLT_MAX), min(upper, FLT_MAX))
    elif typenum == cnp.NPY_FLOAT64 and source_type == cnp.NPY_FLOAT32:
        with nogil:
            ok = cffnn_all_finite_in_f(<const float*> values, n,
                                       lower > -INFINITY or upper < INFINITY,
                                       <float> lower, <float> upper)
    else:
        return None
    if not ok:
        return None
    cdef cnp.ndarray copy = cnp.PyArray_EMPTY(2, source.shape, typenum, 0)
    with nogil:     # (numpy's PyArray_Cast took 0.2 us more a row)
        if typenum == cnp.NPY_FLOAT32:
            convert_values(<const double*> values, <float*> cnp.PyArray_DATA(copy), n)
        else:
            convert_values(<const float*> values, <double*> cnp.PyArray_DATA(copy), n)
    return copy


ctypedef fused source_value:
    float
    double


cdef inline void convert_values(const source_value* source, floating* target,
                                Py_ssize_t n) noexcept nogil:
    """target[i] = source[i] in target's dtype, for i < n."""
    cdef Py_ssize_t i
    for i in range(n):
        target[i] = <floating> source[i]


def one_hot(object labels, Py_ssize_t n_classes, object dtype):
    """Class indices (n_samples,) -> one-hot rows (n_samples, n_classes) of dtype.

    The edge's fast path for the common case: labels a native, contiguous int64 ndarray
    with every index in [0, n_classes). Returns None otherwise, and the full checks of
    cffnn/_validation.py take over (and word the error).
    """
    if type(labels) is not cnp.ndarray:
        return None
    cdef cnp.ndarray array = <cnp.ndarray> labels
    if (cnp.PyArray_TYPE(array) != cnp.NPY_INT64 or cnp.PyArray_NDIM(array) != 1
            or not cnp.PyArray_IS_C_CONTIGUOUS(array) or not cnp.PyArray_ISBEHAVED_RO(array)):
        return None
    cdef Py_ssize_t i, n = array.shape[0]
    cdef const long long* index = <const long long*> cnp.PyArray_DATA(array)
    cdef bint in_range = True
    for i in range(n):
        in_range &= (0 <= index[i]) & (index[i] < n_classes)
    if not in_range:
        return None
    cdef cnp.ndarray result = np.zeros((n, n_classes), dtype=dtype)
    if cnp.PyArray_TYPE(result) not in (cnp.NPY_FLOAT32, cnp.NPY_FLOAT64):
        return None
    cdef char* rows = <char*> cnp.PyArray_DATA(result)
    cdef Py_ssize_t row_bytes = n_classes * cnp.PyArray_ITEMSIZE(result)
    if cnp.PyArray_TYPE(result) == cnp.NPY_FLOAT32:
        for i in range(n):
            (<float*> (rows + i * row_bytes))[index[i]] = 1
    else:
        for i in range(n):
            (<double*> (rows + i * row_bytes))[index[i]] = 1
    return result


def shuffled_order(uint64_t seed, Py_ssize_t n):
    """The permutation of 0 .. n-1 (intp, shape (n,)) that seed determines: a shuffled
    epoch's row order (include/cffnn/shuffle.h). n >= 0."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    cdef cnp.ndarray order = np.empty(n, dtype=np.intp)
    with nogil:
        cffnn_shuffled_order(seed, n, <Py_ssize_t*> cnp.PyArray_DATA(order))
    return order


def uniform_below(uint64_t seed, uint64_t upper, Py_ssize_t count):
    """count draws (uint64) of shuffle.h's uniform integer in [0, upper), the generator
    started at state seed. For the tests, which check both of its branches for bias."""
    if upper < 1 or count < 0:
        raise ValueError(f"need upper >= 1 and count >= 0, got {upper}, {count}")
    cdef cnp.ndarray draws = np.empty(count, dtype=np.uint64)
    cdef uint64_t* out = <uint64_t*> cnp.PyArray_DATA(draws)
    cdef uint64_t state = seed
    cdef Py_ssize_t i
    with nogil:
        for i in range(count):
            out[i] = cffnn_uniform_below(&state, upper)
    return draws
