"""A file system that refuses (issue 29): an OSError out of any command — a full disk, a read-only mount, no
permission, a failing disk — is one line on stderr and exit code 2, never a traceback."""

import errno
import os

import pytest

from semspace.cli.app import describe_os_error, main
from semspace.search import Collection


@pytest.mark.parametrize(
    ("number", "hint"),
    [
        (errno.ENOSPC, "free some space"),
        (errno.EROFS, "read-only"),
        (errno.EACCES, "permissions"),
        (errno.EIO, "I/O error"),
    ],
    ids=errno.errorcode.get,
)
def test_an_os_error_is_one_line_and_exit_2(number, hint, monkeypatch, capsys, tmp_path):
    def refuse(*args, **kwargs):
        raise OSError(number, os.strerror(number), str(tmp_path / "c" / "documents.sqlite"))

    monkeypatch.setattr(Collection, "open", refuse)
    with pytest.raises(SystemExit) as ended:
        main(["index", "info", str(tmp_path / "c")])
    assert ended.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {os.strerror(number)}: "), err
    assert "documents.sqlite" in err[0] and hint in err[0]


def test_describe_os_error_without_a_file():
    assert describe_os_error(OSError(errno.ENOSPC, "No space left on device")) == (
        "No space left on device (free some space and run it again)"
    )
    assert describe_os_error(OSError("odd")) == "odd"


def test_a_broken_pipe_is_not_an_error_line(monkeypatch, capsys):
    """`semspace … | head`: click's (or Python's) own handling of a closed pipe, not "error: Broken pipe"."""

    def broken(*args, **kwargs):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(Collection, "open", broken)
    with pytest.raises((BrokenPipeError, SystemExit)) as ended:
        main(["index", "info", "c"])
    assert not isinstance(ended.value, SystemExit) or ended.value.code == 1
    assert "error:" not in capsys.readouterr().err
