"""What the LangChain and LlamaIndex vector stores share: the collection operations they need, written against the
public methods a local :class:`~semspace.Collection` and a remote (``semspace.client``) collection both have — ``add``,
``upsert``, ``get_existing``, ``delete``, ``search``, ``count``, ``list_documents``, ``info`` — never against a
collection's index, store or encoder, so one adapter serves both.

External vectors (a framework's own embedding model) need two more methods, ``add(..., vectors=)`` and
``search_vectors``, which only a local collection has; :func:`check_vectors` says so when they are missing.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from semspace.errors import DocumentNotFoundError, InvalidInputError, InvalidParameterError
from semspace.search.filters import MAX_DEPTH, OPERATORS, compile_where

REQUIRED = ("add", "upsert", "get_existing", "delete", "search", "count", "list_documents", "info")
PAGE = 1000  # documents listed (and deleted) per round when a filter selects what to delete
_DELETE_RETRIES = 3  # a concurrent delete can remove an id between get_existing and delete: try again, bounded


def check_collection(collection: Any, owner: str) -> Any:
    """`collection` if it has every method the adapters use, else InvalidParameterError naming the missing ones."""
    missing = [name for name in REQUIRED if not callable(getattr(collection, name, None))]
    if missing:
        raise InvalidParameterError(
            f"{owner} needs a semspace Collection (Collection.open/create) or a remote collection "
            f"(semspace.client.Client(url).get_collection(name)); got {type(collection).__name__}, which lacks "
            f"{', '.join(missing)}."
        )
    return collection


def accepts(method: Any, parameter: str) -> bool:
    """Whether `method` has a parameter named `parameter` (a local collection has some a remote one lacks)."""
    try:
        return parameter in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def takes_vectors(collection: Any) -> bool:
    """Whether `collection` stores and searches caller-made vectors (``add(vectors=)`` and ``search_vectors``)."""
    return callable(getattr(collection, "search_vectors", None)) and all(
        accepts(getattr(collection, m), "vectors") for m in ("add", "upsert")
    )


def check_vectors(collection: Any, dim: int | None, source: str) -> int:
    """The collection's raw dimension, after checking it can take `source`'s vectors of dimension `dim` (None: not
    known yet); InvalidParameterError saying why not and what to do instead."""
    if not takes_vectors(collection):
        raise InvalidParameterError(
            f"{source} needs a collection that stores the caller's vectors (a local semspace Collection); "
            f"{type(collection).__name__} embeds texts with its own encoder. Leave the embedding out to let the "
            "collection embed texts and queries itself."
        )
    raw_dim = int(collection.info()["raw_dim"])
    if dim is not None and dim != raw_dim:
        raise InvalidInputError(
            f"{source} gives {dim}-d vectors; the collection stores {raw_dim}-d vectors (its encoder's). Use a "
            "collection created with an encoder of the same dimension (and the same model), or leave the "
            "embedding out to let the collection embed texts itself."
        )
    return raw_dim


def as_matrix(vectors: Sequence[Sequence[float]], raw_dim: int, source: str) -> np.ndarray:
    """Float32 (n, raw_dim) matrix of a framework's vectors; InvalidInputError on another dimension."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or (len(matrix) and matrix.shape[1] != raw_dim):
        got = matrix.shape[1] if matrix.ndim == 2 else f"shape {matrix.shape}"
        raise InvalidInputError(f"{source} gave {got}-d vectors; the collection stores {raw_dim}-d vectors.")
    return matrix


def fill_ids(ids: Sequence[str | None] | None, n: int) -> list[str] | None:
    """`ids` with a fresh id (uuid4 hex, as ``Collection.add`` makes) for each None; None when no id is given."""
    if ids is None or not any(ids):
        return None
    ids = list(ids)
    if len(ids) != n:
        raise InvalidInputError(f"{len(ids)} ids for {n} texts.")
    return [doc_id if doc_id else uuid.uuid4().hex for doc_id in ids]


def check_where(where: dict | None) -> dict | None:
    """`where` after checking it is a valid semspace filter (InvalidParameterError naming the problem)."""
    if where is not None:
        compile_where(where)
    return where


def both(first: dict | None, second: dict | None) -> dict | None:
    """The filter matching what both filters match (None: no filter)."""
    parts = [w for w in (first, second) if w]
    return None if not parts else parts[0] if len(parts) == 1 else {"$and": parts}


def get_existing(collection: Any, ids: Sequence[str]) -> list[dict]:
    """The documents among `ids` that exist, each once, in the order first asked."""
    unique = list(dict.fromkeys(ids))
    return collection.get_existing(unique) if unique else []


def delete_existing(collection: Any, ids: Sequence[str]) -> int:
    """Delete the documents among `ids` that exist (unknown ids are ignored); the number deleted."""
    for _ in range(_DELETE_RETRIES):
        present = [doc["id"] for doc in get_existing(collection, ids)]
        if not present:
            return 0
        try:
            return int(collection.delete(present))
        except DocumentNotFoundError:  # another writer deleted one of them in between: look again
            continue
    raise DocumentNotFoundError(f"Documents kept disappearing while deleting them ({_DELETE_RETRIES} tries).")


def matching_documents(collection: Any, where: dict | None) -> list[dict]:
    """Every document (id, text, metadata) matching `where` (None: all), in insertion order, paged with the stable
    cursor."""
    check_where(where)
    docs: list[dict] = []
    cursor = None
    for _ in range(collection.count(where) // PAGE + 2):  # bounded: new documents are not chased forever
        page = collection.list_documents(limit=PAGE, where=where, cursor=cursor)
        docs += page.documents
        cursor = page.next_cursor
        if cursor is None:
            break
    return docs


def matching_ids(collection: Any, where: dict | None) -> list[str]:
    """Ids of every document matching `where` (None: all), in insertion order."""
    return [doc["id"] for doc in matching_documents(collection, where)]


def delete_where(collection: Any, where: dict | None) -> int:
    """Delete every document matching `where` (None: all); the number deleted."""
    ids = matching_ids(collection, where)
    return sum(delete_existing(collection, ids[lo : lo + PAGE]) for lo in range(0, len(ids), PAGE))


def dict_filter_to_where(flt: Any, owner: str, depth: int = 0) -> dict | None:
    """A Chroma/PGVector-style dict filter (what LangChain stores take as `filter=`) as a semspace `where`.

    Kept as is: field equality, ``$eq $ne $in $nin $gt $gte $lt $lte``, ``$and``/``$or``; translated:
    ``{"$between": [lo, hi]}`` → ``{"$gte": lo, "$lte": hi}``. Refused with InvalidParameterError: a callable
    (it would have to run on every document, which a remote collection cannot do), ``$not``, ``$exists``, ``$like``,
    ``$ilike``, ``$contains`` and any other operator semspace has no exact equivalent for.
    """
    if flt is None:
        return None
    if callable(flt):
        raise InvalidParameterError(
            f"{owner} takes a metadata filter as a dict (e.g. {{'source': 'faq', 'year': {{'$gte': 2020}}}}); a "
            "function cannot run inside a semspace collection."
        )
    if not isinstance(flt, dict):
        raise InvalidParameterError(f"{owner}: a metadata filter is a dict; got {type(flt).__name__}.")
    if depth > MAX_DEPTH:
        raise InvalidParameterError(f"{owner}: the filter is nested deeper than {MAX_DEPTH} levels.")
    where: dict = {}
    for key, value in flt.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list):
                raise InvalidParameterError(f"{owner}: {key} takes a list of filters; got {type(value).__name__}.")
            where[key] = [dict_filter_to_where(sub, owner, depth + 1) or {} for sub in value]
        elif isinstance(key, str) and key.startswith("$"):
            raise _unsupported(owner, key)
        elif isinstance(value, dict):
            where[key] = _condition(value, key, owner)
        else:
            where[key] = value
    return check_where(where) if where else None


def _condition(condition: dict, field: str, owner: str) -> dict:
    out: dict = {}
    for op, value in condition.items():
        if op == "$between":
            if not isinstance(value, list | tuple) or len(value) != 2:
                raise InvalidParameterError(f"{owner}: $between on {field!r} takes [low, high]; got {value!r}.")
            out["$gte"], out["$lte"] = value
        elif op in OPERATORS:
            out[op] = value
        else:
            raise _unsupported(owner, op)
    return out


def _unsupported(owner: str, op: str) -> InvalidParameterError:
    return InvalidParameterError(
        f"{owner}: the filter operator {op!r} has no equivalent in semspace's filters; use $and, $or, field "
        f"equality, $between or one of {', '.join(OPERATORS)}."
    )
