"""The OpenAI- and TEI-compatible endpoints over real HTTP on 127.0.0.1, driven by the clients people use: the
`openai` package and LangChain's `OpenAIEmbeddings` (issue 16)."""

from __future__ import annotations

import asyncio
import base64

import httpx
import numpy as np
import openai
import pytest
from langchain_openai import OpenAIEmbeddings
from support import CLIENT_KEY, CLIENT_TEXTS

from semspace.interact.cross_encoder import CrossEncoder
from semspace.search import Collection
from semspace.service import Limits, create_app


@pytest.fixture
def served(serve_keyed):
    with serve_keyed(Limits(max_batch=16, max_text_chars=500)) as srv:
        yield srv


def client(served) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{served.url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=30)


def test_openai_client_float_and_base64(served, tiny_encoder):
    expected = tiny_encoder.encode(CLIENT_TEXTS)
    c = client(served)
    floats = c.embeddings.create(model=tiny_encoder.model_id, input=CLIENT_TEXTS, encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1, 2] and floats.model == tiny_encoder.model_id
    np.testing.assert_allclose(np.array([d.embedding for d in floats.data]), expected, rtol=1e-5, atol=1e-6)
    packed = c.embeddings.create(model=tiny_encoder.model_id, input=CLIENT_TEXTS, encoding_format="base64")
    unpacked = [np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in packed.data]  # asked: kept as str
    np.testing.assert_array_equal(np.array(unpacked), expected)
    default = c.embeddings.create(
        model=tiny_encoder.model_id, input=CLIENT_TEXTS[0]
    )  # the client asks for base64 itself
    alone = tiny_encoder.encode(CLIENT_TEXTS[:1])[0]  # one text alone (three run packed together: ~1e-7 apart)
    np.testing.assert_array_equal(np.array(default.data[0].embedding, dtype=np.float32), alone)
    lengths = tiny_encoder._adapter.token_lengths(CLIENT_TEXTS)
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == sum(lengths) == 8 + 4 + 11  # words + [CLS] [SEP]


def test_openai_async_client(served, tiny_encoder):
    async def embed() -> openai.types.CreateEmbeddingResponse:
        async with openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=30) as c:
            return await c.embeddings.create(
                model="text-embedding-3-small", input=CLIENT_TEXTS
            )  # its usual default name

    answer = asyncio.run(embed())
    assert answer.model == tiny_encoder.model_id
    vectors = np.array([d.embedding for d in answer.data], dtype=np.float32)
    np.testing.assert_array_equal(vectors, tiny_encoder.encode(CLIENT_TEXTS))


def test_base64_is_little_endian_float32(http, tiny_encoder):
    body = {"model": tiny_encoder.model_id, "input": ["a dog"], "encoding_format": "base64"}
    data = http.post("/v1/embeddings", json=body).json()["data"][0]["embedding"]
    np.testing.assert_array_equal(np.frombuffer(base64.b64decode(data), dtype="<f4"), tiny_encoder.encode(["a dog"])[0])


def test_openai_models_and_errors(served, http, tiny_encoder):
    c = client(served)
    assert [m.id for m in c.models.list()] == [tiny_encoder.model_id]
    assert c.models.retrieve(tiny_encoder.model_id).id == tiny_encoder.model_id
    with pytest.raises(openai.NotFoundError) as missing:
        c.models.retrieve("text-embedding-3-small")
    assert missing.value.body["code"] == "model_not_found" and "text-embedding-3-small" in missing.value.body["message"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{served.url}/v1", api_key="wrong", max_retries=0).models.list()
    tokens = http.post("/v1/embeddings", json={"model": tiny_encoder.model_id, "input": [[5, 6, 7]]})
    assert tokens.status_code == 400 and "string" in tokens.json()["error"]["message"]
    bad = http.post("/v1/embeddings", json={"model": tiny_encoder.model_id, "input": "x", "encoding_format": "int8"})
    assert bad.status_code == 422 and set(bad.json()["error"]) == {"message", "type", "param", "code"}
    assert bad.json()["error"]["param"] == "encoding_format"


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_dimensions_from_the_collection_whitening(served, tiny_encoder, whitened_collection):
    """`dimensions` below the encoder's gives the first whitened components, unit length like OpenAI's shortened
    embeddings; the encoder's own dimension gives exactly Encoder.encode's vectors."""
    c = client(served)
    raw = tiny_encoder.encode(CLIENT_TEXTS)
    with Collection.open(whitened_collection, encoder=tiny_encoder) as coll:
        whitened = coll.transform.transform(raw)
    four = c.embeddings.create(model=tiny_encoder.model_id, input=CLIENT_TEXTS, dimensions=4, encoding_format="float")
    four = np.array([d.embedding for d in four.data])
    np.testing.assert_allclose(np.linalg.norm(four, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(four, unit(whitened[:, :4]), rtol=1e-4, atol=1e-5)
    native = c.embeddings.create(
        model=tiny_encoder.model_id, input=CLIENT_TEXTS, dimensions=32, encoding_format="float"
    )
    np.testing.assert_allclose(np.array([d.embedding for d in native.data]), raw, rtol=1e-5, atol=1e-6)
    with pytest.raises(openai.BadRequestError, match=r"dimensions=12 is not available: use 32 .* or 1\.\.8"):
        c.embeddings.create(model=tiny_encoder.model_id, input=CLIENT_TEXTS, dimensions=12)


def test_dimensions_without_whitening_is_a_clear_400(tiny_encoder, live_server):
    with live_server(create_app(None, encoder=tiny_encoder)) as srv:
        c = openai.OpenAI(base_url=f"{srv.url}/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.BadRequestError, match=r"use 32 \(the encoder's own vectors\)\."):
            c.embeddings.create(model=tiny_encoder.model_id, input="a dog", dimensions=8)


def test_langchain_openai_embeddings(served, tiny_encoder):
    lc = OpenAIEmbeddings(
        base_url=f"{served.url}/v1",
        api_key=CLIENT_KEY,
        model=tiny_encoder.model_id,
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    docs = lc.embed_documents(CLIENT_TEXTS)
    np.testing.assert_allclose(np.array(docs), tiny_encoder.encode(CLIENT_TEXTS), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lc.embed_query("a dog"), tiny_encoder.encode(["a dog"])[0], rtol=1e-5, atol=1e-6)


def test_langchain_tiktoken_free_path(served, tiny_encoder, tiny_bert_dir):
    """LangChain's default (length-safe) path without tiktoken's download: the model's own tokenizer from a local
    folder (`tiktoken_model_name`) and any `model` name."""
    lc = OpenAIEmbeddings(
        base_url=f"{served.url}/v1",
        api_key=CLIENT_KEY,
        model="text-embedding-3-small",
        tiktoken_enabled=False,
        tiktoken_model_name=str(tiny_bert_dir),
        embedding_ctx_length=60,
        max_retries=0,
    )
    np.testing.assert_allclose(
        np.array(lc.embed_documents(CLIENT_TEXTS)), tiny_encoder.encode(CLIENT_TEXTS), rtol=1e-5, atol=1e-6
    )


def test_tei_embed_body(http, tiny_encoder):
    vectors = http.post("/embed", json={"inputs": CLIENT_TEXTS}).json()
    np.testing.assert_allclose(vectors, tiny_encoder.encode(CLIENT_TEXTS, normalize=True), rtol=1e-5, atol=1e-6)
    one = http.post("/embed", json={"inputs": "a dog", "normalize": False}).json()
    np.testing.assert_allclose(one, tiny_encoder.encode(["a dog"]), rtol=1e-5, atol=1e-6)
    long = " ".join(["dog"] * 100)  # 102 tokens > the tiny model's 64
    refused = http.post("/embed", json={"inputs": [long]})
    assert refused.status_code == 413 and "102 tokens; the limit is 64" in refused.json()["detail"]
    cut = http.post("/embed", json={"inputs": [long], "truncate": True})
    assert cut.status_code == 200 and len(cut.json()[0]) == 32
    ours = http.post("/embed", json={"texts": ["a dog"]}).json()  # the existing body keeps its response
    assert set(ours) == {"model", "dim", "embeddings"} and ours["dim"] == 32


def test_rerank_with_a_cross_encoder(http, tiny_cross_encoder_dir):
    texts = ["a dog is running", "a plane", "a man is playing a guitar"]
    ranks = http.post("/rerank", json={"query": "a dog", "texts": texts, "return_text": True}).json()
    logits = CrossEncoder(str(tiny_cross_encoder_dir)).predict([("a dog", t) for t in texts]).astype(np.float64)
    expected = 1 / (1 + np.exp(-logits))
    assert [r["index"] for r in ranks] == list(np.argsort(-expected, kind="stable"))
    assert [r["text"] for r in ranks] == [texts[r["index"]] for r in ranks]
    np.testing.assert_allclose([r["score"] for r in ranks], np.sort(expected)[::-1], rtol=1e-5)
    raw = http.post("/rerank", json={"query": "a dog", "texts": texts, "raw_scores": True}).json()
    assert "text" not in raw[0]
    np.testing.assert_allclose(sorted(r["score"] for r in raw), np.sort(logits), rtol=1e-5, atol=1e-6)


def test_rerank_without_a_cross_encoder_is_404_json(tiny_encoder, live_server):
    with live_server(create_app(None, encoder=tiny_encoder)) as srv:
        response = httpx.post(f"{srv.url}/rerank", json={"query": "a", "texts": ["b"]})
        assert response.status_code == 404 and "--cross-encoder" in response.json()["detail"]


def test_info_like_tei(http, tiny_encoder, tiny_cross_encoder_dir):
    info = http.get("/info").json()
    assert info["model_id"] == tiny_encoder.model_id and info["dim"] == 32 and info["max_input_length"] == 64
    assert info["max_client_batch_size"] == 16 and info["reranker"] == str(tiny_cross_encoder_dir)
    assert info["model_type"]["embedding"]["pooling"] == "mean" and info["version"]
    assert info["engine"]["engine"] == "torch" and info["engine"]["cpu"]  # semspace's addition: engine and CPU


def test_metrics_count_requests_latency_and_batches(http):
    http.post("/embed", json={"texts": ["a", "b", "c"]})
    http.post("/embed", json={"texts": []})
    http.get("/documents/d0")
    text = http.get("/metrics").text
    assert 'semspace_requests_total{method="POST",route="/embed",status="200"} 1.0' in text
    assert 'semspace_requests_total{method="POST",route="/embed",status="422"} 1.0' in text
    assert 'semspace_requests_total{method="GET",route="/documents/{doc_id}",status="200"} 1.0' in text
    assert 'semspace_request_duration_seconds_count{method="POST",route="/embed"} 2.0' in text
    assert 'semspace_batch_size_bucket{le="4.0",route="/embed"} 1.0' in text


def test_metrics_registries_are_per_app(tiny_encoder):
    from fastapi.testclient import TestClient

    apps = [create_app(None, encoder=tiny_encoder) for _ in range(2)]
    with TestClient(apps[0], base_url="http://localhost") as a, TestClient(apps[1], base_url="http://localhost") as b:
        a.post("/embed", json={"texts": ["x"]})
        assert 'route="/embed",status="200"} 1.0' in a.get("/metrics").text
        assert 'route="/embed"' not in b.get("/metrics").text


def test_corpus_search_still_works(http):
    hits = http.post("/search", json={"query": "a man is playing a guitar", "k": 1}).json()["results"][0]["hits"]
    assert hits[0]["id"] == "d0"


def test_rerank_uses_the_collection_cur_cross_encoder(tmp_path, tiny_encoder, tiny_cross_encoder_dir, live_server):
    from semspace.interact.searcher import CURSearcher

    docs = ["a man is playing a guitar", "a dog is running", "the cat eats food", "a plane", "a woman", "a big dog"]
    cross = CrossEncoder(str(tiny_cross_encoder_dir))
    with Collection.create(tmp_path / "c", encoder=tiny_encoder) as coll:
        coll.add(docs, ids=[f"d{i}" for i in range(len(docs))])
        CURSearcher.build(cross, ["a man", "a dog", "food"], docs, [f"d{i}" for i in range(len(docs))], 3).save(
            tmp_path / "c" / "cur"
        )
    with live_server(create_app(tmp_path / "c", encoder=tiny_encoder)) as srv:
        ranks = httpx.post(f"{srv.url}/rerank", json={"query": "a dog", "texts": docs[:3], "raw_scores": True}).json()
        assert httpx.get(f"{srv.url}/info").json()["reranker"] == str(tiny_cross_encoder_dir)
    logits = cross.predict([("a dog", t) for t in docs[:3]])
    assert [r["index"] for r in ranks] == list(np.argsort(-logits, kind="stable"))


def test_concurrent_embed_requests_never_fail(served):
    """Issue 16's race: 8 clients sending multi-text /embed requests of mixed lengths at once."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    rng = random.Random(0)
    words = ["a", "dog", "man", "is", "playing", "the", "park", "guitar"]
    bodies = [
        {"texts": [" ".join(rng.choices(words, k=rng.choice([1, 4, 30, 90]))) for _ in range(rng.randint(2, 8))]}
        for _ in range(160)
    ]

    def send(body: dict) -> int:
        with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {CLIENT_KEY}"}, timeout=60) as c:
            return c.post("/embed", json=body).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(send, bodies))
    assert statuses == [200] * len(bodies)
