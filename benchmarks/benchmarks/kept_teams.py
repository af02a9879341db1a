"""Epochs of several settings of fit_epoch timed in rounds, with teams kept together.

Used by benchmarks/fused_sgd.py, streaming_update.py and owned_layer0.py, which time one
way of training against another on 1 and 2 threads. Every round runs each arm once, in a
random order, so that the host's changes of speed hit the arms alike. Teams stay teams
(set_team_limits), so that fit_epoch does not move their epochs to one thread
(_kernels.judge_team). A round counts as "fast" when arm "2t" took under 0.9 of arm "1t",
"slow" otherwise (machine_probe.py's "exchanges slow"); the two kinds are reported apart.
"""
import argparse
import random
import statistics
import time

from cffnn import _kernels

from .training import TASKS, cffnn_epoch


def fashion_arms(doc, threads_of_arms, argv=None):
    """(runs, n_rounds, source) for a script whose docstring is doc: --rounds from the
    command line (default 30), and for each arm of threads_of_arms {arm: threads} an
    epoch of compare.py's fashion task (benchmarks/training.py) on that many threads."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    task = TASKS["fashion"]
    X, y, source = task["load"]()
    runs = {arm: cffnn_epoch(task, X, y, threads) for arm, threads in threads_of_arms.items()}
    return runs, args.rounds, source


def timed_epoch(run, set_setting, setting):
    """Seconds of one epoch of run with set_setting(setting) in force (a _kernels toggle
    that returns the previous setting, which is restored)."""
    previous = set_setting(setting)
    try:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start
    finally:
        set_setting(previous)


def kept_team_rounds(runs, settings, set_setting, n_rounds):
    """{"fast": [...], "slow": [...]}: the rounds, each {arm: seconds}. runs: {arm: run},
    with arms "1t" and "2t" among them, each timed with set_setting(settings[arm])."""
    def timed(arm):
        return timed_epoch(runs[arm], set_setting, settings[arm])

    previous = _kernels.set_team_limits(1.0, 1e9)       # teams stay teams: time them
    try:
        for arm in runs:                        # warm-up
            timed(arm)
        rounds = {"fast": [], "slow": []}
        for _ in range(n_rounds):
            order = list(runs)
            random.shuffle(order)
            seconds = {arm: timed(arm) for arm in order}
            times = {arm: seconds[arm] for arm in runs}     # runs' order, for the report
            rounds["fast" if times["2t"] < 0.9 * times["1t"] else "slow"].append(times)
    finally:
        _kernels.set_team_limits(*previous)
    return rounds


def print_rounds(rounds, ratios):
    """Per kind of round: each arm's median seconds and, for ratios {label: (arm_a,
    arm_b)}, the median and quartiles of arm_a's time / arm_b's, paired by round."""
    for kind, kind_rounds in rounds.items():
        if not kind_rounds:
            continue
        medians = " ".join(f"{arm} {statistics.median(r[arm] for r in kind_rounds):.4f}"
                           for arm in kind_rounds[0])
        paired_ratios = []
        for label, (arm_a, arm_b) in ratios.items():
            paired = sorted(r[arm_a] / r[arm_b] for r in kind_rounds)
            quarter = len(paired) // 4
            paired_ratios.append(f"{label} {statistics.median(paired):.3f} "
                                 f"({paired[quarter]:.3f}-{paired[-1 - quarter]:.3f})")
        print(f"{kind:<5} rounds {len(kind_rounds):3d}: {medians} | ratios "
              + ", ".join(paired_ratios))
