"""`Collection`: a directory holding a corpus ready to search — encoder settings, transform, SQLite documents with
their raw vectors, and a FAISS index — where every add/delete is one transaction that survives `kill -9`.

Layout::

    collection.json        manifest: format version, encoder (model, pooling, max_length), transform, index, dims
    documents.sqlite       id, text, metadata JSON, raw float32 vector (the source of truth, and the log)
    transform/t<N>/        the fitted Whitening (npz + JSON), N recorded in SQLite
    index.g<G>.<F>.faiss   the FAISS checkpoint the store names (ids with content fingerprint F); see index_state.py
    collection.lock        the cross-process writer lock (see locking.py)

Concurrency contract: any number of processes may open one collection. Every change takes the writer lock, commits
one SQLite transaction (seq numbers come from a persistent counter and are never reused) and applies the same rows to
its own in-memory index: a write costs the batch, not the collection. Every read (search, info) first compares the
store's generation with the one its in-memory index reflects and, when another process has committed since, replays
just that delta from SQLite (index_state.py). The index file is rewritten only at a checkpoint.

Failure contract: a write that raises stored nothing (the SQLite transaction rolled back; a disk that refused it is a
StorageError). Once its transaction has committed, a write returns normally whatever happens to the index step after
it (applying it in memory, writing a checkpoint): the documents are stored and searchable (the index catches up from
the store on the next read), and `last_write_warning` says what failed. A folder that cannot be written opens
read-only: search, info, get and list work (the index is rebuilt in memory when it must be) and every write raises
ReadOnlyCollectionError.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semspace._io import read_artifact_json, write_artifact_json
from semspace.encode.encoder import Encoder, validate_texts
from semspace.encode.pooling import with_current_pooling_name
from semspace.errors import (
    ArtifactError,
    CollectionError,
    DocumentNotFoundError,
    DuplicateIdError,
    InvalidInputError,
    InvalidParameterError,
    ReadOnlyCollectionError,
    check_param,
)
from semspace.search.documents import (
    MAX_K,
    MAX_PAGE,
    MAX_QUERIES,
    WRITE_WARNING,
    check_documents,
    make_result,
)
from semspace.search.index import VectorIndex, factory_for_precision
from semspace.search.index_state import IndexState
from semspace.search.locking import WriterLock
from semspace.search.query import dense_search
from semspace.search.results import DocumentPage, SearchResult
from semspace.search.store import DocumentStore
from semspace.transform.saved import SavedWhitening, read_saved_whitening

if TYPE_CHECKING:  # the transform layer (scikit-learn, SciPy) is imported only when a collection uses it
    from semspace.transform.tune import TuneResult
    from semspace.transform.whitening import Whitening

logger = logging.getLogger(__name__)

FORMAT = "semspace.collection"
MANIFEST = "collection.json"
STORE = "documents.sqlite"
_ADD_CHUNK = 1024
SEARCH_MODES = ("dense", "bm25", "hybrid")


class Collection:
    """Create with :meth:`create`, reopen with :meth:`open`. Thread-safe: writes are serialised by a lock."""

    def __init__(
        self,
        path: Path,
        manifest: dict,
        store: DocumentStore,
        encoder: Encoder | None,
        lock_timeout: float = 60.0,
        encoder_loader: Callable[[dict], Encoder] | None = None,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self._store = store
        self._encoder = encoder
        self._encoder_loader = encoder_loader or Encoder.from_spec
        self._lock = threading.RLock()
        self._writer = WriterLock(path, lock_timeout, read_only=store.read_only)
        self._warnings = threading.local()  # per thread: the warning of its last write (see last_write_warning)
        # The transform's header is read now (dimension, parameters); the Whitening itself, which needs
        # scikit-learn, is loaded on first use, so info/delete on a whitened collection start fast.
        self._transform: Whitening | None = None
        self._transform_number = int(self._store.get_meta("transform", "0") or 0)
        self._saved_transform = self._read_saved_transform(self._transform_number)
        self._state = IndexState(
            path, manifest["index"], store, self._use_transform, self._write_manifest, read_only=store.read_only
        )
        self._bm25 = None  # hybrid.BM25Index of some generation, built on the first BM25/hybrid search
        with self._lock, self._writer.hold():
            if not self.read_only:
                self._remove_orphan_temp_files()
            self._state.reload()
            if not self.read_only:
                self._state.remove_stray_files()

    # -- construction ----------------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        encoder: Encoder | str | None = None,
        transform: Whitening | None = None,
        index: str = "Flat",
        pooling: str = "default",
        max_length: int | None = None,
        precision: str = "float32",
    ) -> Collection:
        """New empty collection at `path` (which must not exist or be empty).

        `index`: a FAISS factory string. `precision`: how the index keeps each vector — ``float32``; ``int8``
        (FAISS's 8-bit scalar quantizer: 4x smaller, trained once 256 vectors are stored); ``binary`` (sign bits
        in IndexBinaryFlat, Hamming search with float rescoring of the top candidates: 32x smaller; with
        ``Flat`` only) — see :func:`~semspace.search.index.factory_for_precision`. The raw float32 vectors stay in
        the store either way."""
        path = Path(path)
        index = factory_for_precision(index, precision)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise CollectionError(f"{path} already exists and is not an empty folder")
        enc = encoder if isinstance(encoder, Encoder) else Encoder(encoder, pooling=pooling, max_length=max_length)
        if transform is not None:
            if not hasattr(transform, "kernel_"):
                raise InvalidInputError("transform must be a fitted Whitening (or use fit_whitening() later)")
            if transform.n_features_in_ != enc.dim:
                raise InvalidInputError(
                    f"transform expects {transform.n_features_in_}-d vectors, encoder gives {enc.dim}"
                )
        # Refuse a factory FAISS cannot carry end to end before anything is written.
        VectorIndex(index, transform.n_components_ if transform is not None else enc.dim).check_end_to_end()
        path.mkdir(parents=True, exist_ok=True)
        manifest = {
            "encoder": enc.spec,
            "index": index,
            "precision": precision,
            "raw_dim": enc.dim,
        }
        store = DocumentStore(path / STORE, enc.dim, create=True)
        with store.transaction() as db:
            DocumentStore.set_meta(db, "transform", "0")
            DocumentStore.set_meta(db, "next_seq", "0")
            DocumentStore.bump_generation(db)
        write_artifact_json(path / MANIFEST, FORMAT, {**manifest, "transform": None, "dim": enc.dim})
        collection = cls(path, manifest, store, enc)
        if transform is not None:
            collection.set_transform(transform)
        return collection

    @classmethod
    def open(
        cls,
        path: str | Path,
        encoder: Encoder | None = None,
        lock_timeout: float = 60.0,
        encoder_loader: Callable[[dict], Encoder] | None = None,
        read_only: bool | None = None,
    ) -> Collection:
        """Open an existing collection; the encoder is loaded lazily from the manifest unless one is given (by
        `encoder_loader(spec)` when given, e.g. a pool that shares one encoder between collections, else
        :meth:`Encoder.from_spec`).

        A store that does not match its manifest (not a SQLite store, tables missing, generation behind the
        manifest's) raises CollectionError and nothing is changed or deleted. `lock_timeout` bounds every wait for
        another process's write (CollectionError past it). `read_only` (default: when the folder or its store
        cannot be written, e.g. a read-only mount) opens it for reading only: nothing in the folder is written and
        every write raises ReadOnlyCollectionError.
        """
        path = Path(path)
        if not (path / MANIFEST).is_file() or not (path / STORE).is_file():
            raise CollectionError(f"{path} is not a semspace collection (missing {MANIFEST} or {STORE})")
        if read_only is None:
            read_only = not (os.access(path, os.W_OK) and os.access(path / STORE, os.W_OK))
        manifest = read_artifact_json(path / MANIFEST, FORMAT, error=CollectionError)
        try:
            raw_dim = int(manifest["raw_dim"])
            manifest["encoder"]["model"], manifest["index"]
            manifest_generation = int(manifest.get("generation", 0))
        except (ValueError, KeyError, TypeError) as exc:
            raise CollectionError(f"{path / MANIFEST}: corrupt manifest ({type(exc).__name__}: {exc})") from None
        store = DocumentStore(path / STORE, raw_dim, timeout=lock_timeout, read_only=read_only)
        try:
            generation = store.get_meta("generation")
        except Exception as exc:
            store.close()
            raise CollectionError(f"{path / STORE}: corrupt document store ({exc})") from None
        if generation is None or int(generation) < manifest_generation:
            store.close()
            found = "no generation" if generation is None else f"generation {generation}"
            raise CollectionError(
                f"{path / STORE} does not match {MANIFEST}: the store has {found}, the manifest records generation "
                f"{manifest_generation} (restored from an older copy or replaced?); nothing was changed"
            )
        if encoder is not None and encoder.dim != raw_dim:
            store.close()
            raise InvalidInputError(f"encoder gives {encoder.dim}-d vectors, the collection stores {raw_dim}-d")
        try:
            return cls(path, manifest, store, encoder, lock_timeout=lock_timeout, encoder_loader=encoder_loader)
        except BaseException:
            store.close()
            raise

    def close(self) -> None:
        self._store.close()
        self._writer.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- properties ------------------------------------------------------------------------------------------
    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            encoder = self._encoder_loader(self.manifest["encoder"])
            if encoder.dim != self.raw_dim:
                raise InvalidInputError(
                    f"encoder gives {encoder.dim}-d vectors, the collection stores {self.raw_dim}-d"
                )
            self._encoder = encoder
        return self._encoder

    @property
    def raw_dim(self) -> int:
        return int(self.manifest["raw_dim"])

    @property
    def dim(self) -> int:
        """Dimension of the indexed vectors (after the transform)."""
        return self._saved_transform.n_components if self._saved_transform is not None else self.raw_dim

    def __len__(self) -> int:
        return len(self._store)

    @property
    def index(self) -> VectorIndex:
        """The in-memory FAISS index (as of the last refresh)."""
        return self._state.index

    @property
    def store(self) -> DocumentStore:
        """The SQLite document store (hybrid search and export read it; writes go through the collection)."""
        return self._store

    @property
    def generation(self) -> int:
        """The store's generation: bumped by every committed change, by any process."""
        return self._store.generation

    @property
    def read_only(self) -> bool:
        """Opened for reading only (see `open`): every write raises ReadOnlyCollectionError."""
        return self._store.read_only

    @property
    def last_write_warning(self) -> str | None:
        """None when the last write of the calling thread went through whole (or raised); a message when it is
        stored but its index step failed (a full or failing disk, say): the documents are stored and searchable, and
        the index catches up from the store — do not retry the write (an add would be a DuplicateIdError)."""
        return getattr(self._warnings, "message", None)

    def _begin_write(self, what: str) -> None:
        """Forget the previous write's warning; refuse the write on a read-only collection, before any work."""
        self._set_warning(None)
        if self.read_only:
            raise ReadOnlyCollectionError(
                f"read-only collection: writes are refused ({what} on {self.path}, opened read-only because its folder "
                "is not writable)"
            )

    def _set_warning(self, message: str | None) -> None:
        self._warnings.message = message
        WRITE_WARNING.set(message)

    def _warn_stored(self, generation: int, reason: str) -> None:
        message = (
            f"the write is stored (generation {generation}) but its index step failed ({reason}); it is searchable "
            "and the index will catch up from the store: do not retry it"
        )
        logger.warning("%s: %s", self.path, message)
        self._set_warning(message)

    def info(self) -> dict[str, Any]:
        """Counts, settings, the checkpoint's size per vector, and the state of the index (tail, tombstones,
        training)."""
        with self._lock:
            self.refresh()
            t = self._saved_transform
            state, index = self._state, self._state.index
            checkpoint = state.checkpoint
            file = self.path / checkpoint.file if checkpoint is not None else None
            index_bytes = file.stat().st_size if file is not None and file.is_file() else 0
            info = {
                "name": self.path.name,
                "path": str(self.path),
                "count": len(self),
                "encoder": with_current_pooling_name(self.manifest["encoder"]),
                "static_model": _static_model_info(self.manifest["encoder"]),
                "index": index.factory,
                "precision": self.manifest.get("precision", "float32"),
                "raw_dim": self.raw_dim,
                "dim": self.dim,
                "index_vectors": index.ntotal,
                "ivf_exact_fallback": index.is_exact_fallback,
                "transform": None if t is None else {**t.params, "n_samples_seen": t.n_samples_seen},
                "generation": state.generation,
                "index_bytes": index_bytes,
                "bytes_per_vector": round(index_bytes / index.physical_total, 1) if index.physical_total else None,
                "tail_rows": state.tail_rows(),
                "tombstones": len(index.tombstones),
                "trained_on": state.trained_on,
                "training_stale": state.training_is_stale(),
                "read_only": self.read_only,
            }
        return info

    # -- transform -------------------------------------------------------------------------------------------
    def _transform_dir(self, number: int) -> Path:
        return self.path / "transform" / f"t{number}"

    def _read_saved_transform(self, number: int) -> SavedWhitening | None:
        if number == 0:
            return None
        try:
            return read_saved_whitening(self._transform_dir(number))
        except ArtifactError as exc:
            raise CollectionError(f"{self.path}: transform t{number} is missing or corrupt ({exc})") from None

    @property
    def transform(self) -> Whitening | None:
        """The fitted Whitening applied to raw vectors before indexing (None: raw vectors are indexed)."""
        if self._transform is None and self._transform_number:
            from semspace.transform.whitening import Whitening

            try:
                self._transform = Whitening.load(self._transform_dir(self._transform_number))
            except ArtifactError as exc:
                raise CollectionError(
                    f"{self.path}: transform t{self._transform_number} is missing or corrupt ({exc})"
                ) from None
        return self._transform

    def _project(self, raw: np.ndarray) -> np.ndarray:
        return raw if self.transform is None else self.transform.transform(raw)

    def _use_transform(self, number: int):
        """Switch to transform `number` (as the store records it); (indexed dim, projection) for the index."""
        if number != self._transform_number:
            self._transform, self._transform_number = None, number
            self._saved_transform = self._read_saved_transform(number)
        return self.dim, self._project

    def set_transform(self, transform: Whitening | None) -> None:
        """Replace the transform and re-project every stored raw vector (no re-encoding)."""
        if transform is not None and transform.n_features_in_ != self.raw_dim:
            raise InvalidInputError(f"transform expects {transform.n_features_in_}-d, collection has {self.raw_dim}-d")
        self._begin_write("set_transform")
        with self._lock, self._writer.hold():
            self._sync_locked()
            number = 0
            if transform is not None:
                number = int(self._store.get_meta("transform", "0") or 0) + 1
                shutil.rmtree(self._transform_dir(number), ignore_errors=True)  # left by an interrupted change
                transform.save(self._transform_dir(number))  # new folder first: the old one stays valid
            with self._store.transaction() as db:
                DocumentStore.set_meta(db, "transform", str(number))
                generation = DocumentStore.bump_generation(db)
            self._use_transform(number)
            self._transform = transform
            try:
                reason = self._state.rebuild()
            except Exception as exc:  # committed: the next read rebuilds
                self._state.generation, reason = -1, f"{type(exc).__name__}: {exc}"
            if reason is not None:
                self._warn_stored(generation, reason)
            for old in (self.path / "transform").glob("t*") if (self.path / "transform").exists() else []:
                if old.name != f"t{number}":
                    shutil.rmtree(old, ignore_errors=True)

    def fit_whitening(
        self,
        texts: Sequence[str] | None = None,
        sample_size: int = 10_000,
        dev_pairs: tuple[Sequence[str], Sequence[str], Sequence[float]] | None = None,
        n_components: int | None = None,
        beta: float = 1.0,
        gamma: float = 1.0,
        seed: int = 0,
        tune_rule: str = "cv",
    ) -> Whitening | TuneResult:
        """Fit whitening on `texts` (encoded) or on a sample of the stored raw vectors, or tune (β, γ, k) when
        labelled `dev_pairs` (s1, s2, scores) are given (`tune_rule`: a :func:`~semspace.transform.tune_whitening`
        rule); then re-project the collection. Returns the transform (or the TuneResult). A tuning that keeps raw
        leaves the collection untransformed (the raw vectors, exactly)."""
        from semspace.transform.tune import tune_whitening
        from semspace.transform.whitening import Whitening

        self._begin_write("fit_whitening")  # refused before any fitting on a read-only collection
        if texts is not None:
            fit_vectors = self.encoder.encode(validate_texts(texts))
        else:
            _, raw = self._store.all_vectors()
            if len(raw) == 0:
                raise InvalidInputError("The collection is empty: add documents or pass texts= to fit on.")
            if len(raw) > sample_size:
                raw = raw[np.sort(np.random.default_rng(seed).choice(len(raw), sample_size, replace=False))]
            fit_vectors = raw
        if dev_pairs is not None:
            s1, s2, scores = dev_pairs
            a = self.encoder.encode(validate_texts(s1))
            b = self.encoder.encode(validate_texts(s2))
            result = tune_whitening(fit_vectors, a, b, np.asarray(scores, dtype=np.float64), rule=tune_rule, seed=seed)
            self.set_transform(result.whitening)
            return result
        whitening = Whitening(n_components=n_components, beta=beta, gamma=gamma).fit(fit_vectors)
        self.set_transform(whitening)
        return whitening

    # -- index state -----------------------------------------------------------------------------------------
    def _write_manifest(self) -> None:
        write_artifact_json(
            self.path / MANIFEST,
            FORMAT,
            {
                **self.manifest,
                "transform": None if self._saved_transform is None else self._saved_transform.params,
                "dim": self.dim,
                "generation": self._state.generation,
            },
        )

    def _remove_orphan_temp_files(self) -> None:
        """Delete temp files of `atomic_writer` (".<name>.<random>.tmp") that a killed writer left in the folder.
        Called with the writer lock held: every temp file in the folder is written under it, so none is live."""
        folders = [self.path, *((self.path / "transform").glob("t*") if (self.path / "transform").is_dir() else [])]
        for folder in folders:
            for tmp in folder.glob(".*.tmp"):
                try:
                    tmp.unlink()
                    logger.info("removed %s, left by an interrupted write", tmp)
                except OSError:
                    pass

    def _sync_locked(self) -> None:
        """Make the in-memory index reflect the store's current generation (writer lock held)."""
        self._state.catch_up(self._writer.hold)

    def refresh(self) -> None:
        """See the writes other processes committed since the last call: one SQLite read when there are none,
        the delta when there are (no lock, no file read). Called by every search and `info`."""
        with self._lock:
            if not self._state.is_current():
                self._state.catch_up(self._writer.hold)

    def _committed(self, generation: int, next_seq: int, added=None, removed=None) -> None:
        """Apply a write just committed (writer lock held) to the in-memory index, and checkpoint when the tail is
        long. The documents are stored and will be searchable whatever happens here: a failure (in memory, or a
        checkpoint the disk refuses) is logged and left in `last_write_warning`, and the index catches up from the
        store on the next read, instead of reporting a committed write as failed (a retry would duplicate it)."""
        try:
            reason = self._state.committed(generation, next_seq, added=added, removed=removed)
            if reason is None and self._state.wants_checkpoint():
                reason = self._state.compact()
        except Exception as exc:
            self._state.generation = -1
            reason = f"{type(exc).__name__}: {exc}"
        if reason is not None:
            self._warn_stored(generation, reason)

    def compact(self) -> dict[str, Any]:
        """Write an index checkpoint now: tombstones removed (or the graph rebuilt), a trained index retrained when
        the collection has grown past RETRAIN_GROWTH× its training set. Returns `info()` after it; a checkpoint the
        disk refuses raises (OSError, StorageError) and the collection serves on from memory."""
        self._begin_write("compact")
        with self._lock, self._writer.hold():
            self._sync_locked()
            if self._state.compact() is not None and self._state.persist_error is not None:
                raise self._state.persist_error
        return self.info()

    # -- documents -------------------------------------------------------------------------------------------
    def _prepare(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None,
        metadata: Sequence[dict] | None,
        vectors: np.ndarray | None,
        show_progress_bar: bool | None,
        what: str,
    ) -> tuple[list[str], list[str], list[str], np.ndarray]:
        """Validated (texts, ids, metadata as JSON, raw vectors): encoded here, outside every lock, unless given."""
        texts, ids, metadata = check_documents(texts, ids, metadata, what)
        n = len(texts)
        if n == 0:
            return [], [], [], np.zeros((0, self.raw_dim), np.float32)
        if vectors is None:
            raw = self.encoder.encode(texts, show_progress_bar=show_progress_bar)
        else:
            from semspace.transform.stats import as_vectors

            raw = as_vectors(vectors, self.raw_dim, "vectors").astype(np.float32)
            if len(raw) != n:
                raise InvalidInputError(f"{len(raw)} vectors for {n} texts.")
        return texts, ids, metadata, raw

    def add(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        metadata: Sequence[dict] | None = None,
        vectors: np.ndarray | None = None,
        show_progress_bar: bool | None = None,
    ) -> list[str]:
        """Add documents (one transaction); returns their ids. `vectors` (raw, pre-encoded) skips encoding.
        An id already in the collection raises DuplicateIdError and nothing is added (see `upsert`). Returned: it is
        stored, even when `last_write_warning` says its index step failed."""
        self._begin_write("add")
        if ids is not None:
            taken = self._store.existing_ids(list(ids))  # fail fast before encoding; checked again when writing
            if taken:
                raise DuplicateIdError(
                    f"Id(s) already in the collection: {', '.join(map(repr, taken[:5]))}; use upsert to replace them."
                )
        texts, ids, metadata, raw = self._prepare(texts, ids, metadata, vectors, show_progress_bar, "add")
        if not ids:
            return []
        with self._lock, self._writer.hold():
            self._sync_locked()
            with self._store.transaction() as db:
                taken = self._store.existing_ids(ids, db)
                if taken:
                    raise DuplicateIdError(
                        f"Id(s) already in the collection: {', '.join(map(repr, taken[:5]))}; "
                        "use upsert to replace them."
                    )
                seqs = self._insert(db, ids, texts, metadata, raw)
                generation = DocumentStore.bump_generation(db)
                next_seq = self._store.next_seq(db)
            self._committed(generation, next_seq, added=(seqs, raw))
        return ids

    def upsert(
        self,
        texts: Sequence[str],
        ids: Sequence[str],
        metadata: Sequence[dict] | None = None,
        vectors: np.ndarray | None = None,
        show_progress_bar: bool | None = None,
    ) -> list[str]:
        """Add or replace documents by id, in one transaction: an existing id gets the new text, metadata and
        vector (and a new seq); the others are added. Returns the ids."""
        if ids is None:
            raise InvalidInputError("upsert needs ids (the documents to add or replace).")
        self._begin_write("upsert")
        texts, ids, metadata, raw = self._prepare(texts, ids, metadata, vectors, show_progress_bar, "upsert")
        if not ids:
            return []
        with self._lock, self._writer.hold():
            self._sync_locked()
            with self._store.transaction() as db:
                old = np.array(sorted(self._store.seqs_of(ids, db).values()), dtype=np.int64)
                generation = DocumentStore.bump_generation(db)
                DocumentStore.delete(db, old, generation)
                seqs = self._insert(db, ids, texts, metadata, raw)
                next_seq = self._store.next_seq(db)
            self._committed(generation, next_seq, added=(seqs, raw), removed=old)
        return ids

    def _insert(self, db, ids: list[str], texts: list[str], metadata: list[str], raw: np.ndarray) -> np.ndarray:
        from tqdm.auto import tqdm

        n = len(ids)
        seqs = DocumentStore.allocate_seqs(db, n)
        for lo in tqdm(
            range(0, n, _ADD_CHUNK), desc="Storing", unit="chunk", disable=None if n > 20 * _ADD_CHUNK else True
        ):
            hi = lo + _ADD_CHUNK
            DocumentStore.insert(db, seqs[lo:hi], ids[lo:hi], texts[lo:hi], metadata[lo:hi], raw[lo:hi])
        return seqs

    def delete(self, ids: Sequence[str]) -> int:
        """Remove documents (vectors included) by id; an unknown id raises and nothing is removed."""
        ids = list(ids)
        self._begin_write("delete")
        with self._lock, self._writer.hold():
            self._sync_locked()
            with self._store.transaction() as db:
                found = self._store.seqs_of(ids, db)
                missing = [i for i in ids if i not in found]
                if missing:
                    raise DocumentNotFoundError(f"Unknown document id(s): {', '.join(map(repr, missing[:5]))}")
                seqs = np.array(sorted(set(found.values())), dtype=np.int64)
                generation = DocumentStore.bump_generation(db)
                DocumentStore.delete(db, seqs, generation)
                next_seq = self._store.next_seq(db)
            self._committed(generation, next_seq, removed=seqs)
        return len(seqs)

    def get(self, ids: Sequence[str]) -> list[dict]:
        """Documents by id (id, text, metadata), in order; an unknown id raises DocumentNotFoundError."""
        return self._store.get(list(ids))

    def get_existing(self, ids: Sequence[str]) -> list[dict]:
        """Like `get`, silently skipping ids that are not (or no longer) in the collection."""
        found = self._store.seqs_of(list(ids))
        return self._store.get([i for i in ids if i in found])

    def count(self, where: dict | None = None) -> int:
        """Number of documents, or of those matching a metadata filter."""
        return self._store.count(where)

    def list_documents(
        self,
        limit: int = 100,
        offset: int = 0,
        where: dict | None = None,
        cursor: str | None = None,
        max_bytes: int | None = None,
    ) -> DocumentPage:
        """One page of documents in insertion order (optionally filtered). Page with `offset`, or — stable while
        others write — with the `next_cursor` of the previous page.

        `max_bytes`: the page stops early (after at least one document) once its texts and metadata reach this many
        bytes; `next_cursor` then goes on from where it stopped (a service's bound on one response)."""
        check_param(
            "limit",
            "Collection.list_documents",
            isinstance(limit, int) and 1 <= limit <= MAX_PAGE,
            f"an int in [1, {MAX_PAGE}]",
            limit,
        )
        check_param(
            "offset",
            "Collection.list_documents",
            isinstance(offset, int) and 0 <= offset < 2**63,  # SQLite integers are 64-bit
            "an int in [0, 2**63)",
            offset,
        )
        after = None
        if cursor is not None:
            try:
                after = int(cursor)
            except (TypeError, ValueError):
                after = None
            if after is None or not 0 <= after < 2**63:
                raise InvalidParameterError(f"Invalid cursor {cursor!r} (use the next_cursor of a page).") from None
        rows = self._store.page(limit + 1, offset, where, after)
        more = len(rows) > limit
        rows = rows[:limit]
        if max_bytes is not None:
            kept = _within_bytes(rows, max_bytes)
            more = more or kept < len(rows)
            rows = rows[:kept]
        return DocumentPage(
            documents=[{"id": i, "text": t, "metadata": m} for _, i, t, m in rows],
            next_cursor=str(rows[-1][0]) if more and rows else None,
        )

    def iter_documents(self) -> Iterator[tuple[str, str, dict, np.ndarray]]:
        """(id, text, metadata, raw vector) of every document in insertion order, read in one snapshot."""
        return self._store.iter_documents()

    def export(self) -> tuple[list[str], list[str], np.ndarray]:
        """(ids, texts, raw vectors) of every document, in insertion order."""
        with self._lock:
            seqs, raw = self._store.all_vectors()
            docs = self._store.by_seq(seqs.tolist())
        return [docs[int(s)][0] for s in seqs], [docs[int(s)][1] for s in seqs], raw

    def export_jsonl(self, path: str | Path, vectors: bool = False) -> int:
        """Write every document as one JSON line {"id", "text", "metadata"[, "vector"]}; returns the count.
        With `vectors`, the raw float32 vectors are written exactly (import gives back the same bits)."""
        from semspace.search.portable import export_jsonl

        return export_jsonl(self.iter_documents(), path, vectors=vectors)

    def import_jsonl(self, path: str | Path, upsert: bool = False) -> int:
        """Add (or with `upsert`, add or replace) the documents of a JSONL file written by `export_jsonl`, in one
        transaction; lines with "vector" are not re-encoded. Returns the count."""
        from semspace.search.portable import read_import

        texts, ids, metadata, vectors = read_import(path, self.raw_dim, upsert)
        (self.upsert if upsert else self.add)(texts, ids=ids, metadata=metadata, vectors=vectors)
        return len(texts)

    # -- search ----------------------------------------------------------------------------------------------
    def search(
        self,
        query_or_queries: str | Sequence[str],
        k: int = 10,
        where: dict | None = None,
        mode: str = "dense",
        fusion: str = "rrf",
        alpha: float = 0.5,
    ) -> SearchResult | list[SearchResult]:
        """Top-k for one query (→ SearchResult) or a list (→ list of SearchResult), optionally only among the
        documents whose metadata match `where` (see filters.py; k results come back whenever k match).

        `mode`: "dense" (cosine over the index), "bm25" (lexical, bm25s) or "hybrid": both lists fused by
        reciprocal rank (`fusion="rrf"`, Cormack et al. 2009, k=60) or by a weighted sum of min-max normalised
        scores (`fusion="weighted"`, `alpha` × dense + (1 − alpha) × BM25).
        """
        single = isinstance(query_or_queries, str)
        queries = validate_texts([query_or_queries] if single else query_or_queries)
        check_param("mode", "Collection.search", mode in SEARCH_MODES, f"one of {SEARCH_MODES}", mode)
        self._check_k_and_queries(k, len(queries))
        if not queries:
            return []
        if mode == "dense":
            results = self.search_vectors(self.encoder.encode(queries), k, where=where)
        else:
            from semspace.search.hybrid import current_bm25, hybrid_search

            self._bm25 = current_bm25(self._store, self._bm25)

            def dense(n: int) -> tuple[np.ndarray, np.ndarray]:
                return self._search_seqs(self.encoder.encode(queries), n, where)

            rows = hybrid_search(self._bm25, queries, k, dense, self._store, where, mode, fusion, alpha)
            docs = self._store.by_seq(sorted({int(s) for _, seqs in rows for s in seqs}))
            results = [make_result(scores, seqs, docs) for scores, seqs in rows]
        return results[0] if single else results

    def _check_k_and_queries(self, k: int, n_queries: int) -> None:
        check_param(
            "k",
            "Collection.search",
            isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= MAX_K,
            f"an int in [1, {MAX_K}]",
            k,
        )
        if n_queries > MAX_QUERIES:
            raise InvalidInputError(f"{n_queries} queries in one request; at most {MAX_QUERIES}.")

    def search_vectors(self, raw_queries: np.ndarray, k: int = 10, where: dict | None = None) -> list[SearchResult]:
        """Search with raw (untransformed) query vectors of the encoder's dimension."""
        from semspace.transform.stats import as_vectors

        raw = as_vectors(raw_queries, self.raw_dim, "query vectors")
        self._check_k_and_queries(k, len(raw))
        scores, seqs = self._search_seqs(raw, k, where)
        docs = self._store.by_seq(np.unique(seqs[seqs >= 0]).tolist())
        return [make_result(row_scores, row_seqs, docs) for row_scores, row_seqs in zip(scores, seqs, strict=True)]

    def _search_seqs(self, raw: np.ndarray, k: int, where: dict | None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, seqs), each (n, ≤k), of the dense search, −1 padded."""
        with self._lock:
            self.refresh()
            return dense_search(self.index, self._store, self._project, self._project(raw), k, where)


def _within_bytes(rows: list[tuple[int, str, str, dict]], max_bytes: int) -> int:
    """How many of the page's (seq, id, text, metadata) rows fit in `max_bytes` of id, text and metadata (≥ 1)."""
    size = 0
    for n, (_, doc_id, text, meta) in enumerate(rows):
        size += len(doc_id) + len(text.encode("utf-8", "surrogatepass")) + 64
        if meta:
            size += len(json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))
        if size > max_bytes and n > 0:
            return n
    return len(rows)


def _static_model_info(spec: dict[str, Any]) -> dict[str, Any] | None:
    """What a static encoder's folder says of itself (teacher, k, folded whitening), or None for a transformer."""
    from semspace.encode.static import is_static_folder, static_info

    model = spec.get("model")
    if not is_static_folder(model):
        return None
    info = static_info(model)
    return {"static": True, **{key: info[key] for key in ("teacher", "k", "dim", "whitening") if key in info}}
