import json
import sqlite3

import numpy as np
import pytest

from semspace import Encoder, Whitening
from semspace.errors import (
    CollectionError,
    DocumentNotFoundError,
    DuplicateIdError,
    InputTypeError,
    InvalidInputError,
    InvalidParameterError,
)
from semspace.search import Collection

TEXTS = [
    "a man is playing a guitar",
    "a dog is running in the park",
    "the cat eats food",
    "a plane is taking off",
    "a woman is playing a flute",
    "a small dog eats food",
]


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir):
    return Encoder(str(tiny_bert_dir))


@pytest.fixture
def coll(tmp_path, encoder):
    c = Collection.create(tmp_path / "c", encoder=encoder)
    c.add(TEXTS, ids=[f"d{i}" for i in range(len(TEXTS))], metadata=[{"n": i} for i in range(len(TEXTS))])
    yield c
    c.close()


def test_text_search_returns_ids_scores_texts_metadata(coll):
    # A random tiny model makes every sentence similar, so only the query's own document is sure to score 1.
    hits = coll.search(TEXTS[3], k=len(TEXTS))
    at = hits.ids.index("d3")
    assert hits.texts[at] == TEXTS[3] and hits.metadata[at] == {"n": 3}
    assert hits.scores[at] == pytest.approx(1.0, abs=1e-5)
    assert hits.scores == sorted(hits.scores, reverse=True)
    assert len(coll.search([TEXTS[0], TEXTS[1]], k=2)) == 2


def test_vector_search_ranks_exact_match_first(tmp_path, encoder):
    vectors = np.random.default_rng(1).normal(size=(30, encoder.dim)).astype(np.float32)
    c = Collection.create(tmp_path / "v", encoder=encoder)
    c.add([f"t{i}" for i in range(30)], ids=[f"v{i}" for i in range(30)], vectors=vectors)
    assert [r.ids[0] for r in c.search_vectors(vectors[[4, 17]], k=3)] == ["v4", "v17"]


def test_k_larger_than_collection_is_trimmed(coll):
    assert len(coll.search(TEXTS[0], k=50).ids) == len(TEXTS)


def test_reopen_gives_same_results(coll, tmp_path, encoder):
    before = coll.search(TEXTS[2], k=4)
    coll.close()
    again = Collection.open(tmp_path / "c", encoder=encoder)
    assert len(again) == len(TEXTS)
    assert again.search(TEXTS[2], k=4) == before


def test_delete_really_removes_and_update_is_delete_plus_add(coll):
    assert coll.delete(["d3"]) == 1
    assert "d3" not in coll.search(TEXTS[3], k=10).ids and len(coll.search(TEXTS[3], k=10).ids) == len(TEXTS) - 1
    assert coll.index.ntotal == len(coll) == len(TEXTS) - 1
    coll.add(["a jet is taking off"], ids=["d3"])
    assert coll.get(["d3"])[0]["text"] == "a jet is taking off"
    with pytest.raises(DocumentNotFoundError, match="nope"):
        coll.delete(["d0", "nope"])
    assert len(coll) == len(TEXTS)  # nothing removed


def test_bad_inputs_write_nothing(coll):
    generation = coll.info()["generation"]
    with pytest.raises(DuplicateIdError):
        coll.add(["x"], ids=["d0"])
    with pytest.raises(DuplicateIdError):
        coll.add(["x", "y"], ids=["n1", "n1"])
    with pytest.raises(InvalidInputError):
        coll.add(["x"], vectors=np.zeros((1, 7)))
    bad = np.zeros((1, coll.raw_dim), np.float32)
    bad[0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        coll.add(["x"], vectors=bad)
    with pytest.raises(InvalidInputError, match="empty"):
        coll.add([""])
    with pytest.raises(InputTypeError):
        coll.add(["x"], metadata=["not a dict"])
    with pytest.raises(InvalidInputError, match="empty"):
        coll.search("   ")
    with pytest.raises(InvalidParameterError):
        coll.search("x", k=0)
    with pytest.raises(DocumentNotFoundError):
        coll.get(["missing"])
    assert coll.info()["generation"] == generation and len(coll) == len(TEXTS)


def test_fit_whitening_reprojects_without_reencoding(coll, monkeypatch):
    monkeypatch.setattr(coll.encoder, "encode_poolings", lambda *a, **k: pytest.fail("re-encoded"))
    whitening = coll.fit_whitening(n_components=4)
    assert isinstance(whitening, Whitening) and coll.dim == 4 and coll.index.ntotal == len(coll)


def test_fit_whitening_then_reopen_keeps_transform(coll, tmp_path, encoder):
    coll.fit_whitening(n_components=3, beta=0.0, gamma=0.0)
    expected = coll.search(TEXTS[1], k=3)
    coll.close()
    again = Collection.open(tmp_path / "c", encoder=encoder)
    assert again.dim == 3 and again.transform.get_params()["n_components"] == 3
    assert again.search(TEXTS[1], k=3) == expected


def test_tune_with_dev_pairs(coll):
    s1, s2 = TEXTS[:3], TEXTS[3:]
    result = coll.fit_whitening(dev_pairs=(s1, s2, [1.0, 2.0, 3.0]))
    assert result.dev_spearman >= result.raw_dev_spearman
    # 3 dev pairs cannot establish a gain: the default rule keeps raw, and the collection stays untransformed
    assert result.is_raw and result.whitening is None and coll.transform is None
    plain = coll.fit_whitening(dev_pairs=(s1, s2, [1.0, 2.0, 3.0]), tune_rule="argmax")
    assert plain.dev_spearman >= plain.raw_dev_spearman


@pytest.mark.parametrize("factory", ["IVF4,Flat", "HNSW8"])
def test_ann_indexes(tmp_path, encoder, factory):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, encoder.dim)).astype(np.float32)
    c = Collection.create(tmp_path / "ann", encoder=encoder, index=factory)
    c.add([f"t{i}" for i in range(2)], ids=["x0", "x1"], vectors=vectors[:2])
    if factory.startswith("IVF"):
        assert c.index.is_exact_fallback  # too few vectors to train yet
    c.add([f"t{i}" for i in range(2, 200)], ids=[f"x{i}" for i in range(2, 200)], vectors=vectors[2:])
    assert not c.index.is_exact_fallback and c.index.ntotal == 200
    c.delete(["x5"])
    assert c.index.ntotal == 199
    assert c.search_vectors(vectors[10:11], k=1)[0].ids == ["x10"]


def test_invalid_factory(tmp_path, encoder):
    with pytest.raises(InvalidParameterError, match="factory"):
        Collection.create(tmp_path / "bad", encoder=encoder, index="NoSuchIndex")


def test_not_a_collection_and_corrupt_files(coll, tmp_path, encoder):
    with pytest.raises(CollectionError, match="not a semspace collection"):
        Collection.open(tmp_path)
    with pytest.raises(CollectionError, match="already exists"):
        Collection.create(tmp_path / "c", encoder=encoder)
    coll.close()
    manifest = tmp_path / "c" / "collection.json"
    good = manifest.read_text()
    manifest.write_text(good[: len(good) // 2])
    with pytest.raises(CollectionError, match=r"unreadable semspace\.collection"):
        Collection.open(tmp_path / "c", encoder=encoder)
    manifest.write_text(good)
    # A truncated index file is rebuilt from the stored raw vectors.
    index_file = next((tmp_path / "c").glob("index.g*.faiss"))
    index_file.write_bytes(index_file.read_bytes()[:20])
    again = Collection.open(tmp_path / "c", encoder=encoder)
    assert again.index.ntotal == len(TEXTS) and len(again.search(TEXTS[0], k=10).ids) == len(TEXTS)
    again.close()
    for extra in (tmp_path / "c").glob("documents.sqlite-*"):
        extra.unlink()
    db = tmp_path / "c" / "documents.sqlite"
    db.write_bytes(b"garbage" * 100)
    with pytest.raises(CollectionError, match=r"documents\.sqlite"):
        Collection.open(tmp_path / "c", encoder=encoder)


def test_manifest_records_settings(coll, tmp_path):
    manifest = json.loads((tmp_path / "c" / "collection.json").read_text())
    assert manifest["format"] == "semspace.collection" and manifest["index"] == "Flat"
    assert manifest["encoder"]["pooling"] == "mean" and "count" not in manifest  # the store counts, not a file
    with sqlite3.connect(tmp_path / "c" / "documents.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == len(TEXTS)
