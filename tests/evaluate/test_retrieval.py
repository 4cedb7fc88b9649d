import gzip
import json

import pytest

from semspace import Encoder, Whitening
from semspace.data.retrieval import load_retrieval_task, paraphrase_task, read_beir, read_cranfield
from semspace.errors import DatasetFormatError
from semspace.evaluate.retrieval import evaluate_retrieval


@pytest.fixture
def beir_dir(tmp_path):
    folder = tmp_path / "mini"
    (folder / "qrels").mkdir(parents=True)
    docs = [
        {"_id": "d1", "title": "Dogs", "text": "a dog is running in the park"},
        {"_id": "d2", "title": "Music", "text": "a man is playing a guitar"},
        {"_id": "d3", "title": "Food", "text": "the cat eats food"},
    ]
    with gzip.open(folder / "corpus.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(json.dumps(d) for d in docs) + "\n")
    (folder / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": q, "text": t}) for q, t in [("q1", "dog park"), ("q2", "guitar"), ("q3", "x")])
    )
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\nq2\td2\t1\r\n")
    return folder


def test_read_beir_keeps_only_judged_queries(beir_dir):
    task = read_beir(beir_dir)
    assert task.doc_texts[0] == "Dogs a dog is running in the park"
    assert task.query_ids == ["q1", "q2"] and task.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}


def test_read_beir_malformed(beir_dir):
    (beir_dir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\n")
    with pytest.raises(DatasetFormatError, match=r"test\.tsv:2"):
        read_beir(beir_dir)


def test_evaluate_retrieval_end_to_end(beir_dir, tiny_bert_dir):
    rows = evaluate_retrieval(
        read_beir(beir_dir),
        Encoder(str(tiny_bert_dir)),
        transforms={"raw": None, "rotation": Whitening(beta=0, gamma=0)},
    )
    assert [r["transform"] for r in rows] == ["raw", "rotation"]
    # A full-k rotation keeps every cosine, so every metric is the same as raw.
    assert rows[0]["nDCG@10"] == pytest.approx(rows[1]["nDCG@10"])
    assert all(0 <= r["recall@100"] <= 100 for r in rows) and rows[0]["recall@100"] == 100


def test_paraphrase_task(fixtures, tmp_path):
    path = tmp_path / "P.test.data"
    path.write_text("问一\t答一\t1\n问二\t答二\t0\n问三\t答一\t1\n", encoding="utf-8")
    task = paraphrase_task(path, "P")
    assert task.doc_texts == ["答一", "答二"] and task.query_texts == ["问一", "问三"]
    assert all(rel == {"d0": 1} for rel in task.qrels.values())


@pytest.mark.slow
def test_real_retrieval_sets(shared_data):
    sizes = {"SciFact": (5183, 300), "Cranfield": (1398, 225)}
    for name, (docs, queries) in sizes.items():
        task = load_retrieval_task(name, shared_data)
        assert (len(task.doc_ids), len(task.query_ids)) == (docs, queries)
    assert len(read_cranfield(shared_data / "cranfield").qrels) == 225
