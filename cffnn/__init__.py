"""cffnn: fast, trustworthy feed-forward neural networks on the CPU.

    >>> import numpy as np, cffnn
    >>> net = cffnn.Network([4, 8, 3], activation="tanh", output="softmax", random_state=0)
    >>> X = np.random.default_rng(0).normal(size=(5, 4))
    >>> net.forward(X).shape
    (5, 3)
"""
__version__ = "0.1.0.dev0"

from cffnn._config import show_config
from cffnn.gradcheck import check_gradient
from cffnn.network import DivergenceError, Network
from cffnn.optimizers import RPROP, SGD, Adam

__all__ = ["Adam", "DivergenceError", "Network", "RPROP", "SGD", "check_gradient",
           "show_config", "__version__"]
