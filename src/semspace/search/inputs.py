"""Read documents for a collection from .txt (one per line), .jsonl (id, text, other fields = metadata) or .csv."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from semspace.errors import DatasetFormatError, DatasetNotFoundError, InvalidParameterError


@dataclass
class Documents:
    texts: list[str] = field(default_factory=list)
    ids: list[str] | None = None
    metadata: list[dict] = field(default_factory=list)


def read_documents(path: str | Path, text_field: str = "text", id_field: str | None = "id") -> Documents:
    """Documents from a file; a malformed line raises DatasetFormatError with file and line number."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DatasetFormatError(path, None, "not valid UTF-8 text") from None
    docs = Documents(ids=[])
    if suffix == ".txt":
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                raise DatasetFormatError(path, number, "empty line (one text per line expected)")
            docs.texts.append(line)
            docs.metadata.append({})
        docs.ids = None
    elif suffix == ".jsonl":
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetFormatError(path, number, f"invalid JSON ({exc.msg})") from None
            _take(docs, record, path, number, text_field, id_field)
    elif suffix == ".csv":
        reader = csv.DictReader(raw.splitlines())
        if reader.fieldnames is None or text_field not in reader.fieldnames:
            raise DatasetFormatError(
                path, 1, f"no column {text_field!r} (columns: {reader.fieldnames}); choose one with --text-column"
            )
        for record in reader:
            if None in record:
                raise DatasetFormatError(path, reader.line_num, "more fields than the header names")
            _take(docs, dict(record), path, reader.line_num, text_field, id_field)
    else:
        raise InvalidParameterError(f"{path.name}: unsupported input; use .txt, .jsonl or .csv")
    if not docs.texts:
        raise DatasetFormatError(path, None, "contains no documents")
    if docs.ids is not None and not any(docs.ids):
        docs.ids = None
    elif docs.ids is not None and not all(docs.ids):
        first = next(i for i, x in enumerate(docs.ids) if not x)
        raise DatasetFormatError(path, None, f"document {first + 1} has no {id_field!r} while others do")
    return docs


def _take(docs: Documents, record: object, path: Path, number: int, text_field: str, id_field: str | None) -> None:
    if not isinstance(record, dict):
        raise DatasetFormatError(path, number, "expected a JSON object")
    text = record.pop(text_field, None)
    if not isinstance(text, str) or not text.strip():
        raise DatasetFormatError(path, number, f"missing or empty {text_field!r}")
    doc_id = record.pop(id_field, None) if id_field else None
    assert docs.ids is not None
    docs.ids.append("" if doc_id is None else str(doc_id))
    docs.texts.append(text)
    docs.metadata.append(record)
