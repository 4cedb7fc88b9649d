"""The documents side of a collection: input checks, the result types, and the bounds every call respects (k,
queries per call, page size, metadata size and depth) so that a request too large is a one-line error, never a
MemoryError — nor a document stored that a later read cannot serialise."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from contextvars import ContextVar

from semspace.encode.encoder import validate_texts
from semspace.errors import DuplicateIdError, InputTypeError, InvalidInputError
from semspace.search.results import SearchResult

MAX_K = 10_000  # results per query
MAX_QUERIES = 1_024  # queries per call
MAX_PAGE = 10_000  # documents per list_documents page
MAX_METADATA_BYTES = 64 * 1024  # one document's metadata, as JSON
# Objects and arrays nested in one document's metadata, itself included ({"a": {"b": 1}} is 2 deep). Deeper values
# were stored, then broke every read that returned them (pydantic stops serialising at ~255 levels; json at ~1000).
MAX_METADATA_DEPTH = 32

# The warning of the last write made in this context (thread, request): None when the index took it too; a message
# when the write is stored but its index step failed (see Collection.last_write_warning). The service reads it.
WRITE_WARNING: ContextVar[str | None] = ContextVar("semspace_write_warning", default=None)


def json_depth(value: object, limit: int = MAX_METADATA_DEPTH) -> int:
    """How deep objects and arrays nest in `value` (a scalar 0, {} 1, {"a": [1]} 2), counted without recursion and
    given up at `limit` + 1, so a value nested 100,000 deep (or one that contains itself) costs nothing."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)] if isinstance(value, dict | list | tuple) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return depth
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list | tuple))  # type: ignore[union-attr]
    return deepest


def check_metadata(meta: object, i: int) -> str:
    """A document's metadata, a JSON-serialisable dict of at most MAX_METADATA_BYTES nested at most
    MAX_METADATA_DEPTH deep, as the JSON stored."""
    if not isinstance(meta, dict):
        raise InputTypeError(f"Metadata at index {i} must be a dict; got {type(meta).__name__}.")
    if json_depth(meta) > MAX_METADATA_DEPTH:
        raise InvalidInputError(
            f"Metadata at index {i} nests objects/arrays more than {MAX_METADATA_DEPTH} deep (itself included)."
        )
    try:
        text = json.dumps(meta, ensure_ascii=False)
    except (TypeError, ValueError):
        raise InvalidInputError(f"Metadata at index {i} is not JSON-serialisable.") from None
    size = len(text.encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise InvalidInputError(f"Metadata at index {i} is {size} bytes as JSON; at most {MAX_METADATA_BYTES}.")
    return text


def content_id(text: str) -> str:
    """An id derived from the text alone (SHA-256, 24 hex digits): adding the same text twice gives the same id,
    so a re-run of an import finds what is already stored instead of doubling the collection."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def check_documents(
    texts: Sequence[str], ids: Sequence[str] | None, metadata: Sequence[dict] | None, what: str = "add"
) -> tuple[list[str], list[str], list[str]]:
    """Validated (texts, ids — generated when None —, metadata as JSON text) of one add/upsert."""
    texts = validate_texts(texts)
    n = len(texts)
    if ids is None:
        ids = [uuid.uuid4().hex for _ in range(n)]
    else:
        ids = list(ids)
        for i, doc_id in enumerate(ids):
            if not isinstance(doc_id, str) or not doc_id:
                raise InputTypeError(f"Document id at index {i} must be a non-empty string; got {doc_id!r}.")
        if len(ids) != n:
            raise InvalidInputError(f"{len(ids)} ids for {n} texts.")
        if len(set(ids)) != n:
            raise DuplicateIdError(f"Ids repeat within this {what}.")
    metadata = [{} for _ in range(n)] if metadata is None else list(metadata)
    if len(metadata) != n:
        raise InvalidInputError(f"{len(metadata)} metadata entries for {n} texts.")
    return texts, ids, [check_metadata(meta, i) for i, meta in enumerate(metadata)]


def make_result(row_scores, row_seqs, docs: dict[int, tuple[str, str, dict]]) -> SearchResult:
    """One query's SearchResult from (scores, seqs) and the stored documents by seq; −1 and deleted seqs skipped."""
    result = SearchResult()
    for score, seq in zip(row_scores, row_seqs, strict=True):
        if seq < 0 or seq not in docs:
            continue
        doc_id, text, meta = docs[seq]
        result.ids.append(doc_id)
        result.scores.append(float(score))
        result.texts.append(text)
        result.metadata.append(meta)
    return result
