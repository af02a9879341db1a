"""Optimiser steps: the compiled fused updates equal scikit-learn's rules (reference.py)."""
import subprocess
import sys

import numpy as np
import pytest

import cffnn
from cffnn import _optimizers, reference


def run_steps(optimizer, make_reference_step, dtype, n_steps=25, n_params=1000, seed=0):
    """Apply n_steps of random gradients with the optimiser and with the reference;
    return (compiled params, reference params)."""
    rng = np.random.default_rng(seed)
    params = rng.normal(size=n_params).astype(dtype)
    expected = params.copy()
    reference_step = make_reference_step(expected)
    for t in range(1, n_steps + 1):
        grad = rng.normal(size=n_params).astype(dtype) * (0.1 if t % 3 else 10.0)
        optimizer.step(params, grad)
        reference_step(grad, t)
    return params, expected


def sgd_reference(learning_rate, momentum, nesterov):
    def make(expected):
        velocity = np.zeros_like(expected)
        return lambda grad, t: reference.sgd_step(expected, grad, velocity, learning_rate,
                                                  momentum, nesterov)
    return make


def adam_reference(learning_rate, beta_1, beta_2, epsilon):
    def make(expected):
        first, second = np.zeros_like(expected), np.zeros_like(expected)
        return lambda grad, t: reference.adam_step(expected, grad, first, second, t,
                                                   learning_rate, beta_1, beta_2, epsilon)
    return make


def rprop_reference(increase, decrease, delta_min, delta_max, delta_zero):
    def make(expected):
        previous, sizes = np.zeros_like(expected), np.full_like(expected, delta_zero)
        return lambda grad, t: reference.rprop_step(expected, grad, previous, sizes,
                                                    increase, decrease, delta_min, delta_max)
    return make


CASES = [
    (lambda: cffnn.SGD(0.05), sgd_reference(0.05, 0.0, False)),
    (lambda: cffnn.SGD(0.05, momentum=0.9), sgd_reference(0.05, 0.9, False)),
    (lambda: cffnn.SGD(0.05, momentum=0.9, nesterov=True), sgd_reference(0.05, 0.9, True)),
    (lambda: cffnn.Adam(), adam_reference(0.001, 0.9, 0.999, 1e-8)),
    (lambda: cffnn.Adam(0.01, beta_1=0.5, beta_2=0.9, epsilon=1e-6),
     adam_reference(0.01, 0.5, 0.9, 1e-6)),
    (lambda: cffnn.RPROP(), rprop_reference(1.2, 0.5, 0.0, 50.0, 0.1)),
    (lambda: cffnn.RPROP(increase=1.5, decrease=0.3, delta_min=1e-3, delta_max=0.2,
                         delta_zero=0.05), rprop_reference(1.5, 0.3, 1e-3, 0.2, 0.05)),
]


@pytest.mark.parametrize("make_optimizer, make_reference_step", CASES)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_steps_match_reference(make_optimizer, make_reference_step, dtype, rtol):
    params, expected = run_steps(make_optimizer(), make_reference_step, dtype)
    assert params.dtype == dtype
    scale = np.max(np.abs(expected))
    assert np.max(np.abs(params - expected)) <= rtol * scale


def compiled_update(kind, params, grad):
    """One in-place step of a compiled update (cffnn/_optimizers.pyx) from fresh state;
    returns its flag: whether every new parameter is finite."""
    if kind in ("sgd", "nesterov"):
        return _optimizers.sgd_step(params, grad, np.zeros_like(params), 0.1, 0.9,
                                    kind == "nesterov")
    if kind == "adam":
        return _optimizers.adam_step(params, grad, np.zeros_like(params),
                                     np.zeros_like(params), 0.001, 0.9, 0.999, 1e-8)
    return _optimizers.rprop_step(params, grad, np.zeros_like(params),
                                  np.full_like(params, 0.1), 1.2, 0.5, 0.0, 50.0)


@pytest.mark.parametrize("kind", ["sgd", "nesterov", "adam", "rprop"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_updates_flag_every_non_finite_new_parameter(kind, dtype):
    """The fused updates OR a non-finite flag into their loop (checks.h's bit test, which
    fit_epoch refuses a step on): it must see a NaN or infinity in every vector lane and in
    the scalar tail, and nothing else, not the largest finite value, subnormals or -0."""
    info = np.finfo(dtype)
    for n in (1, 3, 8, 9, 17, 35):
        grad = np.zeros(n, dtype=dtype)
        for position in range(n):
            for bad in (np.inf, -np.inf, np.nan):
                params = np.linspace(-1, 1, n).astype(dtype)
                params[position] = bad
                assert not compiled_update(kind, params, grad), (n, position, bad)
        edge = np.resize(np.array([info.max, -info.max, info.smallest_subnormal, -0.0,
                                   info.tiny, 1.0], dtype=dtype), n)
        assert compiled_update(kind, edge, grad)
    if kind in ("sgd", "nesterov"):   # finite in, overflowing out
        params = np.full(9, info.max, dtype=dtype)
        assert not compiled_update(kind, params, np.full(9, -info.max, dtype=dtype))


def test_state_lives_in_the_params_dtype_and_reset_forgets_it():
    optimizer = cffnn.Adam()
    params = np.zeros(5, dtype=np.float32)
    optimizer.step(params, np.ones(5))
    assert optimizer.first_moment.dtype == np.float32 and optimizer.t == 1
    optimizer.reset()
    assert optimizer.t == 0 and optimizer.first_moment is None


def test_step_updates_a_network_in_place_through_its_views():
    net = cffnn.Network([3, 4, 2], output="softmax", dtype=np.float64, random_state=0)
    X = np.random.default_rng(0).normal(size=(6, 3))
    y = np.array([0, 1, 0, 1, 1, 0])
    before = net.loss(X, y)
    optimizer = cffnn.SGD(0.5)
    for _ in range(20):
        optimizer.step(net.params, net.loss_and_gradient(X, y)[1])
    assert net.loss(X, y) < before


@pytest.mark.parametrize("make, error", [
    (lambda: cffnn.SGD(learning_rate=-1), ValueError),
    (lambda: cffnn.SGD(learning_rate="0.1"), TypeError),
    (lambda: cffnn.SGD(momentum=1.5), ValueError),
    (lambda: cffnn.SGD(nesterov="yes"), TypeError),
    (lambda: cffnn.Adam(beta_1=1.0), ValueError),
    (lambda: cffnn.Adam(beta_2=float("nan")), ValueError),
    (lambda: cffnn.Adam(epsilon=-1e-8), ValueError),
    (lambda: cffnn.RPROP(increase=0.9), ValueError),
    (lambda: cffnn.RPROP(decrease=1.5), ValueError),
    (lambda: cffnn.RPROP(delta_min=2.0, delta_max=1.0), ValueError),
])
def test_bad_hyper_parameters_raise(make, error):
    with pytest.raises(error):
        make()


def test_bad_step_arrays_raise():
    optimizer = cffnn.SGD()
    with pytest.raises(TypeError, match="params"):
        optimizer.step([0.0, 1.0], [1.0, 1.0])
    with pytest.raises(TypeError, match="params"):
        optimizer.step(np.zeros(4, dtype=np.int64), np.ones(4))
    read_only = np.zeros(4)
    read_only.setflags(write=False)
    with pytest.raises(TypeError, match="writeable"):
        optimizer.step(read_only, np.ones(4))
    with pytest.raises(ValueError, match="shape"):
        optimizer.step(np.zeros(4), np.ones(3))


@pytest.mark.parametrize("step, names", [
    (lambda a, b, c: _optimizers.sgd_step(a, b, c, 0.1, 0.9, False), ("grad", "velocity")),
    (lambda a, b, c: _optimizers.adam_step(a, b, c, c, 0.1, 0.9, 0.999, 1e-8),
     ("grad", "first_moment")),
    (lambda a, b, c: _optimizers.rprop_step(a, b, c, c, 1.2, 0.5, 0.0, 50.0),
     ("grad", "previous_grad")),
])
def test_compiled_steps_refuse_arrays_shorter_than_params(step, names):
    """Their loops write len(params) values into every state array."""
    params = np.zeros(8)
    with pytest.raises(ValueError, match=names[0]):
        step(params, np.ones(7), np.zeros(8))
    with pytest.raises(ValueError, match=names[1]):
        step(params, np.ones(8), np.zeros(7))
    assert not params.any()


RACE = """
import sys, threading
import numpy as np
import cffnn
optimizer = {"sgd": cffnn.SGD(0.01, momentum=0.9), "adam": cffnn.Adam(),
             "rprop": cffnn.RPROP()}[sys.argv[1]]
def steps(n):
    params, grad = np.zeros(n, np.float32), np.ones(n, np.float32)
    for _ in range(5000):
        optimizer.step(params, grad)
threads = [threading.Thread(target=steps, args=(n,)) for n in (100000, 10)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
"""


@pytest.mark.parametrize("kind", ["sgd", "adam", "rprop"])
def test_one_optimizer_stepped_from_two_threads_over_two_sizes_does_not_crash(kind,
                                                                            tmp_path):
    """A misuse, but never a crash: step() read its state arrays from the optimiser again
    after sizing them, and the other thread's arrays (10 values) took 100000 (Adam and
    RPROP ended in a segmentation fault). In a child process (cwd outside the clone: the
    installed package), which such a crash would end."""
    done = subprocess.run([sys.executable, "-c", RACE, kind], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Exception in thread" not in done.stderr, done.stderr[-2000:]   # nor an error


def test_invscaling_follows_samples_seen():
    """scikit-learn: learning_rate = learning_rate_init / (t + 1) ** power_t, t = samples
    seen, applied at the end of every epoch."""
    X = np.random.default_rng(0).normal(size=(50, 3))
    y = np.arange(50) % 2
    net = cffnn.Network([3, 4, 2], random_state=0)
    optimizer = cffnn.SGD(0.1, schedule="invscaling", power_t=0.25)
    for _ in range(2):
        net.fit_epoch(X, y, optimizer, batch_size=10)
    assert optimizer.samples_seen == 100
    assert optimizer.learning_rate == pytest.approx(0.1 / 101 ** 0.25)


def test_adaptive_divides_by_five_after_n_iter_no_change_then_converges():
    optimizer = cffnn.SGD(1e-5, schedule="adaptive", n_iter_no_change=2, tol=1e-4)
    rates = []
    for _ in range(9):
        optimizer.end_epoch(1.0, 10)          # a loss that never improves
        rates.append(optimizer.learning_rate)
    # best_loss is set by the first epoch; then 3 non-improving epochs (> 2) trigger /5
    assert rates == pytest.approx([1e-5] * 3 + [2e-6] * 3 + [4e-7] * 3, rel=1e-12)
    assert not optimizer.converged
    optimizer.end_epoch(1.0, 10)
    assert optimizer.converged and optimizer.learning_rate == pytest.approx(4e-7)


def test_constant_schedule_keeps_the_rate_and_reset_restores_it():
    optimizer = cffnn.SGD(0.2, schedule="adaptive", n_iter_no_change=1)
    for _ in range(3):
        optimizer.end_epoch(1.0, 5)
    assert optimizer.learning_rate < 0.2
    optimizer.reset()
    assert optimizer.learning_rate == 0.2 and optimizer.samples_seen == 0
    constant = cffnn.SGD(0.2)
    constant.end_epoch(1.0, 5)
    assert constant.learning_rate == 0.2


def test_bad_schedule_raises():
    with pytest.raises(ValueError, match="schedule"):
        cffnn.SGD(schedule="cosine")
    with pytest.raises(ValueError, match="n_iter_no_change"):
        cffnn.SGD(n_iter_no_change=0)


def test_rprop_sign_flip_makes_no_move_and_shrinks_the_step():
    optimizer = cffnn.RPROP()
    params = np.zeros(2)
    optimizer.step(params, np.array([1.0, -1.0]))       # steps 0.1 * 1.2 against the sign
    np.testing.assert_allclose(params, [-0.12, 0.12])
    optimizer.step(params, np.array([-1.0, -1.0]))      # first flips: no move, step halves
    np.testing.assert_allclose(params, [-0.12, 0.12 + 0.144])
    np.testing.assert_allclose(optimizer.step_sizes, [0.06, 0.144])
