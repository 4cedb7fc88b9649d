"""Shared fixtures: a tiny random BERT (no download), fixture paths, and ../shared/data when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings
from support import LiveServer, save_tiny_bert

# Hypothesis profiles. "ci" (the default, what the README's test command runs) is derandomized: the examples follow
# from the test itself, so a landing passes or fails the same way on every machine, and no example database is read
# or written. "dev" explores: new random examples on each run, 1000 per test unless the test says otherwise, kept in
# .hypothesis/ so a failure replays. Explore locally with `HYPOTHESIS_PROFILE=dev pytest tests/analysis` and turn
# every counterexample found into an `@example(...)` on the test. A per-test `@settings(max_examples=...)` keeps its
# value under both profiles (explicit settings win); the profile supplies everything the test does not set.
settings.register_profile("ci", derandomize=True, database=None, deadline=None)
settings.register_profile("dev", derandomize=False, deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The suite compares vectors with transformers' and sentence-transformers' fp32 ones and builds many tiny models, so it
# runs the exact engine: `Encoder()`'s default `auto` would export and check ONNX graphs for each. The default itself is
# tested in tests/encode/test_engine.py with this variable removed. Set before any test (and any CLI subprocess).
os.environ.setdefault("SEMSPACE_BACKEND", "torch")

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs ../shared/data ({SHARED_DATA} not found)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, hidden-32 random BERT with a word-level vocab, saved as a local folder."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def live_server():
    return LiveServer


class Faults:
    """Fault injection for the write and read paths of a collection: `inject(step, errno)` makes that step raise
    `OSError(errno)` (ENOSPC, EIO, EROFS, …) until the test ends or `clear()`; `once=True` raises the first time
    only. The steps, in the order a write meets them:

    - before the commit: "store_insert" (the rows into SQLite), "store_commit" (SQLite's COMMIT answers
      SQLITE_FULL / SQLITE_IOERR, as from a full or failing disk);
    - after it: "apply" (the in-memory index), "checkpoint_file" (FAISS writing the checkpoint), "fsync",
      "rename" (the temp file over the checkpoint), "checkpoint_record" (the checkpoint's SQLite transaction),
      "manifest" (collection.json), "tidy" (removing the older index file).
    """

    BEFORE_COMMIT = ("store_insert", "store_commit")
    AFTER_COMMIT = ("apply", "checkpoint_file", "fsync", "rename", "checkpoint_record", "manifest", "tidy")

    def __init__(self) -> None:
        self.monkeypatch = pytest.MonkeyPatch()  # its own: clear() leaves the test's other patches alone
        self.raised = 0

    def _failing(self, original, number: int, once: bool, when=lambda *a, **k: True):
        def failing(*args, **kwargs):
            if when(*args, **kwargs) and not (once and self.raised):
                self.raised += 1
                raise OSError(number, os.strerror(number))
            return original(*args, **kwargs)

        return failing

    def inject(self, step: str, number: int, coll=None, once: bool = False) -> None:
        """Make `step` fail with `number` (`coll`: the collection whose SQLite COMMIT fails, for "store_commit")."""
        import pathlib

        from semspace.search import collection, index, store

        targets = {
            "store_insert": (store.DocumentStore, "insert"),
            "apply": (index.VectorIndex, "add"),
            "checkpoint_file": (index.VectorIndex, "write"),
            "fsync": (os, "fsync"),
            "rename": (os, "replace"),
            "checkpoint_record": (store.DocumentStore, "prune_deletions"),
            "manifest": (collection, "write_artifact_json"),
        }
        if step == "store_commit":
            self.monkeypatch.setattr(coll._store, "_db", _FailingCommit(coll._store._db, number))
            return
        if step == "tidy":
            original = pathlib.Path.unlink
            fails = self._failing(original, number, once, lambda path, *a, **k: path.name.startswith("index.g"))
            self.monkeypatch.setattr(pathlib.Path, "unlink", fails)
            return
        owner, name = targets[step]
        self.monkeypatch.setattr(owner, name, self._failing(getattr(owner, name), number, once))

    def clear(self) -> None:
        self.monkeypatch.undo()


class _FailingCommit:
    """A SQLite connection whose COMMIT fails as SQLite reports a full (SQLITE_FULL) or failing (SQLITE_IOERR) disk:
    the transaction rolled back."""

    def __init__(self, db, number: int) -> None:
        self._db, self._number, self._writing = db, number, False

    def execute(self, sql, *args):
        if sql in ("BEGIN", "BEGIN IMMEDIATE"):
            self._writing = sql == "BEGIN IMMEDIATE"  # a read snapshot's COMMIT writes nothing: it goes through
        if sql == "COMMIT" and self._writing:
            import errno
            import sqlite3

            self._db.execute("ROLLBACK")
            full = self._number == errno.ENOSPC
            exc = sqlite3.OperationalError("database or disk is full" if full else "disk I/O error")
            exc.sqlite_errorcode, exc.sqlite_errorname = (13, "SQLITE_FULL") if full else (10, "SQLITE_IOERR")
            raise exc
        return self._db.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._db, name)


@pytest.fixture
def faults():
    injected = Faults()
    yield injected
    injected.clear()
