"""Usage errors through the real `main()` (`python -m semspace`): exactly one line on stderr and exit code 2, on
whatever typer/click is installed; `--help` and a group without a command print help and exit 0."""

import subprocess
import sys

import pytest


def semspace(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semspace", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["encode"], "Missing argument"),
        (["encode", "x.txt", "-o"], "requires an argument"),
        (["encode", "x.txt", "-o", "x.npy", "--no-such-option"], "No such option"),
        (["index", "search", "C", "query", "-k", "0"], "'-k'"),
        (["serve", "--port", "0"], "'--port'"),
        (["encode", "x.txt", "-o", "x.npy", "--batch-size", "0"], "'--batch-size'"),
        (["cur", "search", "I", "q", "--budget", "x"], "'--budget'"),
        (["no-such-command"], "No such command"),
        (["index", "info", "/no/such/collection"], "not a semspace collection"),  # a library error
    ],
)
def test_usage_error_is_one_line_and_exit_2(args, expected):
    result = semspace(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize("args", [["--help"], ["index", "--help"], ["train", "cosent", "--help"], [], ["index"]])
def test_help_exits_zero(args):
    result = semspace(*args)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout and result.stderr == ""


def test_cli_module_entry_point_still_works():
    result = subprocess.run(
        [sys.executable, "-m", "semspace.cli", "encode"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
