"""What fusing SGD's update into the gradient tasks saves, on 1 and 2 threads.

    python benchmarks/fused_sgd.py [--rounds 60] [--task regression]

fit_epoch does SGD's update in each weight-gradient task, on the rows of the gradient the
task has just written (FusedSGD in cffnn/_kernels.pyx), instead of in a pass over all
parameters after the tasks: a team then meets at two barriers a minibatch instead of
three. This times epochs of a compare.py task (SGD's: regression; or fashion, trained with
SGD momentum 0.9 instead of Adam) with the update fused and not, on 1 and 2 threads, in
rounds that take the four in a random order, and prints the medians and the paired
ratios (unfused time / fused time: > 1 means fusing is faster).

Whether 2 threads beat 1 here depends on the host at that moment: in some stretches a
2-thread regression epoch is 1.15-1.3x faster than a 1-thread one, in others up to 2x
slower (machine_probe.py's team gain, "exchanges slow"). The teams are kept together
here (set_team_limits), so that fit_epoch does not move their epochs to one thread
(_kernels.judge_team). A round counts as "fast" when the unfused 2-thread epoch took
under 0.9 of the 1-thread one; the two kinds of rounds are reported apart.
"""
import argparse
import os
import sys

import cffnn
from cffnn import _kernels

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmarks.kept_teams import kept_team_rounds, print_rounds  # noqa: E402
from benchmarks.training import TASKS, cffnn_epoch  # noqa: E402

ARMS = {"1t": (False, 1), "1t fused": (True, 1), "2t": (False, 2), "2t fused": (True, 2)}


def sgd_epoch(task, X, y, threads):
    """An epoch of the task with SGD momentum 0.9 (lr 0.001), whatever its optimizer."""
    return cffnn_epoch(dict(task, optimizer="sgd"), X, y, threads)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--task", default="regression", choices=["regression", "fashion"])
    args = parser.parse_args(argv)
    task = TASKS[args.task]
    X, y, source = task["load"]()
    runs = {arm: sgd_epoch(task, X, y, threads) for arm, (_, threads) in ARMS.items()}
    rounds = kept_team_rounds(runs, {arm: setting for arm, (setting, _) in ARMS.items()},
                              _kernels.set_fused_sgd, args.rounds)
    print(f"{args.task} ({source}), SGD momentum 0.9, {cffnn.__version__}; medians of "
          f"epoch seconds; ratio = unfused / fused, paired by round")
    print_rounds(rounds, {"1t": ("1t", "1t fused"), "2t": ("2t", "2t fused")})


if __name__ == "__main__":
    main()
