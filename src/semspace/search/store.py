"""SQLite document store: id, text, metadata JSON and the raw float32 vector of every document, one transaction
per change. The raw vectors live in the same rows as the texts, so texts and vectors can never get out of step, and a
changed transform re-projects them without re-encoding.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from semspace.errors import (
    CollectionError,
    DocumentNotFoundError,
    DuplicateIdError,
    ReadOnlyCollectionError,
    StorageError,
)
from semspace.search.filters import compile_where

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    seq INTEGER PRIMARY KEY,          -- the int64 id FAISS stores
    id TEXT NOT NULL UNIQUE,          -- the user's id
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,           -- JSON object
    vector BLOB NOT NULL              -- raw float32 vector, before any transform
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# The deletion log: seqs deleted since the index checkpoint, with the generation that deleted them. Together with
# "documents with seq >= the checkpoint's next_seq" it is the tail a reader replays on top of the checkpoint.
DELETION_LOG = """
CREATE TABLE IF NOT EXISTS deleted (seq INTEGER PRIMARY KEY, generation INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS deleted_by_generation ON deleted(generation);
"""
# A covering index of (seq, metadata): a metadata filter scans it instead of the rows, whose 1.5 KB vectors would make
# it read every page of the table (100 ms → ~10 ms at 100k documents).
METADATA_INDEX = "CREATE INDEX IF NOT EXISTS documents_metadata ON documents(seq, metadata);"
_IN_CHUNK = 500  # ids per "IN (...)" query: well under SQLite's bound-parameter limit


def content_fingerprint(seqs: np.ndarray) -> str:
    """Order-independent fingerprint of a set of seqs: "<count hex>-<sum of splitmix64(seq) mod 2^64, hex>".

    The store records the fingerprint of the ids in the index checkpoint it wrote, and a checkpoint file whose ids do
    not give it is rebuilt: a count that matches by chance (10 missing + 10 stale ids) never hides a document.
    """
    z = np.asarray(seqs, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        total = int(z.sum(dtype=np.uint64)) if len(z) else 0
    return f"{len(z):x}-{total:016x}"


# SQLite's primary result codes of a write the disk refused (FULL, IOERR, READONLY, PERM), and the errno of each
_SQLITE_STORAGE = {13: errno.ENOSPC, 10: errno.EIO, 8: errno.EROFS, 3: errno.EACCES}


def storage_error(
    exc: sqlite3.Error, path: Path, outcome: str = "the change was rolled back, nothing of it is stored"
) -> StorageError | None:
    """The StorageError for a SQLite error that means the disk refused (SQLITE_FULL, _IOERR, _READONLY, _PERM), its
    message ending with `outcome`; None for any other (a busy database, a constraint, a bug)."""
    code = getattr(exc, "sqlite_errorcode", None)
    number = _SQLITE_STORAGE.get(code & 0xFF) if isinstance(code, int) else None
    if number is None:
        return None
    if number == errno.EIO and _nearly_full(path.parent):
        number = errno.ENOSPC  # SQLite reports some writes on a full disk (the WAL's -shm) as I/O errors
    return StorageError(number, f"{path}: {exc} ({os.strerror(number)}): {outcome}")


def _nearly_full(folder: Path) -> bool:
    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):  # no statvfs on Windows
        return False
    return stats.f_bavail * stats.f_frsize < 1 << 20 or (stats.f_files > 0 and stats.f_favail == 0)


def _in_chunks(values: Sequence) -> Iterator[tuple[list, str]]:
    """(chunk, "?,?,…") pairs for "WHERE x IN (…)" queries over any number of values."""
    values = list(values)
    for start in range(0, len(values), _IN_CHUNK):
        chunk = values[start : start + _IN_CHUNK]
        yield chunk, ",".join("?" * len(chunk))


def _matrix(blobs: list[bytes], dim: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim), np.float32)
    if any(len(b) != 4 * dim for b in blobs):
        raise CollectionError(f"a stored vector does not have {dim} dimensions (corrupt document store)")
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dim)


class DocumentStore:
    """Thin wrapper over one SQLite file (WAL journal, synchronous=FULL: a commit survives power loss).

    `create=True` makes the tables; otherwise the file must already hold them (a zero-byte or foreign file is refused
    with CollectionError and left untouched). `timeout` is SQLite's busy timeout in seconds. `read_only=True` opens it
    with SQLite's `mode=ro` (and `immutable=1` where even that cannot open it: a read-only folder without the WAL's
    side files) and refuses every write with ReadOnlyCollectionError.
    """

    def __init__(
        self, path: str | Path, dim: int, create: bool = False, timeout: float = 60.0, read_only: bool = False
    ) -> None:
        self.path = Path(path)
        self.dim = dim
        self.read_only = read_only and not create
        try:
            self._db = self._connect(timeout)
            if not create:
                tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if not {"documents", "meta"} <= tables:
                    self._db.close()
                    size = self.path.stat().st_size if self.path.exists() else 0
                    raise CollectionError(
                        f"{self.path}: not a semspace document store (tables {sorted(tables)}, {size} bytes); "
                        "nothing was changed"
                    )
            if not self.read_only:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                if create:
                    self._db.executescript(SCHEMA)
                if create or not self._has("deleted"):
                    self._db.executescript(DELETION_LOG)  # collections made before the log get it on first open
                if create or not self._has("documents_metadata"):
                    self._db.executescript(METADATA_INDEX)
            self.has_log = self._has("deleted")  # False only for a pre-log collection opened read-only
        except sqlite3.DatabaseError as exc:
            refused = storage_error(exc, self.path, "the document store cannot be opened or set up here")
            if refused is not None:
                raise refused from None
            raise CollectionError(f"{self.path}: not a readable SQLite document store ({exc})") from None

    def _connect(self, timeout: float) -> sqlite3.Connection:
        def connect(target: str | Path, uri: bool) -> sqlite3.Connection:
            return sqlite3.connect(target, isolation_level=None, check_same_thread=False, timeout=timeout, uri=uri)

        if not self.read_only:
            return connect(self.path, False)
        uri = self.path.absolute().as_uri()
        try:
            db = connect(f"{uri}?mode=ro", True)
            db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # SQLite opens the file lazily
            return db
        except sqlite3.OperationalError:
            pass  # a WAL database in a read-only folder without its -shm file: only immutable opens it
        wal = self.path.with_name(self.path.name + "-wal")
        if wal.is_file() and wal.stat().st_size:
            logger.warning(
                "%s: read-only and its WAL cannot be read here: changes not yet checkpointed into the file are not "
                "visible (open it once where it is writable to merge them)",
                self.path,
            )
        return connect(f"{uri}?mode=ro&immutable=1", True)

    def close(self) -> None:
        self._db.close()

    def _has(self, name: str) -> bool:
        return self._db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() is not None

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query in the block sees one committed state (WAL snapshot isolation)."""
        self._db.execute("BEGIN")
        try:
            yield self._db
        finally:
            self._db.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT; any exception (a failed COMMIT included) rolls back, leaving the last committed
        state. A disk that refuses the write (full, read-only, failing) raises StorageError; a read-only store
        raises ReadOnlyCollectionError before anything starts."""
        if self.read_only:
            raise ReadOnlyCollectionError(f"read-only collection: writes are refused ({self.path.parent})")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.Error as exc:  # SQLite has rolled back already, or will when it can read again
                        logger.warning("%s: ROLLBACK failed (%s)", self.path, exc)
                raise
        except sqlite3.DatabaseError as exc:
            error = storage_error(exc, self.path)
            if error is None:
                raise
            raise error from exc

    # -- meta --------------------------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def meta(self, db: sqlite3.Connection | None = None) -> dict[str, str]:
        """Every meta key and value, in one query."""
        return dict((db or self._db).execute("SELECT key, value FROM meta").fetchall())

    @staticmethod
    def set_meta(db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def generation(self) -> int:
        """Bumped by every committed change; the FAISS index file carries the generation it reflects."""
        return int(self.get_meta("generation", "0") or 0)

    @staticmethod
    def bump_generation(db: sqlite3.Connection) -> int:
        row = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        generation = (int(row[0]) if row else 0) + 1
        DocumentStore.set_meta(db, "generation", str(generation))
        return generation

    # -- documents ---------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    @staticmethod
    def allocate_seqs(db: sqlite3.Connection, n: int) -> np.ndarray:
        """`n` fresh seqs from the persistent counter, inside the caller's write transaction: a seq is never given
        twice, even after the document holding the highest one is deleted."""
        start = DocumentStore.next_seq_of(db)
        DocumentStore.set_meta(db, "next_seq", str(start + n))
        return np.arange(start, start + n, dtype=np.int64)

    def next_seq(self, db: sqlite3.Connection | None = None) -> int:
        """The seq the next document will get (above every stored one, also for collections from before the
        persistent counter)."""
        return DocumentStore.next_seq_of(db or self._db)

    @staticmethod
    def next_seq_of(db: sqlite3.Connection) -> int:
        row = db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
        top = int(db.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM documents").fetchone()[0])
        return max(int(row[0]) if row else 0, top)

    def all_seqs(self, db: sqlite3.Connection | None = None) -> np.ndarray:
        rows = (db or self._db).execute("SELECT seq FROM documents").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def existing_ids(self, ids: Sequence[str], db: sqlite3.Connection | None = None) -> list[str]:
        found: list[str] = []
        for chunk, marks in _in_chunks(ids):
            found += [r[0] for r in (db or self._db).execute(f"SELECT id FROM documents WHERE id IN ({marks})", chunk)]
        return found

    @staticmethod
    def insert(
        db: sqlite3.Connection,
        seqs: Sequence[int],
        ids: Sequence[str],
        texts: Sequence[str],
        metadata_json: Sequence[str],
        vectors: np.ndarray,
    ) -> None:
        """Insert rows; `metadata_json` is each document's metadata as JSON text (see documents.check_metadata)."""
        rows = (
            (int(s), i, t, m, np.ascontiguousarray(v, np.float32).tobytes())
            for s, i, t, m, v in zip(seqs, ids, texts, metadata_json, vectors, strict=True)
        )
        try:
            db.executemany("INSERT INTO documents(seq, id, text, metadata, vector) VALUES(?, ?, ?, ?, ?)", rows)
        except sqlite3.IntegrityError as exc:
            raise DuplicateIdError(f"Duplicate document id ({exc}).") from None

    def seqs_of(self, ids: Sequence[str], db: sqlite3.Connection | None = None) -> dict[str, int]:
        out: dict[str, int] = {}
        for chunk, marks in _in_chunks(ids):
            out.update(
                (db or self._db).execute(f"SELECT id, seq FROM documents WHERE id IN ({marks})", chunk).fetchall()
            )
        return out

    @staticmethod
    def delete(db: sqlite3.Connection, seqs: Sequence[int], generation: int) -> None:
        """Delete documents by seq and log the deletions (for readers replaying the tail, see index_state.py)."""
        db.executemany("DELETE FROM documents WHERE seq = ?", ((int(s),) for s in seqs))
        DocumentStore.log_deletions(db, seqs, generation)

    def get(self, ids: Sequence[str]) -> list[dict]:
        """Documents by user id, in the order asked; an unknown id raises DocumentNotFoundError."""
        rows: dict[str, dict] = {}
        for chunk, marks in _in_chunks(ids):
            for doc_id, text, meta in self._db.execute(
                f"SELECT id, text, metadata FROM documents WHERE id IN ({marks})", chunk
            ):
                rows[doc_id] = {"id": doc_id, "text": text, "metadata": json.loads(meta)}
        missing = [i for i in ids if i not in rows]
        if missing:
            raise DocumentNotFoundError(f"Unknown document id(s): {', '.join(map(repr, missing[:5]))}")
        return [rows[i] for i in ids]

    def by_seq(self, seqs: Sequence[int]) -> dict[int, tuple[str, str, dict]]:
        out: dict[int, tuple[str, str, dict]] = {}
        for chunk, marks in _in_chunks([int(s) for s in seqs if s >= 0]):
            for seq, doc_id, text, meta in self._db.execute(
                f"SELECT seq, id, text, metadata FROM documents WHERE seq IN ({marks})", chunk
            ):
                out[seq] = (doc_id, text, json.loads(meta))
        return out

    def all_vectors(self, batch: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
        """(seqs int64, raw vectors float32) of every document, in seq order."""
        return self.vectors_since(0, batch=batch)

    def vectors_since(
        self, first_seq: int, db: sqlite3.Connection | None = None, batch: int = 10_000
    ) -> tuple[np.ndarray, np.ndarray]:
        """(seqs, raw vectors) of the documents with seq >= `first_seq`, in seq order: what was added after an
        index state whose next seq was `first_seq` (seqs only grow, so this is the primary key's tail)."""
        seqs: list[int] = []
        parts: list[np.ndarray] = []
        cursor = (db or self._db).execute("SELECT seq, vector FROM documents WHERE seq >= ? ORDER BY seq", (first_seq,))
        while rows := cursor.fetchmany(batch):
            seqs += [r[0] for r in rows]
            parts.append(_matrix([r[1] for r in rows], self.dim))
        matrix = np.vstack(parts) if parts else np.zeros((0, self.dim), np.float32)
        return np.asarray(seqs, dtype=np.int64), matrix

    # -- the deletion log ----------------------------------------------------------------------------------------
    @staticmethod
    def log_deletions(db: sqlite3.Connection, seqs: Sequence[int], generation: int, replace: bool = True) -> None:
        """Log `seqs` as deleted by `generation` (`replace=False`: keep the generation of a seq already logged)."""
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        db.executemany(f"{verb} INTO deleted(seq, generation) VALUES(?, ?)", ((int(s), generation) for s in seqs))

    def deleted_since(self, generation: int, below_seq: int, db: sqlite3.Connection | None = None) -> np.ndarray:
        """Seqs below `below_seq` deleted by a generation after `generation` (ascending)."""
        if not self.has_log:
            return np.zeros(0, np.int64)
        rows = (
            (db or self._db)
            .execute("SELECT seq FROM deleted WHERE generation > ? AND seq < ? ORDER BY seq", (generation, below_seq))
            .fetchall()
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def deleted_below(self, below_seq: int, db: sqlite3.Connection | None = None) -> np.ndarray:
        """Every logged deletion of a seq below `below_seq` (ascending)."""
        return self.deleted_since(-1, below_seq, db)

    def deleted_count(self, after_generation: int = -1, db: sqlite3.Connection | None = None) -> int:
        """Logged deletions made by a generation after `after_generation` (all by default)."""
        if not self.has_log:
            return 0
        sql = "SELECT COUNT(*) FROM deleted WHERE generation > ?"
        return int((db or self._db).execute(sql, (after_generation,)).fetchone()[0])

    @staticmethod
    def prune_deletions(db: sqlite3.Connection, keep: np.ndarray) -> None:
        """Drop the logged deletions except those of `keep` (seqs a checkpoint still holds as tombstones)."""
        if not len(keep):
            db.execute("DELETE FROM deleted")
            return
        db.execute("CREATE TEMP TABLE IF NOT EXISTS keep_seqs (seq INTEGER PRIMARY KEY)")
        db.execute("DELETE FROM keep_seqs")
        db.executemany("INSERT INTO keep_seqs(seq) VALUES(?)", ((int(s),) for s in keep))
        db.execute("DELETE FROM deleted WHERE seq NOT IN (SELECT seq FROM keep_seqs)")
        db.execute("DELETE FROM keep_seqs")

    def stored_texts(self, texts: Sequence[str]) -> set[str]:
        """Which of `texts` some stored document has as its text (one scan of the table)."""
        db = self._db
        db.execute("CREATE TEMP TABLE IF NOT EXISTS probe_texts (text TEXT PRIMARY KEY)")
        db.execute("DELETE FROM probe_texts")
        db.executemany("INSERT OR IGNORE INTO probe_texts(text) VALUES(?)", ((t,) for t in texts))
        found = {r[0] for r in db.execute("SELECT DISTINCT d.text FROM documents d JOIN probe_texts p USING(text)")}
        db.execute("DELETE FROM probe_texts")
        return found

    def seq_texts(self) -> tuple[np.ndarray, list[str]]:
        """(seqs, texts) of every document, in seq order."""
        rows = self._db.execute("SELECT seq, text FROM documents ORDER BY seq").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)), [r[1] for r in rows]

    def sample_texts(self, n: int, seed: int = 0) -> list[str]:
        total = len(self)
        if total <= n:
            return [r[0] for r in self._db.execute("SELECT text FROM documents ORDER BY seq")]
        picks = sorted(np.random.default_rng(seed).choice(total, size=n, replace=False).tolist())
        texts = [r[0] for r in self._db.execute("SELECT text FROM documents ORDER BY seq")]
        return [texts[i] for i in picks]

    # -- filters, pages, export ----------------------------------------------------------------------------------
    def filter_seqs(self, where: dict) -> np.ndarray:
        """Seqs of the documents whose metadata match `where` (see filters.py), ascending."""
        sql, params = compile_where(where)
        rows = self._db.execute(f"SELECT seq FROM documents WHERE {sql} ORDER BY seq", params).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def count(self, where: dict | None = None) -> int:
        if not where:
            return len(self)
        sql, params = compile_where(where)
        return int(self._db.execute(f"SELECT COUNT(*) FROM documents WHERE {sql}", params).fetchone()[0])

    def vectors_by_seq(self, seqs: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(seqs found, their raw vectors), ascending by seq."""
        found, blobs = [], []
        for chunk, marks in _in_chunks(sorted(int(s) for s in seqs)):
            for seq, blob in self._db.execute(
                f"SELECT seq, vector FROM documents WHERE seq IN ({marks}) ORDER BY seq", chunk
            ):
                found.append(seq)
                blobs.append(blob)
        return np.asarray(found, dtype=np.int64), _matrix(blobs, self.dim)

    def page(
        self, limit: int, offset: int = 0, where: dict | None = None, after_seq: int | None = None
    ) -> list[tuple[int, str, str, dict]]:
        """(seq, id, text, metadata) in insertion (seq) order: `limit` rows after `offset` rows, or after a seq."""
        sql, params = compile_where(where) if where else ("1", [])
        if after_seq is not None:
            sql, params = f"{sql} AND seq > ?", [*params, int(after_seq)]
        rows = self._db.execute(
            f"SELECT seq, id, text, metadata FROM documents WHERE {sql} ORDER BY seq LIMIT ? OFFSET ?",
            [*params, int(limit), int(offset)],
        )
        return [(seq, doc_id, text, json.loads(meta)) for seq, doc_id, text, meta in rows]

    def iter_documents(self, batch: int = 1000) -> Iterator[tuple[str, str, dict, np.ndarray]]:
        """(id, text, metadata, raw vector) of every document in seq order, read in one snapshot."""
        cursor = self._db.execute("SELECT id, text, metadata, vector FROM documents ORDER BY seq")
        while rows := cursor.fetchmany(batch):
            for doc_id, text, meta, blob in rows:
                yield doc_id, text, json.loads(meta), np.frombuffer(blob, dtype=np.float32)
