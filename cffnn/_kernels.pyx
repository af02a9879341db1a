# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled forward pass, loss and backpropagation of a dense network.

Maths (DESIGN.md): for layers k = 0..L-1 with W[k] of shape (n_k, n_{k+1}),

    A[k] = Z[k-1] W[k] + b[k],   Z[k] = h_k(A[k]),   Z[-1] = X
    delta[L-1] = dL/dA[L-1]                        (_losses.pxd, from the logits)
    delta[k-1] = h'_{k-1}(A[k-1]) * (delta[k] W[k]^T)
    dL/dW[k] = Z[k-1]^T delta[k] + alpha W[k] / S,   dL/db[k] = sum_i delta[k][i]

Design:
- Parameters and gradients are one flat buffer each: W[0] row-major, b[0], W[1], b[1], ...
  (`weight_offsets`, `bias_offsets` give where each starts).
- Every pass works on fixed blocks of BLOCK_ROWS rows. A block goes through forward,
  loss and delta propagation without any synchronisation with other blocks, so blocks are
  spread over an OpenMP team; each thread calls single-threaded BLAS on its own rows
  (BLAS's pool is held at one thread meanwhile, _threads.pxd). Because the blocks do not
  depend on the team size and block losses are summed in block order, results do not
  depend on the number of threads.
- Weight gradients need all rows, so they run after the blocks, split over the rows of
  dW[k] (each thread owns whole rows of the gradient: no reduction, no race).
- Small work (under PARALLEL_MIN_MACS multiply-adds, or one block) never starts a team.
- Callers (cffnn/network.py) have validated shapes, dtypes, finiteness and that every
  dimension fits in a C int; nothing here raises.
"""
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stdlib cimport malloc, free

import numpy as np

from cffnn._blas cimport gemm
from cffnn._layers cimport (
    CFFNN_IDENTITY, CFFNN_LOGISTIC, CFFNN_TANH, CFFNN_RELU, CFFNN_LEAKY_RELU, CFFNN_ELU,
    CFFNN_SOFTPLUS, CFFNN_GELU, CFFNN_SOFTMAX, bias_activation, multiply_derivative)
from cffnn._losses cimport (
    CFFNN_SQUARED_ERROR, CFFNN_BINARY_LOG_LOSS, CFFNN_LOG_LOSS, loss_and_output_delta)
from cffnn._threads cimport limit_blas_threads, restore_blas_threads

ACTIVATION_CODES = {
    "identity": CFFNN_IDENTITY, "logistic": CFFNN_LOGISTIC, "tanh": CFFNN_TANH,
    "relu": CFFNN_RELU, "leaky_relu": CFFNN_LEAKY_RELU, "elu": CFFNN_ELU,
    "softplus": CFFNN_SOFTPLUS, "gelu": CFFNN_GELU, "softmax": CFFNN_SOFTMAX,
}
LOSS_CODES = {
    "squared_error": CFFNN_SQUARED_ERROR, "binary_log_loss": CFFNN_BINARY_LOG_LOSS,
    "log_loss": CFFNN_LOG_LOSS,
}

DEF BLOCK_ROWS = 64                 # rows per block: fixed, so results do not depend on threads
DEF PARALLEL_MIN_MACS = 1000000     # below this many multiply-adds a team costs more than it saves
DEF MAX_LAYERS = 64                 # per-block pointer arrays live on the stack

MAX_N_LAYERS = MAX_LAYERS


cdef struct Layout:
    # Borrowed from the Network's arrays; n_layers = L.
    Py_ssize_t n_layers
    const Py_ssize_t* sizes            # (L + 1,) widths, input first
    const int* codes                   # (L,) activation codes, output last
    const Py_ssize_t* weight_offsets   # (L,) start of W[k] in params
    const Py_ssize_t* bias_offsets     # (L,) start of b[k] in params


cdef Layout make_layout(const Py_ssize_t[::1] sizes, const int[::1] codes,
                        const Py_ssize_t[::1] weight_offsets,
                        const Py_ssize_t[::1] bias_offsets):
    cdef Layout layout
    layout.n_layers = codes.shape[0]
    layout.sizes = &sizes[0]
    layout.codes = &codes[0]
    layout.weight_offsets = &weight_offsets[0]
    layout.bias_offsets = &bias_offsets[0]
    return layout


cdef inline Py_ssize_t macs_per_row(const Layout* net) noexcept nogil:
    cdef Py_ssize_t k, macs = 0
    for k in range(net.n_layers):
        macs += net.sizes[k] * net.sizes[k + 1]
    return macs


cdef inline int team_size(const Layout* net, Py_ssize_t n_rows, int n_threads) noexcept nogil:
    """Threads worth starting for n_rows: 1 for small work, never more than blocks."""
    cdef Py_ssize_t n_blocks = (n_rows + BLOCK_ROWS - 1) // BLOCK_ROWS
    if n_threads <= 1 or n_blocks < 2 or n_rows * macs_per_row(net) < PARALLEL_MIN_MACS:
        return 1
    return <int> (n_threads if n_threads < n_blocks else n_blocks)


cdef void forward_block(const Layout* net, const floating* params,
                        const floating* x, Py_ssize_t n_rows,
                        floating** outputs, floating** preactivations,
                        bint stop_at_logits) noexcept nogil:
    """Z[k] = h_k(Z[k-1] W[k] + b[k]) for one block of rows, into outputs[k].

    outputs[k] has room for (n_rows, n_{k+1}); preactivations[k] is NULL or receives A[k].
    With stop_at_logits the last layer is left as A[L-1] (the loss works on logits).
    """
    cdef Py_ssize_t k, n_in, n_out
    cdef int code
    cdef const floating* previous = x
    for k in range(net.n_layers):
        n_in = net.sizes[k]
        n_out = net.sizes[k + 1]
        gemm(False, False, <int> n_rows, <int> n_out, <int> n_in,
             <floating> 1, previous, <int> n_in, params + net.weight_offsets[k], <int> n_out,
             <floating> 0, outputs[k], <int> n_out)
        code = net.codes[k]
        if stop_at_logits and k == net.n_layers - 1:
            code = CFFNN_IDENTITY
        bias_activation(outputs[k], params + net.bias_offsets[k], n_rows, n_out, code,
                        preactivations[k])
        previous = outputs[k]


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
                         Py_ssize_t max_width) noexcept nogil:
    """Forward rows [row_start, row_stop) (at most BLOCK_ROWS).

    Without targets, writes the network output into out; with targets, returns the
    block's weighted loss instead. scratch holds 2 * BLOCK_ROWS * max_width elements.
    """
    cdef Py_ssize_t k, L = net.n_layers, n_rows = row_stop - row_start
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[L]
    cdef floating* outputs[MAX_LAYERS]
    cdef floating* preactivations[MAX_LAYERS]
    cdef floating* buffers[2]
    cdef const double* block_weight = NULL
    buffers[0] = scratch
    buffers[1] = scratch + BLOCK_ROWS * max_width
    for k in range(L):
        outputs[k] = buffers[k % 2]
        preactivations[k] = NULL
    if targets == NULL:
        outputs[L - 1] = out + row_start * n_out
    forward_block(net, params, x + row_start * n_in, n_rows, outputs, preactivations,
                  targets != NULL)
    if targets == NULL:
        return 0.0
    if sample_weight != NULL:
        block_weight = sample_weight + row_start
    return loss_and_output_delta(outputs[L - 1], targets + row_start * n_out, block_weight,
                                 inv_weight_sum, n_rows, n_out, net.codes[L - 1], loss)


cdef int forward_all(const Layout* net, const floating* params, const floating* x,
                     Py_ssize_t n_rows, floating* out, const floating* targets,
                     const double* sample_weight, double inv_weight_sum, int loss,
                     int n_threads, double* total) noexcept nogil:
    """forward_rows over all blocks, on a team when the work is large enough.

    Stores the summed loss (targets given) or 0 in total; returns -1 if out of memory.
    """
    cdef Py_ssize_t k, block, max_width = 1
    cdef Py_ssize_t n_blocks = (n_rows + BLOCK_ROWS - 1) // BLOCK_ROWS
    cdef int team = team_size(net, n_rows, n_threads)
    cdef long long blas_threads
    for k in range(1, net.n_layers + 1):
        if net.sizes[k] > max_width:
            max_width = net.sizes[k]
    cdef Py_ssize_t scratch_size = 2 * BLOCK_ROWS * max_width
    cdef floating* scratch = <floating*> malloc(team * scratch_size * sizeof(floating))
    cdef double* block_losses = <double*> malloc(n_blocks * sizeof(double))
    if scratch == NULL or block_losses == NULL:
        free(scratch)
        free(block_losses)
        return -1
    blas_threads = limit_blas_threads()
    if team == 1:
        for block in range(n_blocks):
            block_losses[block] = forward_rows(
                net, params, x, block * BLOCK_ROWS, min(n_rows, (block + 1) * BLOCK_ROWS),
                out, targets, sample_weight, inv_weight_sum, loss, scratch, max_width)
    else:
        for block in prange(n_blocks, schedule='static', num_threads=team):
            block_losses[block] = forward_rows(
                net, params, x, block * BLOCK_ROWS, min(n_rows, (block + 1) * BLOCK_ROWS),
                out, targets, sample_weight, inv_weight_sum, loss,
                scratch + threadid() * scratch_size, max_width)
    restore_blas_threads(blas_threads)
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
                       const floating* targets, const double* sample_weight,
                       double inv_weight_sum, int loss, Py_ssize_t row_start,
                       Py_ssize_t row_stop, floating** activations, floating** deltas,
                       floating** preactivations) noexcept nogil:
    """Forward, loss, output delta and delta propagation for rows [row_start, row_stop).

    activations[k], deltas[k], preactivations[k] point at full-batch buffers of shape
    (n_rows, n_{k+1}); deltas[L-1] is activations[L-1] (the logits become delta there),
    preactivations[k] is NULL except for gelu layers. Returns the block's weighted loss.
    """
    cdef Py_ssize_t k, L = net.n_layers, n_rows = row_stop - row_start, width
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
    if sample_weight != NULL:
        block_weight = sample_weight + row_start
    forward_block(net, params, x + row_start * net.sizes[0], n_rows, block_activations,
                  block_preactivations, True)
    block_loss = loss_and_output_delta(
        block_deltas[L - 1], targets + row_start * net.sizes[L], block_weight,
        inv_weight_sum, n_rows, net.sizes[L], net.codes[L - 1], loss)
    backward_block(net, params, n_rows, block_activations, block_deltas,
                   block_preactivations)
    return block_loss


cdef void layer_gradient_rows(const Layout* net, const floating* params, Py_ssize_t k,
                              Py_ssize_t n_rows, const floating* layer_input,
                              const floating* delta, double alpha_over_weight_sum,
                              Py_ssize_t part, Py_ssize_t n_parts, floating* grad,
                              double* penalty_rows, double* bias_sums) noexcept nogil:
    """Part `part` of n_parts of layer k's gradient.

    dW[k][i0:i1] = Z[k-1][:, i0:i1]^T delta[k] + alpha/S W[k][i0:i1]   (one GEMM)
    db[k][j0:j1] = sum over rows of delta[k][:, j0:j1], in double
    penalty_rows[i] = sum_j W[k][i, j]^2, in double (summed in row order by the caller)
    """
    cdef Py_ssize_t n_in = net.sizes[k], n_out = net.sizes[k + 1]
    cdef Py_ssize_t i0 = part * n_in // n_parts, i1 = (part + 1) * n_in // n_parts
    cdef Py_ssize_t j0 = part * n_out // n_parts, j1 = (part + 1) * n_out // n_parts
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
    if i1 > i0:
        gemm(True, False, <int> (i1 - i0), <int> n_out, <int> n_rows,
             <floating> 1, layer_input + i0, <int> n_in, delta, <int> n_out,
             beta, grad_weights + i0 * n_out, <int> n_out)
    for j in range(j0, j1):
        bias_sums[j] = 0.0
    for i in range(n_rows):
        for j in range(j0, j1):
            bias_sums[j] += delta[i * n_out + j]
    for j in range(j0, j1):
        grad_biases[j] = <floating> bias_sums[j]


cdef int train_all(const Layout* net, const floating* params, const floating* x,
                   Py_ssize_t n_rows, const floating* targets,
                   const double* sample_weight, double inv_weight_sum,
                   double alpha_over_weight_sum, int loss, floating* grad,
                   int n_threads, double* total) noexcept nogil:
    """Loss (into total) and flat gradient of a whole batch; -1 if out of memory."""
    cdef Py_ssize_t k, block, task, L = net.n_layers
    cdef Py_ssize_t n_blocks = (n_rows + BLOCK_ROWS - 1) // BLOCK_ROWS
    cdef int team = team_size(net, n_rows, n_threads)
    cdef long long blas_threads
    cdef Py_ssize_t n_activations = 0, n_deltas = 0, n_preactivations = 0, n_weight_rows = 0
    cdef floating* activations[MAX_LAYERS]
    cdef floating* deltas[MAX_LAYERS]
    cdef floating* preactivations[MAX_LAYERS]
    cdef const floating* layer_input
    for k in range(L):
        n_activations += net.sizes[k + 1]
        n_weight_rows += net.sizes[k]
        if k < L - 1:
            n_deltas += net.sizes[k + 1]
        if net.codes[k] == CFFNN_GELU:
            n_preactivations += net.sizes[k + 1]
    # One allocation for every (n_rows, width) buffer, one for the double reductions:
    # block_losses (n_blocks), penalty_rows (n_k for each W[k]), bias_sums (n_{k+1} each).
    cdef floating* workspace = <floating*> malloc(
        n_rows * (n_activations + n_deltas + n_preactivations) * sizeof(floating))
    cdef double* block_losses = <double*> malloc(
        (n_blocks + n_weight_rows + n_activations) * sizeof(double))
    if workspace == NULL or block_losses == NULL:
        free(workspace)
        free(block_losses)
        return -1
    cdef double* penalty_rows = block_losses + n_blocks
    cdef double* bias_sums = penalty_rows + n_weight_rows

    cdef floating* cursor = workspace
    for k in range(L):
        activations[k] = cursor
        cursor += n_rows * net.sizes[k + 1]
    for k in range(L):
        if k < L - 1:
            deltas[k] = cursor
            cursor += n_rows * net.sizes[k + 1]
        else:
            deltas[k] = activations[k]
        preactivations[k] = NULL
        if net.codes[k] == CFFNN_GELU:
            preactivations[k] = cursor
            cursor += n_rows * net.sizes[k + 1]

    blas_threads = limit_blas_threads()
    # Phase 1: blocks of rows, independent of one another.
    if team == 1:
        for block in range(n_blocks):
            block_losses[block] = train_rows(
                net, params, x, targets, sample_weight, inv_weight_sum, loss,
                block * BLOCK_ROWS, min(n_rows, (block + 1) * BLOCK_ROWS),
                activations, deltas, preactivations)
    else:
        for block in prange(n_blocks, schedule='static', num_threads=team):
            block_losses[block] = train_rows(
                net, params, x, targets, sample_weight, inv_weight_sum, loss,
                block * BLOCK_ROWS, min(n_rows, (block + 1) * BLOCK_ROWS),
                activations, deltas, preactivations)
    # Phase 2: gradients, task = (layer k, part); part p of every layer goes to thread p.
    # Every (k, part) writes its own rows of grad, penalty_rows and bias_sums: no races.
    if team == 1:
        for k in range(L):
            layer_input = x if k == 0 else activations[k - 1]
            layer_gradient_rows(net, params, k, n_rows, layer_input, deltas[k],
                                alpha_over_weight_sum, 0, 1, grad,
                                penalty_rows + layer_row_offset(net, k),
                                bias_sums + layer_row_offset(net, k + 1) - net.sizes[0])
    else:
        for task in prange(L * team, schedule='static', chunksize=1, num_threads=team):
            layer_gradient_rows(net, params, task // team, n_rows,
                                x if task // team == 0 else activations[task // team - 1],
                                deltas[task // team], alpha_over_weight_sum,
                                task % team, team, grad,
                                penalty_rows + layer_row_offset(net, task // team),
                                bias_sums + layer_row_offset(net, task // team + 1)
                                - net.sizes[0])
    restore_blas_threads(blas_threads)

    total[0] = 0.0
    for block in range(n_blocks):
        total[0] += block_losses[block]
    if alpha_over_weight_sum > 0:
        for k in range(n_weight_rows):
            total[0] += 0.5 * alpha_over_weight_sum * penalty_rows[k]
    free(workspace)
    free(block_losses)
    return 0


cdef inline Py_ssize_t layer_row_offset(const Layout* net, Py_ssize_t layer) noexcept nogil:
    """sum of n_k for k < layer: where layer's rows start in penalty_rows."""
    cdef Py_ssize_t k, offset = 0
    for k in range(layer):
        offset += net.sizes[k]
    return offset


# --------------------------------------------------------------------------------------
# Python entry points. Arguments are validated by cffnn/network.py; these only check
# what a wrong caller inside the package could get wrong, as asserts would.
# --------------------------------------------------------------------------------------

def forward(const Py_ssize_t[::1] sizes not None, const int[::1] codes not None,
            const Py_ssize_t[::1] weight_offsets not None,
            const Py_ssize_t[::1] bias_offsets not None,
            const floating[::1] params not None, const floating[:, ::1] X not None,
            floating[:, ::1] out not None, int n_threads):
    """out = network output for X; X (n_samples, n_features), out (n_samples, n_outputs)."""
    cdef Layout net = make_layout(sizes, codes, weight_offsets, bias_offsets)
    cdef double unused
    cdef int status
    with nogil:
        status = forward_all(&net, &params[0], &X[0, 0], X.shape[0], &out[0, 0], NULL,
                             NULL, 0.0, 0, n_threads, &unused)
    if status != 0:
        raise MemoryError("cffnn: could not allocate the forward workspace")


def loss(const Py_ssize_t[::1] sizes not None, const int[::1] codes not None,
         const Py_ssize_t[::1] weight_offsets not None,
         const Py_ssize_t[::1] bias_offsets not None, int loss_code,
         const floating[::1] params not None, const floating[:, ::1] X not None,
         const floating[:, ::1] Y not None, const double[::1] sample_weight,
         double inv_weight_sum, double alpha_over_weight_sum, int n_threads):
    """Weighted loss of (X, Y) plus the L2 penalty; Y (n_samples, n_outputs).

    inv_weight_sum = 1 / sum(sample_weight) (1 / n_samples without weights);
    alpha_over_weight_sum = alpha * inv_weight_sum.
    """
    cdef Layout net = make_layout(sizes, codes, weight_offsets, bias_offsets)
    cdef const double* weight_ptr = NULL if sample_weight is None else &sample_weight[0]
    cdef double total, penalty = 0.0
    cdef Py_ssize_t i, k
    cdef int status
    with nogil:
        status = forward_all(&net, &params[0], &X[0, 0], X.shape[0], NULL, &Y[0, 0],
                             weight_ptr, inv_weight_sum, loss_code, n_threads, &total)
        if alpha_over_weight_sum > 0:
            for k in range(net.n_layers):
                for i in range(weight_offsets[k], bias_offsets[k]):
                    penalty += <double> params[i] * params[i]
    if status != 0:
        raise MemoryError("cffnn: could not allocate the loss workspace")
    return total + 0.5 * alpha_over_weight_sum * penalty


def loss_and_gradient(const Py_ssize_t[::1] sizes not None, const int[::1] codes not None,
                      const Py_ssize_t[::1] weight_offsets not None,
                      const Py_ssize_t[::1] bias_offsets not None, int loss_code,
                      const floating[::1] params not None, const floating[:, ::1] X not None,
                      const floating[:, ::1] Y not None, const double[::1] sample_weight,
                      double inv_weight_sum, double alpha_over_weight_sum,
                      floating[::1] grad not None, int n_threads):
    """Loss as in `loss`; the gradient is written into grad (layout of params)."""
    cdef Layout net = make_layout(sizes, codes, weight_offsets, bias_offsets)
    cdef const double* weight_ptr = NULL if sample_weight is None else &sample_weight[0]
    cdef double total
    cdef int status
    with nogil:
        status = train_all(&net, &params[0], &X[0, 0], X.shape[0], &Y[0, 0], weight_ptr,
                           inv_weight_sum, alpha_over_weight_sum, loss_code, &grad[0],
                           n_threads, &total)
    if status != 0:
        raise MemoryError("cffnn: could not allocate the training workspace")
    return total


def all_finite(const floating[:, ::1] X not None):
    """True when no element of X is NaN or infinite (x - x is 0 only for finite x)."""
    cdef Py_ssize_t i, n = X.shape[0] * X.shape[1]
    cdef const floating* data = &X[0, 0] if n > 0 else NULL
    cdef floating acc = 0
    with nogil:
        for i in range(n):
            acc += data[i] - data[i]
    return acc == 0
