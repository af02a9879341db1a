"""The installed build: compiled with OpenMP, and show_config says what it runs on."""
import io
import os
import subprocess
import sys

import numpy as np
import pytest

import cffnn
from cffnn import _config


@pytest.mark.skipif(os.environ.get("CFFNN_SKIP_OPENMP_CHECK") == "1",
                    reason="CFFNN_SKIP_OPENMP_CHECK=1: a build without OpenMP is expected")
def test_build_has_openmp():
    facts = _config.config()
    assert facts["openmp"] is True
    assert facts["openmp_version"] > 0


def test_kernels_are_compiled_extensions():
    from cffnn import _kernels, _threads
    for module in (_kernels, _threads):
        assert module.__file__.endswith((".so", ".pyd")), module.__file__


def test_config_facts():
    facts = _config.config()
    assert facts["cffnn"] == cffnn.__version__
    assert facts["usable_cpus"] >= 1
    assert 1 <= facts["default_n_threads"]
    if not facts["openmp"]:
        assert facts["default_n_threads"] == 1
    expected_policy = (os.environ["OMP_WAIT_POLICY"] + " (OMP_WAIT_POLICY)"
                       if "OMP_WAIT_POLICY" in os.environ else "passive (cffnn's default)")
    assert facts["openmp_wait_policy"] == expected_policy


def test_show_config_prints_openmp_and_blas(capsys):
    cffnn.show_config()
    text = capsys.readouterr().out
    assert "OpenMP" in text and "BLAS" in text
    assert cffnn.__version__ in text
    assert ("enabled" if _config.config()["openmp"] else "disabled") in text
    assert ("a helper thread" if _config.config()["row_helper_thread"]
            else "no helper thread") in text
    assert _config.config()["row_helper_thread"] == sys.platform.startswith("linux")


def test_show_config_writes_to_a_file():
    buffer = io.StringIO()
    cffnn.show_config(file=buffer)
    assert "OpenMP" in buffer.getvalue() and "BLAS" in buffer.getvalue()


def test_default_thread_count_honours_omp_num_threads(tmp_path):
    """n_threads=None means every usable core, but no more than OMP_NUM_THREADS."""
    code = "from cffnn import _config; print(_config.config()['default_n_threads'])"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, text=True,
                            capture_output=True, timeout=120,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_kernel_calls_leave_blas_thread_counts_as_they_found_them():
    """The kernels hold BLAS at one thread during a call (one pool at a time) and must
    restore every library's count afterwards, so NumPy and SciPy keep their threads."""
    from threadpoolctl import threadpool_info

    def blas_threads():
        return {info["filepath"]: info["num_threads"] for info in threadpool_info()
                if info["user_api"] == "blas"}

    before = blas_threads()
    net = cffnn.Network([300, 300, 10], dtype=np.float32, random_state=0)
    X = np.random.default_rng(0).random((2000, 300), dtype=np.float32)
    y = np.zeros(2000, dtype=np.int64)
    for n_threads in (1, 2, None):
        net.forward(X, n_threads=n_threads)
        net.loss_and_gradient(X, y, n_threads=n_threads)
    assert blas_threads() == before


@pytest.mark.parametrize("user_policy", [None, "active"])
def test_openmp_wait_policy_is_passive_only_while_the_runtime_loads(user_policy):
    """cffnn loads its OpenMP runtime with OMP_WAIT_POLICY=passive (idle threads sleep
    instead of spinning on cores other work needs) unless the user chose a policy, and
    leaves os.environ as it found it."""
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    if user_policy:
        env["OMP_WAIT_POLICY"] = user_policy
    code = "import os, cffnn; print(os.environ.get('OMP_WAIT_POLICY'))"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=120, cwd=os.path.dirname(os.__file__))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(user_policy)


def test_openmp_runtime_sees_the_passive_policy_while_it_loads(monkeypatch):
    from cffnn import _openmp_runtime
    seen = []

    class FakeThreads:
        @staticmethod
        def openmp_max_threads():
            seen.append(os.environ.get("OMP_WAIT_POLICY"))
            return 1

    monkeypatch.setattr(_openmp_runtime, "wait_policy", _openmp_runtime.wait_policy)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setitem(sys.modules, "cffnn._threads", FakeThreads)
    monkeypatch.setattr(cffnn, "_threads", FakeThreads, raising=False)
    _openmp_runtime.load()
    assert seen == ["passive"] and "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.setenv("OMP_WAIT_POLICY", "active")
    _openmp_runtime.load()
    assert seen == ["passive", "active"] and os.environ["OMP_WAIT_POLICY"] == "active"


def test_portable_kernels_agree_with_the_reference_too(tmp_path):
    """The AVX2 loops (one-row kernel, tanh, exp, Adam, the finite scan) have portable
    twins for CPUs without AVX2; CFFNN_DISABLE_AVX2=1 makes this machine take them, and
    the reference and validation tests must pass that way as well."""
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    modules = [os.path.join(tests_dir, name) for name in
               ("test_reference_agreement.py", "test_fit_epoch.py", "test_optimizers.py",
                "test_numerics.py", "test_validation.py")]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *modules],
        env={**os.environ, "CFFNN_DISABLE_AVX2": "1"}, capture_output=True, text=True,
        timeout=600, cwd=tmp_path)    # outside the clone: the installed package
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
