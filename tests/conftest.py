"""Shared pytest configuration: the suite must exercise the *installed* cffnn.

Run it from outside the repository, e.g. ``cd /tmp && python -m pytest /work/main/tests``
(``--import-mode=importlib`` works too). Helpers shared by several modules live in
tests/_testing.py; the tests directory is put on sys.path here so that they import in
both the default and the importlib import modes.
"""
import importlib.util
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent

_spec = importlib.util.find_spec("cffnn")
if _spec is None or _spec.origin is None:
    raise pytest.UsageError("cffnn is not installed: pip install the package first")
_CFFNN_PATH = Path(_spec.origin).resolve()
if _CFFNN_PATH.parent == REPO_ROOT / "cffnn":   # the source tree, not site-packages
    raise pytest.UsageError(
        f"cffnn would be imported from the source tree ({_CFFNN_PATH}), not from the "
        "installed package: install it (pip install .) and run pytest from another "
        f"directory, e.g. `cd /tmp && python -m pytest {TESTS_DIR}`")

import cffnn  # noqa: E402  (only once we know which cffnn it is)

assert Path(cffnn.__file__).resolve() == _CFFNN_PATH

if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))


def pytest_report_header(config):
    return f"cffnn {cffnn.__version__} imported from {_CFFNN_PATH.parent}"
