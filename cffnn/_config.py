"""cffnn.show_config: what this installation computes with."""
import platform
import sys

import numpy as np
import scipy
from threadpoolctl import threadpool_info

from cffnn import _kernels, _openmp_runtime, _threads
from cffnn._parallelism import effective_n_threads, usable_cpu_count


def config():
    """The facts show_config prints, as a dict."""
    import cffnn
    infos = threadpool_info()
    return {
        "cffnn": cffnn.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "openmp": _threads.openmp_enabled(),
        "openmp_version": _threads.openmp_version(),
        "openmp_runtimes": [info["filepath"] for info in infos
                            if info["user_api"] == "openmp"],
        "openmp_wait_policy": _openmp_runtime.wait_policy,
        "usable_cpus": usable_cpu_count(),
        "default_n_threads": effective_n_threads(None),
        "row_helper_thread": _kernels.helper_available(),
        "blas_held_from_c": _threads.blas_threads_controlled(),
        "blas": [{key: info.get(key) for key in
                  ("internal_api", "version", "threading_layer", "architecture",
                   "num_threads", "filepath")}
                 for info in infos if info["user_api"] == "blas"],
    }


def show_config(file=None):
    """Print versions, OpenMP on/off with its runtime, the thread count and the BLAS."""
    facts = config()
    lines = [
        f"cffnn {facts['cffnn']} (Python {facts['python']}, {facts['platform']})",
        f"numpy {facts['numpy']}, scipy {facts['scipy']}",
        "OpenMP: " + (f"enabled (_OPENMP {facts['openmp_version']}), runtime "
                      + (", ".join(facts["openmp_runtimes"]) or "not found")
                      + f"; idle threads: {facts['openmp_wait_policy']}"
                      if facts["openmp"] else "disabled: kernels run on one thread"),
        f"threads: {facts['default_n_threads']} by default (n_threads=None), "
        f"{facts['usable_cpus']} usable cores",
        "forward of 1-4 rows of a large network: "
        + ("a helper thread takes half when n_threads > 1" if facts["row_helper_thread"]
           else "one thread (no helper thread in this build)"),
        "BLAS (scipy.linalg.cython_blas and others loaded):"
        + ("" if facts["blas"] else " none found by threadpoolctl"),
    ]
    for blas in facts["blas"]:
        lines.append(f"  {blas['internal_api']} {blas['version']} "
                     f"({blas['threading_layer']}, {blas['architecture']}, "
                     f"{blas['num_threads']} threads): {blas['filepath']}")
    lines.append("BLAS threads held at 1 during kernel calls: "
                 + ("from C" if facts["blas_held_from_c"] else "through threadpoolctl"))
    print("\n".join(lines), file=file)
