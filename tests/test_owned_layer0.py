"""Training with layer 0 owned by parts of its rows (_kernels.owned_parts).

In float32, with smallgemm.h (AVX2 and FMA), a minibatch of at most 256 rows of a network
whose W[0] is large has W[0]'s rows cut into parts, each owned by one thread of a team for
the whole minibatch: its partial sums of the forward pass, its rows of the gradient and
their update. The tests lower the size threshold to 0 (set_owned_layer0) so that small
networks take that path, and check that it gives one thread's bits on a team, the
maths of the float64 reference, and the same divergence reports as the blocks of rows.
"""
import numpy as np
import pytest

import cffnn
from cffnn import _kernels

OWNED = _kernels.small_gemm_available()    # (else owned_parts is 0: the blocks of rows)


@pytest.fixture
def owned():
    """Layer 0 owned by parts whatever its size, teams never solo; restored after."""
    previous_owned = _kernels.set_owned_layer0(True, 0)
    previous_limits = _kernels.set_team_limits(float("inf"), 0.0)
    yield
    _kernels.set_owned_layer0(*previous_owned)
    _kernels.set_team_limits(*previous_limits)


def problem(n_rows, n_features, n_classes, seed=0):
    """Image-like float32 inputs (half of them 0), one-hot targets, positive weights."""
    rng = np.random.default_rng(seed)
    X = rng.random((n_rows, n_features), dtype=np.float32)
    X[X < 0.5] = 0
    Y = np.eye(n_classes, dtype=np.float32)[rng.integers(0, n_classes, n_rows)]
    return X, Y, rng.random(n_rows) + 0.2


OPTIMIZERS = {
    "sgd": lambda: cffnn.SGD(0.05),
    "nesterov": lambda: cffnn.SGD(0.05, momentum=0.9, nesterov=True),
    "adam": lambda: cffnn.Adam(0.001),
}


def train(n_threads, make_optimizer, shuffle, alpha, weights, sizes=(96, 64, 32, 4),
          activation="relu", epochs=2):
    """Epochs of 250 rows in minibatches of 64 (the last of 58 rows)."""
    X, Y, sample_weight = problem(250, sizes[0], sizes[-1])
    net = cffnn.Network(list(sizes), activation=activation, random_state=0)
    optimizer = make_optimizer()
    losses = [net.fit_epoch(X, Y, optimizer, batch_size=64, shuffle=shuffle, alpha=alpha,
                            sample_weight=sample_weight if weights else None,
                            random_state=epoch, n_threads=n_threads)
              for epoch in range(epochs)]
    return net, losses


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("alpha, weights", [(0.0, False), (0.01, True)])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_owned_parts_give_one_threads_bits_on_a_team(name, alpha, weights, shuffle, owned):
    net_1, losses_1 = train(1, OPTIMIZERS[name], shuffle, alpha, weights)
    net_2, losses_2 = train(2, OPTIMIZERS[name], shuffle, alpha, weights)
    np.testing.assert_array_equal(net_1.params, net_2.params)
    assert losses_1 == losses_2
    assert net_1._compiled.owned_epochs() == (2 if OWNED else 0)
    assert net_2._compiled.owned_epochs() == (2 if OWNED else 0)
    if cffnn._threads.openmp_enabled():
        assert net_2._compiled.team_statistics() == (2, 0, 0)


@pytest.mark.parametrize("sizes", [[70, 48, 16, 5],     # parts of 35 rows (n_1 % 16 == 0)
                                   [70, 33, 16, 5],     # 32 and 38 (at a multiple of 16)
                                   [70, 40, 5]])        # 36 and 34 (a multiple of 2)
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "logistic"])
def test_owned_parts_give_the_reference_gradient(activation, sizes, owned):
    """loss_and_gradient of 150 rows on 1 and 2 threads (the same bits), against the
    float64 network at the same parameters: float32 rounding only."""
    X, Y, sample_weight = problem(150, 70, 5, seed=1)
    net = cffnn.Network(sizes, activation=activation, random_state=0)
    twin = cffnn.Network(sizes, activation=activation, dtype=np.float64, random_state=0)
    twin.params = net.params
    expected_loss, expected_grad = twin.loss_and_gradient(
        X.astype(np.float64), Y.astype(np.float64), sample_weight=sample_weight, alpha=0.01)
    results = [net.loss_and_gradient(X, Y, sample_weight=sample_weight, alpha=0.01,
                                     n_threads=n_threads) for n_threads in (1, 2)]
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    loss, grad = results[0]
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    assert np.max(np.abs(grad - expected_grad)) <= 1e-5 * np.max(np.abs(expected_grad))


def test_owned_parts_train_as_the_float64_network_does(owned):
    """Two unshuffled SGD epochs (momentum, a penalty, weights, a partial last batch)
    in float32 with owned parts against the same epochs in float64 (which the tests of
    fit_epoch check against reference steps): float32 rounding only."""
    results = []
    for dtype in (np.float32, np.float64):
        X, Y, sample_weight = problem(250, 96, 4)
        net = cffnn.Network([96, 64, 32, 4], dtype=dtype, random_state=0)
        optimizer = cffnn.SGD(0.05, momentum=0.9)
        losses = [net.fit_epoch(X.astype(dtype), Y.astype(dtype), optimizer, batch_size=64,
                                shuffle=False, alpha=0.01, sample_weight=sample_weight,
                                n_threads=2) for _ in range(2)]
        results.append((net.params.astype(np.float64), losses))
    (params_32, losses_32), (params_64, losses_64) = results
    np.testing.assert_allclose(losses_32, losses_64, rtol=1e-5)
    assert np.max(np.abs(params_32 - params_64)) <= 1e-5 * np.max(np.abs(params_64))


def test_a_team_with_owned_parts_that_goes_solo_gives_the_same_results(owned):
    """Thread 0 alone then owns every part: the same sums, so the same bits."""
    _kernels.set_team_limits(0.0, 0.0)            # solo at the first barrier
    net_1, losses_1 = train(1, OPTIMIZERS["adam"], True, 0.01, True)
    net_2, losses_2 = train(2, OPTIMIZERS["adam"], True, 0.01, True)
    np.testing.assert_array_equal(net_1.params, net_2.params)
    assert losses_1 == losses_2
    if cffnn._threads.openmp_enabled():
        assert net_2._compiled.team_statistics() == (1, 1, 0)


def test_teams_of_more_threads_than_parts_give_one_threads_bits(monkeypatch, owned):
    """Teams of 3 and 4 threads (the cap at the usable cores lifted, as in
    test_fit_epoch's teams of more threads than cores) on minibatches of 256 rows (4
    blocks): the threads beyond the two parts own none, and wait at phase 0's barrier."""
    from cffnn import _parallelism
    monkeypatch.setattr(_parallelism, "_USABLE_CPUS", 8)
    X, Y, sample_weight = problem(1000, 96, 4)
    results = {}
    for n_threads in (1, 3, 4):
        net = cffnn.Network([96, 64, 32, 4], random_state=0)
        optimizer = cffnn.Adam(0.001)
        for epoch in range(2):
            net.fit_epoch(X, Y, optimizer, batch_size=256, alpha=1e-3,
                          sample_weight=sample_weight, random_state=epoch,
                          n_threads=n_threads)
        results[n_threads] = net.params.copy()
        assert net._compiled.owned_epochs() == (2 if OWNED else 0)
        if n_threads > 1 and cffnn._threads.openmp_enabled():
            assert net._compiled.team_statistics() == (2, 0, 0)
    for n_threads in (3, 4):
        np.testing.assert_array_equal(results[n_threads], results[1],
                                      err_msg=f"n_threads={n_threads}")


@pytest.mark.parametrize("name", ["sgd", "adam"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_non_finite_gradient_in_an_owned_part_stops_the_epoch(n_threads, name, owned):
    """A regression to targets of 1e18 (deltas of ~1e16) with one input of 1e38 whose
    weights are 0: the forward pass and the loss stay finite, and that input's row of
    dW[0] (in the second part) overflows. The epoch stops before that minibatch's update
    and names layer 0; the parameters and the optimiser's state are those of before it."""
    X, _, _ = problem(250, 96, 1)
    X[:, 90] = 1e38
    Y = np.full((250, 1), 1e18, dtype=np.float32)
    net = cffnn.Network([96, 64, 32, 1], output="identity", random_state=0)
    net.weights[0][90] = 0.0
    before = net.params.copy()
    optimizer = OPTIMIZERS[name]()
    with pytest.raises(cffnn.DivergenceError, match="minibatch 0: non-finite gradient in "
                                                    "layer 0"):
        net.fit_epoch(X, Y, optimizer, batch_size=64, n_threads=n_threads)
    np.testing.assert_array_equal(net.params, before)
    if name == "sgd":
        assert not np.any(optimizer.velocity)
    else:
        assert optimizer.t == 0


@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_non_finite_update_of_an_owned_part_keeps_the_last_finite_parameters(
        n_threads, owned):
    X, Y, _ = problem(250, 96, 4)
    net = cffnn.Network([96, 64, 32, 4], random_state=0)
    before = net.params.copy()
    with pytest.raises(cffnn.DivergenceError, match="minibatch 0: non-finite update"):
        net.fit_epoch(X, Y, cffnn.Adam(learning_rate=1e39), batch_size=64,
                      n_threads=n_threads)
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("sizes, dtype, batch_size, expected", [
    ([784, 256, 10], np.float32, 128, 1),     # W[0] of 784 KB: owned
    ([784, 256, 10], np.float32, 512, 0),     # a minibatch beyond smallgemm.h's gradients
    ([784, 256, 10], np.float64, 128, 0),     # float64: BLAS
    ([256, 256, 10], np.float32, 128, 0),     # W[0] of 256 KB: under OWNED_MIN_BYTES
    ([784, 10], np.float32, 128, 0),          # layer 0 is the output layer
])
def test_layer_0_is_owned_where_its_weights_are_large(sizes, dtype, batch_size, expected):
    X, Y, _ = problem(600, sizes[0], sizes[-1])
    net = cffnn.Network(sizes, dtype=dtype, random_state=0)
    net.fit_epoch(X.astype(dtype), Y.astype(dtype), cffnn.Adam(), batch_size=batch_size)
    assert net._compiled.owned_epochs() == (expected if OWNED else 0)


def test_set_owned_layer0_returns_the_previous_setting_and_checks_its_size():
    previous = _kernels.set_owned_layer0(False, 1024)
    try:
        assert _kernels.set_owned_layer0(True, 0) == (False, 1024)
        with pytest.raises(ValueError, match="min_bytes must be >= 0"):
            _kernels.set_owned_layer0(True, -1)
    finally:
        _kernels.set_owned_layer0(*previous)
