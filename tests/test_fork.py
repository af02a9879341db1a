"""A process forked after cffnn ran OpenMP teams (multiprocessing's default start method
on Linux): GNU's OpenMP runtime would wait for ever in the child's first team for
threads that were not forked, so the child runs its calls without teams
(cffnn/_kernels.pyx, teams_forbidden). Its results are those of the parent: the work is
cut the same way whatever the team."""
import sys

import numpy as np
import pytest

import cffnn
from cffnn import _kernels
from _testing import run_in_forked_child

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork start method: Linux")

SIZES = [300, 256, 128, 10]


def _work(net_params):
    net = cffnn.Network(SIZES, activation="relu", random_state=0)
    net.params[:] = net_params
    X = np.random.default_rng(31).normal(size=(600, SIZES[0])).astype(np.float32)
    y = np.arange(600) % 10
    out = net.forward(X, n_threads=2)
    loss, grad = net.loss_and_gradient(X, y, n_threads=2)
    epoch_loss = net.fit_epoch(X, y, cffnn.Adam(), batch_size=128, random_state=3,
                               n_threads=2)
    return out, loss, grad, epoch_loss, net.params.copy()


def _work_in_child(queue, net_params):
    queue.put((_kernels.openmp_teams_allowed(), _work(net_params)))


def test_a_child_forked_after_teams_finishes_with_the_parents_results():
    net = cffnn.Network(SIZES, activation="relu", random_state=0)
    parent = _work(net.params.copy())          # runs teams in this process
    allowed, results = run_in_forked_child(_work_in_child, net.params.copy())
    assert not allowed
    for got, expected in zip(results, parent):
        np.testing.assert_array_equal(got, expected)
    assert _kernels.openmp_teams_allowed()           # the parent keeps its teams
