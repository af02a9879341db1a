"""What fit_epoch's team of threads gains, on an idle machine and beside a busy process.

    python benchmarks/team.py [--task regression] [--pairs 30] [--busy]

An epoch on several threads is one parallel region whose threads meet at spinning
barriers between the phases of each minibatch (include/cffnn/team.h); when they spend
too much of their time waiting (another process has one of the cores), the epoch
finishes on one thread (the team goes "solo"), and the network's next epochs start on
one thread. This runs epochs of a task of benchmarks/training.py on one thread and on
two, alternately (two networks, so each keeps its own state), and prints the median
over pairs of (1-thread time / 2-thread time) with the team statistics of the 2-thread
network. With --busy, a process spinning in pure Python runs beside them, as another
user's job would on a shared machine: the ratio should then stay near 1, not fall
far below it.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmarks.training import TASKS, cffnn_network  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="regression", choices=sorted(TASKS))
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--busy", action="store_true",
                        help="run a busy process beside the epochs")
    args = parser.parse_args(argv)
    task = TASKS[args.task]
    X, y, source = task["load"]()
    networks = {n_threads: cffnn_network(task, X) for n_threads in (1, 2)}
    busy = None
    if args.busy:
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        times = {1: [], 2: []}
        for pair in range(args.pairs + 1):             # pair 0 warms up
            for n_threads in ((1, 2) if pair % 2 else (2, 1)):
                net, optimizer = networks[n_threads]
                start = time.perf_counter()
                net.fit_epoch(X, y, optimizer, batch_size=task["batch"], random_state=pair,
                              n_threads=n_threads)
                if pair > 0:
                    times[n_threads].append(time.perf_counter() - start)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    ratio = statistics.median(one / two for one, two in zip(times[1], times[2]))
    team_epochs, solo_epochs, slow_epochs = networks[2][0]._compiled.team_statistics()
    print(f"{args.task} ({source}), {args.pairs} pairs of epochs"
          f"{', beside a busy process' if args.busy else ''}:")
    print(f"  1 thread  median {statistics.median(times[1]):.4f} s")
    print(f"  2 threads median {statistics.median(times[2]):.4f} s")
    print(f"  paired 1-thread / 2-thread time: {ratio:.2f}x")
    print(f"  2-thread network: {team_epochs} epochs started on a team, "
          f"{solo_epochs} of them went solo, {slow_epochs} were slower than one thread")


if __name__ == "__main__":
    main()
