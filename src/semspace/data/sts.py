"""Readers for the STS formats in ../shared/data: senteval_cn TSV, stsbenchmark.tsv.gz, SentEval STS12-16, SICK.

Every reader returns :class:`STSPairs` (two sentence lists and float64 gold scores). A malformed line raises
:class:`~semspace.errors.DatasetFormatError` naming the file and the 1-based line number.
"""

from __future__ import annotations

import csv
import gzip
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semspace.data.files import numbered_lines, record_lines
from semspace.errors import DatasetFormatError, DatasetNotFoundError


@dataclass
class STSPairs:
    """Sentence pairs with gold similarity scores."""

    sentences1: list[str]
    sentences2: list[str]
    scores: np.ndarray
    name: str = ""

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float64)
        if not (len(self.sentences1) == len(self.sentences2) == len(self.scores)):
            raise ValueError("sentences1, sentences2 and scores must have the same length")

    def __len__(self) -> int:
        return len(self.scores)

    def sentences(self) -> list[str]:
        """Both sides, in order (duplicates kept)."""
        return [*self.sentences1, *self.sentences2]

    def subsample(self, max_pairs: int | None, seed: int = 0) -> STSPairs:
        """A seeded random subset of at most `max_pairs` pairs (order kept); self when already small enough."""
        if max_pairs is None or len(self) <= max_pairs:
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self), size=max_pairs, replace=False))
        return STSPairs(
            [self.sentences1[i] for i in keep],
            [self.sentences2[i] for i in keep],
            self.scores[keep],
            self.name,
        )

    @staticmethod
    def concat(parts: list[STSPairs], name: str = "") -> STSPairs:
        return STSPairs(
            [s for p in parts for s in p.sentences1],
            [s for p in parts for s in p.sentences2],
            np.concatenate([p.scores for p in parts]) if parts else np.zeros(0),
            name,
        )


def parse_score(path: Path, line: int, text: str, what: str = "score") -> float:
    """A finite float from a dataset field, else DatasetFormatError naming the file and line."""
    try:
        value = float(text)
    except ValueError:
        raise DatasetFormatError(path, line, f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise DatasetFormatError(path, line, f"{what} {text!r} is not finite")
    return value


class _Rows:
    """Pairs collected row by row (scores parsed as they come, so errors name the line)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float]] = []

    def add(self, path: Path, line: int, a: str, b: str, score: str) -> None:
        self.rows.append((a, b, parse_score(path, line, score)))

    def pairs(self, name: str) -> STSPairs:
        s1, s2, scores = (list(column) for column in zip(*self.rows, strict=True)) if self.rows else ([], [], [])
        return STSPairs(s1, s2, np.array(scores, dtype=np.float64), name)


def _require(path: Path) -> Path:
    if not path.exists():
        raise DatasetNotFoundError(f"{path}: no such file or directory")
    return path


def read_senteval_cn(path: str | Path, name: str | None = None) -> STSPairs:
    """Read a senteval_cn `.data` file: UTF-8 TSV, no header, `s1 \\t s2 \\t label` (ATEC, BQ, LCQMC, PAWSX, STS-B)."""
    path = Path(path)
    rows = _Rows()
    for number, line in record_lines(path):
        fields = line.split("\t")
        if len(fields) != 3:
            raise DatasetFormatError(path, number, f"expected 3 tab-separated fields, found {len(fields)}")
        rows.add(path, number, fields[0], fields[1], fields[2])
    return rows.pairs(name or path.name.split(".")[0])


def read_stsbenchmark(path: str | Path) -> dict[str, STSPairs]:
    """Read sentence-transformers' `stsbenchmark.tsv.gz` → {"train", "dev", "test"} with scores 0-5."""
    path = Path(_require(Path(path)))
    splits: dict[str, _Rows] = {}
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            expected = ["split", "genre", "dataset", "year", "sid", "score", "sentence1", "sentence2"]
            if header != expected:
                raise DatasetFormatError(path, 1, f"header must be {expected}, found {header}")
            for fields in reader:
                number = reader.line_num
                if len(fields) != len(expected):
                    raise DatasetFormatError(
                        path, number, f"expected {len(expected)} tab-separated fields, found {len(fields)}"
                    )
                splits.setdefault(fields[0], _Rows()).add(path, number, fields[6], fields[7], fields[5])
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DatasetFormatError(path, None, f"cannot read as gzip'd UTF-8 TSV ({exc})") from None
    return {split: rows.pairs(f"STS-B-{split}") for split, rows in splits.items()}


def read_sick(path: str | Path) -> STSPairs:
    """Read a SemEval-2014 SICK file (`pair_ID sentence_A sentence_B relatedness_score entailment_judgment`)."""
    path = Path(path)
    rows = _Rows()
    lines = record_lines(path)
    first = next(lines, None)
    if first is None:
        raise DatasetFormatError(path, 1, "file is empty")
    header = first[1].split("\t")
    try:
        ia, ib, iscore = (header.index(c) for c in ("sentence_A", "sentence_B", "relatedness_score"))
    except ValueError:
        reason = "header must name sentence_A, sentence_B and relatedness_score"
        raise DatasetFormatError(path, first[0], reason) from None
    for number, line in lines:
        fields = line.split("\t")
        if len(fields) != len(header):
            raise DatasetFormatError(path, number, f"expected {len(header)} fields, found {len(fields)}")
        rows.add(path, number, fields[ia], fields[ib], fields[iscore])
    return rows.pairs("SICK-R")


_STS_INPUT = re.compile(r"^STS\.input\.(.+)\.txt$")


def read_senteval_sts(directory: str | Path) -> dict[str, STSPairs]:
    """Read one SentEval STS year folder (e.g. `STS12-en-test`) → {subset: pairs}, subsets kept apart.

    As in SentEval, pairs whose gold line is blank are skipped. Subsets are the `STS.input.<name>.txt` files that
    have a matching `STS.gs.<name>.txt` (STS13's SMT has no input and is absent, as in SentEval).
    """
    directory = _require(Path(directory))
    if not directory.is_dir():
        raise DatasetFormatError(directory, None, "expected a SentEval STS folder")
    subsets: dict[str, STSPairs] = {}
    for input_path in sorted(directory.glob("STS.input.*.txt")):
        match = _STS_INPUT.match(input_path.name)
        gold_path = directory / f"STS.gs.{match.group(1)}.txt" if match else None
        if gold_path is None or not gold_path.exists():
            continue
        inputs = list(numbered_lines(input_path))
        golds = list(numbered_lines(gold_path))
        if len(inputs) != len(golds):
            raise DatasetFormatError(gold_path, None, f"has {len(golds)} lines but {input_path.name} has {len(inputs)}")
        rows = _Rows()
        for (number, line), (_, gold) in zip(inputs, golds, strict=True):
            if gold.strip() == "":
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                raise DatasetFormatError(input_path, number, f"expected 2 tab-separated fields, found {len(fields)}")
            rows.add(gold_path, number, fields[0], fields[1], gold)
        subsets[match.group(1)] = rows.pairs(match.group(1))
    if not subsets:
        raise DatasetFormatError(directory, None, "contains no STS.input.*.txt with a matching STS.gs.*.txt")
    return subsets
