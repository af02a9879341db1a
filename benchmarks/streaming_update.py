"""What streaming Adam's new parameters saves a team, in the host's fast and slow spells.

    python benchmarks/streaming_update.py [--rounds 30]

A team of fit_epoch can write Adam's new parameters of a large network with streaming
(non-temporal) stores (include/cffnn/adam.h): every thread's forward pass has read all the
weights, and an ordinary store must first take each cache line away from the other
core, which this host sometimes makes very slow (machine_probe.py's "exchanges slow").
fit_epoch streams when a network's last team epoch gained less than 1.5x over one
thread (_kernels.judge_team); here the two ways are forced (set_streaming_update).
This times epochs of compare.py's fashion task (784-256-128-10, Adam, batch 128) on
1 thread, and on 2 threads with the update streamed and not, in rounds that take the
three in a random order, and prints the medians and the paired ratios (ordinary time /
streamed time: > 1 means streaming is faster).

Layer 0 is not owned by parts here (set_owned_layer0: fit_epoch's default for this task
since, benchmarks/owned_layer0.py, under which W[0] never streams), so this measures the
blocks of rows that other networks still train by.

The teams are kept together (set_team_limits), so that fit_epoch does not move their
epochs to one thread (_kernels.judge_team). A round counts as "fast" when the
unstreamed 2-thread epoch took under 0.9 of the 1-thread one; the two kinds of rounds
are reported apart.
"""
import os
import sys

import cffnn
from cffnn import _kernels

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmarks.kept_teams import fashion_arms, kept_team_rounds, print_rounds  # noqa: E402

ARMS = {"1t": ("never", 1), "2t": ("never", 2), "2t streamed": ("always", 2)}


def main(argv=None):
    runs, n_rounds, source = fashion_arms(
        __doc__, {arm: threads for arm, (_, threads) in ARMS.items()}, argv)
    previous = _kernels.set_owned_layer0(False)     # (owned parts' updates never stream)
    try:
        rounds = kept_team_rounds(runs, {arm: setting for arm, (setting, _) in ARMS.items()},
                                  _kernels.set_streaming_update, n_rounds)
    finally:
        _kernels.set_owned_layer0(*previous)
    print(f"fashion ({source}), Adam, {cffnn.__version__}; medians of epoch seconds; "
          f"ratio = ordinary / streamed, paired by round")
    print_rounds(rounds, {"2t": ("2t", "2t streamed")})


if __name__ == "__main__":
    main()
