"""Readers for retrieval benchmarks: BEIR layout (SciFact), Cranfield (SMART format), and Chinese paraphrase
retrieval built from senteval_cn pairs labelled 1 (query = s1, corpus = every s2 of the split)."""

from __future__ import annotations

import csv
import gzip
import json
from dataclasses import dataclass
from pathlib import Path

from semspace.data.files import numbered_lines, split_lines
from semspace.data.sts import read_senteval_cn
from semspace.errors import DatasetFormatError, DatasetNotFoundError, InvalidParameterError


@dataclass
class RetrievalTask:
    """Corpus, queries and graded qrels (query id → {doc id: grade > 0})."""

    name: str
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]


def _exists(path: Path) -> Path:
    if not path.exists():
        raise DatasetNotFoundError(f"{path}: no such file or directory")
    return path


def read_beir(folder: str | Path, split: str = "test", name: str | None = None) -> RetrievalTask:
    """BEIR layout: corpus.jsonl(.gz) with _id/title/text, queries.jsonl, qrels/<split>.tsv (header, tab-separated).
    Documents are `title + " " + text`; only queries with qrels are kept."""
    folder = Path(folder)
    corpus_path = folder / "corpus.jsonl.gz" if (folder / "corpus.jsonl.gz").exists() else folder / "corpus.jsonl"
    opener = gzip.open if corpus_path.suffix == ".gz" else open
    doc_ids, doc_texts = [], []
    try:
        with opener(_exists(corpus_path), "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    doc = json.loads(line)
                    doc_ids.append(str(doc["_id"]))
                    doc_texts.append((doc.get("title", "") + " " + doc.get("text", "")).strip())
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise DatasetFormatError(corpus_path, number, f"not a BEIR corpus line ({exc})") from None
    except (OSError, EOFError) as exc:
        raise DatasetFormatError(corpus_path, None, f"unreadable ({exc})") from None
    qrels: dict[str, dict[str, int]] = {}
    qrels_path = _exists(folder / "qrels" / f"{split}.tsv")
    with open(qrels_path, encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle, delimiter="\t")
        next(rows, None)
        for fields in rows:
            if not fields:
                continue
            if len(fields) != 3 or not fields[2].strip().lstrip("-").isdigit():
                raise DatasetFormatError(qrels_path, rows.line_num, "expected query-id, corpus-id, integer score")
            if int(fields[2]) > 0:
                qrels.setdefault(fields[0].strip(), {})[fields[1].strip()] = int(fields[2])
    queries: dict[str, str] = {}
    queries_path = _exists(folder / "queries.jsonl")
    with open(queries_path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    q = json.loads(line)
                    queries[str(q["_id"])] = q["text"]
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise DatasetFormatError(queries_path, number, f"not a BEIR query line ({exc})") from None
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise DatasetFormatError(qrels_path, None, f"query ids without text: {missing[:5]}")
    query_ids = [q for q in queries if q in qrels]
    return RetrievalTask(name or folder.name, doc_ids, doc_texts, query_ids, [queries[q] for q in query_ids], qrels)


def _smart_records(path: Path) -> list[dict[str, str]]:
    """Parse SMART tagged text (.I id, then .T/.A/.B/.W fields) into dicts with key 'I' and one per field."""
    records: list[dict[str, str]] = []
    field = None
    for number, line in enumerate(split_lines(_exists(path).read_text(encoding="utf-8", errors="replace")), 1):
        if line.startswith(".I"):
            records.append({"I": line[2:].strip()})
            field = None
        elif line[:2] in (".T", ".A", ".B", ".W") and line[2:].strip() == "":
            if not records:
                raise DatasetFormatError(path, number, "field before the first .I")
            field = line[1]
            records[-1][field] = ""
        elif field is not None:
            records[-1][field] += (" " if records[-1][field] else "") + line.strip()
    return records


def read_cranfield(folder: str | Path) -> RetrievalTask:
    """Cranfield 1400: documents = title + abstract; queries mapped by position (the .I numbers have gaps);
    relevance codes 1-4 become grades 4-1 (code -1 = not relevant)."""
    folder = Path(folder)
    docs = _smart_records(folder / "cran.all.1400")
    queries = _smart_records(folder / "cran.qry")
    qrels: dict[str, dict[str, int]] = {}
    path = _exists(folder / "cranqrel")
    for number, line in numbered_lines(path):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3:
            raise DatasetFormatError(path, number, "expected 'query doc code'")
        code = int(fields[2])
        if 1 <= code <= 4:
            qrels.setdefault(fields[0], {})[fields[1]] = 5 - code
    # Two Cranfield records have neither title nor abstract: nothing to retrieve them by, so they are left out.
    docs = [d for d in docs if (d.get("T", "") + d.get("W", "")).strip()]
    doc_texts = [(d.get("T", "") + " " + d.get("W", "")).strip() for d in docs]
    query_ids = [str(i) for i in range(1, len(queries) + 1) if str(i) in qrels]
    query_texts = [queries[int(q) - 1].get("W", "") for q in query_ids]
    return RetrievalTask("Cranfield", [d["I"] for d in docs], doc_texts, query_ids, query_texts, qrels)


def paraphrase_task(path: str | Path, name: str) -> RetrievalTask:
    """Chinese paraphrase retrieval from a senteval_cn split: every pair labelled 1 is a query (s1) whose relevant
    document is its s2; the corpus is every distinct s2 of the split."""
    pairs = read_senteval_cn(path, name)
    doc_index: dict[str, str] = {}
    for s2 in pairs.sentences2:
        doc_index.setdefault(s2, f"d{len(doc_index)}")
    qrels: dict[str, dict[str, int]] = {}
    query_ids, query_texts = [], []
    for i, (s1, s2, label) in enumerate(zip(pairs.sentences1, pairs.sentences2, pairs.scores, strict=True)):
        if label == 1:
            qid = f"q{i}"
            query_ids.append(qid)
            query_texts.append(s1)
            qrels[qid] = {doc_index[s2]: 1}
    if not query_ids:
        raise InvalidParameterError(f"{path}: no pairs labelled 1")
    return RetrievalTask(name, list(doc_index.values()), list(doc_index.keys()), query_ids, query_texts, qrels)


def load_retrieval_task(name: str, data_root: str | Path) -> RetrievalTask:
    """SciFact, Cranfield, LCQMC-para or BQ-para from a data root laid out like ../shared/data."""
    root = Path(data_root)
    if name == "SciFact":
        return read_beir(root / "scifact", "test", "SciFact")
    if name == "Cranfield":
        return read_cranfield(root / "cranfield")
    if name in ("LCQMC-para", "BQ-para"):
        task = name.split("-")[0]
        return paraphrase_task(root / "senteval_cn" / task / f"{task}.test.data", name)
    raise InvalidParameterError(f"Unknown retrieval task {name!r}; choose SciFact, Cranfield, LCQMC-para, BQ-para.")
