"""`Catalog`: a folder of named collections, and the local half of the client API.

``Catalog(path)`` and :class:`semspace.client.Client` (``Client(url)``) have the same methods and return types —
``create_collection``, ``get_collection``, ``get_or_create_collection``, ``list_collections``,
``delete_collection`` — so code written against a folder runs against a server by changing one line (Chroma's
``PersistentClient(path)`` ≡ ``HttpClient(url)``, Qdrant's ``QdrantClient(path=…)`` ≡ ``QdrantClient(url)``).

Layout: ``<root>/<name>/`` is one :class:`~semspace.search.Collection`. A collection is created in a hidden temporary
folder and renamed into place, so a crash never leaves a half-made collection under its name; it is dropped by
renaming it to a hidden name first (readers see it gone at once) and then removing the files. Collections that use
the same encoder spec share one :class:`~semspace.encode.Encoder` (one model in memory, however many collections).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from semspace.encode.pooling import with_current_pooling_name
from semspace.errors import (
    CollectionError,
    CollectionExistsError,
    CollectionNotFoundError,
)
from semspace.search.collection import MANIFEST, Collection
from semspace.search.names import NAME_PATTERN, check_name, is_name

if TYPE_CHECKING:
    from semspace.encode import Encoder

logger = logging.getLogger(__name__)

__all__ = ["NAME_PATTERN", "Catalog", "EncoderPool", "check_name", "spec_key"]

_HIDDEN_PREFIX = "."  # work folders (a collection being made or dropped) are hidden, never a name


def spec_key(spec: dict) -> str:
    """The key under which collections share an encoder: model, pooling (by its current name: an old manifest's
    `last-avg` is `mean`), max_length and engine (none recorded: torch) as canonical JSON."""
    from semspace.encode.pooling import Pooling

    key = {k: spec.get(k) for k in ("model", "pooling", "max_length")} | {"backend": spec.get("backend", "torch")}
    if key["pooling"] is not None:
        key["pooling"] = Pooling.parse(key["pooling"]).value
    return json.dumps(key, sort_keys=True)


class EncoderPool:
    """One :class:`Encoder` per spec, made on first use and shared by every collection (and route) that uses it."""

    def __init__(self, backend: str | None = None) -> None:
        self.backend = backend
        self._encoders: dict[str, Encoder] = {}
        self._lock = threading.Lock()

    def add(self, encoder: Encoder) -> Encoder:
        """Register an already loaded encoder under its spec (the first one registered for a spec wins)."""
        if not hasattr(encoder, "spec"):  # a stand-in without a spec (tests' tiny encoders) is not shared
            return encoder
        with self._lock:
            return self._encoders.setdefault(self._key(encoder.spec), encoder)

    def _key(self, spec: dict) -> str:
        """`spec`'s key in this pool: with the pool's own backend, every spec runs that one."""
        return spec_key(spec if self.backend is None else spec | {"backend": self.backend})

    def get(self, spec: dict) -> Encoder:
        """The shared encoder of `spec`, loading it on first use."""
        key = self._key(spec)
        with self._lock:
            found = self._encoders.get(key)
        if found is not None:
            return found
        from semspace.encode import Encoder

        kwargs = {} if self.backend is None else {"backend": self.backend}
        encoder = Encoder.from_spec(spec, **kwargs)
        with self._lock:
            return self._encoders.setdefault(key, encoder)

    def known(self, spec: dict) -> bool:
        with self._lock:
            return self._key(spec) in self._encoders

    def __iter__(self):
        with self._lock:
            return iter(list(self._encoders.values()))


class Catalog:
    """A folder of named collections (made if missing). Thread-safe; any number of processes may share the folder.

    model: the model of new collections when :meth:`create_collection` names none (a name, folder or
    :class:`Encoder`; default: the bundled MiniLM).

    Example
    -------
    >>> import tempfile
    >>> catalog = Catalog(tempfile.mkdtemp())
    >>> catalog.list_collections()
    []
    """

    def __init__(
        self,
        path: str | os.PathLike,
        model: str | Encoder | None = None,
        *,
        encoders: EncoderPool | None = None,
        lock_timeout: float = 60.0,
    ) -> None:
        self.path = Path(path)
        self.model = model  # the model of a new collection when create_collection names none
        if self.path.exists() and not self.path.is_dir():
            raise CollectionError(f"{self.path} is not a folder")
        if (self.path / MANIFEST).is_file():
            raise CollectionError(
                f"{self.path} is a collection, not a folder of collections: open it with Collection.open, or use "
                "its parent folder as the catalog"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self.encoders = encoders if encoders is not None else EncoderPool()
        self.lock_timeout = lock_timeout
        self._open: dict[str, Collection] = {}
        self._lock = threading.RLock()

    # -- the client API --------------------------------------------------------------------------------------
    def list_collections(self) -> list[str]:
        """Names of the collections in the folder, sorted."""
        return sorted(
            p.name
            for p in self.path.iterdir()
            if not p.name.startswith(_HIDDEN_PREFIX) and is_name(p.name) and (p / MANIFEST).is_file()
        )

    def describe_collections(self) -> list[dict]:
        """Name, count, encoder, index and dim of every collection, read from each one's manifest and store without
        loading its index (a catalog of large collections lists fast); one dropped meanwhile is left out."""
        found = []
        for name in self.list_collections():
            try:
                found.append(self._summary(name))
            except (CollectionError, OSError, KeyError, ValueError):
                continue
        return found

    def create_collection(
        self,
        name: str,
        model: str | Encoder | None = None,
        *,
        index: str = "Flat",
        pooling: str = "default",
        max_length: int | None = None,
        precision: str = "float32",
        get_or_create: bool = False,
    ) -> Collection:
        """A new empty collection `name` (CollectionExistsError if there is one, unless `get_or_create`).

        `model`: a model name or folder, or a loaded :class:`Encoder` (default: the catalog's `model`, else the
        bundled MiniLM); an encoder of the same spec already in use by this catalog is shared, not loaded again.
        `index` and `precision` as for :meth:`Collection.create`."""
        check_name(name)
        model = self.model if model is None else model
        with self._lock:
            target = self.path / name
            if (target / MANIFEST).is_file():
                if get_or_create:
                    return self.get_collection(name)
                raise CollectionExistsError(f"A collection named {name!r} already exists.")
            encoder = self._encoder_for(model, pooling, max_length)
            temp = self.path / f"{_HIDDEN_PREFIX}creating-{name}-{uuid.uuid4().hex[:8]}"
            try:
                Collection.create(temp, encoder=encoder, index=index, precision=precision).close()
                try:
                    os.rename(temp, target)  # atomic; fails if another process made `name` meanwhile
                except OSError:
                    if (target / MANIFEST).is_file():
                        if get_or_create:
                            return self.get_collection(name)
                        raise CollectionExistsError(f"A collection named {name!r} already exists.") from None
                    raise
            finally:
                shutil.rmtree(temp, ignore_errors=True)
            logger.info("created collection %s (%s, %s)", name, encoder.model_id, index)
            return self.get_collection(name)

    def get_or_create_collection(self, name: str, model: str | Encoder | None = None, **kwargs) -> Collection:
        """The collection `name`, created (see :meth:`create_collection`) when there is none."""
        return self.create_collection(name, model, get_or_create=True, **kwargs)

    def get_collection(self, name: str) -> Collection:
        """The open collection `name` (opened once per catalog, with the shared encoder of its spec)."""
        check_name(name)
        with self._lock:
            found = self._open.get(name)
            if found is not None and (found.path / MANIFEST).is_file():
                return found
            if found is not None:  # dropped by another process
                self._forget(name)
            path = self.path / name
            if not (path / MANIFEST).is_file():
                raise CollectionNotFoundError(f"No collection named {name!r}.")
            # the encoder is loaded on first encode, through the pool: collections of one spec share it
            collection = Collection.open(path, lock_timeout=self.lock_timeout, encoder_loader=self.encoders.get)
            self._open[name] = collection
            return collection

    def delete_collection(self, name: str) -> None:
        """Drop the collection `name` and its files (CollectionNotFoundError if there is none)."""
        check_name(name)
        with self._lock:
            path = self.path / name
            if not (path / MANIFEST).is_file():
                raise CollectionNotFoundError(f"No collection named {name!r}.")
            self._forget(name)
            grave = self.path / f"{_HIDDEN_PREFIX}deleted-{name}-{uuid.uuid4().hex[:8]}"
            os.rename(path, grave)  # the name is free at once; the files go next
            shutil.rmtree(grave, ignore_errors=True)
            logger.info("deleted collection %s", name)

    def close(self) -> None:
        """Close every collection this catalog opened."""
        with self._lock:
            for name in list(self._open):
                self._forget(name)

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ---------------------------------------------------------------------------------------------
    def _summary(self, name: str) -> dict:
        from semspace._io import read_artifact_json
        from semspace.search.collection import FORMAT, STORE
        from semspace.search.store import DocumentStore

        with self._lock:
            opened = self._open.get(name)
            if opened is not None:
                manifest, count, dim = opened.manifest, len(opened), opened.dim
                return {
                    "name": name,
                    "count": count,
                    "encoder": with_current_pooling_name(manifest["encoder"]),
                    "index": manifest["index"],
                    "dim": dim,
                }
        path = self.path / name
        manifest = read_artifact_json(path / MANIFEST, FORMAT, error=CollectionError)
        writable = os.access(path, os.W_OK) and os.access(path / STORE, os.W_OK)
        store = DocumentStore(path / STORE, int(manifest["raw_dim"]), timeout=self.lock_timeout, read_only=not writable)
        try:
            count = len(store)
        finally:
            store.close()
        dim = int(manifest.get("dim") or manifest["raw_dim"])
        encoder = with_current_pooling_name(manifest["encoder"])
        return {"name": name, "count": count, "encoder": encoder, "index": manifest["index"], "dim": dim}

    def _forget(self, name: str) -> None:
        collection = self._open.pop(name, None)
        if collection is not None:
            collection.close()

    def _encoder_for(self, model: str | Encoder | None, pooling: str, max_length: int | None) -> Encoder:
        from semspace.encode import Encoder

        if isinstance(model, Encoder):
            return self.encoders.add(model)
        for encoder in self.encoders:
            if _same_model(encoder, model, pooling, max_length):
                return encoder
        kwargs = {} if self.encoders.backend is None else {"backend": self.encoders.backend}
        return self.encoders.add(Encoder(model, pooling=pooling, max_length=max_length, **kwargs))


def _same_model(encoder: Encoder, model: str | None, pooling: str, max_length: int | None) -> bool:
    """Whether `encoder` is what Encoder(model, pooling, max_length) would load (compared by recorded spec)."""
    from semspace.encode.models import BUNDLED_ID
    from semspace.encode.pooling import Pooling

    wanted = BUNDLED_ID if model is None else str(model)
    if wanted != encoder.model_id:
        return False
    if max_length is not None and max_length != encoder.max_length:
        return False
    return pooling == "default" or Pooling.parse(pooling) is encoder.pooling
