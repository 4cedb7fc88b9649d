"""Training-file readers: formats, header skipping, and errors that name the file and line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semspace.errors import DatasetFormatError, DatasetNotFoundError, InvalidInputError, InvalidParameterError
from semspace.train import TrainingSet, read_pairs, read_sentences


def test_labelled_tsv_with_header(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("sentence1\tsentence2\tlabel\na b\tc d\t4.5\n\ne f\tg h\t0\n", encoding="utf-8")
    data = read_pairs(path, labelled=True)
    assert data.columns == [["a b", "e f"], ["c d", "g h"]]
    np.testing.assert_array_equal(data.labels, [4.5, 0.0])


def test_unlabelled_jsonl_with_and_without_negatives(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [{"anchor": "q1", "positive": "p1", "negative": "n1"}, {"anchor": "q2", "positive": "p2", "negative": "n2"}]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    assert read_pairs(path, labelled=False).columns == [["q1", "q2"], ["p1", "p2"], ["n1", "n2"]]
    path.write_text(json.dumps({"sentence1": "a", "sentence2": "b"}) + "\n", encoding="utf-8")
    assert read_pairs(path, labelled=False).columns == [["a"], ["b"]]


def test_labelled_jsonl(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"sentence1": "a", "sentence2": "b", "label": 1}) + "\n", encoding="utf-8")
    assert read_pairs(path, labelled=True).labels.tolist() == [1.0]


@pytest.mark.parametrize(
    ("content", "labelled", "message"),
    [
        ("a\tb\tnot-a-number\n", True, r"pairs.tsv:1: label 'not-a-number'"),
        ("a\tb\n", True, r"pairs.tsv:1: expected sentence1, sentence2, label"),
        ("a\tb\tc\nd\te\n", False, r"pairs.tsv:2: 2 texts where earlier rows have 3"),
        ("a\t \t1\n", True, r"pairs.tsv:1: empty text"),
        ("a\tb\tnan\n", True, r"not finite"),
        ("\n\n", True, "contains no pairs"),
    ],
)
def test_bad_tsv_names_file_and_line(tmp_path, content, labelled, message):
    path = tmp_path / "pairs.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=message):
        read_pairs(path, labelled=labelled)


def test_bad_jsonl_and_files(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"sentence1": "a"}\n', encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=r"pairs.jsonl:1: missing field 'sentence2'"):
        read_pairs(path, labelled=True)
    path.write_text("{oops\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match="invalid JSON"):
        read_pairs(path, labelled=True)
    with pytest.raises(DatasetNotFoundError):
        read_pairs(tmp_path / "missing.tsv", labelled=True)
    (tmp_path / "pairs.csv").write_text("a,b,1\n", encoding="utf-8")
    with pytest.raises(InvalidParameterError, match="unsupported"):
        read_pairs(tmp_path / "pairs.csv", labelled=True)
    (tmp_path / "latin.tsv").write_bytes(b"caf\xe9\tb\t1\n")
    with pytest.raises(DatasetFormatError, match="UTF-8"):
        read_pairs(tmp_path / "latin.tsv", labelled=True)


def test_sentences_file(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("one\ntwo\n", encoding="utf-8")
    assert read_sentences(path).columns == [["one", "two"]]


def test_training_set_validation():
    with pytest.raises(InvalidInputError):
        TrainingSet([[]])
    with pytest.raises(InvalidInputError, match="differ in length"):
        TrainingSet([["a"], ["b", "c"]])
    with pytest.raises(InvalidInputError, match="finite"):
        TrainingSet([["a"], ["b"]], np.array([np.nan]))
    with pytest.raises(InvalidInputError, match="non-empty"):
        TrainingSet([["a", " "]])
