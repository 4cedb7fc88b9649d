"""`semspace.data.files`: lines split on "\\n" only, CRLF, the blank-line rule, and errors naming file and line."""

import json

import numpy as np
import pytest

from semspace.data.files import read_documents, read_lines, read_vectors, split_lines, write_vectors
from semspace.data.sts import read_senteval_cn
from semspace.errors import DatasetFormatError, DatasetNotFoundError, InvalidInputError, InvalidParameterError
from semspace.train import read_pairs


def test_split_lines_on_newline_only():
    assert split_lines("a\nb\n") == ["a", "b"]
    assert split_lines("a\r\nb") == ["a", "b"]
    assert split_lines("") == []
    assert split_lines("a\u2028b\x0cc\x1dd\u0085e") == ["a\u2028b\x0cc\x1dd\u0085e"]
    assert split_lines("a\n\nb\n") == ["a", "", "b"]


def test_jsonl_line_with_u2028_is_one_document(tmp_path):
    path = tmp_path / "docs.jsonl"
    text = "first part\u2028second part"
    path.write_text(json.dumps({"id": "x", "text": text}, ensure_ascii=False) + "\n", encoding="utf-8")
    docs = read_documents(path)
    assert docs.texts == [text] and docs.ids == ["x"]


def test_form_feed_in_txt_does_not_make_two_documents(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("page one\x0cpage two\nnext\n", encoding="utf-8")
    assert read_documents(path).texts == ["page one\x0cpage two", "next"]
    assert read_lines(path) == ["page one\x0cpage two", "next"]


def test_crlf_files(tmp_path):
    txt = tmp_path / "t.txt"
    txt.write_bytes(b"one\r\ntwo\r\n")
    assert read_lines(txt) == ["one", "two"]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_bytes(b'{"text": "a"}\r\n\r\n{"text": "b"}\r\n')
    assert read_documents(jsonl).texts == ["a", "b"]
    csv = tmp_path / "d.csv"
    csv.write_bytes(b'id,text\r\n1,"a, quoted\r\nline"\r\n2,b\r\n')
    docs = read_documents(csv)
    assert docs.ids == ["1", "2"] and docs.texts == ["a, quoted\r\nline", "b"]
    tsv = tmp_path / "p.tsv"
    tsv.write_bytes(b"a\tb\t1\r\nc\td\t2\r\n")
    assert read_pairs(tsv, labelled=True).labels.tolist() == [1.0, 2.0]
    assert read_senteval_cn(tsv).sentences2 == ["b", "d"]


def test_blank_line_rule(tmp_path):
    txt = tmp_path / "t.txt"
    txt.write_text("a\n\nb\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=r"t\.txt:2: empty line"):
        read_lines(txt)
    txt.write_text("a\n   \n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=r"t\.txt:2: empty line"):
        read_documents(txt)
    txt.write_text("", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match="contains no texts"):
        read_lines(txt)
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('\n{"text": "a"}\n   \n{"text": "b"}\n\n', encoding="utf-8")
    assert read_documents(jsonl).texts == ["a", "b"]
    jsonl.write_text('{"text": "a"}\n\n{broken\n', encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=r"d\.jsonl:3: invalid JSON"):
        read_documents(jsonl)


def test_stdin(monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("x\r\ny\n"))
    assert read_lines("-") == ["x", "y"]
    monkeypatch.setattr("sys.stdin", io.StringIO("x\n\n"))
    with pytest.raises(DatasetFormatError, match="<stdin>:2: empty line"):
        read_lines("-")


def test_missing_unsupported_and_non_utf8(tmp_path):
    with pytest.raises(DatasetNotFoundError):
        read_lines(tmp_path / "none.txt")
    with pytest.raises(DatasetNotFoundError):
        read_documents(tmp_path / "none.xml")
    (tmp_path / "d.xml").write_text("<x/>", encoding="utf-8")
    with pytest.raises(InvalidParameterError, match="unsupported input"):
        read_documents(tmp_path / "d.xml")
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(DatasetFormatError, match="UTF-8"):
        read_lines(tmp_path / "latin.txt")


def test_vectors_round_trip(tmp_path):
    vectors = np.arange(6, dtype=np.float32).reshape(3, 2)
    write_vectors(tmp_path / "v.npy", vectors, ["a", "b", "c"])
    np.testing.assert_array_equal(read_vectors(tmp_path / "v.npy"), vectors)
    with pytest.raises(InvalidInputError, match="at least 4 vectors"):
        read_vectors(tmp_path / "v.npy", min_rows=4)
    write_vectors(tmp_path / "v.jsonl", vectors, ["a", "b", "c"])
    rows = [json.loads(line) for line in (tmp_path / "v.jsonl").read_text(encoding="utf-8").split("\n") if line]
    assert rows[1] == {"text": "b", "embedding": [2.0, 3.0]}
    with pytest.raises(InvalidParameterError, match=r"\.npy or \.jsonl"):
        write_vectors(tmp_path / "v.csv", vectors, ["a", "b", "c"])
