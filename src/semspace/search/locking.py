"""The cross-process writer lock of a collection: an OS file lock (`fcntl.flock`) on `collection.lock` in its folder.

Every change (add, delete, upsert, set_transform) and every reload of the FAISS index runs under it, so the SQLite
commit, the index file and the manifest of one write are never interleaved with another process's. The lock is
released by the kernel when its holder dies (kill -9 included): a crashed writer never blocks the others.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from semspace.errors import CollectionBusyError, CollectionError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: only the in-process lock
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "collection.lock"


class WriterLock:
    """Re-entrant (per thread) exclusive lock shared by threads of this process and by other processes.

    `timeout` bounds the wait: past it `CollectionError` names the lock file, so a stuck writer is reported instead
    of hanging every client. `read_only`: the folder cannot be written (a reader reloading its index still takes
    the lock, so that a writer elsewhere is not mid-checkpoint): the lock file is opened read-only, and when there is
    none the lock is the in-process one alone.
    """

    def __init__(self, folder: Path, timeout: float = 60.0, read_only: bool = False) -> None:
        self.path = Path(folder) / LOCK_FILE
        self.timeout = timeout
        self.read_only = read_only
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def _open(self) -> int | None:
        if self._fd is None:
            try:
                if self.read_only:
                    self._fd = os.open(self.path, os.O_RDONLY) if self.path.is_file() else None
                else:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise CollectionError(f"{self.path}: cannot open the collection's lock file ({exc})") from None
        return self._fd

    def _flock(self, blocking_for: float) -> bool:
        if fcntl is None:
            return True
        fd = self._open()
        if fd is None:
            return True
        deadline = time.monotonic() + blocking_for
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 0.05)

    @contextmanager
    def hold(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the lock for the block; raise CollectionBusyError if another process keeps it past the timeout."""
        timeout = self.timeout if timeout is None else timeout
        if not self._thread_lock.acquire(timeout=timeout if timeout >= 0 else -1):
            raise CollectionBusyError(f"{self.path}: another thread kept the collection's write lock for {timeout:g} s")
        try:
            if self._depth == 0 and not self._flock(timeout):
                raise CollectionBusyError(
                    f"{self.path}: another process kept the collection's write lock for more than {timeout:g} s; "
                    "try again later (or raise lock_timeout)"
                )
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and fcntl is not None and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
