"""cffnn: fast, trustworthy feed-forward neural networks on the CPU.

    >>> import numpy as np, cffnn
    >>> net = cffnn.Network([4, 8, 3], activation="tanh", output="softmax", random_state=0)
    >>> X = np.random.default_rng(0).normal(size=(5, 4))
    >>> net.forward(X).shape
    (5, 3)
"""
__version__ = "0.1.0.dev0"

from cffnn import _openmp_runtime

_openmp_runtime.load()   # first: before anything else starts the OpenMP runtime

from cffnn._config import show_config  # noqa: E402
from cffnn.gradcheck import check_gradient  # noqa: E402
from cffnn.network import DivergenceError, Network  # noqa: E402
from cffnn.optimizers import RPROP, SGD, Adam  # noqa: E402
from cffnn.persistence import ModelFileError, load  # noqa: E402

__all__ = ["Adam", "DivergenceError", "MLPClassifier", "MLPRegressor", "ModelFileError",
           "Network", "RPROP", "SGD", "check_gradient", "load", "show_config",
           "__version__"]


def __getattr__(name):
    """The estimators import scikit-learn, so they load on first use: ``import cffnn``
    stays quick for code that only needs Network."""
    if name in ("MLPClassifier", "MLPRegressor"):
        from cffnn import estimators
        return getattr(estimators, name)
    raise AttributeError(f"module 'cffnn' has no attribute {name!r}")
