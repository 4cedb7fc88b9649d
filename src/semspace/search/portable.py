"""Export a collection to JSONL and import it back: one line per document, {"id", "text", "metadata"[, "vector"]}.

Vectors are the raw float32 vectors written as JSON numbers (each float32 is exactly a float64, and Python writes
the shortest decimal that reads back to the same float64), so export → import gives back the same bits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from semspace._io import atomic_writer
from semspace.data.files import json_object, record_lines
from semspace.errors import DatasetFormatError


def export_jsonl(
    documents: Iterable[tuple[str, str, dict, np.ndarray]], path: str | Path, vectors: bool = False
) -> int:
    """Write (id, text, metadata, raw vector) documents to `path` (atomically), one JSON line each; the count."""
    n = 0
    with atomic_writer(path) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for doc_id, text, meta, vector in documents:
            record = {"id": doc_id, "text": text, "metadata": meta}
            if vectors:
                record["vector"] = vector.tolist()
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_export(path: str | Path, dim: int) -> tuple[list[str], list[str | None], list[dict], np.ndarray | None]:
    """(texts, ids or None, metadata, raw vectors or None) of a JSONL export; errors name file:line."""
    path = Path(path)
    texts: list[str] = []
    ids: list[str | None] = []
    metadata: list[dict] = []
    vectors: list[list[float]] = []
    for number, line in record_lines(path):
        record = json_object(path, number, line)
        text = record.pop("text", None)
        if not isinstance(text, str) or not text.strip():
            raise DatasetFormatError(path, number, "missing or empty 'text'")
        doc_id = record.pop("id", None)
        if doc_id is not None and (not isinstance(doc_id, str | int) or doc_id == ""):
            raise DatasetFormatError(path, number, f"'id' must be a non-empty string; got {doc_id!r}")
        vector = record.pop("vector", None)
        meta = record.pop("metadata", None)
        if meta is not None and not isinstance(meta, dict):
            raise DatasetFormatError(path, number, "'metadata' must be a JSON object")
        if (vector is None) != (not vectors) and texts:
            raise DatasetFormatError(path, number, "either every line has a 'vector' or none does")
        if vector is not None:
            if not isinstance(vector, list) or len(vector) != dim:
                raise DatasetFormatError(path, number, f"'vector' must be a list of {dim} numbers")
            vectors.append(vector)
        texts.append(text)
        ids.append(None if doc_id is None else str(doc_id))
        metadata.append({**record, **(meta or {})})  # other fields are metadata too, as in `index add`
    if not texts:
        raise DatasetFormatError(path, None, "contains no documents")
    try:
        matrix = np.asarray(vectors, dtype=np.float32) if vectors else None
    except (TypeError, ValueError):
        raise DatasetFormatError(path, None, "a 'vector' holds something other than numbers") from None
    return texts, ids, metadata, matrix


def read_import(
    path: str | Path, dim: int, upsert: bool = False
) -> tuple[list[str], list[str] | None, list[dict], np.ndarray | None]:
    """(texts, ids — None for generated ones —, metadata, raw vectors or None) to add, or with `upsert` to add or
    replace: every line has an id, or (for a plain add) none does."""
    texts, ids, metadata, vectors = read_export(path, dim)
    if any(i is None for i in ids):
        if upsert or not all(i is None for i in ids):
            raise DatasetFormatError(path, None, "every line needs an 'id' (or, for a plain add, none does)")
        return texts, None, metadata, vectors
    return texts, [str(i) for i in ids], metadata, vectors
