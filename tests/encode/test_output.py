"""sentence-transformers users' conveniences on Encoder (issue 27): `similarity()` / `similarity_fn_name`,
`truncate_dim`, `precision`, and `semspace.util.semantic_search` — the numbers sentence-transformers gives."""

from __future__ import annotations

import numpy as np
import pytest

from semspace import Encoder
from semspace.errors import InvalidParameterError

st = pytest.importorskip("sentence_transformers")

TEXTS = ["a man is playing a guitar", "a dog", "the cat eats food in the park", "a plane is taking off"]


@pytest.fixture(scope="module")
def tiny(tiny_bert_dir):
    return Encoder(str(tiny_bert_dir))


def test_default_precision_and_no_truncation_leave_vectors_unchanged(tiny):
    np.testing.assert_array_equal(tiny.encode(TEXTS, precision="float32", truncate_dim=None), tiny.encode(TEXTS))


def test_truncate_dim_cuts_before_normalising(tiny, tiny_bert_dir):
    full = tiny.encode(TEXTS)
    cut = tiny.encode(TEXTS, truncate_dim=8, normalize=True)
    expected = st.util.truncate_embeddings(full, 8) if hasattr(st.util, "truncate_embeddings") else full[:, :8]
    np.testing.assert_allclose(cut, expected / np.linalg.norm(expected, axis=1, keepdims=True), rtol=1e-6)
    enc = Encoder(str(tiny_bert_dir), truncate_dim=8)
    assert enc.dim == 8 and enc.encode(TEXTS).shape == (4, 8) and enc.encode("a dog").shape == (8,)
    np.testing.assert_array_equal(enc.encode(TEXTS), full[:, :8])
    assert Encoder.from_spec(enc.spec).dim == 8  # a collection re-opens the same encoder
    with pytest.raises(InvalidParameterError, match=r"truncate_dim.*\[1, 32\]"):
        tiny.encode(TEXTS, truncate_dim=33)


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_precision_is_sentence_transformers_quantization(tiny, precision):
    got = tiny.encode(TEXTS, precision=precision)
    expected = st.quantize_embeddings(tiny.encode(TEXTS), precision=precision)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    if precision in ("binary", "ubinary"):
        assert got.shape == (4, 4)  # 32 signs, 8 a byte
    with pytest.raises(InvalidParameterError, match="precision"):
        tiny.encode(TEXTS, precision="int4")


@pytest.mark.parametrize("name", ["cosine", "dot", "euclidean", "manhattan"])
def test_similarity_matches_sentence_transformers(tiny_bert_dir, name):
    enc = Encoder(str(tiny_bert_dir), similarity_fn_name=name)
    a, b = enc.encode(TEXTS[:2]), enc.encode(TEXTS)
    expected = st.SimilarityFunction.to_similarity_fn(name)(a, b).numpy()
    got = enc.similarity(a, b)
    assert got.shape == (2, 4) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(enc.similarity_pairwise(a, b[:2]), np.diag(expected[:, :2]), rtol=1e-6)


def test_similarity_fn_name_is_checked(tiny_bert_dir, tiny):
    assert tiny.similarity_fn_name == "cosine"
    with pytest.raises(InvalidParameterError, match="similarity_fn_name"):
        Encoder(str(tiny_bert_dir), similarity_fn_name="jaccard")


def test_semantic_search_is_sentence_transformers(tiny):
    from semspace.util import cos_sim, semantic_search

    corpus, queries = tiny.encode(TEXTS), tiny.encode(["a dog runs", "a guitar"])
    hits = semantic_search(queries, corpus, top_k=2)
    scores = queries @ corpus.T / np.outer(np.linalg.norm(queries, axis=1), np.linalg.norm(corpus, axis=1))
    assert [[h["corpus_id"] for h in q] for q in hits] == np.argsort(-scores, axis=1)[:, :2].tolist()
    np.testing.assert_allclose([q[0]["score"] for q in hits], scores.max(axis=1), rtol=1e-5)
    np.testing.assert_allclose(cos_sim(queries, corpus), scores, rtol=1e-5)
