"""Atomic file writes (temp file + fsync + rename) so a crash leaves the last good file on disk, and the one
header every JSON artifact carries (format name, format version, semspace version), checked on load."""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from semspace._version import __version__
from semspace.errors import ArtifactError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


def _umask() -> int:
    """The process umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside `path` for the caller (or a library such as FAISS) to write; on a clean exit it is
    fsynced and renamed over `path`, so readers see the old file or the new one, never half of it. On an exception
    the temp file is removed and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes 0600; give the file the permissions open() would (0666 minus the umask), e.g. 0644.
        os.fchmod(fd, 0o666 & ~_umask())
        os.close(fd)
        fd = -1
        yield Path(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    # fsync the directory so the rename itself survives a power loss.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically (see `atomic_writer`)."""
    with atomic_writer(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def atomic_write_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def atomic_write_png(path: str | os.PathLike[str], figure: Any, dpi: int = 110) -> Path:
    """Render a matplotlib figure to PNG, write it atomically and close the figure; returns the path."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def artifact_header(fmt: str, format_version: int = FORMAT_VERSION) -> dict[str, Any]:
    """The header of a JSON artifact: what it is, its format version and the semspace that wrote it."""
    return {"format": fmt, "format_version": format_version, "semspace_version": __version__}


def write_artifact_json(
    path: str | os.PathLike[str], fmt: str, body: dict[str, Any], format_version: int = FORMAT_VERSION
) -> None:
    """Atomically write `body` under the artifact header of `fmt` (header keys win over body keys)."""
    atomic_write_json(path, {**body, **artifact_header(fmt, format_version)})


def read_artifact_json(
    path: str | os.PathLike[str],
    fmt: str,
    format_version: int = FORMAT_VERSION,
    error: type[Exception] = ArtifactError,
) -> dict[str, Any]:
    """Read a JSON artifact and check its header: a missing or unreadable file, another format or another format
    version raises `error` (ArtifactError unless the caller has a more specific class); a file written by another
    semspace version only logs a warning, since the format version is what decides compatibility."""
    path = Path(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: missing (not a saved {fmt} artifact)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path}: unreadable {fmt} artifact ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != fmt:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise error(f"{path}: not a {fmt} artifact (format {found!r})")
    if config.get("format_version") != format_version:
        raise error(
            f"{path}: {fmt} format version {config.get('format_version')!r} is not supported "
            f"(this semspace reads version {format_version})"
        )
    if config.get("semspace_version") not in (None, __version__):
        logger.warning("%s was written by semspace %s (this is %s)", path, config.get("semspace_version"), __version__)
    return config


def read_artifact_npz(
    path: str | os.PathLike[str], names: tuple[str, ...], what: str, error: type[Exception] = ArtifactError
) -> dict[str, np.ndarray]:
    """The named arrays of an `.npz` artifact (no pickle): a missing file raises `error` saying so, a truncated or
    corrupt file or a missing array raises `error` naming `what` (e.g. "Whitening")."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in names}
    except FileNotFoundError:
        raise error(f"{path}: missing (not a saved {what})") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise error(f"{path}: corrupt {what} artifact ({exc})") from None
