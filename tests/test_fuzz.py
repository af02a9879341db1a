"""Random malformed inputs, run in a subprocess so that a crash (segfault, abort) is a
failed test instead of a dead pytest.

Every call must either succeed, with an output of the right shape and dtype, or raise
ValueError / TypeError. Any other exception is reported by the child, which then exits 1.
"""
import os
import subprocess
import sys
import textwrap

import pytest

import cffnn

FUZZ_SCRIPT = textwrap.dedent(r'''
    import sys
    import warnings

    import numpy as np
    import scipy.sparse

    import cffnn

    assert cffnn.__file__ == sys.argv[2], (cffnn.__file__, sys.argv[2])
    warnings.simplefilter("ignore")          # numpy cast/overflow warnings are expected
    rng = np.random.default_rng(int(sys.argv[1]))
    N_TRIALS = int(sys.argv[3])

    ACTIVATIONS = ["identity", "logistic", "tanh", "relu", "leaky_relu", "elu",
                   "softplus", "gelu"]
    PAIRS = [("identity", "squared_error"), ("logistic", "binary_log_loss"),
             ("logistic", "squared_error"), ("softmax", "log_loss"),
             ("softmax", "squared_error")]
    ODD_DTYPES = [np.int8, np.uint64, np.float16, np.complex64, bool, object, "U3",
                  "datetime64[s]", ">f8", "<f4"]

    def pick(options):
        return options[rng.integers(len(options))]

    def malformed_array(shape):
        """A random array near `shape`, often wrong in one respect."""
        shape = tuple(int(s) for s in shape)
        kind = rng.integers(16)
        base = rng.normal(scale=pick([1.0, 1e3, 1e30, 1e300]), size=shape)
        if kind == 0:
            return base                                       # valid
        if kind == 1:
            return base.reshape(-1)                           # wrong ndim
        if kind == 2:
            return base[..., None]
        if kind == 3:
            return np.ones(tuple(max(0, s + int(rng.integers(-2, 3))) for s in shape))
        if kind == 4:
            bad = base.copy()
            if bad.size:
                bad.flat[rng.integers(bad.size)] = pick([np.nan, np.inf, -np.inf])
            return bad
        if kind == 5:
            try:
                return base.astype(pick(ODD_DTYPES))
            except (TypeError, ValueError):
                return base
        if kind == 6:
            return base.T if base.ndim == 2 else base         # Fortran / wrong shape
        if kind == 7:
            return np.repeat(base, 2, axis=0)[::2] if base.ndim else base
        if kind == 8:
            return base[::-1]
        if kind == 9:
            return base.tolist()
        if kind == 10:
            rows = base.tolist() if base.ndim == 2 else [[1.0]]
            if rows:
                rows[0] = rows[0][:-1]                        # ragged
            return rows
        if kind == 11:
            return scipy.sparse.csr_matrix(base.reshape(shape[0], -1)) \
                if base.size and base.ndim >= 1 else base
        if kind == 12:
            return pick([None, 1.0, "x", [], [[]], {}, object()])
        if kind == 13:
            return np.broadcast_to(base[:1], shape) if base.ndim and shape[0] else base
        if kind == 14:
            ro = base.copy()
            ro.setflags(write=False)
            return ro
        return rng.integers(-3, 6, size=shape)                # integers, maybe labels

    def random_network():
        n_hidden = int(rng.integers(0, 4))
        sizes = [int(s) for s in rng.integers(1, 7, n_hidden + 2)]
        output, loss = pick(PAIRS)
        if output == "softmax" and sizes[-1] < 2:
            sizes[-1] = 2
        activation = pick(ACTIVATIONS) if rng.random() < 0.5 else \
            [pick(ACTIVATIONS) for _ in range(n_hidden)]
        return cffnn.Network(sizes, activation=activation, output=output, loss=loss,
                             dtype=pick([np.float32, np.float64]),
                             random_state=int(rng.integers(1000)))

    def random_constructor_call():
        sizes = pick([[3, 2], [3, 0, 2], [3, -1], [3], [], [3, 2.5], "32", 7, [3, None],
                      [np.int64(3), np.int32(2)], [3, 4, 2]])
        kwargs = dict(activation=pick(ACTIVATIONS + ["softmax", "", None, 3, ["relu"]]),
                      output=pick(["identity", "logistic", "softmax", "relu", None]),
                      loss=pick([None, "squared_error", "log_loss", "binary_log_loss",
                                 "hinge"]),
                      dtype=pick([np.float32, np.float64, np.int32, np.float16, "f8",
                                  "bogus"]),
                      random_state=pick([None, 0, -1, "x", 1.5,
                                         np.random.RandomState(0),
                                         np.random.default_rng(0)]))
        return cffnn.Network(sizes, **kwargs)

    failures = []
    outcomes = {"ok": 0, "ValueError": 0, "TypeError": 0}
    for trial in range(N_TRIALS):
        net = random_network()
        n = int(rng.integers(1, 9))
        X = malformed_array((n, net.layer_sizes[0]))
        if net.output == "softmax" and rng.random() < 0.5:
            Y = malformed_array((n,))
        else:
            Y = malformed_array((n, net.layer_sizes[-1]))
            if isinstance(Y, np.ndarray) and Y.dtype.kind == "f" and rng.random() < 0.5:
                Y = np.clip(Y, 0, 1)
        sample_weight = pick([None, None, 2.0, -1.0, 0.0]) if rng.random() < 0.5 else \
            malformed_array((n,))
        alpha = pick([0.0, 0.5, -1.0, np.nan, np.inf, "1", None, np.float32(0.1)])
        n_threads = pick([None, 1, 2, -1, 0, 1.5, "2", True, np.int64(2)])
        call = int(rng.integers(6))
        try:
            if call == 0:
                out = net.forward(X, n_threads=n_threads)
                assert out.shape == (np.shape(X)[0], net.layer_sizes[-1]), out.shape
                assert out.dtype == net.dtype
            elif call == 1:
                value = net.loss(X, Y, alpha=alpha, sample_weight=sample_weight,
                                 n_threads=n_threads)
                assert isinstance(value, float)
            elif call == 2:
                value, grad = net.loss_and_gradient(X, Y, alpha=alpha,
                                                    sample_weight=sample_weight,
                                                    n_threads=n_threads)
                assert grad.shape == net.params.shape and grad.dtype == net.dtype
            elif call == 3:
                net.params = malformed_array((net.n_params,))
                assert net.params.shape == (net.n_params,)
            elif call == 4:
                random_constructor_call()
            else:
                cffnn.check_gradient(net, X, Y, alpha=alpha, sample_weight=sample_weight)
            outcomes["ok"] += 1
        except (ValueError, TypeError) as error:
            outcomes["ValueError" if isinstance(error, ValueError) else "TypeError"] += 1
            if not str(error):
                failures.append(f"trial {trial} call {call}: {type(error).__name__} "
                                "without a message")
        except Exception as error:
            failures.append(f"trial {trial} call {call}: {type(error).__name__}: {error}")
    print(outcomes)
    for failure in failures[:20]:
        print("UNEXPECTED", failure)
    sys.exit(1 if failures else 0)
''')


@pytest.mark.parametrize("seed", [0, 1])
def test_random_malformed_inputs_never_crash(seed, tmp_path):
    result = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", FUZZ_SCRIPT, str(seed),
         cffnn.__file__, "1500"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"})
    report = f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
    assert result.returncode == 0, f"fuzz child exited with {result.returncode}\n{report}"
    assert "'ok'" in result.stdout, report
