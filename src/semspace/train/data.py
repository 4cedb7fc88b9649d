"""Training inputs: sentences for SimCSE, labelled pairs for CoSENT/MSE, (anchor, positive[, negative]) for InfoNCE.

Files: `.txt` (one sentence per line), `.jsonl` or `.tsv`. Pairs in TSV are `sentence1<TAB>sentence2<TAB>label` (or
`anchor<TAB>positive[<TAB>negative]`); in JSONL the fields are `sentence1`/`sentence2`/`label` (or
`anchor`/`positive`/`negative`). A TSV header line is skipped. Errors name the file and the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semspace.data.files import json_object, read_documents, record_lines, require_suffix
from semspace.data.sts import STSPairs, parse_score
from semspace.errors import DatasetFormatError, InvalidInputError

HEADER_WORDS = {"sentence1", "sentence2", "label", "score", "anchor", "positive", "negative", "text"}


@dataclass
class TrainingSet:
    """Columns of texts (1: sentences; 2: pairs; 3: pairs + hard negatives) and optional labels, one per row."""

    columns: list[list[str]]
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not self.columns or not self.columns[0]:
            raise InvalidInputError("A training set needs at least one example.")
        if len({len(c) for c in self.columns}) != 1:
            raise InvalidInputError(f"Training columns differ in length: {[len(c) for c in self.columns]}.")
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.float64)
            if self.labels.shape != (len(self),) or not np.isfinite(self.labels).all():
                raise InvalidInputError("Training labels must be finite, one per example.")
        for column in self.columns:
            if any(not isinstance(t, str) or not t.strip() for t in column):
                raise InvalidInputError("Training texts must be non-empty strings.")

    def __len__(self) -> int:
        return len(self.columns[0])

    @classmethod
    def from_pairs(cls, pairs: STSPairs) -> TrainingSet:
        return cls([list(pairs.sentences1), list(pairs.sentences2)], np.asarray(pairs.scores, dtype=np.float64))


def read_sentences(path: str | Path) -> TrainingSet:
    """Sentences from .txt (one per line), .jsonl (`text` field) or .csv (`text` column); duplicates are kept."""
    return TrainingSet([read_documents(path, id_field=None).texts])


def read_pairs(path: str | Path, labelled: bool) -> TrainingSet:
    """Labelled pairs (labelled=True) or (anchor, positive[, negative]) rows from .tsv or .jsonl."""
    path = Path(path)
    suffix = require_suffix(path, (".tsv", ".jsonl"), "pair file")
    rows: list[list[str]] = []
    labels: list[float] = []
    for index, (number, line) in enumerate(record_lines(path)):
        if suffix == ".tsv":
            fields = line.split("\t")
            if index == 0 and fields[0].strip().lower() in HEADER_WORDS:
                continue
        else:
            fields = _json_fields(path, number, line, labelled)
        width = 3 if labelled else len(fields)
        if len(fields) != width or width not in (2, 3):
            expected = "sentence1, sentence2, label" if labelled else "anchor, positive[, negative]"
            raise DatasetFormatError(path, number, f"expected {expected}; got {len(fields)} fields")
        texts = fields[:2] if labelled else fields
        if any(not t.strip() for t in texts):
            raise DatasetFormatError(path, number, "empty text")
        if labelled:
            labels.append(parse_score(path, number, fields[2], what="label"))
        if rows and len(texts) != len(rows[0]):
            raise DatasetFormatError(path, number, f"{len(texts)} texts where earlier rows have {len(rows[0])}")
        rows.append(texts)
    if not rows:
        raise DatasetFormatError(path, None, "contains no pairs")
    columns = [list(column) for column in zip(*rows, strict=True)]
    return TrainingSet(columns, np.asarray(labels) if labelled else None)


def _json_fields(path: Path, number: int, line: str, labelled: bool) -> list[str]:
    record = json_object(path, number, line)
    names = ("sentence1", "sentence2", "label") if labelled else ("anchor", "positive", "negative")
    if not labelled and "anchor" not in record:
        names = ("sentence1", "sentence2", "negative")
    fields = []
    for name in names:
        if name not in record:
            if name == "negative":
                continue
            raise DatasetFormatError(path, number, f"missing field {name!r}")
        value = record[name]
        if name == "label":
            value = str(value)
        elif not isinstance(value, str):
            raise DatasetFormatError(path, number, f"field {name!r} must be a string")
        fields.append(value)
    return fields
