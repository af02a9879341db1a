"""The main job (`cffnn` / `python -m cffnn`) runs end to end and rejects bad arguments."""
import subprocess
import sys
import tempfile


def run_cli(*args):
    # From a neutral directory, so that Python imports the installed package.
    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run([sys.executable, "-m", "cffnn", *args], cwd=cwd,
                              capture_output=True, text=True, timeout=300)


def test_main_job_checks_the_gradient_and_reports_timings():
    result = run_cli("--hidden", "16", "--activation", "tanh")
    assert result.returncode == 0, result.stderr
    assert "gradient check passed" in result.stdout
    assert "speed-up" in result.stdout


def test_bad_arguments_give_one_clear_line_and_exit_2():
    for args, word in ((["--hidden", "x"], "invalid literal"),
                       (["--activation", "nope"], "unknown activation")):
        result = run_cli(*args)
        assert result.returncode == 2
        assert word in result.stderr and "Traceback" not in result.stderr
