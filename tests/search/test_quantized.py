"""Quantized collections (issue 27): `precision="int8"` (FAISS SQ8) and `precision="binary"` (IndexBinaryFlat with
float rescoring) store, search, delete, upsert, checkpoint and reopen as a float collection does."""

import json
import subprocess
import sys

import numpy as np
import pytest

from semspace import Encoder
from semspace.errors import InvalidParameterError
from semspace.search import Collection
from semspace.search.binary import binarize
from semspace.search.index import VectorIndex, factory_for_precision

N = 300  # over SQ8's 256 training vectors


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir):
    return Encoder(str(tiny_bert_dir))


@pytest.fixture(scope="module")
def vectors():
    return np.random.default_rng(0).normal(size=(N, 32)).astype(np.float32)


def make(path, encoder, vectors, precision):
    coll = Collection.create(path, encoder=encoder, precision=precision)
    coll.add(
        [f"doc {i}" for i in range(N)],
        ids=[f"d{i}" for i in range(N)],
        metadata=[{"n": i} for i in range(N)],
        vectors=vectors,
    )
    return coll


@pytest.mark.parametrize(
    ("index", "precision", "factory"),
    [
        ("Flat", "float32", "Flat"),
        ("Flat", "int8", "SQ8"),
        ("HNSW32", "int8", "HNSW32,SQ8"),
        ("IVF64,Flat", "int8", "IVF64,SQ8"),
        ("Flat", "binary", "BFlat"),
    ],
)
def test_precision_picks_the_faiss_factory(index, precision, factory):
    assert factory_for_precision(index, precision) == factory


@pytest.mark.parametrize(
    ("index", "precision", "says"),
    [("PQ16", "int8", "not available with index='PQ16'"), ("HNSW32", "binary", "binary with index Flat")],
)
def test_unsupported_combinations_are_a_clear_error(tmp_path, encoder, index, precision, says):
    with pytest.raises(InvalidParameterError, match=says):
        Collection.create(tmp_path / "c", encoder=encoder, index=index, precision=precision)
    assert not (tmp_path / "c").exists()
    with pytest.raises(InvalidParameterError, match="must be one of float32, int8, binary"):
        Collection.create(tmp_path / "c", encoder=encoder, precision="int4")


@pytest.mark.parametrize(("precision", "factory"), [("int8", "SQ8"), ("binary", "BFlat")])
def test_quantized_collection_lifecycle(tmp_path, encoder, vectors, precision, factory):
    coll = make(tmp_path / "c", encoder, vectors, precision)
    info = coll.info()
    assert info["index"] == factory and info["precision"] == precision
    top = coll.search_vectors(vectors[:20], k=5)
    assert [r.ids[0] for r in top] == [f"d{i}" for i in range(20)]  # each vector finds itself first
    assert all(r.scores == sorted(r.scores, reverse=True) for r in top)
    assert coll.delete(["d0", "d1"]) == 2
    hits = coll.search_vectors(vectors[:2], k=10)
    assert all({"d0", "d1"}.isdisjoint(r.ids) and len(r.ids) == 10 for r in hits)
    assert coll.search_vectors(vectors[5:6], k=3, where={"n": {"$gte": 5}})[0].ids[0] == "d5"
    assert set(coll.search_vectors(vectors[5:6], k=3, where={"n": {"$lt": 5}})[0].ids) == {"d2", "d3", "d4"}
    coll.upsert(["moved"], ids=["d2"], vectors=-vectors[2:3])
    assert coll.search_vectors(-vectors[2:3], k=1)[0].ids == ["d2"]
    before = [r.ids for r in coll.search_vectors(vectors[10:30], k=10)]
    coll.compact()
    coll.close()
    with Collection.open(tmp_path / "c", encoder=encoder) as again:
        assert again.info()["precision"] == precision and again.info()["index"] == factory
        assert [r.ids for r in again.search_vectors(vectors[10:30], k=10)] == before
        assert len(again) == N - 2


def test_quantized_checkpoints_are_smaller(tmp_path, encoder, vectors):
    sizes = {}
    for precision in ("float32", "int8", "binary"):
        with make(tmp_path / precision, encoder, vectors, precision) as coll:
            sizes[precision] = coll.compact()["bytes_per_vector"]
    # 32 dims: 128 bytes of float32, 32 of int8, 4 of bits (plus the ids and headers)
    assert sizes["binary"] < sizes["int8"] < sizes["float32"]
    assert sizes["float32"] - sizes["binary"] > 100


def test_binary_rescoring_orders_candidates_by_the_float_query(vectors):
    """With rescoring the hits are ordered by the cosine of the float query with each ±1 code; without, by the
    Hamming distance (1 − 2h/d)."""
    index = VectorIndex("BFlat", 32)
    index.rebuild(np.arange(N, dtype=np.int64), vectors)
    query = vectors[:1] + 0.5 * np.random.default_rng(1).normal(size=(1, 32)).astype(np.float32)
    scores, ids = index.search(query, 10)
    signs = np.unpackbits(binarize(vectors, 32), axis=1).astype(np.float32) * 2 - 1
    q = query[0] / np.linalg.norm(query[0])
    np.testing.assert_allclose(scores[0], signs[ids[0]] @ q / np.sqrt(32), rtol=1e-5, atol=1e-6)
    index.rescore_multiplier = 1
    hamming_scores, hamming_ids = index.search(query, 10)
    code = binarize(query, 32)
    distance = np.unpackbits(np.bitwise_xor(binarize(vectors, 32)[hamming_ids[0]], code), axis=1).sum(axis=1)
    np.testing.assert_allclose(hamming_scores[0], 1 - 2 * distance / 32, rtol=1e-6)


def test_cli_index_create_precision(tmp_path, tiny_bert_dir):
    def semspace(*args):
        return subprocess.run(
            [sys.executable, "-m", "semspace", *map(str, args)], capture_output=True, text=True, timeout=300
        )

    made = semspace("index", "create", tmp_path / "b", "--model", tiny_bert_dir, "--precision", "binary")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["precision"] == "binary" and json.loads(made.stdout)["index"] == "BFlat"
    bad = semspace(
        "index", "create", tmp_path / "x", "--model", tiny_bert_dir, "--precision", "binary", "--index", "HNSW32"
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "binary" in bad.stderr
