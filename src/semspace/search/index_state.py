"""The in-memory FAISS index of a collection, kept in step with its SQLite store at the cost of the change.

SQLite is the log. ``documents.sqlite`` holds every document with its raw vector, a ``deleted`` table logs the seqs
deleted since the index checkpoint, and the ``checkpoint`` meta row names the index file that holds every vector
with seq below the checkpoint's ``next_seq``. Seqs only grow, so the state of the store is always

    checkpoint file  +  documents with seq >= checkpoint.next_seq  −  logged deletions (tombstones)

- A write commits one SQLite transaction (its rows, its deletions logged, the generation bumped) and applies the same
  rows to this process's in-memory index: O(batch), no index file is written.
- A process that sees a newer generation reads only the delta since its own state, in one read snapshot and without
  the writer lock: the documents with seq >= its ``next_seq`` and the deletions logged after its generation.
- A checkpoint writes the in-memory index to a new file (tombstones removed where FAISS can) when the tail passes a
  fraction of the collection (amortised O(1) per row) or on ``compact()``, then prunes the deletion log. A process
  behind the pruned log (``log_floor``), one whose transform differs, or one whose index was structurally rebuilt
  (``epoch``: training, retraining, a transform) reloads the checkpoint file instead, under the writer lock.
- The store is the source of truth and the index file only a cache of it: a checkpoint that cannot be written (a
  read-only folder, a full or failing disk) leaves the index serving from memory, current, and the next write tries
  again. A read never fails for want of writing one.

This follows the write-ahead-log + persisted-index design of Chroma and LanceDB's "fragments + incremental index",
with SQLite as the log (Chroma's own choice).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from semspace._io import atomic_writer
from semspace.search.index import VectorIndex
from semspace.search.store import DocumentStore, content_fingerprint

logger = logging.getLogger(__name__)

CHECKPOINT_FRACTION = 0.2  # a checkpoint is written when the tail reaches this fraction of the collection …
CHECKPOINT_MIN_ROWS = 1000  # … and at least this many rows (small collections replay a short tail instead)
RETRAIN_GROWTH = 4.0  # a trained index (IVF, PQ, OPQ, SQ) is retrained at compaction past this growth
PURGE_REBUILD_FRACTION = 0.2  # an index that cannot remove (HNSW) is rebuilt past this fraction of tombstones

# what a checkpoint that the disk refuses raises: the file (OSError, StorageError) or its record (a busy database)
PERSIST_ERRORS = (OSError, sqlite3.OperationalError)

# number of a transform → (indexed dimension, projection of raw vectors)
Projection = Callable[[int], tuple[int, Callable[[np.ndarray], np.ndarray]]]


@dataclass
class Checkpoint:
    """The index file of a collection and what it holds: every vector with seq < `next_seq` (minus the logged
    deletions it still carries as tombstones), ids with content fingerprint `fingerprint`."""

    file: str
    next_seq: int
    fingerprint: str
    epoch: int
    generation: int
    trained_on: int = 0  # vectors the index was trained on (0: no training)
    transform: int = 0  # the transform number its vectors were projected with

    @classmethod
    def from_meta(cls, meta: dict[str, str]) -> Checkpoint | None:
        try:
            return cls(**json.loads(meta["checkpoint"]))
        except (KeyError, TypeError, ValueError):
            return None


def _int(meta: dict[str, str], key: str, default: int = 0) -> int:
    return int(meta.get(key) or default)


class IndexState:
    """A VectorIndex plus the store state it reflects (generation, next seq, epoch, transform number)."""

    def __init__(
        self,
        folder: Path,
        factory: str,
        store: DocumentStore,
        projection: Projection,
        on_checkpoint: Callable[[], None] = lambda: None,
        read_only: bool = False,
    ) -> None:
        self.folder = folder
        self.read_only = read_only  # never write a checkpoint (the index is rebuilt in memory when it must be)
        self.on_checkpoint = on_checkpoint
        self.factory = factory
        self.store = store
        self.projection = projection
        self.transform_number = _int(store.meta(), "transform")
        dim, self.project = projection(self.transform_number)
        self.index = VectorIndex(factory, dim)
        self.generation = -1  # -1: nothing loaded yet
        self.next_seq = 0
        self.epoch = -1
        self.checkpoint: Checkpoint | None = None
        # an index rebuilt in memory whose checkpoint is not written yet: the vectors it was trained on (0: none);
        # the next checkpoint records it as a structural change
        self.unsaved_training: int | None = None
        self.persist_error: Exception | None = None  # why that checkpoint was not written

    @property
    def trained_on(self) -> int:
        """Vectors the in-memory index was trained on (0: no training)."""
        if self.unsaved_training is not None:
            return self.unsaved_training
        return self.checkpoint.trained_on if self.checkpoint is not None else 0

    # -- reading ---------------------------------------------------------------------------------------------
    def is_current(self) -> bool:
        return self.store.generation == self.generation

    def catch_up(self, hold_writer: Callable) -> None:
        """Apply what other processes committed since this state: the delta when the log still covers it (no lock),
        else a reload of the checkpoint under the writer lock (`hold_writer()`, a context manager)."""
        if self._replay_delta():
            return
        with hold_writer():
            self.reload()

    def _replay_delta(self) -> bool:
        """True when the state is now current by replaying the delta (or already was)."""
        with self.store.snapshot() as db:
            meta = self.store.meta(db)
            generation = _int(meta, "generation")
            if generation == self.generation:
                return True
            if (
                self.generation < 0
                or _int(meta, "transform") != self.transform_number
                or _int(meta, "epoch") != self.epoch
                or self.generation < _int(meta, "log_floor")
            ):
                return False
            seqs, raw = self.store.vectors_since(self.next_seq, db)
            dead = self.store.deleted_since(self.generation, self.next_seq, db)
            next_seq = self.store.next_seq(db)
        self._apply(seqs, raw, dead)
        self.generation, self.next_seq = generation, next_seq
        self.checkpoint = Checkpoint.from_meta(meta)
        return True

    def _apply(self, seqs: np.ndarray, raw: np.ndarray, dead: np.ndarray) -> None:
        try:
            if len(dead):
                self.index.tombstone(dead)
            if len(seqs):
                self.index.add(seqs, self.project(raw))
        except BaseException:
            self.generation = -1  # unknown state: reload next time
            raise

    def reload(self) -> None:
        """Load the checkpoint file and replay the tail after it (writer lock held); rebuild from the stored vectors
        when the file is missing, unreadable or does not hold the ids the store recorded for it."""
        self.generation = self.epoch = -1  # until this succeeds: a failure leaves nothing that looks current
        meta = self.store.meta()
        number = _int(meta, "transform")
        dim, self.project = self.projection(number)
        self.transform_number = number
        self.index = VectorIndex(self.factory, dim)
        checkpoint = Checkpoint.from_meta(meta)
        if checkpoint is not None and checkpoint.transform != number:
            # a transform change committed, then the process died (or failed) before its rebuild was recorded
            logger.warning(
                "%s was built for transform t%d, the store has t%d; rebuilding",
                checkpoint.file,
                checkpoint.transform,
                number,
            )
            checkpoint = None
        if checkpoint is None or not self._read_checkpoint(checkpoint):
            self.rebuild()
            return
        with self.store.snapshot() as db:
            meta = self.store.meta(db)
            seqs, raw = self.store.vectors_since(checkpoint.next_seq, db)
            dead = self.store.deleted_below(checkpoint.next_seq, db)
            count = len(self.store)
            next_seq = self.store.next_seq(db)
        self._apply(seqs, raw, dead)
        if self.index.ntotal != count:
            logger.warning(
                "%s + its tail holds %d live vectors, the store %d documents; rebuilding",
                checkpoint.file,
                self.index.ntotal,
                count,
            )
            self.rebuild()
            return
        self.generation, self.next_seq = _int(meta, "generation"), next_seq
        self.epoch, self.checkpoint = _int(meta, "epoch"), checkpoint
        if self.index.needs_rebuild_for_add(self.index.ntotal):
            self.rebuild()  # a writer died between committing the rows that reach min_train and training

    def _read_checkpoint(self, checkpoint: Checkpoint) -> bool:
        path = self.folder / checkpoint.file
        if not path.is_file():
            logger.info("index checkpoint %s not on disk (interrupted write?); rebuilding", path.name)
            return False
        try:
            self.index.read(str(path))
        except (RuntimeError, ValueError, OSError) as exc:
            logger.warning("%s is unreadable (%s); rebuilding it from the stored vectors", path, exc)
            return False
        actual = content_fingerprint(self.index.ids())
        if actual != checkpoint.fingerprint:
            logger.warning("%s holds ids %s, not %s; rebuilding", path.name, actual, checkpoint.fingerprint)
            return False
        if self.index.needs_training and self.index.is_exact_fallback != (checkpoint.trained_on == 0):
            logger.warning("%s does not match its recorded training; rebuilding", path.name)
            return False
        return True

    # -- writing (writer lock held, state current) --------------------------------------------------------------
    def committed(self, generation: int, next_seq: int, added=None, removed=None) -> str | None:
        """Apply a write this process just committed (`added` = (seqs, raw vectors), `removed` = seqs); returns why
        the index is not checkpointed when a rebuild it needed could not be (None otherwise)."""
        seqs, raw = added if added is not None else (np.zeros(0, np.int64), None)
        dead = removed if removed is not None else np.zeros(0, np.int64)
        if self.index.needs_rebuild_for_add(self.index.ntotal + len(seqs) - len(dead)):
            return self.rebuild()  # enough vectors to train the real index: train it on every stored vector
        self._apply(seqs, raw, dead)
        self.generation, self.next_seq = generation, next_seq
        return None

    def tail_rows(self) -> int:
        """Rows written since the checkpoint: adds after it plus deletions logged after it (not the tombstones an
        index that cannot remove keeps in the checkpoint itself)."""
        if self.checkpoint is None:
            return self.next_seq + self.store.deleted_count()
        return (self.next_seq - self.checkpoint.next_seq) + self.store.deleted_count(self.checkpoint.generation)

    def wants_checkpoint(self) -> bool:
        if self.unsaved_training is not None:
            return True  # a rebuild the disk refused earlier: try again
        return self.tail_rows() >= max(CHECKPOINT_MIN_ROWS, CHECKPOINT_FRACTION * self.index.ntotal)

    def training_is_stale(self) -> bool:
        return self.trained_on > 0 and self.index.ntotal > RETRAIN_GROWTH * self.trained_on

    def compact(self) -> str | None:
        """Write a checkpoint with the tombstones removed; rebuild first (an index that cannot remove, past
        PURGE_REBUILD_FRACTION tombstones) or retrain (a trained index past RETRAIN_GROWTH× its training set).
        A checkpoint the disk refuses raises; a rebuild's returns the reason (see `rebuild`)."""
        dead = len(self.index.tombstones)
        if self.training_is_stale():
            logger.info("retraining %s: %d vectors, trained on %d", self.factory, self.index.ntotal, self.trained_on)
            return self.rebuild()
        if not self.index.purge_tombstones() and dead > PURGE_REBUILD_FRACTION * self.index.physical_total:
            return self.rebuild()
        return self.write_checkpoint(structural=self.unsaved_training is not None, trained_on=self.unsaved_training)

    def rebuild(self) -> str | None:
        """Build the index from every stored vector (training it when it needs training) and checkpoint it. The
        index is current either way: when the checkpoint cannot be written (a read-only folder, a full or failing
        disk) it serves from memory and the next write tries again; the reason is returned (None: written, or
        read-only)."""
        from tqdm.auto import tqdm

        self.generation = self.epoch = -1  # until the checkpoint is recorded
        with self.store.snapshot() as db:  # one state, also where no writer lock can be taken (read-only)
            meta = self.store.meta(db)
            seqs, raw = self.store.vectors_since(0, db)
            next_seq = self.store.next_seq(db)
        number = _int(meta, "transform")
        dim, self.project = self.projection(number)
        self.transform_number = number
        index = VectorIndex(self.factory, dim)
        with tqdm(total=1, desc="Building index", disable=None if len(seqs) > 100_000 else True) as bar:
            index.rebuild(seqs, self.project(raw) if len(raw) else np.zeros((0, dim), np.float32))
            bar.update()
        self.index = index
        self.next_seq = next_seq
        trained = len(seqs) if index.needs_training and not index.is_exact_fallback else 0
        reason = None
        if not self.read_only:
            try:
                return self.write_checkpoint(structural=True, trained_on=trained)
            except PERSIST_ERRORS as exc:
                self.persist_error, reason = exc, f"{type(exc).__name__}: {exc}"
                logger.warning(
                    "%s: the rebuilt index serves from memory, its checkpoint not written (%s)", self.folder, reason
                )
        # what the index holds is the store as read above: replaying the log from there keeps it current
        self.generation, self.epoch = _int(meta, "generation"), _int(meta, "epoch")
        self.checkpoint = Checkpoint.from_meta(meta)
        self.unsaved_training = trained
        return reason

    def write_checkpoint(self, structural: bool, trained_on: int | None = None) -> str | None:
        """Write the in-memory index to a new file, record it in the store (pruning the deletions it no longer
        needs) and delete the older files. `structural`: the index is not what replaying the log gives (a rebuild):
        bump the generation and the epoch so that every other process reloads it. Raises when the checkpoint is not
        recorded; returns why the tidying after it failed (the manifest, the older files), None when it did not."""
        ids = self.index.ids()
        fingerprint = content_fingerprint(ids)
        generation = self.store.generation
        name = f"index.g{generation}.{fingerprint}.faiss"
        with atomic_writer(self.folder / name) as tmp:
            self.index.write(str(tmp))
        if trained_on is None:
            trained_on = self.checkpoint.trained_on if self.checkpoint is not None else 0
        with self.store.transaction() as db:
            meta = self.store.meta(db)
            epoch = _int(meta, "epoch")
            if structural:
                generation = DocumentStore.bump_generation(db)
                epoch += 1
                DocumentStore.set_meta(db, "epoch", str(epoch))
            checkpoint = Checkpoint(
                name, self.next_seq, fingerprint, epoch, generation, trained_on, self.transform_number
            )
            DocumentStore.set_meta(db, "checkpoint", json.dumps(asdict(checkpoint)))
            # the tombstones this file still holds stay logged (also those this process applied from a delta whose
            # log row another process's checkpoint has since pruned); every other logged deletion is in the file
            DocumentStore.log_deletions(db, self.index.tombstones, generation, replace=False)
            DocumentStore.prune_deletions(db, self.index.tombstones)
            DocumentStore.set_meta(db, "log_floor", str(generation))
        self.checkpoint, self.generation, self.epoch = checkpoint, generation, epoch
        self.unsaved_training = self.persist_error = None
        try:  # the checkpoint is recorded: what follows is tidying, which the next open finishes
            self.on_checkpoint()
            for old in self.folder.glob("index.g*.faiss"):
                if old.name != name:
                    old.unlink(missing_ok=True)
        except OSError as exc:
            logger.warning("%s recorded; tidying after it failed (%s)", name, exc)
            return f"{name} recorded, tidying after it failed: {type(exc).__name__}: {exc}"
        return None

    def remove_stray_files(self) -> None:
        """Index files no checkpoint names (left by a writer killed between writing one and recording it)."""
        keep = self.checkpoint.file if self.checkpoint is not None else None
        for path in self.folder.glob("index.g*.faiss"):
            if path.name != keep:
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:
                    logger.warning("cannot remove %s (%s)", path, exc)
