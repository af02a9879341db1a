"""Network.fit_epoch: one compiled epoch of minibatch training (issue 3, first part)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import cffnn
from cffnn import _kernels, reference


def make_problem(n=103, n_features=5, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    y = rng.integers(0, n_classes, n)
    return X, y, rng.random(n) + 0.2


def reference_epochs(net, X, Y, kind, settings, batch_size, alpha, sample_weight, orders):
    """Mean losses of epochs of reference steps on a copy of net's parameters, minibatches
    being consecutive slices of X[order] for each order; returns (params, losses).
    settings: the optimiser's settings, or a list of them, one per epoch."""
    twin = cffnn.Network(net.layer_sizes, activation=list(net.activations), output=net.output,
                         loss=net.loss_name, dtype=np.float64, random_state=0)
    twin.params = net.params
    params = twin.params
    state = [np.zeros_like(params), np.zeros_like(params)]
    t, losses = 0, []
    epoch_settings = settings if isinstance(settings, list) else [settings] * len(orders)
    for order, settings in zip(orders, epoch_settings):
        loss_sum = weight_sum = 0.0
        for start in range(0, X.shape[0], batch_size):
            rows = order[start:start + batch_size]
            weights = None if sample_weight is None else sample_weight[rows]
            loss, grad_w, grad_b = reference.loss_and_gradient(
                twin.weights, twin.biases, X[rows], Y[rows], twin.activations, twin.output,
                twin.loss_name, alpha, weights)
            grad = reference.flatten(grad_w, grad_b)
            if kind == "sgd":
                reference.sgd_step(params, grad, state[0], *settings)
            elif kind == "rprop":
                if t == 0:
                    state[0][...] = 0.1
                t += 1
                reference.rprop_step(params, grad, state[1], state[0], *settings)
            else:
                t += 1
                reference.adam_step(params, grad, state[0], state[1], t, *settings)
            batch_weight = len(rows) if weights is None else weights.sum()
            loss_sum += loss * batch_weight
            weight_sum += batch_weight
        losses.append(loss_sum / weight_sum)
    return params.copy(), losses


OPTIMIZERS = {
    "sgd": (lambda: cffnn.SGD(0.1), "sgd", (0.1, 0.0, False)),
    "momentum": (lambda: cffnn.SGD(0.1, momentum=0.9), "sgd", (0.1, 0.9, False)),
    "nesterov": (lambda: cffnn.SGD(0.1, momentum=0.9, nesterov=True), "sgd", (0.1, 0.9, True)),
    "adam": (lambda: cffnn.Adam(0.01), "adam", (0.01, 0.9, 0.999, 1e-8)),
    "rprop": (lambda: cffnn.RPROP(), "rprop", (1.2, 0.5, 0.0, 50.0)),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("alpha, weighted", [(0.0, False), (0.01, True)])
def test_unshuffled_epochs_equal_reference_steps(name, alpha, weighted):
    """103 rows in minibatches of 20 (the last has 3), three epochs, float64."""
    make_optimizer, kind, settings = OPTIMIZERS[name]
    X, y, sample_weight = make_problem()
    sample_weight = sample_weight if weighted else None
    Y = np.eye(3)[y]
    net = cffnn.Network([5, 8, 3], activation="tanh", dtype=np.float64, random_state=0)
    reference_batch = 103 if kind == "rprop" else 20      # RPROP is full batch
    expected, expected_losses = reference_epochs(
        net, X, Y, kind, settings, reference_batch, alpha, sample_weight,
        [np.arange(103)] * 3)
    optimizer = make_optimizer()
    losses = [net.fit_epoch(X, y, optimizer, batch_size=20, shuffle=False, alpha=alpha,
                            sample_weight=sample_weight) for _ in range(3)]
    assert np.max(np.abs(net.params - expected)) <= 1e-10 * np.max(np.abs(expected))
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-10)


@pytest.mark.parametrize("output, loss", [("logistic", "squared_error"),
                                          ("softmax", "squared_error"),
                                          ("logistic", "binary_log_loss"),
                                          ("identity", "squared_error")])
def test_unshuffled_epochs_equal_reference_steps_for_every_output_and_loss(output, loss):
    """The epoch's output deltas for the other output/loss pairs (the general chain rule
    of the non-canonical ones among them), float64, weighted, with a penalty."""
    X, y, sample_weight = make_problem()
    Y = np.eye(3)[y] if output != "identity" else np.random.default_rng(1).normal(size=(103, 3))
    net = cffnn.Network([5, 8, 3], activation="gelu", output=output, loss=loss,
                        dtype=np.float64, random_state=0)
    expected, expected_losses = reference_epochs(
        net, X, Y, "sgd", (0.1, 0.9, False), 20, 0.01, sample_weight, [np.arange(103)] * 2)
    optimizer = cffnn.SGD(0.1, momentum=0.9)
    losses = [net.fit_epoch(X, Y, optimizer, batch_size=20, shuffle=False, alpha=0.01,
                            sample_weight=sample_weight) for _ in range(2)]
    assert np.max(np.abs(net.params - expected)) <= 1e-10 * np.max(np.abs(expected))
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-10)


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_a_learning_rate_changed_between_epochs_applies_from_the_next_epoch(name):
    """A step decay set by hand (opt.learning_rate = ...), as fashion_accuracy.py's
    --drop-at does: the optimiser's state carries over, the new rate applies."""
    make_optimizer, kind, settings = OPTIMIZERS[name]
    X, y, _ = make_problem()
    net = cffnn.Network([5, 8, 3], activation="relu", dtype=np.float64, random_state=0)
    decayed = (settings[0] / 10,) + settings[1:]
    expected, expected_losses = reference_epochs(
        net, X, np.eye(3)[y], kind, [settings, decayed, decayed], 20, 0.0, None,
        [np.arange(103)] * 3)
    optimizer = make_optimizer()
    losses = [net.fit_epoch(X, y, optimizer, batch_size=20, shuffle=False)]
    optimizer.learning_rate /= 10
    losses += [net.fit_epoch(X, y, optimizer, batch_size=20, shuffle=False)
               for _ in range(2)]
    assert np.max(np.abs(net.params - expected)) <= 1e-10 * np.max(np.abs(expected))
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-10)


def test_shuffled_epoch_follows_the_seeded_permutation():
    X, y, _ = make_problem()
    Y = np.eye(3)[y]
    net = cffnn.Network([5, 8, 3], activation="relu", dtype=np.float64, random_state=1)
    order = _kernels.shuffled_order(7, X.shape[0])   # an int is the permutation's seed
    expected, _ = reference_epochs(net, X, Y, "sgd", (0.1, 0.9, False), 16, 0.0, None, [order])
    net.fit_epoch(X, y, cffnn.SGD(0.1, momentum=0.9), batch_size=16, random_state=7)
    assert np.max(np.abs(net.params - expected)) <= 1e-10 * np.max(np.abs(expected))


@pytest.mark.parametrize("make_state", [lambda: np.random.default_rng(3),
                                        lambda: np.random.RandomState(3)],
                         ids=["Generator", "RandomState"])
def test_a_generator_seeds_each_epoch_differently_and_reproducibly(make_state):
    """A Generator or RandomState gives each epoch's seed by one draw: two epochs from one
    generator are shuffled differently, and the same generator state repeats them."""
    X, y, _ = make_problem()
    runs = []
    for _ in range(2):
        net = cffnn.Network([5, 8, 3], dtype=np.float64, random_state=0)
        optimizer, state = cffnn.SGD(0.1), make_state()
        runs.append([])
        for _ in range(2):
            net.fit_epoch(X, y, optimizer, batch_size=16, random_state=state)
            runs[-1].append(net.params.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    first_from_seed = cffnn.Network([5, 8, 3], dtype=np.float64, random_state=0)
    first_from_seed.fit_epoch(X, y, cffnn.SGD(0.1), batch_size=16,
                              random_state=_draw_of(make_state()))
    np.testing.assert_array_equal(first_from_seed.params, runs[0][0])


def _draw_of(state):
    """The seed fit_epoch takes from a Generator or RandomState (network._shuffled_order)."""
    if isinstance(state, np.random.Generator):
        return state.bit_generator.random_raw()
    return int(state.randint(np.iinfo(np.uint64).max, dtype=np.uint64))


# -- the shuffled row order itself (include/cffnn/shuffle.h) -----------------------------

@pytest.mark.parametrize("n", [0, 1, 2, 103, 100_000])
def test_shuffled_order_is_a_permutation_fixed_by_its_seed(n):
    order = _kernels.shuffled_order(12345, n)
    assert order.dtype == np.intp and order.shape == (n,)
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    np.testing.assert_array_equal(_kernels.shuffled_order(12345, n), order)
    if n > 100:
        assert not np.array_equal(_kernels.shuffled_order(12346, n), order)


def test_every_order_of_four_rows_is_equally_likely():
    """The 24 orders of 4 rows over seeds 0..47999 (consecutive, as epochs use them): a
    chi-square statistic of 23 degrees of freedom, which exceeds 66 with probability
    1e-6. Drawing j from [0, i) instead of [0, i] (Sattolo's cycles) makes 6 orders only."""
    counts = {}
    for seed in range(48000):
        order = tuple(_kernels.shuffled_order(seed, 4))
        counts[order] = counts.get(order, 0) + 1
    assert len(counts) == 24
    chi_square = sum((count - 2000) ** 2 / 2000 for count in counts.values())
    assert chi_square < 66


@pytest.mark.parametrize("upper, bucket", [
    (3 * 2**30, lambda v: v % 3),       # 32-bit branch; plain r * upper >> 32 gives v % 3 == 0
                                        # half the time
    (3 * 2**62, lambda v: v // 2**62),  # 64-bit branch; plain r % upper gives [0, 2^62)
                                        # half the time
], ids=["32-bit", "64-bit"])
def test_uniform_integers_are_unbiased_in_both_branches(upper, bucket):
    """Bounds whose surplus (2^32 or 2^64 mod upper) is a third of them: without the
    redraws one bucket would get 1/2 of the draws instead of 1/3."""
    draws = _kernels.uniform_below(2024, upper, 300_000)
    assert draws.max() < upper
    shares = np.bincount(bucket(draws).astype(np.int64), minlength=3) / draws.size
    np.testing.assert_allclose(shares, 1 / 3, atol=0.01)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_seed_gives_bit_identical_parameters_whatever_the_thread_count(dtype):
    """Large enough that n_threads=2 really runs a team (2048 rows x 8k multiply-adds)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4096, 64)).astype(dtype)
    y = rng.integers(0, 10, 4096)
    results = []
    for n_threads in (1, 2, 1):
        net = cffnn.Network([64, 128, 10], dtype=dtype, random_state=0)
        optimizer = cffnn.Adam(0.01)
        for epoch in range(2):
            net.fit_epoch(X, y, optimizer, batch_size=2048, random_state=epoch,
                          n_threads=n_threads)
        results.append(net.params.copy())
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])


@pytest.mark.parametrize("make_optimizer", [lambda: cffnn.Adam(0.001),
                                            lambda: cffnn.SGD(0.01, momentum=0.9),
                                            cffnn.RPROP])
def test_large_network_update_on_a_team_is_bit_identical(make_optimizer):
    """Over 131072 parameters the optimiser update itself runs on the team."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1024, 300)).astype(np.float32)
    y = rng.integers(0, 10, 1024)
    results = []
    for n_threads in (1, 2):
        net = cffnn.Network([300, 512, 10], dtype=np.float32, random_state=0)
        assert net.n_params > 131072
        optimizer = make_optimizer()
        for epoch in range(2):
            net.fit_epoch(X, y, optimizer, batch_size=512, random_state=epoch,
                          n_threads=n_threads)
        results.append(net.params.copy())
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_streamed_adam_update_on_a_team_gives_the_same_bits(dtype, team_limits):
    """A team writes Adam's new parameters of a large network with streaming stores
    (include/cffnn/adam.h), the same values as ordinary stores and as one thread."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(1024, 300)).astype(dtype)
    X[X < 0] = 0                        # zeros, as in images: the sparse products too
    y = rng.integers(0, 10, 1024)
    team_limits(1.0, 1e9)               # teams stay teams
    results = {}
    for n_threads, stream in [(1, "always"), (2, "always"), (2, "never")]:
        previous = _kernels.set_streaming_update(stream)
        try:
            net = cffnn.Network([300, 512, 10], dtype=dtype, random_state=0)
            assert net.params.nbytes >= 524288          # STREAMED_UPDATE_BYTES
            optimizer = cffnn.Adam(0.001)
            for epoch in range(2):
                net.fit_epoch(X, y, optimizer, batch_size=512, random_state=epoch,
                              n_threads=n_threads)
        finally:
            _kernels.set_streaming_update(previous)
        key = (n_threads, stream)
        results[key] = (net.params.copy(), optimizer.first_moment.copy(),
                        optimizer.second_moment.copy())
        if cffnn._threads.openmp_enabled():
            assert net._compiled.streamed_epochs() == (2 if key == (2, "always") else 0)
    for key in [(2, "always"), (2, "never")]:
        for got, expected in zip(results[key], results[1, "always"]):
            np.testing.assert_array_equal(got, expected, err_msg=str(key))
    with pytest.raises(ValueError, match="mode must be one of"):
        _kernels.set_streaming_update("sometimes")


@pytest.mark.parametrize("dtype, sizes, make_optimizer", [
    (np.float32, [300, 512, 10], lambda: cffnn.Adam(0.001)),
    (np.float64, [64, 128, 10], lambda: cffnn.SGD(0.01, momentum=0.9, nesterov=True)),
])
def test_teams_of_more_threads_than_cores_give_bit_identical_parameters(
        monkeypatch, dtype, sizes, make_optimizer):
    """Teams of 3, 4 and 8 threads, as a machine with that many cores runs them.

    fit_epoch caps its team at the usable cores (barrier_team_threads) and lets a team
    that waits too much go on with one thread (team.h): here the cap is lifted and the
    team is kept together, so that these teams really run every minibatch, on this
    machine's 2 cores (a thread may then lose its core in the middle of any phase).
    Minibatches of 512 rows are 8 blocks. The blocks, the gradient tasks and the update
    chunks do not depend on the team, so neither may a bit of the result, with sample
    weights and a penalty too."""
    from cffnn import _parallelism
    monkeypatch.setattr(_parallelism, "_USABLE_CPUS", 8)
    previous = _kernels.set_team_limits(1.0, 1e9)      # never solo
    rng = np.random.default_rng(5)
    X = rng.normal(size=(1536, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], 1536)
    sample_weight = rng.uniform(0, 2, 1536)
    results = {}
    try:
        for n_threads in (1, 3, 4, 8):
            net = cffnn.Network(sizes, dtype=dtype, random_state=0)
            optimizer = make_optimizer()
            for epoch in range(2):
                net.fit_epoch(X, y, optimizer, batch_size=512, alpha=1e-3,
                              sample_weight=sample_weight, random_state=epoch,
                              n_threads=n_threads)
            results[n_threads] = net.params.copy()
            if n_threads > 1 and cffnn._threads.openmp_enabled():
                assert net._compiled.team_statistics() == (2, 0, 0)   # 2 team epochs, no solo
                if os.path.isdir("/proc/self/task"):
                    # OpenMP keeps a team's workers: the process has n_threads - 1 of them
                    assert len(os.listdir("/proc/self/task")) >= n_threads
    finally:
        _kernels.set_team_limits(*previous)
    for n_threads in (3, 4, 8):
        np.testing.assert_array_equal(results[n_threads], results[1],
                                      err_msg=f"n_threads={n_threads}")


@pytest.fixture
def team_limits():
    """Sets when an epoch's team goes solo (include/cffnn/team.h), restoring it after."""
    from cffnn import _kernels
    previous = _kernels.set_team_limits(0.4, 0.002)
    yield _kernels.set_team_limits
    _kernels.set_team_limits(*previous)


SMALL_TEAM_CASES = {
    # a minibatch of a small network is two blocks: an epoch of it runs on a team
    "regression": dict(sizes=[8, 64, 64, 1], activation="tanh", output="identity",
                       batch_size=64, make_optimizer=lambda: cffnn.SGD(0.01, momentum=0.9)),
    "classification": dict(sizes=[64, 32, 10], activation="relu", output="softmax",
                           batch_size=64, make_optimizer=lambda: cffnn.Adam(0.01)),
}


def small_team_problem(case, dtype, n_rows=1000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, case["sizes"][0])).astype(dtype)
    if case["output"] == "softmax":
        y = rng.integers(0, case["sizes"][-1], n_rows)
    else:
        y = (np.sin(X[:, 0]) + X[:, 1] * X[:, 2]).astype(dtype)
    return X, y, rng.random(n_rows) + 0.1


def train_small_team_case(case, dtype, n_threads, weighted, epochs=3):
    X, y, weights = small_team_problem(case, dtype)
    net = cffnn.Network(case["sizes"], activation=case["activation"], output=case["output"],
                        dtype=dtype, random_state=0)
    optimizer = case["make_optimizer"]()
    losses = [net.fit_epoch(X, y, optimizer, batch_size=case["batch_size"],
                            sample_weight=weights if weighted else None,
                            random_state=epoch, n_threads=n_threads)
              for epoch in range(epochs)]
    return net, losses


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", sorted(SMALL_TEAM_CASES))
def test_small_minibatches_on_a_team_are_bit_identical(name, weighted, dtype, team_limits):
    """Small networks' minibatches of 64 rows are shared by a team that lives for
    the epoch (its phases separated by team.h's barriers): the same parameters and losses
    as on one thread, bit for bit."""
    team_limits(float("inf"), 0.0)        # the team never goes solo here
    case = SMALL_TEAM_CASES[name]
    net_1, losses_1 = train_small_team_case(case, dtype, 1, weighted)
    net_2, losses_2 = train_small_team_case(case, dtype, 2, weighted)
    np.testing.assert_array_equal(net_1.params, net_2.params)
    assert losses_1 == losses_2
    assert net_1._compiled.team_statistics() == (0, 0, 0)
    if cffnn._threads.openmp_enabled():
        assert net_2._compiled.team_statistics() == (3, 0, 0)


@pytest.mark.parametrize("name", sorted(SMALL_TEAM_CASES))
def test_a_team_that_goes_solo_gives_the_same_results(name, team_limits):
    """When the team's threads wait too much (another process has one of the cores),
    thread 0 finishes the epoch alone, and the next epochs run on one thread: the blocks
    and tasks are the same, so are the results."""
    team_limits(0.0, 0.0)                 # solo at the first barrier
    case = SMALL_TEAM_CASES[name]
    net_1, losses_1 = train_small_team_case(case, np.float32, 1, True)
    net_2, losses_2 = train_small_team_case(case, np.float32, 2, True)
    np.testing.assert_array_equal(net_1.params, net_2.params)
    assert losses_1 == losses_2
    if cffnn._threads.openmp_enabled():
        # the first epoch went solo; the next ones (cooldown) did not start a team
        assert net_2._compiled.team_statistics() == (1, 1, 0)


def test_a_team_slower_than_one_thread_is_followed_by_epochs_on_one_thread(team_limits):
    """epoch_threads and judge_team, replayed: the first team epoch is followed by one
    1-thread epoch that times a row; a team slower than that is followed by another
    1-thread timing, and if the next team is slow again, by 4, then 8, 16 ... epochs (up
    to 256) on one thread; a faster team resets that; an epoch stopped by divergence
    changes nothing; a team that went solo backs off the same way; a new batch size is
    timed again, and one that keeps changing is never timed (its epochs all run on the
    team, as before teams were timed)."""
    team_limits(0.4, 0.002)
    fast, slow, one = 350.0, 900.0, 430.0    # ns a row: teams, and one thread

    def epochs(ns, batch_size=64, went_solo=False, whole=True):
        return [(batch_size, went_solo, whole, value) for value in ns]

    replay = (epochs([400.0, one, fast])
              + epochs([slow, one, slow]) + epochs([one] * 4)      # slow twice: 4
              + epochs([slow]) + epochs([one] * 8)                 # and again: 8
              + epochs([9e9], whole=False)                         # changes nothing
              + epochs([slow]) + epochs([one] * 16)                # 16
              + epochs([fast])                                     # faster: reset
              + epochs([fast], went_solo=True) + epochs([one] * 4)   # solo (team.h): 4
              + epochs([slow, one, fast])                          # slow once: 1 timing
              + epochs([300.0, 500.0, 400.0], batch_size=128)      # a new batch size
              + [(64, False, True, 400.0), (128, False, True, 400.0)] * 3)
    threads, slow_epochs, _ = _kernels.judge_team_epochs(replay, could_stream=False)
    assert threads == ([2, 1, 2] + [2, 1, 2] + [1] * 4 + [2] + [1] * 8 + [2] + [2]
                       + [1] * 16 + [2] + [2] + [1] * 4 + [2, 1, 2] + [2, 1, 2] + [2] * 6)
    assert slow_epochs == 5
    # a team told never to go solo (max_wait >= 1, as in the tests here) is never left
    team_limits(1.0, 1e9)
    assert _kernels.judge_team_epochs(epochs([400.0] * 2 + [slow] * 3),
                                      could_stream=False)[:2] == ([2] * 5, 0)


def test_a_team_gaining_little_over_one_thread_streams_adams_update(team_limits):
    """judge_team makes the next team epoch stream Adam's new parameters (adam.h) after a
    whole team epoch that gained less than 1.5x over the last 1-thread time, and store
    them as usual after one that gained more; a team slower than one thread that could
    have streamed tries streaming next, before any epoch on one thread. A replay of the
    host's spells, in ns a row of the fashion task (one thread 600; ordinary teams 350
    in a fast spell and 700 in a slow one; streaming teams 480 in the slow spell, 365
    in the fast one)."""
    team_limits(0.4, 0.002)
    replay = [(128, False, True, ns) for ns in
              [350.0, 600.0, 350.0,          # a team, its 1-thread timing, a fast team
               700.0,                        # a slow spell: slower than one thread
               480.0, 480.0,                 # streamed: faster than one thread
               365.0, 350.0,                 # the spell over: streamed, then ordinary
               480.0,                        # gains 1.25x: the next one streams
               700.0, 600.0, 480.0]]         # streamed and slow: timed as usual
    replay += [(64, False, True, 350.0)]     # a new batch size starts ordinary
    threads, slow_epochs, streamed = _kernels.judge_team_epochs(replay)
    assert threads == [2, 1, 2, 2, 2, 2, 2, 2, 2, 2, 1, 2, 2]
    assert streamed == [False, False, False, False, True, True, True, False,
                        False, True, False, True, False]
    assert slow_epochs == 2
    # an epoch stopped by divergence, or a team that went solo, decides nothing (nor do
    # the 1-thread epochs after the solo)
    threads, _, streamed = _kernels.judge_team_epochs(
        [(128, False, True, ns) for ns in [350.0, 600.0, 700.0]]
        + [(128, False, False, 350.0), (128, True, True, 350.0)]
        + [(128, False, True, 600.0)] * 4 + [(128, False, True, 480.0)])
    assert threads == [2, 1, 2, 2, 2, 1, 1, 1, 1, 2]
    assert streamed[3:] == [True, True, False, False, False, False, True]
    # a network that cannot stream (SGD, small, or "never") is timed as before
    threads, _, streamed = _kernels.judge_team_epochs(
        [(128, False, True, ns) for ns in [350.0, 600.0, 700.0, 600.0]],
        could_stream=False)
    assert threads == [2, 1, 2, 1] and not any(streamed)


def test_the_second_epoch_of_a_team_runs_on_one_thread_to_time_it(team_limits):
    """With the default limits, fit_epoch's second epoch of a network that gets a team
    runs on one thread (judge_team times it), and its results are the same."""
    team_limits(0.4, 0.002)
    case = SMALL_TEAM_CASES["regression"]
    net_1, losses_1 = train_small_team_case(case, np.float32, 1, False, epochs=2)
    net_2, losses_2 = train_small_team_case(case, np.float32, 2, False, epochs=2)
    np.testing.assert_array_equal(net_1.params, net_2.params)
    assert losses_1 == losses_2
    if cffnn._threads.openmp_enabled():
        assert net_2._compiled.team_statistics()[0] == 1


def test_epoch_team_never_has_more_threads_than_usable_cores(team_limits):
    """The team's barriers spin: more threads than cores would wait most of the time, so
    fit_epoch caps n_threads at the usable cores (and the results are the same)."""
    from cffnn import _parallelism
    cores = _parallelism.usable_cpu_count()
    assert _parallelism.barrier_team_threads(4 * cores + 1) <= cores
    assert _parallelism.barrier_team_threads(1) == 1
    team_limits(float("inf"), 0.0)
    case = SMALL_TEAM_CASES["regression"]
    net_1, losses_1 = train_small_team_case(case, np.float32, 1, False, epochs=1)
    net_many, losses_many = train_small_team_case(case, np.float32, 4 * cores + 1, False,
                                                  epochs=1)
    np.testing.assert_array_equal(net_1.params, net_many.params)
    assert losses_1 == losses_many


def test_a_team_skips_minibatches_of_zero_weight_like_one_thread(team_limits):
    """Every thread of the team must take the same decision to skip a minibatch whose
    weights are all 0 (and so pass the same barriers)."""
    team_limits(float("inf"), 0.0)
    case = SMALL_TEAM_CASES["regression"]
    X, y, weights = small_team_problem(case, np.float32)
    weights[64:192] = 0.0            # minibatches 1 and 2, in order
    results = []
    for n_threads in (1, 2):
        net = cffnn.Network(case["sizes"], activation="tanh", output="identity",
                            dtype=np.float32, random_state=0)
        loss = net.fit_epoch(X, y, cffnn.SGD(0.01, momentum=0.9), batch_size=64,
                             shuffle=False, sample_weight=weights, n_threads=n_threads)
        results.append((net.params.copy(), loss))
        if n_threads == 2 and cffnn._threads.openmp_enabled():
            assert net._compiled.team_statistics() == (1, 0, 0)
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1] and np.isfinite(results[0][1])


@pytest.mark.parametrize("scale", [1e308, 1e-320])
def test_weights_scaled_to_the_ends_of_double_train_and_score_as_unit_weights(scale):
    """Scaling every weight by one constant changes nothing (without a penalty): the
    epoch's mean loss used to come back NaN for weights of 1e308 (their sum overflowed)
    and of 1e-320 (a subnormal sum, which the epoch's flush to zero made 0)."""
    X, y, _ = make_problem()
    results = []
    for weights in (None, np.full(103, scale)):
        net = cffnn.Network([5, 8, 3], output="softmax", random_state=0)
        loss = net.fit_epoch(X, y, cffnn.Adam(0.01), batch_size=20, random_state=0,
                             sample_weight=weights)
        results.append((loss, net.params.copy(), net.loss(X, y, sample_weight=weights)))
    assert np.isfinite(results[1][0])
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-12)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-12, atol=0)
    assert results[1][2] == pytest.approx(results[0][2], rel=1e-12)


def test_divergence_on_a_team_stops_where_one_thread_stops(team_limits):
    team_limits(float("inf"), 0.0)
    case = SMALL_TEAM_CASES["regression"]
    X, y, _ = small_team_problem(case, np.float64)
    y = 1e3 * y
    results = []
    for n_threads in (1, 2):
        net = cffnn.Network(case["sizes"], activation="tanh", output="identity",
                            dtype=np.float64, random_state=0)
        with pytest.raises(cffnn.DivergenceError, match="epoch .* minibatch .* non-finite"):
            for epoch in range(20):
                net.fit_epoch(X, y, cffnn.SGD(learning_rate=10.0), batch_size=64,
                              random_state=epoch, n_threads=n_threads)
        assert np.all(np.isfinite(net.params))
        results.append(net.params.copy())
    np.testing.assert_array_equal(results[0], results[1])


@pytest.fixture
def fused_sgd():
    """Sets whether fit_epoch fuses SGD's update into its gradient tasks, restoring it after."""
    previous = _kernels.set_fused_sgd(True)
    yield _kernels.set_fused_sgd
    _kernels.set_fused_sgd(previous)


FUSED_SGD_CASES = {
    # two gradient tasks for W1 on a team: an update split inside a layer
    "regression": (SMALL_TEAM_CASES["regression"], 64),
    # W0 and W1 in several tasks each
    "classification": (dict(sizes=[64, 128, 10], activation="relu", output="softmax"), 512),
}
SGD_VARIANTS = {"plain": dict(), "momentum": dict(momentum=0.9),
                "nesterov": dict(momentum=0.9, nesterov=True)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("variant", sorted(SGD_VARIANTS))
@pytest.mark.parametrize("case_name", sorted(FUSED_SGD_CASES))
def test_sgd_update_fused_into_the_gradient_tasks_gives_the_same_bits(
        case_name, variant, n_threads, dtype, team_limits, fused_sgd):
    """fit_epoch does SGD's update in each gradient task, on the rows it has just written:
    the same parameters, velocity and losses as one update of all parameters after the
    tasks, with a penalty, sample weights and shuffling, on one thread and on a team."""
    team_limits(float("inf"), 0.0)        # the team never goes solo here
    case, batch_size = FUSED_SGD_CASES[case_name]
    X, y, weights = small_team_problem(case, dtype, n_rows=1500)
    results = []
    for fuse in (True, False):
        fused_sgd(fuse)
        net = cffnn.Network(case["sizes"], activation=case["activation"],
                            output=case["output"], dtype=dtype, random_state=0)
        optimizer = cffnn.SGD(0.01, **SGD_VARIANTS[variant])
        losses = [net.fit_epoch(X, y, optimizer, batch_size=batch_size, alpha=1e-3,
                                sample_weight=weights, random_state=epoch,
                                n_threads=n_threads)
                  for epoch in range(2)]
        results.append((net.params.copy(), optimizer.velocity.copy(), losses))
        if n_threads == 2 and cffnn._threads.openmp_enabled():
            assert net._compiled.team_statistics() == (2, 0, 0)
    (fused_params, fused_velocity, fused_losses), (params, velocity, losses) = results
    assert np.all(np.isfinite(params)) and np.any(velocity != 0)
    np.testing.assert_array_equal(fused_params, params)
    np.testing.assert_array_equal(fused_velocity, velocity)
    assert fused_losses == losses


@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_refused_sgd_update_leaves_the_parameters_and_velocity_as_they_were(
        n_threads, team_limits):
    """A minibatch whose update overflows float32 (finite loss and gradient, learning
    rate 1e37) is refused: the parameters and the velocity stay those of the step before.
    The velocity used to be advanced all the same; now SGD's update writes a second
    buffer that the epoch adopts only when every new value is finite."""
    team_limits(float("inf"), 0.0)
    case = SMALL_TEAM_CASES["regression"]
    X, y, _ = small_team_problem(case, np.float32)
    y = 1e3 * y
    net = cffnn.Network(case["sizes"], activation="tanh", output="identity",
                        dtype=np.float32, random_state=0)
    optimizer = cffnn.SGD(0.01, momentum=0.9)
    net.fit_epoch(X, y, optimizer, batch_size=64, random_state=0, n_threads=n_threads)
    params, velocity = net.params.copy(), optimizer.velocity.copy()
    assert np.any(velocity != 0)
    optimizer.learning_rate = 1e37
    with pytest.raises(cffnn.DivergenceError, match="minibatch 0: non-finite update"):
        net.fit_epoch(X, y, optimizer, batch_size=64, random_state=1, n_threads=n_threads)
    np.testing.assert_array_equal(net.params, params)
    np.testing.assert_array_equal(optimizer.velocity, velocity)
    if n_threads == 2 and cffnn._threads.openmp_enabled():
        assert net._compiled.team_statistics() == (2, 0, 0)


SMALLER_LAST_BATCH_CHILD = """
import numpy as np, cffnn
from cffnn import _kernels
_kernels.set_team_limits(float("inf"), 0.0)       # the team never goes solo
rng = np.random.default_rng(0)
X = rng.normal(size=(1500, 64))
y = rng.integers(0, 10, 1500)
for _ in range(300):
    net = cffnn.Network([64, 128, 10], output="softmax", random_state=0)
    optimizer = cffnn.SGD(0.01, momentum=0.9)
    for epoch in range(3):
        net.fit_epoch(X, y, optimizer, batch_size=512, random_state=epoch, n_threads=2)
assert np.all(np.isfinite(net.params))
"""


def test_a_team_reaching_a_smaller_last_batch_never_hangs(tmp_path):
    """Minibatches of 512, 512 and 476 rows on a team, 900 epochs. With SGD's update in
    the gradient tasks, a thread may begin the next batch while the other still reads the
    batch's flags; the 476-row batch's workspace layout used to move its Z over those
    flags, the threads then took different decisions, and one waited at a barrier for
    ever (within 150 trainings here). In a child process, which the timeout ends."""
    if not cffnn._threads.openmp_enabled():
        pytest.skip("no OpenMP: no teams")
    done = subprocess.run([sys.executable, "-c", SMALLER_LAST_BATCH_CHILD], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_divergence_from_the_penalty_of_tiny_weights_says_so():
    """The penalty is alpha / (a minibatch's sum of sample weights) ||W||^2 / 2, as in
    scikit-learn: with weights of 1e-300 its float32 gradient overflows, and the error
    names alpha and the weights, not only the learning rate."""
    X, y, _ = make_problem()
    net = cffnn.Network([5, 8, 3], output="softmax", dtype=np.float32, random_state=0)
    before = net.params.copy()
    with pytest.raises(cffnn.DivergenceError, match="smaller learning rate, or a smaller "
                                                    "alpha relative to the sample weights"):
        net.fit_epoch(X, y, cffnn.Adam(0.01), batch_size=20, alpha=1e-4,
                      sample_weight=np.full(103, 1e-300))
    np.testing.assert_array_equal(net.params, before)
    # without a penalty the same weights train as unit weights (the mean is scale-free)
    assert np.isfinite(net.fit_epoch(X, y, cffnn.Adam(0.01), batch_size=20,
                                     sample_weight=np.full(103, 1e-300)))


def test_float32_training_stays_float32():
    X, y, _ = make_problem()
    net = cffnn.Network([5, 8, 3], dtype=np.float32, random_state=0)
    optimizer = cffnn.Adam()
    loss = net.fit_epoch(X, y, optimizer, batch_size=32, random_state=0)
    assert np.isfinite(loss) and net.params.dtype == np.float32
    assert optimizer.first_moment.dtype == np.float32 and optimizer.t == 4


@pytest.mark.parametrize("make_optimizer", [lambda: cffnn.Adam(0.05), cffnn.RPROP])
def test_xor_is_learned(make_optimizer):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array([0, 1, 1, 0])
    net = cffnn.Network([2, 8, 1], activation="tanh", output="logistic", dtype=np.float64,
                        random_state=0)
    optimizer = make_optimizer()
    losses = [net.fit_epoch(X, y, optimizer, batch_size=4, shuffle=False)
              for _ in range(500)]
    assert losses[-1] < 0.05 < losses[0]
    np.testing.assert_array_equal(net.forward(X)[:, 0] > 0.5, y == 1)


def test_two_spirals_are_learned_and_the_loss_decreases():
    rng = np.random.default_rng(0)
    turns = np.sqrt(rng.random(200)) * 3 * np.pi
    sign = np.repeat([1.0, -1.0], 100)
    X = np.column_stack([sign * turns * np.cos(turns), sign * turns * np.sin(turns)]) / 10
    X += rng.normal(scale=0.02, size=X.shape)
    y = np.repeat([0, 1], 100)
    net = cffnn.Network([2, 32, 32, 2], activation="tanh", dtype=np.float64, random_state=0)
    optimizer = cffnn.Adam(0.01)
    losses = [net.fit_epoch(X, y, optimizer, batch_size=32, random_state=epoch)
              for epoch in range(600)]
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    accuracy = np.mean(net.forward(X).argmax(axis=1) == y)
    assert accuracy >= 0.95


def test_divergence_raises_and_keeps_the_last_finite_parameters():
    X, y, _ = make_problem()
    net = cffnn.Network([5, 8, 1], output="identity", dtype=np.float64, random_state=0)
    Y = 1e3 * np.asarray(y, dtype=np.float64)
    with pytest.raises(cffnn.DivergenceError, match="epoch .* minibatch .* non-finite"):
        for _ in range(50):
            net.fit_epoch(X, Y, cffnn.SGD(learning_rate=1e3), batch_size=16, shuffle=False)
    assert np.all(np.isfinite(net.params))


@pytest.mark.parametrize("kwargs, error, word", [
    ({"optimizer": "adam"}, TypeError, "optimizer"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"batch_size": 2.5}, TypeError, "batch_size"),
    ({"alpha": -1.0}, ValueError, "alpha"),
    ({"random_state": "seed"}, TypeError, "random_state"),
    ({"random_state": -1}, ValueError, "random_state"),
    ({"random_state": 2**64}, ValueError, "random_state"),
    ({"sample_weight": -np.ones(103)}, ValueError, "sample_weight"),
])
def test_bad_arguments_raise(kwargs, error, word):
    X, y, _ = make_problem()
    net = cffnn.Network([5, 8, 3], random_state=0)
    arguments = {"optimizer": cffnn.SGD()} | kwargs
    before = net.params.copy()
    with pytest.raises(error, match=word):
        net.fit_epoch(X, y, **arguments)
    np.testing.assert_array_equal(net.params, before)


def test_callers_floating_point_mode_is_restored():
    """fit_epoch flushes subnormals to zero while it runs, and only while it runs."""
    X, y, _ = make_problem()
    net = cffnn.Network([5, 8, 3], random_state=0)
    net.fit_epoch(X, y, cffnn.Adam(), batch_size=16)
    tiny = np.array([1e-38], dtype=np.float32) / np.float32(100)
    assert tiny[0] != 0     # still subnormal here: the caller's mode is back


TEAM_FLUSH_CHILD = """
import numpy as np
import cffnn
from cffnn import _kernels
_kernels.set_team_limits(float("inf"), 0.0)   # the team never goes solo here
# the team's worker threads start here, outside any epoch: flushing is not set on them
net = cffnn.Network([64, 128, 1], output="identity", dtype=np.float32, random_state=0)
net.forward(np.ones((4096, 64), np.float32), n_threads=2)
rng = np.random.default_rng(0)
# after the first minibatch no input is active, and W1's first moments decay by beta_1
# per step: by step 780 most have just become subnormal (a thread that does not flush
# keeps ~2000 of them; the chunks a flushing thread updates later lose theirs)
X = rng.normal(size=(32 * 780, 64)).astype(np.float32)
X[32:] = 0
y = rng.normal(size=(32 * 780, 1)).astype(np.float32)
optimizer = cffnn.Adam(0.001)
# minibatches of 32 rows are two blocks of this small network: the epoch runs on a team,
# whose threads share the update's chunks (W1's among them)
net.fit_epoch(X, y, optimizer, batch_size=32, shuffle=False, n_threads=2)
assert net._compiled.team_statistics() == (1, 0, 0)
m = optimizer.first_moment
tiny = np.finfo(np.float32).tiny
print(int(np.count_nonzero((m != 0) & (np.abs(m) < tiny))))
"""


def test_update_team_threads_flush_subnormals_too(tmp_path):
    """Adam's first moments of inputs that went quiet decay by beta_1 per step into
    subnormals (from step ~770 here); the threads of the epoch's team must flush them
    like the calling thread, even when they were started outside fit_epoch. (In a child
    process, so that its OpenMP threads start in the script; run outside the source tree,
    which would shadow the installed package.)"""
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-c", TEAM_FLUSH_CHILD], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0"]
