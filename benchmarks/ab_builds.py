"""Two builds of cffnn in one process, their epochs taking turns: paired timings that the
machine's changes of speed hit alike.

    python benchmarks/ab_builds.py OLD_SITE NEW_SITE [--tasks regression,digits]
                                   [--threads 1,2] [--rounds 40] [--float64]
                                   [--keep-teams]

OLD_SITE and NEW_SITE are directories holding an installed cffnn package each (e.g. the
site-packages of two virtual environments: `pip install --no-build-isolation .` of the
old commit into one, of the new into the other). Run it with the Python of an
environment that has cffnn installed too (the NEW one, say).

Why: on this project's shared 2-vCPU machine the speed of a process changes 1.5-2x
within minutes, and two processes taking turns were measured to favour one position by
up to 20% (the same build in both slots gave 0.77 and 1.00). In one process, the two
builds alternate epoch by epoch on the same cores, caches and Python; a same-build
control gave a paired median of 0.996 (quartiles 0.983-1.006) for the regression task.

How: each package is copied to a temporary directory under a new name (cffnn_old,
cffnn_new), its Python files' imports of cffnn renamed, and imported. What stays shared:
the extension modules resolve their cimports (_kernels's calls into _threads and
_optimizers) by the names cffnn._threads and cffnn._optimizers, that is from the
environment's own cffnn. So the comparison isolates changes to _kernels (with every
header under include/) and to the Python files; a change to _threads.pyx or
_optimizers.pyx needs separate processes (benchmarks/compare.py).

Prints, per task and thread count, each build's median epoch time and the median and
quartiles of the paired ratios old/new (> 1: the new build is faster).
"""
import argparse
import importlib
import os
import re
import shutil
import statistics
import sys
import tempfile
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# (this also imports the environment's own cffnn, which the copies' extension modules
# need: they cimport from cffnn._threads and cffnn._optimizers)
from benchmarks.training import TASKS, cffnn_epoch  # noqa: E402


def import_copy(site, name, directory):
    """The cffnn package under site, copied into directory as `name` and imported."""
    source = os.path.join(site, "cffnn")
    if not os.path.isfile(os.path.join(source, "__init__.py")):
        sys.exit(f"no installed cffnn package in {site}")
    target = os.path.join(directory, name)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    for file in os.listdir(target):
        if file.endswith(".py"):
            path = os.path.join(target, file)
            with open(path) as handle:
                text = handle.read()
            text = re.sub(r"\b(from|import) cffnn\b", rf"\1 {name}", text)
            text = re.sub(r"\bcffnn\.(_\w+)", rf"{name}.\1", text)
            with open(path, "w") as handle:
                handle.write(text)
    return importlib.import_module(name)


def paired_epochs(runs, rounds, repeats):
    """Seconds per epoch of each run in every round, the runs in turn (order swapped
    every round); a measurement is the mean of `repeats` consecutive epochs."""
    times = [[] for _ in runs]
    for run in runs:
        run()    # warm-up
    for i in range(rounds):
        for j in (range(len(runs)) if i % 2 == 0 else reversed(range(len(runs)))):
            start = time.perf_counter()
            for _ in range(repeats):
                runs[j]()
            times[j].append((time.perf_counter() - start) / repeats)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old_site")
    parser.add_argument("new_site")
    parser.add_argument("--tasks", default="regression,digits")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--float64", action="store_true",
                        help="float64 data and networks (the tasks are float32 otherwise)")
    parser.add_argument("--keep-teams", action="store_true",
                        help="teams never go back to one thread (set_team_limits(1.0, ...)):"
                             " times what a team costs, not what fit_epoch decides")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        sys.path.insert(0, directory)
        packages = [import_copy(args.old_site, "cffnn_old", directory),
                    import_copy(args.new_site, "cffnn_new", directory)]
        if args.keep_teams:
            for package in packages:
                package._kernels.set_team_limits(1.0, 0.002)
        for name in args.tasks.split(","):
            task = TASKS[name]
            X, y, _ = task["load"]()
            if args.float64:
                X = X.astype("float64")
                y = y if task["classify"] else y.astype("float64")
            for threads in map(int, args.threads.split(",")):
                runs = [cffnn_epoch(task, X, y, threads, package=package)
                        for package in packages]
                start = time.perf_counter()
                runs[0]()
                repeats = max(1, int(0.05 / max(time.perf_counter() - start, 1e-6)))
                old, new = paired_epochs(runs, args.rounds, repeats)
                ratios = [a / b for a, b in zip(old, new)]
                q1, median, q3 = statistics.quantiles(ratios, n=4)
                print(f"{name:<11}{threads}t {X.dtype}  old {statistics.median(old) * 1e3:9.3f} ms  "
                      f"new {statistics.median(new) * 1e3:9.3f} ms  old/new median "
                      f"{median:.3f} (quartiles {q1:.3f}-{q3:.3f})", flush=True)


if __name__ == "__main__":
    main()
