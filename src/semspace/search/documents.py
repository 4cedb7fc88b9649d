"""The documents side of a collection: input checks, the result types, and the bounds every call respects (k,
queries per call, page size, metadata size) so that a request too large is a one-line error, never a MemoryError."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence

from semspace.encode.encoder import validate_texts
from semspace.errors import DuplicateIdError, InputTypeError, InvalidInputError
from semspace.search.results import SearchResult

MAX_K = 10_000  # results per query
MAX_QUERIES = 1_024  # queries per call
MAX_PAGE = 10_000  # documents per list_documents page
MAX_METADATA_BYTES = 64 * 1024  # one document's metadata, as JSON


def check_metadata(meta: object, i: int) -> str:
    """A document's metadata, a JSON-serialisable dict of at most MAX_METADATA_BYTES, as the JSON stored."""
    if not isinstance(meta, dict):
        raise InputTypeError(f"Metadata at index {i} must be a dict; got {type(meta).__name__}.")
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
