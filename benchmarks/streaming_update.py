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

The teams are kept together (set_team_limits), so that fit_epoch does not move their
epochs to one thread (_kernels.judge_team). A round counts as "fast" when the
unstreamed 2-thread epoch took under 0.9 of the 1-thread one; the two kinds of rounds
are reported apart.
"""
import argparse
import os
import random
import statistics
import sys
import time

import cffnn
from cffnn import _kernels

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmarks.training import TASKS, cffnn_epoch  # noqa: E402

ARMS = {"1t": ("never", 1), "2t": ("never", 2), "2t streamed": ("always", 2)}


def timed(run, mode):
    previous = _kernels.set_streaming_update(mode)
    try:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start
    finally:
        _kernels.set_streaming_update(previous)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    task = TASKS["fashion"]
    X, y, source = task["load"]()
    runs = {arm: cffnn_epoch(task, X, y, threads) for arm, (_, threads) in ARMS.items()}
    previous = _kernels.set_team_limits(1.0, 1e9)       # teams stay teams: time them
    try:
        for arm, run in runs.items():           # warm-up
            timed(run, ARMS[arm][0])
        rounds = {"fast": [], "slow": []}
        for _ in range(args.rounds):
            order = list(runs)
            random.shuffle(order)
            times = {arm: timed(runs[arm], ARMS[arm][0]) for arm in order}
            rounds["fast" if times["2t"] < 0.9 * times["1t"] else "slow"].append(times)
    finally:
        _kernels.set_team_limits(*previous)
    print(f"fashion ({source}), Adam, {cffnn.__version__}; medians of epoch seconds; "
          f"ratio = ordinary / streamed, paired by round")
    for kind, kind_rounds in rounds.items():
        if not kind_rounds:
            continue
        medians = " ".join(f"{arm} {statistics.median(r[arm] for r in kind_rounds):.4f}"
                           for arm in ARMS)
        paired = sorted(r["2t"] / r["2t streamed"] for r in kind_rounds)
        quarter = len(paired) // 4
        print(f"{kind:<5} rounds {len(kind_rounds):3d}: {medians} | 2t ratio "
              f"{statistics.median(paired):.3f} ({paired[quarter]:.3f}-"
              f"{paired[-1 - quarter]:.3f})")


if __name__ == "__main__":
    main()
