"""Readers of user files: texts one per line (.txt, or '-' for stdin), documents (.txt/.jsonl/.csv), vectors (.npy),
and the line splitter that every line-based reader in semspace uses (training files, STS datasets).

Lines are split on "\\n" only, with one trailing "\\r" removed (CRLF files read like LF files); a final newline does
not make an extra line. Never `str.splitlines()`: it also splits on U+2028, U+0085, form feed, … which are valid
inside a JSON string or a sentence.

Blank lines (empty or whitespace only) follow one rule everywhere:

- where a line *is* a text (.txt, stdin): a blank line is an error naming file:line (it would be an empty text);
- where a line *holds a record* (.jsonl, .tsv, .csv, the STS dataset files): blank lines are skipped (no record).

A missing file raises :class:`~semspace.errors.DatasetNotFoundError`; anything malformed raises
:class:`~semspace.errors.DatasetFormatError` naming the file and, where there is one, the 1-based line.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from semspace.errors import DatasetFormatError, DatasetNotFoundError, InvalidInputError, InvalidParameterError

STDIN = "-"
DOCUMENT_SUFFIXES = (".txt", ".jsonl", ".csv")


def split_lines(text: str) -> list[str]:
    """Lines of `text`: split on "\\n" only, one trailing "\\r" stripped, no extra line for a final newline."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline (or an empty text)
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def require_suffix(path: Path, suffixes: tuple[str, ...], what: str = "input") -> str:
    """The lower-case suffix of `path` when it is one of `suffixes` (else a missing file or an unsupported one)."""
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        if not path.exists():
            raise DatasetNotFoundError(f"{path}: no such file")
        names = f"{', '.join(suffixes[:-1])} or {suffixes[-1]}" if len(suffixes) > 1 else suffixes[0]
        raise InvalidParameterError(f"{path.name}: unsupported {what}; use {names}")
    return suffix


def read_text(path: str | Path) -> str:
    """The whole of a UTF-8 file; errors name the file."""
    path = Path(path)
    if not path.exists():
        raise DatasetNotFoundError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise DatasetFormatError(path, None, f"not valid UTF-8 text ({exc.reason})") from None
    except IsADirectoryError:
        raise DatasetFormatError(path, None, "is a directory, expected a file") from None


def numbered_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) for every line of a UTF-8 file, blank ones included."""
    yield from enumerate(split_lines(read_text(path)), start=1)


def record_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) for the lines of a record file (.jsonl, .tsv, datasets), blank lines skipped."""
    return ((number, line) for number, line in numbered_lines(path) if line.strip())


def json_object(path: str | Path, number: int, line: str) -> dict:
    """One JSONL line as a dict; DatasetFormatError naming file:line when it is not valid JSON or not an object."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(path, number, f"invalid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise DatasetFormatError(path, number, "expected a JSON object")
    return record


def read_lines(source: str | Path) -> list[str]:
    """Texts, one per line, from a UTF-8 file or '-' (stdin); a blank line is an error naming file:line."""
    if str(source) == STDIN:
        name, raw = "<stdin>", sys.stdin.read()
    else:
        name, raw = str(source), read_text(source)
    lines = split_lines(raw)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise DatasetFormatError(name, number, "empty line (one text per line expected)")
    if not lines:
        raise DatasetFormatError(name, None, "contains no texts")
    return lines


@dataclass
class Documents:
    """Texts with optional ids (None: the caller generates them) and one metadata dict per text."""

    texts: list[str] = field(default_factory=list)
    ids: list[str] | None = None
    metadata: list[dict] = field(default_factory=list)


def read_documents(path: str | Path, text_field: str = "text", id_field: str | None = "id") -> Documents:
    """Documents from .txt (one per line), .jsonl (text, id, other fields = metadata; a "metadata" object is
    the metadata itself, not nested) or .csv (same, as columns)."""
    path = Path(path)
    suffix = require_suffix(path, DOCUMENT_SUFFIXES)
    if suffix == ".txt":
        texts = read_lines(path)
        return Documents(texts, None, [{} for _ in texts])
    docs = Documents(ids=[])
    if suffix == ".jsonl":
        for number, line in record_lines(path):
            _take(docs, json_object(path, number, line), path, number, text_field, id_field)
    else:
        # newline="" lets the csv module see quoted line breaks; it skips blank rows itself.
        reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
        if reader.fieldnames is None or text_field not in reader.fieldnames:
            raise DatasetFormatError(
                path, 1, f"no column {text_field!r} (columns: {reader.fieldnames}); choose one with --text-column"
            )
        for record in reader:
            if None in record:
                raise DatasetFormatError(path, reader.line_num, "more fields than the header names")
            _take(docs, dict(record), path, reader.line_num, text_field, id_field)
    if not docs.texts:
        raise DatasetFormatError(path, None, "contains no documents")
    assert docs.ids is not None
    if not any(docs.ids):
        docs.ids = None
    elif not all(docs.ids):
        first = next(i for i, x in enumerate(docs.ids) if not x)
        raise DatasetFormatError(path, None, f"document {first + 1} has no {id_field!r} while others do")
    return docs


def _take(docs: Documents, record: dict, path: Path, number: int, text_field: str, id_field: str | None) -> None:
    text = record.pop(text_field, None)
    if not isinstance(text, str) or not text.strip():
        raise DatasetFormatError(path, number, f"missing or empty {text_field!r}")
    doc_id = record.pop(id_field, None) if id_field else None
    assert docs.ids is not None
    docs.ids.append("" if doc_id is None else str(doc_id))
    docs.texts.append(text)
    nested = record.get("metadata")
    if isinstance(nested, dict):  # {"id", "text", "metadata": {...}} (what `index export` writes): that is the metadata
        record.pop("metadata")
        record = {**record, **nested}
    docs.metadata.append(record)


def read_vectors(path: str | Path, min_rows: int = 1) -> np.ndarray:
    """A validated (n, d) finite float array from a .npy file, n >= `min_rows` (never unpickles)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: no such file")
    try:
        with open(path, "rb") as handle:
            array = np.lib.format.read_array(handle, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        reason = str(exc).split("\n")[0] if str(exc) else type(exc).__name__
        raise DatasetFormatError(path, None, f"not a readable .npy array ({reason})") from None
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.floating):
        raise InvalidInputError(
            f"{path}: expected a 2-D float array (n vectors x d); got shape {array.shape}, dtype {array.dtype}."
        )
    if not np.isfinite(array).all():
        row = int(np.argwhere(~np.isfinite(array))[0, 0])
        raise InvalidInputError(f"{path}: contains NaN or inf (first at row {row}).")
    if array.shape[0] < min_rows or array.shape[1] < 1:
        raise InvalidInputError(
            f"{path}: needs at least {min_rows} vectors of at least 1 dimension; got {array.shape}."
        )
    return array


VECTOR_SUFFIXES = (".npy", ".jsonl")


def check_vectors_path(path: str | Path) -> Path:
    """`path` if it names a vectors output (.npy or .jsonl), else InvalidParameterError — check before encoding."""
    path = Path(path)
    if path.suffix not in VECTOR_SUFFIXES:
        raise InvalidParameterError(f"vectors are written as .npy or .jsonl; got {path.name!r}")
    return path


def write_vectors(path: str | Path, vectors: np.ndarray, texts: list[str]) -> None:
    """Write vectors atomically: .npy (float32, no pickle) or .jsonl ({"text", "embedding"} per line)."""
    from semspace._io import atomic_write_bytes

    path = check_vectors_path(path)
    if path.suffix == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, vectors, allow_pickle=False)
        atomic_write_bytes(path, buffer.getvalue())
        return
    atomic_write_bytes(path, ("\n".join(vector_lines(vectors, texts)) + "\n").encode("utf-8"))


def vector_lines(vectors: np.ndarray, texts: list[str]) -> Iterator[str]:
    """One JSON object per text, `{"text", "embedding"}` (the .jsonl format, also `semspace encode`'s stdout)."""
    for text, vector in zip(texts, vectors, strict=True):
        yield json.dumps({"text": text, "embedding": vector.tolist()}, ensure_ascii=False)
