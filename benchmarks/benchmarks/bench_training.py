"""asv: one training epoch (Network.fit_epoch) against the NumPy reference, scikit-learn
and torch, on the digits and regression tasks of benchmarks/compare.py (which also runs
the Fashion-MNIST task, too long for asv's repeats)."""
from threadpoolctl import threadpool_limits

from .training import IMPLEMENTATIONS, TASKS

THREADS = 2


class TrainingEpoch:
    params = (["digits", "regression"], list(IMPLEMENTATIONS))
    param_names = ["task", "impl"]
    timeout = 300

    def setup(self, task, impl):
        self.limits = None            # teardown runs even when setup skips (n/a)
        try:
            X, y, _ = TASKS[task]["load"]()
            self.run = IMPLEMENTATIONS[impl](TASKS[task], X, y, THREADS)
        except ImportError:
            raise NotImplementedError(f"{impl} is not installed")
        self.limits = threadpool_limits(THREADS, user_api="blas") if impl != "cffnn" else None
        self.run()                                    # warm-up epoch

    def teardown(self, task, impl):
        if self.limits is not None:
            self.limits.restore_original_limits()

    def time_epoch(self, task, impl):
        self.run()
