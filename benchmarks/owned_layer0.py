"""What owning layer 0 by parts of its rows saves a team, in the host's fast and slow spells.

    python benchmarks/owned_layer0.py [--rounds 30]

In a team's minibatch of a large float32 network, each thread can own a fixed part of
W[0]'s rows for the whole batch (_kernels.owned_parts): it computes that part's partial
sums of the forward pass for every row, its rows of the weight gradient and their update,
so no other core ever reads or writes those weights. Otherwise every thread's blocks of
rows read all of W[0], and the update's stores must first take the lines away from the
other core. fit_epoch owns layer 0 where it can; here the ways are forced
(set_owned_layer0, set_streaming_update). This times epochs of compare.py's fashion task
(784-256-128-10, Adam, batch 128) on 1 and 2 threads by blocks of rows and with layer 0
owned, and on 2 threads by rows with Adam's update streamed (adam.h), in rounds that take
the five in a random order, and prints the medians and the paired ratios (the other
way's time / owned time: > 1 means owning is faster; last, 1 thread by rows against 2
owned).

The teams are kept together (set_team_limits). A round counts as "fast" when the 2-thread
epoch by rows took under 0.9 of the 1-thread one; the two kinds of rounds are reported
apart.
"""
import os
import sys

import cffnn
from cffnn import _kernels

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmarks.kept_teams import fashion_arms, kept_team_rounds, print_rounds  # noqa: E402

# arm: (layer 0 owned, how Adam's update is stored, threads)
ARMS = {"1t": (False, "never", 1), "2t": (False, "never", 2),
        "2t streamed": (False, "always", 2), "1t owned": (True, "never", 1),
        "2t owned": (True, "never", 2)}


def set_arm(setting):
    """set_owned_layer0 and set_streaming_update for setting (owned, stream mode), with
    the default size threshold; returns the previous setting."""
    owned, stream = setting
    previous_owned = _kernels.set_owned_layer0(owned)[0]
    return previous_owned, _kernels.set_streaming_update(stream)


def main(argv=None):
    runs, n_rounds, source = fashion_arms(
        __doc__, {arm: threads for arm, (_, _, threads) in ARMS.items()}, argv)
    rounds = kept_team_rounds(
        runs, {arm: (owned, stream) for arm, (owned, stream, _) in ARMS.items()}, set_arm,
        n_rounds)
    print(f"fashion ({source}), Adam, {cffnn.__version__}; medians of epoch seconds; "
          f"ratio = the other way's time / owned, paired by round")
    print_rounds(rounds, {"2t": ("2t", "2t owned"), "2t streamed": ("2t streamed", "2t owned"),
                          "1t": ("1t", "1t owned"), "1t/2t owned": ("1t", "2t owned")})


if __name__ == "__main__":
    main()
