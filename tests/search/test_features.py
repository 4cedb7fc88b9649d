"""What users of Chroma, Qdrant or LanceDB expect (issue 10 §2), through the library: metadata filters, upsert,
get/list paging, JSONL export/import, compressed FAISS indexes, hybrid search and bounds."""

import json

import numpy as np
import pytest

from semspace.errors import DatasetFormatError, InvalidInputError, InvalidParameterError
from semspace.search import Collection
from semspace.search.documents import MAX_K, MAX_METADATA_BYTES, MAX_QUERIES

DIM = 32
N = 300


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir):
    from semspace import Encoder

    return Encoder(str(tiny_bert_dir))


def vectors(n=N, seed=0):
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


def meta(i):
    return {"source": ["faq", "blog", "docs"][i % 3], "year": 2000 + i % 25, "draft": i % 2 == 0, "tag": None}


@pytest.fixture
def coll(tmp_path, encoder):
    c = Collection.create(tmp_path / "c", encoder=encoder)
    c.add(
        [f"the cat number {i}" for i in range(N)],
        ids=[f"d{i}" for i in range(N)],
        vectors=vectors(),
        metadata=[meta(i) for i in range(N)],
    )
    yield c
    c.close()


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"source": "faq"}, lambda m: m["source"] == "faq"),
        ({"source": "faq", "year": {"$gte": 2020}}, lambda m: m["source"] == "faq" and m["year"] >= 2020),
        ({"year": {"$gt": 2003, "$lt": 2006}}, lambda m: 2003 < m["year"] < 2006),
        ({"year": {"$lte": 2001}}, lambda m: m["year"] <= 2001),
        ({"source": {"$in": ["blog", "docs"]}}, lambda m: m["source"] in ("blog", "docs")),
        ({"source": {"$nin": ["blog"]}}, lambda m: m["source"] != "blog"),
        ({"source": {"$ne": "faq"}}, lambda m: m["source"] != "faq"),
        ({"draft": True}, lambda m: m["draft"] is True),
        ({"tag": None}, lambda m: True),
        ({"$or": [{"source": "faq"}, {"year": 2024}]}, lambda m: m["source"] == "faq" or m["year"] == 2024),
        ({"$and": [{"source": "docs"}, {"draft": False}]}, lambda m: m["source"] == "docs" and not m["draft"]),
        ({"year": {"$gt": "2000"}}, lambda m: False),  # a string bound never matches a number
        ({"missing": 1}, lambda m: False),
        ({"source": {"$in": []}}, lambda m: False),
    ],
)
def test_filters_return_k_matching_results(coll, where, expected):
    matching = {f"d{i}" for i in range(N) if expected(meta(i))}
    assert coll.count(where) == len(matching)
    hits = coll.search_vectors(vectors()[:3], k=20, where=where)
    for hit in hits:
        assert set(hit.ids) <= matching and len(hit.ids) == min(20, len(matching))
        assert hit.scores == sorted(hit.scores, reverse=True)


def test_filtered_search_is_exact_top_k_among_matches(coll):
    q = vectors(1, seed=5)
    unfiltered = coll.search_vectors(q, k=N)[0]
    faq = [i for i, m in zip(unfiltered.ids, unfiltered.metadata, strict=True) if m["source"] == "faq"][:10]
    assert coll.search_vectors(q, k=10, where={"source": "faq"})[0].ids == faq


def test_filter_through_the_faiss_selector_matches_exact(coll, monkeypatch):
    import semspace.search.query as module

    q = vectors(2, seed=6)
    exact = coll.search_vectors(q, k=15, where={"draft": True})
    monkeypatch.setattr(module, "EXACT_FILTER_MAX", 10)  # force the IDSelectorBatch path
    assert [h.ids for h in coll.search_vectors(q, k=15, where={"draft": True})] == [h.ids for h in exact]


@pytest.mark.parametrize(
    "where",
    [{"year": {"$regex": "x"}}, {"$not": {}}, {"a b": 1}, {"x": [1, 2]}, {"x": {"$in": "a"}}, {"x": {"$gt": None}}, []],
)
def test_bad_filters_are_clear_errors(coll, where):
    with pytest.raises(InvalidParameterError, match="where"):
        coll.search_vectors(vectors(1), k=3, where=where)


def test_upsert_adds_and_replaces_in_one_generation(coll):
    generation = coll.generation
    v = vectors(2, seed=9)
    assert coll.upsert(["a new text", "brand new"], ids=["d5", "new"], vectors=v, metadata=[{"v": 2}, {}]) == [
        "d5",
        "new",
    ]
    assert coll.generation == generation + 1 and len(coll) == N + 1 and coll.index.ntotal == N + 1
    assert coll.get(["d5"])[0] == {"id": "d5", "text": "a new text", "metadata": {"v": 2}}
    assert [h.ids[0] for h in coll.search_vectors(v, k=1)] == ["d5", "new"]
    assert coll.search_vectors(vectors()[5:6], k=1)[0].ids != ["d5"]  # the old vector is gone
    with pytest.raises(InvalidInputError):
        coll.upsert(["x"], ids=None)


def test_list_pages_by_offset_and_cursor(coll):
    first = coll.list_documents(limit=7)
    assert [d["id"] for d in first.documents] == [f"d{i}" for i in range(7)] and first.next_cursor
    second = coll.list_documents(limit=7, cursor=first.next_cursor)
    assert [d["id"] for d in second.documents] == [f"d{i}" for i in range(7, 14)]
    assert coll.list_documents(limit=7, offset=7).documents == second.documents
    seen, cursor = [], None
    while True:
        page = coll.list_documents(limit=50, where={"source": "faq"}, cursor=cursor)
        seen += [d["id"] for d in page.documents]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"d{i}" for i in range(0, N, 3)]
    with pytest.raises(InvalidParameterError):
        coll.list_documents(limit=0)
    with pytest.raises(InvalidParameterError, match="cursor"):
        coll.list_documents(cursor="abc")


@pytest.mark.parametrize("with_vectors", [True, False])
def test_export_import_round_trip_is_exact(coll, tmp_path, encoder, with_vectors):
    coll.delete(["d1"])
    out = tmp_path / "out.jsonl"
    assert coll.export_jsonl(out, vectors=with_vectors) == N - 1
    first = json.loads(out.read_text().splitlines()[0])
    assert first["metadata"] == meta(0) and ("vector" in first) == with_vectors
    copy = Collection.create(tmp_path / "copy", encoder=encoder)
    assert copy.import_jsonl(out) == N - 1
    ids, texts, raw = coll.export()
    ids2, texts2, raw2 = copy.export()
    assert ids == ids2 and texts == texts2
    assert copy.get(ids[:50]) == coll.get(ids[:50])
    if with_vectors:
        assert raw.tobytes() == raw2.tobytes()
    assert copy.import_jsonl(out, upsert=True) == N - 1 and len(copy) == N - 1
    copy.close()


def test_import_errors_name_the_line(coll, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "x", "vector": [1.0]}\n')
    with pytest.raises(DatasetFormatError, match=r"bad\.jsonl:1.*vector"):
        coll.import_jsonl(bad)
    bad.write_text(json.dumps({"id": "a", "text": "x", "vector": [0.0] * DIM}) + '\n{"id": "b", "text": "y"}\n')
    with pytest.raises(DatasetFormatError, match=r"bad\.jsonl:2"):
        coll.import_jsonl(bad)


def test_jsonl_metadata_object_is_the_metadata(tmp_path):
    from semspace.data.files import read_documents

    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "a", "text": "x", "metadata": {"source": "faq"}, "lang": "en"}\n')
    assert read_documents(path).metadata == [{"lang": "en", "source": "faq"}]


@pytest.mark.parametrize("factory", ["SQ8", "PQ8", "PQ16", "IVF4,PQ8", "HNSW32,SQ8", "OPQ8,PQ8", "IVF4,SQ8"])
def test_compressed_indexes_work_end_to_end(tmp_path, encoder, factory):
    v = vectors(400)
    c = Collection.create(tmp_path / "c", encoder=encoder, index=factory)
    c.add([f"t{i}" for i in range(5)], ids=[f"x{i}" for i in range(5)], vectors=v[:5])
    assert c.index.is_exact_fallback and c.search_vectors(v[:1], k=1)[0].ids == ["x0"]
    c.add([f"t{i}" for i in range(5, 400)], ids=[f"x{i}" for i in range(5, 400)], vectors=v[5:])
    assert not c.index.is_exact_fallback and c.index.ntotal == 400
    c.delete(["x7"])
    c.upsert(["again"], ids=["x8"], vectors=v[8:9])
    c.close()
    c = Collection.open(tmp_path / "c")
    assert c.index.ntotal == len(c) == 399
    hits = c.search_vectors(v[:100], k=10)
    recall = np.mean([f"x{i}" in h.ids for i, h in zip(range(100), hits, strict=True) if i != 7])
    assert recall >= 0.9, recall
    assert len(c.search_vectors(v[:2], k=5, where={})[0].ids) == 5
    c.close()


@pytest.mark.parametrize("factory", ["NoSuch", "IVF4,PQ7", "PQ5"])
def test_factories_that_cannot_work_are_refused_before_writing(tmp_path, encoder, factory):
    with pytest.raises(InvalidParameterError, match="factory"):
        Collection.create(tmp_path / "bad", encoder=encoder, index=factory)
    assert not (tmp_path / "bad").exists()


def test_bounds_are_clear_errors(coll):
    with pytest.raises(InvalidParameterError, match="'k'"):
        coll.search_vectors(vectors(1), k=MAX_K + 1)
    with pytest.raises(InvalidParameterError, match="'k'"):
        coll.search("cat", k=10**9)
    with pytest.raises(InvalidInputError, match="queries"):
        coll.search_vectors(vectors(MAX_QUERIES + 1), k=1)
    with pytest.raises(InvalidInputError, match="bytes"):
        coll.add(["x"], ids=["big"], vectors=vectors(1), metadata=[{"blob": "x" * MAX_METADATA_BYTES}])
    assert len(coll.search_vectors(vectors(1), k=MAX_K)[0].ids) == N  # trimmed to the collection


def test_bm25_and_hybrid_search(tmp_path, encoder):
    texts = ["a man is playing a guitar", "a dog is running in the park", "the cat eats food", "a plane is taking off"]
    c = Collection.create(tmp_path / "h", encoder=encoder)
    c.add(texts, ids=["g", "d", "c", "p"], metadata=[{"n": i} for i in range(4)])
    assert c.search("guitar", k=2, mode="bm25").ids == ["g"]  # only documents holding a query term
    assert c.search("guitar playing", k=4, mode="hybrid").ids[0] == "g"
    weighted = c.search("guitar", k=4, mode="hybrid", fusion="weighted", alpha=0.0)
    assert weighted.ids[0] == "g" and weighted.scores[0] == pytest.approx(1.0)
    assert c.search("guitar", k=4, mode="hybrid", where={"n": {"$gte": 1}}).ids[0] != "g"
    c.add(["guitar shop"], ids=["s"])  # the BM25 index follows the generation
    assert set(c.search("guitar", k=4, mode="bm25").ids) == {"g", "s"}
    with pytest.raises(InvalidParameterError):
        c.search("x", mode="sparse")
    with pytest.raises(InvalidParameterError):
        c.search("x", mode="hybrid", fusion="max")
    c.close()
